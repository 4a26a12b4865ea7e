/*-------------------------------------------------------------------------
 *
 * field.c
 *		  The Backup fields: one table says, per field, its name, the call it
 *		  can key, the column types that can hold it, the type IMPORT
 *		  FOREIGN SCHEMA gives it and its converter.  Everything else about
 *		  fields (hints, column checks, key columns, IMPORT) is derived from
 *		  it: adding a field means adding a row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stddef.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "redis_backup_fdw.h"

static const Oid string_types[] = {TEXTOID, VARCHAROID, InvalidOid};
static const Oid time_types[] = {TIMESTAMPTZOID, TIMESTAMPOID, InvalidOid};
static const Oid text_array_types[] = {TEXTARRAYOID, InvalidOid};

#define FIELD(f) offsetof(RbBackup, f)

/*
 * Indexed by RbField.  rows_per_key is the planner's guess of how many
 * backups one key value selects; fewer is the better key.
 */
const RbFieldInfo rb_fields[RB_NUM_FIELDS] = {
	[RB_FIELD_ID] = {
		"id", true, RB_METHOD_BACKUP_GET, 1.0,
		string_types, "text", rb_string_datum, FIELD(id)
	},
	[RB_FIELD_FOLDER_ID] = {
		"folder_id", true, RB_METHOD_BACKUP_LIST, 1000.0,
		string_types, "text", rb_string_datum, FIELD(folder_id)
	},
	[RB_FIELD_CREATED_AT] = {
		"created_at", false, 0, 0.0,
		time_types, "timestamptz", rb_timestamp_datum, FIELD(created_at)
	},
	[RB_FIELD_SOURCE_CLUSTER_ID] = {
		"source_cluster_id", true, RB_METHOD_CLUSTER_LIST_BACKUPS, 50.0,
		string_types, "text", rb_string_datum, FIELD(source_cluster_id)
	},
	[RB_FIELD_STARTED_AT] = {
		"started_at", false, 0, 0.0,
		time_types, "timestamptz", rb_timestamp_datum, FIELD(started_at)
	},
	[RB_FIELD_SOURCE_SHARD_NAMES] = {
		"source_shard_names", false, 0, 0.0,
		text_array_types, "text[]", rb_shard_names_datum,
		FIELD(source_shard_names)
	},
	[RB_FIELD_TYPE] = {
		"type", false, 0, 0.0,
		string_types, "text", rb_type_datum, FIELD(type)
	},
};

static bool field_accepts_type(const RbFieldInfo *field, Oid typid);
static char *field_type_names(const RbFieldInfo *field);

/*
 * rb_field_by_name
 *		Look up a Backup field by name.
 */
bool
rb_field_by_name(const char *name, RbField *field)
{
	int			i;

	for (i = 0; i < RB_NUM_FIELDS; i++)
	{
		if (strcmp(rb_fields[i].name, name) == 0)
		{
			*field = (RbField) i;
			return true;
		}
	}
	return false;
}

/*
 * rb_field_name_list
 *		"id, folder_id, ...": every field, or the key fields only, for hints.
 */
char *
rb_field_name_list(bool keys_only)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < RB_NUM_FIELDS; i++)
	{
		if (keys_only && !rb_fields[i].is_key)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 rb_fields[i].name);
	}
	return buf.data;
}

/*
 * field_accepts_type
 *		May a column of type typid show field?
 */
static bool
field_accepts_type(const RbFieldInfo *field, Oid typid)
{
	const Oid  *t;

	for (t = field->column_types; OidIsValid(*t); t++)
	{
		if (*t == typid)
			return true;
	}
	return false;
}

/*
 * field_type_names
 *		"text or character varying": the types a column of field may have.
 */
static char *
field_type_names(const RbFieldInfo *field)
{
	StringInfoData buf;
	const Oid  *t;

	initStringInfo(&buf);
	for (t = field->column_types; OidIsValid(*t); t++)
		appendStringInfo(&buf, "%s%s", t == field->column_types ? "" : " or ",
						 format_type_be(*t));
	return buf.data;
}

/*
 * rb_map_columns
 *		For each attribute of rel, the Backup field it shows (its "field"
 *		option, else its name), or RB_FIELD_NONE for a dropped column.
 *		Raises an error for a column that matches no field or has a type that
 *		cannot hold it.
 */
RbField *
rb_map_columns(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RbField    *map = palloc(sizeof(RbField) * Max(tupdesc->natts, 1));
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		const char *name = NameStr(att->attname);
		ListCell   *lc;
		RbField		field;

		map[i] = RB_FIELD_NONE;
		if (att->attisdropped)
			continue;

		foreach(lc, GetForeignColumnOptions(RelationGetRelid(rel), att->attnum))
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "field") == 0)
				name = defGetString(def);
		}

		if (!rb_field_by_name(name, &field))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" matches no field of a backup",
							NameStr(att->attname), RelationGetRelationName(rel)),
					 errhint("Name the column after a field (%s) or map it with the column option \"field\".",
							 rb_field_name_list(false))));
		if (!field_accepts_type(&rb_fields[field], att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, which cannot hold field \"%s\"",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_be(att->atttypid), rb_fields[field].name),
					 errhint("Use type %s.", field_type_names(&rb_fields[field]))));
		map[i] = field;
	}
	return map;
}

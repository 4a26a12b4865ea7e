/*-------------------------------------------------------------------------
 *
 * field.c
 *		  The resources a foreign table can show (backups, clusters) and
 *		  their fields: one table per resource says, per field, its name (the
 *		  proto's), the call it can key or the filter it can narrow, the
 *		  column types that can hold it, the type IMPORT FOREIGN SCHEMA gives
 *		  it and its converter.  Everything else about fields (hints, column
 *		  checks, key columns, IMPORT, where the value lies in the message)
 *		  is derived from it and from the proto's descriptors: adding a field
 *		  means adding a row, adding a resource a table and an entry.
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
static const Oid bool_types[] = {BOOLOID, InvalidOid};
static const Oid jsonb_types[] = {JSONBOID, InvalidOid};
static const Oid time_of_day_types[] = {TIMEOID, InvalidOid};
static const Oid integer_types[] = {INT4OID, INT8OID, InvalidOid};

/* A field of each kind; the converters find it through the descriptors. */
#define STRING_FIELD \
	.column_types = string_types, .import_type = "text", \
	.convert = rb_string_datum
#define TIMESTAMP_FIELD \
	.column_types = time_types, .import_type = "timestamptz", \
	.convert = rb_timestamp_datum
#define STRING_ARRAY_FIELD \
	.column_types = text_array_types, .import_type = "text[]", \
	.convert = rb_string_array_datum
#define ENUM_FIELD \
	.column_types = string_types, .import_type = "text", \
	.convert = rb_enum_datum
#define BOOL_FIELD \
	.column_types = bool_types, .import_type = "boolean", \
	.convert = rb_bool_datum
#define KEY(method, rows) \
	.is_key = true, .key_method = (method), .rows_per_key = (rows)

/*
 * The Backup fields, indexed by RbBackupField.  rows_per_key is the
 * planner's guess of how many backups one key value selects; fewer is the
 * better key.
 */
typedef enum RbBackupField
{
	RB_BACKUP_ID,
	RB_BACKUP_FOLDER_ID,
	RB_BACKUP_CREATED_AT,
	RB_BACKUP_SOURCE_CLUSTER_ID,
	RB_BACKUP_STARTED_AT,
	RB_BACKUP_SOURCE_SHARD_NAMES,
	RB_BACKUP_TYPE,
	RB_NUM_BACKUP_FIELDS
} RbBackupField;

static bool cluster_name_is_valid(const char *value);
static bool field_by_name(const RbResource *res, const char *name,
						  RbField *field);

static const RbFieldInfo backup_fields[RB_NUM_BACKUP_FIELDS] = {
	[RB_BACKUP_ID] = {"id", KEY(RB_METHOD_BACKUP_GET, 1.0), STRING_FIELD},
	[RB_BACKUP_FOLDER_ID] = {"folder_id", KEY(RB_METHOD_BACKUP_LIST, 1000.0),
	STRING_FIELD},
	[RB_BACKUP_CREATED_AT] = {"created_at", TIMESTAMP_FIELD},
	[RB_BACKUP_SOURCE_CLUSTER_ID] = {"source_cluster_id",
		KEY(RB_METHOD_CLUSTER_LIST_BACKUPS, 50.0), STRING_FIELD},
	[RB_BACKUP_STARTED_AT] = {"started_at", TIMESTAMP_FIELD},
	[RB_BACKUP_SOURCE_SHARD_NAMES] = {"source_shard_names", STRING_ARRAY_FIELD},
	[RB_BACKUP_TYPE] = {"type", ENUM_FIELD},
};

/*
 * The Cluster fields, indexed by RbClusterField; those of its config are
 * named after their field of ClusterConfig.  name = '...' narrows a
 * listing (ClusterService.List's filter).
 */
typedef enum RbClusterField
{
	RB_CLUSTER_ID,
	RB_CLUSTER_FOLDER_ID,
	RB_CLUSTER_CREATED_AT,
	RB_CLUSTER_NAME,
	RB_CLUSTER_DESCRIPTION,
	RB_CLUSTER_LABELS,
	RB_CLUSTER_ENVIRONMENT,
	RB_CLUSTER_NETWORK_ID,
	RB_CLUSTER_HEALTH,
	RB_CLUSTER_STATUS,
	RB_CLUSTER_SHARDED,
	RB_CLUSTER_TLS_ENABLED,
	RB_CLUSTER_DELETION_PROTECTION,
	RB_CLUSTER_PERSISTENCE_MODE,
	RB_CLUSTER_SECURITY_GROUP_IDS,
	RB_CLUSTER_VERSION,
	RB_CLUSTER_BACKUP_WINDOW_START,
	RB_CLUSTER_BACKUP_RETAIN_PERIOD_DAYS,
	RB_NUM_CLUSTER_FIELDS
} RbClusterField;

static const RbFieldInfo cluster_fields[RB_NUM_CLUSTER_FIELDS] = {
	[RB_CLUSTER_ID] = {"id", KEY(RB_METHOD_CLUSTER_GET, 1.0), STRING_FIELD},
	[RB_CLUSTER_FOLDER_ID] = {"folder_id", KEY(RB_METHOD_CLUSTER_LIST, 20.0),
	STRING_FIELD},
	[RB_CLUSTER_CREATED_AT] = {"created_at", TIMESTAMP_FIELD},
	[RB_CLUSTER_NAME] = {"name", .filter_value_ok = cluster_name_is_valid,
	STRING_FIELD},
	[RB_CLUSTER_DESCRIPTION] = {"description", STRING_FIELD},
	[RB_CLUSTER_LABELS] = {"labels", .column_types = jsonb_types,
	.import_type = "jsonb", .convert = rb_map_jsonb_datum},
	[RB_CLUSTER_ENVIRONMENT] = {"environment", ENUM_FIELD},
	[RB_CLUSTER_NETWORK_ID] = {"network_id", STRING_FIELD},
	[RB_CLUSTER_HEALTH] = {"health", ENUM_FIELD},
	[RB_CLUSTER_STATUS] = {"status", ENUM_FIELD},
	[RB_CLUSTER_SHARDED] = {"sharded", BOOL_FIELD},
	[RB_CLUSTER_TLS_ENABLED] = {"tls_enabled", BOOL_FIELD},
	[RB_CLUSTER_DELETION_PROTECTION] = {"deletion_protection", BOOL_FIELD},
	[RB_CLUSTER_PERSISTENCE_MODE] = {"persistence_mode", ENUM_FIELD},
	[RB_CLUSTER_SECURITY_GROUP_IDS] = {"security_group_ids",
	STRING_ARRAY_FIELD},
	[RB_CLUSTER_VERSION] = {"version", .in_message = "config", STRING_FIELD},
	[RB_CLUSTER_BACKUP_WINDOW_START] = {"backup_window_start",
		.in_message = "config", .column_types = time_of_day_types,
	.import_type = "time", .convert = rb_time_of_day_datum},
	[RB_CLUSTER_BACKUP_RETAIN_PERIOD_DAYS] = {"backup_retain_period_days",
		.in_message = "config", .column_types = integer_types,
	.import_type = "integer", .convert = rb_int64_value_datum},
};

/* The resources, the default first; ends with an entry without a name. */
const RbResource rb_resources[] = {
	{
		.name = "backups",
		.table_name = "redis_backups",
		.item_name = "backup",
		.item = &yandex__cloud__mdb__redis__v1__backup__descriptor,
		.fields = backup_fields,
		.nfields = RB_NUM_BACKUP_FIELDS,
		.id_field = RB_BACKUP_ID,
		.folder_field = RB_BACKUP_FOLDER_ID,
		.key_words = "folder, cluster or backup id",
		.key_columns = "folder_id, source_cluster_id or id",
		.lists_by = "backups only by folder, by cluster or by id",
		.key_examples = "folder_id = '...', source_cluster_id = '...' or id = '...'",
		.updatable = true,
		.delete_method = RB_METHOD_BACKUP_DELETE,
		.insert_method = RB_METHOD_CLUSTER_BACKUP,
		.insert_field = RB_BACKUP_SOURCE_CLUSTER_ID,
	},
	{
		.name = "clusters",
		.table_name = "redis_clusters",
		.item_name = "cluster",
		.item = &yandex__cloud__mdb__redis__v1__cluster__descriptor,
		.fields = cluster_fields,
		.nfields = RB_NUM_CLUSTER_FIELDS,
		.id_field = RB_CLUSTER_ID,
		.folder_field = RB_CLUSTER_FOLDER_ID,
		.key_words = "folder or cluster id",
		.key_columns = "folder_id or id",
		.lists_by = "clusters only by folder or by id",
		.key_examples = "folder_id = '...' or id = '...'",
	},
	{NULL}
};

/* A cluster name by the API's rule: [a-z]([-a-z0-9]{0,61}[a-z0-9])? of 3 to 63. */
#define RB_CLUSTER_NAME_MIN 3
#define RB_CLUSTER_NAME_MAX 63

static bool field_accepts_type(const RbFieldInfo *field, Oid typid);
static char *field_type_names(const RbFieldInfo *field);

/*
 * rb_resource_by_name
 *		The resource a table option names, or NULL.
 */
const RbResource *
rb_resource_by_name(const char *name)
{
	const RbResource *res;

	for (res = rb_resources; res->name; res++)
	{
		if (strcmp(res->name, name) == 0)
			return res;
	}
	return NULL;
}

/*
 * rb_resource_name_list
 *		"backups, clusters": the values of the table option, for hints.
 */
char *
rb_resource_name_list(void)
{
	StringInfoData buf;
	const RbResource *res;

	initStringInfo(&buf);
	for (res = rb_resources; res->name; res++)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", res->name);
	return buf.data;
}

/*
 * field_by_name
 *		Look up a field of res by name.
 */
static bool
field_by_name(const RbResource *res, const char *name, RbField *field)
{
	int			i;

	for (i = 0; i < res->nfields; i++)
	{
		if (strcmp(res->fields[i].name, name) == 0)
		{
			*field = i;
			return true;
		}
	}
	return false;
}

/*
 * rb_any_field_by_name
 *		Is name a field of some resource?  A column option is checked
 *		without its table's options at hand; the first scan checks it
 *		against the table's resource.
 */
bool
rb_any_field_by_name(const char *name)
{
	const RbResource *res;
	RbField		field;

	for (res = rb_resources; res->name; res++)
	{
		if (field_by_name(res, name, &field))
			return true;
	}
	return false;
}

/*
 * rb_field_name_list
 *		"id, folder_id, ...": every field of res, or its key fields only,
 *		for hints.
 */
char *
rb_field_name_list(const RbResource *res, bool keys_only)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < res->nfields; i++)
	{
		if (keys_only && !res->fields[i].is_key)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 res->fields[i].name);
	}
	return buf.data;
}

/*
 * rb_field_descriptor
 *		Where field lies in an item of res: its descriptor in its message,
 *		and in *parent the item's field holding that message (NULL when it
 *		is the item's own field).  The tables are fixed at build time, so a
 *		field the proto lacks is an internal error.
 */
const ProtobufCFieldDescriptor *
rb_field_descriptor(const RbResource *res, RbField field,
					const ProtobufCFieldDescriptor **parent)
{
	const RbFieldInfo *info = &res->fields[field];
	const ProtobufCMessageDescriptor *msg = res->item;
	const ProtobufCFieldDescriptor *fd;

	*parent = NULL;
	if (info->in_message != NULL)
	{
		*parent = protobuf_c_message_descriptor_get_field_by_name(msg,
																  info->in_message);
		if (*parent == NULL || (*parent)->type != PROTOBUF_C_TYPE_MESSAGE)
			elog(ERROR, "message %s has no message field \"%s\"",
				 msg->name, info->in_message);
		msg = (*parent)->descriptor;
	}
	fd = protobuf_c_message_descriptor_get_field_by_name(msg, info->name);
	if (fd == NULL)
		elog(ERROR, "message %s has no field \"%s\"", msg->name, info->name);
	return fd;
}

/*
 * rb_item_string_offset
 *		Where a string field of the item itself (its id, its folder id) lies
 *		in an item of res.
 */
size_t
rb_item_string_offset(const RbResource *res, RbField field)
{
	const ProtobufCFieldDescriptor *parent;
	const ProtobufCFieldDescriptor *fd = rb_field_descriptor(res, field,
															 &parent);

	if (parent != NULL || fd->type != PROTOBUF_C_TYPE_STRING)
		elog(ERROR, "field \"%s\" is no string of the item itself",
			 res->fields[field].name);
	return fd->offset;
}

/*
 * cluster_name_is_valid
 *		Can value be a cluster's name, by the API's rule: 3 to 63 characters,
 *		[a-z]([-a-z0-9]{0,61}[a-z0-9])?  A value that cannot is never sent.
 */
static bool
cluster_name_is_valid(const char *value)
{
	size_t		len = strlen(value);
	size_t		i;

	if (len < RB_CLUSTER_NAME_MIN || len > RB_CLUSTER_NAME_MAX)
		return false;
	if (value[0] < 'a' || value[0] > 'z' || value[len - 1] == '-')
		return false;
	for (i = 1; i < len; i++)
	{
		char		c = value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
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
 *		For each attribute of rel, the field of res it shows (its "field"
 *		option, else its name), or RB_FIELD_NONE for a dropped column.
 *		Raises an error for a column that matches no field or has a type that
 *		cannot hold it.
 */
RbField *
rb_map_columns(Relation rel, const RbResource *res)
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

		if (!field_by_name(res, name, &field))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NAME),
					 errmsg("column \"%s\" of foreign table \"%s\" matches no field of a %s",
							NameStr(att->attname), RelationGetRelationName(rel),
							res->item_name),
					 errhint("Name the column after a field (%s) or map it with the column option \"field\".",
							 rb_field_name_list(res, false))));
		if (!field_accepts_type(&res->fields[field], att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, which cannot hold field \"%s\"",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_be(att->atttypid), res->fields[field].name),
					 errhint("Use type %s.", field_type_names(&res->fields[field]))));
		map[i] = field;
	}
	return map;
}

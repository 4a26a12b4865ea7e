/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Validation and parsing of redis_backup_fdw's options.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "redis_backup_fdw.h"

PG_FUNCTION_INFO_V1(redis_backup_fdw_validator);

/* The kinds of value an option takes. */
typedef enum RbOptionType
{
	RB_OPT_ENDPOINT,			/* host:port */
	RB_OPT_BOOL,
	RB_OPT_FILE,				/* a server file; privileged */
	RB_OPT_INT,					/* between min and max */
	RB_OPT_ID,					/* a folder id: 1..50 characters */
	RB_OPT_SECRET,				/* never echoed back */
	RB_OPT_FIELD				/* a Backup field name */
} RbOptionType;

/* One valid option and where it may appear. */
typedef struct RbOption
{
	const char *name;
	Oid			context;		/* catalog in which it is valid */
	RbOptionType type;
	int			min;			/* for RB_OPT_INT */
	int			max;
} RbOption;

static const RbOption valid_options[] = {
	{"endpoint", ForeignServerRelationId, RB_OPT_ENDPOINT, 0, 0},
	{"tls", ForeignServerRelationId, RB_OPT_BOOL, 0, 0},
	{"ca_file", ForeignServerRelationId, RB_OPT_FILE, 0, 0},
	{"timeout_ms", ForeignServerRelationId, RB_OPT_INT, 1, 86400000},
	{"page_size", ForeignServerRelationId, RB_OPT_INT, 1, RB_MAX_PAGE_SIZE},
	{"max_attempts", ForeignServerRelationId, RB_OPT_INT, 1, 10},
	{"iam_token", UserMappingRelationId, RB_OPT_SECRET, 0, 0},
	{"folder_id", ForeignTableRelationId, RB_OPT_ID, 0, 0},
	{"page_size", ForeignTableRelationId, RB_OPT_INT, 1, RB_MAX_PAGE_SIZE},
	{"field", AttributeRelationId, RB_OPT_FIELD, 0, 0},
	{NULL, InvalidOid, 0, 0, 0}
};

/* Backup field names, indexed by RbField. */
static const char *const field_names[RB_NUM_FIELDS] = {
	"id",
	"folder_id",
	"created_at",
	"source_cluster_id",
	"started_at",
	"source_shard_names",
	"type"
};

static const RbOption *find_option(const char *name, Oid context);
static void check_option_value(const RbOption *opt, DefElem *def);
static int	parse_int_option(DefElem *def, int min, int max);
static const char *field_name(RbField field);

/*
 * redis_backup_fdw_validator
 *		Check the options of CREATE/ALTER FOREIGN DATA WRAPPER, SERVER,
 *		USER MAPPING, FOREIGN TABLE and column options.
 */
Datum
redis_backup_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const RbOption *opt = find_option(def->defname, catalog);

		if (opt == NULL)
		{
			StringInfoData buf;
			const RbOption *o;

			initStringInfo(&buf);
			for (o = valid_options; o->name; o++)
			{
				if (o->context == catalog)
					appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
									 o->name);
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 buf.len > 0
					 ? errhint("Valid options in this context are: %s.",
							   buf.data)
					 : errhint("There are no valid options in this context.")));
		}
		check_option_value(opt, def);
	}

	PG_RETURN_VOID();
}

/*
 * find_option
 *		The valid option of that name in that catalog, or NULL.
 */
static const RbOption *
find_option(const char *name, Oid context)
{
	const RbOption *o;

	for (o = valid_options; o->name; o++)
	{
		if (o->context == context && strcmp(o->name, name) == 0)
			return o;
	}
	return NULL;
}

/*
 * check_option_value
 *		Raise 22023 when an option's value is not acceptable.
 */
static void
check_option_value(const RbOption *opt, DefElem *def)
{
	char	   *value = defGetString(def);

	switch (opt->type)
	{
		case RB_OPT_ENDPOINT:
			{
				const char *colon = strrchr(value, ':');
				char	   *end;
				long		port;

				errno = 0;
				port = colon ? strtol(colon + 1, &end, 10) : 0;
				if (colon == NULL || colon == value || colon[1] == '\0' ||
					*end != '\0' || errno != 0 || port < 1 || port > 65535)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"%s\": \"%s\"",
									def->defname, value),
							 errhint("Give the endpoint as host:port, for example \"%s\".",
									 RB_DEFAULT_ENDPOINT)));
				break;
			}
		case RB_OPT_BOOL:
			{
				bool		b;

				if (!parse_bool(value, &b))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" requires a Boolean value",
									def->defname)));
				break;
			}
		case RB_OPT_FILE:

			/*
			 * Like file_fdw's filename: the backend reads the file, so only
			 * roles that may read server files can name one.
			 */
			if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only superuser or a role with privileges of the pg_read_server_files role may specify the %s option",
								def->defname)));
			if (!is_absolute_path(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be an absolute path",
								def->defname)));
			break;
		case RB_OPT_INT:
			(void) parse_int_option(def, opt->min, opt->max);
			break;
		case RB_OPT_ID:
			if (value[0] == '\0' || strlen(value) > RB_MAX_ID_LENGTH)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be 1 to %d characters long",
								def->defname, RB_MAX_ID_LENGTH)));
			break;
		case RB_OPT_SECRET:
			{
				const char *c;

				if (value[0] == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must not be empty",
									def->defname)));
				/* A metadata value: printable ASCII.  Never echo it. */
				for (c = value; *c; c++)
				{
					if (*c < 0x21 || *c > 0x7e)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("option \"%s\" must consist of printable ASCII characters without spaces",
										def->defname)));
				}
				break;
			}
		case RB_OPT_FIELD:
			{
				RbField		field;

				if (!rb_field_by_name(value, &field))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"%s\": \"%s\"",
									def->defname, value),
							 errhint("Valid fields are: id, folder_id, created_at, source_cluster_id, started_at, source_shard_names, type.")));
				break;
			}
	}
}

/*
 * parse_int_option
 *		An integer option's value, which must lie in [min, max].
 */
static int
parse_int_option(DefElem *def, int min, int max)
{
	char	   *value = defGetString(def);
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (end == value || *end != '\0' || errno != 0 || n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->defname, value),
				 errhint("Valid values are integers from %d to %d.", min, max)));
	return (int) n;
}

/*
 * rb_get_server_options
 *		A server's options with defaults applied.
 */
void
rb_get_server_options(ForeignServer *server, RbServerOptions *opts)
{
	ListCell   *lc;

	opts->endpoint = RB_DEFAULT_ENDPOINT;
	opts->tls = true;
	opts->ca_file = NULL;
	opts->timeout_ms = RB_DEFAULT_TIMEOUT_MS;
	opts->page_size = RB_DEFAULT_PAGE_SIZE;
	opts->max_attempts = RB_DEFAULT_MAX_ATTEMPTS;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "endpoint") == 0)
			opts->endpoint = defGetString(def);
		else if (strcmp(def->defname, "tls") == 0)
			opts->tls = defGetBoolean(def);
		else if (strcmp(def->defname, "ca_file") == 0)
			opts->ca_file = defGetString(def);
		else if (strcmp(def->defname, "timeout_ms") == 0)
			opts->timeout_ms = parse_int_option(def, 1, 86400000);
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = parse_int_option(def, 1, RB_MAX_PAGE_SIZE);
		else if (strcmp(def->defname, "max_attempts") == 0)
			opts->max_attempts = parse_int_option(def, 1, 10);
	}
}

/*
 * rb_get_table_options
 *		A foreign table's options; page_size falls back to the server's.
 */
void
rb_get_table_options(Oid relid, RbServerOptions *server_opts,
					 RbTableOptions *opts)
{
	ForeignTable *table = GetForeignTable(relid);
	ListCell   *lc;

	opts->folder_id = NULL;
	opts->page_size = server_opts->page_size;

	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "folder_id") == 0)
			opts->folder_id = defGetString(def);
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = parse_int_option(def, 1, RB_MAX_PAGE_SIZE);
	}
}

/*
 * rb_user_mapping_token
 *		The IAM token of a user mapping; an error when there is none.
 */
const char *
rb_user_mapping_token(UserMapping *user)
{
	ListCell   *lc;

	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "iam_token") == 0)
			return defGetString(def);
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("no iam_token in the user mapping for server \"%s\"",
					GetForeignServer(user->serverid)->servername),
			 errhint("Add one with ALTER USER MAPPING ... OPTIONS (ADD iam_token '...').")));
	return NULL;				/* keep compiler quiet */
}

/*
 * field_name
 *		The Backup field's name.
 */
static const char *
field_name(RbField field)
{
	Assert(field >= 0 && field < RB_NUM_FIELDS);
	return field_names[field];
}

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
		if (strcmp(field_names[i], name) == 0)
		{
			*field = (RbField) i;
			return true;
		}
	}
	return false;
}

/*
 * rb_map_columns
 *		For each attribute of rel, the Backup field it shows (its "field"
 *		option, else its name), or -1 for a dropped column.  Raises an error
 *		for a column that matches no field or has a type that cannot hold it.
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

		map[i] = (RbField) -1;
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
					 errhint("Name the column after a field (id, folder_id, created_at, source_cluster_id, started_at, source_shard_names, type) or map it with the column option \"field\".")));
		if (!rb_column_type_ok(field, att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, which cannot hold field \"%s\"",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_be(att->atttypid), field_name(field)),
					 errhint("Use type %s.", rb_field_type_names(field))));
		map[i] = field;
	}
	return map;
}

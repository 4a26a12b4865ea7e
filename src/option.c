/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Validation and parsing of redis_backup_fdw's options.
 *
 * One table lists every option: where it is valid, the kind of value it
 * takes, for integers its range, who may set it, which credential it is,
 * its default and the field of RbServerOptions or RbTableOptions a reader
 * puts it in.  The validator and the readers both go by it, and values the gRPC client checks again
 * (endpoint, token) are checked with the client's own rules, so
 * CREATE/ALTER refuses exactly what a scan would refuse.
 *
 * Integer options are read by one rule, that of PostgreSQL's integer
 * input in its plain form: optional white space, an optional sign, decimal
 * digits, optional white space (parse_integer).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "redis_backup_fdw.h"

PG_FUNCTION_INFO_V1(redis_backup_fdw_validator);

/* The kinds of value an option takes. */
typedef enum RbOptionType
{
	RB_OPT_ENDPOINT,			/* host:port, as the client accepts it */
	RB_OPT_BOOL,
	RB_OPT_FILE,				/* a server file; privileged */
	RB_OPT_INT,					/* between min and max */
	RB_OPT_ID,					/* a folder id: 1..50 characters */
	RB_OPT_TOKEN,				/* a bearer token; never echoed back */
	RB_OPT_KEY,					/* a service account key (JSON); secret */
	RB_OPT_KEY_FILE,			/* a server file holding one; privileged */
	RB_OPT_FIELD,				/* a field name of some resource */
	RB_OPT_RESOURCE				/* a resource name */
} RbOptionType;

/* Who may set an option (a Boolean only when it sets it true). */
typedef enum RbOptionPrivilege
{
	RB_PRIV_ANY,				/* whoever may create the object */
	RB_PRIV_READ_SERVER_FILES,	/* superuser or pg_read_server_files */
	RB_PRIV_SUPERUSER			/* superuser only */
} RbOptionPrivilege;

/* One valid option and where it may appear. */
typedef struct RbOption
{
	const char *name;
	Oid			context;		/* catalog in which it is valid */
	RbOptionType type;
	int			min;			/* for RB_OPT_INT */
	int			max;
	bool		import;			/* also an option of IMPORT FOREIGN SCHEMA */
	RbOptionPrivilege privilege;
	RbCredentialSource credential;	/* a user mapping's credential option */
	int			offset;			/* of its value in RbServerOptions or
								 * RbTableOptions; -1: not read there */
	const char *default_value;	/* its value when not set, or NULL */
} RbOption;

#define SERVER_OPTION(field) \
	.context = ForeignServerRelationId, \
	.offset = offsetof(RbServerOptions, field), .name = #field
#define TABLE_OPTION(field) \
	.context = ForeignTableRelationId, \
	.offset = offsetof(RbTableOptions, field), .name = #field
#define MAPPING_OPTION(option) \
	.context = UserMappingRelationId, .offset = -1, .name = option

static const RbOption valid_options[] = {
	{SERVER_OPTION(endpoint), .type = RB_OPT_ENDPOINT,
	.default_value = "mdb.api.cloud.yandex.net:443"},
	{SERVER_OPTION(iam_endpoint), .type = RB_OPT_ENDPOINT,
	.default_value = "iam.api.cloud.yandex.net:443"},
	{SERVER_OPTION(resource_manager_endpoint), .type = RB_OPT_ENDPOINT,
	.default_value = "resource-manager.api.cloud.yandex.net:443"},
	{SERVER_OPTION(operation_endpoint), .type = RB_OPT_ENDPOINT,
	.default_value = "operation.api.cloud.yandex.net:443"},
	{SERVER_OPTION(metadata_address), .type = RB_OPT_ENDPOINT,
	.default_value = "169.254.169.254:80"},
	{SERVER_OPTION(tls), .type = RB_OPT_BOOL, .default_value = "true"},
	{SERVER_OPTION(ca_file), .type = RB_OPT_FILE,
	.privilege = RB_PRIV_READ_SERVER_FILES},
	{SERVER_OPTION(timeout_ms), .type = RB_OPT_INT, .min = 1, .max = 86400000,
	.default_value = "30000"},
	{SERVER_OPTION(page_size), .type = RB_OPT_INT, .min = 1,
	.max = RB_MAX_PAGE_SIZE, .default_value = CppAsString2(RB_MAX_PAGE_SIZE)},
	{SERVER_OPTION(max_attempts), .type = RB_OPT_INT, .min = 1, .max = 10,
	.default_value = "4"},
	{SERVER_OPTION(max_concurrent_calls), .type = RB_OPT_INT, .min = 1,
	.max = 64, .default_value = "8"},
	{SERVER_OPTION(updatable), .type = RB_OPT_BOOL, .default_value = "false"},
	{SERVER_OPTION(wait_for_operations), .type = RB_OPT_BOOL,
	.default_value = "true"},
	{MAPPING_OPTION("iam_token"), .type = RB_OPT_TOKEN,
	.credential = RB_CRED_IAM_TOKEN},
	{MAPPING_OPTION("service_account_key"), .type = RB_OPT_KEY,
	.credential = RB_CRED_KEY},
	{MAPPING_OPTION("service_account_key_file"), .type = RB_OPT_KEY_FILE,
	.privilege = RB_PRIV_READ_SERVER_FILES, .credential = RB_CRED_KEY_FILE},

	/*
	 * The identity of the VM the database server runs on: not for every
	 * role that may create a user mapping.
	 */
	{MAPPING_OPTION("instance_service_account"), .type = RB_OPT_BOOL,
	.privilege = RB_PRIV_SUPERUSER, .credential = RB_CRED_INSTANCE},
	{TABLE_OPTION(folder_id), .type = RB_OPT_ID, .import = true},
	{TABLE_OPTION(cloud_id), .type = RB_OPT_ID, .import = true},
	{TABLE_OPTION(skip_denied_folders), .type = RB_OPT_BOOL, .import = true,
	.default_value = "false"},
	/* No default of its own: without it a table takes the server's. */
	{TABLE_OPTION(page_size), .type = RB_OPT_INT, .min = 1,
	.max = RB_MAX_PAGE_SIZE, .import = true},
	/* No defaults of their own: without them a table takes the server's. */
	{TABLE_OPTION(updatable), .type = RB_OPT_BOOL},
	{TABLE_OPTION(wait_for_operations), .type = RB_OPT_BOOL},
	/* No default here: without it a table shows the first resource. */
	{TABLE_OPTION(resource), .type = RB_OPT_RESOURCE},
	{.name = "field", .context = AttributeRelationId, .type = RB_OPT_FIELD,
	.offset = -1},
	{NULL}
};

/*
 * The shortest iam_token taken.  Real IAM tokens are hundreds of
 * characters long; a few characters are no token, and a server message
 * that happens to hold them as a word would have it cut out (remote.c).
 */
#define RB_MIN_TOKEN_LENGTH 8

static const RbOption *find_option(const char *name, Oid context);
static void check_option_value(const RbOption *opt, DefElem *def);
static void check_option_privilege(const RbOption *opt, DefElem *def);
static bool parse_integer(const char *value, int *result);
static bool bool_value(const char *name, const char *value);
static int	int_value(const RbOption *opt, const char *value);
static void read_options(List *options, Oid catalog, void *opts);
static void store_option(const RbOption *opt, const char *value, void *opts);
static void check_option_combination(List *options, Oid catalog);
static void check_one_credential(List *options);
static bool credential_is_set(const RbOption *opt, DefElem *def);

/*
 * redis_backup_fdw_validator
 *		Check the options of CREATE/ALTER FOREIGN DATA WRAPPER, SERVER,
 *		USER MAPPING, FOREIGN TABLE and column options: names first, then
 *		options that exclude each other, then each value and who may set
 *		it.
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
	}
	check_option_combination(options, catalog);
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		check_option_value(find_option(def->defname, catalog), def);
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
 *		Raise 22023 when an option's value is not acceptable, 42501 when
 *		the current user may not set it.
 */
static void
check_option_value(const RbOption *opt, DefElem *def)
{
	char	   *value = defGetString(def);

	check_option_privilege(opt, def);
	switch (opt->type)
	{
		case RB_OPT_ENDPOINT:
			if (!rb_target_is_valid(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								def->defname, value),
						 errhint("Give the endpoint as host:port: a host name, an IPv4 address or an IPv6 address in brackets, and a port from 1 to 65535, for example \"%s\".",
								 find_option("endpoint", ForeignServerRelationId)->default_value)));
			break;
		case RB_OPT_BOOL:
			(void) bool_value(def->defname, value);
			break;
		case RB_OPT_FILE:
		case RB_OPT_KEY_FILE:
			if (!is_absolute_path(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be an absolute path",
								def->defname)));
			if (opt->type == RB_OPT_KEY_FILE)
				rb_check_service_account_key(def->defname, value, true);
			break;
		case RB_OPT_KEY:
			rb_check_service_account_key(def->defname, value, false);
			break;
		case RB_OPT_INT:
			(void) int_value(opt, value);
			break;
		case RB_OPT_ID:
			{
				int			len = pg_mbstrlen(value);

				if (len < 1 || len > RB_MAX_ID_LENGTH)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must be 1 to %d characters long",
									def->defname, RB_MAX_ID_LENGTH)));
				break;
			}
		case RB_OPT_TOKEN:
			/* What the client can send as a metadata value.  Never echo it. */
			if (!rb_token_is_valid(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be a non-empty string of printable ASCII characters without spaces",
								def->defname)));
			if (strlen(value) < RB_MIN_TOKEN_LENGTH)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be at least %d characters long",
								def->defname, RB_MIN_TOKEN_LENGTH),
						 errhint("Give the whole IAM token, as \"yc iam create-token\" prints it.")));
			break;
		case RB_OPT_FIELD:
			if (!rb_any_field_by_name(value))
			{
				StringInfoData fields;
				const RbResource *res;

				initStringInfo(&fields);
				for (res = rb_resources; res->name; res++)
					appendStringInfo(&fields, "%s%s (resource '%s')",
									 fields.len > 0 ? "; " : "",
									 rb_field_name_list(res, false), res->name);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								def->defname, value),
						 errhint("Valid fields are: %s.", fields.data)));
			}
			break;
		case RB_OPT_RESOURCE:
			if (rb_resource_by_name(value) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								def->defname, value),
						 errhint("Valid values are: %s.",
								 rb_resource_name_list())));
			break;
	}
}

/*
 * check_option_privilege
 *		Raise 42501 when the current user may not set the option as def
 *		does.  A Boolean option is privileged only when set to true (a value
 *		that is no Boolean is left to check_option_value).
 */
static void
check_option_privilege(const RbOption *opt, DefElem *def)
{
	bool		b;

	if (opt->type == RB_OPT_BOOL &&
		(!parse_bool(defGetString(def), &b) || !b))
		return;

	switch (opt->privilege)
	{
		case RB_PRIV_ANY:
			break;
		case RB_PRIV_READ_SERVER_FILES:

			/*
			 * Like file_fdw's filename: the backend reads the file, so only
			 * roles that may read server files can name one.
			 */
			if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only superuser or a role with privileges of the pg_read_server_files role may specify the %s option",
								def->defname)));
			break;
		case RB_PRIV_SUPERUSER:
			if (!superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only superuser may specify the %s option",
								def->defname),
						 errdetail("It lends the user mapping the identity of the VM the database server runs on."),
						 errhint("Ask a superuser to create the user mapping for the role.")));
			break;
	}
}

/*
 * check_option_combination
 *		Options that exclude each other: a table is one folder's or one
 *		cloud's backups; a user mapping has one credential.
 */
static void
check_option_combination(List *options, Oid catalog)
{
	bool		folder = false;
	bool		cloud = false;
	ListCell   *lc;

	if (catalog == UserMappingRelationId)
		check_one_credential(options);
	if (catalog != ForeignTableRelationId)
		return;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		folder |= (strcmp(def->defname, "folder_id") == 0);
		cloud |= (strcmp(def->defname, "cloud_id") == 0);
	}
	if (folder && cloud)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"folder_id\" and \"cloud_id\" cannot both be set"),
				 errdetail("A foreign table shows the backups of one folder or of one cloud.")));
}

/*
 * credential_is_set
 *		Does def set a credential of the user mapping?  A Boolean credential
 *		option ('false') may also say there is none; a value that is no
 *		Boolean counts as set, and check_option_value refuses it.
 */
static bool
credential_is_set(const RbOption *opt, DefElem *def)
{
	bool		on;

	if (opt == NULL || opt->credential == RB_CRED_NONE)
		return false;
	return opt->type != RB_OPT_BOOL ||
		!parse_bool(defGetString(def), &on) || on;
}

/*
 * check_one_credential
 *		A user mapping has at most one credential option.
 */
static void
check_one_credential(List *options)
{
	StringInfoData names;
	int			n = 0;
	ListCell   *lc;

	initStringInfo(&names);
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (credential_is_set(find_option(def->defname, UserMappingRelationId),
							  def))
			appendStringInfo(&names, "%s%s", n++ > 0 ? ", " : "",
							 def->defname);
	}
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a user mapping takes exactly one credential"),
				 errdetail("It has %d: %s.", n, names.data),
				 errhint("Drop all but one of iam_token, service_account_key, service_account_key_file and instance_service_account.")));
}

/*
 * rb_credential_option
 *		The credential source of a user mapping's options, and its option's
 *		value; RB_CRED_NONE when it has none.
 */
RbCredentialSource
rb_credential_option(List *options, char **value)
{
	ListCell   *lc;

	*value = NULL;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const RbOption *opt = find_option(def->defname, UserMappingRelationId);

		if (credential_is_set(opt, def))
		{
			*value = defGetString(def);
			return opt->credential;
		}
	}
	return RB_CRED_NONE;
}

/*
 * parse_integer
 *		The rule of every integer option, that of PostgreSQL's integer input
 *		in its plain form: optional white space, an optional sign, one or
 *		more decimal digits, optional white space; the value fits in an int.
 *		(No underscores, no hexadecimal: those came to int4in only in 16.)
 */
static bool
parse_integer(const char *value, int *result)
{
	const char *p = value;
	bool		negative = false;
	bool		digits = false;
	int64		n = 0;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		negative = (*p++ == '-');
	for (; *p >= '0' && *p <= '9'; p++)
	{
		n = n * 10 + (*p - '0');
		if (n > (int64) PG_INT32_MAX + 1)
			return false;
		digits = true;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (!digits || *p != '\0')
		return false;
	if (negative)
		n = -n;
	if (n < PG_INT32_MIN || n > PG_INT32_MAX)
		return false;
	*result = (int) n;
	return true;
}

/*
 * bool_value
 *		A Boolean option's value, as the validator and every reader take it
 *		(parse_bool: true, yes, on, 1, ... and their opposites; not
 *		defGetBoolean, which takes fewer spellings).
 */
static bool
bool_value(const char *name, const char *value)
{
	bool		b;

	if (!parse_bool(value, &b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" requires a Boolean value", name)));
	return b;
}

/*
 * int_value
 *		An integer option's value, which must lie in the range its table
 *		entry gives.
 */
static int
int_value(const RbOption *opt, const char *value)
{
	int			n;

	if (!parse_integer(value, &n) || n < opt->min || n > opt->max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						opt->name, value),
				 errhint("Valid values are integers from %d to %d.",
						 opt->min, opt->max)));
	return n;
}

/*
 * read_options
 *		Fill opts, the struct of catalog's options, from the table: each
 *		option's default, then the value options gives it.
 */
static void
read_options(List *options, Oid catalog, void *opts)
{
	const RbOption *o;
	ListCell   *lc;

	for (o = valid_options; o->name; o++)
	{
		if (o->context == catalog && o->offset >= 0)
			store_option(o, o->default_value, opts);
	}
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		o = find_option(def->defname, catalog);
		if (o != NULL && o->offset >= 0)
			store_option(o, defGetString(def), opts);
	}
}

/*
 * store_option
 *		Put an option's value (NULL: none) into its field of opts, read by
 *		the rule of its type.
 */
static void
store_option(const RbOption *opt, const char *value, void *opts)
{
	char	   *field = (char *) opts + opt->offset;

	switch (opt->type)
	{
		case RB_OPT_BOOL:
			if (value != NULL)
				*(bool *) field = bool_value(opt->name, value);
			break;
		case RB_OPT_INT:
			if (value != NULL)
				*(int *) field = int_value(opt, value);
			break;
		default:
			*(const char **) field = value;
			break;
	}
}

/*
 * rb_get_server_options
 *		A server's options with defaults applied.
 */
void
rb_get_server_options(ForeignServer *server, RbServerOptions *opts)
{
	memset(opts, 0, sizeof(RbServerOptions));
	read_options(server->options, ForeignServerRelationId, opts);
}

/*
 * rb_get_table_options
 *		A foreign table's options; page_size, updatable and
 *		wait_for_operations fall back to the server's, resource to the
 *		first (backups).
 */
void
rb_get_table_options(Oid relid, const RbServerOptions *server_opts,
					 RbTableOptions *opts)
{
	memset(opts, 0, sizeof(RbTableOptions));
	opts->page_size = server_opts->page_size;
	opts->updatable = server_opts->updatable;
	opts->wait_for_operations = server_opts->wait_for_operations;
	read_options(GetForeignTable(relid)->options, ForeignTableRelationId,
				 opts);
	opts->res = opts->resource ? rb_resource_by_name(opts->resource)
		: &rb_resources[0];
	if (opts->res == NULL)		/* the validator let it pass: cannot be */
		elog(ERROR, "invalid resource \"%s\"", opts->resource);
}

/*
 * rb_import_option_names
 *		The options IMPORT FOREIGN SCHEMA accepts (table options it passes
 *		on): sets *names, returns how many.
 */
int
rb_import_option_names(const char ***names)
{
	const RbOption *o;
	int			n = 0;

	*names = palloc(sizeof(char *) * lengthof(valid_options));
	for (o = valid_options; o->name; o++)
	{
		if (o->import)
			(*names)[n++] = o->name;
	}
	return n;
}

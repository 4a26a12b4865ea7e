/*-------------------------------------------------------------------------
 *
 * redis_backup_fdw.h
 *		  Cross-file API of redis_backup_fdw, the foreign data wrapper for
 *		  Yandex Cloud Managed Redis backups.
 *
 * The gRPC client (src/client/rb_client.h) knows nothing of PostgreSQL; the
 * files declared here are the PostgreSQL-facing side.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIS_BACKUP_FDW_H
#define REDIS_BACKUP_FDW_H

#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "utils/relcache.h"

#include "compat.h"
#include "rb_client.h"

/* Limits of the API's request fields, in characters. */
#define RB_MAX_ID_LENGTH 50		/* folder_id, cluster_id, backup_id */
#define RB_MAX_PAGE_TOKEN_LENGTH 100
#define RB_MAX_PAGE_SIZE 1000

/* ------------------------------------------------------------------------
 * in field.c: the resources a table can show (backups, clusters), and what
 * the extension knows about each field of their items
 * ------------------------------------------------------------------------
 */

/* A field: its index in its resource's field table; -1 for none. */
typedef int RbField;

/* No field: a dropped column. */
#define RB_FIELD_NONE (-1)

struct RbColumn;

/*
 * Turns a field of an item (a Backup, a Cluster) into a datum of a column's
 * type; the column says which field, where it lies in the item and the
 * column's type.
 */
typedef Datum (*RbFieldConverter) (const ProtobufCMessage *item,
								   const struct RbColumn *col, bool *isnull);

typedef struct RbFieldInfo
{
	const char *name;			/* proto field name, default column name */
	const char *in_message;		/* the item's message field holding it, or
								 * NULL: the item's own field */
	bool		is_key;			/* can select items in a call */
	RbMethod	key_method;		/* ... the call it keys */
	double		rows_per_key;	/* ... items one key value selects */
	bool		(*filter_value_ok) (const char *value);	/* non-NULL: a
														 * listing's filter
														 * field; the values
														 * it may have */
	const Oid  *column_types;	/* types a column of it may have */
	const char *import_type;	/* the type IMPORT FOREIGN SCHEMA gives */
	RbFieldConverter convert;
} RbFieldInfo;

/*
 * A resource: what a foreign table shows (its table option "resource"),
 * the item message of its rows, its fields, and how messages name it.
 */
typedef struct RbResource
{
	const char *name;			/* "backups": the option value */
	const char *table_name;		/* IMPORT FOREIGN SCHEMA's table */
	const char *item_name;		/* "backup": an item, in messages */
	const ProtobufCMessageDescriptor *item;	/* its message */
	const RbFieldInfo *fields;
	int			nfields;
	RbField		id_field;		/* names an item in messages */
	RbField		folder_field;	/* the folder: table options folder_id and
								 * cloud_id, and its key_method lists one */
	/* What the error of a scan with no key says, and EXPLAIN of one. */
	const char *key_words;		/* "folder, cluster or backup id" */
	const char *key_columns;	/* "folder_id, source_cluster_id or id" */
	const char *lists_by;		/* "backups only by folder, by cluster or
								 * by id" */
	const char *key_examples;	/* "folder_id = '...', ..." */
	/* INSERT and DELETE (table option updatable); false: read-only */
	bool		updatable;
	RbMethod	delete_method;	/* DELETE: this call of each row's id */
	RbMethod	insert_method;	/* INSERT: this call of insert_field */
	RbField		insert_field;	/* the one field an INSERT gives */
} RbResource;

extern const RbResource rb_resources[];
extern const RbResource *rb_resource_by_name(const char *name);
extern char *rb_resource_name_list(void);
extern bool rb_any_field_by_name(const char *name);
extern char *rb_field_name_list(const RbResource *res, bool keys_only);
extern RbField *rb_map_columns(Relation rel, const RbResource *res);
extern const ProtobufCFieldDescriptor *rb_field_descriptor(const RbResource *res,
														   RbField field,
														   const ProtobufCFieldDescriptor **parent);
extern size_t rb_item_string_offset(const RbResource *res, RbField field);

/* ------------------------------------------------------------------------
 * in option.c
 * ------------------------------------------------------------------------
 */

/* Options of a server, with defaults applied. */
typedef struct RbServerOptions
{
	char	   *endpoint;		/* host:port of the Managed Redis API */
	char	   *iam_endpoint;	/* host:port of IAM */
	char	   *resource_manager_endpoint;	/* host:port of Resource Manager */
	char	   *operation_endpoint; /* host:port of the Operation service */
	char	   *metadata_address;	/* host:port of the VM metadata service */
	bool		tls;			/* false: plaintext (all gRPC endpoints) */
	char	   *ca_file;		/* PEM file of CAs to trust, or NULL */
	int			timeout_ms;		/* per-call deadline */
	int			page_size;		/* 1..1000 */
	int			max_attempts;	/* attempts of a retryable call */
	int			max_concurrent_calls;	/* calls of a scan in flight */
	bool		updatable;		/* INSERT and DELETE allowed */
	bool		wait_for_operations;	/* until each operation is done */
} RbServerOptions;

/* Options of a foreign table, merged with its server's. */
typedef struct RbTableOptions
{
	char	   *resource;		/* what the table shows: option, or NULL */
	const RbResource *res;		/* ... described; the default's if NULL */
	char	   *folder_id;		/* the table is this folder's items */
	char	   *cloud_id;		/* ... or this cloud's */
	bool		skip_denied_folders;	/* cloud scans skip denied folders */
	int			page_size;		/* table's, else server's */
	bool		updatable;		/* table's, else server's */
	bool		wait_for_operations;	/* table's, else server's */
} RbTableOptions;

extern void rb_get_server_options(ForeignServer *server, RbServerOptions *opts);
extern void rb_get_table_options(Oid relid, const RbServerOptions *server_opts,
								 RbTableOptions *opts);
/* Where a user mapping's IAM token comes from: its one credential option. */
typedef enum RbCredentialSource
{
	RB_CRED_NONE,
	RB_CRED_IAM_TOKEN,			/* iam_token: a ready-made token */
	RB_CRED_KEY,				/* service_account_key: JSON, exchanged */
	RB_CRED_KEY_FILE,			/* service_account_key_file: the same, read */
	RB_CRED_INSTANCE			/* instance_service_account: the VM's */
} RbCredentialSource;

extern int	rb_import_option_names(const char ***names);
extern RbCredentialSource rb_credential_option(List *options, char **value);

/* ------------------------------------------------------------------------
 * in server_file.c
 * ------------------------------------------------------------------------
 */
extern char *rb_read_server_file(const char *path, const char *what,
								 int max_size);

/* ------------------------------------------------------------------------
 * in credentials.c: where the IAM token of each call comes from
 * ------------------------------------------------------------------------
 */
typedef struct RbCredentials RbCredentials;
struct RbCallStats;

extern RbCredentials *rb_get_credentials(UserMapping *user,
										 const RbServerOptions *opts,
										 MemoryContext cxt,
										 struct RbCallStats *stats);
extern const char *rb_credentials_token(RbCredentials *creds);
extern bool rb_credentials_renewable(RbCredentials *creds);
extern void rb_credentials_rejected(RbCredentials *creds, const char *token);
extern char *rb_credentials_hint(RbCredentials *creds, const char *server_name);
extern char *rb_describe_credentials(Oid userid, Oid serverid);

/* ------------------------------------------------------------------------
 * in jwt.c: service-account keys and the JWT signed with them
 * ------------------------------------------------------------------------
 */
typedef struct RbServiceAccountKey
{
	char	   *id;				/* key id: the JWT's kid */
	char	   *service_account_id; /* the JWT's iss */
	char	   *private_key_pem;	/* from "-----BEGIN" on */
} RbServiceAccountKey;

extern bool rb_parse_service_account_key(const char *json,
										 RbServiceAccountKey *key,
										 const char **why);
extern char *rb_service_account_key_id(const char *json);
extern char *rb_read_service_account_key_file(const char *path);
extern void rb_check_service_account_key(const char *option,
										 const char *value, bool file);
extern char *rb_make_jwt(const RbServiceAccountKey *key, int64 now,
						 const char **why);
extern bool rb_json_string_fields(const char *json, int n,
								  const char *const *names, char **values);

/* ------------------------------------------------------------------------
 * in metadata.c: the VM's metadata service
 * ------------------------------------------------------------------------
 */
extern long rb_metadata_get_token(const char *address, int timeout_ms,
								  char **body, const char **why);

/* ------------------------------------------------------------------------
 * in connection.c: what a backend keeps of each user mapping across
 * queries (its channels and its cached IAM token)
 * ------------------------------------------------------------------------
 */

/* The services a scan may call, each over a channel of its own. */
typedef enum RbService
{
	RB_SERVICE_MDB,				/* Managed Redis: endpoint */
	RB_SERVICE_IAM,				/* IAM: iam_endpoint */
	RB_SERVICE_RESOURCE_MANAGER, /* Resource Manager: resource_manager_endpoint */
	RB_SERVICE_OPERATION,		/* Operation service: operation_endpoint */
	RB_NUM_SERVICES
} RbService;

/*
 * The IAM token obtained for a user mapping (credentials.c fills it in);
 * dropped when ALTER or DROP changes the user mapping or its server.
 */
typedef struct RbCachedToken
{
	char	   *token;			/* in TopMemoryContext; NULL: none */
	TimestampTz obtained_at;
	TimestampTz refresh_at;		/* get a new one from then on */
	uint64		generation;		/* counts the times it was dropped */
} RbCachedToken;

extern RbCachedToken *rb_cached_token(UserMapping *user);
extern void rb_drop_cached_token(RbCachedToken *cached);

typedef struct RbConnection RbConnection;
extern RbConnection *rb_acquire_connection(UserMapping *user,
										   const RbServerOptions *opts,
										   RbService service);
extern const char *rb_service_endpoint(const RbServerOptions *opts,
									   RbService service);
extern const char *rb_service_name(RbService service);
extern const char *rb_service_endpoint_option(RbService service);
extern RbChannel *rb_connection_channel(RbConnection *conn);
extern void rb_connection_failed(RbConnection *conn);
extern void rb_release_connection(RbConnection *conn);

/* ------------------------------------------------------------------------
 * in pushdown.c
 * ------------------------------------------------------------------------
 */

/* A condition that gives the key values of the calls. */
typedef struct RbKeyQual
{
	RestrictInfo *rinfo;		/* the whole condition */
	const RbFieldInfo *info;	/* its field: a key, or a filter */
	RbField		field;			/* ... its index */
	Expr	   *value;			/* the other side: scalar or array */
	bool		is_array;		/* col = ANY(value) */
} RbKeyQual;

/* The columns of a foreign table: its resource and each attribute's field. */
typedef struct RbTableColumns
{
	const RbResource *resource;
	const RbField *fields;		/* indexed by attno - 1 */
	int			natts;
} RbTableColumns;

extern bool rb_key_qual_from_clause(PlannerInfo *root, RelOptInfo *baserel,
									RestrictInfo *rinfo,
									const RbTableColumns *cols,
									RbKeyQual *key);
extern bool rb_best_key(PlannerInfo *root, RelOptInfo *baserel,
						List *clauses, const RbTableColumns *cols,
						RbKeyQual *best);
extern bool rb_filter_qual(PlannerInfo *root, RelOptInfo *baserel,
						   List *clauses, const RbTableColumns *cols,
						   RbKeyQual *filter);
extern bool rb_better_key(const RbKeyQual *candidate, const RbKeyQual *best);
extern void rb_deparse_key_value(PlannerInfo *root, RbKeyQual *key,
								 StringInfo buf);

/* ------------------------------------------------------------------------
 * in convert.c
 * ------------------------------------------------------------------------
 */

/* A column the scan fills: its attribute index, its field and how. */
typedef struct RbColumn
{
	int			attidx;			/* attnum - 1 */
	const RbResource *resource;
	const RbFieldInfo *field;
	const ProtobufCFieldDescriptor *fd;	/* the field in its message */
	const ProtobufCFieldDescriptor *parent;	/* the item's field holding that
											 * message, or NULL */
	Oid			typid;
	int32		typmod;
} RbColumn;

/* What a conversion error names. */
typedef struct RbConversionContext
{
	Relation	rel;
	size_t		id_offset;		/* of the item's id (a string field) */
	const RbColumn *column;		/* being converted, or NULL */
	const ProtobufCMessage *item;
} RbConversionContext;

extern Datum rb_string_datum(const ProtobufCMessage *item,
							 const RbColumn *col, bool *isnull);
extern Datum rb_timestamp_datum(const ProtobufCMessage *item,
								const RbColumn *col, bool *isnull);
extern Datum rb_string_array_datum(const ProtobufCMessage *item,
								   const RbColumn *col, bool *isnull);
extern Datum rb_enum_datum(const ProtobufCMessage *item,
						   const RbColumn *col, bool *isnull);
extern Datum rb_bool_datum(const ProtobufCMessage *item,
						   const RbColumn *col, bool *isnull);
extern Datum rb_map_jsonb_datum(const ProtobufCMessage *item,
								const RbColumn *col, bool *isnull);
extern Datum rb_time_of_day_datum(const ProtobufCMessage *item,
								  const RbColumn *col, bool *isnull);
extern Datum rb_int64_value_datum(const ProtobufCMessage *item,
								  const RbColumn *col, bool *isnull);
extern void rb_init_column(RbColumn *col, Form_pg_attribute att, int attidx,
						   const RbResource *res, RbField field);
extern void rb_store_item(const ProtobufCMessage *item, const RbColumn *columns,
						  int ncolumns, RbConversionContext *cxt,
						  TupleTableSlot *slot);
extern char *rb_key_to_utf8(const char *value);
extern char *rb_key_to_server(const char *value_utf8);

/* ------------------------------------------------------------------------
 * in remote.c
 * ------------------------------------------------------------------------
 */

/* Counters of a scan, shown by EXPLAIN ANALYZE. */
typedef struct RbCallStats
{
	uint64		calls;			/* calls made, retries included */
	uint64		retries;		/* of which retries */
	uint64		pages;			/* replies decoded */
	uint64		rows;			/* items decoded */
	uint64		bytes;			/* serialized reply bytes received */
	uint64		token_exchanges;	/* tokens obtained for the scan */
	uint64		throttled;		/* calls refused RESOURCE_EXHAUSTED */
	int			min_window;		/* smallest window throttling narrowed
								 * calls in flight to (0: never) */
	uint64		operations_started; /* accepted mutating calls */
	uint64		operations_finished;	/* ... whose operations are done */
	uint64		operations_failed;	/* ... that ended in error */
} RbCallStats;

/*
 * What a remote call needs besides its request.  The call layer knows
 * nothing of credentials: the caller puts the token in each RbRemoteCall.
 */
typedef struct RbCallTarget
{
	RbService	service;		/* the service called, for messages */
	RbConnection *conn;			/* told when the service is unreachable */
	RbChannel  *channel;
	const char *server_name;	/* for messages and hints */
	const char *endpoint;		/* host:port, for messages */
	const char *token_hint;		/* HINT when the service refuses the token */
	int			timeout_ms;
	int			max_attempts;
	RbCallStats *stats;
} RbCallTarget;

/* One remote call with what it takes to attempt it again. */
typedef struct RbRemoteCall
{
	RbMethod	method;
	const ProtobufCMessage *request;	/* kept by the caller until done */
	const char *desc;			/* how errors name the call */
	const char *token;			/* the token it carries (NULL: none) */
	const char *idempotency_key;  /* mutating calls: sent as idempotency-key; NULL: none */
	bool		denied_ok;		/* PERMISSION_DENIED is an outcome */
	bool		refusal_ok;		/* any refusal by the service is one */
	bool		token_renewable;	/* UNAUTHENTICATED is an outcome */
	bool		defer_retry;	/* the caller retries (RB_OUTCOME_RETRY) */
	bool		keep_bytes;		/* a reply is kept undecoded: */
	uint8_t    *reply_data;		/* ... its bytes */
	size_t		reply_len;
	RbStatus	status;			/* the last failure */
	RbCall	   *call;			/* the attempt in flight, or NULL */
	int			attempt;		/* attempts started */
	void	   *owner;			/* the caller's */
	const void *scan;			/* whose wait returns it (rb_remote_wait_any) */
	bool		completed;		/* completed, and collected from the channel
								 * while another scan waited */
} RbRemoteCall;

typedef enum RbOutcome
{
	RB_OUTCOME_REPLY,			/* a decoded reply */
	RB_OUTCOME_NOT_FOUND,		/* NOT_FOUND: nothing */
	RB_OUTCOME_DENIED,			/* PERMISSION_DENIED, when denied_ok */
	RB_OUTCOME_REFUSED,			/* a refusal, when refusal_ok: rc->status */
	RB_OUTCOME_TOKEN_REFUSED,	/* UNAUTHENTICATED, when token_renewable */
	RB_OUTCOME_RETRIED,			/* started again; wait for it */
	RB_OUTCOME_RETRY			/* UNAVAILABLE or RESOURCE_EXHAUSTED, when
								 * defer_retry: rc->status */
} RbOutcome;

extern void rb_remote_begin(RbCallTarget *target, RbRemoteCall *rc);
extern void rb_remote_renew(RbCallTarget *target, RbRemoteCall *rc,
							const char *token);
extern RbRemoteCall *rb_remote_wait_any(RbCallTarget *target,
										const void *scan, int timeout_ms);
extern RbRemoteCall *rb_remote_wait_either(RbCallTarget *a, bool a_busy,
										   RbCallTarget *b, bool b_busy,
										   const void *scan, int timeout_ms);
extern RbOutcome rb_remote_collect(RbCallTarget *target, RbRemoteCall *rc,
								   ProtobufCAllocator *allocator,
								   ProtobufCMessage **reply);
extern RbOutcome rb_remote_finish(RbCallTarget *target, RbRemoteCall *rc,
								  ProtobufCAllocator *allocator,
								  ProtobufCMessage **reply);
extern void rb_describe_call(StringInfo buf, RbMethod method,
							 const char *key_text, int page_size,
							 const char *page_token);
pg_noreturn extern void rb_remote_give_up(RbCallTarget *target,
										  RbRemoteCall *rc);
extern ProtobufCMessage *rb_remote_decode(RbCallTarget *target,
										  RbMethod method,
										  const char *call_desc,
										  const char *request_id,
										  const uint8_t *data, size_t len,
										  ProtobufCAllocator *allocator);
extern long rb_backoff_ms(int attempt);
extern void rb_backoff_sleep(int attempt);
extern void rb_sleep_until(TimestampTz end);
extern int	rb_ms_until(TimestampTz end);
extern char *rb_redact(const char *text, const char *secret);
extern void rb_init_allocator(ProtobufCAllocator *allocator,
							  MemoryContext cxt);
extern int	rb_code_sqlstate(RbCode code);
extern const ProtobufCMessage *rb_key_request(RbMethod method,
											  const char *key);

/* ------------------------------------------------------------------------
 * in credentials.c, over remote.c: calls made with the credentials' token
 * ------------------------------------------------------------------------
 */
extern void rb_credentials_begin(RbCredentials *creds, RbCallTarget *target,
								 RbRemoteCall *rc);
extern bool rb_credentials_renew(RbCredentials *creds, RbCallTarget *target,
								 RbRemoteCall *rc, RbOutcome outcome);
extern void rb_set_call_target(RbCallTarget *target, RbService service,
							   ForeignServer *server,
							   const RbServerOptions *opts,
							   RbCredentials *creds, RbCallStats *stats,
							   MemoryContext cxt);

/* ------------------------------------------------------------------------
 * in fetch.c: the calls of one scan, page by page
 * ------------------------------------------------------------------------
 */
typedef struct RbFetch RbFetch;

extern RbFetch *rb_fetch_create(MemoryContext cxt, RbCallTarget *target,
								RbCredentials *creds, RbMethod method,
								int page_size, int max_concurrent_calls,
								bool slow_start);
extern void rb_fetch_set_cloud(RbFetch *fetch, RbCallTarget *target,
							   const char *cloud_id, bool keys_are_folders,
							   bool skip_denied);
extern void rb_fetch_restart(RbFetch *fetch, char **keys, int nkeys);
extern void rb_fetch_set_filter(RbFetch *fetch, const char *filter,
								const char *filter_text);
extern bool rb_fetch_next_page(RbFetch *fetch, ProtobufCMessage ***items,
							   size_t *nitems, const char **key_utf8);
extern bool rb_fetch_folder_in_cloud(RbFetch *fetch, const char *folder_utf8);
extern void rb_fetch_abandon(RbFetch *fetch);

/* ------------------------------------------------------------------------
 * in mutate.c: the calls of a statement that change things, and their
 * operations
 * ------------------------------------------------------------------------
 */
typedef struct RbMutation RbMutation;
typedef struct RbMutationRow RbMutationRow;

extern RbMutation *rb_mutation_create(MemoryContext cxt, RbCredentials *creds,
									  RbCallTarget *target,
									  RbCallTarget *op_target,
									  RbMethod method,
									  int max_concurrent_calls, bool wait);
extern RbMutationRow *rb_mutation_add(RbMutation *m, const char *key,
									  bool keep);
extern void rb_mutation_wait_row(RbMutation *m, RbMutationRow *row,
								 int64 *seconds, int32 *nanos);
extern void rb_mutation_finish(RbMutation *m);
extern void rb_mutation_abandon(RbMutation *m);

/* ------------------------------------------------------------------------
 * in modify.c: the FdwRoutine callbacks of INSERT and DELETE
 * ------------------------------------------------------------------------
 */
extern int	rb_is_foreign_rel_updatable(Relation rel);
extern void rb_add_foreign_update_targets(PlannerInfo *root, Index rtindex,
										  RangeTblEntry *target_rte,
										  Relation rel);
extern List *rb_plan_foreign_modify(PlannerInfo *root, ModifyTable *plan,
									Index resultRelation, int subplan_index);
extern void rb_begin_foreign_modify(ModifyTableState *mtstate,
									ResultRelInfo *rinfo, List *fdw_private,
									int subplan_index, int eflags);
extern void rb_begin_foreign_insert(ModifyTableState *mtstate,
									ResultRelInfo *rinfo);
extern TupleTableSlot *rb_exec_foreign_insert(EState *estate,
											  ResultRelInfo *rinfo,
											  TupleTableSlot *slot,
											  TupleTableSlot *planSlot);
extern TupleTableSlot *rb_exec_foreign_delete(EState *estate,
											  ResultRelInfo *rinfo,
											  TupleTableSlot *slot,
											  TupleTableSlot *planSlot);
extern void rb_end_foreign_modify(EState *estate, ResultRelInfo *rinfo);
extern void rb_explain_foreign_modify(ModifyTableState *mtstate,
									  ResultRelInfo *rinfo, List *fdw_private,
									  int subplan_index, ExplainState *es);

#endif							/* REDIS_BACKUP_FDW_H */

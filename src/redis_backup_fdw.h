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

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "utils/relcache.h"

#include "rb_client.h"

/* The fields of a Backup message a column can map to. */
typedef enum RbField
{
	RB_FIELD_ID,
	RB_FIELD_FOLDER_ID,
	RB_FIELD_CREATED_AT,
	RB_FIELD_SOURCE_CLUSTER_ID,
	RB_FIELD_STARTED_AT,
	RB_FIELD_SOURCE_SHARD_NAMES,
	RB_FIELD_TYPE,
	RB_NUM_FIELDS
} RbField;

#define RB_DEFAULT_ENDPOINT "mdb.api.cloud.yandex.net:443"
#define RB_DEFAULT_TIMEOUT_MS 30000
#define RB_DEFAULT_PAGE_SIZE 1000
#define RB_MAX_PAGE_SIZE 1000
#define RB_DEFAULT_MAX_ATTEMPTS 4
#define RB_MAX_ID_LENGTH 50		/* folder_id, cluster_id, backup_id */
#define RB_MAX_PAGE_TOKEN_LENGTH 100

/* Options of a server, with defaults applied. */
typedef struct RbServerOptions
{
	char	   *endpoint;		/* host:port */
	bool		tls;			/* false: plaintext */
	char	   *ca_file;		/* PEM file of CAs to trust, or NULL */
	int			timeout_ms;		/* per-call deadline */
	int			page_size;		/* 1..1000 */
	int			max_attempts;	/* attempts of a retryable call */
} RbServerOptions;

/* Options of a foreign table, merged with its server's. */
typedef struct RbTableOptions
{
	char	   *folder_id;		/* folder to list when a query names none */
	int			page_size;		/* table's, else server's */
} RbTableOptions;

/* in option.c */
extern void rb_get_server_options(ForeignServer *server, RbServerOptions *opts);
extern void rb_get_table_options(Oid relid, RbServerOptions *server_opts,
								 RbTableOptions *opts);
extern const char *rb_user_mapping_token(UserMapping *user);
extern bool rb_field_by_name(const char *name, RbField *field);
extern RbField *rb_map_columns(Relation rel);

/* in connection.c */
typedef struct RbConnection RbConnection;
extern RbConnection *rb_acquire_connection(UserMapping *user,
										   const RbServerOptions *opts);
extern RbChannel *rb_connection_channel(RbConnection *conn);
extern void rb_release_connection(RbConnection *conn);

/* in pushdown.c */

/* What a scan calls, in order of preference. */
typedef enum RbCallKind
{
	RB_CALL_GET,				/* BackupService.Get per id */
	RB_CALL_CLUSTER_LIST,		/* ClusterService.ListBackups per cluster */
	RB_CALL_FOLDER_LIST,		/* BackupService.List per folder */
	RB_CALL_TABLE_FOLDER,		/* BackupService.List of the table's folder */
	RB_CALL_NONE				/* nothing to call: the scan cannot run */
} RbCallKind;

/* A condition that gives the key values of the calls. */
typedef struct RbKeyQual
{
	RestrictInfo *rinfo;		/* the whole condition */
	RbField		field;			/* id, source_cluster_id or folder_id */
	Expr	   *value;			/* the other side: scalar or array */
	bool		is_array;		/* col = ANY(value) */
} RbKeyQual;

extern bool rb_key_qual_from_clause(PlannerInfo *root, RelOptInfo *baserel,
									RestrictInfo *rinfo, const RbField *fields,
									int nfields, RbKeyQual *key);
extern RbCallKind rb_call_kind_of_field(RbField field);
extern void rb_deparse_key_value(PlannerInfo *root, RbKeyQual *key,
								 StringInfo buf);
extern const char *rb_call_request_field(RbCallKind kind);

/* in convert.c */
extern Datum rb_timestamp_datum(const Google__Protobuf__Timestamp *ts,
								Oid typid, int32 typmod, bool *isnull,
								const char *field);
extern Datum rb_string_datum(const char *str, Oid typid, int32 typmod,
							 const char *field);
extern Datum rb_shard_names_datum(char **names, size_t n, const char *field);
extern Datum rb_type_datum(int type, Oid typid, int32 typmod, bool *isnull);
extern bool rb_column_type_ok(RbField field, Oid typid);
extern const char *rb_field_type_names(RbField field);

/* in remote.c */

/* Counters of a scan, shown by EXPLAIN ANALYZE. */
typedef struct RbCallStats
{
	uint64		calls;			/* calls made, retries included */
	uint64		retries;		/* of which retries */
	uint64		pages;			/* replies decoded */
	uint64		rows;			/* backups decoded */
	uint64		bytes;			/* serialized reply bytes received */
} RbCallStats;

/* What a remote call needs besides its request. */
typedef struct RbCallTarget
{
	RbChannel  *channel;
	const char *token;
	const char *server_name;	/* for messages and hints */
	const char *endpoint;		/* host:port, for messages */
	int			timeout_ms;
	int			max_attempts;
	ProtobufCAllocator *allocator;	/* decodes into the caller's context */
	RbCallStats *stats;
} RbCallTarget;

extern RbCall *rb_remote_start(RbCallTarget *target, RbMethod method,
							   const ProtobufCMessage *request,
							   const char *call_desc);
extern ProtobufCMessage *rb_remote_call(RbCallTarget *target, RbMethod method,
										const ProtobufCMessage *request,
										const char *call_desc,
										RbCall *started);
extern void rb_init_allocator(ProtobufCAllocator *allocator,
							  MemoryContext cxt);

#endif							/* REDIS_BACKUP_FDW_H */

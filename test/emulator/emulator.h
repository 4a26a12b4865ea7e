/*-------------------------------------------------------------------------
 *
 * emulator.h
 *		  Shared declarations of the Managed Redis backup API emulator.
 *
 * The emulator is a single-threaded gRPC C core server (see emulator.c).
 * The other files know nothing about gRPC calls: data.c holds the backups
 * (loaded from data files or generated on demand, and their changes),
 * service.c decides the reply to one request, operations.c keeps the
 * operations of the calls that change things, faults.c holds the injected
 * faults, quota.c the request quotas, log.c writes the JSON call log and
 * util.c has small helpers (arena, buffers, hashes).
 *
 * Plain C, no PostgreSQL headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EMULATOR_H
#define EMULATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#define EMU_PROGNAME "redis_backup_emulator"

/* Exit code for a bad command line or a bad data file. */
#define EMU_EXIT_USAGE 2

/* Limits of the real API. */
#define EMU_MAX_ID_CHARS 50
#define EMU_MAX_PAGE_TOKEN_CHARS 100
#define EMU_MAX_PAGE_SIZE 1000
#define EMU_DEFAULT_PAGE_SIZE 100

/* Largest COUNT accepted by --generate (ids keep 7 digits). */
#define EMU_MAX_GENERATED 10000000

/* Limits of Resource Manager's FolderService.List. */
#define EMU_MAX_FOLDER_PAGE_TOKEN_CHARS 2000

/* Most folders --generate-cloud makes in one cloud. */
#define EMU_MAX_GENERATED_FOLDERS 100000

/* What a principal (a --token, a service account) may read. */
typedef struct EmuGrants
{
	bool		all;			/* "*": every folder and cloud */
	char	  **ids;			/* folder and cloud ids */
	int			n;
} EmuGrants;

/* A byte string; data is also NUL-terminated, but may hold NULs itself. */
typedef struct EmuBytes
{
	const char *data;
	size_t		len;
} EmuBytes;

/* A timestamp as sent on the wire; set = false leaves the field out. */
typedef struct EmuTimestamp
{
	bool		set;
	int64_t		seconds;
	int32_t		nanos;
} EmuTimestamp;

/* One backup, as stored (data files) or materialised (generator). */
typedef struct EmuBackup
{
	EmuBytes	id;
	EmuBytes	folder_id;
	EmuBytes	cluster_id;
	EmuTimestamp created_at;
	EmuTimestamp started_at;
	EmuBytes   *shards;			/* NULL when there are none */
	int			nshards;
	int32_t		type;			/* Backup.BackupType, any int32 */
} EmuBackup;

/* One label of a cluster (a map entry; keys may repeat in hostile data). */
typedef struct EmuLabel
{
	EmuBytes	key;
	EmuBytes	value;
} EmuLabel;

/*
 * One Redis cluster, as declared by a "cluster" line (attributes and
 * "label" lines, test/data/FORMAT.md) or materialised for a generated
 * folder.  Enums are any int32, as for Backup.type.
 */
typedef struct EmuClusterInfo
{
	EmuBytes	id;
	EmuBytes	folder_id;
	EmuTimestamp created_at;
	EmuBytes	name;
	EmuBytes	description;
	EmuLabel   *labels;
	int			nlabels;
	int32_t		environment;
	EmuBytes	network_id;
	int32_t		health;
	int32_t		status;
	bool		sharded;
	EmuBytes   *security_groups;
	int			nsecurity_groups;
	bool		tls_enabled;
	bool		deletion_protection;
	int32_t		persistence_mode;
	/* ClusterConfig; sent when any of its fields is set */
	EmuBytes	version;
	bool		has_backup_window;
	int32_t		backup_window[4];	/* hours, minutes, seconds, nanos */
	bool		has_retain_days;
	int64_t		retain_days;
} EmuClusterInfo;

/* A growable array of backup numbers (indexes into the data backups). */
typedef struct EmuIntList
{
	int		   *items;
	int			n;
	int			cap;
} EmuIntList;

/*
 * A sequence of backups that one List or ListBackups call pages through:
 * the data backups named by "data" (in file order), then the generated
 * backups of gen_folder whose index % 10 == gen_residue (every index when
 * gen_residue is -1).
 */
typedef struct EmuListing
{
	const EmuIntList *data;		/* NULL: no data backups */
	const struct EmuFolder *gen_folder;	/* NULL: no generated backups */
	int			gen_residue;
	EmuBytes	owner_folder;	/* folder whose grant the caller needs */
} EmuListing;

/* Bump allocator for one reply; everything is freed at once. */
typedef struct EmuArenaChunk EmuArenaChunk;
typedef struct EmuArena
{
	EmuArenaChunk *head;
} EmuArena;

/* Growable text buffer. */
typedef struct EmuBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} EmuBuf;

/* A token's counts against the quotas (quota.c). */
typedef struct EmuQuotaToken EmuQuotaToken;

/*
 * What service.c gets for one call, and what it hands back to the server
 * loop.  The reply payload is malloc'ed; the server takes it over.
 */
typedef struct EmuRequest
{
	EmuBytes	method;			/* the gRPC path */
	const uint8_t *body;		/* serialized request, NULL if none came */
	size_t		body_len;
	bool		has_auth;		/* an "authorization" entry was sent */
	EmuBytes	auth;			/* its value */
	bool		has_client_request_id;
	EmuBytes	client_request_id;	/* "x-client-request-id" value */
	bool		has_idempotency_key;
	EmuBytes	idempotency_key;	/* "idempotency-key" value */
	const char *peer;			/* the client's address, "ipv4:HOST:PORT" */
} EmuRequest;

typedef struct EmuReply
{
	grpc_status_code code;
	char	   *message;		/* malloc'ed status message, "" for OK */
	uint8_t    *payload;		/* malloc'ed message bytes (OK only) */
	size_t		payload_len;
	bool		hang;			/* never reply */
	int64_t		delay_ms;		/* delay the reply by this much */
	char		request_id[40]; /* x-request-id to send */
	EmuQuotaToken *quota;		/* the in-flight place the call holds until
								 * its status goes out (emu_quota_release),
								 * or NULL */
	char	   *log_body;		/* malloc'ed log line without seq and
								 * times; the server loop writes it when
								 * the status is sent (emu_log_write) */
} EmuReply;

/* in util.c */
extern void *emu_malloc(size_t size);
extern void *emu_realloc(void *ptr, size_t size);
extern char *emu_strdup(const char *s);
extern void emu_fatal(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
extern void *emu_arena_alloc(EmuArena *arena, size_t size);
extern char *emu_arena_memdup(EmuArena *arena, const void *data, size_t len);
extern void emu_arena_free(EmuArena *arena);
extern void emu_buf_append(EmuBuf *buf, const void *data, size_t len);
extern void emu_buf_append_str(EmuBuf *buf, const char *s);
extern void emu_buf_printf(EmuBuf *buf, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void emu_buf_free(EmuBuf *buf);
extern void emu_intlist_append(EmuIntList *list, int value);
extern bool emu_bytes_equal(EmuBytes a, EmuBytes b);
extern bool emu_bytes_equal_str(EmuBytes a, const char *s);
extern EmuBytes emu_bytes_str(const char *s);
extern uint64_t emu_hash_bytes(uint64_t seed, const void *data, size_t len);
extern void emu_make_id(const char *prefix, uint64_t seed, const void *data,
						size_t len, char *out);
extern bool emu_utf8_valid(const char *data, size_t len, size_t *nchars);
extern void emu_uuid(char *out);
extern int64_t emu_now_ms(void);
extern int64_t emu_now_us(void);
extern int64_t emu_wall_us(void);
extern void emu_random_bytes(void *out, size_t len);
extern void emu_base64url(const uint8_t *in, size_t len, EmuBuf *out);
extern bool emu_base64url_decode(const char *in, size_t len, EmuBuf *out);
extern void emu_write_port_file(const char *path, int port);
extern char *emu_read_file(const char *path);
extern void emu_grants_parse(const char *opt, const char *spec,
							 const char *text, bool allow_empty,
							 EmuGrants *out);
extern bool emu_grants_allow(const EmuGrants *grants, EmuBytes id);
extern const char *emu_status_name(grpc_status_code code);
extern bool emu_status_from_name(const char *name, grpc_status_code *code);

/* A folder of a cloud, for FolderService.List. */
typedef struct EmuFolderInfo
{
	EmuBytes	id;
	EmuBytes	cloud_id;
	EmuBytes	name;
	EmuTimestamp created_at;
} EmuFolderInfo;

/* in data.c */
extern void emu_data_add_generated_cloud(const char *spec);
extern int	emu_data_find_cloud(const char *cloud_id);
extern int	emu_data_cloud_folder_count(int cloud);
extern void emu_data_cloud_folder(int cloud, int pos, EmuFolderInfo *out);
extern const char *emu_data_generated_folder(int i, int *nfolders);
extern void emu_data_load_file(const char *path);
extern void emu_data_add_generated(const char *folder, int64_t count);
extern bool emu_data_find_backup(const char *id, EmuArena *arena,
								 EmuBackup *out);
extern bool emu_data_delete_backup(const char *id, char **folder_id,
								   char **cluster_id);
extern bool emu_data_make_backup(const char *cluster_id,
								 const EmuTimestamp *started_at,
								 const EmuTimestamp *created_at,
								 const char **id, const char **folder_id);
extern void emu_data_folder_listing(const char *folder_id, EmuListing *out);
extern bool emu_data_cluster_listing(const char *cluster_id, EmuListing *out);
extern int64_t emu_listing_count(const EmuListing *listing);
extern void emu_listing_get(const EmuListing *listing, int64_t pos,
							EmuArena *arena, EmuBackup *out);
extern bool emu_data_find_cluster(const char *id, EmuArena *arena,
								  EmuClusterInfo *out);
extern int	emu_data_folder_clusters(const char *folder_id, EmuArena *arena,
									 EmuClusterInfo **out);
extern bool emu_data_unescape(const char *s, size_t len, EmuBytes *out,
							  const char **err);
extern bool emu_data_parse_timestamp(const char *s, EmuTimestamp *ts);
extern void emu_data_summary(int64_t *nbackups, int *nfolders,
							 int *nclusters, int *ngenerated, int *nclouds);

/* in clusters.c */
extern void emu_cluster_init(EmuClusterInfo *c, EmuBytes id, EmuBytes folder_id);
extern const char *emu_cluster_set_attribute(EmuClusterInfo *c,
											 const char *field);
extern void emu_cluster_add_label(EmuClusterInfo *c, EmuBytes key,
								  EmuBytes value);
extern void emu_cluster_generate(EmuBytes folder_id, int k, EmuArena *arena,
								 EmuClusterInfo *out);
extern bool emu_cluster_name_valid(const char *name);

/* in faults.c */

/* The effect of the faults on one call, as evaluated by emu_faults_apply. */
typedef struct EmuFaultEffect
{
	int64_t		delay_ms;		/* latency: sum over the matching specs */
	bool		hang;
	bool		error;			/* unavailable, exhausted or status fired */
	grpc_status_code error_code;
	const char *error_message;
	const char *error_kind;		/* "unavailable", "exhausted", "status" */
	bool		garbage;
	bool		token_loop;
	bool		unknown_fields;
	bool		stray_item;		/* Backups answer another key */
	bool		echo_token;		/* UNAUTHENTICATED quoting the token */
	int64_t		oversize;		/* bytes of padding, 0 for none */
	bool		op_error;		/* the operation started ends with an error */
	grpc_status_code op_error_code;
	const char *op_error_message;
	bool		lose_reply;		/* a mutating call's reply is UNAVAILABLE */
} EmuFaultEffect;

extern void emu_fault_add(const char *spec);
extern void emu_faults_apply(const char *method, const char *key,
							 EmuFaultEffect *effect);
extern int	emu_fault_count(void);

/* in quota.c */
extern void emu_quota_set_inflight(const char *arg);
extern void emu_quota_set_rate(const char *arg);
extern bool emu_quota_admit(bool has_token, EmuBytes token,
							EmuQuotaToken **held);
extern void emu_quota_release(EmuQuotaToken **held);

/* in log.c */
typedef struct EmuLogRecord
{
	const char *method;			/* method name, or the raw path */
	EmuBytes	method_raw;		/* used when method is NULL */
	const char *id_field;		/* "backup_id", "folder_id", "cluster_id",
								 * "cloud_id", "operation_id", "key_id";
								 * NULL when the
								 * request did not parse */
	const char *id_value;
	bool		has_paging;		/* log page_size and page_token */
	int64_t		page_size;
	const char *page_token;
	const char *filter;			/* request's filter; NULL: not logged */
	const char *auth;			/* "ok", "missing", "invalid", "denied" */
	bool		has_client_request_id;
	EmuBytes	client_request_id;
	bool		has_idempotency_key;
	EmuBytes	idempotency_key;
	const char *peer;			/* the client's address: one per connection */
	const char *status;			/* code name or "HANG" */
	int64_t		returned;		/* -1: not logged */
	const char *next_page_token;	/* NULL: not logged */
	const char *operation_id;	/* the operation answered; NULL: not logged */
	int			done;			/* the operation's done: 0, 1; -1: not logged */
	const char *message;		/* status message of an error, or NULL */
	const char *faults;			/* comma-separated fault kinds, or "" */
	const char *request_id;
	const char *service_account;	/* the caller's (issued token) or the
									 * one IAM exchanged a JWT for; NULL:
									 * not logged */
} EmuLogRecord;

extern void emu_log_open(const char *path);
extern void emu_log_close(void);
extern bool emu_log_enabled(void);
extern char *emu_log_format(const EmuLogRecord *rec);
extern void emu_log_write(const char *body, int64_t start_us, int64_t end_us,
						  bool cancelled);
extern void emu_json_string(EmuBuf *buf, const char *data, size_t len);
extern void emu_json_field(EmuBuf *buf, const char *name, const char *data,
						   size_t len);
extern void emu_json_field_str(EmuBuf *buf, const char *name,
							   const char *value);

/* in iam.c */
extern void emu_iam_add_service_account(const char *spec);
extern void emu_iam_add_sa_key(const char *spec);
extern void emu_iam_set_token_lifetime(const char *arg);
extern void emu_iam_set_jwt_clock_offset(const char *arg);
extern int64_t emu_iam_token_lifetime(void);
extern void emu_iam_check_config(const char *metadata_sa);
extern bool emu_iam_strict(void);
extern bool emu_iam_service_account_known(const char *id);
extern bool emu_iam_lookup_token(EmuBytes token, const EmuGrants **grants,
								 const char **sa);
extern const char *emu_iam_verify_jwt(const char *jwt, size_t len,
									  char *kid, size_t kid_size,
									  const char **sa);
extern bool emu_iam_jwt_kid(const char *jwt, size_t len, char *kid,
							size_t kid_size);
extern void emu_iam_issue_token(const char *sa, char *token, size_t size,
								int64_t *expires_at);
extern int	emu_iam_summary(int *nkeys);

/* in metadata.c */
extern void emu_metadata_set_mode(const char *arg);
extern int	emu_metadata_start(const char *listen_addr, const char *sa);

/* in operations.c */

/* What an operation changes. */
typedef enum EmuOpKind
{
	EMU_OP_DELETE_BACKUP,		/* BackupService.Delete of target */
	EMU_OP_BACKUP_CLUSTER		/* ClusterService.Backup of target */
} EmuOpKind;

/*
 * An operation of a call that changes things.  It finishes at due_us
 * (monotonic), when its change is made (or, with error_code not OK, not);
 * done, modified_at and the outcome change then.
 */
typedef struct EmuOperation
{
	char		id[21];			/* "mdb" and 17 of [a-z0-9] */
	EmuOpKind	kind;
	char	   *target;			/* backup id or cluster id */
	char	   *account;		/* created_by: the caller's account */
	char	   *idempotency_key;	/* NULL: none */
	EmuTimestamp created_at;
	EmuTimestamp modified_at;
	int64_t		due_us;
	bool		done;
	grpc_status_code error_code;	/* OK: succeeds; else fails so */
	char	   *error_message;
	const char *made_backup_id; /* a finished Backup's new backup */
} EmuOperation;

/* What the emulator knows of each kind (emu_op_kind). */
typedef struct EmuOpKindInfo
{
	const char *method;			/* "BackupService.Delete", ... */
	const char *description;	/* the Operation's description */
	const char *target;			/* "backup", "cluster" */
	const char *target_title;	/* "Backup", "Cluster" */
	const char *target_field;	/* "backup_id", "cluster_id" */
} EmuOpKindInfo;

extern const EmuOpKindInfo *emu_op_kind(EmuOpKind kind);
extern void emu_operations_set_duration(const char *arg);
extern const EmuOperation *emu_operation_start(EmuOpKind kind,
											   const char *target,
											   const char *account,
											   EmuBytes idempotency_key,
											   grpc_status_code error_code,
											   const char *error_message);
extern const EmuOperation *emu_operation_find(const char *id);
extern const EmuOperation *emu_operation_find_key(const char *account,
												  EmuBytes idempotency_key);
extern const EmuOperation *emu_operation_running(EmuOpKind kind,
												 const char *target);
extern void emu_operations_finish_due(void);
extern int64_t emu_operations_next_due_us(void);

/* in service.c */
extern void emu_service_add_token(const char *spec);
extern void emu_service_handle(const EmuRequest *req, EmuReply *reply);
extern void emu_reply_free(EmuReply *reply);
extern bool emu_method_known(const char *name);
extern void emu_service_set_preencoded(const char *arg);
extern void emu_service_set_preencoded_max(const char *arg);
extern int64_t emu_service_preencode(size_t *bytes);
extern void emu_service_forget_pages(const char *folder_id,
									 const char *cluster_id);
extern void emu_service_add_read_only(const char *name);
extern void emu_service_check_read_only(void);

#endif							/* EMULATOR_H */

/*-------------------------------------------------------------------------
 *
 * rb_client.h
 *		  Plain-C gRPC client for the Managed Redis backup API.
 *
 * This library knows nothing about PostgreSQL: it never calls elog, palloc
 * or any backend function, never aborts, exits or prints.  Every outcome is
 * an RbStatus.  It is used by the foreign data wrapper, the client tests and
 * the benchmarks.
 *
 * Threading model: a single caller thread.  gRPC's own threads are created
 * with all asynchronous signals blocked, and gRPC is initialised lazily on
 * the first rb_channel_open(), never at load time, so it is safe to load the
 * library into a process that forks afterwards.  Why, and the other facts
 * about gRPC C core inside a PostgreSQL backend that shaped this library:
 * docs/grpc-in-postgres.md.
 *
 * Calls: rb_call_start() sends a request and returns at once; several calls
 * may be in flight on one channel (they share the channel's completion
 * queue).  rb_call_wait() waits for one call, rb_channel_wait_any() for
 * whichever of the channel's calls completes first, both in slices of at
 * most 100 ms, asking the caller's give-up hook between slices;
 * rb_call_finish() decodes the reply through the caller's protobuf-c
 * allocator and frees the call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RB_CLIENT_H
#define RB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "yandex/cloud/mdb/redis/v1/backup.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster_service.pb-c.h"
#include "yandex/cloud/iam/v1/iam_token_service.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder_service.pb-c.h"
#include "yandex/cloud/operation/operation.pb-c.h"
#include "yandex/cloud/operation/operation_service.pb-c.h"

#ifndef RB_VERSION
#error "RB_VERSION (the extension version) must be defined by the build"
#endif
#define RB_CLIENT_VERSION RB_VERSION
#define RB_USER_AGENT "redis_backup_fdw/" RB_CLIENT_VERSION

/* Defaults applied when an RbChannelOptions field is 0. */
#define RB_DEFAULT_MAX_RECEIVE_BYTES (16 * 1024 * 1024)
#define RB_DEFAULT_KEEPALIVE_MS 30000

/*
 * Outcome codes.  0..16 are the gRPC status codes with their gRPC numbers;
 * codes from 100 up are local outcomes that never came from the server.
 */
typedef enum RbCode
{
	RB_OK = 0,
	RB_CANCELLED = 1,
	RB_UNKNOWN = 2,
	RB_INVALID_ARGUMENT = 3,
	RB_DEADLINE_EXCEEDED = 4,
	RB_NOT_FOUND = 5,
	RB_ALREADY_EXISTS = 6,
	RB_PERMISSION_DENIED = 7,
	RB_RESOURCE_EXHAUSTED = 8,
	RB_FAILED_PRECONDITION = 9,
	RB_ABORTED = 10,
	RB_OUT_OF_RANGE = 11,
	RB_UNIMPLEMENTED = 12,
	RB_INTERNAL = 13,
	RB_UNAVAILABLE = 14,
	RB_DATA_LOSS = 15,
	RB_UNAUTHENTICATED = 16,

	RB_LOCAL_GAVE_UP = 100,		/* the give-up hook said stop; call cancelled */
	RB_LOCAL_BAD_REPLY,			/* reply could not be decoded */
	RB_LOCAL_NO_MEMORY,			/* an allocation failed */
	RB_LOCAL_BAD_OPTION,		/* bad target, CA text or other option */
	RB_LOCAL_CALL_FAILED,		/* gRPC refused to start the call */
	RB_LOCAL_REPLY_TOO_LARGE,	/* reply over max_receive_bytes */
	RB_LOCAL_TIMED_OUT			/* rb_channel_wait_any_for: nothing completed
								 * in time */
} RbCode;

/* Largest message and request id kept in a status (longer ones truncated). */
#define RB_STATUS_MESSAGE_LEN 512
#define RB_REQUEST_ID_LEN 80

typedef struct RbStatus
{
	RbCode		code;
	char		message[RB_STATUS_MESSAGE_LEN];	/* server's or local text */
	char		request_id[RB_REQUEST_ID_LEN];	/* reply's x-request-id, or "" */
	char		client_request_id[40];	/* the uuid we sent, or "" */
} RbStatus;

/*
 * The remote methods.  Everything the library knows about each (name, path,
 * message types, key field, listing or not, mutating or not) is in one
 * table in rb_client.c; the functions below read it.
 */
typedef enum RbMethod
{
	RB_METHOD_BACKUP_GET,		/* BackupService.Get: GetBackupRequest -> Backup */
	RB_METHOD_BACKUP_LIST,		/* BackupService.List: ListBackupsRequest ->
								 * ListBackupsResponse */
	RB_METHOD_CLUSTER_LIST_BACKUPS, /* ClusterService.ListBackups:
									 * ListClusterBackupsRequest ->
									 * ListClusterBackupsResponse */
	RB_METHOD_FOLDER_LIST,		/* resourcemanager FolderService.List:
								 * ListFoldersRequest -> ListFoldersResponse */
	RB_METHOD_IAM_TOKEN_CREATE, /* IamTokenService.Create:
								 * CreateIamTokenRequest ->
								 * CreateIamTokenResponse; called without a
								 * token */
	RB_METHOD_CLUSTER_LIST,		/* ClusterService.List: ListClustersRequest
								 * -> ListClustersResponse */
	RB_METHOD_CLUSTER_GET,		/* ClusterService.Get: GetClusterRequest ->
								 * Cluster */
	RB_METHOD_BACKUP_DELETE,	/* BackupService.Delete: DeleteBackupRequest
								 * -> Operation; mutating */
	RB_METHOD_CLUSTER_BACKUP,	/* ClusterService.Backup:
								 * BackupClusterRequest -> Operation;
								 * mutating */
	RB_METHOD_OPERATION_GET,	/* OperationService.Get: GetOperationRequest
								 * -> Operation */
	RB_NUM_METHODS
} RbMethod;

typedef struct RbChannelOptions
{
	const char *target;			/* "host:port", required */
	bool		plaintext;		/* true: no TLS (tests only) */
	const char *ca_pem;			/* PEM text of CAs to trust; NULL: system
								 * roots */
	int			max_receive_bytes;	/* 0: RB_DEFAULT_MAX_RECEIVE_BYTES */
	int			keepalive_ms;	/* 0: RB_DEFAULT_KEEPALIVE_MS */
} RbChannelOptions;

typedef struct RbChannel RbChannel;
typedef struct RbCall RbCall;

/*
 * Give-up hook: called between wait slices (at most 100 ms apart).  Return
 * true to stop waiting (rb_call_wait then cancels the call it waits for;
 * rb_channel_wait_any cancels nothing).  It must not longjmp.
 */
typedef bool (*RbGiveUpHook) (void *arg);

/* "OK", "UNAVAILABLE", ..., "GAVE_UP", "BAD_REPLY", ... */
extern const char *rb_code_name(RbCode code);

/*
 * "BackupService.Get", "BackupService.List", "ClusterService.ListBackups",
 * "FolderService.List", "IamTokenService.Create", "ClusterService.List",
 * "ClusterService.Get", "BackupService.Delete", "ClusterService.Backup",
 * "OperationService.Get"; "unknown method" for a value that is no RbMethod.
 */
extern const char *rb_method_name(RbMethod method);

/*
 * Full gRPC path, e.g. "/yandex.cloud.mdb.redis.v1.BackupService/Get";
 * NULL for a value that is no RbMethod.
 */
extern const char *rb_method_path(RbMethod method);

/*
 * Name of the request field that holds the method's key: "backup_id"
 * (BackupService.Get, BackupService.Delete), "folder_id"
 * (BackupService.List, ClusterService.List), "cluster_id"
 * (ClusterService.ListBackups, ClusterService.Get, ClusterService.Backup),
 * "cloud_id", "operation_id"; NULL for IamTokenService.Create (and for a
 * value that is no RbMethod).
 */
extern const char *rb_method_key_field(RbMethod method);

/*
 * Does the method list a page (BACKUP_LIST, CLUSTER_LIST_BACKUPS,
 * FOLDER_LIST, CLUSTER_LIST)?  Such a method's request has its key field, page_size and
 * page_token; its reply a repeated field of items and next_page_token.
 */
extern bool rb_method_is_listing(RbMethod method);

/*
 * Does the method change things (BACKUP_DELETE, CLUSTER_BACKUP)?  Such a
 * method answers a yandex.cloud.operation.Operation, to be followed with
 * OperationService.Get, and should be sent with an idempotency key.
 */
extern bool rb_method_is_mutating(RbMethod method);

/* Descriptors of the method's request and reply messages, or NULL. */
extern const ProtobufCMessageDescriptor *rb_method_request_descriptor(RbMethod method);
extern const ProtobufCMessageDescriptor *rb_method_reply_descriptor(RbMethod method);

/*
 * Listing a page, the same way for every listing method.
 *
 * RbListRequest has room for the request of any listing method.
 * rb_list_request() builds in *req the request of a listing method: key in
 * its key field (rb_method_key_field), page_size, and page_token ("" or NULL
 * for the first page).  Strings are borrowed, not copied: they must outlive
 * the call's start.  Returns &req->base, or NULL when method is not a
 * listing.
 *
 * rb_list_request_set_filter() then sets the request's "filter" field, for
 * the listings whose request has one (CLUSTER_LIST: the API documents
 * name="NAME" only; FOLDER_LIST: the same form).  filter is borrowed, like
 * the key; NULL or "" sends no filter.  Returns false, changing nothing,
 * when req is NULL or the method's request has no filter field (so a
 * caller can ask rb_method_has_filter() first).
 */
typedef union RbListRequest
{
	ProtobufCMessage base;
	Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest folder;
	Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest cluster;
	Yandex__Cloud__Resourcemanager__V1__ListFoldersRequest cloud;
	Yandex__Cloud__Mdb__Redis__V1__ListClustersRequest clusters;
} RbListRequest;

extern const ProtobufCMessage *rb_list_request(RbListRequest *req,
											   RbMethod method,
											   const char *key,
											   int64_t page_size,
											   const char *page_token);
extern bool rb_method_has_filter(RbMethod method);
extern bool rb_list_request_set_filter(RbListRequest *req, RbMethod method,
									   const char *filter);

/*
 * A decoded page of a listing method's reply.  Everything points into the
 * reply and lives as long as it does.
 */
typedef struct RbListPage
{
	void	  **items;			/* Backup ** (BackupService.List,
								 * ClusterService.ListBackups), Cluster **
								 * (ClusterService.List) or Folder **
								 * (FolderService.List) */
	size_t		n_items;
	const char *next_page_token;	/* never NULL; "" on the last page */
} RbListPage;

/*
 * Fill *page with the items and next token of reply, a decoded reply of
 * listing method.  Returns false when method is not a listing, reply is
 * NULL or of another type.
 */
extern bool rb_list_reply_page(RbMethod method, const ProtobufCMessage *reply,
							   RbListPage *page);

/*
 * Validation rules, exported so that the FDW's option validator refuses
 * exactly what rb_channel_open() and rb_call_start() refuse.
 *
 * rb_target_is_valid: "host:port" and nothing else.  The host is a name
 * (dot-separated labels of ASCII letters, digits, hyphens and underscores,
 * 1 to 63 each, none beginning or ending with a hyphen; at most 253
 * characters), an IPv4 address in dotted decimal (a name of digits and dots
 * only must be one), or an IPv6 address in brackets ("[::1]"); the port is
 * decimal digits only (no sign, no spaces) in 1..65535.  So no gRPC target
 * scheme ("unix:", "dns:///", "ipv4:"), no URI, no user part, no second
 * port: gRPC and libcurl get a plain host and port.
 *
 * rb_token_is_valid: non-empty and printable ASCII without space (bytes
 * 0x21..0x7E only): what may travel after "Bearer " in a metadata value.
 * rb_call_start() takes NULL or "" as "no token" and refuses any other token
 * this says false to.
 *
 * rb_ca_pem_is_valid: the text holds "-----BEGIN CERTIFICATE-----".
 * rb_channel_open() checks it when TLS is on and ca_pem is not NULL.
 */
extern bool rb_target_is_valid(const char *target);
extern bool rb_token_is_valid(const char *token);
extern bool rb_ca_pem_is_valid(const char *pem);

/*
 * Open a channel.  Initialises gRPC on first use (with signals blocked).
 * Returns NULL and fills *status on failure (e.g. RB_LOCAL_BAD_OPTION).
 * Connecting is lazy: a bad host shows up as UNAVAILABLE on the first call.
 */
extern RbChannel *rb_channel_open(const RbChannelOptions *options,
								  RbStatus *status);

/*
 * Close a channel: cancels every call still in flight on it, waits for their
 * completions, frees everything.  Calls of this channel must not be used
 * afterwards.
 */
extern void rb_channel_close(RbChannel *channel);

/*
 * Start a call.  request is of the method's request type
 * (rb_method_request_descriptor).  token, when not NULL or "", is sent as
 * "authorization: Bearer <token>" (and must pass rb_token_is_valid).
 * idempotency_key, when not NULL, is sent as "idempotency-key: <key>": the
 * service treats calls with the same key as one request, so a mutating
 * call retried with its key changes things once.  It must be a uuid as
 * rb_uuid_generate writes them (36 characters, lowercase hex digits and
 * dashes), else the call is refused with RB_LOCAL_BAD_OPTION.  A fresh uuid
 * is sent as x-client-request-id; *status carries it on return.
 * timeout_ms > 0 is the call's deadline.  Returns NULL and fills *status
 * when the call could not be started.
 */
extern RbCall *rb_call_start(RbChannel *channel, RbMethod method,
							 const ProtobufCMessage *request,
							 const char *token, const char *idempotency_key,
							 int timeout_ms, RbStatus *status);

/* Has the call's completion arrived?  Never blocks. */
extern bool rb_call_is_done(const RbCall *call);

/*
 * Wait until call has completed.  Completions of other calls of the same
 * channel that arrive meanwhile are recorded for them.  Between slices of at
 * most 100 ms, give_up(arg) is asked (when give_up is not NULL); when it says
 * true, the call is cancelled and its completion drained, and false is
 * returned with status RB_LOCAL_GAVE_UP.  Returns true once the call is done
 * (whatever its outcome, which rb_call_finish reports).  Either way the call
 * counts as collected: rb_channel_wait_any() will not return it.
 */
extern bool rb_call_wait(RbCall *call, RbGiveUpHook give_up, void *arg,
						 RbStatus *status);

/*
 * A caller's pointer kept with the call (NULL until set), e.g. the slot of
 * a scan that the call belongs to.
 */
extern void rb_call_set_tag(RbCall *call, void *tag);
extern void *rb_call_tag(const RbCall *call);

/*
 * Wait until some call of channel that is neither abandoned nor collected
 * has completed, and return it; the caller then rb_call_finish()es it.  A
 * call counts as collected once rb_channel_wait_any() has returned it or
 * rb_call_wait() has returned for it, so each call is returned at most
 * once.  A call that had already completed before the wait (its completion
 * recorded during another wait) is returned at once, without waiting.
 *
 * Waits in slices of at most 100 ms, asking give_up(arg) (when not NULL)
 * between slices; when it says true, returns NULL with status
 * RB_LOCAL_GAVE_UP and cancels nothing (the caller decides: abandon the
 * calls, or wait again).  Returns NULL with RB_LOCAL_BAD_OPTION when the
 * channel has no such call completed or in flight.  On a returned call,
 * *status is RB_OK with the call's client request id; its outcome is what
 * rb_call_finish() reports.
 */
extern RbCall *rb_channel_wait_any(RbChannel *channel, RbGiveUpHook give_up,
								   void *arg, RbStatus *status);

/*
 * rb_channel_wait_any, waiting at most timeout_ms: 0 only collects a call
 * that has already completed (polling the queue without waiting), a
 * negative timeout_ms waits as long as rb_channel_wait_any.  Nothing
 * completed in time: NULL with status RB_LOCAL_TIMED_OUT.  A caller that
 * waits on several channels, or also for a timer of its own, uses it.
 */
extern RbCall *rb_channel_wait_any_for(RbChannel *channel, int timeout_ms,
									   RbGiveUpHook give_up, void *arg,
									   RbStatus *status);

/*
 * Collect a completed call (rb_call_wait must have returned true, or
 * rb_call_is_done be true).  On RB_OK returns the reply unpacked with
 * allocator (NULL: protobuf-c's default malloc allocator), to be freed with
 * protobuf_c_message_free_unpacked(reply, allocator) or by the caller's
 * arena.  Otherwise returns NULL with *status set (gRPC status, or
 * RB_LOCAL_BAD_REPLY when the bytes do not decode).  *reply_bytes, when not
 * NULL, receives the size of the serialized reply.  Always frees the call.
 */
extern ProtobufCMessage *rb_call_finish(RbCall *call,
										ProtobufCAllocator *allocator,
										RbStatus *status,
										size_t *reply_bytes);

/*
 * rb_call_finish, without decoding: on RB_OK returns true with the
 * serialized reply copied into (*data)[0..*len), allocated with
 * allocator->alloc, for rb_reply_decode() later.  Otherwise returns false
 * with *status set.  Always frees the call.  A caller that must start its
 * next call at once (a listing's next page, by rb_reply_next_page_token)
 * decodes later, when the reply is used and its bytes are still in cache.
 */
extern bool rb_call_finish_bytes(RbCall *call, ProtobufCAllocator *allocator,
								 uint8_t **data, size_t *len,
								 RbStatus *status);

/*
 * Decode the reply of method from data[0..len) as rb_call_finish does: the
 * reply, or NULL with status RB_LOCAL_BAD_REPLY (and a message saying why).
 */
extern ProtobufCMessage *rb_reply_decode(RbMethod method, const uint8_t *data,
										 size_t len,
										 ProtobufCAllocator *allocator,
										 RbStatus *status);

/*
 * The next_page_token of a listing's serialized reply, read without
 * decoding the rest: true with (*token)[0..*token_len) pointing into data
 * (no terminating NUL; length 0 when absent), false when the bytes are not
 * a well-formed message at the top level or the method is no listing.
 */
extern bool rb_reply_next_page_token(RbMethod method, const uint8_t *data,
									 size_t len, const uint8_t **token,
									 size_t *token_len);

/*
 * Give up a call without waiting: cancels it and returns at once.  The
 * channel frees it when its completion arrives (during a later wait on the
 * channel, or in rb_channel_close).  Safe on a completed call too.  Meant for
 * error paths that must not block.
 */
extern void rb_call_abandon(RbCall *call);

/*
 * Convenience: start, wait and finish one call.
 */
extern ProtobufCMessage *rb_call_unary(RbChannel *channel, RbMethod method,
									   const ProtobufCMessage *request,
									   const char *token,
									   const char *idempotency_key,
									   int timeout_ms,
									   RbGiveUpHook give_up, void *arg,
									   ProtobufCAllocator *allocator,
									   RbStatus *status,
									   size_t *reply_bytes);

/*
 * Write a fresh random (version 4) uuid, lowercase, and its NUL into out:
 * the client request ids' source, also for idempotency keys.
 */
extern void rb_uuid_generate(char out[37]);

#endif							/* RB_CLIENT_H */

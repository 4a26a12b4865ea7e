/*-------------------------------------------------------------------------
 *
 * rb_client.c
 *		  Plain-C gRPC client for the Managed Redis backup API.
 *
 * See rb_client.h for the contract.  This file never calls PostgreSQL
 * functions, never aborts, exits or prints: every outcome goes into an
 * RbStatus.  Facts about gRPC C core that shaped it are collected in
 * docs/grpc-in-postgres.md; in short:
 *
 * - gRPC is initialised lazily, in the process that uses it, on the first
 *	 rb_channel_open().  A process that forks after that cannot use gRPC in
 *	 the child; rb_channel_open() refuses there instead of hanging.
 * - Every entry into gRPC that may start a thread runs with all asynchronous
 *	 signals blocked, so that gRPC's threads inherit a mask that keeps the
 *	 host's signal handlers on the caller's thread.  Waiting is done in
 *	 slices of at most 100 ms, also with signals blocked: a signal that
 *	 arrives meanwhile stays pending and is handled by the caller's thread
 *	 when the slice ends.
 * - gRPC's log output is dropped (it may quote metadata, hence tokens)
 *	 unless RB_CLIENT_GRPC_LOG=stderr is set in the environment, in which
 *	 case it is written to file descriptor 2 with write(2) only, less every
 *	 line that mentions the authorization header.
 *
 * Replies are decoded by rb_decode_reply() (rb_wire.c, fuzzed by
 * test/fuzz/fuzz_reply.c): unpacked with protobuf-c through the caller's
 * allocator, then checked with rb_wire_strings_ok(): a string holding a
 * NUL byte, which protobuf-c would silently cut short, makes the reply a
 * RB_LOCAL_BAD_REPLY.
 *
 * Each channel owns one completion queue.  A call is one batch of six
 * operations tagged with its RbCall; whichever call's tag comes out of the
 * queue is marked done, so several calls can be in flight at once.
 *
 * Each channel bounds gRPC's reconnect backoff (RB_RECONNECT_*), so that a
 * channel that saw the server down recovers within about a second of the
 * server coming back.
 *
 * Every fact about a remote method is in one table, rb_methods[].
 *
 * src/client/rb_client.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "rb_client.h"
#include "rb_wire.h"

/* How gRPC words the failure of a reply over the receive limit. */
#define RB_GRPC_TOO_LARGE_TEXT "Received message larger than max"

/* Longest host name of a target (a DNS name's limit). */
#define RB_MAX_HOST_LENGTH 253

/* Longest wait on the completion queue before asking the give-up hook. */
#define RB_WAIT_SLICE_MS 100

/*
 * Metadata we send: authorization (optional), idempotency-key (optional) and
 * x-client-request-id.
 */
#define RB_MAX_SEND_METADATA 3

/* Length of a uuid's text, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
#define RB_UUID_LEN 36

/* Number of operations in a call's batch. */
#define RB_CALL_OPS 6

/*
 * Reconnect backoff of a channel (docs/grpc-in-postgres.md, "Reconnecting").
 * gRPC's defaults let the wait between connection attempts grow from 1 s by
 * 1.6 times per failure up to 120 s: a backend whose channel saw the server
 * down for a minute would go on failing (UNAVAILABLE at once, the channel
 * being in TRANSIENT_FAILURE) for up to two minutes after the server came
 * back.  We retry from 100 ms and never wait more than 1 s between attempts;
 * that is at most one connection attempt a second per idle channel while
 * the server is down, which is cheap.
 *
 * GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is, despite its name, the shortest time
 * gRPC core gives one connection attempt (TCP connect and TLS handshake) to
 * complete; we keep gRPC's default of 20 s but set it explicitly, so that
 * nobody lowers it thinking it is a backoff.
 */
#define RB_RECONNECT_INITIAL_BACKOFF_MS 100
#define RB_RECONNECT_MAX_BACKOFF_MS 1000
#define RB_CONNECT_MIN_TIMEOUT_MS 20000

/*
 * gRPC's "backup poller" interval, in ms, as the text of an environment
 * variable gRPC reads once, in grpc_init().  A connection attempt only makes
 * progress while somebody polls: a call waiting in rb_call_wait does, but
 * during an outage every call fails at once (the channel is in
 * TRANSIENT_FAILURE), so between calls only gRPC's backup poller notices
 * that a reconnect attempt succeeded, by default every 5 s: recovery would
 * take 5 to 10 s whatever the backoff.  We set 200 ms for grpc_init() when
 * the environment does not say otherwise, and restore the environment
 * after; docs/grpc-in-postgres.md, "Reconnecting".
 */
#define RB_BACKUP_POLL_ENV "GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS"
#define RB_BACKUP_POLL_INTERVAL_MS "200"

struct RbChannel
{
	grpc_channel *channel;
	grpc_completion_queue *cq;

	/* every call started on this channel and not yet freed */
	RbCall	   *calls;
	int			npending;		/* calls whose tag has not come back yet */
};

struct RbCall
{
	RbChannel  *channel;
	RbCall	   *prev;			/* links in channel->calls */
	RbCall	   *next;

	RbMethod	method;
	grpc_call  *call;

	void	   *tag;			/* the caller's, see rb_call_set_tag */

	/* state */
	bool		done;			/* the batch's tag has come back */
	bool		collected;		/* handed to the caller by a wait: never
								 * returned by rb_channel_wait_any */
	bool		batch_ok;		/* ... with success set */
	bool		abandoned;		/* free on completion, nobody will collect */
	bool		gave_up;		/* cancelled because the give-up hook said so */

	/* what we sent; kept until the call is freed */
	grpc_metadata send_metadata[RB_MAX_SEND_METADATA];
	size_t		nsend_metadata;
	grpc_byte_buffer *send_buffer;
	char		client_request_id[40];

	/* what we receive */
	grpc_metadata_array recv_initial_metadata;
	grpc_metadata_array recv_trailing_metadata;
	grpc_byte_buffer *recv_buffer;
	grpc_status_code grpc_status;
	grpc_slice	status_details;
};

/* Process-wide gRPC state. */
static bool rb_grpc_initialized = false;
static pid_t rb_grpc_init_pid = 0;
static bool rb_grpc_log_stderr = false;

static const char *const rb_grpc_code_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED"
};


/*
 * rb_status_set
 *		Fill a status with a code and a message (printf style), clearing the
 *		request ids.
 */
static void
rb_status_set(RbStatus *status, RbCode code, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
rb_status_set(RbStatus *status, RbCode code, const char *fmt,...)
{
	va_list		ap;

	status->code = code;
	status->request_id[0] = '\0';
	status->client_request_id[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(status->message, sizeof(status->message), fmt, ap);
	va_end(ap);
}

/*
 * rb_status_set_call
 *		rb_status_set, then the client request id of call.
 */
static void
rb_status_set_call(RbStatus *status, const RbCall *call, RbCode code,
				   const char *fmt,...)
__attribute__((format(printf, 4, 5)));

static void
rb_status_set_call(RbStatus *status, const RbCall *call, RbCode code,
				   const char *fmt,...)
{
	va_list		ap;

	status->code = code;
	status->request_id[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(status->message, sizeof(status->message), fmt, ap);
	va_end(ap);
	memcpy(status->client_request_id, call->client_request_id,
		   sizeof(status->client_request_id));
}

/*
 * rb_copy_text
 *		Copy len bytes of src into dst (of size dstsize) as a NUL-terminated
 *		string.  Stops at an embedded NUL; when the text does not fit, cuts it
 *		at a UTF-8 character boundary.  When ascii_only, bytes outside
 *		printable ASCII become '?'.
 */
static void
rb_copy_text(char *dst, size_t dstsize, const char *src, size_t len,
			 bool ascii_only)
{
	const void *nul;
	size_t		i;

	if (dstsize == 0)
		return;
	nul = memchr(src, '\0', len);
	if (nul != NULL)
		len = (size_t) ((const char *) nul - src);
	if (len >= dstsize)
	{
		len = dstsize - 1;
		/* do not end in the middle of a multibyte character */
		while (len > 0 && (((unsigned char) src[len]) & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	if (ascii_only)
	{
		for (i = 0; i < len; i++)
		{
			unsigned char c = (unsigned char) dst[i];

			if (c < 0x20 || c > 0x7E)
				dst[i] = '?';
		}
	}
}

/*
 * rb_block_signals
 *		Block every signal except the synchronous ones (SIGSEGV, SIGBUS,
 *		SIGFPE, SIGILL) in the calling thread, saving the old mask.  Any
 *		thread gRPC creates meanwhile inherits this mask, so PostgreSQL's
 *		handlers never run on a gRPC thread (docs/grpc-in-postgres.md,
 *		"Threads and signals").
 */
static void
rb_block_signals(sigset_t *old)
{
	sigset_t	all;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

/*
 * rb_restore_signals
 *		Restore the mask saved by rb_block_signals.  Signals that arrived in
 *		between are delivered now, to this thread.
 */
static void
rb_restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * rb_grpc_log
 *		gRPC log callback.  Runs on any thread, gRPC's own included: it only
 *		ever calls write(2), and by default drops the message
 *		(docs/grpc-in-postgres.md, "Logging").
 */
static void
rb_grpc_log(gpr_log_func_args *args)
{
	char		buf[1024];
	int			len;
	ssize_t		rc;

	if (!rb_grpc_log_stderr || args == NULL || args->message == NULL)
		return;
	/* gRPC's http tracing prints headers: never let a token through. */
	if (strcasestr(args->message, "authorization") != NULL ||
		strcasestr(args->message, "bearer") != NULL)
		return;
	len = snprintf(buf, sizeof(buf), "grpc %s: %s\n",
				   gpr_log_severity_string(args->severity), args->message);
	if (len < 0)
		return;
	if ((size_t) len >= sizeof(buf))
	{
		len = sizeof(buf) - 1;
		buf[len - 1] = '\n';
	}
	rc = write(2, buf, (size_t) len);
	(void) rc;
}

/*
 * rb_grpc_ensure_init
 *		Initialise gRPC on first use, with signals blocked.  Returns false and
 *		fills *status when gRPC was initialised by a parent process before a
 *		fork: gRPC does not work in such a child (docs/grpc-in-postgres.md,
 *		"Initialisation and fork").
 */
static bool
rb_grpc_ensure_init(RbStatus *status)
{
	sigset_t	old;
	const char *log;
	bool		set_poll;

	if (rb_grpc_initialized)
	{
		if (rb_grpc_init_pid != getpid())
		{
			rb_status_set(status, RB_LOCAL_CALL_FAILED,
						  "gRPC was initialised in a parent process before fork; it cannot be used in this process");
			return false;
		}
		return true;
	}

	log = getenv("RB_CLIENT_GRPC_LOG");
	rb_grpc_log_stderr = (log != NULL && strcmp(log, "stderr") == 0);
	gpr_set_log_function(rb_grpc_log);

	/* see RB_BACKUP_POLL_INTERVAL_MS; a value the user set is kept */
	set_poll = getenv(RB_BACKUP_POLL_ENV) == NULL &&
		setenv(RB_BACKUP_POLL_ENV, RB_BACKUP_POLL_INTERVAL_MS, 0) == 0;

	rb_block_signals(&old);
	grpc_init();
	rb_restore_signals(&old);

	if (set_poll)
		unsetenv(RB_BACKUP_POLL_ENV);

	rb_grpc_initialized = true;
	rb_grpc_init_pid = getpid();
	return true;
}

/*
 * rb_code_name
 *		Name of an outcome code: "OK", "UNAVAILABLE", ..., "GAVE_UP", ...
 */
const char *
rb_code_name(RbCode code)
{
	if ((int) code >= 0 &&
		(size_t) code < sizeof(rb_grpc_code_names) / sizeof(rb_grpc_code_names[0]))
		return rb_grpc_code_names[code];
	switch (code)
	{
		case RB_LOCAL_GAVE_UP:
			return "GAVE_UP";
		case RB_LOCAL_BAD_REPLY:
			return "BAD_REPLY";
		case RB_LOCAL_NO_MEMORY:
			return "NO_MEMORY";
		case RB_LOCAL_BAD_OPTION:
			return "BAD_OPTION";
		case RB_LOCAL_CALL_FAILED:
			return "CALL_FAILED";
		case RB_LOCAL_REPLY_TOO_LARGE:
			return "REPLY_TOO_LARGE";
		case RB_LOCAL_TIMED_OUT:
			return "TIMED_OUT";
		default:
			break;
	}
	return "UNKNOWN_CODE";
}

/*
 * One remote method: every fact the library knows about it.
 */
typedef struct RbMethodInfo
{
	const char *name;			/* "Service.Method" */
	const char *path;			/* the gRPC path */
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *reply;
	const char *key_field;		/* request field holding the key, or NULL */
	const char *items_field;	/* listing: the reply's repeated field of
								 * items; NULL: not a listing */
	bool		mutating;		/* changes things: answers an Operation */
} RbMethodInfo;

/*
 * Listing methods' requests also have "page_size" (int64) and "page_token"
 * (string), their replies "next_page_token" (string); rb_list_request and
 * rb_list_reply_page find them by name, through the descriptors.
 */
#define RB_PAGE_SIZE_FIELD "page_size"
#define RB_PAGE_TOKEN_FIELD "page_token"
#define RB_NEXT_PAGE_TOKEN_FIELD "next_page_token"

/*
 * Some listing requests also have a "filter" (string); rb_method_has_filter
 * and rb_list_request_set_filter find it the same way.
 */
#define RB_FILTER_FIELD "filter"

static const RbMethodInfo rb_methods[RB_NUM_METHODS] = {
	[RB_METHOD_BACKUP_GET] = {
		"BackupService.Get",
		"/yandex.cloud.mdb.redis.v1.BackupService/Get",
		&yandex__cloud__mdb__redis__v1__get_backup_request__descriptor,
		&yandex__cloud__mdb__redis__v1__backup__descriptor,
		"backup_id", NULL, false
	},
	[RB_METHOD_BACKUP_LIST] = {
		"BackupService.List",
		"/yandex.cloud.mdb.redis.v1.BackupService/List",
		&yandex__cloud__mdb__redis__v1__list_backups_request__descriptor,
		&yandex__cloud__mdb__redis__v1__list_backups_response__descriptor,
		"folder_id", "backups", false
	},
	[RB_METHOD_CLUSTER_LIST_BACKUPS] = {
		"ClusterService.ListBackups",
		"/yandex.cloud.mdb.redis.v1.ClusterService/ListBackups",
		&yandex__cloud__mdb__redis__v1__list_cluster_backups_request__descriptor,
		&yandex__cloud__mdb__redis__v1__list_cluster_backups_response__descriptor,
		"cluster_id", "backups", false
	},
	[RB_METHOD_FOLDER_LIST] = {
		"FolderService.List",
		"/yandex.cloud.resourcemanager.v1.FolderService/List",
		&yandex__cloud__resourcemanager__v1__list_folders_request__descriptor,
		&yandex__cloud__resourcemanager__v1__list_folders_response__descriptor,
		"cloud_id", "folders", false
	},
	[RB_METHOD_IAM_TOKEN_CREATE] = {
		"IamTokenService.Create",
		"/yandex.cloud.iam.v1.IamTokenService/Create",
		&yandex__cloud__iam__v1__create_iam_token_request__descriptor,
		&yandex__cloud__iam__v1__create_iam_token_response__descriptor,
		NULL, NULL, false
	},
	[RB_METHOD_CLUSTER_LIST] = {
		"ClusterService.List",
		"/yandex.cloud.mdb.redis.v1.ClusterService/List",
		&yandex__cloud__mdb__redis__v1__list_clusters_request__descriptor,
		&yandex__cloud__mdb__redis__v1__list_clusters_response__descriptor,
		"folder_id", "clusters", false
	},
	[RB_METHOD_CLUSTER_GET] = {
		"ClusterService.Get",
		"/yandex.cloud.mdb.redis.v1.ClusterService/Get",
		&yandex__cloud__mdb__redis__v1__get_cluster_request__descriptor,
		&yandex__cloud__mdb__redis__v1__cluster__descriptor,
		"cluster_id", NULL, false
	},
	[RB_METHOD_BACKUP_DELETE] = {
		"BackupService.Delete",
		"/yandex.cloud.mdb.redis.v1.BackupService/Delete",
		&yandex__cloud__mdb__redis__v1__delete_backup_request__descriptor,
		&yandex__cloud__operation__operation__descriptor,
		"backup_id", NULL, true
	},
	[RB_METHOD_CLUSTER_BACKUP] = {
		"ClusterService.Backup",
		"/yandex.cloud.mdb.redis.v1.ClusterService/Backup",
		&yandex__cloud__mdb__redis__v1__backup_cluster_request__descriptor,
		&yandex__cloud__operation__operation__descriptor,
		"cluster_id", NULL, true
	},
	[RB_METHOD_OPERATION_GET] = {
		"OperationService.Get",
		"/yandex.cloud.operation.OperationService/Get",
		&yandex__cloud__operation__get_operation_request__descriptor,
		&yandex__cloud__operation__operation__descriptor,
		"operation_id", NULL, false
	},
};

/*
 * rb_method_info
 *		The table entry of method, or NULL when method is no RbMethod.
 */
static const RbMethodInfo *
rb_method_info(RbMethod method)
{
	if ((int) method < 0 || (int) method >= RB_NUM_METHODS)
		return NULL;
	return &rb_methods[method];
}

/*
 * rb_method_name
 *		Short name of a method, "Service.Method".
 */
const char *
rb_method_name(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info ? info->name : "unknown method";
}

/*
 * rb_method_path
 *		Full gRPC path of a method, or NULL for an unknown method.
 */
const char *
rb_method_path(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info ? info->path : NULL;
}

/*
 * rb_method_key_field
 *		Name of the request field holding the method's key, or NULL.
 */
const char *
rb_method_key_field(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info ? info->key_field : NULL;
}

/*
 * rb_method_is_listing
 *		Does the method list a page of items?
 */
bool
rb_method_is_listing(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info != NULL && info->items_field != NULL;
}

/*
 * rb_method_is_mutating
 *		Does the method change things (and answer an Operation)?
 */
bool
rb_method_is_mutating(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info != NULL && info->mutating;
}

/*
 * rb_method_request_descriptor
 *		Descriptor of a method's request message, or NULL.
 */
const ProtobufCMessageDescriptor *
rb_method_request_descriptor(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info ? info->request : NULL;
}

/*
 * rb_method_reply_descriptor
 *		Descriptor of a method's reply message, or NULL.
 */
const ProtobufCMessageDescriptor *
rb_method_reply_descriptor(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	return info ? info->reply : NULL;
}

/*
 * rb_message_field
 *		Descriptor of the field called name of a message of type desc, if it
 *		has that protobuf-c type and label; else NULL.
 */
static const ProtobufCFieldDescriptor *
rb_message_field(const ProtobufCMessageDescriptor *desc, const char *name,
				 ProtobufCType type, ProtobufCLabel label)
{
	const ProtobufCFieldDescriptor *field;

	if (desc == NULL || name == NULL)
		return NULL;
	field = protobuf_c_message_descriptor_get_field_by_name(desc, name);
	if (field == NULL || field->type != type || field->label != label ||
		(field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		return NULL;
	return field;
}

/* Address of a field's member in message msg. */
#define RB_FIELD_PTR(msg, offset) ((void *) ((char *) (msg) + (offset)))

/*
 * rb_list_request
 *		Build the request of a listing method.  See rb_client.h.
 */
const ProtobufCMessage *
rb_list_request(RbListRequest *req, RbMethod method, const char *key,
				int64_t page_size, const char *page_token)
{
	const RbMethodInfo *info = rb_method_info(method);
	const ProtobufCFieldDescriptor *key_f;
	const ProtobufCFieldDescriptor *size_f;
	const ProtobufCFieldDescriptor *token_f;

	if (req == NULL || info == NULL || info->items_field == NULL)
		return NULL;
	key_f = rb_message_field(info->request, info->key_field,
							 PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE);
	size_f = rb_message_field(info->request, RB_PAGE_SIZE_FIELD,
							  PROTOBUF_C_TYPE_INT64, PROTOBUF_C_LABEL_NONE);
	token_f = rb_message_field(info->request, RB_PAGE_TOKEN_FIELD,
							   PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE);
	/* the request types are fixed at build time: a test checks this */
	if (key_f == NULL || size_f == NULL || token_f == NULL ||
		info->request->sizeof_message > sizeof(RbListRequest))
		return NULL;

	protobuf_c_message_init(info->request, req);
	if (key != NULL)
		*(char **) RB_FIELD_PTR(req, key_f->offset) = (char *) key;
	*(int64_t *) RB_FIELD_PTR(req, size_f->offset) = page_size;
	if (page_token != NULL)
		*(char **) RB_FIELD_PTR(req, token_f->offset) = (char *) page_token;
	return &req->base;
}

/*
 * rb_list_filter_field
 *		The "filter" field of a listing method's request, or NULL.
 */
static const ProtobufCFieldDescriptor *
rb_list_filter_field(RbMethod method)
{
	const RbMethodInfo *info = rb_method_info(method);

	if (info == NULL || info->items_field == NULL)
		return NULL;
	return rb_message_field(info->request, RB_FILTER_FIELD,
							PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE);
}

/*
 * rb_method_has_filter
 *		Does the method's listing request have a filter field?
 */
bool
rb_method_has_filter(RbMethod method)
{
	return rb_list_filter_field(method) != NULL;
}

/*
 * rb_list_request_set_filter
 *		Set the filter of a request built by rb_list_request.  See
 *		rb_client.h.
 */
bool
rb_list_request_set_filter(RbListRequest *req, RbMethod method,
						   const char *filter)
{
	const ProtobufCFieldDescriptor *filter_f = rb_list_filter_field(method);
	const RbMethodInfo *info = rb_method_info(method);

	if (req == NULL || filter_f == NULL || req->base.descriptor != info->request)
		return false;
	*(char **) RB_FIELD_PTR(req, filter_f->offset) =
		(char *) (filter != NULL ? filter : protobuf_c_empty_string);
	return true;
}

/*
 * rb_list_reply_page
 *		The items and next page token of a listing method's reply.  See
 *		rb_client.h.
 */
bool
rb_list_reply_page(RbMethod method, const ProtobufCMessage *reply,
				   RbListPage *page)
{
	const RbMethodInfo *info = rb_method_info(method);
	const ProtobufCFieldDescriptor *items_f;
	const ProtobufCFieldDescriptor *token_f;
	const char *token;

	if (page == NULL)
		return false;
	page->items = NULL;
	page->n_items = 0;
	page->next_page_token = "";
	if (reply == NULL || info == NULL || info->items_field == NULL ||
		reply->descriptor != info->reply)
		return false;
	items_f = rb_message_field(info->reply, info->items_field,
							   PROTOBUF_C_TYPE_MESSAGE,
							   PROTOBUF_C_LABEL_REPEATED);
	token_f = rb_message_field(info->reply, RB_NEXT_PAGE_TOKEN_FIELD,
							   PROTOBUF_C_TYPE_STRING, PROTOBUF_C_LABEL_NONE);
	if (items_f == NULL || token_f == NULL)
		return false;

	page->n_items = *(const size_t *) RB_FIELD_PTR(reply, items_f->quantifier_offset);
	page->items = *(void **const *) RB_FIELD_PTR(reply, items_f->offset);
	token = *(const char *const *) RB_FIELD_PTR(reply, token_f->offset);
	page->next_page_token = token != NULL ? token : "";
	return true;
}

/*
 * rb_host_is_valid
 *		Is host[0..len) a host as rb_target_is_valid() takes it: a name of
 *		dot-separated labels (ASCII letters, digits, hyphens and
 *		underscores, 1 to 63 each, none beginning or ending with a hyphen),
 *		an IPv4 address in dotted decimal (a name of digits and dots only
 *		must be one), or an IPv6 address in brackets?
 */
static bool
rb_host_is_valid(const char *host, size_t len)
{
	char		buf[RB_MAX_HOST_LENGTH + 3];
	unsigned char addr[sizeof(struct in6_addr)];
	size_t		label = 0;
	bool		numeric = true;
	size_t		i;

	if (len == 0 || len > RB_MAX_HOST_LENGTH + 2)
		return false;
	memcpy(buf, host, len);
	buf[len] = '\0';

	if (buf[0] == '[')
	{
		if (len < 3 || buf[len - 1] != ']')
			return false;
		buf[len - 1] = '\0';
		return inet_pton(AF_INET6, buf + 1, addr) == 1;
	}
	if (len > RB_MAX_HOST_LENGTH)
		return false;

	for (i = 0; i < len; i++)
	{
		char		c = buf[i];

		if (c == '.')
		{
			if (label == 0 || buf[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if ((label == 0 && c == '-') || ++label > 63)
			return false;
		if (c < '0' || c > '9')
			numeric = false;
	}
	if (label == 0 || buf[len - 1] == '-')
		return false;
	if (numeric)
		return inet_pton(AF_INET, buf, addr) == 1;
	return true;
}

/*
 * rb_target_is_valid
 *		Is target "host:port": a host as rb_host_is_valid() takes it, and a
 *		port of decimal digits 1..65535?  Nothing else: no scheme or URI, no
 *		user, no second port.  See rb_client.h.
 */
bool
rb_target_is_valid(const char *target)
{
	const char *colon;
	const char *p;
	long		port = 0;

	if (target == NULL)
		return false;
	colon = strrchr(target, ':');
	if (colon == NULL || colon[1] == '\0' ||
		!rb_host_is_valid(target, colon - target))
		return false;
	for (p = colon + 1; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (*p - '0');
		if (port > 65535)
			return false;
	}
	return port > 0;
}

/*
 * rb_token_is_valid
 *		Can token travel after "Bearer " in a metadata value?  Non-empty,
 *		printable ASCII without space.  See rb_client.h.
 */
bool
rb_token_is_valid(const char *token)
{
	const unsigned char *p;

	if (token == NULL || token[0] == '\0')
		return false;
	for (p = (const unsigned char *) token; *p; p++)
	{
		if (*p < 0x21 || *p > 0x7E)
			return false;
	}
	return true;
}

/*
 * rb_ca_pem_is_valid
 *		Does the text hold a PEM certificate?
 */
bool
rb_ca_pem_is_valid(const char *pem)
{
	return pem != NULL && strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL;
}

/*
 * channel_options_are_valid
 *		Check a channel's options before touching gRPC.
 */
static bool
channel_options_are_valid(const RbChannelOptions *options, RbStatus *status)
{
	if (options == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no channel options given");
		return false;
	}
	if (!rb_target_is_valid(options->target))
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "invalid target \"%s\": expected host:port",
					  options->target ? options->target : "");
		return false;
	}
	if (options->max_receive_bytes < 0)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "invalid max_receive_bytes %d", options->max_receive_bytes);
		return false;
	}
	if (options->keepalive_ms < 0)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "invalid keepalive_ms %d", options->keepalive_ms);
		return false;
	}
	if (!options->plaintext && options->ca_pem != NULL &&
		!rb_ca_pem_is_valid(options->ca_pem))
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "CA text holds no PEM certificate");
		return false;
	}
	return true;
}

/* The channel arguments we set (channel_args_fill). */
#define RB_NUM_CHANNEL_ARGS 8

/*
 * channel_args_fill
 *		The channel arguments of a channel with these options into args
 *		(RB_NUM_CHANNEL_ARGS of them).
 */
static void
channel_args_fill(const RbChannelOptions *options, grpc_arg *args)
{
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = options->max_receive_bytes > 0 ?
		options->max_receive_bytes : RB_DEFAULT_MAX_RECEIVE_BYTES;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *) GRPC_ARG_KEEPALIVE_TIME_MS;
	args[1].value.integer = options->keepalive_ms > 0 ?
		options->keepalive_ms : RB_DEFAULT_KEEPALIVE_MS;
	args[2].type = GRPC_ARG_STRING;
	args[2].key = (char *) GRPC_ARG_PRIMARY_USER_AGENT_STRING;
	args[2].value.string = (char *) RB_USER_AGENT;
	/* the caller owns the retry policy */
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = (char *) GRPC_ARG_ENABLE_RETRIES;
	args[3].value.integer = 0;
	/* recover quickly after an outage: see RB_RECONNECT_MAX_BACKOFF_MS */
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = (char *) GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	args[4].value.integer = RB_RECONNECT_INITIAL_BACKOFF_MS;
	args[5].type = GRPC_ARG_INTEGER;
	args[5].key = (char *) GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[5].value.integer = RB_RECONNECT_MAX_BACKOFF_MS;
	args[6].type = GRPC_ARG_INTEGER;
	args[6].key = (char *) GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
	args[6].value.integer = RB_CONNECT_MIN_TIMEOUT_MS;
	args[7].type = GRPC_ARG_INTEGER;
	args[7].key = (char *) GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
	args[7].value.integer = args[0].value.integer;
}

/*
 * channel_create
 *		Create channel's gRPC channel and completion queue, with signals
 *		blocked so that the threads gRPC starts never take PostgreSQL's
 *		signals.  False when gRPC could not create them.
 */
static bool
channel_create(RbChannel *channel, const RbChannelOptions *options)
{
	grpc_arg	args[RB_NUM_CHANNEL_ARGS];
	grpc_channel_args channel_args;
	grpc_channel_credentials *creds;
	sigset_t	old;

	channel_args_fill(options, args);
	channel_args.num_args = RB_NUM_CHANNEL_ARGS;
	channel_args.args = args;

	rb_block_signals(&old);
	if (options->plaintext)
		creds = grpc_insecure_credentials_create();
	else
		creds = grpc_ssl_credentials_create(options->ca_pem, NULL, NULL, NULL);
	if (creds != NULL)
	{
		channel->channel = grpc_channel_create(options->target, creds,
											   &channel_args);
		grpc_channel_credentials_release(creds);
	}
	if (channel->channel != NULL)
		channel->cq = grpc_completion_queue_create_for_next(NULL);
	if (channel->cq == NULL && channel->channel != NULL)
	{
		grpc_channel_destroy(channel->channel);
		channel->channel = NULL;
	}
	rb_restore_signals(&old);
	return channel->channel != NULL;
}

/*
 * rb_channel_open
 *		Open a channel to options->target.  See rb_client.h.
 */
RbChannel *
rb_channel_open(const RbChannelOptions *options, RbStatus *status)
{
	RbStatus	dummy;
	RbChannel  *channel;

	if (status == NULL)
		status = &dummy;
	if (!channel_options_are_valid(options, status) ||
		!rb_grpc_ensure_init(status))
		return NULL;

	channel = malloc(sizeof(RbChannel));
	if (channel == NULL)
	{
		rb_status_set(status, RB_LOCAL_NO_MEMORY, "out of memory");
		return NULL;
	}
	memset(channel, 0, sizeof(RbChannel));
	if (!channel_create(channel, options))
	{
		free(channel);
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "could not create a channel to \"%s\"", options->target);
		return NULL;
	}

	rb_status_set(status, RB_OK, "%s", "");
	return channel;
}

/*
 * rb_call_free
 *		Release everything a call holds and unlink it from its channel.  The
 *		call's tag must have come back (or the call never been started).
 */
static void
rb_call_free(RbCall *call)
{
	RbChannel  *channel = call->channel;
	size_t		i;
	sigset_t	old;

	if (call->prev)
		call->prev->next = call->next;
	else if (channel->calls == call)
		channel->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;

	rb_block_signals(&old);
	if (call->call)
		grpc_call_unref(call->call);
	grpc_metadata_array_destroy(&call->recv_initial_metadata);
	grpc_metadata_array_destroy(&call->recv_trailing_metadata);
	if (call->recv_buffer)
		grpc_byte_buffer_destroy(call->recv_buffer);
	if (call->send_buffer)
		grpc_byte_buffer_destroy(call->send_buffer);
	grpc_slice_unref(call->status_details);
	for (i = 0; i < call->nsend_metadata; i++)
	{
		grpc_slice_unref(call->send_metadata[i].key);
		grpc_slice_unref(call->send_metadata[i].value);
	}
	rb_restore_signals(&old);

	free(call);
}

/*
 * rb_channel_poll
 *		Wait at most slice_ms (0: do not wait) for one completion on the
 *		channel's queue and record it for its call.  An abandoned call is
 *		freed on the spot.  Returns the call whose tag came back, or NULL.
 */
static RbCall *
rb_channel_poll(RbChannel *channel, int slice_ms)
{
	grpc_event	ev;
	gpr_timespec deadline;
	sigset_t	old;
	RbCall	   *call;

	/*
	 * gRPC rounds a deadline up to whole milliseconds: "now" would wait up
	 * to 1 ms for nothing.  A deadline in the past only does the work that
	 * is ready (reading what has arrived) and returns.
	 */
	if (slice_ms <= 0)
		deadline = gpr_inf_past(GPR_CLOCK_MONOTONIC);
	else
		deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
								gpr_time_from_millis(slice_ms, GPR_TIMESPAN));
	rb_block_signals(&old);
	ev = grpc_completion_queue_next(channel->cq, deadline, NULL);
	rb_restore_signals(&old);

	if (ev.type != GRPC_OP_COMPLETE || ev.tag == NULL)
		return NULL;

	call = (RbCall *) ev.tag;
	call->done = true;
	call->batch_ok = (ev.success != 0);
	channel->npending--;
	if (call->abandoned)
	{
		rb_call_free(call);
		return NULL;
	}
	return call;
}

/*
 * rb_call_cancel_and_drain
 *		Cancel a call in flight and wait until its tag comes back.  Other
 *		calls' completions are recorded meanwhile.  Cancelling is local, so
 *		this returns quickly; the hook is not asked again.
 */
static void
rb_call_cancel_and_drain(RbCall *call)
{
	sigset_t	old;

	if (call->done)
		return;
	rb_block_signals(&old);
	grpc_call_cancel(call->call, NULL);
	rb_restore_signals(&old);
	while (!call->done)
		(void) rb_channel_poll(call->channel, RB_WAIT_SLICE_MS);
}

/*
 * rb_channel_close
 *		Cancel every call still in flight, wait for their completions, free
 *		them and the channel.
 */
void
rb_channel_close(RbChannel *channel)
{
	RbCall	   *call;
	RbCall	   *next;
	sigset_t	old;
	grpc_event	ev;

	if (channel == NULL)
		return;

	/* cancel everything still in flight; completed calls just go */
	rb_block_signals(&old);
	for (call = channel->calls; call != NULL; call = call->next)
	{
		if (!call->done)
		{
			call->abandoned = true;
			grpc_call_cancel(call->call, NULL);
		}
	}
	rb_restore_signals(&old);

	while (channel->npending > 0)
		(void) rb_channel_poll(channel, RB_WAIT_SLICE_MS);

	for (call = channel->calls; call != NULL; call = next)
	{
		next = call->next;
		rb_call_free(call);
	}

	rb_block_signals(&old);
	grpc_channel_destroy(channel->channel);
	grpc_completion_queue_shutdown(channel->cq);
	do
	{
		ev = grpc_completion_queue_next(channel->cq,
										gpr_inf_future(GPR_CLOCK_MONOTONIC),
										NULL);
	} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	grpc_completion_queue_destroy(channel->cq);
	rb_restore_signals(&old);

	free(channel);
}

/*
 * rb_uuid_generate
 *		Write a random (version 4) uuid, lowercase, into buf.  Randomness
 *		comes from getrandom(), /dev/urandom, or as a last resort from the
 *		clock and the process id: a request id or an idempotency key needs
 *		to be unique, not secret.
 */
void
rb_uuid_generate(char buf[37])
{
	unsigned char b[16];
	size_t		got = 0;
	ssize_t		n;

	while (got < sizeof(b))
	{
		n = getrandom(b + got, sizeof(b) - got, GRND_NONBLOCK);
		if (n > 0)
			got += (size_t) n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got < sizeof(b))
	{
		int			fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
		{
			while (got < sizeof(b))
			{
				n = read(fd, b + got, sizeof(b) - got);
				if (n > 0)
					got += (size_t) n;
				else if (n < 0 && errno == EINTR)
					continue;
				else
					break;
			}
			close(fd);
		}
	}
	if (got < sizeof(b))
	{
		static uint64_t counter = 0;
		struct timespec ts;
		uint64_t	x;
		int			i;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec) ^
			((uint64_t) getpid() << 32) ^ (++counter * 0x9E3779B97F4A7C15u);
		for (i = 0; i < 16; i++)
		{
			/* splitmix64 step */
			uint64_t	z;

			x += 0x9E3779B97F4A7C15u;
			z = x;
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
			b[i] = (unsigned char) (z ^ (z >> 31));
		}
	}

	b[6] = (b[6] & 0x0F) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3F) | 0x80;	/* variant 10 */
	snprintf(buf, RB_UUID_LEN + 1,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
			 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/*
 * rb_uuid_is_valid
 *		Is text a uuid as rb_uuid_generate writes them: 36 characters,
 *		lowercase hex digits with dashes at 8, 13, 18 and 23?  What the
 *		client sends as an idempotency key, so that the key is a plain
 *		metadata value and the same request always carries the same text.
 */
static bool
rb_uuid_is_valid(const char *text)
{
	int			i;

	for (i = 0; i < RB_UUID_LEN; i++)
	{
		char		c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
		}
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return text[RB_UUID_LEN] == '\0';
}

/*
 * rb_call_new
 *		A fresh call of method on channel, not started and not linked into
 *		the channel yet (rb_call_free may free it), with its own client
 *		request id.  NULL when out of memory.
 */
static RbCall *
rb_call_new(RbChannel *channel, RbMethod method)
{
	RbCall	   *call = malloc(sizeof(RbCall));

	if (call == NULL)
		return NULL;
	memset(call, 0, sizeof(RbCall));
	call->channel = channel;
	call->method = method;
	call->grpc_status = GRPC_STATUS_UNKNOWN;
	call->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&call->recv_initial_metadata);
	grpc_metadata_array_init(&call->recv_trailing_metadata);
	rb_uuid_generate(call->client_request_id);
	return call;
}

/*
 * rb_call_add_metadata
 *		Fill the call's initial metadata: "authorization: Bearer <token>"
 *		when token is not NULL or "" (sent by hand: gRPC's access-token
 *		credentials refuse plaintext channels, docs/grpc-in-postgres.md),
 *		"idempotency-key: <key>" when idempotency_key is not NULL, and
 *		x-client-request-id.  Signals must be blocked.
 */
static void
rb_call_add_metadata(RbCall *call, const char *token,
					 const char *idempotency_key)
{
	if (token != NULL && token[0] != '\0')
	{
		size_t		toklen = strlen(token);
		grpc_slice	value = grpc_slice_malloc(7 + toklen);

		memcpy(GRPC_SLICE_START_PTR(value), "Bearer ", 7);
		memcpy(GRPC_SLICE_START_PTR(value) + 7, token, toklen);
		call->send_metadata[call->nsend_metadata].key =
			grpc_slice_from_static_string("authorization");
		call->send_metadata[call->nsend_metadata].value = value;
		call->nsend_metadata++;
	}
	if (idempotency_key != NULL)
	{
		call->send_metadata[call->nsend_metadata].key =
			grpc_slice_from_static_string("idempotency-key");
		call->send_metadata[call->nsend_metadata].value =
			grpc_slice_from_copied_string(idempotency_key);
		call->nsend_metadata++;
	}
	call->send_metadata[call->nsend_metadata].key =
		grpc_slice_from_static_string("x-client-request-id");
	call->send_metadata[call->nsend_metadata].value =
		grpc_slice_from_copied_string(call->client_request_id);
	call->nsend_metadata++;
}

/*
 * rb_call_serialize
 *		Pack request into the call's send buffer.  False when protobuf-c
 *		packed another size than it announced.  Signals must be blocked.
 */
static bool
rb_call_serialize(RbCall *call, const ProtobufCMessage *request)
{
	size_t		size = protobuf_c_message_get_packed_size(request);
	grpc_slice	payload = grpc_slice_malloc(size);
	size_t		packed;

	packed = protobuf_c_message_pack(request, GRPC_SLICE_START_PTR(payload));
	if (packed == size)
		call->send_buffer = grpc_raw_byte_buffer_create(&payload, 1);
	grpc_slice_unref(payload);
	return packed == size;
}

/*
 * rb_call_create
 *		Create the gRPC call on the channel's completion queue, with a
 *		deadline timeout_ms from now (none when timeout_ms <= 0).  False
 *		when gRPC refuses.  Signals must be blocked.
 */
static bool
rb_call_create(RbCall *call, const char *path, int timeout_ms)
{
	RbChannel  *channel = call->channel;
	gpr_timespec deadline;

	if (timeout_ms > 0)
		deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
								gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	else
		deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	call->call = grpc_channel_create_call(channel->channel, NULL,
										  GRPC_PROPAGATE_DEFAULTS,
										  channel->cq,
										  grpc_slice_from_static_string(path),
										  NULL, deadline, NULL);
	return call->call != NULL;
}

/*
 * rb_call_start_batch
 *		Start the call's one batch: send metadata, request and close;
 *		receive metadata, reply and status.  Its tag is the call.  Signals
 *		must be blocked.
 */
static grpc_call_error
rb_call_start_batch(RbCall *call)
{
	grpc_op		ops[RB_CALL_OPS];

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = call->nsend_metadata;
	ops[0].data.send_initial_metadata.metadata = call->send_metadata;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = call->send_buffer;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata =
		&call->recv_initial_metadata;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &call->recv_buffer;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata =
		&call->recv_trailing_metadata;
	ops[5].data.recv_status_on_client.status = &call->grpc_status;
	ops[5].data.recv_status_on_client.status_details = &call->status_details;
	ops[5].data.recv_status_on_client.error_string = NULL;

	return grpc_call_start_batch(call->call, ops, RB_CALL_OPS, call, NULL);
}

/*
 * rb_call_start
 *		Start a call: one batch that sends the request and receives the
 *		reply.  See rb_client.h.
 */
RbCall *
rb_call_start(RbChannel *channel, RbMethod method,
			  const ProtobufCMessage *request,
			  const char *token, const char *idempotency_key,
			  int timeout_ms, RbStatus *status)
{
	RbStatus	dummy;
	const ProtobufCMessageDescriptor *request_desc;
	const char *path;
	RbCall	   *call;
	const char *failure = NULL;
	grpc_call_error err = GRPC_CALL_OK;
	sigset_t	old;

	if (status == NULL)
		status = &dummy;

	/* check the arguments */
	if (channel == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no channel given");
		return NULL;
	}
	path = rb_method_path(method);
	request_desc = rb_method_request_descriptor(method);
	if (path == NULL || request_desc == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "unknown method %d",
					  (int) method);
		return NULL;
	}
	if (request == NULL || request->descriptor != request_desc)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "%s needs a %s request", rb_method_name(method),
					  request_desc->name);
		return NULL;
	}
	if (token != NULL && token[0] != '\0' && !rb_token_is_valid(token))
	{
		/* never quote the token */
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "token holds characters not allowed in gRPC metadata");
		return NULL;
	}
	if (idempotency_key != NULL && !rb_uuid_is_valid(idempotency_key))
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION,
					  "idempotency key is not a lowercase uuid");
		return NULL;
	}

	call = rb_call_new(channel, method);
	if (call == NULL)
	{
		rb_status_set(status, RB_LOCAL_NO_MEMORY, "out of memory");
		return NULL;
	}

	/* build and start it, with signals blocked throughout */
	rb_block_signals(&old);
	rb_call_add_metadata(call, token, idempotency_key);
	if (!rb_call_serialize(call, request))
		failure = "request could not be serialized";
	else if (!rb_call_create(call, path, timeout_ms))
		failure = "gRPC could not create the call";
	else if ((err = rb_call_start_batch(call)) != GRPC_CALL_OK)
		failure = "gRPC refused to start the call";
	rb_restore_signals(&old);

	if (failure != NULL)
	{
		rb_call_free(call);
		if (err != GRPC_CALL_OK)
			rb_status_set(status, RB_LOCAL_CALL_FAILED, "%s: %s", failure,
						  grpc_call_error_to_string(err));
		else
			rb_status_set(status, RB_LOCAL_CALL_FAILED, "%s", failure);
		return NULL;
	}

	/* link it in: from now on its tag will come back */
	call->next = channel->calls;
	if (channel->calls)
		channel->calls->prev = call;
	channel->calls = call;
	channel->npending++;

	rb_status_set_call(status, call, RB_OK, "%s", "");
	return call;
}

/*
 * rb_call_is_done
 *		Has the call's completion been recorded?  Never blocks.
 */
bool
rb_call_is_done(const RbCall *call)
{
	return call != NULL && call->done;
}

/*
 * rb_call_set_tag, rb_call_tag
 *		The caller's pointer kept with the call.
 */
void
rb_call_set_tag(RbCall *call, void *tag)
{
	if (call != NULL)
		call->tag = tag;
}

void *
rb_call_tag(const RbCall *call)
{
	return call != NULL ? call->tag : NULL;
}

/*
 * rb_call_wait
 *		Wait for a call's completion in slices, asking give_up between them.
 *		See rb_client.h.
 */
bool
rb_call_wait(RbCall *call, RbGiveUpHook give_up, void *arg, RbStatus *status)
{
	RbStatus	dummy;

	if (status == NULL)
		status = &dummy;
	if (call == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no call given");
		return false;
	}

	while (!call->done)
	{
		if (rb_channel_poll(call->channel, RB_WAIT_SLICE_MS) == call)
			break;
		if (!call->done && give_up != NULL && give_up(arg))
		{
			rb_call_cancel_and_drain(call);
			call->gave_up = true;
		}
	}
	call->collected = true;

	if (call->gave_up)
	{
		rb_status_set_call(status, call, RB_LOCAL_GAVE_UP,
						   "%s call cancelled", rb_method_name(call->method));
		return false;
	}

	rb_status_set_call(status, call, RB_OK, "%s", "");
	return true;
}

/*
 * rb_channel_ready_call
 *		A completed call of channel that is neither abandoned nor collected,
 *		or NULL.  *in_flight tells whether some call that is neither
 *		abandoned nor done remains.
 */
static RbCall *
rb_channel_ready_call(RbChannel *channel, bool *in_flight)
{
	RbCall	   *call;

	*in_flight = false;
	for (call = channel->calls; call != NULL; call = call->next)
	{
		if (call->abandoned || call->collected)
			continue;
		if (call->done)
			return call;
		*in_flight = true;
	}
	return NULL;
}

/*
 * rb_channel_wait_any
 *		Wait for whichever uncollected call of channel completes first.  See
 *		rb_client.h.
 */
RbCall *
rb_channel_wait_any(RbChannel *channel, RbGiveUpHook give_up, void *arg,
					RbStatus *status)
{
	return rb_channel_wait_any_for(channel, -1, give_up, arg, status);
}

/*
 * rb_channel_wait_any_for
 *		rb_channel_wait_any, waiting at most timeout_ms (0: only collect what
 *		has completed; negative: no limit).  See rb_client.h.
 */
RbCall *
rb_channel_wait_any_for(RbChannel *channel, int timeout_ms,
						RbGiveUpHook give_up, void *arg, RbStatus *status)
{
	RbStatus	dummy;
	RbCall	   *call;
	bool		in_flight;
	gpr_timespec end = gpr_inf_future(GPR_CLOCK_MONOTONIC);

	if (status == NULL)
		status = &dummy;
	if (channel == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no channel given");
		return NULL;
	}
	if (timeout_ms >= 0)
		end = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						   gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));

	for (;;)
	{
		int			slice_ms = RB_WAIT_SLICE_MS;

		call = rb_channel_ready_call(channel, &in_flight);
		if (call != NULL)
			break;
		if (!in_flight)
		{
			rb_status_set(status, RB_LOCAL_BAD_OPTION,
						  "no call in flight on the channel");
			return NULL;
		}
		if (timeout_ms >= 0)
		{
			gpr_timespec left = gpr_time_sub(end, gpr_now(GPR_CLOCK_MONOTONIC));
			int64_t		left_ms = gpr_time_to_millis(left);

			slice_ms = (int) (left_ms < 0 ? 0 : left_ms < slice_ms ? left_ms : slice_ms);
		}
		call = rb_channel_poll(channel, slice_ms);
		if (call != NULL && !call->collected)
			break;
		if (call == NULL && timeout_ms >= 0 &&
			gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), end) >= 0)
		{
			rb_status_set(status, RB_LOCAL_TIMED_OUT,
						  "no call completed within %d ms", timeout_ms);
			return NULL;
		}
		if (call == NULL && give_up != NULL && give_up(arg))
		{
			rb_status_set(status, RB_LOCAL_GAVE_UP,
						  "gave up waiting for the channel's calls");
			return NULL;
		}
	}

	call->collected = true;
	rb_status_set_call(status, call, RB_OK, "%s", "");
	return call;
}

/*
 * rb_find_request_id
 *		Copy the value of x-request-id from metadata into dst, if present.
 */
static bool
rb_find_request_id(const grpc_metadata_array *md, char *dst, size_t dstsize)
{
	size_t		i;

	for (i = 0; i < md->count; i++)
	{
		const grpc_metadata *m = &md->metadata[i];

		if (GRPC_SLICE_LENGTH(m->key) == strlen("x-request-id") &&
			memcmp(GRPC_SLICE_START_PTR(m->key), "x-request-id",
				   strlen("x-request-id")) == 0)
		{
			rb_copy_text(dst, dstsize,
						 (const char *) GRPC_SLICE_START_PTR(m->value),
						 GRPC_SLICE_LENGTH(m->value), true);
			return true;
		}
	}
	return false;
}

/*
 * call_status
 *		The outcome of a completed call that sent no usable reply, into
 *		status; false when the call succeeded and its reply is to decode.
 */
static bool
call_status(RbCall *call, RbStatus *status)
{
	if (call->gave_up)
	{
		status->code = RB_LOCAL_GAVE_UP;
		snprintf(status->message, sizeof(status->message),
				 "%s call cancelled", rb_method_name(call->method));
	}
	else if (!call->batch_ok)
	{
		status->code = RB_LOCAL_CALL_FAILED;
		snprintf(status->message, sizeof(status->message),
				 "%s call failed inside gRPC", rb_method_name(call->method));
	}
	else if (call->grpc_status != GRPC_STATUS_OK)
	{
		if ((int) call->grpc_status > 0 && (int) call->grpc_status <= 16)
			status->code = (RbCode) call->grpc_status;
		else
			status->code = RB_UNKNOWN;
		rb_copy_text(status->message, sizeof(status->message),
					 (const char *) GRPC_SLICE_START_PTR(call->status_details),
					 GRPC_SLICE_LENGTH(call->status_details), false);

		/*
		 * gRPC fails a call whose reply exceeds the channel's receive limit
		 * with RESOURCE_EXHAUSTED, like a server over quota; it is no quota
		 * and retrying cannot help, so say what it is.
		 */
		if (status->code == RB_RESOURCE_EXHAUSTED &&
			strncmp(status->message, RB_GRPC_TOO_LARGE_TEXT,
					strlen(RB_GRPC_TOO_LARGE_TEXT)) == 0)
			status->code = RB_LOCAL_REPLY_TOO_LARGE;
	}
	else if (call->recv_buffer == NULL)
	{
		status->code = RB_LOCAL_BAD_REPLY;
		snprintf(status->message, sizeof(status->message),
				 "%s reply has no message", rb_method_name(call->method));
	}
	else
		return false;
	return true;
}

/*
 * call_decode_reply
 *		Decode the reply of a call that succeeded through allocator; NULL
 *		(and status RB_LOCAL_BAD_REPLY) when it does not decode.
 */
static ProtobufCMessage *
call_decode_reply(RbCall *call, ProtobufCAllocator *allocator,
				  RbStatus *status, size_t *reply_bytes)
{
	ProtobufCMessage *reply = NULL;
	grpc_byte_buffer_reader reader;
	grpc_slice	data;
	sigset_t	old;

	rb_block_signals(&old);
	if (grpc_byte_buffer_reader_init(&reader, call->recv_buffer))
	{
		data = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
		if (reply_bytes != NULL)
			*reply_bytes = GRPC_SLICE_LENGTH(data);
		reply = rb_reply_decode(call->method, GRPC_SLICE_START_PTR(data),
								GRPC_SLICE_LENGTH(data), allocator, status);
		grpc_slice_unref(data);
	}
	else
		reply = rb_reply_decode(call->method, NULL, 0, NULL, status);
	rb_restore_signals(&old);
	return reply;
}

/*
 * rb_reply_decode
 *		Decode a reply of method.  See rb_client.h.
 */
ProtobufCMessage *
rb_reply_decode(RbMethod method, const uint8_t *data, size_t len,
				ProtobufCAllocator *allocator, RbStatus *status)
{
	const ProtobufCMessageDescriptor *desc = rb_method_reply_descriptor(method);
	ProtobufCMessage *reply = NULL;
	char		why[128];

	why[0] = '\0';
	if (desc != NULL && data != NULL)
		reply = rb_decode_reply(desc, data, len, allocator, why, sizeof(why));
	if (reply == NULL)
	{
		status->code = RB_LOCAL_BAD_REPLY;
		if (why[0] != '\0')
			snprintf(status->message, sizeof(status->message),
					 "%s reply could not be decoded: %s",
					 rb_method_name(method), why);
		else
			snprintf(status->message, sizeof(status->message),
					 "%s reply could not be decoded",
					 rb_method_name(method));
	}
	return reply;
}

/*
 * rb_reply_next_page_token
 *		A listing reply's next_page_token, read off its bytes.  See
 *		rb_client.h.
 */
bool
rb_reply_next_page_token(RbMethod method, const uint8_t *data, size_t len,
						 const uint8_t **token, size_t *token_len)
{
	const ProtobufCMessageDescriptor *desc = rb_method_reply_descriptor(method);
	const ProtobufCFieldDescriptor *fd;

	if (!rb_method_is_listing(method) || desc == NULL)
		return false;
	fd = protobuf_c_message_descriptor_get_field_by_name(desc,
														 "next_page_token");
	if (fd == NULL)
		return false;
	return rb_wire_last_bytes_field(data, len, fd->id, token, token_len);
}

/*
 * call_reply_bytes
 *		Copy a completed call's serialized reply into memory of allocator.
 */
static bool
call_reply_bytes(RbCall *call, ProtobufCAllocator *allocator,
				 uint8_t **out, size_t *outlen, RbStatus *status)
{
	grpc_byte_buffer_reader reader;
	grpc_slice	data;
	sigset_t	old;
	bool		ok = false;

	rb_block_signals(&old);
	if (grpc_byte_buffer_reader_init(&reader, call->recv_buffer))
	{
		data = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
		*outlen = GRPC_SLICE_LENGTH(data);
		*out = allocator->alloc(allocator->allocator_data, *outlen + 1);
		if (*out != NULL)
		{
			memcpy(*out, GRPC_SLICE_START_PTR(data), *outlen);
			ok = true;
		}
		else
			rb_status_set(status, RB_LOCAL_NO_MEMORY,
						  "no memory for a reply of %zu bytes", *outlen);
		grpc_slice_unref(data);
	}
	else
		(void) rb_reply_decode(call->method, NULL, 0, NULL, status);
	rb_restore_signals(&old);
	return ok;
}

static bool call_succeeded(RbCall *call, RbStatus *status);

/*
 * rb_call_finish
 *		Report a completed call's outcome, decode its reply and free it.  See
 *		rb_client.h.
 */
ProtobufCMessage *
rb_call_finish(RbCall *call, ProtobufCAllocator *allocator,
			   RbStatus *status, size_t *reply_bytes)
{
	RbStatus	dummy;
	ProtobufCMessage *reply = NULL;

	if (status == NULL)
		status = &dummy;
	if (reply_bytes != NULL)
		*reply_bytes = 0;
	if (call == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no call given");
		return NULL;
	}

	if (call_succeeded(call, status))
		reply = call_decode_reply(call, allocator, status, reply_bytes);
	rb_call_free(call);
	return reply;
}

/*
 * call_succeeded
 *		The outcome of a call being collected, into *status (with the
 *		reply's request id): true when it answered OK.  A call not yet
 *		completed is given up first, so that it can be freed.
 */
static bool
call_succeeded(RbCall *call, RbStatus *status)
{
	if (!call->done)
	{
		rb_call_cancel_and_drain(call);
		call->gave_up = true;
	}
	rb_status_set_call(status, call, RB_OK, "%s", "");
	if (!rb_find_request_id(&call->recv_initial_metadata,
							status->request_id, sizeof(status->request_id)))
		(void) rb_find_request_id(&call->recv_trailing_metadata,
								  status->request_id,
								  sizeof(status->request_id));
	return !call_status(call, status);
}

/*
 * rb_call_finish_bytes
 *		Report a completed call's outcome, copy its serialized reply and
 *		free it.  See rb_client.h.
 */
bool
rb_call_finish_bytes(RbCall *call, ProtobufCAllocator *allocator,
					 uint8_t **data, size_t *len, RbStatus *status)
{
	bool		ok = false;

	*data = NULL;
	*len = 0;
	if (call == NULL)
	{
		rb_status_set(status, RB_LOCAL_BAD_OPTION, "no call given");
		return false;
	}
	if (call_succeeded(call, status))
		ok = call_reply_bytes(call, allocator, data, len, status);
	rb_call_free(call);
	return ok;
}

/*
 * rb_call_abandon
 *		Cancel a call and let the channel free it when its completion comes
 *		back.  Never blocks.
 */
void
rb_call_abandon(RbCall *call)
{
	sigset_t	old;

	if (call == NULL)
		return;
	if (call->done)
	{
		rb_call_free(call);
		return;
	}
	call->abandoned = true;
	rb_block_signals(&old);
	grpc_call_cancel(call->call, NULL);
	rb_restore_signals(&old);
}

/*
 * rb_call_unary
 *		Start, wait for and finish one call.
 */
ProtobufCMessage *
rb_call_unary(RbChannel *channel, RbMethod method,
			  const ProtobufCMessage *request,
			  const char *token, const char *idempotency_key,
			  int timeout_ms, RbGiveUpHook give_up, void *arg,
			  ProtobufCAllocator *allocator,
			  RbStatus *status,
			  size_t *reply_bytes)
{
	RbStatus	dummy;
	RbCall	   *call;

	if (status == NULL)
		status = &dummy;
	if (reply_bytes != NULL)
		*reply_bytes = 0;

	call = rb_call_start(channel, method, request, token, idempotency_key,
						 timeout_ms, status);
	if (call == NULL)
		return NULL;
	(void) rb_call_wait(call, give_up, arg, status);
	/* after a give-up the call is done too; finish reports GAVE_UP */
	return rb_call_finish(call, allocator, status, reply_bytes);
}

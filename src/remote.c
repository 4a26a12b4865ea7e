/*-------------------------------------------------------------------------
 *
 * remote.c
 *		  Remote calls from a backend: waiting interruptibly, retrying, and
 *		  turning every outcome into a PostgreSQL error with a fitting
 *		  SQLSTATE; and how EXPLAIN and messages show a call.
 *
 * This layer knows nothing of credentials: each call carries the token its
 * caller gives it (none for IAM's own exchange), and a token the service
 * refuses is handed back to the caller, who may renew it once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "redis_backup_fdw.h"

/* Backoff of retries: 100 ms, doubled each time, at most 5 s. */
#define RB_BACKOFF_INITIAL_MS 100
#define RB_BACKOFF_MAX_MS 5000

static bool interrupt_pending(void *arg);
static bool remote_wait(RbCall *call, RbStatus *status);
static bool status_is_retryable(RbCode code);
pg_noreturn static void report_status(RbMethod method, const RbStatus *status,
									  const char *token,
									  const char *call_desc,
									  const RbCallTarget *target);
static const char *denied_hint(RbMethod method, RbService service);
static char *status_detail(const RbStatus *status, const char *token);
static bool is_word_char(char c);
static void *context_alloc(void *data, size_t size);
static void context_free(void *data, void *pointer);

/*
 * interrupt_pending
 *		Give-up hook of the client library: a cancel or termination request
 *		is pending.  Runs between wait slices; must not raise errors.
 */
static bool
interrupt_pending(void *arg)
{
	return QueryCancelPending || ProcDiePending;
}

/*
 * remote_wait
 *		Wait for a call, giving up when the query is cancelled.  On giving up
 *		the call has been cancelled and drained; CHECK_FOR_INTERRUPTS raises
 *		the usual error, and should it not, so do we.
 */
static bool
remote_wait(RbCall *call, RbStatus *status)
{
	if (rb_call_wait(call, interrupt_pending, NULL, status))
		return true;

	rb_call_abandon(call);
	CHECK_FOR_INTERRUPTS();
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("canceling statement due to user request")));
	return false;				/* keep compiler quiet */
}

/*
 * status_is_retryable
 *		Outcomes worth another attempt: the service said it is busy or
 *		unreachable.  Nothing else is retried.
 */
static bool
status_is_retryable(RbCode code)
{
	return code == RB_UNAVAILABLE || code == RB_RESOURCE_EXHAUSTED;
}

/*
 * rb_backoff_ms
 *		How long to wait before retry number attempt (1 for the first
 *		retry): exponential backoff from RB_BACKOFF_INITIAL_MS, at most
 *		RB_BACKOFF_MAX_MS, with full jitter over its upper half.
 */
long
rb_backoff_ms(int attempt)
{
	int64		cap = RB_BACKOFF_INITIAL_MS;

	while (attempt-- > 1 && cap < RB_BACKOFF_MAX_MS)
		cap *= 2;
	cap = Min(cap, RB_BACKOFF_MAX_MS);
	return cap / 2 + (long) pg_prng_uint64_range(&pg_global_prng_state, 0,
												 cap / 2);
}

/*
 * rb_backoff_sleep
 *		Sleep before retry number attempt (rb_backoff_ms).
 */
void
rb_backoff_sleep(int attempt)
{
	rb_sleep_until(GetCurrentTimestamp() + rb_backoff_ms(attempt) * 1000);
}

/*
 * rb_ms_until
 *		Milliseconds from now until end, rounded up (0 once end has passed),
 *		so that a wait of that long does not end before end.
 */
int
rb_ms_until(TimestampTz end)
{
	int64		us = end - GetCurrentTimestamp();

	return us <= 0 ? 0 : (int) Min((us + 999) / 1000, (int64) INT_MAX);
}

/*
 * rb_sleep_until
 *		Sleep until end, interruptibly: a cancel raises its error at once.
 */
void
rb_sleep_until(TimestampTz end)
{
	for (;;)
	{
		int			left;

		CHECK_FOR_INTERRUPTS();
		left = rb_ms_until(end);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * rb_remote_begin
 *		Start the next attempt of rc (the first when rc->attempt is 0), with
 *		the token the caller put in rc->token; the call is tagged with rc.
 */
void
rb_remote_begin(RbCallTarget *target, RbRemoteCall *rc)
{
	RbStatus	status;

	CHECK_FOR_INTERRUPTS();
	if (rc->attempt++ > 0)
		target->stats->retries++;
	target->stats->calls++;
	rc->completed = false;
	rc->call = rb_call_start(target->channel, rc->method, rc->request,
							 rc->token, rc->idempotency_key,
							 target->timeout_ms, &status);
	if (rc->call == NULL)
		report_status(rc->method, &status, rc->token, rc->desc, target);
	rb_call_set_tag(rc->call, rc);
}

/*
 * rb_remote_renew
 *		Start rc again with a fresh token, after RB_OUTCOME_TOKEN_REFUSED:
 *		not a retry of a failed service, so it counts no attempt.  Once:
 *		a fresh token refused too is an error.
 */
void
rb_remote_renew(RbCallTarget *target, RbRemoteCall *rc, const char *token)
{
	rc->token = token;
	rc->token_renewable = false;
	rc->attempt--;
	rb_remote_begin(target, rc);
}

/*
 * rb_remote_wait_any
 *		Wait at most timeout_ms (negative: no limit, 0: do not wait) until a
 *		call of scan's on the target's channel has completed and return its
 *		RbRemoteCall, or NULL when none completed in time.  Scans of one
 *		user mapping share the channel (a join of two foreign tables has
 *		calls of both in flight): a completed call of another scan is marked
 *		completed for that scan to collect (its caller looks for such calls
 *		before waiting), and the wait goes on.  Gives up when the query is
 *		cancelled: the calls stay in flight (the caller's cleanup abandons
 *		them) and CHECK_FOR_INTERRUPTS raises the usual error.
 */
RbRemoteCall *
rb_remote_wait_any(RbCallTarget *target, const void *scan, int timeout_ms)
{
	TimestampTz end = GetCurrentTimestamp() + (int64) Max(timeout_ms, 0) * 1000;
	RbStatus	status;
	RbCall	   *call;
	RbRemoteCall *rc;

	for (;;)
	{
		int			wait_ms = timeout_ms;

		if (timeout_ms > 0)
			wait_ms = rb_ms_until(end);
		call = rb_channel_wait_any_for(target->channel, wait_ms,
									   interrupt_pending, NULL, &status);
		if (call == NULL && status.code == RB_LOCAL_TIMED_OUT)
			return NULL;
		if (call == NULL)
		{
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(status.code == RB_LOCAL_GAVE_UP
							 ? ERRCODE_QUERY_CANCELED : ERRCODE_FDW_ERROR),
					 errmsg_internal("redis_backup_fdw: no call to wait for: %s",
									 status.message)));
		}
		rc = (RbRemoteCall *) rb_call_tag(call);
		if (rc->scan == scan)
			return rc;
		rc->completed = true;
	}
}

/*
 * rb_remote_wait_either
 *		rb_remote_wait_any over two targets' channels, each waited on only
 *		when it has calls of scan's in flight (a_busy, b_busy; at least one
 *		must).  With both busy, the channels are waited on in turns of
 *		RB_TURN_MS, each polled before the other is waited on, so a
 *		completion on either is seen within that time.  NULL when nothing
 *		completed within timeout_ms (negative: no limit).
 */
#define RB_TURN_MS 2

RbRemoteCall *
rb_remote_wait_either(RbCallTarget *a, bool a_busy, RbCallTarget *b,
					  bool b_busy, const void *scan, int timeout_ms)
{
	TimestampTz end = GetCurrentTimestamp() + (int64) Max(timeout_ms, 0) * 1000;
	RbRemoteCall *rc;

	if (!b_busy)
		return rb_remote_wait_any(a, scan, timeout_ms);
	if (!a_busy)
		return rb_remote_wait_any(b, scan, timeout_ms);
	for (;;)
	{
		int			turn_ms = RB_TURN_MS;

		rc = rb_remote_wait_any(b, scan, 0);
		if (rc != NULL)
			return rc;
		if (timeout_ms >= 0)
			turn_ms = Min(turn_ms, rb_ms_until(end));
		rc = rb_remote_wait_any(a, scan, turn_ms);
		if (rc != NULL || (timeout_ms >= 0 && GetCurrentTimestamp() >= end))
			return rc;
	}
}

/*
 * rb_remote_collect
 *		The outcome of rc's completed call.  A reply is decoded through
 *		allocator into *reply, or, when rc->keep_bytes, copied undecoded
 *		into rc->reply_data (allocator's memory) for rb_remote_decode.  A call worth another attempt (UNAVAILABLE or
 *		RESOURCE_EXHAUSTED) is, when rc->defer_retry, handed back as
 *		RB_OUTCOME_RETRY, attempts left or not: the caller schedules the
 *		retry (rb_remote_begin) or gives up (rb_remote_give_up).  Otherwise,
 *		with attempts left, it is started again after a backoff:
 *		RB_OUTCOME_RETRIED.  PERMISSION_DENIED is returned when
 *		rc->denied_ok, UNAUTHENTICATED when rc->token_renewable (the caller
 *		may renew the token: rb_remote_renew), any status the service sends
 *		(but those retried) when rc->refusal_ok; any other failure is
 *		raised.
 */
RbOutcome
rb_remote_collect(RbCallTarget *target, RbRemoteCall *rc,
				  ProtobufCAllocator *allocator, ProtobufCMessage **reply)
{
	RbStatus	status;
	size_t		nbytes = 0;

	*reply = NULL;
	if (rc->keep_bytes)
	{
		if (rb_call_finish_bytes(rc->call, allocator, &rc->reply_data,
								 &rc->reply_len, &status))
		{
			nbytes = rc->reply_len;
			rc->status = status;	/* its request id, for rb_remote_decode */
		}
	}
	else
		*reply = rb_call_finish(rc->call, allocator, &status, &nbytes);
	rc->call = NULL;
	target->stats->bytes += nbytes;

	if (*reply != NULL || (rc->keep_bytes && status.code == RB_OK))
	{
		target->stats->pages++;
		return RB_OUTCOME_REPLY;
	}
	rc->status = status;
	if (rc->refusal_ok && (int) status.code < RB_LOCAL_GAVE_UP &&
		!status_is_retryable(status.code))
		return RB_OUTCOME_REFUSED;
	if (status.code == RB_NOT_FOUND)
		return RB_OUTCOME_NOT_FOUND;
	if (status.code == RB_PERMISSION_DENIED && rc->denied_ok)
		return RB_OUTCOME_DENIED;
	if (status.code == RB_UNAUTHENTICATED && rc->token_renewable)
		return RB_OUTCOME_TOKEN_REFUSED;
	if (status_is_retryable(status.code) && rc->defer_retry)
		return RB_OUTCOME_RETRY;
	if (!status_is_retryable(status.code) ||
		rc->attempt >= target->max_attempts)
		report_status(rc->method, &status, rc->token, rc->desc, target);

	elog(DEBUG1, "redis_backup_fdw: %s: %s, retrying (attempt %d of %d)",
		 rb_method_name(rc->method), rb_code_name(status.code),
		 rc->attempt + 1, target->max_attempts);
	rb_backoff_sleep(rc->attempt);
	rb_remote_begin(target, rc);
	return RB_OUTCOME_RETRIED;
}

/*
 * rb_remote_finish
 *		Wait for rc's call, retrying what may be retried, and return the
 *		outcome (never RB_OUTCOME_RETRIED).  rc must have been begun.
 */
RbOutcome
rb_remote_finish(RbCallTarget *target, RbRemoteCall *rc,
				 ProtobufCAllocator *allocator, ProtobufCMessage **reply)
{
	for (;;)
	{
		RbStatus	status;
		RbOutcome	outcome;

		(void) remote_wait(rc->call, &status);
		outcome = rb_remote_collect(target, rc, allocator, reply);
		if (outcome != RB_OUTCOME_RETRIED)
			return outcome;
	}
}

/*
 * rb_remote_give_up
 *		Raise the error of rc's last failure (after RB_OUTCOME_RETRY, when
 *		the caller will not try again).
 */
void
rb_remote_give_up(RbCallTarget *target, RbRemoteCall *rc)
{
	report_status(rc->method, &rc->status, rc->token, rc->desc, target);
}

/*
 * rb_remote_decode
 *		Decode a reply of method kept undecoded (rc->keep_bytes) through
 *		allocator; bytes that do not decode are the error of the call
 *		call_desc made through target, whose reply had request_id.
 */
ProtobufCMessage *
rb_remote_decode(RbCallTarget *target, RbMethod method, const char *call_desc,
				 const char *request_id, const uint8_t *data, size_t len,
				 ProtobufCAllocator *allocator)
{
	RbStatus	status;
	ProtobufCMessage *reply;

	memset(&status, 0, sizeof(status));
	strlcpy(status.request_id, request_id, sizeof(status.request_id));
	reply = rb_reply_decode(method, data, len, allocator, &status);
	if (reply == NULL)
		report_status(method, &status, NULL, call_desc, target);
	return reply;
}

/*
 * rb_key_request
 *		The request of a method whose request is its key field alone
 *		(BackupService.Get and .Delete, ClusterService.Get and .Backup,
 *		OperationService.Get): key in that field.  Allocated in the current
 *		memory context; key is borrowed.
 */
const ProtobufCMessage *
rb_key_request(RbMethod method, const char *key)
{
	const ProtobufCMessageDescriptor *desc = rb_method_request_descriptor(method);
	const ProtobufCFieldDescriptor *fd;
	ProtobufCMessage *req;

	fd = protobuf_c_message_descriptor_get_field_by_name(desc,
														 rb_method_key_field(method));
	if (fd == NULL || fd->type != PROTOBUF_C_TYPE_STRING)
		elog(ERROR, "%s has no key field", rb_method_name(method));
	req = palloc(desc->sizeof_message);
	protobuf_c_message_init(desc, req);
	*(const char **) ((char *) req + fd->offset) = key;
	return req;
}

/*
 * rb_describe_call
 *		How EXPLAIN and error messages show a call: the method, its key
 *		field with key_text (already rendered: "='x'", " IN (...)", ...),
 *		and for listings the page size and, when not NULL, the page token.
 */
void
rb_describe_call(StringInfo buf, RbMethod method, const char *key_text,
				 int page_size, const char *page_token)
{
	appendStringInfo(buf, "%s %s%s", rb_method_name(method),
					 rb_method_key_field(method), key_text);
	if (rb_method_is_listing(method))
	{
		appendStringInfo(buf, " page_size=%d", page_size);
		if (page_token != NULL)
			appendStringInfo(buf, " page_token=%s",
							 quote_literal_cstr(page_token));
	}
}

/*
 * rb_code_sqlstate
 *		The SQLSTATE of a failure with this code: of a failed call, or of an
 *		operation that ended in error (its google.rpc.Status code, numbered
 *		as gRPC's).
 */
int
rb_code_sqlstate(RbCode code)
{
	switch (code)
	{
		case RB_UNAUTHENTICATED:
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case RB_PERMISSION_DENIED:
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case RB_INVALID_ARGUMENT:
		case RB_OUT_OF_RANGE:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case RB_FAILED_PRECONDITION:
			return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		case RB_UNAVAILABLE:
		case RB_RESOURCE_EXHAUSTED:
			return ERRCODE_CONNECTION_FAILURE;
		case RB_DEADLINE_EXCEEDED:
		case RB_CANCELLED:
		case RB_LOCAL_GAVE_UP:
			return ERRCODE_QUERY_CANCELED;
		case RB_LOCAL_BAD_REPLY:
		case RB_LOCAL_REPLY_TOO_LARGE:
			return ERRCODE_FDW_UNABLE_TO_CREATE_REPLY;
		case RB_LOCAL_NO_MEMORY:
			return ERRCODE_OUT_OF_MEMORY;
		case RB_LOCAL_BAD_OPTION:
			return ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
		default:
			return ERRCODE_FDW_ERROR;
	}
}

/*
 * report_status
 *		Raise the error of a failed call: a short message naming the service
 *		called, the gRPC status and the server's text in DETAIL, the call
 *		and the request id in CONTEXT.
 *		The token is never part of any of these.  A service that stayed
 *		unreachable through every attempt also retires the channel, so that
 *		the next query connects afresh instead of waiting out gRPC's
 *		reconnect backoff.
 */
static void
report_status(RbMethod method, const RbStatus *status, const char *token,
			  const char *call_desc, const RbCallTarget *target)
{
	const char *service = rb_service_name(target->service);
	char	   *detail = status_detail(status, token);

	/*
	 * The request id is formatted here, not in the ereport: errcontext() is
	 * a comma expression, which cannot be an operand of ?:.
	 */
	char	   *request_id = status->request_id[0]
		? psprintf(" (request id %s)", status->request_id) : "";

	if (status->code == RB_UNAVAILABLE && target->conn != NULL)
		rb_connection_failed(target->conn);

#define RB_CALL_ERROR(...) \
	ereport(ERROR, \
			(errcode(rb_code_sqlstate(status->code)), __VA_ARGS__, \
			 errdetail_internal("%s", detail), \
			 errcontext("remote call %s%s", call_desc, request_id)))

	switch (status->code)
	{
		case RB_UNAUTHENTICATED:
			RB_CALL_ERROR(errmsg("%s rejected the IAM token", service),
						  target->token_hint
						  ? errhint("%s", target->token_hint) : 0);
			break;
		case RB_PERMISSION_DENIED:
			{
				const char *hint = denied_hint(method, target->service);

				RB_CALL_ERROR(errmsg("permission denied by %s", service),
							  hint ? errhint("%s", hint) : 0);
			}
			break;
		case RB_INVALID_ARGUMENT:
		case RB_OUT_OF_RANGE:
			RB_CALL_ERROR(errmsg("%s rejected the request as invalid",
								 service));
			break;
		case RB_UNAVAILABLE:
			RB_CALL_ERROR(errmsg_plural("could not reach %s at \"%s\" (%d attempt)",
										"could not reach %s at \"%s\" (%d attempts)",
										target->max_attempts, service,
										target->endpoint, target->max_attempts),
						  errhint("Check the server's %s, tls and ca_file options; if the service is down, try again later.",
								  rb_service_endpoint_option(target->service)));
			break;
		case RB_RESOURCE_EXHAUSTED:
			RB_CALL_ERROR(errmsg_plural("%s refused the call as over quota (%d attempt)",
										"%s refused the call as over quota (%d attempts)",
										target->max_attempts, service,
										target->max_attempts),
						  errhint("Try again later, or raise the server option max_attempts."));
			break;
		case RB_DEADLINE_EXCEEDED:
			RB_CALL_ERROR(errmsg("remote call timed out after %d ms",
								 target->timeout_ms),
						  errhint("Raise the server option timeout_ms."));
			break;
		case RB_CANCELLED:
		case RB_LOCAL_GAVE_UP:
			RB_CALL_ERROR(errmsg("remote call was cancelled"));
			break;
		case RB_LOCAL_BAD_REPLY:
			RB_CALL_ERROR(errmsg("could not decode the reply of %s", service));
			break;
		case RB_LOCAL_REPLY_TOO_LARGE:
			RB_CALL_ERROR(errmsg("the reply of %s is larger than the receive limit",
								 service),
						  errhint("Lower the page_size option of the server or table."));
			break;
		case RB_LOCAL_NO_MEMORY:
			RB_CALL_ERROR(errmsg("out of memory"));
			break;
		case RB_LOCAL_BAD_OPTION:
			RB_CALL_ERROR(errmsg("could not start a remote call"));
			break;
		default:
			RB_CALL_ERROR(errmsg("remote call to %s failed", service));
			break;
	}
#undef RB_CALL_ERROR
	pg_unreachable();
}

/*
 * denied_hint
 *		What to grant when a call of method to service was refused
 *		PERMISSION_DENIED, or NULL.
 */
static const char *
denied_hint(RbMethod method, RbService service)
{
	if (method == RB_METHOD_BACKUP_DELETE || method == RB_METHOD_CLUSTER_BACKUP ||
		service == RB_SERVICE_OPERATION)
		return _("Grant the token's account a role that can manage Managed Redis backups in the folder, such as managed-redis.editor.");
	if (service == RB_SERVICE_RESOURCE_MANAGER)
		return _("Grant the token's account the role resource-manager.viewer (or viewer) on the cloud.");
	if (method == RB_METHOD_CLUSTER_LIST || method == RB_METHOD_CLUSTER_GET)
		return _("Grant the token's account a role that can view Managed Redis clusters in the folder.");
	if (service == RB_SERVICE_MDB)
		return _("Grant the token's account a role that can view Managed Redis backups in the folder.");
	return NULL;
}

/*
 * status_detail
 *		The DETAIL of a failed call: the gRPC status and the server's
 *		message, with the token the call carried cut out of it.
 */
static char *
status_detail(const RbStatus *status, const char *token)
{
	return psprintf("%s: %s", rb_code_name(status->code),
					status->message[0]
					? rb_redact(status->message, token) : "(no message)");
}

/*
 * rb_redact
 *		text with every whole occurrence of secret replaced: a server that
 *		echoes the token in its error message must not put it in ours.  An
 *		occurrence is whole when it is not part of a longer word: where the
 *		secret begins (ends) with an ASCII letter or digit, the character
 *		before (after) it is not one.  So the text around it is never cut
 *		into, and a secret that happens to be part of a word leaves the word
 *		alone; anything else next to it (quotes, spaces, '=', '-', '.')
 *		still has it cut out.
 */
char *
rb_redact(const char *text, const char *secret)
{
	StringInfoData buf;
	const char *from = text;
	const char *hit;
	size_t		len;

	if (secret == NULL || secret[0] == '\0' || strstr(text, secret) == NULL)
		return pstrdup(text);

	initStringInfo(&buf);
	len = strlen(secret);
	for (hit = strstr(text, secret); hit != NULL; hit = strstr(hit + 1, secret))
	{
		if (hit < from)
			continue;			/* overlaps the occurrence cut out last */
		if ((hit > text && is_word_char(hit[-1]) && is_word_char(secret[0])) ||
			(is_word_char(hit[len]) && is_word_char(secret[len - 1])))
			continue;			/* part of a longer word */
		appendBinaryStringInfo(&buf, from, hit - from);
		appendStringInfoString(&buf, "<iam_token>");
		from = hit + len;
	}
	appendStringInfoString(&buf, from);
	return buf.data;
}

/*
 * is_word_char
 *		An ASCII letter or digit (locale-independent): what a word is made
 *		of for rb_redact().
 */
static bool
is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9');
}

/*
 * context_alloc, context_free
 *		A protobuf-c allocator over a memory context: a failed allocation
 *		returns NULL (protobuf-c then fails the unpack), and the whole reply
 *		is freed by one reset of the context.
 */
static void *
context_alloc(void *data, size_t size)
{
	if (!AllocSizeIsValid(size))
		return NULL;
	return MemoryContextAllocExtended((MemoryContext) data, size,
									  MCXT_ALLOC_NO_OOM);
}

static void
context_free(void *data, void *pointer)
{
	/* Nothing to do: everything is freed when the context is reset. */
}

/*
 * rb_init_allocator
 *		Make allocator allocate in cxt.
 */
void
rb_init_allocator(ProtobufCAllocator *allocator, MemoryContext cxt)
{
	allocator->alloc = context_alloc;
	allocator->free = context_free;
	allocator->allocator_data = cxt;
}

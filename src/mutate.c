/*-------------------------------------------------------------------------
 *
 * mutate.c
 *		  The calls of a statement that change things, one per row
 *		  (BackupService.Delete, ClusterService.Backup), and the operations
 *		  they start, followed with OperationService.Get until done.
 *
 * Each row is a call on the Managed Redis channel; the service accepts it
 * with an Operation, which, when the statement waits for operations, is
 * asked for again on the Operation service's channel after a growing pause
 * until it is done.  Up to max_concurrent_calls rows are under way at a
 * time (their calls and polls in flight, their operations running), but
 * only one until the service has accepted a first call: a refusal
 * (permission denied, say) then stops the statement before anything else
 * is attempted.
 *
 * Each row carries an idempotency key, a fresh uuid, sent with its call
 * and with every retry of it: a retried call whose first reply was lost
 * changes things once.  A call or poll refused UNAVAILABLE or
 * RESOURCE_EXHAUSTED is started again (the same RbRemoteCall) after a
 * backoff that other rows do not wait for, up to max_attempts.
 *
 * Calls are waited for on two channels (Managed Redis, Operation) with
 * rb_remote_wait_either.  An error raised while rows are under
 * way (a failed operation, a refusal, a cancel, statement_timeout) says
 * which operations were left running, in its CONTEXT: nothing done
 * remotely is undone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Pauses between polls of an operation: 100 ms, growing by half, at most 5 s. */
#define RB_POLL_INITIAL_MS 100
#define RB_POLL_MAX_MS 5000

/* Operations an error's CONTEXT names at most. */
#define RB_CONTEXT_MAX_OPERATIONS 10

typedef enum RbRowState
{
	RB_ROW_CALLING,				/* the mutating call is in flight */
	RB_ROW_SLEEPING,			/* its operation runs; poll at poll_at */
	RB_ROW_POLLING,				/* OperationService.Get in flight */
	RB_ROW_RETRYING,			/* its call or poll starts again at poll_at */
	RB_ROW_DONE
} RbRowState;

struct RbMutationRow
{
	char	   *key;			/* backup or cluster id, database encoding */
	char	   *key_utf8;		/* ... as sent */
	char		idempotency_key[37];
	RbRemoteCall rc;			/* the call in flight, if any */
	RbRowState	state;
	bool		keep;			/* the caller waits for it, then frees it */
	char	   *operation_id;	/* once accepted */
	int64		created_seconds;	/* the operation's created_at */
	int32		created_nanos;
	int			polls;
	TimestampTz poll_at;
	bool		retry_is_poll;	/* RB_ROW_RETRYING: the poll, not the call */
	MemoryContext cxt;			/* the row's own */
	MemoryContext call_cxt;		/* ... for the call in flight */
	struct RbMutationRow *next; /* in the list of rows under way */
};

struct RbMutation
{
	RbCredentials *creds;
	RbCallTarget *target;		/* Managed Redis */
	RbCallTarget *op_target;	/* Operation service */
	RbMethod	method;
	bool		wait;			/* until each operation is done */
	int			max_window;
	int			window;			/* rows under way at most: 1 at first */
	RbMutationRow *rows;		/* under way */
	int			nrows;
	int			in_flight;		/* calls on target */
	int			op_in_flight;	/* polls on op_target */
	RbMutationRow *collecting;	/* whose outcome is being read */
	uint64		succeeded;		/* rows done */
	MemoryContext cxt;
	MemoryContext reply_cxt;	/* the reply being read */
	ProtobufCAllocator allocator;
};

static void step(RbMutation *m);
static void start_row(RbMutation *m, RbMutationRow *row);
static void start_due_polls(RbMutation *m, TimestampTz now,
							TimestampTz *next_due);
static void retry_row_call(RbMutation *m, RbMutationRow *row);
static void begin_row_call(RbMutation *m, RbMutationRow *row, RbMethod method,
						   const char *key, const char *key_text,
						   RbCallTarget *target);
static RbMutationRow *completed_row(RbMutation *m);
static void collect_row(RbMutation *m, RbMutationRow *row);
static void read_operation(RbMutation *m, RbMutationRow *row,
						   Yandex__Cloud__Operation__Operation *op);
pg_noreturn static void report_operation_error(RbMutation *m,
											   RbMutationRow *row,
											   const Google__Rpc__Status *error);
pg_noreturn static void report_not_found(RbMutation *m, RbMutationRow *row);
static void end_row(RbMutation *m, RbMutationRow *row, bool succeeded);
static char *what_row_does(RbMutation *m, RbMutationRow *row);
static void mutation_error_context(void *arg);

/*
 * rb_mutation_create
 *		The mutating calls of a statement: method through target, their
 *		operations polled through op_target, with tokens of creds; in cxt.
 *		wait: rows are done when their operations are, else once accepted.
 */
RbMutation *
rb_mutation_create(MemoryContext cxt, RbCredentials *creds,
				   RbCallTarget *target, RbCallTarget *op_target,
				   RbMethod method, int max_concurrent_calls, bool wait)
{
	RbMutation *m = MemoryContextAllocZero(cxt, sizeof(RbMutation));

	m->creds = creds;
	m->target = target;
	m->op_target = op_target;
	m->method = method;
	m->wait = wait;
	m->max_window = Max(max_concurrent_calls, 1);
	m->window = 1;
	m->cxt = cxt;
	m->reply_cxt = AllocSetContextCreate(cxt, "redis_backup_fdw reply",
										 ALLOCSET_SMALL_SIZES);
	rb_init_allocator(&m->allocator, m->reply_cxt);
	return m;
}

/*
 * rb_mutation_add
 *		Queue the call of one row (key: a backup or cluster id, database
 *		encoding) and start it as soon as the window allows, waiting for
 *		rows under way as needed.  keep: the caller will wait for the row
 *		(rb_mutation_wait_row), which frees it; otherwise it goes when done.
 */
RbMutationRow *
rb_mutation_add(RbMutation *m, const char *key, bool keep)
{
	ErrorContextCallback errcallback;
	RbMutationRow *row;
	MemoryContext oldcxt;

	errcallback.callback = mutation_error_context;
	errcallback.arg = m;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	while (m->nrows >= m->window)
		step(m);

	row = MemoryContextAllocZero(m->cxt, sizeof(RbMutationRow));
	row->cxt = AllocSetContextCreate(m->cxt, "redis_backup_fdw row",
									 ALLOCSET_SMALL_SIZES);
	row->call_cxt = AllocSetContextCreate(row->cxt, "redis_backup_fdw call",
										  ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(row->cxt);
	row->key = pstrdup(key);
	row->key_utf8 = rb_key_to_utf8(key);
	MemoryContextSwitchTo(oldcxt);
	rb_uuid_generate(row->idempotency_key);
	row->keep = keep;
	row->next = m->rows;
	m->rows = row;
	m->nrows++;
	start_row(m, row);
	error_context_stack = errcallback.previous;
	return row;
}

/*
 * rb_mutation_wait_row
 *		Wait until a kept row is done; its operation's created_at, then the
 *		row is freed.
 */
void
rb_mutation_wait_row(RbMutation *m, RbMutationRow *row, int64 *seconds,
					 int32 *nanos)
{
	ErrorContextCallback errcallback;

	errcallback.callback = mutation_error_context;
	errcallback.arg = m;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	while (row->state != RB_ROW_DONE)
		step(m);
	error_context_stack = errcallback.previous;

	*seconds = row->created_seconds;
	*nanos = row->created_nanos;
	MemoryContextDelete(row->cxt);
	pfree(row);
}

/*
 * rb_mutation_finish
 *		Wait until every row is done.
 */
void
rb_mutation_finish(RbMutation *m)
{
	ErrorContextCallback errcallback;

	errcallback.callback = mutation_error_context;
	errcallback.arg = m;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	while (m->nrows > 0)
		step(m);
	error_context_stack = errcallback.previous;
}

/*
 * rb_mutation_abandon
 *		Give up the calls in flight: cancelled, not waited for.  Must not
 *		raise errors: runs from a memory context callback.  Operations
 *		already accepted go on remotely.
 */
void
rb_mutation_abandon(RbMutation *m)
{
	RbMutationRow *row;

	for (row = m->rows; row != NULL; row = row->next)
	{
		if (row->rc.call != NULL)
			rb_call_abandon(row->rc.call);
		row->rc.call = NULL;
	}
	m->rows = NULL;
	m->nrows = m->in_flight = m->op_in_flight = 0;
}

/*
 * start_row
 *		Make a row's mutating call, with its idempotency key.
 */
static void
start_row(RbMutation *m, RbMutationRow *row)
{
	row->state = RB_ROW_CALLING;
	begin_row_call(m, row, m->method, row->key_utf8, row->key, m->target);
	m->in_flight++;
}

/*
 * start_due_polls
 *		Ask again for the operations whose pause is over, as far as the
 *		window allows; *next_due: when the next pause ends (0: none).
 */
static void
start_due_polls(RbMutation *m, TimestampTz now, TimestampTz *next_due)
{
	RbMutationRow *row;

	*next_due = 0;
	for (row = m->rows; row != NULL; row = row->next)
	{
		if (row->state != RB_ROW_SLEEPING && row->state != RB_ROW_RETRYING)
			continue;
		if (row->poll_at > now ||
			m->in_flight + m->op_in_flight >= m->window)
		{
			if (*next_due == 0 || row->poll_at < *next_due)
				*next_due = row->poll_at;
			continue;
		}
		if (row->state == RB_ROW_RETRYING)
		{
			retry_row_call(m, row);
			continue;
		}
		row->state = RB_ROW_POLLING;
		begin_row_call(m, row, RB_METHOD_OPERATION_GET, row->operation_id,
					   row->operation_id, m->op_target);
		m->op_in_flight++;
	}
}

/*
 * retry_row_call
 *		Start a row's call or poll again after its backoff: the same
 *		request, with the same idempotency key.
 */
static void
retry_row_call(RbMutation *m, RbMutationRow *row)
{
	if (row->retry_is_poll)
	{
		row->state = RB_ROW_POLLING;
		rb_credentials_begin(m->creds, m->op_target, &row->rc);
		m->op_in_flight++;
	}
	else
	{
		row->state = RB_ROW_CALLING;
		rb_credentials_begin(m->creds, m->target, &row->rc);
		m->in_flight++;
	}
}

/*
 * begin_row_call
 *		Start a call of a row's: method with key (as sent; key_text as
 *		messages show it) through target, a mutating one with the row's
 *		idempotency key.  Its request lives in the row's call context,
 *		reset for each call.
 */
static void
begin_row_call(RbMutation *m, RbMutationRow *row, RbMethod method,
			   const char *key, const char *key_text, RbCallTarget *target)
{
	RbRemoteCall *rc = &row->rc;
	MemoryContext oldcxt;
	StringInfoData desc;

	MemoryContextReset(row->call_cxt);
	oldcxt = MemoryContextSwitchTo(row->call_cxt);
	initStringInfo(&desc);
	rb_describe_call(&desc, method,
					 psprintf("=%s", quote_literal_cstr(key_text)), 0, NULL);
	memset(rc, 0, sizeof(RbRemoteCall));
	rc->method = method;
	rc->request = rb_key_request(method, key);
	rc->desc = desc.data;
	if (rb_method_is_mutating(method))
		rc->idempotency_key = row->idempotency_key;
	rc->owner = row;
	rc->scan = m;
	rc->defer_retry = true;
	MemoryContextSwitchTo(oldcxt);
	rb_credentials_begin(m->creds, target, rc);
}

/*
 * step
 *		Start the polls that are due, then wait for one call to complete
 *		and handle it, or sleep until the next poll is due.
 */
static void
step(RbMutation *m)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_due;
	RbMutationRow *row;
	RbRemoteCall *rc = NULL;

	start_due_polls(m, now, &next_due);
	row = completed_row(m);
	if (row != NULL)
	{
		collect_row(m, row);
		return;
	}
	if (m->in_flight > 0 || m->op_in_flight > 0)
		rc = rb_remote_wait_either(m->target, m->in_flight > 0,
								   m->op_target, m->op_in_flight > 0, m,
								   next_due == 0 ? -1 : rb_ms_until(next_due));
	else if (next_due != 0)
		rb_sleep_until(next_due);
	else
		elog(ERROR, "redis_backup_fdw: no row under way to wait for");
	if (rc != NULL)
		collect_row(m, (RbMutationRow *) rc->owner);
}

/*
 * completed_row
 *		A row whose call another scan's wait found completed on the shared
 *		Managed Redis channel, or NULL.
 */
static RbMutationRow *
completed_row(RbMutation *m)
{
	RbMutationRow *row;

	for (row = m->rows; row != NULL; row = row->next)
	{
		if ((row->state == RB_ROW_CALLING || row->state == RB_ROW_POLLING) &&
			row->rc.call != NULL && row->rc.completed)
			return row;
	}
	return NULL;
}

/*
 * collect_row
 *		A row's call or poll has completed: read its Operation.  A call
 *		started again (a retry, a renewed token) is waited for again.
 */
static void
collect_row(RbMutation *m, RbMutationRow *row)
{
	bool		polling = (row->state == RB_ROW_POLLING);
	RbCallTarget *target = polling ? m->op_target : m->target;
	ProtobufCMessage *reply;
	RbOutcome	outcome;

	MemoryContextReset(m->reply_cxt);
	m->collecting = row;
	outcome = rb_remote_collect(target, &row->rc, &m->allocator, &reply);
	m->collecting = NULL;
	if (rb_credentials_renew(m->creds, target, &row->rc, outcome))
		return;
	if (polling)
		m->op_in_flight--;
	else
		m->in_flight--;
	if (outcome == RB_OUTCOME_RETRY)
	{
		if (row->rc.attempt >= target->max_attempts)
		{
			m->collecting = row;
			rb_remote_give_up(target, &row->rc);
		}
		row->state = RB_ROW_RETRYING;
		row->retry_is_poll = polling;
		row->poll_at = GetCurrentTimestamp() +
			(TimestampTz) rb_backoff_ms(row->rc.attempt) * 1000;
		return;
	}
	if (outcome != RB_OUTCOME_REPLY)
		report_not_found(m, row);
	read_operation(m, row, (Yandex__Cloud__Operation__Operation *) reply);
	MemoryContextReset(m->reply_cxt);
}

/*
 * read_operation
 *		What an Operation says of a row: accepted (the first reply, which
 *		opens the window), done, failed, or still running (poll again after
 *		a pause).
 */
static void
read_operation(RbMutation *m, RbMutationRow *row,
			   Yandex__Cloud__Operation__Operation *op)
{
	if (row->state == RB_ROW_CALLING)
	{
		if (op->id[0] == '\0' || strlen(op->id) > RB_MAX_ID_LENGTH * 4 ||
			!pg_verify_mbstr(PG_UTF8, op->id, strlen(op->id), true))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
					 errmsg("%s sent an invalid operation id",
							rb_service_name(m->target->service)),
					 errcontext("remote call %s", row->rc.desc)));
		row->operation_id = MemoryContextStrdup(row->cxt, op->id);
		if (op->created_at != NULL)
		{
			row->created_seconds = op->created_at->seconds;
			row->created_nanos = op->created_at->nanos;
		}
		m->target->stats->operations_started++;
		m->window = m->max_window;
	}
	if (op->done && op->result_case == YANDEX__CLOUD__OPERATION__OPERATION__RESULT_ERROR)
		report_operation_error(m, row, op->error);
	if (op->done || !m->wait)
	{
		if (op->done)
			m->target->stats->operations_finished++;
		end_row(m, row, true);
		return;
	}
	row->polls++;
	row->poll_at = GetCurrentTimestamp() +
		(TimestampTz) Min(RB_POLL_MAX_MS,
						  RB_POLL_INITIAL_MS * pow(1.5, row->polls - 1)) * 1000;
	row->state = RB_ROW_SLEEPING;
}

/*
 * report_operation_error
 *		A row's operation ended in error: raise it with the SQLSTATE its
 *		code maps to, as for a failed call.
 */
static void
report_operation_error(RbMutation *m, RbMutationRow *row,
					   const Google__Rpc__Status *error)
{
	RbCode		code = (error != NULL && error->code > RB_OK &&
						error->code <= RB_UNAUTHENTICATED)
		? (RbCode) error->code : RB_UNKNOWN;
	const char *message = (error != NULL && error->message[0] != '\0')
		? rb_redact(error->message, row->rc.token) : "(no message)";

	m->target->stats->operations_failed++;
	end_row(m, row, false);
	ereport(ERROR,
			(errcode(rb_code_sqlstate(code)),
			 errmsg("could not %s: operation %s failed: %s",
					what_row_does(m, row), row->operation_id, message),
			 errdetail_plural("The operation ended with %s; %llu call of the statement had succeeded before it.",
							  "The operation ended with %s; %llu calls of the statement had succeeded before it.",
							  (unsigned long) m->succeeded,
							  rb_code_name(code),
							  (unsigned long long) m->succeeded)));
}

/*
 * report_not_found
 *		The service answered a row's call or poll NOT_FOUND: the backup or
 *		cluster (or the operation) does not exist.
 */
static void
report_not_found(RbMutation *m, RbMutationRow *row)
{
	bool		polling = (row->state == RB_ROW_POLLING);

	end_row(m, row, false);
	ereport(ERROR,
			(errcode(rb_code_sqlstate(RB_NOT_FOUND)),
			 polling
			 ? errmsg("could not %s: %s does not know operation %s",
					  what_row_does(m, row),
					  rb_service_name(m->op_target->service),
					  row->operation_id)
			 : errmsg("could not %s: not found", what_row_does(m, row)),
			 errdetail_plural("%llu call of the statement had succeeded before.",
							  "%llu calls of the statement had succeeded before.",
							  (unsigned long) m->succeeded,
							  (unsigned long long) m->succeeded),
			 errcontext("remote call %s", row->rc.desc)));
}

/*
 * end_row
 *		A row is done, or failed: it leaves the rows under way.  A row done
 *		goes unless its caller keeps it; a failed one stays for the error
 *		being raised (freed with the statement's context).
 */
static void
end_row(RbMutation *m, RbMutationRow *row, bool succeeded)
{
	RbMutationRow **link;

	for (link = &m->rows; *link != NULL; link = &(*link)->next)
	{
		if (*link == row)
		{
			*link = row->next;
			m->nrows--;
			break;
		}
	}
	row->state = RB_ROW_DONE;
	row->rc.call = NULL;
	if (!succeeded)
		return;
	m->succeeded++;
	if (!row->keep)
	{
		MemoryContextDelete(row->cxt);
		pfree(row);
	}
}

/*
 * what_row_does
 *		"delete backup "x"", "back up cluster "x"": for messages.
 */
static char *
what_row_does(RbMutation *m, RbMutationRow *row)
{
	if (m->method == RB_METHOD_BACKUP_DELETE)
		return psprintf("delete backup \"%s\"", row->key);
	return psprintf("back up cluster \"%s\"", row->key);
}

/*
 * mutation_error_context
 *		Error context callback while the statement's rows are under way:
 *		name the operations left running (they go on remotely) and the
 *		calls whose outcome is unknown.
 */
static void
mutation_error_context(void *arg)
{
	RbMutation *m = arg;
	RbMutationRow *row;
	StringInfoData ops;
	StringInfoData calls;
	int			nops = 0;
	int			ncalls = 0;

	initStringInfo(&ops);
	initStringInfo(&calls);
	for (row = m->rows; row != NULL; row = row->next)
	{
		/* A call the service refused has a known outcome. */
		if (row == m->collecting && geterrcode() != ERRCODE_QUERY_CANCELED &&
			geterrcode() != ERRCODE_CONNECTION_FAILURE)
			continue;
		if (row->operation_id == NULL)
		{
			if (ncalls++ < RB_CONTEXT_MAX_OPERATIONS)
				appendStringInfo(&calls, "%s%s", calls.len > 0 ? ", " : "",
								 what_row_does(m, row));
			continue;
		}
		if (nops++ < RB_CONTEXT_MAX_OPERATIONS)
			appendStringInfo(&ops, "%s%s (%s)", ops.len > 0 ? ", " : "",
							 row->operation_id, what_row_does(m, row));
	}
	if (nops > RB_CONTEXT_MAX_OPERATIONS)
		appendStringInfo(&ops, " and %d more", nops - RB_CONTEXT_MAX_OPERATIONS);
	if (ncalls > RB_CONTEXT_MAX_OPERATIONS)
		appendStringInfo(&calls, " and %d more",
						 ncalls - RB_CONTEXT_MAX_OPERATIONS);
	if (nops > 0)
		errcontext("operations left running: %s", ops.data);
	if (ncalls > 0)
		errcontext("calls whose outcome is unknown: %s", calls.data);
}

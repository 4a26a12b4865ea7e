/*-------------------------------------------------------------------------
 *
 * operations.c
 *		  Operations of the calls that change things: BackupService.Delete
 *		  and ClusterService.Backup start one, OperationService.Get reads it.
 *
 * An operation is kept for the life of the process.  It finishes
 * --operation-ms after it started (default 300; 0: at once, so the call
 * already answers it done): the server loop finishes due operations
 * (emulator.c wakes for them as for delayed replies), and so does every
 * call before it is handled, so no call ever sees an operation unfinished
 * after its time.  Finishing makes the change in data.c (the backup
 * vanishes, or a new MANUAL backup appears), makes service.c forget the
 * pre-encoded pages it changed, and writes an "operation_done" line to the
 * call log.  An operation meant to fail (op_error fault) changes nothing.
 *
 * Idempotency keys: an operation remembers the key its call carried, and
 * emu_operation_find_key finds it again for the same account, so a repeated
 * call answers the first one's operation.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

/* Default --operation-ms. */
#define DEFAULT_OPERATION_MS 300

/* Longest --operation-ms: a day. */
#define MAX_OPERATION_MS 86400000

/* Key of the operation ids' hash: ids are the same in every run. */
#define OPERATION_ID_SECRET UINT64_C(0x4f7065726174696f)

static int64_t operation_ms = DEFAULT_OPERATION_MS;
static EmuOperation *operations;
static int	noperations;
static int	operations_cap;

/*
 * emu_operations_set_duration
 *		--operation-ms MS: how long an operation takes.
 */
void
emu_operations_set_duration(const char *arg)
{
	char	   *end;
	long long	v = strtoll(arg, &end, 10);

	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 0 ||
		v > MAX_OPERATION_MS)
		emu_fatal("--operation-ms %s: expected 0..%d", arg, MAX_OPERATION_MS);
	operation_ms = v;
}

/* The kinds of operation, indexed by EmuOpKind. */
static const EmuOpKindInfo op_kinds[] = {
	[EMU_OP_DELETE_BACKUP] = {
		"BackupService.Delete", "Delete the Redis backup",
		"backup", "Backup", "backup_id"
	},
	[EMU_OP_BACKUP_CLUSTER] = {
		"ClusterService.Backup", "Create a backup for the Redis cluster",
		"cluster", "Cluster", "cluster_id"
	},
};

/*
 * emu_op_kind
 *		What the emulator knows of operations of kind.
 */
const EmuOpKindInfo *
emu_op_kind(EmuOpKind kind)
{
	return &op_kinds[kind];
}

/*
 * wall_timestamp
 *		The wall clock now, as a timestamp (microsecond precision).
 */
static EmuTimestamp
wall_timestamp(void)
{
	int64_t		us = emu_wall_us();
	EmuTimestamp ts;

	ts.set = true;
	ts.seconds = us / 1000000;
	ts.nanos = (int32_t) (us % 1000000) * 1000;
	return ts;
}

/*
 * log_done
 *		The call log's line for a finished operation.
 */
static void
log_done(const EmuOperation *op)
{
	EmuBuf		body = {0};

	if (!emu_log_enabled())
		return;
	emu_json_field_str(&body, "event", "operation_done");
	emu_json_field_str(&body, "operation_id", op->id);
	emu_json_field_str(&body, "operation", emu_op_kind(op->kind)->method);
	emu_json_field_str(&body, emu_op_kind(op->kind)->target_field, op->target);
	emu_buf_printf(&body, ",\"ok\":%s",
				   op->error_code == GRPC_STATUS_OK ? "true" : "false");
	emu_json_field_str(&body, "status", emu_status_name(op->error_code));
	if (op->error_code != GRPC_STATUS_OK)
		emu_json_field_str(&body, "message", op->error_message);
	if (op->made_backup_id != NULL)
		emu_json_field_str(&body, "made_backup_id", op->made_backup_id);
	emu_json_field_str(&body, "created_by", op->account);
	emu_buf_append(&body, "", 0);
	emu_log_write(body.data, -1, emu_wall_us(), false);
	emu_buf_free(&body);
}

/*
 * make_change
 *		Make the change of a successful operation now; an error when its
 *		target is gone meanwhile (which the conflict check should prevent).
 */
static void
make_change(EmuOperation *op)
{
	char	   *folder_id = NULL;
	char	   *cluster_id = NULL;
	const char *made_folder;

	if (op->kind == EMU_OP_DELETE_BACKUP)
	{
		if (emu_data_delete_backup(op->target, &folder_id, &cluster_id))
		{
			emu_service_forget_pages(folder_id, cluster_id);
			free(folder_id);
			free(cluster_id);
			return;
		}
	}
	else if (emu_data_make_backup(op->target, &op->created_at,
								  &op->modified_at, &op->made_backup_id,
								  &made_folder))
	{
		emu_service_forget_pages(made_folder, op->target);
		return;
	}
	op->error_code = GRPC_STATUS_NOT_FOUND;
	free(op->error_message);
	op->error_message = emu_malloc(strlen(op->target) + 32);
	sprintf(op->error_message, "%s %s not found",
			emu_op_kind(op->kind)->target_title, op->target);
}

/*
 * finish
 *		Finish an operation: its change (unless it fails), its state, the
 *		log line.
 */
static void
finish(EmuOperation *op)
{
	op->modified_at = wall_timestamp();
	if (op->error_code == GRPC_STATUS_OK)
		make_change(op);
	op->done = true;
	log_done(op);
}

/*
 * emu_operations_finish_due
 *		Finish every operation whose time has come, in the order they
 *		started.
 */
void
emu_operations_finish_due(void)
{
	int64_t		now = emu_now_us();

	for (int i = 0; i < noperations; i++)
		if (!operations[i].done && operations[i].due_us <= now)
			finish(&operations[i]);
}

/*
 * emu_operations_next_due_us
 *		When the next unfinished operation is due (monotonic), or -1.
 */
int64_t
emu_operations_next_due_us(void)
{
	int64_t		next = -1;

	for (int i = 0; i < noperations; i++)
		if (!operations[i].done &&
			(next < 0 || operations[i].due_us < next))
			next = operations[i].due_us;
	return next;
}

/*
 * emu_operation_start
 *		Start an operation of kind on target for account, remembering its
 *		idempotency key (data NULL: none).  With error_code not OK it will
 *		fail so, changing nothing.  With --operation-ms 0 it is finished
 *		before this returns.
 */
const EmuOperation *
emu_operation_start(EmuOpKind kind, const char *target, const char *account,
					EmuBytes idempotency_key, grpc_status_code error_code,
					const char *error_message)
{
	EmuOperation *op;

	if (noperations == operations_cap)
	{
		operations_cap = operations_cap ? operations_cap * 2 : 16;
		operations = emu_realloc(operations, operations_cap * sizeof(EmuOperation));
	}
	op = &operations[noperations];
	memset(op, 0, sizeof(*op));
	/* like real ids, and the same in every run */
	emu_make_id("mdb", OPERATION_ID_SECRET, &noperations, sizeof(noperations),
				op->id);
	noperations++;
	op->kind = kind;
	op->target = emu_strdup(target);
	op->account = emu_strdup(account);
	if (idempotency_key.data != NULL)
	{
		op->idempotency_key = emu_malloc(idempotency_key.len + 1);
		memcpy(op->idempotency_key, idempotency_key.data, idempotency_key.len);
		op->idempotency_key[idempotency_key.len] = '\0';
	}
	op->created_at = wall_timestamp();
	op->modified_at = op->created_at;
	op->due_us = emu_now_us() + operation_ms * 1000;
	op->error_code = error_code;
	op->error_message = emu_strdup(error_message != NULL ? error_message : "");
	if (operation_ms == 0)
		finish(op);
	return op;
}

/*
 * emu_operation_find
 *		The operation with this id, or NULL.
 */
const EmuOperation *
emu_operation_find(const char *id)
{
	for (int i = 0; i < noperations; i++)
		if (strcmp(operations[i].id, id) == 0)
			return &operations[i];
	return NULL;
}

/*
 * emu_operation_find_key
 *		The operation that account started with this idempotency key, or
 *		NULL.
 */
const EmuOperation *
emu_operation_find_key(const char *account, EmuBytes idempotency_key)
{
	for (int i = 0; i < noperations; i++)
		if (operations[i].idempotency_key != NULL &&
			emu_bytes_equal_str(idempotency_key, operations[i].idempotency_key) &&
			strcmp(operations[i].account, account) == 0)
			return &operations[i];
	return NULL;
}

/*
 * emu_operation_running
 *		An unfinished operation of kind on target, or NULL: a second one
 *		would conflict with it.
 */
const EmuOperation *
emu_operation_running(EmuOpKind kind, const char *target)
{
	for (int i = 0; i < noperations; i++)
		if (!operations[i].done && operations[i].kind == kind &&
			strcmp(operations[i].target, target) == 0)
			return &operations[i];
	return NULL;
}

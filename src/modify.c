/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  INSERT and DELETE on a table of backups: the FdwRoutine callbacks
 *		  that plan and run them (redis_backup_fdw.c's routine names them).
 *
 * Opt-in, as in postgres_fdw: the option updatable (table, else server;
 * default false).  A DELETE's scan finds the rows as any scan does, and
 * each row becomes BackupService.Delete of its id; an INSERT gives only
 * source_cluster_id, and each row becomes ClusterService.Backup of it.
 * mutate.c makes the calls and follows their operations.  UPDATE is always
 * refused: a backup cannot be changed.  A table of clusters is read-only.
 *
 * DELETE ... RETURNING returns the rows as the scan read them (a whole-row
 * junk column carries them), so its calls overlap.  INSERT ... RETURNING,
 * when it waits for operations, returns each new backup's row, found with
 * ClusterService.ListBackups once the operation is done: it waits for each
 * row before the next.  Without RETURNING, or without waiting, rows are
 * queued and their calls overlap up to max_concurrent_calls; the statement
 * waits for all of them at its end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "redis_backup_fdw.h"

/* Names of the junk columns a DELETE's plan carries. */
#define RB_JUNK_ID "rb_backup_id"
#define RB_JUNK_WHOLEROW "rb_wholerow"

/* Slots of the fdw_private of a modify plan. */
enum RbModifyPrivateIndex
{
	RbModifyPrivateCallText,	/* String: the call, for EXPLAIN */
	RbModifyPrivateNeedRow		/* Boolean: RETURNING reads the row */
};

/* Execution state of an INSERT or DELETE. */
typedef struct RbModifyState
{
	/* what the plan and the options say */
	CmdType		operation;
	Relation	rel;
	const RbResource *res;
	RbField    *fields;			/* field of each attribute */
	char	   *call_text;
	bool		need_row;		/* RETURNING: the row to return */
	bool		wait;			/* wait_for_operations */
	int			page_size;

	/* DELETE: junk columns of the plan's rows; INSERT: the key column */
	AttrNumber	id_attno;
	AttrNumber	wholerow_attno;
	int			key_attidx;

	/* INSERT ... RETURNING: how a new backup becomes a row */
	RbColumn   *columns;
	int			ncolumns;
	RbConversionContext conversion;

	/* the credentials, channels and calls */
	RbCredentials *creds;
	RbConnection *conn;
	RbConnection *op_conn;
	RbCallTarget target;
	RbCallTarget op_target;
	RbMutation *mutation;
	RbFetch    *fetch;			/* INSERT ... RETURNING: ListBackups */
	RbCallStats stats;

	MemoryContext cxt;			/* all of the above */
	MemoryContext row_cxt;		/* reset per row */
	MemoryContextCallback cleanup;
} RbModifyState;

static void begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						 CmdType operation, char *call_text, bool need_row,
						 int eflags);
static void read_modify_options(Relation rel, RbServerOptions *server_opts,
								RbTableOptions *table_opts);
static void check_updatable(Relation rel, CmdType operation);
static int	field_attno(Relation rel, const RbResource *res, RbField field);
static void check_insert_columns(PlannerInfo *root, Relation rel,
								 const RbResource *res);
static void connect_modify(RbModifyState *state, ResultRelInfo *rinfo,
						   EState *estate, const RbServerOptions *server_opts);
static void init_insert_columns(RbModifyState *state);
static void modify_cleanup(void *arg);
static void find_new_backup(RbModifyState *state, const char *cluster_id,
							int64 seconds, int32 nanos, TupleTableSlot *slot);

/*
 * rb_is_foreign_rel_updatable
 *		IsForeignRelUpdatable: INSERT and DELETE when the table (else its
 *		server) says updatable and the table shows backups; never UPDATE.
 */
int
rb_is_foreign_rel_updatable(Relation rel)
{
	RbServerOptions server_opts;
	RbTableOptions table_opts;

	read_modify_options(rel, &server_opts, &table_opts);
	if (!table_opts.updatable || !table_opts.res->updatable)
		return 0;
	return (1 << CMD_INSERT) | (1 << CMD_DELETE);
}

/*
 * read_modify_options
 *		The options of a foreign table and its server.
 */
static void
read_modify_options(Relation rel, RbServerOptions *server_opts,
					RbTableOptions *table_opts)
{
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));

	rb_get_server_options(GetForeignServer(table->serverid), server_opts);
	rb_get_table_options(table->relid, server_opts, table_opts);
}

/*
 * check_updatable
 *		Refuse, as PostgreSQL does for a foreign table that does not allow
 *		it, an operation the table does not allow; UPDATE always.
 */
static void
check_updatable(Relation rel, CmdType operation)
{
	int			allowed = rb_is_foreign_rel_updatable(rel);
	const char *name = RelationGetRelationName(rel);
	RbServerOptions server_opts;
	RbTableOptions table_opts;

	if (allowed & (1 << operation))
		return;
	read_modify_options(rel, &server_opts, &table_opts);
	if (operation == CMD_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("foreign table \"%s\" does not allow updates", name),
				 table_opts.res->updatable
				 ? errhint("A backup cannot be changed: DELETE it, or INSERT a new backup of its cluster.")
				 : errhint("A table of %ss is read-only.",
						   table_opts.res->item_name)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 operation == CMD_INSERT
			 ? errmsg("foreign table \"%s\" does not allow inserts", name)
			 : errmsg("foreign table \"%s\" does not allow deletes", name),
			 table_opts.res->updatable
			 ? errhint("Set the option updatable 'true' on the foreign table or its server.")
			 : errhint("A table of %ss is read-only.",
					   table_opts.res->item_name)));
}

/*
 * field_attno
 *		The attribute number of rel's column mapped to field, or
 *		InvalidAttrNumber.
 */
static int
field_attno(Relation rel, const RbResource *res, RbField field)
{
	RbField    *fields = rb_map_columns(rel, res);
	int			natts = RelationGetDescr(rel)->natts;
	int			i;

	for (i = 0; i < natts; i++)
	{
		if (fields[i] == field)
			return i + 1;
	}
	return InvalidAttrNumber;
}

/*
 * rb_add_foreign_update_targets
 *		AddForeignUpdateTargets: refuse UPDATE, a table that does not allow
 *		DELETE, a table without the id column and a DELETE without a
 *		condition; the row identity is the backup's id, and with RETURNING
 *		the whole row as read.
 */
void
rb_add_foreign_update_targets(PlannerInfo *root, Index rtindex,
							  RangeTblEntry *target_rte, Relation rel)
{
	RbServerOptions server_opts;
	RbTableOptions table_opts;
	int			attno;
	Form_pg_attribute att;
	Var		   *var;

	check_updatable(rel, root->parse->commandType);
	read_modify_options(rel, &server_opts, &table_opts);
	attno = field_attno(rel, table_opts.res, table_opts.res->id_field);
	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot delete from foreign table \"%s\": it has no column for the field id",
						RelationGetRelationName(rel)),
				 errhint("A DELETE deletes each row's backup by its id: add a column id (or one with the column option field 'id').")));

	/*
	 * A table bound to a folder or cloud would delete all its backups.  The
	 * planner has folded a constant condition (WHERE true) away by now, so
	 * the acknowledgement must be one it keeps.
	 */
	if (root->parse->jointree->quals == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("DELETE on foreign table \"%s\" needs a WHERE clause",
						RelationGetRelationName(rel)),
				 errdetail("Without one it deletes every backup the table shows."),
				 errhint("If every backup the table shows is meant, say so: WHERE %s IS NOT NULL.",
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																attno - 1)->attname)))));

	att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	var = makeVar(rtindex, attno, att->atttypid, att->atttypmod,
				  att->attcollation, 0);
	add_row_identity_var(root, var, rtindex, RB_JUNK_ID);
	if (root->parse->returningList != NIL)
		add_row_identity_var(root,
							 makeWholeRowVar(target_rte, rtindex, 0, false),
							 rtindex, RB_JUNK_WHOLEROW);
}

/*
 * rb_plan_foreign_modify
 *		PlanForeignModify: check an INSERT's columns; say what each row
 *		calls, and whether RETURNING needs the row.
 */
List *
rb_plan_foreign_modify(PlannerInfo *root, ModifyTable *plan,
					   Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel = table_open(rte->relid, NoLock);
	RbServerOptions server_opts;
	RbTableOptions table_opts;
	const RbResource *res;
	StringInfoData call;
	bool		returning = (plan->returningLists != NIL);

	check_updatable(rel, plan->operation);
	read_modify_options(rel, &server_opts, &table_opts);
	res = table_opts.res;
	if (plan->operation == CMD_INSERT)
		check_insert_columns(root, rel, res);

	initStringInfo(&call);
	if (plan->operation == CMD_INSERT)
		rb_describe_call(&call, res->insert_method,
						 psprintf("=(each row's %s)",
								  res->fields[res->insert_field].name),
						 0, NULL);
	else
		rb_describe_call(&call, res->delete_method, "=(each row's id)", 0,
						 NULL);
	table_close(rel, NoLock);

	/* In the order of enum RbModifyPrivateIndex. */
	return list_make2(makeString(call.data), makeBoolean(returning));
}

/*
 * check_insert_columns
 *		An INSERT gives the insert field (source_cluster_id) only: any other
 *		column that is not a NULL constant is an error naming it, before any
 *		call; so is a table without the column.
 */
static void
check_insert_columns(PlannerInfo *root, Relation rel, const RbResource *res)
{
	const char *key_name = res->fields[res->insert_field].name;
	int			key_attno = field_attno(rel, res, res->insert_field);
	ListCell   *lc;

	if (key_attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into foreign table \"%s\": it has no column for the field %s",
						RelationGetRelationName(rel), key_name)));
	foreach(lc, root->parse->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Node	   *expr = (Node *) tle->expr;

		if (tle->resjunk || tle->resno == key_attno ||
			(IsA(expr, Const) && ((Const *) expr)->constisnull))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert a value into column \"%s\" of foreign table \"%s\"",
						NameStr(TupleDescAttr(RelationGetDescr(rel),
											  tle->resno - 1)->attname),
						RelationGetRelationName(rel)),
				 errdetail("An INSERT takes a backup of the cluster its %s names; the service sets everything else.",
						   key_name),
				 errhint("Give only %s.", key_name)));
	}
}

/*
 * rb_begin_foreign_modify
 *		BeginForeignModify: the state, and (unless only explaining) the
 *		credentials, channels and the engine of the calls.
 */
void
rb_begin_foreign_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						List *fdw_private, int subplan_index, int eflags)
{
	begin_modify(mtstate, rinfo, mtstate->operation,
				 strVal(list_nth(fdw_private, RbModifyPrivateCallText)),
				 boolVal(list_nth(fdw_private, RbModifyPrivateNeedRow)),
				 eflags);
}

/*
 * rb_begin_foreign_insert
 *		BeginForeignInsert: rows that COPY or a partitioned table's INSERT
 *		routes to the table; nothing was planned for them, so each row's
 *		columns are checked as it comes (rb_exec_foreign_insert).
 */
void
rb_begin_foreign_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	check_updatable(rinfo->ri_RelationDesc, CMD_INSERT);
	begin_modify(mtstate, rinfo, CMD_INSERT, NULL,
				 rinfo->ri_returningList != NIL, 0);
}

/*
 * begin_modify
 *		The state of an INSERT or DELETE of rinfo's table (call_text: its
 *		EXPLAIN, need_row: RETURNING reads the row); unless only explaining,
 *		the credentials, channels and the engine of the calls.
 */
static void
begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
			 CmdType operation, char *call_text, bool need_row, int eflags)
{
	EState	   *estate = mtstate->ps.state;
	RbModifyState *state;
	RbServerOptions server_opts;
	RbTableOptions table_opts;
	MemoryContext oldcxt;

	state = palloc0(sizeof(RbModifyState));
	rinfo->ri_FdwState = state;
	state->operation = operation;
	state->rel = rinfo->ri_RelationDesc;
	state->call_text = call_text;
	state->need_row = need_row;
	read_modify_options(state->rel, &server_opts, &table_opts);
	state->res = table_opts.res;
	state->wait = table_opts.wait_for_operations;
	state->page_size = table_opts.page_size;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	state->cxt = AllocSetContextCreate(estate->es_query_cxt,
									   "redis_backup_fdw modify",
									   ALLOCSET_SMALL_SIZES);
	state->row_cxt = AllocSetContextCreate(state->cxt,
										   "redis_backup_fdw modify row",
										   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(state->cxt);
	state->fields = rb_map_columns(state->rel, state->res);
	if (state->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		state->id_attno = ExecFindJunkAttributeInTlist(subplan->targetlist,
													   RB_JUNK_ID);
		if (!AttributeNumberIsValid(state->id_attno))
			elog(ERROR, "could not find junk column %s", RB_JUNK_ID);
		state->wholerow_attno =
			ExecFindJunkAttributeInTlist(subplan->targetlist,
										 RB_JUNK_WHOLEROW);
	}
	else
		init_insert_columns(state);
	connect_modify(state, rinfo, estate, &server_opts);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * init_insert_columns
 *		The column of the insert field, and the columns of the new
 *		backup's row for RETURNING.
 */
static void
init_insert_columns(RbModifyState *state)
{
	TupleDesc	tupdesc = RelationGetDescr(state->rel);
	int			i;

	state->key_attidx = field_attno(state->rel, state->res,
									state->res->insert_field) - 1;
	state->columns = palloc(sizeof(RbColumn) * Max(tupdesc->natts, 1));
	for (i = 0; i < tupdesc->natts; i++)
	{
		if (state->fields[i] == RB_FIELD_NONE)
			continue;
		rb_init_column(&state->columns[state->ncolumns++],
					   TupleDescAttr(tupdesc, i), i, state->res,
					   state->fields[i]);
	}
	state->conversion.rel = state->rel;
	state->conversion.id_offset = rb_item_string_offset(state->res,
														state->res->id_field);
}

/*
 * connect_modify
 *		The user mapping's credentials, the channels of the Managed Redis
 *		API and of the Operation service (released however the statement
 *		ends), and the engine of the calls.
 */
static void
connect_modify(RbModifyState *state, ResultRelInfo *rinfo, EState *estate,
			   const RbServerOptions *server_opts)
{
	ForeignTable *table = GetForeignTable(RelationGetRelid(state->rel));
	ForeignServer *server = GetForeignServer(table->serverid);
	UserMapping *user = GetUserMapping(rb_modify_user(rinfo, estate),
									   server->serverid);

	state->creds = rb_get_credentials(user, server_opts, state->cxt,
									  &state->stats);
	rb_set_call_target(&state->target, RB_SERVICE_MDB, server, server_opts,
					   state->creds, &state->stats, state->cxt);
	rb_set_call_target(&state->op_target, RB_SERVICE_OPERATION, server,
					   server_opts, state->creds, &state->stats, state->cxt);

	state->cleanup.func = modify_cleanup;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(state->cxt, &state->cleanup);
	state->conn = rb_acquire_connection(user, server_opts, RB_SERVICE_MDB);
	state->target.conn = state->conn;
	state->target.channel = rb_connection_channel(state->conn);
	state->op_conn = rb_acquire_connection(user, server_opts,
										   RB_SERVICE_OPERATION);
	state->op_target.conn = state->op_conn;
	state->op_target.channel = rb_connection_channel(state->op_conn);

	state->mutation = rb_mutation_create(state->cxt, state->creds,
										 &state->target, &state->op_target,
										 state->operation == CMD_INSERT
										 ? state->res->insert_method
										 : state->res->delete_method,
										 server_opts->max_concurrent_calls,
										 state->wait);
}

/*
 * modify_cleanup
 *		Memory context callback: give up the calls in flight (operations
 *		accepted go on remotely) and give the channels back.  Must not
 *		raise an error.
 */
static void
modify_cleanup(void *arg)
{
	RbModifyState *state = arg;

	if (state->mutation != NULL)
		rb_mutation_abandon(state->mutation);
	if (state->fetch != NULL)
		rb_fetch_abandon(state->fetch);
	if (state->conn != NULL)
		rb_release_connection(state->conn);
	state->conn = NULL;
	if (state->op_conn != NULL)
		rb_release_connection(state->op_conn);
	state->op_conn = NULL;
}

/*
 * rb_exec_foreign_insert
 *		ExecForeignInsert: ClusterService.Backup of the row's cluster.  With
 *		RETURNING and waiting, the row is the new backup's, once its
 *		operation is done; else the call is queued and the row returned as
 *		given (source_cluster_id and NULLs).
 */
TupleTableSlot *
rb_exec_foreign_insert(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RbModifyState *state = rinfo->ri_FdwState;
	TupleDesc	tupdesc = slot->tts_tupleDescriptor;
	RbMutationRow *row;
	char	   *key;
	int64		seconds;
	int32		nanos;
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < tupdesc->natts; i++)
	{
		if (i == state->key_attidx || slot->tts_isnull[i] ||
			TupleDescAttr(tupdesc, i)->attisdropped)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert a value into column \"%s\" of foreign table \"%s\"",
						NameStr(TupleDescAttr(tupdesc, i)->attname),
						RelationGetRelationName(state->rel)),
				 errhint("Give only %s.",
						 state->res->fields[state->res->insert_field].name)));
	}
	if (slot->tts_isnull[state->key_attidx])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of foreign table \"%s\"",
						NameStr(TupleDescAttr(tupdesc, state->key_attidx)->attname),
						RelationGetRelationName(state->rel)),
				 errdetail("An INSERT takes a backup of the cluster this column names.")));

	MemoryContextReset(state->row_cxt);
	key = MemoryContextStrdup(state->row_cxt,
							  TextDatumGetCString(slot->tts_values[state->key_attidx]));
	if (!state->need_row || !state->wait)
	{
		(void) rb_mutation_add(state->mutation, key, false);
		return slot;
	}
	row = rb_mutation_add(state->mutation, key, true);
	rb_mutation_wait_row(state->mutation, row, &seconds, &nanos);
	find_new_backup(state, key, seconds, nanos, slot);
	return slot;
}

/*
 * find_new_backup
 *		The backup an operation of ClusterService.Backup took: the newest
 *		MANUAL backup of the cluster started at or after the operation was
 *		created (ClusterService.ListBackups), into slot.  Not found: the
 *		slot keeps the row as given, with a WARNING.
 */
static void
find_new_backup(RbModifyState *state, const char *cluster_id, int64 seconds,
				int32 nanos, TupleTableSlot *slot)
{
	const Yandex__Cloud__Mdb__Redis__V1__Backup *best = NULL;
	ProtobufCMessage **items;
	size_t		nitems;
	char	   *keys[1];
	MemoryContext oldcxt;

	if (state->fetch == NULL)
		state->fetch = rb_fetch_create(state->cxt, &state->target,
									   state->creds,
									   RB_METHOD_CLUSTER_LIST_BACKUPS,
									   state->page_size, 1, false);
	keys[0] = unconstify(char *, cluster_id);
	rb_fetch_restart(state->fetch, keys, 1);
	while (rb_fetch_next_page(state->fetch, &items, &nitems, NULL))
	{
		size_t		i;

		for (i = 0; i < nitems; i++)
		{
			const Yandex__Cloud__Mdb__Redis__V1__Backup *b =
				(const Yandex__Cloud__Mdb__Redis__V1__Backup *) items[i];
			const Google__Protobuf__Timestamp *t = b->started_at;

			if (b->type != YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL ||
				t == NULL || t->seconds < seconds ||
				(t->seconds == seconds && t->nanos < nanos))
				continue;
			if (best != NULL &&
				(t->seconds < best->started_at->seconds ||
				 (t->seconds == best->started_at->seconds &&
				  t->nanos <= best->started_at->nanos)))
				continue;
			best = b;
			ExecClearTuple(slot);
			oldcxt = MemoryContextSwitchTo(state->row_cxt);
			rb_store_item(items[i], state->columns, state->ncolumns,
						  &state->conversion, slot);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	if (best == NULL)
		ereport(WARNING,
				(errmsg("the new backup of cluster \"%s\" is not in its listing yet",
						cluster_id),
				 errdetail("RETURNING shows the row as given.")));
}

/*
 * rb_exec_foreign_delete
 *		ExecForeignDelete: BackupService.Delete of the row's id, queued; the
 *		row returned is the row as the scan read it.
 */
TupleTableSlot *
rb_exec_foreign_delete(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	RbModifyState *state = rinfo->ri_FdwState;
	Datum		id;
	bool		isnull;

	id = slot_getattr(planSlot, state->id_attno, &isnull);
	if (isnull)
		return NULL;			/* a row without an id is no backup */
	MemoryContextReset(state->row_cxt);
	(void) rb_mutation_add(state->mutation,
						   MemoryContextStrdup(state->row_cxt,
											   TextDatumGetCString(id)),
						   false);

	if (AttributeNumberIsValid(state->wholerow_attno))
	{
		Datum		whole = slot_getattr(planSlot, state->wholerow_attno,
										 &isnull);

		if (!isnull)
		{
			HeapTupleHeader td = DatumGetHeapTupleHeader(whole);
			HeapTupleData tuple;

			tuple.t_len = HeapTupleHeaderGetDatumLength(td);
			ItemPointerSetInvalid(&tuple.t_self);
			tuple.t_tableOid = RelationGetRelid(state->rel);
			tuple.t_data = td;
			ExecForceStoreHeapTuple(heap_copytuple(&tuple), slot, true);
		}
	}
	return slot;
}

/*
 * rb_end_foreign_modify
 *		EndForeignModify: wait for every call and operation of the
 *		statement, then let the channels go.
 */
void
rb_end_foreign_modify(EState *estate, ResultRelInfo *rinfo)
{
	RbModifyState *state = rinfo->ri_FdwState;

	if (state == NULL || state->cxt == NULL)
		return;
	rb_mutation_finish(state->mutation);
	MemoryContextDelete(state->cxt);
	state->cxt = NULL;
}

/*
 * rb_explain_foreign_modify
 *		ExplainForeignModify: the call of each row, whether operations are
 *		waited for; with ANALYZE (once every call is done) the counters.
 */
void
rb_explain_foreign_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index,
						  ExplainState *es)
{
	RbModifyState *state = rinfo->ri_FdwState;

	ExplainPropertyText("Remote Call",
						strVal(list_nth(fdw_private, RbModifyPrivateCallText)),
						es);
	ExplainPropertyText("Operations",
						state->wait
						? "waited for (OperationService.Get)"
						: "not waited for (wait_for_operations 'false')",
						es);
	if (!es->analyze || state->cxt == NULL)
		return;

	/* EXPLAIN prints before the executor ends: finish the calls first. */
	rb_mutation_finish(state->mutation);
	ExplainPropertyInteger("Remote Calls", NULL, state->stats.calls, es);
	ExplainPropertyInteger("Retries", NULL, state->stats.retries, es);
	ExplainPropertyInteger("Operations Started", NULL,
						   state->stats.operations_started, es);
	ExplainPropertyInteger("Operations Finished", NULL,
						   state->stats.operations_finished, es);
	ExplainPropertyInteger("Operations Failed", NULL,
						   state->stats.operations_failed, es);
}

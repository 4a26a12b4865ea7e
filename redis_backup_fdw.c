/*-------------------------------------------------------------------------
 *
 * redis_backup_fdw.c
 *		  Foreign data wrapper for Yandex Cloud Managed Redis backups:
 *		  planning, scanning, EXPLAIN and IMPORT FOREIGN SCHEMA.
 *
 * A scan turns its key condition into calls: id into BackupService.Get,
 * source_cluster_id into ClusterService.ListBackups, folder_id (or the
 * table's folder_id option) into BackupService.List.  List pages are
 * fetched one at a time as the executor consumes rows, each decoded into a
 * memory context that is reset for the next.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "redis_backup_fdw.h"

PG_MODULE_MAGIC;

/* Planner's guesses of how many backups a call finds. */
#define RB_EST_ROWS_PER_CLUSTER 50.0
#define RB_EST_ROWS_PER_FOLDER 1000.0
#define RB_EST_ARRAY_LENGTH 10.0

/* Cost of one remote call, and of decoding one backup. */
#define RB_CALL_COST 100.0
#define RB_ROW_COST 0.02

/*
 * Gets of an IN list run ahead of the executor: the window of calls in
 * flight starts at one (so LIMIT 1 costs one call) and doubles up to this.
 */
#define RB_MAX_GETS_IN_FLIGHT 16

/* Cost of a scan that cannot run: never chosen over one that can. */
#define RB_UNRUNNABLE_COST 1.0e10

/*
 * Planner information about a foreign table, in baserel->fdw_private.
 */
typedef struct RbFdwRelationInfo
{
	/* options */
	RbServerOptions server;
	RbTableOptions table;

	/* columns: Backup field of each attribute (attno - 1) */
	RbField    *fields;
	int			natts;

	/* best key among the table's own conditions, if any */
	bool		has_base_key;
	RbKeyQual	base_key;
	RbCallKind	base_kind;
} RbFdwRelationInfo;

/*
 * A parameterized path to be: the outer relations it needs and the best
 * key they give.
 */
typedef struct RbParamCandidate
{
	Relids		required_outer;
	RbCallKind	kind;
	RbKeyQual	key;
} RbParamCandidate;

/*
 * Slots of ForeignScan.fdw_private.  fdw_exprs holds the key's value
 * expression, when the call has one.
 */
enum RbFdwScanPrivateIndex
{
	RbFdwScanPrivateCallKind,	/* Integer: RbCallKind */
	RbFdwScanPrivateKeyIsArray, /* Boolean: key is col = ANY(array) */
	RbFdwScanPrivateFolderId,	/* String: table folder_id, or "" */
	RbFdwScanPrivatePageSize,	/* Integer: page_size to ask for */
	RbFdwScanPrivateCallText	/* String: the call, for EXPLAIN */
};

/*
 * Execution state of a foreign scan.
 */
typedef struct RbFdwScanState
{
	/* what the plan says */
	RbCallKind	kind;
	bool		key_is_array;
	char	   *table_folder_id;
	int			page_size;
	char	   *call_text;
	ExprState  *key_state;		/* NULL for RB_CALL_TABLE_FOLDER */

	/* the table */
	RbField    *fields;			/* Backup field of each attribute */
	TupleDesc	tupdesc;

	/* the connection */
	RbConnection *conn;
	RbCallTarget target;
	ProtobufCAllocator allocator;	/* decodes into page_cxt */

	/* key values of this (re)scan, distinct and sorted */
	MemoryContext keys_cxt;
	char	  **keys;
	int			nkeys;
	int			next_key;
	bool		keys_ready;

	/* Gets started ahead (RB_CALL_GET): keys [next_key, gets_started) */
	RbCall	   *gets[RB_MAX_GETS_IN_FLIGHT];	/* by key index modulo */
	int			gets_started;
	int			get_window;

	/* the listing in progress (List kinds) */
	bool		listing;
	char		page_token[RB_MAX_PAGE_TOKEN_LENGTH + 1];
	HTAB	   *seen_tokens;	/* tokens of this listing, to catch loops */

	/* the current page */
	MemoryContext page_cxt;
	Yandex__Cloud__Mdb__Redis__V1__Backup **backups;
	size_t		nbackups;
	size_t		next_backup;
	Yandex__Cloud__Mdb__Redis__V1__Backup *single;	/* a Get's reply */

	/* per-row values, reset for each row */
	MemoryContext tuple_cxt;

	/* all of the above, and its cleanup */
	MemoryContext scan_cxt;
	MemoryContextCallback cleanup;

	RbCallStats stats;
} RbFdwScanState;

/* Entry of seen_tokens. */
typedef struct RbSeenToken
{
	char		token[RB_MAX_PAGE_TOKEN_LENGTH + 1];
} RbSeenToken;

PG_FUNCTION_INFO_V1(redis_backup_fdw_handler);

static void redisGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
static void redisGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
static ForeignScan *redisGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid,
										ForeignPath *best_path, List *tlist,
										List *scan_clauses, Plan *outer_plan);
static void redisBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *redisIterateForeignScan(ForeignScanState *node);
static void redisReScanForeignScan(ForeignScanState *node);
static void redisEndForeignScan(ForeignScanState *node);
static void redisExplainForeignScan(ForeignScanState *node, ExplainState *es);
static List *redisImportForeignSchema(ImportForeignSchemaStmt *stmt,
									  Oid serverOid);

static double estimate_rows(RbCallKind kind, RbKeyQual *key);
static void cost_scan(RbCallKind kind, double rows, Cost *startup_cost,
					  Cost *total_cost);
static bool better_key(RbKeyQual *candidate, bool have, RbKeyQual *best);
static void consider_join_clause(PlannerInfo *root, RelOptInfo *baserel,
								 RbFdwRelationInfo *fpinfo,
								 RestrictInfo *rinfo, List **candidates);
static bool ec_member_is_key_column(PlannerInfo *root, RelOptInfo *rel,
									EquivalenceClass *ec,
									EquivalenceMember *em, void *arg);
static void report_no_key(Relation rel, RbFdwRelationInfo *fpinfo)
			pg_attribute_noreturn();
static bool limit_applies_to_scan(PlannerInfo *root, List *scan_clauses,
								  RbKeyQual *key);
static void scan_cleanup(void *arg);
static void abandon_gets(RbFdwScanState *state);
static char *get_call_desc(const char *backup_id);
static void compute_keys(ForeignScanState *node, RbFdwScanState *state);
static bool fetch_page(RbFdwScanState *state);
static bool fetch_get(RbFdwScanState *state);
static bool fetch_list_page(RbFdwScanState *state);
static void remember_page_token(RbFdwScanState *state, const char *token,
								const char *call_desc);
static void store_backup(RbFdwScanState *state,
						 Yandex__Cloud__Mdb__Redis__V1__Backup *b,
						 TupleTableSlot *slot);
static int	compare_cstrings(const void *a, const void *b);

/*
 * redis_backup_fdw_handler
 *		The FdwRoutine of redis_backup_fdw.
 */
Datum
redis_backup_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = redisGetForeignRelSize;
	routine->GetForeignPaths = redisGetForeignPaths;
	routine->GetForeignPlan = redisGetForeignPlan;
	routine->BeginForeignScan = redisBeginForeignScan;
	routine->IterateForeignScan = redisIterateForeignScan;
	routine->ReScanForeignScan = redisReScanForeignScan;
	routine->EndForeignScan = redisEndForeignScan;
	routine->ExplainForeignScan = redisExplainForeignScan;
	routine->ImportForeignSchema = redisImportForeignSchema;

	PG_RETURN_POINTER(routine);
}

/* ------------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------------
 */

/*
 * redisGetForeignRelSize
 *		Read the options and columns, find the best key among the table's
 *		own conditions, and estimate the rows.
 */
static void
redisGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	RbFdwRelationInfo *fpinfo = palloc0(sizeof(RbFdwRelationInfo));
	ForeignTable *table = GetForeignTable(foreigntableid);
	Relation	rel;
	List	   *other_quals = NIL;
	ListCell   *lc;
	double		rows;

	baserel->fdw_private = fpinfo;
	rb_get_server_options(GetForeignServer(table->serverid), &fpinfo->server);
	rb_get_table_options(foreigntableid, &fpinfo->server, &fpinfo->table);

	rel = table_open(foreigntableid, NoLock);
	fpinfo->fields = rb_map_columns(rel);
	fpinfo->natts = RelationGetDescr(rel)->natts;
	table_close(rel, NoLock);

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		RbKeyQual	key;

		if (rb_key_qual_from_clause(root, baserel, rinfo, fpinfo->fields,
									fpinfo->natts, &key) &&
			better_key(&key, fpinfo->has_base_key, &fpinfo->base_key))
		{
			fpinfo->base_key = key;
			fpinfo->has_base_key = true;
		}
	}

	if (fpinfo->has_base_key)
		fpinfo->base_kind = rb_call_kind_of_field(fpinfo->base_key.field);
	else if (fpinfo->table.folder_id != NULL)
		fpinfo->base_kind = RB_CALL_TABLE_FOLDER;
	else
		fpinfo->base_kind = RB_CALL_NONE;

	foreach(lc, baserel->baserestrictinfo)
	{
		if (!fpinfo->has_base_key || lfirst(lc) != fpinfo->base_key.rinfo)
			other_quals = lappend(other_quals, lfirst(lc));
	}

	rows = estimate_rows(fpinfo->base_kind,
						 fpinfo->has_base_key ? &fpinfo->base_key : NULL);
	baserel->tuples = rows;
	baserel->rows = clamp_row_est(rows *
								  clauselist_selectivity(root, other_quals,
														 baserel->relid,
														 JOIN_INNER, NULL));
}

/*
 * better_key
 *		Is candidate a better key than best?  Get beats ListBackups beats
 *		List; among equals, a single value beats an array.
 */
static bool
better_key(RbKeyQual *candidate, bool have, RbKeyQual *best)
{
	RbCallKind	ck,
				bk;

	if (!have)
		return true;
	ck = rb_call_kind_of_field(candidate->field);
	bk = rb_call_kind_of_field(best->field);
	if (ck != bk)
		return ck < bk;
	return !candidate->is_array && best->is_array;
}

/*
 * estimate_rows
 *		Backups a scan is expected to return before local filtering.
 */
static double
estimate_rows(RbCallKind kind, RbKeyQual *key)
{
	double		nvalues = 1.0;

	if (key != NULL && key->is_array)
	{
		Node	   *value = (Node *) key->value;

		if (IsA(value, Const) && !((Const *) value)->constisnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(((Const *) value)->constvalue);

			nvalues = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
		}
		else if (IsA(value, ArrayExpr))
			nvalues = list_length(((ArrayExpr *) value)->elements);
		else
			nvalues = RB_EST_ARRAY_LENGTH;
	}

	switch (kind)
	{
		case RB_CALL_GET:
			return nvalues;
		case RB_CALL_CLUSTER_LIST:
			return nvalues * RB_EST_ROWS_PER_CLUSTER;
		case RB_CALL_FOLDER_LIST:
			return nvalues * RB_EST_ROWS_PER_FOLDER;
		case RB_CALL_TABLE_FOLDER:
			return RB_EST_ROWS_PER_FOLDER;
		case RB_CALL_NONE:
			break;
	}
	return RB_EST_ROWS_PER_FOLDER;
}

/*
 * cost_scan
 *		A Get costs one call per value; a listing one call per page.
 */
static void
cost_scan(RbCallKind kind, double rows, Cost *startup_cost, Cost *total_cost)
{
	double		calls;

	switch (kind)
	{
		case RB_CALL_GET:
			calls = Max(rows, 1.0);
			break;
		case RB_CALL_NONE:
			*startup_cost = RB_UNRUNNABLE_COST;
			*total_cost = RB_UNRUNNABLE_COST;
			return;
		default:
			calls = 1.0 + floor(rows / RB_DEFAULT_PAGE_SIZE);
			break;
	}
	*startup_cost = RB_CALL_COST;
	*total_cost = calls * RB_CALL_COST + rows * (RB_ROW_COST + cpu_tuple_cost);
}

/*
 * redisGetForeignPaths
 *		One unparameterized path, and a parameterized path for each outer
 *		relation set whose columns can give a key (join conditions and
 *		equivalence classes), so that a nested loop can push its join key
 *		into each rescan.
 */
static void
redisGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					 Oid foreigntableid)
{
	RbFdwRelationInfo *fpinfo = baserel->fdw_private;
	Cost		startup_cost;
	Cost		total_cost;
	List	   *candidates = NIL;
	ListCell   *lc;
	int			attno;

	cost_scan(fpinfo->base_kind, baserel->rows, &startup_cost, &total_cost);
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup_cost, total_cost, NIL,
									 baserel->lateral_relids, NULL, NIL));

	/* Join conditions that are not equivalence classes. */
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(rinfo, baserel))
			consider_join_clause(root, baserel, fpinfo, rinfo, &candidates);
	}

	/* Equalities the planner keeps as equivalence classes. */
	for (attno = 1; baserel->has_eclass_joins && attno <= fpinfo->natts; attno++)
	{
		List	   *clauses;
		ListCell   *lc2;

		if (rb_call_kind_of_field(fpinfo->fields[attno - 1]) == RB_CALL_NONE)
			continue;
		clauses = generate_implied_equalities_for_column(root, baserel,
														 ec_member_is_key_column,
														 &attno,
														 baserel->lateral_referencers);
		foreach(lc2, clauses)
			consider_join_clause(root, baserel, fpinfo,
								 lfirst_node(RestrictInfo, lc2), &candidates);
	}

	/* A path for each set of outer relations, costed by its best key. */
	foreach(lc, candidates)
	{
		RbParamCandidate *cand = lfirst(lc);
		ParamPathInfo *param_info;
		double		rows;

		param_info = get_baserel_parampathinfo(root, baserel,
											   cand->required_outer);
		rows = clamp_row_est(Min(param_info->ppi_rows,
								 estimate_rows(cand->kind, &cand->key)));
		cost_scan(cand->kind, rows, &startup_cost, &total_cost);
		add_path(baserel, (Path *)
				 create_foreignscan_path(root, baserel, NULL, rows,
										 startup_cost, total_cost, NIL,
										 cand->required_outer, NULL, NIL));
	}
}

/*
 * ec_member_is_key_column
 *		generate_implied_equalities_for_column callback: is em the column
 *		with attribute number *arg?
 */
static bool
ec_member_is_key_column(PlannerInfo *root, RelOptInfo *rel,
						EquivalenceClass *ec, EquivalenceMember *em, void *arg)
{
	Expr	   *expr = em->em_expr;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return IsA(expr, Var) &&
		((Var *) expr)->varno == rel->relid &&
		((Var *) expr)->varlevelsup == 0 &&
		((Var *) expr)->varattno == *(int *) arg;
}

/*
 * consider_join_clause
 *		If rinfo gives a key from outer relations, record it as a candidate
 *		for a path parameterized by them, keeping the best key per set of
 *		outer relations.
 */
static void
consider_join_clause(PlannerInfo *root, RelOptInfo *baserel,
					 RbFdwRelationInfo *fpinfo, RestrictInfo *rinfo,
					 List **candidates)
{
	RbParamCandidate *cand;
	RbKeyQual	key;
	Relids		required_outer;
	RbCallKind	kind;
	ListCell   *lc;

	if (!rb_key_qual_from_clause(root, baserel, rinfo, fpinfo->fields,
								 fpinfo->natts, &key))
		return;

	required_outer = bms_union(rinfo->clause_relids, baserel->lateral_relids);
	required_outer = bms_del_member(required_outer, baserel->relid);
	if (bms_is_empty(required_outer))
		return;

	/* The better of this key and the table's own. */
	kind = rb_call_kind_of_field(key.field);
	if (fpinfo->base_kind < kind)
	{
		kind = fpinfo->base_kind;
		key = fpinfo->base_key;
	}

	foreach(lc, *candidates)
	{
		cand = lfirst(lc);
		if (bms_equal(cand->required_outer, required_outer))
		{
			if (kind < cand->kind)
			{
				cand->kind = kind;
				cand->key = key;
			}
			return;
		}
	}
	cand = palloc(sizeof(RbParamCandidate));
	cand->required_outer = required_outer;
	cand->kind = kind;
	cand->key = key;
	*candidates = lappend(*candidates, cand);
}

/*
 * redisGetForeignPlan
 *		Choose the key among the path's conditions, keep every condition as
 *		a local filter too, and say what to call.
 */
static ForeignScan *
redisGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid, ForeignPath *best_path, List *tlist,
					List *scan_clauses, Plan *outer_plan)
{
	RbFdwRelationInfo *fpinfo = baserel->fdw_private;
	RbKeyQual	key;
	bool		has_key = false;
	RbCallKind	kind;
	List	   *fdw_exprs = NIL;
	StringInfoData call;
	int			page_size = fpinfo->table.page_size;
	ListCell   *lc;

	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		RbKeyQual	candidate;

		if (rb_key_qual_from_clause(root, baserel, rinfo, fpinfo->fields,
									fpinfo->natts, &candidate) &&
			better_key(&candidate, has_key, &key))
		{
			key = candidate;
			has_key = true;
		}
	}

	if (has_key)
		kind = rb_call_kind_of_field(key.field);
	else if (fpinfo->table.folder_id != NULL)
		kind = RB_CALL_TABLE_FOLDER;
	else
	{
		Relation	rel = table_open(foreigntableid, NoLock);

		report_no_key(rel, fpinfo);
	}

	/* With a known LIMIT and nothing filtered locally, ask no more. */
	if (kind != RB_CALL_GET && limit_applies_to_scan(root, scan_clauses,
													 has_key ? &key : NULL))
		page_size = (int) Min((double) page_size, ceil(root->limit_tuples));

	initStringInfo(&call);
	switch (kind)
	{
		case RB_CALL_GET:
			appendStringInfoString(&call, rb_method_name(RB_METHOD_BACKUP_GET));
			break;
		case RB_CALL_CLUSTER_LIST:
			appendStringInfoString(&call,
								   rb_method_name(RB_METHOD_CLUSTER_LIST_BACKUPS));
			break;
		default:
			appendStringInfoString(&call, rb_method_name(RB_METHOD_BACKUP_LIST));
			break;
	}
	appendStringInfo(&call, " %s", rb_call_request_field(kind));
	if (has_key)
	{
		rb_deparse_key_value(root, &key, &call);
		fdw_exprs = list_make1(key.value);
	}
	else
		appendStringInfo(&call, "=%s", quote_literal_cstr(fpinfo->table.folder_id));
	if (kind != RB_CALL_GET)
		appendStringInfo(&call, " page_size=%d", page_size);

	return make_foreignscan(tlist,
							extract_actual_clauses(scan_clauses, false),
							baserel->relid,
							fdw_exprs,
							list_make5(makeInteger(kind),
									   makeBoolean(has_key && key.is_array),
									   makeString(fpinfo->table.folder_id
												  ? fpinfo->table.folder_id : ""),
									   makeInteger(page_size),
									   makeString(call.data)),
							NIL, NIL, outer_plan);
}

/*
 * report_no_key
 *		A scan with nothing to call: name the columns that would work.
 */
static void
report_no_key(Relation rel, RbFdwRelationInfo *fpinfo)
{
	StringInfoData cols;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	initStringInfo(&cols);
	for (i = 0; i < fpinfo->natts; i++)
	{
		if (rb_call_kind_of_field(fpinfo->fields[i]) != RB_CALL_NONE)
			appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(tupdesc, i)->attname)));
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot scan foreign table \"%s\" without a folder, cluster or backup id",
					RelationGetRelationName(rel)),
			 cols.len > 0
			 ? errdetail("The Managed Redis API lists backups only by folder, by cluster or by id; the columns that can select them are: %s.",
						 cols.data)
			 : errdetail("The table has no column for id, folder_id or source_cluster_id."),
			 errhint("Add a condition such as folder_id = '...', source_cluster_id = '...' or id = '...' (also IN lists, parameters and join keys), or set the table option folder_id.")));
}

/*
 * limit_applies_to_scan
 *		Does the query's LIMIT bound this scan's rows directly: a single
 *		table, no sorting, grouping or aggregation, and no condition but the
 *		key, which the call itself satisfies?
 */
static bool
limit_applies_to_scan(PlannerInfo *root, List *scan_clauses, RbKeyQual *key)
{
	Query	   *parse = root->parse;
	ListCell   *lc;

	if (root->limit_tuples <= 0 || root->limit_tuples > RB_MAX_PAGE_SIZE)
		return false;
	if (bms_membership(root->all_baserels) != BMS_SINGLETON)
		return false;
	if (parse->sortClause || parse->groupClause || parse->groupingSets ||
		parse->distinctClause || parse->hasAggs || parse->hasWindowFuncs ||
		parse->hasTargetSRFs || parse->havingQual || parse->setOperations ||
		parse->rowMarks)
		return false;
	foreach(lc, scan_clauses)
	{
		if (key == NULL || lfirst(lc) != key->rinfo || key->is_array)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Execution
 * ------------------------------------------------------------------------
 */

/*
 * redisBeginForeignScan
 *		Set up the scan state and take the channel; no call is made yet.
 */
static void
redisBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	RbFdwScanState *state;
	ForeignTable *table;
	ForeignServer *server;
	UserMapping *user;
	RbServerOptions server_opts;
	RangeTblEntry *rte;
	Oid			userid;

	state = palloc0(sizeof(RbFdwScanState));
	node->fdw_state = state;

	state->kind = intVal(list_nth(fsplan->fdw_private, RbFdwScanPrivateCallKind));
	state->key_is_array = boolVal(list_nth(fsplan->fdw_private,
										   RbFdwScanPrivateKeyIsArray));
	state->table_folder_id = strVal(list_nth(fsplan->fdw_private,
											 RbFdwScanPrivateFolderId));
	state->page_size = intVal(list_nth(fsplan->fdw_private,
									   RbFdwScanPrivatePageSize));
	state->call_text = strVal(list_nth(fsplan->fdw_private,
									   RbFdwScanPrivateCallText));

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	state->fields = rb_map_columns(rel);
	state->tupdesc = RelationGetDescr(rel);
	if (fsplan->fdw_exprs != NIL)
		state->key_state = ExecInitExpr(linitial(fsplan->fdw_exprs),
										(PlanState *) node);

	table = GetForeignTable(RelationGetRelid(rel));
	server = GetForeignServer(table->serverid);
	rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	user = GetUserMapping(userid, server->serverid);
	rb_get_server_options(server, &server_opts);

	state->scan_cxt = AllocSetContextCreate(estate->es_query_cxt,
											"redis_backup_fdw scan",
											ALLOCSET_SMALL_SIZES);
	state->keys_cxt = AllocSetContextCreate(state->scan_cxt,
											"redis_backup_fdw keys",
											ALLOCSET_SMALL_SIZES);
	state->page_cxt = AllocSetContextCreate(state->scan_cxt,
											"redis_backup_fdw page",
											ALLOCSET_DEFAULT_SIZES);
	state->tuple_cxt = AllocSetContextCreate(state->scan_cxt,
											 "redis_backup_fdw tuple",
											 ALLOCSET_SMALL_SIZES);
	rb_init_allocator(&state->allocator, state->page_cxt);

	state->target.token = MemoryContextStrdup(state->scan_cxt,
											  rb_user_mapping_token(user));
	state->target.server_name = MemoryContextStrdup(state->scan_cxt,
													server->servername);
	state->target.endpoint = MemoryContextStrdup(state->scan_cxt,
												 server_opts.endpoint);
	state->target.timeout_ms = server_opts.timeout_ms;
	state->target.max_attempts = server_opts.max_attempts;
	state->target.allocator = &state->allocator;
	state->target.stats = &state->stats;

	/* Release the channel however the scan ends, error or not. */
	state->conn = rb_acquire_connection(user, &server_opts);
	state->cleanup.func = scan_cleanup;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(state->scan_cxt, &state->cleanup);
	state->target.channel = rb_connection_channel(state->conn);
}

/*
 * scan_cleanup
 *		Memory context callback of a scan: give the channel back.  Runs on
 *		error too, so it must not raise one.
 */
static void
scan_cleanup(void *arg)
{
	RbFdwScanState *state = arg;

	abandon_gets(state);
	if (state->conn != NULL)
		rb_release_connection(state->conn);
	state->conn = NULL;
}

/*
 * abandon_gets
 *		Give up the Gets started ahead and not collected.  Must not raise
 *		errors: runs from the scan's memory context callback.
 */
static void
abandon_gets(RbFdwScanState *state)
{
	int			i;

	for (i = 0; i < RB_MAX_GETS_IN_FLIGHT; i++)
	{
		if (state->gets[i] != NULL)
			rb_call_abandon(state->gets[i]);
		state->gets[i] = NULL;
	}
	state->gets_started = state->next_key;
}

/*
 * redisIterateForeignScan
 *		The next backup, fetching the next page when the current one is
 *		used up.
 */
static TupleTableSlot *
redisIterateForeignScan(ForeignScanState *node)
{
	RbFdwScanState *state = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	MemoryContextReset(state->tuple_cxt);

	if (!state->keys_ready)
		compute_keys(node, state);

	for (;;)
	{
		if (state->next_backup < state->nbackups)
		{
			store_backup(state, state->backups[state->next_backup++], slot);
			return slot;
		}
		if (!fetch_page(state))
			return slot;
	}
}

/*
 * compute_keys
 *		Evaluate the key's value (constant, parameter or outer column) into
 *		distinct, sorted strings.  NULLs, empty strings and values longer
 *		than any id match no backup and are dropped.
 */
static void
compute_keys(ForeignScanState *node, RbFdwScanState *state)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext oldcxt;
	Datum		value;
	bool		isnull;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	abandon_gets(state);
	MemoryContextReset(state->keys_cxt);
	state->nkeys = 0;
	state->next_key = 0;
	state->gets_started = 0;
	state->get_window = 1;
	state->keys_ready = true;

	if (state->kind == RB_CALL_TABLE_FOLDER)
	{
		state->keys = MemoryContextAlloc(state->keys_cxt, sizeof(char *));
		state->keys[state->nkeys++] = state->table_folder_id;
		return;
	}

	/* Everything below lives until the next rescan. */
	oldcxt = MemoryContextSwitchTo(state->keys_cxt);
	value = ExecEvalExpr(state->key_state, econtext, &isnull);
	if (isnull)
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	if (state->key_is_array)
		deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
	else
	{
		elems = &value;
		nulls = &isnull;
		n = 1;
	}

	state->keys = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *s;

		if (nulls[i])
			continue;
		s = TextDatumGetCString(elems[i]);
		if (s[0] == '\0' || strlen(s) > RB_MAX_ID_LENGTH)
			continue;
		state->keys[state->nkeys++] = s;
	}
	MemoryContextSwitchTo(oldcxt);

	/* Distinct values only: one call per value. */
	if (state->nkeys > 1)
	{
		int			j = 0;

		qsort(state->keys, state->nkeys, sizeof(char *), compare_cstrings);
		for (i = 1; i < state->nkeys; i++)
		{
			if (strcmp(state->keys[i], state->keys[j]) != 0)
				state->keys[++j] = state->keys[i];
		}
		state->nkeys = j + 1;
	}
}

static int
compare_cstrings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * fetch_page
 *		Replace the current page by the next one (possibly empty).  False
 *		when there is nothing more to call.
 */
static bool
fetch_page(RbFdwScanState *state)
{
	MemoryContext oldcxt;
	bool		more;

	MemoryContextReset(state->page_cxt);
	state->backups = NULL;
	state->nbackups = 0;
	state->next_backup = 0;

	/* Whatever a fetch allocates is freed with its page. */
	oldcxt = MemoryContextSwitchTo(state->page_cxt);
	if (state->kind == RB_CALL_GET)
		more = fetch_get(state);
	else
		more = fetch_list_page(state);
	MemoryContextSwitchTo(oldcxt);
	return more;
}

/*
 * fetch_get
 *		BackupService.Get of the next id; NOT_FOUND is an empty page.  The
 *		Gets of the following ids are started ahead, in a window that
 *		doubles with each id consumed.
 */
static bool
fetch_get(RbFdwScanState *state)
{
	Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest req =
	YANDEX__CLOUD__MDB__REDIS__V1__GET_BACKUP_REQUEST__INIT;
	ProtobufCMessage *reply;
	RbCall	   *call;
	int			limit;
	int			i;

	if (state->next_key >= state->nkeys)
		return false;

	limit = Min(state->nkeys, state->next_key + state->get_window);
	while (state->gets_started < limit)
	{
		i = state->gets_started;
		req.backup_id = state->keys[i];
		state->gets[i % RB_MAX_GETS_IN_FLIGHT] =
			rb_remote_start(&state->target, RB_METHOD_BACKUP_GET, &req.base,
							get_call_desc(req.backup_id));
		state->gets_started++;
	}
	state->get_window = Min(state->get_window * 2, RB_MAX_GETS_IN_FLIGHT);

	/* The call now belongs to rb_remote_call, which retries it if need be. */
	i = state->next_key++;
	call = state->gets[i % RB_MAX_GETS_IN_FLIGHT];
	state->gets[i % RB_MAX_GETS_IN_FLIGHT] = NULL;
	req.backup_id = state->keys[i];
	reply = rb_remote_call(&state->target, RB_METHOD_BACKUP_GET, &req.base,
						   get_call_desc(req.backup_id), call);
	if (reply != NULL)
	{
		state->single = (Yandex__Cloud__Mdb__Redis__V1__Backup *) reply;
		state->backups = &state->single;
		state->nbackups = 1;
		state->stats.rows++;
	}
	return true;
}

/*
 * get_call_desc
 *		How errors name a Get call.
 */
static char *
get_call_desc(const char *backup_id)
{
	return psprintf("%s backup_id=%s", rb_method_name(RB_METHOD_BACKUP_GET),
					quote_literal_cstr(backup_id));
}

/*
 * fetch_list_page
 *		The next page of the listing in progress, or the first page of the
 *		next key's listing.
 */
static bool
fetch_list_page(RbFdwScanState *state)
{
	const char *key;
	const char *next_token;
	char	   *desc;
	ProtobufCMessage *reply;
	RbMethod	method;
	union
	{
		ProtobufCMessage base;
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest folder;
		Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest cluster;
	}			req;

	if (!state->listing)
	{
		HASHCTL		ctl;

		if (state->next_key >= state->nkeys)
			return false;
		state->listing = true;
		state->page_token[0] = '\0';

		if (state->seen_tokens)
			hash_destroy(state->seen_tokens);
		ctl.keysize = sizeof(((RbSeenToken *) NULL)->token);
		ctl.entrysize = sizeof(RbSeenToken);
		ctl.hcxt = state->scan_cxt;
		state->seen_tokens = hash_create("redis_backup_fdw page tokens", 64,
										 &ctl,
										 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	key = state->keys[state->next_key];

	/* The two listings differ only in their message types. */
	if (state->kind == RB_CALL_CLUSTER_LIST)
	{
		yandex__cloud__mdb__redis__v1__list_cluster_backups_request__init(&req.cluster);
		req.cluster.cluster_id = (char *) key;
		req.cluster.page_size = state->page_size;
		req.cluster.page_token = state->page_token;
		method = RB_METHOD_CLUSTER_LIST_BACKUPS;
	}
	else
	{
		yandex__cloud__mdb__redis__v1__list_backups_request__init(&req.folder);
		req.folder.folder_id = (char *) key;
		req.folder.page_size = state->page_size;
		req.folder.page_token = state->page_token;
		method = RB_METHOD_BACKUP_LIST;
	}

	desc = psprintf("%s %s=%s page_size=%d page_token=%s",
					rb_method_name(method), rb_call_request_field(state->kind),
					quote_literal_cstr(key), state->page_size,
					quote_literal_cstr(state->page_token));
	reply = rb_remote_call(&state->target, method, &req.base, desc, NULL);

	next_token = "";
	if (reply != NULL && method == RB_METHOD_CLUSTER_LIST_BACKUPS)
	{
		Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse *resp =
		(Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse *) reply;

		state->backups = resp->backups;
		state->nbackups = resp->n_backups;
		next_token = resp->next_page_token;
	}
	else if (reply != NULL)
	{
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *resp =
		(Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *) reply;

		state->backups = resp->backups;
		state->nbackups = resp->n_backups;
		next_token = resp->next_page_token;
	}

	state->stats.rows += state->nbackups;
	if (next_token == NULL || next_token[0] == '\0')
	{
		state->listing = false;
		state->next_key++;
	}
	else
		remember_page_token(state, next_token, desc);
	return true;
}

/*
 * remember_page_token
 *		Keep the next page token, refusing one this listing has seen
 *		before: following it would loop forever.
 */
static void
remember_page_token(RbFdwScanState *state, const char *token,
					const char *call_desc)
{
	bool		found;

	if (strlen(token) > RB_MAX_PAGE_TOKEN_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the Managed Redis API sent an invalid next page token"),
				 errdetail("The token is %zu characters long; at most %d are valid.",
						   strlen(token), RB_MAX_PAGE_TOKEN_LENGTH),
				 errcontext("remote call %s", call_desc)));

	(void) hash_search(state->seen_tokens, token, HASH_ENTER, &found);
	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the Managed Redis API repeated a page token"),
				 errdetail("Following next_page_token would list the same pages forever."),
				 errcontext("remote call %s", call_desc)));
	strlcpy(state->page_token, token, sizeof(state->page_token));
}

/*
 * store_backup
 *		Fill slot with the columns of backup b.
 */
static void
store_backup(RbFdwScanState *state, Yandex__Cloud__Mdb__Redis__V1__Backup *b,
			 TupleTableSlot *slot)
{
	TupleDesc	tupdesc = state->tupdesc;
	MemoryContext oldcxt = MemoryContextSwitchTo(state->tuple_cxt);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Datum	   *value = &slot->tts_values[i];
		bool	   *isnull = &slot->tts_isnull[i];

		*isnull = false;
		switch (state->fields[i])
		{
			case RB_FIELD_ID:
				*value = rb_string_datum(b->id, att->atttypid, att->atttypmod,
										 "id");
				break;
			case RB_FIELD_FOLDER_ID:
				*value = rb_string_datum(b->folder_id, att->atttypid,
										 att->atttypmod, "folder_id");
				break;
			case RB_FIELD_SOURCE_CLUSTER_ID:
				*value = rb_string_datum(b->source_cluster_id, att->atttypid,
										 att->atttypmod, "source_cluster_id");
				break;
			case RB_FIELD_CREATED_AT:
				*value = rb_timestamp_datum(b->created_at, att->atttypid,
											att->atttypmod, isnull,
											"created_at");
				break;
			case RB_FIELD_STARTED_AT:
				*value = rb_timestamp_datum(b->started_at, att->atttypid,
											att->atttypmod, isnull,
											"started_at");
				break;
			case RB_FIELD_SOURCE_SHARD_NAMES:
				*value = rb_shard_names_datum(b->source_shard_names,
											  b->n_source_shard_names,
											  "source_shard_names");
				break;
			case RB_FIELD_TYPE:
				*value = rb_type_datum((int) b->type, att->atttypid,
									   att->atttypmod, isnull);
				break;
			default:			/* dropped column */
				*value = (Datum) 0;
				*isnull = true;
				break;
		}
	}
	MemoryContextSwitchTo(oldcxt);
	ExecStoreVirtualTuple(slot);
}

/*
 * redisReScanForeignScan
 *		Start over: key values may have changed (a nested loop's outer row).
 */
static void
redisReScanForeignScan(ForeignScanState *node)
{
	RbFdwScanState *state = node->fdw_state;

	state->keys_ready = false;
	state->listing = false;
	MemoryContextReset(state->page_cxt);
	state->backups = NULL;
	state->nbackups = 0;
	state->next_backup = 0;
}

/*
 * redisEndForeignScan
 *		Free the scan; the memory context callback releases the channel.
 */
static void
redisEndForeignScan(ForeignScanState *node)
{
	RbFdwScanState *state = node->fdw_state;

	if (state != NULL && state->scan_cxt != NULL)
	{
		MemoryContextDelete(state->scan_cxt);
		state->scan_cxt = NULL;
	}
}

/*
 * redisExplainForeignScan
 *		Show the call and, with ANALYZE, what the scan fetched.
 */
static void
redisExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	RbFdwScanState *state = node->fdw_state;

	ExplainPropertyText("Remote Call", state->call_text, es);
	if (es->verbose)
	{
		ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
		RbServerOptions opts;

		rb_get_server_options(GetForeignServer(fsplan->fs_server), &opts);
		ExplainPropertyText("Transport",
							opts.tls ? "TLS" : "plaintext (tls 'false')", es);
	}
	if (es->analyze)
	{
		ExplainPropertyInteger("Remote Calls", NULL, state->stats.calls, es);
		ExplainPropertyInteger("Retries", NULL, state->stats.retries, es);
		ExplainPropertyInteger("Pages", NULL, state->stats.pages, es);
		ExplainPropertyInteger("Rows Decoded", NULL, state->stats.rows, es);
		ExplainPropertyInteger("Bytes Received", NULL, state->stats.bytes, es);
	}
}

/* ------------------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA
 * ------------------------------------------------------------------------
 */

/*
 * redisImportForeignSchema
 *		The remote schema "redis" has one table, redis_backups.  Options
 *		folder_id and page_size become table options.
 */
static List *
redisImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	const char *table_name = "redis_backups";
	ForeignServer *server = GetForeignServer(serverOid);
	StringInfoData buf;
	StringInfoData opts;
	ListCell   *lc;
	bool		wanted;

	if (strcmp(stmt->remote_schema, "redis") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" is not present on foreign server \"%s\"",
						stmt->remote_schema, server->servername),
				 errhint("The only remote schema is \"redis\".")));

	initStringInfo(&opts);
	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "folder_id") != 0 &&
			strcmp(def->defname, "page_size") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options of IMPORT FOREIGN SCHEMA are: folder_id, page_size.")));
		appendStringInfo(&opts, "%s%s %s", opts.len > 0 ? ", " : "",
						 def->defname, quote_literal_cstr(defGetString(def)));
	}

	wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_ALL);
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);
		bool		named = (strcmp(rv->relname, table_name) == 0);

		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && named)
			wanted = true;
	}
	if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT)
	{
		wanted = true;
		foreach(lc, stmt->table_list)
		{
			if (strcmp(((RangeVar *) lfirst(lc))->relname, table_name) == 0)
				wanted = false;
		}
	}
	if (!wanted)
		return NIL;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "CREATE FOREIGN TABLE %s (\n"
					 "  id text,\n"
					 "  folder_id text,\n"
					 "  created_at timestamptz,\n"
					 "  source_cluster_id text,\n"
					 "  started_at timestamptz,\n"
					 "  source_shard_names text[],\n"
					 "  type text\n"
					 ") SERVER %s",
					 quote_identifier(table_name),
					 quote_identifier(server->servername));
	if (opts.len > 0)
		appendStringInfo(&buf, " OPTIONS (%s)", opts.data);
	return list_make1(buf.data);
}

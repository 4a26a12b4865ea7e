/*-------------------------------------------------------------------------
 *
 * redis_backup_fdw.c
 *		  Foreign data wrapper for Yandex Cloud Managed Redis backups: the
 *		  FdwRoutine callbacks (planning, scanning, EXPLAIN, IMPORT FOREIGN
 *		  SCHEMA).
 *
 * A table shows a resource (its option "resource": backups, clusters;
 * src/field.c describes each).  A scan turns its key condition into calls
 * by the key field's method: for backups id into BackupService.Get,
 * source_cluster_id into ClusterService.ListBackups, folder_id (or the
 * table's folder_id option) into BackupService.List; for clusters id into
 * ClusterService.Get, folder_id into ClusterService.List, with name =
 * '...' as its filter.  src/fetch.c makes the calls and hands out their
 * pages; src/convert.c builds the rows.
 *
 * A table with the folder_id option is that folder's items, whatever the
 * query pushes down: Gets and cluster listings are filtered to the folder,
 * and a folder_id condition naming another folder makes no call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
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
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "redis_backup_fdw.h"

PG_MODULE_MAGIC;

/* Planner's guesses: the length of an array whose value it cannot see,
 * and the folders of a cloud. */
#define RB_EST_ARRAY_LENGTH 10.0
#define RB_EST_FOLDERS_PER_CLOUD 10.0

/* Cost of one remote call, and of decoding one backup. */
#define RB_CALL_COST 100.0
#define RB_ROW_COST 0.02

/*
 * Cost of a scan that cannot run.  Far above disable_cost (1e10), which
 * enable_* = off adds to the paths it disables: a path that cannot run is
 * never chosen over one that can, whatever enable_* says (18 compares
 * disabled nodes first: see rb_create_foreignscan_path).
 */
#define RB_UNRUNNABLE_COST 1.0e30

/* The key of a scan: a condition, the table's folder or cloud, or nothing. */
typedef struct RbScanKey
{
	bool		runnable;		/* false: nothing to call */
	bool		from_clause;	/* true: key; false: the table's folder or cloud */
	bool		cloud;			/* ... the folders of the table's cloud */
	RbKeyQual	key;
} RbScanKey;

/*
 * Planner information about a foreign table, in baserel->fdw_private.
 */
typedef struct RbFdwRelationInfo
{
	/* options */
	RbServerOptions server;
	RbTableOptions table;

	/* the resource and the field of each attribute */
	RbTableColumns cols;

	/* best key among the table's own conditions */
	RbScanKey	base_key;
} RbFdwRelationInfo;

/*
 * A parameterized path to be: the outer relations it needs and the best
 * key they give.
 */
typedef struct RbParamCandidate
{
	Relids		required_outer;
	RbScanKey	key;
} RbParamCandidate;

/*
 * Slots of ForeignScan.fdw_private.  fdw_exprs holds the key's value
 * expression, when the scan is runnable.
 */
enum RbFdwScanPrivateIndex
{
	RbFdwScanPrivateMethod,		/* Integer: RbMethod, -1 if unrunnable */
	RbFdwScanPrivateKeyIsArray, /* Boolean: key is col = ANY(array) */
	RbFdwScanPrivatePageSize,	/* Integer: page_size to ask for */
	RbFdwScanPrivateCallText,	/* String: the call, for EXPLAIN */
	RbFdwScanPrivateSlowStart,	/* Boolean: the query may stop early */
	RbFdwScanPrivateRetrievedAttrs, /* List of Integer: attnos to convert */
	RbFdwScanPrivateFilterField,	/* Integer: the filter's field, or -1; its
									 * value is the last of fdw_exprs */
	RbFdwScanPrivateKeyField	/* Integer: the field whose value in every
								 * item is its call's key, or -1 */
};

/*
 * Execution state of a foreign scan.
 */
typedef struct RbFdwScanState
{
	/* what the plan says */
	const RbResource *res;		/* what the table shows */
	int			method;			/* RbMethod, -1 if unrunnable */
	RbMethod	folder_method;	/* the call that lists a folder */
	bool		key_is_array;
	int			filter_field;	/* RbField of the listing's filter, or -1 */
	char	   *table_folder_id;	/* NULL if none */
	char	   *table_cloud_id;	/* NULL if none */
	char	   *table_folder_utf8;	/* ... as the API sends it */
	bool		filter_folder;	/* drop items of other folders */
	bool		filter_cloud;	/* drop items of other clouds */
	int			page_size;
	char	   *call_text;
	bool		slow_start;		/* the query may stop early */
	bool		tls;			/* for EXPLAIN VERBOSE */
	Oid			userid;			/* whose user mapping, for EXPLAIN */
	Oid			serverid;
	ExprState  *key_state;
	ExprState  *filter_state;	/* the filter's value */

	/* the table */
	Relation	rel;
	RbField    *fields;			/* field of each attribute */
	size_t		folder_offset;	/* of an item's folder_id */
	int			key_field;		/* an item's call key is in this field */
	size_t		key_offset;		/* ... at this offset (when >= 0) */
	RbColumn   *columns;		/* the columns the plan needs */
	int			ncolumns;
	RbConversionContext conversion;

	/* the credentials, the connections and the calls */
	RbCredentials *creds;
	RbConnection *conn;
	RbCallTarget target;
	RbConnection *rm_conn;		/* Resource Manager, for a cloud */
	RbCallTarget rm_target;
	RbFetch    *fetch;
	RbCallStats stats;

	/* key values of this (re)scan, distinct and sorted */
	MemoryContext keys_cxt;
	bool		keys_ready;
	bool		no_rows;		/* the filter's value matches nothing */

	/* the current page */
	ProtobufCMessage **items;
	size_t		nitems;
	const char *items_key;		/* the key value their call was made with */
	size_t		next_item;

	/* per-row values, reset for each row */
	MemoryContext tuple_cxt;

	/* all of the above, and its cleanup */
	MemoryContext scan_cxt;
	MemoryContextCallback cleanup;
} RbFdwScanState;

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

static void choose_key(PlannerInfo *root, RelOptInfo *baserel,
					   RbFdwRelationInfo *fpinfo, List *clauses,
					   RbScanKey *key);
static bool better_scan_key(const RbResource *res, const RbScanKey *candidate,
							const RbScanKey *best);
static double estimate_rows(const RbResource *res, const RbScanKey *key);
static void cost_scan(const RbScanKey *key, double rows, Cost *startup_cost,
					  Cost *total_cost);
static void consider_join_clause(PlannerInfo *root, RelOptInfo *baserel,
								 RbFdwRelationInfo *fpinfo,
								 RestrictInfo *rinfo, List **candidates);
static bool ec_member_is_key_column(PlannerInfo *root, RelOptInfo *rel,
									EquivalenceClass *ec,
									EquivalenceMember *em, void *arg);
static bool limit_applies_to_scan(PlannerInfo *root, List *scan_clauses,
								  RbKeyQual *key);
static List *retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel,
							 List *scan_clauses, int natts);
static void add_filter(PlannerInfo *root, RelOptInfo *baserel,
					   RbFdwRelationInfo *fpinfo, List *scan_clauses,
					   StringInfo call, List **fdw_exprs, int *filter_field);
pg_noreturn static void report_no_key(Relation rel, const RbResource *res,
									  const RbField *fields);
static List *read_plan(RbFdwScanState *state, ForeignScan *fsplan);
static ForeignServer *read_scan_options(RbFdwScanState *state,
										ForeignScanState *node,
										RbServerOptions *server_opts,
										RbTableOptions *table_opts);
static bool key_in_plan(const RbFdwScanState *state,
						const ForeignScan *fsplan);
static void map_columns(RbFdwScanState *state, ForeignScanState *node,
						List *attrs);
static void create_contexts(RbFdwScanState *state, EState *estate);
static void set_call_target(RbFdwScanState *state, UserMapping *user,
							ForeignServer *server,
							const RbServerOptions *server_opts);
static void start_engine(RbFdwScanState *state, UserMapping *user,
						 const RbServerOptions *server_opts,
						 const RbTableOptions *table_opts);
static void scan_cleanup(void *arg);
static char **compute_keys(ForeignScanState *node, RbFdwScanState *state,
						   int *nkeys);
static void check_item_key(RbFdwScanState *state,
						   const ProtobufCMessage *item);
static bool compute_filter(ForeignScanState *node, RbFdwScanState *state);
static char *import_table(const RbResource *res, ForeignServer *server,
						  const char *options);
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

	/* INSERT and DELETE: src/modify.c */
	routine->IsForeignRelUpdatable = rb_is_foreign_rel_updatable;
	routine->AddForeignUpdateTargets = rb_add_foreign_update_targets;
	routine->PlanForeignModify = rb_plan_foreign_modify;
	routine->BeginForeignModify = rb_begin_foreign_modify;
	routine->ExecForeignInsert = rb_exec_foreign_insert;
	routine->ExecForeignDelete = rb_exec_foreign_delete;
	routine->EndForeignModify = rb_end_foreign_modify;
	routine->BeginForeignInsert = rb_begin_foreign_insert;
	routine->EndForeignInsert = rb_end_foreign_modify;
	routine->ExplainForeignModify = rb_explain_foreign_modify;

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

	baserel->fdw_private = fpinfo;
	rb_get_server_options(GetForeignServer(table->serverid), &fpinfo->server);
	rb_get_table_options(foreigntableid, &fpinfo->server, &fpinfo->table);

	rel = table_open(foreigntableid, NoLock);
	fpinfo->cols.resource = fpinfo->table.res;
	fpinfo->cols.fields = rb_map_columns(rel, fpinfo->table.res);
	fpinfo->cols.natts = RelationGetDescr(rel)->natts;
	table_close(rel, NoLock);

	choose_key(root, baserel, fpinfo, baserel->baserestrictinfo,
			   &fpinfo->base_key);

	foreach(lc, baserel->baserestrictinfo)
	{
		if (!fpinfo->base_key.from_clause ||
			lfirst(lc) != fpinfo->base_key.key.rinfo)
			other_quals = lappend(other_quals, lfirst(lc));
	}

	baserel->tuples = estimate_rows(fpinfo->cols.resource, &fpinfo->base_key);
	baserel->rows = clamp_row_est(baserel->tuples *
								  clauselist_selectivity(root, other_quals,
														 baserel->relid,
														 JOIN_INNER, NULL));
}

/*
 * choose_key
 *		The key of a scan with these conditions: the best key condition,
 *		else the table's folder, else nothing to call.
 */
static void
choose_key(PlannerInfo *root, RelOptInfo *baserel, RbFdwRelationInfo *fpinfo,
		   List *clauses, RbScanKey *key)
{
	memset(key, 0, sizeof(RbScanKey));
	key->from_clause = rb_best_key(root, baserel, clauses, &fpinfo->cols,
								   &key->key);
	key->cloud = !key->from_clause && fpinfo->table.folder_id == NULL &&
		fpinfo->table.cloud_id != NULL;
	key->runnable = key->from_clause || fpinfo->table.folder_id != NULL ||
		fpinfo->table.cloud_id != NULL;
}

/*
 * better_scan_key
 *		Is candidate a better key than best (keys of a table of res)?  Any
 *		runnable key beats none; a condition beats the table's folder unless
 *		it selects more items per value.
 */
static bool
better_scan_key(const RbResource *res, const RbScanKey *candidate,
				const RbScanKey *best)
{
	if (candidate->runnable != best->runnable)
		return candidate->runnable;
	if (!candidate->from_clause)
		return false;
	if (!best->from_clause)
		return candidate->key.info->rows_per_key <=
			res->fields[res->folder_field].rows_per_key;
	return rb_better_key(&candidate->key, &best->key);
}

/*
 * estimate_rows
 *		Items a scan of a table of res is expected to return before local
 *		filtering.
 */
static double
estimate_rows(const RbResource *res, const RbScanKey *key)
{
	double		nvalues = 1.0;
	Node	   *value;

	if (!key->from_clause)
		return res->fields[res->folder_field].rows_per_key *
			(key->cloud ? RB_EST_FOLDERS_PER_CLOUD : 1.0);

	value = (Node *) key->key.value;
	if (key->key.is_array)
	{
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
	return nvalues * key->key.info->rows_per_key;
}

/*
 * cost_scan
 *		A Get costs one call per value; a listing one call per page.
 */
static void
cost_scan(const RbScanKey *key, double rows, Cost *startup_cost,
		  Cost *total_cost)
{
	double		calls;

	if (!key->runnable)
	{
		*startup_cost = RB_UNRUNNABLE_COST;
		*total_cost = RB_UNRUNNABLE_COST;
		return;
	}
	if (key->from_clause && !rb_method_is_listing(key->key.info->key_method))
		calls = Max(rows, 1.0);
	else
		calls = 1.0 + floor(rows / RB_MAX_PAGE_SIZE);
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

	cost_scan(&fpinfo->base_key, baserel->rows, &startup_cost, &total_cost);
	add_path(baserel, (Path *)
			 rb_create_foreignscan_path(root, baserel, baserel->rows,
										startup_cost, total_cost,
										baserel->lateral_relids,
										fpinfo->base_key.runnable));

	/* Join conditions that are not equivalence classes. */
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(rinfo, baserel))
			consider_join_clause(root, baserel, fpinfo, rinfo, &candidates);
	}

	/* Equalities the planner keeps as equivalence classes. */
	for (attno = 1; baserel->has_eclass_joins && attno <= fpinfo->cols.natts;
		 attno++)
	{
		RbField		field = fpinfo->cols.fields[attno - 1];
		List	   *clauses;
		ListCell   *lc2;

		if (field == RB_FIELD_NONE ||
			!fpinfo->cols.resource->fields[field].is_key)
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
								 estimate_rows(fpinfo->cols.resource,
											   &cand->key)));
		cost_scan(&cand->key, rows, &startup_cost, &total_cost);
		add_path(baserel, (Path *)
				 rb_create_foreignscan_path(root, baserel, rows,
											startup_cost, total_cost,
											cand->required_outer, true));
	}
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
	RbScanKey	key;
	Relids		required_outer;
	ListCell   *lc;

	memset(&key, 0, sizeof(key));
	if (!rb_key_qual_from_clause(root, baserel, rinfo, &fpinfo->cols,
								 &key.key) ||
		!key.key.info->is_key)
		return;
	key.runnable = key.from_clause = true;

	required_outer = bms_union(rinfo->clause_relids, baserel->lateral_relids);
	required_outer = bms_del_member(required_outer, baserel->relid);
	if (bms_is_empty(required_outer))
		return;

	/* The better of this key and the table's own. */
	if (better_scan_key(fpinfo->cols.resource, &fpinfo->base_key, &key))
		key = fpinfo->base_key;

	foreach(lc, *candidates)
	{
		cand = lfirst(lc);
		if (bms_equal(cand->required_outer, required_outer))
		{
			if (better_scan_key(fpinfo->cols.resource, &key, &cand->key))
				cand->key = key;
			return;
		}
	}
	cand = palloc(sizeof(RbParamCandidate));
	cand->required_outer = required_outer;
	cand->key = key;
	*candidates = lappend(*candidates, cand);
}

/*
 * redisGetForeignPlan
 *		Choose the key among the path's conditions, keep every other
 *		condition as a local filter, and say what to call.  A scan with nothing to
 *		call is planned all the same and fails when it runs, so that a
 *		query that never reads it (LIMIT 0, as drivers probe columns) works.
 */
static ForeignScan *
redisGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid, ForeignPath *best_path, List *tlist,
					List *scan_clauses, Plan *outer_plan)
{
	RbFdwRelationInfo *fpinfo = baserel->fdw_private;
	const RbResource *res = fpinfo->cols.resource;
	RbMethod	folder_method = res->fields[res->folder_field].key_method;
	const char *table_folder = fpinfo->table.folder_id;
	const char *table_cloud = fpinfo->table.cloud_id;
	RbScanKey	key;
	int			method = -1;
	int			filter_field = -1;
	List	   *fdw_exprs = NIL;
	StringInfoData call;
	StringInfoData value;
	int			page_size = fpinfo->table.page_size;

	List	   *fdw_private;

	choose_key(root, baserel, fpinfo, scan_clauses, &key);

	initStringInfo(&call);
	initStringInfo(&value);
	if (key.from_clause)
	{
		method = key.key.info->key_method;
		rb_deparse_key_value(root, &key.key, &value);
		fdw_exprs = list_make1(key.key.value);
	}
	else if (key.cloud)
	{
		/* The cloud's folders, listed while the scan runs, each a List. */
		method = folder_method;
		appendStringInfoString(&value, "=(each folder)");
	}
	else if (key.runnable)
	{
		/* The table's folder: a List whose key is a constant. */
		method = folder_method;
		appendStringInfo(&value, "=%s", quote_literal_cstr(table_folder));
		fdw_exprs = list_make1(makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID,
										 -1, CStringGetTextDatum(table_folder),
										 false, false));
	}

	if (method < 0)
		appendStringInfo(&call, "none (no %s to call with)", res->key_columns);
	else
	{
		/* With a known LIMIT and nothing filtered locally, ask no more. */
		if (rb_method_is_listing(method) &&
			limit_applies_to_scan(root, scan_clauses,
								  key.from_clause ? &key.key : NULL))
			page_size = (int) Min((double) page_size, ceil(root->limit_tuples));
		if (key.cloud)
		{
			rb_describe_call(&call, RB_METHOD_FOLDER_LIST,
							 psprintf("=%s", quote_literal_cstr(table_cloud)),
							 page_size, NULL);
			appendStringInfoString(&call, ", then ");
		}
		rb_describe_call(&call, method, value.data, page_size, NULL);
		if (rb_method_has_filter(method))
			add_filter(root, baserel, fpinfo, scan_clauses, &call, &fdw_exprs,
					   &filter_field);
	}

	/* In the order of enum RbFdwScanPrivateIndex. */
	fdw_private = list_make5(makeInteger(method),
							 makeBoolean(key.from_clause && key.key.is_array),
							 makeInteger(page_size),
							 makeString(call.data),
							 makeBoolean(root->tuple_fraction > 0.0));
	fdw_private = lappend(fdw_private,
						  retrieved_attrs(root, baserel, scan_clauses,
										  fpinfo->cols.natts));
	fdw_private = lappend(fdw_private, makeInteger(filter_field));
	fdw_private = lappend(fdw_private,
						  makeInteger(key.from_clause ? (int) key.key.field
									  : method >= 0 ? (int) res->folder_field
									  : -1));

	/*
	 * The key's condition is not checked again per row: the calls are made
	 * with exactly its values (text equality under a deterministic
	 * collation, rb_key_qual_from_clause), and each item is checked to
	 * answer its call (redisIterateForeignScan), which costs a string
	 * comparison where PostgreSQL's recheck of "= ANY" over a long array
	 * would compare each row with every value.
	 */
	if (key.from_clause)
		scan_clauses = list_delete_ptr(list_copy(scan_clauses), key.key.rinfo);

	return make_foreignscan(tlist,
							extract_actual_clauses(scan_clauses, false),
							baserel->relid,
							fdw_exprs,
							fdw_private,
							NIL, NIL, outer_plan);
}

/*
 * add_filter
 *		A condition on a filter field (a cluster's name = '...') narrows the
 *		listing: its value goes last into fdw_exprs, the call shows it.  The
 *		condition stays a local filter too.
 */
static void
add_filter(PlannerInfo *root, RelOptInfo *baserel, RbFdwRelationInfo *fpinfo,
		   List *scan_clauses, StringInfo call, List **fdw_exprs,
		   int *filter_field)
{
	RbKeyQual	filter;

	if (!rb_filter_qual(root, baserel, scan_clauses, &fpinfo->cols, &filter))
		return;
	appendStringInfo(call, " filter %s", filter.info->name);
	rb_deparse_key_value(root, &filter, call);
	*fdw_exprs = lappend(*fdw_exprs, filter.value);
	*filter_field = filter.field;
}

/*
 * retrieved_attrs
 *		The attribute numbers the plan reads: those of the target list and
 *		of the local conditions (all of them for a whole-row reference).
 *		Only these are converted from each backup.
 */
static List *
retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel, List *scan_clauses,
				int natts)
{
	Bitmapset  *attrs = NULL;
	List	   *result = NIL;
	ListCell   *lc;
	int			attno;
	bool		whole_row;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, scan_clauses)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &attrs);

	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
	for (attno = 1; attno <= natts; attno++)
	{
		if (whole_row ||
			bms_is_member(attno - FirstLowInvalidHeapAttributeNumber, attrs))
			result = lappend(result, makeInteger(attno));
	}
	return result;
}

/*
 * report_no_key
 *		A scan of a table of res with nothing to call: name the columns that
 *		would work.
 */
static void
report_no_key(Relation rel, const RbResource *res, const RbField *fields)
{
	StringInfoData cols;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	initStringInfo(&cols);
	for (i = 0; i < tupdesc->natts; i++)
	{
		if (fields[i] != RB_FIELD_NONE && res->fields[fields[i]].is_key)
			appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(tupdesc, i)->attname)));
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot scan foreign table \"%s\" without a %s",
					RelationGetRelationName(rel), res->key_words),
			 cols.len > 0
			 ? errdetail("The Managed Redis API lists %s; the columns that can select them are: %s.",
						 res->lists_by, cols.data)
			 : errdetail("The table has no column for any of the fields %s.",
						 rb_field_name_list(res, true)),
			 errhint("Add a condition such as %s (also IN lists, parameters and join keys), or set the table option folder_id or cloud_id.",
					 res->key_examples)));
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
		(Index) ((Var *) expr)->varno == rel->relid &&
		((Var *) expr)->varlevelsup == 0 &&
		((Var *) expr)->varattno == *(int *) arg;
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
 *		Set up the scan state and take the channels; no call is made yet.
 */
static void
redisBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	RbFdwScanState *state;
	ForeignServer *server;
	UserMapping *user;
	RbServerOptions server_opts;
	RbTableOptions table_opts;
	List	   *attrs;

	state = palloc0(sizeof(RbFdwScanState));
	node->fdw_state = state;
	attrs = read_plan(state, fsplan);
	server = read_scan_options(state, node, &server_opts, &table_opts);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	user = GetUserMapping(state->userid, server->serverid);
	map_columns(state, node, attrs);
	create_contexts(state, node->ss.ps.state);
	set_call_target(state, user, server, &server_opts);

	/*
	 * A scan with nothing to call raises its error when it is first read
	 * (report_no_key), so a query that never reads it (LIMIT 0) works; it
	 * needs no engine and no channel.
	 */
	if (state->method < 0)
		return;
	start_engine(state, user, &server_opts, &table_opts);
}

/*
 * read_plan
 *		What the plan says (ForeignScan.fdw_private); returns the attribute
 *		numbers the plan reads.
 */
static List *
read_plan(RbFdwScanState *state, ForeignScan *fsplan)
{
	List	   *private = fsplan->fdw_private;

	state->method = intVal(list_nth(private, RbFdwScanPrivateMethod));
	state->key_is_array = boolVal(list_nth(private,
										   RbFdwScanPrivateKeyIsArray));
	state->page_size = intVal(list_nth(private, RbFdwScanPrivatePageSize));
	state->call_text = strVal(list_nth(private, RbFdwScanPrivateCallText));
	state->slow_start = boolVal(list_nth(private, RbFdwScanPrivateSlowStart));
	state->filter_field = intVal(list_nth(private, RbFdwScanPrivateFilterField));
	state->key_field = intVal(list_nth(private, RbFdwScanPrivateKeyField));
	return (List *) list_nth(private, RbFdwScanPrivateRetrievedAttrs);
}

/*
 * read_scan_options
 *		The options the plan was made with (ALTER invalidates plans), and
 *		whose user mapping the scan uses; returns the server.
 */
static ForeignServer *
read_scan_options(RbFdwScanState *state, ForeignScanState *node,
				  RbServerOptions *server_opts, RbTableOptions *table_opts)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);

	rb_get_server_options(server, server_opts);
	rb_get_table_options(table->relid, server_opts, table_opts);
	state->res = table_opts->res;
	state->folder_method = state->res->fields[state->res->folder_field].key_method;
	state->table_folder_id = table_opts->folder_id;
	state->table_cloud_id = table_opts->cloud_id;
	state->tls = server_opts->tls;
	state->userid = rb_scan_user(fsplan, node->ss.ps.state);
	state->serverid = server->serverid;
	return server;
}

/*
 * key_in_plan
 *		Does the plan compute key values (fdw_exprs: the key's value, then
 *		the filter's, each if any)?
 */
static bool
key_in_plan(const RbFdwScanState *state, const ForeignScan *fsplan)
{
	return list_length(fsplan->fdw_exprs) > (state->filter_field >= 0 ? 1 : 0);
}

/*
 * map_columns
 *		The columns to convert (those the plan reads, each to its field),
 *		the key's and the filter's expressions, and the folder filter.
 */
static void
map_columns(RbFdwScanState *state, ForeignScanState *node, List *attrs)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	ListCell   *lc;

	state->rel = rel;
	state->fields = rb_map_columns(rel, state->res);
	state->folder_offset = rb_item_string_offset(state->res,
												 state->res->folder_field);
	if (state->key_field >= 0)
		state->key_offset = rb_item_string_offset(state->res,
												  (RbField) state->key_field);
	if (key_in_plan(state, fsplan))
		state->key_state = ExecInitExpr(linitial(fsplan->fdw_exprs),
										(PlanState *) node);
	if (state->filter_field >= 0)
		state->filter_state = ExecInitExpr(llast(fsplan->fdw_exprs),
										   (PlanState *) node);

	state->columns = palloc(sizeof(RbColumn) * Max(list_length(attrs), 1));
	foreach(lc, attrs)
	{
		int			attidx = intVal(lfirst(lc)) - 1;
		Form_pg_attribute att = TupleDescAttr(tupdesc, attidx);
		RbColumn   *col;

		if (state->fields[attidx] == RB_FIELD_NONE)
			continue;
		col = &state->columns[state->ncolumns++];
		rb_init_column(col, att, attidx, state->res, state->fields[attidx]);
	}
	state->conversion.rel = rel;
	state->conversion.id_offset = rb_item_string_offset(state->res,
														state->res->id_field);

	/* Items of other folders are dropped, unless the call is the folder's. */
	if (state->table_folder_id != NULL)
	{
		state->table_folder_utf8 = rb_key_to_utf8(state->table_folder_id);
		state->filter_folder = (state->method != state->folder_method);
	}
}

/*
 * create_contexts
 *		The scan's memory context, and below it those reset per rescan
 *		(keys) and per row (tuple).
 */
static void
create_contexts(RbFdwScanState *state, EState *estate)
{
	state->scan_cxt = AllocSetContextCreate(estate->es_query_cxt,
											"redis_backup_fdw scan",
											ALLOCSET_SMALL_SIZES);
	state->keys_cxt = AllocSetContextCreate(state->scan_cxt,
											"redis_backup_fdw keys",
											ALLOCSET_SMALL_SIZES);
	state->tuple_cxt = AllocSetContextCreate(state->scan_cxt,
											 "redis_backup_fdw tuple",
											 ALLOCSET_SMALL_SIZES);
}

/*
 * set_call_target
 *		The user mapping's credentials, and what each call to the Managed
 *		Redis API needs besides its channel.
 */
static void
set_call_target(RbFdwScanState *state, UserMapping *user,
				ForeignServer *server, const RbServerOptions *server_opts)
{
	state->creds = rb_get_credentials(user, server_opts, state->scan_cxt,
									  &state->stats);
	rb_set_call_target(&state->target, RB_SERVICE_MDB, server, server_opts,
					   state->creds, &state->stats, state->scan_cxt);
}

/*
 * start_engine
 *		The scan engine (fetch.c) and the channels it calls through: the
 *		Managed Redis API's, and for a cloud Resource Manager's.  The
 *		channels are released however the scan ends, error or not.
 */
static void
start_engine(RbFdwScanState *state, UserMapping *user,
			 const RbServerOptions *server_opts,
			 const RbTableOptions *table_opts)
{
	state->fetch = rb_fetch_create(state->scan_cxt, &state->target,
								   state->creds, (RbMethod) state->method,
								   state->page_size,
								   server_opts->max_concurrent_calls,
								   state->slow_start);

	state->cleanup.func = scan_cleanup;
	state->cleanup.arg = state;
	MemoryContextRegisterResetCallback(state->scan_cxt, &state->cleanup);
	state->conn = rb_acquire_connection(user, server_opts, RB_SERVICE_MDB);
	state->target.conn = state->conn;
	state->target.channel = rb_connection_channel(state->conn);

	if (state->table_cloud_id == NULL)
		return;
	state->rm_target = state->target;
	state->rm_target.service = RB_SERVICE_RESOURCE_MANAGER;
	state->rm_target.endpoint =
		MemoryContextStrdup(state->scan_cxt,
							rb_service_endpoint(server_opts,
												RB_SERVICE_RESOURCE_MANAGER));
	state->rm_conn = rb_acquire_connection(user, server_opts,
										   RB_SERVICE_RESOURCE_MANAGER);
	state->rm_target.conn = state->rm_conn;
	state->rm_target.channel = rb_connection_channel(state->rm_conn);
	rb_fetch_set_cloud(state->fetch, &state->rm_target,
					   state->table_cloud_id, state->key_state == NULL,
					   table_opts->skip_denied_folders);
	state->filter_cloud = (state->method != state->folder_method);
}

/*
 * scan_cleanup
 *		Memory context callback of a scan: give up its calls and give the
 *		channel back.  Runs on error too, so it must not raise one.
 */
static void
scan_cleanup(void *arg)
{
	RbFdwScanState *state = arg;

	if (state->fetch != NULL)
		rb_fetch_abandon(state->fetch);
	if (state->conn != NULL)
		rb_release_connection(state->conn);
	state->conn = NULL;
	if (state->rm_conn != NULL)
		rb_release_connection(state->rm_conn);
	state->rm_conn = NULL;
}

/*
 * redisIterateForeignScan
 *		The next item, fetching the next page when the current one is used
 *		up.
 */
static TupleTableSlot *
redisIterateForeignScan(ForeignScanState *node)
{
	RbFdwScanState *state = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	MemoryContextReset(state->tuple_cxt);

	if (!state->keys_ready)
	{
		char	  **keys;
		int			nkeys;

		if (state->method < 0)
			report_no_key(state->rel, state->res, state->fields);
		keys = NULL;
		nkeys = 0;
		MemoryContextReset(state->keys_cxt);
		if (state->key_state != NULL)
			keys = compute_keys(node, state, &nkeys);
		state->no_rows = !compute_filter(node, state);
		rb_fetch_restart(state->fetch, keys, nkeys);
		state->items = NULL;
		state->nitems = state->next_item = 0;
		state->keys_ready = true;
	}
	if (state->no_rows)
		return slot;

	for (;;)
	{
		while (state->next_item < state->nitems)
		{
			ProtobufCMessage *item = state->items[state->next_item++];
			const char *folder_id =
				*(const char *const *) ((const char *) item + state->folder_offset);
			MemoryContext oldcxt;

			if (state->key_field >= 0)
				check_item_key(state, item);
			if (state->filter_folder &&
				strcmp(folder_id, state->table_folder_utf8) != 0)
				continue;
			if (state->filter_cloud &&
				!rb_fetch_folder_in_cloud(state->fetch, folder_id))
				continue;
			oldcxt = MemoryContextSwitchTo(state->tuple_cxt);
			rb_store_item(item, state->columns, state->ncolumns,
						  &state->conversion, slot);
			MemoryContextSwitchTo(oldcxt);
			return slot;
		}
		state->next_item = 0;
		if (!rb_fetch_next_page(state->fetch, &state->items, &state->nitems,
								&state->items_key))
			return slot;
	}
}

/*
 * check_item_key
 *		An item must answer the call that sent it: its key field holds the
 *		call's key value.  The key's condition is not checked again per row
 *		(redisGetForeignPlan), so an item of another folder, cluster or id
 *		would otherwise be a wrong row.
 */
static void
check_item_key(RbFdwScanState *state, const ProtobufCMessage *item)
{
	const char *value =
		*(const char *const *) ((const char *) item + state->key_offset);
	const char *name = state->res->fields[state->key_field].name;

	if (state->items_key == NULL || strcmp(value, state->items_key) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("%s sent an item that does not answer its call",
					rb_service_name(state->target.service)),
			 errdetail("The call was for %s \"%s\"; the item's %s is \"%s\".",
					   name, rb_key_to_server(state->items_key), name,
					   rb_key_to_server(value))));
}

/*
 * compute_filter
 *		Evaluate the filter's value (a cluster's name) into the listing's
 *		filter, field="value".  False when no item can match: NULL, or a
 *		value the field cannot have (such a value is never sent).  Like the
 *		keys, it lives until the next rescan.
 */
static bool
compute_filter(ForeignScanState *node, RbFdwScanState *state)
{
	const RbFieldInfo *field;
	MemoryContext oldcxt;
	Datum		value;
	bool		isnull;
	char	   *s;
	char	   *utf8;
	bool		ok = false;

	if (state->filter_state == NULL)
		return true;
	rb_fetch_set_filter(state->fetch, NULL, NULL);
	field = &state->res->fields[state->filter_field];
	oldcxt = MemoryContextSwitchTo(state->keys_cxt);
	value = ExecEvalExpr(state->filter_state, node->ss.ps.ps_ExprContext,
						 &isnull);
	if (!isnull)
	{
		s = TextDatumGetCString(value);
		utf8 = rb_key_to_utf8(s);
		ok = field->filter_value_ok(utf8);
		if (ok)
			rb_fetch_set_filter(state->fetch,
								psprintf("%s=\"%s\"", field->name, utf8),
								psprintf("%s=%s", field->name,
										 quote_literal_cstr(s)));
	}
	MemoryContextSwitchTo(oldcxt);
	return ok;
}

/*
 * compute_keys
 *		Evaluate the key's value (constant, parameter or outer column) into
 *		distinct, sorted strings.  NULLs, empty strings and values longer
 *		than any id match no backup and are dropped; so are folders other
 *		than the table's own.
 */
static char **
compute_keys(ForeignScanState *node, RbFdwScanState *state, int *nkeys)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext oldcxt;
	Datum		value;
	bool		isnull;
	Datum	   *elems;
	bool	   *nulls;
	char	  **keys;
	int			n;
	int			i;

	*nkeys = 0;

	/* Everything below lives until the next rescan. */
	oldcxt = MemoryContextSwitchTo(state->keys_cxt);
	value = ExecEvalExpr(state->key_state, econtext, &isnull);
	if (isnull)
	{
		MemoryContextSwitchTo(oldcxt);
		return NULL;
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

	keys = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *s;
		int			len;

		if (nulls[i])
			continue;
		s = TextDatumGetCString(elems[i]);
		len = pg_mbstrlen(s);
		if (len == 0 || len > RB_MAX_ID_LENGTH)
			continue;
		if (state->table_folder_id != NULL && !state->filter_folder &&
			strcmp(s, state->table_folder_id) != 0)
			continue;
		keys[(*nkeys)++] = s;
	}
	MemoryContextSwitchTo(oldcxt);

	/* Distinct values only: one call per value. */
	if (*nkeys > 1)
	{
		int			j = 0;

		qsort(keys, *nkeys, sizeof(char *), compare_cstrings);
		for (i = 1; i < *nkeys; i++)
		{
			if (strcmp(keys[i], keys[j]) != 0)
				keys[++j] = keys[i];
		}
		*nkeys = j + 1;
	}
	return keys;
}

static int
compare_cstrings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
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
	state->items = NULL;
	state->nitems = state->next_item = 0;
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
	if (state->table_folder_id != NULL &&
		state->method != state->folder_method)
		ExplainPropertyText("Folder Filter",
							psprintf("folder_id = %s (table option)",
									 quote_literal_cstr(state->table_folder_id)),
							es);
	if (state->table_cloud_id != NULL && state->method >= 0 &&
		key_in_plan(state, (ForeignScan *) node->ss.ps.plan))
		ExplainPropertyText("Folder Filter",
							psprintf("folders of cloud_id = %s (table option, FolderService.List)",
									 quote_literal_cstr(state->table_cloud_id)),
							es);
	if (es->verbose)
	{
		ExplainPropertyText("Transport",
							state->tls ? "TLS" : "plaintext (tls 'false')", es);
		ExplainPropertyText("Credentials",
							rb_describe_credentials(state->userid,
													   state->serverid),
							es);
	}
	if (es->analyze)
	{
		ExplainPropertyInteger("Remote Calls", NULL, state->stats.calls, es);
		ExplainPropertyInteger("Retries", NULL, state->stats.retries, es);
		ExplainPropertyInteger("Pages", NULL, state->stats.pages, es);
		ExplainPropertyInteger("Rows Decoded", NULL, state->stats.rows, es);
		ExplainPropertyInteger("Bytes Received", NULL, state->stats.bytes, es);
		if (state->stats.token_exchanges > 0)
			ExplainPropertyInteger("Token Exchanges", NULL,
								   state->stats.token_exchanges, es);
		if (state->stats.throttled > 0)
		{
			ExplainPropertyInteger("Throttled", NULL,
								   state->stats.throttled, es);
			ExplainPropertyInteger("Smallest Window", NULL,
								   state->stats.min_window, es);
		}
	}
}

/* ------------------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA
 * ------------------------------------------------------------------------
 */

/*
 * redisImportForeignSchema
 *		The remote schema "redis" has a table per resource (redis_backups,
 *		redis_clusters), with a column per field.  Its options (folder_id,
 *		page_size, ...) become table options of each.
 */
static List *
redisImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const char **import_options;
	int			nimport_options;
	StringInfoData opts;
	const RbResource *res;
	List	   *commands = NIL;
	ListCell   *lc;
	int			i;

	if (strcmp(stmt->remote_schema, "redis") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" is not present on foreign server \"%s\"",
						stmt->remote_schema, server->servername),
				 errhint("Import the remote schema \"redis\".")));

	nimport_options = rb_import_option_names(&import_options);
	initStringInfo(&opts);
	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		bool		valid = false;

		for (i = 0; i < nimport_options; i++)
			valid |= (strcmp(def->defname, import_options[i]) == 0);
		if (!valid)
		{
			StringInfoData names;

			initStringInfo(&names);
			for (i = 0; i < nimport_options; i++)
				appendStringInfo(&names, "%s%s", i > 0 ? ", " : "",
								 import_options[i]);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options of IMPORT FOREIGN SCHEMA are: %s.",
							 names.data)));
		}
		appendStringInfo(&opts, ", %s %s", def->defname,
						 quote_literal_cstr(defGetString(def)));
	}

	for (res = rb_resources; res->name; res++)
	{
		bool		wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_ALL ||
							  stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT);

		foreach(lc, stmt->table_list)
		{
			if (strcmp(((RangeVar *) lfirst(lc))->relname, res->table_name) == 0)
				wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO);
		}
		if (wanted)
			commands = lappend(commands, import_table(res, server, opts.data));
	}
	return commands;
}

/*
 * import_table
 *		CREATE FOREIGN TABLE for res, with options (", name 'value'", ...).
 *		The default resource's table needs no resource option.
 */
static char *
import_table(const RbResource *res, ForeignServer *server, const char *options)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
					 quote_identifier(res->table_name));
	for (i = 0; i < res->nfields; i++)
		appendStringInfo(&buf, "%s\n  %s %s", i > 0 ? "," : "",
						 quote_identifier(res->fields[i].name),
						 res->fields[i].import_type);
	appendStringInfo(&buf, "\n) SERVER %s", quote_identifier(server->servername));
	if (res != &rb_resources[0])
		options = psprintf(", resource %s%s", quote_literal_cstr(res->name),
						   options);
	if (options[0] != '\0')
		appendStringInfo(&buf, " OPTIONS (%s)", options + 2);
	return buf.data;
}

/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  What differs between the PostgreSQL versions redis_backup_fdw
 *		  builds against (15, 16, 17 and 18), in one place.
 *
 * Every difference of the server's API that our code meets is hidden here
 * behind one name, so that no callback carries a PG_VERSION_NUM guard of
 * its own.  Include it after postgres.h.
 *
 *   16  RangeTblEntry.checkAsUser moved to RTEPermissionInfo; the executor
 *       reads the user to check as from ForeignScan.checkAsUser, and that
 *       of a result relation with ExecGetResultRelCheckAsUser().
 *       JSON semantic actions return a JsonParseErrorType.
 *   17  create_foreignscan_path() takes fdw_restrictinfo;
 *       makeJsonLexContextCstringLen() takes the context to fill (NULL: a
 *       new one).
 *   18  create_foreignscan_path() takes disabled_nodes, and the planner
 *       compares paths by their count of disabled nodes before their cost; ExplainState and
 *       the ExplainProperty*() functions moved to commands/explain_state.h
 *       and commands/explain_format.h; pg_attribute_noreturn() gave way to
 *       pg_noreturn, written before the declaration; pg_b64_encode() takes
 *       its input as uint8.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RB_COMPAT_H
#define RB_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "redis_backup_fdw needs PostgreSQL 15 or later"
#endif

#include "common/base64.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "optimizer/pathnode.h"

#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#else
#include "commands/explain.h"
#endif

#ifndef pg_noreturn
/* Before 18: the attribute, which GCC and clang take before a declaration. */
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * A path that cannot run (no key to call with) must never be chosen over
 * one that can, whatever enable_* says.  Before 18 its cost does that (the
 * caller passes a cost far above the disable_cost that enable_* = off
 * adds).  From 18 on, enable_* = off counts a disabled node instead, and a
 * path with fewer disabled nodes wins whatever its cost: so a path that
 * cannot run also counts as this many disabled nodes, more than any plan
 * that can run has.
 */
#define RB_UNRUNNABLE_DISABLED_NODES 1000000

/*
 * rb_create_foreignscan_path
 *		create_foreignscan_path() with what a plain scan of ours passes: no
 *		target, pathkeys, outer plan, extra restrictions or private data.
 *		runnable is false for a path that has nothing to call.
 */
static inline ForeignPath *
rb_create_foreignscan_path(PlannerInfo *root, RelOptInfo *rel, double rows,
						   Cost startup_cost, Cost total_cost,
						   Relids required_outer, bool runnable)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows,
								   runnable ? 0 : RB_UNRUNNABLE_DISABLED_NODES,
								   startup_cost, total_cost, NIL,
								   required_outer, NULL, NIL, NIL);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, NIL, required_outer, NULL,
								   NIL, NIL);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, NIL, required_outer, NULL,
								   NIL);
#endif
}

/*
 * rb_scan_user
 *		The role whose user mapping a foreign scan uses, as postgres_fdw
 *		chooses it: the role the plan says to check as (a view's owner, a
 *		SECURITY DEFINER function's), else the current user.  From 16 on
 *		that is the plan's checkAsUser; before, the range table entry's.
 */
static inline Oid
rb_scan_user(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	Oid			checkas = fsplan->checkAsUser;
#else
	Oid			checkas = exec_rt_fetch(fsplan->scan.scanrelid,
										estate)->checkAsUser;
#endif

	return OidIsValid(checkas) ? checkas : GetUserId();
}

/*
 * rb_modify_user
 *		The role whose user mapping an INSERT or DELETE on a foreign table
 *		uses, as postgres_fdw chooses it: the result relation's checkAsUser
 *		(a view's owner, ...), else the current user.
 */
static inline Oid
rb_modify_user(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	Oid			checkas = exec_rt_fetch(rinfo->ri_RangeTableIndex,
										estate)->checkAsUser;

	return OidIsValid(checkas) ? checkas : GetUserId();
#endif
}

/*
 * JSON semantic actions return a JsonParseErrorType from 16 on:
 * RB_JSON_ACTION is the return type to declare, RB_JSON_ACTION_DONE what
 * an action that succeeded returns.
 */
#if PG_VERSION_NUM >= 160000
#define RB_JSON_ACTION JsonParseErrorType
#define RB_JSON_ACTION_DONE return JSON_SUCCESS
#else
#define RB_JSON_ACTION void
#define RB_JSON_ACTION_DONE return
#endif

/*
 * rb_json_lex_context
 *		A lexer over json[0..len), keeping de-escaped strings.
 */
static inline JsonLexContext *
rb_json_lex_context(const char *json, size_t len, int encoding)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, true);
#else
	return makeJsonLexContextCstringLen(unconstify(char *, json), len,
										encoding, true);
#endif
}

/*
 * rb_b64_encode
 *		pg_b64_encode() of bytes, whatever pointer type it wants (18: uint8).
 */
static inline int
rb_b64_encode(const unsigned char *src, int len, char *dst, int dstlen)
{
#if PG_VERSION_NUM >= 180000
	return pg_b64_encode((const uint8 *) src, len, dst, dstlen);
#else
	return pg_b64_encode((const char *) src, len, dst, dstlen);
#endif
}

#endif							/* RB_COMPAT_H */

/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which conditions become call arguments, and how EXPLAIN shows them.
 *
 * A condition pushes down when it is
 *		key_column = value   or   key_column = ANY (array value)
 * with text equality under a deterministic collation, where key_column
 * shows a key field of the table's resource (backups: id, source_cluster_id,
 * folder_id; clusters: id, folder_id), or
 *		filter_column = value
 * where filter_column shows a field a listing's filter takes (a cluster's
 * name), and value is any expression
 * that does not involve this table and is not volatile: a constant, a
 * parameter, an outer relation's column (a join key), or a stable
 * expression of those.  The condition is still checked on every row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "redis_backup_fdw.h"

static Var *key_column(Node *node, RelOptInfo *baserel);
static bool is_text_equality(Oid opno, Oid inputcollid);
static bool value_is_usable(PlannerInfo *root, Node *node,
							RelOptInfo *baserel);
static void deparse_value(PlannerInfo *root, Node *node, StringInfo buf);
static void deparse_const(Const *c, StringInfo buf);

/*
 * rb_key_qual_from_clause
 *		If rinfo is a condition that can give a call its key values or its
 *		listing's filter, fill *key and return true; key->info says which
 *		(is_key, filter_value_ok).
 */
bool
rb_key_qual_from_clause(PlannerInfo *root, RelOptInfo *baserel,
						RestrictInfo *rinfo, const RbTableColumns *cols,
						RbKeyQual *key)
{
	const RbFieldInfo *info;
	Expr	   *clause = rinfo->clause;
	Node	   *left;
	Node	   *right;
	Var		   *var;
	bool		is_array;

	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;

		if (list_length(op->args) != 2 ||
			!is_text_equality(op->opno, op->inputcollid))
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);
		is_array = false;

		/* Either side may be the column. */
		if (key_column(left, baserel) == NULL)
		{
			Node	   *tmp = left;

			left = right;
			right = tmp;
		}
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr || list_length(saop->args) != 2 ||
			!is_text_equality(saop->opno, saop->inputcollid))
			return false;
		left = linitial(saop->args);
		right = lsecond(saop->args);
		is_array = true;
	}
	else
		return false;

	var = key_column(left, baserel);
	if (var == NULL || var->varattno < 1 || var->varattno > cols->natts ||
		cols->fields[var->varattno - 1] == RB_FIELD_NONE)
		return false;
	info = &cols->resource->fields[cols->fields[var->varattno - 1]];
	if (!info->is_key && info->filter_value_ok == NULL)
		return false;
	if (!value_is_usable(root, right, baserel))
		return false;

	key->rinfo = rinfo;
	key->info = info;
	key->field = cols->fields[var->varattno - 1];
	key->value = (Expr *) right;
	key->is_array = is_array;
	return true;
}

/*
 * key_column
 *		The Var of this table under node (through a binary-compatible
 *		relabeling such as varchar to text), or NULL.
 */
static Var *
key_column(Node *node, RelOptInfo *baserel)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node && IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if ((Index) var->varno == baserel->relid && var->varlevelsup == 0)
			return var;
	}
	return NULL;
}

/*
 * is_text_equality
 *		Is opno text = text under a collation where equal means identical?
 */
static bool
is_text_equality(Oid opno, Oid inputcollid)
{
	if (get_opcode(opno) != F_TEXTEQ)
		return false;
	return !OidIsValid(inputcollid) ||
		get_collation_isdeterministic(inputcollid);
}

/*
 * value_is_usable
 *		Can the scan compute node before calling: no reference to this
 *		table, nothing volatile, no subquery?
 */
static bool
value_is_usable(PlannerInfo *root, Node *node, RelOptInfo *baserel)
{
	Relids		relids = pull_varnos(root, node);

	if (bms_is_member(baserel->relid, relids))
		return false;
	if (contain_volatile_functions(node) || contain_subplans(node))
		return false;
	return true;
}

/*
 * rb_better_key
 *		Is candidate a better key than best?  The key whose values each
 *		select fewer backups (Get beats ListBackups beats List); among
 *		equals, a single value beats an array.
 */
bool
rb_better_key(const RbKeyQual *candidate, const RbKeyQual *best)
{
	double		c = candidate->info->rows_per_key;
	double		b = best->info->rows_per_key;

	if (c != b)
		return c < b;
	return !candidate->is_array && best->is_array;
}

/*
 * rb_best_key
 *		The best key among clauses (RestrictInfos), if any.
 */
bool
rb_best_key(PlannerInfo *root, RelOptInfo *baserel, List *clauses,
			const RbTableColumns *cols, RbKeyQual *best)
{
	bool		found = false;
	ListCell   *lc;

	foreach(lc, clauses)
	{
		RbKeyQual	key;

		if (rb_key_qual_from_clause(root, baserel, lfirst_node(RestrictInfo, lc),
									cols, &key) &&
			key.info->is_key &&
			(!found || rb_better_key(&key, best)))
		{
			*best = key;
			found = true;
		}
	}
	return found;
}

/*
 * rb_filter_qual
 *		A condition among clauses that can narrow a listing with its filter:
 *		filter_field = value, a single value (the API's filter takes one).
 */
bool
rb_filter_qual(PlannerInfo *root, RelOptInfo *baserel, List *clauses,
			   const RbTableColumns *cols, RbKeyQual *filter)
{
	ListCell   *lc;

	foreach(lc, clauses)
	{
		if (rb_key_qual_from_clause(root, baserel, lfirst_node(RestrictInfo, lc),
									cols, filter) &&
			filter->info->filter_value_ok != NULL && !filter->is_array)
			return true;
	}
	return false;
}

/*
 * rb_deparse_key_value
 *		Append how EXPLAIN shows a key's values: "='x'", "=$1",
 *		"=inventory.folder_id", " IN ('a', 'b')", "=ANY($1)".
 */
void
rb_deparse_key_value(PlannerInfo *root, RbKeyQual *key, StringInfo buf)
{
	Node	   *value = (Node *) key->value;

	if (!key->is_array)
	{
		appendStringInfoChar(buf, '=');
		deparse_value(root, value, buf);
		return;
	}

	if (IsA(value, Const) && !((Const *) value)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) value)->constvalue);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		appendStringInfoString(buf, " IN (");
		for (i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoString(buf, ", ");
			if (nulls[i])
				appendStringInfoString(buf, "NULL");
			else
				appendStringInfoString(buf,
									   quote_literal_cstr(TextDatumGetCString(elems[i])));
		}
		appendStringInfoChar(buf, ')');
		return;
	}
	if (IsA(value, ArrayExpr))
	{
		ListCell   *lc;

		appendStringInfoString(buf, " IN (");
		foreach(lc, ((ArrayExpr *) value)->elements)
		{
			if (lc != list_head(((ArrayExpr *) value)->elements))
				appendStringInfoString(buf, ", ");
			deparse_value(root, lfirst(lc), buf);
		}
		appendStringInfoChar(buf, ')');
		return;
	}
	appendStringInfoString(buf, "=ANY(");
	deparse_value(root, value, buf);
	appendStringInfoChar(buf, ')');
}

/*
 * deparse_value
 *		A short form of a value expression: a literal, $n, alias.column, or
 *		"(expression)" for anything longer.  Parameters show as $n, as
 *		PostgreSQL's EXPLAIN shows them: external ones (a prepared
 *		statement's), and those the executor sets from the query around
 *		this one (correlated subqueries, init plans, LATERAL).
 */
static void
deparse_value(PlannerInfo *root, Node *node, StringInfo buf)
{
	while (node && (IsA(node, RelabelType) || IsA(node, CoerceViaIO)))
		node = IsA(node, RelabelType) ? (Node *) ((RelabelType *) node)->arg
			: (Node *) ((CoerceViaIO *) node)->arg;

	if (IsA(node, Const))
		deparse_const((Const *) node, buf);
	else if (IsA(node, Param))
		appendStringInfo(buf, "$%d", ((Param *) node)->paramid);
	else if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0 &&
			 ((Var *) node)->varattno > 0)
	{
		Var		   *var = (Var *) node;
		RangeTblEntry *rte = planner_rt_fetch(var->varno, root);
		char	   *colname = get_rte_attribute_name(rte, var->varattno);

		appendStringInfo(buf, "%s.%s", quote_identifier(rte->eref->aliasname),
						 quote_identifier(colname));
	}
	else
		appendStringInfoString(buf, "(expression)");
}

/*
 * deparse_const
 *		A constant as a quoted literal.
 */
static void
deparse_const(Const *c, StringInfo buf)
{
	Oid			typoutput;
	bool		typIsVarlena;

	if (c->constisnull)
	{
		appendStringInfoString(buf, "NULL");
		return;
	}
	getTypeOutputInfo(c->consttype, &typoutput, &typIsVarlena);
	appendStringInfoString(buf,
						   quote_literal_cstr(OidOutputFunctionCall(typoutput,
																	c->constvalue)));
}

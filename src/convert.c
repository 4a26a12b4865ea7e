/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  Conversion between the API's values and PostgreSQL datums: the
 *		  fields of an item (a Backup, a Cluster) into the columns of a row,
 *		  and key values into the UTF-8 the API expects.  Each converter
 *		  reads a kind of field (string, Timestamp, repeated string, enum,
 *		  bool, map, TimeOfDay, Int64Value) wherever the column's field
 *		  descriptors say it lies.
 *
 * Every value that came over the wire is checked before it becomes a
 * datum: strings for valid UTF-8, timestamps for range.  A bad value is an
 * error in the fdw_error class, never a wrong row; an error context names
 * the column, the foreign table and the item (as postgres_fdw's
 * conversion_error_callback does).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Seconds from the Unix epoch to the PostgreSQL epoch (2000-01-01). */
#define RB_PG_EPOCH_OFFSET_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31T23:59:59. */
#define RB_TIMESTAMP_MIN_SECS INT64CONST(-62135596800)
#define RB_TIMESTAMP_MAX_SECS INT64CONST(253402300799)

/* How the zero of an enum says it means "not set". */
#define RB_ENUM_UNSPECIFIED "_UNSPECIFIED"

static const char *field_message(const ProtobufCMessage *item,
								 const RbColumn *col);
static const void *field_value(const ProtobufCMessage *item,
							   const RbColumn *col);
static size_t field_count(const ProtobufCMessage *item, const RbColumn *col);
static char *server_string(const char *str, int *len, const RbColumn *col);
static Datum text_datum(const char *s, int len, Oid typid, int32 typmod);
static void conversion_error_callback(void *arg);

/*
 * field_message
 *		The message that holds the column's field: item, or a message of it
 *		(its config, say); NULL when that is not set.
 */
static const char *
field_message(const ProtobufCMessage *item, const RbColumn *col)
{
	if (col->parent == NULL)
		return (const char *) item;
	return *(const char *const *) ((const char *) item + col->parent->offset);
}

/*
 * field_value
 *		Where the column's field lies, or NULL when the message that holds
 *		it is not set.
 */
static const void *
field_value(const ProtobufCMessage *item, const RbColumn *col)
{
	const char *msg = field_message(item, col);

	return msg != NULL ? msg + col->fd->offset : NULL;
}

/*
 * field_count
 *		The number of values of the column's repeated field (0 when the
 *		message that holds it is not set).
 */
static size_t
field_count(const ProtobufCMessage *item, const RbColumn *col)
{
	const char *msg = field_message(item, col);

	return msg != NULL ? *(const size_t *) (msg + col->fd->quantifier_offset) : 0;
}

/*
 * server_string
 *		A string from a reply, checked to be valid UTF-8 and converted to the
 *		database encoding.  protobuf-c has already cut it at any NUL byte;
 *		the client library rejects replies whose strings hold one.
 */
static char *
server_string(const char *str, int *len, const RbColumn *col)
{
	*len = strlen(str);
	if (!pg_verify_mbstr(PG_UTF8, str, *len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("invalid UTF-8 in a %s", col->resource->item_name),
				 errdetail("The Managed Redis API sent a string that is not valid UTF-8.")));
	/* In a UTF8 database it is ready (pg_any_to_server would check again). */
	if (GetDatabaseEncoding() == PG_UTF8)
		return unconstify(char *, str);
	str = pg_any_to_server(str, *len, PG_UTF8);
	*len = strlen(str);
	return unconstify(char *, str);
}

/*
 * rb_key_to_utf8
 *		A key value or option (in the database encoding) as the UTF-8 the API
 *		expects.
 */
char *
rb_key_to_utf8(const char *value)
{
	return pg_server_to_any(value, strlen(value), PG_UTF8);
}

/*
 * rb_key_to_server
 *		A key value or id the API sent (UTF-8), for a message, in the
 *		database encoding; one that is not valid UTF-8 is not quoted.
 */
char *
rb_key_to_server(const char *value_utf8)
{
	int			len = strlen(value_utf8);

	if (!pg_verify_mbstr(PG_UTF8, value_utf8, len, true))
		return pstrdup("(not valid UTF-8)");
	return pg_any_to_server(value_utf8, len, PG_UTF8);
}

/*
 * text_datum
 *		s (in the database encoding) as a datum of a text or varchar column;
 *		a value too long for a varchar(n) is an error, never cut short.
 */
static Datum
text_datum(const char *s, int len, Oid typid, int32 typmod)
{
	if (typid == VARCHAROID && typmod >= 0)
		return DirectFunctionCall3(varcharin, CStringGetDatum(s),
								   ObjectIdGetDatum(InvalidOid),
								   Int32GetDatum(typmod));
	return PointerGetDatum(cstring_to_text_with_len(s, len));
}

/*
 * rb_string_datum
 *		A text or varchar datum of a string field.
 */
Datum
rb_string_datum(const ProtobufCMessage *item, const RbColumn *col,
				bool *isnull)
{
	const char *const *value = field_value(item, col);
	const char *str;
	int			len;

	*isnull = (value == NULL);
	if (*isnull)
		return (Datum) 0;
	str = server_string(*value, &len, col);
	return text_datum(str, len, col->typid, col->typmod);
}

/*
 * rb_timestamp_datum
 *		A timestamptz (or timestamp, read as UTC) datum of a Timestamp field.
 *		Nanoseconds are rounded half up to the microsecond, as PostgreSQL's
 *		own input rounds, except that nothing rounds past the last
 *		microsecond of 9999: 9999-12-31T23:59:59.9999995Z and later are
 *		clamped to 9999-12-31 23:59:59.999999.  An unset Timestamp is NULL.
 */
Datum
rb_timestamp_datum(const ProtobufCMessage *item, const RbColumn *col,
				   bool *isnull)
{
	Google__Protobuf__Timestamp *const *value = field_value(item, col);
	const Google__Protobuf__Timestamp *ts = value ? *value : NULL;
	const char *what = col->resource->item_name;
	TimestampTz result;
	int64		usecs;

	if (ts == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	*isnull = false;

	if (ts->nanos < 0 || ts->nanos > 999999999 ||
		ts->seconds < RB_TIMESTAMP_MIN_SECS ||
		ts->seconds > RB_TIMESTAMP_MAX_SECS)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid timestamp in a %s", what),
				 errdetail("The Managed Redis API sent seconds=" INT64_FORMAT " nanos=%d.",
						   (int64) ts->seconds, ts->nanos)));

	usecs = (ts->nanos + 500) / 1000;
	if (ts->seconds == RB_TIMESTAMP_MAX_SECS && usecs == USECS_PER_SEC)
		usecs = USECS_PER_SEC - 1;

	/* In range, so none of this overflows. */
	result = (ts->seconds - RB_PG_EPOCH_OFFSET_SECS) * USECS_PER_SEC + usecs;

	if (!IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range in a %s", what)));

	if (col->typmod >= 0)
		return DirectFunctionCall2(col->typid == TIMESTAMPOID ? timestamp_scale
								   : timestamptz_scale,
								   TimestampTzGetDatum(result),
								   Int32GetDatum(col->typmod));
	return TimestampTzGetDatum(result);
}

/*
 * rb_string_array_datum
 *		A text[] of a repeated string field; none is the empty array.
 */
Datum
rb_string_array_datum(const ProtobufCMessage *item, const RbColumn *col,
					  bool *isnull)
{
	char *const *const *value = field_value(item, col);
	size_t		n;
	Datum	   *elems;
	size_t		i;

	*isnull = (value == NULL);
	if (*isnull)
		return (Datum) 0;
	n = field_count(item, col);
	if (n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));

	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		int			len;
		const char *str = server_string((*value)[i], &len, col);

		elems[i] = PointerGetDatum(cstring_to_text_with_len(str, len));
	}
	return PointerGetDatum(construct_array(elems, (int) n, TEXTOID, -1,
										   false, TYPALIGN_INT));
}

/*
 * rb_enum_datum
 *		An enum field as text: its value's name; NULL for a zero whose name
 *		says it is unspecified (BACKUP_TYPE_UNSPECIFIED,
 *		ENVIRONMENT_UNSPECIFIED); the decimal number for a value this proto
 *		does not know.
 */
Datum
rb_enum_datum(const ProtobufCMessage *item, const RbColumn *col,
			  bool *isnull)
{
	const ProtobufCEnumDescriptor *desc = col->fd->descriptor;
	const int  *value = field_value(item, col);
	const ProtobufCEnumValue *known;
	char		buf[32];
	const char *s;

	*isnull = (value == NULL);
	if (*isnull)
		return (Datum) 0;
	known = protobuf_c_enum_descriptor_get_value(desc, *value);
	if (known != NULL)
	{
		size_t		len = strlen(known->name);

		if (*value == 0 && len >= strlen(RB_ENUM_UNSPECIFIED) &&
			strcmp(known->name + len - strlen(RB_ENUM_UNSPECIFIED),
				   RB_ENUM_UNSPECIFIED) == 0)
		{
			*isnull = true;
			return (Datum) 0;
		}
		s = known->name;
	}
	else
	{
		snprintf(buf, sizeof(buf), "%d", *value);
		s = buf;
	}
	return text_datum(s, strlen(s), col->typid, col->typmod);
}

/*
 * rb_bool_datum
 *		A boolean of a bool field.
 */
Datum
rb_bool_datum(const ProtobufCMessage *item, const RbColumn *col,
			  bool *isnull)
{
	const protobuf_c_boolean *value = field_value(item, col);

	*isnull = (value == NULL);
	return *isnull ? (Datum) 0 : BoolGetDatum(*value != 0);
}

/*
 * rb_map_jsonb_datum
 *		A jsonb object of a map<string, string> field (a repeated message of
 *		key and value), built as jsonb builds one: keys and values escaped as
 *		JSON strings, and of keys sent twice the last wins.  An empty map is
 *		{}.
 */
Datum
rb_map_jsonb_datum(const ProtobufCMessage *item, const RbColumn *col,
				   bool *isnull)
{
	ProtobufCMessage *const *const *value = field_value(item, col);
	const ProtobufCMessageDescriptor *entry = col->fd->descriptor;
	const ProtobufCFieldDescriptor *key_f;
	const ProtobufCFieldDescriptor *value_f;
	JsonbParseState *state = NULL;
	JsonbValue *result;
	size_t		n;
	size_t		i;

	*isnull = (value == NULL);
	if (*isnull)
		return (Datum) 0;
	key_f = protobuf_c_message_descriptor_get_field_by_name(entry, "key");
	value_f = protobuf_c_message_descriptor_get_field_by_name(entry, "value");
	if (key_f == NULL || value_f == NULL)
		elog(ERROR, "message %s is no map entry", entry->name);
	n = field_count(item, col);

	result = pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
	{
		const char *pair = (const char *) (*value)[i];
		JsonbValue	k;
		JsonbValue	v;

		k.type = jbvString;
		k.val.string.val = server_string(*(char *const *) (pair + key_f->offset),
										 &k.val.string.len, col);
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = server_string(*(char *const *) (pair + value_f->offset),
										 &v.val.string.len, col);
		(void) pushJsonbValue(&state, WJB_VALUE, &v);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/*
 * rb_time_of_day_datum
 *		A time of a google.type.TimeOfDay field, nanoseconds rounded half up
 *		to the microsecond (23:59:59.9999995 is 24:00:00, which time
 *		holds).  An unset TimeOfDay is NULL; one out of range an error.
 */
Datum
rb_time_of_day_datum(const ProtobufCMessage *item, const RbColumn *col,
					 bool *isnull)
{
	Google__Type__TimeOfDay *const *value = field_value(item, col);
	const Google__Type__TimeOfDay *tod = value ? *value : NULL;
	TimeADT		result;

	if (tod == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	*isnull = false;
	if (tod->hours < 0 || tod->hours > 23 || tod->minutes < 0 ||
		tod->minutes > 59 || tod->seconds < 0 || tod->seconds > 59 ||
		tod->nanos < 0 || tod->nanos > 999999999)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid time of day in a %s", col->resource->item_name),
				 errdetail("The Managed Redis API sent hours=%d minutes=%d seconds=%d nanos=%d.",
						   tod->hours, tod->minutes, tod->seconds,
						   tod->nanos)));
	result = ((((int64) tod->hours * MINS_PER_HOUR) + tod->minutes) *
			  SECS_PER_MINUTE + tod->seconds) * USECS_PER_SEC +
		(tod->nanos + 500) / 1000;
	if (col->typmod >= 0)
		return DirectFunctionCall2(time_scale, TimeADTGetDatum(result),
								   Int32GetDatum(col->typmod));
	return TimeADTGetDatum(result);
}

/*
 * rb_int64_value_datum
 *		An integer or bigint of a google.protobuf.Int64Value field; unset is
 *		NULL, a value an integer column cannot hold an error.
 */
Datum
rb_int64_value_datum(const ProtobufCMessage *item, const RbColumn *col,
					 bool *isnull)
{
	Google__Protobuf__Int64Value *const *value = field_value(item, col);
	const Google__Protobuf__Int64Value *wrapper = value ? *value : NULL;

	if (wrapper == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	*isnull = false;
	if (col->typid == INT8OID)
		return Int64GetDatum(wrapper->value);
	if (wrapper->value < PG_INT32_MIN || wrapper->value > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range in a %s", col->resource->item_name),
				 errdetail("The Managed Redis API sent " INT64_FORMAT ".",
						   (int64) wrapper->value),
				 errhint("Use type bigint.")));
	return Int32GetDatum((int32) wrapper->value);
}

/*
 * rb_init_column
 *		Describe attribute att (index attidx) of a table of res, mapped to
 *		field, as a column to fill.
 */
void
rb_init_column(RbColumn *col, Form_pg_attribute att, int attidx,
			   const RbResource *res, RbField field)
{
	col->attidx = attidx;
	col->resource = res;
	col->field = &res->fields[field];
	col->fd = rb_field_descriptor(res, field, &col->parent);
	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
}

/*
 * rb_store_item
 *		Fill slot with the columns of item that the plan needs; the others
 *		are NULL.  Conversion errors name the column, the table and the
 *		item.
 */
void
rb_store_item(const ProtobufCMessage *item, const RbColumn *columns,
			  int ncolumns, RbConversionContext *cxt, TupleTableSlot *slot)
{
	ErrorContextCallback errcallback;
	int			natts = slot->tts_tupleDescriptor->natts;
	int			i;

	memset(slot->tts_values, 0, sizeof(Datum) * natts);
	memset(slot->tts_isnull, true, sizeof(bool) * natts);

	cxt->item = item;
	errcallback.callback = conversion_error_callback;
	errcallback.arg = cxt;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < ncolumns; i++)
	{
		const RbColumn *col = &columns[i];

		cxt->column = col;
		slot->tts_values[col->attidx] =
			col->field->convert(item, col, &slot->tts_isnull[col->attidx]);
	}

	error_context_stack = errcallback.previous;
	cxt->column = NULL;
	ExecStoreVirtualTuple(slot);
}

/*
 * conversion_error_callback
 *		Name what was being converted.
 */
static void
conversion_error_callback(void *arg)
{
	RbConversionContext *cxt = arg;
	const RbColumn *col = cxt->column;
	const char *const *idp;
	char	   *id;
	char	   *p;

	if (col == NULL)
		return;

	/*
	 * The id as sent, unless the database cannot show it: this runs while an
	 * error is being reported and must not raise another.  The id field is
	 * the item's own string field, found at the scan's start.
	 */
	idp = (const char *const *) ((const char *) cxt->item + cxt->id_offset);
	id = pstrdup(*idp ? *idp : "");
	if (GetDatabaseEncoding() != PG_UTF8 ||
		!pg_verify_mbstr(PG_UTF8, id, strlen(id), true))
	{
		for (p = id; *p; p++)
		{
			if (!IS_HIGHBIT_SET(*p) && *p >= 0x20)
				continue;
			*p = '?';
		}
	}
	errcontext("column \"%s\" of foreign table \"%s\", %s \"%s\"",
			   NameStr(TupleDescAttr(RelationGetDescr(cxt->rel),
									 col->attidx)->attname),
			   RelationGetRelationName(cxt->rel), col->resource->item_name, id);
}

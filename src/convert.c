/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  Conversion between the API's values and PostgreSQL datums: Backup
 *		  fields into the columns of a row, and key values into the UTF-8
 *		  the API expects.
 *
 * Every value that came over the wire is checked before it becomes a
 * datum: strings for valid UTF-8, timestamps for range.  A bad value is an
 * error in the fdw_error class, never a wrong row; an error context names
 * the column, the foreign table and the backup (as postgres_fdw's
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
#include "utils/datetime.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Seconds from the Unix epoch to the PostgreSQL epoch (2000-01-01). */
#define RB_PG_EPOCH_OFFSET_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31T23:59:59. */
#define RB_TIMESTAMP_MIN_SECS INT64CONST(-62135596800)
#define RB_TIMESTAMP_MAX_SECS INT64CONST(253402300799)

static char *server_string(const char *str, int *len);
static Datum text_datum(const char *s, int len, Oid typid, int32 typmod);
static void conversion_error_callback(void *arg);

/*
 * server_string
 *		A string from a reply, checked to be valid UTF-8 and converted to the
 *		database encoding.  protobuf-c has already cut it at any NUL byte;
 *		the client library rejects replies whose strings hold one.
 */
static char *
server_string(const char *str, int *len)
{
	*len = strlen(str);
	if (!pg_verify_mbstr(PG_UTF8, str, *len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("invalid UTF-8 in a backup"),
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
rb_string_datum(const RbBackup *backup, const RbFieldInfo *field,
				Oid typid, int32 typmod, bool *isnull)
{
	const char *str = *(char *const *) ((const char *) backup + field->offset);
	int			len;

	str = server_string(str, &len);
	*isnull = false;
	return text_datum(str, len, typid, typmod);
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
rb_timestamp_datum(const RbBackup *backup, const RbFieldInfo *field,
				   Oid typid, int32 typmod, bool *isnull)
{
	const Google__Protobuf__Timestamp *ts =
		*(Google__Protobuf__Timestamp *const *) ((const char *) backup + field->offset);
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
				 errmsg("invalid timestamp in a backup"),
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
				 errmsg("timestamp out of range in a backup")));

	if (typmod >= 0)
		return DirectFunctionCall2(typid == TIMESTAMPOID ? timestamp_scale
								   : timestamptz_scale,
								   TimestampTzGetDatum(result),
								   Int32GetDatum(typmod));
	return TimestampTzGetDatum(result);
}

/*
 * rb_shard_names_datum
 *		A text[] of the shard names; none is the empty array.
 */
Datum
rb_shard_names_datum(const RbBackup *backup, const RbFieldInfo *field,
					 Oid typid, int32 typmod, bool *isnull)
{
	size_t		n = backup->n_source_shard_names;
	Datum	   *elems;
	size_t		i;

	*isnull = false;
	if (n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));

	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		int			len;
		const char *name = server_string(backup->source_shard_names[i], &len);

		elems[i] = PointerGetDatum(cstring_to_text_with_len(name, len));
	}
	return PointerGetDatum(construct_array(elems, (int) n, TEXTOID, -1,
										   false, TYPALIGN_INT));
}

/*
 * rb_type_datum
 *		The backup type as text: its enum name, NULL for
 *		BACKUP_TYPE_UNSPECIFIED, the decimal number for a value this proto
 *		does not know.
 */
Datum
rb_type_datum(const RbBackup *backup, const RbFieldInfo *field,
			  Oid typid, int32 typmod, bool *isnull)
{
	const ProtobufCEnumValue *value;
	char		buf[32];
	const char *s;

	if (backup->type == YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__BACKUP_TYPE_UNSPECIFIED)
	{
		*isnull = true;
		return (Datum) 0;
	}
	value = protobuf_c_enum_descriptor_get_value(&yandex__cloud__mdb__redis__v1__backup__backup_type__descriptor,
												 (int) backup->type);
	if (value != NULL)
		s = value->name;
	else
	{
		snprintf(buf, sizeof(buf), "%d", (int) backup->type);
		s = buf;
	}
	*isnull = false;
	return text_datum(s, strlen(s), typid, typmod);
}

/*
 * rb_store_backup
 *		Fill slot with the columns of backup that the plan needs; the others
 *		are NULL.  Conversion errors name the column, the table and the
 *		backup.
 */
void
rb_store_backup(const RbBackup *backup, const RbColumn *columns,
				int ncolumns, RbConversionContext *cxt,
				TupleTableSlot *slot)
{
	ErrorContextCallback errcallback;
	int			natts = slot->tts_tupleDescriptor->natts;
	int			i;

	memset(slot->tts_values, 0, sizeof(Datum) * natts);
	memset(slot->tts_isnull, true, sizeof(bool) * natts);

	cxt->backup = backup;
	errcallback.callback = conversion_error_callback;
	errcallback.arg = cxt;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < ncolumns; i++)
	{
		const RbColumn *col = &columns[i];

		cxt->column = col;
		slot->tts_values[col->attidx] =
			col->field->convert(backup, col->field, col->typid, col->typmod,
								&slot->tts_isnull[col->attidx]);
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
	char	   *id;
	char	   *p;

	if (cxt->column == NULL)
		return;

	/*
	 * The id as sent, unless the database cannot show it: this runs while an
	 * error is being reported and must not raise another.
	 */
	id = pstrdup(cxt->backup->id ? cxt->backup->id : "");
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
	errcontext("column \"%s\" of foreign table \"%s\", backup \"%s\"",
			   NameStr(TupleDescAttr(RelationGetDescr(cxt->rel),
									 cxt->column->attidx)->attname),
			   RelationGetRelationName(cxt->rel), id);
}

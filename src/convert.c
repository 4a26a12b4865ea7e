/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  Conversion of Backup message fields to PostgreSQL datums.
 *
 * Every value that came over the wire is checked before it becomes a
 * datum: strings for valid UTF-8, timestamps for range.  A bad value is an
 * error in the fdw_error class, never a wrong row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Seconds from the Unix epoch to the PostgreSQL epoch (2000-01-01). */
#define RB_PG_EPOCH_OFFSET_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31T23:59:59. */
#define RB_TIMESTAMP_MIN_SECS INT64CONST(-62135596800)
#define RB_TIMESTAMP_MAX_SECS INT64CONST(253402300799)

static char *server_string(const char *str, const char *field);

/*
 * rb_column_type_ok
 *		May a column of type typid show field?
 */
bool
rb_column_type_ok(RbField field, Oid typid)
{
	switch (field)
	{
		case RB_FIELD_ID:
		case RB_FIELD_FOLDER_ID:
		case RB_FIELD_SOURCE_CLUSTER_ID:
		case RB_FIELD_TYPE:
			return typid == TEXTOID || typid == VARCHAROID;
		case RB_FIELD_CREATED_AT:
		case RB_FIELD_STARTED_AT:
			return typid == TIMESTAMPTZOID || typid == TIMESTAMPOID;
		case RB_FIELD_SOURCE_SHARD_NAMES:
			return typid == TEXTARRAYOID;
		case RB_NUM_FIELDS:
			break;
	}
	return false;
}

/*
 * rb_field_type_names
 *		The types a column of that field may have, for hints.
 */
const char *
rb_field_type_names(RbField field)
{
	switch (field)
	{
		case RB_FIELD_CREATED_AT:
		case RB_FIELD_STARTED_AT:
			return "timestamptz or timestamp";
		case RB_FIELD_SOURCE_SHARD_NAMES:
			return "text[]";
		default:
			return "text or varchar";
	}
}

/*
 * server_string
 *		A string from a reply, checked to be valid UTF-8 and converted to the
 *		database encoding.  protobuf-c has already cut it at any NUL byte;
 *		the client library rejects replies whose strings hold one.
 */
static char *
server_string(const char *str, const char *field)
{
	int			len = strlen(str);

	if (!pg_verify_mbstr(PG_UTF8, str, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("invalid UTF-8 in field \"%s\" of a backup", field),
				 errdetail("The Managed Redis API sent a string that is not valid UTF-8.")));
	return pg_any_to_server(str, len, PG_UTF8);
}

/*
 * rb_string_datum
 *		A text or varchar datum of a string field.
 */
Datum
rb_string_datum(const char *str, Oid typid, int32 typmod, const char *field)
{
	char	   *s = server_string(str, field);

	if (typid == VARCHAROID && typmod >= 0)
		return DirectFunctionCall3(varcharin, CStringGetDatum(s),
								   ObjectIdGetDatum(InvalidOid),
								   Int32GetDatum(typmod));
	return PointerGetDatum(cstring_to_text(s));
}

/*
 * rb_timestamp_datum
 *		A timestamptz (or timestamp, read as UTC) datum of a Timestamp field.
 *		Nanoseconds are rounded half up to the microsecond, as PostgreSQL's
 *		own input rounds.  An unset Timestamp is NULL.
 */
Datum
rb_timestamp_datum(const Google__Protobuf__Timestamp *ts, Oid typid,
				   int32 typmod, bool *isnull, const char *field)
{
	TimestampTz result;

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
				 errmsg("invalid timestamp in field \"%s\" of a backup", field),
				 errdetail("The Managed Redis API sent seconds=" INT64_FORMAT " nanos=%d.",
						   (int64) ts->seconds, ts->nanos)));

	/* In range, so none of this overflows. */
	result = (ts->seconds - RB_PG_EPOCH_OFFSET_SECS) * USECS_PER_SEC +
		(ts->nanos + 500) / 1000;

	if (!IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range in field \"%s\" of a backup",
						field)));

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
rb_shard_names_datum(char **names, size_t n, const char *field)
{
	Datum	   *elems;
	size_t		i;

	if (n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));

	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		elems[i] = PointerGetDatum(cstring_to_text(server_string(names[i],
																 field)));
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
rb_type_datum(int type, Oid typid, int32 typmod, bool *isnull)
{
	char		buf[32];
	const char *s;

	switch (type)
	{
		case YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__BACKUP_TYPE_UNSPECIFIED:
			*isnull = true;
			return (Datum) 0;
		case YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__AUTOMATED:
			s = "AUTOMATED";
			break;
		case YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL:
			s = "MANUAL";
			break;
		default:
			snprintf(buf, sizeof(buf), "%d", type);
			s = buf;
			break;
	}
	*isnull = false;
	return rb_string_datum(s, typid, typmod, "type");
}

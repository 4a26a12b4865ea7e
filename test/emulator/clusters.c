/*-------------------------------------------------------------------------
 *
 * clusters.c
 *		  The emulator's Redis clusters: their attributes as data lines give
 *		  them, and the clusters of generated folders.
 *
 * A "cluster" line (test/data/FORMAT.md) names the cluster and its folder,
 * then any of the attributes of the table below as NAME=VALUE fields; the
 * attribute names are the API's field names.  Enum values are the API's
 * names, taken from the generated descriptors so that they are written
 * once, or decimal int32 values (sent as they are, like Backup.type).
 *
 * Generated folders (--generate, --generate-cloud) have the ten clusters
 * F-c0 .. F-c9 that their backups name.  Cluster F-ck is materialised on
 * demand:
 *
 *		name				cluster-k
 *		created_at			2025-12-01T00:00:00Z + k days
 *		environment			PRODUCTION for even k, PRESTABLE for odd k
 *		health, status		ALIVE, RUNNING
 *		labels				{"team": "team-<k % 3>"}
 *		network_id			enp-F
 *		sharded				k % 5 == 4
 *		tls_enabled			true
 *		persistence_mode	ON
 *		version				7.2
 *		backup_window_start	k:00 (hours k, the rest 0)
 *		backup_retain_period_days  7
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

#include "yandex/cloud/mdb/redis/v1/cluster.pb-c.h"

/* 2025-12-01T00:00:00Z: created_at of a generated folder's cluster F-c0 */
#define GEN_CLUSTER_EPOCH_SECONDS INT64_C(1764547200)

/* How an attribute's value is written and stored. */
typedef enum AttrKind
{
	ATTR_STRING,				/* EmuBytes, \xHH escapes */
	ATTR_TIMESTAMP,				/* EmuTimestamp: RFC 3339 or - */
	ATTR_ENUM,					/* int32_t: a name of enum_desc or a number */
	ATTR_BOOL,					/* bool: true or false */
	ATTR_STRING_LIST,			/* security_group_ids: a,b,c or - */
	ATTR_TIME_OF_DAY,			/* backup_window_start: HH:MM[:SS[.f]] or - */
	ATTR_RETAIN_DAYS			/* backup_retain_period_days: int64 or - */
} AttrKind;

typedef struct AttrInfo
{
	const char *name;
	AttrKind	kind;
	size_t		offset;			/* in EmuClusterInfo */
	const ProtobufCEnumDescriptor *enum_desc;
} AttrInfo;

#define ATTR(name, kind, member, desc) \
	{name, kind, offsetof(EmuClusterInfo, member), desc}

static const AttrInfo attributes[] = {
	ATTR("name", ATTR_STRING, name, NULL),
	ATTR("description", ATTR_STRING, description, NULL),
	ATTR("created_at", ATTR_TIMESTAMP, created_at, NULL),
	ATTR("environment", ATTR_ENUM, environment,
		 &yandex__cloud__mdb__redis__v1__cluster__environment__descriptor),
	ATTR("network_id", ATTR_STRING, network_id, NULL),
	ATTR("health", ATTR_ENUM, health,
		 &yandex__cloud__mdb__redis__v1__cluster__health__descriptor),
	ATTR("status", ATTR_ENUM, status,
		 &yandex__cloud__mdb__redis__v1__cluster__status__descriptor),
	ATTR("sharded", ATTR_BOOL, sharded, NULL),
	ATTR("security_group_ids", ATTR_STRING_LIST, security_groups, NULL),
	ATTR("tls_enabled", ATTR_BOOL, tls_enabled, NULL),
	ATTR("deletion_protection", ATTR_BOOL, deletion_protection, NULL),
	ATTR("persistence_mode", ATTR_ENUM, persistence_mode,
		 &yandex__cloud__mdb__redis__v1__cluster__persistence_mode__descriptor),
	ATTR("version", ATTR_STRING, version, NULL),
	ATTR("backup_window_start", ATTR_TIME_OF_DAY, backup_window, NULL),
	ATTR("backup_retain_period_days", ATTR_RETAIN_DAYS, retain_days, NULL),
};

#define NUM_ATTRIBUTES ((int) (sizeof(attributes) / sizeof(attributes[0])))

/*
 * emu_cluster_init
 *		A cluster with every attribute at its zero value and its name equal
 *		to its id.  The strings are borrowed.
 */
void
emu_cluster_init(EmuClusterInfo *c, EmuBytes id, EmuBytes folder_id)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->folder_id = folder_id;
	c->name = id;
	c->description = emu_bytes_str("");
	c->network_id = emu_bytes_str("");
	c->version = emu_bytes_str("");
}

/*
 * parse_enum
 *		A name of desc, or a decimal int32.
 */
static bool
parse_enum(const ProtobufCEnumDescriptor *desc, const char *s, int32_t *out)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(desc, s);
	char	   *end;
	long long	n;

	if (v != NULL)
	{
		*out = v->value;
		return true;
	}
	if ((*s < '0' || *s > '9') && *s != '-')
		return false;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < INT32_MIN || n > INT32_MAX)
		return false;
	*out = (int32_t) n;
	return true;
}

/*
 * parse_time_of_day
 *		HH:MM[:SS[.fraction]] into hours, minutes, seconds, nanos.
 */
static bool
parse_time_of_day(const char *s, int32_t *out)
{
	int			h,
				m,
				sec = 0,
				n = 0,
				frac_start = 0,
				frac_end = 0;
	int32_t		nanos = 0;

	if (sscanf(s, "%2d:%2d%n:%2d%n.%n", &h, &m, &n, &sec, &n, &frac_start) < 2)
		return false;
	if (frac_start > 0)
	{
		for (frac_end = frac_start; s[frac_end] >= '0' && s[frac_end] <= '9' &&
			 frac_end - frac_start < 9; frac_end++)
			nanos = nanos * 10 + (s[frac_end] - '0');
		if (frac_end == frac_start)
			return false;
		for (int i = frac_end - frac_start; i < 9; i++)
			nanos *= 10;
		n = frac_end;
	}
	if (s[n] != '\0' || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59)
		return false;
	out[0] = h;
	out[1] = m;
	out[2] = sec;
	out[3] = nanos;
	return true;
}

/*
 * parse_string_list
 *		"-" for none, else comma-separated strings with \xHH escapes.
 */
static const char *
parse_string_list(const char *s, EmuBytes **items, int *n)
{
	const char *p = s;
	const char *err = NULL;

	*items = NULL;
	*n = 0;
	if (strcmp(s, "-") == 0)
		return NULL;
	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);

		*items = emu_realloc(*items, (*n + 1) * sizeof(EmuBytes));
		if (!emu_data_unescape(p, len, &(*items)[*n], &err))
			return err;
		(*n)++;
		if (comma == NULL)
			return NULL;
		p = comma + 1;
	}
}

/*
 * set_value
 *		Store one attribute's value text at dest, as its kind says; NULL if
 *		fine, else what is wrong with it.
 */
static const char *
set_value(EmuClusterInfo *c, const AttrInfo *a, void *dest, const char *value)
{
	const char *err = NULL;
	char	   *end;
	long long	days;

	switch (a->kind)
	{
		case ATTR_STRING:
			return emu_data_unescape(value, strlen(value), dest, &err) ? NULL : err;
		case ATTR_TIMESTAMP:
			return emu_data_parse_timestamp(value, dest) ? NULL :
				"expected YYYY-MM-DDTHH:MM:SS[.fraction]Z or -";
		case ATTR_ENUM:
			return parse_enum(a->enum_desc, value, dest) ? NULL :
				"expected a value name of the enum or an int32";
		case ATTR_BOOL:
			if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
				return "expected true or false";
			*(bool *) dest = strcmp(value, "true") == 0;
			return NULL;
		case ATTR_STRING_LIST:
			return parse_string_list(value, &c->security_groups, &c->nsecurity_groups);
		case ATTR_TIME_OF_DAY:
			c->has_backup_window = strcmp(value, "-") != 0;
			if (c->has_backup_window && !parse_time_of_day(value, dest))
				return "expected HH:MM[:SS[.fraction]] or -";
			return NULL;
		case ATTR_RETAIN_DAYS:
			c->has_retain_days = strcmp(value, "-") != 0;
			if (!c->has_retain_days)
				return NULL;
			errno = 0;
			days = strtoll(value, &end, 10);
			if (*value == '\0' || *end != '\0' || errno != 0)
				return "expected an int64 or -";
			*(int64_t *) dest = days;
			return NULL;
	}
	return "unknown attribute kind";
}

/*
 * emu_cluster_set_attribute
 *		Apply one NAME=VALUE field of a cluster line; NULL if fine, else
 *		what is wrong (a static or long-lived string).
 */
const char *
emu_cluster_set_attribute(EmuClusterInfo *c, const char *field)
{
	const char *eq = strchr(field, '=');

	if (eq == NULL)
		return "expected NAME=VALUE";
	for (int i = 0; i < NUM_ATTRIBUTES; i++)
	{
		const AttrInfo *a = &attributes[i];

		if (strlen(a->name) == (size_t) (eq - field) &&
			strncmp(a->name, field, eq - field) == 0)
			return set_value(c, a, (char *) c + a->offset, eq + 1);
	}
	return "unknown cluster attribute (the names are Cluster's fields, see test/data/FORMAT.md)";
}

/*
 * emu_cluster_add_label
 *		Append a label; key and value are taken over.
 */
void
emu_cluster_add_label(EmuClusterInfo *c, EmuBytes key, EmuBytes value)
{
	c->labels = emu_realloc(c->labels, (c->nlabels + 1) * sizeof(EmuLabel));
	c->labels[c->nlabels].key = key;
	c->labels[c->nlabels].value = value;
	c->nlabels++;
}

/*
 * arena_printf
 *		A formatted string in arena.
 */
static EmuBytes arena_printf(EmuArena *arena, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static EmuBytes
arena_printf(EmuArena *arena, const char *fmt,...)
{
	char		buf[256];
	va_list		ap;
	int			n;
	EmuBytes	b;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int) sizeof(buf))
		n = (int) sizeof(buf) - 1;
	b.data = emu_arena_memdup(arena, buf, n);
	b.len = n;
	return b;
}

/*
 * emu_cluster_generate
 *		Cluster F-ck of generated folder F (the scheme at the top of this
 *		file), allocated in arena.
 */
void
emu_cluster_generate(EmuBytes folder_id, int k, EmuArena *arena,
					 EmuClusterInfo *out)
{
	EmuLabel   *label = emu_arena_alloc(arena, sizeof(EmuLabel));

	emu_cluster_init(out, arena_printf(arena, "%s-c%d", folder_id.data, k),
					 folder_id);
	out->name = arena_printf(arena, "cluster-%d", k);
	out->created_at.set = true;
	out->created_at.seconds = GEN_CLUSTER_EPOCH_SECONDS + (int64_t) k * 86400;
	out->environment = k % 2 == 0 ?
		YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__ENVIRONMENT__PRODUCTION :
		YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__ENVIRONMENT__PRESTABLE;
	out->health = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__HEALTH__ALIVE;
	out->status = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__STATUS__RUNNING;
	label->key = emu_bytes_str("team");
	label->value = arena_printf(arena, "team-%d", k % 3);
	out->labels = label;
	out->nlabels = 1;
	out->network_id = arena_printf(arena, "enp-%s", folder_id.data);
	out->sharded = k % 5 == 4;
	out->tls_enabled = true;
	out->version = emu_bytes_str("7.2");
	out->has_backup_window = true;
	out->backup_window[0] = k;
	out->has_retain_days = true;
	out->retain_days = 7;
}

/*
 * emu_cluster_name_valid
 *		Can this be a cluster's name by the API's rule: 3 to 63 characters,
 *		[a-z]([-a-z0-9]{0,61}[a-z0-9])?
 */
bool
emu_cluster_name_valid(const char *name)
{
	size_t		len = strlen(name);

	if (len < 3 || len > 63 || name[0] < 'a' || name[0] > 'z' ||
		name[len - 1] == '-')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			  (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return false;
	return true;
}

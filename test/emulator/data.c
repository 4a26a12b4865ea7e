/*-------------------------------------------------------------------------
 *
 * data.c
 *		  The emulator's backups and clusters: data files and generated
 *		  folders.
 *
 * Data files (format in test/data/FORMAT.md) are loaded once at start-up
 * into arrays indexed by hash tables (backups by id, folders by id,
 * clusters by id).  Each folder and cluster keeps the numbers of its
 * backups in file order.
 *
 * Generated folders (--generate FOLDER=COUNT) are never stored: backup
 * number i (0 <= i < COUNT) of folder F is computed on demand:
 *
 *		id					F-b%07d of i				(F-b0000000, F-b0000001, ...)
 *		folder_id			F
 *		source_cluster_id	F-c<i % 10>					(F-c0 .. F-c9)
 *		created_at			2026-01-01T00:00:00Z + i minutes,
 *							nanos = (i * 1000003 + 123456789) % 1000000000
 *		started_at			created_at - 5 minutes (same nanos)
 *		source_shard_names	["shard1", "shard2"] when i % 3 == 2,
 *							else ["shard1"]
 *		type				AUTOMATED when i is even, MANUAL when odd
 *
 * Clouds (for Resource Manager's FolderService.List) hold folders in the
 * order they were assigned: by "folder FOLDER CLOUD [NAME]" lines, or by
 * --generate-cloud CLOUD=N[:B], which makes folders CLOUD-f000,
 * CLOUD-f001, ... (at least three digits) in cloud CLOUD, each a generated
 * folder of B backups.  A folder's created_at is 2025-01-01T00:00:00Z plus
 * its position in the cloud in hours.
 *
 * The ten clusters F-c0 .. F-c9 of a generated folder always exist (also
 * when COUNT < 10); cluster F-ck lists backups k, k+10, k+20, ...  A
 * folder or cluster that has both data and generated backups lists the
 * data backups first, then the generated ones, in index order.
 *
 * Clusters for ClusterService.List and Get: a "cluster" line declares a live
 * cluster with its attributes (parsed by clusters.c) and "label" lines add
 * its labels; a cluster only named by backups has no attributes (info is
 * NULL) and counts as deleted.  Generated folders' clusters F-c0 .. F-c9
 * are materialised by clusters.c.
 *
 * Changes (BackupService.Delete and ClusterService.Backup, when their
 * operation finishes; operations.c): a new backup is stored like a data
 * file's, appended to its folder's and cluster's data backups; a deleted
 * data backup leaves those lists and its id goes to deleted_index; a
 * deleted generated backup's index goes to its folder's sorted gen_deleted
 * list, which the generated part of a listing skips.  Nothing else of a
 * generated folder is stored, so its memory stays small.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

/* 2026-01-01T00:00:00Z */
#define GEN_EPOCH_SECONDS INT64_C(1767225600)

/* 2025-01-01T00:00:00Z: created_at of a cloud's first folder */
#define FOLDER_EPOCH_SECONDS INT64_C(1735689600)

/* Default backups per folder of --generate-cloud. */
#define DEFAULT_CLOUD_BACKUPS 10

typedef struct EmuFolder
{
	EmuBytes	id;
	EmuIntList	backups;		/* data backups in file order */
	bool		generated;
	int64_t		gen_count;
	int			cloud;			/* index into clouds, -1: none */
	EmuBytes	name;			/* name in its cloud */
	EmuIntList	clusters;		/* declared clusters in line order */
	EmuIntList	gen_deleted;	/* deleted generated indexes, ascending */
	int64_t		next_made;		/* number of the next backup made here */
} EmuFolder;

typedef struct EmuCloud
{
	EmuBytes	id;
	EmuIntList	folders;		/* folder numbers in order */
} EmuCloud;

typedef struct EmuCluster
{
	EmuBytes	id;
	EmuBytes	folder_id;		/* first folder it was seen in */
	EmuIntList	backups;		/* data backups in file order */
	EmuClusterInfo *info;		/* NULL: only named by backups (a deleted
								 * cluster: ClusterService.Get and List do
								 * not know it, ListBackups does) */
} EmuCluster;

/* Open-addressing hash table from a byte string to an array index. */
typedef struct HashSlot
{
	EmuBytes	key;
	int			value;			/* -1: empty slot */
} HashSlot;

typedef struct HashTable
{
	HashSlot   *slots;
	size_t		cap;			/* power of two */
	size_t		n;
} HashTable;

/* Most TAB-separated fields of a data line (a cluster line's attributes). */
#define MAX_FIELDS 32

/* Where a data line came from, for error messages. */
typedef struct LineContext
{
	const char *path;
	long		lineno;
} LineContext;

static EmuBackup *backups;
static int	nbackups;
static int	backups_cap;

static EmuFolder *folders;
static int	nfolders;
static int	folders_cap;

static EmuCluster *clusters;
static int	nclusters;
static int	clusters_cap;

static EmuCloud *clouds;
static int	nclouds;
static int	clouds_cap;

static HashTable backup_index;
static HashTable deleted_index;	/* ids of deleted data backups */
static HashTable folder_index;
static HashTable cluster_index;
static HashTable cloud_index;

static const char shard1[] = "shard1";
static const char shard2[] = "shard2";
static EmuBytes gen_shards[2] = {
	{shard1, sizeof(shard1) - 1},
	{shard2, sizeof(shard2) - 1}
};

/*
 * hash_lookup
 *		Return the value stored for key, or -1.
 */
static int
hash_lookup(const HashTable *table, EmuBytes key)
{
	size_t		mask;
	size_t		i;

	if (table->cap == 0)
		return -1;
	mask = table->cap - 1;
	i = emu_hash_bytes(0, key.data, key.len) & mask;
	while (table->slots[i].value >= 0)
	{
		if (emu_bytes_equal(table->slots[i].key, key))
			return table->slots[i].value;
		i = (i + 1) & mask;
	}
	return -1;
}

/*
 * hash_insert
 *		Store key -> value; the key must not be present yet.  The key's
 *		memory must outlive the table.
 */
static void
hash_insert(HashTable *table, EmuBytes key, int value)
{
	size_t		mask;
	size_t		i;

	if ((table->n + 1) * 2 > table->cap)
	{
		HashTable	bigger;

		bigger.cap = table->cap ? table->cap * 2 : 64;
		bigger.n = 0;
		bigger.slots = emu_malloc(bigger.cap * sizeof(HashSlot));
		for (size_t k = 0; k < bigger.cap; k++)
			bigger.slots[k].value = -1;
		for (size_t k = 0; k < table->cap; k++)
			if (table->slots[k].value >= 0)
				hash_insert(&bigger, table->slots[k].key, table->slots[k].value);
		free(table->slots);
		*table = bigger;
	}
	mask = table->cap - 1;
	i = emu_hash_bytes(0, key.data, key.len) & mask;
	while (table->slots[i].value >= 0)
		i = (i + 1) & mask;
	table->slots[i].key = key;
	table->slots[i].value = value;
	table->n++;
}

/*
 * bytes_dup
 *		A long-lived copy of a byte string.
 */
static EmuBytes
bytes_dup(EmuBytes b)
{
	char	   *p = emu_malloc(b.len + 1);
	EmuBytes	r;

	if (b.len > 0)
		memcpy(p, b.data, b.len);
	p[b.len] = '\0';
	r.data = p;
	r.len = b.len;
	return r;
}

/*
 * get_folder
 *		Return the number of the folder with this id, creating it if
 *		needed.
 */
static int
get_folder(EmuBytes id)
{
	int			n = hash_lookup(&folder_index, id);

	if (n >= 0)
		return n;
	if (nfolders == folders_cap)
	{
		folders_cap = folders_cap ? folders_cap * 2 : 16;
		folders = emu_realloc(folders, folders_cap * sizeof(EmuFolder));
	}
	n = nfolders++;
	memset(&folders[n], 0, sizeof(EmuFolder));
	folders[n].id = bytes_dup(id);
	folders[n].cloud = -1;
	hash_insert(&folder_index, folders[n].id, n);
	return n;
}

/*
 * get_cloud
 *		Return the number of the cloud with this id, creating it if needed.
 */
static int
get_cloud(EmuBytes id)
{
	int			n = hash_lookup(&cloud_index, id);

	if (n >= 0)
		return n;
	if (nclouds == clouds_cap)
	{
		clouds_cap = clouds_cap ? clouds_cap * 2 : 8;
		clouds = emu_realloc(clouds, clouds_cap * sizeof(EmuCloud));
	}
	n = nclouds++;
	memset(&clouds[n], 0, sizeof(EmuCloud));
	clouds[n].id = bytes_dup(id);
	hash_insert(&cloud_index, clouds[n].id, n);
	return n;
}

/*
 * put_folder_in_cloud
 *		Make folder number f part of cloud c under name; NULL if that is
 *		fine, else why not.
 */
static const char *
put_folder_in_cloud(int f, int c, EmuBytes name)
{
	if (folders[f].cloud >= 0)
		return "folder already belongs to a cloud";
	folders[f].cloud = c;
	folders[f].name = bytes_dup(name);
	emu_intlist_append(&clouds[c].folders, f);
	return NULL;
}

/*
 * get_cluster
 *		Return the number of the cluster with this id, creating it in
 *		folder_id if needed.  *existing tells whether it existed before.
 */
static int
get_cluster(EmuBytes id, EmuBytes folder_id, bool *existing)
{
	int			n = hash_lookup(&cluster_index, id);
	int			folder;

	*existing = (n >= 0);
	if (n >= 0)
		return n;
	folder = get_folder(folder_id);		/* may move the folders array */
	if (nclusters == clusters_cap)
	{
		clusters_cap = clusters_cap ? clusters_cap * 2 : 16;
		clusters = emu_realloc(clusters, clusters_cap * sizeof(EmuCluster));
	}
	n = nclusters++;
	memset(&clusters[n], 0, sizeof(EmuCluster));
	clusters[n].id = bytes_dup(id);
	clusters[n].folder_id = folders[folder].id;
	hash_insert(&cluster_index, clusters[n].id, n);
	return n;
}

/*
 * hexval
 *		Value of a hex digit, or -1.
 */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * unescape
 *		Decode the \xHH escapes of a string field into a long-lived byte
 *		string.  Any other backslash is an error.
 */
static bool
unescape(const char *s, size_t len, EmuBytes *out, const char **err)
{
	char	   *p = emu_malloc(len + 1);
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] != '\\')
		{
			p[n++] = s[i];
			continue;
		}
		if (i + 3 < len && s[i + 1] == 'x' &&
			hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0)
		{
			p[n++] = (char) (hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
			i += 3;
			continue;
		}
		free(p);
		*err = "bad escape (only \\xHH is allowed)";
		return false;
	}
	p[n] = '\0';
	out->data = p;
	out->len = n;
	return true;
}

/*
 * days_from_civil
 *		Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 *		algorithm).
 */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * parse_digits
 *		Parse exactly n decimal digits at s.
 */
static bool
parse_digits(const char *s, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * parse_timestamp
 *		Parse "-" (unset) or YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z.
 */
static bool
parse_timestamp(const char *s, EmuTimestamp *ts)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			year,
				month,
				day,
				hour,
				minute,
				second;
	int32_t		nanos = 0;
	int			ndigits = 0;
	const char *p;
	bool		leap;

	memset(ts, 0, sizeof(*ts));
	if (strcmp(s, "-") == 0)
		return true;
	if (strlen(s) < 20 ||
		!parse_digits(s, 4, &year) || s[4] != '-' ||
		!parse_digits(s + 5, 2, &month) || s[7] != '-' ||
		!parse_digits(s + 8, 2, &day) || s[10] != 'T' ||
		!parse_digits(s + 11, 2, &hour) || s[13] != ':' ||
		!parse_digits(s + 14, 2, &minute) || s[16] != ':' ||
		!parse_digits(s + 17, 2, &second))
		return false;
	p = s + 19;
	if (*p == '.')
	{
		p++;
		while (isdigit((unsigned char) *p) && ndigits < 9)
		{
			nanos = nanos * 10 + (*p - '0');
			p++;
			ndigits++;
		}
		if (ndigits == 0)
			return false;
		for (int i = ndigits; i < 9; i++)
			nanos *= 10;
	}
	if (strcmp(p, "Z") != 0)
		return false;
	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (year < 1 || month < 1 || month > 12 || day < 1 ||
		day > mdays[month - 1] || (month == 2 && day == 29 && !leap) ||
		hour > 23 || minute > 59 || second > 59)
		return false;
	ts->set = true;
	ts->seconds = days_from_civil(year, month, day) * 86400 +
		hour * 3600 + minute * 60 + second;
	ts->nanos = nanos;
	return true;
}

/*
 * parse_type
 *		AUTOMATED, MANUAL, UNSPECIFIED or a decimal int32.
 */
static bool
parse_type(const char *s, int32_t *type)
{
	char	   *end;
	long long	v;

	if (strcmp(s, "AUTOMATED") == 0)
		*type = 1;
	else if (strcmp(s, "MANUAL") == 0)
		*type = 2;
	else if (strcmp(s, "UNSPECIFIED") == 0)
		*type = 0;
	else
	{
		if (*s == '\0' || isspace((unsigned char) *s))
			return false;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (*end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX)
			return false;
		*type = (int32_t) v;
	}
	return true;
}

/*
 * line_error
 *		Report a bad data line and exit.
 */
static void
line_error(const LineContext *ctx, const char *what)
{
	emu_fatal("%s:%ld: %s", ctx->path, ctx->lineno, what);
}

/*
 * unescape_field
 *		unescape() or die naming the field.
 */
static EmuBytes
unescape_field(const LineContext *ctx, const char *field, const char *name)
{
	EmuBytes	b;
	const char *err;

	if (!unescape(field, strlen(field), &b, &err))
	{
		char		msg[200];

		snprintf(msg, sizeof(msg), "%s: %s", name, err);
		line_error(ctx, msg);
	}
	return b;
}

/*
 * parse_shards
 *		"-" for none, else comma-separated names (each may be empty and
 *		may use \xHH escapes, so \x2c is a comma inside a name).
 */
static void
parse_shards(const LineContext *ctx, const char *field, EmuBackup *b)
{
	const char *p;
	int			n = 1;

	b->shards = NULL;
	b->nshards = 0;
	if (strcmp(field, "-") == 0)
		return;
	for (p = field; *p; p++)
		if (*p == ',')
			n++;
	b->shards = emu_malloc(n * sizeof(EmuBytes));
	p = field;
	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		const char *err;

		if (!unescape(p, len, &b->shards[b->nshards], &err))
		{
			char		msg[200];

			snprintf(msg, sizeof(msg), "SHARDS: %s", err);
			line_error(ctx, msg);
		}
		b->nshards++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/*
 * store_backup
 *		Keep b (its strings long-lived) as a data backup: listed last among
 *		its folder's and cluster's data backups.
 */
static void
store_backup(const EmuBackup *b)
{
	int			folder;
	int			cluster;
	int			n;
	bool		existing;

	if (nbackups == backups_cap)
	{
		backups_cap = backups_cap ? backups_cap * 2 : 64;
		backups = emu_realloc(backups, backups_cap * sizeof(EmuBackup));
	}
	n = nbackups++;
	backups[n] = *b;

	/* duplicates are allowed (hostile data); Get finds the first one */
	if (hash_lookup(&backup_index, b->id) < 0)
		hash_insert(&backup_index, backups[n].id, n);
	folder = get_folder(b->folder_id);
	emu_intlist_append(&folders[folder].backups, n);
	cluster = get_cluster(b->cluster_id, b->folder_id, &existing);
	emu_intlist_append(&clusters[cluster].backups, n);
}

/*
 * add_backup_line
 *		Handle the fields of a "backup" line.
 */
static void
add_backup_line(const LineContext *ctx, char **fields)
{
	EmuBackup	b;

	memset(&b, 0, sizeof(b));
	b.id = unescape_field(ctx, fields[1], "ID");
	b.folder_id = unescape_field(ctx, fields[2], "FOLDER_ID");
	b.cluster_id = unescape_field(ctx, fields[3], "SOURCE_CLUSTER_ID");
	if (!parse_timestamp(fields[4], &b.created_at))
		line_error(ctx, "CREATED_AT: expected YYYY-MM-DDTHH:MM:SS[.fraction]Z or -");
	if (!parse_timestamp(fields[5], &b.started_at))
		line_error(ctx, "STARTED_AT: expected YYYY-MM-DDTHH:MM:SS[.fraction]Z or -");
	parse_shards(ctx, fields[6], &b);
	if (!parse_type(fields[7], &b.type))
		line_error(ctx, "TYPE: expected AUTOMATED, MANUAL, UNSPECIFIED or an int32");

	store_backup(&b);
}

/*
 * handle_folder_line
 *		folder FOLDER_ID [CLOUD_ID [NAME]]: declare a folder, optionally in
 *		a cloud (NAME defaults to FOLDER_ID).
 */
static void
handle_folder_line(const LineContext *ctx, char **fields, int nfields)
{
	EmuBytes	id = unescape_field(ctx, fields[1], "FOLDER_ID");
	int			f = get_folder(id);

	if (nfields >= 3)
	{
		EmuBytes	cloud = unescape_field(ctx, fields[2], "CLOUD_ID");
		EmuBytes	name = nfields == 4 ? unescape_field(ctx, fields[3], "NAME") : id;
		const char *err;

		if (cloud.len == 0)
			line_error(ctx, "CLOUD_ID: empty");
		err = put_folder_in_cloud(f, get_cloud(cloud), name);
		if (err != NULL)
			line_error(ctx, err);
		free((void *) cloud.data);
		if (nfields == 4)
			free((void *) name.data);
	}
	free((void *) id.data);
}

/*
 * handle_cluster_line
 *		cluster CLUSTER_ID FOLDER_ID [NAME=VALUE ...]: declare a cluster
 *		(ClusterService.Get and List know it) with these attributes.
 */
static void
handle_cluster_line(const LineContext *ctx, char **fields, int nfields)
{
	EmuBytes	id = unescape_field(ctx, fields[1], "CLUSTER_ID");
	EmuBytes	folder = unescape_field(ctx, fields[2], "FOLDER_ID");
	bool		existing;
	int			n = get_cluster(id, folder, &existing);
	EmuClusterInfo *info;

	if (existing && !emu_bytes_equal(clusters[n].folder_id, folder))
		line_error(ctx, "cluster already belongs to another folder");
	if (clusters[n].info != NULL)
		line_error(ctx, "cluster declared twice");
	info = emu_malloc(sizeof(EmuClusterInfo));
	emu_cluster_init(info, clusters[n].id, clusters[n].folder_id);
	for (int i = 3; i < nfields; i++)
	{
		const char *err = emu_cluster_set_attribute(info, fields[i]);

		if (err != NULL)
		{
			char		msg[300];

			snprintf(msg, sizeof(msg), "%.60s: %s", fields[i], err);
			line_error(ctx, msg);
		}
	}
	clusters[n].info = info;
	emu_intlist_append(&folders[get_folder(folder)].clusters, n);
	free((void *) id.data);
	free((void *) folder.data);
}

/*
 * handle_label_line
 *		label CLUSTER_ID KEY VALUE: a label of a declared cluster.
 */
static void
handle_label_line(const LineContext *ctx, char **fields)
{
	EmuBytes	id = unescape_field(ctx, fields[1], "CLUSTER_ID");
	int			n = hash_lookup(&cluster_index, id);

	if (n < 0 || clusters[n].info == NULL)
		line_error(ctx, "label of a cluster not declared by an earlier cluster line");
	emu_cluster_add_label(clusters[n].info, unescape_field(ctx, fields[2], "KEY"),
						  unescape_field(ctx, fields[3], "VALUE"));
	free((void *) id.data);
}

/*
 * handle_line
 *		Parse one data line (without its line end) and add its record.
 */
static void
handle_line(const LineContext *ctx, char *line)
{
	char	   *fields[MAX_FIELDS];
	int			nfields = 0;
	char	   *p = line;
	const char *kind;
	int			expected;
	bool		blank = true;

	for (p = line; *p; p++)
		if (!isspace((unsigned char) *p))
			blank = false;
	if (blank || line[0] == '#')
		return;

	p = line;
	for (;;)
	{
		char	   *tab = strchr(p, '\t');

		if (nfields == MAX_FIELDS)
			break;
		fields[nfields++] = p;
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}

	kind = fields[0];
	if (strcmp(kind, "folder") == 0)
	{
		/* folder FOLDER_ID [CLOUD_ID [NAME]] */
		if (nfields >= 2 && nfields <= 4)
		{
			handle_folder_line(ctx, fields, nfields);
			return;
		}
		line_error(ctx, "a folder line has 2 to 4 TAB-separated fields");
	}
	if (strcmp(kind, "cluster") == 0)
	{
		/* cluster CLUSTER_ID FOLDER_ID [NAME=VALUE ...] */
		if (nfields >= 3 && nfields < MAX_FIELDS)
		{
			handle_cluster_line(ctx, fields, nfields);
			return;
		}
		line_error(ctx, "a cluster line has 3 to 31 TAB-separated fields");
	}
	if (strcmp(kind, "cloud") == 0)
		expected = 2;
	else if (strcmp(kind, "label") == 0)
		expected = 4;
	else if (strcmp(kind, "backup") == 0)
		expected = 8;
	else
	{
		char		msg[200];

		snprintf(msg, sizeof(msg),
				 "unknown record kind \"%.40s\" (expected folder, cloud, cluster, label or backup)",
				 kind);
		line_error(ctx, msg);
		return;
	}
	if (nfields != expected)
	{
		char		msg[200];

		snprintf(msg, sizeof(msg), "a %s line has %d TAB-separated fields, found %s%d",
				 kind, expected, nfields == MAX_FIELDS ? "more than " : "",
				 nfields == MAX_FIELDS ? MAX_FIELDS - 1 : nfields);
		line_error(ctx, msg);
	}

	if (expected == 2)
	{
		EmuBytes	id = unescape_field(ctx, fields[1], "CLOUD_ID");

		get_cloud(id);
		free((void *) id.data);
	}
	else if (expected == 4)
		handle_label_line(ctx, fields);
	else
		add_backup_line(ctx, fields);
}

/*
 * emu_data_load_file
 *		Load a data file; exits with EMU_EXIT_USAGE naming file:line on the
 *		first bad line.
 */
void
emu_data_load_file(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	LineContext ctx;

	if (f == NULL)
		emu_fatal("could not open data file \"%s\": %s", path, strerror(errno));
	ctx.path = path;
	ctx.lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0)
	{
		ctx.lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (memchr(line, '\0', len) != NULL)
			line_error(&ctx, "NUL byte in line (use \\x00)");
		handle_line(&ctx, line);
	}
	if (ferror(f))
		emu_fatal("could not read data file \"%s\": %s", path, strerror(errno));
	free(line);
	fclose(f);
}

/*
 * emu_data_add_generated
 *		Declare a generated folder of count backups.
 */
void
emu_data_add_generated(const char *folder, int64_t count)
{
	int			n = get_folder(emu_bytes_str(folder));

	if (folders[n].generated)
		emu_fatal("folder \"%s\" is generated twice", folder);
	folders[n].generated = true;
	folders[n].gen_count = count;
}

/*
 * emu_data_add_generated_cloud
 *		--generate-cloud CLOUD=NFOLDERS[:BACKUPS]: folders CLOUD-f000, ...
 *		in cloud CLOUD, each generated with BACKUPS backups (default 10).
 */
void
emu_data_add_generated_cloud(const char *spec)
{
	const char *eq = strrchr(spec, '=');
	char	   *cloud;
	char	   *end;
	long long	nf;
	long long	nb = DEFAULT_CLOUD_BACKUPS;
	int			c;

	if (eq == NULL || eq == spec || eq[1] < '0' || eq[1] > '9')
		emu_fatal("--generate-cloud %s: expected CLOUD=NFOLDERS[:BACKUPS_PER_FOLDER]", spec);
	errno = 0;
	nf = strtoll(eq + 1, &end, 10);
	if (errno != 0 || nf < 0 || nf > EMU_MAX_GENERATED_FOLDERS)
		emu_fatal("--generate-cloud %s: NFOLDERS must be 0..%d", spec, EMU_MAX_GENERATED_FOLDERS);
	if (*end == ':')
	{
		const char *p = end + 1;

		errno = 0;
		nb = strtoll(p, &end, 10);
		if (*p < '0' || *p > '9' || errno != 0 || nb < 0 || nb > EMU_MAX_GENERATED)
			emu_fatal("--generate-cloud %s: BACKUPS_PER_FOLDER must be 0..%d", spec, EMU_MAX_GENERATED);
	}
	if (*end != '\0')
		emu_fatal("--generate-cloud %s: expected CLOUD=NFOLDERS[:BACKUPS_PER_FOLDER]", spec);
	cloud = emu_malloc(eq - spec + 1);
	memcpy(cloud, spec, eq - spec);
	cloud[eq - spec] = '\0';
	c = get_cloud(emu_bytes_str(cloud));
	for (long long i = 0; i < nf; i++)
	{
		char		id[200];
		int			f;
		const char *err;

		snprintf(id, sizeof(id), "%.150s-f%03lld", cloud, i);
		emu_data_add_generated(id, nb);
		f = get_folder(emu_bytes_str(id));
		err = put_folder_in_cloud(f, c, emu_bytes_str(id));
		if (err != NULL)
			emu_fatal("--generate-cloud %s: %s: %s", spec, id, err);
	}
	free(cloud);
}

/*
 * emu_data_find_cloud
 *		Number of the cloud with this id, or -1.
 */
int
emu_data_find_cloud(const char *cloud_id)
{
	return hash_lookup(&cloud_index, emu_bytes_str(cloud_id));
}

/*
 * emu_data_cloud_folder_count
 *		Number of folders of cloud number c.
 */
int
emu_data_cloud_folder_count(int c)
{
	return clouds[c].folders.n;
}

/*
 * emu_data_cloud_folder
 *		Folder number pos (0-based) of cloud number c.
 */
void
emu_data_cloud_folder(int c, int pos, EmuFolderInfo *out)
{
	const EmuFolder *f = &folders[clouds[c].folders.items[pos]];

	memset(out, 0, sizeof(*out));
	out->id = f->id;
	out->cloud_id = clouds[c].id;
	out->name = f->name;
	out->created_at.set = true;
	out->created_at.seconds = FOLDER_EPOCH_SECONDS + (int64_t) pos * 3600;
}

/*
 * emu_data_generated_folder
 *		Id of folder number i if it is generated, else NULL; i runs from 0
 *		while it is below the folder count (returned in *nfolders_out).
 */
const char *
emu_data_generated_folder(int i, int *nfolders_out)
{
	*nfolders_out = nfolders;
	if (i < 0 || i >= nfolders || !folders[i].generated)
		return NULL;
	return folders[i].id.data;
}

/*
 * generate_backup
 *		Materialise generated backup number index of folder f (see the
 *		scheme at the top of this file).
 */
static void
generate_backup(const EmuFolder *f, int64_t index, EmuArena *arena,
				EmuBackup *out)
{
	size_t		size = f->id.len + 32;
	char	   *id = emu_arena_alloc(arena, size);
	char	   *cluster = emu_arena_alloc(arena, size);
	int32_t		nanos = (int32_t) ((index * 1000003 + 123456789) % 1000000000);

	memset(out, 0, sizeof(*out));
	snprintf(id, size, "%s-b%07lld", f->id.data, (long long) index);
	snprintf(cluster, size, "%s-c%d", f->id.data, (int) (index % 10));
	out->id = emu_bytes_str(id);
	out->folder_id = f->id;
	out->cluster_id = emu_bytes_str(cluster);
	out->created_at.set = true;
	out->created_at.seconds = GEN_EPOCH_SECONDS + index * 60;
	out->created_at.nanos = nanos;
	out->started_at.set = true;
	out->started_at.seconds = out->created_at.seconds - 300;
	out->started_at.nanos = nanos;
	out->shards = gen_shards;
	out->nshards = (index % 3 == 2) ? 2 : 1;
	out->type = (index % 2 == 0) ? 1 : 2;
}

/*
 * find_generated_folder
 *		The generated folder whose id is the first len bytes of s, or NULL.
 */
static const EmuFolder *
find_generated_folder(const char *s, size_t len)
{
	EmuBytes	key;
	int			n;

	key.data = s;
	key.len = len;
	n = hash_lookup(&folder_index, key);
	if (n < 0 || !folders[n].generated)
		return NULL;
	return &folders[n];
}

static int	find_data_backup(const char *id);
static bool find_generated_backup(const char *id, EmuFolder **folder,
								  int64_t *index_out);

/*
 * emu_data_find_backup
 *		Look a backup up by id: data backups first, then generated ones.
 *		Generated strings are allocated in arena.
 */
bool
emu_data_find_backup(const char *id, EmuArena *arena, EmuBackup *out)
{
	int			n = find_data_backup(id);
	EmuFolder  *f;
	int64_t		index;

	if (n >= 0)
	{
		*out = backups[n];
		return true;
	}
	if (!find_generated_backup(id, &f, &index))
		return false;
	generate_backup(f, index, arena, out);
	return true;
}

/*
 * find_data_backup
 *		Number of the (first) data backup with this id, unless deleted; or
 *		-1.
 */
static int
find_data_backup(const char *id)
{
	if (hash_lookup(&deleted_index, emu_bytes_str(id)) >= 0)
		return -1;
	return hash_lookup(&backup_index, emu_bytes_str(id));
}

/*
 * gen_deleted_find
 *		Position of index in f's sorted gen_deleted, or where it would go
 *		(*found false).
 */
static int
gen_deleted_find(const EmuFolder *f, int64_t index, bool *found)
{
	int			lo = 0;
	int			hi = f->gen_deleted.n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (f->gen_deleted.items[mid] < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < f->gen_deleted.n && f->gen_deleted.items[lo] == index;
	return lo;
}

/*
 * find_generated_backup
 *		The generated folder and index of a generated backup's id (the
 *		canonical spelling FOLDER-bNNNNNNN only), unless deleted.
 */
static bool
find_generated_backup(const char *id, EmuFolder **folder, int64_t *index_out)
{
	const char *sep;
	const EmuFolder *f;
	char	   *end;
	long long	index;
	char		canon[32];
	bool		deleted;

	/* FOLDER-bNNNNNNN */
	sep = strrchr(id, '-');
	if (sep == NULL || sep[1] != 'b' || !isdigit((unsigned char) sep[2]))
		return false;
	f = find_generated_folder(id, sep - id);
	if (f == NULL)
		return false;
	errno = 0;
	index = strtoll(sep + 2, &end, 10);
	if (*end != '\0' || errno != 0 || index < 0 || index >= f->gen_count)
		return false;
	snprintf(canon, sizeof(canon), "%07lld", index);
	if (strcmp(canon, sep + 2) != 0)
		return false;
	(void) gen_deleted_find(f, index, &deleted);
	if (deleted)
		return false;
	*folder = (EmuFolder *) f;
	*index_out = index;
	return true;
}

/*
 * intlist_remove
 *		Remove the first occurrence of value from list, keeping the order.
 */
static void
intlist_remove(EmuIntList *list, int value)
{
	for (int i = 0; i < list->n; i++)
		if (list->items[i] == value)
		{
			memmove(&list->items[i], &list->items[i + 1],
					(list->n - i - 1) * sizeof(int));
			list->n--;
			return;
		}
}

/*
 * emu_data_delete_backup
 *		Delete the backup with this id (the one Get finds): Get, List and
 *		ListBackups no longer show it.  False if there is none.  Its folder
 *		and cluster ids are copied to *folder_id and *cluster_id
 *		(malloc'ed), for the caller to forget their cached pages.
 */
bool
emu_data_delete_backup(const char *id, char **folder_id, char **cluster_id)
{
	int			n = find_data_backup(id);
	EmuFolder  *f;
	int64_t		index;
	bool		found;
	EmuArena	arena = {0};
	EmuBackup	b;

	if (n >= 0)
	{
		int			cluster = hash_lookup(&cluster_index, backups[n].cluster_id);

		intlist_remove(&folders[get_folder(backups[n].folder_id)].backups, n);
		intlist_remove(&clusters[cluster].backups, n);
		hash_insert(&deleted_index, backups[n].id, n);
		*folder_id = emu_strdup(backups[n].folder_id.data);
		*cluster_id = emu_strdup(backups[n].cluster_id.data);
		return true;
	}
	if (!find_generated_backup(id, &f, &index))
		return false;
	generate_backup(f, index, &arena, &b);
	*folder_id = emu_strdup(b.folder_id.data);
	*cluster_id = emu_strdup(b.cluster_id.data);
	emu_arena_free(&arena);
	n = gen_deleted_find(f, index, &found);
	emu_intlist_append(&f->gen_deleted, 0);
	memmove(&f->gen_deleted.items[n + 1], &f->gen_deleted.items[n],
			(f->gen_deleted.n - 1 - n) * sizeof(int));
	f->gen_deleted.items[n] = (int) index;
	return true;
}

/*
 * new_backup_id
 *		A fresh id for a backup made in folder f, of the generator's shape
 *		FOLDER-bNNNNNNN: numbers go on after the generated ones, skipping
 *		ids already taken (also by deleted backups).
 */
static char *
new_backup_id(EmuFolder *f)
{
	size_t		size = f->id.len + 32;
	char	   *id = emu_malloc(size);

	if (f->next_made < f->gen_count)
		f->next_made = f->gen_count;
	do
		snprintf(id, size, "%s-b%07lld", f->id.data, (long long) f->next_made++);
	while (hash_lookup(&backup_index, emu_bytes_str(id)) >= 0);
	return id;
}

/*
 * emu_data_make_backup
 *		Store a new MANUAL backup of the live cluster cluster_id, with these
 *		times; its shards are those of the cluster's last listed backup (or
 *		one shard, "shard1").  False if there is no such cluster.  The new
 *		backup's id and folder id are returned (long-lived).
 */
bool
emu_data_make_backup(const char *cluster_id, const EmuTimestamp *started_at,
					 const EmuTimestamp *created_at, const char **id,
					 const char **folder_id)
{
	EmuArena	arena = {0};
	EmuClusterInfo c;
	EmuListing	listing;
	EmuBackup	b;
	EmuBackup	last;
	int64_t		count;
	EmuFolder  *f;

	if (!emu_data_find_cluster(cluster_id, &arena, &c))
	{
		emu_arena_free(&arena);
		return false;
	}
	f = &folders[get_folder(c.folder_id)];
	memset(&b, 0, sizeof(b));
	b.id = emu_bytes_str(new_backup_id(f));
	b.folder_id = f->id;
	b.cluster_id = bytes_dup(emu_bytes_str(cluster_id));
	b.started_at = *started_at;
	b.created_at = *created_at;
	b.type = 2;					/* MANUAL */
	b.shards = &gen_shards[0];
	b.nshards = 1;
	if (emu_data_cluster_listing(cluster_id, &listing) &&
		(count = emu_listing_count(&listing)) > 0)
	{
		emu_listing_get(&listing, count - 1, &arena, &last);
		b.nshards = last.nshards;
		b.shards = emu_malloc((last.nshards + 1) * sizeof(EmuBytes));
		for (int i = 0; i < last.nshards; i++)
			b.shards[i] = bytes_dup(last.shards[i]);
	}
	emu_arena_free(&arena);
	store_backup(&b);
	*id = b.id.data;
	*folder_id = b.folder_id.data;
	return true;
}

/*
 * emu_data_folder_listing
 *		The backups of a folder.  An unknown folder gives an empty listing.
 */
void
emu_data_folder_listing(const char *folder_id, EmuListing *out)
{
	int			n = hash_lookup(&folder_index, emu_bytes_str(folder_id));

	memset(out, 0, sizeof(*out));
	out->gen_residue = -1;
	out->owner_folder = emu_bytes_str(folder_id);
	if (n < 0)
		return;
	out->data = &folders[n].backups;
	if (folders[n].generated)
		out->gen_folder = &folders[n];
}

/*
 * emu_data_cluster_listing
 *		The backups of a cluster; false if the cluster does not exist.
 */
bool
emu_data_cluster_listing(const char *cluster_id, EmuListing *out)
{
	int			n = hash_lookup(&cluster_index, emu_bytes_str(cluster_id));
	size_t		len = strlen(cluster_id);
	const EmuFolder *f = NULL;

	memset(out, 0, sizeof(*out));
	out->gen_residue = -1;

	/* FOLDER-cK with K a single digit */
	if (len >= 3 && cluster_id[len - 3] == '-' && cluster_id[len - 2] == 'c' &&
		isdigit((unsigned char) cluster_id[len - 1]))
		f = find_generated_folder(cluster_id, len - 3);

	if (n < 0 && f == NULL)
		return false;
	if (n >= 0)
	{
		out->data = &clusters[n].backups;
		out->owner_folder = clusters[n].folder_id;
	}
	if (f != NULL)
	{
		out->gen_folder = f;
		out->gen_residue = cluster_id[len - 1] - '0';
		if (n < 0)
			out->owner_folder = f->id;
	}
	return true;
}

/*
 * emu_data_find_cluster
 *		Look a cluster up by id for ClusterService.Get: a declared one, else
 *		a generated folder's F-ck.  Generated strings are allocated in arena.
 */
bool
emu_data_find_cluster(const char *id, EmuArena *arena, EmuClusterInfo *out)
{
	int			n = hash_lookup(&cluster_index, emu_bytes_str(id));
	size_t		len = strlen(id);
	const EmuFolder *f;

	if (n >= 0 && clusters[n].info != NULL)
	{
		*out = *clusters[n].info;
		return true;
	}
	/* FOLDER-cK with K a single digit */
	if (len < 3 || id[len - 3] != '-' || id[len - 2] != 'c' ||
		!isdigit((unsigned char) id[len - 1]))
		return false;
	f = find_generated_folder(id, len - 3);
	if (f == NULL)
		return false;
	emu_cluster_generate(f->id, id[len - 1] - '0', arena, out);
	return true;
}

/*
 * emu_data_folder_clusters
 *		The clusters of a folder for ClusterService.List: the declared ones
 *		in line order, then a generated folder's ten.  *out is allocated in
 *		arena; returns how many there are (0 for an unknown folder).
 */
int
emu_data_folder_clusters(const char *folder_id, EmuArena *arena,
						 EmuClusterInfo **out)
{
	int			n = hash_lookup(&folder_index, emu_bytes_str(folder_id));
	const EmuFolder *f;
	int			count = 0;

	*out = NULL;
	if (n < 0)
		return 0;
	f = &folders[n];
	*out = emu_arena_alloc(arena, (f->clusters.n + 10) * sizeof(EmuClusterInfo));
	for (int i = 0; i < f->clusters.n; i++)
		(*out)[count++] = *clusters[f->clusters.items[i]].info;
	if (f->generated)
		for (int k = 0; k < 10; k++)
			emu_cluster_generate(f->id, k, arena, &(*out)[count++]);
	return count;
}

/*
 * emu_data_unescape
 *		unescape() for clusters.c: decode \xHH escapes into a long-lived
 *		byte string.
 */
bool
emu_data_unescape(const char *s, size_t len, EmuBytes *out, const char **err)
{
	return unescape(s, len, out, err);
}

/*
 * emu_data_parse_timestamp
 *		parse_timestamp() for clusters.c.
 */
bool
emu_data_parse_timestamp(const char *s, EmuTimestamp *ts)
{
	return parse_timestamp(s, ts);
}

/*
 * gen_part_count
 *		Number of generated backups in a listing.
 */
static int64_t
gen_part_count(const EmuListing *listing)
{
	const EmuFolder *f = listing->gen_folder;
	int64_t		count;
	int			r = listing->gen_residue;

	if (f == NULL)
		return 0;
	count = f->gen_count;
	if (r < 0)
		return count - f->gen_deleted.n;
	count = count > r ? (count - r + 9) / 10 : 0;
	for (int i = 0; i < f->gen_deleted.n; i++)
		if (f->gen_deleted.items[i] % 10 == r)
			count--;
	return count;
}

/*
 * gen_part_index
 *		Generated index of the k-th backup (0-based) of the generated part
 *		of a listing: k steps along the folder's indexes (or its residue's),
 *		one more step for each deleted index passed on the way.
 */
static int64_t
gen_part_index(const EmuListing *listing, int64_t k)
{
	const EmuFolder *f = listing->gen_folder;
	int			r = listing->gen_residue;
	int64_t		step = r < 0 ? 1 : 10;
	int64_t		index = (r < 0 ? 0 : r) + step * k;

	for (int i = 0; i < f->gen_deleted.n; i++)
	{
		int64_t		d = f->gen_deleted.items[i];

		if (r >= 0 && d % 10 != r)
			continue;
		if (d > index)
			break;
		index += step;
	}
	return index;
}

/*
 * emu_listing_count
 *		Number of backups in a listing.
 */
int64_t
emu_listing_count(const EmuListing *listing)
{
	return (listing->data ? listing->data->n : 0) + gen_part_count(listing);
}

/*
 * emu_listing_get
 *		Backup number pos (0-based) of a listing.
 */
void
emu_listing_get(const EmuListing *listing, int64_t pos, EmuArena *arena,
				EmuBackup *out)
{
	int64_t		ndata = listing->data ? listing->data->n : 0;
	int64_t		k;

	if (pos < ndata)
	{
		*out = backups[listing->data->items[pos]];
		return;
	}
	k = gen_part_index(listing, pos - ndata);
	generate_backup(listing->gen_folder, k, arena, out);
}

/*
 * emu_data_summary
 *		Counts for the start-up message.
 */
void
emu_data_summary(int64_t *nbackups_out, int *nfolders_out, int *nclusters_out,
				 int *ngenerated_out, int *nclouds_out)
{
	*nclouds_out = nclouds;
	int64_t		total = nbackups;
	int			ngen = 0;

	for (int i = 0; i < nfolders; i++)
		if (folders[i].generated)
		{
			total += folders[i].gen_count;
			ngen++;
		}
	*nbackups_out = total;
	*nfolders_out = nfolders;
	*nclusters_out = nclusters;
	*ngenerated_out = ngen;
}

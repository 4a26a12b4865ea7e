/*-------------------------------------------------------------------------
 *
 * harness.c
 *		  The client tests' harness (result lines, failures) and the helpers
 *		  declared in client_test.h.
 *
 * test/client/harness.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------
 * Test harness
 * ----------------------------------------------------------------------
 */
static int	ntests = 0;
static int	npassed = 0;
static int	nfailed = 0;
bool		cur_failed;
static char cur_reason[1024];

/* configuration from the environment, set by main */
const char *plain_target;
char		tls_name_target[64];
char		tls_ip_target[64];
char	   *ca_pem;
char	   *other_ca_pem;
const char *log_file;
const char *emulator_program;
const char *data_file;
int			slow = 1;

/*
 * fail_at
 *		Record the first failure of the current test, with the file name
 *		and line of the check.
 */
void
fail_at(const char *file, int line, const char *fmt,...)
{
	va_list		ap;
	const char *base = strrchr(file, '/');
	int			n;

	if (cur_failed)
		return;
	cur_failed = true;
	n = snprintf(cur_reason, sizeof(cur_reason), "%s:%d: ",
				 base ? base + 1 : file, line);
	if (n < 0 || (size_t) n >= sizeof(cur_reason))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(cur_reason + n, sizeof(cur_reason) - n, fmt, ap);
	va_end(ap);
}

/*
 * run_test
 *		Run one test function and print its result line.  With
 *		RB_TEST_ONLY=text in the environment, only the tests whose name
 *		holds text run (the others are not counted).
 */
void
run_test(const char *name, void (*fn) (void))
{
	const char *only = getenv("RB_TEST_ONLY");

	/* a debugging aid: RB_TEST_ONLY=text runs only tests naming text */
	if (only != NULL && only[0] != '\0' && strstr(name, only) == NULL)
		return;
	cur_failed = false;
	cur_reason[0] = '\0';
	fn();
	ntests++;
	if (cur_failed)
	{
		nfailed++;
		printf("not ok %d - %s: %s\n", ntests, name, cur_reason);
	}
	else
	{
		npassed++;
		printf("ok %d - %s\n", ntests, name);
	}
	fflush(stdout);
}

/*
 * report_results
 *		Print "P passed, F failed"; returns the program's exit status.
 */
int
report_results(void)
{
	printf("%d passed, %d failed\n", npassed, nfailed);
	fflush(stdout);
	return nfailed > 0 ? 1 : 0;
}

/* ----------------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------------
 */

/*
 * now_ms
 *		Monotonic clock in milliseconds.
 */
int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait up to timeout_ms for child pid; kill it and return false if it is
 * still running then.
 */
bool
wait_child(pid_t pid, int64_t timeout_ms, int *wstatus)
{
	int64_t		start = now_ms();

	while (waitpid(pid, wstatus, WNOHANG) == 0)
	{
		if (now_ms() - start > timeout_ms)
		{
			kill(pid, SIGKILL);
			waitpid(pid, wstatus, 0);
			return false;
		}
		usleep(10000);
	}
	return true;
}

/*
 * child_succeeded
 *		Wait up to timeout_ms for a child the test forked; true when it
 *		exited with status 0.  Otherwise the failure is recorded: the child
 *		hung (and was killed), died of a signal, or exited with another
 *		code, which codes explains.
 */
bool
child_succeeded(pid_t pid, int64_t timeout_ms, const char *codes)
{
	int			wstatus = 0;

	if (!wait_child(pid, timeout_ms, &wstatus))
		FAIL("child hung");
	else if (!WIFEXITED(wstatus))
		FAIL("child died with signal %d",
			 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
	else if (WEXITSTATUS(wstatus) != 0)
		FAIL("child failed with code %d (%s)", WEXITSTATUS(wstatus), codes);
	else
		return true;
	return false;
}

/*
 * read_file
 *		Whole file as a malloc'ed string, or NULL.
 */
char *
read_file(const char *path)
{
	FILE	   *f;
	char	   *buf = NULL;
	size_t		len = 0;
	size_t		cap = 0;
	size_t		n;

	if (path == NULL || (f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;)
	{
		if (cap - len < 4096)
		{
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			if (buf == NULL)
			{
				fclose(f);
				return NULL;
			}
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/*
 * cmp_str
 *		qsort comparator of char * elements.
 */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * sort_find_duplicate
 *		Sort n strings; the first that occurs twice, or NULL when they are
 *		all different.
 */
const char *
sort_find_duplicate(char **ids, size_t n)
{
	qsort(ids, n, sizeof(char *), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			return ids[i];
	return NULL;
}

/*
 * free_strings
 *		Free n malloc'ed strings and the array that holds them.
 */
void
free_strings(char **strings, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

/*
 * count_threads
 *		Number of threads of this process.
 */
int
count_threads(void)
{
	DIR		   *dir = opendir("/proc/self/task");
	struct dirent *de;
	int			n = 0;

	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
	{
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	return n;
}

/*
 * open_plain
 *		Channel to the plaintext emulator.
 */
RbChannel *
open_plain(int max_receive_bytes, RbStatus *st)
{
	RbChannelOptions opts;

	memset(&opts, 0, sizeof(opts));
	opts.target = plain_target;
	opts.plaintext = true;
	opts.max_receive_bytes = max_receive_bytes;
	return rb_channel_open(&opts, st);
}

/*
 * open_plain_to
 *		Plaintext channel to target, default options.
 */
RbChannel *
open_plain_to(const char *target, RbStatus *st)
{
	RbChannelOptions opts;

	memset(&opts, 0, sizeof(opts));
	opts.target = target;
	opts.plaintext = true;
	return rb_channel_open(&opts, st);
}

/*
 * open_tls
 *		Channel over TLS to target, trusting ca (NULL: system roots).
 */
RbChannel *
open_tls(const char *target, const char *ca, RbStatus *st)
{
	RbChannelOptions opts;

	memset(&opts, 0, sizeof(opts));
	opts.target = target;
	opts.plaintext = false;
	opts.ca_pem = ca;
	return rb_channel_open(&opts, st);
}

/* Request builders.  The structs live in the caller's frame. */
void
make_get(GetBackupRequest *req, const char *id)
{
	yandex__cloud__mdb__redis__v1__get_backup_request__init(req);
	req->backup_id = (char *) id;
}

void
make_list(ListBackupsRequest *req, const char *folder, int64_t page_size,
		  const char *page_token)
{
	yandex__cloud__mdb__redis__v1__list_backups_request__init(req);
	req->folder_id = (char *) folder;
	req->page_size = page_size;
	if (page_token)
		req->page_token = (char *) page_token;
}

void
make_cluster_list(ListClusterBackupsRequest *req, const char *cluster,
				  int64_t page_size, const char *page_token)
{
	yandex__cloud__mdb__redis__v1__list_cluster_backups_request__init(req);
	req->cluster_id = (char *) cluster;
	req->page_size = page_size;
	if (page_token)
		req->page_token = (char *) page_token;
}

/* One-shot calls with the default allocator. */
Backup *
do_get(RbChannel *ch, const char *token, const char *id, RbStatus *st)
{
	GetBackupRequest req;

	make_get(&req, id);
	return (Backup *) rb_call_unary(ch, RB_METHOD_BACKUP_GET, &req.base,
									token, NULL, CALL_TIMEOUT_MS, NULL, NULL, NULL,
									st, NULL);
}

ListBackupsResponse *
do_list(RbChannel *ch, const char *token, const char *folder,
		int64_t page_size, const char *page_token, RbStatus *st,
		size_t *bytes)
{
	ListBackupsRequest req;

	make_list(&req, folder, page_size, page_token);
	return (ListBackupsResponse *) rb_call_unary(ch, RB_METHOD_BACKUP_LIST,
												 &req.base, token, NULL,
												 CALL_TIMEOUT_MS, NULL, NULL,
												 NULL, st, bytes);
}

ListClusterBackupsResponse *
do_cluster_list(RbChannel *ch, const char *token, const char *cluster,
				int64_t page_size, const char *page_token, RbStatus *st)
{
	ListClusterBackupsRequest req;

	make_cluster_list(&req, cluster, page_size, page_token);
	return (ListClusterBackupsResponse *)
		rb_call_unary(ch, RB_METHOD_CLUSTER_LIST_BACKUPS, &req.base, token, NULL,
					  CALL_TIMEOUT_MS, NULL, NULL, NULL, st, NULL);
}

/*
 * free_msg
 *		Free a reply decoded with the default allocator (NULL is fine).
 */
void
free_msg(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked((ProtobufCMessage *) msg, NULL);
}

/*
 * ts_mismatch
 *		NULL when timestamp ts is (seconds, nanos), or set == false and ts is
 *		absent; else a description.
 */
const char *
ts_mismatch(const Google__Protobuf__Timestamp *ts, bool set,
			int64_t seconds, int32_t nanos)
{
	static char buf[128];

	if (!set)
	{
		if (ts == NULL)
			return NULL;
		snprintf(buf, sizeof(buf), "expected no timestamp, got %" PRId64 ".%09d",
				 ts->seconds, ts->nanos);
		return buf;
	}
	if (ts == NULL)
		return "timestamp missing";
	if (ts->seconds != seconds || ts->nanos != nanos)
	{
		snprintf(buf, sizeof(buf), "expected %" PRId64 ".%09d, got %" PRId64 ".%09d",
				 seconds, nanos, ts->seconds, ts->nanos);
		return buf;
	}
	return NULL;
}

/*
 * backup_mismatch
 *		NULL when b has exactly the given field values; else a description.
 *		shards is a comma-separated list ("" for none).  A timestamp with
 *		seconds == -1 is expected to be absent.
 */
const char *
backup_mismatch(const Backup *b, const char *id, const char *folder,
				const char *cluster,
				int64_t cs, int32_t cn, int64_t ss, int32_t sn,
				const char *shards, int type)
{
	static char buf[512];
	const char *m;
	char		joined[256];
	size_t		i;

	if (b == NULL)
		return "backup missing";
	if (strcmp(b->id, id) != 0)
	{
		snprintf(buf, sizeof(buf), "id \"%s\", expected \"%s\"", b->id, id);
		return buf;
	}
	if (strcmp(b->folder_id, folder) != 0)
	{
		snprintf(buf, sizeof(buf), "%s: folder_id \"%s\", expected \"%s\"",
				 id, b->folder_id, folder);
		return buf;
	}
	if (strcmp(b->source_cluster_id, cluster) != 0)
	{
		snprintf(buf, sizeof(buf), "%s: source_cluster_id \"%s\", expected \"%s\"",
				 id, b->source_cluster_id, cluster);
		return buf;
	}
	if ((m = ts_mismatch(b->created_at, cs >= 0, cs, cn)) != NULL)
	{
		snprintf(buf, sizeof(buf), "%s: created_at: %s", id, m);
		return buf;
	}
	if ((m = ts_mismatch(b->started_at, ss >= 0, ss, sn)) != NULL)
	{
		snprintf(buf, sizeof(buf), "%s: started_at: %s", id, m);
		return buf;
	}
	joined[0] = '\0';
	for (i = 0; i < b->n_source_shard_names; i++)
	{
		if (i > 0)
			strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
		strncat(joined, b->source_shard_names[i],
				sizeof(joined) - strlen(joined) - 1);
	}
	if (strcmp(joined, shards) != 0)
	{
		snprintf(buf, sizeof(buf), "%s: shards \"%s\", expected \"%s\"",
				 id, joined, shards);
		return buf;
	}
	if ((int) b->type != type)
	{
		snprintf(buf, sizeof(buf), "%s: type %d, expected %d", id,
				 (int) b->type, type);
		return buf;
	}
	return NULL;
}

/* The exact values of client_test.tsv's folder-a and folder-b backups. */
const char *
check_b_a1(const Backup *b)
{
	return backup_mismatch(b, "b-a1", "folder-a", "c-a1",
						   1795748405, 123456789, 1795748340, 0,
						   "shard1,shard2,shard3",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__AUTOMATED);
}

const char *
check_b_a2(const Backup *b)
{
	return backup_mismatch(b, "b-a2", "folder-a", "c-a1",
						   1795835400, 500000000, 1795834800, 0, "",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL);
}

const char *
check_b_a3(const Backup *b)
{
	return backup_mismatch(b, "b-a3", "folder-a", "c-a2",
						   -1, 0, -1, 0, "rs01",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__BACKUP_TYPE_UNSPECIFIED);
}

const char *
check_b_a4(const Backup *b)
{
	return backup_mismatch(b, "b-a4", "folder-a", "c-a2",
						   1735776000, 0, 1735772400, 1000, "s", 7);
}

const char *
check_b_b1(const Backup *b)
{
	return backup_mismatch(b, "b-b1", "folder-b", "c-b1",
						   1907757045, 0, 1907755200, 0, "shard1",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL);
}

/*
 * check_folder_a
 *		NULL when backups[] are exactly folder-a's four backups in file order.
 */
const char *
check_folder_a(Backup **backups, size_t n)
{
	static char buf[64];
	const char *m;

	if (n != 4)
	{
		snprintf(buf, sizeof(buf), "%zu backups, expected 4", n);
		return buf;
	}
	if ((m = check_b_a1(backups[0])) || (m = check_b_a2(backups[1])) ||
		(m = check_b_a3(backups[2])) || (m = check_b_a4(backups[3])))
		return m;
	return NULL;
}

/*
 * is_uuid_v4
 *		Is s a lower-case random uuid?
 */
bool
is_uuid_v4(const char *s)
{
	int			i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/*
 * log_line
 *		The emulator's log line of the call we sent with client_request_id,
 *		malloc'ed, or NULL.  Waits a little for the line to be written.
 */
char *
log_line(const char *client_request_id)
{
	char		needle[128];
	int			attempt;

	snprintf(needle, sizeof(needle), "\"client_request_id\":\"%s\"",
			 client_request_id);
	for (attempt = 0; attempt < 40; attempt++)
	{
		char	   *text = read_file(log_file);
		char	   *hit;

		if (text && (hit = strstr(text, needle)) != NULL)
		{
			char	   *start = hit;
			char	   *end = strchr(hit, '\n');
			char	   *line;

			while (start > text && start[-1] != '\n')
				start--;
			if (end == NULL)
				end = hit + strlen(hit);
			line = strndup(start, end - start);
			free(text);
			return line;
		}
		free(text);
		usleep(50000);
	}
	return NULL;
}

/*
 * log_has
 *		Does the JSON log line have "key":value (value as raw JSON text)?
 */
bool
log_has(const char *line, const char *key, const char *raw_value)
{
	char		needle[256];

	snprintf(needle, sizeof(needle), "\"%s\":%s", key, raw_value);
	if (strstr(line, needle) != NULL)
		return true;
	snprintf(needle, sizeof(needle), "\"%s\": %s", key, raw_value);
	return strstr(line, needle) != NULL;
}

/*
 * check_logged
 *		The emulator's log line of the call whose status is st must hold
 *		key with this raw JSON value.  False, with the failure recorded,
 *		when there is no such line or it does not.
 */
bool
check_logged(const RbStatus *st, const char *key, const char *raw_value)
{
	char	   *line = log_line(st->client_request_id);
	bool		ok;

	if (line == NULL)
	{
		FAIL("no log line");
		return false;
	}
	ok = log_has(line, key, raw_value);
	if (!ok)
		FAIL("log line without %s %s: %s", key, raw_value, line);
	free(line);
	return ok;
}

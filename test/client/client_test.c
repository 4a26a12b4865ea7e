/*-------------------------------------------------------------------------
 *
 * client_test.c
 *		  Tests of the plain-C gRPC client library (src/client/rb_client.c)
 *		  against the API emulator.
 *
 * Run through test/client/run.sh, which starts the emulators and passes
 * their addresses in the environment:
 *
 *	RB_TEST_PLAIN_TARGET	host:port of the plaintext emulator (test data
 *							from client_test.tsv, folder "gen" of 2500
 *							generated backups, tokens, faults, call log)
 *	RB_TEST_TLS_PORT		port of the TLS emulator (cert for "localhost")
 *	RB_TEST_CA_FILE			CA that signed the TLS emulator's certificate
 *	RB_TEST_OTHER_CA_FILE	an unrelated CA
 *	RB_TEST_LOG_FILE		the plaintext emulator's JSON call log
 *	RB_TEST_SLOW			non-empty: relax time limits and skip the
 *							/proc signal-mask check (valgrind)
 *
 * Prints one line per test, "ok N - name" or "not ok N - name: reason",
 * then "P passed, F failed"; exits 1 when any test failed.
 *
 * test/client/client_test.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rb_client.h"

typedef Yandex__Cloud__Mdb__Redis__V1__Backup Backup;
typedef Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest GetBackupRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest ListBackupsRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse ListBackupsResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest ListClusterBackupsRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse ListClusterBackupsResponse;

#define TOKEN_ALL "tok-all"			/* granted every folder */
#define TOKEN_A "tok-a"				/* granted folder-a only */
#define CALL_TIMEOUT_MS 10000

/* ----------------------------------------------------------------------
 * Test harness
 * ----------------------------------------------------------------------
 */
static int	ntests = 0;
static int	npassed = 0;
static int	nfailed = 0;
static bool cur_failed;
static char cur_reason[1024];

/* configuration from the environment */
static const char *plain_target;
static char tls_name_target[64];
static char tls_ip_target[64];
static char *ca_pem;
static char *other_ca_pem;
static const char *log_file;
static int	slow = 1;			/* time limit multiplier */

/*
 * fail_at
 *		Record the first failure of the current test.
 */
static void
fail_at(int line, const char *fmt,...)
__attribute__((format(printf, 2, 3)));

static void
fail_at(int line, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (cur_failed)
		return;
	cur_failed = true;
	n = snprintf(cur_reason, sizeof(cur_reason), "line %d: ", line);
	va_start(ap, fmt);
	vsnprintf(cur_reason + n, sizeof(cur_reason) - n, fmt, ap);
	va_end(ap);
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fail_at(__LINE__, __VA_ARGS__); \
			return; \
		} \
	} while (0)

#define CHECK_CODE(st, want) \
	CHECK((st).code == (want), "expected %s, got %s (%s)", \
		  rb_code_name(want), rb_code_name((st).code), (st).message)

/* Get a backup with the all-folders token and check it with checker. */
#define CHECK_GET(ch, id, checker) \
	do { \
		Backup	   *b_ = do_get((ch), TOKEN_ALL, (id), &st); \
		const char *m_; \
		CHECK_CODE(st, RB_OK); \
		m_ = checker(b_); \
		free_msg(b_); \
		CHECK(m_ == NULL, "%s", m_); \
	} while (0)

/*
 * run_test
 *		Run one test function and print its result line.
 */
static void
run_test(const char *name, void (*fn) (void))
{
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

/* ----------------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------------
 */

/*
 * now_ms
 *		Monotonic clock in milliseconds.
 */
static int64_t
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
static bool
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
 * read_file
 *		Whole file as a malloc'ed string, or NULL.
 */
static char *
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
 * count_threads
 *		Number of threads of this process.
 */
static int
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
static RbChannel *
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
 * open_tls
 *		Channel over TLS to target, trusting ca (NULL: system roots).
 */
static RbChannel *
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
static void
make_get(GetBackupRequest *req, const char *id)
{
	yandex__cloud__mdb__redis__v1__get_backup_request__init(req);
	req->backup_id = (char *) id;
}

static void
make_list(ListBackupsRequest *req, const char *folder, int64_t page_size,
		  const char *page_token)
{
	yandex__cloud__mdb__redis__v1__list_backups_request__init(req);
	req->folder_id = (char *) folder;
	req->page_size = page_size;
	if (page_token)
		req->page_token = (char *) page_token;
}

static void
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
static Backup *
do_get(RbChannel *ch, const char *token, const char *id, RbStatus *st)
{
	GetBackupRequest req;

	make_get(&req, id);
	return (Backup *) rb_call_unary(ch, RB_METHOD_BACKUP_GET, &req.base,
									token, CALL_TIMEOUT_MS, NULL, NULL, NULL,
									st, NULL);
}

static ListBackupsResponse *
do_list(RbChannel *ch, const char *token, const char *folder,
		int64_t page_size, const char *page_token, RbStatus *st,
		size_t *bytes)
{
	ListBackupsRequest req;

	make_list(&req, folder, page_size, page_token);
	return (ListBackupsResponse *) rb_call_unary(ch, RB_METHOD_BACKUP_LIST,
												 &req.base, token,
												 CALL_TIMEOUT_MS, NULL, NULL,
												 NULL, st, bytes);
}

static ListClusterBackupsResponse *
do_cluster_list(RbChannel *ch, const char *token, const char *cluster,
				int64_t page_size, const char *page_token, RbStatus *st)
{
	ListClusterBackupsRequest req;

	make_cluster_list(&req, cluster, page_size, page_token);
	return (ListClusterBackupsResponse *)
		rb_call_unary(ch, RB_METHOD_CLUSTER_LIST_BACKUPS, &req.base, token,
					  CALL_TIMEOUT_MS, NULL, NULL, NULL, st, NULL);
}

static void
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
static const char *
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
static const char *
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
static const char *
check_b_a1(const Backup *b)
{
	return backup_mismatch(b, "b-a1", "folder-a", "c-a1",
						   1795748405, 123456789, 1795748340, 0,
						   "shard1,shard2,shard3",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__AUTOMATED);
}

static const char *
check_b_a2(const Backup *b)
{
	return backup_mismatch(b, "b-a2", "folder-a", "c-a1",
						   1795835400, 500000000, 1795834800, 0, "",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL);
}

static const char *
check_b_a3(const Backup *b)
{
	return backup_mismatch(b, "b-a3", "folder-a", "c-a2",
						   -1, 0, -1, 0, "rs01",
						   YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__BACKUP_TYPE_UNSPECIFIED);
}

static const char *
check_b_a4(const Backup *b)
{
	return backup_mismatch(b, "b-a4", "folder-a", "c-a2",
						   1735776000, 0, 1735772400, 1000, "s", 7);
}

static const char *
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
static const char *
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
static bool
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
static char *
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
static bool
log_has(const char *line, const char *key, const char *raw_value)
{
	char		needle[256];

	snprintf(needle, sizeof(needle), "\"%s\":%s", key, raw_value);
	if (strstr(line, needle) != NULL)
		return true;
	snprintf(needle, sizeof(needle), "\"%s\": %s", key, raw_value);
	return strstr(line, needle) != NULL;
}

/* ----------------------------------------------------------------------
 * Tests that must run before gRPC is initialised in this process
 * ----------------------------------------------------------------------
 */

/*
 * Nothing has started gRPC yet: one thread only.  Bad options are refused
 * before gRPC is initialised.
 */
static void
test_bad_options(void)
{
	static const char *const bad_targets[] = {
		"", "localhost", "localhost:", ":443", "localhost:0",
		"localhost:65536", "localhost:12a", "local host:443", "host:-1"
	};
	RbChannelOptions opts;
	RbStatus	st;
	RbChannel  *ch;
	size_t		i;

	CHECK(count_threads() == 1, "%d threads before any gRPC use",
		  count_threads());

	ch = rb_channel_open(NULL, &st);
	CHECK(ch == NULL, "NULL options accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);

	memset(&opts, 0, sizeof(opts));
	opts.plaintext = true;
	ch = rb_channel_open(&opts, &st);
	CHECK(ch == NULL, "NULL target accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	CHECK(st.message[0] != '\0', "no message");

	for (i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++)
	{
		opts.target = bad_targets[i];
		ch = rb_channel_open(&opts, &st);
		CHECK(ch == NULL, "target \"%s\" accepted", bad_targets[i]);
		CHECK(st.code == RB_LOCAL_BAD_OPTION, "target \"%s\": %s",
			  bad_targets[i], rb_code_name(st.code));
	}

	opts.target = "localhost:443";
	opts.max_receive_bytes = -1;
	ch = rb_channel_open(&opts, &st);
	CHECK(ch == NULL && st.code == RB_LOCAL_BAD_OPTION,
		  "negative max_receive_bytes: %s", rb_code_name(st.code));
	opts.max_receive_bytes = 0;
	opts.keepalive_ms = -5;
	ch = rb_channel_open(&opts, &st);
	CHECK(ch == NULL && st.code == RB_LOCAL_BAD_OPTION,
		  "negative keepalive_ms: %s", rb_code_name(st.code));
	opts.keepalive_ms = 0;
	opts.plaintext = false;
	opts.ca_pem = "this is not a certificate";
	ch = rb_channel_open(&opts, &st);
	CHECK(ch == NULL && st.code == RB_LOCAL_BAD_OPTION,
		  "bad CA text: %s", rb_code_name(st.code));

	CHECK(count_threads() == 1,
		  "%d threads after refused opens: gRPC initialised too early",
		  count_threads());
}

/*
 * A process with no gRPC state forks; the child opens a channel and
 * completes a call.
 */
static void
test_fork_before_init(void)
{
	pid_t		pid;
	int			wstatus = 0;

	CHECK(count_threads() == 1, "%d threads before fork", count_threads());
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
	{
		RbStatus	st;
		RbChannel  *ch;
		Backup	   *b;
		int			rc;

		alarm(20);				/* watchdog */
		ch = open_plain(0, &st);
		if (ch == NULL)
			_exit(10);
		b = do_get(ch, TOKEN_ALL, "b-a1", &st);
		rc = (b == NULL) ? 11 : (check_b_a1(b) != NULL) ? 12 : 0;
		free_msg(b);
		rb_channel_close(ch);
		_exit(rc);
	}
	CHECK(wait_child(pid, 15000, &wstatus), "child hung");
	CHECK(WIFEXITED(wstatus), "child died with signal %d",
		  WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
	CHECK(WEXITSTATUS(wstatus) == 0, "child failed with code %d (10 open, 11 call, 12 values)",
		  WEXITSTATUS(wstatus));
	CHECK(count_threads() == 1, "parent has %d threads after fork test",
		  count_threads());
}

/*
 * gRPC's own log, switched on with http tracing (GRPC_TRACE is read at
 * grpc_init, so in a child that has not initialised gRPC yet), never shows
 * the token, though it prints the headers of the call.
 */
static void
test_grpc_log_hides_token(void)
{
	char		path[] = "/tmp/rb_grpc_log.XXXXXX";
	int			fd = mkstemp(path);
	pid_t		pid;
	int			wstatus = 0;
	FILE	   *f;
	char		line[4096];
	int			lines = 0;
	bool		leaked = false;

	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
	{
		RbStatus	st;
		RbChannel  *ch;
		Backup	   *b;

		alarm(20);				/* watchdog */
		dup2(fd, 2);
		setenv("GRPC_TRACE", "http", 1);
		setenv("GRPC_VERBOSITY", "DEBUG", 1);
		setenv("RB_CLIENT_GRPC_LOG", "stderr", 1);
		ch = open_plain(0, &st);
		if (ch == NULL)
			_exit(10);
		b = do_get(ch, TOKEN_ALL, "b-a1", &st);
		free_msg(b);
		rb_channel_close(ch);
		_exit(b == NULL ? 11 : 0);
	}
	close(fd);
	waitpid(pid, &wstatus, 0);
	CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
		  "child failed (status %d)", wstatus);
	f = fopen(path, "r");
	CHECK(f != NULL, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
	{
		lines++;
		if (strstr(line, TOKEN_ALL) != NULL)
			leaked = true;
	}
	fclose(f);
	unlink(path);
	CHECK(lines > 0, "gRPC logged nothing: tracing was not on");
	CHECK(!leaked, "the token appears in gRPC's log");
}

/*
 * The first good rb_channel_open initialises gRPC (threads appear).
 */
static void
test_lazy_init(void)
{
	RbStatus	st;
	RbChannel  *ch;
	int			before = count_threads();

	CHECK(before == 1, "%d threads before the first open", before);
	ch = open_plain(0, &st);
	CHECK(ch != NULL, "open failed: %s", st.message);
	CHECK_CODE(st, RB_OK);
	CHECK(count_threads() > 1, "no gRPC threads after the first open");
	rb_channel_close(ch);
}

/* ----------------------------------------------------------------------
 * Names
 * ----------------------------------------------------------------------
 */
static void
test_names(void)
{
	CHECK(strcmp(rb_code_name(RB_OK), "OK") == 0, "OK");
	CHECK(strcmp(rb_code_name(RB_UNAVAILABLE), "UNAVAILABLE") == 0, "UNAVAILABLE");
	CHECK(strcmp(rb_code_name(RB_UNAUTHENTICATED), "UNAUTHENTICATED") == 0, "UNAUTHENTICATED");
	CHECK(strcmp(rb_code_name(RB_LOCAL_GAVE_UP), "GAVE_UP") == 0, "GAVE_UP");
	CHECK(strcmp(rb_code_name(RB_LOCAL_BAD_REPLY), "BAD_REPLY") == 0, "BAD_REPLY");
	CHECK(strcmp(rb_code_name(RB_LOCAL_BAD_OPTION), "BAD_OPTION") == 0, "BAD_OPTION");
	CHECK(strcmp(rb_method_name(RB_METHOD_BACKUP_GET), "BackupService.Get") == 0, "Get name");
	CHECK(strcmp(rb_method_name(RB_METHOD_CLUSTER_LIST_BACKUPS), "ClusterService.ListBackups") == 0, "ListBackups name");
	CHECK(strcmp(rb_method_path(RB_METHOD_BACKUP_GET),
				 "/yandex.cloud.mdb.redis.v1.BackupService/Get") == 0, "Get path");
	CHECK(strcmp(rb_method_path(RB_METHOD_BACKUP_LIST),
				 "/yandex.cloud.mdb.redis.v1.BackupService/List") == 0, "List path");
	CHECK(strcmp(rb_method_path(RB_METHOD_CLUSTER_LIST_BACKUPS),
				 "/yandex.cloud.mdb.redis.v1.ClusterService/ListBackups") == 0,
		  "ListBackups path");
	CHECK(rb_method_reply_descriptor(RB_METHOD_BACKUP_GET) ==
		  &yandex__cloud__mdb__redis__v1__backup__descriptor, "Get reply");
	CHECK(rb_method_reply_descriptor(RB_METHOD_BACKUP_LIST) ==
		  &yandex__cloud__mdb__redis__v1__list_backups_response__descriptor,
		  "List reply");
	CHECK(rb_method_reply_descriptor(RB_METHOD_CLUSTER_LIST_BACKUPS) ==
		  &yandex__cloud__mdb__redis__v1__list_cluster_backups_response__descriptor,
		  "ListBackups reply");
}

/* ----------------------------------------------------------------------
 * Calls and decoding
 * ----------------------------------------------------------------------
 */

/* BackupService.Get decodes every field; request ids are captured. */
static void
test_get(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	Backup	   *b;
	const char *m;
	char	   *line;
	char		want[128];

	CHECK(ch != NULL, "open: %s", st.message);
	b = do_get(ch, TOKEN_ALL, "b-a1", &st);
	CHECK_CODE(st, RB_OK);
	CHECK(b != NULL, "no reply");
	m = check_b_a1(b);
	CHECK(m == NULL, "%s", m);
	free_msg(b);
	CHECK(st.request_id[0] != '\0', "x-request-id not captured");
	CHECK(is_uuid_v4(st.client_request_id), "client_request_id \"%s\"",
		  st.client_request_id);

	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no emulator log line for %s", st.client_request_id);
	snprintf(want, sizeof(want), "\"%s\"", st.request_id);
	if (!log_has(line, "method", "\"BackupService.Get\"") ||
		!log_has(line, "backup_id", "\"b-a1\"") ||
		!log_has(line, "auth", "\"ok\"") ||
		!log_has(line, "status", "\"OK\"") ||
		!log_has(line, "request_id", want))
	{
		fail_at(__LINE__, "log line does not match: %s", line);
		free(line);
		return;
	}
	free(line);

	CHECK_GET(ch, "b-b1", check_b_b1);

	rb_channel_close(ch);
}

/* Absent timestamps, no shards, unknown enum values. */
static void
test_get_odd_values(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK_GET(ch, "b-a2", check_b_a2);
	CHECK_GET(ch, "b-a3", check_b_a3);
	CHECK_GET(ch, "b-a4", check_b_a4);
	rb_channel_close(ch);
}

/* BackupService.List of a small folder, and of an empty one. */
static void
test_list(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	const char *m;
	size_t		bytes = 0;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "folder-a", 0, NULL, &st, &bytes);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply");
	m = check_folder_a(r->backups, r->n_backups);
	if (m == NULL && r->next_page_token[0] != '\0')
		m = "next_page_token on the only page";
	free_msg(r);
	CHECK(m == NULL, "%s", m);
	CHECK(bytes > 100, "reply_bytes %zu", bytes);
	CHECK(st.request_id[0] != '\0', "x-request-id not captured");

	/* two pages of two */
	r = do_list(ch, TOKEN_ALL, "folder-a", 2, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 2 && r->next_page_token[0] != '\0',
		  "first page: %zu backups, token \"%s\"", r->n_backups,
		  r->next_page_token);
	m = check_b_a1(r->backups[0]);
	if (m == NULL)
		m = check_b_a2(r->backups[1]);
	if (m == NULL)
	{
		ListBackupsResponse *r2 = do_list(ch, TOKEN_ALL, "folder-a", 2,
										  r->next_page_token, &st, NULL);

		if (r2 == NULL)
			m = "second page failed";
		else if (r2->n_backups != 2 || r2->next_page_token[0] != '\0')
			m = "second page not the last of two";
		else if ((m = check_b_a3(r2->backups[0])) == NULL)
			m = check_b_a4(r2->backups[1]);
		free_msg(r2);
	}
	free_msg(r);
	CHECK(m == NULL, "%s (%s)", m, st.message);

	r = do_list(ch, TOKEN_ALL, "folder-empty", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply for an empty folder");
	CHECK(r->n_backups == 0 && r->next_page_token[0] == '\0',
		  "empty folder: %zu backups", r->n_backups);
	free_msg(r);
	rb_channel_close(ch);
}

/* ClusterService.ListBackups. */
static void
test_cluster_list(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListClusterBackupsResponse *r;
	const char *m;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_cluster_list(ch, TOKEN_ALL, "c-a1", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply");
	CHECK(r->n_backups == 2, "%zu backups for c-a1", r->n_backups);
	m = check_b_a1(r->backups[0]);
	if (m == NULL)
		m = check_b_a2(r->backups[1]);
	if (m == NULL && r->next_page_token[0] != '\0')
		m = "next_page_token on the only page";
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_cluster_list(ch, TOKEN_ALL, "c-a2", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 2, "%zu backups for c-a2", r->n_backups);
	m = check_b_a3(r->backups[0]);
	if (m == NULL)
		m = check_b_a4(r->backups[1]);
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_cluster_list(ch, TOKEN_ALL, "c-empty", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL && r->n_backups == 0, "c-empty not empty");
	free_msg(r);
	rb_channel_close(ch);
}

/* Counting allocator for test_allocator. */
typedef struct CountingAllocator
{
	long		allocs;
	long		frees;
} CountingAllocator;

static void *
counting_alloc(void *data, size_t size)
{
	((CountingAllocator *) data)->allocs++;
	return malloc(size);
}

static void
counting_free(void *data, void *ptr)
{
	((CountingAllocator *) data)->frees++;
	free(ptr);
}

/* Replies are decoded through the caller's allocator. */
static void
test_allocator(void)
{
	CountingAllocator counts = {0, 0};
	ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req;
	ListBackupsResponse *r;
	const char *m;
	size_t		bytes;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&req, "folder-a", 0, NULL);
	r = (ListBackupsResponse *) rb_call_unary(ch, RB_METHOD_BACKUP_LIST,
											  &req.base, TOKEN_ALL,
											  CALL_TIMEOUT_MS, NULL, NULL,
											  &alloc, &st, &bytes);
	CHECK_CODE(st, RB_OK);
	CHECK(counts.allocs > 0, "allocator not used");
	m = check_folder_a(r->backups, r->n_backups);
	protobuf_c_message_free_unpacked(&r->base, &alloc);
	CHECK(m == NULL, "%s", m);
	CHECK(counts.allocs == counts.frees, "%ld allocations, %ld frees",
		  counts.allocs, counts.frees);
	rb_channel_close(ch);
}

/*
 * Page through the generated folder of 2500 with page_size 1000: exactly
 * 1000 + 1000 + 500 distinct backups; the emulator log shows the page size
 * and tokens we sent.
 */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_paging(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char	  **ids = calloc(3000, sizeof(char *));
	char		token[256] = "";
	size_t		n = 0;
	int			pages = 0;
	size_t		i;
	int			expect[3] = {1000, 1000, 500};

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK(ids != NULL, "out of memory");
	for (;;)
	{
		ListBackupsResponse *r = do_list(ch, TOKEN_ALL, "gen", 1000, token,
										 &st, NULL);
		char	   *line;
		char		want[300];

		CHECK(r != NULL, "page %d: %s %s", pages + 1,
			  rb_code_name(st.code), st.message);
		CHECK(pages < 3, "more than 3 pages");
		CHECK((int) r->n_backups == expect[pages], "page %d has %zu backups",
			  pages + 1, r->n_backups);
		for (i = 0; i < r->n_backups && n < 3000; i++)
		{
			CHECK(strcmp(r->backups[i]->folder_id, "gen") == 0,
				  "folder_id \"%s\"", r->backups[i]->folder_id);
			ids[n++] = strdup(r->backups[i]->id);
		}

		line = log_line(st.client_request_id);
		CHECK(line != NULL, "no log line for page %d", pages + 1);
		snprintf(want, sizeof(want), "\"%s\"", token);
		if (!log_has(line, "page_size", "1000") ||
			!log_has(line, "page_token", want) ||
			!log_has(line, "folder_id", "\"gen\""))
		{
			fail_at(__LINE__, "log line does not match: %s", line);
			free(line);
			free_msg(r);
			return;
		}
		free(line);

		pages++;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		free_msg(r);
		if (token[0] == '\0')
			break;
	}
	CHECK(pages == 3, "%d pages", pages);
	CHECK(n == 2500, "%zu backups", n);
	qsort(ids, n, sizeof(char *), cmp_str);
	for (i = 1; i < n; i++)
		CHECK(strcmp(ids[i - 1], ids[i]) != 0, "duplicate id %s", ids[i]);
	CHECK(strcmp(ids[0], "gen-b0000000") == 0 &&
		  strcmp(ids[n - 1], "gen-b0002499") == 0,
		  "ids run from %s to %s", ids[0], ids[n - 1]);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	rb_channel_close(ch);
}

/* page_size 0 means the server default, 100; the log shows 0 was sent. */
static void
test_default_page_size(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	char	   *line;
	size_t		n;
	bool		has_token;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "gen", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	n = r->n_backups;
	has_token = r->next_page_token[0] != '\0';
	free_msg(r);
	CHECK(n == 100, "%zu backups", n);
	CHECK(has_token, "no next_page_token");
	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no log line");
	if (!log_has(line, "page_size", "0") || !log_has(line, "returned", "100"))
		fail_at(__LINE__, "log line does not match: %s", line);
	free(line);
	rb_channel_close(ch);
}

/* ClusterService.ListBackups pages through the ten generated clusters. */
static void
test_cluster_paging(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char	  **ids = calloc(3000, sizeof(char *));
	size_t		n = 0;
	size_t		i;
	int			c;

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK(ids != NULL, "out of memory");
	for (c = 0; c < 10; c++)
	{
		char		cluster[32];
		char		token[256] = "";
		int			pages = 0;

		snprintf(cluster, sizeof(cluster), "gen-c%d", c);
		do
		{
			ListClusterBackupsResponse *r = do_cluster_list(ch, TOKEN_ALL,
															cluster, 100,
															token, &st);

			CHECK(r != NULL, "%s: %s %s", cluster, rb_code_name(st.code),
				  st.message);
			CHECK(++pages <= 30, "%s: too many pages", cluster);
			CHECK(r->n_backups <= 100, "%zu backups on a page of 100",
				  r->n_backups);
			for (i = 0; i < r->n_backups && n < 3000; i++)
			{
				CHECK(strcmp(r->backups[i]->source_cluster_id, cluster) == 0,
					  "backup %s of cluster %s listed for %s",
					  r->backups[i]->id, r->backups[i]->source_cluster_id,
					  cluster);
				ids[n++] = strdup(r->backups[i]->id);
			}
			snprintf(token, sizeof(token), "%s", r->next_page_token);
			free_msg(r);
		} while (token[0] != '\0');
	}
	CHECK(n == 2500, "%zu backups over the ten clusters", n);
	qsort(ids, n, sizeof(char *), cmp_str);
	for (i = 1; i < n; i++)
		CHECK(strcmp(ids[i - 1], ids[i]) != 0, "duplicate id %s", ids[i]);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	rb_channel_close(ch);
}

/* ----------------------------------------------------------------------
 * Errors from the service
 * ----------------------------------------------------------------------
 */

/* Every validation error and NOT_FOUND, with a message and request id. */
static void
test_validation(void)
{
	char		long51[52];
	char		long50[51];
	char		long101[102];
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	ListClusterBackupsResponse *cr;
	Backup	   *b;
	struct
	{
		const char *folder;
		int64_t		page_size;
		const char *token;
		const char *what;
	}			list_cases[] = {
		{"", 0, NULL, "empty folder_id"},
		{long51, 0, NULL, "51-char folder_id"},
		{"folder-a", -1, NULL, "page_size -1"},
		{"folder-a", 1001, NULL, "page_size 1001"},
		{"folder-a", 0, long101, "101-char page_token"},
		{"folder-a", 0, "not-a-token", "bogus page_token"},
	};
	size_t		i;

	memset(long51, 'f', 51);
	long51[51] = '\0';
	memset(long50, 'f', 50);
	long50[50] = '\0';
	memset(long101, 't', 101);
	long101[101] = '\0';

	CHECK(ch != NULL, "open: %s", st.message);
	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++)
	{
		r = do_list(ch, TOKEN_ALL, list_cases[i].folder,
					list_cases[i].page_size, list_cases[i].token, &st, NULL);
		CHECK(r == NULL, "%s: reply returned", list_cases[i].what);
		CHECK(st.code == RB_INVALID_ARGUMENT, "%s: %s (%s)",
			  list_cases[i].what, rb_code_name(st.code), st.message);
		CHECK(st.message[0] != '\0', "%s: no message", list_cases[i].what);
		CHECK(st.request_id[0] != '\0', "%s: no x-request-id",
			  list_cases[i].what);
	}

	/* the limits themselves are fine */
	r = do_list(ch, TOKEN_ALL, "folder-a", 1000, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	free_msg(r);
	r = do_list(ch, TOKEN_ALL, long50, 1, NULL, &st, NULL);
	CHECK(st.code != RB_INVALID_ARGUMENT, "50-char folder_id: %s",
		  st.message);
	free_msg(r);

	cr = do_cluster_list(ch, TOKEN_ALL, "", 0, NULL, &st);
	CHECK(cr == NULL, "empty cluster_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, long51, 0, NULL, &st);
	CHECK(cr == NULL, "51-char cluster_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, "c-a1", 1001, NULL, &st);
	CHECK(cr == NULL, "cluster page_size 1001: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, "c-a1", 0, "bogus", &st);
	CHECK(cr == NULL, "cluster bogus token: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);

	b = do_get(ch, TOKEN_ALL, "", &st);
	CHECK(b == NULL, "empty backup_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);

	b = do_get(ch, TOKEN_ALL, "b-none", &st);
	CHECK(b == NULL, "unknown backup: reply returned");
	CHECK_CODE(st, RB_NOT_FOUND);
	CHECK(st.message[0] != '\0', "NOT_FOUND without a message");
	cr = do_cluster_list(ch, TOKEN_ALL, "c-none", 0, NULL, &st);
	CHECK(cr == NULL, "unknown cluster: reply returned");
	CHECK_CODE(st, RB_NOT_FOUND);
	rb_channel_close(ch);
}

/* Missing token, wrong token, folder not granted. */
static void
test_auth(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	ListClusterBackupsResponse *cr;
	Backup	   *b;
	char	   *line;
	const char *m;

	CHECK(ch != NULL, "open: %s", st.message);

	r = do_list(ch, NULL, "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "no token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);
	CHECK(st.message[0] != '\0', "no message");
	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no log line");
	if (!log_has(line, "auth", "\"missing\""))
		fail_at(__LINE__, "log line: %s", line);
	free(line);
	if (cur_failed)
		return;

	r = do_list(ch, "", "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "empty token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);

	r = do_list(ch, "tok-wrong", "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "wrong token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);
	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no log line");
	if (!log_has(line, "auth", "\"invalid\""))
		fail_at(__LINE__, "log line: %s", line);
	free(line);
	if (cur_failed)
		return;

	b = do_get(ch, "tok-wrong", "b-a1", &st);
	CHECK(b == NULL, "Get, wrong token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);

	/* tok-a is granted folder-a only */
	r = do_list(ch, TOKEN_A, "folder-a", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_folder_a(r->backups, r->n_backups);
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_list(ch, TOKEN_A, "folder-b", 0, NULL, &st, NULL);
	CHECK(r == NULL, "folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	CHECK(st.message[0] != '\0', "no message");
	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no log line");
	if (!log_has(line, "auth", "\"denied\""))
		fail_at(__LINE__, "log line: %s", line);
	free(line);
	if (cur_failed)
		return;

	b = do_get(ch, TOKEN_A, "b-b1", &st);
	CHECK(b == NULL, "Get in folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	b = do_get(ch, TOKEN_A, "b-a1", &st);
	CHECK_CODE(st, RB_OK);
	free_msg(b);

	cr = do_cluster_list(ch, TOKEN_A, "c-b1", 0, NULL, &st);
	CHECK(cr == NULL, "cluster in folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	cr = do_cluster_list(ch, TOKEN_A, "c-a1", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	free_msg(cr);
	rb_channel_close(ch);
}

/* Each call gets its own client request id and server request id. */
static void
test_request_ids(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char		rid[2][RB_REQUEST_ID_LEN];
	char		crid[2][40];
	char	   *line;
	char		want[128];
	int			i;

	CHECK(ch != NULL, "open: %s", st.message);
	for (i = 0; i < 2; i++)
	{
		Backup	   *b = do_get(ch, TOKEN_ALL, i == 0 ? "b-a1" : "b-none", &st);

		free_msg(b);
		CHECK_CODE(st, i == 0 ? RB_OK : RB_NOT_FOUND);
		CHECK(st.request_id[0] != '\0', "call %d: no x-request-id", i);
		CHECK(is_uuid_v4(st.client_request_id), "call %d: client id \"%s\"",
			  i, st.client_request_id);
		strcpy(rid[i], st.request_id);
		strcpy(crid[i], st.client_request_id);

		line = log_line(crid[i]);
		CHECK(line != NULL, "call %d: the emulator did not log our id", i);
		snprintf(want, sizeof(want), "\"%s\"", rid[i]);
		if (!log_has(line, "request_id", want))
			fail_at(__LINE__, "x-request-id %s not in log line %s", rid[i], line);
		free(line);
		if (cur_failed)
			return;
	}
	CHECK(strcmp(rid[0], rid[1]) != 0, "same x-request-id twice");
	CHECK(strcmp(crid[0], crid[1]) != 0, "same client request id twice");
	rb_channel_close(ch);
}

/* ----------------------------------------------------------------------
 * Faults
 * ----------------------------------------------------------------------
 */
static void
test_fault_latency(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	/* warm the connection up first */
	free_msg(do_list(ch, TOKEN_ALL, "folder-empty", 0, NULL, &st, NULL));
	t0 = now_ms();
	r = do_list(ch, TOKEN_ALL, "f-latency", 0, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 1 && strcmp(r->backups[0]->id, "b-latency") == 0,
		  "wrong reply");
	free_msg(r);
	CHECK(elapsed >= 295, "latency 300 ms took %" PRId64 " ms", elapsed);
	CHECK(elapsed < 1000 * slow, "latency 300 ms took %" PRId64 " ms", elapsed);

	/* a deadline shorter than the latency */
	r = do_list(ch, TOKEN_ALL, "f-latency", 0, NULL, &st, NULL);
	free_msg(r);
	{
		ListBackupsRequest req;

		make_list(&req, "f-latency", 0, NULL);
		r = (ListBackupsResponse *) rb_call_unary(ch, RB_METHOD_BACKUP_LIST,
												  &req.base, TOKEN_ALL, 100,
												  NULL, NULL, NULL, &st, NULL);
		CHECK(r == NULL, "reply despite the deadline");
		CHECK_CODE(st, RB_DEADLINE_EXCEEDED);
	}
	rb_channel_close(ch);
}

static void
test_fault_unavailable(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	int			i;
	int			nfail = 0;
	RbCode		prev = RB_UNKNOWN;

	CHECK(ch != NULL, "open: %s", st.message);
	for (i = 0; i < 3; i++)
	{
		ListBackupsResponse *r = do_list(ch, TOKEN_ALL, "f-unavail", 0, NULL,
										 &st, NULL);

		CHECK(r == NULL, "unavailable=1: reply returned");
		CHECK_CODE(st, RB_UNAVAILABLE);
		CHECK(st.request_id[0] != '\0', "no x-request-id");
	}
	/* every second call fails */
	for (i = 0; i < 4; i++)
	{
		ListBackupsResponse *r = do_list(ch, TOKEN_ALL, "f-unavail2", 0, NULL,
										 &st, NULL);

		CHECK(st.code == RB_OK || st.code == RB_UNAVAILABLE, "got %s",
			  rb_code_name(st.code));
		CHECK(st.code != prev, "unavailable=2: two %s in a row",
			  rb_code_name(st.code));
		CHECK((r != NULL) == (st.code == RB_OK), "reply/status mismatch");
		if (st.code == RB_UNAVAILABLE)
			nfail++;
		prev = st.code;
		free_msg(r);
	}
	CHECK(nfail == 2, "%d of 4 calls UNAVAILABLE", nfail);
	/* other folders are not affected */
	free_msg(do_list(ch, TOKEN_ALL, "folder-a", 0, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);
	rb_channel_close(ch);
}

static void
test_fault_exhausted(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-exhausted", 0, NULL, &st, NULL);
	CHECK(r == NULL, "reply returned");
	CHECK_CODE(st, RB_RESOURCE_EXHAUSTED);
	CHECK(st.message[0] != '\0', "no message");
	rb_channel_close(ch);
}

static void
test_fault_status(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	int			i;
	int			nfail = 0;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-status", 0, NULL, &st, NULL);
	CHECK(r == NULL, "reply returned");
	CHECK_CODE(st, RB_DATA_LOSS);

	/* FAILED_PRECONDITION on every third call */
	for (i = 0; i < 6; i++)
	{
		r = do_list(ch, TOKEN_ALL, "f-status3", 0, NULL, &st, NULL);
		CHECK(st.code == RB_OK || st.code == RB_FAILED_PRECONDITION,
			  "got %s", rb_code_name(st.code));
		if (st.code != RB_OK)
			nfail++;
		free_msg(r);
	}
	CHECK(nfail == 2, "%d of 6 calls failed with status=FAILED_PRECONDITION:3",
		  nfail);
	rb_channel_close(ch);
}

static void
test_fault_garbage(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	Backup	   *b;
	size_t		bytes = 0;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-garbage", 0, NULL, &st, &bytes);
	CHECK(r == NULL, "garbage decoded");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);
	CHECK(bytes > 0, "reply_bytes not reported");
	CHECK(st.request_id[0] != '\0', "no x-request-id");

	b = do_get(ch, TOKEN_ALL, "b-garbage", &st);
	CHECK(b == NULL, "garbage decoded");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);

	/* the channel is still good */
	b = do_get(ch, TOKEN_ALL, "b-a1", &st);
	CHECK_CODE(st, RB_OK);
	free_msg(b);
	rb_channel_close(ch);
}

/*
 * A string holding a NUL byte makes the reply BAD_REPLY (protobuf-c would
 * cut it short); invalid UTF-8 arrives byte for byte, for the caller to
 * judge.
 */
static void
test_hostile_strings(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	Backup	   *b;
	bool		intact;

	CHECK(ch != NULL, "open: %s", st.message);
	b = do_get(ch, TOKEN_ALL, "b-nul", &st);
	CHECK(b == NULL, "string with a NUL byte accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);
	CHECK(strstr(st.message, "NUL") != NULL, "message: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-nul", 0, NULL, &st, NULL);
	CHECK(r == NULL, "list with a NUL byte accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);

	b = do_get(ch, TOKEN_ALL, "b-badutf8", &st);
	CHECK_CODE(st, RB_OK);
	intact = b->n_source_shard_names == 1 &&
		strcmp(b->source_shard_names[0], "\xff\xfe") == 0;
	free_msg(b);
	CHECK(intact, "invalid UTF-8 shard name not passed through as is");
	rb_channel_close(ch);
}

static void
test_fault_token_loop(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	char		first[256];
	int			i;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-loop", 1, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r->next_page_token[0] != '\0', "no next_page_token");
	snprintf(first, sizeof(first), "%s", r->next_page_token);
	free_msg(r);
	for (i = 0; i < 3; i++)
	{
		bool		same;

		r = do_list(ch, TOKEN_ALL, "f-loop", 1, first, &st, NULL);
		CHECK_CODE(st, RB_OK);
		CHECK(r->n_backups == 1, "%zu backups", r->n_backups);
		same = strcmp(r->next_page_token, first) == 0;
		free_msg(r);
		CHECK(same, "token did not repeat");
	}
	rb_channel_close(ch);
}

static void
test_fault_unknown_fields(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	Backup	   *b;
	const char *m;
	size_t		nunknown;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "f-unknown", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 1, "%zu backups", r->n_backups);
	m = backup_mismatch(r->backups[0], "b-unknown", "f-unknown", "c-unknown",
						1795748405, 123456789, 1795748340, 0, "shard1,shard2",
						YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL);
	nunknown = r->base.n_unknown_fields + r->backups[0]->base.n_unknown_fields;
	free_msg(r);
	CHECK(m == NULL, "%s", m);
	CHECK(nunknown > 0, "the reply had no unknown fields: fault not applied?");

	b = do_get(ch, TOKEN_ALL, "b-unknown", &st);
	CHECK_CODE(st, RB_OK);
	m = backup_mismatch(b, "b-unknown", "f-unknown", "c-unknown",
						1795748405, 123456789, 1795748340, 0, "shard1,shard2",
						YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL);
	nunknown = b->base.n_unknown_fields;
	free_msg(b);
	CHECK(m == NULL, "%s", m);
	CHECK(nunknown > 0, "Get reply had no unknown fields");
	rb_channel_close(ch);
}

/* A reply beyond max_receive_bytes fails in the client. */
static void
test_fault_oversize(void)
{
	RbStatus	st;
	RbChannel  *small = open_plain(65536, &st);
	RbChannel  *big;
	ListBackupsResponse *r;
	size_t		bytes = 0;
	char	   *line;

	CHECK(small != NULL, "open: %s", st.message);
	r = do_list(small, TOKEN_ALL, "f-oversize", 0, NULL, &st, NULL);
	CHECK(r == NULL, "oversize reply accepted with a 64 KiB limit");
	CHECK_CODE(st, RB_LOCAL_REPLY_TOO_LARGE);
	/* the server sent it fine: the limit is the client's */
	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no log line");
	if (!log_has(line, "status", "\"OK\""))
		fail_at(__LINE__, "server did not answer OK: %s", line);
	free(line);
	if (cur_failed)
		return;
	/* an ordinary reply still passes */
	free_msg(do_list(small, TOKEN_ALL, "folder-a", 0, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);
	rb_channel_close(small);

	/* the default limit (16 MiB) lets it through */
	big = open_plain(0, &st);
	CHECK(big != NULL, "open: %s", st.message);
	r = do_list(big, TOKEN_ALL, "f-oversize", 0, NULL, &st, &bytes);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 1 && strcmp(r->backups[0]->id, "b-oversize") == 0,
		  "wrong reply");
	free_msg(r);
	CHECK(bytes >= 65536, "reply of %zu bytes is not oversize", bytes);
	rb_channel_close(big);
}

/* A hanging call ends with DEADLINE_EXCEEDED at its deadline. */
static void
test_deadline(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req;
	ProtobufCMessage *r;
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&req, "f-hang", 0, NULL);
	t0 = now_ms();
	r = rb_call_unary(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, 300,
					  NULL, NULL, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	CHECK(r == NULL, "reply from a hanging call");
	CHECK_CODE(st, RB_DEADLINE_EXCEEDED);
	CHECK(elapsed >= 290 && elapsed < 1000 * slow,
		  "deadline of 300 ms hit after %" PRId64 " ms", elapsed);
	rb_channel_close(ch);
}

/* Give-up hook state. */
typedef struct GiveUp
{
	int64_t		start;
	int64_t		after_ms;		/* say true this long after start */
	int			calls;
	int64_t		last;
	int64_t		max_gap;
	int64_t		said_true_at;
} GiveUp;

static bool
give_up_after(void *arg)
{
	GiveUp	   *g = (GiveUp *) arg;
	int64_t		now = now_ms();

	if (g->calls > 0 && now - g->last > g->max_gap)
		g->max_gap = now - g->last;
	g->calls++;
	g->last = now;
	if (now - g->start >= g->after_ms)
	{
		g->said_true_at = now;
		return true;
	}
	return false;
}

/*
 * The give-up hook is asked at most ~100 ms apart; when it says stop, the
 * hanging call is cancelled and rb_call_wait returns GAVE_UP within 0.5 s.
 */
static void
test_give_up(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req;
	RbCall	   *call;
	GiveUp		g;
	bool		done;
	int64_t		returned_at;
	ProtobufCMessage *r;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&req, "f-hang", 0, NULL);
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, 0,
						 &st);
	CHECK(call != NULL, "start: %s", st.message);
	CHECK_CODE(st, RB_OK);
	CHECK(is_uuid_v4(st.client_request_id), "no client request id at start");

	memset(&g, 0, sizeof(g));
	g.start = now_ms();
	g.after_ms = 400;
	done = rb_call_wait(call, give_up_after, &g, &st);
	returned_at = now_ms();
	CHECK(!done, "wait returned true");
	CHECK_CODE(st, RB_LOCAL_GAVE_UP);
	CHECK(g.said_true_at > 0, "hook never said true");
	CHECK(returned_at - g.said_true_at < 500 * slow,
		  "cancel took %" PRId64 " ms", returned_at - g.said_true_at);
	CHECK(g.calls >= 3, "hook asked %d times in 400 ms", g.calls);
	CHECK(g.max_gap <= 200 * slow, "hook asked %" PRId64 " ms apart",
		  g.max_gap);
	CHECK(rb_call_is_done(call), "call not done after give-up");
	r = rb_call_finish(call, NULL, &st, NULL);
	CHECK(r == NULL, "reply from a cancelled call");
	CHECK_CODE(st, RB_LOCAL_GAVE_UP);

	/* the same through rb_call_unary */
	memset(&g, 0, sizeof(g));
	g.start = now_ms();
	g.after_ms = 150;
	r = rb_call_unary(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, 0,
					  give_up_after, &g, NULL, &st, NULL);
	returned_at = now_ms();
	CHECK(r == NULL, "reply from a cancelled call");
	CHECK_CODE(st, RB_LOCAL_GAVE_UP);
	CHECK(returned_at - g.said_true_at < 500 * slow,
		  "cancel took %" PRId64 " ms", returned_at - g.said_true_at);

	/* the channel still works */
	free_msg(do_get(ch, TOKEN_ALL, "b-a1", &st));
	CHECK_CODE(st, RB_OK);
	rb_channel_close(ch);
}

/* ----------------------------------------------------------------------
 * Several calls, abandon, close
 * ----------------------------------------------------------------------
 */

/*
 * Three calls in flight on one channel finish in the reverse of their start
 * order; completions that arrive while waiting for another call are kept.
 */
static void
test_concurrent(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req_slow,
				req_mid,
				req_fast;
	GetBackupRequest req_get;
	RbCall	   *slow_call,
			   *mid_call,
			   *fast_call,
			   *get_call;
	ListBackupsResponse *r;
	Backup	   *b;
	int64_t		t0,
				elapsed;
	const char *m;

	CHECK(ch != NULL, "open: %s", st.message);
	free_msg(do_list(ch, TOKEN_ALL, "folder-empty", 0, NULL, &st, NULL));

	make_list(&req_slow, "f-slow", 0, NULL);	/* 700 ms */
	make_list(&req_mid, "f-latency", 0, NULL);	/* 300 ms */
	make_list(&req_fast, "folder-a", 0, NULL);
	t0 = now_ms();
	slow_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_slow.base,
							  TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(slow_call != NULL, "start: %s", st.message);
	mid_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_mid.base,
							 TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(mid_call != NULL, "start: %s", st.message);
	fast_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_fast.base,
							  TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(fast_call != NULL, "start: %s", st.message);

	CHECK(rb_call_wait(fast_call, NULL, NULL, &st), "wait fast: %s",
		  st.message);
	CHECK(!rb_call_is_done(slow_call) && !rb_call_is_done(mid_call),
		  "slow calls done before the fast one");
	r = (ListBackupsResponse *) rb_call_finish(fast_call, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_folder_a(r->backups, r->n_backups);
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	CHECK(rb_call_wait(mid_call, NULL, NULL, &st), "wait mid: %s",
		  st.message);
	CHECK(!rb_call_is_done(slow_call), "700 ms call done with the 300 ms one");
	r = (ListBackupsResponse *) rb_call_finish(mid_call, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 1 && strcmp(r->backups[0]->id, "b-latency") == 0,
		  "mid: wrong reply");
	free_msg(r);

	CHECK(rb_call_wait(slow_call, NULL, NULL, &st), "wait slow: %s",
		  st.message);
	r = (ListBackupsResponse *) rb_call_finish(slow_call, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 1 && strcmp(r->backups[0]->id, "b-slow") == 0,
		  "slow: wrong reply");
	free_msg(r);
	CHECK(elapsed >= 690 && elapsed < 1000 * slow,
		  "700 ms and 300 ms calls in parallel took %" PRId64 " ms", elapsed);

	/* a completion that arrives while waiting for another call is kept */
	make_get(&req_get, "b-a1");
	mid_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_mid.base,
							 TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(mid_call != NULL, "start: %s", st.message);
	get_call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &req_get.base,
							 TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(get_call != NULL, "start: %s", st.message);
	CHECK(rb_call_wait(mid_call, NULL, NULL, &st), "wait: %s", st.message);
	CHECK(rb_call_is_done(get_call), "Get's completion was not recorded");
	/* collecting it needs no waiting */
	CHECK(rb_call_wait(get_call, NULL, NULL, &st), "wait: %s", st.message);
	b = (Backup *) rb_call_finish(get_call, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_b_a1(b);
	free_msg(b);
	CHECK(m == NULL, "%s", m);
	r = (ListBackupsResponse *) rb_call_finish(mid_call, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	free_msg(r);
	rb_channel_close(ch);
}

/* rb_call_abandon, and rb_channel_close with calls in flight, never hang. */
static void
test_abandon_and_close(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest hang_req;
	GetBackupRequest get_req;
	RbCall	   *call;
	RbCall	   *done_call;
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&hang_req, "f-hang", 0, NULL);
	make_get(&get_req, "b-a1");

	/* abandon a hanging call; the channel goes on working */
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL,
						 0, &st);
	CHECK(call != NULL, "start: %s", st.message);
	t0 = now_ms();
	rb_call_abandon(call);
	CHECK(now_ms() - t0 < 50, "rb_call_abandon blocked");
	free_msg(do_get(ch, TOKEN_ALL, "b-a1", &st));
	CHECK_CODE(st, RB_OK);

	/* abandon a completed call */
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get_req.base, TOKEN_ALL,
						 CALL_TIMEOUT_MS, &st);
	CHECK(call != NULL, "start: %s", st.message);
	CHECK(rb_call_wait(call, NULL, NULL, &st), "wait: %s", st.message);
	rb_call_abandon(call);

	/* abandon a hanging call and close at once */
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL,
						 0, &st);
	CHECK(call != NULL, "start: %s", st.message);
	rb_call_abandon(call);
	t0 = now_ms();
	rb_channel_close(ch);
	elapsed = now_ms() - t0;
	CHECK(elapsed < 1000 * slow, "close after abandon took %" PRId64 " ms",
		  elapsed);

	/* close with a hanging call and an uncollected completed call */
	ch = open_plain(0, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	done_call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get_req.base,
							  TOKEN_ALL, CALL_TIMEOUT_MS, &st);
	CHECK(done_call != NULL, "start: %s", st.message);
	CHECK(rb_call_wait(done_call, NULL, NULL, &st), "wait: %s", st.message);
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL,
						 0, &st);
	CHECK(call != NULL, "start: %s", st.message);
	t0 = now_ms();
	rb_channel_close(ch);
	elapsed = now_ms() - t0;
	CHECK(elapsed < 1000 * slow, "close with a call in flight took %" PRId64 " ms",
		  elapsed);
}

/* Wrong request type, bad token text, unreachable server. */
static void
test_local_errors(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	RbChannelOptions opts;
	GetBackupRequest get_req;
	RbCall	   *call;
	ProtobufCMessage *r;
	int64_t		t0,
				elapsed;
	int			sock;
	struct sockaddr_in addr;
	socklen_t	addrlen;
	char		target[64];

	CHECK(ch != NULL, "open: %s", st.message);
	make_get(&get_req, "b-a1");
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &get_req.base, TOKEN_ALL,
						 1000, &st);
	CHECK(call == NULL, "List started with a GetBackupRequest");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, NULL, TOKEN_ALL, 1000, &st);
	CHECK(call == NULL, "started without a request");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get_req.base,
						 "secret\r\nx-evil: 1", 1000, &st);
	CHECK(call == NULL, "token with CR LF accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	CHECK(strstr(st.message, "secret") == NULL, "message quotes the token");
	rb_channel_close(ch);

	/*
	 * A port nobody listens on: a socket bound but not listening keeps it
	 * reserved, and connecting to it is refused.
	 */
	sock = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(sock >= 0, "socket: %s", strerror(errno));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addrlen = sizeof(addr);
	if (bind(sock, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		getsockname(sock, (struct sockaddr *) &addr, &addrlen) != 0)
	{
		fail_at(__LINE__, "bind: %s", strerror(errno));
		close(sock);
		return;
	}
	snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(addr.sin_port));
	memset(&opts, 0, sizeof(opts));
	opts.target = target;
	opts.plaintext = true;
	ch = rb_channel_open(&opts, &st);
	if (ch == NULL)
		close(sock);
	CHECK(ch != NULL, "open: %s", st.message);
	t0 = now_ms();
	r = rb_call_unary(ch, RB_METHOD_BACKUP_GET, &get_req.base, TOKEN_ALL,
					  5000, NULL, NULL, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	rb_channel_close(ch);
	close(sock);
	CHECK(r == NULL, "reply from nowhere");
	CHECK_CODE(st, RB_UNAVAILABLE);
	CHECK(elapsed < 4000, "UNAVAILABLE took %" PRId64 " ms", elapsed);
}

/* ----------------------------------------------------------------------
 * Signals and threads
 * ----------------------------------------------------------------------
 */
#define MAX_SIGNALS 64
static volatile sig_atomic_t usr1_count = 0;
static pthread_t usr1_threads[MAX_SIGNALS];

static void
usr1_handler(int signo)
{
	int			i = usr1_count;

	if (i < MAX_SIGNALS)
		usr1_threads[i] = pthread_self();
	usr1_count = i + 1;
}

/*
 * blocked_mask_problem
 *		NULL when every thread of the process other than the main one blocks
 *		all asynchronous signals (and not SIGSEGV/SIGBUS/SIGFPE/SIGILL).
 */
static const char *
blocked_mask_problem(int *nthreads)
{
	static char buf[512];
	DIR		   *dir = opendir("/proc/self/task");
	struct dirent *de;
	pid_t		self = getpid();
	const char *problem = NULL;

	*nthreads = 0;
	if (dir == NULL)
		return "cannot read /proc/self/task";
	while (problem == NULL && (de = readdir(dir)) != NULL)
	{
		char		path[300];
		char	   *text;
		char	   *p;
		unsigned long long blk;
		char		comm[64] = "";
		int			sig;

		if (de->d_name[0] == '.' || atoi(de->d_name) == self)
			continue;
		(*nthreads)++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		text = read_file(path);
		if (text == NULL)
			continue;			/* the thread went away */
		if ((p = strstr(text, "Name:")) != NULL)
			sscanf(p, "Name:\t%63s", comm);
		p = strstr(text, "\nSigBlk:");
		if (p == NULL || sscanf(p, "\nSigBlk:\t%llx", &blk) != 1)
		{
			free(text);
			problem = "no SigBlk line";
			break;
		}
		free(text);
		for (sig = 1; sig <= 31; sig++)
		{
			bool		blocked = (blk >> (sig - 1)) & 1;
			bool		want;

			if (sig == SIGKILL || sig == SIGSTOP)
				continue;
			want = !(sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
					 sig == SIGILL);
			if (blocked != want)
			{
				snprintf(buf, sizeof(buf),
						 "thread %.32s (%s): signal %d (%.40s) %sblocked, mask %llx",
						 de->d_name, comm, sig, strsignal(sig),
						 blocked ? "" : "not ", blk);
				problem = buf;
				break;
			}
		}
	}
	closedir(dir);
	return problem;
}

/*
 * SIGUSR1 sent to the process while calls are in flight runs its handler on
 * the main thread only; every gRPC thread blocks asynchronous signals.
 */
static void
test_signals(void)
{
	RbStatus	st;
	RbChannel  *ch;
	struct sigaction sa;
	struct sigaction old_sa;
	ListBackupsRequest req_mid,
				req_slow;
	RbCall	   *c1,
			   *c2;
	pid_t		pid;
	int			wstatus;
	int			nthreads;
	const char *problem;
	int			i;
	int			n;
	pthread_t	main_thread = pthread_self();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, &old_sa) == 0, "sigaction");

	ch = open_plain(0, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&req_mid, "f-latency", 0, NULL);
	make_list(&req_slow, "f-slow", 0, NULL);
	c1 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_mid.base, TOKEN_ALL,
					   CALL_TIMEOUT_MS, &st);
	CHECK(c1 != NULL, "start: %s", st.message);
	c2 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_slow.base, TOKEN_ALL,
					   CALL_TIMEOUT_MS, &st);
	CHECK(c2 != NULL, "start: %s", st.message);

	/* a child sends process-directed signals while we wait */
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
	{
		pid_t		parent = getppid();

		for (i = 0; i < 20; i++)
		{
			usleep(20000);
			kill(parent, SIGUSR1);
		}
		_exit(0);
	}

	problem = blocked_mask_problem(&nthreads);
	CHECK(rb_call_wait(c1, NULL, NULL, &st), "wait: %s", st.message);
	free_msg(rb_call_finish(c1, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);
	CHECK(rb_call_wait(c2, NULL, NULL, &st), "wait: %s", st.message);
	free_msg(rb_call_finish(c2, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;

	CHECK(nthreads > 0, "no gRPC threads to check");
	/* under valgrind the kernel's masks are valgrind's own: skip */
	CHECK(problem == NULL || slow > 1, "%s", problem);

	n = usr1_count;
	CHECK(n >= 1, "SIGUSR1 never handled");
	for (i = 0; i < n && i < MAX_SIGNALS; i++)
		CHECK(pthread_equal(usr1_threads[i], main_thread),
			  "SIGUSR1 %d of %d handled on a thread other than the main one",
			  i + 1, n);

	sigaction(SIGUSR1, &old_sa, NULL);
	rb_channel_close(ch);

	/* and after all that, still every gRPC thread blocks signals */
	problem = blocked_mask_problem(&nthreads);
	CHECK(problem == NULL || slow > 1, "%s", problem);
}

/*
 * After gRPC has been initialised, a forked child cannot use it: the
 * library refuses at once instead of hanging.
 */
static void
test_fork_after_init(void)
{
	pid_t		pid;
	int			wstatus = 0;

	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
	{
		RbStatus	st;
		RbChannel  *ch;

		alarm(10);
		ch = open_plain(0, &st);
		if (ch != NULL)
			_exit(10);
		_exit(st.code == RB_LOCAL_CALL_FAILED ? 0 : 11);
	}
	CHECK(wait_child(pid, 12000, &wstatus), "child hung");
	CHECK(WIFEXITED(wstatus), "child died with signal %d",
		  WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
	CHECK(WEXITSTATUS(wstatus) == 0,
		  "child: code %d (10: open succeeded, 11: wrong status)",
		  WEXITSTATUS(wstatus));
}

/* ----------------------------------------------------------------------
 * TLS
 * ----------------------------------------------------------------------
 */
static void
test_tls_ok(void)
{
	RbStatus	st;
	RbChannel  *ch;
	ListBackupsResponse *r;
	const char *m;

	CHECK(ca_pem != NULL, "no CA file");
	ch = open_tls(tls_name_target, ca_pem, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	CHECK_GET(ch, "b-a1", check_b_a1);
	CHECK(st.request_id[0] != '\0', "no x-request-id over TLS");
	r = do_list(ch, TOKEN_ALL, "folder-a", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_folder_a(r->backups, r->n_backups);
	free_msg(r);
	CHECK(m == NULL, "%s", m);
	rb_channel_close(ch);
}

/*
 * tls_expect_unavailable
 *		A Get over a channel that cannot be established ends UNAVAILABLE.
 */
static const char *
tls_expect_unavailable(const char *target, bool plaintext, const char *ca)
{
	static char buf[700];
	RbStatus	st;
	RbChannelOptions opts;
	RbChannel  *ch;
	Backup	   *b;

	memset(&opts, 0, sizeof(opts));
	opts.target = target;
	opts.plaintext = plaintext;
	opts.ca_pem = ca;
	ch = rb_channel_open(&opts, &st);
	if (ch == NULL)
	{
		snprintf(buf, sizeof(buf), "open: %s", st.message);
		return buf;
	}
	b = do_get(ch, TOKEN_ALL, "b-a1", &st);
	free_msg(b);
	rb_channel_close(ch);
	if (b != NULL || st.code != RB_UNAVAILABLE)
	{
		snprintf(buf, sizeof(buf), "expected UNAVAILABLE, got %s (%s)",
				 rb_code_name(st.code), st.message);
		return buf;
	}
	return NULL;
}

static void
test_tls_wrong_ca(void)
{
	const char *m;

	CHECK(other_ca_pem != NULL, "no second CA file");
	m = tls_expect_unavailable(tls_name_target, false, other_ca_pem);
	CHECK(m == NULL, "unrelated CA: %s", m);
	m = tls_expect_unavailable(tls_name_target, false, NULL);
	CHECK(m == NULL, "system roots: %s", m);
}

static void
test_tls_name_mismatch(void)
{
	const char *m;

	/* the certificate names DNS:localhost only, no IP address */
	m = tls_expect_unavailable(tls_ip_target, false, ca_pem);
	CHECK(m == NULL, "%s", m);
}

static void
test_plaintext_to_tls(void)
{
	const char *m;

	m = tls_expect_unavailable(tls_name_target, true, NULL);
	CHECK(m == NULL, "%s", m);
}

/* ----------------------------------------------------------------------
 * main
 * ----------------------------------------------------------------------
 */
int
main(void)
{
	const char *tls_port = getenv("RB_TEST_TLS_PORT");
	const char *s;

	plain_target = getenv("RB_TEST_PLAIN_TARGET");
	log_file = getenv("RB_TEST_LOG_FILE");
	if (plain_target == NULL || tls_port == NULL || log_file == NULL)
	{
		fprintf(stderr, "client_test: run me through test/client/run.sh\n");
		return 2;
	}
	snprintf(tls_name_target, sizeof(tls_name_target), "localhost:%s",
			 tls_port);
	snprintf(tls_ip_target, sizeof(tls_ip_target), "127.0.0.1:%s", tls_port);
	ca_pem = read_file(getenv("RB_TEST_CA_FILE"));
	other_ca_pem = read_file(getenv("RB_TEST_OTHER_CA_FILE"));
	s = getenv("RB_TEST_SLOW");
	if (s != NULL && s[0] != '\0')
		slow = 5;

	/* these need a process without gRPC state: keep them first */
	run_test("bad options refused before gRPC starts", test_bad_options);
	run_test("fork before gRPC init: child completes a call",
			 test_fork_before_init);
	run_test("gRPC's own log never shows the token",
			 test_grpc_log_hides_token);
	run_test("first rb_channel_open initialises gRPC", test_lazy_init);

	run_test("code and method names", test_names);
	run_test("BackupService.Get decodes all fields", test_get);
	run_test("absent timestamps, no shards, unknown enum", test_get_odd_values);
	run_test("BackupService.List", test_list);
	run_test("ClusterService.ListBackups", test_cluster_list);
	run_test("replies use the caller's allocator", test_allocator);
	run_test("paging 2500 backups with page_size 1000", test_paging);
	run_test("page_size 0 gives the default 100", test_default_page_size);
	run_test("ClusterService.ListBackups paging", test_cluster_paging);
	run_test("validation errors and NOT_FOUND", test_validation);
	run_test("authentication and permission errors", test_auth);
	run_test("x-request-id and x-client-request-id", test_request_ids);
	run_test("fault latency", test_fault_latency);
	run_test("fault unavailable", test_fault_unavailable);
	run_test("fault exhausted", test_fault_exhausted);
	run_test("fault status", test_fault_status);
	run_test("fault garbage gives BAD_REPLY", test_fault_garbage);
	run_test("NUL in a string is BAD_REPLY, bad UTF-8 passes",
			 test_hostile_strings);
	run_test("fault token_loop", test_fault_token_loop);
	run_test("fault unknown_fields", test_fault_unknown_fields);
	run_test("fault oversize hits max_receive_bytes", test_fault_oversize);
	run_test("deadline against hang", test_deadline);
	run_test("give-up hook cancels within 0.5 s", test_give_up);
	run_test("concurrent calls collected out of order", test_concurrent);
	run_test("abandon and close do not hang", test_abandon_and_close);
	run_test("local errors and unreachable server", test_local_errors);
	run_test("signals go to the main thread only", test_signals);
	run_test("fork after gRPC init is refused", test_fork_after_init);
	run_test("TLS with the right CA", test_tls_ok);
	run_test("TLS with a wrong CA fails", test_tls_wrong_ca);
	run_test("TLS to an IP the certificate does not name fails",
			 test_tls_name_mismatch);
	run_test("plaintext client to TLS server fails", test_plaintext_to_tls);

	free(ca_pem);
	free(other_ca_pem);

	printf("%d passed, %d failed\n", npassed, nfailed);
	fflush(stdout);
	return nfailed > 0 ? 1 : 0;
}

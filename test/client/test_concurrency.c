/*-------------------------------------------------------------------------
 *
 * test_concurrency.c
 *		  Client tests: the give-up hook, several calls in flight,
 *		  rb_channel_wait_any, abandon and close, signals and fork.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_concurrency.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

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

/*
 * give_up_after
 *		The give-up hook: says true once g->after_ms have passed since
 *		g->start, and notes how often and how far apart it was asked.
 */
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
void
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
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, NULL, 0,
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
	r = rb_call_unary(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, NULL, 0,
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
void
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
							  TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
	CHECK(slow_call != NULL, "start: %s", st.message);
	mid_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_mid.base,
							 TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
	CHECK(mid_call != NULL, "start: %s", st.message);
	fast_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_fast.base,
							  TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
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
							 TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
	CHECK(mid_call != NULL, "start: %s", st.message);
	get_call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &req_get.base,
							 TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
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
void
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
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL, NULL,
						 0, &st);
	CHECK(call != NULL, "start: %s", st.message);
	t0 = now_ms();
	rb_call_abandon(call);
	CHECK(now_ms() - t0 < 50, "rb_call_abandon blocked");
	free_msg(do_get(ch, TOKEN_ALL, "b-a1", &st));
	CHECK_CODE(st, RB_OK);

	/* abandon a completed call */
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get_req.base, TOKEN_ALL, NULL,
						 CALL_TIMEOUT_MS, &st);
	CHECK(call != NULL, "start: %s", st.message);
	CHECK(rb_call_wait(call, NULL, NULL, &st), "wait: %s", st.message);
	rb_call_abandon(call);

	/* abandon a hanging call and close at once */
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL, NULL,
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
							  TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
	CHECK(done_call != NULL, "start: %s", st.message);
	CHECK(rb_call_wait(done_call, NULL, NULL, &st), "wait: %s", st.message);
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang_req.base, TOKEN_ALL, NULL,
						 0, &st);
	CHECK(call != NULL, "start: %s", st.message);
	t0 = now_ms();
	rb_channel_close(ch);
	elapsed = now_ms() - t0;
	CHECK(elapsed < 1000 * slow, "close with a call in flight took %" PRId64 " ms",
		  elapsed);
}

/* ----------------------------------------------------------------------
 * Signals and threads
 * ----------------------------------------------------------------------
 */
#define MAX_SIGNALS 64
static volatile sig_atomic_t usr1_count = 0;
static pthread_t usr1_threads[MAX_SIGNALS];

/*
 * usr1_handler
 *		Count a SIGUSR1 and note the thread it ran on.
 */
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
 *		all asynchronous signals.  The threads gRPC creates from our calls
 *		inherit rb_block_signals' mask, which leaves SIGSEGV, SIGBUS, SIGFPE
 *		and SIGILL open; gRPC itself may start a helper thread with every
 *		signal blocked (seen with the 200 ms backup poller, short-lived),
 *		which is as safe: a synchronous signal is delivered to the faulting
 *		thread even when blocked, and no asynchronous one can reach it.  So
 *		a thread must block every asynchronous signal and may block the
 *		synchronous ones, but not just some of them.
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
		bool		all_sync_blocked;

		if (de->d_name[0] == '.' || atoi(de->d_name) == self)
			continue;
		(*nthreads)++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		text = read_file(path);
		if (text == NULL)
			continue;			/* the thread ended since the listing */
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
		all_sync_blocked = ((blk >> (SIGSEGV - 1)) & 1) &&
			((blk >> (SIGBUS - 1)) & 1) && ((blk >> (SIGFPE - 1)) & 1) &&
			((blk >> (SIGILL - 1)) & 1);
		for (sig = 1; sig <= 31; sig++)
		{
			bool		blocked = (blk >> (sig - 1)) & 1;
			bool		want;

			if (sig == SIGKILL || sig == SIGSTOP)
				continue;
			want = !(sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
					 sig == SIGILL) || all_sync_blocked;
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
void
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
	c1 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_mid.base, TOKEN_ALL, NULL,
					   CALL_TIMEOUT_MS, &st);
	CHECK(c1 != NULL, "start: %s", st.message);
	c2 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req_slow.base, TOKEN_ALL, NULL,
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
	/* Under valgrind the masks are valgrind's own, so the check is skipped. */
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
void
test_fork_after_init(void)
{
	pid_t		pid;

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
	child_succeeded(pid, 12000, "10: open succeeded, 11: wrong status");
}

/* ----------------------------------------------------------------------
 * rb_channel_wait_any
 * ----------------------------------------------------------------------
 */

/* One call of test_wait_any: what it asks and what it must end with. */
typedef struct AnyCall
{
	RbMethod	method;
	const char *key;			/* folder or backup id */
	int			timeout_ms;
	RbCode		want;
	const char *first_id;		/* first backup of the reply, or NULL */
	bool		slow;			/* f-slow: completes after every fast one */
	int			returned;		/* times wait_any returned it */
	int			order;			/* position it was returned at */
} AnyCall;

/* What test_wait_any has seen of its calls so far, in the order they came. */
typedef struct AnySeen
{
	int			nreturned;		/* calls wait_any returned */
	int			last_fast;		/* position of the last fast OK call */
	int			first_slow;		/* position of the first slow call */
} AnySeen;

/*
 * start_any_calls
 *		Start every call of test_wait_any on ch, each tagged with its
 *		AnyCall.
 */
static void
start_any_calls(RbChannel *ch, AnyCall *calls, int ncalls)
{
	RbStatus	st;

	for (int i = 0; i < ncalls; i++)
	{
		GetBackupRequest get;
		ListBackupsRequest list;
		RbCall	   *call;

		if (calls[i].method == RB_METHOD_BACKUP_GET)
		{
			make_get(&get, calls[i].key);
			call = rb_call_start(ch, calls[i].method, &get.base, TOKEN_ALL, NULL,
								 calls[i].timeout_ms, &st);
		}
		else
		{
			make_list(&list, calls[i].key, 0, NULL);
			call = rb_call_start(ch, calls[i].method, &list.base, TOKEN_ALL, NULL,
								 calls[i].timeout_ms, &st);
		}
		CHECK(call != NULL, "start %d: %s", i, st.message);
		CHECK(rb_call_tag(call) == NULL, "fresh call has a tag");
		rb_call_set_tag(call, &calls[i]);
	}
}

/*
 * first_backup_id
 *		The id of the first backup in a Get or List reply, or NULL.
 */
static const char *
first_backup_id(RbMethod method, const ProtobufCMessage *reply)
{
	if (reply == NULL)
		return NULL;
	if (method == RB_METHOD_BACKUP_GET)
		return ((const Backup *) reply)->id;
	if (((const ListBackupsResponse *) reply)->n_backups > 0)
		return ((const ListBackupsResponse *) reply)->backups[0]->id;
	return NULL;
}

/*
 * collect_any_call
 *		Check a call wait_any returned (with status st): done, tagged with
 *		one of calls, returned no more often than calls were started; note
 *		its position in *seen, then finish it and check its outcome and
 *		first backup.
 */
static void
collect_any_call(RbCall *call, const RbStatus *st, AnyCall *calls, int ncalls,
				 AnySeen *seen)
{
	AnyCall    *c;
	ProtobufCMessage *reply;
	const char *first;
	RbStatus	fst;

	CHECK_CODE(*st, RB_OK);
	CHECK(is_uuid_v4(st->client_request_id), "no client request id");
	CHECK(rb_call_is_done(call), "returned call not done");
	CHECK(++seen->nreturned <= ncalls, "more calls returned than started");
	c = rb_call_tag(call);
	CHECK(c >= calls && c < calls + ncalls, "tag lost");
	c->returned++;
	c->order = seen->nreturned;
	if (c->slow && seen->nreturned < seen->first_slow)
		seen->first_slow = seen->nreturned;
	if (!c->slow && c->want == RB_OK && seen->nreturned > seen->last_fast)
		seen->last_fast = seen->nreturned;

	reply = rb_call_finish(call, NULL, &fst, NULL);
	first = first_backup_id(c->method, reply);
	if (fst.code != c->want)
		FAIL("%s %s: %s, expected %s (%s)",
			 rb_method_name(c->method), c->key, rb_code_name(fst.code),
			 rb_code_name(c->want), fst.message);
	else if (c->first_id != NULL &&
			 (first == NULL || strcmp(first, c->first_id) != 0))
		FAIL("%s %s: first backup %s, expected %s",
			 rb_method_name(c->method), c->key, first ? first : "none",
			 c->first_id);
	free_msg(reply);
}

/*
 * Twelve calls in flight at once on one channel, with latency faults and a
 * deadline: rb_channel_wait_any returns each exactly once, with its tag,
 * fast ones before slow ones, in about the time of the slowest; then the
 * channel has nothing left to wait for.
 */
void
test_wait_any(void)
{
	AnyCall		calls[] = {
		{RB_METHOD_BACKUP_LIST, "f-slow", CALL_TIMEOUT_MS, RB_OK, "b-slow", true, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-latency", CALL_TIMEOUT_MS, RB_OK, "b-latency", false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "folder-a", CALL_TIMEOUT_MS, RB_OK, "b-a1", false, 0, 0},
		{RB_METHOD_BACKUP_GET, "b-a2", CALL_TIMEOUT_MS, RB_OK, "b-a2", false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-slow", CALL_TIMEOUT_MS, RB_OK, "b-slow", true, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-hang", 400, RB_DEADLINE_EXCEEDED, NULL, false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-latency", CALL_TIMEOUT_MS, RB_OK, "b-latency", false, 0, 0},
		{RB_METHOD_BACKUP_GET, "b-none", CALL_TIMEOUT_MS, RB_NOT_FOUND, NULL, false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "folder-b", CALL_TIMEOUT_MS, RB_OK, "b-b1", false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-slow", CALL_TIMEOUT_MS, RB_OK, "b-slow", true, 0, 0},
		{RB_METHOD_BACKUP_GET, "b-latency", CALL_TIMEOUT_MS, RB_OK, "b-latency", false, 0, 0},
		{RB_METHOD_BACKUP_LIST, "f-latency", CALL_TIMEOUT_MS, RB_OK, "b-latency", false, 0, 0},
	};
	const int	ncalls = (int) (sizeof(calls) / sizeof(calls[0]));
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	AnySeen		seen = {0, -1, 1000};
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	/* Connect first, so that connecting is not part of the time measured. */
	free_msg(do_list(ch, TOKEN_ALL, "folder-empty", 0, NULL, &st, NULL));

	t0 = now_ms();
	start_any_calls(ch, calls, ncalls);
	if (cur_failed)
		return;
	for (;;)
	{
		RbCall	   *call = rb_channel_wait_any(ch, NULL, NULL, &st);

		if (call == NULL)
		{
			CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
			break;
		}
		collect_any_call(call, &st, calls, ncalls, &seen);
		if (cur_failed)
		{
			rb_channel_close(ch);
			return;
		}
	}
	elapsed = now_ms() - t0;

	for (int i = 0; i < ncalls; i++)
		CHECK(calls[i].returned == 1, "call %d (%s) returned %d times", i,
			  calls[i].key, calls[i].returned);
	CHECK(seen.nreturned == ncalls, "%d of %d calls returned",
		  seen.nreturned, ncalls);
	CHECK(seen.last_fast < seen.first_slow,
		  "a fast call came back (at %d) after a 700 ms one (at %d)",
		  seen.last_fast, seen.first_slow);
	CHECK(elapsed >= 690 && elapsed < 1500 * slow,
		  "12 calls of at most 700 ms took %" PRId64 " ms", elapsed);
	rb_channel_close(ch);
}

/*
 * wait_any skips abandoned calls, a call already collected by rb_call_wait,
 * and one abandoned after it completed; a completion recorded during
 * another wait is returned at once.
 */
void
test_wait_any_abandoned(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest hang,
				mid;
	GetBackupRequest get,
				get2;
	RbCall	   *hang1,
			   *hang2,
			   *mid_call,
			   *get_call,
			   *done_abandoned,
			   *call;
	int64_t		t0;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&hang, "f-hang", 0, NULL);
	make_list(&mid, "f-latency", 0, NULL);
	make_get(&get, "b-a1");
	make_get(&get2, "b-a2");

	hang1 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang.base, TOKEN_ALL, NULL,
						   0, &st);
	CHECK(hang1 != NULL, "start: %s", st.message);
	hang2 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang.base, TOKEN_ALL, NULL,
						   0, &st);
	CHECK(hang2 != NULL, "start: %s", st.message);
	done_abandoned = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get2.base,
								   TOKEN_ALL, NULL, CALL_TIMEOUT_MS, &st);
	CHECK(done_abandoned != NULL, "start: %s", st.message);
	mid_call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &mid.base, TOKEN_ALL, NULL,
							 CALL_TIMEOUT_MS, &st);
	CHECK(mid_call != NULL, "start: %s", st.message);
	get_call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get.base, TOKEN_ALL, NULL,
							 CALL_TIMEOUT_MS, &st);
	CHECK(get_call != NULL, "start: %s", st.message);
	rb_call_abandon(hang1);
	rb_call_abandon(hang2);

	/* waiting for mid records the Gets' completions too */
	CHECK(rb_call_wait(mid_call, NULL, NULL, &st), "wait: %s", st.message);
	CHECK(rb_call_is_done(get_call) && rb_call_is_done(done_abandoned),
		  "Gets not done after the 300 ms call");
	/* It has completed, so abandoning it frees it at once. */
	rb_call_abandon(done_abandoned);

	/* the Get is returned at once; mid was collected by rb_call_wait */
	t0 = now_ms();
	call = rb_channel_wait_any(ch, NULL, NULL, &st);
	CHECK(call == get_call, "wait_any returned %p, not the Get", (void *) call);
	CHECK(now_ms() - t0 < 50, "a completed call took %" PRId64 " ms to return",
		  now_ms() - t0);
	free_msg(rb_call_finish(call, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);

	/* nothing else: the hanging calls are abandoned, mid collected */
	t0 = now_ms();
	call = rb_channel_wait_any(ch, NULL, NULL, &st);
	CHECK(call == NULL, "wait_any returned an abandoned or collected call");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	CHECK(now_ms() - t0 < 50, "empty wait took %" PRId64 " ms", now_ms() - t0);

	free_msg(rb_call_finish(mid_call, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);

	/* the abandoned calls' completions are drained by a later wait */
	free_msg(do_get(ch, TOKEN_ALL, "b-a1", &st));
	CHECK_CODE(st, RB_OK);
	rb_channel_close(ch);
}

/*
 * When the give-up hook says stop, wait_any returns GAVE_UP within a slice
 * and cancels nothing: the hanging calls are still in flight afterwards
 * (a second wait gives up again rather than returning them cancelled), and
 * a later call is returned while they go on hanging.
 */
void
test_wait_any_give_up(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest hang;
	GetBackupRequest get;
	RbCall	   *h1,
			   *h2,
			   *g,
			   *call;
	GiveUp		gu;
	int64_t		returned_at;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&hang, "f-hang", 0, NULL);
	make_get(&get, "b-a1");
	h1 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang.base, TOKEN_ALL, NULL,
						   0, &st);
	CHECK(h1 != NULL, "start: %s", st.message);
	h2 = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &hang.base, TOKEN_ALL, NULL,
						   0, &st);
	CHECK(h2 != NULL, "start: %s", st.message);

	memset(&gu, 0, sizeof(gu));
	gu.start = now_ms();
	gu.after_ms = 300;
	call = rb_channel_wait_any(ch, give_up_after, &gu, &st);
	returned_at = now_ms();
	CHECK(call == NULL, "a hanging call was returned");
	CHECK_CODE(st, RB_LOCAL_GAVE_UP);
	CHECK(gu.said_true_at > 0, "hook never said true");
	CHECK(returned_at - gu.said_true_at < 50 * slow,
		  "returned %" PRId64 " ms after the hook said stop",
		  returned_at - gu.said_true_at);
	CHECK(gu.calls >= 2, "hook asked %d times in 300 ms", gu.calls);
	CHECK(gu.max_gap <= 200 * slow, "hook asked %" PRId64 " ms apart",
		  gu.max_gap);
	CHECK(!rb_call_is_done(h1) && !rb_call_is_done(h2),
		  "the hanging calls were cancelled");

	/* still in flight: another wait gives up again */
	memset(&gu, 0, sizeof(gu));
	gu.start = now_ms();
	gu.after_ms = 200;
	call = rb_channel_wait_any(ch, give_up_after, &gu, &st);
	CHECK(call == NULL, "a call came back: %s",
		  call ? "cancelled by the give-up" : "");
	CHECK_CODE(st, RB_LOCAL_GAVE_UP);

	/* a new call comes back while they hang */
	g = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get.base, TOKEN_ALL, NULL,
					  CALL_TIMEOUT_MS, &st);
	CHECK(g != NULL, "start: %s", st.message);
	call = rb_channel_wait_any(ch, NULL, NULL, &st);
	CHECK(call == g, "wait_any did not return the Get");
	free_msg(rb_call_finish(call, NULL, &st, NULL));
	CHECK_CODE(st, RB_OK);

	/* the caller decides: abandon them */
	rb_call_abandon(h1);
	rb_call_abandon(h2);
	call = rb_channel_wait_any(ch, NULL, NULL, &st);
	CHECK(call == NULL && st.code == RB_LOCAL_BAD_OPTION,
		  "wait_any after abandoning everything: %s", rb_code_name(st.code));
	rb_channel_close(ch);
}

/* A channel with no call, and no channel at all. */
void
test_wait_any_empty(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	RbCall	   *call;
	int64_t		t0;

	CHECK(ch != NULL, "open: %s", st.message);
	t0 = now_ms();
	call = rb_channel_wait_any(ch, NULL, NULL, &st);
	CHECK(call == NULL, "a call from an empty channel");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	CHECK(now_ms() - t0 < 50, "empty wait took %" PRId64 " ms", now_ms() - t0);
	call = rb_channel_wait_any(NULL, NULL, NULL, &st);
	CHECK(call == NULL, "a call from no channel");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	CHECK(rb_call_tag(NULL) == NULL, "tag of no call");
	/* A NULL call is ignored: this must not crash. */
	rb_call_set_tag(NULL, &st);
	rb_channel_close(ch);
}

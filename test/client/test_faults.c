/*-------------------------------------------------------------------------
 *
 * test_faults.c
 *		  Client tests: injected faults, deadlines, local errors and
 *		  recovery after an outage.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_faults.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* ----------------------------------------------------------------------
 * Faults
 * ----------------------------------------------------------------------
 */
void
test_fault_latency(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	/* Connect first, so that connecting is not part of the time measured. */
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
												  &req.base, TOKEN_ALL, NULL, 100,
												  NULL, NULL, NULL, &st, NULL);
		CHECK(r == NULL, "reply despite the deadline");
		CHECK_CODE(st, RB_DEADLINE_EXCEEDED);
	}
	rb_channel_close(ch);
}

void
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

void
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

void
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

void
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
void
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

void
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

void
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
void
test_fault_oversize(void)
{
	RbStatus	st;
	RbChannel  *small = open_plain(65536, &st);
	RbChannel  *big;
	ListBackupsResponse *r;
	size_t		bytes = 0;

	CHECK(small != NULL, "open: %s", st.message);
	r = do_list(small, TOKEN_ALL, "f-oversize", 0, NULL, &st, NULL);
	CHECK(r == NULL, "oversize reply accepted with a 64 KiB limit");
	CHECK_CODE(st, RB_LOCAL_REPLY_TOO_LARGE);
	/* The server sent the reply: the limit that refused it is the client's. */
	if (!check_logged(&st, "status", "\"OK\""))
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
void
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
	r = rb_call_unary(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL, NULL, 300,
					  NULL, NULL, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	CHECK(r == NULL, "reply from a hanging call");
	CHECK_CODE(st, RB_DEADLINE_EXCEEDED);
	CHECK(elapsed >= 290 && elapsed < 1000 * slow,
		  "deadline of 300 ms hit after %" PRId64 " ms", elapsed);
	rb_channel_close(ch);
}

/* Wrong request type, bad token text, unreachable server. */
void
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
	call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &get_req.base, TOKEN_ALL, NULL,
						 1000, &st);
	CHECK(call == NULL, "List started with a GetBackupRequest");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, NULL, TOKEN_ALL, NULL, 1000, &st);
	CHECK(call == NULL, "started without a request");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &get_req.base,
						 "secret\r\nx-evil: 1", NULL, 1000, &st);
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
		FAIL("bind: %s", strerror(errno));
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
	r = rb_call_unary(ch, RB_METHOD_BACKUP_GET, &get_req.base, TOKEN_ALL, NULL,
					  5000, NULL, NULL, NULL, &st, NULL);
	elapsed = now_ms() - t0;
	rb_channel_close(ch);
	close(sock);
	CHECK(r == NULL, "reply from nowhere");
	CHECK_CODE(st, RB_UNAVAILABLE);
	CHECK(elapsed < 4000, "UNAVAILABLE took %" PRId64 " ms", elapsed);
}

/* ----------------------------------------------------------------------
 * Recovery after an outage
 * ----------------------------------------------------------------------
 */

/*
 * How long the outage of test_reconnect_after_outage lasts.  With gRPC's
 * default backoff the channel's connection attempts would come about 1,
 * 2.6, 5.2, 9.3 s after the first failure (each +-20 %): after 6 s of
 * outage the next one is some 2 to 4 s away.
 */
#define RB_OUTAGE_MS 6000

/*
 * free_port
 *		A TCP port of 127.0.0.1 that nobody listened on a moment ago, or 0.
 */
static int
free_port(void)
{
	int			sock = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr;
	socklen_t	addrlen = sizeof(addr);
	int			port = 0;

	if (sock < 0)
		return 0;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(sock, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
		getsockname(sock, (struct sockaddr *) &addr, &addrlen) == 0)
		port = ntohs(addr.sin_port);
	close(sock);
	return port;
}

/*
 * start_emulator
 *		Start a plaintext emulator with the test data on 127.0.0.1:port and
 *		wait until it is listening (its port file is written).  Returns its
 *		pid, or -1.
 */
static pid_t
start_emulator(int port, const char *port_file)
{
	char		listen[64];
	pid_t		pid;
	int64_t		start;

	unlink(port_file);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
	{
		int			devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
		{
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execl(emulator_program, emulator_program, "--listen", listen,
			  "--port-file", port_file, "--data", data_file,
			  "--token", TOKEN_ALL "=*", (char *) NULL);
		_exit(127);
	}
	start = now_ms();
	for (;;)
	{
		char	   *text = read_file(port_file);
		bool		ready = text != NULL && atoi(text) == port;
		int			wstatus;

		free(text);
		if (ready)
			return pid;
		if (waitpid(pid, &wstatus, WNOHANG) == pid ||
			now_ms() - start > 10000)
		{
			kill(pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			return -1;
		}
		usleep(10000);
	}
}

/*
 * stop_emulator
 *		Stop an emulator started by start_emulator (SIGTERM, then SIGKILL
 *		after 5 s).
 */
static void
stop_emulator(pid_t pid)
{
	int			wstatus;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	/* wait_child kills it when it has not ended within 5 s. */
	(void) wait_child(pid, 5000, &wstatus);
}

/*
 * open_before_outage
 *		A channel to the emulator on port that has served three Get calls.
 *		On a failure it is recorded and the channel (if any) returned
 *		anyway, for the caller to close.
 */
static RbChannel *
open_before_outage(int port)
{
	char		target[64];
	RbStatus	st;
	RbChannel  *ch;

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	ch = open_plain_to(target, &st);
	for (int i = 0; ch != NULL && i < 3; i++)
	{
		free_msg(do_get(ch, TOKEN_ALL, "b-a1", &st));
		if (st.code != RB_OK)
			break;
	}
	if (ch == NULL || st.code != RB_OK)
		FAIL("before the outage: %s (%s)", rb_code_name(st.code), st.message);
	return ch;
}

/*
 * call_through_outage
 *		Call every 200 ms for RB_OUTAGE_MS while the server is down; each
 *		call must fail with UNAVAILABLE or DEADLINE_EXCEEDED.  Returns how
 *		many did.
 */
static int
call_through_outage(RbChannel *ch)
{
	int			nfailed = 0;
	int64_t		down_at = now_ms();

	while (now_ms() - down_at < RB_OUTAGE_MS)
	{
		GetBackupRequest req;
		ProtobufCMessage *r;
		RbStatus	st;

		make_get(&req, "b-a1");
		r = rb_call_unary(ch, RB_METHOD_BACKUP_GET, &req.base, TOKEN_ALL, NULL,
						  1000, NULL, NULL, NULL, &st, NULL);
		free_msg(r);
		if (r != NULL ||
			(st.code != RB_UNAVAILABLE && st.code != RB_DEADLINE_EXCEEDED))
		{
			FAIL("call during the outage: %s (%s)", rb_code_name(st.code),
				 st.message);
			break;
		}
		nfailed++;
		usleep(200000);
	}
	return nfailed;
}

/*
 * first_success_at
 *		Call every 100 ms until a call succeeds, for at most 10 s.  Returns
 *		when (now_ms) the first one did, or -1 with *st the last failure.
 */
static int64_t
first_success_at(RbChannel *ch, RbStatus *st)
{
	int64_t		start = now_ms();

	while (now_ms() - start < 10000)
	{
		GetBackupRequest req;
		ProtobufCMessage *r;

		make_get(&req, "b-a1");
		r = rb_call_unary(ch, RB_METHOD_BACKUP_GET, &req.base, TOKEN_ALL, NULL,
						  500, NULL, NULL, NULL, st, NULL);
		free_msg(r);
		if (r != NULL)
			return now_ms();
		usleep(100000);
	}
	return -1;
}

/*
 * A channel that saw the server down for 6 s serves a call within 1.5 s of
 * the server coming back on the same port.  With gRPC's default reconnect
 * backoff (1 s growing 1.6 times per failure to 120 s) the next connection
 * attempt would be seconds away; rb_channel_open caps it at 1 s
 * (RB_RECONNECT_MAX_BACKOFF_MS in rb_client.c), and gRPC's backup poller,
 * which notices a connection attempt's outcome while no call waits, runs
 * every 200 ms instead of 5 s (RB_BACKUP_POLL_INTERVAL_MS).
 */
void
test_reconnect_after_outage(void)
{
	char		port_file[] = "/tmp/rb_outage_port.XXXXXX";
	int			fd;
	int			port;
	pid_t		pid;
	RbStatus	st;
	RbChannel  *ch;
	int			nfailed;
	int64_t		up_at,
				ok_at;

	CHECK(emulator_program != NULL && data_file != NULL,
		  "RB_TEST_EMULATOR and RB_TEST_DATA not set");
	fd = mkstemp(port_file);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	close(fd);
	port = free_port();
	CHECK(port > 0, "no free port");
	pid = start_emulator(port, port_file);
	if (pid < 0)
	{
		unlink(port_file);
		FAIL("the emulator did not start on port %d", port);
		return;
	}
	ch = open_before_outage(port);
	if (cur_failed)
		goto out;

	stop_emulator(pid);
	pid = -1;
	nfailed = call_through_outage(ch);
	if (cur_failed)
		goto out;

	/* The server comes back on the same port. */
	pid = start_emulator(port, port_file);
	if (pid < 0)
	{
		FAIL("the emulator did not restart on port %d", port);
		goto out;
	}
	up_at = now_ms();
	ok_at = first_success_at(ch, &st);
	if (ok_at < 0)
		FAIL("no call succeeded within 10 s of the restart: %s (%s)",
			 rb_code_name(st.code), st.message);
	else if (ok_at - up_at > 1500 * slow)
		FAIL("first successful call %" PRId64 " ms after the restart "
			 "(more than 1500 ms; %d calls failed during the outage)",
			 ok_at - up_at, nfailed);

out:
	if (ch != NULL)
		rb_channel_close(ch);
	stop_emulator(pid);
	unlink(port_file);
}

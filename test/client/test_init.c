/*-------------------------------------------------------------------------
 *
 * test_init.c
 *		  Client tests: refused options and gRPC initialisation; these
 *		  must run before any channel is opened in the process.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_init.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

/* ----------------------------------------------------------------------
 * Tests that must run before gRPC is initialised in this process
 * ----------------------------------------------------------------------
 */

/*
 * Nothing has started gRPC yet: one thread only.  Bad options are refused
 * before gRPC is initialised.
 */
void
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
void
test_fork_before_init(void)
{
	pid_t		pid;

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

		alarm(20);				/* ends the child if it hangs */
		ch = open_plain(0, &st);
		if (ch == NULL)
			_exit(10);
		b = do_get(ch, TOKEN_ALL, "b-a1", &st);
		rc = (b == NULL) ? 11 : (check_b_a1(b) != NULL) ? 12 : 0;
		free_msg(b);
		rb_channel_close(ch);
		_exit(rc);
	}
	if (!child_succeeded(pid, 15000, "10 open, 11 call, 12 values"))
		return;
	CHECK(count_threads() == 1, "parent has %d threads after fork test",
		  count_threads());
}

/*
 * gRPC's own log, switched on with http tracing (GRPC_TRACE is read at
 * grpc_init, so in a child that has not initialised gRPC yet), never shows
 * the token, though it prints the headers of the call.
 */
void
test_grpc_log_hides_token(void)
{
	char		path[] = "/tmp/rb_grpc_log.XXXXXX";
	int			fd = mkstemp(path);
	pid_t		pid;
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

		alarm(20);				/* ends the child if it hangs */
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
	/* The child's alarm ends it after 20 s at the latest. */
	if (!child_succeeded(pid, 25000, "10 open, 11 call"))
		return;
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
void
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

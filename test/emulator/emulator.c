/*-------------------------------------------------------------------------
 *
 * emulator.c
 *		  Managed Redis backup API emulator: command line and gRPC server
 *		  loop.
 *
 * A single-threaded event loop over one gRPC completion queue.  Every call
 * is requested as an unregistered call (grpc_server_request_call), so any
 * method path reaches service.c, which answers UNIMPLEMENTED for unknown
 * ones.  Each call has up to three batches in flight, each with its own
 * tag:
 *
 *		RECV	RECV_MESSAGE: the request; then the reply is decided
 *		CLOSE	RECV_CLOSE_ON_SERVER: completes when the call ends, also when
 *				the client cancels or its deadline passes (this is how hung
 *				and delayed calls are noticed and freed)
 *		SEND	SEND_INITIAL_METADATA + SEND_MESSAGE (OK only)
 *				+ SEND_STATUS_FROM_SERVER; x-request-id travels in the
 *				headers of a success and in the trailers of an error (a
 *				"trailers-only" response, see send_reply)
 *
 * A call is freed when no batch is in flight and it waits for no timer.
 * Operations (operations.c) finish in the loop at their due time, which
 * the wait never sleeps past either.
 * Delayed replies (latency fault) sit in a timer list ordered by due time,
 * in microseconds from the call's arrival; the completion-queue wait never
 * sleeps past the first one (see next_event), nor past 100 ms, so signals
 * are noticed promptly.  SIGTERM and SIGINT only set a
 * flag; the loop then shuts the server down, cancels every call, drains
 * the queue and exits 0.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "emulator.h"

/* Calls requested from the server at any time (waiting for clients). */
#define NUM_PENDING_REQUESTS 32

/* Longest wait in the completion queue between signal checks. */
#define SLICE_MS 100

/*
 * How late gRPC's completion-queue deadline may wake us: it works in whole
 * milliseconds, rounding the deadline up and its own clock down, so a wait
 * of 20 ms becomes epoll_wait(..., 21) and ends 1-2 ms late.  The queue is
 * asked to wake this much before a timer is due; the rest is waited in
 * sleeps of FINE_STEP_US between looks at the queue.
 */
#define WAKE_MARGIN_US 2000
#define FINE_STEP_US 200

typedef enum TagKind
{
	TAG_NEW,					/* grpc_server_request_call completed */
	TAG_RECV,					/* request message received */
	TAG_CLOSE,					/* call closed on the server */
	TAG_SEND,					/* reply sent */
	TAG_SHUTDOWN				/* server shutdown complete */
} TagKind;

typedef struct EmuCall EmuCall;

typedef struct EmuTag
{
	EmuCall    *call;
	TagKind		kind;
} EmuTag;

struct EmuCall
{
	EmuTag		tags[4];		/* indexed by TAG_NEW .. TAG_SEND */

	/* filled by grpc_server_request_call */
	grpc_call  *call;
	grpc_call_details details;
	grpc_metadata_array request_md;

	/* receiving */
	grpc_byte_buffer *recv_buf;
	int			cancelled;		/* from RECV_CLOSE_ON_SERVER */
	int64_t		start_us;		/* when the call arrived (wall clock) */
	int64_t		arrival_us;		/* the same, monotonic: delays count from
								 * here */

	/* state */
	int			pending;		/* batches in flight */
	bool		started;		/* request_call completed */
	bool		closed;			/* CLOSE completed */
	bool		timer_armed;	/* waiting in the timer list */
	int64_t		due_us;			/* monotonic */
	EmuCall    *timer_next;

	/* reply, kept alive until SEND completes */
	EmuReply	reply;
	grpc_metadata initial_md[1];	/* x-request-id, headers or trailers */
	grpc_slice	status_details;
	grpc_byte_buffer *send_buf;
	bool		reply_built;

	/* list of all live calls */
	EmuCall    *prev;
	EmuCall    *next;
};

/* Options from the command line. */
typedef struct EmuOptions
{
	const char *listen;
	const char *log_file;
	const char *port_file;
	const char *tls_cert;
	const char *tls_key;
	const char *metadata_listen;
	const char *metadata_port_file;
	const char *metadata_sa;
} EmuOptions;

static volatile sig_atomic_t stop_requested;

static grpc_server *server;
static grpc_completion_queue *cq;
static EmuCall *live_calls;
static int	nlive;
static EmuCall *timers;
static bool shutting_down;
static bool shutdown_done;
static EmuTag shutdown_tag = {NULL, TAG_SHUTDOWN};

/*
 * usage
 *		Print the command line synopsis and exit.
 */
static void usage(FILE *out, int code) __attribute__((noreturn));

static void
usage(FILE *out, int code)
{
	fprintf(out,
			"usage: %s [--listen HOST:PORT] [--data FILE]... [--generate FOLDER=COUNT]...\n"
			"       [--generate-cloud CLOUD=NFOLDERS[:BACKUPS_PER_FOLDER]]...\n"
			"       [--token TOKEN=GRANTS]... [--log FILE] [--port-file FILE]\n"
			"       [--tls-cert PEMFILE --tls-key PEMFILE] [--fault SPEC]...\n"
			"       [--service-account SA_ID=GRANTS]... [--sa-key KEY_ID=SA_ID:PUBLIC_PEM]...\n"
			"       [--token-lifetime SECONDS] [--jwt-clock-offset SECONDS]\n"
			"       [--metadata-listen HOST:PORT]\n"
			"       [--metadata-port-file FILE] [--metadata-sa SA_ID]\n"
			"       [--metadata-mode ok|404|500|garbage|slow]\n"
			"       [--preencoded PAGE_SIZE] [--preencoded-max-mb MB]\n"
			"       [--quota-inflight K] [--quota-rate R]\n"
			"       [--operation-ms MS] [--read-only TOKEN_OR_SA_ID]...\n"
			"\n"
			"GRANTS: * or FOLDER_OR_CLOUD[,FOLDER_OR_CLOUD...] (empty for --service-account).\n"
			"Faults (SPEC = KIND[=ARG][@method:METHOD][@KEY]): latency=MS, unavailable[=N], exhausted[=N],\n"
			"status=CODE_NAME[:N], hang[=N], garbage[=N], token_loop, unknown_fields,\n"
			"oversize=BYTES, echo_token, op_error=CODE_NAME[:N], lose_reply[=N].\n"
			"Operations of BackupService.Delete and ClusterService.Backup take MS ms\n"
			"(default 300); --read-only principals may read but not change.\n"
			"Quotas, per bearer token: at most K calls in flight, at most R calls a second;\n"
			"beyond them RESOURCE_EXHAUSTED \"The request limit exceeded.\".\n"
			"See test/emulator/README.md.\n",
			EMU_PROGNAME);
	exit(code);
}

/*
 * handle_signal
 *		SIGTERM/SIGINT: ask the loop to stop.
 */
static void
handle_signal(int signo)
{
	stop_requested = 1;
}

/*
 * parse_generate
 *		--generate FOLDER=COUNT
 */
static void
parse_generate(const char *arg)
{
	const char *eq = strrchr(arg, '=');
	char	   *folder;
	char	   *end;
	long long	count;

	if (eq == NULL || eq == arg || eq[1] < '0' || eq[1] > '9')
		emu_fatal("--generate %s: expected FOLDER=COUNT", arg);
	errno = 0;
	count = strtoll(eq + 1, &end, 10);
	if (*end != '\0' || errno != 0 || count < 0 || count > EMU_MAX_GENERATED)
		emu_fatal("--generate %s: COUNT must be 0..%d", arg, EMU_MAX_GENERATED);
	folder = emu_malloc(eq - arg + 1);
	memcpy(folder, arg, eq - arg);
	folder[eq - arg] = '\0';
	emu_data_add_generated(folder, count);
	free(folder);
}

/*
 * The options, each taking a value: a field of cmdline it is stored in,
 * or a function that registers it at once (data, tokens, faults, ...).
 */
typedef struct OptionInfo
{
	const char *name;
	const char **field;			/* NULL: apply registers the value */
	void		(*apply) (const char *value);
} OptionInfo;

static EmuOptions cmdline;

static const OptionInfo options[] = {
	{"--listen", &cmdline.listen, NULL},
	{"--data", NULL, emu_data_load_file},
	{"--generate", NULL, parse_generate},
	{"--token", NULL, emu_service_add_token},
	{"--log", &cmdline.log_file, NULL},
	{"--port-file", &cmdline.port_file, NULL},
	{"--tls-cert", &cmdline.tls_cert, NULL},
	{"--tls-key", &cmdline.tls_key, NULL},
	{"--fault", NULL, emu_fault_add},
	{"--generate-cloud", NULL, emu_data_add_generated_cloud},
	{"--service-account", NULL, emu_iam_add_service_account},
	{"--sa-key", NULL, emu_iam_add_sa_key},
	{"--token-lifetime", NULL, emu_iam_set_token_lifetime},
	{"--jwt-clock-offset", NULL, emu_iam_set_jwt_clock_offset},
	{"--metadata-listen", &cmdline.metadata_listen, NULL},
	{"--metadata-port-file", &cmdline.metadata_port_file, NULL},
	{"--metadata-sa", &cmdline.metadata_sa, NULL},
	{"--metadata-mode", NULL, emu_metadata_set_mode},
	{"--preencoded", NULL, emu_service_set_preencoded},
	{"--preencoded-max-mb", NULL, emu_service_set_preencoded_max},
	{"--quota-inflight", NULL, emu_quota_set_inflight},
	{"--quota-rate", NULL, emu_quota_set_rate},
	{"--operation-ms", NULL, emu_operations_set_duration},
	{"--read-only", NULL, emu_service_add_read_only},
};

/*
 * find_option
 *		The option called name, or NULL.
 */
static const OptionInfo *
find_option(const char *name)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

/*
 * check_options
 *		The checks that need the whole command line.
 */
static void
check_options(const EmuOptions *opts)
{
	if ((opts->tls_cert == NULL) != (opts->tls_key == NULL))
		emu_fatal("--tls-cert and --tls-key must be given together");
	if (strrchr(opts->listen, ':') == NULL)
		emu_fatal("--listen %s: expected HOST:PORT", opts->listen);
	if (opts->metadata_port_file != NULL && opts->metadata_listen == NULL)
		emu_fatal("--metadata-port-file needs --metadata-listen");
	if (opts->metadata_listen != NULL && strrchr(opts->metadata_listen, ':') == NULL)
		emu_fatal("--metadata-listen %s: expected HOST:PORT", opts->metadata_listen);
	emu_iam_check_config(opts->metadata_sa);
	emu_service_check_read_only();
}

/*
 * parse_args
 *		Parse the command line into cmdline; data, tokens and faults are
 *		registered as they come.
 */
static void
parse_args(int argc, char **argv)
{
	memset(&cmdline, 0, sizeof(cmdline));
	cmdline.listen = "127.0.0.1:0";

	for (int i = 1; i < argc; i++)
	{
		const char *opt = argv[i];
		const char *val;
		const OptionInfo *info;

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
			usage(stdout, 0);
		if (strncmp(opt, "--", 2) != 0)
		{
			fprintf(stderr, "%s: unexpected argument \"%s\"\n", EMU_PROGNAME, opt);
			usage(stderr, EMU_EXIT_USAGE);
		}
		/* Every option takes a value, as --opt VALUE or --opt=VALUE. */
		val = strchr(opt, '=');
		if (val != NULL)
		{
			size_t		len = val - opt;
			static char name[64];

			if (len >= sizeof(name))
				len = sizeof(name) - 1;
			memcpy(name, opt, len);
			name[len] = '\0';
			opt = name;
			val++;
		}
		else
		{
			if (i + 1 >= argc)
				emu_fatal("option %s needs a value", opt);
			val = argv[++i];
		}

		info = find_option(opt);
		if (info == NULL)
		{
			fprintf(stderr, "%s: unknown option \"%s\"\n", EMU_PROGNAME, opt);
			usage(stderr, EMU_EXIT_USAGE);
		}
		if (info->field != NULL)
			*info->field = val;
		else
			info->apply(val);
	}
	check_options(&cmdline);
}

/*
 * start_batch
 *		grpc_call_start_batch with the call's tag of this kind; counts the
 *		batch as in flight.
 */
static bool
start_batch(EmuCall *c, const grpc_op *ops, size_t nops, TagKind kind)
{
	grpc_call_error err;

	err = grpc_call_start_batch(c->call, ops, nops, &c->tags[kind], NULL);
	if (err != GRPC_CALL_OK)
	{
		fprintf(stderr, "%s: grpc_call_start_batch failed: %d\n",
				EMU_PROGNAME, (int) err);
		return false;
	}
	c->pending++;
	return true;
}

/*
 * request_new_call
 *		Ask the server for one more incoming call.
 */
static void
request_new_call(void)
{
	EmuCall    *c = emu_malloc(sizeof(EmuCall));
	grpc_call_error err;

	memset(c, 0, sizeof(*c));
	for (int k = 0; k < 4; k++)
	{
		c->tags[k].call = c;
		c->tags[k].kind = (TagKind) k;
	}
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_md);
	c->next = live_calls;
	if (live_calls)
		live_calls->prev = c;
	live_calls = c;
	nlive++;

	err = grpc_server_request_call(server, &c->call, &c->details, &c->request_md,
								   cq, cq, &c->tags[TAG_NEW]);
	if (err != GRPC_CALL_OK)
	{
		fprintf(stderr, "%s: grpc_server_request_call failed: %d\n",
				EMU_PROGNAME, (int) err);
		exit(1);
	}
	c->pending++;
}

/*
 * free_call
 *		Release everything a call holds.
 */
static void
free_call(EmuCall *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		live_calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nlive--;

	if (c->recv_buf)
		grpc_byte_buffer_destroy(c->recv_buf);
	if (c->send_buf)
		grpc_byte_buffer_destroy(c->send_buf);
	if (c->reply_built)
	{
		grpc_slice_unref(c->initial_md[0].value);
		grpc_slice_unref(c->status_details);
	}
	emu_reply_free(&c->reply);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->request_md);
	if (c->call)
		grpc_call_unref(c->call);
	free(c);
}

/*
 * maybe_free_call
 *		Free a call once nothing refers to it any more.
 */
static void
maybe_free_call(EmuCall *c)
{
	if (c->pending == 0 && !c->timer_armed)
		free_call(c);
}

/*
 * timer_add
 *		Put a call in the timer list, ordered by due time.
 */
static void
timer_add(EmuCall *c, int64_t due_us)
{
	EmuCall   **p = &timers;

	c->due_us = due_us;
	while (*p != NULL && (*p)->due_us <= due_us)
		p = &(*p)->timer_next;
	c->timer_next = *p;
	*p = c;
	c->timer_armed = true;
}

/*
 * timer_remove
 *		Take a call out of the timer list.
 */
static void
timer_remove(EmuCall *c)
{
	EmuCall   **p = &timers;

	while (*p != NULL && *p != c)
		p = &(*p)->timer_next;
	if (*p == c)
		*p = c->timer_next;
	c->timer_next = NULL;
	c->timer_armed = false;
}

/*
 * send_reply
 *		Start the SEND batch for the decided reply.
 */
static void
send_reply(EmuCall *c)
{
	grpc_op		ops[3];
	size_t		nops = 0;

	memset(ops, 0, sizeof(ops));
	c->initial_md[0].key = grpc_slice_from_static_string("x-request-id");
	c->initial_md[0].value = grpc_slice_from_copied_string(c->reply.request_id);
	c->status_details = grpc_slice_from_copied_string(c->reply.message);
	c->reply_built = true;

	/*
	 * Write the log line before the status goes out, so that a client
	 * that reads the log after its call has ended finds the line there.
	 */
	emu_log_write(c->reply.log_body, c->start_us, emu_wall_us(), false);
	emu_quota_release(&c->reply.quota);

	/*
	 * x-request-id goes in the headers of a successful reply.  An error
	 * reply sends empty initial metadata and carries x-request-id in the
	 * trailers: chttp2 only folds headers and trailers into one
	 * "trailers-only" response (the only kind gRPC's retry policy retries)
	 * when the initial metadata is empty.
	 */
	ops[nops].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->reply.code == GRPC_STATUS_OK)
	{
		ops[nops].data.send_initial_metadata.count = 1;
		ops[nops].data.send_initial_metadata.metadata = c->initial_md;
	}
	nops++;

	if (c->reply.code == GRPC_STATUS_OK)
	{
		grpc_slice	payload;

		/* The slice frees the payload when it is done, so it now owns it. */
		if (c->reply.payload != NULL)
			payload = grpc_slice_new(c->reply.payload, c->reply.payload_len, free);
		else
			payload = grpc_empty_slice();
		c->reply.payload = NULL;
		c->send_buf = grpc_raw_byte_buffer_create(&payload, 1);
		grpc_slice_unref(payload);

		ops[nops].op = GRPC_OP_SEND_MESSAGE;
		ops[nops].data.send_message.send_message = c->send_buf;
		nops++;
	}

	ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[nops].data.send_status_from_server.status = c->reply.code;
	ops[nops].data.send_status_from_server.status_details = &c->status_details;
	if (c->reply.code != GRPC_STATUS_OK)
	{
		ops[nops].data.send_status_from_server.trailing_metadata_count = 1;
		ops[nops].data.send_status_from_server.trailing_metadata = c->initial_md;
	}
	nops++;

	start_batch(c, ops, nops, TAG_SEND);
}

/*
 * find_metadata
 *		The value of the first request metadata entry named key.
 */
static bool
find_metadata(const grpc_metadata_array *md, const char *key, EmuBytes *value)
{
	for (size_t i = 0; i < md->count; i++)
	{
		if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
		{
			value->data = (const char *) GRPC_SLICE_START_PTR(md->metadata[i].value);
			value->len = GRPC_SLICE_LENGTH(md->metadata[i].value);
			return true;
		}
	}
	return false;
}

/*
 * handle_request
 *		The request message has arrived (or the client sent none): decide
 *		the reply and send it now, later, or never.
 */
static void
handle_request(EmuCall *c)
{
	EmuRequest	req;
	grpc_slice	body = grpc_empty_slice();
	bool		have_body = false;
	char	   *peer;

	memset(&req, 0, sizeof(req));
	req.method.data = (const char *) GRPC_SLICE_START_PTR(c->details.method);
	req.method.len = GRPC_SLICE_LENGTH(c->details.method);
	req.has_auth = find_metadata(&c->request_md, "authorization", &req.auth);
	req.has_client_request_id = find_metadata(&c->request_md, "x-client-request-id",
											  &req.client_request_id);
	req.has_idempotency_key = find_metadata(&c->request_md, "idempotency-key",
											&req.idempotency_key);
	peer = grpc_call_get_peer(c->call);
	req.peer = peer;
	if (c->recv_buf != NULL)
	{
		grpc_byte_buffer_reader reader;

		if (grpc_byte_buffer_reader_init(&reader, c->recv_buf))
		{
			body = grpc_byte_buffer_reader_readall(&reader);
			grpc_byte_buffer_reader_destroy(&reader);
			have_body = true;
			req.body = GRPC_SLICE_START_PTR(body);
			req.body_len = GRPC_SLICE_LENGTH(body);
			/*
			 * An empty message is valid protobuf, and a NULL body would tell
			 * service.c that none came, so keep the pointer non-NULL.
			 */
			if (req.body == NULL)
				req.body = (const uint8_t *) "";
		}
	}

	emu_service_handle(&req, &c->reply);
	gpr_free(peer);
	if (have_body)
		grpc_slice_unref(body);

	if (c->reply.hang)
	{
		/*
		 * A hung call never ends on our side, so it is logged now, without
		 * end_us; its CLOSE frees it when the client gives up.
		 */
		emu_log_write(c->reply.log_body, c->start_us, -1, false);
		return;
	}
	if (c->reply.delay_ms > 0 && !shutting_down)
		timer_add(c, c->arrival_us + c->reply.delay_ms * 1000);
	else
		send_reply(c);
}

/*
 * start_call
 *		A new call arrived: start its RECV and CLOSE batches.
 */
static void
start_call(EmuCall *c)
{
	grpc_op		op;

	c->started = true;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (!start_batch(c, &op, 1, TAG_CLOSE))
		return;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_buf;
	if (!start_batch(c, &op, 1, TAG_RECV))
		grpc_call_cancel(c->call, NULL);
}

/*
 * dispatch
 *		Handle one completion.
 */
static void
dispatch(EmuTag *tag, bool success)
{
	EmuCall    *c = tag->call;

	if (tag->kind == TAG_SHUTDOWN)
	{
		shutdown_done = true;
		return;
	}

	c->pending--;
	switch (tag->kind)
	{
		case TAG_NEW:
			if (!success)
				break;			/* the server is shutting down */
			c->start_us = emu_wall_us();
			c->arrival_us = emu_now_us();
			if (!shutting_down)
				request_new_call();
			start_call(c);
			break;
		case TAG_RECV:
			/* Without success the call broke before a request came: no reply. */
			if (success && !c->closed)
				handle_request(c);
			break;
		case TAG_CLOSE:
			c->closed = true;
			if (c->timer_armed)
			{
				/*
				 * The client gave up on a delayed reply, which will never be
				 * sent, so it is logged as cancelled.
				 */
				timer_remove(c);
				emu_log_write(c->reply.log_body, c->start_us, emu_wall_us(), true);
			}
			break;
		case TAG_SEND:
		case TAG_SHUTDOWN:
			break;
	}
	maybe_free_call(c);
}

/*
 * fire_timers
 *		Send the delayed replies that are due.
 */
static void
fire_timers(void)
{
	int64_t		now = emu_now_us();

	while (timers != NULL && timers->due_us <= now)
	{
		EmuCall    *c = timers;

		timer_remove(c);
		send_reply(c);
		maybe_free_call(c);
	}
}

/*
 * begin_shutdown
 *		Stop accepting calls and cancel the ones in progress.
 */
static void
begin_shutdown(void)
{
	shutting_down = true;
	grpc_server_shutdown_and_notify(server, cq, &shutdown_tag);
	grpc_server_cancel_all_calls(server);

	/*
	 * Delayed replies will not be sent now; log them as cancelled.  The
	 * cancelled calls' CLOSE frees them.
	 */
	while (timers != NULL)
	{
		EmuCall    *c = timers;

		timer_remove(c);
		emu_log_write(c->reply.log_body, c->start_us, emu_wall_us(), true);
		maybe_free_call(c);
	}
}

/*
 * next_event
 *		Wait for the next completion, at most SLICE_MS and not past the
 *		first timer's due time (a GRPC_QUEUE_TIMEOUT event then).  Within
 *		WAKE_MARGIN_US of it the queue is only looked at, without blocking,
 *		between short sleeps, so that the timer fires on time rather than
 *		at gRPC's next whole millisecond.
 */
static grpc_event
next_event(void)
{
	int64_t		wait_us = SLICE_MS * INT64_C(1000);
	grpc_event	ev;
	gpr_timespec deadline;
	struct timespec step;
	int64_t		due_us = timers != NULL ? timers->due_us : -1;
	int64_t		op_due_us = emu_operations_next_due_us();

	if (op_due_us >= 0 && (due_us < 0 || op_due_us < due_us))
		due_us = op_due_us;
	if (due_us >= 0)
	{
		int64_t		until = due_us - emu_now_us();

		if (until < wait_us)
			wait_us = until > 0 ? until : 0;
	}
	if (wait_us > WAKE_MARGIN_US)
	{
		deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
								gpr_time_from_micros(wait_us - WAKE_MARGIN_US,
													 GPR_TIMESPAN));
		return grpc_completion_queue_next(cq, deadline, NULL);
	}

	ev = grpc_completion_queue_next(cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT && wait_us > 0)
	{
		step.tv_sec = 0;
		step.tv_nsec = 1000 * (wait_us < FINE_STEP_US ? wait_us : FINE_STEP_US);
		nanosleep(&step, NULL);
	}
	return ev;
}

/*
 * run_loop
 *		Serve until a stop signal, then drain and destroy server and queue.
 */
static void
run_loop(void)
{
	bool		cq_shut = false;

	for (;;)
	{
		grpc_event	ev;

		if (stop_requested && !shutting_down)
			begin_shutdown();
		if (shutting_down && shutdown_done && nlive == 0 && !cq_shut)
		{
			grpc_server_destroy(server);
			server = NULL;
			grpc_completion_queue_shutdown(cq);
			cq_shut = true;
		}

		ev = next_event();
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE)
			dispatch((EmuTag *) ev.tag, ev.success != 0);
		fire_timers();
		emu_operations_finish_due();
	}
}

/*
 * make_credentials
 *		TLS credentials from the PEM files, or insecure ones.
 */
static grpc_server_credentials *
make_credentials(const EmuOptions *opts)
{
	grpc_ssl_pem_key_cert_pair pair;
	grpc_server_credentials *creds;
	char	   *cert;
	char	   *key;

	if (opts->tls_cert == NULL)
		return grpc_insecure_server_credentials_create();
	cert = emu_read_file(opts->tls_cert);
	key = emu_read_file(opts->tls_key);
	pair.cert_chain = cert;
	pair.private_key = key;
	creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
	free(cert);
	free(key);
	if (creds == NULL)
		emu_fatal("could not create TLS credentials from %s and %s",
				  opts->tls_cert, opts->tls_key);
	return creds;
}

/*
 * preencode_pages
 *		With --preencoded PAGE_SIZE, encode the List pages now and say how
 *		many there are and how long it took.
 */
static void
preencode_pages(void)
{
	size_t		bytes;
	int64_t		t0 = emu_now_ms();
	int64_t		pages = emu_service_preencode(&bytes);

	if (pages > 0)
		fprintf(stderr, "%s: pre-encoded %lld pages (%.1f MB) in %lld ms\n",
				EMU_PROGNAME, (long long) pages, bytes / 1048576.0,
				(long long) (emu_now_ms() - t0));
}

/*
 * install_signal_handlers
 *		SIGTERM and SIGINT stop the loop; SIGPIPE is ignored, since a client
 *		of the metadata service may go away before its answer is written.
 */
static void
install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * start_server
 *		Create the gRPC server and its completion queue, listen on
 *		--listen, start serving and request the first calls.  Returns the
 *		port, or 0 (with a message, server and queue gone) when it cannot
 *		listen.
 */
static int
start_server(const EmuOptions *opts)
{
	grpc_arg	args[4];
	grpc_channel_args chargs;
	grpc_server_credentials *creds;
	int			port;

	/*
	 * No SO_REUSEPORT, so that a second emulator on the same fixed port
	 * fails instead of sharing it.  Client keepalive pings are allowed
	 * often, since tests may ping often.
	 */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
	args[0].value.integer = 0;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_HTTP2_MAX_PING_STRIKES;
	args[1].value.integer = 0;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
	args[2].value.integer = 1000;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
	args[3].value.integer = 1;
	chargs.num_args = 4;
	chargs.args = args;

	server = grpc_server_create(&chargs, NULL);
	cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(server, cq, NULL);

	creds = make_credentials(opts);
	port = grpc_server_add_http2_port(server, opts->listen, creds);
	grpc_server_credentials_release(creds);
	if (port == 0)
	{
		fprintf(stderr, "%s: could not listen on %s\n", EMU_PROGNAME, opts->listen);
		grpc_server_destroy(server);
		grpc_completion_queue_shutdown(cq);
		grpc_completion_queue_destroy(cq);
		return 0;
	}
	grpc_server_start(server);
	for (int i = 0; i < NUM_PENDING_REQUESTS; i++)
		request_new_call();
	return port;
}

/*
 * start_metadata_service
 *		Start the metadata service of --metadata-listen, write its port
 *		file and say where it listens.
 */
static void
start_metadata_service(const EmuOptions *opts)
{
	int			mport = emu_metadata_start(opts->metadata_listen, opts->metadata_sa);
	const char *mcolon = strrchr(opts->metadata_listen, ':');

	if (opts->metadata_port_file)
		emu_write_port_file(opts->metadata_port_file, mport);
	fprintf(stderr, "%s: metadata service listening on %.*s:%d\n", EMU_PROGNAME,
			(int) (mcolon - opts->metadata_listen), opts->metadata_listen, mport);
}

/*
 * announce
 *		Write the port file, the "listening on" line on stdout and a summary
 *		of what is served on stderr.
 */
static void
announce(const EmuOptions *opts, int port)
{
	const char *colon = strrchr(opts->listen, ':');
	int64_t		nbackups;
	int			nfolders,
				nclusters,
				ngenerated,
				nclouds,
				nkeys,
				nsas;

	if (opts->port_file)
		emu_write_port_file(opts->port_file, port);
	printf("listening on %.*s:%d\n", (int) (colon - opts->listen), opts->listen, port);
	fflush(stdout);

	emu_data_summary(&nbackups, &nfolders, &nclusters, &ngenerated, &nclouds);
	nsas = emu_iam_summary(&nkeys);
	fprintf(stderr, "%s: serving %lld backups in %d folders (%d generated), "
			"%d clusters from data files, %d clouds; %d service accounts, "
			"%d keys; %d fault specs; %s\n",
			EMU_PROGNAME, (long long) nbackups, nfolders, ngenerated,
			nclusters, nclouds, nsas, nkeys, emu_fault_count(),
			opts->tls_cert ? "TLS" : "plaintext");
}

/*
 * main
 *		Read the command line, start the servers, serve until SIGTERM or
 *		SIGINT.  Exits 0 then, 1 when it cannot listen, 2 on a bad command
 *		line or data file.
 */
int
main(int argc, char **argv)
{
	const EmuOptions *opts = &cmdline;
	int			port;

	parse_args(argc, argv);
	if (opts->log_file)
		emu_log_open(opts->log_file);
	preencode_pages();
	install_signal_handlers();

	grpc_init();
	port = start_server(opts);
	if (port == 0)
	{
		grpc_shutdown();
		return 1;
	}
	/* Whoever waits for the port file or line can then use both servers. */
	if (opts->metadata_listen)
		start_metadata_service(opts);
	announce(opts, port);

	run_loop();

	grpc_completion_queue_destroy(cq);
	grpc_shutdown();
	emu_log_close();
	return 0;
}

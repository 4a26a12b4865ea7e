/*-------------------------------------------------------------------------
 *
 * metadata.c
 *		  The metadata service of a Compute VM, as far as the token of the
 *		  VM's attached service account goes: plain HTTP/1.1 on its own
 *		  loopback port (--metadata-listen HOST:PORT).
 *
 *	GET /computeMetadata/v1/instance/service-accounts/default/token
 *	with "Metadata-Flavor: Google"
 *		200 {"access_token":"...","expires_in":N,"token_type":"Bearer"}: a
 *		fresh token of --metadata-sa, issued like IamTokenService's (iam.c)
 *
 * Without the header: 403.  Another path: 404.  Another method: 405.
 * --metadata-mode changes the answer to the token path: 404 (no service
 * account attached, also the answer when --metadata-sa is not given), 500,
 * garbage (200 with a body that is not JSON), slow (the normal answer after
 * 30 s, or nothing if the client goes away first).
 *
 * One thread accepts; each connection gets a detached thread (at most 64
 * at a time; more are closed at once).  A request is read with a 5 s
 * timeout and at most 8 KiB of head; anything after the head is ignored;
 * every answer has Content-Length and "Connection: close", and the
 * connection is closed after it.  Each request is logged (log.c) with its
 * path and outcome, never the token.  The threads block every signal, so
 * SIGTERM reaches the gRPC loop.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emulator.h"

#define TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

#define MAX_HEAD_BYTES 8192
#define READ_TIMEOUT_MS 5000
#define SLOW_DELAY_MS 30000
#define MAX_CONNECTIONS 64

typedef enum MetadataMode
{
	MODE_OK,
	MODE_404,
	MODE_500,
	MODE_GARBAGE,
	MODE_SLOW
} MetadataMode;

static MetadataMode mode = MODE_OK;
static const char *attached_sa;
static int	listen_fd = -1;
static int	nconnections;
static pthread_mutex_t conn_mutex = PTHREAD_MUTEX_INITIALIZER;

typedef struct Connection
{
	int			fd;
	char		peer[80];
} Connection;

/*
 * emu_metadata_set_mode
 *		--metadata-mode ok|404|500|garbage|slow
 */
void
emu_metadata_set_mode(const char *arg)
{
	if (strcmp(arg, "ok") == 0)
		mode = MODE_OK;
	else if (strcmp(arg, "404") == 0)
		mode = MODE_404;
	else if (strcmp(arg, "500") == 0)
		mode = MODE_500;
	else if (strcmp(arg, "garbage") == 0)
		mode = MODE_GARBAGE;
	else if (strcmp(arg, "slow") == 0)
		mode = MODE_SLOW;
	else
		emu_fatal("--metadata-mode %s: expected ok, 404, 500, garbage or slow", arg);
}

/*
 * send_all
 *		Write everything (best effort: a client that went away is fine).
 */
static void
send_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= n;
	}
}

/*
 * respond
 *		Send a complete HTTP/1.1 answer with Connection: close.
 */
static void
respond(int fd, int code, const char *reason, const char *content_type,
		const char *body)
{
	EmuBuf		buf = {0};

	emu_buf_printf(&buf,
				   "HTTP/1.1 %d %s\r\n"
				   "Content-Type: %s\r\n"
				   "Content-Length: %zu\r\n"
				   "Metadata-Flavor: Google\r\n"
				   "Connection: close\r\n"
				   "\r\n%s",
				   code, reason, content_type, strlen(body), body);
	send_all(fd, buf.data, buf.len);
	emu_buf_free(&buf);
}

/*
 * read_head
 *		Read the request head (up to the empty line).  Returns its length,
 *		0 if the client closed or timed out first, -1 if it is too long.
 */
static ssize_t
read_head(int fd, char *buf, size_t cap)
{
	size_t		len = 0;
	int64_t		deadline = emu_now_ms() + READ_TIMEOUT_MS;

	for (;;)
	{
		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t		left = deadline - emu_now_ms();
		ssize_t		n;
		char	   *end;

		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int) left) <= 0)
		{
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (len == cap)
			return -1;
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		len += n;
		end = memmem(buf, len, "\r\n\r\n", 4);
		if (end != NULL)
			return (end - buf) + 4;
	}
}

/*
 * wait_or_gone
 *		Wait ms milliseconds; false if the client closed the connection
 *		meanwhile.
 */
static bool
wait_or_gone(int fd, int64_t ms)
{
	int64_t		deadline = emu_now_ms() + ms;
	char		scratch[512];

	for (;;)
	{
		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t		left = deadline - emu_now_ms();
		int			r;

		if (left <= 0)
			return true;
		r = poll(&pfd, 1, (int) left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return true;
		if (pfd.revents & (POLLHUP | POLLERR))
			return false;
		if (recv(fd, scratch, sizeof(scratch), 0) <= 0)
			return false;		/* end of file: the client has gone */
	}
}

/*
 * header_value
 *		The value of header name (case-insensitive) in the head's header
 *		lines, trimmed; NULL if absent.  Writes into out.
 */
static const char *
header_value(const char *head, const char *name, char *out, size_t outsize)
{
	const char *line = strstr(head, "\r\n");
	size_t		nlen = strlen(name);

	while (line != NULL)
	{
		const char *next;
		const char *v;
		const char *e;

		line += 2;
		next = strstr(line, "\r\n");
		if (next == NULL || next == line)
			break;
		if ((size_t) (next - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
			line[nlen] == ':')
		{
			v = line + nlen + 1;
			while (v < next && (*v == ' ' || *v == '\t'))
				v++;
			e = next;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t) (e - v) >= outsize)
				e = v + outsize - 1;
			memcpy(out, v, e - v);
			out[e - v] = '\0';
			return out;
		}
		line = next;
	}
	return NULL;
}

/*
 * What one request on one connection asked and how it was answered: the
 * log line is written from it after the connection is closed.
 */
typedef struct Exchange
{
	int			fd;
	char		method[16];		/* HTTP method; "" until the request line
								 * parsed */
	const char *path;			/* request target, not NUL-terminated */
	size_t		path_len;
	bool		flavor;			/* "Metadata-Flavor: Google" was sent */
	int			status;			/* HTTP status sent; 0: none */
	const char *outcome;		/* what happened, a word for the log */
	bool		issued;			/* a token was issued */
	const char *peer;			/* the client, for the log */
	int64_t		start_us;		/* when the request came, for the log */
	bool		logged;			/* its log line is written */
} Exchange;

static void log_exchange(Exchange *x);

/*
 * answer
 *		Send an answer with no token in it and note its status and outcome
 *		for the log.
 */
static void
answer(Exchange *x, int status, const char *reason, const char *outcome,
	   const char *content_type, const char *body)
{
	x->status = status;
	x->outcome = outcome;
	log_exchange(x);
	respond(x->fd, status, reason, content_type, body);
}

/*
 * answer_token
 *		Issue a token of the attached service account and send it.
 */
static void
answer_token(Exchange *x)
{
	char		token[128];
	int64_t		expires_at;
	char		body[256];

	emu_iam_issue_token(attached_sa, token, sizeof(token), &expires_at);
	snprintf(body, sizeof(body),
			 "{\"access_token\":\"%s\",\"expires_in\":%lld,\"token_type\":\"Bearer\"}",
			 token, (long long) emu_iam_token_lifetime());
	x->status = 200;
	x->outcome = "issued";
	x->issued = true;
	log_exchange(x);
	respond(x->fd, 200, "OK", "application/json", body);
}

/*
 * parse_head
 *		Read the method, the path and the Metadata-Flavor header from a
 *		request head (NUL-terminated).  False when the request line is not
 *		"METHOD PATH HTTP/1.x".
 */
static bool
parse_head(Exchange *x, const char *head)
{
	char		value[64];
	const char *eol = strstr(head, "\r\n");
	const char *sp1 = memchr(head, ' ', eol - head);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;

	if (sp1 == NULL || sp2 == NULL || (size_t) (sp1 - head) >= sizeof(x->method) ||
		strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return false;
	memcpy(x->method, head, sp1 - head);
	x->method[sp1 - head] = '\0';
	x->path = sp1 + 1;
	x->path_len = sp2 - x->path;
	x->flavor = header_value(head, "Metadata-Flavor", value, sizeof(value)) != NULL &&
		strcmp(value, "Google") == 0;
	return true;
}

/*
 * answer_request
 *		Answer a well-formed request: the token path (without a query
 *		string) with GET and the flavor header gets what --metadata-mode
 *		says; anything else its HTTP error.
 */
static void
answer_request(Exchange *x)
{
	const char *q = memchr(x->path, '?', x->path_len);
	size_t		plen = q ? (size_t) (q - x->path) : x->path_len;
	bool		token_path = plen == strlen(TOKEN_PATH) &&
		memcmp(x->path, TOKEN_PATH, plen) == 0;

	if (!token_path)
		answer(x, 404, "Not Found", "unknown_path", "text/plain", "not found\n");
	else if (strcmp(x->method, "GET") != 0)
		answer(x, 405, "Method Not Allowed", "method_not_allowed", "text/plain",
			   "method not allowed\n");
	else if (!x->flavor)
		answer(x, 403, "Forbidden", "no_flavor", "text/plain",
			   "Metadata-Flavor: Google header is required\n");
	else if (mode == MODE_404 || attached_sa == NULL)
		answer(x, 404, "Not Found", "no_service_account", "text/plain",
			   "no service account is attached\n");
	else if (mode == MODE_500)
		answer(x, 500, "Internal Server Error", "error", "text/plain",
			   "internal error\n");
	else if (mode == MODE_GARBAGE)
		answer(x, 200, "OK", "garbage", "application/json",
			   "{\"access_token\":\"t1.emu.garbage\",\"expires_in\":");
	else if (mode == MODE_SLOW && !wait_or_gone(x->fd, SLOW_DELAY_MS))
		x->outcome = "client_gone";
	else
		answer_token(x);
}

/*
 * log_exchange
 *		Write the log line of one request (never the token it was given),
 *		once.  An answer is logged before it is sent: the client acts on it
 *		at once (a token, then the call it carries), and the log must list
 *		the exchange before what the client does next.
 */
static void
log_exchange(Exchange *x)
{
	EmuBuf		body = {0};

	if (x->logged || !emu_log_enabled())
		return;
	x->logged = true;
	emu_json_field_str(&body, "method", "metadata");
	emu_json_field_str(&body, "http_method", x->method);
	emu_json_field(&body, "path", x->path, x->path_len > 1000 ? 1000 : x->path_len);
	emu_buf_printf(&body, ",\"flavor\":%s", x->flavor ? "true" : "false");
	emu_json_field_str(&body, "peer", x->peer);
	if (x->status != 0)
		emu_buf_printf(&body, ",\"http_status\":%d", x->status);
	emu_json_field_str(&body, "outcome", x->outcome);
	if (x->issued)
		emu_json_field_str(&body, "service_account", attached_sa);
	emu_buf_append(&body, "", 0);
	emu_log_write(body.data, x->start_us, emu_wall_us(), false);
	emu_buf_free(&body);
}

/*
 * serve
 *		One request on one connection, in a thread of its own: read it,
 *		answer it, close the connection, log it.
 */
static void *
serve(void *arg)
{
	Connection *conn = arg;
	Exchange	x;
	char		head[MAX_HEAD_BYTES + 1];
	ssize_t		len;
	int64_t		start_us = emu_wall_us();

	memset(&x, 0, sizeof(x));
	x.fd = conn->fd;
	x.path = "";
	x.peer = conn->peer;
	x.start_us = start_us;
	len = read_head(x.fd, head, MAX_HEAD_BYTES);
	if (len < 0)
		answer(&x, 431, "Request Header Fields Too Large", "head_too_large",
			   "text/plain", "request head too large\n");
	else if (len == 0)
		x.outcome = "no_request";
	else
	{
		head[len] = '\0';
		if (parse_head(&x, head))
			answer_request(&x);
		else
			answer(&x, 400, "Bad Request", "bad_request", "text/plain",
				   "bad request\n");
	}
	shutdown(x.fd, SHUT_WR);
	close(x.fd);
	log_exchange(&x);			/* no answer sent: no_request, client_gone */

	free(conn);
	pthread_mutex_lock(&conn_mutex);
	nconnections--;
	pthread_mutex_unlock(&conn_mutex);
	return NULL;
}

/*
 * accept_loop
 *		Accept connections forever.
 */
static void *
accept_loop(void *arg)
{
	for (;;)
	{
		struct sockaddr_storage ss;
		socklen_t	sslen = sizeof(ss);
		int			fd = accept(listen_fd, (struct sockaddr *) &ss, &sslen);
		Connection *conn;
		pthread_t	th;
		pthread_attr_t attr;
		bool		full;
		char		host[INET6_ADDRSTRLEN] = "?";
		int			port = 0;

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
				errno == ENFILE)
			{
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			fprintf(stderr, "%s: metadata accept failed: %s\n", EMU_PROGNAME,
					strerror(errno));
			return NULL;
		}
		pthread_mutex_lock(&conn_mutex);
		full = nconnections >= MAX_CONNECTIONS;
		if (!full)
			nconnections++;
		pthread_mutex_unlock(&conn_mutex);
		if (full)
		{
			close(fd);
			continue;
		}

		conn = emu_malloc(sizeof(Connection));
		conn->fd = fd;
		if (ss.ss_family == AF_INET)
		{
			struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
			port = ntohs(sin->sin_port);
			snprintf(conn->peer, sizeof(conn->peer), "ipv4:%s:%d", host, port);
		}
		else if (ss.ss_family == AF_INET6)
		{
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
			port = ntohs(sin6->sin6_port);
			snprintf(conn->peer, sizeof(conn->peer), "ipv6:[%s]:%d", host, port);
		}
		else
			snprintf(conn->peer, sizeof(conn->peer), "unknown");

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, serve, conn) != 0)
		{
			close(fd);
			free(conn);
			pthread_mutex_lock(&conn_mutex);
			nconnections--;
			pthread_mutex_unlock(&conn_mutex);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

/*
 * emu_metadata_start
 *		Bind HOST:PORT (port 0: a free one), start the server thread and
 *		return the port.  sa is the attached service account (NULL: none).
 *		Exits 1 if the address cannot be bound.
 */
int
emu_metadata_start(const char *listen_addr, const char *sa)
{
	const char *colon = strrchr(listen_addr, ':');
	char	   *host;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t	sslen = sizeof(ss);
	int			one = 1;
	int			rc;
	pthread_t	th;
	sigset_t	all,
				old;
	size_t		hlen;

	if (colon == NULL || colon[1] == '\0')
		emu_fatal("--metadata-listen %s: expected HOST:PORT", listen_addr);
	attached_sa = sa;
	hlen = colon - listen_addr;
	host = emu_malloc(hlen + 1);
	memcpy(host, listen_addr, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
	{
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0)
		emu_fatal("--metadata-listen %s: %s", listen_addr, gai_strerror(rc));
	listen_fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (listen_fd < 0 ||
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
		listen(listen_fd, 64) != 0 ||
		getsockname(listen_fd, (struct sockaddr *) &ss, &sslen) != 0)
	{
		fprintf(stderr, "%s: could not listen on %s for the metadata service: %s\n",
				EMU_PROGNAME, listen_addr, strerror(errno));
		exit(1);
	}
	freeaddrinfo(res);
	free(host);

	/*
	 * Start the thread with every signal blocked (threads inherit the
	 * mask), so that SIGTERM and SIGINT reach the gRPC loop of the main
	 * thread.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&th, NULL, accept_loop, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		emu_fatal("could not start the metadata service thread");
	pthread_detach(th);

	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
	return ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

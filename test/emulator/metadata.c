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
			return false;		/* EOF: the client gave up */
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
 * answer_token
 *		Issue a token of the attached service account and send it.
 */
static void
answer_token(int fd)
{
	char		token[128];
	int64_t		expires_at;
	char		body[256];

	emu_iam_issue_token(attached_sa, token, sizeof(token), &expires_at);
	snprintf(body, sizeof(body),
			 "{\"access_token\":\"%s\",\"expires_in\":%lld,\"token_type\":\"Bearer\"}",
			 token, (long long) emu_iam_token_lifetime());
	respond(fd, 200, "OK", "application/json", body);
}

/*
 * serve
 *		One request on one connection.
 */
static void *
serve(void *arg)
{
	Connection *conn = arg;
	int			fd = conn->fd;
	char		head[MAX_HEAD_BYTES + 1];
	ssize_t		len;
	int64_t		start_us = emu_wall_us();
	char		method[16] = "";
	const char *path = "";
	size_t		path_len = 0;
	bool		flavor = false;
	int			status = 0;
	const char *outcome;
	bool		issued = false;

	len = read_head(fd, head, MAX_HEAD_BYTES);
	if (len < 0)
	{
		status = 431;
		outcome = "head_too_large";
		respond(fd, 431, "Request Header Fields Too Large", "text/plain", "request head too large\n");
	}
	else if (len == 0)
		outcome = "no_request";
	else
	{
		char		value[64];
		const char *sp1;
		const char *sp2;
		const char *eol;

		head[len] = '\0';
		eol = strstr(head, "\r\n");
		sp1 = memchr(head, ' ', eol - head);
		sp2 = sp1 ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
		if (sp1 == NULL || sp2 == NULL || (size_t) (sp1 - head) >= sizeof(method) ||
			strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		{
			status = 400;
			outcome = "bad_request";
			respond(fd, 400, "Bad Request", "text/plain", "bad request\n");
			goto done;
		}
		memcpy(method, head, sp1 - head);
		method[sp1 - head] = '\0';
		path = sp1 + 1;
		path_len = sp2 - path;
		flavor = header_value(head, "Metadata-Flavor", value, sizeof(value)) != NULL &&
			strcmp(value, "Google") == 0;

		/* the path without a query string */
		{
			const char *q = memchr(path, '?', path_len);
			size_t		plen = q ? (size_t) (q - path) : path_len;
			bool		token_path = plen == strlen(TOKEN_PATH) &&
				memcmp(path, TOKEN_PATH, plen) == 0;

			if (!token_path)
			{
				status = 404;
				outcome = "unknown_path";
				respond(fd, 404, "Not Found", "text/plain", "not found\n");
			}
			else if (strcmp(method, "GET") != 0)
			{
				status = 405;
				outcome = "method_not_allowed";
				respond(fd, 405, "Method Not Allowed", "text/plain", "method not allowed\n");
			}
			else if (!flavor)
			{
				status = 403;
				outcome = "no_flavor";
				respond(fd, 403, "Forbidden", "text/plain",
						"Metadata-Flavor: Google header is required\n");
			}
			else if (mode == MODE_404 || attached_sa == NULL)
			{
				status = 404;
				outcome = "no_service_account";
				respond(fd, 404, "Not Found", "text/plain", "no service account is attached\n");
			}
			else if (mode == MODE_500)
			{
				status = 500;
				outcome = "error";
				respond(fd, 500, "Internal Server Error", "text/plain", "internal error\n");
			}
			else if (mode == MODE_GARBAGE)
			{
				status = 200;
				outcome = "garbage";
				respond(fd, 200, "OK", "application/json",
						"{\"access_token\":\"t1.emu.garbage\",\"expires_in\":");
			}
			else if (mode == MODE_SLOW && !wait_or_gone(fd, SLOW_DELAY_MS))
				outcome = "client_gone";
			else
			{
				status = 200;
				outcome = "issued";
				issued = true;
				answer_token(fd);
			}
		}
	}

done:
	shutdown(fd, SHUT_WR);
	close(fd);

	if (emu_log_enabled())
	{
		EmuBuf		body = {0};

		emu_json_field_str(&body, "method", "metadata");
		emu_json_field_str(&body, "http_method", method);
		emu_json_field(&body, "path", path, path_len > 1000 ? 1000 : path_len);
		emu_buf_printf(&body, ",\"flavor\":%s", flavor ? "true" : "false");
		emu_json_field_str(&body, "peer", conn->peer);
		if (status != 0)
			emu_buf_printf(&body, ",\"http_status\":%d", status);
		emu_json_field_str(&body, "outcome", outcome);
		if (issued)
			emu_json_field_str(&body, "service_account", attached_sa);
		emu_buf_append(&body, "", 0);
		emu_log_write(body.data, start_us, emu_wall_us(), false);
		emu_buf_free(&body);
	}

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

	/* the threads inherit a mask blocking every signal */
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

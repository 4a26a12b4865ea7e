/*-------------------------------------------------------------------------
 *
 * log.c
 *		  The emulator's call log (--log FILE): one JSON object per line per
 *		  received call (and per metadata-service request), written with a
 *		  single write(2) when the status is handed to gRPC, before the
 *		  client can see it.  Bearer tokens, issued tokens and JWTs are
 *		  never written.
 *
 * service.c formats the body of a gRPC call's line when it decides the
 * reply (emu_log_format); the server loop writes it (emu_log_write) when
 * the status is sent, adding seq and the times, so seq follows file order
 * and start_us/end_us are true.  metadata.c writes from its own threads;
 * a mutex keeps seq and the writes in step.
 *
 * Fields, in this order, each only where it applies:
 *		seq, method, backup_id | folder_id | cluster_id | cloud_id |
 *		operation_id | key_id, page_size, page_token, auth,
 *		client_request_id, idempotency_key, peer, status, returned,
 *		next_page_token, operation_id, done, message, fault, request_id,
 *		service_account, start_us, end_us, cancelled
 *
 * operations.c writes one more kind of line, when an operation finishes:
 *		seq, event ("operation_done"), operation_id, operation (the method
 *		that started it), backup_id | cluster_id, ok, status, message,
 *		made_backup_id, created_by, end_us
 *
 * Strings are JSON-escaped; bytes that are not well-formed UTF-8 are
 * written as \u00XX (the byte's value), so every line is valid JSON.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator.h"

static int	log_fd = -1;
static int64_t log_seq;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

/*
 * emu_log_open
 *		Open the log file for appending (created with mode 0644).
 */
void
emu_log_open(const char *path)
{
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log_fd < 0)
		emu_fatal("could not open log file \"%s\": %s", path, strerror(errno));
}

/*
 * emu_log_close
 *		Close the log file, if open.
 */
void
emu_log_close(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
}

/*
 * utf8_sequence_length
 *		Length of the well-formed UTF-8 sequence starting at s[0] (at most
 *		len bytes available), or 0 if it is not one.
 */
static size_t
utf8_sequence_length(const unsigned char *s, size_t len)
{
	size_t		n;

	if (s[0] < 0x80)
		n = 1;
	else if ((s[0] & 0xE0) == 0xC0)
		n = 2;
	else if ((s[0] & 0xF0) == 0xE0)
		n = 3;
	else if ((s[0] & 0xF8) == 0xF0)
		n = 4;
	else
		return 0;
	if (n > len || !emu_utf8_valid((const char *) s, n, NULL))
		return 0;
	return n;
}

/*
 * emu_json_string
 *		Append data as a quoted JSON string: quote, backslash, newline,
 *		carriage return and tab get their short escapes; other control
 *		characters, DEL and bytes that are not well-formed UTF-8 are written
 *		as \u00XX (the byte's value).
 */
void
emu_json_string(EmuBuf *buf, const char *data, size_t len)
{
	/* The characters with short escapes, and their escapes. */
	static const char specials[] = "\"\\\n\r\t";
	static const char *const escapes[] = {"\\\"", "\\\\", "\\n", "\\r", "\\t"};
	const unsigned char *s = (const unsigned char *) data;
	size_t		i = 0;

	emu_buf_append(buf, "\"", 1);
	while (i < len)
	{
		unsigned char c = s[i];
		const char *special = c != '\0' ? strchr(specials, c) : NULL;
		size_t		n;

		if (special != NULL)
		{
			emu_buf_append_str(buf, escapes[special - specials]);
			i++;
			continue;
		}
		n = (c < 0x20 || c == 0x7F) ? 0 : utf8_sequence_length(s + i, len - i);
		if (n == 0)
		{
			emu_buf_printf(buf, "\\u%04x", c);
			i++;
			continue;
		}
		emu_buf_append(buf, s + i, n);
		i += n;
	}
	emu_buf_append(buf, "\"", 1);
}

/*
 * emu_json_field
 *		Append ,"name":"value".
 */
void
emu_json_field(EmuBuf *buf, const char *name, const char *data, size_t len)
{
	emu_buf_printf(buf, ",\"%s\":", name);
	emu_json_string(buf, data, len);
}

/*
 * emu_json_field_str
 *		emu_json_field for a C string.
 */
void
emu_json_field_str(EmuBuf *buf, const char *name, const char *value)
{
	emu_json_field(buf, name, value, strlen(value));
}

/*
 * emu_log_enabled
 *		Is there a log to write?
 */
bool
emu_log_enabled(void)
{
	return log_fd >= 0;
}

/*
 * emu_log_format
 *		The body of a call's log line: every field after seq up to
 *		service_account, each starting with a comma.  Malloc'ed; NULL
 *		without --log.
 */
char *
emu_log_format(const EmuLogRecord *rec)
{
	EmuBuf		buf = {0};

	if (log_fd < 0)
		return NULL;

	if (rec->method)
		emu_json_field_str(&buf, "method", rec->method);
	else
		emu_json_field(&buf, "method", rec->method_raw.data, rec->method_raw.len);
	if (rec->id_field && rec->id_value)
	{
		emu_json_field_str(&buf, rec->id_field, rec->id_value);
		if (rec->has_paging)
		{
			emu_buf_printf(&buf, ",\"page_size\":%lld", (long long) rec->page_size);
			emu_json_field_str(&buf, "page_token", rec->page_token);
		}
		if (rec->filter)
			emu_json_field_str(&buf, "filter", rec->filter);
	}
	emu_json_field_str(&buf, "auth", rec->auth);
	if (rec->has_client_request_id)
		emu_json_field(&buf, "client_request_id", rec->client_request_id.data,
				   rec->client_request_id.len);
	else
		emu_json_field_str(&buf, "client_request_id", "");
	if (rec->has_idempotency_key)
		emu_json_field(&buf, "idempotency_key", rec->idempotency_key.data,
					   rec->idempotency_key.len);
	if (rec->peer)
		emu_json_field_str(&buf, "peer", rec->peer);
	emu_json_field_str(&buf, "status", rec->status);
	if (rec->returned >= 0)
		emu_buf_printf(&buf, ",\"returned\":%lld", (long long) rec->returned);
	if (rec->next_page_token)
		emu_json_field_str(&buf, "next_page_token", rec->next_page_token);
	if (rec->operation_id && !(rec->id_field && strcmp(rec->id_field, "operation_id") == 0))
		emu_json_field_str(&buf, "operation_id", rec->operation_id);
	if (rec->done >= 0)
		emu_buf_printf(&buf, ",\"done\":%s", rec->done ? "true" : "false");
	if (rec->message)
		emu_json_field_str(&buf, "message", rec->message);
	if (rec->faults && rec->faults[0])
		emu_json_field_str(&buf, "fault", rec->faults);
	emu_json_field_str(&buf, "request_id", rec->request_id);
	if (rec->service_account)
		emu_json_field_str(&buf, "service_account", rec->service_account);
	emu_buf_append(&buf, "", 0);
	return buf.data;
}

/*
 * emu_log_write
 *		Write one line: {"seq":N + body + start_us, end_us (when >= 0),
 *		cancelled (when true) + }.  A single write(2); seq is assigned here,
 *		under the mutex, so it increases down the file.  No-op without --log
 *		or with a NULL body.
 */
void
emu_log_write(const char *body, int64_t start_us, int64_t end_us,
			  bool cancelled)
{
	EmuBuf		buf = {0};
	const char *p;
	size_t		left;

	if (log_fd < 0 || body == NULL)
		return;

	pthread_mutex_lock(&log_mutex);
	emu_buf_printf(&buf, "{\"seq\":%lld", (long long) ++log_seq);
	emu_buf_append_str(&buf, body);
	if (start_us >= 0)
		emu_buf_printf(&buf, ",\"start_us\":%lld", (long long) start_us);
	if (end_us >= 0)
		emu_buf_printf(&buf, ",\"end_us\":%lld", (long long) end_us);
	if (cancelled)
		emu_buf_append_str(&buf, ",\"cancelled\":true");
	emu_buf_append(&buf, "}\n", 2);

	/*
	 * One write(2), so that lines written from several threads never
	 * interleave; the loop only goes round again when the kernel wrote part
	 * of the line.
	 */
	p = buf.data;
	left = buf.len;
	while (left > 0)
	{
		ssize_t		n = write(log_fd, p, left);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: could not write log: %s\n", EMU_PROGNAME,
					strerror(errno));
			break;
		}
		p += n;
		left -= n;
	}
	pthread_mutex_unlock(&log_mutex);
	emu_buf_free(&buf);
}

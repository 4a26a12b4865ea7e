/*-------------------------------------------------------------------------
 *
 * log.c
 *		  The emulator's call log (--log FILE): one JSON object per line per
 *		  received call, written with a single write(2) before the reply is
 *		  sent.  The bearer token is never written.
 *
 * Fields, in this order, each only where it applies:
 *		seq, method, backup_id | folder_id | cluster_id, page_size,
 *		page_token, auth, client_request_id, peer, status, returned,
 *		next_page_token, message, fault, request_id
 *
 * Strings are JSON-escaped; bytes that are not well-formed UTF-8 are
 * written as \u00XX (the byte's value), so every line is valid JSON.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator.h"

static int	log_fd = -1;
static int64_t log_seq;

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
 *		Append data as a quoted JSON string.
 */
void
emu_json_string(EmuBuf *buf, const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *) data;
	size_t		i = 0;

	emu_buf_append(buf, "\"", 1);
	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;

		switch (c)
		{
			case '"':
				emu_buf_append(buf, "\\\"", 2);
				i++;
				continue;
			case '\\':
				emu_buf_append(buf, "\\\\", 2);
				i++;
				continue;
			case '\n':
				emu_buf_append(buf, "\\n", 2);
				i++;
				continue;
			case '\r':
				emu_buf_append(buf, "\\r", 2);
				i++;
				continue;
			case '\t':
				emu_buf_append(buf, "\\t", 2);
				i++;
				continue;
			default:
				break;
		}
		if (c < 0x20 || c == 0x7F)
		{
			emu_buf_printf(buf, "\\u%04x", c);
			i++;
			continue;
		}
		n = utf8_sequence_length(s + i, len - i);
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
 * json_field
 *		Append ,"name":"value" (or {"name":... for the first field).
 */
static void
json_field(EmuBuf *buf, const char *name, const char *data, size_t len)
{
	emu_buf_printf(buf, ",\"%s\":", name);
	emu_json_string(buf, data, len);
}

/*
 * json_field_str
 *		json_field for a C string.
 */
static void
json_field_str(EmuBuf *buf, const char *name, const char *value)
{
	json_field(buf, name, value, strlen(value));
}

/*
 * emu_log_call
 *		Write one log line for a call (no-op without --log).
 */
void
emu_log_call(const EmuLogRecord *rec)
{
	EmuBuf		buf = {0};
	const char *p;
	size_t		left;

	if (log_fd < 0)
		return;

	emu_buf_printf(&buf, "{\"seq\":%lld", (long long) ++log_seq);
	if (rec->method)
		json_field_str(&buf, "method", rec->method);
	else
		json_field(&buf, "method", rec->method_raw.data, rec->method_raw.len);
	if (rec->id_field)
	{
		json_field_str(&buf, rec->id_field, rec->id_value);
		if (rec->has_paging)
		{
			emu_buf_printf(&buf, ",\"page_size\":%lld", (long long) rec->page_size);
			json_field_str(&buf, "page_token", rec->page_token);
		}
	}
	json_field_str(&buf, "auth", rec->auth);
	if (rec->has_client_request_id)
		json_field(&buf, "client_request_id", rec->client_request_id.data,
				   rec->client_request_id.len);
	else
		json_field_str(&buf, "client_request_id", "");
	if (rec->peer)
		json_field_str(&buf, "peer", rec->peer);
	json_field_str(&buf, "status", rec->status);
	if (rec->returned >= 0)
		emu_buf_printf(&buf, ",\"returned\":%lld", (long long) rec->returned);
	if (rec->next_page_token)
		json_field_str(&buf, "next_page_token", rec->next_page_token);
	if (rec->message)
		json_field_str(&buf, "message", rec->message);
	if (rec->faults && rec->faults[0])
		json_field_str(&buf, "fault", rec->faults);
	json_field_str(&buf, "request_id", rec->request_id);
	emu_buf_append(&buf, "}\n", 2);

	/* one write(2); loop only if the kernel writes part of it */
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
	emu_buf_free(&buf);
}

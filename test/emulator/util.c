/*-------------------------------------------------------------------------
 *
 * util.c
 *		  Small helpers of the API emulator: memory, arena, text buffers,
 *		  hashing, UTF-8, request ids, clocks and status code names.
 *
 * Memory allocation failures are fatal: the emulator is a test tool and
 * has nothing sensible to do without memory.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "emulator.h"

#define ARENA_CHUNK_SIZE 65536
#define ARENA_ALIGN 16

struct EmuArenaChunk
{
	EmuArenaChunk *next;
	size_t		used;
	size_t		size;
	char		data[] __attribute__((aligned(ARENA_ALIGN)));
};

/* gRPC status code names, indexed by code. */
static const char *const status_names[] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED"
};

#define NUM_STATUS_NAMES ((int) (sizeof(status_names) / sizeof(status_names[0])))

/*
 * emu_fatal
 *		Print a message prefixed with the program name and exit with
 *		EMU_EXIT_USAGE.  Used for bad command lines and bad data files.
 */
void
emu_fatal(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", EMU_PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EMU_EXIT_USAGE);
}

/*
 * out_of_memory
 *		Report an allocation failure and exit.
 */
static void
out_of_memory(size_t size)
{
	fprintf(stderr, "%s: out of memory (%zu bytes)\n", EMU_PROGNAME, size);
	exit(1);
}

/*
 * emu_malloc
 *		malloc that never returns NULL.
 */
void *
emu_malloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

/*
 * emu_realloc
 *		realloc that never returns NULL.
 */
void *
emu_realloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

/*
 * emu_strdup
 *		strdup that never returns NULL.
 */
char *
emu_strdup(const char *s)
{
	size_t		len = strlen(s);
	char	   *p = emu_malloc(len + 1);

	memcpy(p, s, len + 1);
	return p;
}

/*
 * emu_arena_alloc
 *		Allocate size bytes (aligned to 16) that live until the arena is
 *		freed.
 */
void *
emu_arena_alloc(EmuArena *arena, size_t size)
{
	EmuArenaChunk *chunk = arena->head;
	void	   *p;

	size = (size + ARENA_ALIGN - 1) & ~((size_t) ARENA_ALIGN - 1);
	if (chunk == NULL || chunk->size - chunk->used < size)
	{
		size_t		chunk_size = size > ARENA_CHUNK_SIZE ? size : ARENA_CHUNK_SIZE;

		chunk = emu_malloc(sizeof(EmuArenaChunk) + chunk_size);
		chunk->used = 0;
		chunk->size = chunk_size;
		chunk->next = arena->head;
		arena->head = chunk;
	}
	p = chunk->data + chunk->used;
	chunk->used += size;
	return p;
}

/*
 * emu_arena_memdup
 *		Copy len bytes into the arena and NUL-terminate the copy.
 */
char *
emu_arena_memdup(EmuArena *arena, const void *data, size_t len)
{
	char	   *p = emu_arena_alloc(arena, len + 1);

	if (len > 0)
		memcpy(p, data, len);
	p[len] = '\0';
	return p;
}

/*
 * emu_arena_free
 *		Free everything allocated in the arena; it can be used again.
 */
void
emu_arena_free(EmuArena *arena)
{
	while (arena->head != NULL)
	{
		EmuArenaChunk *next = arena->head->next;

		free(arena->head);
		arena->head = next;
	}
}

/*
 * emu_buf_append
 *		Append len bytes to a buffer, keeping it NUL-terminated.
 */
void
emu_buf_append(EmuBuf *buf, const void *data, size_t len)
{
	if (buf->len + len + 1 > buf->cap)
	{
		size_t		cap = buf->cap ? buf->cap : 256;

		while (cap < buf->len + len + 1)
			cap *= 2;
		buf->data = emu_realloc(buf->data, cap);
		buf->cap = cap;
	}
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

/*
 * emu_buf_append_str
 *		Append a C string to a buffer.
 */
void
emu_buf_append_str(EmuBuf *buf, const char *s)
{
	emu_buf_append(buf, s, strlen(s));
}

/*
 * emu_buf_printf
 *		Append printf-formatted text to a buffer.
 */
void
emu_buf_printf(EmuBuf *buf, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n < sizeof(small))
	{
		emu_buf_append(buf, small, n);
		return;
	}
	{
		char	   *big = emu_malloc(n + 1);

		va_start(ap, fmt);
		vsnprintf(big, n + 1, fmt, ap);
		va_end(ap);
		emu_buf_append(buf, big, n);
		free(big);
	}
}

/*
 * emu_buf_free
 *		Release a buffer's memory; it can be used again.
 */
void
emu_buf_free(EmuBuf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

/*
 * emu_intlist_append
 *		Append a value to a growable int array.
 */
void
emu_intlist_append(EmuIntList *list, int value)
{
	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 8;
		list->items = emu_realloc(list->items, list->cap * sizeof(int));
	}
	list->items[list->n++] = value;
}

/*
 * emu_bytes_equal
 *		Are two byte strings the same?
 */
bool
emu_bytes_equal(EmuBytes a, EmuBytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/*
 * emu_bytes_equal_str
 *		Is a byte string equal to a C string?
 */
bool
emu_bytes_equal_str(EmuBytes a, const char *s)
{
	return emu_bytes_equal(a, emu_bytes_str(s));
}

/*
 * emu_bytes_str
 *		View a C string as a byte string.
 */
EmuBytes
emu_bytes_str(const char *s)
{
	EmuBytes	b;

	b.data = s;
	b.len = strlen(s);
	return b;
}

/*
 * emu_hash_bytes
 *		64-bit FNV-1a over data, continuing from seed, with a final mix so
 *		that nearby inputs give unrelated outputs.
 */
uint64_t
emu_hash_bytes(uint64_t seed, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t	h = seed ^ UINT64_C(0xcbf29ce484222325);
	size_t		i;

	for (i = 0; i < len; i++)
	{
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	/* splitmix64 finaliser */
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

/*
 * emu_make_id
 *		An id like the cloud's resource ids: prefix (3 characters) and 17
 *		characters of [a-z0-9] derived from seed and data, so the same
 *		input always gives the same id.  out holds 21 bytes.
 */
void
emu_make_id(const char *prefix, uint64_t seed, const void *data, size_t len,
			char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t	h = emu_hash_bytes(seed, data, len);

	memcpy(out, prefix, 3);
	for (int i = 3; i < 20; i++)
	{
		/* 36^17 needs more than 64 bits: a second hash for the rest */
		if (i == 12)
			h = emu_hash_bytes(h, data, len);
		out[i] = alphabet[h % 36];
		h /= 36;
	}
	out[20] = '\0';
}

/*
 * emu_utf8_valid
 *		Is data well-formed UTF-8 (no overlongs, no surrogates, at most
 *		U+10FFFF)?  On success *nchars, when not NULL, gets the number of
 *		code points.
 */
bool
emu_utf8_valid(const char *data, size_t len, size_t *nchars)
{
	const unsigned char *s = (const unsigned char *) data;
	size_t		i = 0;
	size_t		n = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			extra;
		uint32_t	cp;
		uint32_t	min;

		if (c < 0x80)
		{
			i++;
			n++;
			continue;
		}
		else if ((c & 0xE0) == 0xC0)
		{
			extra = 1;
			cp = c & 0x1F;
			min = 0x80;
		}
		else if ((c & 0xF0) == 0xE0)
		{
			extra = 2;
			cp = c & 0x0F;
			min = 0x800;
		}
		else if ((c & 0xF8) == 0xF0)
		{
			extra = 3;
			cp = c & 0x07;
			min = 0x10000;
		}
		else
			return false;
		if (len - i <= (size_t) extra)
			return false;
		for (int k = 1; k <= extra; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += extra + 1;
		n++;
	}
	if (nchars)
		*nchars = n;
	return true;
}

/*
 * emu_uuid
 *		Write a fresh random version 4 UUID (37 bytes with the NUL) to out.
 */
void
emu_uuid(char *out)
{
	static uint64_t fallback_state;
	unsigned char b[16];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t) sizeof(b))
	{
		/*
		 * The kernel has no entropy yet.  Request ids need only be unique,
		 * not secret, so xorshift over the time and the pid will do.
		 */
		if (fallback_state == 0)
			fallback_state = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ 1;
		for (int i = 0; i < 16; i++)
		{
			fallback_state ^= fallback_state << 13;
			fallback_state ^= fallback_state >> 7;
			fallback_state ^= fallback_state << 17;
			b[i] = (unsigned char) fallback_state;
		}
	}
	b[6] = (b[6] & 0x0F) | 0x40;
	b[8] = (b[8] & 0x3F) | 0x80;
	snprintf(out, 37,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
			 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/*
 * emu_now_ms
 *		Milliseconds of the monotonic clock.
 */
int64_t
emu_now_ms(void)
{
	return emu_now_us() / 1000;
}

/*
 * emu_now_us
 *		Microseconds of the monotonic clock.
 */
int64_t
emu_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * emu_status_name
 *		"OK", "NOT_FOUND", ... for a gRPC status code.
 */
const char *
emu_status_name(grpc_status_code code)
{
	if ((int) code >= 0 && (int) code < NUM_STATUS_NAMES)
		return status_names[code];
	return "UNKNOWN";
}

/*
 * emu_status_from_name
 *		Parse a status code name (case-insensitive) or its number.
 */
bool
emu_status_from_name(const char *name, grpc_status_code *code)
{
	char	   *end;
	long		v;

	for (int i = 0; i < NUM_STATUS_NAMES; i++)
	{
		if (strcasecmp(name, status_names[i]) == 0)
		{
			*code = (grpc_status_code) i;
			return true;
		}
	}
	errno = 0;
	v = strtol(name, &end, 10);
	if (*name != '\0' && *end == '\0' && errno == 0 && v >= 0 && v < NUM_STATUS_NAMES)
	{
		*code = (grpc_status_code) v;
		return true;
	}
	return false;
}

/*
 * emu_wall_us
 *		Microseconds since the Unix epoch (wall clock).
 */
int64_t
emu_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * emu_random_bytes
 *		Fill out with random bytes from getrandom(2) (blocking until the
 *		kernel's pool is ready, which it is long before tests run).
 */
void
emu_random_bytes(void *out, size_t len)
{
	unsigned char *p = out;

	while (len > 0)
	{
		ssize_t		n = getrandom(p, len, 0);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			emu_fatal("getrandom failed: %s", strerror(errno));
		}
		p += n;
		len -= n;
	}
}

/*
 * emu_base64url
 *		Append base64url of len bytes (no padding) to out.
 */
void
emu_base64url(const uint8_t *in, size_t len, EmuBuf *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t	acc = 0;
	int			bits = 0;
	char		c;

	for (size_t i = 0; i < len; i++)
	{
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			c = alphabet[(acc >> bits) & 0x3F];
			emu_buf_append(out, &c, 1);
		}
	}
	if (bits > 0)
	{
		c = alphabet[(acc << (6 - bits)) & 0x3F];
		emu_buf_append(out, &c, 1);
	}
}

/*
 * emu_base64url_decode
 *		Append the bytes that len base64url characters (no padding) stand
 *		for to out, followed by a NUL that out->len does not count.  Returns
 *		false for a character outside the alphabet, for a length no encoding
 *		has (0, or 1 more than a multiple of 4), and for non-zero stray bits
 *		in the last character, so that every byte string has exactly one
 *		spelling that is accepted.
 */
bool
emu_base64url_decode(const char *in, size_t len, EmuBuf *out)
{
	uint32_t	acc = 0;
	int			bits = 0;

	if (len == 0 || len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = in[i];
		int			v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else
			return false;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			uint8_t		byte;

			bits -= 8;
			byte = (uint8_t) (acc >> bits);
			emu_buf_append(out, &byte, 1);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		return false;
	/* Appending nothing still allocates, so out->data is never NULL. */
	emu_buf_append(out, "", 0);
	return true;
}

/*
 * emu_write_port_file
 *		Write "PORT\n" to path through a temporary file and rename(2), so a
 *		reader never sees a partial file.  Exits 1 on failure.
 */
void
emu_write_port_file(const char *path, int port)
{
	size_t		len = strlen(path) + 32;
	char	   *tmp = emu_malloc(len);
	char		text[16];
	int			fd;
	int			n;

	snprintf(tmp, len, "%s.tmp.%d", path, (int) getpid());
	n = snprintf(text, sizeof(text), "%d\n", port);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, n) != n || close(fd) != 0 ||
		rename(tmp, path) != 0)
	{
		fprintf(stderr, "%s: could not write port file \"%s\": %s\n",
				EMU_PROGNAME, path, strerror(errno));
		unlink(tmp);
		exit(1);
	}
	free(tmp);
}

/*
 * emu_read_file
 *		Whole file as a NUL-terminated string (for PEM files); exits with
 *		EMU_EXIT_USAGE if it cannot be read.
 */
char *
emu_read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	EmuBuf		buf = {0};
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
		emu_fatal("could not open \"%s\": %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		emu_buf_append(&buf, chunk, n);
	if (ferror(f))
		emu_fatal("could not read \"%s\": %s", path, strerror(errno));
	fclose(f);
	emu_buf_append(&buf, "", 0);
	return buf.data;
}

/*
 * emu_grants_parse
 *		Parse the grant list of a principal: "*" (everything) or ids
 *		separated by commas (folder ids and cloud ids alike).  With
 *		allow_empty, "" grants nothing.  opt and spec name the option in
 *		error messages.
 */
void
emu_grants_parse(const char *opt, const char *spec, const char *text,
				 bool allow_empty, EmuGrants *out)
{
	const char *p = text;

	memset(out, 0, sizeof(*out));
	if (strcmp(text, "*") == 0)
	{
		out->all = true;
		return;
	}
	if (text[0] == '\0')
	{
		if (!allow_empty)
			emu_fatal("%s %s: empty grant list", opt, spec);
		return;
	}
	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char	   *id;

		if (len == 0)
			emu_fatal("%s %s: empty folder or cloud id", opt, spec);
		id = emu_malloc(len + 1);
		memcpy(id, p, len);
		id[len] = '\0';
		out->ids = emu_realloc(out->ids, (out->n + 1) * sizeof(char *));
		out->ids[out->n++] = id;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/*
 * emu_grants_allow
 *		Is this folder or cloud id granted?  NULL grants (no principal was
 *		configured at all) allow everything.
 */
bool
emu_grants_allow(const EmuGrants *grants, EmuBytes id)
{
	if (grants == NULL || grants->all)
		return true;
	for (int i = 0; i < grants->n; i++)
		if (emu_bytes_equal_str(id, grants->ids[i]))
			return true;
	return false;
}

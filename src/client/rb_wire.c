/*-------------------------------------------------------------------------
 *
 * rb_wire.c
 *		  Decoding of a reply and checks on its raw protobuf bytes.
 *
 * protobuf-c copies a string field into a NUL-terminated buffer, so a
 * string holding a NUL byte silently arrives cut short.  This walks the
 * wire format, guided by the message descriptors, and refuses such strings.
 * It runs only on bytes protobuf-c has already unpacked, but still checks
 * every bound itself.
 *
 * rb_decode_reply() is the whole decoding of a reply's bytes, used by
 * rb_call_finish() and by the fuzz target test/fuzz/fuzz_reply.c.  It works
 * for any reply type from its descriptor alone: nested messages, map
 * entries (Folder.labels) and Timestamps are walked alike.  See
 * docs/grpc-in-postgres.md, "Memory".
 *
 *-------------------------------------------------------------------------
 */
#include "rb_wire.h"

#include <stdio.h>
#include <string.h>

/* Deepest nesting followed (Backup inside a response is depth 2). */
#define RB_WIRE_MAX_DEPTH 8

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value);
static bool next_field(const uint8_t **p, const uint8_t *end, uint64_t *key,
					   uint64_t *len);
static const ProtobufCFieldDescriptor *field_by_id(const ProtobufCMessageDescriptor *desc,
												   uint64_t id);
static bool may_hold_strings(const ProtobufCMessageDescriptor *desc, int depth);
static bool check_message(const ProtobufCMessageDescriptor *desc,
						  const uint8_t *p, const uint8_t *end, int depth,
						  char *why, size_t whylen);

/*
 * read_varint
 *		Decode a base-128 varint at *p, advancing *p.
 */
static bool
read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
	uint64_t	v = 0;
	int			shift;

	for (shift = 0; shift < 64; shift += 7)
	{
		uint8_t		b;

		if (*p >= end)
			return false;
		b = *(*p)++;
		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			*value = v;
			return true;
		}
	}
	return false;
}

/*
 * next_field
 *		Read the field at *p: its key into *key; a length-delimited field's
 *		length into *len, leaving *p at its value; any other field is
 *		skipped.  False when the bytes are not well-formed (groups, which
 *		these messages never have, included).
 */
static bool
next_field(const uint8_t **p, const uint8_t *end, uint64_t *key,
		   uint64_t *len)
{
	if (!read_varint(p, end, key))
		return false;
	switch (*key & 7)
	{
		case 0:					/* varint */
			return read_varint(p, end, len);
		case 1:					/* fixed64 */
			if ((size_t) (end - *p) < 8)
				return false;
			*p += 8;
			return true;
		case 5:					/* fixed32 */
			if ((size_t) (end - *p) < 4)
				return false;
			*p += 4;
			return true;
		case 2:					/* length-delimited */
			return read_varint(p, end, len) && *len <= (uint64_t) (end - *p);
		default:				/* groups */
			return false;
	}
}

/*
 * rb_wire_last_bytes_field
 *		The last length-delimited field number id at the top level.  See
 *		rb_wire.h.
 */
bool
rb_wire_last_bytes_field(const uint8_t *data, size_t len, uint32_t id,
						 const uint8_t **value, size_t *value_len)
{
	const uint8_t *p = data;
	const uint8_t *end = data + len;

	*value = data;
	*value_len = 0;
	while (p < end)
	{
		uint64_t	key;
		uint64_t	flen;

		if (!next_field(&p, end, &key, &flen))
			return false;
		if ((key & 7) != 2)
			continue;
		if ((key >> 3) == id)
		{
			*value = p;
			*value_len = (size_t) flen;
		}
		p += flen;
	}
	return true;
}

/*
 * check_message
 *		Check one message's fields in p[0..end).
 */
static bool
check_message(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
			  const uint8_t *end, int depth, char *why, size_t whylen)
{
	if (depth > RB_WIRE_MAX_DEPTH)
	{
		snprintf(why, whylen, "messages nested too deeply");
		return false;
	}

	while (p < end)
	{
		uint64_t	key;
		uint64_t	len;
		const ProtobufCFieldDescriptor *field;

		if (!next_field(&p, end, &key, &len))
			goto malformed;
		if ((key & 7) != 2)
			continue;

		field = field_by_id(desc, key >> 3);
		if (field != NULL)
		{
			if (field->type == PROTOBUF_C_TYPE_STRING &&
				memchr(p, '\0', (size_t) len) != NULL)
			{
				snprintf(why, whylen, "field %s.%s holds a NUL byte",
						 desc->short_name, field->name);
				return false;
			}
			if (field->type == PROTOBUF_C_TYPE_MESSAGE &&
				may_hold_strings(field->descriptor, 0) &&
				!check_message(field->descriptor, p, p + len, depth + 1,
							   why, whylen))
				return false;
		}
		p += len;
	}
	return true;

malformed:
	snprintf(why, whylen, "malformed %s message", desc->short_name);
	return false;
}

/*
 * field_by_id
 *		The field with number id, or NULL.  Fields numbered 1, 2, 3, ...
 *		(all of this API's) are found by index; others by protobuf-c's binary
 *		search.
 */
static const ProtobufCFieldDescriptor *
field_by_id(const ProtobufCMessageDescriptor *desc, uint64_t id)
{
	if (id >= 1 && id <= desc->n_fields && desc->fields[id - 1].id == id)
		return &desc->fields[id - 1];
	if (id > UINT32_MAX)
		return NULL;
	return protobuf_c_message_descriptor_get_field(desc, (unsigned) id);
}

/*
 * may_hold_strings
 *		Can a message of this type hold a string, itself or in a nested
 *		message?  A Timestamp cannot: it is not walked.
 */
static bool
may_hold_strings(const ProtobufCMessageDescriptor *desc, int depth)
{
	unsigned	i;

	if (depth > RB_WIRE_MAX_DEPTH)
		return true;
	for (i = 0; i < desc->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &desc->fields[i];

		if (f->type == PROTOBUF_C_TYPE_STRING ||
			(f->type == PROTOBUF_C_TYPE_MESSAGE &&
			 may_hold_strings(f->descriptor, depth + 1)))
			return true;
	}
	return false;
}

bool
rb_wire_strings_ok(const ProtobufCMessageDescriptor *desc,
				   const uint8_t *data, size_t len, char *why, size_t whylen)
{
	return check_message(desc, data, data + len, 0, why, whylen);
}

/*
 * rb_decode_reply
 *		Unpack a reply and check its strings.  See rb_wire.h.
 */
ProtobufCMessage *
rb_decode_reply(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
				size_t len, ProtobufCAllocator *allocator,
				char *why, size_t whylen)
{
	ProtobufCMessage *msg;

	if (whylen > 0)
		why[0] = '\0';
	/* protobuf-c reads no byte when len is 0, but wants a pointer */
	if (data == NULL)
	{
		if (len != 0)
			return NULL;
		data = (const uint8_t *) "";
	}

	msg = protobuf_c_message_unpack(desc, allocator, len, data);
	if (msg == NULL)
		return NULL;

	/* protobuf-c would silently cut a string at an embedded NUL */
	if (!rb_wire_strings_ok(desc, data, len, why, whylen))
	{
		protobuf_c_message_free_unpacked(msg, allocator);
		return NULL;
	}
	return msg;
}

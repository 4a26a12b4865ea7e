/*-------------------------------------------------------------------------
 *
 * rb_wire.h
 *		  Decoding of a reply's bytes: protobuf-c's unpack plus the checks on
 *		  the raw bytes that it does not make.  Internal to the client
 *		  library (and test/fuzz/fuzz_reply.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RB_WIRE_H
#define RB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Do the string fields of a message of type desc encoded in data[0..len)
 * (and of its nested messages) hold no NUL byte?  protobuf-c would cut such
 * a string short without a word.  On false, why says which field.
 */
extern bool rb_wire_strings_ok(const ProtobufCMessageDescriptor *desc,
							   const uint8_t *data, size_t len,
							   char *why, size_t whylen);

/*
 * Decode a reply of type desc from data[0..len): unpack it with protobuf-c
 * through allocator (NULL: protobuf-c's default malloc allocator), then
 * refuse it if rb_wire_strings_ok() does.  Returns the message, to be freed
 * with protobuf_c_message_free_unpacked(msg, allocator), or NULL when the
 * bytes do not decode; everything allocated is then freed again.  On NULL,
 * why says what is wrong, or is "" when protobuf-c refused the bytes (it
 * gives no reason) or an allocation failed.
 */
extern ProtobufCMessage *rb_decode_reply(const ProtobufCMessageDescriptor *desc,
										 const uint8_t *data, size_t len,
										 ProtobufCAllocator *allocator,
										 char *why, size_t whylen);

/*
 * Find the last occurrence of length-delimited field number id at the top
 * level of the message in data[0..len), skipping every other field
 * without decoding it: true with (*value)[0..*value_len) pointing into
 * data (length 0 when the field is absent), false when the top level is
 * not well-formed wire format.
 */
extern bool rb_wire_last_bytes_field(const uint8_t *data, size_t len,
									 uint32_t id, const uint8_t **value,
									 size_t *value_len);

#endif							/* RB_WIRE_H */

/*-------------------------------------------------------------------------
 *
 * rb_wire.h
 *		  Checks on the raw protobuf bytes of a reply that protobuf-c's
 *		  unpack does not make.  Internal to the client library.
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

#endif							/* RB_WIRE_H */

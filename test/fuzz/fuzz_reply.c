/*-------------------------------------------------------------------------
 *
 * fuzz_reply.c
 *		  libFuzzer target for the decoding of API replies: rb_decode_reply()
 *		  (src/client/rb_wire.c), the code rb_call_finish() runs on the bytes
 *		  of every reply.
 *
 * Input: one selector byte, then the reply's bytes.
 *
 *	 selector % 7	the reply type: 0 Backup (BackupService.Get),
 *					1 ListBackupsResponse, 2 ListClusterBackupsResponse,
 *					3 Cluster (ClusterService.Get), 4 ListClustersResponse,
 *					5 ListFoldersResponse (FolderService.List), 6 Operation
 *					(BackupService.Delete, ClusterService.Backup,
 *					OperationService.Get); the one kept input,
 *					corpus/list_field_zero_key, has selector 1, which
 *					means the same under % 6 and % 7
 *	 selector >= 0xC0	also make allocation number selector - 0xBF
 *					(1..64) fail, as the FDW's allocator (palloc with
 *					MCXT_ALLOC_NO_OOM) may
 *
 * Decoding goes through an allocator that puts a header on every block,
 * fills new blocks with junk (so that a pointer protobuf-c forgets to set
 * is wild, not NULL), counts allocations and frees and refuses to free a
 * block it did not hand out or has already freed.  Checked on every input:
 *
 *	 - a refused reply leaves nothing allocated; its reason, when there is
 *	   one, is a NUL byte in a string: rb_wire_strings_ok() never calls
 *	   "malformed" bytes protobuf-c accepted (the two wire parsers agree);
 *	 - an accepted reply passes protobuf_c_message_check(), and every field
 *	   of it, nested messages and unknown fields included, is read (strlen
 *	   of every string, every element of every repeated field), so that
 *	   ASan/UBSan see any bad pointer or length; no string is NULL;
 *	 - packing the accepted reply and decoding that again succeeds and packs
 *	   to the same bytes (skipped when the reply has an unknown field
 *	   numbered 0: protobuf-c 1.4.1 accepts its key when encoded in more
 *	   than one byte, as in 80 00, packs it back in one byte, 00, and then
 *	   refuses that; harmless, the field is ignored);
 *	 - protobuf_c_message_free_unpacked() frees every block exactly once.
 *
 * Build and run: test/fuzz/run.sh (see test/fuzz/README.md).
 *
 * test/fuzz/fuzz_reply.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "rb_wire.h"
#include "yandex/cloud/mdb/redis/v1/backup.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster_service.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder_service.pb-c.h"
#include "yandex/cloud/operation/operation.pb-c.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const reply_types[] = {
	&yandex__cloud__mdb__redis__v1__backup__descriptor,
	&yandex__cloud__mdb__redis__v1__list_backups_response__descriptor,
	&yandex__cloud__mdb__redis__v1__list_cluster_backups_response__descriptor,
	&yandex__cloud__mdb__redis__v1__cluster__descriptor,
	&yandex__cloud__mdb__redis__v1__list_clusters_response__descriptor,
	&yandex__cloud__resourcemanager__v1__list_folders_response__descriptor,
	&yandex__cloud__operation__operation__descriptor,
};

#define N_REPLY_TYPES (sizeof(reply_types) / sizeof(reply_types[0]))
#define FAIL_SELECTOR 0xC0

/* Nesting the walk follows at most (the messages are not recursive). */
#define MAX_DEPTH 8

#define LIVE_MAGIC	UINT64_C(0x5242414c4c4f4321)	/* "RBALLOC!" */
#define DEAD_MAGIC	UINT64_C(0x5242465245454421)	/* "RBFREED!" */

typedef struct Tracker
{
	size_t		calls;			/* alloc calls, failed ones included */
	size_t		fail_at;		/* fail alloc call number fail_at; 0 never */
	size_t		allocated;		/* blocks handed out */
	size_t		freed;			/* blocks freed */
	size_t		live_bytes;
} Tracker;

typedef union Header
{
	struct
	{
		uint64_t	magic;
		size_t		size;
		Tracker    *owner;
	}			h;
	max_align_t align;			/* keep the payload aligned */
} Header;

/* Keeps the reads of the walk from being optimised away. */
static volatile uint64_t sink;

/* Did the last walk see an unknown field numbered 0?  See the top. */
static bool saw_field_zero;

static void
die(const char *what, const ProtobufCMessageDescriptor *desc)
{
	fprintf(stderr, "fuzz_reply: %s (%s)\n", what,
			desc != NULL ? desc->name : "-");
	abort();
}

static void *
tracked_alloc(void *data, size_t size)
{
	Tracker    *t = data;
	Header	   *h;

	t->calls++;
	if (t->fail_at != 0 && t->calls == t->fail_at)
		return NULL;
	if (size > SIZE_MAX - sizeof(Header))
		return NULL;
	h = malloc(sizeof(Header) + size);
	if (h == NULL)
		return NULL;
	h->h.magic = LIVE_MAGIC;
	h->h.size = size;
	h->h.owner = t;
	memset(h + 1, 0xBE, size);
	t->allocated++;
	t->live_bytes += size;
	return h + 1;
}

static void
tracked_free(void *data, void *pointer)
{
	Tracker    *t = data;
	Header	   *h;

	if (pointer == NULL)
		return;
	/* a double free reads freed memory here: ASan reports it */
	h = (Header *) pointer - 1;
	if (h->h.magic != LIVE_MAGIC || h->h.owner != t)
		die("free of a block not handed out by the allocator, or freed twice",
			NULL);
	h->h.magic = DEAD_MAGIC;
	t->freed++;
	t->live_bytes -= h->h.size;
	memset(pointer, 0xDE, h->h.size);
	free(h);
}

static void
touch(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t	sum = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		sum += b[i];
	sink += sum;
}

static size_t
value_size(ProtobufCType type)
{
	switch (type)
	{
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			return sizeof(int32_t);
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			return sizeof(int64_t);
		case PROTOBUF_C_TYPE_FLOAT:
			return sizeof(float);
		case PROTOBUF_C_TYPE_DOUBLE:
			return sizeof(double);
		case PROTOBUF_C_TYPE_BOOL:
			return sizeof(protobuf_c_boolean);
		case PROTOBUF_C_TYPE_ENUM:
			return sizeof(int);
		case PROTOBUF_C_TYPE_STRING:
			return sizeof(char *);
		case PROTOBUF_C_TYPE_BYTES:
			return sizeof(ProtobufCBinaryData);
		case PROTOBUF_C_TYPE_MESSAGE:
			return sizeof(ProtobufCMessage *);
	}
	die("unknown field type", NULL);
	return 0;
}

static void walk_message(const ProtobufCMessage *msg,
						 const ProtobufCMessageDescriptor *desc, int depth);

/*
 * walk_value
 *		Read one value of field f stored at p.
 */
static void
walk_value(const ProtobufCFieldDescriptor *f, const void *p,
		   const ProtobufCMessageDescriptor *owner, int depth)
{
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_STRING:
			{
				const char *s = *(char *const *) p;

				if (s == NULL)
					die("NULL string", owner);
				sink += strlen(s);
				break;
			}
		case PROTOBUF_C_TYPE_BYTES:
			{
				const ProtobufCBinaryData *b = p;

				if (b->len > 0 && b->data == NULL)
					die("NULL bytes with a length", owner);
				touch(b->data, b->len);
				break;
			}
		case PROTOBUF_C_TYPE_MESSAGE:
			{
				const ProtobufCMessage *sub = *(ProtobufCMessage *const *) p;

				if (sub != NULL)
					walk_message(sub, f->descriptor, depth + 1);
				break;
			}
		default:
			touch(p, value_size(f->type));
			break;
	}
}

/*
 * walk_message
 *		Read every field of msg, which should be of type desc.
 */
static void
walk_message(const ProtobufCMessage *msg,
			 const ProtobufCMessageDescriptor *desc, int depth)
{
	unsigned	i;

	if (depth > MAX_DEPTH)
		die("messages nested too deeply", desc);
	if (msg->descriptor != desc)
		die("message has the wrong descriptor", desc);

	if (msg->n_unknown_fields > 0 && msg->unknown_fields == NULL)
		die("unknown fields counted but absent", desc);
	for (i = 0; i < msg->n_unknown_fields; i++)
	{
		const ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];

		sink += u->tag + u->wire_type;
		if (u->tag == 0)
			saw_field_zero = true;
		if (u->len > 0 && u->data == NULL)
			die("NULL unknown field with a length", desc);
		touch(u->data, u->len);
	}

	for (i = 0; i < desc->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const char *base = (const char *) msg + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t		n = *(const size_t *) ((const char *) msg +
											   f->quantifier_offset);
			const char *elems = *(const char *const *) base;
			size_t		size = value_size(f->type);
			size_t		j;

			if (n > 0 && elems == NULL)
				die("repeated field counted but absent", desc);
			for (j = 0; j < n; j++)
				walk_value(f, elems + j * size, desc, depth);
		}
		else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		{
			/*
			 * The members of a oneof (Operation's error and response) share
			 * their storage: only the one the case field names is there.
			 */
			uint32_t	which = *(const uint32_t *) ((const char *) msg +
													 f->quantifier_offset);

			if (which == f->id)
				walk_value(f, base, desc, depth);
		}
		else
		{
			if (f->quantifier_offset != 0)
				touch((const char *) msg + f->quantifier_offset,
					  sizeof(protobuf_c_boolean));
			walk_value(f, base, desc, depth);
		}
	}
}

static uint8_t *
pack(const ProtobufCMessage *msg, size_t *len)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	uint8_t    *buf = malloc(size > 0 ? size : 1);

	if (buf == NULL)
		die("out of memory", NULL);
	*len = protobuf_c_message_pack(msg, buf);
	if (*len != size)
		die("packed size differs from get_packed_size", msg->descriptor);
	return buf;
}

static void
check_freed(const Tracker *t, const ProtobufCMessageDescriptor *desc,
			const char *when)
{
	if (t->allocated != t->freed || t->live_bytes != 0)
	{
		fprintf(stderr, "fuzz_reply: %s: %zu blocks allocated, %zu freed, "
				"%zu bytes left\n", when, t->allocated, t->freed,
				t->live_bytes);
		die("allocations not all freed", desc);
	}
}

/*
 * round_trip
 *		Pack msg, decode the bytes again and pack that: it must decode and
 *		give the same bytes.
 */
static void
round_trip(const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc)
{
	Tracker		t = {0};
	ProtobufCAllocator allocator = {tracked_alloc, tracked_free, &t};
	ProtobufCMessage *again;
	uint8_t    *bytes1;
	uint8_t    *bytes2;
	size_t		len1;
	size_t		len2;
	char		why[128];

	bytes1 = pack(msg, &len1);
	again = rb_decode_reply(desc, bytes1, len1, &allocator, why, sizeof(why));
	if (again == NULL)
	{
		fprintf(stderr, "fuzz_reply: repacked reply refused: %s\n",
				why[0] != '\0' ? why : "(by protobuf-c)");
		die("a decoded reply, packed again, does not decode", desc);
	}
	walk_message(again, desc, 0);
	bytes2 = pack(again, &len2);
	if (len1 != len2 || memcmp(bytes1, bytes2, len1) != 0)
		die("decode and pack again changed the bytes", desc);
	protobuf_c_message_free_unpacked(again, &allocator);
	check_freed(&t, desc, "after freeing the repacked reply");
	free(bytes1);
	free(bytes2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	Tracker		t = {0};
	ProtobufCAllocator allocator = {tracked_alloc, tracked_free, &t};
	ProtobufCMessage *msg;
	char		why[128];

	if (size < 1)
		return 0;
	desc = reply_types[data[0] % N_REPLY_TYPES];
	if (data[0] >= FAIL_SELECTOR)
		t.fail_at = (size_t) (data[0] - FAIL_SELECTOR) + 1;
	data++;
	size--;

	memset(why, 'x', sizeof(why));
	msg = rb_decode_reply(desc, data, size, &allocator, why, sizeof(why));
	if (memchr(why, '\0', sizeof(why)) == NULL)
		die("reason not NUL-terminated", desc);

	if (msg == NULL)
	{
		check_freed(&t, desc, "after a refused reply");
		/* protobuf-c gives no reason; rb_wire only refuses NUL bytes */
		if (why[0] != '\0' && strstr(why, "holds a NUL byte") == NULL)
		{
			fprintf(stderr, "fuzz_reply: rb_wire refused what protobuf-c "
					"accepted: %s\n", why);
			die("rb_wire and protobuf-c disagree", desc);
		}
		return 0;
	}
	if (why[0] != '\0')
		die("reason given for an accepted reply", desc);
	if (!protobuf_c_message_check(msg))
		die("protobuf_c_message_check failed on a decoded reply", desc);

	saw_field_zero = false;
	walk_message(msg, desc, 0);
	if (!saw_field_zero)
		round_trip(msg, desc);

	protobuf_c_message_free_unpacked(msg, &allocator);
	check_freed(&t, desc, "after protobuf_c_message_free_unpacked");
	return 0;
}

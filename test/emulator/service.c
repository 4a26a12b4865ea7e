/*-------------------------------------------------------------------------
 *
 * service.c
 *		  What the emulator answers to one call: authentication, request
 *		  validation, paging, reply building, and the effect of faults.
 *
 * Checks, in this order (the first failing one decides the reply):
 *	 1. unknown method: UNIMPLEMENTED
 *	 2. faults: hang (never reply), then unavailable / exhausted / status
 *	 3. authorization missing, malformed or unknown token: UNAUTHENTICATED
 *	 4. request bytes that do not parse: INVALID_ARGUMENT
 *	 5. the id field (folder_id, cluster_id, backup_id): required, valid
 *		UTF-8, at most 50 characters: INVALID_ARGUMENT
 *	 6. Get: unknown backup, ListBackups: unknown cluster: NOT_FOUND
 *	 7. folder of the folder / cluster / backup not granted: PERMISSION_DENIED
 *	 8. page_size 0..1000, page_token at most 100 characters and issued by
 *		this server for the same method and id: INVALID_ARGUMENT
 * A successful reply may then be altered by the garbage, token_loop,
 * unknown_fields and oversize faults; latency delays any reply.
 *
 * BackupService.Delete and ClusterService.Backup start an operation
 * (operations.c) after checks of their own (idempotency key, NOT_FOUND,
 * the right to change, a conflicting operation); they and
 * OperationService.Get answer an Operation (answer_operation).
 * FolderService.List (cloud_id instead of folder_id, PERMISSION_DENIED for
 * an unknown or ungranted cloud, page tokens up to 2000 characters bound to
 * cloud and filter) and IamTokenService.Create (no authorization; the JWT
 * is checked by iam.c) follow the same pattern; README.md has the details.
 * With --preencoded, List / ListBackups pages are packed once and then
 * served from a cache (build_listing_page).
 *
 * Page tokens are 22 characters of base64url over 16 bytes: the offset of
 * the next backup (8 bytes, big-endian, XORed with a mask derived from the
 * method, id and hash) and a 64-bit keyed hash of the method, the folder or
 * cluster id and the offset.  They are deterministic
 * (the same for every run), not plain integers, and rejected for another
 * folder, cluster or method.  The last page has an empty next_page_token,
 * also when it ends exactly at the last backup.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emulator.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster_service.pb-c.h"
#include "yandex/cloud/iam/v1/iam_token_service.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder_service.pb-c.h"
#include "yandex/cloud/operation/operation.pb-c.h"
#include "yandex/cloud/operation/operation_service.pb-c.h"

typedef Yandex__Cloud__Mdb__Redis__V1__Backup PbBackup;
typedef Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest PbGetRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest PbListRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse PbListResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest PbClusterRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse PbClusterResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__Cluster PbCluster;
typedef Yandex__Cloud__Mdb__Redis__V1__Cluster__LabelsEntry PbLabel;
typedef Yandex__Cloud__Mdb__Redis__V1__ClusterConfig PbClusterConfig;
typedef Yandex__Cloud__Mdb__Redis__V1__GetClusterRequest PbGetClusterRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClustersRequest PbClustersRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClustersResponse PbClustersResponse;
typedef Google__Protobuf__Timestamp PbTimestamp;
typedef Yandex__Cloud__Iam__V1__CreateIamTokenRequest PbIamRequest;
typedef Yandex__Cloud__Iam__V1__CreateIamTokenResponse PbIamResponse;
typedef Yandex__Cloud__Resourcemanager__V1__Folder PbFolder;
typedef Yandex__Cloud__Resourcemanager__V1__ListFoldersRequest PbFolderRequest;
typedef Yandex__Cloud__Resourcemanager__V1__ListFoldersResponse PbFolderResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__DeleteBackupRequest PbDeleteRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__DeleteBackupMetadata PbDeleteMetadata;
typedef Yandex__Cloud__Mdb__Redis__V1__BackupClusterRequest PbBackupClusterRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__BackupClusterMetadata PbBackupClusterMetadata;
typedef Yandex__Cloud__Operation__Operation PbOperation;
typedef Yandex__Cloud__Operation__GetOperationRequest PbGetOperationRequest;
typedef Google__Protobuf__Any PbAny;
typedef Google__Rpc__Status PbStatus;

/*
 * The methods served, indexing methods[].  The order matters: the value keys
 * the page-token hash, so reordering would change every page token.
 */
typedef enum EmuMethod
{
	METHOD_UNKNOWN = -1,
	METHOD_GET,
	METHOD_LIST,
	METHOD_CLUSTER_LIST,
	METHOD_FOLDER_LIST,
	METHOD_IAM_CREATE,
	METHOD_CLUSTERS_LIST,
	METHOD_CLUSTER_GET,
	METHOD_BACKUP_DELETE,
	METHOD_CLUSTER_BACKUP,
	METHOD_OPERATION_GET
} EmuMethod;

/* Longest filter of ListClustersRequest and ListFoldersRequest. */
#define MAX_FILTER_CHARS 1000

/* CreateIamTokenRequest limits. */
#define IAM_MAX_JWT_CHARS 8000

/* Longest key id kept for the log and fault keys. */
#define MAX_KID_BYTES 128

/* Longest idempotency key accepted. */
#define MAX_IDEMPOTENCY_KEY_BYTES 128

/* Key of the hash that makes a token's account id. */
#define ACCOUNT_ID_SECRET UINT64_C(0x4163636f756e7473)

/* The answer of an operation's call when lose_reply fires. */
#define LOST_REPLY_MESSAGE "Service is temporarily unavailable"

/* A bearer token given with --token. */
typedef struct EmuToken
{
	char	   *token;
	EmuGrants	grants;
} EmuToken;

static EmuToken *tokens;
static int	ntokens;

/* --read-only: tokens and service accounts that may read but not change. */
static char **read_only_names;
static int	nread_only_names;

/* Key of the page-token hash; changing it invalidates old tokens. */
#define PAGE_TOKEN_SECRET UINT64_C(0x5265646973426b70)
#define PAGE_TOKEN_LEN 22
#define PAGE_TOKEN_BYTES 16

/* Field numbers of the unknown fields added by the unknown_fields fault. */
#define UNKNOWN_VARINT_FIELD 99
#define UNKNOWN_STRING_FIELD 100
#define UNKNOWN_MESSAGE_FIELD 101
#define UNKNOWN_FIXED64_FIELD 102
#define UNKNOWN_FIXED32_FIELD 103
#define OVERSIZE_FIELD 1000

/* Most unknown fields one message gets (3 ids, shards, 5 fault fields). */
#define FAULT_UNKNOWN_FIELDS 5

/* State of one call while it is being handled. */
typedef struct CallContext
{
	const EmuRequest *req;
	EmuReply   *reply;
	EmuMethod	method;
	EmuArena	arena;			/* reply messages */
	EmuLogRecord log;
	EmuFaultEffect effect;
	EmuBuf		faults;			/* fault kinds that fired, for the log */
	const EmuGrants *grants;	/* the caller's; NULL: open mode, all */
	const char *service_account;	/* caller's, for an issued token */
	const char *account;		/* the caller's account (identify), or NULL */
	char		token_account[21];	/* a --token's account id */
	bool		read_only;		/* --read-only names the caller */
	int64_t		returned;
	char		next_token[PAGE_TOKEN_LEN + 1];
	bool		has_next_token;
	char		kid[MAX_KID_BYTES];	/* IamTokenService.Create */
} CallContext;

/*
 * Pre-encoded pages (--preencoded): the packed reply of a List or
 * ListBackups page, keyed by method, folder or cluster id, first offset
 * and page size, served later by copying the bytes.  Replies altered by a
 * fault are neither cached nor served from the cache.
 */
typedef struct PageEntry
{
	EmuMethod	method;
	char	   *key;
	int64_t		start;
	int64_t		page_size;
	uint8_t    *bytes;
	size_t		len;
	int64_t		returned;
	char		next_token[PAGE_TOKEN_LEN + 1];
	struct PageEntry *next;
} PageEntry;

#define PAGE_CACHE_BUCKETS 65536

static bool preencoded;
static int64_t preencoded_page_size;	/* encode at start-up; 0: lazily */
static size_t preencoded_max_bytes = (size_t) 2048 * 1024 * 1024;
static size_t preencoded_bytes;
static int64_t preencoded_pages;
static bool preencoded_full_warned;
static PageEntry **page_cache;

/*
 * emu_service_add_token
 *		Parse --token TOKEN=FOLDER[,FOLDER...] (or TOKEN=*).  The list may
 *		also name clouds (for FolderService.List).
 */
void
emu_service_add_token(const char *spec)
{
	const char *eq = strchr(spec, '=');
	EmuToken	t;

	memset(&t, 0, sizeof(t));
	if (eq == NULL || eq == spec || eq[1] == '\0')
		emu_fatal("--token %s: expected TOKEN=FOLDER[,FOLDER...] or TOKEN=*", spec);
	t.token = emu_malloc(eq - spec + 1);
	memcpy(t.token, spec, eq - spec);
	t.token[eq - spec] = '\0';
	for (int i = 0; i < ntokens; i++)
		if (strcmp(tokens[i].token, t.token) == 0)
			emu_fatal("--token %s: token given twice", spec);
	emu_grants_parse("--token", spec, eq + 1, false, &t.grants);
	tokens = emu_realloc(tokens, (ntokens + 1) * sizeof(EmuToken));
	tokens[ntokens++] = t;
}

/*
 * emu_service_add_read_only
 *		--read-only NAME: the --token token or service account NAME may read
 *		but not change (BackupService.Delete, ClusterService.Backup).
 */
void
emu_service_add_read_only(const char *name)
{
	if (name[0] == '\0')
		emu_fatal("--read-only: expected a --token token or a --service-account id");
	read_only_names = emu_realloc(read_only_names,
								  (nread_only_names + 1) * sizeof(char *));
	read_only_names[nread_only_names++] = emu_strdup(name);
}

/*
 * emu_service_check_read_only
 *		After the command line: each --read-only name is a --token token or
 *		a declared service account.
 */
void
emu_service_check_read_only(void)
{
	for (int i = 0; i < nread_only_names; i++)
	{
		bool		known = emu_iam_service_account_known(read_only_names[i]);

		for (int t = 0; t < ntokens && !known; t++)
			known = strcmp(tokens[t].token, read_only_names[i]) == 0;
		if (!known)
			emu_fatal("--read-only %s: neither a --token token nor a --service-account id",
					  read_only_names[i]);
	}
}

/*
 * is_read_only
 *		Does --read-only name this token or service account?
 */
static bool
is_read_only(EmuBytes name)
{
	for (int i = 0; i < nread_only_names; i++)
		if (emu_bytes_equal_str(name, read_only_names[i]))
			return true;
	return false;
}

/*
 * identify
 *		The account of an authenticated caller: what its operations name as
 *		created_by and what its idempotency keys and operations belong to.
 *		A service account's id, or for a --token (and any token in open
 *		mode) "aje" and 17 characters derived from the token, which is never
 *		shown itself.  Also whether --read-only names the caller.
 */
static void
identify(CallContext *ctx)
{
	EmuBytes	token;

	if (ctx->service_account != NULL)
	{
		ctx->account = ctx->service_account;
		ctx->read_only = is_read_only(emu_bytes_str(ctx->service_account));
		return;
	}
	token.data = ctx->req->auth.data + 7;	/* after "Bearer " */
	token.len = ctx->req->auth.len - 7;
	emu_make_id("aje", ACCOUNT_ID_SECRET, token.data, token.len,
				ctx->token_account);
	ctx->account = ctx->token_account;
	ctx->read_only = is_read_only(token);
}

/*
 * authenticate
 *		Check the "authorization" entry.  Returns "ok", "missing" or
 *		"invalid"; on "ok" *grants are the caller's: those of the matching
 *		--token or of the service account of a token the emulator issued
 *		(*sa is then its id), or NULL in open mode (no --token and no
 *		service account configured: any non-empty token, every folder).
 */
static const char *
authenticate(const EmuRequest *req, const EmuGrants **grants, const char **sa)
{
	EmuBytes	value;
	EmuBytes	given;

	*grants = NULL;
	*sa = NULL;
	if (!req->has_auth)
		return "missing";
	value = req->auth;
	if (value.len < 8 || strncasecmp(value.data, "Bearer ", 7) != 0)
		return "invalid";
	given.data = value.data + 7;
	given.len = value.len - 7;
	if (ntokens == 0 && !emu_iam_strict())
		return "ok";
	for (int i = 0; i < ntokens; i++)
	{
		if (emu_bytes_equal_str(given, tokens[i].token))
		{
			*grants = &tokens[i].grants;
			return "ok";
		}
	}
	if (emu_iam_lookup_token(given, grants, sa))
		return "ok";
	return "invalid";
}

/*
 * page_token_mac
 *		Keyed hash binding a page token to method, id and offset.
 */
static uint64_t
page_token_mac(EmuMethod method, const char *key, const uint8_t *offset_be)
{
	uint64_t	h = emu_hash_bytes(PAGE_TOKEN_SECRET + (uint64_t) method, key, strlen(key));

	return emu_hash_bytes(h, offset_be, 8);
}

/*
 * page_token_mask
 *		Mask XORed over the offset so that tokens look random; it depends
 *		on the MAC, hence on the offset too.
 */
static uint64_t
page_token_mask(EmuMethod method, const char *key, uint64_t mac)
{
	return emu_hash_bytes(~PAGE_TOKEN_SECRET - (uint64_t) method - mac, key, strlen(key));
}

/*
 * make_page_token
 *		The token that leads to the backup at offset of the listing of key.
 */
static void
make_page_token(EmuMethod method, const char *key, int64_t offset, char *out)
{
	uint8_t		raw[PAGE_TOKEN_BYTES];
	uint64_t	mac;
	uint8_t		offset_be[8];
	uint64_t	mask;
	EmuBuf		text = {0};

	for (int i = 0; i < 8; i++)
		offset_be[i] = (uint8_t) ((uint64_t) offset >> (56 - 8 * i));
	mac = page_token_mac(method, key, offset_be);
	mask = page_token_mask(method, key, mac);
	for (int i = 0; i < 8; i++)
	{
		raw[i] = offset_be[i] ^ (uint8_t) (mask >> (56 - 8 * i));
		raw[8 + i] = (uint8_t) (mac >> (56 - 8 * i));
	}
	emu_base64url(raw, sizeof(raw), &text);
	memcpy(out, text.data, PAGE_TOKEN_LEN + 1);
	emu_buf_free(&text);
}

/*
 * parse_page_token
 *		Check a page token issued by make_page_token for this method and key
 *		and return its offset.  The decoder refuses a spelling with stray
 *		low bits in the last character, so only the very string we issued
 *		is accepted, not one of its aliases.
 */
static bool
parse_page_token(EmuMethod method, const char *key, const char *token,
				 int64_t *offset)
{
	EmuBuf		decoded = {0};
	const uint8_t *raw;
	uint8_t		offset_be[8];
	uint64_t	mask;
	uint64_t	mac = 0;
	uint64_t	off = 0;
	bool		ok;

	if (strlen(token) != PAGE_TOKEN_LEN ||
		!emu_base64url_decode(token, PAGE_TOKEN_LEN, &decoded) ||
		decoded.len != PAGE_TOKEN_BYTES)
	{
		emu_buf_free(&decoded);
		return false;
	}
	raw = (const uint8_t *) decoded.data;
	for (int i = 0; i < 8; i++)
		mac = (mac << 8) | raw[8 + i];
	mask = page_token_mask(method, key, mac);
	for (int i = 0; i < 8; i++)
	{
		offset_be[i] = raw[i] ^ (uint8_t) (mask >> (56 - 8 * i));
		off = (off << 8) | offset_be[i];
	}
	emu_buf_free(&decoded);
	ok = mac == page_token_mac(method, key, offset_be) && off <= (uint64_t) INT64_MAX;
	if (ok)
		*offset = (int64_t) off;
	return ok;
}

/*
 * set_error
 *		Make the reply an error with this code and message.
 */
static void
set_error(CallContext *ctx, grpc_status_code code, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static void
set_error(CallContext *ctx, grpc_status_code code, const char *fmt,...)
{
	va_list		ap;
	char		text[1024];
	char	   *msg;

	/*
	 * Messages are short; a longer one (quoting a huge method path) is cut
	 * to the buffer rather than allocated in full.
	 */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	msg = emu_strdup(text);
	free(ctx->reply->message);
	ctx->reply->message = msg;
	ctx->reply->code = code;
	free(ctx->reply->payload);
	ctx->reply->payload = NULL;
	ctx->reply->payload_len = 0;
}

/*
 * note_fault
 *		Record that a fault kind changed this call (for the log).
 */
static void
note_fault(CallContext *ctx, const char *kind)
{
	if (ctx->faults.len > 0)
		emu_buf_append(&ctx->faults, ",", 1);
	emu_buf_append_str(&ctx->faults, kind);
}

/*
 * check_id
 *		Validate a required id field; sets the error and returns false if
 *		it is bad.
 */
static bool
check_id(CallContext *ctx, const char *name, const char *value)
{
	size_t		nchars;

	if (value[0] == '\0')
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: %s is required", name);
		return false;
	}
	if (!emu_utf8_valid(value, strlen(value), &nchars))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: %s: invalid UTF-8", name);
		return false;
	}
	if (nchars > EMU_MAX_ID_CHARS)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: %s: length must be at most %d characters",
				  name, EMU_MAX_ID_CHARS);
		return false;
	}
	return true;
}

/*
 * deny
 *		Make the reply PERMISSION_DENIED for a folder or cloud (kind) and
 *		log the call's authentication as "denied".
 */
static void
deny(CallContext *ctx, const char *kind, const char *id)
{
	ctx->log.auth = "denied";
	set_error(ctx, GRPC_STATUS_PERMISSION_DENIED, "Permission denied to %s %s",
			  kind, id);
}

/*
 * check_granted
 *		May the caller read the folder or cloud (kind) id?  If not, deny the
 *		call and return false.
 */
static bool
check_granted(CallContext *ctx, const char *kind, EmuBytes id)
{
	if (emu_grants_allow(ctx->grants, id))
		return true;
	deny(ctx, kind, id.data);
	return false;
}

/*
 * varint_encode
 *		Protobuf base-128 varint; returns its length (at most 10).
 */
static size_t
varint_encode(uint64_t v, uint8_t *out)
{
	size_t		n = 0;

	while (v >= 0x80)
	{
		out[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t) v;
	return n;
}

/*
 * unknown_field
 *		Fill an unknown field for protobuf-c to emit after the known ones.
 *		protobuf-c writes the tag and then data verbatim, so a
 *		length-delimited field's data starts with its length varint.
 */
static void
unknown_field(EmuArena *arena, ProtobufCMessageUnknownField *uf, uint32_t tag,
			  ProtobufCWireType wire_type, const void *data, size_t len)
{
	uint8_t    *p;
	size_t		n = 0;

	p = emu_arena_alloc(arena, len + 10);
	if (wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
		n = varint_encode(len, p);
	if (len > 0)
		memcpy(p + n, data, len);
	uf->tag = tag;
	uf->wire_type = wire_type;
	uf->len = n + len;
	uf->data = p;
}

/*
 * add_fault_unknown_fields
 *		The unknown_fields fault: fields 99 (varint), 100 (string), 101
 *		(nested message), 102 (fixed64), 103 (fixed32).
 */
static void
add_fault_unknown_fields(EmuArena *arena, ProtobufCMessageUnknownField *uf,
						 unsigned *n)
{
	static const uint8_t varint[] = {0xB2, 0xF2, 0x19};	/* 424242 */
	static const char string[] = "emulator unknown field";
	static const uint8_t nested[] = {
		0x08, 0x07,				/* 1: 7 */
		0x12, 0x06, 'n', 'e', 's', 't', 'e', 'd',	/* 2: "nested" */
		0x1A, 0x02, 0x08, 0x01	/* 3: { 1: 1 } */
	};
	static const uint8_t fixed64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t fixed32[4] = {9, 10, 11, 12};

	unknown_field(arena, &uf[(*n)++], UNKNOWN_VARINT_FIELD,
				  PROTOBUF_C_WIRE_TYPE_VARINT, varint, sizeof(varint));
	unknown_field(arena, &uf[(*n)++], UNKNOWN_STRING_FIELD,
				  PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, string, sizeof(string) - 1);
	unknown_field(arena, &uf[(*n)++], UNKNOWN_MESSAGE_FIELD,
				  PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, nested, sizeof(nested));
	unknown_field(arena, &uf[(*n)++], UNKNOWN_FIXED64_FIELD,
				  PROTOBUF_C_WIRE_TYPE_64BIT, fixed64, sizeof(fixed64));
	unknown_field(arena, &uf[(*n)++], UNKNOWN_FIXED32_FIELD,
				  PROTOBUF_C_WIRE_TYPE_32BIT, fixed32, sizeof(fixed32));
}

/*
 * has_nul
 *		Does a byte string hold a NUL (which protobuf-c cannot pack in a
 *		string field)?
 */
static bool
has_nul(EmuBytes b)
{
	return b.len > 0 && memchr(b.data, '\0', b.len) != NULL;
}

/*
 * set_string
 *		Set a string field, or emit it as a raw field of the same number
 *		when it holds a NUL.
 */
static void
set_string(EmuArena *arena, char **field, EmuBytes value, uint32_t tag,
		   ProtobufCMessageUnknownField *uf, unsigned *n)
{
	if (has_nul(value))
		unknown_field(arena, &uf[(*n)++], tag,
					  PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, value.data, value.len);
	else
		*field = (char *) value.data;
}

/*
 * build_timestamp
 *		A Timestamp message, or NULL for an unset one.
 */
static PbTimestamp *
build_timestamp(EmuArena *arena, const EmuTimestamp *ts)
{
	PbTimestamp *m;

	if (!ts->set)
		return NULL;
	m = emu_arena_alloc(arena, sizeof(PbTimestamp));
	google__protobuf__timestamp__init(m);
	m->seconds = ts->seconds;
	m->nanos = ts->nanos;
	return m;
}

/*
 * stray_backup
 *		The stray_item fault: m answers another key than the call's (its
 *		id, folder and cluster end in "-elsewhere"), as a server that mixed
 *		up its replies would send.
 */
static void
stray_backup(CallContext *ctx, PbBackup *m)
{
	char	  **fields[] = {&m->id, &m->folder_id, &m->source_cluster_id};

	if (!ctx->effect.stray_item)
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
	{
		size_t		len = strlen(*fields[i]);
		char	   *s = emu_arena_alloc(&ctx->arena, len + sizeof("-elsewhere"));

		memcpy(s, *fields[i], len);
		memcpy(s + len, "-elsewhere", sizeof("-elsewhere"));
		*fields[i] = s;
	}
	note_fault(ctx, "stray_item");
}

/*
 * build_backup
 *		A Backup message for b, allocated in arena.
 */
static PbBackup *
build_backup(EmuArena *arena, const EmuBackup *b, bool add_unknown)
{
	PbBackup   *m = emu_arena_alloc(arena, sizeof(PbBackup));
	ProtobufCMessageUnknownField *uf;
	unsigned	nuf = 0;
	bool		shard_nul = false;

	yandex__cloud__mdb__redis__v1__backup__init(m);
	uf = emu_arena_alloc(arena, (3 + b->nshards + FAULT_UNKNOWN_FIELDS) *
						 sizeof(ProtobufCMessageUnknownField));

	set_string(arena, &m->id, b->id, 1, uf, &nuf);
	set_string(arena, &m->folder_id, b->folder_id, 2, uf, &nuf);
	m->created_at = build_timestamp(arena, &b->created_at);
	set_string(arena, &m->source_cluster_id, b->cluster_id, 4, uf, &nuf);
	m->started_at = build_timestamp(arena, &b->started_at);

	for (int i = 0; i < b->nshards; i++)
		if (has_nul(b->shards[i]))
			shard_nul = true;
	if (shard_nul)
	{
		/*
		 * Send every shard name as a raw field 6, not only those with a NUL,
		 * so that the names keep their order.
		 */
		for (int i = 0; i < b->nshards; i++)
			unknown_field(arena, &uf[nuf++], 6, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
						  b->shards[i].data, b->shards[i].len);
	}
	else if (b->nshards > 0)
	{
		m->n_source_shard_names = b->nshards;
		m->source_shard_names = emu_arena_alloc(arena, b->nshards * sizeof(char *));
		for (int i = 0; i < b->nshards; i++)
			m->source_shard_names[i] = (char *) b->shards[i].data;
	}
	m->type = (Yandex__Cloud__Mdb__Redis__V1__Backup__BackupType) b->type;

	if (add_unknown)
		add_fault_unknown_fields(arena, uf, &nuf);
	m->base.n_unknown_fields = nuf;
	m->base.unknown_fields = nuf > 0 ? uf : NULL;
	return m;
}

/*
 * pack_reply
 *		Serialize an OK reply message into the reply payload, followed by
 *		the bytes of the oversize and garbage faults.
 */
static void
pack_reply(CallContext *ctx, const ProtobufCMessage *msg)
{
	static const uint8_t garbage[] = {
		0x0F,					/* field 1, wire type 7 (does not exist) */
		0x12, 0x7F, 'x'			/* field 2, 127 bytes announced, 1 given */
	};
	size_t		size = protobuf_c_message_get_packed_size(msg);
	size_t		extra = 0;
	uint8_t    *p;
	size_t		n;

	if (ctx->effect.oversize > 0)
		extra += 20 + ctx->effect.oversize;
	if (ctx->effect.garbage)
		extra += sizeof(garbage);
	p = emu_malloc(size + extra);
	n = protobuf_c_message_pack(msg, p);
	if (ctx->effect.oversize > 0)
	{
		n += varint_encode((OVERSIZE_FIELD << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
						   p + n);
		n += varint_encode((uint64_t) ctx->effect.oversize, p + n);
		memset(p + n, 'x', ctx->effect.oversize);
		n += ctx->effect.oversize;
		note_fault(ctx, "oversize");
	}
	if (ctx->effect.garbage)
	{
		memcpy(p + n, garbage, sizeof(garbage));
		n += sizeof(garbage);
		note_fault(ctx, "garbage");
	}
	ctx->reply->payload = p;
	ctx->reply->payload_len = n;
}

/*
 * handle_get
 *		BackupService.Get.
 */
static void
handle_get(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbGetRequest *rq = (const PbGetRequest *) request;
	EmuBackup	b;
	PbBackup   *m;

	if (!check_id(ctx, "backup_id", rq->backup_id))
		return;
	if (!emu_data_find_backup(rq->backup_id, &ctx->arena, &b))
	{
		set_error(ctx, GRPC_STATUS_NOT_FOUND, "Backup %s not found", rq->backup_id);
		return;
	}
	if (!check_granted(ctx, "folder", b.folder_id))
		return;
	m = build_backup(&ctx->arena, &b, ctx->effect.unknown_fields);
	if (ctx->effect.unknown_fields)
		note_fault(ctx, "unknown_fields");
	stray_backup(ctx, m);
	ctx->returned = 1;
	pack_reply(ctx, &m->base);
}

/*
 * check_paging
 *		Validate page_size (0..1000, 0 meaning 100) and page_token (valid
 *		UTF-8, at most max_chars characters, issued by this server for this
 *		method and key); sets the error and returns false if either is bad.
 */
static bool
check_paging(CallContext *ctx, const char *key, int64_t *page_size,
			 const char *page_token, size_t max_chars, int64_t *offset)
{
	size_t		nchars;

	*offset = 0;
	if (*page_size < 0 || *page_size > EMU_MAX_PAGE_SIZE)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: page_size: must be in range 0..%d",
				  EMU_MAX_PAGE_SIZE);
		return false;
	}
	if (*page_size == 0)
		*page_size = EMU_DEFAULT_PAGE_SIZE;
	if (!emu_utf8_valid(page_token, strlen(page_token), &nchars))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: page_token: invalid UTF-8");
		return false;
	}
	if (nchars > max_chars)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: page_token: length must be at most %d characters",
				  (int) max_chars);
		return false;
	}
	if (page_token[0] != '\0' &&
		!parse_page_token(ctx->method, key, page_token, offset))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT, "Invalid page token");
		return false;
	}
	return true;
}

/*
 * page_cache_bucket
 *		Bucket of a pre-encoded page.
 */
static unsigned
page_cache_bucket(EmuMethod method, const char *key, int64_t start,
				  int64_t page_size)
{
	uint64_t	h = emu_hash_bytes((uint64_t) method, key, strlen(key));
	int64_t		nums[2] = {start, page_size};

	return (unsigned) (emu_hash_bytes(h, nums, sizeof(nums)) % PAGE_CACHE_BUCKETS);
}

/*
 * page_cache_find
 *		The pre-encoded page, or NULL.
 */
static const PageEntry *
page_cache_find(EmuMethod method, const char *key, int64_t start,
				int64_t page_size)
{
	const PageEntry *e;

	if (page_cache == NULL)
		return NULL;
	e = page_cache[page_cache_bucket(method, key, start, page_size)];
	for (; e != NULL; e = e->next)
		if (e->method == method && e->start == start &&
			e->page_size == page_size && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/*
 * page_cache_add
 *		Keep a copy of a packed page, unless the cache is full.
 */
static void
page_cache_add(CallContext *ctx, const char *key, int64_t start,
			   int64_t page_size)
{
	PageEntry  *e;
	unsigned	b;

	if (preencoded_bytes + ctx->reply->payload_len > preencoded_max_bytes)
	{
		if (!preencoded_full_warned)
			fprintf(stderr, "%s: --preencoded-max-mb reached; further pages are encoded per call\n",
					EMU_PROGNAME);
		preencoded_full_warned = true;
		return;
	}
	if (page_cache == NULL)
	{
		page_cache = emu_malloc(PAGE_CACHE_BUCKETS * sizeof(PageEntry *));
		memset(page_cache, 0, PAGE_CACHE_BUCKETS * sizeof(PageEntry *));
	}
	e = emu_malloc(sizeof(PageEntry));
	e->method = ctx->method;
	e->key = emu_strdup(key);
	e->start = start;
	e->page_size = page_size;
	e->len = ctx->reply->payload_len;
	e->bytes = emu_malloc(e->len > 0 ? e->len : 1);
	if (e->len > 0)
		memcpy(e->bytes, ctx->reply->payload, e->len);
	e->returned = ctx->returned;
	memcpy(e->next_token, ctx->next_token, sizeof(e->next_token));
	b = page_cache_bucket(ctx->method, key, start, page_size);
	e->next = page_cache[b];
	page_cache[b] = e;
	preencoded_bytes += e->len;
	preencoded_pages++;
}

/*
 * emu_service_forget_pages
 *		Drop the pre-encoded pages of folder_id's List and of cluster_id's
 *		ListBackups, after a change to their backups; later calls encode
 *		(and cache) them anew.
 */
void
emu_service_forget_pages(const char *folder_id, const char *cluster_id)
{
	if (page_cache == NULL)
		return;
	for (int b = 0; b < PAGE_CACHE_BUCKETS; b++)
	{
		PageEntry **link = &page_cache[b];

		while (*link != NULL)
		{
			PageEntry  *e = *link;

			if ((e->method == METHOD_LIST && strcmp(e->key, folder_id) == 0) ||
				(e->method == METHOD_CLUSTER_LIST && strcmp(e->key, cluster_id) == 0))
			{
				*link = e->next;
				preencoded_bytes -= e->len;
				preencoded_pages--;
				free(e->key);
				free(e->bytes);
				free(e);
			}
			else
				link = &e->next;
		}
	}
}

/*
 * build_listing_page
 *		The reply of a List or ListBackups page that starts at offset
 *		(validated already): from the pre-encoded pages when possible.
 */
static void
build_listing_page(CallContext *ctx, const char *key, int64_t page_size,
				   int64_t offset, const EmuListing *listing)
{
	int64_t		total;
	int64_t		start;
	int64_t		end;
	PbBackup  **items;
	ProtobufCMessageUnknownField *uf;
	unsigned	nuf = 0;
	bool		cacheable;

	total = emu_listing_count(listing);
	start = offset < total ? offset : total;
	cacheable = preencoded && !ctx->effect.garbage && ctx->effect.oversize == 0 &&
		!ctx->effect.unknown_fields && !ctx->effect.token_loop &&
		!ctx->effect.stray_item;
	if (cacheable)
	{
		const PageEntry *e = page_cache_find(ctx->method, key, start, page_size);

		if (e != NULL)
		{
			ctx->reply->payload = emu_malloc(e->len > 0 ? e->len : 1);
			if (e->len > 0)
				memcpy(ctx->reply->payload, e->bytes, e->len);
			ctx->reply->payload_len = e->len;
			ctx->returned = e->returned;
			memcpy(ctx->next_token, e->next_token, sizeof(ctx->next_token));
			ctx->has_next_token = true;
			return;
		}
	}

	end = total - start > page_size ? start + page_size : total;
	items = emu_arena_alloc(&ctx->arena, (end - start + 1) * sizeof(PbBackup *));
	for (int64_t pos = start; pos < end; pos++)
	{
		EmuBackup	b;

		emu_listing_get(listing, pos, &ctx->arena, &b);
		items[pos - start] = build_backup(&ctx->arena, &b, ctx->effect.unknown_fields);
		stray_backup(ctx, items[pos - start]);
	}
	ctx->returned = end - start;

	ctx->next_token[0] = '\0';
	if (ctx->effect.token_loop)
	{
		make_page_token(ctx->method, key, page_size, ctx->next_token);
		note_fault(ctx, "token_loop");
	}
	else if (end < total)
		make_page_token(ctx->method, key, end, ctx->next_token);
	ctx->has_next_token = true;

	uf = emu_arena_alloc(&ctx->arena,
						 FAULT_UNKNOWN_FIELDS * sizeof(ProtobufCMessageUnknownField));
	if (ctx->effect.unknown_fields)
	{
		add_fault_unknown_fields(&ctx->arena, uf, &nuf);
		note_fault(ctx, "unknown_fields");
	}

	if (ctx->method == METHOD_LIST)
	{
		PbListResponse resp = YANDEX__CLOUD__MDB__REDIS__V1__LIST_BACKUPS_RESPONSE__INIT;

		resp.n_backups = end - start;
		resp.backups = items;
		resp.next_page_token = ctx->next_token;
		resp.base.n_unknown_fields = nuf;
		resp.base.unknown_fields = nuf ? uf : NULL;
		pack_reply(ctx, &resp.base);
	}
	else
	{
		PbClusterResponse resp = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTER_BACKUPS_RESPONSE__INIT;

		resp.n_backups = end - start;
		resp.backups = items;
		resp.next_page_token = ctx->next_token;
		resp.base.n_unknown_fields = nuf;
		resp.base.unknown_fields = nuf ? uf : NULL;
		pack_reply(ctx, &resp.base);
	}
	if (cacheable)
		page_cache_add(ctx, key, start, page_size);
}

/*
 * handle_listing
 *		The paging part of List and ListBackups: validate page_size and
 *		page_token, build the page and its reply.
 */
static void
handle_listing(CallContext *ctx, const char *key, int64_t page_size,
			   const char *page_token, const EmuListing *listing)
{
	int64_t		offset;

	if (!check_paging(ctx, key, &page_size, page_token,
					  EMU_MAX_PAGE_TOKEN_CHARS, &offset))
		return;
	build_listing_page(ctx, key, page_size, offset, listing);
}

/*
 * emu_service_set_preencoded
 *		--preencoded PAGE_SIZE: cache packed List / ListBackups pages; with
 *		PAGE_SIZE > 0, the List pages of that size of every generated
 *		folder are encoded at start-up (emu_service_preencode).
 */
void
emu_service_set_preencoded(const char *arg)
{
	char	   *end;
	long long	v = strtoll(arg, &end, 10);

	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 0 || v > EMU_MAX_PAGE_SIZE)
		emu_fatal("--preencoded %s: expected a page size 0..%d (0: encode on first use only)",
				  arg, EMU_MAX_PAGE_SIZE);
	preencoded = true;
	preencoded_page_size = v;
}

/*
 * emu_service_set_preencoded_max
 *		--preencoded-max-mb MB
 */
void
emu_service_set_preencoded_max(const char *arg)
{
	char	   *end;
	long long	v = strtoll(arg, &end, 10);

	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 1 || v > 1024 * 1024)
		emu_fatal("--preencoded-max-mb %s: expected 1..1048576", arg);
	preencoded_max_bytes = (size_t) v * 1024 * 1024;
}

/*
 * emu_service_preencode
 *		Encode the List pages of --preencoded PAGE_SIZE of every generated
 *		folder now.  Returns the number of pages cached (and their bytes).
 */
int64_t
emu_service_preencode(size_t *bytes)
{
	int			nfolders = 0;

	if (preencoded && preencoded_page_size > 0)
	{
		emu_data_generated_folder(0, &nfolders);
		for (int i = 0; i < nfolders; i++)
		{
			const char *id = emu_data_generated_folder(i, &nfolders);
			EmuListing	listing;
			int64_t		total;
			int64_t		offset = 0;

			if (id == NULL)
				continue;
			emu_data_folder_listing(id, &listing);
			total = emu_listing_count(&listing);
			do
			{
				CallContext ctx;
				EmuReply	reply;

				memset(&ctx, 0, sizeof(ctx));
				memset(&reply, 0, sizeof(reply));
				ctx.reply = &reply;
				ctx.method = METHOD_LIST;
				build_listing_page(&ctx, id, preencoded_page_size, offset, &listing);
				emu_reply_free(&reply);
				emu_buf_free(&ctx.faults);
				emu_arena_free(&ctx.arena);
				offset += preencoded_page_size;
			} while (offset < total && !preencoded_full_warned);
		}
	}
	*bytes = preencoded_bytes;
	return preencoded_pages;
}

/*
 * handle_list
 *		BackupService.List.
 */
static void
handle_list(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbListRequest *rq = (const PbListRequest *) request;
	EmuListing	listing;

	if (!check_id(ctx, "folder_id", rq->folder_id))
		return;
	if (!check_granted(ctx, "folder", emu_bytes_str(rq->folder_id)))
		return;
	emu_data_folder_listing(rq->folder_id, &listing);
	handle_listing(ctx, rq->folder_id, rq->page_size, rq->page_token, &listing);
}

/*
 * handle_cluster_list
 *		ClusterService.ListBackups.
 */
static void
handle_cluster_list(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbClusterRequest *rq = (const PbClusterRequest *) request;
	EmuListing	listing;

	if (!check_id(ctx, "cluster_id", rq->cluster_id))
		return;
	if (!emu_data_cluster_listing(rq->cluster_id, &listing))
	{
		set_error(ctx, GRPC_STATUS_NOT_FOUND, "Cluster %s not found", rq->cluster_id);
		return;
	}
	if (!check_granted(ctx, "folder", listing.owner_folder))
		return;
	handle_listing(ctx, rq->cluster_id, rq->page_size, rq->page_token, &listing);
}

/*
 * parse_name_filter
 *		The filter of ListFoldersRequest and ListClustersRequest: "" or
 *		name="NAME" (spaces around '=' allowed; \" and \\ escapes).  Sets *name (malloc'ed, NULL for
 *		no filter); false if the filter is not of that form.
 */
static bool
parse_name_filter(const char *filter, char **name)
{
	const char *p = filter;
	EmuBuf		buf = {0};

	*name = NULL;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return true;
	if (strncmp(p, "name", 4) != 0)
		return false;
	p += 4;
	while (*p == ' ')
		p++;
	if (*p++ != '=')
		return false;
	while (*p == ' ')
		p++;
	if (*p++ != '"')
		return false;
	while (*p != '"')
	{
		if (*p == '\0')
			goto bad;
		if (*p == '\\')
		{
			p++;
			if (*p != '"' && *p != '\\')
				goto bad;
		}
		emu_buf_append(&buf, p, 1);
		p++;
	}
	p++;
	while (*p == ' ')
		p++;
	if (*p != '\0')
		goto bad;
	emu_buf_append(&buf, "", 0);
	*name = buf.data;
	return true;
bad:
	emu_buf_free(&buf);
	return false;
}

/*
 * page_bounds
 *		The part [*start, *end) of a listing of total items that the page
 *		of page_size starting at offset (validated already) shows, and the
 *		page's next token in ctx (bound to key; the token_loop fault
 *		repeats one).
 */
static void
page_bounds(CallContext *ctx, const char *key, int64_t page_size,
			int64_t offset, int64_t total, int64_t *start, int64_t *end)
{
	*start = offset < total ? offset : total;
	*end = total - *start > page_size ? *start + page_size : total;
	ctx->returned = *end - *start;
	ctx->next_token[0] = '\0';
	if (ctx->effect.token_loop)
	{
		make_page_token(ctx->method, key, page_size, ctx->next_token);
		note_fault(ctx, "token_loop");
	}
	else if (*end < total)
		make_page_token(ctx->method, key, *end, ctx->next_token);
	ctx->has_next_token = true;
}

/*
 * filter_key
 *		The key that page tokens of a filtered listing are bound to: the
 *		id, a newline and the filter, so that a token issued for another
 *		filter is refused.
 */
static void
filter_key(EmuBuf *key, const char *id, const char *filter)
{
	emu_buf_append_str(key, id);
	emu_buf_append(key, "\n", 1);
	emu_buf_append_str(key, filter);
	emu_buf_append(key, "", 0);
}

/*
 * handle_folder_list
 *		resourcemanager FolderService.List.  The cloud must exist and be
 *		granted (else PERMISSION_DENIED, as for a cloud one cannot see);
 *		folders come in definition order, all ACTIVE.
 */
static void
handle_folder_list(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbFolderRequest *rq = (const PbFolderRequest *) request;
	int			cloud;
	char	   *name = NULL;
	EmuBuf		key = {0};
	int64_t		page_size = rq->page_size;
	int64_t		offset;
	int			nfolders;
	int		   *match;
	int			nmatch = 0;
	int64_t		start,
				end;
	PbFolder  **items;
	PbFolderResponse resp = YANDEX__CLOUD__RESOURCEMANAGER__V1__LIST_FOLDERS_RESPONSE__INIT;
	size_t		nchars;

	if (!check_id(ctx, "cloud_id", rq->cloud_id))
		return;
	cloud = emu_data_find_cloud(rq->cloud_id);
	if (cloud < 0)
	{
		deny(ctx, "cloud", rq->cloud_id);
		return;
	}
	if (!check_granted(ctx, "cloud", emu_bytes_str(rq->cloud_id)))
		return;
	if (!emu_utf8_valid(rq->filter, strlen(rq->filter), &nchars) ||
		nchars > MAX_FILTER_CHARS ||
		!parse_name_filter(rq->filter, &name))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: filter: only name=\"NAME\" is supported");
		return;
	}
	filter_key(&key, rq->cloud_id, rq->filter);
	if (!check_paging(ctx, key.data, &page_size, rq->page_token,
					  EMU_MAX_FOLDER_PAGE_TOKEN_CHARS, &offset))
		goto done;

	nfolders = emu_data_cloud_folder_count(cloud);
	match = emu_arena_alloc(&ctx->arena, (nfolders + 1) * sizeof(int));
	for (int i = 0; i < nfolders; i++)
	{
		EmuFolderInfo f;

		if (name != NULL)
		{
			emu_data_cloud_folder(cloud, i, &f);
			if (!emu_bytes_equal_str(f.name, name))
				continue;
		}
		match[nmatch++] = i;
	}
	page_bounds(ctx, key.data, page_size, offset, nmatch, &start, &end);
	items = emu_arena_alloc(&ctx->arena, (end - start + 1) * sizeof(PbFolder *));
	for (int64_t pos = start; pos < end; pos++)
	{
		EmuFolderInfo f;
		PbFolder   *m = emu_arena_alloc(&ctx->arena, sizeof(PbFolder));

		emu_data_cloud_folder(cloud, match[pos], &f);
		yandex__cloud__resourcemanager__v1__folder__init(m);
		m->id = (char *) f.id.data;
		m->cloud_id = (char *) f.cloud_id.data;
		m->created_at = build_timestamp(&ctx->arena, &f.created_at);
		m->name = (char *) f.name.data;
		m->status = YANDEX__CLOUD__RESOURCEMANAGER__V1__FOLDER__STATUS__ACTIVE;
		items[pos - start] = m;
	}
	resp.n_folders = end - start;
	resp.folders = items;
	resp.next_page_token = ctx->next_token;
	pack_reply(ctx, &resp.base);
done:
	free(name);
	emu_buf_free(&key);
}

/*
 * raw_label
 *		A label whose key or value holds a NUL, which protobuf-c cannot
 *		pack: its map entry encoded by hand as a raw field 6.
 */
static void
raw_label(EmuArena *arena, ProtobufCMessageUnknownField *uf,
		  const EmuLabel *label)
{
	EmuBuf		entry = {0};
	uint8_t		len[10];

	emu_buf_append(&entry, "\x0a", 1);	/* key: field 1, length-delimited */
	emu_buf_append(&entry, len, varint_encode(label->key.len, len));
	emu_buf_append(&entry, label->key.data, label->key.len);
	emu_buf_append(&entry, "\x12", 1);	/* value: field 2 */
	emu_buf_append(&entry, len, varint_encode(label->value.len, len));
	emu_buf_append(&entry, label->value.data, label->value.len);
	unknown_field(arena, uf, 6, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
				  entry.data, entry.len);
	emu_buf_free(&entry);
}

/*
 * build_cluster_labels
 *		Cluster.labels, in data order; labels with a NUL go to uf.
 */
static void
build_cluster_labels(EmuArena *arena, PbCluster *m, const EmuClusterInfo *c,
					 ProtobufCMessageUnknownField *uf, unsigned *nuf)
{
	m->labels = emu_arena_alloc(arena, (c->nlabels + 1) * sizeof(PbLabel *));
	for (int i = 0; i < c->nlabels; i++)
	{
		const EmuLabel *l = &c->labels[i];
		PbLabel    *e;

		if (has_nul(l->key) || has_nul(l->value))
		{
			raw_label(arena, &uf[(*nuf)++], l);
			continue;
		}
		e = emu_arena_alloc(arena, sizeof(PbLabel));
		yandex__cloud__mdb__redis__v1__cluster__labels_entry__init(e);
		e->key = (char *) l->key.data;
		e->value = (char *) l->value.data;
		m->labels[m->n_labels++] = e;
	}
}

/*
 * build_cluster_config
 *		Cluster.config, or NULL when none of its fields is set.
 */
static PbClusterConfig *
build_cluster_config(EmuArena *arena, const EmuClusterInfo *c)
{
	PbClusterConfig *m;
	ProtobufCMessageUnknownField *uf;
	unsigned	nuf = 0;

	if (c->version.len == 0 && !c->has_backup_window && !c->has_retain_days)
		return NULL;
	m = emu_arena_alloc(arena, sizeof(PbClusterConfig));
	yandex__cloud__mdb__redis__v1__cluster_config__init(m);
	uf = emu_arena_alloc(arena, sizeof(ProtobufCMessageUnknownField));
	set_string(arena, &m->version, c->version, 1, uf, &nuf);
	if (c->has_backup_window)
	{
		Google__Type__TimeOfDay *t = emu_arena_alloc(arena, sizeof(*t));

		google__type__time_of_day__init(t);
		t->hours = c->backup_window[0];
		t->minutes = c->backup_window[1];
		t->seconds = c->backup_window[2];
		t->nanos = c->backup_window[3];
		m->backup_window_start = t;
	}
	if (c->has_retain_days)
	{
		Google__Protobuf__Int64Value *v = emu_arena_alloc(arena, sizeof(*v));

		google__protobuf__int64_value__init(v);
		v->value = c->retain_days;
		m->backup_retain_period_days = v;
	}
	m->base.n_unknown_fields = nuf;
	m->base.unknown_fields = nuf > 0 ? uf : NULL;
	return m;
}

/*
 * build_cluster
 *		A Cluster message for c, allocated in arena.  Strings holding a NUL
 *		are sent as raw fields, as in build_backup.
 */
static PbCluster *
build_cluster(EmuArena *arena, const EmuClusterInfo *c, bool add_unknown)
{
	PbCluster  *m = emu_arena_alloc(arena, sizeof(PbCluster));
	ProtobufCMessageUnknownField *uf;
	unsigned	nuf = 0;
	bool		group_nul = false;

	yandex__cloud__mdb__redis__v1__cluster__init(m);
	uf = emu_arena_alloc(arena, (5 + c->nlabels + c->nsecurity_groups +
								 FAULT_UNKNOWN_FIELDS) *
						 sizeof(ProtobufCMessageUnknownField));
	set_string(arena, &m->id, c->id, 1, uf, &nuf);
	set_string(arena, &m->folder_id, c->folder_id, 2, uf, &nuf);
	m->created_at = build_timestamp(arena, &c->created_at);
	set_string(arena, &m->name, c->name, 4, uf, &nuf);
	set_string(arena, &m->description, c->description, 5, uf, &nuf);
	build_cluster_labels(arena, m, c, uf, &nuf);
	m->environment = (Yandex__Cloud__Mdb__Redis__V1__Cluster__Environment) c->environment;
	m->config = build_cluster_config(arena, c);
	set_string(arena, &m->network_id, c->network_id, 10, uf, &nuf);
	m->health = (Yandex__Cloud__Mdb__Redis__V1__Cluster__Health) c->health;
	m->status = (Yandex__Cloud__Mdb__Redis__V1__Cluster__Status) c->status;
	m->sharded = c->sharded;
	for (int i = 0; i < c->nsecurity_groups; i++)
		group_nul = group_nul || has_nul(c->security_groups[i]);
	m->security_group_ids = emu_arena_alloc(arena, (c->nsecurity_groups + 1) * sizeof(char *));
	for (int i = 0; i < c->nsecurity_groups; i++)
	{
		/* with a NUL in any of them, all go raw, to keep their order */
		if (group_nul)
			unknown_field(arena, &uf[nuf++], 16, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
						  c->security_groups[i].data, c->security_groups[i].len);
		else
			m->security_group_ids[m->n_security_group_ids++] =
				(char *) c->security_groups[i].data;
	}
	m->tls_enabled = c->tls_enabled;
	m->deletion_protection = c->deletion_protection;
	m->persistence_mode = (Yandex__Cloud__Mdb__Redis__V1__Cluster__PersistenceMode) c->persistence_mode;
	if (add_unknown)
		add_fault_unknown_fields(arena, uf, &nuf);
	m->base.n_unknown_fields = nuf;
	m->base.unknown_fields = nuf > 0 ? uf : NULL;
	return m;
}

/*
 * handle_cluster_get
 *		ClusterService.Get.
 */
static void
handle_cluster_get(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbGetClusterRequest *rq = (const PbGetClusterRequest *) request;
	EmuClusterInfo c;
	PbCluster  *m;

	if (!check_id(ctx, "cluster_id", rq->cluster_id))
		return;
	if (!emu_data_find_cluster(rq->cluster_id, &ctx->arena, &c))
	{
		set_error(ctx, GRPC_STATUS_NOT_FOUND, "Cluster %s not found", rq->cluster_id);
		return;
	}
	if (!check_granted(ctx, "folder", c.folder_id))
		return;
	m = build_cluster(&ctx->arena, &c, ctx->effect.unknown_fields);
	if (ctx->effect.unknown_fields)
		note_fault(ctx, "unknown_fields");
	ctx->returned = 1;
	pack_reply(ctx, &m->base);
}

/*
 * check_cluster_filter
 *		The filter of ListClustersRequest: "" or name="NAME", at most 1000
 *		characters, NAME a valid cluster name.  Sets *name (malloc'ed, NULL
 *		for no filter); sets the error and returns false otherwise.
 */
static bool
check_cluster_filter(CallContext *ctx, const char *filter, char **name)
{
	size_t		nchars;

	*name = NULL;
	if (!emu_utf8_valid(filter, strlen(filter), &nchars) ||
		nchars > MAX_FILTER_CHARS || !parse_name_filter(filter, name))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: filter: only name=\"NAME\" is supported");
		return false;
	}
	if (*name != NULL && !emu_cluster_name_valid(*name))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: filter: invalid cluster name");
		free(*name);
		*name = NULL;
		return false;
	}
	return true;
}

/*
 * handle_clusters_list
 *		ClusterService.List: the folder's clusters (emu_data_folder_clusters),
 *		those of the filter's name only when there is one.  Page tokens are
 *		bound to the folder and the filter.
 */
static void
handle_clusters_list(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbClustersRequest *rq = (const PbClustersRequest *) request;
	PbClustersResponse resp = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTERS_RESPONSE__INIT;
	char	   *name = NULL;
	EmuBuf		key = {0};
	int64_t		page_size = rq->page_size;
	int64_t		offset,
				start,
				end;
	EmuClusterInfo *all;
	int			nall;
	int			nmatch = 0;

	if (!check_id(ctx, "folder_id", rq->folder_id) ||
		!check_cluster_filter(ctx, rq->filter, &name))
		return;
	filter_key(&key, rq->folder_id, rq->filter);
	if (!check_granted(ctx, "folder", emu_bytes_str(rq->folder_id)) ||
		!check_paging(ctx, key.data, &page_size, rq->page_token,
					  EMU_MAX_PAGE_TOKEN_CHARS, &offset))
		goto done;

	nall = emu_data_folder_clusters(rq->folder_id, &ctx->arena, &all);
	for (int i = 0; i < nall; i++)
		if (name == NULL || emu_bytes_equal_str(all[i].name, name))
			all[nmatch++] = all[i];
	page_bounds(ctx, key.data, page_size, offset, nmatch, &start, &end);
	resp.clusters = emu_arena_alloc(&ctx->arena, (end - start + 1) * sizeof(PbCluster *));
	for (int64_t pos = start; pos < end; pos++)
		resp.clusters[resp.n_clusters++] =
			build_cluster(&ctx->arena, &all[pos], ctx->effect.unknown_fields);
	if (ctx->effect.unknown_fields)
		note_fault(ctx, "unknown_fields");
	resp.next_page_token = ctx->next_token;
	pack_reply(ctx, &resp.base);
done:
	free(name);
	emu_buf_free(&key);
}

/*
 * handle_iam_create
 *		IamTokenService.Create: exchange a service account's JWT for a
 *		token.  No authorization needed.  The JWT is never echoed or
 *		logged.
 */
static void
handle_iam_create(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbIamRequest *rq = (const PbIamRequest *) request;
	PbIamResponse resp = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_RESPONSE__INIT;
	PbTimestamp expires = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	const char *err;
	const char *sa = NULL;
	size_t		nchars;
	size_t		len;
	char		token[128];
	int64_t		expires_at;

	if (rq->identity_case == YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_YANDEX_PASSPORT_OAUTH_TOKEN)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: yandex_passport_oauth_token is not supported here; use a service account's jwt");
		return;
	}
	if (rq->identity_case != YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_JWT ||
		rq->jwt == NULL || rq->jwt[0] == '\0')
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: jwt is required");
		return;
	}
	len = strlen(rq->jwt);
	if (!emu_utf8_valid(rq->jwt, len, &nchars))
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: jwt: invalid UTF-8");
		return;
	}
	if (nchars > IAM_MAX_JWT_CHARS)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Request validation error: jwt: length must be at most %d characters",
				  IAM_MAX_JWT_CHARS);
		return;
	}
	err = emu_iam_verify_jwt(rq->jwt, len, ctx->kid, sizeof(ctx->kid), &sa);
	ctx->log.service_account = sa;
	if (err != NULL)
	{
		ctx->log.auth = "invalid";
		set_error(ctx, GRPC_STATUS_UNAUTHENTICATED, "%s", err);
		return;
	}
	emu_iam_issue_token(sa, token, sizeof(token), &expires_at);
	expires.seconds = expires_at;
	resp.iam_token = token;
	resp.expires_at = &expires;
	ctx->log.auth = "ok";
	pack_reply(ctx, &resp.base);
}

/*
 * pack_any
 *		Fill any with msg, packed in arena, and its type URL.
 */
static void
pack_any(EmuArena *arena, PbAny *any, const ProtobufCMessage *msg)
{
	static const char prefix[] = "type.googleapis.com/";
	size_t		len = protobuf_c_message_get_packed_size(msg);
	size_t		name_len = strlen(msg->descriptor->name);
	char	   *url = emu_arena_alloc(arena, sizeof(prefix) + name_len);

	memcpy(url, prefix, sizeof(prefix) - 1);
	memcpy(url + sizeof(prefix) - 1, msg->descriptor->name, name_len + 1);
	google__protobuf__any__init(any);
	any->type_url = url;
	any->value.data = emu_arena_alloc(arena, len + 1);
	any->value.len = protobuf_c_message_pack(msg, any->value.data);
}

/*
 * pack_operation_metadata
 *		An operation's metadata: DeleteBackupMetadata or
 *		BackupClusterMetadata naming its target.
 */
static void
pack_operation_metadata(EmuArena *arena, const EmuOperation *op, PbAny *any)
{
	if (op->kind == EMU_OP_DELETE_BACKUP)
	{
		PbDeleteMetadata m = YANDEX__CLOUD__MDB__REDIS__V1__DELETE_BACKUP_METADATA__INIT;

		m.backup_id = op->target;
		pack_any(arena, any, &m.base);
	}
	else
	{
		PbBackupClusterMetadata m = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP_CLUSTER_METADATA__INIT;

		m.cluster_id = op->target;
		pack_any(arena, any, &m.base);
	}
}

/*
 * pack_operation_response
 *		A successful operation's response: google.protobuf.Empty for a
 *		Delete, the Cluster (as it is now) for a Backup.
 */
static void
pack_operation_response(EmuArena *arena, const EmuOperation *op, PbAny *any)
{
	EmuClusterInfo c;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;

	if (op->kind == EMU_OP_BACKUP_CLUSTER &&
		emu_data_find_cluster(op->target, arena, &c))
		pack_any(arena, any, &build_cluster(arena, &c, false)->base);
	else
		pack_any(arena, any, &empty.base);
}

/*
 * answer_operation
 *		Reply with the operation op as it is now.
 */
static void
answer_operation(CallContext *ctx, const EmuOperation *op)
{
	PbOperation m = YANDEX__CLOUD__OPERATION__OPERATION__INIT;
	PbAny		metadata;
	PbAny		response;
	PbStatus	error = GOOGLE__RPC__STATUS__INIT;

	m.id = (char *) op->id;
	m.description = (char *) emu_op_kind(op->kind)->description;
	m.created_at = build_timestamp(&ctx->arena, &op->created_at);
	m.created_by = op->account;
	m.modified_at = build_timestamp(&ctx->arena, &op->modified_at);
	m.done = op->done;
	pack_operation_metadata(&ctx->arena, op, &metadata);
	m.metadata = &metadata;
	if (op->done && op->error_code != GRPC_STATUS_OK)
	{
		error.code = op->error_code;
		error.message = op->error_message;
		m.result_case = YANDEX__CLOUD__OPERATION__OPERATION__RESULT_ERROR;
		m.error = &error;
	}
	else if (op->done)
	{
		pack_operation_response(&ctx->arena, op, &response);
		m.result_case = YANDEX__CLOUD__OPERATION__OPERATION__RESULT_RESPONSE;
		m.response = &response;
	}
	ctx->log.operation_id = op->id;
	ctx->log.done = op->done;
	pack_reply(ctx, &m.base);
}

/*
 * check_idempotency_key
 *		An idempotency key, when sent, is 1 to 128 bytes.
 */
static bool
check_idempotency_key(CallContext *ctx)
{
	const EmuRequest *req = ctx->req;

	if (!req->has_idempotency_key ||
		(req->idempotency_key.len > 0 &&
		 req->idempotency_key.len <= MAX_IDEMPOTENCY_KEY_BYTES))
		return true;
	set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
			  "Request validation error: idempotency-key: length must be 1 to %d bytes",
			  MAX_IDEMPOTENCY_KEY_BYTES);
	return false;
}

/*
 * reuse_operation
 *		When the call carries an idempotency key its account used before,
 *		the same request answers that call's operation (also once it has
 *		finished); another request with the key is INVALID_ARGUMENT.
 *		Returns true when that decided the reply.
 */
static bool
reuse_operation(CallContext *ctx, EmuOpKind kind, const char *target)
{
	const EmuOperation *op;

	if (!ctx->req->has_idempotency_key)
		return false;
	op = emu_operation_find_key(ctx->account, ctx->req->idempotency_key);
	if (op == NULL)
		return false;
	if (op->kind != kind || strcmp(op->target, target) != 0)
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  "Idempotency key was already used for another request (%s of %s)",
				  emu_op_kind(op->kind)->method, op->target);
	else
		answer_operation(ctx, op);
	return true;
}

/*
 * check_may_change
 *		May the caller change the backup or cluster (kind) id of folder?
 *		It needs the folder's grant and must not be --read-only; if not,
 *		deny the call and return false.
 */
static bool
check_may_change(CallContext *ctx, const char *kind, const char *id,
				 EmuBytes folder)
{
	if (emu_grants_allow(ctx->grants, folder) && !ctx->read_only)
		return true;
	deny(ctx, kind, id);
	return false;
}

/*
 * start_operation
 *		Start the operation of a mutating call and answer it, unless one of
 *		the same kind on the same target is still running
 *		(FAILED_PRECONDITION, as the service answers a conflicting
 *		operation).  The op_error fault makes it one that will fail.
 */
static void
start_operation(CallContext *ctx, EmuOpKind kind, const char *target)
{
	const EmuOperation *op = emu_operation_running(kind, target);
	EmuBytes	key = {NULL, 0};

	if (op != NULL)
	{
		set_error(ctx, GRPC_STATUS_FAILED_PRECONDITION,
				  "Conflicting operation %s detected", op->id);
		return;
	}
	if (ctx->req->has_idempotency_key)
		key = ctx->req->idempotency_key;
	if (ctx->effect.op_error)
		note_fault(ctx, "op_error");
	op = emu_operation_start(kind, target, ctx->account, key,
							 ctx->effect.op_error ? ctx->effect.op_error_code :
							 GRPC_STATUS_OK, ctx->effect.op_error_message);
	answer_operation(ctx, op);
}

/*
 * target_folder
 *		The folder of what an operation of kind would change: the backup's
 *		(as Get finds it) or the live cluster's.  False, with NOT_FOUND set,
 *		when there is none.
 */
static bool
target_folder(CallContext *ctx, EmuOpKind kind, const char *id,
			  EmuBytes *folder)
{
	EmuBackup	b;
	EmuClusterInfo c;

	if (kind == EMU_OP_DELETE_BACKUP && emu_data_find_backup(id, &ctx->arena, &b))
		*folder = b.folder_id;
	else if (kind == EMU_OP_BACKUP_CLUSTER && emu_data_find_cluster(id, &ctx->arena, &c))
		*folder = c.folder_id;
	else
	{
		set_error(ctx, GRPC_STATUS_NOT_FOUND, "%s %s not found",
				  emu_op_kind(kind)->target_title, id);
		return false;
	}
	return true;
}

/*
 * handle_change
 *		BackupService.Delete (checked as Get) and ClusterService.Backup (of
 *		a live cluster): the caller must be allowed to change the folder of
 *		the backup or cluster id; then the operation starts.
 */
static void
handle_change(CallContext *ctx, EmuOpKind kind, const char *id)
{
	EmuBytes	folder;

	if (check_id(ctx, emu_op_kind(kind)->target_field, id) &&
		check_idempotency_key(ctx) && !reuse_operation(ctx, kind, id) &&
		target_folder(ctx, kind, id, &folder) &&
		check_may_change(ctx, emu_op_kind(kind)->target, id, folder))
		start_operation(ctx, kind, id);
}

/*
 * handle_backup_delete
 *		BackupService.Delete.
 */
static void
handle_backup_delete(CallContext *ctx, const ProtobufCMessage *request)
{
	handle_change(ctx, EMU_OP_DELETE_BACKUP,
				  ((const PbDeleteRequest *) request)->backup_id);
}

/*
 * handle_cluster_backup
 *		ClusterService.Backup.
 */
static void
handle_cluster_backup(CallContext *ctx, const ProtobufCMessage *request)
{
	handle_change(ctx, EMU_OP_BACKUP_CLUSTER,
				  ((const PbBackupClusterRequest *) request)->cluster_id);
}

/*
 * handle_operation_get
 *		OperationService.Get: an operation the caller's account started.
 */
static void
handle_operation_get(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbGetOperationRequest *rq = (const PbGetOperationRequest *) request;
	const EmuOperation *op;

	if (!check_id(ctx, "operation_id", rq->operation_id))
		return;
	op = emu_operation_find(rq->operation_id);
	if (op == NULL)
	{
		set_error(ctx, GRPC_STATUS_NOT_FOUND, "Operation %s not found",
				  rq->operation_id);
		return;
	}
	if (strcmp(op->account, ctx->account) != 0)
	{
		deny(ctx, "operation", rq->operation_id);
		return;
	}
	answer_operation(ctx, op);
}

/* Answers one parsed request of a method (methods[].handle). */
typedef void (*MethodHandler) (CallContext *ctx, const ProtobufCMessage *request);

/*
 * What the emulator knows of each method it serves, indexed by EmuMethod:
 * its gRPC path, its short name (in the log and in @method: fault scopes),
 * its request message, the request's id field (which also names the field
 * in the log and is the KEY of @KEY faults), whether the request pages,
 * whether it has a filter (logged too), whether a caller needs a token,
 * whether it changes things (answers an Operation; lose_reply applies),
 * and the function that answers it.
 * IamTokenService.Create has no id field: its calls are keyed, and logged,
 * by the key id ("key_id") in the header of the JWT they carry.
 */
typedef struct MethodInfo
{
	const char *path;
	const char *name;
	const ProtobufCMessageDescriptor *request;
	const char *id_field;		/* NULL: keyed by the JWT's kid */
	bool		paged;			/* has page_size and page_token */
	bool		filtered;		/* has a filter (logged) */
	bool		needs_token;
	bool		mutating;
	MethodHandler handle;
} MethodInfo;

static const MethodInfo methods[] = {
	{"/yandex.cloud.mdb.redis.v1.BackupService/Get", "BackupService.Get",
		&yandex__cloud__mdb__redis__v1__get_backup_request__descriptor,
	"backup_id", false, false, true, false, handle_get},
	{"/yandex.cloud.mdb.redis.v1.BackupService/List", "BackupService.List",
		&yandex__cloud__mdb__redis__v1__list_backups_request__descriptor,
	"folder_id", true, false, true, false, handle_list},
	{"/yandex.cloud.mdb.redis.v1.ClusterService/ListBackups", "ClusterService.ListBackups",
		&yandex__cloud__mdb__redis__v1__list_cluster_backups_request__descriptor,
	"cluster_id", true, false, true, false, handle_cluster_list},
	{"/yandex.cloud.resourcemanager.v1.FolderService/List", "FolderService.List",
		&yandex__cloud__resourcemanager__v1__list_folders_request__descriptor,
	"cloud_id", true, true, true, false, handle_folder_list},
	{"/yandex.cloud.iam.v1.IamTokenService/Create", "IamTokenService.Create",
		&yandex__cloud__iam__v1__create_iam_token_request__descriptor,
	NULL, false, false, false, false, handle_iam_create},
	{"/yandex.cloud.mdb.redis.v1.ClusterService/List", "ClusterService.List",
		&yandex__cloud__mdb__redis__v1__list_clusters_request__descriptor,
	"folder_id", true, true, true, false, handle_clusters_list},
	{"/yandex.cloud.mdb.redis.v1.ClusterService/Get", "ClusterService.Get",
		&yandex__cloud__mdb__redis__v1__get_cluster_request__descriptor,
	"cluster_id", false, false, true, false, handle_cluster_get},
	{"/yandex.cloud.mdb.redis.v1.BackupService/Delete", "BackupService.Delete",
		&yandex__cloud__mdb__redis__v1__delete_backup_request__descriptor,
	"backup_id", false, false, true, true, handle_backup_delete},
	{"/yandex.cloud.mdb.redis.v1.ClusterService/Backup", "ClusterService.Backup",
		&yandex__cloud__mdb__redis__v1__backup_cluster_request__descriptor,
	"cluster_id", false, false, true, true, handle_cluster_backup},
	{"/yandex.cloud.operation.OperationService/Get", "OperationService.Get",
		&yandex__cloud__operation__get_operation_request__descriptor,
	"operation_id", false, false, true, false, handle_operation_get},
};

#define NUM_METHODS ((int) (sizeof(methods) / sizeof(methods[0])))

/*
 * find_method
 *		Which of our methods a gRPC path names.
 */
static EmuMethod
find_method(EmuBytes path)
{
	for (int i = 0; i < NUM_METHODS; i++)
		if (emu_bytes_equal_str(path, methods[i].path))
			return (EmuMethod) i;
	return METHOD_UNKNOWN;
}

/*
 * request_field
 *		The address of the field called name in a parsed request, which
 *		must be of this type.  The method table names the fields, so a
 *		mismatch is a bug in the table and aborts.
 */
static const void *
request_field(const ProtobufCMessage *request, const char *name,
			  ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(request->descriptor, name);

	if (f == NULL || f->type != type)
	{
		fprintf(stderr, "%s: %s has no field %s of the expected type\n",
				EMU_PROGNAME, request->descriptor->name, name);
		abort();
	}
	return (const char *) request + f->offset;
}

/*
 * request_jwt_kid
 *		The key id in the header of an IamTokenService.Create request's JWT,
 *		not verified yet, copied to ctx->kid; NULL when there is none.  A
 *		JWT far over the length limit is not even decoded, since the
 *		request is refused for its length anyway.
 */
static const char *
request_jwt_kid(CallContext *ctx, const ProtobufCMessage *request)
{
	const PbIamRequest *rq = (const PbIamRequest *) request;

	if (rq->identity_case == YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_JWT &&
		rq->jwt != NULL && strlen(rq->jwt) <= IAM_MAX_JWT_CHARS * 4 &&
		emu_iam_jwt_kid(rq->jwt, strlen(rq->jwt), ctx->kid, sizeof(ctx->kid)))
		return ctx->kid;
	return NULL;
}

/*
 * parse_request
 *		Unpack the request (NULL if none came or it does not parse: that is
 *		reported only after faults and authentication) and record its id
 *		field and paging in the log.  *key is the id field's value, which
 *		@KEY faults match, or NULL.
 */
static ProtobufCMessage *
parse_request(CallContext *ctx, const char **key)
{
	const MethodInfo *m = &methods[ctx->method];
	ProtobufCMessage *request = NULL;

	*key = NULL;
	if (ctx->req->body != NULL)
		request = protobuf_c_message_unpack(m->request, NULL, ctx->req->body_len,
											ctx->req->body);
	if (request == NULL)
		return NULL;
	if (m->id_field == NULL)
	{
		*key = request_jwt_kid(ctx, request);
		if (*key != NULL)
			ctx->log.id_field = "key_id";
	}
	else
	{
		*key = *(char *const *) request_field(request, m->id_field, PROTOBUF_C_TYPE_STRING);
		ctx->log.id_field = m->id_field;
	}
	if (m->paged)
	{
		ctx->log.has_paging = true;
		ctx->log.page_size = *(const int64_t *) request_field(request, "page_size",
															   PROTOBUF_C_TYPE_INT64);
		ctx->log.page_token = *(char *const *) request_field(request, "page_token",
															  PROTOBUF_C_TYPE_STRING);
	}
	if (m->filtered)
		ctx->log.filter = *(char *const *) request_field(request, "filter",
														  PROTOBUF_C_TYPE_STRING);
	ctx->log.id_value = *key;
	return request;
}

/*
 * begin_call
 *		Set up the reply (OK, a fresh x-request-id) and the call's context:
 *		its method, the caller's grants and what the log knows so far.
 */
static void
begin_call(CallContext *ctx, const EmuRequest *req, EmuReply *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->code = GRPC_STATUS_OK;
	reply->message = emu_strdup("");
	emu_uuid(reply->request_id);

	memset(ctx, 0, sizeof(*ctx));
	ctx->req = req;
	ctx->reply = reply;
	ctx->method = find_method(req->method);
	ctx->returned = -1;
	ctx->log.method_raw = req->method;
	ctx->log.has_client_request_id = req->has_client_request_id;
	ctx->log.client_request_id = req->client_request_id;
	ctx->log.has_idempotency_key = req->has_idempotency_key;
	ctx->log.idempotency_key = req->idempotency_key;
	ctx->log.done = -1;
	ctx->log.peer = req->peer;
	ctx->log.request_id = reply->request_id;
	ctx->log.returned = -1;
	ctx->log.auth = authenticate(req, &ctx->grants, &ctx->service_account);
	ctx->log.service_account = ctx->service_account;
	if (strcmp(ctx->log.auth, "ok") == 0)
		identify(ctx);
	if (ctx->method == METHOD_UNKNOWN)
		return;
	ctx->log.method = methods[ctx->method].name;
	if (!methods[ctx->method].needs_token)
	{
		/* No token is needed; the log says "none" unless the JWT decides. */
		ctx->log.auth = "none";
		ctx->log.service_account = NULL;
	}
}

/*
 * apply_faults
 *		Count the call against the faults and apply what fires before the
 *		reply is built: hang, latency, an error status, echo_token.  Returns
 *		true when that already decided the reply.
 */
static bool
apply_faults(CallContext *ctx, const char *key)
{
	const EmuRequest *req = ctx->req;

	emu_faults_apply(methods[ctx->method].name, key, &ctx->effect);
	if (ctx->effect.hang)
	{
		ctx->reply->hang = true;
		note_fault(ctx, "hang");
		return true;
	}
	if (ctx->effect.delay_ms > 0)
	{
		ctx->reply->delay_ms = ctx->effect.delay_ms;
		note_fault(ctx, "latency");
	}
	if (ctx->effect.error)
	{
		set_error(ctx, ctx->effect.error_code, "%s", ctx->effect.error_message);
		note_fault(ctx, ctx->effect.error_kind);
		return true;
	}
	if (ctx->effect.echo_token && req->has_auth)
	{
		set_error(ctx, GRPC_STATUS_UNAUTHENTICATED,
				  "Token '%.*s' is invalid or has expired.",
				  (int) req->auth.len, req->auth.data);
		note_fault(ctx, "echo_token");
		return true;
	}
	return false;
}

/*
 * apply_quota
 *		Count the call against its token's quotas (quota.c).  Returns true
 *		when they refuse it, which decides the reply.
 */
static bool
apply_quota(CallContext *ctx)
{
	if (emu_quota_admit(ctx->req->has_auth, ctx->req->auth, &ctx->reply->quota))
		return false;
	set_error(ctx, GRPC_STATUS_RESOURCE_EXHAUSTED, "The request limit exceeded.");
	note_fault(ctx, "quota");
	return true;
}

/*
 * check_token_and_request
 *		The checks every method makes before its own: a valid token (where
 *		the method needs one), then a request that parsed.  Sets the error
 *		and returns false when one fails.
 */
static bool
check_token_and_request(CallContext *ctx, const ProtobufCMessage *request)
{
	if (methods[ctx->method].needs_token && strcmp(ctx->log.auth, "ok") != 0)
	{
		set_error(ctx, GRPC_STATUS_UNAUTHENTICATED, "Token is invalid or has expired.");
		return false;
	}
	if (request == NULL)
	{
		set_error(ctx, GRPC_STATUS_INVALID_ARGUMENT,
				  ctx->req->body == NULL ? "Request message is missing" :
				  "Request message could not be parsed");
		return false;
	}
	return true;
}

/*
 * lose_reply
 *		The lose_reply fault: a mutating call that succeeded (its operation
 *		started) answers UNAVAILABLE instead, as if the reply were lost on
 *		the way; the log still names the operation.
 */
static void
lose_reply(CallContext *ctx)
{
	if (methods[ctx->method].mutating && ctx->effect.lose_reply &&
		ctx->reply->code == GRPC_STATUS_OK)
	{
		set_error(ctx, GRPC_STATUS_UNAVAILABLE, LOST_REPLY_MESSAGE);
		note_fault(ctx, "lose_reply");
	}
}

/*
 * format_log
 *		Complete the call's log record from the reply and format its line
 *		into reply->log_body.
 */
static void
format_log(CallContext *ctx)
{
	EmuReply   *reply = ctx->reply;

	/* Verifying the JWT may have found a kid that parse_request did not. */
	if (ctx->method == METHOD_IAM_CREATE && ctx->kid[0] != '\0')
	{
		ctx->log.id_field = "key_id";
		ctx->log.id_value = ctx->kid;
	}
	if (reply->hang)
		ctx->log.status = "HANG";
	else
		ctx->log.status = emu_status_name(reply->code);
	if (reply->code == GRPC_STATUS_OK && !reply->hang)
	{
		ctx->log.returned = ctx->returned;
		if (ctx->has_next_token)
			ctx->log.next_page_token = ctx->next_token;
	}
	else if (!reply->hang)
		ctx->log.message = reply->message;
	ctx->log.faults = ctx->faults.data;
	reply->log_body = emu_log_format(&ctx->log);
}

/*
 * emu_service_handle
 *		Decide the reply to one call and format its log line.  The reply is
 *		complete when this returns; the server loop sends it, after
 *		reply->delay_ms, or never if reply->hang, and writes the log line.
 */
void
emu_service_handle(const EmuRequest *req, EmuReply *reply)
{
	CallContext ctx;
	ProtobufCMessage *request = NULL;
	const char *key;

	/* the call sees every operation that is due as finished */
	emu_operations_finish_due();
	begin_call(&ctx, req, reply);
	if (ctx.method == METHOD_UNKNOWN)
		set_error(&ctx, GRPC_STATUS_UNIMPLEMENTED, "Method not found: %.*s",
				  (int) req->method.len, req->method.data);
	else
	{
		request = parse_request(&ctx, &key);
		if (!apply_faults(&ctx, key) && !apply_quota(&ctx) &&
			check_token_and_request(&ctx, request))
		{
			methods[ctx.method].handle(&ctx, request);
			lose_reply(&ctx);
		}
	}
	format_log(&ctx);

	emu_buf_free(&ctx.faults);
	emu_arena_free(&ctx.arena);
	if (request != NULL)
		protobuf_c_message_free_unpacked(request, NULL);
}

/*
 * emu_reply_free
 *		Free what a reply still owns.
 */
void
emu_reply_free(EmuReply *reply)
{
	emu_quota_release(&reply->quota);
	free(reply->message);
	free(reply->payload);
	free(reply->log_body);
	reply->message = NULL;
	reply->payload = NULL;
	reply->log_body = NULL;
}

/*
 * emu_method_known
 *		Is name the short name of a method we serve ("BackupService.List")?
 */
bool
emu_method_known(const char *name)
{
	for (int i = 0; i < NUM_METHODS; i++)
		if (strcmp(methods[i].name, name) == 0)
			return true;
	return false;
}

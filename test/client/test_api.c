/*-------------------------------------------------------------------------
 *
 * test_api.c
 *		  Client tests that need no emulator: names, the method table,
 *		  rb_list_request / rb_list_reply_page on messages built here, the
 *		  exported validators, and the NUL check on the newer reply types.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <stdlib.h>
#include <string.h>

#include "rb_wire.h"

typedef Yandex__Cloud__Resourcemanager__V1__Folder__LabelsEntry LabelsEntry;
typedef Yandex__Cloud__Iam__V1__CreateIamTokenResponse CreateIamTokenResponse;

/* ----------------------------------------------------------------------
 * Names
 * ----------------------------------------------------------------------
 */
void
test_names(void)
{
	CHECK(strcmp(rb_code_name(RB_OK), "OK") == 0, "OK");
	CHECK(strcmp(rb_code_name(RB_UNAVAILABLE), "UNAVAILABLE") == 0, "UNAVAILABLE");
	CHECK(strcmp(rb_code_name(RB_UNAUTHENTICATED), "UNAUTHENTICATED") == 0, "UNAUTHENTICATED");
	CHECK(strcmp(rb_code_name(RB_LOCAL_GAVE_UP), "GAVE_UP") == 0, "GAVE_UP");
	CHECK(strcmp(rb_code_name(RB_LOCAL_BAD_REPLY), "BAD_REPLY") == 0, "BAD_REPLY");
	CHECK(strcmp(rb_code_name(RB_LOCAL_BAD_OPTION), "BAD_OPTION") == 0, "BAD_OPTION");
	CHECK(strcmp(rb_method_name(RB_METHOD_BACKUP_GET), "BackupService.Get") == 0, "Get name");
	CHECK(strcmp(rb_method_name(RB_METHOD_CLUSTER_LIST_BACKUPS), "ClusterService.ListBackups") == 0, "ListBackups name");
	CHECK(strcmp(rb_method_path(RB_METHOD_BACKUP_GET),
				 "/yandex.cloud.mdb.redis.v1.BackupService/Get") == 0, "Get path");
	CHECK(strcmp(rb_method_path(RB_METHOD_BACKUP_LIST),
				 "/yandex.cloud.mdb.redis.v1.BackupService/List") == 0, "List path");
	CHECK(strcmp(rb_method_path(RB_METHOD_CLUSTER_LIST_BACKUPS),
				 "/yandex.cloud.mdb.redis.v1.ClusterService/ListBackups") == 0,
		  "ListBackups path");
	CHECK(rb_method_reply_descriptor(RB_METHOD_BACKUP_GET) ==
		  &yandex__cloud__mdb__redis__v1__backup__descriptor, "Get reply");
	CHECK(rb_method_reply_descriptor(RB_METHOD_BACKUP_LIST) ==
		  &yandex__cloud__mdb__redis__v1__list_backups_response__descriptor,
		  "List reply");
	CHECK(rb_method_reply_descriptor(RB_METHOD_CLUSTER_LIST_BACKUPS) ==
		  &yandex__cloud__mdb__redis__v1__list_cluster_backups_response__descriptor,
		  "ListBackups reply");
	CHECK(strcmp(rb_method_name(RB_METHOD_FOLDER_LIST), "FolderService.List") == 0,
		  "FolderService.List name");
	CHECK(strcmp(rb_method_name(RB_METHOD_IAM_TOKEN_CREATE),
				 "IamTokenService.Create") == 0, "IamTokenService.Create name");
	CHECK(strcmp(rb_method_path(RB_METHOD_FOLDER_LIST),
				 "/yandex.cloud.resourcemanager.v1.FolderService/List") == 0,
		  "FolderService.List path");
	CHECK(strcmp(rb_method_path(RB_METHOD_IAM_TOKEN_CREATE),
				 "/yandex.cloud.iam.v1.IamTokenService/Create") == 0,
		  "IamTokenService.Create path");
	CHECK(rb_method_reply_descriptor(RB_METHOD_FOLDER_LIST) ==
		  &yandex__cloud__resourcemanager__v1__list_folders_response__descriptor,
		  "FolderService.List reply");
	CHECK(rb_method_reply_descriptor(RB_METHOD_IAM_TOKEN_CREATE) ==
		  &yandex__cloud__iam__v1__create_iam_token_response__descriptor,
		  "IamTokenService.Create reply");
	CHECK(rb_method_request_descriptor(RB_METHOD_FOLDER_LIST) ==
		  &yandex__cloud__resourcemanager__v1__list_folders_request__descriptor,
		  "FolderService.List request");
	CHECK(rb_method_request_descriptor(RB_METHOD_IAM_TOKEN_CREATE) ==
		  &yandex__cloud__iam__v1__create_iam_token_request__descriptor,
		  "IamTokenService.Create request");
}


/* What each method's table entry must say. */
static const struct
{
	RbMethod	method;
	const char *key_field;
	bool		listing;
	bool		mutating;
}			expected_methods[] = {
	{RB_METHOD_BACKUP_GET, "backup_id", false, false},
	{RB_METHOD_BACKUP_LIST, "folder_id", true, false},
	{RB_METHOD_CLUSTER_LIST_BACKUPS, "cluster_id", true, false},
	{RB_METHOD_FOLDER_LIST, "cloud_id", true, false},
	{RB_METHOD_IAM_TOKEN_CREATE, NULL, false, false},
	{RB_METHOD_CLUSTER_LIST, "folder_id", true, false},
	{RB_METHOD_CLUSTER_GET, "cluster_id", false, false},
	{RB_METHOD_BACKUP_DELETE, "backup_id", false, true},
	{RB_METHOD_CLUSTER_BACKUP, "cluster_id", false, true},
	{RB_METHOD_OPERATION_GET, "operation_id", false, false},
};

#define N_EXPECTED_METHODS (sizeof(expected_methods) / sizeof(expected_methods[0]))

/*
 * field_is
 *		Has message type desc a singular field called name of type type?
 */
static bool
field_is(const ProtobufCMessageDescriptor *desc, const char *name,
		 ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(desc, name);

	return f != NULL && f->type == type && f->label == PROTOBUF_C_LABEL_NONE;
}

/*
 * Every method has a name, a path, descriptors; the path is the name's
 * service and method; names and paths are distinct; key fields and
 * listings are as documented and the messages have the fields they imply.
 */
void
test_method_table(void)
{
	int			m;
	int			m2;
	size_t		i;

	CHECK(N_EXPECTED_METHODS == RB_NUM_METHODS,
		  "%zu methods expected, RB_NUM_METHODS is %d",
		  N_EXPECTED_METHODS, (int) RB_NUM_METHODS);
	for (i = 0; i < N_EXPECTED_METHODS; i++)
		CHECK((int) expected_methods[i].method == (int) i,
			  "enum order changed at %zu", i);

	for (m = 0; m < RB_NUM_METHODS; m++)
	{
		const char *name = rb_method_name((RbMethod) m);
		const char *path = rb_method_path((RbMethod) m);
		const char *key = rb_method_key_field((RbMethod) m);
		const ProtobufCMessageDescriptor *req = rb_method_request_descriptor((RbMethod) m);
		const ProtobufCMessageDescriptor *rep = rb_method_reply_descriptor((RbMethod) m);
		const char *dot;
		const char *slash;
		char		want_tail[128];

		CHECK(name != NULL && strcmp(name, "unknown method") != 0,
			  "method %d has no name", m);
		CHECK(path != NULL && strncmp(path, "/yandex.cloud.", 14) == 0,
			  "%s: path \"%s\"", name, path ? path : "(null)");
		CHECK(req != NULL && rep != NULL, "%s: no descriptors", name);
		CHECK(req->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC &&
			  rep->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
			  "%s: bad descriptor", name);

		/* "Service.Method" is the path's last two parts */
		dot = strchr(name, '.');
		CHECK(dot != NULL, "%s: no dot in the name", name);
		snprintf(want_tail, sizeof(want_tail), ".%.*s/%s",
				 (int) (dot - name), name, dot + 1);
		slash = strrchr(path, '/');
		CHECK(slash != NULL && strlen(path) > strlen(want_tail) &&
			  strcmp(path + strlen(path) - strlen(want_tail), want_tail) == 0,
			  "%s: path \"%s\" does not end in \"%s\"", name, path, want_tail);
		/*
		 * the messages are of the service's package, but for the Operation
		 * that a mutating method answers
		 */
		CHECK(strncmp(req->package_name, path + 1, strlen(req->package_name)) == 0 &&
			  (strncmp(rep->package_name, path + 1, strlen(rep->package_name)) == 0 ||
			   rep == &yandex__cloud__operation__operation__descriptor),
			  "%s: messages of package %s/%s for path %s", name,
			  req->package_name, rep->package_name, path);
		CHECK(rb_method_is_mutating((RbMethod) m) == expected_methods[m].mutating,
			  "%s: is_mutating %d", name, rb_method_is_mutating((RbMethod) m));
		if (expected_methods[m].mutating)
			CHECK(rep == &yandex__cloud__operation__operation__descriptor,
				  "%s: a mutating method answers %s, not an Operation", name,
				  rep->name);

		/* key field and listing as documented */
		if (expected_methods[m].key_field == NULL)
			CHECK(key == NULL, "%s: key field \"%s\"", name, key);
		else
		{
			CHECK(key != NULL && strcmp(key, expected_methods[m].key_field) == 0,
				  "%s: key field \"%s\", expected \"%s\"", name,
				  key ? key : "(null)", expected_methods[m].key_field);
			CHECK(field_is(req, key, PROTOBUF_C_TYPE_STRING),
				  "%s: %s has no string field %s", name, req->name, key);
		}
		CHECK(rb_method_is_listing((RbMethod) m) == expected_methods[m].listing,
			  "%s: is_listing %d", name, rb_method_is_listing((RbMethod) m));
		if (expected_methods[m].listing)
		{
			CHECK(field_is(req, "page_size", PROTOBUF_C_TYPE_INT64) &&
				  field_is(req, "page_token", PROTOBUF_C_TYPE_STRING),
				  "%s: %s lacks page_size/page_token", name, req->name);
			CHECK(field_is(rep, "next_page_token", PROTOBUF_C_TYPE_STRING),
				  "%s: %s lacks next_page_token", name, rep->name);
			CHECK(req->sizeof_message <= sizeof(RbListRequest),
				  "%s: RbListRequest too small for %s", name, req->name);
		}

		for (m2 = 0; m2 < m; m2++)
		{
			CHECK(strcmp(name, rb_method_name((RbMethod) m2)) != 0,
				  "two methods named %s", name);
			CHECK(strcmp(path, rb_method_path((RbMethod) m2)) != 0,
				  "two methods with path %s", path);
		}
	}

	/* values that are no method */
	CHECK(strcmp(rb_method_name(RB_NUM_METHODS), "unknown method") == 0 &&
		  strcmp(rb_method_name((RbMethod) -1), "unknown method") == 0,
		  "name of an unknown method");
	CHECK(rb_method_path(RB_NUM_METHODS) == NULL &&
		  rb_method_path((RbMethod) -1) == NULL, "path of an unknown method");
	CHECK(rb_method_key_field(RB_NUM_METHODS) == NULL &&
		  rb_method_request_descriptor(RB_NUM_METHODS) == NULL &&
		  rb_method_reply_descriptor(RB_NUM_METHODS) == NULL &&
		  !rb_method_is_listing(RB_NUM_METHODS) &&
		  !rb_method_is_mutating(RB_NUM_METHODS) &&
		  !rb_method_is_mutating((RbMethod) -1),
		  "facts about an unknown method");
}

/*
 * The validators the FDW shares with the client, and that rb_channel_open
 * and rb_call_start apply them.
 */
void
test_validators(void)
{
	static const char *const good_targets[] = {
		"localhost:443", "mdb.api.cloud.yandex.net:443", "127.0.0.1:1",
		"h:65535", "[::1]:443", "h:00443", "[2001:db8::10]:8443",
		"my_host-2.example.com:443", "255.255.255.255:1"
	};
	/* host:port and nothing else: no gRPC scheme, URI, user or 2nd port */
	static const char *const bad_targets[] = {
		"my host:443", "h: 443", "h:+443", "h:0", "h:65536", ":443", "h:",
		"", "localhost", "h:-1", "h:12a", "h:443 ", " h:443", "h:4\t43",
		"h\x01:443", "h\x7f:443", "h:99999999999999999999",
		"unix:/tmp/x:1", "unix-abstract:x:1", "ipv4:127.0.0.1:1",
		"ipv6:[::1]:443", "dns:///h:443", "dns://8.8.8.8/h:443",
		"https://h:443", "h:443:1", "user@host:80", "host/path:80",
		"-h:443", "h-:443", "a..b:443", ".h:443", "h.:443", "999.1.1.1:443",
		"1.2.3:443", "1:443", "[::1:443", "[h]:443", "[]:443", "::1:443",
		"[::1]443", "caf\xc3\xa9:443"
	};
	static const char *const good_tokens[] = {
		"x", "t1.9euelZq-abc_DEF~123", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"
	};
	static const char *const bad_tokens[] = {
		"", "a b", " lead", "trail ", "a\tb", "a\r\nx-evil: 1", "a\x7f",
		"caf\xc3\xa9", "\x01"
	};
	RbChannelOptions opts;
	RbChannel  *ch;
	RbStatus	st;
	GetBackupRequest req;
	RbCall	   *call;
	size_t		i;

	for (i = 0; i < sizeof(good_targets) / sizeof(good_targets[0]); i++)
		CHECK(rb_target_is_valid(good_targets[i]), "target \"%s\" refused",
			  good_targets[i]);
	CHECK(!rb_target_is_valid(NULL), "NULL target accepted");
	memset(&opts, 0, sizeof(opts));
	opts.plaintext = true;
	for (i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++)
	{
		CHECK(!rb_target_is_valid(bad_targets[i]), "target \"%s\" accepted",
			  bad_targets[i]);
		opts.target = bad_targets[i];
		ch = rb_channel_open(&opts, &st);
		CHECK(ch == NULL && st.code == RB_LOCAL_BAD_OPTION,
			  "rb_channel_open took target \"%s\"", bad_targets[i]);
	}

	for (i = 0; i < sizeof(good_tokens) / sizeof(good_tokens[0]); i++)
		CHECK(rb_token_is_valid(good_tokens[i]), "token \"%s\" refused",
			  good_tokens[i]);
	CHECK(!rb_token_is_valid(NULL), "NULL token accepted");
	for (i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++)
		CHECK(!rb_token_is_valid(bad_tokens[i]), "bad token %zu accepted", i);

	CHECK(rb_ca_pem_is_valid("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		  "PEM certificate refused");
	CHECK(rb_ca_pem_is_valid("junk before\n-----BEGIN CERTIFICATE-----\n"),
		  "PEM certificate after other text refused");
	CHECK(!rb_ca_pem_is_valid(NULL) && !rb_ca_pem_is_valid("") &&
		  !rb_ca_pem_is_valid("not a certificate") &&
		  !rb_ca_pem_is_valid("-----BEGIN PRIVATE KEY-----\n"),
		  "non-certificate text accepted");

	/* rb_call_start refuses what rb_token_is_valid refuses ("" is no token) */
	ch = open_plain(0, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	make_get(&req, "b-a1");
	for (i = 1; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++)
	{
		call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &req.base,
							 bad_tokens[i], NULL, 1000, &st);
		if (call != NULL)
			rb_call_abandon(call);
		if (call != NULL || st.code != RB_LOCAL_BAD_OPTION)
		{
			FAIL("rb_call_start took bad token %zu: %s", i,
				 rb_code_name(st.code));
			break;
		}
	}
	rb_channel_close(ch);
}

/*
 * rb_uuid_generate writes fresh lowercase v4 uuids that rb_call_start takes
 * as idempotency keys; rb_call_start refuses any key that is not such a
 * uuid with RB_LOCAL_BAD_OPTION, before anything is sent.
 */
void
test_idempotency_key_rules(void)
{
	static const char *const bad_keys[] = {
		"",
		"not-a-uuid",
		"0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3c",	/* 35 characters */
		"0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4d",	/* 37 characters */
		"0B6C1F2E-3D4A-4B5C-8D6E-7F8091A2B3C4",	/* uppercase */
		"0b6c1f2e3d4a-4b5c-8d6e-7f8091a2b3c4-",	/* dashes misplaced */
		"0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3g4",	/* not hex */
		"0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3c\n",	/* a newline */
		"{0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3}",
	};
	char		key[37];
	char		other[37];
	RbChannelOptions opts;
	RbChannel  *ch;
	RbCall	   *call;
	RbStatus	st;
	GetBackupRequest req;
	size_t		i;

	rb_uuid_generate(key);
	rb_uuid_generate(other);
	CHECK(strlen(key) == 36 && key[14] == '4' && strchr("89ab", key[19]) &&
		  strspn(key, "0123456789abcdef-") == 36,
		  "rb_uuid_generate wrote \"%s\"", key);
	CHECK(strcmp(key, other) != 0, "two uuids alike: %s", key);

	memset(&opts, 0, sizeof(opts));
	opts.target = "127.0.0.1:1";	/* nothing is sent: no server needed */
	opts.plaintext = true;
	ch = rb_channel_open(&opts, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	make_get(&req, "b-a1");
	for (i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
	{
		call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &req.base, "tok-all",
							 bad_keys[i], 1000, &st);
		if (call != NULL)
			rb_call_abandon(call);
		CHECK(call == NULL && st.code == RB_LOCAL_BAD_OPTION,
			  "rb_call_start took idempotency key \"%s\": %s", bad_keys[i],
			  rb_code_name(st.code));
	}
	call = rb_call_start(ch, RB_METHOD_BACKUP_GET, &req.base, "tok-all", key,
						 1000, &st);
	CHECK(call != NULL, "rb_call_start refused key %s: %s", key, st.message);
	rb_call_abandon(call);
	rb_channel_close(ch);
}

/*
 * pack_unpack
 *		Pack msg and unpack it again as type desc (default allocator).
 */
static ProtobufCMessage *
pack_unpack(const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc,
			size_t *packed_size)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	uint8_t    *buf = malloc(size + 1);
	ProtobufCMessage *out;

	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	out = protobuf_c_message_unpack(desc, NULL, size, buf);
	free(buf);
	if (packed_size)
		*packed_size = size;
	return out;
}

/*
 * field_address
 *		Where the field called name of a decoded message is.
 */
static const void *
field_address(const ProtobufCMessage *msg, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);

	return (const char *) msg + f->offset;
}

/* The value of the string field called name of a decoded message. */
#define STRING_FIELD(msg, name) (*(char *const *) field_address((msg), (name)))

/*
 * list_request_round_trip
 *		Build method's request with rb_list_request and check it: it is
 *		&req->base, of the method's request type, and decodes again with
 *		key in key_field and page_size and page_token in theirs.  Returns
 *		the decoded request for more checks (the caller frees it), or NULL
 *		with the failure recorded.
 */
static ProtobufCMessage *
list_request_round_trip(RbListRequest *req, RbMethod method,
						const char *key_field, const char *key,
						int64_t page_size, const char *page_token)
{
	const char *name = rb_method_name(method);
	const ProtobufCMessage *msg = rb_list_request(req, method, key, page_size,
												  page_token);
	ProtobufCMessage *back;

	if (msg != &req->base)
		FAIL("%s: no request", name);
	else if (msg->descriptor != rb_method_request_descriptor(method))
		FAIL("%s: wrong type %s", name, msg->descriptor->name);
	else if ((back = pack_unpack(msg, msg->descriptor, NULL)) == NULL)
		FAIL("%s: does not decode", name);
	else if (strcmp(STRING_FIELD(back, key_field), key) != 0 ||
			 *(const int64_t *) field_address(back, "page_size") != page_size ||
			 strcmp(STRING_FIELD(back, "page_token"), page_token) != 0)
	{
		free_msg(back);
		FAIL("%s: fields do not match", name);
	}
	else
		return back;
	return NULL;
}

/*
 * rb_list_request builds each listing method's request: encoded and decoded
 * again, the key, page size and token are in the right fields.
 */
void
test_list_request(void)
{
	RbListRequest req;
	const ProtobufCMessage *msg;
	ProtobufCMessage *back;
	size_t		size_first;
	size_t		size_next;
	int			m;
	bool		ok;

	free_msg(list_request_round_trip(&req, RB_METHOD_BACKUP_LIST, "folder_id",
									 "folder-x", 123, "tok-1"));
	if (cur_failed)
		return;
	free_msg(list_request_round_trip(&req, RB_METHOD_CLUSTER_LIST_BACKUPS,
									 "cluster_id", "c-x", 1000, "t2"));
	if (cur_failed)
		return;

	/* FolderService.List: the key is in the union member, no filter */
	back = list_request_round_trip(&req, RB_METHOD_FOLDER_LIST, "cloud_id",
								   "cloud-x", 7, "t3");
	if (cur_failed)
		return;
	ok = strcmp(STRING_FIELD(back, "filter"), "") == 0;
	free_msg(back);
	CHECK(req.cloud.cloud_id != NULL && strcmp(req.cloud.cloud_id, "cloud-x") == 0,
		  "FolderService.List: cloud_id not set in the union member");
	CHECK(ok, "FolderService.List: filter is not empty");

	/* first page: token "" or NULL, which is not sent at all */
	for (m = 0; m < RB_NUM_METHODS; m++)
	{
		if (!rb_method_is_listing((RbMethod) m))
		{
			CHECK(rb_list_request(&req, (RbMethod) m, "k", 1, "") == NULL,
				  "%s is not a listing but got a request",
				  rb_method_name((RbMethod) m));
			continue;
		}
		msg = rb_list_request(&req, (RbMethod) m, "k", 5, NULL);
		CHECK(msg != NULL, "%s: no request", rb_method_name((RbMethod) m));
		back = pack_unpack(msg, msg->descriptor, &size_first);
		CHECK(back != NULL, "%s: does not decode", rb_method_name((RbMethod) m));
		{
			const char *tok = STRING_FIELD(back, "page_token");
			bool		empty = tok != NULL && tok[0] == '\0';

			free_msg(back);
			CHECK(empty, "%s: first page token not empty",
				  rb_method_name((RbMethod) m));
		}
		msg = rb_list_request(&req, (RbMethod) m, "k", 5, "");
		size_next = protobuf_c_message_get_packed_size(msg);
		CHECK(size_next == size_first, "%s: \"\" and NULL tokens differ",
			  rb_method_name((RbMethod) m));
		/* key, 1 byte tag + len + "k" = 3; page_size 5 = 2 */
		CHECK(size_first == 5, "%s: first page request of %zu bytes",
			  rb_method_name((RbMethod) m), size_first);
	}
	CHECK(rb_list_request(NULL, RB_METHOD_BACKUP_LIST, "k", 1, "") == NULL,
		  "NULL request accepted");
	CHECK(rb_list_request(&req, RB_NUM_METHODS, "k", 1, "") == NULL,
		  "unknown method accepted");
}

/*
 * encode_decode_reply
 *		Pack msg and decode it as method's reply with rb_decode_reply.
 */
static ProtobufCMessage *
encode_decode_reply(const ProtobufCMessage *msg, RbMethod method,
					char *why, size_t whylen)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	uint8_t    *buf = malloc(size + 1);
	ProtobufCMessage *out;

	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	out = rb_decode_reply(rb_method_reply_descriptor(method), buf, size,
						  NULL, why, whylen);
	free(buf);
	return out;
}

/* Fill b as a small backup with id and a creation time. */
static void
make_backup(Backup *b, Google__Protobuf__Timestamp *ts, const char *id)
{
	yandex__cloud__mdb__redis__v1__backup__init(b);
	google__protobuf__timestamp__init(ts);
	ts->seconds = 1795748405;
	ts->nanos = 5;
	b->id = (char *) id;
	b->folder_id = (char *) "folder-x";
	b->created_at = ts;
}

/* Fill f as a folder with id and one label. */
static void
make_folder(Folder *f, LabelsEntry *label, LabelsEntry **labels,
			Google__Protobuf__Timestamp *ts, const char *id,
			const char *label_value)
{
	yandex__cloud__resourcemanager__v1__folder__init(f);
	yandex__cloud__resourcemanager__v1__folder__labels_entry__init(label);
	google__protobuf__timestamp__init(ts);
	ts->seconds = 1700000000;
	label->key = (char *) "env";
	label->value = (char *) label_value;
	labels[0] = label;
	f->id = (char *) id;
	f->cloud_id = (char *) "cloud-x";
	f->name = (char *) id;
	f->created_at = ts;
	f->n_labels = 1;
	f->labels = labels;
	f->status = YANDEX__CLOUD__RESOURCEMANAGER__V1__FOLDER__STATUS__ACTIVE;
}

/*
 * rb_list_reply_page on decoded replies of each listing type: items and
 * next token; false for a non-listing method, a NULL reply, a reply of
 * another type.
 */
void
test_list_reply_page(void)
{
	Backup		b[3];
	Google__Protobuf__Timestamp ts[3];
	Backup	   *bp[3] = {&b[0], &b[1], &b[2]};
	Folder		f[2];
	LabelsEntry le[2];
	LabelsEntry *lep[2][1];
	Google__Protobuf__Timestamp fts[2];
	Folder	   *fp[2] = {&f[0], &f[1]};
	ListBackupsResponse lb;
	ListClusterBackupsResponse lc;
	ListFoldersResponse lf;
	ProtobufCMessage *r;
	RbListPage page;
	char		why[128];
	bool		ok;

	make_backup(&b[0], &ts[0], "b-0");
	make_backup(&b[1], &ts[1], "b-1");
	make_backup(&b[2], &ts[2], "b-2");
	make_folder(&f[0], &le[0], lep[0], &fts[0], "f-0", "prod");
	make_folder(&f[1], &le[1], lep[1], &fts[1], "f-1", "test");

	/* BackupService.List: three items, a next token */
	yandex__cloud__mdb__redis__v1__list_backups_response__init(&lb);
	lb.n_backups = 3;
	lb.backups = bp;
	lb.next_page_token = (char *) "next-1";
	r = encode_decode_reply(&lb.base, RB_METHOD_BACKUP_LIST, why, sizeof(why));
	CHECK(r != NULL, "ListBackupsResponse does not decode: %s", why);
	ok = rb_list_reply_page(RB_METHOD_BACKUP_LIST, r, &page) &&
		page.n_items == 3 &&
		strcmp(((Backup *) page.items[0])->id, "b-0") == 0 &&
		strcmp(((Backup *) page.items[2])->id, "b-2") == 0 &&
		((Backup *) page.items[1])->created_at->nanos == 5 &&
		strcmp(page.next_page_token, "next-1") == 0;
	/* the wrong method for this reply type */
	ok = ok && !rb_list_reply_page(RB_METHOD_FOLDER_LIST, r, &page) &&
		page.n_items == 0 && page.items == NULL &&
		strcmp(page.next_page_token, "") == 0;
	ok = ok && !rb_list_reply_page(RB_METHOD_BACKUP_GET, r, &page);
	free_msg(r);
	CHECK(ok, "BackupService.List page wrong");

	/* ClusterService.ListBackups: last page */
	yandex__cloud__mdb__redis__v1__list_cluster_backups_response__init(&lc);
	lc.n_backups = 1;
	lc.backups = bp + 1;
	r = encode_decode_reply(&lc.base, RB_METHOD_CLUSTER_LIST_BACKUPS, why,
							sizeof(why));
	CHECK(r != NULL, "ListClusterBackupsResponse does not decode: %s", why);
	ok = rb_list_reply_page(RB_METHOD_CLUSTER_LIST_BACKUPS, r, &page) &&
		page.n_items == 1 &&
		strcmp(((Backup *) page.items[0])->id, "b-1") == 0 &&
		page.next_page_token != NULL && page.next_page_token[0] == '\0';
	ok = ok && !rb_list_reply_page(RB_METHOD_BACKUP_LIST, r, &page);
	free_msg(r);
	CHECK(ok, "ClusterService.ListBackups page wrong");

	/* FolderService.List: folders with labels */
	yandex__cloud__resourcemanager__v1__list_folders_response__init(&lf);
	lf.n_folders = 2;
	lf.folders = fp;
	lf.next_page_token = (char *) "fold-next";
	r = encode_decode_reply(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	CHECK(r != NULL, "ListFoldersResponse does not decode: %s", why);
	ok = rb_list_reply_page(RB_METHOD_FOLDER_LIST, r, &page) &&
		page.n_items == 2 &&
		strcmp(((Folder *) page.items[0])->id, "f-0") == 0 &&
		strcmp(((Folder *) page.items[1])->cloud_id, "cloud-x") == 0 &&
		((Folder *) page.items[1])->n_labels == 1 &&
		strcmp(((Folder *) page.items[1])->labels[0]->value, "test") == 0 &&
		((Folder *) page.items[0])->created_at->seconds == 1700000000 &&
		((Folder *) page.items[0])->status ==
		YANDEX__CLOUD__RESOURCEMANAGER__V1__FOLDER__STATUS__ACTIVE &&
		strcmp(page.next_page_token, "fold-next") == 0;
	free_msg(r);
	CHECK(ok, "FolderService.List page wrong");

	/* an empty page */
	yandex__cloud__resourcemanager__v1__list_folders_response__init(&lf);
	r = encode_decode_reply(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	CHECK(r != NULL, "empty ListFoldersResponse does not decode");
	ok = rb_list_reply_page(RB_METHOD_FOLDER_LIST, r, &page) &&
		page.n_items == 0 && strcmp(page.next_page_token, "") == 0;
	free_msg(r);
	CHECK(ok, "empty FolderService.List page wrong");

	CHECK(!rb_list_reply_page(RB_METHOD_BACKUP_LIST, NULL, &page),
		  "NULL reply accepted");
	CHECK(!rb_list_reply_page(RB_NUM_METHODS, &lf.base, &page),
		  "unknown method accepted");
	CHECK(!rb_list_reply_page(RB_METHOD_BACKUP_LIST, &lb.base, NULL),
		  "NULL page accepted");
}

/*
 * decode_with_nul
 *		Pack msg, then turn the first '#' of its bytes into a NUL (strings
 *		are packed byte for byte, so that lands inside the string that held
 *		it).  Decode as method's reply.
 */
static ProtobufCMessage *
decode_with_nul(const ProtobufCMessage *msg, RbMethod method, char *why,
				size_t whylen)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	uint8_t    *buf = malloc(size + 1);
	uint8_t    *hash;
	ProtobufCMessage *out;

	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(msg, buf);
	hash = memchr(buf, '#', size);
	if (hash != NULL)
		*hash = '\0';
	out = rb_decode_reply(rb_method_reply_descriptor(method), buf, size,
						  NULL, why, whylen);
	free(buf);
	return out;
}

/*
 * The NUL check of rb_decode_reply walks the newer reply types: a NUL in a
 * folder's name, in a label (a map entry) or in an IAM token refuses the
 * reply; the same replies without it, Timestamps included, decode.
 */
void
test_new_reply_strings(void)
{
	Folder		f;
	LabelsEntry le;
	LabelsEntry *lep[1];
	Google__Protobuf__Timestamp ts;
	Folder	   *fp[1] = {&f};
	ListFoldersResponse lf;
	CreateIamTokenResponse iam;
	Google__Protobuf__Timestamp exp;
	ProtobufCMessage *r;
	char		why[128];

	yandex__cloud__resourcemanager__v1__list_folders_response__init(&lf);
	lf.n_folders = 1;
	lf.folders = fp;

	/* a NUL in a label value: inside a map entry inside a Folder */
	make_folder(&f, &le, lep, &ts, "f-0", "pr#od");
	r = decode_with_nul(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	free_msg(r);
	CHECK(r == NULL, "NUL in a label value accepted");
	CHECK(strstr(why, "NUL") != NULL && strstr(why, "value") != NULL,
		  "reason \"%s\"", why);

	/* in a label key */
	make_folder(&f, &le, lep, &ts, "f-0", "prod");
	le.key = (char *) "e#nv";
	r = decode_with_nul(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	free_msg(r);
	CHECK(r == NULL, "NUL in a label key accepted");

	/* in a folder's name (its id must not hold the '#') */
	make_folder(&f, &le, lep, &ts, "f-0", "prod");
	f.name = (char *) "na#me";
	r = decode_with_nul(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	free_msg(r);
	CHECK(r == NULL, "NUL in a folder name accepted");
	CHECK(strstr(why, "Folder.name") != NULL, "reason \"%s\"", why);

	/* without a NUL it decodes */
	make_folder(&f, &le, lep, &ts, "f-0", "prod");
	r = decode_with_nul(&lf.base, RB_METHOD_FOLDER_LIST, why, sizeof(why));
	CHECK(r != NULL, "clean ListFoldersResponse refused: %s", why);
	free_msg(r);

	/* IamTokenService.Create */
	yandex__cloud__iam__v1__create_iam_token_response__init(&iam);
	google__protobuf__timestamp__init(&exp);
	exp.seconds = 1800000000;
	iam.expires_at = &exp;
	iam.iam_token = (char *) "t1.abc#def";
	r = decode_with_nul(&iam.base, RB_METHOD_IAM_TOKEN_CREATE, why, sizeof(why));
	free_msg(r);
	CHECK(r == NULL, "NUL in an IAM token accepted");
	CHECK(strstr(why, "iam_token") != NULL, "reason \"%s\"", why);
	iam.iam_token = (char *) "t1.abcdef";
	r = decode_with_nul(&iam.base, RB_METHOD_IAM_TOKEN_CREATE, why, sizeof(why));
	CHECK(r != NULL, "clean CreateIamTokenResponse refused: %s", why);
	{
		CreateIamTokenResponse *t = (CreateIamTokenResponse *) r;
		bool		ok = strcmp(t->iam_token, "t1.abcdef") == 0 &&
		t->expires_at != NULL && t->expires_at->seconds == 1800000000;

		free_msg(r);
		CHECK(ok, "CreateIamTokenResponse fields wrong");
	}
}

/*
 * The NUL check covers the Operation that the mutating methods and
 * OperationService.Get answer: a NUL in any of its strings (id,
 * description, created_by, the metadata's type URL, the error's message)
 * refuses the reply, while a NUL in the metadata's value, bytes, does not;
 * the clean reply decodes with its oneof.
 */
void
test_operation_reply_strings(void)
{
	static const char *const fields[] = {
		"id", "description", "created_by", "type_url", "message"
	};
	Yandex__Cloud__Operation__Operation op;
	Google__Protobuf__Any meta;
	Google__Rpc__Status error;
	uint8_t		value[] = {0x0a, 0x02, 'b', 'x'};
	ProtobufCMessage *r;
	char		why[128];
	size_t		i;

	for (i = 0; i <= sizeof(fields) / sizeof(fields[0]); i++)
	{
		yandex__cloud__operation__operation__init(&op);
		google__protobuf__any__init(&meta);
		google__rpc__status__init(&error);
		op.id = (char *) (i == 0 ? "mdb#" : "mdb1");
		op.description = (char *) (i == 1 ? "Delete#" : "Delete");
		op.created_by = (char *) (i == 2 ? "aje#" : "aje1");
		meta.type_url = (char *) (i == 3 ? "type.googleapis.com/x#" :
								  "type.googleapis.com/x");
		/* last round: a '#' in the bytes only */
		value[3] = i == sizeof(fields) / sizeof(fields[0]) ? '#' : 'x';
		meta.value.data = value;
		meta.value.len = sizeof(value);
		op.metadata = &meta;
		op.done = true;
		error.code = RB_FAILED_PRECONDITION;
		error.message = (char *) (i == 4 ? "failed#" : "failed");
		op.result_case = YANDEX__CLOUD__OPERATION__OPERATION__RESULT_ERROR;
		op.error = &error;
		r = decode_with_nul(&op.base, RB_METHOD_OPERATION_GET, why, sizeof(why));
		if (i < sizeof(fields) / sizeof(fields[0]))
		{
			free_msg(r);
			CHECK(r == NULL, "NUL in an Operation's %s accepted", fields[i]);
			CHECK(strstr(why, fields[i]) != NULL, "reason \"%s\"", why);
		}
		else
		{
			Yandex__Cloud__Operation__Operation *o =
				(Yandex__Cloud__Operation__Operation *) r;

			CHECK(r != NULL, "Operation with a NUL in bytes refused: %s", why);
			CHECK(o->done && o->error != NULL && o->error->code == RB_FAILED_PRECONDITION &&
				  o->metadata->value.len == sizeof(value) &&
				  o->metadata->value.data[3] == '\0',
				  "Operation decoded wrong");
			free_msg(r);
		}
	}
}

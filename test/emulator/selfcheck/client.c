/*-------------------------------------------------------------------------
 *
 * client.c
 *		  A minimal gRPC client for the emulator's self-check
 *		  (test/emulator/selfcheck.sh).  Plaintext, one channel, unary
 *		  calls only.  Each subcommand prints one line of TAB-separated
 *		  fields; the first is the status name of the (first failing) call.
 *
 *	iam ADDR JWT
 *		IamTokenService.Create: OK TOKEN EXPIRES_AT | CODE MESSAGE
 *	oauth ADDR TEXT
 *		IamTokenService.Create with yandex_passport_oauth_token
 *	list ADDR TOKEN FOLDER PAGE_SIZE [PAGE_TOKEN]
 *		BackupService.List: OK RETURNED NEXT_TOKEN | CODE MESSAGE
 *	folders ADDR TOKEN CLOUD PAGE_SIZE
 *		FolderService.List, every page: OK PAGES FOLDERS DISTINCT
 *		PAGE_SIZES(comma-separated) | CODE MESSAGE
 *	clusters ADDR TOKEN FOLDER PAGE_SIZE FILTER [PAGE_TOKEN]
 *		ClusterService.List, every page (only PAGE_TOKEN's page when
 *		given): OK PAGES CLUSTERS PAGE_SIZES NAMES(comma-separated)
 *		NEXT_TOKEN | CODE MESSAGE
 *	cluster ADDR TOKEN CLUSTER_ID
 *		ClusterService.Get: OK ID FOLDER NAME ENVIRONMENT HEALTH STATUS
 *		PERSISTENCE_MODE SHARDED/TLS/DELETION_PROTECTION(0 or 1 each)
 *		LABELS(k=v;...) SECURITY_GROUPS VERSION BACKUP_WINDOW RETAIN_DAYS
 *		("-" for an unset config, window or retain period) | CODE MESSAGE
 *	concurrent ADDR TOKEN FOLDER N
 *		N BackupService.List calls started at once: OK N ELAPSED_MS
 *	dump ADDR TOKEN FOLDER PAGE_SIZE FILE
 *		every page of BackupService.List; FILE gets each reply's bytes
 *		(4-byte big-endian length, then the bytes): OK PAGES BACKUPS
 *		ELAPSED_MS
 *	delete ADDR TOKEN BACKUP_ID [IDEMPOTENCY_KEY]
 *		BackupService.Delete: the operation line (below) | CODE MESSAGE
 *	backup ADDR TOKEN CLUSTER_ID [IDEMPOTENCY_KEY]
 *		ClusterService.Backup: the operation line | CODE MESSAGE
 *	operation ADDR TOKEN OPERATION_ID
 *		OperationService.Get: the operation line | CODE MESSAGE
 *	wait ADDR TOKEN OPERATION_ID
 *		OperationService.Get every 20 ms until done: the operation line
 *	ids ADDR TOKEN folder|cluster ID
 *		every page of BackupService.List (folder) or
 *		ClusterService.ListBackups (cluster), 1000 a page: OK COUNT
 *		IDS(comma-separated) | CODE MESSAGE
 *	get ADDR TOKEN BACKUP_ID
 *		BackupService.Get: OK ID FOLDER CLUSTER TYPE SHARDS(comma-separated)
 *		STARTED_AT CREATED_AT (seconds) | CODE MESSAGE
 *	(TOKEN "-" sends no authorization)
 *
 * The operation line: OK ID DONE(0|1) DESCRIPTION CREATED_BY
 * CREATED_AT<=MODIFIED_AT(0|1) METADATA_TYPE METADATA_ID RESULT, where
 * RESULT is "-" (not done), "error:CODE:MESSAGE" or "response:TYPE" (with
 * ":CLUSTER_ID" for a Cluster).
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "yandex/cloud/iam/v1/iam_token_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster_service.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder_service.pb-c.h"
#include "yandex/cloud/operation/operation_service.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#define MAX_CONCURRENT 1000

static const char *const code_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"
};

typedef struct Call
{
	grpc_call  *call;
	grpc_metadata md[2];		/* authorization, idempotency-key */
	grpc_metadata_array initial;
	grpc_metadata_array trailing;
	grpc_byte_buffer *send;
	grpc_byte_buffer *recv;
	grpc_status_code status;
	grpc_slice	details;
	char	   *auth;
	/* results */
	uint8_t    *reply;
	size_t		reply_len;
	char	   *message;
} Call;

static grpc_channel *channel;
static grpc_completion_queue *cq;

/* The idempotency-key every call sends; NULL: none. */
static const char *idempotency_key;

/*
 * now_ms
 *		Monotonic clock in milliseconds.
 */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/*
 * start_call
 *		Start a unary call of path with the packed request.
 */
static void
start_call(Call *c, const char *path, const char *token,
		   const ProtobufCMessage *req)
{
	size_t		len = protobuf_c_message_get_packed_size(req);
	uint8_t    *buf = malloc(len + 1);
	grpc_slice	slice;
	grpc_slice	method = grpc_slice_from_static_string(path);
	grpc_op		ops[6];
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
										 gpr_time_from_seconds(60, GPR_TIMESPAN));

	memset(c, 0, sizeof(*c));
	protobuf_c_message_pack(req, buf);
	slice = grpc_slice_from_copied_buffer((const char *) buf, len);
	free(buf);
	c->send = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	grpc_metadata_array_init(&c->initial);
	grpc_metadata_array_init(&c->trailing);
	c->call = grpc_channel_create_call(channel, NULL, 0, cq, method, NULL,
									   deadline, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (strcmp(token, "-") != 0)
	{
		size_t		alen = strlen(token) + 8;

		c->auth = malloc(alen);
		snprintf(c->auth, alen, "Bearer %s", token);
		c->md[0].key = grpc_slice_from_static_string("authorization");
		c->md[0].value = grpc_slice_from_copied_string(c->auth);
		ops[0].data.send_initial_metadata.count = 1;
	}
	if (idempotency_key != NULL)
	{
		size_t		i = ops[0].data.send_initial_metadata.count++;

		c->md[i].key = grpc_slice_from_static_string("idempotency-key");
		c->md[i].value = grpc_slice_from_static_string(idempotency_key);
	}
	ops[0].data.send_initial_metadata.metadata = c->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &c->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.status = &c->status;
	ops[5].data.recv_status_on_client.status_details = &c->details;
	ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing;
	if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK)
	{
		fprintf(stderr, "grpc_call_start_batch failed\n");
		exit(2);
	}
}

/*
 * finish_call
 *		Collect the reply and status of a completed call.
 */
static void
finish_call(Call *c)
{
	c->message = grpc_slice_to_c_string(c->details);
	if (c->recv != NULL)
	{
		grpc_byte_buffer_reader reader;
		grpc_slice	all;

		grpc_byte_buffer_reader_init(&reader, c->recv);
		all = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
		c->reply_len = GRPC_SLICE_LENGTH(all);
		c->reply = malloc(c->reply_len + 1);
		memcpy(c->reply, GRPC_SLICE_START_PTR(all), c->reply_len);
		grpc_slice_unref(all);
		grpc_byte_buffer_destroy(c->recv);
	}
	grpc_byte_buffer_destroy(c->send);
	grpc_slice_unref(c->details);
	grpc_metadata_array_destroy(&c->initial);
	grpc_metadata_array_destroy(&c->trailing);
	if (c->auth)
	{
		grpc_slice_unref(c->md[0].value);
		free(c->auth);
	}
	grpc_call_unref(c->call);
}

/*
 * wait_one
 *		Wait for the next call to complete and finish it.
 */
static void
wait_one(void)
{
	grpc_event	ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);

	if (ev.type != GRPC_OP_COMPLETE)
	{
		fprintf(stderr, "completion queue failed\n");
		exit(2);
	}
	finish_call((Call *) ev.tag);
}

/*
 * unary
 *		Make one call and wait for it.
 */
static void
unary(Call *c, const char *path, const char *token, const ProtobufCMessage *req)
{
	start_call(c, path, token, req);
	wait_one();
}

/*
 * code_name
 *		The name of a status code.
 */
static const char *
code_name(grpc_status_code code)
{
	if ((int) code >= 0 && (int) code <= 16)
		return code_names[code];
	return "UNKNOWN";
}

/*
 * print_error
 *		Print the line of a call that failed: its status name and message.
 */
static void
print_error(const Call *c)
{
	printf("%s\t%s\n", code_name(c->status), c->message);
}

/*
 * decoded_reply
 *		The reply of a finished call decoded as desc; NULL after printing
 *		the line of a failed call or BAD_REPLY.
 */
static ProtobufCMessage *
decoded_reply(const Call *c, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *reply;

	if (c->status != GRPC_STATUS_OK)
	{
		print_error(c);
		return NULL;
	}
	reply = protobuf_c_message_unpack(desc, NULL, c->reply_len, c->reply);
	if (reply == NULL)
		printf("BAD_REPLY\tcould not decode\n");
	return reply;
}

/*
 * cmd_iam
 *		The iam and oauth subcommands: exchange a JWT (or, with oauth, an
 *		OAuth token) for an IAM token.
 */
static int
cmd_iam(const char *token_or_jwt, bool oauth)
{
	Yandex__Cloud__Iam__V1__CreateIamTokenRequest req = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__INIT;
	Yandex__Cloud__Iam__V1__CreateIamTokenResponse *resp;
	Call		c;

	if (oauth)
	{
		req.identity_case = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_YANDEX_PASSPORT_OAUTH_TOKEN;
		req.yandex_passport_oauth_token = (char *) token_or_jwt;
	}
	else
	{
		req.identity_case = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_JWT;
		req.jwt = (char *) token_or_jwt;
	}
	unary(&c, "/yandex.cloud.iam.v1.IamTokenService/Create", "-", &req.base);
	resp = (Yandex__Cloud__Iam__V1__CreateIamTokenResponse *)
		decoded_reply(&c, &yandex__cloud__iam__v1__create_iam_token_response__descriptor);
	if (resp == NULL)
		return 0;
	printf("OK\t%s\t%lld\n", resp->iam_token,
		   resp->expires_at ? (long long) resp->expires_at->seconds : -1LL);
	return 0;
}

/*
 * list_request
 *		A ListBackupsRequest from the command line's strings.
 */
static void
list_request(Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest *req,
			 const char *folder, const char *page_size, const char *page_token)
{
	yandex__cloud__mdb__redis__v1__list_backups_request__init(req);
	req->folder_id = (char *) folder;
	req->page_size = atoll(page_size);
	req->page_token = (char *) (page_token ? page_token : "");
}

/*
 * cmd_list
 *		The list subcommand: one page of BackupService.List.
 */
static int
cmd_list(const char *token, const char *folder, const char *page_size,
		 const char *page_token)
{
	Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest req;
	Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *resp;
	Call		c;

	list_request(&req, folder, page_size, page_token);
	unary(&c, "/yandex.cloud.mdb.redis.v1.BackupService/List", token, &req.base);
	resp = (Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *)
		decoded_reply(&c, &yandex__cloud__mdb__redis__v1__list_backups_response__descriptor);
	if (resp == NULL)
		return 0;
	printf("OK\t%zu\t%s\n", resp->n_backups, resp->next_page_token);
	return 0;
}

/*
 * cmd_folders
 *		The folders subcommand: every page of FolderService.List.
 */
static int
cmd_folders(const char *token, const char *cloud, const char *page_size)
{
	char	   *next = strdup("");
	int			pages = 0;
	long		nfolders = 0;
	char	  **ids = NULL;
	long		distinct = 0;
	char		sizes[4096] = "";

	for (;;)
	{
		Yandex__Cloud__Resourcemanager__V1__ListFoldersRequest req = YANDEX__CLOUD__RESOURCEMANAGER__V1__LIST_FOLDERS_REQUEST__INIT;
		Yandex__Cloud__Resourcemanager__V1__ListFoldersResponse *resp;
		Call		c;

		req.cloud_id = (char *) cloud;
		req.page_size = atoll(page_size);
		req.page_token = next;
		unary(&c, "/yandex.cloud.resourcemanager.v1.FolderService/List", token, &req.base);
		resp = (Yandex__Cloud__Resourcemanager__V1__ListFoldersResponse *)
			decoded_reply(&c, &yandex__cloud__resourcemanager__v1__list_folders_response__descriptor);
		if (resp == NULL)
			return 0;
		pages++;
		snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), "%s%zu",
				 pages > 1 ? "," : "", resp->n_folders);
		ids = realloc(ids, (nfolders + resp->n_folders + 1) * sizeof(char *));
		for (size_t i = 0; i < resp->n_folders; i++)
		{
			bool		seen = false;

			for (long k = 0; k < nfolders; k++)
				if (strcmp(ids[k], resp->folders[i]->id) == 0)
					seen = true;
			if (!seen)
				distinct++;
			if (strcmp(resp->folders[i]->cloud_id, cloud) != 0 || resp->folders[i]->status != 1)
			{
				printf("BAD_REPLY\tfolder %s: cloud_id %s status %d\n", resp->folders[i]->id,
					   resp->folders[i]->cloud_id, resp->folders[i]->status);
				return 0;
			}
			ids[nfolders++] = strdup(resp->folders[i]->id);
		}
		free(next);
		next = strdup(resp->next_page_token);
		if (next[0] == '\0' || pages > 10000)
			break;
	}
	printf("OK\t%d\t%ld\t%ld\t%s\n", pages, nfolders, distinct, sizes);
	return 0;
}

/*
 * cmd_clusters
 *		The clusters subcommand: ClusterService.List, every page (or the one
 *		page of PAGE_TOKEN when given).
 */
static int
cmd_clusters(const char *token, const char *folder, const char *page_size,
			 const char *filter, const char *page_token)
{
	char	   *next = strdup(page_token ? page_token : "");
	int			pages = 0;
	long		n = 0;
	char		names[4096] = "";
	char		sizes[4096] = "";

	for (;;)
	{
		Yandex__Cloud__Mdb__Redis__V1__ListClustersRequest req = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTERS_REQUEST__INIT;
		Yandex__Cloud__Mdb__Redis__V1__ListClustersResponse *resp;
		Call		c;

		req.folder_id = (char *) folder;
		req.page_size = atoll(page_size);
		req.page_token = next;
		req.filter = (char *) filter;
		unary(&c, "/yandex.cloud.mdb.redis.v1.ClusterService/List", token, &req.base);
		resp = (Yandex__Cloud__Mdb__Redis__V1__ListClustersResponse *)
			decoded_reply(&c, &yandex__cloud__mdb__redis__v1__list_clusters_response__descriptor);
		if (resp == NULL)
			return 0;
		pages++;
		snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), "%s%zu",
				 pages > 1 ? "," : "", resp->n_clusters);
		for (size_t i = 0; i < resp->n_clusters; i++, n++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
					 n > 0 ? "," : "", resp->clusters[i]->name);
		free(next);
		next = strdup(resp->next_page_token);
		if (next[0] == '\0' || page_token != NULL || pages > 10000)
			break;
	}
	printf("OK\t%d\t%ld\t%s\t%s\t%s\n", pages, n, sizes, names, next);
	return 0;
}

/*
 * enum_name
 *		The name of an enum value, or its number.
 */
static const char *
enum_name(const ProtobufCEnumDescriptor *desc, int value, char *buf)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);

	if (v != NULL)
		return v->name;
	sprintf(buf, "%d", value);
	return buf;
}

/*
 * cmd_cluster
 *		The cluster subcommand: ClusterService.Get.
 */
static int
cmd_cluster(const char *token, const char *id)
{
	Yandex__Cloud__Mdb__Redis__V1__GetClusterRequest req = YANDEX__CLOUD__MDB__REDIS__V1__GET_CLUSTER_REQUEST__INIT;
	Yandex__Cloud__Mdb__Redis__V1__Cluster *m;
	Yandex__Cloud__Mdb__Redis__V1__ClusterConfig *cf;
	Call		c;
	char		b1[16],
				b2[16],
				b3[16],
				b4[16];

	req.cluster_id = (char *) id;
	unary(&c, "/yandex.cloud.mdb.redis.v1.ClusterService/Get", token, &req.base);
	m = (Yandex__Cloud__Mdb__Redis__V1__Cluster *)
		decoded_reply(&c, &yandex__cloud__mdb__redis__v1__cluster__descriptor);
	if (m == NULL)
		return 0;
	cf = m->config;
	printf("OK\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d%d%d\t", m->id, m->folder_id, m->name,
		   enum_name(&yandex__cloud__mdb__redis__v1__cluster__environment__descriptor, m->environment, b1),
		   enum_name(&yandex__cloud__mdb__redis__v1__cluster__health__descriptor, m->health, b2),
		   enum_name(&yandex__cloud__mdb__redis__v1__cluster__status__descriptor, m->status, b3),
		   enum_name(&yandex__cloud__mdb__redis__v1__cluster__persistence_mode__descriptor, m->persistence_mode, b4),
		   m->sharded, m->tls_enabled, m->deletion_protection);
	for (size_t i = 0; i < m->n_labels; i++)
		printf("%s%s=%s", i > 0 ? ";" : "", m->labels[i]->key, m->labels[i]->value);
	printf("\t");
	for (size_t i = 0; i < m->n_security_group_ids; i++)
		printf("%s%s", i > 0 ? "," : "", m->security_group_ids[i]);
	if (cf == NULL)
		printf("\t-\t-\t-\n");
	else
	{
		printf("\t%s\t", cf->version);
		if (cf->backup_window_start)
			printf("%02d:%02d:%02d.%09d", cf->backup_window_start->hours,
				   cf->backup_window_start->minutes,
				   cf->backup_window_start->seconds,
				   cf->backup_window_start->nanos);
		else
			printf("-");
		if (cf->backup_retain_period_days)
			printf("\t%lld\n", (long long) cf->backup_retain_period_days->value);
		else
			printf("\t-\n");
	}
	return 0;
}

/*
 * cmd_concurrent
 *		The concurrent subcommand: N BackupService.List calls at once.
 */
static int
cmd_concurrent(const char *token, const char *folder, int n)
{
	Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest req;
	Call	   *calls = calloc(n, sizeof(Call));
	double		t0 = now_ms();
	int			failed = -1;

	list_request(&req, folder, "1", NULL);
	for (int i = 0; i < n; i++)
		start_call(&calls[i], "/yandex.cloud.mdb.redis.v1.BackupService/List", token, &req.base);
	for (int i = 0; i < n; i++)
		wait_one();
	for (int i = 0; i < n; i++)
		if (calls[i].status != GRPC_STATUS_OK && failed < 0)
			failed = i;
	if (failed >= 0)
		print_error(&calls[failed]);
	else
		printf("OK\t%d\t%.1f\n", n, now_ms() - t0);
	return 0;
}

/*
 * cmd_dump
 *		The dump subcommand: every page of BackupService.List, the replies'
 *		bytes to a file.
 */
static int
cmd_dump(const char *token, const char *folder, const char *page_size,
		 const char *path)
{
	FILE	   *out = strcmp(path, "-") == 0 ? NULL : fopen(path, "wb");
	char	   *next = strdup("");
	int			pages = 0;
	long		backups = 0;
	double		t0 = now_ms();

	if (out == NULL && strcmp(path, "-") != 0)
	{
		perror(path);
		return 2;
	}
	for (;;)
	{
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest req;
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *resp;
		Call		c;
		uint8_t		len[4];

		list_request(&req, folder, page_size, next);
		unary(&c, "/yandex.cloud.mdb.redis.v1.BackupService/List", token, &req.base);
		if (out && c.status == GRPC_STATUS_OK)
		{
			len[0] = (uint8_t) (c.reply_len >> 24);
			len[1] = (uint8_t) (c.reply_len >> 16);
			len[2] = (uint8_t) (c.reply_len >> 8);
			len[3] = (uint8_t) c.reply_len;
			fwrite(len, 1, 4, out);
			fwrite(c.reply, 1, c.reply_len, out);
		}
		resp = (Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *)
			decoded_reply(&c, &yandex__cloud__mdb__redis__v1__list_backups_response__descriptor);
		if (resp == NULL)
			return 0;
		pages++;
		backups += resp->n_backups;
		free(next);
		next = strdup(resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		free(c.reply);
		gpr_free(c.message);
		if (next[0] == '\0')
			break;
	}
	if (out)
		fclose(out);
	printf("OK\t%d\t%ld\t%.1f\n", pages, backups, now_ms() - t0);
	return 0;
}

/*
 * print_operation
 *		The operation line of an Operation reply (see the top).
 */
static void
print_operation(const Yandex__Cloud__Operation__Operation *op)
{
	ProtobufCMessage *meta = NULL;
	const char *meta_id = "-";
	bool		ordered = op->created_at && op->modified_at &&
		(op->created_at->seconds < op->modified_at->seconds ||
		 (op->created_at->seconds == op->modified_at->seconds &&
		  op->created_at->nanos <= op->modified_at->nanos));

	if (op->metadata && strcmp(op->metadata->type_url,
							   "type.googleapis.com/yandex.cloud.mdb.redis.v1.DeleteBackupMetadata") == 0)
	{
		meta = protobuf_c_message_unpack(&yandex__cloud__mdb__redis__v1__delete_backup_metadata__descriptor,
										 NULL, op->metadata->value.len, op->metadata->value.data);
		if (meta)
			meta_id = ((Yandex__Cloud__Mdb__Redis__V1__DeleteBackupMetadata *) meta)->backup_id;
	}
	else if (op->metadata)
	{
		meta = protobuf_c_message_unpack(&yandex__cloud__mdb__redis__v1__backup_cluster_metadata__descriptor,
										 NULL, op->metadata->value.len, op->metadata->value.data);
		if (meta)
			meta_id = ((Yandex__Cloud__Mdb__Redis__V1__BackupClusterMetadata *) meta)->cluster_id;
	}
	printf("OK\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t", op->id, op->done, op->description,
		   op->created_by, ordered, op->metadata ? op->metadata->type_url : "-",
		   meta_id);
	if (op->result_case == YANDEX__CLOUD__OPERATION__OPERATION__RESULT_ERROR)
		printf("error:%s:%s\n", code_name(op->error->code), op->error->message);
	else if (op->result_case == YANDEX__CLOUD__OPERATION__OPERATION__RESULT_RESPONSE)
	{
		Yandex__Cloud__Mdb__Redis__V1__Cluster *cluster = NULL;

		if (strstr(op->response->type_url, ".Cluster") != NULL)
			cluster = (Yandex__Cloud__Mdb__Redis__V1__Cluster *)
				protobuf_c_message_unpack(&yandex__cloud__mdb__redis__v1__cluster__descriptor,
										  NULL, op->response->value.len,
										  op->response->value.data);
		printf("response:%s%s%s\n", op->response->type_url, cluster ? ":" : "",
			   cluster ? cluster->id : "");
	}
	else
		printf("-\n");
}

/*
 * cmd_operation
 *		The delete, backup, operation and wait subcommands: a call that
 *		answers an Operation (wait: OperationService.Get until done).
 */
static int
cmd_operation(const char *what, const char *token, const char *id)
{
	Yandex__Cloud__Mdb__Redis__V1__DeleteBackupRequest del = YANDEX__CLOUD__MDB__REDIS__V1__DELETE_BACKUP_REQUEST__INIT;
	Yandex__Cloud__Mdb__Redis__V1__BackupClusterRequest bak = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP_CLUSTER_REQUEST__INIT;
	Yandex__Cloud__Operation__GetOperationRequest get = YANDEX__CLOUD__OPERATION__GET_OPERATION_REQUEST__INIT;
	Yandex__Cloud__Operation__Operation *op;
	Call		c;

	del.backup_id = bak.cluster_id = get.operation_id = (char *) id;
	for (;;)
	{
		if (strcmp(what, "delete") == 0)
			unary(&c, "/yandex.cloud.mdb.redis.v1.BackupService/Delete", token, &del.base);
		else if (strcmp(what, "backup") == 0)
			unary(&c, "/yandex.cloud.mdb.redis.v1.ClusterService/Backup", token, &bak.base);
		else
			unary(&c, "/yandex.cloud.operation.OperationService/Get", token, &get.base);
		op = (Yandex__Cloud__Operation__Operation *)
			decoded_reply(&c, &yandex__cloud__operation__operation__descriptor);
		if (op == NULL)
			return 0;
		if (op->done || strcmp(what, "wait") != 0)
			break;
		usleep(20000);
	}
	print_operation(op);
	return 0;
}

/*
 * cmd_ids
 *		The ids subcommand: the ids of every backup of a folder or cluster.
 */
static int
cmd_ids(const char *token, const char *kind, const char *id)
{
	bool		folder = strcmp(kind, "folder") == 0;
	char	   *page_token = strdup("");
	size_t		count = 0;
	char	   *ids = strdup("");

	do
	{
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest freq = YANDEX__CLOUD__MDB__REDIS__V1__LIST_BACKUPS_REQUEST__INIT;
		Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest creq = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTER_BACKUPS_REQUEST__INIT;
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *resp;
		Call		c;

		freq.folder_id = creq.cluster_id = (char *) id;
		freq.page_size = creq.page_size = 1000;
		freq.page_token = creq.page_token = page_token;
		if (folder)
			unary(&c, "/yandex.cloud.mdb.redis.v1.BackupService/List", token, &freq.base);
		else
			unary(&c, "/yandex.cloud.mdb.redis.v1.ClusterService/ListBackups", token, &creq.base);
		/* the two replies have the same fields */
		resp = (Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *)
			decoded_reply(&c, &yandex__cloud__mdb__redis__v1__list_backups_response__descriptor);
		if (resp == NULL)
			return 0;
		for (size_t i = 0; i < resp->n_backups; i++)
		{
			size_t		len = strlen(ids) + strlen(resp->backups[i]->id) + 2;
			char	   *more = malloc(len);

			snprintf(more, len, "%s%s%s", ids, count ? "," : "", resp->backups[i]->id);
			free(ids);
			ids = more;
			count++;
		}
		free(page_token);
		page_token = strdup(resp->next_page_token);
	} while (page_token[0] != '\0');
	printf("OK\t%zu\t%s\n", count, ids);
	return 0;
}

/*
 * cmd_get
 *		The get subcommand: BackupService.Get.
 */
static int
cmd_get(const char *token, const char *id)
{
	Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest req = YANDEX__CLOUD__MDB__REDIS__V1__GET_BACKUP_REQUEST__INIT;
	Yandex__Cloud__Mdb__Redis__V1__Backup *b;
	Call		c;
	char		buf[32];

	req.backup_id = (char *) id;
	unary(&c, "/yandex.cloud.mdb.redis.v1.BackupService/Get", token, &req.base);
	b = (Yandex__Cloud__Mdb__Redis__V1__Backup *)
		decoded_reply(&c, &yandex__cloud__mdb__redis__v1__backup__descriptor);
	if (b == NULL)
		return 0;
	printf("OK\t%s\t%s\t%s\t%s\t", b->id, b->folder_id, b->source_cluster_id,
		   enum_name(&yandex__cloud__mdb__redis__v1__backup__backup_type__descriptor,
					 b->type, buf));
	for (size_t i = 0; i < b->n_source_shard_names; i++)
		printf("%s%s", i ? "," : "", b->source_shard_names[i]);
	printf("\t%lld\t%lld\n", b->started_at ? (long long) b->started_at->seconds : -1LL,
		   b->created_at ? (long long) b->created_at->seconds : -1LL);
	return 0;
}

/*
 * main
 *		Run the subcommand (see the top of this file); exits 2 on a bad
 *		command line.
 */
int
main(int argc, char **argv)
{
	grpc_channel_credentials *creds;
	grpc_arg	arg;
	grpc_channel_args args;
	int			rc = 2;

	if (argc < 4)
	{
		fprintf(stderr, "usage: %s iam|oauth|list|folders|clusters|cluster|concurrent|dump|delete|backup|operation|wait|ids|get ADDR ...\n", argv[0]);
		return 2;
	}
	grpc_init();
	creds = grpc_insecure_credentials_create();
	arg.type = GRPC_ARG_INTEGER;
	arg.key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = 64 * 1024 * 1024;
	args.num_args = 1;
	args.args = &arg;
	channel = grpc_channel_create(argv[2], creds, &args);
	grpc_channel_credentials_release(creds);
	cq = grpc_completion_queue_create_for_next(NULL);

	if (strcmp(argv[1], "iam") == 0 && argc == 4)
		rc = cmd_iam(argv[3], false);
	else if (strcmp(argv[1], "oauth") == 0 && argc == 4)
		rc = cmd_iam(argv[3], true);
	else if (strcmp(argv[1], "list") == 0 && (argc == 6 || argc == 7))
		rc = cmd_list(argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
	else if (strcmp(argv[1], "folders") == 0 && argc == 6)
		rc = cmd_folders(argv[3], argv[4], argv[5]);
	else if (strcmp(argv[1], "concurrent") == 0 && argc == 6)
	{
		int			n = atoi(argv[5]);

		if (n >= 1 && n <= MAX_CONCURRENT)
			rc = cmd_concurrent(argv[3], argv[4], n);
	}
	else if (strcmp(argv[1], "clusters") == 0 && (argc == 7 || argc == 8))
		rc = cmd_clusters(argv[3], argv[4], argv[5], argv[6], argc == 8 ? argv[7] : NULL);
	else if (strcmp(argv[1], "cluster") == 0 && argc == 5)
		rc = cmd_cluster(argv[3], argv[4]);
	else if (strcmp(argv[1], "dump") == 0 && argc == 7)
		rc = cmd_dump(argv[3], argv[4], argv[5], argv[6]);
	else if ((strcmp(argv[1], "delete") == 0 || strcmp(argv[1], "backup") == 0) &&
			 (argc == 5 || argc == 6))
	{
		idempotency_key = argc == 6 ? argv[5] : NULL;
		rc = cmd_operation(argv[1], argv[3], argv[4]);
	}
	else if ((strcmp(argv[1], "operation") == 0 || strcmp(argv[1], "wait") == 0) &&
			 argc == 5)
		rc = cmd_operation(argv[1], argv[3], argv[4]);
	else if (strcmp(argv[1], "ids") == 0 && argc == 6)
		rc = cmd_ids(argv[3], argv[4], argv[5]);
	else if (strcmp(argv[1], "get") == 0 && argc == 5)
		rc = cmd_get(argv[3], argv[4]);
	else
		fprintf(stderr, "%s: bad arguments\n", argv[0]);
	fflush(stdout);
	/* A one-shot tool exits without tearing gRPC down. */
	_exit(rc);
}

/*-------------------------------------------------------------------------
 *
 * make_seeds.c
 *		  Write the seed corpus of test/fuzz/fuzz_reply into a directory.
 *
 * Usage: make_seeds DIR
 *
 * Each file is one fuzz input: a selector byte (0 Backup, 1
 * ListBackupsResponse, 2 ListClusterBackupsResponse, ..., 6 Operation; see
 * fuzz_reply.c)
 * followed by the reply's bytes, packed with protobuf-c from the generated
 * code so that the seeds follow the .proto files.  Seeds: a full Backup,
 * list pages with two backups and a page token, unknown fields of every
 * wire type (top level, in a Backup and in a Timestamp), empty messages,
 * a string holding a NUL byte, a truncated reply and one with an
 * allocation failure.
 *
 * test/fuzz/make_seeds.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "yandex/cloud/mdb/redis/v1/backup.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/backup_service.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster.pb-c.h"
#include "yandex/cloud/mdb/redis/v1/cluster_service.pb-c.h"
#include "yandex/cloud/resourcemanager/v1/folder_service.pb-c.h"
#include "yandex/cloud/operation/operation.pb-c.h"

typedef Yandex__Cloud__Mdb__Redis__V1__Backup Backup;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse ListBackupsResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse ListClusterBackupsResponse;
typedef Google__Protobuf__Timestamp Timestamp;
typedef Yandex__Cloud__Mdb__Redis__V1__Cluster Cluster;
typedef Yandex__Cloud__Mdb__Redis__V1__Cluster__LabelsEntry LabelsEntry;
typedef Yandex__Cloud__Mdb__Redis__V1__ClusterConfig ClusterConfig;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClustersResponse ListClustersResponse;
typedef Yandex__Cloud__Resourcemanager__V1__Folder Folder;
typedef Yandex__Cloud__Resourcemanager__V1__ListFoldersResponse ListFoldersResponse;

enum
{
	SEL_BACKUP = 0,
	SEL_LIST = 1,
	SEL_CLUSTER_LIST = 2,
	SEL_CLUSTER = 3,
	SEL_CLUSTERS = 4,
	SEL_FOLDERS = 5,
	SEL_OPERATION = 6,
	/* 0xC6 % 7 == 2: ListClusterBackupsResponse, allocation 0xC6 - 0xBF fails */
	SEL_CLUSTER_LIST_FAIL_7TH = 0xC6,
	/* 0xC1 % 7 == 4: ListClustersResponse, allocation 0xC1 - 0xBF fails */
	SEL_CLUSTERS_FAIL_2ND = 0xC1,
	/* 0xC5 % 7 == 6: Operation, allocation 0xC5 - 0xBF fails */
	SEL_OPERATION_FAIL_6TH = 0xC5
};

static const char *dir;

/* A growable byte buffer. */
typedef struct Buf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} Buf;

static void write_operation_seeds(Timestamp *created);
static void buf_message(Buf *b, const ProtobufCMessage *msg);
static void write_message(const char *name, uint8_t selector,
						  const ProtobufCMessage *msg);

/*
 * write_cluster_seeds
 *		Seeds of the cluster and folder replies: a full Cluster (labels,
 *		config with a TimeOfDay and an Int64Value, security groups), a list
 *		page of two, one whose second allocation fails, and a folder page.
 */
static void
write_cluster_seeds(Timestamp *created)
{
	static char *groups[] = {"enp0sg1", "enp0sg2"};
	LabelsEntry team = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__LABELS_ENTRY__INIT;
	LabelsEntry odd = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__LABELS_ENTRY__INIT;
	LabelsEntry *labels[2];
	Google__Type__TimeOfDay window = GOOGLE__TYPE__TIME_OF_DAY__INIT;
	Google__Protobuf__Int64Value retain = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
	ClusterConfig config = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER_CONFIG__INIT;
	Cluster		full = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__INIT;
	Cluster		bare = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__INIT;
	Cluster    *two[2];
	ListClustersResponse list = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTERS_RESPONSE__INIT;
	Folder		folder = YANDEX__CLOUD__RESOURCEMANAGER__V1__FOLDER__INIT;
	Folder	   *folders[1];
	ListFoldersResponse flist = YANDEX__CLOUD__RESOURCEMANAGER__V1__LIST_FOLDERS_RESPONSE__INIT;

	team.key = "team";
	team.value = "payments";
	odd.key = "quote\"d";
	odd.value = "";
	labels[0] = &team;
	labels[1] = &odd;
	window.hours = 3;
	window.minutes = 30;
	window.nanos = 999999999;
	retain.value = 7;
	config.version = "7.2";
	config.backup_window_start = &window;
	config.backup_retain_period_days = &retain;
	full.id = "c9q8ppmmq2k0bm5rvvks";
	full.folder_id = "b1g0000000000000folder";
	full.created_at = created;
	full.name = "payments-cache";
	full.description = "sessions";
	full.n_labels = 2;
	full.labels = labels;
	full.environment = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__ENVIRONMENT__PRODUCTION;
	full.config = &config;
	full.network_id = "enp0network";
	full.health = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__HEALTH__ALIVE;
	full.status = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__STATUS__RUNNING;
	full.sharded = 1;
	full.n_security_group_ids = 2;
	full.security_group_ids = groups;
	full.tls_enabled = 1;
	full.deletion_protection = 1;
	write_message("cluster_full", SEL_CLUSTER, &full.base);

	bare.id = "c9qbare";
	bare.folder_id = full.folder_id;
	bare.name = "bare";
	two[0] = &full;
	two[1] = &bare;
	list.n_clusters = 2;
	list.clusters = two;
	list.next_page_token = "eyJvZmZzZXQiOjJ9";
	write_message("clusters_page", SEL_CLUSTERS, &list.base);
	write_message("clusters_alloc_fails", SEL_CLUSTERS_FAIL_2ND, &list.base);

	folder.id = full.folder_id;
	folder.cloud_id = "b1gcloud";
	folder.created_at = created;
	folder.name = "payments";
	folders[0] = &folder;
	flist.n_folders = 1;
	flist.folders = folders;
	flist.next_page_token = "";
	write_message("folders_page", SEL_FOLDERS, &flist.base);
}

/*
 * write_operation_seeds
 *		Seeds of the Operation replies of BackupService.Delete,
 *		ClusterService.Backup and OperationService.Get: one running with its
 *		metadata (an Any), one done with an error (a google.rpc.Status), one
 *		done with a response (an Any holding a Cluster), one whose sixth
 *		allocation fails.
 */
static void
write_operation_seeds(Timestamp *created)
{
	static uint8_t metadata_bytes[] = {0x0a, 0x05, 'b', 'a', 'c', 'k', '1'};
	Google__Protobuf__Any metadata = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__Any response = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Rpc__Status error = GOOGLE__RPC__STATUS__INIT;
	Cluster		cluster = YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__INIT;
	Yandex__Cloud__Operation__Operation op = YANDEX__CLOUD__OPERATION__OPERATION__INIT;
	Buf			b = {0};

	metadata.type_url = "type.googleapis.com/yandex.cloud.mdb.redis.v1.DeleteBackupMetadata";
	metadata.value.data = metadata_bytes;
	metadata.value.len = sizeof(metadata_bytes);
	op.id = "mdb0123456789abcdefg";
	op.description = "Delete the Redis backup";
	op.created_at = created;
	op.created_by = "ajeexample0123456789";
	op.modified_at = created;
	op.metadata = &metadata;
	write_message("operation_running", SEL_OPERATION, &op.base);

	error.code = 9;
	error.message = "the backup is in use";
	op.done = true;
	op.result_case = YANDEX__CLOUD__OPERATION__OPERATION__RESULT_ERROR;
	op.error = &error;
	write_message("operation_error", SEL_OPERATION, &op.base);

	cluster.id = "c9qexample";
	cluster.name = "payments";
	buf_message(&b, &cluster.base);
	response.type_url = "type.googleapis.com/yandex.cloud.mdb.redis.v1.Cluster";
	response.value.data = b.data;
	response.value.len = b.len;
	op.result_case = YANDEX__CLOUD__OPERATION__OPERATION__RESULT_RESPONSE;
	op.response = &response;
	write_message("operation_response", SEL_OPERATION, &op.base);
	write_message("operation_alloc_fails", SEL_OPERATION_FAIL_6TH, &op.base);
	free(b.data);
}

static void
buf_put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 64;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
		{
			perror("make_seeds");
			exit(1);
		}
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
buf_varint(Buf *b, uint64_t v)
{
	uint8_t		c;

	while (v >= 0x80)
	{
		c = (uint8_t) (v | 0x80);
		buf_put(b, &c, 1);
		v >>= 7;
	}
	c = (uint8_t) v;
	buf_put(b, &c, 1);
}

static void
buf_key(Buf *b, uint32_t field, unsigned wire_type)
{
	buf_varint(b, ((uint64_t) field << 3) | wire_type);
}

static void
buf_bytes(Buf *b, uint32_t field, const void *p, size_t n)
{
	buf_key(b, field, 2);
	buf_varint(b, n);
	buf_put(b, p, n);
}

static void
buf_message(Buf *b, const ProtobufCMessage *msg)
{
	size_t		n = protobuf_c_message_get_packed_size(msg);
	uint8_t    *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
	{
		perror("make_seeds");
		exit(1);
	}
	protobuf_c_message_pack(msg, p);
	buf_put(b, p, n);
	free(p);
}

/* Unknown fields of every wire type protobuf-c accepts. */
static void
buf_unknown(Buf *b)
{
	static const uint8_t fixed64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t fixed32[4] = {9, 10, 11, 12};

	buf_key(b, 99, 0);
	buf_varint(b, UINT64_C(1) << 40);
	buf_key(b, 100, 1);
	buf_put(b, fixed64, sizeof(fixed64));
	buf_bytes(b, 101, "unknown\0bytes", 13);	/* a NUL is fine here */
	buf_key(b, 102, 5);
	buf_put(b, fixed32, sizeof(fixed32));
	buf_key(b, 536870911, 0);	/* the largest field number */
	buf_varint(b, 1);
}

static void
write_seed(const char *name, uint8_t selector, const Buf *b)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL ||
		fwrite(&selector, 1, 1, f) != 1 ||
		(b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len) ||
		fclose(f) != 0)
	{
		fprintf(stderr, "make_seeds: cannot write %s: %s\n", path,
				strerror(errno));
		exit(1);
	}
}

static void
write_message(const char *name, uint8_t selector, const ProtobufCMessage *msg)
{
	Buf			b = {0};

	buf_message(&b, msg);
	write_seed(name, selector, &b);
	free(b.data);
}

int
main(int argc, char **argv)
{
	static char *shards[] = {"shard1", "shard2", "shard3"};
	Timestamp	created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Timestamp	started = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Backup		full = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__INIT;
	Backup		second = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__INIT;
	Backup	   *two[2];
	ListBackupsResponse list = YANDEX__CLOUD__MDB__REDIS__V1__LIST_BACKUPS_RESPONSE__INIT;
	ListClusterBackupsResponse clist = YANDEX__CLOUD__MDB__REDIS__V1__LIST_CLUSTER_BACKUPS_RESPONSE__INIT;
	Buf			b = {0};
	Buf			inner = {0};
	Buf			ts = {0};

	if (argc != 2)
	{
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	dir = argv[1];

	/* a full Backup */
	created.seconds = 1700000000;
	created.nanos = 123456789;
	started.seconds = 1699999000;
	started.nanos = 1;
	full.id = "c9q8ppmmq2k0bm5rvvks:c9qv3s7fa4c5dmq3qfgd";
	full.folder_id = "b1g0000000000000folder";
	full.created_at = &created;
	full.source_cluster_id = "c9q8ppmmq2k0bm5rvvks";
	full.started_at = &started;
	full.n_source_shard_names = 3;
	full.source_shard_names = shards;
	full.type = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__MANUAL;
	write_message("backup_full", SEL_BACKUP, &full.base);

	/* list pages with two backups and a page token */
	second.id = "c9q8ppmmq2k0bm5rvvks:c9qaaaaaaaaaaaaaaaaa";
	second.folder_id = full.folder_id;
	second.created_at = &created;
	second.source_cluster_id = full.source_cluster_id;
	second.type = YANDEX__CLOUD__MDB__REDIS__V1__BACKUP__BACKUP_TYPE__AUTOMATED;
	two[0] = &full;
	two[1] = &second;
	list.n_backups = 2;
	list.backups = two;
	list.next_page_token = "eyJvZmZzZXQiOjJ9";
	write_message("list_page", SEL_LIST, &list.base);
	clist.n_backups = 2;
	clist.backups = two;
	clist.next_page_token = "eyJvZmZzZXQiOjJ9";
	write_message("cluster_list_page", SEL_CLUSTER_LIST, &clist.base);

	/* unknown fields: in a Timestamp, in a Backup, at the top level */
	buf_message(&ts, &created.base);
	buf_unknown(&ts);
	buf_message(&inner, &full.base);
	buf_bytes(&inner, 3, ts.data, ts.len);	/* created_at again: merged */
	buf_unknown(&inner);
	buf_bytes(&b, 1, inner.data, inner.len);
	buf_bytes(&b, 2, "token", 5);
	buf_unknown(&b);
	write_seed("list_unknown_fields", SEL_LIST, &b);
	write_seed("backup_unknown_fields", SEL_BACKUP, &inner);
	b.len = 0;

	/* empty messages */
	write_seed("backup_empty", SEL_BACKUP, &b);
	write_seed("list_empty", SEL_LIST, &b);
	write_seed("cluster_list_empty", SEL_CLUSTER_LIST, &b);

	/* a string holding a NUL byte: refused */
	buf_bytes(&b, 4, "c9q\0evil", 8);
	write_seed("backup_nul_in_string", SEL_BACKUP, &b);
	b.len = 0;

	/* truncated: the second backup's bytes are cut short */
	buf_message(&b, &list.base);
	b.len -= 5;
	write_seed("list_truncated", SEL_LIST, &b);
	b.len = 0;

	write_cluster_seeds(&created);
	write_operation_seeds(&created);

	/* a list page whose seventh allocation fails */
	buf_message(&b, &clist.base);
	write_seed("cluster_list_alloc_fails", SEL_CLUSTER_LIST_FAIL_7TH, &b);
	b.len = 0;

	free(b.data);
	free(inner.data);
	free(ts.data);
	return 0;
}

/*-------------------------------------------------------------------------
 *
 * test_clusters.c
 *		  Client tests of ClusterService.List and Get: the filter of a list
 *		  request, pages of clusters, every field of a cluster, NOT_FOUND,
 *		  and the NUL check on the strings of a Cluster.
 *
 * See client_test.h for the harness and how the tests are run; the data
 * are the cluster lines of client_test.tsv.
 *
 * test/client/test_clusters.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <stdlib.h>
#include <string.h>

#include "rb_wire.h"

typedef Yandex__Cloud__Mdb__Redis__V1__Cluster Cluster;
typedef Yandex__Cloud__Mdb__Redis__V1__Cluster__LabelsEntry ClusterLabel;
typedef Yandex__Cloud__Mdb__Redis__V1__ClusterConfig ClusterConfig;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClustersRequest ListClustersRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClustersResponse ListClustersResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__GetClusterRequest GetClusterRequest;

/*
 * The filter reaches the request of the listings that have one, and only
 * theirs; it survives packing; NULL or "" sends nothing.
 */
void
test_cluster_filter_request(void)
{
	RbListRequest req;
	const ProtobufCMessage *msg;
	ListClustersRequest *back;
	uint8_t		buf[256];
	size_t		len;
	size_t		len_plain;

	CHECK(rb_method_has_filter(RB_METHOD_CLUSTER_LIST) &&
		  rb_method_has_filter(RB_METHOD_FOLDER_LIST) &&
		  !rb_method_has_filter(RB_METHOD_BACKUP_LIST) &&
		  !rb_method_has_filter(RB_METHOD_CLUSTER_LIST_BACKUPS) &&
		  !rb_method_has_filter(RB_METHOD_CLUSTER_GET) &&
		  !rb_method_has_filter(RB_NUM_METHODS), "rb_method_has_filter wrong");

	msg = rb_list_request(&req, RB_METHOD_CLUSTER_LIST, "folder-a", 10, "");
	CHECK(msg != NULL, "no ListClustersRequest");
	len_plain = protobuf_c_message_get_packed_size(msg);
	CHECK(rb_list_request_set_filter(&req, RB_METHOD_CLUSTER_LIST, "name=\"q-1\""),
		  "filter refused");
	len = protobuf_c_message_pack(msg, buf);
	back = (ListClustersRequest *) protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	CHECK(back != NULL, "request does not decode");
	{
		bool		ok = strcmp(back->folder_id, "folder-a") == 0 &&
		back->page_size == 10 && strcmp(back->filter, "name=\"q-1\"") == 0;

		free_msg(back);
		CHECK(ok, "ListClustersRequest fields wrong");
	}
	CHECK(rb_list_request_set_filter(&req, RB_METHOD_CLUSTER_LIST, NULL) &&
		  protobuf_c_message_get_packed_size(msg) == len_plain,
		  "NULL filter still sent");
	CHECK(rb_list_request_set_filter(&req, RB_METHOD_CLUSTER_LIST, "") &&
		  protobuf_c_message_get_packed_size(msg) == len_plain,
		  "empty filter sent");

	msg = rb_list_request(&req, RB_METHOD_BACKUP_LIST, "folder-a", 10, "");
	CHECK(msg != NULL && !rb_list_request_set_filter(&req, RB_METHOD_BACKUP_LIST, "x"),
		  "BackupService.List took a filter");
	/* a request built for another method is not touched */
	CHECK(!rb_list_request_set_filter(&req, RB_METHOD_CLUSTER_LIST, "x"),
		  "filter set on a ListBackupsRequest");
	CHECK(!rb_list_request_set_filter(NULL, RB_METHOD_CLUSTER_LIST, "x"),
		  "NULL request accepted");
}

/*
 * make_cluster
 *		A Cluster with every string holding text, for the NUL checks.
 */
static void
make_cluster(Cluster *c, ClusterLabel *le, ClusterLabel **lep, char **groups,
			 ClusterConfig *cfg)
{
	yandex__cloud__mdb__redis__v1__cluster__init(c);
	yandex__cloud__mdb__redis__v1__cluster__labels_entry__init(le);
	yandex__cloud__mdb__redis__v1__cluster_config__init(cfg);
	c->id = (char *) "c-1";
	c->folder_id = (char *) "f-1";
	c->name = (char *) "name-1";
	c->description = (char *) "desc";
	c->network_id = (char *) "net";
	le->key = (char *) "team";
	le->value = (char *) "alpha";
	lep[0] = le;
	c->n_labels = 1;
	c->labels = lep;
	groups[0] = (char *) "sg-1";
	groups[1] = (char *) "sg-2";
	c->n_security_group_ids = 2;
	c->security_group_ids = groups;
	cfg->version = (char *) "7.2";
	c->config = cfg;
}

/*
 * pack_decode
 *		Pack msg, turn its first '#' into a NUL, decode as method's reply.
 */
static ProtobufCMessage *
pack_decode(const ProtobufCMessage *msg, RbMethod method, char *why,
			size_t whylen)
{
	uint8_t		buf[1024];
	size_t		len = protobuf_c_message_pack(msg, buf);
	uint8_t    *hash = memchr(buf, '#', len);

	if (hash != NULL)
		*hash = '\0';
	return rb_decode_reply(rb_method_reply_descriptor(method), buf, len,
						   NULL, why, whylen);
}

/*
 * A NUL in any string of a Cluster refuses ClusterService.Get's reply and a
 * ClusterService.List page: a label key or value (a map entry), a security
 * group id, the name, ClusterConfig.version.  Without one, both decode.
 */
void
test_cluster_reply_strings(void)
{
	Cluster		c;
	ClusterLabel le;
	ClusterLabel *lep[1];
	char	   *groups[2];
	ClusterConfig cfg;
	Cluster    *cp[1] = {&c};
	ListClustersResponse lr;
	ProtobufCMessage *r;
	char		why[128];
	struct
	{
		char	  **field;
		const char *hostile;
		const char *reason;
	}			cases[] = {
		{&le.value, "al#pha", "value"},
		{&le.key, "te#am", "key"},
		{&groups[1], "sg#2", "security_group_ids"},
		{&c.name, "na#me", "Cluster.name"},
		{&cfg.version, "7#2", "ClusterConfig.version"},
	};

	yandex__cloud__mdb__redis__v1__list_clusters_response__init(&lr);
	lr.n_clusters = 1;
	lr.clusters = cp;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		make_cluster(&c, &le, lep, groups, &cfg);
		*cases[i].field = (char *) cases[i].hostile;
		r = pack_decode(&c.base, RB_METHOD_CLUSTER_GET, why, sizeof(why));
		free_msg(r);
		CHECK(r == NULL, "Get: NUL in %s accepted", cases[i].reason);
		CHECK(strstr(why, cases[i].reason) != NULL, "reason \"%s\"", why);
		r = pack_decode(&lr.base, RB_METHOD_CLUSTER_LIST, why, sizeof(why));
		free_msg(r);
		CHECK(r == NULL, "List: NUL in %s accepted", cases[i].reason);
	}
	make_cluster(&c, &le, lep, groups, &cfg);
	r = pack_decode(&lr.base, RB_METHOD_CLUSTER_LIST, why, sizeof(why));
	CHECK(r != NULL, "clean ListClustersResponse refused: %s", why);
	{
		RbListPage	page;
		bool		ok = rb_list_reply_page(RB_METHOD_CLUSTER_LIST, r, &page) &&
		page.n_items == 1 &&
		strcmp(((Cluster *) page.items[0])->labels[0]->value, "alpha") == 0 &&
		strcmp(((Cluster *) page.items[0])->config->version, "7.2") == 0;

		free_msg(r);
		CHECK(ok, "ClusterService.List page wrong");
	}
}

/*
 * list_clusters_page
 *		One ClusterService.List call through rb_list_request.
 */
static ProtobufCMessage *
list_clusters_page(RbChannel *ch, const char *folder, int64_t page_size,
				   const char *page_token, const char *filter, RbStatus *st)
{
	RbListRequest req;
	const ProtobufCMessage *msg;

	msg = rb_list_request(&req, RB_METHOD_CLUSTER_LIST, folder, page_size,
						  page_token);
	if (msg == NULL || !rb_list_request_set_filter(&req, RB_METHOD_CLUSTER_LIST, filter))
		return NULL;
	return rb_call_unary(ch, RB_METHOD_CLUSTER_LIST, msg, TOKEN_ALL, NULL,
						 CALL_TIMEOUT_MS, NULL, NULL, NULL, st, NULL);
}

/*
 * ClusterService.List pages through folder-a one cluster a page, in data
 * order (the token of each page leads to the next); the filter is sent
 * (the emulator's log shows it) and selects one cluster.
 */
void
test_clusters_list(void)
{
	static const char *const want[] = {"c-empty", "cache-a1", "queue-a2"};
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char		token[256] = "";
	ProtobufCMessage *r;
	RbListPage	page;
	size_t		n = 0;
	bool		ok;

	CHECK(ch != NULL, "open: %s", st.message);
	do
	{
		r = list_clusters_page(ch, "folder-a", 1, token, NULL, &st);
		CHECK_CODE(st, RB_OK);
		ok = rb_list_reply_page(RB_METHOD_CLUSTER_LIST, r, &page) &&
			page.n_items == (n < 3 ? 1 : 0) &&
			(page.n_items == 0 || strcmp(((Cluster *) page.items[0])->name, want[n]) == 0);
		snprintf(token, sizeof(token), "%s", page.next_page_token);
		free_msg(r);
		CHECK(ok, "page %zu wrong", n + 1);
		n++;
	} while (token[0] != '\0' && n < 10);
	CHECK(n == 3, "%zu pages, expected 3", n);

	r = list_clusters_page(ch, "folder-a", 0, NULL, "name=\"queue-a2\"", &st);
	CHECK_CODE(st, RB_OK);
	ok = rb_list_reply_page(RB_METHOD_CLUSTER_LIST, r, &page) && page.n_items == 1 &&
		strcmp(((Cluster *) page.items[0])->id, "c-a2") == 0;
	free_msg(r);
	CHECK(ok, "filtered page wrong");
	if (!check_logged(&st, "filter", "\"name=\\\"queue-a2\\\"\"") ||
		!check_logged(&st, "folder_id", "\"folder-a\"") ||
		!check_logged(&st, "method", "\"ClusterService.List\""))
		return;

	r = list_clusters_page(ch, "folder-a", 0, NULL, "name=\"Bad\"", &st);
	CHECK(r == NULL, "an invalid name filter was answered");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	rb_channel_close(ch);
}

/*
 * get_cluster
 *		ClusterService.Get of id.
 */
static Cluster *
get_cluster(RbChannel *ch, const char *id, RbStatus *st)
{
	GetClusterRequest req = YANDEX__CLOUD__MDB__REDIS__V1__GET_CLUSTER_REQUEST__INIT;

	req.cluster_id = (char *) id;
	return (Cluster *) rb_call_unary(ch, RB_METHOD_CLUSTER_GET, &req.base,
									 TOKEN_ALL, NULL, CALL_TIMEOUT_MS, NULL, NULL,
									 NULL, st, NULL);
}

/*
 * cluster_mismatch
 *		NULL when c is client_test.tsv's c-a1, else what differs.
 */
static const char *
cluster_mismatch(const Cluster *c)
{
	const ClusterConfig *cf = c->config;

	if (strcmp(c->id, "c-a1") != 0 || strcmp(c->folder_id, "folder-a") != 0 ||
		strcmp(c->name, "cache-a1") != 0 || strcmp(c->description, "first") != 0 ||
		strcmp(c->network_id, "net-a") != 0)
		return "strings";
	if (ts_mismatch(c->created_at, true, 1790841600, 250000000) != NULL)
		return "created_at";
	if (c->environment != YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__ENVIRONMENT__PRODUCTION ||
		c->health != YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__HEALTH__ALIVE ||
		c->status != YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__STATUS__RUNNING ||
		c->persistence_mode != YANDEX__CLOUD__MDB__REDIS__V1__CLUSTER__PERSISTENCE_MODE__ON_REPLICAS)
		return "enums";
	if (!c->sharded || !c->tls_enabled || !c->deletion_protection)
		return "booleans";
	if (c->n_labels != 2 || strcmp(c->labels[0]->key, "team") != 0 ||
		strcmp(c->labels[0]->value, "alpha") != 0 ||
		strcmp(c->labels[1]->key, "empty") != 0 || strcmp(c->labels[1]->value, "") != 0)
		return "labels";
	if (c->n_security_group_ids != 2 || strcmp(c->security_group_ids[1], "sg-2") != 0)
		return "security_group_ids";
	if (cf == NULL || strcmp(cf->version, "7.2") != 0 || cf->backup_window_start == NULL ||
		cf->backup_window_start->hours != 3 || cf->backup_window_start->minutes != 30 ||
		cf->backup_window_start->seconds != 15 ||
		cf->backup_window_start->nanos != 500000000 ||
		cf->backup_retain_period_days == NULL || cf->backup_retain_period_days->value != 7)
		return "config";
	return NULL;
}

/*
 * ClusterService.Get decodes every field; a bare cluster has no config; a
 * cluster only named by backups, and an unknown one, are NOT_FOUND; a NUL
 * in a label is BAD_REPLY, on Get and on List.
 */
void
test_clusters_get(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	Cluster    *c;
	const char *why;
	bool		ok;

	CHECK(ch != NULL, "open: %s", st.message);
	c = get_cluster(ch, "c-a1", &st);
	CHECK_CODE(st, RB_OK);
	why = cluster_mismatch(c);
	free_msg(c);
	CHECK(why == NULL, "c-a1: %s wrong", why);
	if (!check_logged(&st, "cluster_id", "\"c-a1\""))
		return;

	c = get_cluster(ch, "c-empty", &st);
	CHECK_CODE(st, RB_OK);
	ok = c->config == NULL && c->created_at == NULL && c->n_labels == 0 &&
		strcmp(c->name, "c-empty") == 0 && c->environment == 0;
	free_msg(c);
	CHECK(ok, "c-empty not bare");

	c = get_cluster(ch, "c-b1", &st);
	CHECK(c == NULL, "a deleted cluster was found");
	CHECK_CODE(st, RB_NOT_FOUND);
	c = get_cluster(ch, "c-nosuch", &st);
	CHECK(c == NULL, "an unknown cluster was found");
	CHECK_CODE(st, RB_NOT_FOUND);

	c = get_cluster(ch, "c-nul-label", &st);
	CHECK(c == NULL, "a NUL in a label was accepted");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);
	CHECK(strstr(st.message, "NUL") != NULL, "message \"%s\"", st.message);
	c = (Cluster *) list_clusters_page(ch, "f-nul-label", 0, NULL, NULL, &st);
	CHECK(c == NULL, "a NUL in a label was accepted by List");
	CHECK_CODE(st, RB_LOCAL_BAD_REPLY);
	rb_channel_close(ch);
}

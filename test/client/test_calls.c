/*-------------------------------------------------------------------------
 *
 * test_calls.c
 *		  Client tests: calls, decoding, paging, errors from the service
 *		  and request ids.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_calls.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------------------
 * Calls and decoding
 * ----------------------------------------------------------------------
 */

/* BackupService.Get decodes every field; request ids are captured. */
void
test_get(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	Backup	   *b;
	const char *m;
	char	   *line;
	char		want[128];

	CHECK(ch != NULL, "open: %s", st.message);
	b = do_get(ch, TOKEN_ALL, "b-a1", &st);
	CHECK_CODE(st, RB_OK);
	CHECK(b != NULL, "no reply");
	m = check_b_a1(b);
	CHECK(m == NULL, "%s", m);
	free_msg(b);
	CHECK(st.request_id[0] != '\0', "x-request-id not captured");
	CHECK(is_uuid_v4(st.client_request_id), "client_request_id \"%s\"",
		  st.client_request_id);

	line = log_line(st.client_request_id);
	CHECK(line != NULL, "no emulator log line for %s", st.client_request_id);
	snprintf(want, sizeof(want), "\"%s\"", st.request_id);
	if (!log_has(line, "method", "\"BackupService.Get\"") ||
		!log_has(line, "backup_id", "\"b-a1\"") ||
		!log_has(line, "auth", "\"ok\"") ||
		!log_has(line, "status", "\"OK\"") ||
		!log_has(line, "request_id", want))
	{
		FAIL("log line does not match: %s", line);
		free(line);
		return;
	}
	free(line);

	CHECK_GET(ch, "b-b1", check_b_b1);

	rb_channel_close(ch);
}

/* Absent timestamps, no shards, unknown enum values. */
void
test_get_odd_values(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK_GET(ch, "b-a2", check_b_a2);
	CHECK_GET(ch, "b-a3", check_b_a3);
	CHECK_GET(ch, "b-a4", check_b_a4);
	rb_channel_close(ch);
}

/* BackupService.List of a small folder, and of an empty one. */
void
test_list(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	const char *m;
	size_t		bytes = 0;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "folder-a", 0, NULL, &st, &bytes);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply");
	m = check_folder_a(r->backups, r->n_backups);
	if (m == NULL && r->next_page_token[0] != '\0')
		m = "next_page_token on the only page";
	free_msg(r);
	CHECK(m == NULL, "%s", m);
	CHECK(bytes > 100, "reply_bytes %zu", bytes);
	CHECK(st.request_id[0] != '\0', "x-request-id not captured");

	/* two pages of two */
	r = do_list(ch, TOKEN_ALL, "folder-a", 2, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 2 && r->next_page_token[0] != '\0',
		  "first page: %zu backups, token \"%s\"", r->n_backups,
		  r->next_page_token);
	m = check_b_a1(r->backups[0]);
	if (m == NULL)
		m = check_b_a2(r->backups[1]);
	if (m == NULL)
	{
		ListBackupsResponse *r2 = do_list(ch, TOKEN_ALL, "folder-a", 2,
										  r->next_page_token, &st, NULL);

		if (r2 == NULL)
			m = "second page failed";
		else if (r2->n_backups != 2 || r2->next_page_token[0] != '\0')
			m = "second page not the last of two";
		else if ((m = check_b_a3(r2->backups[0])) == NULL)
			m = check_b_a4(r2->backups[1]);
		free_msg(r2);
	}
	free_msg(r);
	CHECK(m == NULL, "%s (%s)", m, st.message);

	r = do_list(ch, TOKEN_ALL, "folder-empty", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply for an empty folder");
	CHECK(r->n_backups == 0 && r->next_page_token[0] == '\0',
		  "empty folder: %zu backups", r->n_backups);
	free_msg(r);
	rb_channel_close(ch);
}

/* ClusterService.ListBackups. */
void
test_cluster_list(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListClusterBackupsResponse *r;
	const char *m;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_cluster_list(ch, TOKEN_ALL, "c-a1", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL, "no reply");
	CHECK(r->n_backups == 2, "%zu backups for c-a1", r->n_backups);
	m = check_b_a1(r->backups[0]);
	if (m == NULL)
		m = check_b_a2(r->backups[1]);
	if (m == NULL && r->next_page_token[0] != '\0')
		m = "next_page_token on the only page";
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_cluster_list(ch, TOKEN_ALL, "c-a2", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r->n_backups == 2, "%zu backups for c-a2", r->n_backups);
	m = check_b_a3(r->backups[0]);
	if (m == NULL)
		m = check_b_a4(r->backups[1]);
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_cluster_list(ch, TOKEN_ALL, "c-empty", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL && r->n_backups == 0, "c-empty not empty");
	free_msg(r);
	rb_channel_close(ch);
}

/* Counting allocator for test_allocator. */
typedef struct CountingAllocator
{
	long		allocs;
	long		frees;
} CountingAllocator;

/*
 * counting_alloc, counting_free
 *		The allocator of test_allocator: malloc and free, counted.
 */
static void *
counting_alloc(void *data, size_t size)
{
	((CountingAllocator *) data)->allocs++;
	return malloc(size);
}

static void
counting_free(void *data, void *ptr)
{
	((CountingAllocator *) data)->frees++;
	free(ptr);
}

/* Replies are decoded through the caller's allocator. */
void
test_allocator(void)
{
	CountingAllocator counts = {0, 0};
	ProtobufCAllocator alloc = {counting_alloc, counting_free, &counts};
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req;
	ListBackupsResponse *r;
	const char *m;
	size_t		bytes;

	CHECK(ch != NULL, "open: %s", st.message);
	make_list(&req, "folder-a", 0, NULL);
	r = (ListBackupsResponse *) rb_call_unary(ch, RB_METHOD_BACKUP_LIST,
											  &req.base, TOKEN_ALL, NULL,
											  CALL_TIMEOUT_MS, NULL, NULL,
											  &alloc, &st, &bytes);
	CHECK_CODE(st, RB_OK);
	CHECK(counts.allocs > 0, "allocator not used");
	m = check_folder_a(r->backups, r->n_backups);
	protobuf_c_message_free_unpacked(&r->base, &alloc);
	CHECK(m == NULL, "%s", m);
	CHECK(counts.allocs == counts.frees, "%ld allocations, %ld frees",
		  counts.allocs, counts.frees);
	rb_channel_close(ch);
}

/*
 * Page through the generated folder of 2500 with page_size 1000: exactly
 * 1000 + 1000 + 500 distinct backups; the emulator log shows the page size
 * and tokens we sent.
 */
void
test_paging(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char	  **ids = calloc(3000, sizeof(char *));
	char		token[256] = "";
	size_t		n = 0;
	int			pages = 0;
	size_t		i;
	const char *dup;
	int			expect[3] = {1000, 1000, 500};

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK(ids != NULL, "out of memory");
	for (;;)
	{
		ListBackupsResponse *r = do_list(ch, TOKEN_ALL, "gen", 1000, token,
										 &st, NULL);
		char	   *line;
		char		want[300];

		CHECK(r != NULL, "page %d: %s %s", pages + 1,
			  rb_code_name(st.code), st.message);
		CHECK(pages < 3, "more than 3 pages");
		CHECK((int) r->n_backups == expect[pages], "page %d has %zu backups",
			  pages + 1, r->n_backups);
		for (i = 0; i < r->n_backups && n < 3000; i++)
		{
			CHECK(strcmp(r->backups[i]->folder_id, "gen") == 0,
				  "folder_id \"%s\"", r->backups[i]->folder_id);
			ids[n++] = strdup(r->backups[i]->id);
		}

		line = log_line(st.client_request_id);
		CHECK(line != NULL, "no log line for page %d", pages + 1);
		snprintf(want, sizeof(want), "\"%s\"", token);
		if (!log_has(line, "page_size", "1000") ||
			!log_has(line, "page_token", want) ||
			!log_has(line, "folder_id", "\"gen\""))
		{
			FAIL("log line does not match: %s", line);
			free(line);
			free_msg(r);
			return;
		}
		free(line);

		pages++;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		free_msg(r);
		if (token[0] == '\0')
			break;
	}
	CHECK(pages == 3, "%d pages", pages);
	CHECK(n == 2500, "%zu backups", n);
	dup = sort_find_duplicate(ids, n);
	CHECK(dup == NULL, "duplicate id %s", dup);
	CHECK(strcmp(ids[0], "gen-b0000000") == 0 &&
		  strcmp(ids[n - 1], "gen-b0002499") == 0,
		  "ids run from %s to %s", ids[0], ids[n - 1]);
	free_strings(ids, n);
	rb_channel_close(ch);
}

/* page_size 0 means the server default, 100; the log shows 0 was sent. */
void
test_default_page_size(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	size_t		n;
	bool		has_token;

	CHECK(ch != NULL, "open: %s", st.message);
	r = do_list(ch, TOKEN_ALL, "gen", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	n = r->n_backups;
	has_token = r->next_page_token[0] != '\0';
	free_msg(r);
	CHECK(n == 100, "%zu backups", n);
	CHECK(has_token, "no next_page_token");
	if (check_logged(&st, "page_size", "0"))
		check_logged(&st, "returned", "100");
	rb_channel_close(ch);
}

/* ClusterService.ListBackups pages through the ten generated clusters. */
void
test_cluster_paging(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char	  **ids = calloc(3000, sizeof(char *));
	size_t		n = 0;
	size_t		i;
	const char *dup;
	int			c;

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK(ids != NULL, "out of memory");
	for (c = 0; c < 10; c++)
	{
		char		cluster[32];
		char		token[256] = "";
		int			pages = 0;

		snprintf(cluster, sizeof(cluster), "gen-c%d", c);
		do
		{
			ListClusterBackupsResponse *r = do_cluster_list(ch, TOKEN_ALL,
															cluster, 100,
															token, &st);

			CHECK(r != NULL, "%s: %s %s", cluster, rb_code_name(st.code),
				  st.message);
			CHECK(++pages <= 30, "%s: too many pages", cluster);
			CHECK(r->n_backups <= 100, "%zu backups on a page of 100",
				  r->n_backups);
			for (i = 0; i < r->n_backups && n < 3000; i++)
			{
				CHECK(strcmp(r->backups[i]->source_cluster_id, cluster) == 0,
					  "backup %s of cluster %s listed for %s",
					  r->backups[i]->id, r->backups[i]->source_cluster_id,
					  cluster);
				ids[n++] = strdup(r->backups[i]->id);
			}
			snprintf(token, sizeof(token), "%s", r->next_page_token);
			free_msg(r);
		} while (token[0] != '\0');
	}
	CHECK(n == 2500, "%zu backups over the ten clusters", n);
	dup = sort_find_duplicate(ids, n);
	CHECK(dup == NULL, "duplicate id %s", dup);
	free_strings(ids, n);
	rb_channel_close(ch);
}

/* ----------------------------------------------------------------------
 * Errors from the service
 * ----------------------------------------------------------------------
 */

/* Every validation error and NOT_FOUND, with a message and request id. */
void
test_validation(void)
{
	char		long51[52];
	char		long50[51];
	char		long101[102];
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	ListClusterBackupsResponse *cr;
	Backup	   *b;
	struct
	{
		const char *folder;
		int64_t		page_size;
		const char *token;
		const char *what;
	}			list_cases[] = {
		{"", 0, NULL, "empty folder_id"},
		{long51, 0, NULL, "51-char folder_id"},
		{"folder-a", -1, NULL, "page_size -1"},
		{"folder-a", 1001, NULL, "page_size 1001"},
		{"folder-a", 0, long101, "101-char page_token"},
		{"folder-a", 0, "not-a-token", "bogus page_token"},
	};
	size_t		i;

	memset(long51, 'f', 51);
	long51[51] = '\0';
	memset(long50, 'f', 50);
	long50[50] = '\0';
	memset(long101, 't', 101);
	long101[101] = '\0';

	CHECK(ch != NULL, "open: %s", st.message);
	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++)
	{
		r = do_list(ch, TOKEN_ALL, list_cases[i].folder,
					list_cases[i].page_size, list_cases[i].token, &st, NULL);
		CHECK(r == NULL, "%s: reply returned", list_cases[i].what);
		CHECK(st.code == RB_INVALID_ARGUMENT, "%s: %s (%s)",
			  list_cases[i].what, rb_code_name(st.code), st.message);
		CHECK(st.message[0] != '\0', "%s: no message", list_cases[i].what);
		CHECK(st.request_id[0] != '\0', "%s: no x-request-id",
			  list_cases[i].what);
	}

	/* the limits themselves are fine */
	r = do_list(ch, TOKEN_ALL, "folder-a", 1000, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	free_msg(r);
	r = do_list(ch, TOKEN_ALL, long50, 1, NULL, &st, NULL);
	CHECK(st.code != RB_INVALID_ARGUMENT, "50-char folder_id: %s",
		  st.message);
	free_msg(r);

	cr = do_cluster_list(ch, TOKEN_ALL, "", 0, NULL, &st);
	CHECK(cr == NULL, "empty cluster_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, long51, 0, NULL, &st);
	CHECK(cr == NULL, "51-char cluster_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, "c-a1", 1001, NULL, &st);
	CHECK(cr == NULL, "cluster page_size 1001: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);
	cr = do_cluster_list(ch, TOKEN_ALL, "c-a1", 0, "bogus", &st);
	CHECK(cr == NULL, "cluster bogus token: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);

	b = do_get(ch, TOKEN_ALL, "", &st);
	CHECK(b == NULL, "empty backup_id: reply returned");
	CHECK_CODE(st, RB_INVALID_ARGUMENT);

	b = do_get(ch, TOKEN_ALL, "b-none", &st);
	CHECK(b == NULL, "unknown backup: reply returned");
	CHECK_CODE(st, RB_NOT_FOUND);
	CHECK(st.message[0] != '\0', "NOT_FOUND without a message");
	cr = do_cluster_list(ch, TOKEN_ALL, "c-none", 0, NULL, &st);
	CHECK(cr == NULL, "unknown cluster: reply returned");
	CHECK_CODE(st, RB_NOT_FOUND);
	rb_channel_close(ch);
}

/* Missing token, wrong token, folder not granted. */
void
test_auth(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsResponse *r;
	ListClusterBackupsResponse *cr;
	Backup	   *b;
	const char *m;

	CHECK(ch != NULL, "open: %s", st.message);

	r = do_list(ch, NULL, "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "no token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);
	CHECK(st.message[0] != '\0', "no message");
	if (!check_logged(&st, "auth", "\"missing\""))
		return;

	r = do_list(ch, "", "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "empty token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);

	r = do_list(ch, "tok-wrong", "folder-a", 0, NULL, &st, NULL);
	CHECK(r == NULL, "wrong token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);
	if (!check_logged(&st, "auth", "\"invalid\""))
		return;

	b = do_get(ch, "tok-wrong", "b-a1", &st);
	CHECK(b == NULL, "Get, wrong token: reply returned");
	CHECK_CODE(st, RB_UNAUTHENTICATED);

	/* tok-a is granted folder-a only */
	r = do_list(ch, TOKEN_A, "folder-a", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_folder_a(r->backups, r->n_backups);
	free_msg(r);
	CHECK(m == NULL, "%s", m);

	r = do_list(ch, TOKEN_A, "folder-b", 0, NULL, &st, NULL);
	CHECK(r == NULL, "folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	CHECK(st.message[0] != '\0', "no message");
	if (!check_logged(&st, "auth", "\"denied\""))
		return;

	b = do_get(ch, TOKEN_A, "b-b1", &st);
	CHECK(b == NULL, "Get in folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	b = do_get(ch, TOKEN_A, "b-a1", &st);
	CHECK_CODE(st, RB_OK);
	free_msg(b);

	cr = do_cluster_list(ch, TOKEN_A, "c-b1", 0, NULL, &st);
	CHECK(cr == NULL, "cluster in folder not granted: reply returned");
	CHECK_CODE(st, RB_PERMISSION_DENIED);
	cr = do_cluster_list(ch, TOKEN_A, "c-a1", 0, NULL, &st);
	CHECK_CODE(st, RB_OK);
	free_msg(cr);
	rb_channel_close(ch);
}

/* Each call gets its own client request id and server request id. */
void
test_request_ids(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char		rid[2][RB_REQUEST_ID_LEN];
	char		crid[2][40];
	char	   *line;
	char		want[128];
	int			i;

	CHECK(ch != NULL, "open: %s", st.message);
	for (i = 0; i < 2; i++)
	{
		Backup	   *b = do_get(ch, TOKEN_ALL, i == 0 ? "b-a1" : "b-none", &st);

		free_msg(b);
		CHECK_CODE(st, i == 0 ? RB_OK : RB_NOT_FOUND);
		CHECK(st.request_id[0] != '\0', "call %d: no x-request-id", i);
		CHECK(is_uuid_v4(st.client_request_id), "call %d: client id \"%s\"",
			  i, st.client_request_id);
		strcpy(rid[i], st.request_id);
		strcpy(crid[i], st.client_request_id);

		line = log_line(crid[i]);
		CHECK(line != NULL, "call %d: the emulator did not log our id", i);
		snprintf(want, sizeof(want), "\"%s\"", rid[i]);
		if (!log_has(line, "request_id", want))
			FAIL("x-request-id %s not in log line %s", rid[i], line);
		free(line);
		if (cur_failed)
			return;
	}
	CHECK(strcmp(rid[0], rid[1]) != 0, "same x-request-id twice");
	CHECK(strcmp(crid[0], crid[1]) != 0, "same client request id twice");
	rb_channel_close(ch);
}

/*
 * page_all
 *		Page through key with method via rb_list_request/rb_list_reply_page;
 *		store up to max item ids in ids (malloc'ed) and return the number of
 *		items, or -1 (with the status in *st) on failure.
 */
static long
page_all(RbChannel *ch, RbMethod method, const char *key, int64_t page_size,
		 char **ids, size_t max, int *pages, RbStatus *st)
{
	char		token[256] = "";
	long		n = 0;

	*pages = 0;
	do
	{
		RbListRequest req;
		const ProtobufCMessage *msg;
		ProtobufCMessage *reply;
		RbListPage page;
		size_t		i;

		msg = rb_list_request(&req, method, key, page_size, token);
		if (msg == NULL)
			return -1;
		reply = rb_call_unary(ch, method, msg, TOKEN_ALL, NULL, CALL_TIMEOUT_MS,
							  NULL, NULL, NULL, st, NULL);
		if (reply == NULL)
			return -1;
		if (!rb_list_reply_page(method, reply, &page))
		{
			free_msg(reply);
			return -1;
		}
		for (i = 0; i < page.n_items; i++)
		{
			if ((size_t) n < max)
				ids[n] = strdup(((Backup *) page.items[i])->id);
			n++;
		}
		snprintf(token, sizeof(token), "%s", page.next_page_token);
		free_msg(reply);
		(*pages)++;
	} while (token[0] != '\0' && *pages < 100);
	return n;
}

/*
 * The generic page API against the emulator: folder "gen" in pages of 1000
 * (2500 distinct backups, 3 pages), and cluster c-a1 (b-a1, b-a2).
 */
void
test_list_page_api(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	char	  **ids = calloc(3000, sizeof(char *));
	long		n;
	long		i;
	int			pages;
	bool		distinct = true;

	CHECK(ch != NULL, "open: %s", st.message);
	CHECK(ids != NULL, "out of memory");
	n = page_all(ch, RB_METHOD_BACKUP_LIST, "gen", 1000, ids, 3000, &pages, &st);
	if (n == 2500)
		distinct = sort_find_duplicate(ids, (size_t) n) == NULL;
	for (i = 0; i < n && i < 3000; i++)
		free(ids[i]);
	CHECK(n == 2500, "folder gen: %ld backups (%s %s)", n,
		  rb_code_name(st.code), st.message);
	CHECK(pages == 3, "folder gen: %d pages", pages);
	CHECK(distinct, "folder gen: duplicate ids");

	n = page_all(ch, RB_METHOD_CLUSTER_LIST_BACKUPS, "c-a1", 1, ids, 3000,
				 &pages, &st);
	CHECK(n == 2, "cluster c-a1: %ld backups (%s)", n, st.message);
	CHECK(strcmp(ids[0], "b-a1") == 0 && strcmp(ids[1], "b-a2") == 0,
		  "cluster c-a1: %s, %s", ids[0], ids[1]);
	CHECK(pages >= 2, "cluster c-a1 in pages of 1: %d pages", pages);
	free(ids[0]);
	free(ids[1]);
	free(ids);
	rb_channel_close(ch);
}

/*
 * operation_call
 *		One call of a method that answers an Operation, sent with key as its
 *		idempotency key (NULL: none); the reply, or NULL with *st set.
 */
static Yandex__Cloud__Operation__Operation *
operation_call(RbChannel *ch, RbMethod method, const char *id, const char *key,
			   RbStatus *st)
{
	Yandex__Cloud__Mdb__Redis__V1__DeleteBackupRequest del =
		YANDEX__CLOUD__MDB__REDIS__V1__DELETE_BACKUP_REQUEST__INIT;
	Yandex__Cloud__Operation__GetOperationRequest get =
		YANDEX__CLOUD__OPERATION__GET_OPERATION_REQUEST__INIT;

	del.backup_id = get.operation_id = (char *) id;
	return (Yandex__Cloud__Operation__Operation *)
		rb_call_unary(ch, method,
					  method == RB_METHOD_BACKUP_DELETE ? &del.base : &get.base,
					  TOKEN_ALL, key, CALL_TIMEOUT_MS, NULL, NULL, NULL, st, NULL);
}

/*
 * BackupService.Delete with an idempotency key: the emulator logs the key it
 * received, the same key answers the same operation, OperationService.Get
 * follows it until done, and then the backup is gone.
 */
void
test_idempotency_key_sent(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	Yandex__Cloud__Operation__Operation *op;
	Yandex__Cloud__Operation__Operation *again;
	char		key[37];
	char		want[64];
	char		op_id[32];
	int			polls = 0;
	char	   *line;
	bool		ok;

	CHECK(ch != NULL, "open: %s", st.message);
	rb_uuid_generate(key);
	op = operation_call(ch, RB_METHOD_BACKUP_DELETE, "b-mut1", key, &st);
	CHECK_CODE(st, RB_OK);
	snprintf(want, sizeof(want), "\"%s\"", key);
	if (!check_logged(&st, "idempotency_key", want))
		return;
	CHECK(!op->done && op->metadata != NULL &&
		  strcmp(op->metadata->type_url,
				 "type.googleapis.com/yandex.cloud.mdb.redis.v1.DeleteBackupMetadata") == 0,
		  "operation %s: done %d, metadata %s", op->id, op->done,
		  op->metadata ? op->metadata->type_url : "none");
	snprintf(op_id, sizeof(op_id), "%s", op->id);
	free_msg(op);

	again = operation_call(ch, RB_METHOD_BACKUP_DELETE, "b-mut1", key, &st);
	CHECK_CODE(st, RB_OK);
	CHECK(strcmp(again->id, op_id) == 0, "the same key answered %s, not %s",
		  again->id, op_id);
	free_msg(again);

	/* a call without a key sends none */
	op = operation_call(ch, RB_METHOD_OPERATION_GET, op_id, NULL, &st);
	CHECK_CODE(st, RB_OK);
	free_msg(op);
	line = log_line(st.client_request_id);
	ok = line != NULL && strstr(line, "idempotency_key") == NULL;
	free(line);
	CHECK(ok, "the call without a key is not logged, or logged with one");

	do
	{
		usleep(50 * 1000);
		op = operation_call(ch, RB_METHOD_OPERATION_GET, op_id, NULL, &st);
		CHECK_CODE(st, RB_OK);
		if (op->done)
			break;
		free_msg(op);
	} while (++polls < 100);
	CHECK(op->done &&
		  op->result_case == YANDEX__CLOUD__OPERATION__OPERATION__RESULT_RESPONSE &&
		  strcmp(op->response->type_url,
				 "type.googleapis.com/google.protobuf.Empty") == 0,
		  "operation %s did not end with a response", op_id);
	free_msg(op);
	free_msg(do_get(ch, TOKEN_ALL, "b-mut1", &st));
	CHECK_CODE(st, RB_NOT_FOUND);
	rb_channel_close(ch);
}

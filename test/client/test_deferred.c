/*-------------------------------------------------------------------------
 *
 * test_deferred.c
 *		  Tests of what the scan engine of the foreign data wrapper uses to
 *		  keep its calls busy: rb_channel_wait_any_for (a bounded wait),
 *		  rb_call_finish_bytes with rb_reply_next_page_token (the next call
 *		  starts before the reply is decoded) and rb_reply_decode.
 *
 * test/client/test_deferred.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A call that stays in flight 300 ms (fault latency=300@f-latency). */
static RbCall *
start_slow_list(RbChannel *ch, ListBackupsRequest *req, RbStatus *st)
{
	make_list(req, "f-latency", 0, NULL);
	return rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req->base, TOKEN_ALL,
						 NULL, CALL_TIMEOUT_MS, st);
}

/*
 * test_wait_any_for
 *		A wait of 0 ms polls, a bounded wait returns RB_LOCAL_TIMED_OUT in
 *		about its time, and the call is still collected after both.
 */
void
test_wait_any_for(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ListBackupsRequest req;
	RbCall	   *call;
	RbCall	   *got;
	ListBackupsResponse *r;
	int64_t		t0,
				elapsed;

	CHECK(ch != NULL, "open: %s", st.message);
	call = start_slow_list(ch, &req, &st);
	CHECK(call != NULL, "start: %s", st.message);

	t0 = now_ms();
	got = rb_channel_wait_any_for(ch, 0, NULL, NULL, &st);
	elapsed = now_ms() - t0;
	CHECK(got == NULL, "a call completed at once");
	CHECK_CODE(st, RB_LOCAL_TIMED_OUT);
	CHECK(elapsed < 50 * slow, "a wait of 0 ms took %" PRId64 " ms", elapsed);

	t0 = now_ms();
	got = rb_channel_wait_any_for(ch, 80, NULL, NULL, &st);
	elapsed = now_ms() - t0;
	CHECK(got == NULL, "a call completed within 80 ms");
	CHECK_CODE(st, RB_LOCAL_TIMED_OUT);
	CHECK(elapsed >= 79 && elapsed < 250 * slow,
		  "a wait of 80 ms took %" PRId64 " ms", elapsed);

	got = rb_channel_wait_any_for(ch, -1, NULL, NULL, &st);
	CHECK(got == call, "the call was not returned: %s", st.message);
	r = (ListBackupsResponse *) rb_call_finish(call, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	CHECK(r != NULL && r->n_backups == 1, "wrong reply");
	free_msg(r);

	/* nothing in flight: refused at once, whatever the timeout */
	got = rb_channel_wait_any_for(ch, 1000, NULL, NULL, &st);
	CHECK(got == NULL, "a call out of nowhere");
	CHECK_CODE(st, RB_LOCAL_BAD_OPTION);
	rb_channel_close(ch);
}

/* protobuf-c allocator over malloc, counting what it gave out */
static size_t allocated;

static void *
counting_alloc(void *data, size_t size)
{
	allocated += size;
	return malloc(size);
}

static void
plain_free(void *data, void *p)
{
	free(p);
}

/*
 * test_deferred_decoding
 *		Page through 2500 backups keeping each reply undecoded: the token
 *		read off the bytes is the decoded reply's, the last page has none,
 *		and decoding later gives every backup once.
 */
void
test_deferred_decoding(void)
{
	RbStatus	st;
	RbChannel  *ch = open_plain(0, &st);
	ProtobufCAllocator alloc = {counting_alloc, plain_free, NULL};
	char		token[256] = "";
	size_t		total = 0;
	int			pages = 0;

	CHECK(ch != NULL, "open: %s", st.message);
	for (;;)
	{
		ListBackupsRequest req;
		RbCall	   *call;
		uint8_t    *data;
		size_t		len;
		const uint8_t *next;
		size_t		next_len;
		ListBackupsResponse *r;

		make_list(&req, "gen", 1000, token);
		call = rb_call_start(ch, RB_METHOD_BACKUP_LIST, &req.base, TOKEN_ALL,
							 NULL, CALL_TIMEOUT_MS, &st);
		CHECK(call != NULL, "start: %s", st.message);
		CHECK(rb_call_wait(call, NULL, NULL, &st), "wait: %s", st.message);
		allocated = 0;
		CHECK(rb_call_finish_bytes(call, &alloc, &data, &len, &st),
			  "page %d: %s %s", pages + 1, rb_code_name(st.code), st.message);
		CHECK(allocated > len, "the bytes were not taken from the allocator");
		CHECK(rb_reply_next_page_token(RB_METHOD_BACKUP_LIST, data, len,
									   &next, &next_len),
			  "no token read off page %d", pages + 1);
		r = (ListBackupsResponse *) rb_reply_decode(RB_METHOD_BACKUP_LIST,
													data, len, NULL, &st);
		CHECK(r != NULL, "decode: %s", st.message);
		CHECK(strlen(r->next_page_token) == next_len &&
			  memcmp(r->next_page_token, next, next_len) == 0,
			  "page %d: token read off the bytes differs from the decoded one",
			  pages + 1);
		total += r->n_backups;
		pages++;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		free_msg(r);

		/* a Get is no listing; bytes cut short are no message */
		CHECK(!rb_reply_next_page_token(RB_METHOD_BACKUP_GET, data, len,
										&next, &next_len),
			  "a token read off a Get");
		CHECK(len < 3 || !rb_reply_next_page_token(RB_METHOD_BACKUP_LIST,
												   data, len - 3, &next,
												   &next_len),
			  "a token read off a truncated reply");
		free(data);
		if (token[0] == '\0')
			break;
		CHECK(pages < 3, "more than 3 pages");
	}
	CHECK(pages == 3 && total == 2500, "%d pages, %zu backups", pages, total);

	/* garbage is a BAD_REPLY with a reason */
	{
		static const uint8_t garbage[] = {0x0a, 0x05, 0x01};

		memset(&st, 0, sizeof(st));
		CHECK(rb_reply_decode(RB_METHOD_BACKUP_LIST, garbage,
							  sizeof(garbage), NULL, &st) == NULL,
			  "garbage decoded");
		CHECK_CODE(st, RB_LOCAL_BAD_REPLY);
	}
	rb_channel_close(ch);
}

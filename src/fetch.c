/*-------------------------------------------------------------------------
 *
 * fetch.c
 *		  The calls of one scan: its key values turned into calls, and their
 *		  replies handed out one page at a time.
 *
 * Get: one BackupService.Get per key; the Gets of the following keys are
 * started ahead of the executor, in a window that starts at one (so LIMIT 1
 * costs one call) and doubles up to RB_MAX_GETS_IN_FLIGHT.  NOT_FOUND is
 * an empty page.
 *
 * Listings (BackupService.List, ClusterService.ListBackups): the pages of
 * each key in turn, following next_page_token; a token the listing has seen
 * before would list the same pages forever and is an error.
 *
 * Each page is decoded into a memory context of its own, reset when the
 * next page is fetched, so memory stays flat however many pages a scan
 * reads.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "redis_backup_fdw.h"

/* Most Gets of a scan in flight at once. */
#define RB_MAX_GETS_IN_FLIGHT 16

struct RbFetch
{
	/* what to call */
	RbCallTarget *target;
	RbMethod	method;
	int			page_size;

	/* key values of this (re)scan, in the database encoding */
	char	  **keys;
	int			nkeys;
	int			next_key;

	/* Gets started ahead: keys [next_key, gets_started) */
	RbRemoteCall gets[RB_MAX_GETS_IN_FLIGHT];	/* by key index modulo */
	Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest get_requests[RB_MAX_GETS_IN_FLIGHT];
	int			gets_started;
	int			get_window;

	/* the listing in progress */
	bool		listing;
	char		page_token[RB_MAX_PAGE_TOKEN_LENGTH * MAX_MULTIBYTE_CHAR_LEN + 1];
	HTAB	   *seen_tokens;	/* tokens of this listing, to catch loops */

	/* the current page */
	MemoryContext cxt;			/* the scan's */
	MemoryContext page_cxt;		/* reset for each page */
	ProtobufCAllocator allocator;	/* decodes into page_cxt */
	RbBackup   *single;			/* a Get's reply */
};

/* Entry of seen_tokens. */
typedef struct RbSeenToken
{
	char		token[RB_MAX_PAGE_TOKEN_LENGTH * MAX_MULTIBYTE_CHAR_LEN + 1];
} RbSeenToken;

static bool fetch_get(RbFetch *fetch, RbBackup ***backups, size_t *nbackups);
static bool fetch_list_page(RbFetch *fetch, RbBackup ***backups,
							size_t *nbackups);
static char *describe_call(RbFetch *fetch, const char *key,
						   const char *page_token);
static void remember_page_token(RbFetch *fetch, const char *token,
								const char *call_desc);

/*
 * rb_fetch_create
 *		The calls of a scan that calls method, in memory context cxt.  Makes
 *		no call yet.
 */
RbFetch *
rb_fetch_create(MemoryContext cxt, RbCallTarget *target, RbMethod method,
				int page_size)
{
	RbFetch    *fetch = MemoryContextAllocZero(cxt, sizeof(RbFetch));

	fetch->target = target;
	fetch->method = method;
	fetch->page_size = page_size;
	fetch->cxt = cxt;
	fetch->page_cxt = AllocSetContextCreate(cxt, "redis_backup_fdw page",
											ALLOCSET_DEFAULT_SIZES);
	rb_init_allocator(&fetch->allocator, fetch->page_cxt);
	return fetch;
}

/*
 * rb_fetch_restart
 *		Start over with these key values (distinct, in the database
 *		encoding; kept, not copied).  Calls still in flight are abandoned.
 */
void
rb_fetch_restart(RbFetch *fetch, char **keys, int nkeys)
{
	rb_fetch_abandon(fetch);
	MemoryContextReset(fetch->page_cxt);
	fetch->keys = keys;
	fetch->nkeys = nkeys;
	fetch->next_key = 0;
	fetch->gets_started = 0;
	fetch->get_window = 1;
	fetch->listing = false;
}

/*
 * rb_fetch_next_page
 *		Replace the current page by the next one (possibly empty); it lives
 *		until the next call.  False when there is nothing more to call.
 */
bool
rb_fetch_next_page(RbFetch *fetch, RbBackup ***backups, size_t *nbackups)
{
	MemoryContext oldcxt;
	bool		more;

	MemoryContextReset(fetch->page_cxt);
	*backups = NULL;
	*nbackups = 0;

	/* Whatever a fetch allocates is freed with its page. */
	oldcxt = MemoryContextSwitchTo(fetch->page_cxt);
	if (fetch->method == RB_METHOD_BACKUP_GET)
		more = fetch_get(fetch, backups, nbackups);
	else
		more = fetch_list_page(fetch, backups, nbackups);
	MemoryContextSwitchTo(oldcxt);
	fetch->target->stats->rows += *nbackups;
	return more;
}

/*
 * rb_fetch_abandon
 *		Give up the calls in flight.  Must not raise errors: runs from the
 *		scan's memory context callback.
 */
void
rb_fetch_abandon(RbFetch *fetch)
{
	int			i;

	for (i = 0; i < RB_MAX_GETS_IN_FLIGHT; i++)
	{
		if (fetch->gets[i].call != NULL)
			rb_call_abandon(fetch->gets[i].call);
		fetch->gets[i].call = NULL;
	}
	fetch->gets_started = fetch->next_key;
}

/*
 * fetch_get
 *		BackupService.Get of the next key, starting the following ones.
 */
static bool
fetch_get(RbFetch *fetch, RbBackup ***backups, size_t *nbackups)
{
	ProtobufCMessage *reply;
	RbRemoteCall *rc;
	int			limit;
	int			i;

	if (fetch->next_key >= fetch->nkeys)
		return false;

	limit = Min(fetch->nkeys, fetch->next_key + fetch->get_window);
	while (fetch->gets_started < limit)
	{
		Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest *req;

		i = fetch->gets_started % RB_MAX_GETS_IN_FLIGHT;
		req = &fetch->get_requests[i];
		rc = &fetch->gets[i];
		yandex__cloud__mdb__redis__v1__get_backup_request__init(req);
		req->backup_id = MemoryContextStrdup(fetch->cxt,
											 rb_key_to_utf8(fetch->keys[fetch->gets_started]));
		memset(rc, 0, sizeof(RbRemoteCall));
		rc->method = fetch->method;
		rc->request = &req->base;
		rc->desc = MemoryContextStrdup(fetch->cxt,
									   describe_call(fetch, fetch->keys[fetch->gets_started], NULL));
		rb_remote_begin(fetch->target, rc);
		fetch->gets_started++;
	}
	fetch->get_window = Min(fetch->get_window * 2, RB_MAX_GETS_IN_FLIGHT);

	rc = &fetch->gets[fetch->next_key++ % RB_MAX_GETS_IN_FLIGHT];
	if (rb_remote_finish(fetch->target, rc, &fetch->allocator, &reply) ==
		RB_OUTCOME_REPLY)
	{
		fetch->single = (RbBackup *) reply;
		*backups = &fetch->single;
		*nbackups = 1;
	}
	return true;
}

/*
 * fetch_list_page
 *		The next page of the listing in progress, or the first page of the
 *		next key's listing.
 */
static bool
fetch_list_page(RbFetch *fetch, RbBackup ***backups, size_t *nbackups)
{
	RbListRequest req;
	RbListPage	page;
	const char *key;
	char	   *desc;
	ProtobufCMessage *reply;

	if (!fetch->listing)
	{
		HASHCTL		ctl;

		if (fetch->next_key >= fetch->nkeys)
			return false;
		fetch->listing = true;
		fetch->page_token[0] = '\0';

		if (fetch->seen_tokens)
			hash_destroy(fetch->seen_tokens);
		ctl.keysize = sizeof(((RbSeenToken *) NULL)->token);
		ctl.entrysize = sizeof(RbSeenToken);
		ctl.hcxt = fetch->cxt;
		fetch->seen_tokens = hash_create("redis_backup_fdw page tokens", 64,
										 &ctl,
										 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	key = fetch->keys[fetch->next_key];

	desc = describe_call(fetch, key, fetch->page_token);
	reply = rb_remote_call(fetch->target, fetch->method,
						   rb_list_request(&req, fetch->method,
										   rb_key_to_utf8(key),
										   fetch->page_size,
										   fetch->page_token),
						   desc, &fetch->allocator);

	/* NOT_FOUND (an unknown cluster) lists nothing. */
	if (reply == NULL || !rb_list_reply_page(fetch->method, reply, &page))
	{
		page.items = NULL;
		page.n_items = 0;
		page.next_page_token = "";
	}
	*backups = (RbBackup **) page.items;
	*nbackups = page.n_items;

	if (page.next_page_token[0] == '\0')
	{
		fetch->listing = false;
		fetch->next_key++;
	}
	else
		remember_page_token(fetch, page.next_page_token, desc);
	return true;
}

/*
 * describe_call
 *		How errors name a call of this scan.
 */
static char *
describe_call(RbFetch *fetch, const char *key, const char *page_token)
{
	StringInfoData buf;

	initStringInfo(&buf);
	rb_describe_call(&buf, fetch->method,
					 psprintf("=%s", quote_literal_cstr(key)),
					 fetch->page_size, page_token);
	return buf.data;
}

/*
 * remember_page_token
 *		Keep the next page token, refusing one that is not valid UTF-8 of
 *		at most RB_MAX_PAGE_TOKEN_LENGTH characters, or that this listing
 *		has seen before: following it would loop forever.
 */
static void
remember_page_token(RbFetch *fetch, const char *token, const char *call_desc)
{
	int			len = strlen(token);
	int			nchars = 0;
	bool		found;
	const char *p;

	if (!pg_verify_mbstr(PG_UTF8, token, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the Managed Redis API sent an invalid next page token"),
				 errdetail("The token is not valid UTF-8."),
				 errcontext("remote call %s", call_desc)));
	for (p = token; *p; p++)
		nchars += ((*p & 0xC0) != 0x80);	/* not a continuation byte */
	if (nchars > RB_MAX_PAGE_TOKEN_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the Managed Redis API sent an invalid next page token"),
				 errdetail("The token is %d characters long; at most %d are valid.",
						   nchars, RB_MAX_PAGE_TOKEN_LENGTH),
				 errcontext("remote call %s", call_desc)));

	(void) hash_search(fetch->seen_tokens, token, HASH_ENTER, &found);
	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the Managed Redis API repeated a page token"),
				 errdetail("Following next_page_token would list the same pages forever."),
				 errcontext("remote call %s", call_desc)));
	strlcpy(fetch->page_token, token, sizeof(fetch->page_token));
}

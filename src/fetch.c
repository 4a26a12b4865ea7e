/*-------------------------------------------------------------------------
 *
 * fetch.c
 *		  The scan engine: a scan's key values turned into calls that run
 *		  concurrently, and their replies handed to the executor one page at
 *		  a time, as they arrive (SQL promises no order).
 *
 * Each key value is a stream: one Get (BackupService.Get,
 * ClusterService.Get), or the pages of one listing (BackupService.List,
 * ClusterService.ListBackups, ClusterService.List, with the scan's filter)
 * following next_page_token.  The engine knows items only as messages: what
 * a table shows (backups, clusters) is the method's and the converters'
 * business.  Up to max_concurrent_calls calls are in flight on the
 * channel.  When the query may stop early (a LIMIT, a cursor, EXISTS), the
 * number of streams under way starts at one and opens to the full
 * max_concurrent_calls once the first page has been handed out, so LIMIT 1
 * over an IN list costs one call; otherwise all start at once.
 * A stream asks for its next page when the executor has used up its first
 * page, and from then on as soon as a page is handed out (prefetch), so the
 * network and the building of rows overlap while a LIMIT or a cursor that
 * stops inside the first page costs only that page.
 *
 * Replies are decoded when they are collected, each into a memory context
 * of its own taken from a small pool and reset when the page has been used:
 * memory is bounded by the calls in flight, however many pages a scan
 * reads.  Errors, retries and cancellation are per call (remote.c); a page
 * token a listing has seen before would list the same pages forever and is
 * an error.  Calls still in flight when the scan ends (LIMIT, error,
 * cancel) are abandoned: cancelled, not waited for.
 *
 * Each call carries the credentials' current token (credentials.c); a token
 * the service refuses is renewed once for that call when the credentials
 * can get a fresh one (rb_credentials_begin, rb_credentials_renew).
 *
 * A cloud: the keys may instead be the folders of a cloud, listed page by
 * page with FolderService.List on the Resource Manager channel as streams
 * need them.  A table bound to a cloud also uses that list to drop folder
 * keys and items of folders outside the cloud.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "redis_backup_fdw.h"

/* A page is decoded into a context whose first block is kept across resets. */
#define RB_PAGE_CONTEXT_KEEP (512 * 1024)

/* Longest page token of FolderService.List, in characters. */
#define RB_MAX_FOLDER_PAGE_TOKEN_LENGTH 2000

/* A decoded reply waiting for, or in use by, the executor. */
typedef struct RbPage
{
	MemoryContext cxt;			/* holds the reply; from the pool */
	ProtobufCAllocator allocator;	/* decodes into cxt */
	struct RbStream *stream;	/* whose page (NULL once it has ended) */
	ProtobufCMessage **items;	/* Backups or Clusters */
	size_t		nitems;
	ProtobufCMessage *single;	/* a Get's reply */
	struct RbPage *next;		/* in the pool or the ready queue */
} RbPage;

/* The calls of one key value. */
typedef struct RbStream
{
	int			key;			/* index into keys */
	char	   *key_utf8;		/* as sent */
	RbRemoteCall rc;			/* the call in flight, if in_flight */
	RbListRequest list;			/* a listing's request */
	bool		in_flight;
	RbPage	   *page;			/* the page the call decodes into */
	int			pages;			/* pages received */
	bool		has_next;		/* a next page is still to be asked for */
	bool		prefetch;		/* ask for it as soon as a page goes out */
	char	   *page_token;		/* the next page's token */
	HTAB	   *seen_tokens;	/* of this listing, to catch loops */
	MemoryContext cxt;			/* the stream's own */
	struct RbStream *next;		/* in the list of streams under way */
} RbStream;

/* The folders of a cloud, listed as needed. */
typedef struct RbCloud
{
	RbCallTarget *target;		/* Resource Manager */
	char	   *cloud_id;
	char	   *cloud_utf8;
	bool		keys_are_folders;	/* the scan lists each folder */
	bool		skip_denied;	/* a denied call is a WARNING */
	bool		listed;			/* every page of folders has been read */
	char	   *page_token;		/* of the next page of folders */
	HTAB	   *seen_tokens;
	HTAB	   *folders;		/* folder ids (UTF-8) seen so far */
	char	  **folder_keys;	/* ... in order, in the database encoding */
	int			nfolders;
	int			folder_keys_size;
	int			page_size;
	MemoryContext cxt;
} RbCloud;

struct RbFetch
{
	/* what to call, and with which token */
	RbCallTarget *target;
	RbCredentials *creds;
	RbMethod	method;
	int			page_size;
	int			max_in_flight;
	const char *filter;			/* a listing's filter (UTF-8), or NULL */
	const char *filter_text;	/* ... as descriptions show it */

	/* key values of this (re)scan, in the database encoding */
	char	  **keys;
	int			nkeys;
	int			next_key;

	/* streams under way, and how many may be */
	RbStream   *streams;
	int			nstreams;
	int			window;
	bool		slow_start;		/* window starts at one */
	int			in_flight;

	/* pages: decoded and not yet handed out, the one in use, the pool */
	RbPage	   *ready_head;
	RbPage	   *ready_tail;
	RbPage	   *current;
	RbPage	   *pool;

	RbCloud    *cloud;			/* NULL: no cloud */

	/*
	 * The scan's context holds this and every RbStream: the scan's cleanup
	 * callback abandons calls through them while the context is deleted,
	 * after its child contexts are gone.
	 */
	MemoryContext cxt;
	MemoryContext calls_cxt;	/* what streams of this (re)scan allocate */
};

static bool start_streams(RbFetch *fetch);
static bool next_key(RbFetch *fetch, char **key);
static void start_stream(RbFetch *fetch, int key);
static void ask_next_page(RbFetch *fetch, RbStream *stream);
static RbStream *completed_stream(RbFetch *fetch);
static void collect(RbFetch *fetch, RbStream *stream);
static void warn_denied(RbFetch *fetch, RbStream *stream);
static void end_stream(RbFetch *fetch, RbStream *stream);
static void hand_out(RbFetch *fetch, RbPage *page);
static void release_current(RbFetch *fetch);
static RbPage *get_page(RbFetch *fetch);
static void put_page(RbFetch *fetch, RbPage *page);
static bool keys_are_folder_ids(RbMethod method);
static char *describe_call(RbMethod method, const char *key, int page_size,
						   const char *page_token, const char *filter_text);
static ProtobufCMessage *call_and_wait(RbFetch *fetch, RbCallTarget *target,
									   RbRemoteCall *rc,
									   ProtobufCAllocator *allocator);
static void check_page_token(HTAB **seen, MemoryContext cxt, const char *token,
							 int max_chars, const RbCallTarget *target,
							 const char *call_desc);
static bool cloud_list_page(RbFetch *fetch);
static void cloud_list_all(RbFetch *fetch);

/*
 * rb_fetch_create
 *		The engine of a scan that calls method through target with tokens of
 *		creds, in memory context cxt.  Makes no call yet.  slow_start: the
 *		query may stop after a few rows.
 */
RbFetch *
rb_fetch_create(MemoryContext cxt, RbCallTarget *target, RbCredentials *creds,
				RbMethod method, int page_size, int max_concurrent_calls,
				bool slow_start)
{
	RbFetch    *fetch = MemoryContextAllocZero(cxt, sizeof(RbFetch));

	fetch->target = target;
	fetch->creds = creds;
	fetch->method = method;
	fetch->page_size = page_size;
	fetch->max_in_flight = Max(max_concurrent_calls, 1);
	fetch->slow_start = slow_start;
	fetch->cxt = cxt;
	fetch->calls_cxt = AllocSetContextCreate(cxt, "redis_backup_fdw calls",
											 ALLOCSET_SMALL_SIZES);
	return fetch;
}

/*
 * rb_fetch_set_cloud
 *		Bind the scan to a cloud: its keys are the cloud's folders (listed
 *		through target with FolderService.List), or, when keys_are_folders
 *		is false, folder keys and backups outside the cloud are dropped.
 *		skip_denied: a call refused PERMISSION_DENIED (a folder of the
 *		cloud, or a backup or cluster the query names) is skipped with a
 *		WARNING instead of failing the scan.
 */
void
rb_fetch_set_cloud(RbFetch *fetch, RbCallTarget *target, const char *cloud_id,
				   bool keys_are_folders, bool skip_denied)
{
	RbCloud    *cloud = MemoryContextAllocZero(fetch->cxt, sizeof(RbCloud));

	cloud->target = target;
	cloud->cloud_id = MemoryContextStrdup(fetch->cxt, cloud_id);
	cloud->cloud_utf8 = MemoryContextStrdup(fetch->cxt, rb_key_to_utf8(cloud_id));
	cloud->keys_are_folders = keys_are_folders;
	cloud->skip_denied = skip_denied;
	cloud->page_size = fetch->page_size;
	cloud->cxt = AllocSetContextCreate(fetch->cxt, "redis_backup_fdw cloud",
									   ALLOCSET_DEFAULT_SIZES);
	fetch->cloud = cloud;
}

/*
 * rb_fetch_set_filter
 *		The filter of the listings of the next (re)scan (UTF-8, as sent;
 *		NULL: none), and how descriptions of the calls show it; both kept,
 *		not copied.
 */
void
rb_fetch_set_filter(RbFetch *fetch, const char *filter,
					const char *filter_text)
{
	fetch->filter = filter;
	fetch->filter_text = filter_text;
}

/*
 * rb_fetch_restart
 *		Start over with these key values (distinct, in the database
 *		encoding; kept, not copied).  The folders of a cloud, once listed,
 *		are kept for rescans.
 *
 * What the previous (re)scan left is dropped: calls still in flight (a
 * page asked for ahead, other keys) are abandoned, so that their outcome,
 * CANCELLED or not, never reaches this scan; the page in use and the pages
 * waiting go back to the pool, and no stream asks for another page on the
 * way (a rescan after an early stop, such as LIMIT or EXISTS, must not
 * start a call for a stream that is about to go).
 */
void
rb_fetch_restart(RbFetch *fetch, char **keys, int nkeys)
{
	RbPage	   *page;

	rb_fetch_abandon(fetch);
	if (fetch->current != NULL)
	{
		put_page(fetch, fetch->current);
		fetch->current = NULL;
	}
	while ((page = fetch->ready_head) != NULL)
	{
		fetch->ready_head = page->next;
		put_page(fetch, page);
	}
	fetch->ready_tail = NULL;
	while (fetch->streams != NULL)
	{
		RbStream   *stream = fetch->streams;

		fetch->streams = stream->next;
		/* the page an abandoned call would have decoded into */
		if (stream->page != NULL)
			put_page(fetch, stream->page);
		pfree(stream);
	}
	MemoryContextReset(fetch->calls_cxt);
	fetch->nstreams = 0;
	fetch->in_flight = 0;
	fetch->window = fetch->slow_start ? 1 : fetch->max_in_flight;
	fetch->keys = keys;
	fetch->nkeys = nkeys;
	fetch->next_key = 0;
}

/*
 * rb_fetch_next_page
 *		The next page (possibly empty) of any stream; it lives until the
 *		next call.  False when every stream has ended.
 */
bool
rb_fetch_next_page(RbFetch *fetch, ProtobufCMessage ***items, size_t *nitems)
{
	*items = NULL;
	*nitems = 0;
	release_current(fetch);

	for (;;)
	{
		RbPage	   *page = fetch->ready_head;

		if (page != NULL)
		{
			fetch->ready_head = page->next;
			if (fetch->ready_head == NULL)
				fetch->ready_tail = NULL;
			hand_out(fetch, page);
			*items = page->items;
			*nitems = page->nitems;
			fetch->target->stats->rows += page->nitems;
			return true;
		}

		if (!start_streams(fetch) && fetch->in_flight == 0)
			return false;
		if (fetch->in_flight == 0)
			continue;

		collect(fetch, completed_stream(fetch));
	}
}

/*
 * rb_fetch_folder_in_cloud
 *		Is folder (UTF-8, as the API sends it) one of the bound cloud's?
 *		True when the scan is bound to no cloud.
 */
bool
rb_fetch_folder_in_cloud(RbFetch *fetch, const char *folder_utf8)
{
	if (fetch->cloud == NULL)
		return true;
	cloud_list_all(fetch);
	return hash_search(fetch->cloud->folders, folder_utf8, HASH_FIND,
					   NULL) != NULL;
}

/*
 * rb_fetch_abandon
 *		Give up the calls in flight: cancelled, not waited for.  Must not
 *		raise errors: runs from the scan's memory context callback.
 */
void
rb_fetch_abandon(RbFetch *fetch)
{
	RbStream   *stream;

	for (stream = fetch->streams; stream != NULL; stream = stream->next)
	{
		if (stream->in_flight && stream->rc.call != NULL)
			rb_call_abandon(stream->rc.call);
		stream->rc.call = NULL;
		stream->in_flight = false;
	}
	fetch->in_flight = 0;
}

/*
 * start_streams
 *		Start streams for the next keys while the window allows.  False when
 *		no stream is under way and none can start.
 */
static bool
start_streams(RbFetch *fetch)
{
	while (fetch->nstreams < fetch->window &&
		   fetch->in_flight < fetch->max_in_flight)
	{
		char	   *key;

		if (!next_key(fetch, &key))
			break;
		start_stream(fetch, fetch->next_key - 1);
	}
	return fetch->nstreams > 0;
}

/*
 * next_key
 *		The next key value to start a stream for: the scan's own, or the next
 *		folder of the cloud.  Folder keys outside a bound cloud are skipped.
 */
static bool
next_key(RbFetch *fetch, char **key)
{
	RbCloud    *cloud = fetch->cloud;

	if (cloud != NULL && cloud->keys_are_folders)
	{
		while (fetch->next_key >= cloud->nfolders)
		{
			if (cloud->listed || !cloud_list_page(fetch))
				return false;
		}
		fetch->keys = cloud->folder_keys;
		fetch->nkeys = cloud->nfolders;
		*key = fetch->keys[fetch->next_key++];
		return true;
	}

	while (fetch->next_key < fetch->nkeys)
	{
		*key = fetch->keys[fetch->next_key++];
		if (cloud == NULL || !keys_are_folder_ids(fetch->method) ||
			rb_fetch_folder_in_cloud(fetch, rb_key_to_utf8(*key)))
			return true;
	}
	return false;
}

/*
 * start_stream
 *		Make the first call of key number key.
 */
static void
start_stream(RbFetch *fetch, int key)
{
	MemoryContext oldcxt;
	RbStream   *stream;

	stream = MemoryContextAllocZero(fetch->cxt, sizeof(RbStream));
	stream->key = key;
	stream->cxt = AllocSetContextCreate(fetch->calls_cxt,
										"redis_backup_fdw stream",
										ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(stream->cxt);
	stream->key_utf8 = rb_key_to_utf8(fetch->keys[key]);
	stream->page_token = "";
	MemoryContextSwitchTo(oldcxt);

	stream->next = fetch->streams;
	fetch->streams = stream;
	fetch->nstreams++;
	ask_next_page(fetch, stream);
}

/*
 * ask_next_page
 *		Call for the stream's next page (its first, for a new stream).
 */
static void
ask_next_page(RbFetch *fetch, RbStream *stream)
{
	RbRemoteCall *rc = &stream->rc;
	MemoryContext oldcxt = MemoryContextSwitchTo(stream->cxt);

	memset(rc, 0, sizeof(RbRemoteCall));
	rc->method = fetch->method;
	rc->owner = stream;
	rc->scan = fetch;
	if (!rb_method_is_listing(fetch->method))
	{
		rc->request = rb_key_request(fetch->method, stream->key_utf8);
		rc->desc = describe_call(fetch->method, fetch->keys[stream->key],
								 fetch->page_size, NULL, NULL);
	}
	else
	{
		rc->request = rb_list_request(&stream->list, fetch->method,
									  stream->key_utf8, fetch->page_size,
									  stream->page_token);
		if (fetch->filter != NULL &&
			!rb_list_request_set_filter(&stream->list, fetch->method,
										fetch->filter))
			elog(ERROR, "%s takes no filter", rb_method_name(fetch->method));
		rc->desc = describe_call(fetch->method, fetch->keys[stream->key],
								 fetch->page_size, stream->page_token,
								 fetch->filter_text);
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * A table of a cloud that skips denied folders skips them whatever the
	 * query names: a folder of the cloud, or a backup or cluster the API
	 * refuses to show.  A narrower query never fails where the whole
	 * cloud's scan succeeds.
	 */
	rc->denied_ok = (fetch->cloud != NULL && fetch->cloud->skip_denied);

	stream->has_next = false;
	stream->page = get_page(fetch);
	stream->page->stream = stream;
	rb_credentials_begin(fetch->creds, fetch->target, rc);
	stream->in_flight = true;
	fetch->in_flight++;
}

/*
 * completed_stream
 *		A stream whose call has completed: one another scan's wait found
 *		completed on the shared channel, else the next to complete.
 */
static RbStream *
completed_stream(RbFetch *fetch)
{
	RbStream   *stream;

	for (stream = fetch->streams; stream != NULL; stream = stream->next)
	{
		if (stream->in_flight && stream->rc.completed)
			return stream;
	}
	return (RbStream *) rb_remote_wait_any(fetch->target, fetch)->owner;
}

/*
 * collect
 *		The stream's call has completed: queue its page for the executor
 *		(unless the call was started again), and end a stream that has no
 *		more pages.
 */
static void
collect(RbFetch *fetch, RbStream *stream)
{
	RbPage	   *page = stream->page;
	ProtobufCMessage *reply;
	RbListPage	list;
	RbOutcome	outcome;

	outcome = rb_remote_collect(fetch->target, &stream->rc, &page->allocator,
								&reply);
	if (outcome == RB_OUTCOME_RETRIED ||
		rb_credentials_renew(fetch->creds, fetch->target, &stream->rc,
							 outcome))
		return;
	stream->in_flight = false;
	fetch->in_flight--;
	stream->page = NULL;
	stream->pages++;

	if (outcome == RB_OUTCOME_REPLY && !rb_method_is_listing(fetch->method))
	{
		page->single = reply;
		page->items = &page->single;
		page->nitems = 1;
	}
	else if (outcome == RB_OUTCOME_REPLY &&
			 rb_list_reply_page(fetch->method, reply, &list))
	{
		page->items = (ProtobufCMessage **) list.items;
		page->nitems = list.n_items;
		if (list.next_page_token[0] != '\0')
		{
			check_page_token(&stream->seen_tokens, stream->cxt,
							 list.next_page_token, RB_MAX_PAGE_TOKEN_LENGTH,
							 fetch->target, stream->rc.desc);
			stream->page_token = MemoryContextStrdup(stream->cxt,
													 list.next_page_token);
			stream->has_next = true;
		}
	}
	else if (outcome == RB_OUTCOME_DENIED)
		warn_denied(fetch, stream);

	/* NOT_FOUND and a skipped folder are empty pages. */
	if (fetch->ready_tail != NULL)
		fetch->ready_tail->next = page;
	else
		fetch->ready_head = page;
	fetch->ready_tail = page;
	page->next = NULL;

	if (!stream->has_next)
	{
		page->stream = NULL;
		end_stream(fetch, stream);
	}
}

/*
 * warn_denied
 *		The stream's call was refused PERMISSION_DENIED in a table that
 *		skips denied folders: say what is skipped.  A folder key is one of
 *		the cloud's (next_key drops the others).
 */
static void
warn_denied(RbFetch *fetch, RbStream *stream)
{
	const char *key = fetch->keys[stream->key];

	switch (fetch->method)
	{
		case RB_METHOD_BACKUP_GET:
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("skipping backup \"%s\": permission denied", key),
					 errdetail("The table option skip_denied_folders is on.")));
			break;
		case RB_METHOD_CLUSTER_LIST_BACKUPS:
		case RB_METHOD_CLUSTER_GET:
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("skipping cluster \"%s\": permission denied", key),
					 errdetail("The table option skip_denied_folders is on.")));
			break;
		default:
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("skipping folder \"%s\" of cloud \"%s\": permission denied",
							key, fetch->cloud->cloud_id),
					 errdetail("The table option skip_denied_folders is on.")));
			break;
	}
}

/*
 * end_stream
 *		A stream that has no more pages to ask for goes.
 */
static void
end_stream(RbFetch *fetch, RbStream *stream)
{
	RbStream  **link;

	for (link = &fetch->streams; *link != NULL; link = &(*link)->next)
	{
		if (*link == stream)
		{
			*link = stream->next;
			break;
		}
	}
	fetch->nstreams--;
	MemoryContextDelete(stream->cxt);
	pfree(stream);
}

/*
 * hand_out
 *		The executor takes page: open the window; a stream read past its
 *		first page asks for its next page now.
 */
static void
hand_out(RbFetch *fetch, RbPage *page)
{
	RbStream   *stream = page->stream;

	fetch->current = page;
	fetch->window = fetch->max_in_flight;
	if (stream != NULL && stream->prefetch && stream->has_next &&
		!stream->in_flight)
		ask_next_page(fetch, stream);
}

/*
 * release_current
 *		The executor has used up the current page: it goes back to the pool,
 *		and a stream whose first page it was asks for its second.
 */
static void
release_current(RbFetch *fetch)
{
	RbPage	   *page = fetch->current;
	RbStream   *stream;

	if (page == NULL)
		return;
	fetch->current = NULL;
	stream = page->stream;
	put_page(fetch, page);
	if (stream != NULL && stream->has_next && !stream->in_flight)
	{
		stream->prefetch = true;
		ask_next_page(fetch, stream);
	}
}

/*
 * get_page, put_page
 *		Pages and their memory contexts are reused: a reset keeps the first
 *		RB_PAGE_CONTEXT_KEEP bytes, so a page of ordinary size allocates
 *		nothing from the system.
 */
static RbPage *
get_page(RbFetch *fetch)
{
	RbPage	   *page = fetch->pool;

	if (page != NULL)
		fetch->pool = page->next;
	else
	{
		page = MemoryContextAllocZero(fetch->cxt, sizeof(RbPage));
		page->cxt = AllocSetContextCreate(fetch->cxt, "redis_backup_fdw page",
										  RB_PAGE_CONTEXT_KEEP,
										  RB_PAGE_CONTEXT_KEEP,
										  ALLOCSET_DEFAULT_MAXSIZE);
		rb_init_allocator(&page->allocator, page->cxt);
	}
	page->stream = NULL;
	page->items = NULL;
	page->nitems = 0;
	page->next = NULL;
	return page;
}

static void
put_page(RbFetch *fetch, RbPage *page)
{
	MemoryContextReset(page->cxt);
	page->stream = NULL;
	page->next = fetch->pool;
	fetch->pool = page;
}

/*
 * keys_are_folder_ids
 *		Does method list a folder's items, so that a table bound to a cloud
 *		drops folder keys outside it?
 */
static bool
keys_are_folder_ids(RbMethod method)
{
	const char *key_field = rb_method_key_field(method);

	return key_field != NULL && strcmp(key_field, "folder_id") == 0;
}

/*
 * describe_call
 *		How errors name a call of one key value (rb_describe_call), with
 *		its filter, if any.
 */
static char *
describe_call(RbMethod method, const char *key, int page_size,
			  const char *page_token, const char *filter_text)
{
	StringInfoData buf;

	initStringInfo(&buf);
	rb_describe_call(&buf, method, psprintf("=%s", quote_literal_cstr(key)),
					 page_size, page_token);
	if (filter_text != NULL)
		appendStringInfo(&buf, " filter %s", filter_text);
	return buf.data;
}

/*
 * call_and_wait
 *		Make rc's call through target and wait for it, renewing a refused
 *		token once: its reply, or NULL for NOT_FOUND.
 */
static ProtobufCMessage *
call_and_wait(RbFetch *fetch, RbCallTarget *target, RbRemoteCall *rc,
			  ProtobufCAllocator *allocator)
{
	ProtobufCMessage *reply;

	rb_credentials_begin(fetch->creds, target, rc);
	for (;;)
	{
		RbOutcome	outcome = rb_remote_finish(target, rc, allocator, &reply);

		if (!rb_credentials_renew(fetch->creds, target, rc, outcome))
			return reply;
	}
}

/*
 * check_page_token
 *		Refuse a next page token that is not valid UTF-8 of at most
 *		max_chars characters, or that this listing has seen before:
 *		following it would loop forever.  target is the service that sent
 *		it.
 */
static void
check_page_token(HTAB **seen, MemoryContext cxt, const char *token,
				 int max_chars, const RbCallTarget *target,
				 const char *call_desc)
{
	const char *service = rb_service_name(target->service);

	int			len = strlen(token);
	int			nchars = 0;
	const char *p;
	bool		found;

	if (!pg_verify_mbstr(PG_UTF8, token, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s sent an invalid next page token", service),
				 errdetail("The token is not valid UTF-8."),
				 errcontext("remote call %s", call_desc)));
	for (p = token; *p; p++)
		nchars += ((*p & 0xC0) != 0x80);	/* not a continuation byte */
	if (nchars > max_chars)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s sent an invalid next page token", service),
				 errdetail("The token is %d characters long; at most %d are valid.",
						   nchars, max_chars),
				 errcontext("remote call %s", call_desc)));

	if (*seen == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = max_chars * MAX_MULTIBYTE_CHAR_LEN + 1;
		ctl.entrysize = ctl.keysize;
		ctl.hcxt = cxt;
		*seen = hash_create("redis_backup_fdw page tokens", 16, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	(void) hash_search(*seen, token, HASH_ENTER, &found);
	if (found)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("%s repeated a page token", service),
				 errdetail("Following next_page_token would list the same pages forever."),
				 errcontext("remote call %s", call_desc)));
}

/*
 * cloud_list_page
 *		Read the next page of the cloud's folders.  False when there was no
 *		page left to read.
 */
static bool
cloud_list_page(RbFetch *fetch)
{
	RbCloud    *cloud = fetch->cloud;
	MemoryContext oldcxt;
	MemoryContext reply_cxt;
	ProtobufCAllocator allocator;
	RbListRequest req;
	RbListPage	list;
	RbRemoteCall rc;
	ProtobufCMessage *reply;
	char	   *desc;
	size_t		i;

	if (cloud->listed)
		return false;

	oldcxt = MemoryContextSwitchTo(cloud->cxt);
	if (cloud->folders == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = RB_MAX_ID_LENGTH * MAX_MULTIBYTE_CHAR_LEN + 1;
		ctl.entrysize = ctl.keysize;
		ctl.hcxt = cloud->cxt;
		cloud->folders = hash_create("redis_backup_fdw cloud folders", 64,
									 &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		cloud->page_token = "";
	}

	reply_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "redis_backup_fdw folders",
									  ALLOCSET_DEFAULT_SIZES);
	rb_init_allocator(&allocator, reply_cxt);
	desc = describe_call(RB_METHOD_FOLDER_LIST, cloud->cloud_id,
						 cloud->page_size, cloud->page_token, NULL);
	memset(&rc, 0, sizeof(rc));
	rc.method = RB_METHOD_FOLDER_LIST;
	rc.request = rb_list_request(&req, RB_METHOD_FOLDER_LIST,
								 cloud->cloud_utf8, cloud->page_size,
								 cloud->page_token);
	rc.desc = desc;
	reply = call_and_wait(fetch, cloud->target, &rc, &allocator);

	/* NOT_FOUND: no such cloud, no folders. */
	if (reply == NULL || !rb_list_reply_page(RB_METHOD_FOLDER_LIST, reply, &list))
	{
		list.n_items = 0;
		list.next_page_token = "";
	}
	for (i = 0; i < list.n_items; i++)
	{
		Yandex__Cloud__Resourcemanager__V1__Folder *folder = list.items[i];
		bool		found;
		int			len = strlen(folder->id);

		if (len == 0 || len > RB_MAX_ID_LENGTH * MAX_MULTIBYTE_CHAR_LEN ||
			!pg_verify_mbstr(PG_UTF8, folder->id, len, true))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
					 errmsg("%s sent an invalid folder id",
							rb_service_name(cloud->target->service)),
					 errcontext("remote call %s", desc)));
		(void) hash_search(cloud->folders, folder->id, HASH_ENTER, &found);
		if (found)
			continue;
		if (cloud->nfolders >= cloud->folder_keys_size)
		{
			cloud->folder_keys_size = Max(64, cloud->folder_keys_size * 2);
			cloud->folder_keys = cloud->folder_keys
				? repalloc(cloud->folder_keys,
						   sizeof(char *) * cloud->folder_keys_size)
				: palloc(sizeof(char *) * cloud->folder_keys_size);
		}
		cloud->folder_keys[cloud->nfolders++] =
			pg_any_to_server(pstrdup(folder->id), len, PG_UTF8);
	}

	if (list.next_page_token[0] == '\0')
		cloud->listed = true;
	else
	{
		check_page_token(&cloud->seen_tokens, cloud->cxt,
						 list.next_page_token, RB_MAX_FOLDER_PAGE_TOKEN_LENGTH,
						 cloud->target, desc);
		cloud->page_token = pstrdup(list.next_page_token);
	}
	MemoryContextDelete(reply_cxt);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/*
 * cloud_list_all
 *		Read every remaining page of the cloud's folders.
 */
static void
cloud_list_all(RbFetch *fetch)
{
	while (cloud_list_page(fetch))
		;
}

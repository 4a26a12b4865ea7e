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
 * business.
 *
 * Scheduling.  At most "window" calls are in flight (max_concurrent_calls,
 * narrowed under throttling, below).  A stream has at most one call in
 * flight, so more streams are kept under way than there are calls in
 * flight (twice max_concurrent_calls): a slot freed by one stream's page is
 * taken at once by another stream.  Whenever a slot is free, it goes to the
 * cloud's folder listing (it makes keys), else to a new key, else to the
 * stream that has received the fewest pages: streams of unknown length are
 * then all under way early and end together, instead of the last one
 * paging on alone while the other slots idle.  Completed calls are
 * collected whenever the executor asks for a page, waiting only when no
 * page is ready, so a slot never waits for the executor to use up a page.
 *
 * Early stop.  When the query may stop early (a LIMIT, a cursor, EXISTS),
 * the window starts at one stream and one call, and opens once the
 * executor has used up the first page, so LIMIT 1 over an IN list costs one
 * call.
 * Such a scan's stream asks for its next page when the executor has used
 * up its first page, and from then on as soon as a page is handed out
 * (prefetch), so a LIMIT that stops inside the first page costs only that
 * page.  Other scans ask for a stream's next page as soon as its page
 * arrives.
 *
 * Memory.  A reply is kept undecoded, in a memory context of its own taken
 * from a small pool and reset when the page has been used, and decoded into
 * it when the executor takes the page: its items are then still in cache
 * for the rows, and a listing's next call started as soon as its next page
 * token had been read off the bytes (rb_reply_next_page_token).  Calls in
 * flight and pages waiting for the executor are at most twice the window
 * together, so memory is bounded by max_concurrent_calls, however many
 * pages or keys a scan reads.  A page token a listing has seen before would
 * list the same pages forever and is an error.  Calls still in flight when
 * the scan ends (LIMIT, error, cancel) are abandoned: cancelled, not waited
 * for.
 *
 * Throttling.  A call refused RESOURCE_EXHAUSTED narrows the window by
 * half (once per round of calls: a refusal of a call started before the
 * last narrowing does not narrow it again), and later successes widen it
 * again (additive increase, multiplicative decrease; narrow_window).  The
 * refused call is tried again after a backoff that, as long as it was
 * started with more than one call allowed in flight, does not count against
 * max_attempts: a scan fails only when the service refuses even one call at
 * a time max_attempts times in a row.
 * UNAVAILABLE is retried after a backoff too, counting attempts.  Backoffs
 * are timers of the engine, not sleeps: other calls go on meanwhile.
 *
 * Each call carries the credentials' current token (credentials.c); a token
 * the service refuses is renewed once for that call when the credentials
 * can get a fresh one (rb_credentials_begin, rb_credentials_renew).
 *
 * A cloud: the keys may instead be the folders of a cloud, listed page by
 * page with FolderService.List on the Resource Manager channel: a stream
 * of its own, whose pages add keys as they arrive.  A table bound to a
 * cloud also uses that list to drop folder keys and items of folders
 * outside the cloud.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

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
	uint8_t    *data;			/* the reply, still to be decoded, or NULL */
	size_t		len;
	RbMethod	method;			/* ... the method that sent it */
	char	   *desc;			/* ... how errors name that call */
	char	   *request_id;		/* ... and the reply's request id */
	char	   *key_utf8;		/* the key value of that call, as sent */
	struct RbPage *next;		/* in the pool or the ready queue */
} RbPage;

/* The calls of one key value, or of the cloud's folders. */
typedef struct RbStream
{
	int			key;			/* index into keys; -1: the cloud's folders */
	char	   *key_utf8;		/* as sent */
	RbCallTarget *target;		/* the service it calls */
	RbMethod	method;
	RbRemoteCall rc;			/* the call in flight, if in_flight */
	RbListRequest list;			/* a listing's request */
	bool		in_flight;
	bool		wants_call;		/* its next call may start */
	TimestampTz retry_at;		/* ... and it is rc again, not before then
								 * (0: a new call, at once) */
	uint64		epoch;			/* the window's epoch when rc started */
	int			window_at_start;	/* the window when rc started */
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

	/* streams under way (the cloud's apart), oldest first */
	RbStream   *streams;
	RbStream   *streams_tail;
	int			nstreams;
	RbStream   *cloud_stream;	/* listing the cloud's folders, or NULL */

	/* calls in flight, and how many may be */
	int			in_flight;
	int			window;
	uint64		epoch;			/* bumped each time the window narrows */
	int			ceiling;		/* below the window last refused */
	int			probe_successes;	/* successes at or above the ceiling */
	bool		slow_start;		/* the query may stop early */
	bool		opened;			/* the window may be over one */

	/* pages: decoded and not yet handed out, the one in use, the pool */
	RbPage	   *ready_head;
	RbPage	   *ready_tail;
	int			nready;
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

static void fill_window(RbFetch *fetch);
static RbStream *next_caller(RbFetch *fetch);
static bool is_due(const RbStream *stream, TimestampTz *now);
static void abandon_call(RbStream *stream);
static bool next_key(RbFetch *fetch, char **key);
static RbStream *new_stream(RbFetch *fetch, int key, RbCallTarget *target,
							RbMethod method);
static void start_call(RbFetch *fetch, RbStream *stream);
static void prepare_request(RbFetch *fetch, RbStream *stream);
static void collect_completed(RbFetch *fetch);
static RbStream *completed_stream(RbFetch *fetch, int timeout_ms);
static bool wait_for_work(RbFetch *fetch);
static TimestampTz next_retry(RbFetch *fetch);
static void collect(RbFetch *fetch, RbStream *stream);
static void retry_later(RbFetch *fetch, RbStream *stream);
static void narrow_window(RbFetch *fetch, RbStream *stream);
static void widen_window(RbFetch *fetch);
static void open_window(RbFetch *fetch);
static void queue_page(RbFetch *fetch, RbStream *stream, RbOutcome outcome);
static void decode_page(RbFetch *fetch, RbPage *page);
static void collect_folders(RbFetch *fetch, RbStream *stream,
							RbOutcome outcome, ProtobufCMessage *reply);
static void warn_denied(RbFetch *fetch, RbStream *stream);
static void free_stream(RbFetch *fetch, RbStream *stream);
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
static void cloud_init(RbCloud *cloud);
static void add_folders(RbCloud *cloud, ProtobufCMessage *reply,
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
	fetch->nready = 0;
	while (fetch->streams != NULL)
		free_stream(fetch, fetch->streams);
	if (fetch->cloud_stream != NULL)
		free_stream(fetch, fetch->cloud_stream);
	MemoryContextReset(fetch->calls_cxt);
	fetch->in_flight = 0;
	fetch->opened = !fetch->slow_start;
	fetch->window = fetch->opened ? fetch->max_in_flight : 1;
	fetch->keys = keys;
	fetch->nkeys = nkeys;
	fetch->next_key = 0;
}

/*
 * rb_fetch_next_page
 *		The next page (possibly empty) of any stream; it lives until the
 *		next call.  *key_utf8 (when key_utf8 is not NULL) is the key value of
 *		the call that read it, as sent.  False when every stream has ended.
 */
bool
rb_fetch_next_page(RbFetch *fetch, ProtobufCMessage ***items, size_t *nitems,
				   const char **key_utf8)
{
	*items = NULL;
	*nitems = 0;
	release_current(fetch);

	for (;;)
	{
		RbPage	   *page;

		collect_completed(fetch);
		fill_window(fetch);
		page = fetch->ready_head;
		if (page != NULL)
		{
			fetch->ready_head = page->next;
			if (fetch->ready_head == NULL)
				fetch->ready_tail = NULL;
			fetch->nready--;
			hand_out(fetch, page);
			if (fetch->opened)
				fill_window(fetch);
			*items = page->items;
			*nitems = page->nitems;
			if (key_utf8 != NULL)
				*key_utf8 = page->key_utf8;
			fetch->target->stats->rows += page->nitems;
			return true;
		}
		if (!wait_for_work(fetch))
			return false;
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

	abandon_call(fetch->cloud_stream);
	for (stream = fetch->streams; stream != NULL; stream = stream->next)
		abandon_call(stream);
	fetch->in_flight = 0;
}

/*
 * abandon_call
 *		Give up stream's call, if it has one in flight (stream may be NULL).
 *		Must not raise errors.
 */
static void
abandon_call(RbStream *stream)
{
	if (stream == NULL)
		return;
	if (stream->in_flight && stream->rc.call != NULL)
		rb_call_abandon(stream->rc.call);
	stream->rc.call = NULL;
	stream->in_flight = false;
	stream->wants_call = false;
}

/*
 * fill_window
 *		Start calls while the window has room and some stream or key wants
 *		one.  Calls in flight and pages waiting for the executor together
 *		stay within twice the window; before the window opens, no call
 *		starts while a page waits.
 */
static void
fill_window(RbFetch *fetch)
{
	int			held = fetch->opened ? 2 * fetch->window : 1;

	while (fetch->in_flight < fetch->window &&
		   fetch->in_flight + fetch->nready < held)
	{
		RbStream   *stream = next_caller(fetch);

		if (stream == NULL)
			break;
		start_call(fetch, stream);
	}
}

/*
 * next_caller
 *		The stream whose call takes the next free slot, or NULL: the cloud's
 *		folder listing first, then a new key while fewer streams than twice
 *		the window's limit are under way, else the stream that has
 *		received the fewest pages (the oldest of those).  A stream waiting
 *		out a backoff is not due before its time.
 */
static RbStream *
next_caller(RbFetch *fetch)
{
	TimestampTz now = 0;
	RbStream   *best = NULL;
	RbStream   *stream;
	char	   *key;

	if (is_due(fetch->cloud_stream, &now))
		return fetch->cloud_stream;

	for (stream = fetch->streams; stream != NULL; stream = stream->next)
	{
		if (is_due(stream, &now) &&
			(best == NULL || stream->pages < best->pages))
			best = stream;
	}

	if ((best == NULL || best->pages > 0) &&
		fetch->nstreams < (fetch->opened ? 2 * fetch->max_in_flight : 1) &&
		next_key(fetch, &key))
		return new_stream(fetch, fetch->next_key - 1, fetch->target,
						  fetch->method);

	/* the keys ran out: next_key asked for the cloud's next folders */
	if (best == NULL && is_due(fetch->cloud_stream, &now))
		return fetch->cloud_stream;
	return best;
}

/*
 * is_due
 *		May stream (or NULL) start its call now: it wants one, has none in
 *		flight, and any backoff is over?  *now is read when first needed.
 */
static bool
is_due(const RbStream *stream, TimestampTz *now)
{
	if (stream == NULL || !stream->wants_call || stream->in_flight)
		return false;
	if (stream->retry_at == 0)
		return true;
	if (*now == 0)
		*now = GetCurrentTimestamp();
	return stream->retry_at <= *now;
}

/*
 * next_key
 *		The next key value to start a stream for: the scan's own, or the next
 *		folder of the cloud listed so far (when there is none, the cloud's
 *		listing is asked for its next page).  Folder keys outside a bound
 *		cloud are skipped.
 */
static bool
next_key(RbFetch *fetch, char **key)
{
	RbCloud    *cloud = fetch->cloud;

	if (cloud != NULL && cloud->keys_are_folders)
	{
		fetch->keys = cloud->folder_keys;
		fetch->nkeys = cloud->nfolders;
		if (fetch->next_key < cloud->nfolders)
		{
			*key = fetch->keys[fetch->next_key++];
			return true;
		}
		if (!cloud->listed)
		{
			if (fetch->cloud_stream == NULL)
				fetch->cloud_stream = new_stream(fetch, -1, cloud->target,
												 RB_METHOD_FOLDER_LIST);
			else if (!fetch->cloud_stream->in_flight)
				fetch->cloud_stream->wants_call = true;
		}
		return false;
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
 * new_stream
 *		A stream for key number key (-1: the cloud's folders), calling method
 *		through target, wanting its first call.  Key streams are counted and
 *		listed; the cloud's is the caller's to keep.
 */
static RbStream *
new_stream(RbFetch *fetch, int key, RbCallTarget *target, RbMethod method)
{
	MemoryContext oldcxt;
	RbStream   *stream;

	stream = MemoryContextAllocZero(fetch->cxt, sizeof(RbStream));
	stream->key = key;
	stream->target = target;
	stream->method = method;
	stream->wants_call = true;
	stream->cxt = AllocSetContextCreate(fetch->calls_cxt,
										"redis_backup_fdw stream",
										ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(stream->cxt);
	if (key >= 0)
	{
		stream->key_utf8 = rb_key_to_utf8(fetch->keys[key]);
		stream->page_token = "";
	}
	else
	{
		cloud_init(fetch->cloud);
		stream->key_utf8 = fetch->cloud->cloud_utf8;
		stream->page_token = pstrdup(fetch->cloud->page_token);
	}
	MemoryContextSwitchTo(oldcxt);

	if (key >= 0)
	{
		if (fetch->streams_tail != NULL)
			fetch->streams_tail->next = stream;
		else
			fetch->streams = stream;
		fetch->streams_tail = stream;
		fetch->nstreams++;
	}
	return stream;
}

/*
 * start_call
 *		Start the stream's call: its next page (its first, for a new
 *		stream), or the call a backoff held back.
 */
static void
start_call(RbFetch *fetch, RbStream *stream)
{
	if (stream->retry_at == 0)
		prepare_request(fetch, stream);
	stream->retry_at = 0;
	stream->wants_call = false;
	stream->has_next = false;
	stream->page = get_page(fetch);
	stream->page->stream = stream;
	stream->epoch = fetch->epoch;
	stream->window_at_start = fetch->window;
	rb_credentials_begin(fetch->creds, stream->target, &stream->rc);
	stream->in_flight = true;
	fetch->in_flight++;
}

/*
 * prepare_request
 *		The request of the stream's next page, in rc.
 */
static void
prepare_request(RbFetch *fetch, RbStream *stream)
{
	RbRemoteCall *rc = &stream->rc;
	const char *key = stream->key >= 0 ? fetch->keys[stream->key]
		: fetch->cloud->cloud_id;
	bool		filtered = stream->key >= 0 && fetch->filter != NULL;
	MemoryContext oldcxt = MemoryContextSwitchTo(stream->cxt);

	memset(rc, 0, sizeof(RbRemoteCall));
	rc->method = stream->method;
	rc->owner = stream;
	rc->scan = fetch;
	rc->defer_retry = true;
	rc->keep_bytes = (stream->key >= 0);
	if (!rb_method_is_listing(stream->method))
	{
		rc->request = rb_key_request(stream->method, stream->key_utf8);
		rc->desc = describe_call(stream->method, key, fetch->page_size,
								 NULL, NULL);
	}
	else
	{
		rc->request = rb_list_request(&stream->list, stream->method,
									  stream->key_utf8, fetch->page_size,
									  stream->page_token);
		if (filtered &&
			!rb_list_request_set_filter(&stream->list, stream->method,
										fetch->filter))
			elog(ERROR, "%s takes no filter", rb_method_name(stream->method));
		rc->desc = describe_call(stream->method, key, fetch->page_size,
								 stream->page_token,
								 filtered ? fetch->filter_text : NULL);
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * A table of a cloud that skips denied folders skips them whatever the
	 * query names: a folder of the cloud, or a backup or cluster the API
	 * refuses to show.  A narrower query never fails where the whole
	 * cloud's scan succeeds.  The cloud's own listing is never skipped.
	 */
	rc->denied_ok = (stream->key >= 0 && fetch->cloud != NULL &&
					 fetch->cloud->skip_denied);
}

/*
 * collect_completed
 *		Collect every call that has completed, without waiting, each
 *		followed by the calls its free slot allows: decoding the next reply
 *		waits, the slot does not.
 */
static void
collect_completed(RbFetch *fetch)
{
	RbStream   *stream;

	while (fetch->in_flight > 0 &&
		   (stream = completed_stream(fetch, 0)) != NULL)
	{
		collect(fetch, stream);
		fill_window(fetch);
	}
}

/*
 * wait_for_work
 *		No page is ready: wait until a call completes (and collect it) or a
 *		backoff ends.  False when nothing is in flight or held back: the
 *		scan has ended.
 */
static bool
wait_for_work(RbFetch *fetch)
{
	TimestampTz retry_at = next_retry(fetch);
	int			timeout_ms = retry_at != 0 ? rb_ms_until(retry_at) : -1;
	RbStream   *stream;

	if (fetch->in_flight == 0)
	{
		if (retry_at == 0)
			return false;
		rb_sleep_until(retry_at);
		return true;
	}
	stream = completed_stream(fetch, timeout_ms);
	if (stream != NULL)
	{
		collect(fetch, stream);
		fill_window(fetch);
	}
	return true;
}

/*
 * next_retry
 *		When the earliest backoff of a stream not in flight ends, or 0.
 */
static TimestampTz
next_retry(RbFetch *fetch)
{
	TimestampTz at = fetch->cloud_stream != NULL
		? fetch->cloud_stream->retry_at : 0;
	RbStream   *stream;

	for (stream = fetch->streams; stream != NULL; stream = stream->next)
	{
		if (stream->retry_at != 0 && (at == 0 || stream->retry_at < at))
			at = stream->retry_at;
	}
	return at;
}

/*
 * completed_stream
 *		A stream whose call has completed, waiting at most timeout_ms for
 *		one (negative: as long as it takes), or NULL: first one that another
 *		scan's wait found completed on a shared channel.  The cloud's
 *		listing is on the Resource Manager channel, beside calls of the
 *		scan's own service (rb_remote_wait_either).
 */
static RbStream *
completed_stream(RbFetch *fetch, int timeout_ms)
{
	RbStream   *cloud = fetch->cloud_stream;
	bool		cloud_in_flight = (cloud != NULL && cloud->in_flight);
	RbStream   *stream;
	RbRemoteCall *rc;

	if (cloud_in_flight && cloud->rc.completed)
		return cloud;
	for (stream = fetch->streams; stream != NULL; stream = stream->next)
	{
		if (stream->in_flight && stream->rc.completed)
			return stream;
	}
	rc = rb_remote_wait_either(fetch->target,
							   fetch->in_flight > (cloud_in_flight ? 1 : 0),
							   cloud_in_flight ? cloud->target : NULL,
							   cloud_in_flight, fetch, timeout_ms);
	return rc != NULL ? (RbStream *) rc->owner : NULL;
}

/*
 * collect
 *		The stream's call has completed: hand its outcome on (a page for the
 *		executor, folders for the cloud), hold back a call to be tried again,
 *		and end a stream that has no more pages.
 */
static void
collect(RbFetch *fetch, RbStream *stream)
{
	ProtobufCMessage *reply;
	RbOutcome	outcome;

	outcome = rb_remote_collect(stream->target, &stream->rc,
								&stream->page->allocator, &reply);
	if (rb_credentials_renew(fetch->creds, stream->target, &stream->rc,
							 outcome))
		return;
	stream->in_flight = false;
	fetch->in_flight--;
	if (outcome == RB_OUTCOME_RETRY)
	{
		retry_later(fetch, stream);
		return;
	}
	widen_window(fetch);
	stream->pages++;
	if (stream == fetch->cloud_stream)
		collect_folders(fetch, stream, outcome, reply);
	else
		queue_page(fetch, stream, outcome);
}

/*
 * retry_later
 *		The stream's call was refused UNAVAILABLE or RESOURCE_EXHAUSTED:
 *		hold it back for a backoff, narrowing the window for the latter, or
 *		raise the error when its attempts are used up.  A throttled call
 *		started with more than one call allowed in flight counts no
 *		attempt.
 */
static void
retry_later(RbFetch *fetch, RbStream *stream)
{
	RbRemoteCall *rc = &stream->rc;
	int			backoff_step = rc->attempt;

	put_page(fetch, stream->page);
	stream->page = NULL;
	if (rc->status.code == RB_RESOURCE_EXHAUSTED)
	{
		fetch->target->stats->throttled++;
		narrow_window(fetch, stream);
		if (stream->window_at_start > 1)
		{
			/*
			 * The narrower window is the answer to the service's load; the
			 * call waits the first backoff only, however often it was
			 * refused, so that no stream is left far behind the others.
			 */
			rc->attempt--;
			backoff_step = 1;
		}
	}
	if (rc->attempt >= stream->target->max_attempts)
		rb_remote_give_up(stream->target, rc);

	elog(DEBUG1, "redis_backup_fdw: %s: %s, retrying (attempt %d of %d, window %d)",
		 rb_method_name(rc->method), rb_code_name(rc->status.code),
		 rc->attempt + 1, stream->target->max_attempts, fetch->window);
	stream->wants_call = true;
	stream->retry_at = GetCurrentTimestamp() +
		(TimestampTz) rb_backoff_ms(backoff_step) * 1000;
}

/*
 * narrow_window, widen_window, open_window
 *		The window halves on a refusal of a call started since it last
 *		narrowed.  It grows by one per completed call back up to just below
 *		the window that was refused (the ceiling), and from there by one
 *		per window's worth of completed calls: it probes for room the
 *		service may have made without being refused every round.  It
 *		opens to max_concurrent_calls once the executor has used up the
 *		first page of a scan that may stop early (unless throttling
 *		narrowed it meanwhile).
 */
static void
narrow_window(RbFetch *fetch, RbStream *stream)
{
	RbCallStats *stats = fetch->target->stats;

	if (stream->epoch != fetch->epoch)
		return;
	fetch->epoch++;
	fetch->ceiling = Max(stream->window_at_start - 1, 1);
	fetch->window = Max(fetch->window / 2, 1);
	fetch->probe_successes = 0;
	if (stats->min_window == 0 || fetch->window < stats->min_window)
		stats->min_window = fetch->window;
}

static void
widen_window(RbFetch *fetch)
{
	if (!fetch->opened || fetch->window >= fetch->max_in_flight)
		return;
	if (fetch->epoch == 0 || fetch->window < fetch->ceiling)
		fetch->window++;
	else if (++fetch->probe_successes >= fetch->window)
	{
		fetch->window++;
		fetch->probe_successes = 0;
	}
}

static void
open_window(RbFetch *fetch)
{
	if (fetch->opened)
		return;
	fetch->opened = true;
	if (fetch->epoch == 0)
		fetch->window = fetch->max_in_flight;
}

/*
 * queue_page
 *		Queue the page of a key stream's completed call for the executor,
 *		still undecoded: only a listing's next page token is read now, so
 *		that its next call can start at once; the page is decoded when it is
 *		handed out, its items then still in cache for the executor.  Also
 *		say when the stream's next page may be asked for.
 */
static void
queue_page(RbFetch *fetch, RbStream *stream, RbOutcome outcome)
{
	RbPage	   *page = stream->page;
	const uint8_t *token;
	size_t		token_len;

	stream->page = NULL;
	if (outcome == RB_OUTCOME_REPLY)
	{
		page->data = stream->rc.reply_data;
		page->len = stream->rc.reply_len;
		page->method = stream->method;
		page->desc = MemoryContextStrdup(page->cxt, stream->rc.desc);
		page->request_id = MemoryContextStrdup(page->cxt,
											   stream->rc.status.request_id);
		page->key_utf8 = MemoryContextStrdup(page->cxt, stream->key_utf8);
		if (rb_method_is_listing(stream->method) &&
			(!rb_reply_next_page_token(stream->method, page->data, page->len,
									   &token, &token_len) ||
			 memchr(token, '\0', token_len) != NULL))
		{
			/* not well-formed: the decoding says what is wrong */
			(void) rb_remote_decode(fetch->target, stream->method, page->desc,
									page->request_id, page->data, page->len,
									&page->allocator);
			elog(ERROR, "redis_backup_fdw: %s reply decoded without its next page token",
				 rb_method_name(stream->method));
		}
		if (rb_method_is_listing(stream->method) && token_len > 0)
		{
			char	   *next = MemoryContextAlloc(stream->cxt, token_len + 1);

			memcpy(next, token, token_len);
			next[token_len] = '\0';
			check_page_token(&stream->seen_tokens, stream->cxt, next,
							 RB_MAX_PAGE_TOKEN_LENGTH, stream->target,
							 stream->rc.desc);
			stream->page_token = next;
			stream->has_next = true;
			stream->wants_call = !fetch->slow_start;
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
	fetch->nready++;

	if (!stream->has_next)
		free_stream(fetch, stream);
}

/*
 * decode_page
 *		Decode a page's reply into its items.
 */
static void
decode_page(RbFetch *fetch, RbPage *page)
{
	ProtobufCMessage *reply;
	RbListPage	list;

	reply = rb_remote_decode(fetch->target, page->method, page->desc,
							 page->request_id, page->data, page->len,
							 &page->allocator);
	page->data = NULL;
	if (!rb_method_is_listing(page->method))
	{
		page->single = reply;
		page->items = &page->single;
		page->nitems = 1;
	}
	else if (rb_list_reply_page(page->method, reply, &list))
	{
		page->items = (ProtobufCMessage **) list.items;
		page->nitems = list.n_items;
	}
}

/*
 * collect_folders
 *		The cloud's listing has a page of folders: they become keys.  The
 *		next page is asked for at once once the window is open, else when
 *		the keys run out (next_key).
 */
static void
collect_folders(RbFetch *fetch, RbStream *stream, RbOutcome outcome,
				ProtobufCMessage *reply)
{
	RbCloud    *cloud = fetch->cloud;
	MemoryContext oldcxt = MemoryContextSwitchTo(cloud->cxt);

	/* NOT_FOUND: no such cloud, no folders. */
	if (outcome == RB_OUTCOME_REPLY)
		add_folders(cloud, reply, stream->rc.desc);
	else
		cloud->listed = true;
	MemoryContextSwitchTo(oldcxt);
	put_page(fetch, stream->page);
	stream->page = NULL;

	if (cloud->listed)
	{
		free_stream(fetch, stream);
		return;
	}
	stream->page_token = MemoryContextStrdup(stream->cxt, cloud->page_token);
	stream->wants_call = fetch->opened;
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
 * free_stream
 *		A stream that has no more pages to ask for (or whose scan starts
 *		over) goes, the cloud's too; the pages it leaves waiting or in use
 *		forget it.
 */
static void
free_stream(RbFetch *fetch, RbStream *stream)
{
	RbPage	   *page;

	if (stream == fetch->cloud_stream)
		fetch->cloud_stream = NULL;
	else
	{
		RbStream  **link;
		RbStream   *prev = NULL;

		for (link = &fetch->streams; *link != NULL; link = &(*link)->next)
		{
			if (*link == stream)
			{
				*link = stream->next;
				break;
			}
			prev = *link;
		}
		if (fetch->streams_tail == stream)
			fetch->streams_tail = prev;
		fetch->nstreams--;
	}
	for (page = fetch->ready_head; page != NULL; page = page->next)
	{
		if (page->stream == stream)
			page->stream = NULL;
	}
	if (fetch->current != NULL && fetch->current->stream == stream)
		fetch->current->stream = NULL;
	/* the page an abandoned call would have decoded into */
	if (stream->page != NULL)
		put_page(fetch, stream->page);
	MemoryContextDelete(stream->cxt);
	pfree(stream);
}

/*
 * hand_out
 *		The executor takes page; a stream read past its first page wants its
 *		next page now.
 */
static void
hand_out(RbFetch *fetch, RbPage *page)
{
	RbStream   *stream = page->stream;

	fetch->current = page;
	if (page->data != NULL)
		decode_page(fetch, page);
	if (stream != NULL && stream->prefetch && stream->has_next &&
		!stream->in_flight)
		stream->wants_call = true;
}

/*
 * release_current
 *		The executor has used up the current page: it goes back to the pool,
 *		the window opens, and a stream whose first page it was wants its
 *		second.
 */
static void
release_current(RbFetch *fetch)
{
	RbPage	   *page = fetch->current;
	RbStream   *stream;

	if (page == NULL)
		return;
	fetch->current = NULL;
	open_window(fetch);
	stream = page->stream;
	put_page(fetch, page);
	if (stream != NULL && stream->has_next && !stream->in_flight)
	{
		stream->prefetch = true;
		stream->wants_call = true;
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
	page->data = NULL;
	page->key_utf8 = NULL;
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
 * cloud_init
 *		Ready the cloud's folder set for its first page, once.
 */
static void
cloud_init(RbCloud *cloud)
{
	HASHCTL		ctl;

	if (cloud->folders != NULL)
		return;
	ctl.keysize = RB_MAX_ID_LENGTH * MAX_MULTIBYTE_CHAR_LEN + 1;
	ctl.entrysize = ctl.keysize;
	ctl.hcxt = cloud->cxt;
	cloud->folders = hash_create("redis_backup_fdw cloud folders", 64, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	cloud->page_token = "";
}

/*
 * add_folders
 *		A page of the cloud's folders (a FolderService.List reply) read: its
 *		new folders become keys, and its next page token the cloud's.
 *		Allocates in the current memory context, which must be the cloud's.
 */
static void
add_folders(RbCloud *cloud, ProtobufCMessage *reply, const char *call_desc)
{
	RbListPage	list;
	size_t		i;

	if (!rb_list_reply_page(RB_METHOD_FOLDER_LIST, reply, &list))
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
					 errcontext("remote call %s", call_desc)));
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
						 cloud->target, call_desc);
		cloud->page_token = pstrdup(list.next_page_token);
	}
}

/*
 * cloud_list_page
 *		Read the next page of the cloud's folders, waiting for it.  False
 *		when there was no page left to read.
 */
static bool
cloud_list_page(RbFetch *fetch)
{
	RbCloud    *cloud = fetch->cloud;
	MemoryContext oldcxt;
	MemoryContext reply_cxt;
	ProtobufCAllocator allocator;
	RbListRequest req;
	RbRemoteCall rc;
	ProtobufCMessage *reply;
	char	   *desc;

	if (cloud->listed)
		return false;

	oldcxt = MemoryContextSwitchTo(cloud->cxt);
	cloud_init(cloud);
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
	if (reply == NULL)
		cloud->listed = true;
	else
		add_folders(cloud, reply, desc);
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

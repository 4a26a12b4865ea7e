/*-------------------------------------------------------------------------
 *
 * metadata.c
 *		  The metadata service of a Compute VM: the token of the VM's
 *		  service account, over plain HTTP with libcurl.
 *
 *	GET http://ADDRESS/computeMetadata/v1/instance/service-accounts/default/token
 *	Metadata-Flavor: Google
 *
 * answers {"access_token": ..., "expires_in": SECONDS, "token_type":
 * "Bearer"}; 404 means no service account is attached to the VM.
 *
 * libcurl runs in the backend's own thread: the multi interface is driven
 * here, waiting at most 100 ms at a time so that a cancel or a terminate
 * request ends the request at once.  A host name in metadata_address is
 * resolved here (getaddrinfo) and handed to libcurl, so that libcurl never
 * starts its resolver thread, which would inherit the backend's signal
 * handlers.  No proxy is used; the answer is never logged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "miscadmin.h"

#include "redis_backup_fdw.h"

#define RB_METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

/* Largest answer read. */
#define RB_METADATA_MAX_BODY (64 * 1024)

/* What libcurl's write callback fills: no PostgreSQL call may happen there. */
typedef struct RbBody
{
	char		data[RB_METADATA_MAX_BODY + 1];
	size_t		len;
	bool		too_large;
} RbBody;

static bool curl_initialized = false;

static size_t write_body(char *ptr, size_t size, size_t nmemb, void *arg);
static char *resolve_entry(const char *address);

/*
 * ensure_curl_initialized
 *		libcurl's global set-up, once per backend.
 */
static void
ensure_curl_initialized(void)
{
	if (curl_initialized)
		return;
	if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not initialize libcurl")));
	curl_initialized = true;
}

/*
 * set_request
 *		Make easy the metadata service's token request to address, its
 *		answer into buf: plain HTTP, no proxy, no redirect, no signals, the
 *		deadline timeout_ms.  The lists it needs are returned to be freed.
 */
static void
set_request(CURL *easy, const char *address, int timeout_ms, RbBody *buf,
			struct curl_slist **headers, struct curl_slist **resolve)
{
	char	   *entry = resolve_entry(address);

	*headers = curl_slist_append(NULL, "Metadata-Flavor: Google");
	*resolve = entry != NULL ? curl_slist_append(NULL, entry) : NULL;
	curl_easy_setopt(easy, CURLOPT_URL,
					 psprintf("http://%s%s", address, RB_METADATA_TOKEN_PATH));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
	if (*resolve != NULL)
		curl_easy_setopt(easy, CURLOPT_RESOLVE, *resolve);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, buf);
}

/*
 * drive_transfer
 *		Run multi's transfer to its end, looking for interrupts every
 *		100 ms; *result is the transfer's outcome.  False when a cancel or
 *		termination request stopped it.
 */
static bool
drive_transfer(CURLM *multi, CURLcode *result)
{
	for (;;)
	{
		CURLMsg    *msg;
		int			left;
		int			running;

		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		{
			if (msg->msg == CURLMSG_DONE)
				*result = msg->data.result;
		}
		if (running == 0)
			return true;
		if (QueryCancelPending || ProcDiePending)
			return false;
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
}

/*
 * rb_metadata_get_token
 *		Ask the metadata service at address for the VM's token.  Returns the
 *		HTTP status (0 when the service could not be reached: *why says
 *		why) and the answer's body in *body.
 */
long
rb_metadata_get_token(const char *address, int timeout_ms, char **body,
					  const char **why)
{
	CURL	   *easy;
	CURLM	   *multi;
	struct curl_slist *headers = NULL;
	struct curl_slist *resolve = NULL;
	RbBody	   *buf = palloc(sizeof(RbBody));
	long		status = 0;
	CURLcode	result = CURLE_OK;
	bool		completed;

	ensure_curl_initialized();
	buf->len = 0;
	buf->too_large = false;
	easy = curl_easy_init();
	multi = curl_multi_init();
	if (easy == NULL || multi == NULL)
	{
		curl_easy_cleanup(easy);
		curl_multi_cleanup(multi);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	set_request(easy, address, timeout_ms, buf, &headers, &resolve);
	curl_multi_add_handle(multi, easy);
	completed = drive_transfer(multi, &result);
	if (completed && result == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(multi, easy);
	curl_easy_cleanup(easy);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_slist_free_all(resolve);

	if (!completed)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to user request")));
	}
	if (result != CURLE_OK)
	{
		*why = result == CURLE_OPERATION_TIMEDOUT
			? psprintf("no answer within %d ms", timeout_ms)
			: pstrdup(curl_easy_strerror(result));
		return 0;
	}
	if (buf->too_large)
	{
		*why = psprintf("the answer is larger than %d bytes", RB_METADATA_MAX_BODY);
		return 0;
	}
	buf->data[buf->len] = '\0';
	*body = buf->data;
	return status;
}

/*
 * write_body
 *		libcurl's write callback: keep the answer, up to its limit.
 */
static size_t
write_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	RbBody	   *buf = arg;
	size_t		n = size * nmemb;

	if (buf->len + n > RB_METADATA_MAX_BODY)
	{
		buf->too_large = true;
		return 0;				/* makes libcurl stop with an error */
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	return n;
}

/*
 * resolve_entry
 *		For a host name in address (host:port), a CURLOPT_RESOLVE entry
 *		"host:port:ip" resolved here; NULL for a numeric address.  A name
 *		that does not resolve is an error here, not in libcurl's resolver.
 */
static char *
resolve_entry(const char *address)
{
	const char *colon = strrchr(address, ':');
	char	   *host;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	char		ip[NI_MAXHOST];
	int			rc;

	if (colon == NULL)
		return NULL;
	if (address[0] == '[')
		return NULL;			/* [IPv6 literal]:port */
	host = pnstrdup(address, colon - address);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) == 0)
	{
		freeaddrinfo(res);
		return NULL;			/* numeric: libcurl resolves nothing */
	}
	hints.ai_flags = 0;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not resolve the metadata service address \"%s\"",
						address),
				 errdetail_internal("%s", gai_strerror(rc))));
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof(ip), NULL, 0,
					 NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0)
		return NULL;
	return psprintf("%s:%s:%s%s%s", host, colon + 1,
					strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "");
}

/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		  Where the IAM token of each call comes from.  A user mapping has
 *		  exactly one credential:
 *
 *	iam_token					a ready-made token, sent as is
 *	service_account_key			a service account's authorized key (JSON):
 *								a signed JWT is exchanged for a token with
 *								IamTokenService.Create (iam_endpoint)
 *	service_account_key_file	the same, read from a server file whenever a
 *								token is needed (a rotated file is picked up)
 *	instance_service_account	the token of the VM's service account, from
 *								the metadata service (metadata_address)
 *
 * Tokens obtained are cached per backend and user mapping, in memory only.
 * One is reused while it was obtained less than an hour ago and has more
 * than RB_TOKEN_MARGIN_S (5 minutes) left; a token that lives less than
 * four times that margin is refreshed once three quarters of its life
 * have passed.  Each call takes the current token, so a scan runs across
 * a refresh.  A call refused UNAUTHENTICATED with a token from the cache
 * drops it and is retried once with a fresh one (remote.c asks
 * rb_credentials_rejected).  ALTER/DROP of the server or user mapping
 * drops the cached token (connection.c's invalidation, which retires the
 * channels, calls rb_credentials_forget).  Tokens, keys and JWTs never
 * reach a message or the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "commands/defrem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Refresh rules. */
#define RB_TOKEN_MARGIN_S 300	/* refresh with this much left */
#define RB_TOKEN_MAX_AGE_S 3600 /* refresh after this long */

/* Largest key file read. */
#define RB_MAX_KEY_FILE_SIZE (64 * 1024)

typedef enum RbCredentialSource
{
	RB_CRED_NONE,
	RB_CRED_IAM_TOKEN,
	RB_CRED_KEY,
	RB_CRED_KEY_FILE,
	RB_CRED_INSTANCE
} RbCredentialSource;

/* The option of each source. */
static const char *const source_options[] = {
	[RB_CRED_NONE] = NULL,
	[RB_CRED_IAM_TOKEN] = "iam_token",
	[RB_CRED_KEY] = "service_account_key",
	[RB_CRED_KEY_FILE] = "service_account_key_file",
	[RB_CRED_INSTANCE] = "instance_service_account",
};

struct RbCredentials
{
	RbCredentialSource source;
	char	   *value;			/* the option's value */
	char	   *description;	/* for EXPLAIN and messages: no secret */
	UserMapping user;			/* umid, serverid: the cache key, channels */
	RbServerOptions opts;		/* iam_endpoint, metadata_address, ... */
	RbCallStats *stats;			/* counts token exchanges */
	char	   *handed_out;		/* the last token handed out (a copy) */
	MemoryContext cxt;
};

/* A cached token of a user mapping. */
typedef struct RbTokenEntry
{
	Oid			umid;			/* hash key */
	char	   *token;			/* in TopMemoryContext; NULL: none */
	TimestampTz obtained_at;
	TimestampTz refresh_at;		/* get a new one from then on */
} RbTokenEntry;

static HTAB *TokenCache = NULL;

static RbCredentialSource credential_option(UserMapping *user, char **value);
static RbTokenEntry *cache_entry(RbCredentials *creds);
static void forget_token(RbTokenEntry *entry);
static void obtain_token(RbCredentials *creds, RbTokenEntry *entry);
static void exchange_key(RbCredentials *creds, RbTokenEntry *entry);
static void ask_metadata(RbCredentials *creds, RbTokenEntry *entry);
static void store_token(RbTokenEntry *entry, const char *token,
						TimestampTz expires_at);
static char *describe(RbCredentialSource source, const char *value);

/*
 * rb_get_credentials
 *		The credentials of a user mapping, allocated in cxt; stats counts the
 *		token exchanges.  An error when the user mapping has none.
 */
RbCredentials *
rb_get_credentials(UserMapping *user, const RbServerOptions *opts,
				   MemoryContext cxt, RbCallStats *stats)
{
	RbCredentials *creds = MemoryContextAllocZero(cxt, sizeof(RbCredentials));
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

	creds->source = credential_option(user, &creds->value);
	if (creds->source == RB_CRED_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no credential in the user mapping for server \"%s\"",
						GetForeignServer(user->serverid)->servername),
				 errhint("Add one of iam_token, service_account_key, service_account_key_file or instance_service_account with ALTER USER MAPPING ... OPTIONS (ADD ...).")));
	creds->value = pstrdup(creds->value);
	creds->description = describe(creds->source, creds->value);
	creds->user.umid = user->umid;
	creds->user.userid = user->userid;
	creds->user.serverid = user->serverid;
	creds->opts = *opts;
	creds->stats = stats;
	creds->cxt = cxt;
	MemoryContextSwitchTo(oldcxt);
	return creds;
}

/*
 * rb_credentials_token
 *		The token for the next call: the user mapping's own, or the cached
 *		one, obtained anew when it is due.  The pointer stays valid until
 *		the next call of this function.
 */
const char *
rb_credentials_token(RbCredentials *creds)
{
	RbTokenEntry *entry;

	if (creds == NULL)
		return NULL;
	if (creds->source == RB_CRED_IAM_TOKEN)
		return creds->value;

	entry = cache_entry(creds);
	if (entry->token == NULL || GetCurrentTimestamp() >= entry->refresh_at)
		obtain_token(creds, entry);
	if (creds->handed_out != NULL)
	{
		explicit_bzero(creds->handed_out, strlen(creds->handed_out));
		pfree(creds->handed_out);
	}
	creds->handed_out = MemoryContextStrdup(creds->cxt, entry->token);
	return creds->handed_out;
}

/*
 * rb_credentials_token_if_any
 *		The token calls carry now, or NULL; never obtains one.  For
 *		redacting server messages.
 */
const char *
rb_credentials_token_if_any(RbCredentials *creds)
{
	if (creds == NULL)
		return NULL;
	if (creds->source == RB_CRED_IAM_TOKEN)
		return creds->value;
	return creds->handed_out;
}

/*
 * rb_credentials_rejected
 *		The service refused token as UNAUTHENTICATED: true when a fresh token
 *		can be tried (the cached one is dropped if it is this one); never
 *		for a ready-made iam_token.
 */
bool
rb_credentials_rejected(RbCredentials *creds, const char *token)
{
	RbTokenEntry *entry;

	if (creds == NULL || creds->source == RB_CRED_IAM_TOKEN)
		return false;
	entry = cache_entry(creds);
	if (entry->token != NULL && token != NULL &&
		strcmp(entry->token, token) == 0)
		forget_token(entry);
	return true;
}

/*
 * rb_credentials_hint
 *		What to check when the service refuses the token.
 */
char *
rb_credentials_hint(RbCredentials *creds, const char *server_name)
{
	if (creds == NULL || creds->source == RB_CRED_IAM_TOKEN)
		return psprintf("Check the iam_token option of the user mapping for server \"%s\"; IAM tokens expire after at most 12 hours.",
						server_name);
	return psprintf("The token came from the %s of the user mapping for server \"%s\" and was refused even when fresh: check that the service account exists and may use the service.",
					creds->description, server_name);
}

/*
 * rb_describe_credentials_of
 *		The credential source of a user's user mapping for a server (its own
 *		or PUBLIC's), for EXPLAIN: never a secret; "none" without one.
 */
char *
rb_describe_credentials_of(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	char	   *value;
	RbCredentialSource source;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return pstrdup("none (no user mapping)");
	ReleaseSysCache(tp);
	source = credential_option(GetUserMapping(userid, serverid), &value);
	return describe(source, value);
}

/*
 * rb_check_credential_options
 *		The validator's rule for a user mapping: at most one credential
 *		option (instance_service_account 'false' is none).  Runs before the
 *		values are checked: a value that is no Boolean counts as set.
 */
void
rb_check_credential_options(List *options)
{
	StringInfoData names;
	int			n = 0;
	ListCell   *lc;

	initStringInfo(&names);
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		int			i;

		for (i = 1; i < lengthof(source_options); i++)
		{
			bool		on;

			if (strcmp(def->defname, source_options[i]) != 0)
				continue;
			if (i == RB_CRED_INSTANCE &&
				parse_bool(defGetString(def), &on) && !on)
				continue;
			appendStringInfo(&names, "%s%s", n++ > 0 ? ", " : "",
							 def->defname);
		}
	}
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a user mapping takes exactly one credential"),
				 errdetail("It has %d: %s.", n, names.data),
				 errhint("Drop all but one of iam_token, service_account_key, service_account_key_file and instance_service_account.")));
}

/*
 * rb_check_service_account_key
 *		The validator's check of a key given inline (file false) or the file
 *		holding one: 22023 when it is unusable, never quoting it.
 */
void
rb_check_service_account_key(const char *option, const char *value,
							 bool file)
{
	RbServiceAccountKey key;
	const char *why;
	char	   *json;

	json = file
		? rb_read_server_file(value, "service account key file",
							  RB_MAX_KEY_FILE_SIZE)
		: unconstify(char *, value);

	if (!rb_parse_service_account_key(json, &key, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" is not a usable service account key",
						option),
				 errdetail_internal("%s", why),
				 errhint("Give the authorized key JSON as \"yc iam key create --output key.json\" writes it.")));
	explicit_bzero(key.private_key_pem, strlen(key.private_key_pem));
}

/*
 * credential_option
 *		The user mapping's credential source and its option's value.
 */
static RbCredentialSource
credential_option(UserMapping *user, char **value)
{
	ListCell   *lc;

	*value = NULL;
	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		int			i;

		for (i = 1; i < lengthof(source_options); i++)
		{
			if (strcmp(def->defname, source_options[i]) != 0)
				continue;
			if (i == RB_CRED_INSTANCE && !rb_bool_option(def))
				continue;
			*value = defGetString(def);
			return (RbCredentialSource) i;
		}
	}
	return RB_CRED_NONE;
}

/*
 * describe
 *		"iam_token", "service account key ajeXXXX", ...: no secret.
 */
static char *
describe(RbCredentialSource source, const char *value)
{
	char	   *id;

	switch (source)
	{
		case RB_CRED_NONE:
			return pstrdup("none");
		case RB_CRED_IAM_TOKEN:
			return pstrdup("iam_token");
		case RB_CRED_KEY:
			id = rb_service_account_key_id(value);
			if (id != NULL)
				return psprintf("service account key %s", id);
			return pstrdup("service account key");
		case RB_CRED_KEY_FILE:
			return psprintf("service account key file %s", value);
		case RB_CRED_INSTANCE:
			return pstrdup("instance service account");
	}
	return pstrdup("unknown");
}

/*
 * cache_entry
 *		The token cache entry of the credentials' user mapping.
 */
static RbTokenEntry *
cache_entry(RbCredentials *creds)
{
	RbTokenEntry *entry;
	bool		found;

	if (TokenCache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RbTokenEntry);
		TokenCache = hash_create("redis_backup_fdw tokens", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(TokenCache, &creds->user.umid, HASH_ENTER, &found);
	if (!found)
		entry->token = NULL;
	return entry;
}

/*
 * forget_token
 *		Drop a cached token, wiping it.
 */
static void
forget_token(RbTokenEntry *entry)
{
	if (entry->token == NULL)
		return;
	explicit_bzero(entry->token, strlen(entry->token));
	pfree(entry->token);
	entry->token = NULL;
}

/*
 * rb_credentials_forget
 *		Drop the cached token of user mapping umid (InvalidOid: of all).
 *		connection.c calls this when ALTER or DROP of a server or user
 *		mapping retires its channels: one invalidation for both.  Must not
 *		raise errors: runs from a syscache callback.
 */
void
rb_credentials_forget(Oid umid)
{
	HASH_SEQ_STATUS scan;
	RbTokenEntry *entry;

	if (TokenCache == NULL)
		return;
	hash_seq_init(&scan, TokenCache);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (OidIsValid(umid) && entry->umid != umid)
			continue;
		forget_token(entry);
		(void) hash_search(TokenCache, &entry->umid, HASH_REMOVE, NULL);
	}
}

/*
 * obtain_token
 *		A new token for the credentials, into the cache.
 */
static void
obtain_token(RbCredentials *creds, RbTokenEntry *entry)
{
	forget_token(entry);
	if (creds->source == RB_CRED_INSTANCE)
		ask_metadata(creds, entry);
	else
		exchange_key(creds, entry);
	creds->stats->token_exchanges++;
}

/*
 * exchange_key
 *		IamTokenService.Create with a JWT signed by the service account's
 *		key.  IAM refusing it is 28000 naming the key.
 */
static void
exchange_key(RbCredentials *creds, RbTokenEntry *entry)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	RbServiceAccountKey key;
	Yandex__Cloud__Iam__V1__CreateIamTokenRequest req =
	YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__INIT;
	Yandex__Cloud__Iam__V1__CreateIamTokenResponse *resp;
	ProtobufCAllocator allocator;
	ProtobufCMessage *reply;
	RbConnection *conn;
	RbCallTarget target;
	RbCallStats stats;
	RbRemoteCall rc;
	RbOutcome	outcome;
	const char *why;
	char	   *json;
	TimestampTz expires_at;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "redis_backup_fdw exchange",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	json = creds->source == RB_CRED_KEY_FILE
		? rb_read_server_file(creds->value, "service account key file",
							  RB_MAX_KEY_FILE_SIZE) : creds->value;
	if (!rb_parse_service_account_key(json, &key, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the %s is not a usable service account key",
						creds->description),
				 errdetail_internal("%s", why)));
	req.identity_case = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_JWT;
	req.jwt = rb_make_jwt(&key, (int64) time(NULL), &why);
	explicit_bzero(key.private_key_pem, strlen(key.private_key_pem));
	if (req.jwt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not sign a JWT with service account key %s",
						key.id),
				 errdetail_internal("%s", why)));

	/* IAM has a channel of its own; the call carries no token. */
	memset(&stats, 0, sizeof(stats));
	memset(&target, 0, sizeof(target));
	target.service = RB_SERVICE_IAM;
	target.server_name = GetForeignServer(creds->user.serverid)->servername;
	target.endpoint = rb_service_endpoint(&creds->opts, RB_SERVICE_IAM);
	target.timeout_ms = creds->opts.timeout_ms;
	target.max_attempts = creds->opts.max_attempts;
	target.stats = &stats;
	rb_init_allocator(&allocator, cxt);
	memset(&rc, 0, sizeof(rc));
	rc.method = RB_METHOD_IAM_TOKEN_CREATE;
	rc.request = &req.base;
	rc.desc = psprintf("IamTokenService.Create with service account key %s",
					   key.id);
	rc.refusal_ok = true;

	conn = rb_acquire_connection(&creds->user, &creds->opts, RB_SERVICE_IAM);
	PG_TRY();
	{
		target.conn = conn;
		target.channel = rb_connection_channel(conn);
		rb_remote_begin(&target, &rc);
		outcome = rb_remote_finish(&target, &rc, &allocator, &reply);
	}
	PG_FINALLY();
	{
		rb_release_connection(conn);
		explicit_bzero(req.jwt, strlen(req.jwt));
	}
	PG_END_TRY();

	if (outcome != RB_OUTCOME_REPLY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("IAM refused service account key %s of service account %s",
						key.id, key.service_account_id),
				 errdetail_internal("%s: %s", rb_code_name(rc.refusal.code),
									rc.refusal.message[0]
									? rc.refusal.message : "(no message)"),
				 errhint("Check that the key exists and belongs to the service account; a JWT is also refused when the database server's clock is wrong.")));

	resp = (Yandex__Cloud__Iam__V1__CreateIamTokenResponse *) reply;
	if (!rb_token_is_valid(resp->iam_token))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("IAM answered service account key %s with an unusable token",
						key.id)));
	expires_at = 0;
	if (resp->expires_at != NULL)
		expires_at = time_t_to_timestamptz((pg_time_t) resp->expires_at->seconds);
	store_token(entry, resp->iam_token, expires_at);
	explicit_bzero(resp->iam_token, strlen(resp->iam_token));

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * ask_metadata
 *		The VM's token from the metadata service.  A refusal is 28000; a
 *		service that cannot be reached is retried as calls are, then 08006.
 */
static void
ask_metadata(RbCredentials *creds, RbTokenEntry *entry)
{
	static const char *const names[] = {"access_token", "expires_in"};
	char	   *values[2];
	char	   *body = NULL;
	const char *why = NULL;
	long		status;
	int			attempt;
	char	   *end;
	double		expires_in;

	for (attempt = 1;; attempt++)
	{
		status = rb_metadata_get_token(creds->opts.metadata_address,
									   creds->opts.timeout_ms, &body, &why);
		if (status != 0 || attempt >= creds->opts.max_attempts)
			break;
		rb_backoff_sleep(attempt);
	}
	if (status == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg_plural("could not reach the metadata service at \"%s\" (%d attempt)",
							   "could not reach the metadata service at \"%s\" (%d attempts)",
							   creds->opts.max_attempts,
							   creds->opts.metadata_address,
							   creds->opts.max_attempts),
				 errdetail_internal("%s", why),
				 errhint("The instance service account works on a Compute VM; the server option metadata_address says where its metadata service answers.")));
	if (status == 404)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no service account is attached to this VM"),
				 errdetail("The metadata service at \"%s\" answered 404 for the instance service account's token.",
						   creds->opts.metadata_address),
				 errhint("Attach a service account to the VM, or use another credential in the user mapping.")));
	if (status != 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the metadata service refused the instance service account's token"),
				 errdetail("The metadata service at \"%s\" answered HTTP %ld.",
						   creds->opts.metadata_address, status)));

	if (!rb_json_string_fields(body, 2, names, values) || values[0] == NULL ||
		!rb_token_is_valid(values[0]) || values[1] == NULL ||
		(expires_in = strtod(values[1], &end), *end != '\0') ||
		expires_in <= 0)
	{
		explicit_bzero(body, strlen(body));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the metadata service sent an unusable answer for the instance service account's token"),
				 errdetail("The answer from \"%s\" is not JSON with a printable access_token and a positive expires_in.",
						   creds->opts.metadata_address)));
	}
	store_token(entry, values[0],
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											(int64) (Min(expires_in, 86400.0) * 1000)));
	explicit_bzero(body, strlen(body));
}

/*
 * store_token
 *		Cache a token and when to refresh it: after an hour, or with
 *		RB_TOKEN_MARGIN_S left, or, for a token that lives less than four
 *		margins, when a quarter of its life is left.
 */
static void
store_token(RbTokenEntry *entry, const char *token, TimestampTz expires_at)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		life_ms;
	int64		margin_ms;
	TimestampTz refresh_at;

	if (expires_at <= now)
		expires_at = TimestampTzPlusMilliseconds(now, 60 * 1000);
	life_ms = (expires_at - now) / 1000;
	margin_ms = Min((int64) RB_TOKEN_MARGIN_S * 1000, life_ms / 4);
	refresh_at = Min(TimestampTzPlusMilliseconds(expires_at, -margin_ms),
					 TimestampTzPlusMilliseconds(now, (int64) RB_TOKEN_MAX_AGE_S * 1000));

	forget_token(entry);
	entry->token = MemoryContextStrdup(TopMemoryContext, token);
	entry->obtained_at = now;
	entry->refresh_at = refresh_at;
}

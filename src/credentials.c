/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		  Where the IAM token of each call comes from.  A user mapping has
 *		  exactly one credential (option.c's table says which option is
 *		  which source):
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
 * Tokens obtained are cached per backend and user mapping, in memory only
 * (connection.c keeps the cache beside the user mapping's channels and
 * drops it on ALTER/DROP of the server or user mapping).  One is reused
 * while it was obtained less than an hour ago and has more than
 * RB_TOKEN_MARGIN_S (5 minutes) left; a token that lives less than four
 * times that margin is refreshed once three quarters of its life have
 * passed.  The scan asks for the current token before each call, so it
 * runs across a refresh; a call refused UNAUTHENTICATED with a token from
 * the cache drops it (rb_credentials_rejected) and is made once more with
 * a fresh one.  Tokens, keys and JWTs never reach a message or the log.
 *
 * Layers: this file is built on the call layer (remote.c, for IAM's
 * exchange), connection.c and the key and metadata helpers; the call
 * layer knows nothing of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "redis_backup_fdw.h"

/* Refresh rules. */
#define RB_TOKEN_MARGIN_S 300	/* refresh with this much left */
#define RB_TOKEN_MAX_AGE_S 3600 /* refresh after this long */

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

static char *obtain_token(RbCredentials *creds, TimestampTz *expires_at);
static char *exchange_key(RbCredentials *creds, TimestampTz *expires_at);
static char *sign_jwt(RbCredentials *creds, RbServiceAccountKey *key);
static char *create_iam_token(RbCredentials *creds,
							  const RbServiceAccountKey *key, char *jwt,
							  TimestampTz *expires_at);
static char *ask_metadata(RbCredentials *creds, TimestampTz *expires_at);
static void store_token(RbCachedToken *cached, const char *token,
						TimestampTz expires_at);
static void keep_token_copy(RbCredentials *creds, const char *token);
static char *credential_description(RbCredentialSource source,
									const char *value);

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

	creds->source = rb_credential_option(user->options, &creds->value);
	if (creds->source == RB_CRED_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no credential in the user mapping for server \"%s\"",
						GetForeignServer(user->serverid)->servername),
				 errhint("Add one of iam_token, service_account_key, service_account_key_file or instance_service_account with ALTER USER MAPPING ... OPTIONS (ADD ...).")));
	creds->value = pstrdup(creds->value);
	creds->description = credential_description(creds->source, creds->value);
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
	RbCachedToken *cached;
	uint64		generation;
	TimestampTz expires_at;
	char	   *token;

	if (creds->source == RB_CRED_IAM_TOKEN)
		return creds->value;

	cached = rb_cached_token(&creds->user);
	if (cached->token != NULL && GetCurrentTimestamp() < cached->refresh_at)
	{
		keep_token_copy(creds, cached->token);
		return creds->handed_out;
	}

	/*
	 * Obtaining a token may process invalidations (an ALTER of the user
	 * mapping meanwhile): a token obtained with what the mapping said
	 * before serves this scan but is not cached for the next.
	 */
	generation = cached->generation;
	token = obtain_token(creds, &expires_at);
	if (cached->generation == generation)
		store_token(cached, token, expires_at);
	keep_token_copy(creds, token);
	explicit_bzero(token, strlen(token));
	pfree(token);
	return creds->handed_out;
}

/*
 * rb_credentials_renewable
 *		Can a token the service refused be replaced by a fresh one?  Not a
 *		ready-made iam_token.
 */
bool
rb_credentials_renewable(RbCredentials *creds)
{
	return creds->source != RB_CRED_IAM_TOKEN;
}

/*
 * rb_credentials_rejected
 *		The service refused token as UNAUTHENTICATED: drop it from the cache
 *		if it is the cached one, so that the next rb_credentials_token
 *		obtains a fresh one.
 */
void
rb_credentials_rejected(RbCredentials *creds, const char *token)
{
	RbCachedToken *cached;

	if (creds->source == RB_CRED_IAM_TOKEN)
		return;
	cached = rb_cached_token(&creds->user);
	if (cached->token != NULL && token != NULL &&
		strcmp(cached->token, token) == 0)
		rb_drop_cached_token(cached);
}

/*
 * rb_credentials_begin
 *		Start rc through target with the credentials' current token; a
 *		token the service refuses comes back as RB_OUTCOME_TOKEN_REFUSED
 *		when a fresh one can be tried.
 */
void
rb_credentials_begin(RbCredentials *creds, RbCallTarget *target,
					 RbRemoteCall *rc)
{
	rc->token = rb_credentials_token(creds);
	rc->token_renewable = rb_credentials_renewable(creds);
	rb_remote_begin(target, rc);
}

/*
 * rb_credentials_renew
 *		After a collect: when the service refused rc's token, drop it and
 *		start rc again with a fresh one (true: wait for it again).  A fresh
 *		token refused too is raised by the call layer.
 */
bool
rb_credentials_renew(RbCredentials *creds, RbCallTarget *target,
					 RbRemoteCall *rc, RbOutcome outcome)
{
	if (outcome != RB_OUTCOME_TOKEN_REFUSED)
		return false;
	rb_credentials_rejected(creds, rc->token);
	rb_remote_renew(target, rc, rb_credentials_token(creds));
	return true;
}

/*
 * rb_set_call_target
 *		What each call to service needs besides its channel (the caller
 *		acquires the connection): names for messages, the hint for a
 *		refused token, the server's limits, and where to count the calls.
 *		Strings are copied into cxt.
 */
void
rb_set_call_target(RbCallTarget *target, RbService service,
				   ForeignServer *server, const RbServerOptions *opts,
				   RbCredentials *creds, RbCallStats *stats, MemoryContext cxt)
{
	memset(target, 0, sizeof(RbCallTarget));
	target->service = service;
	target->server_name = MemoryContextStrdup(cxt, server->servername);
	target->endpoint = MemoryContextStrdup(cxt,
										   rb_service_endpoint(opts, service));
	target->token_hint = MemoryContextStrdup(cxt,
											 rb_credentials_hint(creds,
																 server->servername));
	target->timeout_ms = opts->timeout_ms;
	target->max_attempts = opts->max_attempts;
	target->stats = stats;
}

/*
 * rb_credentials_hint
 *		What to check when the service refuses the token.
 */
char *
rb_credentials_hint(RbCredentials *creds, const char *server_name)
{
	if (creds->source == RB_CRED_IAM_TOKEN)
		return psprintf("Check the iam_token option of the user mapping for server \"%s\"; IAM tokens expire after at most 12 hours.",
						server_name);
	return psprintf("The token came from the %s of the user mapping for server \"%s\" and was refused even when fresh: check that the service account exists and may use the service.",
					creds->description, server_name);
}

/*
 * rb_describe_credentials
 *		The credential source of a user's user mapping for a server (its own
 *		or PUBLIC's), for EXPLAIN: never a secret; "none" without one.
 */
char *
rb_describe_credentials(Oid userid, Oid serverid)
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
	source = rb_credential_option(GetUserMapping(userid, serverid)->options,
								  &value);
	return credential_description(source, value);
}

/*
 * credential_description
 *		"iam_token", "service account key ajeXXXX", ...: no secret.  A key
 *		shows its id only when the id is one (rb_service_account_key_id).
 */
static char *
credential_description(RbCredentialSource source, const char *value)
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
 * obtain_token
 *		A new token for the credentials (palloc'd), and when it expires.
 */
static char *
obtain_token(RbCredentials *creds, TimestampTz *expires_at)
{
	char	   *token;

	if (creds->source == RB_CRED_INSTANCE)
		token = ask_metadata(creds, expires_at);
	else
		token = exchange_key(creds, expires_at);
	creds->stats->token_exchanges++;
	return token;
}

/*
 * exchange_key
 *		A token for a JWT signed by the service account's key, from
 *		IamTokenService.Create.
 */
static char *
exchange_key(RbCredentials *creds, TimestampTz *expires_at)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	RbServiceAccountKey key;
	char	   *jwt;
	char	   *token;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "redis_backup_fdw exchange",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	jwt = sign_jwt(creds, &key);
	token = create_iam_token(creds, &key, jwt, expires_at);
	MemoryContextSwitchTo(oldcxt);
	token = pstrdup(token);
	MemoryContextDelete(cxt);
	return token;
}

/*
 * sign_jwt
 *		Read the service account's key (the option's JSON, or the key file
 *		as it is now) into *key and sign a JWT with it.
 */
static char *
sign_jwt(RbCredentials *creds, RbServiceAccountKey *key)
{
	const char *why;
	char	   *json;
	char	   *jwt;

	json = creds->source == RB_CRED_KEY_FILE
		? rb_read_service_account_key_file(creds->value) : creds->value;
	if (!rb_parse_service_account_key(json, key, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the %s is not a usable service account key",
						creds->description),
				 errdetail_internal("%s", why)));
	jwt = rb_make_jwt(key, (int64) time(NULL), &why);
	explicit_bzero(key->private_key_pem, strlen(key->private_key_pem));
	if (jwt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not sign a JWT with service account key %s",
						key->id),
				 errdetail_internal("%s", why)));
	return jwt;
}

/*
 * create_iam_token
 *		IamTokenService.Create with the JWT (wiped afterwards), on IAM's
 *		channel of the user mapping; the call carries no token.  IAM
 *		refusing it is 28000 naming the key.  The token is allocated in the
 *		current memory context.
 */
static char *
create_iam_token(RbCredentials *creds, const RbServiceAccountKey *key,
				 char *jwt, TimestampTz *expires_at)
{
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

	req.identity_case = YANDEX__CLOUD__IAM__V1__CREATE_IAM_TOKEN_REQUEST__IDENTITY_JWT;
	req.jwt = jwt;
	memset(&stats, 0, sizeof(stats));
	memset(&target, 0, sizeof(target));
	target.service = RB_SERVICE_IAM;
	target.server_name = GetForeignServer(creds->user.serverid)->servername;
	target.endpoint = rb_service_endpoint(&creds->opts, RB_SERVICE_IAM);
	target.timeout_ms = creds->opts.timeout_ms;
	target.max_attempts = creds->opts.max_attempts;
	target.stats = &stats;
	rb_init_allocator(&allocator, CurrentMemoryContext);
	memset(&rc, 0, sizeof(rc));
	rc.method = RB_METHOD_IAM_TOKEN_CREATE;
	rc.request = &req.base;
	rc.desc = psprintf("IamTokenService.Create with service account key %s",
					   key->id);
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
		explicit_bzero(jwt, strlen(jwt));
	}
	PG_END_TRY();

	if (outcome != RB_OUTCOME_REPLY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("IAM refused service account key %s of service account %s",
						key->id, key->service_account_id),
				 errdetail_internal("%s: %s", rb_code_name(rc.status.code),
									rc.status.message[0]
									? rc.status.message : "(no message)"),
				 errhint("Check that the key exists and belongs to the service account, and that the database server's clock is right.")));

	resp = (Yandex__Cloud__Iam__V1__CreateIamTokenResponse *) reply;
	if (!rb_token_is_valid(resp->iam_token))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("IAM answered service account key %s with an unusable token",
						key->id)));
	*expires_at = 0;
	if (resp->expires_at != NULL)
		*expires_at = time_t_to_timestamptz((pg_time_t) resp->expires_at->seconds);
	return resp->iam_token;
}

/*
 * ask_metadata
 *		The VM's token from the metadata service (palloc'd), and when it
 *		expires.  A refusal is 28000; a service that cannot be reached is
 *		retried as calls are, then 08006.
 */
static char *
ask_metadata(RbCredentials *creds, TimestampTz *expires_at)
{
	static const char *const names[] = {"access_token", "expires_in"};
	char	   *values[2];
	char	   *body = NULL;
	const char *why = NULL;
	long		status;
	int			attempt;
	char	   *end;
	double		expires_in;
	char	   *token;

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
				 errhint("Use the instance service account on a Compute VM, or set the server option metadata_address to where its metadata service answers.")));
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
	*expires_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  (int64) (Min(expires_in, 86400.0) * 1000));
	token = pstrdup(values[0]);
	explicit_bzero(body, strlen(body));
	return token;
}

/*
 * store_token
 *		Cache a token and when to refresh it: after an hour, or with
 *		RB_TOKEN_MARGIN_S left, or, for a token that lives less than four
 *		margins, when a quarter of its life is left.
 */
static void
store_token(RbCachedToken *cached, const char *token, TimestampTz expires_at)
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

	rb_drop_cached_token(cached);
	cached->token = MemoryContextStrdup(TopMemoryContext, token);
	cached->obtained_at = now;
	cached->refresh_at = refresh_at;
}

/*
 * keep_token_copy
 *		Keep a copy of the token the next call carries, wiping the last one.
 */
static void
keep_token_copy(RbCredentials *creds, const char *token)
{
	if (creds->handed_out != NULL)
	{
		explicit_bzero(creds->handed_out, strlen(creds->handed_out));
		pfree(creds->handed_out);
	}
	creds->handed_out = MemoryContextStrdup(creds->cxt, token);
}

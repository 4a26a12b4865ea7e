/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		  Where the IAM token of each call comes from: the user mapping's
 *		  credential.
 *
 * Today the one source is a ready-made token, the user mapping option
 * iam_token, sent as is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"

#include "redis_backup_fdw.h"

struct RbCredentials
{
	char	   *iam_token;		/* the user mapping's iam_token */
};

/*
 * rb_get_credentials
 *		The credentials of a user mapping, allocated in cxt.  An error when
 *		the user mapping has none.
 */
RbCredentials *
rb_get_credentials(UserMapping *user, const RbServerOptions *opts,
				   MemoryContext cxt)
{
	RbCredentials *creds = MemoryContextAllocZero(cxt, sizeof(RbCredentials));
	ListCell   *lc;

	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "iam_token") == 0)
			creds->iam_token = MemoryContextStrdup(cxt, defGetString(def));
	}
	if (creds->iam_token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no iam_token in the user mapping for server \"%s\"",
						GetForeignServer(user->serverid)->servername),
				 errhint("Add one with ALTER USER MAPPING ... OPTIONS (ADD iam_token '...').")));
	return creds;
}

/*
 * rb_credentials_token
 *		The token for the next call.
 */
const char *
rb_credentials_token(RbCredentials *creds)
{
	return creds->iam_token;
}

/*
 * rb_credentials_token_if_any
 *		The token calls carry now, or NULL; never obtains one.  For
 *		redacting error messages.
 */
const char *
rb_credentials_token_if_any(RbCredentials *creds)
{
	return creds != NULL ? creds->iam_token : NULL;
}

/*
 * rb_credentials_rejected
 *		The service refused token: true when a different token can be tried
 *		(never for a ready-made iam_token).
 */
bool
rb_credentials_rejected(RbCredentials *creds, const char *token)
{
	return false;
}

/*
 * rb_credentials_hint
 *		What to check when the service refuses the token.
 */
char *
rb_credentials_hint(RbCredentials *creds, const char *server_name)
{
	return psprintf("Check the iam_token option of the user mapping for server \"%s\"; IAM tokens expire after at most 12 hours.",
					server_name);
}

/*
 * rb_credentials_source
 *		The credential source, for EXPLAIN VERBOSE: never a secret.
 */
const char *
rb_credentials_source(RbCredentials *creds)
{
	return "iam_token";
}

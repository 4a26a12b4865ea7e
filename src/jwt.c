/*-------------------------------------------------------------------------
 *
 * jwt.c
 *		  Service-account authorized keys: reading one (the JSON that
 *		  `yc iam key create` writes) and signing the JWT that IAM exchanges
 *		  for a token.
 *
 * The JWT: header {"typ":"JWT","alg":"PS256","kid":KEY_ID}, claims
 * {"iss":SERVICE_ACCOUNT_ID,"aud":RB_JWT_AUDIENCE,"iat":NOW,"exp":NOW+3600},
 * each base64url without padding, signed RSASSA-PSS with SHA-256, MGF1
 * SHA-256 and a salt of 32 bytes (IAM refuses other salt lengths) with
 * OpenSSL's libcrypto.
 *
 * The key's JSON is read with PostgreSQL's own JSON parser, through
 * semantic actions that report failure as a code: no message ever quotes
 * the key.  Nothing here logs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/base64.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"

#include "compat.h"
#include "redis_backup_fdw.h"

#define RB_JWT_AUDIENCE "https://iam.api.cloud.yandex.net/iam/v1/tokens"
#define RB_JWT_LIFETIME_S 3600
#define RB_PSS_SALT_LENGTH 32

/* The top-level string or number fields wanted from a JSON object. */
typedef struct RbJsonFields
{
	int			nfields;
	const char *const *names;
	char	  **values;			/* NULL where absent or not a string */
	int			depth;
	int			current;		/* index of the field being read, or -1 */
} RbJsonFields;

static bool json_string_fields(const char *json, RbJsonFields *fields);
static RB_JSON_ACTION fields_object_start(void *state);
static RB_JSON_ACTION fields_object_end(void *state);
static RB_JSON_ACTION fields_field_start(void *state, char *fname, bool isnull);
static RB_JSON_ACTION fields_scalar(void *state, char *token, JsonTokenType tokentype);
static EVP_PKEY *load_private_key(const char *pem);
static int	no_password(char *buf, int size, int rwflag, void *u);
static char *base64url(const unsigned char *data, size_t len);

/*
 * rb_parse_service_account_key
 *		Read the authorized key JSON into *key.  Returns false with *why (a
 *		sentence that never quotes the key) when it is not usable: invalid
 *		JSON, a required field missing, or a private key OpenSSL cannot load
 *		as RSA.
 */
bool
rb_parse_service_account_key(const char *json, RbServiceAccountKey *key,
							 const char **why)
{
	static const char *const names[] = {"id", "service_account_id",
	"private_key"};
	char	   *values[lengthof(names)];
	RbJsonFields fields;
	const char *pem;
	EVP_PKEY   *pkey;

	fields.nfields = lengthof(names);
	fields.names = names;
	fields.values = values;
	if (!json_string_fields(json, &fields))
	{
		*why = "It is not a JSON object.";
		return false;
	}
	if (values[0] == NULL || values[0][0] == '\0')
	{
		*why = "The field \"id\" (the key id) is missing or empty.";
		return false;
	}
	if (values[1] == NULL || values[1][0] == '\0')
	{
		*why = "The field \"service_account_id\" is missing or empty.";
		return false;
	}
	if (values[2] == NULL || (pem = strstr(values[2], "-----BEGIN")) == NULL)
	{
		*why = "The field \"private_key\" holds no PEM private key.";
		return false;
	}
	pkey = load_private_key(pem);
	if (pkey == NULL)
	{
		*why = "The private key is not an RSA private key that OpenSSL can load.";
		return false;
	}
	EVP_PKEY_free(pkey);

	key->id = values[0];
	key->service_account_id = values[1];
	key->private_key_pem = pstrdup(pem);
	explicit_bzero(values[2], strlen(values[2]));
	return true;
}

/*
 * rb_make_jwt
 *		A signed JWT of key, issued at now (Unix seconds).  NULL with *why
 *		when signing fails.
 */
char *
rb_make_jwt(const RbServiceAccountKey *key, int64 now, const char **why)
{
	StringInfoData header;
	StringInfoData claims;
	StringInfoData jwt;
	EVP_PKEY   *pkey;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t		siglen = 0;
	bool		ok = false;

	initStringInfo(&header);
	appendStringInfoString(&header, "{\"typ\":\"JWT\",\"alg\":\"PS256\",\"kid\":");
	escape_json(&header, key->id);
	appendStringInfoChar(&header, '}');

	initStringInfo(&claims);
	appendStringInfoString(&claims, "{\"iss\":");
	escape_json(&claims, key->service_account_id);
	appendStringInfo(&claims,
					 ",\"aud\":\"" RB_JWT_AUDIENCE "\",\"iat\":" INT64_FORMAT
					 ",\"exp\":" INT64_FORMAT "}",
					 now, now + RB_JWT_LIFETIME_S);

	initStringInfo(&jwt);
	appendStringInfo(&jwt, "%s.%s",
					 base64url((unsigned char *) header.data, header.len),
					 base64url((unsigned char *) claims.data, claims.len));

	/* No PostgreSQL error may be raised while OpenSSL objects are held. */
	pkey = load_private_key(key->private_key_pem);
	if (pkey != NULL &&
		(md = EVP_MD_CTX_new()) != NULL &&
		EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RB_PSS_SALT_LENGTH) == 1 &&
		EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
		EVP_DigestSign(md, NULL, &siglen, (unsigned char *) jwt.data,
					   jwt.len) == 1 &&
		(sig = OPENSSL_malloc(siglen)) != NULL &&
		EVP_DigestSign(md, sig, &siglen, (unsigned char *) jwt.data,
					   jwt.len) == 1)
		ok = true;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	ERR_clear_error();

	if (!ok)
	{
		OPENSSL_free(sig);
		*why = "OpenSSL could not sign the JWT with the private key.";
		return NULL;
	}
	appendStringInfo(&jwt, ".%s", base64url(sig, siglen));
	OPENSSL_free(sig);
	return jwt.data;
}

/*
 * load_private_key
 *		An RSA private key from PEM text, or NULL.  Never prompts for a
 *		password.
 */
static EVP_PKEY *
load_private_key(const char *pem)
{
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY   *pkey = NULL;

	if (bio != NULL)
	{
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
		BIO_free(bio);
	}
	if (pkey != NULL && EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA)
	{
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	ERR_clear_error();
	return pkey;
}

static int
no_password(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/*
 * base64url
 *		data in base64url without padding.
 */
static char *
base64url(const unsigned char *data, size_t len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);
	int			n;
	int			i;

	n = rb_b64_encode(data, len, out, enclen);
	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (i = 0; i < n; i++)
	{
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

/*
 * rb_json_string_fields
 *		The top-level fields names[0..n) of a JSON object into values, as
 *		text: strings unescaped, numbers as written (NULL where absent or of
 *		another type).  False when json is not a valid JSON object.  Errors
 *		are codes, never messages quoting the input.
 */
bool
rb_json_string_fields(const char *json, int n, const char *const *names,
					  char **values)
{
	RbJsonFields fields;

	fields.nfields = n;
	fields.names = names;
	fields.values = values;
	return json_string_fields(json, &fields);
}

static bool
json_string_fields(const char *json, RbJsonFields *fields)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	int			i;

	for (i = 0; i < fields->nfields; i++)
		fields->values[i] = NULL;
	fields->depth = 0;
	fields->current = -1;

	while (*json == ' ' || *json == '\t' || *json == '\n' || *json == '\r')
		json++;
	if (*json != '{')
		return false;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = fields;
	sem.object_start = fields_object_start;
	sem.object_end = fields_object_end;
	sem.array_start = fields_object_start;
	sem.array_end = fields_object_end;
	sem.object_field_start = fields_field_start;
	sem.scalar = fields_scalar;

	lex = rb_json_lex_context(json, strlen(json), GetDatabaseEncoding());
	return pg_parse_json(lex, &sem) == JSON_SUCCESS;
}

static RB_JSON_ACTION
fields_object_start(void *state)
{
	((RbJsonFields *) state)->depth++;
	RB_JSON_ACTION_DONE;
}

static RB_JSON_ACTION
fields_object_end(void *state)
{
	((RbJsonFields *) state)->depth--;
	RB_JSON_ACTION_DONE;
}

static RB_JSON_ACTION
fields_field_start(void *state, char *fname, bool isnull)
{
	RbJsonFields *fields = state;
	int			i;

	fields->current = -1;
	for (i = 0; fields->depth == 1 && i < fields->nfields; i++)
	{
		if (strcmp(fname, fields->names[i]) == 0)
			fields->current = i;
	}
	RB_JSON_ACTION_DONE;
}

static RB_JSON_ACTION
fields_scalar(void *state, char *token, JsonTokenType tokentype)
{
	RbJsonFields *fields = state;

	if (fields->depth == 1 && fields->current >= 0 &&
		(tokentype == JSON_TOKEN_STRING || tokentype == JSON_TOKEN_NUMBER))
		fields->values[fields->current] = token;
	fields->current = -1;
	RB_JSON_ACTION_DONE;
}

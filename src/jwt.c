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
 * the key.  Its id and service account id are checked to be ids as the
 * API writes them (1 to 50 letters, digits, hyphens and underscores) before
 * they appear anywhere, and its RSA key to be one IAM takes (at least
 * 2048 bits).  Nothing here logs.
 *
 * The validator checks a key given in an option, or the file holding one,
 * with the same reading (rb_check_service_account_key), so CREATE/ALTER
 * USER MAPPING refuses what a scan could not use.
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

#include "redis_backup_fdw.h"

#define RB_JWT_AUDIENCE "https://iam.api.cloud.yandex.net/iam/v1/tokens"
#define RB_JWT_LIFETIME_S 3600
#define RB_PSS_SALT_LENGTH 32

/* The smallest RSA key IAM takes, in bits. */
#define RB_MIN_RSA_BITS 2048

/* Largest key file read. */
#define RB_MAX_KEY_FILE_SIZE (64 * 1024)

/* The fields of an authorized key that the JWT needs. */
enum
{
	RB_KEY_ID,
	RB_KEY_SERVICE_ACCOUNT_ID,
	RB_KEY_PRIVATE_KEY,
	RB_KEY_NFIELDS
};
static const char *const key_field_names[RB_KEY_NFIELDS] = {
	[RB_KEY_ID] = "id",
	[RB_KEY_SERVICE_ACCOUNT_ID] = "service_account_id",
	[RB_KEY_PRIVATE_KEY] = "private_key",
};

/* The top-level string or number fields wanted from a JSON object. */
typedef struct RbJsonFields
{
	int			nfields;
	const char *const *names;
	char	  **values;			/* NULL where absent or of another type */
	bool	   *is_string;		/* ... a JSON string; NULL: not wanted */
	int			depth;
	int			current;		/* index of the field being read, or -1 */
} RbJsonFields;

static bool key_fields(const char *json, char **values);
static bool is_api_id(const char *value);
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
 *		sentence that never quotes the key, nor anything of it that is not a
 *		valid id) when it is not usable: invalid JSON; an id or service
 *		account id missing, not a string or not an id; a private key that
 *		OpenSSL cannot load as RSA, or one of fewer than RB_MIN_RSA_BITS
 *		bits.
 */
bool
rb_parse_service_account_key(const char *json, RbServiceAccountKey *key,
							 const char **why)
{
	char	   *values[RB_KEY_NFIELDS];
	char	   *id;
	const char *pem = NULL;
	EVP_PKEY   *pkey;
	int			bits;

	if (!key_fields(json, values))
	{
		*why = "It is not a JSON object.";
		return false;
	}
	id = values[RB_KEY_ID];
	*why = NULL;
	if (id == NULL || !is_api_id(id))
		*why = psprintf("The field \"id\" (the key id) must be a string of 1 to %d letters, digits, hyphens or underscores.",
						RB_MAX_ID_LENGTH);
	else if (values[RB_KEY_SERVICE_ACCOUNT_ID] == NULL ||
			 !is_api_id(values[RB_KEY_SERVICE_ACCOUNT_ID]))
		*why = psprintf("The field \"service_account_id\" of key %s must be a string of 1 to %d letters, digits, hyphens or underscores.",
						id, RB_MAX_ID_LENGTH);
	else if (values[RB_KEY_PRIVATE_KEY] == NULL ||
			 (pem = strstr(values[RB_KEY_PRIVATE_KEY], "-----BEGIN")) == NULL)
		*why = psprintf("The field \"private_key\" of key %s holds no PEM private key.",
						id);
	else if ((pkey = load_private_key(pem)) == NULL)
		*why = psprintf("The private key of key %s is not an RSA private key that OpenSSL can load.",
						id);
	else
	{
		bits = EVP_PKEY_bits(pkey);
		EVP_PKEY_free(pkey);
		if (bits < RB_MIN_RSA_BITS)
			*why = psprintf("The private key of key %s has %d bits; IAM takes RSA keys of at least %d bits.",
							id, bits, RB_MIN_RSA_BITS);
	}

	if (*why == NULL)
	{
		key->id = id;
		key->service_account_id = values[RB_KEY_SERVICE_ACCOUNT_ID];
		key->private_key_pem = pstrdup(pem);
	}
	if (values[RB_KEY_PRIVATE_KEY] != NULL)
		explicit_bzero(values[RB_KEY_PRIVATE_KEY],
					   strlen(values[RB_KEY_PRIVATE_KEY]));
	return *why == NULL;
}

/*
 * rb_read_service_account_key_file
 *		The text of a service account key file, as it is now (a rotated
 *		file is read anew).
 */
char *
rb_read_service_account_key_file(const char *path)
{
	return rb_read_server_file(path, "service account key file",
							   RB_MAX_KEY_FILE_SIZE);
}

/*
 * rb_check_service_account_key
 *		The validator's check of a key given inline (file false) or of the
 *		file holding one: 22023 when it is unusable, never quoting it.
 */
void
rb_check_service_account_key(const char *option, const char *value,
							 bool file)
{
	RbServiceAccountKey key;
	const char *why;
	const char *json;

	json = file ? rb_read_service_account_key_file(value) : value;
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
 * rb_service_account_key_id
 *		The id of an authorized key JSON, when it has a valid one (for
 *		EXPLAIN and messages); else NULL.  Loads no private key.
 */
char *
rb_service_account_key_id(const char *json)
{
	char	   *values[RB_KEY_NFIELDS];

	if (!key_fields(json, values) || values[RB_KEY_ID] == NULL ||
		!is_api_id(values[RB_KEY_ID]))
		return NULL;
	if (values[RB_KEY_PRIVATE_KEY] != NULL)
		explicit_bzero(values[RB_KEY_PRIVATE_KEY],
					   strlen(values[RB_KEY_PRIVATE_KEY]));
	return values[RB_KEY_ID];
}

/*
 * key_fields
 *		The fields of an authorized key JSON into values (indexed by
 *		RB_KEY_*), each NULL unless it is a JSON string.  False when json
 *		is not a JSON object.
 */
static bool
key_fields(const char *json, char **values)
{
	bool		is_string[RB_KEY_NFIELDS];
	RbJsonFields fields;
	int			i;

	fields.nfields = RB_KEY_NFIELDS;
	fields.names = key_field_names;
	fields.values = values;
	fields.is_string = is_string;
	if (!json_string_fields(json, &fields))
		return false;
	for (i = 0; i < RB_KEY_NFIELDS; i++)
	{
		if (!is_string[i])
			values[i] = NULL;
	}
	return true;
}

/*
 * is_api_id
 *		Is value an id as the API writes them: 1 to RB_MAX_ID_LENGTH ASCII
 *		letters, digits, hyphens and underscores?  (Real ids are 20
 *		lowercase letters and digits.)
 */
static bool
is_api_id(const char *value)
{
	const char *p;

	for (p = value; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
		if (p - value >= RB_MAX_ID_LENGTH)
			return false;
	}
	return p > value;
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
	fields.is_string = NULL;
	return json_string_fields(json, &fields);
}

static bool
json_string_fields(const char *json, RbJsonFields *fields)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	int			i;

	for (i = 0; i < fields->nfields; i++)
	{
		fields->values[i] = NULL;
		if (fields->is_string != NULL)
			fields->is_string[i] = false;
	}
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
	{
		fields->values[fields->current] = token;
		if (fields->is_string != NULL)
			fields->is_string[fields->current] =
				(tokentype == JSON_TOKEN_STRING);
	}
	fields->current = -1;
	RB_JSON_ACTION_DONE;
}

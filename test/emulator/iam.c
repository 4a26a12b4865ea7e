/*-------------------------------------------------------------------------
 *
 * iam.c
 *		  Service accounts, their authorized keys, JWT verification and the
 *		  store of IAM tokens the emulator issued.
 *
 * --service-account SA_ID=GRANTS declares a service account and what it may
 * read (the grant syntax of --token); --sa-key KEY_ID=SA_ID:PEMFILE
 * registers the public key of one of its authorized keys.
 * IamTokenService.Create (service.c) hands the JWT to emu_iam_verify_jwt,
 * which checks it completely:
 *
 *	- at most 8000 characters (service.c: INVALID_ARGUMENT), three
 *	  non-empty base64url parts without padding
 *	- header: a JSON object with typ "JWT", alg "PS256", kid a registered
 *	  key id
 *	- signature: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length exactly 32,
 *	  with the key's public key (OpenSSL EVP_DigestVerify)
 *	- payload: a JSON object with iss == the key's service account, aud ==
 *	  "https://iam.api.cloud.yandex.net/iam/v1/tokens" (a string, or an
 *	  array holding it), numeric iat and exp with iat <= now + 60 s (clock
 *	  skew allowed), exp > now, iat <= exp and exp - iat <= 3600
 *
 * and returns NULL or a message saying what was wrong (never quoting the
 * JWT).  A good JWT gets a fresh token, "t1.emu." followed by 86 random
 * base64url characters, valid for --token-lifetime seconds (default 43200,
 * 12 hours) and granting the service account's grants; the metadata
 * service (metadata.c) issues tokens the same way.  Issued tokens live in
 * a hash table guarded by a mutex (metadata.c runs in its own threads);
 * expired ones are dropped when met.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "emulator.h"

#define JWT_AUDIENCE "https://iam.api.cloud.yandex.net/iam/v1/tokens"
#define JWT_MAX_LIFETIME 3600
#define JWT_CLOCK_SKEW 60
#define JWT_SALT_LEN 32

#define DEFAULT_TOKEN_LIFETIME 43200
#define MAX_TOKEN_LIFETIME (INT64_C(86400) * 366)

/* "t1.emu." + base64url of 64 random bytes (86 characters). */
#define TOKEN_PREFIX "t1.emu."
#define TOKEN_RANDOM_BYTES 64

#define TOKEN_BUCKETS 4096

/* Members of a JSON object we look at. */
#define JSON_MAX_MEMBERS 64
#define JSON_MAX_DEPTH 16

typedef struct ServiceAccount
{
	char	   *id;
	EmuGrants	grants;
} ServiceAccount;

typedef struct SaKey
{
	char	   *id;
	char	   *sa_id;
	EVP_PKEY   *pkey;
} SaKey;

typedef struct IssuedToken
{
	char	   *token;
	int			sa;				/* index into service_accounts */
	int64_t		expires_us;		/* wall clock */
	struct IssuedToken *next;
} IssuedToken;

/* --jwt-clock-offset: seconds added to the clock of the JWT time checks */
static int64_t jwt_clock_offset = 0;

static ServiceAccount *service_accounts;
static int	nservice_accounts;
static SaKey *sa_keys;
static int	nsa_keys;
static int64_t token_lifetime = DEFAULT_TOKEN_LIFETIME;

static IssuedToken *token_buckets[TOKEN_BUCKETS];
static pthread_mutex_t token_mutex = PTHREAD_MUTEX_INITIALIZER;

/* A decoded JSON value of the kinds the JWT checks need. */
typedef enum JsonType
{
	JSON_OTHER,					/* object, array of non-strings, bool, null */
	JSON_STRING,
	JSON_NUMBER,
	JSON_STRING_ARRAY			/* array whose elements are all strings */
} JsonType;

typedef struct JsonMember
{
	char	   *key;
	JsonType	type;
	EmuBuf		str;			/* JSON_STRING; for JSON_STRING_ARRAY the
								 * elements, each NUL-terminated */
	int			nstrings;
	double		num;
} JsonMember;

typedef struct JsonObject
{
	JsonMember	m[JSON_MAX_MEMBERS];
	int			n;
} JsonObject;

/*
 * find_sa
 *		Index of the service account with this id, or -1.
 */
static int
find_sa(const char *id)
{
	for (int i = 0; i < nservice_accounts; i++)
		if (strcmp(service_accounts[i].id, id) == 0)
			return i;
	return -1;
}

/*
 * emu_iam_service_account_known
 *		Was a service account with this id declared?
 */
bool
emu_iam_service_account_known(const char *id)
{
	return find_sa(id) >= 0;
}

/*
 * emu_iam_add_service_account
 *		--service-account SA_ID=GRANTS (GRANTS: "*", ids separated by
 *		commas, or empty for none).
 */
void
emu_iam_add_service_account(const char *spec)
{
	const char *eq = strchr(spec, '=');
	ServiceAccount sa;

	if (eq == NULL || eq == spec)
		emu_fatal("--service-account %s: expected SA_ID=FOLDER[,FOLDER...], SA_ID=* or SA_ID=", spec);
	sa.id = emu_malloc(eq - spec + 1);
	memcpy(sa.id, spec, eq - spec);
	sa.id[eq - spec] = '\0';
	if (find_sa(sa.id) >= 0)
		emu_fatal("--service-account %s: service account given twice", spec);
	emu_grants_parse("--service-account", spec, eq + 1, true, &sa.grants);
	service_accounts = emu_realloc(service_accounts,
								   (nservice_accounts + 1) * sizeof(ServiceAccount));
	service_accounts[nservice_accounts++] = sa;
}

/*
 * emu_iam_add_sa_key
 *		--sa-key KEY_ID=SA_ID:PUBLIC_KEY_PEM_FILE
 */
void
emu_iam_add_sa_key(const char *spec)
{
	const char *eq = strchr(spec, '=');
	const char *colon = eq ? strchr(eq, ':') : NULL;
	SaKey		k;
	char	   *pem;
	BIO		   *bio;

	if (eq == NULL || eq == spec || colon == NULL || colon == eq + 1 ||
		colon[1] == '\0')
		emu_fatal("--sa-key %s: expected KEY_ID=SA_ID:PUBLIC_KEY_PEM_FILE", spec);
	k.id = emu_malloc(eq - spec + 1);
	memcpy(k.id, spec, eq - spec);
	k.id[eq - spec] = '\0';
	k.sa_id = emu_malloc(colon - eq);
	memcpy(k.sa_id, eq + 1, colon - eq - 1);
	k.sa_id[colon - eq - 1] = '\0';
	for (int i = 0; i < nsa_keys; i++)
		if (strcmp(sa_keys[i].id, k.id) == 0)
			emu_fatal("--sa-key %s: key id given twice", spec);

	pem = emu_read_file(colon + 1);
	bio = BIO_new_mem_buf(pem, -1);
	k.pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free(pem);
	ERR_clear_error();
	if (k.pkey == NULL)
		emu_fatal("--sa-key %s: %s holds no PEM public key", spec, colon + 1);
	if (EVP_PKEY_get_base_id(k.pkey) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k.pkey) < 2048)
		emu_fatal("--sa-key %s: not an RSA key of at least 2048 bits", spec);

	sa_keys = emu_realloc(sa_keys, (nsa_keys + 1) * sizeof(SaKey));
	sa_keys[nsa_keys++] = k;
}

/*
 * emu_iam_set_token_lifetime
 *		--token-lifetime SECONDS
 */
void
emu_iam_set_token_lifetime(const char *arg)
{
	char	   *end;
	long long	v;

	v = strtoll(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 1 || v > MAX_TOKEN_LIFETIME)
		emu_fatal("--token-lifetime %s: expected 1..%lld seconds", arg,
				  (long long) MAX_TOKEN_LIFETIME);
	token_lifetime = v;
}

/*
 * emu_iam_set_jwt_clock_offset
 *		--jwt-clock-offset SECONDS: the JWT time checks (iat, exp) see the
 *		clock SECONDS ahead (negative: behind), so tests can present a JWT
 *		that is expired or issued in the future.
 */
void
emu_iam_set_jwt_clock_offset(const char *arg)
{
	char	   *end;
	long long	v;

	v = strtoll(arg, &end, 10);
	if (arg[0] == '\0' || *end != '\0' || v < -86400 * 365 || v > 86400 * 365)
		emu_fatal("--jwt-clock-offset %s: expected -31536000..31536000 seconds", arg);
	jwt_clock_offset = v;
}

/*
 * emu_iam_token_lifetime
 *		How long issued tokens live, in seconds (--token-lifetime).
 */
int64_t
emu_iam_token_lifetime(void)
{
	return token_lifetime;
}

/*
 * emu_iam_check_config
 *		After the command line: every key's service account and the
 *		metadata service's one must have been declared.
 */
void
emu_iam_check_config(const char *metadata_sa)
{
	for (int i = 0; i < nsa_keys; i++)
		if (find_sa(sa_keys[i].sa_id) < 0)
			emu_fatal("--sa-key %s: service account \"%s\" is not declared with --service-account",
					  sa_keys[i].id, sa_keys[i].sa_id);
	if (metadata_sa != NULL && find_sa(metadata_sa) < 0)
		emu_fatal("--metadata-sa %s: service account is not declared with --service-account",
				  metadata_sa);
}

/*
 * emu_iam_strict
 *		Are service accounts configured?  Then only --token tokens and
 *		issued ones authenticate (no open mode).
 */
bool
emu_iam_strict(void)
{
	return nservice_accounts > 0;
}

/*
 * emu_iam_summary
 *		Number of service accounts (and keys) for the start-up message.
 */
int
emu_iam_summary(int *nkeys)
{
	*nkeys = nsa_keys;
	return nservice_accounts;
}

/*
 * token_bucket
 *		Bucket of a token string.
 */
static unsigned
token_bucket(const char *data, size_t len)
{
	return (unsigned) (emu_hash_bytes(0x49414d, data, len) % TOKEN_BUCKETS);
}

/*
 * emu_iam_issue_token
 *		Issue a fresh token for service account sa (declared), valid for the
 *		token lifetime.  Writes it NUL-terminated to token (size >= 100)
 *		and its expiry (Unix seconds) to *expires_at.  Thread-safe.
 */
void
emu_iam_issue_token(const char *sa, char *token, size_t size, int64_t *expires_at)
{
	uint8_t		raw[TOKEN_RANDOM_BYTES];
	EmuBuf		buf = {0};
	IssuedToken *t = emu_malloc(sizeof(IssuedToken));
	int64_t		now_us = emu_wall_us();
	unsigned	b;

	emu_random_bytes(raw, sizeof(raw));
	emu_buf_append_str(&buf, TOKEN_PREFIX);
	emu_base64url(raw, sizeof(raw), &buf);
	if (buf.len + 1 > size)
		emu_fatal("token buffer too small");
	memcpy(token, buf.data, buf.len + 1);

	t->token = buf.data;
	t->sa = find_sa(sa);
	t->expires_us = now_us + token_lifetime * 1000000;
	*expires_at = t->expires_us / 1000000;
	b = token_bucket(t->token, strlen(t->token));

	pthread_mutex_lock(&token_mutex);
	t->next = token_buckets[b];
	token_buckets[b] = t;
	pthread_mutex_unlock(&token_mutex);
}

/*
 * emu_iam_lookup_token
 *		Is token one we issued that has not expired?  Then *grants and *sa
 *		are its service account's.  Expired tokens met on the way are
 *		dropped.  Thread-safe.
 */
bool
emu_iam_lookup_token(EmuBytes token, const EmuGrants **grants, const char **sa)
{
	unsigned	b = token_bucket(token.data, token.len);
	int64_t		now_us = emu_wall_us();
	IssuedToken **p;
	bool		found = false;

	pthread_mutex_lock(&token_mutex);
	p = &token_buckets[b];
	while (*p != NULL)
	{
		IssuedToken *t = *p;

		if (t->expires_us <= now_us)
		{
			*p = t->next;
			free(t->token);
			free(t);
			continue;
		}
		if (emu_bytes_equal_str(token, t->token))
		{
			*grants = &service_accounts[t->sa].grants;
			*sa = service_accounts[t->sa].id;
			found = true;
			break;
		}
		p = &t->next;
	}
	pthread_mutex_unlock(&token_mutex);
	return found;
}

/* --- a small JSON reader: one object, its members' values --------------- */

typedef struct JsonReader
{
	const char *p;
	const char *end;
} JsonReader;

/*
 * json_ws
 *		Step over JSON white space.
 */
static void
json_ws(JsonReader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/*
 * hex4
 *		The value of four hex digits, or -1 if they are not.
 */
static int
hex4(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * utf8_put
 *		Append code point cp as UTF-8.
 */
static void
utf8_put(EmuBuf *out, uint32_t cp)
{
	char		b[4];
	int			n;

	if (cp < 0x80)
	{
		b[0] = (char) cp;
		n = 1;
	}
	else if (cp < 0x800)
	{
		b[0] = (char) (0xC0 | (cp >> 6));
		b[1] = (char) (0x80 | (cp & 0x3F));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		b[0] = (char) (0xE0 | (cp >> 12));
		b[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char) (0x80 | (cp & 0x3F));
		n = 3;
	}
	else
	{
		b[0] = (char) (0xF0 | (cp >> 18));
		b[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char) (0x80 | (cp & 0x3F));
		n = 4;
	}
	emu_buf_append(out, b, n);
}

/*
 * json_unicode_escape
 *		Read a \uXXXX escape (r->p at the backslash), or a surrogate pair of
 *		two, and append the character as UTF-8 to out.  False for a lone
 *		surrogate or bad hex digits.
 */
static bool
json_unicode_escape(JsonReader *r, EmuBuf *out)
{
	int			v;
	uint32_t	cp;

	if (r->end - r->p < 6 || (v = hex4(r->p + 2)) < 0)
		return false;
	r->p += 6;
	cp = (uint32_t) v;
	if (cp >= 0xD800 && cp < 0xDC00)
	{
		int			lo;

		if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
			(lo = hex4(r->p + 2)) < 0xDC00 || lo > 0xDFFF)
			return false;
		r->p += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	else if (cp >= 0xDC00 && cp < 0xE000)
		return false;
	utf8_put(out, cp);
	return true;
}

/*
 * json_string
 *		Read a string (r->p at the quote); append it decoded to out (may be
 *		NULL), NUL-terminated.
 */
static bool
json_string(JsonReader *r, EmuBuf *out)
{
	/* The one-character escapes, and the characters they stand for. */
	static const char escapes[] = "\"\\/bfnrt";
	static const char escaped[] = "\"\\/\b\f\n\r\t";
	EmuBuf		scratch = {0};

	if (out == NULL)
		out = &scratch;
	if (r->p >= r->end || *r->p != '"')
		return false;
	r->p++;
	while (r->p < r->end && *r->p != '"')
	{
		unsigned char c = (unsigned char) *r->p;
		const char *e;

		if (c < 0x20)
			goto bad;
		if (c != '\\')
		{
			emu_buf_append(out, r->p, 1);
			r->p++;
		}
		else if (r->end - r->p < 2)
			goto bad;
		else if (r->p[1] == 'u')
		{
			if (!json_unicode_escape(r, out))
				goto bad;
		}
		else if (r->p[1] != '\0' && (e = strchr(escapes, r->p[1])) != NULL)
		{
			emu_buf_append(out, &escaped[e - escapes], 1);
			r->p += 2;
		}
		else
			goto bad;
	}
	if (r->p >= r->end)
		goto bad;
	r->p++;
	/* Appending nothing still allocates, so out->data is never NULL. */
	emu_buf_append(out, "", 0);
	emu_buf_free(&scratch);
	return true;
bad:
	emu_buf_free(&scratch);
	return false;
}

/*
 * json_number
 *		Read a number in strict JSON syntax.
 */
static bool
json_number(JsonReader *r, double *v)
{
	const char *s = r->p;
	char		tmp[64];
	size_t		len;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p >= r->end || *r->p < '0' || *r->p > '9')
		return false;
	if (*r->p == '0')
		r->p++;
	else
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
	if (r->p < r->end && *r->p == '.')
	{
		r->p++;
		if (r->p >= r->end || *r->p < '0' || *r->p > '9')
			return false;
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
	{
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (r->p >= r->end || *r->p < '0' || *r->p > '9')
			return false;
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
	}
	len = r->p - s;
	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtod(tmp, NULL);
	return isfinite(*v);
}

static bool json_value(JsonReader *r, int depth, JsonMember *m);

/*
 * json_literal
 *		Read true, false or null.
 */
static bool
json_literal(JsonReader *r, const char *word)
{
	size_t		len = strlen(word);

	if ((size_t) (r->end - r->p) < len || memcmp(r->p, word, len) != 0)
		return false;
	r->p += len;
	return true;
}

/*
 * json_open
 *		Step over the bracket or brace that opens an array or object (r->p
 *		is at it).  True when close follows at once (an empty one), which
 *		is stepped over too.
 */
static bool
json_open(JsonReader *r, char close)
{
	r->p++;
	json_ws(r);
	if (r->p < r->end && *r->p == close)
	{
		r->p++;
		return true;
	}
	return false;
}

/*
 * json_next
 *		After an element or member: step over a comma (*more = true) or the
 *		closing character close (*more = false).  False when neither
 *		follows.
 */
static bool
json_next(JsonReader *r, char close, bool *more)
{
	json_ws(r);
	if (r->p < r->end && (*r->p == ',' || *r->p == close))
	{
		*more = *r->p == ',';
		r->p++;
		return true;
	}
	return false;
}

/*
 * json_add_member
 *		Read a member's key and add a member of that name to obj; NULL when
 *		the key is not a string, is there already, or obj is full.
 */
static JsonMember *
json_add_member(JsonReader *r, JsonObject *obj)
{
	EmuBuf		key = {0};
	JsonMember *m;

	if (obj->n == JSON_MAX_MEMBERS || !json_string(r, &key))
	{
		emu_buf_free(&key);
		return NULL;
	}
	for (int i = 0; i < obj->n; i++)
		if (strcmp(obj->m[i].key, key.data) == 0)
		{
			emu_buf_free(&key);
			return NULL;
		}
	m = &obj->m[obj->n++];
	memset(m, 0, sizeof(*m));
	m->key = key.data;
	return m;
}

/*
 * json_members
 *		Read an object (r->p at its brace) whose members' values are at
 *		depth + 1.  With obj, record its members there (the caller frees
 *		them, also on failure); without, only check its syntax.
 */
static bool
json_members(JsonReader *r, int depth, JsonObject *obj)
{
	bool		more = true;

	if (json_open(r, '}'))
		return true;
	while (more)
	{
		JsonMember *m = NULL;

		json_ws(r);
		if (obj != NULL)
		{
			if ((m = json_add_member(r, obj)) == NULL)
				return false;
		}
		else if (!json_string(r, NULL))
			return false;
		json_ws(r);
		if (r->p >= r->end || *r->p != ':')
			return false;
		r->p++;
		if (!json_value(r, depth + 1, m) || !json_next(r, '}', &more))
			return false;
	}
	return true;
}

/*
 * json_array
 *		Read an array (r->p at its bracket) whose elements are at depth + 1.
 *		With m, record the strings in it; it is a JSON_STRING_ARRAY when
 *		every element is a string.
 */
static bool
json_array(JsonReader *r, int depth, JsonMember *m)
{
	bool		all_strings = true;
	bool		more = true;

	if (json_open(r, ']'))
		more = false;
	while (more)
	{
		json_ws(r);
		if (r->p < r->end && *r->p == '"' && m != NULL)
		{
			if (!json_string(r, &m->str))
				return false;
			/* Count the NUL too: it separates the array's strings. */
			m->str.len++;
			m->nstrings++;
		}
		else
		{
			all_strings = false;
			if (!json_value(r, depth + 1, NULL))
				return false;
		}
		if (!json_next(r, ']', &more))
			return false;
	}
	if (m)
		m->type = all_strings ? JSON_STRING_ARRAY : JSON_OTHER;
	return true;
}

/*
 * json_value
 *		Read any value; when m is given, record strings, numbers and arrays
 *		of strings in it.
 */
static bool
json_value(JsonReader *r, int depth, JsonMember *m)
{
	if (depth > JSON_MAX_DEPTH)
		return false;
	json_ws(r);
	if (r->p >= r->end)
		return false;
	switch (*r->p)
	{
		case '"':
			if (m)
				m->type = JSON_STRING;
			return json_string(r, m ? &m->str : NULL);
		case '{':
			return json_members(r, depth, NULL);
		case '[':
			return json_array(r, depth, m);
		case 't':
			return json_literal(r, "true");
		case 'f':
			return json_literal(r, "false");
		case 'n':
			return json_literal(r, "null");
		default:
			if (m)
				m->type = JSON_NUMBER;
			return json_number(r, m ? &m->num : &(double) {0});
	}
}

/*
 * json_object_free
 *		Free the members' keys and strings; obj is empty afterwards.
 */
static void
json_object_free(JsonObject *obj)
{
	for (int i = 0; i < obj->n; i++)
	{
		free(obj->m[i].key);
		emu_buf_free(&obj->m[i].str);
	}
	obj->n = 0;
}

/*
 * json_object
 *		Parse text as exactly one JSON object; duplicate keys are refused.
 */
static bool
json_object(const char *text, size_t len, JsonObject *obj)
{
	JsonReader	r = {text, text + len};

	memset(obj, 0, sizeof(*obj));
	json_ws(&r);
	if (r.p >= r.end || *r.p != '{' || !json_members(&r, 0, obj))
	{
		json_object_free(obj);
		return false;
	}
	json_ws(&r);
	if (r.p != r.end)
	{
		json_object_free(obj);
		return false;
	}
	return true;
}

/*
 * json_get
 *		The member called key, or NULL.
 */
static const JsonMember *
json_get(const JsonObject *obj, const char *key)
{
	for (int i = 0; i < obj->n; i++)
		if (strcmp(obj->m[i].key, key) == 0)
			return &obj->m[i];
	return NULL;
}

/*
 * json_is_string
 *		Is member key the string value (with no NUL in it)?
 */
static bool
json_is_string(const JsonObject *obj, const char *key, const char *value)
{
	const JsonMember *m = json_get(obj, key);

	return m != NULL && m->type == JSON_STRING &&
		strlen(m->str.data ? m->str.data : "") == m->str.len &&
		strcmp(m->str.data ? m->str.data : "", value) == 0;
}

/* --- the JWT ------------------------------------------------------------- */

typedef struct JwtParts
{
	const char *part[3];
	size_t		len[3];
	size_t		signed_len;		/* header.payload */
} JwtParts;

/*
 * split_jwt
 *		Three non-empty parts separated by dots.
 */
static bool
split_jwt(const char *jwt, size_t len, JwtParts *parts)
{
	const char *p = jwt;
	const char *end = jwt + len;

	for (int i = 0; i < 3; i++)
	{
		const char *dot = memchr(p, '.', end - p);

		if (i < 2 && dot == NULL)
			return false;
		if (i == 2)
		{
			if (dot != NULL)
				return false;
			dot = end;
		}
		parts->part[i] = p;
		parts->len[i] = dot - p;
		if (parts->len[i] == 0)
			return false;
		p = dot + 1;
	}
	parts->signed_len = parts->len[0] + 1 + parts->len[1];
	return true;
}

/*
 * decode_header
 *		Split the JWT and parse its header; returns NULL or an error.
 */
static const char *
decode_header(const char *jwt, size_t len, JwtParts *parts, JsonObject *header)
{
	EmuBuf		buf = {0};
	bool		ok;

	if (!split_jwt(jwt, len, parts))
		return "JWT is malformed: expected three dot-separated parts";
	if (!emu_base64url_decode(parts->part[0], parts->len[0], &buf))
	{
		emu_buf_free(&buf);
		return "JWT header is not base64url";
	}
	ok = json_object(buf.data, buf.len, header);
	emu_buf_free(&buf);
	if (!ok)
		return "JWT header is not a JSON object";
	return NULL;
}

/*
 * copy_kid
 *		Copy the header's kid to kid, when it is a string that fits and holds
 *		no NUL (the log and fault keys are C strings).
 */
static bool
copy_kid(const JsonObject *header, char *kid, size_t kid_size)
{
	const JsonMember *m = json_get(header, "kid");

	if (m == NULL || m->type != JSON_STRING || m->str.len >= kid_size ||
		memchr(m->str.data, '\0', m->str.len) != NULL)
		return false;
	memcpy(kid, m->str.data, m->str.len + 1);
	return true;
}

/*
 * emu_iam_jwt_kid
 *		The kid of a JWT's header, if it has one (for fault keys and the
 *		log; not verified).
 */
bool
emu_iam_jwt_kid(const char *jwt, size_t len, char *kid, size_t kid_size)
{
	JwtParts	parts;
	JsonObject	header;
	bool		found;

	if (decode_header(jwt, len, &parts, &header) != NULL)
		return false;
	found = copy_kid(&header, kid, kid_size);
	json_object_free(&header);
	return found;
}

/*
 * verify_signature
 *		RSASSA-PSS SHA-256, MGF1 SHA-256, salt length exactly 32.
 */
static bool
verify_signature(EVP_PKEY *pkey, const char *data, size_t len,
				 const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool		ok;

	ok = md != NULL &&
		EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, JWT_SALT_LEN) > 0 &&
		EVP_DigestVerify(md, sig, siglen, (const unsigned char *) data, len) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

/*
 * number_claim
 *		A numeric claim, or false.
 */
static bool
number_claim(const JsonObject *obj, const char *key, double *v)
{
	const JsonMember *m = json_get(obj, key);

	if (m == NULL || m->type != JSON_NUMBER)
		return false;
	*v = m->num;
	return true;
}

/*
 * find_key
 *		The registered key whose id is the len bytes at id, or NULL.
 */
static const SaKey *
find_key(const char *id, size_t len)
{
	for (int i = 0; i < nsa_keys; i++)
		if (strlen(sa_keys[i].id) == len && memcmp(sa_keys[i].id, id, len) == 0)
			return &sa_keys[i];
	return NULL;
}

/*
 * check_header
 *		The header must say typ "JWT" and alg "PS256" and name a registered
 *		key (*key).  Returns NULL or what is wrong.
 */
static const char *
check_header(const JsonObject *header, const SaKey **key)
{
	const JsonMember *kid = json_get(header, "kid");

	if (!json_is_string(header, "typ", "JWT"))
		return "JWT header typ must be \"JWT\"";
	if (!json_is_string(header, "alg", "PS256"))
		return "JWT header alg must be \"PS256\"";
	if (kid == NULL || kid->type != JSON_STRING)
		return "JWT header has no kid";
	*key = find_key(kid->str.data, kid->str.len);
	if (*key == NULL)
		return "unknown key id";
	return NULL;
}

/*
 * check_signature
 *		The third part must be a signature of the first two by key.
 *		Returns NULL or what is wrong.
 */
static const char *
check_signature(const char *jwt, const JwtParts *parts, const SaKey *key)
{
	EmuBuf		sig = {0};
	const char *err = NULL;

	if (!emu_base64url_decode(parts->part[2], parts->len[2], &sig))
		err = "JWT signature is not base64url";
	else if (!verify_signature(key->pkey, jwt, parts->signed_len,
							   (const uint8_t *) sig.data, sig.len))
		err = "JWT signature is invalid";
	emu_buf_free(&sig);
	return err;
}

/*
 * check_audience
 *		aud must be the IAM token URL, or an array of strings holding it.
 *		Returns NULL or what is wrong.
 */
static const char *
check_audience(const JsonObject *payload)
{
	const JsonMember *m = json_get(payload, "aud");

	if (m == NULL)
		return "JWT has no aud";
	if (m->type == JSON_STRING && json_is_string(payload, "aud", JWT_AUDIENCE))
		return NULL;
	if (m->type == JSON_STRING_ARRAY)
	{
		const char *s = m->str.data;

		for (int i = 0; i < m->nstrings; i++)
		{
			if (strcmp(s, JWT_AUDIENCE) == 0)
				return NULL;
			s += strlen(s) + 1;
		}
	}
	return "JWT aud must be " JWT_AUDIENCE;
}

/*
 * check_times
 *		iat and exp must be numbers, with iat no later than the clock (plus
 *		the skew allowed), exp later than the clock, and at most an hour
 *		between them.  The clock is moved by --jwt-clock-offset.  Returns
 *		NULL or what is wrong.
 */
static const char *
check_times(const JsonObject *payload)
{
	double		iat,
				exp,
				now;

	if (!number_claim(payload, "iat", &iat))
		return "JWT has no numeric iat";
	if (!number_claim(payload, "exp", &exp))
		return "JWT has no numeric exp";
	now = (double) emu_wall_us() / 1e6 + (double) jwt_clock_offset;
	if (iat > now + JWT_CLOCK_SKEW)
		return "iat is in the future";
	if (exp <= now)
		return "JWT is expired";
	if (exp < iat)
		return "JWT exp is before iat";
	if (exp - iat > JWT_MAX_LIFETIME)
		return "JWT lifetime (exp - iat) exceeds 3600 seconds";
	return NULL;
}

/*
 * check_payload
 *		The second part must be a JSON object whose iss is the key's
 *		service account, with the right aud, iat and exp.  Returns NULL or
 *		what is wrong.
 */
static const char *
check_payload(const JwtParts *parts, const SaKey *key)
{
	EmuBuf		body = {0};
	JsonObject	payload;
	const char *err;
	bool		ok;

	if (!emu_base64url_decode(parts->part[1], parts->len[1], &body))
	{
		emu_buf_free(&body);
		return "JWT payload is not base64url";
	}
	ok = json_object(body.data, body.len, &payload);
	emu_buf_free(&body);
	if (!ok)
		return "JWT payload is not a JSON object";
	if (!json_is_string(&payload, "iss", key->sa_id))
		err = "JWT iss is not the service account of the key";
	else if ((err = check_audience(&payload)) == NULL)
		err = check_times(&payload);
	json_object_free(&payload);
	return err;
}

/*
 * emu_iam_verify_jwt
 *		Check a JWT completely (see the top of this file): header, then
 *		signature, then payload.  Returns NULL if it is good or the reason
 *		it is not.  *sa is the service account of the key the header names
 *		(once the key is known, for the log; NULL before).  kid receives the
 *		header's kid when there is one (else "").
 */
const char *
emu_iam_verify_jwt(const char *jwt, size_t len, char *kid, size_t kid_size,
				   const char **sa)
{
	JwtParts	parts;
	JsonObject	header;
	const SaKey *key = NULL;
	const char *err;

	kid[0] = '\0';
	*sa = NULL;
	err = decode_header(jwt, len, &parts, &header);
	if (err != NULL)
		return err;
	copy_kid(&header, kid, kid_size);
	err = check_header(&header, &key);
	json_object_free(&header);
	if (err != NULL)
		return err;
	*sa = service_accounts[find_sa(key->sa_id)].id;

	err = check_signature(jwt, &parts, key);
	if (err == NULL)
		err = check_payload(&parts, key);
	return err;
}

/*-------------------------------------------------------------------------
 *
 * quota.c
 *		  Request quotas of the API emulator (--quota-inflight,
 *		  --quota-rate), as a real service throttles a caller.
 *
 * Quotas count per bearer token: calls that send an "authorization" value
 * are counted under that value (calls without one, such as
 * IamTokenService.Create, are not counted).  A call the quota admits holds
 * one of its token's in-flight places until its status is handed to gRPC
 * or the call ends otherwise (cancelled, hung and given up); it also takes
 * one place in its token's last second.  A call beyond either limit is
 * refused (service.c answers RESOURCE_EXHAUSTED) and counts against
 * neither: a client that waits gets through.
 *
 *	--quota-inflight K	at most K admitted calls in flight per token
 *	--quota-rate R		at most R admitted calls per token in any second
 *						(a sliding window over the last R arrivals)
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

/* Largest K and R accepted. */
#define MAX_QUOTA 100000

/* One token's counts. */
struct EmuQuotaToken
{
	char	   *value;			/* the authorization value */
	size_t		len;
	int			inflight;		/* admitted calls not yet answered */
	int64_t    *arrivals;		/* ring of the last quota_rate admissions,
								 * monotonic us */
	int			narrivals;
	int			oldest;			/* index of the oldest in the ring */
	EmuQuotaToken *next;
};

static int	quota_inflight;		/* 0: no limit */
static int	quota_rate;			/* 0: no limit */
static EmuQuotaToken *quota_tokens;

/*
 * parse_quota
 *		A --quota-* value: 1..MAX_QUOTA; exits with a message otherwise.
 */
static int
parse_quota(const char *opt, const char *arg)
{
	char	   *end;
	long long	v = strtoll(arg, &end, 10);

	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 1 || v > MAX_QUOTA)
		emu_fatal("%s %s: expected 1..%d", opt, arg, MAX_QUOTA);
	return (int) v;
}

/*
 * emu_quota_set_inflight
 *		--quota-inflight K
 */
void
emu_quota_set_inflight(const char *arg)
{
	quota_inflight = parse_quota("--quota-inflight", arg);
}

/*
 * emu_quota_set_rate
 *		--quota-rate R
 */
void
emu_quota_set_rate(const char *arg)
{
	quota_rate = parse_quota("--quota-rate", arg);
}

/*
 * find_token
 *		The counts of a token, made on first use.
 */
static EmuQuotaToken *
find_token(EmuBytes value)
{
	EmuQuotaToken *t;

	for (t = quota_tokens; t != NULL; t = t->next)
		if (t->len == value.len && memcmp(t->value, value.data, value.len) == 0)
			return t;
	t = emu_malloc(sizeof(EmuQuotaToken));
	memset(t, 0, sizeof(*t));
	t->value = emu_malloc(value.len + 1);
	memcpy(t->value, value.data, value.len);
	t->value[value.len] = '\0';
	t->len = value.len;
	if (quota_rate > 0)
		t->arrivals = emu_malloc(quota_rate * sizeof(int64_t));
	t->next = quota_tokens;
	quota_tokens = t;
	return t;
}

/*
 * emu_quota_admit
 *		Count a call that sent the authorization value token (has_token
 *		false: none, not counted).  Returns false when a quota refuses it;
 *		otherwise *held is what the call holds in flight (NULL for nothing),
 *		to give back with emu_quota_release.
 */
bool
emu_quota_admit(bool has_token, EmuBytes token, EmuQuotaToken **held)
{
	EmuQuotaToken *t;
	int64_t		now = emu_now_us();

	*held = NULL;
	if (!has_token || (quota_inflight == 0 && quota_rate == 0))
		return true;
	t = find_token(token);
	if (quota_inflight > 0 && t->inflight >= quota_inflight)
		return false;
	if (quota_rate > 0 && t->narrivals == quota_rate &&
		now - t->arrivals[t->oldest] < 1000000)
		return false;

	if (quota_rate > 0)
	{
		if (t->narrivals < quota_rate)
			t->arrivals[t->narrivals++] = now;
		else
		{
			t->arrivals[t->oldest] = now;
			t->oldest = (t->oldest + 1) % quota_rate;
		}
	}
	if (quota_inflight > 0)
	{
		t->inflight++;
		*held = t;
	}
	return true;
}

/*
 * emu_quota_release
 *		The call holding *held is no longer in flight; *held becomes NULL
 *		(so releasing twice is harmless).
 */
void
emu_quota_release(EmuQuotaToken **held)
{
	if (*held == NULL)
		return;
	(*held)->inflight--;
	*held = NULL;
}

/*-------------------------------------------------------------------------
 *
 * faults.c
 *		  Injected faults of the API emulator (--fault SPEC).
 *
 * SPEC is KIND[=ARG][@method:METHOD][@KEY].  With @KEY a spec applies only
 * to calls whose request names KEY in its own id field (folder_id of List,
 * cluster_id of ListBackups and Backup, backup_id of Get and Delete,
 * operation_id of OperationService.Get, cloud_id of
 * FolderService.List, the JWT's key id of IamTokenService.Create); with
 * @method:METHOD only to calls of that method (BackupService.List, ...);
 * with both, to calls matching both; with neither, to every call of every
 * method (also one whose request did not parse).  Each spec counts the
 * calls it applies to; "every Nth" kinds fire on the Nth, 2Nth, ... of
 * them.
 *
 *	latency=MS			delay every reply by MS milliseconds
 *	unavailable[=N]		every Nth call: UNAVAILABLE (default N = 1)
 *	exhausted[=N]		every Nth call: RESOURCE_EXHAUSTED
 *	status=CODE[:N]		every Nth call: CODE, message "injected CODE"
 *	hang[=N]			every Nth call: never reply
 *	garbage[=N]			every Nth successful reply: undecodable bytes
 *	token_loop			list replies always carry the page-2 token
 *	unknown_fields		unknown fields in every Backup and in the reply
 *	stray_item			every Backup answers another key: "-elsewhere" added
 *						to its id, folder_id and source_cluster_id
 *	oversize=BYTES		pad successful replies with BYTES unknown bytes
 *	echo_token			answer UNAUTHENTICATED quoting the caller's token (a
 *						careless server; the client must not pass it on)
 *	op_error=CODE[:N]	every Nth operation started (BackupService.Delete,
 *						ClusterService.Backup) ends with error CODE, changing
 *						nothing
 *	lose_reply[=N]		the first N successful Delete / Backup calls start
 *						their operation but answer UNAVAILABLE, as if the
 *						reply were lost (default N = 1)
 *
 * How service.c applies the effect is described there.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

/* Largest oversize padding: 1 GB. */
#define MAX_OVERSIZE (INT64_C(1) << 30)

typedef enum EmuFaultKind
{
	FAULT_LATENCY,
	FAULT_UNAVAILABLE,
	FAULT_EXHAUSTED,
	FAULT_STATUS,
	FAULT_HANG,
	FAULT_GARBAGE,
	FAULT_TOKEN_LOOP,
	FAULT_UNKNOWN_FIELDS,
	FAULT_STRAY_ITEM,
	FAULT_OVERSIZE,
	FAULT_ECHO_TOKEN,
	FAULT_OP_ERROR,
	FAULT_LOSE_REPLY
} EmuFaultKind;

/* What a kind accepts after '='. */
typedef enum FaultArg
{
	ARG_NONE,					/* no argument allowed */
	ARG_EVERY,					/* optional N >= 1, default 1 */
	ARG_FIRST,					/* optional N >= 1, default 1: the first N */
	ARG_REQUIRED,				/* required non-negative number */
	ARG_STATUS					/* CODE[:N] */
} FaultArg;

typedef struct FaultKindInfo
{
	const char *name;
	EmuFaultKind kind;
	FaultArg	arg;
} FaultKindInfo;

static const FaultKindInfo fault_kinds[] = {
	{"latency", FAULT_LATENCY, ARG_REQUIRED},
	{"unavailable", FAULT_UNAVAILABLE, ARG_EVERY},
	{"exhausted", FAULT_EXHAUSTED, ARG_EVERY},
	{"status", FAULT_STATUS, ARG_STATUS},
	{"hang", FAULT_HANG, ARG_EVERY},
	{"garbage", FAULT_GARBAGE, ARG_EVERY},
	{"token_loop", FAULT_TOKEN_LOOP, ARG_NONE},
	{"unknown_fields", FAULT_UNKNOWN_FIELDS, ARG_NONE},
	{"stray_item", FAULT_STRAY_ITEM, ARG_NONE},
	{"oversize", FAULT_OVERSIZE, ARG_REQUIRED},
	{"echo_token", FAULT_ECHO_TOKEN, ARG_NONE},
	{"op_error", FAULT_OP_ERROR, ARG_STATUS},
	{"lose_reply", FAULT_LOSE_REPLY, ARG_FIRST},
};

typedef struct EmuFault
{
	EmuFaultKind kind;
	int64_t		value;			/* latency ms or oversize bytes */
	int64_t		every;			/* fire on every Nth matching call (ARG_FIRST:
								 * on the first N) */
	grpc_status_code code;		/* status to return */
	char	   *message;		/* status message */
	char	   *key;			/* NULL: any key */
	char	   *method;			/* NULL: any method */
	uint64_t	count;			/* matching calls so far */
} EmuFault;

static EmuFault *faults;
static int	nfaults;

/*
 * parse_number
 *		Parse a decimal int64 in [min, max]; whole string.
 */
static bool
parse_number(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char	   *end;
	long long	v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * parse_fault_scope
 *		The part of a --fault SPEC after its first '@' (scope, changed in
 *		place): @KEY, @method:METHOD, or both in either order.  Sets f->key
 *		and f->method; exits with a message on a bad one.
 */
static void
parse_fault_scope(const char *spec, char *scope, EmuFault *f)
{
	char	   *scope_method = NULL;

	if (strncmp(scope, "method:", 7) == 0)
	{
		/* @method:METHOD[@KEY] */
		char	   *at = strchr(scope, '@');

		scope_method = scope + 7;
		if (at != NULL)
		{
			*at = '\0';
			f->key = emu_strdup(at + 1);
		}
	}
	else
	{
		/* @KEY[@method:METHOD] */
		char	   *m = strstr(scope, "@method:");

		if (m != NULL)
		{
			*m = '\0';
			scope_method = m + 8;
		}
		f->key = emu_strdup(scope);
	}
	if (f->key != NULL && f->key[0] == '\0')
		emu_fatal("--fault %s: empty key after @", spec);
	if (scope_method != NULL)
	{
		if (!emu_method_known(scope_method))
			emu_fatal("--fault %s: unknown method \"%s\" (expected "
					  "BackupService.Get, BackupService.List, "
					  "ClusterService.ListBackups, ClusterService.List, "
					  "ClusterService.Get, BackupService.Delete, "
					  "ClusterService.Backup, OperationService.Get, "
					  "FolderService.List or IamTokenService.Create)",
					  spec, scope_method);
		f->method = emu_strdup(scope_method);
	}
}

/*
 * find_fault_kind
 *		The kind called name; exits with a message if there is none.
 */
static const FaultKindInfo *
find_fault_kind(const char *spec, const char *name)
{
	for (size_t i = 0; i < sizeof(fault_kinds) / sizeof(fault_kinds[0]); i++)
		if (strcmp(name, fault_kinds[i].name) == 0)
			return &fault_kinds[i];
	emu_fatal("--fault %s: unknown fault kind \"%s\"", spec, name);
}

/*
 * parse_fault_arg
 *		What follows '=' in a --fault SPEC (arg, changed in place; NULL when
 *		there is no '='), as the kind accepts it: sets f->every, f->value
 *		or f->code.  Exits with a message on a bad one.
 */
static void
parse_fault_arg(const char *spec, const FaultKindInfo *info, char *arg,
				EmuFault *f)
{
	char	   *colon;

	switch (info->arg)
	{
		case ARG_NONE:
			if (arg != NULL)
				emu_fatal("--fault %s: %s takes no argument", spec, info->name);
			break;
		case ARG_EVERY:
		case ARG_FIRST:
			if (arg != NULL && !parse_number(arg, 1, INT64_MAX, &f->every))
				emu_fatal("--fault %s: expected %s=N with N >= 1", spec, info->name);
			break;
		case ARG_REQUIRED:
			if (arg == NULL ||
				!parse_number(arg, 0,
							  f->kind == FAULT_OVERSIZE ? MAX_OVERSIZE : INT64_C(86400000),
							  &f->value))
				emu_fatal("--fault %s: expected %s=%s", spec, info->name,
						  f->kind == FAULT_OVERSIZE ? "BYTES (at most 1 GB)" : "MS");
			break;
		case ARG_STATUS:
			if (arg == NULL)
				emu_fatal("--fault %s: expected %s=CODE_NAME[:N]", spec, info->name);
			colon = strchr(arg, ':');
			if (colon != NULL)
			{
				*colon = '\0';
				if (!parse_number(colon + 1, 1, INT64_MAX, &f->every))
					emu_fatal("--fault %s: expected %s=CODE_NAME:N with N >= 1",
							  spec, info->name);
			}
			if (!emu_status_from_name(arg, &f->code) || f->code == GRPC_STATUS_OK)
				emu_fatal("--fault %s: unknown or OK status code \"%s\"", spec, arg);
			break;
	}
}

/*
 * set_fault_status
 *		The status code and message an error kind answers with.
 */
static void
set_fault_status(EmuFault *f)
{
	char		msg[64];

	switch (f->kind)
	{
		case FAULT_UNAVAILABLE:
			f->code = GRPC_STATUS_UNAVAILABLE;
			f->message = emu_strdup("Service is temporarily unavailable");
			break;
		case FAULT_EXHAUSTED:
			f->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			f->message = emu_strdup("Quota exceeded");
			break;
		case FAULT_STATUS:
		case FAULT_OP_ERROR:
			snprintf(msg, sizeof(msg), "injected %s", emu_status_name(f->code));
			f->message = emu_strdup(msg);
			break;
		default:
			break;
	}
}

/*
 * emu_fault_add
 *		Parse a --fault SPEC (KIND[=ARG][@SCOPE]) and add it; exits with a
 *		message on a bad one.
 */
void
emu_fault_add(const char *spec)
{
	char	   *copy = emu_strdup(spec);
	char	   *at = strchr(copy, '@');
	char	   *eq;
	const FaultKindInfo *info;
	EmuFault	f;

	memset(&f, 0, sizeof(f));
	f.every = 1;
	if (at != NULL)
	{
		*at = '\0';
		parse_fault_scope(spec, at + 1, &f);
	}
	eq = strchr(copy, '=');
	if (eq != NULL)
		*eq = '\0';
	info = find_fault_kind(spec, copy);
	f.kind = info->kind;
	parse_fault_arg(spec, info, eq != NULL ? eq + 1 : NULL, &f);
	set_fault_status(&f);

	faults = emu_realloc(faults, (nfaults + 1) * sizeof(EmuFault));
	faults[nfaults++] = f;
	free(copy);
}

/*
 * emu_fault_count
 *		Number of fault specs.
 */
int
emu_fault_count(void)
{
	return nfaults;
}

/*
 * emu_faults_apply
 *		Count one call against every spec that applies to it and return the
 *		combined effect.  method is the method's short name (NULL for an
 *		unknown method: only unscoped specs apply); key is the request's id
 *		field, NULL if the request did not parse (then only specs without
 *		@KEY apply).  Of several error specs firing together, the first on
 *		the command line wins.
 */
void
emu_faults_apply(const char *method, const char *key, EmuFaultEffect *effect)
{
	memset(effect, 0, sizeof(*effect));
	for (int i = 0; i < nfaults; i++)
	{
		EmuFault   *f = &faults[i];
		bool		fires;

		if (f->key != NULL && (key == NULL || strcmp(f->key, key) != 0))
			continue;
		if (f->method != NULL && (method == NULL || strcmp(f->method, method) != 0))
			continue;
		f->count++;
		fires = (f->count % (uint64_t) f->every) == 0;

		switch (f->kind)
		{
			case FAULT_LATENCY:
				effect->delay_ms += f->value;
				break;
			case FAULT_UNAVAILABLE:
			case FAULT_EXHAUSTED:
			case FAULT_STATUS:
				if (fires && !effect->error)
				{
					effect->error = true;
					effect->error_code = f->code;
					effect->error_message = f->message;
					effect->error_kind = f->kind == FAULT_UNAVAILABLE ? "unavailable" :
						f->kind == FAULT_EXHAUSTED ? "exhausted" : "status";
				}
				break;
			case FAULT_HANG:
				if (fires)
					effect->hang = true;
				break;
			case FAULT_GARBAGE:
				if (fires)
					effect->garbage = true;
				break;
			case FAULT_TOKEN_LOOP:
				effect->token_loop = true;
				break;
			case FAULT_UNKNOWN_FIELDS:
				effect->unknown_fields = true;
				break;
			case FAULT_STRAY_ITEM:
				effect->stray_item = true;
				break;
			case FAULT_OVERSIZE:
				if (f->value > effect->oversize)
					effect->oversize = f->value;
				break;
			case FAULT_ECHO_TOKEN:
				effect->echo_token = true;
				break;
			case FAULT_OP_ERROR:
				if (fires && !effect->op_error)
				{
					effect->op_error = true;
					effect->op_error_code = f->code;
					effect->op_error_message = f->message;
				}
				break;
			case FAULT_LOSE_REPLY:
				if (f->count <= (uint64_t) f->every)
					effect->lose_reply = true;
				break;
		}
	}
}

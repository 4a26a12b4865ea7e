/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  What a backend keeps of each user mapping across queries: a gRPC
 *		  channel per service, and the IAM token credentials.c obtained.
 *
 * One cache, keyed by the user mapping's OID, holds per service (Managed
 * Redis, IAM, Resource Manager, Operation: each its endpoint) the channel
 * new scans get, and the user mapping's cached token (RbCachedToken, filled in by
 * credentials.c, which asks for it here).
 * When ALTER SERVER or ALTER USER MAPPING changes what a channel was made
 * from, or DROP removes its user mapping (syscache invalidation, as
 * postgres_fdw's connection.c does), the channel is retired: scans already
 * using it keep it until they end, new scans get a new channel.  A channel
 * whose calls found the service unreachable through every attempt is
 * retired too, so that the next query connects afresh.  Retired channels
 * are closed once no scan uses them, at the latest when the transaction
 * ends.  The same invalidation drops the cached token.  Entries are never
 * removed (a user mapping's entry only loses its channels and token), so a
 * pointer to one stays valid however invalidation interleaves with a scan.
 *
 * One table, services[], says of each service which server option gives
 * its endpoint and how messages name it (remote.c and fetch.c name the
 * service a failed call went to).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "redis_backup_fdw.h"

/* Largest CA file read. */
#define RB_MAX_CA_FILE_SIZE (1024 * 1024)

/* What the extension knows of each service it calls. */
typedef struct RbServiceInfo
{
	const char *name;			/* how messages name it */
	const char *endpoint_option;	/* the server option of its host:port */
	size_t		endpoint_offset;	/* ... in RbServerOptions */
} RbServiceInfo;

static const RbServiceInfo services[] = {
	[RB_SERVICE_MDB] = {
		"the Managed Redis API", "endpoint",
		offsetof(RbServerOptions, endpoint)
	},
	[RB_SERVICE_IAM] = {
		"the IAM API", "iam_endpoint",
		offsetof(RbServerOptions, iam_endpoint)
	},
	[RB_SERVICE_RESOURCE_MANAGER] = {
		"the Resource Manager API", "resource_manager_endpoint",
		offsetof(RbServerOptions, resource_manager_endpoint)
	},
	[RB_SERVICE_OPERATION] = {
		"the Operation API", "operation_endpoint",
		offsetof(RbServerOptions, operation_endpoint)
	},
};

/* A channel, and the scans using it. */
struct RbConnection
{
	RbChannel  *channel;
	Oid			umid;			/* user mapping it was made for */
	RbService	service;
	int			active_scans;	/* scans using the channel now */
	bool		retired;		/* no new scans; close when unused */
	RbConnection *next_retired; /* in retired_connections */
};

/* Entry of MappingHash: what is kept of one user mapping. */
typedef struct RbMappingEntry
{
	Oid			umid;			/* hash key */
	RbConnection *current[RB_NUM_SERVICES]; /* new scans' channels, or NULL */
	RbCachedToken token;		/* credentials.c's */
	uint32		server_hashvalue;	/* syscache hash of the server */
	uint32		mapping_hashvalue;	/* syscache hash of the user mapping */
} RbMappingEntry;

static HTAB *MappingHash = NULL;
static RbConnection *retired_connections = NULL;

static RbMappingEntry *mapping_entry(UserMapping *user);
static void retire(RbConnection *conn);
static void close_unused_retired(void);
static void invalidation_callback(Datum arg, int cacheid, uint32 hashvalue);
static void xact_callback(XactEvent event, void *arg);
static RbChannel *open_channel(const RbServerOptions *opts,
							   RbService service);

/*
 * mapping_entry
 *		The cache entry of a user mapping, made on first use.
 */
static RbMappingEntry *
mapping_entry(UserMapping *user)
{
	RbMappingEntry *entry;
	bool		found;

	if (MappingHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RbMappingEntry);
		MappingHash = hash_create("redis_backup_fdw user mappings", 8, &ctl,
								  HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  invalidation_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  invalidation_callback, (Datum) 0);
		RegisterXactCallback(xact_callback, NULL);
	}

	entry = hash_search(MappingHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(entry->current, 0, sizeof(entry->current));
		memset(&entry->token, 0, sizeof(entry->token));
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID,
								  ObjectIdGetDatum(user->serverid));
		entry->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID,
								  ObjectIdGetDatum(user->umid));
	}
	return entry;
}

/*
 * rb_acquire_connection
 *		The channel of a user mapping to a service, opened as needed.  The
 *		caller must rb_release_connection() it when its scan ends (also on
 *		error: scans do so from a memory context callback).
 */
RbConnection *
rb_acquire_connection(UserMapping *user, const RbServerOptions *opts,
					  RbService service)
{
	RbMappingEntry *entry;
	RbConnection *conn;

	entry = mapping_entry(user);
	close_unused_retired();

	if (entry->current[service] == NULL)
	{
		conn = MemoryContextAllocZero(TopMemoryContext, sizeof(RbConnection));
		conn->umid = user->umid;
		conn->service = service;
		PG_TRY();
		{
			conn->channel = open_channel(opts, service);
		}
		PG_CATCH();
		{
			pfree(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		entry->current[service] = conn;
	}

	entry->current[service]->active_scans++;
	return entry->current[service];
}

/*
 * rb_cached_token
 *		The cached IAM token of a user mapping (token NULL: none yet).
 */
RbCachedToken *
rb_cached_token(UserMapping *user)
{
	return &mapping_entry(user)->token;
}

/*
 * rb_drop_cached_token
 *		Drop a cached token, wiping it.  Must not raise errors: runs from the
 *		syscache callback too.
 */
void
rb_drop_cached_token(RbCachedToken *cached)
{
	cached->generation++;
	if (cached->token == NULL)
		return;
	explicit_bzero(cached->token, strlen(cached->token));
	pfree(cached->token);
	cached->token = NULL;
}

/*
 * rb_connection_channel
 *		The channel of an acquired connection.
 */
RbChannel *
rb_connection_channel(RbConnection *conn)
{
	return conn->channel;
}

/*
 * rb_connection_failed
 *		The service was unreachable through conn's channel: gRPC would wait
 *		out its reconnect backoff on it, so new scans get a new channel.
 */
void
rb_connection_failed(RbConnection *conn)
{
	RbMappingEntry *entry;

	if (conn->retired)
		return;
	entry = hash_search(MappingHash, &conn->umid, HASH_FIND, NULL);
	if (entry != NULL && entry->current[conn->service] == conn)
		entry->current[conn->service] = NULL;
	retire(conn);
}

/*
 * rb_release_connection
 *		A scan is done with the connection.  Must not raise errors: it runs
 *		from memory context callbacks during abort too.
 */
void
rb_release_connection(RbConnection *conn)
{
	if (conn->active_scans > 0)
		conn->active_scans--;
}

/*
 * retire
 *		No new scan may use conn; it is closed once no scan uses it.
 */
static void
retire(RbConnection *conn)
{
	conn->retired = true;
	conn->next_retired = retired_connections;
	retired_connections = conn;
}

/*
 * close_unused_retired
 *		Close the retired channels no scan uses any more.
 */
static void
close_unused_retired(void)
{
	RbConnection **link = &retired_connections;

	while (*link != NULL)
	{
		RbConnection *conn = *link;

		if (conn->active_scans > 0)
		{
			link = &conn->next_retired;
			continue;
		}
		*link = conn->next_retired;
		elog(DEBUG1, "redis_backup_fdw: closing a channel of user mapping %u (service %d)",
			 conn->umid, (int) conn->service);
		rb_channel_close(conn->channel);
		pfree(conn);
	}
}

/*
 * xact_callback
 *		At the end of a transaction no scan is open: close what is retired.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		close_unused_retired();
}

/*
 * rb_service_endpoint
 *		host:port of a service, as the server options say.
 */
const char *
rb_service_endpoint(const RbServerOptions *opts, RbService service)
{
	return *(char *const *) ((const char *) opts +
							 services[service].endpoint_offset);
}

/*
 * rb_service_name
 *		How messages name a service: "the Managed Redis API", "the IAM API",
 *		"the Resource Manager API".
 */
const char *
rb_service_name(RbService service)
{
	return services[service].name;
}

/*
 * rb_service_endpoint_option
 *		The server option that says where a service answers.
 */
const char *
rb_service_endpoint_option(RbService service)
{
	return services[service].endpoint_option;
}

/*
 * open_channel
 *		Open a channel to a service as the server options say.
 */
static RbChannel *
open_channel(const RbServerOptions *opts, RbService service)
{
	const char *endpoint = rb_service_endpoint(opts, service);
	RbChannelOptions copts;
	RbChannel  *channel;
	RbStatus	status;
	char	   *ca_pem = NULL;

	if (opts->tls && opts->ca_file != NULL)
	{
		ca_pem = rb_read_server_file(opts->ca_file, "CA file",
									 RB_MAX_CA_FILE_SIZE);
		if (!rb_ca_pem_is_valid(ca_pem))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("CA file \"%s\" holds no PEM certificate",
							opts->ca_file)));
	}

	memset(&copts, 0, sizeof(copts));
	copts.target = endpoint;
	copts.plaintext = !opts->tls;
	copts.ca_pem = ca_pem;

	channel = rb_channel_open(&copts, &status);
	if (ca_pem != NULL)
		pfree(ca_pem);
	if (channel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not open a channel to \"%s\"", endpoint),
				 errdetail_internal("%s: %s", rb_code_name(status.code),
									status.message)));
	return channel;
}

/*
 * invalidation_callback
 *		Retire the channels made from a changed or dropped server or user
 *		mapping and drop its cached token: the next scan starts afresh.
 *		hashvalue 0 means everything changed.
 */
static void
invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	RbMappingEntry *entry;

	hash_seq_init(&scan, MappingHash);
	while ((entry = (RbMappingEntry *) hash_seq_search(&scan)) != NULL)
	{
		int			service;

		if (hashvalue != 0 &&
			!(cacheid == FOREIGNSERVEROID &&
			  entry->server_hashvalue == hashvalue) &&
			!(cacheid == USERMAPPINGOID &&
			  entry->mapping_hashvalue == hashvalue))
			continue;
		for (service = 0; service < RB_NUM_SERVICES; service++)
		{
			if (entry->current[service] != NULL)
				retire(entry->current[service]);
			entry->current[service] = NULL;
		}
		rb_drop_cached_token(&entry->token);
	}
}

/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Channel management: one gRPC channel per user mapping per backend.
 *
 * Channels are cached across queries, keyed by the user mapping's OID and
 * the service (Managed Redis, IAM, Resource Manager: each its endpoint).
 * When ALTER SERVER or ALTER USER MAPPING changes what a channel was made
 * from, or DROP removes its user mapping (syscache invalidation, as
 * postgres_fdw's connection.c does), the channel is retired: scans already
 * using it keep it until they end, new scans get a new channel.  A channel
 * whose calls found the service unreachable through every attempt is
 * retired too, so that the next query connects afresh.  Retired channels
 * are closed once no scan uses them, at the latest when the transaction
 * ends.
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

/* Key of ConnectionHash. */
typedef struct RbConnectionKey
{
	Oid			umid;			/* user mapping */
	RbService	service;
} RbConnectionKey;

/* Entry of ConnectionHash: the channel new scans of a user mapping get. */
typedef struct RbConnectionEntry
{
	RbConnectionKey key;
	RbConnection *current;		/* NULL until needed */
	uint32		server_hashvalue;	/* syscache hash of the server */
	uint32		mapping_hashvalue;	/* syscache hash of the user mapping */
} RbConnectionEntry;

static HTAB *ConnectionHash = NULL;
static RbConnection *retired_connections = NULL;

static void retire(RbConnection *conn);
static void close_unused_retired(void);
static void invalidation_callback(Datum arg, int cacheid, uint32 hashvalue);
static void xact_callback(XactEvent event, void *arg);
static RbChannel *open_channel(const RbServerOptions *opts,
							   RbService service);

/*
 * rb_acquire_connection
 *		The channel of a user mapping, opened as needed.  The caller must
 *		rb_release_connection() it when its scan ends (also on error: scans
 *		do so from a memory context callback).
 */
RbConnection *
rb_acquire_connection(UserMapping *user, const RbServerOptions *opts,
					  RbService service)
{
	RbConnectionEntry *entry;
	RbConnection *conn;
	RbConnectionKey key;
	bool		found;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(RbConnectionKey);
		ctl.entrysize = sizeof(RbConnectionEntry);
		ConnectionHash = hash_create("redis_backup_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  invalidation_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  invalidation_callback, (Datum) 0);
		RegisterXactCallback(xact_callback, NULL);
	}

	close_unused_retired();

	memset(&key, 0, sizeof(key));
	key.umid = user->umid;
	key.service = service;
	entry = hash_search(ConnectionHash, &key, HASH_ENTER, &found);
	if (!found)
		entry->current = NULL;

	if (entry->current == NULL)
	{
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID,
								  ObjectIdGetDatum(user->serverid));
		entry->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID,
								  ObjectIdGetDatum(user->umid));
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
		entry->current = conn;
	}

	entry->current->active_scans++;
	return entry->current;
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
	RbConnectionEntry *entry;
	RbConnectionKey key;

	if (conn->retired)
		return;
	memset(&key, 0, sizeof(key));
	key.umid = conn->umid;
	key.service = conn->service;
	entry = hash_search(ConnectionHash, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->current == conn)
		entry->current = NULL;
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
				 errdetail("%s: %s", rb_code_name(status.code),
						   status.message)));
	return channel;
}

/*
 * invalidation_callback
 *		Retire channels made from a changed or dropped server or user
 *		mapping, and drop their cached tokens.  hashvalue 0 means everything
 *		changed.
 */
static void
invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	RbConnectionEntry *entry;

	/* A token is only ever obtained for a user mapping that has an entry. */
	if (hashvalue == 0)
		rb_credentials_forget(InvalidOid);
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (RbConnectionEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 entry->mapping_hashvalue == hashvalue))
		{
			if (entry->current != NULL)
				retire(entry->current);
			rb_credentials_forget(entry->key.umid);
			/* the next scan of this user mapping, if any, starts afresh */
			(void) hash_search(ConnectionHash, &entry->key, HASH_REMOVE,
							   NULL);
		}
	}
}

/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Channel management: one gRPC channel per user mapping per backend.
 *
 * Channels are cached across queries, keyed by the user mapping's OID, and
 * rebuilt when ALTER SERVER or ALTER USER MAPPING changes what they were
 * made from (syscache invalidation, as postgres_fdw's connection.c does).
 * A channel still used by an open scan is kept until that scan ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "redis_backup_fdw.h"

/* Largest CA file read. */
#define RB_MAX_CA_FILE_SIZE (1024 * 1024)

/* A cached channel. */
struct RbConnection
{
	Oid			umid;			/* hash key: user mapping OID */
	RbChannel  *channel;		/* NULL when not open */
	int			active_scans;	/* scans using the channel now */
	bool		invalidated;	/* rebuild when no scan uses it */
	uint32		server_hashvalue;	/* syscache hash of the server */
	uint32		mapping_hashvalue;	/* syscache hash of the user mapping */
};

static HTAB *ConnectionHash = NULL;

static void invalidation_callback(Datum arg, int cacheid, uint32 hashvalue);
static RbChannel *open_channel(const RbServerOptions *opts);
static char *read_ca_file(const char *path);

/*
 * rb_acquire_connection
 *		The channel of a user mapping, opened or rebuilt as needed.  The
 *		caller must rb_release_connection() it when its scan ends (also on
 *		error: scans do so from a memory context callback).
 */
RbConnection *
rb_acquire_connection(UserMapping *user, const RbServerOptions *opts)
{
	RbConnection *entry;
	bool		found;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RbConnection);
		ConnectionHash = hash_create("redis_backup_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  invalidation_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  invalidation_callback, (Datum) 0);
	}

	entry = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		entry->channel = NULL;
		entry->active_scans = 0;
		entry->invalidated = false;
	}

	if (entry->channel != NULL && entry->invalidated &&
		entry->active_scans == 0)
	{
		elog(DEBUG1, "redis_backup_fdw: closing channel of user mapping %u",
			 entry->umid);
		rb_channel_close(entry->channel);
		entry->channel = NULL;
	}

	if (entry->channel == NULL)
	{
		entry->invalidated = false;
		entry->server_hashvalue =
			GetSysCacheHashValue1(FOREIGNSERVEROID,
								  ObjectIdGetDatum(user->serverid));
		entry->mapping_hashvalue =
			GetSysCacheHashValue1(USERMAPPINGOID,
								  ObjectIdGetDatum(user->umid));
		entry->channel = open_channel(opts);
	}

	entry->active_scans++;
	return entry;
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
 * open_channel
 *		Open a channel as the server options say.
 */
static RbChannel *
open_channel(const RbServerOptions *opts)
{
	RbChannelOptions copts;
	RbChannel  *channel;
	RbStatus	status;
	char	   *ca_pem = NULL;

	if (opts->tls && opts->ca_file != NULL)
		ca_pem = read_ca_file(opts->ca_file);

	memset(&copts, 0, sizeof(copts));
	copts.target = opts->endpoint;
	copts.plaintext = !opts->tls;
	copts.ca_pem = ca_pem;

	channel = rb_channel_open(&copts, &status);
	if (ca_pem != NULL)
		pfree(ca_pem);
	if (channel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not open a channel to \"%s\"", opts->endpoint),
				 errdetail("%s: %s", rb_code_name(status.code),
						   status.message)));
	return channel;
}

/*
 * read_ca_file
 *		The PEM text of the server option ca_file.
 */
static char *
read_ca_file(const char *path)
{
	FILE	   *f;
	struct stat st;
	char	   *buf;
	size_t		n;

	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open CA file \"%s\": %m", path)));
	if (fstat(fileno(f), &st) != 0 || st.st_size > RB_MAX_CA_FILE_SIZE)
	{
		FreeFile(f);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CA file \"%s\" is not a regular file of at most %d bytes",
						path, RB_MAX_CA_FILE_SIZE)));
	}
	buf = palloc(st.st_size + 1);
	n = fread(buf, 1, st.st_size, f);
	if (ferror(f))
	{
		FreeFile(f);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read CA file \"%s\": %m", path)));
	}
	FreeFile(f);
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN CERTIFICATE-----") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CA file \"%s\" holds no PEM certificate", path)));
	return buf;
}

/*
 * invalidation_callback
 *		Mark channels made from a changed server or user mapping; they are
 *		rebuilt on their next use.  hashvalue 0 means everything changed.
 */
static void
invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	RbConnection *entry;

	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (RbConnection *) hash_seq_search(&scan)) != NULL)
	{
		if (entry->channel == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 entry->mapping_hashvalue == hashvalue))
			entry->invalidated = true;
	}
}

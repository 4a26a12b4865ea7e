-- The redis_backup_fdw demo, run by scripts/demo.sh against the emulator
-- serving test/data/sample.tsv.  psql variable :endpoint is its host:port,
-- :key a service account's authorized key (as `yc iam key create` writes it).

CREATE EXTENSION IF NOT EXISTS redis_backup_fdw;
DROP SERVER IF EXISTS yc CASCADE;

-- The real service is mdb.api.cloud.yandex.net:443 over TLS; the emulator
-- speaks plaintext on loopback.
CREATE SERVER yc FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'endpoint', resource_manager_endpoint :'endpoint',
           iam_endpoint :'endpoint', operation_endpoint :'endpoint',
           tls 'false');

-- Credentials that keep working: the service account's key.  IAM tokens are
-- obtained from it (a signed JWT exchanged with IamTokenService.Create) and
-- refreshed before they expire.  (An IAM token pasted with
-- OPTIONS (iam_token '...') works too, for at most 12 hours.)
CREATE USER MAPPING FOR CURRENT_USER SERVER yc
  OPTIONS (service_account_key :'key');

-- One table with every field of a backup, one with every field of a cluster.
DROP FOREIGN TABLE IF EXISTS redis_backups, redis_clusters;
IMPORT FOREIGN SCHEMA redis FROM SERVER yc INTO public;
\d redis_backups
\d redis_clusters

-- The backups of a folder finished in a given window (BackupService.List).
SELECT id, source_cluster_id, created_at, type
  FROM redis_backups
 WHERE folder_id = 'b1gq0fh8ga5u6gkp3tmn'
   AND created_at >= '2026-11-28' AND created_at < '2026-11-29'
 ORDER BY created_at;

-- One backup by id (BackupService.Get).
SELECT id, started_at, created_at, created_at - started_at AS took,
       source_shard_names
  FROM redis_backups
 WHERE id = 'c9q8ml2bk4r1gvs0ftjd:stream_20261127T092645';

-- The backups of one cluster (ClusterService.ListBackups), per type.
SELECT type, count(*), max(created_at) AS latest
  FROM redis_backups
 WHERE source_cluster_id = 'c9qa3kd1t8vb6hl0mpwe'
 GROUP BY type ORDER BY type;

-- A local inventory of folders joined to their backups: each folder's key
-- goes into its own List call (a parameterized nested loop).
DROP TABLE IF EXISTS inventory;
CREATE TABLE inventory (folder_id text PRIMARY KEY, team text);
INSERT INTO inventory VALUES
  ('b1gq0fh8ga5u6gkp3tmn', 'payments'),
  ('b1g2r7k5mnlp0vd8qe4x', 'search'),
  ('b1gk7t3ujh0c2pw5rn9a', 'archive');
ANALYZE inventory;

SELECT i.team, count(b.id) AS backups, max(b.created_at) AS latest
  FROM inventory i
  LEFT JOIN redis_backups b ON b.folder_id = i.folder_id
 GROUP BY i.team ORDER BY i.team;

-- Which clusters went longest without a backup?
SELECT b.source_cluster_id,
       max(b.created_at) AS last_backup,
       max(gap) AS longest_gap
  FROM inventory i
  JOIN LATERAL (
    SELECT source_cluster_id, created_at,
           created_at - lag(created_at) OVER (PARTITION BY source_cluster_id
                                              ORDER BY created_at) AS gap
      FROM redis_backups b
     WHERE b.folder_id = i.folder_id) b ON true
 GROUP BY b.source_cluster_id ORDER BY longest_gap DESC NULLS LAST;

-- What the scan asks the API, and what it cost.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT i.team, b.id
  FROM inventory i JOIN redis_backups b ON b.folder_id = i.folder_id;

-- Where the token came from, never the token itself.
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM redis_backups WHERE id = 'c9q8ml2bk4r1gvs0ftjd:stream_20261127T092645';

-- The same folders fanned out: an array of keys runs its Lists
-- concurrently (max_concurrent_calls, default 8) instead of one per
-- nested-loop rescan.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM redis_backups
 WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM inventory));

-- Every backup of a cloud: its folders come from FolderService.List.
DROP FOREIGN TABLE IF EXISTS cloud_backups;
CREATE FOREIGN TABLE cloud_backups (id text, folder_id text, created_at timestamptz)
  SERVER yc OPTIONS (cloud_id 'b1gia87mbaomkfvsleds');
SELECT folder_id, count(*), max(created_at) AS latest
  FROM cloud_backups GROUP BY folder_id ORDER BY folder_id;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cloud_backups;

-- The clusters of the folders (ClusterService.List), with their labels.
SELECT folder_id, name, environment, status, labels->>'team' AS team,
       backup_window_start, backup_retain_period_days
  FROM redis_clusters
 WHERE folder_id IN (SELECT folder_id FROM inventory)
 ORDER BY folder_id, name;

-- The compliance report: production clusters with no backup in the last 26
-- hours, with their names and teams, clusters never backed up included.
-- One ClusterService.List per folder, then one ClusterService.ListBackups
-- per production cluster.  The sample data ends at 2026-12-01 00:00 UTC,
-- which stands for now() here.
SELECT c.name, c.labels->>'team' AS team, max(b.created_at) AS last_backup
  FROM redis_clusters c
  LEFT JOIN redis_backups b ON b.source_cluster_id = c.id
 WHERE c.folder_id IN (SELECT folder_id FROM inventory)
   AND c.environment = 'PRODUCTION'
 GROUP BY c.id, c.name, c.labels
HAVING max(b.created_at) IS NULL
    OR max(b.created_at) < timestamptz '2026-12-01 00:00:00+00' - interval '26 hours'
 ORDER BY c.name;

-- Retention of manual backups: the service never removes them.  DELETE
-- needs the option updatable; each row is a BackupService.Delete, whose
-- operation is waited for.  Nothing is transactional remotely: a ROLLBACK
-- would not bring the backups back.  (Older than 7 days before the sample's
-- 2026-12-01, which stands for now().)
ALTER FOREIGN TABLE redis_backups OPTIONS (ADD updatable 'true');
EXPLAIN (COSTS OFF)
DELETE FROM redis_backups
 WHERE folder_id = 'b1gq0fh8ga5u6gkp3tmn' AND type = 'MANUAL'
   AND created_at < timestamptz '2026-12-01 00:00:00+00' - interval '7 days';
DELETE FROM redis_backups
 WHERE folder_id = 'b1gq0fh8ga5u6gkp3tmn' AND type = 'MANUAL'
   AND created_at < timestamptz '2026-12-01 00:00:00+00' - interval '7 days'
RETURNING id, source_cluster_id, created_at;

-- A backup of each production cluster before maintenance
-- (ClusterService.Backup); RETURNING gives the new backups once taken.
INSERT INTO redis_backups (source_cluster_id)
SELECT id FROM redis_clusters
 WHERE folder_id = 'b1gq0fh8ga5u6gkp3tmn' AND environment = 'PRODUCTION'
RETURNING id, source_cluster_id, type, started_at;

-- A query that names no folder, cluster or id cannot run: it says so.
\set ON_ERROR_STOP 0
SELECT count(*) FROM redis_backups;

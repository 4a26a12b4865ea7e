--
-- The clusters table: a foreign table with the option resource 'clusters'
-- shows ClusterService.List (by folder) and Get (by id), through the same
-- engine as the backups.
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR

-- The calls logged since the mark, with the filter each listing sent.
CREATE FUNCTION emulator_filtered_calls()
RETURNS TABLE (method text, arg text, filter text, status text)
LANGUAGE sql AS $$
  SELECT l->>'method',
         COALESCE(l->>'backup_id', l->>'cluster_id', l->>'folder_id',
                  l->>'cloud_id'),
         l->>'filter', l->>'status'
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator)
   ORDER BY (l->>'seq')::bigint
$$;


-- The lines of EXPLAIN (ANALYZE when asked) that this extension writes,
-- which no PostgreSQL version words differently.
CREATE FUNCTION clusters_explain(q text, with_analyze bool DEFAULT false)
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT explain_lines(q, '^ *(Remote|Retries|Pages|Rows Decoded|Bytes|Folder Filter)',
                       with_analyze)
$$;

-- IMPORT FOREIGN SCHEMA makes redis_clusters beside redis_backups; LIMIT TO
-- and EXCEPT go by table name.
IMPORT FOREIGN SCHEMA redis LIMIT TO (redis_clusters) FROM SERVER emu
  INTO public;
\d redis_clusters
CREATE SCHEMA clusters_import;
IMPORT FOREIGN SCHEMA redis EXCEPT (redis_backups) FROM SERVER emu
  INTO clusters_import OPTIONS (folder_id 'b1g-alpha', page_size '2');
SELECT relname, ftoptions FROM pg_foreign_table JOIN pg_class ON oid = ftrelid
 WHERE relnamespace = 'clusters_import'::regnamespace;
SELECT name FROM clusters_import.redis_clusters ORDER BY name;
DROP SCHEMA clusters_import CASCADE;

-- The option takes 'backups' or 'clusters' only.
CREATE FOREIGN TABLE bad_resource (id text) SERVER emu
  OPTIONS (resource 'cluster');
ALTER FOREIGN TABLE redis_clusters OPTIONS (SET resource '');
ALTER FOREIGN TABLE redis_clusters OPTIONS (SET resource 'clusters');

--
-- Keys: folder_id is ClusterService.List, id ClusterService.Get.
--
CALL emulator_mark();
SELECT id, folder_id, name, environment, status
  FROM redis_clusters WHERE folder_id = 'b1g-alpha' ORDER BY id;
SELECT * FROM emulator_filtered_calls();

CALL emulator_mark();
SELECT id, name FROM redis_clusters
 WHERE folder_id IN ('b1g-beta', 'b1g-empty', 'b1g-alpha', 'b1g-beta')
 ORDER BY id;
SELECT method, arg FROM emulator_filtered_calls() ORDER BY arg;

CALL emulator_mark();
SELECT id, name FROM redis_clusters WHERE id = 'c9q-beta2';
SELECT id, name FROM redis_clusters
 WHERE id = ANY (ARRAY['c9q-alpha1', 'c9q-beta1', 'c9q-alpha1']) ORDER BY id;
-- A deleted cluster (only its backups remain): NOT_FOUND is no row.
SELECT count(*) FROM redis_clusters WHERE id = 'c9q-flaky';
SELECT * FROM emulator_filtered_calls() ORDER BY method, arg;

-- Parameters.
PREPARE by_folders(text[]) AS
  SELECT count(*) FROM redis_clusters WHERE folder_id = ANY ($1);
CALL emulator_mark();
EXECUTE by_folders(ARRAY['b1g-alpha', 'b1g-beta']);
SELECT method, arg FROM emulator_filtered_calls() ORDER BY arg;
DEALLOCATE by_folders;

-- No key: the same error as for backups, naming this table's keys.
\x on
SELECT * FROM error_of('SELECT * FROM redis_clusters');
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE name = 'alpha-cache'$$);
\x off
SELECT clusters_explain('SELECT * FROM redis_clusters');

--
-- name = '...' with a folder becomes List's filter name="...".  It is still
-- checked on each row; a value that cannot be a cluster name is not sent.
--
EXPLAIN (COSTS OFF)
SELECT id FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'alpha-queue';
CALL emulator_mark();
SELECT id FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'alpha-queue';
SELECT * FROM emulator_filtered_calls();
CALL emulator_mark();
SELECT count(*) FROM redis_clusters
 WHERE folder_id IN ('b1g-alpha', 'b1g-beta') AND name = 'beta-main';
SELECT method, arg, filter FROM emulator_filtered_calls() ORDER BY arg;
-- Not names by the API's rule: upper case, too short, a trailing hyphen, a
-- quote.  No call, no row.
CALL emulator_mark();
SELECT count(*) FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'Alpha-cache';
SELECT count(*) FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'ab';
SELECT count(*) FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'alpha-';
SELECT count(*) FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = 'a"b';
SELECT count(*) FROM emulator_filtered_calls();
-- A parameter: sent when valid, nothing when not; by id, no filter.
PREPARE by_name(text) AS
  SELECT id FROM redis_clusters WHERE folder_id = 'b1g-alpha' AND name = $1;
CALL emulator_mark();
EXECUTE by_name('alpha-nobackup');
EXECUTE by_name('NOPE');
EXECUTE by_name(NULL);
SELECT method, filter FROM emulator_filtered_calls();
DEALLOCATE by_name;
CALL emulator_mark();
SELECT id FROM redis_clusters WHERE id = 'c9q-alpha1' AND name = 'alpha-cache';
SELECT method, arg, filter FROM emulator_filtered_calls();

--
-- Every column and its NULL.
--
\x on
SELECT * FROM redis_clusters WHERE id IN ('c9q-alpha1', 'c9q-alpha2', 'c9q-conv')
 ORDER BY id;
\x off
-- Labels: quotes, backslashes, unicode, an empty value and an empty key.
SELECT key, value, length(key) AS key_length
  FROM redis_clusters, jsonb_each_text(labels)
 WHERE id = 'c9q-alpha1' ORDER BY key;
SELECT labels->>'quote"key' AS quoted, labels->>'team' AS team,
       labels ? '' AS has_empty_key, jsonb_typeof(labels) AS type
  FROM redis_clusters WHERE id = 'c9q-alpha1';
SELECT id, labels FROM redis_clusters WHERE id IN ('c9q-alpha2', 'c9q-empty')
 ORDER BY id;

-- Any subset of the columns in any order, other accepted types, and the
-- column option field.
CREATE FOREIGN TABLE cluster_subset (
  retain bigint OPTIONS (field 'backup_retain_period_days'),
  window_start time(0) OPTIONS (field 'backup_window_start'),
  created timestamp OPTIONS (field 'created_at'),
  name varchar(20), id text
) SERVER emu OPTIONS (resource 'clusters');
SELECT * FROM cluster_subset WHERE id IN ('c9q-alpha3', 'c9q-conv') ORDER BY id;

-- Wrong types are refused at the first scan, naming the column; so are
-- columns that match no field of a cluster (a backup's field included).
\x on
CREATE FOREIGN TABLE cluster_bad_type (id text, sharded text)
  SERVER emu OPTIONS (resource 'clusters');
SELECT * FROM error_of($$SELECT * FROM cluster_bad_type WHERE id = 'c9q-alpha1'$$);
ALTER FOREIGN TABLE cluster_bad_type ALTER COLUMN sharded TYPE boolean,
  ADD COLUMN labels json;
SELECT * FROM error_of($$SELECT * FROM cluster_bad_type WHERE id = 'c9q-alpha1'$$);
CREATE FOREIGN TABLE cluster_bad_column (id text, source_cluster_id text)
  SERVER emu OPTIONS (resource 'clusters');
SELECT * FROM error_of($$SELECT * FROM cluster_bad_column WHERE id = 'c9q-alpha1'$$);
-- A backups table with a cluster's column is refused the same way.
CREATE FOREIGN TABLE backup_bad_column (id text, labels jsonb) SERVER emu;
SELECT * FROM error_of($$SELECT * FROM backup_bad_column WHERE id = 'alpha-1'$$);
\x off
DROP FOREIGN TABLE cluster_subset, cluster_bad_type, cluster_bad_column,
  backup_bad_column;

--
-- Paging, and EXPLAIN ANALYZE's counters.
--
ALTER FOREIGN TABLE redis_clusters OPTIONS (ADD page_size '1');
CALL emulator_mark();
SELECT count(*) FROM redis_clusters WHERE folder_id = 'b1g-alpha';
SELECT method, arg, token FROM emulator_calls();
SELECT clusters_explain($$SELECT id FROM redis_clusters WHERE folder_id = 'b1g-alpha'$$, true);
ALTER FOREIGN TABLE redis_clusters OPTIONS (DROP page_size);

--
-- Joins: the clusters of a folder, each cluster's id pushed into
-- ClusterService.ListBackups (never a folder's listing per cluster).
--
EXPLAIN (COSTS OFF)
SELECT c.name, b.id
  FROM redis_clusters c
  LEFT JOIN redis_backups b ON b.source_cluster_id = c.id
 WHERE c.folder_id = 'b1g-alpha';
CALL emulator_mark();
SELECT c.name, b.id
  FROM redis_clusters c
  LEFT JOIN redis_backups b ON b.source_cluster_id = c.id
 WHERE c.folder_id = 'b1g-alpha' ORDER BY c.name, b.id;
SELECT method, arg FROM emulator_calls() ORDER BY method, arg;

-- A local list of folders joined to their clusters: a folder key per call.
CREATE TABLE cluster_owners (folder_id text, owner text);
INSERT INTO cluster_owners VALUES ('b1g-alpha', 'ann'), ('b1g-beta', 'bob');
ANALYZE cluster_owners;
CALL emulator_mark();
SELECT o.owner, count(c.id) FROM cluster_owners o
  LEFT JOIN redis_clusters c ON c.folder_id = o.folder_id
 GROUP BY o.owner ORDER BY o.owner;
SELECT method, arg FROM emulator_calls() ORDER BY arg;
DROP TABLE cluster_owners;

--
-- The compliance report: production clusters with no backup in the 26
-- hours before a reference time (the data's times are fixed), with their
-- names and teams, clusters never backed up included.
--
CALL emulator_mark();
SELECT c.name, c.labels->>'team' AS team, max(b.created_at) AS last_backup
  FROM redis_clusters c
  LEFT JOIN redis_backups b ON b.source_cluster_id = c.id
 WHERE c.folder_id IN ('b1g-alpha', 'b1g-beta')
   AND c.environment = 'PRODUCTION'
 GROUP BY c.id, c.name, c.labels
HAVING max(b.created_at) IS NULL
    OR max(b.created_at) < timestamptz '2026-11-25 12:00:00+00' - interval '26 hours'
 ORDER BY c.name;
SELECT method, count(*) FROM emulator_calls() GROUP BY method ORDER BY method;

-- Two scans of one server share its channel, each with calls in flight:
-- each collects its own calls, whichever scan's wait sees them complete.
SELECT a.id, count(b.id) FROM redis_backups a
  JOIN redis_backups b ON b.source_cluster_id = a.source_cluster_id
 WHERE a.folder_id IN ('b1g-alpha', 'b1g-beta')
 GROUP BY a.id ORDER BY a.id;

--
-- A table bound to a folder, and one bound to a cloud.
--
CREATE FOREIGN TABLE alpha_clusters (id text, folder_id text, name text)
  SERVER emu OPTIONS (resource 'clusters', folder_id 'b1g-alpha');
CALL emulator_mark();
SELECT id FROM alpha_clusters ORDER BY id;
SELECT id FROM alpha_clusters WHERE id IN ('c9q-alpha2', 'c9q-beta1');
SELECT id FROM alpha_clusters WHERE folder_id = 'b1g-beta';
SELECT method, arg FROM emulator_calls();
EXPLAIN (COSTS OFF) SELECT id FROM alpha_clusters WHERE id = 'c9q-beta1';
EXPLAIN (COSTS OFF) SELECT id FROM alpha_clusters WHERE name = 'alpha-cache';

CREATE FOREIGN TABLE cloud_clusters (id text, folder_id text, name text)
  SERVER emu OPTIONS (resource 'clusters', cloud_id 'cloud-alpha');
EXPLAIN (COSTS OFF) SELECT id FROM cloud_clusters WHERE name = 'alpha-queue';
CALL emulator_mark();
SELECT folder_id, count(*) FROM cloud_clusters GROUP BY 1;
SELECT id FROM cloud_clusters WHERE name = 'alpha-queue';
SELECT id FROM cloud_clusters WHERE id IN ('c9q-alpha1', 'c9q-beta1');
SELECT method, arg, filter FROM emulator_filtered_calls();
DROP FOREIGN TABLE alpha_clusters, cloud_clusters;

--
-- Errors, per method.
--
\x on
-- INVALID_ARGUMENT (an injected fault): 22023.
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE folder_id = 'b1g-invalid'$$);
-- INTERNAL from List and from Get, while the folder's backups list.
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE folder_id = 'b1g-clusters-broken'$$);
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE id = 'c9q-broken'$$);
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-clusters-broken';
-- PERMISSION_DENIED: 42501, from List and from Get.
CREATE SERVER emu_limited_clusters FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_limited_clusters
  OPTIONS (iam_token 'limited-token');
CREATE FOREIGN TABLE limited_clusters (id text, folder_id text, name text)
  SERVER emu_limited_clusters OPTIONS (resource 'clusters');
SELECT count(*) FROM limited_clusters WHERE folder_id = 'b1g-alpha';
SELECT * FROM error_of($$SELECT * FROM limited_clusters WHERE folder_id = 'b1g-secret'$$);
SELECT * FROM error_of($$SELECT * FROM limited_clusters WHERE id = 'c9q-secret'$$);
-- A reply that repeats its page token, one that does not decode.
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE folder_id = 'b1g-loop'$$);
SELECT * FROM error_of($$SELECT * FROM redis_clusters WHERE folder_id = 'b1g-garbage'$$);
-- Hostile strings: invalid UTF-8 in a name; a NUL in a label.
SELECT * FROM error_of($$SELECT name FROM redis_clusters WHERE folder_id = 'b1g-hostile-cluster-utf8'$$);
SELECT * FROM error_of($$SELECT labels FROM redis_clusters WHERE folder_id = 'b1g-hostile-labels'$$);
\x off
-- Fields the proto does not know are skipped.
SELECT id, name FROM redis_clusters WHERE folder_id = 'b1g-unknown-fields';
DROP SERVER emu_limited_clusters CASCADE;
DROP FOREIGN TABLE redis_clusters;
DROP FUNCTION emulator_filtered_calls(), clusters_explain(text, bool);

--
-- A whole cloud: a table with the option cloud_id lists the cloud's folders
-- with FolderService.List, then the backups of each folder, concurrently.
--
CREATE FOREIGN TABLE cloud_backups (id text, folder_id text)
  SERVER emu OPTIONS (cloud_id 'cloud-gen', page_size '100');
EXPLAIN (COSTS OFF) SELECT * FROM cloud_backups;
\getenv emulator_addr RBFDW_EMULATOR_ADDR

-- 250 folders in pages of 100: three FolderService.List calls, then one
-- List per folder.
CALL emulator_mark();
SELECT count(*), count(DISTINCT folder_id) FROM cloud_backups;
SELECT method, count(*), count(DISTINCT arg) AS keys
  FROM emulator_calls() GROUP BY method ORDER BY method;
SELECT token, count(*) FROM emulator_calls()
 WHERE method = 'FolderService.List' GROUP BY token ORDER BY token;

-- Folder and id conditions win over the cloud, which still bounds the rows:
-- a folder outside the cloud makes no List; a backup outside it is dropped.
CREATE FOREIGN TABLE alpha_cloud (id text, folder_id text)
  SERVER emu OPTIONS (cloud_id 'cloud-alpha');
CALL emulator_mark();
SELECT id FROM alpha_cloud WHERE folder_id IN ('b1g-alpha', 'b1g-beta') ORDER BY id;
SELECT method, arg FROM emulator_calls() ORDER BY method, arg;
CALL emulator_mark();
SELECT id FROM alpha_cloud WHERE id IN ('alpha-1', 'beta-1');
SELECT method, arg FROM emulator_calls() ORDER BY method, arg;
EXPLAIN (COSTS OFF) SELECT id FROM alpha_cloud WHERE id = 'alpha-1';

-- An empty cloud: one FolderService.List, no rows.
CREATE FOREIGN TABLE empty_cloud (id text) SERVER emu
  OPTIONS (cloud_id 'cloud-empty');
CALL emulator_mark();
SELECT count(*) FROM empty_cloud;
SELECT method, arg FROM emulator_calls();

-- A folder the token may not read: an error by default ...
CREATE SERVER part FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false',
           resource_manager_endpoint :'emulator_addr');
CREATE USER MAPPING FOR CURRENT_USER SERVER part OPTIONS (iam_token 'cloud-token');
CREATE FOREIGN TABLE part_cloud (id text, folder_id text) SERVER part
  OPTIONS (cloud_id 'cloud-part');
SELECT * FROM call_error_of('SELECT folder_id, count(*) FROM part_cloud GROUP BY 1');
-- ... skipped with a warning naming it with skip_denied_folders.
ALTER FOREIGN TABLE part_cloud OPTIONS (ADD skip_denied_folders 'true');
SELECT folder_id, count(*) FROM part_cloud GROUP BY 1 ORDER BY 1;
-- A narrower query skips what the whole cloud's scan skips: folders the
-- query names, and backups and clusters the API refuses to show.
SELECT folder_id, count(*) FROM part_cloud
 WHERE folder_id IN ('cloud-part-f000', 'cloud-part-f002') GROUP BY 1 ORDER BY 1;
SELECT folder_id, count(*) FROM part_cloud
 WHERE folder_id = 'cloud-part-f002' GROUP BY 1 ORDER BY 1;
SELECT id FROM part_cloud
 WHERE id IN ('cloud-part-f001-b0000000', 'cloud-part-f002-b0000000') ORDER BY 1;
CREATE FOREIGN TABLE part_cloud_clusters (id text, source_cluster_id text)
  SERVER part OPTIONS (cloud_id 'cloud-part', skip_denied_folders 'true');
SELECT id, source_cluster_id FROM part_cloud_clusters
 WHERE source_cluster_id IN ('cloud-part-f000-c1', 'cloud-part-f002-c1') ORDER BY 1;
-- A join key too (each rescan).
SELECT f, (SELECT count(*) FROM part_cloud WHERE folder_id = v.f) AS backups
  FROM (VALUES ('cloud-part-f002'), ('cloud-part-f001')) v(f);
-- Without the option they are errors, as the whole cloud's scan is.
ALTER FOREIGN TABLE part_cloud_clusters OPTIONS (SET skip_denied_folders 'false');
SELECT * FROM call_error_of($$SELECT id FROM part_cloud_clusters
  WHERE source_cluster_id IN ('cloud-part-f000-c1', 'cloud-part-f002-c1')$$);
ALTER FOREIGN TABLE part_cloud OPTIONS (SET skip_denied_folders 'false');
SELECT * FROM call_error_of($$SELECT id FROM part_cloud
  WHERE id IN ('cloud-part-f001-b0000000', 'cloud-part-f002-b0000000')$$);
ALTER FOREIGN TABLE part_cloud OPTIONS (SET skip_denied_folders 'true');
DROP FOREIGN TABLE part_cloud_clusters;

-- folder_id and cloud_id exclude each other.
CREATE FOREIGN TABLE both_options (id text) SERVER emu
  OPTIONS (folder_id 'b1g-alpha', cloud_id 'cloud-alpha');
ALTER FOREIGN TABLE alpha_cloud OPTIONS (ADD folder_id 'b1g-alpha');
-- IMPORT FOREIGN SCHEMA passes cloud_id on.
CREATE SCHEMA cloud_import;
IMPORT FOREIGN SCHEMA redis FROM SERVER emu INTO cloud_import
  OPTIONS (cloud_id 'cloud-alpha');
SELECT ftoptions FROM pg_foreign_table
 WHERE ftrelid = 'cloud_import.redis_backups'::regclass;
SELECT count(*) FROM cloud_import.redis_backups;
DROP SCHEMA cloud_import CASCADE;
DROP SERVER part CASCADE;
DROP FOREIGN TABLE cloud_backups, alpha_cloud, empty_cloud;

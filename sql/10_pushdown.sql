--
-- Which calls a scan makes, proved by the emulator's log.
--

-- folder_id = v: BackupService.List of that folder.
CALL emulator_mark();
SELECT id, folder_id, source_cluster_id FROM redis_backups
 WHERE folder_id = 'b1g-alpha' ORDER BY id;
SELECT * FROM emulator_calls();

-- folder_id IN (...): one List per distinct folder.
CALL emulator_mark();
SELECT id FROM redis_backups
 WHERE folder_id IN ('b1g-beta', 'b1g-alpha', 'b1g-beta') ORDER BY id;
SELECT * FROM emulator_calls();

-- folder_id = ANY(array)
CALL emulator_mark();
SELECT count(*) FROM redis_backups
 WHERE folder_id = ANY (ARRAY['b1g-alpha', 'b1g-empty']);
SELECT * FROM emulator_calls();

-- source_cluster_id = v: ClusterService.ListBackups, preferred to List.
CALL emulator_mark();
SELECT id FROM redis_backups
 WHERE source_cluster_id = 'c9q-alpha2' AND folder_id = 'b1g-alpha' ORDER BY id;
SELECT * FROM emulator_calls();

-- source_cluster_id IN (...)
CALL emulator_mark();
SELECT id FROM redis_backups
 WHERE source_cluster_id IN ('c9q-alpha1', 'c9q-beta1') ORDER BY id;
SELECT * FROM emulator_calls();

-- A cluster without backups, and one that does not exist: no rows, no error.
CALL emulator_mark();
SELECT id FROM redis_backups WHERE source_cluster_id = 'c9q-empty';
SELECT id FROM redis_backups WHERE source_cluster_id = 'c9q-nonexistent';
SELECT * FROM emulator_calls();

-- id = v: BackupService.Get, preferred to everything else.
CALL emulator_mark();
SELECT id, folder_id, source_cluster_id FROM redis_backups
 WHERE id = 'alpha-3' AND folder_id = 'b1g-alpha'
   AND source_cluster_id = 'c9q-alpha2';
SELECT * FROM emulator_calls();

-- id IN (...) and id = ANY(...): one Get per distinct id; a missing id is
-- simply no row.  (Gets run several at a time, so the log is sorted.)
CALL emulator_mark();
SELECT id FROM redis_backups
 WHERE id IN ('beta-2', 'alpha-1', 'no-such-backup', 'alpha-1') ORDER BY id;
SELECT * FROM emulator_calls() ORDER BY arg;
CALL emulator_mark();
SELECT id FROM redis_backups WHERE id = ANY ('{beta-1,beta-2}'::text[]) ORDER BY id;
SELECT * FROM emulator_calls() ORDER BY arg;

-- Under a LIMIT the Gets start with one call, and the rest start once its
-- row is handed out: LIMIT 1 over five ids makes one call; LIMIT 2 makes
-- the first alone, then starts the others (those not needed are cancelled).
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
  WHERE id IN ('alpha-1', 'alpha-2', 'alpha-3', 'alpha-4', 'beta-1') LIMIT 1) s;
SELECT count(*) AS calls FROM emulator_calls();
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
  WHERE id IN ('alpha-1', 'alpha-2', 'alpha-3', 'alpha-4', 'beta-1') LIMIT 2) s;
SELECT count(*) BETWEEN 2 AND 5 AS some_calls FROM emulator_calls();
-- The calls the LIMIT gave up are logged when the emulator sees them end:
-- let them reach the log before the next mark, so that no later test
-- counts them.
SELECT pg_sleep(0.2);

-- Every condition is still checked on the rows: a Get whose backup lives in
-- another folder yields nothing.
CALL emulator_mark();
SELECT id FROM redis_backups WHERE id = 'alpha-1' AND folder_id = 'b1g-beta';
SELECT * FROM emulator_calls();

-- Conditions on other columns are checked locally.
CALL emulator_mark();
SELECT id FROM redis_backups
 WHERE folder_id = 'b1g-alpha' AND type = 'MANUAL'
   AND created_at > '2026-11-21 00:00:00+00';
SELECT * FROM emulator_calls();

-- Values that cannot be an id make no call: NULL, empty, too long.
CALL emulator_mark();
SELECT id FROM redis_backups WHERE id = NULL::text;
SELECT id FROM redis_backups WHERE folder_id = '';
SELECT id FROM redis_backups WHERE folder_id = repeat('x', 51);
SELECT id FROM redis_backups WHERE id IN (NULL, '');
SELECT * FROM emulator_calls();

-- A stable expression is computed once, then pushed down.
CALL emulator_mark();
SELECT id FROM redis_backups WHERE folder_id = lower('B1G-BETA') ORDER BY id;
SELECT * FROM emulator_calls();

-- varchar columns push down too.
CREATE FOREIGN TABLE backups_varchar (id varchar(20), folder_id varchar)
  SERVER emu;
CALL emulator_mark();
SELECT id FROM backups_varchar WHERE folder_id = 'b1g-beta' ORDER BY id;
SELECT * FROM emulator_calls();

-- Nothing to call: an error before any call, naming the columns that work.
CALL emulator_mark();
SELECT id FROM redis_backups;
SELECT id FROM redis_backups WHERE type = 'MANUAL';
SELECT id FROM redis_backups WHERE folder_id LIKE 'b1g%';
SELECT id FROM redis_backups WHERE folder_id = 'b1g-alpha' OR id = 'x';
SELECT * FROM emulator_calls();

-- The table option folder_id: the folder listed when a query names none.
CREATE FOREIGN TABLE beta_backups (id text, folder_id text, type text)
  SERVER emu OPTIONS (folder_id 'b1g-beta');
CALL emulator_mark();
SELECT id, type FROM beta_backups ORDER BY id;
SELECT * FROM emulator_calls();
-- The option bounds the table: a folder_id condition naming another folder
-- makes no call and finds nothing; naming the table's folder lists it once.
CALL emulator_mark();
SELECT id FROM beta_backups WHERE folder_id = 'b1g-alpha' ORDER BY id;
SELECT id FROM beta_backups WHERE folder_id IN ('b1g-alpha', 'b1g-beta') ORDER BY id;
SELECT * FROM emulator_calls();
-- A Get or a cluster listing finds backups of other folders: they are
-- dropped (alpha-1 and cluster c9q-alpha1 are in b1g-alpha).
CALL emulator_mark();
SELECT id FROM beta_backups WHERE id IN ('alpha-1', 'beta-2') ORDER BY id;
CREATE FOREIGN TABLE beta_clusters (id text, source_cluster_id text)
  SERVER emu OPTIONS (folder_id 'b1g-beta');
SELECT id FROM beta_clusters WHERE source_cluster_id IN ('c9q-alpha1', 'c9q-beta1') ORDER BY id;
SELECT * FROM emulator_calls();
EXPLAIN (COSTS OFF) SELECT id FROM beta_backups WHERE id = 'alpha-1';

-- So foreign tables with one folder each can be the partitions of a table
-- partitioned by folder_id: no backup shows up twice or in the wrong one.
CREATE TABLE backups_by_folder (id text, folder_id text, source_cluster_id text)
  PARTITION BY LIST (folder_id);
CREATE FOREIGN TABLE backups_alpha PARTITION OF backups_by_folder
  FOR VALUES IN ('b1g-alpha') SERVER emu OPTIONS (folder_id 'b1g-alpha');
CREATE FOREIGN TABLE backups_beta PARTITION OF backups_by_folder
  FOR VALUES IN ('b1g-beta') SERVER emu OPTIONS (folder_id 'b1g-beta');
SELECT tableoid::regclass, id, folder_id FROM backups_by_folder
 WHERE id IN ('alpha-1', 'beta-1') ORDER BY id;
SELECT tableoid::regclass, count(*) FROM backups_by_folder
 WHERE source_cluster_id = 'c9q-alpha1' GROUP BY 1;
SELECT tableoid::regclass, count(*) FROM backups_by_folder GROUP BY 1 ORDER BY 1;
DROP TABLE backups_by_folder;
DROP FOREIGN TABLE beta_clusters;

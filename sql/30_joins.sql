--
-- Join keys push down: a nested loop from a local table passes each outer
-- row's key into a rescan.
--
CREATE TABLE inventory (folder_id text PRIMARY KEY, team text);
INSERT INTO inventory VALUES
  ('b1g-alpha', 'payments'), ('b1g-beta', 'search'), ('b1g-empty', 'archive');
ANALYZE inventory;

-- Folder key: one List per inventory folder.
CALL emulator_mark();
SELECT i.team, b.id
  FROM inventory i JOIN redis_backups b ON b.folder_id = i.folder_id
 ORDER BY 1, 2;
SELECT * FROM emulator_calls() ORDER BY arg;

-- Disabling nested loops cannot make the join unrunnable: the nested loop
-- that passes the key is still the only plan that can run.
SET enable_nestloop = off;
CALL emulator_mark();
SELECT i.team, count(b.id)
  FROM inventory i JOIN redis_backups b ON b.folder_id = i.folder_id
 GROUP BY i.team ORDER BY 1;
SELECT count(*) AS calls FROM emulator_calls();
RESET enable_nestloop;

-- LEFT JOIN keeps the folder that has no backups.
CALL emulator_mark();
SELECT i.team, count(b.id)
  FROM inventory i LEFT JOIN redis_backups b ON b.folder_id = i.folder_id
 GROUP BY i.team ORDER BY 1;
SELECT * FROM emulator_calls() ORDER BY arg;

-- Id key: one Get per wanted backup.
CREATE TABLE wanted (backup_id text);
INSERT INTO wanted VALUES ('alpha-2'), ('beta-1'), ('gone-1');
ANALYZE wanted;
CALL emulator_mark();
SELECT w.backup_id, b.folder_id, b.source_cluster_id
  FROM wanted w LEFT JOIN redis_backups b ON b.id = w.backup_id
 ORDER BY 1;
SELECT * FROM emulator_calls() ORDER BY arg;

-- The plan is a parameterized nested loop.
EXPLAIN (COSTS OFF)
SELECT w.backup_id, b.folder_id
  FROM wanted w JOIN redis_backups b ON b.id = w.backup_id;

-- A constant on the outer side reaches the foreign table through the join
-- condition, and the Get is chosen over the List.
CALL emulator_mark();
SELECT w.backup_id, b.created_at
  FROM wanted w JOIN redis_backups b ON b.id = w.backup_id
 WHERE b.folder_id = 'b1g-alpha' AND w.backup_id = 'alpha-2';
SELECT * FROM emulator_calls() ORDER BY arg;

-- LATERAL with an expression of the outer row.
CALL emulator_mark();
SELECT i.team, x.n
  FROM inventory i,
       LATERAL (SELECT count(*) AS n FROM redis_backups b
                 WHERE b.folder_id = i.folder_id) x
 ORDER BY 1;
SELECT * FROM emulator_calls() ORDER BY arg;

EXPLAIN (COSTS OFF)
SELECT i.team, x.n
  FROM inventory i,
       LATERAL (SELECT count(*) AS n FROM redis_backups b
                 WHERE b.folder_id = i.folder_id) x;

-- Two join keys from the same table: the Get is chosen over the List.
CREATE TABLE wanted_in_folder AS
  SELECT backup_id, 'b1g-alpha'::text AS folder_id FROM wanted;
ANALYZE wanted_in_folder;
CALL emulator_mark();
SELECT w.backup_id, b.type
  FROM wanted_in_folder w
  JOIN redis_backups b ON b.folder_id = w.folder_id AND b.id = w.backup_id;
SELECT * FROM emulator_calls() ORDER BY arg;
EXPLAIN (COSTS OFF)
SELECT w.backup_id, b.type
  FROM wanted_in_folder w
  JOIN redis_backups b ON b.folder_id = w.folder_id AND b.id = w.backup_id;

-- Prepared statements, run 7 times so that a generic plan is used.
PREPARE by_folder(text) AS
  SELECT count(*) FROM redis_backups WHERE folder_id = $1;
CALL emulator_mark();
EXECUTE by_folder('b1g-alpha');
EXECUTE by_folder('b1g-beta');
EXECUTE by_folder('b1g-alpha');
EXECUTE by_folder('b1g-beta');
EXECUTE by_folder('b1g-alpha');
EXECUTE by_folder('b1g-beta');
EXECUTE by_folder('b1g-empty');
SELECT * FROM emulator_calls();
EXPLAIN (COSTS OFF) EXECUTE by_folder('b1g-alpha');

PREPARE by_ids(text[]) AS
  SELECT id FROM redis_backups WHERE id = ANY ($1) ORDER BY id;
SET plan_cache_mode = force_generic_plan;
CALL emulator_mark();
EXECUTE by_ids('{alpha-1,beta-2}');
EXECUTE by_ids('{}');
SELECT * FROM emulator_calls() ORDER BY arg;
EXPLAIN (COSTS OFF) EXECUTE by_ids('{alpha-1}');

PREPARE by_id(text) AS SELECT id, type FROM redis_backups WHERE id = $1;
CALL emulator_mark();
EXECUTE by_id('alpha-1');
EXECUTE by_id('alpha-2');
EXECUTE by_id('alpha-3');
EXECUTE by_id('alpha-4');
EXECUTE by_id('beta-1');
EXECUTE by_id('beta-2');
EXECUTE by_id(NULL);
SELECT * FROM emulator_calls();
EXPLAIN (COSTS OFF) EXECUTE by_id('alpha-1');
RESET plan_cache_mode;
DEALLOCATE ALL;

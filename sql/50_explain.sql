--
-- EXPLAIN shows the call and its arguments, never a token.
--
EXPLAIN (COSTS OFF) SELECT id FROM redis_backups WHERE folder_id = 'b1g-alpha';
EXPLAIN (COSTS OFF) SELECT id FROM redis_backups WHERE id = 'alpha-1';
EXPLAIN (COSTS OFF) SELECT id FROM redis_backups WHERE id IN ('a', 'b');
EXPLAIN (COSTS OFF)
  SELECT id FROM redis_backups WHERE source_cluster_id = 'c9q-alpha1';
EXPLAIN (COSTS OFF)
  SELECT id FROM redis_backups WHERE folder_id = 'b1g-alpha' LIMIT 7;
EXPLAIN (COSTS OFF) SELECT id FROM beta_backups;
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id, created_at FROM redis_backups WHERE folder_id = 'b1g-alpha';
EXPLAIN (COSTS OFF)
  SELECT id FROM redis_backups WHERE folder_id = current_setting('application_name');

-- Parameters set by the query around the scan show as $n, the same for a
-- correlated subquery, an init plan and LATERAL.
CREATE TABLE folders (folder_id text);
INSERT INTO folders VALUES ('b1g-alpha');
EXPLAIN (COSTS OFF)
  SELECT (SELECT count(*) FROM redis_backups b WHERE b.folder_id = f.folder_id)
    FROM folders f;
EXPLAIN (COSTS OFF)
  SELECT count(*) FROM redis_backups
   WHERE folder_id = (SELECT min(folder_id) FROM folders);
EXPLAIN (COSTS OFF)
  SELECT n FROM folders f,
       LATERAL (SELECT count(*) AS n FROM redis_backups b
                 WHERE b.folder_id = f.folder_id) x;
SELECT (SELECT count(*) FROM redis_backups b WHERE b.folder_id = f.folder_id)
  FROM folders f;
DROP TABLE folders;

-- A scan with nothing to call plans; it fails only if it is read.  LIMIT 0
-- (how drivers and reporting tools probe columns) reads nothing: no call,
-- no error.
EXPLAIN (COSTS OFF) SELECT * FROM redis_backups;
CALL emulator_mark();
SELECT * FROM redis_backups LIMIT 0;
SELECT id FROM redis_backups WHERE false;
SELECT count(*) FROM emulator_calls();
SELECT sqlstate_of('SELECT * FROM redis_backups LIMIT 1');

-- EXPLAIN alone makes no call.
CALL emulator_mark();
EXPLAIN (COSTS OFF) SELECT id FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT count(*) FROM emulator_calls();

-- EXPLAIN ANALYZE counts calls, pages, rows decoded and bytes received.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM redis_backups WHERE folder_id = 'b1g-gen2500';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM redis_backups WHERE id IN ('alpha-1', 'beta-1', 'none');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON)
  SELECT id FROM redis_backups WHERE folder_id = 'b1g-beta';

-- No token in any EXPLAIN.
CREATE FUNCTION explain_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; t text := '';
BEGIN
  FOR r IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) ' || q LOOP
    t := t || r || E'\n';
  END LOOP;
  RETURN t;
END $$;
SELECT explain_text('SELECT * FROM redis_backups WHERE folder_id = ''b1g-alpha''')
       LIKE '%regress-token%' AS token_shown;

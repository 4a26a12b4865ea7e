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

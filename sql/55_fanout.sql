--
-- Concurrent calls: a scan with several keys keeps up to
-- max_concurrent_calls calls in flight, each listing paging on its own.
-- Proved by the start and end times the emulator logs for each call (every
-- call to the b1g-fanN folders takes at least 30 ms).
--
CREATE FUNCTION emulator_spans()
RETURNS TABLE (seq bigint, method text, arg text, token text, status text,
               start_us bigint, end_us bigint, cancelled bool)
LANGUAGE sql AS $$
  SELECT (l->>'seq')::bigint, l->>'method',
         COALESCE(l->>'backup_id', l->>'cluster_id', l->>'folder_id', l->>'cloud_id'),
         CASE WHEN l->>'page_token' = '' THEN 'first' WHEN l ? 'page_token' THEN 'next' END,
         l->>'status', (l->>'start_us')::bigint, (l->>'end_us')::bigint,
         COALESCE((l->>'cancelled')::bool, false)
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator)
$$;
-- The most calls in flight at once since the mark.
CREATE FUNCTION emulator_max_in_flight() RETURNS bigint
LANGUAGE sql AS $$
  SELECT COALESCE(max(n), 0) FROM (
    SELECT sum(d) OVER (ORDER BY t, d) AS n
      FROM (SELECT start_us AS t, 1 AS d FROM emulator_spans()
            UNION ALL
            SELECT COALESCE(end_us, start_us), -1 FROM emulator_spans()) e) m
$$;
\getenv emulator_addr RBFDW_EMULATOR_ADDR

CREATE SERVER sequential FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', max_concurrent_calls '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER sequential
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE sequential_backups (id text, folder_id text)
  SERVER sequential;
CREATE TEMP TABLE fan_folders AS
  SELECT 'b1g-fan' || i AS folder_id FROM generate_series(1, 8) i;

-- One call at a time with max_concurrent_calls 1: 16 pages in a row.
CALL emulator_mark();
CREATE TEMP TABLE seq_rows AS
  SELECT id, folder_id FROM sequential_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan_folders));
SELECT count(*) AS calls, count(DISTINCT arg) AS folders,
       emulator_max_in_flight() AS max_in_flight
  FROM emulator_spans();

-- The default, 8: calls overlap, never more than 8, the same 16 calls.
CALL emulator_mark();
CREATE TEMP TABLE conc_rows AS
  SELECT id, folder_id FROM redis_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan_folders));
SELECT count(*) AS calls, count(DISTINCT arg) AS folders,
       count(*) FILTER (WHERE token = 'next') AS next_pages,
       emulator_max_in_flight() BETWEEN 2 AND 8 AS overlapped
  FROM emulator_spans();
-- Exactly the rows of the sequential scan.
SELECT (SELECT count(*) FROM conc_rows) AS rows,
       (SELECT count(*) FROM (SELECT * FROM conc_rows EXCEPT ALL
                              SELECT * FROM seq_rows) d) AS extra,
       (SELECT count(*) FROM (SELECT * FROM seq_rows EXCEPT ALL
                              SELECT * FROM conc_rows) d) AS missing;

-- 16 calls in flight when the server allows 16 and there are keys enough:
-- 40 clusters (each listing takes 30 ms).
ALTER SERVER sequential OPTIONS (SET max_concurrent_calls '16');
CREATE FOREIGN TABLE sequential_clusters (id text, source_cluster_id text)
  SERVER sequential;
CALL emulator_mark();
SELECT count(*) FROM sequential_clusters
 WHERE source_cluster_id = ANY (ARRAY(SELECT 'b1g-fan' || f || '-c' || c
                                      FROM generate_series(1, 4) f, generate_series(0, 9) c));
SELECT count(*) AS calls, emulator_max_in_flight() BETWEEN 9 AND 16 AS over_8
  FROM emulator_spans();

-- A LIMIT stops the scan: calls still in flight are cancelled, not waited
-- for (b1g-hang1 never answers; the server's timeout_ms is 5 s), and no
-- more are made.
CALL emulator_mark();
SELECT clock_timestamp() AS started \gset
SELECT count(*) FROM (SELECT id FROM redis_backups
  WHERE folder_id IN ('b1g-fan1', 'b1g-hang1', 'b1g-hang2') LIMIT 1001) l;
SELECT clock_timestamp() - :'started' < interval '2 s' AS not_waited;
SELECT method, arg, token, status FROM emulator_spans() ORDER BY seq;

-- A LIMIT inside the first page of one key makes one call.
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
  WHERE folder_id IN ('b1g-fan1', 'b1g-fan2') LIMIT 5) l;
SELECT method, arg, token FROM emulator_spans();

-- A failing listing while others are in flight: the error names its key.
-- (call_error_of: the SQLSTATE, message and remote call of a failing
-- statement, without the request id, which differs in every run.)
CREATE FUNCTION call_error_of(stmt text)
RETURNS TABLE (code text, message text, call text)
LANGUAGE plpgsql AS $$
DECLARE c text; m text; x text;
BEGIN
  EXECUTE stmt;
  RETURN QUERY SELECT 'ok', '', '';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS c = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                          x = PG_EXCEPTION_CONTEXT;
  RETURN QUERY SELECT c, m,
    regexp_replace(split_part(x, E'\n', 1), ' \(request id [^)]*\)', '');
END
$$;
SELECT * FROM call_error_of($$SELECT count(*) FROM redis_backups
  WHERE folder_id IN ('b1g-fan1', 'b1g-fan2', 'b1g-fan3', 'b1g-garbage')$$);
-- The page-token loop check works per listing among others.
SELECT * FROM call_error_of($$SELECT count(*) FROM redis_backups
  WHERE folder_id IN ('b1g-fan1', 'b1g-fan2', 'b1g-loop')$$);
-- EXPLAIN ANALYZE counts every listing's calls, pages and rows.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM redis_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan_folders));
-- and the backend goes on.
SELECT count(*) FROM redis_backups WHERE folder_id IN ('b1g-fan1', 'b1g-alpha');

DROP SERVER sequential CASCADE;

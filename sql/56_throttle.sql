--
-- The scan engine keeps every slot busy, and is polite under throttling.
-- Proved from the start and end times the emulators log for each call.
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR
\getenv quota_addr RBFDW_QUOTA_ADDR
\getenv quota_log RBFDW_QUOTA_LOG

-- Calls logged since the mark, with their times and the fault that refused
-- them, if any.
CREATE FUNCTION call_spans()
RETURNS TABLE (seq bigint, arg text, next_page bool, status text,
               start_us bigint, end_us bigint, refused bool)
LANGUAGE sql AS $$
  SELECT (l->>'seq')::bigint, COALESCE(l->>'folder_id', l->>'backup_id'),
         COALESCE(l->>'page_token', '') <> '', l->>'status',
         (l->>'start_us')::bigint, (l->>'end_us')::bigint,
         COALESCE(l->>'fault', '') LIKE '%quota%'
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator) AND l ? 'start_us'
$$;
-- The foreign scan's node of a query's EXPLAIN ANALYZE (JSON), to read
-- its counters off it.
CREATE FUNCTION foreign_scan_of(query text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) '
          || query INTO plan;
  RETURN jsonb_path_query_first(plan::jsonb,
                                'strict $.**?(@."Node Type" == "Foreign Scan")');
END
$$;

-- Slots: eight folders of two pages (30 ms a call) with 4 calls allowed in
-- flight.  More listings are under way than calls in flight: every
-- folder's first page starts before any second page, so that no slot waits
-- for a chain's next page while another folder has not started.
CREATE SERVER four FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', max_concurrent_calls '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER four
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE four_backups (id text, folder_id text) SERVER four;
CREATE SERVER one FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', max_concurrent_calls '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER one
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE one_backups (id text, folder_id text) SERVER one;
CREATE TEMP TABLE fan8 AS
  SELECT 'b1g-fan' || i AS folder_id FROM generate_series(1, 8) i;

CREATE TEMP TABLE seq_rows AS
  SELECT id, folder_id FROM one_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan8));
CALL emulator_mark();
CREATE TEMP TABLE four_rows AS
  SELECT id, folder_id FROM four_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan8));
CREATE TEMP TABLE four_spans AS SELECT * FROM call_spans();
SELECT count(*) AS calls,
       count(*) FILTER (WHERE next_page) AS next_pages,
       max(start_us) FILTER (WHERE NOT next_page) <
         min(start_us) FILTER (WHERE next_page) AS first_pages_first
  FROM four_spans;
-- Never more than 4 in flight, and the slots busy: from the first call's
-- start to the last call's start, 4 calls were in flight on average but for
-- the moments a freed slot took to be taken again (at least 3.5).
WITH events AS (
  SELECT start_us AS t, 1 AS d FROM four_spans
  UNION ALL SELECT end_us, -1 FROM four_spans),
level AS (
  SELECT t, sum(d) OVER (ORDER BY t, d) AS n,
         lead(t) OVER (ORDER BY t, d) - t AS held FROM events),
busy AS (
  SELECT min(start_us) AS t0, max(start_us) AS t1 FROM four_spans)
SELECT max(n) AS max_in_flight,
       sum(n * held) FILTER (WHERE t >= t0 AND t < t1) / (max(t1) - max(t0))
         >= 3.5 AS slots_busy
  FROM level, busy;
-- Exactly the rows of the one-call-at-a-time scan.
SELECT (SELECT count(*) FROM four_rows) AS rows,
       (SELECT count(*) FROM (SELECT * FROM four_rows EXCEPT ALL
                              SELECT * FROM seq_rows) d) AS extra,
       (SELECT count(*) FROM (SELECT * FROM seq_rows EXCEPT ALL
                              SELECT * FROM four_rows) d) AS missing;

-- Throttling: a service that admits one call in flight (the emulator's
-- --quota-inflight 1) and refuses the others RESOURCE_EXHAUSTED.  Twelve
-- folders of two pages, with 4 calls allowed in flight: the window halves
-- on refusals down to one call, widens by one per success and is refused
-- again; refusals while the window was wider count no attempt, so the scan
-- completes with every row.
UPDATE emulator SET log_path = :'quota_log', mark = 0;
CREATE SERVER quota FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'quota_addr', tls 'false', max_concurrent_calls '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER quota
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE quota_backups (id text, folder_id text) SERVER quota;
CREATE TEMP TABLE q12 AS
  SELECT 'b1g-q' || i AS folder_id FROM generate_series(1, 12) i;
-- One call at a time is never refused: the rows to expect.
ALTER SERVER quota OPTIONS (SET max_concurrent_calls '1');
CALL emulator_mark();
CREATE TEMP TABLE quota_seq AS
  SELECT id, folder_id FROM quota_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM q12));
SELECT count(*) AS calls, count(*) FILTER (WHERE refused) AS refused
  FROM call_spans();
ALTER SERVER quota OPTIONS (SET max_concurrent_calls '4');
CALL emulator_mark();
CREATE TEMP TABLE quota_rows AS
  SELECT id, folder_id FROM quota_backups
   WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM q12));
CREATE TEMP TABLE quota_spans AS SELECT * FROM call_spans();
SELECT (SELECT count(*) FROM quota_rows) AS rows,
       (SELECT count(*) FROM (SELECT * FROM quota_rows EXCEPT ALL
                              SELECT * FROM quota_seq) d) AS extra,
       (SELECT count(*) FROM (SELECT * FROM quota_seq EXCEPT ALL
                              SELECT * FROM quota_rows) d) AS missing;
-- 24 pages served, and more than 8 calls refused: a window that only
-- narrowed (4, 2, 1) would have been refused at most 3 + 1 times (once at
-- one call it is never refused again), so it widened again after each
-- narrowing, probing the quota.
SELECT count(*) FILTER (WHERE NOT refused) AS served,
       count(*) FILTER (WHERE refused) > 2 * 4 AS narrowed_and_widened
  FROM quota_spans;
-- EXPLAIN ANALYZE counts the refusals and shows the smallest window.
SELECT (scan->>'Throttled')::int > 0 AS throttled,
       scan->'Smallest Window' AS smallest_window,
       (scan->>'Remote Calls')::int =
         (scan->>'Pages')::int + (scan->>'Throttled')::int AS calls_add_up
  FROM foreign_scan_of($$SELECT count(*) FROM quota_backups
                         WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM q12))$$) scan;
-- An unthrottled scan shows neither.
SELECT scan ? 'Throttled' AS throttled_shown,
       scan ? 'Smallest Window' AS window_shown
  FROM foreign_scan_of($$SELECT count(*) FROM quota_backups
                         WHERE folder_id = 'b1g-q1'$$) scan;

-- A throttled call waits out its backoff without holding the backend: a
-- cancel (here statement_timeout) ends the query at once.  Every call to
-- b1g-quota is refused; one call at a time, ten attempts, so the backoffs
-- grow to seconds.
\getenv emulator_log RBFDW_EMULATOR_LOG
UPDATE emulator SET log_path = :'emulator_log', mark = 0;
CALL emulator_mark();
ALTER SERVER one OPTIONS (ADD max_attempts '10');
-- How long query ran until the statement_timeout in force cancelled it.
CREATE FUNCTION cancelled_after(query text) RETURNS interval
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE query;
  RETURN NULL;
EXCEPTION WHEN query_canceled THEN
  RETURN clock_timestamp() - t0;
END
$$;
SET statement_timeout = '1s';
SELECT cancelled_after($$SELECT count(*) FROM one_backups
                        WHERE folder_id = 'b1g-quota'$$)
       < interval '1.5 s' AS cancelled_within_half_a_second;
RESET statement_timeout;
SELECT count(*) BETWEEN 3 AND 9 AS some_attempts_no_more FROM call_spans();
ALTER SERVER one OPTIONS (DROP max_attempts);

DROP SERVER four, one, quota CASCADE;
DROP FUNCTION call_spans, foreign_scan_of, cancelled_after;

--
-- INSERT and DELETE on a table of backups: opt-in (the option updatable),
-- each row a call (BackupService.Delete, ClusterService.Backup) whose
-- operation is followed with OperationService.Get.  The calls are proved
-- from the emulator's log.  Everything here happens in the folder
-- b1g-mutate, which no other test reads.
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR

-- A server of its own, so that its options change nothing other tests see;
-- the emulator also serves the Operation service.
CREATE SERVER emu_mut FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', timeout_ms '5000',
           operation_endpoint :'emulator_addr');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu_mut
  OPTIONS (iam_token 'regress-token');

CREATE FOREIGN TABLE mutate_backups (
  id text, folder_id text, created_at timestamptz, source_cluster_id text,
  started_at timestamptz, source_shard_names text[], type text
) SERVER emu_mut OPTIONS (folder_id 'b1g-mutate');

-- The lines of EXPLAIN (ANALYZE when asked) that this extension writes.
CREATE FUNCTION modify_explain(q text, with_analyze bool DEFAULT false)
RETURNS SETOF text LANGUAGE sql AS $$
  SELECT explain_lines(q, '^ *(Remote|Retries|Operations|Folder Filter|Delete|Insert)',
                       with_analyze)
$$;

--
-- Not updatable unless the table or its server says so: refused before
-- any call, as PostgreSQL refuses a foreign table that does not allow it.
--
CALL emulator_mark();
SELECT * FROM error_of($$DELETE FROM mutate_backups WHERE id = 'x'$$);
SELECT * FROM error_of($$INSERT INTO mutate_backups (source_cluster_id) VALUES ('c9q-x')$$);
SELECT * FROM error_of($$UPDATE mutate_backups SET type = 'MANUAL' WHERE id = 'x'$$);
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);
SELECT count(*) AS calls FROM emulator_calls();

-- The option takes a Boolean, on the server or the table.
ALTER FOREIGN TABLE mutate_backups OPTIONS (ADD updatable 'maybe');
ALTER SERVER emu_mut OPTIONS (ADD wait_for_operations 'sometimes');
ALTER SERVER emu_mut OPTIONS (SET operation_endpoint 'no port');

-- The server's updatable, unless the table says otherwise.
ALTER SERVER emu_mut OPTIONS (ADD updatable 'true');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);
SELECT pg_relation_is_updatable('redis_backups'::regclass, false);
ALTER FOREIGN TABLE mutate_backups OPTIONS (ADD updatable 'false');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);
ALTER SERVER emu_mut OPTIONS (DROP updatable);
ALTER FOREIGN TABLE mutate_backups OPTIONS (SET updatable 'true');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);

-- A table of clusters is never updatable.
CREATE FOREIGN TABLE mutate_clusters (id text, folder_id text) SERVER emu_mut
  OPTIONS (resource 'clusters', folder_id 'b1g-mutate', updatable 'true');
SELECT pg_relation_is_updatable('mutate_clusters'::regclass, false);
SELECT * FROM error_of($$DELETE FROM mutate_clusters WHERE id = 'x'$$);
SELECT * FROM error_of($$INSERT INTO mutate_clusters (id) VALUES ('x')$$);

-- UPDATE: a backup cannot be changed.
SELECT * FROM error_of($$UPDATE mutate_backups SET type = 'MANUAL' WHERE id = 'x'$$);

-- A DELETE without a condition would delete every backup of the folder.
SELECT * FROM error_of($$DELETE FROM mutate_backups$$);
SELECT * FROM error_of($$DELETE FROM mutate_backups WHERE true$$);

-- An INSERT gives source_cluster_id only, never NULL.
SELECT * FROM error_of($$INSERT INTO mutate_backups (source_cluster_id, type) VALUES ('c9q-x', 'MANUAL')$$);
SELECT * FROM error_of($$INSERT INTO mutate_backups (id, source_cluster_id) SELECT 'b', 'c9q-x'$$);
SELECT * FROM error_of($$INSERT INTO mutate_backups (source_cluster_id) VALUES (NULL)$$);
SELECT * FROM error_of($$INSERT INTO mutate_backups (source_cluster_id, type) SELECT 'c9q-x', x::text FROM generate_series(1, 2) x$$);
-- NULLs, however written, are no value.
EXPLAIN (COSTS OFF) INSERT INTO mutate_backups (source_cluster_id, type, id)
  SELECT 'c9q-x', NULLIF('a', 'a'), NULL FROM generate_series(1, 2);

-- COPY (and a partitioned table's INSERT) reach the table unplanned: each
-- row is checked as it comes, before its call.
COPY mutate_backups (source_cluster_id, type) FROM PROGRAM 'printf "c9q-x\tMANUAL\n"';
COPY mutate_backups (source_cluster_id) FROM PROGRAM 'printf "\\\\N\n"';
CREATE TABLE mutate_parent (id text, folder_id text, created_at timestamptz,
  source_cluster_id text, started_at timestamptz, source_shard_names text[],
  type text) PARTITION BY LIST (source_cluster_id);
ALTER TABLE mutate_parent ATTACH PARTITION mutate_backups
  FOR VALUES IN ('c9q-x');
SELECT * FROM error_of($$INSERT INTO mutate_parent (source_cluster_id, type) VALUES ('c9q-x', 'MANUAL')$$);
ALTER TABLE mutate_parent DETACH PARTITION mutate_backups;
DROP TABLE mutate_parent;

-- A table without the id column cannot delete; without source_cluster_id,
-- cannot insert.
CREATE FOREIGN TABLE mutate_no_id (folder_id text, created_at timestamptz)
  SERVER emu_mut OPTIONS (folder_id 'b1g-mutate', updatable 'true');
SELECT * FROM error_of($$DELETE FROM mutate_no_id WHERE created_at < now()$$);
SELECT * FROM error_of($$INSERT INTO mutate_no_id (folder_id) VALUES (NULL)$$);
DROP FOREIGN TABLE mutate_no_id;

-- None of this made a call.
SELECT count(*) AS calls FROM emulator_calls();

-- EXPLAIN shows each row's call.
SELECT * FROM modify_explain($$DELETE FROM mutate_backups WHERE id = 'x'$$);
SELECT * FROM modify_explain($$INSERT INTO mutate_backups (source_cluster_id) VALUES ('c9q-x')$$);
ALTER FOREIGN TABLE mutate_backups OPTIONS (ADD wait_for_operations 'false');
SELECT * FROM modify_explain($$DELETE FROM mutate_backups WHERE type = 'MANUAL'$$);
ALTER FOREIGN TABLE mutate_backups OPTIONS (DROP wait_for_operations);
SELECT count(*) AS calls FROM emulator_calls();

--
-- The changes themselves.  The emulator's log of them: each call's method,
-- key, status and idempotency key (masked: whether it has one), and a line
-- per operation that finished.
--
CREATE FUNCTION mutate_calls()
RETURNS TABLE (seq bigint, method text, arg text, status text, idem text,
               start_us bigint, end_us bigint)
LANGUAGE sql AS $$
  SELECT (l->>'seq')::bigint,
         COALESCE(l->>'method', 'done ' || (l->>'operation')),
         COALESCE(l->>'backup_id', l->>'cluster_id', l->>'folder_id',
                  l->>'operation_id'),
         COALESCE(l->>'status', CASE WHEN (l->>'ok')::bool THEN 'ok' ELSE 'failed' END),
         l->>'idempotency_key',
         (l->>'start_us')::bigint, (l->>'end_us')::bigint
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator)
   ORDER BY (l->>'seq')::bigint
$$;

-- The calls but the polls, whose number depends on timing.
CREATE VIEW mutate_log AS
  SELECT method, arg, status, idem IS NOT NULL AS has_key
    FROM mutate_calls() WHERE method <> 'OperationService.Get';

CREATE FOREIGN TABLE mutate_clusters2 (id text, folder_id text, environment text)
  SERVER emu_mut OPTIONS (resource 'clusters', folder_id 'b1g-mutate');

SELECT id, source_cluster_id, type, created_at FROM mutate_backups ORDER BY id;

-- DELETE by id: the scan's Get, then the Delete and its operation, polled
-- until done.  RETURNING: the row as read.
CALL emulator_mark();
DELETE FROM mutate_backups WHERE id = 'mut-prod-4'
RETURNING id, source_cluster_id, created_at;
SELECT * FROM mutate_log;
SELECT count(*) > 0 AS polled FROM mutate_calls()
 WHERE method = 'OperationService.Get';
SELECT count(*) FROM mutate_backups WHERE id = 'mut-prod-4';

-- By an IN list: only the backups that exist.
CALL emulator_mark();
DELETE FROM mutate_backups WHERE id IN ('mut-stage-4', 'mut-none')
RETURNING id;
SELECT * FROM mutate_log ORDER BY method, arg;

-- By a condition only PostgreSQL evaluates (the folder's listing, then a
-- local filter): only the rows that match are deleted.  The manual backups
-- older than 30 days, against the data's reference date.
CALL emulator_mark();
DELETE FROM mutate_backups
 WHERE type = 'MANUAL'
   AND created_at < '2026-12-01'::timestamptz - interval '30 days'
RETURNING id, type, created_at;
SELECT * FROM mutate_log ORDER BY method, arg;
SELECT id, type FROM mutate_backups ORDER BY id;

-- A lost reply (the backup was deleted, the reply did not arrive): the
-- call is retried with the same idempotency key, and the service answers
-- the same operation: one deletion.  (The cluster's listing finds the
-- backup: a Get of it would use up the fault.)
CALL emulator_mark();
DELETE FROM mutate_backups
 WHERE source_cluster_id = 'c9q-mut-faulty' AND type = 'AUTOMATED'
RETURNING id;
SELECT * FROM mutate_log;
SELECT count(DISTINCT idem) AS keys FROM mutate_calls()
 WHERE method = 'BackupService.Delete';

-- An operation that fails: its SQLSTATE, the backup, the operation and its
-- message; DETAIL counts the calls that had succeeded.
CALL emulator_mark();
SELECT code, message ~ '^could not delete backup "mut-faulty-2": operation [^ ]+ failed: ' AS message,
       detail FROM error_of($$DELETE FROM mutate_backups WHERE id = 'mut-faulty-2'$$);
SELECT * FROM mutate_log;
SELECT id FROM mutate_backups WHERE id = 'mut-faulty-2';

-- INSERT ... SELECT over several clusters: a backup of each; RETURNING
-- (which waits) gives the new backups' rows, found with ListBackups.
CALL emulator_mark();
INSERT INTO mutate_backups (source_cluster_id)
SELECT id FROM mutate_clusters2 WHERE environment IN ('PRODUCTION', 'PRESTABLE')
   AND id <> 'c9q-mut-faulty'
RETURNING id LIKE '%' AS has_id, source_cluster_id, type,
          started_at > '2026-12-01' AS started_now;
SELECT * FROM mutate_log ORDER BY method, arg;
SELECT count(DISTINCT idem) AS keys FROM mutate_calls()
 WHERE method = 'ClusterService.Backup';
SELECT source_cluster_id, type, count(*) FROM mutate_backups
 WHERE started_at > '2026-12-01' GROUP BY 1, 2 ORDER BY 1;

-- A failed backup: DETAIL counts the rows done before it.
CALL emulator_mark();
SELECT code, message ~ '^could not back up cluster "c9q-mut-faulty": operation [^ ]+ failed: ' AS message,
       detail
  FROM error_of($$INSERT INTO mutate_backups (source_cluster_id)
                  VALUES ('c9q-mut-stage'), ('c9q-mut-faulty') RETURNING id$$);
SELECT * FROM mutate_log;

-- wait_for_operations 'false': once accepted; RETURNING gives the cluster
-- and NULLs, and no operation is polled.
ALTER FOREIGN TABLE mutate_backups OPTIONS (ADD wait_for_operations 'false');
CALL emulator_mark();
INSERT INTO mutate_backups (source_cluster_id) VALUES ('c9q-mut-prod')
RETURNING *;
SELECT method, arg, status FROM mutate_calls() WHERE method NOT LIKE 'done %';
ALTER FOREIGN TABLE mutate_backups OPTIONS (DROP wait_for_operations);
SELECT pg_sleep(0.5);

-- Calls overlap: without RETURNING the rows are queued.  The first goes
-- alone, the others once it is accepted; all are made before the first
-- operation is done (the emulator's take 300 ms).
CALL emulator_mark();
DELETE FROM mutate_backups WHERE started_at > '2026-12-01';
SELECT count(*) AS calls,
       count(*) FILTER (WHERE start_us >= (SELECT min(end_us) FROM mutate_calls()
                                           WHERE method = 'BackupService.Delete'))
         AS after_first,
       max(start_us) < (SELECT min(end_us) FROM mutate_calls()
                        WHERE method LIKE 'done %') AS before_any_done
  FROM mutate_calls() WHERE method = 'BackupService.Delete';
SELECT method, status, count(*) FROM mutate_log GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) FROM mutate_backups WHERE started_at > '2026-12-01';

-- Cancelled while waiting (statement_timeout): the error names the
-- operation left running, which goes on remotely.
CREATE FUNCTION cancel_of(q text, OUT code text, OUT message text,
                          OUT context text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  code := 'ok';
EXCEPTION WHEN query_canceled THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
    context = PG_EXCEPTION_CONTEXT;
  context := regexp_replace(split_part(context, E'\n', 1),
                            'running: [^ ]+ ', 'running: <id> ');
END
$$;
CALL emulator_mark();
SET statement_timeout = '200ms';
SELECT * FROM cancel_of($$DELETE FROM mutate_backups WHERE id = 'mut-prod-3'$$);
RESET statement_timeout;
SELECT pg_sleep(0.5);
SELECT * FROM mutate_log;
SELECT count(*) FROM mutate_backups WHERE id = 'mut-prod-3';

-- A token that may read but not change: 42501 naming the backup, and no
-- call after the first refusal.
ALTER USER MAPPING FOR CURRENT_USER SERVER emu_mut
  OPTIONS (SET iam_token 'readonly-token');
CALL emulator_mark();
SELECT id FROM mutate_backups WHERE id LIKE 'mut-%' ORDER BY id;
SELECT code, message, hint, context ~ '^remote call BackupService.Delete backup_id=''mut-[a-z]+-[0-9]'' ' AS context
  FROM error_of($$DELETE FROM mutate_backups WHERE id LIKE 'mut-%'$$);
SELECT method, status, count(*) FROM mutate_log GROUP BY 1, 2 ORDER BY 1;
ALTER USER MAPPING FOR CURRENT_USER SERVER emu_mut
  OPTIONS (SET iam_token 'regress-token');

-- EXPLAIN ANALYZE runs the statement: its operations' counters.
SELECT * FROM modify_explain($$DELETE FROM mutate_backups WHERE id = 'mut-stage-3'$$, true)
  AS line WHERE line !~ 'Remote Calls';
SELECT count(*) FROM mutate_backups WHERE id = 'mut-stage-3';

SELECT id, type FROM mutate_backups ORDER BY id;

DROP VIEW mutate_log;
DROP FUNCTION mutate_calls();
DROP FUNCTION cancel_of(text);
DROP SERVER emu_mut CASCADE;

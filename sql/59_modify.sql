--
-- INSERT and DELETE on a table of backups: opt-in (the option updatable),
-- each row a call (BackupService.Delete, ClusterService.Backup) whose
-- operation is followed with OperationService.Get.  The calls are proved
-- from the emulator's log.  Everything here happens in the folder
-- b1g-mutate, which no other test reads.
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR

CREATE FOREIGN TABLE mutate_backups (
  id text, folder_id text, created_at timestamptz, source_cluster_id text,
  started_at timestamptz, source_shard_names text[], type text
) SERVER emu OPTIONS (folder_id 'b1g-mutate');

-- The lines of EXPLAIN (ANALYZE when asked) that this extension writes.
CREATE FUNCTION modify_explain(q text, with_analyze bool DEFAULT false)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE format('EXPLAIN (ANALYZE %s, COSTS OFF, TIMING OFF, SUMMARY OFF) %s',
                             CASE WHEN with_analyze THEN 'on' ELSE 'off' END, q) LOOP
    IF line ~ '^ *(Remote|Retries|Operations|Folder Filter|Delete|Insert|Foreign)' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END
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
ALTER SERVER emu OPTIONS (ADD wait_for_operations 'sometimes');
ALTER SERVER emu OPTIONS (ADD operation_endpoint 'no port');

-- The server's updatable, unless the table says otherwise.
ALTER SERVER emu OPTIONS (ADD updatable 'true');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);
SELECT pg_relation_is_updatable('redis_backups'::regclass, false);
ALTER FOREIGN TABLE mutate_backups OPTIONS (ADD updatable 'false');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);
ALTER SERVER emu OPTIONS (DROP updatable);
ALTER FOREIGN TABLE mutate_backups OPTIONS (SET updatable 'true');
SELECT pg_relation_is_updatable('mutate_backups'::regclass, false);

-- A table of clusters is never updatable.
CREATE FOREIGN TABLE mutate_clusters (id text, folder_id text) SERVER emu
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

-- A table without the id column cannot delete; without source_cluster_id,
-- cannot insert.
CREATE FOREIGN TABLE mutate_no_id (folder_id text, created_at timestamptz)
  SERVER emu OPTIONS (folder_id 'b1g-mutate', updatable 'true');
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

--
-- Set-up shared by the other tests: the extension, a server pointing at the
-- regression emulator, a user mapping, the foreign table, and helpers that
-- read the emulator's call log (one JSON object per call it received).
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR
\getenv emulator_log RBFDW_EMULATOR_LOG

CREATE EXTENSION redis_backup_fdw;
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
  FROM pg_foreign_data_wrapper WHERE fdwname = 'redis_backup_fdw';

CREATE SERVER emu FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', timeout_ms '5000',
           resource_manager_endpoint :'emulator_addr');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu
  OPTIONS (iam_token 'regress-token');

CREATE FOREIGN TABLE redis_backups (
  id text, folder_id text, created_at timestamptz, source_cluster_id text,
  started_at timestamptz, source_shard_names text[], type text
) SERVER emu;

-- Where the emulator writes its log, and the last call seen so far.
CREATE TABLE emulator (log_path text, mark bigint DEFAULT 0);
INSERT INTO emulator (log_path) VALUES (:'emulator_log');

CREATE FUNCTION emulator_log_lines() RETURNS SETOF jsonb
LANGUAGE sql AS $$
  SELECT line::jsonb
    FROM regexp_split_to_table(pg_read_file((SELECT log_path FROM emulator)),
                               E'\n') AS line
   WHERE line <> ''
$$;

-- Forget the calls logged so far.
CREATE PROCEDURE emulator_mark()
LANGUAGE sql AS $$
  UPDATE emulator
     SET mark = COALESCE((SELECT max((l->>'seq')::bigint)
                            FROM emulator_log_lines() l), 0)
$$;

-- The calls logged since the mark: method, key argument, page size, whether
-- a page token was sent, and the status answered.
CREATE FUNCTION emulator_calls()
RETURNS TABLE (method text, arg text, page_size int, token text, status text)
LANGUAGE sql AS $$
  SELECT l->>'method',
         COALESCE(l->>'backup_id', l->>'cluster_id', l->>'folder_id',
                  l->>'cloud_id', l->>'key_id'),
         (l->>'page_size')::int,
         CASE WHEN l->>'page_token' IS NULL THEN NULL
              WHEN l->>'page_token' = '' THEN 'first'
              ELSE 'next' END,
         l->>'status'
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator)
   ORDER BY (l->>'seq')::bigint
$$;

-- Run a statement; its SQLSTATE and message if it fails, else 'ok'.
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The parts of an error (SQLSTATE, message, detail, hint, first context
-- line), with the request id (random) and port numbers masked.
CREATE FUNCTION error_of(q text,
  OUT code text, OUT message text, OUT detail text, OUT hint text,
  OUT context text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  code := 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
    context = PG_EXCEPTION_CONTEXT;
  message := regexp_replace(message, ':[0-9]+', ':PORT', 'g');
  context := regexp_replace(split_part(context, E'\n', 1),
                            'request id [0-9a-f-]+', 'request id <id>');
END
$$;

-- The lines of EXPLAIN (ANALYZE when asked) that match pattern: those this
-- extension writes, which no PostgreSQL version words differently (a plan
-- node's "(actual ...)" cut off).
CREATE FUNCTION explain_lines(q text, pattern text,
                              with_analyze bool DEFAULT false)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE format('EXPLAIN (ANALYZE %s, COSTS OFF, TIMING OFF, SUMMARY OFF) %s',
                             CASE WHEN with_analyze THEN 'on' ELSE 'off' END, q) LOOP
    IF line ~ pattern THEN
      RETURN NEXT regexp_replace(line, ' \(actual .*\)$', '');
    END IF;
  END LOOP;
END
$$;

-- A first query, proved by the log to have called List once.
CALL emulator_mark();
SELECT id, source_cluster_id FROM redis_backups
 WHERE folder_id = 'b1g-beta' ORDER BY id;
SELECT * FROM emulator_calls();

--
-- Channels: one per user mapping per backend, reused across queries, and
-- rebuilt after ALTER SERVER or ALTER USER MAPPING.  The emulator logs each
-- call's peer address: one TCP connection, one peer.
--
CREATE FUNCTION emulator_peers() RETURNS TABLE (call int, peer text)
LANGUAGE sql AS $$
  SELECT (row_number() OVER (ORDER BY (l->>'seq')::bigint))::int,
         l->>'peer'
    FROM emulator_log_lines() l
   WHERE (l->>'seq')::bigint > (SELECT mark FROM emulator)
$$;

-- Three queries, three methods: one connection.
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
CALL emulator_mark();
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT count(*) FROM redis_backups WHERE id = 'beta-1';
SELECT count(*) FROM redis_backups WHERE source_cluster_id = 'c9q-beta1';
SELECT count(*) AS calls, count(DISTINCT peer) AS connections FROM emulator_peers();

-- ALTER SERVER: the next query opens a new channel.
CALL emulator_mark();
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
ALTER SERVER emu OPTIONS (SET timeout_ms '4000');
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT count(*) AS calls, count(DISTINCT peer) AS connections,
       bool_and(peer = (SELECT peer FROM emulator_peers() WHERE call = 2))
         FILTER (WHERE call >= 2) AS new_one_kept
  FROM emulator_peers();

-- ALTER USER MAPPING: a new channel too (and the new token is used).
CALL emulator_mark();
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
ALTER USER MAPPING FOR CURRENT_USER SERVER emu OPTIONS (SET iam_token 'limited-token');
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT sqlstate_of($$SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-beta'$$);
ALTER USER MAPPING FOR CURRENT_USER SERVER emu OPTIONS (SET iam_token 'regress-token');
SELECT count(*) AS calls, count(DISTINCT peer) AS connections FROM emulator_peers();

-- A cursor still reading keeps its channel across an ALTER SERVER in the
-- same transaction; the next query gets the new one.
CALL emulator_mark();
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM small_pages WHERE folder_id = 'b1g-alpha';
FETCH 1 FROM c;
ALTER SERVER emu OPTIONS (SET timeout_ms '5000');
FETCH 3 FROM c;
COMMIT;
SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SELECT call, dense_rank() OVER (ORDER BY first_call) AS connection
  FROM (SELECT call, min(call) OVER (PARTITION BY peer) AS first_call
          FROM emulator_peers()) p
 ORDER BY call;

-- A query started while a cursor is open uses what ALTER SERVER and ALTER
-- USER MAPPING say now; only the open cursor keeps its old channel.
\getenv emulator_addr RBFDW_EMULATOR_ADDR
CREATE SERVER moving FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false', max_attempts '1',
           page_size '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER moving
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE moving_backups (id text, folder_id text) SERVER moving;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM moving_backups WHERE folder_id = 'b1g-alpha';
FETCH 1 FROM c;
ALTER SERVER moving OPTIONS (SET endpoint '127.0.0.1:1');
SELECT sqlstate_of($$SELECT id FROM moving_backups WHERE id = 'alpha-1'$$);
FETCH 1 FROM c;
ALTER SERVER moving OPTIONS (SET endpoint :'emulator_addr');
ALTER USER MAPPING FOR CURRENT_USER SERVER moving
  OPTIONS (SET iam_token 'no-such-token');
SELECT sqlstate_of($$SELECT id FROM moving_backups WHERE id = 'alpha-1'$$);
FETCH 2 FROM c;
COMMIT;
DROP SERVER moving CASCADE;

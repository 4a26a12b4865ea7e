--
-- Credentials: a ready-made IAM token, a service account's authorized key
-- (inline or in a file) exchanged for tokens with IamTokenService.Create,
-- or the VM's service account from the metadata service; tokens cached and
-- refreshed; secrets never shown.
--
\getenv emulator_addr RBFDW_EMULATOR_ADDR
\getenv metadata_addr RBFDW_METADATA_ADDR
\getenv short_addr RBFDW_SHORT_ADDR
\getenv short_metadata_addr RBFDW_SHORT_METADATA_ADDR
\getenv iam_behind_addr RBFDW_IAM_BEHIND_ADDR
\getenv iam_ahead_addr RBFDW_IAM_AHEAD_ADDR
\getenv key_file RBFDW_SA_KEY_FILE
\getenv unknown_key_file RBFDW_SA_KEY_UNKNOWN_FILE
\getenv forged_key_file RBFDW_SA_KEY_FORGED_FILE
\getenv pg_log RBFDW_PG_LOG
-- The key as psql users load it (made by the test scripts, never committed).
\set key `cat "$RBFDW_SA_KEY_FILE"`
\set forged_key `cat "$RBFDW_SA_KEY_FORGED_FILE"`

-- Everything, at every log level, goes to the server log from here on; it
-- is searched for secrets at the end.
SET log_min_messages = debug5;
SELECT count(*) AS log_lines_before FROM regexp_split_to_table(pg_read_file(:'pg_log'), E'\n') \gset

-- The SQLSTATE, message and detail of a failing statement (loopback
-- addresses, whose ports differ in every run, as ADDRESS).
CREATE FUNCTION detail_of(stmt text)
RETURNS TABLE (code text, message text, detail text)
LANGUAGE plpgsql AS $$
DECLARE c text; m text; d text;
BEGIN
  EXECUTE stmt;
  RETURN QUERY SELECT 'ok', '', '';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS c = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
  RETURN QUERY SELECT c, m, regexp_replace(d, '127\.0\.0\.1:[0-9]+', 'ADDRESS', 'g');
END
$$;

CREATE SERVER creds FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', iam_endpoint :'emulator_addr',
           metadata_address :'metadata_addr', tls 'false', max_attempts '1');
CREATE FOREIGN TABLE creds_backups (id text, folder_id text) SERVER creds;

-- EXPLAIN needs no user mapping; VERBOSE says there is none.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM creds_backups WHERE id = 'alpha-1';

-- Keys are checked when the user mapping is made: 22023, never quoting them.
SELECT sqlstate_of(stmt) AS result FROM (VALUES
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key 'not json')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key '{"id": "k1"}')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key
     '{"id": "k1", "service_account_id": "sa1", "private_key": "no pem here"}')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key
     '{"id": "k1", "service_account_id": "sa1", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key_file 'relative/key.json')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (service_account_key_file '/nonexistent/key.json')$$),
  ($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds OPTIONS (instance_service_account 'maybe')$$)
) AS t(stmt);

-- A statement's outcome, rolled back either way: 'accepted', or the
-- SQLSTATE, message and detail of its error.
CREATE FUNCTION outcome_of(stmt text)
RETURNS TABLE (code text, message text, detail text)
LANGUAGE plpgsql AS $$
DECLARE c text; m text; d text;
BEGIN
  EXECUTE stmt;
  RAISE EXCEPTION 'accepted' USING ERRCODE = 'RB001';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS c = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
  IF c = 'RB001' THEN
    RETURN QUERY SELECT 'accepted', '', '';
  ELSE
    RETURN QUERY SELECT c, m, d;
  END IF;
END
$$;

-- An RSA key IAM cannot take (under 2048 bits) is refused when the user
-- mapping is made, naming the key id.
\set rsa512_key `cat "$RBFDW_SA_KEY_RSA512_FILE"`
\set rsa1024_key `cat "$RBFDW_SA_KEY_RSA1024_FILE"`
\getenv rsa1024_key_file RBFDW_SA_KEY_RSA1024_FILE
SELECT * FROM outcome_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key %L)$$, :'rsa512_key'));
SELECT * FROM outcome_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key %L)$$, :'rsa1024_key'));
SELECT * FROM outcome_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key_file %L)$$, :'rsa1024_key_file'));

-- The key id and the service account id are checked: a string of 1 to 50
-- letters, digits, hyphens and underscores (the good key with one field
-- changed).  Messages never quote what is refused.
SELECT v.what, o.code, o.message, o.detail,
       coalesce(position(nullif(v.value #>> '{}', '') IN o.message || o.detail) > 0,
                false) AS quoted
  FROM (VALUES ('id with a quote and a backslash', 'id', to_jsonb(E'kid"\\x'::text)),
               ('id with a newline', 'id', to_jsonb(E'kid\nINJECTED'::text)),
               ('id with a control character', 'id', to_jsonb(E'kid\x01'::text)),
               ('id of 60000 characters', 'id', to_jsonb(repeat('k', 60000))),
               ('id of 51 characters', 'id', to_jsonb(repeat('k', 51))),
               ('id that is a number', 'id', '12345'::jsonb),
               ('empty id', 'id', to_jsonb(''::text)),
               ('id that is not ASCII', 'id', to_jsonb('kïd'::text)),
               ('service account id with a space', 'service_account_id', to_jsonb('sa regress'::text)),
               ('service account id that is an object', 'service_account_id', '{"a": 1}'::jsonb),
               ('id of 50 characters', 'id', to_jsonb(repeat('k', 50))),
               ('id with hyphens and underscores', 'id', to_jsonb('aje-KEY_0'::text))
       ) AS v(what, field, value),
       LATERAL outcome_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
                                   OPTIONS (service_account_key %L)$$,
                                 jsonb_set(:'key'::jsonb, ARRAY[v.field], v.value)::text)) o;

-- Exactly one credential: two or more are refused, naming the options.
SELECT sqlstate_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (iam_token 'x', service_account_key %L)$$, :'key'));
SELECT sqlstate_of($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (iam_token 'x', instance_service_account 'true')$$);
-- instance_service_account 'false' is no credential.
CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (iam_token 'regress-token', instance_service_account 'false');
SELECT sqlstate_of($$ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (SET instance_service_account 'true')$$);
DROP USER MAPPING FOR CURRENT_USER SERVER creds;

-- A key file is a server file: only for superusers and pg_read_server_files.
CREATE ROLE regress_rbfdw_keyless;
GRANT USAGE ON FOREIGN SERVER creds TO regress_rbfdw_keyless;
SET ROLE regress_rbfdw_keyless;
SELECT sqlstate_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key_file %L)$$, :'key_file'));
RESET ROLE;
DROP OWNED BY regress_rbfdw_keyless;
DROP ROLE regress_rbfdw_keyless;

-- instance_service_account lends a user mapping the identity of the VM the
-- database server runs on: only a superuser may set it true (42501), by
-- CREATE or ALTER, for a role or for PUBLIC; 'false' is anyone's.
CREATE ROLE regress_rbfdw_vm;
GRANT USAGE ON FOREIGN SERVER creds TO regress_rbfdw_vm;
GRANT USAGE ON FOREIGN DATA WRAPPER redis_backup_fdw TO regress_rbfdw_vm;
GRANT SELECT ON creds_backups TO regress_rbfdw_vm;
SET ROLE regress_rbfdw_vm;
SELECT sqlstate_of($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (instance_service_account 'true')$$);
CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (instance_service_account 'false');
SELECT sqlstate_of($$ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (SET instance_service_account 'on')$$);
DROP USER MAPPING FOR CURRENT_USER SERVER creds;
CREATE SERVER vm_own FOREIGN DATA WRAPPER redis_backup_fdw;
SELECT sqlstate_of($$CREATE USER MAPPING FOR PUBLIC SERVER vm_own
  OPTIONS (instance_service_account 'yes')$$);
DROP SERVER vm_own;
RESET ROLE;
-- A mapping a superuser made for the role works for it ...
CREATE USER MAPPING FOR regress_rbfdw_vm SERVER creds
  OPTIONS (instance_service_account 'true');
SET ROLE regress_rbfdw_vm;
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-alpha';
-- ... and stays the superuser's to change.
SELECT sqlstate_of($$ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (SET instance_service_account 'true')$$);
RESET ROLE;
DROP OWNED BY regress_rbfdw_vm;
DROP ROLE regress_rbfdw_vm;

-- A key file that is a FIFO (or anything but a regular file) is refused at
-- once, without blocking in open() where no cancel reaches the backend.
-- (Should it block, a writer opens the FIFO after 2 s: the test then fails
-- on time instead of hanging.)
\getenv fifo RBFDW_SA_KEY_FIFO
\! timeout 10 sh -c 'sleep 2; exec 3>"$RBFDW_SA_KEY_FIFO"' >/dev/null 2>&1 &
SELECT clock_timestamp() AS started \gset
SELECT replace(sqlstate_of(format($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key_file %L)$$, :'fifo')), :'fifo', 'FIFO') AS result;
SELECT clock_timestamp() - :'started' < interval '1 s' AS refused_at_once;
SELECT replace(sqlstate_of($$CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key_file '/dev/null')$$), :'fifo', 'FIFO') AS result;

-- An inline key: one exchange (checked by the emulator: signature, kid,
-- iss, aud, iat, exp), then the token is reused.
CREATE USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (service_account_key :'key');
CALL emulator_mark();
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-alpha';
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-beta';
SELECT method, arg, status FROM emulator_calls();
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM creds_backups WHERE id = 'alpha-1';

-- ALTER USER MAPPING drops the cached token: the key file is read and
-- exchanged anew; EXPLAIN ANALYZE counts the exchange.
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key, ADD service_account_key_file :'key_file');
-- (EXPLAIN's lines with the key file's path, which differs between runs,
-- as KEY_FILE)
CREATE FUNCTION explain_masked(q text, path text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  FOR r IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q
  LOOP
    RETURN NEXT replace(r, path, 'KEY_FILE');
  END LOOP;
END
$$;
CALL emulator_mark();
SELECT * FROM explain_masked($$SELECT id FROM creds_backups WHERE id = 'alpha-1'$$, :'key_file');
SELECT method, arg, status FROM emulator_calls();

-- A call refused UNAUTHENTICATED with a cached token: the token is dropped,
-- a fresh one obtained and the call retried, once (the emulator refuses
-- every second call for b1g-reauth).
CALL emulator_mark();
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-reauth';
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-reauth';
SELECT method, arg, status FROM emulator_calls();
-- A ready-made iam_token is not retried.
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key_file, ADD iam_token 'regress-token');
CALL emulator_mark();
SELECT sqlstate_of($$SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-reauth'$$);
SELECT method, arg, status FROM emulator_calls();

-- The key file is read again whenever a token is obtained: one replaced
-- by a FIFO is refused then, at once (ALTER SERVER drops the cached token).
\getenv swap_file RBFDW_SA_KEY_SWAP_FILE
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP iam_token, ADD service_account_key_file :'swap_file');
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-alpha';
\! rm -f "$RBFDW_SA_KEY_SWAP_FILE" && mkfifo -m 0600 "$RBFDW_SA_KEY_SWAP_FILE" && chown postgres "$RBFDW_SA_KEY_SWAP_FILE"
\! timeout 10 sh -c 'sleep 2; exec 3>"$RBFDW_SA_KEY_SWAP_FILE"' >/dev/null 2>&1 &
ALTER SERVER creds OPTIONS (ADD timeout_ms '5001');
SELECT clock_timestamp() AS started \gset
SELECT code, replace(message, :'swap_file', 'SWAP_FILE') AS message
  FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
SELECT clock_timestamp() - :'started' < interval '1 s' AS refused_at_once;
ALTER SERVER creds OPTIONS (DROP timeout_ms);
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key_file, ADD iam_token 'regress-token');

-- IAM refusing the JWT is 28000 naming the key: another private key under
-- the registered key id, an unregistered key id, a JWT issued in IAM's
-- future, and one already expired for IAM.
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP iam_token, ADD service_account_key :'forged_key');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key, ADD service_account_key_file :'unknown_key_file');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key_file, ADD service_account_key :'key');
ALTER SERVER creds OPTIONS (SET iam_endpoint :'iam_behind_addr');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
ALTER SERVER creds OPTIONS (SET iam_endpoint :'iam_ahead_addr');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
ALTER SERVER creds OPTIONS (SET iam_endpoint :'emulator_addr');

-- The VM's service account, from the metadata service.
ALTER USER MAPPING FOR CURRENT_USER SERVER creds
  OPTIONS (DROP service_account_key, ADD instance_service_account 'true');
CALL emulator_mark();
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT id FROM creds_backups WHERE id = 'beta-1';
SELECT method, arg, status FROM emulator_calls();
-- No service account attached: the metadata service answers 404.
ALTER SERVER creds OPTIONS (SET metadata_address :'short_metadata_addr');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
-- A metadata service that takes 30 s to answer: statement_timeout (and
-- cancel) interrupt the request at once.
\getenv slow_metadata_addr RBFDW_SLOW_METADATA_ADDR
ALTER SERVER creds OPTIONS (SET metadata_address :'slow_metadata_addr');
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS started \gset
SELECT count(*) FROM creds_backups WHERE folder_id = 'b1g-alpha';
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '1.3 s' AS interrupted_at_once;
-- Nothing answers there: retried as calls are, then 08006.
ALTER SERVER creds OPTIONS (SET metadata_address '127.0.0.1:1');
SELECT * FROM detail_of('SELECT count(*) FROM creds_backups WHERE folder_id = ''b1g-alpha''');
DROP SERVER creds CASCADE;

-- Tokens that live 6 s (an emulator issuing them so): a query after the
-- refresh point makes exactly one new exchange.
CREATE SERVER short FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'short_addr', iam_endpoint :'short_addr', tls 'false',
           page_size '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER short
  OPTIONS (service_account_key :'key');
CREATE FOREIGN TABLE short_backups (id text, folder_id text) SERVER short;
SELECT count(*) FROM short_backups WHERE id = 'b1g-short-b0000000';
SELECT pg_sleep(5);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM short_backups WHERE id IN ('b1g-short-b0000001', 'b1g-short-b0000002');
-- A cursor reading one backup a page across an expiry: each call takes the
-- current token; no error.
SELECT regexp_replace(log_path, 'emulator\.log$', 'emulator-short.log') AS short_log
  FROM emulator \gset
SELECT count(*) FILTER (WHERE line <> '') AS short_log_lines
  FROM regexp_split_to_table(pg_read_file(:'short_log'), E'\n') line \gset
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM short_backups WHERE folder_id = 'b1g-short';
FETCH 3 FROM c;
SELECT pg_sleep(7);
MOVE 30 FROM c;
FETCH ALL FROM c;
COMMIT;
-- Its calls, from the short-lived emulator's log: all OK, and the token was
-- exchanged anew on the way.
SELECT l->>'method' AS method, l->>'status' AS status, count(*)
  FROM (SELECT line::jsonb AS l
          FROM regexp_split_to_table(pg_read_file(:'short_log'), E'\n')
               WITH ORDINALITY AS t(line, n)
         WHERE n > :short_log_lines AND line <> '') c
 GROUP BY 1, 2 ORDER BY 1, 2;
-- A key file is read whenever a token is needed: rotated in place, the
-- next exchange (once the cached token is due) uses the new key.
\getenv slot_file RBFDW_SA_KEY_SLOT_FILE
ALTER USER MAPPING FOR CURRENT_USER SERVER short
  OPTIONS (DROP service_account_key, ADD service_account_key_file :'slot_file');
SELECT count(*) FROM short_backups WHERE id = 'b1g-short-b0000000';
\! cp "$RBFDW_SA_KEY_ROTATED_FILE" "$RBFDW_SA_KEY_SLOT_FILE"
SELECT count(*) FILTER (WHERE line <> '') AS short_log_lines
  FROM regexp_split_to_table(pg_read_file(:'short_log'), E'\n') line \gset
SELECT pg_sleep(5);
SELECT count(*) FROM short_backups WHERE id = 'b1g-short-b0000000';
SELECT l->>'method' AS method, l->>'key_id' AS key_id, l->>'status' AS status
  FROM (SELECT line::jsonb AS l
          FROM regexp_split_to_table(pg_read_file(:'short_log'), E'\n')
               WITH ORDINALITY AS t(line, n)
         WHERE n > :short_log_lines AND line <> '') c
 WHERE l->>'method' = 'IamTokenService.Create';

-- statement_timeout and cancel interrupt a token exchange like any call
-- (the exchange for key kid-hang never gets an answer).
\set hang_key `cat "$RBFDW_SA_KEY_HANG_FILE"`
ALTER USER MAPPING FOR CURRENT_USER SERVER short
  OPTIONS (DROP service_account_key_file, ADD service_account_key :'hang_key');
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS started \gset
SELECT count(*) FROM short_backups WHERE id = 'b1g-short-b0000000';
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '1.3 s' AS interrupted_at_once;
DROP SERVER short CASCADE;

-- No secret in the server log of all of the above (log_min_messages was
-- debug5): neither the private key, nor a JWT, nor an issued token.
RESET log_min_messages;
SELECT count(*) FILTER (WHERE line LIKE '%' || split_part(:'key'::json->>'private_key', E'\n', 3) || '%') AS key_lines,
       count(*) FILTER (WHERE line LIKE '%eyJ0eXAiOiJKV1Qi%') AS jwt_lines,
       count(*) FILTER (WHERE line LIKE '%t1.emu.%') AS token_lines,
       count(*) > :log_lines_before + 100 AS logged_at_debug5
  FROM regexp_split_to_table(pg_read_file(:'pg_log'), E'\n') line;

--
-- Secrets: tokens live only in user mappings and never show anywhere else.
--
\getenv pg_log RBFDW_PG_LOG
\getenv emulator_log RBFDW_EMULATOR_LOG

-- A role without access to a mapping cannot read its token.
CREATE ROLE regress_rbfdw_other;
GRANT SELECT ON redis_backups TO regress_rbfdw_other;
SET ROLE regress_rbfdw_other;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'emu';
-- Nor use it: it has no mapping of its own.
SELECT id FROM redis_backups WHERE id = 'alpha-1';
RESET ROLE;
DROP OWNED BY regress_rbfdw_other;
DROP ROLE regress_rbfdw_other;

-- Errors and EXPLAIN carry no token: provoke a few and look.
CREATE ROLE regress_rbfdw_echo;
GRANT SELECT ON redis_backups TO regress_rbfdw_echo;
CREATE FUNCTION all_error_text(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  m text; d text; h text; c text;
BEGIN
  EXECUTE q;
  RETURN '';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
    h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
  RETURN concat_ws(' ', m, d, h, c);
END
$$;
ALTER USER MAPPING FOR CURRENT_USER SERVER emu OPTIONS (SET iam_token 'secret-wrong-token');
SELECT all_error_text($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-alpha'$$)
       LIKE '%secret-wrong-token%' AS token_in_error;
ALTER USER MAPPING FOR CURRENT_USER SERVER emu OPTIONS (SET iam_token 'regress-token');
SELECT all_error_text($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-garbage'$$)
       LIKE '%regress-token%' AS token_in_error;

-- A careless server that quotes the token in its error message: the
-- error passes its message on with the token cut out.
CREATE USER MAPPING FOR regress_rbfdw_echo SERVER emu
  OPTIONS (iam_token 'echo-secret-token');
SET ROLE regress_rbfdw_echo;
SELECT regexp_replace(all_error_text($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-echo-token'$$),
                      'request id [0-9a-f-]+', 'request id <id>') AS error;
RESET ROLE;

-- Only whole occurrences are cut out: a token that is part of a longer
-- word of the message leaves the message as it is (the emulator answers
-- b1g-invalid "injected INVALID_ARGUMENT" whatever the token) ...
ALTER USER MAPPING FOR regress_rbfdw_echo SERVER emu OPTIONS (SET iam_token 'INVALID_ARG');
SET ROLE regress_rbfdw_echo;
SELECT regexp_replace(all_error_text($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-invalid'$$),
                      'request id [0-9a-f-]+', 'request id <id>') AS error;
RESET ROLE;
-- ... and one that is a whole word is cut out.
ALTER USER MAPPING FOR regress_rbfdw_echo SERVER emu OPTIONS (SET iam_token 'INVALID_ARGUMENT');
SET ROLE regress_rbfdw_echo;
SELECT regexp_replace(all_error_text($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-invalid'$$),
                      'request id [0-9a-f-]+', 'request id <id>') AS error;
RESET ROLE;
-- Tokens too short to be real are refused (22023, the value not quoted).
SELECT sqlstate_of(format($$ALTER USER MAPPING FOR regress_rbfdw_echo SERVER emu OPTIONS (SET iam_token %L)$$, t))
  FROM (VALUES ('t'), ('tok'), ('1234567'), ('12345678')) AS v(t);

-- The server log and the emulator's log hold no token, though every test
-- so far sent one with each call.
SELECT pg_read_file(:'pg_log') LIKE '%regress-token%' AS token_in_server_log,
       pg_read_file(:'pg_log') LIKE '%secret-wrong-token%' AS wrong_token_in_server_log;
SELECT pg_read_file(:'emulator_log') LIKE '%regress-token%' AS token_in_emulator_log,
       pg_read_file(:'emulator_log') LIKE '%"auth":"ok"%' AS emulator_saw_auth;

DROP OWNED BY regress_rbfdw_echo;
DROP ROLE regress_rbfdw_echo;

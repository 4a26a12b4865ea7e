--
-- Option validation at CREATE/ALTER time.
--

\set accented_folder `printf 'é%.0s' $(seq 50)`

-- Unknown options: HV00D with the valid ones in the hint.
CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (host 'x');
CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (token 'x');
CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (endpoint 'x:1');
CREATE FOREIGN TABLE bad (id text OPTIONS (column_name 'x')) SERVER emu;
ALTER FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (ADD debug 'true');

-- Bad values: 22023, with a hint where one helps.
CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'nohost');
CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (page_size '1001');
CREATE FOREIGN TABLE bad (x text OPTIONS (field 'size')) SERVER emu;

-- The SQLSTATE of each rejected option.
SELECT sqlstate_of(stmt) AS result, stmt
  FROM (VALUES
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (host 'x')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (iam_token 'x')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (folder_id 'x')$$),
    ($$CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (tls 'false')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'nohost')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'h:0')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'h:65536')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint ':443')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (tls 'maybe')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (timeout_ms '0')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (timeout_ms '10s')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (timeout_ms '99999999999')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (page_size '0')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (max_attempts '11')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (ca_file 'relative.pem')$$),
    ($$CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (folder_id '')$$),
    ($$CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (folder_id '$$ || repeat('x', 51) || $$')$$),
    ($$CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (page_size '-1')$$),
    ($$CREATE FOREIGN TABLE bad (x text OPTIONS (field 'size')) SERVER emu$$),
    ($$CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (iam_token '')$$),
    ($$CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (iam_token 'two words')$$),
    ($$CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (iam_token 't1.ünïcode')$$),
    ($$ALTER SERVER emu OPTIONS (ADD page_size 'many')$$),
    ($$ALTER SERVER emu OPTIONS (SET endpoint 'localhost')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'my host:443')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'h: 443')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'h:+443')$$),
    ($$CREATE SERVER bad FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint 'h:443 ')$$),
    ($$CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (iam_token 't1.tab	x')$$),
    ($$CREATE FOREIGN TABLE bad (id text) SERVER emu OPTIONS (folder_id '$$ || repeat('é', 51) || $$')$$)
  ) AS t(stmt);

-- Limits count characters, not bytes: 50 accented letters (100 bytes) are
-- a valid folder_id.
CREATE FOREIGN TABLE accented (id text) SERVER emu
  OPTIONS (folder_id :'accented_folder');
DROP FOREIGN TABLE accented;

-- Good values pass.
CREATE SERVER good FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint 'mdb.api.cloud.yandex.net:443', tls 'true',
           timeout_ms '1000', page_size '1', max_attempts '10',
           ca_file '/etc/ssl/certs/ca-certificates.crt');
CREATE FOREIGN TABLE good_table (b text OPTIONS (field 'id'))
  SERVER good OPTIONS (folder_id 'b1gq0fh8ga5u6gkp3tmn', page_size '1000');
DROP SERVER good CASCADE;

-- Endpoints are host:port and nothing else (a host name, an IPv4 address
-- or an IPv6 address in brackets), by the client's own rule: no gRPC target
-- scheme, URI, user part or second port.
SELECT sqlstate_of(format('CREATE SERVER endpoints FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (%I %L); DROP SERVER endpoints',
                          option, value)) AS result, option, value
  FROM (VALUES ('endpoint', 'unix:/tmp/x:1'), ('endpoint', 'unix-abstract:x:1'),
               ('endpoint', 'ipv4:127.0.0.1:1'), ('endpoint', 'dns:///h:443'),
               ('endpoint', 'https://h:443'), ('endpoint', 'h:443:1'),
               ('iam_endpoint', 'unix:/tmp/x:1'),
               ('resource_manager_endpoint', 'dns:///h:443'),
               ('metadata_address', 'user@host:80'),
               ('metadata_address', 'host/path:80'), ('endpoint', '-h:443'),
               ('endpoint', 'h-.example:443'), ('endpoint', 'a..b:443'),
               ('endpoint', 'h.:443'), ('endpoint', '999.1.1.1:443'),
               ('endpoint', '1.2.3:443'), ('endpoint', '[::1:443'),
               ('endpoint', '[h]:443'), ('endpoint', '::1:443'),
               ('endpoint', 'localhost:443'), ('endpoint', '127.0.0.1:1'),
               ('endpoint', '[::1]:443'), ('endpoint', '[2001:db8::10]:8443'),
               ('endpoint', 'my_host-2.example.com:443'),
               ('metadata_address', '169.254.169.254:80')) AS t(option, value);

-- Integer options, one rule (PostgreSQL's integer input, plain form):
-- white space around and a sign are taken ...
SELECT sqlstate_of(format('CREATE SERVER ints FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (%I %L); DROP SERVER ints',
                          option, value)) AS result, option, value
  FROM (VALUES ('max_attempts', '8 '), ('max_attempts', ' 8'), ('max_attempts', '+4'),
               ('max_attempts', E'\t+4\n'), ('max_attempts', '04'),
               ('timeout_ms', '86400000'), ('page_size', ' -0 '),
               ('max_attempts', '1_0'), ('max_attempts', '0x8'), ('max_attempts', '8 8'),
               ('max_attempts', ' '), ('max_attempts', '+'), ('max_attempts', '--1'),
               ('max_attempts', '1e1'), ('max_attempts', '8.0'),
               ('timeout_ms', '4294967297'), ('timeout_ms', '86400001')) AS t(option, value);
-- ... and mean the same number: pages of 3, from ' 3 '.
CREATE FOREIGN TABLE spaced_page (id text) SERVER emu
  OPTIONS (folder_id 'b1g-alpha', page_size ' 3 ');
CALL emulator_mark();
SELECT count(*) FROM spaced_page;
SELECT method, arg, page_size, token FROM emulator_calls();
DROP FOREIGN TABLE spaced_page;

-- Boolean options are read as the validator reads them: what CREATE takes,
-- a scan takes ('no', 'yes', 'off', 'on', ...).
\getenv emulator_addr RBFDW_EMULATOR_ADDR
CREATE SERVER bools FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'no',
           resource_manager_endpoint :'emulator_addr');
CREATE USER MAPPING FOR CURRENT_USER SERVER bools
  OPTIONS (iam_token 'regress-token', instance_service_account 'no');
CREATE FOREIGN TABLE bools_cloud (id text) SERVER bools
  OPTIONS (cloud_id 'cloud-alpha', skip_denied_folders 'yes');
SELECT count(*) FROM bools_cloud;
DROP SERVER bools CASCADE;

-- ca_file reads a server file: only for superusers and members of
-- pg_read_server_files.
CREATE ROLE regress_rbfdw_user;
CREATE ROLE regress_rbfdw_reader IN ROLE pg_read_server_files;
GRANT USAGE ON FOREIGN DATA WRAPPER redis_backup_fdw
  TO regress_rbfdw_user, regress_rbfdw_reader;
SET ROLE regress_rbfdw_user;
CREATE SERVER user_server FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (ca_file '/etc/ssl/certs/ca-certificates.crt');
CREATE SERVER user_server FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint 'localhost:1');
ALTER SERVER user_server OPTIONS (ADD ca_file '/etc/passwd');
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_rbfdw_reader;
CREATE SERVER reader_server FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (ca_file '/etc/ssl/certs/ca-certificates.crt');
RESET ROLE;
DROP SERVER user_server, reader_server;
DROP OWNED BY regress_rbfdw_user, regress_rbfdw_reader;
DROP ROLE regress_rbfdw_user, regress_rbfdw_reader;

-- Columns are checked when the table is scanned: HV007 and HV004.
CREATE FOREIGN TABLE bad_column (id text, size bigint) SERVER emu;
SELECT id FROM bad_column WHERE id = 'alpha-1';
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad_type (id text, created_at date) SERVER emu;
SELECT id FROM bad_type WHERE id = 'alpha-1';
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad_array (id text, source_shard_names text) SERVER emu;
SELECT id FROM bad_array WHERE id = 'alpha-1';
CREATE FOREIGN TABLE bad_int (id integer) SERVER emu;
SELECT id FROM bad_int WHERE id = 1;
DROP FOREIGN TABLE bad_column, bad_type, bad_array, bad_int;

-- The no-key error's SQLSTATE.
SELECT sqlstate_of('SELECT * FROM redis_backups');

-- A user mapping without iam_token: 28000 before any call.
CREATE SERVER no_token FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint 'localhost:1', tls 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER no_token;
CREATE FOREIGN TABLE no_token_backups (id text) SERVER no_token;
SELECT * FROM no_token_backups WHERE id = 'x';
\echo :LAST_ERROR_SQLSTATE
-- No user mapping at all.
DROP USER MAPPING FOR CURRENT_USER SERVER no_token;
SELECT * FROM no_token_backups WHERE id = 'x';
DROP SERVER no_token CASCADE;

--
-- Transport security: TLS with certificate and host name verification.
-- The TLS emulator's certificate is for DNS:localhost, signed by a test CA.
--
\getenv tls_addr RBFDW_EMULATOR_TLS_ADDR
\getenv tls_ip_addr RBFDW_EMULATOR_TLS_IP_ADDR
\getenv ca_file RBFDW_CA_FILE
\getenv untrusted_ca_file RBFDW_UNTRUSTED_CA_FILE

-- An error's SQLSTATE, message and the last part of its detail (the
-- reason gRPC gives), with port numbers masked.
CREATE FUNCTION tls_result(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  code text;
  msg text;
  detail text;
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
    detail = PG_EXCEPTION_DETAIL;
  RETURN regexp_replace(code || ': ' || msg ||
                        coalesce(E'\n  reason: ' ||
                                 trim(substring(detail from '[^:]*$')), ''),
                        ':[0-9]+', ':PORT', 'g');
END
$$;

-- The test CA: works, and EXPLAIN VERBOSE says TLS.
CREATE SERVER tls_ok FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_addr', ca_file :'ca_file', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_ok
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_ok_backups (id text, folder_id text) SERVER tls_ok;
SELECT id FROM tls_ok_backups WHERE folder_id = 'b1g-beta' ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM tls_ok_backups WHERE folder_id = 'b1g-beta';

-- The system roots do not know the test CA.
CREATE SERVER tls_system FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_addr', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_system
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_system_backups (id text, folder_id text)
  SERVER tls_system;
SELECT tls_result($$SELECT id FROM tls_system_backups WHERE folder_id = 'b1g-beta'$$);

-- Another CA: refused.
CREATE SERVER tls_untrusted FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_addr', ca_file :'untrusted_ca_file', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_untrusted
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_untrusted_backups (id text, folder_id text)
  SERVER tls_untrusted;
SELECT tls_result($$SELECT id FROM tls_untrusted_backups WHERE folder_id = 'b1g-beta'$$);

-- The right CA but the wrong host name (the certificate names localhost
-- only; this connects to 127.0.0.1): refused.
CREATE SERVER tls_wrong_host FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_ip_addr', ca_file :'ca_file', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_wrong_host
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_wrong_host_backups (id text, folder_id text)
  SERVER tls_wrong_host;
SELECT tls_result($$SELECT id FROM tls_wrong_host_backups WHERE folder_id = 'b1g-beta'$$);

-- Plaintext to a TLS server: refused.
CREATE SERVER tls_plain FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_addr', tls 'false', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_plain
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_plain_backups (id text, folder_id text)
  SERVER tls_plain;
SELECT tls_result($$SELECT id FROM tls_plain_backups WHERE folder_id = 'b1g-beta'$$);

-- A CA file that does not exist, or holds no certificate.
ALTER SERVER tls_untrusted OPTIONS (SET ca_file '/nonexistent/ca.pem');
SELECT tls_result($$SELECT id FROM tls_untrusted_backups WHERE folder_id = 'b1g-beta'$$);
ALTER SERVER tls_untrusted OPTIONS (SET ca_file '/etc/hostname');
SELECT tls_result($$SELECT id FROM tls_untrusted_backups WHERE folder_id = 'b1g-beta'$$);

-- Fixing the server's options fixes the scan (the channel is rebuilt).
ALTER SERVER tls_untrusted OPTIONS (SET ca_file :'ca_file');
SELECT id FROM tls_untrusted_backups WHERE folder_id = 'b1g-beta' ORDER BY id;

DROP SERVER tls_ok, tls_system, tls_untrusted, tls_wrong_host, tls_plain CASCADE;

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
                                 nullif(trim(substring(detail from '[^:]*$')), ''),
                                 ''),
                        ':[0-9]+', ':PORT', 'g');
END
$$;

-- One server, its options changed for each case (each change rebuilds the
-- channel).  The test CA: works, and EXPLAIN VERBOSE says TLS.
CREATE SERVER tls_srv FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'tls_addr', ca_file :'ca_file', max_attempts '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls_srv
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE tls_backups (id text, folder_id text) SERVER tls_srv;
SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta' ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta';

-- The system roots do not know the test CA.
ALTER SERVER tls_srv OPTIONS (DROP ca_file);
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);

-- Another CA: refused.
ALTER SERVER tls_srv OPTIONS (ADD ca_file :'untrusted_ca_file');
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);

-- The right CA but the wrong host name (the certificate names localhost
-- only; this connects to 127.0.0.1): refused.
ALTER SERVER tls_srv OPTIONS (SET endpoint :'tls_ip_addr', SET ca_file :'ca_file');
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);

-- Plaintext to a TLS server: refused.
ALTER SERVER tls_srv OPTIONS (SET endpoint :'tls_addr', ADD tls 'false');
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);

-- A CA file that does not exist, or holds no certificate.
ALTER SERVER tls_srv OPTIONS (DROP tls, SET ca_file '/nonexistent/ca.pem');
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);
ALTER SERVER tls_srv OPTIONS (SET ca_file '/etc/passwd');
SELECT tls_result($$SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta'$$);

-- Back to the test CA: works again.
ALTER SERVER tls_srv OPTIONS (SET ca_file :'ca_file');
SELECT id FROM tls_backups WHERE folder_id = 'b1g-beta' ORDER BY id;

DROP SERVER tls_srv CASCADE;

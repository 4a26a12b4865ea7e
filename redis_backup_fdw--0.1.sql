/* redis_backup_fdw--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION redis_backup_fdw" to load this file. \quit

CREATE FUNCTION redis_backup_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION redis_backup_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER redis_backup_fdw
  HANDLER redis_backup_fdw_handler
  VALIDATOR redis_backup_fdw_validator;

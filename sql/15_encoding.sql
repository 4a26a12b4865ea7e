--
-- Characters: the API's length limits count characters, and every string
-- sent is UTF-8 whatever the database encoding.
--
\set cyr_id 'бэкапбэкапбэкапбэкапбэкапбэкап'
\set cyr_folder 'папкапапкапапкапапкапапкапапка'

-- 30 Cyrillic letters are 60 bytes but 30 characters: they are called.
CALL emulator_mark();
SELECT id = :'cyr_id' AS same_id FROM redis_backups WHERE id = :'cyr_id';
SELECT count(*) FROM redis_backups WHERE folder_id = :'cyr_folder';
SELECT method, arg = :'cyr_id' OR arg = :'cyr_folder' AS same_arg, status
  FROM emulator_calls();
-- 51 characters match no backup: no call.
CALL emulator_mark();
SELECT count(*) FROM redis_backups WHERE id = :'cyr_id' || 'бэкапбэкапбэкапбэкап' || 'x';
SELECT count(*) FROM emulator_calls();

-- A LATIN1 database: keys and the table's folder_id option are sent as
-- UTF-8, values come back in LATIN1.
\getenv emulator_addr RBFDW_EMULATOR_ADDR
CALL emulator_mark();
CREATE DATABASE regress_rbfdw_latin1 ENCODING 'LATIN1' LC_COLLATE 'C'
  LC_CTYPE 'C' TEMPLATE template0;
\c regress_rbfdw_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION redis_backup_fdw;
CREATE SERVER emu FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'emulator_addr', tls 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu
  OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE redis_backups (id text, folder_id text) SERVER emu;
CREATE FOREIGN TABLE cafe_backups (id text, folder_id text) SERVER emu
  OPTIONS (folder_id 'b1g-café');
SELECT id, folder_id, length(id) FROM redis_backups WHERE id = 'café-1';
SELECT id, folder_id FROM redis_backups WHERE folder_id = 'b1g-café';
SELECT id, folder_id FROM cafe_backups;
SELECT id FROM cafe_backups WHERE id = 'café-1';
\c contrib_regression
-- What the emulator was sent: UTF-8 (its log, read in this UTF8 database).
SELECT * FROM emulator_calls();
DROP DATABASE regress_rbfdw_latin1;

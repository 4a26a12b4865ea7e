--
-- How Backup fields become values.
--
SET timezone = 'UTC';

-- Timestamps: seconds plus nanos, rounded half up to the microsecond;
-- an unset timestamp is NULL.
SELECT id, created_at, started_at FROM redis_backups
 WHERE folder_id = 'b1g-conv' ORDER BY id;

-- The same values through a timestamp column (UTC wall clock) and reduced
-- precision columns.
CREATE FOREIGN TABLE conv_types (
  id varchar(20), created_at timestamp, started_at timestamptz(0),
  source_shard_names text[], type varchar)
  SERVER emu OPTIONS (folder_id 'b1g-conv');
SELECT * FROM conv_types ORDER BY id;

-- Shard names: text[]; none is the empty array, not NULL.
SELECT id, source_shard_names, source_shard_names IS NULL AS is_null,
       cardinality(source_shard_names)
  FROM redis_backups WHERE folder_id IN ('b1g-conv', 'b1g-alpha') ORDER BY id;

-- Type: the enum name; UNSPECIFIED is NULL; an unknown number its text.
SELECT id, type, type IS NULL AS is_null FROM redis_backups
 WHERE folder_id = 'b1g-conv' ORDER BY id;

-- Columns in another order, a subset, and one mapped by the option "field".
CREATE FOREIGN TABLE renamed (
  kind text OPTIONS (field 'type'), backup text OPTIONS (field 'id'),
  finished timestamptz OPTIONS (field 'created_at'), folder_id text)
  SERVER emu;
SELECT * FROM renamed WHERE folder_id = 'b1g-beta' ORDER BY backup;
-- A mapped key column pushes down.
CALL emulator_mark();
SELECT kind FROM renamed WHERE backup = 'beta-2';
SELECT * FROM emulator_calls();

-- A value longer than a varchar column allows is an error, not a cut value.
CREATE FOREIGN TABLE short_ids (id varchar(5), folder_id text) SERVER emu;
SELECT id FROM short_ids WHERE folder_id = 'b1g-beta';

-- Only the columns a query reads are converted: a type too long for
-- varchar(3) fails only the queries that read it, and the error names the
-- column, the table and the backup.
CREATE FOREIGN TABLE short_types (id text, type varchar(3), folder_id text)
  SERVER emu;
SELECT id FROM short_types WHERE folder_id = 'b1g-beta' ORDER BY id;
SELECT count(*) FROM short_types WHERE folder_id = 'b1g-beta';
SELECT id FROM short_types WHERE folder_id = 'b1g-beta' AND type IS NOT NULL;
SELECT * FROM short_types WHERE folder_id = 'b1g-beta';
DROP FOREIGN TABLE short_types;

-- The last nanosecond of 9999 stays in 9999 (clamped to the last
-- microsecond) instead of rounding out of range; .9999994 rounds down.
SELECT id, created_at, started_at FROM redis_backups WHERE folder_id = 'b1g-9999';

-- Fields the proto does not know are skipped.
SELECT id, type FROM redis_backups WHERE folder_id = 'b1g-unknown-fields';

-- Dropped columns are fine.
ALTER FOREIGN TABLE renamed DROP COLUMN kind;
SELECT * FROM renamed WHERE backup = 'beta-1';

RESET timezone;

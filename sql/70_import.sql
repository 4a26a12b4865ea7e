--
-- IMPORT FOREIGN SCHEMA
--
CREATE SCHEMA imported;
IMPORT FOREIGN SCHEMA redis FROM SERVER emu INTO imported;
\d imported.redis_backups
SELECT id FROM imported.redis_backups WHERE folder_id = 'b1g-beta' ORDER BY id;

CREATE SCHEMA limited;
IMPORT FOREIGN SCHEMA redis LIMIT TO (redis_backups) FROM SERVER emu INTO limited;
IMPORT FOREIGN SCHEMA redis LIMIT TO (other) FROM SERVER emu INTO limited;
SELECT relname FROM pg_class WHERE relnamespace = 'limited'::regnamespace;

CREATE SCHEMA excepted;
IMPORT FOREIGN SCHEMA redis EXCEPT (redis_backups, redis_clusters) FROM SERVER emu INTO excepted;
SELECT count(*) FROM pg_class WHERE relnamespace = 'excepted'::regnamespace;
IMPORT FOREIGN SCHEMA redis EXCEPT (other) FROM SERVER emu INTO excepted;
SELECT relname FROM pg_class WHERE relnamespace = 'excepted'::regnamespace ORDER BY relname;

-- Options become table options.
CREATE SCHEMA with_folder;
IMPORT FOREIGN SCHEMA redis FROM SERVER emu INTO with_folder
  OPTIONS (folder_id 'b1g-alpha', page_size '2');
SELECT ftoptions FROM pg_foreign_table
 WHERE ftrelid = 'with_folder.redis_backups'::regclass;
SELECT count(*) FROM with_folder.redis_backups;
IMPORT FOREIGN SCHEMA redis FROM SERVER emu INTO public OPTIONS (colour 'red');

-- Only the schema "redis" exists.
IMPORT FOREIGN SCHEMA public FROM SERVER emu INTO imported;

DROP SCHEMA imported, limited, excepted, with_folder CASCADE;

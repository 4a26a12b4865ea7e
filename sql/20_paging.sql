--
-- Pages stream: fetched one at a time as rows are consumed.
-- b1g-gen2500 is a generated folder of 2,500 backups.
--

-- A full scan follows next_page_token to the end: 1000 + 1000 + 500.
CALL emulator_mark();
SELECT count(*), count(DISTINCT id) FROM redis_backups
 WHERE folder_id = 'b1g-gen2500';
SELECT * FROM emulator_calls();

-- LIMIT 5: one call, asking for a page of 5.
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
                       WHERE folder_id = 'b1g-gen2500' LIMIT 5) s;
SELECT * FROM emulator_calls();

-- LIMIT with OFFSET asks for both.
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
                       WHERE folder_id = 'b1g-gen2500' LIMIT 5 OFFSET 10) s;
SELECT * FROM emulator_calls();

-- LIMIT with a local filter cannot bound the page: it takes full pages, and
-- only as many as it needs.
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
                       WHERE folder_id = 'b1g-gen2500' AND type = 'MANUAL'
                       LIMIT 3) s;
SELECT * FROM emulator_calls();

-- LIMIT under ORDER BY needs every row.
CALL emulator_mark();
SELECT count(*) FROM (SELECT id FROM redis_backups
                       WHERE folder_id = 'b1g-gen2500' ORDER BY id LIMIT 5) s;
SELECT * FROM emulator_calls();

-- A cursor that stops early costs only the pages it read.
CALL emulator_mark();
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM redis_backups WHERE folder_id = 'b1g-gen2500';
FETCH 10 FROM c;
SELECT * FROM emulator_calls();
-- Crossing into the second page makes the second call, not before; from
-- then on the listing asks for its next page as each page is handed out
-- (prefetch): the third call starts while the second page is read.
MOVE 989 FROM c;
SELECT * FROM emulator_calls();
FETCH 2 FROM c;
SELECT pg_sleep(0.3);  -- the prefetch is in flight: let it be answered (logged)
SELECT * FROM emulator_calls();
COMMIT;

-- A scrollable cursor can go back over pages already read.
BEGIN;
DECLARE s SCROLL CURSOR FOR SELECT id FROM redis_backups
  WHERE folder_id = 'b1g-alpha';
FETCH 3 FROM s;
FETCH PRIOR FROM s;
FETCH FIRST FROM s;
FETCH LAST FROM s;
COMMIT;

-- The table option page_size overrides the server's.
CREATE FOREIGN TABLE small_pages (id text, folder_id text)
  SERVER emu OPTIONS (page_size '3');
CALL emulator_mark();
SELECT count(*) FROM small_pages WHERE folder_id = 'b1g-alpha';
SELECT * FROM emulator_calls();

-- ClusterService.ListBackups pages too (generated clusters hold 250 each).
CREATE FOREIGN TABLE cluster_pages (id text, source_cluster_id text)
  SERVER emu OPTIONS (page_size '100');
CALL emulator_mark();
SELECT count(*), count(DISTINCT id) FROM cluster_pages
 WHERE source_cluster_id = 'b1g-gen2500-c3';
SELECT * FROM emulator_calls();

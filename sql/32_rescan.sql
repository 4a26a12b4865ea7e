--
-- Rescans after an early stop: a scan that a LIMIT, EXISTS or a scalar
-- subquery stops while its listing has a next page (asked for already, or
-- still to ask for) is started afresh for the next outer row.  Nothing of
-- the earlier row's calls reaches the new scan: every outer row gets its
-- own answer.
--

-- A scalar subquery with LIMIT 1 (page_size 1: each folder of more than
-- one backup has a next page when its first row is taken).  One first page
-- per folder, nothing else.
CALL emulator_mark();
SELECT f, (SELECT id FROM redis_backups WHERE folder_id = v.f LIMIT 1) AS first_id
  FROM (VALUES ('b1g-alpha'), ('b1g-beta'), ('b1g-empty'), ('b1g-gen2500'),
               ('b1g-alpha')) v(f);
SELECT * FROM emulator_calls();

-- LATERAL with LIMIT over pages of two: the first folder stops inside its
-- second page while its third is being fetched ahead.
CREATE FOREIGN TABLE paged_backups (id text, folder_id text, source_cluster_id text)
  SERVER emu OPTIONS (page_size '2');
SELECT v.f, b.id
  FROM (VALUES ('b1g-gen2500'), ('b1g-alpha'), ('b1g-beta'), ('b1g-gen2500')) v(f)
 CROSS JOIN LATERAL (SELECT id FROM paged_backups WHERE folder_id = v.f LIMIT 3) b;
-- ... and a LIMIT the outer row sets.
SELECT v.f, v.n, b.id
  FROM (VALUES ('b1g-gen2500', 5), ('b1g-alpha', 1), ('b1g-gen2500', 1),
               ('b1g-beta', 2)) v(f, n)
 CROSS JOIN LATERAL (SELECT id FROM paged_backups WHERE folder_id = v.f LIMIT v.n) b;

-- EXISTS over a folder of three pages, then others.
SELECT f, EXISTS (SELECT 1 FROM redis_backups WHERE folder_id = v.f) AS has_backups
  FROM (VALUES ('b1g-gen2500'), ('b1g-empty'), ('b1g-alpha'), ('b1g-gen2500'),
               ('b1g-beta')) v(f);

-- Clusters.
SELECT c, (SELECT id FROM redis_backups WHERE source_cluster_id = v.c LIMIT 1) AS first_id
  FROM (VALUES ('b1g-gen2500-c1'), ('c9q-alpha2'), ('b1g-gen2500-c2')) v(c);
SELECT v.c, b.id
  FROM (VALUES ('b1g-gen2500-c3'), ('c9q-alpha1'), ('b1g-gen2500-c3')) v(c)
 CROSS JOIN LATERAL (SELECT id FROM paged_backups WHERE source_cluster_id = v.c LIMIT 3) b;

-- Several keys of one scan in flight when it stops: LIMIT n over three
-- folders of two pages each.
SELECT v.n, (SELECT count(*)
               FROM (SELECT id FROM redis_backups
                      WHERE folder_id = ANY (ARRAY['b1g-fan1', 'b1g-fan2', 'b1g-fan3'])
                      LIMIT v.n) s) AS rows
  FROM (VALUES (1), (2), (1001), (1)) v(n);

-- A table bound to a cloud: folder keys, and the cloud's own folders.
CREATE FOREIGN TABLE alpha_cloud_paged (id text, folder_id text)
  SERVER emu OPTIONS (cloud_id 'cloud-alpha', page_size '1');
SELECT f, (SELECT id FROM alpha_cloud_paged WHERE folder_id = v.f LIMIT 1) AS first_id
  FROM (VALUES ('b1g-alpha'), ('b1g-beta'), ('b1g-alpha')) v(f);
SELECT v.n, b.id
  FROM (VALUES (1), (2), (3)) v(n)
 CROSS JOIN LATERAL (SELECT id FROM alpha_cloud_paged LIMIT v.n) b;

-- A cursor over a nested loop, read part way, then to the end.
BEGIN;
DECLARE c CURSOR FOR
  SELECT v.f, (SELECT id FROM paged_backups WHERE folder_id = v.f LIMIT 1) AS first_id
    FROM (VALUES ('b1g-gen2500'), ('b1g-alpha'), ('b1g-beta')) v(f);
FETCH 1 FROM c;
FETCH ALL FROM c;
COMMIT;

-- Pages stay pooled across rescans: the page an abandoned call would have
-- filled goes back to the pool, so a scan's page contexts do not grow with
-- its rescans (each rescan here stops with its third page asked for ahead).
CREATE FUNCTION page_contexts(after int) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT count(*) FROM pg_backend_memory_contexts
   WHERE name = 'redis_backup_fdw page'
$$;
SELECT max(pages) <= 4 AS pages_bounded, count(*) AS rescans, min(rows) AS rows
  FROM (SELECT g,
               (SELECT count(*)
                  FROM (SELECT id FROM paged_backups
                         WHERE folder_id = 'b1g-gen2500' LIMIT 3 + 0 * g) s) AS rows,
               page_contexts(g) AS pages
          FROM generate_series(1, 40) g) r;
DROP FUNCTION page_contexts(int);

-- The backend is still usable, and a plain scan reads everything.
SELECT count(*) FROM paged_backups WHERE folder_id = 'b1g-alpha';
DROP FOREIGN TABLE paged_backups, alpha_cloud_paged;

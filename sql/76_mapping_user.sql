--
-- Whose user mapping a scan uses: the role the plan checks permissions as,
-- as postgres_fdw chooses it.  A view reads with its owner's mapping, a
-- SECURITY DEFINER function with its owner's, and SET ROLE switches to the
-- role set.  The two mappings here differ in what the emulator lets them
-- read: regress-token reads every folder, limited-token only b1g-alpha, so
-- a read of b1g-beta succeeds or is denied by whose mapping it used.
--
CREATE ROLE regress_rbfdw_owner;
CREATE ROLE regress_rbfdw_caller;
GRANT SELECT ON redis_backups TO regress_rbfdw_owner, regress_rbfdw_caller;
CREATE USER MAPPING FOR regress_rbfdw_owner SERVER emu
  OPTIONS (iam_token 'regress-token');
CREATE USER MAPPING FOR regress_rbfdw_caller SERVER emu
  OPTIONS (iam_token 'limited-token');

CREATE VIEW regress_owner_view AS
  SELECT id FROM redis_backups WHERE folder_id = 'b1g-beta';
ALTER VIEW regress_owner_view OWNER TO regress_rbfdw_owner;
GRANT SELECT ON regress_owner_view TO regress_rbfdw_caller;

CREATE FUNCTION beta_backup_count() RETURNS bigint
LANGUAGE sql SECURITY DEFINER
AS $$ SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-beta' $$;
ALTER FUNCTION beta_backup_count() OWNER TO regress_rbfdw_owner;

-- The caller's own mapping may not read b1g-beta.
CALL emulator_mark();
SET ROLE regress_rbfdw_caller;
SELECT sqlstate_of($$SELECT * FROM redis_backups WHERE folder_id = 'b1g-beta'$$) ~ '^42501' AS caller_denied;
RESET ROLE;
SELECT method, arg, status FROM emulator_calls();

-- Through the owner's view, the owner's mapping: the rows.
CALL emulator_mark();
SET ROLE regress_rbfdw_caller;
SELECT id FROM regress_owner_view ORDER BY id;
RESET ROLE;
SELECT method, arg, status FROM emulator_calls();

-- A statement prepared once and run as two roles: a direct read uses the
-- mapping of the role running it (SET ROLE), chosen when it runs, not when
-- it was planned.
PREPARE beta AS SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-beta';
EXECUTE beta;
SET ROLE regress_rbfdw_caller;
SELECT sqlstate_of('EXECUTE beta') ~ '^42501' AS caller_denied;
RESET ROLE;
EXECUTE beta;
DEALLOCATE beta;

-- A SECURITY DEFINER function runs as its owner: the owner's mapping.
CALL emulator_mark();
SET ROLE regress_rbfdw_caller;
SELECT beta_backup_count();
RESET ROLE;
SELECT method, arg, status FROM emulator_calls();

-- A view owned by the caller, read by the superuser: the caller's mapping,
-- which is denied, though the superuser's own mapping could read it.
CREATE VIEW regress_caller_view AS
  SELECT id FROM redis_backups WHERE folder_id = 'b1g-beta';
ALTER VIEW regress_caller_view OWNER TO regress_rbfdw_caller;
CALL emulator_mark();
SELECT sqlstate_of('SELECT * FROM regress_caller_view') ~ '^42501' AS view_owner_denied;
SELECT method, arg, status FROM emulator_calls();

-- EXPLAIN VERBOSE names the mapping's credential source of the role the
-- scan runs as (both are iam_token here).
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM regress_owner_view;

DROP VIEW regress_owner_view, regress_caller_view;
DROP FUNCTION beta_backup_count();
DROP OWNED BY regress_rbfdw_owner, regress_rbfdw_caller;
DROP ROLE regress_rbfdw_owner, regress_rbfdw_caller;

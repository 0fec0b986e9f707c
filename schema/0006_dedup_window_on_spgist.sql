-- The dedup window's exclusion constraint (0004) on an SP-GiST index instead of GiST:
-- the same column, the same operator, the same rule (at most one report of the same
-- bytes per retry window, however many ingest processes race; ARCHITECTURE.md,
-- "Idempotent appends"), and the lookup of the report a copy repeats
-- (ingest/store.py _FIND_FIRST, `dedup_span && numrange(...)`) is served by it too.
--
-- Why: GiST's insertion walks the tree by penalty, and numrange's penalty subtracts
-- numerics of ~38 digits (an identity's slot times 10^18) at every entry of every level.
-- Measured on the 2-core development machine (issue 11): ~750 µs of PostgreSQL CPU per
-- inserted delivery with the GiST constraint at 20,000-40,000 rows, ~140-150 µs with
-- SP-GiST (its quad tree only compares bounds), against ~20 µs with no constraint;
-- end to end, the in-process append path went from ~640-760 to ~250 µs of PostgreSQL
-- CPU per delivery. An exclusion constraint may use any index access method that
-- supports amgettuple; SP-GiST's range_ops supports && (PostgreSQL 9.3 and later).
--
-- Rebuilt in this migration's transaction: every stored span already satisfies the
-- constraint, so adding it again cannot fail; the table is locked while it builds.
ALTER TABLE events DROP CONSTRAINT events_dedup_window;
ALTER TABLE events ADD CONSTRAINT events_dedup_window
    EXCLUDE USING spgist (dedup_span WITH &&) WHERE (dedup_span IS NOT NULL);

-- 0005 lateness: the log's blocks split by lateness (docs/design/2026-11-30-compact-read-models.md, point 8).
--
-- A question as known at K read every block on one side of K. Each batch now appends one block of the
-- changes dated within a week of their recording (with the batch's events) and one block per month of
-- the other days (late corrections, future-dated ends of cycles and validities), and each block keeps
-- the span of its days. A question reads the blocks whose recorded times and days can hold what it
-- asks: the on-time blocks near K, the late corrections after K, the future-dated changes pending at K.
--
-- Blocks written before this migration hold every kind of change: their span of days is unknown, so
-- they keep the widest one and every question that reads their side of K reads them (answers are the
-- same; only speed differs; `hoctap rebuild` writes a generation in the new blocks).

ALTER TABLE delta_log
    ADD COLUMN first_day integer NOT NULL DEFAULT -2147483648,
    ADD COLUMN last_day  integer NOT NULL DEFAULT 2147483647,
    -- Written by merging small blocks: never merged again.
    ADD COLUMN merged    boolean NOT NULL DEFAULT false;
ALTER TABLE delta_log ALTER COLUMN first_day DROP DEFAULT, ALTER COLUMN last_day DROP DEFAULT;
-- A block of events only: no day.
UPDATE delta_log SET first_day = 2147483647, last_day = -2147483648 WHERE changes = 0;

-- How many events were recorded by K: summed over the blocks that hold events.
CREATE INDEX delta_log_events ON delta_log (last_recorded) INCLUDE (events) WHERE events > 0;

-- Small blocks not merged yet (`SMALL_BLOCK` in crates/hoctap-store/src/delta_log.rs is the same
-- number).
DROP INDEX delta_log_small;
CREATE INDEX delta_log_small ON delta_log (first_recorded) WHERE changes + events < 4096 AND NOT merged;

-- 0006 recorded_subjects: which subjects each batch wrote, by the newest recorded time among its
-- events; and histories that keep sources.
--
-- Design: docs/design/2026-11-30-audit-diff.md ("Read models"). `GET /v1/reviews/diff` lists the
-- events recorded between two knowledge times that changed the question's figures, as the embedded
-- engine does (`Engine::diff`). Only a subject with an event or a retraction recorded after the first
-- time can have changed them: `hoctap_store::diff` finds those subjects here (every batch whose newest
-- event was recorded after that time), loads their histories into a copy of the reference engine and
-- lets the domain list the events, so that its cost follows the batches recorded since then, not the
-- history. The table is only appended to: an indexed time on `subjects` itself would make every
-- history update leave a dead row and index entries behind (no HOT update), which doubled the
-- subjects' size in a 10 M-event load.
--
-- Histories are now written in format 2 (`hoctap_domain::Ledger::history`: a small table of the
-- sources a history names, and each record's index in it). Format 1 histories are still read, with
-- their events' sources not kept (listed with an empty `source`) until the subject's next event
-- writes it again; `hoctap rebuild` writes a generation in the new format.
--
-- Subjects written before this migration: their newest recorded time lies inside the history, which
-- SQL does not read. One row at 'infinity' names them all, so that every diff reads them (answers
-- stay right; only a diff's cost grows with them) until a rebuild.

CREATE TABLE recorded_subjects (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_recorded timestamptz NOT NULL,
    subjects      text[]      NOT NULL
);
CREATE INDEX recorded_subjects_last_recorded ON recorded_subjects (last_recorded);

INSERT INTO recorded_subjects (last_recorded, subjects)
    SELECT 'infinity', array_agg(subject ORDER BY subject) FROM subjects HAVING count(*) > 0;

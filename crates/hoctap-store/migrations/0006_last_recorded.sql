-- 0006 last_recorded: each subject's newest recorded time, indexed, and histories that keep sources.
--
-- Design: docs/design/2026-11-30-audit-diff.md ("Read models"). `GET /v1/reviews/diff` lists the
-- events recorded between two knowledge times that changed the question's figures, as the embedded
-- engine does (`Engine::diff`). Only a subject with an event or a retraction recorded after the first
-- time can have changed them: `hoctap_store::diff` finds those subjects by this index, loads their
-- histories into a copy of the reference engine and lets the domain list the events, so that its cost
-- follows the subjects recorded since then, not the history.
--
-- Histories are now written in format 2 (`hoctap_domain::Ledger::history`: a small table of the
-- sources a history names, and each record's index in it). Format 1 histories are still read, with
-- their events' sources not kept (listed with an empty `source`) until the subject's next event
-- writes it again; `hoctap rebuild` writes a generation in the new format.
--
-- Rows written before this migration: their newest recorded time lies inside the history, which SQL
-- does not read. They get 'infinity', so that every diff reads them (answers stay right; only a diff's
-- cost grows with them) until the subject's next event writes its real time, or a rebuild.

ALTER TABLE subjects ADD COLUMN last_recorded timestamptz NOT NULL DEFAULT 'infinity';
ALTER TABLE subjects ALTER COLUMN last_recorded DROP DEFAULT;
CREATE INDEX subjects_last_recorded ON subjects (last_recorded);

-- 0004 recorded: how many events were recorded by any transaction time, so that a review as known at
-- K states how many events it counted, and a review as known now the recordedtime of its newest event
-- (docs/design/2026-11-30-reproducible-reviews.md).
--
-- Per batch, one row per distinct recordedtime of the new events it applied, with how many events
-- carry it. Insert-only and BRIN-indexed like delta_log: events recorded by K = sum(n) over
-- recorded <= K. As known now, consumer_offsets (events, last_recorded) answers without reading it.
-- Rows depend on how events were batched; sum(n) grouped by recorded does not.
--
-- Upgrading a generation from 0003 empties its read models: the projector then projects it again from
-- offset 0 (Kafka keeps every event; the read models are disposable), and fills this table as it goes.

TRUNCATE subjects, reference_events, count_keys, counts_year, counts_month, delta_log, consumer_offsets
    RESTART IDENTITY;

CREATE TABLE recorded_events (
    recorded timestamptz NOT NULL,
    n        integer     NOT NULL CHECK (n > 0)
);
CREATE INDEX recorded_events_recorded ON recorded_events USING brin (recorded);

-- 0003 compact: read models whose size and cost follow the city and the question, not the history.
--
-- Design: docs/design/2026-11-30-compact-read-models.md. What changes from 0001:
-- - No event bodies. Kafka keeps every event forever (the log is the truth); the projector keeps, per
--   subject, the compact history its counting needs (`subjects`), fetched for the subjects a batch
--   touches. Reference data (geography, baselines, targets, and the retractions that may name them)
--   is small and kept whole (`reference_events`).
-- - Integer keys for (place, measure) (`count_keys`), and counts as known now in two rows per key and
--   date: `counts_year` (the count before 1 January and the change of each month) and `counts_month`
--   (the change of each day). Count at D = before + months[1 .. m-1] + days[1 .. d].
-- - The transaction-time log keeps its deltas with integer keys, insert-only, BRIN-indexed by time.
--
-- Upgrading a generation from 0002 drops its old tables and offsets: the projector then projects it
-- again from offset 0 (Kafka keeps every event; the read models are disposable).

DROP TABLE events, delta_day, delta_month, total_before_year, delta_log;
DELETE FROM consumer_offsets;

-- Per partition, besides the next offset: how many events this generation applied from it and the
-- span of their recordedtime (reviews as known at K choose how to read the log from it).
ALTER TABLE consumer_offsets
    ADD COLUMN events         bigint      NOT NULL DEFAULT 0,
    ADD COLUMN first_recorded timestamptz,
    ADD COLUMN last_recorded  timestamptz;

-- One row per subject: what counting needs of its events and of the retractions of its subject,
-- encoded by the domain crate (`hoctap_domain::Ledger::history`: a version byte, then ~50 bytes per
-- event). Only the member that owns the subject's partition writes it.
CREATE TABLE subjects (
    subject text  PRIMARY KEY,
    history bytea NOT NULL
);

-- Reference events in canonical form (recordedtime included): geography, baselines, targets, and
-- every retraction whose subject has the shape of an administrative code (only those can name one).
-- Reviews fold them into a small engine; `seq` tells a reader whether its copy is still current.
CREATE TABLE reference_events (
    seq      bigint      GENERATED ALWAYS AS IDENTITY,
    id       uuid        PRIMARY KEY,
    type     text        NOT NULL,                -- the type stem, e.g. 'admin_unit.established'
    recorded timestamptz NOT NULL,
    body     text        NOT NULL                 -- Event::to_json()
);
CREATE UNIQUE INDEX reference_events_seq ON reference_events (seq);

-- (place, measure) as an integer. Place kinds: 'named' (place_code = the commune the subject names)
-- and 'unit' (place_code = a subject whose id has a unit code's shape: it counts as that unit when the
-- unit is established as known at the time asked, else at `commune`; '' = none). Measures as in 0001.
CREATE TABLE count_keys (
    key        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    place_kind text    NOT NULL CHECK (place_kind IN ('named', 'unit')),
    place_code text    NOT NULL,
    commune    text    NOT NULL DEFAULT '',
    measure    text    NOT NULL,
    UNIQUE (place_kind, place_code, commune, measure)
);

-- As known now, per key and year of the campaign (2021 … 2031): the sum of every change on days
-- before 1 January (`before`), and the sum of the changes of each month of the year (`months`, 12).
CREATE TABLE counts_year (
    year   smallint  NOT NULL,
    key    integer   NOT NULL,
    before bigint    NOT NULL,
    months integer[] NOT NULL,
    PRIMARY KEY (year, key)
);

-- As known now, per key and month with a change: the sum of the changes of each day (`days`, one
-- entry per day of the month).
CREATE TABLE counts_month (
    month date      NOT NULL CHECK (extract(day FROM month) = 1),
    key   integer   NOT NULL,
    days  integer[] NOT NULL,
    PRIMARY KEY (month, key)
);

-- Every change with the transaction time of the event that caused it: count at D as known at K =
-- sum of n over day <= D and recorded <= K. Rows are only inserted; one (recorded, key, day) may have
-- several rows (sum them).
CREATE TABLE delta_log (
    recorded timestamptz NOT NULL,
    key      integer     NOT NULL,
    day      date        NOT NULL,
    n        integer     NOT NULL
);
CREATE INDEX delta_log_recorded ON delta_log USING brin (recorded);

-- Element-wise sum of two count arrays of one length (the upsert of counts_year / counts_month).
CREATE FUNCTION add_counts(a integer[], b integer[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(SELECT x + y FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY i);

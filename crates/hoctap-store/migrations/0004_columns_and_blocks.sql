-- 0004 columns_and_blocks: counts as known now in integer columns, the transaction-time log as one
-- packed row per batch.
--
-- Design: docs/design/2026-11-30-compact-read-models.md ("Columns and blocks").
-- - 0003's count rows held arrays, added by a SQL function that unnested both sides for every row of
--   every batch; plain columns are added with integer arithmetic, and a reader sums the prefix a date
--   needs in its SELECT (one number per key comes back). The column names are generated in one place:
--   crates/hoctap-store/src/counts.rs.
-- - A row of 0003's `delta_log` cost ≈ 48 bytes for a 20-byte change, and a question as known at K
--   summed millions of them inside PostgreSQL. A block holds one batch's changes in columns (≈ 16
--   bytes a change; the format is documented in crates/hoctap-store/src/delta_log.rs) and is summed by
--   the reader. It also holds the `recordedtime`s of the new events the batch applied, so that a
--   review as known at K states how many events were recorded by K
--   (docs/design/2026-11-30-reproducible-reviews.md) from the same blocks it reads.
--
-- Upgrading a generation from 0003 starts it over: the old log cannot be regrouped by batch, so every
-- table the projector writes is emptied with the offsets, and the projector projects the generation
-- again from offset 0 (Kafka keeps every event; the read models are disposable).

DROP TABLE delta_log, counts_year, counts_month;
DROP FUNCTION add_counts(integer[], integer[]);
TRUNCATE subjects, reference_events, count_keys RESTART IDENTITY;
DELETE FROM consumer_offsets;

-- Every batch updates the rows of the subjects and counts it touches: room on each page lets
-- PostgreSQL update them in place (HOT), without new index entries.
ALTER TABLE subjects SET (fillfactor = 80);

-- As known now, per key and year of the campaign (2021 … 2031): the sum of every change on days
-- before 1 January (`before`) and of the changes of each month (`m1` … `m12`).
CREATE TABLE counts_year (
    year   smallint NOT NULL,
    key    integer  NOT NULL,
    before bigint   NOT NULL,
    m1  integer NOT NULL, m2  integer NOT NULL, m3  integer NOT NULL, m4  integer NOT NULL,
    m5  integer NOT NULL, m6  integer NOT NULL, m7  integer NOT NULL, m8  integer NOT NULL,
    m9  integer NOT NULL, m10 integer NOT NULL, m11 integer NOT NULL, m12 integer NOT NULL,
    PRIMARY KEY (year, key)
) WITH (fillfactor = 80);

-- As known now, per key and month with a change: the sum of the changes of each day (`d1` … `d31`;
-- the days a month lacks stay 0).
CREATE TABLE counts_month (
    month date    NOT NULL CHECK (extract(day FROM month) = 1),
    key   integer NOT NULL,
    d1  integer NOT NULL, d2  integer NOT NULL, d3  integer NOT NULL, d4  integer NOT NULL,
    d5  integer NOT NULL, d6  integer NOT NULL, d7  integer NOT NULL, d8  integer NOT NULL,
    d9  integer NOT NULL, d10 integer NOT NULL, d11 integer NOT NULL, d12 integer NOT NULL,
    d13 integer NOT NULL, d14 integer NOT NULL, d15 integer NOT NULL, d16 integer NOT NULL,
    d17 integer NOT NULL, d18 integer NOT NULL, d19 integer NOT NULL, d20 integer NOT NULL,
    d21 integer NOT NULL, d22 integer NOT NULL, d23 integer NOT NULL, d24 integer NOT NULL,
    d25 integer NOT NULL, d26 integer NOT NULL, d27 integer NOT NULL, d28 integer NOT NULL,
    d29 integer NOT NULL, d30 integer NOT NULL, d31 integer NOT NULL,
    PRIMARY KEY (month, key)
) WITH (fillfactor = 80);

-- One block per applied batch with new events. Count at D as known at K = the counts as known now
-- minus the changes recorded after K on days <= D (or the changes recorded up to K, whichever part is
-- smaller): the blocks whose span of recorded times meets that part are read and filtered. Events
-- recorded by K: the same, with the events' recorded times.
CREATE TABLE delta_log (
    block          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_recorded timestamptz NOT NULL,
    last_recorded  timestamptz NOT NULL,
    changes        integer     NOT NULL CHECK (changes >= 0),
    events         integer     NOT NULL CHECK (events >= 0),
    deltas         bytea       NOT NULL,
    CHECK (changes + events > 0)
);
-- Packed integers compress poorly and are read whole: stored out of line without compression.
ALTER TABLE delta_log ALTER COLUMN deltas SET STORAGE EXTERNAL;
CREATE INDEX delta_log_first_recorded ON delta_log (first_recorded);
CREATE INDEX delta_log_last_recorded ON delta_log (last_recorded);
-- Small blocks (a projector applying a few events at a time) are merged now and then, oldest first
-- (`SMALL_BLOCK` in crates/hoctap-store/src/delta_log.rs is the same number).
CREATE INDEX delta_log_small ON delta_log (first_recorded) WHERE changes + events < 4096;

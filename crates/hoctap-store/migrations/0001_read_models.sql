-- 0001 read_models: the tables of one read-model generation.
--
-- Everything of one generation lives in one schema (e.g. `hoctap_g1`), so that `hoctap rebuild` can
-- fill `hoctap_g2` from offset 0 while `hoctap_g1` keeps serving. `migrate()` runs this file with
-- `search_path` set to that schema: the names below are unqualified on purpose.
--
-- Design: docs/design/2026-11-23-read-model-contributions.md. In short: the projector asks the domain
-- crate for each subject's contributions (stretches of valid time `[from, until)` during which it
-- counts for one measure at one place), and stores how they change as deltas: +1 on the day a
-- stretch starts, -1 on the day it ends. The count of a (place, measure) on day D is the sum of its
-- deltas on days <= D. Counting rules are never written in SQL.
--
-- Encodings shared by the delta tables:
--   place_kind  'named' = place_code is the commune code the subject names (successors and ancestors
--                         are applied when a date is asked, from the geography in force then);
--               'own'   = place_code is the administrative unit that is itself the subject
--                         (learning_commune / learning_district / learning_city).
--   measure     'registered:<title>', 'declared:<title>', 'evidenced:<title>', 'recognised:<title>',
--               'digital_skill', 'recognised_with_skill', 'recognised_in_group:<group>'
--               (<title> e.g. learning_citizen, <group> resident | worker | staff | student).
--   n           a signed sum of deltas; a row may hold 0 after later deltas cancelled it.
-- Primary keys lead with the time bucket: a review reads every place for one date, i.e. one year
-- row, up to eleven month rows and up to 31 day rows per key, as range scans of those keys.

-- Every event this generation applied, in canonical form. The projector loads it at start (its
-- in-memory engine), reviews load the reference events (geography, baselines, targets, retractions)
-- from it, and `rebuild` can compare generations with it.
CREATE TABLE events (
    id          uuid        PRIMARY KEY,          -- CloudEvents id, unique forever (rule 3)
    type        text        NOT NULL,             -- the type stem, e.g. 'registration.submitted'
    subject     text        NOT NULL,
    topic       text        NOT NULL,             -- where it was consumed
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    recorded    timestamptz NOT NULL,             -- recordedtime: when the log accepted it (transaction time)
    body        jsonb       NOT NULL,             -- Event::to_json(), recordedtime included
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX events_type_recorded ON events (type, recorded);

-- The next offset to consume per partition, written in the same transaction as the read-model change
-- it caused: a consumer seeks here on partition assignment, so a crash at any instant loses nothing
-- and counts nothing twice.
CREATE TABLE consumer_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Deltas per day, as known now.
CREATE TABLE delta_day (
    place_kind  text    NOT NULL CHECK (place_kind IN ('named', 'own')),
    place_code  text    NOT NULL,
    measure     text    NOT NULL,
    day         date    NOT NULL,                 -- Vietnam calendar day (UTC+07:00)
    n           bigint  NOT NULL,
    PRIMARY KEY (day, place_kind, place_code, measure)
);

-- The same deltas summed per month, as known now.
CREATE TABLE delta_month (
    place_kind  text    NOT NULL CHECK (place_kind IN ('named', 'own')),
    place_code  text    NOT NULL,
    measure     text    NOT NULL,
    month       date    NOT NULL CHECK (extract(day FROM month) = 1),  -- the first day of the month
    n           bigint  NOT NULL,
    PRIMARY KEY (month, place_kind, place_code, measure)
);

-- The sum of every delta on days before 1 January of `year`, as known now, for the campaign's years
-- and the year after. Count at D (2021 <= year(D) <= 2031) =
--   total_before_year(year(D)) + sum of delta_month for the months of year(D) before month(D)
--                              + sum of delta_day for the days of month(D) up to D.
CREATE TABLE total_before_year (
    place_kind  text    NOT NULL CHECK (place_kind IN ('named', 'own')),
    place_code  text    NOT NULL,
    measure     text    NOT NULL,
    year        integer NOT NULL CHECK (year BETWEEN 2021 AND 2031),
    n           bigint  NOT NULL,
    PRIMARY KEY (year, place_kind, place_code, measure)
);

-- Every delta with the transaction time of the event that caused it, for reviews as known at an
-- earlier time K: count at D as known at K = sum of n over day <= D and recorded <= K.
CREATE TABLE delta_log (
    place_kind  text        NOT NULL CHECK (place_kind IN ('named', 'own')),
    place_code  text        NOT NULL,
    measure     text        NOT NULL,
    day         date        NOT NULL,
    recorded    timestamptz NOT NULL,             -- recordedtime of the event that caused the delta
    n           bigint      NOT NULL,
    PRIMARY KEY (day, recorded, place_kind, place_code, measure)
);

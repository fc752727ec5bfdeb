-- 0002 dashboard: review figures precomputed for dashboards that read PostgreSQL directly.
--
-- Dashboards (Grafana, Metabase, …) do not read these tables: they read the views of the versioned
-- schema `<deployment>_dashboard_v1`, which `hoctap` points at the serving generation (see
-- crates/hoctap-store/src/dashboard.rs and docs/dashboards.md). The tables hold, for every
-- province-level scope and every month end of the campaign (2021-01-31 … 2030-12-31), the figures of
-- that date's review as known when the refresh ran: the same numbers as `GET /v1/reviews`. The
-- projector refreshes them when it is idle (at most once a minute by default), in one transaction.

-- One row per (date, scope, unit, figure) of a review's `units`.
CREATE TABLE dashboard_unit_figures (
    as_of       date    NOT NULL,
    scope       text    NOT NULL,
    unit_code   text    NOT NULL,
    unit_level  text    NOT NULL,                 -- province | district | commune
    unit_name   text    NOT NULL,                 -- the name in force at as_of
    is_scope    boolean NOT NULL,                 -- the scope itself (false: one of its children)
    figure      text    NOT NULL,                 -- 'registered' | 'declared' | 'evidenced' | 'recognised'
                                                  -- | 'digital_skill' | 'baseline'
    title       text    NOT NULL DEFAULT '',      -- the title of a count (e.g. learning_citizen), else ''
    metric      text    NOT NULL DEFAULT '',      -- the metric of a baseline (e.g. adults), else ''
    value       bigint  NOT NULL,
    PRIMARY KEY (as_of, scope, unit_code, figure, title, metric)
);

-- One row per (date, scope, target) of a review's `targets`, for the milestone that date compares.
CREATE TABLE dashboard_targets (
    as_of          date             NOT NULL,
    scope          text             NOT NULL,
    plan           text             NOT NULL,
    indicator      text             NOT NULL,
    milestone      integer          NOT NULL,
    target_percent double precision NOT NULL,
    numerator      bigint           NOT NULL,
    denominator    bigint,                        -- NULL: no denominator at as_of
    actual_percent double precision,              -- NULL: no denominator, or it is 0
    gap_points     double precision,
    status         text             NOT NULL,     -- met | behind | no_denominator | unit_abolished
    PRIMARY KEY (as_of, scope, plan, indicator, milestone)
);

-- When the figures were computed and from how much of the log.
CREATE TABLE dashboard_refresh (
    only_row      boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    refreshed_at  timestamptz NOT NULL,
    events        bigint      NOT NULL,           -- events applied when the refresh read the read models
    last_recorded timestamptz                     -- the newest recordedtime among them
);

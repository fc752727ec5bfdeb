-- 0001 gateway_state
-- What the gateway remembers of the events topic, bounded in memory by the city and on disk by the
-- history (docs/design/2026-11-30-bounded-gateway.md). The reference topic is not here: the gateway
-- reads it whole at start (it is the geography, baselines, targets and approvals).

-- Every event of the events topic: its content digest (first 16 bytes of the SHA-256 of the canonical
-- JSON without recordedtime: a copy with another digest is a conflicting duplicate) and its subject (a
-- retraction must have the subject of the event it names).
CREATE TABLE accepted (
    id      uuid  PRIMARY KEY,
    digest  bytea NOT NULL CHECK (length(digest) = 16),
    subject text  NOT NULL
);

-- Every commune a subject's events named (registration, skill, relocation): the subject's provinces are
-- those of these communes in the unit tree the gateway holds in memory.
CREATE TABLE placements (
    subject text NOT NULL,
    commune text NOT NULL,
    PRIMARY KEY (subject, commune)
);

-- How far each partition of the events topic is in the tables above: the next offset to fold. A start
-- reads only from here to the end of the topic.
CREATE TABLE folded (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, partition)
);

-- The writer lease: one gateway judges, stamps and publishes at a time. `epoch` grows with every new
-- holder and fences every write of an older one; `last_recorded` is the last recordedtime stamped
-- (UTC microseconds), so that a new holder stamps after it.
CREATE TABLE writer (
    one           boolean     PRIMARY KEY DEFAULT true CHECK (one),
    holder        text        NOT NULL,
    epoch         bigint      NOT NULL,
    expires_at    timestamptz NOT NULL,
    last_recorded bigint      NOT NULL
);

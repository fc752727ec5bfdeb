-- 0007 summed_blocks: each late or future-dated block of the log also keeps its changes summed per
-- (key, day), without their recorded times.
--
-- Design: docs/design/2026-11-30-compact-read-models.md (point 9). A question as known at K reads the
-- blocks on one side of K; every block it reads lies wholly on that side but the few that straddle K,
-- and for those the recorded time of each change says nothing the span does not. The future-dated
-- blocks (the end of a cycle, of a recognition's validity) hold one change per event, ten for each
-- (key, day) in a generated 10 M-event city, so a review as known early in the campaign read tens of
-- megabytes of them. `summed` holds the same changes summed per (key, day): NULL when summing would not
-- halve the block, and for blocks written before this migration; readers then read `deltas`, which
-- stays the record of every change (the rebuild's fingerprint, merging, the events by K).

ALTER TABLE delta_log ADD COLUMN summed bytea;
ALTER TABLE delta_log ALTER COLUMN summed SET STORAGE EXTERNAL;

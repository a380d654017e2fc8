-- The relay hands a running campaign's planned pushes to the bus in plan order (`seq`)
-- and records how far it got once per batch, instead of marking every row as on the bus.
-- Rows planned this way carry `pushes.dispatched = 3`; rows put back on the outbox one
-- by one (retries, deferrals, replays) still use 0 → 2.
CREATE TABLE relay_cursors (
    campaign_id  TEXT PRIMARY KEY,
    handed       BIGINT NOT NULL,  -- the highest `seq` of the campaign handed over (or passed over)
    served_at    TEXT NOT NULL     -- when a relay last moved it: the least recently served campaign goes first
);

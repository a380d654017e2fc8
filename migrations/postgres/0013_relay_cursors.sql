-- The relay hands a running campaign's planned pushes to the bus in plan order (`seq`)
-- and records how far it got once per batch, instead of marking every row as on the bus.
-- Rows planned this way carry `pushes.dispatched = 3`; rows put back on the outbox one
-- by one (retries, deferrals, replays) still use 0 → 2.
CREATE TABLE relay_cursors (
    campaign_id  TEXT PRIMARY KEY,
    handed       BIGINT NOT NULL,  -- the highest `seq` of the campaign handed over (or passed over)
    served_at    TIMESTAMPTZ NOT NULL     -- when a relay last moved it: the least recently served campaign goes first
);

-- Every non-HOT update of a push writes an entry into each of its indexes. The unique
-- key (campaign, subject, purpose) and the subject history's (subject, campaign) index
-- were two indexes where one serves both: the key with the subject first (`ON CONFLICT`
-- infers a unique index whatever its column order).
ALTER TABLE pushes DROP CONSTRAINT pushes_campaign_id_subject_id_purpose_key;
CREATE UNIQUE INDEX pushes_subject_campaign_purpose ON pushes (subject_id, campaign_id, purpose);
DROP INDEX ops_pushes_subject_campaign;

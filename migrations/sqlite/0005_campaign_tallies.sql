-- Campaign counts kept with the state changes (issue 15): the campaign status, its report
-- and completion detection read a few tally rows instead of scanning the pushes.
--
-- Each push and skip row carries the district and kind of its subject when it was
-- written, so the report's district × kind cells are tallies too.
ALTER TABLE pushes ADD COLUMN district TEXT NOT NULL DEFAULT '';
ALTER TABLE pushes ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign_skips ADD COLUMN district TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign_skips ADD COLUMN kind TEXT NOT NULL DEFAULT '';
UPDATE pushes SET
  district = COALESCE((SELECT CAST(json_extract(s.attributes, '$.district') AS TEXT) FROM subjects s WHERE s.id = pushes.subject_id), ''),
  kind = COALESCE((SELECT s.kind FROM subjects s WHERE s.id = pushes.subject_id), '');
UPDATE campaign_skips SET
  district = COALESCE((SELECT CAST(json_extract(s.attributes, '$.district') AS TEXT) FROM subjects s WHERE s.id = campaign_skips.subject_id), ''),
  kind = COALESCE((SELECT s.kind FROM subjects s WHERE s.id = campaign_skips.subject_id), '');

-- Clicks name their campaign, so a campaign's clicks are read without its pushes.
ALTER TABLE clicks ADD COLUMN campaign_id TEXT;
UPDATE clicks SET campaign_id = (SELECT p.campaign_id FROM pushes p WHERE p.id = clicks.push_id);
CREATE INDEX clicks_campaign ON clicks (campaign_id);
-- A campaign's applications are read by policy.
CREATE INDEX applications_policy ON applications (policy_id);

-- One row per campaign × bucket × channel × district × kind × state: `bucket` is the
-- push purpose ('notice', 'link_by_sms') with `state` its push status, or 'skip' with
-- `state` the skip reason (channel '').
CREATE TABLE campaign_tallies (
    campaign_id  TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    district     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, bucket, channel, district, kind, state)
);

-- On PostgreSQL concurrent writers append here and the planner folds the rows into
-- `campaign_tallies`; SQLite has one writer at a time, so its row triggers below update
-- the tallies directly and this table stays empty (readers add both tables either way).
CREATE TABLE campaign_tally_changes (
    campaign_id  TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    district     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    n            INTEGER NOT NULL
);
CREATE INDEX campaign_tally_changes_campaign ON campaign_tally_changes (campaign_id);

INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n)
  SELECT campaign_id, purpose, channel, district, kind, status, COUNT(*) FROM pushes GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n)
  SELECT campaign_id, 'skip', '', district, kind, reason, COUNT(*) FROM campaign_skips GROUP BY 1, 2, 3, 4, 5, 6;

CREATE TRIGGER pushes_tally_insert AFTER INSERT ON pushes BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (new.campaign_id, new.purpose, new.channel, new.district, new.kind, new.status, 1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER pushes_tally_update AFTER UPDATE ON pushes
  WHEN old.campaign_id IS NOT new.campaign_id OR old.purpose IS NOT new.purpose OR old.channel IS NOT new.channel OR old.district IS NOT new.district OR old.kind IS NOT new.kind OR old.status IS NOT new.status
BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (old.campaign_id, old.purpose, old.channel, old.district, old.kind, old.status, -1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (new.campaign_id, new.purpose, new.channel, new.district, new.kind, new.status, 1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER pushes_tally_delete AFTER DELETE ON pushes BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (old.campaign_id, old.purpose, old.channel, old.district, old.kind, old.status, -1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER skips_tally_insert AFTER INSERT ON campaign_skips BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (new.campaign_id, 'skip', '', new.district, new.kind, new.reason, 1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER skips_tally_update AFTER UPDATE ON campaign_skips
  WHEN old.campaign_id IS NOT new.campaign_id OR old.district IS NOT new.district OR old.kind IS NOT new.kind OR old.reason IS NOT new.reason
BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (old.campaign_id, 'skip', '', old.district, old.kind, old.reason, -1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (new.campaign_id, 'skip', '', new.district, new.kind, new.reason, 1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER skips_tally_delete AFTER DELETE ON campaign_skips BEGIN
  INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n) VALUES (old.campaign_id, 'skip', '', old.district, old.kind, old.reason, -1)
    ON CONFLICT (campaign_id, bucket, channel, district, kind, state) DO UPDATE SET n = n + excluded.n;
END;

-- Planning from the index catches up with subjects written in the last moments (a
-- planner process whose index follows the bus may not have seen them yet).
CREATE INDEX subjects_updated ON subjects (updated_at);

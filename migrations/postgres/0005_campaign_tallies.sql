-- Campaign counts kept with the state changes (issue 15): the campaign status, its report
-- and completion detection read a few tally rows instead of scanning the pushes.
--
-- Each push and skip row carries the district and kind of its subject when it was
-- written, so the report's district × kind cells are tallies too.
ALTER TABLE pushes ADD COLUMN district TEXT NOT NULL DEFAULT '';
ALTER TABLE pushes ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign_skips ADD COLUMN district TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign_skips ADD COLUMN kind TEXT NOT NULL DEFAULT '';
UPDATE pushes p SET district = COALESCE(s.attributes->>'district', ''), kind = s.kind
  FROM subjects s WHERE s.id = p.subject_id;
UPDATE campaign_skips k SET district = COALESCE(s.attributes->>'district', ''), kind = s.kind
  FROM subjects s WHERE s.id = k.subject_id;

-- Clicks name their campaign, so a campaign's clicks are read without its pushes.
ALTER TABLE clicks ADD COLUMN campaign_id TEXT;
UPDATE clicks k SET campaign_id = p.campaign_id FROM pushes p WHERE p.id = k.push_id;
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
    n            BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, bucket, channel, district, kind, state)
);

-- Changes not yet folded into `campaign_tallies`. Writers only append here (statement
-- triggers below), so concurrent transactions never wait on a shared counter row; the
-- planner folds them in (`PushStore::fold_tallies`), and readers add both tables.
CREATE TABLE campaign_tally_changes (
    campaign_id  TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    district     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    n            BIGINT NOT NULL
);
CREATE INDEX campaign_tally_changes_campaign ON campaign_tally_changes (campaign_id);

INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n)
  SELECT campaign_id, purpose, channel, district, kind, status, COUNT(*) FROM pushes GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO campaign_tallies (campaign_id, bucket, channel, district, kind, state, n)
  SELECT campaign_id, 'skip', '', district, kind, reason, COUNT(*) FROM campaign_skips GROUP BY 1, 2, 3, 4, 5, 6;

-- One statement's net change per key: rows leaving a key count -1, rows arriving +1.
CREATE FUNCTION tally_pushes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, purpose, channel, district, kind, status, COUNT(*)
      FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, purpose, channel, district, kind, status, -COUNT(*)
      FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
  ELSE
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, purpose, channel, district, kind, status, SUM(d)
      FROM (SELECT campaign_id, purpose, channel, district, kind, status, -1 AS d FROM old_rows
            UNION ALL
            SELECT campaign_id, purpose, channel, district, kind, status, 1 AS d FROM new_rows) c
      GROUP BY 1, 2, 3, 4, 5, 6 HAVING SUM(d) <> 0;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION tally_skips() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, 'skip', '', district, kind, reason, COUNT(*)
      FROM new_rows GROUP BY 1, 4, 5, 6;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, 'skip', '', district, kind, reason, -COUNT(*)
      FROM old_rows GROUP BY 1, 4, 5, 6;
  ELSE
    INSERT INTO campaign_tally_changes (campaign_id, bucket, channel, district, kind, state, n)
      SELECT campaign_id, 'skip', '', district, kind, reason, SUM(d)
      FROM (SELECT campaign_id, district, kind, reason, -1 AS d FROM old_rows
            UNION ALL
            SELECT campaign_id, district, kind, reason, 1 AS d FROM new_rows) c
      GROUP BY 1, 4, 5, 6 HAVING SUM(d) <> 0;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER pushes_tally_insert AFTER INSERT ON pushes
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_pushes();
CREATE TRIGGER pushes_tally_update AFTER UPDATE ON pushes
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_pushes();
CREATE TRIGGER pushes_tally_delete AFTER DELETE ON pushes
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_pushes();
CREATE TRIGGER skips_tally_insert AFTER INSERT ON campaign_skips
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_skips();
CREATE TRIGGER skips_tally_update AFTER UPDATE ON campaign_skips
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_skips();
CREATE TRIGGER skips_tally_delete AFTER DELETE ON campaign_skips
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_skips();

-- Planning from the index catches up with subjects written in the last moments (a
-- planner process whose index follows the bus may not have seen them yet).
CREATE INDEX subjects_updated ON subjects (updated_at);

-- Counts by status are tallies now: two fewer indexes to keep on every push write.
DROP INDEX pushes_status;
DROP INDEX pushes_campaign_status;

-- Reports: conversions reported by the bureau's systems, and the indexes the campaign
-- reports and the per-subject delivery history read through.

-- A subject applied for a policy (reported by the bureau's systems). One row per subject
-- and policy: a repeated report of the same application is ignored.
CREATE TABLE applications (
    subject_id   TEXT NOT NULL,
    policy_id    TEXT NOT NULL,
    applied_at   TIMESTAMPTZ NOT NULL,
    source       TEXT NOT NULL,              -- which system reported it, e.g. 'ywtb'
    reference    TEXT,                       -- that system's case number
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subject_id, policy_id)
);

-- The delivery history of one subject (hotline agents), newest first.
CREATE INDEX reports_pushes_subject ON pushes (subject_id, created_at);
CREATE INDEX reports_skips_subject ON campaign_skips (subject_id);
-- Clicks per push (reports count pushes whose link was opened).
CREATE INDEX reports_clicks_push ON clicks (push_id);

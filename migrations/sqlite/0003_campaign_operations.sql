-- Campaign operations: schedules and second approvals of campaigns, disclosure reviews of
-- policies, and the indexes the send-time limits read through.

-- One row per campaign that has a schedule, an end date or needs a second approval.
CREATE TABLE campaign_ops (
    campaign_id         TEXT PRIMARY KEY REFERENCES campaigns(id),
    next_run_at         TEXT,                 -- the scheduler starts a run at this time
    runs                INTEGER NOT NULL DEFAULT 0,
    ends_at             TEXT,                 -- schedule.until: completes at this time
    approvals_needed    INTEGER NOT NULL DEFAULT 1,
    audience            INTEGER,              -- audience counted at approval
    second_approved_by  TEXT
);
CREATE INDEX campaign_ops_due ON campaign_ops (next_run_at);

-- Disclosure reviews (公开属性认定, 保密审查), append-only; the latest one counts.
CREATE TABLE policy_reviews (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    policy_id                TEXT NOT NULL REFERENCES policies(id),
    disclosure               TEXT NOT NULL,   -- 'public', 'public_on_request', 'not_public'
    confidentiality_checked  INTEGER NOT NULL,
    passed                   INTEGER NOT NULL,
    note                     TEXT NOT NULL,
    reviewed_by              TEXT NOT NULL,
    at                       TEXT NOT NULL
);
CREATE INDEX policy_reviews_policy ON policy_reviews (policy_id, id);

-- SMS replies (TD / R / 退订) name a mobile number.
CREATE INDEX subjects_mobile ON subjects (mobile);
-- De-duplication across campaigns: a subject's pushes.
CREATE INDEX ops_pushes_subject_campaign ON pushes (subject_id, campaign_id);

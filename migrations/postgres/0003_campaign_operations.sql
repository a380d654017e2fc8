-- Campaign operations: schedules and second approvals of campaigns, disclosure reviews of
-- policies, and the indexes the send-time limits read through. Same as
-- migrations/sqlite/0003_campaign_operations.sql.

CREATE TABLE campaign_ops (
    campaign_id         TEXT PRIMARY KEY REFERENCES campaigns(id),
    next_run_at         TIMESTAMPTZ,
    runs                BIGINT NOT NULL DEFAULT 0,
    ends_at             TIMESTAMPTZ,
    approvals_needed    BIGINT NOT NULL DEFAULT 1,
    audience            BIGINT,
    second_approved_by  TEXT
);
CREATE INDEX campaign_ops_due ON campaign_ops (next_run_at);

CREATE TABLE policy_reviews (
    id                       BIGSERIAL PRIMARY KEY,
    policy_id                TEXT NOT NULL REFERENCES policies(id),
    disclosure               TEXT NOT NULL,
    confidentiality_checked  BOOLEAN NOT NULL,
    passed                   BOOLEAN NOT NULL,
    note                     TEXT NOT NULL,
    reviewed_by              TEXT NOT NULL,
    at                       TIMESTAMPTZ NOT NULL
);
CREATE INDEX policy_reviews_policy ON policy_reviews (policy_id, id);

CREATE INDEX subjects_mobile ON subjects (mobile);
CREATE INDEX ops_pushes_subject_campaign ON pushes (subject_id, campaign_id);

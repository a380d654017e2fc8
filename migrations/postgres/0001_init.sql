-- policy-push schema for PostgreSQL (the production store). Same tables and meaning as
-- migrations/sqlite/0001_init.sql; timestamps are TIMESTAMPTZ and documents JSONB.

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE subjects (
    id             TEXT COLLATE "C" PRIMARY KEY, -- byte order: paging order as on SQLite
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    mobile         TEXT,
    wechat_openid  TEXT,
    attributes     JSONB NOT NULL,              -- object
    tags           JSONB NOT NULL DEFAULT '[]', -- array of tag names
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE tags (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE policies (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    doc           JSONB NOT NULL,               -- PolicyDraft
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ
);

CREATE TABLE campaigns (
    id            TEXT PRIMARY KEY,
    policy_id     TEXT NOT NULL REFERENCES policies(id),
    name          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL,
    doc           JSONB NOT NULL,               -- CampaignDraft
    created_by    TEXT NOT NULL,
    approved_by   TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    launched_at   TIMESTAMPTZ,
    planned_at    TIMESTAMPTZ,                  -- audience computed and every push row written
    completed_at  TIMESTAMPTZ,
    eligible      BIGINT NOT NULL DEFAULT 0,
    unreachable   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_running ON campaigns (status, launched_at);

-- The outbox: a push row is committed before anything sends it.
CREATE TABLE pushes (
    id               TEXT PRIMARY KEY,
    campaign_id      TEXT NOT NULL REFERENCES campaigns(id),
    subject_id       TEXT NOT NULL,
    purpose          TEXT NOT NULL DEFAULT 'notice', -- 'notice', or 'link_by_sms' (a hotline key press asked for the link)
    seq              BIGINT NOT NULL,            -- order within the campaign, for paging
    channel          TEXT NOT NULL,
    recipient        TEXT NOT NULL,              -- mobile number or openid the channel sends to
    status           TEXT NOT NULL,
    content          TEXT NOT NULL,
    link_code        TEXT NOT NULL UNIQUE,
    explanation      TEXT NOT NULL,              -- JSON Explanation, as the planner wrote it
    benefit          DOUBLE PRECISION,
    segments         BIGINT,                     -- SMS parts billed (signature included)
    provider_id      TEXT,
    error            TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    dispatched       SMALLINT NOT NULL DEFAULT 0, -- 0 not handed to the bus, 1 being handed, 2 on the bus
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, subject_id, purpose)
);
-- What the relay looks for: queued rows not yet handed over, by due time.
CREATE INDEX pushes_outbox ON pushes (next_attempt_at) WHERE status = 'queued' AND dispatched = 0;
CREATE INDEX pushes_sending ON pushes (updated_at) WHERE status = 'sending';
CREATE INDEX pushes_campaign_seq ON pushes (campaign_id, seq);
CREATE INDEX pushes_campaign_status ON pushes (campaign_id, status);
CREATE INDEX pushes_provider ON pushes (provider_id);
CREATE INDEX pushes_status ON pushes (status);
CREATE INDEX pushes_failed ON pushes (campaign_id, seq) WHERE status = 'failed';

-- Eligible subjects no channel of the plan reaches.
CREATE TABLE campaign_skips (
    campaign_id  TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, subject_id)
);

CREATE TABLE clicks (
    push_id     TEXT NOT NULL,
    clicked_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX clicks_push ON clicks (push_id);

CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    operator_id  TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       JSONB NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);

-- Opt-outs: a subject refused a channel (channel set) or a policy category (category set),
-- or everything (both NULL). Honoured before every push is planned.
CREATE TABLE opt_outs (
    subject_id  TEXT NOT NULL,
    channel     TEXT,
    category    TEXT,
    source      TEXT NOT NULL,               -- e.g. 'sms_blacklist', 'hotline_dtmf_0', 'recipient_page'
    at          TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX opt_outs_key ON opt_outs (subject_id, COALESCE(channel, ''), COALESCE(category, ''));

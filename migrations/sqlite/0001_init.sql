-- policy-push schema for SQLite (the embedded default).

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE subjects (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    mobile         TEXT,
    wechat_openid  TEXT,
    attributes     TEXT NOT NULL,            -- JSON object
    tags           TEXT NOT NULL DEFAULT '[]', -- JSON array of tag names
    updated_at     TEXT NOT NULL
);

CREATE TABLE tags (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE policies (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    doc           TEXT NOT NULL,             -- JSON PolicyDraft
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    published_at  TEXT
);

CREATE TABLE campaigns (
    id            TEXT PRIMARY KEY,
    policy_id     TEXT NOT NULL REFERENCES policies(id),
    name          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL,
    doc           TEXT NOT NULL,             -- JSON CampaignDraft
    created_by    TEXT NOT NULL,
    approved_by   TEXT,
    created_at    TEXT NOT NULL,
    launched_at   TEXT,
    planned_at    TEXT,                      -- audience computed and every push row written
    completed_at  TEXT,
    eligible      INTEGER NOT NULL DEFAULT 0,
    unreachable   INTEGER NOT NULL DEFAULT 0
);

-- The outbox: a push row is committed before anything sends it.
CREATE TABLE pushes (
    id               TEXT PRIMARY KEY,
    campaign_id      TEXT NOT NULL REFERENCES campaigns(id),
    subject_id       TEXT NOT NULL,
    purpose          TEXT NOT NULL DEFAULT 'notice', -- 'notice', or 'link_by_sms' (a hotline key press asked for the link)
    seq              INTEGER NOT NULL,       -- order within the campaign, for paging
    channel          TEXT NOT NULL,
    recipient        TEXT NOT NULL,          -- mobile number or openid the channel sends to
    status           TEXT NOT NULL,
    content          TEXT NOT NULL,
    link_code        TEXT NOT NULL UNIQUE,
    explanation      TEXT NOT NULL,          -- JSON Explanation
    benefit          REAL,
    segments         INTEGER,                -- SMS parts billed (signature included)
    provider_id      TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    dispatched       INTEGER NOT NULL DEFAULT 0, -- handed to the bus
    next_attempt_at  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (campaign_id, subject_id, purpose)
);
CREATE INDEX pushes_outbox ON pushes (status, dispatched, next_attempt_at);
CREATE INDEX pushes_campaign_seq ON pushes (campaign_id, seq);
CREATE INDEX pushes_provider ON pushes (provider_id);

-- Eligible subjects no channel of the plan reaches.
CREATE TABLE campaign_skips (
    campaign_id  TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, subject_id)
);

CREATE TABLE clicks (
    push_id     TEXT NOT NULL,
    clicked_at  TEXT NOT NULL
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id  TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL,              -- JSON
    at           TEXT NOT NULL
);

-- Opt-outs: a subject refused a channel (channel set) or a policy category (category set),
-- or everything (both NULL). Honoured before every push is planned.
CREATE TABLE opt_outs (
    subject_id  TEXT NOT NULL,
    channel     TEXT,
    category    TEXT,
    source      TEXT NOT NULL,               -- e.g. 'sms_blacklist', 'hotline_dtmf_0', 'recipient_page'
    at          TEXT NOT NULL
);
CREATE UNIQUE INDEX opt_outs_key ON opt_outs (subject_id, COALESCE(channel, ''), COALESCE(category, ''));

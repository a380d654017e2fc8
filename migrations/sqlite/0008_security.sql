-- Hostile callers (issue 10): durable late receipts, operators who created operators and
-- can be disabled, server-side console sessions.

-- Receipts that overtook their send (the provider id is not recorded yet): kept until
-- the send is recorded (PushStore::record_outcomes applies them in its transaction, the
-- receipt applier's sweep catches the rest), at most a bounded number, deleted when they
-- expire (24 h).
CREATE TABLE late_receipts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id  TEXT NOT NULL,
    push_id      TEXT,
    delivered    INTEGER NOT NULL,
    error        TEXT,
    retry_at     TEXT,
    received_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX late_receipts_provider ON late_receipts (provider_id);
CREATE INDEX late_receipts_expiry ON late_receipts (expires_at);

-- Who created an operator (NULL: the bootstrap admin), and when it was disabled.
ALTER TABLE operators ADD COLUMN created_by TEXT;
ALTER TABLE operators ADD COLUMN disabled_at TEXT;

-- Console sessions: the cookie carries a random session id; only its SHA-256 is kept.
-- Sign-out and disabling the operator revoke them.
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX console_sessions_operator ON console_sessions (operator_id);

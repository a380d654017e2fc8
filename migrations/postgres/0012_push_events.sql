-- The record of every push and every operator action (issue 12 items 1 and 2;
-- docs/security.md "The tamper-evident record").
--
-- push_events: one append-only row per transition of a push, written in the same
-- transaction as the state change, one multi-row INSERT per store call. Narrow on purpose
-- (the fan-out path writes several per push): smallint type and channel codes
-- (`domain::push_event`), detail only when there is something to say, one index.
-- `segment` is the event segment (below) whose hash covers the row.
CREATE TABLE push_events (
    id       BIGSERIAL PRIMARY KEY,
    segment  BIGINT NOT NULL,
    push_id  TEXT COLLATE "C" NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    type     SMALLINT NOT NULL,
    channel  SMALLINT,
    actor    TEXT,
    detail   JSONB
);
CREATE INDEX push_events_push ON push_events (push_id, id);

-- One row per store call that wrote events: a link of the hash chain of one writer
-- stream (no global chain head: each stream belongs to one writer at a time).
-- hash = SHA-256 over prev_hash, stream, seq, n and the canonical texts of its n events
-- in byte order; seq 1 has prev_hash 64 zeros. The writer picks the id so the segment and
-- its events go in one statement on PostgreSQL.
CREATE TABLE event_segments (
    id         BIGINT PRIMARY KEY,      -- chosen by the writer (random), see below
    stream     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    UNIQUE (stream, seq)
);

-- The audit log is one chain (operator actions are few): each row carries its place,
-- the hash before it and its own; the head is kept in chain_heads (its row lock orders
-- the writers). Rows written before this migration have no hash and are reported as
-- unchained.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

CREATE TABLE chain_heads (
    chain  TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL
);
INSERT INTO chain_heads (chain, seq, hash)
VALUES ('audit', 0, '0000000000000000000000000000000000000000000000000000000000000000');

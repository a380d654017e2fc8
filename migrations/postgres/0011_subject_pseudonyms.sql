-- Keyed pseudonyms of subjects (issue 11 item 2; `domain::pseudonym`). `subject.changed`
-- on the bus carries a subject's pseudonym, never its ID number; a process that follows
-- the topic resolves it here. The writer of a change records the pair before announcing
-- it. The key is not in the database, so the pairs are written by the processes (no
-- backfill): a new key simply adds new pairs.
CREATE TABLE subject_pseudonyms (
    pseudonym   TEXT PRIMARY KEY,
    subject_id  TEXT COLLATE "C" NOT NULL
);
-- Erasing a subject removes its pairs.
CREATE INDEX subject_pseudonyms_subject ON subject_pseudonyms (subject_id);

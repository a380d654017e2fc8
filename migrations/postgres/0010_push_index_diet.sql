-- Fewer index entries per push write (issue 15). Every state change of a push writes a
-- new row version, and a version gets an entry in every index whose predicate it meets.
--
-- The subject history (by subject, newest first) reads a subject's few pushes through
-- `ops_pushes_subject_campaign (subject_id, campaign_id)` and sorts them: the second
-- index by subject goes.
DROP INDEX reports_pushes_subject;
-- Receipts look up pushes that wait for one (`sending`, `sent`) by provider id; a push
-- queued or past its receipt needs no entry.
DROP INDEX pushes_provider;
CREATE INDEX pushes_provider_waiting ON pushes (provider_id) WHERE status IN ('sending', 'sent');

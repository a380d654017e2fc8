-- Fewer index entries per push write (issue 15): the subject history (by subject, newest
-- first) reads a subject's few pushes through `ops_pushes_subject_campaign (subject_id,
-- campaign_id)` and sorts them, so the second index by subject goes. (The provider-id
-- index stays whole here: SQLite's OR optimisation in the receipt lookup needs it.)
DROP INDEX reports_pushes_subject;

-- Files from other systems, and records delivered again.

-- Records whose key the database holds with exactly the same values: not
-- inserted, not rejected, no event (a cumulative or re-sent file).
ALTER TABLE runs ADD COLUMN unchanged bigint NOT NULL DEFAULT 0;
-- How the run read its input (JSON: encoding, delimiter, quote, header,
-- lines skipped, column mapping, constants, separators stripped), so that a
-- resume and `rejects export --as-input` read and write it the same way.
ALTER TABLE runs ADD COLUMN reading_plan text;
-- The reject report the run last wrote (an absolute path): the next run of
-- an input of the same name writes its own instead of replacing it.
ALTER TABLE runs ADD COLUMN reject_report text;

-- The input as the run's first invocation read it, for the run report:
-- its absolute path (none for stdin), its size in bytes as stored, and the
-- SHA-256 of those bytes (what `sha256sum` prints).
ALTER TABLE runs ADD COLUMN input_path TEXT;
ALTER TABLE runs ADD COLUMN input_size BIGINT;
ALTER TABLE runs ADD COLUMN input_sha256 TEXT;

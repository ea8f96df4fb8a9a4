-- The input as the run's first invocation read it, for the run report:
-- its absolute path (none for stdin), its size in bytes as stored, and the
-- SHA-256 of those bytes (what `sha256sum` prints).
ALTER TABLE runs ADD COLUMN input_path TEXT;
ALTER TABLE runs ADD COLUMN input_size INTEGER;
ALTER TABLE runs ADD COLUMN input_sha256 TEXT;
-- What a later input that opens with this run's whole input needs to know
-- to take its verdicts without reading a card (a cumulative file): the
-- length of the content the run key hashes, the org's last event id when
-- the run began (an event since that is not the run's own means something
-- changed), and a hash of what the verdicts depended on besides the
-- database's cards (the org's configuration, its series, the release).
ALTER TABLE runs ADD COLUMN content_bytes INTEGER;
ALTER TABLE runs ADD COLUMN started_event_id INTEGER;
ALTER TABLE runs ADD COLUMN context_hash TEXT;
-- The run whose verdicts this run took for its first records, and how many.
ALTER TABLE runs ADD COLUMN adopted_from INTEGER;
ALTER TABLE runs ADD COLUMN adopted_records INTEGER;

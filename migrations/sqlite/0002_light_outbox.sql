-- The light outbox: an import no longer copies every card into the events
-- table. One row stands for a batch's events (card_created over a range of
-- the run's card ids, customer_registered over a range of customer rows),
-- or for one event; `events export` renders the payloads from the rows
-- they name. Ids: a row's events have the ids id .. id + event_count - 1.
-- Rows written before this migration keep their payload as written.
CREATE TABLE events_light (
    id                   INTEGER PRIMARY KEY,
    org_id               INTEGER NOT NULL,
    run_id               INTEGER,
    kind                 TEXT    NOT NULL,
    event_count          INTEGER NOT NULL DEFAULT 1,
    -- a batch's rows: cards (card_created) or customers (customer_registered) of run_id with ids first_row..last_row
    first_row            INTEGER,
    last_row             INTEGER,
    -- card_external_id_set from an import: the card, the value set and the one it replaced
    card_id              INTEGER,
    external_id          TEXT,
    previous_external_id TEXT,
    -- single-record commands and rows from before the light outbox: the payload as written
    payload              TEXT,
    created_at           TEXT    NOT NULL
);
INSERT INTO events_light (id, org_id, run_id, kind, payload, created_at)
    SELECT id, org_id, run_id, kind, payload, created_at FROM events;
DROP TABLE events;
ALTER TABLE events_light RENAME TO events;

-- The light outbox: an import no longer copies every card into the events
-- table. One row stands for a batch's events (card_created over a range of
-- the run's card ids, customer_registered over a range of customer rows),
-- or for one event; `events export` renders the payloads from the rows
-- they name. Ids: a row's events have the ids id .. id + event_count - 1,
-- taken from event_counters when the transaction commits, so that ids
-- follow commit order. Rows written before this migration keep their
-- payload as written.
ALTER TABLE events ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE events
    ADD COLUMN event_count          bigint NOT NULL DEFAULT 1,
    -- a batch's rows: cards (card_created) or customers (customer_registered) of run_id with ids first_row..last_row
    ADD COLUMN first_row            bigint,
    ADD COLUMN last_row             bigint,
    -- card_external_id_set from an import: the card, the value set and the one it replaced
    ADD COLUMN card_id              bigint,
    ADD COLUMN external_id          text,
    ADD COLUMN previous_external_id text;

-- The next event id of each org; its row lock orders writers' commits.
CREATE TABLE event_counters (
    org_id  bigint PRIMARY KEY,
    next_id bigint NOT NULL
);
INSERT INTO event_counters (org_id, next_id) SELECT org_id, max(id) + 1 FROM events GROUP BY org_id;

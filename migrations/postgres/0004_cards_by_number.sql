-- An import's write is mostly index maintenance: every card went into three
-- B-trees (the primary key on (org_id, id), card number, external ID). The
-- card number is the key everything looks cards up by, so it becomes the
-- primary key, and ids, which only ever come in ascending order and are
-- only read by range (a batch's card_created events, a run's cards), are
-- kept by a BRIN index: one small summary per 32 pages instead of an entry
-- per card. A 1M-card COPY took 7.3 s instead of 8.2 s (see
-- benches/README.md).
--
-- A BRIN range is found by a range query only once it is summarized, and
-- the planner costs a BRIN index by the column's statistics; with no
-- statistics for an org (a new org, or a table never analyzed) it prefers
-- the primary key's B-tree for "org_id = $1" and reads the org's every card
-- for each range. So cardbatch, after each commit of an import and after a
-- generation, summarizes what it wrote and analyzes the table when the
-- planner's estimate of the org's cards is below a tenth of what it just
-- wrote; VACUUM and autovacuum's ANALYZE do the same for other writers.
-- (autosummarize is off: a large import fills ranges faster than
-- autovacuum's queue of 256 requests takes them, and each one dropped is a
-- line in the server log.)
--
-- A card_external_id_set event named its card by id and read the number
-- through a join; it now keeps the number itself (a card's number never
-- changes), so that reading events needs no lookup by id.
ALTER TABLE events ADD COLUMN card_number text;
UPDATE events e SET card_number = c.card_number
    FROM cards c WHERE e.card_id IS NOT NULL AND c.org_id = e.org_id AND c.id = e.card_id;

ALTER TABLE cards DROP CONSTRAINT cards_pkey;
ALTER TABLE cards ADD CONSTRAINT cards_org_number PRIMARY KEY USING INDEX cards_org_number;
CREATE INDEX cards_id ON cards USING brin (id) WITH (pages_per_range = 32);

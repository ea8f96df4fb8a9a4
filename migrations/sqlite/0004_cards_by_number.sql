-- A card_external_id_set event keeps its card's number (a card's number
-- never changes), so that reading events needs no lookup of the card by id:
-- on PostgreSQL cards' ids are kept by a BRIN index only (see the
-- PostgreSQL migration of the same name). SQLite's cards are stored in id
-- order anyway, so nothing else changes here.
ALTER TABLE events ADD COLUMN card_number TEXT;
UPDATE events SET card_number = (SELECT c.card_number FROM cards c WHERE c.org_id = events.org_id AND c.id = events.card_id)
    WHERE card_id IS NOT NULL;

-- Reviewing and reloading rejects, and check digits over the whole number.

-- The input as the run read it: its format (csv or jsonl) and, for CSV, the
-- header line, so that `rejects export --as-input` writes a file that
-- imports as it is.
ALTER TABLE runs ADD COLUMN input_format TEXT;
ALTER TABLE runs ADD COLUMN input_header TEXT;
-- Records an earlier invocation had committed when the latest one began.
ALTER TABLE runs ADD COLUMN already_committed INTEGER NOT NULL DEFAULT 0;

-- Where each record of a run starts: line = record + line_offset, from this
-- record on until the next row. One row per run for most files (offset 1,
-- the header); a record spanning lines or a skipped blank line adds one.
CREATE TABLE run_lines (
    org_id      INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    record      INTEGER NOT NULL,
    line_offset INTEGER NOT NULL,
    PRIMARY KEY (org_id, run_id, record)
) WITHOUT ROWID;

-- The input record that registered a customer, and that last set a card's
-- external ID (cards.import_record is the record that created the card):
-- a later duplicate names the line it repeats.
ALTER TABLE customers ADD COLUMN import_record INTEGER;
ALTER TABLE cards ADD COLUMN external_id_record INTEGER;

-- valuesToIncludeForChecksumDigit of the series' generation configuration:
-- NONE (the check digit covers the digits between prefix and check digit)
-- or PREFIX (the prefix's digits too, as ISO/IEC 7812 card numbers need).
ALTER TABLE card_series ADD COLUMN checksum_values TEXT NOT NULL DEFAULT 'NONE';

-- cardbatch schema (SQLite). Every table carries org_id and every unique key
-- includes it; ids are SQLite rowids.

CREATE TABLE org_config (
    org_id INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (org_id, key)
) WITHOUT ROWID;

-- Org-level external-ID generation: the counter and the permutation secret.
CREATE TABLE org_sequences (
    org_id       INTEGER NOT NULL PRIMARY KEY,
    next_counter INTEGER NOT NULL,
    secret_key   TEXT    NOT NULL
);

CREATE TABLE card_series (
    id                            INTEGER PRIMARY KEY,
    org_id                        INTEGER NOT NULL,
    code                          TEXT    NOT NULL,
    name                          TEXT,
    series_type                   TEXT    NOT NULL,
    expiry_days                   INTEGER,
    max_active_cards_per_customer INTEGER,
    -- generation configuration; all NULL when the series has none
    gen_prefix                    TEXT,
    gen_suffix                    TEXT,
    gen_offset                    INTEGER,
    gen_length                    INTEGER,
    gen_method                    TEXT,
    generation_enabled            INTEGER NOT NULL,
    is_active                     INTEGER NOT NULL,
    trigger_kind                  TEXT    NOT NULL,
    next_counter                  INTEGER NOT NULL,
    secret_key                    TEXT    NOT NULL,
    created_at                    TEXT    NOT NULL,
    UNIQUE (org_id, code),
    UNIQUE (org_id, gen_prefix, gen_suffix, gen_length)
);

CREATE TABLE cards (
    id                      INTEGER PRIMARY KEY,
    org_id                  INTEGER NOT NULL,
    series_id               INTEGER NOT NULL,
    card_number             TEXT    NOT NULL,
    external_id             TEXT,
    status_label            TEXT    NOT NULL,
    status_reason           TEXT,
    customer_id             INTEGER,
    extended_fields         TEXT,
    custom_fields           TEXT,
    mapped_entity           TEXT,
    transaction_not_allowed INTEGER NOT NULL DEFAULT 0,
    -- the run that created the card, and the run that last set its external ID
    run_id                  INTEGER,
    import_record           INTEGER,  -- the input record it came from, for imported cards
    external_id_run_id      INTEGER,
    created_at              TEXT    NOT NULL
);
CREATE UNIQUE INDEX cards_org_number ON cards (org_id, card_number);
-- Partial: cards without an external ID (all generated cards) cost no index entry.
CREATE UNIQUE INDEX cards_org_external_id ON cards (org_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    external_id TEXT    NOT NULL,
    external_id_generated INTEGER NOT NULL DEFAULT 0,
    run_id      INTEGER,
    created_at  TEXT    NOT NULL,
    UNIQUE (org_id, customer_id),
    UNIQUE (org_id, external_id)
);

-- One row per import run or generation call.
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    org_id            INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    input_name        TEXT,
    input_hash        TEXT,
    status            TEXT    NOT NULL,
    -- the checkpoint: every record up to this number has its verdict committed
    records_committed INTEGER NOT NULL DEFAULT 0,
    inserted          INTEGER NOT NULL DEFAULT 0,
    rejected          INTEGER NOT NULL DEFAULT 0,
    started_at        TEXT    NOT NULL,
    finished_at       TEXT,
    UNIQUE (org_id, kind, input_hash)
);

CREATE TABLE rejects (
    org_id  INTEGER NOT NULL,
    run_id  INTEGER NOT NULL,
    record  INTEGER NOT NULL,
    line    INTEGER NOT NULL,
    reason  TEXT    NOT NULL,
    field   TEXT    NOT NULL,
    message TEXT    NOT NULL,
    raw     TEXT    NOT NULL,
    PRIMARY KEY (org_id, run_id, record)
) WITHOUT ROWID;

-- The outbox: one event per inserted record, written in the record's transaction.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL,
    run_id     INTEGER,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

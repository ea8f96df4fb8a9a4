//! The integration tests, in one test binary (one link on two cores, and
//! the shared helpers in `common` compiled once). Each module runs the real
//! `cardbatch` binary; most test bodies run on every backend (SQLite, PostgreSQL, Citus)
//! ([`on_every_backend!`]).

mod common;

mod check_digits;
mod citus;
mod concurrency;
mod crash_resume;
mod dialects;
mod events_pin;
mod exit_codes;
mod fuzz;
mod generation_properties;
mod import_cards;
mod import_other;
mod input_limits;
mod lanes;
mod new_database;
mod outputs;
mod primitives;
mod query_plans;
mod review;
mod scheduler;
mod single_record;
mod terminal;

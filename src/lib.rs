//! cardbatch: bulk import and batch processing of loyalty-card data.
//!
//! The data flow is visible in the module tree: numbers are computed in
//! [`numbers`], records are judged by the rules in [`domain`], written by
//! [`store`], and the commands in [`commands`] tie them together for the
//! binary.

pub mod batch;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod error;
pub mod import;
pub mod numbers;
pub mod output;
pub mod parallel;
pub mod progress;
pub mod report;
pub mod store;

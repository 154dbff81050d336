//! The canonical, person-level data model of trent.
//!
//! Every capability reads the same tables: this crate is the single definition of their
//! names, columns, Arrow types and meaning. `docs/schema.md` is generated from
//! [`schema::TABLES`] (`trent schema`), and a test keeps the two equal.
//!
//! The lake tables are **pseudonymised**: a `person_id` is a surrogate key, dates of birth
//! are reduced to the month and addresses to the LSOA. The identifiable side (NHS number,
//! name, exact date of birth, postcode) is described by [`schema::VAULT`] and is never
//! written into the lake.
//!
//! This crate holds no I/O: only definitions and small pure helpers (NHS number check
//! digits, the code lists the generator and the engines share).

pub mod codes;
pub mod nhs_number;
pub mod schema;
pub mod time;

pub use schema::{ColumnDef, TABLES, TableDef, VAULT};

//! The lake: pseudonymised person-level tables as Parquet, a small catalog, and the
//! Apache DataFusion table providers every engine reads them through.
//!
//! Layout of a data directory:
//!
//! ```text
//! DIR/.trent                 marker: this directory belongs to trent
//! DIR/generations/g000007/   one complete, immutable lake + vault
//!        lake/catalog.json   tables, schemas, row counts, run, configuration hash
//!        lake/<table>/part-00000.parquet …
//!        vault/identity/part-00000.parquet …   (identifiable: never read by analytics)
//! DIR/current -> generations/g000007   (symlink, swapped atomically)
//! DIR/lake    -> current/lake
//! DIR/vault   -> current/vault
//! ```
//!
//! A writer builds a new generation in a staging folder and publishes it by renaming a
//! new `current` symlink over the old one (`rename(2)` is atomic), so a reader sees the
//! old lake or the new one, never half of one, and a run killed at any point leaves the
//! previous lake intact. Readers resolve `current` once and keep that generation for a
//! whole query.
//!
//! This crate never reads the vault's contents; it only gives the vault a place.

mod catalog;
mod error;
pub mod output;
mod reader;
mod writer;

pub use catalog::{Catalog, ColumnInfo, TableInfo};
pub use error::{LakeError, io};
pub use reader::{Lake, read_part, resolve_data_dir};
pub use writer::{LakeWriter, PartWriter};

/// Marker file naming a trent data directory.
pub const MARKER: &str = ".trent";
/// Catalog file name inside `lake/`.
pub const CATALOG: &str = "catalog.json";
/// Folder of the identity table inside `vault/`.
pub const VAULT_TABLE: &str = "identity";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./trent-data";

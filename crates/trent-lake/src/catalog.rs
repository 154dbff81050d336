//! The catalog: what a lake holds and how it was made.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LakeError, io};

/// The catalog of one lake generation (`lake/catalog.json`).
///
/// It holds no wall-clock time, so the same run options give a byte-identical lake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    /// catalog format version
    pub format: u32,
    /// identifier of the run that wrote the lake (a hash of its inputs)
    pub run_id: String,
    /// the command line options of that run
    pub run: serde_json::Value,
    /// SHA-256 of the area configuration file
    pub config_hash: String,
    /// the area id
    pub area: String,
    /// first day the lake covers
    pub span_start: String,
    /// last day the lake covers
    pub span_end: String,
    /// `trent <version>`
    pub written_by: String,
    /// the tables
    pub tables: Vec<TableInfo>,
    /// rows in the identity vault (its contents are not described here)
    pub vault_rows: u64,
    /// the ingest batches that landed in this lake, oldest first (empty for a lake that
    /// `trent synth` wrote and nothing was ingested into)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<serde_json::Value>,
}

/// One table in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableInfo {
    /// table name
    pub name: String,
    /// total rows
    pub rows: u64,
    /// part files, relative to the table folder
    pub files: Vec<String>,
    /// columns
    pub schema: Vec<ColumnInfo>,
    /// the run that wrote this table
    pub run_id: String,
}

/// One column in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnInfo {
    /// name
    pub name: String,
    /// Arrow type
    #[serde(rename = "type")]
    pub ty: String,
    /// nullable
    pub nullable: bool,
}

impl Catalog {
    /// Read a catalog file.
    pub fn read(path: &Path) -> Result<Catalog, LakeError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        serde_json::from_str(&text).map_err(|e| LakeError::BadCatalog {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The table entry by name.
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TableInfo {
    /// Catalog entry for a table definition.
    pub fn new(
        def: &trent_model::TableDef,
        rows: u64,
        files: Vec<String>,
        run_id: &str,
    ) -> TableInfo {
        TableInfo {
            name: def.name.to_string(),
            rows,
            files,
            schema: def
                .schema()
                .fields()
                .iter()
                .map(|f| ColumnInfo {
                    name: f.name().clone(),
                    ty: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
            run_id: run_id.to_string(),
        }
    }
}

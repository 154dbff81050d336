//! A small row-wise builder for the vault's and quarantine's Parquet tables.
//!
//! The lake's event tables are written column-wise by [`crate::land`]; the ingest
//! bookkeeping tables (vault `person_source`, `record_key`, `review`, `quarantine_raw`,
//! lake `quarantine`) are small and written row by row through this builder, so each
//! table is one schema constant and one `push` per row.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};

use crate::IngestError;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A null.
    Null,
    /// Text.
    S(String),
    /// 64-bit integer.
    I(i64),
    /// 32-bit integer.
    I32(i32),
    /// Float.
    F(f64),
    /// Date (days since 1970-01-01).
    D(i32),
    /// Timestamp (seconds since 1970-01-01; stored as microseconds).
    Ts(i64),
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Cell {
        v.map_or(Cell::Null, Cell::S)
    }
}

impl From<Option<&str>> for Cell {
    fn from(v: Option<&str>) -> Cell {
        v.map_or(Cell::Null, |s| Cell::S(s.to_string()))
    }
}

enum B {
    S(StringBuilder),
    I(Int64Builder),
    I32(Int32Builder),
    F(Float64Builder),
    D(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
}

/// Builds one record batch row by row against a schema.
pub struct Rows {
    schema: SchemaRef,
    cols: Vec<B>,
    len: usize,
}

impl Rows {
    /// A builder for `schema`.
    pub fn new(schema: SchemaRef) -> Rows {
        let cols = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => B::S(StringBuilder::new()),
                DataType::Int64 => B::I(Int64Builder::new()),
                DataType::Int32 => B::I32(Int32Builder::new()),
                DataType::Float64 => B::F(Float64Builder::new()),
                DataType::Date32 => B::D(Date32Builder::new()),
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    B::Ts(TimestampMicrosecondBuilder::new())
                }
                other => panic!("unsupported column type {other} in an ingest table"),
            })
            .collect();
        Rows {
            schema,
            cols,
            len: 0,
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No rows yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one row; cells in schema order. A type mismatch is a programming error.
    pub fn push(&mut self, row: Vec<Cell>) {
        assert_eq!(row.len(), self.cols.len(), "row width");
        for (b, c) in self.cols.iter_mut().zip(row) {
            match (b, c) {
                (B::S(b), Cell::S(v)) => b.append_value(v),
                (B::S(b), Cell::Null) => b.append_null(),
                (B::I(b), Cell::I(v)) => b.append_value(v),
                (B::I(b), Cell::Null) => b.append_null(),
                (B::I32(b), Cell::I32(v)) => b.append_value(v),
                (B::I32(b), Cell::Null) => b.append_null(),
                (B::F(b), Cell::F(v)) => b.append_value(v),
                (B::F(b), Cell::Null) => b.append_null(),
                (B::D(b), Cell::D(v)) => b.append_value(v),
                (B::D(b), Cell::Null) => b.append_null(),
                (B::Ts(b), Cell::Ts(v)) => b.append_value(v * 1_000_000),
                (B::Ts(b), Cell::Null) => b.append_null(),
                (_, c) => panic!("cell {c:?} does not fit its column"),
            }
        }
        self.len += 1;
    }

    /// The batch.
    pub fn finish(mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    B::S(b) => Arc::new(b.finish()),
                    B::I(b) => Arc::new(b.finish()),
                    B::I32(b) => Arc::new(b.finish()),
                    B::F(b) => Arc::new(b.finish()),
                    B::D(b) => Arc::new(b.finish()),
                    B::Ts(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        RecordBatch::try_new(self.schema.clone(), cols).expect("columns match the schema")
    }
}

/// A schema of nullable columns (`name`, type) — the bookkeeping tables' style.
pub fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Write `batch` to `path` as one Parquet file (zstd), creating the folder.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), IngestError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
    }
    // never write through a hard link into an older generation's file
    let _ = std::fs::remove_file(path);
    let file = std::fs::File::create(path).map_err(|e| IngestError::io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
        .build();
    let perr = |e: parquet::errors::ParquetError| IngestError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(perr)?;
    w.write(batch).map_err(perr)?;
    let f = w.into_inner().map_err(perr)?;
    f.sync_all().map_err(|e| IngestError::io(path, e))?;
    Ok(())
}

/// Read a Parquet file whole (empty when it does not exist).
pub fn read_parquet(path: &Path) -> Result<Option<RecordBatch>, IngestError> {
    if !path.exists() {
        return Ok(None);
    }
    trent_lake::read_part(path)
        .map(Some)
        .map_err(|e| IngestError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Typed access to a batch's columns by name.
pub struct Cols<'a>(pub &'a RecordBatch);

impl<'a> Cols<'a> {
    fn col(&self, name: &str) -> &'a dyn Array {
        self.0
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name} missing"))
            .as_ref()
    }
    /// Optional text.
    pub fn s(&self, name: &str, i: usize) -> Option<String> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_string::<i32>().value(i).to_string())
    }
    /// Optional i64.
    pub fn i(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Int64Type>().value(i))
    }
    /// Optional i32.
    pub fn i32(&self, name: &str, i: usize) -> Option<i32> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Int32Type>().value(i))
    }
    /// Optional f64.
    pub fn f(&self, name: &str, i: usize) -> Option<f64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Float64Type>().value(i))
    }
    /// Optional date.
    pub fn d(&self, name: &str, i: usize) -> Option<i32> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Date32Type>().value(i))
    }
    /// Optional timestamp, seconds.
    pub fn ts(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<TimestampMicrosecondType>().value(i) / 1_000_000)
    }
}

//! Column buffers for each table: rows are appended as the simulation runs and flushed
//! to the partition's Parquet part file in batches, so memory stays bounded.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use trent_lake::{LakeError, PartWriter};
use trent_model::TableDef;
use trent_model::schema::ColType;

/// Rows per flushed batch.
pub const FLUSH_ROWS: usize = 128 * 1024;

/// One column's builder.
pub enum Col {
    /// int64
    I64(Int64Builder),
    /// int32
    I32(Int32Builder),
    /// float64
    F64(Float64Builder),
    /// utf8
    Str(StringBuilder),
    /// date32
    Date(Date32Builder),
    /// timestamp seconds
    Ts(TimestampMicrosecondBuilder),
    /// bool
    Bool(BooleanBuilder),
}

/// A value to append.
pub enum V<'a> {
    /// int
    I(i64),
    /// float
    F(f64),
    /// string
    S(&'a str),
    /// date (days since epoch)
    D(i32),
    /// timestamp (seconds)
    T(i64),
    /// bool
    B(bool),
    /// null
    N,
}

/// A table's buffer plus its part file.
pub struct TableBuf {
    def: &'static TableDef,
    cols: Vec<Col>,
    len: usize,
    writer: PartWriter,
}

impl TableBuf {
    /// New buffer writing to `writer`.
    pub fn new(def: &'static TableDef, writer: PartWriter) -> TableBuf {
        let cols = def
            .columns
            .iter()
            .map(|c| match c.ty {
                ColType::Int64 => Col::I64(Int64Builder::new()),
                ColType::Int32 => Col::I32(Int32Builder::new()),
                ColType::Float64 => Col::F64(Float64Builder::new()),
                ColType::Utf8 => Col::Str(StringBuilder::new()),
                ColType::Date => Col::Date(Date32Builder::new()),
                ColType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::new()),
                ColType::Boolean => Col::Bool(BooleanBuilder::new()),
            })
            .collect();
        TableBuf {
            def,
            cols,
            len: 0,
            writer,
        }
    }

    /// Append one row; values in column order. Panics on a type mismatch (a bug).
    pub fn row(&mut self, vals: &[V<'_>]) -> Result<(), LakeError> {
        debug_assert_eq!(vals.len(), self.cols.len(), "{}", self.def.name);
        for (c, v) in self.cols.iter_mut().zip(vals) {
            match (c, v) {
                (Col::I64(b), V::I(x)) => b.append_value(*x),
                (Col::I32(b), V::I(x)) => b.append_value(*x as i32),
                (Col::F64(b), V::F(x)) => b.append_value(*x),
                (Col::Str(b), V::S(x)) => b.append_value(x),
                (Col::Date(b), V::D(x)) => b.append_value(*x),
                (Col::Ts(b), V::T(x)) => b.append_value(*x * 1_000_000), // V::T is seconds
                (Col::Bool(b), V::B(x)) => b.append_value(*x),
                (Col::I64(b), V::N) => b.append_null(),
                (Col::I32(b), V::N) => b.append_null(),
                (Col::F64(b), V::N) => b.append_null(),
                (Col::Str(b), V::N) => b.append_null(),
                (Col::Date(b), V::N) => b.append_null(),
                (Col::Ts(b), V::N) => b.append_null(),
                (Col::Bool(b), V::N) => b.append_null(),
                _ => panic!("type mismatch in table {}", self.def.name),
            }
        }
        self.len += 1;
        if self.len >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LakeError> {
        if self.len == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::I64(b) => Arc::new(b.finish()),
                    Col::I32(b) => Arc::new(b.finish()),
                    Col::F64(b) => Arc::new(b.finish()),
                    Col::Str(b) => Arc::new(b.finish()),
                    Col::Date(b) => Arc::new(b.finish()),
                    Col::Ts(b) => Arc::new(b.finish()),
                    Col::Bool(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.def.schema(), arrays).expect("buffer matches schema");
        self.writer.write(&batch)?;
        self.len = 0;
        Ok(())
    }

    /// Flush and close; (file name, rows).
    pub fn finish(mut self) -> Result<(String, u64), LakeError> {
        self.flush()?;
        self.writer.finish()
    }
}

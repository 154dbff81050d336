//! The vault side of ingest: every source's version of every person, the record keys
//! that make re-ingest idempotent, the clerical-review queue and the raw text of
//! quarantined records. All of it identifiable or linkable, so all of it lives in the
//! vault folder of a generation (owner-only) and never in the lake.
//!
//! Each batch rewrites these tables whole into the new generation (they are small next
//! to the lake's event tables), so a generation's vault is always exactly the state
//! after its last batch.

use std::collections::HashMap;
use std::path::Path;

use arrow::datatypes::DataType;

use crate::IngestError;
use crate::table::{Cell, Cols, Rows, read_parquet, schema, write_parquet};

/// One source's version of one person.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourcePerson {
    /// Feed name.
    pub source: String,
    /// The person's id in that feed.
    pub source_person: String,
    /// The lake pseudonym linkage gave them.
    pub person_id: i64,
    /// NHS number (validated).
    pub nhs_number: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Date of birth.
    pub birth_date: Option<i32>,
    /// `F`/`M`.
    pub sex: Option<String>,
    /// Postcode.
    pub postcode: Option<String>,
    /// Address line.
    pub address_line: Option<String>,
    /// Registered practice.
    pub practice_code: Option<String>,
    /// Ethnic category.
    pub ethnicity: Option<String>,
    /// Date of death.
    pub death_date: Option<i32>,
    /// Cause of death.
    pub death_cause: Option<String>,
    /// Earliest date this source saw the person (event or batch date).
    pub first_seen: Option<i32>,
    /// True for a person record of its own (GP patient, FHIR Patient, OMOP person).
    pub primary: bool,
    /// Content hash of the staged person.
    pub content_hash: String,
    /// The batch that last changed this row.
    pub batch_id: i64,
}

/// Where one accepted record landed: one (file id, row) per lake row it produced.
///
/// Compact on purpose: a whole area's feeds hold ~90 million records, so a record is a
/// 128-bit key, a 64-bit content hash and its rows (file ids index
/// [`VaultState::files`]), about 60 bytes in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Landed {
    /// First 64 bits of the content hash of the record as last accepted.
    pub content: u64,
    /// Lake rows: (file id, row index in that file).
    pub rows: Vec<(u32, u32)>,
    /// The batch that landed it.
    pub batch_id: i64,
}

/// The first 64 bits of a hex SHA-256.
pub fn content64(hex: &str) -> u64 {
    u64::from_str_radix(hex.get(..16).unwrap_or("0"), 16).unwrap_or(0)
}

/// The key of a record: the first 128 bits of SHA-256(source, kind, source id).
pub fn record_key(source: &str, kind: &str, id: &str) -> RecordKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0x1f]);
    h.update(kind.as_bytes());
    h.update([0x1f]);
    h.update(id.as_bytes());
    let d = h.finalize();
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

/// One pair queued for clerical review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPair {
    /// Batch that queued it.
    pub batch_id: i64,
    /// First record (source, local id).
    pub a: (String, String),
    /// Second record.
    pub b: (String, String),
    /// Match probability.
    pub probability: f64,
    /// Why (`uncertain`, `nhs_conflict`, `cluster_guard`, `merge`).
    pub kind: String,
}

/// One quarantined record's raw text (vault side of the lake's `quarantine`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawRejection {
    /// Batch.
    pub batch_id: i64,
    /// Feed.
    pub source: String,
    /// File name.
    pub file: String,
    /// Line.
    pub line: i64,
    /// Bundle entry.
    pub entry: Option<i64>,
    /// Reason code.
    pub reason_code: String,
    /// Unmasked message.
    pub message: String,
    /// The original text.
    pub raw: String,
}

/// Key of a landed record: see [`record_key`].
pub type RecordKey = u128;

/// The ingest state kept in the vault.
#[derive(Debug, Default)]
pub struct VaultState {
    /// Every source person, by (source, local id).
    pub persons: HashMap<(String, String), SourcePerson>,
    /// Every landed record.
    pub records: HashMap<RecordKey, Landed>,
    /// Lake part files records landed in: (table, file name), by file id.
    pub files: Vec<(String, String)>,
    file_ids: HashMap<(String, String), u32>,
    /// The review queue.
    pub review: Vec<ReviewPair>,
    /// Raw text of every quarantined record.
    pub quarantine_raw: Vec<RawRejection>,
}

const PERSON_SOURCE: &str = "person_source";
const RECORD_KEY: &str = "record_key";
const RECORD_FILE: &str = "record_file";
const REVIEW: &str = "review";
const QUARANTINE_RAW: &str = "quarantine_raw";

fn file(dir: &Path, table: &str) -> std::path::PathBuf {
    dir.join(table).join("part-00000.parquet")
}

fn person_schema() -> arrow::datatypes::SchemaRef {
    use DataType::*;
    schema(&[
        ("source", Utf8),
        ("source_person", Utf8),
        ("person_id", Int64),
        ("nhs_number", Utf8),
        ("given_name", Utf8),
        ("family_name", Utf8),
        ("birth_date", Date32),
        ("sex", Utf8),
        ("postcode", Utf8),
        ("address_line", Utf8),
        ("practice_code", Utf8),
        ("ethnicity", Utf8),
        ("death_date", Date32),
        ("death_cause", Utf8),
        ("first_seen", Date32),
        ("primary_record", Int32),
        ("content_hash", Utf8),
        ("batch_id", Int64),
    ])
}

fn key_schema() -> arrow::datatypes::SchemaRef {
    use DataType::*;
    schema(&[
        ("key_hi", Int64),
        ("key_lo", Int64),
        ("content", Int64),
        ("file_id", Int32),
        ("lake_row", Int64),
        ("batch_id", Int64),
    ])
}

fn file_schema() -> arrow::datatypes::SchemaRef {
    use DataType::*;
    schema(&[
        ("file_id", Int32),
        ("lake_table", Utf8),
        ("lake_file", Utf8),
    ])
}

fn review_schema() -> arrow::datatypes::SchemaRef {
    use DataType::*;
    schema(&[
        ("batch_id", Int64),
        ("source_a", Utf8),
        ("source_person_a", Utf8),
        ("source_b", Utf8),
        ("source_person_b", Utf8),
        ("probability", Float64),
        ("kind", Utf8),
    ])
}

fn raw_schema() -> arrow::datatypes::SchemaRef {
    use DataType::*;
    schema(&[
        ("batch_id", Int64),
        ("source", Utf8),
        ("file", Utf8),
        ("line", Int64),
        ("entry", Int64),
        ("reason_code", Utf8),
        ("message", Utf8),
        ("raw", Utf8),
    ])
}

fn d(v: Option<i32>) -> Cell {
    v.map_or(Cell::Null, Cell::D)
}

impl VaultState {
    /// The id of a lake part file (interned).
    pub fn file_id(&mut self, table: &str, file: &str) -> u32 {
        let k = (table.to_string(), file.to_string());
        if let Some(i) = self.file_ids.get(&k) {
            return *i;
        }
        let i = self.files.len() as u32;
        self.files.push(k.clone());
        self.file_ids.insert(k, i);
        i
    }

    /// Point a file id at a new file name (a part rewritten without some rows).
    pub fn rename_file(&mut self, id: u32, new_name: &str) {
        let old = self.files[id as usize].clone();
        self.file_ids.remove(&old);
        let k = (old.0, new_name.to_string());
        self.files[id as usize] = k.clone();
        self.file_ids.insert(k, id);
    }

    /// Load the state from a generation's vault folder (empty if it has none).
    pub fn load(vault: &Path) -> Result<VaultState, IngestError> {
        let mut st = VaultState::default();
        if let Some(b) = read_parquet(&file(vault, PERSON_SOURCE))? {
            let c = Cols(&b);
            for i in 0..b.num_rows() {
                let p = SourcePerson {
                    source: c.s("source", i).unwrap_or_default(),
                    source_person: c.s("source_person", i).unwrap_or_default(),
                    person_id: c.i("person_id", i).unwrap_or_default(),
                    nhs_number: c.s("nhs_number", i),
                    given_name: c.s("given_name", i),
                    family_name: c.s("family_name", i),
                    birth_date: c.d("birth_date", i),
                    sex: c.s("sex", i),
                    postcode: c.s("postcode", i),
                    address_line: c.s("address_line", i),
                    practice_code: c.s("practice_code", i),
                    ethnicity: c.s("ethnicity", i),
                    death_date: c.d("death_date", i),
                    death_cause: c.s("death_cause", i),
                    first_seen: c.d("first_seen", i),
                    primary: c.i32("primary_record", i) == Some(1),
                    content_hash: c.s("content_hash", i).unwrap_or_default(),
                    batch_id: c.i("batch_id", i).unwrap_or_default(),
                };
                st.persons
                    .insert((p.source.clone(), p.source_person.clone()), p);
            }
        }
        if let Some(b) = read_parquet(&file(vault, RECORD_FILE))? {
            let c = Cols(&b);
            for i in 0..b.num_rows() {
                st.file_id(
                    &c.s("lake_table", i).unwrap_or_default(),
                    &c.s("lake_file", i).unwrap_or_default(),
                );
            }
        }
        if let Some(b) = read_parquet(&file(vault, RECORD_KEY))? {
            use arrow::array::{Array, AsArray};
            use arrow::datatypes::{Int32Type, Int64Type};
            let col = |n: &str| b.column_by_name(n).expect("record_key column");
            let (hi, lo, content, fid, row, batch) = (
                col("key_hi").as_primitive::<Int64Type>(),
                col("key_lo").as_primitive::<Int64Type>(),
                col("content").as_primitive::<Int64Type>(),
                col("file_id").as_primitive::<Int32Type>(),
                col("lake_row").as_primitive::<Int64Type>(),
                col("batch_id").as_primitive::<Int64Type>(),
            );
            st.records.reserve(b.num_rows());
            for i in 0..b.num_rows() {
                let key = ((hi.value(i) as u64 as u128) << 64) | lo.value(i) as u64 as u128;
                let e = st.records.entry(key).or_default();
                e.content = content.value(i) as u64;
                e.batch_id = batch.value(i);
                if !fid.is_null(i) {
                    e.rows.push((fid.value(i) as u32, row.value(i) as u32));
                }
            }
        }
        if let Some(b) = read_parquet(&file(vault, REVIEW))? {
            let c = Cols(&b);
            for i in 0..b.num_rows() {
                st.review.push(ReviewPair {
                    batch_id: c.i("batch_id", i).unwrap_or_default(),
                    a: (
                        c.s("source_a", i).unwrap_or_default(),
                        c.s("source_person_a", i).unwrap_or_default(),
                    ),
                    b: (
                        c.s("source_b", i).unwrap_or_default(),
                        c.s("source_person_b", i).unwrap_or_default(),
                    ),
                    probability: c.f("probability", i).unwrap_or_default(),
                    kind: c.s("kind", i).unwrap_or_default(),
                });
            }
        }
        if let Some(b) = read_parquet(&file(vault, QUARANTINE_RAW))? {
            st.quarantine_raw = raw_rows(&b);
        }
        Ok(st)
    }

    /// Write the state into a (new) generation's vault folder.
    pub fn save(&self, vault: &Path) -> Result<(), IngestError> {
        let mut ps: Vec<&SourcePerson> = self.persons.values().collect();
        ps.sort_by(|a, b| (&a.source, &a.source_person).cmp(&(&b.source, &b.source_person)));
        let mut rows = Rows::new(person_schema());
        for p in ps {
            rows.push(vec![
                Cell::S(p.source.clone()),
                Cell::S(p.source_person.clone()),
                Cell::I(p.person_id),
                p.nhs_number.clone().into(),
                p.given_name.clone().into(),
                p.family_name.clone().into(),
                d(p.birth_date),
                p.sex.clone().into(),
                p.postcode.clone().into(),
                p.address_line.clone().into(),
                p.practice_code.clone().into(),
                p.ethnicity.clone().into(),
                d(p.death_date),
                p.death_cause.clone().into(),
                d(p.first_seen),
                Cell::I32(i32::from(p.primary)),
                Cell::S(p.content_hash.clone()),
                Cell::I(p.batch_id),
            ]);
        }
        write_parquet(&file(vault, PERSON_SOURCE), &rows.finish())?;

        {
            use arrow::array::{Int32Builder, Int64Builder};
            let mut keys: Vec<(&RecordKey, &Landed)> = self.records.iter().collect();
            keys.sort_unstable_by_key(|k| *k.0);
            let n: usize = keys.iter().map(|k| k.1.rows.len().max(1)).sum();
            let mut hi = Int64Builder::with_capacity(n);
            let mut lo = Int64Builder::with_capacity(n);
            let mut content = Int64Builder::with_capacity(n);
            let mut fid = Int32Builder::with_capacity(n);
            let mut row = Int64Builder::with_capacity(n);
            let mut batch = Int64Builder::with_capacity(n);
            for (k, l) in keys {
                let mut push = |f: Option<(u32, u32)>| {
                    hi.append_value((*k >> 64) as u64 as i64);
                    lo.append_value(*k as u64 as i64);
                    content.append_value(l.content as i64);
                    fid.append_option(f.map(|x| x.0 as i32));
                    row.append_option(f.map(|x| x.1 as i64));
                    batch.append_value(l.batch_id);
                };
                if l.rows.is_empty() {
                    push(None);
                }
                for r in &l.rows {
                    push(Some(*r));
                }
            }
            let b = arrow::array::RecordBatch::try_new(
                key_schema(),
                vec![
                    std::sync::Arc::new(hi.finish()),
                    std::sync::Arc::new(lo.finish()),
                    std::sync::Arc::new(content.finish()),
                    std::sync::Arc::new(fid.finish()),
                    std::sync::Arc::new(row.finish()),
                    std::sync::Arc::new(batch.finish()),
                ],
            )
            .expect("record_key schema");
            write_parquet(&file(vault, RECORD_KEY), &b)?;
            let mut rows = Rows::new(file_schema());
            for (i, (t, f)) in self.files.iter().enumerate() {
                rows.push(vec![
                    Cell::I32(i as i32),
                    Cell::S(t.clone()),
                    Cell::S(f.clone()),
                ]);
            }
            write_parquet(&file(vault, RECORD_FILE), &rows.finish())?;
        }

        let mut rows = Rows::new(review_schema());
        for r in &self.review {
            rows.push(vec![
                Cell::I(r.batch_id),
                Cell::S(r.a.0.clone()),
                Cell::S(r.a.1.clone()),
                Cell::S(r.b.0.clone()),
                Cell::S(r.b.1.clone()),
                Cell::F(r.probability),
                Cell::S(r.kind.clone()),
            ]);
        }
        write_parquet(&file(vault, REVIEW), &rows.finish())?;

        let mut rows = Rows::new(raw_schema());
        for r in &self.quarantine_raw {
            rows.push(vec![
                Cell::I(r.batch_id),
                Cell::S(r.source.clone()),
                Cell::S(r.file.clone()),
                Cell::I(r.line),
                r.entry.map_or(Cell::Null, Cell::I),
                Cell::S(r.reason_code.clone()),
                Cell::S(r.message.clone()),
                Cell::S(r.raw.clone()),
            ]);
        }
        write_parquet(&file(vault, QUARANTINE_RAW), &rows.finish())?;
        Ok(())
    }
}

/// Read the raw quarantine rows of a vault (for `trent quarantine --raw`).
pub fn read_quarantine_raw(vault: &Path) -> Result<Vec<RawRejection>, IngestError> {
    Ok(read_parquet(&file(vault, QUARANTINE_RAW))?
        .map(|b| raw_rows(&b))
        .unwrap_or_default())
}

fn raw_rows(b: &arrow::array::RecordBatch) -> Vec<RawRejection> {
    let c = Cols(b);
    (0..b.num_rows())
        .map(|i| RawRejection {
            batch_id: c.i("batch_id", i).unwrap_or_default(),
            source: c.s("source", i).unwrap_or_default(),
            file: c.s("file", i).unwrap_or_default(),
            line: c.i("line", i).unwrap_or_default(),
            entry: c.i("entry", i),
            reason_code: c.s("reason_code", i).unwrap_or_default(),
            message: c.s("message", i).unwrap_or_default(),
            raw: c.s("raw", i).unwrap_or_default(),
        })
        .collect()
}

/// Read the review queue of a vault.
pub fn read_review(vault: &Path) -> Result<Vec<ReviewPair>, IngestError> {
    Ok(VaultState::load(vault)?.review)
}

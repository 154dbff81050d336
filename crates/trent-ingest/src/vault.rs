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

/// Where one accepted record landed: (table, file, row) per lake row it produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Landed {
    /// Content hash of the record as last accepted.
    pub content_hash: String,
    /// Lake rows: (table, part file name, row index in that file).
    pub rows: Vec<(String, String, i64)>,
    /// The batch that landed it.
    pub batch_id: i64,
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

/// Key of a landed record: (source, kind, source id).
pub type RecordKey = (String, String, String);

/// The ingest state kept in the vault.
#[derive(Debug, Default)]
pub struct VaultState {
    /// Every source person, by (source, local id).
    pub persons: HashMap<(String, String), SourcePerson>,
    /// Every landed record.
    pub records: HashMap<RecordKey, Landed>,
    /// The review queue.
    pub review: Vec<ReviewPair>,
    /// Raw text of every quarantined record.
    pub quarantine_raw: Vec<RawRejection>,
}

const PERSON_SOURCE: &str = "person_source";
const RECORD_KEY: &str = "record_key";
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
        ("source", Utf8),
        ("kind", Utf8),
        ("source_id", Utf8),
        ("content_hash", Utf8),
        ("lake_table", Utf8),
        ("lake_file", Utf8),
        ("lake_row", Int64),
        ("batch_id", Int64),
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
        if let Some(b) = read_parquet(&file(vault, RECORD_KEY))? {
            let c = Cols(&b);
            for i in 0..b.num_rows() {
                let key = (
                    c.s("source", i).unwrap_or_default(),
                    c.s("kind", i).unwrap_or_default(),
                    c.s("source_id", i).unwrap_or_default(),
                );
                let e = st.records.entry(key).or_default();
                e.content_hash = c.s("content_hash", i).unwrap_or_default();
                e.batch_id = c.i("batch_id", i).unwrap_or_default();
                if let (Some(t), Some(f), Some(r)) = (
                    c.s("lake_table", i),
                    c.s("lake_file", i),
                    c.i("lake_row", i),
                ) {
                    e.rows.push((t, f, r));
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

        let mut keys: Vec<(&RecordKey, &Landed)> = self.records.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let mut rows = Rows::new(key_schema());
        for ((s, k, id), l) in keys {
            let base = |t: Cell, f: Cell, r: Cell| {
                vec![
                    Cell::S(s.clone()),
                    Cell::S(k.clone()),
                    Cell::S(id.clone()),
                    Cell::S(l.content_hash.clone()),
                    t,
                    f,
                    r,
                    Cell::I(l.batch_id),
                ]
            };
            if l.rows.is_empty() {
                rows.push(base(Cell::Null, Cell::Null, Cell::Null));
            }
            for (t, f, r) in &l.rows {
                rows.push(base(Cell::S(t.clone()), Cell::S(f.clone()), Cell::I(*r)));
            }
        }
        write_parquet(&file(vault, RECORD_KEY), &rows.finish())?;

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

//! The vault side of ingest: every source's version of every person, the record keys
//! that make re-ingest idempotent, the clerical-review queue and the raw text of
//! quarantined records. All of it identifiable or linkable, so all of it lives in the
//! vault folder of a generation (owner-only) and never in the lake.
//!
//! Each batch rewrites these tables whole into the new generation (they are small next
//! to the lake's event tables), so a generation's vault is always exactly the state
//! after its last batch.

use std::collections::{HashMap, HashSet};
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
    /// The landed records this batch touches: the ones its records' keys found in the
    /// index ([`VaultState::load_keys`]) plus the ones it lands. The index itself stays
    /// on disk, sorted by key, and is merged when the vault is saved, so memory is bounded
    /// by the batch, not by the lake.
    pub records: HashMap<RecordKey, Landed>,
    /// Keys deleted by this batch (dropped from the index when it is merged).
    pub removed: HashSet<RecordKey>,
    /// Part files rewritten without some rows: file id → new row index of each old row.
    pub remaps: HashMap<u32, Vec<i64>>,
    /// The previous generation's index file, if any.
    pub index: Option<std::path::PathBuf>,
    /// Lake part files records landed in: (table, file name), by file id.
    pub files: Vec<(String, String)>,
    file_ids: HashMap<(String, String), u32>,
    /// The review queue.
    pub review: Vec<ReviewPair>,
    /// Raw text of this batch's quarantined records. Earlier batches' stay on disk, one
    /// part file per batch (`quarantine_raw/bNNNNNN.parquet`), so a batch's memory does
    /// not grow with everything quarantined before it (17M rows after 8 whole-area
    /// batches); [`read_quarantine_raw`] reads them all.
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

    /// Load from the index the entries of `wanted` keys (sorted, deduplicated) into
    /// [`VaultState::records`], streaming the index.
    pub fn load_keys(&mut self, wanted: &[RecordKey]) -> Result<(), IngestError> {
        let Some(path) = self.index.clone() else {
            return Ok(());
        };
        let mut w = 0usize;
        for_each_key_batch(&path, |rows| {
            for (k, l) in rows {
                while w < wanted.len() && wanted[w] < k {
                    w += 1;
                }
                if w < wanted.len() && wanted[w] == k {
                    self.records.insert(k, l);
                }
            }
        })
    }

    fn merge_keys(&self, vault: &Path) -> Result<(), IngestError> {
        use arrow::array::{Int32Builder, Int64Builder};
        let out = file(vault, RECORD_KEY);
        let tmp = out.with_extension("parquet.tmp");
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        }
        let f = std::fs::File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        let perr = |e: parquet::errors::ParquetError| IngestError::Parquet {
            path: tmp.clone(),
            message: e.to_string(),
        };
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(
                parquet::basic::ZstdLevel::try_new(1).expect("level"),
            ))
            .build();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(f, key_schema(), Some(props)).map_err(perr)?;
        struct Out {
            hi: Int64Builder,
            lo: Int64Builder,
            content: Int64Builder,
            fid: Int32Builder,
            row: Int64Builder,
            batch: Int64Builder,
            n: usize,
        }
        let new_out = || Out {
            hi: Int64Builder::new(),
            lo: Int64Builder::new(),
            content: Int64Builder::new(),
            fid: Int32Builder::new(),
            row: Int64Builder::new(),
            batch: Int64Builder::new(),
            n: 0,
        };
        let mut o = new_out();
        let mut result: Result<(), IngestError> = Ok(());
        let flush = |o: &mut Out,
                     writer: &mut parquet::arrow::ArrowWriter<std::fs::File>,
                     result: &mut Result<(), IngestError>| {
            if o.n == 0 {
                return;
            }
            let b = arrow::array::RecordBatch::try_new(
                key_schema(),
                vec![
                    std::sync::Arc::new(o.hi.finish()),
                    std::sync::Arc::new(o.lo.finish()),
                    std::sync::Arc::new(o.content.finish()),
                    std::sync::Arc::new(o.fid.finish()),
                    std::sync::Arc::new(o.row.finish()),
                    std::sync::Arc::new(o.batch.finish()),
                ],
            )
            .expect("record_key schema");
            if let Err(e) = writer.write(&b)
                && result.is_ok()
            {
                *result = Err(perr(e));
            }
            o.n = 0;
        };
        let push = |o: &mut Out, k: RecordKey, l: &Landed, remaps: &HashMap<u32, Vec<i64>>| {
            let mut one = |f: Option<(u32, u32)>| {
                o.hi.append_value((k >> 64) as u64 as i64);
                o.lo.append_value(k as u64 as i64);
                o.content.append_value(l.content as i64);
                o.fid.append_option(f.map(|x| x.0 as i32));
                o.row.append_option(f.map(|x| match remaps.get(&x.0) {
                    Some(m) => m[x.1 as usize],
                    None => x.1 as i64,
                }));
                o.batch.append_value(l.batch_id);
                o.n += 1;
            };
            if l.rows.is_empty() {
                one(None);
            }
            for r in &l.rows {
                one(Some(*r));
            }
        };
        // this batch's entries, sorted; merged with the old index in key order
        let mut mine: Vec<(&RecordKey, &Landed)> = self.records.iter().collect();
        mine.sort_unstable_by_key(|k| *k.0);
        let mut m = 0usize;
        const CHUNK: usize = 1 << 20;
        if let Some(path) = &self.index {
            for_each_key_batch(path, |rows| {
                for (k, l) in rows {
                    while m < mine.len() && *mine[m].0 < k {
                        push(&mut o, *mine[m].0, mine[m].1, &self.remaps);
                        m += 1;
                    }
                    // an entry this batch touched was written from `mine`; a deleted one
                    // is dropped
                    if self.records.contains_key(&k) || self.removed.contains(&k) {
                        continue;
                    }
                    push(&mut o, k, &l, &self.remaps);
                    if o.n >= CHUNK {
                        flush(&mut o, &mut writer, &mut result);
                    }
                }
            })?;
        }
        while m < mine.len() {
            push(&mut o, *mine[m].0, mine[m].1, &self.remaps);
            m += 1;
            if o.n >= CHUNK {
                flush(&mut o, &mut writer, &mut result);
            }
        }
        flush(&mut o, &mut writer, &mut result);
        result?;
        let f = writer.into_inner().map_err(perr)?;
        f.sync_all().map_err(|e| IngestError::io(&tmp, e))?;
        let _ = std::fs::remove_file(&out);
        std::fs::rename(&tmp, &out).map_err(|e| IngestError::io(&out, e))?;
        Ok(())
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
        let idx = file(vault, RECORD_KEY);
        st.index = idx.exists().then_some(idx);
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
        Ok(st)
    }

    /// Write the state into a (new) generation's vault folder. The record-key index is
    /// merged from the previous generation's (see [`VaultState::load_keys`]).
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
            self.merge_keys(vault)?;
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

        if self.quarantine_raw.is_empty() {
            return Ok(());
        }
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
        let batch = self.quarantine_raw[0].batch_id;
        write_parquet(
            &vault
                .join(QUARANTINE_RAW)
                .join(format!("b{batch:06}.parquet")),
            &rows.finish(),
        )?;
        Ok(())
    }
}

/// Read the raw quarantine rows of a vault (for `trent quarantine --raw`).
///
/// Every batch's part file, in batch order (`part-00000.parquet` is the single file
/// vaults written before per-batch parts had; it sorts first and holds earlier batches).
pub fn read_quarantine_raw(vault: &Path) -> Result<Vec<RawRejection>, IngestError> {
    let dir = vault.join(QUARANTINE_RAW);
    let mut parts: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IngestError::io(&dir, e)),
    };
    parts.sort_by_key(|p| (!p.ends_with("part-00000.parquet"), p.clone()));
    let mut out = Vec::new();
    for p in parts {
        if let Some(b) = read_parquet(&p)? {
            out.extend(raw_rows(&b));
        }
    }
    Ok(out)
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

/// Stream the record-key index in key order, a million rows at a time, handing over
/// each batch's entries grouped by key (a key's rows are adjacent; a group cut by a batch
/// boundary is carried over).
fn for_each_key_batch(
    path: &Path,
    mut f: impl FnMut(Vec<(RecordKey, Landed)>),
) -> Result<(), IngestError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let perr = |m: String| IngestError::Parquet {
        path: path.to_path_buf(),
        message: m,
    };
    let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| perr(e.to_string()))?
        .with_batch_size(1 << 20)
        .build()
        .map_err(|e| perr(e.to_string()))?;
    let mut carry: Option<(RecordKey, Landed)> = None;
    for b in reader {
        let b = b.map_err(|e| perr(e.to_string()))?;
        let col = |n: &str| b.column_by_name(n).expect("record_key column");
        let (hi, lo, content, fid, row, batch) = (
            col("key_hi").as_primitive::<Int64Type>(),
            col("key_lo").as_primitive::<Int64Type>(),
            col("content").as_primitive::<Int64Type>(),
            col("file_id").as_primitive::<Int32Type>(),
            col("lake_row").as_primitive::<Int64Type>(),
            col("batch_id").as_primitive::<Int64Type>(),
        );
        let mut out = Vec::with_capacity(b.num_rows());
        for i in 0..b.num_rows() {
            let key = ((hi.value(i) as u64 as u128) << 64) | lo.value(i) as u64 as u128;
            match &mut carry {
                Some((k, _)) if *k == key => {}
                _ => {
                    if let Some(done) = carry.take() {
                        out.push(done);
                    }
                    carry = Some((
                        key,
                        Landed {
                            content: content.value(i) as u64,
                            rows: Vec::new(),
                            batch_id: batch.value(i),
                        },
                    ));
                }
            }
            if !fid.is_null(i) {
                let (_, l) = carry.as_mut().expect("set above");
                l.rows.push((fid.value(i) as u32, row.value(i) as u32));
            }
        }
        f(out);
    }
    if let Some(done) = carry {
        f(vec![done]);
    }
    Ok(())
}

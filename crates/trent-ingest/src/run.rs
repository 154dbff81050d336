//! One ingest batch, from files to a published generation.
//!
//! 1. **Read** every input through `trent-feeds` (validation, batch-level duplicate and
//!    conflict checks, counting). Files whose SHA-256 an earlier batch already ingested
//!    are skipped whole (idempotence at file level).
//! 2. **Link** the batch's new source persons to the vault's: `trent-link` runs over every
//!    source person the vault knows plus the new ones (deterministic on a valid NHS
//!    number, Fellegi–Sunter otherwise); a new record that clusters with known records
//!    takes their `person_id`, a cluster of new records only gets a new pseudonym.
//!    Known persons are never re-linked automatically: a cluster that would merge two
//!    known persons goes to the review queue (`merge`).
//! 3. **Reconcile** each record against the vault's record keys (source, kind, source
//!    id): same content → unchanged (nothing written); new content → the old lake rows
//!    are removed and the new ones written (an update); a FHIR `DELETE` removes them.
//! 4. **Land** a new generation: the previous generation's files are hard-linked, part
//!    files that lost rows are rewritten, the batch's rows are new part files
//!    (`b000007.parquet` in each table), the lake's ingested `person` rows and the vault
//!    are rewritten, and the catalog gains the batch record. Publishing is one atomic
//!    rename (`trent-lake`): a batch killed at any point leaves the previous generation
//!    current, and the next writer sweeps the leftovers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use serde::Serialize;
use sha2::{Digest, Sha256};
use trent_feeds::stage::*;
use trent_feeds::{
    Counts, Feed, Origin, Position, ReadOptions, Reason, Rejection, Sink, Staged, Tally,
};
use trent_lake::{Catalog, Lake, LakeWriter, TableInfo};
use trent_model::schema::{self, TableDef};
use trent_places::Area;

use crate::IngestError;
use crate::mask::mask;
use crate::pseudo::Key;
use crate::table::{Cell, Rows, read_parquet, write_parquet};
use crate::vault::{
    Landed, RawRejection, ReviewPair, SourcePerson, VaultState, content64, record_key,
};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FHIR R4 bundle (JSON) or Bulk Data NDJSON.
    Fhir,
    /// A flat extract of one feed.
    Csv(Feed),
    /// An OMOP CDM folder.
    Omop,
}

/// One input: a file (or OMOP folder) and the source name it is ingested under.
#[derive(Debug, Clone)]
pub struct Input {
    /// Format.
    pub format: Format,
    /// Path.
    pub path: PathBuf,
    /// Source (feed) name: local ids are unique within it.
    pub source: String,
}

/// Settings of a batch.
#[derive(Debug, Clone)]
pub struct Options {
    /// The area (places LSOAs, costs activity without a cost, writes `organisation`).
    pub area: Area,
    /// The batch date ("today"): nothing may be dated after it.
    pub today: i32,
    /// NSPL-shaped postcode → LSOA lookup (`pcds,lsoa11cd`); without it nobody is placed.
    pub postcodes: Option<PathBuf>,
    /// Stop with an error at this stage (`read`, `link`, `lake`, `vault`, `commit`):
    /// how tests prove a failed batch leaves nothing behind.
    pub fail_at: Option<String>,
    /// Linkage threads.
    pub threads: usize,
}

/// One file of a batch.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileRecord {
    /// Path as given.
    pub path: String,
    /// SHA-256 of the bytes (for a folder: of its files' names and hashes).
    pub sha256: String,
    /// `fhir`, `csv:<feed>`, `omop`.
    pub format: String,
    /// Source name.
    pub source: String,
    /// `ingested`, or `skipped` when an earlier batch already ingested the same bytes.
    pub status: String,
}

/// Received / accepted / quarantined for one (source, kind).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountRow {
    /// Source.
    pub source: String,
    /// Record kind (`person`, `activity`, … as `trent-feeds` counts them).
    pub kind: String,
    /// Entries read.
    pub received: u64,
    /// Entries accepted.
    pub accepted: u64,
    /// Entries quarantined.
    pub quarantined: u64,
}

/// What a batch did (also the catalog's batch record).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Report {
    /// Batch number (1, 2, …).
    pub batch_id: i64,
    /// Batch date.
    pub today: String,
    /// Seconds since 1970 when it started and finished.
    pub started: u64,
    /// See `started`.
    pub finished: u64,
    /// Files.
    pub files: Vec<FileRecord>,
    /// Per (source, kind).
    pub counts: Vec<CountRow>,
    /// Accepted records new to the lake.
    pub records_new: u64,
    /// Accepted records that replaced an earlier version.
    pub records_updated: u64,
    /// Accepted records identical to what the lake holds.
    pub records_unchanged: u64,
    /// Records deleted.
    pub records_deleted: u64,
    /// Source persons seen for the first time.
    pub source_persons_new: u64,
    /// … of which linked to a person the vault already knew.
    pub linked_to_known: u64,
    /// … of which linked to another new record only, or alone: new people.
    pub persons_new: u64,
    /// Pairs queued for clerical review.
    pub review_pairs: u64,
    /// People in the lake's `person` table from ingest (placed with a full set).
    pub persons_in_lake: u64,
    /// People without sex, birth date, placeable postcode or practice: vault only.
    pub persons_incomplete: u64,
    /// Lake rows written.
    pub rows_written: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Seconds per stage: read, link, reconcile, write, publish.
    pub stages: Vec<(String, f64)>,
    /// Whether a new generation was published (false when every file was skipped).
    pub published: bool,
}

impl Report {
    /// Totals over every (source, kind).
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for c in &self.counts {
            t.received += c.received;
            t.accepted += c.accepted;
            t.rejected += c.quarantined;
        }
        t
    }

    /// Plain-text summary.
    pub fn render(&self) -> String {
        let mut s = format!(
            "batch {} ({}): {} file(s), {} skipped as already ingested\n",
            self.batch_id,
            self.today,
            self.files.len(),
            self.files.iter().filter(|f| f.status == "skipped").count()
        );
        s.push_str("source\tkind\treceived\taccepted\tquarantined\n");
        for c in &self.counts {
            s.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                c.source, c.kind, c.received, c.accepted, c.quarantined
            ));
        }
        let t = self.total();
        s.push_str(&format!(
            "total\t\t{}\t{}\t{}\n",
            t.received, t.accepted, t.rejected
        ));
        s.push_str(&format!(
            "records: {} new, {} updated, {} unchanged, {} deleted; {} lake rows written\n\
             people: {} new source identities ({} linked to known people, {} new people), {} pairs for review; \
             {} people in the lake from ingest, {} held in the vault only (incomplete)\n\
             {:.2} s ({}){}\n",
            self.records_new,
            self.records_updated,
            self.records_unchanged,
            self.records_deleted,
            self.rows_written,
            self.source_persons_new,
            self.linked_to_known,
            self.persons_new,
            self.review_pairs,
            self.persons_in_lake,
            self.persons_incomplete,
            self.seconds,
            self.stages
                .iter()
                .map(|(n, s)| format!("{n} {s:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if self.published {
                ""
            } else {
                " (nothing new: no generation published)"
            }
        ));
        s
    }
}

/// An accepted record and where it came from.
struct Got {
    rec: Staged,
    file: Arc<str>,
    line: u64,
    entry: Option<usize>,
}

/// One file's read: accepted records (no raw text: it is read back for the few that
/// are quarantined later) and rejections.
#[derive(Default)]
struct Stage {
    got: Vec<Got>,
    rejected: Vec<Rejection>,
    file: Arc<str>,
}

struct FileOut {
    tallies: BTreeMap<(String, String), Tally>,
    got: Vec<Got>,
    rejected: Vec<Rejection>,
}

fn read_one(inp: &Input, ropts: &ReadOptions) -> Result<FileOut, IngestError> {
    // duplicates within and across files are checked in `ingest`, in input order, on
    // compact keys (the readers' own `Batch` check would hold every key as strings)
    let mut sink = Counts::new(Stage {
        file: Arc::from(""),
        ..Stage::default()
    });
    let r = match inp.format {
        Format::Fhir => trent_feeds::read_fhir_file(&inp.path, &inp.source, ropts, &mut sink),
        Format::Csv(f) => trent_feeds::read_csv_feed(f, &inp.path, &inp.source, ropts, &mut sink),
        Format::Omop => trent_feeds::read_omop_dir(&inp.path, &inp.source, ropts, &mut sink),
    };
    r.map_err(|e| IngestError::Input {
        path: inp.path.clone(),
        message: e.to_string(),
    })?;
    Ok(FileOut {
        tallies: sink.tallies,
        got: sink.inner.got,
        rejected: sink.inner.rejected,
    })
}

/// Read every input on `threads` workers; results in input order.
fn read_parallel(
    todo: &[&Input],
    ropts: &ReadOptions,
    threads: usize,
) -> Result<Vec<FileOut>, IngestError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileOut, IngestError>>>> =
        Mutex::new((0..todo.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.min(todo.len()).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= todo.len() {
                        break;
                    }
                    let r = read_one(todo[i], ropts);
                    results.lock().expect("lock")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every file read"))
        .collect()
}

/// Read back the raw text of rejections made after reading (cross-file duplicates,
/// records whose person is unknown): the line of a CSV or NDJSON file, the bundle entry
/// of a FHIR file.
fn fill_raw(
    rejected: &mut [Rejection],
    which: &[usize],
    inputs: &[Input],
) -> Result<(), IngestError> {
    let mut by_file: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in which {
        by_file.entry(rejected[i].file.clone()).or_default().push(i);
    }
    for (file, idx) in by_file {
        let path = Path::new(&file);
        let fhir = inputs
            .iter()
            .any(|i| i.format == Format::Fhir && i.path == path);
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        let lines: Vec<&str> = text.lines().collect();
        let whole: Option<serde_json::Value> = if fhir && !lines.is_empty() && !is_ndjson(path) {
            serde_json::from_str(&text).ok()
        } else {
            None
        };
        for i in idx {
            let pos = rejected[i].position.clone();
            let line = lines
                .get((pos.line as usize).saturating_sub(1))
                .copied()
                .unwrap_or("");
            rejected[i].raw = match (fhir, pos.entry) {
                (true, Some(e)) => {
                    let v = match &whole {
                        Some(v) => Some(v.clone()),
                        None => serde_json::from_str::<serde_json::Value>(line).ok(),
                    };
                    v.and_then(|v| v.get("entry").and_then(|x| x.get(e)).map(|x| x.to_string()))
                        .unwrap_or_else(|| line.to_string())
                }
                _ => line.to_string(),
            };
        }
    }
    Ok(())
}

fn is_ndjson(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl")
    )
}

fn person_of(r: &Staged) -> Option<(&str, &str)> {
    let src = r.key().0;
    let p = match r {
        Staged::Person(p) => &p.source_id,
        Staged::Activity(x) => &x.source_person,
        Staged::Condition(x) => &x.source_person,
        Staged::Observation(x) => &x.source_person,
        Staged::Medication(x) => &x.source_person,
        Staged::Procedure(x) => &x.source_person,
        Staged::Referral(x) => &x.source_person,
        Staged::SocialCare(x) => &x.source_person,
        Staged::Allergy(x) => &x.source_person,
        Staged::Deleted(_) => return None,
    };
    Some((src, p.as_str()))
}

impl Sink for Stage {
    fn record(&mut self, rec: Staged, origin: &Origin<'_>) {
        if self.file.as_ref() != origin.file {
            self.file = Arc::from(origin.file);
        }
        self.got.push(Got {
            rec,
            file: self.file.clone(),
            line: origin.line,
            entry: origin.entry,
        });
    }
    fn reject(&mut self, r: Rejection) {
        self.rejected.push(r);
    }
}

fn sha256_file(path: &Path) -> Result<String, IngestError> {
    let mut f = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| IngestError::io(path, e))?;
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_input(path: &Path) -> Result<String, IngestError> {
    if path.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| IngestError::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut h = Sha256::new();
        for n in names {
            h.update(
                n.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .as_bytes(),
            );
            h.update([0]);
            h.update(sha256_file(&n)?.as_bytes());
            h.update([0]);
        }
        Ok(hex(&h.finalize()))
    } else {
        sha256_file(path)
    }
}

/// Exclusive lock on a data directory for the length of a batch.
struct Lock(PathBuf);

impl Lock {
    fn take(data: &Path) -> Result<Lock, IngestError> {
        let marker = data.join(trent_lake::MARKER);
        if data.exists() && !marker.exists() {
            let empty = std::fs::read_dir(data)
                .map_err(|e| IngestError::io(data, e))?
                .next()
                .is_none();
            if !empty {
                return Err(trent_lake::LakeError::NotTrentDir {
                    path: data.to_path_buf(),
                }
                .into());
            }
        }
        std::fs::create_dir_all(data).map_err(|e| IngestError::io(data, e))?;
        if !marker.exists() {
            std::fs::write(&marker, "trent data directory, format 1\n")
                .map_err(|e| IngestError::io(&marker, e))?;
        }
        let p = data.join(".ingest.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Lock(p));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&p).unwrap_or_default();
                    let alive = pid
                        .trim()
                        .parse::<u32>()
                        .map(|n| Path::new(&format!("/proc/{n}")).exists())
                        .unwrap_or(false);
                    if alive {
                        return Err(IngestError::Busy {
                            path: p,
                            pid: pid.trim().to_string(),
                        });
                    }
                    // a killed batch's lock: nothing it wrote was published
                    let _ = std::fs::remove_file(&p);
                }
                Err(e) => return Err(IngestError::io(&p, e)),
            }
        }
        Err(IngestError::Busy {
            path: p,
            pid: "?".into(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fail(opts: &Options, stage: &str) -> Result<(), IngestError> {
    let env = std::env::var("TRENT_INGEST_FAILPOINT").ok();
    if opts.fail_at.as_deref() == Some(stage) || env.as_deref() == Some(stage) {
        return Err(IngestError::Failpoint(stage.to_string()));
    }
    Ok(())
}

/// Read an NSPL-shaped postcode lookup: a header naming a postcode column (`pcds`,
/// `pcd`, `postcode`) and an LSOA column (`lsoa11cd`, `lsoa21cd`, `lsoa11`, `lsoa21`,
/// `lsoa`).
pub fn read_postcodes(path: &Path) -> Result<HashMap<String, String>, IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let (Some(pc), Some(ls)) = (
        find(&["pcds", "pcd", "postcode"]),
        find(&["lsoa11cd", "lsoa21cd", "lsoa11", "lsoa21", "lsoa"]),
    ) else {
        return Err(IngestError::Input {
            path: path.to_path_buf(),
            message: format!(
                "line 1: a postcode lookup needs a postcode column (pcds) and an LSOA column (lsoa11cd); found {header:?}"
            ),
        });
    };
    let mut out = HashMap::new();
    for (i, l) in lines.enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(|s| s.trim().trim_matches('"')).collect();
        let (Some(p), Some(s)) = (f.get(pc), f.get(ls)) else {
            return Err(IngestError::Input {
                path: path.to_path_buf(),
                message: format!("line {}: fewer fields than the header", i + 2),
            });
        };
        out.insert(norm_postcode(p), s.to_string());
    }
    Ok(out)
}

fn norm_postcode(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Ingest `inputs` into the data directory `data` as one batch.
pub fn ingest(data: &Path, inputs: &[Input], opts: &Options) -> Result<Report, IngestError> {
    let t0 = Instant::now();
    let started = now();
    let _lock = Lock::take(data)?;
    let prev = if Lake::exists(data) {
        Some(Lake::open(data)?)
    } else {
        None
    };
    if let Some(p) = &prev
        && p.catalog.area != opts.area.area.id
    {
        return Err(IngestError::Input {
            path: data.to_path_buf(),
            message: format!(
                "the lake is of area {:?}, the batch was given area {:?}",
                p.catalog.area, opts.area.area.id
            ),
        });
    }
    let prev_vault = prev.as_ref().map(|p| p.generation.join("vault"));
    let (key, _) = Key::load_or_create(prev_vault.as_deref())?;
    let mut vault = match &prev_vault {
        Some(v) => VaultState::load(v)?,
        None => VaultState::default(),
    };
    let prev_batches: Vec<serde_json::Value> = prev
        .as_ref()
        .map(|p| p.catalog.batches.clone())
        .unwrap_or_default();
    let batch_id = prev_batches
        .iter()
        .filter_map(|b| b.get("batch_id").and_then(|v| v.as_i64()))
        .max()
        .unwrap_or(0)
        + 1;
    let seen_files: HashSet<String> = prev_batches
        .iter()
        .filter_map(|b| b.get("files").and_then(|f| f.as_array()))
        .flatten()
        .filter(|f| f.get("status").and_then(|s| s.as_str()) == Some("ingested"))
        .filter_map(|f| f.get("sha256").and_then(|s| s.as_str()).map(str::to_string))
        .collect();
    let postcodes = match &opts.postcodes {
        Some(p) => read_postcodes(p)?,
        None => HashMap::new(),
    };

    // 1. read
    let ropts = ReadOptions::new(opts.today);
    let mut report = Report {
        batch_id,
        today: trent_model::time::iso(opts.today),
        started,
        ..Report::default()
    };
    // which files to read
    let mut todo: Vec<&Input> = Vec::new();
    for inp in inputs {
        if !inp.path.exists() {
            return Err(IngestError::Input {
                path: inp.path.clone(),
                message: "no such file or folder".into(),
            });
        }
        let sha = sha256_input(&inp.path)?;
        let format = match inp.format {
            Format::Fhir => "fhir".to_string(),
            Format::Csv(f) => format!("csv:{}", f.name()),
            Format::Omop => "omop".to_string(),
        };
        let skip = seen_files.contains(&sha);
        report.files.push(FileRecord {
            path: inp.path.display().to_string(),
            sha256: sha,
            format,
            source: inp.source.clone(),
            status: if skip { "skipped" } else { "ingested" }.into(),
        });
        if !skip {
            todo.push(inp);
        }
    }
    // read files in parallel, each through its own checks; then merge in input order
    let outs = read_parallel(&todo, &ropts, opts.threads.max(1))?;
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    // records stay in their files' vectors, filtered in place (one copy in memory)
    let mut got: Vec<Vec<Got>> = Vec::new();
    let mut rejected: Vec<Rejection> = Vec::new();
    let mut seen: HashMap<u128, u64> = HashMap::new();
    let mut need_raw: Vec<usize> = Vec::new(); // indices into `rejected`
    for out in outs {
        for (k, t) in out.tallies {
            let e = tallies.entry(k).or_default();
            e.received += t.received;
            e.accepted += t.accepted;
            e.rejected += t.rejected;
        }
        rejected.extend(out.rejected);
        let mut file_got = out.got;
        file_got.retain(|g| {
            if let Staged::Deleted(_) = g.rec {
                return true;
            }
            let kind = g.rec.kind();
            let (src, id, hash) = g.rec.key();
            let key = record_key(src, kind, id);
            let content = content64(hash);
            let derived = matches!(&g.rec, Staged::Person(p) if p.derived);
            match seen.get(&key) {
                // a person implied by event rows repeats by nature: counted, kept once
                Some(prev) if *prev == content && derived => false,
                Some(prev) => {
                    // the same record earlier in this batch
                    let same = *prev == content;
                    let (reason, message) = if same {
                        (
                            Reason::DuplicateInBatch,
                            format!(
                                "{kind} {id:?} of source {src:?} was already received in this batch with the same content"
                            ),
                        )
                    } else {
                        (
                            Reason::ConflictingRecord,
                            format!(
                                "{kind} {id:?} of source {src:?} was already received in this batch with different content"
                            ),
                        )
                    };
                    let t = tallies
                        .entry((src.to_string(), kind.to_string()))
                        .or_default();
                    t.accepted -= 1;
                    t.rejected += 1;
                    need_raw.push(rejected.len());
                    rejected.push(Rejection {
                        source: src.to_string(),
                        file: g.file.to_string(),
                        position: Position {
                            line: g.line,
                            entry: g.entry,
                            pointer: None,
                        },
                        resource_type: Some(kind.to_string()),
                        reason,
                        message,
                        raw: String::new(),
                    });
                    false
                }
                None => {
                    seen.insert(key, content);
                    true
                }
            }
        });
        file_got.shrink_to_fit();
        got.push(file_got);
    }
    drop(seen);
    fail(opts, "read")?;
    let mut lap = Instant::now();
    let mut stage_done = |name: &str, report: &mut Report| {
        report
            .stages
            .push((name.to_string(), lap.elapsed().as_secs_f64()));
        lap = Instant::now();
    };
    report
        .stages
        .push(("read".into(), t0.elapsed().as_secs_f64()));
    if got.iter().all(Vec::is_empty) && rejected.is_empty() {
        report.seconds = t0.elapsed().as_secs_f64();
        report.finished = now();
        return Ok(report);
    }

    // 2. persons and linkage
    let mut batch_persons: BTreeMap<(String, String), (StagedPerson, i32)> = BTreeMap::new();
    let mut first_event: HashMap<(String, String), i32> = HashMap::new();
    for g in got.iter().flatten() {
        match &g.rec {
            Staged::Person(p) => {
                let k = (p.source.clone(), p.source_id.clone());
                match batch_persons.get_mut(&k) {
                    // derived persons repeat; a primary record wins over a derived one
                    Some(e) if e.0.derived && !p.derived => e.0 = p.clone(),
                    Some(_) => {}
                    None => {
                        batch_persons.insert(k, (p.clone(), opts.today));
                    }
                }
            }
            r => {
                if let (Some((s, p)), Some(d)) = (person_of(r), event_date(r)) {
                    let e = first_event
                        .entry((s.to_string(), p.to_string()))
                        .or_insert(d);
                    *e = (*e).min(d);
                }
            }
        }
    }
    let mut new_keys: Vec<(String, String)> = Vec::new();
    for (k, (p, _)) in &batch_persons {
        let fe = first_event.get(k).copied();
        match vault.persons.get_mut(k) {
            Some(known) => {
                if known.content_hash != p.content_hash {
                    let pid = known.person_id;
                    let fs = known.first_seen;
                    *known = source_person(p, pid, batch_id);
                    known.first_seen = min_opt(fs, fe);
                }
            }
            None => new_keys.push(k.clone()),
        }
    }
    report.source_persons_new = new_keys.len() as u64;
    if !new_keys.is_empty() {
        let link = link_new(&key, &vault, &batch_persons, &new_keys, batch_id, opts)?;
        report.linked_to_known = link.to_known;
        report.persons_new = link.new_people;
        report.review_pairs = link.review.len() as u64;
        for (k, pid) in link.assigned {
            let (p, _) = &batch_persons[&k];
            let mut sp = source_person(p, pid, batch_id);
            sp.first_seen = Some(first_event.get(&k).copied().unwrap_or(opts.today));
            vault.persons.insert(k, sp);
        }
        vault.review.extend(link.review);
    }
    // earlier first events of known persons
    for (k, d) in &first_event {
        if let Some(p) = vault.persons.get_mut(k) {
            p.first_seen = min_opt(p.first_seen, Some(*d));
        }
    }
    fail(opts, "link")?;
    stage_done("link", &mut report);

    // 3. reconcile and build lake rows
    let costs = trent_synth::sim::Costs::new(&opts.area);
    // person lookups without allocating a key per event
    let pid_of: HashMap<u128, i64> = vault
        .persons
        .values()
        .map(|p| {
            (
                record_key(&p.source, "person", &p.source_person),
                p.person_id,
            )
        })
        .collect();
    let part = format!("b{batch_id:06}.parquet");
    let mut land = Land::new(&key, &costs);
    let mut drop_rows: HashMap<u32, HashSet<u32>> = HashMap::new();
    // the index entries of this batch's records (the index stays on disk)
    {
        let mut wanted: Vec<u128> = got
            .iter()
            .flatten()
            .filter_map(|g| match &g.rec {
                Staged::Person(_) => None,
                Staged::Deleted(d) => {
                    let sid = match d.source_id.strip_prefix("identifier=") {
                        Some(x) => x.replace("%7C", "|").replace("%7c", "|"),
                        None => d.source_id.clone(),
                    };
                    Some(record_key(
                        &d.source,
                        &trent_feeds::sink::kind_of(Some(&d.resource_type)),
                        &sid,
                    ))
                }
                r => {
                    let (src, sid, _) = r.key();
                    Some(record_key(src, r.kind(), sid))
                }
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        vault.load_keys(&wanted)?;
    }
    let mut moved: Vec<(String, String)> = Vec::new(); // (source, kind) accepted → quarantined
    for g in got.into_iter().flatten() {
        let kind = g.rec.kind();
        if let Staged::Deleted(d) = &g.rec {
            let dkind = trent_feeds::sink::kind_of(Some(&d.resource_type));
            // `Type/id`, or a conditional delete `Type?identifier=system|value`
            let sid = match d.source_id.strip_prefix("identifier=") {
                Some(x) => x.replace("%7C", "|").replace("%7c", "|"),
                None => d.source_id.clone(),
            };
            let k = record_key(&d.source, &dkind, &sid);
            if let Some(old) = vault.records.remove(&k) {
                vault.removed.insert(k);
                for (f, r) in old.rows {
                    drop_rows.entry(f).or_default().insert(r);
                }
                report.records_deleted += 1;
            } else if dkind == "person" {
                // deleting a person record: remove the source identity (events stay with
                // the person other sources know; documented)
                if vault
                    .persons
                    .remove(&(d.source.clone(), d.source_id.clone()))
                    .is_some()
                {
                    report.records_deleted += 1;
                }
            }
            continue;
        }
        if let Staged::Person(_) = g.rec {
            continue; // persons are handled above
        }
        let (src, sid, hash) = g.rec.key();
        let rk = record_key(src, kind, sid);
        let (ps, pp) = person_of(&g.rec).expect("events have a person");
        let Some(&pid) = pid_of.get(&record_key(ps, "person", pp)) else {
            moved.push((src.to_string(), kind.to_string()));
            rejected.push(Rejection {
                source: src.to_string(),
                file: g.file.to_string(),
                position: Position {
                    line: g.line,
                    entry: g.entry,
                    pointer: None,
                },
                resource_type: Some(kind.to_string()),
                reason: Reason::DanglingReference,
                message: format!(
                    "{kind} {sid:?} refers to person {pp:?} of source {ps:?}, who is in neither this batch nor the vault"
                ),
                raw: String::new(),
            });
            need_raw.push(rejected.len() - 1);
            continue;
        };
        let content = content64(hash);
        match vault.records.get(&rk) {
            Some(old) if old.content == content => {
                report.records_unchanged += 1;
                continue;
            }
            Some(old) => {
                for (f, r) in &old.rows {
                    drop_rows.entry(*f).or_default().insert(*r);
                }
                report.records_updated += 1;
            }
            None => report.records_new += 1,
        }
        let rows = land
            .add(&g.rec, pid)
            .into_iter()
            .map(|(t, r)| (vault.file_id(t, &part), r))
            .collect();
        vault.records.insert(
            rk,
            Landed {
                content,
                rows,
                batch_id,
            },
        );
    }
    for (s, k) in moved {
        let t = tallies.entry((s, k)).or_default();
        t.accepted -= 1;
        t.rejected += 1;
    }
    report.rows_written = land.rows();

    // persons: the lake rows of every ingested person, recomputed
    let (person_batch, identity_batch, in_lake, incomplete) =
        persons_tables(&vault, &postcodes, &opts.area);
    report.persons_in_lake = in_lake;
    report.persons_incomplete = incomplete;

    // the raw text of records quarantined after reading, read back from their files
    fill_raw(&mut rejected, &need_raw, inputs)?;
    // quarantine
    let mut q = Rows::new(schema::QUARANTINE.schema());
    for r in &rejected {
        let file = Path::new(&r.file)
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_else(|| r.file.clone());
        q.push(vec![
            Cell::I(batch_id),
            Cell::S(r.source.clone()),
            Cell::S(file.clone()),
            Cell::I(r.position.line as i64),
            r.position.entry.map_or(Cell::Null, |e| Cell::I(e as i64)),
            r.position.pointer.clone().map(|p| mask(&p)).into(),
            r.resource_type.clone().into(),
            Cell::S(r.reason.code().to_string()),
            Cell::S(mask(&r.message)),
        ]);
        vault.quarantine_raw.push(RawRejection {
            batch_id,
            source: r.source.clone(),
            file,
            line: r.position.line as i64,
            entry: r.position.entry.map(|e| e as i64),
            reason_code: r.reason.code().to_string(),
            message: r.message.clone(),
            raw: r.raw.clone(),
        });
    }
    report.counts = tallies
        .iter()
        .map(|((s, k), t)| CountRow {
            source: s.clone(),
            kind: k.clone(),
            received: t.received,
            accepted: t.accepted,
            quarantined: t.rejected,
        })
        .collect();

    stage_done("reconcile", &mut report);
    // 4. land a new generation
    let writer = LakeWriter::create(data)?;
    let staging = writer.staging_dir().to_path_buf();
    let mut tables: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    if let Some(p) = &prev {
        link_tree(&p.generation, &staging)?;
        for t in &p.catalog.tables {
            tables.insert(t.name.clone(), (t.rows, t.files.clone()));
        }
    } else {
        let mut orgp = writer.part(&schema::ORGANISATION, 0)?;
        orgp.write(&trent_synth::organisation_batch(&opts.area))?;
        let (f, n) = orgp.finish()?;
        tables.insert("organisation".into(), (n, vec![f]));
    }
    // rewrite part files that lost rows (updates and deletes)
    let mut renames: HashMap<u32, Vec<i64>> = HashMap::new();
    for (fid, rows) in &drop_rows {
        let (t, f) = vault.files[*fid as usize].clone();
        let dir = staging.join("lake").join(&t);
        let path = dir.join(&f);
        let Some(b) = read_parquet(&path)? else {
            continue;
        };
        let keep: Vec<u32> = (0..b.num_rows() as u32)
            .filter(|i| !rows.contains(i))
            .collect();
        let nb =
            arrow::compute::take_record_batch(&b, &arrow::array::UInt32Array::from(keep.clone()))
                .map_err(|e| IngestError::Parquet {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let new_name = format!(
            "{}-r{batch_id:06}.parquet",
            f.trim_end_matches(".parquet")
                .split("-r")
                .next()
                .unwrap_or(&f)
        );
        write_parquet(&dir.join(&new_name), &nb)?;
        let _ = std::fs::remove_file(&path);
        // new row index of every kept row
        let mut map = vec![-1i64; b.num_rows()];
        for (n, o) in keep.iter().enumerate() {
            map[*o as usize] = n as i64;
        }
        if let Some(e) = tables.get_mut(&t) {
            e.0 -= rows.len() as u64;
            for x in e.1.iter_mut() {
                if *x == f {
                    *x = new_name.clone();
                }
            }
        }
        vault.rename_file(*fid, &new_name);
        renames.insert(*fid, map);
    }
    // rows in rewritten files are remapped when the index is merged (this batch's own
    // rows are in new files, never rewritten in the same batch)
    vault.remaps = renames;
    fail(opts, "lake")?;
    let min_date = land.min_date;
    for (def, batch) in land.finish() {
        if batch.num_rows() == 0 {
            continue;
        }
        let path = staging.join("lake").join(def.name).join(&part);
        write_parquet(&path, &batch)?;
        let e = tables.entry(def.name.to_string()).or_default();
        e.0 += batch.num_rows() as u64;
        e.1.push(part.clone());
    }
    // the ingested people: one file, replaced each batch
    {
        let name = "ingest-person.parquet";
        let dir = staging.join("lake").join("person");
        let e = tables.entry("person".into()).or_default();
        if e.1.iter().any(|f| f == name) {
            let old = read_parquet(&dir.join(name))?.map_or(0, |b| b.num_rows() as u64);
            e.0 -= old;
            e.1.retain(|f| f != name);
        }
        if person_batch.num_rows() > 0 {
            write_parquet(&dir.join(name), &person_batch)?;
            e.0 += person_batch.num_rows() as u64;
            e.1.push(name.to_string());
        } else {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    {
        let e = tables.entry("quarantine".into()).or_default();
        if !q.is_empty() {
            let qb = q.finish();
            write_parquet(&staging.join("lake").join("quarantine").join(&part), &qb)?;
            e.0 += qb.num_rows() as u64;
            e.1.push(part.clone());
        }
    }
    // vault
    let vdir = staging.join("vault");
    let vault_rows = {
        let name = "ingest-identity.parquet";
        let ip = vdir.join(trent_lake::VAULT_TABLE).join(name);
        let _ = std::fs::remove_file(&ip);
        if identity_batch.num_rows() > 0 {
            write_parquet(&ip, &identity_batch)?;
        }
        let prev_synth = prev.as_ref().map_or(0, |p| {
            p.catalog.vault_rows
                - p.catalog
                    .batches
                    .last()
                    .and_then(|b| b.get("persons_in_vault"))
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
        });
        prev_synth + identity_batch.num_rows() as u64
    };
    fail(opts, "vault")?;
    vault.save(&vdir)?;
    key.save(&vdir)?;

    stage_done("write", &mut report);
    // catalog
    let mut cat_tables = Vec::new();
    for def in schema::TABLES.iter().chain(schema::INGEST_TABLES.iter()) {
        if let Some((rows, files)) = tables.get(def.name)
            && !files.is_empty()
        {
            cat_tables.push(TableInfo::new(
                def,
                *rows,
                files.clone(),
                &format!("ingest-b{batch_id:06}"),
            ));
        }
    }
    // tables the previous generation had with their own run id keep it
    if let Some(p) = &prev {
        for t in cat_tables.iter_mut() {
            if let Some(old) = p.catalog.table(&t.name)
                && old.files == t.files
            {
                t.run_id = old.run_id.clone();
            }
        }
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report.finished = now();
    report.published = true;
    let mut rec = serde_json::to_value(&report).expect("report serialises");
    rec["persons_in_vault"] = serde_json::json!(identity_batch.num_rows());
    let mut batches = prev_batches;
    batches.push(rec);
    let (span_start, span_end) = match &prev {
        Some(p) => (p.catalog.span_start.clone(), p.catalog.span_end.clone()),
        None => (
            trent_model::time::iso(min_date.unwrap_or(opts.today)),
            trent_model::time::iso(opts.today),
        ),
    };
    let span_end = span_end.max(trent_model::time::iso(opts.today));
    let catalog = Catalog {
        format: 1,
        run_id: format!("ingest-b{batch_id:06}"),
        run: serde_json::json!({"command": "ingest", "batch_id": batch_id}),
        config_hash: opts.area.config_hash.clone(),
        area: opts.area.area.id.clone(),
        span_start,
        span_end,
        written_by: format!("trent {}", env!("CARGO_PKG_VERSION")),
        tables: cat_tables,
        vault_rows,
        batches,
    };
    fail(opts, "commit")?;
    writer.commit(&catalog)?;
    stage_done("publish", &mut report);
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn min_opt(a: Option<i32>, b: Option<i32>) -> Option<i32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn event_date(r: &Staged) -> Option<i32> {
    Some(match r {
        Staged::Activity(a) => a.start_ts.div_euclid(86_400) as i32,
        Staged::Condition(c) => c.recorded_date,
        Staged::Observation(o) => o.obs_date,
        Staged::Medication(m) => m.issue_date,
        Staged::Procedure(p) => p.performed_date,
        Staged::Referral(r) => r.referral_date,
        Staged::SocialCare(s) => s.start_date,
        Staged::Allergy(a) => a.recorded_date,
        Staged::Person(_) | Staged::Deleted(_) => return None,
    })
}

fn source_person(p: &StagedPerson, person_id: i64, batch_id: i64) -> SourcePerson {
    SourcePerson {
        source: p.source.clone(),
        source_person: p.source_id.clone(),
        person_id,
        nhs_number: p.nhs_number.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        birth_date: p.birth_date,
        sex: p.sex.clone(),
        postcode: p.postcode.clone(),
        address_line: p.address.clone(),
        practice_code: p.practice_code.clone(),
        ethnicity: p.ethnicity.clone(),
        death_date: p.death_date,
        death_cause: p.death_cause.clone(),
        first_seen: None,
        primary: !p.derived,
        content_hash: p.content_hash.clone(),
        batch_id,
    }
}

/// Hard-link every file of the previous generation into the staging folder, except the
/// catalog and derived tables (derived tables are recomputed from the new data).
fn link_tree(from: &Path, to: &Path) -> Result<(), IngestError> {
    fn walk(from: &Path, to: &Path, top: bool) -> Result<(), IngestError> {
        for e in std::fs::read_dir(from).map_err(|e| IngestError::io(from, e))? {
            let e = e.map_err(|e| IngestError::io(from, e))?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if top && n == "derived" {
                continue;
            }
            if n == trent_lake::CATALOG {
                continue;
            }
            let src = e.path();
            let dst = to.join(&name);
            let ft = e.file_type().map_err(|e| IngestError::io(&src, e))?;
            if ft.is_dir() {
                std::fs::create_dir_all(&dst).map_err(|e| IngestError::io(&dst, e))?;
                if let Ok(m) = std::fs::metadata(&src) {
                    let _ = std::fs::set_permissions(&dst, m.permissions());
                }
                walk(&src, &dst, false)?;
            } else if ft.is_file() {
                std::fs::hard_link(&src, &dst)
                    .or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))
                    .map_err(|e| IngestError::io(&dst, e))?;
            }
        }
        Ok(())
    }
    walk(from, to, true)
}

struct LinkOutcome {
    assigned: Vec<((String, String), i64)>,
    review: Vec<ReviewPair>,
    to_known: u64,
    new_people: u64,
}

fn link_new(
    key: &Key,
    vault: &VaultState,
    batch: &BTreeMap<(String, String), (StagedPerson, i32)>,
    new_keys: &[(String, String)],
    batch_id: i64,
    opts: &Options,
) -> Result<LinkOutcome, IngestError> {
    use trent_link::{Date, LinkRecord, Sex};
    let date = |d: Option<i32>| {
        d.and_then(|d| {
            let (y, m, dd) = trent_model::time::ymd(d);
            Date::new(y, m as u8, dd as u8)
        })
    };
    let sex = |s: &Option<String>| match s.as_deref() {
        Some("F") => Some(Sex::Female),
        Some("M") => Some(Sex::Male),
        _ => None,
    };
    let mut known: Vec<&SourcePerson> = vault.persons.values().collect();
    known.sort_by(|a, b| (&a.source, &a.source_person).cmp(&(&b.source, &b.source_person)));
    let mut records: Vec<LinkRecord> = Vec::with_capacity(known.len() + new_keys.len());
    for p in &known {
        records.push(LinkRecord {
            source: p.source.clone(),
            record_id: p.source_person.clone(),
            nhs_number: p.nhs_number.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            birth_date: date(p.birth_date),
            sex: sex(&p.sex),
            postcode: p.postcode.clone(),
        });
    }
    for k in new_keys {
        let p = &batch[k].0;
        records.push(LinkRecord {
            source: p.source.clone(),
            record_id: p.source_id.clone(),
            nhs_number: p.nhs_number.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            birth_date: date(p.birth_date),
            sex: sex(&p.sex),
            postcode: p.postcode.clone(),
        });
    }
    let cfg = trent_link::LinkConfig {
        threads: opts.threads.max(1),
        ..trent_link::LinkConfig::default()
    };
    // known identities keep the persons earlier batches gave them: only pairs with a new
    // identity are compared (time grows with the batch, not with the vault)
    let mut person_no: HashMap<i64, u32> = HashMap::new();
    let known_person: Vec<u32> = known
        .iter()
        .map(|p| {
            let n = person_no.len() as u32;
            *person_no.entry(p.person_id).or_insert(n)
        })
        .collect();
    let res = trent_link::link_incremental(&records, &known_person, &cfg)
        .map_err(|e| IngestError::Link(e.to_string()))?;
    let nk = known.len();
    // clusters → known person ids (with counts)
    let mut cluster_known: HashMap<&str, BTreeMap<i64, usize>> = HashMap::new();
    for (i, p) in known.iter().enumerate() {
        *cluster_known
            .entry(res.person_keys[i].as_str())
            .or_default()
            .entry(p.person_id)
            .or_default() += 1;
    }
    let mut review = Vec::new();
    let mut cluster_new: HashMap<&str, i64> = HashMap::new();
    let mut out = LinkOutcome {
        assigned: Vec::new(),
        review: Vec::new(),
        to_known: 0,
        new_people: 0,
    };
    for (j, k) in new_keys.iter().enumerate() {
        let c = res.person_keys[nk + j].as_str();
        let pid = match cluster_known.get(c) {
            Some(m) => {
                out.to_known += 1;
                if m.len() > 1 {
                    // the new record bridges two known people: not merged automatically
                    let mut ids = m.iter().collect::<Vec<_>>();
                    ids.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    for (other, _) in ids.iter().skip(1) {
                        if let Some(o) = known.iter().find(|p| p.person_id == **other) {
                            review.push(ReviewPair {
                                batch_id,
                                a: k.clone(),
                                b: (o.source.clone(), o.source_person.clone()),
                                probability: 1.0,
                                kind: "merge".into(),
                            });
                        }
                    }
                    *ids[0].0
                } else {
                    *m.keys().next().expect("non-empty")
                }
            }
            None => *cluster_new.entry(c).or_insert_with(|| {
                out.new_people += 1;
                key.person(&k.0, &k.1)
            }),
        };
        out.assigned.push((k.clone(), pid));
    }
    let valid_nhs = |r: &LinkRecord| {
        r.nhs_number
            .as_deref()
            .and_then(|n| trent_model::nhs_number::validate(n).ok())
    };
    for p in &res.review {
        let (a, b) = (p.a as usize, p.b as usize);
        // two different valid NHS numbers are two people (a person with two numbers is
        // for the national Spine to resolve, not for probabilistic linkage)
        if let (Some(x), Some(y)) = (valid_nhs(&records[a]), valid_nhs(&records[b]))
            && x != y
        {
            continue;
        }
        // nothing a reviewer could compare: no names or NHS numbers on both sides (OMOP
        // persons, for instance, carry only birth date and sex)
        let both = |f: fn(&LinkRecord) -> bool| f(&records[a]) && f(&records[b]);
        if !both(|r| r.family_name.is_some()) && !both(|r| r.nhs_number.is_some()) {
            continue;
        }
        let kind = match p.kind {
            trent_link::PairKind::NhsConflict => "nhs_conflict",
            trent_link::PairKind::ClusterGuard => "cluster_guard",
            _ => "uncertain",
        };
        review.push(ReviewPair {
            batch_id,
            a: (records[a].source.clone(), records[a].record_id.clone()),
            b: (records[b].source.clone(), records[b].record_id.clone()),
            probability: p.probability,
            kind: kind.into(),
        });
    }
    out.review = review;
    Ok(out)
}

/// The lake `person` rows and vault `identity` rows of every ingested person.
fn persons_tables(
    vault: &VaultState,
    postcodes: &HashMap<String, String>,
    area: &Area,
) -> (RecordBatch, RecordBatch, u64, u64) {
    let lsoas: HashMap<&str, &trent_places::Lsoa> =
        area.lsoas.iter().map(|l| (l.code.as_str(), l)).collect();
    let mut by_person: BTreeMap<i64, Vec<&SourcePerson>> = BTreeMap::new();
    for p in vault.persons.values() {
        by_person.entry(p.person_id).or_default().push(p);
    }
    let mut person = Rows::new(schema::PERSON.schema());
    let mut identity = Rows::new(trent_model::VAULT.schema());
    let (mut in_lake, mut incomplete) = (0, 0);
    for (pid, mut v) in by_person {
        // best first: primary records, then the most recent batch, then by source
        v.sort_by(|a, b| {
            b.primary
                .cmp(&a.primary)
                .then(b.batch_id.cmp(&a.batch_id))
                .then((&a.source, &a.source_person).cmp(&(&b.source, &b.source_person)))
        });
        let pick_s = |f: &dyn Fn(&SourcePerson) -> Option<String>| v.iter().find_map(|p| f(p));
        let sex = pick_s(&|p| p.sex.clone());
        let birth = v.iter().find_map(|p| p.birth_date);
        let postcode = pick_s(&|p| p.postcode.clone());
        let practice = pick_s(&|p| p.practice_code.clone());
        let ethnicity = pick_s(&|p| p.ethnicity.clone().filter(|e| e != "Z"))
            .unwrap_or_else(|| "Z".to_string());
        let death = v.iter().filter_map(|p| p.death_date).min();
        let cause = pick_s(&|p| p.death_cause.clone());
        let first = v.iter().filter_map(|p| p.first_seen).min();
        let lsoa = postcode
            .as_deref()
            .and_then(|pc| postcodes.get(&norm_postcode(pc)))
            .and_then(|c| lsoas.get(c.as_str()));
        let (Some(sex), Some(birth), Some(l), Some(practice)) =
            (sex.clone(), birth, lsoa, practice.clone())
        else {
            incomplete += 1;
            continue;
        };
        in_lake += 1;
        let la = area.la_of_district(&l.district).to_string();
        let reg_start = first.unwrap_or(birth).max(birth);
        person.push(vec![
            Cell::I(pid),
            Cell::S(sex.clone()),
            Cell::D(trent_model::time::month_start(birth)),
            death.map_or(Cell::Null, Cell::D),
            if death.is_some() {
                cause.into()
            } else {
                Cell::Null
            },
            Cell::S(l.code.clone()),
            Cell::I32(l.imd_decile as i32),
            Cell::S(la),
            Cell::S(l.district.clone()),
            Cell::S(practice.clone()),
            Cell::S(ethnicity),
            Cell::D(reg_start),
            death.map_or(Cell::Null, Cell::D),
        ]);
        identity.push(vec![
            Cell::I(pid),
            Cell::S(pick_s(&|p| p.nhs_number.clone()).unwrap_or_default()),
            Cell::S(pick_s(&|p| p.given_name.clone()).unwrap_or_default()),
            Cell::S(pick_s(&|p| p.family_name.clone()).unwrap_or_default()),
            Cell::D(birth),
            Cell::S(sex),
            Cell::S(postcode.unwrap_or_default()),
            Cell::S(pick_s(&|p| p.address_line.clone()).unwrap_or_default()),
            Cell::S(practice),
        ]);
    }
    (person.finish(), identity.finish(), in_lake, incomplete)
}

/// Builds the batch's rows for every event table.
struct Land<'a> {
    key: &'a Key,
    costs: &'a trent_synth::sim::Costs,
    tables: Vec<(&'static TableDef, Rows)>,
    min_date: Option<i32>,
}

const ACT: usize = 0;
const COND: usize = 1;
const OBS: usize = 2;
const MED: usize = 3;
const MEDREC: usize = 4;
const REF: usize = 5;
const SOC: usize = 6;
const PROC: usize = 7;
const ALL: usize = 8;

impl<'a> Land<'a> {
    fn new(key: &'a Key, costs: &'a trent_synth::sim::Costs) -> Land<'a> {
        let defs: [&'static TableDef; 9] = [
            &schema::ACTIVITY,
            &schema::CONDITION,
            &schema::OBSERVATION,
            &schema::MEDICATION,
            &schema::MEDICATION_RECORD,
            &schema::REFERRAL,
            &schema::SOCIAL_CARE,
            &schema::PROCEDURE,
            &schema::ALLERGY,
        ];
        Land {
            key,
            costs,
            tables: defs.iter().map(|d| (*d, Rows::new(d.schema()))).collect(),
            min_date: None,
        }
    }

    fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.1.len() as u64).sum()
    }

    fn push(&mut self, t: usize, row: Vec<Cell>) -> (&'static str, u32) {
        let r = self.tables[t].1.len() as u32;
        self.tables[t].1.push(row);
        (self.tables[t].0.name, r)
    }

    fn finish(self) -> Vec<(&'static TableDef, RecordBatch)> {
        self.tables
            .into_iter()
            .map(|(d, r)| (d, r.finish()))
            .collect()
    }

    fn activity_cost(&self, a: &StagedActivity) -> f64 {
        let c = self.costs;
        match a.setting.as_str() {
            "gp" => c.gp,
            "nhs111" => c.n111,
            "ambulance" => match a.patient_class.as_deref() {
                Some("hear_and_treat") => c.amb_ht,
                Some("see_and_treat") => c.amb_st,
                _ => c.amb_sc,
            },
            "ae" => c.ae,
            "apc" => match (a.admission_method.as_deref(), a.patient_class.as_deref()) {
                (_, Some("day_case")) => c.dc,
                (Some("elective"), _) => c.el,
                (Some("maternity"), _) => c.mat,
                _ if a.los_days.unwrap_or(0) <= 1 => c.em_short,
                _ => c.em_long,
            },
            "op" => match a.patient_class.as_deref() {
                Some("first") => c.op1,
                _ => c.opf,
            },
            "community" => c.comm,
            "mental_health" => match a.patient_class.as_deref() {
                Some("inpatient") => c.mh_bed * f64::from(a.los_days.unwrap_or(1).max(1)),
                _ => c.mh,
            },
            "social_care_assessment" => c.assess,
            _ => 0.0,
        }
    }

    /// Land one record for person `pid`; returns the lake rows it made.
    fn add(&mut self, r: &Staged, pid: i64) -> Vec<(&'static str, u32)> {
        if let Some(d) = event_date(r) {
            self.min_date = Some(self.min_date.map_or(d, |m| m.min(d)));
        }
        let s = |v: &Option<String>| -> Cell { v.clone().into() };
        let req = |v: &Option<String>| Cell::S(v.clone().unwrap_or_default());
        let mut out = Vec::new();
        match r {
            Staged::Activity(a) => {
                let aid = self.key.surrogate("activity", &a.source, &a.source_id);
                let rid = a
                    .source_referral
                    .as_ref()
                    .map(|x| self.key.surrogate("referral", &a.source, x));
                let cost = a.cost_gbp.unwrap_or_else(|| self.activity_cost(a));
                out.push(self.push(
                    ACT,
                    vec![
                        Cell::I(aid),
                        Cell::I(pid),
                        Cell::S(a.setting.clone()),
                        Cell::Ts(a.start_ts),
                        a.end_ts.map_or(Cell::Null, Cell::Ts),
                        req(&a.provider_code),
                        s(&a.site_code),
                        s(&a.admission_method),
                        s(&a.patient_class),
                        s(&a.primary_diagnosis),
                        s(&a.specialty),
                        Cell::F(cost),
                        s(&a.discharge_destination),
                        a.los_days.map_or(Cell::Null, Cell::I32),
                        a.medically_fit_date.map_or(Cell::Null, Cell::D),
                        s(&a.arrival_mode),
                        s(&a.ambulance_category),
                        a.response_minutes.map_or(Cell::Null, Cell::F),
                        rid.map_or(Cell::Null, Cell::I),
                    ],
                ));
                let day = a.start_ts.div_euclid(86_400) as i32;
                let rec_day = a.end_ts.map_or(day, |e| e.div_euclid(86_400) as i32);
                for code in &a.secondary_diagnoses {
                    out.push(self.push(
                        COND,
                        vec![
                            Cell::I(pid),
                            Cell::S("ICD10".into()),
                            Cell::S(code.clone()),
                            Cell::D(rec_day),
                            Cell::I(aid),
                        ],
                    ));
                }
            }
            Staged::Condition(c) => {
                let aid = c
                    .source_activity
                    .as_ref()
                    .map(|x| self.key.surrogate("activity", &c.source, x));
                out.push(self.push(
                    COND,
                    vec![
                        Cell::I(pid),
                        Cell::S(c.code_system.clone()),
                        Cell::S(c.code.clone()),
                        Cell::D(c.recorded_date),
                        aid.map_or(Cell::Null, Cell::I),
                    ],
                ));
            }
            Staged::Observation(o) => out.push(self.push(
                OBS,
                vec![
                    Cell::I(pid),
                    Cell::S(o.code.clone()),
                    o.value.map_or(Cell::Null, Cell::F),
                    s(&o.unit),
                    Cell::D(o.obs_date),
                ],
            )),
            Staged::Medication(m) => {
                if m.code_system == "BNF"
                    && m.kind == "request"
                    && let (Some(cost), Some(days)) = (m.cost_gbp, m.days_supply)
                {
                    {
                        out.push(self.push(
                            MED,
                            vec![
                                Cell::I(pid),
                                Cell::S(m.code.clone()),
                                Cell::D(m.issue_date),
                                Cell::F(cost),
                                Cell::I32(days),
                            ],
                        ));
                        return out;
                    }
                }
                out.push(self.push(
                    MEDREC,
                    vec![
                        Cell::I(pid),
                        Cell::S(m.code_system.clone()),
                        Cell::S(m.code.clone()),
                        Cell::S(m.kind.clone()),
                        Cell::D(m.issue_date),
                        m.cost_gbp.map_or(Cell::Null, Cell::F),
                        m.days_supply.map_or(Cell::Null, Cell::I32),
                    ],
                ));
            }
            Staged::Referral(x) => out.push(self.push(
                REF,
                vec![
                    Cell::I(self.key.surrogate("referral", &x.source, &x.source_id)),
                    Cell::I(pid),
                    req(&x.practice_code),
                    req(&x.specialty),
                    Cell::D(x.referral_date),
                    Cell::S(x.priority.clone()),
                ],
            )),
            Staged::SocialCare(x) => {
                let c = self.costs;
                let weekly = x.weekly_cost_gbp.unwrap_or(match x.service.as_str() {
                    "residential" => c.res,
                    "nursing" => c.nurs,
                    "home_care" => c.home,
                    "reablement" => c.reab,
                    _ => c.dp,
                });
                out.push(self.push(
                    SOC,
                    vec![
                        Cell::I(pid),
                        Cell::S(x.service.clone()),
                        Cell::D(x.start_date),
                        x.end_date.map_or(Cell::Null, Cell::D),
                        Cell::F(weekly),
                        req(&x.la_code),
                    ],
                ))
            }
            Staged::Procedure(p) => {
                let aid = p
                    .source_activity
                    .as_ref()
                    .map(|x| self.key.surrogate("activity", &p.source, x));
                out.push(self.push(
                    PROC,
                    vec![
                        Cell::I(pid),
                        Cell::S(p.code_system.clone()),
                        Cell::S(p.code.clone()),
                        Cell::D(p.performed_date),
                        aid.map_or(Cell::Null, Cell::I),
                    ],
                ))
            }
            Staged::Allergy(a) => out.push(self.push(
                ALL,
                vec![
                    Cell::I(pid),
                    Cell::S(a.code_system.clone()),
                    Cell::S(a.code.clone()),
                    Cell::D(a.recorded_date),
                    s(&a.clinical_status),
                    s(&a.criticality),
                ],
            )),
            Staged::Person(_) | Staged::Deleted(_) => {}
        }
        out
    }
}

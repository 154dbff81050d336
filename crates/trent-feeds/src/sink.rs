//! Where readers put their output, and the wrappers every ingest uses: counting
//! ([`Counts`]) and batch-level checks ([`Batch`]: duplicates, conflicting versions,
//! references to people not in the batch).
//!
//! A reader calls the sink exactly once per input entry: [`Sink::record`] with the
//! staged record, or [`Sink::reject`] with a rejection. (An entry is a CSV data line,
//! an NDJSON resource, a bundle entry, an OMOP row; a CSV row that carries the person's
//! demographics also yields that person, once per file and version, as an entry of kind
//! `person` — see `docs/feeds.md`.) That is what makes `received = accepted + rejected`
//! hold by construction, and the tests check it against independent counts of lines.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::reject::{Position, Reason, Rejection};
use crate::stage::Staged;

/// The original text of an accepted entry, produced only if a sink needs it (a
/// duplicate found later must be quarantined with its text).
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// A line of text (CSV or NDJSON).
    Text(&'a str),
    /// A bundle entry.
    Json(&'a Value),
}

impl Raw<'_> {
    /// The original text.
    pub fn text(&self) -> String {
        match self {
            Raw::Text(s) => (*s).to_string(),
            Raw::Json(v) => v.to_string(),
        }
    }
}

/// Where an accepted record came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The file.
    pub file: &'a str,
    /// 1-based line.
    pub line: u64,
    /// Bundle entry index.
    pub entry: Option<usize>,
    /// Original text.
    pub raw: Raw<'a>,
}

/// Receives each input entry's outcome.
pub trait Sink {
    /// An accepted entry.
    fn record(&mut self, r: Staged, origin: &Origin<'_>);
    /// A rejected entry.
    fn reject(&mut self, r: Rejection);
}

/// Keeps everything (tests, small files, the fuzz harness).
#[derive(Debug, Default, Clone)]
pub struct Collect {
    /// Accepted records, in order.
    pub records: Vec<Staged>,
    /// (file, line, bundle entry) of each accepted record.
    pub origins: Vec<(String, u64, Option<usize>)>,
    /// Rejections, in order.
    pub rejections: Vec<Rejection>,
}

impl Sink for Collect {
    fn record(&mut self, r: Staged, origin: &Origin<'_>) {
        self.records.push(r);
        self.origins
            .push((origin.file.to_string(), origin.line, origin.entry));
    }
    fn reject(&mut self, r: Rejection) {
        self.rejections.push(r);
    }
}

impl Collect {
    /// The reasons of the rejections, in order.
    pub fn reasons(&self) -> Vec<Reason> {
        self.rejections.iter().map(|r| r.reason).collect()
    }
}

/// Received / accepted / rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Entries read.
    pub received: u64,
    /// Entries staged.
    pub accepted: u64,
    /// Entries rejected.
    pub rejected: u64,
}

/// The staged kind a FHIR resource type (or CSV/OMOP record kind) is counted under.
pub fn kind_of(resource_type: Option<&str>) -> String {
    match resource_type {
        None => "unknown".into(),
        Some(t) => match t {
            "Patient" => "person",
            "Encounter" => "activity",
            "EpisodeOfCare" => "social_care",
            "Condition" => "condition",
            "Observation" => "observation",
            "MedicationRequest" | "MedicationStatement" => "medication",
            "Procedure" => "procedure",
            "ServiceRequest" => "referral",
            "AllergyIntolerance" => "allergy",
            other => other,
        }
        .to_string(),
    }
}

/// Counts outcomes per (source, kind) and rejections per reason, passing everything on.
#[derive(Debug, Default)]
pub struct Counts<S> {
    /// The wrapped sink.
    pub inner: S,
    /// Per (source, kind).
    pub tallies: BTreeMap<(String, String), Tally>,
    /// Per (source, reason).
    pub reasons: BTreeMap<(String, Reason), u64>,
}

impl<S: Sink> Counts<S> {
    /// Wrap a sink.
    pub fn new(inner: S) -> Counts<S> {
        Counts {
            inner,
            tallies: BTreeMap::new(),
            reasons: BTreeMap::new(),
        }
    }

    /// The sum over every source and kind.
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for v in self.tallies.values() {
            t.received += v.received;
            t.accepted += v.accepted;
            t.rejected += v.rejected;
        }
        t
    }

    /// A plain-text table: source, kind, received, accepted, rejected.
    pub fn report(&self) -> String {
        let mut s = String::from("source\tkind\treceived\taccepted\trejected\n");
        for ((src, kind), t) in &self.tallies {
            s.push_str(&format!(
                "{src}\t{kind}\t{}\t{}\t{}\n",
                t.received, t.accepted, t.rejected
            ));
        }
        s
    }
}

impl<S: Sink> Sink for Counts<S> {
    fn record(&mut self, r: Staged, origin: &Origin<'_>) {
        let (src, _, _) = r.key();
        let t = self
            .tallies
            .entry((src.to_string(), r.kind().to_string()))
            .or_default();
        t.received += 1;
        t.accepted += 1;
        self.inner.record(r, origin);
    }
    fn reject(&mut self, r: Rejection) {
        let t = self
            .tallies
            .entry((r.source.clone(), kind_of(r.resource_type.as_deref())))
            .or_default();
        t.received += 1;
        t.rejected += 1;
        *self
            .reasons
            .entry((r.source.clone(), r.reason))
            .or_default() += 1;
        self.inner.reject(r);
    }
}

/// Batch-level checks across files: a record whose (source, kind, source_id) was already
/// staged in this batch is rejected `duplicate_in_batch` (same content hash) or
/// `conflicting_record` (different hash). Persons implied by event rows
/// (`StagedPerson::derived`) repeat by nature and pass when identical. Also tracks which
/// `source_person` references have no person in the batch ([`Batch::unresolved`]): not an
/// error here, the lead checks them against the identity vault.
#[derive(Debug, Default)]
pub struct Batch<S> {
    /// The wrapped sink.
    pub inner: S,
    seen: HashMap<(String, &'static str, String), String>,
    persons: HashSet<(String, String)>,
    referenced: HashMap<(String, String), u64>,
}

impl<S: Sink> Batch<S> {
    /// Wrap a sink.
    pub fn new(inner: S) -> Batch<S> {
        Batch {
            inner,
            seen: HashMap::new(),
            persons: HashSet::new(),
            referenced: HashMap::new(),
        }
    }

    /// `(source, source_person, records referring to it)` for every person referenced
    /// but not staged in this batch, sorted.
    pub fn unresolved(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = self
            .referenced
            .iter()
            .filter(|(k, _)| !self.persons.contains(*k))
            .map(|((s, p), n)| (s.clone(), p.clone(), *n))
            .collect();
        v.sort();
        v
    }
}

impl<S: Sink> Sink for Batch<S> {
    fn record(&mut self, r: Staged, origin: &Origin<'_>) {
        if let Staged::Deleted(_) = r {
            self.inner.record(r, origin);
            return;
        }
        let kind = r.kind();
        let (src, id, hash) = r.key();
        let key = (src.to_string(), kind, id.to_string());
        let derived = matches!(&r, Staged::Person(p) if p.derived);
        if let Some(prev) = self.seen.get(&key) {
            let same = prev == hash;
            if same && derived {
                self.inner.record(r, origin);
                return;
            }
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
                        "{kind} {id:?} of source {src:?} was already received in this batch with different content (hash {} vs {})",
                        &prev[..12.min(prev.len())],
                        &hash[..12.min(hash.len())]
                    ),
                )
            };
            let rej = Rejection {
                source: src.to_string(),
                file: origin.file.to_string(),
                position: Position {
                    line: origin.line,
                    entry: origin.entry,
                    pointer: None,
                },
                resource_type: Some(kind.to_string()),
                reason,
                message,
                raw: origin.raw.text(),
            };
            self.inner.reject(rej);
            return;
        }
        self.seen.insert(key, hash.to_string());
        if let Some(p) = r.source_person() {
            let pk = (src.to_string(), p.to_string());
            if kind == "person" {
                self.persons.insert(pk);
            } else if let Some(n) = self.referenced.get_mut(&pk) {
                *n += 1;
            } else {
                self.referenced.insert(pk, 1);
            }
        }
        self.inner.record(r, origin);
    }
    fn reject(&mut self, r: Rejection) {
        self.inner.reject(r);
    }
}

//! The tamper-evident audit: every access decision, allowed or denied, as one entry in a
//! hash chain.
//!
//! Each [`AuditEntry`] carries the SHA-256 hash of its predecessor and its own hash over a
//! canonical text form that includes that predecessor hash, so changing, removing,
//! inserting or reordering any entry breaks the chain at that point. Truncation from the end
//! leaves a shorter chain that is still valid, so it is caught only against a separately
//! kept head [`Checkpoint`] (seq, hash) — keep one outside the log (the database, a
//! write-once store, a signed daily e-mail).
//!
//! The canonical form (also in `docs/access.md`, so anyone can verify independently) is
//! UTF-8 text: the line `trent-audit-v1`, then one `name=value` line per field, in this
//! order, each ending in `\n`:
//! `seq time who role organisation purpose purpose_reason action resource_type
//! resource_id subject_person decision reason_code flags prev_hash`.
//! An absent value is empty; `time` is RFC 3339 UTC with exactly six fractional digits and
//! `Z`; `decision` is `allow` or `deny`; `flags` are comma-separated codes; `prev_hash` is
//! 64 lower-case hex digits, 64 zeros for the first entry. No value can contain a newline
//! (ids refuse whitespace and control characters; the break-glass reason has control
//! characters replaced by spaces), so the form is unambiguous. `hash` is the lower-case hex
//! SHA-256 of those bytes.
//!
//! Storage is a trait, [`AuditStore`], holding JSON lines (one object per entry, fields in
//! the order above plus `hash`). [`FileAuditStore`] appends each line with one write and
//! `fsync`s before returning, so a crash leaves at most a torn last line — one without its
//! terminating newline — which [`verify`] reports as [`TornTail`], distinct from
//! tampering, and which must be set aside ([`FileAuditStore::repair_torn_tail`]) before
//! appending again. [`MemoryAuditStore`] holds the same bytes in memory.
//!
//! Entries hold ids and codes only: no secrets and no clinical content.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::auth::sha256_hex;
use crate::decide::{Decision, Flag, ReasonCode, Request};
use crate::model::{Action, OdsCode, PersonId, Purpose, ResourceKind, Role, UserId};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first line of the canonical form; changes if the form ever changes.
pub const CANONICAL_VERSION: &str = "trent-audit-v1";

/// Audit machinery errors.
#[derive(Debug, Error)]
pub enum AuditError {
    /// Reading or writing the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A complete line of the log is not a valid entry.
    #[error("audit log line {line}: {detail}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong, naming the field.
        detail: String,
    },
    /// The log ends in a torn line (a crash mid-append); it must be set aside first.
    #[error("audit log line {line} is torn (no final newline); set it aside before appending")]
    TornTail {
        /// 1-based line number of the torn line.
        line: u64,
    },
    /// An entry to be recorded has a field the audit cannot hold.
    #[error("audit entry field {field}: {detail}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// One audited access decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the decision was made (microsecond precision, UTC).
    pub time: DateTime<Utc>,
    /// The account that asked.
    pub who: UserId,
    /// Its role.
    pub role: Role,
    /// Its organisation.
    pub organisation: Option<OdsCode>,
    /// The declared purpose, with the break-glass reason if any.
    pub purpose: Purpose,
    /// The action asked for.
    pub action: Action,
    /// The kind of resource.
    pub resource_type: ResourceKind,
    /// The resource's id, when one resource was addressed.
    pub resource_id: Option<String>,
    /// The person whose record it is.
    pub subject_person: Option<PersonId>,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The decision's reason code.
    pub reason_code: ReasonCode,
    /// The decision's flags.
    pub flags: Vec<Flag>,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 of [`canonical_form`], lower-case hex.
    pub hash: String,
}

fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The canonical text of an entry, over which its hash is computed (everything but `hash`).
pub fn canonical_form(e: &AuditEntry) -> String {
    let opt = |v: Option<&str>| v.unwrap_or("").to_string();
    let fields: [(&str, String); 15] = [
        ("seq", e.seq.to_string()),
        ("time", format_time(&e.time)),
        ("who", e.who.to_string()),
        ("role", e.role.code().to_string()),
        (
            "organisation",
            opt(e.organisation.as_ref().map(|o| o.as_str())),
        ),
        ("purpose", e.purpose.code().to_string()),
        ("purpose_reason", opt(e.purpose.reason())),
        ("action", e.action.code().to_string()),
        ("resource_type", e.resource_type.code().to_string()),
        ("resource_id", opt(e.resource_id.as_deref())),
        (
            "subject_person",
            opt(e.subject_person.as_ref().map(|p| p.as_str())),
        ),
        (
            "decision",
            if e.allowed { "allow" } else { "deny" }.to_string(),
        ),
        ("reason_code", e.reason_code.code().to_string()),
        (
            "flags",
            e.flags
                .iter()
                .map(|f| f.code())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("prev_hash", e.prev_hash.clone()),
    ];
    let mut s = format!("{CANONICAL_VERSION}\n");
    for (name, value) in fields {
        s.push_str(name);
        s.push('=');
        s.push_str(&value);
        s.push('\n');
    }
    s
}

/// The hash an entry should carry.
pub fn entry_hash(e: &AuditEntry) -> String {
    sha256_hex(canonical_form(e).as_bytes())
}

/// The stored (JSON) form of an entry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    seq: u64,
    time: String,
    who: String,
    role: String,
    organisation: Option<String>,
    purpose: String,
    purpose_reason: Option<String>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    subject_person: Option<String>,
    decision: String,
    reason_code: String,
    flags: Vec<String>,
    prev_hash: String,
    hash: String,
}

impl AuditEntry {
    /// The entry as one JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        let w = Wire {
            seq: self.seq,
            time: format_time(&self.time),
            who: self.who.to_string(),
            role: self.role.code().into(),
            organisation: self.organisation.as_ref().map(|o| o.to_string()),
            purpose: self.purpose.code().into(),
            purpose_reason: self.purpose.reason().map(str::to_string),
            action: self.action.code().into(),
            resource_type: self.resource_type.code().into(),
            resource_id: self.resource_id.clone(),
            subject_person: self.subject_person.as_ref().map(|p| p.to_string()),
            decision: if self.allowed { "allow" } else { "deny" }.into(),
            reason_code: self.reason_code.code().into(),
            flags: self.flags.iter().map(|f| f.code().to_string()).collect(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        };
        serde_json::to_string(&w).expect("an audit entry always serialises")
    }

    /// Parses one JSON line strictly (every field, known codes, canonical time). The error
    /// names the field.
    pub fn from_json_line(text: &str) -> Result<AuditEntry, String> {
        let w: Wire = serde_json::from_str(text).map_err(|e| format!("not an audit entry: {e}"))?;
        let code = |field: &str, value: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("field {field}: unknown code {value:?}"))
            }
        };
        let time = DateTime::parse_from_rfc3339(&w.time)
            .map_err(|e| format!("field time: {e}"))?
            .with_timezone(&Utc);
        if format_time(&time) != w.time {
            return Err(format!("field time: {:?} is not in canonical form", w.time));
        }
        let role = Role::from_code(&w.role);
        code("role", &w.role, role.is_some())?;
        let action = Action::from_code(&w.action);
        code("action", &w.action, action.is_some())?;
        let kind = ResourceKind::from_code(&w.resource_type);
        code("resource_type", &w.resource_type, kind.is_some())?;
        let reason = ReasonCode::from_code(&w.reason_code);
        code("reason_code", &w.reason_code, reason.is_some())?;
        let purpose = match (w.purpose.as_str(), w.purpose_reason) {
            ("break-glass", Some(reason)) => {
                check_reason_text(&reason).map_err(|d| format!("field purpose_reason: {d}"))?;
                Purpose::BreakGlass { reason }
            }
            ("break-glass", None) => {
                return Err("field purpose_reason: missing for break-glass".into());
            }
            (_, Some(_)) => {
                return Err(
                    "field purpose_reason: present for a purpose other than break-glass".into(),
                );
            }
            ("direct-care", None) => Purpose::DirectCare,
            ("self-access", None) => Purpose::SelfAccess,
            ("carer-access", None) => Purpose::CarerAccess,
            ("secondary", None) => Purpose::Secondary,
            ("administration", None) => Purpose::Administration,
            (other, None) => return Err(format!("field purpose: unknown code {other:?}")),
        };
        let allowed = match w.decision.as_str() {
            "allow" => true,
            "deny" => false,
            other => {
                return Err(format!(
                    "field decision: {other:?} is neither allow nor deny"
                ));
            }
        };
        let flags = w
            .flags
            .iter()
            .map(|f| Flag::from_code(f).ok_or_else(|| format!("field flags: unknown code {f:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        for (field, h) in [("prev_hash", &w.prev_hash), ("hash", &w.hash)] {
            if !is_hex64(h) {
                return Err(format!("field {field}: not 64 lower-case hex digits"));
            }
        }
        if let Some(id) = &w.resource_id {
            check_resource_id(id).map_err(|d| format!("field resource_id: {d}"))?;
        }
        Ok(AuditEntry {
            seq: w.seq,
            time,
            who: UserId::new(w.who).map_err(|e| format!("field who: {e}"))?,
            role: role.expect("checked"),
            organisation: w
                .organisation
                .map(OdsCode::new)
                .transpose()
                .map_err(|e| format!("field organisation: {e}"))?,
            purpose,
            action: action.expect("checked"),
            resource_type: kind.expect("checked"),
            resource_id: w.resource_id,
            subject_person: w
                .subject_person
                .map(PersonId::new)
                .transpose()
                .map_err(|e| format!("field subject_person: {e}"))?,
            allowed,
            reason_code: reason.expect("checked"),
            flags,
            prev_hash: w.prev_hash,
            hash: w.hash,
        })
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_resource_id(id: &str) -> Result<(), String> {
    // FHIR R4 id: [A-Za-z0-9\-\.]{1,64}.
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!(
            "{id:?} is not a FHIR id ([A-Za-z0-9-.], 1 to 64 characters)"
        ));
    }
    Ok(())
}

fn check_reason_text(reason: &str) -> Result<(), String> {
    if reason.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    if reason.chars().count() > Purpose::MAX_REASON_CHARS {
        return Err("longer than 200 characters".into());
    }
    Ok(())
}

/// A decision to be audited, before it gets its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    /// The account.
    pub who: UserId,
    /// Its role.
    pub role: Role,
    /// Its organisation.
    pub organisation: Option<OdsCode>,
    /// The purpose (a break-glass reason is cleaned: control characters become spaces, and
    /// it is cut at 200 characters, so that even a refused, malformed reason is audited).
    pub purpose: Purpose,
    /// The action.
    pub action: Action,
    /// The kind of resource.
    pub resource_type: ResourceKind,
    /// The resource's FHIR id, if one was addressed.
    pub resource_id: Option<String>,
    /// The person whose record it is.
    pub subject_person: Option<PersonId>,
    /// Allowed or not.
    pub allowed: bool,
    /// The reason code.
    pub reason_code: ReasonCode,
    /// The flags.
    pub flags: Vec<Flag>,
}

impl AccessEvent {
    /// The event for a decided request.
    pub fn new(req: &Request<'_>, resource_id: Option<&str>, decision: &Decision) -> Self {
        AccessEvent {
            who: req.principal.user.clone(),
            role: req.principal.role,
            organisation: req.principal.organisation.clone(),
            purpose: req.purpose.clone(),
            action: req.action,
            resource_type: req.kind,
            resource_id: resource_id.map(str::to_string),
            subject_person: req.subject.cloned(),
            allowed: decision.allow,
            reason_code: decision.reason,
            flags: decision.flags.clone(),
        }
    }
}

/// The head of a log: its last entry's seq and hash. Kept apart from the log, it reveals
/// truncation and wholesale rewriting. Written as `seq:hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Last entry's seq.
    pub seq: u64,
    /// Last entry's hash.
    pub hash: String,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("checkpoint {s:?}: expected seq:hash"))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|e| format!("checkpoint {s:?}: seq: {e}"))?;
        if seq == 0 || !is_hex64(hash) {
            return Err(format!(
                "checkpoint {s:?}: seq must be ≥ 1 and hash 64 lower-case hex digits"
            ));
        }
        Ok(Checkpoint {
            seq,
            hash: hash.to_string(),
        })
    }
}

/// One line of a store, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// 1-based line number.
    pub number: u64,
    /// The bytes, without the newline.
    pub bytes: Vec<u8>,
    /// Whether the line ended in a newline (only the last line can lack one).
    pub terminated: bool,
}

/// Where audit lines live: append-only, read in order.
pub trait AuditStore {
    /// Appends one line (the newline is added) durably: when this returns `Ok`, the line
    /// survives a crash.
    fn append_line(&mut self, line: &str) -> Result<(), AuditError>;
    /// Visits every line in order, the last possibly unterminated.
    fn for_each_line(
        &self,
        visit: &mut dyn FnMut(StoredLine) -> Result<(), AuditError>,
    ) -> Result<(), AuditError>;
}

fn split_lines(
    reader: &mut dyn BufRead,
    path: &str,
    visit: &mut dyn FnMut(StoredLine) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let mut number = 0;
    loop {
        let mut bytes = Vec::new();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| AuditError::Io {
                path: path.to_string(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let terminated = bytes.last() == Some(&b'\n');
        if terminated {
            bytes.pop();
        }
        visit(StoredLine {
            number,
            bytes,
            terminated,
        })?;
    }
}

/// An audit store in memory, holding exactly the bytes a file would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryAuditStore {
    /// The log's bytes (JSON lines).
    pub bytes: Vec<u8>,
}

impl MemoryAuditStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditStore for MemoryAuditStore {
    fn append_line(&mut self, line: &str) -> Result<(), AuditError> {
        if !self.bytes.is_empty() && self.bytes.last() != Some(&b'\n') {
            let line = self.bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            return Err(AuditError::TornTail { line });
        }
        self.bytes.extend_from_slice(line.as_bytes());
        self.bytes.push(b'\n');
        Ok(())
    }

    fn for_each_line(
        &self,
        visit: &mut dyn FnMut(StoredLine) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        split_lines(&mut &self.bytes[..], "(memory)", visit)
    }
}

/// An audit store in an append-only JSON-lines file (created owner-only on Unix).
#[derive(Debug)]
pub struct FileAuditStore {
    path: PathBuf,
    file: File,
    /// Line number of a torn last line, if the file ends in one.
    torn: Option<u64>,
}

impl FileAuditStore {
    /// Opens (or creates) the log file and checks whether it ends in a torn line.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = OpenOptions::new();
        options.append(true).create(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io_err)?;
        let mut store = FileAuditStore {
            path,
            file,
            torn: None,
        };
        store.torn = store.find_torn()?;
        Ok(store)
    }

    fn path_text(&self) -> String {
        self.path.display().to_string()
    }

    fn find_torn(&self) -> Result<Option<u64>, AuditError> {
        let mut torn = None;
        self.for_each_line(&mut |l| {
            if !l.terminated {
                torn = Some(l.number);
            }
            Ok(())
        })?;
        Ok(torn)
    }

    /// The line number of a torn last line, if any.
    pub fn torn_tail(&self) -> Option<u64> {
        self.torn
    }

    /// Sets a torn last line aside: its bytes are appended to `<log>.torn` (kept as
    /// evidence) and the log is cut back to its last complete line. Returns the bytes moved,
    /// or `None` if the log was not torn.
    pub fn repair_torn_tail(&mut self) -> Result<Option<Vec<u8>>, AuditError> {
        let path = self.path_text();
        let io_err = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        if self.torn.is_none() {
            return Ok(None);
        }
        let mut all = Vec::new();
        let mut reader = File::open(&self.path).map_err(io_err)?;
        reader.read_to_end(&mut all).map_err(io_err)?;
        let keep = all.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let tail = all[keep..].to_vec();
        let mut side_path = self.path.clone().into_os_string();
        side_path.push(".torn");
        let mut side = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&side_path)
            .map_err(io_err)?;
        side.write_all(&tail)
            .and_then(|_| side.write_all(b"\n"))
            .and_then(|_| side.sync_data())
            .map_err(io_err)?;
        self.file.set_len(keep as u64).map_err(io_err)?;
        self.file.seek(SeekFrom::End(0)).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)?;
        self.torn = None;
        Ok(Some(tail))
    }
}

impl AuditStore for FileAuditStore {
    fn append_line(&mut self, line: &str) -> Result<(), AuditError> {
        if let Some(line) = self.torn {
            return Err(AuditError::TornTail { line });
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let result = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        if let Err(source) = result {
            // The write may have been partial: look again before any further append.
            self.torn = self.find_torn().unwrap_or(Some(0));
            return Err(AuditError::Io {
                path: self.path_text(),
                source,
            });
        }
        Ok(())
    }

    fn for_each_line(
        &self,
        visit: &mut dyn FnMut(StoredLine) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let path = self.path_text();
        let file = File::open(&self.path).map_err(|source| AuditError::Io {
            path: path.clone(),
            source,
        })?;
        split_lines(&mut BufReader::new(file), &path, visit)
    }
}

/// The audit log: chains entries and appends them to its store.
#[derive(Debug)]
pub struct AuditLog<S: AuditStore> {
    store: S,
    head: Option<Checkpoint>,
}

fn parse_line(line: &StoredLine) -> Result<AuditEntry, AuditError> {
    let malformed = |detail| AuditError::Malformed {
        line: line.number,
        detail,
    };
    let text = std::str::from_utf8(&line.bytes).map_err(|_| malformed("not UTF-8".to_string()))?;
    AuditEntry::from_json_line(text).map_err(malformed)
}

impl<S: AuditStore> AuditLog<S> {
    /// Opens a log over a store, finding its head (the last entry). Refuses a store that
    /// ends in a torn line or whose last line is not a valid entry; run [`verify`] for the
    /// whole chain.
    pub fn open(store: S) -> Result<Self, AuditError> {
        let mut last: Option<StoredLine> = None;
        store.for_each_line(&mut |l| {
            last = Some(l);
            Ok(())
        })?;
        let head = match last {
            None => None,
            Some(l) if !l.terminated => return Err(AuditError::TornTail { line: l.number }),
            Some(l) => {
                let e = parse_line(&l)?;
                Some(Checkpoint {
                    seq: e.seq,
                    hash: e.hash,
                })
            }
        };
        Ok(AuditLog { store, head })
    }

    /// The head: the last entry's seq and hash (keep a copy elsewhere).
    pub fn head(&self) -> Option<&Checkpoint> {
        self.head.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Records an access decision at `now` and returns the chained entry.
    pub fn record(
        &mut self,
        event: AccessEvent,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry, AuditError> {
        if let Some(id) = &event.resource_id {
            check_resource_id(id).map_err(|detail| AuditError::InvalidField {
                field: "resource_id",
                detail,
            })?;
        }
        let purpose = match event.purpose {
            Purpose::BreakGlass { reason } => Purpose::BreakGlass {
                reason: reason
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(Purpose::MAX_REASON_CHARS)
                    .collect(),
            },
            other => other,
        };
        let time = DateTime::parse_from_rfc3339(&format_time(&now))
            .expect("a formatted time parses")
            .with_timezone(&Utc);
        let (seq, prev_hash) = match &self.head {
            None => (1, GENESIS_HASH.to_string()),
            Some(h) => (h.seq + 1, h.hash.clone()),
        };
        let mut entry = AuditEntry {
            seq,
            time,
            who: event.who,
            role: event.role,
            organisation: event.organisation,
            purpose,
            action: event.action,
            resource_type: event.resource_type,
            resource_id: event.resource_id,
            subject_person: event.subject_person,
            allowed: event.allowed,
            reason_code: event.reason_code,
            flags: event.flags,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry_hash(&entry);
        self.store.append_line(&entry.to_json_line())?;
        self.head = Some(Checkpoint {
            seq,
            hash: entry.hash.clone(),
        });
        Ok(entry)
    }

    /// Every entry about a person's record, in order: what the citizen sees as "who looked
    /// at my record". A malformed line is an error (never skipped silently); a torn last
    /// line was never acknowledged and is not an entry.
    pub fn for_person(&self, person: &PersonId) -> Result<Vec<AuditEntry>, AuditError> {
        let mut out = Vec::new();
        self.store.for_each_line(&mut |l| {
            if !l.terminated {
                return Ok(());
            }
            let e = parse_line(&l)?;
            if e.subject_person.as_ref() == Some(person) {
                out.push(e);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// What [`verify`] found wrong at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line is not a valid entry (edited into invalid form).
    Malformed(String),
    /// The entry's content does not match its hash: a field was changed.
    HashMismatch {
        /// The entry's seq.
        seq: u64,
    },
    /// The entry's `prev_hash` is not the hash of the line before it: something was
    /// removed, inserted or moved before this line (or an edited entry was re-hashed).
    ChainBroken {
        /// The entry's seq.
        seq: u64,
    },
    /// Seq jumps forward: entries are missing before this line.
    SequenceGap {
        /// The seq that should come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// Seq goes back or repeats: lines were moved or inserted.
    SequenceOutOfOrder {
        /// The seq that should come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The entry at the checkpoint's seq has another hash: history was rewritten.
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// The log ends before the checkpoint: entries were cut from the end.
    Truncated {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The last seq in the log (0 if none).
        last_seq: u64,
    },
}

/// One problem: where (the 1-based line, or 0 for the log as a whole) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number; 0 for problems of the whole log (truncation).
    pub line: u64,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match &self.kind {
            ProblemKind::Malformed(d) => write!(f, "malformed: {d}"),
            ProblemKind::HashMismatch { seq } => {
                write!(f, "entry {seq} does not match its hash (altered)")
            }
            ProblemKind::ChainBroken { seq } => {
                write!(f, "entry {seq} does not chain to the line before")
            }
            ProblemKind::SequenceGap { expected, found } => {
                write!(
                    f,
                    "expected entry {expected}, found {found} (entries missing)"
                )
            }
            ProblemKind::SequenceOutOfOrder { expected, found } => {
                write!(
                    f,
                    "expected entry {expected}, found {found} (moved or inserted)"
                )
            }
            ProblemKind::CheckpointMismatch { seq } => {
                write!(
                    f,
                    "entry {seq} differs from the checkpoint (history rewritten)"
                )
            }
            ProblemKind::Truncated {
                checkpoint_seq,
                last_seq,
            } => {
                write!(
                    f,
                    "log ends at entry {last_seq} but the checkpoint is at {checkpoint_seq} (truncated)"
                )
            }
        }
    }
}

/// A torn last line: the crash signature, not tampering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// 1-based line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: usize,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Complete lines read.
    pub lines: u64,
    /// The last valid entry's seq and hash.
    pub head: Option<Checkpoint>,
    /// Signs of tampering, in line order (the whole-log problems last).
    pub problems: Vec<Problem>,
    /// A torn last line, if any.
    pub torn_tail: Option<TornTail>,
}

impl VerifyReport {
    /// No sign of tampering (a torn tail may still be present).
    pub fn untampered(&self) -> bool {
        self.problems.is_empty()
    }

    /// No tampering and no torn tail.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.torn_tail.is_none()
    }
}

/// Verifies a whole log: every line parses, matches its hash, chains to the line before and
/// continues the sequence; with a checkpoint, the log reaches it and agrees with it.
/// After a problem, checking resumes from the line as found, so one deletion is reported
/// once rather than at every later line.
pub fn verify(
    store: &dyn AuditStore,
    checkpoint: Option<&Checkpoint>,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport::default();
    let mut expected_prev: Option<String> = Some(GENESIS_HASH.to_string());
    let mut expected_seq: Option<u64> = Some(1);
    let mut max_seq = 0u64;
    store.for_each_line(&mut |l| {
        if !l.terminated {
            report.torn_tail = Some(TornTail {
                line: l.number,
                bytes: l.bytes.len(),
            });
            return Ok(());
        }
        report.lines += 1;
        let problem = |kind| Problem {
            line: l.number,
            kind,
        };
        let e = match parse_line(&l) {
            Ok(e) => e,
            Err(err) => {
                let detail = match err {
                    AuditError::Malformed { detail, .. } => detail,
                    other => other.to_string(),
                };
                report
                    .problems
                    .push(problem(ProblemKind::Malformed(detail)));
                expected_prev = None;
                expected_seq = None;
                return Ok(());
            }
        };
        if let Some(expected) = expected_seq {
            if e.seq > expected {
                report.problems.push(problem(ProblemKind::SequenceGap {
                    expected,
                    found: e.seq,
                }));
            } else if e.seq < expected {
                report
                    .problems
                    .push(problem(ProblemKind::SequenceOutOfOrder {
                        expected,
                        found: e.seq,
                    }));
            }
        }
        if entry_hash(&e) != e.hash {
            report
                .problems
                .push(problem(ProblemKind::HashMismatch { seq: e.seq }));
        }
        if expected_prev.as_ref().is_some_and(|p| *p != e.prev_hash) {
            report
                .problems
                .push(problem(ProblemKind::ChainBroken { seq: e.seq }));
        }
        if let Some(cp) = checkpoint
            && cp.seq == e.seq
            && cp.hash != e.hash
        {
            report
                .problems
                .push(problem(ProblemKind::CheckpointMismatch { seq: cp.seq }));
        }
        max_seq = max_seq.max(e.seq);
        expected_seq = Some(e.seq + 1);
        expected_prev = Some(e.hash.clone());
        report.head = Some(Checkpoint {
            seq: e.seq,
            hash: e.hash,
        });
        Ok(())
    })?;
    if let Some(cp) = checkpoint
        && max_seq < cp.seq
    {
        report.problems.push(Problem {
            line: 0,
            kind: ProblemKind::Truncated {
                checkpoint_seq: cp.seq,
                last_seq: max_seq,
            },
        });
    }
    Ok(report)
}

//! The FHIR interactions with access control and audit, independent of HTTP: read,
//! search (with paging and `_include`), `$everything`, create/update/delete, transaction
//! and batch bundles, the citizen's audit trail, and the loader.
//!
//! Why apart from the HTTP layer: every path must make the same decisions in the same
//! order — decide per subject person, audit every decision, refuse before reading or
//! writing — and that is easiest to see and test in one place. The HTTP layer only
//! authenticates, parses headers and turns [`FhirError`] into an OperationOutcome.
//!
//! Order on every path: parse and validate (400/422, nothing decided yet) → decide per
//! person (each decision appended to the audit) → read or write → the audit lines are
//! committed (with the writes, in one transaction) before the response is returned.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use trent_access::audit::AuditEntry;
use trent_access::{
    Action, Decision, PersonId, Policy, Principal, Purpose, ReasonCode, Request, ResourceKind,
    parse_scopes,
};
use trent_fhir::records::PersonRecord;

use crate::audit::{AuditWriter, PersonSnapshot};
use crate::index::{self, SUPPORTED_TYPES, is_fhir_id, kind_of};
use crate::search;
use crate::store::{Store, StoreError, StoredResource, Write};

/// A FHIR error: HTTP status, OperationOutcome issue code, a diagnostic naming what and
/// where, and for denials the access reason code (no person data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {diagnostics}")]
pub struct FhirError {
    /// HTTP status.
    pub status: u16,
    /// OperationOutcome `issue.code` (FHIR IssueType).
    pub code: &'static str,
    /// What went wrong, and where.
    pub diagnostics: String,
    /// FHIRPath of the offending element, when known.
    pub expression: Option<String>,
    /// The access decision's reason code (403s).
    pub reason: Option<ReasonCode>,
}

impl FhirError {
    /// A new error.
    pub fn new(status: u16, code: &'static str, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
            reason: None,
        }
    }

    /// With the FHIRPath of the offending element.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    /// 403 for a denied decision.
    pub fn denied(d: &Decision) -> Self {
        FhirError {
            status: 403,
            code: "forbidden",
            diagnostics: format!("access denied ({}): {}", d.reason.code(), d.explanation),
            expression: None,
            reason: Some(d.reason),
        }
    }

    /// The OperationOutcome resource.
    pub fn outcome(&self) -> Value {
        let mut issue = json!({
            "severity": "error",
            "code": self.code,
            "diagnostics": self.diagnostics,
        });
        if let Some(e) = &self.expression {
            issue["expression"] = json!([e]);
        }
        if let Some(r) = self.reason {
            issue["details"] = json!({"coding": [{
                "system": trent_fhir::code_system("access-reason"),
                "code": r.code()
            }]});
        }
        json!({"resourceType": "OperationOutcome", "issue": [issue]})
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict { .. } => FhirError::new(412, "conflict", e.to_string()),
            StoreError::Refused(m) => FhirError::new(400, "invalid", m),
            other => FhirError::new(500, "exception", other.to_string()),
        }
    }
}

fn not_supported(res_type: &str) -> FhirError {
    FhirError::new(
        404,
        "not-supported",
        format!("resource type {res_type:?} is not served here (see /fhir/metadata)"),
    )
}

/// Who asks, why, and when — the context of one request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The authenticated principal.
    pub principal: Principal,
    /// The declared purpose of use.
    pub purpose: Purpose,
    /// The request time.
    pub now: DateTime<Utc>,
    /// Base URL of the FHIR endpoint for links (`http://host/fhir`).
    pub base: String,
    /// The access policy.
    pub policy: Policy,
}

type DecisionKey = (Option<String>, ResourceKind, Action, Option<String>);
/// A decision waiting to be chained: action, kind, subject, resource id, outcome.
type PendingDecision = (
    Action,
    ResourceKind,
    Option<PersonId>,
    Option<String>,
    Decision,
);

/// Makes the decisions of one request (each once, cached) and keeps them for the audit.
/// Decisions are made without holding the audit writer's lock; the lock is taken only to
/// chain and store the entries ([`Decider::flush`], or with the writes in `apply`).
pub(crate) struct Decider<'a> {
    ctx: &'a Ctx,
    store: &'a Store,
    pub(crate) snapshots: HashMap<String, PersonSnapshot>,
    made: HashMap<DecisionKey, Decision>,
    pending: Vec<PendingDecision>,
}

impl<'a> Decider<'a> {
    pub(crate) fn new(ctx: &'a Ctx, store: &'a Store) -> Self {
        Decider {
            ctx,
            store,
            snapshots: HashMap::new(),
            made: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Decides (and audits) `action` on `kind` about `person`; `resource_id` is recorded.
    pub(crate) async fn decide(
        &mut self,
        action: Action,
        kind: ResourceKind,
        person: Option<&str>,
        resource_id: Option<&str>,
    ) -> Result<Decision, FhirError> {
        let key = (
            person.map(str::to_string),
            kind,
            action,
            resource_id.map(str::to_string),
        );
        if let Some(d) = self.made.get(&key) {
            return Ok(d.clone());
        }
        let subject =
            match person {
                None => None,
                Some(p) => Some(PersonId::new(p).map_err(|e| {
                    FhirError::new(500, "exception", format!("stored person id: {e}"))
                })?),
            };
        let req = Request {
            principal: &self.ctx.principal,
            action,
            kind,
            subject: subject.as_ref(),
            purpose: &self.ctx.purpose,
        };
        let decision = match &subject {
            None => self.ctx.policy.decide(
                &req,
                self.ctx.now,
                &trent_access::InMemoryRelationships::new(),
            ),
            Some(s) => {
                if !self.snapshots.contains_key(s.as_str()) {
                    let snap = PersonSnapshot::load(self.store, s, self.ctx.now).await;
                    self.snapshots.insert(s.to_string(), snap);
                }
                self.ctx
                    .policy
                    .decide(&req, self.ctx.now, &self.snapshots[s.as_str()])
            }
        };
        self.pending.push((
            action,
            kind,
            subject.clone(),
            resource_id.map(str::to_string),
            decision.clone(),
        ));
        self.made.insert(key, decision.clone());
        Ok(decision)
    }

    /// Loads the relationship facts of many persons at once before deciding about each (a
    /// bundle about hundreds of people). A failed load is left to [`Decider::decide`],
    /// which loads that person alone and fails closed.
    pub(crate) async fn prefetch<'p>(&mut self, persons: impl Iterator<Item = &'p str>) {
        let mut wanted: Vec<&str> = persons
            .filter(|p| !self.snapshots.contains_key(*p))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.len() < 2 {
            return;
        }
        if let Ok(mut found) = self.store.person_facts_many(&wanted).await {
            for p in wanted {
                if let (Ok(id), Some(f)) = (PersonId::new(p), found.remove(p)) {
                    self.snapshots
                        .insert(p.to_string(), PersonSnapshot::new(id, f));
                }
            }
        }
    }

    /// Chains the decisions made so far into the writer (not yet stored).
    fn record_into(&mut self, w: &mut AuditWriter) -> Result<(), FhirError> {
        for (action, kind, subject, resource_id, decision) in self.pending.drain(..) {
            let req = Request {
                principal: &self.ctx.principal,
                action,
                kind,
                subject: subject.as_ref(),
                purpose: &self.ctx.purpose,
            };
            w.record(&req, resource_id.as_deref(), &decision, self.ctx.now)?;
        }
        Ok(())
    }

    /// Stores the decisions made so far in the audit (reads and denials change nothing
    /// else); returns only once they are committed.
    ///
    /// Group commit: the decisions join a queue; whoever next holds the audit writer
    /// chains *every* queued request's entries and commits them in one transaction, then
    /// answers each. Under load one commit (on PostgreSQL one fsync) serves all the reads
    /// that arrived while the previous one was being written, instead of each read
    /// waiting for its own in turn. The commit runs in a task of its own holding the
    /// writer, so a request abandoned by its client cannot cut a commit off half-way and
    /// leave the in-memory chain ahead of the stored one.
    pub(crate) async fn flush(&mut self) -> Result<(), FhirError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (done, mut answer) = tokio::sync::oneshot::channel();
        self.store
            .audit_queue
            .lock()
            .expect("the audit queue lock is never held across a panic")
            .push(QueuedAudit {
                principal: self.ctx.principal.clone(),
                purpose: self.ctx.purpose.clone(),
                now: self.ctx.now,
                decisions: std::mem::take(&mut self.pending),
                done,
            });
        let guard = self.store.audit_writer.clone().lock_owned().await;
        match answer.try_recv() {
            // an earlier holder committed ours with its group
            Ok(r) => return r,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                tokio::spawn(group_commit(self.store.clone(), guard));
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                return Err(abandoned());
            }
        }
        answer.await.map_err(|_| abandoned())?
    }
}

fn abandoned() -> FhirError {
    FhirError::new(500, "exception", "the audit commit was abandoned")
}

/// One request's decisions waiting in the audit queue, with who made them and why.
#[derive(Debug)]
pub(crate) struct QueuedAudit {
    principal: Principal,
    purpose: Purpose,
    now: DateTime<Utc>,
    decisions: Vec<PendingDecision>,
    done: tokio::sync::oneshot::Sender<Result<(), FhirError>>,
}

/// Chains and commits every queued request's decisions in one transaction, then answers
/// each request with the outcome (all stored, or none and the error).
async fn group_commit(store: Store, mut guard: tokio::sync::OwnedMutexGuard<Option<AuditWriter>>) {
    let batch = std::mem::take(
        &mut *store
            .audit_queue
            .lock()
            .expect("the audit queue lock is never held across a panic"),
    );
    if batch.is_empty() {
        return;
    }
    let result = async {
        if guard.is_none() {
            *guard = Some(AuditWriter::open(&store).await?);
        }
        let w = guard.as_mut().expect("opened");
        let mut chained = Ok(());
        'chain: for q in &batch {
            for (action, kind, subject, resource_id, decision) in &q.decisions {
                let req = Request {
                    principal: &q.principal,
                    action: *action,
                    kind: *kind,
                    subject: subject.as_ref(),
                    purpose: &q.purpose,
                };
                if let Err(e) = w.record(&req, resource_id.as_deref(), decision, q.now) {
                    chained = Err(e);
                    break 'chain;
                }
            }
        }
        match chained {
            Ok(()) => w.flush(&store).await,
            Err(e) => {
                w.reload(&store).await?;
                Err(e)
            }
        }
    }
    .await
    .map_err(FhirError::from);
    for q in batch {
        // a request whose client went away no longer listens; its lines are stored anyway
        let _ = q.done.send(result.clone());
    }
}

/// A resource's person: itself for a Patient, else the stored person.
fn person_of(r: &StoredResource) -> Option<String> {
    if r.res_type == "Patient" {
        Some(r.id.clone())
    } else {
        r.person.clone()
    }
}

/// A new resource id: a UUID version 7 (RFC 9562), 48 bits of Unix milliseconds, a 12-bit
/// counter within the millisecond, and 62 random bits from the OS generator.
///
/// Why not version 4: every table keyed by the id (the resource, its history, the search
/// indexes' owner columns) is a B-tree, and random keys scatter a bundle's inserts over
/// all its pages, so each write dirties and splits pages everywhere and the commit writes
/// them all. Time-ordered ids append at the right edge of each tree. Ids stay unguessable
/// (62 random bits) and reveal only their creation time, which `meta.lastUpdated` of the
/// first version shows anyway.
pub fn new_id() -> Result<String, FhirError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    // the last (milliseconds << 12 | counter) handed out: ids are strictly increasing
    // within the process even when many are made in one millisecond
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut prev = LAST.load(Ordering::Relaxed);
    let stamp = loop {
        let next = (now_ms << 12).max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    let mut b = [0u8; 16];
    random_bytes(&mut b[8..])
        .map_err(|e| FhirError::new(500, "exception", format!("random generator: {e}")))?;
    let ms = stamp >> 12;
    let counter = stamp & 0xfff;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (counter >> 8) as u8;
    b[7] = (counter & 0xff) as u8;
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 lower-case hex digits
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 15)]));
    }
    Ok(out)
}

/// Fills `out` from the operating system's generator, a few kilobytes per system call
/// (kept per thread) rather than one call per id: a bundle assigns a thousand ids.
fn random_bytes(out: &mut [u8]) -> Result<(), getrandom::Error> {
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        // the unused bytes are `pool[used..]`
        static POOL_BYTES: RefCell<(Box<[u8; POOL]>, usize)> =
            RefCell::new((Box::new([0; POOL]), POOL));
    }
    POOL_BYTES.with_borrow_mut(|(pool, used)| {
        if *used + out.len() > POOL {
            getrandom::fill(&mut pool[..])?;
            *used = 0;
        }
        out.copy_from_slice(&pool[*used..*used + out.len()]);
        // the bytes handed out are not kept
        pool[*used..*used + out.len()].fill(0);
        *used += out.len();
        Ok(())
    })
}

fn http_date(t: &str) -> String {
    DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&Utc)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
        })
        .unwrap_or_default()
}

/// A read's answer: the resource and its version for `ETag`/`Last-Modified`.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The resource.
    pub body: Value,
    /// Version.
    pub version: i64,
    /// `Last-Modified` (HTTP date).
    pub last_modified: String,
}

/// A write's answer.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// 200 or 201.
    pub status: u16,
    /// The stored resource.
    pub body: Value,
    /// `Type/id/_history/v`.
    pub location: String,
    /// Version.
    pub version: i64,
}

/// What a loader call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Resources created.
    pub created: usize,
    /// Resources changed (new version).
    pub updated: usize,
    /// Resources already current (nothing written).
    pub unchanged: usize,
}

/// Builds the inbox record of a message from the planned writes (same transaction).
pub(crate) type InboxFn<'a> = dyn Fn(&[Plan]) -> crate::messaging::InboxRecord + Send + Sync + 'a;

impl Store {
    pub(crate) async fn writer(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<AuditWriter>>, FhirError> {
        let mut g = self.audit_writer.lock().await;
        if g.is_none() {
            *g = Some(AuditWriter::open(self).await?);
        }
        Ok(g)
    }

    /// `GET [type]/[id]`.
    pub async fn read(&self, ctx: &Ctx, res_type: &str, id: &str) -> Result<ReadResult, FhirError> {
        let kind = kind_of(res_type).ok_or_else(|| not_supported(res_type))?;
        let stored = if is_fhir_id(id) {
            self.get(res_type, id).await?
        } else {
            None
        };
        let mut d = Decider::new(ctx, self);
        let Some(r) = stored else {
            let dec = d.decide(Action::Read, kind, None, Some(id)).await?;
            d.flush().await?;
            if !dec.allow {
                return Err(FhirError::denied(&dec));
            }
            return Err(FhirError::new(
                404,
                "not-found",
                format!("{res_type}/{id} is not known"),
            ));
        };
        let dec = d
            .decide(Action::Read, kind, person_of(&r).as_deref(), Some(id))
            .await?;
        d.flush().await?;
        if !dec.allow {
            return Err(FhirError::denied(&dec));
        }
        if r.deleted {
            return Err(FhirError::new(
                410,
                "deleted",
                format!("{res_type}/{id} was deleted"),
            ));
        }
        Ok(ReadResult {
            last_modified: http_date(&r.last_updated),
            version: r.version,
            body: r.json,
        })
    }

    /// `GET [type]?…`: a searchset Bundle of what the principal may see.
    pub async fn search_fhir(
        &self,
        ctx: &Ctx,
        res_type: &str,
        pairs: &[(String, String)],
        search_cap: usize,
    ) -> Result<Value, FhirError> {
        if res_type == "AuditEvent" {
            return self.audit_events(ctx, pairs).await;
        }
        let kind = kind_of(res_type).ok_or_else(|| not_supported(res_type))?;
        let req = search::parse(res_type, pairs)
            .map_err(|e| FhirError::new(400, "invalid", e.to_string()).at(e.param.clone()))?;
        let mut d = Decider::new(ctx, self);
        // A search about one person is one decision; a search across people is decided
        // per person found, after a first decision without a subject that refuses roles
        // which may not search this kind at all (analysts, administrators).
        let mut clauses = req.clauses.clone();
        if let Some(p) = &req.subject {
            let dec = d.decide(Action::Search, kind, Some(p), None).await?;
            if !dec.allow {
                d.flush().await?;
                return Err(FhirError::denied(&dec));
            }
            if res_type == "Patient" {
                clauses.push(search::Clause::Id(vec![p.clone()]));
            }
        } else {
            let dec = d.decide(Action::Search, kind, None, None).await?;
            if !dec.allow && dec.reason != ReasonCode::SubjectRequired {
                d.flush().await?;
                return Err(FhirError::denied(&dec));
            }
        }
        let found = self.search(res_type, &clauses, search_cap + 1).await?;
        if found.len() > search_cap {
            d.flush().await?;
            return Err(FhirError::new(
                400,
                "too-costly",
                format!(
                    "more than {search_cap} {res_type} resources match; narrow the search (e.g. by patient)"
                ),
            ));
        }
        let mut visible = Vec::with_capacity(found.len());
        for k in found {
            let dec = d
                .decide(Action::Search, kind, k.person.as_deref(), None)
                .await?;
            if dec.allow {
                visible.push(k);
            }
        }
        let total = visible.len();
        let page: Vec<StoredResource> = visible
            .into_iter()
            .skip(req.offset)
            .take(req.count)
            .map(crate::store::SearchHit::into_resource)
            .collect::<Result<_, _>>()?;
        let mut entries: Vec<Value> = page
            .iter()
            .map(|r| {
                json!({
                    "fullUrl": format!("{}/{}/{}", ctx.base, r.res_type, r.id),
                    "resource": r.json,
                    "search": {"mode": "match"}
                })
            })
            .collect();
        // _include: the referenced resources, each decided for its own person.
        let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
        let mut seen: HashSet<(String, String)> = page
            .iter()
            .map(|r| (r.res_type.clone(), r.id.clone()))
            .collect();
        for inc in &req.includes {
            let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (_, t, id) in self.references_from(res_type, &ids, inc.param).await? {
                if inc.target.as_ref().is_none_or(|x| *x == t)
                    && seen.insert((t.clone(), id.clone()))
                {
                    by_type.entry(t).or_default().push(id);
                }
            }
            for (t, ids) in by_type {
                let Some(k) = kind_of(&t) else { continue };
                for r in self.get_many(&t, &ids).await? {
                    let dec = d
                        .decide(Action::Read, k, person_of(&r).as_deref(), Some(&r.id))
                        .await?;
                    if dec.allow {
                        entries.push(json!({
                            "fullUrl": format!("{}/{}/{}", ctx.base, r.res_type, r.id),
                            "resource": r.json,
                            "search": {"mode": "include"}
                        }));
                    }
                }
            }
        }
        d.flush().await?;
        let link = |offset: usize| {
            let q = if req.canonical.is_empty() {
                String::new()
            } else {
                format!("{}&", req.canonical)
            };
            format!("{}/{}?{}_offset={}", ctx.base, res_type, q, offset)
        };
        let mut links = vec![json!({"relation": "self", "url": link(req.offset)})];
        if req.count > 0 && req.offset + req.count < total {
            links.push(json!({"relation": "next", "url": link(req.offset + req.count)}));
        }
        if req.offset > 0 {
            links.push(json!({"relation": "previous", "url": link(req.offset.saturating_sub(req.count.max(1)))}));
        }
        Ok(json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": entries,
        }))
    }

    /// `GET Patient/[id]/$everything`: the person's whole record, each kind decided.
    pub async fn everything(&self, ctx: &Ctx, id: &str) -> Result<Value, FhirError> {
        let patient = if is_fhir_id(id) {
            self.get("Patient", id).await?
        } else {
            None
        };
        let mut d = Decider::new(ctx, self);
        let Some(p) = patient.filter(|p| !p.deleted) else {
            let dec = d
                .decide(Action::Read, ResourceKind::Patient, None, Some(id))
                .await?;
            d.flush().await?;
            if !dec.allow {
                return Err(FhirError::denied(&dec));
            }
            return Err(FhirError::new(
                404,
                "not-found",
                format!("Patient/{id} is not known"),
            ));
        };
        let dec = d
            .decide(Action::Read, ResourceKind::Patient, Some(id), Some(id))
            .await?;
        if !dec.allow {
            d.flush().await?;
            return Err(FhirError::denied(&dec));
        }
        let mut entries = vec![
            json!({"fullUrl": format!("{}/Patient/{}", ctx.base, id), "resource": p.json, "search": {"mode": "match"}}),
        ];
        for t in SUPPORTED_TYPES.iter().skip(1) {
            let k = kind_of(t).expect("supported");
            let dec = d.decide(Action::Search, k, Some(id), None).await?;
            if !dec.allow {
                continue;
            }
            for r in self.by_person(id, &[t]).await? {
                entries.push(json!({"fullUrl": format!("{}/{}/{}", ctx.base, r.res_type, r.id), "resource": r.json, "search": {"mode": "match"}}));
            }
        }
        d.flush().await?;
        Ok(
            json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}),
        )
    }

    /// `GET AuditEvent?patient=[id]`: every access decision about a person's record.
    async fn audit_events(
        &self,
        ctx: &Ctx,
        pairs: &[(String, String)],
    ) -> Result<Value, FhirError> {
        let mut person = None;
        for (k, v) in pairs {
            match k.as_str() {
                "patient" | "entity" => {
                    let id = v.strip_prefix("Patient/").unwrap_or(v);
                    if !is_fhir_id(id) {
                        return Err(FhirError::new(
                            400,
                            "invalid",
                            format!("{v:?} is not a Patient reference"),
                        )
                        .at(k.clone()));
                    }
                    person = Some(id.to_string());
                }
                "_format" => {}
                other => {
                    return Err(FhirError::new(
                        400,
                        "invalid",
                        "AuditEvent supports only the patient parameter",
                    )
                    .at(other.to_string()));
                }
            }
        }
        let person = person.ok_or_else(|| {
            FhirError::new(400, "required", "AuditEvent search needs patient=[id]").at("patient")
        })?;
        let mut d = Decider::new(ctx, self);
        let dec = d
            .decide(
                Action::Search,
                ResourceKind::AuditEvent,
                Some(&person),
                None,
            )
            .await?;
        d.flush().await?;
        if !dec.allow {
            return Err(FhirError::denied(&dec));
        }
        let entries: Vec<Value> = self
            .audit_for_person(&person)
            .await?
            .iter()
            .map(|e| json!({"fullUrl": format!("{}/AuditEvent/{}", ctx.base, e.seq), "resource": audit_event(e), "search": {"mode": "match"}}))
            .collect();
        Ok(
            json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}),
        )
    }

    /// A citizen shares part of their record with a carer's account (`Consent` create,
    /// decided and audited). `person` defaults to the principal's own person.
    pub async fn grant_carer(
        &self,
        ctx: &Ctx,
        person: Option<&str>,
        carer: &str,
        kinds: &[String],
        expires: Option<DateTime<Utc>>,
    ) -> Result<Value, FhirError> {
        let person = person
            .map(str::to_string)
            .or_else(|| ctx.principal.person.as_ref().map(|p| p.to_string()))
            .ok_or_else(|| FhirError::new(400, "required", "patient is required").at("patient"))?;
        let mut d = Decider::new(ctx, self);
        let dec = d
            .decide(Action::Create, ResourceKind::Consent, Some(&person), None)
            .await?;
        d.flush().await?;
        if !dec.allow {
            return Err(FhirError::denied(&dec));
        }
        let carer_id = trent_access::UserId::new(carer)
            .map_err(|e| FhirError::new(422, "value", e.to_string()).at("carer"))?;
        match self.account(carer).await? {
            Some((a, _)) if a.role == trent_access::Role::Carer && !a.disabled => {}
            _ => {
                return Err(FhirError::new(
                    422,
                    "value",
                    format!("{carer:?} is not an active carer account"),
                )
                .at("carer"));
            }
        }
        let kinds = kinds
            .iter()
            .map(|k| {
                kind_of(k).ok_or_else(|| {
                    FhirError::new(
                        422,
                        "value",
                        format!("{k:?} is not a kind of record that can be shared"),
                    )
                    .at("kinds")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if kinds.is_empty() {
            return Err(FhirError::new(
                422,
                "required",
                "kinds must name at least one resource type",
            )
            .at("kinds"));
        }
        let grant = trent_access::CarerGrant {
            carer: carer_id,
            kinds,
            expires,
            revoked: None,
        };
        let id = new_id()?;
        let pid =
            PersonId::new(&person).map_err(|e| FhirError::new(400, "value", e.to_string()))?;
        self.put_carer_grant(&id, &pid, &grant).await?;
        Ok(grant_json(&id, &grant))
    }

    /// A citizen's carer grants (`Consent` search, decided and audited).
    pub async fn list_carer_grants(
        &self,
        ctx: &Ctx,
        person: Option<&str>,
    ) -> Result<Value, FhirError> {
        let person = person
            .map(str::to_string)
            .or_else(|| ctx.principal.person.as_ref().map(|p| p.to_string()))
            .ok_or_else(|| FhirError::new(400, "required", "patient is required").at("patient"))?;
        let mut d = Decider::new(ctx, self);
        let dec = d
            .decide(Action::Search, ResourceKind::Consent, Some(&person), None)
            .await?;
        d.flush().await?;
        if !dec.allow {
            return Err(FhirError::denied(&dec));
        }
        let grants = self.carer_grants_of(&person).await?;
        Ok(json!({"grants": grants.iter().map(|(id, g)| grant_json(id, g)).collect::<Vec<_>>()}))
    }

    /// Revokes a carer grant now (`Consent` update of the grant's person, decided and audited).
    pub async fn revoke_carer(&self, ctx: &Ctx, grant_id: &str) -> Result<(), FhirError> {
        let person = if is_fhir_id(grant_id) {
            self.carer_grant_person(grant_id).await?
        } else {
            None
        };
        let mut d = Decider::new(ctx, self);
        let dec = d
            .decide(
                Action::Update,
                ResourceKind::Consent,
                person.as_deref(),
                None,
            )
            .await?;
        d.flush().await?;
        if !dec.allow {
            return Err(FhirError::denied(&dec));
        }
        if person.is_none() || !self.revoke_carer_grant(grant_id, ctx.now).await? {
            return Err(FhirError::new(
                404,
                "not-found",
                format!("carer grant {grant_id} is not known"),
            ));
        }
        Ok(())
    }

    /// `POST [type]`.
    pub async fn create(
        &self,
        ctx: &Ctx,
        res_type: &str,
        body: Value,
    ) -> Result<WriteResult, FhirError> {
        let entry = json!({"resource": body, "request": {"method": "POST", "url": res_type}});
        self.single(ctx, entry, None).await
    }

    /// `PUT [type]/[id]` (create or update; `if_match` is the `If-Match` version).
    pub async fn update(
        &self,
        ctx: &Ctx,
        res_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> Result<WriteResult, FhirError> {
        let entry = json!({"resource": body, "request": {"method": "PUT", "url": format!("{res_type}/{id}")}});
        self.single(ctx, entry, if_match).await
    }

    /// `DELETE [type]/[id]` (person records are never deleted: the decision refuses).
    pub async fn delete(
        &self,
        ctx: &Ctx,
        res_type: &str,
        id: &str,
    ) -> Result<WriteResult, FhirError> {
        let entry = json!({"request": {"method": "DELETE", "url": format!("{res_type}/{id}")}});
        self.single(ctx, entry, None).await
    }

    async fn single(
        &self,
        ctx: &Ctx,
        entry: Value,
        if_match: Option<i64>,
    ) -> Result<WriteResult, FhirError> {
        let mut guard = self.writer().await?;
        let w = guard.as_mut().expect("opened");
        let mut results = self
            .apply(ctx, w, vec![entry], Mode::Transaction, if_match, "")
            .await?;
        Ok(results.remove(0))
    }

    /// `POST /` with a transaction or batch Bundle; returns the response Bundle.
    pub async fn bundle(&self, ctx: &Ctx, mut bundle: Value) -> Result<Value, FhirError> {
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(
                FhirError::new(400, "structure", "the body must be a Bundle")
                    .at("Bundle.resourceType"),
            );
        }
        let ty = bundle
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let entries = match bundle.get_mut("entry").map(Value::take) {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(
                    FhirError::new(400, "structure", "Bundle.entry must be an array")
                        .at("Bundle.entry"),
                );
            }
        };
        match ty.as_str() {
            "transaction" => {
                let mut guard = self.writer().await?;
                let w = guard.as_mut().expect("opened");
                let results = self
                    .apply(ctx, w, entries, Mode::Transaction, None, "Bundle.")
                    .await?;
                Ok(json!({
                    "resourceType": "Bundle",
                    "type": "transaction-response",
                    "entry": results.into_iter().map(response_entry).collect::<Vec<_>>(),
                }))
            }
            "batch" => {
                let mut out = Vec::with_capacity(entries.len());
                for (i, e) in entries.into_iter().enumerate() {
                    let mut guard = self.writer().await?;
                    let w = guard.as_mut().expect("opened");
                    let r = self
                        .apply(
                            ctx,
                            w,
                            vec![e],
                            Mode::Batch,
                            None,
                            &format!("Bundle.entry[{i}]."),
                        )
                        .await;
                    out.push(match r {
                        Ok(mut v) => response_entry(v.remove(0)),
                        Err(e) => json!({"response": {"status": e.status.to_string(), "outcome": e.outcome()}}),
                    });
                }
                Ok(json!({"resourceType": "Bundle", "type": "batch-response", "entry": out}))
            }
            other => Err(FhirError::new(
                400,
                "invalid",
                format!("Bundle.type {other:?}: expected transaction or batch"),
            )
            .at("Bundle.type")),
        }
    }

    /// Loads one person's record from trent's rows (the lake and vault), as the trent-fhir
    /// transaction bundle, idempotently: resource ids are trent-fhir's deterministic
    /// UUIDs, the Patient is matched on NHS number, and unchanged resources get no new
    /// version. The changes are audited as the system principal `trent-loader`.
    pub async fn load_person(&self, rec: &PersonRecord<'_>) -> Result<LoadReport, FhirError> {
        self.load_people(std::slice::from_ref(rec)).await
    }

    /// [`Store::load_person`] for several people in one database transaction (all or
    /// none): the loader's bulk path, since each commit rewrites the pages of every table
    /// it touches, fewer and larger commits load many times faster.
    pub async fn load_people(&self, recs: &[PersonRecord<'_>]) -> Result<LoadReport, FhirError> {
        let mut entries = Vec::new();
        for rec in recs {
            if let Some(mut bundle) = trent_fhir::bundle::transaction(rec)
                && let Some(Value::Array(e)) = bundle.get_mut("entry").map(Value::take)
            {
                entries.extend(e);
            }
        }
        if entries.is_empty() {
            return Ok(LoadReport::default());
        }
        let mut principal = Principal::new(
            trent_access::UserId::new("trent-loader").expect("valid id"),
            trent_access::Role::System,
        );
        principal.scopes = Some(parse_scopes("system/*.cru").expect("valid scopes"));
        let ctx = Ctx {
            principal,
            purpose: Purpose::DirectCare,
            now: Utc::now(),
            base: String::new(),
            policy: Policy::default(),
        };
        let mut guard = self.writer().await?;
        let w = guard.as_mut().expect("opened");
        let results = self
            .apply(&ctx, w, entries, Mode::Load, None, "Bundle.")
            .await?;
        let mut report = LoadReport::default();
        for r in &results {
            match r.status {
                201 => report.created += 1,
                204 => report.unchanged += 1,
                _ => report.updated += 1,
            }
        }
        Ok(report)
    }

    /// Plans, decides and commits entries atomically.
    async fn apply(
        &self,
        ctx: &Ctx,
        w: &mut AuditWriter,
        entries: Vec<Value>,
        mode: Mode,
        if_match: Option<i64>,
        prefix: &str,
    ) -> Result<Vec<WriteResult>, FhirError> {
        self.apply_with(ctx, w, entries, mode, if_match, prefix, None)
            .await
    }

    /// [`Store::apply`], recording `inbox(plans)` in the same database transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_with(
        &self,
        ctx: &Ctx,
        w: &mut AuditWriter,
        entries: Vec<Value>,
        mode: Mode,
        if_match: Option<i64>,
        prefix: &str,
        inbox: Option<&InboxFn<'_>>,
    ) -> Result<Vec<WriteResult>, FhirError> {
        let mut t = crate::trace::Steps::start(|| format!("write of {} entries", entries.len()));
        let plans = self.plan(entries, mode, if_match, prefix).await?;
        crate::trace::step(&mut t, "plan");
        let record = inbox.map(|f| f(&plans));
        // What each entry's decisions need (who the resource is about, before and after),
        // so that the writes can go to the database now: their inserts run while the
        // entries are decided and audited, and are committed only if every one is allowed.
        struct Ask {
            index: usize,
            action: Action,
            kind: ResourceKind,
            id: String,
            persons: Vec<Option<String>>,
        }
        let mut prefetch: Vec<String> = Vec::new();
        let mut asks = Vec::with_capacity(plans.len());
        let mut writes: Vec<Write> = Vec::with_capacity(plans.len());
        for p in plans {
            let w = p.write;
            prefetch.extend(w.extracted.person.iter().chain(&p.old_person).cloned());
            let persons = if w.delete {
                vec![p.old_person]
            } else if p.exists && p.old_person != w.extracted.person {
                vec![w.extracted.person.clone(), p.old_person]
            } else {
                vec![w.extracted.person.clone()]
            };
            asks.push(Ask {
                index: p.index,
                action: p.action,
                kind: kind_of(&w.res_type).expect("planned types are supported"),
                id: w.id.clone(),
                persons,
            });
            writes.push(w);
        }
        let commit = self.start_commit(writes, ctx.now);
        // Decide every entry; audit every decision; refuse the whole transaction on any denial.
        let decided = async {
            let mut d = Decider::new(ctx, self);
            d.prefetch(prefetch.iter().map(String::as_str)).await;
            let mut denial = None;
            for a in &asks {
                for person in &a.persons {
                    let dec = d
                        .decide(a.action, a.kind, person.as_deref(), Some(&a.id))
                        .await?;
                    if !dec.allow && denial.is_none() {
                        denial =
                            Some(FhirError::denied(&dec).at(format!("{prefix}entry[{}]", a.index)));
                    }
                }
            }
            d.record_into(w)?;
            Ok::<_, FhirError>(denial)
        }
        .await;
        let denial = match decided {
            Ok(denial) => denial,
            Err(e) => {
                commit.abandon().await;
                return Err(e);
            }
        };
        if let Some(e) = denial {
            commit.abandon().await;
            w.flush(self).await?;
            return Err(e);
        }
        let rows = w.take();
        crate::trace::step(&mut t, "decide and chain audit");
        let finish = crate::store::Finish {
            audit: rows,
            inbox: record,
        };
        let (writes, outcomes) = match commit.finish(finish).await {
            Ok(x) => {
                w.committed();
                x
            }
            Err(e) => {
                w.reload(self).await?;
                return Err(e.into());
            }
        };
        crate::trace::step(&mut t, "commit");
        let mut results = Vec::with_capacity(writes.len());
        for (wr, o) in writes.into_iter().zip(outcomes) {
            let mut body = wr.json;
            crate::store::set_meta(&mut body, &wr.id, o.version, &o.last_updated);
            let status = if wr.delete || (o.unchanged && mode == Mode::Load) {
                204
            } else if o.created {
                201
            } else {
                200
            };
            results.push(WriteResult {
                status,
                body: if wr.delete { Value::Null } else { body },
                location: format!("{}/{}/_history/{}", wr.res_type, wr.id, o.version),
                version: o.version,
            });
        }
        crate::trace::step(&mut t, "results");
        crate::trace::done(t);
        Ok(results)
    }

    /// Parses entries, assigns ids, resolves `urn:uuid:` references, validates, and checks
    /// that every reference resolves — all before any decision or write.
    async fn plan(
        &self,
        entries: Vec<Value>,
        mode: Mode,
        if_match: Option<i64>,
        prefix: &str,
    ) -> Result<Vec<Plan>, FhirError> {
        let bad = |i: usize, path: &str, msg: String| {
            FhirError::new(400, "structure", msg).at(format!("{prefix}entry[{i}]{path}"))
        };
        struct Parsed {
            method: String,
            res_type: String,
            id: String,
            resource: Option<Value>,
            exists: Option<StoredResource>,
            if_match: Option<i64>,
            fresh: bool,
        }
        let mut parsed = Vec::with_capacity(entries.len());
        let mut urls: HashMap<String, String> = HashMap::new();
        let mut claimed: HashSet<(String, String)> = HashSet::new();
        // the resources entries name by id, read in a few queries up front
        let mut keys = Vec::new();
        for e in &entries {
            let url = e["request"]["url"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/');
            let segs: Vec<&str> = url.split('/').collect();
            let id = match (e["request"]["method"].as_str(), segs.len()) {
                (Some("POST"), 1) => e["fullUrl"]
                    .as_str()
                    .and_then(|u| u.strip_prefix("urn:uuid:")),
                (Some("PUT" | "DELETE"), 2) => Some(segs[1]),
                _ => None,
            };
            if let Some(id) = id.filter(|id| is_fhir_id(id) && !url.contains('?')) {
                keys.push((segs[0].to_string(), id.to_string()));
            }
        }
        let known = self.get_all(&keys).await?;
        let lookup = |t: &str, id: &str| known.get(&(t.to_string(), id.to_string())).cloned();
        for (i, mut e) in entries.into_iter().enumerate() {
            if !e.is_object() {
                return Err(bad(i, "", "a Bundle entry must be an object".into()));
            }
            // the resource moves out of its entry: a bundle's resources are not copied
            let resource = e.get_mut("resource").map(Value::take);
            let request = e.get("request").filter(|r| r.is_object()).ok_or_else(|| {
                bad(
                    i,
                    ".request",
                    "is required in a transaction or batch".into(),
                )
            })?;
            let method = request
                .get("method")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(i, ".request.method", "is required".into()))?;
            let url = request
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(i, ".request.url", "is required".into()))?;
            let entry_if_match = match request.get("ifMatch").and_then(Value::as_str) {
                None => if_match,
                Some(s) => Some(parse_etag(s).ok_or_else(|| {
                    bad(
                        i,
                        ".request.ifMatch",
                        format!("{s:?} is not an ETag W/\"n\""),
                    )
                })?),
            };
            let url = url.trim_start_matches('/');
            let full_url = e.get("fullUrl").and_then(Value::as_str);
            let (path, query) = match url.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (url, None),
            };
            let segs: Vec<&str> = path.split('/').collect();
            let res_type = segs[0].to_string();
            if kind_of(&res_type).is_none() {
                return Err(not_supported(&res_type).at(format!("{prefix}entry[{i}].request.url")));
            }
            let mut fresh = false; // an id this server assigns now
            let (id, exists) = match (method, segs.len(), query) {
                ("POST", 1, None) => {
                    let wanted = full_url
                        .and_then(|u| u.strip_prefix("urn:uuid:"))
                        .filter(|u| is_fhir_id(u));
                    let existing = wanted.and_then(|u| lookup(&res_type, u));
                    match (wanted, mode) {
                        // The loader's ids are deterministic: re-loading updates in place.
                        (Some(u), Mode::Load) => (u.to_string(), existing),
                        (Some(u), _)
                            if existing.is_none()
                                && !claimed.contains(&(res_type.clone(), u.to_string())) =>
                        {
                            (u.to_string(), None)
                        }
                        _ => {
                            fresh = true;
                            (new_id()?, None)
                        }
                    }
                }
                ("PUT", 2, None) | ("DELETE", 2, None) => {
                    let id = segs[1];
                    if !is_fhir_id(id) {
                        return Err(bad(i, ".request.url", format!("{id:?} is not a FHIR id")));
                    }
                    (id.to_string(), lookup(&res_type, id))
                }
                ("PUT", 1, Some(q)) => {
                    // Conditional update, on a Patient identifier (as trent-fhir sends).
                    let (k, v) = q.split_once('=').unwrap_or((q, ""));
                    let v = percent_decode(v);
                    let (system, value) = v.split_once('|').unwrap_or(("", v.as_str()));
                    if res_type != "Patient" || k != "identifier" || system.is_empty() {
                        return Err(FhirError::new(400, "not-supported", format!("conditional update {url:?}: only Patient?identifier=system|value is supported")).at(format!("{prefix}entry[{i}].request.url")));
                    }
                    let value = if system == trent_fhir::NHS_NUMBER {
                        trent_model::nhs_number::validate(value).map_err(|e| {
                            FhirError::new(
                                422,
                                "value",
                                format!("{value:?} is not a valid NHS number: {e}"),
                            )
                            .at(format!("{prefix}entry[{i}].request.url"))
                        })?
                    } else {
                        value.to_string()
                    };
                    match self.patient_by_identifier(system, &value).await? {
                        Some(id) => {
                            let ex = self.get("Patient", &id).await?;
                            (id, ex)
                        }
                        None => {
                            let wanted = full_url
                                .and_then(|u| u.strip_prefix("urn:uuid:"))
                                .filter(|u| is_fhir_id(u));
                            match wanted {
                                Some(u) if self.get("Patient", u).await?.is_none() => {
                                    (u.to_string(), None)
                                }
                                _ => {
                                    fresh = true;
                                    (new_id()?, None)
                                }
                            }
                        }
                    }
                }
                (m, _, _) => {
                    return Err(FhirError::new(400, "not-supported", format!("{m} {url}: supported are POST [type], PUT [type]/[id], PUT Patient?identifier=…, DELETE [type]/[id]")).at(format!("{prefix}entry[{i}].request")));
                }
            };
            if !claimed.insert((res_type.clone(), id.clone())) {
                return Err(bad(
                    i,
                    ".request.url",
                    format!("{res_type}/{id} appears twice in the bundle"),
                ));
            }
            if let Some(u) = full_url
                && u.starts_with("urn:uuid:")
                && urls
                    .insert(u.to_string(), format!("{res_type}/{id}"))
                    .is_some()
            {
                {
                    return Err(bad(
                        i,
                        ".fullUrl",
                        format!("{u} appears twice in the bundle"),
                    ));
                }
            }
            if method != "DELETE" && resource.is_none() {
                return Err(bad(i, ".resource", format!("is required for {method}")));
            }
            parsed.push(Parsed {
                method: method.to_string(),
                res_type,
                id,
                resource,
                exists,
                if_match: entry_if_match,
                fresh,
            });
        }
        let in_bundle: HashSet<String> = parsed
            .iter()
            .filter(|p| p.method != "DELETE")
            .map(|p| format!("{}/{}", p.res_type, p.id))
            .collect();
        let mut plans = Vec::with_capacity(parsed.len());
        // References to resources outside the bundle, checked together once every entry is
        // planned (a bundle of observations names a few hundred patients: one query per
        // hundred, not one read each): (plan index, element, type, id).
        let mut to_check: Vec<(usize, String, String, String)> = Vec::new();
        for (i, p) in parsed.into_iter().enumerate() {
            // A single-resource interaction names the element from the resource itself.
            let res_type = p.res_type.clone();
            let at = |path: &str| {
                if prefix.is_empty() {
                    format!("{res_type}{path}")
                } else {
                    format!("{prefix}entry[{i}].resource{path}")
                }
            };
            let old_person = p.exists.as_ref().filter(|r| !r.deleted).and_then(person_of);
            let exists = p.exists.as_ref().is_some_and(|r| !r.deleted);
            if p.method == "DELETE" {
                plans.push(Plan {
                    index: i,
                    action: Action::Delete,
                    exists,
                    old_person,
                    write: Write {
                        res_type: p.res_type,
                        id: p.id,
                        json: Value::Null,
                        extracted: Default::default(),
                        expected_version: p.if_match,
                        delete: true,
                        fresh: false,
                    },
                });
                continue;
            }
            let mut resource = p.resource.expect("checked");
            if let Some(o) = resource.as_object_mut()
                && p.method == "POST"
            {
                // The server assigns the id of a created resource.
                o.remove("id");
            }
            if let Some(o) = resource.as_object_mut()
                && p.method == "PUT"
                && !o.contains_key("id")
                && mode != Mode::Batch
            {
                o.insert("id".into(), Value::String(p.id.clone()));
            }
            // urn:uuid references → Type/id; every literal reference must resolve.
            let mut unresolved = None;
            index::rewrite_references::<()>(&mut resource, &mut |r| {
                if r.starts_with("urn:uuid:") {
                    match urls.get(r) {
                        Some(t) if mode != Mode::Batch => Ok(Some(t.clone())),
                        _ => {
                            unresolved =
                                Some(format!("reference {r} matches no fullUrl in the bundle"));
                            Err(())
                        }
                    }
                } else {
                    Ok(None)
                }
            })
            .map_err(|_| {
                FhirError::new(422, "invalid", unresolved.clone().unwrap_or_default()).at(at(""))
            })?;
            let x = index::extract(&p.res_type, &p.id, &resource).map_err(|e| {
                let status = if e.path.ends_with("resourceType") {
                    400
                } else {
                    422
                };
                let path = e
                    .path
                    .split_once('.')
                    .map_or(String::new(), |(_, rest)| format!(".{rest}"));
                FhirError::new(
                    status,
                    if status == 400 {
                        "structure"
                    } else {
                        "invalid"
                    },
                    format!("{prefix}entry[{i}]: {e}"),
                )
                .at(at(&path))
            })?;
            for r in index::all_references(&resource) {
                let Some((t, id)) = index::parse_reference(&r) else {
                    if r.starts_with('#') {
                        continue;
                    }
                    return Err(FhirError::new(
                        422,
                        "invalid",
                        format!("reference {r:?} is not of the form Type/id"),
                    )
                    .at(at("")));
                };
                if kind_of(t).is_none() {
                    return Err(FhirError::new(422, "invalid", format!("reference {r:?}: this server holds no {t} resources (refer to organisations by identifier)")).at(at("")));
                }
                let key = format!("{t}/{id}");
                if in_bundle.contains(&key) {
                    continue;
                }
                to_check.push((plans.len(), at(""), t.to_string(), id.to_string()));
            }
            plans.push(Plan {
                index: i,
                action: if exists {
                    Action::Update
                } else {
                    Action::Create
                },
                exists,
                old_person,
                write: Write {
                    res_type: p.res_type,
                    id: p.id,
                    json: resource,
                    extracted: x,
                    expected_version: p.if_match,
                    delete: false,
                    fresh: p.fresh,
                },
            });
        }
        let keys: Vec<(String, String)> = to_check
            .iter()
            .map(|(_, _, t, id)| (t.clone(), id.clone()))
            .collect();
        let live = self.live_keys(&keys).await?;
        if let Some((_, at, t, id)) = to_check
            .into_iter()
            .find(|(_, _, t, id)| !live.contains(&(t.clone(), id.clone())))
        {
            return Err(FhirError::new(
                422,
                "invalid",
                format!("reference {t}/{id} is to an unknown resource"),
            )
            .at(at));
        }
        Ok(plans)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Transaction,
    Batch,
    Load,
}

pub(crate) struct Plan {
    pub(crate) index: usize,
    pub(crate) action: Action,
    pub(crate) exists: bool,
    pub(crate) old_person: Option<String>,
    pub(crate) write: Write,
}

fn grant_json(id: &str, g: &trent_access::CarerGrant) -> Value {
    let t =
        |x: &Option<DateTime<Utc>>| x.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    json!({
        "id": id,
        "carer": g.carer.as_str(),
        "kinds": g.kinds.iter().map(|k| k.code()).collect::<Vec<_>>(),
        "expires": t(&g.expires),
        "revoked": t(&g.revoked),
    })
}

fn response_entry(r: WriteResult) -> Value {
    let status = match r.status {
        201 => "201 Created",
        204 => "204 No Content",
        _ => "200 OK",
    };
    let mut e = json!({"response": {"status": status, "location": r.location, "etag": format!("W/\"{}\"", r.version)}});
    if !r.body.is_null() {
        e["fullUrl"] = json!(r.location.split("/_history").next().unwrap_or_default());
        e["resource"] = r.body;
    }
    e
}

/// Parses an ETag `W/"3"` (or `"3"`) into a version.
pub fn parse_etag(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.strip_prefix('"')?
        .strip_suffix('"')?
        .parse()
        .ok()
        .filter(|v| *v >= 0)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An audit entry as a FHIR R4 AuditEvent (ids and codes only).
pub fn audit_event(e: &AuditEntry) -> Value {
    let action = match e.action {
        Action::Create => "C",
        Action::Read | Action::Search => "R",
        Action::Update => "U",
        Action::Delete => "D",
    };
    let mut agent = json!({
        "who": {"identifier": {"system": trent_fhir::identifier_system("user"), "value": e.who.as_str()}},
        "requestor": true,
        "role": [{"coding": [{"system": trent_fhir::code_system("role"), "code": e.role.code()}]}],
        "purposeOfUse": [{"coding": [{"system": trent_fhir::code_system("purpose-of-use"), "code": e.purpose.code()}]}],
    });
    if let Some(o) = &e.organisation {
        agent["location"] =
            json!({"identifier": {"system": trent_fhir::ODS_CODE, "value": o.as_str()}});
    }
    let mut entity = json!({
        "type": {"system": "http://hl7.org/fhir/resource-types", "code": e.resource_type.code()},
    });
    if let Some(id) = &e.resource_id {
        entity["what"] = json!({"reference": format!("{}/{}", e.resource_type.code(), id)});
    }
    let mut r = json!({
        "resourceType": "AuditEvent",
        "id": e.seq.to_string(),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": e.action.code()}],
        "action": action,
        "recorded": e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "outcome": if e.allowed { "0" } else { "4" },
        "outcomeDesc": e.reason_code.code(),
        "agent": [agent],
        "source": {"observer": {"display": "trent shared care record"}},
        "entity": [entity],
    });
    if let Some(reason) = e.purpose.reason() {
        r["agent"][0]["purposeOfUse"][0]["text"] = json!(reason);
    }
    if !e.flags.is_empty() {
        r["extension"] = json!(e.flags.iter().map(|f| json!({"url": trent_fhir::extension_url("access-flag"), "valueCode": f.code()})).collect::<Vec<_>>());
    }
    r
}

/// The CapabilityStatement: exactly what this server supports.
pub fn capability_statement(base: &str) -> Value {
    let resources: Vec<Value> = SUPPORTED_TYPES
        .iter()
        .map(|t| {
            let params: Vec<Value> = index::SEARCH_PARAMS
                .iter()
                .filter(|(rt, _, _)| rt == t)
                .map(|(_, n, k)| json!({"name": n, "type": match k {
                    index::ParamKind::Token => "token",
                    index::ParamKind::Str => "string",
                    index::ParamKind::Date => "date",
                    index::ParamKind::Reference => "reference",
                }}))
                .chain([json!({"name": "_id", "type": "token"})])
                .collect();
            let includes: Vec<String> = index::SEARCH_PARAMS
                .iter()
                .filter(|(rt, _, k)| rt == t && *k == index::ParamKind::Reference)
                .map(|(_, n, _)| format!("{t}:{n}"))
                .collect();
            let mut r = json!({
                "type": t,
                "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "update"}, {"code": "delete"}],
                "versioning": "versioned-update",
                "conditionalUpdate": *t == "Patient",
                "searchInclude": includes,
                "searchParam": params,
            });
            if *t == "Patient" {
                r["operation"] = json!([{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]);
            }
            r
        })
        .chain([json!({"type": "AuditEvent", "interaction": [{"code": "search-type"}], "searchParam": [{"name": "patient", "type": "reference"}]})])
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "software": {"name": "trent-record", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "trent shared care record", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}],
                "description": "Bearer tokens: sessions from POST /auth/login (people) or OAuth2 client credentials from POST /auth/token (systems, SMART system/ scopes). Purpose of use in X-Purpose-Of-Use; break-glass needs X-Break-Glass-Reason."
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_ids() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("3"), None);
        let a = new_id().unwrap();
        assert_eq!(a.len(), 36);
        assert!(is_fhir_id(&a));
        // version 7, RFC 4122 variant, the current Unix milliseconds in the first 48 bits
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        let ms = u64::from_str_radix(&a[..13].replace('-', ""), 16).unwrap();
        let now = Utc::now().timestamp_millis() as u64;
        assert!(ms <= now && now - ms < 60_000, "{a}: {ms} vs {now}");
        // strictly increasing, even many within one millisecond (B-tree appends)
        let ids: Vec<String> = (0..10_000).map(|_| new_id().unwrap()).collect();
        assert!(a < ids[0]);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ids.iter()
                .all(|i| i.split('-').map(str::len).eq([8, 4, 4, 4, 12]))
        );
        // the random 62 bits: no two alike in 10,000 (the pool is refilled on the way)
        let tails: HashSet<&str> = ids.iter().map(|i| &i[19..]).collect();
        assert_eq!(tails.len(), ids.len());
        assert_eq!(percent_decode("a%7Cb+c"), "a|b c");
    }

    #[test]
    fn outcome_names_reason_without_person_data() {
        let e = FhirError::new(422, "invalid", "bad").at("Patient.identifier[0].value");
        let o = e.outcome();
        assert_eq!(
            o["issue"][0]["expression"][0],
            "Patient.identifier[0].value"
        );
        assert_eq!(o["resourceType"], "OperationOutcome");
    }
}

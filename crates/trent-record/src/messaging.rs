//! Transfers of care: FHIR R4 messages (`POST /fhir/$process-message`) from known sending
//! organisations, a durable and idempotent inbox, and the export of accepted content for
//! the lake's next ingest.
//!
//! Why this shape: a transfer of care (a discharge summary, a referral, an A&E attendance,
//! a care-plan update) must never be lost once the sender has been told it arrived, and
//! must never be applied twice when the sender retries. So the message, its record writes
//! and their audit lines are committed in **one** database transaction, and only then is
//! the response sent; a repeat of the same `MessageHeader.id` is answered from the inbox
//! and writes nothing. The lake is fed from the inbox, not from the request: each accepted
//! message's resources are written as one NDJSON file (by write-then-rename), and a crash
//! between the commit and the file is repaired by [`Store::export_pending`] at start-up.
//!
//! The accepted events, the message profile and the export contract are in
//! `docs/record.md` ("Transfers of care").

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use trent_access::Role;

use crate::index::{self, is_fhir_id, kind_of};
use crate::service::{Ctx, FhirError, Mode, Plan, new_id};
use crate::store::{Arg, Store, StoreError, Tx, corrupt, db, time_text};

/// trent's message-event code system (the events below).
pub fn event_system() -> String {
    trent_fhir::code_system("message-event")
}

/// The NHS Booking and Referral Standard (BaRS) message-event code system, whose
/// `servicerequest-request` event is accepted as a referral.
pub const BARS_EVENTS: &str = "https://fhir.nhs.uk/CodeSystem/message-events-bars";

/// One accepted message event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// trent's code.
    pub code: &'static str,
    /// What it is.
    pub display: &'static str,
    /// The resource type such a message must carry (its focus).
    pub focus: &'static str,
}

/// The events accepted, modelled on the NHS transfer-of-care message types (PRSB
/// eDischarge summary, emergency care discharge, referral, care plan).
pub const EVENTS: &[Event] = &[
    Event {
        code: "discharge-summary",
        display: "Inpatient discharge summary",
        focus: "Encounter",
    },
    Event {
        code: "referral-request",
        display: "Referral",
        focus: "ServiceRequest",
    },
    Event {
        code: "ae-attendance",
        display: "Emergency department (A&E) attendance",
        focus: "Encounter",
    },
    Event {
        code: "care-plan-update",
        display: "Care plan created or updated",
        focus: "CarePlan",
    },
];

/// The event of a `MessageHeader.eventCoding` (`system`, `code`), if accepted.
pub fn event_of(system: &str, code: &str) -> Option<&'static Event> {
    if system == event_system() {
        EVENTS.iter().find(|e| e.code == code)
    } else if system == BARS_EVENTS && code == "servicerequest-request" {
        EVENTS.iter().find(|e| e.code == "referral-request")
    } else {
        None
    }
}

/// A message as kept in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    /// `MessageHeader.id`.
    pub message_id: String,
    /// The OAuth2 client that sent it.
    pub sender_client: String,
    /// Its organisation (ODS code).
    pub sender_org: String,
    /// The event code (trent's).
    pub event: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// `ok` or `fatal-error` (transient errors are not kept: the sender retries).
    pub outcome: String,
    /// The HTTP status answered.
    pub http_status: u16,
    /// The message as received.
    pub message: Value,
    /// The response Bundle answered.
    pub response: Value,
    /// `Type/id` of every resource written.
    pub written: Vec<String>,
}

pub(crate) async fn insert_inbox(tx: &mut Tx<'_>, m: &InboxRecord) -> Result<(), StoreError> {
    tx.execute("INSERT INTO inbox (message_id, sender_client, sender_org, event, received_at, outcome, http_status, message, response, written, exported) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            Arg::S(m.message_id.clone()),
            Arg::S(m.sender_client.clone()),
            Arg::S(m.sender_org.clone()),
            Arg::S(m.event.clone()),
            Arg::S(time_text(&m.received_at)),
            Arg::S(m.outcome.clone()),
            Arg::I(i64::from(m.http_status)),
            Arg::S(m.message.to_string()),
            Arg::S(m.response.to_string()),
            Arg::S(Value::from(m.written.clone()).to_string()),
            Arg::I(i64::from(m.outcome != "ok")),
        ],
        "recording a message in the inbox",
    )
    .await?;
    Ok(())
}

/// What `$process-message` answers: an HTTP status and the response message Bundle.
#[derive(Debug, Clone)]
pub struct MessageReply {
    /// 200 (ok), 4xx (fatal-error) or 503 (transient-error).
    pub status: u16,
    /// The response Bundle (`type` `message`).
    pub body: Value,
    /// Whether this answers a repeat from the inbox (nothing was written).
    pub replayed: bool,
}

/// What the inbox export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Messages exported.
    pub messages: usize,
    /// Resources written (lines).
    pub resources: usize,
}

fn bad(status: u16, code: &'static str, msg: impl Into<String>, at: &str) -> FhirError {
    FhirError::new(status, code, msg).at(at.to_string())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// The header facts checked before the message is taken into the inbox.
struct Header {
    id: String,
    event: &'static Event,
    event_coding: Value,
    source_endpoint: String,
}

/// Checks the message envelope: a `message` Bundle whose first entry is a MessageHeader
/// with an id, an accepted event, the sender's ODS identifier (which must be `org`) and a
/// source endpoint.
fn header(bundle: &Value, org: &str) -> Result<Header, FhirError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(bad(
            400,
            "structure",
            "the body must be a Bundle",
            "Bundle.resourceType",
        ));
    }
    if bundle.get("type").and_then(Value::as_str) != Some("message") {
        return Err(bad(
            400,
            "invalid",
            "Bundle.type must be \"message\" for $process-message",
            "Bundle.type",
        ));
    }
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return Err(bad(
            400,
            "required",
            "Bundle.entry is required (an array whose first entry is a MessageHeader)",
            "Bundle.entry",
        ));
    };
    let h = entries.first().and_then(|e| e.get("resource"));
    let Some(h) =
        h.filter(|h| h.get("resourceType").and_then(Value::as_str) == Some("MessageHeader"))
    else {
        return Err(bad(
            400,
            "structure",
            "the first entry of a message must be a MessageHeader",
            "Bundle.entry[0].resource",
        ));
    };
    let at = |p: &str| format!("Bundle.entry[0].resource.{p}");
    let id = h
        .get("id")
        .and_then(Value::as_str)
        .filter(|i| is_fhir_id(i))
        .ok_or_else(|| {
            bad(
                400,
                "required",
                "MessageHeader.id is required (a FHIR id): it identifies the message, and repeats of it are answered from the inbox",
                &at("id"),
            )
        })?
        .to_string();
    let sender = str_at(h, &["sender", "identifier", "value"]);
    let sender_system = str_at(h, &["sender", "identifier", "system"]);
    let Some(sender) = sender.filter(|_| sender_system == Some(trent_fhir::ODS_CODE)) else {
        return Err(bad(
            400,
            "required",
            format!(
                "MessageHeader.sender.identifier is required: the sending organisation's ODS code (system {})",
                trent_fhir::ODS_CODE
            ),
            &at("sender.identifier"),
        ));
    };
    if !sender.eq_ignore_ascii_case(org) {
        return Err(bad(
            403,
            "forbidden",
            format!(
                "unknown sender: this client sends for organisation {org}, the message claims {sender:?}"
            ),
            &at("sender.identifier.value"),
        ));
    }
    let source_endpoint = str_at(h, &["source", "endpoint"])
        .ok_or_else(|| {
            bad(
                400,
                "required",
                "MessageHeader.source.endpoint is required (FHIR R4 cardinality 1..1)",
                &at("source.endpoint"),
            )
        })?
        .to_string();
    let coding = h.get("eventCoding").filter(|c| c.is_object());
    let (system, code) = (
        coding.and_then(|c| str_at(c, &["system"])).unwrap_or(""),
        coding.and_then(|c| str_at(c, &["code"])).unwrap_or(""),
    );
    let event = event_of(system, code).ok_or_else(|| {
        bad(
            422,
            "not-supported",
            format!(
                "MessageHeader.eventCoding {system}|{code} is not accepted: expected {}|{} (or {BARS_EVENTS}|servicerequest-request)",
                event_system(),
                EVENTS.iter().map(|e| e.code).collect::<Vec<_>>().join(", ")
            ),
            &at("eventCoding"),
        )
    })?;
    Ok(Header {
        id,
        event,
        event_coding: coding.cloned().unwrap_or(Value::Null),
        source_endpoint,
    })
}

/// Rewrites `entry[k]` (an index into the converted entries) to the message's index.
fn renumber(mut e: FhirError, original: &[usize]) -> FhirError {
    let fix = |s: &str| -> String {
        let Some(start) = s.find("entry[") else {
            return s.to_string();
        };
        let digits_from = start + "entry[".len();
        let Some(len) = s[digits_from..].find(']') else {
            return s.to_string();
        };
        match s[digits_from..digits_from + len].parse::<usize>() {
            Ok(k) if k < original.len() => format!(
                "{}{}{}",
                &s[..digits_from],
                original[k],
                &s[digits_from + len..]
            ),
            _ => s.to_string(),
        }
    };
    #[allow(clippy::redundant_closure_call)] // `fix` is also passed to `map` below
    {
        e.diagnostics = fix(&e.diagnostics);
    }
    e.expression = e.expression.as_deref().map(fix);
    e
}

impl Store {
    /// Registers `client_id` (an OAuth2 client) as the message sender for `organisation`
    /// (an ODS code); replaces an earlier registration of the client.
    pub async fn register_sender(
        &self,
        client_id: &str,
        organisation: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO message_sender (client_id, organisation) VALUES ($1, $2) ON CONFLICT (client_id) DO UPDATE SET organisation = excluded.organisation")
            .bind(client_id)
            .bind(organisation.to_ascii_uppercase())
            .execute(self.pool())
            .await
            .map_err(db("registering a message sender"))?;
        Ok(())
    }

    /// The organisation a client sends messages for.
    pub async fn sender_organisation(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT organisation FROM message_sender WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a message sender"))?;
        row.map(|r| {
            r.try_get::<String, _>("organisation")
                .map_err(db("reading a message sender"))
        })
        .transpose()
    }

    /// A message in the inbox.
    pub async fn inbox_message(&self, message_id: &str) -> Result<Option<InboxRecord>, StoreError> {
        let doing = "reading the inbox";
        let Some(r) = sqlx::query("SELECT message_id, sender_client, sender_org, event, received_at, outcome, http_status, message, response, written FROM inbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| r.try_get::<String, _>(c).map_err(db(doing));
        let j = |c: &'static str| -> Result<Value, StoreError> {
            serde_json::from_str(&g(c)?).map_err(|e| corrupt("inbox", format!("{c}: {e}")))
        };
        let received = g("received_at")?;
        Ok(Some(InboxRecord {
            message_id: g("message_id")?,
            sender_client: g("sender_client")?,
            sender_org: g("sender_org")?,
            event: g("event")?,
            received_at: DateTime::parse_from_rfc3339(&received)
                .map_err(|e| corrupt("inbox.received_at", e.to_string()))?
                .with_timezone(&Utc),
            outcome: g("outcome")?,
            http_status: u16::try_from(r.try_get::<i64, _>("http_status").map_err(db(doing))?)
                .map_err(|e| corrupt("inbox.http_status", e.to_string()))?,
            message: j("message")?,
            response: j("response")?,
            written: serde_json::from_value(j("written")?)
                .map_err(|e| corrupt("inbox.written", e.to_string()))?,
        }))
    }

    /// Every message id in the inbox, in order of arrival.
    pub async fn inbox_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT message_id FROM inbox ORDER BY received_at, message_id")
            .fetch_all(self.pool())
            .await
            .map_err(db("reading the inbox"))?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("message_id")
                    .map_err(db("reading the inbox"))
            })
            .collect()
    }

    /// `POST /fhir/$process-message`: takes a message from a known sender into the
    /// record (see the module docs). `lake_dir`, if set, receives the accepted resources
    /// as NDJSON. Errors before the message is identified (not a message Bundle, no
    /// MessageHeader.id, unknown or mismatched sender) are plain OperationOutcomes and
    /// nothing is kept; everything after is answered with a response message, kept in
    /// the inbox unless it is a transient error.
    pub async fn process_message(
        &self,
        ctx: &Ctx,
        bundle: Value,
        lake_dir: Option<&Path>,
    ) -> Result<MessageReply, FhirError> {
        let client = ctx.principal.user.as_str().to_string();
        if ctx.principal.role != Role::System {
            return Err(FhirError::new(
                403,
                "forbidden",
                "unknown sender: messages are accepted from registered system clients (OAuth2 client credentials) only",
            ));
        }
        let Some(org) = self.sender_organisation(&client).await? else {
            return Err(FhirError::new(
                403,
                "forbidden",
                format!(
                    "unknown sender: client {client} is not registered as a message sender for any organisation"
                ),
            ));
        };
        let h = header(&bundle, &org)?;
        // The writer's lock serialises messages, so the inbox check and the commit are one
        // critical section: two copies of a message cannot both be applied.
        let mut guard = self.writer().await?;
        let w = guard.as_mut().expect("opened");
        if let Some(prev) = self.inbox_message(&h.id).await? {
            if prev.sender_client != client {
                return Err(FhirError::new(
                    409,
                    "duplicate",
                    format!("message {} was already received from another sender", h.id),
                )
                .at("Bundle.entry[0].resource.id"));
            }
            return Ok(MessageReply {
                status: prev.http_status,
                body: prev.response,
                replayed: true,
            });
        }
        let mut record = InboxRecord {
            message_id: h.id.clone(),
            sender_client: client,
            sender_org: org,
            event: h.event.code.to_string(),
            received_at: ctx.now,
            outcome: "ok".into(),
            http_status: 200,
            message: bundle.clone(),
            response: Value::Null,
            written: Vec::new(),
        };
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        // The record committed with the writes (its response is the one answered).
        let stash: std::sync::Mutex<Option<InboxRecord>> = std::sync::Mutex::new(None);
        let applied = match self.message_entries(&entries, h.event).await {
            Err(e) => Err(e),
            Ok((converted, original)) => {
                let hook = |plans: &[Plan]| {
                    let mut r = record.clone();
                    r.written = plans
                        .iter()
                        .map(|p| format!("{}/{}", p.write.res_type, p.write.id))
                        .collect();
                    r.response = response_bundle(ctx, &h, "ok", &r.written, None);
                    *stash.lock().expect("stash") = Some(r.clone());
                    r
                };
                self.apply_with(
                    ctx,
                    w,
                    converted,
                    Mode::Transaction,
                    None,
                    "Bundle.",
                    Some(&hook),
                )
                .await
                .map(|_| ())
                .map_err(|e| renumber(e, &original))
            }
        };
        match applied {
            Ok(()) => {
                let record = stash
                    .lock()
                    .expect("stash")
                    .take()
                    .expect("a committed message was recorded");
                drop(guard);
                if let Some(dir) = lake_dir
                    && let Err(e) = self.export_message(dir, &record.message_id).await
                {
                    // The message is committed; the export is retried by export_pending.
                    eprintln!(
                        "trent-record: message {} committed; lake export deferred: {e}",
                        record.message_id
                    );
                }
                Ok(MessageReply {
                    status: 200,
                    body: record.response,
                    replayed: false,
                })
            }
            Err(e) if e.status >= 500 => {
                // Nothing was committed: the sender should retry.
                Ok(MessageReply {
                    status: 503,
                    body: response_bundle(ctx, &h, "transient-error", &[], Some(&e)),
                    replayed: false,
                })
            }
            Err(e) => {
                record.outcome = "fatal-error".into();
                record.http_status = e.status;
                record.response = response_bundle(ctx, &h, "fatal-error", &[], Some(&e));
                self.commit_with(&[], &[], ctx.now, Some(&record)).await?;
                Ok(MessageReply {
                    status: e.status,
                    body: record.response,
                    replayed: false,
                })
            }
        }
    }

    /// Turns a message's entries (after the MessageHeader) into transaction entries:
    /// a Patient whose NHS number is known is matched (references to it rewritten, its
    /// demographics not written: the record's come from the vault and registration), an
    /// unknown one is created; every other resource is created. Returns the entries and
    /// each one's index in the message.
    async fn message_entries(
        &self,
        entries: &[Value],
        event: &Event,
    ) -> Result<(Vec<Value>, Vec<usize>), FhirError> {
        let mut out = Vec::new();
        let mut original = Vec::new();
        let mut matched: HashMap<String, String> = HashMap::new();
        for (i, e) in entries.iter().enumerate().skip(1) {
            let at = |p: &str| format!("Bundle.entry[{i}]{p}");
            let Some(r) = e.get("resource").filter(|r| r.is_object()) else {
                return Err(bad(
                    400,
                    "required",
                    "every entry needs a resource",
                    &at(".resource"),
                ));
            };
            let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
            if rt == "MessageHeader" {
                return Err(bad(
                    400,
                    "structure",
                    "only the first entry may be a MessageHeader",
                    &at(".resource"),
                ));
            }
            if kind_of(rt).is_none() || !index::SUPPORTED_TYPES.contains(&rt) {
                return Err(bad(
                    422,
                    "not-supported",
                    format!(
                        "{rt:?} is not held by the record (a message may carry {}; refer to organisations and practitioners by identifier)",
                        index::SUPPORTED_TYPES.join(", ")
                    ),
                    &at(".resource.resourceType"),
                ));
            }
            let full_url = e
                .get("fullUrl")
                .and_then(Value::as_str)
                .filter(|u| u.strip_prefix("urn:uuid:").is_some_and(is_fhir_id))
                .ok_or_else(|| {
                    bad(
                        400,
                        "required",
                        "fullUrl must be urn:uuid:<uuid> (references inside a message use it)",
                        &at(".fullUrl"),
                    )
                })?;
            if rt == "Patient" {
                let nhs = index::nhs_number_of(r).ok_or_else(|| {
                    bad(
                        422,
                        "required",
                        format!(
                            "a Patient in a message must carry a valid NHS number ({})",
                            trent_fhir::NHS_NUMBER
                        ),
                        &at(".resource.identifier"),
                    )
                })?;
                if let Some(id) = self
                    .patient_by_identifier(trent_fhir::NHS_NUMBER, &nhs)
                    .await?
                {
                    matched.insert(full_url.to_string(), format!("Patient/{id}"));
                    continue;
                }
                out.push(json!({
                    "fullUrl": full_url,
                    "resource": r,
                    "request": {"method": "PUT", "url": format!("Patient?identifier={}|{nhs}", trent_fhir::NHS_NUMBER)},
                }));
            } else {
                out.push(json!({
                    "fullUrl": full_url,
                    "resource": r,
                    "request": {"method": "POST", "url": rt},
                }));
            }
            original.push(i);
        }
        if !matched.is_empty() {
            for e in &mut out {
                index::rewrite_references::<()>(&mut e["resource"], &mut |r| {
                    Ok(matched.get(r).cloned())
                })
                .expect("infallible");
            }
        }
        if !out
            .iter()
            .any(|e| e["resource"]["resourceType"] == event.focus)
        {
            return Err(bad(
                422,
                "required",
                format!("a {} message must carry a {}", event.code, event.focus),
                "Bundle.entry",
            ));
        }
        Ok((out, original))
    }

    /// Writes one accepted message's resources (their current versions, each with its
    /// Patient first) to `dir/<received>-<message id>.ndjson`, atomically (temp file,
    /// fsync, rename), and marks the message exported.
    pub async fn export_message(&self, dir: &Path, message_id: &str) -> Result<usize, StoreError> {
        let Some(m) = self.inbox_message(message_id).await? else {
            return Ok(0);
        };
        if m.outcome != "ok" {
            return Ok(0);
        }
        let mut persons = BTreeSet::new();
        let mut lines = Vec::new();
        for w in &m.written {
            let Some((t, id)) = index::parse_reference(w) else {
                return Err(corrupt("inbox.written", w.clone()));
            };
            if let Some(r) = self.get(t, id).await?.filter(|r| !r.deleted) {
                if t == "Patient" {
                    persons.insert(r.id.clone());
                } else if let Some(p) = &r.person {
                    persons.insert(p.clone());
                }
                if t != "Patient" {
                    lines.push(r.json.to_string());
                }
            }
        }
        let mut text = String::new();
        for p in &persons {
            if let Some(r) = self.get("Patient", p).await?.filter(|r| !r.deleted) {
                text.push_str(&r.json.to_string());
                text.push('\n');
            }
        }
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        let n = persons.len() + lines.len();
        let stamp = m.received_at.format("%Y%m%dT%H%M%S%6fZ");
        let path: PathBuf = dir.join(format!("{stamp}-{}.ndjson", m.message_id));
        let io =
            |e: std::io::Error| StoreError::Refused(format!("lake export {}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".{stamp}-{}.ndjson.tmp", m.message_id));
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        sqlx::query("UPDATE inbox SET exported = 1 WHERE message_id = $1")
            .bind(message_id)
            .execute(self.pool())
            .await
            .map_err(db("marking a message exported"))?;
        Ok(n)
    }

    /// Exports every accepted message not yet exported (run at start-up: repairs a crash
    /// between a commit and its export).
    pub async fn export_pending(&self, dir: &Path) -> Result<ExportReport, StoreError> {
        let rows = sqlx::query(
            "SELECT message_id FROM inbox WHERE exported = 0 ORDER BY received_at, message_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db("reading the inbox"))?;
        let mut report = ExportReport::default();
        for r in rows {
            let id: String = r.try_get("message_id").map_err(db("reading the inbox"))?;
            report.resources += self.export_message(dir, &id).await?;
            report.messages += 1;
        }
        Ok(report)
    }
}

/// The response message: a MessageHeader answering `h` with `code`, the written
/// resources as its focus, and for errors an OperationOutcome in `response.details`.
fn response_bundle(
    ctx: &Ctx,
    h: &Header,
    code: &str,
    written: &[String],
    error: Option<&FhirError>,
) -> Value {
    let id = new_id().unwrap_or_else(|_| format!("{}-response", h.id));
    let mut header = json!({
        "resourceType": "MessageHeader",
        "id": id,
        "eventCoding": h.event_coding,
        "destination": [{"endpoint": h.source_endpoint}],
        "source": {"name": "trent-record", "endpoint": format!("{}/$process-message", ctx.base)},
        "response": {"identifier": h.id, "code": code},
    });
    if !written.is_empty() {
        header["focus"] = json!(
            written
                .iter()
                .map(|w| json!({"reference": w}))
                .collect::<Vec<_>>()
        );
    }
    let mut entries = vec![json!({"fullUrl": format!("urn:uuid:{id}"), "resource": header})];
    if let Some(e) = error {
        let oo_id = new_id().unwrap_or_else(|_| format!("{}-outcome", h.id));
        let mut oo = e.outcome();
        oo["id"] = json!(oo_id);
        entries[0]["resource"]["response"]["details"] =
            json!({"reference": format!("urn:uuid:{oo_id}")});
        entries.push(json!({"fullUrl": format!("urn:uuid:{oo_id}"), "resource": oo}));
    }
    json!({
        "resourceType": "Bundle",
        "id": new_id().unwrap_or_else(|_| id.clone()),
        "type": "message",
        "timestamp": ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "entry": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_renumbering() {
        assert_eq!(
            event_of(&event_system(), "discharge-summary")
                .unwrap()
                .focus,
            "Encounter"
        );
        assert_eq!(
            event_of(BARS_EVENTS, "servicerequest-request")
                .unwrap()
                .code,
            "referral-request"
        );
        assert!(event_of("http://example.org", "discharge-summary").is_none());
        let e = FhirError::new(422, "invalid", "Bundle.entry[1]: bad")
            .at("Bundle.entry[1].resource.status");
        let e = renumber(e, &[1, 3, 4]);
        assert_eq!(e.diagnostics, "Bundle.entry[3]: bad");
        assert_eq!(
            e.expression.as_deref(),
            Some("Bundle.entry[3].resource.status")
        );
    }
}

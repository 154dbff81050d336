//! The sender side of trent-to-trent exchange: a durable outbox of FHIR messages, each
//! delivered to another trent's `$process-message` with retries, exponential back-off and
//! a dead letter after the last attempt.
//!
//! Why an outbox table rather than sending inline: the sender's own transaction can
//! enqueue a message (commit = "will be sent"), and a crash, a network fault or the other
//! side being down only delays delivery. Delivery is at-least-once; the receiver's inbox
//! is idempotent on `MessageHeader.id`, which together gives exactly-once application.
//!
//! Outcomes: `delivered` (the response message says `ok`), `rejected` (a `fatal-error`
//! or a 4xx other than 408/429: resending cannot help), `dead` (still failing after
//! `max_attempts`). Transient failures (connection errors, timeouts, 5xx, 408, 429,
//! `transient-error`, a response that does not answer this message) are retried after
//! `base_delay · 2^(attempts−1)`, at most `max_delay`. Bearer tokens are given to the
//! delivery loop, never stored.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use crate::http::{self, HttpError, Url};
use crate::store::{Store, StoreError, db, time_text};

/// Delivery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay after the first failed attempt (doubled after each further one).
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Per-attempt timeout (connect + send + response).
    pub timeout: Duration,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
        }
    }
}

impl OutboxPolicy {
    /// The delay after `attempts` failed attempts.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1u32 << shift)
            .min(self.max_delay)
    }
}

/// Where a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered `ok`.
    Delivered,
    /// The receiver refused it for good (`fatal-error` or a 4xx).
    Rejected,
    /// Still failing after the last attempt.
    Dead,
}

impl OutboxStatus {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Rejected => "rejected",
            OutboxStatus::Dead => "dead",
        }
    }

    fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OutboxStatus::Pending,
            "delivered" => OutboxStatus::Delivered,
            "rejected" => OutboxStatus::Rejected,
            "dead" => OutboxStatus::Dead,
            _ => return None,
        })
    }
}

/// One queued message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// `MessageHeader.id`.
    pub message_id: String,
    /// The receiver's FHIR base URL (or its `$process-message` URL).
    pub destination: String,
    /// Status.
    pub status: OutboxStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending messages).
    pub next_attempt: String,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// `MessageHeader.response.code` of the receiver's answer (or `http-<status>`).
    pub response_code: Option<String>,
    /// The receiver's response body.
    pub response: Option<Value>,
}

/// Outbox errors.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The message is not a FHIR message Bundle with a MessageHeader id.
    #[error("not a message: {0}")]
    NotAMessage(String),
    /// The destination URL is unusable.
    #[error(transparent)]
    Url(#[from] HttpError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such message in the outbox.
    #[error("message {0} to {1} is not in the outbox")]
    Unknown(String, String),
}

/// The `$process-message` URL of a destination (a FHIR base, or the operation's URL).
pub fn process_url(destination: &str) -> String {
    if destination.ends_with("$process-message") {
        destination.to_string()
    } else {
        format!("{}/$process-message", destination.trim_end_matches('/'))
    }
}

/// The `MessageHeader.id` of a message Bundle.
pub fn message_id_of(message: &Value) -> Result<String, OutboxError> {
    if message.get("resourceType").and_then(Value::as_str) != Some("Bundle")
        || message.get("type").and_then(Value::as_str) != Some("message")
    {
        return Err(OutboxError::NotAMessage(
            "expected a Bundle with type \"message\"".into(),
        ));
    }
    let h = &message["entry"][0]["resource"];
    if h.get("resourceType").and_then(Value::as_str) != Some("MessageHeader") {
        return Err(OutboxError::NotAMessage(
            "Bundle.entry[0].resource must be a MessageHeader".into(),
        ));
    }
    h.get("id")
        .and_then(Value::as_str)
        .filter(|i| crate::index::is_fhir_id(i))
        .map(str::to_string)
        .ok_or_else(|| {
            OutboxError::NotAMessage(
                "Bundle.entry[0].resource.id (the message id) is required".into(),
            )
        })
}

/// The outbox over a store.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
    policy: OutboxPolicy,
}

enum Attempt {
    Delivered(String, Value),
    Rejected(String, Option<Value>, String),
    Retry(String),
}

impl Outbox {
    /// An outbox over `store` with a delivery policy.
    pub fn new(store: Store, policy: OutboxPolicy) -> Self {
        Outbox { store, policy }
    }

    /// Queues `message` for `destination` (due now). Queuing the same message for the
    /// same destination again changes nothing. Returns the message id.
    pub async fn enqueue(
        &self,
        destination: &str,
        message: &Value,
        now: DateTime<Utc>,
    ) -> Result<String, OutboxError> {
        Url::parse(&process_url(destination))?;
        let id = message_id_of(message)?;
        let t = time_text(&now);
        sqlx::query("INSERT INTO outbox (message_id, destination, body, status, attempts, next_attempt, last_error, response_code, response, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, NULL, NULL, NULL, $4, $4) ON CONFLICT (message_id, destination) DO NOTHING")
            .bind(id.as_str())
            .bind(destination)
            .bind(message.to_string())
            .bind(t.as_str())
            .execute(self.store.pool())
            .await
            .map_err(db("queuing a message"))?;
        Ok(id)
    }

    /// One queued message.
    pub async fn item(
        &self,
        message_id: &str,
        destination: &str,
    ) -> Result<Option<OutboxItem>, OutboxError> {
        let doing = "reading the outbox";
        let Some(r) = sqlx::query("SELECT message_id, destination, status, attempts, next_attempt, last_error, response_code, response FROM outbox WHERE message_id = $1 AND destination = $2")
            .bind(message_id)
            .bind(destination)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| r.try_get::<Option<String>, _>(c).map_err(db(doing));
        let status_text = g("status")?.unwrap_or_default();
        Ok(Some(OutboxItem {
            message_id: g("message_id")?.unwrap_or_default(),
            destination: g("destination")?.unwrap_or_default(),
            status: OutboxStatus::from_code(&status_text)
                .ok_or_else(|| crate::store::corrupt("outbox.status", status_text.clone()))?,
            attempts: u32::try_from(r.try_get::<i64, _>("attempts").map_err(db(doing))?)
                .unwrap_or(u32::MAX),
            next_attempt: g("next_attempt")?.unwrap_or_default(),
            last_error: g("last_error")?,
            response_code: g("response_code")?,
            response: g("response")?.and_then(|s| serde_json::from_str(&s).ok()),
        }))
    }

    /// Attempts every pending message that is due at `now`; returns what each became.
    pub async fn deliver_due(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, OutboxError> {
        let rows = sqlx::query("SELECT message_id, destination FROM outbox WHERE status = 'pending' AND next_attempt <= $1 ORDER BY next_attempt, message_id")
            .bind(time_text(&now))
            .fetch_all(self.store.pool())
            .await
            .map_err(db("reading the outbox"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("message_id").map_err(db("reading the outbox"))?;
            let dest: String = r.try_get("destination").map_err(db("reading the outbox"))?;
            out.push(self.attempt(&id, &dest, token).await?);
        }
        Ok(out)
    }

    /// Makes one attempt at a pending message now and records the result.
    pub async fn attempt(
        &self,
        message_id: &str,
        destination: &str,
        token: Option<&str>,
    ) -> Result<OutboxItem, OutboxError> {
        let unknown = || OutboxError::Unknown(message_id.into(), destination.into());
        let row = sqlx::query(
            "SELECT body, attempts, status FROM outbox WHERE message_id = $1 AND destination = $2",
        )
        .bind(message_id)
        .bind(destination)
        .fetch_optional(self.store.pool())
        .await
        .map_err(db("reading the outbox"))?
        .ok_or_else(unknown)?;
        let status: String = row.try_get("status").map_err(db("reading the outbox"))?;
        if status != "pending" {
            return self
                .item(message_id, destination)
                .await?
                .ok_or_else(unknown);
        }
        let body: String = row.try_get("body").map_err(db("reading the outbox"))?;
        let attempts = u32::try_from(
            row.try_get::<i64, _>("attempts")
                .map_err(db("reading the outbox"))?,
        )
        .unwrap_or(u32::MAX)
        .saturating_add(1);
        let result = self
            .post(destination, message_id, body.as_bytes(), token)
            .await;
        let now = Utc::now();
        let (status, next, error, code, response) = match result {
            Attempt::Delivered(code, resp) => {
                (OutboxStatus::Delivered, now, None, Some(code), Some(resp))
            }
            Attempt::Rejected(code, resp, err) => {
                (OutboxStatus::Rejected, now, Some(err), Some(code), resp)
            }
            Attempt::Retry(err) => {
                let status = if attempts >= self.policy.max_attempts {
                    OutboxStatus::Dead
                } else {
                    OutboxStatus::Pending
                };
                let delay = chrono::Duration::from_std(self.policy.delay_after(attempts))
                    .unwrap_or(chrono::Duration::MAX);
                (status, now + delay, Some(err), None, None)
            }
        };
        sqlx::query("UPDATE outbox SET status = $3, attempts = $4, next_attempt = $5, last_error = $6, response_code = $7, response = $8, updated_at = $9 WHERE message_id = $1 AND destination = $2")
            .bind(message_id)
            .bind(destination)
            .bind(status.code())
            .bind(i64::from(attempts))
            .bind(time_text(&next))
            .bind(error)
            .bind(code)
            .bind(response.map(|r| r.to_string()))
            .bind(time_text(&now))
            .execute(self.store.pool())
            .await
            .map_err(db("recording a delivery attempt"))?;
        self.item(message_id, destination)
            .await?
            .ok_or_else(unknown)
    }

    async fn post(
        &self,
        destination: &str,
        message_id: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> Attempt {
        let url = process_url(destination);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("Content-Type", "application/fhir+json"),
            ("Accept", "application/fhir+json"),
        ];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let resp =
            match http::request("POST", &url, &headers, Some(body), self.policy.timeout).await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(e.to_string()),
            };
        let json: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let header = json.as_ref().and_then(|j| {
            j.get("entry")?
                .as_array()?
                .iter()
                .map(|e| &e["resource"])
                .find(|r| r["resourceType"] == "MessageHeader")
                .cloned()
        });
        let answered = header
            .as_ref()
            .and_then(|h| h["response"]["identifier"].as_str())
            == Some(message_id);
        let code = header
            .as_ref()
            .and_then(|h| h["response"]["code"].as_str())
            .map(str::to_string);
        let diagnostics = json
            .as_ref()
            .and_then(|j| {
                let oo = if j["resourceType"] == "OperationOutcome" {
                    Some(j)
                } else {
                    j["entry"]
                        .as_array()?
                        .iter()
                        .map(|e| &e["resource"])
                        .find(|r| r["resourceType"] == "OperationOutcome")
                };
                oo?["issue"][0]["diagnostics"].as_str().map(str::to_string)
            })
            .unwrap_or_default();
        let s = resp.status;
        match (s, code.as_deref()) {
            (200, Some("ok")) if answered => {
                Attempt::Delivered("ok".into(), json.unwrap_or(Value::Null))
            }
            (_, Some("fatal-error")) if answered => Attempt::Rejected(
                "fatal-error".into(),
                json,
                format!("HTTP {s}: {diagnostics}"),
            ),
            (400..=499, _) if s != 408 && s != 429 && !answered => Attempt::Rejected(
                format!("http-{s}"),
                json,
                format!("HTTP {s}: {diagnostics}"),
            ),
            _ if !answered && s == 200 => Attempt::Retry(format!(
                "HTTP 200 but the response does not answer message {message_id}"
            )),
            _ => Attempt::Retry(format!(
                "HTTP {s} {}: {diagnostics}",
                code.unwrap_or_default()
            )),
        }
    }

    /// Attempts one message until it is no longer pending, sleeping between attempts as
    /// the policy says (what `trent send` does).
    pub async fn deliver_until_settled(
        &self,
        message_id: &str,
        destination: &str,
        token: Option<&str>,
    ) -> Result<OutboxItem, OutboxError> {
        loop {
            let item = self.attempt(message_id, destination, token).await?;
            if item.status != OutboxStatus::Pending {
                return Ok(item);
            }
            let due = chrono::DateTime::parse_from_rfc3339(&item.next_attempt)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
        }
    }

    /// The delivery loop: attempts due messages, then sleeps (at most `poll`) until
    /// `shutdown` completes.
    pub async fn run(
        &self,
        token: Option<String>,
        poll: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), OutboxError> {
        tokio::pin!(shutdown);
        loop {
            self.deliver_due(token.as_deref(), Utc::now()).await?;
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let p = OutboxPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(p.delay_after(1), Duration::from_millis(100));
        assert_eq!(p.delay_after(2), Duration::from_millis(200));
        assert_eq!(p.delay_after(3), Duration::from_millis(400));
        assert_eq!(p.delay_after(4), Duration::from_millis(500));
        assert_eq!(p.delay_after(40), Duration::from_millis(500));
        assert_eq!(
            process_url("http://a/fhir/"),
            "http://a/fhir/$process-message"
        );
        assert_eq!(
            process_url("http://a/fhir/$process-message"),
            "http://a/fhir/$process-message"
        );
    }
}

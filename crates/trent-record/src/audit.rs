//! Wiring trent-access's decision and audit to the database: a per-person snapshot of the
//! relationship facts (so the synchronous `Relationships` trait needs no async), and the
//! audit writer that chains entries with trent-access's `AuditLog` and stores the lines in
//! the record database, in the same transaction as the change they record.
//!
//! Why a buffer store under `AuditLog`: the chain (seq, prev hash, canonical form, hash)
//! must be exactly trent-access's, so this module does not compute it; but trent-access's
//! stores are files or memory. `PendingStore` holds the last committed line (the head) and
//! the lines recorded since; the caller takes the pending lines and inserts them into the
//! `audit` table — with the resource writes when there are any — and only then answers the
//! request. If that commit fails, the head is reloaded from the database, so a chain never
//! continues from an entry that was not stored.

use chrono::{DateTime, Utc};
use trent_access::audit::{AccessEvent, AuditEntry, AuditError, AuditLog, AuditStore, StoredLine};
use trent_access::{
    CareEpisode, CarerGrant, Decision, LookupError, OdsCode, PersonFacts, PersonId, Relationships,
    TeamId,
};

use crate::store::{AuditRow, Store, StoreError};

/// The facts about one person, loaded before a decision; answers [`Relationships`] for that
/// person (nobody else has any relationship). A failed load answers every question with a
/// lookup error, so the decision fails closed with `relationship-lookup-failed`.
#[derive(Debug, Clone)]
pub struct PersonSnapshot {
    person: PersonId,
    facts: Result<PersonFacts, String>,
}

impl PersonSnapshot {
    /// Loads the facts about `person` from the store (a failure is kept, not raised).
    pub async fn load(store: &Store, person: &PersonId, now: DateTime<Utc>) -> Self {
        let facts = store
            .person_facts(person.as_str(), now)
            .await
            .map_err(|e| e.to_string());
        PersonSnapshot {
            person: person.clone(),
            facts,
        }
    }

    /// A snapshot from known facts (tests, tools).
    pub fn new(person: PersonId, facts: PersonFacts) -> Self {
        PersonSnapshot {
            person,
            facts: Ok(facts),
        }
    }

    fn facts(&self, person: &PersonId) -> Result<Option<&PersonFacts>, LookupError> {
        match &self.facts {
            Err(e) => Err(LookupError(e.clone())),
            Ok(f) if *person == self.person => Ok(Some(f)),
            Ok(_) => Ok(None),
        }
    }
}

impl Relationships for PersonSnapshot {
    fn registered_practice(&self, person: &PersonId) -> Result<Option<OdsCode>, LookupError> {
        Ok(self
            .facts(person)?
            .and_then(|f| f.registered_practice.clone()))
    }

    fn care_episodes(&self, person: &PersonId) -> Result<Vec<CareEpisode>, LookupError> {
        Ok(self
            .facts(person)?
            .map(|f| f.episodes.clone())
            .unwrap_or_default())
    }

    fn caseload_teams(&self, person: &PersonId) -> Result<Vec<TeamId>, LookupError> {
        Ok(self
            .facts(person)?
            .map(|f| f.caseload_teams.clone())
            .unwrap_or_default())
    }

    fn carer_grants(&self, person: &PersonId) -> Result<Vec<CarerGrant>, LookupError> {
        Ok(self
            .facts(person)?
            .map(|f| f.carer_grants.clone())
            .unwrap_or_default())
    }

    fn national_opt_out(&self, person: &PersonId) -> Result<bool, LookupError> {
        Ok(self.facts(person)?.is_some_and(|f| f.national_opt_out))
    }
}

/// An [`AuditStore`] holding the committed head line and the lines recorded since.
#[derive(Debug, Default)]
pub struct PendingStore {
    head: Option<String>,
    pending: Vec<String>,
}

impl AuditStore for PendingStore {
    fn append_line(&mut self, line: &str) -> Result<(), AuditError> {
        self.pending.push(line.to_string());
        Ok(())
    }

    fn for_each_line(
        &self,
        visit: &mut dyn FnMut(StoredLine) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        for (i, l) in self.head.iter().chain(self.pending.iter()).enumerate() {
            visit(StoredLine {
                number: i as u64 + 1,
                bytes: l.as_bytes().to_vec(),
                terminated: true,
            })?;
        }
        Ok(())
    }
}

/// The single writer of the audit chain (keep it behind a mutex: one head).
#[derive(Debug)]
pub struct AuditWriter {
    log: AuditLog<PendingStore>,
    entries: Vec<AuditEntry>,
}

impl AuditWriter {
    /// Opens the writer at the chain's head as stored.
    pub async fn open(store: &Store) -> Result<Self, StoreError> {
        let head = store.audit_last_line().await?;
        let log = AuditLog::open(PendingStore {
            head,
            pending: Vec::new(),
        })?;
        Ok(AuditWriter {
            log,
            entries: Vec::new(),
        })
    }

    /// Records a decision (in memory until [`AuditWriter::take`] and a commit).
    pub fn record(
        &mut self,
        req: &trent_access::Request<'_>,
        resource_id: Option<&str>,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Ids that are not FHIR ids (a malformed request path) are audited without the id.
        let rid = resource_id.filter(|id| crate::index::is_fhir_id(id));
        let entry = self.log.record(AccessEvent::new(req, rid, decision), now)?;
        self.entries.push(entry);
        Ok(())
    }

    /// The rows recorded since the last take, to insert with the change they record.
    pub fn take(&mut self) -> Vec<AuditRow> {
        let rows = self.entries.iter().map(AuditRow::of).collect();
        self.entries.clear();
        rows
    }

    /// Marks the taken rows committed (keeps only the new head in memory).
    pub fn committed(&mut self) {
        // Rebuild over the head only, so the buffer does not grow without bound.
        let head = self
            .log
            .store()
            .pending
            .last()
            .cloned()
            .or_else(|| self.log.store().head.clone());
        let log = AuditLog::open(PendingStore {
            head,
            pending: Vec::new(),
        })
        .expect("a line this writer produced parses");
        self.log = log;
    }

    /// After a failed commit: drops what was not stored and reloads the head.
    pub async fn reload(&mut self, store: &Store) -> Result<(), StoreError> {
        *self = AuditWriter::open(store).await?;
        Ok(())
    }

    /// Records nothing more and stores what is pending (reads and denials).
    pub async fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        let rows = self.take();
        if rows.is_empty() {
            return Ok(());
        }
        match store.append_audit(&rows).await {
            Ok(()) => {
                self.committed();
                Ok(())
            }
            Err(e) => {
                self.reload(store).await?;
                Err(e)
            }
        }
    }
}

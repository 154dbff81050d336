//! The record store: resources (current version and history), search indexes,
//! relationship facts, accounts, sessions, OAuth2 clients and tokens, and the audit, in
//! one SQL database — SQLite embedded by default, PostgreSQL for multi-user deployments.
//!
//! Why one `sqlx::AnyPool` rather than an enum of typed pools: the schema and every query
//! are written once in portable SQL (TEXT and BIGINT only, `$n` placeholders, `ON
//! CONFLICT` upserts, times as fixed-width RFC 3339 UTC text so that text order is time
//! order), so both databases run literally the same statements and cannot drift apart.
//! What differs — connection set-up (SQLite's WAL journal) — is in [`Store::connect`],
//! and on PostgreSQL write transactions run on a small typed pool beside the `Any` one so
//! that a bundle's thousands of rows go by `COPY` (see [`Tx`]); the statements are the same.
//! Case-insensitive search is done on normalised (lower-case) columns rather than with
//! `LIKE`'s case rules, which differ between the two.
//!
//! Concurrency: every write (resources, audit lines) is made by one task at a time, the
//! holder of the audit writer's lock (`crate::audit`), because the audit is a hash chain
//! with one head. Reads run concurrently on the pool.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use trent_access::audit::{AuditEntry, MemoryAuditStore, VerifyReport, verify};
use trent_access::auth::{AccessToken, ClientRegistration, PasswordPolicy, Session, hash_password};
use trent_access::scopes::{Scope, format_scopes};
use trent_access::{
    CareEpisode, CarerGrant, EpisodeKind, OdsCode, PersonFacts, PersonId, Principal, ResourceKind,
    Role, TeamId, UserId, parse_scopes,
};

use crate::index::{Extracted, OPEN_END};
use crate::search::{Clause, DatePrefix, StrMatch};

/// One versioned step of the schema.
pub struct Migration {
    /// Its number in `schema_version` (ascending, from 1).
    pub version: i64,
    /// What it does, in a few words.
    pub name: &'static str,
    /// Its statements (`migrations/NNNN_*.sql`).
    pub sql: &'static str,
    /// The one backend it runs on (`None`: both); on the other it is recorded as applied
    /// and runs nothing, so both backends agree on the version.
    pub only: Option<Backend>,
}

/// Versioned migrations, applied in order, each in a transaction, and recorded in
/// `schema_version`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "record",
        sql: include_str!("../migrations/0001_record.sql"),
        only: None,
    },
    Migration {
        version: 2,
        name: "messaging",
        sql: include_str!("../migrations/0002_messaging.sql"),
        only: None,
    },
    Migration {
        version: 3,
        name: "leaner writes",
        sql: include_str!("../migrations/0003_leaner_writes.sql"),
        only: None,
    },
    Migration {
        version: 4,
        name: "byte-order keys",
        sql: include_str!("../migrations/0004_byte_order_keys.sql"),
        only: Some(Backend::Postgres),
    },
];

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded, one file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error while {doing}: {source}")]
    Database {
        /// What the store was doing.
        doing: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The URL names no supported database.
    #[error("database URL {0:?}: expected sqlite://… or postgres://…")]
    BadUrl(String),
    /// A stored value is not what the store wrote (hand-edited database).
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which table/column.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A conditional write found another version (HTTP 412).
    #[error("{res_type}/{id}: version {found} is current, the request expected {expected}")]
    VersionConflict {
        /// Type.
        res_type: String,
        /// Id.
        id: String,
        /// Expected version.
        expected: i64,
        /// Current version (0 when the resource does not exist).
        found: i64,
    },
    /// An account or client operation was refused (duplicate id, weak password …).
    #[error("{0}")]
    Refused(String),
    /// The audit machinery failed.
    #[error("audit: {0}")]
    Audit(#[from] trent_access::audit::AuditError),
    /// The task running a commit stopped without finishing it (nothing was committed).
    #[error("the commit task stopped: {0}")]
    CommitTask(String),
}

pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { doing, source }
}

pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

/// Numbered parameters `$a, …, $b-1` for an `IN (…)` list.
fn placeholders(numbers: std::ops::Range<usize>) -> String {
    numbers
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything an access decision needs about `n` persons (`$1..$n`), in one statement:
/// each person's registration, care episodes (by start, then resource), caseload teams,
/// carer grants (by grant id) and national opt-out. Column `p` is the person, `f` the
/// table a row comes from, `o1..o3` keep each table's order. All columns are text on both
/// backends.
fn person_facts_sql(n: usize) -> String {
    let ids = placeholders(1..n + 1);
    format!(
        "SELECT person_id AS p, '0registration' AS f, practice AS a, NULL AS b, NULL AS c, NULL AS d, '' AS o1, '' AS o2, '' AS o3 FROM registration WHERE person_id IN ({ids}) \
UNION ALL SELECT person_id, '1care_link', kind, organisation, start_at, end_at, start_at, res_type, res_id FROM care_link WHERE person_id IN ({ids}) \
UNION ALL SELECT person_id, '2caseload', team_id, NULL, NULL, NULL, team_id, '', '' FROM caseload WHERE person_id IN ({ids}) \
UNION ALL SELECT person_id, '3carer_grant', carer, kinds, expires, revoked, grant_id, '', '' FROM carer_grant WHERE person_id IN ({ids}) \
UNION ALL SELECT person_id, '4opt_out', registered_at, NULL, NULL, NULL, '', '', '' FROM opt_out WHERE person_id IN ({ids}) \
ORDER BY p, f, o1, o2, o3"
    )
}

/// Checkpoints the SQLite write-ahead log every second, off the request path (PASSIVE:
/// it copies what no reader still needs and never blocks readers or the writer), until
/// the store is dropped.
async fn checkpointer(pool: AnyPool, alive: std::sync::Weak<()>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        // A failure (the database busy or closing) is retried at the next tick; the
        // automatic checkpoint remains as a backstop.
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_all(&pool)
            .await;
    }
}

/// The store's time format: RFC 3339 UTC with microseconds (fixed width, sorts as time).
pub fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(what: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(what, format!("{s:?}: {e}")))
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// FHIR type.
    pub res_type: String,
    /// FHIR id.
    pub id: String,
    /// Version (from 1).
    pub version: i64,
    /// The person (Patient id) it belongs to.
    pub person: Option<String>,
    /// When this version was written (RFC 3339).
    pub last_updated: String,
    /// Whether this version is a deletion.
    pub deleted: bool,
    /// The resource, with `id` and `meta.versionId`/`meta.lastUpdated` set.
    pub json: Value,
}

fn resource_of<R: Row>(row: &R) -> Result<StoredResource, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let get = |c: &str| -> Result<String, StoreError> {
        row.try_get::<String, _>(c)
            .map_err(db("reading a resource"))
    };
    let text = get("json")?;
    Ok(StoredResource {
        res_type: get("res_type")?,
        id: get("res_id")?,
        version: row.try_get("version").map_err(db("reading a resource"))?,
        person: row
            .try_get::<Option<String>, _>("person_id")
            .map_err(db("reading a resource"))?,
        last_updated: get("last_updated")?,
        deleted: row
            .try_get::<i64, _>("deleted")
            .map_err(db("reading a resource"))?
            != 0,
        json: serde_json::from_str(&text).map_err(|e| corrupt("resource.json", e.to_string()))?,
    })
}

/// A search match with its JSON not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// FHIR id.
    pub id: String,
    /// The person it is about (the Patient itself for a Patient).
    pub person: Option<String>,
    res_type: String,
    version: i64,
    stored_person: Option<String>,
    last_updated: String,
    deleted: bool,
    json: String,
}

impl SearchHit {
    /// The resource, its JSON parsed.
    pub fn into_resource(self) -> Result<StoredResource, StoreError> {
        Ok(StoredResource {
            json: serde_json::from_str(&self.json)
                .map_err(|e| corrupt("resource.json", e.to_string()))?,
            res_type: self.res_type,
            id: self.id,
            version: self.version,
            person: self.stored_person,
            last_updated: self.last_updated,
            deleted: self.deleted,
        })
    }
}

fn hit_of(row: &AnyRow) -> Result<SearchHit, StoreError> {
    let doing = "reading a resource";
    let get =
        |c: &str| -> Result<String, StoreError> { row.try_get::<String, _>(c).map_err(db(doing)) };
    let res_type = get("res_type")?;
    let id = get("res_id")?;
    let stored_person = row
        .try_get::<Option<String>, _>("person_id")
        .map_err(db(doing))?;
    Ok(SearchHit {
        person: if res_type == "Patient" {
            Some(id.clone())
        } else {
            stored_person.clone()
        },
        version: row.try_get("version").map_err(db(doing))?,
        last_updated: get("last_updated")?,
        deleted: row.try_get::<i64, _>("deleted").map_err(db(doing))? != 0,
        json: get("json")?,
        res_type,
        id,
        stored_person,
    })
}

/// One resource write, validated and indexed, ready to commit.
#[derive(Debug, Clone)]
pub struct Write {
    /// FHIR type.
    pub res_type: String,
    /// FHIR id.
    pub id: String,
    /// The resource body (the store sets `id` and `meta`).
    pub json: Value,
    /// What was derived from it (ignored for deletions).
    pub extracted: Extracted,
    /// `If-Match`: the version that must be current (0: must not exist).
    pub expected_version: Option<i64>,
    /// Delete instead of write.
    pub delete: bool,
    /// The id was assigned by this server for this write ([`crate::service::new_id`]),
    /// so no resource has it: the commit does not look for a current version.
    pub fresh: bool,
}

/// What a committed write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The version now current.
    pub version: i64,
    /// When it was written.
    pub last_updated: String,
    /// Whether the resource did not exist (or was deleted) before.
    pub created: bool,
    /// Whether nothing changed (same content as the current version; no new version).
    pub unchanged: bool,
}

/// What a commit under way needs to finish: the audit lines of its writes, and the
/// inbox record of the message that carried them, if one did.
#[derive(Debug)]
pub struct Finish {
    /// The audit lines, in chain order.
    pub audit: Vec<AuditRow>,
    /// A transfer of care's inbox record, committed with its writes.
    pub inbox: Option<crate::messaging::InboxRecord>,
}

/// A commit started by [`Store::start_commit`].
#[derive(Debug)]
pub struct CommitUnderWay {
    finish: tokio::sync::oneshot::Sender<Option<Finish>>,
    task: tokio::task::JoinHandle<(Vec<Write>, CommitResult)>,
}

/// What a commit task ends with: the outcomes if it committed, `None` if abandoned.
type CommitResult = Result<Option<Vec<WriteOutcome>>, StoreError>;

impl CommitUnderWay {
    /// Adds the audit lines (and inbox record) and commits; the writes come back with
    /// their outcomes.
    pub async fn finish(
        self,
        finish: Finish,
    ) -> Result<(Vec<Write>, Vec<WriteOutcome>), StoreError> {
        // if the task has already failed it no longer listens; its error is the answer
        let _ = self.finish.send(Some(finish));
        let (writes, outcomes) = self.task.await.map_err(commit_task_failed)?;
        let outcomes = outcomes?.expect("a commit given its audit commits or fails");
        Ok((writes, outcomes))
    }

    /// Rolls back what was written; returns once the transaction is over (so that the
    /// caller may write again at once).
    pub async fn abandon(self) {
        let _ = self.finish.send(None);
        let _ = self.task.await;
    }
}

fn commit_task_failed(e: tokio::task::JoinError) -> StoreError {
    StoreError::CommitTask(e.to_string())
}

/// One audit line to append with a write (see `crate::audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The entry's seq.
    pub seq: i64,
    /// The person it is about.
    pub subject: Option<String>,
    /// The JSON line.
    pub line: String,
}

impl AuditRow {
    /// The row for an audit entry.
    pub fn of(e: &AuditEntry) -> Self {
        AuditRow {
            seq: e.seq as i64,
            subject: e.subject_person.as_ref().map(|p| p.to_string()),
            line: e.to_json_line(),
        }
    }
}

/// A user account (people; systems are OAuth2 clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id (user name).
    pub user: UserId,
    /// Its role.
    pub role: Role,
    /// Staff organisation.
    pub organisation: Option<OdsCode>,
    /// Staff team.
    pub team: Option<TeamId>,
    /// The person a citizen account is.
    pub person: Option<PersonId>,
    /// Disabled accounts cannot sign in (accounts are never deleted).
    pub disabled: bool,
}

impl Account {
    /// A first-party principal for this account.
    pub fn principal(&self) -> Principal {
        Principal {
            user: self.user.clone(),
            role: self.role,
            organisation: self.organisation.clone(),
            team: self.team.clone(),
            person: self.person.clone(),
            scopes: None,
            launch_patient: None,
        }
    }
}

/// Builds SQL with numbered `$n` placeholders and their arguments.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) args: Vec<String>,
}

impl Sql {
    pub(crate) fn arg(&mut self, value: impl Into<String>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    pub(crate) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Appends a new argument's placeholder.
    pub(crate) fn push_arg(&mut self, value: impl Into<String>) {
        let a = self.arg(value);
        self.text.push_str(&a);
    }

    /// Appends `column IN ($a, $b, …)` with one argument per value.
    pub(crate) fn push_in<'v>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = &'v String>,
    ) {
        self.text.push_str(column);
        self.text.push_str(" IN (");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_arg(v.clone());
        }
        self.text.push(')');
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = q.bind(a.as_str());
        }
        q
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The record store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// On PostgreSQL, a small typed pool for write transactions (see [`Tx`]).
    pg: Option<sqlx::PgPool>,
    backend: Backend,
    /// Held by every clone; the background checkpointer stops when the last one is dropped.
    _alive: std::sync::Arc<()>,
    /// The audit chain's single writer (opened on first use).
    pub(crate) audit_writer: std::sync::Arc<tokio::sync::Mutex<Option<crate::audit::AuditWriter>>>,
    /// Reads' and denials' decisions waiting for the next group commit of audit lines
    /// (see `Decider::flush`).
    pub(crate) audit_queue: std::sync::Arc<std::sync::Mutex<Vec<crate::service::QueuedAudit>>>,
    /// Sessions (with their accounts) by token hash, for a second (see `crate::cache`).
    sessions: std::sync::Arc<crate::cache::Cache<String, (Session, Option<Account>)>>,
    /// Relationship facts by person, for a second (see `crate::cache`).
    facts: std::sync::Arc<crate::cache::Cache<String, PersonFacts>>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` — created if missing — or `postgres://…`) and
    /// applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite://") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            // No ping before each use: it was a round trip to PostgreSQL (a thread
            // hand-off on SQLite) for every statement. A connection that died is found
            // by the statement itself, which fails the one request (500); the pool then
            // drops it and opens another.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // In WAL mode, NORMAL syncs at checkpoints rather than at every
                        // commit: a committed transaction survives a crash of the process
                        // (kill -9); only a power loss may undo the last commits (SQLite
                        // documentation, "PRAGMA synchronous").
                        sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous=NORMAL").await?;
                        // Checkpoints run in the background (see `checkpointer`), not inside
                        // whichever commit crosses the threshold: a checkpoint syncs the
                        // database file, and in a commit it would stall every request
                        // waiting for the audit writer. The threshold stays as a backstop.
                        sqlx::Executor::execute(&mut *conn, "PRAGMA wal_autocheckpoint=10000")
                            .await?;
                        // A page cache of 32 MiB per connection instead of SQLite's 2 MiB: a
                        // bundle of 1,000 resources dirties pages all over the index B-trees
                        // (random UUID keys), and a cache smaller than that spills dirty pages
                        // to the WAL in the middle of the transaction.
                        sqlx::Executor::execute(&mut *conn, "PRAGMA cache_size=-32768").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(db("connecting"))?;
        if backend == Backend::Sqlite {
            // WAL: readers do not block the writer; the setting is kept in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .fetch_all(&pool)
                .await
                .map_err(db("setting the SQLite journal mode"))?;
        }
        let alive = std::sync::Arc::new(());
        if backend == Backend::Sqlite {
            tokio::spawn(checkpointer(
                pool.clone(),
                std::sync::Arc::downgrade(&alive),
            ));
        }
        let pg = if backend == Backend::Postgres {
            // writes are made one at a time (the audit writer's lock), so two connections
            Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await
                    .map_err(db("connecting"))?,
            )
        } else {
            None
        };
        let store = Store {
            _alive: alive,
            pool,
            pg,
            backend,
            audit_writer: Default::default(),
            audit_queue: Default::default(),
            sessions: Default::default(),
            facts: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating if needed) the SQLite store at `path`.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Store, StoreError> {
        Store::connect(&format!("sqlite://{}", path.display())).await
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for tests and tools that inspect the database directly).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
            .fetch_one(&self.pool)
            .await
            .map_err(db("reading the schema version"))?;
        row.try_get::<i64, _>("v")
            .map_err(db("reading the schema version"))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(db("creating schema_version"))?;
        let current = self.schema_version().await?;
        for m in MIGRATIONS {
            if m.version <= current {
                continue;
            }
            let mut tx = self.pool.begin().await.map_err(db("migrating"))?;
            let here = m.only.is_none_or(|b| b == self.backend);
            for stmt in statements(m.sql).into_iter().filter(|_| here) {
                sqlx::query(&stmt)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("applying a migration"))?;
            }
            sqlx::query(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(time_text(&Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(db("recording a migration"))?;
            tx.commit().await.map_err(db("committing a migration"))?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- resources

    /// The current version of a resource (deleted ones included, flagged).
    pub async fn get(
        &self,
        res_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let row = sqlx::query("SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE res_type = $1 AND res_id = $2")
            .bind(res_type)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a resource"))?;
        row.as_ref().map(resource_of).transpose()
    }

    /// The current versions of many resources (deleted ones included, flagged), by
    /// (type, id): one query per type and chunk instead of one per resource.
    pub async fn get_all(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), StoredResource>, StoreError> {
        let rows = self
            .rows_by_key(
                "SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE res_type = $1 AND res_id IN (",
                keys,
                "reading resources",
            )
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let r = resource_of(row)?;
            out.insert((r.res_type.clone(), r.id.clone()), r);
        }
        Ok(out)
    }

    /// Which of these (type, id) are live resources (stored and not deleted): a few
    /// keys-only queries, no resource read.
    pub async fn live_keys(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let doing = "checking references";
        let rows = self
            .rows_by_key(
                "SELECT res_type, res_id FROM resource WHERE deleted = 0 AND res_type = $1 AND res_id IN (",
                keys,
                doing,
            )
            .await?;
        rows.iter()
            .map(|row| {
                let t: String = row.try_get("res_type").map_err(db(doing))?;
                let id: String = row.try_get("res_id").map_err(db(doing))?;
                Ok((t, id))
            })
            .collect()
    }

    /// The rows of `select` (ending `res_type = $1 AND res_id IN (`) for these distinct
    /// (type, id) keys: one query per type and 200 ids.
    async fn rows_by_key(
        &self,
        select: &str,
        keys: &[(String, String)],
        doing: &'static str,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut by_type: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (t, id) in keys {
            by_type.entry(t.as_str()).or_default().insert(id.as_str());
        }
        let mut out = Vec::with_capacity(keys.len());
        for (t, ids) in by_type {
            let ids: Vec<&str> = ids.into_iter().collect();
            for chunk in ids.chunks(200) {
                let sql = format!("{select}{})", placeholders(2..chunk.len() + 2));
                let mut q = sqlx::query(&sql).bind(t);
                for id in chunk {
                    q = q.bind(*id);
                }
                out.extend(q.fetch_all(&self.pool).await.map_err(db(doing))?);
            }
        }
        Ok(out)
    }

    /// One version of a resource: the current one (from `resource`) or a superseded one
    /// (from `resource_history`), deletions included.
    pub async fn get_version(
        &self,
        res_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<StoredResource>, StoreError> {
        let row = sqlx::query("SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE res_type = $1 AND res_id = $2 AND version = $3 UNION ALL SELECT h.res_type, h.res_id, h.version, r.person_id, h.last_updated, h.deleted, h.json FROM resource_history h JOIN resource r ON r.res_type = h.res_type AND r.res_id = h.res_id WHERE h.res_type = $1 AND h.res_id = $2 AND h.version = $3")
            .bind(res_type)
            .bind(id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a resource version"))?;
        row.as_ref().map(resource_of).transpose()
    }

    /// Live (not deleted) resources by type and id, in id order.
    pub async fn get_many(
        &self,
        res_type: &str,
        ids: &[String],
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let mut sql = Sql::default();
            sql.push("SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE deleted = 0 AND res_type = ");
            sql.push_arg(res_type);
            sql.push(" AND ");
            sql.push_in("res_id", chunk);
            sql.push(" ORDER BY res_id");
            for row in sql
                .query()
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading resources"))?
            {
                out.push(resource_of(&row)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The id of the live Patient with this identifier (`system|value`), if any.
    pub async fn patient_by_identifier(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT t.res_id AS id FROM idx_token t JOIN resource r ON r.res_type = t.res_type AND r.res_id = t.res_id WHERE t.res_type = 'Patient' AND t.param = 'identifier' AND t.system = $1 AND t.code = $2 AND r.deleted = 0 ORDER BY t.res_id LIMIT 1")
            .bind(system)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("looking up a patient identifier"))?;
        row.map(|r| {
            r.try_get::<String, _>("id")
                .map_err(db("looking up a patient identifier"))
        })
        .transpose()
    }

    /// Every live resource of a person, of the given types, in (type order, id) order.
    pub async fn by_person(
        &self,
        person: &str,
        types: &[&str],
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut out = Vec::new();
        for t in types {
            let rows = sqlx::query("SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE person_id = $1 AND res_type = $2 AND deleted = 0 ORDER BY res_id")
                .bind(person)
                .bind(*t)
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading a person's record"))?;
            for row in &rows {
                out.push(resource_of(row)?);
            }
        }
        Ok(out)
    }

    /// Live resources of `res_type` matching every clause (AND; alternatives within a
    /// clause OR), in id order, at most `limit`, as unparsed hits.
    ///
    /// Why unparsed: a search is decided per person found and then paged, so most matches
    /// may never be sent (a patient's 300 observations, `_count=20`); only the page's
    /// JSON is parsed ([`SearchHit::into_resource`]).
    pub async fn search(
        &self,
        res_type: &str,
        clauses: &[Clause],
        limit: usize,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let mut sql = Sql::default();
        sql.push("SELECT r.res_type, r.res_id, r.version, r.person_id, r.last_updated, r.deleted, r.json FROM resource r WHERE r.deleted = 0 AND r.res_type = ");
        sql.push_arg(res_type);
        for c in clauses {
            sql.push(" AND (");
            clause_sql(&mut sql, c);
            sql.push(")");
        }
        sql.push(&format!(
            " ORDER BY r.res_id LIMIT {}",
            limit.min(1_000_000)
        ));
        let rows = sql
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(db("searching"))?;
        rows.iter().map(hit_of).collect()
    }

    /// The targets of reference parameter `param` of the given resources: `(source id,
    /// target type, target id)`.
    pub async fn references_from(
        &self,
        res_type: &str,
        ids: &[String],
        param: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        let person = matches!(param, PERSON_PARAM_A | PERSON_PARAM_B) && res_type != "Patient";
        for chunk in ids.chunks(200) {
            let mut sql = Sql::default();
            if person {
                sql.push("SELECT res_id, 'Patient' AS target_type, person_id AS target_id FROM resource WHERE person_id IS NOT NULL AND deleted = 0 AND res_type = ");
                sql.push_arg(res_type);
            } else {
                sql.push(
                    "SELECT res_id, target_type, target_id FROM idx_reference WHERE res_type = ",
                );
                sql.push_arg(res_type);
                sql.push(" AND param = ");
                sql.push_arg(param);
            }
            sql.push(" AND ");
            sql.push_in("res_id", chunk);
            sql.push(" ORDER BY res_id, target_type, target_id");
            for row in sql
                .query()
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading references"))?
            {
                let g = |c: &str| {
                    row.try_get::<String, _>(c)
                        .map_err(db("reading references"))
                };
                out.push((g("res_id")?, g("target_type")?, g("target_id")?));
            }
        }
        Ok(out)
    }

    /// Commits resource writes and audit lines in one transaction: all or nothing.
    pub async fn commit(
        &self,
        writes: &[Write],
        audit: &[AuditRow],
        now: DateTime<Utc>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        self.commit_with(writes, audit, now, None).await
    }

    /// [`Store::commit`], also recording a message in the inbox in the same transaction
    /// (a message is acknowledged only once it and its writes are committed together).
    pub async fn commit_with(
        &self,
        writes: &[Write],
        audit: &[AuditRow],
        now: DateTime<Utc>,
        inbox: Option<&crate::messaging::InboxRecord>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let finish = Finish {
            audit: audit.to_vec(),
            inbox: inbox.cloned(),
        };
        self.commit_then(writes, now, async { Some(finish) })
            .await
            .map(|o| o.expect("a commit that is never abandoned"))
    }

    /// Starts committing `writes` on a task of its own: the current versions are read,
    /// the transaction begun and the resources and their index rows inserted while the
    /// caller goes on (deciding and chaining the audit of the same writes); then
    /// [`CommitUnderWay::finish`] adds the audit lines (and an inbox record) and commits,
    /// or [`CommitUnderWay::abandon`] rolls everything back. All or nothing as
    /// [`Store::commit`]: nothing is visible to anyone before the commit.
    ///
    /// Why: the database's work on a bundle's inserts and the server's work on its
    /// decisions and audit used to follow one another; on two cores they overlap
    /// (measured: docs/benchmarks.md, issue 7).
    pub fn start_commit(&self, writes: Vec<Write>, now: DateTime<Utc>) -> CommitUnderWay {
        let (tx, rx) = tokio::sync::oneshot::channel::<Option<Finish>>();
        let store = self.clone();
        let task = tokio::spawn(async move {
            let outcomes = store
                .commit_then(&writes, now, async move { rx.await.ok().flatten() })
                .await;
            (writes, outcomes)
        });
        CommitUnderWay { finish: tx, task }
    }

    /// Writes `writes`, then waits for `then`: with audit lines (and an inbox record) it
    /// adds them and commits (`Some(outcomes)`); with `None` it rolls back (`None`).
    async fn commit_then(
        &self,
        writes: &[Write],
        now: DateTime<Utc>,
        then: impl std::future::Future<Output = Option<Finish>>,
    ) -> Result<Option<Vec<WriteOutcome>>, StoreError> {
        // current versions, read before the transaction in a few queries (writes are
        // serialised by the audit writer, so nothing changes them in between)
        let keys: Vec<(String, String)> = writes
            .iter()
            .filter(|w| !w.fresh)
            .map(|w| (w.res_type.clone(), w.id.clone()))
            .collect();
        let mut t = crate::trace::Steps::start(|| format!("commit of {} writes", writes.len()));
        let mut known = self.get_all(&keys).await?;
        crate::trace::step(&mut t, "current versions");
        let mut tx = self.begin_write().await?;
        let now_text = time_text(&now);
        let mut outcomes = Vec::with_capacity(writes.len());
        // Inserts are gathered and sent as multi-row statements (one round trip per table
        // and chunk instead of one per row: each round trip to SQLite is a thread hand-off).
        // A resource written twice in one commit flushes first, so its second write sees
        // the first.
        let mut pending = Pending::default();
        let mut seen = HashSet::new();
        for w in writes {
            let current = if seen.insert((w.res_type.as_str(), w.id.as_str())) {
                Some(known.remove(&(w.res_type.clone(), w.id.clone())))
            } else {
                pending.flush(&mut tx).await?;
                None // written earlier in this commit: read it back
            };
            outcomes.push(write_one(&mut tx, w, &now_text, &mut pending, current).await?);
        }
        crate::trace::step(&mut t, "rows");
        pending.flush(&mut tx).await?;
        crate::trace::step(&mut t, "inserts");
        let Some(finish) = then.await else {
            tx.rollback().await?;
            return Ok(None);
        };
        crate::trace::step(&mut t, "waiting for the audit");
        for a in finish.audit {
            pending
                .audit
                .push(vec![Arg::I(a.seq), Arg::O(a.subject), Arg::S(a.line)]);
        }
        pending.flush(&mut tx).await?;
        crate::trace::step(&mut t, "audit inserts");
        if let Some(m) = &finish.inbox {
            crate::messaging::insert_inbox(&mut tx, m).await?;
        }
        tx.commit().await?;
        crate::trace::step(&mut t, "COMMIT");
        crate::trace::done(t);
        // a resource may carry a registration or care episode
        self.facts.invalidate_all();
        Ok(Some(outcomes))
    }

    /// Starts a write transaction: on PostgreSQL on the typed pool, elsewhere on the pool.
    async fn begin_write(&self) -> Result<Tx<'static>, StoreError> {
        let doing = db("starting a transaction");
        Ok(match &self.pg {
            Some(pg) => Tx::Pg(pg.begin().await.map_err(doing)?),
            None => Tx::Any(self.pool.begin().await.map_err(doing)?),
        })
    }

    /// Appends audit lines on their own (reads and denials change nothing else).
    pub async fn append_audit(&self, audit: &[AuditRow]) -> Result<(), StoreError> {
        if audit.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<Arg>> = audit
            .iter()
            .map(|a| {
                vec![
                    Arg::I(a.seq),
                    Arg::O(a.subject.clone()),
                    Arg::S(a.line.clone()),
                ]
            })
            .collect();
        if let Some(pg) = &self.pg {
            // one statement, atomic on its own: no BEGIN and COMMIT round trips (every
            // read waits for its audit line)
            let mut conn = pg.acquire().await.map_err(db("connecting"))?;
            return insert_json(&mut conn, AUDIT_TABLE, "", "", &rows).await;
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        insert_values(&mut tx, AUDIT_TABLE, "", "", &rows).await?;
        tx.commit().await.map_err(db("committing audit lines"))
    }

    // ---------------------------------------------------------------- relationships

    /// Everything the access decision needs to know about a person (see
    /// [`crate::audit::PersonSnapshot`]).
    pub async fn person_facts(
        &self,
        person: &str,
        now: DateTime<Utc>,
    ) -> Result<PersonFacts, StoreError> {
        let _ = now;
        if let Some(f) = self.facts.get(&person.to_string()) {
            return Ok(f);
        }
        let generation = self.facts.generation();
        let facts = self.person_facts_uncached(person).await?;
        self.facts
            .put(generation, person.to_string(), facts.clone());
        Ok(facts)
    }

    async fn person_facts_uncached(&self, person: &str) -> Result<PersonFacts, StoreError> {
        let mut all = self.person_facts_of(&[person]).await?;
        Ok(all.remove(person).unwrap_or_default())
    }

    /// [`Store::person_facts`] for many persons at once (a bundle about a few hundred
    /// people: one statement per 200 of them, not one each).
    pub async fn person_facts_many(
        &self,
        persons: &[&str],
    ) -> Result<HashMap<String, PersonFacts>, StoreError> {
        let mut out = HashMap::with_capacity(persons.len());
        let mut missing: Vec<&str> = Vec::new();
        for p in persons {
            match self.facts.get(&p.to_string()) {
                Some(f) => {
                    out.insert(p.to_string(), f);
                }
                None => missing.push(p),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        let generation = self.facts.generation();
        for chunk in missing.chunks(200) {
            let mut found = self.person_facts_of(chunk).await?;
            for p in chunk {
                let f = found.remove(*p).unwrap_or_default();
                self.facts.put(generation, p.to_string(), f.clone());
                out.insert(p.to_string(), f);
            }
        }
        Ok(out)
    }

    /// The facts of these persons from the database (persons with none are absent).
    async fn person_facts_of(
        &self,
        persons: &[&str],
    ) -> Result<HashMap<String, PersonFacts>, StoreError> {
        let doing = "reading relationship facts";
        // One statement, not five per person: every access decision reads these, and each
        // statement is a round trip (a thread hand-off on SQLite, a network one on
        // PostgreSQL).
        let sql = person_facts_sql(persons.len());
        let mut q = sqlx::query(&sql);
        for p in persons {
            q = q.bind(*p);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db(doing))?;
        let mut all: HashMap<String, PersonFacts> = HashMap::new();
        for row in &rows {
            let p: String = row.try_get("p").map_err(db(doing))?;
            let facts = all.entry(p).or_default();
            let f: String = row.try_get("f").map_err(db(doing))?;
            let opt = |c: &str| row.try_get::<Option<String>, _>(c).map_err(db(doing));
            let req = |c: &str, what: &'static str| -> Result<String, StoreError> {
                opt(c)?.ok_or_else(|| corrupt(what, "missing"))
            };
            match f.as_str() {
                "0registration" => {
                    let p = req("a", "registration.practice")?;
                    facts.registered_practice = Some(
                        OdsCode::new(p)
                            .map_err(|e| corrupt("registration.practice", e.to_string()))?,
                    );
                }
                "1care_link" => {
                    let kind = req("a", "care_link.kind")?;
                    let org = req("b", "care_link.organisation")?;
                    let start = req("c", "care_link.start_at")?;
                    let end = opt("d")?;
                    facts.episodes.push(CareEpisode {
                        kind: EpisodeKind::from_code(&kind)
                            .ok_or_else(|| corrupt("care_link.kind", kind.clone()))?,
                        organisation: OdsCode::new(org)
                            .map_err(|e| corrupt("care_link.organisation", e.to_string()))?,
                        start: parse_time("care_link.start_at", &start)?,
                        end: end
                            .map(|e| parse_time("care_link.end_at", &e))
                            .transpose()?,
                    });
                }
                "2caseload" => {
                    let t = req("a", "caseload.team_id")?;
                    facts.caseload_teams.push(
                        TeamId::new(t).map_err(|e| corrupt("caseload.team_id", e.to_string()))?,
                    );
                }
                "3carer_grant" => {
                    let carer = req("a", "carer_grant.carer")?;
                    let kinds = req("b", "carer_grant.kinds")?;
                    let expires = opt("c")?;
                    let revoked = opt("d")?;
                    facts.carer_grants.push(CarerGrant {
                        carer: UserId::new(carer)
                            .map_err(|e| corrupt("carer_grant.carer", e.to_string()))?,
                        kinds: kinds
                            .split(',')
                            .filter(|k| !k.is_empty())
                            .map(|k| {
                                ResourceKind::from_code(k)
                                    .ok_or_else(|| corrupt("carer_grant.kinds", k.to_string()))
                            })
                            .collect::<Result<_, _>>()?,
                        expires: expires
                            .map(|e| parse_time("carer_grant.expires", &e))
                            .transpose()?,
                        revoked: revoked
                            .map(|e| parse_time("carer_grant.revoked", &e))
                            .transpose()?,
                    });
                }
                "4opt_out" => facts.national_opt_out = true,
                other => return Err(corrupt("relationship facts", other.to_string())),
            }
        }
        Ok(all)
    }

    /// Puts a person on (or takes them off) a team's caseload.
    pub async fn set_caseload(
        &self,
        person: &PersonId,
        team: &TeamId,
        on: bool,
    ) -> Result<(), StoreError> {
        let q = if on {
            "INSERT INTO caseload (person_id, team_id) VALUES ($1, $2) ON CONFLICT (person_id, team_id) DO NOTHING"
        } else {
            "DELETE FROM caseload WHERE person_id = $1 AND team_id = $2"
        };
        sqlx::query(q)
            .bind(person.as_str())
            .bind(team.as_str())
            .execute(&self.pool)
            .await
            .map_err(db("updating a caseload"))?;
        self.facts.invalidate_all();
        Ok(())
    }

    /// Records or withdraws a national data opt-out.
    pub async fn set_opt_out(
        &self,
        person: &PersonId,
        opted_out: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = if opted_out {
            sqlx::query("INSERT INTO opt_out (person_id, registered_at) VALUES ($1, $2) ON CONFLICT (person_id) DO NOTHING")
                .bind(person.as_str())
                .bind(time_text(&now))
        } else {
            sqlx::query("DELETE FROM opt_out WHERE person_id = $1").bind(person.as_str())
        };
        q.execute(&self.pool)
            .await
            .map_err(db("updating an opt-out"))?;
        self.facts.invalidate_all();
        Ok(())
    }

    /// Records a citizen's carer grant under `grant_id` (replacing one with that id).
    pub async fn put_carer_grant(
        &self,
        grant_id: &str,
        person: &PersonId,
        grant: &CarerGrant,
    ) -> Result<(), StoreError> {
        let kinds = grant
            .kinds
            .iter()
            .map(|k| k.code())
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query("INSERT INTO carer_grant (grant_id, person_id, carer, kinds, expires, revoked) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (grant_id) DO UPDATE SET person_id = excluded.person_id, carer = excluded.carer, kinds = excluded.kinds, expires = excluded.expires, revoked = excluded.revoked")
            .bind(grant_id)
            .bind(person.as_str())
            .bind(grant.carer.as_str())
            .bind(kinds)
            .bind(grant.expires.as_ref().map(time_text))
            .bind(grant.revoked.as_ref().map(time_text))
            .execute(&self.pool)
            .await
            .map_err(db("recording a carer grant"))?;
        self.facts.invalidate_all();
        Ok(())
    }

    /// A person's carer grants with their ids, in id order.
    pub async fn carer_grants_of(
        &self,
        person: &str,
    ) -> Result<Vec<(String, CarerGrant)>, StoreError> {
        let ids: Vec<String> =
            sqlx::query("SELECT grant_id FROM carer_grant WHERE person_id = $1 ORDER BY grant_id")
                .bind(person)
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading carer grants"))?
                .iter()
                .map(|r| {
                    r.try_get::<String, _>("grant_id")
                        .map_err(db("reading carer grants"))
                })
                .collect::<Result<_, _>>()?;
        // person_facts reads the grants in the same (grant id) order.
        let grants = self.person_facts_uncached(person).await?.carer_grants;
        if grants.len() != ids.len() {
            return Err(corrupt("carer_grant", "grants changed while being read"));
        }
        Ok(ids.into_iter().zip(grants).collect())
    }

    /// The person whose grant this is, if the grant exists.
    pub async fn carer_grant_person(&self, grant_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT person_id FROM carer_grant WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a carer grant"))?;
        row.map(|r| {
            r.try_get::<String, _>("person_id")
                .map_err(db("reading a carer grant"))
        })
        .transpose()
    }

    /// Revokes a carer grant at `at`. Returns whether the grant exists.
    pub async fn revoke_carer_grant(
        &self,
        grant_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE carer_grant SET revoked = $2 WHERE grant_id = $1")
            .bind(grant_id)
            .bind(time_text(&at))
            .execute(&self.pool)
            .await
            .map_err(db("revoking a carer grant"))?;
        self.facts.invalidate_all();
        Ok(r.rows_affected() > 0)
    }

    // ---------------------------------------------------------------- accounts

    /// Creates an account with a password (checked against the password policy and
    /// stored as an Argon2id hash). Refuses an existing id.
    pub async fn create_account(
        &self,
        account: &Account,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        PasswordPolicy::default()
            .check(password, account.user.as_str())
            .map_err(|e| StoreError::Refused(format!("password for {}: {e}", account.user)))?;
        let hash = hash_password(password).map_err(|e| StoreError::Refused(e.to_string()))?;
        let r = sqlx::query("INSERT INTO account (user_id, role, organisation, team, person_id, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id) DO NOTHING")
            .bind(account.user.as_str())
            .bind(account.role.code())
            .bind(account.organisation.as_ref().map(|o| o.to_string()))
            .bind(account.team.as_ref().map(|o| o.to_string()))
            .bind(account.person.as_ref().map(|o| o.to_string()))
            .bind(hash)
            .bind(i64::from(account.disabled))
            .bind(time_text(&now))
            .execute(&self.pool)
            .await
            .map_err(db("creating an account"))?;
        self.sessions.invalidate_all();
        if r.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "account {} already exists",
                account.user
            )));
        }
        Ok(())
    }

    /// An account and its password hash.
    pub async fn account(&self, user: &str) -> Result<Option<(Account, String)>, StoreError> {
        let doing = "reading an account";
        let Some(row) = sqlx::query("SELECT user_id, role, organisation, team, person_id, password_hash, disabled FROM account WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| row.try_get::<Option<String>, _>(c).map_err(db(doing));
        let bad = |what: &'static str| move |e: trent_access::IdError| corrupt(what, e.to_string());
        let role_text = g("role")?.unwrap_or_default();
        let account = Account {
            user: UserId::new(g("user_id")?.unwrap_or_default()).map_err(bad("account.user_id"))?,
            role: Role::from_code(&role_text)
                .ok_or_else(|| corrupt("account.role", role_text.clone()))?,
            organisation: g("organisation")?
                .map(OdsCode::new)
                .transpose()
                .map_err(bad("account.organisation"))?,
            team: g("team")?
                .map(TeamId::new)
                .transpose()
                .map_err(bad("account.team"))?,
            person: g("person_id")?
                .map(PersonId::new)
                .transpose()
                .map_err(bad("account.person_id"))?,
            disabled: row.try_get::<i64, _>("disabled").map_err(db(doing))? != 0,
        };
        Ok(Some((account, g("password_hash")?.unwrap_or_default())))
    }

    /// Disables or re-enables an account.
    pub async fn set_account_disabled(
        &self,
        user: &UserId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE account SET disabled = $2 WHERE user_id = $1")
            .bind(user.as_str())
            .bind(i64::from(disabled))
            .execute(&self.pool)
            .await
            .map_err(db("updating an account"))?;
        self.sessions.invalidate_all();
        Ok(r.rows_affected() > 0)
    }

    /// Replaces an account's password hash (rehash on login).
    pub async fn set_password_hash(&self, user: &UserId, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE account SET password_hash = $2 WHERE user_id = $1")
            .bind(user.as_str())
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(db("updating a password hash"))?;
        self.sessions.invalidate_all();
        Ok(())
    }

    /// Stores a new session (by token hash).
    pub async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO session (token_hash, user_id, created, last_seen, expires) VALUES ($1, $2, $3, $4, $5)")
            .bind(s.token_hash.as_str())
            .bind(s.user.as_str())
            .bind(time_text(&s.created))
            .bind(time_text(&s.last_seen))
            .bind(time_text(&s.expires))
            .execute(&self.pool)
            .await
            .map_err(db("storing a session"))?;
        Ok(())
    }

    /// The session stored under a token hash.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let doing = "reading a session";
        let Some(row) = sqlx::query("SELECT token_hash, user_id, created, last_seen, expires FROM session WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| row.try_get::<String, _>(c).map_err(db(doing));
        Ok(Some(Session {
            token_hash: g("token_hash")?,
            user: UserId::new(g("user_id")?)
                .map_err(|e| corrupt("session.user_id", e.to_string()))?,
            created: parse_time("session.created", &g("created")?)?,
            last_seen: parse_time("session.last_seen", &g("last_seen")?)?,
            expires: parse_time("session.expires", &g("expires")?)?,
        }))
    }

    /// The session stored under a token hash and its account (`None` if the account no
    /// longer exists), through the session cache (see `crate::cache`).
    pub async fn session_with_account(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Session, Option<Account>)>, StoreError> {
        let key = token_hash.to_string();
        if let Some(v) = self.sessions.get(&key) {
            return Ok(Some(v));
        }
        let generation = self.sessions.generation();
        let Some(session) = self.session(token_hash).await? else {
            return Ok(None);
        };
        let account = self.account(session.user.as_str()).await?.map(|(a, _)| a);
        self.sessions
            .put(generation, key, (session.clone(), account.clone()));
        Ok(Some((session, account)))
    }

    /// Records a session's latest activity.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        last_seen: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE session SET last_seen = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(time_text(&last_seen))
            .execute(&self.pool)
            .await
            .map_err(db("updating a session"))?;
        self.sessions.invalidate(&token_hash.to_string());
        Ok(())
    }

    /// Ends a session (sign-out, expiry).
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM session WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db("ending a session"))?;
        self.sessions.invalidate(&token_hash.to_string());
        Ok(())
    }

    /// Stores an OAuth2 client registration (refuses an existing id).
    pub async fn register_client(&self, reg: &ClientRegistration) -> Result<(), StoreError> {
        let scopes: Vec<Scope> = reg.allowed.iter().copied().map(Scope::Resource).collect();
        let r = sqlx::query("INSERT INTO oauth_client (client_id, secret_hash, scopes) VALUES ($1, $2, $3) ON CONFLICT (client_id) DO NOTHING")
            .bind(reg.client_id.as_str())
            .bind(reg.secret_hash.as_str())
            .bind(format_scopes(&scopes))
            .execute(&self.pool)
            .await
            .map_err(db("registering a client"))?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "client {} already exists",
                reg.client_id
            )));
        }
        Ok(())
    }

    /// A client registration.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRegistration>, StoreError> {
        let doing = "reading a client";
        let Some(row) = sqlx::query(
            "SELECT client_id, secret_hash, scopes FROM oauth_client WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| row.try_get::<String, _>(c).map_err(db(doing));
        let scopes = parse_scopes(&g("scopes")?)
            .map_err(|e| corrupt("oauth_client.scopes", e.to_string()))?;
        Ok(Some(ClientRegistration {
            client_id: UserId::new(g("client_id")?)
                .map_err(|e| corrupt("oauth_client.client_id", e.to_string()))?,
            secret_hash: g("secret_hash")?,
            allowed: scopes
                .into_iter()
                .filter_map(|s| match s {
                    Scope::Resource(r) => Some(r),
                    _ => None,
                })
                .collect(),
        }))
    }

    /// Stores an issued access token (by hash).
    pub async fn insert_token(&self, t: &AccessToken) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_token (token_hash, client_id, scopes, issued, expires) VALUES ($1, $2, $3, $4, $5)")
            .bind(t.token_hash.as_str())
            .bind(t.client_id.as_str())
            .bind(t.scope_string())
            .bind(time_text(&t.issued))
            .bind(time_text(&t.expires))
            .execute(&self.pool)
            .await
            .map_err(db("storing an access token"))?;
        Ok(())
    }

    /// The access token stored under a hash.
    pub async fn token(&self, token_hash: &str) -> Result<Option<AccessToken>, StoreError> {
        let doing = "reading an access token";
        let Some(row) = sqlx::query("SELECT token_hash, client_id, scopes, issued, expires FROM access_token WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(doing))?
        else {
            return Ok(None);
        };
        let g = |c: &str| row.try_get::<String, _>(c).map_err(db(doing));
        Ok(Some(AccessToken {
            token_hash: g("token_hash")?,
            client_id: UserId::new(g("client_id")?)
                .map_err(|e| corrupt("access_token.client_id", e.to_string()))?,
            scopes: parse_scopes(&g("scopes")?)
                .map_err(|e| corrupt("access_token.scopes", e.to_string()))?,
            issued: parse_time("access_token.issued", &g("issued")?)?,
            expires: parse_time("access_token.expires", &g("expires")?)?,
        }))
    }

    // ---------------------------------------------------------------- audit

    /// The last audit line (the chain's head), if any.
    pub async fn audit_last_line(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT line FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading the audit head"))?;
        row.map(|r| {
            r.try_get::<String, _>("line")
                .map_err(db("reading the audit head"))
        })
        .transpose()
    }

    /// Every audit line, in seq order.
    pub async fn audit_lines(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT line FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the audit"))?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("line")
                    .map_err(db("reading the audit"))
            })
            .collect()
    }

    /// Every audit entry about a person, in order. A line that does not parse is an error
    /// naming its seq (never skipped).
    pub async fn audit_for_person(&self, person: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, line FROM audit WHERE subject_person = $1 ORDER BY seq")
                .bind(person)
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading the audit"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get("seq").map_err(db("reading the audit"))?;
            let line: String = r.try_get("line").map_err(db("reading the audit"))?;
            let e = AuditEntry::from_json_line(&line)
                .map_err(|d| corrupt("audit.line", format!("seq {seq}: {d}")))?;
            if e.subject_person.as_ref().map(|p| p.as_str()) != Some(person) {
                return Err(corrupt(
                    "audit.subject_person",
                    format!("seq {seq}: column and line disagree"),
                ));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Verifies the whole audit chain as stored (trent-access's verification over the
    /// lines in seq order), optionally against a checkpoint `seq:hash` kept elsewhere.
    pub async fn verify_audit(
        &self,
        checkpoint: Option<&trent_access::audit::Checkpoint>,
    ) -> Result<VerifyReport, StoreError> {
        let mut bytes = Vec::new();
        for line in self.audit_lines().await? {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        Ok(verify(&MemoryAuditStore { bytes }, checkpoint)?)
    }
}

/// Splits a migration into statements: comment lines dropped, `;` at a line's end ends one.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            let s = cur.trim().trim_end_matches(';').to_string();
            out.push(s);
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The reference search parameters that name the person a resource belongs to: answered
/// from `resource.person_id`, not from `idx_reference`.
const PERSON_PARAM_A: &str = "patient";
const PERSON_PARAM_B: &str = "subject";

fn clause_sql(sql: &mut Sql, c: &Clause) {
    let owner = |table: &str| {
        format!(
            "EXISTS (SELECT 1 FROM {table} x WHERE x.res_type = r.res_type AND x.res_id = r.res_id AND x.param = "
        )
    };
    match c {
        Clause::Id(ids) => {
            sql.push_in("r.res_id", ids);
        }
        Clause::Token {
            param,
            alternatives,
        } => {
            sql.push(&owner("idx_token"));
            sql.push_arg(*param);
            sql.push(" AND (");
            for (i, (system, code)) in alternatives.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("(1 = 1");
                if let Some(s) = system {
                    let a = sql.arg(s.clone());
                    sql.push(&format!(" AND x.system = {a}"));
                }
                if let Some(c) = code {
                    let a = sql.arg(c.clone());
                    sql.push(&format!(" AND x.code = {a}"));
                }
                sql.push(")");
            }
            sql.push("))");
        }
        Clause::Str {
            param,
            alternatives,
        } => {
            sql.push(&owner("idx_string"));
            sql.push_arg(*param);
            sql.push(" AND (");
            for (i, (mode, value)) in alternatives.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                match mode {
                    StrMatch::Exact => {
                        let a = sql.arg(value.clone());
                        sql.push(&format!("x.value = {a}"));
                    }
                    StrMatch::StartsWith => {
                        let a = sql.arg(format!("{}%", like_escape(value)));
                        sql.push(&format!("x.value LIKE {a} ESCAPE '\\'"));
                    }
                    StrMatch::Contains => {
                        let a = sql.arg(format!("%{}%", like_escape(value)));
                        sql.push(&format!("x.value LIKE {a} ESCAPE '\\'"));
                    }
                }
            }
            sql.push("))");
        }
        Clause::Date {
            param,
            alternatives,
        } => {
            sql.push(&owner("idx_date"));
            sql.push_arg(*param);
            sql.push(" AND (");
            for (i, (prefix, low, high_excl)) in alternatives.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                let l = sql.arg(low.clone());
                let h = sql.arg(high_excl.clone());
                let cond = match prefix {
                    DatePrefix::Eq => format!("(x.low >= {l} AND x.high < {h})"),
                    DatePrefix::Ne => format!("NOT (x.low >= {l} AND x.high < {h})"),
                    DatePrefix::Lt => format!("(x.low < {l})"),
                    DatePrefix::Gt => format!("(x.high >= {h})"),
                    DatePrefix::Le => format!("(x.low < {h})"),
                    DatePrefix::Ge => format!("(x.high >= {l})"),
                };
                sql.push(&cond);
            }
            sql.push("))");
        }
        Clause::Reference {
            param: PERSON_PARAM_A | PERSON_PARAM_B,
            alternatives,
        } => {
            // the person a resource belongs to is its stored `person_id` (those references
            // are not copied into idx_reference); they can only be Patients
            let ids: Vec<&String> = alternatives
                .iter()
                .filter(|(ty, _)| ty.as_deref().is_none_or(|t| t == "Patient"))
                .map(|(_, id)| id)
                .collect();
            if ids.is_empty() {
                sql.push("1 = 0");
                return;
            }
            sql.push_in("r.person_id", ids);
        }
        Clause::Reference {
            param,
            alternatives,
        } => {
            sql.push(&owner("idx_reference"));
            sql.push_arg(*param);
            sql.push(" AND (");
            for (i, (ty, id)) in alternatives.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                let a = sql.arg(id.clone());
                sql.push(&format!("(x.target_id = {a}"));
                if let Some(t) = ty {
                    let b = sql.arg(t.clone());
                    sql.push(&format!(" AND x.target_type = {b}"));
                }
                sql.push(")");
            }
            sql.push("))");
        }
    }
}

/// A write transaction.
///
/// On PostgreSQL it is a typed `PgConnection`'s, from a small pool beside the `Any` one,
/// because bulk rows go in by `COPY … FROM STDIN`, a protocol the `Any` driver does not
/// speak (measured: `bench/pg_inserts.py`, and a bundle's inserts in docs/benchmarks.md);
/// every other statement is the same portable SQL on either.
pub(crate) enum Tx<'a> {
    Any(sqlx::Transaction<'a, sqlx::Any>),
    Pg(sqlx::Transaction<'a, sqlx::Postgres>),
}

/// Binds each [`Arg`] in order to a query of either driver.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::S(v) => q.bind(v.as_str()),
                Arg::O(v) => q.bind(v.as_deref()),
                Arg::I(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// `$body` with `$q` the query `$sql` bound to `$args` for the transaction's driver and
/// `$conn` its connection: written once, type-checked once per driver (the rows differ).
macro_rules! on_tx {
    ($tx:expr, $sql:expr, $args:expr, |$q:ident, $conn:ident| $body:expr) => {
        match $tx {
            Tx::Any(tx) => {
                let ($q, $conn) = (bind_args!(sqlx::query($sql), $args), &mut **tx);
                $body
            }
            Tx::Pg(tx) => {
                let ($q, $conn) = (
                    bind_args!(sqlx::query::<sqlx::Postgres>($sql), $args),
                    &mut **tx,
                );
                $body
            }
        }
    };
}

impl Tx<'_> {
    /// Runs one statement.
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        args: &[Arg],
        doing: &'static str,
    ) -> Result<(), StoreError> {
        on_tx!(self, sql, args, |q, conn| q.execute(conn).await.map(drop)).map_err(db(doing))
    }

    /// Reads one resource row (`SELECT res_type, res_id, version, person_id,
    /// last_updated, deleted, json …`).
    async fn fetch_resource(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<StoredResource>, StoreError> {
        let doing = "reading a resource";
        on_tx!(self, sql, args, |q, conn| q
            .fetch_optional(conn)
            .await
            .map_err(db(doing))?
            .as_ref()
            .map(resource_of)
            .transpose())
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Any(tx) => tx.commit().await,
            Tx::Pg(tx) => tx.commit().await,
        }
        .map_err(db("committing"))
    }

    /// Rolls back now (dropping a transaction only queues its `ROLLBACK` for the
    /// connection's next use).
    async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Any(tx) => tx.rollback().await,
            Tx::Pg(tx) => tx.rollback().await,
        }
        .map_err(db("rolling back"))
    }
}

fn without_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
        o.remove("id");
    }
    v
}

async fn write_one(
    tx: &mut Tx<'_>,
    w: &Write,
    now: &str,
    pending: &mut Pending,
    known: Option<Option<StoredResource>>,
) -> Result<WriteOutcome, StoreError> {
    let doing = "writing a resource";
    let current = match known {
        Some(c) => c,
        None => {
            tx.fetch_resource("SELECT res_type, res_id, version, person_id, last_updated, deleted, json FROM resource WHERE res_type = $1 AND res_id = $2",
                &[Arg::S(w.res_type.clone()), Arg::S(w.id.clone())]).await?
        }
    };
    let found = current
        .as_ref()
        .filter(|c| !c.deleted)
        .map_or(0, |c| c.version);
    if let Some(expected) = w.expected_version
        && expected != found
    {
        return Err(StoreError::VersionConflict {
            res_type: w.res_type.clone(),
            id: w.id.clone(),
            expected,
            found,
        });
    }
    let created = current.as_ref().is_none_or(|c| c.deleted);
    if w.delete {
        let Some(cur) = current.filter(|c| !c.deleted) else {
            return Ok(WriteOutcome {
                version: found,
                last_updated: now.to_string(),
                created: false,
                unchanged: true,
            });
        };
        let version = cur.version + 1;
        let text = json_with_meta(&cur.json, &w.id, version, now);
        pending.history.push(history_row(&cur));
        tx.execute(
            "UPDATE resource SET version = $3, last_updated = $4, deleted = 1, json = $5 WHERE res_type = $1 AND res_id = $2",
            &[Arg::S(w.res_type.clone()), Arg::S(w.id.clone()), Arg::I(version), Arg::S(now.to_string()), Arg::S(text)],
            doing,
        )
        .await?;
        clear_derived(tx, &w.res_type, &w.id, cur.person.as_deref()).await?;
        return Ok(WriteOutcome {
            version,
            last_updated: now.to_string(),
            created: false,
            unchanged: false,
        });
    }
    if let Some(cur) = current.as_ref().filter(|c| !c.deleted)
        && without_meta(&cur.json) == without_meta(&w.json)
        && cur.person == w.extracted.person
    {
        return Ok(WriteOutcome {
            version: cur.version,
            last_updated: cur.last_updated.clone(),
            created: false,
            unchanged: true,
        });
    }
    let version = current.as_ref().map_or(0, |c| c.version) + 1;
    let text = json_with_meta(&w.json, &w.id, version, now);
    if let Some(cur) = &current {
        clear_derived(tx, &w.res_type, &w.id, cur.person.as_deref()).await?;
        pending.history.push(history_row(cur));
    }
    // a resource no version of which exists is a plain insert; PostgreSQL's upsert
    // (speculative insertion) costs a third more per row
    let rows = if current.is_some() {
        &mut pending.resource
    } else {
        &mut pending.created
    };
    rows.push(vec![
        Arg::S(w.res_type.clone()),
        Arg::S(w.id.clone()),
        Arg::I(version),
        Arg::O(w.extracted.person.clone()),
        Arg::S(now.to_string()),
        Arg::S(text),
    ]);
    pending.derived(w);
    Ok(WriteOutcome {
        version,
        last_updated: now.to_string(),
        created,
        unchanged: false,
    })
}

/// The JSON text of `body` after [`set_meta`], written straight from `body` instead of
/// from a modified copy (a bundle stores a thousand resources; cloning each one's tree to
/// change three fields cost more than writing it). The same text, byte for byte.
pub fn json_with_meta(body: &Value, id: &str, version: i64, now: &str) -> String {
    let Some(o) = body.as_object() else {
        return body.to_string();
    };
    let version = version.to_string();
    let mut out: Vec<u8> = Vec::with_capacity(512);
    // `"key":`, after a comma unless first
    fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
        if !std::mem::take(first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).expect("a string serialises");
        out.push(b':');
    }
    let value = |out: &mut Vec<u8>, v: &Value| {
        serde_json::to_writer(&mut *out, v).expect("a JSON value serialises")
    };
    let meta_pair = |out: &mut Vec<u8>, first: &mut bool, has: (bool, bool)| {
        if !has.0 {
            key(out, first, "versionId");
            value(out, &Value::String(version.clone()));
        }
        if !has.1 {
            key(out, first, "lastUpdated");
            value(out, &Value::String(now.to_string()));
        }
    };
    out.push(b'{');
    let mut first = true;
    for (k, v) in o {
        key(&mut out, &mut first, k);
        match (k.as_str(), v) {
            ("id", _) => value(&mut out, &Value::String(id.to_string())),
            ("meta", Value::Object(m)) => {
                out.push(b'{');
                let mut f = true;
                for (mk, mv) in m {
                    key(&mut out, &mut f, mk);
                    match mk.as_str() {
                        "versionId" => value(&mut out, &Value::String(version.clone())),
                        "lastUpdated" => value(&mut out, &Value::String(now.to_string())),
                        _ => value(&mut out, mv),
                    }
                }
                let has = (m.contains_key("versionId"), m.contains_key("lastUpdated"));
                meta_pair(&mut out, &mut f, has);
                out.push(b'}');
            }
            ("meta", _) => {
                out.push(b'{');
                meta_pair(&mut out, &mut true, (false, false));
                out.push(b'}');
            }
            _ => value(&mut out, v),
        }
    }
    if !o.contains_key("id") {
        key(&mut out, &mut first, "id");
        value(&mut out, &Value::String(id.to_string()));
    }
    if !o.contains_key("meta") {
        key(&mut out, &mut first, "meta");
        out.push(b'{');
        meta_pair(&mut out, &mut true, (false, false));
        out.push(b'}');
    }
    out.push(b'}');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated` (keeping other meta elements).
pub fn set_meta(body: &mut Value, id: &str, version: i64, now: &str) {
    if let Some(o) = body.as_object_mut() {
        o.insert("id".into(), Value::String(id.to_string()));
        let meta = o
            .entry("meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        meta["versionId"] = Value::String(version.to_string());
        meta["lastUpdated"] = Value::String(now.to_string());
    }
}

/// The `resource_history` row keeping a version that is about to be superseded.
///
/// History holds superseded versions only; the current one is in `resource` (see
/// [`Store::get_version`]). Why: most writes create, and a copy of every new resource's
/// JSON in a second table was a fifth of a bundle's inserts.
fn history_row(cur: &StoredResource) -> Vec<Arg> {
    vec![
        Arg::S(cur.res_type.clone()),
        Arg::S(cur.id.clone()),
        Arg::I(cur.version),
        Arg::S(cur.last_updated.clone()),
        Arg::I(i64::from(cur.deleted)),
        Arg::S(cur.json.to_string()),
    ]
}

async fn clear_derived(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    person: Option<&str>,
) -> Result<(), StoreError> {
    for table in [
        "idx_token",
        "idx_string",
        "idx_date",
        "idx_reference",
        "care_link",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE res_type = $1 AND res_id = $2"),
            &[Arg::S(t.to_string()), Arg::S(id.to_string())],
            "clearing index rows",
        )
        .await?;
    }
    if t == "Patient"
        && let Some(p) = person
    {
        tx.execute(
            "DELETE FROM registration WHERE person_id = $1",
            &[Arg::S(p.to_string())],
            "clearing a registration",
        )
        .await?;
    }
    Ok(())
}

/// Index times are second precision (`…:SSZ`); relationship times use the store's
/// microsecond form, so that they parse as RFC 3339 either way.
fn index_to_store_time(s: &str) -> String {
    if s == OPEN_END {
        return s.to_string();
    }
    DateTime::<Utc>::from_str(s).map_or_else(|_| s.to_string(), |t| time_text(&t))
}

/// A value bound into a multi-row insert.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    S(String),
    O(Option<String>),
    I(i64),
}

/// Rows waiting to be inserted in the current transaction, by table.
#[derive(Default)]
struct Pending {
    resource: Vec<Vec<Arg>>,
    created: Vec<Vec<Arg>>,
    history: Vec<Vec<Arg>>,
    token: Vec<Vec<Arg>>,
    string: Vec<Vec<Arg>>,
    date: Vec<Vec<Arg>>,
    reference: Vec<Vec<Arg>>,
    care_link: Vec<Vec<Arg>>,
    registration: Vec<Vec<Arg>>,
    audit: Vec<Vec<Arg>>,
}

/// Most bound parameters in one multi-row insert on SQLite.
///
/// The inserts use anonymous `?` parameters: sqlx-sqlite asks SQLite for each parameter's
/// name, and for named ones (`$n`) SQLite finds it by a linear scan, so binding a statement
/// of `$n` parameters is quadratic (240 was the sweet spot); anonymous ones have no name to
/// scan for, so statements can be large and few. (PostgreSQL gets its rows as one JSON
/// parameter: [`insert_json`].)
const SQLITE_MAX_PARAMS: usize = 4_000;

impl Pending {
    /// The index rows and relationship facts derived from a written resource.
    fn derived(&mut self, w: &Write) {
        let (t, id, x) = (w.res_type.as_str(), w.id.as_str(), &w.extracted);
        let head = || vec![Arg::S(t.to_string()), Arg::S(id.to_string())];
        for r in &x.tokens {
            let mut row = head();
            row.extend([
                Arg::S(r.param.to_string()),
                Arg::S(r.system.clone()),
                Arg::S(r.code.clone()),
            ]);
            self.token.push(row);
        }
        for r in &x.strings {
            let mut row = head();
            row.extend([Arg::S(r.param.to_string()), Arg::S(r.value.clone())]);
            self.string.push(row);
        }
        for r in &x.dates {
            let mut row = head();
            row.extend([
                Arg::S(r.param.to_string()),
                Arg::S(r.low.clone()),
                Arg::S(r.high.clone()),
            ]);
            self.date.push(row);
        }
        for r in &x.refs {
            let mut row = head();
            row.extend([
                Arg::S(r.param.to_string()),
                Arg::S(r.target_type.clone()),
                Arg::S(r.target_id.clone()),
            ]);
            self.reference.push(row);
        }
        if let Some(person) = &x.person {
            for l in &x.care_links {
                let mut row = head();
                row.extend([
                    Arg::S(person.clone()),
                    Arg::S(l.kind.code().to_string()),
                    Arg::S(l.organisation.as_str().to_string()),
                    Arg::S(index_to_store_time(&l.start)),
                    Arg::O(l.end.as_deref().map(index_to_store_time)),
                ]);
                self.care_link.push(row);
            }
            if let Some(practice) = &x.registered_practice {
                // one registration per person per statement (ON CONFLICT DO UPDATE may
                // not touch a row twice): a later one replaces an earlier one
                self.registration
                    .retain(|r| !matches!(&r[0], Arg::S(p) if p == person));
                self.registration.push(vec![
                    Arg::S(person.clone()),
                    Arg::S(practice.as_str().to_string()),
                ]);
            }
        }
    }

    /// Sends every pending row and empties the buffers: on SQLite as multi-row inserts in
    /// chunks of anonymous parameters; on PostgreSQL each table's rows as one JSON array in
    /// one text parameter, unpacked by `jsonb_array_elements` — one statement of constant
    /// text per table (prepared once per connection, whatever the number of rows) instead
    /// of statements of thousands of parameters that PostgreSQL parses and plans anew.
    ///
    /// On PostgreSQL a table's rows go by `COPY` instead when there are at least
    /// [`COPY_MIN_ROWS`] of them and no conflict clause (`COPY` has none).
    async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let tables: [(&str, &str, &str, &mut Vec<Vec<Arg>>); 10] = [
            (
                "resource (res_type, res_id, version, person_id, last_updated, json, deleted)",
                "0",
                "",
                &mut self.created,
            ),
            (
                "resource (res_type, res_id, version, person_id, last_updated, json, deleted)",
                "0",
                " ON CONFLICT (res_type, res_id) DO UPDATE SET version = excluded.version, person_id = excluded.person_id, last_updated = excluded.last_updated, deleted = 0, json = excluded.json",
                &mut self.resource,
            ),
            (
                "resource_history (res_type, res_id, version, last_updated, deleted, json)",
                "",
                "",
                &mut self.history,
            ),
            (
                "idx_token (res_type, res_id, param, system, code)",
                "",
                "",
                &mut self.token,
            ),
            (
                "idx_string (res_type, res_id, param, value)",
                "",
                "",
                &mut self.string,
            ),
            (
                "idx_date (res_type, res_id, param, low, high)",
                "",
                "",
                &mut self.date,
            ),
            (
                "idx_reference (res_type, res_id, param, target_type, target_id)",
                "",
                "",
                &mut self.reference,
            ),
            (
                "care_link (res_type, res_id, person_id, kind, organisation, start_at, end_at)",
                "",
                " ON CONFLICT (res_type, res_id, organisation) DO NOTHING",
                &mut self.care_link,
            ),
            (
                "registration (person_id, practice)",
                "",
                " ON CONFLICT (person_id) DO UPDATE SET practice = excluded.practice",
                &mut self.registration,
            ),
            (AUDIT_TABLE, "", "", &mut self.audit),
        ];
        let mut t = crate::trace::Steps::start(|| "inserts".into());
        for (table, constant, tail, rows) in tables {
            if rows.is_empty() {
                continue;
            }
            match tx {
                Tx::Any(tx) => insert_values(tx, table, constant, tail, rows).await?,
                Tx::Pg(tx) if tail.is_empty() && rows.len() >= COPY_MIN_ROWS => {
                    copy_in(tx, table, constant, rows).await?
                }
                Tx::Pg(tx) => insert_json(tx, table, constant, tail, rows).await?,
            }
            rows.clear();
            crate::trace::step(&mut t, table.split(' ').next().unwrap_or(""));
        }
        crate::trace::done(t);
        Ok(())
    }
}

/// The audit table and the columns an append fills.
const AUDIT_TABLE: &str = "audit (seq, subject_person, line)";

const INSERTING: &str = "writing resources, index rows and audit";

/// Multi-row `INSERT … VALUES (?, …), …` in chunks of at most [`SQLITE_MAX_PARAMS`] parameters.
async fn insert_values(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    constant: &str,
    tail: &str,
    rows: &[Vec<Arg>],
) -> Result<(), StoreError> {
    let cols = rows[0].len();
    let per = (SQLITE_MAX_PARAMS / cols).max(1);
    for chunk in rows.chunks(per) {
        let mut sql = String::with_capacity(table.len() + chunk.len() * cols * 3 + tail.len() + 20);
        sql.push_str("INSERT INTO ");
        sql.push_str(table);
        sql.push_str(" VALUES");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { " (" } else { ", (" });
            for c in 0..cols {
                sql.push_str(if c == 0 { "?" } else { ", ?" });
            }
            if !constant.is_empty() {
                sql.push_str(", ");
                sql.push_str(constant);
            }
            sql.push(')');
        }
        sql.push_str(tail);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for a in row {
                q = match a {
                    Arg::S(v) => q.bind(v.as_str()),
                    Arg::O(v) => q.bind(v.clone()),
                    Arg::I(v) => q.bind(*v),
                };
            }
        }
        q.execute(&mut *conn).await.map_err(db(INSERTING))?;
    }
    Ok(())
}

/// Fewest rows a PostgreSQL table's inserts send by `COPY`: it takes two round trips (the
/// statement, then the data) where a prepared `INSERT` takes one, so a commit of a few rows
/// (one resource, a few audit lines) inserts, and a bundle's thousands copy.
const COPY_MIN_ROWS: usize = 64;

/// `COPY table (columns) FROM STDIN` in PostgreSQL's text format: fields separated by tabs,
/// `\N` for NULL, and backslash, tab, newline and carriage return escaped with a
/// backslash ("COPY", PostgreSQL documentation). Measured: a bundle's inserts
/// (docs/benchmarks.md, issue 7).
async fn copy_in(
    conn: &mut sqlx::PgConnection,
    table: &str,
    constant: &str,
    rows: &[Vec<Arg>],
) -> Result<(), StoreError> {
    let mut data = Vec::with_capacity(rows.len() * rows[0].len() * 24);
    for row in rows {
        for (c, a) in row.iter().enumerate() {
            if c > 0 {
                data.push(b'\t');
            }
            match a {
                Arg::S(v) | Arg::O(Some(v)) => copy_text(&mut data, v),
                Arg::O(None) => data.extend_from_slice(b"\\N"),
                Arg::I(v) => data.extend_from_slice(v.to_string().as_bytes()),
            }
        }
        if !constant.is_empty() {
            data.push(b'\t');
            data.extend_from_slice(constant.as_bytes());
        }
        data.push(b'\n');
    }
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} FROM STDIN"))
        .await
        .map_err(db(INSERTING))?;
    copy.send(data).await.map_err(db(INSERTING))?;
    copy.finish().await.map_err(db(INSERTING))?;
    Ok(())
}

/// Appends `v` as one field of `COPY`'s text format.
fn copy_text(out: &mut Vec<u8>, v: &str) {
    let special = |b: u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r');
    // 32 bytes at a time: a chunk with nothing to escape (nearly all of a JSON resource)
    // is checked without a branch per byte and copied whole
    for chunk in v.as_bytes().chunks(32) {
        if !chunk.iter().fold(false, |any, &b| any | special(b)) {
            out.extend_from_slice(chunk);
            continue;
        }
        for &b in chunk {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }
}

/// `INSERT … SELECT x->>0, … FROM jsonb_array_elements($1::jsonb) AS x`: every row in one
/// text parameter, a JSON array of arrays (integers cast back from text).
///
/// Measured on a 1,000-Observation bundle's inserts (docs/benchmarks.md, issue 7):
/// statements of up to 4,000 `$n` parameters ~125 ms; this ~75-105 ms; the same from
/// `json` (re-parsed for every `->>`) 177 ms; one `text[]` array literal per column
/// through `unnest` 110-150 ms. Many rows without a conflict clause go by [`copy_in`].
async fn insert_json(
    conn: &mut sqlx::PgConnection,
    table: &str,
    constant: &str,
    tail: &str,
    rows: &[Vec<Arg>],
) -> Result<(), StoreError> {
    let mut sql = format!("INSERT INTO {table} SELECT ");
    for (c, a) in rows[0].iter().enumerate() {
        if c > 0 {
            sql.push_str(", ");
        }
        match a {
            Arg::I(_) => sql.push_str(&format!("(x->>{c})::bigint")),
            Arg::S(_) | Arg::O(_) => sql.push_str(&format!("x->>{c}")),
        }
    }
    if !constant.is_empty() {
        sql.push_str(", ");
        sql.push_str(constant);
    }
    sql.push_str(" FROM jsonb_array_elements($1::jsonb) AS x");
    sql.push_str(tail);
    let mut json = Vec::with_capacity(rows.len() * rows[0].len() * 24);
    json.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.push(b'[');
        for (c, a) in row.iter().enumerate() {
            if c > 0 {
                json.push(b',');
            }
            match a {
                Arg::S(v) | Arg::O(Some(v)) => {
                    serde_json::to_writer(&mut json, v).expect("a string serialises")
                }
                Arg::O(None) => json.extend_from_slice(b"null"),
                Arg::I(v) => json.extend_from_slice(v.to_string().as_bytes()),
            }
        }
        json.push(b']');
    }
    json.push(b']');
    let json = String::from_utf8(json).expect("JSON is UTF-8");
    sqlx::query::<sqlx::Postgres>(&sql)
        .bind(json)
        .execute(conn)
        .await
        .map_err(db(INSERTING))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements() {
        let s = statements(MIGRATIONS[0].sql);
        assert!(s.len() > 20, "{}", s.len());
        assert!(s.iter().all(|x| !x.contains(';') && !x.starts_with("--")));
        assert!(s[0].starts_with("CREATE TABLE resource"));
    }

    #[test]
    fn json_with_meta_writes_what_set_meta_makes() {
        use serde_json::json;
        let bodies = [
            json!({"resourceType": "Observation", "status": "final"}),
            json!({"resourceType": "Patient", "id": "old", "name": [{"family": "A\"b\\c\n"}]}),
            json!({"meta": {"profile": ["x"], "versionId": "9", "tag": []}, "resourceType": "Condition", "id": "x"}),
            json!({"resourceType": "Condition", "meta": {"lastUpdated": "then"}}),
            json!({"resourceType": "Condition", "meta": "not an object", "z": null, "n": 1.5}),
            json!({"resourceType": "Condition", "meta": {}, "id": 7}),
            json!({}),
            json!(["not", "an", "object"]),
            json!("text"),
        ];
        for b in bodies {
            let mut want = b.clone();
            set_meta(&mut want, "new-id", 12, "2026-11-24T10:00:00.000Z");
            assert_eq!(
                json_with_meta(&b, "new-id", 12, "2026-11-24T10:00:00.000Z"),
                want.to_string(),
                "{b}"
            );
        }
    }

    #[test]
    fn copy_text_escapes_exactly_what_copy_needs() {
        // the per-byte rule, against the chunked one, on strings with the four special
        // bytes at every position around a chunk's edge
        let by_byte = |v: &str| {
            let mut o = Vec::new();
            for b in v.bytes() {
                match b {
                    b'\\' => o.extend_from_slice(b"\\\\"),
                    b'\t' => o.extend_from_slice(b"\\t"),
                    b'\n' => o.extend_from_slice(b"\\n"),
                    b'\r' => o.extend_from_slice(b"\\r"),
                    _ => o.push(b),
                }
            }
            o
        };
        for len in [0, 1, 31, 32, 33, 64, 100] {
            for at in 0..len {
                for special in ['\\', '\t', '\n', '\r', 'é'] {
                    let v: String = (0..len)
                        .map(|i| {
                            if i == at {
                                special
                            } else {
                                char::from(b'a' + (i % 26) as u8)
                            }
                        })
                        .collect();
                    let mut got = Vec::new();
                    copy_text(&mut got, &v);
                    assert_eq!(got, by_byte(&v), "{v:?}");
                }
            }
        }
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}

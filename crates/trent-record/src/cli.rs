//! The record's command-line entry points — `trent serve`, `trent send` and
//! `trent audit verify` — as clap argument structs and `run_…` functions, so that they
//! compile and are tested with this crate; the `trent` binary only dispatches to them.
//!
//! Why the loader is a callback: building the store from the lake and the identity vault
//! needs DataFusion and the vault, which this crate must not depend on; `run_serve` calls
//! the caller's loader on the first start (an empty store) with the opened store.
//!
//! Secrets: demo passwords and the demo client secret are printed once, when created, and
//! never stored in clear; `--token` for `trent send` is held in memory only.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use trent_access::audit::{Checkpoint, VerifyReport};
use trent_access::auth::ClientRegistration;
use trent_access::{OdsCode, PersonId, Role, TeamId, UserId};

use crate::api::{AppState, Config, ctrl_c};
use crate::outbox::{Outbox, OutboxItem, OutboxPolicy, OutboxStatus};
use crate::service::LoadReport;
use crate::store::{Account, Store, StoreError};

/// CLI errors (each names what failed).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An argument or input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The loader failed.
    #[error("loading the record store: {0}")]
    Load(String),
}

/// Where the record store is.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DatabaseArgs {
    /// Record database: postgres://user@host:port/db, or sqlite:///path/record.db
    /// (default: SQLite at <data>/record/record.db).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

/// The default SQLite file of a data directory.
pub fn default_db_path(data: &Path) -> PathBuf {
    data.join("record").join("record.db")
}

/// The folder receiving accepted messages' resources for the lake (`trent ingest fhir`).
pub fn default_lake_export(data: &Path) -> PathBuf {
    data.join("record").join("outgoing-lake")
}

/// Opens (creating if needed) the store named by `args`, or `<data>/record/record.db`.
pub async fn open_store(args: &DatabaseArgs, data: &Path) -> Result<Store, CliError> {
    match &args.database {
        Some(url) => Ok(Store::connect(url).await?),
        None => {
            let path = default_db_path(data);
            let dir = path.parent().expect("has a parent");
            std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            // the record is identifiable: owner-only, like the vault
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |source| CliError::Io {
                        path: dir.to_path_buf(),
                        source,
                    },
                )?;
            }
            Ok(Store::open_sqlite(&path).await?)
        }
    }
}

/// `trent serve`: serve the record store of `--data` over HTTP.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The store.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// TCP port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Public base URL of the FHIR endpoint (for links), e.g. https://record.example/fhir.
    #[arg(long, value_name = "URL")]
    pub public_base: Option<String>,
    /// Practice (ODS code) of the demo clinician and case manager (default: the practice
    /// most people in the store are registered at).
    #[arg(long, value_name = "ODS")]
    pub demo_practice: Option<String>,
    /// Do not create demo accounts.
    #[arg(long)]
    pub no_demo_accounts: bool,
    /// Do not log one line per request to stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// A demo account to create: id, role, organisation, team, person.
type DemoSpec = (
    &'static str,
    Role,
    Option<OdsCode>,
    Option<TeamId>,
    Option<PersonId>,
);

/// A demo credential, printed once when created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCredential {
    /// Account or client id.
    pub user: String,
    /// Role code (`system` for the client).
    pub role: &'static str,
    /// The password (accounts) or client secret (the system client).
    pub secret: String,
    /// What the account is tied to (organisation, person), for the printout.
    pub note: String,
}

fn random_password() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|e| StoreError::Refused(format!("random generator: {e}")))?;
    let mut s = String::with_capacity(24);
    for (i, x) in b.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            s.push('-');
        }
        s.push(ALPHABET[(*x as usize) % ALPHABET.len()] as char);
    }
    Ok(s)
}

/// The practice most people in the store are registered at.
pub async fn most_common_practice(store: &Store) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT practice, COUNT(*) AS n FROM registration GROUP BY practice ORDER BY n DESC, practice LIMIT 1")
        .fetch_optional(store.pool())
        .await
        .map_err(crate::store::db("reading registrations"))?;
    row.map(|r| {
        r.try_get::<String, _>("practice")
            .map_err(crate::store::db("reading registrations"))
    })
    .transpose()
}

async fn first_patient_registered_at(
    store: &Store,
    practice: Option<&OdsCode>,
) -> Result<Option<String>, StoreError> {
    let row = match practice {
        Some(p) => sqlx::query("SELECT person_id FROM registration WHERE practice = $1 ORDER BY person_id LIMIT 1")
            .bind(p.as_str())
            .fetch_optional(store.pool())
            .await,
        None => sqlx::query("SELECT res_id AS person_id FROM resource WHERE res_type = 'Patient' AND deleted = 0 ORDER BY res_id LIMIT 1")
            .fetch_optional(store.pool())
            .await,
    }
    .map_err(crate::store::db("finding a demo citizen"))?;
    row.map(|r| {
        r.try_get::<String, _>("person_id")
            .map_err(crate::store::db("finding a demo citizen"))
    })
    .transpose()
}

/// Creates the demo accounts that do not exist yet — one per role: `demo-citizen` (a
/// person registered at `practice`, or `citizen` if given), `demo-carer`,
/// `demo-clinician` and `demo-case-manager` (of `practice`, team `demo-team`),
/// `demo-analyst`, `demo-admin` — and the OAuth2 client `demo-system` (scopes
/// `system/*.cruds`, registered as the message sender for `practice`), each with a random
/// secret. Returns only what was created now (so secrets are shown once).
pub async fn ensure_demo_accounts(
    store: &Store,
    practice: Option<&OdsCode>,
    citizen: Option<&PersonId>,
    now: DateTime<Utc>,
) -> Result<Vec<DemoCredential>, StoreError> {
    let citizen = match citizen {
        Some(c) => Some(c.clone()),
        None => first_patient_registered_at(store, practice)
            .await?
            .map(PersonId::new)
            .transpose()
            .map_err(|e| StoreError::Refused(format!("demo citizen: {e}")))?,
    };
    let team = TeamId::new("demo-team").expect("valid");
    let mut specs: Vec<DemoSpec> = vec![];
    if let Some(c) = &citizen {
        specs.push(("demo-citizen", Role::Citizen, None, None, Some(c.clone())));
    }
    specs.extend([
        ("demo-carer", Role::Carer, None, None, None),
        (
            "demo-clinician",
            Role::Clinician,
            practice.cloned(),
            None,
            None,
        ),
        (
            "demo-case-manager",
            Role::CaseManager,
            practice.cloned(),
            Some(team),
            None,
        ),
        ("demo-analyst", Role::Analyst, None, None, None),
        ("demo-admin", Role::Administrator, None, None, None),
    ]);
    let mut created = Vec::new();
    for (user, role, organisation, team, person) in specs {
        if store.account(user).await?.is_some() {
            continue;
        }
        let note = match (&organisation, &person) {
            (Some(o), _) => format!("organisation {o}"),
            (_, Some(p)) => format!("Patient/{p}"),
            _ => String::new(),
        };
        let account = Account {
            user: UserId::new(user).expect("valid"),
            role,
            organisation,
            team,
            person,
            disabled: false,
        };
        let password = random_password()?;
        store.create_account(&account, &password, now).await?;
        created.push(DemoCredential {
            user: user.to_string(),
            role: role.code(),
            secret: password,
            note,
        });
    }
    if store.client("demo-system").await?.is_none() {
        let (secret, reg) = ClientRegistration::register(
            UserId::new("demo-system").expect("valid"),
            "system/*.cruds",
        )
        .map_err(|e| StoreError::Refused(e.to_string()))?;
        store.register_client(&reg).await?;
        let mut note = "scopes system/*.cruds".to_string();
        if let Some(p) = practice {
            store.register_sender("demo-system", p.as_str()).await?;
            note.push_str(&format!("; message sender for {p}"));
        }
        created.push(DemoCredential {
            user: "demo-system".into(),
            role: "system",
            secret: secret.expose().to_string(),
            note,
        });
    }
    Ok(created)
}

/// Whether the store holds no resources yet (a first start).
pub async fn is_empty(store: &Store) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM resource")
        .fetch_one(store.pool())
        .await
        .map_err(crate::store::db("counting resources"))?;
    Ok(row
        .try_get::<i64, _>("n")
        .map_err(crate::store::db("counting resources"))?
        == 0)
}

/// `trent serve`: opens the store, on a first start runs `load` (the lake and vault →
/// store), creates and prints demo accounts, exports accepted messages not yet exported,
/// and serves `http://<bind>:<port>` until Ctrl-C or SIGTERM (graceful).
pub async fn run_serve<F, Fut>(args: &ServeArgs, data: &Path, load: F) -> Result<(), CliError>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = Result<LoadReport, String>>,
{
    let store = open_store(&args.db, data).await?;
    if is_empty(&store).await? {
        let r = load(store.clone()).await.map_err(CliError::Load)?;
        println!(
            "record store built: {} resources created, {} updated, {} unchanged",
            r.created, r.updated, r.unchanged
        );
    }
    if !args.no_demo_accounts {
        let practice = match &args.demo_practice {
            Some(p) => Some(p.clone()),
            None => most_common_practice(&store).await?,
        }
        .map(|p| {
            OdsCode::new(&p).map_err(|e| CliError::Invalid(format!("--demo-practice {p:?}: {e}")))
        })
        .transpose()?;
        let created = ensure_demo_accounts(&store, practice.as_ref(), None, Utc::now()).await?;
        if !created.is_empty() {
            println!(
                "demo accounts (shown once; sign in at POST /auth/login, clients at POST /auth/token):"
            );
            for c in &created {
                println!("  {:<18} {:<13} {}  {}", c.user, c.role, c.secret, c.note);
            }
        }
    }
    let lake = default_lake_export(data);
    let exported = store.export_pending(&lake).await?;
    if exported.messages > 0 {
        println!(
            "exported {} accepted messages ({} resources) to {}",
            exported.messages,
            exported.resources,
            lake.display()
        );
    }
    let config = Config {
        log_requests: !args.quiet,
        public_base: args.public_base.clone(),
        lake_export: Some(lake),
        ..Config::default()
    };
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Invalid(format!("cannot listen on {addr}: {source}")))?;
    let bound = listener
        .local_addr()
        .map_err(|source| CliError::Invalid(format!("listening on {addr}: {source}")))?;
    println!("trent-record serving http://{bound}/fhir (Ctrl-C to stop)");
    crate::api::serve_on(AppState::new(store, config), listener, ctrl_c())
        .await
        .map_err(|source| CliError::Invalid(format!("serving on {bound}: {source}")))?;
    println!("trent-record stopped");
    Ok(())
}

/// `trent send`: queue a FHIR message for another trent and deliver it (with retries).
#[derive(clap::Args, Debug, Clone)]
pub struct SendArgs {
    /// This trent's store (the outbox lives in it).
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The receiving trent's FHIR base URL (http://host:port/fhir) or $process-message URL.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Bearer token for the receiver (an OAuth2 access token from its /auth/token).
    #[arg(long, env = "TRENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Attempts before the message is dead-lettered.
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
    /// Delay after the first failed attempt, in milliseconds (doubled after each).
    #[arg(long, default_value_t = 1000)]
    pub backoff_ms: u64,
    /// The message Bundle (JSON).
    pub file: PathBuf,
}

/// Runs `trent send`: enqueues the message and delivers it, printing the response code.
/// Returns the final outbox item; the message was accepted only if its status is
/// [`OutboxStatus::Delivered`] (see [`send_succeeded`]).
pub async fn run_send(args: &SendArgs, data: &Path) -> Result<OutboxItem, CliError> {
    let text = std::fs::read(&args.file).map_err(|source| CliError::Io {
        path: args.file.clone(),
        source,
    })?;
    let message: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        CliError::Invalid(format!(
            "{}: not JSON (line {} column {}): {e}",
            args.file.display(),
            e.line(),
            e.column()
        ))
    })?;
    if args.max_attempts == 0 {
        return Err(CliError::Invalid(
            "--max-attempts must be at least 1".into(),
        ));
    }
    let store = open_store(&args.db, data).await?;
    let outbox = Outbox::new(
        store,
        OutboxPolicy {
            max_attempts: args.max_attempts,
            base_delay: Duration::from_millis(args.backoff_ms),
            ..OutboxPolicy::default()
        },
    );
    let id = outbox.enqueue(&args.to, &message, Utc::now()).await?;
    let item = outbox
        .deliver_until_settled(&id, &args.to, args.token.as_deref())
        .await?;
    println!(
        "message {id} to {}: {} after {} attempt(s), response {}{}",
        args.to,
        item.status.code(),
        item.attempts,
        item.response_code.as_deref().unwrap_or("none"),
        item.last_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    Ok(item)
}

/// Whether `trent send` should exit 0.
pub fn send_succeeded(item: &OutboxItem) -> bool {
    item.status == OutboxStatus::Delivered
}

/// `trent audit verify`: check the record's hash-chained audit.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditVerifyArgs {
    /// The store.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// A head `seq:hash` kept outside the database (printed by an earlier verify): also
    /// detects truncation and a rewritten chain.
    #[arg(long, value_name = "SEQ:HASH")]
    pub checkpoint: Option<String>,
}

/// Verifies the store's audit chain (trent-access's verification over the stored lines
/// in seq order), optionally against a checkpoint.
pub async fn verify_audit(
    store: &Store,
    checkpoint: Option<&Checkpoint>,
) -> Result<VerifyReport, StoreError> {
    store.verify_audit(checkpoint).await
}

/// The verification's one-line verdict: `OK …` or the first broken link.
pub fn verdict(report: &VerifyReport) -> String {
    if let Some(p) = report.problems.first() {
        let more = report.problems.len() - 1;
        let row = if p.line > 0 {
            format!("row {} (in seq order): ", p.line)
        } else {
            String::new()
        };
        let text = p.to_string();
        let what = text
            .split_once(": ")
            .filter(|_| p.line > 0)
            .map_or(text.as_str(), |(_, w)| w);
        format!(
            "BROKEN: {row}{what}{}",
            if more > 0 {
                format!(" (and {more} more problem(s))")
            } else {
                String::new()
            }
        )
    } else {
        let head = report
            .head
            .as_ref()
            .map_or_else(|| "empty".to_string(), |h| h.to_string());
        let torn = if report.torn_tail.is_some() {
            " (torn last line)"
        } else {
            ""
        };
        format!("OK: {} entries, head {head}{torn}", report.lines)
    }
}

/// Runs `trent audit verify`: prints the verdict; returns whether the chain is intact
/// (exit non-zero otherwise).
pub async fn run_audit_verify(args: &AuditVerifyArgs, data: &Path) -> Result<bool, CliError> {
    let checkpoint = args
        .checkpoint
        .as_deref()
        .map(|c| c.parse::<Checkpoint>().map_err(CliError::Invalid))
        .transpose()?;
    let store = open_store(&args.db, data).await?;
    let report = verify_audit(&store, checkpoint.as_ref()).await?;
    println!("audit {}", verdict(&report));
    Ok(report.untampered())
}

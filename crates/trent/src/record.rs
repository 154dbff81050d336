//! `trent serve`, `trent send`, `trent audit verify`: the shared care record's commands
//! (`trent-record`), and the one thing the binary adds to them — the loader that builds
//! the record store from the lake and the identity vault.
//!
//! Why here: the record crate must not depend on DataFusion or the lake; the binary
//! already holds both. The loader reads people in slices of ascending `person_id` (one
//! DataFusion scan per table per slice, with the slice's range pushed to Parquet), so its
//! memory is bounded by a slice, not by the lake; each person goes in as trent-fhir's
//! transaction bundle through the record's own write path (validated, decided as the
//! system principal `trent-loader`, audited).
//!
//! When: on every start the loader compares the lake generation with the one recorded in
//! `<data>/record/loaded.json` (written only after a load completes, for that database).
//! A new lake (a new ingest) or an interrupted load is loaded again; loading is idempotent
//! (deterministic resource ids, unchanged resources get no new version), so a second run
//! only adds what is new.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use trent_lake::{Lake, VAULT_TABLE};
use trent_record::Store;
use trent_record::cli::{AuditVerifyArgs, DatabaseArgs, SendArgs, ServeArgs};
use trent_record::service::LoadReport;

/// People per loader slice (one DataFusion scan per table).
const SLICE: usize = 5_000;
/// People per database transaction.
const PER_COMMIT: usize = 100;

/// `trent audit …`.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the shared care record's hash-chained audit: any edit, insertion or deletion
    /// of an entry is found (exit status 1), with the first broken entry.
    Verify(AuditVerifyArgs),
}

/// `trent serve` flags: the record crate's, plus how much of the lake to load.
#[derive(Args, Debug, Clone)]
pub struct ServeCmd {
    /// The server.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Load at most this many people from the lake (the first by person id; for trying
    /// the service on a large lake). Default: everyone.
    #[arg(long, value_name = "N")]
    pub max_people: Option<usize>,
    /// Load only the people registered at these practices (ODS codes; repeatable).
    /// Default for `trent serve`: everyone; for `trent up`: the largest practice.
    #[arg(long = "practice", value_name = "ODS")]
    pub practices: Vec<String>,
    /// Do not load the lake into the record store (serve what it holds).
    #[arg(long)]
    pub no_load: bool,
}

fn db_key(db: &DatabaseArgs, data: &Path) -> String {
    // the database's identity without keeping its URL (it may hold a password)
    let url = db.database.clone().unwrap_or_else(|| {
        trent_record::cli::default_db_path(data)
            .display()
            .to_string()
    });
    let h = Sha256::digest(url.as_bytes());
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn marker_path(data: &Path) -> PathBuf {
    data.join("record").join("loaded.json")
}

/// The generation and run the record store last completed loading, if any.
fn loaded_marker(data: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(marker_path(data)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get(key).and_then(|g| g.as_str()).map(str::to_string)
}

fn write_marker(data: &Path, key: &str, generation: &str) -> Result<()> {
    let p = marker_path(data);
    let mut v: serde_json::Value = std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    v[key] = serde_json::Value::String(generation.to_string());
    std::fs::create_dir_all(p.parent().expect("has a parent"))
        .with_context(|| format!("creating {}", p.display()))?;
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&v)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

fn generation_id(lake: &Lake) -> String {
    let g = lake
        .generation
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?");
    format!("{g}/{}", lake.catalog.run_id)
}

async fn table_slice(
    ctx: &datafusion_ctx::Ctx,
    table: &str,
    lo: i64,
    hi: Option<i64>,
    extra: &str,
) -> Result<RecordBatch> {
    let schema = if table == "__identity" {
        trent_model::VAULT.schema()
    } else {
        trent_model::schema::table(table)
            .with_context(|| format!("table {table} is not in the model"))?
            .schema()
    };
    if !ctx.has(table) {
        return Ok(RecordBatch::new_empty(schema));
    }
    let filter = match hi {
        Some(hi) => format!("person_id >= {lo} AND person_id < {hi}"),
        None => format!("person_id >= {lo}"),
    } + extra;
    let df = ctx
        .ctx
        .sql(&format!("SELECT * FROM {table} WHERE {filter}"))
        .await
        .with_context(|| format!("reading {table}"))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .with_context(|| format!("reading {table}"))?;
    arrow::compute::concat_batches(&schema, &batches).with_context(|| format!("reading {table}"))
}

/// A lake session with the vault's identity table registered as `__identity` (this
/// session never leaves the loader).
mod datafusion_ctx {
    use super::*;

    pub struct Ctx {
        pub ctx: datafusion::prelude::SessionContext,
        tables: Vec<String>,
    }

    impl Ctx {
        pub async fn open(lake: &Lake) -> Result<Ctx> {
            let ctx = lake.session().await?;
            let schema = trent_model::VAULT.schema();
            let dir = lake.vault_dir();
            ctx.register_parquet(
                "__identity",
                &format!("{}/", dir.display()),
                datafusion::prelude::ParquetReadOptions::default().schema(&schema),
            )
            .await
            .with_context(|| format!("opening the vault's {VAULT_TABLE} table"))?;
            let mut tables: Vec<String> =
                lake.catalog.tables.iter().map(|t| t.name.clone()).collect();
            tables.push("__identity".into());
            Ok(Ctx { ctx, tables })
        }
        pub fn has(&self, t: &str) -> bool {
            self.tables.iter().any(|x| x == t)
        }
    }
}

fn practice_filter(practices: &[String]) -> Result<String> {
    if practices.is_empty() {
        return Ok(String::new());
    }
    let mut list = Vec::new();
    for p in practices {
        let code =
            trent_access::OdsCode::new(p).map_err(|e| anyhow::anyhow!("--practice {p:?}: {e}"))?;
        list.push(format!("'{}'", code.as_str()));
    }
    Ok(format!(" AND practice_code IN ({})", list.join(", ")))
}

/// The practice with the most people in the vault (the demo practice of `trent up`).
pub async fn largest_practice(lake: &Lake) -> Result<Option<String>> {
    let ctx = datafusion_ctx::Ctx::open(lake).await?;
    let b = ctx
        .ctx
        .sql("SELECT practice_code FROM __identity GROUP BY practice_code ORDER BY count(*) DESC, practice_code LIMIT 1")
        .await?
        .collect()
        .await?;
    Ok(b.first().filter(|b| b.num_rows() > 0).map(|b| {
        arrow::array::AsArray::as_string::<i32>(b.column(0))
            .value(0)
            .to_string()
    }))
}

/// Loads the people of the lake registered at `practices` (everyone if empty; at most
/// the first `max` by person id) into the store.
pub async fn load_lake(
    store: &Store,
    lake: &Lake,
    practices: &[String],
    max: Option<usize>,
) -> Result<LoadReport> {
    let only = practice_filter(practices)?;
    let ctx = datafusion_ctx::Ctx::open(lake).await?;
    let ids = ctx
        .ctx
        .sql(&format!(
            "SELECT person_id FROM __identity WHERE true{only} ORDER BY person_id"
        ))
        .await?
        .collect()
        .await
        .context("reading the vault's person ids")?;
    let mut all: Vec<i64> = Vec::new();
    for b in &ids {
        let a = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(b.column(0));
        all.extend(a.values().iter().copied());
    }
    if let Some(m) = max {
        all.truncate(m);
    }
    let total = all.len();
    let mut report = LoadReport::default();
    let started = std::time::Instant::now();
    let mut done = 0usize;
    for (k, chunk) in all.chunks(SLICE).enumerate() {
        let lo = chunk[0];
        let hi = all.get((k + 1) * SLICE).copied();
        let t = trent_synth::fhir::PersonTables {
            identity: table_slice(&ctx, "__identity", lo, hi, &only).await?,
            person: table_slice(&ctx, "person", lo, hi, "").await?,
            activity: table_slice(&ctx, "activity", lo, hi, "").await?,
            condition: table_slice(&ctx, "condition", lo, hi, "").await?,
            observation: table_slice(&ctx, "observation", lo, hi, "").await?,
            medication: table_slice(&ctx, "medication", lo, hi, "").await?,
            social_care: table_slice(&ctx, "social_care", lo, hi, "").await?,
            referral: table_slice(&ctx, "referral", lo, hi, "").await?,
        };
        let people = trent_synth::fhir::people(&t);
        for group in people.chunks(PER_COMMIT) {
            let pid = |i: usize| {
                group
                    .get(i)
                    .and_then(|r| r.patient.as_ref())
                    .map_or(0, |p| p.person_id)
            };
            let r = store.load_people(group).await.map_err(|e| {
                // pseudonymous lake ids only: never names or NHS numbers in errors
                anyhow::anyhow!(
                    "loading lake people {} to {}: {}",
                    pid(0),
                    pid(group.len() - 1),
                    e.outcome()
                )
            })?;
            report.created += r.created;
            report.updated += r.updated;
            report.unchanged += r.unchanged;
            done += group.len();
        }
        eprintln!(
            "record store: {done} of {total} people loaded ({:.0} people/s)",
            done as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    Ok(report)
}

/// `trent serve`.
pub fn serve(cmd: &ServeCmd, data: &Path, rt: &tokio::runtime::Runtime) -> Result<()> {
    rt.block_on(async {
        if !cmd.no_load {
            let lake = Lake::open(data)?;
            let key = db_key(&cmd.serve.db, data);
            let generation = generation_id(&lake);
            let mut wanted = generation.clone();
            if !cmd.practices.is_empty() {
                wanted += &format!(" practices {}", cmd.practices.join(","));
            }
            if let Some(n) = cmd.max_people {
                wanted += &format!(" first {n}");
            }
            if loaded_marker(data, &key).as_deref() != Some(wanted.as_str()) {
                let store = trent_record::cli::open_store(&cmd.serve.db, data).await?;
                eprintln!(
                    "trent: building the shared care record from the lake and vault ({generation}) …"
                );
                let r = load_lake(&store, &lake, &cmd.practices, cmd.max_people).await?;
                println!(
                    "record store built: {} resources created, {} updated, {} unchanged",
                    r.created, r.updated, r.unchanged
                );
                write_marker(data, &key, &wanted)?;
                store.pool().close().await;
            }
        }
        trent_record::cli::run_serve(&cmd.serve, data, |_store| async {
            Ok(LoadReport::default())
        })
        .await?;
        anyhow::Ok(())
    })
}

/// `trent send`: true if the message was delivered and accepted.
pub fn send(args: &SendArgs, data: &Path, rt: &tokio::runtime::Runtime) -> Result<bool> {
    rt.block_on(async {
        let item = trent_record::cli::run_send(args, data).await?;
        anyhow::Ok(trent_record::cli::send_succeeded(&item))
    })
}

/// `trent audit verify`.
pub fn audit(cmd: &AuditCmd, data: &Path, rt: &tokio::runtime::Runtime) -> Result<bool> {
    match cmd {
        AuditCmd::Verify(a) => {
            rt.block_on(async { Ok(trent_record::cli::run_audit_verify(a, data).await?) })
        }
    }
}

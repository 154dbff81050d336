//! `trent ingest` and `trent quarantine`: landing source feeds (docs/ingest.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trent_ingest::{Format, Input, Options};

/// Options every `trent ingest` form takes.
#[derive(clap::Args)]
pub struct Common {
    /// The area (places people, costs contacts given without a cost).
    #[arg(long, default_value = "nottinghamshire")]
    area: String,
    /// An area file instead of a bundled area.
    #[arg(long)]
    area_file: Option<PathBuf>,
    /// The batch date, YYYY-MM-DD: nothing may be dated after it (default: today's date,
    /// or a feeds folder's batch-date.txt).
    #[arg(long)]
    today: Option<String>,
    /// NSPL-shaped postcode → LSOA lookup (pcds,lsoa11cd) to place people.
    #[arg(long)]
    postcodes: Option<PathBuf>,
    /// Output: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Linkage threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// `trent ingest fhir|csv|omop|feeds …`
#[derive(clap::Subcommand)]
pub enum IngestCmd {
    /// FHIR R4 bundles (JSON) and Bulk Data NDJSON files.
    Fhir {
        /// Files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Source name (local ids are unique within it).
        #[arg(long, default_value = "fhir")]
        source: String,
        #[command(flatten)]
        common: Common,
    },
    /// Flat extracts of one national-dataset-shaped feed.
    Csv {
        /// gp, apc, ae, op, community, mental_health, social_care or ambulance.
        #[arg(long)]
        feed: String,
        /// Files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Source name (default: the feed's name).
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// An OMOP CDM v5.3/v5.4 folder of CSV tables.
    Omop {
        /// Folder.
        dir: PathBuf,
        /// Source name.
        #[arg(long, default_value = "omop")]
        source: String,
        #[command(flatten)]
        common: Common,
    },
    /// Every feed of a `trent synth --format feeds` folder, as one batch.
    Feeds {
        /// The feeds folder (e.g. DATA/feeds).
        dir: PathBuf,
        /// One batch per partition folder instead of one batch for everything (bounded
        /// memory for a whole area's feeds).
        #[arg(long)]
        per_partition: bool,
        #[command(flatten)]
        common: Common,
    },
}

/// `trent quarantine`
#[derive(clap::Args)]
pub struct QuarantineArgs {
    /// Only this batch.
    #[arg(long)]
    batch: Option<i64>,
    /// Only this reason code.
    #[arg(long)]
    reason: Option<String>,
    /// Only this source.
    #[arg(long)]
    source: Option<String>,
    /// Show the full messages and raw records from the vault (identifiable).
    #[arg(long)]
    raw: bool,
    /// Counts by source and reason instead of rows.
    #[arg(long)]
    summary: bool,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Output: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `trent link --evaluate TRUTH.csv…` over a data directory's vault.
pub fn evaluate(data: &Path, truth: &[PathBuf]) -> Result<ExitCode> {
    let (e, only_truth, only_vault) = trent_ingest::evaluate_linkage(data, truth)?;
    println!(
        "linkage of {} source identities against the truth: precision {:.4}, recall {:.4}, F1 {:.4}",
        e.records, e.precision, e.recall, e.f1
    );
    println!(
        "true people {}, vault people {}; {} identities only in the truth (all their records quarantined), {} only in the vault",
        e.true_persons, e.predicted_clusters, only_truth, only_vault
    );
    Ok(ExitCode::SUCCESS)
}

fn options(c: &Common, today: Option<i32>, postcodes: Option<PathBuf>) -> Result<Options> {
    let area = match &c.area_file {
        Some(f) => trent_places::Area::from_file(f)?,
        None => trent_places::Area::bundled(&c.area)?,
    };
    let today = match &c.today {
        Some(t) => trent_model::time::parse(t)
            .with_context(|| format!("--today {t:?} is not a date YYYY-MM-DD"))?,
        None => today.unwrap_or_else(|| trent_feeds::ReadOptions::from_clock().today),
    };
    let threads = if c.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        c.threads
    };
    Ok(Options {
        area,
        today,
        postcodes: c.postcodes.clone().or(postcodes),
        fail_at: None,
        threads,
    })
}

/// Run `trent ingest`.
pub fn run(cmd: IngestCmd, data: &Path) -> Result<ExitCode> {
    let (inputs, opts, format) = match &cmd {
        IngestCmd::Fhir {
            paths,
            source,
            common,
        } => (
            paths
                .iter()
                .map(|p| Input {
                    format: Format::Fhir,
                    path: p.clone(),
                    source: source.clone(),
                })
                .collect::<Vec<_>>(),
            options(common, None, None)?,
            &common.format,
        ),
        IngestCmd::Csv {
            feed,
            paths,
            source,
            common,
        } => {
            let Some(f) = trent_feeds::Feed::parse(feed) else {
                bail!(
                    "--feed {feed:?} is not a feed: gp, apc, ae, op, community, mental_health, social_care or ambulance"
                );
            };
            (
                paths
                    .iter()
                    .map(|p| Input {
                        format: Format::Csv(f),
                        path: p.clone(),
                        source: source.clone().unwrap_or_else(|| f.name().to_string()),
                    })
                    .collect(),
                options(common, None, None)?,
                &common.format,
            )
        }
        IngestCmd::Omop {
            dir,
            source,
            common,
        } => (
            vec![Input {
                format: Format::Omop,
                path: dir.clone(),
                source: source.clone(),
            }],
            options(common, None, None)?,
            &common.format,
        ),
        IngestCmd::Feeds {
            dir,
            per_partition,
            common,
        } => {
            if *per_partition {
                let t = std::time::Instant::now();
                let parts = trent_ingest::review::feeds_parts(dir)?;
                let (mut received, mut accepted, mut quarantined) = (0u64, 0u64, 0u64);
                for p in &parts {
                    let (inputs, pc, today) =
                        trent_ingest::review::feeds_folder_parts(dir, Some(p))?;
                    let opts = options(common, today, pc)?;
                    let report = trent_ingest::ingest(data, &inputs, &opts)?;
                    let tot = report.total();
                    received += tot.received;
                    accepted += tot.accepted;
                    quarantined += tot.rejected;
                    if tot.received != tot.accepted + tot.rejected {
                        bail!("counts do not add up in batch {}", report.batch_id);
                    }
                    if common.format == "json" {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        print!("{}: {}", p.display(), report.render());
                    }
                }
                if common.format != "json" {
                    println!(
                        "{} batches: received {received}, accepted {accepted}, quarantined {quarantined}; {:.1} s",
                        parts.len(),
                        t.elapsed().as_secs_f64()
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let (inputs, pc, today) = trent_ingest::feeds_folder(dir)?;
            (inputs, options(common, today, pc)?, &common.format)
        }
    };
    let report = trent_ingest::ingest(data, &inputs, &opts)?;
    match format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        "table" => print!("{}", report.render()),
        other => bail!("--format {other:?}: use table or json"),
    }
    let t = report.total();
    if t.received != t.accepted + t.rejected {
        bail!(
            "counts do not add up: received {} ≠ accepted {} + quarantined {}",
            t.received,
            t.accepted,
            t.rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `trent quarantine`.
pub fn run_quarantine(a: QuarantineArgs, data: &Path) -> Result<ExitCode> {
    let rows: Vec<_> = trent_ingest::quarantine(data, a.raw)?
        .into_iter()
        .filter(|r| a.batch.is_none_or(|b| r.batch_id == b))
        .filter(|r| a.reason.as_ref().is_none_or(|x| &r.reason_code == x))
        .filter(|r| a.source.as_ref().is_none_or(|x| &r.source == x))
        .collect();
    if a.summary {
        let s = trent_ingest::review::quarantine_summary(&rows);
        if a.format == "json" {
            let v: Vec<_> = s
                .iter()
                .map(|((src, r), n)| serde_json::json!({"source": src, "reason_code": r, "records": n}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("source\treason\trecords");
            for ((src, r), n) in s {
                println!("{src}\t{r}\t{n}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let shown = &rows[..rows.len().min(a.limit)];
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(shown)?),
        "table" => {
            println!("batch\tsource\tfile\tline\treason\tmessage");
            for r in shown {
                println!(
                    "{}\t{}\t{}\t{}{}\t{}\t{}",
                    r.batch_id,
                    r.source,
                    r.file,
                    r.line,
                    r.entry.map(|e| format!("#{e}")).unwrap_or_default(),
                    r.reason_code,
                    r.message
                );
                if let Some(raw) = &r.raw {
                    println!("\traw: {raw}");
                }
            }
            if rows.len() > shown.len() {
                println!("… {} more (use --limit)", rows.len() - shown.len());
            }
        }
        other => bail!("--format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

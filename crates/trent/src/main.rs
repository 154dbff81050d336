//! `trent`: the command line. Thin by design: it parses flags, calls the library crates
//! and prints; every capability lives in a crate named for it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use trent_lake::{Lake, resolve_data_dir};
use trent_places::Area;
use trent_synth::{SynthOptions, time};

/// mimalloc instead of glibc's malloc: the query engine and the record service allocate
/// and free many small buffers from several threads at once, where glibc's arenas
/// spend a quarter of a transaction bundle's CPU in malloc, free and consolidation
/// (docs/ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ingest;
mod link;
mod observatory;
mod phm;
mod record;
mod score;
mod stats;

#[derive(Parser)]
#[command(
    name = "trent",
    version,
    about = "An open platform for an integrated care system: one person-level picture of an area's population and its care."
)]
struct Cli {
    /// Data directory (default ./trent-data; TRENT_DATA overrides the default).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the default lake if there is none, summarise the area, then serve the shared
    /// care record (built from the lake on first start) with one demo account per role.
    Up {
        /// Scale of the default lake when one has to be built.
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Stop after the summary (do not serve the shared care record).
        #[arg(long)]
        no_serve: bool,
        /// The record server.
        #[command(flatten)]
        serve: record::ServeCmd,
    },
    /// Generate a synthetic population calibrated to the area's targets, or check one.
    Synth(SynthArgs),
    /// List the lake's tables, or describe one.
    Lake {
        /// A table to describe.
        table: Option<String>,
    },
    /// Run SQL over the lake (DataFusion dialect) and print the result.
    Query {
        /// The SQL statement.
        sql: String,
        /// Output: table, csv or json (JSON Lines, one object per row).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Print the data model as Markdown (docs/schema.md).
    Schema,
    /// The system financial model: do-nothing gap, bridge, scenarios, Monte Carlo.
    Finance(FinanceArgs),
    /// The Observatory: every indicator of the catalogue for every place, period and
    /// breakdown, into the lake's `indicator_value` table (docs/observatory.md).
    Indicators(observatory::IndicatorsArgs),
    /// Public-health statistics on your own CSV: dsr, isr, proportion, rate, le, hle, sii,
    /// funnel, spc (docs/methods.md).
    Stats(Box<stats::StatsArgs>),
    /// Comorbidity and frailty indices on your own CSV: charlson, elixhauser, hfrs, efi,
    /// cms (docs/indices.md).
    Score(Box<score::ScoreArgs>),
    /// Link identity records (CSV) into people: NHS number, then Fellegi-Sunter (docs/linkage.md).
    Link(link::LinkArgs),
    /// Land source feeds in the lake and vault as one atomic batch: FHIR R4, flat extracts,
    /// OMOP, or a synthetic feeds folder (docs/ingest.md).
    #[command(subcommand)]
    Ingest(ingest::IngestCmd),
    /// List the records ingest quarantined (identifiers masked; --raw shows the vault side).
    Quarantine(ingest::QuarantineArgs),
    /// Population health management: features, indices, segments and the risk of an
    /// emergency admission for everyone at an index date, into the lake (docs/phm.md).
    Stratify(phm::StratifyArgs),
    /// Count a cohort by place (small numbers suppressed), or list a practice's worklist.
    Cohort(phm::CohortArgs),
    /// Serve the shared care record: FHIR R4 API, transfers of care, access control and
    /// audit (docs/record.md). Builds the record store from the lake and vault first.
    Serve(record::ServeCmd),
    /// Send a FHIR message (transfer of care) to another trent, with retries (outbox).
    Send(trent_record::cli::SendArgs),
    /// The shared care record's audit.
    #[command(subcommand)]
    Audit(record::AuditCmd),
}

#[derive(clap::Args)]
struct FinanceArgs {
    /// A plan file (docs/plan-format.md); default: the bundled Nottinghamshire 2016 plan.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// A scenario overlaid on the plan, reported side by side with it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Monte Carlo runs over the schemes' ranges (P10/P50/P90 of the remaining gap).
    #[arg(long, value_name = "N")]
    simulate: Option<usize>,
    /// Monte Carlo seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output: table, json or csv.
    #[arg(long, default_value = "table")]
    format: String,
    /// The lake-tied parts of the model (docs/costing.md).
    #[command(subcommand)]
    lake: Option<FinanceLake>,
}

/// `trent finance <costing|capitation|alliance|beds>`: read the lake (docs/costing.md).
#[derive(Subcommand)]
enum FinanceLake {
    /// Cost activity-stated schemes bottom-up from the lake, beside the plan's top-down values.
    Costing {
        /// A plan file; default: the bundled Nottinghamshire 2016 plan.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// A file of [[activity_schemes]] (default: the plan's own, else the bundled ones).
        #[arg(long)]
        schemes: Option<PathBuf>,
        /// Financial year of the lake, e.g. 2016/17 (default: the last complete one).
        #[arg(long)]
        year: Option<String>,
        /// Output: table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Weighted capitation (fair shares from need) and control totals.
    Capitation {
        /// practice, hub, locality, ccg, delivery_unit or stp.
        #[arg(long, default_value = "practice")]
        level: String,
        /// Total to share, £m at full scale (default: the current total spend).
        #[arg(long)]
        total: Option<f64>,
        /// Need factors: age-sex, ltc, imd or ltc+imd.
        #[arg(long, default_value = "ltc+imd")]
        risk: String,
        /// Codes (any level, comma-separated) whose units form a control-total set.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Financial year of the lake (default: the last complete one).
        #[arg(long)]
        year: Option<String>,
        /// Output: table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Alliance risk/reward on a pathway's actual cost from the lake (and patient choice).
    Alliance {
        /// An alliance file (default: the bundled Mid-Nottinghamshire urgent care pathway).
        #[arg(long)]
        alliance: Option<PathBuf>,
        /// Outturn year (default: the file's, else the last complete one).
        #[arg(long)]
        year: Option<String>,
        /// Output: table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Beds needed per site (Erlang B and simulation) and what bed reductions need.
    Beds {
        /// Target mean occupancy.
        #[arg(long, default_value_t = 0.92)]
        occupancy: f64,
        /// Only this site or provider code.
        #[arg(long)]
        site: Option<String>,
        /// Bed reductions, PROVIDER=BEDS comma-separated (default: the plan's RX1=200,RK5=20).
        #[arg(long, value_delimiter = ',', default_value = "RX1=200,RK5=20")]
        reduce: Vec<String>,
        /// Community contacts needed per bed day avoided.
        #[arg(long, default_value_t = 1.0)]
        contacts_per_bed_day: f64,
        /// Simulated days per site.
        #[arg(long, default_value_t = 5000.0)]
        sim_days: f64,
        /// Simulation seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Financial year of the lake (default: the last complete one).
        #[arg(long)]
        year: Option<String>,
        /// Output: table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(clap::Args)]
struct SynthArgs {
    /// A bundled area.
    #[arg(long, default_value = "nottinghamshire")]
    area: String,
    /// An area file (instead of a bundled area).
    #[arg(long)]
    area_file: Option<PathBuf>,
    /// Population scale: 1.0 is the area's population.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Years simulated.
    #[arg(long, default_value_t = 5)]
    years: i32,
    /// First day, YYYY-MM-DD (the start of a financial year is usual).
    #[arg(long, default_value = "2014-04-01")]
    start: String,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output data directory (default: --data).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Check a generated lake against the area's targets instead of generating.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
    /// Print the check as JSON.
    #[arg(long)]
    json: bool,
    /// What to write: `lake` (Parquet lake and identity vault), or `fhir` (the lake and
    /// vault, plus every person as a FHIR R4 transaction bundle in DIR/fhir, NDJSON).
    #[arg(long, value_enum, default_value_t = SynthFormat::Lake)]
    format: SynthFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SynthFormat {
    /// The lake and vault only.
    Lake,
    /// Also FHIR R4 transaction bundles (fhir/ beside the vault).
    Fhir,
    /// Also the source feeds with faults and ground truth (feeds/ beside the vault).
    Feeds,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Up { .. } | Cmd::Serve(_)) {
        batch_memory();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trent: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// mimalloc's option `purge_delay` (its position in `mi_option_e` in the mimalloc 3
/// `mimalloc.h` that libmimalloc-sys builds by default; the Rust binding names no
/// constant for it). Default 1,000 ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory settings for a batch command (stratify, synth, score, …), which builds a
/// column, drops it and builds the next of the same size, and ends within minutes. Both
/// are about fresh pages, which on a virtual machine cost far more than the zeroing: the
/// host must back each one (docs/benchmarks.md, "fresh memory").
///
/// - mimalloc by default hands freed memory back to the kernel a second later, and the
///   next column faults in pages the kernel must zero again: a batch command keeps what
///   it freed (peak resident memory rises about a tenth).
/// - Transparent huge pages: each fault zeroes 2 MiB. On this project's test machine
///   (KVM) a full-scale `stratify` took 5.6-8.4 s of system time with them (about 1,300
///   huge faults) and 4.1-5.3 s without (about 620,000 small ones), three interleaved
///   pairs. A batch command opts out for itself (`prctl(PR_SET_THP_DISABLE)`); the
///   machine's setting is untouched.
///
/// The record server, which runs for months, keeps mimalloc's and the kernel's defaults.
/// `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP` in the environment wins over each.
#[allow(unsafe_code)]
fn batch_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called once at the start of main, before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: a plain system call on this process's own flags; a kernel without it
        // returns an error, which changes nothing and is ignored.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn load_area(name: &str, file: Option<&PathBuf>) -> Result<Area> {
    Ok(match file {
        Some(f) => Area::from_file(f)?,
        None => Area::bundled(name)?,
    })
}

fn rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let data = resolve_data_dir(cli.data.as_deref());
    match cli.cmd {
        Cmd::Indicators(a) => return observatory::run(a, &data),
        Cmd::Link(a) => return link::run(a, &data),
        Cmd::Ingest(a) => return ingest::run(a, &data),
        Cmd::Quarantine(a) => return ingest::run_quarantine(a, &data),
        Cmd::Stratify(a) => return phm::run_stratify(a, &data),
        Cmd::Cohort(a) => return phm::run_cohort(a, &data),
        Cmd::Serve(a) => record::serve(&a, &data, &rt()?)?,
        Cmd::Send(a) => {
            return Ok(if record::send(&a, &data, &rt()?)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Cmd::Audit(a) => {
            return Ok(if record::audit(&a, &data, &rt()?)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Cmd::Stats(a) => return stats::run(*a),
        Cmd::Score(a) => return score::run(*a),
        Cmd::Schema => {
            print!("{}", trent_model::schema::markdown());
        }
        Cmd::Finance(FinanceArgs {
            lake: Some(sub), ..
        }) => finance_lake(sub, &data)?,
        Cmd::Finance(a) => {
            let format: trent_finance::Format = a.format.parse()?;
            let plan = match &a.plan {
                Some(p) => trent_finance::Plan::load(p)?,
                None => trent_finance::bundled_plan("nottinghamshire-2016")?,
            };
            let scenario = match &a.scenario {
                Some(p) => Some(plan.with_scenario(p)?),
                None => None,
            };
            let report = trent_finance::build_report(&plan, scenario.as_ref(), a.simulate, a.seed)?;
            print!("{}", report.render(format));
        }
        Cmd::Synth(a) => {
            let area = load_area(&a.area, a.area_file.as_ref())?;
            if let Some(dir) = &a.check {
                return check(&area, dir, a.json);
            }
            let start = time::parse(&a.start)
                .with_context(|| format!("--start {:?} is not a date YYYY-MM-DD", a.start))?;
            let opts = SynthOptions {
                scale: a.scale,
                years: a.years,
                start,
                seed: a.seed,
                threads: a.threads,
                max_partition: 80_000,
                progress: true,
                fhir: a.format == SynthFormat::Fhir,
            };
            let out = a.out.unwrap_or(data);
            let exports = trent_synth::Exports {
                feeds: a.format == SynthFormat::Feeds,
            };
            let s = trent_synth::synthesize_ext(&area, &opts, &out, exports)?;
            print_summary(&area, &s, &out);
        }
        Cmd::Up {
            scale,
            no_serve,
            serve,
        } => {
            let area = Area::bundled("nottinghamshire")?;
            if !Lake::exists(&data) {
                eprintln!(
                    "trent: no lake in {}; building the default synthetic {} at scale {scale} …",
                    data.display(),
                    area.area.name
                );
                let opts = SynthOptions {
                    scale,
                    years: 5,
                    start: time::parse("2014-04-01").expect("date"),
                    seed: 42,
                    threads: 0,
                    max_partition: 80_000,
                    progress: true,
                    fhir: false,
                };
                let s = trent_synth::synthesize(&area, &opts, &data)?;
                print_summary(&area, &s, &data);
            }
            up_summary(&area, &data)?;
            if !no_serve {
                let mut serve = serve;
                let rt = rt()?;
                if serve.practices.is_empty() && serve.max_people.is_none() {
                    // the demo record: one practice's registered list (the largest), so the
                    // first start takes seconds, not the hours the whole population would
                    let lake = Lake::open(&data)?;
                    if let Some(p) = rt.block_on(record::largest_practice(&lake))? {
                        serve.practices.push(p);
                    }
                }
                record::serve(&serve, &data, &rt)?;
            }
        }
        Cmd::Lake { table } => {
            let lake = Lake::open(&data)?;
            let c = &lake.catalog;
            match table {
                None => {
                    println!(
                        "lake {} (area {}, {} to {}, run {}, config {}…)",
                        data.display(),
                        c.area,
                        c.span_start,
                        c.span_end,
                        c.run_id,
                        &c.config_hash[..12.min(c.config_hash.len())]
                    );
                    println!("{:<14} {:>12} {:>6}", "table", "rows", "files");
                    for t in &c.tables {
                        println!("{:<14} {:>12} {:>6}", t.name, t.rows, t.files.len());
                    }
                    println!(
                        "identity vault: {} people (not readable through the lake)",
                        c.vault_rows
                    );
                }
                Some(name) => {
                    let Some(t) = c.table(&name) else {
                        bail!(
                            "no table {name:?} in the lake; tables: {}",
                            c.tables
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let def = trent_model::schema::table(&name);
                    println!(
                        "{} — {} rows in {} files, written by run {}",
                        t.name,
                        t.rows,
                        t.files.len(),
                        t.run_id
                    );
                    if let Some(d) = def {
                        println!("{}\n", d.doc);
                    }
                    for col in &t.schema {
                        let doc = def
                            .and_then(|d| d.columns.iter().find(|c| c.name == col.name))
                            .map(|c| c.doc)
                            .unwrap_or("");
                        println!(
                            "  {:<22} {:<24} {:<5} {}",
                            col.name,
                            col.ty,
                            if col.nullable { "null" } else { "" },
                            doc
                        );
                    }
                }
            }
        }
        Cmd::Query { sql, format } => {
            let format: trent_lake::output::OutputFormat =
                format.parse().map_err(anyhow::Error::msg)?;
            let lake = Lake::open(&data)?;
            rt()?.block_on(async {
                let ctx = lake.session().await?;
                let df = ctx.sql(&sql).await?;
                let batches = df.collect().await?;
                print!("{}", trent_lake::output::render(&batches, format)?);
                anyhow::Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn finance_lake(cmd: FinanceLake, data: &std::path::Path) -> Result<()> {
    use trent_costing::{LakeView, OutputFormat, beds, capitation, costing, pathway};
    let fmt = |f: &str| f.parse::<OutputFormat>().map_err(anyhow::Error::msg);
    let out = rt()?.block_on(async {
        let view = LakeView::open(data).await?;
        anyhow::Ok(match cmd {
            FinanceLake::Costing {
                plan,
                schemes,
                year,
                format,
            } => {
                let plan = match &plan {
                    Some(p) => trent_finance::Plan::load(p)?,
                    None => trent_finance::bundled_plan("nottinghamshire-2016")?,
                };
                let text = match &schemes {
                    Some(p) => Some((
                        std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
                        p.display().to_string(),
                    )),
                    None => None,
                };
                let list = costing::schemes_for(
                    &plan,
                    text.as_ref().map(|(t, l)| (t.as_str(), l.as_str())),
                )?;
                let year = view.year(year.as_deref())?;
                costing::cost_schemes(&view, &plan, &list, &year)
                    .await?
                    .render(fmt(&format)?)
            }
            FinanceLake::Capitation {
                level,
                total,
                risk,
                only,
                year,
                format,
            } => {
                let opts = capitation::CapitationOptions {
                    level,
                    total_m: total,
                    risk: risk.parse().map_err(anyhow::Error::msg)?,
                    only,
                };
                let year = view.year(year.as_deref())?;
                capitation::capitation(&view, &year, &opts)
                    .await?
                    .render(fmt(&format)?)
            }
            FinanceLake::Alliance {
                alliance,
                year,
                format,
            } => {
                let (text, label) = match &alliance {
                    Some(p) => (
                        std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
                        p.display().to_string(),
                    ),
                    None => (
                        pathway::BUNDLED_ALLIANCE.to_string(),
                        pathway::BUNDLED_ALLIANCE_LABEL.to_string(),
                    ),
                };
                let report = match pathway::parse_alliance(&text, &label)? {
                    pathway::AllianceFile::Plain(a) => pathway::AllianceReport {
                        outturn: None,
                        settlement: a.settle(),
                    },
                    pathway::AllianceFile::Pathway(a) => {
                        pathway::settle_pathway(&view, &a, year.as_deref()).await?
                    }
                };
                report.render(fmt(&format)?)
            }
            FinanceLake::Beds {
                occupancy,
                site,
                reduce,
                contacts_per_bed_day,
                sim_days,
                seed,
                year,
                format,
            } => {
                let mut reductions = Vec::new();
                for r in &reduce {
                    let (p, n) = r
                        .split_once('=')
                        .with_context(|| format!("--reduce {r:?}: expected PROVIDER=BEDS"))?;
                    reductions.push((
                        p.to_string(),
                        n.parse().with_context(|| {
                            format!("--reduce {r:?}: beds must be a whole number")
                        })?,
                    ));
                }
                let opts = beds::BedOptions {
                    occupancy,
                    site,
                    reductions,
                    sim_days,
                    seed,
                    contacts_per_bed_day,
                };
                let area = Area::bundled(&view.lake.catalog.area)
                    .ok()
                    .filter(|a| a.config_hash == view.lake.catalog.config_hash);
                let year = view.year(year.as_deref())?;
                beds::beds(&view, &year, area.as_ref(), &opts)
                    .await?
                    .render(fmt(&format)?)
            }
        })
    })?;
    print!("{out}");
    Ok(())
}

fn check(area: &Area, dir: &std::path::Path, json: bool) -> Result<ExitCode> {
    let lake = Lake::open(dir)?;
    if lake.catalog.config_hash != area.config_hash {
        eprintln!(
            "trent: note: the lake was generated from a different area file (config hash differs)"
        );
    }
    let rows = rt()?.block_on(trent_synth::check::check(area, &lake))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", trent_synth::check::render(&rows));
    }
    Ok(if rows.iter().all(|r| r.pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(area: &Area, s: &trent_synth::Summary, out: &std::path::Path) {
    println!(
        "synthesised {} in {:.1} s: {} people, {} events in {} partitions ({:.0} people/s, {:.0} events/s)",
        area.area.name,
        s.seconds,
        s.people,
        s.events,
        s.partitions,
        s.people as f64 / s.seconds,
        s.events as f64 / s.seconds
    );
    for (t, n) in &s.tables {
        println!("  {t:<14} {n:>12}");
    }
    println!(
        "lake written to {} (run {})",
        out.join("lake").display(),
        s.run_id
    );
    if let Some(f) = &s.fhir {
        println!(
            "FHIR R4: {} transaction bundles, {} resources, {:.1} MB of NDJSON in {} (identifiable: owner-only)",
            f.bundles,
            f.resources,
            f.bytes as f64 / 1e6,
            out.join("fhir").display()
        );
    }
}

fn up_summary(area: &Area, data: &std::path::Path) -> Result<()> {
    let lake = Lake::open(data)?;
    println!(
        "\n{} — population {} (configured), {:.1}% living in the most deprived fifth of England",
        area.area.name,
        area.area.population,
        100.0 * area.most_deprived_fifth_share()
    );
    for du in &area.delivery_units {
        println!("  {}", du.name);
        for c in area.ccgs.iter().filter(|c| c.delivery_unit == du.code) {
            let locs = area.localities.iter().filter(|l| l.ccg == c.code).count();
            println!(
                "    {:<40} {:>8}  {} localities",
                c.name, c.population, locs
            );
        }
    }
    rt()?.block_on(async {
        let ctx = lake.session().await?;
        let sql = "select setting, count(*) as contacts, round(sum(cost_gbp) / 1e6, 2) as cost_gbp_m from activity group by setting order by contacts desc";
        let b = ctx.sql(sql).await?.collect().await?;
        println!("\nactivity in the lake ({} to {}):\n{}", lake.catalog.span_start, lake.catalog.span_end, arrow::util::pretty::pretty_format_batches(&b)?);
        anyhow::Ok(())
    })?;
    println!(
        "lake: {} — `trent lake` lists its tables, `trent query SQL` queries them",
        data.join("lake").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constant names the option it means: mimalloc 3's purge_delay defaults to
    /// 1,000 ms, between a deprecated option defaulting to 1 and `use_numa_nodes` (0); an
    /// upgrade that renumbers the enum or changes the default fails here, not silently in
    /// a benchmark.
    #[test]
    #[allow(unsafe_code)]
    fn batch_commands_keep_freed_memory_in_small_pages() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000, "mimalloc's purge delay defaults to 1,000 ms");
        batch_memory();
        assert_eq!(get(), -1);
        #[cfg(target_os = "linux")]
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            let off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
            assert_eq!(off, 1, "transparent huge pages off for this process");
        }
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY - 1) },
            1,
            "the option before it is the deprecated eager_commit_delay (default 1)"
        );
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY + 1) },
            0,
            "the option after it is use_numa_nodes (default 0)"
        );
    }
}

//! `trent`: the command line. Thin by design: it parses flags, calls the library crates
//! and prints; every capability lives in a crate named for it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use trent_lake::{Lake, resolve_data_dir};
use trent_places::Area;
use trent_synth::{SynthOptions, time};

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
    /// Build the default lake if there is none, then summarise the area.
    Up {
        /// Scale of the default lake when one has to be built.
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
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
    Lake,
    Fhir,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trent: error: {e:#}");
            ExitCode::from(2)
        }
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
        Cmd::Schema => {
            print!("{}", trent_model::schema::markdown());
        }
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
            let s = trent_synth::synthesize(&area, &opts, &out)?;
            print_summary(&area, &s, &out);
        }
        Cmd::Up { scale } => {
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

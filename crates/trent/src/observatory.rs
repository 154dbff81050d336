//! `trent indicators`: the Observatory over the lake (docs/observatory.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use trent_lake::Lake;
use trent_lake::output::{OutputFormat, render};
use trent_observatory::output;
use trent_observatory::run::{RunOptions, run as run_all};

/// `trent indicators [--only ID…] [--dir DIR] [--format …] [--out FILE]`
#[derive(clap::Args)]
pub struct IndicatorsArgs {
    /// Only these indicators (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A folder of definitions instead of the bundled catalogue.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Export every value to this file (CSV or JSON Lines by --format).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Export format for --out: csv or json.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Compute with the row-by-row reference implementation (slow; small lakes).
    #[arg(long)]
    reference: bool,
    /// Write the SQL the fast path runs (one file per statement) to DIR and stop: the
    /// DuckDB benchmark (bench/peers/observatory.py) runs the same statements.
    #[arg(long, value_name = "DIR")]
    dump_sql: Option<PathBuf>,
}

/// Run it.
pub fn run(a: IndicatorsArgs, data: &Path) -> Result<ExitCode> {
    let lake = Lake::open(data)?;
    if let Some(dir) = &a.dump_sql {
        let (mut inds, bad) = trent_observatory::load(a.dir.as_deref());
        if let Some(e) = bad.first() {
            anyhow::bail!("{e}");
        }
        if !a.only.is_empty() {
            inds.retain(|i| a.only.contains(&i.def.id));
        }
        let start = trent_model::time::parse(&lake.catalog.span_start).context("lake span")?;
        let end = trent_model::time::parse(&lake.catalog.span_end).context("lake span")? + 1;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let stmts = trent_observatory::engine::dump_sql(&inds, start, end);
        for (i, (name, sql)) in stmts.iter().enumerate() {
            let p = dir.join(format!("{i:03}-{name}.sql"));
            std::fs::write(&p, sql).with_context(|| format!("cannot write {}", p.display()))?;
        }
        println!("{} statements → {}", stmts.len(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opts = RunOptions {
        only: a.only.clone(),
        dir: a.dir.clone(),
        reference: a.reference,
    };
    let t0 = std::time::Instant::now();
    let report = rt.block_on(run_all(&lake, &opts))?;
    let secs = t0.elapsed().as_secs_f64();
    if !report.values.is_empty() {
        let batch = output::batch(&report.values)?;
        // --only replaces those indicators' rows and keeps the others
        let mut batches = vec![batch.clone()];
        if !a.only.is_empty() && lake.derived_dir(output::TABLE).exists() {
            let ran: Vec<String> = report
                .indicators
                .iter()
                .map(|i| format!("'{}'", i.def.id.replace('\'', "''")))
                .collect();
            let kept = rt.block_on(async {
                let ctx = lake.session().await?;
                let df = ctx
                    .sql(&format!(
                        "SELECT * FROM {} WHERE indicator NOT IN ({})",
                        output::TABLE,
                        ran.join(",")
                    ))
                    .await?;
                anyhow::Ok(df.collect().await?)
            })?;
            for b in kept {
                let cols = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| {
                        let c = b.column_by_name(f.name()).with_context(|| {
                            format!("indicator_value has no column {}", f.name())
                        })?;
                        Ok(arrow::compute::cast(c, f.data_type())?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                batches.push(arrow::array::RecordBatch::try_new(batch.schema(), cols)?);
            }
        }
        let dir = lake.write_derived(output::TABLE, &batches)?;
        if !report.funnels.is_empty() && a.only.is_empty() {
            lake.write_derived(
                output::FUNNEL_TABLE,
                &[output::funnel_batch(&report.funnels)?],
            )?;
        }
        if !report.referrals.is_empty() {
            lake.write_derived(
                output::REFERRAL_TABLE,
                &[output::referral_batch(&report.referrals)?],
            )?;
        }
        if let Some(out) = &a.out {
            let f: OutputFormat = a.format.parse().map_err(anyhow::Error::msg)?;
            if f == OutputFormat::Table {
                anyhow::bail!("--format for --out is csv or json");
            }
            std::fs::write(out, render(&[batch], f)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        println!(
            "{} values of {} indicators in {secs:.1} s → {} (table `{}`); {} funnel points (`{}`), {} referral dashboard rows (`{}`)",
            report.values.len(),
            report.indicators.len() - report.failed.len(),
            dir.display(),
            output::TABLE,
            report.funnels.len(),
            output::FUNNEL_TABLE,
            report.referrals.len(),
            output::REFERRAL_TABLE
        );
    }
    // the headline: the area's latest value of each indicator against its trajectory
    println!(
        "{:<28} {:<12} {:>10} {:>10} {:>10}  {:<26} {:<22} {:>6}",
        "indicator", "period", "value", "trajectory", "target", "variation", "assurance", "secs"
    );
    for ind in &report.indicators {
        let last = report
            .values
            .iter()
            .filter(|v| {
                v.indicator == ind.def.id
                    && v.level == "stp"
                    && (v.breakdown == "all" || (v.breakdown == "sex" && v.breakdown_value == "F"))
            })
            .filter(|v| v.value.is_some())
            .max_by(|x, y| x.period_start.cmp(&y.period_start));
        let f = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        let secs = report
            .timings
            .iter()
            .find(|t| t.0 == ind.def.id)
            .map(|t| t.1)
            .unwrap_or(0.0);
        if let Some(v) = last {
            println!(
                "{:<28} {:<12} {:>10} {:>10} {:>10}  {:<26} {:<22} {secs:>6.2}",
                v.indicator,
                v.period,
                f(v.value),
                f(v.trajectory),
                f(v.target),
                v.variation.as_deref().unwrap_or("-"),
                v.assurance.as_deref().unwrap_or("-")
            );
        } else {
            println!("{:<28} (no value) {secs:>6.2}", ind.def.id);
        }
    }
    for e in &report.def_errors {
        eprintln!("trent: definition error: {e}");
    }
    for (id, m) in &report.failed {
        eprintln!("trent: indicator {id} failed: {m}");
    }
    Ok(
        if report.def_errors.is_empty() && report.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        },
    )
}

//! `trent stratify` and `trent cohort`: population health management over the lake
//! (docs/phm.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use trent_lake::Lake;
use trent_phm::cohort::{self, Cohort};
use trent_phm::stratify::{StratifyOptions, stratify};

/// `trent stratify [--index-date D] [--model FILE] [--rounds N] [--report-json FILE]`
#[derive(clap::Args)]
pub struct StratifyArgs {
    /// Index date (YYYY-MM-DD); default the day after the lake's last.
    #[arg(long)]
    index_date: Option<String>,
    /// Use this model (an artefact .json, or a scorecard .toml) instead of training one.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Boosting rounds when training (early stopping may use fewer).
    #[arg(long)]
    rounds: Option<usize>,
    /// Also write the evaluation report as JSON to this file.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Write the SQL the run executes (every index date it computes features for) to DIR
    /// and stop: the DuckDB benchmark (bench/peers/phm.py) runs the same statements.
    #[arg(long, value_name = "DIR")]
    dump_sql: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Run `trent stratify`.
pub fn run_stratify(a: StratifyArgs, data: &Path) -> Result<ExitCode> {
    let lake = Lake::open(data)?;
    if let Some(dir) = &a.dump_sql {
        let dates =
            trent_phm::stratify::feature_dates(&lake, a.index_date.as_deref(), a.model.is_none())?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut k = 0;
        for d in &dates {
            for (name, sql) in trent_phm::features::sql(*d) {
                let p = dir.join(format!("{k:03}-{}-{name}.sql", trent_model::time::iso(*d)));
                std::fs::write(&p, sql).with_context(|| format!("cannot write {}", p.display()))?;
                k += 1;
            }
        }
        println!(
            "{k} statements for {} index dates → {}",
            dates.len(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let opts = StratifyOptions {
        index_date: a.index_date,
        model: a.model,
        rounds: a.rounds,
    };
    let t0 = std::time::Instant::now();
    let r = runtime()?.block_on(stratify(&lake, &opts))?;
    println!(
        "stratified {} people registered on {} in {:.1} s",
        r.people,
        r.index_date,
        t0.elapsed().as_secs_f64()
    );
    if let Some((date, n)) = &r.trained {
        println!(
            "trained on {n} people at index date {date} (one in ten held out for early stopping)"
        );
    }
    println!("model: {} ({})", r.model_file.display(), r.model_kind);
    if let Some((date, ev, base)) = &r.evaluation {
        println!("\nevaluation at index date {date} (outcomes in the following year):\n{ev}");
        if let Some(b) = base {
            let o = &b.overall;
            if let (Some(au), Some(br)) = (&o.auroc, o.brier) {
                println!(
                    "logistic-regression baseline: AUROC {:.4} ({:.4}-{:.4}), Brier {:.4}",
                    au.value, au.lower, au.upper, br
                );
            }
        }
        if let Some(p) = &a.report_json {
            let json = serde_json::json!({
                "index_date": r.index_date,
                "evaluation_date": date,
                "model": r.model_file,
                "evaluation": ev,
                "baseline_logistic": base,
            });
            std::fs::write(p, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
    }
    println!("\nsegment                   people");
    for (s, n) in &r.segments {
        println!("{:<24} {:>8}", s.name(), n);
    }
    println!(
        "high risk (top 5%): risk ≥ {:.3}; rising risk: {} people",
        r.high_threshold, r.rising
    );
    if r.malformed_codes > 0 {
        println!(
            "{} codes could not be read by the indices",
            r.malformed_codes
        );
    }
    println!(
        "tables `{}` and `{}` written to the lake; timings: {}",
        trent_phm::stratify::FEATURES_TABLE,
        trent_phm::stratify::RISK_TABLE,
        r.timings
            .iter()
            .map(|(s, t)| format!("{s} {t:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `trent cohort FILE [--by LEVEL] [--practice CODE] [--format table|csv|json]`
#[derive(clap::Args)]
pub struct CohortArgs {
    /// The cohort definition (TOML).
    file: PathBuf,
    /// Count by practice, hub, locality or ccg.
    #[arg(long, default_value = "practice")]
    by: String,
    /// List this practice's worklist (pseudonymous ids by risk, with reasons) instead.
    #[arg(long)]
    practice: Option<String>,
    /// Output: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// With --practice: open the worklist with names and NHS numbers through the shared
    /// care record at this address (e.g. http://127.0.0.1:8080), as the clinician whose
    /// session token is --token. Only the record service re-identifies, after its access
    /// decision, and audits each person.
    #[arg(long, value_name = "URL", requires = "practice")]
    record: Option<String>,
    /// Session token of a clinician of the practice (from POST /auth/login).
    #[arg(long, env = "TRENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Posts a pseudonymous worklist to the record service and prints it identified.
fn identified_worklist(
    rt: &tokio::runtime::Runtime,
    url: &str,
    token: Option<&str>,
    practice: &str,
    rows: &[cohort::WorklistRow],
    format: &str,
) -> Result<ExitCode> {
    let token = token.context("--record needs --token (a clinician's session token)")?;
    let body = serde_json::json!({
        "practice": practice,
        "rows": rows.iter().map(|r| serde_json::json!({
            // the record's Patient id is trent-fhir's deterministic id of the lake person
            "person": trent_fhir::uuid("Patient", r.person_id as u64),
            "score": r.risk,
            "reasons": r.reasons,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let auth = format!("Bearer {token}");
    let endpoint = format!("{}/record/worklist", url.trim_end_matches('/'));
    let resp = rt
        .block_on(trent_record::http::request(
            "POST",
            &endpoint,
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            Some(body.as_bytes()),
            std::time::Duration::from_secs(60),
        ))
        .with_context(|| format!("POST {endpoint}"))?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    if resp.status != 200 {
        anyhow::bail!(
            "the record service refused the worklist (HTTP {}): {}",
            resp.status,
            v["issue"][0]["diagnostics"].as_str().unwrap_or("no detail")
        );
    }
    let out = v["rows"].as_array().cloned().unwrap_or_default();
    if format == "json" {
        for r in &out {
            println!("{r}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "worklist for practice {practice} ({} people, highest risk first; identified by the record service, each access audited)",
        out.len()
    );
    println!(
        "{:<10} {:<28} {:<10} {:>7}  reasons",
        "NHS no.", "name", "born", "risk"
    );
    for r in &out {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        if let Some(w) = r["withheld"].as_str() {
            println!(
                "{:<10} {:<28} {:<10} {:>7}  (withheld: {w})",
                "-", "-", "-", "-"
            );
            continue;
        }
        println!(
            "{:<10} {:<28} {:<10} {:>7.3}  {}",
            s("nhs_number"),
            s("name"),
            s("birth_date"),
            r["score"].as_f64().unwrap_or(f64::NAN),
            r["reasons"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; "))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `trent cohort`.
pub fn run_cohort(a: CohortArgs, data: &Path) -> Result<ExitCode> {
    let c = Cohort::load(&a.file)?;
    if a.format != "table" && a.format != "json" {
        anyhow::bail!("--format {}: choose table or json", a.format);
    }
    let lake = Lake::open(data)?;
    let rt = runtime()?;
    let ctx = rt.block_on(lake.session())?;
    if let Some(p) = &a.practice {
        let rows = rt.block_on(cohort::worklist(&ctx, &c, p))?;
        if let Some(url) = &a.record {
            return identified_worklist(&rt, url, a.token.as_deref(), p, &rows, &a.format);
        }
        if a.format == "json" {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        } else {
            println!(
                "{} — worklist for practice {p} ({} shown, highest risk first; pseudonymous ids)",
                c.name,
                rows.len()
            );
            println!(
                "{:>12} {:>7} {:>7}  {:<24} reasons",
                "person_id", "risk", "centile", "segment"
            );
            for r in &rows {
                println!(
                    "{:>12} {:>7.3} {:>7.1}  {:<24} {}",
                    r.person_id,
                    r.risk,
                    r.centile,
                    r.segment,
                    r.reasons.join("; ")
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let t0 = std::time::Instant::now();
    let counts = rt.block_on(cohort::counts(&ctx, &c, &a.by))?;
    let secs = t0.elapsed().as_secs_f64();
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let show = |n: u64| cohort::disclose(n).map_or("*".to_string(), |x| x.to_string());
    if a.format == "json" {
        for (p, n) in &counts {
            println!(
                "{}",
                serde_json::json!({"cohort": c.name, "by": a.by, "place": p, "count": cohort::disclose(*n), "suppressed": cohort::disclose(*n).is_none()})
            );
        }
        println!(
            "{}",
            serde_json::json!({"cohort": c.name, "by": a.by, "place": "total", "count": cohort::disclose(total), "suppressed": cohort::disclose(total).is_none()})
        );
    } else {
        println!("{} — by {} ({secs:.2} s)", c.name, a.by);
        println!("{:<14} {:>8}", a.by, "people");
        for (p, n) in &counts {
            println!("{p:<14} {:>8}", show(*n));
        }
        println!("{:<14} {:>8}", "total", show(total));
        println!("counts of 1-7 are shown as *; others are rounded to the nearest 5");
    }
    Ok(ExitCode::SUCCESS)
}

//! The report: a plan's evaluation, an optional scenario beside it, an optional Monte Carlo
//! and an alliance settlement — and its three renderings.
//!
//! Why three: a finance director reads the plain-text table, the web app and other tools
//! read JSON (the report's own structure, serialised whole), and analysts load the CSV into
//! a spreadsheet. The CSV is long ("tidy"): one figure per row with its section, case,
//! entity, year and measure, so no figure depends on column position. Renderers hold no
//! arithmetic except differences between cases and totals of listed figures.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

use crate::alliance::Settlement;
use crate::engine::{BridgeYear, Evaluation, Level, evaluate};
use crate::error::FinanceError;
use crate::montecarlo::{Simulation, simulate};
use crate::plan::{BridgeRow, Plan, Scenario};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain-text tables.
    Table,
    /// The report serialised as JSON.
    Json,
    /// Long CSV: `section,case,entity,level,year,measure,value`.
    Csv,
}

impl FromStr for Format {
    type Err = FinanceError;
    fn from_str(s: &str) -> Result<Format, FinanceError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(FinanceError::invalid(
                "<input>",
                "format",
                s,
                "one of table, json, csv",
            )),
        }
    }
}

/// What `trent finance` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// The plan file.
    pub plan: PathBuf,
    /// A scenario file overlaid on the plan (optional).
    pub scenario: Option<PathBuf>,
    /// Monte Carlo runs (optional).
    pub simulate: Option<usize>,
    /// Monte Carlo seed.
    pub seed: u64,
}

impl RunOptions {
    /// Options for evaluating `plan` alone, seed 42.
    pub fn new(plan: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            plan: plan.into(),
            scenario: None,
            simulate: None,
            seed: 42,
        }
    }
}

/// A scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Scenario description.
    pub description: String,
    /// Plan + scenario file names.
    pub label: String,
    /// The evaluation with the overlay applied.
    pub evaluation: Evaluation,
    /// Its Monte Carlo, if asked for.
    pub simulation: Option<Simulation>,
    /// Its alliance settlement, if the plan has an alliance.
    pub alliance: Option<Settlement>,
}

/// Everything `trent finance` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The plan file.
    pub plan_file: String,
    /// The plan's evaluation.
    pub plan: Evaluation,
    /// The plan's Monte Carlo, if asked for.
    pub simulation: Option<Simulation>,
    /// The alliance settlement, if the plan has an alliance.
    pub alliance: Option<Settlement>,
    /// The scenario, if one was given.
    pub scenario: Option<ScenarioResult>,
}

/// Read, validate and evaluate as `opts` asks.
pub fn run(opts: &RunOptions) -> Result<Report, FinanceError> {
    let plan = Plan::load(&opts.plan)?;
    let scenario = match &opts.scenario {
        Some(path) => Some(plan.with_scenario(path)?),
        None => None,
    };
    build_report(&plan, scenario.as_ref(), opts.simulate, opts.seed)
}

/// Evaluate a validated plan and optional scenario into a report.
pub fn build_report(
    plan: &Plan,
    scenario: Option<&Scenario>,
    runs: Option<usize>,
    seed: u64,
) -> Result<Report, FinanceError> {
    let ev = evaluate(plan);
    let simulation = match runs {
        Some(n) => Some(simulate(plan, &ev, n, seed)?),
        None => None,
    };
    let scenario = match scenario {
        Some(s) => {
            let sev = evaluate(&s.plan);
            let simulation = match runs {
                Some(n) => Some(simulate(&s.plan, &sev, n, seed)?),
                None => None,
            };
            Some(ScenarioResult {
                name: s.name.clone(),
                description: s.description.clone(),
                label: s.plan.label().to_string(),
                evaluation: sev,
                simulation,
                alliance: s.plan.file().alliance.as_ref().map(|a| a.settle()),
            })
        }
        None => None,
    };
    Ok(Report {
        plan_file: plan.label().to_string(),
        plan: ev,
        simulation,
        alliance: plan.file().alliance.as_ref().map(|a| a.settle()),
        scenario,
    })
}

impl Report {
    /// Render in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.render_table(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).expect("a report serialises");
                s.push('\n');
                s
            }
            Format::Csv => self.render_csv(),
        }
    }

    fn render_table(&self) -> String {
        let mut out = String::new();
        let ev = &self.plan;
        let _ = writeln!(
            out,
            "{} — figures in {} ({})",
            ev.plan, ev.unit, self.plan_file
        );
        write_evaluation(&mut out, ev);
        if let Some(sim) = &self.simulation {
            write_simulation(&mut out, ev, sim, "plan");
        }
        if let Some(a) = &self.alliance {
            write_alliance(&mut out, a);
        }
        if let Some(s) = &self.scenario {
            let _ = writeln!(out, "\n=== Scenario: {} ({}) ===", s.name, s.label);
            if !s.description.is_empty() {
                let _ = writeln!(out, "{}", s.description);
            }
            write_comparison(&mut out, ev, &s.evaluation);
            if let Some(sim) = &s.simulation {
                write_simulation(&mut out, &s.evaluation, sim, "scenario");
            }
            if let Some(a) = &s.alliance
                && Some(a) != self.alliance.as_ref()
            {
                write_alliance(&mut out, a);
            }
        }
        out
    }

    fn render_csv(&self) -> String {
        let mut out = String::from("section,case,entity,level,year,measure,value\n");
        csv_evaluation(
            &mut out,
            "plan",
            &self.plan,
            self.simulation.as_ref(),
            self.alliance.as_ref(),
        );
        if let Some(s) = &self.scenario {
            csv_evaluation(
                &mut out,
                "scenario",
                &s.evaluation,
                s.simulation.as_ref(),
                s.alliance.as_ref(),
            );
        }
        out
    }
}

// ---------------------------------------------------------------- plain text

fn money(x: f64) -> String {
    if x.is_nan() {
        return "—".into();
    }
    let v = if x.abs() < 0.05 { 0.0 } else { x };
    format!("{v:.1}")
}

fn pct(x: f64) -> String {
    let v = if (x * 100.0).abs() < 0.05 {
        0.0
    } else {
        x * 100.0
    };
    format!("{v:.1}%")
}

/// Lay out rows under headers: first column left-aligned, the rest right-aligned.
fn grid(headers: &[impl AsRef<str>], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| h.as_ref().to_string()).collect();
    let headers = headers.as_slice();
    let n = headers.len();
    let mut w = vec![0usize; n];
    for r in std::iter::once(headers).chain(rows.iter().map(|r| r.as_slice())) {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, r: &[String]| {
        for (i, c) in r.iter().enumerate().take(n) {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.push('\n');
    };
    line(&mut s, headers);
    let total: usize = w.iter().sum::<usize>() + 2 * (n - 1);
    s.push_str(&"-".repeat(total));
    s.push('\n');
    for r in rows {
        line(&mut s, r);
    }
    s
}

fn indent(level: Level) -> &'static str {
    match level {
        Level::System => "",
        Level::Body => "  ",
        Level::Sector => "    ",
        Level::Organisation => "      ",
    }
}

fn label(e: &crate::engine::EntityBridge) -> String {
    format!("{}{}", indent(e.level), e.name)
}

/// A labelled line of a table and how to read it from a row.
type Line<T, V> = (&'static str, fn(&T) -> V);

const BRIDGE_LINES: [Line<BridgeYear, f64>; 9] = [
    ("Do-nothing gap", |r| r.do_nothing_gap),
    ("Organisational efficiencies", |r| -r.efficiencies),
    ("Schemes (net)", |r| -r.schemes),
    ("STF", |r| -r.stf),
    ("PFI support", |r| -r.pfi),
    ("Transition funding", |r| -r.transition),
    ("Stretch savings", |r| -r.stretch),
    ("Other funding", |r| -r.other_funding),
    ("Remaining gap (− = surplus)", |r| r.remaining_gap),
];

fn write_evaluation(out: &mut String, ev: &Evaluation) {
    let years = &ev.years;
    let last = years.len() - 1;
    let mut headers = vec![String::new()];
    headers.extend(years.iter().cloned());

    let _ = writeln!(out, "\nDo-nothing gap (cost − income)");
    let rows: Vec<Vec<String>> = ev
        .entities
        .iter()
        .map(|e| {
            let mut r = vec![label(e)];
            r.extend(e.years.iter().map(|y| money(y.do_nothing_gap)));
            r
        })
        .collect();
    out.push_str(&grid(&headers, &rows));

    let _ = writeln!(out, "\nGrowth {} to {}", years[0], years[last]);
    let gh = [
        "",
        "cost growth",
        "demographic",
        "non-demogr.",
        "inflation",
        "allocation growth",
        "non-recurrent change",
        "gap change",
    ];
    let rows: Vec<Vec<String>> = ev
        .entities
        .iter()
        .filter(|e| e.level != Level::Organisation)
        .map(|e| {
            let (a, z) = (&e.years[0], &e.years[last]);
            vec![
                label(e),
                money(z.cost_growth),
                money(z.cost_growth_demographic),
                money(z.cost_growth_non_demographic),
                money(z.cost_growth_inflation),
                money(z.allocation_growth),
                money(z.non_recurrent_income - a.non_recurrent_income),
                money(z.do_nothing_gap - a.do_nothing_gap),
            ]
        })
        .collect();
    out.push_str(&grid(&gh, &rows));

    for e in ev
        .entities
        .iter()
        .filter(|e| matches!(e.level, Level::System | Level::Body))
    {
        let _ = writeln!(out, "\nBridge — {}", e.name);
        let rows: Vec<Vec<String>> = BRIDGE_LINES
            .iter()
            .map(|(name, f)| {
                let mut r = vec![name.to_string()];
                r.extend(e.years.iter().map(|y| money(f(y))));
                r
            })
            .collect();
        out.push_str(&grid(&headers, &rows));
    }

    let _ = writeln!(out, "\nBridge by organisation, {}", years[last]);
    let oh = ["", "gap", "efficiencies", "schemes", "funding", "remaining"];
    let rows: Vec<Vec<String>> = ev
        .entities
        .iter()
        .map(|e| {
            let z = &e.years[last];
            vec![
                label(e),
                money(z.do_nothing_gap),
                money(z.efficiencies),
                money(z.schemes),
                money(z.funding_total()),
                money(z.remaining_gap),
            ]
        })
        .collect();
    out.push_str(&grid(&oh, &rows));

    if !ev.schemes.is_empty() {
        let _ = writeln!(out, "\nSchemes (full-year, {})", ev.unit);
        let mut sh: Vec<String> = [
            "scheme",
            "gross",
            "reinvestment",
            "net",
            "low",
            "high",
            "row",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sh.extend(years[1..].iter().cloned());
        let mut rows: Vec<Vec<String>> = ev
            .schemes
            .iter()
            .map(|s| {
                let mut r = vec![
                    s.name.clone(),
                    s.gross.map_or("n/a".into(), money),
                    s.reinvestment.map_or("n/a".into(), money),
                    money(s.net),
                    money(s.low),
                    money(s.high),
                    match s.row {
                        BridgeRow::NewCareModel => "new care model".into(),
                        BridgeRow::Efficiencies => "efficiencies".into(),
                    },
                ];
                r.extend(s.savings[1..].iter().map(|x| money(*x)));
                r
            })
            .collect();
        let sum = |f: &dyn Fn(&crate::engine::SchemeLine) -> Option<f64>| -> f64 {
            ev.schemes.iter().filter_map(f).sum()
        };
        let mut total = vec![
            "Total".to_string(),
            money(sum(&|s| s.gross)),
            money(sum(&|s| s.reinvestment)),
            money(sum(&|s| Some(s.net))),
            money(sum(&|s| Some(s.low))),
            money(sum(&|s| Some(s.high))),
            String::new(),
        ];
        for t in 1..years.len() {
            total.push(money(sum(&|s| Some(s.savings[t]))));
        }
        rows.push(total);
        out.push_str(&grid(&sh, &rows));
    }

    for v in &ev.percentages {
        let _ = writeln!(
            out,
            "\nPercentage view — {} (in-year lines over the provider cost base)",
            v.body
        );
        let mut ph = vec![String::new()];
        ph.extend(v.years.iter().map(|y| y.year.clone()));
        let lines: [Line<crate::engine::PercentYear, String>; 7] = [
            ("Provider cost base (£m)", |y| money(y.provider_cost_base)),
            ("Total system challenge", |y| pct(y.challenge)),
            ("Organisational efficiencies", |y| pct(y.efficiencies)),
            ("Net savings from new model of care", |y| {
                pct(y.new_care_model)
            }),
            ("Additional STF", |y| pct(y.stf)),
            ("Other funding (PFI, transition, stretch)", |y| pct(y.other)),
            ("System position", |y| pct(y.position)),
        ];
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|(name, f)| {
                let mut r = vec![name.to_string()];
                r.extend(v.years.iter().map(f));
                r
            })
            .collect();
        out.push_str(&grid(&ph, &rows));
    }

    if !ev.reconciliation.is_empty() {
        let agree = ev.reconciliation.iter().filter(|r| r.agrees).count();
        let _ = writeln!(
            out,
            "\nPublished figures reconciled: {agree} of {} agree within tolerance",
            ev.reconciliation.len()
        );
        let rh = [
            "figure",
            "year",
            "published",
            "modelled",
            "",
            "source / note",
        ];
        let rows: Vec<Vec<String>> = ev
            .reconciliation
            .iter()
            .map(|r| {
                let f = if r.measure.starts_with("pct_") {
                    pct
                } else {
                    money
                };
                vec![
                    format!("{} {}", r.measure, r.entity),
                    r.year.clone(),
                    f(r.published),
                    f(r.modelled),
                    if r.agrees {
                        "ok".into()
                    } else {
                        "DIFFERS".into()
                    },
                    if r.note.is_empty() {
                        r.source.clone()
                    } else {
                        format!("{} — {}", r.source, r.note)
                    },
                ]
            })
            .collect();
        out.push_str(&grid(&rh, &rows));
    }
}

fn write_simulation(out: &mut String, ev: &Evaluation, sim: &Simulation, case: &str) {
    let _ = writeln!(
        out,
        "\nMonte Carlo ({case}): remaining gap, {} runs, seed {}; {}",
        sim.runs, sim.seed, sim.distribution
    );
    let h = ["", "year", "P10", "P50", "P90", "mean", "plan value"];
    let mut rows = Vec::new();
    for e in &sim.entities {
        let name = ev.entity(&e.id).map_or(e.id.clone(), |x| x.name.clone());
        for y in e.years.iter().skip(1) {
            let q = &y.remaining_gap;
            rows.push(vec![
                name.clone(),
                y.year.clone(),
                money(q.p10),
                money(q.p50),
                money(q.p90),
                money(q.mean),
                money(q.deterministic),
            ]);
        }
    }
    out.push_str(&grid(&h, &rows));
}

fn write_comparison(out: &mut String, base: &Evaluation, sc: &Evaluation) {
    let mut headers = vec![String::new(), String::new()];
    headers.extend(base.years.iter().cloned());
    let mut rows = Vec::new();
    for e in base
        .entities
        .iter()
        .filter(|e| matches!(e.level, Level::System | Level::Body))
    {
        let Some(s) = sc.entity(&e.id) else { continue };
        for (name, f) in [
            (
                "do-nothing gap",
                (|r: &BridgeYear| r.do_nothing_gap) as fn(&BridgeYear) -> f64,
            ),
            ("remaining gap", |r: &BridgeYear| r.remaining_gap),
        ] {
            for (case, vals) in [
                ("plan", e.years.iter().map(f).collect::<Vec<_>>()),
                ("scenario", s.years.iter().map(f).collect()),
                (
                    "change",
                    s.years
                        .iter()
                        .zip(&e.years)
                        .map(|(a, b)| f(a) - f(b))
                        .collect(),
                ),
            ] {
                let mut r = vec![format!("{} {name}", e.name), case.to_string()];
                r.extend(vals.into_iter().map(money));
                rows.push(r);
            }
        }
    }
    let _ = writeln!(out, "\nPlan and scenario side by side");
    out.push_str(&grid(&headers, &rows));
    write_evaluation(out, sc);
}

fn write_alliance(out: &mut String, a: &Settlement) {
    let _ = writeln!(
        out,
        "\nAlliance risk/reward — {}: variance {} (planned − actual), shared {}, commissioner {}",
        a.name,
        money(a.variance),
        money(a.shared),
        money(a.commissioner)
    );
    let h = ["partner", "share", "unlimited", "settlement", "limited"];
    let rows: Vec<Vec<String>> = a
        .partners
        .iter()
        .map(|p| {
            vec![
                if p.name.is_empty() {
                    p.id.clone()
                } else {
                    p.name.clone()
                },
                pct(p.share),
                format!("{:.2}", p.unlimited),
                format!("{:.2}", p.settlement),
                if p.limited {
                    "yes".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&grid(&h, &rows));
}

// ---------------------------------------------------------------- CSV

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn csv_row(
    out: &mut String,
    section: &str,
    case: &str,
    entity: &str,
    level: &str,
    year: &str,
    measure: &str,
    value: f64,
) {
    // Six decimals: £1 on £m figures, 0.0001 percentage points on fractions; hides
    // floating-point noise such as 628.0000000000001.
    let value = (value * 1e6).round() / 1e6;
    let value = if value == 0.0 { 0.0 } else { value };
    let _ = writeln!(
        out,
        "{section},{case},{},{level},{year},{measure},{value}",
        csv_field(entity)
    );
}

fn csv_evaluation(
    out: &mut String,
    case: &str,
    ev: &Evaluation,
    sim: Option<&Simulation>,
    alliance: Option<&Settlement>,
) {
    // the £m measures: engine::MEASURES up to the first non-money one
    let money = crate::engine::MEASURES
        .iter()
        .position(|m| *m == "provider_cost_base")
        .unwrap_or(crate::engine::MEASURES.len());
    let measures = &crate::engine::MEASURES[..money];
    for e in &ev.entities {
        for y in &e.years {
            for m in measures {
                csv_row(
                    out,
                    "bridge",
                    case,
                    &e.id,
                    e.level.as_str(),
                    &y.year,
                    m,
                    y.get(m).unwrap_or(f64::NAN),
                );
            }
        }
    }
    for s in &ev.schemes {
        for (m, v) in [
            ("gross", s.gross),
            ("reinvestment", s.reinvestment),
            ("net", Some(s.net)),
            ("low", Some(s.low)),
            ("high", Some(s.high)),
        ] {
            if let Some(v) = v {
                csv_row(out, "scheme", case, &s.id, "scheme", "", m, v);
            }
        }
        for (t, v) in s.savings.iter().enumerate() {
            csv_row(
                out,
                "scheme",
                case,
                &s.id,
                "scheme",
                &ev.years[t],
                "saving",
                *v,
            );
        }
    }
    for v in &ev.percentages {
        for y in &v.years {
            for m in [
                "provider_cost_base",
                "pct_challenge",
                "pct_efficiencies",
                "pct_new_care_model",
                "pct_stf",
                "pct_other",
                "pct_position",
            ] {
                csv_row(
                    out,
                    "percent",
                    case,
                    &v.body,
                    "body",
                    &y.year,
                    m,
                    y.get(m).unwrap_or(f64::NAN),
                );
            }
        }
    }
    for r in &ev.reconciliation {
        let m = format!("{}:published", r.measure);
        csv_row(
            out,
            "published",
            case,
            &r.entity,
            "",
            &r.year,
            &m,
            r.published,
        );
        let m = format!("{}:modelled", r.measure);
        csv_row(
            out,
            "published",
            case,
            &r.entity,
            "",
            &r.year,
            &m,
            r.modelled,
        );
    }
    if let Some(sim) = sim {
        for e in &sim.entities {
            for y in &e.years {
                let q = &y.remaining_gap;
                for (m, v) in [
                    ("remaining_gap_p10", q.p10),
                    ("remaining_gap_p50", q.p50),
                    ("remaining_gap_p90", q.p90),
                    ("remaining_gap_mean", q.mean),
                ] {
                    csv_row(out, "simulation", case, &e.id, "", &y.year, m, v);
                }
            }
        }
    }
    if let Some(a) = alliance {
        csv_row(out, "alliance", case, "all", "", "", "variance", a.variance);
        csv_row(out, "alliance", case, "all", "", "", "shared", a.shared);
        csv_row(
            out,
            "alliance",
            case,
            "commissioner",
            "",
            "",
            "settlement",
            a.commissioner,
        );
        for p in &a.partners {
            csv_row(
                out,
                "alliance",
                case,
                &p.id,
                "partner",
                "",
                "settlement",
                p.settlement,
            );
        }
    }
}

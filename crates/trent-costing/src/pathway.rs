//! Alliance risk/reward on a pathway's cost from the lake, and patient choice.
//!
//! Why: an alliance contract shares the gain or loss on a pathway's budget among its
//! partners (`trent_finance::alliance`); the outturn — what the pathway actually cost for
//! the alliance's population — is in the lake. So is the part of it spent at providers
//! outside the alliance: patients choose where to be treated, and that activity is paid
//! from the alliance's budget all the same, so it counts in the actual cost and the
//! partners carry its risk. This module measures both and settles.
//!
//! Method: the pathway is one or more activity selections (`[[alliance.pathway]]`, each
//! with its population by `place`); its cost in the outturn year is the `cost_gbp` of the
//! rows in any of them, by provider, at full scale (÷ the lake's scale), in £m. The
//! planned cost is the file's `planned_cost`, or the pathway's cost in `baseline_year`
//! (`previous` = the year before the outturn year) × (1 + `planned_change`). Activity at
//! providers not in the alliance's `providers` list is reported as patient choice.

use std::collections::BTreeMap;

use serde::Serialize;
use trent_finance::activity::{PathwayAlliance, PlannedCost};
use trent_finance::alliance::{Alliance, Settlement};

use crate::select::activity_condition;
use crate::table::{Table, m, pct, signed_m};
use crate::{CostingError, FinancialYear, LakeView, OutputFormat, floats, strings};

/// The alliance shipped as the default of `trent finance alliance`: the Mid-Nottinghamshire
/// urgent and emergency care pathway (illustrative terms, as in the bundled plan).
pub const BUNDLED_ALLIANCE: &str = include_str!("../data/mid-notts-urgent-care.toml");

/// Label of [`BUNDLED_ALLIANCE`] in messages.
pub const BUNDLED_ALLIANCE_LABEL: &str = "crates/trent-costing/data/mid-notts-urgent-care.toml";

/// An alliance file: a plain settlement (planned and actual cost given) or a pathway
/// alliance (actual cost from the lake).
#[derive(Debug, Clone, PartialEq)]
pub enum AllianceFile {
    /// `[alliance]` with `planned_cost` and `actual_cost`.
    Plain(Alliance),
    /// `[alliance]` with `[[alliance.pathway]]`.
    Pathway(PathwayAlliance),
}

/// Read alliance text: with `[[alliance.pathway]]` it is a pathway alliance.
pub fn parse_alliance(text: &str, file: &str) -> Result<AllianceFile, CostingError> {
    let has_pathway = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("alliance").and_then(|a| a.get("pathway")).cloned())
        .is_some();
    Ok(if has_pathway {
        AllianceFile::Pathway(PathwayAlliance::from_toml_str(text, file)?)
    } else {
        AllianceFile::Plain(Alliance::from_toml_str(text, file)?)
    })
}

/// Cost of one provider within the pathway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderCost {
    /// Provider code.
    pub provider: String,
    /// Its name.
    pub name: String,
    /// Cost in the outturn year, £m (full scale).
    pub cost_m: f64,
    /// True if an alliance provider; false = patient choice.
    pub in_alliance: bool,
}

/// The pathway's outturn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outturn {
    /// The outturn year.
    pub year: FinancialYear,
    /// The pathway, as text.
    pub pathway: Vec<String>,
    /// How the planned cost was set.
    pub planned_basis: String,
    /// Planned cost, £m.
    pub planned_m: f64,
    /// Actual cost, £m.
    pub actual_m: f64,
    /// Of which at alliance providers, £m.
    pub in_alliance_m: f64,
    /// Of which at other providers (patient choice, paid from the alliance budget), £m.
    pub patient_choice_m: f64,
    /// By provider, largest first.
    pub by_provider: Vec<ProviderCost>,
    /// How figures were scaled.
    pub scale_note: String,
}

/// An alliance settled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllianceReport {
    /// The pathway outturn (None for a plain alliance file).
    pub outturn: Option<Outturn>,
    /// The settlement.
    pub settlement: Settlement,
}

/// The pathway's cost by provider in a year, £ at lake scale.
pub async fn cost_by_provider(
    view: &LakeView,
    a: &PathwayAlliance,
    year: &FinancialYear,
) -> Result<BTreeMap<String, f64>, CostingError> {
    let mut ors = Vec::new();
    for sel in &a.pathway {
        ors.push(format!("({})", activity_condition(sel, &view.places, "a")?));
    }
    let sql = format!(
        "SELECT a.provider_code, SUM(a.cost_gbp) FROM activity a WHERE {} AND ({}) GROUP BY 1",
        year.ts_sql("a.start_ts"),
        ors.join(" OR ")
    );
    let mut out = BTreeMap::new();
    for b in view.query(&sql).await? {
        let p = strings(&b, 0)?;
        let c = floats(&b, 1)?;
        for i in 0..b.num_rows() {
            *out.entry(p[i].clone().unwrap_or_default()).or_insert(0.0) += c[i];
        }
    }
    Ok(out)
}

/// Settle a pathway alliance on the lake: outturn year `year` (default: the file's, else
/// the last complete year).
pub async fn settle_pathway(
    view: &LakeView,
    a: &PathwayAlliance,
    year: Option<&str>,
) -> Result<AllianceReport, CostingError> {
    let year = view.year(year.or(a.year.as_deref()))?;
    let to_m = |x: f64| x / view.scale / 1e6;
    let by = cost_by_provider(view, a, &year).await?;
    let (planned_m, planned_basis) = match a.planned() {
        PlannedCost::Fixed(p) => (p, "planned_cost in the file".to_string()),
        PlannedCost::FromBaseline { change } => {
            let label = a.baseline_year.as_deref().unwrap_or("previous");
            let base = if label == "previous" {
                let i = view
                    .years
                    .iter()
                    .position(|y| y.label == year.label)
                    .unwrap_or(0);
                if i == 0 {
                    return Err(CostingError::Invalid(format!(
                        "alliance.baseline_year = \"previous\": the lake has no complete year before {}",
                        year.label
                    )));
                }
                view.years[i - 1].clone()
            } else {
                view.year(Some(label))?
            };
            let cost: f64 = cost_by_provider(view, a, &base).await?.values().sum();
            (
                to_m(cost) * (1.0 + change),
                format!(
                    "the pathway's cost in {} ({}) × (1 {} {})",
                    base.label,
                    m(to_m(cost)),
                    if change < 0.0 { "−" } else { "+" },
                    pct(change.abs())
                ),
            )
        }
    };
    let mut by_provider: Vec<ProviderCost> = by
        .iter()
        .map(|(p, c)| ProviderCost {
            provider: p.clone(),
            name: view.places.name(p).to_string(),
            cost_m: to_m(*c),
            in_alliance: a.providers.is_empty() || a.providers.contains(p),
        })
        .collect();
    by_provider.sort_by(|x, y| y.cost_m.total_cmp(&x.cost_m));
    let actual_m: f64 = by_provider.iter().map(|p| p.cost_m).sum();
    let in_alliance_m: f64 = by_provider
        .iter()
        .filter(|p| p.in_alliance)
        .map(|p| p.cost_m)
        .sum();
    let settlement = a.settle_with(planned_m, actual_m);
    settlement.validate("alliance")?;
    Ok(AllianceReport {
        outturn: Some(Outturn {
            year,
            pathway: a.pathway.iter().map(|s| s.describe()).collect(),
            planned_basis,
            planned_m,
            actual_m,
            in_alliance_m,
            patient_choice_m: actual_m - in_alliance_m,
            by_provider,
            scale_note: view.scale_note(),
        }),
        settlement: settlement.settle(),
    })
}

impl AllianceReport {
    /// Render as text, JSON or CSV (the partners' settlements).
    pub fn render(&self, format: OutputFormat) -> String {
        let s = &self.settlement;
        let mut t = Table::new(&["partner", "name", "share", "settlement £m", "limited"]);
        for p in &s.partners {
            t.row(vec![
                p.id.clone(),
                p.name.clone(),
                format!("{:.3}", p.share),
                format!("{:+.3}", p.settlement),
                if p.limited { "yes" } else { "" }.into(),
            ]);
        }
        t.row(vec![
            "commissioner".into(),
            "(keeps gain above the cap, bears loss beyond the collar)".into(),
            String::new(),
            format!("{:+.3}", s.commissioner),
            String::new(),
        ]);
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Csv => t.csv(),
            OutputFormat::Table => {
                let mut out = format!("Alliance risk/reward — {}\n", s.name);
                if let Some(o) = &self.outturn {
                    out.push_str(&format!(
                        "{}\nOutturn year {}; pathway:\n",
                        o.scale_note, o.year.label
                    ));
                    for p in &o.pathway {
                        out.push_str(&format!("  {p}\n"));
                    }
                    out.push_str(&format!(
                        "Planned £{}m: {}\nActual £{}m: at alliance providers £{}m, patient choice (other providers, paid from the alliance budget) £{}m\n\n",
                        m(o.planned_m),
                        o.planned_basis,
                        m(o.actual_m),
                        m(o.in_alliance_m),
                        m(o.patient_choice_m)
                    ));
                    let mut pt = Table::new(&["provider", "name", "cost £m", "share", "paid as"]);
                    for p in &o.by_provider {
                        pt.row(vec![
                            p.provider.clone(),
                            p.name.clone(),
                            m(p.cost_m),
                            pct(if o.actual_m > 0.0 {
                                p.cost_m / o.actual_m
                            } else {
                                0.0
                            }),
                            if p.in_alliance {
                                "alliance"
                            } else {
                                "patient choice"
                            }
                            .into(),
                        ]);
                    }
                    out.push_str(&pt.text());
                    out.push('\n');
                }
                out.push_str(&format!(
                    "Variance (planned − actual) {}; shared within the cap and collar {}\n",
                    signed_m(s.variance),
                    signed_m(s.shared)
                ));
                out.push_str(&t.text());
                out
            }
        }
    }
}

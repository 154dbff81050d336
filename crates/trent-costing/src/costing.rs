//! Bottom-up costing: a scheme stated as a change in activity ("30% fewer emergency
//! admissions in Greater Nottingham", "200 fewer occupied beds") costed from the lake's
//! activity and unit costs, beside the plan's top-down value.
//!
//! Why: a plan's scheme values were estimated top-down; the lake holds the activity the
//! scheme is meant to change, each row already costed from the national unit costs in the
//! area file (`activity.cost_gbp`). Costing the stated change against one year of that
//! activity says whether the top-down figure is plausible (a ratio near 1) or needs more
//! (or less) change than the plan says.
//!
//! Method, per activity scheme (type [`ActivityScheme`], plan format `[[activity_schemes]]`):
//! 1. the baseline is the selected activity in one financial year, measured in the
//!    scheme's unit — contacts, bed days (`los_days` of the spells) or referrals — and its
//!    cost (`cost_gbp` of the rows; for referrals the first outpatient attendances they led
//!    to), scaled to the full population (÷ the lake's scale);
//! 2. the change is a fraction of the baseline (`reduction`) or a number of units
//!    (`units`, or `beds` × 365 bed days); its gross saving is that fraction of the
//!    baseline cost — i.e. at the baseline's **average** cost per unit
//!    ([`ActivityScheme::bottom_up`]);
//! 3. activity schemes naming the same plan scheme are added and compared with its gross
//!    (top-down) value.
//!
//! Average cost overstates what removing activity saves when costs are fixed in the
//! short run (a ward's staff and estate); the plan's own bed unit cost (£75k a bed-year)
//! is a marginal cost. The comparison shows the gap rather than hiding it.

use std::collections::BTreeSet;

use serde::Serialize;
use trent_finance::Plan;
use trent_finance::activity::{
    ActivityBaseline, ActivityMeasure, ActivityScheme, ActivitySchemesFile, BottomUp,
};
use trent_finance::plan::{scheme_gross, scheme_net};

use crate::select::{activity_condition, population_condition};
use crate::table::{Table, m, n0, pct};
use crate::{CostingError, FinancialYear, LakeView, OutputFormat, floats, in_list};

/// The activity schemes shipped for the bundled Nottinghamshire 2016 plan (the issue's
/// examples), used when neither the plan nor `--schemes` gives any.
pub const BUNDLED_SCHEMES: &str = include_str!("../data/nottinghamshire-2016-activity.toml");

/// Label of [`BUNDLED_SCHEMES`] in messages.
pub const BUNDLED_SCHEMES_LABEL: &str =
    "crates/trent-costing/data/nottinghamshire-2016-activity.toml";

/// The schemes to cost: the plan's own `[[activity_schemes]]`, else those of `file`
/// (text, label), else the bundled ones. References to plan schemes are checked.
pub fn schemes_for(
    plan: &Plan,
    file: Option<(&str, &str)>,
) -> Result<Vec<ActivityScheme>, CostingError> {
    if file.is_none() && !plan.file().activity_schemes.is_empty() {
        return Ok(plan.file().activity_schemes.clone());
    }
    let (text, label) = file.unwrap_or((BUNDLED_SCHEMES, BUNDLED_SCHEMES_LABEL));
    let ids: BTreeSet<&str> = plan.file().schemes.iter().map(|s| s.id.as_str()).collect();
    Ok(ActivitySchemesFile::from_toml_str(text, label, Some(&ids))?.activity_schemes)
}

/// One activity scheme costed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeCosting {
    /// Activity scheme id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The plan scheme it checks.
    pub plan_scheme: Option<String>,
    /// The selection, as text.
    pub selection: String,
    /// Unit counted.
    pub measure: String,
    /// The change as stated (`-30%`, `200 beds`, `1500 units`).
    pub change: String,
    /// Units in the lake in the year (lake scale).
    pub lake_units: f64,
    /// Their cost in the lake, £ (lake scale).
    pub lake_cost_gbp: f64,
    /// Baseline units a year at full scale.
    pub baseline_units: f64,
    /// Baseline cost a year at full scale, £m.
    pub baseline_cost_m: f64,
    /// The bottom-up result (full scale).
    pub bottom_up: BottomUp,
}

/// A plan scheme: its top-down value against the bottom-up total of its activity schemes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSchemeCheck {
    /// Plan scheme id.
    pub scheme: String,
    /// Its name.
    pub name: String,
    /// Its gross full-year saving in the plan, £m (the net when the plan gives only a net).
    pub top_down_gross_m: f64,
    /// Its net saving in the plan, £m.
    pub top_down_net_m: f64,
    /// Sum of the bottom-up gross of its activity schemes, £m.
    pub bottom_up_gross_m: f64,
    /// bottom-up ÷ top-down gross.
    pub ratio: f64,
    /// The activity schemes counted.
    pub activity_schemes: Vec<String>,
}

/// The costing report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostingReport {
    /// The plan's name.
    pub plan: String,
    /// The year costed.
    pub year: FinancialYear,
    /// The lake's scale.
    pub scale: f64,
    /// How figures were scaled.
    pub scale_note: String,
    /// Each activity scheme.
    pub schemes: Vec<SchemeCosting>,
    /// Each plan scheme checked.
    pub by_plan_scheme: Vec<PlanSchemeCheck>,
}

/// Measure a scheme's baseline in the lake: (units, cost £), lake scale.
pub async fn measure(
    view: &LakeView,
    scheme: &ActivityScheme,
    year: &FinancialYear,
) -> Result<(f64, f64), CostingError> {
    let sel = &scheme.select;
    let sql = match scheme.measure {
        ActivityMeasure::Contacts => format!(
            "SELECT CAST(COUNT(*) AS DOUBLE), SUM(a.cost_gbp) FROM activity a WHERE {} AND {}",
            year.ts_sql("a.start_ts"),
            activity_condition(sel, &view.places, "a")?
        ),
        ActivityMeasure::BedDays => format!(
            "SELECT CAST(SUM(a.los_days) AS DOUBLE), SUM(a.cost_gbp) FROM activity a WHERE a.los_days IS NOT NULL AND {} AND {}",
            year.ts_sql("a.start_ts"),
            activity_condition(sel, &view.places, "a")?
        ),
        ActivityMeasure::Referrals => {
            for (k, l) in sel.lists() {
                if !l.is_empty() && k != "specialty" && k != "place" {
                    return Err(CostingError::Invalid(format!(
                        "activity_schemes[{}].select.{k}: a referral scheme selects by place and specialty only",
                        scheme.id
                    )));
                }
            }
            let mut cond = vec![year.date_sql("r.referral_date")];
            if !sel.specialty.is_empty() {
                cond.push(in_list("r.specialty", &sel.specialty));
            }
            if let Some(c) = population_condition(&sel.place, &view.places, "r.person_id")? {
                cond.push(c);
            }
            format!(
                "WITH r AS (SELECT r.referral_id FROM referral r WHERE {}), \
                 c AS (SELECT SUM(a.cost_gbp) AS cost FROM activity a JOIN r ON a.referral_id = r.referral_id WHERE a.setting = 'op') \
                 SELECT CAST((SELECT COUNT(*) FROM r) AS DOUBLE), (SELECT cost FROM c)",
                cond.join(" AND ")
            )
        }
    };
    let b = view.query(&sql).await?;
    let mut units = 0.0;
    let mut cost = 0.0;
    for batch in &b {
        units += floats(batch, 0)?.iter().sum::<f64>();
        cost += floats(batch, 1)?.iter().sum::<f64>();
    }
    Ok((units, cost))
}

/// Cost every activity scheme against `year` of the lake and compare with `plan`.
pub async fn cost_schemes(
    view: &LakeView,
    plan: &Plan,
    schemes: &[ActivityScheme],
    year: &FinancialYear,
) -> Result<CostingReport, CostingError> {
    let mut out = Vec::new();
    for s in schemes {
        let (lake_units, lake_cost) = measure(view, s, year).await?;
        let baseline = ActivityBaseline {
            units: lake_units / view.scale,
            cost_gbp: lake_cost / view.scale,
        };
        let change = match (s.reduction, s.units, s.beds) {
            (Some(r), _, _) => format!("-{}", pct(r)),
            (_, Some(u), _) => format!("-{u} {}", s.measure.as_str()),
            (_, _, Some(b)) => format!("-{b} beds"),
            _ => String::new(),
        };
        out.push(SchemeCosting {
            id: s.id.clone(),
            name: s.name.clone(),
            plan_scheme: s.scheme.clone(),
            selection: match (s.measure, s.select.describe().as_str()) {
                (ActivityMeasure::Referrals, "all activity") => "all referrals".into(),
                (_, d) => d.to_string(),
            },
            measure: s.measure.as_str().into(),
            change,
            lake_units,
            lake_cost_gbp: lake_cost,
            baseline_units: baseline.units,
            baseline_cost_m: baseline.cost_gbp / 1e6,
            bottom_up: s.bottom_up(&baseline),
        });
    }
    let mut by_plan_scheme = Vec::new();
    for ps in &plan.file().schemes {
        let mine: Vec<&SchemeCosting> = out
            .iter()
            .filter(|c| c.plan_scheme.as_deref() == Some(ps.id.as_str()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let top = scheme_gross(ps).unwrap_or_else(|| scheme_net(ps));
        let bottom: f64 = mine.iter().map(|c| c.bottom_up.gross_m).sum();
        by_plan_scheme.push(PlanSchemeCheck {
            scheme: ps.id.clone(),
            name: ps.name.clone(),
            top_down_gross_m: top,
            top_down_net_m: scheme_net(ps),
            bottom_up_gross_m: bottom,
            ratio: if top.abs() > 0.0 { bottom / top } else { 0.0 },
            activity_schemes: mine.iter().map(|c| c.id.clone()).collect(),
        });
    }
    Ok(CostingReport {
        plan: plan.file().plan.name.clone(),
        year: year.clone(),
        scale: view.scale,
        scale_note: view.scale_note(),
        schemes: out,
        by_plan_scheme,
    })
}

impl CostingReport {
    /// Render as text, JSON or CSV (the per-scheme table).
    pub fn render(&self, format: OutputFormat) -> String {
        let mut t = Table::new(&[
            "activity scheme",
            "checks",
            "measure",
            "baseline units/yr",
            "baseline £m/yr",
            "change",
            "units removed",
            "£ per unit",
            "bottom-up gross £m",
        ]);
        for s in &self.schemes {
            t.row(vec![
                s.id.clone(),
                s.plan_scheme.clone().unwrap_or_else(|| "-".into()),
                s.measure.clone(),
                n0(s.baseline_units),
                m(s.baseline_cost_m),
                s.change.clone(),
                n0(s.bottom_up.units_removed),
                n0(s.bottom_up.unit_cost_gbp),
                m(s.bottom_up.gross_m),
            ]);
        }
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Csv => t.csv(),
            OutputFormat::Table => {
                let mut out = format!(
                    "Bottom-up costing of activity schemes — {}, year {}\n{}\n\n",
                    self.plan, self.year.label, self.scale_note
                );
                for s in &self.schemes {
                    out.push_str(&format!("  {}: {} [{}]\n", s.id, s.name, s.selection));
                }
                out.push('\n');
                out.push_str(&t.text());
                let mut c = Table::new(&[
                    "plan scheme",
                    "top-down gross £m",
                    "bottom-up gross £m",
                    "bottom-up / top-down",
                    "from",
                ]);
                for p in &self.by_plan_scheme {
                    c.row(vec![
                        p.scheme.clone(),
                        m(p.top_down_gross_m),
                        m(p.bottom_up_gross_m),
                        format!("{:.2}", p.ratio),
                        p.activity_schemes.join(", "),
                    ]);
                }
                out.push_str(
                    "\nTop-down (the plan) against bottom-up (the lake), full-year gross:\n",
                );
                out.push_str(&c.text());
                out.push_str(
                    "\nBottom-up = the change × the baseline's average cost per unit (activity.cost_gbp from the area's national unit costs).\n",
                );
                out
            }
        }
    }
}

//! The plan as a data file: its schema (`PlanFile`, one struct per TOML table, every
//! table `deny_unknown_fields`), whole-plan validation, and scenarios as overlays.
//!
//! Why a data file and not code: a system's finance team changes growth assumptions,
//! efficiency rates and scheme values every month, and must be able to show where each
//! number came from. So every figure lives in `plans/<name>.toml` beside a comment naming
//! the plan line it comes from, and the engine holds no figure of its own.
//!
//! Why validate whole: a plan that is half right gives a gap that looks plausible and is
//! wrong. [`Plan`] can only be obtained through validation ([`Plan::from_toml_str`],
//! [`Plan::from_file`], [`Plan::with_scenario`]); the engine accepts nothing else.
//!
//! Scenario overlay semantics (documented for analysts in `docs/plan-format.md`): a
//! scenario file is a `[scenario]` table (name, description) plus any plan keys. Tables
//! merge key by key; a scalar or a plain array replaces the plan's value; an array of
//! tables whose elements carry an `id` (sectors, organisations, schemes, funding, alliance
//! partners, activity schemes) merges element by element on `id` — a known id is merged
//! into the plan's element, a new id is appended, and `remove = true` deletes the element.
//! The merged plan is then validated exactly like a plan file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::activity::{ActivityScheme, validate_activity_schemes};
use crate::alliance::Alliance;
use crate::error::FinanceError;

/// Tolerance for shares summing to one and for a plan value lying inside its range.
pub const SHARE_TOLERANCE: f64 = 1e-6;

/// The whole plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Name, source and years.
    pub plan: PlanMeta,
    /// The funding bodies by id (`nhs`, `la`): allocation growth, non-recurrent income,
    /// control totals.
    pub bodies: BTreeMap<String, Body>,
    /// Sectors (acute, community, …, social care, public health) and their growth drivers.
    pub sectors: Vec<Sector>,
    /// Organisations (or organisation × sector lines) with their 2016/17-style baseline.
    pub organisations: Vec<Organisation>,
    /// Transformation schemes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<Scheme>,
    /// Funding and other bridge lines (STF, PFI support, transition funding, stretch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub funding: Vec<Funding>,
    /// Figures the plan publishes, reconciled against the engine's output in the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
    /// An alliance risk/reward agreement settled alongside the plan (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alliance: Option<Alliance>,
    /// Schemes stated as a change in activity, costed bottom-up from the data lake
    /// (`trent finance costing`); each may name the `[[schemes]]` entry it checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity_schemes: Vec<ActivityScheme>,
}

/// `[plan]`: what the plan is and its years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanMeta {
    /// Display name.
    pub name: String,
    /// Where the figures come from.
    #[serde(default)]
    pub source: String,
    /// Unit of every money amount (display only), e.g. `£m`.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Financial years; the first is the baseline year, the rest are forecast years.
    pub years: Vec<String>,
}

fn default_unit() -> String {
    "£m".to_string()
}

/// `[bodies.<id>]`: a funding body (the NHS, the local authorities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Display name.
    pub name: String,
    /// Growth of the recurrent allocation (or, for councils, funding) in each forecast year,
    /// as a fraction (0.02 = 2%). The baseline allocation is the sum of the body's
    /// organisations' `baseline_income` less `non_recurrent_income[0]`.
    pub allocation_growth: Vec<f64>,
    /// Non-recurrent income in each year including the baseline year (£m); default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_recurrent_income: Option<Vec<f64>>,
    /// Required surplus (control total) in each forecast year, £m; negative = permitted
    /// deficit. Used only by the percentage view's "challenge"; default breakeven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_total: Option<Vec<f64>>,
}

/// `[[sectors]]`: a sector and its cost growth drivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sector {
    /// Identifier used by organisations.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The funding body (a key of `[bodies]`).
    pub body: String,
    /// Whether the sector's cost counts in its body's provider cost base (the
    /// denominator of the percentage view).
    #[serde(default)]
    pub provider: bool,
    /// Demographic growth per forecast year (fraction).
    pub demographic: Vec<f64>,
    /// Non-demographic growth (acuity, technology, expectations) per forecast year.
    pub non_demographic: Vec<f64>,
    /// Cost inflation per forecast year.
    pub inflation: Vec<f64>,
}

/// `[[organisations]]`: an organisation's (or an organisation's sector line's) baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// Identifier used by schemes and funding lines.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its sector (a sector id).
    pub sector: String,
    /// Cost in the baseline year, £m.
    pub baseline_cost: f64,
    /// Income in the baseline year, £m (its part of the body's allocation).
    pub baseline_income: f64,
    /// Efficiency (CIP, running-cost reduction, council savings) delivered in each
    /// forecast year as a fraction of that year's do-nothing cost; recurrent. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<Vec<f64>>,
}

/// Which row of the percentage view a scheme's saving is reported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeRow {
    /// "Net savings from new model of care" (the default).
    #[default]
    NewCareModel,
    /// "Organisational efficiencies" (e.g. the plan's estates saving, footnote 4).
    Efficiencies,
}

/// `[[schemes]]`: a transformation scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Gross full-year saving, £m (or give `units` and `unit_cost`, or `net` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross: Option<f64>,
    /// Units of activity or capacity removed (with `unit_cost`: gross = units × unit_cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<f64>,
    /// Cost per unit, £m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_cost: Option<f64>,
    /// Reinvestment (reprovision) needed to deliver the gross saving, £m; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinvestment: Option<f64>,
    /// Net full-year saving when the plan gives no gross / reinvestment split, £m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<f64>,
    /// Low end of the net saving's range, £m (with `high`; the net is the mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// High end of the net saving's range, £m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Fraction of the full-year net saving delivered in each forecast year (0..=1).
    pub ramp: Vec<f64>,
    /// Row of the percentage view it is reported in.
    #[serde(default)]
    pub row: BridgeRow,
    /// The organisations whose cost the saving comes out of, with shares summing to 1.
    pub falls_on: BTreeMap<String, f64>,
    /// Where the figure comes from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// The kind of a funding (or other) bridge line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingKind {
    /// Sustainability and transformation funding.
    Stf,
    /// Support for a private finance initiative (PFI) scheme.
    Pfi,
    /// Transition (transformation) funding.
    Transition,
    /// Stretch savings not yet identified.
    Stretch,
    /// Anything else.
    Other,
}

impl FundingKind {
    /// All kinds, in report order.
    pub const ALL: [FundingKind; 5] = [
        FundingKind::Stf,
        FundingKind::Pfi,
        FundingKind::Transition,
        FundingKind::Stretch,
        FundingKind::Other,
    ];

    /// The snake_case name used in files and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            FundingKind::Stf => "stf",
            FundingKind::Pfi => "pfi",
            FundingKind::Transition => "transition",
            FundingKind::Stretch => "stretch",
            FundingKind::Other => "other",
        }
    }
}

/// `[[funding]]`: a funding line or other non-scheme bridge item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Funding {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its kind (the bridge line it is reported in).
    pub kind: FundingKind,
    /// Amount in each forecast year, £m (a level, not a cumulative increment).
    pub amounts: Vec<f64>,
    /// The organisations it falls on, with shares summing to 1.
    pub falls_on: BTreeMap<String, f64>,
    /// Where the figure comes from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// `[[published]]`: a figure the plan states, to reconcile against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// A measure name accepted by [`crate::Evaluation::figure`].
    pub measure: String,
    /// `system`, a body, sector, organisation or (for scheme measures) scheme id.
    pub entity: String,
    /// A plan year.
    pub year: String,
    /// The value as published (£m, or a fraction for `pct_*` measures).
    pub value: f64,
    /// Accepted absolute difference; default 0.5 (£m) or 0.0005 (percentages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Where the plan states it.
    pub source: String,
    /// Known inconsistency or remark.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A validated plan: the only input the engine accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    file: PlanFile,
    label: String,
}

/// A scenario: a validated plan produced by overlaying a scenario file on a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `[scenario] name`.
    pub name: String,
    /// `[scenario] description`.
    pub description: String,
    /// The plan with the overlay applied.
    pub plan: Plan,
}

fn read(path: &Path) -> Result<String, FinanceError> {
    std::fs::read_to_string(path).map_err(|e| FinanceError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

impl Plan {
    /// Read and validate a plan file.
    pub fn load(path: &Path) -> Result<Plan, FinanceError> {
        let text = read(path)?;
        Plan::from_toml_str(&text, &path.display().to_string())
    }

    /// Parse and validate plan text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Plan, FinanceError> {
        let parsed: PlanFile = toml::from_str(text).map_err(|e| FinanceError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Plan::from_file(parsed, file)
    }

    /// Validate an in-memory plan; `label` names it in errors.
    pub fn from_file(file: PlanFile, label: &str) -> Result<Plan, FinanceError> {
        validate(&file, label)?;
        Ok(Plan {
            file,
            label: label.to_string(),
        })
    }

    /// The plan's data.
    pub fn file(&self) -> &PlanFile {
        &self.file
    }

    /// The name errors and reports use for the plan (its path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A copy changed by `f` and validated again.
    pub fn modified(&self, f: impl FnOnce(&mut PlanFile)) -> Result<Plan, FinanceError> {
        let mut file = self.file.clone();
        f(&mut file);
        Plan::from_file(file, &self.label)
    }

    /// Overlay the scenario file at `path` on this plan.
    pub fn with_scenario(&self, path: &Path) -> Result<Scenario, FinanceError> {
        let text = read(path)?;
        self.with_scenario_str(&text, &path.display().to_string())
    }

    /// Overlay scenario text on this plan; `file` names the scenario in errors.
    pub fn with_scenario_str(&self, text: &str, file: &str) -> Result<Scenario, FinanceError> {
        let parse_err = |message: String| FinanceError::Parse {
            file: file.to_string(),
            message,
        };
        let mut over: toml::Table =
            toml::from_str(text).map_err(|e| parse_err(e.to_string().trim_end().to_string()))?;
        let meta = over.remove("scenario");
        let (name, description) = scenario_meta(meta, file)?;
        let mut base = toml::Table::try_from(&self.file).map_err(|e| parse_err(e.to_string()))?;
        merge_table(&mut base, over, "", file)?;
        let label = format!("{} + {}", self.label, file);
        let merged: PlanFile =
            base.try_into()
                .map_err(|e: toml::de::Error| FinanceError::Parse {
                    file: label.clone(),
                    message: e.to_string().trim_end().to_string(),
                })?;
        let plan = Plan::from_file(merged, &label)?;
        Ok(Scenario {
            name,
            description,
            plan,
        })
    }

    /// Number of years including the baseline year.
    pub fn n_years(&self) -> usize {
        self.file.plan.years.len()
    }
}

fn scenario_meta(meta: Option<toml::Value>, file: &str) -> Result<(String, String), FinanceError> {
    let Some(meta) = meta else {
        return Err(FinanceError::invalid(
            file,
            "scenario",
            "(missing)",
            "a scenario file needs a [scenario] table with a name",
        ));
    };
    let toml::Value::Table(t) = meta else {
        return Err(FinanceError::invalid(
            file,
            "scenario",
            meta,
            "must be a table",
        ));
    };
    let mut name = None;
    let mut description = String::new();
    for (k, v) in t {
        match (k.as_str(), v) {
            ("name", toml::Value::String(s)) => name = Some(s),
            ("description", toml::Value::String(s)) => description = s,
            (k, v) => {
                return Err(FinanceError::invalid(
                    file,
                    format!("scenario.{k}"),
                    v,
                    "unknown key; [scenario] takes name and description (strings)",
                ));
            }
        }
    }
    let name = name.ok_or_else(|| {
        FinanceError::invalid(
            file,
            "scenario.name",
            "(missing)",
            "a scenario needs a name",
        )
    })?;
    Ok((name, description))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_id_array(a: &[toml::Value]) -> bool {
    !a.is_empty()
        && a.iter().all(|v| {
            v.as_table()
                .is_some_and(|t| t.get("id").is_some_and(|i| i.is_str()))
        })
}

fn merge_table(
    base: &mut toml::Table,
    over: toml::Table,
    path: &str,
    file: &str,
) -> Result<(), FinanceError> {
    for (key, value) in over {
        let here = join(path, &key);
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_table(b, o, &here, file)?,
            (Some(toml::Value::Array(b)), toml::Value::Array(o)) if is_id_array(b) => {
                merge_id_array(b, o, &here, file)?
            }
            (_, value) => {
                if let toml::Value::Array(items) = &value {
                    // A new array of tables must still not carry `remove`.
                    for (i, item) in items.iter().enumerate() {
                        if item.as_table().is_some_and(|t| t.contains_key("remove")) {
                            return Err(FinanceError::invalid(
                                file,
                                format!("{here}[{i}].remove"),
                                true,
                                "nothing to remove: the plan has no such list",
                            ));
                        }
                    }
                }
                base.insert(key, value);
            }
        }
    }
    Ok(())
}

fn merge_id_array(
    base: &mut Vec<toml::Value>,
    over: Vec<toml::Value>,
    path: &str,
    file: &str,
) -> Result<(), FinanceError> {
    for (i, item) in over.into_iter().enumerate() {
        let toml::Value::Table(mut t) = item else {
            return Err(FinanceError::invalid(
                file,
                format!("{path}[{i}]"),
                item,
                "elements of this list are tables with an id",
            ));
        };
        let Some(id) = t.get("id").and_then(|v| v.as_str()).map(str::to_string) else {
            return Err(FinanceError::invalid(
                file,
                format!("{path}[{i}].id"),
                "(missing)",
                "an overlay element needs the id of the element it changes or adds",
            ));
        };
        let key = format!("{path}[{id}]");
        let remove = match t.remove("remove") {
            None => false,
            Some(toml::Value::Boolean(b)) => b,
            Some(v) => {
                return Err(FinanceError::invalid(
                    file,
                    format!("{key}.remove"),
                    v,
                    "must be true or false",
                ));
            }
        };
        let pos = base
            .iter()
            .position(|v| v.get("id").and_then(|x| x.as_str()) == Some(id.as_str()));
        match (pos, remove) {
            (Some(p), true) => {
                base.remove(p);
            }
            (None, true) => {
                return Err(FinanceError::invalid(
                    file,
                    format!("{key}.remove"),
                    true,
                    "no element with this id to remove",
                ));
            }
            (Some(p), false) => {
                if let toml::Value::Table(b) = &mut base[p] {
                    merge_table(b, t, &key, file)?;
                }
            }
            (None, false) => base.push(toml::Value::Table(t)),
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ validation

struct Check<'a> {
    file: &'a str,
    n_forecast: usize,
    years: &'a [String],
}

impl Check<'_> {
    fn err(
        &self,
        key: impl Into<String>,
        value: impl std::fmt::Debug,
        problem: impl Into<String>,
    ) -> FinanceError {
        FinanceError::invalid(self.file, key, value, problem)
    }

    fn finite(&self, key: &str, v: f64) -> Result<(), FinanceError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.err(key, v, "must be a finite number"))
        }
    }

    fn non_negative(&self, key: &str, v: f64) -> Result<(), FinanceError> {
        self.finite(key, v)?;
        if v < 0.0 {
            return Err(self.err(key, v, "must not be negative"));
        }
        Ok(())
    }

    /// One value per forecast year.
    fn per_forecast_year(&self, key: &str, v: &[f64]) -> Result<(), FinanceError> {
        self.per_year(key, v, self.n_forecast, &self.years[1..])
    }

    /// One value per year including the baseline year.
    fn per_all_years(&self, key: &str, v: &[f64]) -> Result<(), FinanceError> {
        self.per_year(key, v, self.years.len(), self.years)
    }

    fn per_year(
        &self,
        key: &str,
        v: &[f64],
        n: usize,
        years: &[String],
    ) -> Result<(), FinanceError> {
        if v.len() != n {
            let missing = if v.len() < n {
                format!("; missing {}", years[v.len()..].join(", "))
            } else {
                String::new()
            };
            return Err(self.err(
                key,
                v,
                format!(
                    "expected {n} values, one for each of {}..{}, found {}{missing}",
                    years[0],
                    years[n - 1],
                    v.len()
                ),
            ));
        }
        for (i, x) in v.iter().enumerate() {
            self.finite(&format!("{key}[{i}] ({})", years[i]), *x)?;
        }
        Ok(())
    }

    fn rates(&self, key: &str, v: &[f64]) -> Result<(), FinanceError> {
        self.per_forecast_year(key, v)?;
        for (i, x) in v.iter().enumerate() {
            if *x <= -1.0 {
                return Err(self.err(
                    format!("{key}[{i}] ({})", self.years[i + 1]),
                    x,
                    "a growth rate must be above -1 (-100%)",
                ));
            }
        }
        Ok(())
    }

    fn shares(
        &self,
        key: &str,
        shares: &BTreeMap<String, f64>,
        orgs: &BTreeSet<&str>,
    ) -> Result<(), FinanceError> {
        if shares.is_empty() {
            return Err(self.err(key, shares, "must name at least one organisation"));
        }
        let mut sum = 0.0;
        for (org, s) in shares {
            let k = format!("{key}.{org}");
            if !orgs.contains(org.as_str()) {
                return Err(self.err(
                    k,
                    s,
                    format!(
                        "unknown organisation {org:?}; known: {}",
                        orgs.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            self.non_negative(&k, *s)?;
            sum += s;
        }
        if (sum - 1.0).abs() > SHARE_TOLERANCE {
            return Err(self.err(
                key,
                shares,
                format!("shares must sum to 1, they sum to {}", tidy(sum)),
            ));
        }
        Ok(())
    }
}

fn unique<'a>(
    file: &str,
    what: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), FinanceError> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if id.trim().is_empty() {
            return Err(FinanceError::invalid(
                file,
                format!("{what}[{i}].id"),
                id,
                "must not be empty",
            ));
        }
        if !seen.insert(id) {
            return Err(FinanceError::invalid(
                file,
                format!("{what}[{i}].id"),
                id,
                "duplicate id",
            ));
        }
    }
    Ok(())
}

/// Validate everything; the first problem found is returned.
pub(crate) fn validate(p: &PlanFile, file: &str) -> Result<(), FinanceError> {
    let years = &p.plan.years;
    if years.len() < 2 {
        return Err(FinanceError::invalid(
            file,
            "plan.years",
            years,
            "need a baseline year and at least one forecast year",
        ));
    }
    unique(file, "plan.years", years.iter().map(String::as_str))?;
    let c = Check {
        file,
        n_forecast: years.len() - 1,
        years,
    };

    if p.bodies.is_empty() {
        return Err(c.err(
            "bodies",
            "(none)",
            "at least one funding body is needed, e.g. [bodies.nhs]",
        ));
    }
    for (id, b) in &p.bodies {
        let k = format!("bodies.{id}");
        c.rates(&format!("{k}.allocation_growth"), &b.allocation_growth)?;
        if let Some(nr) = &b.non_recurrent_income {
            c.per_all_years(&format!("{k}.non_recurrent_income"), nr)?;
        }
        if let Some(ct) = &b.control_total {
            c.per_forecast_year(&format!("{k}.control_total"), ct)?;
        }
    }

    unique(file, "sectors", p.sectors.iter().map(|s| s.id.as_str()))?;
    for s in &p.sectors {
        let k = format!("sectors[{}]", s.id);
        if !p.bodies.contains_key(&s.body) {
            return Err(c.err(
                format!("{k}.body"),
                &s.body,
                format!(
                    "unknown body; known: {}",
                    p.bodies.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        c.rates(&format!("{k}.demographic"), &s.demographic)?;
        c.rates(&format!("{k}.non_demographic"), &s.non_demographic)?;
        c.rates(&format!("{k}.inflation"), &s.inflation)?;
    }

    if p.organisations.is_empty() {
        return Err(c.err(
            "organisations",
            "(none)",
            "at least one organisation is needed",
        ));
    }
    unique(
        file,
        "organisations",
        p.organisations.iter().map(|o| o.id.as_str()),
    )?;
    let sector_ids: BTreeSet<&str> = p.sectors.iter().map(|s| s.id.as_str()).collect();
    for o in &p.organisations {
        let k = format!("organisations[{}]", o.id);
        if !sector_ids.contains(o.sector.as_str()) {
            return Err(c.err(
                format!("{k}.sector"),
                &o.sector,
                format!(
                    "unknown sector; known: {}",
                    sector_ids.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        c.non_negative(&format!("{k}.baseline_cost"), o.baseline_cost)?;
        c.non_negative(&format!("{k}.baseline_income"), o.baseline_income)?;
        if let Some(e) = &o.efficiency {
            c.per_forecast_year(&format!("{k}.efficiency"), e)?;
            for (i, x) in e.iter().enumerate() {
                if !(0.0..1.0).contains(x) {
                    return Err(c.err(
                        format!("{k}.efficiency[{i}] ({})", years[i + 1]),
                        x,
                        "an efficiency rate is a fraction in [0, 1)",
                    ));
                }
            }
        }
    }
    // Every body's baseline income must cover its baseline non-recurrent income.
    for (id, b) in &p.bodies {
        let income: f64 = p
            .organisations
            .iter()
            .filter(|o| p.sectors.iter().any(|s| s.id == o.sector && &s.body == id))
            .map(|o| o.baseline_income)
            .sum();
        if let Some(nr) = &b.non_recurrent_income
            && nr[0] > income
        {
            return Err(c.err(
                format!("bodies.{id}.non_recurrent_income[0] ({})", years[0]),
                nr[0],
                format!("exceeds the body's baseline income {income} (sum of its organisations' baseline_income)"),
            ));
        }
    }

    let orgs: BTreeSet<&str> = p.organisations.iter().map(|o| o.id.as_str()).collect();
    unique(file, "schemes", p.schemes.iter().map(|s| s.id.as_str()))?;
    for s in &p.schemes {
        validate_scheme(&c, s, &orgs)?;
    }
    unique(file, "funding", p.funding.iter().map(|f| f.id.as_str()))?;
    for f in &p.funding {
        let k = format!("funding[{}]", f.id);
        c.per_forecast_year(&format!("{k}.amounts"), &f.amounts)?;
        c.shares(&format!("{k}.falls_on"), &f.falls_on, &orgs)?;
    }

    let mut entities: BTreeSet<&str> = orgs.clone();
    entities.insert("system");
    entities.extend(p.bodies.keys().map(String::as_str));
    entities.extend(sector_ids.iter().copied());
    entities.extend(p.schemes.iter().map(|s| s.id.as_str()));
    for (i, pb) in p.published.iter().enumerate() {
        let k = format!("published[{i}]");
        if !crate::engine::MEASURES.contains(&pb.measure.as_str()) {
            return Err(c.err(
                format!("{k}.measure"),
                &pb.measure,
                format!(
                    "unknown measure; known: {}",
                    crate::engine::MEASURES.join(", ")
                ),
            ));
        }
        if !entities.contains(pb.entity.as_str()) {
            return Err(c.err(
                format!("{k}.entity"),
                &pb.entity,
                "not system, a body, sector, organisation or scheme id",
            ));
        }
        if !years.contains(&pb.year) {
            return Err(c.err(
                format!("{k}.year"),
                &pb.year,
                format!("not a plan year ({})", years.join(", ")),
            ));
        }
        c.finite(&format!("{k}.value"), pb.value)?;
        if let Some(t) = pb.tolerance {
            c.non_negative(&format!("{k}.tolerance"), t)?;
        }
    }

    if let Some(a) = &p.alliance {
        a.validate(file)?;
    }
    let scheme_ids: BTreeSet<&str> = p.schemes.iter().map(|s| s.id.as_str()).collect();
    validate_activity_schemes(&p.activity_schemes, file, Some(&scheme_ids))?;
    Ok(())
}

fn validate_scheme(c: &Check, s: &Scheme, orgs: &BTreeSet<&str>) -> Result<(), FinanceError> {
    let k = format!("schemes[{}]", s.id);
    for (name, v) in [
        ("gross", s.gross),
        ("reinvestment", s.reinvestment),
        ("units", s.units),
        ("unit_cost", s.unit_cost),
    ] {
        if let Some(v) = v {
            c.finite(&format!("{k}.{name}"), v)?;
            if v < 0.0 {
                let what = match name {
                    "unit_cost" => "a unit cost must not be negative",
                    "units" => "units must not be negative",
                    "gross" => {
                        "a gross saving must not be negative (a scheme that costs money has reinvestment above its gross)"
                    }
                    _ => "reinvestment must not be negative",
                };
                return Err(c.err(format!("{k}.{name}"), v, what));
            }
        }
    }
    match (s.net, s.gross, s.units, s.unit_cost) {
        (Some(n), None, None, None) => {
            c.finite(&format!("{k}.net"), n)?;
            if s.reinvestment.is_some() {
                return Err(c.err(
                    format!("{k}.reinvestment"),
                    s.reinvestment,
                    "give either net, or gross and reinvestment, not both",
                ));
            }
        }
        (Some(n), _, _, _) => {
            return Err(c.err(
                format!("{k}.net"),
                n,
                "give either net, or gross (or units and unit_cost) and reinvestment, not both",
            ));
        }
        (None, Some(_), None, None) => {}
        (None, None, Some(_), Some(_)) => {}
        (None, Some(g), _, _) => {
            return Err(c.err(
                format!("{k}.gross"),
                g,
                "give either gross or units and unit_cost, not both",
            ));
        }
        (None, None, Some(u), None) => {
            return Err(c.err(format!("{k}.units"), u, "units needs unit_cost"));
        }
        (None, None, None, Some(uc)) => {
            return Err(c.err(format!("{k}.unit_cost"), uc, "unit_cost needs units"));
        }
        (None, None, None, None) => {
            return Err(c.err(
                k,
                "(no saving)",
                "give net, or gross and reinvestment, or units, unit_cost and reinvestment",
            ));
        }
    }
    let net = scheme_net(s);
    match (s.low, s.high) {
        (None, None) => {}
        (Some(l), Some(h)) => {
            c.finite(&format!("{k}.low"), l)?;
            c.finite(&format!("{k}.high"), h)?;
            if l > h {
                return Err(c.err(format!("{k}.low"), l, format!("low is above high ({h})")));
            }
            if net < l - SHARE_TOLERANCE || net > h + SHARE_TOLERANCE {
                return Err(c.err(
                    format!("{k}.low"),
                    l,
                    format!("the net saving {net} must lie within [low, high] = [{l}, {h}] (it is the most likely value)"),
                ));
            }
        }
        (Some(l), None) => return Err(c.err(format!("{k}.low"), l, "low needs high")),
        (None, Some(h)) => return Err(c.err(format!("{k}.high"), h, "high needs low")),
    }
    c.per_forecast_year(&format!("{k}.ramp"), &s.ramp)?;
    for (i, r) in s.ramp.iter().enumerate() {
        if !(0.0..=1.0).contains(r) {
            return Err(c.err(
                format!("{k}.ramp[{i}] ({})", c.years[i + 1]),
                r,
                "a ramp value is the fraction of the full-year saving delivered, in [0, 1]",
            ));
        }
    }
    c.shares(&format!("{k}.falls_on"), &s.falls_on, orgs)
}

/// A number rounded to 9 decimals for messages (so 0.6 + 0.3 + 0.2 reads 1.1).
pub(crate) fn tidy(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The scheme's gross saving (units × unit cost when given that way; the net when the plan
/// gives only a net).
pub fn scheme_gross(s: &Scheme) -> Option<f64> {
    match (s.gross, s.units, s.unit_cost) {
        (Some(g), _, _) => Some(g),
        (None, Some(u), Some(c)) => Some(u * c),
        _ => None,
    }
}

/// The scheme's net full-year saving: `net`, or gross less reinvestment.
pub fn scheme_net(s: &Scheme) -> f64 {
    match s.net {
        Some(n) => n,
        None => scheme_gross(s).unwrap_or(0.0) - s.reinvestment.unwrap_or(0.0),
    }
}

//! Schemes stated as a change in activity, and alliances whose outturn is a pathway's
//! cost: the plan-format types that tie the financial model to the data lake.
//!
//! Why: a plan's scheme values are top-down figures ("£72m gross from strengthening
//! primary and community care"), while the plan's text states what the scheme does to
//! activity ("a 20-40% reduction in non-elective admissions", "200 fewer beds"). Writing
//! the activity change down as data lets trent cost it bottom-up from the lake's activity
//! and unit costs (`trent finance costing`, crate `trent-costing`) and so check the
//! top-down figure. Likewise an alliance's actual cost is the cost of its pathway in the
//! lake (`trent finance alliance`).
//!
//! Pure: these are the file types, their validation and the arithmetic that turns a
//! baseline (measured elsewhere, from the lake) into a saving. Nothing here reads data.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::alliance::{Alliance, Partner};
use crate::error::FinanceError;

/// Days in a bed-year: an occupied bed removed for a year is this many bed days.
pub const DAYS_PER_BED_YEAR: f64 = 365.0;

/// Which activity a scheme or pathway covers: every list given must match (an empty or
/// absent list matches everything). Values are the lake's codes (`docs/schema.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySelection {
    /// `activity.setting`: `apc`, `op`, `ae`, `gp`, `community`, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setting: Vec<String>,
    /// `activity.admission_method`: `emergency`, `elective`, `maternity`, `transfer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admission_method: Vec<String>,
    /// `activity.patient_class`: `ordinary`, `day_case`, `first`, `follow_up`, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patient_class: Vec<String>,
    /// Treatment function codes (`301` gastroenterology, `320` cardiology, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specialty: Vec<String>,
    /// Provider organisation codes (`RX1`, `RK5`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider: Vec<String>,
    /// Site codes (`RX1RA`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub site: Vec<String>,
    /// The population: people registered with a practice in any of these places, at any
    /// level of the hierarchy (practice, hub, locality, CCG, delivery unit, STP code).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub place: Vec<String>,
    /// ICD-10 primary diagnosis prefixes, no dot (`I2`, `J44`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<String>,
}

impl ActivitySelection {
    /// Check that no code is empty and that codes are plain (letters, digits, `-`, `_`),
    /// so a selection can be turned into a query safely.
    pub fn validate(&self, file: &str, key: &str) -> Result<(), FinanceError> {
        for (name, list) in self.lists() {
            for (i, v) in list.iter().enumerate() {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(FinanceError::invalid(
                        file,
                        format!("{key}.{name}[{i}]"),
                        v,
                        "a code is letters, digits, '-' or '_'",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The lists by key, in file order.
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 8] {
        [
            ("setting", &self.setting),
            ("admission_method", &self.admission_method),
            ("patient_class", &self.patient_class),
            ("specialty", &self.specialty),
            ("provider", &self.provider),
            ("site", &self.site),
            ("place", &self.place),
            ("diagnosis", &self.diagnosis),
        ]
    }

    /// A one-line description, e.g. `setting=apc admission_method=emergency place=DU-GNS`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .lists()
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(k, l)| format!("{k}={}", l.join(",")))
            .collect();
        if parts.is_empty() {
            "all activity".into()
        } else {
            parts.join(" ")
        }
    }
}

/// What an activity scheme counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityMeasure {
    /// Contacts (rows of `activity`): admissions, attendances, …; cost = their `cost_gbp`.
    #[default]
    Contacts,
    /// Occupied bed days of the selected spells (`los_days`); cost per bed day = the
    /// spells' cost ÷ their bed days. `beds = N` removes N × 365 bed days.
    BedDays,
    /// Referrals (`referral` rows from the selected population and specialties); cost =
    /// the outpatient first attendances they led to (`activity.referral_id`).
    Referrals,
}

impl ActivityMeasure {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityMeasure::Contacts => "contacts",
            ActivityMeasure::BedDays => "bed_days",
            ActivityMeasure::Referrals => "referrals",
        }
    }
}

/// `[[activity_schemes]]`: a scheme stated as a change in activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityScheme {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The plan's `[[schemes]]` id whose top-down value this checks (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// What is counted.
    #[serde(default)]
    pub measure: ActivityMeasure,
    /// The activity (and population) affected.
    #[serde(default)]
    pub select: ActivitySelection,
    /// The change as a fraction of the baseline year's measure (0.3 = 30% fewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduction: Option<f64>,
    /// The change as a number of units a year at full population scale (contacts,
    /// bed days or referrals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<f64>,
    /// For `measure = "bed_days"`: occupied beds removed (each 365 bed days a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beds: Option<f64>,
    /// Where the statement comes from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// A scheme's baseline measured from the lake, at full population scale, for one year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActivityBaseline {
    /// Units of the measure in the year (contacts, bed days or referrals).
    pub units: f64,
    /// Their cost, £ (not £m).
    pub cost_gbp: f64,
}

/// The bottom-up costing of one activity scheme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BottomUp {
    /// Units removed a year (full scale).
    pub units_removed: f64,
    /// Fraction of the baseline removed.
    pub fraction: f64,
    /// Cost per unit, £.
    pub unit_cost_gbp: f64,
    /// Gross saving, £m a year: fraction × baseline cost.
    pub gross_m: f64,
}

impl ActivityScheme {
    /// Check the scheme; `plan_schemes` are the ids it may refer to (None: not checked).
    pub fn validate(
        &self,
        file: &str,
        plan_schemes: Option<&BTreeSet<&str>>,
    ) -> Result<(), FinanceError> {
        let k = format!("activity_schemes[{}]", self.id);
        self.select.validate(file, &format!("{k}.select"))?;
        if let (Some(s), Some(known)) = (&self.scheme, plan_schemes)
            && !known.contains(s.as_str())
        {
            return Err(FinanceError::invalid(
                file,
                format!("{k}.scheme"),
                s,
                format!(
                    "unknown scheme; known: {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let given: Vec<(&str, f64)> = [
            ("reduction", self.reduction),
            ("units", self.units),
            ("beds", self.beds),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
        if given.len() != 1 {
            return Err(FinanceError::invalid(
                file,
                k,
                given,
                "give exactly one of reduction (a fraction), units or beds",
            ));
        }
        let (name, v) = given[0];
        let key = format!("{k}.{name}");
        if !v.is_finite() || v < 0.0 {
            return Err(FinanceError::invalid(
                file,
                key,
                v,
                "must be a finite number, not negative",
            ));
        }
        if name == "reduction" && v > 1.0 {
            return Err(FinanceError::invalid(
                file,
                key,
                v,
                "a reduction is a fraction in [0, 1] (0.3 = 30% fewer)",
            ));
        }
        if name == "beds" && self.measure != ActivityMeasure::BedDays {
            return Err(FinanceError::invalid(
                file,
                key,
                v,
                "beds needs measure = \"bed_days\"",
            ));
        }
        Ok(())
    }

    /// Cost the change against a baseline: the fraction of the baseline removed, times
    /// the baseline's cost (so the unit cost is the baseline's average cost per unit).
    pub fn bottom_up(&self, baseline: &ActivityBaseline) -> BottomUp {
        let (units_removed, fraction) = match (self.reduction, self.units, self.beds) {
            (Some(r), _, _) => (r * baseline.units, r),
            (_, Some(u), _) => (u, ratio(u, baseline.units)),
            (_, _, Some(b)) => {
                let u = b * DAYS_PER_BED_YEAR;
                (u, ratio(u, baseline.units))
            }
            _ => (0.0, 0.0),
        };
        BottomUp {
            units_removed,
            fraction,
            unit_cost_gbp: ratio(baseline.cost_gbp, baseline.units),
            gross_m: fraction * baseline.cost_gbp / 1e6,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// A file holding only `[[activity_schemes]]` (to use with a plan that has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySchemesFile {
    /// Optional description of the file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The schemes.
    pub activity_schemes: Vec<ActivityScheme>,
}

/// Validate a list of activity schemes: unique ids and each scheme.
pub fn validate_activity_schemes(
    schemes: &[ActivityScheme],
    file: &str,
    plan_schemes: Option<&BTreeSet<&str>>,
) -> Result<(), FinanceError> {
    let mut seen = BTreeSet::new();
    for (i, s) in schemes.iter().enumerate() {
        if s.id.trim().is_empty() || !seen.insert(s.id.as_str()) {
            return Err(FinanceError::invalid(
                file,
                format!("activity_schemes[{i}].id"),
                &s.id,
                "ids must be unique and not empty",
            ));
        }
        s.validate(file, plan_schemes)?;
    }
    Ok(())
}

impl ActivitySchemesFile {
    /// Parse and validate (scheme references are checked against `plan_schemes`).
    pub fn from_toml_str(
        text: &str,
        file: &str,
        plan_schemes: Option<&BTreeSet<&str>>,
    ) -> Result<ActivitySchemesFile, FinanceError> {
        let f: ActivitySchemesFile = toml::from_str(text).map_err(|e| FinanceError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate_activity_schemes(&f.activity_schemes, file, plan_schemes)?;
        Ok(f)
    }
}

/// How an alliance's planned cost is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum PlannedCost {
    /// A budget in £m.
    Fixed(f64),
    /// The pathway's cost in a baseline year times (1 + change).
    FromBaseline {
        /// Planned change on the baseline year, e.g. −0.03.
        change: f64,
    },
}

/// `[alliance]` with a `[alliance.pathway]`: an alliance whose actual cost is the cost of a
/// pathway in the lake (and whose planned cost may be too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathwayAlliance {
    /// Display name.
    pub name: String,
    /// The pathway: one or more selections of activity (with their population, `place`);
    /// a row in any of them is in the pathway (`[[alliance.pathway]]`).
    pub pathway: Vec<ActivitySelection>,
    /// The alliance's own providers; the population's pathway activity at any other
    /// provider is patient choice, paid from the alliance budget all the same.
    #[serde(default)]
    pub providers: Vec<String>,
    /// The outturn year (default: the lake's last complete financial year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<String>,
    /// Planned cost of the pathway for the year, £m (full population scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_cost: Option<f64>,
    /// Or: the baseline year whose pathway cost sets the plan (`previous`: the year before
    /// the outturn year) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_year: Option<String>,
    /// … changed by this fraction (−0.03: plan to spend 3% less than the baseline year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_change: Option<f64>,
    /// Largest total gain the partners share, £m.
    pub cap: f64,
    /// Largest total loss the partners share, £m (positive).
    pub collar: f64,
    /// Partners and shares.
    pub partners: Vec<Partner>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathwayAllianceFile {
    alliance: PathwayAlliance,
}

impl PathwayAlliance {
    /// Parse and validate a file with one `[alliance]` table that has a `pathway`.
    pub fn from_toml_str(text: &str, file: &str) -> Result<PathwayAlliance, FinanceError> {
        let f: PathwayAllianceFile = toml::from_str(text).map_err(|e| FinanceError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        f.alliance.validate(file)?;
        Ok(f.alliance)
    }

    /// How the planned cost is set (validated: exactly one way).
    pub fn planned(&self) -> PlannedCost {
        match self.planned_cost {
            Some(p) => PlannedCost::Fixed(p),
            None => PlannedCost::FromBaseline {
                change: self.planned_change.unwrap_or(0.0),
            },
        }
    }

    /// Check the pathway, the planned cost, and the settlement terms.
    pub fn validate(&self, file: &str) -> Result<(), FinanceError> {
        if self.pathway.is_empty() {
            return Err(FinanceError::invalid(
                file,
                "alliance.pathway",
                "[]",
                "a pathway needs at least one selection ([[alliance.pathway]])",
            ));
        }
        for (i, sel) in self.pathway.iter().enumerate() {
            sel.validate(file, &format!("alliance.pathway[{i}]"))?;
        }
        let providers = ActivitySelection {
            provider: self.providers.clone(),
            ..Default::default()
        };
        providers.validate(file, "alliance")?;
        match (self.planned_cost, &self.baseline_year, self.planned_change) {
            (Some(_), None, None) => {}
            (None, Some(_), Some(c)) if c.is_finite() && c > -1.0 => {}
            (None, Some(_), None) => {}
            (None, Some(_), Some(c)) => {
                return Err(FinanceError::invalid(
                    file,
                    "alliance.planned_change",
                    c,
                    "a change is a finite fraction above -1",
                ));
            }
            _ => {
                return Err(FinanceError::invalid(
                    file,
                    "alliance.planned_cost",
                    self.planned_cost,
                    "give either planned_cost (£m) or baseline_year with an optional planned_change",
                ));
            }
        }
        // The settlement terms are checked by the plain alliance's own validation.
        self.settle_with(self.planned_cost.unwrap_or(0.0), 0.0)
            .validate(file)
    }

    /// The plain alliance for a planned and an actual cost (£m).
    pub fn settle_with(&self, planned_cost: f64, actual_cost: f64) -> Alliance {
        Alliance {
            name: self.name.clone(),
            planned_cost,
            actual_cost,
            cap: self.cap,
            collar: self.collar,
            partners: self.partners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(text: &str) -> Result<ActivitySchemesFile, FinanceError> {
        ActivitySchemesFile::from_toml_str(text, "s.toml", None)
    }

    #[test]
    fn a_reduction_costs_its_share_of_the_baseline() {
        let f = scheme(
            "[[activity_schemes]]\nid='a'\nname='A'\nreduction=0.3\nselect={setting=['apc'],admission_method=['emergency']}\n",
        )
        .unwrap();
        let b = f.activity_schemes[0].bottom_up(&ActivityBaseline {
            units: 1000.0,
            cost_gbp: 2.0e6,
        });
        assert!((b.gross_m - 0.6).abs() < 1e-12);
        assert!((b.units_removed - 300.0).abs() < 1e-9);
        assert!((b.unit_cost_gbp - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn beds_are_bed_days_at_the_average_cost_per_bed_day() {
        let f = scheme("[[activity_schemes]]\nid='b'\nname='B'\nmeasure='bed_days'\nbeds=200\n")
            .unwrap();
        let b = f.activity_schemes[0].bottom_up(&ActivityBaseline {
            units: 730_000.0,
            cost_gbp: 365.0e6,
        });
        assert!((b.units_removed - 73_000.0).abs() < 1e-9);
        assert!((b.fraction - 0.1).abs() < 1e-12);
        assert!((b.gross_m - 36.5).abs() < 1e-9);
    }

    #[test]
    fn bad_schemes_are_refused_with_the_key() {
        let e = scheme("[[activity_schemes]]\nid='a'\nname='A'\nreduction=1.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("activity_schemes[a].reduction"), "{e}");
        let e = scheme("[[activity_schemes]]\nid='a'\nname='A'\nreduction=0.1\nunits=4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = scheme("[[activity_schemes]]\nid='a'\nname='A'\nbeds=4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bed_days"), "{e}");
        let e = scheme(
            "[[activity_schemes]]\nid='a'\nname='A'\nreduction=0.1\nselect={place=[\"x' or 1=1\"]}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("select.place[0]"), "{e}");
        let known: BTreeSet<&str> = ["x"].into();
        let e = ActivitySchemesFile::from_toml_str(
            "[[activity_schemes]]\nid='a'\nname='A'\nscheme='y'\nreduction=0.1\n",
            "s.toml",
            Some(&known),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown scheme"), "{e}");
    }

    #[test]
    fn pathway_alliance_needs_one_planned_cost() {
        let base = "[alliance]\nname='A'\ncap=1.0\ncollar=1.0\n[[alliance.pathway]]\nsetting=['ae']\n[[alliance.partners]]\nid='p'\nshare=1.0\n";
        let ok = PathwayAlliance::from_toml_str(base, "a.toml");
        assert!(ok.is_err());
        let a = PathwayAlliance::from_toml_str(
            &base.replace(
                "cap=1.0",
                "cap=1.0\nbaseline_year='2014/15'\nplanned_change=-0.02",
            ),
            "a.toml",
        )
        .unwrap();
        assert_eq!(a.planned(), PlannedCost::FromBaseline { change: -0.02 });
        let a = PathwayAlliance::from_toml_str(
            &base.replace("cap=1.0", "cap=1.0\nplanned_cost=10.0"),
            "a.toml",
        )
        .unwrap();
        assert_eq!(a.planned(), PlannedCost::Fixed(10.0));
        let s = a.settle_with(10.0, 9.5).settle();
        assert!((s.partners[0].settlement - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_plan_carries_activity_schemes_and_scenarios_change_them_by_id() {
        let text = crate::BUNDLED_PLANS[0].1.to_string()
            + "\n[[activity_schemes]]\nid = 'nel'\nname = 'NEL'\nscheme = 'primary_community'\nreduction = 0.3\nselect = { setting = ['apc'] }\n";
        let plan = crate::Plan::from_toml_str(&text, "p.toml").unwrap();
        assert_eq!(plan.file().activity_schemes.len(), 1);
        let s = plan
            .with_scenario_str(
                "[scenario]\nname = 's'\n[[activity_schemes]]\nid = 'nel'\nreduction = 0.2\n",
                "s.toml",
            )
            .unwrap();
        assert_eq!(s.plan.file().activity_schemes[0].reduction, Some(0.2));
        let e =
            crate::Plan::from_toml_str(&text.replace("'primary_community'", "'nope'"), "p.toml")
                .unwrap_err()
                .to_string();
        assert!(e.contains("activity_schemes[nel].scheme"), "{e}");
    }
}

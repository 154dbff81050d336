//! Indicator definitions: one TOML file each (`config/indicators/*.toml`), read, checked
//! against the data model and compiled once. A bad file is an error naming the file and
//! the field, and never stops the other definitions from running.
//!
//! The format is documented field by field in `docs/observatory.md`.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::DefError;
use crate::expr::{self, Expr};

/// How an indicator's value is computed from its numerator and denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// numerator ÷ denominator units × multiplier, Wilson interval
    Proportion,
    /// events ÷ person-years × multiplier, Byar's interval
    Rate,
    /// directly age-standardised rate (ESP 2013) per multiplier person-years, Dobson interval
    Dsr,
    /// sum of a value ÷ number of units, t/normal interval
    Mean,
    /// a count (or sum), Byar's interval
    Count,
    /// life expectancy at birth (Chiang II), by sex
    Le,
    /// healthy life expectancy at birth (Sullivan), by sex
    Hle,
    /// slope index of inequality of another indicator across deprivation deciles
    Sii,
    /// imported from a published area-level file
    Import,
}

/// Period grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    /// calendar month
    Month,
    /// financial-year quarter (Apr-Jun = Q1)
    Quarter,
    /// financial year (April to March)
    FinancialYear,
    /// rolling 12 months ending each month
    Rolling12m,
}

/// Is a higher value better?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// higher is better
    Higher,
    /// lower is better
    Lower,
    /// neither (context)
    Neither,
}

/// How one unit is tied to a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// every row is a unit
    Row,
    /// one unit per person per period: their latest row
    PersonLatest,
    /// one unit per person per period: their first row
    PersonFirst,
}

/// `[[...require]]`: another row of the same person must (or must not) exist near the unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireDef {
    /// table of the other row
    pub table: String,
    /// which of its rows count
    #[serde(rename = "where", default)]
    pub filter: Option<String>,
    /// its date column
    pub when: String,
    /// the unit's column the window is anchored on (default: the unit's `when`)
    #[serde(default)]
    pub anchor: Option<String>,
    /// days from the anchor, inclusive: [from, to]
    pub within_days: [i32; 2],
    /// true: the row must NOT exist
    #[serde(default)]
    pub absent: bool,
    /// a key column of the same table: the unit's own row never counts as the other row
    #[serde(default)]
    pub not_same: Option<String>,
}

/// `[units]`: what is counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsDef {
    /// lake table
    pub table: String,
    /// date column that places a unit in a period
    #[serde(default)]
    pub when: Option<String>,
    /// snapshot: [start, end] columns; a unit counts in each period whose middle day it spans
    #[serde(default)]
    pub active: Option<[String; 2]>,
    /// filter
    #[serde(rename = "where", default)]
    pub filter: Option<String>,
    /// row, person_latest, person_first
    #[serde(default = "per_row")]
    pub per: Per,
    /// conditions on other rows
    #[serde(default)]
    pub require: Vec<RequireDef>,
}

fn per_row() -> Per {
    Per::Row
}

/// `[numerator]` / units-based `[denominator]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartDef {
    /// which units count
    #[serde(rename = "where", default)]
    pub filter: Option<String>,
    /// what each adds (default 1)
    #[serde(default)]
    pub value: Option<String>,
    /// conditions on other rows
    #[serde(default)]
    pub require: Vec<RequireDef>,
    /// population denominator: registered residents at the middle of each period
    #[serde(default)]
    pub population: bool,
    /// population ages, inclusive
    #[serde(default)]
    pub ages: Option<[i32; 2]>,
    /// population sex
    #[serde(default)]
    pub sex: Option<String>,
}

/// Baseline or target.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// value in the indicator's unit (a baseline may leave it out when the target is a
    /// `change`: each place's own value in the baseline period is then its baseline)
    #[serde(default)]
    pub value: Option<f64>,
    /// target only: a change from each place's baseline, in percent (e.g. -30)
    #[serde(default)]
    pub change: Option<f64>,
    /// period label, e.g. `2014/15` or `2020-21`
    pub period: String,
    /// place the plan's figure is for (default: the whole area)
    #[serde(default)]
    pub place: Option<String>,
    /// sex the figure is for (LE/HLE)
    #[serde(default)]
    pub sex: Option<String>,
    /// where the figure comes from
    #[serde(default)]
    pub source: Option<String>,
}

/// `[health]` of an HLE indicator: the prevalence of not-good health by age and sex.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthDef {
    /// table
    pub table: String,
    /// date column
    pub when: String,
    /// responses that count
    #[serde(rename = "where")]
    pub filter: String,
    /// a response meaning "not in good health"
    pub bad: String,
}

/// `[sii]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiiDef {
    /// the indicator whose values by deprivation decile are compared
    pub of: String,
}

/// `[import]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDef {
    /// CSV, relative to the definitions folder: place,period,value[,lower,upper,numerator,denominator]
    pub file: String,
    /// why this cannot come from person-level data
    pub why: String,
}

/// One indicator file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// stable id (the file name without `.toml`)
    pub id: String,
    /// title
    pub title: String,
    /// the plan's section
    pub section: String,
    /// the plan's wording
    pub plan: String,
    /// method
    pub method: Method,
    /// period grain
    pub grain: Grain,
    /// polarity
    pub polarity: Polarity,
    /// multiplier of the value (100 for percentages, 100000 for rates per 100,000)
    #[serde(default = "one")]
    pub multiplier: f64,
    /// unit of the value, for people
    pub unit: String,
    /// `residence` (practice hierarchy, local authority, district, deprivation decile) and/or
    /// `provider`
    #[serde(default = "residence")]
    pub places: Vec<String>,
    /// breakdowns: sex, age_band, imd_quintile, ethnicity
    #[serde(default)]
    pub breakdowns: Vec<String>,
    /// place levels that get breakdowns (default stp, local_authority, ccg)
    #[serde(default)]
    pub breakdown_levels: Option<Vec<String>>,
    /// disclosure rule: `nhse` (1-7 redacted, others rounded to 5) or `none` (not counts)
    #[serde(default = "nhse")]
    pub disclosure: String,
    /// what is counted
    #[serde(default)]
    pub units: Option<UnitsDef>,
    /// numerator
    #[serde(default)]
    pub numerator: Option<PartDef>,
    /// denominator
    #[serde(default)]
    pub denominator: Option<PartDef>,
    /// HLE's health question
    #[serde(default)]
    pub health: Option<HealthDef>,
    /// SII
    #[serde(default)]
    pub sii: Option<SiiDef>,
    /// imported
    #[serde(default)]
    pub import: Option<ImportDef>,
    /// the plan's baseline
    #[serde(default)]
    pub baseline: Option<Mark>,
    /// the plan's target
    #[serde(default)]
    pub target: Option<Mark>,
    /// notes: where trent's definition differs from the official one, and why
    #[serde(default)]
    pub notes: Option<String>,
    /// SPC: periods at which the process is known to have changed (a new service, a
    /// definition change); the XmR chart starts a new segment with its own limits there
    #[serde(default)]
    pub spc_rebase: Vec<String>,
}

fn one() -> f64 {
    1.0
}
fn residence() -> Vec<String> {
    vec!["residence".into()]
}
fn nhse() -> String {
    "nhse".into()
}

/// A checked requirement.
#[derive(Debug, Clone)]
pub struct Require {
    /// table
    pub table: String,
    /// filter
    pub filter: Option<Expr>,
    /// date column of the other row
    pub when: String,
    /// anchor column of the unit
    pub anchor: String,
    /// window
    pub within: [i32; 2],
    /// must not exist
    pub absent: bool,
    /// same-row key
    pub not_same: Option<String>,
}

/// A checked, compiled indicator.
#[derive(Debug, Clone)]
pub struct Indicator {
    /// the definition as written
    pub def: Definition,
    /// the file it came from
    pub file: String,
    /// sha-256 of the file's bytes, first 12 hex digits: the definition version
    pub version: String,
    /// units' table
    pub table: String,
    /// units' date column (None for snapshots)
    pub when: Option<String>,
    /// snapshot columns
    pub active: Option<[String; 2]>,
    /// units filter
    pub filter: Option<Expr>,
    /// per
    pub per: Per,
    /// units requirements
    pub require: Vec<Require>,
    /// numerator filter
    pub num_filter: Option<Expr>,
    /// numerator value
    pub num_value: Option<Expr>,
    /// numerator requirements
    pub num_require: Vec<Require>,
    /// denominator filter (units mode)
    pub den_filter: Option<Expr>,
    /// denominator value (units mode)
    pub den_value: Option<Expr>,
    /// population denominator
    pub population: Option<Population>,
    /// HLE
    pub health: Option<(String, String, Expr, Expr)>,
    /// residence places
    pub residence: bool,
    /// provider places
    pub provider: bool,
}

/// A population denominator.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// ages inclusive
    pub ages: [i32; 2],
    /// sex
    pub sex: Option<String>,
}

/// Columns a table offers to expressions: its own (dates as day numbers), the person's
/// `age` at the unit's date, `sex`, `ethnicity`, `imd_decile`, and derived columns.
pub fn columns_of(table: &str) -> Option<Vec<String>> {
    let def = trent_model::schema::table(table)?;
    if table == "identity" {
        return None;
    }
    let mut cols: Vec<String> = def.columns.iter().map(|c| c.name.to_string()).collect();
    for extra in crate::views::derived_columns(table) {
        cols.push(extra.to_string());
    }
    for p in ["age", "sex", "ethnicity", "imd_decile"] {
        if !cols.iter().any(|c| c == p) {
            cols.push(p.to_string());
        }
    }
    Some(cols)
}

/// Breakdowns trent knows.
pub const BREAKDOWNS: &[&str] = &["sex", "age_band", "imd_quintile", "ethnicity"];
/// Place levels trent computes for residence-based indicators.
pub const RESIDENCE_LEVELS: &[&str] = &[
    "stp",
    "delivery_unit",
    "ccg",
    "locality",
    "hub",
    "practice",
    "local_authority",
    "district",
    "imd_decile",
];

impl Indicator {
    /// Read and check one definition file.
    pub fn from_file(path: &Path) -> Result<Indicator, DefError> {
        let text = std::fs::read_to_string(path).map_err(|e| DefError {
            file: path.display().to_string(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Indicator::from_str(&path.display().to_string(), &text)
    }

    /// Parse and check a definition held in memory (`file` names it in errors).
    pub fn from_str(file: &str, text: &str) -> Result<Indicator, DefError> {
        let err = |field: &str, message: String| DefError {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };
        let def: Definition = toml::from_str(text).map_err(|e| {
            let field = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_default();
            err(&field, e.message().to_string())
        })?;
        let stem = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if !stem.is_empty() && stem != def.id && file.ends_with(".toml") {
            return Err(err(
                "id",
                format!("`{}` does not match the file name `{stem}.toml`", def.id),
            ));
        }
        let version = {
            let h = Sha256::digest(text.as_bytes());
            h.iter().take(6).map(|b| format!("{b:02x}")).collect()
        };
        for b in &def.breakdowns {
            if !BREAKDOWNS.contains(&b.as_str()) {
                return Err(err(
                    "breakdowns",
                    format!("unknown breakdown `{b}` (known: {})", BREAKDOWNS.join(", ")),
                ));
            }
        }
        for l in def.breakdown_levels.iter().flatten() {
            if !RESIDENCE_LEVELS.contains(&l.as_str()) && l != "provider" {
                return Err(err(
                    "breakdown_levels",
                    format!("unknown place level `{l}`"),
                ));
            }
        }
        let mut residence = false;
        let mut provider = false;
        for p in &def.places {
            match p.as_str() {
                "residence" => residence = true,
                "provider" => provider = true,
                _ => {
                    return Err(err(
                        "places",
                        format!("unknown place basis `{p}` (residence or provider)"),
                    ));
                }
            }
        }
        if !matches!(def.disclosure.as_str(), "nhse" | "none") {
            return Err(err(
                "disclosure",
                format!("unknown rule `{}` (nhse or none)", def.disclosure),
            ));
        }
        if !(def.multiplier.is_finite() && def.multiplier > 0.0) {
            return Err(err("multiplier", "must be a positive number".into()));
        }
        for (i, r) in def.spc_rebase.iter().enumerate() {
            if crate::period::parse_label(r).is_none() {
                return Err(err(
                    &format!("spc_rebase[{i}]"),
                    format!("`{r}` is not a period (YYYY-MM, YYYY/YY or YYYY/YY Qn)"),
                ));
            }
        }
        match (&def.baseline, &def.target) {
            (Some(b), Some(t)) => {
                if t.value.is_some() == t.change.is_some() {
                    return Err(err(
                        "target",
                        "give the target as a `value` or as a `change` (percent), one of them"
                            .into(),
                    ));
                }
                if b.change.is_some() {
                    return Err(err("baseline.change", "only a target is a change".into()));
                }
                if t.value.is_some() && b.value.is_none() {
                    return Err(err(
                        "baseline.value",
                        "a target value needs a baseline value (or give the target as a change)"
                            .into(),
                    ));
                }
            }
            (Some(b), None) if b.value.is_none() || b.change.is_some() => {
                return Err(err(
                    "baseline",
                    "a baseline without a target needs a value and no change".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "target",
                    "a target needs a [baseline] (its period at least)".into(),
                ));
            }
            _ => {}
        }
        for (f, m) in [("baseline", &def.baseline), ("target", &def.target)] {
            if let Some(m) = m
                && crate::period::parse_label(&m.period).is_none()
            {
                return Err(err(
                    &format!("{f}.period"),
                    format!(
                        "`{}` is not a period (YYYY-MM, YYYY/YY or YYYY/YY Qn)",
                        m.period
                    ),
                ));
            }
        }
        let mut ind = Indicator {
            file: file.to_string(),
            version,
            table: String::new(),
            when: None,
            active: None,
            filter: None,
            per: Per::Row,
            require: vec![],
            num_filter: None,
            num_value: None,
            num_require: vec![],
            den_filter: None,
            den_value: None,
            population: None,
            health: None,
            residence,
            provider,
            def: def.clone(),
        };
        match def.method {
            Method::Import => {
                if def.import.is_none() {
                    return Err(err(
                        "import",
                        "an imported indicator needs [import] file and why".into(),
                    ));
                }
                return Ok(ind);
            }
            Method::Sii => {
                if def.sii.is_none() {
                    return Err(err(
                        "sii",
                        "an SII indicator needs [sii] of = \"<indicator id>\"".into(),
                    ));
                }
                return Ok(ind);
            }
            _ => {}
        }
        let units = def
            .units
            .as_ref()
            .ok_or_else(|| err("units", "missing [units]".into()))?;
        let cols = columns_of(&units.table).ok_or_else(|| {
            err(
                "units.table",
                format!(
                    "unknown table `{}` (lake tables: {})",
                    units.table,
                    lake_tables().join(", ")
                ),
            )
        })?;
        let col_ok = |field: &str, c: &str, cols: &[String]| -> Result<(), DefError> {
            if cols.iter().any(|x| x == c) {
                Ok(())
            } else {
                Err(err(
                    field,
                    format!("unknown column `{c}` (columns: {})", cols.join(", ")),
                ))
            }
        };
        let parse =
            |field: &str, s: &Option<String>, cols: &[String]| -> Result<Option<Expr>, DefError> {
                let Some(s) = s else { return Ok(None) };
                let e = expr::parse(s).map_err(|e| err(field, format!("`{s}`: {e}")))?;
                let mut used = vec![];
                e.columns(&mut used);
                for c in used {
                    col_ok(field, &c, cols)?;
                }
                Ok(Some(e))
            };
        match (&units.when, &units.active) {
            (Some(w), None) => col_ok("units.when", w, &cols)?,
            (None, Some([a, b])) => {
                col_ok("units.active", a, &cols)?;
                col_ok("units.active", b, &cols)?;
                if units.per != Per::Row {
                    return Err(err(
                        "units.per",
                        "a snapshot (`active`) counts rows; use per = \"row\"".into(),
                    ));
                }
            }
            _ => {
                return Err(err(
                    "units",
                    "give exactly one of `when` (a date column) or `active` ([start, end] columns)"
                        .into(),
                ));
            }
        }
        if units.per != Per::Row && def.grain == Grain::Rolling12m {
            return Err(err(
                "units.per",
                "one unit per person per period cannot be rolled up over 12 months; use grain = \"financial_year\" or per = \"row\"".into(),
            ));
        }
        let requires = |field: &str, list: &[RequireDef]| -> Result<Vec<Require>, DefError> {
            let mut out = vec![];
            for (i, r) in list.iter().enumerate() {
                let f = format!("{field}.require[{i}]");
                let rc = columns_of(&r.table).ok_or_else(|| {
                    err(
                        &format!("{f}.table"),
                        format!("unknown table `{}`", r.table),
                    )
                })?;
                col_ok(&format!("{f}.when"), &r.when, &rc)?;
                let anchor = r
                    .anchor
                    .clone()
                    .or_else(|| units.when.clone())
                    .ok_or_else(|| {
                        err(
                            &format!("{f}.anchor"),
                            "a snapshot needs an explicit anchor".into(),
                        )
                    })?;
                col_ok(&format!("{f}.anchor"), &anchor, &cols)?;
                if let Some(k) = &r.not_same {
                    if r.table != units.table {
                        return Err(err(
                            &format!("{f}.not_same"),
                            "only for a requirement on the units' own table".into(),
                        ));
                    }
                    col_ok(&format!("{f}.not_same"), k, &rc)?;
                }
                if r.within_days[0] > r.within_days[1] {
                    return Err(err(&format!("{f}.within_days"), "from is after to".into()));
                }
                out.push(Require {
                    table: r.table.clone(),
                    filter: parse(&format!("{f}.where"), &r.filter, &rc)?,
                    when: r.when.clone(),
                    anchor,
                    within: r.within_days,
                    absent: r.absent,
                    not_same: r.not_same.clone(),
                });
            }
            Ok(out)
        };
        ind.table = units.table.clone();
        ind.when = units.when.clone();
        ind.active = units.active.clone();
        ind.filter = parse("units.where", &units.filter, &cols)?;
        ind.per = units.per;
        ind.require = requires("units", &units.require)?;
        let num = def.numerator.clone().unwrap_or_default();
        if num.population {
            return Err(err(
                "numerator.population",
                "only a denominator can be a population".into(),
            ));
        }
        ind.num_filter = parse("numerator.where", &num.filter, &cols)?;
        ind.num_value = parse("numerator.value", &num.value, &cols)?;
        ind.num_require = requires("numerator", &num.require)?;
        let den = def.denominator.clone().unwrap_or_default();
        if den.population {
            let ages = den.ages.unwrap_or([0, 200]);
            if let Some(s) = &den.sex
                && s != "F"
                && s != "M"
            {
                return Err(err("denominator.sex", format!("`{s}` is not F or M")));
            }
            ind.population = Some(Population {
                ages,
                sex: den.sex.clone(),
            });
        } else {
            if den.ages.is_some() || den.sex.is_some() {
                return Err(err(
                    "denominator",
                    "ages and sex apply to a population denominator (population = true)".into(),
                ));
            }
            ind.den_filter = parse("denominator.where", &den.filter, &cols)?;
            ind.den_value = parse("denominator.value", &den.value, &cols)?;
        }
        let needs_pop = matches!(
            def.method,
            Method::Rate | Method::Dsr | Method::Le | Method::Hle
        );
        if needs_pop && ind.population.is_none() {
            return Err(err(
                "denominator.population",
                format!(
                    "method {:?} needs a population denominator (population = true)",
                    def.method
                ),
            ));
        }
        if !needs_pop && ind.population.is_some() {
            return Err(err(
                "denominator.population",
                format!(
                    "method {:?} divides by units, not by a population",
                    def.method
                ),
            ));
        }
        if def.method == Method::Hle {
            let h = def
                .health
                .as_ref()
                .ok_or_else(|| err("health", "an HLE indicator needs [health]".into()))?;
            let hc = columns_of(&h.table)
                .ok_or_else(|| err("health.table", format!("unknown table `{}`", h.table)))?;
            col_ok("health.when", &h.when, &hc)?;
            let f = parse("health.where", &Some(h.filter.clone()), &hc)?.expect("some");
            let b = parse("health.bad", &Some(h.bad.clone()), &hc)?.expect("some");
            ind.health = Some((h.table.clone(), h.when.clone(), f, b));
        }
        if matches!(def.method, Method::Le | Method::Hle) && def.grain == Grain::Month {
            return Err(err(
                "grain",
                "life expectancy needs at least a quarter of deaths; use financial_year".into(),
            ));
        }
        if ind.provider && !cols.iter().any(|c| c == "provider_code") {
            return Err(err(
                "places",
                format!("table `{}` has no provider_code", ind.table),
            ));
        }
        Ok(ind)
    }
}

fn lake_tables() -> Vec<&'static str> {
    trent_model::schema::TABLES
        .iter()
        .map(|t| t.name)
        .filter(|n| *n != "identity")
        .collect()
}

/// The bundled catalogue: `config/indicators/*.toml`, compiled in.
pub const BUNDLED: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled catalogue's imported files (`config/indicators/imported/*.csv`).
pub const BUNDLED_FILES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/bundled_files.rs"));

/// Load every `*.toml` of a folder (sorted by name), or the bundled catalogue when `dir`
/// is None. Bad files come back as errors beside the good ones.
pub fn load(dir: Option<&Path>) -> (Vec<Indicator>, Vec<DefError>) {
    let mut ok = vec![];
    let mut bad = vec![];
    match dir {
        None => {
            for (name, text) in BUNDLED {
                match Indicator::from_str(&format!("config/indicators/{name}"), text) {
                    Ok(i) => ok.push(i),
                    Err(e) => bad.push(e),
                }
            }
        }
        Some(d) => {
            let mut files: Vec<_> = match std::fs::read_dir(d) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect(),
                Err(e) => {
                    bad.push(DefError {
                        file: d.display().to_string(),
                        field: String::new(),
                        message: format!("cannot read the folder: {e}"),
                    });
                    vec![]
                }
            };
            files.sort();
            for f in files {
                match Indicator::from_file(&f) {
                    Ok(i) => ok.push(i),
                    Err(e) => bad.push(e),
                }
            }
        }
    }
    (ok, bad)
}

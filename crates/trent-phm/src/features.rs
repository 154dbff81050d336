//! Features per person at an index date, with the outcome the risk model learns.
//!
//! Who: everyone registered in the area on the index date D (registration started on or
//! before D, not ended and not dead by D). What, and over which look-back window (all
//! windows end the day before D; `docs/phm.md` lists them with their reasons):
//!
//! | feature | window | meaning |
//! | --- | --- | --- |
//! | `age` | at D | whole years from the birth month (the lake keeps the month only) |
//! | `sex_male`, `imd_decile`, `ethnic_group` | at D | as registered; ethnic group 0-5 (White … Not stated) |
//! | `ltc_<condition>` | ever before D | a GP (SNOMED CT) or hospital (ICD-10) record of each long-term condition |
//! | `ltc_count` | ever before D | how many of them |
//! | `emergency_365`, `emergency_730` | 1 and 2 years | emergency admissions (APC, admission method emergency) |
//! | `elective_365`, `maternity_365` | 1 year | elective and maternity admissions |
//! | `bed_days_365` | 1 year | length of stay of admissions that began in the year |
//! | `days_since_emergency` | 2 years | days since the last emergency admission began; missing if none |
//! | `ae_365`, `ae_90`, `ae_ambulance_365` | 1 year, 90 days | A&E attendances; those arriving by ambulance |
//! | `op_365`, `gp_365`, `gp_90`, `community_365`, `mental_health_365`, `ambulance_365`, `nhs111_365` | 1 year, 90 days | contacts by setting |
//! | `med_items_365`, `med_distinct_90`, `polypharmacy` | 1 year, 90 days | prescription issues; distinct medicines; ≥ 10 distinct medicines |
//! | `social_care_active`, `care_home` | at D | a social care service open on D; residential or nursing care |
//! | `charlson`, `elixhauser`, `hfrs`, `efi`, `efi_band`, `cms` | see [`crate::features::INDEX_WINDOWS`] | the published indices (trent-indices) |
//!
//! The outcome, when the lake covers D + 365 days: an emergency admission beginning in
//! [D, D + 365).
//!
//! Two implementations: [`compute`] runs three SQL statements ([`sql`]) through
//! DataFusion and scores the indices on the codes they return; [`reference`] reads the
//! tables' rows and counts them one by one in plain Rust. The tests require the same
//! numbers from both.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use trent_indices::batch::IndexConfig;
use trent_indices::code::{CodeSystem, Event};
use trent_indices::{charlson, cms, efi, elixhauser, hfrs};
use trent_model::codes::{CONDITIONS, ethnic_group};
use trent_model::time;

use crate::PhmError;

/// How a feature is to be read by a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// a count or measure
    Numeric,
    /// 0 or 1
    Binary,
    /// an integer code with no order
    Categorical,
}

/// Look-back windows of the indices, in days before D (`None`: everything before D).
pub const INDEX_WINDOWS: &[(&str, Option<i32>, &str)] = &[
    (
        "charlson",
        Some(5 * 365),
        "hospital ICD-10 diagnoses in the 5 years before D (Quan 2005 mapping, Charlson 1987 weights)",
    ),
    (
        "elixhauser",
        Some(5 * 365),
        "hospital ICD-10 diagnoses in the 5 years before D (Quan 2005 mapping, van Walraven 2009 weights)",
    ),
    (
        "hfrs",
        Some(2 * 365),
        "hospital ICD-10 diagnoses in the 2 years before D (Gilbert 2018)",
    ),
    (
        "efi",
        None,
        "GP and hospital codes ever, prescriptions in the year before D (Clegg 2016; polypharmacy over the year)",
    ),
    (
        "cms",
        Some(5 * 365),
        "codes in the 5 years before D and prescriptions in the year (Payne 2020, general outcome weights)",
    ),
];

/// Lake days of the windows used by features.
pub(crate) const YEAR: i32 = 365;
pub(crate) const TWO_YEARS: i32 = 730;
pub(crate) const RECENT: i32 = 90;
/// Distinct medicines in 90 days that count as polypharmacy.
pub const POLYPHARMACY: f64 = 10.0;

/// The settings counted as contacts, with their feature names.
const CONTACTS: &[(&str, &str)] = &[
    ("op", "op_365"),
    ("gp", "gp_365"),
    ("community", "community_365"),
    ("mental_health", "mental_health_365"),
    ("ambulance", "ambulance_365"),
    ("nhs111", "nhs111_365"),
];

/// Every feature's name and kind, in column order.
pub fn specs() -> Vec<(String, Kind)> {
    use Kind::*;
    let mut v: Vec<(String, Kind)> = vec![
        ("age".into(), Numeric),
        ("sex_male".into(), Binary),
        ("imd_decile".into(), Numeric),
        ("ethnic_group".into(), Categorical),
    ];
    for c in CONDITIONS {
        v.push((format!("ltc_{}", c.key), Binary));
    }
    v.push(("ltc_count".into(), Numeric));
    for n in [
        "emergency_365",
        "emergency_730",
        "elective_365",
        "maternity_365",
        "bed_days_365",
        "days_since_emergency",
        "ae_365",
        "ae_90",
        "ae_ambulance_365",
    ] {
        v.push((n.into(), Numeric));
    }
    for (_, n) in CONTACTS {
        v.push(((*n).into(), Numeric));
    }
    v.push(("gp_90".into(), Numeric));
    v.push(("med_items_365".into(), Numeric));
    v.push(("med_distinct_90".into(), Numeric));
    v.push(("polypharmacy".into(), Binary));
    v.push(("social_care_active".into(), Binary));
    v.push(("care_home".into(), Binary));
    for n in ["charlson", "elixhauser", "hfrs", "efi"] {
        v.push((n.into(), Numeric));
    }
    v.push(("efi_band".into(), Categorical));
    v.push(("cms".into(), Numeric));
    v
}

/// An index date, checked against the lake's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDate {
    /// days since 1970-01-01
    pub day: i32,
    /// whether the lake covers the outcome year [D, D + 365)
    pub has_outcome: bool,
}

impl IndexDate {
    /// Check `date` (ISO) against a lake spanning `[start, end]` (ISO, inclusive): at
    /// least a year of look-back, and not after the day following the lake's last.
    pub fn check(date: &str, start: &str, end: &str) -> Result<IndexDate, PhmError> {
        let err = |why: String| PhmError::IndexDate {
            date: date.to_string(),
            why,
        };
        let day = time::parse(date).ok_or_else(|| err("not a date (YYYY-MM-DD)".into()))?;
        let s = time::parse(start).ok_or_else(|| err(format!("lake start {start:?}")))?;
        let e = time::parse(end).ok_or_else(|| err(format!("lake end {end:?}")))? + 1;
        if day < s + YEAR {
            return Err(err(format!(
                "the lake begins {start}: features need a year of history, so the earliest index date is {}",
                time::iso(s + YEAR)
            )));
        }
        if day > e {
            return Err(err(format!(
                "the lake ends {end}: the latest index date is {}",
                time::iso(e)
            )));
        }
        Ok(IndexDate {
            day,
            has_outcome: day + YEAR <= e,
        })
    }
}

/// One row per person registered on the index date.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// the index date (days since 1970-01-01)
    pub index_day: i32,
    /// pseudonymous lake ids, ascending
    pub person_id: Vec<i64>,
    /// registered practice (organisation code), for places and worklists
    pub practice: Vec<String>,
    /// feature names, in column order ([`specs`])
    pub names: Vec<String>,
    /// feature kinds
    pub kinds: Vec<Kind>,
    /// column-major values; NaN = missing
    pub columns: Vec<Column>,
    /// an emergency admission in [D, D + 365), when the lake covers that year
    pub outcome: Option<Vec<u8>>,
    /// codes the indices could not read (malformed for their code system), counted
    pub malformed_codes: usize,
}

/// One feature's values for everyone (NaN = missing), held in f32 when every value is
/// exactly an f32, else in f64.
///
/// Why two types: most features are whole numbers or flags, which f32 holds exactly in
/// half the memory of f64, and a model reads f32 anyway, so its matrix shares such a
/// column rather than copying it. On this machine fresh memory, not arithmetic, is the
/// largest cost of the features (docs/benchmarks.md). Fractions (`efi`, `hfrs`, `cms`)
/// stay f64, so every value is the one worked out, whatever the data.
#[derive(Debug, Clone)]
pub enum Column {
    /// every value exact in f32 (or, at [`Precision::Model`], rounded to it once)
    F32(Arc<Vec<f32>>),
    /// at least one value that f32 would round
    F64(Vec<f64>),
}

impl PartialEq for Column {
    /// The same values (NaN equal to NaN), whichever type holds them.
    fn eq(&self, o: &Column) -> bool {
        self.len() == o.len()
            && (0..self.len()).all(|i| {
                let (a, b) = (self.get(i), o.get(i));
                a == b || (a.is_nan() && b.is_nan())
            })
    }
}

impl Column {
    /// The values without loss: f32 when each is exactly one, else f64.
    pub fn of(v: Vec<f64>) -> Column {
        let mut b = ColumnBuilder::new(v.len(), Precision::Full);
        b.extend(v.into_iter());
        b.finish()
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }
    /// No values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Value `i` (exact: an f32 widens without loss).
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Column::F32(v) => f64::from(v[i]),
            Column::F64(v) => v[i],
        }
    }
    /// Every value, in order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        // (one predictable branch a value, not a call through a boxed iterator)
        (0..self.len()).map(move |i| self.get(i))
    }
    /// The values in f32, as a model reads them: an f32 column shared, not copied; an f64
    /// one rounded once.
    pub fn f32s(&self) -> Arc<Vec<f32>> {
        match self {
            Column::F32(v) => v.clone(),
            Column::F64(v) => Arc::new(v.iter().map(|&x| x as f32).collect()),
        }
    }
}

/// A [`Column`] made a block of values at a time: the values go straight into f32 while
/// f32 holds each exactly (at [`Precision::Model`], always); at the first block with a
/// value f32 would change, the values so far are widened to f64 (exactly, as they were
/// exact) and that block and the rest follow in f64.
pub(crate) enum ColumnBuilder {
    /// the values so far; whether to round (Model) rather than widen
    F32(Vec<f32>, bool),
    /// the values so far, in f64
    F64(Vec<f64>),
}

impl ColumnBuilder {
    /// An empty column with room for `n` values.
    pub(crate) fn new(n: usize, precision: Precision) -> ColumnBuilder {
        ColumnBuilder::F32(Vec::with_capacity(n), precision == Precision::Model)
    }
    /// Add `values` (worked out again, in f64, if f32 would change one of them).
    pub(crate) fn extend<I: Iterator<Item = f64> + Clone>(&mut self, values: I) {
        match self {
            ColumnBuilder::F32(v, round) => {
                let start = v.len();
                let mut exact = true;
                v.extend(values.clone().map(|x| {
                    let y = x as f32;
                    exact &= (f64::from(y) == x) | x.is_nan();
                    y
                }));
                if !(exact || *round) {
                    let mut wide = Vec::with_capacity(v.capacity());
                    wide.extend(v[..start].iter().map(|&x| f64::from(x)));
                    wide.extend(values);
                    *self = ColumnBuilder::F64(wide);
                }
            }
            ColumnBuilder::F64(v) => v.extend(values),
        }
    }
    /// The column.
    pub(crate) fn finish(self) -> Column {
        match self {
            ColumnBuilder::F32(v, _) => Column::F32(Arc::new(v)),
            ColumnBuilder::F64(v) => Column::F64(v),
        }
    }
}

/// What a date's features are computed for (see [`compute_dates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// every value as worked out ([`Column::of`]): segments, the lake's `phm_features`,
    /// cohorts, a model
    Full,
    /// every value rounded to f32, only for a model's matrix
    Model,
}

impl Features {
    /// Features whose `columns` are in [`specs`] order (names and kinds from there).
    pub(crate) fn in_spec_order(
        d: IndexDate,
        person_id: Vec<i64>,
        practice: Vec<String>,
        columns: Vec<Column>,
        outcome: Option<Vec<u8>>,
        malformed_codes: usize,
    ) -> Features {
        let specs = specs();
        Features {
            index_day: d.day,
            person_id,
            practice,
            names: specs.iter().map(|s| s.0.clone()).collect(),
            kinds: specs.iter().map(|s| s.1).collect(),
            columns,
            outcome,
            malformed_codes,
        }
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }
    /// Number of people.
    pub fn len(&self) -> usize {
        self.person_id.len()
    }
    /// No people.
    pub fn is_empty(&self) -> bool {
        self.person_id.is_empty()
    }
}

fn date(d: i32) -> String {
    format!("DATE '{}'", time::iso(d))
}

fn ts(d: i32) -> String {
    format!("TIMESTAMP '{} 00:00:00'", time::iso(d))
}

fn codes_in(c: &trent_model::codes::ConditionCode) -> String {
    format!("code IN ('{}', '{}')", c.snomed, c.icd10)
}

/// The SQL the fast path runs for index day `d`: (name, statement). The same text runs
/// in DuckDB for the benchmark (`trent stratify --dump-sql`).
pub fn sql(d: i32) -> Vec<(String, String)> {
    let (y, m, _) = time::ymd(d);
    let dmi = i64::from(y) * 12 + i64::from(m) - 1;
    let em = "setting = 'apc' AND admission_method = 'emergency'";
    let win = |from: i32| format!("start_ts >= {} AND start_ts < {}", ts(d - from), ts(d));
    let mut act = vec![
        format!(
            "SUM(CASE WHEN {em} AND {} THEN 1 ELSE 0 END) AS emergency_365",
            win(YEAR)
        ),
        format!(
            "SUM(CASE WHEN {em} AND {} THEN 1 ELSE 0 END) AS emergency_730",
            win(TWO_YEARS)
        ),
        format!(
            "SUM(CASE WHEN setting = 'apc' AND admission_method = 'elective' AND {} THEN 1 ELSE 0 END) AS elective_365",
            win(YEAR)
        ),
        format!(
            "SUM(CASE WHEN setting = 'apc' AND admission_method = 'maternity' AND {} THEN 1 ELSE 0 END) AS maternity_365",
            win(YEAR)
        ),
        format!(
            "SUM(CASE WHEN setting = 'apc' AND {} THEN COALESCE(los_days, 0) ELSE 0 END) AS bed_days_365",
            win(YEAR)
        ),
        format!(
            "MAX(CASE WHEN {em} AND {} THEN start_ts END) AS last_emergency",
            win(TWO_YEARS)
        ),
        format!(
            "SUM(CASE WHEN setting = 'ae' AND {} THEN 1 ELSE 0 END) AS ae_365",
            win(YEAR)
        ),
        format!(
            "SUM(CASE WHEN setting = 'ae' AND {} THEN 1 ELSE 0 END) AS ae_90",
            win(RECENT)
        ),
        format!(
            "SUM(CASE WHEN setting = 'ae' AND arrival_mode = 'ambulance' AND {} THEN 1 ELSE 0 END) AS ae_ambulance_365",
            win(YEAR)
        ),
    ];
    for (s, n) in CONTACTS {
        act.push(format!(
            "SUM(CASE WHEN setting = '{s}' AND {} THEN 1 ELSE 0 END) AS {n}",
            win(YEAR)
        ));
    }
    act.push(format!(
        "SUM(CASE WHEN setting = 'gp' AND {} THEN 1 ELSE 0 END) AS gp_90",
        win(RECENT)
    ));
    act.push(format!(
        "SUM(CASE WHEN {em} AND start_ts >= {} AND start_ts < {} THEN 1 ELSE 0 END) AS outcome",
        ts(d),
        ts(d + YEAR)
    ));
    let act_names: Vec<String> = act
        .iter()
        .map(|a| a.rsplit(" AS ").next().unwrap().to_string())
        .collect();
    let cond: Vec<String> = CONDITIONS
        .iter()
        .map(|c| {
            format!(
                "MAX(CASE WHEN {} THEN 1 ELSE 0 END) AS ltc_{}",
                codes_in(c),
                c.key
            )
        })
        .collect();
    let mut sel = vec![
        "pop.person_id".to_string(),
        "pop.practice_code".to_string(),
        "pop.age".to_string(),
        "pop.sex".to_string(),
        "pop.imd_decile".to_string(),
        "pop.ethnicity".to_string(),
    ];
    for c in CONDITIONS {
        sel.push(format!("COALESCE(cond.ltc_{k}, 0) AS ltc_{k}", k = c.key));
    }
    for n in &act_names {
        if n == "last_emergency" {
            sel.push("act.last_emergency".into());
        } else {
            sel.push(format!("COALESCE(act.{n}, 0) AS {n}"));
        }
    }
    sel.push("COALESCE(med.med_items_365, 0) AS med_items_365".into());
    sel.push("COALESCE(meds90.med_distinct_90, 0) AS med_distinct_90".into());
    for n in ["social_care_active", "care_home"] {
        sel.push(format!("COALESCE(sc.{n}, 0) AS {n}"));
    }
    let main = format!(
        "WITH pop AS (SELECT person_id, practice_code, CAST(floor(({dmi} - (date_part('year', birth_month) * 12 + date_part('month', birth_month) - 1)) / 12.0) AS BIGINT) AS age, sex, imd_decile, ethnicity FROM person WHERE registration_start <= {dd} AND (registration_end IS NULL OR registration_end > {dd}) AND (death_date IS NULL OR death_date > {dd})),\n\
         act AS (SELECT person_id, {act} FROM activity WHERE start_ts >= {from} AND start_ts < {to} GROUP BY person_id),\n\
         cond AS (SELECT person_id, {cond} FROM condition WHERE recorded_date < {dd} GROUP BY person_id),\n\
         med AS (SELECT person_id, COUNT(*) AS med_items_365 FROM medication WHERE issue_date >= {d365} AND issue_date < {dd} GROUP BY person_id),\n\
         meds90 AS (SELECT person_id, COUNT(*) AS med_distinct_90 FROM (SELECT DISTINCT person_id, code FROM medication WHERE issue_date >= {d90} AND issue_date < {dd}) GROUP BY person_id),\n\
         sc AS (SELECT person_id, MAX(1) AS social_care_active, MAX(CASE WHEN service IN ('residential', 'nursing') THEN 1 ELSE 0 END) AS care_home FROM social_care WHERE start_date <= {dd} AND (end_date IS NULL OR end_date > {dd}) GROUP BY person_id)\n\
         SELECT {sel} FROM pop LEFT JOIN act ON act.person_id = pop.person_id LEFT JOIN cond ON cond.person_id = pop.person_id LEFT JOIN med ON med.person_id = pop.person_id LEFT JOIN meds90 ON meds90.person_id = pop.person_id LEFT JOIN sc ON sc.person_id = pop.person_id ORDER BY pop.person_id",
        dd = date(d),
        act = act.join(", "),
        from = ts(d - TWO_YEARS),
        to = ts(d + YEAR),
        cond = cond.join(", "),
        d90 = date(d - RECENT),
        d365 = date(d - YEAR),
        sel = sel.join(", "),
    );
    vec![
        ("features".into(), main),
        (
            "index-conditions".into(),
            format!(
                "SELECT person_id, code_system, code, recorded_date FROM condition WHERE recorded_date < {}",
                date(d)
            ),
        ),
        (
            "index-medicines".into(),
            format!(
                "SELECT person_id, code, issue_date FROM medication WHERE issue_date >= {} AND issue_date < {}",
                date(d - YEAR),
                date(d)
            ),
        ),
    ]
}

/// Codes per person for the indices: (system, code, days before D).
type Codes = HashMap<i64, Vec<(CodeSystem, Arc<str>, u32)>>;

/// One shared copy of each distinct code (a few hundred), not one string per row.
#[derive(Default)]
struct Interner(HashMap<String, Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(s.to_string(), a.clone());
        a
    }
}

/// The indices of one person: charlson, elixhauser, hfrs, efi, efi band, cms, malformed.
fn indices(codes: &[(CodeSystem, Arc<str>, u32)]) -> ([f64; 6], usize) {
    let win = |name: &str| {
        INDEX_WINDOWS
            .iter()
            .find(|w| w.0 == name)
            .and_then(|w| w.1)
            .map_or(u32::MAX, |d| d as u32)
    };
    let hosp = |days: u32| {
        codes
            .iter()
            .filter(move |(s, _, a)| *s == CodeSystem::Icd10 && *a < days)
            .map(|(_, c, _)| &**c)
    };
    let cfg = IndexConfig::default();
    let ch = charlson::charlson(
        hosp(win("charlson")),
        cfg.charlson_mapping,
        cfg.charlson_weights,
    );
    let el = elixhauser::elixhauser(hosp(win("elixhauser")));
    let hf = hfrs::hfrs(hosp(win("hfrs")));
    let ev: Vec<Event> = codes
        .iter()
        .map(|(s, c, a)| Event::dated(*s, c, *a))
        .collect();
    let ef = efi::efi(&ev);
    let cw = win("cms");
    let cev: Vec<Event> = ev.iter().filter(|e| e.within(cw)).copied().collect();
    let cm = cms::cms(&cev, cfg.cms_weights);
    let band = efi_band(ef.band);
    let malformed = ch.malformed.len() + ef.malformed.len();
    (
        [
            ch.score as f64,
            el.score as f64,
            hf.score,
            ef.score,
            band,
            cm.score,
        ],
        malformed,
    )
}

fn system(s: &str) -> CodeSystem {
    match s {
        "ICD10" => CodeSystem::Icd10,
        _ => CodeSystem::Snomed,
    }
}

/// Person-level values before the indices, shared by both paths' assembly.
struct Raw {
    person_id: i64,
    practice: String,
    /// values in spec order, indices left NaN
    values: Vec<f64>,
    outcome: u8,
}

fn assemble(d: IndexDate, mut raws: Vec<Raw>, codes: &Codes) -> Features {
    raws.sort_by_key(|r| r.person_id);
    let specs = specs();
    let idx0 = specs.iter().position(|s| s.0 == "charlson").unwrap();
    let n = raws.len();
    let mut columns = vec![Vec::with_capacity(n); specs.len()];
    let mut malformed = 0;
    let empty = vec![];
    // the indices per person on 2 threads
    let scores: Vec<([f64; 6], usize)> = {
        let half = n / 2;
        let (a, b) = raws.split_at(half);
        let score = |part: &[Raw]| -> Vec<([f64; 6], usize)> {
            part.iter()
                .map(|r| indices(codes.get(&r.person_id).unwrap_or(&empty)))
                .collect()
        };
        std::thread::scope(|s| {
            let h = s.spawn(|| score(b));
            let mut x = score(a);
            x.extend(h.join().expect("index scoring thread"));
            x
        })
    };
    let mut person_id = Vec::with_capacity(n);
    let mut practice = Vec::with_capacity(n);
    let mut outcome = Vec::with_capacity(n);
    for (r, (sc, bad)) in raws.into_iter().zip(scores) {
        person_id.push(r.person_id);
        practice.push(r.practice);
        outcome.push(r.outcome);
        malformed += bad;
        let mut v = r.values;
        v[idx0..idx0 + 6].copy_from_slice(&sc);
        for (c, x) in columns.iter_mut().zip(v) {
            c.push(x);
        }
    }
    Features::in_spec_order(
        d,
        person_id,
        practice,
        columns.into_iter().map(Column::of).collect(),
        d.has_outcome.then_some(outcome),
        malformed,
    )
}

/// Values in spec order from the per-person counts (indices NaN until scored).
#[allow(clippy::too_many_arguments)]
fn row_values(
    age: f64,
    sex: &str,
    imd: f64,
    ethnicity: &str,
    ltc: &[f64],
    act: &HashMap<&str, f64>,
    days_since_emergency: f64,
    med_items: f64,
    med_distinct: f64,
    sc_active: f64,
    care_home: f64,
) -> Vec<f64> {
    let mut v = vec![
        age,
        f64::from(u8::from(sex == "M")),
        imd,
        ethnic_group(ethnicity) as f64,
    ];
    v.extend_from_slice(ltc);
    v.push(ltc.iter().sum());
    for n in [
        "emergency_365",
        "emergency_730",
        "elective_365",
        "maternity_365",
        "bed_days_365",
    ] {
        v.push(act[n]);
    }
    v.push(days_since_emergency);
    for n in ["ae_365", "ae_90", "ae_ambulance_365"] {
        v.push(act[n]);
    }
    for (_, n) in CONTACTS {
        v.push(act[n]);
    }
    v.push(act["gp_90"]);
    v.push(med_items);
    v.push(med_distinct);
    v.push(f64::from(u8::from(med_distinct >= POLYPHARMACY)));
    v.push(sc_active);
    v.push(care_home);
    v.extend([f64::NAN; 6]);
    v
}

fn f(b: &RecordBatch, name: &str) -> Result<Vec<f64>, PhmError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| PhmError::Other(format!("features query returned no column {name}")))?;
    let c = arrow::compute::cast(c, &DataType::Float64)?;
    let a = c.as_primitive::<Float64Type>();
    Ok((0..a.len())
        .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) })
        .collect())
}

fn s(b: &RecordBatch, name: &str) -> Result<Vec<String>, PhmError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| PhmError::Other(format!("features query returned no column {name}")))?;
    let c = arrow::compute::cast(c, &DataType::Utf8)?;
    let a = c.as_string::<i32>();
    Ok((0..a.len()).map(|i| a.value(i).to_string()).collect())
}

fn opt_s(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, PhmError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| PhmError::Other(format!("query returned no column {name}")))?;
    let c = arrow::compute::cast(c, &DataType::Utf8)?;
    let a = c.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
        .collect())
}

/// Where one person's coded events begin in the flat, person-ordered event list.
pub(crate) struct CodeEvents {
    /// `start[i]..start[i + 1]`: person row i's events
    start: Vec<u32>,
    /// code id in the high 32 bits, days before D in the low (one integer, so that a
    /// person's events sort by code, then most recent first, by plain integer order)
    events: Vec<u64>,
}

/// One partition's `(person row, code id, days before D)` rows and the map from its code
/// ids to the shared ones.
pub(crate) type CodeRows<'a> = (&'a [(u32, u32, u32)], &'a [u32]);

/// Gather `(person row, code id, days before D)` into per-person runs (a counting sort:
/// two passes, no per-person allocation). The rows come in parts, each with the map
/// from its own code ids to the shared ones, so they are never copied into one list.
/// Two threads each count and place the rows of half the people (the scatter's cache
/// misses and the list's fresh pages are most of the time; each thread reads every row
/// and writes only its half).
pub(crate) fn by_person(n: usize, parts: &[CodeRows<'_>]) -> CodeEvents {
    let mid = n / 2;
    let count = |lo: usize, hi: usize| {
        let mut c = vec![0u32; hi - lo];
        for (rows, _) in parts {
            for r in *rows {
                let p = r.0 as usize;
                if (lo..hi).contains(&p) {
                    c[p - lo] += 1;
                }
            }
        }
        c
    };
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| count(mid, n));
        (count(0, mid), h.join().expect("event counting thread"))
    });
    let mut start = Vec::with_capacity(n + 1);
    start.push(0u32);
    let mut at = 0u32;
    for c in a.iter().chain(&b) {
        at += c;
        start.push(at);
    }
    drop((a, b));
    let mut events = vec![0u64; start[n] as usize];
    let split = start[mid] as usize;
    let (first, second) = events.split_at_mut(split);
    let place = |out: &mut [u64], lo: usize, hi: usize, base: usize| {
        let mut fill: Vec<u32> = start[lo..hi].iter().map(|&x| x - base as u32).collect();
        for (rows, remap) in parts {
            for &(p, c, a) in *rows {
                let p = p as usize;
                if (lo..hi).contains(&p) {
                    let k = &mut fill[p - lo];
                    out[*k as usize] = u64::from(remap[c as usize]) << 32 | u64::from(a);
                    *k += 1;
                }
            }
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| place(second, mid, n, split));
        place(first, 0, mid, 0);
    });
    CodeEvents { start, events }
}

impl CodeEvents {
    /// Sort each person's events by code, then most recent first (fewest days before),
    /// on two threads; the index profiles read them in that order at every date.
    pub(crate) fn sort(&mut self) {
        let n = self.start.len() - 1;
        let mid = self.start[n / 2] as usize;
        let (a, b) = self.events.split_at_mut(mid);
        let start = &self.start;
        let sort_part = |ev: &mut [u64], rows: std::ops::Range<usize>, base: usize| {
            for i in rows {
                ev[start[i] as usize - base..start[i + 1] as usize - base].sort_unstable();
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| sort_part(b, n / 2..n, mid));
            sort_part(a, 0..n / 2, 0);
        });
    }
}

/// What one distinct code gives each index, worked out once (normalising it and looking
/// it up in the code lists) by the indices' own `code_mask`/`code_facts`, so that a
/// person's indices are a fold of bit sets and counters over their codes.
pub(crate) struct CodeIndexFacts {
    /// normalises for its system (a malformed code counts in no index)
    ok: bool,
    charlson: u128,
    elixhauser: u128,
    hfrs: u128,
    efi: efi::EfiCode,
    cms: cms::CmsCode,
}

impl CodeIndexFacts {
    /// The facts of every code of the dictionary (`codes[i]` of system `systems[i]`).
    pub(crate) fn all(codes: &[String], systems: &[CodeSystem]) -> Vec<CodeIndexFacts> {
        let cfg = IndexConfig::default();
        codes
            .iter()
            .zip(systems)
            .map(|(raw, &sys)| match sys.normalise(raw) {
                Ok(c) => {
                    let icd = sys == CodeSystem::Icd10;
                    CodeIndexFacts {
                        ok: true,
                        charlson: if icd {
                            charlson::code_mask(&c, cfg.charlson_mapping)
                        } else {
                            0
                        },
                        elixhauser: if icd { elixhauser::code_mask(&c) } else { 0 },
                        hfrs: if icd { hfrs::code_mask(&c) } else { 0 },
                        efi: efi::code_facts(sys, &c),
                        cms: cms::code_facts(sys, &c),
                    }
                }
                Err(_) => CodeIndexFacts {
                    ok: false,
                    charlson: 0,
                    elixhauser: 0,
                    hfrs: 0,
                    efi: efi::EfiCode::default(),
                    cms: cms::CmsCode::default(),
                },
            })
            .collect()
    }
}

/// Each person's long-term conditions, medicine counts and indices from their coded
/// events (sorted by [`CodeEvents::sort`]), for several index dates: `work` holds, per
/// date, the person rows to profile and the date's `shift` (days before the latest date
/// the events are counted from). An event belongs to a date when it is before it
/// (`days > shift`) and, for a medicine, within the year before it. A person's distinct
/// codes (each with its most recent event and, for a medicine, its number of issues) are
/// folded into the five indices from each code's [`CodeIndexFacts`], with the windows
/// and rules of [`indices`], which the reference path runs on the events themselves (the
/// tests require the same numbers). Malformed codes are counted per event, as [`indices`]
/// counts them. `ltc_of[code]`: the long-term condition a code records (`u8::MAX`: none).
pub(crate) fn indices_profile(
    ev: &CodeEvents,
    facts: &[CodeIndexFacts],
    systems: &[CodeSystem],
    ltc_of: &[u8],
    work: &[(&[u32], u32)],
) -> Vec<(Vec<crate::engine::CodeFeatures>, usize)> {
    let win = |name: &str| {
        INDEX_WINDOWS
            .iter()
            .find(|w| w.0 == name)
            .and_then(|w| w.1)
            .map_or(u32::MAX, |d| d as u32)
    };
    let (charlson_days, elixhauser_days, hfrs_days, cms_days) =
        (win("charlson"), win("elixhauser"), win("hfrs"), win("cms"));
    let cfg = IndexConfig::default();
    // (code id, most recent days, count) per distinct code of the person
    let mut per: Vec<(u32, u32, u32)> = Vec::new();
    let mut efi_acc = efi::EfiAcc::default();
    let mut results = Vec::with_capacity(work.len());
    for &(rows, shift) in work {
        let mut out = Vec::with_capacity(rows.len());
        let mut malformed = 0usize;
        for &i in rows {
            let i = i as usize;
            let evs = &ev.events[ev.start[i] as usize..ev.start[i + 1] as usize];
            per.clear();
            let mut f = crate::engine::CodeFeatures {
                ltc: 0,
                med_items: 0,
                med_distinct_90: 0,
                indices: [0.0; 6],
            };
            for &e in evs {
                let (c, a) = ((e >> 32) as u32, e as u32);
                if a <= shift {
                    continue; // on or after this date
                }
                let a = a - shift;
                let sys = systems[c as usize];
                if sys == CodeSystem::Bnf {
                    if a > YEAR as u32 {
                        continue;
                    }
                    f.med_items += 1;
                }
                match per.last_mut() {
                    Some(p) if p.0 == c => p.2 += 1, // sorted: the first has the fewest days
                    _ => {
                        per.push((c, a, 1));
                        if sys == CodeSystem::Bnf && a <= RECENT as u32 {
                            f.med_distinct_90 += 1;
                        }
                        if let Some(k) = ltc_of.get(c as usize).filter(|k| **k != u8::MAX) {
                            f.ltc |= 1 << k;
                        }
                    }
                }
                if !facts[c as usize].ok {
                    // eFI reads (and rejects) every event; Charlson the ICD-10 ones in its window
                    malformed += 1;
                    if sys == CodeSystem::Icd10 && a < charlson_days {
                        malformed += 1;
                    }
                }
            }
            let (mut ch, mut el, mut hf) = (0u128, 0u128, 0u128);
            let mut cm = cms::CmsAcc::default();
            efi_acc.clear();
            for &(c, a, n) in &per {
                let x = &facts[c as usize];
                if !x.ok {
                    continue;
                }
                // the hospital indices read ICD-10 codes before their window's end
                // (their masks are empty for other systems)
                if a < charlson_days {
                    ch |= x.charlson;
                }
                if a < elixhauser_days {
                    el |= x.elixhauser;
                }
                if a < hfrs_days {
                    hf |= x.hfrs;
                }
                efi_acc.add(&x.efi, Some(a));
                if a <= cms_days {
                    // a medicine's issues are events each (all within the year);
                    // a condition's most recent record decides its windows
                    let times = if systems[c as usize] == CodeSystem::Bnf {
                        n
                    } else {
                        1
                    };
                    cm.add(&x.cms, Some(a), times);
                }
            }
            let (efi_score, deficits) = efi_acc.score();
            f.indices = [
                charlson::score_mask(ch, cfg.charlson_weights) as f64,
                elixhauser::score_mask(el) as f64,
                hfrs::score_mask(hf),
                efi_score,
                efi_band(efi::band(deficits)),
                cm.score(cfg.cms_weights),
            ];
            out.push(f);
        }
        results.push((out, malformed));
    }
    results
}

/// The `efi_band` feature's value of a band.
fn efi_band(band: &str) -> f64 {
    match band {
        "fit" => 0.0,
        "mild" => 1.0,
        "moderate" => 2.0,
        _ => 3.0,
    }
}

/// Seconds spent in each step of [`compute`], for the run's report.
pub type Timings = Vec<(String, f64)>;

/// The fast path: the [`sql`] statements through DataFusion, the indices scored on the
/// codes they return.
/// With `TRENT_TRACE` set, each step's seconds go to standard error (counts of steps
/// only, never rows).
pub async fn compute(ctx: &SessionContext, d: IndexDate) -> Result<Features, PhmError> {
    let (f, timings) = compute_timed(ctx, d).await?;
    trace(&[d], &timings);
    Ok(f)
}

/// [`compute`] at several index dates in one pass over the lake (each table read once,
/// for the union of the dates' windows): the same feature sets, in the order of `ds`.
pub async fn compute_many(
    ctx: &SessionContext,
    ds: &[IndexDate],
) -> Result<Vec<Features>, PhmError> {
    compute_dates(ctx, ds, &vec![Precision::Full; ds.len()]).await
}

/// [`compute_many`], each date at its own precision (`precision[i]` for `ds[i]`): a
/// date whose features only feed a model is built in f32 column by column, so no f64
/// copy of it is ever made. The values are those of [`compute_many`], rounded once.
pub async fn compute_dates(
    ctx: &SessionContext,
    ds: &[IndexDate],
    precision: &[Precision],
) -> Result<Vec<Features>, PhmError> {
    let (f, timings) = crate::engine::compute_many(ctx, ds, precision).await?;
    trace(ds, &timings);
    Ok(f)
}

fn trace(ds: &[IndexDate], timings: &Timings) {
    if std::env::var_os("TRENT_TRACE").is_some() {
        let steps: Vec<String> = timings
            .iter()
            .map(|(s, t)| format!("{s} {t:.2} s"))
            .collect();
        let dates: Vec<String> = ds.iter().map(|d| time::iso(d.day)).collect();
        eprintln!("features {}: {}", dates.join(", "), steps.join(", "));
    }
}

/// [`compute`], with the seconds each step took (the engine: [`crate::engine`]).
pub async fn compute_timed(
    ctx: &SessionContext,
    d: IndexDate,
) -> Result<(Features, Timings), PhmError> {
    crate::engine::compute(ctx, d).await
}

/// Rows of a whole table (selected columns), for the reference path.
async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, PhmError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// The reference: every row of every table read and counted one by one, with no SQL
/// beyond selecting columns. Slow; for small lakes and the tests.
#[allow(clippy::needless_range_loop)] // parallel columns indexed by row, on purpose
pub async fn reference(ctx: &SessionContext, d: IndexDate) -> Result<Features, PhmError> {
    let day = d.day;
    let (y, m, _) = time::ymd(day);
    struct P {
        practice: String,
        age: f64,
        sex: String,
        imd: f64,
        eth: String,
        ltc: Vec<f64>,
        act: HashMap<&'static str, f64>,
        last_em: Option<i32>,
        med_items: f64,
        med_codes: Vec<String>,
        sc: f64,
        care_home: f64,
        outcome: u8,
    }
    let mut people: HashMap<i64, P> = HashMap::new();
    for b in rows(ctx, "SELECT person_id, practice_code, sex, birth_month, imd_decile, ethnicity, registration_start, registration_end, death_date FROM person").await? {
        let pid = b.column(0).as_primitive::<Int64Type>();
        let bm = b.column(3).as_primitive::<Date32Type>();
        let rs = b.column(6).as_primitive::<Date32Type>();
        let re = b.column(7).as_primitive::<Date32Type>();
        let dd = b.column(8).as_primitive::<Date32Type>();
        let practice = s(&b, "practice_code")?;
        let sex = s(&b, "sex")?;
        let eth = s(&b, "ethnicity")?;
        let imd = f(&b, "imd_decile")?;
        for i in 0..b.num_rows() {
            let registered = rs.value(i) <= day
                && (re.is_null(i) || re.value(i) > day)
                && (dd.is_null(i) || dd.value(i) > day);
            if !registered {
                continue;
            }
            let (by, bmo, _) = time::ymd(bm.value(i));
            let months = (y * 12 + m as i32) - (by * 12 + bmo as i32);
            let mut act = HashMap::new();
            for n in [
                "emergency_365",
                "emergency_730",
                "elective_365",
                "maternity_365",
                "bed_days_365",
                "ae_365",
                "ae_90",
                "ae_ambulance_365",
                "gp_90",
            ]
            .into_iter()
            .chain(CONTACTS.iter().map(|c| c.1))
            {
                act.insert(n, 0.0);
            }
            people.insert(
                pid.value(i),
                P {
                    practice: practice[i].clone(),
                    age: months.div_euclid(12) as f64,
                    sex: sex[i].clone(),
                    imd: imd[i],
                    eth: eth[i].clone(),
                    ltc: vec![0.0; CONDITIONS.len()],
                    act,
                    last_em: None,
                    med_items: 0.0,
                    med_codes: vec![],
                    sc: 0.0,
                    care_home: 0.0,
                    outcome: 0,
                },
            );
        }
    }
    for b in rows(ctx, "SELECT person_id, setting, admission_method, start_ts, los_days, arrival_mode FROM activity").await? {
        let pid = b.column(0).as_primitive::<Int64Type>();
        let setting = s(&b, "setting")?;
        let method = opt_s(&b, "admission_method")?;
        let st = b.column(3).as_primitive::<TimestampMicrosecondType>();
        let los = f(&b, "los_days")?;
        let arrival = opt_s(&b, "arrival_mode")?;
        for i in 0..b.num_rows() {
            let Some(p) = people.get_mut(&pid.value(i)) else {
                continue;
            };
            let sday = st.value(i).div_euclid(86_400_000_000) as i32;
            let ago = day - sday; // > 0: before D
            let set = setting[i].as_str();
            let meth = method[i].as_deref();
            let emergency = set == "apc" && meth == Some("emergency");
            if (0..YEAR).contains(&(sday - day)) && emergency {
                p.outcome = 1;
            }
            if ago < 1 {
                continue;
            }
            let in_year = ago <= YEAR;
            let recent = ago <= RECENT;
            let mut add = |n: &'static str, x: f64| *p.act.get_mut(n).unwrap() += x;
            if emergency {
                if ago <= TWO_YEARS {
                    add("emergency_730", 1.0);
                    p.last_em = Some(p.last_em.map_or(sday, |l| l.max(sday)));
                }
                if in_year {
                    add("emergency_365", 1.0);
                }
            }
            if set == "apc" && in_year {
                if meth == Some("elective") {
                    add("elective_365", 1.0);
                }
                if meth == Some("maternity") {
                    add("maternity_365", 1.0);
                }
                add("bed_days_365", if los[i].is_nan() { 0.0 } else { los[i] });
            }
            if set == "ae" {
                if in_year {
                    add("ae_365", 1.0);
                    if arrival[i].as_deref() == Some("ambulance") {
                        add("ae_ambulance_365", 1.0);
                    }
                }
                if recent {
                    add("ae_90", 1.0);
                }
            }
            if set == "gp" && recent {
                add("gp_90", 1.0);
            }
            for (cs, n) in CONTACTS {
                if set == *cs && in_year {
                    add(n, 1.0);
                }
            }
        }
    }
    let mut codes: Codes = HashMap::new();
    let mut intern = Interner::default();
    for b in rows(
        ctx,
        "SELECT person_id, code_system, code, recorded_date FROM condition",
    )
    .await?
    {
        let pid = b.column(0).as_primitive::<Int64Type>();
        let sys = s(&b, "code_system")?;
        let code = s(&b, "code")?;
        let rd = b.column(3).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let ago = day - rd.value(i);
            if ago < 1 {
                continue;
            }
            if let Some(p) = people.get_mut(&pid.value(i)) {
                for (k, c) in CONDITIONS.iter().enumerate() {
                    if code[i] == c.snomed || code[i] == c.icd10 {
                        p.ltc[k] = 1.0;
                    }
                }
            }
            codes.entry(pid.value(i)).or_default().push((
                system(&sys[i]),
                intern.get(&code[i]),
                ago as u32,
            ));
        }
    }
    for b in rows(ctx, "SELECT person_id, code, issue_date FROM medication").await? {
        let pid = b.column(0).as_primitive::<Int64Type>();
        let code = s(&b, "code")?;
        let id = b.column(2).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let ago = day - id.value(i);
            if !(1..=YEAR).contains(&ago) {
                continue;
            }
            if let Some(p) = people.get_mut(&pid.value(i)) {
                p.med_items += 1.0;
                if ago <= RECENT && !p.med_codes.contains(&code[i]) {
                    p.med_codes.push(code[i].clone());
                }
            }
            codes.entry(pid.value(i)).or_default().push((
                CodeSystem::Bnf,
                intern.get(&code[i]),
                ago as u32,
            ));
        }
    }
    for b in rows(
        ctx,
        "SELECT person_id, service, start_date, end_date FROM social_care",
    )
    .await?
    {
        let pid = b.column(0).as_primitive::<Int64Type>();
        let service = s(&b, "service")?;
        let sd = b.column(2).as_primitive::<Date32Type>();
        let ed = b.column(3).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let open = sd.value(i) <= day && (ed.is_null(i) || ed.value(i) > day);
            if let (true, Some(p)) = (open, people.get_mut(&pid.value(i))) {
                p.sc = 1.0;
                if service[i] == "residential" || service[i] == "nursing" {
                    p.care_home = 1.0;
                }
            }
        }
    }
    let raws = people
        .into_iter()
        .map(|(pid, p)| Raw {
            person_id: pid,
            values: row_values(
                p.age,
                &p.sex,
                p.imd,
                &p.eth,
                &p.ltc,
                &p.act,
                p.last_em.map_or(f64::NAN, |l| f64::from(day - l)),
                p.med_items,
                p.med_codes.len() as f64,
                p.sc,
                p.care_home,
            ),
            practice: p.practice,
            outcome: p.outcome,
        })
        .collect();
    Ok(assemble(d, raws, &codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column is held in f32 only when no value changes: whole numbers, flags and
    /// missing values are; a fraction, or a whole number past f32's 2^24, keeps the
    /// whole column in f64. Either way every value reads back as given.
    #[test]
    fn a_column_is_f32_only_when_no_value_changes() {
        let whole = vec![0.0, 1.0, f64::NAN, 16_777_216.0, -3.0, 365.0];
        let c = Column::of(whole.clone());
        assert!(matches!(c, Column::F32(_)));
        let fraction = vec![0.0, 1.0, 1.0 / 36.0, f64::NAN];
        let big = vec![0.0, 16_777_217.0];
        for (v, f32_ok) in [(whole, true), (fraction, false), (big, false)] {
            let c = Column::of(v.clone());
            assert_eq!(matches!(c, Column::F32(_)), f32_ok, "{v:?}");
            assert_eq!(c.len(), v.len());
            let back: Vec<f64> = c.iter().collect();
            for (a, b) in back.iter().zip(&v) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
            // the model's view: each value rounded once; an f32 column shared
            let m = c.f32s();
            assert!(
                m.iter().zip(&v).all(
                    |(a, b)| a.to_bits() == (*b as f32).to_bits() || (a.is_nan() && b.is_nan())
                )
            );
            if let Column::F32(own) = &c {
                assert!(Arc::ptr_eq(own, &m));
            }
        }
        // equal values are equal columns, whichever type holds them
        assert_eq!(
            Column::of(vec![1.0, f64::NAN]),
            Column::F64(vec![1.0, f64::NAN])
        );
        assert_ne!(Column::of(vec![1.0, 2.0]), Column::of(vec![1.0, 2.5]));
        // built in blocks: whole numbers first, a fraction in a later block widens the
        // column, the earlier values exactly; for a model it is rounded instead
        let blocks = [vec![3.0, f64::NAN, 7.0], vec![1.0, 0.1], vec![2.0]];
        let mut full = ColumnBuilder::new(6, Precision::Full);
        let mut model = ColumnBuilder::new(6, Precision::Model);
        for b in &blocks {
            full.extend(b.iter().copied());
            model.extend(b.iter().copied());
        }
        let Column::F64(v) = full.finish() else {
            panic!("a fraction makes the column f64")
        };
        let all: Vec<f64> = blocks.concat();
        assert_eq!(v.len(), all.len());
        assert!(
            v.iter()
                .zip(&all)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
        );
        let Column::F32(m) = model.finish() else {
            panic!("a model's column is f32")
        };
        assert_eq!(m[4], 0.1f32);
    }

    /// The engine's fold over each distinct code's facts gives exactly what the five
    /// index functions give on the events themselves (the reference path's [`indices`]),
    /// on random records drawn from codes of every index's lists, every prescription
    /// rule's classes, skin cancer, and malformed codes of each system.
    #[test]
    fn folded_indices_equal_the_index_functions() {
        let mut pool: Vec<(CodeSystem, String)> = [
            "I21", "I50.0", "I500", "I110", "C44.1", "C50", "C78", "E11", "E112", "E10.5", "F03",
            "J44", "N18", "K70", "K72", "Z736", "R32", "B20", "G30", "S72", "W19", "F32", "G40",
            "I63", "D50", "H54", "I1", "bad!",
        ]
        .iter()
        .map(|c| (CodeSystem::Icd10, c.to_string()))
        .collect();
        for d in efi::DEFICITS.iter() {
            pool.extend(d.snomed.iter().map(|c| (CodeSystem::Snomed, c.to_string())));
        }
        for c in cms::CONDITIONS.iter() {
            pool.extend(c.snomed.iter().map(|c| (CodeSystem::Snomed, c.to_string())));
        }
        pool.push((CodeSystem::Snomed, "12x".into()));
        for b in [
            "0403010B0AAAAAA",
            "040102000",
            "0301011R0AAAPAP",
            "0302000C0",
            "0408010A0AAAAAA",
            "010201000AAAAAA",
            "0402030K0AAAAAA",
            "0106020C0AAAAAA",
            "0407010H0AAAAAA",
            "0212000B0AAABAB",
            "0205051R0AAAAAA",
            "0601022B0AAABAB",
            "0209000A0AAAGAG",
            "0206020A0AAAAAA",
            "0103050P0AA",
            "12AB",
        ] {
            pool.push((CodeSystem::Bnf, b.to_string()));
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |k: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % k
        };
        let people = 3000usize;
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        for p in 0..people {
            for _ in 0..next(30) {
                let c = next(pool.len() as u64) as u32;
                // medicines mostly within the year, some older (which no index counts)
                let days = if pool[c as usize].0 == CodeSystem::Bnf {
                    1 + next(420)
                } else {
                    1 + next(3000)
                } as u32;
                // a medicine issued again and again (the repeated-prescription rules)
                let times = if next(4) == 0 { 1 + next(6) } else { 1 };
                for t in 0..times as u32 {
                    rows.push((p as u32, c, days + t * 20));
                }
            }
        }
        let identity: Vec<u32> = (0..pool.len() as u32).collect();
        let mut ev = by_person(people, &[(rows.as_slice(), identity.as_slice())]);
        ev.sort();
        let (codes, systems): (Vec<String>, Vec<CodeSystem>) =
            pool.iter().map(|(s, c)| (c.clone(), *s)).unzip();
        let facts = CodeIndexFacts::all(&codes, &systems);
        let ltc_of = vec![u8::MAX; pool.len()];
        let everyone: Vec<u32> = (0..people as u32).collect();
        let got = indices_profile(&ev, &facts, &systems, &ltc_of, &[(&everyone, 0)]);
        let (got, got_malformed) = &got[0];
        let mut want_malformed = 0;
        for (p, g) in got.iter().enumerate() {
            let list: Vec<(CodeSystem, Arc<str>, u32)> = rows
                .iter()
                .filter(|r| r.0 as usize == p)
                .filter(|r| pool[r.1 as usize].0 != CodeSystem::Bnf || r.2 <= YEAR as u32)
                .map(|r| {
                    let (s, c) = &pool[r.1 as usize];
                    (*s, Arc::from(c.as_str()), r.2)
                })
                .collect();
            let (want, bad) = indices(&list);
            want_malformed += bad;
            assert_eq!(g.indices, want, "person {p}: {list:?}");
        }
        assert_eq!(*got_malformed, want_malformed);
        // the draw reaches every index's scores above zero
        for k in 0..6 {
            assert!(
                got.iter().any(|f| f.indices[k] > 0.0),
                "index {k} never scored"
            );
        }
    }
}

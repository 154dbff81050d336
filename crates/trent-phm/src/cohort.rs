//! Cohorts and case-finding (`trent cohort`): who, among the people stratified, matches a
//! definition — counted by place with NHS England's small-number rule, or listed for one
//! practice as a worklist of pseudonymous ids ranked by risk, with the reasons.
//!
//! A cohort file is TOML, in the spirit of OpenSAFELY's ehrQL (a definition that is data,
//! checked before it runs):
//!
//! ```toml
//! name = "Frail, rising risk"
//! description = "65+, moderate or severe frailty, risk rising or high"
//! where = "age >= 65 and efi_band in ('moderate', 'severe') and risk_band in ('high', 'rising')"
//! [worklist]
//! limit = 50          # rows of a practice's worklist (default 100)
//! ```
//!
//! `where` is written in the Observatory's expression language (`and`, `or`, `not`,
//! comparisons, `in (…)`, `is null`, `starts_with`, arithmetic). Its fields are every
//! feature of `phm_features` (numbers: conditions, recent events such as `ae_90` or
//! `days_since_emergency`, indices), the scores and segments of `risk_stratification`
//! (`risk`, `centile`, `rising_risk` as 0/1; `segment`, `efi_band`, `risk_band` as text)
//! and the place (`practice`, `hub`, `locality`, `ccg`, text). An unknown field, or a
//! field compared with a value of the other type, is an error naming the file and field.
//!
//! Counts: 1 to 7 are shown as `*` (redacted) and every other count is rounded to the
//! nearest 5 — NHS England's rule for publishing small numbers. A worklist never carries an
//! identifier: identifiable worklists come only from the shared care record, under access
//! control.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use trent_observatory::expr::{self, Expr, Value};

use crate::PhmError;
use crate::features;
use crate::stratify::{FEATURES_TABLE, RISK_TABLE};

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// a number
    Num,
    /// text
    Text,
}

/// Every field a cohort may use, with its type.
pub fn fields() -> BTreeMap<String, Ty> {
    let mut m: BTreeMap<String, Ty> = features::specs()
        .into_iter()
        .map(|(n, _)| (n, Ty::Num))
        .collect();
    // `efi_band` is the band's name (fit, mild, moderate, severe)
    for n in ["risk", "centile", "rising_risk"] {
        m.insert(n.into(), Ty::Num);
    }
    for n in [
        "segment",
        "efi_band",
        "risk_band",
        "practice",
        "hub",
        "locality",
        "ccg",
    ] {
        m.insert(n.into(), Ty::Text);
    }
    m
}

/// The place levels counts can be grouped by.
pub const LEVELS: [&str; 4] = ["practice", "hub", "locality", "ccg"];

/// A cohort definition.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// name
    pub name: String,
    /// description
    pub description: String,
    /// the condition
    pub condition: Expr,
    /// worklist length
    pub limit: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "where")]
    condition: String,
    #[serde(default)]
    worklist: Option<Worklist>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Worklist {
    limit: Option<usize>,
}

fn ty_of_lit(v: &Value) -> Option<Ty> {
    match v {
        Value::Num(_) | Value::Bool(_) => Some(Ty::Num),
        Value::Str(_) => Some(Ty::Text),
        Value::Null => None,
    }
}

/// The type of an expression, checking every field exists and comparisons match.
fn check(e: &Expr, f: &BTreeMap<String, Ty>) -> Result<Option<Ty>, String> {
    Ok(match e {
        Expr::Lit(v) => ty_of_lit(v),
        Expr::Col(c) => Some(*f.get(c).ok_or_else(|| {
            format!(
                "field `{c}` is not a cohort field (fields: the features in docs/phm.md, risk, centile, rising_risk, segment, efi_band, risk_band, practice, hub, locality, ccg)"
            )
        })?),
        Expr::Not(x) => {
            check(x, f)?;
            Some(Ty::Num)
        }
        Expr::Neg(x) => {
            if check(x, f)? == Some(Ty::Text) {
                return Err(format!("`{}` is text and cannot be negated", x.sql(None)));
            }
            Some(Ty::Num)
        }
        Expr::Bin(op, a, b) => {
            let (ta, tb) = (check(a, f)?, check(b, f)?);
            if let (Some(x), Some(y)) = (ta, tb)
                && x != y
            {
                let name = |t: Ty| if t == Ty::Num { "a number" } else { "text" };
                return Err(format!(
                    "`{}` is {} but `{}` is {}",
                    a.sql(None).replace('"', ""),
                    name(x),
                    b.sql(None).replace('"', ""),
                    name(y)
                ));
            }
            let _ = op;
            Some(Ty::Num)
        }
        Expr::In(x, vals, _) => {
            let t = check(x, f)?;
            for v in vals {
                if let (Some(t), Some(u)) = (t, ty_of_lit(v))
                    && t != u
                {
                    return Err(format!(
                        "`{}` is {} but the list holds {v:?}",
                        x.sql(None).replace('"', ""),
                        if t == Ty::Num { "a number" } else { "text" }
                    ));
                }
            }
            Some(Ty::Num)
        }
        Expr::IsNull(x, _) => {
            check(x, f)?;
            Some(Ty::Num)
        }
        Expr::StartsWith(x, _) => {
            if check(x, f)? == Some(Ty::Num) {
                return Err(format!(
                    "`{}` is a number; starts_with needs text",
                    x.sql(None).replace('"', "")
                ));
            }
            Some(Ty::Num)
        }
    })
}

impl Cohort {
    /// Parse and check a cohort file's text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Cohort, PhmError> {
        let bad = |m: String| PhmError::Other(format!("{file}: {m}"));
        let f: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let condition = expr::parse(&f.condition)
            .map_err(|e| bad(format!("where: {} (at character {})", e.message, e.at + 1)))?;
        check(&condition, &fields()).map_err(|m| bad(format!("where: {m}")))?;
        let limit = f.worklist.and_then(|w| w.limit).unwrap_or(100);
        Ok(Cohort {
            name: f.name,
            description: f.description,
            condition,
            limit,
        })
    }

    /// Read and check a cohort file.
    pub fn load(path: &Path) -> Result<Cohort, PhmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PhmError::Other(format!("{}: {e}", path.display())))?;
        Cohort::parse(&text, &path.display().to_string())
    }
}

/// NHS England's rule: 1 to 7 redacted (`None`), others rounded to the nearest 5.
pub fn disclose(n: u64) -> Option<u64> {
    match n {
        0 => Some(0),
        1..=7 => None,
        _ => Some((n + 2) / 5 * 5),
    }
}

fn base_sql() -> String {
    let feats: Vec<String> = features::specs()
        .into_iter()
        .filter(|(n, _)| n != "efi_band") // the text band of risk_stratification
        .map(|(n, _)| format!("f.\"{n}\""))
        .collect();
    format!(
        "WITH places AS (SELECT p.org_code AS practice, h.org_code AS hub, l.org_code AS locality, c.org_code AS ccg FROM organisation p LEFT JOIN organisation h ON p.parent_code = h.org_code LEFT JOIN organisation l ON h.parent_code = l.org_code LEFT JOIN organisation c ON l.parent_code = c.org_code WHERE p.org_type = 'practice'),\n\
         x AS (SELECT r.person_id, r.practice, r.segment, r.efi_band, r.risk, r.centile, r.risk_band, CASE WHEN r.rising_risk THEN 1 ELSE 0 END AS rising_risk, r.reason_1, r.reason_2, r.reason_3, r.model, {}, pl.hub, pl.locality, pl.ccg FROM {RISK_TABLE} r JOIN {FEATURES_TABLE} f ON f.person_id = r.person_id LEFT JOIN places pl ON pl.practice = r.practice)",
        feats.join(", ")
    )
}

/// Counts of a cohort by a place level: (place, count before disclosure control).
pub async fn counts(
    ctx: &SessionContext,
    c: &Cohort,
    by: &str,
) -> Result<Vec<(String, u64)>, PhmError> {
    if !LEVELS.contains(&by) {
        return Err(PhmError::Other(format!(
            "--by {by}: choose one of {}",
            LEVELS.join(", ")
        )));
    }
    need_tables(ctx).await?;
    let sql = format!(
        "{}\nSELECT COALESCE({by}, '(unknown)') AS place, COUNT(*) AS n FROM x WHERE {} GROUP BY 1 ORDER BY 1",
        base_sql(),
        c.condition.sql(None)
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut out = vec![];
    for b in &batches {
        let p = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let p = p.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((p.value(i).to_string(), n.value(i) as u64));
        }
    }
    Ok(out)
}

/// One row of a practice's worklist.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorklistRow {
    /// pseudonymous lake id
    pub person_id: i64,
    /// risk of an emergency admission in 12 months
    pub risk: f64,
    /// centile of risk
    pub centile: f64,
    /// segment
    pub segment: String,
    /// the features that pushed the risk up most
    pub reasons: Vec<String>,
}

/// A practice's worklist: the cohort's members there, highest risk first.
pub async fn worklist(
    ctx: &SessionContext,
    c: &Cohort,
    practice: &str,
) -> Result<Vec<WorklistRow>, PhmError> {
    need_tables(ctx).await?;
    let sql = format!(
        "{}\nSELECT person_id, risk, centile, segment, reason_1, reason_2, reason_3, model FROM x WHERE practice = '{}' AND {} ORDER BY risk DESC, person_id LIMIT {}",
        base_sql(),
        practice.replace('\'', "''"),
        c.condition.sql(None),
        c.limit
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut out = vec![];
    let mut model: Option<String> = None;
    for b in &batches {
        let mf = arrow::compute::cast(b.column(7), &DataType::Utf8)?;
        if b.num_rows() > 0 {
            model = Some(mf.as_string::<i32>().value(0).to_string());
        }
        let id = b.column(0).as_primitive::<Int64Type>();
        let risk = b.column(1).as_primitive::<Float64Type>();
        let cent = b.column(2).as_primitive::<Float64Type>();
        let seg = arrow::compute::cast(b.column(3), &DataType::Utf8)?;
        let seg = seg.as_string::<i32>();
        let rs: Vec<_> = (4..7)
            .map(|k| arrow::compute::cast(b.column(k), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        for i in 0..b.num_rows() {
            out.push(WorklistRow {
                person_id: id.value(i),
                risk: risk.value(i),
                centile: cent.value(i),
                segment: seg.value(i).to_string(),
                reasons: rs
                    .iter()
                    .map(|a| a.as_string::<i32>())
                    .filter(|a| !a.is_null(i))
                    .map(|a| a.value(i).to_string())
                    .collect(),
            });
        }
    }
    // reasons on demand for members whose reasons were not stored (below the top 1%)
    let missing: Vec<i64> = out
        .iter()
        .filter(|r| r.reasons.is_empty())
        .map(|r| r.person_id)
        .collect();
    if let (Some(model), false) = (model, missing.is_empty()) {
        let ids: Vec<String> = missing.iter().map(|i| i.to_string()).collect();
        let fb = ctx
            .sql(&format!(
                "SELECT * FROM {FEATURES_TABLE} WHERE person_id IN ({})",
                ids.join(", ")
            ))
            .await?
            .collect()
            .await?;
        for b in &fb {
            let why = crate::stratify::explain_batch(Path::new(&model), b)?;
            let pid = b
                .column_by_name("person_id")
                .expect("selected")
                .as_primitive::<Int64Type>();
            for (i, w) in why.into_iter().enumerate() {
                if let Some(r) = out.iter_mut().find(|r| r.person_id == pid.value(i)) {
                    r.reasons = w.into_iter().flatten().collect();
                }
            }
        }
    }
    Ok(out)
}

async fn need_tables(ctx: &SessionContext) -> Result<(), PhmError> {
    for t in [RISK_TABLE, FEATURES_TABLE] {
        if !ctx.table_exist(t)? {
            return Err(PhmError::Other(format!(
                "the lake has no `{t}` table yet: run `trent stratify` first"
            )));
        }
    }
    Ok(())
}

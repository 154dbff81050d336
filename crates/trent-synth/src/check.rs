//! `trent synth --check DIR`: recompute every calibration target from a generated lake.
//!
//! Event tables are filtered and reduced by Apache DataFusion SQL over the lake; the
//! person-level arithmetic (ages, person-years, life tables, standardisation) is done
//! here, once, with the functions in [`crate::stats`].
//!
//! Periods: prevalences and rates over the lake's first financial year (the plan's
//! baseline); mortality, life expectancy and healthy life expectancy over the whole span
//! (more deaths, tighter estimates); growth from the first to the last day, as an annual
//! rate compared with the target's. Tolerance = the 99.9% sampling half-width of the
//! generated figure plus a model allowance (see [`allowance`]), so the check is as strict
//! as the generated population's size allows at any scale.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use trent_lake::{Lake, LakeError};
use trent_places::{Area, Target};

use crate::stats::{self, band};
use crate::time;

/// One checked target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckRow {
    /// target id
    pub id: String,
    /// measure
    pub measure: String,
    /// target value
    pub target: f64,
    /// generated value
    pub generated: f64,
    /// allowed difference
    pub tolerance: f64,
    /// within tolerance
    pub pass: bool,
    /// the plan's figure (false: an assumption)
    pub plan: bool,
    /// source
    pub source: String,
    /// events or people behind the figure
    pub n: f64,
}

/// Model allowance added to the sampling interval, by measure: the generator matches
/// targets in expectation at the start; people age, conditions accrue and lifestyles
/// change over the span, which moves figures by about this much.
pub fn allowance(measure: &str, target: f64) -> f64 {
    match measure {
        "hle" | "life_expectancy" => 1.5,
        "population_growth" => 0.25,
        "los_over80_elective" | "los_over80_emergency" | "emergency_65_rate_ratio" => 0.05 * target,
        "alcohol_admissions_dsr" | "u75_cvd_mortality_dsr" | "u75_resp_mortality_dsr" => {
            0.10 * target
        }
        "ld_inpatients_per_million" => 0.15 * target,
        _ => 1.5, // percentage points
    }
}

struct P {
    la: usize,
    ccg: usize,
    female: bool,
    birth: i32,
    reg_start: i32,
    left: Option<i32>,
    death: Option<i32>,
    cause: Option<String>,
}

impl P {
    fn age(&self, d: i32) -> i32 {
        // birth month is the 1st: ages are exact to within a month
        crate::model::age_on(self.birth + 14, d)
    }
    fn present(&self, d: i32) -> bool {
        self.reg_start <= d && self.left.is_none_or(|l| d < l)
    }
}

struct Data {
    people: Vec<P>,
    index: HashMap<i64, usize>,
    las: Vec<String>,
    ccgs: Vec<String>,
    start: i32,
    fy_end: i32,
    end: i32,
}

async fn batches(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<arrow::record_batch::RecordBatch>, LakeError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

async fn load(ctx: &SessionContext, area: &Area, lake: &Lake) -> Result<Data, LakeError> {
    let las: Vec<String> = area
        .local_authorities
        .iter()
        .map(|l| l.code.clone())
        .collect();
    let ccgs: Vec<String> = area.ccgs.iter().map(|c| c.code.clone()).collect();
    let mut practice_ccg: HashMap<String, usize> = HashMap::new();
    for p in &area.practices {
        let hub = area
            .hubs
            .iter()
            .find(|h| h.code == p.hub)
            .expect("validated");
        let loc = area
            .localities
            .iter()
            .find(|l| l.code == hub.locality)
            .expect("validated");
        practice_ccg.insert(
            p.code.clone(),
            ccgs.iter().position(|c| *c == loc.ccg).expect("validated"),
        );
    }
    let start = time::parse(&lake.catalog.span_start).unwrap_or(0);
    let end = time::parse(&lake.catalog.span_end)
        .map(|d| d + 1)
        .unwrap_or(0);
    let mut people = Vec::new();
    let mut index = HashMap::new();
    for b in batches(ctx, "select person_id, la_code, practice_code, sex, birth_month, registration_start, registration_end, death_date, death_cause from person").await? {
        let id = b.column(0).as_primitive::<Int64Type>();
        let la = b.column(1).as_string::<i32>();
        let pr = b.column(2).as_string::<i32>();
        let sex = b.column(3).as_string::<i32>();
        let bm = b.column(4).as_primitive::<Date32Type>();
        let rs = b.column(5).as_primitive::<Date32Type>();
        let re = b.column(6).as_primitive::<Date32Type>();
        let dd = b.column(7).as_primitive::<Date32Type>();
        let dc = b.column(8).as_string::<i32>();
        for i in 0..b.num_rows() {
            index.insert(id.value(i), people.len());
            people.push(P {
                la: las.iter().position(|l| l == la.value(i)).unwrap_or(0),
                ccg: practice_ccg.get(pr.value(i)).copied().unwrap_or(0),
                female: sex.value(i) == "F",
                birth: bm.value(i),
                reg_start: rs.value(i),
                left: (!re.is_null(i)).then(|| re.value(i)),
                death: (!dd.is_null(i)).then(|| dd.value(i)),
                cause: (!dc.is_null(i)).then(|| dc.value(i).to_string()),
            });
        }
    }
    Ok(Data {
        people,
        index,
        las,
        ccgs,
        start,
        fy_end: time::add_years(start, 1),
        end,
    })
}

fn d(z: i32) -> String {
    format!("DATE '{}'", time::iso(z))
}

/// Person-years by LA, sex and band in [a, b).
fn person_years(
    data: &Data,
    a: i32,
    b: i32,
    group: &dyn Fn(&P) -> usize,
    groups: usize,
) -> Vec<[[f64; 19]; 2]> {
    let mut py = vec![[[0.0; 19]; 2]; groups];
    for p in &data.people {
        // split by year so the age band is right
        let mut y0 = a;
        while y0 < b {
            let y1 = time::add_years(y0, 1).min(b);
            let s = y0.max(p.reg_start);
            let e = y1.min(p.left.unwrap_or(i32::MAX));
            if e > s {
                let age = p.age((s + e) / 2);
                py[group(p)][usize::from(!p.female)][band(age)] += (e - s) as f64 / 365.25;
            }
            y0 = y1;
        }
    }
    py
}

fn both(x: &[[f64; 19]; 2]) -> [f64; 19] {
    std::array::from_fn(|b| x[0][b] + x[1][b])
}

/// Run every target of the area against the lake.
pub async fn check(area: &Area, lake: &Lake) -> Result<Vec<CheckRow>, LakeError> {
    let ctx = lake.session().await?;
    let data = load(&ctx, area, lake).await?;
    let (fy0, fy1) = (data.start, data.fy_end);
    let nla = data.las.len();
    let la_of = |t: &Target| {
        t.la.as_ref()
            .and_then(|l| data.las.iter().position(|x| x == l))
    };

    // latest observation of a code set per person in the first year → (person, code, value, date)
    let latest = |codes: &[&str]| {
        let list = codes
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "select person_id, code, value, obs_date from (select person_id, code, value, obs_date, row_number() over (partition by person_id order by obs_date desc, code) as rn from observation where code in ({list}) and obs_date >= {} and obs_date < {}) where rn = 1",
            d(fy0),
            d(fy1)
        )
    };
    let mut props: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    let mut prop = |name: &'static str,
                    rows: Vec<arrow::record_batch::RecordBatch>,
                    keep: &dyn Fn(&P, i32) -> bool,
                    num: &dyn Fn(&str, f64) -> bool| {
        let mut acc = vec![(0.0, 0.0); nla];
        for b in rows {
            let id = b.column(0).as_primitive::<Int64Type>();
            let code = b.column(1).as_string::<i32>();
            let val = b.column(2).as_primitive::<Float64Type>();
            let dt = b.column(3).as_primitive::<Date32Type>();
            for i in 0..b.num_rows() {
                let Some(&pi) = data.index.get(&id.value(i)) else {
                    continue;
                };
                let p = &data.people[pi];
                if !keep(p, dt.value(i)) {
                    continue;
                }
                let v = if val.is_null(i) {
                    f64::NAN
                } else {
                    val.value(i)
                };
                acc[p.la].1 += 1.0;
                if num(code.value(i), v) {
                    acc[p.la].0 += 1.0;
                }
            }
        }
        props.insert(name, acc);
    };
    use trent_model::codes as k;
    let adult = |p: &P, d: i32| p.age(d) >= 18;
    prop(
        "smoking_prevalence",
        batches(
            &ctx,
            &latest(&[
                k::OBS_SMOKER.code,
                k::OBS_EX_SMOKER.code,
                k::OBS_NEVER_SMOKED.code,
            ]),
        )
        .await?,
        &adult,
        &|c, _| c == k::OBS_SMOKER.code,
    );
    prop(
        "adult_overweight",
        batches(&ctx, &latest(&[k::OBS_BMI.code])).await?,
        &adult,
        &|_, v| v >= 25.0,
    );
    prop(
        "physical_inactivity",
        batches(&ctx, &latest(&[k::OBS_ACTIVITY.code])).await?,
        &adult,
        &|_, v| v < 30.0,
    );
    prop(
        "child_overweight_10_11",
        batches(&ctx, &latest(&[k::OBS_NCMP_CENTILE.code])).await?,
        &|p, d| (10..=11).contains(&p.age(d)),
        &|_, v| v >= 85.0,
    );
    prop(
        "breastfeeding",
        batches(&ctx, &latest(&[k::OBS_BREASTFEEDING.code])).await?,
        &|_, _| true,
        &|_, v| v >= 1.0,
    );
    // low birth weight of term babies: weight and gestation recorded together
    let lbw_sql = format!(
        "select w.person_id, w.code, w.value as value, w.obs_date from observation w join observation g on w.person_id = g.person_id and g.code = '{}' and g.value >= 37 where w.code = '{}' and w.obs_date >= {} and w.obs_date < {}",
        k::OBS_GESTATION.code,
        k::OBS_BIRTH_WEIGHT.code,
        d(fy0),
        d(fy1)
    );
    prop(
        "low_birth_weight_term",
        batches(&ctx, &lbw_sql).await?,
        &|_, _| true,
        &|_, v| v < 2500.0,
    );
    // health checks: invited in the first year; completed after the invitation
    let hc_sql = format!(
        "select i.person_id, case when count(c.person_id) > 0 then 'done' else 'not' end as code, cast(null as double) as value, min(i.obs_date) as obs_date from observation i left join observation c on c.person_id = i.person_id and c.code = '{}' and c.obs_date >= i.obs_date and c.obs_date < i.obs_date + INTERVAL '120 days' where i.code = '{}' and i.obs_date >= {} and i.obs_date < {} group by i.person_id",
        k::OBS_HEALTH_CHECK_DONE.code,
        k::OBS_HEALTH_CHECK_INVITED.code,
        d(fy0),
        d(fy1)
    );
    prop(
        "health_check_uptake",
        batches(&ctx, &hc_sql).await?,
        &|_, _| true,
        &|c, _| c == "done",
    );

    // rates: person-years in the first year and over the span, by LA and by CCG
    let py_fy = person_years(&data, fy0, fy1, &|p| p.la, nla);
    let py_fy_ccg = person_years(&data, fy0, fy1, &|p| p.ccg, data.ccgs.len());
    let py_span = person_years(&data, data.start, data.end, &|p| p.la, nla);

    // admissions in the first year: (person, method, class, dx, los, start)
    let apc = batches(&ctx, &format!(
        "select person_id, admission_method, patient_class, primary_diagnosis, los_days, start_ts from activity where setting = 'apc' and start_ts >= TIMESTAMP '{} 00:00:00' and start_ts < TIMESTAMP '{} 00:00:00'",
        time::iso(fy0), time::iso(fy1)
    )).await?;
    let mut alcohol = vec![[0.0; 19]; nla];
    let mut em65 = vec![[0.0; 19]; data.ccgs.len()];
    let mut los80: HashMap<(usize, bool), (f64, f64)> = HashMap::new();
    for b in &apc {
        let id = b.column(0).as_primitive::<Int64Type>();
        let m = b.column(1).as_string::<i32>();
        let cls = b.column(2).as_string::<i32>();
        let dx = b.column(3).as_string::<i32>();
        let los = b.column(4).as_primitive::<Int32Type>();
        let st = b.column(5).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let Some(&pi) = data.index.get(&id.value(i)) else {
                continue;
            };
            let p = &data.people[pi];
            let day = st.value(i).div_euclid(86_400_000_000) as i32;
            let age = p.age(day);
            if !dx.is_null(i) && trent_model::codes::is_alcohol_related(dx.value(i)) {
                alcohol[p.la][band(age)] += 1.0;
            }
            let method = if m.is_null(i) { "" } else { m.value(i) };
            if method == "emergency" && age >= 65 {
                em65[p.ccg][band(age)] += 1.0;
            }
            if age >= 80
                && !los.is_null(i)
                && (method == "emergency" || (method == "elective" && cls.value(i) == "ordinary"))
            {
                let e = los80.entry((p.ccg, method == "emergency")).or_default();
                e.0 += los.value(i) as f64;
                e.1 += 1.0;
            }
        }
    }
    // A&E four-hour performance by provider over the span
    let ae = batches(&ctx, "select provider_code, count(*) as n, sum(case when date_part('epoch', end_ts) - date_part('epoch', start_ts) <= 14400 then 1 else 0 end) as ok from activity where setting = 'ae' group by provider_code").await?;
    let mut ae4: HashMap<String, (f64, f64)> = HashMap::new();
    for b in &ae {
        let p = b.column(0).as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        let ok = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            ae4.insert(
                p.value(i).to_string(),
                (ok.value(i) as f64, n.value(i) as f64),
            );
        }
    }
    // self-rated health by LA, sex, band over the span
    let mut srh = vec![[[(0.0, 0.0); 19]; 2]; nla];
    for b in batches(
        &ctx,
        &format!(
            "select person_id, value, obs_date from observation where code = '{}'",
            k::OBS_SELF_RATED_HEALTH.code
        ),
    )
    .await?
    {
        let id = b.column(0).as_primitive::<Int64Type>();
        let v = b.column(1).as_primitive::<Float64Type>();
        let dt = b.column(2).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let Some(&pi) = data.index.get(&id.value(i)) else {
                continue;
            };
            let p = &data.people[pi];
            let e = &mut srh[p.la][usize::from(!p.female)][band(p.age(dt.value(i)))];
            e.1 += 1.0;
            if v.value(i) < 0.5 {
                e.0 += 1.0;
            }
        }
    }
    // deaths over the span by LA, sex, band; under-75 by cause
    let mut deaths = vec![[[0.0; 19]; 2]; nla];
    let mut cvd = vec![[0.0; 19]; nla];
    let mut resp = vec![[0.0; 19]; nla];
    for p in &data.people {
        if let Some(dd) = p.death
            && dd >= data.start
            && dd < data.end
        {
            let bnd = band(p.age(dd));
            deaths[p.la][usize::from(!p.female)][bnd] += 1.0;
            let c = p.cause.as_deref().unwrap_or("");
            if c.starts_with('I') {
                cvd[p.la][bnd] += 1.0;
            }
            if c.starts_with('J') {
                resp[p.la][bnd] += 1.0;
            }
        }
    }
    // LD inpatients on a census day (nine months into the first year)
    let census = fy0 + 275;
    let ld = batches(&ctx, &format!(
        "select count(distinct person_id) from activity where setting = 'mental_health' and patient_class = 'inpatient' and primary_diagnosis = 'F79' and start_ts <= TIMESTAMP '{c} 00:00:00' and (end_ts is null or end_ts > TIMESTAMP '{c} 00:00:00')",
        c = time::iso(census)
    )).await?;
    let ld_n = ld
        .first()
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0) as f64)
        .unwrap_or(0.0);
    let pop_census = data.people.iter().filter(|p| p.present(census)).count() as f64;

    let mut out = Vec::new();
    for t in &area.targets {
        let (val, hw, n) = match t.measure.as_str() {
            "smoking_prevalence"
            | "adult_overweight"
            | "physical_inactivity"
            | "child_overweight_10_11"
            | "breastfeeding"
            | "low_birth_weight_term"
            | "health_check_uptake" => {
                let Some(la) = la_of(t) else { continue };
                let (num, den) = props[t.measure.as_str()][la];
                let p = if den > 0.0 { num / den } else { f64::NAN };
                (100.0 * p, 100.0 * stats::prop_hw(p, den), den)
            }
            "alcohol_admissions_dsr" => {
                let Some(la) = la_of(t) else { continue };
                let (r, hw) = stats::dsr(&alcohol[la], &both(&py_fy[la]), 0, 19);
                (r, hw, alcohol[la].iter().sum())
            }
            "u75_cvd_mortality_dsr" | "u75_resp_mortality_dsr" => {
                let Some(la) = la_of(t) else { continue };
                let ev = if t.measure.starts_with("u75_cvd") {
                    &cvd[la]
                } else {
                    &resp[la]
                };
                let (r, hw) = stats::dsr(ev, &both(&py_span[la]), 0, 15);
                (r, hw, ev[..15].iter().sum())
            }
            "life_expectancy" | "hle" => {
                let Some(la) = la_of(t) else { continue };
                let s = usize::from(t.sex.as_deref() == Some("M"));
                let bad: [(f64, f64); 19] = std::array::from_fn(|b| {
                    let (x, n) = srh[la][s][b];
                    (if n > 0.0 { x / n } else { 0.5 }, n)
                });
                let (le, le_hw, hle, hle_hw) =
                    stats::life_table(&deaths[la][s], &py_span[la][s], &bad);
                let n = deaths[la][s].iter().sum();
                if t.measure == "hle" {
                    (hle, hle_hw, n)
                } else {
                    (le, le_hw, n)
                }
            }
            "ae_4h" => {
                let Some(p) = &t.provider else { continue };
                let (ok, n) = ae4.get(p).copied().unwrap_or((0.0, 0.0));
                let v = if n > 0.0 { ok / n } else { f64::NAN };
                (100.0 * v, 100.0 * stats::prop_hw(v, n), n)
            }
            "los_over80_elective" | "los_over80_emergency" => {
                let Some(ccg) = t
                    .ccg
                    .as_ref()
                    .and_then(|c| data.ccgs.iter().position(|x| x == c))
                else {
                    continue;
                };
                let (sum, n) = los80
                    .get(&(ccg, t.measure.ends_with("emergency")))
                    .copied()
                    .unwrap_or((0.0, 0.0));
                let mean = if n > 0.0 { sum / n } else { f64::NAN };
                // LOS is roughly geometric: sd ≈ mean
                (mean, 3.29 * mean / n.max(1.0).sqrt(), n)
            }
            "emergency_65_rate_ratio" => {
                let (Some(a), Some(b)) = (
                    t.ccg
                        .as_ref()
                        .and_then(|c| data.ccgs.iter().position(|x| x == c)),
                    t.versus
                        .as_ref()
                        .and_then(|c| data.ccgs.iter().position(|x| x == c)),
                ) else {
                    continue;
                };
                let (ra, ha) = stats::dsr(&em65[a], &both(&py_fy_ccg[a]), 13, 19);
                let (rb, hb) = stats::dsr(&em65[b], &both(&py_fy_ccg[b]), 13, 19);
                let r = ra / rb;
                (
                    r,
                    r * ((ha / ra).powi(2) + (hb / rb).powi(2)).sqrt(),
                    em65[a].iter().sum::<f64>() + em65[b].iter().sum::<f64>(),
                )
            }
            "ld_inpatients_per_million" => {
                let v = ld_n / pop_census * 1e6;
                (v, 3.29 * ld_n.max(1.0).sqrt() / pop_census * 1e6, ld_n)
            }
            "population_growth" => {
                let (lo, hi) = match t.band.as_deref() {
                    Some("0-14") => (0, 14),
                    Some("65+") => (65, 200),
                    Some("85+") => (85, 200),
                    _ => (0, 200),
                };
                let count = |day: i32| {
                    data.people
                        .iter()
                        .filter(|p| p.present(day) && (lo..=hi).contains(&p.age(day)))
                        .count() as f64
                };
                let (n0, n1) = (count(data.start), count(data.end - 1));
                let years = (data.end - data.start) as f64 / 365.25;
                // compare annual rates, expressed back over five years as in the plan
                let annual = (n1 / n0).powf(1.0 / years) - 1.0;
                let g5 = 100.0 * ((1.0 + annual).powf(5.0) - 1.0);
                // binomial-ish noise of a ratio of two overlapping counts
                let hw = 100.0 * 3.29 * (1.0 / n0.max(1.0) + 1.0 / n1.max(1.0)).sqrt() * 0.5 * 5.0
                    / years.max(1.0);
                (g5, hw, n0)
            }
            _ => continue,
        };
        let tol = hw + allowance(&t.measure, t.value);
        out.push(CheckRow {
            id: t.id.clone(),
            measure: t.measure.clone(),
            target: t.value,
            generated: val,
            tolerance: tol,
            pass: val.is_finite() && (val - t.value).abs() <= tol,
            plan: t.plan,
            source: t.source.clone(),
            n,
        });
    }
    Ok(out)
}

/// The check as a table for the terminal.
pub fn render(rows: &[CheckRow]) -> String {
    let mut s = format!(
        "{:<30} {:>10} {:>10} {:>9} {:>9}  {}\n",
        "target", "plan", "generated", "± tol", "n", "result"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<30} {:>10.2} {:>10.2} {:>9.2} {:>9.0}  {}{}\n",
            r.id,
            r.target,
            r.generated,
            r.tolerance,
            r.n,
            if r.pass { "pass" } else { "FAIL" },
            if r.plan { "" } else { " (assumption)" }
        ));
    }
    let passed = rows.iter().filter(|r| r.pass).count();
    s.push_str(&format!(
        "{passed} of {} targets within tolerance\n",
        rows.len()
    ));
    s
}

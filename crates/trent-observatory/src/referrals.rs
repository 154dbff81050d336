//! The planned-care referral dashboard the plan asks for: each practice's referrals per
//! 1,000 weighted patients by specialty and financial year, against its peers.
//!
//! Weighting is indirect standardisation by age group and sex: a practice's weighted list
//! is the list it would need, at the area's average referral rates for each age group and
//! sex, to expect the referrals it would make if its patients were the area's average
//! mix. So rate per 1,000 weighted = observed ÷ weighted list × 1,000, and the ratio to
//! peers = observed ÷ expected, with exact Poisson (Byar) funnel limits on the expected.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};

use crate::compute::disclose;
use crate::definition::{Grain, Population};
use crate::engine::{self, Ctx, PersonRow};
use crate::error::ObsError;
use crate::period;
use crate::rollup::{AGE_GROUPS, Places};
use crate::stat;
use crate::views::age_sql;

/// One row of the dashboard.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReferralRow {
    /// practice code
    pub practice: String,
    /// practice name
    pub practice_name: String,
    /// specialty (treatment function code)
    pub specialty: String,
    /// financial year
    pub period: String,
    /// referrals (after disclosure control; None: 1-7)
    pub referrals: Option<f64>,
    /// registered list (mid-year)
    pub list_size: f64,
    /// age-sex weighted list
    pub weighted_list: f64,
    /// referrals per 1,000 weighted patients (None when redacted)
    pub rate_per_1000_weighted: Option<f64>,
    /// the area's rate per 1,000 patients
    pub peer_rate_per_1000: f64,
    /// observed ÷ expected (None when redacted)
    pub ratio: Option<f64>,
    /// `above_99.8`, `above_95`, `within`, `below_95`, `below_99.8` (None when redacted)
    pub position: Option<String>,
}

/// Compute the dashboard for every practice, specialty and whole financial year.
pub async fn dashboard(
    c: &Ctx,
    people: &[PersonRow],
    places: &Places,
) -> Result<Vec<ReferralRow>, ObsError> {
    let date = "t.\"referral_date\"";
    let sql = format!(
        "SELECT t.practice_code, t.specialty, {} AS fy, p.sex, {} AS age, COUNT(*) AS n FROM referral t JOIN person p ON t.person_id = p.person_id WHERE t.referral_date >= CAST({} AS DATE) AND t.referral_date < CAST({} AS DATE) GROUP BY 1, 2, 3, 4, 5",
        period::sql(Grain::FinancialYear, date),
        age_sql(date),
        format_args!("'{}'", trent_model::time::iso(c.start)),
        format_args!("'{}'", trent_model::time::iso(c.end)),
    );
    let batches = c.ctx.sql(&sql).await?.collect().await?;
    // (practice, specialty, fy) → referrals by sex × age group
    let mut obs: HashMap<(String, String, i64), [[f64; AGE_GROUPS]; 2]> = HashMap::new();
    for b in &batches {
        let s = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
        let (pr, sp, sx) = (s(0)?, s(1)?, s(3)?);
        let (pr, sp, sx) = (
            pr.as_string::<i32>(),
            sp.as_string::<i32>(),
            sx.as_string::<i32>(),
        );
        let fy = b.column(2).as_primitive::<Int64Type>();
        let age = b.column(4).as_primitive::<Int64Type>();
        let n = b.column(5).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            if pr.is_null(i) || sp.is_null(i) {
                continue;
            }
            let e = obs
                .entry((
                    pr.value(i).to_string(),
                    sp.value(i).to_string(),
                    fy.value(i),
                ))
                .or_insert([[0.0; AGE_GROUPS]; 2]);
            e[usize::from(sx.value(i) == "M")][crate::rollup::age_group(age.value(i))] +=
                n.value(i) as f64;
        }
    }
    let pop = engine::population(
        people,
        places,
        Grain::FinancialYear,
        &Population {
            ages: [0, 200],
            sex: None,
        },
        c.start,
        c.end,
    );
    let fys = period::within(Grain::FinancialYear, c.start, c.end);
    // area rates by specialty, year, sex, age group
    let mut area_refs: HashMap<(String, i64), [[f64; AGE_GROUPS]; 2]> = HashMap::new();
    for ((_, s, fy), a) in &obs {
        let e = area_refs
            .entry((s.clone(), *fy))
            .or_insert([[0.0; AGE_GROUPS]; 2]);
        for x in 0..2 {
            for g in 0..AGE_GROUPS {
                e[x][g] += a[x][g];
            }
        }
    }
    let stp_pop = |fy: i64| {
        pop.get(&crate::rollup::Key {
            level: 0,
            place: places.stp,
            period: fy,
            breakdown: 0,
            value: 0,
        })
    };
    let mut out = vec![];
    let mut practices: Vec<(&u32, &[u32; 5])> = places.practice_chain.iter().collect();
    practices.sort_by_key(|(p, _)| places.codes[**p as usize].clone());
    let mut specs: Vec<&(String, i64)> = area_refs.keys().collect();
    specs.sort();
    for &(ref spec, fy) in specs {
        if !fys.contains(&fy) {
            continue;
        }
        let Some(sp) = stp_pop(fy) else { continue };
        let refs = &area_refs[&(spec.clone(), fy)];
        let (tot_r, tot_py): (f64, f64) = (
            refs.iter().flatten().sum(),
            sp.iter().flatten().map(|c| c.py).sum(),
        );
        if tot_py <= 0.0 || tot_r <= 0.0 {
            continue;
        }
        let crude = tot_r / tot_py;
        for &(&pi, _) in &practices {
            let key = crate::rollup::Key {
                level: 5,
                place: pi,
                period: fy,
                breakdown: 0,
                value: 0,
            };
            let Some(pp) = pop.get(&key) else { continue };
            let code = &places.codes[pi as usize];
            let mut expected = 0.0;
            let mut list = 0.0;
            for x in 0..2 {
                for g in 0..AGE_GROUPS {
                    let area_py = sp[x][g].py;
                    if area_py > 0.0 {
                        expected += pp[x][g].py * refs[x][g] / area_py;
                    }
                    list += pp[x][g].py;
                }
            }
            if list <= 0.0 {
                continue;
            }
            let o = obs
                .get(&(code.clone(), spec.clone(), fy))
                .map(|a| a.iter().flatten().sum::<f64>())
                .unwrap_or(0.0);
            let weighted = expected / crude;
            let shown = disclose(o);
            let position = |o: f64| {
                let (l95, u95) = stat::funnel_poisson(expected, 1.959_963_984_540_054);
                let (l998, u998) = stat::funnel_poisson(expected, 3.090_232_306_167_813);
                if o > u998 {
                    "above_99.8"
                } else if o > u95 {
                    "above_95"
                } else if o < l998 {
                    "below_99.8"
                } else if o < l95 {
                    "below_95"
                } else {
                    "within"
                }
                .to_string()
            };
            out.push(ReferralRow {
                practice: code.clone(),
                practice_name: places.names[pi as usize].clone(),
                specialty: spec.clone(),
                period: period::label(Grain::FinancialYear, fy),
                referrals: shown,
                list_size: (list / 5.0).round() * 5.0,
                weighted_list: (weighted / 5.0).round() * 5.0,
                rate_per_1000_weighted: shown.and(if weighted > 0.0 {
                    Some(o / weighted * 1000.0)
                } else {
                    None
                }),
                peer_rate_per_1000: crude * 1000.0,
                ratio: shown.and(if expected > 0.0 {
                    Some(o / expected)
                } else {
                    None
                }),
                position: shown.map(|_| position(o)),
            });
        }
    }
    Ok(out)
}

//! Calibration: tune the model's free parameters so that the generated area matches
//! its targets, before a single person is generated.
//!
//! A calibration cohort (a large, seeded sample of each local authority's population
//! drawn with the same functions the simulation uses) gives the expected value of every
//! target as a function of one parameter, which is then solved for: a logistic
//! intercept (prevalences), a multiplier (rates), or a bisection through a life table
//! (life expectancy, healthy life expectancy). Where the area file has no target for a
//! local authority, England's value is used. `trent synth --check` then measures what
//! the generated lake actually shows.

use std::collections::HashMap;

use trent_places::Area;

use crate::geo::Geo;
use crate::model::{self, N_COND, Person};
use crate::rng::Rng;
use crate::stats::{self, bisect, logistic, solve_intercept};

/// England values used when an area file states no target for a local authority.
/// (measure, value, source)
pub const ENGLAND: &[(&str, f64, &str)] = &[
    (
        "smoking_prevalence",
        16.9,
        "PHE Local Tobacco Control Profiles, England 2015",
    ),
    (
        "adult_overweight",
        64.8,
        "PHE Active People Survey, England 2013-15",
    ),
    (
        "child_overweight_10_11",
        33.2,
        "NCMP England 2014/15, Year 6",
    ),
    (
        "physical_inactivity",
        28.7,
        "PHE Active People Survey, England 2015",
    ),
    (
        "breastfeeding",
        43.8,
        "PHE, breastfeeding at 6-8 weeks, England 2014/15",
    ),
    (
        "low_birth_weight_term",
        2.86,
        "PHE, low birth weight of term babies, England 2014",
    ),
    (
        "health_check_uptake",
        48.9,
        "PHE NHS Health Check, England 2013-16",
    ),
    (
        "alcohol_admissions_dsr",
        641.0,
        "PHE LAPE, narrow measure, England 2014/15",
    ),
    ("u75_cvd_mortality_dsr", 49.2, "seed 004 line 387, England"),
    ("u75_resp_mortality_dsr", 17.8, "seed 004 line 387, England"),
    ("life_expectancy_M", 79.5, "ONS, England 2012-14"),
    ("life_expectancy_F", 83.2, "ONS, England 2012-14"),
    ("hle_M", 63.4, "seed 004 line 367, England"),
    ("hle_F", 64.0, "seed 004 line 367, England"),
    (
        "ld_inpatients_per_million",
        45.0,
        "NHS England, January 2016 (approx.)",
    ),
];

fn england(measure: &str) -> f64 {
    ENGLAND
        .iter()
        .find(|e| e.0 == measure)
        .map(|e| e.1)
        .expect("known measure")
}

/// The solved parameters.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// smoking intercept per LA
    pub smoking: Vec<f64>,
    /// overweight intercept per LA
    pub overweight: Vec<f64>,
    /// inactivity intercept per LA
    pub inactive: Vec<f64>,
    /// harmful drinking intercept (about 8% of adults)
    pub harmful_alcohol: f64,
    /// child overweight intercept per LA
    pub child_overweight: Vec<f64>,
    /// breastfeeding intercept per LA
    pub breastfeeding: Vec<f64>,
    /// health check uptake intercept per LA
    pub health_check: Vec<f64>,
    /// mean term birth weight (g) per LA
    pub birth_weight_mean: Vec<f64>,
    /// fertility scale (multiplies the age-specific rates) per LA
    pub fertility_scale: Vec<f64>,
    /// centring of personal condition effects
    pub cond_centre: [f64; N_COND],
    /// relative-risk normalisers by cause, sex (0 F, 1 M), band
    pub rr_norm: [[[f64; 19]; 2]; 4],
    /// CVD mortality multiplier per LA
    pub m_cvd: Vec<f64>,
    /// respiratory mortality multiplier per LA
    pub m_resp: Vec<f64>,
    /// other-cause mortality multiplier per LA and sex
    pub m_other: Vec<[f64; 2]>,
    /// not-good-health intercept per LA and sex
    pub srh: Vec<[f64; 2]>,
    /// alcohol admission multiplier per LA
    pub m_alcohol: Vec<f64>,
    /// emergency admission multiplier for people 65+ per CCG
    pub emerg65: Vec<f64>,
    /// share of adults with a learning disability in inpatient care at any time
    pub ld_inpatient_share: f64,
    /// A&E 4-hour breach probability by provider
    pub ae_breach: HashMap<String, f64>,
    /// mean LOS multiplier for 80+ per CCG: (elective, emergency)
    pub los80: Vec<(f64, f64)>,
    /// 5-year growth of bands 0-14, 15-64, 65-84, 85+
    pub growth: [f64; 4],
    /// extra annual moves out by band where ageing alone would outgrow the target
    pub extra_out: [f64; 4],
}

/// Age-specific fertility (births per woman per year), ages 15-19 … 40-44, before scaling.
pub const FERTILITY: [f64; 6] = [0.014, 0.055, 0.095, 0.105, 0.058, 0.013];

/// Fertility of a woman of an age (unscaled).
pub fn fertility(age: i32) -> f64 {
    if (15..45).contains(&age) {
        FERTILITY[((age - 15) / 5) as usize]
    } else {
        0.0
    }
}

/// Standard deviation of term birth weight, grams.
pub const BIRTH_WEIGHT_SD: f64 = 480.0;

/// Birth-weight shift (g) for deprivation and maternal smoking.
pub fn birth_weight_shift(decile: u8, mother_smokes: bool) -> f64 {
    -25.0 * model::dep(decile) - if mother_smokes { 200.0 } else { 0.0 }
}

/// Mean LOS (days) by age for ordinary elective and emergency spells, national; the
/// over-80 values are England's (seed 004 line 380).
pub fn los_mean(age: i32, emergency: bool) -> f64 {
    let a = age as f64;
    if emergency {
        if age >= 80 {
            7.42
        } else {
            (0.8 + 0.075 * a).min(7.0)
        }
    } else if age >= 80 {
        4.61
    } else {
        2.0 + 0.03 * a
    }
}

/// A cohort member with their LSOA resolved.
pub struct Member {
    /// the person
    pub p: Person,
    /// age at the start
    pub age: i32,
    /// LA index
    pub la: usize,
    /// decile
    pub decile: u8,
    /// CCG index
    pub ccg: usize,
}

/// Draw a person's demographics at `day` in an LSOA (no lifestyle or conditions yet).
pub fn draw_demographics(
    rng: &mut Rng,
    geo: &Geo,
    lsoa: usize,
    day: i32,
    band_override: Option<(i32, i32)>,
) -> (Person, i32) {
    let l = &geo.lsoas[lsoa];
    let age = match band_override {
        Some((lo, hi)) => {
            // arrivals follow the area's age profile within the band, weighted towards
            // the ages that move most (so arrivals mirror leavers)
            let cum = &geo.age_cum[l.la];
            let w: Vec<f64> = (0..19)
                .map(|b| {
                    let share = cum[b] - if b > 0 { cum[b - 1] } else { 0.0 };
                    let (b0, b1) = (b as i32 * 5, if b == 18 { 105 } else { b as i32 * 5 + 4 });
                    let overlap =
                        (b1.min(hi) - b0.max(lo) + 1).max(0) as f64 / (b1 - b0 + 1) as f64;
                    share * overlap * move_factor(b0 + 2)
                })
                .collect();
            let b = rng.pick_cum(&crate::rng::cumulative(w)) as i32;
            let (b0, b1) = (
                (b * 5).max(lo),
                (if b == 18 { 100 } else { b * 5 + 4 }).min(hi),
            );
            b0 + rng.below((b1 - b0 + 1).max(1) as u64) as i32
        }
        None => {
            let b = rng.pick_cum(&geo.age_cum[l.la]);
            let top = if b == 18 { 10 } else { 5 };
            (b as i32) * 5 + rng.below(top) as i32
        }
    };
    let b = stats::band(age);
    let female = !rng.chance(geo.male[l.la][b]);
    let birth = day - (age as f64 * 365.25) as i32 - rng.below(365) as i32 - 1;
    let (codes, cum) = &geo.eth[l.la];
    let eth_code = &codes[rng.pick_cum(cum)];
    let p = Person {
        id: 0,
        female,
        birth,
        lsoa: lsoa as u32,
        practice: 0,
        eth: intern_eth(eth_code),
        u: rng.gamma(2.0) / 2.0,
        smoke: 0,
        bmi: 0.0,
        harmful_alcohol: false,
        alcohol_units: 0.0,
        inactive: false,
        conds: 0,
        onset: [0; N_COND],
        reg_start: day,
        moved_out: None,
        death: None,
        death_cause: None,
        care_home: None,
        home_care_until: None,
        direct_payment: false,
        mh_inpatient_until: None,
        recent_emergencies: 0,
        mother_smoked: false,
        last_lsoa: lsoa as u32,
    };
    let age = model::age_on(birth, day);
    (p, age)
}

/// Ethnicity codes as static strings.
pub fn intern_eth(code: &str) -> &'static str {
    const CODES: [&str; 17] = [
        "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z",
    ];
    CODES.iter().find(|c| **c == code).copied().unwrap_or("Z")
}

fn target(area: &Area, measure: &str, la: &str, sex: Option<&str>) -> Option<f64> {
    area.targets
        .iter()
        .find(|t| {
            t.measure == measure
                && t.la.as_deref() == Some(la)
                && (sex.is_none() || t.sex.as_deref() == sex)
        })
        .map(|t| t.value)
}

/// Solve every parameter for an area. Deterministic for a seed.
pub fn calibrate(area: &Area, geo: &Geo, start: i32, seed: u64) -> Calibration {
    const PER_LA: usize = 80_000;
    let nla = geo.las.len();
    let mut rng = Rng::stream(seed, u64::MAX);
    // cohort demographics, LSOAs drawn by population within each LA
    let mut cohort: Vec<Member> = Vec::with_capacity(PER_LA * nla);
    for la in 0..nla {
        let idx: Vec<usize> = (0..geo.lsoas.len())
            .filter(|i| geo.lsoas[*i].la == la)
            .collect();
        let cum = crate::rng::cumulative(idx.iter().map(|i| geo.lsoas[*i].population as f64));
        for _ in 0..PER_LA {
            let lsoa = idx[rng.pick_cum(&cum)];
            let (p, age) = draw_demographics(&mut rng, geo, lsoa, start, None);
            let l = &geo.lsoas[lsoa];
            cohort.push(Member {
                p,
                age,
                la,
                decile: l.decile,
                ccg: l.ccg,
            });
        }
    }
    let la_code = |la: usize| geo.las[la].as_str();
    let solve_adult =
        |f: &dyn Fn(&Member) -> f64, measure: &str, pred: &dyn Fn(&Member) -> bool| -> Vec<f64> {
            (0..nla)
                .map(|la| {
                    let t = target(area, measure, la_code(la), None)
                        .unwrap_or_else(|| england(measure))
                        / 100.0;
                    let s: Vec<(f64, f64)> = cohort
                        .iter()
                        .filter(|m| m.la == la && pred(m))
                        .map(|m| (1.0, f(m)))
                        .collect();
                    solve_intercept(&s, t)
                })
                .collect()
        };
    use model::LifestyleLp as L;
    let adult = |m: &Member| m.age >= 18;
    let smoking = solve_adult(
        &|m| L::smoking(m.age, m.p.female, m.decile, m.p.eth),
        "smoking_prevalence",
        &adult,
    );
    let overweight = solve_adult(
        &|m| L::overweight(m.age, m.p.female, m.decile, m.p.eth),
        "adult_overweight",
        &adult,
    );
    let inactive = solve_adult(
        &|m| L::inactive(m.age, m.p.female, m.decile, m.p.eth),
        "physical_inactivity",
        &adult,
    );
    let child_overweight = solve_adult(
        &|m| L::child_overweight(m.decile),
        "child_overweight_10_11",
        &|m| m.age == 10,
    );
    let health_check = solve_adult(
        &|m| L::health_check(m.age, m.decile),
        "health_check_uptake",
        &|m| (40..75).contains(&m.age),
    );
    let harmful_alcohol = {
        let s: Vec<(f64, f64)> = cohort
            .iter()
            .filter(|m| m.age >= 18)
            .map(|m| {
                (
                    1.0,
                    L::harmful_alcohol(m.age, m.p.female, m.decile, m.p.eth),
                )
            })
            .collect();
        solve_intercept(&s, 0.08)
    };
    // mothers: women 15-44 weighted by fertility
    fn mothers(cohort: &[Member], la: usize) -> Vec<&Member> {
        cohort
            .iter()
            .filter(|m| m.la == la && m.p.female && fertility(m.age) > 0.0)
            .collect()
    }
    let breastfeeding: Vec<f64> = (0..nla)
        .map(|la| {
            let t = target(area, "breastfeeding", la_code(la), None)
                .unwrap_or_else(|| england("breastfeeding"))
                / 100.0;
            let s: Vec<(f64, f64)> = mothers(&cohort, la)
                .iter()
                .map(|m| (fertility(m.age), L::breastfeeding(m.age, m.decile, m.p.eth)))
                .collect();
            solve_intercept(&s, t)
        })
        .collect();
    let fertility_scale: Vec<f64> = (0..nla)
        .map(|la| {
            let w = mothers(&cohort, la);
            let mean = w.iter().map(|m| fertility(m.age)).sum::<f64>() / w.len().max(1) as f64;
            area.demography.births_per_1000_women_15_44 / 1000.0 / mean.max(1e-9)
        })
        .collect();
    let mut cal = Calibration {
        smoking,
        overweight,
        inactive,
        harmful_alcohol,
        child_overweight,
        breastfeeding,
        health_check,
        birth_weight_mean: vec![3400.0; nla],
        fertility_scale,
        cond_centre: [0.0; N_COND],
        rr_norm: [[[1.0; 19]; 2]; 4],
        m_cvd: vec![1.0; nla],
        m_resp: vec![1.0; nla],
        m_other: vec![[1.0; 2]; nla],
        srh: vec![[0.0; 2]; nla],
        m_alcohol: vec![1.0; nla],
        emerg65: vec![1.0; geo.ccgs.len()],
        ld_inpatient_share: 0.0,
        ae_breach: HashMap::new(),
        los80: vec![(1.0, 1.0); geo.ccgs.len()],
        growth: [0.0; 4],
        extra_out: [0.0; 4],
    };
    // lifestyle for the cohort (mothers' smoking feeds birth weight)
    for m in cohort.iter_mut() {
        model::draw_lifestyle(&mut rng, &mut m.p, m.age, m.decile, m.la, &cal);
    }
    // birth weight: mean such that P(term weight < 2500 g) hits the target
    for la in 0..nla {
        let t = target(area, "low_birth_weight_term", la_code(la), None)
            .unwrap_or_else(|| england("low_birth_weight_term"))
            / 100.0;
        let ms = mothers(&cohort, la);
        let shifts: Vec<(f64, f64)> = ms
            .iter()
            .map(|m| {
                (
                    fertility(m.age),
                    birth_weight_shift(m.decile, m.p.smoke == model::CURRENT),
                )
            })
            .collect();
        let wsum: f64 = shifts.iter().map(|s| s.0).sum();
        let f = |mu: f64| -> f64 {
            let p: f64 = shifts
                .iter()
                .map(|(w, s)| w * stats::norm_cdf((2500.0 - mu - s) / BIRTH_WEIGHT_SD))
                .sum::<f64>()
                / wsum;
            t - p // increasing in mu
        };
        cal.birth_weight_mean[la] = bisect(f, 2000.0, 4500.0);
    }
    // conditions in dependency order, centring each on the cohort
    for k in 0..N_COND {
        let adults: Vec<f64> = cohort
            .iter()
            .filter(|m| m.age >= 18)
            .map(|m| model::cond_effects(k, &m.p, m.decile))
            .collect();
        cal.cond_centre[k] = adults.iter().sum::<f64>() / adults.len().max(1) as f64;
        for m in cohort.iter_mut() {
            let pr = model::cond_prob(k, &m.p, m.age as f64, m.decile, &cal);
            if rng.chance(pr) {
                m.p.conds |= 1 << k;
            }
        }
    }
    // mortality: normalise relative risks by sex and band over the whole cohort
    let mut sums = [[[0.0; 19]; 2]; 4];
    let mut counts = [[0.0; 19]; 2];
    for m in &cohort {
        let s = usize::from(!m.p.female);
        let b = stats::band(m.age);
        let rr = model::death_rr(&m.p);
        counts[s][b] += 1.0;
        for k in 0..4 {
            sums[k][s][b] += rr[k] * m.p.u.powf(0.3);
        }
    }
    for k in 0..4 {
        for s in 0..2 {
            for b in 0..19 {
                cal.rr_norm[k][s][b] = if counts[s][b] > 0.0 {
                    sums[k][s][b] / counts[s][b]
                } else {
                    1.0
                };
            }
        }
    }
    // band means of each cause's hazard (multipliers at 1) per LA and sex
    let mut haz = vec![[[[0.0; 19]; 2]; 4]; nla];
    let mut n = vec![[[0.0f64; 19]; 2]; nla];
    let unit = cal.clone_with_unit_mortality();
    for m in &cohort {
        let s = usize::from(!m.p.female);
        let b = stats::band(m.age);
        let h = model::death_hazards(&m.p, m.age, m.la, &unit);
        n[m.la][s][b] += 1.0;
        for k in 0..4 {
            haz[m.la][k][s][b] += h[k];
        }
    }
    for la in 0..nla {
        for k in 0..4 {
            for s in 0..2 {
                for b in 0..19 {
                    haz[la][k][s][b] /= n[la][s][b].max(1.0);
                }
            }
        }
        // u75 DSR, both sexes, from band means weighted by the cohort's sex mix
        let both = |k: usize, b: usize| {
            let t = n[la][0][b] + n[la][1][b];
            if t > 0.0 {
                (haz[la][k][0][b] * n[la][0][b] + haz[la][k][1][b] * n[la][1][b]) / t
            } else {
                0.0
            }
        };
        let u75 = |k: usize| {
            let w: f64 = stats::ESP2013[..15].iter().sum();
            (0..15)
                .map(|b| stats::ESP2013[b] / w * both(k, b))
                .sum::<f64>()
                * 1e5
        };
        let t_cvd = target(area, "u75_cvd_mortality_dsr", la_code(la), None)
            .unwrap_or_else(|| england("u75_cvd_mortality_dsr"));
        let t_resp = target(area, "u75_resp_mortality_dsr", la_code(la), None)
            .unwrap_or_else(|| england("u75_resp_mortality_dsr"));
        cal.m_cvd[la] = t_cvd / u75(model::CVD).max(1e-9);
        cal.m_resp[la] = t_resp / u75(model::RESP).max(1e-9);
        for (s, sex) in [(0usize, "F"), (1usize, "M")] {
            let le_t = target(area, "life_expectancy", la_code(la), Some(sex))
                .unwrap_or_else(|| england(&format!("life_expectancy_{sex}")));
            let fixed: Vec<f64> = (0..19)
                .map(|b| {
                    cal.m_cvd[la] * haz[la][model::CVD][s][b]
                        + cal.m_resp[la] * haz[la][model::RESP][s][b]
                        + haz[la][model::CANCER][s][b]
                })
                .collect();
            let other: Vec<f64> = (0..19).map(|b| haz[la][model::OTHER][s][b]).collect();
            let le_of = |mult: f64| {
                let deaths: [f64; 19] = std::array::from_fn(|b| fixed[b] + mult * other[b]);
                stats::life_table(&deaths, &[1.0; 19], &[(0.0, 0.0); 19]).0
            };
            // LE decreases with the multiplier
            cal.m_other[la][s] = bisect(|x| le_t - le_of(x), 0.01, 20.0);
            let deaths: [f64; 19] =
                std::array::from_fn(|b| fixed[b] + cal.m_other[la][s] * other[b]);
            let hle_t = target(area, "hle", la_code(la), Some(sex))
                .unwrap_or_else(|| england(&format!("hle_{sex}")));
            let members: Vec<&Member> = cohort
                .iter()
                .filter(|m| m.la == la && usize::from(!m.p.female) == s)
                .collect();
            let lps: Vec<(usize, f64)> = members
                .iter()
                .map(|m| {
                    (
                        stats::band(m.age),
                        model::bad_health_lp(&m.p, m.age, m.decile),
                    )
                })
                .collect();
            let hle_of = |h: f64| {
                let mut acc = [(0.0, 0.0); 19];
                for (b, lp) in &lps {
                    acc[*b].0 += logistic(h + lp);
                    acc[*b].1 += 1.0;
                }
                let bad: [(f64, f64); 19] = std::array::from_fn(|b| {
                    (
                        if acc[b].1 > 0.0 {
                            acc[b].0 / acc[b].1
                        } else {
                            0.5
                        },
                        0.0,
                    )
                });
                stats::life_table(&deaths, &[1.0; 19], &bad).2
            };
            cal.srh[la][s] = bisect(|h| hle_t - hle_of(h), -20.0, 20.0);
        }
        // alcohol-related admissions: DSR over all ages
        let mut ev = [0.0; 19];
        let mut py = [0.0; 19];
        for m in cohort.iter().filter(|m| m.la == la) {
            let b = stats::band(m.age);
            ev[b] += model::alcohol_rate(&m.p, m.age);
            py[b] += 1.0;
        }
        let t = target(area, "alcohol_admissions_dsr", la_code(la), None)
            .unwrap_or_else(|| england("alcohol_admissions_dsr"));
        cal.m_alcohol[la] = t / stats::dsr(&ev, &py, 0, 19).0.max(1e-9);
    }
    // emergency admissions 65+: rate ratio between two CCGs
    for t in area.targets_for("emergency_65_rate_ratio") {
        let (Some(a), Some(b)) = (&t.ccg, &t.versus) else {
            continue;
        };
        let ia = geo.ccgs.iter().position(|c| c == a).expect("validated");
        let ib = geo.ccgs.iter().position(|c| c == b).expect("validated");
        let rate = |ccg: usize| {
            let mut ev = [0.0; 19];
            let mut py = [0.0; 19];
            for m in cohort.iter().filter(|m| m.ccg == ccg && m.age >= 65) {
                let bb = stats::band(m.age);
                ev[bb] += model::emergency_rate(&m.p, m.age, m.decile);
                py[bb] += 1.0;
            }
            stats::dsr(&ev, &py, 13, 19).0
        };
        cal.emerg65[ia] = t.value * rate(ib) / rate(ia).max(1e-9);
    }
    // learning disability inpatients per million of the whole population
    let per_million = area
        .targets_for("ld_inpatients_per_million")
        .next()
        .map(|t| t.value)
        .unwrap_or_else(|| england("ld_inpatients_per_million"));
    let ld_adults = cohort
        .iter()
        .filter(|m| m.p.has(model::c::LD) && (18..65).contains(&m.age))
        .count() as f64;
    cal.ld_inpatient_share =
        (per_million * 1e-6 * cohort.len() as f64 / ld_adults.max(1.0)).min(0.5);
    // A&E four-hour performance by provider; others at England's 90.3%
    for p in &area.providers {
        let perf = area
            .targets_for("ae_4h")
            .find(|t| t.provider.as_deref() == Some(p.code.as_str()))
            .map(|t| t.value)
            .unwrap_or(90.3);
        cal.ae_breach.insert(p.code.clone(), 1.0 - perf / 100.0);
    }
    for (i, ccg) in geo.ccgs.iter().enumerate() {
        let el = area
            .targets_for("los_over80_elective")
            .find(|t| t.ccg.as_deref() == Some(ccg))
            .map(|t| t.value / los_mean(85, false))
            .unwrap_or(1.0);
        let em = area
            .targets_for("los_over80_emergency")
            .find(|t| t.ccg.as_deref() == Some(ccg))
            .map(|t| t.value / los_mean(85, true))
            .unwrap_or(1.0);
        cal.los80[i] = (el, em);
    }
    // growth: 0-14 and 65+ and 85+ from targets; 15-64 and 65-84 so that the total holds
    let g = |band: &str, dflt: f64| {
        area.targets_for("population_growth")
            .find(|t| t.band.as_deref() == Some(band))
            .map(|t| t.value / 100.0)
            .unwrap_or(dflt)
    };
    let (g_all, g014, g65, g85) = (
        g("all", 0.03),
        g("0-14", 0.03),
        g("65+", 0.05),
        g("85+", 0.1),
    );
    let share = |lo: i32, hi: i32| {
        cohort.iter().filter(|m| (lo..=hi).contains(&m.age)).count() as f64 / cohort.len() as f64
    };
    let (s014, s1564, s6584, s85) = (share(0, 14), share(15, 64), share(65, 84), share(85, 200));
    let g6584 = (g65 * (s6584 + s85) - g85 * s85) / s6584.max(1e-9);
    let g1564 = (g_all - g014 * s014 - g65 * (s6584 + s85)) / s1564.max(1e-9);
    cal.growth = [g014, g1564, g6584, g85];
    // Natural change by band per year (ageing in − ageing out − deaths − moves out), and
    // the extra moving away that brings it below the target. Arrivals then top each
    // partition up to the target at every year end (`sim`). Topping up can only add
    // people, so natural change must come out *below* the target everywhere, sampling
    // noise included: hence the margin. For the old bands the cohort is projected five
    // years ahead (who is 80-84 now is who is 85+ later); the young bands use the
    // cross-section (their inflow is births, which the cohort does not project).
    let bands = [(0, 14), (15, 64), (65, 84), (85, 200)];
    let years = 5;
    for (bi, (lo, hi)) in bands.iter().enumerate() {
        let moves =
            |age: i32| area.demography.annual_moves_out_per_1000 / 1000.0 * move_factor(age);
        let natural = if bi >= 2 {
            let (mut n0, mut n5) = (0.0f64, 0.0f64);
            for m in &cohort {
                if (*lo..=*hi).contains(&m.age) {
                    n0 += 1.0;
                }
                let mut w = 1.0;
                for t in 0..years {
                    let a = m.age + t;
                    let h: f64 = model::death_hazards(&m.p, a, m.la, &cal).iter().sum();
                    w *= (1.0 - h - moves(a)).max(0.0);
                }
                if (*lo..=*hi).contains(&(m.age + years)) {
                    n5 += w;
                }
            }
            (n5 / n0.max(1.0)).powf(1.0 / years as f64) - 1.0
        } else {
            let mut n = 0.0f64;
            let mut flow = 0.0f64;
            for m in &cohort {
                let h: f64 = model::death_hazards(&m.p, m.age, m.la, &cal).iter().sum();
                if (*lo..=*hi).contains(&m.age) {
                    n += 1.0;
                    flow -= h + moves(m.age);
                    if m.age == *hi {
                        flow -= 1.0;
                    }
                } else if m.age == lo - 1 {
                    flow += 1.0 - h;
                }
            }
            flow / n.max(1.0)
        };
        let want = (1.0 + cal.growth[bi]).powf(1.0 / years as f64) - 1.0;
        cal.extra_out[bi] = (natural - want + GROWTH_MARGIN[bi]).max(0.0);
        if std::env::var_os("TRENT_DEBUG_CAL").is_some() {
            eprintln!(
                "growth band {bi}: natural {natural:.4}/yr, target {want:.4}/yr, extra out {:.4}/yr",
                cal.extra_out[bi]
            );
        }
    }
    cal
}

/// Extra yearly moving away, per growth band, beyond what brings natural change down to
/// the target: room for the year-end top-up to absorb partition-level noise (the 85+ band
/// of a partition is small, so its noise is largest).
pub const GROWTH_MARGIN: [f64; 4] = [0.0, 0.0, 0.01, 0.02];

/// Relative propensity to move away by age (students and young adults most).
pub fn move_factor(age: i32) -> f64 {
    match age {
        0..18 => 0.8,
        18..30 => 2.5,
        30..45 => 1.2,
        45..65 => 0.6,
        _ => 0.4,
    }
}

/// Growth band (0-14, 15-64, 65-84, 85+) of an age.
pub fn growth_band(age: i32) -> usize {
    match age {
        ..15 => 0,
        15..65 => 1,
        65..85 => 2,
        _ => 3,
    }
}

impl Calibration {
    fn clone_with_unit_mortality(&self) -> Calibration {
        let mut c = self.clone();
        c.m_cvd.iter_mut().for_each(|x| *x = 1.0);
        c.m_resp.iter_mut().for_each(|x| *x = 1.0);
        c.m_other.iter_mut().for_each(|x| *x = [1.0; 2]);
        c
    }
}

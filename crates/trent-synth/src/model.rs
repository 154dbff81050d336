//! The causal, person-level model: who a person is, what risks they carry, which
//! long-term conditions they have, and how likely they are to die, use care or feel
//! unwell. Everything is a function of the person and calibrated parameters, so the
//! same functions serve the calibration cohort and the full simulation.
//!
//! Chain of causes: age, sex, ethnicity and deprivation → lifestyle (smoking, weight,
//! alcohol, inactivity) → long-term conditions (with dependencies: diabetes and
//! hypertension raise heart and kidney disease …) → frailty, care use, social care,
//! death. A per-person random effect (mean 1) carries unmeasured need, so past use
//! predicts future use as it does in real data.
//!
//! Prevalence curves are approximate England figures (QOF 2015/16 registers by age,
//! Health Survey for England 2014); relative risks are rounded from the usual published
//! ranges. They are generator settings, not findings.

use crate::calibrate::Calibration;
use crate::rng::Rng;
use crate::stats::logistic;
use trent_model::codes::CONDITIONS;

/// Condition indices (positions in `trent_model::codes::CONDITIONS`).
#[allow(missing_docs)]
pub mod c {
    pub const HYPERTENSION: usize = 0;
    pub const DIABETES: usize = 1;
    pub const CHD: usize = 2;
    pub const HF: usize = 3;
    pub const STROKE: usize = 4;
    pub const AF: usize = 5;
    pub const COPD: usize = 6;
    pub const ASTHMA: usize = 7;
    pub const CANCER: usize = 8;
    pub const DEMENTIA: usize = 9;
    pub const SMI: usize = 10;
    pub const DEPRESSION: usize = 11;
    pub const LD: usize = 12;
    pub const OA: usize = 13;
    pub const CKD: usize = 14;
    pub const EPILEPSY: usize = 15;
    pub const RA: usize = 16;
    pub const PARKINSONS: usize = 17;
    pub const OSTEOPOROSIS: usize = 18;
    pub const ALCOHOL_DEP: usize = 19;
    pub const LIVER: usize = 20;
    pub const PVD: usize = 21;
}

/// Number of conditions.
pub const N_COND: usize = 22;

/// Prevalence anchors (age, percent) per condition, interpolated on the logit scale.
const ANCHORS: [&[(f64, f64)]; N_COND] = [
    &[
        (0.0, 0.01),
        (20.0, 0.5),
        (40.0, 5.0),
        (60.0, 28.0),
        (80.0, 60.0),
        (95.0, 68.0),
    ],
    &[
        (0.0, 0.02),
        (20.0, 0.3),
        (40.0, 2.5),
        (60.0, 11.0),
        (80.0, 18.0),
        (95.0, 15.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.01),
        (40.0, 0.5),
        (60.0, 6.0),
        (80.0, 16.0),
        (95.0, 20.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.01),
        (40.0, 0.1),
        (60.0, 1.0),
        (80.0, 6.0),
        (95.0, 12.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.05),
        (40.0, 0.3),
        (60.0, 2.5),
        (80.0, 8.0),
        (95.0, 12.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.02),
        (40.0, 0.2),
        (60.0, 2.5),
        (80.0, 12.0),
        (95.0, 18.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.01),
        (40.0, 0.4),
        (60.0, 3.5),
        (80.0, 8.0),
        (95.0, 7.0),
    ],
    &[
        (0.0, 0.5),
        (8.0, 8.0),
        (20.0, 8.0),
        (40.0, 6.0),
        (60.0, 6.0),
        (80.0, 6.0),
    ],
    &[
        (0.0, 0.02),
        (20.0, 0.1),
        (40.0, 0.7),
        (60.0, 4.0),
        (80.0, 9.0),
        (95.0, 10.0),
    ],
    &[
        (0.0, 0.0),
        (40.0, 0.02),
        (60.0, 0.4),
        (70.0, 2.0),
        (80.0, 8.0),
        (90.0, 25.0),
    ],
    &[
        (0.0, 0.0),
        (15.0, 0.2),
        (20.0, 0.6),
        (40.0, 1.1),
        (60.0, 1.0),
        (80.0, 0.8),
    ],
    &[
        (0.0, 0.0),
        (12.0, 0.5),
        (20.0, 6.0),
        (40.0, 10.0),
        (60.0, 11.0),
        (80.0, 9.0),
    ],
    &[
        (0.0, 0.45),
        (20.0, 0.45),
        (40.0, 0.42),
        (60.0, 0.35),
        (80.0, 0.15),
        (95.0, 0.1),
    ],
    &[
        (0.0, 0.0),
        (30.0, 0.3),
        (45.0, 3.0),
        (60.0, 12.0),
        (80.0, 25.0),
        (95.0, 28.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.05),
        (40.0, 0.5),
        (60.0, 4.0),
        (80.0, 20.0),
        (95.0, 30.0),
    ],
    &[
        (0.0, 0.2),
        (10.0, 0.6),
        (20.0, 0.7),
        (40.0, 0.8),
        (60.0, 0.9),
        (80.0, 1.0),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.1),
        (40.0, 0.4),
        (60.0, 1.2),
        (80.0, 2.0),
        (95.0, 2.0),
    ],
    &[
        (0.0, 0.0),
        (40.0, 0.01),
        (60.0, 0.3),
        (80.0, 1.5),
        (95.0, 2.0),
    ],
    &[
        (0.0, 0.0),
        (40.0, 0.1),
        (60.0, 2.0),
        (80.0, 8.0),
        (95.0, 12.0),
    ],
    &[
        (0.0, 0.0),
        (16.0, 0.2),
        (20.0, 0.8),
        (40.0, 1.5),
        (60.0, 1.3),
        (80.0, 0.4),
    ],
    &[
        (0.0, 0.0),
        (20.0, 0.02),
        (40.0, 0.3),
        (60.0, 0.9),
        (80.0, 0.8),
        (95.0, 0.6),
    ],
    &[
        (0.0, 0.0),
        (40.0, 0.05),
        (60.0, 1.0),
        (80.0, 3.5),
        (95.0, 5.0),
    ],
];

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

/// Baseline log-odds of a condition at an age, before personal risk factors.
pub fn age_logit(cond: usize, age: f64) -> f64 {
    let a = ANCHORS[cond];
    if age <= a[0].0 {
        return logit(a[0].1 / 100.0);
    }
    for w in a.windows(2) {
        if age <= w[1].0 {
            let t = (age - w[0].0) / (w[1].0 - w[0].0);
            return logit(w[0].1 / 100.0) * (1.0 - t) + logit(w[1].1 / 100.0) * t;
        }
    }
    logit(a[a.len() - 1].1 / 100.0)
}

/// Smoking status.
pub const NEVER: u8 = 0;
/// Ex-smoker.
pub const EX: u8 = 1;
/// Current smoker.
pub const CURRENT: u8 = 2;

/// One synthetic person's state.
#[derive(Debug, Clone)]
pub struct Person {
    /// lake surrogate key
    pub id: i64,
    /// female?
    pub female: bool,
    /// exact date of birth (days since 1970-01-01)
    pub birth: i32,
    /// LSOA index
    pub lsoa: u32,
    /// practice index
    pub practice: u32,
    /// ethnicity code
    pub eth: &'static str,
    /// unmeasured need, mean 1
    pub u: f64,
    /// smoking status
    pub smoke: u8,
    /// BMI kg/m2 (adults)
    pub bmi: f64,
    /// drinks above 35 (women) / 50 (men) units a week
    pub harmful_alcohol: bool,
    /// units a week
    pub alcohol_units: f64,
    /// fewer than 30 minutes of activity a week
    pub inactive: bool,
    /// condition bitmask
    pub conds: u32,
    /// onset date of each condition (valid where the bit is set)
    pub onset: [i32; N_COND],
    /// joined the registered population
    pub reg_start: i32,
    /// left (moved away); deaths are in `death`
    pub moved_out: Option<i32>,
    /// date of death
    pub death: Option<i32>,
    /// ICD-10 underlying cause of death
    pub death_cause: Option<&'static str>,
    /// permanently in a care home since
    pub care_home: Option<i32>,
    /// on a home care package until
    pub home_care_until: Option<i32>,
    /// on direct payments
    pub direct_payment: bool,
    /// in learning disability / mental health inpatient care until
    pub mh_inpatient_until: Option<i32>,
    /// emergency admissions in the last year
    pub recent_emergencies: u32,
    /// a woman who smoked in pregnancy affects birth weight: mother's smoking for babies
    pub mother_smoked: bool,
    /// residence changed (LSOA) during the span
    pub last_lsoa: u32,
}

impl Person {
    /// Has condition `k`.
    pub fn has(&self, k: usize) -> bool {
        self.conds & (1 << k) != 0
    }
    /// Number of conditions.
    pub fn n_conds(&self) -> u32 {
        self.conds.count_ones()
    }
    /// Age in whole years on a day.
    pub fn age(&self, day: i32) -> i32 {
        age_on(self.birth, day)
    }
    /// Date the person left the area's population (death or move), if any.
    pub fn left(&self) -> Option<i32> {
        match (self.death, self.moved_out) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// Present (registered, alive) on a day.
    pub fn present(&self, day: i32) -> bool {
        self.reg_start <= day && self.left().is_none_or(|l| day < l)
    }
}

/// Whole years between a birth date and a day (both days since epoch).
pub fn age_on(birth: i32, day: i32) -> i32 {
    let b = crate::time::ymd(birth);
    let d = crate::time::ymd(day);
    let mut a = d.0 - b.0;
    if (d.1, d.2) < (b.1, b.2) {
        a -= 1;
    }
    a
}

/// Deprivation score centred on the middle decile: +4.5 most deprived … −4.5 least.
pub fn dep(decile: u8) -> f64 {
    5.5 - decile as f64
}

fn south_asian(eth: &str) -> bool {
    matches!(eth, "H" | "J" | "K" | "L")
}
fn black(eth: &str) -> bool {
    matches!(eth, "M" | "N" | "P")
}

/// Linear predictors (without the calibrated intercept) of the lifestyle risks.
pub struct LifestyleLp;

impl LifestyleLp {
    /// current smoking, adults
    pub fn smoking(age: i32, female: bool, decile: u8, eth: &str) -> f64 {
        let a = age as f64;
        let age_eff = if a < 25.0 {
            0.2
        } else if a < 35.0 {
            0.35
        } else if a < 50.0 {
            0.2
        } else {
            0.2 - 0.035 * (a - 50.0)
        };
        age_eff
            + 0.17 * dep(decile)
            + if female { -0.15 } else { 0.15 }
            + if female && south_asian(eth) {
                -1.5
            } else {
                0.0
            }
    }
    /// overweight or obese, adults
    pub fn overweight(age: i32, female: bool, decile: u8, eth: &str) -> f64 {
        let a = age as f64;
        let age_eff = if a < 65.0 {
            0.035 * (a - 40.0)
        } else {
            0.875 - 0.02 * (a - 65.0)
        };
        age_eff
            + 0.06 * dep(decile)
            + if female { -0.35 } else { 0.25 }
            + if black(eth) { 0.3 } else { 0.0 }
    }
    /// physically inactive, adults
    pub fn inactive(age: i32, female: bool, decile: u8, _eth: &str) -> f64 {
        0.035 * (age as f64 - 45.0) + 0.1 * dep(decile) + if female { 0.1 } else { 0.0 }
    }
    /// harmful drinking, adults
    pub fn harmful_alcohol(age: i32, female: bool, decile: u8, eth: &str) -> f64 {
        let a = age as f64;
        let age_eff = -((a - 52.0) / 18.0).powi(2);
        age_eff
            + 0.05 * dep(decile)
            + if female { -0.7 } else { 0.3 }
            + if south_asian(eth) { -1.5 } else { 0.0 }
    }
    /// child overweight or obese at NCMP Year 6
    pub fn child_overweight(decile: u8) -> f64 {
        0.1 * dep(decile)
    }
    /// breastfeeding at 6-8 weeks (on the mother)
    pub fn breastfeeding(mother_age: i32, decile: u8, eth: &str) -> f64 {
        0.03 * (mother_age as f64 - 29.0) - 0.12 * dep(decile) + if eth != "A" { 1.2 } else { 0.0 }
    }
    /// NHS health check completed when invited
    pub fn health_check(age: i32, decile: u8) -> f64 {
        0.03 * (age as f64 - 57.0) - 0.08 * dep(decile)
    }
}

/// The personal part of a condition's log-odds (risk factors, dependencies).
pub fn cond_effects(k: usize, p: &Person, decile: u8) -> f64 {
    use c::*;
    let smoker = p.smoke == CURRENT;
    let ex = p.smoke == EX;
    let obese = p.bmi >= 30.0;
    let over = p.bmi >= 25.0;
    let m = !p.female;
    let d = dep(decile);
    let h = |x: usize| p.has(x);
    let mut e = 0.0;
    match k {
        HYPERTENSION => {
            e += if obese {
                0.7
            } else if over {
                0.35
            } else {
                0.0
            };
            e += if p.harmful_alcohol { 0.3 } else { 0.0 }
                + if black(p.eth) { 0.5 } else { 0.0 }
                + 0.04 * d
                + if m { 0.15 } else { 0.0 };
        }
        DIABETES => {
            e += if obese {
                1.2
            } else if over {
                0.5
            } else {
                0.0
            };
            e += if p.inactive { 0.3 } else { 0.0 }
                + 0.08 * d
                + if south_asian(p.eth) {
                    1.0
                } else if black(p.eth) {
                    0.5
                } else {
                    0.0
                }
                + if m { 0.25 } else { 0.0 };
        }
        CHD => {
            e += if smoker {
                0.6
            } else if ex {
                0.3
            } else {
                0.0
            } + if h(DIABETES) { 0.5 } else { 0.0 }
                + if h(HYPERTENSION) { 0.4 } else { 0.0 };
            e += if p.inactive { 0.3 } else { 0.0 }
                + 0.06 * d
                + if m { 0.7 } else { 0.0 }
                + if south_asian(p.eth) { 0.4 } else { 0.0 };
        }
        HF => {
            e += if h(CHD) { 1.3 } else { 0.0 }
                + if h(HYPERTENSION) { 0.5 } else { 0.0 }
                + if h(DIABETES) { 0.4 } else { 0.0 }
                + if obese { 0.4 } else { 0.0 };
            e += 0.05 * d + if m { 0.3 } else { 0.0 };
        }
        STROKE => {
            e += if smoker { 0.5 } else { 0.0 }
                + if h(HYPERTENSION) { 0.6 } else { 0.0 }
                + if h(DIABETES) { 0.3 } else { 0.0 }
                + 0.05 * d;
        }
        AF => {
            e += if h(HYPERTENSION) { 0.4 } else { 0.0 }
                + if h(HF) { 1.0 } else { 0.0 }
                + if m { 0.3 } else { 0.0 }
                + if p.harmful_alcohol { 0.3 } else { 0.0 }
        }
        COPD => {
            e += if smoker {
                1.8
            } else if ex {
                1.0
            } else {
                0.0
            } + 0.12 * d
        }
        ASTHMA => e += if obese { 0.3 } else { 0.0 } + 0.03 * d,
        CANCER => {
            e += if smoker {
                0.5
            } else if ex {
                0.2
            } else {
                0.0
            } + if obese { 0.2 } else { 0.0 }
                + if p.harmful_alcohol { 0.2 } else { 0.0 }
        }
        DEMENTIA => {
            e += if h(STROKE) { 0.7 } else { 0.0 }
                + if h(DIABETES) { 0.3 } else { 0.0 }
                + if h(PARKINSONS) { 1.0 } else { 0.0 }
                + 0.04 * d
                + if m { -0.1 } else { 0.0 }
        }
        SMI => e += 0.1 * d + if black(p.eth) { 0.6 } else { 0.0 },
        DEPRESSION => {
            e += 0.08 * d
                + if m { -0.5 } else { 0.0 }
                + if smoker { 0.3 } else { 0.0 }
                + if p.inactive { 0.3 } else { 0.0 }
                + if p.harmful_alcohol { 0.4 } else { 0.0 }
        }
        LD => e += 0.05 * d,
        OA => {
            e += if obese {
                0.5
            } else if over {
                0.25
            } else {
                0.0
            } + if m { -0.3 } else { 0.0 }
        }
        CKD => {
            e += if h(DIABETES) { 0.8 } else { 0.0 }
                + if h(HYPERTENSION) { 0.6 } else { 0.0 }
                + 0.04 * d
        }
        EPILEPSY => e += if h(LD) { 2.0 } else { 0.0 } + 0.04 * d,
        RA => e += if m { -0.7 } else { 0.0 } + if smoker { 0.3 } else { 0.0 },
        PARKINSONS => e += if m { 0.4 } else { 0.0 },
        OSTEOPOROSIS => {
            e += if m { -1.6 } else { 0.0 }
                + if smoker { 0.3 } else { 0.0 }
                + if h(RA) { 0.6 } else { 0.0 }
        }
        ALCOHOL_DEP => {
            e += if p.harmful_alcohol { 2.5 } else { -0.5 } + if m { 0.5 } else { 0.0 } + 0.08 * d
        }
        LIVER => {
            e += if p.harmful_alcohol { 1.6 } else { 0.0 }
                + if h(ALCOHOL_DEP) { 1.5 } else { 0.0 }
                + if obese { 0.5 } else { 0.0 }
                + 0.05 * d
        }
        PVD => {
            e += if smoker {
                1.0
            } else if ex {
                0.4
            } else {
                0.0
            } + if h(DIABETES) { 0.7 } else { 0.0 }
                + if m { 0.4 } else { 0.0 }
        }
        _ => {}
    }
    e
}

/// Probability a person has condition `k` at an age (calibration `centre` removes the
/// population average of the personal effects so prevalence follows the anchors).
pub fn cond_prob(k: usize, p: &Person, age: f64, decile: u8, cal: &Calibration) -> f64 {
    logistic(age_logit(k, age) + cond_effects(k, p, decile) - cal.cond_centre[k])
}

/// Draw lifestyle for a person of a given age (calibrated intercepts).
pub fn draw_lifestyle(
    rng: &mut Rng,
    p: &mut Person,
    age: i32,
    decile: u8,
    la: usize,
    cal: &Calibration,
) {
    let adult_age = age.max(16);
    let ps = logistic(cal.smoking[la] + LifestyleLp::smoking(adult_age, p.female, decile, p.eth));
    let ever_extra = (0.25 + 0.006 * (adult_age as f64 - 18.0)).clamp(0.1, 0.5);
    p.smoke = if age < 14 {
        NEVER
    } else if rng.chance(ps * if age < 18 { 0.4 } else { 1.0 }) {
        CURRENT
    } else if age >= 18 && rng.chance(ever_extra) {
        EX
    } else {
        NEVER
    };
    let po =
        logistic(cal.overweight[la] + LifestyleLp::overweight(adult_age, p.female, decile, p.eth));
    p.bmi = if age < 18 {
        16.0 + 0.4 * age.min(17) as f64 * 0.5 + rng.normal()
    } else if rng.chance(po) {
        // overweight: 25 and above, about 4 in 10 of them obese
        25.0 + rng.exp(5.5)
    } else {
        (18.0 + 7.0 * rng.f64().sqrt()).min(24.9)
    };
    let pi = logistic(cal.inactive[la] + LifestyleLp::inactive(adult_age, p.female, decile, p.eth));
    p.inactive = age >= 16 && rng.chance(pi);
    let pa = logistic(
        cal.harmful_alcohol + LifestyleLp::harmful_alcohol(adult_age, p.female, decile, p.eth),
    );
    p.harmful_alcohol = age >= 16 && rng.chance(pa);
    p.alcohol_units = if age < 16 {
        0.0
    } else if p.harmful_alcohol {
        (if p.female { 35.0 } else { 50.0 }) + rng.exp(20.0)
    } else {
        rng.exp(7.0).min(if p.female { 34.0 } else { 49.0 })
    };
}

/// Draw the conditions prevalent at an age, with onset dates before `day`.
pub fn draw_prevalent_conditions(
    rng: &mut Rng,
    p: &mut Person,
    age: i32,
    day: i32,
    decile: u8,
    cal: &Calibration,
) {
    for k in 0..N_COND {
        let pr = cond_prob(k, p, age as f64, decile, cal);
        if rng.chance(pr) {
            p.conds |= 1 << k;
            let years_back = if k == c::LD {
                age as f64
            } else {
                rng.uniform(0.0, (age as f64).min(15.0))
            };
            p.onset[k] = day - (years_back * 365.25) as i32 - 1;
            p.onset[k] = p.onset[k].max(p.birth);
        }
    }
}

/// Chance of developing condition `k` in the year of age `age` → `age + 1`.
pub fn incidence(k: usize, p: &Person, age: i32, decile: u8, cal: &Calibration) -> f64 {
    if p.has(k) || k == c::LD {
        return 0.0;
    }
    let a0 = cond_prob(k, p, age as f64, decile, cal);
    let a1 = cond_prob(k, p, age as f64 + 1.0, decile, cal);
    ((a1 - a0) / (1.0 - a0)).clamp(0.0, 1.0)
}

/// Mortality causes.
pub const CAUSES: usize = 4;
/// Cause index: cardiovascular.
pub const CVD: usize = 0;
/// Cause index: respiratory.
pub const RESP: usize = 1;
/// Cause index: cancer.
pub const CANCER: usize = 2;
/// Cause index: all other.
pub const OTHER: usize = 3;

/// England all-cause death rates per 1,000 by 5-year band (approx. ONS 2013-15), men.
const MORT_M: [f64; 19] = [
    0.95, 0.08, 0.10, 0.30, 0.45, 0.55, 0.75, 1.05, 1.6, 2.4, 3.6, 5.6, 9.0, 13.5, 21.5, 36.0,
    62.0, 110.0, 220.0,
];
/// Women.
const MORT_F: [f64; 19] = [
    0.78, 0.07, 0.08, 0.20, 0.22, 0.28, 0.40, 0.65, 1.05, 1.6, 2.4, 3.7, 5.9, 9.0, 14.5, 25.0,
    44.0, 82.0, 190.0,
];

/// Share of deaths by cause (CVD, respiratory, cancer, other) by age.
fn cause_share(age: i32) -> [f64; 4] {
    match age {
        ..45 => [0.12, 0.05, 0.20, 0.63],
        45..65 => [0.22, 0.08, 0.42, 0.28],
        65..75 => [0.25, 0.11, 0.40, 0.24],
        75..85 => [0.27, 0.14, 0.28, 0.31],
        _ => [0.28, 0.16, 0.13, 0.43],
    }
}

/// Relative risk of death from each cause given a person's conditions and risks.
pub fn death_rr(p: &Person) -> [f64; 4] {
    use c::*;
    let h = |x: usize| p.has(x);
    let f = |b: bool, r: f64| if b { r } else { 1.0 };
    let smoker = p.smoke == CURRENT;
    [
        f(h(CHD), 2.5)
            * f(h(HF), 4.0)
            * f(h(STROKE), 2.5)
            * f(h(AF), 1.5)
            * f(h(DIABETES), 1.5)
            * f(smoker, 1.6)
            * f(h(PVD), 1.5)
            * f(h(CKD), 1.5),
        f(h(COPD), 6.0) * f(h(ASTHMA), 1.5) * f(smoker, 1.8) * f(h(DEMENTIA), 2.0),
        f(h(CANCER), 15.0) * f(smoker, 1.5),
        f(h(DEMENTIA), 3.0)
            * f(h(CKD), 1.5)
            * f(h(LIVER), 4.0)
            * f(h(ALCOHOL_DEP), 2.5)
            * f(h(SMI), 2.0)
            * f(h(LD), 2.5)
            * f(h(PARKINSONS), 2.0)
            * f(h(EPILEPSY), 1.5),
    ]
}

/// Annual death hazard by cause for a person at an age (calibrated).
pub fn death_hazards(p: &Person, age: i32, la: usize, cal: &Calibration) -> [f64; 4] {
    let b = crate::stats::band(age);
    let sex = usize::from(!p.female);
    let base = if p.female { MORT_F[b] } else { MORT_M[b] } / 1000.0;
    let share = cause_share(age);
    let rr = death_rr(p);
    let mut out = [0.0; 4];
    for k in 0..CAUSES {
        let mult = match k {
            CVD => cal.m_cvd[la],
            RESP => cal.m_resp[la],
            CANCER => 1.0,
            _ => cal.m_other[la][sex],
        };
        out[k] = mult * base * share[k] * rr[k] / cal.rr_norm[k][sex][b] * p.u.powf(0.3);
    }
    out
}

/// Log-odds of reporting not-good health, without the calibrated intercept.
pub fn bad_health_lp(p: &Person, age: i32, decile: u8) -> f64 {
    0.045 * (age as f64 - 50.0)
        + 0.45 * p.n_conds() as f64
        + 0.1 * dep(decile)
        + 0.3 * (p.u - 1.0)
        + if p.has(c::DEPRESSION) || p.has(c::SMI) {
            0.6
        } else {
            0.0
        }
}

/// Expected emergency admissions a year (before the area multiplier for 65+).
pub fn emergency_rate(p: &Person, age: i32, decile: u8) -> f64 {
    use c::*;
    let base = match age {
        0..5 => 0.10,
        5..15 => 0.03,
        15..45 => 0.045,
        45..65 => 0.06,
        65..75 => 0.12,
        75..85 => 0.24,
        _ => 0.42,
    };
    let h = |x: usize, r: f64| if p.has(x) { r } else { 1.0 };
    base * h(HF, 2.3)
        * h(COPD, 2.0)
        * h(DEMENTIA, 1.7)
        * h(CKD, 1.3)
        * h(DIABETES, 1.25)
        * h(CHD, 1.3)
        * h(STROKE, 1.3)
        * h(CANCER, 1.7)
        * h(AF, 1.2)
        * h(SMI, 1.5)
        * h(LD, 1.5)
        * h(ALCOHOL_DEP, 1.8)
        * h(LIVER, 1.8)
        * h(EPILEPSY, 1.5)
        * h(PARKINSONS, 1.5)
        * h(ASTHMA, 1.15)
        * h(DEPRESSION, 1.15)
        * (1.0 + 0.05 * dep(decile))
        * p.u
        * if p.recent_emergencies > 0 {
            1.0 + 0.5 * p.recent_emergencies.min(3) as f64
        } else {
            1.0
        }
}

/// Expected alcohol-related admissions a year (before the area multiplier).
pub fn alcohol_rate(p: &Person, age: i32) -> f64 {
    let base = match age {
        0..15 => 0.000_05,
        15..25 => 0.003,
        25..45 => 0.004,
        45..65 => 0.008,
        65..75 => 0.008,
        _ => 0.006,
    };
    base * if p.female { 0.7 } else { 1.3 }
        * (1.0
            + 6.0 * f64::from(u8::from(p.harmful_alcohol))
            + 12.0 * f64::from(u8::from(p.has(c::ALCOHOL_DEP)))
            + 6.0 * f64::from(u8::from(p.has(c::LIVER))))
}

/// Condition key for an index (for messages).
pub fn cond_key(k: usize) -> &'static str {
    CONDITIONS[k].key
}

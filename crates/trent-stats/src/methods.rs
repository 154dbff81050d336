//! The statistical methods English public health publishes indicators with — the
//! OHID/PHE *Technical Guide* methods that PHEindicatormethods (R) and PHStatsMethods
//! (Python) implement — so the Observatory's figures can be set beside Fingertips'.
//!
//! Every function works on plain slices and scalars and allocates little (life tables
//! and the SII simulation allocate one buffer), so the indicator engine can call them on
//! millions of groups. Nothing here reads files: `crate::file` does that for analysts.
//! Inputs that the published method cannot use are errors (`MethodError::Invalid`),
//! never panics; outputs the published method suppresses are NaN with a note saying why.
//!
//! Confidence levels are fractions (0.95, 0.998). Formulas, references and where trent
//! could differ from other implementations: `docs/methods.md`.

use crate::rng::Rng;
use std::fmt;

/// Why a method could not be computed, or where an analyst's file is wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodError {
    /// An argument the method cannot use (negative count, zero denominator, ...).
    Invalid(String),
    /// A problem in an input file: which file, line (1-based, header is line 1) and column.
    Input {
        /// The file.
        file: String,
        /// Line number, when the problem is on one line.
        line: Option<u64>,
        /// Column name, when the problem is in one column.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read or written.
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        message: String,
    },
}

impl fmt::Display for MethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodError::Invalid(m) => write!(f, "{m}"),
            MethodError::Input {
                file,
                line,
                column,
                message,
            } => {
                write!(f, "{file}")?;
                if let Some(l) = line {
                    write!(f, ", line {l}")?;
                }
                if let Some(c) = column {
                    write!(f, ", column '{c}'")?;
                }
                write!(f, ": {message}")
            }
            MethodError::Io { file, message } => write!(f, "{file}: {message}"),
        }
    }
}

impl std::error::Error for MethodError {}

fn invalid<T>(msg: impl Into<String>) -> Result<T, MethodError> {
    Err(MethodError::Invalid(msg.into()))
}

/// A statistic with its confidence interval. NaN where the published method suppresses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The statistic.
    pub value: f64,
    /// Lower confidence limit.
    pub lower: f64,
    /// Upper confidence limit.
    pub upper: f64,
}

// ---------------------------------------------------------------------------------
// Distributions: accurate to ~1e-14, enough to agree with R/scipy to 1e-9 and better.
// ---------------------------------------------------------------------------------

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; Numerical Recipes 3rd ed. §6.1).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised lower incomplete gamma P(a, x) (series below a + 1, Lentz continued
/// fraction above).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return 1.0;
    }
    let lead = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        (sum.ln() + lead).exp().min(1.0)
    } else {
        1.0 - gamma_q_cf(a, x, lead)
    }
}

fn gamma_q_cf(a: f64, x: f64, lead: f64) -> f64 {
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (lead.exp() * h).clamp(0.0, 1.0)
}

/// Regularised upper incomplete gamma Q(a, x) = 1 − P(a, x), accurate in the tail.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lead = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        1.0 - gamma_p(a, x)
    } else {
        gamma_q_cf(a, x, lead)
    }
}

/// Standard normal CDF Φ(x), accurate to ~1e-15 (through the incomplete gamma function;
/// `stats::norm_cdf` is the cheaper 1e-7 approximation the generator uses).
pub fn normal_cdf(x: f64) -> f64 {
    let q = 0.5 * gamma_q(0.5, 0.5 * x * x);
    if x >= 0.0 { 1.0 - q } else { q }
}

/// Standard normal quantile Φ⁻¹(p) (Acklam's approximation refined by Halley steps).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let pl = 0.02425;
    let mut x = if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    for _ in 0..2 {
        // Φ(x) − p, computed in the tail x lies in so the error stays relative
        let tail = 0.5 * gamma_q(0.5, 0.5 * x * x);
        let e = if x < 0.0 { tail - p } else { (1.0 - p) - tail };
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
        x -= u / (1.0 + 0.5 * x * u);
    }
    x
}

/// The x with P(a, x) = p: the p-quantile of a Gamma(a, 1) variable (a > 0).
pub fn gamma_quantile(a: f64, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    // Wilson–Hilferty start, then safeguarded Newton on P(a, x) − p
    let z = normal_quantile(p);
    let c = 1.0 / (9.0 * a);
    let mut x = (a * (1.0 - c + z * c.sqrt()).powi(3)).max(1e-3 * a.min(1.0));
    let (mut lo, mut hi) = (0.0_f64, f64::INFINITY);
    let lga = ln_gamma(a);
    for _ in 0..200 {
        let f = if p < 0.5 {
            gamma_p(a, x) - p
        } else {
            (1.0 - p) - gamma_q(a, x)
        };
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let dens = ((a - 1.0) * x.ln() - x - lga).exp();
        let mut next = x - f / dens;
        if !next.is_finite() || next <= lo || next >= hi {
            next = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * x + 1.0
            };
        }
        if (next - x).abs() <= 1e-15 * x.abs().max(1e-300) {
            return next;
        }
        x = next;
    }
    x
}

/// The two-sided normal critical value for a confidence level: Φ⁻¹(1 − (1 − c)/2).
pub fn z_value(confidence: f64) -> f64 {
    normal_quantile(1.0 - (1.0 - confidence) / 2.0)
}

fn check_confidence(confidence: f64) -> Result<(), MethodError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return invalid(format!(
            "confidence {confidence} must be a fraction between 0 and 1 (0.95, 0.998)"
        ));
    }
    Ok(())
}

fn check_count(what: &str, x: f64) -> Result<(), MethodError> {
    if !x.is_finite() {
        return invalid(format!("{what} is not a finite number ({x})"));
    }
    if x < 0.0 {
        return invalid(format!("{what} is negative ({x})"));
    }
    Ok(())
}

fn check_denominator(what: &str, x: f64) -> Result<(), MethodError> {
    check_count(what, x)?;
    if x == 0.0 {
        return invalid(format!("{what} is 0: the statistic is undefined"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// 1. Proportions and crude rates
// ---------------------------------------------------------------------------------

/// Wilson score interval for `count` of `denominator` (Wilson 1927; Newcombe & Altman
/// 2000), as a proportion of 1.
pub fn wilson(count: f64, denominator: f64, confidence: f64) -> Result<(f64, f64), MethodError> {
    check_confidence(confidence)?;
    check_count("numerator", count)?;
    check_denominator("denominator", denominator)?;
    if count > denominator {
        return invalid(format!(
            "numerator {count} exceeds denominator {denominator}: not a proportion"
        ));
    }
    let z = z_value(confidence);
    let z2 = z * z;
    let root = z * (z2 + 4.0 * count * (1.0 - count / denominator)).sqrt();
    let den = 2.0 * (denominator + z2);
    Ok((
        (2.0 * count + z2 - root) / den,
        (2.0 * count + z2 + root) / den,
    ))
}

/// Proportion × `multiplier` (1 or 100) with the Wilson score interval.
pub fn proportion(
    count: f64,
    denominator: f64,
    confidence: f64,
    multiplier: f64,
) -> Result<Estimate, MethodError> {
    let (lo, hi) = wilson(count, denominator, confidence)?;
    Ok(Estimate {
        value: count / denominator * multiplier,
        lower: lo * multiplier,
        upper: hi * multiplier,
    })
}

/// Exact Poisson limits for an observed count (Armitage & Berry 2002): the χ² quantiles
/// χ²(α/2; 2O)/2 and χ²(1 − α/2; 2O + 2)/2. The lower limit of 0 events is 0.
pub fn poisson_exact(count: f64, confidence: f64) -> (f64, f64) {
    let alpha = 1.0 - confidence;
    let lo = if count > 0.0 {
        gamma_quantile(count, alpha / 2.0)
    } else {
        0.0
    };
    (lo, gamma_quantile(count + 1.0, 1.0 - alpha / 2.0))
}

/// Byar's approximation to the Poisson limits (Breslow & Day 1987), exact limits below
/// 10 events as PHE does (PHEindicatormethods `byars_lower/upper`, PHStatsMethods).
pub fn byars(count: f64, confidence: f64) -> Result<(f64, f64), MethodError> {
    check_confidence(confidence)?;
    check_count("count", count)?;
    if count < 10.0 {
        return Ok(poisson_exact(count, confidence));
    }
    let z = z_value(confidence);
    let o = count;
    let lo = o * (1.0 - 1.0 / (9.0 * o) - z / (3.0 * o.sqrt())).powi(3);
    let o1 = o + 1.0;
    let hi = o1 * (1.0 - 1.0 / (9.0 * o1) + z / (3.0 * o1.sqrt())).powi(3);
    Ok((lo, hi))
}

/// Crude rate: count / denominator × multiplier, with Byar's interval (exact below 10).
pub fn crude_rate(
    count: f64,
    denominator: f64,
    multiplier: f64,
    confidence: f64,
) -> Result<Estimate, MethodError> {
    check_denominator("denominator", denominator)?;
    let (lo, hi) = byars(count, confidence)?;
    let k = multiplier / denominator;
    Ok(Estimate {
        value: count * k,
        lower: lo * k,
        upper: hi * k,
    })
}

// ---------------------------------------------------------------------------------
// 2. Directly standardised rates (Dobson)
// ---------------------------------------------------------------------------------

/// A directly standardised rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dsr {
    /// The rate and its Dobson interval; all NaN when `total_count` < 10 (PHE suppresses).
    pub estimate: Estimate,
    /// Σ events.
    pub total_count: f64,
    /// Σ population.
    pub total_pop: f64,
}

/// Directly standardised rate per `multiplier` over any band set: per band the events,
/// the population and the standard population weight (`stats::ESP2013` for PHE's 19
/// bands). Interval by Dobson et al. (1991) using Byar's limits for the total count.
/// PHE does not publish a DSR of fewer than 10 events: the estimate is NaN then.
pub fn dsr(
    events: &[f64],
    population: &[f64],
    standard: &[f64],
    multiplier: f64,
    confidence: f64,
) -> Result<Dsr, MethodError> {
    check_confidence(confidence)?;
    if events.len() != population.len() || events.len() != standard.len() {
        return invalid(format!(
            "DSR needs one events, population and standard weight per band (got {}, {}, {})",
            events.len(),
            population.len(),
            standard.len()
        ));
    }
    if events.is_empty() {
        return invalid("DSR needs at least one age band");
    }
    let (mut wsum, mut wrate, mut sq, mut total, mut pop) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for b in 0..events.len() {
        check_count(&format!("events in band {}", b + 1), events[b])?;
        check_denominator(&format!("population in band {}", b + 1), population[b])?;
        check_count(&format!("standard weight in band {}", b + 1), standard[b])?;
        let w = standard[b] / population[b];
        wsum += standard[b];
        wrate += events[b] * w;
        sq += events[b] * w * w;
        total += events[b];
        pop += population[b];
    }
    if wsum <= 0.0 {
        return invalid("standard population weights sum to 0");
    }
    let nan = Estimate {
        value: f64::NAN,
        lower: f64::NAN,
        upper: f64::NAN,
    };
    if total < 10.0 {
        return Ok(Dsr {
            estimate: nan,
            total_count: total,
            total_pop: pop,
        });
    }
    let value = wrate / wsum * multiplier;
    let var = sq / (wsum * wsum);
    let (lo, hi) = byars(total, confidence)?;
    let k = (var / total).sqrt() * multiplier;
    Ok(Dsr {
        estimate: Estimate {
            value,
            lower: value + k * (lo - total),
            upper: value + k * (hi - total),
        },
        total_count: total,
        total_pop: pop,
    })
}

// ---------------------------------------------------------------------------------
// 3. Indirect standardisation
// ---------------------------------------------------------------------------------

/// Expected events: Σ reference rate × local population, over bands.
pub fn expected_events(
    population: &[f64],
    ref_events: &[f64],
    ref_population: &[f64],
) -> Result<f64, MethodError> {
    if population.len() != ref_events.len() || population.len() != ref_population.len() {
        return invalid(format!(
            "indirect standardisation needs one population, reference events and reference population per band (got {}, {}, {})",
            population.len(),
            ref_events.len(),
            ref_population.len()
        ));
    }
    let mut e = 0.0;
    for b in 0..population.len() {
        check_count(&format!("population in band {}", b + 1), population[b])?;
        check_count(
            &format!("reference events in band {}", b + 1),
            ref_events[b],
        )?;
        check_denominator(
            &format!("reference population in band {}", b + 1),
            ref_population[b],
        )?;
        e += ref_events[b] / ref_population[b] * population[b];
    }
    Ok(e)
}

/// Indirectly standardised ratio O/E × `ref_value` (100 for an SMR, 1 for a ratio), with
/// Byar's interval on O (exact below 10).
pub fn isr(
    observed: f64,
    expected: f64,
    ref_value: f64,
    confidence: f64,
) -> Result<Estimate, MethodError> {
    check_denominator("expected events", expected)?;
    let (lo, hi) = byars(observed, confidence)?;
    let k = ref_value / expected;
    Ok(Estimate {
        value: observed * k,
        lower: lo * k,
        upper: hi * k,
    })
}

/// Indirectly standardised rate: O/E × the reference crude rate (already per multiplier).
pub fn israte(
    observed: f64,
    expected: f64,
    ref_rate: f64,
    confidence: f64,
) -> Result<Estimate, MethodError> {
    isr(observed, expected, ref_rate, confidence)
}

// ---------------------------------------------------------------------------------
// 4. Life expectancy (Chiang II, Silcocks) and healthy life expectancy (Sullivan)
// ---------------------------------------------------------------------------------

/// PHE's life table bands: 0, 1-4, 5-9, …, 85-89, 90+ (start ages).
pub const LE_AGES: [f64; 20] = [
    0.0, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0,
    75.0, 80.0, 85.0, 90.0,
];

/// Life (or healthy life) expectancy at the start of one band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifeExpectancy {
    /// Start age of the band.
    pub age: f64,
    /// Expectancy and interval; `value` is NaN where PHE suppresses (see `note`).
    pub estimate: Estimate,
    /// Standard error.
    pub se: f64,
    /// Why the value is suppressed, if it is.
    pub note: Option<&'static str>,
}

/// The abridged life table PHE uses, built once for LE and HLE.
struct LifeTable {
    ages: Vec<f64>,
    l: Vec<f64>,
    big_l: Vec<f64>,
    e: Vec<f64>,
    /// Σ_{j ≥ i} W_j (Chiang variance numerator)
    st: Vec<f64>,
    whole: Option<&'static str>,
}

fn life_table(ages: &[f64], deaths: &[f64], pops: &[f64]) -> Result<LifeTable, MethodError> {
    let k = ages.len();
    if deaths.len() != k || pops.len() != k {
        return invalid(format!(
            "life table needs one start age, deaths and population per band (got {}, {}, {})",
            k,
            deaths.len(),
            pops.len()
        ));
    }
    if k < 2 {
        return invalid("life table needs at least two age bands");
    }
    if ages[0] != 0.0 {
        return invalid(format!("first age band must start at 0 (got {})", ages[0]));
    }
    for i in 1..k {
        if ages[i] <= ages[i - 1] {
            return invalid(format!(
                "age bands must ascend: {} follows {}",
                ages[i],
                ages[i - 1]
            ));
        }
    }
    let mut total_pop = 0.0;
    for i in 0..k {
        check_count(&format!("deaths at age {}", ages[i]), deaths[i])?;
        check_denominator(&format!("population at age {}", ages[i]), pops[i])?;
        if deaths[i] > pops[i] {
            return invalid(format!(
                "deaths ({}) exceed population ({}) at age {}",
                deaths[i], pops[i], ages[i]
            ));
        }
        total_pop += pops[i];
    }
    let mut whole = None;
    if total_pop <= 5000.0 {
        whole = Some("total population 5,000 or fewer: PHE does not publish");
    }
    let mut q = vec![0.0; k];
    let mut width = vec![0.0; k];
    let mut ax = vec![0.5; k];
    let mut m = vec![0.0; k];
    for i in 0..k {
        m[i] = deaths[i] / pops[i];
        if ages[i] == 0.0 {
            ax[i] = 0.1;
        }
        width[i] = if i + 1 < k {
            ages[i + 1] - ages[i]
        } else {
            2.0 / m[i]
        };
        q[i] = if i + 1 == k {
            1.0
        } else if deaths[i] <= pops[i] / width[i] / ax[i] {
            m[i] * width[i] / (1.0 + m[i] * width[i] * (1.0 - ax[i]))
        } else {
            1.0
        };
    }
    let mut l = vec![0.0; k + 1];
    l[0] = 1e5;
    for i in 0..k {
        l[i + 1] = if i + 1 == k { 0.0 } else { l[i] * (1.0 - q[i]) };
    }
    let mut big_l = vec![0.0; k];
    for i in 0..k {
        let d = l[i] - l[i + 1];
        big_l[i] = if i + 1 < k {
            width[i] * (l[i + 1] + ax[i] * d)
        } else {
            l[i] / m[i]
        };
    }
    if !big_l[k - 1].is_finite() {
        whole = Some("no deaths in the open-ended age band: expectancy undefined");
    }
    let mut t = vec![0.0; k + 1];
    let mut e = vec![0.0; k + 1];
    for i in (0..k).rev() {
        t[i] = t[i + 1] + big_l[i];
        e[i] = if l[i] == 0.0 { 0.0 } else { t[i] / l[i] };
    }
    let mut st = vec![0.0; k + 1];
    for i in (0..k).rev() {
        let d = l[i] - l[i + 1];
        let w = if i + 1 < k {
            let sp = if d == 0.0 {
                0.0
            } else {
                q[i] * q[i] * (1.0 - q[i]) / deaths[i]
            };
            sp * l[i] * l[i] * ((1.0 - ax[i]) * width[i] + e[i + 1]).powi(2)
        } else {
            let sp = 4.0 / (deaths[i] * m[i] * m[i]);
            (l[i] / 2.0).powi(2) * sp
        };
        st[i] = st[i + 1] + w;
    }
    Ok(LifeTable {
        ages: ages.to_vec(),
        l,
        big_l,
        e,
        st,
        whole,
    })
}

/// Life expectancy at the start of every band by PHE's method: Chiang II abridged life
/// table (Chiang 1968), a = 0.1 for the band starting at 0 and 0.5 otherwise, the last
/// band open (L = l/M), variance by Chiang with Silcocks et al. (2001) for the open band.
/// Use `LE_AGES` for PHE's 20 bands. As PHE: a total population ≤ 5,000 suppresses every
/// value; a value whose 95% interval is wider than 20 years is suppressed (its limits
/// are kept, as PHEindicatormethods keeps them).
pub fn life_expectancy(
    ages: &[f64],
    deaths: &[f64],
    population: &[f64],
    confidence: f64,
) -> Result<Vec<LifeExpectancy>, MethodError> {
    check_confidence(confidence)?;
    let lt = life_table(ages, deaths, population)?;
    let z = z_value(confidence);
    let z95 = z_value(0.95);
    let mut out = Vec::with_capacity(ages.len());
    for i in 0..ages.len() {
        let se = (lt.st[i] / (lt.l[i] * lt.l[i])).sqrt();
        let e = lt.e[i];
        let mut note = lt.whole;
        let mut value = e;
        if note.is_some() {
            out.push(LifeExpectancy {
                age: lt.ages[i],
                estimate: Estimate {
                    value: f64::NAN,
                    lower: f64::NAN,
                    upper: f64::NAN,
                },
                se: f64::NAN,
                note,
            });
            continue;
        }
        if z95 * se > 10.0 {
            note = Some("95% interval wider than 20 years: PHE does not publish");
            value = f64::NAN;
        }
        out.push(LifeExpectancy {
            age: lt.ages[i],
            estimate: Estimate {
                value,
                lower: e - z * se,
                upper: e + z * se,
            },
            se,
            note,
        });
    }
    Ok(out)
}

/// Healthy life expectancy by the Sullivan method (Sullivan 1971; Jagger et al. 2006)
/// on the same life table: per band the prevalence of good health and the survey sample
/// size it came from. Variance as Jagger's guide (and ONS/PHE): the prevalence sampling
/// variance Σ L_j² π_j(1 − π_j)/N_j / l_x², the mortality variance taken as negligible.
/// A band with sample size 0 contributes no variance (its prevalence is assumed known).
pub fn healthy_life_expectancy(
    ages: &[f64],
    deaths: &[f64],
    population: &[f64],
    prevalence_good: &[f64],
    sample_size: &[f64],
    confidence: f64,
) -> Result<Vec<LifeExpectancy>, MethodError> {
    check_confidence(confidence)?;
    let k = ages.len();
    if prevalence_good.len() != k || sample_size.len() != k {
        return invalid(format!(
            "HLE needs one prevalence and sample size per band (got {} and {} for {} bands)",
            prevalence_good.len(),
            sample_size.len(),
            k
        ));
    }
    for i in 0..k {
        let p = prevalence_good[i];
        if !(0.0..=1.0).contains(&p) {
            return invalid(format!(
                "prevalence of good health at age {} is {p}: must be between 0 and 1",
                ages[i]
            ));
        }
        check_count(&format!("sample size at age {}", ages[i]), sample_size[i])?;
    }
    let lt = life_table(ages, deaths, population)?;
    let z = z_value(confidence);
    let mut th = vec![0.0; k + 1];
    let mut vp = vec![0.0; k + 1];
    for i in (0..k).rev() {
        let p = prevalence_good[i];
        th[i] = th[i + 1] + lt.big_l[i] * p;
        let v = if sample_size[i] > 0.0 {
            lt.big_l[i] * lt.big_l[i] * p * (1.0 - p) / sample_size[i]
        } else {
            0.0
        };
        vp[i] = vp[i + 1] + v;
    }
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        if lt.whole.is_some() || lt.l[i] == 0.0 {
            out.push(LifeExpectancy {
                age: lt.ages[i],
                estimate: Estimate {
                    value: f64::NAN,
                    lower: f64::NAN,
                    upper: f64::NAN,
                },
                se: f64::NAN,
                note: lt.whole.or(Some("no survivors to this age")),
            });
            continue;
        }
        let h = th[i] / lt.l[i];
        let se = vp[i].sqrt() / lt.l[i];
        out.push(LifeExpectancy {
            age: lt.ages[i],
            estimate: Estimate {
                value: h,
                lower: h - z * se,
                upper: h + z * se,
            },
            se,
            note: None,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// 5. Slope and relative index of inequality
// ---------------------------------------------------------------------------------

/// What kind of value the SII is computed on (PHEindicatormethods `value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiiValueType {
    /// Any value; simulated on its own scale.
    Normal,
    /// A rate: simulated on the log scale.
    Rate,
    /// A proportion (0–1): simulated on the logit scale.
    Proportion,
}

/// Slope and relative index of inequality with simulated intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sii {
    /// SII (× multiplier) and its interval.
    pub sii: Estimate,
    /// RII and its interval (inverted when the multiplier is negative, as PHE does).
    pub rii: Estimate,
    /// Fitted value at the bottom of the scale (cumulative population 0).
    pub intercept: f64,
}

/// The standard error of a value from its 95% limits on the scale the SII simulation
/// uses (log for rates, logit for proportions), as PHEindicatormethods derives it.
pub fn sii_se_from_limits(lower: f64, upper: f64, value_type: SiiValueType) -> f64 {
    let t = |x: f64| transform(x, value_type);
    (t(upper) - t(lower)) / z_value(0.95) / 2.0
}

fn transform(x: f64, vt: SiiValueType) -> f64 {
    match vt {
        SiiValueType::Normal => x,
        SiiValueType::Rate => x.ln(),
        SiiValueType::Proportion => (x / (1.0 - x)).ln(),
    }
}

fn untransform(x: f64, vt: SiiValueType) -> f64 {
    match vt {
        SiiValueType::Normal => x,
        SiiValueType::Rate => x.exp(),
        SiiValueType::Proportion => {
            let e = x.exp();
            e / (1.0 + e)
        }
    }
}

/// The 1-based position PHE takes from `reps` sorted simulations for a percentile
/// (R's `round`, half to even).
fn sim_position(reps: usize, frac: f64) -> usize {
    ((reps as f64 * frac).round_ties_even() as usize).clamp(1, reps)
}

/// Slope index of inequality as PHEindicatormethods `phe_sii` computes it (Low & Low
/// 2004): quantiles in order (first = most deprived, or whichever end the caller puts
/// first), each with its population, value and standard error (on the simulation scale:
/// see `sii_se_from_limits`). Weighted least squares of value on the midpoint of each
/// quantile's cumulative population share, fitted as y√a = β₀√a + β₁b√a. SII = β₁ ×
/// `multiplier`; RII = (β₀ + β₁)/β₀ (inverted for a negative multiplier). Interval by
/// simulation: `repetitions` draws of every value from N(value, se) on the log/logit
/// scale for rates/proportions, refitted; limits are order statistics. Deterministic for
/// a `seed` (trent's own generator, so not the same draws as R's).
#[allow(clippy::too_many_arguments)]
pub fn sii(
    population: &[f64],
    value: &[f64],
    se: &[f64],
    value_type: SiiValueType,
    multiplier: f64,
    confidence: f64,
    repetitions: usize,
    seed: u64,
) -> Result<Sii, MethodError> {
    check_confidence(confidence)?;
    let n = population.len();
    if value.len() != n || se.len() != n {
        return invalid(format!(
            "SII needs one population, value and standard error per quantile (got {}, {}, {})",
            n,
            value.len(),
            se.len()
        ));
    }
    if !(5..=100).contains(&n) {
        return invalid(format!(
            "SII needs between 5 and 100 quantiles (got {n}), as PHE requires"
        ));
    }
    if repetitions < 1000 {
        return invalid(format!(
            "SII simulation needs at least 1,000 repetitions (got {repetitions})"
        ));
    }
    let mut total = 0.0;
    for i in 0..n {
        check_denominator(&format!("population of quantile {}", i + 1), population[i])?;
        if !value[i].is_finite() {
            return invalid(format!("value of quantile {} is not a number", i + 1));
        }
        if value_type == SiiValueType::Rate && value[i] <= 0.0 {
            return invalid(format!(
                "rate of quantile {} is {} : a rate's log needs it > 0",
                i + 1,
                value[i]
            ));
        }
        if value_type == SiiValueType::Proportion && !(value[i] > 0.0 && value[i] < 1.0) {
            return invalid(format!(
                "proportion of quantile {} is {}: must be strictly between 0 and 1",
                i + 1,
                value[i]
            ));
        }
        if !(se[i] >= 0.0 && se[i].is_finite()) {
            return invalid(format!(
                "standard error of quantile {} is {}: must be ≥ 0",
                i + 1,
                se[i]
            ));
        }
        total += population[i];
    }
    // a: population shares; b: cumulative midpoints; regression weights
    let mut sa = vec![0.0; n];
    let mut b = vec![0.0; n];
    let mut cum = 0.0;
    let (mut s00, mut s01, mut s11) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let a = population[i] / total;
        b[i] = cum + a / 2.0;
        cum += a;
        sa[i] = a.sqrt();
        s00 += a;
        s01 += a * b[i];
        s11 += a * b[i] * b[i];
    }
    let det = s00 * s11 - s01 * s01;
    // rows of (XᵀX)⁻¹Xᵀ, already multiplied by √a so they apply to the raw value
    let mut c0 = vec![0.0; n];
    let mut c1 = vec![0.0; n];
    for i in 0..n {
        let x0 = sa[i];
        let x1 = b[i] * sa[i];
        c0[i] = (s11 * x0 - s01 * x1) / det * sa[i];
        c1[i] = (-s01 * x0 + s00 * x1) / det * sa[i];
    }
    let fit = |y: &dyn Fn(usize) -> f64| -> (f64, f64) {
        let (mut b0, mut b1) = (0.0, 0.0);
        for i in 0..n {
            let v = y(i);
            b0 += c0[i] * v;
            b1 += c1[i] * v;
        }
        (b0, b1)
    };
    let (b0, b1) = fit(&|i| value[i]);
    let sii_value = b1 * multiplier;
    let mut rii_value = (b0 + b1) / b0;
    if multiplier < 0.0 {
        rii_value = 1.0 / rii_value;
    }
    // simulation
    let mean_t: Vec<f64> = value.iter().map(|v| transform(*v, value_type)).collect();
    let mut rng = Rng::stream(seed, 0x5111);
    let mut sims = vec![0.0; repetitions];
    let mut riis = vec![0.0; repetitions];
    for r in 0..repetitions {
        let (mut s0, mut s1) = (0.0, 0.0);
        for i in 0..n {
            let y = untransform(mean_t[i] + se[i] * rng.normal(), value_type);
            s0 += c0[i] * y;
            s1 += c1[i] * y;
        }
        sims[r] = s1 * multiplier;
        let rr = (s0 + s1) / s0;
        riis[r] = if multiplier < 0.0 { 1.0 / rr } else { rr };
    }
    let cv = confidence + (1.0 - confidence) / 2.0;
    let pl = sim_position(repetitions, 1.0 - cv) - 1;
    let pu = sim_position(repetitions, cv) - 1;
    let pick = |v: &mut Vec<f64>, p: usize| -> f64 {
        let (_, x, _) = v.select_nth_unstable_by(p, f64::total_cmp);
        *x
    };
    let sl = pick(&mut sims, pl);
    let su = pick(&mut sims, pu);
    let rl = pick(&mut riis, pl);
    let ru = pick(&mut riis, pu);
    Ok(Sii {
        sii: Estimate {
            value: sii_value,
            lower: sl,
            upper: su,
        },
        rii: Estimate {
            value: rii_value,
            lower: rl,
            upper: ru,
        },
        intercept: b0,
    })
}

// ---------------------------------------------------------------------------------
// 6. Funnel plots
// ---------------------------------------------------------------------------------

/// Where a unit falls against funnel control limits (PHE's labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Significance {
    /// Below the 99.8% limit.
    Low999,
    /// Below the 95% limit but not the 99.8% limit.
    Low95,
    /// Within the 95% limits.
    NotSignificant,
    /// Above the 95% limit but not the 99.8% limit.
    High95,
    /// Above the 99.8% limit.
    High999,
}

impl Significance {
    /// PHE's label ("High (0.001)" …).
    pub fn label(self) -> &'static str {
        match self {
            Significance::Low999 => "Low (0.001)",
            Significance::Low95 => "Low (0.025)",
            Significance::NotSignificant => "Not significant",
            Significance::High95 => "High (0.025)",
            Significance::High999 => "High (0.001)",
        }
    }
}

/// Funnel limits for a proportion at denominator `n` around the average proportion `p`
/// (0–1), at a two-sided confidence: p ± z√(p(1 − p)/n), clipped to [0, 1]. This is the
/// proportion whose Wilson interval just reaches p — PHE's funnel (PHEindicatormethods/
/// PHStatsMethods `sigma_adjustment` solve that quadratic; the two agree to 1e-12).
pub fn funnel_proportion_limits(n: f64, p: f64, confidence: f64) -> (f64, f64) {
    let h = z_value(confidence) * (p * (1.0 - p) / n).sqrt();
    ((p - h).max(0.0), (p + h).min(1.0))
}

/// PHE's funnel significance of a proportion `count`/`n` against the average `p`.
pub fn funnel_proportion_significance(count: f64, n: f64, p: f64) -> Significance {
    let y = count / n;
    let (l3, u3) = funnel_proportion_limits(n, p, 0.998);
    let (l2, u2) = funnel_proportion_limits(n, p, 0.95);
    // PHE tests the unclipped limits; clipping changes nothing for 0 ≤ y ≤ 1
    if y < l3 {
        Significance::Low999
    } else if y < l2 {
        Significance::Low95
    } else if y > u3 {
        Significance::High999
    } else if y > u2 {
        Significance::High95
    } else {
        Significance::NotSignificant
    }
}

/// Solve for the continuous count x with `f(x) = target`, f decreasing in x.
fn solve_decreasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while f(hi) > target && hi < 1e12 {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi.max(1e-300) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Exact Poisson funnel limits for a ratio O/E at expected count `expected` (Spiegelhalter
/// 2005; PHE's funnel tool). PHE tabulates, for each whole observed count O, the expected
/// count at which O sits on the limit — the exact Poisson limit of O — and draws the
/// funnel through those points; this returns that curve at any E by solving for the
/// (continuous) O, so it passes exactly through PHE's points. Ratio of 1 (× ref_value
/// by the caller).
pub fn funnel_poisson_limits(expected: f64, confidence: f64) -> (f64, f64) {
    let p = (1.0 - confidence) / 2.0;
    if expected <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    // upper: the O whose exact lower limit is E: P(O, E) = p  (P decreasing in O)
    let o_hi = solve_decreasing(|o| if o == 0.0 { 1.0 } else { gamma_p(o, expected) }, p);
    // lower: the O whose exact upper limit is E: P(O + 1, E) = 1 − p
    let o_lo = if gamma_p(1.0, expected) <= 1.0 - p {
        0.0
    } else {
        solve_decreasing(|o| gamma_p(o + 1.0, expected), 1.0 - p)
    };
    (o_lo / expected, o_hi / expected)
}

/// One point of PHE's tabulated Poisson funnel: for a whole observed count `observed`,
/// the expected counts at which it is on the lower and upper limit.
pub fn funnel_poisson_point(observed: f64, confidence: f64) -> (f64, f64) {
    let p = (1.0 - confidence) / 2.0;
    let on_lower = gamma_quantile(observed + 1.0, 1.0 - p);
    let on_upper = if observed > 0.0 {
        gamma_quantile(observed, p)
    } else {
        0.0
    };
    (on_lower, on_upper)
}

/// PHE's funnel significance of a count against an expected count: where the reference
/// (1 for a ratio, or `expected` = the count the average rate predicts) falls against
/// Byar's interval of the observed count (exact below 10).
pub fn funnel_poisson_significance(
    observed: f64,
    expected: f64,
) -> Result<Significance, MethodError> {
    check_denominator("expected", expected)?;
    let (l3, u3) = byars(observed, 0.998)?;
    let (l2, u2) = byars(observed, 0.95)?;
    Ok(if l3 / expected > 1.0 {
        Significance::High999
    } else if l2 / expected > 1.0 {
        Significance::High95
    } else if u3 / expected < 1.0 {
        Significance::Low999
    } else if u2 / expected < 1.0 {
        Significance::Low95
    } else {
        Significance::NotSignificant
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_known_values() {
        // scipy.stats.norm.ppf
        assert!((z_value(0.95) - 1.959_963_984_540_054).abs() < 1e-13);
        assert!((z_value(0.998) - 3.090_232_306_167_813_5).abs() < 1e-12);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-9);
    }

    #[test]
    fn gamma_quantile_inverts_p() {
        for &a in &[0.5, 1.0, 3.0, 9.0, 10.0, 57.0, 1000.0] {
            for &p in &[0.001, 0.025, 0.5, 0.975, 0.999] {
                let x = gamma_quantile(a, p);
                assert!((gamma_p(a, x) - p).abs() < 1e-12, "a={a} p={p}");
            }
        }
        // exact upper limit of 0 events at 95% is −ln(0.025)
        assert!((poisson_exact(0.0, 0.95).1 - 3.688_879_454_113_936).abs() < 1e-12);
    }
}

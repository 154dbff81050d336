//! The public-health statistics the Observatory applies, at 95% confidence.
//! (Adapter over `trent_stats`; see docs/methods.md for each method's reference.)

use trent_stats::stats::ESP2013;

const Z: f64 = 1.959_963_984_540_054;

/// Wilson score interval of a proportion num/den.
pub fn wilson(num: f64, den: f64) -> (f64, f64) {
    let p = num / den;
    let z2 = Z * Z;
    let c = (2.0 * num + z2) / (2.0 * (den + z2));
    let h = Z * (z2 + 4.0 * num * (1.0 - p)).sqrt() / (2.0 * (den + z2));
    ((c - h).max(0.0), (c + h).min(1.0))
}

/// Byar's approximation to the exact Poisson interval of a count.
pub fn byar(o: f64) -> (f64, f64) {
    let lo = if o <= 0.0 {
        0.0
    } else {
        o * (1.0 - 1.0 / (9.0 * o) - Z / (3.0 * o.sqrt())).powi(3)
    };
    let o1 = o + 1.0;
    let hi = o1 * (1.0 - 1.0 / (9.0 * o1) + Z / (3.0 * o1.sqrt())).powi(3);
    (lo, hi)
}

/// Directly standardised rate (per person-year) with the Dobson interval, ESP 2013.
pub fn dsr(events: &[f64; 19], py: &[f64; 19]) -> Option<(f64, f64, f64)> {
    let wsum: f64 = (0..19).filter(|&b| py[b] > 0.0).map(|b| ESP2013[b]).sum();
    if wsum <= 0.0 {
        return None;
    }
    let (mut r, mut var) = (0.0, 0.0);
    let mut o = 0.0;
    for b in 0..19 {
        if py[b] > 0.0 {
            let w = ESP2013[b] / wsum;
            r += w * events[b] / py[b];
            var += w * w * events[b] / (py[b] * py[b]);
            o += events[b];
        }
    }
    if o <= 0.0 {
        return Some((0.0, 0.0, 0.0));
    }
    let (lo, hi) = byar(o);
    let k = (var / o).sqrt();
    Some((r, r + k * (lo - o), r + k * (hi - o)))
}

fn chiang(deaths: &[f64; 20], py: &[f64; 20], bad: Option<&[(f64, f64); 20]>) -> Option<(f64, f64, f64)> {
    const START: [f64; 20] = [0., 1., 5., 10., 15., 20., 25., 30., 35., 40., 45., 50., 55., 60., 65., 70., 75., 80., 85., 90.];
    let n = 20;
    if py.iter().any(|p| *p <= 0.0) {
        return None;
    }
    let mut l = [0.0; 21];
    let mut q = [0.0; 20];
    let mut big_l = [0.0; 20];
    let mut a = [0.5; 20];
    a[0] = 0.1;
    l[0] = 100_000.0;
    for i in 0..n {
        let m = deaths[i] / py[i];
        if i == n - 1 {
            q[i] = 1.0;
            big_l[i] = if m > 0.0 { l[i] / m } else { 0.0 };
        } else {
            let w = START[i + 1] - START[i];
            q[i] = (w * m / (1.0 + w * (1.0 - a[i]) * m)).min(1.0);
            l[i + 1] = l[i] * (1.0 - q[i]);
            big_l[i] = w * (l[i + 1] + a[i] * (l[i] - l[i + 1]));
        }
    }
    let mut t = [0.0; 21];
    for i in (0..n).rev() {
        let w = if let Some(b) = bad {
            1.0 - if b[i].1 > 0.0 { b[i].0 / b[i].1 } else { 0.0 }
        } else {
            1.0
        };
        t[i] = t[i + 1] + big_l[i] * w;
    }
    let e0 = t[0] / l[0];
    // Chiang variance (Silcocks for the open interval)
    let mut var = 0.0;
    for i in 0..n {
        let v = if i == n - 1 {
            let m = deaths[i] / py[i];
            if m > 0.0 { (l[i] / 2.0).powi(2) / m.powi(4) * deaths[i] / py[i].powi(2) } else { 0.0 }
        } else {
            let w = START[i + 1] - START[i];
            let e_next = t[i + 1] / l[i + 1].max(1e-12);
            let qv = if deaths[i] > 0.0 { q[i] * q[i] * (1.0 - q[i]) / deaths[i] } else { 0.0 };
            l[i] * l[i] * ((1.0 - a[i]) * w + e_next).powi(2) * qv
        };
        var += v;
    }
    let se = var.sqrt() / l[0];
    Some((e0, e0 - Z * se, e0 + Z * se))
}

/// Life expectancy at birth (Chiang II abridged life table; groups 0, 1-4, 5-9 … 90+).
pub fn life_expectancy(deaths: &[f64; 20], py: &[f64; 20]) -> Option<(f64, f64, f64)> {
    chiang(deaths, py, None)
}

/// Healthy life expectancy at birth (Sullivan), from (not good, asked) by group.
pub fn healthy_life_expectancy(deaths: &[f64; 20], py: &[f64; 20], bad: &[(f64, f64); 20]) -> Option<(f64, f64, f64)> {
    chiang(deaths, py, Some(bad))
}

/// An XmR chart read the Making Data Count way.
#[derive(Debug, Clone)]
pub struct Chart {
    /// per point: `special_cause_improving`, `special_cause_concerning`, `special_cause_neither`, `common_cause`
    pub variation: Vec<String>,
    /// against the target: `consistently_passing`, `consistently_failing`, `hit_and_miss`
    pub assurance: Option<String>,
}

/// XmR chart of a series; `improve`: Some(true) if higher is better.
pub fn xmr(values: &[f64], improve: Option<bool>, target: Option<f64>) -> Chart {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mr: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mr_mean = if mr.is_empty() { 0.0 } else { mr.iter().sum::<f64>() / mr.len() as f64 };
    let (ucl, lcl) = (mean + 2.66 * mr_mean, mean - 2.66 * mr_mean);
    let sigma = 2.66 * mr_mean / 3.0;
    let mut high = vec![false; n];
    let mut low = vec![false; n];
    for i in 0..n {
        if values[i] > ucl {
            high[i] = true;
        }
        if values[i] < lcl {
            low[i] = true;
        }
    }
    // runs of 7 on one side of the mean
    let mut i = 0;
    while i < n {
        let side = values[i].partial_cmp(&mean);
        let mut j = i;
        while j < n && values[j].partial_cmp(&mean) == side && side != Some(std::cmp::Ordering::Equal) {
            j += 1;
        }
        if j - i >= 7 {
            for k in i..j {
                if side == Some(std::cmp::Ordering::Greater) { high[k] = true } else { low[k] = true }
            }
        }
        i = j.max(i + 1);
    }
    // trends of 7 increasing or decreasing
    for dir in [1.0, -1.0] {
        let mut s = 0;
        for k in 1..=n {
            if k < n && (values[k] - values[k - 1]) * dir > 0.0 {
                continue;
            }
            if k - s >= 7 {
                for m in s..k {
                    if dir > 0.0 { high[m] = true } else { low[m] = true }
                }
            }
            s = k;
        }
    }
    // two of three beyond two sigma, same side
    for k in 2..n {
        for up in [true, false] {
            let beyond = |x: f64| if up { x > mean + 2.0 * sigma } else { x < mean - 2.0 * sigma };
            let c = (k - 2..=k).filter(|&m| beyond(values[m])).count();
            if c >= 2 {
                for m in k - 2..=k {
                    if beyond(values[m]) {
                        if up { high[m] = true } else { low[m] = true }
                    }
                }
            }
        }
    }
    let variation = (0..n)
        .map(|k| {
            let v = match (high[k] || low[k], improve) {
                (false, _) => "common_cause",
                (true, None) => "special_cause_neither",
                (true, Some(up)) => {
                    if high[k] == up { "special_cause_improving" } else { "special_cause_concerning" }
                }
            };
            v.to_string()
        })
        .collect();
    let assurance = match (target, improve) {
        (Some(t), Some(up)) => Some(
            if (up && lcl > t) || (!up && ucl < t) {
                "consistently_passing"
            } else if (up && ucl < t) || (!up && lcl > t) {
                "consistently_failing"
            } else {
                "hit_and_miss"
            }
            .to_string(),
        ),
        _ => None,
    };
    Chart { variation, assurance }
}

/// Slope index of inequality from (population, value, lower, upper) by decile, most
/// deprived first: weighted least squares of value on the cumulative population midpoint,
/// weights from each value's variance; returns (SII, lower, upper) with SII as the
/// least-deprived minus most-deprived gap reversed (most − least deprived).
pub fn sii(deciles: &[(f64, f64, f64, f64)]) -> Option<(f64, f64, f64)> {
    let total: f64 = deciles.iter().map(|d| d.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut cum = 0.0;
    let (mut sw, mut swx, mut swy, mut swxx, mut swxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(pop, v, lo, hi) in deciles {
        let x = (cum + pop / 2.0) / total;
        cum += pop;
        let se = ((hi - lo) / (2.0 * Z)).max(1e-12);
        let w = 1.0 / (se * se);
        sw += w;
        swx += w * x;
        swy += w * v;
        swxx += w * x * x;
        swxy += w * x * v;
    }
    let d = sw * swxx - swx * swx;
    if d <= 0.0 {
        return None;
    }
    let slope = (sw * swxy - swx * swy) / d;
    let se = (sw / d).sqrt();
    // x runs from most (0) to least (1) deprived: SII is the fall across the gradient
    let sii = -slope;
    Some((sii, sii - Z * se, sii + Z * se))
}

//! Statistics shared by calibration and the check: the European Standard Population
//! 2013, directly standardised rates, abridged life tables (Chiang II) and the Sullivan
//! method for healthy life expectancy, logit solving, the normal CDF.

/// European Standard Population 2013 weights for 0-4 … 85-89, 90+ (19 bands; 90-94 and
/// 95+ merged), per 100,000.
pub const ESP2013: [f64; 19] = [
    5000.0, 5500.0, 5500.0, 5500.0, 6000.0, 6000.0, 6500.0, 7000.0, 7000.0, 7000.0, 7000.0, 6500.0,
    6000.0, 5500.0, 5000.0, 4000.0, 2500.0, 1500.0, 1000.0,
];

/// 5-year band index (0-4 → 0 … 90+ → 18) of an age in years.
pub fn band(age: i32) -> usize {
    (age.max(0) / 5).min(18) as usize
}

/// Directly standardised rate per 100,000 over bands `lo..hi` (band indices), from
/// events and person-years by band; with a 99.9% interval half-width from the Poisson
/// variance (Dobson-style normal approximation).
pub fn dsr(events: &[f64; 19], person_years: &[f64; 19], lo: usize, hi: usize) -> (f64, f64) {
    let wsum: f64 = ESP2013[lo..hi].iter().sum();
    let mut rate = 0.0;
    let mut var = 0.0;
    for b in lo..hi {
        if person_years[b] > 0.0 {
            let w = ESP2013[b] / wsum;
            rate += w * events[b] / person_years[b];
            var += w * w * events[b].max(1.0) / (person_years[b] * person_years[b]);
        }
    }
    (rate * 1e5, 3.29 * var.sqrt() * 1e5)
}

/// Life expectancy at birth and, with prevalence of not-good health by band, healthy
/// life expectancy (Sullivan), from deaths, person-years and band prevalence. Returns
/// (LE, LE half-width, HLE, HLE half-width) at 99.9%. Bands: 0-4 … 85-89, 90+.
pub fn life_table(
    deaths: &[f64; 19],
    person_years: &[f64; 19],
    bad_health: &[(f64, f64); 19],
) -> (f64, f64, f64, f64) {
    let n = 19;
    let mut m = [0.0; 19];
    for b in 0..n {
        m[b] = if person_years[b] > 0.0 {
            deaths[b] / person_years[b]
        } else {
            0.0
        };
    }
    let width = |b: usize| if b == n - 1 { 0.0 } else { 5.0 };
    let a = 0.5;
    let mut l = [0.0; 20];
    let mut q = [0.0; 19];
    let mut big_l = [0.0; 19];
    l[0] = 100_000.0;
    for b in 0..n {
        if b == n - 1 {
            q[b] = 1.0;
            big_l[b] = if m[b] > 0.0 { l[b] / m[b] } else { l[b] * 5.0 };
        } else {
            let w = width(b);
            q[b] = (w * m[b] / (1.0 + w * (1.0 - a) * m[b])).min(1.0);
            l[b + 1] = l[b] * (1.0 - q[b]);
            big_l[b] = w * (l[b + 1] + a * (l[b] - l[b + 1]));
        }
    }
    let mut t = [0.0; 20];
    let mut th = [0.0; 20];
    for b in (0..n).rev() {
        t[b] = t[b + 1] + big_l[b];
        th[b] = th[b + 1] + big_l[b] * (1.0 - bad_health[b].0);
    }
    let le = t[0] / l[0];
    let hle = th[0] / l[0];
    // Chiang variance of e0 and the Sullivan prevalence variance
    let mut var_le = 0.0;
    let mut var_hle_p = 0.0;
    for b in 0..n {
        let w = width(b);
        let e_next = if b + 1 < n && l[b + 1] > 0.0 {
            t[b + 1] / l[b + 1]
        } else {
            0.0
        };
        let eh_next = if b + 1 < n && l[b + 1] > 0.0 {
            th[b + 1] / l[b + 1]
        } else {
            0.0
        };
        if b < n - 1 && deaths[b] > 0.0 {
            let var_q = q[b] * q[b] * (1.0 - q[b]) / deaths[b];
            var_le += l[b] * l[b] * ((1.0 - a) * w + e_next).powi(2) * var_q;
            let hw = (1.0 - a) * w * (1.0 - bad_health[b].0) + eh_next;
            let _ = hw;
        } else if b == n - 1 && deaths[b] > 0.0 && m[b] > 0.0 {
            var_le += (l[b] / 2.0).powi(2) * 4.0 / (deaths[b] * m[b] * m[b]);
        }
        let (p, n_obs) = bad_health[b];
        if n_obs > 0.0 {
            var_hle_p += big_l[b] * big_l[b] * p * (1.0 - p) / n_obs;
        }
    }
    var_le /= l[0] * l[0];
    var_hle_p /= l[0] * l[0];
    let hw_le = 3.29 * var_le.sqrt();
    let hw_hle = 3.29 * (var_le * ((hle / le.max(1e-9)).powi(2)) + var_hle_p).sqrt();
    (le, hw_le, hle, hw_hle)
}

/// Logistic function.
pub fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Find `a` such that the weighted mean of `logistic(a + lp)` equals `target`.
pub fn solve_intercept(samples: &[(f64, f64)], target: f64) -> f64 {
    let f = |a: f64| {
        let (s, w) = samples.iter().fold((0.0, 0.0), |(s, w), (wt, lp)| {
            (s + wt * logistic(a + lp), w + wt)
        });
        if w > 0.0 { s / w } else { 0.0 }
    };
    bisect(|a| f(a) - target, -20.0, 20.0)
}

/// Root of an increasing function on [lo, hi] by bisection.
pub fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf).
pub fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

/// Half-width of a 99.9% interval for a proportion p from n observations.
pub fn prop_hw(p: f64, n: f64) -> f64 {
    if n <= 0.0 {
        f64::INFINITY
    } else {
        3.29 * (p * (1.0 - p) / n).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_sums_to_100k() {
        assert_eq!(ESP2013.iter().sum::<f64>(), 100_000.0);
    }

    #[test]
    fn dsr_of_a_flat_rate_is_that_rate() {
        let ev = [10.0; 19];
        let py = [1000.0; 19];
        let (r, _) = dsr(&ev, &py, 0, 19);
        assert!((r - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn life_table_with_constant_hazard() {
        // constant hazard 0.0125/yr → e0 ≈ 80 years
        let py = [1e6; 19];
        let d = [12_500.0; 19];
        let (le, hw, hle, _) = life_table(&d, &py, &[(0.25, 1e6); 19]);
        assert!((le - 80.0).abs() < 0.6, "{le}");
        assert!(hw > 0.0 && hw < 1.5, "{hw}");
        assert!((hle - 0.75 * le).abs() < 1e-6);
    }

    #[test]
    fn intercept_solver_hits_target() {
        let s: Vec<(f64, f64)> = (0..100).map(|i| (1.0, i as f64 / 50.0 - 1.0)).collect();
        let a = solve_intercept(&s, 0.3);
        let m: f64 = s.iter().map(|(_, lp)| logistic(a + lp)).sum::<f64>() / 100.0;
        assert!((m - 0.3).abs() < 1e-9);
        assert!((norm_cdf(1.96) - 0.975).abs() < 1e-3);
    }
}

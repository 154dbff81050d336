//! Monte Carlo over the schemes' ranges: how likely is the remaining gap to be what the
//! plan says?
//!
//! The plan states its scheme values are "an average of high and low savings scenarios"
//! (§8) and that "there is a high level of risk involved in the delivery of these
//! savings". So each scheme's full-year net saving is drawn from a **triangular
//! distribution** on `[low, high]` with the plan's value as its mode. Why triangular and not
//! PERT or normal: it is bounded by the range the analyst wrote (no saving beyond `high`,
//! none below `low`), it needs no shape parameter the plan does not give, its mode is
//! exactly the plan's value, and when the range is symmetric about the plan's value its mean
//! is that value too (matching "an average of high and low"). Its inverse CDF is closed
//! form, so a draw is one uniform number and one square root.
//!
//! Schemes are drawn independently. That understates the spread if schemes share a cause
//! (one workforce shortfall hits them all); `docs/finance.md` says so.
//!
//! Why it is fast: a run does not re-evaluate the plan. The remaining gap is linear in each
//! scheme's net saving, so a run is the deterministic answer minus
//! `Σ (draw − net) × ramp[t] × share(entity)`, with the coefficients computed once. Each run
//! draws from its own stream `Rng::stream(seed, run)`, so the result is deterministic for a
//! seed and does not depend on how runs are scheduled.

use serde::Serialize;
use trent_stats::rng::Rng;

use crate::engine::{Evaluation, Layout};
use crate::error::FinanceError;
use crate::plan::Plan;

/// Summary of the simulated distribution of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Mean.
    pub mean: f64,
    /// The deterministic (plan) value, for comparison.
    pub deterministic: f64,
}

/// One year of a simulated entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedYear {
    /// The year.
    pub year: String,
    /// Remaining gap quantiles (£m).
    pub remaining_gap: Quantiles,
}

/// The simulated remaining gap of one entity (the system or a body).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedEntity {
    /// `system` or a body id.
    pub id: String,
    /// One entry per plan year.
    pub years: Vec<SimulatedYear>,
}

/// A Monte Carlo result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// Number of runs.
    pub runs: usize,
    /// Seed.
    pub seed: u64,
    /// The distribution used, in words.
    pub distribution: String,
    /// System first, then bodies.
    pub entities: Vec<SimulatedEntity>,
}

impl Simulation {
    /// The simulated entity with this id.
    pub fn entity(&self, id: &str) -> Option<&SimulatedEntity> {
        self.entities.iter().find(|e| e.id == id)
    }
}

/// Draw from the triangular distribution on `[low, high]` with mode `mode`, by inverse CDF
/// of the uniform `u` in [0, 1). A zero-width range returns `mode` exactly.
pub fn triangular(low: f64, mode: f64, high: f64, u: f64) -> f64 {
    let w = high - low;
    if w <= 0.0 {
        return mode;
    }
    let fc = (mode - low) / w;
    if u < fc {
        low + (u * w * (mode - low)).sqrt()
    } else {
        high - ((1.0 - u) * w * (high - mode)).sqrt()
    }
}

/// The `p`-quantile (0..=1) of sorted values, linearly interpolated (Hyndman–Fan type 7, the
/// default of R and NumPy).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Simulate `runs` draws of every scheme's net saving and summarise the remaining gap of
/// the system and of each body per year.
pub fn simulate(
    plan: &Plan,
    ev: &Evaluation,
    runs: usize,
    seed: u64,
) -> Result<Simulation, FinanceError> {
    if runs == 0 {
        return Err(FinanceError::invalid(
            "<input>",
            "simulate",
            runs,
            "the number of runs must be at least 1",
        ));
    }
    let p = plan.file();
    let lay = Layout::new(p);
    let ny = lay.n_years;
    let ids: Vec<String> = std::iter::once("system".to_string())
        .chain(lay.body_ids.iter().cloned())
        .collect();
    let ne = ids.len();

    // coef[s][e * ny + t]: how much one £ of scheme s's full-year net moves entity e in year t.
    let schemes: Vec<(f64, f64, f64, Vec<f64>)> = ev
        .schemes
        .iter()
        .zip(&p.schemes)
        .map(|(line, s)| {
            let mut coef = vec![0.0; ne * ny];
            for (org, share) in &s.falls_on {
                let b = lay.org_body(lay.org_index[org]);
                for t in 1..ny {
                    let c = share * s.ramp[t - 1];
                    coef[t] += c; // system
                    coef[(1 + b) * ny + t] += c;
                }
            }
            (line.low, line.net, line.high, coef)
        })
        .collect();

    let det: Vec<f64> = ids
        .iter()
        .flat_map(|id| {
            let e = ev.entity(id).expect("system and bodies exist");
            e.years.iter().map(|y| y.remaining_gap)
        })
        .collect();

    // samples[(e * ny + t) * runs + r]
    let mut samples = vec![0.0; ne * ny * runs];
    let mut shift = vec![0.0; ne * ny];
    for r in 0..runs {
        let mut rng = Rng::stream(seed, r as u64);
        shift.iter_mut().for_each(|x| *x = 0.0);
        for (low, net, high, coef) in &schemes {
            let u = rng.f64();
            let d = triangular(*low, *net, *high, u) - net;
            if d != 0.0 {
                for (s, c) in shift.iter_mut().zip(coef) {
                    *s += d * c;
                }
            }
        }
        for k in 0..ne * ny {
            samples[k * runs + r] = det[k] - shift[k];
        }
    }

    let mut entities = Vec::with_capacity(ne);
    for (e, id) in ids.iter().enumerate() {
        let mut years = Vec::with_capacity(ny);
        for t in 0..ny {
            let k = e * ny + t;
            let v = &mut samples[k * runs..(k + 1) * runs];
            v.sort_by(f64::total_cmp);
            let mean = v.iter().sum::<f64>() / runs as f64;
            years.push(SimulatedYear {
                year: ev.years[t].clone(),
                remaining_gap: Quantiles {
                    p10: quantile_sorted(v, 0.10),
                    p50: quantile_sorted(v, 0.50),
                    p90: quantile_sorted(v, 0.90),
                    mean,
                    deterministic: det[k],
                },
            });
        }
        entities.push(SimulatedEntity {
            id: id.clone(),
            years,
        });
    }
    Ok(Simulation {
        runs,
        seed,
        distribution:
            "each scheme's net saving ~ triangular(low, mode = plan value, high), independent"
                .into(),
        entities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangular_has_its_mean_and_bounds() {
        let mut r = Rng::stream(1, 0);
        let n = 200_000;
        let (a, c, b) = (2.0, 3.0, 7.0);
        let mut sum = 0.0;
        for _ in 0..n {
            let x = triangular(a, c, b, r.f64());
            assert!((a..=b).contains(&x));
            sum += x;
        }
        assert!((sum / n as f64 - (a + b + c) / 3.0).abs() < 0.01);
        assert_eq!(triangular(5.0, 5.0, 5.0, 0.3), 5.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.1) - 1.4).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 1.0), 5.0);
    }
}

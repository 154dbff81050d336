//! Bed capacity: how many beds a flow of admissions needs, and what a bed reduction asks
//! of admissions or length of stay.
//!
//! Why: the plan's acute bed reduction ("200 over 2 years") and its occupancy and
//! length-of-stay targets are capacity statements; a finance scheme that removes beds is
//! only safe if the remaining beds can still take the admissions. This module answers that
//! with the standard loss model and checks the model with a simulation.
//!
//! The model: admissions arrive as a Poisson process (rate λ per day); each stays for a
//! length of stay (LOS) drawn from any distribution with mean `E[S]`; an admission that
//! finds every bed full is *blocked* (diverted, outlied, or waits on a trolley). This is the
//! M/G/c/c loss system. Its blocking probability is the **Erlang B** formula of the offered
//! load `a = λ·E[S]` (erlangs, i.e. the mean number of beds that would be occupied with
//! unlimited beds), and — the reason it is the right tool here — it is *insensitive* to the
//! LOS distribution beyond its mean (Sevastyanov 1957). Skewed, long-tailed LOS data give
//! the same blocking as exponential LOS with the same mean; the simulation test checks it.
//!
//! Occupancy is the carried load per bed, `a·(1 − B)/c`. A target occupancy (e.g. 85%) and
//! a target blocking probability are different questions; both are answered.
//!
//! The caller supplies admissions per day and LOS samples (later computed from the data
//! lake); nothing here reads data.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;
use trent_stats::rng::Rng;

use crate::error::FinanceError;

const INPUT: &str = "<input>";

/// Erlang B: the probability that an arrival finds all `beds` occupied when the offered
/// load is `load` erlangs. Computed by the stable recursion
/// `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`.
pub fn erlang_b(beds: u32, load: f64) -> f64 {
    if load <= 0.0 {
        return if beds == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for k in 1..=beds {
        let ab = load * b;
        b = ab / (k as f64 + ab);
    }
    b
}

/// Offered load in erlangs: admissions per day × mean length of stay in days.
pub fn offered_load(admissions_per_day: f64, mean_los_days: f64) -> f64 {
    admissions_per_day * mean_los_days
}

/// Mean occupancy of `beds` beds (fraction of beds occupied) under `load` erlangs.
pub fn occupancy(beds: u32, load: f64) -> f64 {
    if beds == 0 {
        return 0.0;
    }
    load * (1.0 - erlang_b(beds, load)) / beds as f64
}

fn check_probability(key: &str, p: f64) -> Result<(), FinanceError> {
    if !(p > 0.0 && p < 1.0) {
        return Err(FinanceError::invalid(
            INPUT,
            key,
            p,
            "must be a probability strictly between 0 and 1",
        ));
    }
    Ok(())
}

fn check_load(load: f64) -> Result<(), FinanceError> {
    if !load.is_finite() || load < 0.0 {
        return Err(FinanceError::invalid(
            INPUT,
            "load",
            load,
            "offered load must be a finite number of erlangs, not negative",
        ));
    }
    Ok(())
}

/// The fewest beds whose blocking probability is at most `target`.
pub fn beds_for_blocking(load: f64, target: f64) -> Result<u32, FinanceError> {
    check_load(load)?;
    check_probability("target_blocking", target)?;
    let mut b = 1.0;
    let mut c: u32 = 0;
    while b > target {
        c += 1;
        let ab = load * b;
        b = ab / (c as f64 + ab);
    }
    Ok(c)
}

/// The fewest beds whose mean occupancy is at most `target` (e.g. 0.85).
pub fn beds_for_occupancy(load: f64, target: f64) -> Result<u32, FinanceError> {
    check_load(load)?;
    check_probability("target_occupancy", target)?;
    let mut b = 1.0;
    let mut c: u32 = 0;
    loop {
        c += 1;
        let ab = load * b;
        b = ab / (c as f64 + ab);
        if load * (1.0 - b) / c as f64 <= target {
            return Ok(c);
        }
    }
}

/// A length-of-stay distribution, in days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LosDistribution {
    /// Observed stays, sampled with replacement.
    Empirical(Vec<f64>),
    /// Lognormal with this mean and standard deviation (days).
    LogNormal {
        /// Mean LOS.
        mean: f64,
        /// Standard deviation of LOS.
        sd: f64,
    },
}

impl LosDistribution {
    /// The mean length of stay.
    pub fn mean(&self) -> f64 {
        match self {
            LosDistribution::Empirical(v) => v.iter().sum::<f64>() / v.len() as f64,
            LosDistribution::LogNormal { mean, .. } => *mean,
        }
    }

    fn validate(&self) -> Result<(), FinanceError> {
        match self {
            LosDistribution::Empirical(v) => {
                if v.is_empty() {
                    return Err(FinanceError::invalid(
                        INPUT,
                        "los_samples",
                        "[]",
                        "need at least one length of stay",
                    ));
                }
                if let Some((i, x)) = v
                    .iter()
                    .enumerate()
                    .find(|(_, x)| !x.is_finite() || **x < 0.0)
                {
                    return Err(FinanceError::invalid(
                        INPUT,
                        format!("los_samples[{i}]"),
                        x,
                        "a length of stay is a finite number of days, not negative",
                    ));
                }
                if self.mean() <= 0.0 {
                    return Err(FinanceError::invalid(
                        INPUT,
                        "los_samples",
                        "(all zero)",
                        "the mean length of stay must be positive",
                    ));
                }
            }
            LosDistribution::LogNormal { mean, sd } => {
                if !(mean.is_finite() && *mean > 0.0) {
                    return Err(FinanceError::invalid(
                        INPUT,
                        "los.mean",
                        mean,
                        "must be positive",
                    ));
                }
                if !(sd.is_finite() && *sd >= 0.0) {
                    return Err(FinanceError::invalid(
                        INPUT,
                        "los.sd",
                        sd,
                        "must not be negative",
                    ));
                }
            }
        }
        Ok(())
    }

    fn sampler(&self) -> impl Fn(&mut Rng) -> f64 + '_ {
        let (mu, sigma) = match self {
            LosDistribution::LogNormal { mean, sd } => {
                let s2 = (1.0 + (sd / mean).powi(2)).ln();
                (mean.ln() - s2 / 2.0, s2.sqrt())
            }
            LosDistribution::Empirical(_) => (0.0, 0.0),
        };
        move |rng: &mut Rng| match self {
            LosDistribution::Empirical(v) => v[rng.below(v.len() as u64) as usize],
            LosDistribution::LogNormal { .. } => (mu + sigma * rng.normal()).exp(),
        }
    }
}

/// Demand for beds: admissions per day and their length of stay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedDemand {
    /// Mean admissions per day.
    pub admissions_per_day: f64,
    /// Length-of-stay distribution.
    pub los: LosDistribution,
}

impl BedDemand {
    /// Demand from admissions per day and a distribution; validated.
    pub fn new(admissions_per_day: f64, los: LosDistribution) -> Result<BedDemand, FinanceError> {
        if !(admissions_per_day.is_finite() && admissions_per_day > 0.0) {
            return Err(FinanceError::invalid(
                INPUT,
                "admissions_per_day",
                admissions_per_day,
                "must be a positive number",
            ));
        }
        los.validate()?;
        Ok(BedDemand {
            admissions_per_day,
            los,
        })
    }

    /// Demand from admissions per day and observed lengths of stay (days).
    pub fn from_samples(
        admissions_per_day: f64,
        los_days: &[f64],
    ) -> Result<BedDemand, FinanceError> {
        BedDemand::new(
            admissions_per_day,
            LosDistribution::Empirical(los_days.to_vec()),
        )
    }

    /// Mean length of stay.
    pub fn mean_los(&self) -> f64 {
        self.los.mean()
    }

    /// Offered load in erlangs.
    pub fn offered_load(&self) -> f64 {
        offered_load(self.admissions_per_day, self.mean_los())
    }
}

/// Options of the discrete-event simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BedSimOptions {
    /// Simulated days counted (after the warm-up).
    pub days: f64,
    /// Days simulated first and not counted, so the run starts from a loaded ward.
    pub warmup_days: f64,
    /// Number of equal time batches for the standard error (batch means).
    pub batches: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for BedSimOptions {
    fn default() -> Self {
        BedSimOptions {
            days: 10_000.0,
            warmup_days: 200.0,
            batches: 20,
            seed: 1,
        }
    }
}

/// Result of a bed simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedSimulation {
    /// Beds simulated.
    pub beds: u32,
    /// Arrivals counted.
    pub arrivals: u64,
    /// Arrivals that found every bed occupied.
    pub blocked: u64,
    /// blocked / arrivals.
    pub blocking: f64,
    /// Standard error of `blocking` by batch means.
    pub std_error: f64,
    /// Mean fraction of beds occupied, as seen by arrivals (Poisson arrivals see time
    /// averages), counting an arrival's own bed not yet taken.
    pub occupancy: f64,
    /// Erlang B for the same beds and offered load.
    pub erlang_b: f64,
}

/// Simulate a ward of `beds` beds: Poisson admissions, LOS drawn from the demand's
/// distribution, blocked admissions lost. Seeded and deterministic.
pub fn simulate(
    demand: &BedDemand,
    beds: u32,
    opts: BedSimOptions,
) -> Result<BedSimulation, FinanceError> {
    if beds == 0 {
        return Err(FinanceError::invalid(
            INPUT,
            "beds",
            beds,
            "need at least one bed",
        ));
    }
    if !(opts.days.is_finite() && opts.days > 0.0) {
        return Err(FinanceError::invalid(
            INPUT,
            "days",
            opts.days,
            "must be positive",
        ));
    }
    if !(opts.warmup_days.is_finite() && opts.warmup_days >= 0.0) {
        return Err(FinanceError::invalid(
            INPUT,
            "warmup_days",
            opts.warmup_days,
            "must not be negative",
        ));
    }
    if opts.batches < 2 {
        return Err(FinanceError::invalid(
            INPUT,
            "batches",
            opts.batches,
            "need at least 2 batches for a standard error",
        ));
    }
    let mut rng = Rng::stream(opts.seed, 0);
    let sample = demand.los.sampler();
    let mean_gap = 1.0 / demand.admissions_per_day;
    let end = opts.warmup_days + opts.days;
    let batch_len = opts.days / opts.batches as f64;
    let nb = opts.batches as usize;
    let (mut arr_b, mut blk_b) = (vec![0u64; nb], vec![0u64; nb]);
    let mut busy_seen = 0u64;
    // Departure times; positive f64 bit patterns order like the numbers.
    let mut ward: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(beds as usize + 1);
    let mut t = 0.0;
    loop {
        t += rng.exp(mean_gap);
        if t >= end {
            break;
        }
        while let Some(Reverse(d)) = ward.peek() {
            if f64::from_bits(*d) <= t {
                ward.pop();
            } else {
                break;
            }
        }
        let full = ward.len() >= beds as usize;
        if t >= opts.warmup_days {
            let b = (((t - opts.warmup_days) / batch_len) as usize).min(nb - 1);
            arr_b[b] += 1;
            busy_seen += ward.len() as u64;
            if full {
                blk_b[b] += 1;
            }
        }
        if !full {
            let stay = sample(&mut rng).max(0.0);
            ward.push(Reverse((t + stay).to_bits()));
        }
    }
    let arrivals: u64 = arr_b.iter().sum();
    let blocked: u64 = blk_b.iter().sum();
    let blocking = if arrivals > 0 {
        blocked as f64 / arrivals as f64
    } else {
        0.0
    };
    let rates: Vec<f64> = arr_b
        .iter()
        .zip(&blk_b)
        .map(|(a, b)| if *a > 0 { *b as f64 / *a as f64 } else { 0.0 })
        .collect();
    let m = rates.iter().sum::<f64>() / nb as f64;
    let var = rates.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (nb as f64 - 1.0);
    Ok(BedSimulation {
        beds,
        arrivals,
        blocked,
        blocking,
        std_error: (var / nb as f64).sqrt(),
        occupancy: if arrivals > 0 {
            busy_seen as f64 / arrivals as f64 / beds as f64
        } else {
            0.0
        },
        erlang_b: erlang_b(beds, demand.offered_load()),
    })
}

/// What a bed reduction needs to keep the same blocking probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedReduction {
    /// Beds now.
    pub beds_now: u32,
    /// Beds after the reduction.
    pub beds_after: u32,
    /// Blocking probability now (kept after the reduction).
    pub blocking: f64,
    /// Offered load now (erlangs).
    pub load_now: f64,
    /// Largest offered load the reduced ward carries at the same blocking.
    pub load_after: f64,
    /// Admissions per day now.
    pub admissions_now: f64,
    /// Admissions per day the reduced ward can take at today's mean LOS.
    pub admissions_after: f64,
    /// Fewer admissions per day needed (at today's LOS).
    pub admissions_reduction: f64,
    /// Mean LOS now (days).
    pub mean_los_now: f64,
    /// Mean LOS needed at today's admissions.
    pub mean_los_after: f64,
    /// Days by which the mean LOS must fall (at today's admissions).
    pub los_reduction_days: f64,
}

/// What removing `reduction` of `beds` beds needs — fewer admissions, or a shorter mean
/// stay — to keep today's blocking probability. Found by bisection on the offered load
/// (Erlang B rises with load).
pub fn bed_reduction(
    demand: &BedDemand,
    beds: u32,
    reduction: u32,
) -> Result<BedReduction, FinanceError> {
    if reduction >= beds {
        return Err(FinanceError::invalid(
            INPUT,
            "reduction",
            reduction,
            format!("must be fewer than the {beds} beds"),
        ));
    }
    let load = demand.offered_load();
    let target = erlang_b(beds, load);
    let after = beds - reduction;
    let (mut lo, mut hi) = (0.0, load);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if erlang_b(after, mid) > target {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo <= 1e-12 * load.max(1.0) {
            break;
        }
    }
    let load_after = lo;
    let los = demand.mean_los();
    let adm = demand.admissions_per_day;
    Ok(BedReduction {
        beds_now: beds,
        beds_after: after,
        blocking: target,
        load_now: load,
        load_after,
        admissions_now: adm,
        admissions_after: load_after / los,
        admissions_reduction: adm - load_after / los,
        mean_los_now: los,
        mean_los_after: load_after / adm,
        los_reduction_days: los - load_after / adm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Erlang B from its definition, in logs: (a^c/c!) / Σ_k a^k/k!.
    fn erlang_b_direct(c: u32, a: f64) -> f64 {
        let terms: Vec<f64> = (0..=c)
            .map(|k| k as f64 * a.ln() - (1..=k).map(|i| (i as f64).ln()).sum::<f64>())
            .collect();
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = terms.iter().map(|x| (x - m).exp()).sum();
        (terms[c as usize] - m).exp() / s
    }

    #[test]
    fn erlang_b_matches_known_values_and_definition() {
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-15);
        assert!((erlang_b(2, 1.0) - 0.2).abs() < 1e-15);
        for (c, a) in [(10, 5.0), (50, 45.0), (100, 100.0), (400, 380.0), (3, 0.1)] {
            assert!(
                (erlang_b(c, a) - erlang_b_direct(c, a)).abs() < 1e-10,
                "{c} {a}"
            );
        }
        assert_eq!(erlang_b(5, 0.0), 0.0);
    }

    #[test]
    fn beds_for_targets_are_the_smallest_that_meet_them() {
        let a = 100.0;
        let c = beds_for_blocking(a, 0.01).unwrap();
        assert!(erlang_b(c, a) <= 0.01 && erlang_b(c - 1, a) > 0.01);
        let c = beds_for_occupancy(a, 0.85).unwrap();
        assert!(occupancy(c, a) <= 0.85 && occupancy(c - 1, a) > 0.85);
        assert!(beds_for_blocking(a, 1.5).is_err());
        assert!(beds_for_blocking(-1.0, 0.1).is_err());
    }

    fn check_sim(los: LosDistribution, seed: u64) {
        let demand = BedDemand::new(20.0, los).unwrap();
        let beds = 100;
        let sim = simulate(
            &demand,
            beds,
            BedSimOptions {
                days: 20_000.0,
                warmup_days: 300.0,
                batches: 25,
                seed,
            },
        )
        .unwrap();
        let diff = (sim.blocking - sim.erlang_b).abs();
        // Monte Carlo error: 4 standard errors (batch means), plus the empirical sample's own
        // mean differing slightly from the nominal one for the lognormal draw.
        assert!(
            diff < 4.0 * sim.std_error + 0.002,
            "sim {} erlang {} se {}",
            sim.blocking,
            sim.erlang_b,
            sim.std_error
        );
        let occ = occupancy(beds, demand.offered_load());
        assert!(
            (sim.occupancy - occ).abs() < 0.02,
            "occ {} vs {}",
            sim.occupancy,
            occ
        );
    }

    #[test]
    fn simulation_agrees_with_erlang_b_whatever_the_los_distribution() {
        // Skewed lognormal LOS, mean 5 days.
        check_sim(LosDistribution::LogNormal { mean: 5.0, sd: 7.0 }, 3);
        // Nearly fixed LOS.
        check_sim(LosDistribution::Empirical(vec![4.9, 5.0, 5.1]), 4);
        // Bimodal: day cases and long stays, mean 5.
        check_sim(
            LosDistribution::Empirical(vec![0.5, 0.5, 0.5, 0.5, 23.0]),
            5,
        );
    }

    #[test]
    fn simulation_is_deterministic_for_a_seed() {
        let d = BedDemand::from_samples(10.0, &[1.0, 2.0, 8.0]).unwrap();
        let o = BedSimOptions {
            days: 500.0,
            ..BedSimOptions::default()
        };
        assert_eq!(simulate(&d, 40, o).unwrap(), simulate(&d, 40, o).unwrap());
    }

    #[test]
    fn a_bed_reduction_keeps_blocking_and_needs_more_the_more_beds_go() {
        let d = BedDemand::new(150.0, LosDistribution::LogNormal { mean: 6.0, sd: 8.0 }).unwrap();
        let beds = 1000;
        let mut prev = 0.0;
        for n in [10, 50, 100, 200] {
            let r = bed_reduction(&d, beds, n).unwrap();
            assert!((erlang_b(r.beds_after, r.load_after) - r.blocking).abs() < 1e-9);
            assert!(r.admissions_reduction > prev);
            assert!(r.los_reduction_days > 0.0);
            // Either lever alone reaches the same load.
            assert!((r.admissions_after * r.mean_los_now - r.load_after).abs() < 1e-6);
            assert!((r.admissions_now * r.mean_los_after - r.load_after).abs() < 1e-6);
            prev = r.admissions_reduction;
        }
        assert!(bed_reduction(&d, 10, 10).is_err());
    }

    #[test]
    fn bad_demand_is_refused_with_the_key() {
        let e = BedDemand::from_samples(5.0, &[1.0, -2.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("los_samples[1]") && e.contains("-2"), "{e}");
        assert!(BedDemand::from_samples(0.0, &[1.0]).is_err());
        assert!(BedDemand::from_samples(1.0, &[]).is_err());
    }
}

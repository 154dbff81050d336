//! The Fellegi–Sunter model: m and u probabilities, λ, EM, and match weights.
//!
//! For a pair with comparison levels γ, the match weight is
//!
//! ```text
//! w = log2(λ / (1 − λ)) + Σ_fields log2(m_f[γ_f] / u_f[γ_f]) + TF adjustments
//! ```
//!
//! and the match probability is 2^w / (1 + 2^w). Null levels contribute 0. This is the
//! formulation of Splink's documentation ("The Fellegi-Sunter model", Splink topic
//! guides, MoJ Analytical Services) and of Fellegi & Sunter (1969).
//!
//! **Estimation, as Splink does it:**
//!
//! 1. *u* from random pairs ([`estimate_u`]): `max_pairs` pairs drawn uniformly (a
//!    random pair is almost surely a non-match), u = share of each level among pairs
//!    with both sides present (Splink's `estimate_u_using_random_sampling`). A level
//!    never seen gets u = 0.5 / sampled pairs instead of 0.
//! 2. *m* and λ by EM ([`em`], Dempster, Laird & Rubin 1977; Winkler 1988) on blocked
//!    pairs, one round per blocking rule (Splink's
//!    `estimate_parameters_using_expectation_maximisation`): a round uses every pair
//!    its rule blocks and neither uses nor estimates the comparisons of the fields that
//!    rule constrains; u stays fixed. The final m of a field is the mean of its
//!    estimates over the rounds that estimated it, as Splink averages sessions.
//!    EM runs on counts of distinct level patterns, not pairs, so a round over tens
//!    of millions of pairs costs milliseconds.
//! 3. *λ* — the prior that two random records match — from the date-of-birth round:
//!    matches among its pairs (λ_round × pairs) divided by the share of matching
//!    pairs that agree exactly on date of birth (m of "exact" × the share of pairs with
//!    both dates present), over all n(n−1)/2 pairs. Splink instead asks for
//!    deterministic rules and an assumed recall
//!    (`estimate_probability_two_random_records_match`); here the recall is estimated
//!    from the model itself. When there is no date-of-birth rule, the NHS-number round
//!    is used the same way; a configured λ overrides both.
//!
//! **Term-frequency adjustment** (Splink's `term_frequency_adjustments`, after Winkler
//! 1988): for an exact match on given or family name, the level's u is replaced by the
//! frequency of that name among records, i.e. the weight gains log2(u_exact / tf). A
//! match on SMITH (frequent) weighs less than a match on a rare surname.

use crate::compare::{FAMILY, GIVEN, N_LEVELS, N_PATTERNS, Prepared, levels_of};
use trent_stats::rng::Rng;

/// One EM round's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct EmRound {
    /// Blocking rule whose pairs were used.
    pub rule: String,
    /// Pairs in the round.
    pub pairs: u64,
    /// Fields whose m this round estimated.
    pub estimated: Vec<usize>,
    /// λ within the round's pairs.
    pub lambda: f64,
    /// Iterations run.
    pub iterations: usize,
    /// True when the largest parameter change fell below the tolerance.
    pub converged: bool,
}

/// Estimated model parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParams {
    /// Prior probability that two random records are the same person.
    pub lambda: f64,
    /// m probabilities per field per level (level 0, null, unused).
    pub m: Vec<Vec<f64>>,
    /// u probabilities per field per level (level 0, null, unused).
    pub u: Vec<Vec<f64>>,
    /// Whether exact name matches are term-frequency adjusted.
    pub tf_adjustment: bool,
    /// EM rounds run.
    pub em_rounds: Vec<EmRound>,
}

/// Starting m values for EM (a match mostly agrees exactly), per field.
pub fn initial_m() -> Vec<Vec<f64>> {
    N_LEVELS
        .iter()
        .enumerate()
        .map(|(f, &n)| {
            let mut v = vec![0.0; n];
            let k = n - 1; // non-null levels
            v[1] = 0.8;
            for x in v.iter_mut().skip(2) {
                *x = 0.2 / (k - 1) as f64;
            }
            if f == GIVEN {
                // swapped names are rare even among matches
                v[2] = 0.01;
                v[1] = 0.8;
                let rest = 0.19 / 3.0;
                v[3] = rest;
                v[4] = rest;
                v[5] = rest;
            }
            v
        })
        .collect()
}

/// Estimate u by comparing `max_pairs` random pairs, drawn in 16 fixed streams (so the
/// result does not depend on `threads`).
pub fn estimate_u(p: &Prepared, max_pairs: usize, seed: u64, threads: usize) -> Vec<Vec<f64>> {
    let n = p.len() as u64;
    const STREAMS: usize = 16;
    let per = max_pairs.div_ceil(STREAMS);
    let max_pairs = per * STREAMS;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<(usize, Vec<Vec<u64>>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if k >= STREAMS {
                            break;
                        }
                        let mut c: Vec<Vec<u64>> = N_LEVELS.iter().map(|&l| vec![0; l]).collect();
                        if n >= 2 {
                            let mut rng = Rng::stream(seed, 0x75_0000 + k as u64);
                            for _ in 0..per {
                                let i = rng.below(n) as usize;
                                let mut j = rng.below(n - 1) as usize;
                                if j >= i {
                                    j += 1;
                                }
                                let l = p.compare(i, j);
                                for f in 0..6 {
                                    c[f][l[f] as usize] += 1;
                                }
                            }
                        }
                        mine.push((k, c));
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("u sampling worker panicked"))
            .collect()
    });
    parts.sort_by_key(|x| x.0);
    let mut counts: Vec<Vec<f64>> = N_LEVELS.iter().map(|&k| vec![0.0; k]).collect();
    for (_, c) in parts {
        for f in 0..6 {
            for (a, b) in counts[f].iter_mut().zip(&c[f]) {
                *a += *b as f64;
            }
        }
    }
    let floor = 0.5 / max_pairs.max(1) as f64;
    counts
        .into_iter()
        .map(|c| {
            let t: f64 = c[1..].iter().sum();
            let mut u: Vec<f64> = c
                .iter()
                .map(|&x| if t > 0.0 { (x / t).max(floor) } else { 0.0 })
                .collect();
            u[0] = 1.0;
            if t == 0.0 {
                // field never present in the sample: uniform, it will always be null
                let k = u.len() - 1;
                u.iter_mut().skip(1).for_each(|x| *x = 1.0 / k as f64);
            }
            u
        })
        .collect()
}

/// Run EM on pattern counts. `active` marks the fields that take part (others are
/// neither used in the E-step nor re-estimated). Returns (m, λ, iterations, converged).
pub fn em(
    counts: &[u64; N_PATTERNS],
    active: &[bool; 6],
    m0: &[Vec<f64>],
    u: &[Vec<f64>],
    lambda0: f64,
    max_iter: usize,
    tol: f64,
) -> (Vec<Vec<f64>>, f64, usize, bool) {
    let pats: Vec<(usize, [u8; 6], f64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(p, c)| (p, levels_of(p), *c as f64))
        .collect();
    let mut m: Vec<Vec<f64>> = m0.to_vec();
    let mut lambda = lambda0.clamp(1e-6, 1.0 - 1e-6);
    let total: f64 = pats.iter().map(|x| x.2).sum();
    if total == 0.0 {
        return (m, lambda, 0, true);
    }
    let mut iters = 0;
    let mut converged = false;
    while iters < max_iter {
        iters += 1;
        let mut acc: Vec<Vec<f64>> = N_LEVELS.iter().map(|&k| vec![0.0; k]).collect();
        let mut matches = 0.0;
        for (_, l, c) in &pats {
            let (mut pm, mut pu) = (lambda, 1.0 - lambda);
            for f in 0..6 {
                let lv = l[f] as usize;
                if active[f] && lv != 0 {
                    pm *= m[f][lv];
                    pu *= u[f][lv];
                }
            }
            let post = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            let w = post * c;
            matches += w;
            for f in 0..6 {
                acc[f][l[f] as usize] += w;
            }
        }
        let mut change: f64 = 0.0;
        let new_lambda = (matches / total).clamp(1e-9, 1.0 - 1e-9);
        change = change.max((new_lambda - lambda).abs());
        lambda = new_lambda;
        for f in 0..6 {
            if !active[f] {
                continue;
            }
            let t: f64 = acc[f][1..].iter().sum();
            if t <= 0.0 {
                continue;
            }
            for lv in 1..N_LEVELS[f] {
                // a level with no weight keeps a tiny probability, so its weight is finite
                let v = (acc[f][lv] / t).max(1e-6);
                change = change.max((v - m[f][lv]).abs());
                m[f][lv] = v;
            }
        }
        if change < tol {
            converged = true;
            break;
        }
    }
    (m, lambda, iters, converged)
}

impl ModelParams {
    /// log2 Bayes factor of every level, per field (0 for null).
    pub fn level_weights(&self) -> Vec<Vec<f64>> {
        self.m
            .iter()
            .zip(&self.u)
            .map(|(m, u)| {
                m.iter()
                    .zip(u)
                    .enumerate()
                    .map(|(lv, (m, u))| if lv == 0 { 0.0 } else { (m / u).log2() })
                    .collect()
            })
            .collect()
    }

    /// Weight of every level pattern before TF adjustment, including the prior.
    pub fn pattern_weights(&self) -> Vec<f64> {
        let lw = self.level_weights();
        let prior = (self.lambda / (1.0 - self.lambda)).log2();
        (0..N_PATTERNS)
            .map(|p| {
                let l = levels_of(p);
                prior + (0..6).map(|f| lw[f][l[f] as usize]).sum::<f64>()
            })
            .collect()
    }

    /// TF adjustment (in bits) for records `i`, `j` with levels `l`.
    pub fn tf_adjust(&self, p: &Prepared, i: usize, j: usize, l: &[u8; 6]) -> f64 {
        if !self.tf_adjustment {
            return 0.0;
        }
        let mut w = 0.0;
        if l[GIVEN] == 1 {
            let tf = p.tf_given[p.given[i] as usize].max(p.tf_given[p.given[j] as usize]);
            w += (self.u[GIVEN][1] / tf.max(1e-9)).log2();
        }
        if l[FAMILY] == 1 {
            let tf = p.tf_family[p.family[i] as usize].max(p.tf_family[p.family[j] as usize]);
            w += (self.u[FAMILY][1] / tf.max(1e-9)).log2();
        }
        w
    }
}

/// Match probability from a match weight.
pub fn probability(weight: f64) -> f64 {
    let b = weight.exp2();
    if b.is_infinite() { 1.0 } else { b / (1.0 + b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::pattern_of;

    /// Simulate a two-class mixture over patterns with known m, u and λ, then check
    /// EM recovers them.
    #[test]
    fn em_recovers_m_and_lambda_on_a_simulated_mixture() {
        let true_m: Vec<Vec<f64>> = vec![
            vec![0.0, 0.85, 0.01, 0.07, 0.04, 0.03],
            vec![0.0, 0.80, 0.10, 0.05, 0.05],
            vec![0.0, 0.90, 0.02, 0.05, 0.03],
            vec![0.0, 0.98, 0.02],
            vec![0.0, 0.70, 0.10, 0.10, 0.10],
            vec![0.0, 0.97, 0.03],
        ];
        let true_u: Vec<Vec<f64>> = vec![
            vec![0.0, 0.02, 0.001, 0.03, 0.15, 0.799],
            vec![0.0, 0.01, 0.02, 0.10, 0.87],
            vec![0.0, 0.01, 0.001, 0.03, 0.959],
            vec![0.0, 0.5, 0.5],
            vec![0.0, 0.001, 0.01, 0.05, 0.939],
            vec![0.0, 0.0001, 0.9999],
        ];
        let lambda = 0.3;
        let mut rng = Rng::stream(11, 3);
        let mut counts = vec![0u64; N_PATTERNS];
        let draw = |probs: &[f64], rng: &mut Rng| {
            let x = rng.f64();
            let mut acc = 0.0;
            for (k, p) in probs.iter().enumerate().skip(1) {
                acc += p;
                if x < acc {
                    return k as u8;
                }
            }
            (probs.len() - 1) as u8
        };
        for _ in 0..200_000 {
            let is_match = rng.chance(lambda);
            let mut l = [0u8; 6];
            for f in 0..6 {
                let pr = if is_match { &true_m[f] } else { &true_u[f] };
                l[f] = if rng.chance(0.05) {
                    0
                } else {
                    draw(pr, &mut rng)
                };
            }
            counts[pattern_of(&l) as usize] += 1;
        }
        let counts: Box<[u64; N_PATTERNS]> = counts.into_boxed_slice().try_into().unwrap();
        let (m, lam, _, conv) = em(&counts, &[true; 6], &initial_m(), &true_u, 0.1, 200, 1e-7);
        assert!(conv);
        assert!((lam - lambda).abs() < 0.01, "lambda {lam}");
        for f in 0..6 {
            for lv in 1..N_LEVELS[f] {
                assert!(
                    (m[f][lv] - true_m[f][lv]).abs() < 0.015,
                    "field {f} level {lv}: {} vs {}",
                    m[f][lv],
                    true_m[f][lv]
                );
            }
        }
    }

    #[test]
    fn probability_is_logistic_in_base_2() {
        assert_eq!(probability(0.0), 0.5);
        assert!((probability(1.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(probability(5000.0), 1.0);
        assert!(probability(-5000.0) < 1e-300);
    }
}

//! The linkage pipeline: normalise → block → estimate → score → decide → cluster.
//!
//! **Deterministic pass.** Two records with the same *valid* NHS number are linked
//! whatever their score, unless their demographics strongly disagree: at least two of
//! {given name in its "else" level, family name in its "else" level, date of birth in
//! its "else" level, sex disagrees} — fields missing on either side do not count. Such
//! a pair is an [`PairKind::NhsConflict`] and goes to clerical review, not linked: one
//! differing field is ordinary (marriage, a typo) but two suggest the number was
//! recorded against the wrong person (a parent's number on a child's record).
//!
//! **Probabilistic pass.** Every other blocked pair is scored (see [`crate::model`])
//! and decided on its match probability: link at or above `upper`, review at or
//! above `lower`, otherwise no link. Defaults: `upper` = 0.95, `lower` = 0.50.
//!
//! **Clustering.** Links are merged into persons as connected components, taken in
//! order of strength (deterministic links first, then by descending weight). A merge is
//! refused — and the pair sent to review as [`PairKind::ClusterGuard`] — when it would
//! join two clusters holding *different* valid NHS numbers, or make a cluster larger
//! than `max_cluster_size`. This stops a chain of individually plausible links
//! (A–B, B–C) from fusing two people who have their own NHS numbers.
//!
//! **Person key.** Each cluster's key is `P` + 16 hex digits of the FNV-1a 64-bit hash
//! of its smallest `source` + U+001F + `record_id`: the same records give the same key
//! on every run and thread count, and a cluster keeps its key while its
//! smallest-member record stays in it.
//!
//! Work is split into chunks of blocks processed by `threads` scoped threads; results
//! are merged in chunk order, so the output does not depend on the number of threads.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::LinkError;
use crate::blocking::{BlockStats, BlockingRule, Blocks};
use crate::compare::{DOB, FAMILY, GIVEN, Levels, N_PATTERNS, NHS, Prepared, SEX, pattern_of};
use crate::model::{self, EmRound, ModelParams};
use crate::normalise::{NormStats, prepare};
use crate::record::LinkRecord;

/// Settings of a linkage run.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Blocking rules, in order (see [`BlockingRule::DEFAULT`]).
    pub rules: Vec<BlockingRule>,
    /// Match probability at or above which a pair is linked (default 0.95).
    pub upper: f64,
    /// Match probability at or above which an unlinked pair goes to review (default 0.5).
    pub lower: f64,
    /// Random pairs sampled to estimate u (default 1,000,000 — Splink's default).
    pub u_sample_pairs: usize,
    /// Maximum EM iterations per round (default 50).
    pub em_max_iterations: usize,
    /// EM stops when no parameter moves more than this (default 1e-5).
    pub em_tolerance: f64,
    /// Fixed λ instead of estimating it.
    pub lambda: Option<f64>,
    /// Term-frequency adjustment of exact name matches (default on).
    pub tf_adjustment: bool,
    /// Blocks larger than this are skipped and reported (default 5,000 records).
    pub max_block_size: usize,
    /// Clusters are not grown beyond this many records (default 100).
    pub max_cluster_size: usize,
    /// Worker threads (default: available parallelism).
    pub threads: usize,
    /// Seed for u sampling.
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            rules: BlockingRule::DEFAULT.to_vec(),
            upper: 0.95,
            lower: 0.5,
            u_sample_pairs: 1_000_000,
            em_max_iterations: 50,
            em_tolerance: 1e-5,
            lambda: None,
            tf_adjustment: true,
            max_block_size: 5_000,
            max_cluster_size: 100,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: 20_240_601,
        }
    }
}

/// Why a pair was linked or queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairKind {
    /// Same valid NHS number, demographics consistent.
    Deterministic,
    /// Match probability at or above `upper`.
    Probabilistic,
    /// Same valid NHS number but demographics strongly disagree (review).
    NhsConflict,
    /// Probability in [`lower`, `upper`) (review).
    Uncertain,
    /// A link the clustering guard refused (review).
    ClusterGuard,
}

/// A scored pair of record indices (`a < b`, indices into the input slice).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    /// First record.
    pub a: u32,
    /// Second record.
    pub b: u32,
    /// Match weight (log2 Bayes factor including the prior and TF adjustment).
    pub weight: f64,
    /// Match probability.
    pub probability: f64,
    /// Comparison levels per field (see [`crate::compare::LEVEL_NAMES`]).
    pub levels: Levels,
    /// Decision.
    pub kind: PairKind,
}

/// Counts and timings of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkStats {
    /// Records in.
    pub records: usize,
    /// Unusable values treated as missing.
    pub normalisation: NormStats,
    /// Blocking counts.
    pub blocking: BlockStats,
    /// Candidate pairs scored.
    pub candidate_pairs: u64,
    /// Pairs linked deterministically.
    pub deterministic_links: usize,
    /// Pairs linked probabilistically.
    pub probabilistic_links: usize,
    /// Pairs in the review queue, by reason: NHS conflict, uncertain, cluster guard.
    pub review_nhs_conflict: usize,
    /// See `review_nhs_conflict`.
    pub review_uncertain: usize,
    /// See `review_nhs_conflict`.
    pub review_cluster_guard: usize,
    /// Persons (clusters, including singletons).
    pub persons: usize,
    /// Seconds per stage: prepare, block, u, em, score, cluster.
    pub seconds: Vec<(String, f64)>,
}

/// Result of [`link`].
#[derive(Debug, Clone)]
pub struct LinkResult {
    /// Estimated parameters.
    pub params: ModelParams,
    /// Linked pairs (deterministic and probabilistic) that clustering accepted.
    pub links: Vec<ScoredPair>,
    /// Clerical-review queue, highest probability first.
    pub review: Vec<ScoredPair>,
    /// Person key of every input record, in input order.
    pub person_keys: Vec<String>,
    /// Counts and timings.
    pub stats: LinkStats,
}

/// Whether a same-NHS-number pair's demographics strongly disagree (see module docs).
pub fn nhs_conflict(l: &Levels) -> bool {
    let strong = u8::from(l[GIVEN] == 5)
        + u8::from(l[FAMILY] == 4)
        + u8::from(l[DOB] == 4)
        + u8::from(l[SEX] == 2);
    strong >= 2
}

fn run_chunks<T: Send>(
    n_chunks: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= n_chunks {
                            break;
                        }
                        mine.push((c, work(c)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("linkage worker panicked"))
            .collect()
    });
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|x| x.1).collect()
}

fn check(records: &[LinkRecord], cfg: &LinkConfig) -> Result<(), LinkError> {
    let bad = |m: String| Err(LinkError::Config(m));
    if !(0.0..=1.0).contains(&cfg.lower) || !(0.0..=1.0).contains(&cfg.upper) {
        return bad(format!(
            "thresholds must be probabilities in [0, 1] (lower {}, upper {})",
            cfg.lower, cfg.upper
        ));
    }
    if cfg.lower > cfg.upper {
        return bad(format!(
            "lower threshold {} is above upper threshold {}",
            cfg.lower, cfg.upper
        ));
    }
    if cfg.rules.is_empty() {
        return bad("at least one blocking rule is needed".into());
    }
    if cfg.rules.len() > 31 {
        return bad("at most 31 blocking rules".into());
    }
    if let Some(l) = cfg.lambda
        && !(l > 0.0 && l < 1.0)
    {
        return bad(format!("lambda must be in (0, 1), got {l}"));
    }
    if records.len() >= u32::MAX as usize {
        return bad(format!("too many records: {}", records.len()));
    }
    let mut seen = HashSet::with_capacity(records.len());
    for (k, r) in records.iter().enumerate() {
        if !seen.insert((r.source.as_str(), r.record_id.as_str())) {
            return Err(LinkError::DuplicateRecord {
                index: k,
                source_name: r.source.clone(),
                record_id: r.record_id.clone(),
            });
        }
    }
    Ok(())
}

/// FNV-1a 64-bit.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Link records into persons.
pub fn link(records: &[LinkRecord], cfg: &LinkConfig) -> Result<LinkResult, LinkError> {
    link_impl(records, cfg, 0, &[])
}

/// Link new records to each other and to known records whose persons are settled.
///
/// `records[..known.len()]` are the known records and `known[i]` the person (any
/// number) record `i` belongs to; the rest are new. Known records keep their persons:
/// only pairs with at least one new record are compared, estimated and decided, and
/// clustering starts from the known persons. A new record that links to two known
/// persons joins them, under the same guard as any merge (the caller decides whether to
/// apply such a merge; `trent ingest` sends it to review). The model is estimated on the
/// pairs that involve a new record (λ over those pairs), `u` on random pairs of all
/// records. The cost grows with the new records and their blocks, not with everything
/// linked before: an ingest batch links in time proportional to the batch.
pub fn link_incremental(
    records: &[LinkRecord],
    known: &[u32],
    cfg: &LinkConfig,
) -> Result<LinkResult, LinkError> {
    if known.len() > records.len() {
        return Err(LinkError::Config(format!(
            "{} known persons for {} records",
            known.len(),
            records.len()
        )));
    }
    link_impl(records, cfg, known.len() as u32, known)
}

fn link_impl(
    records: &[LinkRecord],
    cfg: &LinkConfig,
    first_new: u32,
    known: &[u32],
) -> Result<LinkResult, LinkError> {
    check(records, cfg)?;
    let mut stats = LinkStats {
        records: records.len(),
        ..LinkStats::default()
    };
    let mut t = Instant::now();
    let mut lap = |name: &str, stats: &mut LinkStats| {
        stats
            .seconds
            .push((name.to_string(), t.elapsed().as_secs_f64()));
        t = Instant::now();
    };
    let (p, norm) = prepare(records);
    stats.normalisation = norm;
    lap("prepare", &mut stats);

    let nr = cfg.rules.len();
    let blocks = Blocks::build_incremental(&p, &cfg.rules, cfg.max_block_size, 200_000, first_new);
    stats.blocking.oversized_blocks = blocks.oversized.clone();
    lap("block", &mut stats);

    // pass 1: compare every candidate pair once; keep its pattern, count patterns per
    // rule-agreement mask for EM
    let n_masks = 1usize << nr;
    struct Pass1 {
        patterns: Vec<u16>,
        counts: Vec<(u32, u64)>,
        dup: u64,
        rule: usize,
    }
    let pass1 = run_chunks(blocks.chunks.len(), cfg.threads, |c| {
        let mut patterns = Vec::new();
        let mut counts = vec![0u64; N_PATTERNS * n_masks];
        let dup = blocks.for_each_pair(c, |i, j, mask| {
            let pat = pattern_of(&p.compare(i, j));
            patterns.push(pat);
            counts[mask as usize * N_PATTERNS + pat as usize] += 1;
        });
        // keep only the non-zero cells: a dense table per chunk would cost 1.7 MB each
        let counts: Vec<(u32, u64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (k as u32, *c))
            .collect();
        Pass1 {
            patterns,
            counts,
            dup,
            rule: blocks.chunks[c].0,
        }
    });
    let mut by_rule = vec![vec![0u64; N_PATTERNS]; nr];
    let mut pairs_per_rule = vec![0u64; nr];
    let mut dup_per_rule = vec![0u64; nr];
    for r in &pass1 {
        pairs_per_rule[r.rule] += r.patterns.len() as u64;
        dup_per_rule[r.rule] += r.dup;
        for &(cell, c) in &r.counts {
            let (mask, pat) = (cell as usize / N_PATTERNS, cell as usize % N_PATTERNS);
            for (q, acc) in by_rule.iter_mut().enumerate() {
                if mask & (1 << q) != 0 {
                    acc[pat] += c;
                }
            }
        }
    }
    stats.candidate_pairs = pairs_per_rule.iter().sum();
    stats.blocking.pairs_per_rule = cfg
        .rules
        .iter()
        .zip(&pairs_per_rule)
        .map(|(r, n)| (r.name().to_string(), *n))
        .collect();
    stats.blocking.duplicates_per_rule = cfg
        .rules
        .iter()
        .zip(&dup_per_rule)
        .map(|(r, n)| (r.name().to_string(), *n))
        .collect();
    lap("compare", &mut stats);

    let u = model::estimate_u(&p, cfg.u_sample_pairs, cfg.seed, cfg.threads);
    lap("u", &mut stats);

    let params = estimate_m_lambda(&p, &cfg.rules, &by_rule, u, cfg, first_new as usize);
    lap("em", &mut stats);

    // pass 2: score and decide
    let pw = params.pattern_weights();
    let scored: Vec<Vec<ScoredPair>> = run_chunks(blocks.chunks.len(), cfg.threads, |c| {
        let pats = &pass1[c].patterns;
        let mut k = 0usize;
        let mut out = Vec::new();
        blocks.for_each_pair(c, |i, j, _| {
            let pat = pats[k];
            k += 1;
            let l = crate::compare::levels_of(pat as usize);
            let same_nhs = l[NHS] == 1;
            let mut weight = pw[pat as usize];
            // TF adjustment only matters near the thresholds; cheap anyway
            weight += params.tf_adjust(&p, i, j, &l);
            let prob = model::probability(weight);
            let kind = if same_nhs {
                if nhs_conflict(&l) {
                    PairKind::NhsConflict
                } else {
                    PairKind::Deterministic
                }
            } else if prob >= cfg.upper {
                PairKind::Probabilistic
            } else if prob >= cfg.lower {
                PairKind::Uncertain
            } else {
                return;
            };
            out.push(ScoredPair {
                a: i as u32,
                b: j as u32,
                weight,
                probability: prob,
                levels: l,
                kind,
            });
        });
        out
    });
    drop(pass1);
    let mut links = Vec::new();
    let mut review = Vec::new();
    for s in scored.into_iter().flatten() {
        match s.kind {
            PairKind::Deterministic | PairKind::Probabilistic => links.push(s),
            _ => review.push(s),
        }
    }
    lap("score", &mut stats);

    // clustering with guard
    links.sort_by(|x, y| {
        let dx = x.kind == PairKind::Deterministic;
        let dy = y.kind == PairKind::Deterministic;
        dy.cmp(&dx)
            .then(y.weight.total_cmp(&x.weight))
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    let n = records.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut size = vec![1u32; n];
    let mut nhs: Vec<u64> = p.nhs.clone();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let g = parent[parent[x as usize] as usize];
            parent[x as usize] = g;
            x = g;
        }
        x
    }
    // known persons are clusters already
    {
        let mut root_of: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for (i, &person) in known.iter().enumerate() {
            let i = i as u32;
            let root = *root_of.entry(person).or_insert(i);
            if root != i {
                parent[i as usize] = root;
                size[root as usize] += 1;
                if nhs[root as usize] == 0 {
                    nhs[root as usize] = nhs[i as usize];
                }
            }
        }
    }
    let mut accepted = Vec::with_capacity(links.len());
    for mut s in links {
        let ra = find(&mut parent, s.a);
        let rb = find(&mut parent, s.b);
        if ra == rb {
            accepted.push(s);
            continue;
        }
        let (na, nb) = (nhs[ra as usize], nhs[rb as usize]);
        let nhs_clash = na != 0 && nb != 0 && na != nb;
        let too_big = (size[ra as usize] + size[rb as usize]) as usize > cfg.max_cluster_size;
        if nhs_clash || too_big {
            s.kind = PairKind::ClusterGuard;
            review.push(s);
            continue;
        }
        let (big, small) = if size[ra as usize] >= size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        parent[small as usize] = big;
        size[big as usize] += size[small as usize];
        if nhs[big as usize] == 0 {
            nhs[big as usize] = nhs[small as usize];
        }
        accepted.push(s);
    }
    let links = accepted;
    // person keys from the smallest member of each cluster
    let mut best: Vec<Option<u32>> = vec![None; n];
    let member_key = |i: u32| {
        let r = &records[i as usize];
        (r.source.as_str(), r.record_id.as_str())
    };
    for i in 0..n as u32 {
        let root = find(&mut parent, i) as usize;
        match best[root] {
            Some(b) if member_key(b) <= member_key(i) => {}
            _ => best[root] = Some(i),
        }
    }
    let mut key_of_root: Vec<Option<String>> = vec![None; n];
    let mut person_keys = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let root = find(&mut parent, i) as usize;
        if key_of_root[root].is_none() {
            let (s, id) = member_key(best[root].expect("every root has a member"));
            let h = fnv1a(s.bytes().chain([0x1f]).chain(id.bytes()));
            key_of_root[root] = Some(format!("P{h:016x}"));
            stats.persons += 1;
        }
        person_keys.push(key_of_root[root].clone().expect("set above"));
    }
    review.sort_by(|x, y| {
        y.probability
            .total_cmp(&x.probability)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    for s in &links {
        match s.kind {
            PairKind::Deterministic => stats.deterministic_links += 1,
            _ => stats.probabilistic_links += 1,
        }
    }
    for s in &review {
        match s.kind {
            PairKind::NhsConflict => stats.review_nhs_conflict += 1,
            PairKind::ClusterGuard => stats.review_cluster_guard += 1,
            _ => stats.review_uncertain += 1,
        }
    }
    lap("cluster", &mut stats);
    Ok(LinkResult {
        params,
        links,
        review,
        person_keys,
        stats,
    })
}

/// EM rounds per blocking rule, averaging m, and λ (see [`crate::model`]).
fn estimate_m_lambda(
    p: &Prepared,
    rules: &[BlockingRule],
    by_rule: &[Vec<u64>],
    u: Vec<Vec<f64>>,
    cfg: &LinkConfig,
    first_new: usize,
) -> ModelParams {
    let m0 = model::initial_m();
    let mut sum: Vec<Vec<f64>> = m0.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut n_est = [0usize; 6];
    let mut rounds = Vec::new();
    let mut round_lambda = vec![0.0; rules.len()];
    for (r, rule) in rules.iter().enumerate() {
        let mut active = [true; 6];
        for &f in rule.fields() {
            active[f] = false;
        }
        let pairs: u64 = by_rule[r].iter().sum();
        if pairs == 0 {
            continue;
        }
        let counts: &[u64; N_PATTERNS] = by_rule[r]
            .as_slice()
            .try_into()
            .expect("by_rule rows have N_PATTERNS cells");
        let (m, lam, it, conv) = model::em(
            counts,
            &active,
            &m0,
            &u,
            0.3,
            cfg.em_max_iterations,
            cfg.em_tolerance,
        );
        for f in 0..6 {
            if active[f] {
                n_est[f] += 1;
                for lv in 1..m[f].len() {
                    sum[f][lv] += m[f][lv];
                }
            }
        }
        round_lambda[r] = lam * pairs as f64;
        rounds.push(EmRound {
            rule: rule.name().to_string(),
            pairs,
            estimated: (0..6).filter(|f| active[*f]).collect(),
            lambda: lam,
            iterations: it,
            converged: conv,
        });
    }
    let m: Vec<Vec<f64>> = (0..6)
        .map(|f| {
            if n_est[f] == 0 {
                m0[f].clone()
            } else {
                sum[f].iter().map(|x| x / n_est[f] as f64).collect()
            }
        })
        .collect();
    let n = p.len() as f64;
    // the pairs the candidates were drawn from: all, or those with a new record
    let k = first_new as f64;
    let all_pairs = (n * (n - 1.0) / 2.0 - k * (k - 1.0) / 2.0).max(1.0);
    let share_present = |present: usize| (present as f64 / n.max(1.0)).powi(2);
    let estimate = |rule: BlockingRule, field: usize, present: usize| {
        let r = rules.iter().position(|x| *x == rule)?;
        let recall = m[field][1] * share_present(present);
        (round_lambda[r] > 0.0 && recall > 0.0).then(|| round_lambda[r] / recall / all_pairs)
    };
    let dob_present = p.dob.iter().filter(|d| d.is_some()).count();
    let nhs_present = p.nhs.iter().filter(|x| **x != 0).count();
    let lambda = cfg
        .lambda
        .or_else(|| estimate(BlockingRule::BirthDate, DOB, dob_present))
        .or_else(|| estimate(BlockingRule::NhsNumber, NHS, nhs_present))
        .unwrap_or(1.0 / n.max(2.0))
        .clamp(1e-12, 0.5);
    ModelParams {
        lambda,
        m,
        u,
        tf_adjustment: cfg.tf_adjustment,
        em_rounds: rounds,
    }
}

//! Gradient-boosted decision trees for binary log-loss, grown the way LightGBM grows them.
//!
//! Why our own: the risk model must train on an ICS's own population inside the
//! platform, deterministically, on two cores, with exact explanations, and without a
//! C++ toolchain or a Python runtime. The method follows Ke et al. (2017), "LightGBM: A
//! Highly Efficient Gradient Boosting Decision Tree" (NeurIPS) and Friedman (2001):
//!
//! - each feature is cut into at most `max_bin` quantile bins from a sample of rows
//!   (bin 0 is "missing"; a numeric split learns whether missing goes left or right);
//!   categorical features get one bin per code and are split many-vs-many by sorting
//!   codes on G/(H + `cat_smooth`) (LightGBM's method, after Fisher 1958);
//! - per-leaf gradient histograms, built for the smaller child only, the larger child's
//!   being the parent's minus the smaller's (the subtraction trick);
//! - leaf-wise (best-first) growth limited by `num_leaves` and `max_depth`, with
//!   `min_data_in_leaf`, `min_sum_hessian_in_leaf`, L2 `lambda_l2` and shrinkage;
//! - row subsampling (bagging) and per-tree feature subsampling from
//!   `trent_stats::rng::Rng`, so a seed fixes the model; histograms are built over a
//!   fixed split of rows between threads and summed in a fixed order, so the model does
//!   not depend on thread timing either;
//! - early stopping on the log-loss of a validation matrix.
//!
//! Explanations are exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018,
//! "Consistent individualized feature attribution for tree ensembles", Algorithm 2),
//! using the training row counts of each node as the cover.

use crate::matrix::{FeatureKind, FeatureMatrix};
use crate::{Error, Result, chunks, logit, sigmoid};
use serde::{Deserialize, Serialize};
use trent_stats::rng::Rng;

/// Hyperparameters; names and defaults follow LightGBM's where they share a meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbtParams {
    /// Number of boosting rounds (trees), before early stopping.
    pub num_iterations: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Maximum leaves per tree (leaf-wise growth stops there).
    pub num_leaves: usize,
    /// Maximum depth of a tree; `None` = unlimited (only `num_leaves` binds).
    pub max_depth: Option<usize>,
    /// Minimum training rows in a leaf.
    pub min_data_in_leaf: usize,
    /// Minimum sum of hessians in a leaf.
    pub min_sum_hessian_in_leaf: f64,
    /// L2 penalty on leaf values.
    pub lambda_l2: f64,
    /// Minimum gain for a split to be made.
    pub min_gain_to_split: f64,
    /// Maximum bins per feature, including the missing bin (≤ 255).
    pub max_bin: usize,
    /// Rows sampled to find bin boundaries.
    pub bin_construct_sample_cnt: usize,
    /// Fraction of rows each tree is grown on (1 = no bagging).
    pub bagging_fraction: f64,
    /// Fraction of features each tree may split on (1 = all).
    pub feature_fraction: f64,
    /// Stop when validation log-loss has not improved for this many rounds (0 = never).
    pub early_stopping_rounds: usize,
    /// Categorical splits: smoothing added to the hessian when ordering codes.
    pub cat_smooth: f64,
    /// Categorical splits: extra L2 penalty.
    pub cat_l2: f64,
    /// Categorical splits: at most this many codes on the smaller side.
    pub max_cat_threshold: usize,
    /// Categorical splits: codes with fewer rows in the node are not split on.
    pub min_data_per_group: usize,
    /// Seed for binning samples, bagging and feature subsampling.
    pub seed: u64,
    /// Worker threads (the platform runs on two cores).
    pub threads: usize,
}

impl Default for GbtParams {
    fn default() -> Self {
        GbtParams {
            num_iterations: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_bin: 255,
            bin_construct_sample_cnt: 200_000,
            bagging_fraction: 1.0,
            feature_fraction: 1.0,
            early_stopping_rounds: 0,
            cat_smooth: 10.0,
            cat_l2: 10.0,
            max_cat_threshold: 32,
            min_data_per_group: 100,
            seed: 0,
            threads: 2,
        }
    }
}

impl GbtParams {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("GBT parameter {what}")));
        if self.num_iterations == 0 {
            return bad("num_iterations must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be positive");
        }
        if self.num_leaves < 2 {
            return bad("num_leaves must be at least 2");
        }
        if self.max_depth == Some(0) {
            return bad("max_depth must be at least 1");
        }
        if !(3..=255).contains(&self.max_bin) {
            return bad("max_bin must be between 3 and 255");
        }
        if !(self.bagging_fraction > 0.0 && self.bagging_fraction <= 1.0) {
            return bad("bagging_fraction must be in (0, 1]");
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return bad("feature_fraction must be in (0, 1]");
        }
        if self.lambda_l2 < 0.0 || self.cat_l2 < 0.0 || self.cat_smooth < 0.0 {
            return bad("lambda_l2, cat_l2 and cat_smooth must not be negative");
        }
        if self.min_sum_hessian_in_leaf < 0.0 || self.min_gain_to_split < 0.0 {
            return bad("min_sum_hessian_in_leaf and min_gain_to_split must not be negative");
        }
        if self.bin_construct_sample_cnt == 0 {
            return bad("bin_construct_sample_cnt must be at least 1");
        }
        Ok(())
    }
}

/// How a split node sends a row left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// Left when `x <= threshold`; missing goes left when `default_left`.
    Numeric {
        /// Largest value (of the training sample) in the last bin sent left.
        #[serde(with = "crate::exact::f32")]
        threshold: f32,
        /// Where missing values go.
        default_left: bool,
    },
    /// Left when the code is one of `left_codes`; missing and other codes go right.
    Categorical {
        /// Codes sent left, ascending.
        left_codes: Vec<i32>,
    },
}

/// A node of a tree; the root is node 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    /// An internal node.
    Split {
        /// Index into the model's features.
        feature: usize,
        /// The decision.
        rule: Rule,
        /// Left child.
        left: usize,
        /// Right child.
        right: usize,
        /// Loss reduction of the split (for importance).
        #[serde(with = "crate::exact")]
        gain: f64,
        /// Training rows that reached the node (TreeSHAP's cover).
        count: u64,
    },
    /// A leaf.
    Leaf {
        /// Contribution to the log-odds (learning rate already applied).
        #[serde(with = "crate::exact")]
        value: f64,
        /// Training rows that reached the leaf.
        count: u64,
    },
}

impl Node {
    fn count(&self) -> u64 {
        match self {
            Node::Split { count, .. } | Node::Leaf { count, .. } => *count,
        }
    }
}

/// One regression tree on the log-odds scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; node 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    fn goes_left(rule: &Rule, x: f32) -> bool {
        match rule {
            Rule::Numeric {
                threshold,
                default_left,
            } => {
                if x.is_nan() {
                    *default_left
                } else {
                    x <= *threshold
                }
            }
            Rule::Categorical { left_codes } => {
                !x.is_nan() && left_codes.binary_search(&(x as i32)).is_ok()
            }
        }
    }

    /// The leaf value for a row whose feature `j` is `x(j)`.
    pub fn predict(&self, x: impl Fn(usize) -> f32) -> f64 {
        let mut n = 0;
        loop {
            match &self.nodes[n] {
                Node::Leaf { value, .. } => return *value,
                Node::Split {
                    feature,
                    rule,
                    left,
                    right,
                    ..
                } => {
                    n = if Tree::goes_left(rule, x(*feature)) {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }

    /// Mean leaf value weighted by training rows: the tree's expected value.
    pub fn expected_value(&self) -> f64 {
        let root = self.nodes[0].count().max(1) as f64;
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Leaf { value, count } => value * *count as f64,
                Node::Split { .. } => 0.0,
            })
            .sum::<f64>()
            / root
    }

    fn validate(&self, n_features: usize, t: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("tree {t}: {m}")));
        if self.nodes.is_empty() {
            return bad("no nodes".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Split {
                feature,
                left,
                right,
                rule,
                ..
            } = n
            {
                if *feature >= n_features {
                    return bad(format!("node {i} splits on feature {feature}"));
                }
                if *left <= i
                    || *right <= i
                    || *left >= self.nodes.len()
                    || *right >= self.nodes.len()
                {
                    return bad(format!("node {i} has children {left} and {right}"));
                }
                if let Rule::Categorical { left_codes } = rule
                    && !left_codes.windows(2).all(|w| w[0] < w[1])
                {
                    return bad(format!("node {i}: categorical codes not ascending"));
                }
            }
        }
        Ok(())
    }

    /// Add path-dependent TreeSHAP values for one row into `phi` (one slot per feature).
    pub fn shap(&self, x: &dyn Fn(usize) -> f32, phi: &mut [f64]) {
        let mut buf = Vec::new();
        self.shap_with(x, phi, &mut buf);
    }

    /// [`Tree::shap`] with a reusable scratch buffer. The unique paths live in one flat
    /// buffer, each level's copied just after its parent's (as in Lundberg et al.'s
    /// reference implementation): the hot child's subtree finishes before the cold child
    /// copies the same parent path into the same place, so nothing is allocated per
    /// node. (Cloning a `Vec` path at every split made explaining the top 1% of a
    /// population — 10,700 people, 235 trees — take 14.6 s; docs/benchmarks.md.)
    pub(crate) fn shap_with(
        &self,
        x: &dyn Fn(usize) -> f32,
        phi: &mut [f64],
        buf: &mut Vec<PathElem>,
    ) {
        // a path grows by at most one element a level: level ℓ's copy is at most ℓ + 1
        // long, so all of them fit in (D + 1)(D + 2) / 2 for a tree D levels deep, and D
        // is at most the number of splits, (nodes − 1) / 2
        let d = self.nodes.len() / 2 + 1;
        let need = (d + 1) * (d + 2) / 2;
        if buf.len() < need {
            buf.resize(need, PathElem::EMPTY);
        }
        self.shap_flat(0, buf, 0, 0, 1.0, 1.0, None, x, phi);
    }

    /// Node `j`, whose parent's unique path is `buf[parent..parent + len]`: its own path
    /// is copied to just after it and extended.
    #[allow(clippy::too_many_arguments)]
    fn shap_flat(
        &self,
        j: usize,
        buf: &mut [PathElem],
        parent: usize,
        len: usize,
        pz: f64,
        po: f64,
        pi: Option<usize>,
        x: &dyn Fn(usize) -> f32,
        phi: &mut [f64],
    ) {
        let at = parent + len;
        buf.copy_within(parent..at, at);
        let path = &mut buf[at..];
        extend(path, len, pz, po, pi);
        let mut len = len + 1;
        match &self.nodes[j] {
            Node::Leaf { value, .. } => {
                let path = &path[..len];
                for i in 1..len {
                    let w = unwound_sum(path, i);
                    let e = path[i];
                    if let Some(d) = e.d {
                        phi[d] += w * (e.o - e.z) * value;
                    }
                }
            }
            Node::Split {
                feature,
                rule,
                left,
                right,
                count,
                ..
            } => {
                let (hot, cold) = if Tree::goes_left(rule, x(*feature)) {
                    (*left, *right)
                } else {
                    (*right, *left)
                };
                let (mut iz, mut io) = (1.0, 1.0);
                if let Some(k) = (1..len).find(|k| path[*k].d == Some(*feature)) {
                    iz = path[k].z;
                    io = path[k].o;
                    unwind(path, len, k);
                    len -= 1;
                }
                let c = (*count).max(1) as f64;
                let hot_frac = self.nodes[hot].count() as f64 / c;
                let cold_frac = self.nodes[cold].count() as f64 / c;
                self.shap_flat(hot, buf, at, len, iz * hot_frac, io, Some(*feature), x, phi);
                self.shap_flat(
                    cold,
                    buf,
                    at,
                    len,
                    iz * cold_frac,
                    0.0,
                    Some(*feature),
                    x,
                    phi,
                );
            }
        }
    }
}

/// The trees as one flat array of small nodes (32 bytes, against 80 for a [`Node`]), for
/// scoring many rows: a block of rows walks one tree after another, so the tree stays in
/// cache. A leaf points to itself. The fallback of [`Compiled`], for models too big for
/// bytes. (Here, with f32 columns and 256-row blocks, walking the block in lock step for
/// the tree's full depth was measured slower: 4.8 s against 3.1 s for 1M people and 235
/// trees, the deepest leaf being on average 1.6 times as deep as the average one; the
/// compiled forest's 8-row groups over byte rows gained instead.)
struct FlatForest {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    /// categorical rules' codes sent left, each ascending
    codes: Vec<Vec<i32>>,
}

#[derive(Clone, Copy)]
struct FlatNode {
    /// split feature (0 in a leaf, which goes to itself either way)
    feature: u32,
    threshold: f32,
    /// numeric: 1 when missing goes left; categorical: index into `codes` + 2
    rule: u32,
    left: u32,
    right: u32,
    value: f64,
}

impl FlatForest {
    fn new(trees: &[Tree]) -> FlatForest {
        let mut f = FlatForest {
            nodes: Vec::new(),
            roots: Vec::with_capacity(trees.len()),
            codes: Vec::new(),
        };
        for t in trees {
            let base = f.nodes.len() as u32;
            f.roots.push(base);
            for (i, n) in t.nodes.iter().enumerate() {
                let me = base + i as u32;
                f.nodes.push(match n {
                    Node::Leaf { value, .. } => FlatNode {
                        feature: 0,
                        threshold: 0.0,
                        rule: 0,
                        left: me,
                        right: me,
                        value: *value,
                    },
                    Node::Split {
                        feature,
                        rule,
                        left,
                        right,
                        ..
                    } => {
                        let (threshold, rule) = match rule {
                            Rule::Numeric {
                                threshold,
                                default_left,
                            } => (*threshold, u32::from(*default_left)),
                            Rule::Categorical { left_codes } => {
                                f.codes.push(left_codes.clone());
                                (0.0, f.codes.len() as u32 + 1)
                            }
                        };
                        FlatNode {
                            feature: *feature as u32,
                            threshold,
                            rule,
                            left: base + *left as u32,
                            right: base + *right as u32,
                            value: 0.0,
                        }
                    }
                });
            }
        }
        f
    }

    /// The leaf row `row` reaches in tree `t` (the same decisions as [`Tree::predict`]).
    #[inline]
    fn walk(&self, t: usize, cols: &[&[f32]], row: usize) -> u32 {
        let mut a = self.roots[t];
        loop {
            let node = &self.nodes[a as usize];
            if node.left == a {
                return a;
            }
            let v = cols[node.feature as usize][row];
            let left = if node.rule < 2 {
                (v <= node.threshold) | (v.is_nan() & (node.rule == 1))
            } else {
                !v.is_nan()
                    && self.codes[node.rule as usize - 2]
                        .binary_search(&(v as i32))
                        .is_ok()
            };
            a = if left { node.left } else { node.right };
        }
    }
}

/// The forest compiled for scoring many rows. A tree only ever compares a feature with
/// the model's own thresholds on it (the observation behind QuickScorer, Lucchese et al.
/// 2015), so each value is replaced by its rank among those thresholds — one byte — and
/// a split becomes a byte compare: `x <= t_j` exactly when `rank(x) <= j`, `rank(x)`
/// counting the thresholds below `x`. Categorical values become their position among the
/// codes any rule on the feature sends left (other codes and missing: 63), a rule a
/// 64-bit mask. Nodes are 8 bytes with both children side by side, so the next node is
/// `left + went_right`, no branch on the direction; a leaf's next node is itself. Rows
/// are encoded a block at a time (64 rows × the used features, in L1) and the block goes
/// through every tree in turn, 8 rows side by side for the tree's full depth: a walk is a
/// chain of dependent loads, and 8 independent chains keep the core busy where one
/// waits (measured on 1.07M people and 235 trees: about 10% faster than walking each row
/// to its leaf; the byte encoding alone was no faster than [`FlatForest`], which is
/// bound by the same chain of loads). Each row adds the trees in order, so the sums are
/// bit for bit those of [`Tree::predict`]. Models it cannot hold (more than 255 used features, 254 thresholds
/// on a feature, 63 left codes on a feature or 256 categorical rules) are scored by
/// [`FlatForest`]. Models whose trees have at most 64 leaves (all trained here: 31) are
/// scored from these bytes, packed several features to a byte, by bitvectors instead
/// ([`Masked`]), two to three times as fast as this walk.
struct Compiled {
    /// the model feature behind each byte of an encoded row
    used: Vec<usize>,
    /// per byte: numeric thresholds ascending (empty for categorical)
    cuts: Vec<Vec<f32>>,
    /// per byte: categorical codes sent left by some rule, ascending (`None`: numeric)
    codes: Vec<Option<Vec<i32>>>,
    /// per byte: rank of the integers `0..lut.len()` (numeric features of small counts)
    lut: Vec<Vec<u8>>,
    masks: Vec<u64>,
    nodes: Vec<CNode>,
    /// leaf values by node (0 at splits)
    values: Vec<f64>,
    roots: Vec<u32>,
    /// each tree's deepest leaf (splits on the way)
    depth: Vec<u32>,
}

#[derive(Clone, Copy)]
struct CNode {
    /// byte of the encoded row
    col: u8,
    /// numeric: threshold rank; categorical: index into `masks`
    cut: u8,
    flags: u8,
    /// split: the left child (the right is next to it); leaf: itself (a leaf's `cut` is
    /// 255, which no byte exceeds, so a walk that goes on stays there)
    next: u32,
}

const C_DEFAULT_LEFT: u8 = 2;
const C_CATEGORICAL: u8 = 4;
/// Rank of a missing numeric value (above every threshold rank).
const C_MISSING: u8 = 255;
/// Rank of a missing or never-sent-left categorical code (no mask has bit 63).
const C_OTHER: u8 = 63;
/// Integers below this get a lookup table instead of a binary search.
const C_LUT: usize = 1024;

/// The compiled forest as bitvectors (QuickScorer, Lucchese et al. 2015, with the masks of
/// each tree's splits on a feature combined ahead of time for every byte value).
///
/// A tree's leaves are numbered left to right, bits of an integer ([`LeafBits`]). A split
/// that a row does not pass (it goes right) rules out every leaf of its left subtree; the
/// row's leaf is the leftmost one that no split it fails has ruled out. Which splits on a
/// feature a row fails depends only on the feature's byte, so for each (tree, byte) a
/// table of 256 masks gives the AND of those splits' masks for each byte value. Scoring a
/// tree is then one independent lookup per byte the tree reads and a count of trailing
/// zeros, where the walk is a chain of dependent loads as deep as the tree (leaf-wise
/// trees of 31 leaves: 10.7 deep on average, more at the deepest).
///
/// Most features need far fewer than 8 bits: a long-term condition flag has one
/// threshold, so two states, and a missing value that every split sends the same way is
/// one of them. Features are packed into shared bytes ([`Pack`]), chosen so that features
/// the same trees use share a byte: one lookup then serves the splits on all of them (in
/// the 235-tree model, 16.9 lookups a tree became 11.5). Measured with
/// `examples/score_speed.rs` (docs/benchmarks.md). A tree of more than 64 leaves leaves
/// the whole model to the walk.
struct Masked<M> {
    /// the packed bytes a row is encoded into
    packs: Vec<Pack>,
    trees: Vec<MTree>,
    /// per (tree, packed byte): the mask for each byte value
    tables: Vec<[M; 256]>,
    /// per (tree, packed byte): which packed byte it reads
    cols: Vec<usize>,
    /// leaf values, tree after tree, left to right
    leaves: Vec<f64>,
}

struct MTree {
    /// its packed bytes in `tables` and `cols`
    entries: std::ops::Range<usize>,
    /// its leaves in `leaves`
    leaves: std::ops::Range<usize>,
}

/// One packed byte: the features (bytes of [`Compiled`]'s encoding) whose states it holds,
/// each in its own bits.
struct Pack {
    members: Vec<Member>,
}

struct Member {
    /// the [`Compiled`] byte (used feature)
    byte: usize,
    shift: u32,
    bits: u32,
    /// the feature's byte value → its state, shifted into place
    put: [u8; 256],
    /// state → a byte value of that state
    take: Vec<u8>,
}

impl Member {
    /// Member `byte` of `c` in as few states as its splits tell apart: a numeric feature's
    /// ranks `0..=thresholds`, with a missing value folded into the top rank when every
    /// split sends it right or into rank 0 when every split sends it left (else a state of
    /// its own); a categorical feature's positions among its left codes, and one state for
    /// every other code.
    fn new(c: &Compiled, byte: usize, missing_left: bool, missing_right: bool) -> Member {
        let mut take: Vec<u8>;
        let mut put = [0u8; 256];
        if let Some(codes) = &c.codes[byte] {
            let k = codes.len();
            take = (0..k as u8).collect();
            take.push(C_OTHER);
            for (x, p) in put.iter_mut().enumerate() {
                *p = x.min(k) as u8;
            }
        } else {
            let nc = c.cuts[byte].len();
            take = (0..=nc as u8).collect();
            for (x, p) in put.iter_mut().enumerate().take(nc + 1) {
                *p = x as u8;
            }
            put[C_MISSING as usize] = match (missing_left, missing_right) {
                (true, true) => {
                    take.push(C_MISSING);
                    (nc + 1) as u8
                }
                (true, false) => 0,
                _ => nc as u8,
            };
        }
        let states = take.len() as u32;
        Member {
            byte,
            shift: 0,
            bits: (u32::BITS - (states - 1).leading_zeros()).max(1),
            put,
            take,
        }
    }

    /// The feature's byte value held in packed byte value `v`.
    fn byte_in(&self, v: usize) -> u8 {
        let state = (v >> self.shift) & ((1 << self.bits) - 1);
        self.take.get(state).copied().unwrap_or(self.take[0])
    }
}

/// Which bytes of `c` share a packed byte: greedily, the two groups that fit in 8 bits
/// together and that the most trees both read are merged, until no merge saves a lookup.
/// `reads[t]` are the bytes tree `t` reads.
fn packs(c: &Compiled, reads: &[Vec<u8>]) -> Vec<Pack> {
    let n = c.used.len();
    let (mut left, mut right) = (vec![false; n], vec![false; n]);
    for (a, node) in c.nodes.iter().enumerate() {
        if node.next as usize != a && node.flags & C_CATEGORICAL == 0 {
            let b = node.col as usize;
            if node.flags & C_DEFAULT_LEFT != 0 {
                left[b] = true;
            } else {
                right[b] = true;
            }
        }
    }
    let words = reads.len().div_ceil(64);
    // (members, bits, the trees that read any of them)
    let mut groups: Vec<(Vec<Member>, u32, Vec<u64>)> = (0..n)
        .map(|b| {
            let m = Member::new(c, b, left[b], right[b]);
            let bits = m.bits;
            (vec![m], bits, vec![0u64; words])
        })
        .collect();
    for (t, bytes) in reads.iter().enumerate() {
        for &b in bytes {
            groups[b as usize].2[t / 64] |= 1 << (t % 64);
        }
    }
    loop {
        let mut best = (0u32, 0, 0);
        for i in 0..groups.len() {
            for j in i + 1..groups.len() {
                if groups[i].1 + groups[j].1 > 8 {
                    continue;
                }
                let both: u32 = groups[i]
                    .2
                    .iter()
                    .zip(&groups[j].2)
                    .map(|(a, b)| (a & b).count_ones())
                    .sum();
                if both > best.0 {
                    best = (both, i, j);
                }
            }
        }
        let (saved, i, j) = best;
        if saved == 0 {
            break;
        }
        let (members, bits, trees) = groups.remove(j);
        let g = &mut groups[i];
        g.0.extend(members);
        g.1 += bits;
        for (a, b) in g.2.iter_mut().zip(&trees) {
            *a |= b;
        }
    }
    groups
        .into_iter()
        .map(|(mut members, _, _)| {
            let mut shift = 0;
            for m in &mut members {
                m.shift = shift;
                for p in &mut m.put {
                    *p <<= shift;
                }
                shift += m.bits;
            }
            Pack { members }
        })
        .collect()
}

/// A tree's leaves as the bits of an unsigned integer: `u32` when every tree has at most
/// 32 leaves (half the table memory of `u64`, so more of a tree's tables stay in L1),
/// else `u64`.
trait LeafBits:
    Copy + std::ops::BitAnd<Output = Self> + std::ops::BitAndAssign + std::ops::Not<Output = Self>
{
    const BITS: u32;
    const ALL: Self;
    /// the bits `lo..hi`
    fn range(lo: usize, hi: usize) -> Self;
    fn first(self) -> usize;
}

macro_rules! leaf_bits {
    ($($t:ty),*) => {$(
        impl LeafBits for $t {
            const BITS: u32 = <$t>::BITS;
            const ALL: $t = !0;
            fn range(lo: usize, hi: usize) -> $t {
                (lo..hi).fold(0, |acc, b| acc | 1 << b)
            }
            #[inline(always)]
            fn first(self) -> usize {
                self.trailing_zeros() as usize
            }
        }
    )*};
}

leaf_bits!(u32, u64);

/// A tree's splits, each with the mask of the leaves a row that goes right keeps.
type Splits<M> = Vec<(CNode, M)>;

impl<M: LeafBits> Masked<M> {
    fn new(c: &Compiled) -> Option<Masked<M>> {
        let mut leaves = vec![];
        // per tree: its splits, each with the mask that keeps all but its left subtree's
        // leaves, and its leaves' range
        let mut trees: Vec<(Splits<M>, std::ops::Range<usize>)> = vec![];
        for &root in &c.roots {
            // in order, so leaves are numbered left to right
            let first_leaf = leaves.len();
            let mut splits: Vec<(CNode, M)> = vec![];
            // (node, its left subtree done); open splits with the leaves before them
            let mut stack = vec![(root as usize, false)];
            let mut open: Vec<usize> = vec![];
            while let Some((a, left_done)) = stack.pop() {
                let n = c.nodes[a];
                if n.next as usize == a {
                    leaves.push(c.values[a]);
                    if leaves.len() - first_leaf > M::BITS as usize {
                        return None;
                    }
                } else if !left_done {
                    open.push(leaves.len() - first_leaf);
                    stack.push((a, true));
                    stack.push((n.next as usize, false));
                } else {
                    let lo = open.pop().expect("an open split");
                    let hi = leaves.len() - first_leaf;
                    splits.push((n, !M::range(lo, hi)));
                    stack.push((n.next as usize + 1, false));
                }
            }
            trees.push((splits, first_leaf..leaves.len()));
        }
        let reads: Vec<Vec<u8>> = trees
            .iter()
            .map(|(splits, _)| {
                let mut cols: Vec<u8> = splits.iter().map(|(n, _)| n.col).collect();
                cols.sort_unstable();
                cols.dedup();
                cols
            })
            .collect();
        let packs = packs(c, &reads);
        // the packed byte and member of each byte of `c`
        let mut home = vec![(0, 0); c.used.len()];
        for (p, pack) in packs.iter().enumerate() {
            for (k, m) in pack.members.iter().enumerate() {
                home[m.byte] = (p, k);
            }
        }
        let mut m = Masked {
            packs: vec![],
            trees: vec![],
            tables: vec![],
            cols: vec![],
            leaves,
        };
        for (splits, leaves) in trees {
            let e0 = m.tables.len();
            let mut cols: Vec<usize> = splits.iter().map(|(n, _)| home[n.col as usize].0).collect();
            cols.sort_unstable();
            cols.dedup();
            for p in cols {
                let on: Vec<(&Member, CNode, M)> = splits
                    .iter()
                    .filter(|(n, _)| home[n.col as usize].0 == p)
                    .map(|&(n, keep)| (&packs[p].members[home[n.col as usize].1], n, keep))
                    .collect();
                m.tables.push(std::array::from_fn(|v| {
                    on.iter()
                        .filter(|(member, n, _)| c.goes_right(*n, member.byte_in(v)))
                        .fold(M::ALL, |acc, (_, _, keep)| acc & *keep)
                }));
                m.cols.push(p);
            }
            m.trees.push(MTree {
                entries: e0..m.tables.len(),
                leaves,
            });
        }
        m.packs = packs;
        Some(m)
    }
}

impl Compiled {
    fn new(trees: &[Tree], n_features: usize) -> Option<Compiled> {
        // which features splits use, and their thresholds or left codes
        let mut thr: Vec<Vec<f32>> = vec![vec![]; n_features];
        let mut cat: Vec<Option<Vec<i32>>> = vec![None; n_features];
        let mut used_f = vec![false; n_features];
        for n in trees.iter().flat_map(|t| &t.nodes) {
            if let Node::Split { feature, rule, .. } = n {
                used_f[*feature] = true;
                match rule {
                    Rule::Numeric { threshold, .. } => {
                        if threshold.is_nan() || cat[*feature].is_some() {
                            return None;
                        }
                        thr[*feature].push(*threshold);
                    }
                    Rule::Categorical { left_codes } => {
                        if !thr[*feature].is_empty() {
                            return None;
                        }
                        cat[*feature]
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(left_codes);
                    }
                }
            }
        }
        let used: Vec<usize> = (0..n_features).filter(|&f| used_f[f]).collect();
        if used.len() > 255 {
            return None;
        }
        let mut byte_of = vec![u8::MAX; n_features];
        let (mut cuts, mut codes, mut lut) = (vec![], vec![], vec![]);
        for (b, &f) in used.iter().enumerate() {
            byte_of[f] = b as u8;
            let mut t = std::mem::take(&mut thr[f]);
            t.sort_by(f32::total_cmp);
            t.dedup_by(|a, b| a == b);
            let c = cat[f].take().map(|mut c| {
                c.sort_unstable();
                c.dedup();
                c
            });
            if t.len() > 254 || c.as_ref().is_some_and(|c| c.len() > 63) {
                return None;
            }
            lut.push(if c.is_none() {
                (0..C_LUT)
                    .map(|v| t.partition_point(|&x| x < v as f32) as u8)
                    .collect()
            } else {
                vec![]
            });
            cuts.push(t);
            codes.push(c);
        }
        let mut f = Compiled {
            used,
            cuts,
            codes,
            lut,
            masks: vec![],
            nodes: vec![],
            values: vec![],
            roots: vec![],
            depth: vec![],
        };
        for t in trees {
            // breadth first: a split's children get two adjacent slots
            let root = f.slot();
            f.roots.push(root as u32);
            let mut queue = std::collections::VecDeque::from([(0usize, root, 0u32)]);
            let mut deepest = 0;
            while let Some((orig, at, level)) = queue.pop_front() {
                f.nodes[at] = match &t.nodes[orig] {
                    Node::Leaf { value, .. } => {
                        f.values[at] = *value;
                        deepest = deepest.max(level);
                        CNode {
                            col: 0,
                            cut: C_MISSING,
                            flags: 0,
                            next: at as u32,
                        }
                    }
                    Node::Split {
                        feature,
                        rule,
                        left,
                        right,
                        ..
                    } => {
                        let b = byte_of[*feature] as usize;
                        let (cut, flags) = match rule {
                            Rule::Numeric {
                                threshold,
                                default_left,
                            } => {
                                let j = f.cuts[b].partition_point(|&x| x < *threshold);
                                let dl = if *default_left { C_DEFAULT_LEFT } else { 0 };
                                (j as u8, dl)
                            }
                            Rule::Categorical { left_codes } => {
                                let all = f.codes[b].as_ref().expect("categorical byte");
                                let mut m = 0u64;
                                for c in left_codes {
                                    m |= 1 << all.binary_search(c).expect("code listed");
                                }
                                if f.masks.len() == 256 {
                                    return None;
                                }
                                f.masks.push(m);
                                ((f.masks.len() - 1) as u8, C_CATEGORICAL)
                            }
                        };
                        let kids = f.slot();
                        f.slot();
                        queue.push_back((*left, kids, level + 1));
                        queue.push_back((*right, kids + 1, level + 1));
                        CNode {
                            col: b as u8,
                            cut,
                            flags,
                            next: kids as u32,
                        }
                    }
                };
            }
            f.depth.push(deepest);
        }
        Some(f)
    }

    /// A new node (filled in when its turn in the breadth-first order comes), its index.
    fn slot(&mut self) -> usize {
        self.nodes.push(CNode {
            col: 0,
            cut: 0,
            flags: 0,
            next: 0,
        });
        self.values.push(0.0);
        self.nodes.len() - 1
    }

    /// Encode rows `first..first + k` of `cols` into `buf`, one byte per used feature:
    /// row `i`'s byte `b` at `i * rs + b * cs`.
    fn encode(
        &self,
        cols: &[&[f32]],
        first: usize,
        k: usize,
        buf: &mut [u8],
        (rs, cs): (usize, usize),
    ) {
        let mut one = vec![0u8; k];
        for (b, &f) in self.used.iter().enumerate() {
            self.ranks(b, &cols[f][first..first + k], &mut one);
            for (i, &x) in one.iter().enumerate() {
                buf[i * rs + b * cs] = x;
            }
        }
    }

    /// The bytes of used feature `b` for the values `xs`: a numeric value's rank among
    /// the thresholds (missing: [`C_MISSING`]), a categorical code's position among the
    /// left codes (missing or never sent left: [`C_OTHER`]).
    fn ranks(&self, b: usize, xs: &[f32], out: &mut [u8]) {
        if let Some(codes) = &self.codes[b] {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = if x.is_nan() {
                    C_OTHER
                } else {
                    codes
                        .binary_search(&(x as i32))
                        .map_or(C_OTHER, |p| p as u8)
                };
            }
        } else {
            let (cuts, lut) = (&self.cuts[b], &self.lut[b]);
            for (o, &x) in out.iter_mut().zip(xs) {
                // a whole number in the table's range by one conversion each way (not
                // `x.trunc()`, a call into libm without SSE4.1); NaN converts to 0 but
                // does not equal it
                let i = x as i32;
                *o = if x.is_nan() {
                    C_MISSING
                } else if (0..C_LUT as i32).contains(&i) && i as f32 == x {
                    lut[i as usize]
                } else {
                    cuts.partition_point(|&t| t < x) as u8
                };
            }
        }
    }

    /// Whether split `n` sends a row whose byte is `x` right.
    #[inline(always)]
    fn goes_right(&self, n: CNode, x: u8) -> bool {
        if n.flags & C_CATEGORICAL == 0 {
            (x > n.cut) & !((x == C_MISSING) & (n.flags & C_DEFAULT_LEFT != 0))
        } else {
            // a categorical byte is at most C_OTHER (63)
            (self.masks[n.cut as usize] >> x.min(C_OTHER)) & 1 == 0
        }
    }

    /// One step down from node `a` for an encoded row (a leaf stays where it is).
    #[inline(always)]
    fn step(&self, a: usize, row: &[u8]) -> usize {
        let n = self.nodes[a];
        n.next as usize + usize::from(self.goes_right(n, row[n.col as usize]))
    }

    /// Add every tree's leaf, in order, to `out[k]` for rows `first..first + out.len()`.
    fn score(&self, cols: &[&[f32]], first: usize, out: &mut [f64]) {
        const BLOCK: usize = 64;
        let w = self.used.len().max(1);
        let mut buf = vec![0u8; BLOCK * w];
        for (b, out) in out.chunks_mut(BLOCK).enumerate() {
            let k = out.len();
            self.encode(cols, first + b * BLOCK, k, &mut buf, (w, 1));
            // groups of 8 rows walk each tree side by side for its full depth: 8
            // independent chains of loads in flight instead of one
            const G: usize = 8;
            for t in 0..self.roots.len() {
                let (root, depth) = (self.roots[t] as usize, self.depth[t]);
                for (g, og) in out.chunks_mut(G).enumerate() {
                    let mut a = [root; G];
                    let rows: [&[u8]; G] = std::array::from_fn(|i| {
                        let r = (g * G + i).min(k - 1);
                        &buf[r * w..(r + 1) * w]
                    });
                    for _ in 0..depth {
                        for i in 0..G {
                            a[i] = self.step(a[i], rows[i]);
                        }
                    }
                    for (o, &ai) in og.iter_mut().zip(&a) {
                        *o += self.values[ai];
                    }
                }
            }
        }
    }

    /// [`Compiled::score`] by bitvectors ([`Masked`]): the same leaves, the trees added in
    /// the same order.
    fn score_masked<M: LeafBits>(
        &self,
        mk: &Masked<M>,
        cols: &[&[f32]],
        first: usize,
        out: &mut [f64],
    ) {
        // rows a block: enough that each tree's tables serve many rows while in cache;
        // the block's bytes (column-major: a feature's bytes side by side) and bitvectors
        // stay in L2 (2,048 measured faster than 128, 1,024, 8,192 and 32,768)
        const BLOCK: usize = 2048;
        let w = mk.packs.len().max(1);
        let mut buf = vec![0u8; BLOCK * w];
        let mut one = vec![0u8; BLOCK];
        let mut m = [M::ALL; BLOCK];
        for (b, out) in out.chunks_mut(BLOCK).enumerate() {
            let k = out.len();
            let at = first + b * BLOCK;
            for (p, pack) in mk.packs.iter().enumerate() {
                let dst = &mut buf[p * BLOCK..p * BLOCK + k];
                dst.fill(0);
                for member in &pack.members {
                    let col = &cols[self.used[member.byte]][at..at + k];
                    self.ranks(member.byte, col, &mut one[..k]);
                    for (d, &x) in dst.iter_mut().zip(&one[..k]) {
                        *d |= member.put[x as usize];
                    }
                }
            }
            for t in &mk.trees {
                let cols = &mk.cols[t.entries.clone()];
                let tables = &mk.tables[t.entries.clone()];
                let leaves = &mk.leaves[t.leaves.clone()];
                // up to four tables a pass over the block: the first pass stores the
                // masks, the last adds each row's leaf (one pass does both when a tree
                // reads at most four bytes)
                let passes = cols.len().div_ceil(4);
                for (q, (cs, ts)) in cols.chunks(4).zip(tables.chunks(4)).enumerate() {
                    let mode = match (q == 0, q + 1 == passes) {
                        (true, true) => ONLY,
                        (true, false) => FIRST,
                        (false, false) => MIDDLE,
                        (false, true) => LAST,
                    };
                    let x = |j: usize| &buf[cs[j] * BLOCK..cs[j] * BLOCK + k];
                    let (m, out) = (&mut m[..k], &mut *out);
                    match (cs.len(), mode) {
                        (1, ONLY) => pass::<M, 1, ONLY>(m, out, leaves, [x(0)], [&ts[0]]),
                        (1, LAST) => pass::<M, 1, LAST>(m, out, leaves, [x(0)], [&ts[0]]),
                        (2, ONLY) => {
                            pass::<M, 2, ONLY>(m, out, leaves, [x(0), x(1)], [&ts[0], &ts[1]])
                        }
                        (2, LAST) => {
                            pass::<M, 2, LAST>(m, out, leaves, [x(0), x(1)], [&ts[0], &ts[1]])
                        }
                        (3, ONLY) => pass::<M, 3, ONLY>(
                            m,
                            out,
                            leaves,
                            [x(0), x(1), x(2)],
                            [&ts[0], &ts[1], &ts[2]],
                        ),
                        (3, LAST) => pass::<M, 3, LAST>(
                            m,
                            out,
                            leaves,
                            [x(0), x(1), x(2)],
                            [&ts[0], &ts[1], &ts[2]],
                        ),
                        (_, ONLY) => pass::<M, 4, ONLY>(
                            m,
                            out,
                            leaves,
                            std::array::from_fn(x),
                            std::array::from_fn(|j| &ts[j]),
                        ),
                        (_, FIRST) => pass::<M, 4, FIRST>(
                            m,
                            out,
                            leaves,
                            std::array::from_fn(x),
                            std::array::from_fn(|j| &ts[j]),
                        ),
                        (_, MIDDLE) => pass::<M, 4, MIDDLE>(
                            m,
                            out,
                            leaves,
                            std::array::from_fn(x),
                            std::array::from_fn(|j| &ts[j]),
                        ),
                        _ => pass::<M, 4, LAST>(
                            m,
                            out,
                            leaves,
                            std::array::from_fn(x),
                            std::array::from_fn(|j| &ts[j]),
                        ),
                    }
                }
            }
        }
    }
}

/// What a pass of [`pass`] does with the AND of its tables' masks for a row.
const ONLY: u8 = 0;
const FIRST: u8 = 1;
const MIDDLE: u8 = 2;
const LAST: u8 = 3;

/// One pass of [`Compiled::score_masked`] over a block of rows: the AND of `N` tables'
/// masks for each row, stored (`FIRST`), ANDed into the row's mask (`MIDDLE`), or ANDed
/// into it and the leaf it leaves added to the row's score (`LAST`, or `ONLY` without a
/// stored mask).
#[inline(always)]
fn pass<M: LeafBits, const N: usize, const MODE: u8>(
    m: &mut [M],
    out: &mut [f64],
    leaves: &[f64],
    xs: [&[u8]; N],
    tb: [&[M; 256]; N],
) {
    let k = m.len();
    let xs: [&[u8]; N] = std::array::from_fn(|j| &xs[j][..k]);
    let out = &mut out[..k];
    for i in 0..k {
        let mut a = tb[0][xs[0][i] as usize];
        for j in 1..N {
            a &= tb[j][xs[j][i] as usize];
        }
        match MODE {
            ONLY => out[i] += leaves[a.first()],
            FIRST => m[i] = a,
            MIDDLE => m[i] &= a,
            _ => out[i] += leaves[(m[i] & a).first()],
        }
    }
}

/// One element of a TreeSHAP path: the feature, the fraction of "zero" (feature not
/// known) and "one" (feature known) paths that flow through, and the permutation weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathElem {
    d: Option<usize>,
    z: f64,
    o: f64,
    w: f64,
}

impl PathElem {
    const EMPTY: PathElem = PathElem {
        d: None,
        z: 0.0,
        o: 0.0,
        w: 0.0,
    };
}

/// `1 / k` for the small integers a path's weights are scaled by (a path is at most one
/// element longer than its tree is deep), so that the loops below multiply instead of
/// divide: a division costs several times a multiplication, and TreeSHAP does O(depth²)
/// of them per leaf. The results can differ from dividing in the last bit.
const RECIP: [f64; 257] = {
    let mut r = [0.0; 257];
    let mut k = 1;
    while k < 257 {
        r[k] = 1.0 / k as f64;
        k += 1;
    }
    r
};

#[inline]
fn recip(k: usize) -> f64 {
    if k < RECIP.len() {
        RECIP[k]
    } else {
        1.0 / k as f64
    }
}

/// Extends the path `m[..l]` by one element (to `m[..l + 1]`).
fn extend(m: &mut [PathElem], l: usize, pz: f64, po: f64, pi: Option<usize>) {
    m[l] = PathElem {
        d: pi,
        z: pz,
        o: po,
        w: if l == 0 { 1.0 } else { 0.0 },
    };
    let inv = recip(l + 1);
    for i in (0..l).rev() {
        m[i + 1].w += po * m[i].w * (i + 1) as f64 * inv;
        m[i].w = pz * m[i].w * (l - i) as f64 * inv;
    }
}

/// Removes element `i` from the path `m[..len]` (leaving `m[..len - 1]`).
fn unwind(m: &mut [PathElem], len: usize, i: usize) {
    let l = len - 1;
    let (o, z) = (m[i].o, m[i].z);
    let lp1 = (l + 1) as f64;
    let inv_lp1 = recip(l + 1);
    let mut n = m[l].w;
    if o != 0.0 {
        let lp1_o = lp1 / o;
        for j in (0..l).rev() {
            let t = m[j].w;
            m[j].w = n * lp1_o * recip(j + 1);
            n = t - m[j].w * z * (l - j) as f64 * inv_lp1;
        }
    } else {
        let lp1_z = lp1 / z;
        for j in (0..l).rev() {
            m[j].w *= lp1_z * recip(l - j);
        }
    }
    for j in i..l {
        m[j].d = m[j + 1].d;
        m[j].z = m[j + 1].z;
        m[j].o = m[j + 1].o;
    }
}

/// The total weight of the path `m` with element `i` unwound (without changing `m`).
fn unwound_sum(m: &[PathElem], i: usize) -> f64 {
    let l = m.len() - 1;
    let (o, z) = (m[i].o, m[i].z);
    let lp1 = (l + 1) as f64;
    let mut total = 0.0;
    if o != 0.0 {
        let inv_lp1 = recip(l + 1);
        let lp1_o = lp1 / o;
        let mut n = m[l].w;
        for j in (0..l).rev() {
            let t = n * lp1_o * recip(j + 1);
            total += t;
            n = m[j].w - t * z * (l - j) as f64 * inv_lp1;
        }
    } else {
        let lp1_z = lp1 / z;
        for j in (0..l).rev() {
            total += m[j].w * lp1_z * recip(l - j);
        }
    }
    total
}

/// A trained boosted-tree model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbtModel {
    /// Feature names, in the order trees refer to them.
    pub features: Vec<String>,
    /// Feature kinds, same order.
    pub kinds: Vec<FeatureKind>,
    /// Initial log-odds (the training prevalence's logit).
    #[serde(with = "crate::exact")]
    pub base_score: f64,
    /// The trees (after early stopping, only up to the best round).
    pub trees: Vec<Tree>,
    /// Hyperparameters used.
    pub params: GbtParams,
    /// Validation log-loss after each round, when a validation matrix was given.
    #[serde(with = "crate::exact::vec")]
    pub valid_logloss: Vec<f64>,
}

impl GbtModel {
    /// Check internal consistency (after loading from a file).
    pub fn validate(&self) -> Result<()> {
        if self.features.len() != self.kinds.len() {
            return Err(Error::Invalid(
                "GBT model: features and kinds differ in length".into(),
            ));
        }
        if !self.base_score.is_finite() {
            return Err(Error::Invalid("GBT model: base_score is not finite".into()));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            tree.validate(self.features.len(), t)?;
        }
        Ok(())
    }

    /// Log-odds for every row of `cols` (the model's features, in model order).
    pub(crate) fn raw_scores(&self, cols: &[&[f32]], n: usize) -> Vec<f64> {
        let mut out = vec![self.base_score; n];
        // scoring is not training: use the machine's cores whatever the model was fitted with
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let ranges = chunks(n, threads);
        if let Some(c) = Compiled::new(&self.trees, self.features.len()) {
            let m32 = Masked::<u32>::new(&c);
            let m64 = if m32.is_none() {
                Masked::<u64>::new(&c)
            } else {
                None
            };
            std::thread::scope(|s| {
                let mut rest: &mut [f64] = &mut out;
                for r in ranges {
                    let (mine, tail) = rest.split_at_mut(r.len());
                    rest = tail;
                    let (c, m32, m64) = (&c, &m32, &m64);
                    s.spawn(move || match (m32, m64) {
                        (Some(mk), _) => c.score_masked(mk, cols, r.start, mine),
                        (_, Some(mk)) => c.score_masked(mk, cols, r.start, mine),
                        _ => c.score(cols, r.start, mine),
                    });
                }
            });
            return out;
        }
        let flat = FlatForest::new(&self.trees);
        std::thread::scope(|s| {
            let mut rest: &mut [f64] = &mut out;
            for r in ranges {
                let (mine, tail) = rest.split_at_mut(r.len());
                rest = tail;
                let flat = &flat;
                s.spawn(move || {
                    // rows in blocks, trees inside: one tree's nodes stay in cache while a
                    // block of rows walks it; each row still adds the trees in order, so
                    // the sums are the same as row by row
                    const BLOCK: usize = 256;
                    let mut at = [0u32; BLOCK];
                    for (b, out) in mine.chunks_mut(BLOCK).enumerate() {
                        let first = r.start + b * BLOCK;
                        let len = out.len();
                        for t in 0..flat.roots.len() {
                            for (k, a) in at[..len].iter_mut().enumerate() {
                                *a = flat.walk(t, cols, first + k);
                            }
                            for (o, &leaf) in out.iter_mut().zip(&at[..len]) {
                                *o += flat.nodes[leaf as usize].value;
                            }
                        }
                    }
                });
            }
        });
        out
    }

    /// Base value (expected log-odds) and TreeSHAP contributions for one row.
    pub(crate) fn shap_row(&self, cols: &[&[f32]], row: usize) -> (f64, Vec<f64>) {
        let mut phi = vec![0.0; self.features.len()];
        let mut base = self.base_score;
        let x = |j: usize| cols[j][row];
        let mut buf = Vec::new();
        for t in &self.trees {
            base += t.expected_value();
            t.shap_with(&x, &mut phi, &mut buf);
        }
        (base, phi)
    }

    /// TreeSHAP contributions of each of `rows` in turn, handed to `each` (one buffer,
    /// refilled per row).
    pub(crate) fn shap_rows(&self, cols: &[&[f32]], rows: &[usize], mut each: impl FnMut(&[f64])) {
        let mut phi = vec![0.0; self.features.len()];
        let mut buf = Vec::new();
        for &row in rows {
            phi.fill(0.0);
            let x = |j: usize| cols[j][row];
            for t in &self.trees {
                t.shap_with(&x, &mut phi, &mut buf);
            }
            each(&phi);
        }
    }

    /// Total split gain per feature (LightGBM's "gain" importance).
    pub fn gain_importance(&self) -> Vec<(String, f64)> {
        let mut g = vec![0.0; self.features.len()];
        for t in &self.trees {
            for n in &t.nodes {
                if let Node::Split { feature, gain, .. } = n {
                    g[*feature] += gain;
                }
            }
        }
        self.features.iter().cloned().zip(g).collect()
    }
}

// ---------------------------------------------------------------------------------
// Binning
// ---------------------------------------------------------------------------------

/// Maps a feature's values to bins: bin 0 is missing, bins 1.. are values.
#[derive(Debug, Clone)]
struct BinMapper {
    kind: FeatureKind,
    /// Numeric: upper bound (inclusive) of bin b+1; the last is f32::MAX.
    uppers: Vec<f32>,
    /// Categorical: the code of bin b+1.
    codes: Vec<i32>,
    code_bin: std::collections::HashMap<i32, u8>,
}

impl BinMapper {
    fn n_bins(&self) -> usize {
        1 + match self.kind {
            FeatureKind::Categorical => self.codes.len(),
            _ => self.uppers.len(),
        }
    }

    fn bin(&self, v: f32) -> u8 {
        if v.is_nan() {
            return 0;
        }
        match self.kind {
            FeatureKind::Categorical => *self.code_bin.get(&(v as i32)).unwrap_or(&0),
            _ => (self.uppers.partition_point(|u| *u < v) + 1) as u8,
        }
    }

    fn numeric(sample: &mut [f32], max_value_bins: usize, kind: FeatureKind) -> BinMapper {
        sample.sort_by(f32::total_cmp);
        let mut distinct: Vec<(f32, usize)> = Vec::new();
        for v in sample.iter() {
            match distinct.last_mut() {
                Some((d, c)) if *d == *v => *c += 1,
                _ => distinct.push((*v, 1)),
            }
        }
        let mut uppers: Vec<f32> = Vec::new();
        if distinct.len() <= max_value_bins {
            uppers = distinct.iter().map(|d| d.0).collect();
        } else {
            // Equal-frequency cut points over the sample; a value holding many rows
            // takes a bin of its own and the dedup leaves fewer, larger bins.
            let total = sample.len() as f64;
            let mut cum = 0usize;
            let mut k = 1usize;
            for (v, c) in &distinct {
                cum += c;
                while k < max_value_bins && cum as f64 >= total * k as f64 / max_value_bins as f64 {
                    if uppers.last() != Some(v) {
                        uppers.push(*v);
                    }
                    k += 1;
                }
            }
        }
        if uppers.is_empty() {
            uppers.push(f32::MAX);
        }
        *uppers.last_mut().expect("non-empty") = f32::MAX;
        BinMapper {
            kind,
            uppers,
            codes: Vec::new(),
            code_bin: Default::default(),
        }
    }

    fn categorical(column: &[f32], max_value_bins: usize) -> BinMapper {
        let mut counts: std::collections::HashMap<i32, usize> = Default::default();
        for v in column.iter().filter(|v| !v.is_nan()) {
            *counts.entry(*v as i32).or_default() += 1;
        }
        let mut by_count: Vec<(i32, usize)> = counts.into_iter().collect();
        // Most frequent first; codes beyond the bin budget share the missing bin.
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_count.truncate(max_value_bins);
        let codes: Vec<i32> = by_count.iter().map(|c| c.0).collect();
        let code_bin = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, (i + 1) as u8))
            .collect();
        BinMapper {
            kind: FeatureKind::Categorical,
            uppers: Vec::new(),
            codes,
            code_bin,
        }
    }
}

/// The training matrix in bins, twice: row-major (one byte per feature per row) for
/// histograms, which read every feature of a row, and column-major for partitioning,
/// which reads one feature of many rows.
struct Binned {
    mappers: Vec<BinMapper>,
    nf: usize,
    n: usize,
    data: Vec<u8>,
    by_col: Vec<u8>,
}

impl Binned {
    fn bin(&self, row: usize, f: usize) -> u8 {
        self.by_col[f * self.n + row]
    }
}

fn bin_matrix(cols: &[&[f32]], kinds: &[FeatureKind], n: usize, p: &GbtParams) -> Binned {
    let max_value_bins = p.max_bin - 1;
    let mut rng = Rng::stream(p.seed, 0xB1);
    let sample_rows: Vec<usize> = if n <= p.bin_construct_sample_cnt {
        (0..n).collect()
    } else {
        // Selection sampling (Knuth's Algorithm S): an ordered sample of exact size.
        let mut need = p.bin_construct_sample_cnt;
        let mut rows = Vec::with_capacity(need);
        for i in 0..n {
            if (rng.below((n - i) as u64) as usize) < need {
                rows.push(i);
                need -= 1;
            }
        }
        rows
    };
    let mappers: Vec<BinMapper> = cols
        .iter()
        .zip(kinds)
        .map(|(col, kind)| match kind {
            FeatureKind::Categorical => BinMapper::categorical(col, max_value_bins),
            _ => {
                let mut s: Vec<f32> = sample_rows
                    .iter()
                    .map(|r| col[*r])
                    .filter(|v| !v.is_nan())
                    .collect();
                BinMapper::numeric(&mut s, max_value_bins, *kind)
            }
        })
        .collect();
    let nf = cols.len();
    let mut by_col = vec![0u8; n * nf];
    std::thread::scope(|s| {
        let mut rest: &mut [u8] = &mut by_col;
        for fr in chunks(nf, p.threads) {
            let (mine, tail) = rest.split_at_mut(fr.len() * n);
            rest = tail;
            let mappers = &mappers;
            s.spawn(move || {
                for (k, out) in mine.chunks_mut(n.max(1)).enumerate() {
                    let f = fr.start + k;
                    for (o, v) in out.iter_mut().zip(cols[f]) {
                        *o = mappers[f].bin(*v);
                    }
                }
            });
        }
    });
    let mut data = vec![0u8; n * nf];
    std::thread::scope(|s| {
        let mut rest: &mut [u8] = &mut data;
        for r in chunks(n, p.threads) {
            let (mine, tail) = rest.split_at_mut(r.len() * nf);
            rest = tail;
            let by_col = &by_col;
            s.spawn(move || {
                for f in 0..nf {
                    let col = &by_col[f * n + r.start..f * n + r.end];
                    for (k, b) in col.iter().enumerate() {
                        mine[k * nf + f] = *b;
                    }
                }
            });
        }
    });
    Binned {
        mappers,
        nf,
        n,
        data,
        by_col,
    }
}

// ---------------------------------------------------------------------------------
// Histograms and splits
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct HBin {
    g: f64,
    h: f64,
    n: u64,
}

impl std::ops::AddAssign for HBin {
    fn add_assign(&mut self, o: HBin) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
}

/// One histogram cell: sums of gradients and hessians. Counts are not kept (LightGBM
/// drops them too): a side's row count is estimated as its hessian sum × (rows in the
/// leaf / hessian sum of the leaf), and made exact once the rows are partitioned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GH {
    g: f64,
    h: f64,
}

impl std::ops::AddAssign for GH {
    fn add_assign(&mut self, o: GH) {
        self.g += o.g;
        self.h += o.h;
    }
}

impl std::ops::Sub for GH {
    type Output = GH;
    fn sub(self, o: GH) -> GH {
        GH {
            g: self.g - o.g,
            h: self.h - o.h,
        }
    }
}

impl std::ops::Sub for HBin {
    type Output = HBin;
    fn sub(self, o: HBin) -> HBin {
        HBin {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

const PARALLEL_MIN_ROWS: usize = 16_384;

/// Cells per feature block: more than any bin byte, so indexing needs no bounds check
/// and no offset table (the hot loop is one load-add-store per feature), and not a
/// multiple of 4 KiB, which would put every feature's bin b in the same cache set.
const BLOCK: usize = 260;

/// A histogram: one block of [`BLOCK`] cells per feature.
type Hist = Vec<[GH; BLOCK]>;

fn build_hist(b: &Binned, idx: &[u32], gh: &[[f32; 2]], threads: usize) -> Hist {
    let one = |rows: &[u32]| {
        let nf = b.nf;
        let mut hist: Hist = vec![[GH::default(); BLOCK]; nf];
        for &r in rows {
            let r = r as usize;
            let [gr, hr] = gh[r];
            let (gr, hr) = (gr as f64, hr as f64);
            let row = &b.data[r * nf..(r + 1) * nf];
            for (block, bin) in hist.iter_mut().zip(row) {
                let e = &mut block[*bin as usize];
                e.g += gr;
                e.h += hr;
            }
        }
        hist
    };
    if threads <= 1 || idx.len() < PARALLEL_MIN_ROWS {
        return one(idx);
    }
    let parts: Vec<Hist> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks(idx.len(), threads)
            .into_iter()
            .map(|r| {
                let rows = &idx[r];
                s.spawn(move || one(rows))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("histogram thread panicked"))
            .collect()
    });
    let mut it = parts.into_iter();
    let mut acc = it.next().expect("at least one part");
    for p in it {
        for ((into, from), m) in acc.iter_mut().zip(p).zip(&b.mappers) {
            let nb = m.n_bins();
            for (x, y) in into[..nb].iter_mut().zip(&from[..nb]) {
                *x += *y;
            }
        }
    }
    acc
}

#[derive(Debug, Clone)]
struct SplitCand {
    feature: usize,
    gain: f64,
    left: HBin,
    right: HBin,
    /// Bins sent left (bit b of the 256-bit set).
    left_bins: [u64; 4],
    /// Numeric: last value bin sent left; categorical: unused.
    threshold_bin: usize,
    default_left: bool,
}

fn set_bit(bits: &mut [u64; 4], b: usize) {
    bits[b >> 6] |= 1 << (b & 63);
}

fn has_bit(bits: &[u64; 4], b: u8) -> bool {
    bits[(b >> 6) as usize] >> (b & 63) & 1 == 1
}

struct SplitCtx<'a> {
    p: &'a GbtParams,
    binned: &'a Binned,
}

impl SplitCtx<'_> {
    fn leaf_score(g: f64, h: f64, l2: f64) -> f64 {
        g * g / (h + l2)
    }

    fn ok(&self, s: &HBin) -> bool {
        s.n as usize >= self.p.min_data_in_leaf && s.h >= self.p.min_sum_hessian_in_leaf
    }

    fn best(&self, hist: &[[GH; BLOCK]], total: HBin, features: &[usize]) -> Option<SplitCand> {
        let mut best: Option<SplitCand> = None;
        let min_gain = self.p.min_gain_to_split.max(1e-12);
        for &f in features {
            let m = &self.binned.mappers[f];
            let hs = &hist[f][..m.n_bins()];
            let cand = match m.kind {
                FeatureKind::Categorical => self.best_categorical(f, hs, total),
                _ => self.best_numeric(f, hs, total),
            };
            if let Some(c) = cand
                && c.gain > min_gain
                && best.as_ref().is_none_or(|b| c.gain > b.gain)
            {
                best = Some(c);
            }
        }
        best
    }

    fn best_numeric(&self, f: usize, hs: &[GH], total: HBin) -> Option<SplitCand> {
        let l2 = self.p.lambda_l2;
        let parent = Self::leaf_score(total.g, total.h, l2);
        let nb = hs.len();
        let miss = hs[0];
        let mut best: Option<(f64, usize, bool, HBin)> = None;
        let dirs: &[bool] = if miss.h > 0.0 {
            &[false, true]
        } else {
            &[false]
        };
        let est = count_estimator(total);
        for &missing_left in dirs {
            let mut sum = if missing_left { miss } else { GH::default() };
            for (b, e) in hs.iter().enumerate().take(nb).skip(1) {
                sum += *e;
                let acc = est(sum);
                let right = total - acc;
                if right.n == 0 || (right.n as usize) < self.p.min_data_in_leaf {
                    break;
                }
                if !self.ok(&acc) || !self.ok(&right) {
                    continue;
                }
                let gain = Self::leaf_score(acc.g, acc.h, l2)
                    + Self::leaf_score(right.g, right.h, l2)
                    - parent;
                if best.as_ref().is_none_or(|bb| gain > bb.0) {
                    best = Some((gain, b, missing_left, acc));
                }
            }
        }
        let (gain, b, default_left, left) = best?;
        let mut bits = [0u64; 4];
        for bin in 1..=b {
            set_bit(&mut bits, bin);
        }
        if default_left {
            set_bit(&mut bits, 0);
        }
        Some(SplitCand {
            feature: f,
            gain,
            left,
            right: total - left,
            left_bins: bits,
            threshold_bin: b,
            default_left,
        })
    }

    fn best_categorical(&self, f: usize, hs: &[GH], total: HBin) -> Option<SplitCand> {
        let l2 = self.p.lambda_l2 + self.p.cat_l2;
        let parent = Self::leaf_score(total.g, total.h, l2);
        let est = count_estimator(total);
        let mut cats: Vec<usize> = (1..hs.len())
            .filter(|b| {
                hs[*b].h > 0.0 && est(hs[*b]).n as usize >= self.p.min_data_per_group.max(1)
            })
            .collect();
        if cats.is_empty() {
            return None;
        }
        let key = |b: usize| hs[b].g / (hs[b].h + self.p.cat_smooth);
        cats.sort_by(|a, b| key(*a).total_cmp(&key(*b)).then(a.cmp(b)));
        let max_k = self.p.max_cat_threshold.max(1).min(cats.len());
        let mut best: Option<(f64, Vec<usize>, HBin)> = None;
        for order in [false, true] {
            let seq: Vec<usize> = if order {
                cats.iter().rev().copied().collect()
            } else {
                cats.clone()
            };
            let mut sum = GH::default();
            for k in 0..max_k {
                sum += hs[seq[k]];
                let acc = est(sum);
                let right = total - acc;
                if right.n == 0 || (right.n as usize) < self.p.min_data_in_leaf {
                    break;
                }
                if !self.ok(&acc) || !self.ok(&right) {
                    continue;
                }
                let gain = Self::leaf_score(acc.g, acc.h, l2)
                    + Self::leaf_score(right.g, right.h, l2)
                    - parent;
                if best.as_ref().is_none_or(|bb| gain > bb.0) {
                    best = Some((gain, seq[..=k].to_vec(), acc));
                }
            }
        }
        let (gain, left_cats, left) = best?;
        let mut bits = [0u64; 4];
        for b in left_cats {
            set_bit(&mut bits, b);
        }
        Some(SplitCand {
            feature: f,
            gain,
            left,
            right: total - left,
            left_bins: bits,
            threshold_bin: 0,
            default_left: false,
        })
    }
}

// ---------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------

/// Sums with a row count estimated from the hessian (see [`GH`]), never above the
/// leaf's rows.
fn count_estimator(total: HBin) -> impl Fn(GH) -> HBin {
    let factor = if total.h > 0.0 {
        total.n as f64 / total.h
    } else {
        0.0
    };
    move |s: GH| HBin {
        g: s.g,
        h: s.h,
        n: ((s.h * factor).round().max(0.0) as u64).min(total.n),
    }
}

struct Leaf {
    start: usize,
    end: usize,
    sums: HBin,
    depth: usize,
    node: usize,
    hist: Option<Hist>,
    best: Option<SplitCand>,
}

/// A training-time node: bins sent left as a bit set, or a leaf index.
#[derive(Clone)]
enum BinNode {
    Split {
        feature: usize,
        bits: [u64; 4],
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

fn bin_leaf_value(nodes: &[BinNode], bin: impl Fn(usize) -> u8) -> f64 {
    let mut n = 0;
    loop {
        match &nodes[n] {
            BinNode::Leaf(v) => return *v,
            BinNode::Split {
                feature,
                bits,
                left,
                right,
            } => {
                n = if has_bit(bits, bin(*feature)) {
                    *left
                } else {
                    *right
                }
            }
        }
    }
}

fn check_training_matrix(m: &FeatureMatrix, what: &str) -> Result<()> {
    if m.n_rows() == 0 {
        return Err(Error::Invalid(format!("{what} matrix has no rows")));
    }
    if m.n_features() == 0 {
        return Err(Error::Invalid(format!("{what} matrix has no features")));
    }
    Ok(())
}

/// Columns of `m` in the order of `names`, refusing a matrix whose features differ.
pub(crate) fn columns_for<'a>(
    m: &'a FeatureMatrix,
    names: &[String],
    kinds: &[FeatureKind],
) -> Result<Vec<&'a [f32]>> {
    names
        .iter()
        .zip(kinds)
        .map(|(n, k)| {
            let j = m.index_of(n).ok_or_else(|| {
                Error::FeatureMismatch(format!(
                    "the model uses feature '{n}', which the matrix lacks"
                ))
            })?;
            if m.kinds()[j] != *k {
                return Err(Error::FeatureMismatch(format!(
                    "feature '{n}' is {:?} in the model but {:?} in the matrix",
                    k,
                    m.kinds()[j]
                )));
            }
            Ok(m.column(j))
        })
        .collect()
}

fn log_loss(scores: &[f64], labels: &[u8]) -> f64 {
    scores
        .iter()
        .zip(labels)
        .map(|(s, y)| {
            // log(1 + e^s) − y·s, computed stably.
            let softplus = if *s > 0.0 {
                s + (-s).exp().ln_1p()
            } else {
                s.exp().ln_1p()
            };
            softplus - *y as f64 * s
        })
        .sum::<f64>()
        / scores.len() as f64
}

/// Train a boosted-tree model on `train`, early-stopping on `valid` if given.
pub fn train_gbt(
    train: &FeatureMatrix,
    valid: Option<&FeatureMatrix>,
    p: &GbtParams,
) -> Result<GbtModel> {
    p.validate()?;
    check_training_matrix(train, "training")?;
    let n = train.n_rows();
    let labels = train.labels();
    let events: usize = labels.iter().map(|y| *y as usize).sum();
    if events == 0 || events == n {
        return Err(Error::Invalid(format!(
            "training matrix has {events} events in {n} rows; both outcomes are needed"
        )));
    }
    if n > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "training matrix has {n} rows; at most 2^32 − 1"
        )));
    }
    let features: Vec<String> = train.names().to_vec();
    let kinds: Vec<FeatureKind> = train.kinds().to_vec();
    let cols: Vec<&[f32]> = (0..train.n_features()).map(|j| train.column(j)).collect();
    let valid_cols = match valid {
        Some(v) => {
            check_training_matrix(v, "validation")?;
            Some(columns_for(v, &features, &kinds)?)
        }
        None => None,
    };
    let threads = p.threads.max(1);
    let binned = bin_matrix(&cols, &kinds, n, p);
    let base_score = logit(events as f64 / n as f64);
    let mut model = GbtModel {
        features,
        kinds,
        base_score,
        trees: Vec::new(),
        params: p.clone(),
        valid_logloss: Vec::new(),
    };
    let mut scores = vec![base_score; n];
    let mut valid_scores = valid.map(|v| vec![base_score; v.n_rows()]);
    let mut gh = vec![[0f32; 2]; n];
    let mut indices: Vec<u32> = Vec::with_capacity(n);
    let mut scratch: Vec<u32> = Vec::with_capacity(n);
    let (mut best_loss, mut best_round) = (f64::INFINITY, 0usize);
    let ctx = SplitCtx { p, binned: &binned };
    let nf = binned.nf;
    for it in 0..p.num_iterations {
        // Gradients and hessians of the log-loss at the current scores.
        std::thread::scope(|s| {
            let mut rest: &mut [[f32; 2]] = &mut gh;
            for r in chunks(n, threads) {
                let (mine, tail) = rest.split_at_mut(r.len());
                rest = tail;
                let (sc, y) = (&scores[r.clone()], &labels[r.clone()]);
                s.spawn(move || {
                    for k in 0..sc.len() {
                        let pr = sigmoid(sc[k]);
                        mine[k] = [
                            (pr - y[k] as f64) as f32,
                            (pr * (1.0 - pr)).max(1e-16) as f32,
                        ];
                    }
                });
            }
        });
        // Rows and features for this tree.
        indices.clear();
        if p.bagging_fraction < 1.0 {
            let mut rng = Rng::stream(p.seed, 0x1_0000 + it as u64);
            indices.extend((0..n as u32).filter(|_| rng.f64() < p.bagging_fraction));
            if indices.len() < 2 * p.min_data_in_leaf.max(1) {
                indices.clear();
                indices.extend(0..n as u32);
            }
        } else {
            indices.extend(0..n as u32);
        }
        let feats: Vec<usize> = if p.feature_fraction < 1.0 {
            let k = ((nf as f64 * p.feature_fraction).round() as usize).clamp(1, nf);
            let mut rng = Rng::stream(p.seed, 0x2_0000 + it as u64);
            let mut all: Vec<usize> = (0..nf).collect();
            for i in 0..k {
                let j = i + rng.below((nf - i) as u64) as usize;
                all.swap(i, j);
            }
            let mut chosen = all[..k].to_vec();
            chosen.sort_unstable();
            chosen
        } else {
            (0..nf).collect()
        };
        let (bnodes, leaf_ranges) = grow_tree(
            &ctx,
            &binned,
            &mut indices,
            &mut scratch,
            &gh,
            &feats,
            threads,
            p,
            &mut model,
        );
        // Update training scores: rows grown on get their leaf's value from the final
        // partition; rows left out by bagging walk the tree on their bins.
        let mut updated = vec![false; if p.bagging_fraction < 1.0 { n } else { 0 }];
        for &(start, end, value) in &leaf_ranges {
            for &r in &indices[start..end] {
                scores[r as usize] += value;
                if let Some(u) = updated.get_mut(r as usize) {
                    *u = true;
                }
            }
        }
        for (row, done) in updated.iter().enumerate() {
            if !done {
                scores[row] += bin_leaf_value(&bnodes, |f| binned.bin(row, f));
            }
        }
        if let (Some(vs), Some(vc), Some(v)) = (valid_scores.as_mut(), valid_cols.as_ref(), valid) {
            let tree = model.trees.last().expect("a tree was just grown");
            for (row, s) in vs.iter_mut().enumerate() {
                *s += tree.predict(|j| vc[j][row]);
            }
            let loss = log_loss(vs, v.labels());
            model.valid_logloss.push(loss);
            if loss < best_loss - 1e-12 {
                best_loss = loss;
                best_round = it;
            } else if p.early_stopping_rounds > 0 && it - best_round >= p.early_stopping_rounds {
                break;
            }
        }
    }
    if valid.is_some() && p.early_stopping_rounds > 0 {
        model.trees.truncate(best_round + 1);
    }
    Ok(model)
}

#[allow(clippy::too_many_arguments)]
fn grow_tree(
    ctx: &SplitCtx,
    binned: &Binned,
    indices: &mut [u32],
    scratch: &mut Vec<u32>,
    gh: &[[f32; 2]],
    feats: &[usize],
    threads: usize,
    p: &GbtParams,
    model: &mut GbtModel,
) -> (Vec<BinNode>, Vec<(usize, usize, f64)>) {
    let root_hist = build_hist(binned, indices, gh, threads);
    // Every row falls in exactly one bin of feature 0, so its bins sum to the node total.
    let mut sums = HBin {
        n: indices.len() as u64,
        ..HBin::default()
    };
    for e in &root_hist[0][..binned.mappers[0].n_bins()] {
        sums.g += e.g;
        sums.h += e.h;
    }
    let can_split = |s: &HBin, depth: usize| {
        s.n as usize >= 2 * p.min_data_in_leaf.max(1) && p.max_depth.is_none_or(|d| depth < d)
    };
    let best = if can_split(&sums, 0) {
        ctx.best(&root_hist, sums, feats)
    } else {
        None
    };
    let mut leaves = vec![Leaf {
        start: 0,
        end: indices.len(),
        sums,
        depth: 0,
        node: 0,
        hist: Some(root_hist),
        best,
    }];
    let mut nodes: Vec<Node> = vec![Node::Leaf {
        value: 0.0,
        count: sums.n,
    }];
    let mut bnodes: Vec<BinNode> = vec![BinNode::Leaf(0.0)];
    while leaves.len() < p.num_leaves {
        // The leaf whose best split gains most (first such leaf on ties).
        let mut pick: Option<usize> = None;
        for (i, l) in leaves.iter().enumerate() {
            if let Some(b) = &l.best
                && pick
                    .is_none_or(|k| b.gain > leaves[k].best.as_ref().map_or(f64::MIN, |x| x.gain))
            {
                pick = Some(i);
            }
        }
        let Some(li) = pick else { break };
        let mut split = leaves[li].best.take().expect("picked leaf has a split");
        let (start, end, depth, node) = (
            leaves[li].start,
            leaves[li].end,
            leaves[li].depth,
            leaves[li].node,
        );
        // Stable partition of the leaf's rows: left rows first, then right rows (large
        // leaves in fixed chunks, one per thread, concatenated in chunk order).
        let col = &binned.by_col[split.feature * binned.n..(split.feature + 1) * binned.n];
        let bits = split.left_bins;
        let w = if threads > 1 && end - start >= 4 * PARALLEL_MIN_ROWS {
            let rows = &indices[start..end];
            let parts: Vec<(Vec<u32>, Vec<u32>)> = std::thread::scope(|s| {
                let handles: Vec<_> = chunks(rows.len(), threads)
                    .into_iter()
                    .map(|r| {
                        let part = &rows[r];
                        s.spawn(move || {
                            let mut l = Vec::with_capacity(part.len());
                            let mut rr = Vec::with_capacity(part.len());
                            for &x in part {
                                if has_bit(&bits, col[x as usize]) {
                                    l.push(x);
                                } else {
                                    rr.push(x);
                                }
                            }
                            (l, rr)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("partition thread panicked"))
                    .collect()
            });
            let mut w = start;
            for (l, _) in &parts {
                indices[w..w + l.len()].copy_from_slice(l);
                w += l.len();
            }
            let mut k = w;
            for (_, r) in &parts {
                indices[k..k + r.len()].copy_from_slice(r);
                k += r.len();
            }
            w
        } else {
            scratch.clear();
            let mut w = start;
            for k in start..end {
                let r = indices[k];
                if has_bit(&bits, col[r as usize]) {
                    indices[w] = r;
                    w += 1;
                } else {
                    scratch.push(r);
                }
            }
            indices[w..end].copy_from_slice(scratch);
            w
        };
        let mid = w;
        split.left.n = (mid - start) as u64;
        split.right.n = (end - mid) as u64;
        let mapper = &binned.mappers[split.feature];
        let rule = match mapper.kind {
            FeatureKind::Categorical => {
                let mut codes: Vec<i32> = (1..mapper.n_bins())
                    .filter(|b| has_bit(&split.left_bins, *b as u8))
                    .map(|b| mapper.codes[b - 1])
                    .collect();
                codes.sort_unstable();
                Rule::Categorical { left_codes: codes }
            }
            _ => Rule::Numeric {
                threshold: mapper.uppers[split.threshold_bin - 1],
                default_left: split.default_left,
            },
        };
        let (ln, rn) = (nodes.len(), nodes.len() + 1);
        nodes[node] = Node::Split {
            feature: split.feature,
            rule,
            left: ln,
            right: rn,
            gain: split.gain,
            count: split.left.n + split.right.n,
        };
        bnodes[node] = BinNode::Split {
            feature: split.feature,
            bits: split.left_bins,
            left: ln,
            right: rn,
        };
        nodes.push(Node::Leaf {
            value: 0.0,
            count: split.left.n,
        });
        nodes.push(Node::Leaf {
            value: 0.0,
            count: split.right.n,
        });
        bnodes.push(BinNode::Leaf(0.0));
        bnodes.push(BinNode::Leaf(0.0));
        let parent_hist = leaves[li].hist.take().expect("leaf keeps its histogram");
        // After this split the tree has leaves.len() + 1 leaves; if that is the limit,
        // the children will never be split and need no histograms.
        let room = leaves.len() + 1 < p.num_leaves;
        let (lsplit, rsplit) = (
            room && can_split(&split.left, depth + 1),
            room && can_split(&split.right, depth + 1),
        );
        let (lh, rh) = if lsplit || rsplit {
            let left_smaller = split.left.n <= split.right.n;
            let (s_range, _) = if left_smaller {
                (start..mid, mid..end)
            } else {
                (mid..end, start..mid)
            };
            let small = build_hist(binned, &indices[s_range], gh, threads);
            let mut large = parent_hist;
            for ((a, b), m) in large.iter_mut().zip(&small).zip(&binned.mappers) {
                let nb = m.n_bins();
                for (x, y) in a[..nb].iter_mut().zip(&b[..nb]) {
                    *x = *x - *y;
                }
            }
            if left_smaller {
                (Some(small), Some(large))
            } else {
                (Some(large), Some(small))
            }
        } else {
            (None, None)
        };
        let lbest = if lsplit {
            ctx.best(lh.as_ref().expect("built"), split.left, feats)
        } else {
            None
        };
        let rbest = if rsplit {
            ctx.best(rh.as_ref().expect("built"), split.right, feats)
        } else {
            None
        };
        leaves[li] = Leaf {
            start,
            end: mid,
            sums: split.left,
            depth: depth + 1,
            node: ln,
            hist: if lbest.is_some() { lh } else { None },
            best: lbest,
        };
        leaves.push(Leaf {
            start: mid,
            end,
            sums: split.right,
            depth: depth + 1,
            node: rn,
            hist: if rbest.is_some() { rh } else { None },
            best: rbest,
        });
    }
    let mut ranges = Vec::with_capacity(leaves.len());
    for l in &leaves {
        let value = -l.sums.g / (l.sums.h + p.lambda_l2) * p.learning_rate;
        nodes[l.node] = Node::Leaf {
            value,
            count: l.sums.n,
        };
        bnodes[l.node] = BinNode::Leaf(value);
        ranges.push((l.start, l.end, value));
    }
    model.trees.push(Tree { nodes });
    (bnodes, ranges)
}

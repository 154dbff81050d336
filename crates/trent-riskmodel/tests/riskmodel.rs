//! Tests against known truths: synthetic data drawn from a stated logistic model,
//! brute-force statistics on small data, and hand computations.

use trent_riskmodel::eval::{calibration_in_the_large, calibration_slope, delong};
use trent_riskmodel::gbt::{Node, Tree};
use trent_riskmodel::{
    Artefact, Error, FeatureKind, FeatureMatrix, GbtParams, LogisticParams, Model, Scorecard,
    TrainParams, evaluate, evaluate_scores, logit, sigmoid, train,
};
use trent_stats::rng::Rng;

/// Rows of (features, truth log-odds) drawn by `draw`, with outcomes from the truth.
fn synth(
    n: usize,
    seed: u64,
    names: &[(&str, FeatureKind)],
    draw: impl Fn(&mut Rng) -> (Vec<f32>, f64),
) -> FeatureMatrix {
    let mut rng = Rng::stream(seed, 0);
    let mut cols = vec![Vec::with_capacity(n); names.len()];
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let (x, eta) = draw(&mut rng);
        for (c, v) in cols.iter_mut().zip(x) {
            c.push(v);
        }
        labels.push(rng.chance(sigmoid(eta)) as u8);
    }
    let mut m = FeatureMatrix::new((0..n as i64).map(|i| 1000 + i).collect(), labels).unwrap();
    for ((name, kind), col) in names.iter().zip(cols) {
        m.add_feature(name, *kind, col).unwrap();
    }
    m
}

const LINEAR: [f64; 5] = [-1.0, 0.8, -0.5, 0.3, 0.6];

fn linear_data(n: usize, seed: u64) -> FeatureMatrix {
    let names = [
        ("x1", FeatureKind::Numeric),
        ("x2", FeatureKind::Numeric),
        ("x3", FeatureKind::Numeric),
        ("flag", FeatureKind::Binary),
    ];
    synth(n, seed, &names, |r| {
        let x1 = r.normal();
        let x2 = 2.0 * r.normal() + 1.0;
        let x3 = r.uniform(0.0, 4.0);
        let flag = r.chance(0.3) as u8 as f64;
        let eta = LINEAR[0] + LINEAR[1] * x1 + LINEAR[2] * x2 + LINEAR[3] * x3 + LINEAR[4] * flag;
        // x3 is missing completely at random for 10% of rows.
        let x3v = if r.chance(0.1) { f32::NAN } else { x3 as f32 };
        (vec![x1 as f32, x2 as f32, x3v, flag as f32], eta)
    })
}

/// XOR-like interaction on two features plus a categorical effect: no main effects, so
/// a linear model cannot rank.
fn interaction_data(n: usize, seed: u64) -> FeatureMatrix {
    let names = [
        ("a", FeatureKind::Numeric),
        ("b", FeatureKind::Numeric),
        ("code", FeatureKind::Categorical),
        ("noise", FeatureKind::Numeric),
    ];
    synth(n, seed, &names, |r| {
        let a = r.normal();
        let b = r.normal();
        let code = r.below(8) as f64;
        let noise = r.normal();
        let mut eta = -1.0 + 2.0 * (a * b).signum();
        if code == 2.0 || code == 5.0 {
            eta += 1.0;
        }
        let a = if r.chance(0.05) { f32::NAN } else { a as f32 };
        (vec![a, b as f32, code as f32, noise as f32], eta)
    })
}

fn auroc(p: &[f64], y: &[u8]) -> f64 {
    delong(p, y).unwrap().0
}

fn small_gbt() -> GbtParams {
    GbtParams {
        num_iterations: 60,
        num_leaves: 15,
        min_data_in_leaf: 20,
        min_data_per_group: 20,
        ..GbtParams::default()
    }
}

#[test]
fn logistic_regression_recovers_the_true_coefficients() {
    let m = linear_data(40_000, 1);
    let params = LogisticParams {
        l2: 0.0,
        ..LogisticParams::default()
    };
    let Model::Logistic(fit) = train(&m, None, &TrainParams::Logistic(params)).unwrap() else {
        panic!("not logistic")
    };
    assert!(fit.converged);
    let (b0, coefs) = fit.original_scale();
    let get = |label: &str| coefs.iter().find(|c| c.0 == label).unwrap().1;
    // The missing-indicator term absorbs the mean imputation: at x3 = its mean the
    // intercept is exact, so compare the intercept with x3's term included.
    assert!((get("x1") - LINEAR[1]).abs() < 0.06, "x1 {}", get("x1"));
    assert!((get("x2") - LINEAR[2]).abs() < 0.03, "x2 {}", get("x2"));
    assert!((get("x3") - LINEAR[3]).abs() < 0.04, "x3 {}", get("x3"));
    assert!(
        (get("flag") - LINEAR[4]).abs() < 0.08,
        "flag {}",
        get("flag")
    );
    assert!((b0 - LINEAR[0]).abs() < 0.12, "intercept {b0}");
    assert!(coefs.iter().any(|c| c.0 == "x3 (missing)"));
    // Explanations add up to the log-odds.
    let model = Model::Logistic(fit);
    let lo = model.predict_log_odds(&m).unwrap();
    for row in [0, 7, 99] {
        let e = model.contributions(&m, row).unwrap();
        assert!((e.log_odds() - lo[row]).abs() < 1e-9);
    }
}

#[test]
fn a_penalty_shrinks_coefficients() {
    let m = linear_data(5_000, 2);
    let fit = |l2| match train(
        &m,
        None,
        &TrainParams::Logistic(LogisticParams {
            l2,
            ..Default::default()
        }),
    )
    .unwrap()
    {
        Model::Logistic(l) => l.terms.iter().map(|t| t.coef.abs()).sum::<f64>(),
        _ => unreachable!(),
    };
    assert!(fit(1.0) < 0.7 * fit(0.0));
}

#[test]
fn gbt_beats_logistic_on_an_interaction() {
    let tr = interaction_data(12_000, 3);
    let te = interaction_data(6_000, 4);
    let gbt = train(&tr, None, &TrainParams::Gbt(small_gbt())).unwrap();
    let lr = train(&tr, None, &TrainParams::Logistic(LogisticParams::default())).unwrap();
    let ag = auroc(&gbt.predict(&te).unwrap(), te.labels());
    let al = auroc(&lr.predict(&te).unwrap(), te.labels());
    assert!(ag > 0.80, "gbt {ag}");
    assert!(al < 0.62, "logistic {al}");
    // The categorical codes 2 and 5 carry the extra risk: some split sends exactly them
    // (or exactly the others) one way.
    let Model::Gbt(g) = &gbt else { unreachable!() };
    let found = g.trees.iter().flat_map(|t| &t.nodes).any(|n| match n {
        Node::Split {
            rule: trent_riskmodel::gbt::Rule::Categorical { left_codes },
            ..
        } => left_codes == &[2, 5] || left_codes == &[0, 1, 3, 4, 6, 7],
        _ => false,
    });
    assert!(found, "no split isolating codes 2 and 5");
    // batch scoring (flat trees walked block by block) gives exactly each tree's own
    // decisions, missing values and categorical splits included, and not just for
    // block-sized row counts
    let raw = gbt.predict_log_odds(&te).unwrap();
    for row in (0..te.n_rows()).step_by(7).chain([te.n_rows() - 1]) {
        let x = |j: usize| te.column(j)[row];
        let by_tree = g.trees.iter().fold(g.base_score, |s, t| s + t.predict(x));
        assert_eq!(raw[row].to_bits(), by_tree.to_bits(), "row {row}");
    }
    // and on rows the model never saw: codes no rule lists, missing codes, huge
    // codes, values beyond every threshold, exact thresholds, negative zero
    let odd = synth(3_001, 9, &names_of(&te), |r| {
        let code = match r.below(6) {
            0 => f32::NAN,
            1 => -1.0,
            2 => 11.0,
            3 => 16_000_000.0,
            _ => r.below(8) as f32,
        };
        let a = match r.below(5) {
            0 => f32::NAN,
            1 => 1e30,
            2 => -0.0,
            _ => r.normal() as f32,
        };
        (
            vec![a, r.normal() as f32, code, 7.0 * r.normal() as f32],
            0.0,
        )
    });
    let thresholds: Vec<f32> = g
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(|n| match n {
            Node::Split {
                feature: 1,
                rule: trent_riskmodel::gbt::Rule::Numeric { threshold, .. },
                ..
            } => Some(*threshold),
            _ => None,
        })
        .collect();
    assert!(!thresholds.is_empty());
    let exact = synth(thresholds.len(), 10, &names_of(&te), |r| {
        let b = thresholds[r.below(thresholds.len() as u64) as usize];
        (vec![r.normal() as f32, b, r.below(8) as f32, 0.0], 0.0)
    });
    for m in [&odd, &exact] {
        let raw = gbt.predict_log_odds(m).unwrap();
        for (row, r) in raw.iter().enumerate() {
            let x = |j: usize| m.column(j)[row];
            let by_tree = g.trees.iter().fold(g.base_score, |s, t| s + t.predict(x));
            assert_eq!(r.to_bits(), by_tree.to_bits(), "row {row}");
        }
    }
}

fn names_of(m: &FeatureMatrix) -> Vec<(&str, FeatureKind)> {
    m.names()
        .iter()
        .zip(m.kinds())
        .map(|(n, k)| (n.as_str(), *k))
        .collect()
}

/// Each scorer at and beyond its limits gives each tree's own decisions: a tree of 64
/// leaves (63 thresholds) is scored by bitvectors, one of 65 by the compiled walk; a
/// model at the compiled form's limit (254 thresholds on a feature) by the compiled walk,
/// one beyond it (255, 300) by the flat walk.
#[test]
fn scoring_is_exact_either_side_of_the_compiled_limit() {
    use trent_riskmodel::gbt::{GbtModel, Rule};
    for cuts in [1usize, 63, 64, 254, 255, 300] {
        // a chain: split k sends x <= k left to a leaf, the rest on to split k + 1
        let mut nodes = vec![];
        for k in 0..cuts {
            let at = nodes.len();
            nodes.push(Node::Split {
                feature: 0,
                rule: Rule::Numeric {
                    threshold: k as f32 + 0.5,
                    default_left: k % 2 == 0,
                },
                left: at + 1,
                right: at + 2,
                gain: 1.0,
                count: 10,
            });
            nodes.push(Node::Leaf {
                value: k as f64 / 1000.0,
                count: 5,
            });
        }
        nodes.push(Node::Leaf {
            value: -1.0,
            count: 5,
        });
        let g = GbtModel {
            features: vec!["x".into(), "y".into()],
            kinds: vec![FeatureKind::Numeric, FeatureKind::Numeric],
            base_score: -2.0,
            trees: vec![Tree { nodes }],
            params: GbtParams::default(),
            valid_logloss: vec![],
        };
        g.validate().unwrap();
        let m = synth(
            2_000,
            12,
            &[("x", FeatureKind::Numeric), ("y", FeatureKind::Numeric)],
            |r| {
                let x = if r.chance(0.05) {
                    f32::NAN
                } else {
                    r.uniform(-5.0, cuts as f64 + 5.0) as f32
                };
                (vec![x.floor(), x], 0.0)
            },
        );
        let raw = Model::Gbt(g.clone()).predict_log_odds(&m).unwrap();
        for (row, r) in raw.iter().enumerate() {
            let x = |j: usize| m.column(j)[row];
            let want = g.base_score + g.trees[0].predict(x);
            assert_eq!(r.to_bits(), want.to_bits(), "{cuts} cuts, row {row}");
        }
    }
}

/// Random forests over many features of few thresholds — the kind the bitvector scorer
/// packs several to a byte — give each tree's own decisions: features whose missing
/// values every split sends left, every split sends right, or some each way; categorical
/// features; trees of up to 32 leaves (32-bit masks) and of up to 64 (64-bit); rows
/// with missing values, values at and between the thresholds, and unlisted codes.
#[test]
fn packed_bitvector_scoring_is_exact_on_random_forests() {
    use trent_riskmodel::gbt::{GbtModel, Rule};
    // (kind, thresholds or codes, missing: Some(sent left by every split) or None: either)
    let spec: Vec<(FeatureKind, Vec<f32>, Option<bool>)> = vec![
        (FeatureKind::Binary, vec![0.5], Some(false)),
        (FeatureKind::Binary, vec![0.5], Some(true)),
        (FeatureKind::Binary, vec![0.5], None),
        (FeatureKind::Numeric, vec![1.0, 3.0], Some(false)),
        (FeatureKind::Numeric, vec![1.0, 3.0, 4.5], None),
        (
            FeatureKind::Numeric,
            vec![0.0, 2.0, 5.0, 9.0, 12.0],
            Some(true),
        ),
        (
            FeatureKind::Numeric,
            (0..40).map(|k| k as f32 + 0.5).collect(),
            None,
        ),
        (
            FeatureKind::Categorical,
            vec![0.0, 1.0, 2.0, 3.0, 4.0],
            None,
        ),
        (FeatureKind::Categorical, vec![1.0, 7.0], None),
        (FeatureKind::Binary, vec![0.5], Some(false)),
        (FeatureKind::Binary, vec![0.5], Some(false)),
        (FeatureKind::Numeric, vec![2.0, 6.0, 8.0], Some(false)),
    ];
    let names: Vec<String> = (0..spec.len()).map(|j| format!("f{j}")).collect();
    for (seed, max_leaves) in [(1u64, 32usize), (2, 64), (3, 20)] {
        let mut r = Rng::stream(seed, 7);
        let trees: Vec<Tree> = (0..40)
            .map(|_| {
                // split a random leaf until the tree has its leaves (children after
                // their parent, as a tree file requires)
                let target = 2 + r.below(max_leaves as u64 - 1) as usize;
                let mut nodes = vec![Node::Leaf {
                    value: 0.0,
                    count: 1,
                }];
                let mut leaves = vec![0usize];
                while leaves.len() < target {
                    let at = leaves.swap_remove(r.below(leaves.len() as u64) as usize);
                    // features 6 and beyond less often, so the small ones share trees
                    let among = if r.chance(0.7) { 6 } else { spec.len() as u64 };
                    let f = r.below(among) as usize;
                    let (kind, vals, missing) = &spec[f];
                    let rule = if *kind == FeatureKind::Categorical {
                        let mut left: Vec<i32> = vals
                            .iter()
                            .filter(|_| r.chance(0.5))
                            .map(|&v| v as i32)
                            .collect();
                        if left.is_empty() {
                            left.push(vals[0] as i32);
                        }
                        Rule::Categorical { left_codes: left }
                    } else {
                        Rule::Numeric {
                            threshold: vals[r.below(vals.len() as u64) as usize],
                            default_left: missing.unwrap_or_else(|| r.chance(0.5)),
                        }
                    };
                    let n = nodes.len();
                    nodes[at] = Node::Split {
                        feature: f,
                        rule,
                        left: n,
                        right: n + 1,
                        gain: 1.0,
                        count: 2,
                    };
                    for _ in 0..2 {
                        nodes.push(Node::Leaf {
                            value: r.normal() / 10.0,
                            count: 1,
                        });
                    }
                    leaves.extend([n, n + 1]);
                }
                Tree { nodes }
            })
            .collect();
        let g = GbtModel {
            features: names.clone(),
            kinds: spec.iter().map(|s| s.0).collect(),
            base_score: -1.5,
            trees,
            params: GbtParams::default(),
            valid_logloss: vec![],
        };
        g.validate().unwrap();
        let cols: Vec<(&str, FeatureKind)> = names
            .iter()
            .zip(&spec)
            .map(|(n, s)| (n.as_str(), s.0))
            .collect();
        let m = synth(5_000, seed, &cols, |r| {
            let x = spec
                .iter()
                .map(|(kind, vals, _)| {
                    if r.chance(0.08) {
                        return f32::NAN;
                    }
                    match kind {
                        FeatureKind::Categorical => r.below(9) as f32,
                        FeatureKind::Binary => r.below(2) as f32,
                        _ => {
                            let v = vals[r.below(vals.len() as u64) as usize];
                            v + [-1.0, -0.25, 0.0, 0.25, 1.0][r.below(5) as usize]
                        }
                    }
                })
                .collect();
            (x, 0.0)
        });
        let raw = Model::Gbt(g.clone()).predict_log_odds(&m).unwrap();
        for (row, got) in raw.iter().enumerate() {
            let x = |j: usize| m.column(j)[row];
            let want = g.trees.iter().fold(g.base_score, |s, t| s + t.predict(x));
            assert_eq!(got.to_bits(), want.to_bits(), "seed {seed}, row {row}");
        }
    }
}

#[test]
fn auroc_equals_the_mann_whitney_statistic() {
    let mut r = Rng::stream(5, 0);
    for _ in 0..20 {
        let n = 5 + r.below(60) as usize;
        // Rounded scores, so ties are common.
        let p: Vec<f64> = (0..n).map(|_| (r.f64() * 8.0).round() / 8.0).collect();
        let mut y: Vec<u8> = p.iter().map(|p| r.chance(0.2 + 0.6 * p) as u8).collect();
        y[0] = 1;
        y[1] = 0;
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in 0..n {
            for j in 0..n {
                if y[i] == 1 && y[j] == 0 {
                    pairs += 1.0;
                    wins += if p[i] > p[j] {
                        1.0
                    } else if p[i] == p[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((auroc(&p, &y) - wins / pairs).abs() < 1e-12);
    }
}

#[test]
fn delong_variance_matches_a_hand_computation() {
    // Positives 0.9, 0.8, 0.4; negatives 0.7, 0.3, 0.2, 0.5.
    // V10 (share of negatives below each positive) = 1, 1, 1/2 → AUC 5/6, S10 = 1/12.
    // V01 (share of positives above each negative) = 2/3, 1, 1, 2/3 → S01 = 1/27.
    // Var = S10/3 + S01/4 = 1/36 + 1/108 = 1/27.
    let p = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.5];
    let y = [1, 1, 1, 0, 0, 0, 0];
    let (auc, var) = delong(&p, &y).unwrap();
    assert!((auc - 5.0 / 6.0).abs() < 1e-12);
    assert!((var - 1.0 / 27.0).abs() < 1e-12, "{var}");
    // With a tie between a positive and a negative (0.4 vs 0.4): V10 of 0.4 is 1/2.
    let p = [0.9, 0.4, 0.4, 0.1];
    let y = [1, 1, 0, 0];
    let (auc, var) = delong(&p, &y).unwrap();
    // V10 = 1, 3/4; V01 = 3/4 (0.4 neg: 0.9 above, 0.4 tie), 1 → AUC 7/8.
    // S10 = (1/8)²·2 / 1 = 1/32, S01 = 1/32; Var = 1/64 + 1/64 = 1/32.
    assert!((auc - 7.0 / 8.0).abs() < 1e-12);
    assert!((var - 1.0 / 32.0).abs() < 1e-12, "{var}");
}

#[test]
fn calibration_slope_is_one_for_a_calibrated_truth_and_not_otherwise() {
    let mut r = Rng::stream(6, 0);
    let n = 60_000;
    let eta: Vec<f64> = (0..n).map(|_| -3.0 + 1.2 * r.normal()).collect();
    let y: Vec<u8> = eta.iter().map(|e| r.chance(sigmoid(*e)) as u8).collect();
    let s = calibration_slope(&eta, &y).unwrap();
    assert!(
        (s.value - 1.0).abs() < 0.05 && s.lower < 1.0 && s.upper > 1.0,
        "{s:?}"
    );
    let c = calibration_in_the_large(&eta, &y).unwrap();
    assert!(
        c.value.abs() < 0.05 && c.lower < 0.0 && c.upper > 0.0,
        "{c:?}"
    );
    // Over-confident predictions (log-odds doubled): slope ≈ 1/2.
    let over: Vec<f64> = eta.iter().map(|e| 2.0 * (e + 3.0) - 3.0).collect();
    let s = calibration_slope(&over, &y).unwrap();
    assert!((s.value - 0.5).abs() < 0.03, "{s:?}");
    // Risk under-predicted by 1 on the log-odds scale: intercept ≈ +1.
    let low: Vec<f64> = eta.iter().map(|e| e - 1.0).collect();
    let c = calibration_in_the_large(&low, &y).unwrap();
    assert!((c.value - 1.0).abs() < 0.05, "{c:?}");
}

#[test]
fn evaluation_counts_top_k_deciles_and_flags_small_groups() {
    let n = 1000;
    let p: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64 * 0.2).collect();
    // Events exactly in the 10 highest and every 50th row.
    let y: Vec<u8> = (0..n).map(|i| (i >= n - 10 || i % 50 == 0) as u8).collect();
    let mut m = FeatureMatrix::new((0..n as i64).collect(), y.clone()).unwrap();
    let g: Vec<&str> = (0..n)
        .map(|i| if i < 100 { "small" } else { "large" })
        .collect();
    m.add_group("grp", &g).unwrap();
    let ev = evaluate_scores(&p, &y, m.groups()).unwrap();
    assert_eq!(ev.overall.events, 30);
    let top = ev.overall.top[0]; // top 0.5% = 5 rows, all events
    assert_eq!((top.flagged, top.flagged_events), (5, 5));
    assert!(
        (top.ppv.unwrap() - 1.0).abs() < 1e-12
            && (top.sensitivity.unwrap() - 5.0 / 30.0).abs() < 1e-12
    );
    let top5 = ev.overall.top[2]; // 50 rows: 10 + rows 950 (i % 50 == 0)
    assert_eq!((top5.flagged, top5.flagged_events), (50, 11));
    assert_eq!(ev.deciles.len(), 10);
    assert_eq!(ev.deciles.iter().map(|d| d.n).sum::<usize>(), n);
    assert_eq!(ev.deciles[9].events, 12); // rows 900..999: 10 top + 900, 950
    let small = &ev.subgroups[0]
        .groups
        .iter()
        .find(|g| g.0 == "small")
        .unwrap()
        .1;
    assert_eq!(small.events, 2);
    assert!(!small.reliable && small.auroc.is_none() && small.note.is_some());
    let large = &ev.subgroups[0]
        .groups
        .iter()
        .find(|g| g.0 == "large")
        .unwrap()
        .1;
    assert!(large.reliable && large.auroc.is_some());
    // JSON and text forms exist and the JSON round-trips.
    let js = serde_json::to_string(&ev).unwrap();
    let back: trent_riskmodel::Evaluation = serde_json::from_str(&js).unwrap();
    assert_eq!(
        (back.overall.n, back.deciles.len()),
        (ev.overall.n, ev.deciles.len())
    );
    assert!((back.overall.auroc.unwrap().value - ev.overall.auroc.unwrap().value).abs() < 1e-15);
    assert!(ev.to_string().contains("NOT RELIABLE"));
}

const SCORECARD: &str = r#"
name = "Test score"
source = "hand-made for tests"
intercept = -3.0

[[term]]
feature = "admissions"
transform = "log1p"
coef = 0.7
max = 10.0

[[term]]
feature = "age"
coef = 0.02
min = 18.0
missing = 50.0
reference = 50.0

[[term]]
feature = "eth"
levels = { "2" = 0.4, "3" = -0.2 }
"#;

fn scorecard_matrix() -> FeatureMatrix {
    let mut m = FeatureMatrix::new(vec![1, 2, 3], vec![0, 1, 0]).unwrap();
    m.add_feature("age", FeatureKind::Numeric, vec![10.0, 80.0, f32::NAN])
        .unwrap();
    m.add_feature("admissions", FeatureKind::Numeric, vec![0.0, 3.0, 25.0])
        .unwrap();
    m.add_feature("eth", FeatureKind::Categorical, vec![2.0, 3.0, 7.0])
        .unwrap();
    m.add_feature("unused", FeatureKind::Binary, vec![1.0, 0.0, 1.0])
        .unwrap();
    m
}

#[test]
fn scorecard_reproduces_a_hand_computation() {
    let sc = Scorecard::from_toml_str(SCORECARD, "test.toml").unwrap();
    let m = scorecard_matrix();
    let model = Model::Scorecard(sc);
    let lo = model.predict_log_odds(&m).unwrap();
    // Row 1: age 10 → capped 18; admissions 0; eth 2.
    let r1 = -3.0 + 0.7 * 0.0f64.ln_1p() + 0.02 * 18.0 + 0.4;
    // Row 2: age 80; admissions 3; eth 3.
    let r2 = -3.0 + 0.7 * 3.0f64.ln_1p() + 0.02 * 80.0 - 0.2;
    // Row 3: age missing → 50; admissions 25 → capped 10; eth 7 → 0.
    let r3 = -3.0 + 0.7 * 10.0f64.ln_1p() + 0.02 * 50.0;
    for (a, b) in lo.iter().zip([r1, r2, r3]) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let p = model.predict(&m).unwrap();
    assert!((p[1] - sigmoid(r2)).abs() < 1e-15);
    // Explanations: coef × (value − reference), adding up to the log-odds.
    let e = model.contributions(&m, 1).unwrap();
    assert!((e.log_odds() - r2).abs() < 1e-12);
    let age = e.contributions.iter().find(|c| c.0 == "age").unwrap().1;
    assert!((age - 0.02 * 30.0).abs() < 1e-12);
    let top = model.explain(&m, 1, 1).unwrap();
    assert_eq!(top[0].0, "admissions");
}

#[test]
fn scorecard_errors_name_what_is_wrong() {
    let m = scorecard_matrix();
    // A feature the matrix lacks.
    let text = SCORECARD.replace("\"eth\"", "\"ethnicity\"");
    let sc = Scorecard::from_toml_str(&text, "other.toml").unwrap();
    let err = Model::Scorecard(sc).predict(&m).unwrap_err();
    assert!(matches!(err, Error::FeatureMismatch(_)));
    assert!(
        err.to_string()
            .contains("model file from another feature set")
            && err.to_string().contains("ethnicity")
    );
    // Missing value and no rule.
    let text = SCORECARD.replace("missing = 50.0\n", "");
    let sc = Scorecard::from_toml_str(&text, "t.toml").unwrap();
    let err = Model::Scorecard(sc).predict(&m).unwrap_err().to_string();
    assert!(err.contains("'age' is missing for id 3"), "{err}");
    // Typo in a key: the line is named.
    let err = Scorecard::from_toml_str(&SCORECARD.replace("coef = 0.02", "coeff = 0.02"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.toml, line 14") && err.contains("coeff"),
        "{err}"
    );
    // Both coef and levels.
    let err = Scorecard::from_toml_str(
        &SCORECARD.replace("levels =", "coef = 1.0\nlevels ="),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("both coef and levels"), "{err}");
}

/// Conditional expectation of a tree given the features in `known` (path-dependent:
/// unknown features follow both branches weighted by training counts).
fn cond_exp(t: &Tree, node: usize, x: &[f32], known: &[bool]) -> f64 {
    match &t.nodes[node] {
        Node::Leaf { value, .. } => *value,
        Node::Split {
            feature,
            left,
            right,
            count,
            ..
        } => {
            if known[*feature] {
                let child = branch(t, node, x[*feature]);
                cond_exp(t, child, x, known)
            } else {
                let cnt = |n: usize| match &t.nodes[n] {
                    Node::Leaf { count, .. } | Node::Split { count, .. } => *count as f64,
                };
                (cnt(*left) * cond_exp(t, *left, x, known)
                    + cnt(*right) * cond_exp(t, *right, x, known))
                    / *count as f64
            }
        }
    }
}

fn branch(t: &Tree, node: usize, v: f32) -> usize {
    let Node::Split {
        rule, left, right, ..
    } = &t.nodes[node]
    else {
        unreachable!()
    };
    let goes_left = match rule {
        trent_riskmodel::gbt::Rule::Numeric {
            threshold,
            default_left,
        } => {
            if v.is_nan() {
                *default_left
            } else {
                v <= *threshold
            }
        }
        trent_riskmodel::gbt::Rule::Categorical { left_codes } => {
            !v.is_nan() && left_codes.contains(&(v as i32))
        }
    };
    if goes_left { *left } else { *right }
}

#[test]
fn treeshap_matches_brute_force_shapley_values_and_adds_up() {
    let tr = interaction_data(4_000, 7);
    let shallow = GbtParams {
        num_iterations: 8,
        num_leaves: 8,
        max_depth: Some(4),
        min_data_in_leaf: 30,
        min_data_per_group: 20,
        ..GbtParams::default()
    };
    // leaf-wise and unlimited: deep paths that meet a feature again (TreeSHAP unwinds it)
    let deep = GbtParams {
        num_iterations: 6,
        num_leaves: 31,
        max_depth: None,
        min_data_in_leaf: 5,
        min_data_per_group: 5,
        ..GbtParams::default()
    };
    for params in [shallow, deep] {
        treeshap_is_shapley(&tr, params);
    }
}

fn treeshap_is_shapley(tr: &FeatureMatrix, params: GbtParams) {
    let model = train(tr, None, &TrainParams::Gbt(params)).unwrap();
    let Model::Gbt(g) = &model else {
        unreachable!()
    };
    let lo = model.predict_log_odds(tr).unwrap();
    // the explanations of many rows at once are those of each row alone
    let rows: Vec<usize> = (0..tr.n_rows()).step_by(13).collect();
    let many = model.explain_rows(tr, &rows, 3).unwrap();
    for (&r, got) in rows.iter().zip(&many) {
        assert_eq!(got, &model.explain(tr, r, 3).unwrap(), "row {r}");
    }
    assert!(model.explain_rows(tr, &[tr.n_rows()], 3).is_err());
    let nf = tr.n_features();
    let fact = |k: usize| (1..=k).product::<usize>() as f64;
    for row in [0usize, 1, 2, 17, 123, 999] {
        let e = model.contributions(tr, row).unwrap();
        assert!(
            (e.log_odds() - lo[row]).abs() < 1e-9,
            "row {row}: sum does not add up"
        );
        let x: Vec<f32> = (0..nf).map(|j| tr.column(j)[row]).collect();
        let v = |mask: usize| -> f64 {
            let known: Vec<bool> = (0..nf).map(|j| mask >> j & 1 == 1).collect();
            g.base_score
                + g.trees
                    .iter()
                    .map(|t| cond_exp(t, 0, &x, &known))
                    .sum::<f64>()
        };
        assert!((v(0) - e.base_value).abs() < 1e-9);
        for i in 0..nf {
            let mut phi = 0.0;
            for mask in 0..(1usize << nf) {
                if mask >> i & 1 == 1 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let w = fact(s) * fact(nf - s - 1) / fact(nf);
                phi += w * (v(mask | 1 << i) - v(mask));
            }
            assert!(
                (phi - e.contributions[i].1).abs() < 1e-9,
                "row {row} feature {i}: {phi} vs {}",
                e.contributions[i].1
            );
        }
    }
}

#[test]
fn artefacts_round_trip_to_identical_predictions() {
    let tr = interaction_data(3_000, 8);
    let dir = std::env::temp_dir().join(format!("trent-riskmodel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let models = vec![
        train(&tr, None, &TrainParams::Gbt(small_gbt())).unwrap(),
        train(&tr, None, &TrainParams::Logistic(LogisticParams::default())).unwrap(),
    ];
    for (i, model) in models.into_iter().enumerate() {
        let ev = evaluate(&model, &tr).unwrap();
        let meta = serde_json::json!({"index_date": "2025-04-01", "window_months": 12});
        let a = Artefact::new(model.clone(), &tr, meta.clone(), Some(ev)).unwrap();
        let path = dir.join(format!("m{i}.json"));
        a.save(&path).unwrap();
        let b = Artefact::load_for(&path, &tr).unwrap();
        assert_eq!(b.metadata, meta);
        assert_eq!(b.format_version, trent_riskmodel::FORMAT_VERSION);
        assert_eq!(a.model, b.model);
        assert_eq!(a.features, b.features);
        assert_eq!(a.hyperparameters, b.hyperparameters);
        let p1 = model.predict(&tr).unwrap();
        let p2 = b.model.predict(&tr).unwrap();
        assert!(p1.iter().zip(&p2).all(|(x, y)| x.to_bits() == y.to_bits()));
        // A newer format is refused, naming the field.
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "\"format_version\": 1",
            "\"format_version\": 99",
            1,
        );
        let err = Artefact::from_json(&text, "new.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("new.json") && err.contains("newer"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_matrix_from_another_feature_set_is_refused() {
    let tr = interaction_data(2_000, 9);
    let model = train(&tr, None, &TrainParams::Gbt(small_gbt())).unwrap();
    let a = Artefact::new(model.clone(), &tr, serde_json::Value::Null, None).unwrap();
    let mut other = FeatureMatrix::new(tr.ids().to_vec(), tr.labels().to_vec()).unwrap();
    for j in 0..tr.n_features() {
        let name = if tr.names()[j] == "b" {
            "b2"
        } else {
            &tr.names()[j]
        };
        other
            .add_feature(name, tr.kinds()[j], tr.column(j).to_vec())
            .unwrap();
    }
    let err = a.check_features(&other).unwrap_err();
    assert!(matches!(err, Error::FeatureMismatch(_)) && err.to_string().contains("'b'"));
    assert!(matches!(
        model.predict(&other).unwrap_err(),
        Error::FeatureMismatch(_)
    ));
    // Same names, another kind.
    let mut kinds = FeatureMatrix::new(tr.ids().to_vec(), tr.labels().to_vec()).unwrap();
    for j in 0..tr.n_features() {
        let k = if tr.names()[j] == "code" {
            FeatureKind::Numeric
        } else {
            tr.kinds()[j]
        };
        kinds
            .add_feature(&tr.names()[j], k, tr.column(j).to_vec())
            .unwrap();
    }
    assert!(matches!(
        a.check_features(&kinds).unwrap_err(),
        Error::FeatureMismatch(_)
    ));
    // Columns in another order are fine and give the same predictions.
    let mut reordered = FeatureMatrix::new(tr.ids().to_vec(), tr.labels().to_vec()).unwrap();
    for j in (0..tr.n_features()).rev() {
        reordered
            .add_feature(&tr.names()[j], tr.kinds()[j], tr.column(j).to_vec())
            .unwrap();
    }
    assert_eq!(
        model.predict(&reordered).unwrap(),
        model.predict(&tr).unwrap()
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let tr = interaction_data(5_000, 10);
    let params = |seed| {
        TrainParams::Gbt(GbtParams {
            bagging_fraction: 0.7,
            feature_fraction: 0.75,
            bin_construct_sample_cnt: 1_000,
            seed,
            ..small_gbt()
        })
    };
    let a = train(&tr, None, &params(1)).unwrap();
    let b = train(&tr, None, &params(1)).unwrap();
    let c = train(&tr, None, &params(2)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn early_stopping_keeps_the_best_round() {
    let tr = interaction_data(3_000, 11);
    let va = interaction_data(3_000, 12);
    let params = GbtParams {
        num_iterations: 300,
        learning_rate: 0.3,
        num_leaves: 63,
        min_data_in_leaf: 5,
        early_stopping_rounds: 10,
        min_data_per_group: 5,
        ..GbtParams::default()
    };
    let Model::Gbt(g) = train(&tr, Some(&va), &TrainParams::Gbt(params)).unwrap() else {
        unreachable!()
    };
    assert!(g.trees.len() < 300, "did not stop");
    let best = g
        .valid_logloss
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    assert_eq!(g.valid_logloss[g.trees.len() - 1], best);
    assert!(g.valid_logloss.len() <= g.trees.len() + 10);
}

#[test]
fn gbt_is_calibrated_and_handles_missing_values() {
    // Missingness itself carries risk: x missing → high risk.
    let names = [("x", FeatureKind::Numeric), ("z", FeatureKind::Numeric)];
    let draw = |r: &mut Rng| {
        let x = r.normal();
        let z = r.normal();
        if r.chance(0.2) {
            (vec![f32::NAN, z as f32], 1.0 + 0.5 * z)
        } else {
            (vec![x as f32, z as f32], -2.0 + x + 0.5 * z)
        }
    };
    let tr = synth(20_000, 13, &names, draw);
    let te = synth(20_000, 14, &names, draw);
    let model = train(&tr, None, &TrainParams::Gbt(small_gbt())).unwrap();
    let ev = evaluate(&model, &te).unwrap();
    let s = ev.overall.calibration_slope.unwrap();
    assert!((s.value - 1.0).abs() < 0.12, "{s:?}");
    let p = model.predict(&te).unwrap();
    let miss: Vec<f64> = (0..te.n_rows())
        .filter(|r| te.column(0)[*r].is_nan())
        .map(|r| p[r])
        .collect();
    let mean_miss = miss.iter().sum::<f64>() / miss.len() as f64;
    assert!(mean_miss > 0.55, "missing rows get {mean_miss}");
    assert!((logit(0.5)).abs() < 1e-12);
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("trent-riskmodel-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ok = write(
        "ok.csv",
        "id,label,age,flag,eth:cat,sex:group\n1,0,50,1,3,F\n2,1,,0,NA,M\n3,0,70.5,0,2,F\n",
    );
    let m = FeatureMatrix::from_csv(&ok, "id", "label").unwrap();
    assert_eq!(m.names(), ["age", "flag", "eth"]);
    assert_eq!(
        m.kinds(),
        [
            FeatureKind::Numeric,
            FeatureKind::Binary,
            FeatureKind::Categorical
        ]
    );
    assert!(m.column(0)[1].is_nan() && m.column(2)[1].is_nan());
    assert_eq!(m.groups()[0].levels, ["F", "M"]);
    let cases = [
        (
            "label.csv",
            "id,label,age\n1,0,50\n2,2,60\n",
            "line 3, column 'label'",
        ),
        (
            "text.csv",
            "id,label,age\n1,0,50\n2,1,old\n",
            "line 3, column 'age'",
        ),
        (
            "bin.csv",
            "id,label,flag:bin\n1,0,1\n2,1,3\n",
            "line 3, column 'flag'",
        ),
        (
            "id.csv",
            "id,label,age\n1,0,50\nx,1,60\n",
            "line 3, column 'id'",
        ),
        ("noid.csv", "pid,label,age\n1,0,50\n", "line 1, column 'id'"),
        ("short.csv", "id,label,age\n1,0,50\n2,1\n", "line 3"),
        ("cat.csv", "id,label,c:cat\n1,0,1.5\n", "line 2, column 'c'"),
    ];
    for (name, text, want) in cases {
        let p = write(name, text);
        let err = FeatureMatrix::from_csv(&p, "id", "label")
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let err = FeatureMatrix::from_csv(dir.join("absent.csv"), "id", "label")
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.csv"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let mut m = FeatureMatrix::new(vec![1, 2], vec![0, 1]).unwrap();
    assert!(
        m.add_feature("f", FeatureKind::Binary, vec![0.0, 2.0])
            .is_err()
    );
    assert!(m.add_feature("f", FeatureKind::Numeric, vec![0.0]).is_err());
    assert!(FeatureMatrix::new(vec![1], vec![2]).is_err());
    m.add_feature("f", FeatureKind::Numeric, vec![0.0, 1.0])
        .unwrap();
    assert!(
        m.add_feature("f", FeatureKind::Numeric, vec![0.0, 1.0])
            .is_err()
    );
    // One outcome only.
    let one = FeatureMatrix::new(vec![1, 2], vec![0, 0]).unwrap();
    assert!(train(&one, None, &TrainParams::Gbt(GbtParams::default())).is_err());
    let bad = GbtParams {
        num_leaves: 1,
        ..GbtParams::default()
    };
    assert!(train(&m, None, &TrainParams::Gbt(bad)).is_err());
    let model = train(&m, None, &TrainParams::Logistic(LogisticParams::default())).unwrap();
    assert!(model.contributions(&m, 5).is_err());
    assert!(evaluate_scores(&[0.5, 1.5], &[0, 1], &[]).is_err());
}

/// A matrix refuses values its kinds cannot hold, naming the feature, row and id, and
/// takes NaN (missing) in every kind.
#[test]
fn a_matrix_refuses_values_its_kinds_cannot_hold() {
    let add = |kind: FeatureKind, v: f32| {
        let mut m = FeatureMatrix::new(vec![10, 11, 12], vec![0, 1, 0]).unwrap();
        m.add_feature("x", kind, vec![f32::NAN, v, 0.0])
            .map_err(|e| e.to_string())
    };
    for (kind, good) in [
        (FeatureKind::Numeric, -3.25),
        (FeatureKind::Binary, 1.0),
        (FeatureKind::Categorical, 7.0),
    ] {
        assert!(add(kind, good).is_ok(), "{kind:?} {good}");
        let e = add(kind, f32::INFINITY).unwrap_err();
        assert!(e.contains("'x', row 1 (id 11): infinite value"), "{e}");
    }
    let e = add(FeatureKind::Binary, 0.5).unwrap_err();
    assert!(
        e.contains("row 1 (id 11): binary feature has value 0.5"),
        "{e}"
    );
    let e = add(FeatureKind::Categorical, 2.5).unwrap_err();
    assert!(e.contains("not an integer code"), "{e}");
    let e = add(FeatureKind::Categorical, 3e7).unwrap_err();
    assert!(e.contains("not an integer code"), "{e}");
}

/// A group column numbers its levels in order of first appearance and each row's code
/// names its own value, with few levels and with many (more than the 16 it compares
/// with one by one before it looks them up).
#[test]
fn group_columns_code_each_row_by_its_level() {
    for n_levels in [1usize, 3, 16, 17, 40] {
        let values: Vec<String> = (0..500)
            .map(|i| format!("level-{}", (i * 7 + i / 3) % n_levels))
            .collect();
        let g = trent_riskmodel::matrix::GroupColumn::from_values("g", &values);
        assert_eq!(g.levels.len(), n_levels);
        let mut seen = vec![];
        for v in &values {
            if !seen.contains(v) {
                seen.push(v.clone());
            }
        }
        assert_eq!(
            g.levels, seen,
            "{n_levels} levels in order of first appearance"
        );
        for (v, &c) in values.iter().zip(&g.codes) {
            assert_eq!(&g.levels[c as usize], v, "{n_levels} levels");
        }
    }
    // labels that are constants (one address per text, found by address) mixed with the
    // same texts at addresses of their own, and more than 32 addresses
    const LABELS: [&str; 4] = ["Q1", "Q2", "Q3", "Q10"];
    let owned: Vec<String> = (0..600).map(|i| LABELS[i % 4].to_string()).collect();
    let values: Vec<&str> = (0..1200)
        .map(|i| {
            if i % 3 == 0 {
                owned[i / 2].as_str()
            } else {
                LABELS[(i * 5 + i / 7) % 4]
            }
        })
        .collect();
    let g = trent_riskmodel::matrix::GroupColumn::from_values("g", &values);
    assert_eq!(g.levels.len(), 4);
    for (v, &c) in values.iter().zip(&g.codes) {
        assert_eq!(g.levels[c as usize], *v);
    }
}

/// A group column given already coded is refused when a code names no level, when it
/// has a value too few or too many, or when its name is taken; a good one is kept as it is.
#[test]
fn coded_group_columns_are_checked() {
    use trent_riskmodel::matrix::GroupColumn;
    let mut m = FeatureMatrix::new(vec![1, 2, 3], vec![0, 1, 0]).unwrap();
    m.add_feature("x", FeatureKind::Numeric, vec![0.0, 1.0, 2.0])
        .unwrap();
    let g = |name: &str, codes: Vec<u32>| GroupColumn {
        name: name.into(),
        levels: vec!["a".into(), "b".into()],
        codes,
    };
    let e = m
        .add_group_column(g("s", vec![0, 2, 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("code 2 for 2 levels"), "{e}");
    let e = m
        .add_group_column(g("s", vec![0, 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 values for 3 rows"), "{e}");
    let e = m
        .add_group_column(g("x", vec![0, 1, 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("added twice"), "{e}");
    m.add_group_column(g("s", vec![1, 0, 1])).unwrap();
    assert_eq!(m.groups(), &[g("s", vec![1, 0, 1])]);
}

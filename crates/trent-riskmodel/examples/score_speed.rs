//! How fast a trained boosted-tree artefact scores a population-sized matrix: rows drawn
//! around the model's own thresholds (so every branch is taken), timed five times.
//!
//! ```sh
//! cargo run --release -p trent-riskmodel --example score_speed -- MODEL.json [ROWS]
//! ```
use std::time::Instant;

use trent_riskmodel::gbt::{Node, Rule};
use trent_riskmodel::{Artefact, FeatureKind, FeatureMatrix, Model};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = Artefact::load(&args[0]).unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let n: usize = args.get(1).map_or(1_072_010, |v| v.parse().expect("ROWS"));
    let Model::Gbt(g) = &a.model else {
        panic!("{}: not a boosted-tree model", args[0])
    };
    // each feature's thresholds or left codes
    let mut vals: Vec<Vec<f32>> = vec![vec![]; g.features.len()];
    for node in g.trees.iter().flat_map(|t| &t.nodes) {
        if let Node::Split { feature, rule, .. } = node {
            match rule {
                Rule::Numeric { threshold, .. } => vals[*feature].push(*threshold),
                Rule::Categorical { left_codes } => {
                    vals[*feature].extend(left_codes.iter().map(|&c| c as f32))
                }
            }
        }
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut m = FeatureMatrix::new((0..n as i64).collect(), vec![0; n]).expect("matrix");
    for (j, (name, kind)) in g.features.iter().zip(&g.kinds).enumerate() {
        let v = &vals[j];
        let col: Vec<f32> = (0..n)
            .map(|_| {
                let r = next();
                if *kind == FeatureKind::Binary {
                    return (r >> 9 & 1) as f32;
                }
                if v.is_empty() || r % 20 == 0 {
                    return f32::NAN;
                }
                let x = v[(r >> 8) as usize % v.len()];
                match kind {
                    FeatureKind::Categorical => x,
                    _ => x + if r & 128 == 0 { 0.25 } else { -0.25 },
                }
            })
            .collect();
        m.add_feature(name, *kind, col).expect("feature");
    }
    let mut secs = vec![];
    let mut sum = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let s = a.model.predict_log_odds(&m).expect("scores");
        secs.push(t.elapsed().as_secs_f64());
        sum += s.iter().sum::<f64>();
    }
    secs.sort_by(f64::total_cmp);
    println!(
        "{n} rows, {} trees: median {:.3} s (runs {:?}); checksum {sum}",
        g.trees.len(),
        secs[2],
        secs.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>()
    );
}

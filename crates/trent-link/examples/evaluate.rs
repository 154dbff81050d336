//! Score a clustering against ground truth.
//!
//! `cargo run --release -p trent-link --example evaluate -- TRUTH.csv CLUSTERS.csv [LABEL_COLUMN]`
//! with TRUTH `source,record_id,person_id` and CLUSTERS `source,record_id,<LABEL_COLUMN>`
//! (default `person_key`); prints pairwise precision, recall, F1 and cluster counts.

use std::io::BufReader;
use std::path::Path;

use trent_link::evaluate::{evaluate_maps, read_labels};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: evaluate TRUTH.csv CLUSTERS.csv [LABEL_COLUMN]".into());
    }
    let label = args.get(3).map_or("person_key", String::as_str);
    let tp = Path::new(&args[1]);
    let cp = Path::new(&args[2]);
    let truth = read_labels(BufReader::new(std::fs::File::open(tp)?), tp, "person_id")?;
    let pred = read_labels(BufReader::new(std::fs::File::open(cp)?), cp, label)?;
    let e = evaluate_maps(&pred, &truth)?;
    println!("precision={:.4}", e.precision);
    println!("recall={:.4}", e.recall);
    println!("f1={:.4}", e.f1);
    println!(
        "records={} true_pairs={} predicted_pairs={} true_positive_pairs={}",
        e.records, e.true_pairs, e.predicted_pairs, e.true_positive_pairs
    );
    println!(
        "true_persons={} clusters={} exact_clusters={} split_persons={} merged_clusters={}",
        e.true_persons, e.predicted_clusters, e.exact_clusters, e.split_persons, e.merged_clusters
    );
    Ok(())
}

//! Rough throughput of the batch scorer on synthetic (id, ICD-10 code) rows:
//! `cargo run --release -p trent-indices --example throughput [ROWS]`.

use std::time::Instant;
use trent_indices::batch::score_icd10_rows;
use trent_indices::{Index, IndexConfig};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let pool = [
        "I50.0", "E11.2", "C78.0", "I10X", "J44.9", "F00.1", "N18.3", "K70.3", "Z99.2", "R54",
    ];
    let ids: Vec<String> = (0..n / 8).map(|i| format!("p{i}")).collect();
    let rows: Vec<(&str, &str)> = (0..n)
        .map(|i| {
            (
                ids[i % ids.len()].as_str(),
                pool[(i * 7 + i / 3) % pool.len()],
            )
        })
        .collect();
    for index in [Index::Charlson, Index::Elixhauser, Index::Hfrs] {
        let t = Instant::now();
        let out = score_icd10_rows(index, &IndexConfig::default(), rows.iter().copied());
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:<10} {n} rows, {} ids: {s:.2}s ({:.1}M rows/s)",
            index.name(),
            out.len(),
            n as f64 / s / 1e6
        );
    }
}

//! Write synthetic linkage feeds and their ground truth as CSV.
//!
//! `cargo run --release -p trent-link --example gen_identities -- PEOPLE SEED OUT_DIR`
//! writes `OUT_DIR/records.csv` (the `trent_link::record::CSV_HEADER` columns) and
//! `OUT_DIR/truth.csv` (`source,record_id,person_id`). All data are synthetic.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: gen_identities PEOPLE SEED OUT_DIR".into());
    }
    let people: usize = args[1]
        .parse()
        .map_err(|e| format!("PEOPLE {:?}: {e}", args[1]))?;
    let seed: u64 = args[2]
        .parse()
        .map_err(|e| format!("SEED {:?}: {e}", args[2]))?;
    let dir = PathBuf::from(&args[3]);
    std::fs::create_dir_all(&dir)?;
    let (records, truth) =
        trent_link::synth::feeds(&trent_link::synth::SynthConfig::new(people, seed));
    let f = std::fs::File::create(dir.join("records.csv"))?;
    trent_link::record::write_csv(BufWriter::new(f), &records)?;
    let mut t = BufWriter::new(std::fs::File::create(dir.join("truth.csv"))?);
    writeln!(t, "source,record_id,person_id")?;
    for (r, p) in records.iter().zip(&truth) {
        writeln!(t, "{},{},{}", r.source, r.record_id, p)?;
    }
    t.flush()?;
    eprintln!(
        "{} records from {} people in {}",
        records.len(),
        people,
        dir.display()
    );
    Ok(())
}

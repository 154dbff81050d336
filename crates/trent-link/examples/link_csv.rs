//! Link a CSV of records and write each record's person key.
//!
//! `cargo run --release -p trent-link --example link_csv -- RECORDS.csv CLUSTERS.csv [THREADS]`
//! writes `source,record_id,person_key`, prints the model and counts to stderr and the
//! wall time of the linkage (excluding CSV I/O) as `link_seconds=…` on stdout.

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use trent_link::compare::{FIELDS, LEVEL_NAMES};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: link_csv RECORDS.csv CLUSTERS.csv [THREADS]".into());
    }
    let t0 = Instant::now();
    let path = Path::new(&args[1]);
    let records = trent_link::record::read_csv(BufReader::new(std::fs::File::open(path)?), path)?;
    let read_s = t0.elapsed().as_secs_f64();
    let mut cfg = trent_link::LinkConfig::default();
    if let Some(t) = args.get(3) {
        cfg.threads = t.parse().map_err(|e| format!("THREADS {t:?}: {e}"))?;
    }
    let t1 = Instant::now();
    let res = trent_link::link(&records, &cfg)?;
    let link_s = t1.elapsed().as_secs_f64();
    let mut w = BufWriter::new(std::fs::File::create(&args[2])?);
    writeln!(w, "source,record_id,person_key")?;
    for (r, k) in records.iter().zip(&res.person_keys) {
        writeln!(w, "{},{},{}", r.source, r.record_id, k)?;
    }
    w.flush()?;
    let p = &res.params;
    eprintln!("lambda = {:.3e}", p.lambda);
    for f in 0..6 {
        for (lv, level) in LEVEL_NAMES[f].iter().enumerate().skip(1) {
            eprintln!(
                "  {:<12} {:<22} m={:.4} u={:.6} w={:+.2}",
                FIELDS[f],
                level,
                p.m[f][lv],
                p.u[f][lv],
                (p.m[f][lv] / p.u[f][lv]).log2()
            );
        }
    }
    for r in &p.em_rounds {
        eprintln!(
            "  EM round {:<28} pairs={:>10} lambda={:.4} iterations={} converged={}",
            r.rule, r.pairs, r.lambda, r.iterations, r.converged
        );
    }
    eprintln!("{:#?}", res.stats);
    println!("read_seconds={read_s:.2}");
    println!("link_seconds={link_s:.2}");
    Ok(())
}

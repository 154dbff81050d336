//! `trent link`: link a CSV of identity records into people (docs/linkage.md).

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// `trent link RECORDS.csv --out CLUSTERS.csv [--review REVIEW.csv] [--evaluate TRUTH.csv]`
#[derive(clap::Args)]
pub struct LinkArgs {
    /// Records: source,record_id,nhs_number,given_name,family_name,birth_date,sex,postcode.
    /// Without it, `--evaluate` scores the linkage ingest did in the data directory's vault.
    records: Option<PathBuf>,
    /// Write source,record_id,person_key here.
    #[arg(long, required_unless_present = "evaluate")]
    out: Option<PathBuf>,
    /// Write the clerical-review queue (pairs between the thresholds, NHS-number conflicts).
    #[arg(long)]
    review: Option<PathBuf>,
    /// Ground truth (source,record_id,person_id): print pairwise precision, recall and F1.
    /// Repeatable when scoring the vault (one truth.csv per feeds partition).
    #[arg(long, value_name = "TRUTH.csv", num_args = 1..)]
    evaluate: Vec<PathBuf>,
    /// Link at or above this match probability.
    #[arg(long, default_value_t = 0.95)]
    upper: f64,
    /// Review between this and --upper.
    #[arg(long, default_value_t = 0.5)]
    lower: f64,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn open(p: &PathBuf) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(
        std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?,
    ))
}

/// Run it.
pub fn run(a: LinkArgs, data: &std::path::Path) -> Result<ExitCode> {
    let Some(records_path) = a.records.clone() else {
        return crate::ingest::evaluate(data, &a.evaluate);
    };
    let Some(out) = a.out.clone() else {
        anyhow::bail!("--out is needed when linking a records file");
    };
    let records = trent_link::record::read_csv(open(&records_path)?, &records_path)?;
    let mut cfg = trent_link::LinkConfig {
        upper: a.upper,
        lower: a.lower,
        ..trent_link::LinkConfig::default()
    };
    if a.threads > 0 {
        cfg.threads = a.threads;
    }
    let res = trent_link::link(&records, &cfg)?;
    let create = |p: &PathBuf| -> Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::new(std::fs::File::create(p).with_context(
            || format!("cannot write {}", p.display()),
        )?))
    };
    let mut w = create(&out)?;
    writeln!(w, "source,record_id,person_key")?;
    for (r, k) in records.iter().zip(&res.person_keys) {
        writeln!(w, "{},{},{}", r.source, r.record_id, k)?;
    }
    w.flush()?;
    if let Some(p) = &a.review {
        let mut w = create(p)?;
        writeln!(
            w,
            "source_a,record_a,source_b,record_b,probability,weight,reason"
        )?;
        for s in &res.review {
            let (x, y) = (&records[s.a as usize], &records[s.b as usize]);
            writeln!(
                w,
                "{},{},{},{},{:.4},{:.2},{:?}",
                x.source, x.record_id, y.source, y.record_id, s.probability, s.weight, s.kind
            )?;
        }
        w.flush()?;
    }
    let st = &res.stats;
    println!(
        "{} records → {} people: {} deterministic links, {} probabilistic, {} pairs for review ({} NHS-number conflicts, {} uncertain, {} refused by the cluster guard)",
        st.records,
        st.persons,
        st.deterministic_links,
        st.probabilistic_links,
        res.review.len(),
        st.review_nhs_conflict,
        st.review_uncertain,
        st.review_cluster_guard
    );
    if a.evaluate.len() > 1 {
        anyhow::bail!("--evaluate takes one truth file when linking a records file");
    }
    if let Some(t) = a.evaluate.first() {
        let truth = trent_link::evaluate::read_labels(open(t)?, t, "person_id")?;
        let pred = trent_link::evaluate::read_labels(open(&out)?, &out, "person_key")?;
        let e = trent_link::evaluate::evaluate_maps(&pred, &truth)?;
        println!(
            "precision {:.4}  recall {:.4}  F1 {:.4}  ({} true pairs, {} predicted, {} clusters merging people, {} people split)",
            e.precision,
            e.recall,
            e.f1,
            e.true_pairs,
            e.predicted_pairs,
            e.merged_clusters,
            e.split_persons
        );
    }
    Ok(ExitCode::SUCCESS)
}

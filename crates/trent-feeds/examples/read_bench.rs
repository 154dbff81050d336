//! Reader benchmark: FHIR resources per second on one core.
//!
//!     cargo run --release -p trent-feeds --example read_bench -- DIR
//!     cargo run --release -p trent-feeds --example read_bench -- --synth 5000 DIR
//!
//!     cargo run --release -p trent-feeds --example read_bench -- --synth-feeds 5000 DIR
//!
//! The first form reads every `.ndjson`/`.json` file in DIR (for example the
//! `fhir/` folder of `trent synth --format fhir`) and every `<feed>-….csv` CSV feed. The
//! second first writes DIR/bundles.ndjson with the transaction bundles of N sample people
//! (`trent_feeds::sample`), the third the CSV feeds of N sample people
//! (`trent_feeds::synth_feeds`), then reads DIR.
//! Records are counted and dropped, so the time is the reader's: parse, validate,
//! normalise, hash.

use std::path::{Path, PathBuf};
use std::time::Instant;

use trent_feeds::sink::{Counts, Origin, Sink};
use trent_feeds::{Feed, ReadOptions, Rejection, Staged, read_csv_feed, read_fhir_file};

struct Drop;

impl Sink for Drop {
    fn record(&mut self, r: Staged, _: &Origin<'_>) {
        std::hint::black_box(r);
    }
    fn reject(&mut self, r: Rejection) {
        std::hint::black_box(r);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [d] => PathBuf::from(d),
        [flag, n, d] if flag == "--synth" => {
            write_sample(Path::new(d), n.parse().expect("N"));
            PathBuf::from(d)
        }
        [flag, n, d] if flag == "--synth-feeds" => {
            write_feeds(Path::new(d), n.parse().expect("N"));
            PathBuf::from(d)
        }
        _ => {
            eprintln!("usage: read_bench [--synth N | --synth-feeds N] DIR");
            std::process::exit(2);
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read DIR")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("ndjson" | "json")
            ) || feed_of(p).is_some()
        })
        .collect();
    files.sort();
    let bytes: u64 = files
        .iter()
        .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let opts = ReadOptions::from_clock();
    let mut counts = Counts::new(Drop);
    let t0 = Instant::now();
    for f in &files {
        match feed_of(f) {
            Some(feed) => read_csv_feed(feed, f, feed.name(), &opts, &mut counts).expect("read"),
            None => read_fhir_file(f, "bench", &opts, &mut counts).expect("read"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let t = counts.total();
    println!(
        "{} files, {:.1} MB, {} entries ({} accepted, {} rejected) in {:.2} s: {:.0} entries/s, {:.1} MB/s",
        files.len(),
        bytes as f64 / 1e6,
        t.received,
        t.accepted,
        t.rejected,
        secs,
        t.received as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

fn write_sample(dir: &Path, n: usize) {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("create DIR");
    let start = trent_model::time::days(2019, 1, 1);
    let end = trent_model::time::days(2024, 12, 31);
    let pop = trent_feeds::sample::population(n, 42, start, end);
    let f = std::fs::File::create(dir.join("bundles.ndjson")).expect("create");
    let mut w = std::io::BufWriter::new(f);
    for p in &pop {
        let b = trent_fhir::bundle::transaction(&p.record()).expect("patient");
        writeln!(w, "{b}").expect("write");
    }
}

fn feed_of(p: &Path) -> Option<Feed> {
    let name = p.file_name()?.to_str()?;
    if !name.ends_with(".csv") {
        return None;
    }
    Feed::parse(name.split('-').next()?)
}

fn write_feeds(dir: &Path, n: usize) {
    let start = trent_model::time::days(2019, 1, 1);
    let end = trent_model::time::days(2024, 12, 31);
    let pop = trent_feeds::sample::population(n, 42, start, end);
    let recs: Vec<_> = pop.iter().map(|p| p.record()).collect();
    let cfg =
        trent_feeds::synth_feeds::SynthFeedsConfig::new(42, trent_model::time::days(2025, 1, 31));
    trent_feeds::synth_feeds::synth_feeds(&recs, 0, &cfg)
        .write(dir)
        .expect("write feeds");
}

//! Fuzz the CSV feed reader with every feed: no panic, one outcome per record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trent_feeds::csv_feeds::read_csv_bytes;
use trent_feeds::{Collect, Feed, ReadOptions, Staged};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let feed = Feed::ALL[selector as usize % Feed::ALL.len()];
    let mut c = Collect::default();
    read_csv_bytes(feed, rest, "fuzz.csv", "fuzz", &ReadOptions::new(20_000), &mut c);
    // records and rejections never share a line, except a derived person and its row
    let mut lines: Vec<u64> = c
        .origins
        .iter()
        .zip(&c.records)
        .filter(|(_, r)| !matches!(r, Staged::Person(p) if p.derived))
        .map(|(o, _)| o.1)
        .chain(c.rejections.iter().map(|r| r.position.line))
        .collect();
    let n = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), n);
});

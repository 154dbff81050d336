//! `trent synth --format feeds`: the same population as the source feeds an ICS receives
//! — one CSV per care setting per partition, with the faults real feeds have — plus the
//! ground truth, so ingest and linkage are tested and measured end to end.
//!
//! Per partition `feeds/part-NNNNN/` holds the eight feeds (`trent-feeds`' formats, some
//! delivered twice), `truth.csv` (who each local patient id really is) and `faults.csv`
//! (every fault made and the reason ingest must quarantine it with). `feeds/
//! postcode_lsoa.csv` is an NSPL-shaped lookup (`pcds,lsoa11cd`) of every synthetic
//! postcode, which ingest needs to place people in LSOAs as the real ONS Postcode
//! Directory does (synthetic postcodes are random units within the LSOA's postcode
//! district, so two LSOAs can draw the same postcode: the first, in postcode order of
//! partitions, is kept, and such people may be placed in a neighbouring LSOA).
//! `feeds/batch-date.txt` is the date the feeds were "extracted" (the day after the
//! lake's span): ingest them with `--today` that date or later, and the faults dated in
//! the future are after it. Feeds hold names and NHS numbers, so `feeds/` has the vault's
//! permissions.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use trent_lake::{LakeError, LakeWriter, read_part};

/// What one partition's feeds hold.
#[derive(Debug, Clone, Default)]
pub struct FeedStats {
    /// Feed files written (redeliveries included).
    pub files: u64,
    /// Data rows over all files.
    pub rows: u64,
    /// Faults made.
    pub faults: u64,
}

/// Write one partition's feeds into `dir/part-NNNNN/`, and its postcode → LSOA pairs into
/// `dir/part-NNNNN/postcode_lsoa.csv` (merged by [`merge_postcodes`]).
pub fn feeds_partition(
    writer: &LakeWriter,
    dir: &Path,
    part: usize,
    seed: u64,
    today: i32,
) -> Result<FeedStats, LakeError> {
    let out = dir.join(format!("part-{part:05}"));
    write_postcodes(writer, &out, part)?;
    crate::fhir::with_people(writer, part, |people| {
        let cfg = trent_feeds::synth_feeds::SynthFeedsConfig::new(seed, today);
        let feeds = trent_feeds::synth_feeds::synth_feeds(&people, part as u64, &cfg);
        feeds.write(&out).map_err(trent_lake::io(&out))?;
        Ok(FeedStats {
            files: feeds.files.len() as u64,
            rows: feeds
                .files
                .iter()
                .map(|(_, t)| t.lines().count().saturating_sub(1) as u64)
                .sum(),
            faults: feeds.faults.len() as u64,
        })
    })
}

/// Write `out/postcode_lsoa.csv`: the postcode and LSOA of every person of one partition
/// (first LSOA per postcode in postcode order).
pub fn write_postcodes(writer: &LakeWriter, out: &Path, part: usize) -> Result<(), LakeError> {
    let person = read_part(&writer.staged_part_path("person", part))?;
    let ids = person
        .column_by_name("person_id")
        .expect("person_id")
        .as_primitive::<Int64Type>();
    let lsoa = person
        .column_by_name("lsoa")
        .expect("lsoa")
        .as_string::<i32>();
    let lsoa_of: std::collections::HashMap<i64, &str> = (0..person.num_rows())
        .filter(|&i| !lsoa.is_null(i))
        .map(|i| (ids.value(i), lsoa.value(i)))
        .collect();
    let vault = read_part(&writer.staged_part_path(trent_lake::VAULT_TABLE, part))?;
    let vids = vault
        .column_by_name("person_id")
        .expect("person_id")
        .as_primitive::<Int64Type>();
    let pcs = vault
        .column_by_name("postcode")
        .expect("postcode")
        .as_string::<i32>();
    let mut pc: BTreeMap<&str, &str> = BTreeMap::new();
    for i in 0..vault.num_rows() {
        if let Some(l) = lsoa_of.get(&vids.value(i)) {
            pc.entry(pcs.value(i)).or_insert(l);
        }
    }
    let mut text = String::from("pcds,lsoa11cd\n");
    for (p, l) in pc {
        text.push_str(&format!("{p},{l}\n"));
    }
    std::fs::create_dir_all(out).map_err(trent_lake::io(out))?;
    let path = out.join("postcode_lsoa.csv");
    std::fs::write(&path, text).map_err(trent_lake::io(&path))
}

/// Merge the partitions' postcode files into `dir/postcode_lsoa.csv` (first wins) and
/// write `dir/batch-date.txt`.
pub fn merge_postcodes(dir: &Path, parts: usize, today: i32) -> Result<(), LakeError> {
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    for part in 0..parts {
        let p = dir
            .join(format!("part-{part:05}"))
            .join("postcode_lsoa.csv");
        let text = std::fs::read_to_string(&p).map_err(trent_lake::io(&p))?;
        for l in text.lines().skip(1) {
            if let Some((a, b)) = l.split_once(',') {
                all.entry(a.to_string()).or_insert_with(|| b.to_string());
            }
        }
        std::fs::remove_file(&p).map_err(trent_lake::io(&p))?;
        let _ = std::fs::remove_dir(dir.join(format!("part-{part:05}"))); // empty for FHIR
    }
    let mut text = String::from("pcds,lsoa11cd\n");
    for (a, b) in all {
        text.push_str(&format!("{a},{b}\n"));
    }
    let p = dir.join("postcode_lsoa.csv");
    std::fs::write(&p, text).map_err(trent_lake::io(&p))?;
    let d = dir.join("batch-date.txt");
    std::fs::write(&d, format!("{}\n", crate::time::iso(today))).map_err(trent_lake::io(&d))?;
    Ok(())
}

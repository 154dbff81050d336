//! The synthetic population: a whole area's people and their care, generated from the
//! area file, calibrated to its targets, written as a lake (plus the identity vault).
//!
//! `synthesize` calibrates (`calibrate`), splits the area into partitions of LSOAs
//! (`sim::partitions`), simulates each partition on a worker thread with its own random
//! stream (`sim`), and publishes the lake atomically (`trent_lake::LakeWriter`). The
//! same seed and options give a byte-identical lake whatever the number of threads.
//! `check` recomputes every calibration target from a lake through DataFusion.

// Numeric code indexes several parallel arrays by band and cause; range loops read best.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

pub mod buffers;
pub mod calibrate;
pub mod check;
pub mod feeds;
pub mod fhir;
pub mod geo;
pub mod model;
pub mod names;
pub mod sim;

pub use trent_model::time;
pub use trent_stats::{rng, stats};

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};
use trent_lake::{Catalog, LakeError, LakeWriter, TableInfo};
use trent_places::Area;

/// Options of one synthesis run.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// population scale (1.0 = the area's population)
    pub scale: f64,
    /// years simulated
    pub years: i32,
    /// first day (days since epoch)
    pub start: i32,
    /// seed
    pub seed: u64,
    /// worker threads (0 = all cores)
    pub threads: usize,
    /// largest partition, people at the start
    pub max_partition: u64,
    /// show a progress bar
    pub progress: bool,
    /// also write FHIR R4 transaction bundles (`fhir/` beside the vault)
    pub fhir: bool,
}

/// Why synthesis failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Lake I/O.
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Summary {
    /// people ever present
    pub people: u64,
    /// rows in all event tables
    pub events: u64,
    /// rows per table
    pub tables: Vec<(String, u64)>,
    /// partitions
    pub partitions: usize,
    /// seconds
    pub seconds: f64,
    /// run id
    pub run_id: String,
    /// generation folder
    pub generation: std::path::PathBuf,
    /// the FHIR export, when asked for
    pub fhir: Option<fhir::FhirStats>,
}

/// Validate options before anything is written.
pub fn validate(opts: &SynthOptions) -> Result<(), SynthError> {
    if !(opts.scale > 0.0 && opts.scale.is_finite()) {
        return Err(SynthError::Options(format!(
            "--scale must be greater than 0 (got {})",
            opts.scale
        )));
    }
    if opts.scale > 100.0 {
        return Err(SynthError::Options(format!(
            "--scale {} is above 100; national scale is about 55",
            opts.scale
        )));
    }
    if !(1..=30).contains(&opts.years) {
        return Err(SynthError::Options(format!(
            "--years must be between 1 and 30 (got {})",
            opts.years
        )));
    }
    Ok(())
}

/// Extra exports beside the lake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exports {
    /// Also write the source feeds with faults and ground truth (`feeds/` beside the
    /// vault; see [`feeds`]).
    pub feeds: bool,
}

/// Generate the area's synthetic lake into `out`.
pub fn synthesize(
    area: &Area,
    opts: &SynthOptions,
    out: &std::path::Path,
) -> Result<Summary, SynthError> {
    synthesize_ext(area, opts, out, Exports::default())
}

/// [`synthesize`] with extra exports.
pub fn synthesize_ext(
    area: &Area,
    opts: &SynthOptions,
    out: &std::path::Path,
    exports: Exports,
) -> Result<Summary, SynthError> {
    validate(opts)?;
    let t = std::time::Instant::now();
    let geo = geo::Geo::new(area);
    let cal = calibrate::calibrate(area, &geo, opts.start, opts.seed);
    let writer = LakeWriter::create(out)?;
    let ctx = sim::Ctx {
        area,
        geo: &geo,
        cal: &cal,
        seed: opts.seed,
        start: opts.start,
        years: opts.years,
        cost: sim::Costs::new(area),
    };
    let parts = sim::partitions(&geo, opts.scale, opts.max_partition);
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let results = parallel(
        parts.len(),
        threads,
        opts.progress.then_some("synth"),
        |i| sim::run_partition(&ctx, &parts[i], &writer),
    )?;
    let fhir = if opts.fhir {
        let dir = writer.restricted_dir("fhir")?;
        let stats = parallel(parts.len(), threads, opts.progress.then_some("fhir"), |i| {
            let part = parts[i].index;
            feeds::write_postcodes(&writer, &dir.join(format!("part-{part:05}")), part)?;
            fhir::export_partition(&writer, &dir, part)
        })?;
        feeds::merge_postcodes(&dir, parts.len(), time::add_years(opts.start, opts.years))?;
        Some(
            stats
                .into_iter()
                .fold(fhir::FhirStats::default(), |a, s| fhir::FhirStats {
                    bundles: a.bundles + s.bundles,
                    resources: a.resources + s.resources,
                    bytes: a.bytes + s.bytes,
                }),
        )
    } else {
        None
    };
    if exports.feeds {
        let dir = writer.restricted_dir("feeds")?;
        let today = time::add_years(opts.start, opts.years);
        parallel(
            parts.len(),
            threads,
            opts.progress.then_some("feeds"),
            |i| feeds::feeds_partition(&writer, &dir, parts[i].index, opts.seed, today),
        )?;
        feeds::merge_postcodes(&dir, parts.len(), today)?;
    }
    // the organisation table
    let mut orgp = writer.part(&trent_model::schema::ORGANISATION, 0)?;
    orgp.write(&organisation_batch(area))?;
    let (org_file, org_rows) = orgp.finish()?;

    let run = serde_json::json!({
        "command": "synth",
        "area": area.area.id,
        "scale": opts.scale,
        "years": opts.years,
        "start": time::iso(opts.start),
        "seed": opts.seed,
    });
    let run_id = {
        let mut h = Sha256::new();
        h.update(run.to_string().as_bytes());
        h.update(area.config_hash.as_bytes());
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut tables = Vec::new();
    let mut counts = Vec::new();
    for def in trent_model::TABLES {
        if def.name == "organisation" {
            tables.push(TableInfo::new(
                def,
                org_rows,
                vec![org_file.clone()],
                &run_id,
            ));
            counts.push((def.name.to_string(), org_rows));
            continue;
        }
        let mut files = Vec::new();
        let mut rows = 0;
        for r in &results {
            for (t, f, n) in &r.files {
                if t == def.name {
                    files.push(f.clone());
                    rows += n;
                }
            }
        }
        tables.push(TableInfo::new(def, rows, files, &run_id));
        counts.push((def.name.to_string(), rows));
    }
    let vault_rows = results.iter().map(|r| r.vault.1).sum();
    let end = time::add_years(opts.start, opts.years) - 1;
    let catalog = Catalog {
        format: 1,
        run_id: run_id.clone(),
        run,
        config_hash: area.config_hash.clone(),
        area: area.area.id.clone(),
        span_start: time::iso(opts.start),
        span_end: time::iso(end),
        written_by: format!("trent {}", env!("CARGO_PKG_VERSION")),
        tables,
        vault_rows,
        batches: Vec::new(),
    };
    let generation = writer.commit(&catalog)?;
    Ok(Summary {
        people: results.iter().map(|r| r.people).sum(),
        events: results.iter().map(|r| r.events).sum(),
        tables: counts,
        partitions: parts.len(),
        seconds: t.elapsed().as_secs_f64(),
        run_id,
        generation,
        fhir,
    })
}

/// Run `f(0..n)` on `threads` workers, in any order, returning results in index order;
/// the first failure stops the others and is returned (nothing is published then: the
/// staging folder is swept by the next writer).
fn parallel<T: Send>(
    n: usize,
    threads: usize,
    progress: Option<&str>,
    f: impl Fn(usize) -> Result<T, LakeError> + Sync,
) -> Result<Vec<T>, SynthError> {
    let bar = match progress {
        Some(what) => {
            let b = indicatif::ProgressBar::new(n as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} partitions, {{elapsed}} ({{eta}} left)"
                ))
                .expect("template")
                .progress_chars("=> "),
            );
            b
        }
        None => indicatif::ProgressBar::hidden(),
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<LakeError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || failure.lock().expect("lock").is_some() {
                        break;
                    }
                    match f(i) {
                        Ok(r) => {
                            results.lock().expect("lock").push((i, r));
                            bar.inc(1);
                        }
                        Err(e) => {
                            *failure.lock().expect("lock") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e.into());
    }
    let mut results = results.into_inner().expect("lock");
    results.sort_by_key(|r| r.0);
    Ok(results.into_iter().map(|r| r.1).collect())
}

/// The organisation table from the area file.
pub fn organisation_batch(area: &Area) -> RecordBatch {
    let mut rows: Vec<(String, String, &str, Option<String>, Option<i64>)> = Vec::new();
    rows.push((
        area.area.stp_code.clone(),
        area.area.name.clone(),
        "stp",
        None,
        Some(area.area.population as i64),
    ));
    for d in &area.delivery_units {
        let pop: u64 = area
            .ccgs
            .iter()
            .filter(|c| c.delivery_unit == d.code)
            .map(|c| c.population)
            .sum();
        rows.push((
            d.code.clone(),
            d.name.clone(),
            "delivery_unit",
            Some(area.area.stp_code.clone()),
            Some(pop as i64),
        ));
    }
    for c in &area.ccgs {
        rows.push((
            c.code.clone(),
            c.name.clone(),
            "ccg",
            Some(c.delivery_unit.clone()),
            Some(c.population as i64),
        ));
    }
    for l in &area.localities {
        rows.push((
            l.code.clone(),
            l.name.clone(),
            "locality",
            Some(l.ccg.clone()),
            Some(l.population as i64),
        ));
    }
    for h in &area.hubs {
        rows.push((
            h.code.clone(),
            h.name.clone(),
            "hub",
            Some(h.locality.clone()),
            Some(h.population as i64),
        ));
    }
    for p in &area.practices {
        rows.push((
            p.code.clone(),
            p.name.clone(),
            "practice",
            Some(p.hub.clone()),
            Some(p.list_size as i64),
        ));
    }
    for p in &area.providers {
        rows.push((p.code.clone(), p.name.clone(), "provider", None, None));
        for s in &p.sites {
            rows.push((
                s.code.clone(),
                s.name.clone(),
                "site",
                Some(p.code.clone()),
                None,
            ));
        }
    }
    for la in &area.local_authorities {
        let pop: u64 = area
            .lsoas
            .iter()
            .filter(|l| area.la_of_district(&l.district) == la.code)
            .map(|l| l.population)
            .sum();
        rows.push((
            la.code.clone(),
            la.name.clone(),
            "local_authority",
            None,
            Some(pop as i64),
        ));
    }
    for d in &area.districts {
        let pop: u64 = area
            .lsoas
            .iter()
            .filter(|l| l.district == d.code)
            .map(|l| l.population)
            .sum();
        // a unitary authority is its own district: keep one row per code
        if rows.iter().any(|r| r.0 == d.code) {
            continue;
        }
        rows.push((
            d.code.clone(),
            d.name.clone(),
            "district",
            Some(d.la.clone()),
            Some(pop as i64),
        ));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.3.as_deref()).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(trent_model::schema::ORGANISATION.schema(), cols)
        .expect("organisation schema")
}

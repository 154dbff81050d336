//! Reading back what ingest did: the synthetic feeds folder as a batch, linkage quality
//! against ground truth, and the quarantine.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use trent_feeds::Feed;
use trent_lake::Lake;

use crate::IngestError;
use crate::run::{Format, Input};
use crate::table::{Cols, read_parquet};
use crate::vault::{RawRejection, VaultState, read_quarantine_raw};

/// The `part-NNNNN` folders of a feeds folder, in order.
pub fn feeds_parts(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| IngestError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        })
        .collect();
    parts.sort();
    Ok(parts)
}

/// A feeds folder: its inputs, its postcode lookup, its batch date.
pub type FeedsFolder = (Vec<Input>, Option<PathBuf>, Option<i32>);

/// The inputs of a `trent synth --format feeds` folder: every `<feed>-NNNNN*.csv` of every
/// `part-NNNNN/`, ingested under the feed's name; plus the postcode lookup and batch date
/// the folder carries.
pub fn feeds_folder(dir: &Path) -> Result<FeedsFolder, IngestError> {
    feeds_folder_parts(dir, None)
}

/// [`feeds_folder`] restricted to one `part-NNNNN` folder (for one batch per partition).
pub fn feeds_folder_parts(dir: &Path, only: Option<&Path>) -> Result<FeedsFolder, IngestError> {
    let mut inputs = Vec::new();
    let mut parts = feeds_parts(dir)?;
    if let Some(o) = only {
        parts.retain(|p| p == o);
    }
    if parts.is_empty() {
        return Err(IngestError::Input {
            path: dir.to_path_buf(),
            message: "no part-NNNNN folders: not a `trent synth --format feeds` folder".into(),
        });
    }
    for p in parts {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
            .map_err(|e| IngestError::io(&p, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "csv"))
            .collect();
        // a redelivered file arrives after the original
        files.sort_by_key(|f| {
            let n = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            (n.replace("-redelivered", ""), n.contains("-redelivered"))
        });
        for f in files {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let Some((feed, _)) = name.rsplit_once('-').and_then(|(a, b)| {
                // `mental_health-00003.csv`, `apc-00003-redelivered.csv`
                let a = a.strip_suffix("-00000").unwrap_or(a);
                let stem = if b.starts_with("redelivered") {
                    a.rsplit_once('-').map_or(a, |x| x.0)
                } else {
                    a
                };
                Feed::parse(stem).map(|f| (f, ()))
            }) else {
                continue; // truth.csv, faults.csv
            };
            inputs.push(Input {
                format: Format::Csv(feed),
                path: f,
                source: feed.name().to_string(),
            });
        }
    }
    let pc = dir.join("postcode_lsoa.csv");
    let today = std::fs::read_to_string(dir.join("batch-date.txt"))
        .ok()
        .and_then(|t| trent_model::time::parse(t.trim()));
    Ok((inputs, pc.exists().then_some(pc), today))
}

/// Linkage quality of the vault against ground truth files (`source,source_person,
/// person_id`): pairwise precision, recall and F1 over the source identities both know,
/// and how many each side has that the other lacks.
pub fn evaluate_linkage(
    data: &Path,
    truth: &[PathBuf],
) -> Result<(trent_link::Evaluation, usize, usize), IngestError> {
    let lake = Lake::open(data)?;
    let vault = VaultState::load(&lake.generation.join("vault"))?;
    let mut t: HashMap<(String, String), String> = HashMap::new();
    for p in truth {
        let text = std::fs::read_to_string(p).map_err(|e| IngestError::io(p, e))?;
        for (i, l) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 3 {
                return Err(IngestError::Input {
                    path: p.clone(),
                    message: format!("line {}: expected source,source_person,person_id", i + 1),
                });
            }
            t.insert((f[0].to_string(), f[1].to_string()), f[2].to_string());
        }
    }
    let mut keys: Vec<&(String, String)> = t
        .keys()
        .filter(|k| vault.persons.contains_key(*k))
        .collect();
    keys.sort();
    let pred: Vec<String> = keys
        .iter()
        .map(|k| vault.persons[*k].person_id.to_string())
        .collect();
    let tru: Vec<&str> = keys.iter().map(|k| t[*k].as_str()).collect();
    let e = trent_link::evaluate(&pred, &tru).map_err(|e| IngestError::Link(e.to_string()))?;
    let only_truth = t.len() - keys.len();
    let only_vault = vault.persons.keys().filter(|k| !t.contains_key(*k)).count();
    Ok((e, only_truth, only_vault))
}

/// One row of the lake's quarantine table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuarantineRow {
    /// Batch.
    pub batch_id: i64,
    /// Source.
    pub source: String,
    /// File name.
    pub file: String,
    /// Line.
    pub line: i64,
    /// Bundle entry.
    pub entry: Option<i64>,
    /// Reason code.
    pub reason_code: String,
    /// Masked message (the lake's), or the full message with `--raw`.
    pub message: String,
    /// The raw record (only with vault access).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// The quarantine of the current lake (masked), or with `raw` its vault side.
pub fn quarantine(data: &Path, raw: bool) -> Result<Vec<QuarantineRow>, IngestError> {
    let lake = Lake::open(data)?;
    if raw {
        let rows: Vec<RawRejection> = read_quarantine_raw(&lake.generation.join("vault"))?;
        return Ok(rows
            .into_iter()
            .map(|r| QuarantineRow {
                batch_id: r.batch_id,
                source: r.source,
                file: r.file,
                line: r.line,
                entry: r.entry,
                reason_code: r.reason_code,
                message: r.message,
                raw: Some(r.raw),
            })
            .collect());
    }
    let mut out = Vec::new();
    if let Some(t) = lake.catalog.table("quarantine") {
        for f in &t.files {
            let path = lake.table_dir("quarantine").join(f);
            if let Some(b) = read_parquet(&path)? {
                let c = Cols(&b);
                for i in 0..b.num_rows() {
                    out.push(QuarantineRow {
                        batch_id: c.i("batch_id", i).unwrap_or_default(),
                        source: c.s("source", i).unwrap_or_default(),
                        file: c.s("file", i).unwrap_or_default(),
                        line: c.i("line", i).unwrap_or_default(),
                        entry: c.i("entry", i),
                        reason_code: c.s("reason_code", i).unwrap_or_default(),
                        message: c.s("message", i).unwrap_or_default(),
                        raw: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Quarantine counts by (source, reason).
pub fn quarantine_summary(rows: &[QuarantineRow]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry((r.source.clone(), r.reason_code.clone()))
            .or_default() += 1;
    }
    m
}

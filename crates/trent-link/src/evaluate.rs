//! Evaluation of a linkage against ground truth (`record → true person`).
//!
//! Pairwise measures count *pairs of records placed in the same person*: a true
//! positive is a pair in the same predicted cluster and the same true person.
//! Precision = TP / predicted pairs, recall = TP / true pairs, F1 their harmonic mean.
//! They are computed from the contingency table of (predicted cluster, true person)
//! cell sizes — Σ C(cell, 2) etc. — so a million records cost one hash pass, not n².
//! Cluster-level counts say how persons were split or merged.
//!
//! The same function scores any tool's clusters, which is how the benchmark compares
//! trent with Splink on equal terms.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use crate::LinkError;
use crate::record::split_csv_line;

/// Pairwise and cluster-level scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Records evaluated.
    pub records: usize,
    /// Pairs of records that are truly the same person.
    pub true_pairs: u64,
    /// Pairs of records placed in the same cluster.
    pub predicted_pairs: u64,
    /// Pairs that are both.
    pub true_positive_pairs: u64,
    /// TP / predicted pairs (1 when nothing is predicted).
    pub precision: f64,
    /// TP / true pairs (1 when there are no true pairs).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Distinct true persons.
    pub true_persons: usize,
    /// Distinct predicted clusters.
    pub predicted_clusters: usize,
    /// Predicted clusters that are exactly one true person's records.
    pub exact_clusters: usize,
    /// True persons whose records are spread over more than one cluster.
    pub split_persons: usize,
    /// Predicted clusters that hold more than one true person.
    pub merged_clusters: usize,
}

fn c2(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Evaluate per-record predicted cluster labels against per-record true labels.
pub fn evaluate<P: AsRef<str>, T: AsRef<str>>(
    predicted: &[P],
    truth: &[T],
) -> Result<Evaluation, LinkError> {
    if predicted.len() != truth.len() {
        return Err(LinkError::Evaluation(format!(
            "{} predicted labels but {} true labels",
            predicted.len(),
            truth.len()
        )));
    }
    let mut pid: HashMap<&str, u32> = HashMap::new();
    let mut tid: HashMap<&str, u32> = HashMap::new();
    let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        let k = pid.len() as u32;
        let p = *pid.entry(p.as_ref()).or_insert(k);
        let k = tid.len() as u32;
        let t = *tid.entry(t.as_ref()).or_insert(k);
        *cells.entry((p, t)).or_default() += 1;
    }
    let mut psize = vec![0u64; pid.len()];
    let mut tsize = vec![0u64; tid.len()];
    let mut pparts = vec![0u32; pid.len()];
    let mut tparts = vec![0u32; tid.len()];
    let mut tp = 0;
    for (&(p, t), &n) in &cells {
        psize[p as usize] += n;
        tsize[t as usize] += n;
        pparts[p as usize] += 1;
        tparts[t as usize] += 1;
        tp += c2(n);
    }
    let predicted_pairs: u64 = psize.iter().map(|&n| c2(n)).sum();
    let true_pairs: u64 = tsize.iter().map(|&n| c2(n)).sum();
    let precision = if predicted_pairs == 0 {
        1.0
    } else {
        tp as f64 / predicted_pairs as f64
    };
    let recall = if true_pairs == 0 {
        1.0
    } else {
        tp as f64 / true_pairs as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let exact_clusters = cells
        .iter()
        .filter(|&(&(p, t), &n)| n == psize[p as usize] && n == tsize[t as usize])
        .count();
    Ok(Evaluation {
        records: predicted.len(),
        true_pairs,
        predicted_pairs,
        true_positive_pairs: tp,
        precision,
        recall,
        f1,
        true_persons: tid.len(),
        predicted_clusters: pid.len(),
        exact_clusters,
        split_persons: tparts.iter().filter(|&&k| k > 1).count(),
        merged_clusters: pparts.iter().filter(|&&k| k > 1).count(),
    })
}

/// Read a `source,record_id,<label_column>` CSV into a map from (source, record_id)
/// to label. Used for ground truth (`person_id`) and for clusters (`person_key`).
pub fn read_labels(
    reader: impl BufRead,
    path: &Path,
    label_column: &str,
) -> Result<HashMap<(String, String), String>, LinkError> {
    let err = |line: usize, field: &str, message: String| LinkError::Csv {
        path: path.display().to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let mut lines = reader.lines();
    let header = lines
        .next()
        .ok_or_else(|| err(1, "-", "empty file: no header".into()))?
        .map_err(|e| err(1, "-", e.to_string()))?;
    let header = split_csv_line(header.trim_end_matches('\r')).map_err(|m| err(1, "-", m))?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| err(1, name, format!("missing column {name:?}")))
    };
    let (cs, ci, cl) = (col("source")?, col("record_id")?, col(label_column)?);
    let mut out = HashMap::new();
    for (n, line) in lines.enumerate() {
        let ln = n + 2;
        let line = line.map_err(|e| err(ln, "-", e.to_string()))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let f = split_csv_line(line).map_err(|m| err(ln, "-", m))?;
        if f.len() != header.len() {
            return Err(err(
                ln,
                "-",
                format!("expected {} fields, found {}", header.len(), f.len()),
            ));
        }
        let label = f[cl].trim().to_string();
        if label.is_empty() {
            return Err(err(ln, label_column, "empty label".into()));
        }
        let key = (f[cs].trim().to_string(), f[ci].trim().to_string());
        if out.insert(key, label).is_some() {
            return Err(err(
                ln,
                "record_id",
                format!("duplicate record {}/{}", f[cs].trim(), f[ci].trim()),
            ));
        }
    }
    Ok(out)
}

/// Evaluate two label maps over the records of `truth`; a record in truth but not
/// in `predicted` (or the other way round) is an error naming it.
pub fn evaluate_maps(
    predicted: &HashMap<(String, String), String>,
    truth: &HashMap<(String, String), String>,
) -> Result<Evaluation, LinkError> {
    let mut keys: Vec<&(String, String)> = truth.keys().collect();
    keys.sort();
    let mut p = Vec::with_capacity(keys.len());
    let mut t = Vec::with_capacity(keys.len());
    for k in keys {
        let label = predicted.get(k).ok_or_else(|| {
            LinkError::Evaluation(format!("record {}/{} has no predicted cluster", k.0, k.1))
        })?;
        p.push(label.as_str());
        t.push(truth[k].as_str());
    }
    if let Some(k) = predicted.keys().find(|k| !truth.contains_key(*k)) {
        return Err(LinkError::Evaluation(format!(
            "record {}/{} is not in the ground truth",
            k.0, k.1
        )));
    }
    evaluate(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_case() {
        // truth: persons A (r1,r2,r3), B (r4,r5), C (r6)
        // predicted: {r1,r2}, {r3,r4,r5}, {r6}
        let truth = ["A", "A", "A", "B", "B", "C"];
        let pred = ["x", "x", "y", "y", "y", "z"];
        let e = evaluate(&pred, &truth).unwrap();
        assert_eq!(e.true_pairs, 3 + 1);
        assert_eq!(e.predicted_pairs, 1 + 3);
        assert_eq!(e.true_positive_pairs, 1 + 1); // (r1,r2), (r4,r5)
        assert_eq!(e.precision, 0.5);
        assert_eq!(e.recall, 0.5);
        assert_eq!(e.f1, 0.5);
        assert_eq!(e.true_persons, 3);
        assert_eq!(e.predicted_clusters, 3);
        assert_eq!(e.exact_clusters, 1); // {r6}
        assert_eq!(e.split_persons, 1); // A
        assert_eq!(e.merged_clusters, 1); // y
        assert!(evaluate(&pred[..2], &truth).is_err());
    }

    #[test]
    fn label_files_join_and_complain() {
        let truth = "source,record_id,person_id\ngp,1,A\ngp,2,A\nsc,1,B\n";
        let pred = "source,record_id,person_key\ngp,1,P1\ngp,2,P1\nsc,1,P2\n";
        let t = read_labels(truth.as_bytes(), Path::new("t.csv"), "person_id").unwrap();
        let p = read_labels(pred.as_bytes(), Path::new("p.csv"), "person_key").unwrap();
        let e = evaluate_maps(&p, &t).unwrap();
        assert_eq!((e.precision, e.recall), (1.0, 1.0));
        let short = "source,record_id,person_key\ngp,1,P1\n";
        let p2 = read_labels(short.as_bytes(), Path::new("p.csv"), "person_key").unwrap();
        let msg = evaluate_maps(&p2, &t).unwrap_err().to_string();
        assert!(msg.contains("gp/2"), "{msg}");
        let dup = "source,record_id,person_id\ngp,1,A\ngp,1,B\n";
        let msg = read_labels(dup.as_bytes(), Path::new("t.csv"), "person_id")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3"), "{msg}");
    }
}

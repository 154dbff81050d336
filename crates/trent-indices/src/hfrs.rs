//! The Hospital Frailty Risk Score (Gilbert et al., Lancet 2018;391:1775): 109 ICD-10
//! three-character categories, each with points; a person's score is the sum of points of
//! the distinct categories coded (each category counts once). Bands: low < 5,
//! intermediate 5-15, high > 15. The paper derives it for people aged 75+ over the index
//! admission and the previous two years of admissions; choosing the window is the
//! caller's job.

use crate::code::Malformed;
use crate::codelist::{bits, ones, split_icd10};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The 109 (category, points) pairs in the paper's order.
pub fn table() -> &'static [(&'static str, f64)] {
    static T: OnceLock<Vec<(&'static str, f64)>> = OnceLock::new();
    T.get_or_init(|| {
        include_str!("../data/hfrs_gilbert2018.txt")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (c, p) = l.split_once('|').expect("shipped HFRS line is code|points");
                (c, p.trim().parse().expect("shipped HFRS points parse"))
            })
            .collect()
    })
}

fn lookup() -> &'static HashMap<&'static str, usize> {
    static M: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    M.get_or_init(|| {
        table()
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (*c, i))
            .collect()
    })
}

/// HFRS band.
pub fn band(score: f64) -> &'static str {
    // Scores are sums of one-decimal points; compare on tenths to avoid 4.999… artefacts.
    let tenths = (score * 10.0).round() as i64;
    if tenths < 50 {
        "low"
    } else if tenths <= 150 {
        "intermediate"
    } else {
        "high"
    }
}

/// A person's HFRS.
#[derive(Debug, Clone, PartialEq)]
pub struct HfrsResult {
    /// sum of points, rounded to one decimal
    pub score: f64,
    /// `low`, `intermediate` or `high`
    pub band: &'static str,
    /// one flag per `table()` entry
    pub categories: Vec<bool>,
    /// codes that were not valid ICD-10
    pub malformed: Vec<Malformed>,
}

/// Score from category flags.
pub fn score_flags(flags: &[bool]) -> f64 {
    score_mask(bits(flags))
}

/// Points of each category in tenths (the sum is taken in tenths: no 4.999… artefacts).
fn tenths() -> &'static [i64] {
    static T: OnceLock<Vec<i64>> = OnceLock::new();
    T.get_or_init(|| {
        table()
            .iter()
            .map(|(_, p)| (p * 10.0).round() as i64)
            .collect()
    })
}

/// Score from the categories as a bit set (bit k: `table()[k]`; 109 categories), e.g.
/// the union of [`code_mask`] over a person's codes.
pub fn score_mask(mask: u128) -> f64 {
    let t = tenths();
    ones(mask).map(|k| t[k]).sum::<i64>() as f64 / 10.0
}

/// The category of one normalised ICD-10 code (its first three characters), if scored.
pub fn category(code: &str) -> Option<usize> {
    code.get(..3).and_then(|k| lookup().get(k)).copied()
}

/// [`category`] as a bit set (0: none).
pub fn code_mask(code: &str) -> u128 {
    category(code).map_or(0, |i| 1 << i)
}

/// Flags for normalised ICD-10 codes (matched on their first three characters).
pub fn flags<'a>(codes: impl IntoIterator<Item = &'a str>) -> Vec<bool> {
    let mut f = vec![false; table().len()];
    for c in codes {
        if let Some(i) = category(c) {
            f[i] = true;
        }
    }
    f
}

/// HFRS of one person's ICD-10 codes.
pub fn hfrs<'a>(codes: impl IntoIterator<Item = &'a str>) -> HfrsResult {
    let (ok, malformed) = split_icd10(codes);
    let categories = flags(ok.iter().map(String::as_str));
    let score = score_flags(&categories);
    HfrsResult {
        score,
        band: band(score),
        categories,
        malformed,
    }
}

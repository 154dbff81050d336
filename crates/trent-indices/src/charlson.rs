//! The Charlson comorbidity index on ICD-10 codes.
//!
//! Mappings: Quan et al. 2005 (Med Care 43:1130, Table 1, 17 conditions) and the NHS
//! SHMI specification's Charlson groups (`data/charlson_shmi.txt`). Weights: Charlson
//! 1987 (J Chronic Dis 40:373, Table 3), Quan 2011 (Am J Epidemiol 173:676, Table 3) and
//! the SHMI specification's weights. Any mapping can be combined with any weights, as
//! other implementations allow.
//!
//! Hierarchy (applied to the *score* only; the condition flags report what was coded):
//! with Charlson 1987 and Quan 2011 weights, moderate/severe liver disease supersedes mild
//! liver disease, diabetes with chronic complications supersedes diabetes without, and
//! metastatic solid tumour supersedes any malignancy — so each condition family counts
//! once, at its most severe (Quan 2011 states the maximum score 24, which holds only with
//! these rules). With SHMI weights no hierarchy is applied (the SHMI groups are separate
//! terms of the SHMI model; the "diabetes complications" weight of −1 is an increment on
//! "diabetes") and a negative total is set to 0, as the specification does.

use crate::code::Malformed;
use crate::codelist::{CodeList, bits, ones, split_icd10};
use std::sync::OnceLock;

/// Which ICD-10 coding of the 17 conditions to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharlsonMapping {
    /// Quan et al. 2005, Table 1
    Quan,
    /// NHS SHMI specification's Charlson comorbidity groups
    Shmi,
}

/// Which weights to sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharlsonWeights {
    /// Charlson et al. 1987 original weights (1, 2, 3, 6)
    Charlson1987,
    /// Quan et al. 2011 updated weights (0-6; max 24)
    Quan2011,
    /// SHMI specification weights (−1 to 18; negative totals set to 0; no hierarchy)
    Shmi,
}

/// Condition keys in output order (same keys as the R `comorbidity` package and
/// comorbidipy).
pub const KEYS: [&str; 17] = [
    "ami", "chf", "pvd", "cevd", "dementia", "copd", "rheumd", "pud", "mld", "diab", "diabwc",
    "hp", "rend", "canc", "msld", "metacanc", "aids",
];

/// Charlson 1987, Table 3 (leukaemia and lymphoma fold into "any malignancy" in Quan's
/// coding, weight 2 like any tumour).
const W_CHARLSON1987: [i32; 17] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 6, 6];
/// Quan 2011, Table 3 ("updated weights"): MI, PVD, CVD, PUD and uncomplicated diabetes 0;
/// AIDS/HIV 4.
const W_QUAN2011: [i32; 17] = [0, 2, 0, 0, 2, 1, 1, 0, 2, 0, 1, 2, 1, 2, 4, 6, 4];
/// SHMI specification (v1.35, Appendix), in `KEYS` order: AMI 5, CHF 13, PVD 6,
/// cerebrovascular 11, dementia 14, pulmonary 4, connective tissue 4, peptic ulcer 9,
/// liver 8, diabetes 3, diabetes complications −1, paraplegia 1, renal 10, cancer 8,
/// severe liver 18, metastatic cancer 14, HIV 2.
const W_SHMI: [i32; 17] = [5, 13, 6, 11, 14, 4, 4, 9, 8, 3, -1, 1, 10, 8, 18, 14, 2];

/// (more severe, less severe) pairs by key index: msld>mld, diabwc>diab, metacanc>canc.
pub const HIERARCHY: [(usize, usize); 3] = [(14, 8), (10, 9), (15, 13)];

/// The parsed code list for a mapping.
pub fn codelist(mapping: CharlsonMapping) -> &'static CodeList {
    static QUAN: OnceLock<CodeList> = OnceLock::new();
    static SHMI: OnceLock<CodeList> = OnceLock::new();
    match mapping {
        CharlsonMapping::Quan => QUAN.get_or_init(|| {
            CodeList::parse(include_str!("../data/charlson_quan2005.txt"))
                .expect("shipped Charlson Quan list parses")
        }),
        CharlsonMapping::Shmi => SHMI.get_or_init(|| {
            CodeList::parse(include_str!("../data/charlson_shmi.txt"))
                .expect("shipped Charlson SHMI list parses")
        }),
    }
}

/// The weight vector.
pub fn weights(w: CharlsonWeights) -> &'static [i32; 17] {
    match w {
        CharlsonWeights::Charlson1987 => &W_CHARLSON1987,
        CharlsonWeights::Quan2011 => &W_QUAN2011,
        CharlsonWeights::Shmi => &W_SHMI,
    }
}

/// A person's Charlson result.
#[derive(Debug, Clone, PartialEq)]
pub struct CharlsonResult {
    /// weighted score (hierarchy applied as documented on the module)
    pub score: i32,
    /// one flag per `KEYS` entry: a code of the condition was present (before hierarchy)
    pub conditions: Vec<bool>,
    /// codes that were not valid ICD-10
    pub malformed: Vec<Malformed>,
}

impl CharlsonResult {
    /// Keys of the conditions present.
    pub fn present(&self) -> Vec<&'static str> {
        KEYS.iter()
            .zip(&self.conditions)
            .filter(|(_, p)| **p)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Score from condition flags.
pub fn score_flags(flags: &[bool], w: CharlsonWeights) -> i32 {
    score_mask(bits(flags), w)
}

/// Score from the conditions as a bit set (bit k: `KEYS[k]`), e.g. the union of
/// [`code_mask`] over a person's codes.
pub fn score_mask(mut mask: u128, w: CharlsonWeights) -> i32 {
    let wt = weights(w);
    if w != CharlsonWeights::Shmi {
        for (hi, lo) in HIERARCHY {
            if mask >> hi & 1 == 1 {
                mask &= !(1 << lo);
            }
        }
    }
    let s: i32 = ones(mask).map(|k| wt[k]).sum();
    if w == CharlsonWeights::Shmi {
        s.max(0)
    } else {
        s
    }
}

/// The conditions one normalised ICD-10 code records under `mapping`, as a bit set.
pub fn code_mask(code: &str, mapping: CharlsonMapping) -> u128 {
    codelist(mapping).mask(code)
}

/// Charlson index of one person's ICD-10 codes (any shape: dotted or not, any case, SUS
/// filler and dagger/asterisk marks).
pub fn charlson<'a>(
    codes: impl IntoIterator<Item = &'a str>,
    mapping: CharlsonMapping,
    weights: CharlsonWeights,
) -> CharlsonResult {
    let (ok, malformed) = split_icd10(codes);
    let conditions = codelist(mapping).flags(ok.iter().map(String::as_str));
    CharlsonResult {
        score: score_flags(&conditions, weights),
        conditions,
        malformed,
    }
}

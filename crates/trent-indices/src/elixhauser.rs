//! The Elixhauser comorbidity measure on ICD-10 codes: Quan et al. 2005 (Med Care
//! 43:1130, Table 2; 31 conditions) with the van Walraven et al. 2009 point system (Med
//! Care 47:626, Figure/Table 2).
//!
//! Hierarchy (score only; flags report what was coded): van Walraven derived the points
//! on Elixhauser's comorbidities as AHRQ defines them, where metastatic cancer supersedes
//! solid tumour without metastasis and complicated diabetes supersedes uncomplicated
//! diabetes; complicated hypertension likewise supersedes uncomplicated (van Walraven
//! merges the two hypertension groups and both weigh 0). Of these only the tumour rule
//! changes a score (12 instead of 12 + 4). AHRQ's DRG-based exclusion of comorbidities
//! related to the principal diagnosis is not applied: these functions see codes, not DRGs
//! (`docs/indices.md`). A code can flag two conditions (I11.0 is heart failure and
//! complicated hypertension), as Quan's table lists it under both.

use crate::code::Malformed;
use crate::codelist::{CodeList, bits, ones, split_icd10};
use std::sync::OnceLock;

/// Condition keys in output order.
pub const KEYS: [&str; 31] = [
    "chf", "carit", "valv", "pcd", "pvd", "hypunc", "hypc", "para", "ond", "cpd", "diabunc",
    "diabc", "hypothy", "rf", "ld", "pud", "aids", "lymph", "metacanc", "solidtum", "rheumd",
    "coag", "obes", "wloss", "fed", "blane", "dane", "alcohol", "drug", "psycho", "depre",
];

/// van Walraven 2009 points in `KEYS` order.
pub const VAN_WALRAVEN: [i32; 31] = [
    7, 5, -1, 4, 2, 0, 0, 7, 6, 3, 0, 0, 0, 5, 11, 0, 0, 9, 12, 4, 0, 3, -4, 6, 5, -2, -2, 0, -7,
    0, -3,
];

/// (more severe, less severe): metacanc>solidtum, diabc>diabunc, hypc>hypunc.
pub const HIERARCHY: [(usize, usize); 3] = [(18, 19), (11, 10), (6, 5)];

/// The parsed Quan 2005 ICD-10 list.
pub fn codelist() -> &'static CodeList {
    static L: OnceLock<CodeList> = OnceLock::new();
    L.get_or_init(|| {
        CodeList::parse(include_str!("../data/elixhauser_quan2005.txt"))
            .expect("shipped Elixhauser list parses")
    })
}

/// A person's Elixhauser result.
#[derive(Debug, Clone, PartialEq)]
pub struct ElixhauserResult {
    /// van Walraven score (can be negative)
    pub score: i32,
    /// one flag per `KEYS` entry (before hierarchy)
    pub conditions: Vec<bool>,
    /// codes that were not valid ICD-10
    pub malformed: Vec<Malformed>,
}

/// van Walraven score from flags (hierarchy applied).
pub fn score_flags(flags: &[bool]) -> i32 {
    score_mask(bits(flags))
}

/// van Walraven score from the conditions as a bit set (bit k: `KEYS[k]`; hierarchy
/// applied), e.g. the union of [`code_mask`] over a person's codes.
pub fn score_mask(mut mask: u128) -> i32 {
    for (hi, lo) in HIERARCHY {
        if mask >> hi & 1 == 1 {
            mask &= !(1 << lo);
        }
    }
    ones(mask).map(|k| VAN_WALRAVEN[k]).sum()
}

/// The conditions one normalised ICD-10 code records, as a bit set.
pub fn code_mask(code: &str) -> u128 {
    codelist().mask(code)
}

/// Elixhauser/van Walraven for one person's ICD-10 codes.
pub fn elixhauser<'a>(codes: impl IntoIterator<Item = &'a str>) -> ElixhauserResult {
    let (ok, malformed) = split_icd10(codes);
    let conditions = codelist().flags(ok.iter().map(String::as_str));
    ElixhauserResult {
        score: score_flags(&conditions),
        conditions,
        malformed,
    }
}

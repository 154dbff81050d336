//! Per-id scoring: (id, code) rows in, one row per id out, in order of first appearance,
//! each with its count of malformed codes. This is what the lake feeds (one person's codes
//! at a time would do too; the batch form keeps the order and the counts in one place).

use crate::charlson::{self, CharlsonMapping, CharlsonWeights};
use crate::cms::{self, CmsWeights};
use crate::code::{CodeSystem, Event, Malformed};
use crate::{efi, elixhauser, hfrs};
use std::collections::HashMap;

/// The indices trent computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Charlson comorbidity index (ICD-10)
    Charlson,
    /// Elixhauser / van Walraven (ICD-10)
    Elixhauser,
    /// Hospital Frailty Risk Score (ICD-10)
    Hfrs,
    /// electronic Frailty Index (SNOMED CT, ICD-10, BNF)
    Efi,
    /// Cambridge Multimorbidity Score (SNOMED CT, ICD-10, BNF)
    Cms,
}

impl Index {
    /// All indices, in documentation order.
    pub const ALL: [Index; 5] = [
        Index::Charlson,
        Index::Elixhauser,
        Index::Hfrs,
        Index::Efi,
        Index::Cms,
    ];

    /// Parse `charlson|elixhauser|hfrs|efi|cms`.
    pub fn parse(s: &str) -> Option<Index> {
        Index::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Index::Charlson => "charlson",
            Index::Elixhauser => "elixhauser",
            Index::Hfrs => "hfrs",
            Index::Efi => "efi",
            Index::Cms => "cms",
        }
    }

    /// True for the hospital indices, which read ICD-10 only.
    pub fn icd10_only(self) -> bool {
        matches!(self, Index::Charlson | Index::Elixhauser | Index::Hfrs)
    }

    /// True when the index has bands (`hfrs`, `efi`).
    pub fn has_band(self) -> bool {
        matches!(self, Index::Hfrs | Index::Efi)
    }

    /// Condition column names, in output order.
    pub fn columns(self) -> Vec<&'static str> {
        match self {
            Index::Charlson => charlson::KEYS.to_vec(),
            Index::Elixhauser => elixhauser::KEYS.to_vec(),
            Index::Hfrs => hfrs::table().iter().map(|(c, _)| *c).collect(),
            Index::Efi => efi::DEFICITS.iter().map(|d| d.key).collect(),
            Index::Cms => cms::CONDITIONS.iter().map(|c| c.key).collect(),
        }
    }

    /// Format a score as the output file writes it (integers for Charlson and
    /// Elixhauser, one decimal for HFRS, four for eFI, two for CMS).
    pub fn format_score(self, s: f64) -> String {
        match self {
            Index::Charlson | Index::Elixhauser => format!("{}", s as i64),
            Index::Hfrs => format!("{s:.1}"),
            Index::Efi => format!("{s:.4}"),
            Index::Cms => format!("{s:.2}"),
        }
    }
}

/// Choices that apply to some indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    /// Charlson code list (default Quan 2005)
    pub charlson_mapping: CharlsonMapping,
    /// Charlson weights (default Charlson 1987; SHMI with the SHMI mapping)
    pub charlson_weights: CharlsonWeights,
    /// CMS weights (default general outcome)
    pub cms_weights: CmsWeights,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            charlson_mapping: CharlsonMapping::Quan,
            charlson_weights: CharlsonWeights::Charlson1987,
            cms_weights: CmsWeights::General,
        }
    }
}

/// One id's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonScore {
    /// the id as given
    pub id: String,
    /// index score
    pub score: f64,
    /// band, for indices that have one
    pub band: Option<&'static str>,
    /// one flag per `Index::columns()` entry
    pub flags: Vec<bool>,
    /// malformed codes of this id
    pub malformed: Vec<Malformed>,
    /// rows whose code system the index does not read (e.g. SNOMED rows for Charlson)
    pub other_system: usize,
}

/// Score one person's events.
pub fn score_person(
    index: Index,
    cfg: &IndexConfig,
    id: &str,
    events: &[Event<'_>],
) -> PersonScore {
    let mut other_system = 0;
    let icd: Vec<&str> = if index.icd10_only() {
        events
            .iter()
            .filter(|e| {
                let ok = e.system == CodeSystem::Icd10;
                if !ok {
                    other_system += 1;
                }
                ok
            })
            .map(|e| e.code)
            .collect()
    } else {
        Vec::new()
    };
    let (score, band, flags, malformed) = match index {
        Index::Charlson => {
            let r = charlson::charlson(icd, cfg.charlson_mapping, cfg.charlson_weights);
            (r.score as f64, None, r.conditions, r.malformed)
        }
        Index::Elixhauser => {
            let r = elixhauser::elixhauser(icd);
            (r.score as f64, None, r.conditions, r.malformed)
        }
        Index::Hfrs => {
            let r = hfrs::hfrs(icd);
            (r.score, Some(r.band), r.categories, r.malformed)
        }
        Index::Efi => {
            let r = efi::efi(events);
            (r.score, Some(r.band), r.flags, r.malformed)
        }
        Index::Cms => {
            let r = cms::cms(events, cfg.cms_weights);
            (r.score, None, r.conditions, r.malformed)
        }
    };
    PersonScore {
        id: id.to_string(),
        score,
        band,
        flags,
        malformed,
        other_system,
    }
}

/// Score (id, event) rows: one `PersonScore` per distinct id, in order of first
/// appearance.
pub fn score_rows<'a>(
    index: Index,
    cfg: &IndexConfig,
    rows: impl IntoIterator<Item = (&'a str, Event<'a>)>,
) -> Vec<PersonScore> {
    let mut order: Vec<(&str, Vec<Event<'a>>)> = Vec::new();
    let mut pos: HashMap<&str, usize> = HashMap::new();
    for (id, ev) in rows {
        let i = *pos.entry(id).or_insert_with(|| {
            order.push((id, Vec::new()));
            order.len() - 1
        });
        order[i].1.push(ev);
    }
    order
        .iter()
        .map(|(id, evs)| score_person(index, cfg, id, evs))
        .collect()
}

/// Score (id, ICD-10 code) rows (the hospital indices' usual input).
pub fn score_icd10_rows<'a>(
    index: Index,
    cfg: &IndexConfig,
    rows: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<PersonScore> {
    score_rows(
        index,
        cfg,
        rows.into_iter()
            .map(|(id, c)| (id, Event::new(CodeSystem::Icd10, c))),
    )
}

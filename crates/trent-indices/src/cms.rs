//! The Cambridge Multimorbidity Score (Payne et al., CMAJ 2020;192:E107): 20 conditions
//! with general-outcome weights (Table 2; the average of the standardised weights for
//! primary care consultations, unplanned admission and death) and the 1-year mortality
//! weights (Appendix). The consultation- and admission-specific weights are not shipped
//! (not verified here; `docs/indices.md`).
//!
//! The paper defines conditions with the Cambridge code lists (Read v2 plus prescription
//! rules, CPRD@Cambridge v1.1): some are "ever recorded", some need a recent code or
//! repeated prescriptions. trent's translation over SNOMED CT, ICD-10 and BNF:
//!
//! - ever recorded (any date): alcohol problems, atrial fibrillation, chronic kidney
//!   disease (stage 3-5), connective tissue disorder, COPD, coronary heart disease,
//!   dementia, diabetes, hearing loss, heart failure, hypertension, stroke/TIA;
//! - cancer: a code within 5 years (1,826 days);
//! - anxiety/depression: a code within 365 days, or ≥ 4 antidepressant/anxiolytic issues
//!   (BNF 0403, 040102) within 365 days;
//! - asthma: a code ever and an asthma medicine issue (BNF 0301, 0302) within 365 days;
//! - epilepsy: a code ever and an antiepileptic issue (BNF 0408) within 365 days;
//! - irritable bowel syndrome: a code ever, or ≥ 4 antispasmodic issues (BNF 010201)
//!   within 365 days;
//! - schizophrenia/bipolar: a code ever, or a lithium issue (BNF 0402030K0) within 365
//!   days;
//! - constipation: ≥ 4 laxative issues (BNF 0106) within 365 days;
//! - painful condition: ≥ 4 analgesic issues (BNF 0407) within 365 days, or ≥ 4
//!   antiepileptic issues (BNF 0408) within 365 days with no epilepsy code.
//!
//! Each BNF event is one prescription issue. Undated events count as inside every window.

use crate::code::{CodeSystem, Event, Malformed};
use crate::codelist::SnomedIcd10;

/// One CMS condition as trent codes it.
#[derive(Debug, Clone, Copy)]
pub struct CmsCondition {
    /// short key (output column)
    pub key: &'static str,
    /// label in Payne 2020 Table 2
    pub label: &'static str,
    /// general-outcome weight (Payne 2020 Table 2)
    pub general: f64,
    /// 1-year mortality weight (Payne 2020 Appendix)
    pub mortality: f64,
    /// SNOMED CT concept ids (exact)
    pub snomed: &'static [&'static str],
    /// ICD-10 prefixes
    pub icd10: &'static [&'static str],
}

const fn c(
    key: &'static str,
    label: &'static str,
    general: f64,
    mortality: f64,
    snomed: &'static [&'static str],
    icd10: &'static [&'static str],
) -> CmsCondition {
    CmsCondition {
        key,
        label,
        general,
        mortality,
        snomed,
        icd10,
    }
}

/// The 20 conditions.
pub const CONDITIONS: [CmsCondition; 20] = [
    c(
        "alcohol",
        "Alcohol problems",
        0.65,
        12.72,
        &["7200002"],
        &["F10", "K70", "Z502", "Z714", "Z721"],
    ),
    c(
        "anxiety_depression",
        "Anxiety or depression",
        0.50,
        7.04,
        &["35489007", "197480006"],
        &["F32", "F33", "F341", "F40", "F41"],
    ),
    c(
        "atrial_fibrillation",
        "Atrial fibrillation",
        1.34,
        22.14,
        &["49436004"],
        &["I48"],
    ),
    c(
        "cancer",
        "Cancer (new diagnosis in last 5 years)",
        1.53,
        62.0,
        &["363346000"],
        &["C"],
    ),
    c(
        "chronic_kidney_disease",
        "Chronic kidney disease",
        0.53,
        16.61,
        &["709044004"],
        &["N183", "N184", "N185"],
    ),
    c(
        "connective_tissue",
        "Connective tissue disorder",
        0.43,
        -0.39,
        &["69896004"],
        &["M05", "M06", "M30", "M31", "M32", "M33", "M34", "M35"],
    ),
    c(
        "copd",
        "COPD",
        1.46,
        42.50,
        &["13645005"],
        &["J41", "J42", "J43", "J44"],
    ),
    c(
        "coronary_heart_disease",
        "Coronary heart disease",
        0.49,
        4.22,
        &["53741008", "414545008", "22298006"],
        &["I20", "I21", "I22", "I23", "I24", "I25"],
    ),
    c(
        "dementia",
        "Dementia",
        2.50,
        124.42,
        &["52448006"],
        &["F00", "F01", "F02", "F03", "G30"],
    ),
    c(
        "diabetes",
        "Diabetes",
        0.75,
        10.23,
        &["44054006", "46635009", "73211009"],
        &["E10", "E11", "E12", "E13", "E14"],
    ),
    c(
        "epilepsy",
        "Epilepsy (currently treated)",
        0.92,
        18.26,
        &["84757009"],
        &["G40", "G41"],
    ),
    c(
        "hearing_loss",
        "Hearing loss",
        0.09,
        -3.94,
        &["15188001"],
        &["H90", "H91"],
    ),
    c(
        "heart_failure",
        "Heart failure",
        1.18,
        43.47,
        &["84114007"],
        &["I50", "I110", "I130", "I132"],
    ),
    c(
        "ibs",
        "Irritable bowel syndrome",
        0.21,
        -1.33,
        &["10743008"],
        &["K58"],
    ),
    c(
        "schizophrenia_bipolar",
        "Schizophrenia or bipolar affective disorder",
        0.64,
        7.20,
        &["58214004", "13746004"],
        &[
            "F20", "F22", "F23", "F24", "F25", "F28", "F29", "F30", "F31",
        ],
    ),
    c(
        "stroke_tia",
        "Stroke or transient ischaemic attack",
        0.80,
        20.63,
        &["230690007", "266257000"],
        &["G45", "I60", "I61", "I62", "I63", "I64", "I69"],
    ),
    c(
        "asthma",
        "Asthma (currently treated)",
        0.19,
        -2.73,
        &["195967001"],
        &["J45", "J46"],
    ),
    c(
        "hypertension",
        "Hypertension",
        0.08,
        -2.09,
        &["38341003"],
        &["I10", "I11", "I12", "I13", "I15"],
    ),
    c(
        "constipation",
        "Constipation (treated)",
        1.12,
        35.42,
        &[],
        &[],
    ),
    c(
        "painful_condition",
        "Painful condition",
        0.92,
        16.46,
        &[],
        &[],
    ),
];

/// Which CMS weights to sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsWeights {
    /// general-outcome weights
    General,
    /// 1-year mortality weights
    Mortality,
}

/// A person's CMS.
#[derive(Debug, Clone, PartialEq)]
pub struct CmsResult {
    /// weighted score, rounded to two decimals
    pub score: f64,
    /// one flag per `CONDITIONS` entry
    pub conditions: Vec<bool>,
    /// codes malformed for their system
    pub malformed: Vec<Malformed>,
}

const YEAR: u32 = 365;
const FIVE_YEARS: u32 = 1826;

/// "Four or more prescriptions in the year" (Payne 2020's medication-defined conditions):
/// the most issues any rule counts. Counts above it change no result, so a caller that
/// caches results by profile may cap each medicine's issue count here.
pub const REPEATED_RX: usize = 4;

fn idx(key: &str) -> usize {
    CONDITIONS
        .iter()
        .position(|c| c.key == key)
        .expect("CMS key exists")
}

/// CMS of one person's events.
pub fn cms(events: &[Event<'_>], weights: CmsWeights) -> CmsResult {
    static INDEX: std::sync::OnceLock<SnomedIcd10> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        SnomedIcd10::new(
            CONDITIONS
                .iter()
                .map(|c| (c.key, c.label, c.snomed, c.icd10)),
        )
    });
    let mut hits = Vec::new();
    let n = CONDITIONS.len();
    let mut coded_ever = vec![false; n];
    let mut coded_year = vec![false; n];
    let mut coded_5y = vec![false; n];
    let (mut antidep, mut asthma_rx, mut aed, mut antispas, mut lithium, mut lax, mut analg) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut malformed = Vec::new();
    for e in events {
        let code = match e.system.normalise(e.code) {
            Ok(c) => c,
            Err(m) => {
                malformed.push(m);
                continue;
            }
        };
        match e.system {
            CodeSystem::Snomed | CodeSystem::Icd10 => {
                hits.clear();
                if e.system == CodeSystem::Snomed {
                    hits.extend_from_slice(index.snomed(&code));
                } else {
                    index.icd10(&code, &mut hits);
                    // non-melanoma skin cancer is not "cancer"
                    hits.retain(|&i| !(CONDITIONS[i].key == "cancer" && code.starts_with("C44")));
                }
                for &i in &hits {
                    coded_ever[i] = true;
                    coded_year[i] |= e.within(YEAR);
                    coded_5y[i] |= e.within(FIVE_YEARS);
                }
            }
            CodeSystem::Bnf => {
                if !e.within(YEAR) {
                    continue;
                }
                let s = code.as_str();
                if s.starts_with("0403") || s.starts_with("040102") {
                    antidep += 1;
                }
                if s.starts_with("0301") || s.starts_with("0302") {
                    asthma_rx += 1;
                }
                if s.starts_with("0408") {
                    aed += 1;
                }
                if s.starts_with("010201") {
                    antispas += 1;
                }
                if s.starts_with("0402030K0") {
                    lithium += 1;
                }
                if s.starts_with("0106") {
                    lax += 1;
                }
                if s.starts_with("0407") {
                    analg += 1;
                }
            }
        }
    }
    let mut f = coded_ever.clone();
    f[idx("cancer")] = coded_5y[idx("cancer")];
    let ad = idx("anxiety_depression");
    f[ad] = coded_year[ad] || antidep >= REPEATED_RX;
    let a = idx("asthma");
    f[a] = coded_ever[a] && asthma_rx >= 1;
    let ep = idx("epilepsy");
    f[ep] = coded_ever[ep] && aed >= 1;
    let ib = idx("ibs");
    f[ib] = coded_ever[ib] || antispas >= REPEATED_RX;
    let sb = idx("schizophrenia_bipolar");
    f[sb] = coded_ever[sb] || lithium >= 1;
    f[idx("constipation")] = lax >= REPEATED_RX;
    f[idx("painful_condition")] = analg >= REPEATED_RX || (aed >= REPEATED_RX && !coded_ever[ep]);
    let hundredths: i64 = CONDITIONS
        .iter()
        .zip(&f)
        .filter(|(_, p)| **p)
        .map(|(c, _)| {
            let w = match weights {
                CmsWeights::General => c.general,
                CmsWeights::Mortality => c.mortality,
            };
            (w * 100.0).round() as i64
        })
        .sum();
    CmsResult {
        score: hundredths as f64 / 100.0,
        conditions: f,
        malformed,
    }
}

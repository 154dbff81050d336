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

/// The BNF classes the prescription rules count, bit k of [`CmsCode::rx`].
const RX_CLASSES: [&[&str]; 7] = [
    &["0403", "040102"], // antidepressants and anxiolytics
    &["0301", "0302"],   // asthma medicines
    &["0408"],           // antiepileptics
    &["010201"],         // antispasmodics
    &["0402030K0"],      // lithium
    &["0106"],           // laxatives
    &["0407"],           // analgesics
];
const ANTIDEP: usize = 0;
const ASTHMA_RX: usize = 1;
const AED: usize = 2;
const ANTISPAS: usize = 3;
const LITHIUM: usize = 4;
const LAX: usize = 5;
const ANALG: usize = 6;

/// What one normalised code contributes to the CMS, worked out once per distinct code by
/// [`code_facts`] and added per event by [`CmsAcc::add`] (which is all [`cms`] does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CmsCode {
    /// conditions a SNOMED CT or ICD-10 code records (bit k: `CONDITIONS[k]`)
    pub conditions: u32,
    /// prescription classes a BNF code belongs to (bit k: one of the rules' classes)
    pub rx: u8,
}

fn index() -> &'static SnomedIcd10 {
    static INDEX: std::sync::OnceLock<SnomedIcd10> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        SnomedIcd10::new(
            CONDITIONS
                .iter()
                .map(|c| (c.key, c.label, c.snomed, c.icd10)),
        )
    })
}

/// [`CmsCode`] of a code already normalised for its system.
pub fn code_facts(system: CodeSystem, code: &str) -> CmsCode {
    let mut f = CmsCode::default();
    match system {
        CodeSystem::Snomed | CodeSystem::Icd10 => {
            let mut hits = Vec::new();
            if system == CodeSystem::Snomed {
                hits.extend_from_slice(index().snomed(code));
            } else {
                index().icd10(code, &mut hits);
                // non-melanoma skin cancer is not "cancer"
                hits.retain(|&i| !(CONDITIONS[i].key == "cancer" && code.starts_with("C44")));
            }
            for &i in &hits {
                f.conditions |= 1 << i;
            }
        }
        CodeSystem::Bnf => {
            for (k, prefixes) in RX_CLASSES.iter().enumerate() {
                if prefixes.iter().any(|p| code.starts_with(p)) {
                    f.rx |= 1 << k;
                }
            }
        }
    }
    f
}

/// One person's CMS being added up, event by event.
#[derive(Debug, Clone, Copy, Default)]
pub struct CmsAcc {
    ever: u32,
    year: u32,
    five_years: u32,
    /// issues within the year per prescription class
    issues: [u32; 7],
}

/// Positions of the conditions the rules single out.
struct Keys {
    cancer: usize,
    anxiety_depression: usize,
    asthma: usize,
    epilepsy: usize,
    ibs: usize,
    schizophrenia_bipolar: usize,
    constipation: usize,
    painful_condition: usize,
}

fn keys() -> &'static Keys {
    static K: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    K.get_or_init(|| Keys {
        cancer: idx("cancer"),
        anxiety_depression: idx("anxiety_depression"),
        asthma: idx("asthma"),
        epilepsy: idx("epilepsy"),
        ibs: idx("ibs"),
        schizophrenia_bipolar: idx("schizophrenia_bipolar"),
        constipation: idx("constipation"),
        painful_condition: idx("painful_condition"),
    })
}

/// Weights in hundredths (the sum is taken in hundredths), per [`CmsWeights`].
fn hundredths(weights: CmsWeights) -> &'static [i64; 20] {
    static G: std::sync::OnceLock<[i64; 20]> = std::sync::OnceLock::new();
    static M: std::sync::OnceLock<[i64; 20]> = std::sync::OnceLock::new();
    let make = |w: fn(&CmsCondition) -> f64| {
        std::array::from_fn(|k| (w(&CONDITIONS[k]) * 100.0).round() as i64)
    };
    match weights {
        CmsWeights::General => G.get_or_init(|| make(|c| c.general)),
        CmsWeights::Mortality => M.get_or_init(|| make(|c| c.mortality)),
    }
}

impl CmsAcc {
    /// `issues` events of a code, the most recent `days_ago` before the index date
    /// (`days_ago` as [`Event::days_ago`]). Several issues of a medicine count as one
    /// event each only when all are inside the year, as they are when `days_ago` is the
    /// most recent of issues all within the year.
    pub fn add(&mut self, c: &CmsCode, days_ago: Option<u32>, issues: u32) {
        let within = |days: u32| days_ago.is_none_or(|d| d <= days);
        self.ever |= c.conditions;
        if within(YEAR) {
            self.year |= c.conditions;
            let mut rx = c.rx;
            while rx != 0 {
                let k = rx.trailing_zeros() as usize;
                self.issues[k] += issues;
                rx &= rx - 1;
            }
        }
        if within(FIVE_YEARS) {
            self.five_years |= c.conditions;
        }
    }

    /// The conditions present (bit k: `CONDITIONS[k]`) by the rules in the module's docs.
    pub fn conditions(&self) -> u32 {
        let k = keys();
        let rx = |c: usize| self.issues[c] as usize;
        let bit = |m: u32, i: usize| m >> i & 1 == 1;
        let mut f = self.ever;
        let mut set = |i: usize, on: bool| {
            f = (f & !(1 << i)) | (u32::from(on) << i);
        };
        set(k.cancer, bit(self.five_years, k.cancer));
        set(
            k.anxiety_depression,
            bit(self.year, k.anxiety_depression) || rx(ANTIDEP) >= REPEATED_RX,
        );
        set(k.asthma, bit(self.ever, k.asthma) && rx(ASTHMA_RX) >= 1);
        set(k.epilepsy, bit(self.ever, k.epilepsy) && rx(AED) >= 1);
        set(k.ibs, bit(self.ever, k.ibs) || rx(ANTISPAS) >= REPEATED_RX);
        set(
            k.schizophrenia_bipolar,
            bit(self.ever, k.schizophrenia_bipolar) || rx(LITHIUM) >= 1,
        );
        set(k.constipation, rx(LAX) >= REPEATED_RX);
        set(
            k.painful_condition,
            rx(ANALG) >= REPEATED_RX || (rx(AED) >= REPEATED_RX && !bit(self.ever, k.epilepsy)),
        );
        f
    }

    /// The weighted score, rounded to two decimals.
    pub fn score(&self, weights: CmsWeights) -> f64 {
        let w = hundredths(weights);
        let mut f = self.conditions();
        let mut sum = 0i64;
        while f != 0 {
            sum += w[f.trailing_zeros() as usize];
            f &= f - 1;
        }
        sum as f64 / 100.0
    }
}

/// CMS of one person's events.
pub fn cms(events: &[Event<'_>], weights: CmsWeights) -> CmsResult {
    let mut acc = CmsAcc::default();
    let mut malformed = Vec::new();
    for e in events {
        match e.system.normalise(e.code) {
            Ok(c) => acc.add(&code_facts(e.system, &c), e.days_ago, 1),
            Err(m) => malformed.push(m),
        }
    }
    let f = acc.conditions();
    CmsResult {
        score: acc.score(weights),
        conditions: (0..CONDITIONS.len()).map(|k| f >> k & 1 == 1).collect(),
        malformed,
    }
}

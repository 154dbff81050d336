//! The electronic Frailty Index (Clegg et al., Age Ageing 2016;45:353, Table 1): 36
//! deficits; score = deficits present / 36; bands fit 0-0.12, mild >0.12-0.24, moderate
//! >0.24-0.36, severe >0.36.
//!
//! The published eFI is defined on Read v2 / CTV3 codes (2,171 of them). trent's GP data
//! is SNOMED CT, and hospital data ICD-10, so each deficit here is **trent's translation**:
//! a small set of well-known SNOMED CT concept ids (every condition the synthetic GP
//! record writes — `trent_model::codes::CONDITIONS` — maps where the eFI has the deficit)
//! plus ICD-10 prefixes where the deficit is a diagnosis. SNOMED matching is on the exact
//! concept id (no hierarchy is shipped), so a descendant concept not listed is not
//! matched; ICD-10 matches as prefixes. Deficits with no SNOMED concept listed are
//! reached through ICD-10 only. Polypharmacy follows the eFI's definition of five or more
//! distinct medicines: five or more distinct BNF chemical substances (first 9 characters)
//! issued within 365 days of the index date. `docs/indices.md` tabulates every mapping.

use crate::code::{CodeSystem, Event, Malformed};
use crate::codelist::SnomedIcd10;

/// One eFI deficit as trent codes it.
#[derive(Debug, Clone, Copy)]
pub struct Deficit {
    /// short key (output column)
    pub key: &'static str,
    /// the deficit's name in Clegg 2016 Table 1
    pub label: &'static str,
    /// SNOMED CT concept ids (exact match)
    pub snomed: &'static [&'static str],
    /// ICD-10 prefixes (no dot)
    pub icd10: &'static [&'static str],
}

const fn d(
    key: &'static str,
    label: &'static str,
    snomed: &'static [&'static str],
    icd10: &'static [&'static str],
) -> Deficit {
    Deficit {
        key,
        label,
        snomed,
        icd10,
    }
}

/// The 36 deficits in Clegg 2016 Table 1 order. Polypharmacy (`polypharmacy`) is also
/// reached by the BNF rule above.
pub const DEFICITS: [Deficit; 36] = [
    d("activity_limitation", "Activity limitation", &[], &["Z736"]),
    d(
        "anaemia",
        "Anaemia and haematinic deficiency",
        &["271737000", "87522002"],
        &[
            "D50", "D51", "D52", "D53", "D55", "D56", "D57", "D58", "D59", "D60", "D61", "D62",
            "D63", "D64",
        ],
    ),
    d(
        "arthritis",
        "Arthritis",
        &["3723001", "396275006", "69896004"],
        &[
            "M05", "M06", "M07", "M08", "M10", "M13", "M15", "M16", "M17", "M18", "M19",
        ],
    ),
    d(
        "atrial_fibrillation",
        "Atrial fibrillation",
        &["49436004"],
        &["I48"],
    ),
    d(
        "cerebrovascular_disease",
        "Cerebrovascular disease",
        &["230690007", "266257000"],
        &[
            "G45", "G46", "I60", "I61", "I62", "I63", "I64", "I65", "I66", "I67", "I68", "I69",
        ],
    ),
    d(
        "chronic_kidney_disease",
        "Chronic kidney disease",
        &["709044004", "90688005"],
        &["N18"],
    ),
    d(
        "diabetes",
        "Diabetes",
        &["44054006", "46635009", "73211009"],
        &["E10", "E11", "E12", "E13", "E14"],
    ),
    d("dizziness", "Dizziness", &["404640003"], &["R42"]),
    d("dyspnoea", "Dyspnoea", &["267036007"], &["R060"]),
    d(
        "falls",
        "Falls",
        &["161898004"],
        &[
            "R296", "W00", "W01", "W02", "W03", "W04", "W05", "W06", "W07", "W08", "W09", "W10",
            "W11", "W12", "W13", "W14", "W15", "W16", "W17", "W18", "W19",
        ],
    ),
    d(
        "foot_problems",
        "Foot problems",
        &[],
        &["M201", "M202", "M203", "M204", "L600", "L84"],
    ),
    d(
        "fragility_fracture",
        "Fragility fracture",
        &["5913000"],
        &[
            "S220", "S221", "S320", "S327", "S422", "S525", "S526", "S720", "S721", "S722", "M80",
        ],
    ),
    d(
        "hearing_impairment",
        "Hearing impairment",
        &["15188001"],
        &["H90", "H91"],
    ),
    d(
        "heart_failure",
        "Heart failure",
        &["84114007"],
        &["I50", "I110", "I130", "I132"],
    ),
    d(
        "heart_valve_disease",
        "Heart valve disease",
        &["368009"],
        &[
            "I05", "I06", "I07", "I08", "I34", "I35", "I36", "I37", "I38", "I39",
        ],
    ),
    d("housebound", "Housebound", &["160689007"], &[]),
    d(
        "hypertension",
        "Hypertension",
        &["38341003"],
        &["I10", "I11", "I12", "I13", "I15"],
    ),
    d(
        "hypotension_syncope",
        "Hypotension/syncope",
        &["45007003", "271594007"],
        &["I95", "R55"],
    ),
    d(
        "ischaemic_heart_disease",
        "Ischaemic heart disease",
        &["53741008", "414545008", "22298006"],
        &["I20", "I21", "I22", "I23", "I24", "I25"],
    ),
    d(
        "memory_cognitive",
        "Memory and cognitive problems",
        &["52448006", "386807006"],
        &["F00", "F01", "F02", "F03", "G30", "G31", "R41"],
    ),
    d(
        "mobility_transfer",
        "Mobility and transfer problems",
        &[],
        &["R26", "Z740", "Z993"],
    ),
    d(
        "osteoporosis",
        "Osteoporosis",
        &["64859006"],
        &["M80", "M81", "M82"],
    ),
    d(
        "parkinsonism_tremor",
        "Parkinsonism and tremor",
        &["49049000", "26079004"],
        &["G20", "G21", "G22", "R251"],
    ),
    d(
        "peptic_ulcer",
        "Peptic ulcer",
        &["13200003"],
        &["K25", "K26", "K27", "K28"],
    ),
    d(
        "peripheral_vascular_disease",
        "Peripheral vascular disease",
        &["400047006"],
        &["I70", "I73", "I74"],
    ),
    d("polypharmacy", "Polypharmacy", &[], &[]),
    d(
        "requirement_for_care",
        "Requirement for care",
        &[],
        &["Z741", "Z742", "Z743", "Z748", "Z749", "Z636"],
    ),
    d(
        "respiratory_disease",
        "Respiratory disease",
        &["13645005", "195967001"],
        &[
            "J40", "J41", "J42", "J43", "J44", "J45", "J46", "J47", "J84", "J961",
        ],
    ),
    d(
        "skin_ulcer",
        "Skin ulcer",
        &[],
        &["L89", "L97", "L984", "I830", "I832"],
    ),
    d(
        "sleep_disturbance",
        "Sleep disturbance",
        &["193462001"],
        &["G47", "F51"],
    ),
    d(
        "social_vulnerability",
        "Social vulnerability",
        &["105529008"],
        &["Z602", "Z604", "Z590", "Z591"],
    ),
    d(
        "thyroid_disease",
        "Thyroid disease",
        &["40930008", "34486009"],
        &["E00", "E01", "E02", "E03", "E04", "E05", "E06", "E07"],
    ),
    d(
        "urinary_incontinence",
        "Urinary incontinence",
        &["165232002"],
        &["R32", "N393", "N394"],
    ),
    d(
        "urinary_system_disease",
        "Urinary system disease",
        &["68566005"],
        &["N20", "N21", "N30", "N31", "N32", "N390", "N40"],
    ),
    d(
        "visual_impairment",
        "Visual impairment",
        &["397540003", "193570009"],
        &["H25", "H26", "H353", "H54"],
    ),
    d(
        "weight_loss_anorexia",
        "Weight loss and anorexia",
        &["89362005", "79890006"],
        &["R630", "R634", "R64"],
    ),
];

/// Index of the polypharmacy deficit.
pub const POLYPHARMACY: usize = 25;
/// Distinct medicines (BNF chemical substances) that make polypharmacy.
pub const POLYPHARMACY_MIN: usize = 5;
/// Look-back for polypharmacy, days.
pub const POLYPHARMACY_DAYS: u32 = 365;

/// eFI band: fit ≤ 0.12 < mild ≤ 0.24 < moderate ≤ 0.36 < severe.
pub fn band(deficits: usize) -> &'static str {
    // Compare on counts to avoid floating point at the boundaries (0.12 × 36 = 4.32, so
    // fit is 0-4 deficits, mild 5-8, moderate 9-12, severe 13+).
    let x = deficits * 100;
    if x <= 12 * 36 {
        "fit"
    } else if x <= 24 * 36 {
        "mild"
    } else if x <= 36 * 36 {
        "moderate"
    } else {
        "severe"
    }
}

/// A person's eFI.
#[derive(Debug, Clone, PartialEq)]
pub struct EfiResult {
    /// deficits present / 36
    pub score: f64,
    /// number of deficits present
    pub deficits: usize,
    /// `fit`, `mild`, `moderate` or `severe`
    pub band: &'static str,
    /// one flag per `DEFICITS` entry
    pub flags: Vec<bool>,
    /// codes that were malformed for their system
    pub malformed: Vec<Malformed>,
}

/// What one normalised code contributes to the eFI, worked out once per distinct code by
/// [`code_facts`] and added per event by [`EfiAcc::add`] (which is all [`efi`] does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EfiCode {
    /// deficits a SNOMED CT or ICD-10 code records (bit k: `DEFICITS[k]`)
    pub deficits: u64,
    /// a BNF code's chemical substance (its first 9 characters)
    pub chemical: Option<[u8; 9]>,
}

fn index() -> &'static SnomedIcd10 {
    static INDEX: std::sync::OnceLock<SnomedIcd10> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        SnomedIcd10::new(DEFICITS.iter().map(|d| (d.key, d.label, d.snomed, d.icd10)))
    })
}

/// [`EfiCode`] of a code already normalised for its system.
pub fn code_facts(system: CodeSystem, code: &str) -> EfiCode {
    let mut f = EfiCode::default();
    match system {
        CodeSystem::Snomed => {
            for &i in index().snomed(code) {
                f.deficits |= 1 << i;
            }
        }
        CodeSystem::Icd10 => {
            let mut hits = Vec::new();
            index().icd10(code, &mut hits);
            for &i in &hits {
                f.deficits |= 1 << i;
            }
        }
        CodeSystem::Bnf => {
            f.chemical = code.as_bytes().get(..9).and_then(|c| c.try_into().ok());
        }
    }
    f
}

/// One person's eFI being added up, event by event.
#[derive(Debug, Clone, Default)]
pub struct EfiAcc {
    deficits: u64,
    drugs: Vec<[u8; 9]>,
}

impl EfiAcc {
    /// Start again for the next person (keeping the allocation).
    pub fn clear(&mut self) {
        self.deficits = 0;
        self.drugs.clear();
    }

    /// An event of a code (`days_ago` as [`Event::days_ago`]).
    pub fn add(&mut self, c: &EfiCode, days_ago: Option<u32>) {
        self.deficits |= c.deficits;
        if let Some(chem) = c.chemical
            && days_ago.is_none_or(|d| d <= POLYPHARMACY_DAYS)
            && !self.drugs.contains(&chem)
        {
            self.drugs.push(chem);
        }
    }

    /// The deficits present (bit k: `DEFICITS[k]`), polypharmacy included.
    pub fn deficits(&self) -> u64 {
        let poly = u64::from(self.drugs.len() >= POLYPHARMACY_MIN) << POLYPHARMACY;
        self.deficits | poly
    }

    /// The score (deficits / 36) and the number of deficits.
    pub fn score(&self) -> (f64, usize) {
        let n = self.deficits().count_ones() as usize;
        (n as f64 / 36.0, n)
    }
}

/// eFI of one person's events (SNOMED CT, ICD-10 and BNF; BNF rows are prescription
/// issues).
pub fn efi(events: &[Event<'_>]) -> EfiResult {
    let mut acc = EfiAcc::default();
    let mut malformed = Vec::new();
    for e in events {
        match e.system.normalise(e.code) {
            Ok(c) => acc.add(&code_facts(e.system, &c), e.days_ago),
            Err(m) => malformed.push(m),
        }
    }
    let (score, n) = acc.score();
    let d = acc.deficits();
    EfiResult {
        score,
        deficits: n,
        band: band(n),
        flags: (0..DEFICITS.len()).map(|k| d >> k & 1 == 1).collect(),
        malformed,
    }
}

//! Segmentation: the Bridges to Health segments, eFI frailty bands and rising risk.
//!
//! Bridges to Health (Lynn et al., Milbank Quarterly 2007) divides a population by what
//! its members need from services, and each person belongs to one segment: the most
//! demanding that applies, in the order below. The lake has no palliative care register
//! or disability register, so some segments are found from proxies; each rule says which.
//!
//! | segment | rule (features at D) |
//! | --- | --- |
//! | end of life | cancer with ≥ 2 emergency admissions in the year, or severe frailty (eFI) at 75+ with ≥ 2 (proxy for a palliative care register) |
//! | frailty | 65+ with moderate or severe eFI, a Hospital Frailty Risk Score ≥ 5, dementia, or in a care home |
//! | complex multimorbidity | ≥ 4 long-term conditions, or ≥ 2 with heart failure, COPD or CKD and an emergency admission in the year ("limited reserve, serious exacerbations") |
//! | stable but serious disability | learning disability, serious mental illness, stroke with social care, or social care under 65 |
//! | chronic conditions | ≥ 1 long-term condition |
//! | maternal and infant | under 1, or a maternity admission in the year |
//! | acutely ill | an emergency admission in the year or an A&E attendance in 90 days |
//! | healthy | none of the above |
//!
//! Rising risk (see [`rising_risk`]): not in the top 5% of risk now, but either in the next
//! 15% (the 80th to 95th centile) or with a risk at least twice what the same model gave a
//! year earlier — the people a team can still keep out of the top band.

use crate::features::{Column, Features};

/// A Bridges to Health segment, most demanding first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// short period of decline before dying
    EndOfLife,
    /// long dwindling: frailty and dementia
    Frailty,
    /// limited reserve and serious exacerbations
    ComplexMultimorbidity,
    /// stable but serious disability
    Disability,
    /// chronic conditions, normal function
    ChronicConditions,
    /// maternal and infant health
    MaternalInfant,
    /// acutely ill, mostly curable
    AcutelyIll,
    /// healthy
    Healthy,
}

impl Segment {
    /// All, most demanding first.
    pub const ALL: [Segment; 8] = [
        Segment::EndOfLife,
        Segment::Frailty,
        Segment::ComplexMultimorbidity,
        Segment::Disability,
        Segment::ChronicConditions,
        Segment::MaternalInfant,
        Segment::AcutelyIll,
        Segment::Healthy,
    ];
    /// Stable name (snake case).
    pub fn name(self) -> &'static str {
        match self {
            Segment::EndOfLife => "end_of_life",
            Segment::Frailty => "frailty",
            Segment::ComplexMultimorbidity => "complex_multimorbidity",
            Segment::Disability => "disability",
            Segment::ChronicConditions => "chronic_conditions",
            Segment::MaternalInfant => "maternal_infant",
            Segment::AcutelyIll => "acutely_ill",
            Segment::Healthy => "healthy",
        }
    }
    /// Parse a [`Segment::name`].
    pub fn parse(s: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// eFI bands by the `efi_band` feature (Clegg 2016: fit ≤ 0.12, mild ≤ 0.24, moderate ≤ 0.36, severe).
pub const EFI_BANDS: [&str; 4] = ["fit", "mild", "moderate", "severe"];

/// The feature columns the rules read, found by name once (not once a person).
struct Cols<'a> {
    age: &'a Column,
    em: &'a Column,
    efi_band: &'a Column,
    ltcs: &'a Column,
    cancer: &'a Column,
    hfrs: &'a Column,
    dementia: &'a Column,
    care_home: &'a Column,
    heart_failure: &'a Column,
    copd: &'a Column,
    ckd: &'a Column,
    social_care: &'a Column,
    learning_disability: &'a Column,
    smi: &'a Column,
    stroke: &'a Column,
    maternity: &'a Column,
    ae_90: &'a Column,
}

impl<'a> Cols<'a> {
    fn new(f: &'a Features) -> Cols<'a> {
        let c = |name: &str| {
            f.column(name)
                .unwrap_or_else(|| panic!("segmentation needs feature {name}"))
        };
        Cols {
            age: c("age"),
            em: c("emergency_365"),
            efi_band: c("efi_band"),
            ltcs: c("ltc_count"),
            cancer: c("ltc_cancer"),
            hfrs: c("hfrs"),
            dementia: c("ltc_dementia"),
            care_home: c("care_home"),
            heart_failure: c("ltc_heart_failure"),
            copd: c("ltc_copd"),
            ckd: c("ltc_ckd"),
            social_care: c("social_care_active"),
            learning_disability: c("ltc_learning_disability"),
            smi: c("ltc_smi"),
            stroke: c("ltc_stroke"),
            maternity: c("maternity_365"),
            ae_90: c("ae_90"),
        }
    }

    fn segment(&self, i: usize) -> Segment {
        // (at [`crate::features::Precision::Model`] a value is rounded once to f32: every
        // value a rule compares here is a whole number or, for hfrs, tenths, so the
        // rounding never crosses a threshold)
        let v = |c: &Column| -> f64 { c.get(i) };
        let yes = |c: &Column| v(c) > 0.0;
        let age = v(self.age);
        let em = v(self.em);
        let efi_band = v(self.efi_band);
        let ltcs = v(self.ltcs);
        if (yes(self.cancer) && em >= 2.0) || (efi_band >= 3.0 && age >= 75.0 && em >= 2.0) {
            return Segment::EndOfLife;
        }
        if age >= 65.0
            && (efi_band >= 2.0 || v(self.hfrs) >= 5.0 || yes(self.dementia) || yes(self.care_home))
        {
            return Segment::Frailty;
        }
        let organ = yes(self.heart_failure) || yes(self.copd) || yes(self.ckd);
        if ltcs >= 4.0 || (ltcs >= 2.0 && organ && em >= 1.0) {
            return Segment::ComplexMultimorbidity;
        }
        let sc = yes(self.social_care);
        if yes(self.learning_disability)
            || yes(self.smi)
            || (yes(self.stroke) && sc)
            || (age < 65.0 && sc)
        {
            return Segment::Disability;
        }
        if ltcs >= 1.0 {
            return Segment::ChronicConditions;
        }
        if age < 1.0 || yes(self.maternity) {
            return Segment::MaternalInfant;
        }
        if em >= 1.0 || yes(self.ae_90) {
            return Segment::AcutelyIll;
        }
        Segment::Healthy
    }
}

/// The segment of person `i` of `f`.
pub fn segment(f: &Features, i: usize) -> Segment {
    Cols::new(f).segment(i)
}

/// The segment of everyone in `f`.
pub fn segments(f: &Features) -> Vec<Segment> {
    let c = Cols::new(f);
    (0..f.len()).map(|i| c.segment(i)).collect()
}

/// Centile (0-100, share of people with a lower risk) of each risk.
pub fn centiles(risk: &[f64]) -> Vec<f64> {
    // (the total order's integer key, row) sorted in place: the same order as a stable
    // sort of rows by `f64::total_cmp`, without a random read of `risk` per comparison
    let mut keyed: Vec<(i64, u32)> = risk
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let b = x.to_bits() as i64;
            (b ^ (((b >> 63) as u64) >> 1) as i64, i as u32)
        })
        .collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i as usize).collect();
    let mut out = vec![0.0; risk.len()];
    let n = risk.len().max(1) as f64;
    let mut k = 0;
    while k < order.len() {
        // ties share the centile of their first member
        let mut j = k;
        while j + 1 < order.len() && risk[order[j + 1]] == risk[order[k]] {
            j += 1;
        }
        for &o in &order[k..=j] {
            out[o] = 100.0 * k as f64 / n;
        }
        k = j + 1;
    }
    out
}

/// The rising-risk flag: below the top 5% (centile < 95) and either at or above the 80th
/// centile or with at least twice the risk a year earlier (`previous`, the same model on
/// features at D − 365; `None` when the person was not registered then).
pub fn rising_risk(centile: f64, risk: f64, previous: Option<f64>) -> bool {
    centile < 95.0 && (centile >= 80.0 || previous.is_some_and(|p| p > 0.0 && risk >= 2.0 * p))
}

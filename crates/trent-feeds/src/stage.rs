//! Staged records: what a feed said, validated and normalised, before linkage.
//!
//! Each staged record is owned (no borrow of the input buffer), carries everything the
//! lake table it lands in needs except the lake's `person_id` (linkage assigns it), and
//! three keys for idempotent ingest:
//!
//! - `source` — the feed name the caller gave (e.g. `apc_rx1`, `gp_emis`);
//! - `source_id` — the record's own id in that source, so re-ingesting the same record
//!   is recognisable;
//! - `source_person` — the person's id in that source (for a person, its `source_id`);
//!
//! and `content_hash`, the SHA-256 of a canonical form of every content field (not
//! `source` or `source_id`), so an *update* (same `source_id`, different hash) is told
//! apart from a *duplicate* (same `source_id`, same hash). The canonical form is
//! `name=value` pairs in declaration order separated by `\x1f`, absent values written as
//! `\x00`, integers as little-endian two's complement and floats as their IEEE 754
//! bits (little-endian); it is stable across runs and platforms.
//!
//! Dates are days since 1970-01-01; instants are seconds since 1970-01-01 as the lake
//! and `trent-fhir` hold them (see `docs/feeds.md` on offsets).

use sha2::{Digest, Sha256};

/// Builds the canonical form of a record and hashes it.
#[derive(Default)]
pub(crate) struct Canon {
    h: Sha256,
}

/// A value that can be written to the canonical form.
pub(crate) trait CanonValue {
    fn write(&self, out: &mut Sha256);
}

impl CanonValue for str {
    fn write(&self, out: &mut Sha256) {
        out.update(self.as_bytes());
    }
}
impl CanonValue for String {
    fn write(&self, out: &mut Sha256) {
        out.update(self.as_bytes());
    }
}
impl CanonValue for i32 {
    fn write(&self, out: &mut Sha256) {
        out.update(self.to_le_bytes());
    }
}
impl CanonValue for i64 {
    fn write(&self, out: &mut Sha256) {
        out.update(self.to_le_bytes());
    }
}
impl CanonValue for f64 {
    fn write(&self, out: &mut Sha256) {
        out.update(self.to_bits().to_le_bytes());
    }
}
impl CanonValue for bool {
    fn write(&self, out: &mut Sha256) {
        out.update(if *self { b"1" } else { b"0" });
    }
}
impl<T: CanonValue> CanonValue for Option<T> {
    fn write(&self, out: &mut Sha256) {
        match self {
            Some(v) => v.write(out),
            None => out.update([0u8]),
        }
    }
}
impl<T: CanonValue> CanonValue for Vec<T> {
    fn write(&self, out: &mut Sha256) {
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.update([0x1e]);
            }
            v.write(out);
        }
    }
}

impl Canon {
    pub(crate) fn field<T: CanonValue + ?Sized>(&mut self, name: &str, v: &T) -> &mut Self {
        self.h.update(name.as_bytes());
        self.h.update(b"=");
        v.write(&mut self.h);
        self.h.update([0x1f]);
        self
    }

    pub(crate) fn finish(&mut self) -> String {
        let d = std::mem::take(&mut self.h).finalize();
        let mut s = String::with_capacity(64);
        for b in d {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }
}

/// Declares a staged struct and its canonical hash over the listed content fields.
macro_rules! staged {
    (
        $(#[$m:meta])* $name:ident, $kind:literal {
            $( $(#[$fm:meta])* $f:ident : $t:ty ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            /// The feed name the caller gave.
            pub source: String,
            /// The record's own id in the source.
            pub source_id: String,
            $( $(#[$fm])* pub $f: $t, )*
            /// SHA-256 (hex) of the canonical form of the content fields.
            pub content_hash: String,
        }

        impl $name {
            /// The record kind, as counted and quarantined.
            pub const KIND: &'static str = $kind;

            /// Compute and store [`Self::content_hash`].
            pub fn seal(mut self) -> Self {
                let mut c = Canon::default();
                c.field("kind", $kind);
                $( c.field(stringify!($f), &self.$f); )*
                self.content_hash = c.finish();
                self
            }
        }
    };
}

staged!(
    /// A person as one source recorded them (→ identity vault and `person`).
    StagedPerson, "person" {
        /// True when the person was implied by an event row that carries demographics
        /// (SUS-style feeds), false for a person record of its own (FHIR Patient, GP
        /// patient row, OMOP person). Identical implied persons are not duplicates.
        derived: bool,
        /// Ten-digit NHS number, validated (modulus 11).
        nhs_number: Option<String>,
        /// Given name(s) as recorded, trimmed.
        given_name: Option<String>,
        /// Family name as recorded, trimmed.
        family_name: Option<String>,
        /// Date of birth.
        birth_date: Option<i32>,
        /// `F` or `M`; `None` when unknown or not stated.
        sex: Option<String>,
        /// Postcode, upper case with one space (`NG7 2UH`).
        postcode: Option<String>,
        /// First line of the address.
        address: Option<String>,
        /// Registered GP practice (ODS code).
        practice_code: Option<String>,
        /// NHS ethnic category code (A … S, Z).
        ethnicity: Option<String>,
        /// Date of death.
        death_date: Option<i32>,
        /// Underlying cause of death, ICD-10 without the dot.
        death_cause: Option<String>,
        /// The OMOP concept ids of a person read from OMOP, as
        /// `gender=…;race=…;ethnicity=…` (kept because OMOP has no NHS ethnic category).
        omop_concepts: Option<String>,
    }
);

staged!(
    /// A contact, attendance, spell or call (→ `activity`).
    StagedActivity, "activity" {
        /// The person's id in the source.
        source_person: String,
        /// `gp`, `ae`, `apc`, `op`, `community`, `mental_health`, `ambulance`, `nhs111`,
        /// `social_care_assessment` (OMOP visits: see `docs/feeds.md`).
        setting: String,
        /// Start, seconds since 1970-01-01.
        start_ts: i64,
        /// End.
        end_ts: Option<i64>,
        /// Provider organisation code.
        provider_code: Option<String>,
        /// Site code.
        site_code: Option<String>,
        /// `elective`, `emergency`, `maternity`, `transfer`.
        admission_method: Option<String>,
        /// Patient class (see `docs/schema.md`).
        patient_class: Option<String>,
        /// ICD-10 without the dot.
        primary_diagnosis: Option<String>,
        /// Secondary diagnoses, ICD-10 without the dot, in order (→ `condition` rows
        /// with this activity).
        secondary_diagnoses: Vec<String>,
        /// Treatment function code.
        specialty: Option<String>,
        /// Cost, pounds.
        cost_gbp: Option<f64>,
        /// Discharge destination.
        discharge_destination: Option<String>,
        /// Length of stay, days.
        los_days: Option<i32>,
        /// Medically fit for discharge.
        medically_fit_date: Option<i32>,
        /// `ambulance` or `walk_in`.
        arrival_mode: Option<String>,
        /// `red1`, `red2`, `green`.
        ambulance_category: Option<String>,
        /// Minutes from call to first vehicle on scene.
        response_minutes: Option<f64>,
        /// The source id of the referral this attendance came from.
        source_referral: Option<String>,
        /// OMOP `visit_concept_id` when read from OMOP.
        omop_concept_id: Option<i64>,
    }
);

staged!(
    /// A diagnosis (→ `condition`).
    StagedCondition, "condition" {
        /// The person's id in the source.
        source_person: String,
        /// `SNOMED` or `ICD10`.
        code_system: String,
        /// SNOMED CT concept id, or ICD-10 without the dot.
        code: String,
        /// Date recorded.
        recorded_date: i32,
        /// The source id of the spell it was coded in.
        source_activity: Option<String>,
        /// OMOP `condition_concept_id` when read from OMOP.
        omop_concept_id: Option<i64>,
    }
);

staged!(
    /// A measurement or finding (→ `observation`).
    StagedObservation, "observation" {
        /// The person's id in the source.
        source_person: String,
        /// `SNOMED`, `TRENT` (local `trent-` codes) or `LOINC`.
        code_system: String,
        /// The code.
        code: String,
        /// Numeric value, in the code's canonical unit.
        value: Option<f64>,
        /// UCUM unit of `value`.
        unit: Option<String>,
        /// Date of the observation.
        obs_date: i32,
        /// OMOP `measurement_concept_id`/`observation_concept_id` when read from OMOP.
        omop_concept_id: Option<i64>,
    }
);

staged!(
    /// A prescription issue or medication statement (→ `medication`).
    StagedMedication, "medication" {
        /// The person's id in the source.
        source_person: String,
        /// `BNF`, `DMD` (dm+d, SNOMED-shaped), `SNOMED` or `RXNORM`.
        code_system: String,
        /// The code.
        code: String,
        /// `request` (an issue) or `statement` (a record that the person takes it).
        kind: String,
        /// Issue (or start) date.
        issue_date: i32,
        /// Net ingredient cost, pounds.
        cost_gbp: Option<f64>,
        /// Days of treatment supplied.
        days_supply: Option<i32>,
        /// OMOP `drug_concept_id` when read from OMOP.
        omop_concept_id: Option<i64>,
    }
);

staged!(
    /// A procedure (the lake has no procedure table yet; kept for when it does).
    StagedProcedure, "procedure" {
        /// The person's id in the source.
        source_person: String,
        /// `SNOMED` or `OPCS4`.
        code_system: String,
        /// SNOMED CT concept id, or OPCS-4 without the dot.
        code: String,
        /// Date performed.
        performed_date: i32,
        /// The source id of the encounter it was part of.
        source_activity: Option<String>,
        /// OMOP `procedure_concept_id` when read from OMOP.
        omop_concept_id: Option<i64>,
    }
);

staged!(
    /// A referral (→ `referral`).
    StagedReferral, "referral" {
        /// The person's id in the source.
        source_person: String,
        /// Referring practice.
        practice_code: Option<String>,
        /// Treatment function code referred to.
        specialty: Option<String>,
        /// Date of referral.
        referral_date: i32,
        /// `routine`, `urgent`, `two_week_wait`.
        priority: String,
    }
);

staged!(
    /// An adult social care service episode (→ `social_care`).
    StagedSocialCare, "social_care" {
        /// The person's id in the source.
        source_person: String,
        /// `residential`, `nursing`, `home_care`, `reablement`, `direct_payment`.
        service: String,
        /// Start.
        start_date: i32,
        /// End.
        end_date: Option<i32>,
        /// Gross weekly cost, pounds.
        weekly_cost_gbp: Option<f64>,
        /// Funding local authority (ONS code).
        la_code: Option<String>,
    }
);

staged!(
    /// An allergy or intolerance (the lake has no table yet; kept for when it does).
    StagedAllergy, "allergy" {
        /// The person's id in the source.
        source_person: String,
        /// `SNOMED` (or `DMD` for a drug allergen).
        code_system: String,
        /// The substance or allergy concept.
        code: String,
        /// Date recorded (or onset).
        recorded_date: i32,
        /// `active`, `inactive`, `resolved`.
        clinical_status: Option<String>,
        /// `low`, `high`, `unable-to-assess`.
        criticality: Option<String>,
    }
);

/// A deletion: a FHIR Bulk/transaction `DELETE` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deleted {
    /// The feed name.
    pub source: String,
    /// The FHIR resource type.
    pub resource_type: String,
    /// The id (or conditional search) the source deleted.
    pub source_id: String,
}

/// One staged record.
#[derive(Debug, Clone, PartialEq)]
pub enum Staged {
    /// A person.
    Person(StagedPerson),
    /// A contact, spell or call.
    Activity(StagedActivity),
    /// A diagnosis.
    Condition(StagedCondition),
    /// A measurement or finding.
    Observation(StagedObservation),
    /// A prescription.
    Medication(StagedMedication),
    /// A procedure.
    Procedure(StagedProcedure),
    /// A referral.
    Referral(StagedReferral),
    /// A social care package.
    SocialCare(StagedSocialCare),
    /// An allergy.
    Allergy(StagedAllergy),
    /// A deletion.
    Deleted(Deleted),
}

impl Staged {
    /// The record kind (`person`, `activity`, … `deleted`).
    pub fn kind(&self) -> &'static str {
        match self {
            Staged::Person(_) => StagedPerson::KIND,
            Staged::Activity(_) => StagedActivity::KIND,
            Staged::Condition(_) => StagedCondition::KIND,
            Staged::Observation(_) => StagedObservation::KIND,
            Staged::Medication(_) => StagedMedication::KIND,
            Staged::Procedure(_) => StagedProcedure::KIND,
            Staged::Referral(_) => StagedReferral::KIND,
            Staged::SocialCare(_) => StagedSocialCare::KIND,
            Staged::Allergy(_) => StagedAllergy::KIND,
            Staged::Deleted(_) => "deleted",
        }
    }

    /// `(source, source_id, content_hash)`; a deletion's hash is empty.
    pub fn key(&self) -> (&str, &str, &str) {
        macro_rules! k {
            ($r:expr) => {
                (
                    $r.source.as_str(),
                    $r.source_id.as_str(),
                    $r.content_hash.as_str(),
                )
            };
        }
        match self {
            Staged::Person(r) => k!(r),
            Staged::Activity(r) => k!(r),
            Staged::Condition(r) => k!(r),
            Staged::Observation(r) => k!(r),
            Staged::Medication(r) => k!(r),
            Staged::Procedure(r) => k!(r),
            Staged::Referral(r) => k!(r),
            Staged::SocialCare(r) => k!(r),
            Staged::Allergy(r) => k!(r),
            Staged::Deleted(r) => (r.source.as_str(), r.source_id.as_str(), ""),
        }
    }

    /// The person's id in the source (for a person, its own id; none for a deletion).
    pub fn source_person(&self) -> Option<&str> {
        Some(match self {
            Staged::Person(r) => &r.source_id,
            Staged::Activity(r) => &r.source_person,
            Staged::Condition(r) => &r.source_person,
            Staged::Observation(r) => &r.source_person,
            Staged::Medication(r) => &r.source_person,
            Staged::Procedure(r) => &r.source_person,
            Staged::Referral(r) => &r.source_person,
            Staged::SocialCare(r) => &r.source_person,
            Staged::Allergy(r) => &r.source_person,
            Staged::Deleted(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tells_update_from_duplicate() {
        let a = StagedObservation {
            source: "gp".into(),
            source_id: "1".into(),
            source_person: "p".into(),
            code_system: "SNOMED".into(),
            code: "60621009".into(),
            value: Some(27.5),
            unit: Some("kg/m2".into()),
            obs_date: 18_000,
            ..Default::default()
        }
        .seal();
        let same = a.clone().seal();
        assert_eq!(a.content_hash, same.content_hash);
        assert_eq!(a.content_hash.len(), 64);
        let mut upd = a.clone();
        upd.value = Some(27.6);
        assert_ne!(upd.seal().content_hash, a.content_hash);
        // the source id is not content
        let mut moved = a.clone();
        moved.source_id = "2".into();
        assert_eq!(moved.seal().content_hash, a.content_hash);
        // None and empty string differ
        let mut none = a.clone();
        none.unit = None;
        let mut empty = a.clone();
        empty.unit = Some(String::new());
        assert_ne!(none.seal().content_hash, empty.seal().content_hash);
    }
}

//! FHIR R4 for trent: the one place that knows how a person's record in trent's data model
//! looks as FHIR resources, following UK Core conventions (NHS number identifier system,
//! ODS organisation codes, the NHS ethnic category extension).
//!
//! Why a crate of its own, and plain `serde_json` rather than a generated FHIR model: the
//! Rust FHIR model crates are either stale or without a plain R4 4.0.1 build (see
//! `docs/ARCHITECTURE.md`), and trent only needs the handful of resources its data model
//! holds. The generator (`trent synth --format fhir`) writes with it now; ingest and the
//! shared care record read and serve the same shapes, so a round trip is testable.
//!
//! Everything here is pure: rows in ([`records`]), JSON out ([`resources`], [`bundle`]).
//! Output is deterministic: resource ids are derived from trent's keys, never random.

pub mod bundle;
pub mod records;
pub mod resources;

/// NHS number identifier system (UK Core).
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// ODS organisation code identifier system (practices, trusts and their sites).
pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// SNOMED CT.
pub const SNOMED: &str = "http://snomed.info/sct";
/// ICD-10 (codes are written with the dot, e.g. `I21.9`).
pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// UK Core ethnic category extension.
pub const ETHNIC_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
/// NHS ethnic category code system (A … S, Z).
pub const ETHNIC_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory";
/// v3 ActCode (Encounter.class).
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// NHS Data Model and Dictionary treatment function codes (Encounter.serviceType).
pub const TREATMENT_FUNCTION: &str =
    "https://fhir.nhs.uk/CodeSystem/NHSDataModelAndDictionary-treatment-function";
/// BNF codes (trent's prescribing data is at BNF chemical substance level).
pub const BNF: &str = "https://trent.invalid/fhir/CodeSystem/bnf";
/// ONS geography codes (local authorities).
pub const ONS_CODE: &str = "https://trent.invalid/fhir/Id/ons-code";
/// Base of trent's own code systems, identifier systems and extensions. `.invalid` on
/// purpose: these are documented in `docs/fhir.md`, never fetched.
pub const TRENT_BASE: &str = "https://trent.invalid/fhir";

/// A trent extension URL: `https://trent.invalid/fhir/StructureDefinition/<name>`.
pub fn extension_url(name: &str) -> String {
    format!("{TRENT_BASE}/StructureDefinition/{name}")
}

/// A trent code system URL: `https://trent.invalid/fhir/CodeSystem/<name>`.
pub fn code_system(name: &str) -> String {
    format!("{TRENT_BASE}/CodeSystem/{name}")
}

/// A trent identifier system URL: `https://trent.invalid/fhir/Id/<name>`.
pub fn identifier_system(name: &str) -> String {
    format!("{TRENT_BASE}/Id/{name}")
}

/// ICD-10 as FHIR writes it: `I219` → `I21.9`, `I10` stays `I10`.
pub fn icd10_dotted(code: &str) -> String {
    if code.len() > 3 && !code.contains('.') && code.is_ascii() {
        format!("{}.{}", &code[..3], &code[3..])
    } else {
        code.to_string()
    }
}

/// ICD-10 as the lake stores it (SUS convention, no dot): `I21.9` → `I219`.
pub fn icd10_undotted(code: &str) -> String {
    code.replace('.', "")
}

/// A deterministic UUID (RFC 9562 version 8, "custom") for a resource: `kind` names the
/// resource type, `key` is trent's key of the row. The same row always gets the same id,
/// so two exports of one lake are byte-identical and re-sending a bundle is idempotent.
pub fn uuid(kind: &str, key: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let a = mix(h ^ key);
    let b = mix(a ^ key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
    let hi = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_8000; // version 8
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // RFC variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A date (days since 1970-01-01) as FHIR `date`.
pub fn date(days: i32) -> String {
    trent_model::time::iso(days)
}

/// A timestamp (seconds since 1970-01-01 UTC) as FHIR `dateTime` (`…Z`).
pub fn date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400) as i32;
    let s = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        trent_model::time::iso(days),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10_dots_round_trip() {
        assert_eq!(icd10_dotted("I219"), "I21.9");
        assert_eq!(icd10_dotted("I10"), "I10");
        assert_eq!(icd10_dotted("I21.9"), "I21.9");
        assert_eq!(icd10_undotted("I21.9"), "I219");
    }

    #[test]
    fn uuids_are_stable_distinct_and_well_formed() {
        let a = uuid("Patient", 1);
        assert_eq!(a, uuid("Patient", 1));
        assert_ne!(a, uuid("Patient", 2));
        assert_ne!(a, uuid("Encounter", 1));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        let mut seen = std::collections::HashSet::new();
        for k in 0..100_000 {
            assert!(seen.insert(uuid("Observation", k)));
        }
    }

    #[test]
    fn date_times_are_utc() {
        assert_eq!(date_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(date_time(86_400 + 3661), "1970-01-02T01:01:01Z");
        assert_eq!(date(16_526), "2015-04-01");
    }
}

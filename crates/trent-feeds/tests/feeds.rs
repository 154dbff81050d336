//! End-to-end tests of the readers: round trip from trent-fhir, every reason code,
//! counters, wrong feeds, duplicates, deletions, official-style R4 examples, the
//! synthetic feeds' faults, and a deterministic mutation test (the fuzz fallback).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use trent_feeds::csv_feeds::read_csv_bytes;
use trent_feeds::fhir::read_fhir_bytes;
use trent_feeds::sample;
use trent_feeds::sink::{Batch, Collect, Counts};
use trent_feeds::stage::*;
use trent_feeds::synth_feeds::{SynthFeedsConfig, synth_feeds};
use trent_feeds::{Feed, ReadOptions, Reason, Staged};
use trent_model::time::days;

fn today() -> ReadOptions {
    ReadOptions::new(days(2025, 6, 30))
}

fn fhir(data: &str, ndjson: Option<bool>) -> Collect {
    let mut c = Collect::default();
    read_fhir_bytes(data.as_bytes(), "t.ndjson", ndjson, "src", &today(), &mut c);
    c
}

fn only_reason(c: &Collect) -> Reason {
    assert_eq!(c.rejections.len(), 1, "{:#?}", c.rejections);
    c.rejections[0].reason
}

fn people(n: usize) -> Vec<sample::SamplePerson> {
    sample::population(n, 11, days(2019, 1, 1), days(2024, 12, 31))
}

const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";

// ---------------------------------------------------------------- round trip

#[test]
fn trent_fhir_bundles_read_back_exactly() {
    let pop = people(150);
    let mut nd = String::new();
    for p in &pop {
        let b = trent_fhir::bundle::transaction(&p.record()).unwrap();
        nd.push_str(&b.to_string());
        nd.push('\n');
    }
    let c = fhir(&nd, Some(true));
    assert!(
        c.rejections.is_empty(),
        "{:#?}",
        &c.rejections[..c.rejections.len().min(3)]
    );
    let mut by_person: HashMap<&str, Vec<&Staged>> = HashMap::new();
    let mut persons: HashMap<String, &StagedPerson> = HashMap::new();
    for r in &c.records {
        match r {
            Staged::Person(p) => {
                persons.insert(p.nhs_number.clone().unwrap(), p);
            }
            other => by_person
                .entry(other.source_person().unwrap())
                .or_default()
                .push(other),
        }
    }
    assert_eq!(persons.len(), pop.len());
    let mut n_rows = 0;
    for sp in &pop {
        let p = persons[&sp.nhs_number];
        assert_eq!(p.source_id, format!("{NHS}|{}", sp.nhs_number));
        assert_eq!(p.given_name.as_deref(), Some(sp.given_name.as_str()));
        assert_eq!(p.family_name.as_deref(), Some(sp.family_name.as_str()));
        assert_eq!(p.birth_date, Some(sp.birth_date));
        assert_eq!(p.sex.as_deref(), Some(sp.sex));
        assert_eq!(p.postcode.as_deref(), Some(sp.postcode.as_str()));
        assert_eq!(p.address.as_deref(), Some(sp.address_line.as_str()));
        assert_eq!(p.practice_code.as_deref(), Some(sp.practice_code));
        assert_eq!(p.ethnicity.as_deref(), Some(sp.ethnicity));
        assert_eq!(p.death_date, sp.death_date);
        let recs = by_person.remove(p.source_id.as_str()).unwrap_or_default();
        let rec = sp.record();
        n_rows += rec.activity.len()
            + rec.conditions.len()
            + rec.observations.len()
            + rec.medications.len()
            + rec.social_care.len()
            + rec.referrals.len();
        // activities
        let acts: HashMap<&str, &StagedActivity> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::Activity(a) => Some((a.source_id.as_str(), a)),
                _ => None,
            })
            .collect();
        assert_eq!(acts.len(), rec.activity.len());
        for a in &rec.activity {
            let s =
                acts[format!("https://trent.invalid/fhir/Id/activity|{}", a.activity_id).as_str()];
            assert_eq!(s.setting, a.setting);
            assert_eq!(s.start_ts, a.start_ts);
            assert_eq!(s.end_ts, a.end_ts);
            assert_eq!(s.provider_code.as_deref(), Some(a.provider_code));
            assert_eq!(s.site_code.as_deref(), a.site_code);
            assert_eq!(s.admission_method.as_deref(), a.admission_method);
            assert_eq!(s.patient_class.as_deref(), a.patient_class);
            assert_eq!(s.primary_diagnosis.as_deref(), a.primary_diagnosis);
            assert_eq!(s.specialty.as_deref(), a.specialty);
            assert_eq!(s.cost_gbp, Some(a.cost_gbp));
            assert_eq!(s.discharge_destination.as_deref(), a.discharge_destination);
            assert_eq!(s.los_days, a.los_days);
            assert_eq!(s.medically_fit_date, a.medically_fit_date);
            assert_eq!(s.arrival_mode.as_deref(), a.arrival_mode);
            assert_eq!(s.ambulance_category.as_deref(), a.ambulance_category);
            assert_eq!(s.response_minutes, a.response_minutes);
            assert_eq!(
                s.source_referral,
                a.referral_id
                    .map(|r| format!("https://trent.invalid/fhir/Id/referral|{r}"))
            );
        }
        let mut conds: Vec<(String, String, i32, Option<String>)> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::Condition(c) => Some((
                    c.code_system.clone(),
                    c.code.clone(),
                    c.recorded_date,
                    c.source_activity.clone(),
                )),
                _ => None,
            })
            .collect();
        let mut want: Vec<_> = rec
            .conditions
            .iter()
            .map(|c| {
                (
                    c.code_system.to_string(),
                    c.code.to_string(),
                    c.recorded_date,
                    c.activity_id
                        .map(|a| format!("https://trent.invalid/fhir/Id/activity|{a}")),
                )
            })
            .collect();
        conds.sort();
        want.sort();
        assert_eq!(conds, want);
        let mut obs: Vec<String> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::Observation(o) => Some(format!(
                    "{}|{:?}|{:?}|{}",
                    o.code, o.value, o.unit, o.obs_date
                )),
                _ => None,
            })
            .collect();
        let mut want: Vec<String> = rec
            .observations
            .iter()
            .map(|o| {
                format!(
                    "{}|{:?}|{:?}|{}",
                    o.code,
                    o.value,
                    o.unit.map(str::to_string),
                    o.obs_date
                )
            })
            .collect();
        obs.sort();
        want.sort();
        assert_eq!(obs, want);
        let mut meds: Vec<String> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::Medication(m) => Some(format!(
                    "{}|{}|{}|{:?}|{:?}",
                    m.code_system, m.code, m.issue_date, m.cost_gbp, m.days_supply
                )),
                _ => None,
            })
            .collect();
        let mut want: Vec<String> = rec
            .medications
            .iter()
            .map(|m| {
                format!(
                    "BNF|{}|{}|{:?}|{:?}",
                    m.code,
                    m.issue_date,
                    Some(m.cost_gbp),
                    Some(m.days_supply)
                )
            })
            .collect();
        meds.sort();
        want.sort();
        assert_eq!(meds, want);
        let mut sc: Vec<String> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::SocialCare(s) => Some(format!(
                    "{}|{}|{:?}|{:?}|{:?}",
                    s.service, s.start_date, s.end_date, s.weekly_cost_gbp, s.la_code
                )),
                _ => None,
            })
            .collect();
        let mut want: Vec<String> = rec
            .social_care
            .iter()
            .map(|s| {
                format!(
                    "{}|{}|{:?}|{:?}|{:?}",
                    s.service,
                    s.start_date,
                    s.end_date,
                    Some(s.weekly_cost_gbp),
                    Some(s.la_code.to_string())
                )
            })
            .collect();
        sc.sort();
        want.sort();
        assert_eq!(sc, want);
        let mut refs: Vec<String> = recs
            .iter()
            .filter_map(|r| match r {
                Staged::Referral(x) => Some(format!(
                    "{}|{:?}|{:?}|{}|{}",
                    x.source_id, x.practice_code, x.specialty, x.referral_date, x.priority
                )),
                _ => None,
            })
            .collect();
        let mut want: Vec<String> = rec
            .referrals
            .iter()
            .map(|x| {
                format!(
                    "https://trent.invalid/fhir/Id/referral|{}|{:?}|{:?}|{}|{}",
                    x.referral_id,
                    Some(x.practice_code.to_string()),
                    Some(x.specialty.to_string()),
                    x.referral_date,
                    x.priority
                )
            })
            .collect();
        refs.sort();
        want.sort();
        assert_eq!(refs, want);
        assert_eq!(
            recs.len(),
            rec.activity.len()
                + rec.conditions.len()
                + rec.observations.len()
                + rec.medications.len()
                + rec.social_care.len()
                + rec.referrals.len()
        );
    }
    assert!(by_person.is_empty());
    assert!(n_rows > 500, "{n_rows}");
    // the same bundles as single pretty-printed JSON files read the same
    let b = trent_fhir::bundle::transaction(&pop[0].record()).unwrap();
    let pretty = serde_json::to_string_pretty(&b).unwrap();
    let one = fhir(&pretty, None);
    assert!(one.rejections.is_empty());
    assert_eq!(
        one.records.len(),
        1 + pop[0].record().activity.len()
            + pop[0].record().conditions.len()
            + pop[0].record().observations.len()
            + pop[0].record().medications.len()
            + pop[0].record().social_care.len()
            + pop[0].record().referrals.len()
    );
}

#[test]
fn counts_add_up_and_match_the_input() {
    let pop = people(60);
    let mut nd = String::new();
    let mut entries = 0;
    for p in &pop {
        let b = trent_fhir::bundle::transaction(&p.record()).unwrap();
        entries += b["entry"].as_array().unwrap().len();
        nd.push_str(&b.to_string());
        nd.push('\n');
    }
    // a broken line and an unknown resource: still accounted for
    nd.push_str("{\"resourceType\": \"Patient\", \n");
    nd.push_str(&json!({"resourceType": "Practitioner", "id": "p1"}).to_string());
    nd.push('\n');
    let mut counts = Counts::new(Collect::default());
    read_fhir_bytes(
        nd.as_bytes(),
        "x.ndjson",
        Some(true),
        "gp",
        &today(),
        &mut counts,
    );
    let t = counts.total();
    assert_eq!(t.received as usize, entries + 2);
    assert_eq!(t.received, t.accepted + t.rejected);
    assert_eq!(t.rejected, 2);
    for ((_, kind), v) in &counts.tallies {
        assert_eq!(v.received, v.accepted + v.rejected, "{kind}");
    }
    let people_count = counts.tallies[&("gp".to_string(), "person".to_string())];
    assert_eq!(people_count.accepted as usize, pop.len());
    assert_eq!(
        counts.inner.records.len() + counts.inner.rejections.len(),
        t.received as usize
    );
    assert!(counts.report().contains("gp\tperson\t60\t60\t0"));
}

// ---------------------------------------------------------------- every reason

fn patient(id: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "birthDate": birth,
           "identifier": [{"system": NHS, "value": "9434765919"}]})
}

fn condition(subject: &str, code_sys: &str, code: &str, date: &str) -> Value {
    json!({"resourceType": "Condition", "id": format!("c-{code}-{date}"),
           "subject": {"reference": subject},
           "code": {"coding": [{"system": code_sys, "code": code}]},
           "recordedDate": date})
}

fn bundle(entries: Vec<Value>) -> String {
    let e: Vec<Value> = entries
        .into_iter()
        .enumerate()
        .map(|(i, r)| json!({"fullUrl": format!("urn:uuid:00000000-0000-0000-0000-{i:012}"), "resource": r}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": e}).to_string()
}

const SCT: &str = "http://snomed.info/sct";

fn apc_line(id: &str, nhs: &str, adm: &str, dis: &str, dx: &str) -> String {
    format!(
        "{id},P1,{nhs},Ann,Smith,1950-03-04,F,ng7 2uh,1 High St,C84001,A,RX1,RX1CC,{adm},{dis},emergency,ordinary,300,{dx},E119;I10,usual_residence,,2500.00"
    )
}

fn apc(lines: &[String], final_newline: bool) -> Collect {
    let mut t = Feed::Apc.header().join(",");
    for l in lines {
        t.push('\n');
        t.push_str(l);
    }
    if final_newline {
        t.push('\n');
    }
    let mut c = Collect::default();
    read_csv_bytes(Feed::Apc, t.as_bytes(), "apc.csv", "apc", &today(), &mut c);
    c
}

#[test]
fn every_reason_code_has_a_bad_input() {
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |name: &str, c: Collect, want: Reason| {
        let got = c.reasons();
        assert!(
            got.contains(&want),
            "{name}: wanted {want}, got {got:?} {:#?}",
            c.rejections
        );
        for r in &c.rejections {
            assert!(!r.message.is_empty() && !r.raw.is_empty(), "{name}: {r:?}");
        }
        seen.insert(want);
    };
    check(
        "malformed json",
        fhir("{not json}\n", Some(true)),
        Reason::MalformedJson,
    );
    check(
        "truncated ndjson",
        fhir("{\"resourceType\":\"Pat", Some(true)),
        Reason::TruncatedFile,
    );
    check(
        "unknown type",
        fhir(
            &json!({"resourceType": "Practitioner", "id": "x"}).to_string(),
            None,
        ),
        Reason::UnknownResourceType,
    );
    check(
        "missing subject",
        fhir(&json!({"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": SCT, "code": "38341003"}]}, "recordedDate": "2020-01-01"}).to_string(), None),
        Reason::MissingRequired,
    );
    check(
        "bad birth date",
        fhir(&patient("p", "1970-02-30").to_string(), None),
        Reason::InvalidDate,
    );
    check(
        "before birth",
        fhir(
            &bundle(vec![
                patient("p", "2000-01-01"),
                condition(
                    "urn:uuid:00000000-0000-0000-0000-000000000000",
                    SCT,
                    "38341003",
                    "1999-12-31",
                ),
            ]),
            None,
        ),
        Reason::DateBeforeBirth,
    );
    let mut dead = patient("p", "1940-01-01");
    dead["deceasedDateTime"] = json!("2010-05-01T00:00:00Z");
    check(
        "after death",
        fhir(
            &bundle(vec![
                dead,
                condition("Patient/p", SCT, "38341003", "2011-01-01"),
            ]),
            None,
        ),
        Reason::DateAfterDeath,
    );
    check(
        "future",
        fhir(
            &condition("Patient/p", SCT, "38341003", "2100-01-01").to_string(),
            None,
        ),
        Reason::DateInFuture,
    );
    let mut bad_nhs = patient("p", "1970-01-01");
    bad_nhs["identifier"][0]["value"] = json!("9434765918");
    check(
        "nhs",
        fhir(&bad_nhs.to_string(), None),
        Reason::InvalidNhsNumber,
    );
    check(
        "snomed check digit",
        fhir(
            &condition("Patient/p", SCT, "38341004", "2020-01-01").to_string(),
            None,
        ),
        Reason::InvalidCode,
    );
    check(
        "icd10 shape",
        fhir(
            &condition(
                "Patient/p",
                "http://hl7.org/fhir/sid/icd-10",
                "I2",
                "2020-01-01",
            )
            .to_string(),
            None,
        ),
        Reason::InvalidCode,
    );
    check(
        "code system",
        fhir(
            &condition("Patient/p", "http://example.org/codes", "X1", "2020-01-01").to_string(),
            None,
        ),
        Reason::UnknownCodeSystem,
    );
    let bmi = |unit: &str, value: Value| {
        json!({"resourceType": "Observation", "id": "o", "status": "final",
               "code": {"coding": [{"system": SCT, "code": "60621009"}]},
               "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2020-01-01",
               "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
        .to_string()
    };
    check(
        "unit",
        fhir(&bmi("kg", json!(25.1)), None),
        Reason::InvalidUnit,
    );
    check(
        "value",
        fhir(&bmi("kg/m2", json!("heavy")), None),
        Reason::InvalidValue,
    );
    check(
        "dangling",
        fhir(
            &bundle(vec![condition(
                "urn:uuid:not-in-bundle",
                SCT,
                "38341003",
                "2020-01-01",
            )]),
            None,
        ),
        Reason::DanglingReference,
    );
    // batch-level
    let line = condition("Patient/p", SCT, "38341003", "2020-01-01").to_string();
    let mut b = Batch::new(Collect::default());
    read_fhir_bytes(
        format!("{line}\n{line}\n").as_bytes(),
        "a.ndjson",
        Some(true),
        "gp",
        &today(),
        &mut b,
    );
    check("duplicate", b.inner, Reason::DuplicateInBatch);
    let mut changed: Value = serde_json::from_str(&line).unwrap();
    changed["recordedDate"] = json!("2020-01-02");
    let mut b = Batch::new(Collect::default());
    read_fhir_bytes(
        format!("{line}\n{changed}\n").as_bytes(),
        "a.ndjson",
        Some(true),
        "gp",
        &today(),
        &mut b,
    );
    check("conflict", b.inner, Reason::ConflictingRecord);
    // CSV
    let good = apc_line(
        "S1",
        "9434765919",
        "2020-01-01T10:00:00",
        "2020-01-03T12:00:00",
        "I21.9",
    );
    let c = apc(std::slice::from_ref(&good), true);
    assert!(c.rejections.is_empty(), "{:#?}", c.rejections);
    check(
        "csv fields",
        apc(&[format!("{good},extra")], true),
        Reason::MalformedCsv,
    );
    check(
        "csv quote",
        apc(&[good.replace("Ann", "\"Ann\"x")], true),
        Reason::MalformedCsv,
    );
    check(
        "csv truncated",
        apc(&[good[..60].to_string()], false),
        Reason::TruncatedFile,
    );
    let mut t = "spell_id,something_else\n".to_string();
    t.push_str("1,2\n");
    let mut c = Collect::default();
    read_csv_bytes(Feed::Apc, t.as_bytes(), "apc.csv", "apc", &today(), &mut c);
    check("wrong header", c, Reason::WrongHeader);
    let mut t = Feed::Ae.header().join(",");
    t.push_str("\n1,2\n");
    let mut c = Collect::default();
    read_csv_bytes(Feed::Apc, t.as_bytes(), "ae.csv", "apc", &today(), &mut c);
    assert!(
        c.rejections[0].message.contains("ae feed"),
        "{}",
        c.rejections[0].message
    );
    assert_eq!(c.rejections.len(), 2, "header and the one data line");
    check("wrong feed", c, Reason::WrongFeed);
    for r in Reason::ALL {
        assert!(seen.contains(r), "no test input for {r}");
    }
}

#[test]
fn csv_rows_are_validated_and_normalised() {
    let lines = vec![
        apc_line(
            "S1",
            "943 476 5919",
            "2020-01-01T10:00:00",
            "2020-01-03T12:00:00",
            "I21.9",
        ),
        apc_line(
            "S2",
            "9434765919",
            "2020-02-01T10:00:00",
            "2020-02-01T12:00:00",
            "E11.9",
        ),
        apc_line(
            "S3",
            "9434765919",
            "2020-03-01T10:00:00",
            "2020-02-01T12:00:00",
            "E11.9",
        ),
        apc_line("S4", "9434765919", "1940-03-01T10:00:00", "", "E11.9"),
        apc_line("S5", "9434765919", "2020-03-01T10:00:00", "", "XYZ"),
        apc_line("S6", "9434765919", "2026-03-01T10:00:00", "", "E119"),
    ];
    let c = apc(&lines, true);
    let reasons: Vec<(u64, Reason)> = c
        .rejections
        .iter()
        .map(|r| (r.position.line, r.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (4, Reason::InvalidDate),
            (5, Reason::DateBeforeBirth),
            (6, Reason::InvalidCode),
            (7, Reason::DateInFuture)
        ]
    );
    assert!(
        c.rejections[2].message.contains("primary_diagnosis")
            && c.rejections[2].message.contains("XYZ")
    );
    // the carried person once (same demographics on both rows), then two spells
    let kinds: Vec<&str> = c.records.iter().map(Staged::kind).collect();
    assert_eq!(kinds, vec!["person", "activity", "activity"]);
    let Staged::Person(p) = &c.records[0] else {
        panic!()
    };
    assert_eq!(p.nhs_number.as_deref(), Some("9434765919"));
    assert_eq!(p.postcode.as_deref(), Some("NG7 2UH"));
    assert!(p.derived);
    let Staged::Activity(a) = &c.records[1] else {
        panic!()
    };
    assert_eq!(a.primary_diagnosis.as_deref(), Some("I219"));
    assert_eq!(
        a.secondary_diagnoses,
        vec!["E119".to_string(), "I10".to_string()]
    );
    assert_eq!(a.los_days, Some(2));
    assert_eq!(a.source_person, "P1");
}

#[test]
fn quoted_fields_may_hold_commas_quotes_and_newlines() {
    let l = apc_line(
        "S1",
        "9434765919",
        "2020-01-01T10:00:00",
        "2020-01-03T12:00:00",
        "I21.9",
    )
    .replace("1 High St", "\"Flat 2, \"\"The Old Mill\"\"\nMill Lane\"");
    let c = apc(
        &[
            l,
            apc_line("S2", "9434765919", "2020-02-01T10:00:00", "", "I10"),
        ],
        true,
    );
    assert!(c.rejections.is_empty(), "{:#?}", c.rejections);
    let Staged::Person(p) = &c.records[0] else {
        panic!()
    };
    assert_eq!(
        p.address.as_deref(),
        Some("Flat 2, \"The Old Mill\"\nMill Lane")
    );
    // the second record starts on line 4 (the first spans lines 2-3)
    assert_eq!(c.origins.last().unwrap().1, 4);
}

#[test]
fn wrong_feed_is_recognised_for_every_feed() {
    for &f in Feed::ALL {
        for &g in Feed::ALL {
            let t = format!("{}\n", g.header().join(","));
            let mut c = Collect::default();
            read_csv_bytes(f, t.as_bytes(), "x.csv", "s", &today(), &mut c);
            if f == g {
                assert!(c.rejections.is_empty());
            } else {
                assert_eq!(only_reason(&c), Reason::WrongFeed);
                assert!(
                    c.rejections[0]
                        .message
                        .contains(&format!("the {} feed", g.name())),
                    "{}",
                    c.rejections[0].message
                );
            }
        }
    }
    // a header with one column renamed still looks like its feed
    let mut h: Vec<String> = Feed::Ambulance
        .header()
        .iter()
        .map(|s| s.to_string())
        .collect();
    h[16] = "resp_mins".into();
    let mut c = Collect::default();
    read_csv_bytes(
        Feed::Apc,
        format!("{}\n", h.join(",")).as_bytes(),
        "x.csv",
        "s",
        &today(),
        &mut c,
    );
    assert_eq!(only_reason(&c), Reason::WrongFeed);
    assert!(
        c.rejections[0]
            .message
            .contains("looks like the ambulance feed")
    );
    let mut c = Collect::default();
    read_csv_bytes(
        Feed::Ambulance,
        format!("{}\n", h.join(",")).as_bytes(),
        "x.csv",
        "s",
        &today(),
        &mut c,
    );
    assert_eq!(only_reason(&c), Reason::WrongHeader);
    assert!(c.rejections[0].message.contains("resp_mins"));
}

// ---------------------------------------------------------------- bundles

#[test]
fn delete_entries_and_cross_file_references() {
    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/o-17"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"}},
        {"request": {"method": "DELETE", "url": "nonsense"}},
        {"fullUrl": "urn:uuid:1", "resource": condition("Patient/elsewhere", SCT, "38341003", "2020-01-01"),
         "request": {"method": "POST", "url": "Condition"}}
    ]});
    let mut batch = Batch::new(Counts::new(Collect::default()));
    read_fhir_bytes(
        b.to_string().as_bytes(),
        "b.json",
        Some(false),
        "gp",
        &today(),
        &mut batch,
    );
    let c = &batch.inner.inner;
    assert_eq!(
        c.records[0],
        Staged::Deleted(Deleted {
            source: "gp".into(),
            resource_type: "Observation".into(),
            source_id: "o-17".into()
        })
    );
    let Staged::Deleted(d) = &c.records[1] else {
        panic!()
    };
    assert_eq!(d.resource_type, "Patient");
    assert!(d.source_id.starts_with("identifier="));
    assert_eq!(only_reason(c), Reason::MissingRequired);
    assert_eq!(c.rejections[0].position.entry, Some(2));
    assert_eq!(
        c.rejections[0].position.pointer.as_deref(),
        Some("/entry/2/request/url")
    );
    // the patient is in no file of the batch: unresolved, not an error
    assert_eq!(
        batch.unresolved(),
        vec![("gp".to_string(), "elsewhere".to_string(), 1)]
    );
    // once the patient arrives in another file, it resolves
    read_fhir_bytes(
        patient("elsewhere", "1960-01-01").to_string().as_bytes(),
        "p.json",
        None,
        "gp",
        &today(),
        &mut batch,
    );
    assert!(batch.unresolved().is_empty());
}

#[test]
fn rejections_point_into_the_bundle() {
    let c = fhir(
        &bundle(vec![
            patient("p", "1970-01-01"),
            condition(
                "urn:uuid:00000000-0000-0000-0000-000000000000",
                SCT,
                "38341004",
                "2020-01-01",
            ),
        ]),
        None,
    );
    let r = &c.rejections[0];
    assert_eq!(r.position.entry, Some(1));
    assert_eq!(
        r.position.pointer.as_deref(),
        Some("/entry/1/resource/code")
    );
    assert_eq!(r.resource_type.as_deref(), Some("Condition"));
    assert!(r.message.contains("38341004") && r.message.contains("Condition.code"));
    assert!(r.raw.contains("38341004"));
    assert_eq!(c.records.len(), 1);
}

// Hand-made in the style of the HL7 R4 examples (hl7.fhir.r4.examples): several
// identifiers, several names, a LOINC+SNOMED coded Observation with a valueQuantity,
// MedicationStatement with dm+d, a Procedure with OPCS-4, an AllergyIntolerance.
#[test]
fn official_style_r4_examples_are_read() {
    let pat = json!({
      "resourceType": "Patient", "id": "example",
      "identifier": [
        {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"},
        {"system": NHS, "value": "943 476 5919"}],
      "active": true,
      "name": [{"use": "usual", "given": ["Jim"]},
               {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
               {"use": "maiden", "family": "Windsor", "given": ["Peter", "James"]}],
      "gender": "male", "birthDate": "1974-12-25", "deceasedBoolean": false,
      "address": [{"use": "home", "type": "both", "text": "534 Erewhon St PeasantVille, Rainbow, Vic  3999",
                   "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
      "managingOrganization": {"reference": "Organization/1"}
    });
    let obs = json!({
      "resourceType": "Observation", "id": "example", "status": "final",
      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
      "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
                          {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight"}]},
      "subject": {"reference": "Patient/example"},
      "effectiveDateTime": "2016-03-28T09:30:10+01:00",
      "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
    });
    let loinc_only = json!({
      "resourceType": "Observation", "id": "bp", "status": "final",
      "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
      "subject": {"reference": "Patient/example"}, "effectivePeriod": {"start": "2012-09-17"},
      "valueQuantity": {"value": 107, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    });
    let ms = json!({
      "resourceType": "MedicationStatement", "id": "ms1", "status": "active",
      "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk", "code": "322236009"}]},
      "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2015-01-23"
    });
    let proc_ = json!({
      "resourceType": "Procedure", "id": "pr1", "status": "completed",
      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/opcs-4", "code": "W37.1"}]},
      "subject": {"reference": "Patient/example"}, "performedPeriod": {"start": "2013-01-28T13:31:00+01:00", "end": "2013-01-28T14:27:00+01:00"}
    });
    let allergy = json!({
      "resourceType": "AllergyIntolerance", "id": "al1",
      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
      "criticality": "high",
      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "227493005", "display": "Cashew nuts"}]},
      "patient": {"reference": "Patient/example"}, "recordedDate": "2014-10-09T14:58:00+11:00"
    });
    let nd = [pat, obs, loinc_only, ms, proc_, allergy]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let c = fhir(&nd, Some(true));
    assert!(c.rejections.is_empty(), "{:#?}", c.rejections);
    let Staged::Person(p) = &c.records[0] else {
        panic!()
    };
    assert_eq!(p.source_id, "example");
    assert_eq!(p.nhs_number.as_deref(), Some("9434765919"));
    assert_eq!(p.given_name.as_deref(), Some("Peter James"));
    assert_eq!(p.family_name.as_deref(), Some("Chalmers"));
    assert_eq!(p.postcode.as_deref(), Some("3999"));
    assert_eq!(p.death_date, None);
    let Staged::Observation(o) = &c.records[1] else {
        panic!()
    };
    assert_eq!(
        (o.code_system.as_str(), o.code.as_str()),
        ("SNOMED", "27113001")
    );
    assert_eq!((o.value, o.unit.as_deref()), (Some(185.0), Some("[lb_av]")));
    assert_eq!(o.source_person, "example");
    assert_eq!(o.obs_date, days(2016, 3, 28));
    let Staged::Observation(o) = &c.records[2] else {
        panic!()
    };
    assert_eq!(
        (o.code_system.as_str(), o.code.as_str()),
        ("LOINC", "8480-6")
    );
    let Staged::Medication(m) = &c.records[3] else {
        panic!()
    };
    assert_eq!(
        (m.code_system.as_str(), m.kind.as_str()),
        ("DMD", "statement")
    );
    let Staged::Procedure(pr) = &c.records[4] else {
        panic!()
    };
    assert_eq!(
        (pr.code_system.as_str(), pr.code.as_str()),
        ("OPCS4", "W371")
    );
    let Staged::Allergy(a) = &c.records[5] else {
        panic!()
    };
    assert_eq!(a.criticality.as_deref(), Some("high"));
    assert_eq!(a.recorded_date, days(2014, 10, 9));
}

// ---------------------------------------------------------------- synthetic feeds

fn read_synth(
    s: &trent_feeds::synth_feeds::SynthFeeds,
    today: &ReadOptions,
) -> Batch<Counts<Collect>> {
    let mut batch = Batch::new(Counts::new(Collect::default()));
    for (name, text) in &s.files {
        let feed = Feed::parse(name.split('-').next().unwrap()).unwrap();
        read_csv_bytes(feed, text.as_bytes(), name, feed.name(), today, &mut batch);
    }
    batch
}

#[test]
fn synthetic_feed_faults_are_all_quarantined_and_nothing_else() {
    let pop = people(400);
    let recs: Vec<_> = pop.iter().map(|p| p.record()).collect();
    let today = days(2025, 1, 31);
    let cfg = SynthFeedsConfig::new(5, today);
    let s = synth_feeds(&recs, 3, &cfg);
    // deterministic
    let again = synth_feeds(&recs, 3, &cfg);
    assert_eq!(s.files, again.files);
    assert_eq!(s.faults_csv(), again.faults_csv());
    let batch = read_synth(&s, &ReadOptions::new(today));
    let got: BTreeMap<(String, u64), Reason> = batch
        .inner
        .inner
        .rejections
        .iter()
        .map(|r| ((r.file.clone(), r.position.line), r.reason))
        .collect();
    assert_eq!(
        got.len(),
        batch.inner.inner.rejections.len(),
        "one rejection per line"
    );
    let want: BTreeMap<(String, u64), Reason> = s
        .faults
        .iter()
        .filter_map(|f| f.expected_reason.map(|r| ((f.file.clone(), f.line), r)))
        .collect();
    for (k, r) in &want {
        let rej = batch
            .inner
            .inner
            .rejections
            .iter()
            .find(|x| (x.file.clone(), x.position.line) == *k);
        assert_eq!(got.get(k), Some(r), "{k:?}: {rej:?}");
    }
    for (k, r) in &got {
        let rej = batch
            .inner
            .inner
            .rejections
            .iter()
            .find(|x| (x.file.clone(), x.position.line) == *k);
        assert!(
            want.contains_key(k),
            "unexpected rejection {r} at {k:?}: {rej:#?}"
        );
    }
    // the fault kinds the brief asks for all occur
    let kinds: std::collections::BTreeSet<&str> =
        s.faults.iter().map(|f| f.fault.as_str()).collect();
    for k in [
        "invalid_code",
        "date_in_future",
        "date_before_birth",
        "invalid_date",
        "invalid_nhs_number",
        "redelivered",
        "nickname",
        "dob_transposed",
        "postcode_moved",
        "nhs_missing",
    ] {
        assert!(kinds.contains(k), "no {k} fault in {kinds:?}");
    }
    // counters add up to the lines of every file
    let lines: usize = s.files.iter().map(|(_, t)| t.lines().count() - 1).sum();
    let c = &batch.inner;
    let t = c.total();
    assert_eq!(t.received, t.accepted + t.rejected);
    let persons: u64 = c
        .tallies
        .iter()
        .filter(|((_, k), _)| k == "person")
        .map(|(_, v)| v.received)
        .sum();
    let gp_patients = s
        .files
        .iter()
        .filter(|(n, _)| n.starts_with("gp"))
        .map(|(_, t)| t.lines().filter(|l| l.starts_with("patient,")).count() as u64)
        .sum::<u64>();
    // every data line is one entry; derived persons are the extra entries
    assert_eq!(t.received - (persons - gp_patients), lines as u64);
    // social care: NHS number mostly missing
    let sc = &s
        .files
        .iter()
        .find(|(n, _)| n.starts_with("social_care"))
        .unwrap()
        .1;
    let rows: Vec<&str> = sc.lines().skip(1).collect();
    let missing = rows
        .iter()
        .filter(|l| l.split(',').nth(2) == Some(""))
        .count();
    assert!(missing * 2 > rows.len(), "{missing} of {}", rows.len());
    // truth links every local id to a person
    assert!(s.truth.iter().any(|t| t.source == "social_care"));
    let staged_people: std::collections::BTreeSet<(String, String)> = c
        .inner
        .records
        .iter()
        .filter_map(|r| match r {
            Staged::Person(p) => Some((p.source.clone(), p.source_id.clone())),
            _ => None,
        })
        .collect();
    for (src, id) in &staged_people {
        assert!(
            s.truth
                .iter()
                .any(|t| &t.source == src && &t.source_person == id)
        );
    }
    assert!(
        s.truth_csv()
            .starts_with("source,source_person,person_id\n")
    );
}

// ---------------------------------------------------------------- OMOP

#[test]
fn omop_tables_map_by_source_value() {
    let dir = std::env::temp_dir().join(format!("trent-feeds-omop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("person.csv"), "PERSON_ID,GENDER_CONCEPT_ID,YEAR_OF_BIRTH,MONTH_OF_BIRTH,DAY_OF_BIRTH,BIRTH_DATETIME,RACE_CONCEPT_ID,ETHNICITY_CONCEPT_ID\n1,8532,1960,3,4,,8527,0\n2,8507,1970,1,1,1970-01-01,0,0\n").unwrap();
    std::fs::write(
        dir.join("death.csv"),
        "person_id\tdeath_date\tcause_source_value\n1\t2020-01-01\tI21.9\n9\t2020-01-01\t\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("condition_occurrence.csv"),
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_source_value,visit_occurrence_id\n\
         10,1,320128,2010-01-01,38341003,5\n11,1,201826,2012-02-02,E11.9,\n12,1,201826,2012-02-02,,\n13,1,320128,2021-01-01,38341003,\n14,2,0,1969-01-01,38341003,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("measurement.csv"),
        "measurement_id,person_id,measurement_concept_id,measurement_date,value_as_number,unit_source_value,measurement_source_value\n1.0,2,3038553,2015-01-01,24.5,kg/m2,60621009\n2.0,2,3038553,2015-01-01,24.5,kg,60621009\n3.0,2,3025315,2015-01-01,80,kg,29463-7\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("visit_occurrence.csv"),
        "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date\n5,1,9201,2010-01-01,2010-01-04\n6,1,12345,2010-01-01,\n",
    )
    .unwrap();
    std::fs::write(dir.join("concept.csv"), "concept_id,concept_name\n1,x\n").unwrap();
    let mut c = Counts::new(Collect::default());
    trent_feeds::read_omop_dir(&dir, "omop", &today(), &mut c).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let col = &c.inner;
    let reasons: Vec<(String, u64, Reason)> = col
        .rejections
        .iter()
        .map(|r| {
            (
                r.file.rsplit('/').next().unwrap().to_string(),
                r.position.line,
                r.reason,
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("visit_occurrence.csv".into(), 3, Reason::InvalidCode),
            (
                "condition_occurrence.csv".into(),
                4,
                Reason::MissingRequired
            ),
            ("condition_occurrence.csv".into(), 5, Reason::DateAfterDeath),
            (
                "condition_occurrence.csv".into(),
                6,
                Reason::DateBeforeBirth
            ),
            ("measurement.csv".into(), 3, Reason::InvalidUnit),
            ("death.csv".into(), 3, Reason::DanglingReference),
        ],
        "{:#?}",
        col.rejections
    );
    let Staged::Person(p) = &col.records[0] else {
        panic!()
    };
    assert_eq!(
        (
            p.birth_date,
            p.death_date,
            p.death_cause.as_deref(),
            p.sex.as_deref()
        ),
        (
            Some(days(1960, 3, 4)),
            Some(days(2020, 1, 1)),
            Some("I219"),
            Some("F")
        )
    );
    let conds: Vec<(String, String, Option<i64>, Option<String>)> = col
        .records
        .iter()
        .filter_map(|r| match r {
            Staged::Condition(c) => Some((
                c.code_system.clone(),
                c.code.clone(),
                c.omop_concept_id,
                c.source_activity.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        conds,
        vec![
            (
                "SNOMED".into(),
                "38341003".into(),
                Some(320128),
                Some("visit_occurrence/5".into())
            ),
            ("ICD10".into(), "E119".into(), Some(201826), None)
        ]
    );
    let Some(Staged::Activity(v)) = col.records.iter().find(|r| r.kind() == "activity") else {
        panic!()
    };
    assert_eq!(
        (v.setting.as_str(), v.los_days, v.source_id.as_str()),
        ("apc", Some(3), "visit_occurrence/5")
    );
    let obs: Vec<&str> = col
        .records
        .iter()
        .filter_map(|r| match r {
            Staged::Observation(o) => Some(o.code_system.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(obs, vec!["SNOMED", "LOINC"]);
}

#[test]
#[ignore = "needs crates/trent-feeds/scripts/eunomia.sh and EUNOMIA_DIR"]
fn eunomia_gibleed_counts() {
    let dir = std::env::var("EUNOMIA_DIR").expect("EUNOMIA_DIR");
    let mut c = Batch::new(Counts::new(Collect::default()));
    let t0 = std::time::Instant::now();
    trent_feeds::read_omop_dir(
        std::path::Path::new(&dir),
        "eunomia",
        &ReadOptions::from_clock(),
        &mut c,
    )
    .unwrap();
    let el = t0.elapsed();
    let counts = &c.inner;
    print!("{}", counts.report());
    for ((_, r), n) in &counts.reasons {
        println!("reason\t{r}\t{n}");
    }
    let mut shown = std::collections::BTreeSet::new();
    for r in &counts.inner.rejections {
        if shown.insert((r.file.clone(), r.reason)) {
            println!(
                "example\t{}\t{}\t{}",
                r.file.rsplit('/').next().unwrap(),
                r.reason,
                r.message
            );
        }
    }
    let t = counts.total();
    println!(
        "total\t{}\t{}\t{}\t{:.2}s",
        t.received,
        t.accepted,
        t.rejected,
        el.as_secs_f64()
    );
    assert_eq!(t.received, t.accepted + t.rejected);
    assert_eq!(
        counts.tallies[&("eunomia".to_string(), "person".to_string())].accepted,
        2694
    );
}

// ---------------------------------------------------------------- mutation (fuzz fallback)

fn mutate(base: &[u8], rng: &mut trent_stats::rng::Rng) -> Vec<u8> {
    const SPECIAL: &[u8] = b"\"{}[],:\n\r\\ 0-T.";
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        if v.is_empty() {
            break;
        }
        let n = v.len() as u64;
        match rng.below(7) {
            0 => {
                let i = rng.below(n) as usize;
                v[i] = rng.below(256) as u8;
            }
            1 => v.truncate(rng.below(n) as usize),
            2 => {
                let a = rng.below(n) as usize;
                let b = (a + rng.below(64) as usize).min(v.len());
                v.drain(a..b);
            }
            3 => {
                let a = rng.below(n) as usize;
                let b = (a + rng.below(200) as usize).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() as u64 + 1) as usize;
                v.splice(at..at, chunk);
            }
            4 => {
                let i = rng.below(n + 1) as usize;
                v.insert(i, SPECIAL[rng.below(SPECIAL.len() as u64) as usize]);
            }
            5 => {
                // multi-byte UTF-8, to find slicing at a non-character boundary
                let i = rng.below(n + 1) as usize;
                let c = ["é", "€", "𝄞", "\\u00e9"][rng.below(4) as usize];
                v.splice(i..i, c.bytes());
            }
            _ => {
                // swap two lines
                let mut lines: Vec<Vec<u8>> =
                    v.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 2 {
                    let a = rng.below(lines.len() as u64) as usize;
                    let b = rng.below(lines.len() as u64) as usize;
                    lines.swap(a, b);
                }
                v = lines.join(&b'\n');
            }
        }
    }
    v
}

/// Entries in NDJSON as an independent count: each non-blank line is one entry unless
/// it is a Bundle with an entry array (then one per element).
fn ndjson_entries(data: &[u8]) -> usize {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(json_entries)
        .sum()
}

fn json_entries(l: &[u8]) -> usize {
    match serde_json::from_slice::<Value>(l) {
        Ok(v) if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            match v.get("entry") {
                None | Some(Value::Null) => 0,
                Some(Value::Array(a)) => a.len(),
                Some(_) => 1,
            }
        }
        _ => 1,
    }
}

#[test]
fn mutated_inputs_never_panic_and_every_entry_is_accounted_for() {
    let pop = people(3);
    let mut nd = String::new();
    for p in &pop {
        nd.push_str(
            &trent_fhir::bundle::transaction(&p.record())
                .unwrap()
                .to_string(),
        );
        nd.push('\n');
    }
    nd.push_str(&condition("Patient/p", SCT, "38341003", "2020-01-01").to_string());
    nd.push('\n');
    let pretty =
        serde_json::to_string_pretty(&trent_fhir::bundle::transaction(&pop[0].record()).unwrap())
            .unwrap();
    let six = people(6);
    let recs: Vec<_> = six.iter().map(|p| p.record()).collect();
    let s = synth_feeds(&recs, 0, &SynthFeedsConfig::new(1, days(2025, 1, 31)));
    let csvs: Vec<(Feed, &str)> = s
        .files
        .iter()
        .filter(|(n, _)| !n.contains("redelivered"))
        .map(|(n, t)| {
            (
                Feed::parse(n.split('-').next().unwrap()).unwrap(),
                t.as_str(),
            )
        })
        .collect();
    assert!(csvs.len() >= 4);
    let mut rng = trent_stats::rng::Rng::stream(2024, 1);
    let opts = today();
    let mut cases = 0;
    for case in 0..20_000u32 {
        let mut c = Collect::default();
        match case % 4 {
            0 => {
                let m = mutate(nd.as_bytes(), &mut rng);
                read_fhir_bytes(&m, "m.ndjson", Some(true), "s", &opts, &mut c);
                assert_eq!(
                    c.records.len() + c.rejections.len(),
                    ndjson_entries(&m),
                    "case {case}"
                );
            }
            1 => {
                let m = mutate(pretty.as_bytes(), &mut rng);
                read_fhir_bytes(&m, "m.json", Some(false), "s", &opts, &mut c);
                let want = if m.iter().all(u8::is_ascii_whitespace) {
                    0
                } else {
                    json_entries(&m)
                };
                assert_eq!(c.records.len() + c.rejections.len(), want, "case {case}");
            }
            _ => {
                let (feed, text) = csvs[(case as usize / 4) % csvs.len()];
                let m = mutate(text.as_bytes(), &mut rng);
                read_csv_bytes(feed, &m, "m.csv", "s", &opts, &mut c);
                // one outcome per record (derived persons are extra entries)
                let primary = c
                    .records
                    .iter()
                    .filter(|r| !matches!(r, Staged::Person(p) if p.derived))
                    .count()
                    + c.rejections.len();
                let lossy = String::from_utf8_lossy(&m);
                if !lossy.contains('"') {
                    let lines: Vec<&str> = lossy
                        .split('\n')
                        .map(|l| l.strip_suffix('\r').unwrap_or(l))
                        .filter(|l| !l.trim().is_empty())
                        .collect();
                    let header_ok = lines.first().is_some_and(|h| {
                        trent_feeds::csv_feeds::header_verdict(
                            feed,
                            &h.split(',').map(str::to_string).collect::<Vec<_>>(),
                        )
                        .is_ok()
                    });
                    let want = lines.len() - usize::from(header_ok);
                    assert_eq!(primary, want, "case {case}");
                }
            }
        }
        for r in &c.rejections {
            assert!(!r.message.is_empty(), "case {case}: {r:?}");
        }
        cases += 1;
    }
    assert_eq!(cases, 20_000);
}

#[test]
fn docs_list_every_header_and_reason() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/feeds.md"))
        .unwrap();
    let demo = trent_feeds::csv_feeds::PERSON_COLUMNS.join(",");
    assert!(doc.contains(&format!("`{demo}`")));
    for f in Feed::ALL {
        let full = f.header().join(",");
        let h = if *f == Feed::Gp {
            full
        } else {
            full.replace(&demo, "<demographics>")
        };
        assert!(
            doc.contains(&format!("`{h}`")),
            "docs/feeds.md lacks the {} header",
            f.name()
        );
    }
    for r in Reason::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", r.code())),
            "docs/feeds.md lacks {r}"
        );
    }
}

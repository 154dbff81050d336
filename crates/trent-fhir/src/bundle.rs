//! A person's whole record as one FHIR R4 transaction Bundle.
//!
//! The Patient is sent as a conditional update on its NHS number (`PUT
//! Patient?identifier=…`), so loading the same bundle twice does not duplicate the person;
//! every other resource is a `POST` whose `fullUrl` is a deterministic `urn:uuid:` that
//! the other entries reference (encounter diagnoses point at their spell, outpatient
//! first attendances at their referral).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::records::PersonRecord;
use crate::{NHS_NUMBER, resources, uuid};

fn entry(full_url: String, resource: Value, method: &str, url: String) -> Value {
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": method, "url": url}})
}

/// The transaction bundle of one person; `None` when the record has no patient row.
pub fn transaction(rec: &PersonRecord) -> Option<Value> {
    let p = rec.patient.as_ref()?;
    let pid = p.person_id as u64;
    let subject = format!("urn:uuid:{}", uuid("Patient", pid));
    let mut entries = Vec::with_capacity(
        1 + rec.activity.len()
            + rec.conditions.len()
            + rec.observations.len()
            + rec.medications.len()
            + rec.social_care.len()
            + rec.referrals.len(),
    );
    entries.push(entry(
        subject.clone(),
        resources::patient(p),
        "PUT",
        format!("Patient?identifier={NHS_NUMBER}|{}", p.nhs_number),
    ));
    let mut referral_urls = HashMap::new();
    for r in &rec.referrals {
        let url = format!("urn:uuid:{}", uuid("ServiceRequest", r.referral_id as u64));
        entries.push(entry(
            url.clone(),
            resources::service_request(r, &subject),
            "POST",
            "ServiceRequest".into(),
        ));
        referral_urls.insert(r.referral_id, url);
    }
    let mut encounter_urls = HashMap::new();
    for a in &rec.activity {
        let url = format!("urn:uuid:{}", uuid("Encounter", a.activity_id as u64));
        let based_on = a
            .referral_id
            .and_then(|r| referral_urls.get(&r))
            .map(String::as_str);
        entries.push(entry(
            url.clone(),
            resources::encounter(a, &subject, based_on),
            "POST",
            "Encounter".into(),
        ));
        encounter_urls.insert(a.activity_id, url);
    }
    // rows without a key of their own are numbered within the person
    let key = |i: usize| (pid << 24) | i as u64;
    for (i, c) in rec.conditions.iter().enumerate() {
        let enc = c
            .activity_id
            .and_then(|a| encounter_urls.get(&a))
            .map(String::as_str);
        entries.push(entry(
            format!("urn:uuid:{}", uuid("Condition", key(i))),
            resources::condition(c, &subject, enc),
            "POST",
            "Condition".into(),
        ));
    }
    for (i, o) in rec.observations.iter().enumerate() {
        entries.push(entry(
            format!("urn:uuid:{}", uuid("Observation", key(i))),
            resources::observation(o, &subject),
            "POST",
            "Observation".into(),
        ));
    }
    for (i, m) in rec.medications.iter().enumerate() {
        entries.push(entry(
            format!("urn:uuid:{}", uuid("MedicationRequest", key(i))),
            resources::medication_request(m, &subject, p.practice_code),
            "POST",
            "MedicationRequest".into(),
        ));
    }
    for (i, s) in rec.social_care.iter().enumerate() {
        entries.push(entry(
            format!("urn:uuid:{}", uuid("EpisodeOfCare", key(i))),
            resources::episode_of_care(s, &subject),
            "POST",
            "EpisodeOfCare".into(),
        ));
    }
    Some(json!({
        "resourceType": "Bundle",
        "id": uuid("Bundle", pid),
        "type": "transaction",
        "entry": entries,
    }))
}

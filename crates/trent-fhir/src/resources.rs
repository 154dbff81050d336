//! Each row kind as a FHIR R4 resource. Every resource carries trent's key as an
//! identifier (system `https://trent.invalid/fhir/Id/<kind>`) where the row has one, so a
//! consumer can reconcile what it loaded with the lake; trent-only facts (cost, the date a
//! patient became medically fit for discharge, ambulance category …) travel as
//! extensions documented in `docs/fhir.md`.

use serde_json::{Map, Value, json};
use trent_model::codes;

use crate::records::*;
use crate::{
    ACT_CODE, BNF, ETHNIC_EXTENSION, ETHNIC_SYSTEM, ICD10, NHS_NUMBER, ODS_CODE, ONS_CODE, SNOMED,
    TREATMENT_FUNCTION, UCUM, code_system, date, date_time, extension_url, icd10_dotted,
    identifier_system,
};

fn ods(code: &str) -> Value {
    json!({"identifier": {"system": ODS_CODE, "value": code}})
}

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = Map::new();
    c.insert("system".into(), system.into());
    c.insert("code".into(), code.into());
    if let Some(d) = display {
        c.insert("display".into(), d.into());
    }
    Value::Object(c)
}

fn concept(system: &str, code: &str, display: Option<&str>) -> Value {
    json!({"coding": [coding(system, code, display)]})
}

fn money(gbp: f64) -> Value {
    json!({"value": (gbp * 100.0).round() / 100.0, "currency": "GBP"})
}

fn ext(name: &str, key: &str, value: Value) -> Value {
    let mut e = Map::new();
    e.insert("url".into(), extension_url(name).into());
    e.insert(key.into(), value);
    Value::Object(e)
}

fn trent_id(kind: &str, key: i64) -> Value {
    json!([{"system": identifier_system(kind), "value": key.to_string()}])
}

fn display_of_code(code: &str) -> Option<&'static str> {
    codes::CONDITIONS
        .iter()
        .find(|c| c.snomed == code || c.icd10 == code)
        .map(|c| c.name)
        .or_else(|| {
            codes::OBSERVATIONS
                .iter()
                .find(|o| o.code == code)
                .map(|o| o.name)
        })
}

/// The v3 ActCode class of a contact: where and how care was given.
pub fn encounter_class(setting: &str, patient_class: Option<&str>) -> (&'static str, &'static str) {
    match (setting, patient_class) {
        ("apc", Some("day_case")) => ("SS", "short stay"),
        ("apc", _) | ("community" | "mental_health", Some("inpatient")) => {
            ("IMP", "inpatient encounter")
        }
        ("ae", _) => ("EMER", "emergency"),
        ("community" | "social_care_assessment", _) => ("HH", "home health"),
        ("ambulance", _) => ("FLD", "field"),
        ("nhs111", _) => ("VR", "virtual"),
        _ => ("AMB", "ambulatory"),
    }
}

/// A Patient (UK Core conventions).
pub fn patient(p: &PatientRow) -> Value {
    let mut r = json!({
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER, "value": p.nhs_number}],
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
        "gender": if p.sex == "F" { "female" } else { "male" },
        "birthDate": date(p.birth_date),
        "address": [{"use": "home", "line": [p.address_line], "postalCode": p.postcode}],
        "generalPractitioner": [{
            "type": "Organization",
            "identifier": {"system": ODS_CODE, "value": p.practice_code}
        }],
    });
    if let Some(d) = p.death_date {
        r["deceasedDateTime"] = date(d).into();
    }
    if let Some(e) = p.ethnicity {
        r["extension"] = json!([{
            "url": ETHNIC_EXTENSION,
            "valueCodeableConcept": concept(ETHNIC_SYSTEM, e, None)
        }]);
    }
    r
}

/// An Encounter for a contact. `referral` is the reference of the ServiceRequest an
/// outpatient first attendance came from, when it is in the same bundle.
pub fn encounter(a: &ActivityRow, subject: &str, referral: Option<&str>) -> Value {
    let (class, class_display) = encounter_class(a.setting, a.patient_class);
    let spell = matches!(class, "IMP" | "SS");
    let mut period = Map::new();
    period.insert("start".into(), date_time(a.start_ts).into());
    if let Some(e) = a.end_ts {
        period.insert("end".into(), date_time(e).into());
    }
    let status = if spell && a.end_ts.is_none() {
        "in-progress"
    } else {
        "finished"
    };
    let mut r = json!({
        "resourceType": "Encounter",
        "identifier": trent_id("activity", a.activity_id),
        "status": status,
        "class": coding(ACT_CODE, class, Some(class_display)),
        "type": [concept(&code_system("setting"), a.setting, None)],
        "subject": {"reference": subject},
        "period": period,
        "serviceProvider": ods(a.provider_code),
    });
    let mut exts = vec![ext("cost", "valueMoney", money(a.cost_gbp))];
    if let Some(s) = a.specialty {
        r["serviceType"] = concept(TREATMENT_FUNCTION, s, None);
    }
    if let Some(s) = a.site_code {
        r["location"] = json!([{"location": {"identifier": {"system": ODS_CODE, "value": s}}}]);
    }
    if let Some(dx) = a.primary_diagnosis {
        r["reasonCode"] = json!([concept(ICD10, &icd10_dotted(dx), None)]);
    }
    if let Some(los) = a.los_days {
        r["length"] = json!({"value": los, "unit": "days", "system": UCUM, "code": "d"});
    }
    let mut hosp = Map::new();
    if let Some(m) = a.admission_method {
        hosp.insert(
            "admitSource".into(),
            concept(&code_system("admission-method"), m, None),
        );
    }
    if let Some(d) = a.discharge_destination {
        hosp.insert(
            "dischargeDisposition".into(),
            concept(&code_system("discharge-destination"), d, None),
        );
    }
    if !hosp.is_empty() {
        r["hospitalization"] = Value::Object(hosp);
    }
    if let Some(pc) = a.patient_class {
        exts.push(ext(
            "patient-class",
            "valueCoding",
            coding(&code_system("patient-class"), pc, None),
        ));
    }
    if let Some(d) = a.medically_fit_date {
        exts.push(ext("medically-fit-date", "valueDate", date(d).into()));
    }
    if let Some(m) = a.arrival_mode {
        exts.push(ext(
            "arrival-mode",
            "valueCoding",
            coding(&code_system("arrival-mode"), m, None),
        ));
    }
    if let Some(c) = a.ambulance_category {
        exts.push(ext(
            "ambulance-category",
            "valueCoding",
            coding(&code_system("ambulance-category"), c, None),
        ));
    }
    if let Some(m) = a.response_minutes {
        exts.push(ext("response-minutes", "valueDecimal", json!(m)));
    }
    r["extension"] = Value::Array(exts);
    if let Some(s) = referral {
        r["basedOn"] = json!([{"reference": s}]);
    }
    r
}

/// A Condition: a problem-list entry (SNOMED CT, GP record) or an encounter diagnosis
/// (ICD-10, hospital spell; `encounter` is the spell's reference).
pub fn condition(c: &ConditionRow, subject: &str, encounter: Option<&str>) -> Value {
    let icd = c.code_system == "ICD10";
    let (system, code) = if icd {
        (ICD10, icd10_dotted(c.code))
    } else {
        (SNOMED, c.code.to_string())
    };
    let category = if c.activity_id.is_some() {
        ("encounter-diagnosis", "Encounter Diagnosis")
    } else {
        ("problem-list-item", "Problem List Item")
    };
    let mut r = json!({
        "resourceType": "Condition",
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", None),
        "category": [concept(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            category.0, Some(category.1))],
        "code": concept(system, &code, display_of_code(c.code)),
        "subject": {"reference": subject},
        "recordedDate": date(c.recorded_date),
    });
    if let Some(e) = encounter {
        r["encounter"] = json!({"reference": e});
    }
    r
}

/// An Observation; local `trent-` codes use trent's observation code system.
pub fn observation(o: &ObservationRow, subject: &str) -> Value {
    let system = if o.code.starts_with("trent-") {
        code_system("observation")
    } else {
        SNOMED.to_string()
    };
    let mut r = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": concept(&system, o.code, display_of_code(o.code)),
        "subject": {"reference": subject},
        "effectiveDateTime": date(o.obs_date),
    });
    if let Some(v) = o.value {
        let mut q = Map::new();
        q.insert("value".into(), json!(v));
        if let Some(u) = o.unit {
            q.insert("unit".into(), u.into());
            q.insert("system".into(), UCUM.into());
            q.insert("code".into(), u.into());
        }
        r["valueQuantity"] = Value::Object(q);
    }
    r
}

/// A MedicationRequest for a prescription issued in primary care.
pub fn medication_request(m: &MedicationRow, subject: &str, practice: &str) -> Value {
    let name = codes::MEDICINES.iter().find(|x| x.0 == m.code).map(|x| x.1);
    json!({
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": concept(BNF, m.code, name),
        "subject": {"reference": subject},
        "authoredOn": date(m.issue_date),
        "requester": ods(practice),
        "dispenseRequest": {
            "expectedSupplyDuration": {
                "value": m.days_supply, "unit": "days", "system": UCUM, "code": "d"
            }
        },
        "extension": [ext("cost", "valueMoney", money(m.cost_gbp))],
    })
}

/// A ServiceRequest for a GP referral to a specialty. FHIR has no two-week-wait
/// priority: it is sent as `asap` with the original priority in an extension.
pub fn service_request(r: &ReferralRow, subject: &str) -> Value {
    let priority = match r.priority {
        "urgent" => "urgent",
        "two_week_wait" => "asap",
        _ => "routine",
    };
    json!({
        "resourceType": "ServiceRequest",
        "identifier": trent_id("referral", r.referral_id),
        "status": "completed",
        "intent": "order",
        "priority": priority,
        "code": concept(SNOMED, "3457005", Some("Patient referral")),
        "performerType": concept(TREATMENT_FUNCTION, r.specialty, None),
        "subject": {"reference": subject},
        "authoredOn": date(r.referral_date),
        "requester": ods(r.practice_code),
        "extension": [ext("referral-priority", "valueCoding",
            coding(&code_system("referral-priority"), r.priority, None))],
    })
}

/// An EpisodeOfCare for an adult social care package.
pub fn episode_of_care(s: &SocialCareRow, subject: &str) -> Value {
    let mut period = Map::new();
    period.insert("start".into(), date(s.start_date).into());
    if let Some(e) = s.end_date {
        period.insert("end".into(), date(e).into());
    }
    json!({
        "resourceType": "EpisodeOfCare",
        "status": if s.end_date.is_some() { "finished" } else { "active" },
        "type": [concept(&code_system("social-care-service"), s.service, None)],
        "patient": {"reference": subject},
        "managingOrganization": {"identifier": {"system": ONS_CODE, "value": s.la_code}},
        "period": period,
        "extension": [ext("weekly-cost", "valueMoney", money(s.weekly_cost_gbp))],
    })
}

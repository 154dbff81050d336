//! The record service through HTTP: each role does what it should and nothing more,
//! break-glass, atomic bundles, bad input, paging and `_include`, `$everything`, sign-in,
//! and audit verification — on SQLite (one test per scenario) and on PostgreSQL (one test
//! running every scenario against a throwaway cluster).

mod common;

use chrono::Duration;
use common::*;
use serde_json::{Value, json};
use trent_access::audit::ProblemKind;
use trent_access::{PersonId, TeamId, UserId};

fn obs(patient: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2025-02-01",
        "valueQuantity": {"value": value, "unit": "mm[Hg]"}
    })
}

async fn roles_see_what_they_should(h: &Harness) {
    let (a, b, c) = (h.a.clone(), h.b.clone(), h.c.clone());
    // Nobody unauthenticated.
    let r = h
        .call("GET", &format!("/fhir/Patient/{a}"), None, &[], None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert_eq!(
        h.get(&format!("/fhir/Patient/{a}"), "not-a-token")
            .await
            .status,
        401
    );

    // GP at the registered practice: A and C, not B.
    let gp = h.login("gp1").await;
    let r = h.get(&format!("/fhir/Patient/{a}"), &gp).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["identifier"][0]["value"], h.nhs_a.as_str());
    assert_eq!(r.headers["etag"], "W/\"1\"");
    let r = h.get(&format!("/fhir/Patient/{b}"), &gp).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );
    assert!(
        !r.json.to_string().contains("Lovell"),
        "a denial holds no person data"
    );
    let r = h.get("/fhir/Patient?family=lovel", &gp).await;
    assert_eq!(r.status, 200);
    let mut ids: Vec<&str> = entries_of(&r.json, "Patient")
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(
        ids, want,
        "a name search shows only people with a relationship"
    );
    assert_eq!(r.json["total"], 2);
    // Writes within the relationship, not outside it.
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&gp),
            &[],
            Some(obs(&a, 131.0).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("http://record.test/fhir/Observation/")
    );
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&gp),
            &[],
            Some(obs(&b, 131.0).to_string()),
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );

    // Hospital clinician: A through the recent inpatient stay at RX1, not C.
    let doc = h.login("doc-rx1").await;
    assert_eq!(
        h.get(&format!("/fhir/Condition?patient={a}"), &doc)
            .await
            .status,
        200
    );
    let r = h.get(&format!("/fhir/Patient/{c}"), &doc).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );
    // ... and the relationship lapses 30 days after discharge.
    h.advance(Duration::days(21));
    let doc = h.login("doc-rx1").await;
    let r = h.get(&format!("/fhir/Patient/{a}"), &doc).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );
    h.advance(Duration::days(-21));

    // Case manager: B through the team caseload.
    let cm = h.login("cm1").await;
    assert_eq!(h.get(&format!("/fhir/Patient/{b}"), &cm).await.status, 200);
    assert_eq!(h.get(&format!("/fhir/Patient/{a}"), &cm).await.status, 403);

    // Citizen: own record only, read-only.
    let cit = h.login("citizen-a").await;
    assert_eq!(h.get(&format!("/fhir/Patient/{a}"), &cit).await.status, 200);
    let r = h.get(&format!("/fhir/Patient/{b}"), &cit).await;
    assert_eq!((r.status, reason(&r).as_str()), (403, "not-own-record"));
    let r = h.get("/fhir/Patient?family=lovel", &cit).await;
    assert_eq!(entries_of(&r.json, "Patient").len(), 1);
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&cit),
            &[],
            Some(obs(&a, 1.0).to_string()),
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "action-not-permitted-for-role")
    );
    // Citizens see every access to their record, including the denied one above.
    let r = h.get(&format!("/fhir/AuditEvent?patient={a}"), &cit).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let events = r.json["entry"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["resource"]["agent"][0]["who"]["identifier"]["value"] == "gp1")
    );
    assert!(
        events
            .iter()
            .any(|e| e["resource"]["outcomeDesc"] == "action-not-permitted-for-role")
    );
    let r = h.get(&format!("/fhir/AuditEvent?patient={b}"), &cit).await;
    assert_eq!(r.status, 403);

    // Carer: what A shared (Patient, Condition), not observations; until revoked.
    let carer = h.login("carer-a").await;
    assert_eq!(
        h.get(&format!("/fhir/Patient/{a}"), &carer).await.status,
        200
    );
    assert_eq!(
        h.get(&format!("/fhir/Condition?patient={a}"), &carer)
            .await
            .status,
        200
    );
    let r = h
        .get(&format!("/fhir/Observation?patient={a}"), &carer)
        .await;
    assert_eq!((r.status, reason(&r).as_str()), (403, "kind-not-granted"));
    let r = h
        .get(&format!("/fhir/Patient/{a}/$everything"), &carer)
        .await;
    assert_eq!(r.status, 200);
    assert!(entries_of(&r.json, "Observation").is_empty());
    assert_eq!(entries_of(&r.json, "Condition").len(), 2);
    assert_eq!(
        h.get(&format!("/fhir/Patient/{c}"), &carer).await.status,
        403
    );
    // The citizen manages the grants: list, revoke, share something else.
    let json_ct = [("content-type", "application/json")];
    let r = h
        .call("GET", "/record/carer-grants", Some(&cit), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["grants"][0]["id"], "grant-1");
    let r = h
        .call(
            "POST",
            "/record/carer-grants",
            Some(&cit),
            &json_ct,
            Some(json!({"carer": "gp1", "kinds": ["Patient"]}).to_string()),
        )
        .await;
    assert_eq!(r.status, 422, "only carer accounts: {}", r.json);
    let other = h.login("citizen-c").await;
    let r = h
        .call(
            "POST",
            "/record/carer-grants/grant-1/revoke",
            Some(&other),
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, reason(&r).as_str()), (403, "not-own-record"));
    let r = h
        .call(
            "POST",
            "/record/carer-grants",
            Some(&gp),
            &json_ct,
            Some(json!({"carer": "carer-a", "kinds": ["Patient"], "patient": a}).to_string()),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "clinicians do not make a citizen's consent decisions"
    );
    let r = h
        .call(
            "POST",
            "/record/carer-grants/grant-1/revoke",
            Some(&cit),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.json);
    let r = h.get(&format!("/fhir/Patient/{a}"), &carer).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "carer-grant-revoked")
    );
    let r = h
        .call(
            "POST",
            "/record/carer-grants",
            Some(&cit),
            &json_ct,
            Some(json!({"carer": "carer-a", "kinds": ["Observation"]}).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(
        h.get(&format!("/fhir/Observation?patient={a}"), &carer)
            .await
            .status,
        200
    );
    let r = h.get(&format!("/fhir/Patient/{a}"), &carer).await;
    assert_eq!((r.status, reason(&r).as_str()), (403, "kind-not-granted"));

    // Analyst: never identifiable data.
    let an = h.login("analyst1").await;
    let r = h.get(&format!("/fhir/Patient/{a}"), &an).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "identifiable-data-not-for-secondary-use")
    );
    let r = h.get("/fhir/Patient?family=lovel", &an).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "identifiable-data-not-for-secondary-use")
    );
    let r = h
        .call(
            "GET",
            &format!("/fhir/Patient/{a}"),
            Some(&an),
            &[("x-purpose-of-use", "direct-care")],
            None,
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "purpose-not-permitted-for-role")
    );

    // Administrator: the audit, no clinical content.
    let adm = h.login("admin1").await;
    let r = h.get(&format!("/fhir/Patient/{a}"), &adm).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-clinical-content-for-administrators")
    );
    assert_eq!(
        h.get(&format!("/fhir/AuditEvent?patient={a}"), &adm)
            .await
            .status,
        200
    );

    // A system client with system/*.rs: reads everyone, writes nothing.
    let sys = h.system_token().await;
    let r = h
        .get(
            &format!(
                "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C{}",
                h.nhs_b
            ),
            &sys,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(entries_of(&r.json, "Patient").len(), 1);
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&sys),
            &[],
            Some(obs(&a, 1.0).to_string()),
        )
        .await;
    assert_eq!((r.status, reason(&r).as_str()), (403, "scope-not-granted"));
    // Records are never deleted, whoever asks.
    let r = h
        .call(
            "DELETE",
            &format!("/fhir/Patient/{a}"),
            Some(&gp),
            &[],
            None,
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "records-are-not-deleted")
    );
}

async fn break_glass_is_allowed_flagged_and_audited(h: &Harness) {
    let doc = h.login("doc-rx1").await;
    let c = h.c.clone();
    let uri = format!("/fhir/Patient/{c}");
    let r = h
        .call(
            "GET",
            &uri,
            Some(&doc),
            &[("x-purpose-of-use", "break-glass")],
            None,
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "break-glass-reason-invalid")
    );
    let bg = [
        ("x-purpose-of-use", "break-glass"),
        (
            "x-break-glass-reason",
            "unconscious in ED, no history available",
        ),
    ];
    let r = h.call("GET", &uri, Some(&doc), &bg, None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    // Read-only: no writes by break-glass.
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&doc),
            &bg,
            Some(obs(&c, 1.0).to_string()),
        )
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "break-glass-read-only")
    );
    // The citizen sees it, flagged for review with the reason.
    let cit = h.login("citizen-c").await;
    let r = h.get(&format!("/fhir/AuditEvent?patient={c}"), &cit).await;
    let flagged: Vec<&Value> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"]["outcome"] == "0"
                && e["resource"]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"]
                    == "break-glass"
        })
        .collect();
    assert_eq!(flagged.len(), 1, "{}", r.json);
    let ev = &flagged[0]["resource"];
    assert_eq!(ev["agent"][0]["who"]["identifier"]["value"], "doc-rx1");
    assert_eq!(
        ev["agent"][0]["purposeOfUse"][0]["text"],
        "unconscious in ED, no history available"
    );
    assert_eq!(ev["extension"][0]["valueCode"], "break-glass-review");
    assert_eq!(ev["agent"][0]["location"]["identifier"]["value"], "RX1");
}

async fn bundles_are_atomic(h: &Harness) {
    let gp = h.login("gp1").await;
    let a = h.a.clone();
    let before = h.count("Observation").await;
    // One bad entry (no status) → nothing written.
    let mut bad = obs(&a, 2.0);
    bad.as_object_mut().unwrap().remove("status");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs(&a, 1.0), "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
    ]});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(tx.to_string()))
        .await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(
        r.json["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.status"
    );
    assert_eq!(h.count("Observation").await, before);
    // One entry the user may not write (B) → 403, nothing written.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs(&a, 1.0), "request": {"method": "POST", "url": "Observation"}},
        {"resource": obs(&h.b, 1.0), "request": {"method": "POST", "url": "Observation"}},
    ]});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(tx.to_string()))
        .await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );
    assert_eq!(h.count("Observation").await, before);
    // the inserts begun while the entries were decided were rolled back, and the
    // decisions (the denial among them) audited on an intact chain
    let report = h.store.verify_audit(None).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let denied =
        sqlx::query("SELECT COUNT(*) AS n FROM audit WHERE line LIKE '%\"decision\":\"deny\"%'")
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert!(sqlx::Row::get::<i64, _>(&denied, "n") >= 1);
    // A reference to an unknown resource → 422.
    let mut dangling = obs(&a, 1.0);
    dangling["encounter"] = json!({"reference": "Encounter/does-not-exist"});
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": dangling, "request": {"method": "POST", "url": "Observation"}}]});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(tx.to_string()))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("unknown resource")
    );
    // A good transaction: urn:uuid references resolved, all written.
    let enc_before = h.count("Encounter").await;
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b9e7d1c-0000-4000-8000-000000000001", "resource": {
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": trent_fhir::ACT_CODE, "code": "AMB"},
            "subject": {"reference": format!("Patient/{a}")},
            "period": {"start": "2025-03-01T09:00:00Z", "end": "2025-03-01T09:15:00Z"},
            "serviceProvider": {"identifier": {"system": trent_fhir::ODS_CODE, "value": "C84001"}}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": {"resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            "subject": {"reference": format!("Patient/{a}")},
            "encounter": {"reference": "urn:uuid:0b9e7d1c-0000-4000-8000-000000000001"},
            "recordedDate": "2025-03-01"},
         "request": {"method": "POST", "url": "Condition"}},
    ]});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(tx.to_string()))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["type"], "transaction-response");
    assert_eq!(r.json["entry"][0]["response"]["status"], "201 Created");
    let enc_ref = r.json["entry"][1]["resource"]["encounter"]["reference"]
        .as_str()
        .unwrap();
    let enc_loc = r.json["entry"][0]["response"]["location"].as_str().unwrap();
    assert!(enc_loc.starts_with(enc_ref), "{enc_ref} vs {enc_loc}");
    assert_eq!(h.count("Encounter").await, enc_before + 1);
    // Batch: entries independent; the bad one fails alone.
    let mut bad = obs(&a, 2.0);
    bad["subject"] = json!({"reference": "Patient/nobody"});
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": obs(&a, 3.0), "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
    ]});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(batch.to_string()))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(r.json["entry"][1]["response"]["status"], "422");
    assert_eq!(h.count("Observation").await, before + 1);
    // Version conflicts: If-Match with a stale version → 412.
    let w = h.writer_token().await;
    let cur = h.get(&format!("/fhir/Patient/{a}"), &w).await;
    let mut p = cur.json.clone();
    p["name"][0]["given"] = json!(["Augusta", "Ada"]);
    let r = h
        .call(
            "PUT",
            &format!("/fhir/Patient/{a}"),
            Some(&w),
            &[("if-match", "W/\"1\"")],
            Some(p.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let r = h
        .call(
            "PUT",
            &format!("/fhir/Patient/{a}"),
            Some(&w),
            &[("if-match", "W/\"1\"")],
            Some(p.to_string()),
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.json);
    let r = h.get("/fhir/Patient?given=augusta", &w).await;
    assert_eq!(r.json["total"], 1);
}

async fn bad_input_gets_operation_outcomes(h: &Harness) {
    let w = h.writer_token().await;
    let a = h.a.clone();
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&w),
            &[],
            Some("{\"resourceType\": \"Observation\",".into()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("malformed JSON at line 1"),
        "{}",
        r.json
    );
    let big = format!(
        "{{\"resourceType\": \"Observation\", \"note\": [{{\"text\": \"{}\"}}]}}",
        "x".repeat(300 * 1024)
    );
    let r = h
        .call("POST", "/fhir/Observation", Some(&w), &[], Some(big))
        .await;
    assert_eq!(r.status, 413, "{}", r.json);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let patient = json!({"resourceType": "Patient",
        "identifier": [{"system": trent_fhir::NHS_NUMBER, "value": "9434765918"}],
        "name": [{"family": "Checkdigit"}]});
    let before = h.count("Patient").await;
    let r = h
        .call(
            "POST",
            "/fhir/Patient",
            Some(&w),
            &[],
            Some(patient.to_string()),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(
        r.json["issue"][0]["expression"][0],
        "Patient.identifier[0].value"
    );
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("check digit")
    );
    assert_eq!(h.count("Patient").await, before);
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&w),
            &[],
            Some(json!({"resourceType": "Patient"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&w),
            &[("content-type", "text/plain")],
            Some(obs(&a, 1.0).to_string()),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = h.get("/fhir/Patient?birthdat=1950", &w).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["issue"][0]["expression"][0], "birthdat");
    assert_eq!(h.get("/fhir/Practitioner/x", &w).await.status, 404);
    assert_eq!(h.get("/fhir/Patient/does-not-exist", &w).await.status, 404);
    assert_eq!(h.get("/nowhere", &w).await.status, 404);
    let r = h
        .call(
            "GET",
            &format!("/fhir/Patient/{a}"),
            Some(&w),
            &[("x-purpose-of-use", "nosiness")],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(
            "POST",
            "/fhir",
            Some(&w),
            &[],
            Some(json!({"resourceType": "Bundle", "type": "collection"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 400);
}

async fn paging_include_and_everything(h: &Harness) {
    let sys = h.system_token().await;
    let a = h.a.clone();
    // Paging: stable order, next links until the end, every match once.
    let mut uri = format!("/fhir/Observation?patient={a}&_count=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = h.get(&uri, &sys).await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["total"], 5);
        pages += 1;
        for e in entries_of(&r.json, "Observation") {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        let next = r.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next");
        match next {
            Some(l) => {
                uri = l["url"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("http://record.test")
                    .to_string()
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in id order without repeats");
    assert_eq!(seen.len(), 5);
    // Dates with prefixes.
    let r = h
        .get(
            &format!("/fhir/Observation?patient={a}&date=ge2024-02"),
            &sys,
        )
        .await;
    assert_eq!(r.json["total"], 3, "{}", r.json);
    let r = h
        .get(
            &format!("/fhir/Observation?patient={a}&date=lt2024-01-02"),
            &sys,
        )
        .await;
    assert_eq!(r.json["total"], 1);
    let r = h.get("/fhir/Patient?birthdate=1950-03-04", &sys).await;
    assert_eq!(r.json["total"], 1);
    let r = h
        .get("/fhir/Patient?birthdate=gt1985&gender=female", &sys)
        .await;
    assert_eq!(r.json["total"], 1);
    // _include: the subject with each encounter; the encounter with each condition.
    let r = h
        .get(
            &format!("/fhir/Encounter?patient={a}&_include=Encounter:subject"),
            &sys,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let pats = entries_of(&r.json, "Patient");
    assert_eq!(pats.len(), 1);
    assert_eq!(pats[0]["search"]["mode"], "include");
    let r = h.get("/fhir/Condition?code=http://hl7.org/fhir/sid/icd-10%7CI21.9&_include=Condition:encounter", &sys).await;
    assert_eq!(entries_of(&r.json, "Condition").len(), 1, "{}", r.json);
    assert_eq!(entries_of(&r.json, "Encounter").len(), 1);
    // _include respects access: the GP sees C's conditions' includes only for C.
    let gp = h.login("gp1").await;
    let r = h
        .get("/fhir/Condition?_include=Condition:subject", &gp)
        .await;
    assert!(
        entries_of(&r.json, "Patient")
            .iter()
            .all(|e| e["resource"]["id"] != h.b.as_str())
    );
    assert!(
        entries_of(&r.json, "Condition")
            .iter()
            .all(|e| e["resource"]["subject"]["reference"] != format!("Patient/{}", h.b))
    );
    // $everything.
    let r = h.get(&format!("/fhir/Patient/{a}/$everything"), &sys).await;
    assert_eq!(r.status, 200);
    assert_eq!(entries_of(&r.json, "Patient").len(), 1);
    assert_eq!(entries_of(&r.json, "Encounter").len(), 1);
    assert_eq!(entries_of(&r.json, "Condition").len(), 2);
    assert_eq!(entries_of(&r.json, "Observation").len(), 5);
    assert!(
        entries_of(&r.json, "Patient")
            .iter()
            .all(|e| e["resource"]["id"] == a.as_str())
    );
    // metadata lists exactly what is served.
    let r = h.call("GET", "/fhir/metadata", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/fhir+json");
    let types: Vec<&str> = r.json["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 10);
    assert!(types.contains(&"CarePlan") && types.contains(&"AuditEvent"));
}

async fn sign_in_throttling_sessions_and_clients(h: &Harness) {
    let wrong = |u: &str| json!({"username": u, "password": "not-the-password-1234"}).to_string();
    for i in 0..6 {
        let r = h
            .call(
                "POST",
                "/auth/login",
                None,
                &[("content-type", "application/json")],
                Some(wrong("gp1")),
            )
            .await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = h
        .call(
            "POST",
            "/auth/login",
            None,
            &[("content-type", "application/json")],
            Some(json!({"username": "gp1", "password": PASSWORD}).to_string()),
        )
        .await;
    assert_eq!(r.status, 429, "blocked even with the right password");
    assert!(r.headers.contains_key("retry-after"));
    h.advance(Duration::seconds(31));
    let tok = h.login("gp1").await;
    assert_eq!(
        h.get(&format!("/fhir/Patient/{}", h.a), &tok).await.status,
        200
    );
    // Activity keeps a session alive past the idle timeout (last_seen is stored at most
    // once a minute, so requests 10 minutes apart each move it) ...
    for _ in 0..3 {
        h.advance(Duration::minutes(10));
        assert_eq!(
            h.get(&format!("/fhir/Patient/{}", h.a), &tok).await.status,
            200
        );
    }
    // ... requests seconds apart need not write it, and the session still lasts ...
    h.advance(Duration::seconds(20));
    assert_eq!(
        h.get(&format!("/fhir/Patient/{}", h.a), &tok).await.status,
        200
    );
    // ... and 15 minutes of idleness (counted from the last stored activity at most) end it.
    h.advance(Duration::minutes(15));
    let r = h.get(&format!("/fhir/Patient/{}", h.a), &tok).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    let tok = h.login("gp1").await;
    let r = h.call("POST", "/auth/logout", Some(&tok), &[], None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        h.get(&format!("/fhir/Patient/{}", h.a), &tok).await.status,
        401
    );
    // OAuth2 errors (RFC 6749 §5.2).
    let r = h.client_token("sys-reader", "wrong", "").await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = h
        .client_token("sys-reader", &h.system_secret, "system/Patient.c")
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let r = h
        .call(
            "POST",
            "/auth/token",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("grant_type=password".into()),
        )
        .await;
    assert_eq!(r.json["error"], "unsupported_grant_type");
    let r = h
        .client_token("sys-reader", &h.system_secret, "system/Patient.rs")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["scope"], "system/Patient.rs");
    let t = r.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        h.get(&format!("/fhir/Condition?patient={}", h.a), &t)
            .await
            .status,
        403
    );
    h.advance(Duration::seconds(301));
    assert_eq!(
        h.get(&format!("/fhir/Patient/{}", h.a), &t).await.status,
        401,
        "tokens expire after 5 minutes"
    );
}

async fn loader_is_idempotent_and_audit_verifies(h: &Harness) {
    // Reloading a person changes nothing.
    let nhs = h.nhs_b.clone();
    let rec = trent_fhir::records::PersonRecord {
        patient: Some(trent_fhir::records::PatientRow {
            person_id: 2,
            nhs_number: &nhs,
            given_name: "Bob",
            family_name: "Lovell",
            birth_date: trent_model::time::days(1980, 6, 1),
            sex: "M",
            postcode: "NG2 2BB",
            address_line: "2 Test Street",
            practice_code: "Y00001",
            ethnicity: None,
            death_date: None,
        }),
        conditions: vec![trent_fhir::records::ConditionRow {
            code_system: "SNOMED",
            code: "195967001",
            recorded_date: trent_model::time::days(2020, 5, 5),
            activity_id: None,
        }],
        ..Default::default()
    };
    let r = h.store.load_person(&rec).await.unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 2), "{r:?}");
    // Some activity, then the chain verifies.
    let gp = h.login("gp1").await;
    for p in [&h.a, &h.b, &h.c] {
        h.get(&format!("/fhir/Patient/{p}"), &gp).await;
    }
    let report = h.store.verify_audit(None).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.lines >= 10, "{}", report.lines);
    let head = report.head.clone().unwrap();
    assert!(h.store.verify_audit(Some(&head)).await.unwrap().is_clean());
    // Tamper with one entry: hide who looked.
    let lines = h.store.audit_lines().await.unwrap();
    let (i, line) = lines
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.contains("\"who\":\"gp1\""))
        .unwrap();
    let seq = i as i64 + 1;
    sqlx::query("UPDATE audit SET line = $1 WHERE seq = $2")
        .bind(line.replace("\"who\":\"gp1\"", "\"who\":\"gp9\""))
        .bind(seq)
        .execute(h.store.pool())
        .await
        .unwrap();
    let report = h.store.verify_audit(Some(&head)).await.unwrap();
    assert!(!report.untampered());
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::HashMismatch { .. })),
        "{:?}",
        report.problems
    );
    // Deleting the last rows is caught against the checkpoint.
    sqlx::query("UPDATE audit SET line = $1 WHERE seq = $2")
        .bind(line.as_str())
        .bind(seq)
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(h.store.verify_audit(Some(&head)).await.unwrap().is_clean());
    sqlx::query("DELETE FROM audit WHERE seq = $1")
        .bind(head.seq as i64)
        .execute(h.store.pool())
        .await
        .unwrap();
    let report = h.store.verify_audit(Some(&head)).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::Truncated { .. })),
        "{:?}",
        report.problems
    );
    assert_eq!(h.store.schema_version().await.unwrap(), 4);
    // on PostgreSQL every key and index column compares byte by byte, as SQLite's do
    // (migration 4); elsewhere that migration ran nothing
    if h.store.backend() == trent_record::store::Backend::Postgres {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT table_name::text AS t, column_name::text AS c, COALESCE(collation_name::text, '') AS k FROM information_schema.columns WHERE table_schema = current_schema() AND ((table_name = 'resource' AND column_name IN ('res_type', 'res_id', 'person_id')) OR (table_name = 'idx_token' AND column_name = 'code') OR (table_name = 'idx_string' AND column_name = 'value') OR (table_name = 'audit' AND column_name = 'subject_person')) ORDER BY 1, 2",
        )
        .fetch_all(h.store.pool())
        .await
        .unwrap();
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r.get("t"), r.get("c"), r.get("k")))
            .collect();
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(got.iter().all(|(_, _, k)| k == "C"), "{got:?}");
    }
}

/// Sessions and relationship facts are cached for a second (crate::cache): a change made
/// through the store takes effect on the very next request all the same.
async fn changes_take_effect_at_once(h: &Harness) {
    let b = h.b.clone();
    let cm = h.login("cm1").await;
    for _ in 0..3 {
        assert_eq!(h.get(&format!("/fhir/Patient/{b}"), &cm).await.status, 200);
    }
    // taken off the team's caseload: refused at once
    h.store
        .set_caseload(
            &PersonId::new(&b).unwrap(),
            &TeamId::new("team-east").unwrap(),
            false,
        )
        .await
        .unwrap();
    let r = h.get(&format!("/fhir/Patient/{b}"), &cm).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "no-care-relationship")
    );
    // back on it: allowed at once
    h.store
        .set_caseload(
            &PersonId::new(&b).unwrap(),
            &TeamId::new("team-east").unwrap(),
            true,
        )
        .await
        .unwrap();
    assert_eq!(h.get(&format!("/fhir/Patient/{b}"), &cm).await.status, 200);
    // the account disabled: its session stops working at once
    h.store
        .set_account_disabled(&UserId::new("cm1").unwrap(), true)
        .await
        .unwrap();
    assert_eq!(h.get(&format!("/fhir/Patient/{b}"), &cm).await.status, 401);
    h.store
        .set_account_disabled(&UserId::new("cm1").unwrap(), false)
        .await
        .unwrap();
}

/// Every version stays readable: the current one from the resource table, superseded ones
/// (deletions included) from history; a search on `patient` / `subject` follows the person
/// through updates and deletion; `Prefer: return=minimal` leaves the resources out.
async fn versions_and_history(h: &Harness) {
    let w = h.writer_token().await;
    let a = h.a.clone();
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&w),
            &[],
            Some(obs(&a, 101.0).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_string();
    let subject_search = |param: &str| format!("/fhir/Observation?{param}=Patient/{a}&_count=1000");
    let found = |r: &Resp| {
        entries_of(&r.json, "Observation")
            .iter()
            .any(|e| e["resource"]["id"] == id.as_str())
    };
    for v in [102.0, 103.0] {
        let mut body = obs(&a, v);
        body["id"] = json!(id);
        let r = h
            .call(
                "PUT",
                &format!("/fhir/Observation/{id}"),
                Some(&w),
                &[],
                Some(body.to_string()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
    }
    for param in ["patient", "subject"] {
        let r = h.get(&subject_search(param), &w).await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert!(found(&r), "{param} search finds the updated resource");
    }
    // The API never deletes a person's record (it is corrected or marked
    // entered-in-error); the store can, and keeps the deletion as a version.
    let r = h
        .call(
            "DELETE",
            &format!("/fhir/Observation/{id}"),
            Some(&w),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    let deletion = trent_record::store::Write {
        res_type: "Observation".into(),
        id: id.clone(),
        json: Value::Null,
        extracted: Default::default(),
        expected_version: Some(3),
        delete: true,
        fresh: false,
    };
    let out = h
        .store
        .commit(&[deletion], &[], chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(out[0].version, 4);
    let r = h.get(&subject_search("patient"), &w).await;
    assert!(!found(&r), "a deleted resource is not found");
    for (v, value, deleted) in [
        (1, 101.0, false),
        (2, 102.0, false),
        (3, 103.0, false),
        (4, 103.0, true),
    ] {
        let got = h
            .store
            .get_version("Observation", &id, v)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("version {v} is kept"));
        assert_eq!(got.version, v);
        assert_eq!(got.deleted, deleted, "version {v}");
        assert_eq!(got.json["valueQuantity"]["value"], value, "version {v}");
        assert_eq!(got.json["meta"]["versionId"], v.to_string());
        assert_eq!(got.person.as_deref(), Some(a.as_str()));
    }
    assert!(
        h.store
            .get_version("Observation", &id, 5)
            .await
            .unwrap()
            .is_none()
    );
    // Prefer: return=minimal — status, Location and ETag, no resource echoed back.
    let minimal = [("prefer", "return=minimal")];
    let r = h
        .call(
            "POST",
            "/fhir/Observation",
            Some(&w),
            &minimal,
            Some(obs(&a, 99.0).to_string()),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.json.is_null(), "{}", r.json);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .contains("/_history/1")
    );
    assert_eq!(r.headers["etag"], "W/\"1\"");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs(&a, 1.0), "request": {"method": "POST", "url": "Observation"}},
        {"resource": obs(&a, 2.0), "request": {"method": "POST", "url": "Observation"}},
    ]});
    let r = h
        .call("POST", "/fhir", Some(&w), &minimal, Some(tx.to_string()))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert_eq!(e["response"]["status"], "201 Created");
        assert!(e.get("resource").is_none(), "{e}");
    }
    // the default is the representation
    let r = h
        .call("POST", "/fhir", Some(&w), &[], Some(tx.to_string()))
        .await;
    assert_eq!(
        r.json["entry"][0]["resource"]["resourceType"],
        "Observation"
    );
}

/// A bundle big enough that PostgreSQL's inserts go by `COPY` (text format, its own
/// escaping): every byte of awkward text — tab, newline, carriage return, backslash,
/// `\N` and `\.` (COPY's NULL and end-of-data), quotes, non-ASCII — comes back as sent,
/// in the resource and in its index rows, and the audit chain still verifies.
async fn large_bundles_keep_every_byte(h: &Harness) {
    use sqlx::Row;
    let gp = h.login("gp1").await;
    let before = h.count("Observation").await;
    let odd = |i: usize| format!("odd\\{i}\t\"q\"\n\r\\N\\.\u{e9}\u{2603}");
    let entries: Vec<Value> = (0..150)
        .map(|i| {
            let mut o = obs(&h.a, i as f64);
            o["code"]["coding"][0] =
                json!({"system": "http://example.org/odd\\codes", "code": odd(i)});
            o["note"] = json!([{"text": format!("line one\n\tline two \\ {i}")}]);
            json!({"resource": o, "request": {"method": "POST", "url": "Observation"}})
        })
        .collect();
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let r = h
        .call("POST", "/fhir", Some(&gp), &[], Some(tx.to_string()))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(h.count("Observation").await, before + 150);
    for (i, e) in r.json["entry"].as_array().unwrap().iter().enumerate() {
        let loc = e["response"]["location"].as_str().unwrap();
        let id = loc.split('/').nth(1).unwrap();
        let got = h.get(&format!("/fhir/Observation/{id}"), &gp).await;
        assert_eq!(got.status, 200, "{}", got.json);
        assert_eq!(got.json["code"]["coding"][0]["code"], odd(i));
        assert_eq!(
            got.json["note"][0]["text"],
            format!("line one\n\tline two \\ {i}")
        );
        let row = sqlx::query("SELECT system, code FROM idx_token WHERE res_type = 'Observation' AND res_id = $1 AND param = 'code'")
            .bind(id)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("code").unwrap(), odd(i));
        assert_eq!(
            row.try_get::<String, _>("system").unwrap(),
            "http://example.org/odd\\codes"
        );
        let person = sqlx::query(
            "SELECT person_id FROM resource WHERE res_type = 'Observation' AND res_id = $1",
        )
        .bind(id)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
        assert_eq!(
            person
                .try_get::<Option<String>, _>("person_id")
                .unwrap()
                .as_deref(),
            Some(h.a.as_str())
        );
    }
    let report = h.store.verify_audit(None).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = super::Harness::sqlite().await;
                    super::$name(&h).await;
                }
            )*
        }

        /// Every scenario against a throwaway PostgreSQL cluster (one database each).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_suite() {
            let Some(pg) = PgCluster::start() else { return };
            $(
                {
                    let h = Harness::postgres(&pg, stringify!($name)).await;
                    assert_eq!(h.store.backend(), trent_record::Backend::Postgres);
                    $name(&h).await;
                }
            )*
        }
    };
}

scenarios!(
    roles_see_what_they_should,
    break_glass_is_allowed_flagged_and_audited,
    bundles_are_atomic,
    bad_input_gets_operation_outcomes,
    paging_include_and_everything,
    sign_in_throttling_sessions_and_clients,
    loader_is_idempotent_and_audit_verifies,
    changes_take_effect_at_once,
    versions_and_history,
    large_bundles_keep_every_byte,
);

/// The router served over a real loopback socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trent_record::serve_on(h.state.clone(), listener, async {
        let _ = rx.await;
    }));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("CapabilityStatement"));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 401"));
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

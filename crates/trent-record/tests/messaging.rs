//! Transfers of care (`$process-message`, inbox, lake export), the outbox and `trent send`
//! delivery, audit verification, worklists, demo accounts, the OpenAPI document, and
//! request fuzzing — on SQLite and on a throwaway PostgreSQL cluster.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use trent_record::messaging::event_system;

const P: &str = "urn:uuid:6f0c0000-0000-4000-8000-000000000001";
const E: &str = "urn:uuid:6f0c0000-0000-4000-8000-000000000002";

fn header(id: &str, sender: &str, event: &str) -> Value {
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {
        "resourceType": "MessageHeader", "id": id,
        "eventCoding": {"system": event_system(), "code": event},
        "sender": {"identifier": {"system": trent_fhir::ODS_CODE, "value": sender}},
        "source": {"endpoint": "https://rx1.example/fhir"},
        "focus": [{"reference": E}],
    }})
}

fn message(id: &str, sender: &str, event: &str, rest: Vec<Value>) -> Value {
    let mut entry = vec![header(id, sender, event)];
    entry.extend(rest);
    json!({"resourceType": "Bundle", "id": format!("b-{id}"), "type": "message", "entry": entry})
}

fn patient(nhs: &str) -> Value {
    json!({"fullUrl": P, "resource": {"resourceType": "Patient",
        "identifier": [{"system": trent_fhir::NHS_NUMBER, "value": nhs}],
        "name": [{"family": "Sender-Side", "given": ["Name"]}], "gender": "female", "birthDate": "1950-03-04"}})
}

fn encounter(class: &str) -> Value {
    json!({"fullUrl": E, "resource": {"resourceType": "Encounter", "status": "finished",
        "class": {"system": trent_fhir::ACT_CODE, "code": class},
        "subject": {"reference": P},
        "period": {"start": "2025-06-01T09:00:00Z", "end": "2025-06-03T12:00:00Z"},
        "serviceProvider": {"identifier": {"system": trent_fhir::ODS_CODE, "value": "RX1"}}}})
}

fn condition(n: u32) -> Value {
    json!({"fullUrl": format!("urn:uuid:6f0c0000-0000-4000-8000-1000000000{n:02}"), "resource": {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "22298006"}]},
        "subject": {"reference": P}, "encounter": {"reference": E}, "recordedDate": "2025-06-03"}})
}

fn discharge(id: &str, nhs: &str) -> Value {
    message(
        id,
        "RX1",
        "discharge-summary",
        vec![patient(nhs), encounter("IMP"), condition(1)],
    )
}

fn response_code(r: &Resp) -> (String, String) {
    let h = &r.json["entry"][0]["resource"];
    (
        h["response"]["identifier"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        h["response"]["code"].as_str().unwrap_or("").to_string(),
    )
}

async fn sender_token(h: &Harness) -> String {
    h.store.register_sender("sys-writer", "RX1").await.unwrap();
    h.writer_token().await
}

async fn inbox_count(h: &Harness) -> usize {
    h.store.inbox_ids().await.unwrap().len()
}

async fn transfers_of_care(h: &Harness) {
    let tok = sender_token(h).await;
    let post = |body: Value, tok: String| async move {
        h.call(
            "POST",
            "/fhir/$process-message",
            Some(&tok),
            &[],
            Some(body.to_string()),
        )
        .await
    };
    let before_enc = h.count("Encounter").await;
    let before_pat = h.count("Patient").await;
    // A discharge summary about a known person (matched on NHS number).
    let r = post(discharge("msg-1", &h.nhs_a), tok.clone()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["type"], "message");
    assert_eq!(response_code(&r), ("msg-1".into(), "ok".into()));
    let focus: Vec<String> = r.json["entry"][0]["resource"]["focus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(focus.len(), 2, "{focus:?}");
    assert_eq!(h.count("Encounter").await, before_enc + 1);
    assert_eq!(
        h.count("Patient").await,
        before_pat,
        "a known person is matched, not re-created"
    );
    // The encounter belongs to person A, and RX1 now has a care relationship.
    let enc = h
        .store
        .get("Encounter", focus[0].split('/').nth(1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(enc.person.as_deref(), Some(h.a.as_str()));
    assert_eq!(enc.json["subject"]["reference"], format!("Patient/{}", h.a));
    // Idempotent: the same message id gets the same response and writes nothing.
    let again = post(discharge("msg-1", &h.nhs_a), tok.clone()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json, r.json);
    assert_eq!(h.count("Encounter").await, before_enc + 1);
    assert_eq!(inbox_count(h).await, 1);
    // The lake export: one NDJSON file, the Patient first, every line a resource.
    let files: Vec<_> = std::fs::read_dir(&h.lake)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with("-msg-1.ndjson"));
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["resourceType"], "Patient");
    assert_eq!(lines[0]["id"], h.a.as_str());
    assert_eq!(lines[1]["resourceType"], "Encounter");
    // A person unknown to the record arrives with an A&E attendance: created.
    let new_nhs = (40_000_001u32..)
        .find_map(trent_model::nhs_number::test_range_number)
        .unwrap();
    let r = post(
        message(
            "msg-2",
            "RX1",
            "ae-attendance",
            vec![patient(&new_nhs), encounter("EMER")],
        ),
        tok.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(h.count("Patient").await, before_pat + 1);
    // A referral by the BaRS event code; a care-plan update.
    let mut referral = message(
        "msg-3",
        "RX1",
        "referral-request",
        vec![
            patient(&h.nhs_a),
            json!({"fullUrl": E, "resource": {"resourceType": "ServiceRequest",
            "status": "active", "intent": "order", "subject": {"reference": P},
            "authoredOn": "2025-06-03",
            "performer": [{"identifier": {"system": trent_fhir::ODS_CODE, "value": "C84001"}}]}}),
        ],
    );
    referral["entry"][0]["resource"]["eventCoding"] =
        json!({"system": trent_record::messaging::BARS_EVENTS, "code": "servicerequest-request"});
    let r = post(referral, tok.clone()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let plan = message(
        "msg-4",
        "RX1",
        "care-plan-update",
        vec![
            patient(&h.nhs_a),
            json!({"fullUrl": E, "resource": {"resourceType": "CarePlan",
            "status": "active", "intent": "plan", "subject": {"reference": P}}}),
        ],
    );
    assert_eq!(post(plan, tok.clone()).await.status, 200);

    // Bad content: a fatal-error response, kept in the inbox, nothing written; a repeat
    // gets the same answer.
    let mut bad = discharge("msg-5", &h.nhs_a);
    bad["entry"][3]["resource"]["subject"] = json!({"reference": "Patient/no-such-person"});
    let enc_before = h.count("Encounter").await;
    let r = post(bad.clone(), tok.clone()).await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(response_code(&r), ("msg-5".into(), "fatal-error".into()));
    let oo = &r.json["entry"][1]["resource"];
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let diag = oo["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(diag.contains("Patient/no-such-person"), "{diag}");
    assert_eq!(
        oo["issue"][0]["expression"][0], "Bundle.entry[3].resource",
        "{oo}"
    );
    assert_eq!(
        h.count("Encounter").await,
        enc_before,
        "atomic: nothing written"
    );
    let again = post(bad, tok.clone()).await;
    assert_eq!((again.status, &again.json), (422, &r.json));
    // An event the record does not accept; a message without the event's focus.
    let r = post(
        discharge("msg-6", &h.nhs_a)
            .tap(|m| m["entry"][0]["resource"]["eventCoding"]["code"] = json!("lab-result")),
        tok.clone(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("lab-result")
    );
    let r = post(
        message(
            "msg-7",
            "RX1",
            "discharge-summary",
            vec![patient(&h.nhs_a), condition(2)],
        ),
        tok.clone(),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(response_code(&r).1, "fatal-error");
    // A type the record does not hold.
    let r = post(message("msg-8", "RX1", "discharge-summary", vec![encounter("IMP"), json!({"fullUrl": "urn:uuid:6f0c0000-0000-4000-8000-00000000aaaa", "resource": {"resourceType": "Practitioner"}})]), tok.clone()).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json["entry"][1]["resource"]["issue"][0]["expression"][0],
        "Bundle.entry[2].resource.resourceType"
    );

    // Unknown senders: a client not registered as a sender; a sender claiming another
    // organisation; a person's session. Plain OperationOutcomes; nothing kept.
    let n = inbox_count(h).await;
    let reader = h.system_token().await;
    let r = post(discharge("msg-9", &h.nhs_a), reader).await;
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("unknown sender")
    );
    let mut forged = discharge("msg-10", &h.nhs_a);
    forged["entry"][0]["resource"]["sender"]["identifier"]["value"] = json!("RX2");
    let r = post(forged, tok.clone()).await;
    assert_eq!(r.status, 403);
    assert!(
        r.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("RX2")
    );
    let gp = h.login("gp1").await;
    assert_eq!(post(discharge("msg-11", &h.nhs_a), gp).await.status, 403);
    // Not a message / no header id / malformed JSON.
    let r = post(
        json!({"resourceType": "Bundle", "type": "transaction"}),
        tok.clone(),
    )
    .await;
    assert_eq!(r.status, 400);
    let mut noid = discharge("x", &h.nhs_a);
    noid["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert_eq!(post(noid, tok.clone()).await.status, 400);
    let r = h
        .call(
            "POST",
            "/fhir/$process-message",
            Some(&tok),
            &[],
            Some("{\"resourceType\":".into()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(inbox_count(h).await, n);
    // Every write and decision is in a chain that verifies.
    assert!(h.store.verify_audit(None).await.unwrap().is_clean());
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

async fn audit_verify_detects_tampering(h: &Harness) {
    use trent_record::cli::{verdict, verify_audit};
    let gp = h.login("gp1").await;
    for _ in 0..3 {
        assert_eq!(
            h.get(&format!("/fhir/Patient/{}", h.a), &gp).await.status,
            200
        );
    }
    let ok = verify_audit(&h.store, None).await.unwrap();
    assert!(ok.untampered());
    assert!(verdict(&ok).starts_with("OK: "), "{}", verdict(&ok));
    let lines = ok.lines;
    assert!(lines >= 3);
    // Edit one row: changing the purpose in the stored line breaks its hash.
    use sqlx::Row;
    let row = sqlx::query("SELECT seq, line FROM audit WHERE seq = 2")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    let line: String = row.try_get("line").unwrap();
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v["who"] = json!("someone-else");
    sqlx::query("UPDATE audit SET line = $1 WHERE seq = 2")
        .bind(v.to_string())
        .execute(h.store.pool())
        .await
        .unwrap();
    let bad = verify_audit(&h.store, None).await.unwrap();
    assert!(!bad.untampered());
    let text = verdict(&bad);
    assert!(text.starts_with("BROKEN: row 2"), "{text}");
    // Restore, then delete a row in the middle: the gap is found.
    sqlx::query("UPDATE audit SET line = $1 WHERE seq = 2")
        .bind(line)
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(verify_audit(&h.store, None).await.unwrap().untampered());
    sqlx::query("DELETE FROM audit WHERE seq = 3")
        .execute(h.store.pool())
        .await
        .unwrap();
    let bad = verify_audit(&h.store, None).await.unwrap();
    let text = verdict(&bad);
    assert!(
        text.starts_with("BROKEN: row 3") && text.contains("missing"),
        "{text}"
    );
}

async fn worklists_are_identified_only_for_the_practice(h: &Harness) {
    let body = json!({"practice": "C84001", "rows": [
        {"person": h.a, "score": 0.91, "reasons": ["frailty", "recent admission"]},
        {"person": h.b, "score": 0.5, "reasons": []},
        {"person": h.c, "score": 0.2},
        {"person": "no-such-person", "score": 0.1},
    ]})
    .to_string();
    let gp = h.login("gp1").await;
    let r = h
        .call(
            "POST",
            "/record/worklist",
            Some(&gp),
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let rows = r.json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["nhs_number"], h.nhs_a.as_str());
    assert_eq!(rows[0]["name"], "Ada Lovelace");
    assert_eq!(rows[0]["score"], 0.91);
    assert_eq!(rows[0]["reasons"][1], "recent admission");
    assert!(rows[1].get("nhs_number").is_none());
    assert!(rows[1]["withheld"].is_string(), "{}", rows[1]);
    assert_eq!(rows[2]["name"], "Cara Lovelace");
    assert_eq!(rows[3]["withheld"], "unknown-person");
    // One audit entry per person decided, before the answer.
    let trail = h.store.audit_for_person(&h.a).await.unwrap();
    assert!(
        trail.iter().any(|e| e.allowed && e.who.as_str() == "gp1"),
        "{trail:?}"
    );
    // A clinician of another organisation, an analyst, a citizen: refused.
    for user in ["doc-rx1", "analyst1", "citizen-a"] {
        let t = h.login(user).await;
        let r = h
            .call(
                "POST",
                "/record/worklist",
                Some(&t),
                &[],
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 403, "{user}: {}", r.json);
    }
    let r = h
        .call(
            "POST",
            "/record/worklist",
            Some(&gp),
            &[],
            Some(json!({"practice": "C84001", "rows": [{"score": 1}]}).to_string()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["issue"][0]["expression"][0], "rows[0].person");
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

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_messaging_suite() {
            let Some(pg) = PgCluster::start() else { return };
            $(
                {
                    let h = Harness::postgres(&pg, concat!("m_", stringify!($name))).await;
                    assert_eq!(h.store.backend(), trent_record::Backend::Postgres);
                    $name(&h).await;
                }
            )*
        }
    };
}

scenarios!(
    transfers_of_care,
    audit_verify_detects_tampering,
    worklists_are_identified_only_for_the_practice,
);

/// A second server that answers 503 to the first `fail` messages, then passes them on.
async fn flaky_server(h: &Harness, fail: usize) -> (String, tokio::sync::oneshot::Sender<()>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let app = trent_record::router(h.state.clone()).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                if req.uri().path().ends_with("$process-message")
                    && seen.fetch_add(1, Ordering::SeqCst) < fail
                {
                    return axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "down for maintenance",
                    ));
                }
                next.run(req).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}/fhir"), tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_retries_backs_off_and_dead_letters() {
    use trent_record::outbox::{Outbox, OutboxPolicy, OutboxStatus};
    let receiver = Harness::sqlite().await;
    let tok = sender_token(&receiver).await;
    let (url, stop) = flaky_server(&receiver, 2).await;
    // The sender: its own store and outbox.
    let dir = tempfile::tempdir().unwrap();
    let sender = trent_record::Store::open_sqlite(&dir.path().join("s.db"))
        .await
        .unwrap();
    let policy = OutboxPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
    };
    let outbox = Outbox::new(sender.clone(), policy);
    let msg = discharge("out-1", &receiver.nhs_a);
    let t = std::time::Instant::now();
    let id = outbox
        .enqueue(&url, &msg, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(id, "out-1");
    // Enqueuing again is a no-op.
    outbox
        .enqueue(&url, &msg, chrono::Utc::now())
        .await
        .unwrap();
    let item = outbox
        .deliver_until_settled(&id, &url, Some(&tok))
        .await
        .unwrap();
    assert_eq!(item.status, OutboxStatus::Delivered, "{item:?}");
    assert_eq!(item.attempts, 3, "two 503s, then ok");
    assert_eq!(item.response_code.as_deref(), Some("ok"));
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "backed off 20 + 40 ms"
    );
    assert_eq!(
        receiver.store.inbox_ids().await.unwrap(),
        vec!["out-1".to_string()]
    );
    // Already delivered: another attempt changes nothing and sends nothing.
    let again = outbox.attempt(&id, &url, Some(&tok)).await.unwrap();
    assert_eq!(again.attempts, 3);
    stop.send(()).unwrap();

    // A receiver that is never up: dead-lettered after max_attempts.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = format!("http://{free}/fhir");
    let msg2 = discharge("out-2", &receiver.nhs_a);
    outbox
        .enqueue(&nowhere, &msg2, chrono::Utc::now())
        .await
        .unwrap();
    let item = outbox
        .deliver_until_settled("out-2", &nowhere, Some(&tok))
        .await
        .unwrap();
    assert_eq!(item.status, OutboxStatus::Dead);
    assert_eq!(item.attempts, 5);
    assert!(
        item.last_error.as_deref().unwrap().contains("connecting"),
        "{item:?}"
    );

    // A fatal error is not retried: rejected at once.
    let (url, stop) = flaky_server(&receiver, 0).await;
    let mut bad = discharge("out-3", &receiver.nhs_a);
    bad["entry"][2]["resource"]["subject"] = json!({"reference": "Patient/nobody"});
    outbox
        .enqueue(&url, &bad, chrono::Utc::now())
        .await
        .unwrap();
    let item = outbox
        .deliver_until_settled("out-3", &url, Some(&tok))
        .await
        .unwrap();
    assert_eq!(item.status, OutboxStatus::Rejected, "{item:?}");
    assert_eq!(item.attempts, 1);
    assert_eq!(item.response_code.as_deref(), Some("fatal-error"));
    // Without a token: 401, rejected (no point retrying without credentials).
    outbox
        .enqueue(
            &url,
            &discharge("out-4", &receiver.nhs_a),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let item = outbox
        .deliver_until_settled("out-4", &url, None)
        .await
        .unwrap();
    assert_eq!(item.status, OutboxStatus::Rejected);
    assert_eq!(item.response_code.as_deref(), Some("http-401"));
    // Not a message: refused at enqueue.
    assert!(
        outbox
            .enqueue(
                &url,
                &json!({"resourceType": "Patient"}),
                chrono::Utc::now()
            )
            .await
            .is_err()
    );
    assert!(
        outbox
            .enqueue("https://secure.example/fhir", &msg, chrono::Utc::now())
            .await
            .is_err()
    );
    stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trent_send_delivers_a_file() {
    use trent_record::cli::{DatabaseArgs, SendArgs, run_send, send_succeeded};
    let receiver = Harness::sqlite().await;
    let tok = sender_token(&receiver).await;
    let (url, stop) = flaky_server(&receiver, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.json");
    std::fs::write(&file, discharge("send-1", &receiver.nhs_a).to_string()).unwrap();
    let args = SendArgs {
        db: DatabaseArgs::default(),
        to: url.clone(),
        token: Some(tok),
        max_attempts: 3,
        backoff_ms: 10,
        file: file.clone(),
    };
    let item = run_send(&args, dir.path()).await.unwrap();
    assert!(send_succeeded(&item), "{item:?}");
    assert_eq!(item.attempts, 2);
    assert!(dir.path().join("record/record.db").exists());
    std::fs::write(&file, "{not json").unwrap();
    let e = run_send(&args, dir.path()).await.unwrap_err().to_string();
    assert!(e.contains("msg.json") && e.contains("line 1"), "{e}");
    stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_accounts_openapi_and_audit_cli() {
    use trent_access::OdsCode;
    use trent_record::cli::*;
    let h = Harness::sqlite().await;
    let practice = most_common_practice(&h.store).await.unwrap();
    assert_eq!(practice.as_deref(), Some("C84001"));
    let p = OdsCode::new("C84001").unwrap();
    let created = ensure_demo_accounts(&h.store, Some(&p), None, chrono::Utc::now())
        .await
        .unwrap();
    let roles: Vec<&str> = created.iter().map(|c| c.role).collect();
    assert_eq!(
        roles,
        [
            "citizen",
            "carer",
            "clinician",
            "case-manager",
            "analyst",
            "administrator",
            "system"
        ]
    );
    assert!(created.iter().all(|c| c.secret.len() >= 20));
    assert_ne!(created[0].secret, created[1].secret);
    // Shown once: a second call creates nothing.
    assert!(
        ensure_demo_accounts(&h.store, Some(&p), None, chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    // The demo clinician signs in with the printed password and sees the practice's people.
    let clin = created.iter().find(|c| c.role == "clinician").unwrap();
    let r = h
        .call(
            "POST",
            "/auth/login",
            None,
            &[("content-type", "application/json")],
            Some(json!({"username": clin.user, "password": clin.secret}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200);
    let t = r.json["token"].as_str().unwrap();
    assert_eq!(
        h.get(&format!("/fhir/Patient/{}", h.a), t).await.status,
        200
    );
    // The demo system client can send messages for the practice.
    let sys = created.iter().find(|c| c.role == "system").unwrap();
    assert_eq!(
        h.store
            .sender_organisation("demo-system")
            .await
            .unwrap()
            .as_deref(),
        Some("C84001")
    );
    let r = h.client_token("demo-system", &sys.secret, "").await;
    assert_eq!(r.status, 200, "{}", r.json);
    // OpenAPI, without authentication.
    let r = h.call("GET", "/openapi.json", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.0.3");
    assert!(r.json["paths"]["/fhir/Patient/{id}"]["get"].is_object());
    // `trent audit verify` over a data directory.
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&DatabaseArgs::default(), dir.path())
        .await
        .unwrap();
    ensure_demo_accounts(&store, None, None, chrono::Utc::now())
        .await
        .unwrap();
    let args = AuditVerifyArgs {
        db: DatabaseArgs::default(),
        checkpoint: None,
    };
    assert!(run_audit_verify(&args, dir.path()).await.unwrap());
    let bad = AuditVerifyArgs {
        db: DatabaseArgs::default(),
        checkpoint: Some("nonsense".into()),
    };
    assert!(run_audit_verify(&bad, dir.path()).await.is_err());
}

/// A small seeded generator (SplitMix64), so the fuzz cases are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random JSON shaped like FHIR: resource types, element names and values that the
/// server reads, nested at random, with wrong types and odd strings.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "resourceType",
        "id",
        "type",
        "entry",
        "resource",
        "request",
        "method",
        "url",
        "fullUrl",
        "subject",
        "reference",
        "status",
        "class",
        "code",
        "coding",
        "system",
        "period",
        "start",
        "end",
        "identifier",
        "value",
        "name",
        "family",
        "given",
        "birthDate",
        "gender",
        "meta",
        "eventCoding",
        "sender",
        "source",
        "endpoint",
        "intent",
        "performer",
        "serviceProvider",
        "generalPractitioner",
        "effectiveDateTime",
        "encounter",
        "ifMatch",
        "rows",
        "person",
        "practice",
        "score",
        "reasons",
    ];
    const STRINGS: &[&str] = &[
        "Patient",
        "Encounter",
        "Bundle",
        "transaction",
        "batch",
        "message",
        "MessageHeader",
        "POST",
        "PUT",
        "DELETE",
        "Patient/1",
        "urn:uuid:6f0c0000-0000-4000-8000-000000000001",
        "finished",
        "2025-13-45",
        "2025-06-01T09:00:00Z",
        "",
        "\u{0}",
        "ü",
        "9434765919",
        "https://fhir.nhs.uk/Id/nhs-number",
        "C84001",
        "Patient?identifier=x|y",
        "../..",
        "%zz",
        "W/\"x\"",
        "discharge-summary",
    ];
    match (rng.below(if depth > 3 { 5 } else { 8 }), depth) {
        (0, _) => Value::Null,
        (1, _) => json!(rng.below(3) == 0),
        (2, _) => json!(rng.next() as i64 >> rng.below(64)),
        (3, _) => json!((rng.next() as f64) / 7.0 - 1e18),
        (4, _) => json!(STRINGS[rng.below(STRINGS.len())]),
        (5, d) => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, d + 1))
                .collect(),
        ),
        (_, d) => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                m.insert(KEYS[rng.below(KEYS.len())].into(), random_value(rng, d + 1));
            }
            Value::Object(m)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_bodies_get_4xx_never_5xx() {
    let h = Harness::sqlite().await;
    let writer = sender_token(&h).await;
    let gp = h.login("gp1").await;
    let mut rng = Rng(0x7E57_2026);
    let endpoints = [
        ("POST", "/fhir".to_string()),
        ("POST", "/fhir/Patient".to_string()),
        ("POST", "/fhir/Encounter".to_string()),
        ("POST", "/fhir/Observation".to_string()),
        ("PUT", format!("/fhir/Patient/{}", h.a)),
        ("PUT", "/fhir/Condition/fuzz-1".to_string()),
        ("POST", "/fhir/$process-message".to_string()),
        ("POST", "/record/worklist".to_string()),
        ("POST", "/record/carer-grants".to_string()),
        ("POST", "/auth/login".to_string()),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..600 {
        let (method, uri) = &endpoints[i % endpoints.len()];
        // Mostly structured JSON; sometimes a truncated or byte-mangled text.
        let mut v = random_value(&mut rng, 0);
        if rng.below(2) == 0 && v.is_object() {
            v["resourceType"] =
                json!(["Bundle", "Patient", "Encounter", "Observation"][rng.below(4)]);
        }
        let mut body = v.to_string().into_bytes();
        match rng.below(6) {
            0 if !body.is_empty() => body.truncate(rng.below(body.len())),
            1 if !body.is_empty() => {
                let at = rng.below(body.len());
                body[at] = (rng.next() & 0xff) as u8;
            }
            _ => {}
        }
        let token = if uri.contains("worklist") {
            &gp
        } else {
            &writer
        };
        let body = String::from_utf8_lossy(&body).into_owned();
        let r = h
            .call(method, uri, Some(token), &[], Some(body.clone()))
            .await;
        assert!(
            r.status < 500,
            "case {i}: {method} {uri} {body} → {} {}",
            r.status,
            r.json
        );
        if r.status >= 400 && uri != "/auth/login" {
            assert!(
                r.json["resourceType"] == "OperationOutcome" || r.json["resourceType"] == "Bundle",
                "case {i}: {} {}",
                r.status,
                r.json
            );
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    // The loop reached the parsers, not only the first check.
    assert!(
        statuses.contains_key(&400) && statuses.contains_key(&422),
        "{statuses:?}"
    );
    assert!(h.store.verify_audit(None).await.unwrap().is_clean());
}

//! A kill -9 during a stream of messages loses no acknowledged message: a server process
//! (this test binary re-executed in child mode) takes transfers of care while the parent
//! streams them; the parent kills it with SIGKILL mid-stream, restarts it, and checks that
//! every message it was answered `ok` for is in the inbox with its writes, and that a
//! resend is answered from the inbox without writing again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use trent_access::UserId;
use trent_access::auth::ClientRegistration;
use trent_record::http;
use trent_record::{AppState, Config, Store};

const CHILD_ENV: &str = "TRENT_RECORD_CRASH_CHILD";

/// Child mode: serve the store in `$TRENT_RECORD_CRASH_CHILD` on a free port, print it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_server() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open_sqlite(&Path::new(&dir).join("record.db"))
        .await
        .unwrap();
    let config = Config {
        log_requests: false,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("PORT {}", listener.local_addr().unwrap().port());
    trent_record::serve_on(
        AppState::new(store, config),
        listener,
        std::future::pending(),
    )
    .await
    .unwrap();
}

fn spawn_child(dir: &Path) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
        // libtest may print "test crash_child_server ... " before it on the same line
        if let Some(p) = line.split("PORT ").nth(1) {
            break p.trim().parse::<u16>().unwrap();
        }
    };
    // Keep draining the child's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (child, port)
}

fn message(i: usize, nhs: &str) -> Value {
    let id = format!("crash-{i:05}");
    let u = |n: u32| format!("urn:uuid:6f0c{n:04x}-0000-4000-8000-{i:012}");
    json!({"resourceType": "Bundle", "type": "message", "entry": [
        {"fullUrl": u(0), "resource": {"resourceType": "MessageHeader", "id": id,
            "eventCoding": {"system": trent_record::messaging::event_system(), "code": "ae-attendance"},
            "sender": {"identifier": {"system": trent_fhir::ODS_CODE, "value": "RX1"}},
            "source": {"endpoint": "https://rx1.example/fhir"}}},
        {"fullUrl": u(1), "resource": {"resourceType": "Patient",
            "identifier": [{"system": trent_fhir::NHS_NUMBER, "value": nhs}]}},
        {"fullUrl": u(2), "resource": {"resourceType": "Encounter", "status": "finished",
            "class": {"system": trent_fhir::ACT_CODE, "code": "EMER"},
            "subject": {"reference": u(1)},
            "period": {"start": "2025-06-01T09:00:00Z", "end": "2025-06-01T13:00:00Z"},
            "serviceProvider": {"identifier": {"system": trent_fhir::ODS_CODE, "value": "RX1"}}}},
    ]})
}

async fn token(port: u16, secret: &str) -> String {
    let body = format!("grant_type=client_credentials&client_id=sys-sender&client_secret={secret}");
    let r = http::request(
        "POST",
        &format!("http://127.0.0.1:{port}/auth/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn post(port: u16, tok: &str, m: &Value) -> Result<(u16, Value), http::HttpError> {
    let auth = format!("Bearer {tok}");
    let r = http::request(
        "POST",
        &format!("http://127.0.0.1:{port}/fhir/$process-message"),
        &[
            ("Content-Type", "application/fhir+json"),
            ("Authorization", &auth),
        ],
        Some(m.to_string().as_bytes()),
        Duration::from_secs(10),
    )
    .await?;
    Ok((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_message() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = {
        let store = Store::open_sqlite(&dir.path().join("record.db"))
            .await
            .unwrap();
        let (secret, reg) =
            ClientRegistration::register(UserId::new("sys-sender").unwrap(), "system/*.cruds")
                .unwrap();
        store.register_client(&reg).await.unwrap();
        store.register_sender("sys-sender", "RX1").await.unwrap();
        store.pool().close().await;
        secret.expose().to_string()
    };
    let nhs = (50_000_001u32..)
        .find_map(trent_model::nhs_number::test_range_number)
        .unwrap();
    let (mut child, port) = spawn_child(dir.path());
    let tok = token(port, &secret).await;
    // Stream messages from two concurrent senders; kill -9 the server mid-stream.
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for lane in 0..2usize {
        let (tok, nhs, stop) = (tok.clone(), nhs.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = lane;
            while !stop.load(Ordering::SeqCst) {
                match post(port, &tok, &message(i, &nhs)).await {
                    Ok((200, v)) => {
                        let h = &v["entry"][0]["resource"]["response"];
                        assert_eq!(h["code"], "ok", "{v}");
                        acked.push(h["identifier"].as_str().unwrap().to_string());
                    }
                    Ok((s, v)) => panic!("message {i}: HTTP {s} {v}"),
                    Err(_) => break, // the server is gone
                }
                i += 2;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() >= 10,
        "only {} messages acknowledged before the kill",
        acked.len()
    );
    // Restart; every acknowledged message is in the inbox with its encounter.
    let (mut child, port) = spawn_child(dir.path());
    let store = Store::open_sqlite(&dir.path().join("record.db"))
        .await
        .unwrap();
    let inbox: std::collections::HashSet<String> =
        store.inbox_ids().await.unwrap().into_iter().collect();
    for id in &acked {
        assert!(inbox.contains(id), "acknowledged message {id} lost");
    }
    // every message wrote its encounter; the shared Patient was written once, by whichever
    // of the two lanes' messages committed first (later ones find it unchanged)
    let mut patient_writes = 0;
    for id in &inbox {
        let m = store.inbox_message(id).await.unwrap().unwrap();
        assert_eq!(m.outcome, "ok");
        let encounters = m
            .written
            .iter()
            .filter(|w| w.starts_with("Encounter/"))
            .count();
        assert_eq!(encounters, 1, "{id}: {:?}", m.written);
        patient_writes += m
            .written
            .iter()
            .filter(|w| w.starts_with("Patient/"))
            .count();
        assert_eq!(
            m.written.len(),
            encounters
                + m.written
                    .iter()
                    .filter(|w| w.starts_with("Patient/"))
                    .count()
        );
        let enc = m
            .written
            .iter()
            .find(|w| w.starts_with("Encounter/"))
            .unwrap();
        let (t, rid) = enc.split_once('/').unwrap();
        assert!(
            store.get(t, rid).await.unwrap().is_some(),
            "{id}: {enc} missing"
        );
    }
    assert_eq!(patient_writes, 1, "the Patient is written exactly once");
    assert!(store.verify_audit(None).await.unwrap().untampered());
    // Resending an acknowledged message is answered from the inbox: nothing written twice.
    let tok = token(port, &secret).await;
    let n_before = store.inbox_ids().await.unwrap().len();
    let first = &acked[0];
    let i: usize = first.trim_start_matches("crash-").parse().unwrap();
    let (s, v) = post(port, &tok, &message(i, &nhs)).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        v["entry"][0]["resource"]["response"]["identifier"],
        first.as_str()
    );
    assert_eq!(store.inbox_ids().await.unwrap().len(), n_before);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "kill -9: {} acknowledged before the kill, {} in the inbox after restart, none lost",
        acked.len(),
        inbox.len()
    );
}

//! `trent serve` end to end: the shared care record is built from a synthetic lake and its
//! vault, served over HTTP with demo accounts, reloaded only when the lake changes, and
//! fuzzed by schemathesis from its own OpenAPI description (installed by ./test.sh).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use trent_record::http;

fn trent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trent"))
}

/// A running `trent serve` with what it printed up to "serving".
struct Server {
    child: Child,
    base: String,
    printed: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // `Server`'s drop kills and waits; a failed start ends the test
fn serve(data: &Path, extra: &[&str]) -> Server {
    let mut child = trent()
        .args(["--data", data.to_str().unwrap(), "serve", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "trent serve stopped before serving:\n{printed}");
        printed.push_str(&line);
        if let Some(rest) = line.strip_prefix("trent-record serving ") {
            let base = rest.split_whitespace().next().unwrap();
            let base = base.trim_end_matches("/fhir").to_string();
            // keep draining stdout so the server never blocks on a full pipe
            std::thread::spawn(move || for _ in out.lines() {});
            return Server {
                child,
                base,
                printed,
            };
        }
    }
}

/// The secret printed for a demo account.
fn secret(printed: &str, user: &str) -> String {
    printed
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(user)).then(|| w.nth(1).unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no {user} in:\n{printed}"))
}

async fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        h.push(("authorization", a));
    }
    let r = http::request(
        method,
        url,
        &h,
        body.map(str::as_bytes),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

async fn login(base: &str, user: &str, password: &str) -> String {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let (s, v) = call("POST", &format!("{base}/auth/login"), None, Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_builds_the_record_from_the_lake_and_passes_the_fuzzer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = trent()
        .args(["synth", "--scale", "0.001", "--out", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // first start: the record store is built from the lake and vault
    let s = serve(&data, &[]);
    assert!(s.printed.contains("record store built:"), "{}", s.printed);
    let created: u64 = s
        .printed
        .split("record store built: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(created > 1000, "{}", s.printed);
    // the record store is identifiable: its folder is owner-only, like the vault
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("record"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "record folder mode {mode:o}");
    }
    for role in [
        "demo-citizen",
        "demo-carer",
        "demo-clinician",
        "demo-case-manager",
        "demo-analyst",
        "demo-admin",
        "demo-system",
    ] {
        assert!(s.printed.contains(role), "{role} missing:\n{}", s.printed);
    }
    let base = s.base.clone();

    // a clinician finds named patients of their practice; an analyst never sees them
    let gp = login(
        &base,
        "demo-clinician",
        &secret(&s.printed, "demo-clinician"),
    )
    .await;
    let practice = s
        .printed
        .lines()
        .find(|l| l.trim_start().starts_with("demo-clinician"))
        .and_then(|l| l.split("organisation ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let (st, bundle) = call(
        "GET",
        &format!("{base}/fhir/Patient?general-practitioner={practice}&_count=5"),
        Some(&gp),
        None,
    )
    .await;
    assert_eq!(st, 200, "{bundle}");
    let first = &bundle["entry"][0]["resource"];
    assert!(first["name"][0]["family"].is_string(), "{bundle}");
    let nhs = first["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(nhs.len(), 10);
    let pid = first["id"].as_str().unwrap().to_string();
    let (st, every) = call(
        "GET",
        &format!("{base}/fhir/Patient/{pid}/$everything"),
        Some(&gp),
        None,
    )
    .await;
    assert_eq!(st, 200, "{every}");
    let analyst = login(&base, "demo-analyst", &secret(&s.printed, "demo-analyst")).await;
    let (st, denied) = call(
        "GET",
        &format!("{base}/fhir/Patient/{pid}"),
        Some(&analyst),
        None,
    )
    .await;
    assert_eq!(st, 403, "{denied}");
    assert!(!denied.to_string().contains(&nhs));

    // the fuzzer, driven by the server's own OpenAPI description, as the system client
    let st_bin = std::env::var("TRENT_SCHEMATHESIS")
        .ok()
        .filter(|p| Path::new(p).exists());
    match st_bin {
        None => {
            assert!(
                std::env::var_os("TRENT_REQUIRE_TOOLS").is_none(),
                "TRENT_SCHEMATHESIS is not an installed schemathesis (./test.sh installs it)"
            );
            eprintln!("SKIPPED: schemathesis not installed (run ./test.sh)");
        }
        Some(bin) => {
            let sys_secret = secret(&s.printed, "demo-system");
            let form = format!(
                "grant_type=client_credentials&client_id=demo-system&client_secret={sys_secret}&scope=system/*.cruds"
            );
            let r = http::request(
                "POST",
                &format!("{base}/auth/token"),
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(form.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let token = v["access_token"].as_str().unwrap().to_string();
            let report = dir.path().join("schemathesis");
            let out = tokio::task::spawn_blocking({
                let base = base.clone();
                move || {
                    Command::new(bin)
                        .args([
                            "run",
                            &format!("{base}/openapi.json"),
                            "--header",
                            &format!("Authorization: Bearer {token}"),
                            "--checks",
                            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                            "--max-examples",
                            "15",
                            "--seed",
                            "20261123",
                            "--workers",
                            "1",
                            "--no-color",
                            "--request-timeout",
                            "30",
                            "--report-dir",
                            report.to_str().unwrap(),
                        ])
                        .env("SCHEMATHESIS_HOOKS", "")
                        .output()
                        .unwrap()
                }
            })
            .await
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "schemathesis found problems:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("passed"), "{text}");
        }
    }
    drop(s);

    // second start: the lake has not changed, so nothing is loaded again
    let s = serve(&data, &["--no-demo-accounts"]);
    assert!(!s.printed.contains("record store built"), "{}", s.printed);
    let (st, _) = call(
        "GET",
        &format!("{}/fhir/Patient/{pid}", s.base),
        Some(&gp),
        None,
    )
    .await;
    assert_eq!(
        st, 200,
        "sessions survive a restart (they are in the store)"
    );
}

//! Test harness: a record store (SQLite in a temp dir, or a database in a throwaway
//! PostgreSQL cluster started here), loaded with three synthetic people through the
//! loader, one account per role, and an HTTP client over the router (`oneshot`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;
use trent_access::auth::ClientRegistration;
use trent_access::{OdsCode, PersonId, ResourceKind, Role, TeamId, UserId};
use trent_fhir::records::*;
use trent_record::{Account, AppState, Config, Store, router};

pub const PASSWORD: &str = "violet-tractor-harbour-92";

pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub headers: HeaderMap,
}

pub struct Harness {
    pub store: Store,
    pub state: AppState,
    pub clock: Arc<Mutex<DateTime<Utc>>>,
    /// Patient ids of the three people.
    pub a: String,
    pub b: String,
    pub c: String,
    pub nhs_a: String,
    pub nhs_b: String,
    pub system_secret: String,
    pub writer_secret: String,
    /// Where accepted messages are exported for the lake.
    pub lake: PathBuf,
    _dir: Option<tempfile::TempDir>,
    _lake: tempfile::TempDir,
}

fn nhs(stem: u32) -> String {
    (stem..)
        .find_map(trent_model::nhs_number::test_range_number)
        .unwrap()
}

/// Days since 1970 for a date.
fn days(y: i32, m: u32, d: u32) -> i32 {
    trent_model::time::days(y, m, d)
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("record.db"))
            .await
            .unwrap();
        Harness::build(store, Some(dir)).await
    }

    pub async fn postgres(pg: &PgCluster, name: &str) -> Harness {
        let url = pg.fresh_database(name).await;
        let store = Store::connect(&url).await.unwrap();
        Harness::build(store, None).await
    }

    async fn build(store: Store, dir: Option<tempfile::TempDir>) -> Harness {
        let now = Utc::now();
        let clock = Arc::new(Mutex::new(now));
        let c2 = clock.clone();
        let lake_dir = tempfile::tempdir().unwrap();
        let config = Config {
            max_body_bytes: 256 * 1024,
            log_requests: false,
            lake_export: Some(lake_dir.path().join("outgoing-lake")),
            ..Config::default()
        };
        let state =
            AppState::new(store.clone(), config).with_clock(Arc::new(move || *c2.lock().unwrap()));
        let (nhs_a, nhs_b, nhs_c) = (nhs(10_000_001), nhs(20_000_001), nhs(30_000_001));
        let secs = now.timestamp();
        let day = 86_400;
        // A: registered at C84001; an inpatient stay at RX1 that ended 10 days ago.
        let a = PersonRecord {
            patient: Some(PatientRow {
                person_id: 1,
                nhs_number: &nhs_a,
                given_name: "Ada",
                family_name: "Lovelace",
                birth_date: days(1950, 3, 4),
                sex: "F",
                postcode: "NG1 1AA",
                address_line: "1 Test Street",
                practice_code: "C84001",
                ethnicity: Some("A"),
                death_date: None,
            }),
            activity: vec![activity(
                101,
                "apc",
                secs - 14 * day,
                Some(secs - 10 * day),
                "RX1",
            )],
            conditions: vec![
                ConditionRow {
                    code_system: "SNOMED",
                    code: "44054006",
                    recorded_date: days(2015, 1, 1),
                    activity_id: None,
                },
                ConditionRow {
                    code_system: "ICD10",
                    code: "I219",
                    recorded_date: days(2025, 1, 1),
                    activity_id: Some(101),
                },
            ],
            observations: (0..5)
                .map(|i| ObservationRow {
                    code: "271649006",
                    value: Some(120.0 + i as f64),
                    unit: Some("mm[Hg]"),
                    obs_date: days(2024, 1, 1) + i * 30,
                })
                .collect(),
            medications: vec![],
            social_care: vec![],
            referrals: vec![],
        };
        // B: registered elsewhere, no relationship with anyone below.
        let b = PersonRecord {
            patient: Some(PatientRow {
                person_id: 2,
                nhs_number: &nhs_b,
                given_name: "Bob",
                family_name: "Lovell",
                birth_date: days(1980, 6, 1),
                sex: "M",
                postcode: "NG2 2BB",
                address_line: "2 Test Street",
                practice_code: "Y00001",
                ethnicity: None,
                death_date: None,
            }),
            conditions: vec![ConditionRow {
                code_system: "SNOMED",
                code: "195967001",
                recorded_date: days(2020, 5, 5),
                activity_id: None,
            }],
            ..Default::default()
        };
        // C: registered at C84001 too.
        let c = PersonRecord {
            patient: Some(PatientRow {
                person_id: 3,
                nhs_number: &nhs_c,
                given_name: "Cara",
                family_name: "Lovelace",
                birth_date: days(1990, 12, 31),
                sex: "F",
                postcode: "NG3 3CC",
                address_line: "3 Test Street",
                practice_code: "C84001",
                ethnicity: None,
                death_date: None,
            }),
            ..Default::default()
        };
        for rec in [&a, &b, &c] {
            let r = store.load_person(rec).await.unwrap();
            assert!(r.created > 0, "{r:?}");
        }
        let id = |pid: u64| trent_fhir::uuid("Patient", pid);
        let (ia, ib, ic) = (id(1), id(2), id(3));
        let acct = |user: &str,
                    role: Role,
                    org: Option<&str>,
                    team: Option<&str>,
                    person: Option<&str>| Account {
            user: UserId::new(user).unwrap(),
            role,
            organisation: org.map(|o| OdsCode::new(o).unwrap()),
            team: team.map(|t| TeamId::new(t).unwrap()),
            person: person.map(|p| PersonId::new(p).unwrap()),
            disabled: false,
        };
        for a in [
            acct("gp1", Role::Clinician, Some("C84001"), None, None),
            acct("doc-rx1", Role::Clinician, Some("RX1"), None, None),
            acct(
                "cm1",
                Role::CaseManager,
                Some("ZZ9"),
                Some("team-east"),
                None,
            ),
            acct("citizen-a", Role::Citizen, None, None, Some(&ia)),
            acct("citizen-c", Role::Citizen, None, None, Some(&ic)),
            acct("carer-a", Role::Carer, None, None, None),
            acct("analyst1", Role::Analyst, None, None, None),
            acct("admin1", Role::Administrator, None, None, None),
        ] {
            store.create_account(&a, PASSWORD, now).await.unwrap();
        }
        // A shares demographics and conditions (not observations) with carer-a.
        store
            .put_carer_grant(
                "grant-1",
                &PersonId::new(&ia).unwrap(),
                &trent_access::CarerGrant {
                    carer: UserId::new("carer-a").unwrap(),
                    kinds: vec![ResourceKind::Patient, ResourceKind::Condition],
                    expires: None,
                    revoked: None,
                },
            )
            .await
            .unwrap();
        store
            .set_caseload(
                &PersonId::new(&ib).unwrap(),
                &TeamId::new("team-east").unwrap(),
                true,
            )
            .await
            .unwrap();
        let (secret, reg) =
            ClientRegistration::register(UserId::new("sys-reader").unwrap(), "system/*.rs")
                .unwrap();
        store.register_client(&reg).await.unwrap();
        let (wsecret, wreg) =
            ClientRegistration::register(UserId::new("sys-writer").unwrap(), "system/*.cruds")
                .unwrap();
        store.register_client(&wreg).await.unwrap();
        Harness {
            store,
            state,
            clock,
            a: ia,
            b: ib,
            c: ic,
            nhs_a,
            nhs_b,
            system_secret: secret.expose().to_string(),
            writer_secret: wsecret.expose().to_string(),
            lake: lake_dir.path().join("outgoing-lake"),
            _dir: dir,
            _lake: lake_dir,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().unwrap()
    }

    pub fn advance(&self, by: Duration) {
        *self.clock.lock().unwrap() += by;
    }

    /// One request through the router, as if from 127.0.0.1.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "record.test");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/fhir+json");
        }
        let mut req = b.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            json,
            headers,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call("GET", uri, Some(token), &[], None).await
    }

    pub async fn login(&self, user: &str) -> String {
        let r = self
            .call(
                "POST",
                "/auth/login",
                None,
                &[("content-type", "application/json")],
                Some(json!({"username": user, "password": PASSWORD}).to_string()),
            )
            .await;
        assert_eq!(r.status, 200, "login {user}: {}", r.json);
        r.json["token"].as_str().unwrap().to_string()
    }

    pub async fn client_token(&self, id: &str, secret: &str, scope: &str) -> Resp {
        let body = format!(
            "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope={}",
            scope.replace(' ', "+").replace('/', "%2F")
        );
        self.call(
            "POST",
            "/auth/token",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body),
        )
        .await
    }

    pub async fn system_token(&self) -> String {
        let r = self
            .client_token("sys-reader", &self.system_secret.clone(), "")
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["access_token"].as_str().unwrap().to_string()
    }

    pub async fn writer_token(&self) -> String {
        let r = self
            .client_token("sys-writer", &self.writer_secret.clone(), "")
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["access_token"].as_str().unwrap().to_string()
    }

    pub async fn count(&self, res_type: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM resource WHERE res_type = $1 AND deleted = 0")
            .bind(res_type)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap()
    }
}

fn activity(
    id: i64,
    setting: &'static str,
    start: i64,
    end: Option<i64>,
    provider: &'static str,
) -> ActivityRow<'static> {
    ActivityRow {
        activity_id: id,
        setting,
        start_ts: start,
        end_ts: end,
        provider_code: provider,
        site_code: None,
        admission_method: None,
        patient_class: None,
        primary_diagnosis: Some("I219"),
        specialty: Some("320"),
        cost_gbp: 1000.0,
        discharge_destination: None,
        los_days: None,
        medically_fit_date: None,
        arrival_mode: None,
        ambulance_category: None,
        response_minutes: None,
        referral_id: None,
    }
}

pub fn reason(r: &Resp) -> String {
    r.json["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn entries_of<'a>(bundle: &'a Value, res_type: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["resource"]["resourceType"] == res_type)
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ PostgreSQL

static DB_SEQ: AtomicU64 = AtomicU64::new(0);

/// A throwaway PostgreSQL cluster in a temp dir, on a free loopback port, run as the
/// `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_user: Option<String>,
}

fn find_pg_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TRENT_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

impl PgCluster {
    /// Starts a cluster, or `None` (with the reason printed) when no PostgreSQL binaries exist.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_pg_bin() else {
            // ./test.sh installs PostgreSQL and sets this: there, a missing server is a failure
            assert!(
                std::env::var_os("TRENT_REQUIRE_TOOLS").is_none(),
                "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (./test.sh installs them)"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL binaries under /usr/lib/postgresql/*/bin (set TRENT_PG_BIN); PostgreSQL tests not run"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "trent-record-pg-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let as_user = is_root().then(|| "postgres".to_string());
        if let Some(u) = &as_user {
            let ok = Command::new("chown")
                .arg(u)
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to {u}", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PgCluster {
            bin,
            dir,
            port,
            as_user,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "trent",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        Some(pg)
    }

    fn run(&self, prog: &str, args: &[&str]) {
        let exe = self.bin.join(prog);
        let out = match &self.as_user {
            Some(u) => Command::new("runuser")
                .arg("-u")
                .arg(u)
                .arg("--")
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        }
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{prog} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://trent@127.0.0.1:{}/{db}", self.port)
    }

    pub async fn fresh_database(&self, name: &str) -> String {
        use sqlx::Connection;
        let db = format!(
            "t{}_{}",
            DB_SEQ.fetch_add(1, Ordering::SeqCst),
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut conn)
            .await
            .unwrap();
        self.url(&db)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"];
        let _ = match &self.as_user {
            Some(u) => Command::new("runuser")
                .arg("-u")
                .arg(u)
                .arg("--")
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

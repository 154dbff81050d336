//! An open-loop HTTP load generator for the record API's benchmark (`bench/record.py`
//! runs it against a live `trent serve`).
//!
//! Why open loop: a closed-loop tool (each connection waits for its answer before the next
//! request) slows down when the server does and so hides latency ("coordinated
//! omission"). Here request `i` is due at `start + i / rate`; a latency is measured from
//! when the request was due, not from when it was sent, so a stall shows up in the tail.
//!
//! ```sh
//! cargo run --release -p trent-record --example loadgen -- \
//!     http://127.0.0.1:8080 TOKEN PATHS.txt --rate 1000 --seconds 60 --connections 16
//! ```
//! `PATHS.txt` holds one request path per line (`/fhir/Patient/…`), used in turn. Prints
//! one JSON object: requests, ok (2xx), errors, achieved rate, latency percentiles in ms.
//! `--timeline FILE` also writes every request's due time and latency (CSV).
//!
//! ```sh
//! loadgen BASE_URL TOKEN --post BUNDLE.json… [--prefer return=minimal]
//! ```
//! posts each transaction bundle in turn on one connection (closed loop: one at a time,
//! as a sending system would) and prints the resources per second of each, counting a
//! bundle only when its response is 200 and says every entry was created (201). The
//! benchmark's bundles go through here rather than from Python so that the client's own
//! work — building the request, reading and checking a response of a thousand entries —
//! takes little of the two cores the server and PostgreSQL share with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use trent_record::http::{Conn, Url};

fn arg_after(args: &[String], flag: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} {v}: not a number"))
        })
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!(
            "usage: loadgen BASE_URL TOKEN PATHS.txt [--rate N] [--seconds N] [--connections N]"
        );
        std::process::exit(2);
    }
    let base = Url::parse(&args[0]).unwrap_or_else(|e| panic!("{e}"));
    let token = format!("Bearer {}", args[1]);
    if args[2] == "--post" {
        return post_bundles(&base, &token, &args[3..]).await;
    }
    let paths: Vec<String> = std::fs::read_to_string(&args[2])
        .unwrap_or_else(|e| panic!("{}: {e}", args[2]))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(!paths.is_empty(), "{}: no paths", args[2]);
    let rate = arg_after(&args, "--rate", 1000.0);
    let seconds = arg_after(&args, "--seconds", 60.0);
    let conns = arg_after(&args, "--connections", 16.0) as usize;
    let total = (rate * seconds) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(paths);
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (next, paths, token, authority) = (
            next.clone(),
            paths.clone(),
            token.clone(),
            base.authority.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut errors) = (0usize, 0usize);
            let mut first_error: Option<String> = None;
            let mut conn: Option<Conn> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                if conn.is_none() {
                    conn = Conn::connect(&authority, Duration::from_secs(5)).await.ok();
                }
                let path = &paths[i % paths.len()];
                let r = match conn.as_mut() {
                    Some(c) => c
                        .send(
                            "GET",
                            path,
                            &[("authorization", token.as_str())],
                            None,
                            Duration::from_secs(10),
                        )
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err("cannot connect".to_string()),
                };
                lat.push((i, due.elapsed().as_secs_f64() * 1000.0));
                match r {
                    Ok(resp) if (200..300).contains(&resp.status) => ok += 1,
                    Ok(resp) => {
                        errors += 1;
                        first_error.get_or_insert(format!("HTTP {} for {path}", resp.status));
                    }
                    Err(e) => {
                        errors += 1;
                        conn = None;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (lat, ok, errors, first_error)
        }));
    }
    let mut timed = Vec::with_capacity(total);
    let (mut ok, mut errors) = (0, 0);
    let mut first_error = None;
    for t in tasks {
        let (l, o, e, f) = t.await.expect("worker");
        timed.extend(l);
        ok += o;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(i) = args.iter().position(|a| a == "--timeline") {
        // each request's due time (ms from the start) and latency, in due order: whether
        // the tail is spread out or made of stalls
        timed.sort_by_key(|&(i, _)| i);
        let mut out = String::from("due_ms,latency_ms\n");
        for (i, l) in &timed {
            out.push_str(&format!("{:.3},{l:.3}\n", *i as f64 * 1000.0 / rate));
        }
        let path = args.get(i + 1).expect("--timeline FILE");
        std::fs::write(path, out).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let mut lat: Vec<f64> = timed.iter().map(|&(_, l)| l).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(), "ok": ok, "errors": errors, "first_error": first_error,
            "target_rate": rate, "achieved_rate": lat.len() as f64 / elapsed,
            "seconds": elapsed, "connections": conns,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "max_ms": lat.last().copied().unwrap_or(f64::NAN),
        })
    );
}

/// `--post`: each bundle file in turn, one request at a time on one connection.
async fn post_bundles(base: &Url, token: &str, args: &[String]) {
    let prefer = args
        .iter()
        .position(|a| a == "--prefer")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let files: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--prefer"))
        .map(|(_, a)| a)
        .collect();
    assert!(!files.is_empty(), "--post: no bundle files");
    let mut conn = Conn::connect(&base.authority, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut headers = vec![
        ("authorization", token),
        ("content-type", "application/fhir+json"),
    ];
    if let Some(p) = &prefer {
        headers.push(("prefer", p.as_str()));
    }
    let mut rates = Vec::new();
    for f in files {
        let body = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let sent: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{f}: {e}"));
        let n = sent["entry"].as_array().map_or(0, Vec::len);
        let t = Instant::now();
        let r = conn
            .send(
                "POST",
                "/fhir",
                &headers,
                Some(&body),
                Duration::from_secs(120),
            )
            .await
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        // read as any client must: the response parsed, every entry created
        let got: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{f}: response is not JSON: {e}"));
        let secs = t.elapsed().as_secs_f64();
        let created = got["entry"].as_array().map_or(0, |es| {
            es.iter()
                .filter(|e| {
                    e["response"]["status"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("201"))
                })
                .count()
        });
        assert!(
            r.status == 200 && created == n,
            "{f}: HTTP {}, {created} of {n} entries created: {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
        );
        rates.push(n as f64 / secs);
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "bundles": rates.len(), "resources_per_s": rates,
            "median_per_s": sorted[sorted.len() / 2], "prefer": prefer,
        })
    );
}

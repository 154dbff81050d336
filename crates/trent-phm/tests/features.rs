//! Features on a small synthetic lake: the DataFusion plans and the row-by-row reference
//! give the same numbers for every person and feature; segments cover everyone; index
//! dates outside the lake are refused with the reason.

use std::sync::OnceLock;

use trent_lake::Lake;
use trent_phm::features::{self, IndexDate};
use trent_phm::segment::{self, Segment};
use trent_places::Area;
use trent_synth::{SynthOptions, synthesize, time};

fn lake() -> &'static tempfile::TempDir {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let area = Area::bundled("nottinghamshire").unwrap();
        let opts = SynthOptions {
            scale: 0.01,
            years: 3,
            start: time::parse("2014-04-01").unwrap(),
            seed: 11,
            threads: 2,
            max_partition: 80_000,
            progress: false,
            fhir: false,
        };
        synthesize(&area, &opts, dir.path()).unwrap();
        dir
    })
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_equals_reference() {
    let lake = Lake::open(lake().path()).unwrap();
    let ctx = lake.session().await.unwrap();
    for date in ["2015-04-01", "2015-10-15", "2016-10-15"] {
        let d = IndexDate::check(date, &lake.catalog.span_start, &lake.catalog.span_end).unwrap();
        let fast = features::compute(&ctx, d).await.unwrap();
        let slow = features::reference(&ctx, d).await.unwrap();
        assert!(fast.len() > 5_000, "{date}: {} people", fast.len());
        assert_eq!(fast.person_id, slow.person_id, "{date}: the same people");
        assert_eq!(fast.practice, slow.practice);
        assert_eq!(fast.names, slow.names);
        assert_eq!(fast.outcome, slow.outcome, "{date}: outcome");
        for (k, name) in fast.names.iter().enumerate() {
            for i in 0..fast.len() {
                assert!(
                    same(fast.columns[k].get(i), slow.columns[k].get(i)),
                    "{date}: {name} of person {}: fast {} reference {}",
                    fast.person_id[i],
                    fast.columns[k].get(i),
                    slow.columns[k].get(i)
                );
            }
            // every feature varies (a constant column would mean a broken window)
            let col = &fast.columns[k];
            let first = col.iter().find(|x| !x.is_nan());
            assert!(
                col.iter().any(|x| !x.is_nan() && Some(x) != first),
                "{date}: feature {name} is constant"
            );
        }
        let Some(out) = fast.outcome.as_ref() else {
            assert!(
                date > "2016-04-01",
                "{date}: the lake covers its outcome year"
            );
            continue;
        };
        let rate = out.iter().map(|&x| f64::from(x)).sum::<f64>() / out.len() as f64;
        assert!((0.02..0.2).contains(&rate), "{date}: outcome rate {rate}");
        // segments: everyone has one, and the big ones are populated
        let segs = segment::segments(&fast);
        for s in [
            Segment::Healthy,
            Segment::ChronicConditions,
            Segment::Frailty,
        ] {
            assert!(
                segs.iter().filter(|x| **x == s).count() > 50,
                "{date}: {s:?}"
            );
        }
    }
}

/// Several dates in one pass (each table read once, the union of their windows) give
/// each date's features exactly as computing that date alone does — including dates
/// whose populations and windows differ and overlap, given out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_dates_in_one_pass_equal_one_date_at_a_time() {
    let lake = Lake::open(lake().path()).unwrap();
    let ctx = lake.session().await.unwrap();
    let (s, e) = (&lake.catalog.span_start, &lake.catalog.span_end);
    let ds: Vec<IndexDate> = ["2016-10-15", "2015-04-01", "2015-10-15", "2017-04-01"]
        .iter()
        .map(|x| IndexDate::check(x, s, e).unwrap())
        .collect();
    let many = features::compute_many(&ctx, &ds).await.unwrap();
    assert_eq!(many.len(), ds.len());
    for (d, m) in ds.iter().zip(&many) {
        let one = features::compute(&ctx, *d).await.unwrap();
        let date = time::iso(d.day);
        assert_eq!(m.index_day, d.day);
        assert_eq!(m.person_id, one.person_id, "{date}: the same people");
        assert_eq!(m.practice, one.practice);
        assert_eq!(m.outcome, one.outcome, "{date}: outcome");
        assert_eq!(m.malformed_codes, one.malformed_codes);
        for (k, name) in one.names.iter().enumerate() {
            for i in 0..one.len() {
                assert!(
                    same(m.columns[k].get(i), one.columns[k].get(i)),
                    "{date}: {name} of person {}: together {} alone {}",
                    one.person_id[i],
                    m.columns[k].get(i),
                    one.columns[k].get(i)
                );
            }
        }
    }
    // the populations differ, so the test sees people enter and leave
    assert_ne!(many[1].len(), many[3].len());
}

/// A date computed only for a model (f32, `Precision::Model`) holds each value rounded
/// once, and its matrix is the very matrix the full-precision features give: the same
/// columns, ids, labels and fairness groups (segments included). At full precision a
/// column of whole numbers is held in f32 and shared with the matrix, not copied, and a
/// column of fractions keeps its f64 values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_for_the_model_gives_the_same_matrix() {
    use trent_phm::features::{Column, Precision};
    let lake = Lake::open(lake().path()).unwrap();
    let ctx = lake.session().await.unwrap();
    let (s, e) = (&lake.catalog.span_start, &lake.catalog.span_end);
    let ds: Vec<IndexDate> = ["2017-04-01", "2016-04-01"]
        .iter()
        .map(|x| IndexDate::check(x, s, e).unwrap())
        .collect();
    let mixed = features::compute_dates(&ctx, &ds, &[Precision::Full, Precision::Model])
        .await
        .unwrap();
    let [full0, m] = &mixed[..] else {
        panic!("one feature set a date")
    };
    let full = features::compute_many(&ctx, &ds).await.unwrap();
    let bits = |c: &Column| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(full0.person_id, full[0].person_id);
    for (k, name) in full0.names.iter().enumerate() {
        assert!(
            bits(&full0.columns[k]) == bits(&full[0].columns[k]),
            "{name} at full precision beside a date for the model"
        );
    }
    let f = &full[1];
    assert_eq!(m.person_id, f.person_id);
    assert_eq!(m.outcome, f.outcome);
    assert_eq!(m.malformed_codes, f.malformed_codes);
    for (k, name) in f.names.iter().enumerate() {
        assert!(
            matches!(m.columns[k], Column::F32(_)),
            "{name} for the model"
        );
        for i in 0..f.len() {
            let (a, b) = (m.columns[k].get(i) as f32, f.columns[k].get(i) as f32);
            assert!(
                a == b || (a.is_nan() && b.is_nan()),
                "{name}: {a} against {b}"
            );
        }
    }
    // whole numbers in f32, fractions in f64, at full precision
    for (name, c) in f.names.iter().zip(&f.columns) {
        let fractions = ["efi", "hfrs", "cms"].contains(&name.as_str());
        assert!(
            fractions || matches!(c, Column::F32(_)),
            "{name} is whole numbers or flags"
        );
    }
    assert!(
        matches!(f.column("efi").unwrap(), Column::F64(_)),
        "efi is fractions"
    );
    let want = trent_phm::stratify::matrix(f).unwrap();
    let got = trent_phm::stratify::matrix(m).unwrap();
    assert_eq!(got.ids(), want.ids());
    assert_eq!(got.labels(), want.labels());
    assert_eq!(got.groups(), want.groups());
    assert_eq!(got.n_features(), want.n_features());
    for j in 0..want.n_features() {
        let bits32 = |c: &[f32]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits32(got.column(j)) == bits32(want.column(j)),
            "matrix column {j}"
        );
        // an f32 column is the matrix's own, not a copy
        if let Column::F32(v) = &f.columns[j] {
            assert!(
                std::ptr::eq(v.as_ptr(), want.column(j).as_ptr()),
                "column {j} shared"
            );
        }
    }
    assert!(got.groups().iter().any(|g| g.name == "segment"));
    // scoring needs no groups: the same columns without them
    let scoring = trent_phm::stratify::scoring_matrix(f).unwrap();
    assert!(scoring.groups().is_empty());
    assert_eq!(scoring.n_features(), want.n_features());
}

/// The statement `trent stratify --dump-sql` gives DuckDB in the benchmark, run through
/// DataFusion, finds the same people and the same values as trent's features engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_sql_equals_the_engine() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, Int64Type};
    let lake = Lake::open(lake().path()).unwrap();
    let ctx = lake.session().await.unwrap();
    let d = IndexDate::check(
        "2016-01-10",
        &lake.catalog.span_start,
        &lake.catalog.span_end,
    )
    .unwrap();
    let fast = features::compute(&ctx, d).await.unwrap();
    let stmt = &features::sql(d.day)[0].1;
    let batches = ctx.sql(stmt).await.unwrap().collect().await.unwrap();
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let ids =
        arrow::compute::cast(b.column_by_name("person_id").unwrap(), &DataType::Int64).unwrap();
    assert_eq!(
        ids.as_primitive::<Int64Type>().values(),
        &fast.person_id[..]
    );
    let mut compared = 0;
    for (k, name) in fast.names.iter().enumerate() {
        let Some(c) = b.column_by_name(name) else {
            continue;
        };
        let c = arrow::compute::cast(c, &DataType::Float64).unwrap();
        let c = c.as_primitive::<Float64Type>();
        for i in 0..fast.len() {
            let v = if c.is_null(i) { f64::NAN } else { c.value(i) };
            assert!(
                same(v, fast.columns[k].get(i)),
                "{name} of person {}: SQL {v} engine {}",
                fast.person_id[i],
                fast.columns[k].get(i)
            );
        }
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} features compared");
}

#[test]
fn index_dates_outside_the_lake_are_refused() {
    let e = IndexDate::check("2014-06-01", "2014-04-01", "2017-03-31").unwrap_err();
    assert!(
        e.to_string().contains("earliest index date is 2015-04-01"),
        "{e}"
    );
    let e = IndexDate::check("2018-01-01", "2014-04-01", "2017-03-31").unwrap_err();
    assert!(
        e.to_string().contains("latest index date is 2017-04-01"),
        "{e}"
    );
    let e = IndexDate::check("2016-13-01", "2014-04-01", "2017-03-31").unwrap_err();
    assert!(e.to_string().contains("not a date"), "{e}");
    let d = IndexDate::check("2016-04-01", "2014-04-01", "2017-03-31").unwrap();
    assert!(d.has_outcome);
    let d = IndexDate::check("2016-06-01", "2014-04-01", "2017-03-31").unwrap();
    assert!(!d.has_outcome);
}

#[test]
fn centiles_and_rising_risk() {
    // each value's centile is the share of values below it (ties share it), whatever
    // the order, negatives and ties included
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let risk: Vec<f64> = (0..5_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 301) as f64 / 100.0 - 1.5
        })
        .collect();
    let c = segment::centiles(&risk);
    for (i, r) in risk.iter().enumerate() {
        let below = risk.iter().filter(|y| *y < r).count();
        assert_eq!(c[i], 100.0 * below as f64 / risk.len() as f64, "row {i}");
    }
    let c = segment::centiles(&[0.1, 0.5, 0.5, 0.9]);
    assert_eq!(c, vec![0.0, 25.0, 25.0, 75.0]);
    assert!(segment::rising_risk(85.0, 0.1, None));
    assert!(!segment::rising_risk(96.0, 0.5, Some(0.01)));
    assert!(segment::rising_risk(60.0, 0.2, Some(0.1)));
    assert!(!segment::rising_risk(60.0, 0.2, Some(0.15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stratify_trains_evaluates_and_cohorts_count() {
    use trent_phm::cohort::{self, Cohort};
    use trent_phm::stratify::{StratifyOptions, stratify};
    let dir = lake().path();
    let lk = Lake::open(dir).unwrap();
    let r = stratify(&lk, &StratifyOptions::default()).await.unwrap();
    assert_eq!(r.index_date, "2017-04-01");
    let (tdate, _) = r.trained.clone().unwrap();
    assert_eq!(
        tdate, "2015-04-01",
        "trained a year before the evaluation date"
    );
    let (edate, ev, base) = r.evaluation.as_ref().unwrap();
    assert_eq!(edate, "2016-04-01");
    let auc = ev.overall.auroc.as_ref().unwrap().value;
    assert!(
        auc > 0.68,
        "real discrimination on held-out later data: AUROC {auc}"
    );
    assert!(base.as_ref().unwrap().overall.auroc.as_ref().unwrap().value > 0.6);
    assert!(r.model_file.exists());
    // the saved model, supplied as a file, gives the same risks, rising risk and bands
    let lake2 = Lake::open(dir).unwrap();
    let ctx = lake2.session().await.unwrap();
    let risks = |ctx: datafusion::prelude::SessionContext| async move {
        let b = ctx
            .sql("SELECT person_id, risk, rising_risk, risk_band, segment FROM risk_stratification ORDER BY person_id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        arrow::compute::concat_batches(&b[0].schema(), &b).unwrap()
    };
    let first = risks(ctx).await;
    let again = stratify(
        &lake2,
        &StratifyOptions {
            model: Some(r.model_file.clone()),
            ..StratifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(again.trained.is_none());
    // and the same evaluation (its matrix built another way: from features it consumes)
    let (edate2, ev2, _) = again.evaluation.as_ref().unwrap();
    assert_eq!(edate2, edate);
    assert_eq!(format!("{ev2:?}"), format!("{ev:?}"));
    let ctx = Lake::open(dir).unwrap().session().await.unwrap();
    assert_eq!(first, risks(ctx.clone()).await);
    // cohorts: counts add up to the people who match; worklists rank by risk
    let c = Cohort::parse(
        "name = \"older, high or rising\"\nwhere = \"age >= 65 and risk_band in ('high', 'rising')\"\n[worklist]\nlimit = 10\n",
        "test.toml",
    )
    .unwrap();
    let by = cohort::counts(&ctx, &c, "ccg").await.unwrap();
    let n: u64 = by.iter().map(|x| x.1).sum();
    let b = ctx
        .sql("SELECT COUNT(*) FROM risk_stratification r JOIN phm_features f ON f.person_id = r.person_id WHERE f.age >= 65 AND r.risk_band IN ('high', 'rising')")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    use arrow::array::AsArray;
    let direct = b[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0) as u64;
    assert!(n > 50);
    assert_eq!(n, direct);
    let practice = ctx
        .sql("SELECT practice FROM risk_stratification GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let p = arrow::compute::cast(practice[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    let p = p.as_string::<i32>().value(0).to_string();
    let w = cohort::worklist(&ctx, &c, &p).await.unwrap();
    assert!(!w.is_empty() && w.len() <= 10);
    assert!(w.windows(2).all(|x| x[0].risk >= x[1].risk));
    assert!(
        w.iter().all(|r| !r.reasons.is_empty()),
        "high and rising risk people carry reasons"
    );
    // disclosure
    assert_eq!(cohort::disclose(0), Some(0));
    assert_eq!(cohort::disclose(7), None);
    assert_eq!(cohort::disclose(8), Some(10));
    assert_eq!(cohort::disclose(12), Some(10));
    assert_eq!(cohort::disclose(13), Some(15));
}

#[test]
fn bad_cohort_files_name_file_and_field() {
    use trent_phm::cohort::Cohort;
    let e = Cohort::parse("name = \"x\"\nwhere = \"agee > 3\"\n", "c.toml").unwrap_err();
    assert!(e.to_string().contains("c.toml: where: field `agee`"), "{e}");
    let e = Cohort::parse("name = \"x\"\nwhere = \"segment > 3\"\n", "c.toml").unwrap_err();
    assert!(
        e.to_string()
            .contains("`segment` is text but `3` is a number"),
        "{e}"
    );
    let e = Cohort::parse("name = \"x\"\nwhere = \"age in ('a')\"\n", "c.toml").unwrap_err();
    assert!(e.to_string().contains("`age` is a number"), "{e}");
    let e = Cohort::parse("name = \"x\"\nwhere = \"age >\"\n", "c.toml").unwrap_err();
    assert!(e.to_string().contains("c.toml: where:"), "{e}");
    let e = Cohort::parse("name = \"x\"\nwher = \"age > 1\"\n", "c.toml").unwrap_err();
    assert!(e.to_string().contains("c.toml"), "{e}");
}

//! The Observatory on small synthetic lakes: the fast path (DataFusion) and the
//! row-by-row reference agree on every indicator, place, period and breakdown; the
//! population counted by dense arrays equals the one counted person by person; bad
//! definitions are reported by file and field without stopping the others.

use std::sync::OnceLock;

use trent_lake::Lake;
use trent_observatory::run::{RunOptions, run};
use trent_places::Area;
use trent_synth::{SynthOptions, synthesize, time};

fn lake() -> &'static tempfile::TempDir {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let area = Area::bundled("nottinghamshire").unwrap();
        let opts = SynthOptions {
            scale: 0.01,
            years: 2,
            start: time::parse("2014-04-01").unwrap(),
            seed: 5,
            threads: 2,
            max_partition: 80_000,
            progress: false,
            fhir: false,
        };
        synthesize(&area, &opts, dir.path()).unwrap();
        dir
    })
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_agrees_with_reference() {
    let lake = Lake::open(lake().path()).unwrap();
    let fast = run(&lake, &RunOptions::default()).await.unwrap();
    let slow = run(
        &lake,
        &RunOptions {
            reference: true,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(fast.def_errors.is_empty(), "{:?}", fast.def_errors);
    assert!(fast.failed.is_empty(), "{:?}", fast.failed);
    assert!(slow.failed.is_empty(), "{:?}", slow.failed);
    if fast.values.len() != slow.values.len() {
        let key = |v: &trent_observatory::IndicatorValue| {
            format!(
                "{} {} {} {} {}={}",
                v.indicator, v.level, v.place, v.period, v.breakdown, v.breakdown_value
            )
        };
        let a: std::collections::BTreeSet<String> = fast.values.iter().map(key).collect();
        let b: std::collections::BTreeSet<String> = slow.values.iter().map(key).collect();
        let only_fast: Vec<_> = a.difference(&b).take(10).collect();
        let only_slow: Vec<_> = b.difference(&a).take(10).collect();
        panic!("row sets differ: only fast {only_fast:?}; only reference {only_slow:?}");
    }
    let mut ids = std::collections::BTreeSet::new();
    for ((fv, fe), (sv, se)) in fast
        .values
        .iter()
        .zip(&fast.exact)
        .zip(slow.values.iter().zip(&slow.exact))
    {
        let at = format!(
            "{} {} {} {} {}={}",
            fv.indicator, fv.level, fv.place, fv.period, fv.breakdown, fv.breakdown_value
        );
        assert_eq!(
            (
                &fv.indicator,
                &fv.level,
                &fv.place,
                &fv.period,
                &fv.breakdown,
                &fv.breakdown_value
            ),
            (
                &sv.indicator,
                &sv.level,
                &sv.place,
                &sv.period,
                &sv.breakdown,
                &sv.breakdown_value
            )
        );
        assert_eq!(fe.n, se.n, "units at {at}");
        assert!(
            close(fe.num, se.num),
            "numerator at {at}: {} vs {}",
            fe.num,
            se.num
        );
        assert!(
            close(fe.den, se.den),
            "denominator at {at}: {} vs {}",
            fe.den,
            se.den
        );
        match (fe.value, se.value) {
            (Some(a), Some(b)) => assert!(close(a, b), "value at {at}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "value at {at}"),
        }
        assert_eq!(fv.suppressed, sv.suppressed, "{at}");
        assert_eq!(fv.variation, sv.variation, "{at}");
        ids.insert(fv.indicator.clone());
    }
    // every bundled indicator produced values, and something non-trivial was counted
    for i in &fast.indicators {
        // an imported file may be empty until the published figures are loaded
        assert!(
            ids.contains(&i.def.id) || i.def.import.is_some() || i.def.sii.is_some(),
            "{} produced no values",
            i.def.id
        );
        let total: f64 = fast
            .values
            .iter()
            .zip(&fast.exact)
            .filter(|(v, _)| v.indicator == i.def.id && v.level == "stp")
            .map(|(_, e)| e.n)
            .sum();
        // learning-disability inpatients are ~50 per million: none at this scale
        if i.def.import.is_none() && i.def.sii.is_none() && i.def.id != "ld_inpatients" {
            assert!(total > 0.0, "{} counted nothing", i.def.id);
        }
    }
}

/// The measure of an area calibration target → the catalogue indicator that reports it.
/// Measures not listed here are population structure (growth) or are checked by the
/// generator only (see docs/observatory.md).
const CALIBRATED: &[(&str, &str)] = &[
    ("smoking_prevalence", "smoking_adults"),
    ("health_check_uptake", "health_check_uptake"),
    ("u75_cvd_mortality_dsr", "u75_cvd_mortality"),
    ("life_expectancy", "life_expectancy"),
    ("hle", "healthy_life_expectancy"),
    ("ae_4h", "ae_four_hours"),
];

/// Run beside the calibrated ones: the SII needs deaths in every decile (PHE publishes no
/// DSR of fewer than 10 events), which a 10% lake has and the 1% one does not.
const ALSO: &[&str] = &["preventable_mortality", "sii_preventable_mortality"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_year_reproduces_the_plan_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let area = Area::bundled("nottinghamshire").unwrap();
    let opts = SynthOptions {
        scale: 0.1,
        years: 1,
        start: time::parse("2014-04-01").unwrap(),
        seed: 7,
        threads: 2,
        max_partition: 80_000,
        progress: false,
        fhir: false,
    };
    synthesize(&area, &opts, dir.path()).unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let only: Vec<String> = CALIBRATED
        .iter()
        .map(|c| c.1.to_string())
        .chain(ALSO.iter().map(|s| s.to_string()))
        .collect();
    let rep = run(
        &lake,
        &RunOptions {
            only,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
    let mut checked = 0;
    for t in &area.targets {
        let Some((_, id)) = CALIBRATED.iter().find(|c| c.0 == t.measure) else {
            continue;
        };
        let place =
            t.la.clone()
                .or(t.provider.clone())
                .expect("target has a place");
        let (bd, bv) = match &t.sex {
            Some(s) => ("sex", s.as_str()),
            None => ("all", "all"),
        };
        let rows: Vec<_> = rep
            .values
            .iter()
            .zip(&rep.exact)
            .filter(|(v, _)| {
                &v.indicator == id
                    && v.place == place
                    && v.breakdown == bd
                    && v.breakdown_value == bv
            })
            .filter(|(v, _)| v.level == "local_authority" || v.level == "provider")
            .filter(|(v, _)| {
                v.period_start.as_str() >= "2014-04-01" && v.period_end.as_str() <= "2015-03-31"
            })
            .collect();
        assert!(!rows.is_empty(), "{} has no 2014/15 value for {place}", id);
        // monthly indicators: pool the year's months from the exact figures
        let (value, lower, upper) = if rows.len() == 1 {
            let e = rows[0].1;
            let msg = format!("{} ({id}, {place}): no value", t.id);
            (
                e.value.expect(&msg),
                e.lower.expect(&msg),
                e.upper.expect(&msg),
            )
        } else {
            let (num, den) = rows
                .iter()
                .fold((0.0, 0.0), |a, (_, e)| (a.0 + e.num, a.1 + e.den));
            let p = num / den;
            let hw = 1.96 * (p * (1.0 - p) / den).sqrt();
            (100.0 * p, 100.0 * (p - hw), 100.0 * (p + hw))
        };
        // as strict as `trent synth --check`: the 99.9% sampling interval plus the model allowance
        let tol = (upper - lower) / 2.0 * (3.29 / 1.96)
            + trent_synth::check::allowance(&t.measure, t.value);
        assert!(
            (value - t.value).abs() <= tol,
            "{} ({}): {id} in 2014/15 is {value:.2}, the plan's baseline {} ± {tol:.2}",
            t.id,
            t.measure,
            t.value
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} targets checked");
    // an SII with its simulated interval around it, against the plan's baseline
    let sii = rep
        .values
        .iter()
        .find(|v| v.indicator == "sii_preventable_mortality" && v.period == "2014/15")
        .expect("an SII for 2014/15");
    assert_eq!(sii.baseline, Some(206.6));
    let (v, lo, hi) = (sii.value.unwrap(), sii.lower.unwrap(), sii.upper.unwrap());
    assert!(v.is_finite() && lo < v && v < hi, "{sii:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_bad_definitions_are_reported_by_file_line_and_field() {
    let lake = Lake::open(lake().path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("imported")).unwrap();
    let def = |id: &str, file: &str| {
        format!(
            "id = \"{id}\"\ntitle = \"t\"\nsection = \"s\"\nplan = \"p\"\nmethod = \"import\"\ngrain = \"financial_year\"\npolarity = \"lower\"\nunit = \"%\"\n[import]\nfile = \"imported/{file}\"\nwhy = \"survey\"\n[baseline]\nvalue = 10.0\nperiod = \"2014/15\"\n[target]\nvalue = 8.0\nperiod = \"2020/21\"\n"
        )
    };
    std::fs::write(d.join("good.toml"), def("good", "good.csv")).unwrap();
    std::fs::write(
        d.join("imported/good.csv"),
        "place,period,value\nSTP-NN,2014/15,10.0\nSTP-NN,2016/17,9.5\nE06000018,2014/15,12\n",
    )
    .unwrap();
    std::fs::write(d.join("unknown_place.toml"), def("unknown_place", "u.csv")).unwrap();
    std::fs::write(
        d.join("imported/u.csv"),
        "place,period,value\nSTP-NN,2014/15,10\nNOWHERE,2014/15,3\n",
    )
    .unwrap();
    std::fs::write(d.join("duplicate.toml"), def("duplicate", "dup.csv")).unwrap();
    std::fs::write(
        d.join("imported/dup.csv"),
        "place,period,value\nSTP-NN,2014/15,10\nSTP-NN,2014/15,11\n",
    )
    .unwrap();
    std::fs::write(
        d.join("bad_rebase.toml"),
        def("bad_rebase", "good.csv").replace("[import]", "spc_rebase = [\"soon\"]\n[import]"),
    )
    .unwrap();
    let rep = run(
        &lake,
        &RunOptions {
            dir: Some(d.to_path_buf()),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    let stp: Vec<_> = rep
        .values
        .iter()
        .filter(|v| v.indicator == "good" && v.level == "stp")
        .collect();
    assert_eq!(stp.len(), 2);
    assert_eq!(stp[0].baseline, Some(10.0));
    // half-way from 2014/15 to 2020/21 at 2016/17 (two of six years): 10 - 2 × 2/6
    assert!((stp[1].trajectory.unwrap() - (10.0 - 2.0 * 2.0 / 6.0)).abs() < 1e-3); // by days: leap years
    assert_eq!(stp[1].on_trajectory, Some(false));
    assert!(
        rep.values
            .iter()
            .any(|v| v.indicator == "good" && v.level == "local_authority")
    );
    let failed = |id: &str| {
        rep.failed
            .iter()
            .find(|f| f.0 == id)
            .map(|f| f.1.clone())
            .unwrap_or_default()
    };
    assert!(
        failed("unknown_place").contains("u.csv:3") && failed("unknown_place").contains("NOWHERE"),
        "{:?}",
        rep.failed
    );
    assert!(
        failed("duplicate").contains("dup.csv:3") && failed("duplicate").contains("duplicate"),
        "{:?}",
        rep.failed
    );
    assert!(
        rep.def_errors
            .iter()
            .any(|e| e.file.ends_with("bad_rebase.toml") && e.field == "spc_rebase[0]"),
        "{:?}",
        rep.def_errors
    );
}

/// (level, place code, period, breakdown, breakdown value) of a roll-up cell.
type CellKey = (u8, String, i64, u8, u8);

/// The roll-up SQL `--dump-sql` gives a peer engine (the DuckDB benchmark) computes what
/// trent's own roll-up computes: run here through DataFusion on a small lake, every
/// (level, place, period, breakdown, sex, age group) cell of every indicator equals the
/// one [`trent_observatory::rollup::Rollup`] holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumped_rollup_sql_equals_trents_rollup() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, Int64Type};
    use std::collections::HashMap;
    use trent_observatory::engine::{self, Ctx};
    let lake = Lake::open(lake().path()).unwrap();
    let (inds, _) = trent_observatory::load(None);
    let ctx = lake.session().await.unwrap();
    let start = time::parse(&lake.catalog.span_start).unwrap();
    let end = time::parse(&lake.catalog.span_end).unwrap() + 1;
    let stmts = engine::dump_sql(&inds, start, end);
    let sql_ctx = lake.session().await.unwrap();
    let mut places = trent_observatory::run::places(&ctx).await.unwrap();
    engine::people(&ctx, &mut places).await.unwrap();
    let c = Ctx {
        dims: engine::register_dims(&ctx).await.unwrap(),
        ctx,
        start,
        end,
    };
    let i64s = |b: &arrow::array::RecordBatch, i: usize| {
        arrow::compute::cast(b.column(i), &DataType::Int64).unwrap()
    };
    let mut checked = 0;
    for (k, (name, sql)) in stmts.iter().enumerate() {
        let sql = sql.replace("CREATE TEMP TABLE", "CREATE TABLE");
        if sql.starts_with("CREATE") {
            sql_ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            continue;
        }
        if stmts
            .get(k + 1)
            .is_some_and(|(n, _)| *n == format!("{name}-rollup"))
        {
            let _ = sql_ctx.deregister_table("__fine");
            sql_ctx
                .sql(&format!("CREATE TABLE __fine AS {sql}"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            continue;
        }
        let Some(id) = name.strip_suffix("-rollup") else {
            continue;
        };
        if id.ends_with("-health") {
            continue; // the HLE health question: the same roll-up over other units
        }
        let ind = inds.iter().find(|i| i.def.id == id).unwrap();
        let mut r = trent_observatory::run::new_rollup(ind);
        engine::units(&c, ind, &mut places, &mut r).await.unwrap();
        let want = r.finish();
        let mut got: HashMap<CellKey, [[f64; 20]; 2]> = HashMap::new();
        for b in sql_ctx.sql(&sql).await.unwrap().collect().await.unwrap() {
            let (lv, per, bd, bv, sex, ag) = (
                i64s(&b, 0),
                i64s(&b, 2),
                i64s(&b, 3),
                i64s(&b, 4),
                i64s(&b, 5),
                i64s(&b, 6),
            );
            let place = arrow::compute::cast(b.column(1), &DataType::Utf8).unwrap();
            let place = place.as_string::<i32>();
            let n = b.column(7).as_primitive::<Float64Type>();
            let p = |a: &arrow::array::ArrayRef, i| a.as_primitive::<Int64Type>().value(i);
            for i in 0..b.num_rows() {
                assert!(!place.is_null(i), "{id}: a roll-up row without a place");
                let e = got
                    .entry((
                        p(&lv, i) as u8,
                        place.value(i).to_string(),
                        p(&per, i),
                        p(&bd, i) as u8,
                        p(&bv, i) as u8,
                    ))
                    .or_insert([[0.0; 20]; 2]);
                e[p(&sex, i) as usize][(p(&ag, i) as usize).min(19)] += n.value(i);
            }
        }
        assert_eq!(got.len(), want.len(), "{id}: roll-up keys");
        for (key, agg) in &want {
            let code = if key.level == 0 {
                "STP".to_string()
            } else {
                places.codes[key.place as usize].clone()
            };
            let g = got
                .get(&(
                    key.level,
                    code.clone(),
                    key.period,
                    key.breakdown,
                    key.value,
                ))
                .unwrap_or_else(|| panic!("{id}: no SQL cell for {key:?} ({code})"));
            for s in 0..2 {
                for a in 0..20 {
                    assert!(close(g[s][a], agg[s][a].n), "{id} {key:?} sex {s} age {a}");
                }
            }
        }
        checked += 1;
    }
    let expected = stmts
        .iter()
        .filter(|(n, _)| n.ends_with("-rollup") && !n.ends_with("-health-rollup"))
        .count();
    assert!(expected >= 35, "{expected} roll-up statements");
    assert_eq!(checked, expected);
}

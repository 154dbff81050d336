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
        assert!(ids.contains(&i.def.id), "{} produced no values", i.def.id);
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

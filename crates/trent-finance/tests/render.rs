//! `run` from files and the three renderings, as the binary will call them.

mod common;

use std::path::PathBuf;

use common::plan_path;
use trent_finance::{Format, RunOptions, run};

fn scenario_file() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("trent-finance-scenario.toml");
    std::fs::write(
        &path,
        "[scenario]\nname = \"No additional STF\"\ndescription = \"STF held at 0\"\n\n[[funding]]\nid = \"stf\"\namounts = [0.0, 0.0, 0.0, 0.0]\n",
    )
    .unwrap();
    path
}

#[test]
fn run_with_scenario_and_simulation_renders_three_ways() {
    let opts = RunOptions {
        plan: plan_path(),
        scenario: Some(scenario_file()),
        simulate: Some(1000),
        seed: 42,
    };
    let report = run(&opts).unwrap();
    let s = report.scenario.as_ref().unwrap();
    let d = s
        .evaluation
        .figure("remaining_gap", "system", "2020/21")
        .unwrap()
        - report
            .plan
            .figure("remaining_gap", "system", "2020/21")
            .unwrap();
    assert!((d - 70.0).abs() < 1e-9);

    let table = report.render(Format::Table);
    for needle in [
        "Do-nothing gap",
        "Bridge — NHS",
        "Percentage view — nhs",
        "Published figures reconciled",
        "Monte Carlo (plan)",
        "Monte Carlo (scenario)",
        "Scenario: No additional STF",
        "Alliance risk/reward",
        "628.0",
        "-7.8%",
    ] {
        assert!(table.contains(needle), "table lacks {needle:?}");
    }

    let json: serde_json::Value = serde_json::from_str(&report.render(Format::Json)).unwrap();
    assert_eq!(json["plan"]["years"][4], "2020/21");
    assert!(json["scenario"]["evaluation"]["entities"].is_array());
    assert!(json["simulation"]["entities"][0]["years"][4]["remaining_gap"]["p50"].is_number());

    let csv = report.render(Format::Csv);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("section,case,entity,level,year,measure,value")
    );
    let mut n = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "{line}");
        let v: f64 = f[6].parse().unwrap_or_else(|_| panic!("value in {line}"));
        assert!(v.is_finite(), "{line}");
        n += 1;
    }
    assert!(n > 1000);
    let value = |prefix: &str| -> f64 {
        let line = csv
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}"));
        line.rsplit(',').next().unwrap().parse().unwrap()
    };
    assert!((value("bridge,plan,system,system,2020/21,do_nothing_gap,") - 628.0).abs() < 0.5);
    assert_eq!(value("bridge,scenario,system,system,2020/21,stf,"), 0.0);
    assert!((value("bridge,plan,system,system,2020/21,stf,") - 70.0).abs() < 1e-9);
}

#[test]
fn formats_parse() {
    assert_eq!("csv".parse::<Format>().unwrap(), Format::Csv);
    let e = "xml".parse::<Format>().unwrap_err().to_string();
    assert!(e.contains("format") && e.contains("xml"), "{e}");
}

#[test]
fn rendering_is_deterministic() {
    let mut o = RunOptions::new(plan_path());
    o.simulate = Some(500);
    let a = run(&o).unwrap().render(Format::Csv);
    let b = run(&o).unwrap().render(Format::Csv);
    assert_eq!(a, b);
}

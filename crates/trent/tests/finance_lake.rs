//! `trent finance costing|capitation|alliance|beds` end to end on a small lake made by the
//! binary itself, and `trent finance` without a subcommand unchanged.

use std::path::Path;
use std::process::{Command, Output};

fn trent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trent"))
}

fn run(data: &Path, args: &[&str]) -> Output {
    trent().arg("--data").arg(data).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[test]
fn lake_tied_finance_commands_run_on_a_small_lake() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    ok(&run(
        &data,
        &[
            "synth",
            "--scale",
            "0.01",
            "--years",
            "2",
            "--seed",
            "5",
            "--threads",
            "2",
        ],
    ));

    // Bottom-up costing against the bundled plan's schemes.
    let s = ok(&run(&data, &["finance", "costing"]));
    assert!(
        s.contains("gns_emergency_admissions")
            && s.contains("primary_community")
            && s.contains("bottom-up / top-down")
            && s.contains("scale 0.01")
            && s.contains("2015/16"),
        "{s}"
    );
    let j: serde_json::Value = serde_json::from_str(&ok(&run(
        &data,
        &["finance", "costing", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(j["schemes"].as_array().unwrap().len(), 4);
    let e = &j["schemes"][0];
    assert!(
        (e["bottom_up"]["gross_m"].as_f64().unwrap()
            - 0.3 * e["baseline_cost_m"].as_f64().unwrap())
        .abs()
            < 1e-9
    );

    // Capitation: fair shares add up to the total.
    let j: serde_json::Value = serde_json::from_str(&ok(&run(
        &data,
        &[
            "finance",
            "capitation",
            "--level",
            "locality",
            "--total",
            "500",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    let units = j["units"].as_array().unwrap();
    assert_eq!(units.len(), 16);
    let sum: f64 = units
        .iter()
        .map(|u| u["fair_share_m"].as_f64().unwrap())
        .sum();
    assert!((sum - 500.0).abs() < 1e-6, "{sum}");
    let s = ok(&run(
        &data,
        &[
            "finance",
            "capitation",
            "--level",
            "practice",
            "--only",
            "DU-MID",
        ],
    ));
    assert!(
        s.contains("Control total for DU-MID") && s.contains("Age/sex cost curve"),
        "{s}"
    );
    let csv = ok(&run(
        &data,
        &["finance", "capitation", "--level", "ccg", "--format", "csv"],
    ));
    assert_eq!(csv.lines().count(), 7, "{csv}");

    // Alliance on the bundled pathway (needs the year before: 2015/16 on 2014/15).
    let s = ok(&run(&data, &["finance", "alliance"]));
    assert!(
        s.contains("Mid-Nottinghamshire")
            && s.contains("patient choice")
            && s.contains("commissioner"),
        "{s}"
    );

    // Beds, with the plan's reductions.
    let s = ok(&run(
        &data,
        &[
            "finance",
            "beds",
            "--occupancy",
            "0.9",
            "--sim-days",
            "1000",
        ],
    ));
    assert!(
        s.contains("King's Mill Hospital")
            && s.contains("fewer admissions a day")
            && s.contains("Alternative provision")
            && s.contains("scale 0.01"),
        "{s}"
    );
    assert!(
        !s.contains(" NO "),
        "simulation and Erlang B disagree:\n{s}"
    );

    // Errors are clear and exit 2.
    for (args, want) in [
        (
            &["finance", "capitation", "--level", "ward"][..],
            "--level \"ward\"",
        ),
        (&["finance", "beds", "--reduce", "RX1"], "PROVIDER=BEDS"),
        (&["finance", "costing", "--year", "1999/00"], "1999/00"),
        (&["finance", "beds", "--occupancy", "2"], "--occupancy"),
    ] {
        let out = run(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // No lake: the lake error.
    let out = run(&dir.path().join("none"), &["finance", "beds"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lake here"));
}

#[test]
fn finance_without_a_subcommand_is_unchanged() {
    let out = trent()
        .args(["finance", "--format", "csv"])
        .output()
        .unwrap();
    let s = ok(&out);
    assert!(s.lines().count() > 10);
    let out = trent()
        .args(["finance", "--simulate", "100", "--seed", "3"])
        .output()
        .unwrap();
    assert!(ok(&out).contains("P50"));
}

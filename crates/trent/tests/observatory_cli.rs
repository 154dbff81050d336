//! The Observatory, methods and linkage commands end to end: `trent indicators` writes
//! `indicator_value` (read back with `trent query`), `--only` keeps other indicators'
//! rows, a bad definition is reported by file and field while the others run;
//! `trent stats` on a file and its errors; `trent link --evaluate`.

use std::process::Command;

fn trent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trent"))
}

fn ok(args: &[&str]) -> String {
    let out = trent().args(args).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[test]
fn indicators_write_query_merge_and_report_bad_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    ok(&["synth", "--scale", "0.005", "--years", "2", "--out", d]);
    let csv = dir.path().join("v.csv");
    let s = ok(&["--data", d, "indicators", "--out", csv.to_str().unwrap()]);
    assert!(
        s.contains("smoking_adults") && s.contains("indicator_value"),
        "{s}"
    );
    let exported = std::fs::read_to_string(&csv).unwrap();
    assert!(exported.starts_with("indicator,definition_version,lake_batch,level,place"));
    let count = |sql: &str| -> usize {
        let s = ok(&["--data", d, "query", sql, "--format", "csv"]);
        s.lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let all = count("select count(*) from indicator_value");
    assert_eq!(all + 1, exported.lines().count());
    let le = count("select count(*) from indicator_value where indicator = 'life_expectancy'");
    assert!(le > 0);
    // no NHS-England-redacted count is ever shown
    assert_eq!(
        count(
            "select count(*) from indicator_value where numerator > 0 and numerator < 8 and indicator not in ('life_expectancy', 'healthy_life_expectancy', 'delayed_days')"
        ),
        0
    );
    // --only replaces one indicator and keeps the rest
    ok(&["--data", d, "indicators", "--only", "life_expectancy"]);
    assert_eq!(count("select count(*) from indicator_value"), all);
    assert!(count("select count(*) from indicator_funnel") > 0);
    assert!(count("select count(*) from referral_dashboard") > 0);

    // a folder with one good and two bad definitions: the good one runs, the bad are named
    let defs = dir.path().join("defs");
    std::fs::create_dir(&defs).unwrap();
    std::fs::copy(
        "../../config/indicators/emergency_admissions.toml",
        defs.join("emergency_admissions.toml"),
    )
    .unwrap();
    std::fs::write(
        defs.join("broken.toml"),
        "id = \"broken\"\ntitle = \"t\"\nsection = \"s\"\nplan = \"p\"\nmethod = \"proportion\"\ngrain = \"month\"\npolarity = \"lower\"\nunit = \"%\"\n[units]\ntable = \"activity\"\nwhen = \"start_ts\"\nwhere = \"setting = 'ae' and no_such_column > 1\"\n",
    )
    .unwrap();
    std::fs::write(defs.join("nodata.toml"), "id = \"nodata\"\n").unwrap();
    let out = trent()
        .args(["--data", d, "indicators", "--dir", defs.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("broken.toml: units.where") && err.contains("no_such_column"),
        "{err}"
    );
    assert!(
        err.contains("nodata.toml") && err.contains("missing field"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("emergency_admissions"));
}

#[test]
fn stats_on_a_file_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.csv");
    std::fs::write(&f, "area,numerator,denominator\nA,30,100\nB,5,50\n").unwrap();
    let s = ok(&[
        "stats",
        "proportion",
        "--input",
        f.to_str().unwrap(),
        "--group-col",
        "area",
    ]);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 3, "{s}");
    // Wilson 95% for 30/100: 0.2189 to 0.3958
    assert!(
        lines[1].starts_with("A,") && lines[1].contains("0.3,0.2189"),
        "{s}"
    );
    let out = trent()
        .args([
            "stats",
            "proportion",
            "--input",
            f.to_str().unwrap(),
            "--numerator-col",
            "events",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'events'"));
    let out = trent()
        .args(["stats", "nonsense", "--input", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn score_a_file_counts_malformed_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dx.csv");
    // heart failure (1) + metastatic cancer (6) + diabetes with complications (2) = 9
    std::fs::write(&f, "id,code\np1,I50.0\np1,C780\np1,E11.2\np2,J449\np2,xx\n").unwrap();
    let out = trent()
        .args(["score", "charlson", "--input", f.to_str().unwrap()])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.lines().nth(1).unwrap().starts_with("p1,9,"), "{s}");
    assert!(s.lines().nth(2).unwrap().ends_with(",1"), "{s}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dx.csv:6"));
    let out = trent()
        .args([
            "score",
            "charlson",
            "--input",
            f.to_str().unwrap(),
            "--code-col",
            "diagnosis",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("diagnosis"));
}

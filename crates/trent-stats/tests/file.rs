//! `run_file` on small synthetic CSV files: results equal the library functions (round
//! trip through CSV text), and bad input is an error naming file, line and column.

// Reference numbers are pasted exactly as the reference implementations printed them.
#![allow(clippy::excessive_precision)]

use std::path::PathBuf;
use trent_stats::file::{FileOptions, parse_confidence, run_file};
use trent_stats::methods::{self, MethodError};

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trent-stats-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(input: PathBuf) -> FileOptions {
    FileOptions {
        input,
        ..FileOptions::default()
    }
}

fn parse_out(csv_text: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    r.records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn proportion_file_round_trips_through_csv() {
    let p = write(
        "prop.csv",
        "area,numerator,denominator\nA,65,100\nB,3,7\nA,0,0\n",
    );
    let mut o = opts(p.clone());
    o.group_cols = vec!["area".into()];
    o.confidence = parse_confidence("99.8").unwrap();
    let out = write("prop_out.csv", "");
    o.output = Some(out.clone());
    let rep = run_file("proportion", &o).unwrap();
    assert_eq!(rep.input_rows, 3);
    let rows = parse_out(&std::fs::read_to_string(out).unwrap());
    assert_eq!(rows.len(), 2);
    let want = methods::proportion(65.0, 100.0, 0.998, 1.0).unwrap();
    assert_eq!(rows[0][0], "A");
    assert_eq!(rows[0][3].parse::<f64>().unwrap(), want.value);
    assert_eq!(rows[0][4].parse::<f64>().unwrap(), want.lower);
    assert_eq!(rows[0][5].parse::<f64>().unwrap(), want.upper);
    assert_eq!(rows[0][6], "99.8%");
}

#[test]
fn dsr_file_uses_esp2013_by_age_label() {
    let bands = [
        "0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49",
        "50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
    ];
    let mut text = String::from("area,age,numerator,denominator\n");
    // rows deliberately out of order
    for (i, b) in bands.iter().enumerate().rev() {
        text += &format!("X,{b},{},{}\n", i * 3, 1000 + i * 10);
    }
    let mut o = opts(write("dsr.csv", &text));
    o.group_cols = vec!["area".into()];
    let rep = run_file("dsr", &o).unwrap();
    let ev: Vec<f64> = (0..19).map(|i| (i * 3) as f64).collect();
    let pop: Vec<f64> = (0..19).map(|i| (1000 + i * 10) as f64).collect();
    let want = methods::dsr(&ev, &pop, &trent_stats::stats::ESP2013, 1e5, 0.95).unwrap();
    let rows = parse_out(&rep.to_csv().unwrap());
    assert_eq!(rows[0][3].parse::<f64>().unwrap(), want.estimate.value);
    assert_eq!(rows[0][5].parse::<f64>().unwrap(), want.estimate.upper);
    // a missing band is an error naming it
    let short: String = text.lines().take(19).map(|l| format!("{l}\n")).collect();
    let e = run_file(
        "dsr",
        &FileOptions {
            input: write("dsr_short.csv", &short),
            ..o.clone()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("band starting at age 0 is missing"),
        "{e}"
    );
}

#[test]
fn le_and_spc_files_run() {
    let ages = [
        "0", "1-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49",
        "50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
    ];
    let d = [
        17, 3, 1, 2, 4, 6, 8, 10, 14, 22, 35, 56, 80, 120, 180, 260, 350, 420, 380, 300,
    ];
    let p = [
        5200, 21000, 26000, 25500, 24800, 27000, 29500, 30200, 28700, 27900, 29800, 30500, 28100,
        25200, 23400, 18100, 12600, 8100, 4200, 1700,
    ];
    let mut text = String::from("age,numerator,denominator,prevalence,sample_size\n");
    for i in 0..20 {
        text += &format!("{},{},{},0.8,400\n", ages[i], d[i], p[i]);
    }
    let o = opts(write("le.csv", &text));
    let rep = run_file("le", &o).unwrap();
    assert_eq!(rep.rows.len(), 20);
    // PHEindicatormethods 2.0.0: LE at birth 84.33992757852543 (tests/reference.rs)
    assert!((rep.rows[0][1].parse::<f64>().unwrap() - 84.33992757852543).abs() < 1e-10);
    let h = run_file("hle", &o).unwrap();
    assert!(h.rows[0][1].parse::<f64>().unwrap() < 84.34);

    let mut text = String::from("trust,period,value\n");
    for (i, v) in [
        5., 6., 5., 7., 6., 5., 6., 7., 6., 5., 6., 5., 9., 10., 9., 11.,
    ]
    .iter()
    .enumerate()
    {
        text += &format!("T,2024-{:02},{v}\n", i + 1);
    }
    let mut o = opts(write("spc.csv", &text));
    o.group_cols = vec!["trust".into()];
    o.rebase = vec!["2024-13".into()];
    o.target = Some(20.0);
    let rep = run_file("spc", &o).unwrap();
    assert_eq!(rep.rows.len(), 16);
    assert_eq!(rep.rows[12][3], "1", "segment after the rebase");
    assert_eq!(rep.rows[0][10], "consistent_fail");
    o.rebase = vec!["2025-01".into()];
    assert!(
        run_file("spc", &o)
            .unwrap_err()
            .to_string()
            .contains("rebase period '2025-01'")
    );
}

#[test]
fn funnel_and_sii_files_run() {
    let mut o = opts(write(
        "f.csv",
        "numerator,denominator\n30,100\n45,120\n12,60\n80,200\n5,40\n160,350\n",
    ));
    let rep = run_file("funnel", &o).unwrap();
    let sig: Vec<&str> = rep.rows.iter().map(|r| r[9].as_str()).collect();
    assert_eq!(
        sig,
        [
            "Not significant",
            "Not significant",
            "Low (0.025)",
            "Not significant",
            "Low (0.001)",
            "High (0.025)"
        ]
    );
    o.funnel_type = "rate".into();
    assert_eq!(run_file("funnel", &o).unwrap().rows.len(), 6);

    let mut text = String::from("quantile,denominator,value,lower,upper\n");
    for (q, v) in [82.1, 80.4, 79.0, 77.8, 75.1].iter().enumerate() {
        text += &format!("{},{},{v},{},{}\n", 5 - q, 1000, v - 2.0, v + 2.0);
    }
    let mut o = opts(write("sii.csv", &text));
    o.repetitions = 2000;
    let rep = run_file("sii", &o).unwrap();
    // quantiles were given 5..1; sorted 1..5 the values rise, so the slope is positive
    assert!(rep.rows[0][1].parse::<f64>().unwrap() > 0.0);
}

fn input_err(e: MethodError) -> (Option<u64>, Option<String>, String) {
    match e {
        MethodError::Input {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("expected an input error, got {other}"),
    }
}

#[test]
fn bad_files_name_line_and_column() {
    let p = write("bad1.csv", "numerator,denominator\n5,100\nfive,100\n");
    let (line, col, msg) = input_err(run_file("rate", &opts(p)).unwrap_err());
    assert_eq!((line, col.as_deref()), (Some(3), Some("numerator")));
    assert!(msg.contains("'five' is not a number"));

    let p = write("bad2.csv", "numerator,denominator\n5,100\n-2,100\n");
    let (line, col, msg) = input_err(run_file("rate", &opts(p)).unwrap_err());
    assert_eq!((line, col.as_deref()), (Some(3), Some("numerator")));
    assert!(msg.contains("negative"));

    let p = write("bad3.csv", "numerator,denominator\n5,0\n");
    let e = run_file("proportion", &opts(p.clone())).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("bad3.csv") && text.contains("line 2") && text.contains("denominator is 0"),
        "{text}"
    );

    let p = write("bad4.csv", "events,denominator\n5,100\n");
    let (line, col, msg) = input_err(run_file("rate", &opts(p)).unwrap_err());
    assert_eq!((line, col.as_deref()), (None, Some("numerator")));
    assert!(msg.contains("no such column") && msg.contains("events"));

    let p = write("bad5.csv", "numerator,denominator\n5,\n");
    let (line, _, msg) = input_err(run_file("rate", &opts(p)).unwrap_err());
    assert_eq!(line, Some(2));
    assert!(msg.contains("empty"));

    let p = write("bad6.csv", "numerator,denominator\n5,100,7\n");
    assert!(matches!(
        run_file("rate", &opts(p)).unwrap_err(),
        MethodError::Input { .. }
    ));

    let p = write("ok.csv", "numerator,denominator\n5,100\n");
    assert!(
        run_file("median", &opts(p))
            .unwrap_err()
            .to_string()
            .contains("unknown method")
    );
    assert!(matches!(
        run_file("rate", &opts(PathBuf::from("/nonexistent/x.csv"))).unwrap_err(),
        MethodError::Io { .. }
    ));
    assert!(parse_confidence("abc").is_err());
    assert_eq!(parse_confidence("95").unwrap(), 0.95);
}

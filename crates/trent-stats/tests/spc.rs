//! Making Data Count XmR charts against NHSRplotthedots 0.2.2 (NHS-R community, MIT),
//! whose calculation functions `bench/methods/reference.R` sources and runs; the labels,
//! means and limits below are pasted from its output.

// Reference numbers are pasted exactly as the reference implementations printed them.
#![allow(clippy::excessive_precision)]

use trent_stats::spc::*;

const Y1: [f64; 34] = [
    10., 12., 11., 13., 12., 11., 10., 12., 13., 12., 11., 30., 12., 11., 13., 14., 15., 16., 17.,
    18., 19., 12., 11., 10., 11., 12., 11., 10., 9., 8., 7., 15.5, 16., 9.,
];

fn labels(c: &SpcChart) -> Vec<&'static str> {
    c.points.iter().map(|p| p.special_cause.label()).collect()
}

fn expected_y1() -> Vec<&'static str> {
    let mut w = vec!["Common Cause"; 34];
    w[11] = "Above UCL";
    w[13..19].fill("7 Point Trend (Increasing)");
    w[19] = "Above UCL";
    w[20] = "Above UCL";
    w[21..29].fill("7 Points Below CL");
    w[29] = "Below LCL";
    w[30] = "Below LCL";
    w
}

#[test]
fn screened_increasing_chart_matches_nhsrplotthedots() {
    // reference.R "spc: increase, screened": mean 12.75, limits 8.11645161290323 / 17.3835483870968
    let c = xmr(
        &Y1,
        &[],
        &SpcOptions {
            target: Some(25.0),
            ..SpcOptions::default()
        },
    )
    .unwrap();
    let p = c.points[0];
    assert!((p.mean - 12.75).abs() < 1e-12);
    assert!((p.lpl - 8.11645161290323).abs() < 1e-12);
    assert!((p.upl - 17.3835483870968).abs() < 1e-12);
    assert_eq!(labels(&c), expected_y1());
    assert_eq!(c.points[11].variation, Variation::Improvement);
    assert_eq!(c.points[22].variation, Variation::Concern);
    assert_eq!(c.points[33].variation, Variation::CommonCause);
    assert_eq!(c.variation, Variation::CommonCause);
    // target 25 above the upper limit, higher is better: "consistent_fail"
    assert_eq!(c.assurance, Some(Assurance::ConsistentFail));
}

#[test]
fn unscreened_decreasing_chart_matches_nhsrplotthedots() {
    // reference.R "spc: decrease, unscreened": limits 5.41484848484848 / 20.0851515151515
    let opts = SpcOptions {
        direction: Direction::Decrease,
        screen_outliers: false,
        target: Some(14.0),
        ..SpcOptions::default()
    };
    let c = xmr(&Y1, &[], &opts).unwrap();
    assert!((c.points[0].lpl - 5.41484848484848).abs() < 1e-12);
    assert!((c.points[0].upl - 20.0851515151515).abs() < 1e-12);
    let mut w = vec!["Common Cause"; 34];
    w[11] = "Above UCL";
    w[13..21].fill("7 Point Trend (Increasing)");
    w[21..31].fill("7 Points Below CL");
    assert_eq!(labels(&c), w);
    assert_eq!(c.points[11].variation, Variation::Concern);
    assert_eq!(c.points[25].variation, Variation::Improvement);
    assert_eq!(c.assurance, Some(Assurance::HitAndMiss));
}

#[test]
fn rebased_neutral_chart_has_separate_limits() {
    // reference.R "spc: rebased at point 13, neutral"
    let y = [
        5., 6., 5., 7., 6., 5., 6., 7., 6., 5., 6., 5., 9., 10., 9., 11., 10., 9., 10., 11., 10.,
        9.,
    ];
    let c = xmr(
        &y,
        &[12],
        &SpcOptions {
            direction: Direction::Neutral,
            ..SpcOptions::default()
        },
    )
    .unwrap();
    let (a, b) = (c.points[0], c.points[12]);
    assert_eq!((a.segment, b.segment), (0, 1));
    assert!((a.mean - 5.75).abs() < 1e-12 && (b.mean - 9.8).abs() < 1e-12);
    assert!((a.lpl - 2.84818181818182).abs() < 1e-12 && (a.upl - 8.65181818181818).abs() < 1e-12);
    assert!((b.lpl - 6.84444444444444).abs() < 1e-12 && (b.upl - 12.75555555555556).abs() < 1e-12);
    assert!(
        c.points
            .iter()
            .all(|p| p.special_cause == SpecialCause::CommonCause)
    );
    assert_eq!(c.assurance, None);
    // without the rebase the step change is special cause
    let c = xmr(
        &y,
        &[],
        &SpcOptions {
            direction: Direction::Neutral,
            ..SpcOptions::default()
        },
    )
    .unwrap();
    assert!(
        c.points
            .iter()
            .any(|p| p.variation == Variation::NeutralHigh)
    );
}

#[test]
fn two_in_three_flags_only_the_near_points() {
    // reference.R "spc: two in three near the limits, increase": limits 5.77316666666667 / 14.2851666666667
    let y = [
        10., 11., 9., 10., 12., 8., 10., 11., 9., 10., 10., 11., 9., 10.5, 13.9, 13.7, 10.5, 10.,
        9., 9.5, 6.6, 6.5, 9.5, 11.,
    ];
    let c = xmr(&y, &[], &SpcOptions::default()).unwrap();
    assert!((c.points[0].lpl - 5.77316666666667).abs() < 1e-12);
    assert!((c.points[0].upl - 14.2851666666667).abs() < 1e-12);
    let mut w = vec!["Common Cause"; 24];
    w[14] = "2 in 3 Above CL";
    w[15] = "2 in 3 Above CL";
    w[20] = "2 in 3 Below CL";
    w[21] = "2 in 3 Below CL";
    assert_eq!(labels(&c), w);
}

#[test]
fn bad_series_are_errors() {
    assert!(xmr(&[], &[], &SpcOptions::default()).is_err());
    assert!(xmr(&[1.0, f64::NAN], &[], &SpcOptions::default()).is_err());
    assert!(xmr(&[1.0, 2.0], &[5], &SpcOptions::default()).is_err());
}

//! Statistical process control as NHS England's "Making Data Count" (MDC) programme
//! does it: XmR charts with the MDC special-cause rules and icons, matched to the
//! NHS-R community's NHSRplotthedots (the NHSE reference implementation) with its
//! defaults, so a board report from trent shows the icons a trust's own tool would.
//!
//! Per segment (the series split at the rebase points): the mean; moving ranges
//! |xᵢ − xᵢ₋₁|; moving ranges of 3.267 × their mean or more screened out (as the MDC
//! Excel tool and NHSRplotthedots' default `screen_outliers = TRUE`) and the mean moving
//! range recomputed; process limits mean ± 2.66 × mean moving range (2.66 = 3/1.128,
//! d₂ = 1.128 for n = 2, rounded as MDC publishes it); "near" limits at 2/3 of that.
//! Rules, in priority: a point beyond a limit; a run of 7 increasing or decreasing; 2 of
//! 3 consecutive points, all on one side of the mean, beyond the near limit (only those
//! points are flagged); a run of 7 on one side of the mean. The variation icon is the
//! last point's; assurance compares the target with the last segment's limits.

use crate::methods::MethodError;

/// Which way is better (MDC "polarity", NHSRplotthedots `improvement_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is better.
    Increase,
    /// Lower is better.
    Decrease,
    /// Neither.
    Neutral,
}

impl Direction {
    fn sign(self) -> i8 {
        match self {
            Direction::Increase => 1,
            Direction::Decrease => -1,
            Direction::Neutral => 0,
        }
    }
}

/// Options for an XmR chart; `Default` is NHSRplotthedots' defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcOptions {
    /// Which way is better (default: increase, as NHSRplotthedots).
    pub direction: Direction,
    /// Screen moving ranges ≥ 3.267 × their mean out of the mean moving range (default true).
    pub screen_outliers: bool,
    /// Compute mean and limits from the first n points of each segment only (default: all).
    pub fix_after_n_points: Option<usize>,
    /// A target for the assurance icon.
    pub target: Option<f64>,
}

impl Default for SpcOptions {
    fn default() -> Self {
        SpcOptions {
            direction: Direction::Increase,
            screen_outliers: true,
            fix_after_n_points: None,
            target: None,
        }
    }
}

/// Which special-cause rule a point triggers (NHSRplotthedots' `special_cause_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialCause {
    /// No rule.
    CommonCause,
    /// Above the upper process limit.
    AboveUcl,
    /// Below the lower process limit.
    BelowLcl,
    /// Part of 7 increasing points.
    TrendIncreasing,
    /// Part of 7 decreasing points.
    TrendDecreasing,
    /// One of 2 in 3 beyond the upper near limit.
    TwoInThreeAbove,
    /// One of 2 in 3 beyond the lower near limit.
    TwoInThreeBelow,
    /// Part of 7 above the mean.
    RunAbove,
    /// Part of 7 below the mean.
    RunBelow,
}

impl SpecialCause {
    /// NHSRplotthedots' label.
    pub fn label(self) -> &'static str {
        match self {
            SpecialCause::CommonCause => "Common Cause",
            SpecialCause::AboveUcl => "Above UCL",
            SpecialCause::BelowLcl => "Below LCL",
            SpecialCause::TrendIncreasing => "7 Point Trend (Increasing)",
            SpecialCause::TrendDecreasing => "7 Point Trend (Decreasing)",
            SpecialCause::TwoInThreeAbove => "2 in 3 Above CL",
            SpecialCause::TwoInThreeBelow => "2 in 3 Below CL",
            SpecialCause::RunAbove => "7 Points Above CL",
            SpecialCause::RunBelow => "7 Points Below CL",
        }
    }

    fn side(self) -> i8 {
        match self {
            SpecialCause::CommonCause => 0,
            SpecialCause::AboveUcl
            | SpecialCause::TrendIncreasing
            | SpecialCause::TwoInThreeAbove
            | SpecialCause::RunAbove => 1,
            _ => -1,
        }
    }
}

/// The MDC variation icon of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variation {
    /// Common cause variation.
    CommonCause,
    /// Special cause, improving.
    Improvement,
    /// Special cause, of concern.
    Concern,
    /// Special cause upwards where neither direction is better.
    NeutralHigh,
    /// Special cause downwards where neither direction is better.
    NeutralLow,
}

impl Variation {
    /// NHSRplotthedots' `point_type`.
    pub fn label(self) -> &'static str {
        match self {
            Variation::CommonCause => "common_cause",
            Variation::Improvement => "special_cause_improvement",
            Variation::Concern => "special_cause_concern",
            Variation::NeutralHigh => "special_cause_neutral_high",
            Variation::NeutralLow => "special_cause_neutral_low",
        }
    }
}

/// The MDC assurance icon: can the process be relied on to meet the target?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assurance {
    /// The target lies beyond the limits on the good side: it will be met.
    ConsistentPass,
    /// The target lies beyond the limits on the bad side: it will be missed.
    ConsistentFail,
    /// The target lies within the limits: hit and miss.
    HitAndMiss,
}

impl Assurance {
    /// NHSRplotthedots' `assurance_type`.
    pub fn label(self) -> &'static str {
        match self {
            Assurance::ConsistentPass => "consistent_pass",
            Assurance::ConsistentFail => "consistent_fail",
            Assurance::HitAndMiss => "inconsistent",
        }
    }
}

/// One point of an XmR chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpcPoint {
    /// The value.
    pub value: f64,
    /// Segment (0, then +1 at each rebase).
    pub segment: usize,
    /// The segment's mean.
    pub mean: f64,
    /// Lower process limit.
    pub lpl: f64,
    /// Upper process limit.
    pub upl: f64,
    /// The rule it triggers.
    pub special_cause: SpecialCause,
    /// Its variation icon.
    pub variation: Variation,
}

/// An XmR chart.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcChart {
    /// Every point, in order.
    pub points: Vec<SpcPoint>,
    /// The chart's variation icon: its last point's.
    pub variation: Variation,
    /// The assurance icon, when there is a target and a direction.
    pub assurance: Option<Assurance>,
}

/// An XmR chart of `values` (in time order) with new segments starting at the 0-based
/// positions in `rebase` (each segment gets its own mean and limits).
pub fn xmr(values: &[f64], rebase: &[usize], opts: &SpcOptions) -> Result<SpcChart, MethodError> {
    if values.is_empty() {
        return Err(MethodError::Invalid(
            "an SPC chart needs at least one value".into(),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(MethodError::Invalid(format!(
                "value {} of the series is not a number ({v})",
                i + 1
            )));
        }
    }
    for r in rebase {
        if *r >= values.len() {
            return Err(MethodError::Invalid(format!(
                "rebase point {} is beyond the series of {} values",
                r + 1,
                values.len()
            )));
        }
    }
    if let Some(n) = opts.fix_after_n_points
        && n < 2
    {
        return Err(MethodError::Invalid(
            "fix_after_n_points must be at least 2".into(),
        ));
    }
    let mut points = Vec::with_capacity(values.len());
    let mut starts: Vec<usize> = rebase.iter().copied().filter(|r| *r > 0).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut bounds = vec![0];
    bounds.extend(starts);
    bounds.push(values.len());
    for (seg, w) in bounds.windows(2).enumerate() {
        segment(&values[w[0]..w[1]], seg, opts, &mut points);
    }
    let last = points[points.len() - 1];
    let assurance = match (opts.target, opts.direction) {
        (Some(t), Direction::Increase | Direction::Decrease) => {
            let inc = opts.direction == Direction::Increase;
            Some(if t > last.upl {
                if inc {
                    Assurance::ConsistentFail
                } else {
                    Assurance::ConsistentPass
                }
            } else if t < last.lpl {
                if inc {
                    Assurance::ConsistentPass
                } else {
                    Assurance::ConsistentFail
                }
            } else {
                Assurance::HitAndMiss
            })
        }
        _ => None,
    };
    Ok(SpcChart {
        variation: last.variation,
        points,
        assurance,
    })
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

fn segment(y: &[f64], seg: usize, opts: &SpcOptions, out: &mut Vec<SpcPoint>) {
    let n = y.len();
    let fixed = opts.fix_after_n_points.unwrap_or(n).min(n);
    let base = &y[..fixed];
    let mean = base.iter().sum::<f64>() / fixed as f64;
    let mrs: Vec<f64> = base.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let avg = |v: &mut dyn Iterator<Item = f64>| {
        let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
        if c == 0 { f64::NAN } else { s / c as f64 }
    };
    let mut amr = avg(&mut mrs.iter().copied());
    if opts.screen_outliers {
        let cut = 3.267 * amr;
        amr = avg(&mut mrs.iter().copied().filter(|m| *m < cut));
    }
    let limit = 2.66;
    let (lpl, upl) = (mean - limit * amr, mean + limit * amr);
    let near = 2.0 * limit / 3.0;
    let (nlpl, nupl) = (mean - near * amr, mean + near * amr);
    let outside: Vec<bool> = y.iter().map(|v| *v > upl || *v < lpl).collect();
    let rtm: Vec<i8> = y.iter().map(|v| sign(v - mean)).collect();
    let close: Vec<bool> = (0..n)
        .map(|i| !outside[i] && (y[i] < nlpl || y[i] > nupl))
        .collect();

    // 7-point trends ending at i
    let mut trend_end = vec![0i8; n];
    for (i, t) in trend_end.iter_mut().enumerate().skip(6) {
        let up = (i - 6..i).all(|j| y[j + 1] > y[j]);
        let down = (i - 6..i).all(|j| y[j + 1] < y[j]);
        *t = if up {
            1
        } else if down {
            -1
        } else {
            0
        };
    }
    // runs of 7 on one side ending at i
    let mut run_end = vec![0i8; n];
    for i in 6..n {
        if rtm[i] != 0 && (i - 6..i).all(|j| rtm[j] == rtm[i]) {
            run_end[i] = 1;
        }
    }
    // a point is part of a 7-point pattern if one ends at it or within the next 6
    let part_of = |ends: &[i8], i: usize| (i..(i + 7).min(n)).any(|j| ends[j] != 0);
    // 2 in 3: some window of 3 containing i has ≥ 2 near-limit points, all 3 on one side
    let two_in_three = |i: usize| -> bool {
        (0..3).any(|k| {
            if i < k || i - k + 2 >= n {
                return false;
            }
            let w = i - k..=i - k + 2;
            let c = w.clone().filter(|j| close[*j]).count();
            let s: i32 = w.map(|j| rtm[j] as i32).sum();
            c >= 2 && s.abs() == 3
        })
    };
    for i in 0..n {
        let part_trend = part_of(&trend_end, i);
        let cause = if outside[i] {
            if rtm[i] == 1 {
                SpecialCause::AboveUcl
            } else {
                SpecialCause::BelowLcl
            }
        } else if part_trend {
            let next_in_trend = i + 1 < n && part_of(&trend_end, i + 1);
            let dir = if next_in_trend {
                sign(y[i + 1] - y[i])
            } else if i > 0 {
                sign(y[i] - y[i - 1])
            } else {
                0
            };
            if dir == 1 {
                SpecialCause::TrendIncreasing
            } else {
                SpecialCause::TrendDecreasing
            }
        } else if two_in_three(i) && close[i] {
            if rtm[i] > 0 {
                SpecialCause::TwoInThreeAbove
            } else {
                SpecialCause::TwoInThreeBelow
            }
        } else if part_of(&run_end, i) {
            if rtm[i] > 0 {
                SpecialCause::RunAbove
            } else {
                SpecialCause::RunBelow
            }
        } else {
            SpecialCause::CommonCause
        };
        let v = cause.side() * opts.direction.sign();
        let variation = match (opts.direction, cause.side(), v) {
            (_, 0, _) => Variation::CommonCause,
            (Direction::Neutral, s, _) => {
                if s > 0 {
                    Variation::NeutralHigh
                } else {
                    Variation::NeutralLow
                }
            }
            (_, _, v) if v > 0 => Variation::Improvement,
            _ => Variation::Concern,
        };
        out.push(SpcPoint {
            value: y[i],
            segment: seg,
            mean,
            lpl,
            upl,
            special_cause: cause,
            variation,
        });
    }
}

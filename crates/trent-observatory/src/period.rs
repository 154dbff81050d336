//! Periods: calendar months, financial-year quarters, financial years (April to March)
//! and rolling 12-month windows, as integer indexes so that DataFusion and the reference
//! agree on them exactly. A month index is `year × 12 + month − 1`.

use trent_model::time;

use crate::definition::Grain;

/// Month index of a day number.
pub fn month_index(day: i32) -> i64 {
    let (y, m, _) = time::ymd(day);
    y as i64 * 12 + m as i64 - 1
}

/// First day of a month index.
pub fn month_start(mi: i64) -> i32 {
    time::days(mi.div_euclid(12) as i32, (mi.rem_euclid(12) + 1) as u32, 1)
}

/// Period index of a month index at a grain (rolling windows are indexed by their last month).
pub fn of_month(grain: Grain, mi: i64) -> i64 {
    match grain {
        Grain::Month | Grain::Rolling12m => mi,
        Grain::Quarter => (mi - 3).div_euclid(3),
        Grain::FinancialYear => (mi - 3).div_euclid(12),
    }
}

/// SQL for the period index of a DATE expression at a grain (matches [`of_month`]).
pub fn sql(grain: Grain, date: &str) -> String {
    let mi = format!(
        "(CAST(date_part('year', {date}) AS BIGINT) * 12 + CAST(date_part('month', {date}) AS BIGINT) - 1)"
    );
    match grain {
        Grain::Month | Grain::Rolling12m => mi,
        // floor division of a possibly negative number, written so both engines agree
        Grain::Quarter => format!("CAST(floor(CAST({mi} - 3 AS DOUBLE) / 3.0) AS BIGINT)"),
        Grain::FinancialYear => format!("CAST(floor(CAST({mi} - 3 AS DOUBLE) / 12.0) AS BIGINT)"),
    }
}

/// [start, end) day numbers of a period.
pub fn bounds(grain: Grain, p: i64) -> (i32, i32) {
    match grain {
        Grain::Month => (month_start(p), month_start(p + 1)),
        Grain::Rolling12m => (month_start(p - 11), month_start(p + 1)),
        Grain::Quarter => (month_start(p * 3 + 3), month_start(p * 3 + 6)),
        Grain::FinancialYear => (month_start(p * 12 + 3), month_start(p * 12 + 15)),
    }
}

/// The middle day of a period (population denominators are counted on it).
pub fn mid(grain: Grain, p: i64) -> i32 {
    let (a, b) = bounds(grain, p);
    a + (b - a) / 2
}

fn fy_label(y: i64) -> String {
    format!("{}/{:02}", y, (y + 1).rem_euclid(100))
}

/// A period's label: `2014-04`, `2014/15 Q1`, `2014/15`, `12m to 2015-03`.
pub fn label(grain: Grain, p: i64) -> String {
    match grain {
        Grain::Month => format!("{}-{:02}", p.div_euclid(12), p.rem_euclid(12) + 1),
        Grain::Rolling12m => format!("12m to {}-{:02}", p.div_euclid(12), p.rem_euclid(12) + 1),
        Grain::Quarter => format!("{} Q{}", fy_label(p.div_euclid(4)), p.rem_euclid(4) + 1),
        Grain::FinancialYear => fy_label(p),
    }
}

/// The periods of a grain that lie wholly inside the span [start, end).
pub fn within(grain: Grain, start: i32, end: i32) -> Vec<i64> {
    let (m0, m1) = (month_index(start), month_index(end - 1));
    let mut out = vec![];
    let mut p = of_month(grain, m0) - 1;
    let last = of_month(grain, m1) + 1;
    while p <= last {
        let (a, b) = bounds(grain, p);
        if a >= start && b <= end {
            out.push(p);
        }
        p += 1;
    }
    out
}

/// Parse a label into (grain, index): `2014-04`, `2014/15`, `2014-15`, `2014/15 Q2`.
pub fn parse_label(s: &str) -> Option<(Grain, i64)> {
    let s = s.trim();
    if let Some((fy, q)) = s.split_once(" Q") {
        let (g, y) = parse_label(fy)?;
        let q: i64 = q.parse().ok()?;
        if g != Grain::FinancialYear || !(1..=4).contains(&q) {
            return None;
        }
        return Some((Grain::Quarter, y * 4 + q - 1));
    }
    let (a, b) = s.split_once(['/', '-'])?;
    let y: i64 = a.parse().ok()?;
    if a.len() != 4 || b.len() != 2 {
        return None;
    }
    let n: i64 = b.parse().ok()?;
    let next = (y + 1).rem_euclid(100);
    if s.contains('/') {
        return (n == next).then_some((Grain::FinancialYear, y));
    }
    if (1..=12).contains(&n) {
        return Some((Grain::Month, y * 12 + n - 1));
    }
    if n == next {
        return Some((Grain::FinancialYear, y));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let apr14 = time::days(2014, 4, 1);
        let mi = month_index(apr14);
        assert_eq!(label(Grain::Month, mi), "2014-04");
        assert_eq!(
            label(Grain::FinancialYear, of_month(Grain::FinancialYear, mi)),
            "2014/15"
        );
        assert_eq!(
            label(Grain::Quarter, of_month(Grain::Quarter, mi)),
            "2014/15 Q1"
        );
        let mar15 = month_index(time::days(2015, 3, 31));
        assert_eq!(
            label(Grain::Quarter, of_month(Grain::Quarter, mar15)),
            "2014/15 Q4"
        );
        assert_eq!(of_month(Grain::FinancialYear, mar15), 2014);
        assert_eq!(
            bounds(Grain::FinancialYear, 2014),
            (apr14, time::days(2015, 4, 1))
        );
        let fys = within(Grain::FinancialYear, apr14, time::days(2019, 4, 1));
        assert_eq!(fys, vec![2014, 2015, 2016, 2017, 2018]);
        assert_eq!(
            within(Grain::Month, apr14, time::days(2019, 4, 1)).len(),
            60
        );
        assert_eq!(
            within(Grain::Rolling12m, apr14, time::days(2019, 4, 1)).len(),
            49
        );
        assert_eq!(parse_label("2014/15"), Some((Grain::FinancialYear, 2014)));
        assert_eq!(parse_label("2020-21"), Some((Grain::FinancialYear, 2020)));
        assert_eq!(parse_label("2014-04"), Some((Grain::Month, mi)));
        assert_eq!(
            parse_label("2014/15 Q4"),
            Some((Grain::Quarter, 2014 * 4 + 3))
        );
        assert_eq!(parse_label("2014/16"), None);
        assert_eq!(parse_label("soon"), None);
    }
}

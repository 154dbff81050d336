//! Days since 1970-01-01 ↔ calendar dates, without allocation (civil-from-days).

/// (year, month, day) of a day number.
pub fn ymd(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number of a date.
pub fn days(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The first of the month of a day.
pub fn month_start(z: i32) -> i32 {
    let (y, m, _) = ymd(z);
    days(y, m, 1)
}

/// The same day `n` years later (29 Feb → 28 Feb).
pub fn add_years(z: i32, n: i32) -> i32 {
    let (y, m, d) = ymd(z);
    let d = if m == 2 && d == 29 { 28 } else { d };
    days(y + n, m, d)
}

/// ISO string.
pub fn iso(z: i32) -> String {
    let (y, m, d) = ymd(z);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parse `YYYY-MM-DD`.
pub fn parse(s: &str) -> Option<i32> {
    let mut it = s.split('-');
    let y = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let z = days(y, m, d);
    (ymd(z) == (y, m, d)).then_some(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(iso(days(2016, 2, 29)), "2016-02-29");
        for z in -50_000..60_000 {
            let (y, m, d) = ymd(z);
            assert_eq!(days(y, m, d), z);
        }
        assert_eq!(parse("2014-04-01"), Some(days(2014, 4, 1)));
        assert_eq!(parse("2014-02-30"), None);
        assert_eq!(add_years(days(2016, 2, 29), 1), days(2017, 2, 28));
    }
}

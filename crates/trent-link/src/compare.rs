//! Field comparisons: string similarity and the comparison levels of the model.
//!
//! Each field of a record pair is put into one *comparison level*, as in Splink and the
//! Fellegi–Sunter framework (Fellegi & Sunter 1969, "A theory for record linkage",
//! JASA 64:1183). Level 0 of every field is "null": one side is missing, and the level
//! contributes a Bayes factor of 1 (neutral). The other levels, most to least similar:
//!
//! | field | levels |
//! |---|---|
//! | given name | exact · swapped with family name · Jaro–Winkler ≥ 0.92 · ≥ 0.80 · else |
//! | family name | exact · Jaro–Winkler ≥ 0.92 · ≥ 0.80 · else |
//! | date of birth | exact · day and month transposed · one of day/month/year differs · else |
//! | sex | agree · disagree |
//! | postcode | exact · same sector · same district · else |
//! | NHS number | agree · disagree (both valid) |
//!
//! A double-barrelled name (`SMITH JONES`) that shares a whole part with the other
//! name (`JONES`) is put in the Jaro–Winkler ≥ 0.92 level. When given and family names
//! are swapped (given = other's family and family = other's given, exactly) the given
//! name takes the "swapped" level and the family name is set to null, so the one piece
//! of evidence is not counted twice.

use crate::record::Date;

/// Jaro similarity of two character sequences (Jaro 1989).
pub fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let window = (b.len() / 2).saturating_sub(1);
    let mut b_used = [false; 64];
    let mut b_used_vec;
    let b_used: &mut [bool] = if b.len() <= 64 {
        &mut b_used[..b.len()]
    } else {
        b_used_vec = vec![false; b.len()];
        &mut b_used_vec
    };
    let mut a_match = [0usize; 64];
    let mut a_match_vec;
    let a_match: &mut [usize] = if a.len() <= 64 {
        &mut a_match[..a.len()]
    } else {
        a_match_vec = vec![0usize; a.len()];
        &mut a_match_vec
    };
    let mut m = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == *ca {
                b_used[j] = true;
                a_match[m] = i;
                m += 1;
                break;
            }
        }
    }
    if m == 0 {
        return 0.0;
    }
    // transpositions: compare matched characters in order
    let mut t = 0usize;
    let mut k = 0usize;
    for (j, used) in b_used.iter().enumerate() {
        if *used {
            if a[a_match[k]] != b[j] {
                t += 1;
            }
            k += 1;
        }
    }
    let m = m as f64;
    let t = (t / 2) as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - t) / m) / 3.0
}

/// Jaro–Winkler similarity (Winkler 1990): Jaro plus a bonus of 0.1 per common prefix
/// character (up to 4), applied when the Jaro similarity exceeds 0.7.
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    let j = jaro(a, b);
    if j <= 0.7 {
        return j;
    }
    let l = a
        .iter()
        .zip(b.iter())
        .take(4)
        .take_while(|(x, y)| x == y)
        .count();
    j + l as f64 * 0.1 * (1.0 - j)
}

/// Jaro–Winkler of two `&str`.
pub fn jaro_winkler_str(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    jaro_winkler(&a, &b)
}

/// The fields of the model, in the order of [`Levels`].
pub const FIELDS: [&str; 6] = [
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "postcode",
    "nhs_number",
];

/// Index of the given-name comparison.
pub const GIVEN: usize = 0;
/// Index of the family-name comparison.
pub const FAMILY: usize = 1;
/// Index of the date-of-birth comparison.
pub const DOB: usize = 2;
/// Index of the sex comparison.
pub const SEX: usize = 3;
/// Index of the postcode comparison.
pub const POSTCODE: usize = 4;
/// Index of the NHS-number comparison.
pub const NHS: usize = 5;

/// Level labels per field; index 0 is always "null".
pub const LEVEL_NAMES: [&[&str]; 6] = [
    &["null", "exact", "swapped", "jw>=0.92", "jw>=0.80", "else"],
    &["null", "exact", "jw>=0.92", "jw>=0.80", "else"],
    &[
        "null",
        "exact",
        "day-month transposed",
        "one of d/m/y differs",
        "else",
    ],
    &["null", "agree", "disagree"],
    &["null", "exact", "sector", "district", "else"],
    &["null", "agree", "disagree"],
];

/// Number of levels of each field (including null).
pub const N_LEVELS: [usize; 6] = [6, 5, 5, 3, 5, 3];

/// Number of distinct level patterns (product of [`N_LEVELS`]).
pub const N_PATTERNS: usize = 6 * 5 * 5 * 3 * 5 * 3;

/// Comparison levels of one pair, one per field.
pub type Levels = [u8; 6];

/// Encode levels as one pattern number (mixed radix).
pub fn pattern_of(l: &Levels) -> u16 {
    let mut p = 0usize;
    for (f, &lv) in l.iter().enumerate() {
        p = p * N_LEVELS[f] + lv as usize;
    }
    p as u16
}

/// Decode a pattern number back into levels.
pub fn levels_of(mut p: usize) -> Levels {
    let mut l = [0u8; 6];
    for f in (0..6).rev() {
        l[f] = (p % N_LEVELS[f]) as u8;
        p /= N_LEVELS[f];
    }
    l
}

/// Records prepared for fast comparison: normalised, with strings interned.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Valid NHS number, 0 when missing or invalid.
    pub nhs: Vec<u64>,
    /// Given-name id into `names`, `u32::MAX` when missing.
    pub given: Vec<u32>,
    /// Family-name id into `names`, `u32::MAX` when missing.
    pub family: Vec<u32>,
    /// Date of birth, `None` when missing.
    pub dob: Vec<Option<Date>>,
    /// Sex: 0 missing, 1 male, 2 female.
    pub sex: Vec<u8>,
    /// Full postcode id, `u32::MAX` when missing or invalid.
    pub pc: Vec<u32>,
    /// Postcode sector id.
    pub pc_sector: Vec<u32>,
    /// Postcode district id.
    pub pc_district: Vec<u32>,
    /// Interned normalised names (given and family share one table).
    pub names: Vec<Box<[char]>>,
    /// Ids of the whole parts of each multi-part name (empty for single-part).
    pub name_parts: Vec<Vec<u32>>,
    /// Relative frequency of each name id as a given name among records with one.
    pub tf_given: Vec<f64>,
    /// Relative frequency of each name id as a family name among records with one.
    pub tf_family: Vec<f64>,
}

/// "Missing" marker for interned ids.
pub const NONE: u32 = u32::MAX;

impl Prepared {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.nhs.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.nhs.is_empty()
    }

    fn name_level(&self, a: u32, b: u32, fuzzy_base: u8) -> u8 {
        // fuzzy_base is the level number of "jw>=0.92"
        if a == b {
            return 1;
        }
        let pa = &self.name_parts[a as usize];
        let pb = &self.name_parts[b as usize];
        if (!pa.is_empty() || !pb.is_empty())
            && (pa.contains(&b) || pb.contains(&a) || pa.iter().any(|x| pb.contains(x)))
        {
            return fuzzy_base;
        }
        let jw = jaro_winkler(&self.names[a as usize], &self.names[b as usize]);
        if jw >= 0.92 {
            fuzzy_base
        } else if jw >= 0.80 {
            fuzzy_base + 1
        } else {
            fuzzy_base + 2
        }
    }

    /// Comparison levels of records `i` and `j`.
    pub fn compare(&self, i: usize, j: usize) -> Levels {
        let mut l = [0u8; 6];
        let (gi, gj, fi, fj) = (self.given[i], self.given[j], self.family[i], self.family[j]);
        let swapped = gi != NONE && fi != NONE && gi == fj && fi == gj && gi != fi;
        if swapped {
            l[GIVEN] = 2;
            l[FAMILY] = 0;
        } else {
            if gi != NONE && gj != NONE {
                l[GIVEN] = if gi == gj {
                    1
                } else {
                    self.name_level(gi, gj, 3)
                };
            }
            if fi != NONE && fj != NONE {
                l[FAMILY] = self.name_level(fi, fj, 2);
            }
        }
        if let (Some(a), Some(b)) = (self.dob[i], self.dob[j]) {
            l[DOB] = if a == b {
                1
            } else if a.year == b.year && a.day == b.month && a.month == b.day {
                2
            } else if u8::from(a.year != b.year)
                + u8::from(a.month != b.month)
                + u8::from(a.day != b.day)
                == 1
            {
                3
            } else {
                4
            };
        }
        if self.sex[i] != 0 && self.sex[j] != 0 {
            l[SEX] = if self.sex[i] == self.sex[j] { 1 } else { 2 };
        }
        if self.pc[i] != NONE && self.pc[j] != NONE {
            l[POSTCODE] = if self.pc[i] == self.pc[j] {
                1
            } else if self.pc_sector[i] == self.pc_sector[j] {
                2
            } else if self.pc_district[i] == self.pc_district[j] {
                3
            } else {
                4
            };
        }
        if self.nhs[i] != 0 && self.nhs[j] != 0 {
            l[NHS] = if self.nhs[i] == self.nhs[j] { 1 } else { 2 };
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaro_winkler_known_values() {
        // Winkler (1990) / Wikipedia reference values.
        let r = |a, b| (jaro_winkler_str(a, b) * 1000.0).round() / 1000.0;
        assert_eq!(r("MARTHA", "MARHTA"), 0.961);
        assert_eq!(r("DWAYNE", "DUANE"), 0.84);
        assert_eq!(r("DIXON", "DICKSONX"), 0.813);
        assert_eq!(jaro_winkler_str("SMITH", "SMITH"), 1.0);
        assert_eq!(jaro_winkler_str("ABC", "XYZ"), 0.0);
        assert_eq!(jaro_winkler_str("", ""), 1.0);
        // symmetric
        assert_eq!(
            jaro_winkler_str("DICKSONX", "DIXON"),
            jaro_winkler_str("DIXON", "DICKSONX")
        );
        // long strings take the heap path
        let long_a = "A".repeat(70) + "B";
        let long_b = "A".repeat(70) + "C";
        assert!(jaro_winkler_str(&long_a, &long_b) > 0.97);
    }

    #[test]
    fn levels_for_swapped_double_barrelled_and_dates() {
        use crate::normalise::prepare;
        use crate::record::{LinkRecord, Sex};
        let r = |g: &str, f: &str, d: (i32, u8, u8), pc: &str| LinkRecord {
            source: "s".into(),
            record_id: format!("{g}{f}{pc}"),
            given_name: Some(g.into()),
            family_name: Some(f.into()),
            birth_date: Date::new(d.0, d.1, d.2),
            sex: Some(Sex::Male),
            postcode: Some(pc.into()),
            nhs_number: None,
        };
        let recs = vec![
            r("John", "Smith-Jones", (1980, 3, 4), "NG7 2UH"),
            r("JONES", "JOHN", (1980, 4, 3), "NG7 2XX"),
            r("Jon", "Jones", (1981, 3, 4), "NG7 9AB"),
            r("John", "Smithe-Jones", (1975, 1, 1), "DE1 1AA"),
            r("John", "Jones", (1980, 3, 4), "NG7 2UH"),
        ];
        let (p, _) = prepare(&recs);
        // double-barrelled part match; swapped names; transposed date; sector
        let l = p.compare(0, 4);
        assert_eq!((l[GIVEN], l[FAMILY], l[DOB], l[POSTCODE]), (1, 2, 1, 1));
        let l = p.compare(1, 4);
        assert_eq!((l[GIVEN], l[FAMILY], l[DOB], l[POSTCODE]), (2, 0, 2, 2));
        // one of d/m/y differs; district only; JW("JON","JOHN") = 0.933
        let l = p.compare(2, 4);
        assert_eq!((l[GIVEN], l[FAMILY], l[DOB], l[POSTCODE]), (3, 1, 3, 3));
        // fuzzy double-barrelled; different date; different district
        let l = p.compare(3, 0);
        assert_eq!((l[GIVEN], l[FAMILY], l[DOB], l[POSTCODE]), (1, 2, 4, 4));
        assert_eq!((l[SEX], l[NHS]), (1, 0));
    }

    #[test]
    fn patterns_round_trip() {
        for p in 0..N_PATTERNS {
            assert_eq!(pattern_of(&levels_of(p)) as usize, p);
        }
    }
}

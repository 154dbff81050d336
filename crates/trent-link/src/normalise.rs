//! Normalisation: turning what feeds typed into values that can be compared.
//!
//! - **Names** are upper-cased; common Latin accents are folded to their base letter
//!   (É → E, Ø → O, ß → SS); apostrophes, full stops and other punctuation are removed
//!   (O'NEIL → ONEIL); hyphens and runs of spaces become one space, so a double-barrelled
//!   name `Smith-Jones` is `SMITH JONES`, whose parts the comparator also tries alone
//!   (see [`crate::compare`]). Letters outside the fold table are kept upper-cased.
//!   Titles and suffixes are not stripped: feeds carry them in separate fields.
//! - **Postcodes** are upper-cased with spaces removed and split into outward code
//!   (`NG7`) and inward code (`2UH`) by the UK format (inward = digit + two letters;
//!   outward = 2–4 characters starting with a letter). The *sector* is outward + the
//!   inward digit (`NG7 2`), the *district* is the outward code. A value that does not
//!   parse is treated as missing and counted.
//! - **NHS numbers** go through [`trent_model::nhs_number::validate`] (modulus 11). Note
//!   how it treats all-identical digits: `0000000000`–`9999999999` are rejected as
//!   never issued even when the arithmetic passes (e.g. `0000000000` and `5555555555`
//!   have a correct check digit). Invalid numbers are treated as missing and counted by
//!   reason, because a mistyped number is no evidence either way.

use std::collections::HashMap;

use trent_model::nhs_number::{self, NhsNumberError};

use crate::compare::{NONE, Prepared};
use crate::record::{LinkRecord, Sex};

/// Fold one character to its upper-case ASCII base, if it is in the table.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'Ā' | 'ā' => {
            "A"
        }
        'Æ' | 'æ' => "AE",
        'Ç' | 'ç' | 'Č' | 'č' | 'Ć' | 'ć' => "C",
        'È' | 'É' | 'Ê' | 'Ë' | 'è' | 'é' | 'ê' | 'ë' | 'Ē' | 'ē' | 'Ę' | 'ę' | 'Ě' | 'ě' => {
            "E"
        }
        'Ì' | 'Í' | 'Î' | 'Ï' | 'ì' | 'í' | 'î' | 'ï' | 'Ī' | 'ī' => "I",
        'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ň' | 'ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ō' | 'ō' => {
            "O"
        }
        'Œ' | 'œ' => "OE",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'ù' | 'ú' | 'û' | 'ü' | 'Ū' | 'ū' | 'Ů' | 'ů' => "U",
        'Ý' | 'ý' | 'ÿ' | 'Ÿ' => "Y",
        'ß' => "SS",
        'Š' | 'š' | 'Ś' | 'ś' => "S",
        'Ž' | 'ž' | 'Ź' | 'ź' | 'Ż' | 'ż' => "Z",
        'Ł' | 'ł' => "L",
        'Ð' | 'ð' | 'Ď' | 'ď' => "D",
        'Þ' | 'þ' => "TH",
        'Ř' | 'ř' => "R",
        'Ť' | 'ť' => "T",
        _ => return None,
    })
}

/// Normalise a name; `None` when nothing comparable is left.
pub fn normalise_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() || c == '-' || c == '‐' || c == '–' {
            pending_space = !out.is_empty();
            continue;
        }
        let piece: Option<String> = if c.is_ascii_alphabetic() {
            Some(c.to_ascii_uppercase().to_string())
        } else if let Some(f) = fold(c) {
            Some(f.to_string())
        } else if c.is_alphabetic() {
            Some(c.to_uppercase().collect())
        } else {
            None // punctuation, digits: dropped (documented above)
        };
        if let Some(p) = piece {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push_str(&p);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A parsed UK postcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Postcode {
    /// Outward code (district), e.g. `NG7`.
    pub outward: String,
    /// Inward code, e.g. `2UH`.
    pub inward: String,
}

impl Postcode {
    /// Parse a postcode in any spacing and case; `None` when it is not UK-shaped.
    pub fn parse(s: &str) -> Option<Postcode> {
        let c: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !c.is_ascii() || c.len() < 5 || c.len() > 7 {
            return None;
        }
        let (out, inw) = c.split_at(c.len() - 3);
        let ib = inw.as_bytes();
        if !(ib[0].is_ascii_digit() && ib[1].is_ascii_uppercase() && ib[2].is_ascii_uppercase()) {
            return None;
        }
        let ob = out.as_bytes();
        if !ob[0].is_ascii_uppercase()
            || !ob.iter().all(u8::is_ascii_alphanumeric)
            || !ob.iter().any(u8::is_ascii_digit)
        {
            return None;
        }
        Some(Postcode {
            outward: out.to_string(),
            inward: inw.to_string(),
        })
    }

    /// Full postcode in the canonical `OUT IN` form.
    pub fn full(&self) -> String {
        format!("{} {}", self.outward, self.inward)
    }

    /// The sector, outward code plus the inward digit (`NG7 2`).
    pub fn sector(&self) -> String {
        format!("{} {}", self.outward, &self.inward[..1])
    }

    /// The district, the outward code (`NG7`).
    pub fn district(&self) -> &str {
        &self.outward
    }
}

/// Validate an NHS number with modulus 11; the canonical ten digits as a number.
pub fn nhs_number(s: &str) -> Result<u64, NhsNumberError> {
    let v = nhs_number::validate(s)?;
    Ok(v.parse::<u64>().expect("ten validated digits"))
}

/// American Soundex (letter + three digits) of the letters of a normalised name, as
/// published by the US National Archives ("The Soundex Indexing System", 2007): H and W
/// do not separate letters with the same code, vowels do. Non-ASCII letters are ignored.
/// Used only as a blocking key, never as evidence.
pub fn soundex(name: &str) -> Option<[u8; 4]> {
    fn code(b: u8) -> u8 {
        match b {
            b'B' | b'F' | b'P' | b'V' => b'1',
            b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
            b'D' | b'T' => b'3',
            b'L' => b'4',
            b'M' | b'N' => b'5',
            b'R' => b'6',
            b'H' | b'W' => b'h',
            _ => b'0', // vowels and Y
        }
    }
    let letters: Vec<u8> = name.bytes().filter(u8::is_ascii_uppercase).collect();
    let first = *letters.first()?;
    let mut out = [first, b'0', b'0', b'0'];
    let mut n = 1;
    let mut last = code(first);
    for &b in &letters[1..] {
        let c = code(b);
        if c == b'h' {
            continue;
        }
        if c != b'0' && c != last {
            out[n] = c;
            n += 1;
            if n == 4 {
                break;
            }
        }
        last = c;
    }
    Some(out)
}

/// Counts of values that were present but unusable, by field and reason: the
/// normaliser treats them as missing and reports them here instead of dropping them
/// silently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormStats {
    /// NHS numbers that are not ten digits (after removing spaces and hyphens) or
    /// contain other characters.
    pub nhs_malformed: usize,
    /// NHS numbers whose ten digits are all the same.
    pub nhs_all_same: usize,
    /// NHS numbers failing the modulus-11 check (including check digit 10).
    pub nhs_bad_check_digit: usize,
    /// Postcodes that do not have the UK shape.
    pub postcode_invalid: usize,
    /// Names with no letters left after normalisation.
    pub name_empty: usize,
}

#[derive(Default)]
struct Interner {
    map: HashMap<String, u32>,
    names: Vec<Box<[char]>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.chars().collect());
        self.map.insert(s.to_string(), i);
        i
    }
}

/// Normalise and intern records for comparison.
pub fn prepare(records: &[LinkRecord]) -> (Prepared, NormStats) {
    let n = records.len();
    let mut st = NormStats::default();
    let mut p = Prepared {
        nhs: Vec::with_capacity(n),
        given: Vec::with_capacity(n),
        family: Vec::with_capacity(n),
        dob: Vec::with_capacity(n),
        sex: Vec::with_capacity(n),
        pc: Vec::with_capacity(n),
        pc_sector: Vec::with_capacity(n),
        pc_district: Vec::with_capacity(n),
        ..Prepared::default()
    };
    let mut names = Interner::default();
    let mut pcs: HashMap<String, u32> = HashMap::new();
    let mut intern_pc = |s: &str| {
        let k = pcs.len() as u32;
        *pcs.entry(s.to_string()).or_insert(k)
    };
    let mut name_of = |s: &Option<String>, st: &mut NormStats| match s {
        None => NONE,
        Some(s) => match normalise_name(s) {
            None => {
                st.name_empty += 1;
                NONE
            }
            Some(v) => names.id(&v),
        },
    };
    for r in records {
        p.nhs.push(match r.nhs_number.as_deref() {
            None => 0,
            Some(s) => match nhs_number(s) {
                Ok(v) => v,
                Err(NhsNumberError::AllSame) => {
                    st.nhs_all_same += 1;
                    0
                }
                Err(NhsNumberError::CheckDigitMismatch { .. } | NhsNumberError::CheckDigitTen) => {
                    st.nhs_bad_check_digit += 1;
                    0
                }
                Err(_) => {
                    st.nhs_malformed += 1;
                    0
                }
            },
        });
        let g = name_of(&r.given_name, &mut st);
        let f = name_of(&r.family_name, &mut st);
        p.given.push(g);
        p.family.push(f);
        p.dob.push(r.birth_date);
        p.sex.push(match r.sex {
            None => 0,
            Some(Sex::Male) => 1,
            Some(Sex::Female) => 2,
        });
        match r.postcode.as_deref().map(|s| (s, Postcode::parse(s))) {
            None => {
                p.pc.push(NONE);
                p.pc_sector.push(NONE);
                p.pc_district.push(NONE);
            }
            Some((_, None)) => {
                st.postcode_invalid += 1;
                p.pc.push(NONE);
                p.pc_sector.push(NONE);
                p.pc_district.push(NONE);
            }
            Some((_, Some(pc))) => {
                p.pc.push(intern_pc(&pc.full()));
                p.pc_sector.push(intern_pc(&pc.sector()));
                p.pc_district.push(intern_pc(pc.district()));
            }
        }
    }
    // parts of multi-part names, interned too so they compare by id
    let mut k = 0;
    while k < names.names.len() {
        let s: String = names.names[k].iter().collect();
        let parts: Vec<u32> = if s.contains(' ') {
            s.split(' ').map(|part| names.id(part)).collect()
        } else {
            Vec::new()
        };
        p.name_parts.push(parts);
        k += 1;
    }
    let m = names.names.len();
    let freq = |ids: &[u32]| {
        let mut c = vec![0f64; m];
        let mut t = 0f64;
        for &i in ids {
            if i != NONE {
                c[i as usize] += 1.0;
                t += 1.0;
            }
        }
        if t > 0.0 {
            c.iter_mut().for_each(|x| *x /= t);
        }
        c
    };
    p.tf_given = freq(&p.given);
    p.tf_family = freq(&p.family);
    p.names = names.names;
    (p, st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_accents_punctuation_and_hyphens() {
        assert_eq!(normalise_name(" Zoë  O'Neil ").unwrap(), "ZOE ONEIL");
        assert_eq!(normalise_name("Smith-Jones").unwrap(), "SMITH JONES");
        assert_eq!(normalise_name("Müller—").unwrap(), "MULLER");
        assert_eq!(normalise_name("Strauß").unwrap(), "STRAUSS");
        assert_eq!(normalise_name(" - . "), None);
    }

    #[test]
    fn postcodes_split_into_sector_and_district() {
        let p = Postcode::parse("ng72uh").unwrap();
        assert_eq!(p.full(), "NG7 2UH");
        assert_eq!(p.sector(), "NG7 2");
        assert_eq!(p.district(), "NG7");
        assert_eq!(Postcode::parse("EC1A 1BB").unwrap().sector(), "EC1A 1");
        assert_eq!(Postcode::parse("M1 1AE").unwrap().district(), "M1");
        assert!(Postcode::parse("NG7").is_none());
        assert!(Postcode::parse("1G7 2UH").is_none());
        assert!(Postcode::parse("NG7 UH2").is_none());
    }

    #[test]
    fn nhs_numbers_use_modulus_11_and_reject_repeated_digits() {
        assert_eq!(nhs_number("943 476 5919").unwrap(), 9_434_765_919);
        assert!(nhs_number("9434765918").is_err());
        // 5555555555 has a correct check digit but is never issued
        assert!(matches!(
            nhs_number("5555555555"),
            Err(NhsNumberError::AllSame)
        ));
    }

    #[test]
    fn soundex_published_examples() {
        let s = |n: &str| String::from_utf8(soundex(n).unwrap().to_vec()).unwrap();
        assert_eq!(s("ROBERT"), "R163");
        assert_eq!(s("RUPERT"), "R163");
        assert_eq!(s("ASHCRAFT"), "A261");
        assert_eq!(s("TYMCZAK"), "T522");
        assert_eq!(s("PFISTER"), "P236");
        assert_eq!(s("HONEYMAN"), "H555");
        assert_eq!(s("LEE"), "L000");
    }
}

//! NHS number validation (modulus 11) and generation in the test range.
//!
//! Rule: ten digits; weights 10..2 over the first nine; check = 11 − (sum mod 11);
//! 11 → 0; 10 → the number is invalid. Numbers whose ten digits are all the same
//! (`0000000000`, `1111111111`, …) pass the arithmetic for some digits but are never
//! issued, so they are rejected. Spaces and hyphens in the usual 3-3-4 grouping are
//! accepted on input and removed.
//!
//! Synthetic people get numbers beginning with 9, a range never issued to a person in
//! England and used for test data (see [`test_range_number`]).

/// Why a string is not a valid NHS number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NhsNumberError {
    /// Not ten digits after removing spaces and hyphens.
    Length(usize),
    /// A character other than a digit, space or hyphen.
    NotDigit(char),
    /// All ten digits are the same.
    AllSame,
    /// The check digit would be 10: no such number exists.
    CheckDigitTen,
    /// The tenth digit does not match the computed check digit.
    CheckDigitMismatch {
        /// the digit found
        found: u8,
        /// the digit expected
        expected: u8,
    },
}

impl std::fmt::Display for NhsNumberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length(n) => write!(f, "expected 10 digits, found {n}"),
            Self::NotDigit(c) => write!(f, "unexpected character {c:?}"),
            Self::AllSame => write!(f, "all ten digits are the same"),
            Self::CheckDigitTen => write!(f, "check digit computes to 10 (never issued)"),
            Self::CheckDigitMismatch { found, expected } => {
                write!(f, "check digit is {found}, expected {expected}")
            }
        }
    }
}

impl std::error::Error for NhsNumberError {}

/// The check digit for nine leading digits, or `None` when it would be 10.
pub fn check_digit(first_nine: &[u8; 9]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (10 - i as u32))
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

/// Validate an NHS number, returning its ten-digit canonical form.
pub fn validate(input: &str) -> Result<String, NhsNumberError> {
    let mut digits = Vec::with_capacity(10);
    for c in input.trim().chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            ' ' | '-' => {}
            other => return Err(NhsNumberError::NotDigit(other)),
        }
    }
    if digits.len() != 10 {
        return Err(NhsNumberError::Length(digits.len()));
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return Err(NhsNumberError::AllSame);
    }
    let nine: [u8; 9] = digits[..9].try_into().expect("nine digits");
    let expected = check_digit(&nine).ok_or(NhsNumberError::CheckDigitTen)?;
    if digits[9] != expected {
        return Err(NhsNumberError::CheckDigitMismatch {
            found: digits[9],
            expected,
        });
    }
    Ok(digits.iter().map(|d| (b'0' + d) as char).collect())
}

/// The NHS number built from an eight-digit stem `s` as `9` + `s` + check digit, or
/// `None` when that stem's check digit would be 10 (about one stem in eleven).
///
/// Numbers beginning with 9 are never issued to people in England and are used for
/// test data, so synthetic populations take theirs from here: 100 million stems, of
/// which about 90.9 million are valid, enough for a national-scale synthetic lake.
pub fn test_range_number(stem: u32) -> Option<String> {
    if stem >= 100_000_000 {
        return None;
    }
    let s = format!("9{stem:08}");
    let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
    let nine: [u8; 9] = d[..9].try_into().ok()?;
    let c = check_digit(&nine)?;
    let n = format!("{s}{c}");
    // 9999999999 passes the arithmetic but is all one digit: never valid
    validate(&n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_and_invalid() {
        // 943 476 5919 is the NHS Digital documentation example.
        assert_eq!(validate("943 476 5919").unwrap(), "9434765919");
        assert_eq!(
            validate("9434765918"),
            Err(NhsNumberError::CheckDigitMismatch {
                found: 8,
                expected: 9
            })
        );
        assert_eq!(validate("123"), Err(NhsNumberError::Length(3)));
        assert_eq!(validate("0000000000"), Err(NhsNumberError::AllSame));
        assert!(matches!(
            validate("94347659x9"),
            Err(NhsNumberError::NotDigit('x'))
        ));
    }

    #[test]
    fn test_range_numbers_are_valid_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        let mut invalid = 0;
        for n in (0..5000).chain(99_999_000..100_000_000) {
            let Some(s) = test_range_number(n) else {
                invalid += 1;
                continue;
            };
            assert!(s.starts_with('9'), "{s}");
            assert_eq!(validate(&s).unwrap(), s);
            assert!(seen.insert(s));
        }
        // about one stem in eleven has no valid check digit
        assert!((450..=650).contains(&invalid), "{invalid}");
        assert_eq!(test_range_number(100_000_000), None);
    }
}

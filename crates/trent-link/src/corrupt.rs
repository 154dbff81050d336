//! Fault injection: realistic errors applied to clean identity records, to make test
//! data whose true links are known.
//!
//! The faults are the ones that break linkage in practice: typing errors in names
//! (adjacent transposition, substitution, deletion — Damerau 1964 found these, with
//! insertion, behind about 80% of misspellings), nicknames, a family name changed on
//! marriage, given and family names swapped, a missing NHS number (common in social
//! care), an NHS number with a wrong digit (fails the check), another person's NHS
//! number (a parent's number on a child's record), date of birth with day and month
//! transposed or one part off by one, a move of house (new postcode), and missing
//! fields. All draws come from [`trent_stats::rng::Rng`], so a seed gives the same
//! data on every run.

use trent_stats::rng::Rng;

use crate::record::{Date, LinkRecord, Sex, days_in_month};

/// Probability of each fault per record.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRates {
    /// Typo in the given name.
    pub typo_given: f64,
    /// Typo in the family name.
    pub typo_family: f64,
    /// Given name replaced by a nickname (when it has one).
    pub nickname: f64,
    /// Family name changed (female, 18+ at the record's date: marriage).
    pub surname_change: f64,
    /// Given and family names swapped.
    pub swap_names: f64,
    /// NHS number left out.
    pub nhs_missing: f64,
    /// NHS number with one digit changed (so it fails the check).
    pub nhs_bad_check_digit: f64,
    /// NHS number of a different person.
    pub nhs_wrong_person: f64,
    /// Date of birth left out.
    pub dob_missing: f64,
    /// Day and month transposed (when the day is 12 or less and differs).
    pub dob_transposed: f64,
    /// Day, month or year one off.
    pub dob_off_by_one: f64,
    /// Postcode of another address (moved house).
    pub postcode_moved: f64,
    /// Postcode left out.
    pub postcode_missing: f64,
    /// Sex left out.
    pub sex_missing: f64,
    /// Given name left out.
    pub given_missing: f64,
}

impl Default for FaultRates {
    /// Rates for a typical acute or community feed.
    fn default() -> Self {
        FaultRates {
            typo_given: 0.03,
            typo_family: 0.04,
            nickname: 0.04,
            surname_change: 0.04,
            swap_names: 0.005,
            nhs_missing: 0.05,
            nhs_bad_check_digit: 0.01,
            nhs_wrong_person: 0.002,
            dob_missing: 0.01,
            dob_transposed: 0.01,
            dob_off_by_one: 0.02,
            postcode_moved: 0.10,
            postcode_missing: 0.03,
            sex_missing: 0.01,
            given_missing: 0.005,
        }
    }
}

/// A fault that was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// See [`FaultRates::typo_given`].
    TypoGiven,
    /// See [`FaultRates::typo_family`].
    TypoFamily,
    /// See [`FaultRates::nickname`].
    Nickname,
    /// See [`FaultRates::surname_change`].
    SurnameChange,
    /// See [`FaultRates::swap_names`].
    SwapNames,
    /// See [`FaultRates::nhs_missing`].
    NhsMissing,
    /// See [`FaultRates::nhs_bad_check_digit`].
    NhsBadCheckDigit,
    /// See [`FaultRates::nhs_wrong_person`].
    NhsWrongPerson,
    /// See [`FaultRates::dob_missing`].
    DobMissing,
    /// See [`FaultRates::dob_transposed`].
    DobTransposed,
    /// See [`FaultRates::dob_off_by_one`].
    DobOffByOne,
    /// See [`FaultRates::postcode_moved`].
    PostcodeMoved,
    /// See [`FaultRates::postcode_missing`].
    PostcodeMissing,
    /// See [`FaultRates::sex_missing`].
    SexMissing,
    /// See [`FaultRates::given_missing`].
    GivenMissing,
}

/// Common English given names and their usual short forms (a small list, for
/// synthetic faults only).
pub const NICKNAMES: &[(&str, &[&str])] = &[
    ("WILLIAM", &["BILL", "WILL", "BILLY"]),
    ("ROBERT", &["BOB", "ROB", "BOBBY"]),
    ("RICHARD", &["DICK", "RICH", "RICKY"]),
    ("JAMES", &["JIM", "JIMMY", "JAMIE"]),
    ("JOHN", &["JACK", "JOHNNY"]),
    ("THOMAS", &["TOM", "TOMMY"]),
    ("MICHAEL", &["MIKE", "MICK"]),
    ("CHRISTOPHER", &["CHRIS"]),
    ("JOSEPH", &["JOE", "JOEY"]),
    ("EDWARD", &["TED", "ED", "EDDIE"]),
    ("ANTHONY", &["TONY"]),
    ("DANIEL", &["DAN", "DANNY"]),
    ("ALEXANDER", &["ALEX", "SANDY"]),
    ("SAMUEL", &["SAM"]),
    ("MATTHEW", &["MATT"]),
    ("NICHOLAS", &["NICK"]),
    ("BENJAMIN", &["BEN"]),
    ("DAVID", &["DAVE"]),
    ("PETER", &["PETE"]),
    ("STEPHEN", &["STEVE"]),
    ("ELIZABETH", &["LIZ", "BETH", "BETTY", "LIZZIE"]),
    ("MARGARET", &["PEGGY", "MAGGIE", "MEG"]),
    ("KATHERINE", &["KATE", "KATIE", "KATHY"]),
    ("SUSAN", &["SUE", "SUSIE"]),
    ("JENNIFER", &["JENNY", "JEN"]),
    ("REBECCA", &["BECKY", "BECCA"]),
    ("PATRICIA", &["PAT", "TRISH"]),
    ("DEBORAH", &["DEBBIE", "DEB"]),
    ("VICTORIA", &["VICKY", "TORI"]),
    ("ALEXANDRA", &["ALEX", "LEXI"]),
    ("SAMANTHA", &["SAM"]),
    ("JESSICA", &["JESS"]),
    ("ABIGAIL", &["ABBY"]),
    ("CHRISTINE", &["CHRIS", "CHRISSIE"]),
];

/// A nickname for a (normalised, upper-case) given name, if it has one.
pub fn nickname(name: &str, rng: &mut Rng) -> Option<&'static str> {
    NICKNAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nicks)| rng.pick_str(nicks))
}

/// One typing error: adjacent transposition, substitution of a letter or deletion
/// (chosen with probabilities 0.35 / 0.4 / 0.25). Names of one letter are unchanged.
pub fn typo(name: &str, rng: &mut Rng) -> String {
    let mut c: Vec<char> = name.chars().collect();
    if c.len() < 2 {
        return name.to_string();
    }
    let x = rng.f64();
    if x < 0.35 {
        let i = rng.below(c.len() as u64 - 1) as usize;
        if c[i] == c[i + 1] {
            // transposing equal letters changes nothing: substitute instead
            c[i] = other_letter(c[i], rng);
        } else {
            c.swap(i, i + 1);
        }
    } else if x < 0.75 {
        let i = rng.below(c.len() as u64) as usize;
        c[i] = other_letter(c[i], rng);
    } else {
        let i = rng.below(c.len() as u64) as usize;
        c.remove(i);
    }
    c.into_iter().collect()
}

fn other_letter(c: char, rng: &mut Rng) -> char {
    loop {
        let d = (b'A' + rng.below(26) as u8) as char;
        if d != c {
            return d;
        }
    }
}

/// Change one of the first nine digits of a ten-digit NHS number so that it fails the
/// modulus-11 check (modulus 11 detects every single-digit change).
pub fn bad_check_digit(nhs: &str, rng: &mut Rng) -> String {
    let mut d: Vec<u8> = nhs.bytes().filter(u8::is_ascii_digit).collect();
    if d.len() != 10 {
        return nhs.to_string();
    }
    let i = rng.below(9) as usize;
    let old = d[i];
    while d[i] == old {
        d[i] = b'0' + rng.below(10) as u8;
    }
    String::from_utf8(d).expect("digits")
}

/// A new address: half of moves are local (a quarter to the same postcode sector, a
/// quarter to another sector of the same district), the rest to an address drawn from
/// `pool`. An unparseable postcode, or an empty pool for a long move, stays as it is.
pub fn moved(postcode: &str, pool: &[String], rng: &mut Rng) -> String {
    const UNIT: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    let local = rng.chance(0.5);
    if !local || crate::normalise::Postcode::parse(postcode).is_none() {
        return if pool.is_empty() {
            postcode.to_string()
        } else {
            rng.pick(pool).clone()
        };
    }
    let pc = crate::normalise::Postcode::parse(postcode).expect("checked above");
    let mut digit = pc.inward.as_bytes()[0];
    if rng.chance(0.5) {
        let old = digit;
        while digit == old {
            digit = b'0' + rng.below(10) as u8;
        }
    }
    loop {
        let u1 = UNIT[rng.below(UNIT.len() as u64) as usize] as char;
        let u2 = UNIT[rng.below(UNIT.len() as u64) as usize] as char;
        let new = format!("{} {}{u1}{u2}", pc.outward, digit as char);
        if new != pc.full() {
            return new;
        }
    }
}

/// Applies [`FaultRates`] to clean records, drawing replacement values from pools.
#[derive(Debug, Clone)]
pub struct Corruptor<'a> {
    /// Fault probabilities.
    pub rates: FaultRates,
    /// Postcodes to move people to.
    pub postcodes: &'a [String],
    /// NHS numbers of other people.
    pub nhs_numbers: &'a [String],
    /// Family names to marry into.
    pub family_names: &'a [String],
    /// Year the record was made (for the 18+ marriage rule).
    pub record_year: i32,
}

impl Corruptor<'_> {
    /// A corrupted copy of `r` and the faults applied, in a fixed order.
    pub fn corrupt(&self, r: &LinkRecord, rng: &mut Rng) -> (LinkRecord, Vec<Fault>) {
        let q = &self.rates;
        let mut out = r.clone();
        let mut faults = Vec::new();
        let hit = |p: f64, f: Fault, rng: &mut Rng, faults: &mut Vec<Fault>| {
            let yes = rng.chance(p);
            if yes {
                faults.push(f);
            }
            yes
        };
        // names
        if let Some(g) = out.given_name.clone() {
            if hit(q.nickname, Fault::Nickname, rng, &mut faults) {
                match nickname(&g.to_uppercase(), rng) {
                    Some(n) => out.given_name = Some(n.to_string()),
                    None => {
                        faults.pop();
                    }
                }
            }
            if hit(q.typo_given, Fault::TypoGiven, rng, &mut faults) {
                out.given_name = Some(typo(out.given_name.as_deref().unwrap_or(&g), rng));
            }
        }
        let adult_female = out.sex == Some(Sex::Female)
            && out
                .birth_date
                .is_some_and(|d| self.record_year - d.year >= 18);
        if adult_female
            && !self.family_names.is_empty()
            && hit(q.surname_change, Fault::SurnameChange, rng, &mut faults)
        {
            out.family_name = Some(rng.pick(self.family_names).clone());
        }
        if let Some(f) = out.family_name.clone()
            && hit(q.typo_family, Fault::TypoFamily, rng, &mut faults)
        {
            out.family_name = Some(typo(&f, rng));
        }
        if hit(q.swap_names, Fault::SwapNames, rng, &mut faults) {
            std::mem::swap(&mut out.given_name, &mut out.family_name);
        }
        if hit(q.given_missing, Fault::GivenMissing, rng, &mut faults) {
            out.given_name = None;
        }
        // NHS number
        if out.nhs_number.is_some() {
            if hit(q.nhs_missing, Fault::NhsMissing, rng, &mut faults) {
                out.nhs_number = None;
            } else if hit(
                q.nhs_bad_check_digit,
                Fault::NhsBadCheckDigit,
                rng,
                &mut faults,
            ) {
                out.nhs_number = out.nhs_number.as_deref().map(|s| bad_check_digit(s, rng));
            } else if !self.nhs_numbers.is_empty()
                && hit(q.nhs_wrong_person, Fault::NhsWrongPerson, rng, &mut faults)
            {
                let other = rng.pick(self.nhs_numbers).clone();
                if Some(&other) == out.nhs_number.as_ref() {
                    faults.pop();
                } else {
                    out.nhs_number = Some(other);
                }
            }
        }
        // date of birth
        if let Some(d) = out.birth_date {
            if hit(q.dob_missing, Fault::DobMissing, rng, &mut faults) {
                out.birth_date = None;
            } else if d.day <= 12
                && d.day != d.month
                && hit(q.dob_transposed, Fault::DobTransposed, rng, &mut faults)
            {
                out.birth_date = Date::new(d.year, d.day, d.month);
            } else if hit(q.dob_off_by_one, Fault::DobOffByOne, rng, &mut faults) {
                let s = if rng.chance(0.5) { 1 } else { -1 };
                out.birth_date = Some(match rng.below(3) {
                    0 => {
                        let day = (i32::from(d.day) + s)
                            .clamp(1, i32::from(days_in_month(d.year, d.month)));
                        let day = if day == i32::from(d.day) {
                            i32::from(d.day) - s
                        } else {
                            day
                        };
                        Date::new(d.year, d.month, day as u8).unwrap_or(d)
                    }
                    1 => {
                        let m = ((i32::from(d.month) - 1 + s).rem_euclid(12) + 1) as u8;
                        let day = d.day.min(days_in_month(d.year, m));
                        Date::new(d.year, m, day).unwrap_or(d)
                    }
                    _ => {
                        let y = d.year + s;
                        let day = d.day.min(days_in_month(y, d.month));
                        Date::new(y, d.month, day).unwrap_or(d)
                    }
                });
            }
        }
        // postcode
        if out.postcode.is_some() {
            if hit(q.postcode_missing, Fault::PostcodeMissing, rng, &mut faults) {
                out.postcode = None;
            } else if hit(q.postcode_moved, Fault::PostcodeMoved, rng, &mut faults) {
                let old = out.postcode.clone().unwrap_or_default();
                out.postcode = Some(moved(&old, self.postcodes, rng));
                if out.postcode.as_deref() == Some(old.as_str()) {
                    faults.pop();
                }
            }
        }
        if out.sex.is_some() && hit(q.sex_missing, Fault::SexMissing, rng, &mut faults) {
            out.sex = None;
        }
        (out, faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::nhs_number;

    #[test]
    fn typos_are_one_edit_and_bad_nhs_fails_check() {
        let mut rng = Rng::stream(1, 1);
        for _ in 0..1000 {
            let t = typo("JOHNSON", &mut rng);
            assert_ne!(t, "JOHNSON");
            assert!(t.len() == 7 || t.len() == 6);
        }
        for _ in 0..1000 {
            let b = bad_check_digit("9434765919", &mut rng);
            assert!(nhs_number(&b).is_err(), "{b}");
        }
        assert!(nickname("WILLIAM", &mut rng).is_some());
        assert!(nickname("ZEBEDEE", &mut rng).is_none());
    }

    #[test]
    fn corruption_is_deterministic_and_applies_faults() {
        let clean = LinkRecord {
            source: "gp".into(),
            record_id: "1".into(),
            nhs_number: Some("9434765919".into()),
            given_name: Some("ELIZABETH".into()),
            family_name: Some("HARGREAVES".into()),
            birth_date: Date::new(1960, 5, 7),
            sex: Some(Sex::Female),
            postcode: Some("NG7 2UH".into()),
        };
        let pcs = vec!["DE1 1AA".to_string()];
        let nhs = vec!["9000000009".to_string()];
        let fams = vec!["PATEL".to_string()];
        let all = FaultRates {
            nhs_missing: 0.0,
            nhs_bad_check_digit: 0.0,
            nhs_wrong_person: 1.0,
            dob_missing: 0.0,
            postcode_missing: 0.0,
            postcode_moved: 1.0,
            surname_change: 1.0,
            typo_family: 0.0,
            swap_names: 0.0,
            given_missing: 0.0,
            sex_missing: 0.0,
            dob_transposed: 1.0,
            ..FaultRates::default()
        };
        let c = Corruptor {
            rates: all,
            postcodes: &pcs,
            nhs_numbers: &nhs,
            family_names: &fams,
            record_year: 2025,
        };
        let (a, fa) = c.corrupt(&clean, &mut Rng::stream(5, 9));
        let (b, fb) = c.corrupt(&clean, &mut Rng::stream(5, 9));
        assert_eq!(a, b);
        assert_eq!(fa, fb);
        assert_eq!(a.family_name.as_deref(), Some("PATEL"));
        assert_eq!(a.postcode.as_deref(), Some("DE1 1AA"));
        assert_eq!(a.nhs_number.as_deref(), Some("9000000009"));
        assert_eq!(a.birth_date, Date::new(1960, 7, 5));
        assert!(fa.contains(&Fault::DobTransposed));
    }
}

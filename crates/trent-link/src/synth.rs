//! Synthetic identities and feeds with known truth, for tests and the benchmark.
//!
//! People are generated in households (a person joins the previous person's household
//! with probability 0.55, sharing its postcode and usually its family name), which is
//! what makes linkage hard: relatives share surname and address. Names come from the
//! embedded lists in [`crate::names`] with Zipf-distributed frequencies (synthetic — see
//! that module); 70% of family names come from a made-up long tail. NHS numbers are in
//! the 9xx test range ([`trent_model::nhs_number::test_range_number`]); postcodes are
//! UK-shaped codes in East Midlands outward areas, not checked against real addresses.
//!
//! Each person appears in each feed with that feed's coverage, possibly twice
//! (duplicates), every record passed through [`crate::corrupt::Corruptor`] with the
//! feed's NHS-number missing rate. The default feeds give about 1.7 records per person.

use trent_model::nhs_number::test_range_number;
use trent_stats::rng::{Rng, cumulative};

use crate::corrupt::{Corruptor, FaultRates};
use crate::names::{FEMALE, MALE, SURNAMES, SYLLABLES};
use crate::record::{Date, LinkRecord, Sex};

/// A true person with their clean identity (`source` = "truth").
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Ground-truth person id.
    pub person_id: String,
    /// Clean identity record.
    pub identity: LinkRecord,
}

/// One synthetic feed.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Source name.
    pub name: String,
    /// Share of people with a record in this feed.
    pub coverage: f64,
    /// Share of records without an NHS number.
    pub nhs_missing: f64,
    /// Share of records recorded twice.
    pub duplicate_rate: f64,
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of people.
    pub people: usize,
    /// Seed.
    pub seed: u64,
    /// Feeds.
    pub sources: Vec<SourceSpec>,
    /// Fault rates (`nhs_missing` is overridden per feed).
    pub rates: FaultRates,
    /// Year the records are made.
    pub record_year: i32,
}

impl SynthConfig {
    /// Default feeds for `people` people: GP, hospital, community, mental health,
    /// social care (NHS number usually missing) and ambulance.
    pub fn new(people: usize, seed: u64) -> SynthConfig {
        let s = |name: &str, coverage, nhs_missing, duplicate_rate| SourceSpec {
            name: name.to_string(),
            coverage,
            nhs_missing,
            duplicate_rate,
        };
        SynthConfig {
            people,
            seed,
            sources: vec![
                s("gp", 0.95, 0.02, 0.01),
                s("hospital", 0.35, 0.08, 0.03),
                s("community", 0.15, 0.10, 0.02),
                s("mental_health", 0.06, 0.15, 0.02),
                s("social_care", 0.10, 0.60, 0.04),
                s("ambulance", 0.08, 0.45, 0.02),
            ],
            rates: FaultRates::default(),
            record_year: 2025,
        }
    }
}

fn zipf(n: usize, s: f64) -> Vec<f64> {
    cumulative((1..=n).map(|k| (k as f64).powf(-s)))
}

const AREAS: &[&str] = &["NG", "DE", "LE", "S", "DN", "LN", "NN", "ST", "CV", "B"];
const UNIT: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// A random UK-shaped postcode.
pub fn random_postcode(rng: &mut Rng) -> String {
    let area = rng.pick_str(AREAS);
    let district = 1 + rng.below(30);
    let sector = rng.below(10);
    let u1 = UNIT[rng.below(UNIT.len() as u64) as usize] as char;
    let u2 = UNIT[rng.below(UNIT.len() as u64) as usize] as char;
    format!("{area}{district} {sector}{u1}{u2}")
}

fn tail_surname(k: usize) -> String {
    // k → base-|SYLLABLES| digits, at least two syllables
    let b = SYLLABLES.len();
    let mut parts = vec![SYLLABLES[k % b], SYLLABLES[(k / b) % b]];
    if k >= b * b {
        parts.push(SYLLABLES[(k / (b * b)) % b]);
    }
    parts.concat()
}

/// Generate `n` people.
pub fn people(n: usize, seed: u64) -> Vec<Person> {
    let mut rng = Rng::stream(seed, 1);
    let sur = zipf(SURNAMES.len(), 0.9);
    let tail = zipf(60_000, 0.8);
    let male = zipf(MALE.len(), 0.6);
    let female = zipf(FEMALE.len(), 0.6);
    let mut out = Vec::with_capacity(n);
    let mut stem = 10_000_000u32;
    let mut household_pc = random_postcode(&mut rng);
    let mut household_name = String::new();
    for i in 0..n {
        let nhs = loop {
            stem += 1 + rng.below(7) as u32;
            if let Some(x) = test_range_number(stem) {
                break x;
            }
        };
        let new_household = i == 0 || !rng.chance(0.55);
        if new_household {
            household_pc = random_postcode(&mut rng);
            household_name = if rng.chance(0.3) {
                SURNAMES[rng.pick_cum(&sur)].to_string()
            } else {
                tail_surname(rng.pick_cum(&tail))
            };
        }
        let family = if new_household || rng.chance(0.8) {
            household_name.clone()
        } else if rng.chance(0.3) {
            SURNAMES[rng.pick_cum(&sur)].to_string()
        } else {
            tail_surname(rng.pick_cum(&tail))
        };
        let sex = if rng.chance(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        let given = match sex {
            Sex::Male => MALE[rng.pick_cum(&male)],
            Sex::Female => FEMALE[rng.pick_cum(&female)],
        };
        // ages 0–99, fewer at older ages
        let age = loop {
            let a = rng.below(100) as i32;
            if rng.f64() < 1.0 - (a as f64 / 130.0).powi(2) {
                break a;
            }
        };
        let start = Date::new(2025 - age - 1, 1, 1).expect("valid").to_days();
        let dob = Date::from_days(start + rng.below(365) as i32);
        out.push(Person {
            person_id: format!("T{i:07}"),
            identity: LinkRecord {
                source: "truth".into(),
                record_id: format!("T{i:07}"),
                nhs_number: Some(nhs),
                given_name: Some(given.to_string()),
                family_name: Some(family),
                birth_date: Some(dob),
                sex: Some(sex),
                postcode: Some(household_pc.clone()),
            },
        });
    }
    out
}

/// Generate feeds: records and, for each record, its true person id.
pub fn feeds(cfg: &SynthConfig) -> (Vec<LinkRecord>, Vec<String>) {
    let ppl = people(cfg.people, cfg.seed);
    let pc_pool: Vec<String> = ppl
        .iter()
        .filter_map(|p| p.identity.postcode.clone())
        .collect();
    let nhs_pool: Vec<String> = ppl
        .iter()
        .filter_map(|p| p.identity.nhs_number.clone())
        .collect();
    let fam_pool: Vec<String> = ppl
        .iter()
        .filter_map(|p| p.identity.family_name.clone())
        .collect();
    let mut records = Vec::new();
    let mut truth = Vec::new();
    for (s, spec) in cfg.sources.iter().enumerate() {
        let c = Corruptor {
            rates: FaultRates {
                nhs_missing: spec.nhs_missing,
                ..cfg.rates.clone()
            },
            postcodes: &pc_pool,
            nhs_numbers: &nhs_pool,
            family_names: &fam_pool,
            record_year: cfg.record_year,
        };
        let mut rng = Rng::stream(cfg.seed, 100 + s as u64);
        let mut k = 0usize;
        for p in &ppl {
            if !rng.chance(spec.coverage) {
                continue;
            }
            let copies = if rng.chance(spec.duplicate_rate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let (mut r, _) = c.corrupt(&p.identity, &mut rng);
                k += 1;
                r.source = spec.name.clone();
                r.record_id = format!("{}{:08}", &spec.name[..2].to_uppercase(), k);
                // feeds type names in mixed case
                if rng.chance(0.3) {
                    r.given_name = r.given_name.map(|g| title_case(&g));
                    r.family_name = r.family_name.map(|g| title_case(&g));
                }
                records.push(r);
                truth.push(p.person_id.clone());
            }
        }
    }
    (records, truth)
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphabetic();
    }
    out
}

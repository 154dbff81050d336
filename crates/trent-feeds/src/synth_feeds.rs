//! Synthetic source feeds with known faults and known truth.
//!
//! Given one partition of people as `trent-fhir` records, writes each care setting's CSV
//! feed ([`crate::csv_feeds`]) as that source would hold it: its own local patient ids,
//! its own copy of the person's identity with the mistakes real feeds make (trent-link's
//! [`Corruptor`]: typos, nicknames, transposed day and month of birth, old postcodes; NHS
//! number mostly missing in social care and often in ambulance records), a few bad
//! records (invalid codes, impossible dates, invalid NHS numbers, missing ids) and some
//! files delivered twice. Alongside it writes the ground truth:
//!
//! - `truth.csv` — `source,source_person,person_id`: who each local patient id really is;
//! - `faults.csv` — `file,line,source,source_person,record_id,fault,expected_reason`:
//!   every fault made. Row faults name the line and the reason code the reader must
//!   quarantine it with; identity faults (line 0, no reason) are not errors to the
//!   reader, they are what linkage must see through.
//!
//! So a test can assert that every bad record is quarantined with the right reason and
//! nothing else is. Deterministic for (seed, partition).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use trent_fhir::records::{ActivityRow, PatientRow, PersonRecord};
use trent_link::corrupt::{Corruptor, Fault, FaultRates, bad_check_digit};
use trent_link::record::{Date, LinkRecord, Sex};
use trent_model::time;
use trent_stats::rng::Rng;

use crate::csv_feeds::Feed;
use crate::reject::Reason;

/// Settings of the synthetic feeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthFeedsConfig {
    /// Seed.
    pub seed: u64,
    /// The batch date: faults "in the future" are after it; no clean date is.
    pub today: i32,
    /// Share of rows given a content fault (quarantined).
    pub fault_rate: f64,
    /// Chance that a feed file is delivered twice.
    pub redelivery_rate: f64,
    /// Identity fault rates (per feed the NHS-number-missing rate is overridden).
    pub rates: FaultRates,
}

impl SynthFeedsConfig {
    /// Defaults for a batch dated `today`.
    pub fn new(seed: u64, today: i32) -> SynthFeedsConfig {
        SynthFeedsConfig {
            seed,
            today,
            fault_rate: 0.02,
            redelivery_rate: 0.25,
            rates: FaultRates {
                // a bad check digit is a row fault here (quarantined), not an identity one
                nhs_bad_check_digit: 0.0,
                ..FaultRates::default()
            },
        }
    }
}

/// Who a local patient id really is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TruthRow {
    /// Feed.
    pub source: String,
    /// Local patient id in that feed.
    pub source_person: String,
    /// The lake's person id.
    pub person_id: i64,
}

/// One fault made.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRow {
    /// File name (relative to the output directory).
    pub file: String,
    /// Line (1-based; 0 for an identity fault that applies to the person in this feed).
    pub line: u64,
    /// Feed.
    pub source: String,
    /// Local patient id.
    pub source_person: String,
    /// Record id of the row (empty for identity faults).
    pub record_id: String,
    /// What was done (`invalid_code`, `date_in_future`, `redelivered`, `nickname` …).
    pub fault: String,
    /// The reason the reader must quarantine the row with; `None` for identity faults.
    pub expected_reason: Option<Reason>,
}

/// The feeds of one partition.
#[derive(Debug, Clone, Default)]
pub struct SynthFeeds {
    /// (file name, CSV text), one per feed file, redeliveries included.
    pub files: Vec<(String, String)>,
    /// Ground-truth links.
    pub truth: Vec<TruthRow>,
    /// Every fault made.
    pub faults: Vec<FaultRow>,
}

fn q(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl SynthFeeds {
    /// `truth.csv`.
    pub fn truth_csv(&self) -> String {
        let mut s = String::from("source,source_person,person_id\n");
        for t in &self.truth {
            let _ = writeln!(
                s,
                "{},{},{}",
                q(&t.source),
                q(&t.source_person),
                t.person_id
            );
        }
        s
    }

    /// `faults.csv`.
    pub fn faults_csv(&self) -> String {
        let mut s =
            String::from("file,line,source,source_person,record_id,fault,expected_reason\n");
        for f in &self.faults {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                q(&f.file),
                f.line,
                q(&f.source),
                q(&f.source_person),
                q(&f.record_id),
                q(&f.fault),
                f.expected_reason.map(Reason::code).unwrap_or("")
            );
        }
        s
    }

    /// Write the feed files, `truth.csv` and `faults.csv` into `dir` (created if needed).
    /// Truth and fault files are per partition when `dir` is shared: they are named
    /// `truth.csv`/`faults.csv` here; the caller chooses one directory per partition or
    /// concatenates.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &self.files {
            std::fs::write(dir.join(name), text)?;
        }
        std::fs::write(dir.join("truth.csv"), self.truth_csv())?;
        std::fs::write(dir.join("faults.csv"), self.faults_csv())?;
        Ok(())
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn prefix(feed: Feed) -> &'static str {
    match feed {
        Feed::Gp => "G",
        Feed::Apc => "A",
        Feed::Ae => "E",
        Feed::Op => "O",
        Feed::Community => "C",
        Feed::MentalHealth => "M",
        Feed::SocialCare => "S",
        Feed::Ambulance => "V",
    }
}

fn nhs_missing(feed: Feed) -> f64 {
    match feed {
        Feed::Gp => 0.0,
        Feed::SocialCare => 0.7,
        Feed::Ambulance => 0.4,
        Feed::Community | Feed::MentalHealth => 0.1,
        _ => 0.05,
    }
}

fn dt(ts: i64) -> String {
    let d = ts.div_euclid(86_400) as i32;
    let s = ts.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}",
        time::iso(d),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// One data row before it is written: its cells by column, and what it is.
struct Line {
    cells: BTreeMap<&'static str, String>,
    record_id: String,
    /// the day the row's event happened (for the DOB guard)
    day: Option<i32>,
    /// row kind: `person` rows carry no event; `spell` rows have start/end columns
    start_col: Option<&'static str>,
    end_col: Option<&'static str>,
    code_col: Option<&'static str>,
    code_system: Option<&'static str>,
}

impl Line {
    fn new(record_id: String) -> Line {
        Line {
            cells: BTreeMap::new(),
            record_id,
            day: None,
            start_col: None,
            end_col: None,
            code_col: None,
            code_system: None,
        }
    }
    fn set(&mut self, col: &'static str, v: impl Into<String>) {
        self.cells.insert(col, v.into());
    }
}

fn feed_of(setting: &str) -> Option<Feed> {
    Some(match setting {
        "gp" => Feed::Gp,
        "apc" => Feed::Apc,
        "ae" => Feed::Ae,
        "op" => Feed::Op,
        "community" => Feed::Community,
        "mental_health" => Feed::MentalHealth,
        "ambulance" => Feed::Ambulance,
        "social_care_assessment" => Feed::SocialCare,
        _ => return None,
    })
}

/// The event rows of one person in one feed (without demographics).
fn event_lines(feed: Feed, rec: &PersonRecord<'_>, pid: i64) -> Vec<Line> {
    let mut out = Vec::new();
    let spell = |a: &ActivityRow<'_>, start: &'static str, end: Option<&'static str>| {
        let mut l = Line::new(format!("{}{}", prefix(feed), a.activity_id));
        l.day = Some(a.start_ts.div_euclid(86_400) as i32);
        l.start_col = Some(start);
        l.end_col = end;
        l.set("provider_code", a.provider_code);
        l.set(start, dt(a.start_ts));
        if let Some(e) = end {
            l.set(e, opt(a.end_ts.map(dt)));
        }
        l.set("cost_gbp", format!("{:.2}", a.cost_gbp));
        l
    };
    for a in rec
        .activity
        .iter()
        .filter(|a| feed_of(a.setting) == Some(feed))
    {
        let l = match feed {
            Feed::Gp => {
                let mut l = Line::new(format!("C{}", a.activity_id));
                l.day = Some(a.start_ts.div_euclid(86_400) as i32);
                l.start_col = Some("event_datetime");
                l.set("record_type", "consultation");
                l.set("event_datetime", dt(a.start_ts));
                l.set("cost_gbp", format!("{:.2}", a.cost_gbp));
                l
            }
            Feed::Apc => {
                let mut l = spell(a, "admission_datetime", Some("discharge_datetime"));
                l.set("site_code", opt(a.site_code));
                l.set("admission_method", opt(a.admission_method));
                l.set("patient_class", opt(a.patient_class));
                l.set("treatment_function_code", opt(a.specialty));
                l.set(
                    "primary_diagnosis",
                    opt(a.primary_diagnosis.map(trent_fhir::icd10_dotted)),
                );
                l.code_col = Some("primary_diagnosis");
                l.code_system = Some("ICD10");
                let sec: Vec<String> = rec
                    .conditions
                    .iter()
                    .filter(|c| c.activity_id == Some(a.activity_id) && c.code_system == "ICD10")
                    .map(|c| c.code.to_string())
                    .collect();
                l.set("secondary_diagnoses", sec.join(";"));
                l.set("discharge_destination", opt(a.discharge_destination));
                l.set(
                    "medically_fit_date",
                    opt(a.medically_fit_date.map(time::iso)),
                );
                l
            }
            Feed::Ae => {
                let mut l = spell(a, "arrival_datetime", Some("departure_datetime"));
                l.set("site_code", opt(a.site_code));
                l.set("department_type", opt(a.patient_class));
                l.set("arrival_mode", opt(a.arrival_mode));
                l.set("primary_diagnosis", opt(a.primary_diagnosis));
                l.code_col = a.primary_diagnosis.map(|_| "primary_diagnosis");
                l.code_system = Some("ICD10");
                l.set("discharge_destination", opt(a.discharge_destination));
                l
            }
            Feed::Op => {
                let mut l = spell(a, "appointment_datetime", None);
                l.set("site_code", opt(a.site_code));
                l.set("attendance_type", opt(a.patient_class));
                l.set("treatment_function_code", opt(a.specialty));
                l.set("primary_diagnosis", opt(a.primary_diagnosis));
                l.set("referral_id", opt(a.referral_id.map(|r| format!("R{r}"))));
                l
            }
            Feed::Community => {
                let mut l = spell(a, "contact_datetime", Some("end_datetime"));
                l.set("patient_class", opt(a.patient_class));
                l
            }
            Feed::MentalHealth => {
                let mut l = spell(a, "start_datetime", Some("end_datetime"));
                l.set("patient_class", opt(a.patient_class));
                l.set("admission_method", opt(a.admission_method));
                l.set("primary_diagnosis", opt(a.primary_diagnosis));
                l.set("treatment_function_code", opt(a.specialty));
                l.set("discharge_destination", opt(a.discharge_destination));
                l
            }
            Feed::Ambulance => {
                let mut l = spell(a, "call_datetime", Some("close_datetime"));
                l.set("response_category", opt(a.ambulance_category));
                l.set("outcome", opt(a.patient_class));
                l.set("response_minutes", opt(a.response_minutes));
                l
            }
            Feed::SocialCare => {
                let mut l = Line::new(format!("SA{}", a.activity_id));
                let d = a.start_ts.div_euclid(86_400) as i32;
                l.day = Some(d);
                l.start_col = Some("start_date");
                l.set("la_code", a.provider_code);
                l.set("event_type", "assessment");
                l.set("start_date", time::iso(d));
                l
            }
        };
        out.push(l);
    }
    if feed == Feed::SocialCare {
        for (i, s) in rec.social_care.iter().enumerate() {
            let mut l = Line::new(format!("SS{pid}-{i}"));
            l.day = Some(s.start_date);
            l.start_col = Some("start_date");
            l.set("la_code", s.la_code);
            l.set("event_type", "service");
            l.set("service_type", s.service);
            l.set("start_date", time::iso(s.start_date));
            l.set("end_date", opt(s.end_date.map(time::iso)));
            l.set("weekly_cost_gbp", format!("{:.2}", s.weekly_cost_gbp));
            out.push(l);
        }
    }
    if feed == Feed::Gp {
        let gp_line = |kind: &str, i: usize, day: i32| {
            let mut l = Line::new(format!("{kind}-{pid}-{i}"));
            l.day = Some(day);
            l.start_col = Some("event_datetime");
            l.set("event_datetime", format!("{}T09:00:00", time::iso(day)));
            l
        };
        for (i, c) in rec
            .conditions
            .iter()
            .filter(|c| c.activity_id.is_none())
            .enumerate()
        {
            let mut l = gp_line("P", i, c.recorded_date);
            l.set("record_type", "condition");
            l.set("code_system", c.code_system);
            l.set("code", c.code);
            l.code_col = Some("code");
            l.code_system = Some(if c.code_system == "ICD10" {
                "ICD10"
            } else {
                "SNOMED"
            });
            out.push(l);
        }
        for (i, o) in rec.observations.iter().enumerate() {
            let mut l = gp_line("O", i, o.obs_date);
            l.set("record_type", "observation");
            l.set(
                "code_system",
                if o.code.starts_with("trent-") {
                    "TRENT"
                } else {
                    "SNOMED"
                },
            );
            l.set("code", o.code);
            l.set("value", opt(o.value));
            l.set("unit", opt(o.unit));
            if !o.code.starts_with("trent-") {
                l.code_col = Some("code");
                l.code_system = Some("SNOMED");
            }
            out.push(l);
        }
        for (i, m) in rec.medications.iter().enumerate() {
            let mut l = gp_line("M", i, m.issue_date);
            l.set("record_type", "medication");
            l.set("code_system", "BNF");
            l.set("code", m.code);
            l.set("days_supply", m.days_supply.to_string());
            l.set("cost_gbp", format!("{:.2}", m.cost_gbp));
            l.code_col = Some("code");
            l.code_system = Some("BNF");
            out.push(l);
        }
        for r in &rec.referrals {
            let mut l = Line::new(format!("R{}", r.referral_id));
            l.day = Some(r.referral_date);
            l.start_col = Some("event_datetime");
            l.set("record_type", "referral");
            l.set(
                "event_datetime",
                format!("{}T10:00:00", time::iso(r.referral_date)),
            );
            l.set("specialty", r.specialty);
            l.set("priority", r.priority);
            out.push(l);
        }
    }
    out
}

fn link_record(p: &PatientRow<'_>) -> LinkRecord {
    let (y, m, d) = time::ymd(p.birth_date);
    LinkRecord {
        source: String::new(),
        record_id: String::new(),
        nhs_number: Some(p.nhs_number.to_string()),
        given_name: Some(p.given_name.to_string()),
        family_name: Some(p.family_name.to_string()),
        birth_date: Date::new(y, m as u8, d as u8),
        sex: match p.sex {
            "M" => Some(Sex::Male),
            "F" => Some(Sex::Female),
            _ => None,
        },
        postcode: Some(p.postcode.to_string()),
    }
}

fn fault_name(f: Fault) -> &'static str {
    match f {
        Fault::TypoGiven => "typo_given",
        Fault::TypoFamily => "typo_family",
        Fault::Nickname => "nickname",
        Fault::SurnameChange => "surname_change",
        Fault::SwapNames => "swap_names",
        Fault::NhsMissing => "nhs_missing",
        Fault::NhsBadCheckDigit => "nhs_bad_check_digit",
        Fault::NhsWrongPerson => "nhs_wrong_person",
        Fault::DobMissing => "dob_missing",
        Fault::DobTransposed => "dob_transposed",
        Fault::DobOffByOne => "dob_off_by_one",
        Fault::PostcodeMoved => "postcode_moved",
        Fault::PostcodeMissing => "postcode_missing",
        Fault::SexMissing => "sex_missing",
        Fault::GivenMissing => "given_missing",
    }
}

/// Write the feeds of one partition of people.
pub fn synth_feeds(
    people: &[PersonRecord<'_>],
    partition: u64,
    cfg: &SynthFeedsConfig,
) -> SynthFeeds {
    let mut out = SynthFeeds::default();
    let pats: Vec<&PatientRow<'_>> = people.iter().filter_map(|p| p.patient.as_ref()).collect();
    let pc_pool: Vec<String> = pats.iter().map(|p| p.postcode.to_string()).collect();
    let nhs_pool: Vec<String> = pats.iter().map(|p| p.nhs_number.to_string()).collect();
    let fam_pool: Vec<String> = pats.iter().map(|p| p.family_name.to_string()).collect();
    let record_year = time::ymd(cfg.today).0;
    for (fi, &feed) in Feed::ALL.iter().enumerate() {
        let mut rng = Rng::stream(cfg.seed, (partition << 8) | fi as u64);
        let corruptor = Corruptor {
            rates: FaultRates {
                nhs_missing: nhs_missing(feed),
                ..cfg.rates.clone()
            },
            postcodes: &pc_pool,
            nhs_numbers: &nhs_pool,
            family_names: &fam_pool,
            record_year,
        };
        let file = format!("{}-{partition:05}.csv", feed.name());
        let header = feed.header();
        let mut text = header.join(",");
        text.push('\n');
        let mut line_no = 1u64;
        let mut faults_here: Vec<(u64, String, String, &'static str, Reason)> = Vec::new();
        let mut lines_meta: Vec<(u64, String, String)> = Vec::new(); // line, person, record id
        for rec in people {
            let Some(p) = rec.patient.as_ref() else {
                continue;
            };
            let mut events = event_lines(feed, rec, p.person_id);
            if events.is_empty() && feed != Feed::Gp {
                continue;
            }
            let local = format!(
                "{}{:012X}",
                prefix(feed),
                mix(p.person_id as u64 ^ mix(cfg.seed ^ fi as u64)) & 0xffff_ffff_ffff
            );
            out.truth.push(TruthRow {
                source: feed.name().to_string(),
                source_person: local.clone(),
                person_id: p.person_id,
            });
            // this feed's copy of the identity
            let clean = link_record(p);
            let (mut id, mut idf) = corruptor.corrupt(&clean, &mut rng);
            let first_event = events
                .iter()
                .filter_map(|l| l.day)
                .chain(p.death_date)
                .chain(std::iter::once(cfg.today))
                .min()
                .unwrap_or(cfg.today);
            if let Some(b) = id.birth_date
                && b.to_days() > first_event
            {
                // a corrupted birth after the person's first event would make clean rows
                // fail date_before_birth: keep the true date of birth instead
                id.birth_date = clean.birth_date;
                idf.retain(|f| !matches!(f, Fault::DobTransposed | Fault::DobOffByOne));
            }
            for f in &idf {
                out.faults.push(FaultRow {
                    file: file.clone(),
                    line: 0,
                    source: feed.name().to_string(),
                    source_person: local.clone(),
                    record_id: String::new(),
                    fault: fault_name(*f).to_string(),
                    expected_reason: None,
                });
            }
            let birth = id.birth_date.map(|d| d.to_days());
            let demo = |l: &mut Line, id: &LinkRecord| {
                l.set("local_patient_id", local.clone());
                l.set("nhs_number", opt(id.nhs_number.clone()));
                l.set("given_name", opt(id.given_name.clone()));
                l.set("family_name", opt(id.family_name.clone()));
                l.set("birth_date", opt(id.birth_date.map(|d| d.to_string())));
                l.set("sex", opt(id.sex.map(Sex::code)));
                l.set("postcode", opt(id.postcode.clone()));
                l.set("address_line", p.address_line);
                l.set("gp_practice_code", p.practice_code);
                l.set("ethnic_category", opt(p.ethnicity));
            };
            let mut rows: Vec<Line> = Vec::new();
            if feed == Feed::Gp {
                let mut l = Line::new(format!("PAT{}", p.person_id));
                l.set("record_type", "patient");
                demo(&mut l, &id);
                l.set("death_date", opt(p.death_date.map(time::iso)));
                rows.push(l);
                for e in &mut events {
                    e.set("local_patient_id", local.clone());
                    e.set("gp_practice_code", p.practice_code);
                }
            } else {
                for e in &mut events {
                    demo(e, &id);
                }
            }
            rows.extend(events);
            // gp events are checked against the patient row: if that row is quarantined
            // the reader cannot know the birth date, so no date_before_birth fault then
            let mut life_known = true;
            for mut l in rows {
                let rid_col = header[if feed == Feed::Gp { 1 } else { 0 }];
                l.set(rid_col, l.record_id.clone());
                line_no += 1;
                // a content fault?
                if rng.chance(cfg.fault_rate) {
                    let mut options: Vec<&'static str> = vec!["missing_required", "invalid_date"];
                    if l.code_col.is_some() {
                        options.push("invalid_code");
                    }
                    if l.start_col.is_some() {
                        options.push("date_in_future");
                        if birth.is_some() && life_known {
                            options.push("date_before_birth");
                        }
                    }
                    if l.end_col.is_some()
                        && l.cells
                            .get(l.end_col.unwrap())
                            .is_some_and(|v| !v.is_empty())
                    {
                        options.push("end_before_start");
                    }
                    if id.nhs_number.is_some() && l.cells.contains_key("nhs_number") {
                        options.push("invalid_nhs_number");
                    }
                    let kind = *rng.pick(&options);
                    let reason = match kind {
                        "missing_required" => {
                            l.set("local_patient_id", "");
                            Reason::MissingRequired
                        }
                        "invalid_date" => {
                            let col = l.start_col.unwrap_or("birth_date");
                            let old = l.cells.get(col).cloned().unwrap_or_default();
                            // 31 June does not exist
                            let bad = if old.len() > 10 {
                                format!("2019-06-31{}", &old[10..])
                            } else {
                                "2019-06-31".to_string()
                            };
                            l.set(col, bad);
                            Reason::InvalidDate
                        }
                        "invalid_code" => {
                            let col = l.code_col.expect("checked");
                            let old = l.cells.get(col).cloned().unwrap_or_default();
                            let bad = match l.code_system {
                                Some("SNOMED") => {
                                    // change the check digit: Verhoeff catches it
                                    let mut b = old.into_bytes();
                                    let last = b.len() - 1;
                                    b[last] = b'0' + (b[last] - b'0' + 1) % 10;
                                    String::from_utf8(b).expect("digits")
                                }
                                Some("BNF") => "BNF?".to_string(),
                                _ => format!("9{}", &old[1.min(old.len())..]),
                            };
                            l.set(col, bad);
                            Reason::InvalidCode
                        }
                        "date_in_future" => {
                            let col = l.start_col.expect("checked");
                            let d = cfg.today + 30 + rng.below(300) as i32;
                            let v = if col == "start_date" {
                                time::iso(d)
                            } else {
                                format!("{}T10:00:00", time::iso(d))
                            };
                            l.set(col, v);
                            if let Some(e) = l.end_col {
                                l.set(e, "");
                            }
                            if col == "start_date" {
                                l.set("end_date", "");
                            }
                            Reason::DateInFuture
                        }
                        "date_before_birth" => {
                            let col = l.start_col.expect("checked");
                            let d = birth.expect("checked") - 1 - rng.below(400) as i32;
                            let v = if col == "start_date" {
                                time::iso(d)
                            } else {
                                format!("{}T10:00:00", time::iso(d))
                            };
                            l.set(col, v);
                            if let Some(e) = l.end_col {
                                l.set(e, "");
                            }
                            if col == "start_date" {
                                l.set("end_date", "");
                            }
                            Reason::DateBeforeBirth
                        }
                        "end_before_start" => {
                            let (s, e) =
                                (l.start_col.expect("checked"), l.end_col.expect("checked"));
                            let start = l.cells.get(s).cloned().unwrap_or_default();
                            let d = time::parse(&start[..10]).unwrap_or(0) - 2;
                            l.set(e, format!("{}T10:00:00", time::iso(d)));
                            Reason::InvalidDate
                        }
                        _ => {
                            let nhs = l.cells.get("nhs_number").cloned().unwrap_or_default();
                            l.set("nhs_number", bad_check_digit(&nhs, &mut rng));
                            Reason::InvalidNhsNumber
                        }
                    };
                    if l.cells.get("record_type").is_some_and(|t| t == "patient") {
                        life_known = false;
                    }
                    faults_here.push((line_no, local.clone(), l.record_id.clone(), kind, reason));
                }
                lines_meta.push((line_no, local.clone(), l.record_id.clone()));
                let cells: Vec<String> = header
                    .iter()
                    .map(|c| q(l.cells.get(c).map(String::as_str).unwrap_or("")))
                    .collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
        }
        if line_no == 1 {
            continue;
        }
        for (line, person, rid, kind, reason) in &faults_here {
            out.faults.push(FaultRow {
                file: file.clone(),
                line: *line,
                source: feed.name().to_string(),
                source_person: person.clone(),
                record_id: rid.clone(),
                fault: kind.to_string(),
                expected_reason: Some(*reason),
            });
        }
        if rng.chance(cfg.redelivery_rate) {
            let again = format!("{}-{partition:05}-redelivered.csv", feed.name());
            for (line, person, rid) in &lines_meta {
                let original = faults_here.iter().find(|f| f.0 == *line);
                out.faults.push(FaultRow {
                    file: again.clone(),
                    line: *line,
                    source: feed.name().to_string(),
                    source_person: person.clone(),
                    record_id: rid.clone(),
                    fault: match original {
                        Some(f) => format!("redelivered+{}", f.3),
                        None => "redelivered".into(),
                    },
                    expected_reason: Some(original.map_or(Reason::DuplicateInBatch, |f| f.4)),
                });
            }
            out.files.push((file, text.clone()));
            out.files.push((again, text));
        } else {
            out.files.push((file, text));
        }
    }
    out.truth.sort();
    out
}

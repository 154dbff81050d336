//! A small owned population of person records, for tests, the benchmark and fuzz seeds.
//!
//! Not the calibrated generator (that is `trent-synth`, which writes the lake): this
//! makes plausible, internally consistent `trent-fhir` records — every care setting,
//! every row kind, deaths, referrals followed by outpatient attendances, secondary
//! diagnoses on spells — from trent-link's synthetic identities, so the readers can be
//! tested without building a lake. Deterministic for a seed.

use trent_fhir::records::*;
use trent_model::codes;
use trent_stats::rng::Rng;

/// One person with owned identity strings and `'static` event rows.
#[derive(Debug, Clone)]
pub struct SamplePerson {
    /// Lake person id.
    pub person_id: i64,
    /// NHS number.
    pub nhs_number: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Postcode.
    pub postcode: String,
    /// Address line.
    pub address_line: String,
    /// Date of birth.
    pub birth_date: i32,
    /// `F` or `M`.
    pub sex: &'static str,
    /// Practice.
    pub practice_code: &'static str,
    /// Ethnic category.
    pub ethnicity: &'static str,
    /// Date of death.
    pub death_date: Option<i32>,
    /// Contacts.
    pub activity: Vec<ActivityRow<'static>>,
    /// Diagnoses.
    pub conditions: Vec<ConditionRow<'static>>,
    /// Observations.
    pub observations: Vec<ObservationRow<'static>>,
    /// Prescriptions.
    pub medications: Vec<MedicationRow<'static>>,
    /// Social care.
    pub social_care: Vec<SocialCareRow<'static>>,
    /// Referrals.
    pub referrals: Vec<ReferralRow<'static>>,
}

impl SamplePerson {
    /// The person as a `trent-fhir` record.
    pub fn record(&self) -> PersonRecord<'_> {
        PersonRecord {
            patient: Some(PatientRow {
                person_id: self.person_id,
                nhs_number: &self.nhs_number,
                given_name: &self.given_name,
                family_name: &self.family_name,
                birth_date: self.birth_date,
                sex: self.sex,
                postcode: &self.postcode,
                address_line: &self.address_line,
                practice_code: self.practice_code,
                ethnicity: Some(self.ethnicity),
                death_date: self.death_date,
            }),
            activity: self.activity.clone(),
            conditions: self.conditions.clone(),
            observations: self.observations.clone(),
            medications: self.medications.clone(),
            social_care: self.social_care.clone(),
            referrals: self.referrals.clone(),
        }
    }
}

const PRACTICES: &[&str] = &["C84001", "C84002", "C84003", "C84004"];
const ETHNIC: &[&str] = &["A", "A", "A", "A", "B", "C", "H", "J", "K", "N", "S", "Z"];
const STREETS: &[&str] = &[
    "High Street",
    "Church Lane",
    "Mansfield Road",
    "Derby Road",
    "Station Road",
];

/// `n` people, with events between `start` and `end` (days since 1970-01-01).
pub fn population(n: usize, seed: u64, start: i32, end: i32) -> Vec<SamplePerson> {
    let ids = trent_link::synth::people(n, seed);
    let mut rng = Rng::stream(seed, 7);
    let mut next_activity = 1i64;
    let mut next_referral = 1i64;
    let mut out = Vec::with_capacity(n);
    for (i, p) in ids.iter().enumerate() {
        let idn = &p.identity;
        let birth = idn
            .birth_date
            .map(|d| d.to_days())
            .unwrap_or(start - 40 * 365);
        let birth = birth.min(end - 30);
        let from = start.max(birth);
        let death = if rng.chance(0.03) {
            Some(from + rng.below((end - from).max(1) as u64) as i32)
        } else {
            None
        };
        let last = death.unwrap_or(end);
        let mut sp = SamplePerson {
            person_id: 1000 + i as i64,
            nhs_number: idn.nhs_number.clone().unwrap_or_default(),
            given_name: idn.given_name.clone().unwrap_or_else(|| "ALEX".into()),
            family_name: idn.family_name.clone().unwrap_or_else(|| "SMITH".into()),
            postcode: idn.postcode.clone().unwrap_or_else(|| "NG7 2UH".into()),
            address_line: String::new(),
            birth_date: birth,
            sex: match idn.sex {
                Some(trent_link::record::Sex::Male) => "M",
                _ => "F",
            },
            practice_code: PRACTICES[i % PRACTICES.len()],
            ethnicity: ETHNIC[i % ETHNIC.len()],
            death_date: death,
            activity: Vec::new(),
            conditions: Vec::new(),
            observations: Vec::new(),
            medications: Vec::new(),
            social_care: Vec::new(),
            referrals: Vec::new(),
        };
        let mut r2 = Rng::stream(seed, 1000 + i as u64);
        sp.address_line = format!("{} {}", 1 + r2.below(200), r2.pick_str(STREETS));
        let pick_day = |r: &mut Rng| from + r.below((last - from + 1).max(1) as u64) as i32;
        let ts = |d: i32, r: &mut Rng| {
            i64::from(d) * 86_400 + 3600 * (8 + r.below(10) as i64) + 60 * r.below(60) as i64
        };
        let blank =
            |id: i64, setting: &'static str, start: i64, provider: &'static str| ActivityRow {
                activity_id: id,
                setting,
                start_ts: start,
                end_ts: None,
                provider_code: provider,
                site_code: None,
                admission_method: None,
                patient_class: None,
                primary_diagnosis: None,
                specialty: None,
                cost_gbp: 0.0,
                discharge_destination: None,
                los_days: None,
                medically_fit_date: None,
                arrival_mode: None,
                ambulance_category: None,
                response_minutes: None,
                referral_id: None,
            };
        // GP consultations, problems, observations, prescriptions
        for _ in 0..r2.below(4) {
            let t = ts(pick_day(&mut r2), &mut r2);
            let mut a = blank(next_activity, "gp", t, sp.practice_code);
            next_activity += 1;
            a.cost_gbp = 42.0;
            sp.activity.push(a);
        }
        for _ in 0..r2.below(3) {
            let c = r2.pick(codes::CONDITIONS);
            sp.conditions.push(ConditionRow {
                code_system: "SNOMED",
                code: c.snomed,
                recorded_date: pick_day(&mut r2),
                activity_id: None,
            });
        }
        for _ in 0..r2.below(4) {
            let d = pick_day(&mut r2);
            let (code, value, unit) = match r2.below(5) {
                0 => (
                    codes::OBS_BMI.code,
                    Some((180.0 + r2.below(200) as f64) / 10.0),
                    codes::OBS_BMI.unit,
                ),
                1 => (
                    codes::OBS_SYSTOLIC.code,
                    Some(100.0 + r2.below(80) as f64),
                    codes::OBS_SYSTOLIC.unit,
                ),
                2 => (
                    codes::OBS_HBA1C.code,
                    Some(30.0 + r2.below(60) as f64),
                    codes::OBS_HBA1C.unit,
                ),
                3 => (
                    codes::OBS_ACTIVITY.code,
                    Some(r2.below(300) as f64),
                    codes::OBS_ACTIVITY.unit,
                ),
                _ => (codes::OBS_SMOKER.code, None, None),
            };
            sp.observations.push(ObservationRow {
                code,
                value,
                unit,
                obs_date: d,
            });
        }
        for _ in 0..r2.below(4) {
            let (code, _, cost) = *r2.pick(codes::MEDICINES);
            sp.medications.push(MedicationRow {
                code,
                issue_date: pick_day(&mut r2),
                cost_gbp: cost,
                days_supply: 28,
            });
        }
        // referral → outpatient first attendance
        if r2.chance(0.3) {
            let d = pick_day(&mut r2);
            let (spec, _) = *r2.pick(codes::SPECIALTIES);
            let rid = next_referral;
            next_referral += 1;
            sp.referrals.push(ReferralRow {
                referral_id: rid,
                practice_code: sp.practice_code,
                specialty: spec,
                referral_date: d,
                priority: r2.pick_str(&["routine", "urgent", "two_week_wait"]),
            });
            let ad = (d + 14 + r2.below(40) as i32).min(last);
            let mut a = blank(next_activity, "op", ts(ad, &mut r2), "RX1");
            next_activity += 1;
            a.patient_class = Some("first");
            a.specialty = Some(spec);
            a.site_code = Some("RX1RA");
            a.cost_gbp = 160.0;
            a.referral_id = Some(rid);
            sp.activity.push(a);
        }
        // admitted spell with secondary diagnoses
        if r2.chance(0.25) {
            let d = pick_day(&mut r2);
            let los = r2.below(6) as i32;
            let disch = (d + los).min(last);
            let mut a = blank(next_activity, "apc", ts(d, &mut r2), "RX1");
            next_activity += 1;
            let c = r2.pick(codes::CONDITIONS);
            a.end_ts = Some(i64::from(disch) * 86_400 + 3600 * 19);
            a.site_code = Some("RX1CC");
            a.admission_method = Some(*r2.pick(&["elective", "emergency"]));
            a.patient_class = Some(if disch == d { "day_case" } else { "ordinary" });
            a.primary_diagnosis = Some(c.icd10);
            a.specialty = Some("300");
            a.cost_gbp = 1850.5;
            a.discharge_destination = Some("usual_residence");
            a.los_days = Some(disch - d);
            if disch > d {
                a.medically_fit_date = Some(disch - 1);
            }
            let id = a.activity_id;
            sp.activity.push(a);
            for _ in 0..r2.below(3) {
                let c2 = r2.pick(codes::CONDITIONS);
                sp.conditions.push(ConditionRow {
                    code_system: "ICD10",
                    code: c2.icd10,
                    recorded_date: disch,
                    activity_id: Some(id),
                });
            }
        }
        // A&E, community, mental health, ambulance
        if r2.chance(0.3) {
            let d = pick_day(&mut r2);
            let t = ts(d, &mut r2);
            let mut a = blank(next_activity, "ae", t, "RX1");
            next_activity += 1;
            a.end_ts = Some(t + 3600 * 3);
            a.site_code = Some("RX1RA");
            a.patient_class = Some(*r2.pick(&["type1", "type3"]));
            a.arrival_mode = Some(*r2.pick(&["ambulance", "walk_in"]));
            a.primary_diagnosis = Some("R074");
            a.discharge_destination = Some("discharged");
            a.cost_gbp = 250.0;
            sp.activity.push(a);
        }
        if r2.chance(0.15) {
            let t = ts(pick_day(&mut r2), &mut r2);
            let mut a = blank(next_activity, "community", t, "RHA");
            next_activity += 1;
            a.end_ts = Some(t + 1800);
            a.patient_class = Some("contact");
            a.cost_gbp = 60.0;
            sp.activity.push(a);
        }
        if r2.chance(0.08) {
            let t = ts(pick_day(&mut r2), &mut r2);
            let mut a = blank(next_activity, "mental_health", t, "RHA");
            next_activity += 1;
            a.end_ts = Some(t + 3600);
            a.patient_class = Some("contact");
            a.specialty = Some("710");
            a.cost_gbp = 120.0;
            sp.activity.push(a);
        }
        if r2.chance(0.1) {
            let t = ts(pick_day(&mut r2), &mut r2);
            let mut a = blank(next_activity, "ambulance", t, "RX9");
            next_activity += 1;
            a.end_ts = Some(t + 5400);
            a.ambulance_category = Some(*r2.pick(&["red1", "red2", "green"]));
            a.patient_class = Some("see_and_convey");
            a.response_minutes = Some(5.0 + r2.below(60) as f64 / 2.0);
            a.cost_gbp = 300.0;
            sp.activity.push(a);
        }
        // social care for older people
        let age = (end - birth) / 365;
        if age >= 65 && r2.chance(0.3) {
            let d = pick_day(&mut r2);
            let mut a = blank(
                next_activity,
                "social_care_assessment",
                i64::from(d) * 86_400,
                "E10000024",
            );
            next_activity += 1;
            a.cost_gbp = 0.0;
            sp.activity.push(a);
            let s = (d + 7).min(last);
            sp.social_care.push(SocialCareRow {
                service: r2.pick_str(&["home_care", "residential", "reablement"]),
                start_date: s,
                end_date: if r2.chance(0.5) {
                    Some((s + 42).min(last))
                } else {
                    None
                },
                weekly_cost_gbp: 420.0,
                la_code: "E10000024",
            });
        }
        out.push(sp);
    }
    out
}

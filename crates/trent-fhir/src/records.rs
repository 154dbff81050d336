//! One person's record as trent's data model holds it: the identity vault row joined to
//! the lake's rows, borrowed (`&str`) so that a reader can point into Arrow arrays
//! without copying. Field names follow `docs/schema.md`; dates are days since
//! 1970-01-01, timestamps seconds since 1970-01-01 UTC.

/// The person: identity vault row plus the lake's `person` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow<'a> {
    /// `person_id` (lake surrogate key; used only to derive stable resource ids).
    pub person_id: i64,
    /// Ten-digit NHS number.
    pub nhs_number: &'a str,
    /// Given name.
    pub given_name: &'a str,
    /// Family name.
    pub family_name: &'a str,
    /// Exact date of birth.
    pub birth_date: i32,
    /// `F` or `M`.
    pub sex: &'a str,
    /// Postcode.
    pub postcode: &'a str,
    /// First line of the address.
    pub address_line: &'a str,
    /// Registered GP practice (ODS code).
    pub practice_code: &'a str,
    /// NHS ethnic category code.
    pub ethnicity: Option<&'a str>,
    /// Date of death.
    pub death_date: Option<i32>,
}

/// A row of `activity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow<'a> {
    /// `activity_id`.
    pub activity_id: i64,
    /// Care setting.
    pub setting: &'a str,
    /// Start.
    pub start_ts: i64,
    /// End.
    pub end_ts: Option<i64>,
    /// Provider (ODS code).
    pub provider_code: &'a str,
    /// Site (ODS code).
    pub site_code: Option<&'a str>,
    /// Admission method.
    pub admission_method: Option<&'a str>,
    /// Patient class.
    pub patient_class: Option<&'a str>,
    /// Primary diagnosis, ICD-10 without the dot.
    pub primary_diagnosis: Option<&'a str>,
    /// Treatment function code.
    pub specialty: Option<&'a str>,
    /// Cost, pounds.
    pub cost_gbp: f64,
    /// Discharge destination.
    pub discharge_destination: Option<&'a str>,
    /// Length of stay, days.
    pub los_days: Option<i32>,
    /// Medically fit for discharge.
    pub medically_fit_date: Option<i32>,
    /// A&E arrival mode.
    pub arrival_mode: Option<&'a str>,
    /// Ambulance response category.
    pub ambulance_category: Option<&'a str>,
    /// Ambulance response time, minutes.
    pub response_minutes: Option<f64>,
    /// The referral an outpatient first attendance came from.
    pub referral_id: Option<i64>,
}

/// A row of `condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionRow<'a> {
    /// `SNOMED` or `ICD10`.
    pub code_system: &'a str,
    /// The code (ICD-10 without the dot).
    pub code: &'a str,
    /// Date recorded.
    pub recorded_date: i32,
    /// The hospital spell it was coded in.
    pub activity_id: Option<i64>,
}

/// A row of `observation`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow<'a> {
    /// Code (SNOMED CT or `trent-` local code).
    pub code: &'a str,
    /// Value.
    pub value: Option<f64>,
    /// UCUM unit.
    pub unit: Option<&'a str>,
    /// Date.
    pub obs_date: i32,
}

/// A row of `medication`.
#[derive(Debug, Clone, PartialEq)]
pub struct MedicationRow<'a> {
    /// BNF chemical substance code.
    pub code: &'a str,
    /// Issue date.
    pub issue_date: i32,
    /// Cost, pounds.
    pub cost_gbp: f64,
    /// Days supplied.
    pub days_supply: i32,
}

/// A row of `social_care`.
#[derive(Debug, Clone, PartialEq)]
pub struct SocialCareRow<'a> {
    /// Service.
    pub service: &'a str,
    /// Start.
    pub start_date: i32,
    /// End.
    pub end_date: Option<i32>,
    /// Weekly cost, pounds.
    pub weekly_cost_gbp: f64,
    /// Funding local authority (ONS code).
    pub la_code: &'a str,
}

/// A row of `referral`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralRow<'a> {
    /// `referral_id`.
    pub referral_id: i64,
    /// Referring practice.
    pub practice_code: &'a str,
    /// Specialty referred to.
    pub specialty: &'a str,
    /// Date.
    pub referral_date: i32,
    /// `routine`, `urgent`, `two_week_wait`.
    pub priority: &'a str,
}

/// Everything trent holds about one person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonRecord<'a> {
    /// The person (None only while a record is being assembled).
    pub patient: Option<PatientRow<'a>>,
    /// Contacts.
    pub activity: Vec<ActivityRow<'a>>,
    /// Diagnoses.
    pub conditions: Vec<ConditionRow<'a>>,
    /// Measurements and findings.
    pub observations: Vec<ObservationRow<'a>>,
    /// Prescriptions.
    pub medications: Vec<MedicationRow<'a>>,
    /// Social care packages.
    pub social_care: Vec<SocialCareRow<'a>>,
    /// Referrals.
    pub referrals: Vec<ReferralRow<'a>>,
}

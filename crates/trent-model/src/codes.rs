//! The code lists trent's generator writes and its engines read.
//!
//! Long-term conditions carry a SNOMED CT concept (as a GP system records it) and an
//! ICD-10 code (as a hospital codes it, without the dot). Observations use SNOMED CT
//! observable or finding concepts where one is well known; where no suitable concept
//! could be confirmed offline a `trent-` local code is used and says so. Medicines are BNF
//! chemical substance codes. SNOMED CT and ICD-10 codes here are identifiers only; no
//! terminology release is shipped.

/// A long-term condition the synthetic population can have.
#[derive(Debug, Clone, Copy)]
pub struct ConditionCode {
    /// short key used in the generator and docs
    pub key: &'static str,
    /// display name
    pub name: &'static str,
    /// SNOMED CT concept id (GP record)
    pub snomed: &'static str,
    /// ICD-10 code without the dot (hospital record)
    pub icd10: &'static str,
}

const fn cc(
    key: &'static str,
    name: &'static str,
    snomed: &'static str,
    icd10: &'static str,
) -> ConditionCode {
    ConditionCode {
        key,
        name,
        snomed,
        icd10,
    }
}

/// The long-term conditions, in the generator's order (index = condition id).
pub const CONDITIONS: &[ConditionCode] = &[
    cc("hypertension", "Essential hypertension", "38341003", "I10"),
    cc("diabetes", "Type 2 diabetes mellitus", "44054006", "E119"),
    cc("chd", "Coronary heart disease", "53741008", "I251"),
    cc("heart_failure", "Heart failure", "84114007", "I500"),
    cc("stroke", "Stroke", "230690007", "I639"),
    cc("af", "Atrial fibrillation", "49436004", "I48"),
    cc(
        "copd",
        "Chronic obstructive pulmonary disease",
        "13645005",
        "J449",
    ),
    cc("asthma", "Asthma", "195967001", "J459"),
    cc("cancer", "Malignant neoplasm", "363346000", "C809"),
    cc("dementia", "Dementia", "52448006", "F03"),
    cc(
        "smi",
        "Serious mental illness (schizophrenia, bipolar)",
        "58214004",
        "F209",
    ),
    cc("depression", "Depression", "35489007", "F329"),
    cc(
        "learning_disability",
        "Learning disability",
        "110359009",
        "F79",
    ),
    cc("osteoarthritis", "Osteoarthritis", "396275006", "M179"),
    cc(
        "ckd",
        "Chronic kidney disease stage 3-5",
        "709044004",
        "N183",
    ),
    cc("epilepsy", "Epilepsy", "84757009", "G409"),
    cc(
        "rheumatoid_arthritis",
        "Rheumatoid arthritis",
        "69896004",
        "M069",
    ),
    cc("parkinsons", "Parkinson's disease", "49049000", "G20"),
    cc("osteoporosis", "Osteoporosis", "64859006", "M819"),
    cc(
        "alcohol_dependence",
        "Alcohol dependence",
        "7200002",
        "F102",
    ),
    cc(
        "liver_disease",
        "Chronic liver disease",
        "328383001",
        "K703",
    ),
    cc("pvd", "Peripheral vascular disease", "400047006", "I739"),
];

/// Ethnic groups of the NHS ethnic category codes.
pub const ETHNIC_GROUPS: &[&str] = &["White", "Mixed", "Asian", "Black", "Other", "Not stated"];

/// Ethnic group of an NHS ethnic category code (A-C White, D-G Mixed, H-L Asian, M-P Black,
/// R-S Other, anything else Not stated).
pub fn ethnic_group(code: &str) -> usize {
    match code.chars().next() {
        Some('A' | 'B' | 'C') => 0,
        Some('D' | 'E' | 'F' | 'G') => 1,
        Some('H' | 'J' | 'K' | 'L') => 2,
        Some('M' | 'N' | 'P') => 3,
        Some('R' | 'S') => 4,
        _ => 5,
    }
}

/// Index of a condition by key.
pub fn condition_index(key: &str) -> Option<usize> {
    CONDITIONS.iter().position(|c| c.key == key)
}

/// An observation code.
#[derive(Debug, Clone, Copy)]
pub struct ObsCode {
    /// short key
    pub key: &'static str,
    /// the code written in `observation.code`
    pub code: &'static str,
    /// display
    pub name: &'static str,
    /// unit of the value, if any
    pub unit: Option<&'static str>,
}

const fn oc(
    key: &'static str,
    code: &'static str,
    name: &'static str,
    unit: Option<&'static str>,
) -> ObsCode {
    ObsCode {
        key,
        code,
        name,
        unit,
    }
}

/// Current smoker (finding, no value).
pub const OBS_SMOKER: ObsCode = oc("smoker", "77176002", "Smoker", None);
/// Ex-smoker (finding).
pub const OBS_EX_SMOKER: ObsCode = oc("ex_smoker", "8517006", "Ex-smoker", None);
/// Never smoked (finding).
pub const OBS_NEVER_SMOKED: ObsCode = oc("never_smoked", "266919005", "Never smoked tobacco", None);
/// Body mass index.
pub const OBS_BMI: ObsCode = oc("bmi", "60621009", "Body mass index", Some("kg/m2"));
/// Systolic blood pressure.
pub const OBS_SYSTOLIC: ObsCode = oc(
    "systolic",
    "271649006",
    "Systolic blood pressure",
    Some("mm[Hg]"),
);
/// Diastolic blood pressure.
pub const OBS_DIASTOLIC: ObsCode = oc(
    "diastolic",
    "271650006",
    "Diastolic blood pressure",
    Some("mm[Hg]"),
);
/// HbA1c (IFCC).
pub const OBS_HBA1C: ObsCode = oc(
    "hba1c",
    "999791000000106",
    "Haemoglobin A1c level (IFCC)",
    Some("mmol/mol"),
);
/// Alcohol units per week.
pub const OBS_ALCOHOL: ObsCode = oc("alcohol", "160573003", "Alcohol intake", Some("[arb'U]/wk"));
/// Minutes of moderate physical activity per week (GPPAQ-style); < 30 = inactive.
pub const OBS_ACTIVITY: ObsCode = oc(
    "activity",
    "trent-activity-min-wk",
    "Moderate physical activity, minutes per week (local code)",
    Some("min/wk"),
);
/// Self-rated health: 1 = very good/good, 0 = fair/bad/very bad.
pub const OBS_SELF_RATED_HEALTH: ObsCode = oc(
    "self_rated_health",
    "trent-srh-good",
    "Self-rated health good or very good, 1/0 (local code)",
    Some("1"),
);
/// Birth weight of a baby (grams), recorded on the baby.
pub const OBS_BIRTH_WEIGHT: ObsCode = oc("birth_weight", "364589006", "Birth weight", Some("g"));
/// Gestation at birth (weeks), recorded on the baby.
pub const OBS_GESTATION: ObsCode = oc(
    "gestation",
    "412726003",
    "Length of gestation at birth",
    Some("wk"),
);
/// Breastfeeding at the 6-8 week check: 1 = any breast milk, 0 = none.
pub const OBS_BREASTFEEDING: ObsCode = oc(
    "breastfeeding_6_8wk",
    "trent-bf-6-8wk",
    "Breastfed (any) at 6-8 week review, 1/0 (local code)",
    Some("1"),
);
/// National Child Measurement Programme BMI centile (UK90), Reception and Year 6.
pub const OBS_NCMP_CENTILE: ObsCode = oc(
    "ncmp_bmi_centile",
    "trent-ncmp-centile",
    "NCMP BMI centile (UK90) (local code)",
    Some("%"),
);
/// NHS Health Check invitation sent.
pub const OBS_HEALTH_CHECK_INVITED: ObsCode = oc(
    "health_check_invited",
    "trent-hc-invited",
    "NHS Health Check invitation (local code)",
    None,
);
/// NHS Health Check completed.
pub const OBS_HEALTH_CHECK_DONE: ObsCode = oc(
    "health_check_done",
    "trent-hc-done",
    "NHS Health Check completed (local code)",
    None,
);

/// All observation codes.
pub const OBSERVATIONS: &[ObsCode] = &[
    OBS_SMOKER,
    OBS_EX_SMOKER,
    OBS_NEVER_SMOKED,
    OBS_BMI,
    OBS_SYSTOLIC,
    OBS_DIASTOLIC,
    OBS_HBA1C,
    OBS_ALCOHOL,
    OBS_ACTIVITY,
    OBS_SELF_RATED_HEALTH,
    OBS_BIRTH_WEIGHT,
    OBS_GESTATION,
    OBS_BREASTFEEDING,
    OBS_NCMP_CENTILE,
    OBS_HEALTH_CHECK_INVITED,
    OBS_HEALTH_CHECK_DONE,
];

/// ICD-10 primary diagnoses (no dot) counted as alcohol-related (narrow measure: the
/// primary diagnosis is wholly or partly attributable to alcohol). The generator uses the
/// wholly attributable ones; the list is what the calibration check and the Observatory
/// count.
pub const ALCOHOL_RELATED_ICD10_PREFIXES: &[&str] = &[
    "F10", "K70", "T51", "K860", "G312", "G621", "I426", "K292", "E244", "R780", "X45", "Y15",
];

/// True when an ICD-10 code (with or without dot) is alcohol-related.
pub fn is_alcohol_related(icd10: &str) -> bool {
    let c: String = icd10.chars().filter(|c| *c != '.').collect();
    ALCOHOL_RELATED_ICD10_PREFIXES
        .iter()
        .any(|p| c.starts_with(p))
}

/// Specialties (treatment function codes) used by the generator.
pub const SPECIALTIES: &[(&str, &str)] = &[
    ("100", "General surgery"),
    ("101", "Urology"),
    ("110", "Trauma and orthopaedics"),
    ("120", "ENT"),
    ("130", "Ophthalmology"),
    ("300", "General medicine"),
    ("301", "Gastroenterology"),
    ("320", "Cardiology"),
    ("330", "Dermatology"),
    ("340", "Respiratory medicine"),
    ("400", "Neurology"),
    ("430", "Geriatric medicine"),
    ("410", "Rheumatology"),
    ("502", "Gynaecology"),
    ("501", "Obstetrics"),
    ("370", "Medical oncology"),
    ("361", "Nephrology"),
    ("307", "Diabetic medicine"),
    ("420", "Paediatrics"),
    ("710", "Adult mental illness"),
    ("700", "Learning disability"),
    ("711", "Child and adolescent psychiatry"),
    ("715", "Old age psychiatry"),
];

/// Medicines (BNF chemical substance codes) with typical net ingredient cost per 28 days.
pub const MEDICINES: &[(&str, &str, f64)] = &[
    ("0206020A0", "Amlodipine", 0.9),
    ("0205051R0", "Ramipril", 1.2),
    ("0601022B0", "Metformin hydrochloride", 1.6),
    ("0212000B0", "Atorvastatin", 1.1),
    ("0204000H0", "Bisoprolol fumarate", 0.9),
    ("0202020L0", "Furosemide", 0.8),
    ("0208020Z0", "Apixaban", 53.2),
    ("0301011R0", "Salbutamol", 1.5),
    ("0302000N0", "Beclometasone dipropionate", 8.5),
    ("0301020Q0", "Tiotropium", 33.5),
    ("0411000D0", "Donepezil hydrochloride", 1.3),
    ("0402010J0", "Olanzapine", 1.6),
    ("0403030Q0", "Sertraline hydrochloride", 1.4),
    ("1001010J0", "Ibuprofen", 1.3),
    ("0407010H0", "Paracetamol", 1.5),
    ("0408010G0", "Lamotrigine", 2.0),
    ("1001030U0", "Methotrexate", 4.0),
    ("0409010N0", "Co-careldopa", 12.0),
    ("0606020A0", "Alendronic acid", 1.0),
    ("0410010A0", "Acamprosate calcium", 25.0),
    ("0103050P0", "Omeprazole", 0.9),
    ("0209000A0", "Aspirin", 0.8),
    ("0501013B0", "Amoxicillin", 1.2),
];

/// Markdown for the code lists (appended to `docs/schema.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "## Code lists\n\n### Long-term conditions\n\n| key | condition | SNOMED CT | ICD-10 |\n| --- | --- | --- | --- |\n",
    );
    for c in CONDITIONS {
        s.push_str(&format!(
            "| `{}` | {} | `{}` | `{}` |\n",
            c.key, c.name, c.snomed, c.icd10
        ));
    }
    s.push_str(
        "\n### Observations\n\n| key | code | meaning | unit |\n| --- | --- | --- | --- |\n",
    );
    for o in OBSERVATIONS {
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            o.key,
            o.code,
            o.name,
            o.unit.unwrap_or("—")
        ));
    }
    s.push_str("\n### Medicines (BNF chemical substance)\n\n| code | name | cost per 28 days (£) |\n| --- | --- | --- |\n");
    for (c, n, p) in MEDICINES {
        s.push_str(&format!("| `{c}` | {n} | {p:.2} |\n"));
    }
    s.push_str("\n### Specialties (treatment function codes)\n\n| code | name |\n| --- | --- |\n");
    for (c, n) in SPECIALTIES {
        s.push_str(&format!("| `{c}` | {n} |\n"));
    }
    s.push_str(&format!(
        "\nAlcohol-related primary diagnoses (ICD-10 prefixes): {}.\n",
        ALCOHOL_RELATED_ICD10_PREFIXES
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s
}

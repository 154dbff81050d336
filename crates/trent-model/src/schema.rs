//! The tables of the lake and of the identity vault: names, columns, types, meaning.
//!
//! Column names are a public contract (other tools query them), so they are spelled once,
//! here. Dates are Arrow `Date32`; instants are `Timestamp(Microsecond, None)` (Parquet `TIMESTAMP_MICROS`, which every reader understands; Parquet has no seconds unit) in local
//! (UK civil) time as the national datasets record them; money is `Float64` pounds.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The logical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// 64-bit signed integer
    Int64,
    /// 32-bit signed integer
    Int32,
    /// 64-bit float
    Float64,
    /// UTF-8 string
    Utf8,
    /// calendar date
    Date,
    /// date and time to the second
    Timestamp,
    /// true / false
    Boolean,
}

impl ColType {
    /// The Arrow data type of this column type.
    pub fn arrow(self) -> DataType {
        match self {
            ColType::Int64 => DataType::Int64,
            ColType::Int32 => DataType::Int32,
            ColType::Float64 => DataType::Float64,
            ColType::Utf8 => DataType::Utf8,
            ColType::Date => DataType::Date32,
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColType::Boolean => DataType::Boolean,
        }
    }

    /// The name used in the documentation.
    pub fn doc_name(self) -> &'static str {
        match self {
            ColType::Int64 => "int64",
            ColType::Int32 => "int32",
            ColType::Float64 => "float64",
            ColType::Utf8 => "string",
            ColType::Date => "date",
            ColType::Timestamp => "timestamp(µs)",
            ColType::Boolean => "bool",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    /// column name (public contract)
    pub name: &'static str,
    /// logical type
    pub ty: ColType,
    /// may the column be null
    pub nullable: bool,
    /// what the column means, its values and units
    pub doc: &'static str,
}

/// One table of the lake (or of the vault).
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    /// table name (public contract)
    pub name: &'static str,
    /// what one row is
    pub doc: &'static str,
    /// the columns, in order
    pub columns: &'static [ColumnDef],
}

impl TableDef {
    /// The Arrow schema of this table.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The position of a column by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

const fn col(name: &'static str, ty: ColType, nullable: bool, doc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        nullable,
        doc,
    }
}

use ColType::*;

/// One row per person ever resident and registered in the area during the lake's span.
pub const PERSON: TableDef = TableDef {
    name: "person",
    doc: "One row per person resident in the area and registered with one of its practices at any time in the lake's span. Pseudonymised: no NHS number, name, exact date of birth or postcode.",
    columns: &[
        col(
            "person_id",
            Int64,
            false,
            "Surrogate key; the only person identifier in the lake. Re-identification is possible only in the identity vault.",
        ),
        col(
            "sex",
            Utf8,
            false,
            "`F` or `M` (sex registered with the GP practice).",
        ),
        col(
            "birth_month",
            Date,
            false,
            "Month of birth, always the 1st of the month.",
        ),
        col(
            "death_date",
            Date,
            true,
            "Date of death; null if alive at the end of the lake's span.",
        ),
        col(
            "death_cause",
            Utf8,
            true,
            "Underlying cause of death, ICD-10 without the dot (e.g. `I219`); null if alive.",
        ),
        col(
            "lsoa",
            Utf8,
            false,
            "Lower-layer Super Output Area of residence (last known).",
        ),
        col(
            "imd_decile",
            Int32,
            false,
            "Index of Multiple Deprivation decile of the LSOA, 1 = most deprived tenth of England, 10 = least.",
        ),
        col(
            "la_code",
            Utf8,
            false,
            "Local authority (upper tier) of residence, ONS code.",
        ),
        col(
            "district",
            Utf8,
            false,
            "District (lower-tier or unitary authority) of residence, ONS code.",
        ),
        col(
            "practice_code",
            Utf8,
            false,
            "GP practice of registration (last known), organisation code.",
        ),
        col(
            "ethnicity",
            Utf8,
            false,
            "NHS ethnic category code (A White British … S Any other, Z not stated).",
        ),
        col(
            "registration_start",
            Date,
            false,
            "Date the person joined the area's registered population (birth registration or move in); the lake's start date for people already registered then.",
        ),
        col(
            "registration_end",
            Date,
            true,
            "Date the person left the area's registered population (moved away or died); null if still registered.",
        ),
    ],
};

/// The organisation hierarchy and providers.
pub const ORGANISATION: TableDef = TableDef {
    name: "organisation",
    doc: "Every organisation and place of the area: practice → hub → locality → ccg → delivery_unit → stp; providers and their sites; local authorities and districts; LSOAs are in the area file, not here.",
    columns: &[
        col(
            "org_code",
            Utf8,
            false,
            "Organisation code (ODS code where public, otherwise a documented synthetic code).",
        ),
        col("name", Utf8, false, "Name."),
        col(
            "org_type",
            Utf8,
            false,
            "One of `stp`, `delivery_unit`, `ccg`, `locality`, `hub`, `practice`, `provider`, `site`, `local_authority`, `district`.",
        ),
        col(
            "parent_code",
            Utf8,
            true,
            "The parent in the hierarchy (practice → hub → locality → ccg → delivery_unit → stp; site → provider; district → local_authority); null at the top.",
        ),
        col(
            "population",
            Int64,
            true,
            "Configured population (registered list for practices and above; residents for local authorities and districts) at full scale.",
        ),
    ],
};

/// Contacts, attendances, admissions and calls, one row each.
pub const ACTIVITY: TableDef = TableDef {
    name: "activity",
    doc: "One row per contact with a care setting: GP consultation, A&E attendance, hospital spell, outpatient attendance, community or mental health contact or spell, ambulance incident, NHS 111 call, social care assessment.",
    columns: &[
        col("activity_id", Int64, false, "Surrogate key of the contact."),
        col("person_id", Int64, false, "The person (see `person`)."),
        col(
            "setting",
            Utf8,
            false,
            "`gp`, `ae`, `apc` (admitted patient care), `op` (outpatients), `community`, `mental_health`, `ambulance`, `nhs111`, `social_care_assessment`.",
        ),
        col(
            "start_ts",
            Timestamp,
            false,
            "Start: consultation time; A&E arrival; admission; call received.",
        ),
        col(
            "end_ts",
            Timestamp,
            true,
            "End: A&E departure; discharge; call closed. Null for a spell still open at the end of the lake's span.",
        ),
        col(
            "provider_code",
            Utf8,
            false,
            "Provider organisation code (practice code for `gp`).",
        ),
        col(
            "site_code",
            Utf8,
            true,
            "Site of the provider where relevant (e.g. QMC, King's Mill).",
        ),
        col(
            "admission_method",
            Utf8,
            true,
            "`apc` and mental health inpatient spells: `elective`, `emergency`, `maternity`, `transfer`.",
        ),
        col(
            "patient_class",
            Utf8,
            true,
            "`apc`: `ordinary` or `day_case`; `mental_health`/`community`: `inpatient` or `contact`; `op`: `first` or `follow_up`; `ae`: `type1` (major A&E) or `type3` (urgent care); `ambulance`: `see_and_convey`, `see_and_treat`, `hear_and_treat`.",
        ),
        col(
            "primary_diagnosis",
            Utf8,
            true,
            "ICD-10 without the dot (SUS convention), for `apc`, `ae`, `op` and mental health spells; secondary diagnoses are in `condition` with this `activity_id`.",
        ),
        col(
            "specialty",
            Utf8,
            true,
            "Treatment function code (e.g. `300` general medicine, `110` trauma and orthopaedics, `710` adult mental illness).",
        ),
        col(
            "cost_gbp",
            Float64,
            false,
            "Cost in pounds from the national unit costs in the area file.",
        ),
        col(
            "discharge_destination",
            Utf8,
            true,
            "`apc`/`mental_health` inpatient: `usual_residence`, `care_home`, `other_hospital`, `died`; `ae`: `discharged`, `admitted`, `referred`, `died`.",
        ),
        col(
            "los_days",
            Int32,
            true,
            "Length of stay in days for spells (end date − start date); null when open or not a spell.",
        ),
        col(
            "medically_fit_date",
            Date,
            true,
            "`apc`: the date the patient became medically fit for discharge; days from then to discharge are delayed (excess) days.",
        ),
        col(
            "arrival_mode",
            Utf8,
            true,
            "`ae`: `ambulance` or `walk_in`.",
        ),
        col(
            "ambulance_category",
            Utf8,
            true,
            "`ambulance`: response category `red1`, `red2`, `green`.",
        ),
        col(
            "response_minutes",
            Float64,
            true,
            "`ambulance`: minutes from call to first vehicle on scene; null for hear-and-treat.",
        ),
        col(
            "referral_id",
            Int64,
            true,
            "`op` first attendances: the referral that led to them (see `referral`).",
        ),
    ],
};

/// Coded conditions.
pub const CONDITION: TableDef = TableDef {
    name: "condition",
    doc: "One row per diagnosis recorded: SNOMED CT in the GP record, ICD-10 (no dot) as secondary diagnoses of hospital spells.",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col("code_system", Utf8, false, "`SNOMED` or `ICD10`."),
        col(
            "code",
            Utf8,
            false,
            "The code (SNOMED CT concept id; ICD-10 without the dot).",
        ),
        col("recorded_date", Date, false, "Date recorded."),
        col(
            "activity_id",
            Int64,
            true,
            "The hospital spell this diagnosis was coded in; null for GP-recorded conditions.",
        ),
    ],
};

/// Measurements and findings.
pub const OBSERVATION: TableDef = TableDef {
    name: "observation",
    doc: "One row per measurement or recorded finding (smoking status, BMI, blood pressure, HbA1c, alcohol, activity, self-rated health, birth weight …). Codes are listed in `trent_model::codes`.",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col(
            "code",
            Utf8,
            false,
            "Observation code (SNOMED CT where one is known, else a `trent-` local code; see docs).",
        ),
        col(
            "value",
            Float64,
            true,
            "Numeric value; null for findings recorded by code alone (e.g. smoking status).",
        ),
        col("unit", Utf8, true, "UCUM-style unit of `value`."),
        col("obs_date", Date, false, "Date of the observation."),
    ],
};

/// Prescription issues.
pub const MEDICATION: TableDef = TableDef {
    name: "medication",
    doc: "One row per prescription issue in primary care.",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col(
            "code",
            Utf8,
            false,
            "BNF chemical substance code (9 characters).",
        ),
        col("issue_date", Date, false, "Date issued."),
        col(
            "cost_gbp",
            Float64,
            false,
            "Net ingredient cost of the issue, pounds.",
        ),
        col("days_supply", Int32, false, "Days of treatment supplied."),
    ],
};

/// Social care packages.
pub const SOCIAL_CARE: TableDef = TableDef {
    name: "social_care",
    doc: "One row per adult social care service episode (package).",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col(
            "service",
            Utf8,
            false,
            "`residential`, `nursing`, `home_care`, `reablement`, `direct_payment`.",
        ),
        col("start_date", Date, false, "Start of the service."),
        col(
            "end_date",
            Date,
            true,
            "End of the service; null if ongoing at the end of the lake's span.",
        ),
        col(
            "weekly_cost_gbp",
            Float64,
            false,
            "Gross weekly cost, pounds.",
        ),
        col(
            "la_code",
            Utf8,
            false,
            "The local authority funding the service.",
        ),
    ],
};

/// Referrals from primary care.
pub const REFERRAL: TableDef = TableDef {
    name: "referral",
    doc: "One row per referral from a GP practice to a specialty.",
    columns: &[
        col(
            "referral_id",
            Int64,
            false,
            "Surrogate key of the referral.",
        ),
        col("person_id", Int64, false, "The person."),
        col("practice_code", Utf8, false, "Referring practice."),
        col(
            "specialty",
            Utf8,
            false,
            "Treatment function code referred to.",
        ),
        col("referral_date", Date, false, "Date of referral."),
        col(
            "priority",
            Utf8,
            false,
            "`routine`, `urgent`, `two_week_wait`.",
        ),
    ],
};

/// Every lake table, in the order they are documented.
pub const TABLES: &[TableDef] = &[
    PERSON,
    ORGANISATION,
    ACTIVITY,
    CONDITION,
    OBSERVATION,
    MEDICATION,
    SOCIAL_CARE,
    REFERRAL,
];

/// The identity vault: identifiable data, keyed by `person_id`, never in the lake.
pub const VAULT: TableDef = TableDef {
    name: "identity",
    doc: "The identity vault: one row per person with identifiable details. Written beside the lake, never into it; readable only by the vault and the shared care record.",
    columns: &[
        col("person_id", Int64, false, "The lake's surrogate key."),
        col(
            "nhs_number",
            Utf8,
            false,
            "Ten-digit NHS number (synthetic people: numbers beginning with 9, never issued).",
        ),
        col("given_name", Utf8, false, "Given name."),
        col("family_name", Utf8, false, "Family name."),
        col("birth_date", Date, false, "Exact date of birth."),
        col("sex", Utf8, false, "`F` or `M`."),
        col("postcode", Utf8, false, "Postcode of residence."),
        col("address_line", Utf8, false, "First line of the address."),
        col("practice_code", Utf8, false, "GP practice of registration."),
    ],
};

/// Records an ingest batch rejected (issue 3): one row per rejected input entry. Written
/// by `trent ingest`, so it exists only in lakes that have had a batch; not part of
/// [`TABLES`] (a synthetic lake has none). Identifiers in the message are masked; the
/// raw record stays in the vault (`vault/quarantine_raw`).
pub const QUARANTINE: TableDef = TableDef {
    name: "quarantine",
    doc: "One row per input entry an ingest batch rejected: where it was, why, and a message naming the field with identifying values masked. Nothing rejected is ever dropped: the raw record is kept in the vault and `trent quarantine --raw` shows it.",
    columns: &[
        col(
            "batch_id",
            Int64,
            false,
            "The ingest batch (see the catalog's `batches`).",
        ),
        col(
            "source",
            Utf8,
            false,
            "The feed name the batch was given (e.g. `apc`, `gp`).",
        ),
        col("file", Utf8, false, "The file's name (without its folder)."),
        col(
            "line",
            Int64,
            false,
            "1-based line of the entry (CSV and NDJSON; 1 for a single-JSON bundle); 0 when the whole file was rejected.",
        ),
        col("entry", Int64, true, "0-based entry of a bundle, if any."),
        col(
            "pointer",
            Utf8,
            true,
            "JSON pointer (RFC 6901) of the offending element, if known.",
        ),
        col(
            "resource_type",
            Utf8,
            true,
            "FHIR resource type or record kind, when known.",
        ),
        col(
            "reason_code",
            Utf8,
            false,
            "Stable reason code (`invalid_nhs_number`, `date_in_future` … see docs/feeds.md).",
        ),
        col(
            "message",
            Utf8,
            false,
            "What was wrong, naming the field; quoted values and long digit runs are masked (`•`).",
        ),
    ],
};

/// Procedures from ingested feeds (FHIR Procedure, OMOP procedure_occurrence).
pub const PROCEDURE: TableDef = TableDef {
    name: "procedure",
    doc: "One row per procedure an ingested feed recorded (the synthetic lake has none).",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col("code_system", Utf8, false, "`SNOMED` or `OPCS4`."),
        col(
            "code",
            Utf8,
            false,
            "SNOMED CT concept id, or OPCS-4 without the dot.",
        ),
        col("performed_date", Date, false, "Date performed."),
        col(
            "activity_id",
            Int64,
            true,
            "The contact it was part of, when the feed said.",
        ),
    ],
};

/// Allergies and intolerances from ingested feeds.
pub const ALLERGY: TableDef = TableDef {
    name: "allergy",
    doc: "One row per allergy or intolerance an ingested feed recorded.",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col(
            "code_system",
            Utf8,
            false,
            "`SNOMED` (or `DMD` for a drug allergen).",
        ),
        col("code", Utf8, false, "The substance or allergy concept."),
        col("recorded_date", Date, false, "Date recorded (or onset)."),
        col(
            "clinical_status",
            Utf8,
            true,
            "`active`, `inactive`, `resolved`.",
        ),
        col(
            "criticality",
            Utf8,
            true,
            "`low`, `high`, `unable-to-assess`.",
        ),
    ],
};

/// Medication records that are not BNF-coded primary care issues with a cost.
pub const MEDICATION_RECORD: TableDef = TableDef {
    name: "medication_record",
    doc: "One row per ingested medication record that `medication` cannot hold: dm+d, SNOMED or RxNorm coded, medication statements, or issues without a cost or days' supply. BNF-coded issues with both land in `medication`.",
    columns: &[
        col("person_id", Int64, false, "The person."),
        col(
            "code_system",
            Utf8,
            false,
            "`BNF`, `DMD`, `SNOMED` or `RXNORM`.",
        ),
        col("code", Utf8, false, "The code."),
        col(
            "kind",
            Utf8,
            false,
            "`request` (an issue) or `statement` (a record that the person takes it).",
        ),
        col("issue_date", Date, false, "Issue (or start) date."),
        col(
            "cost_gbp",
            Float64,
            true,
            "Net ingredient cost, pounds, if given.",
        ),
        col(
            "days_supply",
            Int32,
            true,
            "Days of treatment supplied, if given.",
        ),
    ],
};

/// Tables that only ingest writes (not generated by `trent synth`).
pub const INGEST_TABLES: &[TableDef] = &[QUARANTINE, PROCEDURE, ALLERGY, MEDICATION_RECORD];

/// Look a lake table up by name.
pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES
        .iter()
        .chain(INGEST_TABLES.iter())
        .find(|t| t.name == name)
}

/// The Markdown reference of the data model (`docs/schema.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "# The trent data model\n\n<!-- generated by `trent schema`; do not edit by hand -->\n\n\
         The lake holds pseudonymised, person-level tables as Parquet, one folder per table, \
         read through Apache DataFusion. Column names are a public contract. The identity \
         vault is written beside the lake and never into it.\n\n",
    );
    for t in TABLES
        .iter()
        .chain(INGEST_TABLES.iter())
        .chain(std::iter::once(&VAULT))
    {
        let where_ = if t.name == VAULT.name {
            " (identity vault)"
        } else {
            ""
        };
        s.push_str(&format!("## `{}`{}\n\n{}\n\n", t.name, where_, t.doc));
        s.push_str("| column | type | null | meaning |\n| --- | --- | --- | --- |\n");
        for c in t.columns {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.ty.doc_name(),
                if c.nullable { "yes" } else { "no" },
                c.doc
            ));
        }
        s.push('\n');
    }
    s.push_str(&crate::codes::markdown());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_columns_exist_with_issue_names() {
        let need: &[(&str, &[&str])] = &[
            (
                "person",
                &[
                    "person_id",
                    "sex",
                    "birth_month",
                    "death_date",
                    "lsoa",
                    "imd_decile",
                    "la_code",
                    "district",
                    "practice_code",
                    "ethnicity",
                ],
            ),
            (
                "organisation",
                &["org_code", "name", "org_type", "parent_code"],
            ),
            (
                "activity",
                &[
                    "activity_id",
                    "person_id",
                    "setting",
                    "start_ts",
                    "end_ts",
                    "provider_code",
                    "admission_method",
                    "primary_diagnosis",
                    "specialty",
                    "cost_gbp",
                    "discharge_destination",
                ],
            ),
            (
                "condition",
                &["person_id", "code_system", "code", "recorded_date"],
            ),
            (
                "observation",
                &["person_id", "code", "value", "unit", "obs_date"],
            ),
            (
                "medication",
                &["person_id", "code", "issue_date", "cost_gbp"],
            ),
            (
                "social_care",
                &[
                    "person_id",
                    "service",
                    "start_date",
                    "end_date",
                    "weekly_cost_gbp",
                ],
            ),
            (
                "referral",
                &[
                    "person_id",
                    "practice_code",
                    "specialty",
                    "referral_date",
                    "priority",
                ],
            ),
        ];
        for (t, cols) in need {
            let def = table(t).unwrap_or_else(|| panic!("table {t}"));
            for c in *cols {
                assert!(def.index_of(c).is_some(), "{t}.{c}");
            }
        }
        assert_eq!(
            PERSON
                .schema()
                .field_with_name("birth_month")
                .unwrap()
                .data_type(),
            &DataType::Date32
        );
    }

    #[test]
    fn no_identifier_in_lake_tables() {
        for t in TABLES {
            for c in t.columns {
                for bad in ["nhs_number", "name", "postcode", "birth_date", "address"] {
                    assert!(
                        !(c.name.contains(bad) && c.name != "name"
                            || (c.name == "name" && t.name != "organisation")),
                        "{}.{} looks identifiable",
                        t.name,
                        c.name
                    );
                    let _ = bad;
                }
            }
        }
    }
}

//! `trent synth --format fhir`: the same population as FHIR R4 transaction bundles, for
//! ingest to consume and for anyone who wants trent's people in another FHIR system.
//!
//! The export reads back each partition's Parquet part files from the staged generation
//! (one partition at a time, so memory is bounded by partition size), gathers every row of
//! each person, and writes one transaction Bundle per person per line to
//! `fhir/bundles-NNNNN.ndjson`. The bundles hold NHS numbers and names, so the `fhir`
//! folder has the vault's permissions and is published atomically with the lake.
//! Resource shapes live in `trent-fhir`.

use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use trent_fhir::records::*;
use trent_lake::{LakeError, LakeWriter, VAULT_TABLE, read_part};

/// What one partition's export wrote.
#[derive(Debug, Clone, Default)]
pub struct FhirStats {
    /// bundles (people)
    pub bundles: u64,
    /// resources in all bundles
    pub resources: u64,
    /// bytes written
    pub bytes: u64,
}

/// Column access by name on a part file's batch.
struct Cols<'a>(&'a RecordBatch);

impl<'a> Cols<'a> {
    fn col(&self, name: &str) -> &'a dyn Array {
        self.0
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name} is in the model"))
            .as_ref()
    }
    fn s(&self, name: &str, i: usize) -> &'a str {
        self.col(name).as_string::<i32>().value(i)
    }
    fn os(&self, name: &str, i: usize) -> Option<&'a str> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_string::<i32>().value(i))
    }
    fn i64(&self, name: &str, i: usize) -> i64 {
        self.col(name).as_primitive::<Int64Type>().value(i)
    }
    fn oi64(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Int64Type>().value(i))
    }
    fn oi32(&self, name: &str, i: usize) -> Option<i32> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Int32Type>().value(i))
    }
    fn d(&self, name: &str, i: usize) -> i32 {
        self.col(name).as_primitive::<Date32Type>().value(i)
    }
    fn od(&self, name: &str, i: usize) -> Option<i32> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Date32Type>().value(i))
    }
    /// Seconds since the epoch (the lake stores microseconds).
    fn ts(&self, name: &str, i: usize) -> i64 {
        self.col(name)
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .div_euclid(1_000_000)
    }
    fn ots(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| {
            a.as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .div_euclid(1_000_000)
        })
    }
    fn f(&self, name: &str, i: usize) -> f64 {
        self.col(name).as_primitive::<Float64Type>().value(i)
    }
    fn of(&self, name: &str, i: usize) -> Option<f64> {
        let a = self.col(name);
        (!a.is_null(i)).then(|| a.as_primitive::<Float64Type>().value(i))
    }
    /// Row numbers grouped by person: (person_id, row) sorted by person, then file order.
    fn by_person(&self) -> Vec<(i64, u32)> {
        let ids = self.col("person_id").as_primitive::<Int64Type>();
        let mut v: Vec<(i64, u32)> = (0..ids.len()).map(|i| (ids.value(i), i as u32)).collect();
        v.sort_unstable();
        v
    }
}

/// Walks a table's rows person by person, in ascending person_id.
struct Cursor {
    rows: Vec<(i64, u32)>,
    at: usize,
}

impl Cursor {
    fn new(c: &Cols) -> Cursor {
        Cursor {
            rows: c.by_person(),
            at: 0,
        }
    }
    /// The rows of `person` (skipping rows of people before it, which cannot happen in a
    /// consistent lake but must not stall the walk).
    fn take(&mut self, person: i64) -> impl Iterator<Item = usize> + '_ {
        while self.at < self.rows.len() && self.rows[self.at].0 < person {
            self.at += 1;
        }
        let start = self.at;
        while self.at < self.rows.len() && self.rows[self.at].0 == person {
            self.at += 1;
        }
        self.rows[start..self.at].iter().map(|r| r.1 as usize)
    }
}

/// The rows of a set of people from every table `trent-fhir` records are made of: the
/// vault's `identity` and the lake's `person`, `activity`, `condition`, `observation`,
/// `medication`, `social_care` and `referral` (any row order; columns by model name).
pub struct PersonTables {
    /// Vault `identity` rows (one per person; people without one are left out).
    pub identity: RecordBatch,
    /// Lake `person` rows.
    pub person: RecordBatch,
    /// Lake `activity` rows.
    pub activity: RecordBatch,
    /// Lake `condition` rows.
    pub condition: RecordBatch,
    /// Lake `observation` rows.
    pub observation: RecordBatch,
    /// Lake `medication` rows.
    pub medication: RecordBatch,
    /// Lake `social_care` rows.
    pub social_care: RecordBatch,
    /// Lake `referral` rows.
    pub referral: RecordBatch,
}

/// Every person of one partition of the staged generation as `trent-fhir` records
/// (borrowing the partition's part files), handed to `f` at once.
pub fn with_people<R>(
    writer: &LakeWriter,
    part: usize,
    f: impl FnOnce(Vec<PersonRecord<'_>>) -> Result<R, LakeError>,
) -> Result<R, LakeError> {
    let read = |t: &str| read_part(&writer.staged_part_path(t, part));
    let tables = PersonTables {
        identity: read(VAULT_TABLE)?,
        person: read("person")?,
        activity: read("activity")?,
        condition: read("condition")?,
        observation: read("observation")?,
        medication: read("medication")?,
        social_care: read("social_care")?,
        referral: read("referral")?,
    };
    f(people(&tables))
}

/// Every person of `t` with a vault identity, in ascending person_id, as `trent-fhir`
/// records borrowing `t` (the shared care record's loader and the FHIR export use this).
pub fn people(t: &PersonTables) -> Vec<PersonRecord<'_>> {
    let (v, pe, ac, co, ob, me, so, re) = (
        Cols(&t.identity),
        Cols(&t.person),
        Cols(&t.activity),
        Cols(&t.condition),
        Cols(&t.observation),
        Cols(&t.medication),
        Cols(&t.social_care),
        Cols(&t.referral),
    );
    let (mut cp, mut ca, mut cc, mut cob, mut cm, mut cs, mut cr) = (
        Cursor::new(&pe),
        Cursor::new(&ac),
        Cursor::new(&co),
        Cursor::new(&ob),
        Cursor::new(&me),
        Cursor::new(&so),
        Cursor::new(&re),
    );
    let mut people = Vec::new();
    for (pid, vi) in v.by_person() {
        let vi = vi as usize;
        let pi = cp.take(pid).next();
        let mut rec = PersonRecord {
            patient: Some(PatientRow {
                person_id: pid,
                nhs_number: v.s("nhs_number", vi),
                given_name: v.s("given_name", vi),
                family_name: v.s("family_name", vi),
                birth_date: v.d("birth_date", vi),
                sex: v.s("sex", vi),
                postcode: v.s("postcode", vi),
                address_line: v.s("address_line", vi),
                practice_code: v.s("practice_code", vi),
                ethnicity: pi.map(|i| pe.s("ethnicity", i)),
                death_date: pi.and_then(|i| pe.od("death_date", i)),
            }),
            ..Default::default()
        };
        rec.activity = ca
            .take(pid)
            .map(|i| ActivityRow {
                activity_id: ac.i64("activity_id", i),
                setting: ac.s("setting", i),
                start_ts: ac.ts("start_ts", i),
                end_ts: ac.ots("end_ts", i),
                provider_code: ac.s("provider_code", i),
                site_code: ac.os("site_code", i),
                admission_method: ac.os("admission_method", i),
                patient_class: ac.os("patient_class", i),
                primary_diagnosis: ac.os("primary_diagnosis", i),
                specialty: ac.os("specialty", i),
                cost_gbp: ac.f("cost_gbp", i),
                discharge_destination: ac.os("discharge_destination", i),
                los_days: ac.oi32("los_days", i),
                medically_fit_date: ac.od("medically_fit_date", i),
                arrival_mode: ac.os("arrival_mode", i),
                ambulance_category: ac.os("ambulance_category", i),
                response_minutes: ac.of("response_minutes", i),
                referral_id: ac.oi64("referral_id", i),
            })
            .collect();
        rec.conditions = cc
            .take(pid)
            .map(|i| ConditionRow {
                code_system: co.s("code_system", i),
                code: co.s("code", i),
                recorded_date: co.d("recorded_date", i),
                activity_id: co.oi64("activity_id", i),
            })
            .collect();
        rec.observations = cob
            .take(pid)
            .map(|i| ObservationRow {
                code: ob.s("code", i),
                value: ob.of("value", i),
                unit: ob.os("unit", i),
                obs_date: ob.d("obs_date", i),
            })
            .collect();
        rec.medications = cm
            .take(pid)
            .map(|i| MedicationRow {
                code: me.s("code", i),
                issue_date: me.d("issue_date", i),
                cost_gbp: me.f("cost_gbp", i),
                days_supply: me.oi32("days_supply", i).unwrap_or(28),
            })
            .collect();
        rec.social_care = cs
            .take(pid)
            .map(|i| SocialCareRow {
                service: so.s("service", i),
                start_date: so.d("start_date", i),
                end_date: so.od("end_date", i),
                weekly_cost_gbp: so.f("weekly_cost_gbp", i),
                la_code: so.s("la_code", i),
            })
            .collect();
        rec.referrals = cr
            .take(pid)
            .map(|i| ReferralRow {
                referral_id: re.i64("referral_id", i),
                practice_code: re.s("practice_code", i),
                specialty: re.s("specialty", i),
                referral_date: re.d("referral_date", i),
                priority: re.s("priority", i),
            })
            .collect();
        people.push(rec);
    }
    people
}

/// Export one partition of the staged generation to `dir/bundles-NNNNN.ndjson`.
pub fn export_partition(
    writer: &LakeWriter,
    dir: &Path,
    part: usize,
) -> Result<FhirStats, LakeError> {
    with_people(writer, part, |people| {
        let path = dir.join(format!("bundles-{part:05}.ndjson"));
        let file = std::fs::File::create(&path).map_err(trent_lake::io(&path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut stats = FhirStats::default();
        let mut line = Vec::with_capacity(1 << 16);
        for rec in &people {
            let Some(bundle) = trent_fhir::bundle::transaction(rec) else {
                continue;
            };
            stats.resources += bundle["entry"].as_array().map_or(0, |e| e.len() as u64);
            line.clear();
            serde_json::to_writer(&mut line, &bundle).expect("JSON values serialise");
            line.push(b'\n');
            out.write_all(&line).map_err(trent_lake::io(&path))?;
            stats.bytes += line.len() as u64;
            stats.bundles += 1;
        }
        out.flush().map_err(trent_lake::io(&path))?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(trent_lake::io(&path))?;
        Ok(stats)
    })
}

//! Identifiable worklists: a population-health worklist (pseudonymous people with a score
//! and reasons) comes back with names and NHS numbers — here, and only here, and only to
//! a clinician of the practice the worklist is for.
//!
//! Why in the record service: the lake and the PHM worklists are pseudonymised; turning a
//! worklist row back into a named person is an access to identifiable data, so it goes
//! through the same decision and audit as a read of the Patient (one decision, one audit
//! entry per person). The caller (the CLI, or the lead's PHM wiring) maps its pseudonyms
//! to the record's Patient ids; this module never sees a pseudonym.

use serde_json::{Value, json};
use trent_access::{Action, OdsCode, PersonId, Purpose, Relationships, ResourceKind, Role};

use crate::service::{Ctx, Decider, FhirError};
use crate::store::Store;

/// Most rows in one worklist request.
pub const MAX_ROWS: usize = 5_000;

/// One worklist row going in: the record's Patient id, the score and the reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct WorklistRow {
    /// The Patient id in the record.
    pub person: String,
    /// The PHM score.
    pub score: f64,
    /// Why the person is on the list.
    pub reasons: Vec<String>,
}

/// Parses the JSON body `{"practice": "C84001", "rows": [{"person", "score", "reasons"}]}`.
pub fn parse_request(v: &Value) -> Result<(String, Vec<WorklistRow>), FhirError> {
    let practice = v
        .get("practice")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            FhirError::new(400, "required", "practice is required (an ODS code)").at("practice")
        })?
        .to_string();
    let Some(rows) = v.get("rows").and_then(Value::as_array) else {
        return Err(FhirError::new(400, "required", "rows is required (an array)").at("rows"));
    };
    if rows.len() > MAX_ROWS {
        return Err(FhirError::new(
            400,
            "too-costly",
            format!("{} rows: at most {MAX_ROWS} per request", rows.len()),
        )
        .at("rows"));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let at = |f: &str| format!("rows[{i}].{f}");
        let person = r.get("person").and_then(Value::as_str).ok_or_else(|| {
            FhirError::new(400, "required", "person is required (a Patient id)").at(at("person"))
        })?;
        let score = match r.get("score") {
            None | Some(Value::Null) => f64::NAN,
            Some(s) => s.as_f64().ok_or_else(|| {
                FhirError::new(400, "value", "score must be a number").at(at("score"))
            })?,
        };
        let reasons = match r.get("reasons") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    FhirError::new(400, "value", "reasons must be strings").at(at("reasons"))
                })?,
            Some(_) => {
                return Err(
                    FhirError::new(400, "value", "reasons must be an array").at(at("reasons"))
                );
            }
        };
        out.push(WorklistRow {
            person: person.to_string(),
            score,
            reasons,
        });
    }
    Ok((practice, out))
}

fn name_of(p: &Value) -> Option<String> {
    let n = p.get("name")?.as_array()?.first()?;
    let mut parts: Vec<String> = n
        .get("given")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(f) = n.get("family").and_then(Value::as_str) {
        parts.push(f.to_string());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

impl Store {
    /// Opens a worklist for `practice`: every row comes back either identified (name, NHS
    /// number, birth date, gender) or `withheld` with a reason code. Only a clinician of
    /// `practice` for direct care may ask (403 otherwise); each person is one `read`
    /// decision about their Patient, audited before the answer; a person is identified only
    /// when the decision allows and they are registered at `practice`.
    pub async fn worklist(
        &self,
        ctx: &Ctx,
        practice: &str,
        rows: &[WorklistRow],
    ) -> Result<Value, FhirError> {
        let practice = OdsCode::new(practice).map_err(|e| {
            FhirError::new(400, "value", format!("practice {practice:?}: {e}")).at("practice")
        })?;
        let p = &ctx.principal;
        if p.role != Role::Clinician
            || p.organisation
                .as_ref()
                .map(|o| o.as_str().to_ascii_uppercase())
                != Some(practice.as_str().to_ascii_uppercase())
        {
            return Err(FhirError::new(
                403,
                "forbidden",
                format!(
                    "an identifiable worklist for practice {practice} opens only for a clinician of that practice"
                ),
            ));
        }
        if ctx.purpose != Purpose::DirectCare {
            return Err(FhirError::new(
                400,
                "invalid",
                "worklists are opened for direct care (X-Purpose-Of-Use: direct-care); break-glass is for one person",
            ));
        }
        let mut d = Decider::new(ctx, self);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = json!({"person": r.person, "reasons": r.reasons});
            if r.score.is_finite() {
                row["score"] = json!(r.score);
            }
            let patient = match PersonId::new(&r.person) {
                Ok(_) => self.get("Patient", &r.person).await?.filter(|p| !p.deleted),
                Err(_) => None,
            };
            let Some(patient) = patient else {
                row["withheld"] = json!("unknown-person");
                out.push(row);
                continue;
            };
            let dec = d
                .decide(
                    Action::Read,
                    ResourceKind::Patient,
                    Some(&r.person),
                    Some(&r.person),
                )
                .await?;
            if !dec.allow {
                row["withheld"] = json!(dec.reason.code());
                out.push(row);
                continue;
            }
            let registered = d
                .snapshots
                .get(&r.person)
                .and_then(|s| {
                    s.registered_practice(&PersonId::new(&r.person).ok()?)
                        .ok()
                        .flatten()
                })
                .is_some_and(|o| o.as_str().eq_ignore_ascii_case(practice.as_str()));
            if !registered {
                row["withheld"] = json!("not-registered-at-practice");
                out.push(row);
                continue;
            }
            let j = &patient.json;
            row["nhs_number"] = json!(crate::index::nhs_number_of(j));
            row["name"] = json!(name_of(j));
            row["birth_date"] = j.get("birthDate").cloned().unwrap_or(Value::Null);
            row["gender"] = j.get("gender").cloned().unwrap_or(Value::Null);
            out.push(row);
        }
        // Nobody receives identifiable rows before their access is recorded.
        d.flush().await?;
        Ok(json!({"practice": practice.as_str(), "rows": out}))
    }
}

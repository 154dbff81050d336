//! An [`ActivitySelection`] as an SQL condition over the `activity` table.
//!
//! Why SQL text: the selection is data from a plan file, the query engine is DataFusion,
//! and a condition string keeps every query one readable statement that DataFusion
//! plans (and could distribute) as a whole. Safety: codes are validated as plain
//! (letters, digits, `-`, `_`) by `trent-finance` and quoted here as well. The population
//! (`place`) becomes a semi-join on `person.practice_code`, the practices found by walking
//! the organisation hierarchy ([`Places::practices_in`]).

use trent_finance::activity::ActivitySelection;

use crate::{CostingError, Places, in_list, lit};

/// The SQL condition selecting `sel` from `activity` aliased as `alias` (`TRUE` for an
/// empty selection). Errors name an unknown place.
pub fn activity_condition(
    sel: &ActivitySelection,
    places: &Places,
    alias: &str,
) -> Result<String, CostingError> {
    let col = |c: &str| format!("{alias}.{c}");
    let mut parts = Vec::new();
    for (key, values) in [
        ("setting", &sel.setting),
        ("admission_method", &sel.admission_method),
        ("patient_class", &sel.patient_class),
        ("specialty", &sel.specialty),
        ("provider_code", &sel.provider),
        ("site_code", &sel.site),
    ] {
        if !values.is_empty() {
            parts.push(in_list(&col(key), values));
        }
    }
    if !sel.diagnosis.is_empty() {
        let ors: Vec<String> = sel
            .diagnosis
            .iter()
            .map(|d| {
                format!(
                    "{} LIKE {}",
                    col("primary_diagnosis"),
                    lit(&format!("{d}%"))
                )
            })
            .collect();
        parts.push(format!("({})", ors.join(" OR ")));
    }
    if let Some(c) = population_condition(&sel.place, places, &col("person_id"))? {
        parts.push(c);
    }
    Ok(if parts.is_empty() {
        "TRUE".into()
    } else {
        parts.join(" AND ")
    })
}

/// `person_col IN (people registered at the places' practices)`, or None for no places.
pub fn population_condition(
    place: &[String],
    places: &Places,
    person_col: &str,
) -> Result<Option<String>, CostingError> {
    if place.is_empty() {
        return Ok(None);
    }
    let practices = places.practices_in(place)?;
    if practices.is_empty() {
        return Ok(Some("FALSE".into()));
    }
    Ok(Some(format!(
        "{person_col} IN (SELECT person_id FROM person WHERE {})",
        in_list("practice_code", &practices)
    )))
}

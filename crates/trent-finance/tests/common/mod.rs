//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use trent_finance::Plan;

/// The shipped Nottinghamshire plan.
pub fn plan_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/nottinghamshire-2016.toml")
}

/// Its text.
pub fn plan_text() -> String {
    std::fs::read_to_string(plan_path()).expect("the shipped plan is readable")
}

/// The shipped plan, validated.
pub fn plan() -> Plan {
    Plan::load(&plan_path()).expect("the shipped plan is valid")
}

/// Assert |a - b| <= tol with a message.
#[track_caller]
pub fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} ± {tol}"
    );
}

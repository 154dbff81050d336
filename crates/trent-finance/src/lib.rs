//! trent's system financial model: the plan as data, the do-nothing gap, the bridge,
//! scenarios, uncertainty, alliance risk/reward and bed capacity.
//!
//! Why it exists: an integrated care system is run against one financial plan — the gap
//! the system faces if nothing changes, and how efficiencies, transformation schemes and
//! funding close it, organisation by organisation. In 2016 that plan lived in a
//! spreadsheet ("Nottinghamshire STP financial model as of Oct 20, 2016") that no reader
//! of the published plan could rerun. Here the plan is a readable TOML file
//! (`plans/nottinghamshire-2016.toml`, schema in `docs/plan-format.md`) and every figure of
//! the published plan is recomputed from it and tested (`tests/nottinghamshire.rs`,
//! method and the plan's own inconsistencies in `docs/finance.md`).
//!
//! Layers, each a module:
//! - [`plan`]: the file format, whole-plan validation and scenario overlays (the only I/O
//!   besides [`alliance::Alliance::load`] and [`run`]);
//! - [`engine`]: the deterministic evaluation (pure);
//! - [`montecarlo`]: uncertainty over the schemes' ranges (pure, seeded);
//! - [`report`]: the report and its table / JSON / CSV renderings;
//! - [`activity`]: schemes stated as a change in activity and alliances costed from a
//!   pathway — the plan-format types the lake-reading crate `trent-costing` evaluates (pure);
//! - [`alliance`]: gain/loss settlement of an alliance (pure);
//! - [`beds`]: Erlang-B bed capacity and its simulation check (pure).
//!
//! What it may not do: read the data lake or know about Nottinghamshire in code; the
//! binary (`trent finance`) only parses flags, calls [`run`] and prints
//! [`Report::render`].

pub mod activity;
pub mod alliance;
pub mod beds;
pub mod engine;
mod error;
pub mod montecarlo;
pub mod plan;
pub mod report;

pub use engine::{Evaluation, evaluate};
pub use error::FinanceError;
pub use montecarlo::{Simulation, simulate};
pub use plan::{Plan, PlanFile, Scenario};
pub use report::{Format, Report, RunOptions, build_report, run};

/// Plans shipped with trent, by name: `nottinghamshire-2016` (the default of `trent
/// finance`). Another plan is a file (`--plan FILE`), not a code change.
pub const BUNDLED_PLANS: &[(&str, &str)] = &[(
    "nottinghamshire-2016",
    include_str!("../../../plans/nottinghamshire-2016.toml"),
)];

/// A bundled plan, validated; its label is `plans/<name>.toml`.
pub fn bundled_plan(name: &str) -> Result<Plan, FinanceError> {
    let text = BUNDLED_PLANS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| FinanceError::Invalid {
            file: "--plan".into(),
            key: "name".into(),
            value: name.into(),
            problem: format!(
                "no bundled plan of that name (bundled: {})",
                BUNDLED_PLANS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    Plan::from_toml_str(text, &format!("plans/{name}.toml"))
}

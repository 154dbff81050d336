//! Bad plans, scenarios and alliance files are refused whole, with an error naming the
//! file, the key and the value. Each case edits the shipped plan the way a person might.

mod common;

use common::{plan, plan_text};
use trent_finance::alliance::Alliance;
use trent_finance::{FinanceError, Plan, RunOptions, run};

const FILE: &str = "plans/broken.toml";

/// Replace `from` (which must occur) in the shipped plan and load the result.
fn load_edited(from: &str, to: &str) -> FinanceError {
    let text = plan_text();
    assert!(text.contains(from), "fixture text not found: {from}");
    let edited = text.replacen(from, to, 1);
    Plan::from_toml_str(&edited, FILE).expect_err("the edited plan must be refused")
}

#[track_caller]
fn says(e: &FinanceError, parts: &[&str]) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(FILE) || msg.contains(FILE),
        "no file in: {msg}"
    );
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in: {msg}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let e = load_edited("[plan]\n", "[plan]\ncurrency = \"GBP\"\n");
    assert!(matches!(e, FinanceError::Parse { .. }));
    says(&e, &["currency"]);
    let e = load_edited("id = \"housing\"\n", "id = \"housing\"\nnett = 2.4\n");
    says(&e, &["nett"]);
    let e = load_edited("[bodies.la]\n", "[bodies.la]\ngrowth = 0.01\n");
    says(&e, &["growth"]);
    let e = load_edited("[alliance]\n", "[alliance]\nterm_years = 3\n");
    says(&e, &["term_years"]);
}

#[test]
fn missing_years_are_refused() {
    let e = load_edited("ramp = [0.5, 1.0, 1.0, 1.0]", "ramp = [0.5, 1.0, 1.0]");
    says(
        &e,
        &[
            "schemes[acute_beds].ramp",
            "[0.5, 1.0, 1.0]",
            "expected 4 values",
            "missing 2020/21",
        ],
    );
    let e = load_edited(
        "allocation_growth = [0.011176, 0.017683, 0.017376, 0.019214]",
        "allocation_growth = [0.011176, 0.017683]",
    );
    says(
        &e,
        &["bodies.nhs.allocation_growth", "missing 2019/20, 2020/21"],
    );
    let e = load_edited(
        "non_recurrent_income = [18.0, 0.0, 0.0, 0.0, 0.0]",
        "non_recurrent_income = [18.0, 0.0, 0.0, 0.0]",
    );
    says(
        &e,
        &["bodies.nhs.non_recurrent_income", "expected 5 values"],
    );
    let e = load_edited("years = [\"2016/17\", ", "years = [");
    // The plan now has 4 years, so every 4-value list is one too long.
    says(&e, &["expected 3 values"]);
}

#[test]
fn schemes_on_unknown_organisations_are_refused() {
    let e = load_edited(
        "falls_on = { nuh = 0.6, sfh = 0.4 }\nsource = \"STP §8 table, l.1279",
        "falls_on = { nuh = 0.6, kmh = 0.4 }\nsource = \"STP §8 table, l.1279",
    );
    says(
        &e,
        &[
            "schemes[acute_beds].falls_on.kmh",
            "0.4",
            "unknown organisation \"kmh\"",
        ],
    );
    let e = load_edited("falls_on = { sfh = 1.0 }", "falls_on = { sherwood = 1.0 }");
    says(&e, &["funding[pfi].falls_on.sherwood"]);
}

#[test]
fn shares_that_do_not_sum_to_one_are_refused() {
    let e = load_edited(
        "falls_on = { nuh = 0.6, sfh = 0.4 }\nsource = \"STP §8 table, l.1279",
        "falls_on = { nuh = 0.6, sfh = 0.3 }\nsource = \"STP §8 table, l.1279",
    );
    says(&e, &["schemes[acute_beds].falls_on", "sum to 0.9"]);
    let e = load_edited("share = 0.1\ncollar = 0.2", "share = 0.2\ncollar = 0.2");
    says(&e, &["alliance.partners[*].share", "sum to 1.1"]);
}

#[test]
fn negative_unit_costs_and_amounts_are_refused() {
    let e = load_edited("unit_cost = 0.075", "unit_cost = -0.075");
    says(
        &e,
        &[
            "schemes[acute_beds].unit_cost",
            "-0.075",
            "unit cost must not be negative",
        ],
    );
    let e = load_edited("baseline_cost = 830.0", "baseline_cost = -830.0");
    says(&e, &["organisations[nuh].baseline_cost", "-830"]);
    let e = load_edited("reinvestment = 22.0", "reinvestment = -22.0");
    says(&e, &["schemes[primary_community].reinvestment", "-22"]);
}

#[test]
fn ranges_with_low_above_high_are_refused() {
    let e = load_edited("low = 33.3", "low = 70.0");
    says(
        &e,
        &["schemes[primary_community].low", "70", "above high (66.7)"],
    );
    // A plan value outside its own range is refused too: it is the mode.
    let e = load_edited("low = 22.5\nhigh = 67.5", "low = 50.0\nhigh = 67.5");
    says(&e, &["schemes[variation].low", "must lie within"]);
    let e = load_edited("low = 1.2\nhigh = 3.6", "low = 1.2");
    says(&e, &["schemes[housing].low", "low needs high"]);
}

#[test]
fn structural_mistakes_are_refused() {
    let e = load_edited("sector = \"ambulance\"", "sector = \"ambulances\"");
    says(
        &e,
        &["organisations[emas].sector", "ambulances", "unknown sector"],
    );
    let e = load_edited("body = \"la\"", "body = \"council\"");
    says(&e, &["sectors[social_care].body", "unknown body"]);
    let e = load_edited("id = \"circle\"", "id = \"sfh\"");
    says(&e, &["organisations[", "duplicate id"]);
    let e = load_edited("net = 45.0 ", "net = 45.0\ngross = 50.0 ");
    says(&e, &["schemes[variation].net", "not both"]);
    let e = load_edited(
        "efficiency = [0.0075, 0.0075, 0.0075, 0.0075]",
        "efficiency = [0.0075, 1.5, 0.0075, 0.0075]",
    );
    says(
        &e,
        &["organisations[ccg_running].efficiency[1] (2018/19)", "1.5"],
    );
    let e = load_edited("ramp = [1.0, 1.0, 1.0, 1.0]", "ramp = [1.0, 1.2, 1.0, 1.0]");
    says(&e, &["schemes[housing].ramp[1] (2018/19)", "1.2"]);
    let e = load_edited("measure = \"pfi\"", "measure = \"pfi_support\"");
    says(&e, &["published[", "pfi_support", "unknown measure"]);
    let e = load_edited(
        "non_recurrent_income = [18.0,",
        "non_recurrent_income = [5000.0,",
    );
    says(&e, &["bodies.nhs.non_recurrent_income[0]", "exceeds"]);
    let e = load_edited("non_demographic = [0.028886,", "non_demographic = [-1.5,");
    says(&e, &["sectors[acute].non_demographic[0] (2017/18)", "-1.5"]);
}

#[test]
fn not_toml_and_missing_files() {
    let e = Plan::from_toml_str("[plan\nname = 1", FILE).unwrap_err();
    says(&e, &["line"]);
    let e = run(&RunOptions::new("/nonexistent/plan.toml")).unwrap_err();
    assert!(matches!(e, FinanceError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/plan.toml"));
}

#[test]
fn bad_scenarios_are_refused_naming_the_scenario() {
    let p = plan();
    let cases: [(&str, &[&str]); 6] = [
        (
            "[[schemes]]\nid = \"housing\"\ngross = 3.0\n",
            &["bad.toml", "[scenario]"],
        ),
        (
            "[scenario]\nname = \"x\"\n[[schemes]]\nid = \"housing\"\nnet = 3.0\n",
            &["bad.toml", "schemes[housing]", "not both"],
        ),
        (
            "[scenario]\nname = \"x\"\n[[schemes]]\nid = \"hosing\"\nremove = true\n",
            &["bad.toml", "schemes[hosing].remove", "no element"],
        ),
        (
            "[scenario]\nname = \"x\"\n[plan]\nyear = [\"2016/17\"]\n",
            &["bad.toml", "year"],
        ),
        (
            "[scenario]\nname = \"x\"\nauthor = \"me\"\n",
            &["bad.toml", "author"],
        ),
        (
            "[scenario]\nname = \"x\"\n[[funding]]\nid = \"stf\"\nfalls_on = { nuh = 0.5 }\n",
            &["bad.toml", "funding[stf].falls_on", "sum to"],
        ),
    ];
    for (text, parts) in cases {
        let e = p.with_scenario_str(text, "bad.toml").unwrap_err();
        let msg = e.to_string();
        for part in parts {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
    }
}

#[test]
fn scenario_overlay_semantics() {
    let p = plan();
    let sc = p
        .with_scenario_str(
            r#"
[scenario]
name = "overlay"

[plan]
name = "renamed"                  # scalar: replaced

[bodies.nhs]
control_total = [0.0, 0.0, 0.0, 0.0]   # plain array: replaced

[[schemes]]                       # known id: merged, other keys kept
id = "housing"
gross = 4.0
low = 1.6
high = 4.0

[[schemes]]                       # known id with remove: deleted
id = "technology"
remove = true

[[schemes]]                       # new id: appended
id = "new_scheme"
name = "A new scheme"
net = 5.0
ramp = [0.0, 0.5, 1.0, 1.0]
falls_on = { prescribing = 1.0 }
"#,
            "overlay.toml",
        )
        .unwrap();
    let f = sc.plan.file();
    assert_eq!(f.plan.name, "renamed");
    assert_eq!(f.bodies["nhs"].control_total, Some(vec![0.0; 4]));
    let housing = f.schemes.iter().find(|s| s.id == "housing").unwrap();
    assert_eq!(
        (housing.gross, housing.reinvestment),
        (Some(4.0), Some(1.4))
    );
    assert!(f.schemes.iter().all(|s| s.id != "technology"));
    assert_eq!(f.schemes.last().unwrap().id, "new_scheme");
    assert_eq!(f.schemes.len(), p.file().schemes.len());
    assert_eq!(sc.plan.label(), format!("{} + overlay.toml", p.label()));
    // The base plan is untouched.
    assert!(p.file().schemes.iter().any(|s| s.id == "technology"));
}

#[test]
fn bad_alliance_files_are_refused() {
    let e = Alliance::from_toml_str(
        "[alliance]\nname = \"a\"\nplanned_cost = 10.0\nactual_cost = 9.0\ncap = -1.0\ncollar = 1.0\n[[alliance.partners]]\nid = \"x\"\nshare = 1.0\n",
        "a.toml",
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("a.toml") && msg.contains("alliance.cap") && msg.contains("-1"),
        "{msg}"
    );
    let e = Alliance::from_toml_str("[alliance]\nname = \"a\"\n", "a.toml").unwrap_err();
    assert!(e.to_string().contains("planned_cost"), "{e}");
    let ok = Alliance::from_toml_str(
        "[alliance]\nname = \"a\"\nplanned_cost = 10.0\nactual_cost = 9.0\ncap = 1.0\ncollar = 1.0\n[[alliance.partners]]\nid = \"x\"\nshare = 1.0\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(ok.settle().partners[0].settlement, 1.0);
}

/// The minimal plan in `docs/plan-format.md` is valid and evaluates; so is the example
/// scenario there (against the shipped plan). Keeps the documentation honest.
#[test]
fn documented_examples_are_valid() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/plan-format.md"
    ))
    .unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    plan()
        .with_scenario_str(blocks[0], "doc-scenario.toml")
        .unwrap();
    let minimal = Plan::from_toml_str(blocks[1], "doc-minimal.toml").unwrap();
    let ev = trent_finance::evaluate(&minimal);
    // 500 × 1.045 − 490 × 1.02 = 522.5 − 499.8 = 22.7 gap; efficiency 2% of 522.5 = 10.45;
    // scheme 4 × 0.5 = 2.
    let r = ev.figure("remaining_gap", "system", "2025/26").unwrap();
    assert!((r - (22.7 - 10.45 - 2.0)).abs() < 1e-9, "{r}");
}

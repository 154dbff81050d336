//! The lake-tied finance on small synthetic lakes: each DataFusion result is checked
//! against a row-by-row computation in plain Rust over the same rows, and the properties
//! the methods promise are asserted (fair shares add to the total, a 30% cut costs 30% of
//! the baseline, the simulation agrees with Erlang B, settlements conserve the variance).

use std::collections::{HashMap, HashSet};

use trent_costing::beds::{BedOptions, beds};
use trent_costing::capitation::{CapitationOptions, RiskModel, capitation};
use trent_costing::costing::{cost_schemes, schemes_for};
use trent_costing::pathway::{AllianceFile, parse_alliance, settle_pathway};
use trent_costing::{FinancialYear, LakeView, floats, ints, strings};
use trent_places::Area;
use trent_synth::{SynthOptions, synthesize, time};

fn make_lake(scale: f64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let area = Area::bundled("nottinghamshire").unwrap();
    let opts = SynthOptions {
        scale,
        years: 2,
        start: time::parse("2014-04-01").unwrap(),
        seed: 11,
        threads: 2,
        max_partition: 80_000,
        progress: false,
        fhir: false,
    };
    synthesize(&area, &opts, dir.path()).unwrap();
    dir
}

/// Raw activity rows of a year: (person, setting, admission_method, patient_class,
/// provider, specialty, cost, los).
struct Row {
    person: i64,
    setting: String,
    method: String,
    class: String,
    provider: String,
    specialty: String,
    cost: f64,
    los: Option<i64>,
}

async fn rows(view: &LakeView, year: &FinancialYear) -> Vec<Row> {
    let sql = "SELECT person_id, setting, admission_method, patient_class, provider_code, specialty, cost_gbp, \
         COALESCE(los_days, -1), CAST(CAST(start_ts AS DATE) AS INT) AS day FROM activity";
    let mut out = Vec::new();
    for b in view.query(sql).await.unwrap() {
        let p = ints(&b, 0).unwrap();
        let (s, m, c, pr, sp) = (
            strings(&b, 1).unwrap(),
            strings(&b, 2).unwrap(),
            strings(&b, 3).unwrap(),
            strings(&b, 4).unwrap(),
            strings(&b, 5).unwrap(),
        );
        let cost = floats(&b, 6).unwrap();
        let los = ints(&b, 7).unwrap();
        let day = ints(&b, 8).unwrap();
        for i in 0..b.num_rows() {
            if day[i] < year.start as i64 || day[i] >= year.end as i64 {
                continue;
            }
            out.push(Row {
                person: p[i],
                setting: s[i].clone().unwrap_or_default(),
                method: m[i].clone().unwrap_or_default(),
                class: c[i].clone().unwrap_or_default(),
                provider: pr[i].clone().unwrap_or_default(),
                specialty: sp[i].clone().unwrap_or_default(),
                cost: cost[i],
                los: (los[i] >= 0).then_some(los[i]),
            });
        }
    }
    out
}

async fn practice_of(view: &LakeView) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    for b in view
        .query("SELECT person_id, practice_code FROM person")
        .await
        .unwrap()
    {
        let p = ints(&b, 0).unwrap();
        let c = strings(&b, 1).unwrap();
        for i in 0..b.num_rows() {
            out.insert(p[i], c[i].clone().unwrap());
        }
    }
    out
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-9)
}

#[tokio::test(flavor = "multi_thread")]
async fn bottom_up_costing_matches_a_row_by_row_count() {
    let dir = make_lake(0.01);
    let view = LakeView::open(dir.path()).await.unwrap();
    assert_eq!(view.scale, 0.01);
    assert_eq!(view.years.len(), 2);
    let year = view.year(None).unwrap();
    assert_eq!(year.label, "2015/16");
    let plan = trent_finance::bundled_plan("nottinghamshire-2016").unwrap();
    let schemes = schemes_for(&plan, None).unwrap();
    let r = cost_schemes(&view, &plan, &schemes, &year).await.unwrap();

    // Reference, row by row.
    let rows = rows(&view, &year).await;
    let practice = practice_of(&view).await;
    let gns: HashSet<String> = view
        .places
        .practices_in(&["DU-GNS".into()])
        .unwrap()
        .into_iter()
        .collect();
    let (mut n, mut cost) = (0.0, 0.0);
    let (mut bd, mut bd_cost) = (0.0, 0.0);
    let (mut op, mut op_cost) = (0.0, 0.0);
    for x in &rows {
        if x.setting == "apc" && x.method == "emergency" && gns.contains(&practice[&x.person]) {
            n += 1.0;
            cost += x.cost;
        }
        if x.setting == "apc"
            && x.class == "ordinary"
            && x.provider == "RX1"
            && let Some(l) = x.los
        {
            bd += l as f64;
            bd_cost += x.cost;
        }
        if x.setting == "op" && (x.specialty == "301" || x.specialty == "320") {
            op += 1.0;
            op_cost += x.cost;
        }
    }
    assert!(n > 50.0, "too few emergency admissions to test: {n}");
    let s = |id: &str| r.schemes.iter().find(|s| s.id == id).unwrap();
    let e = s("gns_emergency_admissions");
    assert_eq!(e.lake_units, n);
    assert!(close(e.lake_cost_gbp, cost, 1e-9));
    // A 30% cut costs 30% of the population's baseline emergency spend, at full scale.
    assert!(close(e.bottom_up.gross_m, 0.3 * cost / 0.01 / 1e6, 1e-9));
    assert!(close(e.baseline_units, n / 0.01, 1e-12));
    let b = s("acute_beds_200");
    assert_eq!(b.lake_units, bd);
    assert!(close(b.lake_cost_gbp, bd_cost, 1e-9));
    // 200 beds = 73,000 bed days at the average cost per bed day.
    assert!(close(
        b.bottom_up.gross_m,
        73_000.0 * (bd_cost / bd) / 1e6,
        1e-9
    ));
    let o = s("gastro_cardio_outpatients");
    assert_eq!(o.lake_units, op);
    assert!(close(
        o.bottom_up.gross_m,
        0.23 * op_cost / 0.01 / 1e6,
        1e-9
    ));
    // Plan schemes add their activity schemes.
    let pc = r
        .by_plan_scheme
        .iter()
        .find(|p| p.scheme == "planned_care")
        .unwrap();
    let sum = o.bottom_up.gross_m + s("referrals").bottom_up.gross_m;
    assert!(close(pc.bottom_up_gross_m, sum, 1e-12));
    assert_eq!(pc.top_down_gross_m, 35.0);
    // Renders three ways.
    for f in ["table", "json", "csv"] {
        assert!(!r.render(f.parse().unwrap()).is_empty());
    }
    // An unknown place is refused with its code.
    let mut bad = schemes.clone();
    bad[0].select.place = vec!["NOWHERE".into()];
    let e = cost_schemes(&view, &plan, &bad, &year)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NOWHERE"), "{e}");
    assert!(view.year(Some("2030/31")).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn capitation_shares_add_up_and_follow_the_rows() {
    let dir = make_lake(0.01);
    let view = LakeView::open(dir.path()).await.unwrap();
    let year = view.year(None).unwrap();
    let opts = |level: &str| CapitationOptions {
        level: level.into(),
        ..CapitationOptions::default()
    };
    let r = capitation(&view, &year, &opts("practice")).await.unwrap();
    let sum = |f: fn(&trent_costing::capitation::Unit) -> Option<f64>| -> f64 {
        r.units.iter().map(|u| f(u).unwrap()).sum()
    };
    assert!(r.units.iter().all(|u| !u.suppressed));
    // Fair shares add to the total, which is the current spend.
    assert!(close(sum(|u| u.fair_share_m), r.total_m, 1e-9));
    assert!(close(sum(|u| u.current_spend_m), r.total_m, 1e-9));
    // Weighted population adds to the person-years (the fit preserves the total).
    assert!(close(
        sum(|u| u.weighted_population),
        sum(|u| u.person_years),
        1e-6
    ));
    // Reference spend per practice, row by row: activity (not social care assessments)
    // plus medication, of people registered in the year.
    let practice = practice_of(&view).await;
    let mut spend: HashMap<String, f64> = HashMap::new();
    for x in rows(&view, &year).await {
        if x.setting != "social_care_assessment" {
            *spend.entry(practice[&x.person].clone()).or_default() += x.cost;
        }
    }
    for b in view
        .query(&format!(
            "SELECT person_id, cost_gbp FROM medication WHERE {}",
            year.date_sql("issue_date")
        ))
        .await
        .unwrap()
    {
        let p = ints(&b, 0).unwrap();
        let c = floats(&b, 1).unwrap();
        for i in 0..b.num_rows() {
            *spend.entry(practice[&p[i]].clone()).or_default() += c[i];
        }
    }
    for u in &r.units {
        let want = spend.get(&u.code).copied().unwrap_or(0.0) / 0.01 / 1e6;
        assert!(
            close(u.current_spend_m.unwrap(), want, 1e-6),
            "{}: {} vs {want}",
            u.code,
            u.current_spend_m.unwrap()
        );
    }
    // Need follows age: the oldest band costs more than young adults.
    assert!(r.model.age_sex[0][17] > 2.0 * r.model.age_sex[0][5]);
    assert!(r.model.ltc[4] > r.model.ltc[0]);

    // A given total is shared in full; a CCG's share is the sum of its practices'.
    let mut o = opts("ccg");
    o.total_m = Some(1000.0);
    let c = capitation(&view, &year, &o).await.unwrap();
    let total: f64 = c.units.iter().map(|u| u.fair_share_m.unwrap()).sum();
    assert!(close(total, 1000.0, 1e-9));
    let mut o = opts("practice");
    o.total_m = Some(1000.0);
    o.only = vec!["04K".into()];
    let p = capitation(&view, &year, &o).await.unwrap();
    let ct = p.control_total.as_ref().unwrap();
    let ccg = c.units.iter().find(|u| u.code == "04K").unwrap();
    assert!(close(
        ct.fair_share_m.unwrap(),
        ccg.fair_share_m.unwrap(),
        1e-9
    ));
    assert_eq!(ct.units, p.units.len());
    assert!(
        p.units
            .iter()
            .all(|u| view.places.ancestor(&u.code, "ccg") == Some("04K"))
    );
    // Age and sex alone still add up.
    let mut o = opts("delivery_unit");
    o.risk = RiskModel {
        ltc: false,
        imd: false,
    };
    let d = capitation(&view, &year, &o).await.unwrap();
    assert_eq!(d.units.len(), 2);
    assert!(close(
        d.units.iter().map(|u| u.fair_share_m.unwrap()).sum::<f64>(),
        d.total_m,
        1e-9
    ));
    assert!(capitation(&view, &year, &opts("ward")).await.is_err());
    let csv = r.render("csv".parse().unwrap());
    assert_eq!(csv.lines().count(), r.units.len() + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alliance_outturn_is_the_pathway_cost_and_choice_is_outside_it() {
    let dir = make_lake(0.01);
    let view = LakeView::open(dir.path()).await.unwrap();
    let year = view.year(None).unwrap();
    // Greater Nottingham planned care with NUH as the alliance: activity at Circle is
    // patient choice, paid from the alliance's budget.
    let text = r#"
[alliance]
name = "GNS planned care"
providers = ["RX1"]
planned_cost = 20.0
cap = 1.0
collar = 0.5

[[alliance.pathway]]
setting = ["op"]
place = ["DU-GNS"]

[[alliance.pathway]]
setting = ["apc"]
admission_method = ["elective"]
place = ["DU-GNS"]

[[alliance.partners]]
id = "nuh"
share = 0.7

[[alliance.partners]]
id = "ccgs"
share = 0.3
collar = 0.1
"#;
    let AllianceFile::Pathway(a) = parse_alliance(text, "test.toml").unwrap() else {
        panic!("a pathway alliance")
    };
    let r = settle_pathway(&view, &a, None).await.unwrap();
    let o = r.outturn.as_ref().unwrap();
    let practice = practice_of(&view).await;
    let gns: HashSet<String> = view
        .places
        .practices_in(&["DU-GNS".into()])
        .unwrap()
        .into_iter()
        .collect();
    let (mut all, mut outside) = (0.0, 0.0);
    for x in rows(&view, &year).await {
        let inp = gns.contains(&practice[&x.person])
            && (x.setting == "op" || (x.setting == "apc" && x.method == "elective"));
        if inp {
            all += x.cost;
            if x.provider != "RX1" {
                outside += x.cost;
            }
        }
    }
    assert!(outside > 0.0, "the lake should have Circle activity");
    assert!(close(o.actual_m, all / 0.01 / 1e6, 1e-9));
    assert!(close(o.patient_choice_m, outside / 0.01 / 1e6, 1e-9));
    assert_eq!(o.planned_m, 20.0);
    let s = &r.settlement;
    let paid: f64 = s.partners.iter().map(|p| p.settlement).sum();
    assert!(close(paid + s.commissioner, s.variance, 1e-9));
    assert!(close(s.variance, 20.0 - o.actual_m, 1e-9));

    // The bundled alliance plans from the previous year's cost.
    let AllianceFile::Pathway(b) =
        parse_alliance(trent_costing::pathway::BUNDLED_ALLIANCE, "bundled").unwrap()
    else {
        panic!()
    };
    let r = settle_pathway(&view, &b, None).await.unwrap();
    let o = r.outturn.unwrap();
    let mut prev = b.clone();
    prev.year = Some(view.years[0].label.clone());
    prev.baseline_year = None;
    prev.planned_change = None;
    prev.planned_cost = Some(1.0);
    let p = settle_pathway(&view, &prev, None).await.unwrap();
    assert!(close(o.planned_m, p.outturn.unwrap().actual_m, 1e-9));
    // ... and there is no year before the first.
    assert!(
        settle_pathway(&view, &b, Some(&view.years[0].label))
            .await
            .is_err()
    );
    // A plain alliance file is still a plain alliance.
    assert!(matches!(
        parse_alliance(
            "[alliance]\nname='x'\nplanned_cost=1.0\nactual_cost=1.0\ncap=1.0\ncollar=1.0\n[[alliance.partners]]\nid='a'\nshare=1.0\n",
            "p.toml"
        )
        .unwrap(),
        AllianceFile::Plain(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn beds_follow_the_spells_and_the_simulation_agrees_with_erlang() {
    let dir = make_lake(0.01);
    let view = LakeView::open(dir.path()).await.unwrap();
    let year = view.year(None).unwrap();
    let area = Area::bundled("nottinghamshire").unwrap();
    let opts = BedOptions {
        sim_days: 3_000.0,
        ..BedOptions::default()
    };
    let r = beds(&view, &year, Some(&area), &opts).await.unwrap();
    // Admissions a day, row by row: ordinary (not day-case) spells, full scale.
    let mut n: HashMap<String, f64> = HashMap::new();
    for x in rows(&view, &year).await {
        if x.setting == "apc" && x.class != "day_case" && x.los.is_some() {
            *n.entry(x.provider.clone()).or_default() += 1.0;
        }
    }
    for t in &r.trusts {
        assert!(close(
            t.admissions_per_day,
            n[&t.provider] / year.days() / 0.01,
            1e-9
        ));
        assert!(t.agree, "{t:?}");
        assert!(t.offered_load / t.beds as f64 <= 0.92 + 1e-12);
        assert!(t.occupancy <= 0.92 + 1e-12);
        assert!((t.simulation.blocking - t.erlang_b).abs() <= 4.0 * t.simulation.std_error + 0.002);
    }
    for s in &r.sites {
        assert!(s.agree, "{s:?}");
    }
    assert_eq!(r.reductions.len(), 2);
    for (red, n) in r.reductions.iter().zip([200, 20]) {
        assert_eq!(red.reduction.beds_now - red.reduction.beds_after, n);
        assert!(red.admissions_cut > 0.0 && red.admissions_cut < 1.0);
        assert!(close(red.admissions_cut, red.los_cut, 1e-9));
        assert!(red.community.is_some());
        assert!(red.delayed_bed_days_per_day > 0.0);
    }
    // One site only.
    let o = BedOptions {
        site: Some("RK5".into()),
        sim_days: 1_000.0,
        ..BedOptions::default()
    };
    let k = beds(&view, &year, None, &o).await.unwrap();
    assert!(k.trusts.iter().all(|t| t.provider == "RK5"));
    assert_eq!(k.reductions.len(), 1);
    assert!(k.reductions[0].community.is_none());
    let bad = BedOptions {
        occupancy: 1.2,
        ..BedOptions::default()
    };
    assert!(beds(&view, &year, None, &bad).await.is_err());
}

//! The output follows its inputs: no figure is a constant. Seeded property loops (the
//! project's own RNG, so the cases are the same on every machine) perturb the shipped plan
//! and check the response the arithmetic promises.

mod common;

use common::{close, plan};
use trent_finance::engine::Level;
use trent_finance::{Evaluation, PlanFile, evaluate, simulate};
use trent_stats::rng::Rng;

/// Raise scheme `i`'s net saving by `d`, whichever way the plan gives it, keeping its range
/// around it.
fn raise_net(f: &mut PlanFile, i: usize, d: f64) {
    let s = &mut f.schemes[i];
    if let Some(n) = &mut s.net {
        *n += d;
    } else if let Some(g) = &mut s.gross {
        *g += d;
    } else {
        let units = s.units.unwrap();
        *s.unit_cost.as_mut().unwrap() += d / units;
    }
    if let (Some(l), Some(h)) = (&mut s.low, &mut s.high) {
        *l += d;
        *h += d;
    }
}

#[test]
fn raising_a_schemes_net_saving_lowers_the_remaining_gap_by_exactly_that_amount() {
    let base_plan = plan();
    let base = evaluate(&base_plan);
    let mut rng = Rng::stream(2024, 1);
    for _ in 0..200 {
        let i = rng.below(base_plan.file().schemes.len() as u64) as usize;
        let d = rng.uniform(0.1, 20.0);
        let changed = base_plan.modified(|f| raise_net(f, i, d)).unwrap();
        let ev = evaluate(&changed);
        let s = &base_plan.file().schemes[i];
        for (t, year) in base.years.iter().enumerate().skip(1) {
            let ramp = s.ramp[t - 1];
            let sys = |e: &Evaluation| e.entity("system").unwrap().years[t].remaining_gap;
            close(
                &format!("system {year}"),
                sys(&base) - sys(&ev),
                d * ramp,
                1e-9,
            );
            for (org, share) in &s.falls_on {
                let o = |e: &Evaluation| e.entity(org).unwrap().years[t].remaining_gap;
                close(
                    &format!("{org} {year}"),
                    o(&base) - o(&ev),
                    d * ramp * share,
                    1e-9,
                );
            }
            // The do-nothing gap does not move.
            let g = |e: &Evaluation| e.entity("system").unwrap().years[t].do_nothing_gap;
            close("do-nothing gap unchanged", g(&ev), g(&base), 1e-9);
        }
    }
}

#[test]
fn funding_and_efficiency_move_the_gap_one_for_one() {
    let base_plan = plan();
    let base = evaluate(&base_plan);
    let mut rng = Rng::stream(2024, 2);
    for _ in 0..100 {
        let i = rng.below(base_plan.file().funding.len() as u64) as usize;
        let d = rng.uniform(-10.0, 10.0);
        let t = 1 + rng.below(4) as usize;
        let ev = evaluate(
            &base_plan
                .modified(|f| f.funding[i].amounts[t - 1] += d)
                .unwrap(),
        );
        let sys = |e: &Evaluation| e.entity("system").unwrap().years[t].remaining_gap;
        close("funding", sys(&base) - sys(&ev), d, 1e-9);
        // Other years are untouched: funding amounts are levels, not increments.
        let other = if t == 1 { 2 } else { 1 };
        let so = |e: &Evaluation| e.entity("system").unwrap().years[other].remaining_gap;
        close("other year", so(&ev), so(&base), 1e-9);
    }
    // A higher efficiency rate in year t saves rate × that year's cost, for good.
    let o = 0; // nuh
    let ev = evaluate(
        &base_plan
            .modified(|f| f.organisations[o].efficiency.as_mut().unwrap()[1] += 0.01)
            .unwrap(),
    );
    let id = &base_plan.file().organisations[o].id;
    let cost_t = base.entity(id).unwrap().years[2].cost;
    for t in 2..5 {
        let r = |e: &Evaluation| e.entity(id).unwrap().years[t].remaining_gap;
        close("efficiency", r(&base) - r(&ev), 0.01 * cost_t, 1e-9);
    }
    let r1 = |e: &Evaluation| e.entity(id).unwrap().years[1].remaining_gap;
    close("before the change", r1(&ev), r1(&base), 1e-12);
}

fn scale_money(f: &mut PlanFile, k: f64) {
    for o in &mut f.organisations {
        o.baseline_cost *= k;
        o.baseline_income *= k;
    }
    for b in f.bodies.values_mut() {
        if let Some(v) = &mut b.non_recurrent_income {
            v.iter_mut().for_each(|x| *x *= k);
        }
        if let Some(v) = &mut b.control_total {
            v.iter_mut().for_each(|x| *x *= k);
        }
    }
    for s in &mut f.schemes {
        for x in [
            &mut s.gross,
            &mut s.reinvestment,
            &mut s.net,
            &mut s.unit_cost,
            &mut s.low,
            &mut s.high,
        ]
        .into_iter()
        .flatten()
        {
            *x *= k;
        }
    }
    for fu in &mut f.funding {
        fu.amounts.iter_mut().for_each(|x| *x *= k);
    }
}

#[test]
fn scaling_every_amount_scales_every_figure_and_keeps_every_percentage() {
    let base_plan = plan();
    let base = evaluate(&base_plan);
    for k in [0.5, 2.0, 3.7] {
        let ev = evaluate(&base_plan.modified(|f| scale_money(f, k)).unwrap());
        for (a, b) in base.entities.iter().zip(&ev.entities) {
            assert_eq!(a.id, b.id);
            for (x, y) in a.years.iter().zip(&b.years) {
                for m in [
                    "cost",
                    "do_nothing_gap",
                    "efficiencies",
                    "schemes",
                    "stf",
                    "remaining_gap",
                ] {
                    let (x, y) = (x.get(m).unwrap(), y.get(m).unwrap());
                    close(
                        &format!("{} {m}", a.id),
                        y,
                        k * x,
                        1e-9 * (1.0 + x.abs() * k),
                    );
                }
            }
        }
        for (a, b) in base.percentages[0]
            .years
            .iter()
            .zip(&ev.percentages[0].years)
        {
            close("challenge", b.challenge, a.challenge, 1e-12);
            close("position", b.position, a.position, 1e-12);
        }
    }
}

#[test]
fn the_gap_follows_growth() {
    let base_plan = plan();
    // No growth anywhere and no non-recurrent income: the do-nothing gap stays at its baseline.
    let flat = base_plan
        .modified(|f| {
            for s in &mut f.sectors {
                for v in [&mut s.demographic, &mut s.non_demographic, &mut s.inflation] {
                    v.iter_mut().for_each(|x| *x = 0.0);
                }
            }
            for b in f.bodies.values_mut() {
                b.allocation_growth.iter_mut().for_each(|x| *x = 0.0);
                b.non_recurrent_income = None;
            }
        })
        .unwrap();
    let ev = evaluate(&flat);
    let g0 = ev.entity("system").unwrap().years[0].do_nothing_gap;
    for y in &ev.entity("system").unwrap().years {
        close("flat gap", y.do_nothing_gap, g0, 1e-9);
    }

    // Scaling every growth rate by k scales the first forecast year's gap increase by k
    // exactly (drivers add within a year); later years compound, so the gap only rises.
    let base = evaluate(&flat);
    let with_growth = |k: f64| {
        let orig = base_plan.file().clone();
        flat.modified(|f| {
            for (s, o) in f.sectors.iter_mut().zip(&orig.sectors) {
                for (v, w) in [
                    (&mut s.demographic, &o.demographic),
                    (&mut s.non_demographic, &o.non_demographic),
                    (&mut s.inflation, &o.inflation),
                ] {
                    v.iter_mut().zip(w).for_each(|(x, y)| *x = k * y);
                }
            }
            for (id, b) in f.bodies.iter_mut() {
                b.allocation_growth
                    .iter_mut()
                    .zip(&orig.bodies[id].allocation_growth)
                    .for_each(|(x, y)| *x = k * y);
            }
        })
        .map(|p| evaluate(&p))
        .unwrap()
    };
    let rise = |e: &Evaluation, t: usize| {
        let s = &e.entity("system").unwrap().years;
        s[t].do_nothing_gap - s[0].do_nothing_gap
    };
    let one = with_growth(1.0);
    let mut prev_final = rise(&base, 4);
    for k in [0.5, 1.5, 2.0, 3.0] {
        let ev = with_growth(k);
        close(
            &format!("year-1 rise × {k}"),
            rise(&ev, 1),
            k * rise(&one, 1),
            1e-9,
        );
        assert!(
            rise(&ev, 4) > prev_final,
            "more growth, bigger gap by 2020/21"
        );
        prev_final = rise(&ev, 4);
    }
    let mut rng = Rng::stream(2024, 3);
    for _ in 0..100 {
        let s = rng.below(base_plan.file().sectors.len() as u64) as usize;
        let t = rng.below(4) as usize;
        let d = rng.uniform(0.001, 0.05);
        let ev = evaluate(
            &base_plan
                .modified(|f| f.sectors[s].demographic[t] += d)
                .unwrap(),
        );
        let b = evaluate(&base_plan);
        let g = |e: &Evaluation, y: usize| e.entity("system").unwrap().years[y].do_nothing_gap;
        for y in 0..=t {
            close("earlier years unchanged", g(&ev, y), g(&b, y), 1e-9);
        }
        for y in t + 1..5 {
            assert!(g(&ev, y) > g(&b, y), "raising growth raises the gap");
        }
        // Allocation growth works the other way.
        let body = base_plan.file().sectors[s].body.clone();
        let ev = evaluate(
            &base_plan
                .modified(|f| f.bodies.get_mut(&body).unwrap().allocation_growth[t] += d)
                .unwrap(),
        );
        for y in t + 1..5 {
            assert!(
                g(&ev, y) < g(&b, y),
                "raising allocation growth lowers the gap"
            );
        }
    }
}

#[test]
fn totals_are_sums_of_their_parts() {
    let ev = evaluate(&plan());
    let n = ev.years.len();
    let sys = ev.entity("system").unwrap();
    for level in [Level::Body, Level::Sector, Level::Organisation] {
        for t in 0..n {
            for m in trent_finance::engine::MEASURES
                .iter()
                .filter(|m| !m.starts_with("pct_"))
            {
                let Some(want) = sys.years[t].get(m) else {
                    continue;
                };
                let got: f64 = ev
                    .entities
                    .iter()
                    .filter(|e| e.level == level)
                    .map(|e| e.years[t].get(m).unwrap())
                    .sum();
                close(&format!("{level:?} {m} {t}"), got, want, 1e-9);
            }
        }
    }
    for e in &ev.entities {
        for y in &e.years {
            close(
                "identity",
                y.remaining_gap,
                y.do_nothing_gap - y.efficiencies - y.schemes - y.funding_total(),
                1e-9,
            );
        }
    }
}

#[test]
fn monte_carlo_is_ordered_seeded_and_collapses_to_the_plan_without_ranges() {
    let p = plan();
    let ev = evaluate(&p);
    let sim = simulate(&p, &ev, 5000, 7).unwrap();
    for e in &sim.entities {
        for y in &e.years {
            let q = y.remaining_gap;
            assert!(
                q.p10 <= q.p50 && q.p50 <= q.p90,
                "{} {}: {q:?}",
                e.id,
                y.year
            );
        }
    }
    assert_eq!(
        sim,
        simulate(&p, &ev, 5000, 7).unwrap(),
        "same seed, same answer"
    );
    assert_ne!(sim, simulate(&p, &ev, 5000, 8).unwrap());
    // Symmetric ranges: the mean is the plan value (within Monte Carlo error).
    let q = sim.entity("system").unwrap().years[4].remaining_gap;
    assert!((q.mean - q.deterministic).abs() < 1.0, "{q:?}");
    // Ranges on schemes only: the LA has none, so its gap is certain.
    let la = sim.entity("la").unwrap().years[4].remaining_gap;
    assert!(la.p10 == la.p90 && la.p10 == la.deterministic);

    // Zero-width ranges give exactly the deterministic answer.
    let narrow = p
        .modified(|f| {
            for s in &mut f.schemes {
                s.low = None;
                s.high = None;
            }
        })
        .unwrap();
    let nev = evaluate(&narrow);
    let nsim = simulate(&narrow, &nev, 1000, 7).unwrap();
    for e in &nsim.entities {
        let det = nev.entity(&e.id).unwrap();
        for (y, d) in e.years.iter().zip(&det.years) {
            let q = y.remaining_gap;
            assert_eq!(
                (q.p10, q.p50, q.p90),
                (d.remaining_gap, d.remaining_gap, d.remaining_gap)
            );
        }
    }

    // Widening every range widens the P10-P90 interval.
    let wide = p
        .modified(|f| {
            for s in &mut f.schemes {
                if let (Some(l), Some(h)) = (&mut s.low, &mut s.high) {
                    *l -= 5.0;
                    *h += 5.0;
                }
            }
        })
        .unwrap();
    let wsim = simulate(&wide, &evaluate(&wide), 5000, 7).unwrap();
    let w = |s: &trent_finance::Simulation| {
        let q = s.entity("system").unwrap().years[4].remaining_gap;
        q.p90 - q.p10
    };
    assert!(w(&wsim) > w(&sim));
    assert!(simulate(&p, &ev, 0, 1).is_err());
}

#[test]
fn a_scenario_is_compared_side_by_side() {
    let p = plan();
    let sc = p
        .with_scenario_str(
            r#"
[scenario]
name = "Primary care scheme delivers £10m less"
description = "gross saving 62 instead of 72"

[[schemes]]
id = "primary_community"
gross = 62.0
low = 23.3
high = 56.7
"#,
            "less.toml",
        )
        .unwrap();
    let r = trent_finance::build_report(&p, Some(&sc), None, 1).unwrap();
    let s = r.scenario.as_ref().unwrap();
    let change = s
        .evaluation
        .figure("remaining_gap", "system", "2020/21")
        .unwrap()
        - r.plan.figure("remaining_gap", "system", "2020/21").unwrap();
    close("scenario change", change, 10.0, 1e-9);
    let text = r.render(trent_finance::Format::Table);
    assert!(text.contains("Scenario: Primary care scheme delivers £10m less"));
    assert!(text.contains("side by side"));
}

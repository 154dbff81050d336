//! End-to-end linkage tests on small synthetic data (all identities are made up).

use trent_link::compare::{FAMILY, GIVEN};
use trent_link::link::nhs_conflict;
use trent_link::synth::{SynthConfig, feeds};
use trent_link::{
    BlockingRule, Date, LinkConfig, LinkError, LinkRecord, PairKind, Sex, evaluate, link,
};

#[allow(clippy::too_many_arguments)] // a readable one-line fixture per record
fn rec(
    source: &str,
    id: &str,
    nhs: Option<&str>,
    given: &str,
    family: &str,
    dob: (i32, u8, u8),
    sex: Sex,
    pc: &str,
) -> LinkRecord {
    LinkRecord {
        source: source.into(),
        record_id: id.into(),
        nhs_number: nhs.map(str::to_string),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        birth_date: Date::new(dob.0, dob.1, dob.2),
        sex: Some(sex),
        postcode: Some(pc.into()),
    }
}

/// Synthetic background population, so the model has something to learn from.
fn background(people: usize, seed: u64) -> (Vec<LinkRecord>, Vec<String>) {
    feeds(&SynthConfig::new(people, seed))
}

fn small_cfg() -> LinkConfig {
    LinkConfig {
        u_sample_pairs: 200_000,
        ..LinkConfig::default()
    }
}

fn index(records: &[LinkRecord], source: &str, id: &str) -> usize {
    records
        .iter()
        .position(|r| r.source == source && r.record_id == id)
        .expect("record present")
}

#[test]
fn synthetic_feeds_link_with_high_f1_and_deterministically() {
    let (records, truth) = background(20_000, 3);
    let one = link(
        &records,
        &LinkConfig {
            threads: 1,
            ..small_cfg()
        },
    )
    .unwrap();
    let two = link(
        &records,
        &LinkConfig {
            threads: 2,
            ..small_cfg()
        },
    )
    .unwrap();
    assert_eq!(
        one.person_keys, two.person_keys,
        "thread count changed persons"
    );
    assert_eq!(one.links, two.links);
    assert_eq!(one.review, two.review);
    assert_eq!(one.params, two.params);
    let e = evaluate(&one.person_keys, &truth).unwrap();
    assert!(e.f1 > 0.98, "F1 {:.4} ({e:?})", e.f1);
    assert!(e.precision > 0.99, "precision {:.4}", e.precision);
    // the model learnt sensible parameters: agreement is evidence for, disagreement against
    let w = one.params.level_weights();
    assert!(w[GIVEN][1] > 3.0 && w[GIVEN][5] < -3.0, "{w:?}");
    assert!(w[FAMILY][1] > 3.0 && w[FAMILY][4] < -3.0, "{w:?}");
    assert!(one.params.lambda > 0.0 && one.params.lambda < 1e-2);
    // every decision respects the thresholds
    for s in &one.links {
        assert!(s.kind == PairKind::Deterministic || s.probability >= 0.95);
    }
    for s in &one.review {
        if s.kind == PairKind::Uncertain {
            assert!((0.5..0.95).contains(&s.probability));
        }
    }
    // a different seed for the same records gives the same keys for unchanged clusters
    assert_eq!(
        one.person_keys.len(),
        records.len(),
        "one key per input record"
    );
}

#[test]
fn tf_adjustment_makes_a_common_surname_weigh_less() {
    let (mut records, _) = background(5_000, 5);
    // two pairs identical except the surname: one very common, one unique
    let common = "SMITH";
    let n_smith = records
        .iter()
        .filter(|r| r.family_name.as_deref().map(str::to_uppercase).as_deref() == Some(common))
        .count();
    assert!(n_smith > 20, "background has {n_smith} SMITHs");
    records.push(rec(
        "x",
        "s1",
        None,
        "ZEBEDEE",
        common,
        (1971, 3, 4),
        Sex::Male,
        "NG1 1AA",
    ));
    records.push(rec(
        "y",
        "s2",
        None,
        "ZEBEDEE",
        common,
        (1971, 3, 4),
        Sex::Male,
        "DE9 9ZZ",
    ));
    records.push(rec(
        "x",
        "q1",
        None,
        "ZEBEDEE",
        "QUIXBYFORTH",
        (1971, 3, 4),
        Sex::Male,
        "NG1 1AB",
    ));
    records.push(rec(
        "y",
        "q2",
        None,
        "ZEBEDEE",
        "QUIXBYFORTH",
        (1971, 3, 4),
        Sex::Male,
        "DE9 9ZY",
    ));
    let cfg = LinkConfig {
        lower: 0.0,
        ..small_cfg()
    };
    let res = link(&records, &cfg).unwrap();
    let weight = |a: &str, b: &str| {
        let (i, j) = (
            index(&records, "x", a) as u32,
            index(&records, "y", b) as u32,
        );
        res.links
            .iter()
            .chain(&res.review)
            .find(|s| (s.a, s.b) == (i.min(j), i.max(j)))
            .map(|s| s.weight)
            .expect("pair was scored")
    };
    let w_smith = weight("s1", "s2");
    let w_rare = weight("q1", "q2");
    assert!(
        w_rare > w_smith + 3.0,
        "rare {w_rare:.2} should weigh well above SMITH {w_smith:.2}"
    );
    // without TF adjustment the two pairs score the same
    let flat = link(
        &records,
        &LinkConfig {
            tf_adjustment: false,
            ..cfg
        },
    )
    .unwrap();
    let find = |a: &str, b: &str| {
        let (i, j) = (
            index(&records, "x", a) as u32,
            index(&records, "y", b) as u32,
        );
        flat.links
            .iter()
            .chain(&flat.review)
            .find(|s| (s.a, s.b) == (i, j))
            .map(|s| s.weight)
            .unwrap()
    };
    assert!((find("s1", "s2") - find("q1", "q2")).abs() < 1e-9);
}

#[test]
fn same_valid_nhs_number_links_deterministically_unless_demographics_conflict() {
    let (mut records, _) = background(3_000, 9);
    // names spelt differently and a moved postcode: still one person by NHS number
    records.push(rec(
        "gp",
        "d1",
        Some("943 476 5919"),
        "Catherine",
        "Ollerenshaw",
        (1980, 2, 3),
        Sex::Female,
        "NG5 1AA",
    ));
    records.push(rec(
        "sc",
        "d2",
        Some("9434765919"),
        "Kate",
        "Ollerenshaw-Bird",
        (1980, 2, 3),
        Sex::Female,
        "LE3 4BB",
    ));
    // same number, different given name, date of birth and sex: conflict
    records.push(rec(
        "ae",
        "d3",
        Some("9434765919"),
        "Terence",
        "Ollerenshaw",
        (1948, 11, 30),
        Sex::Male,
        "NG5 1AA",
    ));
    // invalid check digit: not used deterministically
    records.push(rec(
        "ae",
        "d4",
        Some("9434765918"),
        "Norbert",
        "Quagmire",
        (1955, 6, 7),
        Sex::Male,
        "S1 1AA",
    ));
    records.push(rec(
        "gp",
        "d5",
        Some("9434765918"),
        "Ferdinand",
        "Umbridge",
        (1966, 1, 9),
        Sex::Male,
        "S9 9ZZ",
    ));
    let res = link(&records, &small_cfg()).unwrap();
    let key = |s: &str, id: &str| res.person_keys[index(&records, s, id)].clone();
    assert_eq!(key("gp", "d1"), key("sc", "d2"));
    assert_ne!(key("gp", "d1"), key("ae", "d3"));
    assert_ne!(key("ae", "d4"), key("gp", "d5"));
    let (i1, i2, i3) = (
        index(&records, "gp", "d1") as u32,
        index(&records, "sc", "d2") as u32,
        index(&records, "ae", "d3") as u32,
    );
    assert!(
        res.links
            .iter()
            .any(|s| (s.a, s.b) == (i1, i2) && s.kind == PairKind::Deterministic)
    );
    assert!(
        res.review
            .iter()
            .any(|s| (s.a, s.b) == (i1, i3) && s.kind == PairKind::NhsConflict)
    );
    assert!(res.stats.normalisation.nhs_bad_check_digit >= 2);
    // the rule itself: two strong disagreements make a conflict, one does not
    assert!(nhs_conflict(&[5, 1, 4, 1, 1, 1]));
    assert!(!nhs_conflict(&[1, 4, 1, 1, 1, 1]));
    assert!(!nhs_conflict(&[0, 0, 4, 0, 1, 1]));
}

#[test]
fn cluster_guard_stops_chaining_across_nhs_numbers() {
    let (mut records, _) = background(3_000, 11);
    // A and C have different valid NHS numbers; B (no number) is a near-copy of both
    let (a_nhs, c_nhs) = ("9000000009", "9000000017");
    assert!(trent_link::normalise::nhs_number(a_nhs).is_ok());
    assert!(trent_link::normalise::nhs_number(c_nhs).is_ok());
    let (a, c) = (Some(a_nhs), Some(c_nhs));
    records.push(rec(
        "gp",
        "a",
        a,
        "Hephzibah",
        "Thistlewood",
        (1990, 4, 5),
        Sex::Female,
        "NG2 3CD",
    ));
    records.push(rec(
        "sc",
        "b",
        None,
        "Hephzibah",
        "Thistlewood",
        (1990, 4, 5),
        Sex::Female,
        "NG2 3CD",
    ));
    records.push(rec(
        "ae",
        "c",
        c,
        "Hephzibah",
        "Thistlewood",
        (1990, 4, 5),
        Sex::Female,
        "NG2 3CD",
    ));
    let res = link(&records, &small_cfg()).unwrap();
    let key = |s: &str, id: &str| res.person_keys[index(&records, s, id)].clone();
    assert_ne!(key("gp", "a"), key("ae", "c"));
    assert!(key("sc", "b") == key("gp", "a") || key("sc", "b") == key("ae", "c"));
    assert!(res.review.iter().any(|s| s.kind == PairKind::ClusterGuard));
}

#[test]
fn thresholds_route_pairs_and_bad_config_is_an_error() {
    let (records, _) = background(3_000, 13);
    let strict = link(
        &records,
        &LinkConfig {
            upper: 0.999_999,
            lower: 0.01,
            ..small_cfg()
        },
    )
    .unwrap();
    let loose = link(
        &records,
        &LinkConfig {
            upper: 0.5,
            lower: 0.5,
            ..small_cfg()
        },
    )
    .unwrap();
    assert!(strict.stats.probabilistic_links < loose.stats.probabilistic_links);
    assert!(strict.stats.review_uncertain > loose.stats.review_uncertain);
    assert_eq!(
        loose.stats.review_uncertain, 0,
        "no band between equal thresholds"
    );
    for s in &strict.review {
        if s.kind == PairKind::Uncertain {
            assert!(s.probability >= 0.01 && s.probability < 0.999_999);
        }
    }
    // review queue is sorted, most likely first
    assert!(
        strict
            .review
            .windows(2)
            .all(|w| w[0].probability >= w[1].probability)
    );
    let bad = LinkConfig {
        upper: 0.4,
        lower: 0.6,
        ..small_cfg()
    };
    assert!(matches!(link(&records, &bad), Err(LinkError::Config(_))));
    let no_rules = LinkConfig {
        rules: vec![],
        ..small_cfg()
    };
    assert!(matches!(
        link(&records, &no_rules),
        Err(LinkError::Config(_))
    ));
    let mut dup = records.clone();
    dup.push(records[7].clone());
    let e = link(&dup, &small_cfg()).unwrap_err();
    assert!(matches!(e, LinkError::DuplicateRecord { index, .. } if index == records.len()));
    assert_eq!(
        BlockingRule::parse("birth_date"),
        Some(BlockingRule::BirthDate)
    );
}

#[test]
fn empty_and_tiny_inputs_work() {
    let res = link(&[], &small_cfg()).unwrap();
    assert!(res.person_keys.is_empty());
    let one = vec![rec(
        "gp",
        "1",
        None,
        "A",
        "B",
        (2000, 1, 1),
        Sex::Male,
        "NG1 1AA",
    )];
    let res = link(&one, &small_cfg()).unwrap();
    assert_eq!(res.person_keys.len(), 1);
    assert!(res.person_keys[0].starts_with('P'));
}

/// Linking in two batches — the second against the settled persons of the first — finds
/// the same people as linking everything at once, and never compares two known records.
#[test]
fn incremental_linkage_matches_linking_all_at_once() {
    let (records, truth) = background(20_000, 5);
    let cfg = LinkConfig {
        threads: 2,
        ..small_cfg()
    };
    let all = link(&records, &cfg).unwrap();
    let e_all = evaluate(&all.person_keys, &truth).unwrap();
    // first batch: two thirds of the records, linked on their own
    let cut = records.len() * 2 / 3;
    let first = link(&records[..cut], &cfg).unwrap();
    let mut number = std::collections::HashMap::new();
    let known: Vec<u32> = first
        .person_keys
        .iter()
        .map(|k| {
            let n = number.len() as u32;
            *number.entry(k.clone()).or_insert(n)
        })
        .collect();
    let inc = trent_link::link_incremental(&records, &known, &cfg).unwrap();
    assert_eq!(inc.person_keys.len(), records.len());
    for s in inc.links.iter().chain(&inc.review) {
        assert!(
            s.b as usize >= cut,
            "a pair of two known records was compared"
        );
    }
    assert!(inc.stats.candidate_pairs < all.stats.candidate_pairs);
    // known persons stay together and apart as the first batch left them, unless a new
    // record joined two of them
    for i in 0..cut {
        for j in [i + 1, i + 7, i + 101] {
            if j < cut && known[i] == known[j] {
                assert_eq!(inc.person_keys[i], inc.person_keys[j]);
            }
        }
    }
    let e_inc = evaluate(&inc.person_keys, &truth).unwrap();
    assert!(
        e_inc.f1 > e_all.f1 - 0.005,
        "incremental F1 {:.4} vs all at once {:.4}",
        e_inc.f1,
        e_all.f1
    );
    assert!(e_inc.precision > 0.99, "precision {:.4}", e_inc.precision);
    // no known records: the same as `link`
    let none = trent_link::link_incremental(&records, &[], &cfg).unwrap();
    assert_eq!(none.person_keys, all.person_keys);
    assert_eq!(none.params, all.params);
    // more known persons than records is a configuration error
    assert!(trent_link::link_incremental(&records[..3], &[0, 1, 2, 3], &cfg).is_err());
}

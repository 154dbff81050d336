//! Hand-worked cases from the published definitions, the hierarchy rules, code
//! normalisation, and the cross-check against comorbidipy 0.5.0.

use trent_indices::batch::score_icd10_rows;
use trent_indices::charlson::{self, CharlsonMapping as M, CharlsonWeights as W};
use trent_indices::code::{CodeSystem as S, Event, normalise_icd10};
use trent_indices::{Index, IndexConfig, cms, efi, elixhauser, hfrs};

fn ch(codes: &[&str], m: M, w: W) -> i32 {
    charlson::charlson(codes.iter().copied(), m, w).score
}

#[test]
fn charlson_chf_metastatic_diabetes_with_complications() {
    // CHF (I50.0) + metastatic (C78.0) + diabetes with renal complications (E11.2) + lung
    // cancer (C34.1). Charlson 1987: CHF 1 + metastatic 6 + diabetes w/ complications 2;
    // the primary tumour (2) is superseded by metastatic disease -> 9.
    let codes = ["I50.0", "C78.0", "E11.2", "C34.1"];
    assert_eq!(ch(&codes, M::Quan, W::Charlson1987), 9);
    // Quan 2011: CHF 2 + metastatic 6 + diabetes with chronic complications 1 -> 9.
    assert_eq!(ch(&codes, M::Quan, W::Quan2011), 9);
    let r = charlson::charlson(codes, M::Quan, W::Charlson1987);
    assert_eq!(r.present(), vec!["chf", "diabwc", "canc", "metacanc"]);
}

#[test]
fn charlson_hierarchy_rules() {
    // mild + moderate/severe liver: only severe counts (3, not 1 + 3)
    assert_eq!(ch(&["K70.3", "K72.1"], M::Quan, W::Charlson1987), 3);
    assert_eq!(ch(&["K70.3"], M::Quan, W::Charlson1987), 1);
    // diabetes without + with complications: only with (2, not 1 + 2)
    assert_eq!(ch(&["E11.9", "E11.4"], M::Quan, W::Charlson1987), 2);
    // any malignancy + metastatic: only metastatic
    assert_eq!(ch(&["C50.9", "C79.5"], M::Quan, W::Charlson1987), 6);
    // Quan 2011 maximum is 24 (Quan 2011, "maximum score 24")
    let all: Vec<&str> = vec![
        "I21", "I50", "I70", "I63", "F00", "J44", "M05", "K25", "K70.3", "E11.9", "E11.2", "G81",
        "N18", "C50", "K72.1", "C78", "B20",
    ];
    assert_eq!(ch(&all, M::Quan, W::Quan2011), 24);
    // Charlson 1987 maximum with the hierarchy: 33 - 1 - 1 - 2 = 29
    assert_eq!(ch(&all, M::Quan, W::Charlson1987), 29);
    // SHMI weights: no hierarchy; diabetes 3 + complications -1 = 2; complications alone
    // is -1, floored to 0
    assert_eq!(ch(&["E11.9", "E11.2"], M::Shmi, W::Shmi), 2);
    assert_eq!(ch(&["E11.2"], M::Shmi, W::Shmi), 0);
}

#[test]
fn dotted_undotted_case_and_sus_marks_are_equivalent() {
    for (a, b) in [
        ("I50.0", "I500"),
        ("i500", "I500"),
        ("I10X", "I10"),
        ("I10-", "I10"),
        ("A17.0D", "A170"),
        ("G01XA", "G01"),
        (" e11.2 ", "E112"),
        ("M06.90", "M0690"),
    ] {
        assert_eq!(normalise_icd10(a).unwrap(), b, "{a}");
    }
    let a = charlson::charlson(["I50.0", "c78.0", "E11.2X"], M::Quan, W::Quan2011);
    let b = charlson::charlson(["I500", "C780", "E112"], M::Quan, W::Quan2011);
    assert_eq!(a, b);
}

#[test]
fn malformed_codes_are_counted_not_scored() {
    let r = charlson::charlson(
        ["I50.0", "150.0", "", "I5", "XYZ", "I50/1"],
        M::Quan,
        W::Charlson1987,
    );
    assert_eq!(r.score, 1);
    assert_eq!(r.malformed.len(), 5);
    assert_eq!(r.malformed[0].code, "150.0");
    assert_eq!(r.malformed[1].reason, "empty code");
}

#[test]
fn elixhauser_van_walraven() {
    // CHF 7 + metastatic 12 (solid tumour 4 superseded) + complicated diabetes 0
    let r = elixhauser::elixhauser(["I50.0", "C78.0", "E11.2", "C34.1"]);
    assert_eq!(r.score, 19);
    // drug abuse -7, obesity -4, depression -3: the score can be negative
    assert_eq!(
        elixhauser::elixhauser(["F11.2", "E66.9", "F32.9"]).score,
        -14
    );
    // I11.0 is both CHF and complicated hypertension in Quan's Table 2
    let r = elixhauser::elixhauser(["I11.0"]);
    assert!(r.conditions[0] && r.conditions[6]);
    assert_eq!(r.score, 7);
}

#[test]
fn hfrs_worked_example_and_bands() {
    // F00 7.1 + G81 4.4 + W19 3.2 + R29 3.6 + N39 3.2 + S72 1.4 = 22.9 (Gilbert 2018
    // appendix points); each category counts once however many codes fall in it.
    let r = hfrs::hfrs(["F00.1", "G81.9", "W19", "R29.6", "N39.0", "S72.0", "S72.1"]);
    assert_eq!(r.score, 22.9);
    assert_eq!(r.band, "high");
    assert_eq!(hfrs::table().len(), 109);
    assert_eq!(hfrs::band(4.9), "low");
    assert_eq!(hfrs::band(5.0), "intermediate");
    assert_eq!(hfrs::band(15.0), "intermediate");
    assert_eq!(hfrs::band(15.1), "high");
    // R54 2.2 + Z74 1.1 + L89 1.7 + A41 1.6 + N17 1.8 + E86 2.3 = 10.7
    let r = hfrs::hfrs(["R54", "Z74.1", "L89.1", "A41.9", "N17.9", "E86"]);
    assert_eq!((r.score, r.band), (10.7, "intermediate"));
}

#[test]
fn efi_bands_at_the_boundaries() {
    // 0.12 * 36 = 4.32: 4 deficits (0.111) fit, 5 (0.139) mild; 8 (0.222) mild, 9 (0.25)
    // moderate; 12 (0.333) moderate, 13 (0.361) severe.
    let expect = [
        (0, "fit"),
        (4, "fit"),
        (5, "mild"),
        (8, "mild"),
        (9, "moderate"),
        (12, "moderate"),
        (13, "severe"),
        (36, "severe"),
    ];
    for (n, b) in expect {
        assert_eq!(efi::band(n), b, "{n}");
    }
}

#[test]
fn efi_counts_deficits_from_the_synthetic_gp_record() {
    // SNOMED concepts trent-model's generator writes (codes.rs CONDITIONS)
    let ev = [
        Event::new(S::Snomed, "38341003"),  // hypertension
        Event::new(S::Snomed, "44054006"),  // type 2 diabetes
        Event::new(S::Snomed, "53741008"),  // CHD -> ischaemic heart disease
        Event::new(S::Snomed, "84114007"),  // heart failure
        Event::new(S::Snomed, "49436004"),  // AF
        Event::new(S::Snomed, "396275006"), // osteoarthritis -> arthritis
        Event::new(S::Snomed, "69896004"),  // RA -> arthritis (same deficit)
        Event::new(S::Icd10, "W19"),        // fall (hospital record)
        Event::new(S::Snomed, "35489007"),  // depression: not an eFI deficit
    ];
    let r = efi::efi(&ev);
    assert_eq!(r.deficits, 7);
    assert_eq!(r.band, "mild");
    assert!((r.score - 7.0 / 36.0).abs() < 1e-12);
}

#[test]
fn efi_polypharmacy_is_five_distinct_medicines_in_a_year() {
    let four = [
        "0206020A0AAAAAA",
        "0205051R0",
        "0601022B0",
        "0212000B0",
        "0206020A0",
    ];
    let ev: Vec<Event> = four.iter().map(|c| Event::dated(S::Bnf, c, 30)).collect();
    assert!(
        !efi::efi(&ev).flags[efi::POLYPHARMACY],
        "amlodipine twice is one medicine"
    );
    let mut ev5 = ev.clone();
    ev5.push(Event::dated(S::Bnf, "0204000H0", 400)); // outside the year
    assert!(!efi::efi(&ev5).flags[efi::POLYPHARMACY]);
    ev5.push(Event::dated(S::Bnf, "0204000H0", 200));
    assert!(efi::efi(&ev5).flags[efi::POLYPHARMACY]);
}

#[test]
fn cms_general_and_mortality_weights() {
    let ev = [
        Event::new(S::Snomed, "38341003"),          // hypertension 0.08
        Event::new(S::Snomed, "52448006"),          // dementia 2.50
        Event::dated(S::Snomed, "363346000", 3000), // cancer 8 years ago: not counted
        Event::dated(S::Snomed, "195967001", 2000), // asthma, not treated: not counted
    ];
    let r = cms::cms(&ev, cms::CmsWeights::General);
    assert_eq!(r.score, 2.58);
    assert_eq!(cms::cms(&ev, cms::CmsWeights::Mortality).score, 122.33);
    // asthma counts once treated in the last year; paracetamol x4 makes a painful condition
    let mut ev2 = ev.to_vec();
    ev2.push(Event::dated(S::Bnf, "0301011R0", 100));
    for d in [10, 40, 70, 100] {
        ev2.push(Event::dated(S::Bnf, "0407010H0", d));
    }
    let r = cms::cms(&ev2, cms::CmsWeights::General);
    assert_eq!(r.score, 2.58 + 0.19 + 0.92);
}

#[test]
fn batch_keeps_first_appearance_order_and_counts_malformed() {
    let rows = [
        ("b", "I50"),
        ("a", "C78"),
        ("b", "bad!"),
        ("c", "I10"),
        ("a", "C34"),
    ];
    let out = score_icd10_rows(Index::Charlson, &IndexConfig::default(), rows);
    let ids: Vec<&str> = out.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["b", "a", "c"]);
    assert_eq!(out[0].malformed.len(), 1);
    assert_eq!(out[1].score, 6.0);
    assert_eq!(out[2].score, 0.0);
}

/// comorbidipy 0.5.0 on `tests/fixtures/episodes.csv` (bench/indices/run.sh, pandas 1.5.3,
/// codes given without dots and SUS filler so both tools parse the same strings).
/// Differences are expected where noted and documented in docs/indices.md.
#[test]
fn cross_check_against_comorbidipy() {
    let text = include_str!("fixtures/episodes.csv");
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .collect();
    let run = |index, cfg: IndexConfig| -> Vec<f64> {
        score_icd10_rows(index, &cfg, rows.iter().copied())
            .iter()
            .map(|p| p.score)
            .collect()
    };
    let cfg = |m, w| IndexConfig {
        charlson_mapping: m,
        charlson_weights: w,
        ..IndexConfig::default()
    };
    // comorbidipy: charlson / quan mapping / charlson weights
    assert_eq!(
        run(Index::Charlson, cfg(M::Quan, W::Charlson1987)),
        [9.0, 4.0, 3.0, 7.0, 8.0, 1.0, 13.0, 0.0]
    );
    // comorbidipy quan weights: 9 4 4 3 4 2 12 0. p05 differs: comorbidipy weighs AIDS/HIV
    // 2, Quan 2011 Table 3 weighs it 4 (trent: 4 + lymphoma 2 = 6).
    assert_eq!(
        run(Index::Charlson, cfg(M::Quan, W::Quan2011)),
        [9.0, 4.0, 4.0, 3.0, 6.0, 2.0, 12.0, 0.0]
    );
    // comorbidipy shmi mapping + shmi weights with assign0=False: 34 29 15 38 10 0 7 0
    assert_eq!(
        run(Index::Charlson, cfg(M::Shmi, W::Shmi)),
        [34.0, 29.0, 15.0, 38.0, 10.0, 0.0, 7.0, 0.0]
    );
    // comorbidipy elixhauser vw: 19 11 7 10 3 16 29 5. comorbidipy assigns each code to
    // one condition only; Quan's Table 2 lists some codes under two. p06: I11.0 is CHF
    // (7) and complicated hypertension (0) -> trent 23 (comorbidipy keeps hypertension
    // only: 16). p07: G11.4 is paralysis (7) and other neurological disorders (6, G10-G13)
    // -> trent 36 (comorbidipy keeps the neurological one only: 29).
    let elix = run(Index::Elixhauser, IndexConfig::default());
    assert_eq!(elix, [19.0, 11.0, 7.0, 10.0, 3.0, 23.0, 36.0, 5.0]);
    let p07 = elixhauser::elixhauser(["G11.4"]);
    assert!(p07.conditions[7] && p07.conditions[8]);
    // comorbidipy hfrs: 0 0 22.9 1.4 2.8 3.4 2 10.7
    assert_eq!(
        run(Index::Hfrs, IndexConfig::default()),
        [0.0, 0.0, 22.9, 1.4, 2.8, 3.4, 2.0, 10.7]
    );
}

#[test]
fn shipped_code_lists_parse_with_the_published_condition_counts() {
    assert_eq!(charlson::codelist(M::Quan).conditions.len(), 17);
    assert_eq!(charlson::codelist(M::Shmi).conditions.len(), 17);
    assert_eq!(elixhauser::codelist().conditions.len(), 31);
    assert_eq!(efi::DEFICITS.len(), 36);
    assert_eq!(cms::CONDITIONS.len(), 20);
    // ranges expand inclusively: I42.5-I42.9 is five subcategories of CHF
    let chf = &charlson::codelist(M::Quan).conditions[1];
    for c in ["I425", "I426", "I427", "I428", "I429"] {
        assert!(chf.codes.iter().any(|x| x == c), "{c}");
    }
    assert!(!chf.codes.iter().any(|x| x == "I424"));
    // keys line up with the weight tables
    for (i, c) in charlson::codelist(M::Quan).conditions.iter().enumerate() {
        assert_eq!(c.key, charlson::KEYS[i]);
        assert_eq!(charlson::codelist(M::Shmi).conditions[i].key, c.key);
    }
    for (i, c) in elixhauser::codelist().conditions.iter().enumerate() {
        assert_eq!(c.key, elixhauser::KEYS[i]);
    }
}

/// eFI and CMS look codes up in an index built once; every code either list names (and
/// longer ICD-10 codes under each prefix, and C44 under cancer's C) gives the conditions
/// a scan of every list in turn gives.
#[test]
fn efi_and_cms_lookups_equal_scanning_every_list() {
    let mut codes: Vec<(S, String)> = vec![(S::Icd10, "C44".into()), (S::Icd10, "C449".into())];
    let lists = efi::DEFICITS
        .iter()
        .map(|d| (d.snomed, d.icd10))
        .chain(cms::CONDITIONS.iter().map(|c| (c.snomed, c.icd10)));
    for (sct, icd) in lists {
        codes.extend(sct.iter().map(|c| (S::Snomed, c.to_string())));
        for p in icd {
            codes.push((S::Icd10, p.to_string()));
            codes.push((S::Icd10, format!("{p}9")));
            codes.push((S::Icd10, p[..p.len() - 1].to_string()));
        }
    }
    let mut checked = 0;
    for (sys, raw) in &codes {
        let Ok(code) = sys.normalise(raw) else {
            continue;
        };
        checked += 1;
        let ev = [Event::new(*sys, raw)];
        let want: Vec<bool> = efi::DEFICITS
            .iter()
            .map(|d| match sys {
                S::Snomed => d.snomed.contains(&code.as_str()),
                _ => d.icd10.iter().any(|p| code.starts_with(p)),
            })
            .collect();
        assert_eq!(efi::efi(&ev).flags, want, "eFI, {raw}");
        // with an asthma and an epilepsy medicine, so those conditions count when coded
        let ev = [
            Event::new(*sys, raw),
            Event::dated(S::Bnf, "0301011R0", 10),
            Event::dated(S::Bnf, "0408010A0", 10),
        ];
        let got = cms::cms(&ev, cms::CmsWeights::General).conditions;
        for (i, c) in cms::CONDITIONS.iter().enumerate() {
            if matches!(c.key, "constipation" | "painful_condition") {
                continue; // medicines only
            }
            let hit = match sys {
                S::Snomed => c.snomed.contains(&code.as_str()),
                _ => {
                    c.icd10.iter().any(|p| code.starts_with(p))
                        && !(c.key == "cancer" && code.starts_with("C44"))
                }
            };
            assert_eq!(got[i], hit, "CMS {}, {raw}", c.key);
        }
    }
    assert!(checked > 100, "{checked}");
}

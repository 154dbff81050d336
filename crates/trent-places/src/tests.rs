use super::*;

fn notts() -> &'static str {
    BUNDLED[0].1
}

#[test]
fn bundled_nottinghamshire_loads_and_adds_up() {
    let a = Area::bundled("nottinghamshire").unwrap();
    assert_eq!(a.area.population, 1_044_934);
    assert_eq!(a.ccgs.len(), 6);
    assert_eq!(a.delivery_units.len(), 2);
    let lsoa_total: u64 = a.lsoas.iter().map(|l| l.population).sum();
    assert_eq!(lsoa_total, 1_044_934);
    let list_total: u64 = a.practices.iter().map(|p| p.list_size).sum();
    assert_eq!(list_total, 1_044_934);
    // more than a quarter in the most deprived fifth of England
    assert!(
        a.most_deprived_fifth_share() > 0.25,
        "{}",
        a.most_deprived_fifth_share()
    );
    assert_eq!(a.config_hash.len(), 64);
    for p in ["RX1", "RK5", "RHA", "CITYCARE", "CIRCLE", "RX9", "NEMS"] {
        assert!(a.providers.iter().any(|x| x.code == p), "{p}");
    }
}

#[test]
fn unknown_area_is_named() {
    let e = Area::bundled("atlantis").unwrap_err().to_string();
    assert!(
        e.contains("atlantis") && e.contains("nottinghamshire"),
        "{e}"
    );
}

#[test]
fn practice_without_parent_is_an_error_naming_the_key() {
    let text = notts().replacen("hub = \"H04K11\"", "hub = \"NOPE\"", 1);
    let e = Area::parse(&text, "x.toml").unwrap_err().to_string();
    assert!(e.starts_with("x.toml: practices["), "{e}");
    assert!(e.contains(".hub") && e.contains("NOPE"), "{e}");
}

#[test]
fn populations_that_do_not_add_up_are_an_error() {
    let text = notts().replacen("population = 1044934", "population = 1044935", 1);
    let e = Area::parse(&text, "x.toml").unwrap_err().to_string();
    assert!(
        e.contains("ccgs[].population") && e.contains("1044935"),
        "{e}"
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let e = Area::parse("[area\nid=1", "broken.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("broken.toml:"), "{e}");
    assert!(e.contains("line") || e.contains('1'), "{e}");
}

#[test]
fn bad_decile_and_unknown_measure() {
    let text = notts().replacen("imd_decile = 1,", "imd_decile = 11,", 1);
    let e = Area::parse(&text, "x.toml").unwrap_err().to_string();
    assert!(e.contains("imd_decile") && e.contains("11"), "{e}");
    let text = notts().replacen(
        "measure = \"smoking_prevalence\"",
        "measure = \"happiness\"",
        1,
    );
    let e = Area::parse(&text, "x.toml").unwrap_err().to_string();
    assert!(
        e.contains("targets[0].measure") && e.contains("happiness"),
        "{e}"
    );
}

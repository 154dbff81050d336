//! `score_file` on CSV files: output shape, order, malformed-code reporting and errors
//! that name the file, line and column.

use std::path::PathBuf;
use trent_indices::{Index, ScoreError, ScoreOptions, score_file};

fn tmp(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trent-indices-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn charlson_file_round_trip() {
    let input = tmp(
        "charlson.csv",
        "patient,diag\nz9,I50.0\na1,C78.0\nz9,E11.2\nz9,1I50\na1,C34.1\nq,\n",
    );
    let out = input.with_extension("out.csv");
    let opts = ScoreOptions {
        input: input.clone(),
        output: Some(out.clone()),
        id_col: "patient".into(),
        code_col: "diag".into(),
        ..ScoreOptions::default()
    };
    let r = score_file(Index::Charlson, &opts).unwrap();
    assert_eq!(r.rows, 6);
    assert_eq!(r.malformed, 2);
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,score,ami,chf,pvd,cevd,dementia,copd,rheumd,pud,mld,diab,diabwc,hp,rend,canc,msld,metacanc,aids,malformed_codes"
    );
    assert_eq!(lines[1], "z9,3,0,1,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,1");
    assert_eq!(lines[2], "a1,6,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,1,0,0");
    assert_eq!(lines[3], "q,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1");
    let shown = r.to_string();
    assert!(shown.contains("2 malformed codes"), "{shown}");
    assert!(
        shown.contains(&format!("{}:5: id z9: \"1I50\"", input.display())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}:7: id q: \"\": empty code", input.display())),
        "{shown}"
    );
}

#[test]
fn shmi_mapping_defaults_to_shmi_weights() {
    let input = tmp("shmi.csv", "id,code\n1,I50\n1,F03\n");
    let opts = ScoreOptions {
        input,
        mapping: Some("shmi".into()),
        ..ScoreOptions::default()
    };
    let r = score_file(Index::Charlson, &opts).unwrap();
    assert_eq!(r.people[0].score, 27.0); // CHF 13 + dementia 14
}

#[test]
fn hfrs_file_has_band_and_109_columns() {
    let input = tmp("hfrs.csv", "id,code\nx,F00.1\nx,G81.9\n");
    let r = score_file(
        Index::Hfrs,
        &ScoreOptions {
            input,
            ..ScoreOptions::default()
        },
    )
    .unwrap();
    let csv = r.to_csv();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 2 + 1 + 109 + 1);
    assert_eq!(&header[..4], ["id", "score", "band", "F00"]);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("x,11.5,intermediate,1,1,")
    );
}

#[test]
fn efi_file_needs_a_system_column_and_reads_days() {
    let input = tmp(
        "efi.csv",
        "id,system,code,days\n1,snomed,38341003,\n1,icd10,W19,10\n1,bnf,0206020A0,1\n1,snomed,abc,\n",
    );
    let err = score_file(
        Index::Efi,
        &ScoreOptions {
            input: input.clone(),
            ..ScoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--system-col"), "{err}");
    let opts = ScoreOptions {
        input,
        system_col: Some("system".into()),
        days_col: Some("days".into()),
        ..ScoreOptions::default()
    };
    let r = score_file(Index::Efi, &opts).unwrap();
    assert_eq!(r.people[0].score, 2.0 / 36.0);
    assert_eq!(r.malformed, 1);
    assert!(
        r.to_csv()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("1,0.0556,fit,")
    );
}

#[test]
fn missing_column_names_file_and_column() {
    let input = tmp("missing.csv", "person,code\n1,I50\n");
    let err = score_file(
        Index::Charlson,
        &ScoreOptions {
            input: input.clone(),
            ..ScoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ScoreError::MissingColumn { .. }));
    let s = err.to_string();
    assert!(
        s.contains(&input.display().to_string())
            && s.contains("\"id\"")
            && s.contains("person, code"),
        "{s}"
    );
}

#[test]
fn bad_rows_and_options_are_errors_with_lines() {
    let input = tmp("bad.csv", "id,code\n1,I50\n,I10\n");
    let s = score_file(
        Index::Charlson,
        &ScoreOptions {
            input,
            ..ScoreOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(s.contains("bad.csv:3") && s.contains("empty id"), "{s}");
    let input = tmp("ragged.csv", "id,code\n1,I50,extra\n");
    let s = score_file(
        Index::Charlson,
        &ScoreOptions {
            input,
            ..ScoreOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(s.contains("ragged.csv:2"), "{s}");
    let input = tmp("ok.csv", "id,code\n1,I50\n");
    let e = score_file(
        Index::Elixhauser,
        &ScoreOptions {
            input: input.clone(),
            weights: Some("charlson".into()),
            ..ScoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--weights"), "{e}");
    let e = score_file(
        Index::Charlson,
        &ScoreOptions {
            input: input.with_file_name("nope.csv"),
            ..ScoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, ScoreError::Io { .. }) && e.to_string().contains("nope.csv"),
        "{e}"
    );
}

//! The binary end to end: the README's main job, the lake commands, user-facing errors.

use std::process::Command;

fn trent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trent"))
}

#[test]
fn up_builds_a_lake_then_lake_and_query_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = trent()
        .args([
            "--data",
            data.to_str().unwrap(),
            "up",
            "--scale",
            "0.005",
            "--no-serve",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1044934") && stdout.contains("Mid Nottinghamshire"),
        "{stdout}"
    );
    assert!(
        stdout.contains("apc") && stdout.contains("most deprived fifth"),
        "{stdout}"
    );
    let out = trent()
        .args(["lake"])
        .env("TRENT_DATA", &data)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && s.contains("activity") && s.contains("identity vault"),
        "{s}"
    );
    let out = trent()
        .args([
            "--data",
            data.to_str().unwrap(),
            "query",
            "select count(*) as n from person",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // DataFusion's settings come from the environment; a bad value is a clear error
    let q = |var: &str, val: &str| {
        trent()
            .args([
                "--data",
                data.to_str().unwrap(),
                "query",
                "select count(*) as n from person",
            ])
            .env(var, val)
            .output()
            .unwrap()
    };
    let out = q("DATAFUSION_EXECUTION_BATCH_SIZE", "1024");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = q("DATAFUSION_EXECUTION_BATCH_SIZE", "lots");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("DATAFUSION_") && err.contains("batch_size"),
        "{err}"
    );
    let out = trent()
        .args(["--data", data.to_str().unwrap(), "lake", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no table \"nope\""));
}

#[test]
fn user_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let cases: &[(&[&str], &str)] = &[
        (
            &["synth", "--area", "atlantis"],
            "unknown area \"atlantis\"",
        ),
        (&["synth", "--scale", "0"], "--scale must be greater than 0"),
        (&["synth", "--start", "2014-13-01"], "--start"),
        (&["lake"], "no lake here"),
    ];
    for (args, want) in cases {
        let o = trent()
            .args(*args)
            .args(["--out", out.to_str().unwrap()])
            .env("TRENT_DATA", &out)
            .output();
        let o = match o {
            Ok(o)
                if o.status.code() == Some(2)
                    && String::from_utf8_lossy(&o.stderr).contains("unexpected argument") =>
            {
                trent()
                    .args(*args)
                    .env("TRENT_DATA", &out)
                    .output()
                    .unwrap()
            }
            o => o.unwrap(),
        };
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!out.exists(), "errors wrote nothing");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[area]\nid = \"x\"\n").unwrap();
    let o = trent()
        .args([
            "synth",
            "--area-file",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn docs_schema_is_generated_from_the_code() {
    let out = trent().arg("schema").output().unwrap();
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md"))
            .unwrap();
    assert!(
        generated == committed,
        "docs/schema.md is stale: run `cargo run --release -- schema > docs/schema.md`"
    );
}

#[test]
fn finance_reproduces_the_plan_from_the_bundled_file_and_names_bad_input() {
    let out = trent().args(["finance"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("628.0"), "{text}");
    // JSON output parses, and Monte Carlo gives ordered percentiles
    let out = trent()
        .args(["finance", "--format", "json", "--simulate", "500"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_object());
    assert!(String::from_utf8_lossy(&out.stdout).contains("p90"));
    // a plan with an unknown key is refused, naming the file and the key
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plans/nottinghamshire-2016.toml"),
    )
    .unwrap();
    std::fs::write(&bad, format!("surprise_key = 1\n{text}")).unwrap();
    let out = trent()
        .args(["finance", "--plan", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("surprise_key"),
        "{err}"
    );
}

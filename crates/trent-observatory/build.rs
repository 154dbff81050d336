//! Compile the bundled indicator catalogue (`config/indicators/*.toml` and the imported
//! CSVs beside it) into the binary, so `trent indicators` works from any directory.
//!
//! Paths are written relative to the package (`rerun-if-changed`) and to
//! `CARGO_MANIFEST_DIR` (`include_str!`), never as absolute paths: Cargo shares build
//! artefacts between checkouts of the same workspace in one target directory, and an
//! absolute path would tie the artefact to whichever checkout built it first. A missing or
//! empty catalogue is a build error, not an empty catalogue.
use std::io::Write;
use std::path::Path;

const REL: &str = "../../config/indicators";

fn list(dir: &Path, ext: &str) -> Vec<String> {
    let rd = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the indicator catalogue {}: {e}", dir.display()));
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    names.sort();
    names
}

fn write(out: &str, sub: &str, names: &[String], key_prefix: &str) {
    let path = Path::new(&std::env::var("OUT_DIR").unwrap()).join(out);
    let mut f = std::fs::File::create(path).unwrap();
    write!(f, "[").unwrap();
    for n in names {
        println!("cargo:rerun-if-changed={REL}{sub}/{n}");
        write!(
            f,
            "({:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
            format!("{key_prefix}{n}"),
            format!("/{REL}{sub}/{n}")
        )
        .unwrap();
    }
    write!(f, "]").unwrap();
}

fn main() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(REL);
    println!("cargo:rerun-if-changed={REL}");
    println!("cargo:rerun-if-changed={REL}/imported");
    let tomls = list(&dir, ".toml");
    assert!(
        !tomls.is_empty(),
        "the indicator catalogue {} holds no .toml definitions",
        dir.display()
    );
    write("bundled.rs", "", &tomls, "");
    let csvs = list(&dir.join("imported"), ".csv");
    write("bundled_files.rs", "/imported", &csvs, "imported/");
}

//! Compile the bundled indicator catalogue (`config/indicators/*.toml`) into the binary,
//! so `trent indicators` works from any directory.
use std::io::Write;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/indicators");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    let mut f = std::fs::File::create(out).unwrap();
    write!(f, "[").unwrap();
    for p in &files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_str().unwrap();
        write!(
            f,
            "({name:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    write!(f, "]").unwrap();
    let imp = dir.join("imported");
    println!("cargo:rerun-if-changed={}", imp.display());
    let mut csvs: Vec<_> = std::fs::read_dir(&imp)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect()
        })
        .unwrap_or_default();
    csvs.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled_files.rs");
    let mut f = std::fs::File::create(out).unwrap();
    write!(f, "[").unwrap();
    for p in &csvs {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = format!("imported/{}", p.file_name().unwrap().to_str().unwrap());
        write!(
            f,
            "({name:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    write!(f, "]").unwrap();
}

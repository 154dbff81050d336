//! Lake writer and reader: catalog, atomic publish, kill safety, refusal of foreign dirs.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use trent_lake::{Catalog, Lake, LakeError, LakeWriter, TableInfo};
use trent_model::schema::ORGANISATION;

fn org_batch(codes: &[&str]) -> RecordBatch {
    let n = codes.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(codes.to_vec())),
        Arc::new(StringArray::from(vec!["x"; n])),
        Arc::new(StringArray::from(vec!["practice"; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(Int64Array::from(vec![Some(1); n])),
    ];
    RecordBatch::try_new(ORGANISATION.schema(), cols).unwrap()
}

fn write_gen(root: &std::path::Path, codes: &[&str], run: &str) {
    let w = LakeWriter::create(root).unwrap();
    let mut p = w.part(&ORGANISATION, 0).unwrap();
    p.write(&org_batch(codes)).unwrap();
    let (file, rows) = p.finish().unwrap();
    let cat = Catalog {
        format: 1,
        run_id: run.into(),
        run: serde_json::json!({}),
        config_hash: "h".into(),
        area: "test".into(),
        span_start: "2014-04-01".into(),
        span_end: "2015-03-31".into(),
        written_by: "test".into(),
        tables: vec![TableInfo::new(&ORGANISATION, rows, vec![file], run)],
        vault_rows: 0,
        batches: Vec::new(),
    };
    w.commit(&cat).unwrap();
}

async fn count(root: &std::path::Path) -> i64 {
    let lake = Lake::open(root).unwrap();
    let ctx = lake.session().await.unwrap();
    let b = ctx
        .sql("select count(*) from organisation")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    b[0].column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn publish_read_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_gen(&root, &["A", "B"], "r1");
    assert_eq!(count(&root).await, 2);
    let lake = Lake::open(&root).unwrap();
    assert_eq!(lake.catalog.table("organisation").unwrap().rows, 2);
    assert_eq!(lake.catalog.run_id, "r1");
    write_gen(&root, &["A", "B", "C"], "r2");
    assert_eq!(count(&root).await, 3);
    assert_eq!(Lake::open(&root).unwrap().catalog.run_id, "r2");
    // the user-facing path works too
    assert!(root.join("lake").join("catalog.json").exists());
}

#[tokio::test]
async fn killed_run_leaves_previous_lake_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_gen(&root, &["A"], "r1");
    {
        // a run that writes parts and then dies before commit
        let w = LakeWriter::create(&root).unwrap();
        let mut p = w.part(&ORGANISATION, 0).unwrap();
        p.write(&org_batch(&["X", "Y", "Z"])).unwrap();
        drop(p);
        std::mem::forget(w);
    }
    assert_eq!(count(&root).await, 1);
    assert_eq!(Lake::open(&root).unwrap().catalog.run_id, "r1");
    // the next writer sweeps the leftover staging folder
    let _w = LakeWriter::create(&root).unwrap();
    let leftovers = std::fs::read_dir(root.join("generations"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
        .count();
    assert_eq!(
        leftovers, 1,
        "only the new writer's own staging folder remains"
    );
}

#[test]
fn refuses_a_directory_holding_something_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.docx"), "precious").unwrap();
    let e = LakeWriter::create(dir.path()).err().unwrap();
    assert!(matches!(e, LakeError::NotTrentDir { .. }), "{e}");
    assert!(e.to_string().contains("not a trent data directory"));
    // nothing written
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn no_lake_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Lake::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("no lake here"), "{e}");
}

//! Reading a lake through Apache DataFusion.

use std::path::{Path, PathBuf};

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::catalog::Catalog;
use crate::error::{LakeError, io};
use crate::{CATALOG, DEFAULT_DATA_DIR};

/// The data directory: `--data DIR` if given, else `TRENT_DATA`, else `./trent-data`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("TRENT_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// One published lake generation, pinned for the reader's lifetime.
#[derive(Debug, Clone)]
pub struct Lake {
    /// the data directory
    pub root: PathBuf,
    /// the generation folder (canonical path)
    pub generation: PathBuf,
    /// its catalog
    pub catalog: Catalog,
}

impl Lake {
    /// Open the current lake of a data directory.
    pub fn open(root: &Path) -> Result<Lake, LakeError> {
        let current = root.join("current");
        if std::fs::symlink_metadata(&current).is_err() {
            return Err(LakeError::NoLake {
                path: root.to_path_buf(),
            });
        }
        let generation = current.canonicalize().map_err(io(&current))?;
        let catalog = Catalog::read(&generation.join("lake").join(CATALOG))?;
        Ok(Lake {
            root: root.to_path_buf(),
            generation,
            catalog,
        })
    }

    /// True if a lake has been published in `root`.
    pub fn exists(root: &Path) -> bool {
        root.join("current").join("lake").join(CATALOG).exists()
    }

    /// Folder of a lake table.
    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.generation.join("lake").join(table)
    }

    /// Folder of the identity vault's table (for the vault and shared record only).
    pub fn vault_dir(&self) -> PathBuf {
        self.generation.join("vault").join(crate::VAULT_TABLE)
    }

    /// A DataFusion session with every lake table registered under its name.
    ///
    /// Tables are listing tables over their Parquet folders with the model's schema, so
    /// a query streams from disk and never needs a whole table in memory. The vault is
    /// not registered. Filters are pushed down into the Parquet scan. DataFusion's own
    /// settings can be tuned from the environment
    /// (`DATAFUSION_EXECUTION_TARGET_PARTITIONS=4`, `DATAFUSION_EXECUTION_BATCH_SIZE` …,
    /// DataFusion's `SessionConfig::from_env`); an unreadable value is an error naming it.
    pub async fn session(&self) -> Result<SessionContext, LakeError> {
        let mut config = SessionConfig::from_env()
            .map_err(|e| e.context("DataFusion settings from the environment (DATAFUSION_*)"))?
            .with_information_schema(true);
        // filters evaluated inside the Parquet scan, columns decoded only for the rows
        // that pass (late materialisation), instead of a filter copying every column of
        // every batch: the features' activity scan (four of the lake's five years) went
        // from 8.9-10.3 s to 6.1-7.1 s for both dates' features (docs/benchmarks.md)
        if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS").is_none() {
            config.options_mut().execution.parquet.pushdown_filters = true;
        }
        let ctx = SessionContext::new_with_config(config);
        self.register(&ctx).await?;
        Ok(ctx)
    }

    /// Register the lake tables in an existing session.
    pub async fn register(&self, ctx: &SessionContext) -> Result<(), LakeError> {
        for t in &self.catalog.tables {
            let Some(def) = trent_model::schema::table(&t.name) else {
                continue;
            };
            let schema = def.schema();
            let dir = self.table_dir(&t.name);
            let path = format!("{}/", dir.display());
            let opts = ParquetReadOptions::default().schema(&schema);
            ctx.register_parquet(&t.name, &path, opts).await?;
        }
        // derived tables (`indicator_value`, risk scores …) computed from this generation
        let derived = self.generation.join("derived");
        if let Ok(rd) = std::fs::read_dir(&derived) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for n in names {
                let path = format!("{}/", derived.join(&n).display());
                ctx.register_parquet(&n, &path, ParquetReadOptions::default())
                    .await?;
            }
        }
        Ok(())
    }

    /// Folder of a derived table of this generation (written by [`Lake::write_derived`]).
    pub fn derived_dir(&self, name: &str) -> PathBuf {
        self.generation.join("derived").join(name)
    }

    /// Replace a derived table of this generation with `batches`, atomically: the new
    /// folder is written beside the old one and renamed over it, so a reader sees the
    /// old table or the new one (a killed writer leaves only a hidden staging folder).
    pub fn write_derived(
        &self,
        name: &str,
        batches: &[arrow::record_batch::RecordBatch],
    ) -> Result<PathBuf, LakeError> {
        let root = self.generation.join("derived");
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let stage = root.join(format!(".{name}.staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(io(&stage))?;
        let file = stage.join("part-00000.parquet");
        let f = std::fs::File::create(&file).map_err(io(&file))?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => {
                return Err(LakeError::Io {
                    path: file,
                    source: std::io::Error::other("no rows to write"),
                });
            }
        };
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let perr = |source| LakeError::Parquet {
            path: file.clone(),
            source,
        };
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, Some(props)).map_err(perr)?;
        for b in batches {
            w.write(b).map_err(perr)?;
        }
        w.close().map_err(perr)?;
        let dest = root.join(name);
        let old = root.join(format!(".{name}.old-{}", std::process::id()));
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(io(&dest))?;
        }
        std::fs::rename(&stage, &dest).map_err(io(&dest))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(dest)
    }
}

/// Read one Parquet part file whole, as a single batch with the file's schema.
///
/// For consumers that walk one partition at a time (the FHIR export): a part file holds
/// one partition, so memory stays bounded by partition size, not lake size.
pub fn read_part(path: &Path) -> Result<arrow::record_batch::RecordBatch, LakeError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let err = |source| LakeError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(err)?;
    let schema = builder.schema().clone();
    let batches = builder
        .with_batch_size(65_536)
        .build()
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.into()))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| err(e.into()))
}

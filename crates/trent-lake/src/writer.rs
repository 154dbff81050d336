//! Writing a lake generation: staging, part files, atomic publish.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::catalog::Catalog;
use crate::error::{LakeError, io};
use crate::{CATALOG, MARKER, VAULT_TABLE};

/// Builds one new generation of a data directory; nothing is visible until [`commit`].
///
/// [`commit`]: LakeWriter::commit
pub struct LakeWriter {
    root: PathBuf,
    staging: PathBuf,
    generation: u64,
}

impl LakeWriter {
    /// Prepare to write a new generation under `root`, creating it if needed.
    ///
    /// Fails, writing nothing, when `root` exists, is not empty and is not a trent data
    /// directory. Leftover staging folders of killed runs are removed.
    pub fn create(root: &Path) -> Result<LakeWriter, LakeError> {
        if root.exists() {
            if !root.is_dir() {
                return Err(LakeError::NotTrentDir {
                    path: root.to_path_buf(),
                });
            }
            let empty = fs::read_dir(root).map_err(io(root))?.next().is_none();
            if !empty && !root.join(MARKER).exists() {
                return Err(LakeError::NotTrentDir {
                    path: root.to_path_buf(),
                });
            }
        }
        let gens = root.join("generations");
        fs::create_dir_all(&gens).map_err(io(&gens))?;
        let marker = root.join(MARKER);
        if !marker.exists() {
            fs::write(&marker, "trent data directory, format 1\n").map_err(io(&marker))?;
        }
        let mut last = 0;
        for e in fs::read_dir(&gens).map_err(io(&gens))? {
            let e = e.map_err(io(&gens))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(".staging-") {
                fs::remove_dir_all(e.path()).map_err(io(e.path()))?;
            } else if let Some(n) = name.strip_prefix('g').and_then(|n| n.parse::<u64>().ok()) {
                last = last.max(n);
            }
        }
        let generation = last + 1;
        let staging = gens.join(format!(".staging-{generation:06}-{}", std::process::id()));
        fs::create_dir_all(staging.join("lake")).map_err(io(&staging))?;
        fs::create_dir_all(staging.join("vault")).map_err(io(&staging))?;
        restrict(&staging.join("vault"))?;
        Ok(LakeWriter {
            root: root.to_path_buf(),
            staging,
            generation,
        })
    }

    /// A Parquet part file for a lake table: `lake/<table>/part-NNNNN.parquet`.
    pub fn part(
        &self,
        table: &trent_model::TableDef,
        part: usize,
    ) -> Result<PartWriter, LakeError> {
        PartWriter::create(&self.staging.join("lake").join(table.name), table, part)
    }

    /// Where [`part`](Self::part) put a table's part file in the staged generation.
    pub fn staged_part_path(&self, table: &str, part: usize) -> PathBuf {
        let top = if table == VAULT_TABLE {
            "vault"
        } else {
            "lake"
        };
        self.staging
            .join(top)
            .join(table)
            .join(format!("part-{part:05}.parquet"))
    }

    /// A Parquet part file of the identity vault.
    pub fn vault_part(&self, part: usize) -> Result<PartWriter, LakeError> {
        PartWriter::create(
            &self.staging.join("vault").join(VAULT_TABLE),
            &trent_model::VAULT,
            part,
        )
    }

    /// Folder of the staged generation (for writers of other file kinds, e.g. FHIR).
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// A folder for identifiable output beside the vault (e.g. `fhir`), created in the
    /// staged generation with the vault's permissions (owner only) and published with it;
    /// `<root>/<name>` then points at the current generation's copy.
    pub fn restricted_dir(&self, name: &str) -> Result<PathBuf, LakeError> {
        let dir = self.staging.join(name);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        restrict(&dir)?;
        Ok(dir)
    }

    /// Write the catalog and publish the generation atomically.
    pub fn commit(self, catalog: &Catalog) -> Result<PathBuf, LakeError> {
        let cat_path = self.staging.join("lake").join(CATALOG);
        let json = serde_json::to_string_pretty(catalog).expect("catalog serialises");
        let mut f = File::create(&cat_path).map_err(io(&cat_path))?;
        f.write_all(json.as_bytes()).map_err(io(&cat_path))?;
        f.write_all(b"\n").map_err(io(&cat_path))?;
        f.sync_all().map_err(io(&cat_path))?;
        let gens = self.root.join("generations");
        let final_dir = gens.join(format!("g{:06}", self.generation));
        fs::rename(&self.staging, &final_dir).map_err(io(&final_dir))?;
        // swap `current` atomically: make a new symlink aside, rename it over the old one
        let tmp_link = self.root.join(format!(".current-{}", std::process::id()));
        let _ = fs::remove_file(&tmp_link);
        symlink(
            Path::new("generations")
                .join(format!("g{:06}", self.generation))
                .as_path(),
            &tmp_link,
        )?;
        let current = self.root.join("current");
        fs::rename(&tmp_link, &current).map_err(io(&current))?;
        for (name, target) in [
            ("lake", "current/lake"),
            ("vault", "current/vault"),
            ("fhir", "current/fhir"),
            ("feeds", "current/feeds"),
        ] {
            if (name == "fhir" || name == "feeds") && !final_dir.join(name).exists() {
                continue;
            }
            let p = self.root.join(name);
            if fs::symlink_metadata(&p).is_err() {
                symlink(Path::new(target), &p)?;
            }
        }
        sync_dir(&self.root);
        // keep the previous generation for readers still on it; remove older ones
        for e in fs::read_dir(&gens).map_err(io(&gens))?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix('g').and_then(|n| n.parse::<u64>().ok())
                && n + 1 < self.generation
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(final_dir)
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<(), LakeError> {
    std::os::unix::fs::symlink(target, link).map_err(io(link))
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> Result<(), LakeError> {
    Err(LakeError::Io {
        path: link.to_path_buf(),
        source: std::io::Error::other("trent data directories need symlinks (unix)"),
    })
}

#[cfg(unix)]
fn restrict(dir: &Path) -> Result<(), LakeError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) -> Result<(), LakeError> {
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// One Parquet part file being written.
pub struct PartWriter {
    path: PathBuf,
    file_name: String,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl PartWriter {
    fn create(
        dir: &Path,
        table: &trent_model::TableDef,
        part: usize,
    ) -> Result<PartWriter, LakeError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let file_name = format!("part-{part:05}.parquet"); // see staged_part_path
        let path = dir.join(&file_name);
        let file = File::create(&path).map_err(io(&path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1")))
            .set_created_by(format!("trent {}", env!("CARGO_PKG_VERSION")))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(1 << 20))
            .build();
        let writer = ArrowWriter::try_new(file, table.schema(), Some(props)).map_err(|source| {
            LakeError::Parquet {
                path: path.clone(),
                source,
            }
        })?;
        Ok(PartWriter {
            path,
            file_name,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Append a batch (its schema must be the table's).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .as_mut()
            .expect("open")
            .write(batch)
            .map_err(|source| LakeError::Parquet {
                path: self.path.clone(),
                source,
            })
    }

    /// Finish the file; returns (file name, rows).
    pub fn finish(mut self) -> Result<(String, u64), LakeError> {
        let w = self.writer.take().expect("open");
        let file = w.into_inner().map_err(|source| LakeError::Parquet {
            path: self.path.clone(),
            source,
        })?;
        file.sync_all().map_err(io(&self.path))?;
        Ok((self.file_name, self.rows))
    }
}

//! The content-addressed store: `store/rootfs/<digest>/` trees, `store/blobs/`
//! file contents, and a record of each tree's manifest. A tree appears under
//! its digest only when complete: it is built in `store/tmp/` on the same
//! filesystem and renamed into place.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::blobs::Blobs;
use super::digest::{self, ContentHashes};
use super::hashcache::HashCache;
use super::materialize::{self, Content};
use crate::resolve::{Kind, Manifest};

pub struct Store {
    root: PathBuf,
}

/// What `sandbox build` reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Built {
    pub name: String,
    pub digest: String,
    pub path: PathBuf,
    pub entries: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub reused: bool,
}

/// The manifest and hashes of a tree, kept beside it.
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub digest: String,
    #[serde(with = "crate::resolve::bytepath::keys")]
    pub hashes: ContentHashes,
    pub manifest: Manifest,
}

impl Store {
    /// Open (creating) the store under the state directory. It is private to
    /// its owner: blobs keep setuid bits and capabilities.
    pub fn open(state: &Path) -> io::Result<Store> {
        let root = state.join("store");
        for dir in [state.to_path_buf(), root.clone(), root.join("blobs"), root.join("rootfs"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|e| at(&dir, e))?;
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(|e| at(&root, e))?;
        Ok(Store { root })
    }

    /// `state/store`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tree(&self, digest: &str) -> PathBuf {
        self.root.join("rootfs").join(digest)
    }

    pub fn record(&self, digest: &str) -> Option<Record> {
        let bytes = fs::read(self.root.join("rootfs").join(format!("{digest}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Content hashes of every file of the manifest (from the hash cache when
    /// the host file did not change).
    pub fn hash_contents(&self, manifest: &Manifest, progress: &indicatif::ProgressBar) -> io::Result<ContentHashes> {
        let cache_path = self.root.join("hashes.json");
        let mut cache = HashCache::load(&cache_path);
        let mut hashes = ContentHashes::new();
        progress.set_length(manifest.files().count() as u64);
        progress.set_message("hashing");
        for entry in manifest.files() {
            let hash = match &entry.kind {
                Kind::File { source } => {
                    let strict = matches!(entry.reason, crate::resolve::Reason::LabFile { .. });
                    cache.hash(source, strict).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", digest::display_path(source))))?
                }
                Kind::Inline { content } => digest::sha256_hex(content.as_bytes()),
                Kind::Data { content } => digest::sha256_hex(content),
                _ => continue,
            };
            hashes.insert(entry.path.clone(), hash);
            progress.inc(1);
        }
        // A cache that cannot be written only costs speed next time.
        let _ = cache.save(&cache_path);
        Ok(hashes)
    }

    /// Build the manifest's tree, or reuse the one already stored under its digest.
    /// `hashes` come from `hash_contents`; `started` is when the whole build began.
    pub fn build(
        &self,
        name: &str,
        manifest: &Manifest,
        hashes: &ContentHashes,
        started: Instant,
        progress: &indicatif::ProgressBar,
    ) -> io::Result<Built> {
        let digest = digest::digest(manifest, hashes);
        let path = self.tree(&digest);
        let mut reused = path.is_dir();
        if !reused {
            progress.set_position(0);
            progress.set_message("copying");
            let tmp_dir = self.root.join("tmp");
            let tmp = tempfile::Builder::new().prefix("build-").tempdir_in(&tmp_dir).map_err(|e| at(&tmp_dir, e))?;
            let tree = tmp.path().join("rootfs");
            fs::create_dir(&tree).map_err(|e| at(&tree, e))?;
            materialize::materialize_with_progress(
                &tree,
                manifest,
                hashes,
                &Blobs::new(self.root.join("blobs")),
                Content::HardLink,
                progress,
            )
            .map_err(|e| at(&tree, e))?;
            let record = Record { name: name.into(), digest: digest.clone(), hashes: hashes.clone(), manifest: manifest.clone() };
            let record_tmp = tmp.path().join("record.json");
            fs::write(&record_tmp, serde_json::to_vec(&record).map_err(io::Error::other)?).map_err(|e| at(&record_tmp, e))?;
            let _ = fs::set_permissions(&record_tmp, fs::Permissions::from_mode(0o444));
            let record_path = self.root.join("rootfs").join(format!("{digest}.json"));
            fs::rename(&record_tmp, &record_path).map_err(|e| at(&record_path, e))?;
            match fs::rename(&tree, &path) {
                Ok(()) => {}
                // A concurrent build of the same environment finished first: same digest, same files.
                Err(e) if path.is_dir() && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => reused = true,
                Err(e) => return Err(at(&path, e)),
            }
        }
        progress.finish_and_clear();
        Ok(Built {
            name: name.into(),
            digest,
            path,
            entries: manifest.entries.len(),
            bytes: content_bytes(manifest),
            seconds: started.elapsed().as_secs_f64(),
            reused,
        })
    }

    /// A plain copy of a stored tree for other tools (chroot, bwrap, tar).
    pub fn export(&self, manifest: &Manifest, hashes: &ContentHashes, out: &Path) -> io::Result<()> {
        match fs::read_dir(out) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is not empty; give a new or empty directory", out.display()),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(out)?,
            Err(e) => return Err(e),
        }
        let result = materialize::materialize(out, manifest, hashes, &Blobs::new(self.root.join("blobs")), Content::Copy);
        if result.is_err() {
            // Never leave a half-made tree that looks usable.
            let _ = remove_tree_contents(out);
        }
        result
    }
}

fn content_bytes(manifest: &Manifest) -> u64 {
    manifest
        .files()
        .map(|e| match &e.kind {
            Kind::File { source } => fs::metadata(source).map(|m| m.len()).unwrap_or(0),
            Kind::Inline { content } => content.len() as u64,
            Kind::Data { content } => content.len() as u64,
            _ => 0,
        })
        .sum()
}

fn remove_tree_contents(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            make_writable(&path);
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Directories like /proc are 0555 in a tree; an unprivileged owner must open them up to delete.
fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path());
            }
        }
    }
}

/// An I/O error that names the path it happened on (a full disk, a read-only
/// state directory), unless its message already starts with one.
pub(crate) fn at(path: &Path, error: io::Error) -> io::Error {
    let message = error.to_string();
    if message.starts_with('/') {
        return error;
    }
    io::Error::new(error.kind(), format!("{}: {}", digest::display_path(path), crate::resolve::error::io_cause(&error)))
}

//! Content hashes of host files, remembered by their identity (device, inode,
//! size, modification and change times), as git's index does. A warm build
//! re-stats files instead of reading them, which makes it take milliseconds.
//! Any change to a file (content, mode, owner) moves its ctime, so a stale hash
//! is never reused.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Identity {
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct HashCache {
    #[serde(with = "crate::resolve::bytepath::keys")]
    entries: BTreeMap<PathBuf, (Identity, String)>,
    #[serde(skip)]
    changed: bool,
}

impl HashCache {
    /// A missing or unreadable cache is an empty one: it is only a speed-up.
    pub fn load(path: &Path) -> HashCache {
        fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Write atomically (temp file + rename) so a concurrent build never reads half a cache.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, self).map_err(std::io::Error::other)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// sha256 of a host file's content, from the cache when the file is unchanged.
    /// `strict`: the path may hold no symbolic link (a lab file's).
    pub fn hash(&mut self, path: &Path, strict: bool) -> std::io::Result<String> {
        let mut file = super::source::open_regular(path, strict)?;
        let meta = file.metadata()?;
        let identity = Identity::of(&meta);
        if let Some((known, hash)) = self.entries.get(path)
            && *known == identity
        {
            return Ok(hash.clone());
        }
        let hash = hash_reader(&mut file)?;
        // A file modified while we read it gets another identity, and one changed
        // in the last seconds may change again within the same timestamp tick
        // (git's "racily clean" problem): remember neither.
        if Identity::of(&file.metadata()?) == identity && !recently_changed(&identity) {
            self.entries.insert(path.to_path_buf(), (identity, hash.clone()));
            self.changed = true;
        }
        Ok(hash)
    }
}

fn recently_changed(identity: &Identity) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    now - identity.ctime_ns.max(identity.mtime_ns) < 2_000_000_000
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    hash_reader(&mut fs::File::open(path)?)
}

pub fn hash_reader(file: &mut impl Read) -> std::io::Result<String> {
    digest_reader::<Sha256>(file)
}

/// The hex digest of everything `file` gives, by any hash (the SBOM asks for SHA-1 too).
pub fn digest_reader<D: Digest>(file: &mut impl Read) -> std::io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "one").unwrap();
        let mut cache = HashCache::default();
        let first = cache.hash(&file, true).unwrap();
        assert_eq!(first, crate::rootfs::digest::sha256_hex(b"one"));
        fs::write(&file, "two").unwrap();
        let second = cache.hash(&file, true).unwrap();
        assert_eq!(second, crate::rootfs::digest::sha256_hex(b"two"));
        let saved = dir.path().join("cache.json");
        cache.save(&saved).unwrap();
        let mut reloaded = HashCache::load(&saved);
        assert_eq!(reloaded.hash(&file, true).unwrap(), second);
    }
}

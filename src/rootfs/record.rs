//! The store's record per profile: which rootfs a profile gives, so that
//! `run`, `start`, `exec` and `lab` enter it without resolving again.
//!
//! A record is keyed by what the teacher wrote and owns:
//! - the text of the profile and of every parent it extends (and where each came from),
//! - the merged profile itself, with what a run's flags changed (`-v` makes a mount point),
//! - the identity (device, inode, size, mtime, ctime, mode, owner) of every lab
//!   file its `[[rootfs.copy]]` entries name,
//! - the record format.
//!
//! The host's own files (the programs in `binaries`, their libraries, `files`,
//! locales, zones) are deliberately NOT part of the key: an `apt upgrade` does
//! not change the environment students get between two classes. Only
//! `sandbox build` looks at the host again, and says what changed.
//!
//! A lookup costs the profile files' reads (done anyway to parse them), one
//! fstatat per lab file and one small file read.

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Store;
use crate::profile::Profile;
use crate::resolve::labfiles;
use crate::resolve::pseudofs::Filesystems;

/// Bumped when what a key covers changes, so old records are not trusted.
const FORMAT: &str = "sandbox-record-v2";

/// What the store remembers about a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub profile: String,
    /// The rootfs digest: `store/rootfs/<digest>`.
    pub digest: String,
    /// Seconds since the epoch of the build that wrote it.
    pub built: u64,
}

/// The record key of a profile as it is now; None when a lab folder cannot
/// be read (resolving will say why, at the profile's line).
pub fn key(profile: &Profile) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(FORMAT.as_bytes());
    field(profile.fingerprint.as_bytes());
    // The profile as merged and as this run changed it (`run -v` adds a mount
    // point to the tree): the same text with other flags is another record.
    field(&serde_json::to_vec(profile).ok()?);
    let mut filesystems = Filesystems::default();
    for copy in &profile.rootfs.copy {
        field(copy.from.as_os_str().as_bytes());
        for item in labfiles::walk(&copy.from, &mut filesystems).ok()? {
            let s = &item.stat;
            field(item.relative.as_os_str().as_bytes());
            let identity = [
                s.st_dev,
                s.st_ino,
                s.st_size as u64,
                s.st_mtime as u64,
                s.st_mtime_nsec as u64,
                s.st_ctime as u64,
                s.st_ctime_nsec as u64,
                u64::from(s.st_mode),
                u64::from(s.st_uid),
                u64::from(s.st_gid),
            ];
            for n in identity {
                field(&n.to_le_bytes());
            }
        }
    }
    Some(hex::encode(hasher.finalize()))
}

impl Store {
    fn record_path(&self, key: &str) -> PathBuf {
        self.root().join("records").join(format!("{key}.json"))
    }

    /// The record under `key` and its tree, when both are there.
    pub fn recorded(&self, key: &str) -> Option<(ProfileRecord, PathBuf)> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        let record: ProfileRecord = serde_json::from_slice(&bytes).ok()?;
        if !super::digest::is_digest(&record.digest) {
            return None;
        }
        let tree = self.tree(&record.digest);
        tree.is_dir().then_some((record, tree))
    }

    /// Remember that `key` gives the tree `digest` (atomically: temp file + rename).
    pub fn remember(&self, key: &str, profile: &str, digest: &str) -> io::Result<()> {
        let path = self.record_path(key);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| super::store::at(dir, e))?;
        let built = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let record = ProfileRecord { profile: profile.into(), digest: digest.into(), built };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| super::store::at(dir, e))?;
        tmp.write_all(&serde_json::to_vec(&record).map_err(io::Error::other)?).map_err(|e| super::store::at(tmp.path(), e))?;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o444)).map_err(|e| super::store::at(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| super::store::at(&path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(text: &str) -> (tempfile::TempDir, Profile) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("files")).unwrap();
        fs::write(dir.path().join("files/a"), "a").unwrap();
        fs::write(dir.path().join("lab.toml"), text).unwrap();
        let profile = crate::profile::load("lab.toml", dir.path()).unwrap();
        (dir, profile)
    }

    const LAB: &str = "name = \"lab\"\n[rootfs]\nfiles = [\"/etc/hostname\"]\n[[rootfs.copy]]\nfrom = \"files\"\nto = \"/srv/\"\n";

    #[test]
    fn the_key_follows_the_profile_and_its_lab_files_only() {
        let (dir, profile) = lab(LAB);
        let first = key(&profile).unwrap();
        assert_eq!(key(&crate::profile::load("lab.toml", dir.path()).unwrap()).unwrap(), first, "stable");
        fs::write(dir.path().join("files/a"), "b").unwrap();
        let changed_lab = key(&profile).unwrap();
        assert_ne!(changed_lab, first, "a lab file changed");
        fs::write(dir.path().join("files/new"), "").unwrap();
        assert_ne!(key(&profile).unwrap(), changed_lab, "a lab file added");
        fs::write(dir.path().join("lab.toml"), format!("{LAB}# a comment\n")).unwrap();
        let edited = crate::profile::load("lab.toml", dir.path()).unwrap();
        assert_ne!(key(&edited).unwrap(), key(&profile).unwrap(), "the profile's text changed");
    }

    #[test]
    fn a_record_names_its_tree() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(state.path()).unwrap();
        let digest = "a".repeat(64);
        store.remember("k", "lab", &digest).unwrap();
        assert!(store.recorded("k").is_none(), "no tree yet");
        fs::create_dir_all(store.tree(&digest)).unwrap();
        let (record, tree) = store.recorded("k").unwrap();
        assert_eq!((record.profile.as_str(), record.digest.as_str(), tree), ("lab", digest.as_str(), store.tree(&digest)));
        assert!(store.recorded("other").is_none());
    }
}

//! The digest of a rootfs: sha256 over every entry's path, kind, mode, owner,
//! link target or content hash, and capability, in path order. Two machines
//! that print the same digest give students the same files.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::resolve::{Kind, Manifest};

/// Content hashes of the manifest's files, by rootfs path.
pub type ContentHashes = BTreeMap<PathBuf, String>;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Fields are separated by NUL, which no path, link target or hex string holds,
/// so the encoding is unambiguous.
pub fn digest(manifest: &Manifest, hashes: &ContentHashes) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sandbox-rootfs-v1\0");
    for entry in manifest.entries.values() {
        let device;
        let content: &[u8] = match &entry.kind {
            Kind::Dir => b"-",
            Kind::Device { major, minor } => {
                device = format!("{major}:{minor}");
                device.as_bytes()
            }
            Kind::Symlink { target } => target.as_os_str().as_bytes(),
            Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. } => hashes.get(&entry.path).map(|h| h.as_bytes()).unwrap_or(b"?"),
        };
        let capability = entry.capability.as_deref().map(hex::encode).unwrap_or_default();
        for field in [
            entry.path.as_os_str().as_bytes(),
            entry.kind.name().as_bytes(),
            format!("{:o}", entry.mode).as_bytes(),
            format!("{}:{}", entry.uid, entry.gid).as_bytes(),
            content,
            capability.as_bytes(),
        ] {
            hasher.update(field);
            hasher.update([0]);
        }
    }
    hex::encode(hasher.finalize())
}

/// The short form shown to people (like git's).
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn display_path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

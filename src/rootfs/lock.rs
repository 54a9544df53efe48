//! `PROFILE.lock`: the digest and every entry's hash and origin package, so a
//! teacher can prove thirty machines give students the same files, and see
//! which package version differs when they do not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::ContentHashes;
use crate::resolve::dpkg::Dpkg;
use crate::resolve::error::shown;
use crate::resolve::{Kind, Manifest};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub profile: String,
    pub digest: String,
    #[serde(rename = "entry", default)]
    pub entries: Vec<LockEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    #[serde(with = "crate::resolve::bytepath::one")]
    pub path: PathBuf,
    pub kind: String,
    pub mode: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::resolve::bytepath::optional")]
    pub target: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

const HEADER: &str = "# Written by `sandbox build`. Keep it with the profile: `sandbox build --locked`\n\
                      # fails when this host would give students different files.\n";

impl Lock {
    pub fn new(profile: &str, digest: &str, manifest: &Manifest, hashes: &ContentHashes, dpkg: &Dpkg) -> Lock {
        let entries = manifest
            .entries
            .values()
            .map(|e| LockEntry {
                path: e.path.clone(),
                kind: e.kind.name().into(),
                mode: format!("{:04o}", e.mode),
                owner: format!("{}:{}", e.uid, e.gid),
                sha256: hashes.get(&e.path).cloned(),
                target: match &e.kind {
                    Kind::Symlink { target } => Some(target.clone()),
                    _ => None,
                },
                capability: e.capability.as_deref().map(hex::encode),
                package: match &e.kind {
                    Kind::File { source } => dpkg.package_of(source),
                    _ => None,
                },
            })
            .collect();
        Lock { profile: profile.into(), digest: digest.into(), entries }
    }

    pub fn to_toml(&self) -> String {
        format!("{HEADER}{}", toml::to_string(self).unwrap_or_default())
    }

    pub fn read(path: &Path) -> Result<Lock, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: not a lock file: {}", path.display(), e.message()))
    }

    /// The paths whose entries differ between the two locks (changed, gone or new).
    pub fn differing(&self, other: &Lock) -> Vec<PathBuf> {
        let old: BTreeMap<&Path, &LockEntry> = self.entries.iter().map(|e| (e.path.as_path(), e)).collect();
        let new: BTreeMap<&Path, &LockEntry> = other.entries.iter().map(|e| (e.path.as_path(), e)).collect();
        let changed = old.iter().filter(|(path, a)| new.get(*path) != Some(*a)).map(|(path, _)| path.to_path_buf());
        let added = new.keys().filter(|path| !old.contains_key(*path)).map(|path| path.to_path_buf());
        changed.chain(added).collect()
    }

    /// A readable account of how `other` (this host now) differs from `self`
    /// (the lock): the first `limit` differing entries, with package versions.
    pub fn diff(&self, other: &Lock, limit: usize) -> String {
        let old: BTreeMap<&Path, &LockEntry> = self.entries.iter().map(|e| (e.path.as_path(), e)).collect();
        let new: BTreeMap<&Path, &LockEntry> = other.entries.iter().map(|e| (e.path.as_path(), e)).collect();
        let mut lines = Vec::new();
        for (path, a) in &old {
            match new.get(path) {
                None => lines.push(format!("  - {} (gone{})", shown(path), from_package(a))),
                Some(b) if a != b => lines.push(format!("  ~ {} ({})", shown(path), changes(a, b))),
                _ => {}
            }
        }
        for (path, b) in &new {
            if !old.contains_key(path) {
                lines.push(format!("  + {} (new{})", shown(path), from_package(b)));
            }
        }
        let mut out = format!("{} entries differ:\n", lines.len());
        for line in lines.iter().take(limit) {
            let _ = writeln!(out, "{line}");
        }
        if lines.len() > limit {
            let _ = writeln!(out, "  ... and {} more", lines.len() - limit);
        }
        out
    }
}

fn from_package(e: &LockEntry) -> String {
    e.package.as_deref().map(|p| format!(", from {p}")).unwrap_or_default()
}

fn changes(a: &LockEntry, b: &LockEntry) -> String {
    let mut what = Vec::new();
    if a.kind != b.kind {
        what.push(format!("kind {} -> {}", a.kind, b.kind));
    }
    if a.sha256 != b.sha256 {
        what.push("content".to_string());
    }
    if a.target != b.target {
        what.push(format!("link target {:?} -> {:?}", a.target, b.target));
    }
    if a.mode != b.mode {
        what.push(format!("mode {} -> {}", a.mode, b.mode));
    }
    if a.owner != b.owner {
        what.push(format!("owner {} -> {}", a.owner, b.owner));
    }
    if a.capability != b.capability {
        what.push("capabilities".to_string());
    }
    if a.package != b.package {
        what.push(format!("package {} -> {}", a.package.as_deref().unwrap_or("?"), b.package.as_deref().unwrap_or("?")));
    }
    what.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, sha: &str, package: &str) -> LockEntry {
        LockEntry {
            path: path.into(),
            kind: "file".into(),
            mode: "0755".into(),
            owner: "0:0".into(),
            sha256: Some(sha.into()),
            target: None,
            capability: None,
            package: Some(package.into()),
        }
    }

    #[test]
    fn diff_names_the_package_version_that_moved() {
        let old = Lock {
            profile: "p".into(),
            digest: "a".into(),
            entries: vec![entry("/usr/bin/bash", "1", "bash 5.2-1"), entry("/x", "1", "x 1")],
        };
        let new = Lock {
            profile: "p".into(),
            digest: "b".into(),
            entries: vec![entry("/usr/bin/bash", "2", "bash 5.2-2"), entry("/y", "1", "y 1")],
        };
        let diff = old.diff(&new, 10);
        assert!(diff.starts_with("3 entries differ:"), "{diff}");
        assert!(diff.contains("~ /usr/bin/bash (content, package bash 5.2-1 -> bash 5.2-2)"), "{diff}");
        assert!(diff.contains("- /x (gone, from x 1)"), "{diff}");
        assert!(diff.contains("+ /y (new, from y 1)"), "{diff}");
        assert!(old.diff(&new, 1).contains("... and 2 more"));
    }

    #[test]
    fn lock_round_trips_through_toml() {
        let lock = Lock { profile: "p".into(), digest: "d".into(), entries: vec![entry("/a b\n\"c", "1", "p 1")] };
        let back: Lock = toml::from_str(&lock.to_toml()).unwrap();
        assert_eq!(back, lock);
    }
}

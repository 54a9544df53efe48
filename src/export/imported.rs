//! Imported images by name: what `sandbox import` recorded (the rootfs digest
//! and the image's User, Env, WorkingDir, Entrypoint and Cmd), and the profile
//! that runs one, so `sandbox run IMAGE`, `sandbox start IMAGE --name N` and
//! `extends = "image:NAME"` work like a profile.
//!
//! A record is `store/images/NAME.json` in the state directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Context, ExportError, Result};
use crate::resolve::{Kind, Manifest};
use crate::rootfs::Store;

/// How `extends` and the command line name an imported image explicitly.
pub const PREFIX: &str = "image:";

/// What `import` keeps of an image besides its tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    /// The rootfs digest of its tree in the store.
    pub digest: String,
    /// The image's `User`: empty (root), a name, `UID`, `NAME:GROUP` or `UID:GID`.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: String,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
}

pub fn images_dir(state: &Path) -> PathBuf {
    state.join("store/images")
}

/// The names an import may take: what a profile's name may be, so an image is
/// usable wherever a profile is (and is a safe file name).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A name for an image from its title label: lower case, other characters as `-`.
pub fn name_from_title(title: &str) -> Option<String> {
    let mut name: String = title.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(63).collect();
    name = name.trim_matches('-').to_string();
    valid_name(&name).then_some(name)
}

impl ImageRecord {
    pub fn write(&self, state: &Path) -> Result<()> {
        let dir = images_dir(state);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let path = dir.join(format!("{}.json", self.name));
        let tmp = dir.join(format!(".{}.json.tmp", self.name));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?).at(&tmp)?;
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// The record of an imported image, None when there is no such image.
    pub fn find(state: &Path, name: &str) -> Result<Option<ImageRecord>> {
        if !valid_name(name) {
            return Ok(None);
        }
        let path = images_dir(state).join(format!("{name}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                ExportError::Invalid(format!("{}: not an image record ({e})\n  fix: import the image again", path.display()))
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ExportError::Io { context: path.display().to_string(), source: e }),
        }
    }

    /// The names of every imported image, sorted.
    pub fn names(state: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(images_dir(state))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok()?.strip_suffix(".json").map(str::to_owned))
            .filter(|n| valid_name(n))
            .collect();
        names.sort();
        names
    }

    /// The command the image runs: Entrypoint then Cmd, as an engine does.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }

    /// The profile text of the image: its user (looked up in the image's
    /// own /etc/passwd), environment, working directory and command, in the
    /// profile format, so it is loaded, checked and merged as any profile.
    pub fn profile_toml(&self, store: &Store) -> Result<String> {
        let manifest = self.manifest(store)?;
        let user = image_user(&self.user, &manifest)?;
        let mut doc = toml::Table::new();
        doc.insert("name".into(), self.name.clone().into());
        doc.insert(
            "description".into(),
            format!("the imported image {} (rootfs {})", self.name, crate::rootfs::digest::short(&self.digest)).into(),
        );
        let mut user_table = toml::Table::new();
        user_table.insert("name".into(), user.name.into());
        user_table.insert("uid".into(), i64::from(user.uid).into());
        user_table.insert("gid".into(), i64::from(user.gid).into());
        user_table.insert("home".into(), user.home.into());
        user_table.insert("shell".into(), user.shell.into());
        doc.insert("user".into(), user_table.into());
        let env: toml::Table = self
            .env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            // PATH and HOME are the tool's to set (from the user); the image's PATH is kept when it has one.
            .filter(|(key, _)| *key != "HOME")
            .map(|(key, value)| (key.to_string(), toml::Value::from(value)))
            .collect();
        if !env.is_empty() {
            doc.insert("env".into(), env.into());
        }
        let mut run = toml::Table::new();
        let command = self.command();
        if !command.is_empty() {
            run.insert("command".into(), toml::Value::Array(command.into_iter().map(toml::Value::from).collect()));
        }
        if !self.workdir.is_empty() {
            run.insert("workdir".into(), self.workdir.clone().into());
        }
        if !run.is_empty() {
            doc.insert("run".into(), run.into());
        }
        toml::to_string(&doc).map_err(|e| ExportError::Invalid(format!("the profile of image {}: {e}", self.name)))
    }

    /// The manifest of the image's tree (its record in the store), each
    /// file's source in the stored tree itself.
    pub fn manifest(&self, store: &Store) -> Result<Manifest> {
        let record = store.record(&self.digest).ok_or_else(|| {
            ExportError::Invalid(format!(
                "the store no longer holds the tree of image {} ({})\n  fix: import the image again",
                self.name,
                crate::rootfs::digest::short(&self.digest)
            ))
        })?;
        Ok(record.manifest)
    }
}

/// The tree's manifest and content hashes, for a profile that builds on it.
pub fn base_of(store: &Store, digest: &str) -> Result<(Manifest, crate::rootfs::digest::ContentHashes)> {
    let record = store.record(digest).ok_or_else(|| {
        ExportError::Invalid(format!(
            "the store no longer holds the imported tree {}\n  fix: import the image again",
            crate::rootfs::digest::short(digest)
        ))
    })?;
    Ok((record.manifest, record.hashes))
}

/// The profile user an image's `User` means, from the image's own passwd
/// and group files (what an engine reads too); numeric ids need no entry.
fn image_user(spec: &str, manifest: &Manifest) -> Result<crate::profile::User> {
    let passwd = text_of(manifest, "/etc/passwd");
    let group = text_of(manifest, "/etc/group");
    let (who, group_spec) = match spec.split_once(':') {
        Some((w, g)) => (w, Some(g)),
        None => (spec, None),
    };
    let entry = |field: usize, value: &str| -> Option<Vec<String>> {
        passwd.lines().map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>()).find(|f| f.len() >= 7 && f[field] == value)
    };
    let found = if who.is_empty() {
        entry(2, "0")
    } else if who.bytes().all(|b| b.is_ascii_digit()) {
        entry(2, who)
    } else {
        Some(entry(0, who).ok_or_else(|| {
            ExportError::Invalid(format!("the image runs as user `{who}`, which its /etc/passwd does not list; the image is broken"))
        })?)
    };
    let uid: u32 = match &found {
        Some(f) => f[2].parse().ok(),
        None if who.is_empty() => Some(0),
        None => who.parse().ok(),
    }
    .ok_or_else(|| ExportError::Invalid(format!("the image's user `{spec}` has no valid uid")))?;
    let gid: u32 = match group_spec {
        Some(g) if g.bytes().all(|b| b.is_ascii_digit()) => g.parse().ok(),
        Some(g) => {
            group.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 3 && f[0] == g).and_then(|f| f[2].parse().ok())
        }
        None => found.as_ref().and_then(|f| f[3].parse().ok()).or(Some(uid)),
    }
    .ok_or_else(|| ExportError::Invalid(format!("the image's group in `{spec}` is not in its /etc/group")))?;
    let default = crate::profile::User::default();
    Ok(match found {
        Some(f) => crate::profile::User {
            name: f[0].clone(),
            uid,
            gid,
            home: if f[5].starts_with('/') { f[5].clone() } else { "/".into() },
            shell: if f[6].starts_with('/') { f[6].clone() } else { default.shell },
        },
        None if uid == 0 => crate::profile::User { gid, ..default },
        None => crate::profile::User { name: format!("user{uid}"), uid, gid, home: "/".into(), shell: default.shell },
    })
}

/// A small text file of the tree (passwd, group), read from the store; a
/// link or anything else gives nothing (never followed).
fn text_of(manifest: &Manifest, path: &str) -> String {
    let Some(entry) = manifest.entries.get(Path::new(path)) else { return String::new() };
    let Kind::File { source } = &entry.kind else { return String::new() };
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(source) {
        let _ = file.take(1 << 20).read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_titles() {
        assert_eq!(name_from_title("My App_2").as_deref(), Some("my-app-2"));
        assert_eq!(name_from_title("---"), None);
        assert!(valid_name("alpine") && !valid_name("../x") && !valid_name("A"));
    }

    #[test]
    fn the_user_comes_from_the_image_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/ash\nguest:x:405:100:guest:/dev/null:/sbin/nologin\n").unwrap();
        let group = dir.path().join("group");
        std::fs::write(&group, "root:x:0:\nusers:x:100:\n").unwrap();
        let mut manifest = Manifest::default();
        for (path, source) in [("/etc/passwd", &passwd), ("/etc/group", &group)] {
            manifest.entries.insert(
                path.into(),
                crate::resolve::Entry {
                    path: path.into(),
                    kind: Kind::File { source: source.clone() },
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    capability: None,
                    reason: crate::resolve::Reason::Skeleton { why: "test".into() },
                },
            );
        }
        let guest = image_user("guest", &manifest).unwrap();
        assert_eq!((guest.uid, guest.gid, guest.home.as_str()), (405, 100, "/dev/null"));
        let root = image_user("", &manifest).unwrap();
        assert_eq!((root.name.as_str(), root.shell.as_str()), ("root", "/bin/ash"));
        let numeric = image_user("1234:users", &manifest).unwrap();
        assert_eq!((numeric.name.as_str(), numeric.uid, numeric.gid), ("user1234", 1234, 100));
        assert!(image_user("nobody-here", &manifest).is_err());
    }
}

//! Named instances: each student's own writable layer over a shared rootfs,
//! kept between sessions. State lives in `<state>/instances/<name>/`:
//!
//! ```text
//! record.json   profile, digest, rootfs, the id range the instance keeps
//! running.json  while it runs: supervisor and init PIDs (with start times)
//! upper/ work/  the overlayfs layer: what the student changed
//! merged/       where the layer and the rootfs are mounted together
//! lock          flock: one command at a time changes the instance
//! log           what a background instance's supervisor printed
//! ```

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{ID_RANGE, Layer};
use crate::session::{ID_BASE, ID_SLOTS};

/// Instances take their id ranges above those of one-off runs, for good.
const FIRST_INSTANCE_SLOT: u32 = ID_SLOTS;
const INSTANCE_SLOTS: u32 = 8192;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// The profile as given (ready name or absolute path), to rebuild it.
    pub profile: String,
    pub profile_name: String,
    pub digest: String,
    pub rootfs: PathBuf,
    pub id_base: u32,
    pub created: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Running {
    pub supervisor: i32,
    pub supervisor_start: u64,
    pub init: i32,
    pub init_start: u64,
    pub started: u64,
    /// The cgroup name (`sandbox-<this>` under the tool's cgroups).
    pub cgroup: String,
    /// Where the supervisor made them, so that `stop` and `gc` find them
    /// after a crash from any cgroup (empty: none, or a record of an older version).
    #[serde(default)]
    pub cgroup_dirs: Vec<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("`{0}` is not a valid instance name\n  fix: use 1 to 63 of a-z, 0-9, `_` and `-`, starting with a letter or digit")]
    BadName(String),
    #[error("there is no instance `{0}`\n  fix: `sandbox ps` lists them; `sandbox run PROFILE --name {0}` creates it")]
    Missing(String),
    #[error("instance `{0}` is running\n  fix: `sandbox exec {0}` joins it; `sandbox stop {0}` ends it")]
    Running(String),
    #[error("instance `{0}` was made from profile `{1}`, not `{2}`\n  fix: use `sandbox rm {0}` first, or another name")]
    OtherProfile(String, String, String),
    #[error("all instance id ranges are in use\n  fix: remove instances that are no longer needed (`sandbox rm`)")]
    NoIds,
    #[error("{0}")]
    Io(#[from] io::Error),
}

pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

pub struct Instance {
    pub name: String,
    pub dir: PathBuf,
}

pub fn root(state: &Path) -> PathBuf {
    state.join("instances")
}

/// Every instance, by name.
pub fn all(state: &Path) -> Vec<Instance> {
    let mut names: Vec<String> = fs::read_dir(root(state))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n))
        .collect();
    names.sort();
    names.into_iter().map(|name| Instance { dir: root(state).join(&name), name }).collect()
}

impl Instance {
    pub fn named(state: &Path, name: &str) -> Result<Instance, InstanceError> {
        if !valid_name(name) {
            return Err(InstanceError::BadName(name.into()));
        }
        Ok(Instance { name: name.into(), dir: root(state).join(name) })
    }

    pub fn exists(&self) -> bool {
        self.dir.join("record.json").is_file()
    }

    pub fn record(&self) -> Result<Record, InstanceError> {
        let bytes = fs::read(self.dir.join("record.json")).map_err(|_| InstanceError::Missing(self.name.clone()))?;
        serde_json::from_slice(&bytes).map_err(|e| InstanceError::Io(io::Error::other(format!("{}: {e}", self.dir.display()))))
    }

    /// Hold the instance's lock until the returned file is dropped.
    pub fn lock(&self) -> io::Result<File> {
        fs::create_dir_all(&self.dir)?;
        let file = File::options().create(true).truncate(false).write(true).open(self.dir.join("lock"))?;
        // SAFETY: flock on an fd we own; blocks until other commands on this instance finish.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(file)
    }

    pub fn layer(&self) -> Layer {
        Layer { upper: self.dir.join("upper"), work: self.dir.join("work"), merged: self.dir.join("merged") }
    }

    /// Create the instance (under its lock). Its directories belong to the
    /// instance's root, an unprivileged id on the host, and no other user may
    /// enter them.
    pub fn create(&self, state: &Path, profile: &str, profile_name: &str, digest: &str, rootfs: &Path) -> Result<Record, InstanceError> {
        let instances = root(state);
        fs::create_dir_all(&instances)?;
        // Others may pass through to their own instance, but not list them.
        fs::set_permissions(&instances, fs::Permissions::from_mode(0o711))?;
        let as_root = nix::unistd::geteuid().is_root();
        let id_base = if as_root { free_id_base(state)? } else { nix::unistd::getuid().as_raw() };
        let record = Record {
            name: self.name.clone(),
            profile: profile.into(),
            profile_name: profile_name.into(),
            digest: digest.into(),
            rootfs: rootfs.into(),
            id_base,
            created: now(),
        };
        // The instance's own directory keeps every other user out (0700); the
        // upper layer's root becomes the sandbox's `/`, so it has the mode of one.
        for (dir, mode) in
            [(self.dir.clone(), 0o700), (self.dir.join("upper"), 0o755), (self.dir.join("work"), 0o700), (self.dir.join("merged"), 0o755)]
        {
            fs::create_dir_all(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
            if as_root {
                nix::unistd::chown(&dir, Some(id_base.into()), Some(id_base.into())).map_err(io::Error::from)?;
            }
        }
        write_json(&self.dir.join("record.json"), &record)?;
        Ok(record)
    }

    /// Running, and truly: both PIDs alive with the start times recorded, so
    /// a PID reused after a crash is never taken for the instance.
    pub fn running(&self) -> Option<Running> {
        let bytes = fs::read(self.dir.join("running.json")).ok()?;
        let running: Running = serde_json::from_slice(&bytes).ok()?;
        (start_time(running.init) == Some(running.init_start)).then_some(running)
    }

    /// The record of the last start, whether or not its PID 1 still lives.
    pub fn last_running(&self) -> Option<Running> {
        serde_json::from_slice(&fs::read(self.dir.join("running.json")).ok()?).ok()
    }

    pub fn set_running(&self, running: &Running) -> io::Result<()> {
        write_json(&self.dir.join("running.json"), running)
    }

    pub fn clear_running(&self) {
        let _ = fs::remove_file(self.dir.join("running.json"));
    }

    /// Drop the writable layer: back to the pristine environment.
    pub fn reset(&self) -> io::Result<()> {
        for dir in ["upper", "work"] {
            let path = self.dir.join(dir);
            for entry in fs::read_dir(&path)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(entry.path())?;
                } else {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(())
    }

    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir_all(&self.dir)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }
}

fn free_id_base(state: &Path) -> Result<u32, InstanceError> {
    let used: Vec<u32> = all(state).iter().filter_map(|i| i.record().ok()).map(|r| r.id_base).collect();
    (FIRST_INSTANCE_SLOT..FIRST_INSTANCE_SLOT + INSTANCE_SLOTS)
        .map(|slot| ID_BASE + slot * ID_RANGE)
        .find(|base| !used.contains(base))
        .ok_or(InstanceError::NoIds)
}

fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, value).map_err(io::Error::other)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The start time of a process (field 22 of /proc/PID/stat), which tells a
/// process from a later one that got the same PID.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace();
    // A zombie has exited: it is not the process that was recorded as running.
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// What a student changed, as the overlay's upper layer shows it.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub enum Change {
    Added(PathBuf),
    Changed(PathBuf),
    Deleted(PathBuf),
}

pub fn diff(upper: &Path, lower: &Path) -> io::Result<Vec<Change>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut changes = Vec::new();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(upper.join(dir.strip_prefix("/").unwrap_or(&dir)))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let inside = dir.join(entry.file_name());
            let meta = entry.metadata()?;
            let in_lower = fs::symlink_metadata(lower.join(inside.strip_prefix("/").unwrap_or(&inside))).is_ok();
            // A whiteout (a 0:0 character device) marks a deleted file.
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                changes.push(Change::Deleted(inside));
                continue;
            }
            if meta.is_dir() {
                if !in_lower {
                    changes.push(Change::Added(inside.clone()));
                }
                stack.push(inside);
            } else if in_lower {
                changes.push(Change::Changed(inside));
            } else {
                changes.push(Change::Added(inside));
            }
        }
    }
    changes.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    Ok(changes)
}

fn path_of(change: &Change) -> &Path {
    match change {
        Change::Added(p) | Change::Changed(p) | Change::Deleted(p) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for good in ["alice", "bob-2", "s_01", "0"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Alice", "-x", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn diff_reads_upper_and_whiteouts() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::write(lower.path().join("etc/motd"), "a").unwrap();
        fs::write(lower.path().join("etc/gone"), "a").unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::write(upper.path().join("etc/motd"), "b").unwrap();
        fs::create_dir_all(upper.path().join("home/new")).unwrap();
        fs::write(upper.path().join("home/new/f"), "c").unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::sys::stat::mknod(&upper.path().join("etc/gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
                .unwrap();
        }
        let changes = diff(upper.path(), lower.path()).unwrap();
        assert!(changes.contains(&Change::Changed("/etc/motd".into())));
        assert!(changes.contains(&Change::Added("/home".into())));
        assert!(changes.contains(&Change::Added("/home/new/f".into())));
        if nix::unistd::geteuid().is_root() {
            assert!(changes.contains(&Change::Deleted("/etc/gone".into())));
        }
    }
}

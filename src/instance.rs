//! Named instances: each student's own writable layer over a shared rootfs,
//! kept between sessions. State lives in `<state>/instances/<id>/`:
//!
//! ```text
//! record.json   profile, digest, rootfs, the id range the instance keeps, its display name
//! running.json  while it runs: supervisor and init PIDs (with start times)
//! upper/ work/  the overlayfs layer: what the student changed
//! disk.img      with `[limits] disk`: an ext4 image (its size is the cap)
//!               holding upper/ and work/ instead, mounted at layer/ in the
//!               sandbox's own mount namespace (see `disk`)
//! merged/       where the layer and the rootfs are mounted together
//! log           what a background instance's supervisor printed
//! ```
//!
//! An instance is named by a display name of any script, mapped to a safe id
//! (`names`). Its id range and cgroup name are leased machine-wide (`lease`),
//! and its cgroup name carries its state directory's key, so two state
//! directories can each have an `alice` and never touch the other's. Its lock
//! (one command at a time changes it) is a lease lock too, so taking it makes
//! nothing in the state directory.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lease::{self, Claim, LeaseError, Leases, Owner};
use crate::names::{self, NameError};
use crate::plan::{ID_RANGE, Layer};
use crate::state::at;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The instance's id (its directory's name).
    pub name: String,
    /// The name it was given, when that is not the id (`내이름`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The profile as given (ready name or absolute path), to rebuild it.
    pub profile: String,
    pub profile_name: String,
    pub digest: String,
    pub rootfs: PathBuf,
    pub id_base: u32,
    pub created: u64,
    /// `[limits] disk` when the instance was made: its image's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
}

impl Record {
    pub fn display_name(&self) -> &str {
        self.display.as_deref().unwrap_or(&self.name)
    }
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
    /// The supervisor's descriptor of the instance's disk mount: the layer is
    /// reached at /proc/SUPERVISOR/fd/N while it runs (no host mount exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_fd: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "`{0}` is not a valid instance name: {1}\n  fix: a name is 1 to 64 characters of any script, without control characters or : / \\ #"
    )]
    BadName(String, NameError),
    #[error("there is no instance `{0}`\n  fix: `sandbox ps` lists them; `sandbox run PROFILE --name {0}` creates it")]
    Missing(String),
    #[error("instance `{0}` is running\n  fix: `sandbox exec {0}` joins it; `sandbox stop {0}` ends it")]
    Running(String),
    #[error("instance `{0}` was made from profile `{1}`, not `{2}`\n  fix: use `sandbox rm {0}` first, or another name")]
    OtherProfile(String, String, String),
    #[error("`{0}` and `{1}` both map to the instance id `{2}`\n  fix: give one of them another name")]
    Clash(String, String, String),
    #[error("{0}")]
    Lease(#[from] LeaseError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Whether `name` is a safe instance id (see `names`).
pub fn valid_name(name: &str) -> bool {
    names::is_id(name)
}

pub struct Instance {
    /// The id: the directory's name, safe anywhere.
    pub name: String,
    /// As the user named it (the id itself when that is how it was named).
    pub display: String,
    pub dir: PathBuf,
    state: PathBuf,
}

pub fn root(state: &Path) -> PathBuf {
    state.join("instances")
}

/// Every instance, by id. (Directories being made, `.new-*`, are not ids.)
pub fn all(state: &Path) -> Vec<Instance> {
    let mut ids: Vec<String> = fs::read_dir(root(state))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n))
        .collect();
    ids.sort();
    ids.into_iter().map(|id| Instance::with_id(state, &id)).collect()
}

impl Instance {
    /// The instance a person names (a display name or an id).
    pub fn named(state: &Path, name: &str) -> Result<Instance, InstanceError> {
        let id = names::id_for(name).map_err(|reason| InstanceError::BadName(crate::escape::line(name.as_bytes()).into_owned(), reason))?;
        let mut instance = Instance::with_id(state, &id);
        instance.display = name.to_string();
        Ok(instance)
    }

    fn with_id(state: &Path, id: &str) -> Instance {
        Instance { name: id.into(), display: id.into(), dir: root(state).join(id), state: state.to_path_buf() }
    }

    pub fn exists(&self) -> bool {
        self.dir.join("record.json").is_file()
    }

    pub fn record(&self) -> Result<Record, InstanceError> {
        let bytes = fs::read(self.dir.join("record.json")).map_err(|_| InstanceError::Missing(self.display.clone()))?;
        serde_json::from_slice(&bytes).map_err(|e| InstanceError::Io(io::Error::other(format!("{}: {e}", self.dir.display()))))
    }

    pub fn save(&self, record: &Record) -> io::Result<()> {
        write_json(&self.dir.join("record.json"), record)
    }

    /// Hold the instance's lock until the returned file is dropped.
    pub fn lock(&self) -> io::Result<File> {
        lease::instance_lock(&self.state, &self.name)
    }

    /// The instance's cgroup name: `inst-<state key>-<id>`, its own on this machine.
    pub fn cgroup_name(&self) -> String {
        format!("inst-{}-{}", lease::state_key(&self.state), self.name)
    }

    fn owner(&self) -> Owner {
        Owner { state: lease::canonical(&self.state), instance: self.name.clone() }
    }

    /// The instance's layer; on its disk image when it has one (an instance
    /// made before `[limits] disk`, or without root, keeps its layer in its directory).
    pub fn layer(&self) -> Layer {
        let merged = self.dir.join("merged");
        match self.disk_image() {
            Some(image) => {
                let on = self.dir.join(crate::disk::MOUNT_POINT);
                Layer { upper: on.join("upper"), work: on.join("work"), merged, disk: Some(image) }
            }
            None => Layer { upper: self.dir.join("upper"), work: self.dir.join("work"), merged, disk: None },
        }
    }

    /// The disk image, when the instance has one.
    pub fn disk_image(&self) -> Option<PathBuf> {
        Some(self.dir.join(crate::disk::IMAGE)).filter(|p| p.is_file())
    }

    /// The upper layer as the host can read it now. Without a disk image, its
    /// directory. With one: while the instance runs, through the supervisor's
    /// descriptor of its disk mount (`/proc/SUPERVISOR/fd/N`: there is no
    /// host mount); stopped, through a detached mount of our own, which the
    /// view holds (`readonly` or not) until it is dropped.
    pub fn upper_view(&self, readonly: bool) -> io::Result<UpperView> {
        let Some(image) = self.disk_image() else { return Ok(UpperView { upper: self.layer().upper, _mount: None }) };
        if let Some(running) = self.running()
            && let Some(fd) = running.disk_fd
            && start_time(running.supervisor) == Some(running.supervisor_start)
        {
            return Ok(UpperView { upper: PathBuf::from(format!("/proc/{}/fd/{fd}/upper", running.supervisor)), _mount: None });
        }
        let mount = crate::isolate::open_disk(&image, readonly)
            .map_err(|e| io::Error::other(format!("the disk image {}: {e}", image.display())))?;
        use std::os::fd::AsRawFd;
        Ok(UpperView { upper: PathBuf::from(format!("/proc/self/fd/{}/upper", mount.as_raw_fd())), _mount: Some(mount) })
    }

    /// How much of its disk the instance uses, when it has one.
    pub fn disk_usage(&self) -> Option<crate::disk::Usage> {
        crate::disk::usage(&self.disk_image()?)
    }

    /// Create the instance (under its lock). Its directories belong to the
    /// instance's root, an unprivileged id on the host, and no other user may
    /// enter them. It is built beside its place and renamed into it, so a
    /// failure (a full disk) leaves no half-made instance, and no claim.
    /// `disk`: the cap of its layer (`[limits] disk`), as an image of that
    /// size; only root can mount one, so without root the layer is not capped.
    pub fn create(
        &self,
        profile: &str,
        profile_name: &str,
        digest: &str,
        rootfs: &Path,
        disk: Option<u64>,
    ) -> Result<Record, InstanceError> {
        let instances = root(&self.state);
        fs::create_dir_all(&instances).map_err(at(&instances))?;
        // Others may pass through to their own instance, but not list them.
        fs::set_permissions(&instances, fs::Permissions::from_mode(0o711)).map_err(at(&instances))?;
        let as_root = nix::unistd::geteuid().is_root();
        let leases = if as_root { Some(Leases::lock()?) } else { None };
        let id_base = match &leases {
            Some(leases) => {
                let own: Vec<u32> = all(&self.state).iter().filter_map(|i| i.record().ok()).map(|r| r.id_base).collect();
                leases.instance_range(&self.owner(), &own, &holds)?
            }
            None => nix::unistd::getuid().as_raw(),
        };
        let made = self.make(
            &instances,
            as_root,
            Record {
                name: self.name.clone(),
                display: (self.display != self.name).then(|| self.display.clone()),
                profile: profile.into(),
                profile_name: profile_name.into(),
                digest: digest.into(),
                rootfs: rootfs.into(),
                id_base,
                created: now(),
                disk: disk.filter(|_| as_root),
            },
        );
        if made.is_err()
            && let Some(leases) = &leases
        {
            let _ = leases.release(&Claim::Ids(id_base), &self.owner());
        }
        made
    }

    fn make(&self, instances: &Path, as_root: bool, record: Record) -> Result<Record, InstanceError> {
        // One error for the whole making, named by the instance (the
        // directory being built is removed with it).
        let building = tempfile::Builder::new().prefix(".new-").tempdir_in(instances).map_err(at(&self.dir))?;
        let fill = |dir: &Path| -> io::Result<()> {
            // The instance's own directory keeps every other user out (0700); the
            // upper layer's root becomes the sandbox's `/`, so it has the mode of one.
            // With a disk, upper/ and work/ are on its image.
            let mut dirs = vec![(dir.to_path_buf(), 0o700), (dir.join("merged"), 0o755)];
            if record.disk.is_none() {
                dirs.extend([(dir.join("upper"), 0o755), (dir.join("work"), 0o700)]);
            }
            for (dir, mode) in dirs {
                fs::create_dir_all(&dir)?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
                if as_root {
                    std::os::unix::fs::chown(&dir, Some(record.id_base), Some(record.id_base))?;
                }
            }
            if let Some(size) = record.disk {
                let mount_point = dir.join(crate::disk::MOUNT_POINT);
                fs::create_dir_all(&mount_point)?;
                fs::set_permissions(&mount_point, fs::Permissions::from_mode(0o755))?;
                crate::disk::create(&dir.join(crate::disk::IMAGE), size, record.id_base)?;
            }
            write_json_raw(&dir.join("record.json"), &record)
        };
        fill(building.path()).map_err(at(&self.dir))?;
        let built = building.keep();
        fs::rename(&built, &self.dir).map_err(|e| {
            let _ = fs::remove_dir_all(&built);
            at(&self.dir)(e)
        })?;
        Ok(record)
    }

    /// Before each start (as root): the instance's cgroup name and id range
    /// are claimed again (a reboot emptied /run). When another state
    /// directory's instance took the range meanwhile, this one moves to a free
    /// range and its files are given to the new ids; the record says so.
    /// Returns a note when it moved.
    pub fn claim_leases(&self, record: &mut Record) -> Result<Option<String>, InstanceError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let leases = Leases::lock()?;
        let owner = self.owner();
        leases.claim(&Claim::Cgroup(self.cgroup_name()), &owner, &holds)?;
        match leases.claim(&Claim::Ids(record.id_base), &owner, &holds) {
            Ok(()) => Ok(None),
            Err(LeaseError::Taken { owner: other, .. }) => {
                let own: Vec<u32> = all(&self.state).iter().filter_map(|i| i.record().ok()).map(|r| r.id_base).collect();
                let new = leases.instance_range(&owner, &own, &holds)?;
                shift_owners(&self.dir, record.id_base, new).map_err(at(&self.dir))?;
                // The files on its disk image too (stopped and locked: our own mount of it).
                if self.disk_image().is_some() {
                    let view = self.upper_view(false)?;
                    let root = view.upper.parent().map(Path::to_path_buf).unwrap_or_default();
                    shift_owners(&root, record.id_base, new)?;
                }
                let old = std::mem::replace(&mut record.id_base, new);
                self.save(record)?;
                Ok(Some(format!(
                    "the host ids {old}+ of `{}` are now used by instance `{}` of {}: it moved to {new}+",
                    self.display,
                    other.instance,
                    other.state.display()
                )))
            }
            Err(other) => Err(other.into()),
        }
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

    /// Drop the writable layer: back to the pristine environment. A disk
    /// image is made anew (a sandbox still releasing the old one keeps its
    /// own copy until it lets go).
    pub fn reset(&self) -> io::Result<()> {
        if let (Some(image), Ok(record)) = (self.disk_image(), self.record()) {
            let size = fs::metadata(&image)?.len();
            return crate::disk::create(&image, size, record.id_base);
        }
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

    /// Remove the instance and give back its leases (only its own).
    pub fn remove(&self) -> Result<(), InstanceError> {
        let record = self.record().ok();
        fs::remove_dir_all(&self.dir).map_err(at(&self.dir))?;
        if let Some(record) = record
            && nix::unistd::geteuid().is_root()
        {
            let leases = Leases::lock()?;
            leases.release(&Claim::Ids(record.id_base), &self.owner())?;
            leases.release(&Claim::Cgroup(self.cgroup_name()), &self.owner())?;
        }
        Ok(())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }
}

/// An instance's upper layer, readable from the host while this lives.
pub struct UpperView {
    pub upper: PathBuf,
    _mount: Option<std::os::fd::OwnedFd>,
}

/// Whether a claim's owner still holds it: its instance exists with that id
/// range or cgroup name (a state directory removed by hand holds nothing).
pub fn holds(owner: &Owner, claim: &Claim) -> bool {
    let instance = Instance::with_id(&owner.state, &owner.instance);
    match (instance.record(), claim) {
        (Ok(record), Claim::Ids(base)) => record.id_base == *base,
        (Ok(_), Claim::Cgroup(name)) => instance.cgroup_name() == *name,
        (Err(_), _) => false,
    }
}

/// Give the files of an instance that belong to one id range to another
/// (`from + n` becomes `to + n`), never following a link. The instance is
/// stopped and locked, so nothing inside changes meanwhile. chown clears
/// setuid and setgid bits; the student's own modes are put back.
fn shift_owners(dir: &Path, from: u32, to: u32) -> io::Result<()> {
    let shift = |id: u32| if (from..from.saturating_add(ID_RANGE)).contains(&id) { id - from + to } else { id };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path)?;
        let (uid, gid) = (shift(meta.uid()), shift(meta.gid()));
        if (uid, gid) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            if !meta.file_type().is_symlink() {
                fs::set_permissions(&path, meta.permissions())?;
            }
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Write JSON whole or not at all (a temporary file renamed over it); errors name the path.
fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    write_json_raw(path, value).map_err(at(path))
}

fn write_json_raw(path: &Path, value: &impl Serialize) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, value)?;
    tmp.as_file_mut().flush()?;
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
    fn a_moved_range_takes_the_instance_s_files_along() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (1_268_435_456, 1_268_500_992);
        let file = dir.path().join("tool");
        fs::write(&file, "x").unwrap();
        std::os::unix::fs::chown(&file, Some(from + 1000), Some(from + 1000)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o4755)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(from), Some(from)).unwrap();
        let host = dir.path().join("host");
        fs::write(&host, "").unwrap();
        shift_owners(dir.path(), from, to).unwrap();
        let meta = fs::metadata(&file).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (to + 1000, to + 1000, 0o4755));
        assert_eq!(fs::symlink_metadata(&link).unwrap().uid(), to, "the link itself, never its target");
        assert_eq!(fs::metadata("/etc/passwd").unwrap().uid(), 0);
        assert_eq!(fs::metadata(&host).unwrap().uid(), 0, "ids outside the range stay");
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

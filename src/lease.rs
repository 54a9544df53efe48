//! Machine-wide leases. What two state directories on one machine must never
//! share, host id ranges and cgroup names, is handed out here and not in a
//! state directory (two teachers with two `SANDBOX_HOME`s share one kernel).
//!
//! ```text
//! /run/sandbox/            root's, 0700: no other user can open, read or lock anything below
//!   lock                   flock: one allocation at a time, machine-wide
//!   ids/run-N.lock         a one-off run's id range: flock-held while it runs (a crash frees it)
//!   ids/N                  an instance's id range, claimed by {state, instance} until `rm`
//!   cgroups/NAME           an instance's cgroup name, claimed the same way
//!   locks/KEY-ID.lock      flock: one command at a time changes an instance
//! ```
//!
//! A claim names its owner; a claim whose owner is gone (its state directory
//! or instance was removed by hand) is stale and taken over. `/run` is empty
//! after a reboot: an instance claims its range again when it next starts, and
//! when another state directory's instance took that range meanwhile, it moves
//! to a free one ([`Leases::instance_range`]'s caller shifts its files).
//! Without root (no /run/sandbox), `$XDG_RUNTIME_DIR/sandbox` serves, the
//! user's own runtime directory, else the state directory's `run/leases`.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::plan::ID_RANGE;
use crate::session::{ID_BASE, ID_SLOTS};

/// Instances take their id ranges above those of one-off runs.
pub const FIRST_INSTANCE_SLOT: u32 = ID_SLOTS;
pub const INSTANCE_SLOTS: u32 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "all {INSTANCE_SLOTS} instance id ranges of this machine are in use\n  fix: remove instances that are no longer needed (`sandbox rm`), in every state directory"
    )]
    NoIds,
    #[error("all {ID_SLOTS} id ranges for one-off runs are in use\n  fix: wait for other sandboxes to end")]
    NoRunIds,
    #[error(
        "{what} is leased to instance `{}` of the state directory {}\n  fix: `SANDBOX_HOME={} sandbox rm {}` if it is no longer needed",
        owner.instance, owner.state.display(), owner.state.display(), owner.instance
    )]
    Taken { what: String, owner: Owner },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Who holds a claim: an instance of a state directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The state directory, canonical.
    pub state: PathBuf,
    /// The instance's id.
    pub instance: String,
}

/// A short, stable name of a state directory (8 hex digits of the SHA-256 of
/// its canonical path), which keeps one directory's cgroup names apart from
/// another's.
pub fn state_key(state: &Path) -> String {
    let canonical = canonical(state);
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

/// The state directory as claims record it.
pub fn canonical(state: &Path) -> PathBuf {
    fs::canonicalize(state).or_else(|_| std::path::absolute(state)).unwrap_or_else(|_| state.to_path_buf())
}

/// Where leases live on this machine, made if need be: root's /run/sandbox, or
/// for a user their runtime directory.
pub fn dir() -> io::Result<PathBuf> {
    let dir = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/sandbox")
    } else if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()).map(PathBuf::from)
        && runtime.is_dir()
    {
        runtime.join("sandbox")
    } else {
        crate::state::home().join("run/leases")
    };
    private_dir(&dir)?;
    Ok(dir)
}

/// A directory only this user may enter: made 0700, and refused when it is a
/// symlink or someone else's (it would let them read or hold our locks).
fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir.parent().unwrap_or(Path::new("/"))).map_err(crate::state::at(dir))?;
            return private_dir(dir);
        }
        Err(e) => return Err(crate::state::at(dir)(e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(crate::state::at(dir))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of uid {me}: leases are not kept there\n  fix: remove it; the next command makes it again",
                dir.display()
            ),
        ));
    }
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(crate::state::at(dir))?;
    }
    Ok(())
}

/// A lock file only we can open (0600, never through a symlink), held with
/// flock: blocking, or `None` when `wait` is false and another holds it.
fn flock_file(path: &Path, wait: bool) -> io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(crate::state::at(path))?;
    let flags = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
            return Ok(Some(file));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(None),
            _ => return Err(crate::state::at(path)(error)),
        }
    }
}

/// A one-off run's id range, held while the returned file is open: the first
/// free of the machine's run ranges.
pub fn run_range() -> Result<(u32, File), LeaseError> {
    let ids = dir()?.join("ids");
    private_dir(&ids)?;
    for slot in 0..ID_SLOTS {
        if let Some(file) = flock_file(&ids.join(format!("run-{slot}.lock")), false)? {
            return Ok((ID_BASE + slot * ID_RANGE, file));
        }
    }
    Err(LeaseError::NoRunIds)
}

/// Hold an instance's lock (one command at a time changes it) until the file
/// is dropped. The lock is not inside the instance's directory, so taking it
/// makes nothing there.
pub fn instance_lock(state: &Path, id: &str) -> io::Result<File> {
    let locks = dir()?.join("locks");
    private_dir(&locks)?;
    let file = flock_file(&locks.join(format!("{}-{id}.lock", state_key(state))), true)?;
    file.ok_or_else(|| io::Error::other("flock returned without the lock"))
}

/// What a claim is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The instance id range starting at this host id.
    Ids(u32),
    /// A cgroup name (without the `sandbox-` prefix).
    Cgroup(String),
}

impl Claim {
    fn file(&self) -> PathBuf {
        match self {
            Claim::Ids(base) => PathBuf::from(format!("ids/{}", (base - ID_BASE) / ID_RANGE)),
            Claim::Cgroup(name) => PathBuf::from(format!("cgroups/{name}")),
        }
    }

    fn describe(&self) -> String {
        match self {
            Claim::Ids(base) => format!("the host id range {base}-{}", base + ID_RANGE - 1),
            Claim::Cgroup(name) => format!("the cgroup name `sandbox-{name}`"),
        }
    }
}

/// The machine's claims, under its allocation lock (held while this lives).
pub struct Leases {
    dir: PathBuf,
    _lock: File,
}

impl Leases {
    /// Take the allocation lock of this machine's leases.
    pub fn lock() -> io::Result<Leases> {
        Leases::lock_in(&dir()?)
    }

    /// The same in another directory (tests).
    pub fn lock_in(dir: &Path) -> io::Result<Leases> {
        private_dir(dir)?;
        for sub in ["ids", "cgroups"] {
            private_dir(&dir.join(sub))?;
        }
        let lock = flock_file(&dir.join("lock"), true)?.ok_or_else(|| io::Error::other("flock returned without the lock"))?;
        Ok(Leases { dir: dir.to_path_buf(), _lock: lock })
    }

    /// Who holds a claim, if anyone.
    pub fn holder(&self, claim: &Claim) -> Option<Owner> {
        let bytes = fs::read(self.dir.join(claim.file())).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Claim for `owner`. Free, stale (its owner is not `alive`) or already
    /// ours: it is ours now. Held by a live other: `LeaseError::Taken`.
    pub fn claim(&self, claim: &Claim, owner: &Owner, alive: &dyn Fn(&Owner, &Claim) -> bool) -> Result<(), LeaseError> {
        if let Some(holder) = self.holder(claim)
            && &holder != owner
            && alive(&holder, claim)
        {
            return Err(LeaseError::Taken { what: claim.describe(), owner: holder });
        }
        let path = self.dir.join(claim.file());
        let parent = path.parent().unwrap_or(&self.dir);
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(crate::state::at(parent))?;
        serde_json::to_writer(&mut tmp, owner).map_err(io::Error::other)?;
        tmp.persist(&path).map_err(|e| crate::state::at(&path)(e.error))?;
        Ok(())
    }

    /// Give a claim back, if it is `owner`'s (never another's).
    pub fn release(&self, claim: &Claim, owner: &Owner) -> io::Result<()> {
        if self.holder(claim).as_ref() == Some(owner) {
            let path = self.dir.join(claim.file());
            fs::remove_file(&path).map_err(crate::state::at(&path))?;
        }
        Ok(())
    }

    /// A free instance id range for `owner`, claimed: the search starts at a
    /// slot drawn from the state directory, so the first instance of two
    /// directories never gets the same range even after a reboot emptied the
    /// claims; `avoid` are ranges the owner's own directory already uses.
    pub fn instance_range(&self, owner: &Owner, avoid: &[u32], alive: &dyn Fn(&Owner, &Claim) -> bool) -> Result<u32, LeaseError> {
        let start = u32::from_str_radix(&state_key(&owner.state), 16).unwrap_or(0) % INSTANCE_SLOTS;
        for offset in 0..INSTANCE_SLOTS {
            let base = ID_BASE + (FIRST_INSTANCE_SLOT + (start + offset) % INSTANCE_SLOTS) * ID_RANGE;
            if avoid.contains(&base) {
                continue;
            }
            match self.claim(&Claim::Ids(base), owner, alive) {
                Ok(()) => return Ok(base),
                Err(LeaseError::Taken { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(LeaseError::NoIds)
    }

    /// Remove the claims whose owners are gone; what was removed.
    pub fn sweep(&self, alive: &dyn Fn(&Owner, &Claim) -> bool) -> Vec<String> {
        let mut removed = Vec::new();
        for (sub, make) in [("ids", claim_of_ids as fn(&str) -> Option<Claim>), ("cgroups", |n: &str| Some(Claim::Cgroup(n.to_string())))] {
            for entry in fs::read_dir(self.dir.join(sub)).into_iter().flatten().flatten() {
                let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
                let Some(claim) = make(&name) else { continue };
                if let Some(holder) = self.holder(&claim)
                    && !alive(&holder, &claim)
                    && fs::remove_file(entry.path()).is_ok()
                {
                    removed.push(claim.describe());
                }
            }
        }
        removed
    }
}

fn claim_of_ids(name: &str) -> Option<Claim> {
    let slot: u32 = name.parse().ok()?;
    (FIRST_INSTANCE_SLOT..FIRST_INSTANCE_SLOT + INSTANCE_SLOTS).contains(&slot).then(|| Claim::Ids(ID_BASE + slot * ID_RANGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(state: &Path, instance: &str) -> Owner {
        Owner { state: state.to_path_buf(), instance: instance.into() }
    }

    #[test]
    fn two_state_directories_get_different_ranges_and_never_share_one() {
        let tmp = tempfile::tempdir().unwrap();
        let leases = Leases::lock_in(&tmp.path().join("leases")).unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let alive = |_: &Owner, _: &Claim| true;
        let first_a = leases.instance_range(&owner(&a, "alice"), &[], &alive).unwrap();
        let first_b = leases.instance_range(&owner(&b, "alice"), &[], &alive).unwrap();
        assert_ne!(first_a, first_b);
        // A range held by a live other is refused, by name; a stale one is taken over.
        let taken = leases.claim(&Claim::Ids(first_a), &owner(&b, "bob"), &alive).unwrap_err().to_string();
        assert!(taken.contains(&format!("instance `alice` of the state directory {}", a.display())), "{taken}");
        leases.claim(&Claim::Ids(first_a), &owner(&b, "bob"), &|_, _| false).unwrap();
        assert_eq!(leases.holder(&Claim::Ids(first_a)), Some(owner(&b, "bob")));
        // Release never frees another's claim.
        leases.release(&Claim::Ids(first_a), &owner(&a, "alice")).unwrap();
        assert_eq!(leases.holder(&Claim::Ids(first_a)), Some(owner(&b, "bob")));
        leases.release(&Claim::Ids(first_a), &owner(&b, "bob")).unwrap();
        assert_eq!(leases.holder(&Claim::Ids(first_a)), None);
        // The same directory's instances: the next free range, avoiding its own.
        let second_b = leases.instance_range(&owner(&b, "carol"), &[first_b], &alive).unwrap();
        assert!(second_b != first_b && second_b >= ID_BASE + FIRST_INSTANCE_SLOT * ID_RANGE);
        let removed = leases.sweep(&|o, _| o.instance != "carol");
        assert_eq!(removed.len(), 1, "{removed:?}");
    }

    #[test]
    fn lease_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("leases");
        let leases = Leases::lock_in(&dir).unwrap();
        leases.claim(&Claim::Cgroup("inst-x".into()), &owner(tmp.path(), "x"), &|_, _| true).unwrap();
        for path in [dir.clone(), dir.join("ids"), dir.join("cgroups")] {
            assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o700, "{}", path.display());
        }
        for path in [dir.join("lock"), dir.join("cgroups/inst-x")] {
            assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600, "{}", path.display());
        }
        // A directory someone else made is refused, not used.
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("link")).unwrap();
        assert!(Leases::lock_in(&tmp.path().join("link")).is_err());
    }

    #[test]
    fn state_keys_are_short_and_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let key = state_key(tmp.path());
        assert_eq!(key.len(), 8);
        assert_eq!(key, state_key(&tmp.path().join(".")));
        assert_ne!(key, state_key(&tmp.path().join("other")));
    }
}

//! Where the tool keeps its state: `SANDBOX_HOME`, else `/var/lib/sandbox` for
//! root, else `$XDG_DATA_HOME/sandbox` (`~/.local/share/sandbox`); and whether
//! a sandbox can use it.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub fn home() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDBOX_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/sandbox");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("sandbox")
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state directory {} cannot be created: {}\n  fix: point SANDBOX_HOME at a directory on a writable disk", path.display(), cause(source))]
    Create { path: PathBuf, source: io::Error },
    #[error("the state directory {} is not writable: {}\n  fix: point SANDBOX_HOME at a directory on a writable disk", path.display(), cause(source))]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the state directory {home} lies below {blocked} ({why}), which the sandbox's setup cannot pass: it runs as host root \
         without its capabilities once the user namespace exists\n  fix: `chmod o+x {blocked}`, or point SANDBOX_HOME at a \
         directory whose parents root owns (for example /var/lib/sandbox)"
    )]
    Unreachable { home: PathBuf, blocked: PathBuf, why: String },
}

/// The state directory, created if need be; errors name the path.
pub fn ensure(home: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(home).map_err(|source| StateError::Create { path: home.to_path_buf(), source })
}

/// Whether a sandbox can use `home` (existing or not): a missing directory must
/// be creatable and an existing one writable (both tried for real, so a
/// read-only or pseudo filesystem is found), and as root every directory on
/// the way must be passable (see [`reachable`]). Nothing is left behind.
pub fn usable(home: &Path) -> Result<(), StateError> {
    if home.is_dir() {
        tempfile::Builder::new()
            .prefix(".sandbox-probe-")
            .tempfile_in(home)
            .map_err(|source| StateError::Write { path: home.to_path_buf(), source })?;
    } else {
        let ancestor = home.ancestors().skip(1).find(|p| p.exists()).unwrap_or(Path::new("/"));
        if !ancestor.is_dir() {
            let source = io::Error::new(io::ErrorKind::NotADirectory, format!("{} is not a directory", ancestor.display()));
            return Err(StateError::Create { path: home.to_path_buf(), source });
        }
        tempfile::Builder::new()
            .prefix(".sandbox-probe-")
            .tempdir_in(ancestor)
            .map_err(|source| StateError::Create { path: home.to_path_buf(), source })?;
    }
    if nix::unistd::geteuid().is_root() { reachable(home) } else { Ok(()) }
}

/// Root's sandboxes walk the state directory after `unshare(CLONE_NEWUSER)`:
/// still host uid 0, but without capabilities over the host's files, so only
/// the permission bits decide (CAP_DAC_OVERRIDE no longer applies). A 0700
/// directory of root's (`mktemp -d`, /root) is passable; one of another user's
/// is not.
pub fn reachable(home: &Path) -> Result<(), StateError> {
    let groups: Vec<u32> =
        nix::unistd::getgroups().unwrap_or_default().into_iter().map(|g| g.as_raw()).chain([nix::unistd::getegid().as_raw()]).collect();
    let absolute = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    for dir in absolute.ancestors().filter(|d| d.is_dir()) {
        let Ok(meta) = std::fs::metadata(dir) else { continue };
        let passable = if meta.uid() == 0 {
            meta.mode() & 0o100 != 0
        } else if groups.contains(&meta.gid()) {
            meta.mode() & 0o010 != 0
        } else {
            meta.mode() & 0o001 != 0
        };
        if !passable {
            let why = format!("mode {:04o}, owner uid {}", meta.mode() & 0o7777, meta.uid());
            return Err(StateError::Unreachable { home: home.to_path_buf(), blocked: dir.to_path_buf(), why });
        }
    }
    Ok(())
}

/// An I/O error that names the path it happened on: a full disk or a
/// read-only state directory is told with the place and the fix.
pub fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| {
        let fix = match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
                format!("\n  fix: free space on that disk (`df -h {}`)", existing.display())
            }
            io::ErrorKind::ReadOnlyFilesystem => "\n  fix: remount it read-write, or point SANDBOX_HOME at a writable disk".to_string(),
            _ => String::new(),
        };
        io::Error::new(e.kind(), format!("{}: {}{fix}", path.display(), cause(&e)))
    }
}

/// What went wrong, without the path a wrapped error may repeat (`at path …`).
pub fn cause(e: &io::Error) -> String {
    if let Some(errno) = e.raw_os_error() {
        return nix::errno::Errno::from_raw(errno).desc().to_string();
    }
    // tempfile wraps the system's error as `… (os error N) at path "…"`.
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_state_dir_must_be_creatable_and_writable() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(usable(&tmp.path().join("a/b")).is_ok());
        assert!(!tmp.path().join("a").exists(), "the probe leaves nothing behind");
        assert!(usable(tmp.path()).is_ok());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let error = usable(Path::new("/proc/sandbox-x")).unwrap_err().to_string();
        assert!(error.contains("/proc/sandbox-x cannot be created"), "{error}");
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(usable(&file.join("x")).is_err());
    }

    #[test]
    fn a_closed_directory_of_another_user_blocks_root_s_sandboxes() {
        let tmp = tempfile::tempdir().unwrap();
        let closed = tmp.path().join("alice");
        std::fs::create_dir(&closed).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Root's own closed directory is passable.
        if nix::unistd::geteuid().is_root() {
            assert!(reachable(&closed.join("home")).is_ok());
            nix::unistd::chown(&closed, Some(1234.into()), Some(1234.into())).unwrap();
            let error = reachable(&closed.join("home")).unwrap_err().to_string();
            assert!(error.contains(&format!("below {} (mode 0700, owner uid 1234)", closed.display())), "{error}");
            assert!(error.contains("chmod o+x"), "{error}");
        }
    }
}

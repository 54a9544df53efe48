//! Paths a profile names relative to its own folder (`[[rootfs.copy]] from`,
//! a relative `[[mounts]] source`) are resolved beneath that folder by the
//! kernel (`openat2` with `RESOLVE_BENEATH`): a symlink in a lab folder may
//! point elsewhere in it, never out of it (`files -> /root` is refused, with
//! the link named). The result is the real path, with no symlink left in it,
//! so the later stages can open it with `RESOLVE_NO_SYMLINKS` and notice a
//! link swapped in meanwhile.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use super::error::Problem;

/// The real path of `relative`, resolved beneath `dir` (itself a real path).
pub(super) fn resolve(key: &str, dir: &Path, relative: &str) -> Result<PathBuf, Problem> {
    let shown = relative.escape_debug();
    let dir_fd = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Problem::new(format!("cannot open the profile's folder {}: {e}", dir.display()), "check its permissions"))?;
    let how =
        OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&dir_fd, relative, how) {
        Ok(fd) => real_path(&fd),
        Err(Errno::ENOENT) => Err(Problem::new(
            format!("`{key}` names `{shown}`, which does not exist ({})", dir.join(relative).display().to_string().escape_debug()),
            "create it, or correct the path: it is relative to the directory of this profile file",
        )),
        Err(Errno::EXDEV) => Err(escape(key, dir, relative)),
        Err(Errno::ELOOP) => Err(Problem::new(
            format!("`{key}` names `{shown}`, which goes through too many symbolic links"),
            "replace the links by the files they lead to",
        )),
        Err(Errno::ENOSYS) => {
            Err(Problem::new("this kernel has no openat2 (Linux 5.6 or later is needed) to read lab files safely", "upgrade the kernel"))
        }
        Err(e) => Err(Problem::new(format!("`{key}` names `{shown}`, which cannot be opened: {e}"), "check its permissions")),
    }
}

/// Where an open descriptor is, as the kernel names it.
fn real_path(fd: &OwnedFd) -> Result<PathBuf, Problem> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Problem::new(format!("cannot read /proc/self/fd: {e}"), "mount /proc"))
}

/// Why `relative` leads out of `dir`: the first link whose target leaves it,
/// or a `..` that climbs above it.
fn escape(key: &str, dir: &Path, relative: &str) -> Problem {
    let fix = "copy the files into the profile's folder (links may point only inside it); \
               to show a host directory, use [[mounts]] with its absolute path";
    let shown = relative.escape_debug();
    let mut depth: usize = 0;
    let mut walked = PathBuf::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(name) => {
                walked.push(name);
                depth += 1;
                if let Ok(target) = std::fs::read_link(dir.join(&walked))
                    && (target.is_absolute() || leaves(&walked, &target))
                {
                    let link = walked.display().to_string();
                    return Problem::new(
                        format!(
                            "`{key}` names `{shown}`, but `{}` is a symbolic link to `{}`, outside the profile's folder",
                            link.escape_debug(),
                            target.display().to_string().escape_debug()
                        ),
                        fix,
                    );
                }
            }
            Component::ParentDir if depth == 0 => {
                return Problem::new(format!("`{key}` names `{shown}`, which climbs out of the profile's folder with `..`"), fix);
            }
            Component::ParentDir => {
                walked.pop();
                depth -= 1;
            }
            _ => {}
        }
    }
    Problem::new(format!("`{key}` names `{shown}`, which leads out of the profile's folder through a symbolic link"), fix)
}

/// Whether a relative link target, read at `link`, climbs above the folder.
fn leaves(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count() as isize - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

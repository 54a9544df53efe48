//! Lab files: the file or tree a `[[rootfs.copy]]` names, read through
//! directory descriptors so that nothing a lab author (or a racing student)
//! does to the folder meanwhile can pull a host file in.
//!
//! `from` is a real path (the profile resolved it beneath its folder), so it is
//! opened with `RESOLVE_NO_SYMLINKS`; below it every name is looked up with
//! `O_NOFOLLOW` in its parent's descriptor, and a directory that changed
//! between `fstatat` and `openat` is refused. Symlinks are kept as links, never
//! followed. Names are bytes: a CP949 name from an unpacked zip stays as it is.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::pseudofs::{self, Filesystems};

/// One file, directory or link of a lab tree.
pub(crate) struct LabItem {
    /// Below `from`; empty for `from` itself.
    pub relative: PathBuf,
    pub kind: LabKind,
    pub stat: FileStat,
}

pub(crate) enum LabKind {
    Dir,
    File,
    Symlink(PathBuf),
    /// A device, socket or fifo: left out.
    Other,
}

/// Why a lab tree could not be read: the path and the cause.
#[derive(Debug)]
pub(crate) struct LabError {
    pub path: PathBuf,
    pub cause: String,
    pub fix: &'static str,
}

const FIX_IO: &str = "check that the lab folder is readable, and that nothing changes it during the build";

/// Every item under `from` (or `from` alone when it is a file), parents first,
/// names in byte order.
pub(crate) fn walk(from: &Path, filesystems: &mut Filesystems) -> Result<Vec<LabItem>, LabError> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(nix::fcntl::AT_FDCWD, from, how).map_err(|e| error(from, e))?;
    let stat = fstat(&fd).map_err(|e| error(from, e))?;
    check_filesystem(filesystems, &stat, &fd, from)?;
    let mut out = Vec::new();
    match kind_of(&stat) {
        SFlag::S_IFDIR => {
            let dir = reopen_dir(&fd, &stat, from)?;
            out.push(LabItem { relative: PathBuf::new(), kind: LabKind::Dir, stat });
            walk_dir(dir, from, PathBuf::new(), filesystems, &mut out)?;
        }
        SFlag::S_IFREG => out.push(LabItem { relative: PathBuf::new(), kind: LabKind::File, stat }),
        // O_PATH | O_NOFOLLOW opens a final link itself.
        SFlag::S_IFLNK => return Err(error(from, Errno::ELOOP)),
        _ => {
            return Err(LabError {
                path: from.to_path_buf(),
                cause: "is not a regular file or a directory".into(),
                fix: "name a file or a directory of the lab",
            });
        }
    }
    Ok(out)
}

fn walk_dir(dir: OwnedFd, from: &Path, relative: PathBuf, filesystems: &mut Filesystems, out: &mut Vec<LabItem>) -> Result<(), LabError> {
    let here = from.join(&relative);
    let mut names: Vec<Vec<u8>> = Vec::new();
    {
        let listing = nix::dir::Dir::from_fd(dir.try_clone().map_err(|e| error(&here, Errno::from_raw(e.raw_os_error().unwrap_or(0))))?)
            .map_err(|e| error(&here, e))?;
        let mut listing = listing;
        for entry in listing.iter() {
            let entry = entry.map_err(|e| error(&here, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
    }
    names.sort();
    for name in names {
        let name = OsStr::from_bytes(&name);
        let child = relative.join(name);
        let path = from.join(&child);
        let stat = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| error(&path, e))?;
        match kind_of(&stat) {
            SFlag::S_IFDIR => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = openat(&dir, name, flags, Mode::empty()).map_err(|e| error(&path, e))?;
                let opened = fstat(&fd).map_err(|e| error(&path, e))?;
                if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
                    return Err(changed(&path));
                }
                check_filesystem(filesystems, &opened, &fd, &path)?;
                out.push(LabItem { relative: child.clone(), kind: LabKind::Dir, stat: opened });
                walk_dir(fd, from, child, filesystems, out)?;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(&dir, name).map_err(|e| error(&path, e))?;
                out.push(LabItem { relative: child, kind: LabKind::Symlink(PathBuf::from(target)), stat });
            }
            SFlag::S_IFREG => out.push(LabItem { relative: child, kind: LabKind::File, stat }),
            _ => out.push(LabItem { relative: child, kind: LabKind::Other, stat }),
        }
    }
    Ok(())
}

fn reopen_dir(fd: &OwnedFd, stat: &FileStat, path: &Path) -> Result<OwnedFd, LabError> {
    let dir = openat(fd, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| error(path, e))?;
    let opened = fstat(&dir).map_err(|e| error(path, e))?;
    if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(changed(path));
    }
    Ok(dir)
}

fn check_filesystem<Fd: AsFd>(filesystems: &mut Filesystems, stat: &FileStat, fd: Fd, path: &Path) -> Result<(), LabError> {
    match filesystems.pseudo_of(stat.st_dev, fd) {
        Some(fs) => Err(LabError {
            path: path.to_path_buf(),
            cause: pseudofs::why(fs),
            fix: "remove that mount from the lab folder: a lab holds ordinary files",
        }),
        None => Ok(()),
    }
}

fn kind_of(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

fn changed(path: &Path) -> LabError {
    LabError { path: path.to_path_buf(), cause: "changed while it was read (a directory was replaced)".into(), fix: FIX_IO }
}

fn error(path: &Path, errno: Errno) -> LabError {
    let cause = match errno {
        Errno::ELOOP => "became a symbolic link after the profile was read".to_owned(),
        other => other.desc().to_owned(),
    };
    LabError { path: path.to_path_buf(), cause, fix: FIX_IO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_bytes_names_and_keeps_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let odd = OsStr::from_bytes(b"\xc7\xd1\xb1\xdb.txt"); // 한글 in CP949
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub").join(odd), "x").unwrap();
        symlink("/etc", root.join("link")).unwrap();
        let items = walk(&root, &mut Filesystems::default()).unwrap();
        let names: Vec<&[u8]> = items.iter().map(|i| i.relative.as_os_str().as_bytes()).collect();
        assert_eq!(names, [&b""[..], b"link", b"sub", b"sub/\xc7\xd1\xb1\xdb.txt"]);
        assert!(matches!(&items[1].kind, LabKind::Symlink(t) if t == Path::new("/etc")));
    }

    #[test]
    fn a_symlink_in_the_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        symlink("/etc", root.join("files")).unwrap();
        let error = walk(&root.join("files"), &mut Filesystems::default()).err().unwrap();
        assert!(error.cause.contains("symbolic link"), "{error:?}");
    }
}

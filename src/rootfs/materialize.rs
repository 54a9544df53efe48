//! Making a manifest real on disk, safely.
//!
//! Every entry is created relative to a directory fd opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so no path, however it
//! was crafted, and no symlink already in the tree can make a write land
//! outside the new root. File content comes from the blob store: hard-linked
//! into the store's own trees, copied for `--out`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use super::blobs::Blobs;
use super::digest::ContentHashes;
use crate::resolve::{Entry, Kind, Manifest};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Hard links into the blob store: no file is stored twice.
    HardLink,
    /// Independent copies, for a tree handed to other tools.
    Copy,
}

/// Create every entry of `manifest` under the empty directory `root`.
pub fn materialize(root: &Path, manifest: &Manifest, hashes: &ContentHashes, blobs: &Blobs, content: Content) -> io::Result<()> {
    materialize_with_progress(root, manifest, hashes, blobs, content, &indicatif::ProgressBar::hidden())
}

/// `materialize`, moving `progress` one step per entry (a large build copies thousands).
pub fn materialize_with_progress(
    root: &Path,
    manifest: &Manifest,
    hashes: &ContentHashes,
    blobs: &Blobs,
    content: Content,
    progress: &indicatif::ProgressBar,
) -> io::Result<()> {
    progress.set_length(manifest.entries.len() as u64);
    let root_fd = open_dir(root)?;
    let as_root = nix::unistd::geteuid().is_root();
    let mut dirs = Vec::new();
    for entry in manifest.entries.values() {
        progress.inc(1);
        let Some(relative) = relative(&entry.path) else {
            dirs.push(entry); // the root itself: only its mode and owner
            continue;
        };
        let (parent, name) = split(&relative);
        let parent_fd = open_beneath(&root_fd, &parent).map_err(|e| with_path(e, &entry.path))?;
        match &entry.kind {
            Kind::Dir => {
                mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o700)).map_err(|e| with_path(e.into(), &entry.path))?;
                dirs.push(entry);
            }
            Kind::Symlink { target } => {
                symlinkat(target.as_os_str(), &parent_fd, name).map_err(|e| with_path(e.into(), &entry.path))?;
                if as_root {
                    fchownat(
                        &parent_fd,
                        name,
                        Some(Uid::from_raw(entry.uid)),
                        Some(Gid::from_raw(entry.gid)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| with_path(e.into(), &entry.path))?;
                }
            }
            Kind::Device { major, minor } => {
                // Only root may make device nodes; a tree built without root has none.
                if as_root {
                    let dev = nix::sys::stat::makedev(u64::from(*major), u64::from(*minor));
                    nix::sys::stat::mknodat(&parent_fd, name, nix::sys::stat::SFlag::S_IFCHR, Mode::from_bits_truncate(entry.mode), dev)
                        .map_err(|e| with_path(e.into(), &entry.path))?;
                    fchownat(
                        &parent_fd,
                        name,
                        Some(Uid::from_raw(entry.uid)),
                        Some(Gid::from_raw(entry.gid)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| with_path(e.into(), &entry.path))?;
                    // mknod applies the umask: set the mode exactly.
                    nix::sys::stat::fchmodat(
                        &parent_fd,
                        name,
                        Mode::from_bits_truncate(entry.mode),
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )
                    .map_err(|e| with_path(e.into(), &entry.path))?;
                }
            }
            Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. } => {
                let hash =
                    hashes.get(&entry.path).ok_or_else(|| io::Error::other(format!("no content hash for {}", entry.path.display())))?;
                let blob = blobs.get(entry, hash)?;
                place_file(&parent_fd, name, &blob, entry, content, as_root).map_err(|e| with_path(e, &entry.path))?;
            }
        }
    }
    // Directory modes last, deepest first: a 0555 directory must still take its children.
    for entry in dirs.into_iter().rev() {
        let fd = match relative(&entry.path) {
            None => open_dir(root)?,
            Some(rel) => open_beneath(&root_fd, &rel)?,
        };
        let fd = reopen_dir(&fd)?;
        if as_root {
            fchown(&fd, Some(Uid::from_raw(entry.uid)), Some(Gid::from_raw(entry.gid)))?;
        }
        fchmod(&fd, Mode::from_bits_truncate(entry.mode))?;
    }
    Ok(())
}

fn place_file(parent: &OwnedFd, name: &std::ffi::OsStr, blob: &Path, entry: &Entry, content: Content, as_root: bool) -> io::Result<()> {
    if content == Content::HardLink {
        match linkat(nix::fcntl::AT_FDCWD, blob, parent, name, AtFlags::empty()) {
            Ok(()) => return Ok(()),
            // Too many links to one blob (ext4 allows 65000): fall back to a copy.
            Err(nix::errno::Errno::EMLINK) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(parent, name, flags, Mode::from_bits_truncate(0o600))?;
    let mut out = File::from(fd);
    io::copy(&mut File::open(blob)?, &mut out)?;
    super::blobs::set_metadata(&out, entry, entry.mode, as_root)
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?)
}

/// Open a directory below `root` without following any symlink and without
/// leaving `root`.
fn open_beneath(root: &OwnedFd, relative: &Path) -> io::Result<OwnedFd> {
    if relative.as_os_str().is_empty() {
        return root.try_clone();
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(openat2(root.as_fd(), relative, how)?)
}

/// fchmod and fchown need a real fd, not an O_PATH one.
fn reopen_dir(fd: &OwnedFd) -> io::Result<OwnedFd> {
    Ok(openat(fd, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())?)
}

/// `/usr/bin/ls` -> `usr/bin/ls`; None for `/`.
fn relative(path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix("/").ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

fn split(relative: &Path) -> (PathBuf, &std::ffi::OsStr) {
    let parent = relative.parent().map(Path::to_path_buf).unwrap_or_default();
    (parent, relative.file_name().unwrap_or(relative.as_os_str()))
}

fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", String::from_utf8_lossy(path.as_os_str().as_bytes())))
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use crate::resolve::Reason;

    #[test]
    fn the_copy_moves_the_progress_bar_a_step_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = Manifest::default();
        let mut hashes = ContentHashes::new();
        let why = || Reason::Skeleton { why: "test".into() };
        let entry =
            |path: &str, kind: Kind| Entry { path: path.into(), kind, mode: 0o755, uid: 0, gid: 0, capability: None, reason: why() };
        manifest.entries.insert("/".into(), entry("/", Kind::Dir));
        for i in 0..50 {
            let path = std::path::PathBuf::from(format!("/f{i}"));
            let content = format!("file {i}\n");
            hashes.insert(path.clone(), super::super::digest::sha256_hex(content.as_bytes()));
            manifest.entries.insert(path.clone(), entry(&format!("/f{i}"), Kind::Inline { content }));
        }
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        let progress = indicatif::ProgressBar::hidden();
        materialize_with_progress(&tree, &manifest, &hashes, &Blobs::new(dir.path().join("blobs")), Content::Copy, &progress).unwrap();
        assert_eq!((progress.position(), progress.length()), (51, Some(51)), "not stuck at 0 for the whole copy");
    }
}

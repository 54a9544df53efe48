//! `sandbox verify`: every stored tree and blob re-hashed against what the
//! store says it holds. A write into a stored file (they are hard links to
//! shared blobs, so one write changes every environment that shares it) or a
//! disk error shows up here, and `build --locked` refuses such a tree.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use super::Store;
use super::digest;
use super::hashcache::hash_reader;
use crate::resolve::error::shown;
use crate::resolve::{Entry, Kind};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file in the store.
    pub path: PathBuf,
    pub what: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", shown(&self.path), self.what)
    }
}

/// The mode a stored file has: the entry's own. Not read-only: a sandbox
/// shows the stored inodes themselves (hard links, lower layer), so a 0644
/// file stored 0444 would be 0444 inside, against the lock; and for root, the
/// store's owner, mode bits stop no write anyway. The store is kept by its
/// root-only directories, and a write is found by `verify` and `build --locked`.
pub fn stored_mode(entry: &Entry) -> u32 {
    entry.mode
}

impl Store {
    /// The stored trees' digests.
    pub fn digests(&self) -> Vec<String> {
        let mut digests: Vec<String> = fs::read_dir(self.root().join("rootfs"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| digest::is_digest(name))
            .collect();
        digests.sort();
        digests
    }

    /// What is wrong with the tree `digest`: its record, each entry's kind,
    /// mode, owner, link target, capability and content, and files that
    /// should not be there.
    pub fn verify_tree(&self, digest: &str) -> Vec<Damage> {
        let tree = self.tree(digest);
        let damage = |path: &Path, what: String| Damage { path: path.to_path_buf(), what };
        let Some(record) = self.record(digest) else {
            return vec![damage(&tree.with_extension("json"), "the tree's record is missing or unreadable".into())];
        };
        if digest::digest(&record.manifest, &record.hashes) != digest {
            return vec![damage(&tree.with_extension("json"), "the record does not give the tree's digest".into())];
        }
        let root = match nix::fcntl::open(&tree, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => return vec![damage(&tree, format!("cannot be opened: {}", e.desc()))],
        };
        let as_root = nix::unistd::geteuid().is_root();
        let mut found = Vec::new();
        for entry in record.manifest.entries.values() {
            let on_disk = tree.join(entry.path.strip_prefix("/").unwrap_or(&entry.path));
            if let Some(what) = check_entry(&root, entry, record.hashes.get(&entry.path), as_root) {
                found.push(damage(&on_disk, what));
            }
        }
        let mut present = Vec::new();
        walk(&tree, &tree, &mut present);
        for path in present {
            let inside = Path::new("/").join(&path);
            if !record.manifest.entries.contains_key(&inside) {
                found.push(damage(&tree.join(&path), "is not part of this environment".into()));
            }
        }
        found
    }

    /// Blobs whose content does not have the hash their name says.
    pub fn verify_blobs(&self) -> Vec<Damage> {
        let dir = self.root().join("blobs");
        let mut found = Vec::new();
        let mut names: Vec<PathBuf> = fs::read_dir(&dir).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in names {
            let Some(expected) =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('-').next()).filter(|h| digest::is_digest(h))
            else {
                continue; // a temporary file of a build in progress
            };
            match File::open(&path).and_then(|mut f| hash_reader(&mut f)) {
                Ok(hash) if hash == expected => {}
                Ok(_) => found.push(Damage { path, what: "its content changed: every environment that links it is affected".into() }),
                Err(e) => found.push(Damage { what: format!("cannot be read: {e}"), path }),
            }
        }
        found
    }
}

fn check_entry(root: &OwnedFd, entry: &Entry, hash: Option<&String>, as_root: bool) -> Option<String> {
    let relative = entry.path.strip_prefix("/").ok().filter(|r| !r.as_os_str().is_empty());
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = match relative {
        None => root.try_clone().ok()?,
        Some(relative) => match openat2(root, relative, how) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Some("is missing".into()),
            Err(e) => return Some(format!("cannot be opened: {}", e.desc())),
        },
    };
    let meta = match nix::sys::stat::fstat(&fd) {
        Ok(stat) => Meta(stat),
        Err(e) => return Some(format!("cannot be read: {}", e.desc())),
    };
    let kind_ok = match &entry.kind {
        Kind::Dir => meta.is_dir(),
        Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. } => meta.is_file(),
        Kind::Symlink { .. } => meta.is_symlink(),
        // A tree built without root has no device nodes.
        Kind::Device { .. } => meta.is_char_device() || !as_root,
    };
    if !kind_ok {
        return Some(format!("should be a {}", entry.kind.name()));
    }
    if let Kind::Symlink { target } = &entry.kind {
        let read = match nix::fcntl::readlinkat(&fd, "") {
            Ok(read) => read,
            Err(e) => return Some(format!("cannot be read: {}", e.desc())),
        };
        return (Path::new(&read) != target).then(|| format!("links to {} instead of {}", shown(Path::new(&read)), shown(target)));
    }
    if matches!(entry.kind, Kind::Device { .. }) && !as_root {
        return None;
    }
    let mode = meta.mode() & 0o7777;
    let file = matches!(entry.kind, Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. });
    if mode != entry.mode && !(file && mode == stored_mode(entry)) {
        return Some(format!("has mode {mode:04o} instead of {:04o}", entry.mode));
    }
    if as_root && (meta.uid(), meta.gid()) != (entry.uid, entry.gid) {
        return Some(format!("is owned by {}:{} instead of {}:{}", meta.uid(), meta.gid(), entry.uid, entry.gid));
    }
    if !file {
        return None;
    }
    let Some(mut content) = reopen(&fd) else { return Some("cannot be opened for reading".into()) };
    if as_root && capability(&content) != entry.capability {
        return Some("its file capabilities changed".into());
    }
    match hash_reader(&mut content) {
        Ok(actual) if Some(&actual) == hash => None,
        Ok(_) => Some("its content changed".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// fstat's answer with the questions `check_entry` asks.
struct Meta(nix::sys::stat::FileStat);

impl Meta {
    fn kind(&self) -> u32 {
        self.0.st_mode & libc::S_IFMT
    }
    fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }
    fn is_char_device(&self) -> bool {
        self.kind() == libc::S_IFCHR
    }
    fn mode(&self) -> u32 {
        self.0.st_mode
    }
    fn uid(&self) -> u32 {
        self.0.st_uid
    }
    fn gid(&self) -> u32 {
        self.0.st_gid
    }
}

fn reopen(fd: &OwnedFd) -> Option<File> {
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    // SAFETY: a NUL-terminated path; the returned descriptor is owned by the File.
    // The magic link names exactly the file the O_PATH descriptor holds.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: `raw` is a new descriptor nobody else owns.
    (raw >= 0).then(|| unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

fn capability(file: &File) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    // SAFETY: valid fd, NUL-terminated name, buffer valid for its length.
    let n = unsafe { libc::fgetxattr(file.as_raw_fd(), c"security.capability".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// Every path below `dir`, relative to `root`, without following links.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        }
    }
}

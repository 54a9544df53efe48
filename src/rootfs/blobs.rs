//! The blob store: each distinct file (content, mode, owner, capability) once.
//! Rootfs trees hard-link to blobs, so thirty environments that share Python
//! store it once. Blobs are only ever created complete (temp file + rename).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::resolve::{Entry, Kind};

pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub fn new(dir: PathBuf) -> Blobs {
        Blobs { dir }
    }

    /// The blob for an entry with this content hash, created if missing.
    pub fn get(&self, entry: &Entry, hash: &str) -> io::Result<PathBuf> {
        let mut name = format!("{hash}-{:o}-{}-{}", entry.mode, entry.uid, entry.gid);
        if let Some(cap) = &entry.capability {
            name += &format!("-{}", hex::encode(cap));
        }
        let path = self.dir.join(name);
        if path.exists() {
            return Ok(path);
        }
        let in_store = |e| super::store::at(&self.dir, e);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(in_store)?;
        let mut writer = HashingWriter { inner: tmp.as_file_mut(), hasher: Sha256::new() };
        match &entry.kind {
            Kind::File { source } => {
                let mut file = super::source::open(source, entry).map_err(|e| super::store::at(source, e))?;
                io::copy(&mut file, &mut writer).map_err(in_store)?;
            }
            Kind::Inline { content } => writer.write_all(content.as_bytes()).map_err(in_store)?,
            Kind::Data { content } => writer.write_all(content).map_err(in_store)?,
            _ => return Err(io::Error::other("only files have blobs")),
        }
        // The hash the digest used was taken earlier: check the copy is of the same bytes.
        if hex::encode(writer.hasher.finalize()) != hash {
            return Err(io::Error::other(format!("{} changed while it was copied; build again", entry.path.display())));
        }
        set_metadata(tmp.as_file(), entry, super::verify::stored_mode(entry), nix::unistd::geteuid().is_root()).map_err(in_store)?;
        // Another build may have made the same blob meanwhile: theirs is identical.
        if let Err(e) = tmp.persist_noclobber(&path)
            && e.error.kind() != io::ErrorKind::AlreadyExists
        {
            return Err(e.error);
        }
        Ok(path)
    }
}

struct HashingWriter<'f> {
    inner: &'f mut File,
    hasher: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Owner, then mode, then capability: in this order, because chown clears the
/// setuid bit and file capabilities.
pub fn set_metadata(file: &File, entry: &Entry, mode: u32, as_root: bool) -> io::Result<()> {
    if as_root {
        nix::unistd::fchown(file, Some(entry.uid.into()), Some(entry.gid.into()))?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(cap) = &entry.capability {
        // SAFETY: valid fd, NUL-terminated name, buffer valid for its length.
        let rc = unsafe { libc::fsetxattr(file.as_raw_fd(), c"security.capability".as_ptr(), cap.as_ptr().cast(), cap.len(), 0) };
        if rc != 0 && as_root {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn ensure_dir(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)
}

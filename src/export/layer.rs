//! One image layer: a reproducible tar, gzip-compressed, hashed both ways.
//!
//! Reproducible means: members in path order, every timestamp the same
//! (`SOURCE_DATE_EPOCH` or 0), numeric owners from the manifest and no user or
//! group names, PAX records only where ustar cannot say it (long names, file
//! capabilities), and a gzip header with no time and no file name.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::diff::Change;
use super::{Context, ExportError, Result};
use crate::resolve::{Entry, Kind};

/// The PAX record that carries a file capability, as GNU tar, Go's archive/tar,
/// umoci and containerd read it.
pub const CAPABILITY_RECORD: &str = "SCHILY.xattr.security.capability";

/// What the image config and manifest say about a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:` of the uncompressed tar: the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// `sha256:` of the compressed blob: its name under `blobs/sha256/`.
    pub digest: String,
    pub size: u64,
}

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    pub inner: W,
    hasher: Sha256,
    pub bytes: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing { inner, hasher: Sha256::new(), bytes: 0 }
    }
    /// `sha256:<hex>` of everything written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hasher.finalize())), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A gzip stream with a fixed header: no modification time (0), no file name,
/// "unknown" OS, the default level.
pub fn gzip<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new().mtime(0).operating_system(255).write(out, Compression::default())
}

/// Write the layer of `members` to `out` (gzip), reading file contents from
/// `tree`, the level's stored rootfs.
/// `progress` moves a step per member.
pub fn write_layer<W: Write>(
    members: &BTreeMap<PathBuf, Change>,
    tree: &Path,
    mtime: u64,
    out: W,
    progress: &indicatif::ProgressBar,
) -> Result<(W, LayerBlob)> {
    let compressed = Hashing::new(out);
    let uncompressed = Hashing::new(gzip(compressed));
    let mut builder = tar::Builder::new(uncompressed);
    progress.set_position(0);
    progress.set_length(members.len() as u64);
    for (path, change) in members {
        append_member(&mut builder, path, change, tree, mtime)?;
        progress.inc(1);
    }
    let uncompressed = builder.into_inner().context(|| "finishing the layer tar".into())?;
    let (gz, diff_id, _) = uncompressed.finish();
    let compressed = gz.finish().context(|| "finishing the gzip stream".into())?;
    let (out, digest, size) = compressed.finish();
    Ok((out, LayerBlob { diff_id, digest, size }))
}

fn append_member<W: Write>(builder: &mut tar::Builder<W>, path: &Path, change: &Change, tree: &Path, mtime: u64) -> Result<()> {
    let name = member_name(path, matches!(change, Change::Put(Entry { kind: Kind::Dir, .. })));
    let mut header = Header::new_ustar();
    header.set_mtime(mtime);
    // A whiteout is root's; every other member gets the manifest's owner below.
    header.set_uid(0);
    header.set_gid(0);
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    set_name(&mut header, &name, &mut pax);
    let entry = match change {
        Change::Whiteout => {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(0);
            return append(builder, header, &pax, io::empty(), path);
        }
        Change::Put(entry) => entry,
    };
    header.set_mode(entry.mode);
    header.set_uid(u64::from(entry.uid));
    header.set_gid(u64::from(entry.gid));
    header.set_size(0);
    if let Some(capability) = &entry.capability {
        pax.push((CAPABILITY_RECORD, capability.clone()));
    }
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(EntryType::Directory);
            append(builder, header, &pax, io::empty(), path)
        }
        Kind::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            set_link(&mut header, target.as_os_str().as_bytes(), &mut pax);
            append(builder, header, &pax, io::empty(), path)
        }
        Kind::Device { major, minor } => {
            header.set_entry_type(EntryType::Char);
            header.set_device_major(*major).context(|| path.display().to_string())?;
            header.set_device_minor(*minor).context(|| path.display().to_string())?;
            append(builder, header, &pax, io::empty(), path)
        }
        Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. } => {
            header.set_entry_type(EntryType::Regular);
            let stored = tree.join(path.strip_prefix("/").unwrap_or(path));
            // O_NOFOLLOW: the stored tree holds files at these paths, never links.
            let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&stored).at(&stored)?;
            let size = file.metadata().at(&stored)?.len();
            header.set_size(size);
            // `take` so that a file that grew cannot overrun its header's size.
            append(builder, header, &pax, file.take(size), path)
        }
    }
}

fn append<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    mut header: Header,
    pax: &[(&str, Vec<u8>)],
    data: R,
    path: &Path,
) -> Result<()> {
    let what = || format!("writing {} into the layer", path.display());
    if !pax.is_empty() {
        builder.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice()))).context(what)?;
    }
    header.set_cksum();
    let expected = header.size().unwrap_or(0);
    let mut counted = Counting { inner: data, bytes: 0 };
    builder.append(&header, &mut counted).context(what)?;
    if counted.bytes != expected {
        return Err(ExportError::Invalid(format!("{} changed size while it was exported; export again", path.display())));
    }
    Ok(())
}

struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `/` -> `./`, `/usr/bin` -> `usr/bin/` for a directory, `usr/bin/ls` for anything else.
fn member_name(path: &Path, is_dir: bool) -> Vec<u8> {
    let relative = path.strip_prefix("/").unwrap_or(path).as_os_str().as_bytes();
    if relative.is_empty() {
        return b"./".to_vec();
    }
    let mut name = relative.to_vec();
    if is_dir {
        name.push(b'/');
    }
    name
}

/// The name in the ustar fields when it fits (100 bytes, or prefix + name),
/// else a PAX `path` record, which every reader of OCI layers honours.
fn set_name(header: &mut Header, name: &[u8], pax: &mut Vec<(&str, Vec<u8>)>) {
    let fits = std::str::from_utf8(name).is_ok() && header.set_path(Path::new(std::ffi::OsStr::from_bytes(name))).is_ok();
    if !fits {
        let field = &mut header.as_old_mut().name;
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name[..n]);
        pax.push(("path", name.to_vec()));
    }
}

fn set_link(header: &mut Header, target: &[u8], pax: &mut Vec<(&str, Vec<u8>)>) {
    if target.len() <= 100 && header.set_link_name_literal(target).is_ok() {
        return;
    }
    let field = &mut header.as_old_mut().linkname;
    let n = target.len().min(field.len());
    field[..n].copy_from_slice(&target[..n]);
    pax.push(("linkpath", target.to_vec()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Reason;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry { path: path.into(), kind, mode: 0o755, uid: 1000, gid: 1000, capability: None, reason: Reason::Skeleton { why: "t".into() } }
    }

    fn members(entries: &[Entry]) -> BTreeMap<PathBuf, Change<'_>> {
        entries.iter().map(|e| (e.path.clone(), Change::Put(e))).collect()
    }

    #[test]
    fn the_same_members_give_the_same_bytes_and_readers_see_them() {
        let long = format!("/{}", "d".repeat(120));
        let mut ping = entry("/ping", Kind::Symlink { target: long.clone().into() });
        ping.capability = Some(vec![0, 0, 0, 2, 0, 0x20, 0, 0]);
        let entries = vec![
            entry("/", Kind::Dir),
            entry(&long, Kind::Dir),
            entry("/dev", Kind::Dir),
            entry("/dev/null", Kind::Device { major: 1, minor: 3 }),
            ping,
        ];
        let tree = tempfile::tempdir().unwrap();
        let (first, blob) = write_layer(&members(&entries), tree.path(), 0, Vec::new(), &indicatif::ProgressBar::hidden()).unwrap();
        let progress = indicatif::ProgressBar::hidden();
        let (again, _) = write_layer(&members(&entries), tree.path(), 0, Vec::new(), &progress).unwrap();
        assert_eq!(progress.position(), members(&entries).len() as u64, "the bar moves a step per member");
        assert_eq!(first, again);
        assert_eq!(blob.size, first.len() as u64);
        assert_eq!(&first[..4], &[0x1f, 0x8b, 8, 0], "gzip, no flags (no name)");
        assert_eq!(&first[4..8], &[0, 0, 0, 0], "no gzip mtime");

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(first.as_slice()));
        let mut seen = Vec::new();
        for member in archive.entries().unwrap() {
            let mut member = member.unwrap();
            let path = member.path().unwrap().into_owned();
            let header = member.header().clone();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.uid().unwrap(), 1000);
            assert_eq!(header.username().unwrap().unwrap_or(""), "", "no user names");
            let cap = member.pax_extensions().unwrap().and_then(|mut exts| {
                exts.find_map(|e| e.ok().filter(|e| e.key() == Ok(CAPABILITY_RECORD)).map(|e| e.value_bytes().to_vec()))
            });
            seen.push((path.display().to_string(), header.entry_type(), cap));
        }
        assert_eq!(seen[0].0, "./");
        assert_eq!(seen[1].0.trim_end_matches('/'), &long[1..], "a long name comes back whole");
        assert_eq!(seen[3], ("dev/null".into(), EntryType::Char, None));
        assert_eq!(seen[4].2, Some(vec![0, 0, 0, 2, 0, 0x20, 0, 0]), "the capability as a PAX xattr");
    }
}

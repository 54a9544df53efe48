//! Where a lab comes from: the binary itself, or a folder the caller named
//! (`--labs DIR` or `SANDBOX_LABS`) that only its owner (root, or the user who
//! runs the tool) can change. Labs run as root on a class server, so a folder
//! someone else may write, or a link that leads out of it, is refused.

use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::embedded::EmbeddedLab;

/// Lab files are short texts; this bounds what a hostile folder can make us read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug)]
pub enum Origin {
    Embedded(&'static EmbeddedLab),
    /// A checked folder (see [`trusted_folder`]).
    Folder(PathBuf),
}

impl Origin {
    /// A file of the lab, by its path inside the lab folder.
    pub fn read(&self, relative: &str) -> io::Result<Vec<u8>> {
        match self {
            Origin::Embedded((_, files)) => files
                .iter()
                .find(|(name, _)| *name == relative)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{relative}: not in this lab"))),
            Origin::Folder(dir) => read_bounded(&dir.join(relative)),
        }
    }

    /// Every file of the lab, relative paths in order (for extraction).
    pub fn files(&self) -> io::Result<Vec<(String, Vec<u8>)>> {
        match self {
            Origin::Embedded((_, files)) => Ok(files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect()),
            Origin::Folder(dir) => {
                let mut out = Vec::new();
                walk(dir, "", &mut out)?;
                Ok(out)
            }
        }
    }

    /// How the lab is named in messages: `labs/03-pid/lab.toml (built in)` or the path.
    pub fn describe(&self, relative: &str) -> String {
        match self {
            Origin::Embedded((id, _)) => format!("labs/{id}/{relative} (built in)"),
            Origin::Folder(dir) => dir.join(relative).display().to_string(),
        }
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{name}/"), out)?;
        } else {
            out.push((name, read_bounded(&entry.path())?));
        }
    }
    Ok(())
}

/// Read a regular file, never through a final symlink, at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a regular file", path.display())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: larger than 1 MiB", path.display())));
    }
    Ok(bytes)
}

/// Why a lab folder is not to be trusted, with the fix.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {cause}\n  fix: {fix}")]
pub struct Untrusted {
    pub path: String,
    pub cause: String,
    pub fix: String,
}

/// The folder of extra labs, if it may be used: it and every folder above it
/// belong to root (or to the user running the tool) and nobody else may write
/// them, and every entry inside is a directory or regular file of that owner,
/// not writable by others (no symlinks, devices or FIFOs). Returns the folder
/// with no symlink in its path.
pub fn trusted_folder(dir: &Path) -> Result<PathBuf, Untrusted> {
    let untrusted = |path: &Path, cause: String, fix: &str| Untrusted { path: path.display().to_string(), cause, fix: fix.into() };
    let real = std::fs::canonicalize(dir).map_err(|e| untrusted(dir, e.to_string(), "name an existing folder of labs"))?;
    let me = nix::unistd::geteuid().as_raw();
    let fix = "make root the owner and let nobody else write: `chown -R root:root DIR && chmod -R go-w DIR`";
    let check = |path: &Path, meta: &std::fs::Metadata| -> Result<(), Untrusted> {
        if meta.uid() != 0 && meta.uid() != me {
            return Err(untrusted(path, format!("owned by uid {}, not by root", meta.uid()), fix));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(untrusted(path, format!("others may write it (mode {:o})", meta.mode() & 0o7777), fix));
        }
        Ok(())
    };
    for ancestor in real.ancestors() {
        let meta = std::fs::symlink_metadata(ancestor).map_err(|e| untrusted(ancestor, e.to_string(), fix))?;
        check(ancestor, &meta)?;
    }
    let mut stack = vec![real.clone()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| untrusted(&folder, e.to_string(), fix))? {
            let entry = entry.map_err(|e| untrusted(&folder, e.to_string(), fix))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| untrusted(&path, e.to_string(), fix))?;
            if !meta.is_dir() && !meta.is_file() {
                return Err(untrusted(&path, "not a regular file or folder (a link, device or FIFO)".into(), "keep only plain files"));
            }
            check(&path, &meta)?;
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn folder() -> tempfile::TempDir {
        // Under the target directory: /tmp itself is writable by everyone.
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/lab-folders");
        std::fs::create_dir_all(&base).unwrap();
        tempfile::tempdir_in(base).unwrap()
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_folder_others_may_write_is_refused() {
        let dir = folder();
        let lab = dir.path().join("01-x");
        std::fs::create_dir(&lab).unwrap();
        std::fs::write(lab.join("lab.toml"), "x").unwrap();
        set_mode(dir.path(), 0o755);
        set_mode(&lab, 0o755);
        set_mode(&lab.join("lab.toml"), 0o644);
        let ancestors_ok = dir.path().ancestors().all(|a| std::fs::metadata(a).is_ok_and(|m| m.mode() & 0o022 == 0));
        if !ancestors_ok {
            eprintln!("skipped: the target directory is writable by others");
            return;
        }
        trusted_folder(dir.path()).unwrap();
        set_mode(&lab.join("lab.toml"), 0o666);
        let e = trusted_folder(dir.path()).unwrap_err();
        assert!(e.cause.contains("others may write"), "{e}");
        set_mode(&lab.join("lab.toml"), 0o644);
        set_mode(&lab, 0o777);
        assert!(trusted_folder(dir.path()).is_err());
        set_mode(&lab, 0o755);
        std::os::unix::fs::symlink("/etc/shadow", lab.join("answers")).unwrap();
        let e = trusted_folder(dir.path()).unwrap_err();
        assert!(e.cause.contains("link"), "{e}");
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = folder();
        set_mode(dir.path(), 0o755);
        std::fs::write(dir.path().join("lab.toml"), "x").unwrap();
        nix::unistd::chown(&dir.path().join("lab.toml"), Some(1000.into()), None).unwrap();
        let e = trusted_folder(dir.path()).unwrap_err();
        assert!(e.cause.contains("owned by uid 1000"), "{e}");
    }

    #[test]
    fn files_are_read_without_following_links() {
        let dir = folder();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("README.en.md")).unwrap();
        let origin = Origin::Folder(dir.path().to_path_buf());
        assert!(origin.read("README.en.md").is_err());
    }
}

//! `[limits] disk`: an instance's writable layer lives on an ext4 image of
//! its own, a sparse file in the instance's directory whose size is the cap.
//! A student who fills it fills their own filesystem (ENOSPC inside), never
//! the state directory's. Why an image and not project quotas: a quota
//! needs the state directory's filesystem mounted with `prjquota` (ext4) or
//! `pquota` (xfs), which a class server's usually is not, and changing that
//! means a remount or a reboot; an image works on ext4, xfs, btrfs or
//! anything else that holds a sparse file, and `mkfs.ext4` (e2fsprogs) is on
//! every Debian and Ubuntu server. This module makes and measures images; the
//! executor (`isolate`) attaches and mounts them.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The instance's image, in its directory.
pub const IMAGE: &str = "disk.img";
/// Where the image is mounted (inside the sandbox's mount namespace only), in
/// the instance's directory; `upper/` and `work/` are on the image.
pub const MOUNT_POINT: &str = "layer";

/// The places mkfs.ext4 is found on Debian and Ubuntu, then the PATH.
const MKFS: &[&str] = &["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "mkfs.ext4"];

/// Make `image`: `size` bytes (sparse: it takes space as the student writes),
/// an ext4 filesystem whose root, `upper/` (0755) and `work/` (0700) belong
/// to the instance's root (`owner` on the host). No blocks are reserved for
/// host root: the whole cap is the student's. Written beside it and renamed
/// over it, so a failure leaves the old image (or none), never half of one.
pub fn create(image: &Path, size: u64, owner: u32) -> io::Result<()> {
    let dir = image.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new().prefix(".disk-").tempdir_in(dir)?;
    for (sub, mode) in [("", 0o755), ("upper", 0o755), ("work", 0o700)] {
        let path = staging.path().join(sub);
        fs::create_dir_all(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&path, Some(owner), Some(owner))?;
    }
    let new = tempfile::Builder::new().prefix(".disk-").suffix(".img").tempfile_in(dir)?;
    new.as_file().set_len(size)?;
    let mkfs = MKFS.iter().find(|p| !p.starts_with('/') || Path::new(p).is_file()).copied().unwrap_or("mkfs.ext4");
    let mut mkfs_command = Command::new(mkfs);
    mkfs_command.args(["-q", "-F", "-t", "ext4", "-m", "0", "-L", "sandbox-layer"]);
    if size >= 256 << 20 {
        // mkfs would give a 1G image a 32M journal; 8M is plenty for one student.
        mkfs_command.args(["-J", "size=8"]);
    }
    let output =
        mkfs_command.arg("-E").arg(format!("root_owner={owner}:{owner}")).arg("-d").arg(staging.path()).arg(new.path()).output().map_err(
            |e| {
                io::Error::new(
                    e.kind(),
                    format!("{mkfs}: {e}\n  fix: install e2fsprogs (`apt install e2fsprogs`), which makes the instance's disk image"),
                )
            },
        )?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!("{mkfs} {}: {}", new.path().display(), crate::escape::line(said.trim().as_bytes()))));
    }
    new.persist(image).map_err(|e| e.error)?;
    Ok(())
}

/// What the image holds on the host: its allocated bytes (a sparse file
/// grows as the student writes; deleted files give blocks back, the mount
/// discards them). It counts ext4's own journal and tables too, which take
/// part of the cap as well. Read from the file, so it works whether or not
/// the instance runs.
pub fn usage(image: &Path) -> Option<Usage> {
    let meta = fs::metadata(image).ok()?;
    Some(Usage { used: meta.blocks() * 512, cap: meta.len() })
}

/// Caps are not reserved: an image takes host space only as its student
/// writes. What the images could still take, against what the filesystem
/// holding them (`dir`'s) has free; `Some` when they would not fit.
pub fn overcommit(images: &[std::path::PathBuf], dir: &Path) -> Option<Overcommit> {
    let room: u64 = images.iter().filter_map(|image| usage(image)).map(|u| u.cap.saturating_sub(u.used)).sum();
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    (room > free).then_some(Overcommit { images: images.len(), room, free })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overcommit {
    pub images: usize,
    /// Bytes the images may still take before each reaches its cap.
    pub room: u64,
    /// Bytes free for them (as an unprivileged writer sees it: root's reserve not counted).
    pub free: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Bytes of the host's disk the image takes now.
    pub used: u64,
    /// The image's size: the most it can ever take.
    pub cap: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_beyond_the_free_space_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let stat = nix::sys::statvfs::statvfs(dir.path()).unwrap();
        let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        let image = |name: &str, size: u64| {
            let path = dir.path().join(name);
            fs::File::create(&path).unwrap().set_len(size).unwrap();
            path
        };
        let small = image("small.img", 16 << 20);
        assert_eq!(overcommit(std::slice::from_ref(&small), dir.path()), None, "16M fits in {free} free bytes");
        // Two sparse images that together could take more than is free.
        let (a, b) = (image("a.img", free / 2 + (1 << 30)), image("b.img", free / 2 + (1 << 30)));
        let over = overcommit(&[small, a, b], dir.path()).expect("the caps do not fit");
        assert_eq!(over.images, 3);
        assert!(over.room > over.free && over.room >= free + (2 << 30), "{over:?}");
    }

    #[test]
    fn an_image_is_sparse_and_owned_by_the_instance() {
        if !nix::unistd::geteuid().is_root() || !MKFS.iter().any(|p| Path::new(p).is_file()) {
            eprintln!("skipped: needs root and mkfs.ext4");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join(IMAGE);
        create(&image, 64 << 20, 1_234_567).unwrap();
        let usage = usage(&image).unwrap();
        assert_eq!(usage.cap, 64 << 20);
        assert!(usage.used < usage.cap / 2, "sparse: {usage:?}");
        let listing = Command::new("debugfs").args(["-R", "ls -l /"]).arg(&image).output().unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        for name in ["upper", "work"] {
            let line = listing.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("{name} in {listing}"));
            assert!(line.contains("1234567  1234567"), "{line}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no staging left behind");
    }
}

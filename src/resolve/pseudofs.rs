//! Pseudo-filesystems: procfs, sysfs and the like hold no files a rootfs may
//! take (`/proc/self/environ` is root's environment, reading `/proc/kmsg`
//! blocks forever). They are told apart by the filesystem's magic number from
//! statfs, never by path prefix: a bind mount of /proc elsewhere is still procfs.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;

/// statfs magic numbers (linux/magic.h) of filesystems whose files are the
/// kernel's state rather than data.
const PSEUDO: &[(i64, &str)] = &[
    (0x9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x1cd1, "devpts"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x6265_6570, "configfs"),
    (0x6573_5543, "fusectl"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x1980_0202, "mqueue"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6e73_6673, "nsfs"),
    (0x6e73_6664, "autofs"),
];

/// tmpfs's magic, which devtmpfs shares: /dev is told apart by mountinfo.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Which filesystems (by device number) are pseudo-filesystems, asked once per device.
#[derive(Default)]
pub(crate) struct Filesystems {
    known: HashMap<u64, Option<&'static str>>,
}

impl Filesystems {
    /// The pseudo-filesystem `path` (on device `dev`) is on, if it is on one.
    pub(crate) fn pseudo_at(&mut self, dev: u64, path: &Path) -> Option<&'static str> {
        if let Some(known) = self.known.get(&dev) {
            return *known;
        }
        let found = nix::sys::statfs::statfs(path).ok().and_then(|s| classify(magic(&s), dev));
        self.known.insert(dev, found);
        found
    }

    /// The same, for an open file or directory.
    pub(crate) fn pseudo_of<Fd: AsFd>(&mut self, dev: u64, fd: Fd) -> Option<&'static str> {
        if let Some(known) = self.known.get(&dev) {
            return *known;
        }
        let found = nix::sys::statfs::fstatfs(fd).ok().and_then(|s| classify(magic(&s), dev));
        self.known.insert(dev, found);
        found
    }
}

// `f_type` is a word whose width depends on the architecture.
#[allow(clippy::unnecessary_cast)]
fn magic(stat: &nix::sys::statfs::Statfs) -> i64 {
    stat.filesystem_type().0 as i64
}

fn classify(magic: i64, dev: u64) -> Option<&'static str> {
    if let Some((_, name)) = PSEUDO.iter().find(|(m, _)| *m == magic) {
        return Some(name);
    }
    (magic == TMPFS_MAGIC && is_devtmpfs(dev)).then_some("devtmpfs")
}

/// Whether the mount of device `dev` is a devtmpfs, per /proc/self/mountinfo
/// (field 3 is major:minor, the field after " - " the filesystem type).
fn is_devtmpfs(dev: u64) -> bool {
    let wanted = format!("{}:{}", nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    mounts.lines().any(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2);
        let fstype = line.split(" - ").nth(1).and_then(|rest| rest.split(' ').next());
        device == Some(wanted.as_str()) && fstype == Some("devtmpfs")
    })
}

/// What to say about a pseudo-filesystem in an error.
pub(crate) fn why(fs: &str) -> String {
    format!("it is on {fs}, a pseudo-filesystem: its files are the kernel's live state, not files to copy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn proc_and_sys_are_pseudo_and_usr_is_not() {
        let mut filesystems = Filesystems::default();
        let at = |fs: &mut Filesystems, p: &str| fs.pseudo_at(std::fs::metadata(p).unwrap().dev(), Path::new(p));
        assert_eq!(at(&mut filesystems, "/proc/self"), Some("procfs"));
        assert_eq!(at(&mut filesystems, "/proc/self"), Some("procfs"), "remembered");
        if Path::new("/sys/kernel").is_dir() {
            assert_eq!(at(&mut filesystems, "/sys/kernel"), Some("sysfs"));
        }
        assert_eq!(at(&mut filesystems, "/usr"), None);
        if std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(" /dev rw") {
            assert_eq!(at(&mut filesystems, "/dev"), Some("devtmpfs"));
        }
    }
}

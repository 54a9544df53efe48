//! The skeleton every rootfs holds, whatever the profile: the directories a
//! program expects and the few /etc files that make names work
//! (`ls -l` shows `student`, not `1000`).

use crate::profile::Profile;

/// A directory of the skeleton: path, mode, and whether the profile's user owns it.
pub struct SkeletonDir {
    pub path: String,
    pub mode: u32,
    pub user_owned: bool,
    pub why: &'static str,
}

pub struct SkeletonFile {
    pub path: &'static str,
    pub content: String,
    pub why: &'static str,
}

pub fn dirs(profile: &Profile) -> Vec<SkeletonDir> {
    let d = |path: &str, mode, why| SkeletonDir { path: path.into(), mode, user_owned: false, why };
    let mut dirs = vec![
        d("/", 0o755, "the root of the environment"),
        d("/proc", 0o555, "mount point for procfs: ps and /proc/self need it"),
        d("/sys", 0o555, "mount point for sysfs"),
        d("/dev", 0o755, "mount point for the minimal /dev"),
        d("/dev/pts", 0o755, "mount point for a private devpts (terminals)"),
        d("/dev/shm", 0o1777, "POSIX shared memory"),
        d("/tmp", 0o1777, "scratch space every user may write, sticky"),
        d("/etc", 0o755, "configuration"),
        d("/root", 0o700, "root's home"),
        d("/home", 0o755, "homes of the users"),
        d("/run", 0o755, "runtime state"),
        d("/var", 0o755, "variable data"),
        d("/var/tmp", 0o1777, "scratch space kept across reboots"),
    ];
    let home = &profile.user.home;
    if profile.user.uid != 0 && !dirs.iter().any(|x| &x.path == home) {
        dirs.push(SkeletonDir { path: home.clone(), mode: 0o755, user_owned: true, why: "the home of the profile's user" });
    }
    dirs
}

/// Character devices every program may open: (path, major, minor).
pub const DEVICES: &[(&str, u32, u32)] =
    &[("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)];

/// The standard links of /dev: (path, target).
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

pub fn files(profile: &Profile) -> Vec<SkeletonFile> {
    let user = &profile.user;
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    if user.uid != 0 {
        passwd += &format!("{}:x:{}:{}:{}:{}:{}\n", user.name, user.uid, user.gid, user.name, user.home, user.shell);
    }
    if user.gid != 0 && user.gid != 65534 {
        group += &format!("{}:x:{}:\n", user.name, user.gid);
    }
    passwd += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    group += "nogroup:x:65534:\n";
    let hostname = &profile.run.hostname;
    vec![
        SkeletonFile { path: "/etc/passwd", content: passwd, why: "user names for ls -l, id, whoami and ps" },
        SkeletonFile { path: "/etc/group", content: group, why: "group names for ls -l and id" },
        SkeletonFile {
            path: "/etc/hosts",
            content: format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
            why: "names of this machine and of localhost",
        },
        SkeletonFile {
            path: "/etc/nsswitch.conf",
            content: "passwd:    files\ngroup:     files\nshadow:    files\nhosts:     files dns\n\
                      networks:  files\nprotocols: files\nservices:  files\nethers:    files\nrpc:       files\n"
                .into(),
            why: "tells glibc to look names up in the files above (the host's may name modules that are not here)",
        },
    ]
}

//! A privileged call as data: what the recorder logs, what snapshot tests
//! compare and what a step's `syscall` text is rendered from. `Display`
//! writes each as the C call(s) the real kernel implementation makes.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

use super::{MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::plan::{CgroupWrite, Namespace};

/// The event channel's number in step texts (it is only known at run time).
pub(crate) const TEXT_CHANNEL: RawFd = -100;

/// The arguments of mount(2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountArgs {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fstype: Option<&'static str>,
    pub flags: MsFlags,
    pub data: Option<String>,
}

impl MountArgs {
    /// mount(source, target, fstype, flags, data) of a new filesystem.
    pub fn fs(fstype: &'static str, source: &str, target: impl Into<PathBuf>, flags: MsFlags, data: Option<String>) -> MountArgs {
        MountArgs { source: Some(PathBuf::from(source)), target: target.into(), fstype: Some(fstype), flags, data }
    }

    /// A bind mount of `source` on `target`.
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>, flags: MsFlags) -> MountArgs {
        MountArgs { source: Some(source.into()), target: target.into(), fstype: None, flags: MsFlags::MS_BIND | flags, data: None }
    }

    /// A change of `target`'s flags or propagation (no source, no type).
    pub fn change(target: impl Into<PathBuf>, flags: MsFlags) -> MountArgs {
        MountArgs { source: None, target: target.into(), fstype: None, flags, data: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Clone3 { flags: CloneFlags, into_cgroup: Option<PathBuf> },
    Fork,
    Wait { pid: i32 },
    Kill { pid: i32, signal: Signal },
    ParentDeathSignal,
    OpenPath { path: PathBuf },
    TakeTerminal,
    Unshare { flags: CloneFlags },
    Setns { pid: i32, namespaces: Vec<Namespace> },
    Mount(MountArgs),
    MountSetattr { path: PathBuf, recursive: bool, set: u64 },
    Umount { target: PathBuf, flags: MntFlags },
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    IdmappedTree { path: PathBuf, userns_of: i32 },
    AttachMount { target: PathBuf },
    DiskMount { image: PathBuf, readonly: bool },
    Chroot { path: PathBuf },
    Chdir { path: PathBuf },
    Sethostname { name: String },
    CreateFile { path: PathBuf, mode: u32 },
    Mkdir { path: PathBuf, mode: u32 },
    Symlink { target: PathBuf, link: PathBuf },
    WriteFile { path: PathBuf, content: String },
    LoopbackUp,
    SetIds { uid: u32, gid: u32, clear_groups: bool },
    SetDumpable,
    KeepCapabilities { keep: Vec<String> },
    NoNewPrivs,
    Seccomp { instructions: usize },
    Setsid,
    JoinSessionKeyring,
    Dup3 { from: RawFd, to: RawFd },
    CloseRange { first: u32, last: u32 },
    CgroupCreate { dirs: Vec<PathBuf>, enable: Option<CgroupWrite> },
    CgroupJoin { procs: Vec<PathBuf>, pid: i32 },
    CgroupMoveSelf { leaf: PathBuf },
    CgroupRemove { dirs: Vec<PathBuf> },
}

/// `MsFlags(MS_BIND | MS_REC)` -> `MS_BIND|MS_REC`: flags as C code writes them.
pub(crate) fn c_flags(flags: impl fmt::Debug) -> String {
    let text = format!("{flags:?}");
    let inner = match (text.find('('), text.ends_with(')')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => &text,
    };
    if inner.is_empty() || inner == "0x0" { "0".to_string() } else { inner.replace(" | ", "|") }
}

fn quoted(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!("{:?}", p.display().to_string())).unwrap_or_else(|| "NULL".into())
}

fn q(path: &std::path::Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn pid_text(pid: i32) -> String {
    if pid > 0 { pid.to_string() } else { "PID".to_string() }
}

fn attrs(set: u64) -> String {
    let names: Vec<&str> =
        [(MOUNT_ATTR_RDONLY, "RDONLY"), (MOUNT_ATTR_NOSUID, "NOSUID"), (MOUNT_ATTR_NODEV, "NODEV"), (MOUNT_ATTR_IDMAP, "IDMAP")]
            .iter()
            .filter(|(bit, _)| set & bit != 0)
            .map(|(_, name)| *name)
            .collect();
    names.iter().map(|n| format!("MOUNT_ATTR_{n}")).collect::<Vec<_>>().join("|")
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Clone3 { flags, into_cgroup } => {
                let mut all = c_flags(flags);
                if all == "0" {
                    all.clear();
                }
                match into_cgroup {
                    Some(dir) => {
                        let sep = if all.is_empty() { "" } else { "|" };
                        write!(f, "clone3({{.flags = {all}{sep}CLONE_INTO_CGROUP, .cgroup = open({}), .exit_signal = SIGCHLD}})", q(dir))
                    }
                    None if all.is_empty() => write!(f, "fork()"),
                    None => write!(f, "clone3({{.flags = {all}, .exit_signal = SIGCHLD}})"),
                }
            }
            Call::Fork => write!(f, "fork()"),
            Call::Wait { pid } => write!(f, "waitpid({}, &status, 0)", pid_text(*pid)),
            Call::Kill { pid, signal } => write!(f, "kill({}, {signal})", pid_text(*pid)),
            Call::ParentDeathSignal => write!(f, "prctl(PR_SET_PDEATHSIG, SIGKILL)"),
            Call::OpenPath { path } => write!(f, "open({}, O_PATH|O_DIRECTORY)", q(path)),
            Call::TakeTerminal => write!(f, "ioctl(TTY, TIOCSCTTY, 0)"),
            Call::Unshare { flags } => write!(f, "unshare({})", c_flags(flags)),
            Call::Setns { pid, namespaces } => {
                let pid = pid_text(*pid);
                let calls: Vec<String> =
                    namespaces.iter().map(|n| format!("setns(open(\"/proc/{pid}/ns/{}\"), 0)", n.proc_name())).collect();
                write!(f, "{}", calls.join("; "))
            }
            Call::Mount(MountArgs { source, target, fstype, flags, data }) => write!(
                f,
                "mount({}, {}, {}, {}, {})",
                quoted(source),
                q(target),
                fstype.map(|t| format!("{t:?}")).unwrap_or_else(|| "NULL".into()),
                c_flags(flags),
                data.as_ref().map(|d| format!("{d:?}")).unwrap_or_else(|| "NULL".into())
            ),
            Call::MountSetattr { path, recursive, set } => {
                let at = if *recursive { "AT_RECURSIVE" } else { "0" };
                write!(f, "mount_setattr(AT_FDCWD, {}, {at}, {{.attr_set = {}}})", q(path), attrs(*set))
            }
            Call::Umount { target, flags } => write!(f, "umount2({}, {})", q(target), c_flags(flags)),
            Call::PivotRoot { new_root, put_old } => write!(f, "pivot_root({}, {})", q(new_root), q(put_old)),
            Call::IdmappedTree { path, userns_of } => write!(
                f,
                "open_tree(AT_FDCWD, {}, OPEN_TREE_CLONE|AT_RECURSIVE); mount_setattr(TREE, \"\", AT_EMPTY_PATH|AT_RECURSIVE, \
                 {{.attr_set = MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY|MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV, .propagation = MS_PRIVATE, .userns_fd = open(\"/proc/{}/ns/user\")}})",
                q(path),
                pid_text(*userns_of)
            ),
            Call::DiskMount { image, readonly } => {
                let (open_flags, lo_flags, options, attrs) = if *readonly {
                    (
                        "O_RDONLY",
                        "LO_FLAGS_AUTOCLEAR|LO_FLAGS_READ_ONLY",
                        "fsconfig(FS, FSCONFIG_SET_FLAG, \"ro\"); fsconfig(FS, FSCONFIG_SET_FLAG, \"noload\")",
                        "MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV|MOUNT_ATTR_RDONLY",
                    )
                } else {
                    ("O_RDWR", "LO_FLAGS_AUTOCLEAR", "fsconfig(FS, FSCONFIG_SET_FLAG, \"discard\")", "MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV")
                };
                write!(
                    f,
                    "ioctl(open(\"/dev/loop-control\"), LOOP_CTL_GET_FREE); ioctl(open(\"/dev/loopN\"), LOOP_CONFIGURE, \
                     {{.fd = open({}, {open_flags}), .info.lo_flags = {lo_flags}}}); FS = fsopen(\"ext4\", FSOPEN_CLOEXEC); \
                     fsconfig(FS, FSCONFIG_SET_STRING, \"source\", \"/dev/loopN\"); {options}; fsconfig(FS, FSCONFIG_CMD_CREATE); \
                     fsmount(FS, FSMOUNT_CLOEXEC, {attrs})",
                    q(image)
                )
            }
            Call::AttachMount { target } => write!(f, "move_mount(TREE, \"\", AT_FDCWD, {}, MOVE_MOUNT_F_EMPTY_PATH)", q(target)),
            Call::Chroot { path } => write!(f, "chroot({})", q(path)),
            Call::Chdir { path } => write!(f, "chdir({})", q(path)),
            Call::Sethostname { name } => write!(f, "sethostname({name:?})"),
            Call::CreateFile { path, mode } => write!(f, "mknod({}, S_IFREG|{mode:o}, 0)", q(path)),
            Call::Mkdir { path, mode } => write!(f, "mkdir({}, {mode:o})", q(path)),
            Call::Symlink { target, link } => write!(f, "symlink({}, {})", q(target), q(link)),
            Call::WriteFile { path, content } => write!(f, "write(open({}), {content:?})", q(path)),
            Call::LoopbackUp => write!(f, "ioctl(socket(AF_INET), SIOCSIFFLAGS, {{\"lo\", IFF_UP|IFF_RUNNING}})"),
            Call::SetIds { uid, gid, clear_groups } => {
                let groups = if *clear_groups { "setgroups(0, NULL); " } else { "" };
                write!(
                    f,
                    "{groups}setresgid({gid}, {gid}, {gid}); prctl(PR_SET_KEEPCAPS, 1); setresuid({uid}, {uid}, {uid}); prctl(PR_SET_KEEPCAPS, 0)"
                )
            }
            Call::SetDumpable => write!(f, "prctl(PR_SET_DUMPABLE, 1)"),
            Call::KeepCapabilities { keep } => {
                let kept = if keep.is_empty() { "none".to_string() } else { keep.join(",") };
                write!(f, "prctl(PR_CAPBSET_DROP, CAP) for every other CAP; prctl(PR_CAP_AMBIENT_CLEAR_ALL); capset(keep: {kept})")
            }
            Call::NoNewPrivs => write!(f, "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)"),
            Call::Seccomp { instructions } => {
                write!(f, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {{.len = {instructions}}})")
            }
            Call::Setsid => write!(f, "setsid()"),
            Call::JoinSessionKeyring => write!(f, "keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"),
            Call::Dup3 { from, to } => {
                let from = if *from == TEXT_CHANNEL { "CHANNEL".to_string() } else { from.to_string() };
                write!(f, "dup3({from}, {to}, O_CLOEXEC)")
            }
            Call::CloseRange { first, last } => {
                let last = if *last == u32::MAX { "~0U".to_string() } else { last.to_string() };
                write!(f, "close_range({first}, {last}, 0)")
            }
            Call::CgroupCreate { dirs, enable } => {
                write!(f, "{}", dirs.iter().map(|d| format!("mkdir({}, 0755)", q(d))).collect::<Vec<_>>().join("; "))?;
                match enable {
                    Some(CgroupWrite { file, value }) => write!(f, "; write(open({}), {value:?})", q(file)),
                    None => Ok(()),
                }
            }
            Call::CgroupJoin { procs, pid } => {
                let pid = if *pid == 0 { "getpid()".to_string() } else { pid_text(*pid) };
                write!(f, "{}", procs.iter().map(|p| format!("write(open({}), \"{pid}\")", q(p))).collect::<Vec<_>>().join("; "))
            }
            Call::CgroupMoveSelf { leaf } => {
                write!(f, "mkdir({0}, 0755); write(open(\"{1}/cgroup.procs\"), getpid())", q(leaf), leaf.display())
            }
            Call::CgroupRemove { dirs } => {
                let rmdirs: Vec<String> = dirs.iter().map(|d| format!("rmdir({})", q(d))).collect();
                write!(f, "kill(PID, SIGKILL) for every PID in cgroup.procs; {}", rmdirs.join("; "))
            }
        }
    }
}

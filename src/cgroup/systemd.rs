//! Under systemd, a delegated scope of the tool's own for the sandbox's cgroups.
//!
//! systemd owns the cgroup tree it set up; a program may only manage a subtree
//! systemd delegated to it (CGROUP_DELEGATION.md). So where systemd is PID 1
//! (`/run/systemd/system` exists) and a profile asks for limits, the tool asks
//! systemd for a transient scope holding only its own process, with
//! `Delegate=yes`, as runc's systemd driver, crun and podman do:
//! `org.freedesktop.systemd1.Manager.StartTransientUnit` on the system bus as
//! root, on the user's bus (the user's service manager) otherwise, then waits
//! for the job's `JobRemoved` signal. Inside the scope it lays out its cgroups
//! as systemd-nspawn does in its own: the tool in `supervisor`, the sandboxes
//! beside it ([`crate::cgroup::site`], the "alone in its cgroup" case).
//!
//! ```text
//! system.slice/sandbox-4242-9f3a61c0.scope/    Delegate=yes: ours to manage
//! ├── supervisor/                              this tool
//! └── sandbox-run-4242-1b/                     the sandbox: limits, processes
//! ```
//!
//! The exchange runs in a short-lived helper process ([`helper`]): a D-Bus
//! connection brings threads (zbus's executor and reactor), and the launcher
//! must stay single-threaded, since a user namespace can only be entered by a
//! single-threaded process and clone3's child must never inherit a lock held
//! by a thread that does not exist there. When systemd cannot be asked or
//! says no, the caller falls back to placing the cgroups without it, with one
//! line saying why. The decision itself ([`decide`]) only reads, so it is
//! tested on fake trees.

mod bus;
mod helper;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;

use super::detect::CgroupLayout;
use super::site::{SiteKind, v2_site};

/// Scopes this tool asks for start with this (and never `sandbox-run-`, which
/// leftovers take for a crashed run's cgroup).
pub const SCOPE_PREFIX: &str = "sandbox-";
/// How long systemd may take to start the scope (runc waits as long).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Which service manager to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    /// The system bus: PID 1 itself, for root.
    System,
    /// The user's bus (`DBUS_SESSION_BUS_ADDRESS`, or `$XDG_RUNTIME_DIR/bus`):
    /// the user's own systemd, which has the controllers delegated to the user.
    User,
}

impl Bus {
    pub fn describe(self) -> &'static str {
        match self {
            Bus::System => "the system bus",
            Bus::User => "your user's bus (systemd --user)",
        }
    }
}

/// Why the tool does not ask systemd (none of these is worth a note).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stay {
    /// No limits are wanted: the sandbox's cgroup only holds its processes.
    NoLimits,
    /// systemd is not PID 1.
    NotSystemd,
    /// Not a pure cgroup v2 machine (v1 limits go where v1 puts them).
    NotV2,
    /// `--cgroup-parent` names the place.
    CgroupParent,
    /// The tool runs in the root cgroup, or already in a `supervisor` leaf
    /// (a `sandbox start` made the scope and its supervisors were born in it).
    Placed,
    /// The tool's cgroup is delegated to it already (`systemd-run --scope -p
    /// Delegate=yes`, or a scope this tool asked for) and holds only it.
    Delegated,
    /// This process asked once already.
    AskedBefore,
}

/// What to do before the sandbox's cgroups are placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    Ask(Bus),
    Stay(Stay),
}

/// What [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// Prefixed to `/run/systemd/system` (tests use a fake tree).
    pub root: &'a Path,
    pub layout: &'a CgroupLayout,
    pub wants_limits: bool,
    /// `--cgroup-parent`.
    pub parent: Option<&'a Path>,
    pub self_pid: i32,
    pub euid_is_root: bool,
}

/// Whether to ask systemd for a scope, and on which bus. Reads only.
pub fn decide(s: &Situation) -> Decision {
    if !s.wants_limits {
        return Decision::Stay(Stay::NoLimits);
    }
    // systemd's own test (sd_booted): this directory exists only under it.
    if !s.root.join("run/systemd/system").is_dir() {
        return Decision::Stay(Stay::NotSystemd);
    }
    let CgroupLayout::V2 { unified } = s.layout else { return Decision::Stay(Stay::NotV2) };
    if s.parent.is_some() {
        return Decision::Stay(Stay::CgroupParent);
    }
    if let Ok(site) = v2_site(unified, None, s.self_pid) {
        match site.kind {
            SiteKind::Root | SiteKind::InLeaf => return Decision::Stay(Stay::Placed),
            SiteKind::MoveSelf if is_ours(&site.base) || is_delegated(&site.base) => return Decision::Stay(Stay::Delegated),
            // Alone in a cgroup systemd did not delegate (a service's), or
            // beside other processes: a scope of its own either way.
            _ => {}
        }
    }
    Decision::Ask(if s.euid_is_root { Bus::System } else { Bus::User })
}

/// A scope this tool asked for (`sandbox-<pid>-<hex>.scope`).
fn is_ours(dir: &Path) -> bool {
    dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(SCOPE_PREFIX) && n.ends_with(".scope"))
}

/// systemd marks a delegated cgroup with the xattr `trusted.delegate=1`
/// (readable by root) and, since v252, `user.delegate=1` (by anyone).
fn is_delegated(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).unwrap_or_default();
        let mut value = [0u8; 8];
        // SAFETY: both strings are NUL-terminated and the buffer's length is given.
        let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        n > 0 && &value[..n as usize] == b"1"
    })
}

/// The name of the scope for this process: its pid, and a random part so a
/// later process with the same pid never meets a unit of an earlier one.
pub fn scope_name(pid: u32, random: u32) -> String {
    format!("{SCOPE_PREFIX}{pid}-{random:08x}.scope")
}

/// A property of the transient unit, as data (D-Bus `(sv)` pairs, built in [`bus`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    Bool(bool),
    Str(String),
    /// `au`
    Pids(Vec<u32>),
}

/// What to ask systemd for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    pub bus: Bus,
    /// `sandbox-<pid>-<hex>.scope`
    pub name: String,
    /// The process the scope holds: the tool itself.
    pub pid: u32,
}

impl ScopeRequest {
    pub fn new(bus: Bus, pid: u32, random: u32) -> ScopeRequest {
        ScopeRequest { bus, name: scope_name(pid, random), pid }
    }

    /// The unit's properties, in the order they are sent.
    pub fn properties(&self) -> Vec<(&'static str, Property)> {
        vec![
            ("Description", Property::Str(format!("sandbox: the cgroups of the sandboxes of process {}", self.pid))),
            ("PIDs", Property::Pids(vec![self.pid])),
            // The subtree is ours: we create cgroups, enable controllers and
            // move processes in it. (Delegated units also default to
            // OOMPolicy=continue: a sandbox's OOM kill does not stop the scope.)
            ("Delegate", Property::Bool(true)),
            // Stopped only when its processes are gone, not at shutdown's
            // first step: the tool ends its sandboxes itself.
            ("DefaultDependencies", Property::Bool(false)),
            // A scope that ended in failure (its last process killed) is
            // unloaded too, rather than listed as failed forever.
            ("CollectMode", Property::Str("inactive-or-failed".to_owned())),
        ]
    }

    /// The job mode: refuse rather than replace a unit of the same name.
    pub fn mode(&self) -> &'static str {
        "fail"
    }
}

/// What asking systemd came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Not asked, and why (silently).
    Stayed(Stay),
    /// The tool now runs in this scope (its cgroup under the mount).
    Entered { scope: String, cgroup: PathBuf },
    /// Asked, and it did not work: the one line to show.
    Failed(String),
}

impl Outcome {
    /// The note for people, when systemd was asked and did not give a scope.
    pub fn note(&self) -> Option<String> {
        match self {
            Outcome::Failed(why) => {
                Some(format!("systemd did not give the sandbox a delegated scope ({why}); its cgroups are placed without systemd"))
            }
            _ => None,
        }
    }
}

static ASKED: OnceLock<Outcome> = OnceLock::new();

/// Before the sandbox's cgroups are placed: under systemd, with limits
/// wanted, move this process into a delegated scope of its own. Once per
/// process (a second call returns the first outcome); reads the real system.
pub fn enter_scope(wants_limits: bool) -> Outcome {
    if let Some(first) = ASKED.get() {
        return match first {
            Outcome::Failed(_) => first.clone(),
            _ => Outcome::Stayed(Stay::AskedBefore),
        };
    }
    let outcome = enter_scope_now(wants_limits);
    if !matches!(outcome, Outcome::Stayed(Stay::NoLimits)) {
        let _ = ASKED.set(outcome.clone());
    }
    outcome
}

fn enter_scope_now(wants_limits: bool) -> Outcome {
    if !wants_limits {
        return Outcome::Stayed(Stay::NoLimits);
    }
    let layout = match super::detect() {
        Ok(layout) => layout,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let parent = super::options::current().parent;
    let pid = std::process::id();
    let situation = Situation {
        root: Path::new("/"),
        layout: &layout,
        wants_limits,
        parent: parent.as_deref(),
        self_pid: pid as i32,
        euid_is_root: nix::unistd::geteuid().is_root(),
    };
    let bus = match decide(&situation) {
        Decision::Stay(why) => return Outcome::Stayed(why),
        Decision::Ask(bus) => bus,
    };
    let request = ScopeRequest::new(bus, pid, random_u32());
    if let Err(why) = helper::ask(&request, JOB_TIMEOUT) {
        return Outcome::Failed(why);
    }
    // systemd moved us when it started the scope: check, rather than trust.
    let after = match super::detect() {
        Ok(CgroupLayout::V2 { unified }) => unified,
        _ => return Outcome::Failed("the cgroup layout could not be read again after the scope started".into()),
    };
    match after.own_path {
        Some(cgroup) if cgroup.file_name().is_some_and(|n| n == request.name.as_str()) => Outcome::Entered { scope: request.name, cgroup },
        _ => Outcome::Failed(format!("systemd started {} but this process is in {}", request.name, after.cgroup_path)),
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom fills at most the buffer's length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    if n == 4 {
        u32::from_ne_bytes(bytes)
    } else {
        // Early boot without entropy: the time's nanoseconds are enough to tell runs apart.
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
    }
}

/// For `doctor`: where the scope would go and what it would get, without
/// asking. The scope lands in a slice of the manager that starts it; it gets
/// every controller that manager has (Delegate=yes: systemd enables them all
/// down to the scope): PID 1 has the root's, a user's manager what its
/// user@UID.service was delegated.
pub fn expected_scope(layout: &CgroupLayout, bus: Bus) -> Option<(PathBuf, Vec<String>)> {
    let unified = layout.unified()?;
    let (slice, from) = match bus {
        Bus::System => (unified.mount.join("system.slice"), unified.mount.clone()),
        // The user's manager runs in user@UID.service; its scopes go in app.slice under it.
        Bus::User => {
            let own = unified.own_path.as_ref()?;
            let uid = nix::unistd::getuid().as_raw();
            let manager = unified.mount.join(format!("user.slice/user-{uid}.slice/user@{uid}.service"));
            if !own.starts_with(&manager) && !manager.is_dir() {
                return None;
            }
            (manager.join("app.slice"), manager)
        }
    };
    let text = std::fs::read_to_string(from.join("cgroup.controllers")).unwrap_or_default();
    let controllers = text.split_whitespace().map(str::to_owned).collect();
    Some((slice.join(format!("{SCOPE_PREFIX}{}-<random>.scope", std::process::id())), controllers))
}

#[cfg(test)]
mod tests;

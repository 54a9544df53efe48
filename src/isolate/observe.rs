//! Observations: what a step changed, read from the kernel in this very run
//! (never canned), for `explain` and the JSON events.

use std::collections::BTreeMap;

use crate::plan::Action;

/// What is read before a step, to compare after.
pub enum Before {
    Nothing,
    Mounts(usize),
    /// `mount --make-rprivate /` changes no mount count, only propagation.
    SharedMounts(usize),
    Capabilities(String),
    Hostname(String),
}

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").map(|t| t.lines().count()).unwrap_or(0)
}

/// Mounts with a `shared:N` tag (before the " - " separator of mountinfo).
fn shared_mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().filter(|l| l.split(" - ").next().is_some_and(|f| f.contains(" shared:"))).count())
        .unwrap_or(0)
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string())))
        .unwrap_or_default()
}

fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn before(action: &Action) -> Before {
    match action {
        Action::MakeMountsPrivate => Before::SharedMounts(shared_mount_count()),
        Action::BindRootfs { .. }
        | Action::MountProc { .. }
        | Action::MountDev { .. }
        | Action::MountDevpts { .. }
        | Action::MountTmp { .. }
        | Action::MountSys { .. }
        | Action::BindMount { .. }
        | Action::PivotRoot { .. }
        | Action::MaskPaths { .. } => Before::Mounts(mount_count()),
        Action::DropCapabilities { .. } | Action::SetUser { .. } => Before::Capabilities(status_field("CapEff:")),
        Action::SetHostname { .. } => Before::Hostname(hostname()),
        _ => Before::Nothing,
    }
}

pub fn after(action: &Action, before: Before, observed: &mut BTreeMap<String, String>) {
    match before {
        Before::Mounts(n) => {
            observed.insert("mounts_before".into(), n.to_string());
            observed.insert("mounts_after".into(), mount_count().to_string());
        }
        Before::SharedMounts(n) => {
            observed.insert("shared_before".into(), n.to_string());
            observed.insert("shared_after".into(), shared_mount_count().to_string());
        }
        Before::Capabilities(caps) => {
            observed.insert("capabilities_before".into(), caps);
            observed.insert("capabilities_after".into(), status_field("CapEff:"));
            observed.insert("bounding_after".into(), status_field("CapBnd:"));
            observed.insert("uid".into(), status_field("Uid:"));
        }
        Before::Hostname(old) => {
            observed.insert("hostname_before".into(), old);
            observed.insert("hostname_after".into(), hostname());
        }
        Before::Nothing => {}
    }
    if let Action::PivotRoot { .. } = action {
        let mut names: Vec<String> = std::fs::read_dir("/")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        observed.insert("root_listing".into(), names.join(" "));
    }
    if let Action::NoNewPrivs = action {
        observed.insert("no_new_privs".into(), status_field("NoNewPrivs:"));
    }
    if let Action::Seccomp { .. } = action {
        observed.insert("seccomp".into(), status_field("Seccomp:"));
    }
}

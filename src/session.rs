//! A session: everything gathered from the host before a sandbox starts (the
//! cgroup placement, an id range of its own), turned into the plan that
//! `run`, `explain` and `--dry-run` share.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cgroup::{self, CgroupManager};
use crate::plan::{self, CgroupPlan, CgroupWrite, IdMapping, Input, Plan};
use crate::profile::{Mode, Profile};

/// Host ids of sandboxes start here: far above any real user, below the
/// kernel's limit, one range of 65536 per running sandbox.
pub const ID_BASE: u32 = 1_000_000_000;
pub const ID_SLOTS: u32 = 4096;

pub struct Session {
    pub plan: Plan,
    pub cgroup: Option<Box<dyn CgroupManager>>,
    /// Things that will not be as the profile asks, said before starting.
    pub warnings: Vec<String>,
    /// Held while the sandbox runs: its id range is not given to another.
    _lease: Option<File>,
}

pub struct Request<'a> {
    pub profile: &'a Profile,
    pub mode: Mode,
    pub rootfs: PathBuf,
    pub command: Vec<String>,
    /// A name for the cgroup (`run-<pid>`, or the instance's).
    pub name: String,
    /// Build the plan only: no cgroup is created, no id range is taken.
    pub dry_run: bool,
    /// A named instance: its writable layer, and the id range it always keeps
    /// (so the files its students wrote keep their owners).
    pub layer: Option<crate::plan::Layer>,
    pub id_base: Option<u32>,
    /// A one-off run: a writable throwaway layer over the rootfs (see `Input::throwaway`).
    pub throwaway: bool,
}

pub fn prepare(request: &Request, _state: &Path) -> std::io::Result<Session> {
    let profile = request.profile;
    let mut warnings = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    let idmapped = root && idmapped_mounts_supported();
    // A dry run shows the map a real run would use: a range for root, the
    // caller's own id otherwise.
    let (ids, lease) = if request.dry_run && root {
        (IdMapping::Range { host_base: ID_BASE }, None)
    } else if let (true, Some(base)) = (root, request.id_base) {
        (IdMapping::Range { host_base: base }, None)
    } else if root {
        // Machine-wide, not per state directory: two teachers' runs never share ids.
        let (base, lease) = crate::lease::run_range().map_err(std::io::Error::other)?;
        (IdMapping::Range { host_base: base }, Some(lease))
    } else {
        let inside = profile.user.uid;
        (IdMapping::Single { inside, host_uid: nix::unistd::getuid().as_raw(), host_gid: nix::unistd::getgid().as_raw() }, None)
    };
    let limits = cgroup::Limits { memory: profile.limits.memory, pids: profile.limits.pids, cpu: profile.limits.cpu };
    let wants_limits = limits.memory.is_some() || limits.pids.is_some() || limits.cpu.is_some();
    let mut manager = None;
    // Limits are a promise: when they cannot be applied the sandbox does not
    // start, unless --no-limits says to run without them on purpose.
    let no_limits = cgroup::options::current().no_limits;
    if request.mode == Mode::Namespace && wants_limits && no_limits {
        warnings.push("--no-limits: the profile's [limits] are not applied; memory, processes and cpu are not limited".into());
    } else if request.mode == Mode::Namespace && wants_limits {
        // Under systemd, into a delegated scope of its own first; when systemd
        // says no, one line, and the cgroups are placed without it.
        let systemd_note = if request.dry_run { None } else { cgroup::systemd::enter_scope(true).note() };
        let layout = cgroup::detect().map_err(std::io::Error::other)?;
        match cgroup::manager_for(&layout, &request.name, &limits) {
            Ok(m) => manager = Some(m),
            Err(problems) if request.dry_run => warnings.push(cgroup::manager::refusal(&problems)),
            // The refusal says why systemd was no help, since the warnings are never shown.
            Err(problems) => {
                let note = systemd_note.map(|n| format!("\n  note: {n}")).unwrap_or_default();
                return Err(std::io::Error::other(format!("{}{note}", cgroup::manager::refusal(&problems))));
            }
        }
        warnings.extend(systemd_note);
    }
    if let (Some(layer), Some(cap)) = (&request.layer, profile.limits.disk) {
        disk_promise(layer, cap, root, no_limits, request.dry_run, &mut warnings)?;
    }
    if request.mode == Mode::Chroot && wants_limits {
        warnings.push("chroot mode applies no [limits]: use --mode namespace for memory, pids and cpu limits".into());
    }
    let write = |(file, value)| CgroupWrite { file, value };
    let cgroup = match &manager {
        Some(m) => CgroupPlan {
            dirs: m.dirs(),
            enable: m.planned_enabling().into_iter().map(write).next(),
            writes: m.planned_writes(&limits).into_iter().map(write).collect(),
            procs: m.procs_files(),
            // v2: born in its cgroup (clone3), after the supervisor moved into its leaf.
            clone_into: m.clone_into_cgroup(),
            supervisor_leaf: m.supervisor_leaf().map(|leaf| leaf.dir.clone()),
        },
        None => CgroupPlan::default(),
    };
    let input = Input {
        profile,
        mode: request.mode,
        rootfs: request.rootfs.clone(),
        command: request.command.clone(),
        term: std::env::var("TERM").ok(),
        ids,
        idmapped,
        cgroup,
        layer: request.layer.clone(),
        throwaway: request.throwaway,
    };
    if root && request.mode == Mode::Namespace && !idmapped {
        warnings.push(
            "this kernel has no idmapped mounts (Linux 5.12+): inside, the rootfs's files show as owned by nobody; they stay read-only and usable".into(),
        );
    }
    if !root && request.mode == Mode::Namespace {
        warnings.push(format!(
            "running without root: only your own uid is mapped (to {} inside), so the rootfs's files show your ownership",
            profile.user.uid
        ));
    }
    Ok(Session { plan: plan::build(&input), cgroup: if request.dry_run { None } else { manager }, warnings, _lease: lease })
}

/// `[limits] disk` is a promise too: an instance whose layer cannot be capped
/// does not start, unless --no-limits says so (or it was made before the
/// cap, which only a new instance can get: its files are not on an image).
fn disk_promise(
    layer: &plan::Layer,
    cap: u64,
    root: bool,
    no_limits: bool,
    dry_run: bool,
    warnings: &mut Vec<String>,
) -> std::io::Result<()> {
    let size = layer.disk.as_ref().and_then(|image| std::fs::metadata(image).ok()).map(|m| m.len());
    match size {
        None if !(root || no_limits || dry_run) => Err(std::io::Error::other(
            "[limits] disk: only root can mount an instance's disk image (a loop device)\n  fix: run as root, or give --no-limits to run this instance without a disk cap",
        )),
        None if !root => {
            warnings.push("--no-limits: the instance's layer has no disk cap ([limits] disk needs root)".into());
            Ok(())
        }
        None => {
            warnings.push(format!(
                "this instance was made without [limits] disk: its layer is not capped\n  fix: `sandbox rm` it and start it again to get a {} disk",
                human(cap)
            ));
            Ok(())
        }
        Some(size) if size != cap => {
            warnings.push(format!(
                "this instance's disk is {}, the profile now asks for {}: it keeps its size\n  fix: `sandbox rm` it and start it again to get the new size",
                human(size),
                human(cap)
            ));
            Ok(())
        }
        Some(_) => Ok(()),
    }
}

fn human(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) { format!("{}G", bytes >> 30) } else { format!("{}M", bytes >> 20) }
}

/// Idmapped mounts came with Linux 5.12.
fn idmapped_mounts_supported() -> bool {
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 12)
}

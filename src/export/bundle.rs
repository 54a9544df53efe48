//! `--bundle DIR`: an OCI runtime bundle, what `runc run` and `crun run` take:
//! `rootfs/` (a plain copy of the stored tree) and `config.json`, the profile
//! translated to the runtime spec the way `sandbox run` applies it: the same
//! namespaces, mounts, limits, capabilities, masked and read-only paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    Mount, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::chain::Level;
use super::{Context, ExportError, Result};
use crate::profile::{NetworkMode, Profile};
use crate::rootfs::Store;

/// The CFS period the cpu limit is a share of (the kernel's default, 100 ms).
const CPU_PERIOD: u64 = 100_000;

/// Where root inside a root profile's bundle lives on the host: 65536 ids
/// from here, far above the ids of people and of `sandbox`'s own instances,
/// so root inside is nobody outside (as `sandbox run` makes it).
pub const ROOT_PROFILE_HOST_BASE: u32 = 0x7000_0000;
const ID_RANGE: u32 = 65536;

/// The sysctl that lets every group inside use ICMP echo sockets: `ping`
/// without a raw socket, a capability or a setuid bit.
const PING_GROUP_RANGE: &str = "net.ipv4.ping_group_range";

/// Who will run the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// Root: cgroup limits applied by the runtime; a root profile gets a user
    /// namespace (its ids from `ROOT_PROFILE_HOST_BASE`), a student profile runs as its uid.
    Root,
    /// An unprivileged user (rootless runc/crun): a user namespace where the
    /// profile's user is the caller's own ids, as `sandbox run` does without root.
    Rootless { host_uid: u32, host_gid: u32 },
}

impl Runner {
    /// The one who exports is taken to be the one who will run the bundle.
    pub fn current() -> Runner {
        if nix::unistd::geteuid().is_root() {
            Runner::Root
        } else {
            Runner::Rootless { host_uid: nix::unistd::geteuid().as_raw(), host_gid: nix::unistd::getegid().as_raw() }
        }
    }
}

/// Write the bundle of the profile's top level into the new or empty `dir`.
/// Returns notes for the person: what the bundle leaves out and why.
pub fn write_bundle(dir: &Path, store: &Store, top: &Level, runner: Runner) -> Result<Vec<String>> {
    let staging = super::staging_beside(dir)?;
    let rootfs = staging.path().join("rootfs");
    let (manifest, uncapped) = usable_capabilities(&top.profile, &top.manifest);
    match id_shift(&top.profile, runner) {
        // The tree's owners as the user namespace maps them: root's files are owned by root inside.
        Some(base) => store.export(&shifted(&manifest, base), &top.hashes, &rootfs).at(&rootfs)?,
        None => store.export(&manifest, &top.hashes, &rootfs).at(&rootfs)?,
    }
    let spec = runtime_spec(&top.profile, &top.digest, runner)?;
    let config = staging.path().join("config.json");
    std::fs::write(&config, pretty_json(&spec)?).at(&config)?;
    super::publish_dir(staging.path(), dir)?;
    let mut notes = notes(&top.profile, runner);
    if !uncapped.is_empty() {
        notes.push(format!(
            "left off the file capabilities of {}: the profile's user keeps no capability, so the program could not start with them \
             (ping uses ICMP sockets instead)",
            uncapped.join(", ")
        ));
    }
    Ok(notes)
}

/// The manifest of the bundle's tree, and the files whose capabilities it
/// leaves off. A profile that keeps no capability (every user but root) has
/// an empty bounding set and no_new_privs, and the kernel refuses to start a
/// program whose effective file capabilities it cannot grant (ping's
/// `cap_net_raw=ep`: "Operation not permitted"). `sandbox run` mounts the tree
/// nosuid for this; a runtime has no such option for the root, so the tree
/// goes without them (ping uses ICMP sockets: ping_group_range is set).
fn usable_capabilities(profile: &Profile, manifest: &crate::resolve::Manifest) -> (crate::resolve::Manifest, Vec<String>) {
    let mut out = manifest.clone();
    let mut uncapped = Vec::new();
    if profile.user.uid != 0 {
        for (path, entry) in out.entries.iter_mut() {
            if entry.capability.take().is_some() {
                uncapped.push(path.display().to_string());
            }
        }
    }
    (out, uncapped)
}

/// The host id root inside maps to, when the bundle has a user namespace of
/// a range (a root profile run by root).
fn id_shift(profile: &Profile, runner: Runner) -> Option<u32> {
    (runner == Runner::Root && profile.user.uid == 0).then_some(ROOT_PROFILE_HOST_BASE)
}

/// The manifest with every owner moved up by `base`.
fn shifted(manifest: &crate::resolve::Manifest, base: u32) -> crate::resolve::Manifest {
    let mut out = manifest.clone();
    for entry in out.entries.values_mut() {
        entry.uid = entry.uid.saturating_add(base);
        entry.gid = entry.gid.saturating_add(base);
    }
    out
}

/// Whether the command is an interactive shell (the profile's login shell,
/// a REPL): then the runtime gives it a terminal, as `docker run -it` would.
pub fn is_interactive(command: &[String]) -> bool {
    const INTERACTIVE: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "fish", "ksh", "mksh", "python3", "python", "perl", "irb", "node"];
    let Some(program) = command.first() else { return false };
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or("");
    // `sh -c SCRIPT`, `python3 FILE`: a program that runs and ends; `bash -l`, `python3` alone: a session.
    INTERACTIVE.contains(&name) && command[1..].iter().all(|a| a.starts_with('-') && a != "-c")
}

/// config.json for the profile.
pub fn runtime_spec(profile: &Profile, rootfs_digest: &str, runner: Runner) -> Result<Spec> {
    let annotations = HashMap::from([
        ("org.opencontainers.image.title".to_string(), profile.name.clone()),
        (super::image::DIGEST_LABEL.to_string(), rootfs_digest.to_string()),
    ]);
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path("rootfs").readonly(true).build()?)
        .process(process(profile)?)
        .hostname(profile.run.hostname.clone())
        .mounts(mounts(profile, runner, id_shift(profile, runner).is_some()))
        .linux(linux(profile, runner)?)
        .annotations(annotations)
        .build()?)
}

fn process(profile: &Profile) -> Result<oci_spec::runtime::Process> {
    let user = UserBuilder::default().uid(profile.user.uid).gid(profile.user.gid).build()?;
    let terminal = is_interactive(&profile.run.command);
    let mut env: Vec<String> = super::environment(profile).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        // What `docker run -t` and containerd set with a terminal.
        env.push("TERM=xterm".into());
    }
    let nofile = PosixRlimitBuilder::default().typ(PosixRlimitType::RlimitNofile).hard(1024u64).soft(1024u64).build()?;
    Ok(ProcessBuilder::default()
        .terminal(terminal)
        .user(user)
        .args(profile.run.command.clone())
        .env(env)
        .cwd(super::workdir(profile))
        .capabilities(capabilities(profile)?)
        .rlimits(vec![nofile])
        .no_new_privileges(true)
        .build()?)
}

/// None for a non-root user; for root, Docker's default set (the one
/// `sandbox run` keeps), never inheritable or ambient.
fn capabilities(profile: &Profile) -> Result<oci_spec::runtime::LinuxCapabilities> {
    let kept: Capabilities = if profile.user.uid == 0 {
        crate::plan::ROOT_CAPABILITIES.iter().map(|name| capability(name)).collect::<Result<_>>()?
    } else {
        Capabilities::new()
    };
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(kept.clone())
        .effective(kept.clone())
        .permitted(kept)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()?)
}

fn capability(name: &str) -> Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.into())).map_err(|_| ExportError::Invalid(format!("unknown capability {name}")))
}

fn mount(destination: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// What `sandbox run` mounts: /proc, a tmpfs /dev with a private devpts and
/// shm, a sized /tmp, read-only /sys (and the cgroup files, read-only, so a
/// student can read their limits), then the profile's `[[mounts]]`.
fn mounts(profile: &Profile, runner: Runner, user_namespace: bool) -> Vec<Mount> {
    let rootless = matches!(runner, Runner::Rootless { .. });
    // gid 5 (tty) exists only where the user namespace maps it.
    let devpts: &[&str] = if rootless {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    } else {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    };
    let tmp_size = profile.limits.tmp.map(|s| format!("size={s}"));
    let mut tmp = vec!["nosuid", "nodev", "mode=1777"];
    tmp.extend(tmp_size.as_deref());
    let mut list = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts", "devpts", devpts),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/tmp", "tmpfs", "tmpfs", &tmp),
    ];
    if rootless || (user_namespace && profile.network == NetworkMode::Host) {
        // An unprivileged user namespace may not mount sysfs or cgroupfs (nor may one without
        // its own network namespace): runc's rootless spec binds /sys.
        list.push(mount("/sys", "none", "/sys", &["rbind", "nosuid", "noexec", "nodev", "ro"]));
    } else {
        list.push(mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]));
        list.push(mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]));
    }
    for m in &profile.mounts {
        let access = if m.readonly { "ro" } else { "rw" };
        list.push(mount(&m.target, "bind", m.source.clone(), &["rbind", access, "nosuid", "nodev"]));
    }
    list
}

fn linux(profile: &Profile, runner: Runner) -> Result<oci_spec::runtime::Linux> {
    let mut builder =
        LinuxBuilder::default().namespaces(namespaces(profile, runner)?).masked_paths(masked_paths()).readonly_paths(readonly_paths());
    if profile.network != NetworkMode::Host && runner == Runner::Root {
        // Set in the sandbox's own network namespace only, never the host's; the
        // range is read in the writer's user namespace, so it must be mapped there.
        let top = if id_shift(profile, runner).is_some() { ID_RANGE - 1 } else { i32::MAX as u32 };
        builder = builder.sysctl(HashMap::from([(PING_GROUP_RANGE.to_string(), format!("0 {top}"))]));
    }
    match runner {
        Runner::Root => {
            builder = builder.resources(resources(profile)?);
            if let Some(base) = id_shift(profile, runner) {
                let map = LinuxIdMappingBuilder::default().container_id(0u32).host_id(base).size(ID_RANGE).build()?;
                builder = builder.uid_mappings(vec![map]).gid_mappings(vec![map]);
            }
        }
        Runner::Rootless { host_uid, host_gid } => {
            let map = |inside: u32, host: u32| LinuxIdMappingBuilder::default().container_id(inside).host_id(host).size(1u32).build();
            builder = builder.uid_mappings(vec![map(profile.user.uid, host_uid)?]).gid_mappings(vec![map(profile.user.gid, host_gid)?]);
        }
    }
    let mut linux = builder.build()?;
    if matches!(runner, Runner::Rootless { .. }) {
        // The builder starts from oci-spec's default, which has a (device) resources section:
        // without root there must be none, or the runtime tries to make a cgroup.
        linux.set_resources(None);
    }
    Ok(linux)
}

/// The namespaces `sandbox run` makes: pid, mount, ipc, uts, cgroup, network
/// unless the profile shares the host's, and user when rootless.
fn namespaces(profile: &Profile, runner: Runner) -> Result<Vec<LinuxNamespace>> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ];
    if profile.network != NetworkMode::Host {
        kinds.push(LinuxNamespaceType::Network);
    }
    if matches!(runner, Runner::Rootless { .. }) || id_shift(profile, runner).is_some() {
        kinds.push(LinuxNamespaceType::User);
    }
    kinds.into_iter().map(|typ| Ok(LinuxNamespaceBuilder::default().typ(typ).build()?)).collect()
}

/// `[limits]`: memory, pids and cpu (a share of cores as quota over period);
/// every device denied but those the runtime always allows (null, zero, tty...).
fn resources(profile: &Profile) -> Result<LinuxResources> {
    let limits = &profile.limits;
    let mut builder =
        LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?]);
    if let Some(memory) = limits.memory {
        builder = builder.memory(LinuxMemoryBuilder::default().limit(memory as i64).build()?);
    }
    if let Some(pids) = limits.pids {
        builder = builder.pids(LinuxPidsBuilder::default().limit(pids as i64).build()?);
    }
    if let Some(cores) = limits.cpu {
        let quota = (cores * CPU_PERIOD as f64).round() as i64;
        builder = builder.cpu(LinuxCpuBuilder::default().quota(quota).period(CPU_PERIOD).build()?);
    }
    Ok(builder.build()?)
}

/// runc's defaults and what `sandbox run` masks, together.
fn masked_paths() -> Vec<String> {
    let mut paths = oci_spec::runtime::get_default_maskedpaths();
    paths.extend(crate::plan::MASKED_FILES.iter().chain(crate::plan::MASKED_DIRS).map(|p| p.to_string()));
    sorted_unique(paths)
}

fn readonly_paths() -> Vec<String> {
    let masked = masked_paths();
    let mut paths = oci_spec::runtime::get_default_readonly_paths();
    paths.extend(crate::plan::READONLY_PROC.iter().map(|p| p.to_string()));
    // A masked path is hidden already; listing it read-only too would only fail to remount.
    sorted_unique(paths.into_iter().filter(|p| !masked.contains(p)).collect())
}

fn sorted_unique(mut paths: Vec<String>) -> Vec<String> {
    paths.sort();
    paths.dedup();
    paths
}

/// config.json with sorted keys and sorted capability lists (the OCI types
/// hold them in hash sets), so two exports of a profile give the same file.
fn pretty_json(spec: &Spec) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(spec)?;
    if let Some(caps) = value.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) {
        for list in caps.values_mut().filter_map(|l| l.as_array_mut()) {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn notes(profile: &Profile, runner: Runner) -> Vec<String> {
    let mut notes = Vec::new();
    let has_limits = profile.limits.memory.is_some() || profile.limits.pids.is_some() || profile.limits.cpu.is_some();
    if matches!(runner, Runner::Rootless { .. }) && has_limits {
        notes.push(
            "the [limits] are not in config.json: without root the runtime cannot create cgroups (export as root to keep them)".into(),
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(uid: u32) -> Profile {
        let mut p = crate::profile::load("shell", Path::new("/")).unwrap();
        p.user.uid = uid;
        p.user.gid = uid;
        p.limits.memory = Some(64 << 20);
        p.limits.pids = Some(32);
        p.limits.cpu = Some(0.5);
        p.limits.tmp = Some(16 << 20);
        p
    }

    fn json(spec: &Spec) -> serde_json::Value {
        serde_json::from_slice(&pretty_json(spec).unwrap()).unwrap()
    }

    #[test]
    fn root_gets_limits_docker_capabilities_and_a_user_namespace() {
        let spec = json(&runtime_spec(&profile(0), "d", Runner::Root).unwrap());
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 32);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 50_000);
        let bounding = spec["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(bounding.len(), crate::plan::ROOT_CAPABILITIES.len());
        assert!(bounding.contains(&"CAP_NET_BIND_SERVICE".into()));
        assert_eq!(spec["process"]["capabilities"]["inheritable"], serde_json::json!([]));
        let namespaces: Vec<&str> = spec["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(namespaces, ["pid", "mount", "ipc", "uts", "cgroup", "network", "user"]);
        let map = serde_json::json!([{"containerID": 0, "hostID": ROOT_PROFILE_HOST_BASE, "size": 65536}]);
        assert_eq!((&spec["linux"]["uidMappings"], &spec["linux"]["gidMappings"]), (&map, &map), "root inside is nobody outside");
        assert_eq!(spec["linux"]["sysctl"][PING_GROUP_RANGE], "0 65535", "ping with ICMP sockets, gids as mapped");
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        let tmp = spec["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/tmp").unwrap();
        assert!(tmp["options"].as_array().unwrap().contains(&format!("size={}", 16 << 20).into()));
    }

    #[test]
    fn a_student_keeps_no_capability_and_rootless_maps_the_caller() {
        let spec = json(&runtime_spec(&profile(1000), "d", Runner::Rootless { host_uid: 4242, host_gid: 4343 }).unwrap());
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            assert_eq!(spec["process"]["capabilities"][set], serde_json::json!([]), "{set}");
        }
        assert_eq!(spec["linux"]["uidMappings"], serde_json::json!([{"containerID": 1000, "hostID": 4242, "size": 1}]));
        assert_eq!(spec["linux"]["gidMappings"], serde_json::json!([{"containerID": 1000, "hostID": 4343, "size": 1}]));
        assert!(spec["linux"].get("resources").is_none(), "no cgroups without root");
        assert!(spec["mounts"].as_array().unwrap().iter().all(|m| m["type"] != "sysfs" && m["type"] != "cgroup"));
        assert_eq!(spec["process"]["user"]["uid"], 1000);
    }

    #[test]
    fn host_network_keeps_the_host_namespace_and_its_sysctls() {
        let mut p = profile(1000);
        p.network = NetworkMode::Host;
        let spec = json(&runtime_spec(&p, "d", Runner::Root).unwrap());
        assert!(spec["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "network"));
        assert!(spec["linux"].get("sysctl").is_none(), "a sysctl here would be the host's");
        let student = json(&runtime_spec(&profile(1000), "d", Runner::Root).unwrap());
        assert!(student["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "user"));
        assert_eq!(student["linux"]["sysctl"][PING_GROUP_RANGE], format!("0 {}", i32::MAX));
    }

    #[test]
    fn an_interactive_shell_gets_a_terminal_and_term() {
        let mut p = profile(1000);
        p.run.command = vec!["/bin/bash".into(), "-l".into()];
        let spec = json(&runtime_spec(&p, "d", Runner::Root).unwrap());
        assert_eq!(spec["process"]["terminal"], true);
        assert!(spec["process"]["env"].as_array().unwrap().contains(&"TERM=xterm".into()));
        p.run.command = vec!["/bin/sh".into(), "-c".into(), "id".into()];
        let spec = json(&runtime_spec(&p, "d", Runner::Root).unwrap());
        assert_eq!(spec["process"]["terminal"], false);
        assert!(!spec["process"]["env"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().starts_with("TERM=")));
        assert!(is_interactive(&["python3".into()]) && !is_interactive(&["python3".into(), "app.py".into()]));
    }
}

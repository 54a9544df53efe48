//! The same sandbox written for the tools people already know, so a student
//! can map what they saw onto `unshare`, `bwrap` and `docker run`. Each line
//! does what the plan does: the same id map (root inside is an unprivileged
//! id range on the host, never host root), the same user, root and limits.

use crate::plan::{Action, Plan};
use crate::profile::{Mode, NetworkMode, Profile};

fn words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:,".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rootfs the plan enters, or ROOTFS.
fn rootfs_of(plan: &Plan) -> String {
    plan.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::BindRootfs { rootfs, .. } => Some(rootfs.display().to_string()),
            Action::Chroot { path } => Some(path.display().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "ROOTFS".into())
}

/// The uid and gid maps the plan writes: ("0 1000000000 65536", ...).
fn id_maps(plan: &Plan) -> Option<(String, String)> {
    plan.steps.iter().find_map(|s| match &s.action {
        Action::IdMaps { uid_map, gid_map, .. } => Some((uid_map.clone(), gid_map.clone())),
        _ => None,
    })
}

/// unshare's options for a map line "INSIDE OUTSIDE COUNT".
fn unshare_map(uid_map: &str, gid_map: &str) -> (bool, String) {
    let fields = |m: &str| m.split_whitespace().map(String::from).collect::<Vec<_>>();
    match (fields(uid_map).as_slice(), fields(gid_map).as_slice()) {
        // One id, the caller's own: no privilege needed.
        ([inside, _, count], [ginside, _, _]) if count == "1" => (false, format!("--map-user={inside} --map-group={ginside}")),
        ([inside, outside, count], [ginside, goutside, gcount]) => {
            (true, format!("--map-users={outside},{inside},{count} --map-groups={goutside},{ginside},{gcount}"))
        }
        _ => (true, "--map-auto".into()),
    }
}

/// (tool, command line) pairs for this profile, mode and plan.
pub fn equivalents(profile: &Profile, mode: Mode, plan: &Plan, command: &[String]) -> Vec<(&'static str, String)> {
    let rootfs = rootfs_of(plan);
    let cmd = words(command);
    let user = &profile.user;
    let workdir = profile.run.workdir.as_deref().unwrap_or(&user.home);
    if mode == Mode::Chroot {
        return vec![("chroot", format!("sudo chroot --userspec={}:{} {rootfs} {cmd}", user.uid, user.gid))];
    }
    let net = profile.network != NetworkMode::Host;
    let (uid_map, gid_map) = id_maps(plan).unwrap_or_else(|| ("0 1000000000 65536".into(), "0 1000000000 65536".into()));
    let (sudo, map) = unshare_map(&uid_map, &gid_map);
    let mut unshare = format!("{}unshare {map} --pid --fork --mount --uts --ipc --cgroup", if sudo { "sudo " } else { "" });
    if net {
        unshare += " --net";
    }
    unshare += &format!(" --root={rootfs} --mount-proc --wd={workdir}");
    if sudo {
        unshare += &format!(" --setuid={} --setgid={}", user.uid, user.gid);
    }
    unshare += &format!(" -- {cmd}");
    let mut bwrap =
        format!("bwrap --unshare-all --die-with-parent --new-session --ro-bind {rootfs} / --proc /proc --dev /dev --tmpfs /tmp");
    if !net {
        bwrap += " --share-net";
    }
    bwrap += &format!(" --hostname {} --uid {} --gid {} --chdir {workdir} -- {cmd}", profile.run.hostname, user.uid, user.gid);
    let mut docker = String::from("docker run --rm -it --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges");
    docker += match profile.network {
        NetworkMode::None | NetworkMode::Loopback => " --network none",
        NetworkMode::Host => " --network host",
    };
    // Only the limits the plan really writes (none without a usable cgroup).
    let limited = |id: &str| plan.steps.iter().any(|s| s.id == id);
    if let Some(m) = profile.limits.memory.filter(|_| limited("cgroup-memory-limit")) {
        docker += &format!(" --memory {m}b");
    }
    if let Some(p) = profile.limits.pids.filter(|_| limited("cgroup-pids-limit")) {
        docker += &format!(" --pids-limit {p}");
    }
    if let Some(c) = profile.limits.cpu.filter(|_| limited("cgroup-cpu-limit")) {
        docker += &format!(" --cpus {c}");
    }
    docker += &format!(" --hostname {} --user {}:{} IMAGE {cmd}", profile.run.hostname, user.uid, user.gid);
    vec![("unshare", unshare), ("bwrap", bwrap), ("docker", docker)]
}

/// Whether the unshare line needs newuidmap's ranges (see the catalog's `equivalents_note`).
pub fn needs_subuid(plan: &Plan) -> bool {
    id_maps(plan).is_some_and(|(uid, gid)| unshare_map(&uid, &gid).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{IdMapping, Input};
    use std::path::{Path, PathBuf};

    fn plan(ids: IdMapping) -> (crate::profile::Profile, Plan) {
        let profile = crate::profile::load("shell", Path::new("/")).unwrap();
        let input = Input {
            profile: &profile,
            mode: Mode::Namespace,
            rootfs: PathBuf::from("/r"),
            command: vec!["/bin/bash".into()],
            term: None,
            ids,
            idmapped: true,
            cgroup: Default::default(),
            layer: None,
            throwaway: false,
        };
        let plan = crate::plan::build(&input);
        (profile, plan)
    }

    #[test]
    fn unshare_maps_root_inside_to_the_range_not_to_host_root() {
        let (profile, plan) = plan(IdMapping::Range { host_base: 1268435456 });
        let lines = equivalents(&profile, Mode::Namespace, &plan, &["/bin/bash".into()]);
        let unshare = &lines[0].1;
        assert!(!unshare.contains("--map-root-user") && !unshare.contains(" -r "), "{unshare}");
        assert!(unshare.contains("--map-users=1268435456,0,65536") && unshare.contains("--setuid=1000"), "{unshare}");
        assert!(unshare.contains("--root=/r") && unshare.ends_with("-- /bin/bash"), "{unshare}");
        assert!(needs_subuid(&plan));
        // No cgroup steps in this plan: docker gets no limits either.
        assert!(!lines[2].1.contains("--memory"), "{}", lines[2].1);
    }

    #[test]
    fn a_rootless_plan_maps_only_the_callers_id() {
        let (profile, plan) = plan(IdMapping::Single { inside: 1000, host_uid: 65534, host_gid: 65534 });
        let unshare = &equivalents(&profile, Mode::Namespace, &plan, &["/bin/bash".into()])[0].1;
        assert!(unshare.starts_with("unshare --map-user=1000 --map-group=1000"), "{unshare}");
        assert!(!needs_subuid(&plan));
    }
}

//! The same sandbox written for the tools people already know, so a student
//! can map what they saw onto `unshare`, `bwrap` and `docker run`.

use crate::profile::{Mode, NetworkMode, Profile};

fn words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// (tool, command line) pairs for this profile and mode.
pub fn equivalents(profile: &Profile, mode: Mode, rootfs: &str, command: &[String]) -> Vec<(&'static str, String)> {
    let cmd = words(command);
    let user = &profile.user;
    if mode == Mode::Chroot {
        return vec![("chroot", format!("sudo chroot --userspec={}:{} {rootfs} {cmd}", user.uid, user.gid))];
    }
    let net = profile.network != NetworkMode::Host;
    let mut unshare = String::from("sudo unshare --user --map-root-user --pid --fork --mount --uts --ipc --cgroup");
    if net {
        unshare += " --net";
    }
    unshare += &format!(" --mount-proc={rootfs}/proc chroot {rootfs} {cmd}");
    let mut bwrap =
        format!("bwrap --unshare-all --die-with-parent --new-session --ro-bind {rootfs} / --proc /proc --dev /dev --tmpfs /tmp");
    if !net {
        bwrap += " --share-net";
    }
    bwrap += &format!(
        " --hostname {} --uid {} --gid {} --chdir {} -- {cmd}",
        profile.run.hostname,
        user.uid,
        user.gid,
        profile.run.workdir.as_deref().unwrap_or(&user.home)
    );
    let mut docker = String::from("docker run --rm -it --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges");
    docker += match profile.network {
        NetworkMode::None | NetworkMode::Loopback => " --network none",
        NetworkMode::Host => " --network host",
    };
    if let Some(m) = profile.limits.memory {
        docker += &format!(" --memory {m}b");
    }
    if let Some(p) = profile.limits.pids {
        docker += &format!(" --pids-limit {p}");
    }
    if let Some(c) = profile.limits.cpu {
        docker += &format!(" --cpus {c}");
    }
    docker += &format!(" --hostname {} --user {}:{} IMAGE {cmd}", profile.run.hostname, user.uid, user.gid);
    vec![("unshare", unshare), ("bwrap", bwrap), ("docker", docker)]
}

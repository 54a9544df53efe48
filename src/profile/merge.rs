//! `extends`: layers merged parent first, then defaults filled in.

use std::collections::BTreeMap;

use super::error::ProfileError;
use super::types::*;

/// What one file says, validated. Unset keys stay `None` so a parent shows through.
pub(super) struct Layer {
    pub name: String,
    pub description: Option<String>,
    pub extends: Option<Located<String>>,
    pub rootfs: RootfsSpec,
    pub user: UserLayer,
    pub env: BTreeMap<String, String>,
    pub run: RunLayer,
    pub limits: Limits,
    pub network: Option<NetworkMode>,
    pub mounts: Vec<MountSpec>,
    pub image: Option<ImageBase>,
}

#[derive(Default)]
pub(super) struct UserLayer {
    pub name: Option<String>,
    /// Located so that a uid that contradicts the name can be pointed at.
    pub uid: Option<Located<u32>>,
    pub gid: Option<u32>,
    pub home: Option<String>,
    /// Located: the default command is the shell, and `check` points at it.
    pub shell: Option<Located<String>>,
}

#[derive(Default)]
pub(super) struct RunLayer {
    pub mode: Option<Mode>,
    pub command: Option<Located<Vec<String>>>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
}

/// `child` over `parent`: scalars override, lists concatenate without duplicates.
pub(super) fn merge(parent: Layer, child: Layer) -> Layer {
    Layer {
        name: child.name,
        description: child.description.or(parent.description),
        extends: child.extends,
        rootfs: merge_rootfs(parent.rootfs, child.rootfs),
        user: UserLayer {
            name: child.user.name.or(parent.user.name),
            uid: child.user.uid.or(parent.user.uid),
            gid: child.user.gid.or(parent.user.gid),
            home: child.user.home.or(parent.user.home),
            shell: child.user.shell.or(parent.user.shell),
        },
        env: parent.env.into_iter().chain(child.env).collect(),
        run: RunLayer {
            mode: child.run.mode.or(parent.run.mode),
            command: child.run.command.or(parent.run.command),
            workdir: child.run.workdir.or(parent.run.workdir),
            hostname: child.run.hostname.or(parent.run.hostname),
        },
        limits: Limits {
            memory: child.limits.memory.or(parent.limits.memory),
            pids: child.limits.pids.or(parent.limits.pids),
            cpu: child.limits.cpu.or(parent.limits.cpu),
            tmp: child.limits.tmp.or(parent.limits.tmp),
            disk: child.limits.disk.or(parent.limits.disk),
        },
        network: child.network.or(parent.network),
        mounts: unique(parent.mounts, child.mounts, |a, b| (&a.source, &a.target, a.readonly) == (&b.source, &b.target, b.readonly)),
        image: child.image.or(parent.image),
    }
}

fn merge_rootfs(parent: RootfsSpec, child: RootfsSpec) -> RootfsSpec {
    let same_text = |a: &Located<String>, b: &Located<String>| a.value == b.value;
    RootfsSpec {
        binaries: unique(parent.binaries, child.binaries, same_text),
        files: unique(parent.files, child.files, same_text),
        locales: unique(parent.locales, child.locales, same_text),
        timezones: unique(parent.timezones, child.timezones, same_text),
        timezone: child.timezone.or(parent.timezone),
        copy: unique(parent.copy, child.copy, |a, b| (&a.from, &a.to, a.keep_special_bits) == (&b.from, &b.to, b.keep_special_bits)),
        write: unique(parent.write, child.write, |a, b| (&a.path, &a.content, a.mode) == (&b.path, &b.content, b.mode)),
    }
}

/// `first` then `second`, keeping the first of equal values (origins are not
/// part of a value: the same binary named twice is one binary).
pub(super) fn unique<T>(first: Vec<T>, second: Vec<T>, same: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(first.len() + second.len());
    for item in first.into_iter().chain(second) {
        if !kept.iter().any(|k| same(k, &item)) {
            kept.push(item);
        }
    }
    kept
}

/// The merged layers as a `Profile`, with the defaults of unset keys.
pub(super) fn finish(merged: Layer, source: Source, layers: Vec<String>) -> Result<Profile, ProfileError> {
    let shell_origin = merged.user.shell.as_ref().map(|s| s.origin.clone());
    let user = finish_user(merged.user)?;
    let (command, command_source) = match (merged.run.command, shell_origin) {
        (Some(command), _) => (command.value, CommandSource::Command(command.origin)),
        (None, Some(origin)) => (login_command(&user.shell), CommandSource::Shell(origin)),
        (None, None) => (login_command(&user.shell), CommandSource::Default),
    };
    let run = Run {
        mode: merged.run.mode.unwrap_or(Mode::Namespace),
        command,
        command_source,
        workdir: merged.run.workdir,
        // A profile name may end in '-', a hostname label may not.
        hostname: merged.run.hostname.unwrap_or_else(|| merged.name.trim_end_matches('-').to_owned()),
    };
    Ok(Profile {
        name: merged.name,
        description: merged.description,
        source,
        layers,
        rootfs: merged.rootfs,
        user,
        env: merged.env,
        run,
        limits: merged.limits,
        network: merged.network.unwrap_or(NetworkMode::Loopback),
        mounts: merged.mounts,
        fingerprint: String::new(),
        image: merged.image,
    })
}

/// Accounts the rootfs always has, with their fixed ids.
const RESERVED_USERS: [(&str, u32); 2] = [("root", 0), ("nobody", 65534)];

fn finish_user(user: UserLayer) -> Result<User, ProfileError> {
    if let (None, Some(uid)) = (&user.name, &user.uid)
        && uid.value != 0
    {
        return Err(ProfileError::at(
            &uid.origin,
            "[user] sets `uid` but no `name`".into(),
            "add a name to [user], e.g. `name = \"student\"`".into(),
        ));
    }
    let name = user.name.unwrap_or_else(|| "root".into());
    let reserved_uid = RESERVED_USERS.iter().find(|(n, _)| *n == name).map(|&(_, id)| id);
    if let (Some(fixed), Some(uid)) = (reserved_uid, &user.uid)
        && uid.value != fixed
    {
        return Err(ProfileError::at(
            &uid.origin,
            format!("the user `{name}` always has uid {fixed}, not {}", uid.value),
            format!("remove `uid`, or choose another name than `{name}`"),
        ));
    }
    let uid = user.uid.map(|u| u.value).or(reserved_uid).unwrap_or(1000);
    let home = user.home.unwrap_or_else(|| if name == "root" { "/root".into() } else { format!("/home/{name}") });
    Ok(User { uid, gid: user.gid.unwrap_or(uid), home, shell: user.shell.map_or_else(|| "/bin/sh".into(), |s| s.value), name })
}

/// Bash reads its profile files only as a login shell, which is how a lab greets.
fn login_command(shell: &str) -> Vec<String> {
    if shell.ends_with("bash") { vec![shell.to_owned(), "-l".to_owned()] } else { vec![shell.to_owned()] }
}

//! The profile's command against its rootfs: a default command that is not
//! in the tree would make every `sandbox run` exit 127, so `check` and
//! `build` refuse the profile and point at the setting.

use std::path::{Path, PathBuf};

use super::build::{SYSTEM_PATH, lookup_on_system_path};
use super::error::ResolveError;
use super::manifest::{Kind, Manifest};
use crate::profile::{CommandSource, Profile, Source};

/// Ok when the profile's command names a program the rootfs holds, found the
/// way the sandbox's exec finds it (PATH of the sandbox for a bare name).
pub fn check(profile: &Profile, manifest: &Manifest) -> Result<(), ResolveError> {
    let Some(program) = profile.run.command.first() else { return Ok(()) };
    if find(manifest, program, &path_inside(profile)).is_some() {
        return Ok(());
    }
    let place = match &profile.run.command_source {
        CommandSource::Command(origin) | CommandSource::Shell(origin) => origin.to_string(),
        CommandSource::Default => match &profile.source {
            Source::File(path) => path.display().to_string(),
            Source::Embedded(name) => format!("{name}.toml"),
            Source::Image(name) => format!("image:{name}"),
        },
    };
    let shown = program.escape_debug();
    let setting = match &profile.run.command_source {
        CommandSource::Shell(_) => format!("the default command is the user's shell `{shown}` (`shell` in [user])"),
        CommandSource::Command(_) => format!("`command` in [run] runs `{shown}`"),
        CommandSource::Default => {
            format!("the default command is `{shown}` (the profile sets no `command` in [run] and no `shell` in [user])")
        }
    };
    let cause = format!("{setting}, which is not in the rootfs: `sandbox run` would exit 127 (command not found)");
    let name = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fix = match lookup_on_system_path(&name) {
        Some(_) => {
            format!("add \"{}\" to `binaries` in [rootfs], or set `command` in [run] to a program the rootfs has", name.escape_debug())
        }
        None => "set `command` in [run] to a program the rootfs has (one of `binaries`)".to_string(),
    };
    Err(ResolveError::Command { place, cause, fix })
}

/// The PATH the command is looked up with inside: the profile's, else the default one.
fn path_inside(profile: &Profile) -> String {
    profile.env.get("PATH").cloned().unwrap_or_else(|| SYSTEM_PATH.join(":"))
}

/// The entry `program` runs, through the manifest's own links: an executable file.
fn find(manifest: &Manifest, program: &str, path_var: &str) -> Option<PathBuf> {
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.to_string()]
    } else {
        path_var.split(':').filter(|d| d.starts_with('/')).map(|d| format!("{}/{program}", d.trim_end_matches('/'))).collect()
    };
    candidates
        .into_iter()
        .filter_map(|c| manifest.locate(&c))
        .find(|at| manifest.get(at).is_some_and(|e| matches!(e.kind, Kind::File { .. } | Kind::Inline { .. }) && e.mode & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{Entry, Reason};

    fn manifest(entries: &[(&str, Kind, u32)]) -> Manifest {
        let mut m = Manifest::default();
        for (path, kind, mode) in entries {
            let reason = Reason::Skeleton { why: "t".into() };
            m.entries.insert(
                path.into(),
                Entry { path: path.into(), kind: kind.clone(), mode: *mode, uid: 0, gid: 0, capability: None, reason },
            );
        }
        m
    }

    #[test]
    fn programs_are_found_through_links_and_path() {
        let file = || Kind::File { source: "/usr/bin/dash".into() };
        let m = manifest(&[
            ("/bin", Kind::Symlink { target: "usr/bin".into() }, 0o777),
            ("/usr/bin/sh", Kind::Symlink { target: "dash".into() }, 0o777),
            ("/usr/bin/dash", file(), 0o755),
            ("/usr/bin/notes", Kind::Inline { content: "x".into() }, 0o644),
        ]);
        let path = SYSTEM_PATH.join(":");
        assert_eq!(find(&m, "/bin/sh", &path), Some(PathBuf::from("/usr/bin/dash")));
        assert_eq!(find(&m, "sh", &path), Some(PathBuf::from("/usr/bin/dash")));
        assert_eq!(find(&m, "sh", "/sbin"), None, "only the PATH given");
        assert_eq!(find(&m, "/usr/bin/notes", &path), None, "not executable");
        assert_eq!(find(&m, "/bin/bash", &path), None);
    }
}

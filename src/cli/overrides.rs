//! `-e`, `-v`, `-w`, `-u`: what a Docker or bubblewrap user changes on the
//! command line, applied over the loaded profile before anything is built,
//! so the rootfs, the plan and `explain` all see the same profile.

use std::path::{Component, Path, PathBuf};

use crate::profile::{MountSpec, Origin, Profile, User};

/// The flags, as `run` takes them.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Set an environment variable inside: KEY=VALUE, or KEY to pass the caller's value (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Show a host directory inside: HOST:DIR, read-only as HOST:DIR:ro (repeatable; HOST may be relative).
    #[arg(short = 'v', long = "volume", value_name = "HOST:DIR[:ro]")]
    pub volumes: Vec<String>,
    /// Start the command in DIR (an absolute path inside) instead of the profile's workdir.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as USER: root (or 0), the profile's user (by name or uid), or a numeric UID[:GID].
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
}

/// Load the profile `spec` names and apply the flags: what `run` and `run
/// --name` start from.
pub fn load(spec: &str, overrides: &Overrides) -> Result<Profile, super::Failure> {
    let mut profile = super::build::load(spec)?;
    if !overrides.is_empty() {
        let cwd = std::env::current_dir()?;
        overrides.apply(&mut profile, &cwd, &|key| std::env::var(key).ok())?;
    }
    Ok(profile)
}

/// A bad flag: the message names the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {cause}\n  fix: {fix}")]
pub struct OverrideError {
    pub flag: &'static str,
    pub value: String,
    pub cause: String,
    pub fix: String,
}

fn bad(flag: &'static str, value: &str, cause: impl Into<String>, fix: impl Into<String>) -> OverrideError {
    OverrideError { flag, value: value.escape_debug().to_string(), cause: cause.into(), fix: fix.into() }
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Apply the flags to `profile`; relative `-v` sources are taken from `cwd`.
    /// `caller_env` answers `-e KEY` (Docker's "pass my value through").
    pub fn apply(&self, profile: &mut Profile, cwd: &Path, caller_env: &dyn Fn(&str) -> Option<String>) -> Result<(), OverrideError> {
        for spec in &self.env {
            if let Some((key, value)) = env_pair(spec, caller_env)? {
                profile.env.insert(key, value);
            }
        }
        for spec in &self.volumes {
            let mount = volume(spec, cwd)?;
            // A volume on a profile mount's target replaces it, as in Docker.
            profile.mounts.retain(|m| m.target != mount.target);
            profile.mounts.push(mount);
        }
        if let Some(dir) = &self.workdir {
            profile.run.workdir = Some(inside_path("-w", dir)?);
        }
        if let Some(user) = &self.user {
            profile.user = user_for(user, &profile.user)?;
        }
        Ok(())
    }
}

fn env_pair(spec: &str, caller_env: &dyn Fn(&str) -> Option<String>) -> Result<Option<(String, String)>, OverrideError> {
    let (key, value) = match spec.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (spec, None),
    };
    let valid = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(bad("-e", spec, "not a variable name (letters, digits and _, not starting with a digit)", "write -e KEY=VALUE"));
    }
    let Some(value) = value.or_else(|| caller_env(key)) else {
        // `docker run -e KEY` with KEY unset sets nothing either.
        return Ok(None);
    };
    if value.contains('\0') {
        return Err(bad("-e", spec, "the value holds a NUL byte, which no environment can carry", "remove it"));
    }
    Ok(Some((key.to_owned(), value)))
}

fn volume(spec: &str, cwd: &Path) -> Result<MountSpec, OverrideError> {
    let fix = "write -v HOST:DIR or -v HOST:DIR:ro, e.g. -v ./data:/data:ro";
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, readonly) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        [_, _, option] => return Err(bad("-v", spec, format!("`{option}` is not an option (ro or rw)"), fix)),
        _ => return Err(bad("-v", spec, "not HOST:DIR (a path holding `:` cannot be given to -v)", fix)),
    };
    if host.is_empty() {
        return Err(bad("-v", spec, "the host directory is empty", fix));
    }
    let target = inside_path("-v", target)?;
    if target == "/" {
        return Err(bad("-v", spec, "a volume cannot hide the whole rootfs", "mount it on a directory such as /data"));
    }
    let source = std::fs::canonicalize(cwd.join(host))
        .map_err(|e| bad("-v", spec, format!("cannot use the host path {host}: {e}"), "give an existing host directory or file"))?;
    Ok(MountSpec { source, target, readonly, origin: Origin { file: format!("-v {spec}"), line: 1, column: 1 } })
}

/// An absolute path inside, normalized (`/a/./b/` is `/a/b`); `..` is refused.
fn inside_path(flag: &'static str, path: &str) -> Result<String, OverrideError> {
    if !path.starts_with('/') {
        return Err(bad(flag, path, "not an absolute path inside the environment", "give a path such as /home/student"));
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(bad(flag, path, "`..` is not allowed", "give the path without `..`")),
        }
    }
    if path.contains('\0') {
        return Err(bad(flag, path, "the path holds a NUL byte", "remove it"));
    }
    Ok(out.to_string_lossy().into_owned())
}

/// `-u`: root, the profile's own user, or numeric ids (given a passwd line
/// of their own, as `sandbox` writes the rootfs's /etc/passwd).
fn user_for(spec: &str, profile_user: &User) -> Result<User, OverrideError> {
    let (who, group) = match spec.split_once(':') {
        Some((who, group)) => (who, Some(group)),
        None => (spec, None),
    };
    let gid = group
        .map(|g| {
            g.parse::<u32>().map_err(|_| bad("-u", spec, format!("`{g}` is not a numeric group id"), "write -u UID:GID, e.g. 1000:1000"))
        })
        .transpose()?;
    let uid = match who.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) if who == "root" => 0,
        Err(_) if who == profile_user.name => profile_user.uid,
        Err(_) => {
            return Err(bad(
                "-u",
                spec,
                format!("the environment has no user `{who}`"),
                format!("use root, {} (the profile's user) or a numeric UID[:GID]", profile_user.name),
            ));
        }
    };
    // Ids at the top of the range are overflow ids (nobody) and beyond the 65536 an instance maps.
    if uid >= 65534 || gid.is_some_and(|g| g >= 65534) {
        return Err(bad("-u", spec, "ids from 65534 up are not mapped inside", "use an id below 65534"));
    }
    let user = if uid == profile_user.uid {
        User { gid: gid.unwrap_or(profile_user.gid), ..profile_user.clone() }
    } else if uid == 0 {
        User { gid: gid.unwrap_or(0), shell: profile_user.shell.clone(), ..User::default() }
    } else {
        let name = format!("user{uid}");
        User { home: format!("/home/{name}"), name, uid, gid: gid.unwrap_or(uid), shell: profile_user.shell.clone() }
    };
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Profile {
        let mut p = crate::profile::load("shell", Path::new("/")).unwrap();
        p.user = User { name: "student".into(), uid: 1000, gid: 1000, home: "/home/student".into(), shell: "/bin/bash".into() };
        p
    }

    fn apply(o: &Overrides) -> Result<Profile, OverrideError> {
        let mut p = shell();
        let env = |key: &str| (key == "FROM_CALLER").then(|| "yes".to_string());
        o.apply(&mut p, Path::new("/"), &env).map(|()| p)
    }

    #[test]
    fn env_sets_passes_through_and_refuses_bad_names() {
        let o = Overrides { env: vec!["A=1".into(), "B=x=y".into(), "FROM_CALLER".into(), "UNSET".into()], ..Default::default() };
        let p = apply(&o).unwrap();
        assert_eq!(p.env["A"], "1");
        assert_eq!(p.env["B"], "x=y");
        assert_eq!(p.env["FROM_CALLER"], "yes");
        assert!(!p.env.contains_key("UNSET"));
        for bad in ["1A=x", "=x", "A-B=1"] {
            let e = apply(&Overrides { env: vec![bad.into()], ..Default::default() }).unwrap_err();
            assert!(e.to_string().contains("fix: write -e KEY=VALUE"), "{e}");
        }
    }

    #[test]
    fn volumes_are_absolute_and_may_be_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let o = Overrides { volumes: vec![format!("{host}:/data:ro"), format!("{host}:/work/./x/")], ..Default::default() };
        let p = apply(&o).unwrap();
        let data = p.mounts.iter().find(|m| m.target == "/data").unwrap();
        assert!(data.readonly);
        assert_eq!(data.source, std::fs::canonicalize(dir.path()).unwrap());
        assert!(p.mounts.iter().any(|m| m.target == "/work/x" && !m.readonly));
        for (spec, why) in [
            (format!("{host}:data"), "absolute"),
            (format!("{host}:/a/../b"), ".."),
            (format!("{host}:/x:rx"), "not an option"),
            ("/no/such/dir:/x".to_string(), "cannot use the host path"),
            (format!("{host}:/"), "whole rootfs"),
            ("nothing".to_string(), "not HOST:DIR"),
        ] {
            let e = apply(&Overrides { volumes: vec![spec.clone()], ..Default::default() }).unwrap_err();
            assert!(e.to_string().contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn workdir_and_user() {
        let p = apply(&Overrides { workdir: Some("/tmp/".into()), user: Some("root".into()), ..Default::default() }).unwrap();
        assert_eq!(p.run.workdir.as_deref(), Some("/tmp"));
        assert_eq!((p.user.name.as_str(), p.user.uid, p.user.home.as_str()), ("root", 0, "/root"));
        let p = apply(&Overrides { user: Some("student:100".into()), ..Default::default() }).unwrap();
        assert_eq!((p.user.uid, p.user.gid, p.user.home.as_str()), (1000, 100, "/home/student"));
        let p = apply(&Overrides { user: Some("1234".into()), ..Default::default() }).unwrap();
        assert_eq!((p.user.name.as_str(), p.user.uid, p.user.gid), ("user1234", 1234, 1234));
        for (spec, why) in [("mallory", "no user `mallory`"), ("1000:x", "numeric group"), ("70000", "65534")] {
            let e = apply(&Overrides { user: Some(spec.into()), ..Default::default() }).unwrap_err();
            assert!(e.to_string().contains(why), "{spec}: {e}");
        }
        assert!(apply(&Overrides { workdir: Some("rel".into()), ..Default::default() }).is_err());
    }
}

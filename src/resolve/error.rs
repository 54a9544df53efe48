//! Resolution errors: each names what the profile asked for, where, and the fix.

use std::path::PathBuf;

use crate::profile::{Located, Origin};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{}: binary `{}` not found on the system PATH ({})\n  fix: {}", .binary.origin, .binary.value, super::build::SYSTEM_PATH.join(":"), binary_fix(.binary, .suggestion))]
    BinaryNotFound { binary: Located<String>, suggestion: Option<String> },

    #[error("{}: locale `{}` is not compiled on this host\n  fix: add `{} {}` to /etc/locale.gen and run `locale-gen` (Debian: apt install locales), or run `localedef -i {} -f {} {}`", .locale.origin, .locale.value, .locale.value, charset(&.locale.value), lang(&.locale.value), charset(&.locale.value), .locale.value)]
    MissingLocale { locale: Located<String> },

    #[error("{}: time zone `{}` is not in /usr/share/zoneinfo on this host\n  fix: check the name (for example `Asia/Seoul`), or install the zone data (Debian: apt install tzdata)", .zone.origin, .zone.value)]
    MissingZone { zone: Located<String> },

    #[error("{origin}: `{}` cannot be placed inside the rootfs\n  fix: use an absolute path without `..`", .path.escape_debug())]
    Outside { origin: Origin, path: String },

    /// A host or lab file the profile reaches that cannot be taken. `origin`
    /// is the profile line that (through a chain of reasons) brought it in.
    #[error("{}{}: {cause}\n  fix: {fix}", .origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default(), shown(.path))]
    Host { origin: Option<Origin>, path: PathBuf, cause: String, fix: String },

    /// The profile's command is not in its rootfs (`place` is the setting's file:line:col).
    #[error("{place}: {cause}\n  fix: {fix}")]
    Command { place: String, cause: String, fix: String },

    /// The imported image a profile builds on is not in the store (the message says why and the fix).
    #[error("{0}")]
    Image(String),
}

/// A path in a message: lossy for bytes that are not UTF-8, escaped so that a
/// crafted name cannot move the cursor or break the one-line form.
pub fn shown(path: &std::path::Path) -> String {
    path.to_string_lossy().escape_debug().to_string()
}

impl ResolveError {
    /// An I/O error on `path`, reached from the profile line `origin`.
    pub fn io(origin: Option<Origin>, path: &std::path::Path, error: &std::io::Error) -> ResolveError {
        let fix = match error.kind() {
            std::io::ErrorKind::NotFound => "check that the path exists on this host",
            std::io::ErrorKind::PermissionDenied => "make it readable by the user who builds (root for the store)",
            _ => "check that the path is readable and does not change during the build",
        };
        ResolveError::Host { origin, path: path.to_path_buf(), cause: io_cause(error), fix: fix.into() }
    }
}

/// An io::Error without the "(os error N)" tail people cannot use.
pub fn io_cause(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => error.to_string(),
    }
}

fn binary_fix(binary: &Located<String>, suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("did you mean `{s}`? Otherwise install the program on the host, or give its absolute path"),
        None => format!("install `{}` on the host (Debian: apt install <package>), or give its absolute path", binary.value),
    }
}

fn lang(locale: &str) -> &str {
    locale.split(['.', '@']).next().unwrap_or(locale)
}

fn charset(locale: &str) -> &str {
    locale.split_once('.').map(|(_, c)| c.split('@').next().unwrap_or(c)).unwrap_or("UTF-8")
}

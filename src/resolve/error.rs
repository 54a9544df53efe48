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

    #[error("{origin}: `{path}` cannot be placed inside the rootfs\n  fix: use an absolute path without `..`")]
    Outside { origin: Origin, path: String },

    #[error("{}{}: {error}\n  fix: check that the path exists on this host and is readable", .origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default(), .path.display())]
    Io { origin: Option<Origin>, path: PathBuf, error: std::io::Error },

    /// The imported image a profile builds on is not in the store (the message says why and the fix).
    #[error("{0}")]
    Image(String),
}

impl ResolveError {
    /// An I/O error on a path the profile named at `located`.
    pub fn at<T: AsRef<str>>(located: &Located<T>, error: std::io::Error) -> ResolveError {
        ResolveError::Io { origin: Some(located.origin.clone()), path: PathBuf::from(located.value.as_ref()), error }
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

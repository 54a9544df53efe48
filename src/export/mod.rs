//! The environment on the engines people already use: a profile's rootfs as an
//! OCI image (one layer per level of `extends`), a `docker load` archive, an
//! OCI runtime bundle for runc and crun, a Kubernetes manifest; and the way
//! back: an OCI image imported into the store as a rootfs.
//!
//! Everything written is reproducible: the same profile on the same host files
//! gives byte-identical blobs, so an image digest can be compared across
//! machines as the rootfs digest is.

pub mod archive;
pub mod bundle;
pub mod chain;
pub mod diff;
pub mod image;
pub mod import;
pub mod imported;
pub mod k8s;
pub mod layer;
pub mod sbom;

use std::io;
use std::path::{Path, PathBuf};

use crate::profile::{Profile, ProfileError};
use crate::resolve::ResolveError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, ExportError>;

impl From<oci_spec::OciSpecError> for ExportError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        ExportError::Invalid(format!("OCI specification: {e}"))
    }
}

impl From<serde_json::Error> for ExportError {
    fn from(e: serde_json::Error) -> Self {
        ExportError::Invalid(format!("JSON: {e}"))
    }
}

/// `io::Result` with the path or step that failed, so a message names it.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ExportError::Io { context: what(), source })
    }
    fn at(self, path: &Path) -> Result<T> {
        self.context(|| path.display().to_string())
    }
}

/// The timestamp written into tar headers and the image config: the
/// reproducible-builds convention `SOURCE_DATE_EPOCH`, else the epoch, so that
/// nothing depends on when or where the export ran.
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(text) if text.is_empty() => Ok(0),
        Ok(text) => text.trim().parse().map_err(|_| {
            ExportError::Invalid(format!(
                "SOURCE_DATE_EPOCH is `{text}`, not a number of seconds since 1970\n  fix: unset it, or set it to e.g. `git log -1 --format=%ct`"
            ))
        }),
    }
}

/// RFC 3339 in UTC (`1970-01-01T00:00:00Z`), as the image spec wants `created`.
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Howard Hinnant's days-to-date algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The environment the profile's command starts with, as `run` gives it
/// (`crate::plan::environment`), without TERM: an engine sets TERM itself when
/// it allocates a terminal (`docker run -t`), and a fixed one would lie otherwise.
pub fn environment(profile: &Profile) -> Vec<(String, String)> {
    let input = crate::plan::Input {
        profile,
        mode: profile.run.mode,
        rootfs: PathBuf::from("/"),
        command: profile.run.command.clone(),
        term: None,
        ids: crate::plan::IdMapping::Range { host_base: 0 },
        idmapped: false,
        cgroup: Default::default(),
        layer: None,
        throwaway: false,
    };
    let mut env = crate::plan::environment(&input);
    if !profile.env.contains_key("TERM") {
        env.retain(|(key, _)| key != "TERM");
    }
    env
}

/// The working directory of the command: `[run] workdir`, else the user's home.
pub fn workdir(profile: &Profile) -> String {
    profile.run.workdir.clone().unwrap_or_else(|| profile.user.home.clone())
}

/// The reference an exported image is known by: `sandbox/<name>:<short digest>`.
pub fn image_reference(profile: &Profile, rootfs_digest: &str) -> String {
    format!("sandbox/{}:{}", profile.name, crate::rootfs::digest::short(rootfs_digest))
}

/// JSON with its object keys sorted (serde_json's map is a BTreeMap), so that
/// the `HashMap`s of the OCI types serialize the same way every time.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::to_value(value)?)?)
}

/// Move a directory made beside its destination into place: `dest` must not
/// exist or be empty, and a half-written result is never seen under its name.
pub fn publish_dir(made: &Path, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // tempfile makes private (0700) directories; what is published is for other tools.
    std::fs::set_permissions(made, std::fs::Permissions::from_mode(0o755)).at(made)?;
    std::fs::rename(made, dest).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => {
            ExportError::Invalid(format!("{} is not empty; give a new or empty directory", dest.display()))
        }
        Some(libc::ENOTDIR) => ExportError::Invalid(format!("{} exists and is not a directory", dest.display())),
        _ => ExportError::Io { context: dest.display().to_string(), source: e },
    })
}

/// A temporary directory beside `dest` (same filesystem, so `publish_dir` is a rename).
pub fn staging_beside(dest: &Path) -> Result<tempfile::TempDir> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).at(parent)?;
    tempfile::Builder::new().prefix(".sandbox-export-").tempdir_in(parent).at(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}

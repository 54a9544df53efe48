//! Resolution: from a profile to the exact list of files the rootfs will hold.

pub mod build;
pub mod bytepath;
pub mod dpkg;
pub mod elf;
pub mod error;
pub(crate) mod labfiles;
pub mod ldcache;
pub mod locale;
pub mod manifest;
pub(crate) mod pseudofs;
pub mod rules;
pub mod search;
pub mod skeleton;

pub use build::Resolver;
pub use error::ResolveError;
pub use manifest::{Entry, Kind, Manifest, Reason};

/// Resolve a profile against this host: the manifest of its rootfs, and the
/// dpkg database it was read with (for the lock file's package versions).
pub fn resolve_profile(profile: &crate::profile::Profile) -> Result<(Manifest, dpkg::Dpkg), ResolveError> {
    let root = std::path::Path::new("/");
    let search = search::LibrarySearch::from_root(root);
    let dpkg = dpkg::Dpkg::load(root);
    let manifest = Resolver::new(&search, &dpkg).resolve(profile)?;
    Ok((manifest, dpkg))
}

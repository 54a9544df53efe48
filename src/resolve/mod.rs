//! Resolution: from a profile to the exact list of files the rootfs will hold.

pub mod build;
pub mod bytepath;
pub mod command;
pub mod dpkg;
pub mod elf;
pub mod error;
pub(crate) mod labfiles;
pub mod ldcache;
pub mod locale;
pub mod manifest;
pub(crate) mod pseudofs;
pub mod rules;
pub mod script;
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
    let mut resolver = Resolver::new(&search, &dpkg);
    if let Some(image) = &profile.image {
        // An imported image's tree is the start; the profile adds to it (see export::imported).
        let store = crate::rootfs::Store::open(&crate::state::home()).map_err(|e| ResolveError::Image(format!("the store: {e}")))?;
        let (base, _) = crate::export::imported::base_of(&store, &image.digest).map_err(|e| ResolveError::Image(e.to_string()))?;
        resolver = resolver.starting_from(base);
    }
    let manifest = resolver.resolve(profile)?;
    Ok((manifest, dpkg))
}

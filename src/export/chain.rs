//! The `extends` chain of a profile, each level loaded, resolved and built on
//! its own: the base profile becomes the base layer of the image, each child
//! a layer of what it adds or changes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Context, ExportError, Result};
use crate::profile::{self, Profile};
use crate::resolve::dpkg::Dpkg;
use crate::resolve::{self, Manifest};
use crate::rootfs::Store;
use crate::rootfs::digest::{self, ContentHashes};
use crate::rootfs::lock::Lock;

/// One level of the chain, built in the store.
pub struct Level {
    pub profile: Profile,
    pub manifest: Manifest,
    pub hashes: ContentHashes,
    /// The rootfs digest of this level alone (what `sandbox build` prints for it).
    pub digest: String,
    /// Its tree in the store: file contents are read from here, the bytes the
    /// digest was computed over, not from host files that may have changed since.
    pub tree: PathBuf,
    /// Which package each host file came from (read when first asked), for the lock and SBOM.
    pub dpkg: Dpkg,
}

impl Level {
    /// What the lock of this level holds.
    pub fn lock(&self) -> Lock {
        Lock::new(&self.profile.name, &self.digest, &self.manifest, &self.hashes, &self.dpkg)
    }

    /// The SBOM of this level's rootfs, from its lock and stored tree.
    pub fn sbom_input(&self, epoch: u64) -> super::sbom::Input<'_> {
        super::sbom::Input { lock: self.lock(), manifest: &self.manifest, tree: &self.tree, epoch }
    }
}

/// Load `spec` and every profile it extends, base first. Each is loaded by
/// `profile::load` on its own, so a parent is exactly what `sandbox build
/// PARENT` would build.
pub fn load_chain(spec: &str, cwd: &Path) -> Result<Vec<Profile>> {
    let top = profile::load(spec, cwd)?;
    let mut specs = vec![spec.to_owned()];
    let mut text = profile_text(spec, cwd)?;
    while let Some(parent) = parent_spec(&text)? {
        let parent_spec = match &text.dir {
            Some(dir) if is_path(&parent) => dir.join(&parent).to_str().map(str::to_owned).ok_or_else(|| not_utf8(&parent))?,
            _ => parent,
        };
        text = profile_text(&parent_spec, cwd)?;
        specs.push(parent_spec);
    }
    specs.reverse();
    let mut chain = Vec::with_capacity(specs.len());
    for spec in &specs[..specs.len() - 1] {
        chain.push(profile::load(spec, cwd)?);
    }
    chain.push(top);
    check_names(&chain)?;
    Ok(chain)
}

/// Resolve and build every level in the store (a parent already built is reused).
pub fn build_levels(chain: Vec<Profile>, store: &Store, progress: &indicatif::ProgressBar) -> Result<Vec<Level>> {
    chain.into_iter().map(|profile| build_level(profile, store, progress)).collect()
}

fn build_level(profile: Profile, store: &Store, progress: &indicatif::ProgressBar) -> Result<Level> {
    let (manifest, dpkg) = resolve::resolve_profile(&profile)?;
    let hashes = store.hash_contents(&manifest, progress).context(|| format!("hashing the files of {}", profile.name))?;
    let built = store
        .build(&profile.name, &manifest, &hashes, Instant::now(), progress)
        .context(|| format!("building {} in the store", profile.name))?;
    debug_assert_eq!(built.digest, digest::digest(&manifest, &hashes));
    Ok(Level { profile, manifest, hashes, digest: built.digest, tree: built.path, dpkg })
}

/// A profile's text and the directory its relative `extends` is resolved in
/// (None for a ready profile, which may only extend ready profiles).
struct Text {
    toml: String,
    dir: Option<PathBuf>,
}

fn profile_text(spec: &str, cwd: &Path) -> Result<Text> {
    if spec.starts_with(super::imported::PREFIX) {
        // An imported image is the base of the chain: it extends nothing.
        return Ok(Text { toml: String::new(), dir: None });
    }
    if !is_path(spec) {
        if let Some(ready) = profile::ready().iter().find(|p| p.name == spec) {
            return Ok(Text { toml: ready.source.to_owned(), dir: None });
        }
        if super::imported::ImageRecord::find(&crate::state::home(), spec)?.is_some() {
            return Ok(Text { toml: String::new(), dir: None });
        }
        return Err(ExportError::Invalid(format!("no ready profile or imported image is named `{spec}`")));
    }
    let path = cwd.join(spec);
    let toml = std::fs::read_to_string(&path).at(&path)?;
    let absolute = std::fs::canonicalize(&path).at(&path)?;
    Ok(Text { toml, dir: absolute.parent().map(Path::to_path_buf) })
}

/// The `extends` of a profile's text (already validated by `profile::load`).
fn parent_spec(text: &Text) -> Result<Option<String>> {
    let table: toml::Table = text.toml.parse().map_err(|e| ExportError::Invalid(format!("profile: {e}")))?;
    Ok(table.get("extends").and_then(|v| v.as_str()).map(str::to_owned))
}

/// The rule `profile::load` follows: a path names a file, anything else a ready profile.
fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".toml")
}

fn not_utf8(spec: &str) -> ExportError {
    ExportError::Invalid(format!("the path of `{spec}` is not UTF-8; move the profiles to a UTF-8 path"))
}

/// Each level must be the prefix of the chain `profile::load` reported.
fn check_names(chain: &[Profile]) -> Result<()> {
    let top = chain.last().map(|p| p.layers.clone()).unwrap_or_default();
    let names: Vec<String> = chain.iter().map(|p| p.name.clone()).collect();
    if names != top {
        return Err(ExportError::Invalid(format!(
            "the extends chain changed while it was read ({} instead of {})",
            names.join(" > "),
            top.join(" > ")
        )));
    }
    Ok(())
}

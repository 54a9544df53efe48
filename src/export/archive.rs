//! `--tar FILE`: one archive that `docker load` and `podman load` both read.
//!
//! It is the format `docker save` writes since Docker 25: a complete OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/`, so it is also an
//! `oci-archive:` for skopeo and podman; the index names the one manifest once
//! per tag, so skopeo takes `oci-archive:FILE:sandbox/NAME:latest`) plus
//! Docker's `manifest.json`, which names the same config and layer blobs and
//! the tags to load the image as.
//! Like the layers, the archive is reproducible: sorted members, fixed times,
//! root-owned, fixed modes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use tar::{EntryType, Header};

use super::chain::Level;
use super::image::{self, Image, REF_NAME};
use super::{Context, ExportError, Result, canonical_json};

/// Write the archive of `levels` to `file` (replaced whole, never half-written).
/// Returns the image and the references it loads as (`NAME:DIGEST`, `NAME:latest`).
pub fn write_archive(file: &Path, levels: &[Level], epoch: u64, progress: &indicatif::ProgressBar) -> Result<(Image, Vec<String>)> {
    let staging = super::staging_beside(file)?;
    let (image, references, tmp) = stage_archive(staging.path(), levels, epoch, progress)?;
    std::fs::rename(&tmp, file).at(file)?;
    Ok((image, references))
}

/// Write the archive to `out` (stdout: `sandbox export --tar - | podman load`),
/// staged first in a directory under `scratch`, so a failure sends nothing half-made.
pub fn write_archive_to(
    out: &mut dyn Write,
    scratch: &Path,
    levels: &[Level],
    epoch: u64,
    progress: &indicatif::ProgressBar,
) -> Result<(Image, Vec<String>)> {
    std::fs::create_dir_all(scratch).at(scratch)?;
    let staging = tempfile::Builder::new().prefix("export-").tempdir_in(scratch).at(scratch)?;
    let (image, references, tmp) = stage_archive(staging.path(), levels, epoch, progress)?;
    let mut file = File::open(&tmp).at(&tmp)?;
    std::io::copy(&mut file, out).context(|| "writing the archive to stdout".into())?;
    out.flush().context(|| "writing the archive to stdout".into())?;
    Ok((image, references))
}

fn stage_archive(
    staging: &Path,
    levels: &[Level],
    epoch: u64,
    progress: &indicatif::ProgressBar,
) -> Result<(Image, Vec<String>, std::path::PathBuf)> {
    let top = levels.last().ok_or_else(|| ExportError::Invalid("a profile has at least one level".into()))?;
    let reference = super::image_reference(&top.profile, &top.digest);
    // `podman run sandbox/NAME` and `docker run sandbox/NAME` look for :latest.
    let latest = format!("sandbox/{}:latest", top.profile.name);
    let layout = staging.join("layout");
    std::fs::create_dir(&layout).at(&layout)?;
    let references = vec![reference, latest];
    // One index entry per tag, as `docker save` writes them: podman loads an
    // oci-archive by its index (each entry's ref name a tag), docker by manifest.json.
    let names: Vec<BTreeMap<String, String>> = references
        .iter()
        .map(|reference| {
            BTreeMap::from([
                (REF_NAME.to_string(), reference.clone()),
                // What containerd and `docker save` use to name the image on load.
                ("io.containerd.image.name".to_string(), reference.clone()),
            ])
        })
        .collect();
    let image = image::write_layout(&layout, levels, epoch, &names, progress)?;
    std::fs::write(layout.join("manifest.json"), docker_manifest(&image, &references)?).at(&layout)?;
    progress.set_message("archive");
    let tmp = staging.join("archive.tar");
    tar_layout(&layout, &tmp, epoch)?;
    Ok((image, references, tmp))
}

/// Docker's `manifest.json`: the config, the tags, the layers in order.
fn docker_manifest(image: &Image, references: &[String]) -> Result<Vec<u8>> {
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let entry = serde_json::json!([{
        "Config": path(image.config.path()),
        "RepoTags": references,
        "Layers": image.layers.iter().map(|l| path(image::blob_path(&l.digest))).collect::<Vec<_>>(),
    }]);
    canonical_json(&entry)
}

/// Tar the layout directory (flat: two levels of directories and files).
fn tar_layout(layout: &Path, out: &Path, epoch: u64) -> Result<()> {
    let file = File::create(out).at(out)?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    for relative in sorted_members(layout)? {
        let source = layout.join(&relative);
        let is_dir = source.is_dir();
        let mut header = Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(0);
        header.set_gid(0);
        let name = if is_dir { format!("{relative}/") } else { relative.clone() };
        header.set_path(&name).context(|| name.clone())?;
        if is_dir {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, std::io::empty()).at(out)?;
        } else {
            let data = File::open(&source).at(&source)?;
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.metadata().at(&source)?.len());
            header.set_cksum();
            builder.append(&header, data).at(out)?;
        }
    }
    let mut writer = builder.into_inner().at(out)?;
    writer.flush().at(out)
}

/// Every path under `dir`, relative, in byte order (directories before their contents).
fn sorted_members(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    collect(dir, "", &mut found)?;
    found.sort();
    Ok(found)
}

fn collect(dir: &Path, prefix: &str, found: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().into_string().map_err(|n| ExportError::Invalid(format!("unexpected file {n:?} in the layout")))?;
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if entry.file_type().at(dir)?.is_dir() {
            collect(&entry.path(), &relative, found)?;
        }
        found.push(relative);
    }
    Ok(())
}

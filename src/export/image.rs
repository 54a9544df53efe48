//! An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) of the
//! levels of a profile: one gzip layer per level, a config carrying the
//! profile's user, environment, working directory, command and labels.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder,
};

use super::chain::Level;
use super::diff::{self, Side};
use super::layer::{self, LayerBlob};
use super::{Context, ExportError, Result, canonical_json};
use crate::rootfs::digest::short;

/// The annotation that names an image in an index (`skopeo inspect oci:DIR:latest`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The label (config) and annotation (layers) that carry a rootfs digest.
pub const DIGEST_LABEL: &str = "io.sandbox.digest";
/// The annotation of a layer naming the profile it holds.
pub const PROFILE_ANNOTATION: &str = "io.sandbox.profile";
/// The manifest annotation naming the SBOM blob (`sha256:...`, media type
/// `application/spdx+json`) of the layout: the manifest's digest covers it.
pub const SBOM_ANNOTATION: &str = "io.sandbox.sbom.spdx";

/// What was written: enough to name every blob.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<LayerBlob>,
    /// The SPDX document of the rootfs, linked from the manifest's `SBOM_ANNOTATION`.
    pub sbom: Blob,
    /// The rootfs digest of the whole profile (`sandbox build`'s).
    pub rootfs_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

impl Blob {
    /// `blobs/sha256/<hex>`, the path inside a layout.
    pub fn path(&self) -> PathBuf {
        blob_path(&self.digest)
    }
}

pub fn blob_path(digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    Path::new("blobs").join(algorithm).join(hex)
}

/// Write the layout of `levels` (base first) into the empty directory `dir`.
/// `index_names` are the annotations (a ref name) of the manifest's entries in
/// `index.json`: one entry each, all of the same manifest, as `docker save`
/// writes an image saved under several tags (podman loads each as a tag).
pub fn write_layout(
    dir: &Path,
    levels: &[Level],
    epoch: u64,
    index_names: &[BTreeMap<String, String>],
    progress: &indicatif::ProgressBar,
) -> Result<Image> {
    let top = levels.last().ok_or_else(|| ExportError::Invalid("a profile has at least one level".into()))?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).at(&blobs)?;
    let mut layers = Vec::with_capacity(levels.len());
    let mut lower: Option<&Level> = None;
    for (number, level) in levels.iter().enumerate() {
        progress.set_message(format!("layer {}/{}", number + 1, levels.len()));
        layers.push(write_level(&blobs, lower, level, epoch, progress)?);
        lower = Some(level);
    }
    progress.set_message("SBOM");
    let sbom = write_blob(&blobs, &super::sbom::spdx(&top.sbom_input(epoch))?)?;
    let config = image_config(levels, &layers, epoch)?;
    let config = write_blob(&blobs, &canonical_json(&config)?)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config.digest, config.size, BTreeMap::new())?)
        .layers(levels.iter().zip(&layers).map(|(level, blob)| layer_descriptor(level, blob)).collect::<Result<Vec<_>>>()?)
        .annotations(HashMap::from([(SBOM_ANNOTATION.to_string(), sbom.digest.clone())]))
        .build()?;
    let manifest = write_blob(&blobs, &canonical_json(&manifest)?)?;
    let mut entries = Vec::with_capacity(index_names.len().max(1));
    for annotations in index_names.iter().cloned().chain(index_names.is_empty().then(BTreeMap::new)) {
        let mut entry = descriptor(MediaType::ImageManifest, &manifest.digest, manifest.size, annotations)?;
        entry.set_platform(Some(PlatformBuilder::default().architecture(Arch::default()).os(Os::default()).build()?));
        entries.push(entry);
    }
    let index = ImageIndexBuilder::default().schema_version(2u32).media_type(MediaType::ImageIndex).manifests(entries).build()?;
    write_file(&dir.join("index.json"), &canonical_json(&index)?)?;
    let layout = OciLayoutBuilder::default().image_layout_version("1.0.0").build()?;
    write_file(&dir.join("oci-layout"), &canonical_json(&layout)?)?;
    Ok(Image { manifest, config, layers, sbom, rootfs_digest: top.digest.clone() })
}

/// The layer of one level: all of it for the base, the difference over its parent otherwise.
fn write_level(blobs: &Path, lower: Option<&Level>, level: &Level, epoch: u64, progress: &indicatif::ProgressBar) -> Result<LayerBlob> {
    let members = diff::layer(
        lower.map(|l| Side { manifest: &l.manifest, hashes: &l.hashes }),
        Side { manifest: &level.manifest, hashes: &level.hashes },
    );
    let tmp = tempfile::NamedTempFile::new_in(blobs).at(blobs)?;
    let (file, blob) = layer::write_layer(&members, &level.tree, epoch, std::io::BufWriter::new(tmp), progress)?;
    let tmp = file.into_inner().map_err(|e| ExportError::Io { context: "writing a layer".into(), source: e.into_error() })?;
    let path = blobs.join(hex_of(&blob.digest));
    tmp.persist(&path).map_err(|e| ExportError::Io { context: path.display().to_string(), source: e.error })?;
    // A temporary file is private (0600); a blob is read by other tools, as the JSON blobs are.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).at(&path)?;
    Ok(blob)
}

fn image_config(levels: &[Level], layers: &[LayerBlob], epoch: u64) -> Result<ImageConfiguration> {
    let top = levels.last().ok_or_else(|| ExportError::Invalid("no level".into()))?;
    let profile = &top.profile;
    let created = super::rfc3339(epoch);
    let env: Vec<String> = super::environment(profile).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let config = ConfigBuilder::default()
        .user(format!("{}:{}", profile.user.uid, profile.user.gid))
        .env(env)
        .cmd(profile.run.command.clone())
        .working_dir(super::workdir(profile))
        .labels(labels(top))
        .build()?;
    let history = levels
        .iter()
        .map(|level| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("sandbox export: profile {} (rootfs {})", level.profile.name, short(&level.digest)))
                .build()
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default().typ("layers").diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()).build()?;
    Ok(ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::default())
        .os(Os::default())
        .config(config)
        .rootfs(rootfs)
        .history(history)
        .build()?)
}

/// The image's labels: the OCI title and description, and the rootfs digest
/// that `sandbox build` prints for the same profile.
pub fn labels(top: &Level) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        ("org.opencontainers.image.title".to_string(), top.profile.name.clone()),
        (DIGEST_LABEL.to_string(), top.digest.clone()),
        ("io.sandbox.layers".to_string(), top.profile.layers.join(" > ")),
    ]);
    if let Some(description) = &top.profile.description {
        labels.insert("org.opencontainers.image.description".into(), description.clone());
    }
    labels
}

fn layer_descriptor(level: &Level, blob: &LayerBlob) -> Result<Descriptor> {
    let annotations =
        BTreeMap::from([(PROFILE_ANNOTATION.to_string(), level.profile.name.clone()), (DIGEST_LABEL.to_string(), level.digest.clone())]);
    descriptor(MediaType::ImageLayerGzip, &blob.digest, blob.size, annotations)
}

fn descriptor(media_type: MediaType, digest: &str, size: u64, annotations: BTreeMap<String, String>) -> Result<Descriptor> {
    let digest: Digest = digest.parse()?;
    let mut builder = DescriptorBuilder::default().media_type(media_type).digest(digest).size(size);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations.into_iter().collect::<HashMap<_, _>>());
    }
    Ok(builder.build()?)
}

/// Store `bytes` under their digest.
pub fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<Blob> {
    let digest = format!("sha256:{}", crate::rootfs::digest::sha256_hex(bytes));
    write_file(&blobs.join(hex_of(&digest)), bytes)?;
    Ok(Blob { digest, size: bytes.len() as u64 })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::File::create(path).at(path)?;
    file.write_all(bytes).at(path)
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

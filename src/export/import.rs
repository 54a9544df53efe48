//! `sandbox import`: an OCI image layout or archive (or a `docker save`
//! archive) made into a rootfs of the store, under the digest `sandbox build`
//! would give the same tree.
//!
//! Nothing of the image is extracted by path onto the disk. The layers are
//! applied, in order and honouring whiteouts, to an in-memory manifest; file
//! contents go to numbered files of a private staging directory, hashed on
//! the way. The store then materializes that manifest as it does a profile's
//! (`openat2` beneath the new root, no symlink followed), in a temporary
//! directory under `store/tmp` renamed into `store/rootfs/<digest>`. So `..`
//! is rejected, and a symlink in the image, absolute or not, stays a link that
//! nothing is ever written through.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::imported::{self, ImageRecord};
use super::layer::CAPABILITY_RECORD;
use super::{Context, ExportError, Result};
use crate::resolve::{Entry, Kind, Manifest, Reason};
use crate::rootfs::digest::ContentHashes;
use crate::rootfs::{Built, Store};

/// What `import` did.
pub struct Imported {
    pub built: Built,
    /// What of the image was left out or kept only because asked (devices,
    /// fifos, file capabilities), and name clashes.
    pub notes: Vec<String>,
    /// The record `sandbox run IMAGE` reads.
    pub image: ImageRecord,
}

/// What `import` is asked to do besides reading the image.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Keep the file capabilities of the image's files (`--keep-caps`);
    /// by default they are dropped: a capability is root's power in a file.
    pub keep_caps: bool,
}

/// Import the image at `source` (a layout directory, or a tar of one or of
/// `docker save`) into the store under `state`, named `name` (else from
/// its title label, else `imported`).
pub fn import(source: &Path, name: Option<&str>, options: Options, store: &Store, state: &Path) -> Result<Imported> {
    let started = Instant::now();
    if let Some(name) = name.filter(|n| !imported::valid_name(n)) {
        return Err(ExportError::Invalid(format!(
            "`{}` cannot name an image\n  fix: use lower-case letters, digits and `-`, starting with a letter or digit (up to 63)",
            name.escape_debug()
        )));
    }
    let tmp = state.join("store/tmp");
    let staging = tempfile::Builder::new().prefix("import-").tempdir_in(&tmp).at(&tmp)?;
    let dir = if source.is_dir() { source.to_path_buf() } else { unpack_archive(source, &staging.path().join("archive"))? };
    let image = open_image(&dir)?;
    let mut tree = Tree::new(staging.path().join("content")).at(staging.path())?;
    tree.keep_caps = options.keep_caps;
    for (number, layer) in image.layers.iter().enumerate() {
        let label = format!("layer {} of {}", number + 1, source.display());
        apply_layer(&mut tree, layer, &label)?;
    }
    tree.note_capabilities();
    let name = name
        .map(str::to_owned)
        .or_else(|| title(&image.config).and_then(|t| imported::name_from_title(&t)))
        .unwrap_or_else(|| "imported".into());
    let manifest = Manifest { entries: tree.entries, notes: Vec::new() };
    let built = store
        .build(&name, &manifest, &tree.hashes, started, &indicatif::ProgressBar::hidden())
        .context(|| format!("storing the image of {}", source.display()))?;
    if !built.reused {
        point_record_at_tree(&built)?;
    }
    let record = image_record(&name, &built.digest, image.config.as_ref());
    record.write(state)?;
    let mut notes = tree.notes;
    if crate::profile::ready().iter().any(|p| p.name == name) {
        notes.push(format!("a ready profile is also named `{name}`: run the image as `sandbox run {}{name}`", imported::PREFIX));
    }
    Ok(Imported { built, notes, image: record })
}

/// What of the image's config a run uses.
fn image_record(name: &str, digest: &str, config: Option<&ImageConfiguration>) -> ImageRecord {
    let mut record = ImageRecord { name: name.into(), digest: digest.into(), ..ImageRecord::default() };
    if let Some(c) = config.and_then(|c| c.config().as_ref()) {
        record.user = c.user().clone().unwrap_or_default();
        record.env = c.env().clone().unwrap_or_default();
        record.workdir = c.working_dir().clone().unwrap_or_default();
        record.entrypoint = c.entrypoint().clone().unwrap_or_default();
        record.cmd = c.cmd().clone().unwrap_or_default();
    }
    record
}

/// An image's config and its layers, base first.
struct Image {
    config: Option<ImageConfiguration>,
    layers: Vec<LayerRef>,
}

struct LayerRef {
    path: PathBuf,
    /// `sha256:` the blob must have (OCI layouts name blobs by it).
    digest: Option<String>,
    /// `sha256:` the uncompressed tar must have (the config's diff_ids).
    diff_id: Option<String>,
}

fn open_image(dir: &Path) -> Result<Image> {
    if dir.join("index.json").is_file() {
        open_oci(dir)
    } else if dir.join("manifest.json").is_file() {
        open_docker(dir)
    } else {
        Err(ExportError::Invalid(format!(
            "{} is neither an OCI image layout (no index.json) nor a `docker save` archive (no manifest.json)",
            dir.display()
        )))
    }
}

fn open_oci(dir: &Path) -> Result<Image> {
    let index: ImageIndex = serde_json::from_slice(&std::fs::read(dir.join("index.json")).at(&dir.join("index.json"))?)?;
    let manifest_descriptor = select_manifest(dir, index, 0)?;
    let manifest: ImageManifest = serde_json::from_slice(&read_blob(dir, &manifest_descriptor)?)?;
    let config: ImageConfiguration = serde_json::from_slice(&read_blob(dir, manifest.config())?)?;
    let diff_ids = config.rootfs().diff_ids().clone();
    let layers = manifest
        .layers()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(LayerRef { path: dir.join(blob_path(d)?), digest: Some(d.digest().to_string()), diff_id: diff_ids.get(i).cloned() })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Image { config: Some(config), layers })
}

/// The image of an index: the only one, else the one for this machine's
/// platform; nested indexes (multi-platform images) are followed.
fn select_manifest(dir: &Path, index: ImageIndex, depth: u32) -> Result<Descriptor> {
    if depth > 4 {
        return Err(ExportError::Invalid("image indexes nested too deep".into()));
    }
    let host = |d: &&Descriptor| {
        d.platform()
            .as_ref()
            .is_none_or(|p| *p.architecture() == oci_spec::image::Arch::default() && *p.os() == oci_spec::image::Os::default())
    };
    let mut candidates: Vec<&Descriptor> = match index.manifests().as_slice() {
        [one] => vec![one],
        all => all.iter().filter(host).collect(),
    };
    // One image saved under several tags (`docker save A:1 A:latest`, `sandbox export --tar`)
    // is one manifest listed once per tag: the same image, not a choice.
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|d| seen.insert(d.digest().to_string()));
    let chosen = match candidates.as_slice() {
        [one] => (*one).clone(),
        [] => return Err(ExportError::Invalid("the image index has no image for this machine's platform".into())),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|d| {
                    d.annotations().as_ref().and_then(|a| a.get(super::image::REF_NAME).cloned()).unwrap_or_else(|| d.digest().to_string())
                })
                .collect();
            return Err(ExportError::Invalid(format!(
                "the layout holds several images ({}); copy the one you want to a layout of its own (`skopeo copy oci:DIR:NAME oci:NEW`)",
                names.join(", ")
            )));
        }
    };
    if *chosen.media_type() == MediaType::ImageIndex {
        let nested: ImageIndex = serde_json::from_slice(&read_blob(dir, &chosen)?)?;
        return select_manifest(dir, nested, depth + 1);
    }
    Ok(chosen)
}

fn open_docker(dir: &Path) -> Result<Image> {
    let path = dir.join("manifest.json");
    let entries: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).at(&path)?)?;
    let entry = match entries.as_array().map(Vec::as_slice) {
        Some([one]) => one,
        _ => return Err(ExportError::Invalid("manifest.json must describe exactly one image; save one image per archive".into())),
    };
    let member = |value: &serde_json::Value| -> Result<PathBuf> {
        let name = value.as_str().ok_or_else(|| ExportError::Invalid("manifest.json: a path is not a string".into()))?;
        Ok(dir.join(relative_inside(Path::new(name))?))
    };
    let config_path = member(&entry["Config"])?;
    let config: ImageConfiguration = serde_json::from_slice(&std::fs::read(&config_path).at(&config_path)?)?;
    let diff_ids = config.rootfs().diff_ids().clone();
    let layers = entry["Layers"]
        .as_array()
        .ok_or_else(|| ExportError::Invalid("manifest.json has no Layers".into()))?
        .iter()
        .enumerate()
        .map(|(i, l)| Ok(LayerRef { path: member(l)?, digest: None, diff_id: diff_ids.get(i).cloned() }))
        .collect::<Result<Vec<_>>>()?;
    Ok(Image { config: Some(config), layers })
}

fn title(config: &Option<ImageConfiguration>) -> Option<String> {
    config.as_ref()?.labels_of_config()?.get("org.opencontainers.image.title").cloned()
}

/// `blobs/sha256/<hex>`, accepted only for a well-formed sha256 digest (so a
/// crafted digest cannot name a path).
fn blob_path(descriptor: &Descriptor) -> Result<PathBuf> {
    let digest = descriptor.digest();
    let hex = digest.digest();
    let ok =
        digest.algorithm().as_ref() == "sha256" && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !ok {
        return Err(ExportError::Invalid(format!("unsupported digest {digest}: only sha256 is read")));
    }
    Ok(Path::new("blobs/sha256").join(hex))
}

/// A JSON blob, checked against its digest.
fn read_blob(dir: &Path, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let path = dir.join(blob_path(descriptor)?);
    let bytes = std::fs::read(&path).at(&path)?;
    let actual = format!("sha256:{}", crate::rootfs::digest::sha256_hex(&bytes));
    if actual != descriptor.digest().to_string() {
        return Err(ExportError::Invalid(format!("{} is corrupt: its digest is {actual}", path.display())));
    }
    Ok(bytes)
}

/// A relative path that stays inside its directory: no `..`, no root.
fn relative_inside(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return Err(ExportError::Invalid(format!("`{}` points outside the image; refusing it", path.display()))),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ExportError::Invalid(format!("`{}` names no file", path.display())));
    }
    Ok(out)
}

/// The regular files of an archive (a layout or a `docker save`, gzipped or
/// not) into `dest`. Only directories and regular files are created, at
/// checked relative paths, so nothing lands outside `dest`.
fn unpack_archive(source: &Path, dest: &Path) -> Result<PathBuf> {
    std::fs::create_dir(dest).at(dest)?;
    let mut archive = tar::Archive::new(decompressed(File::open(source).at(source)?, source)?);
    for member in archive.entries().at(source)? {
        let mut member = member.at(source)?;
        let kind = member.header().entry_type();
        if !matches!(kind, EntryType::Regular | EntryType::Continuous | EntryType::Directory) {
            continue;
        }
        let name = member.path().at(source)?.into_owned();
        let Ok(relative) = relative_inside(&name) else {
            if name.components().all(|c| c == Component::CurDir) {
                continue; // the archive's own root, `./`
            }
            return Err(ExportError::Invalid(format!(
                "{}: member `{}` points outside the archive; refusing it",
                source.display(),
                name.display()
            )));
        };
        let path = dest.join(&relative);
        if kind == EntryType::Directory {
            std::fs::create_dir_all(&path).at(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let mut out = File::create(&path).at(&path)?;
        io::copy(&mut member, &mut out).at(&path)?;
    }
    Ok(dest.to_path_buf())
}

/// A reader of the uncompressed bytes, whatever the compression (gzip or none).
fn decompressed(file: File, path: &Path) -> Result<Box<dyn Read>> {
    let mut reader = BufReader::new(file);
    let magic = {
        let buf = io::BufRead::fill_buf(&mut reader).at(path)?;
        buf[..buf.len().min(4)].to_vec()
    };
    match magic.as_slice() {
        [0x1f, 0x8b, ..] => Ok(Box::new(flate2::read::MultiGzDecoder::new(reader))),
        [0x28, 0xb5, 0x2f, 0xfd] => Err(ExportError::Invalid(format!(
            "{} is zstd-compressed, which this build does not read\n  fix: `skopeo copy --dest-compress-format gzip oci:SRC oci:DEST` first",
            path.display()
        ))),
        _ => Ok(Box::new(reader)),
    }
}

/// A reader that hashes what it reads.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The rootfs being assembled: entries by path, content hashes, and where
/// file contents are staged.
struct Tree {
    entries: BTreeMap<PathBuf, Entry>,
    hashes: ContentHashes,
    content: PathBuf,
    staged: u64,
    notes: Vec<String>,
    keep_caps: bool,
    /// Files whose capability was dropped (or kept, with --keep-caps), for one note.
    capabilities: Vec<PathBuf>,
}

/// One member of a layer, read but not yet applied: whiteouts of a layer
/// apply to the layers below it only, so they go first.
enum Change {
    Remove(PathBuf),
    Opaque(PathBuf),
    Put(Entry, Option<String>),
    HardLink { path: PathBuf, target: PathBuf },
}

impl Tree {
    fn new(content: PathBuf) -> io::Result<Tree> {
        std::fs::create_dir(&content)?;
        let root =
            Entry { path: "/".into(), kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0, capability: None, reason: imported("the image root") };
        Ok(Tree {
            entries: BTreeMap::from([(PathBuf::from("/"), root)]),
            hashes: ContentHashes::new(),
            content,
            staged: 0,
            notes: Vec::new(),
            keep_caps: false,
            capabilities: Vec::new(),
        })
    }

    /// One note for the file capabilities of the image, whichever way they went.
    fn note_capabilities(&mut self) {
        // Only those still in the tree: a later layer may have replaced the file.
        let present: std::collections::BTreeSet<String> = self
            .capabilities
            .iter()
            .filter(|p| self.entries.get(*p).is_some_and(|e| matches!(e.kind, Kind::File { .. })))
            .map(|p| p.display().to_string())
            .collect();
        if present.is_empty() {
            return;
        }
        let list = present.into_iter().collect::<Vec<_>>().join(", ");
        self.notes.push(if self.keep_caps {
            format!("kept the file capabilities of {list} (--keep-caps): these programs gain privileges when run")
        } else {
            format!("dropped the file capabilities of {list}; import with --keep-caps to keep them")
        });
    }

    /// Write a file's content to the staging directory; its path and sha256.
    fn stage(&mut self, data: &mut dyn Read) -> Result<(PathBuf, String)> {
        self.staged += 1;
        let path = self.content.join(self.staged.to_string());
        let mut out = File::create(&path).at(&path)?;
        let mut reader = HashingReader { inner: data, hasher: Sha256::new() };
        io::copy(&mut reader, &mut out).at(&path)?;
        out.flush().at(&path)?;
        Ok((path, hex::encode(reader.hasher.finalize())))
    }

    fn remove(&mut self, path: &Path) {
        let doomed: Vec<PathBuf> =
            self.entries.range(path.to_path_buf()..).take_while(|(p, _)| p.starts_with(path)).map(|(p, _)| p.clone()).collect();
        for p in doomed {
            if p != Path::new("/") {
                self.entries.remove(&p);
                self.hashes.remove(&p);
            }
        }
    }

    /// An opaque directory: what the lower layers had in it is gone.
    fn clear(&mut self, dir: &Path) {
        let children: Vec<PathBuf> = self.entries.keys().filter(|p| p.parent() == Some(dir)).cloned().collect();
        for child in children {
            self.remove(&child);
        }
    }

    fn put(&mut self, entry: Entry, hash: Option<String>) -> Result<()> {
        self.make_parents(&entry.path)?;
        let keep_children = matches!((self.entries.get(&entry.path), &entry.kind), (Some(Entry { kind: Kind::Dir, .. }), Kind::Dir));
        if entry.path == Path::new("/") && entry.kind != Kind::Dir {
            return Err(ExportError::Invalid("the image's root is not a directory".into()));
        }
        if !keep_children {
            self.remove(&entry.path);
        }
        match hash {
            Some(hash) => self.hashes.insert(entry.path.clone(), hash),
            None => self.hashes.remove(&entry.path),
        };
        self.entries.insert(entry.path.clone(), entry);
        Ok(())
    }

    /// Directories above `path` that no layer named are made as Docker makes
    /// them (0755, root); a link or file above it is refused: writing through
    /// it could reach anywhere.
    fn make_parents(&mut self, path: &Path) -> Result<()> {
        let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
        ancestors.reverse();
        for dir in ancestors {
            match self.entries.get(dir) {
                Some(Entry { kind: Kind::Dir, .. }) => {}
                Some(_) => {
                    return Err(ExportError::Invalid(format!(
                        "the image puts {} under {}, which is not a directory (a link is never followed); refusing the image",
                        path.display(),
                        dir.display()
                    )));
                }
                None => {
                    let entry = Entry {
                        path: dir.into(),
                        kind: Kind::Dir,
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        capability: None,
                        reason: Reason::Parent { of: path.into() },
                    };
                    self.entries.insert(dir.into(), entry);
                }
            }
        }
        Ok(())
    }

    fn hard_link(&mut self, path: PathBuf, target: &Path) -> Result<()> {
        let Some(original) = self.entries.get(target).filter(|e| matches!(e.kind, Kind::File { .. })).cloned() else {
            return Err(ExportError::Invalid(format!(
                "hard link {} -> {}: no such file earlier in the image",
                path.display(),
                target.display()
            )));
        };
        let hash = self.hashes.get(target).cloned();
        self.put(Entry { path, ..original }, hash)
    }
}

fn imported(why: &str) -> Reason {
    Reason::Rule { rule: "import".into(), why: why.into(), trigger: None }
}

/// Read one layer, check its digests, apply it to the tree.
fn apply_layer(tree: &mut Tree, layer: &LayerRef, label: &str) -> Result<()> {
    if let Some(expected) = &layer.digest {
        verify_file(&layer.path, expected)?;
    }
    let uncompressed = decompressed(File::open(&layer.path).at(&layer.path)?, &layer.path)?;
    let mut archive = tar::Archive::new(HashingReader { inner: uncompressed, hasher: Sha256::new() });
    let mut changes = Vec::new();
    for member in archive.entries().at(&layer.path)? {
        let mut member = member.at(&layer.path)?;
        if let Some(change) = read_member(tree, &mut member, label)? {
            changes.push(change);
        }
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).at(&layer.path)?; // the end blocks count in the diff_id
    let diff_id = format!("sha256:{}", hex::encode(rest.hasher.finalize()));
    if let Some(expected) = layer.diff_id.as_ref().filter(|expected| **expected != diff_id) {
        return Err(ExportError::Invalid(format!("{label}: its content is {diff_id}, the config says {expected}; the image is corrupt")));
    }
    let (whiteouts, additions): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| matches!(c, Change::Remove(_) | Change::Opaque(_)));
    for change in whiteouts.into_iter().chain(additions) {
        match change {
            Change::Remove(path) => tree.remove(&path),
            Change::Opaque(dir) => tree.clear(&dir),
            Change::Put(entry, hash) => tree.put(entry, hash)?,
            Change::HardLink { path, target } => tree.hard_link(path, &target)?,
        }
    }
    Ok(())
}

fn verify_file(path: &Path, expected: &str) -> Result<()> {
    let mut reader = HashingReader { inner: File::open(path).at(path)?, hasher: Sha256::new() };
    io::copy(&mut reader, &mut io::sink()).at(path)?;
    let actual = format!("sha256:{}", hex::encode(reader.hasher.finalize()));
    if actual != expected {
        return Err(ExportError::Invalid(format!("{} is corrupt: its digest is {actual}, not {expected}", path.display())));
    }
    Ok(())
}

fn read_member<R: Read>(tree: &mut Tree, member: &mut tar::Entry<R>, label: &str) -> Result<Option<Change>> {
    let name = member.path().context(|| label.to_string())?.into_owned();
    let path = inside(&name, label)?;
    if let Some(whiteout) = whiteout(&path) {
        return Ok(Some(whiteout));
    }
    let header = member.header().clone();
    let mode = header.mode().context(|| name.display().to_string())? & 0o7777;
    let uid = u32::try_from(header.uid().context(|| name.display().to_string())?)
        .map_err(|_| ExportError::Invalid(format!("{}: uid out of range", name.display())))?;
    let gid = u32::try_from(header.gid().context(|| name.display().to_string())?)
        .map_err(|_| ExportError::Invalid(format!("{}: gid out of range", name.display())))?;
    let mut capability = capability(member)?;
    if capability.is_some() && matches!(header.entry_type(), EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) {
        tree.capabilities.push(path.clone());
        if !tree.keep_caps {
            capability = None;
        }
    }
    let entry = |kind| Entry { path: path.clone(), kind, mode, uid, gid, capability: capability.clone(), reason: imported(label) };
    let change = match header.entry_type() {
        EntryType::Directory => Change::Put(entry(Kind::Dir), None),
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let (source, hash) = tree.stage(member)?;
            Change::Put(entry(Kind::File { source }), Some(hash))
        }
        EntryType::Symlink => {
            let target = member
                .link_name()
                .context(|| name.display().to_string())?
                .ok_or_else(|| ExportError::Invalid(format!("{}: a link without target", name.display())))?;
            Change::Put(entry(Kind::Symlink { target: target.into_owned() }), None)
        }
        EntryType::Link => {
            let target = member
                .link_name()
                .context(|| name.display().to_string())?
                .ok_or_else(|| ExportError::Invalid(format!("{}: a link without target", name.display())))?;
            Change::HardLink { path, target: inside(&target, label)? }
        }
        EntryType::Char => {
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            // Only the harmless devices every rootfs has (/dev/null ...) at their own
            // path and number; any other device node (a /home/mem 1,1 reads host memory) is dropped.
            let standard = crate::resolve::skeleton::DEVICES.iter().any(|(p, ma, mi)| Path::new(p) == path && (*ma, *mi) == (major, minor));
            if !standard {
                tree.notes.push(format!(
                    "{} ({label}) is a character device {major},{minor}: left out (a device node in an image can reach the host's hardware)",
                    path.display()
                ));
                return Ok(None);
            }
            Change::Put(entry(Kind::Device { major, minor }), None)
        }
        EntryType::Block | EntryType::Fifo => {
            tree.notes.push(format!(
                "{} ({label}) is a block device or a fifo, which a rootfs of the store does not hold: left out",
                path.display()
            ));
            return Ok(None);
        }
        _ => return Ok(None), // PAX global headers and the like: metadata, no file
    };
    Ok(Some(change))
}

/// A layer member's path as an absolute path inside: `./usr/bin` and
/// `/usr/bin` are `/usr/bin`; anything with `..` is refused.
fn inside(name: &Path, label: &str) -> Result<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in name.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(ExportError::Invalid(format!(
                    "{label}: member `{}` climbs out of the root with `..`; refusing the image",
                    name.display()
                )));
            }
        }
    }
    Ok(out)
}

/// `.wh..wh..opq` empties its directory; `.wh.NAME` deletes NAME.
fn whiteout(path: &Path) -> Option<Change> {
    let name = path.file_name()?.as_bytes();
    let parent = path.parent()?;
    if name == b".wh..wh..opq" {
        return Some(Change::Opaque(parent.to_path_buf()));
    }
    let deleted = name.strip_prefix(b".wh.")?;
    Some(Change::Remove(parent.join(OsStr::from_bytes(deleted))))
}

fn capability<R: Read>(member: &mut tar::Entry<R>) -> Result<Option<Vec<u8>>> {
    let Some(extensions) = member.pax_extensions().context(|| "PAX records".into())? else { return Ok(None) };
    for extension in extensions {
        let extension = extension.context(|| "PAX records".into())?;
        if extension.key() == Ok(CAPABILITY_RECORD) {
            return Ok(Some(extension.value_bytes().to_vec()));
        }
    }
    Ok(None)
}

/// The store's record of the tree names where each file's content is; the
/// staged copies are about to go, so point it at the stored tree itself.
fn point_record_at_tree(built: &Built) -> Result<()> {
    let record_path = built.path.with_extension("json");
    let mut record: crate::rootfs::store::Record = serde_json::from_slice(&std::fs::read(&record_path).at(&record_path)?)?;
    for entry in record.manifest.entries.values_mut() {
        if let Kind::File { source } = &mut entry.kind {
            *source = built.path.join(entry.path.strip_prefix("/").unwrap_or(&entry.path));
        }
    }
    let tmp = record_path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&record)?).at(&tmp)?;
    std::fs::rename(&tmp, &record_path).at(&record_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in members {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(data.len() as u64);
            if !link.is_empty() {
                header.set_link_name(link).unwrap();
            }
            // Written raw: the tar crate would refuse `..`, an attacker's tool would not.
            let field = &mut header.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn apply(tree: &mut Tree, dir: &Path, n: usize, bytes: Vec<u8>) -> Result<()> {
        let path = dir.join(format!("layer{n}"));
        std::fs::write(&path, bytes).unwrap();
        apply_layer(tree, &LayerRef { path, digest: None, diff_id: None }, "test")
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_opaque_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = Tree::new(dir.path().join("content")).unwrap();
        let base = tar_of(&[
            ("./", EntryType::Directory, b"", ""),
            ("etc/", EntryType::Directory, b"", ""),
            ("etc/a", EntryType::Regular, b"a", ""),
            ("etc/b", EntryType::Regular, b"b", ""),
            ("opt/x/y", EntryType::Regular, b"y", ""),
            ("bin", EntryType::Symlink, b"", "/usr/bin"),
            ("etc/hard", EntryType::Link, b"", "etc/a"),
        ]);
        apply(&mut tree, dir.path(), 0, base).unwrap();
        assert!(tree.entries.contains_key(Path::new("/opt/x")), "missing parents are made");
        assert_eq!(tree.hashes[Path::new("/etc/hard")], tree.hashes[Path::new("/etc/a")]);
        let upper = tar_of(&[
            ("etc/.wh.a", EntryType::Regular, b"", ""),
            ("etc/a2", EntryType::Regular, b"new", ""),
            ("opt/.wh..wh..opq", EntryType::Regular, b"", ""),
            ("opt/z", EntryType::Regular, b"z", ""),
        ]);
        apply(&mut tree, dir.path(), 1, upper).unwrap();
        let paths: Vec<String> = tree.entries.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(paths, ["/", "/bin", "/etc", "/etc/a2", "/etc/b", "/etc/hard", "/opt", "/opt/z"]);
    }

    #[test]
    fn dot_dot_and_writes_through_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = Tree::new(dir.path().join("content")).unwrap();
        let escape = tar_of(&[("../../etc/evil", EntryType::Regular, b"x", "")]);
        assert!(apply(&mut tree, dir.path(), 0, escape).unwrap_err().to_string().contains(".."));
        let through = tar_of(&[("evil", EntryType::Symlink, b"", "/etc"), ("evil/passwd", EntryType::Regular, b"x", "")]);
        assert!(apply(&mut tree, dir.path(), 1, through).unwrap_err().to_string().contains("not a directory"));
        let link_escape = tar_of(&[("h", EntryType::Link, b"", "../../etc/shadow")]);
        assert!(apply(&mut tree, dir.path(), 2, link_escape).is_err());
    }
}

//! A software bill of materials of a rootfs, as SPDX 2.3 JSON, from what the
//! lock knows: every file with its checksums, the Debian package (and
//! version) it came from, the files that come from no package (written by
//! the tool, or from an imported image), and the lab files.
//!
//! The document is a function of the lock and the tree alone: sorted keys
//! and elements, identifiers derived from names and paths, the creation
//! time from `SOURCE_DATE_EPOCH` (else the epoch), so the same digest gives
//! the same bytes on every machine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha1::Digest as _;

use super::{Context, Result};
use crate::resolve::{Manifest, Reason};
use crate::rootfs::lock::Lock;

/// The media type of an SPDX JSON document (IANA).
pub const MEDIA_TYPE: &str = "application/spdx+json";

/// What the document is made from.
pub struct Input<'a> {
    pub lock: Lock,
    /// The resolved manifest, for which entries are lab files.
    pub manifest: &'a Manifest,
    /// The stored tree: SPDX wants a SHA-1 of every file, which the lock does not keep.
    pub tree: &'a Path,
    pub epoch: u64,
}

/// One Debian package of the rootfs.
struct Package {
    name: String,
    version: Option<String>,
    files: Vec<usize>,
}

/// The SPDX 2.3 JSON document, pretty-printed, ending in a newline.
pub fn spdx(input: &Input) -> Result<Vec<u8>> {
    let lock = &input.lock;
    let lab_files: BTreeSet<&Path> =
        input.manifest.entries.values().filter(|e| matches!(e.reason, Reason::LabFile { .. })).map(|e| e.path.as_path()).collect();
    let distro = distribution();
    let mut files = Vec::new();
    let mut sha1s = Vec::new();
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut loose = Vec::new();
    for entry in lock.entries.iter().filter(|e| e.kind == "file") {
        let Some(sha256) = &entry.sha256 else { continue };
        let sha1 = sha1_of(&input.tree.join(entry.path.strip_prefix("/").unwrap_or(&entry.path)))?;
        let index = files.len();
        let mut file = json!({
            "SPDXID": file_id(&entry.path),
            "fileName": format!(".{}", entry.path.display()),
            "checksums": [
                { "algorithm": "SHA1", "checksumValue": sha1 },
                { "algorithm": "SHA256", "checksumValue": sha256 },
            ],
        });
        let is_lab = lab_files.contains(entry.path.as_path());
        match (&entry.package, is_lab) {
            (Some(package), false) => {
                let (name, version) = match package.split_once(' ') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (package.clone(), None),
                };
                packages.entry(name.clone()).or_insert(Package { name, version, files: Vec::new() }).files.push(index);
            }
            (_, true) => {
                file["comment"] = json!("a lab file, from the profile's [[rootfs.copy]] or [[rootfs.write]]");
                loose.push(index);
            }
            (None, false) => {
                file["comment"] = json!("from no Debian package: written by sandbox, or from an imported image");
                loose.push(index);
            }
        }
        files.push(file);
        sha1s.push(sha1);
    }

    let rootfs_id = "SPDXRef-Rootfs";
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", rootfs_id)];
    let mut package_docs = vec![json!({
        "SPDXID": rootfs_id,
        "name": lock.profile,
        "versionInfo": lock.digest,
        "downloadLocation": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "filesAnalyzed": true,
        "packageVerificationCode": { "packageVerificationCodeValue": verification_code(&loose, &sha1s) },
        "comment": format!("the rootfs of profile {} (sandbox digest {}); its files come from the packages it contains, or are listed here", lock.profile, lock.digest),
    })];
    for &index in &loose {
        relationships.push(relationship(rootfs_id, "CONTAINS", files[index]["SPDXID"].as_str().unwrap_or_default()));
    }
    for package in packages.values() {
        let id = package_id(&package.name);
        let mut doc = json!({
            "SPDXID": id,
            "name": package.name,
            "downloadLocation": "NOASSERTION",
            "supplier": "NOASSERTION",
            "filesAnalyzed": true,
            "packageVerificationCode": { "packageVerificationCodeValue": verification_code(&package.files, &sha1s) },
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(&distro, &package.name, package.version.as_deref()),
            }],
        });
        if let Some(version) = &package.version {
            doc["versionInfo"] = json!(version);
        }
        package_docs.push(doc);
        relationships.push(relationship(rootfs_id, "CONTAINS", &id));
        for &index in &package.files {
            relationships.push(relationship(&id, "CONTAINS", files[index]["SPDXID"].as_str().unwrap_or_default()));
        }
    }
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("sandbox-{}-{}", lock.profile, crate::rootfs::digest::short(&lock.digest)),
        "documentNamespace": format!("https://sandbox.invalid/spdx/{}/{}", lock.profile, lock.digest),
        "creationInfo": {
            "created": super::rfc3339(input.epoch),
            "creators": [format!("Tool: sandbox-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": package_docs,
        "files": files,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

/// SPDX 2.3 section 7.9: the SHA-1 of the sorted SHA-1s of the package's files, concatenated.
fn verification_code(files: &[usize], sha1s: &[String]) -> String {
    let mut sums: Vec<&str> = files.iter().map(|&i| sha1s[i].as_str()).collect();
    sums.sort_unstable();
    hex::encode(sha1::Sha1::digest(sums.concat().as_bytes()))
}

/// `SPDXRef-File-` and a hash of the path: stable, and within SPDX's alphabet whatever the name.
fn file_id(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    format!("SPDXRef-File-{}", &crate::rootfs::digest::sha256_hex(path.as_os_str().as_bytes())[..16])
}

/// `SPDXRef-Package-bash`; a name with characters outside SPDX's alphabet
/// (`libstdc++6`) gets a hash so two names never meet.
fn package_id(name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') { c } else { '-' }).collect();
    if clean == name {
        format!("SPDXRef-Package-{clean}")
    } else {
        format!("SPDXRef-Package-{clean}-{}", &crate::rootfs::digest::sha256_hex(name.as_bytes())[..8])
    }
}

/// The package URL (purl-spec, type `deb`): `pkg:deb/debian/bash@5.2.15-2%2Bb7`.
fn purl(distro: &str, name: &str, version: Option<&str>) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    match version {
        Some(v) => format!("pkg:deb/{distro}/{}@{}", encode(name), encode(v)),
        None => format!("pkg:deb/{distro}/{}", encode(name)),
    }
}

/// The vendor of the packages (`debian`, `ubuntu`): the host's /etc/os-release
/// ID, since the packages are the host's.
fn distribution() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|id| id.trim_matches('"').to_ascii_lowercase())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .unwrap_or_else(|| "debian".into())
}

fn sha1_of(path: &PathBuf) -> Result<String> {
    let mut file = std::fs::File::open(path).at(path)?;
    crate::rootfs::hashcache::digest_reader::<sha1::Sha1>(&mut file).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_purls() {
        assert_eq!(package_id("bash"), "SPDXRef-Package-bash");
        assert!(package_id("libstdc++6").starts_with("SPDXRef-Package-libstdc--6-"));
        assert_ne!(package_id("a+b"), package_id("a-b"));
        assert_eq!(purl("debian", "bash", Some("5.2.15-2+b7")), "pkg:deb/debian/bash@5.2.15-2%2Bb7");
        assert_eq!(purl("debian", "libc6", Some("2.36-9+deb12u4")), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4");
        assert!(file_id(Path::new("/usr/bin/ls")).len() == "SPDXRef-File-".len() + 16);
        // The empty package's code is the SHA-1 of nothing.
        assert_eq!(verification_code(&[], &[]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}

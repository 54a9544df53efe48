//! `sandbox sbom`: an SPDX 2.3 document of the rootfs that SPDX's own
//! validator accepts, that lists the lock's packages with their versions,
//! the files of no package and the lab files, byte-identical for the same
//! digest; and the OCI export carries it.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use common::*;

const PROFILE: &str = r#"name = "sbom-lab"
[rootfs]
binaries = ["sh", "ls", "cat"]
[[rootfs.write]]
path = "/home/student/notes.txt"
content = "a lab file\n"
[user]
name = "student"
"#;

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn the_sbom_lists_the_locks_packages_validates_and_is_reproducible() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let profile = dir.path().join("lab.toml");
    fs::write(&profile, PROFILE).unwrap();
    ok(sandbox().arg("build").arg(&profile));
    let first = run(sandbox().arg("sbom").arg(&profile)).stdout;
    let again = run(sandbox().arg("sbom").arg(&profile)).stdout;
    assert!(!first.is_empty() && first == again, "the same digest gives the same bytes");
    let document = json(&first);
    assert_eq!(document["spdxVersion"], "SPDX-2.3");

    // Every package of the lock, with its version, and every file of each.
    let lock: toml::Table = fs::read_to_string(dir.path().join("lab.lock")).unwrap().parse().unwrap();
    let entries = lock["entry"].as_array().unwrap();
    let locked: BTreeSet<String> = entries.iter().filter_map(|e| e.get("package")?.as_str().map(str::to_owned)).collect();
    assert!(!locked.is_empty(), "the host's files come from packages (a Debian host)");
    let listed: BTreeSet<String> = document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"] != "SPDXRef-Rootfs")
        .map(|p| match p["versionInfo"].as_str() {
            Some(v) => format!("{} {v}", p["name"].as_str().unwrap()),
            None => p["name"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(listed, locked, "the packages are the lock's");
    let files = document["files"].as_array().unwrap();
    let regular = entries.iter().filter(|e| e["kind"].as_str() == Some("file")).count();
    assert_eq!(files.len(), regular, "every regular file");
    let notes = files.iter().find(|f| f["fileName"] == "./home/student/notes.txt").expect("the lab file");
    assert!(notes["comment"].as_str().unwrap().contains("lab file"));
    let passwd = files.iter().find(|f| f["fileName"] == "./etc/passwd").expect("a file of no package");
    assert!(passwd["comment"].as_str().unwrap().contains("no Debian package"));
    let bash_like = document["packages"].as_array().unwrap().iter().find(|p| p["name"] == "coreutils").expect("coreutils (ls, cat)");
    assert!(bash_like["externalRefs"][0]["referenceLocator"].as_str().unwrap().starts_with("pkg:deb/"));

    // SPDX's own validator (spdx-tools) accepts it.
    if need_program("pyspdxtools", "pip install spdx-tools; .ci/run does") {
        let file = dir.path().join("lab.spdx.json");
        fs::write(&file, &first).unwrap();
        let output = run(Command::new("pyspdxtools").arg("-i").arg(&file));
        assert!(output.status.success(), "pyspdxtools: {}{}", stdout(&output), stderr(&output));
        assert!(
            !stdout(&output).contains("ERROR") && !stderr(&output).to_lowercase().contains("invalid"),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
    }

    // The OCI export carries the same document, linked from the manifest.
    let layout = dir.path().join("oci");
    ok(sandbox().arg("export").arg(&profile).arg("--oci").arg(&layout));
    let index = json(&fs::read(layout.join("index.json")).unwrap());
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let manifest = json(&fs::read(layout.join("blobs/sha256").join(manifest_digest)).unwrap());
    let sbom = manifest["annotations"]["io.sandbox.sbom.spdx"].as_str().expect("the manifest names the SBOM blob");
    let carried = fs::read(layout.join("blobs/sha256").join(sbom.strip_prefix("sha256:").unwrap())).unwrap();
    assert_eq!(carried, first, "the export carries what `sandbox sbom` prints");
}

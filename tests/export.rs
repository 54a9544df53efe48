//! `sandbox export` and `sandbox import` against the tools people would use
//! the image with: skopeo, umoci, runc, crun, podman, and Kubernetes' own
//! types. A missing tool skips with its reason (a failure under CI=true,
//! where .ci/run installs them).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const BASE: &str = r#"name = "ex-base"
description = "the base of the export tests"
[rootfs]
binaries = ["sh", "cat", "ls", "id", "echo", "sleep", "head", "tail", "seq"]
[user]
name = "student"
uid = 1000
gid = 1000
home = "/home/student"
shell = "/bin/sh"
"#;

/// A child that changes the user (so the base's home is deleted: a whiteout),
/// adds a program with a file capability, a written file, env and limits.
const LAB: &str = r#"name = "ex-lab"
description = "the export tests' lab"
extends = "base.toml"
[rootfs]
binaries = ["ping"]
[[rootfs.write]]
path = "/etc/motd"
content = "Welcome\n"
[user]
name = "teacher"
uid = 2000
gid = 2000
home = "/home/teacher"
shell = "/bin/sh"
[env]
LAB = "export"
[run]
command = ["/bin/sh", "-c", "echo hello from $LAB; id -un; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"]
hostname = "exlab"
[limits]
memory = "64M"
pids = 32
cpu = 0.5
tmp = "16M"
"#;

const MEMORY_LIMIT: u64 = 64 << 20;

/// The two profiles in a directory of their own (build writes lock files beside them).
fn lab() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    fs::write(dir.path().join("base.toml"), BASE).unwrap();
    fs::write(dir.path().join("lab.toml"), LAB).unwrap();
    let lab = dir.path().join("lab.toml");
    (dir, lab)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn build_digest(profile: &Path) -> (String, PathBuf) {
    let built = json(&ok(sandbox().arg("build").arg(profile).arg("--json")));
    (built["digest"].as_str().unwrap().to_string(), PathBuf::from(built["path"].as_str().unwrap()))
}

/// True when the program is there. Without it: a skip with the reason, or a
/// failure under CI=true (.ci/run installs it).
fn need_tool(program: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {program}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found {
        assert!(!in_ci(), "CI=true: `{program}` is missing; .ci/run installs it");
        eprintln!("skipped: `{program}` is not installed (apt-get install {program})");
    }
    found
}

/// Every file of a directory, relative path -> bytes.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn exporting_twice_gives_identical_blobs_and_archives() {
    let (dir, lab) = lab();
    let out = dir.path();
    ok(sandbox().arg("export").arg(&lab).arg("--oci").arg(out.join("a")).arg("--tar").arg(out.join("a.tar")));
    ok(sandbox().arg("export").arg(&lab).arg("--oci").arg(out.join("b")).arg("--tar").arg(out.join("b.tar")));
    let (a, b) = (files_of(&out.join("a")), files_of(&out.join("b")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs between two exports", path.display());
    }
    assert!(a.contains_key(Path::new("index.json")) && a.contains_key(Path::new("oci-layout")));
    assert_eq!(a.len(), 2 + 2 + 2 + 1, "index.json, oci-layout, manifest, config, one layer per level of extends, the SBOM");
    // Every blob is one the manifest names (itself from the index): nothing stray in the layout.
    let manifest = image_manifest(&out.join("a"));
    let index_entry = json(&String::from_utf8(a[Path::new("index.json")].clone()).unwrap())["manifests"][0]["digest"].clone();
    let mut named: Vec<&serde_json::Value> =
        vec![&index_entry, &manifest["config"]["digest"], &manifest["annotations"]["io.sandbox.sbom.spdx"]];
    named.extend(manifest["layers"].as_array().unwrap().iter().map(|l| &l["digest"]));
    let mut named: Vec<PathBuf> = named.iter().map(|d| blob(Path::new(""), d.as_str().unwrap())).collect();
    named.sort();
    let mut blobs: Vec<PathBuf> = a.keys().filter(|p| p.starts_with("blobs")).cloned().collect();
    blobs.sort();
    assert_eq!(blobs, named, "the blobs are the manifest, config, layers and SBOM");
    assert_eq!(fs::read(out.join("a.tar")).unwrap(), fs::read(out.join("b.tar")).unwrap(), "the archives are byte-identical");

    // Every blob is named by its digest, and the index names the manifest.
    for (path, bytes) in &a {
        if let Ok(hex) = path.strip_prefix("blobs/sha256") {
            use sha2::Digest;
            assert_eq!(hex.to_str().unwrap(), hex::encode(sha2::Sha256::digest(bytes)));
        }
    }
    let index = json(&String::from_utf8(a[Path::new("index.json")].clone()).unwrap());
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "latest");

    // SOURCE_DATE_EPOCH moves every timestamp, nothing else.
    ok(sandbox().env("SOURCE_DATE_EPOCH", "1700000000").arg("export").arg(&lab).arg("--oci").arg(out.join("c")));
    let config = image_config(&out.join("c"));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let layer = layers(&out.join("c")).remove(0);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(layer).unwrap()));
    assert!(archive.entries().unwrap().all(|e| e.unwrap().header().mtime().unwrap() == 1_700_000_000));
}

fn image_manifest(layout: &Path) -> serde_json::Value {
    let index = json(&fs::read_to_string(layout.join("index.json")).unwrap());
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    json(&fs::read_to_string(blob(layout, digest)).unwrap())
}

fn image_config(layout: &Path) -> serde_json::Value {
    let manifest = image_manifest(layout);
    json(&fs::read_to_string(blob(layout, manifest["config"]["digest"].as_str().unwrap())).unwrap())
}

fn layers(layout: &Path) -> Vec<PathBuf> {
    image_manifest(layout)["layers"].as_array().unwrap().iter().map(|l| blob(layout, l["digest"].as_str().unwrap())).collect()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

/// A member of a layer as the tests look at it.
struct Member {
    name: String,
    kind: tar::EntryType,
    uid: u64,
    gid: u64,
    capability: Option<Vec<u8>>,
}

fn layer_members(path: &Path) -> Vec<Member> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(path).unwrap()));
    let mut out = Vec::new();
    for member in archive.entries().unwrap() {
        let mut member = member.unwrap();
        let capability = member.pax_extensions().unwrap().and_then(|mut exts| {
            exts.find_map(|e| e.ok().filter(|e| e.key() == Ok("SCHILY.xattr.security.capability")).map(|e| e.value_bytes().to_vec()))
        });
        let h = member.header().clone();
        let name = member.path().unwrap().to_string_lossy().into_owned();
        out.push(Member { name, kind: h.entry_type(), uid: h.uid().unwrap(), gid: h.gid().unwrap(), capability });
    }
    out
}

#[test]
fn the_image_has_a_layer_per_level_and_the_profile_in_its_config() {
    let (dir, lab) = lab();
    let layout = dir.path().join("oci");
    ok(sandbox().arg("export").arg(&lab).arg("--oci").arg(&layout));
    let (digest, _) = build_digest(&lab);
    let config = image_config(&layout);
    let c = &config["config"];
    assert_eq!(c["User"], "2000:2000");
    assert_eq!(c["WorkingDir"], "/home/teacher");
    assert_eq!(c["Cmd"][0], "/bin/sh");
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for expected in
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/teacher", "USER=teacher", "LAB=export"]
    {
        assert!(env.contains(&expected), "{expected} missing from {env:?}");
    }
    assert!(env.iter().any(|e| e.starts_with("LANG=")), "{env:?}");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "ex-lab");
    assert_eq!(c["Labels"]["org.opencontainers.image.description"], "the export tests' lab");
    assert_eq!(c["Labels"]["io.sandbox.digest"], digest.as_str(), "the label is the digest `sandbox build` prints");

    let layers = layers(&layout);
    assert_eq!(layers.len(), 2, "ex-base, then ex-lab's changes");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let base = layer_members(&layers[0]);
    assert_eq!(base[0].name, "./", "the base layer starts with the root");
    let names: Vec<&str> = base.iter().map(|m| m.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| Path::new(n.trim_end_matches('/')).to_path_buf());
    assert_eq!(names, sorted, "members in path order");
    assert!(base.iter().any(|m| m.name == "dev/null" && m.kind == tar::EntryType::Char), "device nodes as char devices");
    assert!(base.iter().any(|m| m.name == "home/student/" && m.uid == 1000 && m.gid == 1000), "numeric owners from the manifest");

    let child = layer_members(&layers[1]);
    let child_names: Vec<&str> = child.iter().map(|m| m.name.as_str()).collect();
    assert!(child_names.contains(&"home/.wh.student"), "the base's home is whited out: {child_names:?}");
    assert!(child_names.contains(&"etc/motd") && child_names.contains(&"etc/passwd"));
    assert!(!child_names.contains(&"usr/bin/cat"), "an unchanged file is only in the base layer");
    let ping = child.iter().find(|m| m.name == "usr/bin/ping").expect("ping in the child layer");
    let host_cap = xattr(Path::new("/usr/bin/ping"), "security.capability");
    if host_cap.is_none() {
        eprintln!("note: the host's ping has no file capability, so none is checked in the layer");
    }
    assert_eq!(ping.capability, host_cap, "ping's file capability as a PAX xattr");
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

#[test]
fn import_of_the_layout_and_of_the_archive_gives_the_build_digest() {
    let (dir, lab) = lab();
    let out = dir.path();
    ok(sandbox().arg("export").arg(&lab).arg("--oci").arg(out.join("oci")).arg("--tar").arg(out.join("lab.tar")));
    let (digest, _) = build_digest(&lab);
    for source in [out.join("oci"), out.join("lab.tar")] {
        // A fresh store: the tree is made from the image alone, not found already built.
        let home = tempfile::tempdir().unwrap();
        // --keep-caps: ping's file capability is part of the build's digest.
        let text = ok(sandbox().env("SANDBOX_HOME", home.path()).arg("import").arg(&source).args(["--name", "from-image", "--keep-caps"]));
        assert!(text.contains(&digest), "import of {} gives the build digest {digest}:\n{text}", source.display());
        let tree = home.path().join("store/rootfs").join(&digest);
        assert_eq!(fs::read_to_string(tree.join("etc/motd")).unwrap(), "Welcome\n");
        assert!(!tree.join("home/student").exists(), "the whiteout removed the base's home");
        assert!(fs::symlink_metadata(tree.join("bin")).unwrap().file_type().is_symlink());
        let leftovers: Vec<_> = fs::read_dir(home.path().join("store/tmp")).unwrap().collect();
        assert!(leftovers.is_empty(), "the staging directory is gone");
    }

    // The archive is also a docker-archive: manifest.json names its blobs and the tag.
    let mut archive = tar::Archive::new(fs::File::open(out.join("lab.tar")).unwrap());
    let mut members = BTreeMap::new();
    for member in archive.entries().unwrap() {
        let mut member = member.unwrap();
        let name = member.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut bytes).unwrap();
        members.insert(name, bytes);
    }
    let docker = json(&String::from_utf8(members["manifest.json"].clone()).unwrap());
    assert_eq!(docker[0]["RepoTags"][0], format!("sandbox/ex-lab:{}", &digest[..12]));
    assert_eq!(docker[0]["RepoTags"][1], "sandbox/ex-lab:latest", "`podman run sandbox/ex-lab` finds it");
    assert!(members.contains_key(docker[0]["Config"].as_str().unwrap()));
    for layer in docker[0]["Layers"].as_array().unwrap() {
        assert!(members.contains_key(layer.as_str().unwrap()), "{layer} in the archive");
    }
    assert!(members.contains_key("oci-layout") && members.contains_key("index.json"), "and an oci-archive");
    // whose index lists the one manifest once per tag (podman loads each entry as a tag).
    let index = json(&String::from_utf8(members["index.json"].clone()).unwrap());
    let entries = index["manifests"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap()).collect();
    assert_eq!(names, [docker[0]["RepoTags"][0].as_str().unwrap(), "sandbox/ex-lab:latest"]);
    assert!(entries.iter().all(|e| e["digest"] == entries[0]["digest"]), "one image under two names: {index}");
}

/// A one-layer OCI layout of raw tar members, as a hostile image would be made.
fn crafted_layout(dir: &Path, members: &[(&str, tar::EntryType, &str)]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(if *kind == tar::EntryType::Regular { 3 } else { 0 });
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        // Raw bytes: the tar crate refuses `..` in names, a hostile tool would not.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        let data: &[u8] = if *kind == tar::EntryType::Regular { b"pwn" } else { b"" };
        builder.append(&h, data).unwrap();
    }
    common::oci::layout_of_layer(dir, &builder.into_inner().unwrap());
}

#[test]
fn import_never_writes_outside_the_new_rootfs() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let victim = work.path().join("victim");
    fs::create_dir(&victim).unwrap();
    // (case, layer members (name, type, link target), what the refusal names)
    type Case = (&'static str, Vec<(&'static str, tar::EntryType, String)>, &'static str);
    let cases: [Case; 3] = [
        ("dotdot", vec![("../../../../../../../../tmp/pwned-by-import", tar::EntryType::Regular, String::new())], ".."),
        (
            "through-link",
            vec![("evil", tar::EntryType::Symlink, victim.display().to_string()), ("evil/owned", tar::EntryType::Regular, String::new())],
            "not a directory",
        ),
        ("hardlink-out", vec![("h", tar::EntryType::Link, "../../../../etc/shadow".to_string())], ".."),
    ];
    for (name, members, why) in &cases {
        let layout = work.path().join(name);
        let members: Vec<(&str, tar::EntryType, &str)> = members.iter().map(|(n, k, l)| (*n, *k, l.as_str())).collect();
        crafted_layout(&layout, &members);
        let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("import").arg(&layout));
        assert_eq!(output.status.code(), Some(125), "{name}: refused: {}", stderr(&output));
        assert!(stderr(&output).contains(why), "{name}: the reason names {why}: {}", stderr(&output));
    }
    assert!(!Path::new("/tmp/pwned-by-import").exists());
    assert!(fs::read_dir(&victim).unwrap().next().is_none(), "nothing was written through the link");
    assert!(fs::read_dir(home.path().join("store/rootfs")).unwrap().next().is_none(), "no rootfs from a refused image");

    // An absolute symlink is a fine link, kept as it is and never followed.
    let layout = work.path().join("abslink");
    let target = victim.display().to_string();
    crafted_layout(
        &layout,
        &[
            ("etc", tar::EntryType::Directory, ""),
            ("etc/link", tar::EntryType::Symlink, &target),
            ("etc/file", tar::EntryType::Regular, ""),
        ],
    );
    let text = ok(sandbox().env("SANDBOX_HOME", home.path()).arg("import").arg(&layout));
    let path = text.lines().find_map(|l| l.trim().strip_prefix("path:")).unwrap().trim().to_string();
    assert_eq!(fs::read_link(Path::new(&path).join("etc/link")).unwrap(), victim);
    assert_eq!(fs::read(Path::new(&path).join("etc/file")).unwrap(), b"pwn");
    assert!(fs::read_dir(&victim).unwrap().next().is_none());
}

#[test]
fn skopeo_and_umoci_accept_the_image_and_unpack_the_built_tree() {
    if !need_root("umoci unpack with the image's owners and device nodes") || !need_tool("skopeo") || !need_tool("umoci") {
        return;
    }
    let (dir, lab) = lab();
    let layout = dir.path().join("oci");
    ok(sandbox().arg("export").arg(&lab).arg("--oci").arg(&layout));
    let (digest, tree) = build_digest(&lab);

    let inspect = json(&ok(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:latest", layout.display()))));
    assert_eq!(inspect["Labels"]["io.sandbox.digest"], digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    // skopeo copy checks every blob against its digest.
    ok(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("oci:{}:latest", dir.path().join("copy").display())));

    let bundle = dir.path().join("unpacked");
    ok(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:latest", layout.display())).arg(&bundle));
    // `build --out` gives the tree with the manifest's exact modes, as the store does; the
    // image must carry them too.
    let built = dir.path().join("built");
    ok(sandbox().arg("build").arg(&lab).arg("--out").arg(&built));
    let differences = compare_trees(&built, &bundle.join("rootfs"));
    assert!(differences.is_empty(), "umoci's tree differs from `sandbox build --out`'s:\n{}", differences.join("\n"));
    let mode = |root: &Path| fs::metadata(root.join("etc/passwd")).unwrap().mode() & 0o7777;
    assert_eq!(mode(&bundle.join("rootfs")), 0o644, "the layer's modes are the manifest's");
    assert_eq!(mode(&tree), 0o644, "the store keeps the manifest's modes");
    let config = json(&fs::read_to_string(bundle.join("config.json")).unwrap());
    assert_eq!(config["process"]["user"]["uid"], 2000);
    assert_eq!(config["process"]["cwd"], "/home/teacher");
}

/// Differences between two trees: type, mode, owner, content, link target,
/// device number, file capability. Times are not compared.
fn compare_trees(a: &Path, b: &Path) -> Vec<String> {
    let (left, right) = (walk(a), walk(b));
    let mut differences = Vec::new();
    for path in left.keys().chain(right.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (left.get(path), right.get(path)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => differences.push(format!("{}: {x:?} vs {y:?}", path.display())),
        }
    }
    differences
}

fn walk(root: &Path) -> BTreeMap<PathBuf, String> {
    use sha2::Digest;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_string()
        } else if kind.is_symlink() {
            format!("link {}", fs::read_link(&path).unwrap().display())
        } else if kind.is_char_device() {
            format!("char {:x}", meta.rdev())
        } else {
            format!("file {}", hex::encode(sha2::Sha256::digest(fs::read(&path).unwrap())))
        };
        let cap = if kind.is_file() { xattr(&path, "security.capability").map(hex::encode) } else { None };
        let mode = if kind.is_symlink() { 0 } else { meta.mode() & 0o7777 };
        let relative = Path::new("/").join(path.strip_prefix(root).unwrap());
        out.insert(relative, format!("{what} {mode:o} {}:{} {cap:?}", meta.uid(), meta.gid()));
    }
    out
}

/// A runtime's bundle, with the container's cgroup named for this test.
fn bundle_for(runtime: &str) -> (tempfile::TempDir, PathBuf, String) {
    let (dir, lab) = lab();
    let bundle = dir.path().join("bundle");
    ok(sandbox().arg("export").arg(&lab).arg("--bundle").arg(&bundle));
    let cgroup = format!("sandbox-export-test-{runtime}-{}", std::process::id());
    (dir, bundle, cgroup)
}

fn set_config(bundle: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = bundle.join("config.json");
    let mut config = json(&fs::read_to_string(&path).unwrap());
    edit(&mut config);
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// The cgroup hierarchies this test runs in: (mount point, own path) per v1
/// hierarchy, or the unified mount and own path for cgroup v2.
fn own_cgroups() -> Vec<(PathBuf, String)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        for mount in mountinfo.lines() {
            let (left, right) = mount.split_once(" - ").unwrap();
            let fields: Vec<&str> = right.split_whitespace().collect();
            let point = PathBuf::from(left.split_whitespace().nth(4).unwrap());
            let matches = match (controllers, fields[0]) {
                ("", "cgroup2") => true,
                (c, "cgroup") if !c.is_empty() => c.split(',').all(|c| fields[2].split(',').any(|o| o == c)),
                _ => false,
            };
            if matches {
                found.push((point, path.to_string()));
            }
        }
    }
    found
}

/// Removes, when the test ends however it ends, the container's state and
/// every cgroup directory of this name the runtime may have left; says
/// whether there were any.
struct Cleanup {
    runtime: &'static str,
    state: tempfile::TempDir,
    name: String,
}

impl Cleanup {
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for (mount, own) in own_cgroups() {
            // runc puts a relative cgroupsPath under its own cgroup; crun here under the bind-mounted own one.
            for dir in [mount.join(own.trim_start_matches('/')).join(&self.name), mount.join(&self.name)] {
                if dir.is_dir() && !left.contains(&dir) {
                    left.push(dir);
                }
            }
        }
        left
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(self.runtime).arg("--root").arg(self.state.path()).args(["delete", "--force", &self.name]).output();
        for dir in self.leftovers() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Run a script in the bundle with `runtime`, its cgroup under this test's.
fn run_bundle(runtime: &'static str, bundle: &Path, cgroup: &str, script: &str) -> (std::process::Output, Cleanup) {
    let hybrid = is_mount("/sys/fs/cgroup/unified");
    let v1 = own_cgroups().iter().any(|(m, _)| m != Path::new("/sys/fs/cgroup") && m != Path::new("/sys/fs/cgroup/unified"));
    let path = if runtime == "crun" && !v1 {
        // crun on cgroup v2: an absolute path below the cgroup the test runs in.
        let own = own_cgroups().into_iter().find(|(m, _)| m == Path::new("/sys/fs/cgroup")).map(|(_, o)| o).unwrap_or_else(|| "/".into());
        format!("{}/{cgroup}", own.trim_end_matches('/'))
    } else {
        // runc: relative to its own cgroup, in every hierarchy.
        cgroup.to_string()
    };
    set_config(bundle, |c| {
        c["linux"]["cgroupsPath"] = path.clone().into();
        c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        // A `sh -c` script is no session: export gives it no terminal (bundle::is_interactive),
        // and the runtime must not look for one (CI has no terminal and no stdin).
        c["process"]["terminal"] = false.into();
    });
    let cleanup = Cleanup { runtime, state: tempfile::tempdir().unwrap(), name: cgroup.to_string() };
    let runtime_cmd = format!("{runtime} --root {} run --bundle {} {cgroup}", cleanup.state.path().display(), bundle.display());
    let output = if runtime == "crun" && v1 {
        // PEERS.md: crun refuses a v1 hybrid while cgroup2 is mounted; hide it in a
        // private mount namespace, where our own v1 cgroups are also bound over
        // their hierarchy roots so crun's cgroup lands under them. The host sees none of it.
        let mut prep = String::new();
        if hybrid {
            // A throwaway tmpfs in its place: crun writes into whatever is there,
            // and the directory under the mount is the host's.
            prep += "umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=1m sandbox-scratch /sys/fs/cgroup/unified && ";
        }
        for (mount, own) in own_cgroups() {
            if own != "/" && mount != Path::new("/sys/fs/cgroup/unified") {
                prep += &format!("mount --bind {}/{} {} && ", mount.display(), own.trim_start_matches('/'), mount.display());
            }
        }
        run(Command::new("timeout")
            .args(["120", "unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{prep}exec {runtime_cmd}"))
            .stdin(Stdio::null()))
    } else {
        run(Command::new("timeout").arg("120").arg("sh").arg("-c").arg(format!("exec {runtime_cmd}")).stdin(Stdio::null()))
    };
    (output, cleanup)
}

fn is_mount(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split_whitespace().nth(4) == Some(path))
}

/// The profile's command, its limits read inside, then the limits enforced:
/// a pipeline that needs 200 MB is killed under 64 MB, forks past 32 fail.
fn check_runtime(runtime: &'static str) {
    if !need_root(&format!("{runtime} with cgroup limits")) || !need_tool(runtime) {
        return;
    }
    let (_dir, bundle, cgroup) = bundle_for(runtime);
    let command = json(&fs::read_to_string(bundle.join("config.json")).unwrap())["process"]["args"][2].as_str().unwrap().to_string();
    let (output, cleanup) = run_bundle(runtime, &bundle, &cgroup, &command);
    let text = stdout(&output);
    assert!(output.status.success(), "{runtime} run failed ({}):\n{text}{}", output.status, stderr(&output));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "hello from export", "the profile's command and env: {text}");
    assert_eq!(lines[1], "teacher", "as the profile's user");
    assert_eq!(lines[2], MEMORY_LIMIT.to_string(), "the memory limit: {text}");
    assert_eq!(lines[3], "32", "the pids limit: {text}");
    assert!(cleanup.leftovers().is_empty(), "{runtime} removed its cgroup: {:?}", cleanup.leftovers());
    drop(cleanup);

    let hog = "head -c 200000000 /dev/zero | tail -n 1 >/dev/null; echo status=$?; for i in $(seq 40); do sleep 2 & done; wait; echo done";
    let (output, cleanup) = run_bundle(runtime, &bundle, &cgroup, hog);
    let (text, errors) = (stdout(&output), stderr(&output));
    assert!(text.contains("status=137"), "tail was killed by the memory limit (SIGKILL): {text}{errors}");
    assert!(errors.to_lowercase().contains("fork"), "forks past the pids limit fail: {text}{errors}");
    assert!(cleanup.leftovers().is_empty(), "{runtime} removed its cgroup");
}

#[test]
fn runc_runs_the_bundle_with_its_limits() {
    check_runtime("runc");
}

#[test]
fn crun_runs_the_bundle_with_its_limits() {
    check_runtime("crun");
}

#[test]
fn podman_loads_and_runs_the_archive() {
    // (tests/images.rs loads `export --tar -` from a pipe and runs `podman run sandbox/NAME`.)
    if !need_root("podman as root with a storage of its own") || !need_tool("podman") {
        return;
    }
    let (dir, lab) = lab();
    let archive = dir.path().join("lab.tar");
    ok(sandbox().arg("export").arg(&lab).arg("--tar").arg(&archive));
    let (digest, _) = build_digest(&lab);
    // A storage of its own, so the host's images and containers are never touched.
    let storage = tempfile::tempdir().unwrap();
    let podman = format!(
        "podman --root {0}/root --runroot {0}/run --tmpdir {0}/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend none",
        storage.path().display()
    );
    let info = run(Command::new("sh").arg("-c").arg(format!("{podman} info")));
    if !info.status.success() {
        // Installed but not runnable on this machine: the issue asks for a reason, not a failure.
        eprintln!("skipped: podman does not run here: {}", stderr(&info));
        return;
    }
    let loaded = ok(Command::new("sh").arg("-c").arg(format!("{podman} load -i {}", archive.display())));
    let reference = format!("sandbox/ex-lab:{}", &digest[..12]);
    assert!(loaded.contains(&reference), "loaded as {reference}: {loaded}");
    // No cgroups (podman's own would go to the hierarchy root) and, on a v1
    // hybrid, cgroup2 hidden in a private mount namespace for crun (PEERS.md).
    let hide = if is_mount("/sys/fs/cgroup/unified") {
        "umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=1m sandbox-scratch /sys/fs/cgroup/unified && "
    } else {
        ""
    };
    let script = format!(
        "{hide}exec {podman} run --rm --cgroups=disabled --network=none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/{reference}"
    );
    let output = run(Command::new("timeout")
        .args(["180", "unshare", "--mount", "--propagation", "private", "sh", "-c"])
        .arg(script)
        .stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(
        text.starts_with("hello from export\nteacher\n"),
        "podman ran the profile's command as its user ({}):\n{text}{}",
        output.status,
        stderr(&output)
    );
}

#[test]
fn k8s_manifest_parses_as_kubernetes_objects_with_the_security_fields() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Pod, PodSpec};
    use serde::Deserialize;

    let (dir, lab) = lab();
    let (digest, _) = build_digest(&lab);
    let image = format!("sandbox/ex-lab:{}", &digest[..12]);
    let check_pod_spec = |spec: &PodSpec| {
        assert_eq!(spec.automount_service_account_token, Some(false));
        let pod_security = spec.security_context.as_ref().unwrap();
        assert_eq!(
            (pod_security.run_as_user, pod_security.run_as_group, pod_security.run_as_non_root),
            (Some(2000), Some(2000), Some(true))
        );
        let container = &spec.containers[0];
        assert_eq!(container.image.as_deref(), Some(image.as_str()));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
        let limits = container.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"].0, "64Mi");
        assert_eq!(limits["cpu"].0, "500m");
        let tmp = container.volume_mounts.as_ref().unwrap().iter().find(|m| m.mount_path == "/tmp").expect("a writable /tmp");
        let volume = spec.volumes.as_ref().unwrap().iter().find(|v| v.name == tmp.name).unwrap();
        assert_eq!(volume.empty_dir.as_ref().unwrap().size_limit.as_ref().unwrap().0, "16Mi");
    };

    let yaml = ok(sandbox().arg("export").arg(&lab).arg("--k8s"));
    let documents: Vec<serde_norway::Value> =
        serde_norway::Deserializer::from_str(&yaml).map(|d| serde_norway::Value::deserialize(d).unwrap()).collect();
    assert_eq!(documents.len(), 3, "the home claim, the network policy, the Pod:\n{yaml}");
    let pod: Pod = serde_norway::from_value(documents[2].clone()).unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("ex-lab"));
    check_pod_spec(pod.spec.as_ref().unwrap());

    // The Pod's home is a claim of its own (tests/cluster.rs tests the class).
    let claim = &documents[0];
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    let students = dir.path().join("students.txt");
    fs::write(&students, "alice\nbob\n").unwrap();
    let yaml = ok(sandbox().arg("export").arg(&lab).arg("--k8s").arg("--students").arg(&students));
    let documents: Vec<serde_norway::Value> =
        serde_norway::Deserializer::from_str(&yaml).map(|d| serde_norway::Value::deserialize(d).unwrap()).collect();
    let set: StatefulSet = serde_norway::from_value(documents[4].clone()).unwrap();
    assert_eq!(set.metadata.name.as_deref(), Some("alice"));
    check_pod_spec(set.spec.unwrap().template.spec.as_ref().unwrap());

    let bad = dir.path().join("twice.txt");
    fs::write(&bad, "alice\nalice\n").unwrap();
    let output = run(sandbox().arg("export").arg(&lab).arg("--k8s").arg("--students").arg(&bad));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("twice"), "{}", stderr(&output));
}

/// A bundle of `profile` (TOML), in a directory others may pass through: a
/// root profile's root is an unprivileged host id, which must reach rootfs/.
fn bundle_of(profile: &str, runtime: &str) -> (tempfile::TempDir, PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("profile.toml");
    fs::write(&file, profile).unwrap();
    let bundle = dir.path().join("bundle");
    ok(sandbox().arg("export").arg(&file).arg("--bundle").arg(&bundle));
    (dir, bundle, format!("sandbox-export-test-{runtime}-{}", std::process::id()))
}

#[test]
fn a_root_profiles_bundle_runs_in_a_user_namespace_and_pings() {
    if !need_root("runc with a user namespace") || !need_tool("runc") {
        return;
    }
    let root_profile =
        "name = \"ex-root\"\n[rootfs]\nbinaries = [\"sh\", \"cat\", \"id\", \"ping\", \"touch\"]\n[run]\ncommand = [\"/bin/sh\", \"-l\"]\n";
    let (_dir, bundle, cgroup) = bundle_of(root_profile, "runc");
    let config = json(&fs::read_to_string(bundle.join("config.json")).unwrap());
    assert_eq!(config["process"]["terminal"], true, "an interactive shell gets a terminal");
    assert!(config["process"]["env"].as_array().unwrap().iter().any(|e| e == "TERM=xterm"));
    let owner = fs::metadata(bundle.join("rootfs/etc/passwd")).unwrap().uid();
    assert_eq!(owner, config["linux"]["uidMappings"][0]["hostID"].as_u64().unwrap() as u32, "the tree is owned as mapped");
    let script = "id -u; cat /proc/self/uid_map; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo ping-ok";
    let (output, cleanup) = run_bundle("runc", &bundle, &cgroup, script);
    let text = stdout(&output);
    assert!(output.status.success(), "runc: {text}{}", stderr(&output));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "root inside");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map[0], "0");
    assert_ne!(map[1], "0", "is not root outside: {text}");
    assert_eq!(lines[2], "ping-ok", "ping over an ICMP socket: {text}{}", stderr(&output));
    drop(cleanup);

    // The ready `net` profile's student pings too.
    let (_dir, bundle, cgroup) = bundle_of("name = \"ex-net\"\nextends = \"net\"\n", "runc");
    // A student keeps no capability: ping's file capability would stop it from starting, so the tree has none.
    assert_eq!(xattr(&bundle.join("rootfs/usr/bin/ping"), "security.capability"), None);
    let (output, _cleanup) = run_bundle("runc", &bundle, &cgroup, "id -un; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo ping-ok");
    assert_eq!(stdout(&output), "student\nping-ok\n", "{}", stderr(&output));
}

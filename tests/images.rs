//! Images both ways with podman: `sandbox export --tar - | podman load` and
//! `podman run sandbox/NAME`; an image podman built, imported and run with
//! its own user, environment, working directory and command (`sandbox run
//! IMAGE`, `sandbox start IMAGE --name N`, `extends = "image:NAME"`); and
//! what `import` refuses to carry over silently (device nodes, file
//! capabilities).

mod common;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const BASE: &str = r#"name = "img-base"
[rootfs]
binaries = ["sh", "cat", "ls", "id", "echo", "pwd", "sleep"]
[user]
name = "student"
uid = 1000
gid = 1000
home = "/home/student"
shell = "/bin/sh"
[run]
command = ["/bin/sh", "-c", "echo hello from the export; id -un"]
"#;

fn base() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    fs::write(dir.path().join("base.toml"), BASE).unwrap();
    let path = dir.path().join("base.toml");
    (dir, path)
}

#[test]
fn export_to_stdout_loads_in_podman_and_runs_as_latest() {
    let Some(podman) = Podman::new() else { return };
    let (_dir, base) = base();
    let load = format!("{} load", podman.command());
    // bash: pipefail makes a failing export fail the pipeline (dash has no pipefail).
    let output = run(Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {:?} export {} --tar - | {load}", env!("CARGO_BIN_EXE_sandbox"), base.display()))
        .env("SANDBOX_HOME", shared_home())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null()));
    assert!(output.status.success(), "export --tar - | podman load: {}{}", stdout(&output), stderr(&output));
    assert!(stderr(&output).contains("stdout"), "the report goes to stderr: {}", stderr(&output));
    let images = stdout(&podman.sh("images --format '{{.Repository}}:{{.Tag}}'"));
    assert!(images.contains("sandbox/img-base:latest"), "tagged :latest too: {images}");
    let ran = podman
        // runc (common::Podman) refuses --cgroups=disabled; cgroupfs places it as `kube play` is placed.
        .sh_isolated("run --rm --network=none sandbox/img-base");
    assert_eq!(stdout(&ran), "hello from the export\nstudent\n", "`podman run sandbox/NAME` runs the profile's command:\n{}", stderr(&ran));

    // A terminal on stdout gets no archive.
    let refused = run(sandbox().arg("export").arg(&base).args(["--tar", "-", "--json"]));
    assert_eq!(refused.status.code(), Some(125));
    assert!(stdout(&refused).contains("\"error\""), "a JSON error object with --json: {}", stdout(&refused));
}

/// A Containerfile that changes only metadata and files (no RUN: no runtime
/// needed, no network): the user, env, workdir and command are podman's.
const CONTAINERFILE: &str = r#"FROM localhost/sandbox/img-base:latest
COPY passwd /etc/passwd
COPY group /etc/group
USER guest
WORKDIR /srv
ENV GREETING=hello-from-podman
CMD ["/bin/sh", "-c", "echo $GREETING; id -un; id -g; pwd"]
"#;

#[test]
fn an_image_podman_built_runs_in_sandbox_with_its_user_env_workdir_and_command() {
    let Some(podman) = Podman::new() else { return };
    let (dir, base) = base();
    let archive = dir.path().join("base.tar");
    ok(sandbox().arg("export").arg(&base).arg("--tar").arg(&archive));
    assert!(podman.sh(&format!("load -i {}", archive.display())).status.success());
    let context = dir.path().join("context");
    fs::create_dir(&context).unwrap();
    fs::write(context.join("Containerfile"), CONTAINERFILE).unwrap();
    fs::write(context.join("passwd"), "root:x:0:0:root:/root:/bin/sh\nguest:x:405:100:guest:/srv:/bin/sh\n").unwrap();
    fs::write(context.join("group"), "root:x:0:\nusers:x:100:\n").unwrap();
    fs::create_dir(context.join("srv")).unwrap();
    let built = podman.sh_isolated(&format!("build --network none -t localhost/roundtrip {}", context.display()));
    assert!(built.status.success(), "podman build: {}{}", stdout(&built), stderr(&built));

    let home = tempfile::tempdir().unwrap();
    for format in ["oci-archive", "docker-archive"] {
        let saved = dir.path().join(format!("{format}.tar"));
        let out = podman.sh(&format!("save --format {format} -o {} localhost/roundtrip", saved.display()));
        assert!(out.status.success(), "{}", stderr(&out));
        let imported =
            json(&ok(sandbox().env("SANDBOX_HOME", home.path()).arg("import").arg(&saved).args(["--name", "roundtrip", "--json"])));
        assert_eq!(imported["name"], "roundtrip");
        assert_eq!(imported["user"], "guest");
    }
    if !need_root("running the imported image in namespaces") {
        return;
    }
    let run_image = |args: &[&str]| run(sandbox().env("SANDBOX_HOME", home.path()).args(args).stdin(Stdio::null()));
    let output = run_image(&["run", "roundtrip"]);
    assert_eq!(
        stdout(&output),
        "hello-from-podman\nguest\n100\n/srv\n",
        "the image's env, user, group, workdir and command:\n{}",
        stderr(&output)
    );
    let output = run_image(&["run", "image:roundtrip", "id", "-u"]);
    assert_eq!(stdout(&output), "405\n", "{}", stderr(&output));

    // An instance of the image, by the name `import` gave.
    let started = run_image(&["start", "roundtrip", "--name", "from-image"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let exec = run_image(&["exec", "from-image", "sh", "-c", "echo $GREETING; pwd"]);
    let _ = run_image(&["rm", "from-image"]);
    assert_eq!(stdout(&exec), "hello-from-podman\n/srv\n", "{}", stderr(&exec));

    // A profile that builds on the image adds to it.
    let child = dir.path().join("child.toml");
    fs::write(&child, "name = \"on-image\"\nextends = \"image:roundtrip\"\n[rootfs]\nbinaries = [\"head\"]\n[env]\nLAB = \"on\"\n")
        .unwrap();
    let output = run_image(&["run", child.to_str().unwrap(), "sh", "-c", "echo $LAB $GREETING; id -un; head -n 1 /etc/passwd"]);
    assert_eq!(stdout(&output), "on hello-from-podman\nguest\nroot:x:0:0:root:/root:/bin/sh\n", "{}", stderr(&output));
    fs::write(&child, "name = \"on-image\"\nextends = \"image:nosuch\"\n").unwrap();
    let missing = run(sandbox().env("SANDBOX_HOME", home.path()).arg("check").arg(&child));
    assert!(stderr(&missing).contains("child.toml:2:") && stderr(&missing).contains("no imported image"), "{}", stderr(&missing));
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A one-layer OCI layout of tar members with optional PAX records, as an
/// image with device nodes and file capabilities would be made.
/// (name, type, device numbers, file capability)
type Member<'a> = (&'a str, tar::EntryType, Option<(u32, u32)>, Option<&'a [u8]>);

fn layout_with(dir: &Path, members: &[Member]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, device, capability) in members {
        if let Some(cap) = capability {
            builder.append_pax_extensions([("SCHILY.xattr.security.capability", *cap)]).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Char { 0o666 } else { 0o755 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data: &[u8] = if *kind == tar::EntryType::Regular { b"#!/bin/sh\n" } else { b"" };
        h.set_size(data.len() as u64);
        if let Some((major, minor)) = device {
            h.set_device_major(*major).unwrap();
            h.set_device_minor(*minor).unwrap();
        }
        h.set_path(name).unwrap();
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    common::oci::layout_of_layer(dir, &builder.into_inner().unwrap());
}

#[test]
fn import_drops_device_nodes_and_keeps_file_capabilities_only_when_asked() {
    if !need_root("a rootfs with device nodes and file capabilities is made by root") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("image");
    // cap_sys_admin=ep, as `setcap` writes it (VFS_CAP_REVISION_2).
    let cap: &[u8] = &[0, 0, 0, 2, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    layout_with(
        &layout,
        &[
            ("dev/", tar::EntryType::Directory, None, None),
            ("dev/null", tar::EntryType::Char, Some((1, 3)), None),
            ("home/", tar::EntryType::Directory, None, None),
            ("home/mem", tar::EntryType::Char, Some((1, 1)), None),
            ("bin/", tar::EntryType::Directory, None, None),
            ("bin/tool", tar::EntryType::Regular, None, Some(cap)),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let import = |extra: &[&str]| {
        let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("import").arg(&layout).args(extra));
        assert!(output.status.success(), "{}", stderr(&output));
        let path = stdout(&output).lines().find_map(|l| l.trim().strip_prefix("path:").map(|p| PathBuf::from(p.trim()))).unwrap();
        (path, stderr(&output))
    };
    let (tree, notes) = import(&["--name", "devices"]);
    assert!(!tree.join("home/mem").exists(), "the device node is gone");
    assert!(fs::symlink_metadata(tree.join("dev/null")).unwrap().file_type().is_char_device(), "/dev/null 1,3 is every rootfs's");
    assert!(notes.contains("/home/mem") && notes.contains("1,1"), "and noted: {notes}");
    assert_eq!(xattr(&tree.join("bin/tool")), None, "no capability without --keep-caps");
    assert!(notes.contains("dropped the file capabilities of /bin/tool") && notes.contains("--keep-caps"), "{notes}");
    let (kept, notes) = import(&["--name", "devices-caps", "--keep-caps"]);
    assert_eq!(xattr(&kept.join("bin/tool")).as_deref(), Some(cap), "kept when asked");
    assert!(notes.contains("kept the file capabilities of /bin/tool"), "and noted: {notes}");
}

fn xattr(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = std::ffi::CString::new("security.capability").unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

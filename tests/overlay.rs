//! A student's writable layer (overlayfs) over the image: every change to the
//! image's files works, as on a real filesystem, and `diff` and `reset` see it.
//! (Issue 12 item 7: inside a user namespace the overlay cannot set trusted.*
//! attributes on its upper layer; it uses user.overlay.* ones, `userxattr`.)

mod common;

use std::fs;
use std::process::{Output, Stdio};

use common::*;

const PROFILE: &str = r#"name = "overlay-test"
extends = "shell"

[user]
name = "root"
uid = 0
gid = 0
home = "/root"
shell = "/bin/bash"

[run]
workdir = "/root"

[[rootfs.write]]
path = "/data/sub/a.txt"
content = "a\n"

[[rootfs.write]]
path = "/data/dir2/c.txt"
content = "c\n"

[[rootfs.write]]
path = "/data/keep.txt"
content = "k\n"

[[rootfs.write]]
path = "/data/link-src.txt"
content = "l\n"

[[rootfs.write]]
path = "/data/gone.txt"
content = "g\n"
"#;

struct Cleanup(&'static str);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = sandbox().args(["rm", self.0]).output();
    }
}

fn in_instance(profile: &std::path::Path, name: &str, script: &str) -> Output {
    run(sandbox().arg("run").arg(profile).args(["--name", name, "--", "/bin/bash", "-c", script]).stdin(Stdio::null()))
}

#[test]
fn image_files_can_be_removed_renamed_and_changed_in_an_instance() {
    if !need_root("instances with an id range") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("overlay-test.toml");
    fs::write(&profile, PROFILE).unwrap();
    let name = "overlay-test";
    let _cleanup = Cleanup(name);
    let _ = sandbox().args(["rm", name]).output();

    let script = "set -e
        rm -r /data/sub
        mv /data/dir2 /data/dir3
        chmod 600 /data/keep.txt
        chown 1000:1000 /data/keep.txt
        ln /data/link-src.txt /data/hardlink.txt
        rm /data/gone.txt
        mkdir /data/sub && echo new > /data/sub/fresh.txt
        echo done";
    let changed = in_instance(&profile, name, script);
    assert!(changed.status.success() && stdout(&changed).contains("done"), "{}{}", stdout(&changed), stderr(&changed));

    // The changes persist into the next session of the instance.
    let seen = in_instance(
        &profile,
        name,
        "ls /data | tr '\\n' ' '; echo; ls /data/sub; cat /data/dir3/c.txt; stat -c '%a %u' /data/keep.txt; \
         stat -c %h /data/hardlink.txt; test -e /data/gone.txt || echo gone",
    );
    let text = stdout(&seen);
    assert!(seen.status.success(), "{text}{}", stderr(&seen));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "dir3 hardlink.txt keep.txt link-src.txt sub", "{text}");
    assert_eq!(lines[1], "fresh.txt", "the new /data/sub holds none of the image's files: {text}");
    assert_eq!(lines[2], "c");
    assert_eq!(lines[3], "600 1000");
    assert_eq!(lines[4], "2", "a hard link of an image file: {text}");
    assert_eq!(lines[5], "gone");

    let diff = ok(sandbox().args(["diff", name]));
    for line in ["D /data/gone.txt", "D /data/dir2", "A /data/dir3", "C /data/keep.txt", "A /data/hardlink.txt"] {
        assert!(diff.lines().any(|l| l == line), "`{line}` missing from diff:\n{diff}");
    }

    ok(sandbox().args(["reset", name]));
    assert!(ok(sandbox().args(["diff", name])).is_empty(), "reset leaves no change");
    let back = in_instance(&profile, name, "ls /data | tr '\\n' ' '; echo; cat /data/sub/a.txt; stat -c '%a %u' /data/keep.txt");
    assert_eq!(
        stdout(&back).lines().map(str::trim).collect::<Vec<_>>(),
        ["dir2 gone.txt keep.txt link-src.txt sub", "a", "644 0"],
        "{}",
        stderr(&back)
    );
}

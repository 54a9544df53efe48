//! The store, the digest, the lock file, `why`, `check`, and the safety of
//! building from crafted input.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;

fn json(output: &str) -> serde_json::Value {
    serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {output}"))
}

#[test]
fn same_profile_same_digest_in_any_store_and_warm_build_reuses() {
    if !need_root("a store with host owners and capabilities") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let first = json(&ok(sandbox().current_dir(work.path()).args(["build", "shell", "--json"])));
    let again = json(&ok(sandbox().current_dir(work.path()).args(["build", "shell", "--json"])));
    assert_eq!(first["digest"], again["digest"]);
    assert_eq!(again["reused"], true);
    assert_eq!(first["name"], "shell");
    assert!(first["entries"].as_u64().unwrap() > 100 && first["bytes"].as_u64().unwrap() > 1_000_000, "{first}");
    assert!(Path::new(first["path"].as_str().unwrap()).join("usr/bin/bash").is_file());

    let fresh = tempfile::tempdir().unwrap();
    let elsewhere = json(&ok(sandbox().current_dir(work.path()).env("SANDBOX_HOME", fresh.path()).args(["build", "shell", "--json"])));
    assert_eq!(elsewhere["digest"], first["digest"], "an empty store gives the same digest");
    assert_eq!(elsewhere["reused"], false);
    assert!(work.path().join("shell.lock").is_file(), "the lock is written in the current directory for a ready profile");
}

#[test]
fn json_output_is_one_object_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let profile = work.path().join("tiny.toml");
    fs::write(&profile, "name = \"tiny\"\n[rootfs]\nbinaries = [\"true\"]\n").unwrap();
    let out = ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--json"));
    let value = json(&out);
    for key in ["name", "digest", "path", "entries", "bytes", "seconds", "reused"] {
        assert!(value.get(key).is_some(), "missing {key}: {value}");
    }
    assert_eq!(out.lines().count(), 1);
    assert!(work.path().join("tiny.lock").is_file(), "the lock is written beside the profile file");
}

#[test]
fn locked_build_fails_with_a_readable_diff() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let profile = work.path().join("lab.toml");
    fs::write(&profile, "name = \"lab\"\n[rootfs]\nbinaries = [\"true\"]\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"one\\n\"\n")
        .unwrap();
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile));
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--locked"));
    let lock_before = fs::read_to_string(work.path().join("lab.lock")).unwrap();
    assert!(lock_before.contains("path = \"/usr/bin/true\""), "{lock_before}");
    assert!(lock_before.contains("package = \"coreutils "), "dpkg's package and version are recorded");

    fs::write(&profile, "name = \"lab\"\n[rootfs]\nbinaries = [\"true\"]\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"two\\n\"\n")
        .unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--locked"));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("1 entries differ:") && err.contains("~ /etc/motd (content)"), "{err}");
    assert_eq!(fs::read_to_string(work.path().join("lab.lock")).unwrap(), lock_before, "--locked never rewrites the lock");
}

#[test]
fn why_prints_the_chain_of_reasons() {
    let text = ok(sandbox().args(["why", "/lib/x86_64-linux-gnu/libpcre2-8.so.0", "shell"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0  (as /lib/"), "{text}");
    assert!(lines[1].contains("DT_NEEDED of /usr/") && lines[1].contains("found via ld.so.cache"), "{text}");
    assert!(lines.last().unwrap().contains("in shell.toml:"), "{text}");

    let text = ok(sandbox().args(["why", "/etc/passwd"]));
    assert!(text.contains("skeleton"), "{text}");
    let output = run(sandbox().args(["why", "/usr/bin/gcc"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("not in the rootfs of profile `shell`"));
}

#[test]
fn check_points_at_an_unknown_binary() {
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("typo.toml");
    fs::write(&profile, "name = \"typo\"\n[rootfs]\nbinaries = [\"bash\", \"pyhton3\"]\n").unwrap();
    let output = run(sandbox().current_dir(work.path()).args(["check", "typo.toml"]));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("typo.toml:3:21: binary `pyhton3` not found on the system PATH"), "{err}");
    assert!(err.contains("fix: did you mean `python3`?"), "{err}");
    assert_eq!(err.lines().count(), 2, "one error, one fix: {err}");
}

#[test]
fn check_rejects_a_locale_the_host_lacks() {
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("l.toml");
    fs::write(&profile, "name = \"l\"\n[rootfs]\nlocales = [\"xx_XX.UTF-8\"]\n").unwrap();
    let output = run(sandbox().arg("check").arg(&profile));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("locale `xx_XX.UTF-8` is not compiled on this host"), "{}", stderr(&output));
    assert!(stderr(&output).contains("locale-gen"));
}

#[test]
fn check_accepts_every_ready_profile() {
    for name in ["shell", "python", "c-dev", "net"] {
        let text = ok(sandbox().args(["check", name]));
        assert!(text.starts_with(&format!("ok {name}")), "{text}");
    }
    let list = ok(sandbox().arg("profiles"));
    for name in ["shell", "python", "c-dev", "net"] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{list}");
    }
}

/// Crafted names and links never write outside the rootfs and never run a shell.
#[test]
fn crafted_names_and_links_stay_inside() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    let marker = work.path().join("pwned");
    let files = work.path().join("files");
    fs::create_dir_all(&files).unwrap();
    // Were a name ever given to a shell, `$(touch pwned)` would create work/pwned.
    let evil_names = ["with space", "quote'\"s", "$(touch pwned)", "new\nline", "`touch pwned`;x", "-rf"];
    for name in evil_names {
        fs::write(files.join(name), name).unwrap();
    }
    // A link that climbs out, and lab writes aimed through it and through `..`.
    symlink("../../../../../../../../..", files.join("up")).unwrap();
    let escape_target = outside.display().to_string();
    let profile = work.path().join("evil.toml");
    fs::write(
        &profile,
        format!(
            "name = \"evil\"\n[rootfs]\nbinaries = [\"true\"]\n\
             [[rootfs.copy]]\nfrom = \"files/\"\nto = \"/home/lab/\"\n\
             [[rootfs.write]]\npath = \"/home/lab/up{escape_target}/written\"\ncontent = \"x\"\n"
        ),
    )
    .unwrap();
    let out = work.path().join("tree");
    let output = run(sandbox().current_dir(work.path()).env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--out").arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!marker.exists(), "a file name was run by a shell");
    assert!(!outside.exists(), "a write followed a link out of the rootfs");
    // The write landed inside, where the link leads when the rootfs is the root.
    assert!(out.join(outside.strip_prefix("/").unwrap()).join("written").is_file());
    for name in evil_names {
        assert_eq!(fs::read_to_string(out.join("home/lab").join(name)).unwrap(), name);
    }
    assert_eq!(fs::read_link(out.join("home/lab/up")).unwrap(), Path::new("../../../../../../../../.."));

    let dotdot = work.path().join("dotdot.toml");
    fs::write(&dotdot, "name = \"dotdot\"\n[[rootfs.write]]\npath = \"/../../etc/x\"\ncontent = \"x\"\n").unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("check").arg(&dotdot));
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(stderr(&output).contains("dotdot.toml:3:8: `path` must not contain `..`"), "{}", stderr(&output));
}

#[test]
fn out_refuses_a_directory_that_is_not_empty() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::write(work.path().join("keep"), "mine").unwrap();
    let profile = work.path().join("t.toml");
    fs::write(&profile, "name = \"t\"\n[rootfs]\nbinaries = [\"true\"]\n").unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--out").arg(work.path()));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("is not empty"), "{}", stderr(&output));
    assert_eq!(fs::read_to_string(work.path().join("keep")).unwrap(), "mine");
}

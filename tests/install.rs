//! `cargo install` gives a binary that works from any directory with the
//! source tree gone: the ready profiles are inside it. The tree is copied to
//! a directory of its own, installed from there into a temporary root, the
//! copy removed, and the binary run from `/`. The release build keeps one
//! target directory between runs (CARGO_TARGET_TMPDIR/install-target) and the
//! copy keeps its path and file times, so only a changed tree is compiled
//! again (the first run takes minutes, a later one seconds).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The tree as `git archive` would give it, with its file times (`cp -a`), so cargo's fingerprints match the last run's.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let name = entry.unwrap().file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        ok(Command::new("cp").arg("-a").arg(from.join(&name)).arg(to));
    }
}

#[test]
fn cargo_install_works_from_any_directory_without_the_source_tree() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-source");
    let _ = std::fs::remove_dir_all(&source);
    copy_tree(Path::new(env!("CARGO_MANIFEST_DIR")), &source);
    let root = work.path().join("root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = std::time::Instant::now();
    let installed = run(Command::new(&cargo)
        .args(["install", "--offline", "--locked", "--quiet", "--path"])
        .arg(&source)
        .arg("--root")
        .arg(&root)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-target")));
    assert!(installed.status.success(), "cargo install: {}", stderr(&installed));
    eprintln!("cargo install took {:.0} s", started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&source).unwrap();

    let binary = root.join("bin/sandbox");
    let home = work.path().join("home");
    let in_root = |args: &[&str]| {
        let output = run(Command::new(&binary).args(args).current_dir("/").env("SANDBOX_HOME", &home).env("NO_COLOR", "1"));
        assert!(output.status.success(), "sandbox {args:?} from /: {}", stderr(&output));
        stdout(&output)
    };
    let profiles = in_root(&["profiles"]);
    for name in ["shell", "python", "c-dev", "net"] {
        assert!(profiles.contains(name), "{name} is built in: {profiles}");
    }
    assert!(in_root(&["check", "net"]).starts_with("ok net"), "a ready profile that extends another, from /");
    assert!(in_root(&["export", "shell", "--k8s"]).contains("kind: Pod"));
    assert!(in_root(&["man"]).contains("sandbox"));
}

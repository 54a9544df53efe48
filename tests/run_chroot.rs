//! `sandbox run --mode chroot`: the classic jail, and why it is a lesson.

mod common;

use std::fs;
use std::process::{Output, Stdio};

use common::*;

fn chroot_run(profile: &str, script: &str) -> Output {
    run(sandbox().arg("run").arg(profile_path(profile)).args(["--mode", "chroot", "--", "/bin/bash", "-c", script]).stdin(Stdio::null()))
}

const ESCAPE: &str = r#"perl -e 'mkdir "/tmp/x"; chroot "/tmp/x" or die "chroot: $!\n"; chdir ".." for 1..64; chroot "."; open(F, "<", "MARKER") or die "open: $!\n"; print "ESCAPED ", <F>, "\n"'"#;

#[test]
fn root_escapes_with_the_double_chroot_and_a_student_cannot() {
    if !need_root("chroot(2)") {
        return;
    }
    let marker = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    fs::write(marker.path(), "host-only").unwrap();
    let script = ESCAPE.replace("MARKER", &marker.path().display().to_string());
    let root = chroot_run("runroot.toml", &script);
    assert!(stdout(&root).contains("ESCAPED host-only"), "root inside a chroot climbs out: {}{}", stdout(&root), stderr(&root));
    let student = chroot_run("run.toml", &script);
    assert!(!stdout(&student).contains("ESCAPED"), "{}", stdout(&student));
    assert!(stderr(&student).contains("chroot: Operation not permitted"), "{}", stderr(&student));
}

#[test]
fn chroot_shares_the_host_s_processes_but_keeps_the_store_read_only() {
    if !need_root("chroot(2)") {
        return;
    }
    let output = chroot_run("runroot.toml", "ps -e --no-headers | wc -l; touch /usr/bin/x 2>&1; uname -n; id -u");
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].trim().parse::<u32>().unwrap() > 5, "chroot does not hide the host's processes: {text}");
    assert!(text.contains("Read-only file system"), "the shared rootfs stays read-only: {text}{}", stderr(&output));
    assert_eq!(lines.last().map(|l| l.trim()), Some("0"));
    let host = nix::unistd::gethostname().unwrap();
    assert!(text.contains(host.to_str().unwrap()), "chroot keeps the host's hostname: {text}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&shared_home().display().to_string()), "chroot mode left a mount on the host");
}

#[test]
fn chroot_runs_as_the_profile_s_user_with_a_clean_environment() {
    if !need_root("chroot(2)") {
        return;
    }
    let output = run(sandbox()
        .arg("run")
        .arg(profile_path("run.toml"))
        .args(["--mode", "chroot", "--", "/bin/bash", "-c", "id -un; pwd; echo ${SECRET:-unset}; exit 9"])
        .env("SECRET", "leaked")
        .stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(9));
    assert_eq!(stdout(&output), "student\n/home/student\nunset\n");
}

/// Issue 12 items 5 and 6, issue 17: in the python profile, ctypes finds libc
/// through the rootfs's own ld.so.cache and ldconfig, sysconfig finds
/// pyconfig.h and its build variables, and `python3 -m venv` makes a venv
/// whose python runs (ensurepip installs pip from Debian's wheels).
#[test]
fn python_finds_libraries_reads_sysconfig_and_makes_a_venv() {
    if !need_root("chroot(2)") {
        return;
    }
    let script = r#"python3 -c "import ctypes.util; print(ctypes.util.find_library('c'))"
python3 -c "import os, sysconfig; print(os.path.isfile(sysconfig.get_config_h_filename()), len(sysconfig.get_config_vars()) > 100)"
LD_DEBUG=libs /bin/true 2>&1 | grep -A2 'find library=libc.so.6' | tail -1 | tr -d '\t' | sed 's/^ *[0-9]*: *//'
python3 -m venv /tmp/v && /tmp/v/bin/python -c "import sys; print(sys.prefix)" && /tmp/v/bin/pip --version | cut -d' ' -f1
"#;
    let output = run(sandbox().args(["run", "python", "--mode", "chroot", "--", "/bin/bash", "-c", script]).stdin(Stdio::null()));
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    assert_eq!(stdout(&output), "libc.so.6\nTrue True\ntrying file=/lib/x86_64-linux-gnu/libc.so.6\n/tmp/v\npip\n", "{}", stderr(&output));
}

//! A Debian guest with systemd as PID 1, for tests/vm_systemd.rs: the same
//! stock kernel as the rig's, booted with an initramfs that holds a minimal
//! Debian (mmdebstrap: systemd, dbus, dbus-user-session, busybox) plus the
//! binary under test and tests/vm/systemd/. A busybox /init copies it all onto
//! a tmpfs (pivot_root refuses the initramfs itself) and switch_roots into
//! systemd, which starts vm-cases.service; that runs the case file and powers
//! the VM off.
//!
//! The Debian tree is made once (about a minute and 50 MB from
//! deb.debian.org) and cached as a cpio archive under the target directory,
//! keyed by the mmdebstrap command line. The kernel unpacks concatenated
//! archives in turn, so each run only writes the small archive of its own
//! files after the cached one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rig::{Rig, write_cpio};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &str = "systemd,systemd-sysv,dbus,dbus-user-session,busybox-static";

/// The mmdebstrap arguments before the suite: minbase, the packages, no
/// documentation, the user `student` (uid 1000) and no apt lists.
fn mmdebstrap_args() -> Vec<String> {
    let mut args: Vec<String> = vec!["--variant=minbase".into(), format!("--include={PACKAGES}"), "--quiet".into()];
    for excluded in ["doc", "man", "info", "locale"] {
        args.push(format!("--dpkgopt=path-exclude=/usr/share/{excluded}/*"));
    }
    args.push("--customize-hook=chroot \"$1\" useradd -m -u 1000 -U -s /bin/sh student".into());
    args.push("--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin".into());
    args
}

/// The cached archive of the Debian tree, made first if needed; or why not.
fn base_archive(rig: &Rig) -> Result<PathBuf, String> {
    let args = mmdebstrap_args();
    let key = fnv(&format!("{SUITE} {MIRROR} {}", args.join(" ")));
    let cache = rig.dir().join("debian");
    let archive = cache.join(format!("{SUITE}-systemd-{key:016x}.cpio"));
    if archive.is_file() {
        return Ok(archive);
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("making the Debian guest (mmdebstrap) needs root".into());
    }
    let mmdebstrap = which("mmdebstrap").ok_or("mmdebstrap is not installed (Debian: mmdebstrap)")?;
    let tree = cache.join("tree.new");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let output = Command::new(mmdebstrap)
        .args(&args)
        .arg(SUITE)
        .arg(&tree)
        .arg(MIRROR)
        .output()
        .map_err(|e| format!("cannot run mmdebstrap: {e}"))?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&tree);
        return Err(format!("mmdebstrap {SUITE} failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    let partial = archive.with_extension("cpio.new");
    write_cpio(&tree, &partial).map_err(|e| format!("writing {}: {e}", partial.display()))?;
    let _ = fs::remove_dir_all(&tree);
    // Renamed into place: an interrupted build never looks complete.
    fs::rename(&partial, &archive).map_err(|e| e.to_string())?;
    Ok(archive)
}

/// The initramfs: the cached Debian archive, then this run's own files.
pub fn initramfs(rig: &Rig, sandbox: &Path) -> Result<PathBuf, String> {
    let base = base_archive(rig)?;
    let work = rig.dir().join("systemd");
    let _ = fs::remove_dir_all(&work);
    let tree = work.join("tree");
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
    let copy = |from: PathBuf, to: &str| -> Result<(), String> {
        let to = tree.join(to);
        fs::create_dir_all(to.parent().unwrap()).map_err(|e| e.to_string())?;
        fs::copy(&from, &to).map(|_| ()).map_err(|e| format!("copy {}: {e}", from.display()))
    };
    copy(guest.join("systemd/init"), "init")?;
    copy(guest.join("systemd/vm-cases.service"), "etc/systemd/system/vm-cases.service")?;
    copy(guest.join("systemd/cases/systemd.sh"), "vm/cases/systemd.sh")?;
    copy(guest.join("guest/vm/cases/lib.sh"), "vm/cases/lib.sh")?;
    copy(guest.join("guest/vm/profiles/limits.toml"), "vm/profiles/limits.toml")?;
    for entry in fs::read_dir(rig.modules()).map_err(|e| e.to_string())?.flatten() {
        copy(entry.path(), &format!("vm/modules/{}", entry.file_name().to_string_lossy()))?;
    }
    let wants = tree.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/etc/systemd/system/vm-cases.service", wants.join("vm-cases.service")).map_err(|e| e.to_string())?;
    // No udev in the guest, so no device unit ever appears: the serial
    // getty would wait 90 s for ttyS0 before the cases could start.
    std::os::unix::fs::symlink("/dev/null", tree.join("etc/systemd/system/serial-getty@ttyS0.service")).map_err(|e| e.to_string())?;
    fs::create_dir_all(tree.join("newroot")).map_err(|e| e.to_string())?;
    // The debug binary is mostly debug info: strip it, or the VM's RAM holds it twice.
    let binary = tree.join("usr/local/bin/sandbox");
    fs::create_dir_all(binary.parent().unwrap()).map_err(|e| e.to_string())?;
    let stripped = Command::new("objcopy").arg("--strip-debug").arg(sandbox).arg(&binary).status();
    if !stripped.is_ok_and(|s| s.success()) {
        fs::copy(sandbox, &binary).map_err(|e| format!("copy {}: {e}", sandbox.display()))?;
    }
    let own = work.join("own.cpio");
    write_cpio(&tree, &own).map_err(|e| format!("writing {}: {e}", own.display()))?;
    let initramfs = work.join("initramfs.cpio");
    let mut out = fs::File::create(&initramfs).map_err(|e| e.to_string())?;
    for part in [&base, &own] {
        let mut input = fs::File::open(part).map_err(|e| e.to_string())?;
        std::io::copy(&mut input, &mut out).map_err(|e| e.to_string())?;
    }
    Ok(initramfs)
}

/// 64-bit FNV-1a: a stable cache key (std's hasher may change between releases).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

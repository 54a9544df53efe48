//! The kernel test rig: boots Debian's stock kernel under qemu (TCG, no KVM
//! needed) with an initramfs that `sandbox build --out` assembles from
//! tests/vm/initramfs.toml plus the freshly built binary, runs one case file
//! inside (tests/vm/guest/cases/NAME.sh) and returns what each case printed.
//!
//! Everything it downloads or builds lives under the target directory
//! (`target/tmp/vm`), so the host's own boot and packages are never touched:
//! the kernel package is fetched with `apt-get download` and only the kernel
//! image and the few modules the guest loads are unpacked from it.
//!
//! Where qemu (or the kernel package) is not to be had, [`Rig::new`] returns
//! the reason; the test prints it and skips, except under CI=true.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The package whose dependency names the current stock kernel.
const KERNEL_META_PACKAGE: &str = "linux-image-amd64";

pub struct Rig {
    /// `target/tmp/vm`: every file of the rig.
    dir: PathBuf,
    vmlinuz: PathBuf,
    /// The modules to load and `load-order`, the order to load them in.
    modules: PathBuf,
    qemu: PathBuf,
}

/// What one case printed, and its exit status.
#[derive(Debug, Clone)]
pub struct Case {
    pub status: i32,
    pub output: String,
}

/// The results of one boot.
#[derive(Debug)]
pub struct Boot {
    pub cases: BTreeMap<String, Case>,
    /// The order the cases ran in.
    pub order: Vec<String>,
    /// Lines outside any case (VM-BOOTED, VM-CASES-EXIT, VM-DONE).
    pub notes: Vec<String>,
    /// The kernel console, for the failure message.
    pub console: String,
    pub seconds: f64,
}

impl Boot {
    pub fn case(&self, name: &str) -> &Case {
        self.cases.get(name).unwrap_or_else(|| panic!("case `{name}` did not run in the VM\n{}", self.report()))
    }

    /// Every case and the console's tail: the message of a failed assertion.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for name in &self.order {
            let case = &self.cases[name];
            text.push_str(&format!("--- {name} (exit {})\n{}\n", case.status, case.output.trim_end()));
        }
        text.push_str(&format!("--- notes\n{}\n", self.notes.join("\n")));
        let tail: Vec<&str> = self.console.lines().rev().take(40).collect();
        text.push_str(&format!("--- console (last lines)\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
        text
    }

    pub fn finished(&self) -> bool {
        self.notes.iter().any(|n| n == "VM-DONE")
    }
}

impl Rig {
    /// The kernel (downloaded once into the cache) and qemu; or why not.
    pub fn new() -> Result<Rig, String> {
        let qemu = which("qemu-system-x86_64").ok_or("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)")?;
        if !Path::new("/bin/busybox").is_file() {
            return Err("/bin/busybox is not installed (Debian: busybox-static)".into());
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm");
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (vmlinuz, modules) = kernel(&dir.join("kernel"))?;
        Ok(Rig { dir, vmlinuz, modules, qemu })
    }

    /// `target/tmp/vm`, where everything of the rig lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The modules the guest loads and their `load-order`.
    pub fn modules(&self) -> &Path {
        &self.modules
    }

    /// Builds the initramfs around `sandbox` (the binary under test).
    pub fn initramfs(&self, sandbox: &Path) -> Result<PathBuf, String> {
        self.initramfs_of("initramfs.toml", sandbox, &[])
    }

    /// Builds the initramfs of `base` (a profile under tests/vm) around
    /// `sandbox`, with each `(host folder, guest folder)` of `folders` copied in.
    pub fn initramfs_of(&self, base: &str, sandbox: &Path, folders: &[(&Path, &str)]) -> Result<PathBuf, String> {
        let work = self.dir.join(Path::new(base).with_extension("").file_name().unwrap_or_default());
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        // The binary under test is listed like any program, so its libraries
        // come with it; it lands at its host path, which init links into PATH.
        let binary = work.join("sandbox");
        // The debug binary is mostly debug info: strip it, or the VM's RAM holds it twice.
        let stripped = Command::new("objcopy").arg("--strip-debug").arg(sandbox).arg(&binary).status();
        if !stripped.is_ok_and(|s| s.success()) {
            fs::copy(sandbox, &binary).map_err(|e| format!("copy {}: {e}", sandbox.display()))?;
        }
        let modules = work.join("modules");
        fs::create_dir_all(&modules).map_err(|e| e.to_string())?;
        for entry in fs::read_dir(&self.modules).map_err(|e| e.to_string())?.flatten() {
            fs::copy(entry.path(), modules.join(entry.file_name())).map_err(|e| e.to_string())?;
        }
        // A profile copies only from beneath its own folder: the folders come in first.
        let mut copies = String::new();
        for (n, (from, to)) in folders.iter().enumerate() {
            let staged = format!("folder-{n}");
            let copied = Command::new("cp").arg("-a").arg(from).arg(work.join(&staged)).status();
            if !copied.is_ok_and(|s| s.success()) {
                return Err(format!("cannot copy {} for the initramfs", from.display()));
            }
            copies.push_str(&format!("\n[[rootfs.copy]]\nfrom = \"{staged}/\"\nto = {to:?}\n"));
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm").join(base);
        let profile = work.join("vm-initramfs.toml");
        let text = format!(
            "# Generated by tests/vm/rig.rs: the binary under test and the kernel modules.\n\
             name = \"vm-initramfs-run\"\nextends = {base:?}\n\n\
             [rootfs]\nbinaries = [{binary:?}]\n\n\
             [[rootfs.copy]]\nfrom = \"modules/\"\nto = \"/vm/modules/\"\n\n\
             [[rootfs.write]]\npath = \"/vm/sandbox-binary\"\ncontent = {binary:?}\n{copies}",
            base = base.display().to_string(),
            binary = binary.display().to_string(),
        );
        fs::write(&profile, text).map_err(|e| e.to_string())?;
        let tree = work.join("tree");
        let output = Command::new(sandbox)
            .arg("build")
            .arg(&profile)
            .arg("--out")
            .arg(&tree)
            .env("SANDBOX_HOME", self.dir.join("home"))
            .env("NO_COLOR", "1")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", sandbox.display()))?;
        if !output.status.success() {
            return Err(format!(
                "sandbox build --out for the initramfs failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let cpio = work.join("initramfs.cpio");
        write_cpio(&tree, &cpio).map_err(|e| format!("writing {}: {e}", cpio.display()))?;
        Ok(cpio)
    }

    /// Boots the VM with `initramfs`, runs /vm/cases/`cases`.sh, and returns
    /// its results. `timeout` bounds the whole boot.
    pub fn boot(&self, initramfs: &Path, cases: &str, timeout: Duration) -> Result<Boot, String> {
        let run = self.dir.join(format!("run-{cases}"));
        let _ = fs::remove_dir_all(&run);
        fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        let (console, results) = (run.join("console.log"), run.join("results.log"));
        let started = Instant::now();
        let mut qemu = Command::new(&self.qemu)
            .args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2"])
            .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-monitor", "none"])
            .arg("-kernel")
            .arg(&self.vmlinuz)
            .arg("-initrd")
            .arg(initramfs)
            .args(["-append", &format!("console=ttyS0 panic=-1 quiet vm.cases={cases}")])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-serial")
            .arg(format!("file:{}", results.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start qemu: {e}"))?;
        let status = loop {
            if let Some(status) = qemu.try_wait().map_err(|e| e.to_string())? {
                break Some(status);
            }
            if started.elapsed() > timeout {
                let _ = qemu.kill();
                let _ = qemu.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut stderr = String::new();
        if let Some(mut pipe) = qemu.stderr.take() {
            let _ = io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        let console = fs::read_to_string(&console).map(|t| t.replace('\r', "")).unwrap_or_default();
        let text = fs::read(&results).map(|b| String::from_utf8_lossy(&b).replace('\r', "")).unwrap_or_default();
        let mut boot = parse_results(&text, console, seconds);
        match status {
            None => boot.notes.push(format!("VM-TIMEOUT after {} s", timeout.as_secs())),
            Some(status) if !status.success() => boot.notes.push(format!("qemu exited with {status}: {}", stderr.trim())),
            Some(_) => {}
        }
        Ok(boot)
    }
}

fn parse_results(text: &str, console: String, seconds: f64) -> Boot {
    let mut boot = Boot { cases: BTreeMap::new(), order: Vec::new(), notes: Vec::new(), console, seconds };
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some((name, output)) = current.as_mut() {
            let end = format!("END {name} ");
            if let Some(status) = line.strip_prefix(&end) {
                let status = status.trim().parse().unwrap_or(-1);
                boot.cases.insert(name.clone(), Case { status, output: std::mem::take(output) });
                boot.order.push(std::mem::take(name));
                current = None;
            } else {
                output.push_str(line);
                output.push('\n');
            }
        } else if let Some(name) = line.strip_prefix("BEGIN ") {
            current = Some((name.trim().to_owned(), String::new()));
        } else if !line.trim().is_empty() {
            boot.notes.push(line.trim().to_owned());
        }
    }
    if let Some((name, output)) = current {
        boot.notes.push(format!("case {name} never ended; its output so far:\n{output}"));
    }
    boot
}

/// The modules the guest loads (Debian builds them as modules): overlay for
/// instances, loop and ext4 for the store (idmapped mounts need a filesystem
/// that has them; tmpfs only since Linux 6.3). Their dependencies come along.
/// ext4 asks the crypto API for crc32c at mount time (no modprobe in the guest).
const MODULES: &[&str] = &["overlay", "loop", "crc32c_generic", "ext4"];

/// The stock kernel's image and the [`MODULES`] (with their dependencies, in
/// load order), from the cache or freshly unpacked from the package that
/// `apt-get download` fetches. The cache is keyed by the package's name and
/// version and the module list, so a new kernel release is fetched anew.
fn kernel(cache: &Path) -> Result<(PathBuf, PathBuf), String> {
    let package = current_kernel_package()?;
    let dir = cache.join(format!("{package}+{}", MODULES.join("+")));
    let (vmlinuz, modules) = (dir.join("vmlinuz"), dir.join("modules"));
    if vmlinuz.is_file() && modules.join("load-order").is_file() {
        return Ok((vmlinuz, modules));
    }
    let download = cache.join("download");
    let _ = fs::remove_dir_all(&download);
    fs::create_dir_all(&download).map_err(|e| e.to_string())?;
    let fetched = Command::new("apt-get")
        .args(["download", "-q"])
        .arg(package.replacen('_', "=", 1))
        .current_dir(&download)
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !fetched.status.success() {
        return Err(format!("apt-get download {package} failed: {}", String::from_utf8_lossy(&fetched.stderr).trim()));
    }
    let deb = fs::read_dir(&download)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let unpacked = download.join("unpacked");
    fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    // Only what is needed: the whole package unpacks to about 400 MB.
    unpack(&deb, &unpacked, &["./boot/vmlinuz-*".into(), "*/modules.order".into()])?;
    let found = |pattern: &dyn Fn(&Path) -> bool| walk(&unpacked).into_iter().find(|p| pattern(p));
    let image =
        found(&|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))).ok_or("no vmlinuz in the package")?;
    let order_file = found(&|p| p.ends_with("modules.order")).ok_or("no modules.order in the package")?;
    let module_root = order_file.parent().ok_or("modules.order has no directory")?.to_path_buf();
    let order = fs::read_to_string(&order_file).map_err(|e| e.to_string())?;
    // name -> path inside the package, for every module it has.
    let paths: BTreeMap<String, String> =
        order.lines().filter_map(|l| Some((Path::new(l).file_stem()?.to_string_lossy().replace('-', "_"), l.trim().to_owned()))).collect();
    // Unpack the wanted modules, read their `depends=`, repeat until closed.
    let mut wanted: Vec<String> = MODULES.iter().map(|m| m.to_string()).collect();
    let mut have: Vec<String> = Vec::new();
    while let Some(missing) = Some(wanted.iter().filter(|m| !have.contains(m)).cloned().collect::<Vec<_>>()).filter(|m| !m.is_empty()) {
        let patterns: Vec<String> = missing
            .iter()
            .map(|m| paths.get(m).map(|p| format!("*/{p}")).ok_or(format!("the package has no module {m}")))
            .collect::<Result<_, _>>()?;
        unpack(&deb, &unpacked, &patterns)?;
        for module in missing {
            let file = module_root.join(&paths[&module]);
            for dependency in module_depends(&file)? {
                if !wanted.contains(&dependency) {
                    wanted.push(dependency);
                }
            }
            have.push(module);
        }
    }
    let staging = cache.join(format!("{package}.new"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(staging.join("modules")).map_err(|e| e.to_string())?;
    fs::copy(&image, staging.join("vmlinuz")).map_err(|e| e.to_string())?;
    // Dependencies first: a module loads only after the ones it needs.
    let mut load_order: Vec<String> = Vec::new();
    while load_order.len() < wanted.len() {
        let before = load_order.len();
        for module in &wanted {
            let file = module_root.join(&paths[module]);
            if !load_order.contains(module) && module_depends(&file)?.iter().all(|d| load_order.contains(d)) {
                fs::copy(&file, staging.join("modules").join(format!("{module}.ko"))).map_err(|e| e.to_string())?;
                load_order.push(module.clone());
            }
        }
        if load_order.len() == before {
            return Err(format!("the modules' dependencies form a cycle: {wanted:?}"));
        }
    }
    fs::write(staging.join("modules/load-order"), load_order.join("\n") + "\n").map_err(|e| e.to_string())?;
    // Renamed into place: an interrupted download never looks complete.
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&staging, &dir).map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(&download);
    Ok((vmlinuz, modules))
}

/// Unpacks the members matching `patterns` from a .deb into `into`.
fn unpack(deb: &Path, into: &Path, patterns: &[String]) -> Result<(), String> {
    let script = "deb=$1; into=$2; shift 2; dpkg-deb --fsys-tarfile \"$deb\" | tar -x -C \"$into\" --wildcards \"$@\"";
    let output = Command::new("sh").args(["-c", script, "unpack"]).arg(deb).arg(into).args(patterns).output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("unpacking {} from {}: {}", patterns.join(" "), deb.display(), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(())
}

/// A module's `depends=` (its .modinfo section holds NUL-separated `key=value`).
fn module_depends(file: &Path) -> Result<Vec<String>, String> {
    let bytes = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let key = b"\0depends=";
    let Some(start) = bytes.windows(key.len()).position(|w| w == key).map(|i| i + key.len()) else { return Ok(Vec::new()) };
    let end = bytes[start..].iter().position(|&b| b == 0).map_or(bytes.len(), |n| start + n);
    let list = String::from_utf8_lossy(&bytes[start..end]);
    Ok(list.split(',').map(|m| m.trim().replace('-', "_")).filter(|m| !m.is_empty()).collect())
}

/// `linux-image-6.1.0-57-amd64_6.1.192-3`: the package the meta package
/// depends on, with its version. Without apt, the newest cached kernel.
fn current_kernel_package() -> Result<String, String> {
    let depends = Command::new("apt-cache").args(["depends", KERNEL_META_PACKAGE]).output();
    let name = depends.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("Depends: ").filter(|n| n.starts_with("linux-image-")).map(str::to_owned))
    });
    let Some(name) = name else {
        return Err(format!("apt-cache knows no {KERNEL_META_PACKAGE} (a Debian machine with the main archive is needed)"));
    };
    let policy = Command::new("apt-cache").args(["policy", &name]).output().map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&policy.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_owned))
        .unwrap_or_default();
    Ok(format!("{name}_{version}"))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Every path under `dir` (not following symlinks), parents first, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        out.push(path.clone());
        if is_dir {
            out.extend(walk(&path));
        }
    }
    out
}

/// An uncompressed newc cpio archive of `tree`, the format the kernel unpacks
/// as an initramfs. Files keep their modes; owners too when the builder is
/// root, otherwise everything belongs to root in the VM.
pub fn write_cpio(tree: &Path, out: &Path) -> io::Result<()> {
    let mut writer = BufWriter::new(fs::File::create(out)?);
    let keep_owners = nix::unistd::geteuid().is_root();
    for (ino, path) in walk(tree).into_iter().enumerate() {
        let meta = fs::symlink_metadata(&path)?;
        let name = path.strip_prefix(tree).unwrap_or(&path).to_string_lossy().into_owned();
        let kind = meta.file_type();
        let data = if kind.is_file() {
            fs::read(&path)?
        } else if kind.is_symlink() {
            fs::read_link(&path)?.to_string_lossy().into_owned().into_bytes()
        } else if kind.is_dir() || kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
            Vec::new()
        } else {
            continue;
        };
        let (uid, gid) = if keep_owners { (meta.uid(), meta.gid()) } else { (0, 0) };
        let rdev = meta.rdev();
        let header = NewcHeader {
            ino: ino as u32 + 1,
            mode: meta.mode(),
            uid,
            gid,
            nlink: if kind.is_dir() { 2 } else { 1 },
            mtime: meta.mtime().max(0) as u32,
            size: data.len() as u32,
            rdev_major: nix::sys::stat::major(rdev) as u32,
            rdev_minor: nix::sys::stat::minor(rdev) as u32,
        };
        header.write(&mut writer, &name, &data)?;
    }
    let trailer = NewcHeader { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, rdev_major: 0, rdev_minor: 0 };
    trailer.write(&mut writer, "TRAILER!!!", &[])?;
    writer.flush()
}

struct NewcHeader {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

impl NewcHeader {
    fn write(&self, out: &mut impl Write, name: &str, data: &[u8]) -> io::Result<()> {
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.size,
            0,
            0,
            self.rdev_major,
            self.rdev_minor,
            name.len() as u32 + 1,
            0,
        ];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        out.write_all(header.as_bytes())?;
        out.write_all(name.as_bytes())?;
        out.write_all(&[0])?;
        pad(out, header.len() + name.len() + 1)?;
        out.write_all(data)?;
        pad(out, data.len())
    }
}

/// newc aligns every header and every file's data to 4 bytes.
fn pad(out: &mut impl Write, written: usize) -> io::Result<()> {
    out.write_all(&[0; 3][..(4 - written % 4) % 4])
}

//! The resolver: walks from what the profile names to everything it needs.
//!
//! It only reads the host (stat, readlink, ELF headers); it never runs a
//! program. Each entry it adds carries the reason `sandbox why` prints.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::elf;
use super::elf::Arch;
use super::error::{ResolveError, shown};
use super::labfiles::{self, LabKind};
use super::manifest::{Entry, Kind, Manifest, Note, Reason, components, lexical_join};
use super::pseudofs::{self, Filesystems};
use super::rules::{self, Add, RULES, When};
use super::script;
use super::search::LibrarySearch;
use super::{dpkg::Dpkg, locale, skeleton};
use crate::profile::{Located, Origin, Profile};

/// The system PATH binaries are looked up on: never the caller's, so a pyenv
/// shim early on a teacher's PATH does not change what students get.
pub const SYSTEM_PATH: &[&str] = &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Top-level links of a merged-/usr host, mirrored so `/bin/sh` works inside.
const MERGED_USR_LINKS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// Where every sandbox mounts a filesystem of its own at run time, in both
/// modes: what the rootfs holds there is covered, so a program there cannot run.
pub const COVERED_AT_RUN: &[(&str, &str)] = &[("/tmp", "an empty tmpfs"), ("/proc", "procfs")];

/// Linux's limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// An ELF object waiting to have its interpreter and libraries resolved, with
/// the RPATHs of the objects that loaded it (glibc searches those too).
struct PendingElf {
    /// The real file (symlinks resolved): what is read, and the manifest entry.
    path: PathBuf,
    /// The path the loader opens it by. glibc takes `$ORIGIN` from this path for
    /// a library, and from the resolved /proc/self/exe for a program.
    load_path: PathBuf,
    loader_rpaths: Vec<(PathBuf, Vec<String>)>,
}

pub struct Resolver<'h> {
    search: &'h LibrarySearch,
    dpkg: &'h Dpkg,
    manifest: Manifest,
    pending: VecDeque<PendingElf>,
    scanned: HashSet<PathBuf>,
    /// File names of programs (every name along their symlink chain) for `When::Program`.
    programs: Vec<(String, PathBuf)>,
    /// Sonames some ELF file needs, with the first file that needed it.
    sonames: Vec<(String, PathBuf)>,
    soname_seen: HashSet<String>,
    fired: HashSet<(&'static str, String)>,
    triplet: String,
    filesystems: Filesystems,
    /// ELF files for another machine, copied as data (one note lists them).
    foreign: Vec<PathBuf>,
    /// Shell scripts whose commands were read (scripts may run each other).
    scripts: HashSet<PathBuf>,
}

/// Why a host path could not be added.
enum HostError {
    Io(PathBuf, std::io::Error),
    /// The path is on a pseudo-filesystem (procfs, sysfs, ...).
    Pseudo(PathBuf, &'static str),
}

impl HostError {
    fn into_resolve(self, origin: Option<Origin>) -> ResolveError {
        match self {
            HostError::Io(path, error) => ResolveError::io(origin, &path, &error),
            HostError::Pseudo(path, fs) => ResolveError::Host {
                origin,
                path,
                cause: pseudofs::why(fs),
                fix: "leave it out: the sandbox mounts its own /proc, /sys and /dev, and a tree named in `files` must hold ordinary files"
                    .into(),
            },
        }
    }
}

impl<'h> Resolver<'h> {
    pub fn new(search: &'h LibrarySearch, dpkg: &'h Dpkg) -> Self {
        let triplet = search.multiarch_triplet().unwrap_or(default_triplet()).to_string();
        Resolver {
            search,
            dpkg,
            manifest: Manifest::default(),
            pending: VecDeque::new(),
            scanned: HashSet::new(),
            programs: Vec::new(),
            sonames: Vec::new(),
            soname_seen: HashSet::new(),
            fired: HashSet::new(),
            triplet,
            filesystems: Filesystems::default(),
            foreign: Vec::new(),
            scripts: HashSet::new(),
        }
    }

    /// Start from an existing tree (an imported image): what the profile
    /// adds only fills in what the image does not have.
    pub fn starting_from(mut self, base: Manifest) -> Self {
        self.manifest = base;
        self
    }

    /// Everything the profile's rootfs holds.
    pub fn resolve(mut self, profile: &Profile) -> Result<Manifest, ResolveError> {
        self.add_skeleton(profile);
        for binary in &profile.rootfs.binaries {
            let path = find_binary(binary)?;
            refuse_covered(binary, &path)?;
            self.add_program(&path, Reason::Binary { name: binary.value.clone(), origin: binary.origin.clone() })?;
        }
        for file in &profile.rootfs.files {
            let reason = Reason::ProfileFile { origin: file.origin.clone() };
            let at = |e: HostError| e.into_resolve(Some(file.origin.clone()));
            let real = self.add_host_path(Path::new(&file.value), reason.clone()).map_err(at)?;
            if is_dir(&real) {
                self.add_tree(&real, &reason).map_err(at)?;
            }
        }
        self.add_timezones(profile)?;
        self.add_locales(profile)?;
        self.settle()?;
        self.add_message_catalogs(profile);
        self.add_lab_files(profile)?;
        self.add_mount_points(profile)?;
        self.add_ld_cache();
        self.add_parents();
        self.note_covered();
        self.note_foreign();
        Ok(self.manifest)
    }

    /// The profile line an entry goes back to, through its chain of reasons.
    fn origin_of(&self, path: &Path) -> Option<Origin> {
        self.manifest.why(path).last().and_then(|root| root.reason.origin()).cloned()
    }

    /// The rootfs's own /etc/ld.so.cache, of the libraries it holds: the host's
    /// would list hundreds that are not there, and without one `ldconfig -p`
    /// (which ctypes.util.find_library runs) finds nothing. Written as
    /// ldconfig would for these directories: every library whose soname link
    /// is in a directory of ld.so.conf or a trusted one, first directory first.
    /// A cache the profile or an image brings is kept.
    fn add_ld_cache(&mut self) {
        let cache_path = Path::new("/etc/ld.so.cache");
        if self.manifest.entries.contains_key(cache_path) {
            return;
        }
        let native = Arch::native();
        let mut dirs: Vec<PathBuf> = self.search.conf_dirs().to_vec();
        if let Some(native) = &native {
            dirs.extend(self.search.default_dirs(native));
        }
        let mut seen_dirs = HashSet::new();
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for dir in dirs {
            let Some(located) = self.manifest.locate(&dir.to_string_lossy()) else { continue };
            // Directories come in later, as parents; what matters is what is in them.
            if !seen_dirs.insert(located.clone()) {
                continue;
            }
            let names: Vec<String> = self
                .manifest
                .entries
                .range(located.clone()..)
                .map(|(path, _)| path)
                .take_while(|path| path.starts_with(&located))
                .filter(|path| path.parent() == Some(located.as_path()))
                .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
                .filter(|name| (name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
                .collect();
            for name in names {
                let Some(real) = self.manifest.locate(&dir.join(&name).to_string_lossy()) else { continue };
                let Some(Entry { kind: Kind::File { source }, .. }) = self.manifest.get(&real) else { continue };
                let Ok(Some(info)) = elf::read_elf(source) else { continue };
                // The soname link is what ld.so opens (ldconfig makes it; the resolver copied it).
                if info.e_type != goblin::elf::header::ET_DYN || info.soname.as_deref() != Some(name.as_str()) {
                    continue;
                }
                let flags = super::ldcache::cache_flags(&info.arch());
                if seen.insert((name.clone(), flags)) {
                    entries.push(super::ldcache::CacheEntry { soname: name.clone(), path: dir.join(&name), flags, hwcap: 0 });
                }
            }
        }
        let reason = Reason::Rule {
            rule: "ld-so-cache".into(),
            why: "the dynamic loader and `ldconfig -p` read /etc/ld.so.cache: written for the libraries of this rootfs only".into(),
            trigger: None,
        };
        let content = super::ldcache::write(&entries);
        self.insert(Entry { path: cache_path.into(), kind: Kind::Data { content }, mode: 0o644, uid: 0, gid: 0, capability: None, reason });
    }

    /// Entries the run-time mounts cover (a lab file copied to /tmp, a library
    /// found through an RPATH under /tmp): kept, but said, with their profile line.
    fn note_covered(&mut self) {
        // One note per covered tree (the entries are in order, parents first).
        let mut noted: Vec<(PathBuf, &str, &str, usize)> = Vec::new();
        for (path, entry) in &self.manifest.entries {
            if matches!(entry.reason, Reason::Skeleton { .. }) {
                continue;
            }
            match noted.last_mut() {
                Some((top, _, _, count)) if path.starts_with(&*top) => *count += 1,
                _ => {
                    if let Some((mount, what)) = covered(path) {
                        noted.push((path.clone(), mount, what, 0));
                    }
                }
            }
        }
        for (path, mount, what, count) in noted {
            let from = self.origin_of(&path).map(|o| format!(" (from {o})")).unwrap_or_default();
            let holding = if count > 0 { format!(" and the {count} entries in it") } else { String::new() };
            let message = format!(
                "{}{from}{holding}: under {mount}, where the sandbox mounts {what} at run time: in the rootfs but hidden inside",
                shown(&path)
            );
            self.manifest.notes.push(Note { message });
        }
    }

    fn note_foreign(&mut self) {
        let Some(first) = self.foreign.first() else { return };
        let more = match self.foreign.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let message = format!(
            "{}{more}: ELF files for another machine than this one; copied as data, their libraries are not looked up",
            shown(first)
        );
        self.manifest.notes.push(Note { message });
    }

    // ----- the skeleton, lab files, locales and zones -------------------------------------------

    fn add_skeleton(&mut self, profile: &Profile) {
        for link in MERGED_USR_LINKS {
            if let Ok(target) = fs::read_link(link) {
                let why = || Reason::Skeleton { why: "the host merges /usr: programs and ELF interpreters name these paths".into() };
                let resolved = lexical_join(Path::new("/"), &target);
                if resolved.is_dir() {
                    // The target exists inside too, so the link never dangles.
                    self.insert(Entry::dir(resolved, 0o755, why()));
                    self.insert(Entry::link(link.into(), target, why()));
                }
            }
        }
        for (path, major, minor) in skeleton::DEVICES {
            let why = "a device every program may open; namespace mode mounts its own /dev over it".into();
            let device = Kind::Device { major: *major, minor: *minor };
            self.insert(Entry {
                path: path.into(),
                kind: device,
                mode: 0o666,
                uid: 0,
                gid: 0,
                capability: None,
                reason: Reason::Skeleton { why },
            });
        }
        for (path, target) in skeleton::DEV_LINKS {
            self.insert(Entry::link(path.into(), target.into(), Reason::Skeleton { why: "a standard link of /dev".into() }));
        }
        for dir in skeleton::dirs(profile) {
            let (uid, gid) = if dir.user_owned { (profile.user.uid, profile.user.gid) } else { (0, 0) };
            let path = PathBuf::from(&dir.path);
            self.insert(Entry { uid, gid, ..Entry::dir(path, dir.mode, Reason::Skeleton { why: dir.why.into() }) });
        }
        for file in skeleton::files(profile) {
            let reason = Reason::Skeleton { why: file.why.into() };
            self.insert(Entry::inline(file.path.into(), file.content, 0o644, reason));
        }
    }

    fn add_lab_files(&mut self, profile: &Profile) -> Result<(), ResolveError> {
        let owner = |path: &Path| {
            let home = Path::new(&profile.user.home);
            if profile.user.uid != 0 && path.starts_with(home) { (profile.user.uid, profile.user.gid) } else { (0, 0) }
        };
        for copy in &profile.rootfs.copy {
            let to = self.place(&copy.to).ok_or_else(|| ResolveError::Outside { origin: copy.origin.clone(), path: copy.to.clone() })?;
            let items = labfiles::walk(&copy.from, &mut self.filesystems).map_err(|e| ResolveError::Host {
                origin: Some(copy.origin.clone()),
                path: e.path,
                cause: format!("cannot be copied: {}", e.cause),
                fix: e.fix.into(),
            })?;
            let single_file = matches!(items.first(), Some(item) if matches!(item.kind, LabKind::File));
            // A file copied to `dir/` keeps its name; to a path without `/`, it takes that name.
            let base = match copy.from.file_name() {
                Some(name) if single_file && copy.to.ends_with('/') => to.join(name),
                _ => to,
            };
            if base == Path::new("/") && single_file {
                return Err(ResolveError::Outside { origin: copy.origin.clone(), path: copy.to.clone() });
            }
            for item in items {
                let path = if item.relative.as_os_str().is_empty() { base.clone() } else { base.join(&item.relative) };
                let source = if item.relative.as_os_str().is_empty() { copy.from.clone() } else { copy.from.join(&item.relative) };
                let (uid, gid) = owner(&path);
                let kind = match item.kind {
                    LabKind::Symlink(target) => Kind::Symlink { target },
                    LabKind::Dir => Kind::Dir,
                    LabKind::File => Kind::File { source: source.clone() },
                    LabKind::Other => {
                        let message = format!("{}: a device, socket or fifo in a lab folder; left out", shown(&source));
                        self.manifest.notes.push(Note { message });
                        continue;
                    }
                };
                let host_mode = item.stat.st_mode & 0o7777;
                let is_file = matches!(kind, Kind::File { .. });
                let host_capability = if is_file { read_capability(&source) } else { None };
                let special = special_bits(host_mode, is_file, copy.keep_special_bits, host_capability.is_some());
                let capability = host_capability.filter(|_| copy.keep_special_bits);
                let mode = match kind {
                    Kind::Symlink { .. } => 0o777,
                    _ if is_file && !copy.keep_special_bits => host_mode & !0o6000,
                    _ => host_mode,
                };
                let reason = Reason::LabFile { origin: copy.origin.clone(), special };
                self.insert_replacing(Entry { path, kind, mode, uid, gid, capability, reason });
            }
        }
        for write in &profile.rootfs.write {
            let path =
                self.place(&write.path).ok_or_else(|| ResolveError::Outside { origin: write.origin.clone(), path: write.path.clone() })?;
            let (uid, gid) = owner(&path);
            let reason = Reason::LabFile { origin: write.origin.clone(), special: None };
            let entry = Entry::inline(path, write.content.clone(), write.mode, reason);
            self.insert_replacing(Entry { uid, gid, ..entry });
        }
        Ok(())
    }

    /// The rootfs is mounted read-only: a `[[mounts]]` target must already be a directory in it.
    fn add_mount_points(&mut self, profile: &Profile) -> Result<(), ResolveError> {
        for mount in &profile.mounts {
            let path = self
                .place(&mount.target)
                .ok_or_else(|| ResolveError::Outside { origin: mount.origin.clone(), path: mount.target.clone() })?;
            if !self.manifest.entries.contains_key(&path) {
                self.insert(Entry::dir(path, 0o755, Reason::LabFile { origin: mount.origin.clone(), special: None }));
            }
        }
        Ok(())
    }

    fn add_timezones(&mut self, profile: &Profile) -> Result<(), ResolveError> {
        let zones = profile.rootfs.timezones.iter().chain(profile.rootfs.timezone.as_ref());
        for zone in zones {
            let path = Path::new("/usr/share/zoneinfo").join(&zone.value);
            let reason = Reason::Requested { what: format!("time zone {}", zone.value), origin: zone.origin.clone() };
            if !path.is_file() {
                return Err(ResolveError::MissingZone { zone: zone.clone() });
            }
            self.add_host_path(&path, reason).map_err(|e| e.into_resolve(Some(zone.origin.clone())))?;
        }
        if let Some(zone) = &profile.rootfs.timezone {
            let reason = Reason::Requested { what: format!("timezone = \"{}\"", zone.value), origin: zone.origin.clone() };
            let target = Path::new("/usr/share/zoneinfo").join(&zone.value);
            self.insert_replacing(Entry::link("/etc/localtime".into(), target, reason.clone()));
            self.insert_replacing(Entry::inline("/etc/timezone".into(), format!("{}\n", zone.value), 0o644, reason));
        }
        Ok(())
    }

    fn add_locales(&mut self, profile: &Profile) -> Result<(), ResolveError> {
        for wanted in &profile.rootfs.locales {
            let reason = Reason::Requested { what: format!("locale {}", wanted.value), origin: wanted.origin.clone() };
            match locale::find(Path::new("/"), &wanted.value) {
                None => return Err(ResolveError::MissingLocale { locale: wanted.clone() }),
                Some(locale::Found::BuiltIn) => {}
                Some(locale::Found::Directory(dir)) => {
                    let at = |e: HostError| e.into_resolve(Some(wanted.origin.clone()));
                    let real = self.add_host_path(&dir, reason.clone()).map_err(at)?;
                    self.add_tree(&real, &reason).map_err(at)?;
                }
                Some(locale::Found::Archive(file)) => {
                    self.add_host_path(&file, reason).map_err(|e| e.into_resolve(Some(wanted.origin.clone())))?;
                }
            }
        }
        if !profile.rootfs.locales.is_empty() {
            let reason = Reason::Rule { rule: "locale-alias".into(), why: "setlocale() reads locale name aliases".into(), trigger: None };
            let _ = self.add_host_path(Path::new("/usr/share/locale/locale.alias"), reason);
        }
        Ok(())
    }

    /// Translations of the programs in the rootfs for the profile's locales:
    /// the catalogs of text domains that belong to them (by program name, or
    /// by the dpkg package that installed them), and glibc's own.
    fn add_message_catalogs(&mut self, profile: &Profile) {
        let catalogs: Vec<(PathBuf, &Located<String>)> = profile
            .rootfs
            .locales
            .iter()
            .flat_map(|wanted| locale::message_languages(&wanted.value).into_iter().map(move |lang| (lang, wanted)))
            .map(|(lang, wanted)| (Path::new("/usr/share/locale").join(lang).join("LC_MESSAGES"), wanted))
            .filter(|(dir, _)| dir.is_dir())
            .collect();
        if catalogs.is_empty() {
            return; // C.UTF-8 and friends: nothing to translate, no need to ask dpkg
        }
        let mut domains: BTreeSet<String> = ["libc".to_string()].into();
        for (name, _) in &self.programs {
            domains.insert(name.clone());
        }
        for entry in self.manifest.files() {
            if let Kind::File { source } = &entry.kind
                && let Some(package) = self.dpkg.package_of(source)
            {
                domains.insert(package.split(' ').next().unwrap_or_default().to_string());
            }
        }
        for (dir, wanted) in catalogs {
            for domain in &domains {
                let catalog = dir.join(format!("{domain}.mo"));
                if catalog.is_file() {
                    let what = format!("translations ({domain}.mo) for locale {}", wanted.value);
                    let _ = self.add_host_path(&catalog, Reason::Requested { what, origin: wanted.origin.clone() });
                }
            }
        }
    }

    // ----- programs, ELF closure and rules -----------------------------------------------------

    /// A program named by the profile or a rule: the file, its `#!` interpreter,
    /// its ELF dependencies, and the rules its names fire.
    fn add_program(&mut self, path: &Path, reason: Reason) -> Result<(), ResolveError> {
        let chain = link_chain(path);
        let origin = reason.origin().cloned().or_else(|| reason.cause().and_then(|cause| self.origin_of(cause)));
        let real = self.add_host_path(path, reason).map_err(|e| e.into_resolve(origin))?;
        for name in chain.iter().chain(std::iter::once(&real)).filter_map(|p| p.file_name()) {
            self.programs.push((name.to_string_lossy().into_owned(), real.clone()));
        }
        if let Some((interpreter, argument)) = elf::shebang(&real) {
            let mut interpreters = vec![interpreter.clone()];
            // `#!/usr/bin/env python3`: env runs python3 from PATH, so take both.
            if interpreter.file_name().is_some_and(|n| n == "env")
                && let Some(name) = argument.as_deref().and_then(|a| a.split_whitespace().find(|w| !w.starts_with('-')))
            {
                interpreters.extend(lookup_on_system_path(name));
            }
            let shell = interpreters.last().and_then(|i| i.file_name()).is_some_and(|n| script::is_shell(&n.to_string_lossy()));
            if !shell {
                self.manifest.notes.push(Note {
                    message: format!(
                        "{} is a script run by {}: its interpreter was added, but programs the script itself runs are not detected; name them in `binaries`",
                        path.display(),
                        interpreter.display()
                    ),
                });
            }
            for interpreter in interpreters {
                self.add_program(&interpreter, Reason::Shebang { of: real.clone() })?;
            }
            if shell && self.scripts.insert(real.clone()) {
                self.add_script_commands(&real)?;
            }
        }
        self.fire_rules()
    }

    /// The programs a shell script runs (command words a shell parser sees),
    /// added like `binaries` when they are programs on the system PATH; a
    /// command whose name is built at run time gets a note instead of a guess.
    fn add_script_commands(&mut self, script_path: &Path) -> Result<(), ResolveError> {
        const MAX_SCRIPT: u64 = 4 << 20;
        let Ok(file) = fs::File::open(script_path) else { return Ok(()) };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_SCRIPT), &mut bytes).is_err() {
            return Ok(());
        }
        let found = script::callees(&String::from_utf8_lossy(&bytes));
        for (name, line) in found.commands {
            let program =
                if name.starts_with('/') { Some(PathBuf::from(&name)).filter(|p| is_executable(p)) } else { lookup_on_system_path(&name) };
            let Some(program) = program.filter(|p| fs::canonicalize(p).ok().as_deref() != Some(script_path)) else { continue };
            self.add_program(&program, Reason::Script { of: script_path.to_path_buf(), line })?;
        }
        if !found.unknown.is_empty() {
            let lines: Vec<String> =
                found.unknown.iter().take(5).map(|(word, line)| format!("line {line} `{}`", word.escape_debug())).collect();
            let more = if found.unknown.len() > 5 { format!(" and {} more", found.unknown.len() - 5) } else { String::new() };
            self.manifest.notes.push(Note {
                message: format!(
                    "{} runs commands whose names are built at run time ({}{more}): which programs they are cannot be known before it runs; name them in `binaries` if they are needed",
                    shown(script_path),
                    lines.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Resolve every queued ELF file, firing rules as programs and libraries
    /// appear, until nothing new comes in.
    fn settle(&mut self) -> Result<(), ResolveError> {
        loop {
            while let Some(pending) = self.pending.pop_front() {
                self.scan_elf(pending)?;
            }
            let before = self.manifest.entries.len();
            self.fire_rules()?;
            if self.pending.is_empty() && self.manifest.entries.len() == before {
                return Ok(());
            }
        }
    }

    fn scan_elf(&mut self, pending: PendingElf) -> Result<(), ResolveError> {
        let info = match elf::read_elf(&pending.path) {
            Ok(Some(info)) => info,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.manifest
                    .notes
                    .push(Note { message: format!("{}: not a readable ELF file ({e}); copied as is", pending.path.display()) });
                return Ok(());
            }
        };
        if Arch::native().is_some_and(|native| !native.can_load(&info.arch())) && !self.is_program(&pending.path) {
            // Firmware and emulator images (/usr/share/qemu): data for this machine.
            self.foreign.push(pending.path);
            return Ok(());
        }
        if let Some(interp) = &info.interpreter {
            let reason = Reason::Interpreter { of: pending.path.clone() };
            if let Err(e) = self.add_host_path(interp, reason) {
                let error = e.into_resolve(self.origin_of(&pending.path));
                return Err(match error {
                    ResolveError::Host { origin, path, cause, .. } => ResolveError::Host {
                        origin,
                        cause: format!("{cause} (it is the ELF interpreter of {})", shown(&pending.path)),
                        fix: "install the loader it names, or leave the program out".into(),
                        path,
                    },
                    other => other,
                });
            }
        }
        let requester = super::search::Requester { path: &pending.load_path, info: &info, loader_rpaths: &pending.loader_rpaths };
        let loader_rpaths = requester.loader_rpaths_for_dependencies();
        for name in &info.needed {
            if self.soname_seen.insert(name.clone()) {
                self.sonames.push((name.clone(), pending.path.clone()));
            }
            match self.search.find(name, &requester) {
                Some(found) => {
                    let reason = Reason::Needed { of: pending.path.clone(), how: found.how.to_string() };
                    let real = match self.add_host_path(&found.path, reason) {
                        Ok(real) => real,
                        Err(e) => return Err(e.into_resolve(self.origin_of(&pending.path))),
                    };
                    self.queue_elf(real, found.path.clone(), loader_rpaths.clone());
                }
                None => self.manifest.notes.push(Note {
                    message: format!("{} needs {name}, which is not on this host: it will fail to load inside too", pending.path.display()),
                }),
            }
        }
        Ok(())
    }

    /// A program named by the profile or a rule: its arch is not second-guessed.
    fn is_program(&self, path: &Path) -> bool {
        self.programs.iter().any(|(_, real)| real == path)
    }

    fn queue_elf(&mut self, path: PathBuf, load_path: PathBuf, loader_rpaths: Vec<(PathBuf, Vec<String>)>) {
        if self.scanned.insert(path.clone()) {
            self.pending.push_back(PendingElf { path, load_path, loader_rpaths });
        }
    }

    fn fire_rules(&mut self) -> Result<(), ResolveError> {
        for rule in RULES {
            for when in rule.when {
                let triggers: Vec<(String, PathBuf)> = match when {
                    When::Program(p) => matching(p, &self.programs),
                    When::Library(p) => matching(p, &self.sonames),
                };
                for (name, trigger) in triggers {
                    if self.fired.insert((rule.id, name.clone())) {
                        let reason = Reason::Rule { rule: rule.id.into(), why: squash(rule.why), trigger: Some(trigger) };
                        for add in rule.add {
                            self.apply(add, &name, &reason)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, add: &Add, name: &str, reason: &Reason) -> Result<(), ResolveError> {
        match *add {
            Add::File(pattern) => {
                for path in self.expand(pattern, name) {
                    let _ = self.add_host_path(&path, reason.clone());
                }
            }
            Add::Tree(pattern) => {
                for path in self.expand(pattern, name) {
                    if let Ok(real) = self.add_host_path(&path, reason.clone()) {
                        let origin = reason.cause().and_then(|cause| self.origin_of(cause));
                        self.add_tree(&real, reason).map_err(|e| e.into_resolve(origin))?;
                    }
                }
            }
            Add::Program(pattern) => {
                for path in self.expand(pattern, name) {
                    self.add_program(&path, reason.clone())?;
                }
            }
            Add::Package { name: package, fallback } => {
                if self.dpkg.is_empty() {
                    return self.apply(&Add::Tree(fallback), name, reason);
                }
                let pattern = glob::Pattern::new(package).expect("rule patterns are tested");
                let files: Vec<PathBuf> = self
                    .dpkg
                    .packages_matching(&pattern)
                    .into_iter()
                    .flat_map(|p| self.dpkg.files_of(p).iter().cloned())
                    .filter(|f| !rules::PACKAGE_EXCLUDES.iter().any(|x| f.starts_with(x)))
                    .collect();
                for file in files {
                    // Directories come in as parents of the files they hold.
                    if fs::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                        let _ = self.add_host_path(&file, reason.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Host paths a rule pattern names, with its variables and globs expanded.
    fn expand(&self, pattern: &str, name: &str) -> Vec<PathBuf> {
        let mut patterns = vec![pattern.replace("{triplet}", &self.triplet).replace("{name}", name)];
        for (var, values) in [("{terminfo}", rules::TERMINFO_DIRS), ("{term}", rules::COMMON_TERMINALS)] {
            patterns = patterns
                .into_iter()
                .flat_map(|p| if p.contains(var) { values.iter().map(|v| p.replace(var, v)).collect() } else { vec![p] })
                .collect();
        }
        let mut paths: Vec<PathBuf> =
            patterns.iter().filter_map(|p| glob::glob(p).ok()).flat_map(|paths| paths.filter_map(Result::ok)).collect();
        paths.sort();
        paths
    }

    // ----- host paths -------------------------------------------------------------------------

    /// Add a host path at the same place inside, link by link: every symlink on
    /// the way (/lib -> usr/lib, /etc/alternatives/...) becomes the same symlink
    /// inside, and its target follows. Returns the real host path reached.
    fn add_host_path(&mut self, path: &Path, reason: Reason) -> Result<PathBuf, HostError> {
        let mut todo: Vec<PathBuf> = Vec::new();
        let mut reason = reason;
        let mut current = PathBuf::from("/");
        // `..` is kept (an RPATH's `$ORIGIN/../lib`): `current` holds no symlink,
        // so going up is what the kernel does too.
        let mut rest: VecDeque<PathBuf> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(name) => Some(PathBuf::from(name)),
                std::path::Component::ParentDir => Some(PathBuf::from("..")),
                _ => None,
            })
            .collect();
        let mut links = 0;
        while let Some(component) = rest.pop_front() {
            if component == Path::new("..") {
                current.pop();
                continue;
            }
            let candidate = current.join(&component);
            let meta = fs::symlink_metadata(&candidate).map_err(|e| HostError::Io(candidate.clone(), e))?;
            if let Some(fs) = self.filesystems.pseudo_at(meta.dev(), &candidate) {
                return Err(HostError::Pseudo(candidate, fs));
            }
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return Err(HostError::Io(candidate, std::io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = fs::read_link(&candidate).map_err(|e| HostError::Io(candidate.clone(), e))?;
                let last = rest.is_empty();
                let link_reason = if last { reason.clone() } else { Reason::Parent { of: path.to_path_buf() } };
                self.insert(Entry::link(candidate.clone(), target.clone(), link_reason));
                if last {
                    reason = Reason::LinkTarget { of: candidate.clone() };
                }
                // `current` holds no symlink, so `..` in the target is lexical here.
                let resolved = lexical_join(&current, &target);
                let mut new_rest: VecDeque<PathBuf> = components(&resolved).into();
                new_rest.extend(rest.drain(..));
                rest = new_rest;
                current = PathBuf::from("/");
                continue;
            }
            if rest.is_empty() {
                self.insert_host(&candidate, &meta, reason.clone());
                if meta.is_file() {
                    todo.push(candidate.clone());
                }
            } else if !meta.is_dir() {
                return Err(HostError::Io(candidate, std::io::Error::from_raw_os_error(libc::ENOTDIR)));
            }
            current = candidate;
        }
        for file in todo {
            self.queue_elf(file.clone(), file, Vec::new());
        }
        Ok(current)
    }

    /// Everything under a host directory; symlinks inside are kept as links and
    /// their targets follow.
    fn add_tree(&mut self, dir: &Path, reason: &Reason) -> Result<(), HostError> {
        let listing = fs::read_dir(dir).map_err(|e| HostError::Io(dir.to_path_buf(), e))?;
        let mut names: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in names {
            let meta = fs::symlink_metadata(&path).map_err(|e| HostError::Io(path.clone(), e))?;
            if meta.is_dir() {
                if let Some(fs) = self.filesystems.pseudo_at(meta.dev(), &path) {
                    return Err(HostError::Pseudo(path, fs));
                }
                self.insert_host(&path, &meta, reason.clone());
                self.add_tree(&path, reason)?;
            } else {
                // A dangling link in a host tree would dangle inside too: leave it out.
                if meta.file_type().is_symlink() && fs::metadata(&path).is_err() {
                    continue;
                }
                match self.add_host_path(&path, reason.clone()) {
                    // /etc/mtab -> ../proc/self/mounts: the link works inside, where /proc is mounted.
                    Err(HostError::Pseudo(..)) if meta.file_type().is_symlink() => {}
                    other => {
                        other?;
                    }
                }
            }
        }
        Ok(())
    }

    fn insert_host(&mut self, path: &Path, meta: &fs::Metadata, reason: Reason) {
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File { source: path.to_path_buf() }
        } else {
            // Devices, sockets and fifos of the host are never copied: /dev is made at run time.
            self.manifest.notes.push(Note { message: format!("{}: not a regular file, directory or link; left out", path.display()) });
            return;
        };
        let capability = if meta.is_file() { read_capability(path) } else { None };
        self.insert(Entry {
            path: path.to_path_buf(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            capability,
            reason,
        });
    }

    /// First writer wins: the first reason found is the one `why` reports.
    fn insert(&mut self, entry: Entry) {
        self.manifest.entries.entry(entry.path.clone()).or_insert(entry);
    }

    /// Lab files override what the host provides at the same path.
    fn insert_replacing(&mut self, entry: Entry) {
        self.manifest.entries.insert(entry.path.clone(), entry);
    }

    /// Where an absolute path named by the profile lands: through the
    /// manifest's own links (a lab file at /lib/x lands in /usr/lib/x).
    fn place(&self, path: &str) -> Option<PathBuf> {
        self.manifest.locate(path)
    }

    /// Every entry's directories exist as directories (mode as on the host, or 0755).
    fn add_parents(&mut self) {
        let mut missing = Vec::new();
        for path in self.manifest.entries.keys() {
            let mut parent = path.parent();
            while let Some(dir) = parent {
                if self.manifest.entries.contains_key(dir) || missing.iter().any(|(d, _)| d == dir) {
                    break;
                }
                missing.push((dir.to_path_buf(), path.clone()));
                parent = dir.parent();
            }
        }
        for (dir, child) in missing {
            let mode = fs::metadata(&dir).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o755);
            self.insert(Entry::dir(dir, mode, Reason::Parent { of: child }));
        }
    }
}

impl Entry {
    fn dir(path: PathBuf, mode: u32, reason: Reason) -> Entry {
        Entry { path, kind: Kind::Dir, mode, uid: 0, gid: 0, capability: None, reason }
    }
    fn link(path: PathBuf, target: PathBuf, reason: Reason) -> Entry {
        Entry { path, kind: Kind::Symlink { target }, mode: 0o777, uid: 0, gid: 0, capability: None, reason }
    }
    fn inline(path: PathBuf, content: String, mode: u32, reason: Reason) -> Entry {
        Entry { path, kind: Kind::Inline { content }, mode, uid: 0, gid: 0, capability: None, reason }
    }
}

// ----- helpers without state ------------------------------------------------------------------

fn default_triplet() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        _ => "x86_64-linux-gnu",
    }
}

/// What `why` says about a lab file's setuid and setgid bits and capabilities.
fn special_bits(mode: u32, is_file: bool, keep: bool, capability: bool) -> Option<String> {
    let mut bits = Vec::new();
    if is_file && mode & 0o4000 != 0 {
        bits.push("setuid");
    }
    if is_file && mode & 0o2000 != 0 {
        bits.push("setgid");
    }
    if capability {
        bits.push("file capabilities");
    }
    if bits.is_empty() {
        return None;
    }
    let bits = bits.join(" and ");
    Some(if keep {
        format!("{bits} kept, as `keep_special_bits = true` asks")
    } else {
        format!(
            "{bits} dropped: a lab file keeps setuid, setgid and file capabilities only when its [[rootfs.copy]] says `keep_special_bits = true`"
        )
    })
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn matching(pattern: &str, names: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    let pattern = glob::Pattern::new(pattern).expect("rule patterns are tested");
    names.iter().filter(|(n, _)| pattern.matches(n)).cloned().collect()
}

/// Every link on the way from `path` to its final target (`vi`, `/etc/alternatives/vi`, ...).
fn link_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain = vec![path.to_path_buf()];
    let mut current = path.to_path_buf();
    while let Ok(target) = fs::read_link(&current) {
        current = lexical_join(current.parent().unwrap_or(Path::new("/")), &target);
        if chain.contains(&current) || chain.len() > MAX_LINKS {
            break;
        }
        chain.push(current.clone());
    }
    chain
}

pub(crate) fn lookup_on_system_path(name: &str) -> Option<PathBuf> {
    SYSTEM_PATH.iter().map(|dir| Path::new(dir).join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The run-time mount that covers `path` inside, if one does.
fn covered(path: &Path) -> Option<(&'static str, &'static str)> {
    COVERED_AT_RUN.iter().copied().find(|(mount, _)| path.starts_with(mount) && path != Path::new(mount))
}

/// A binary the sandbox could not run: it, or a link on its way, lies under
/// a directory every sandbox covers at run time (exit 127 inside).
fn refuse_covered(binary: &Located<String>, path: &Path) -> Result<(), ResolveError> {
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    for at in link_chain(path).iter().chain(std::iter::once(&real)) {
        if let Some((mount, what)) = covered(at) {
            return Err(ResolveError::Host {
                origin: Some(binary.origin.clone()),
                path: at.clone(),
                cause: format!(
                    "`{}` lies under {mount}, where the sandbox mounts {what} at run time: the program would be hidden inside (exit 127)",
                    binary.value.escape_debug()
                ),
                fix: format!("install it outside {mount} (for example in /usr/local/bin or /opt) and name that path"),
            });
        }
    }
    Ok(())
}

/// A profile's binary: an absolute path, or a name on the system PATH.
pub fn find_binary(binary: &Located<String>) -> Result<PathBuf, ResolveError> {
    let name = &binary.value;
    let found = if name.starts_with('/') { Some(PathBuf::from(name)).filter(|p| is_executable(p)) } else { lookup_on_system_path(name) };
    found.ok_or_else(|| ResolveError::BinaryNotFound { binary: binary.clone(), suggestion: closest_program(name) })
}

/// The program on the system PATH whose name is closest to a misspelled one.
fn closest_program(name: &str) -> Option<String> {
    let wanted = Path::new(name).file_name()?.to_str()?;
    SYSTEM_PATH
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()))
        .map(|candidate| (strsim::jaro_winkler(wanted, &candidate), candidate))
        .filter(|(score, _)| *score > 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, c)| c)
}

fn read_capability(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: both pointers are valid for the given lengths; the name is NUL-terminated.
    let n = unsafe { libc::lgetxattr(c_path.as_ptr(), c"security.capability".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn lexical_join_clamps_at_root() {
        assert_eq!(lexical_join(Path::new("/usr/bin"), Path::new("../../../../etc")), PathBuf::from("/etc"));
        assert_eq!(lexical_join(Path::new("/a"), Path::new("/b/./c")), PathBuf::from("/b/c"));
        assert_eq!(lexical_join(Path::new("/"), Path::new("usr/lib")), PathBuf::from("/usr/lib"));
    }
}

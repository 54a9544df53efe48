//! Where would ld.so find a library? A re-implementation of glibc's search
//! (`_dl_map_object` in `elf/dl-load.c`) over a host root, without running
//! the loader:
//!
//! 1. a name containing '/' is used as a path (after `$ORIGIN` expansion);
//! 2. DT_RPATH of the requesting object, then of the object that loaded it,
//!    and so on up to the executable, unless the requester has DT_RUNPATH;
//! 3. (LD_LIBRARY_PATH: ignored, the sandbox runs with a clean environment);
//! 4. DT_RUNPATH of the requesting object only;
//! 5. ld.so.cache, only entries whose flags fit the requester's ABI;
//! 6. the loader's default ("trusted") directories.
//!
//! Unless DF_1_NODEFLIB forbids 5 and 6. A candidate counts only if it is an
//! ELF file of the requester's class, byte order and machine; otherwise the
//! loader keeps searching, and so do we.
//!
//! Deliberate differences from ld.so:
//! - as a last resort we look in the ld.so.conf directories: that catches a
//!   stale cache, and `How::LdSoConf` says so (the real loader would fail);
//! - glibc-hwcaps subdirectories (`glibc-hwcaps/x86-64-v3/`, ...) and their
//!   cache entries are skipped: they are chosen per CPU, and the baseline
//!   library we pick instead runs on any CPU;
//! - relative paths (a relative rpath entry, an empty one, a relative name)
//!   are taken relative to `/`, since we cannot know the working directory.
//!
//! All paths in this module are paths inside the root (absolute, as the
//! loader in that tree would see them); `host_path` maps them to this machine.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use goblin::elf::header;

use super::elf::{self, Arch, ElfClass, ElfInfo};
use super::ldcache::{self, LdCache, LdCacheError};

/// Linux's limit on symlinks followed while resolving one path (MAXSYMLINKS).
const MAX_SYMLINK_HOPS: usize = 40;

/// An object whose DT_NEEDED entries are being looked up. A borrowed view,
/// so walking a dependency tree copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// Where the object was loaded from (inside the root); `$ORIGIN` is its
    /// directory. glibc computes it differently for the two kinds of object,
    /// so pass:
    /// - for the executable, its fully resolved path ([`LibrarySearch::realpath`]):
    ///   glibc reads the executable's origin from `/proc/self/exe`;
    /// - for a library, the path it was found at ([`Found::path`]), symlinks
    ///   NOT resolved: glibc uses the name it opened (`_dl_new_object` in
    ///   `elf/dl-object.c`), so libc found as /lib/x86_64-linux-gnu/libc.so.6
    ///   has origin /lib/x86_64-linux-gnu even when /lib links to usr/lib.
    pub path: &'a Path,
    pub info: &'a ElfInfo,
    /// The objects up the load chain with their effective DT_RPATH, from the
    /// executable down to the object that loaded this one (the order a walk
    /// from the executable appends them; see
    /// [`loader_rpaths_for_dependencies`](Self::loader_rpaths_for_dependencies)).
    /// Objects without DT_RPATH, or with a DT_RUNPATH (which voids their
    /// DT_RPATH), contribute nothing and may be left out. Each object's
    /// `$ORIGIN` is the directory of its path, as for `path` above.
    pub loader_rpaths: &'a [(PathBuf, Vec<String>)],
}

impl<'a> Requester<'a> {
    pub fn new(path: &'a Path, info: &'a ElfInfo, loader_rpaths: &'a [(PathBuf, Vec<String>)]) -> Self {
        Requester { path, info, loader_rpaths }
    }

    pub fn arch(&self) -> Arch {
        self.info.arch()
    }

    /// What `$ORIGIN` expands to for this object.
    pub fn origin(&self) -> PathBuf {
        parent_dir(&absolute(self.path))
    }

    /// The `loader_rpaths` of the objects this one loads: the chain so far
    /// plus this object's own effective DT_RPATH, if any.
    pub fn loader_rpaths_for_dependencies(&self) -> Vec<(PathBuf, Vec<String>)> {
        let mut chain = self.loader_rpaths.to_vec();
        let own = self.info.effective_rpath();
        if !own.is_empty() {
            chain.push((self.path.to_path_buf(), own.to_vec()));
        }
        chain
    }

    /// The DT_RPATH lists to search, in glibc's order: the requester's own,
    /// then its loaders' from the nearest up to the executable
    /// (`l = loader; l; l = l->l_loader` in `_dl_map_object`), each with the
    /// object it belongs to and whether it is inherited.
    fn rpath_chain(&self) -> impl Iterator<Item = (&'a Path, &'a [String], bool)> + 'a {
        let own = std::iter::once((self.path, self.info.effective_rpath(), false));
        let loaders = self.loader_rpaths.iter().rev().map(|(object, rpath)| (object.as_path(), rpath.as_slice(), true));
        own.chain(loaders)
    }
}

/// A library the search accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path exactly as the loader would open it, symlinks and `..`
    /// included (e.g. /lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr host).
    pub path: PathBuf,
    pub how: How,
}

/// Which step of the search produced a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The name contains a '/', so it is a path.
    Path,
    /// A DT_RPATH entry of `of`: the requester itself, or (`inherited`) an
    /// object up its load chain.
    Rpath {
        entry: String,
        dir: PathBuf,
        of: PathBuf,
        inherited: bool,
    },
    /// A DT_RUNPATH entry of the requester `of`.
    Runpath {
        entry: String,
        dir: PathBuf,
        of: PathBuf,
    },
    LdCache,
    DefaultDir {
        dir: PathBuf,
    },
    /// Listed in ld.so.conf but not in ld.so.cache: ld.so itself would not
    /// look here.
    LdSoConf {
        dir: PathBuf,
    },
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            How::Path => write!(f, "used as a path, since the name contains a '/'"),
            How::Rpath { entry, dir, of, inherited } => {
                write!(f, "found in RPATH {entry} of {}", of.display())?;
                write_expansion(f, entry, dir)?;
                if *inherited {
                    write!(f, ", inherited: a program's RPATH also applies to the libraries it loads")?;
                }
                Ok(())
            }
            How::Runpath { entry, dir, of } => {
                write!(f, "found in RUNPATH {entry} of {}", of.display())?;
                write_expansion(f, entry, dir)
            }
            How::LdCache => write!(f, "found via ld.so.cache"),
            How::DefaultDir { dir } => write!(f, "found in the default directory {}", dir.display()),
            How::LdSoConf { dir } => write!(
                f,
                "found in {}, listed in ld.so.conf but missing from ld.so.cache \
                 (the loader reads only the cache: run ldconfig)",
                dir.display()
            ),
        }
    }
}

/// "$ORIGIN/../lib (= /opt/x/bin/../lib)" when expansion changed something.
fn write_expansion(f: &mut fmt::Formatter<'_>, entry: &str, dir: &Path) -> fmt::Result {
    if Path::new(entry) != dir {
        write!(f, " (= {})", dir.display())?;
    }
    Ok(())
}

/// A candidate the search looked at and passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub how: How,
    pub why: Rejection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    NotElf,
    WrongArch { wanted: Arch, found: Arch },
    Unreadable(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Missing => write!(f, "does not exist"),
            Rejection::NotElf => write!(f, "is not an ELF file"),
            Rejection::WrongArch { wanted, found } => {
                write!(f, "is {}, but {} is needed", describe_arch(found), describe_arch(wanted))
            }
            Rejection::Unreadable(why) => write!(f, "cannot be read: {why}"),
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (tried because: {})", self.path.display(), self.why, self.how)
    }
}

/// "64-bit x86-64", "32-bit i386", for messages.
pub fn describe_arch(arch: &Arch) -> String {
    let machine = match arch.machine {
        header::EM_X86_64 if arch.class == ElfClass::Elf32 => "x32".to_owned(),
        header::EM_X86_64 => "x86-64".to_owned(),
        header::EM_386 => "i386".to_owned(),
        header::EM_AARCH64 => "AArch64".to_owned(),
        header::EM_ARM => "ARM".to_owned(),
        header::EM_PPC64 => "PowerPC64".to_owned(),
        header::EM_PPC => "PowerPC".to_owned(),
        header::EM_S390 => "s390".to_owned(),
        header::EM_RISCV => "RISC-V".to_owned(),
        header::EM_MIPS => "MIPS".to_owned(),
        header::EM_LOONGARCH => "LoongArch".to_owned(),
        other => format!("machine {other}"),
    };
    let order = if arch.little_endian { "" } else { " big-endian" };
    format!("{}-bit{order} {machine}", arch.class.bits())
}

/// The search over one root directory (the host: `/`).
#[derive(Debug)]
pub struct LibrarySearch {
    root: PathBuf,
    cache: LdCache,
    /// Why the cache could not be used, when it exists but is unreadable or
    /// broken (ld.so then silently works without it).
    cache_problem: Option<LdCacheError>,
    conf_dirs: Vec<PathBuf>,
    native: Option<Arch>,
    triplet: Option<String>,
}

impl LibrarySearch {
    /// Reads `root/etc/ld.so.cache` and `root/etc/ld.so.conf`. A missing or
    /// broken cache leaves the cache step empty, as for ld.so; see
    /// [`cache_problem`](Self::cache_problem).
    pub fn from_root(root: &Path) -> LibrarySearch {
        let (cache, cache_problem) = match LdCache::load(root) {
            Ok(cache) => (cache, None),
            Err(LdCacheError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => (LdCache::empty(), None),
            Err(problem) => (LdCache::empty(), Some(problem)),
        };
        let conf_dirs = ldcache::ld_so_conf_dirs(root);
        let mut search = LibrarySearch::new(root, cache, conf_dirs);
        search.cache_problem = cache_problem;
        search
    }

    /// A search with an explicit cache and ld.so.conf directory list.
    pub fn new(root: &Path, cache: LdCache, conf_dirs: Vec<PathBuf>) -> LibrarySearch {
        let mut search =
            LibrarySearch { root: root.to_path_buf(), cache, cache_problem: None, conf_dirs, native: Arch::native(), triplet: None };
        search.triplet = search.detect_triplet();
        search
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn cache(&self) -> &LdCache {
        &self.cache
    }

    pub fn cache_problem(&self) -> Option<&LdCacheError> {
        self.cache_problem.as_ref()
    }

    pub fn conf_dirs(&self) -> &[PathBuf] {
        &self.conf_dirs
    }

    /// The host's Debian-style multiarch triplet ("x86_64-linux-gnu"): the
    /// directory holding libc.so.6 per ld.so.cache, else the triplet of the
    /// host machine when the root has a /usr/lib/<triplet> directory.
    /// None on non-multiarch systems (Fedora, Arch, ...).
    pub fn multiarch_triplet(&self) -> Option<&str> {
        self.triplet.as_deref()
    }

    fn detect_triplet(&self) -> Option<String> {
        let native = self.native?;
        let from_cache = self
            .cache
            .lookup("libc.so.6", &native)
            .and_then(|libc| libc.path.parent()?.file_name()?.to_str().map(str::to_owned))
            .filter(|dir| dir.contains("-linux-"));
        from_cache.or_else(|| machine_triplet(&native).filter(|t| self.has_multiarch_dir(t)).map(str::to_owned))
    }

    fn has_multiarch_dir(&self, triplet: &str) -> bool {
        ["/lib", "/usr/lib"].iter().any(|lib| self.host_path(&Path::new(lib).join(triplet)).is_dir())
    }

    fn triplet_for(&self, arch: &Arch) -> Option<&str> {
        let is_native = self.native.is_some_and(|n| n.can_load(arch) && ldcache::cache_flags(&n) == ldcache::cache_flags(arch));
        match self.multiarch_triplet() {
            Some(triplet) if is_native => Some(triplet),
            _ => machine_triplet(arch),
        }
    }

    /// The loader's trusted directories for programs of `arch`, in search
    /// order. Debian-style multiarch (glibc configured with
    /// slibdir=/lib/<triplet>, plus Debian's /lib and /usr/lib):
    /// /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib. Otherwise glibc's
    /// own layout: /lib64 + /usr/lib64 for 64-bit, /libx32 + /usr/libx32 for
    /// x32, /lib32 + /usr/lib32 for a Debian-style 32-bit add-on, else /lib
    /// + /usr/lib.
    pub fn default_dirs(&self, arch: &Arch) -> Vec<PathBuf> {
        if let Some(triplet) = self.triplet_for(arch).filter(|t| self.has_multiarch_dir(t)) {
            return ["/lib", "/usr/lib"]
                .iter()
                .map(|lib| Path::new(lib).join(triplet))
                .chain(["/lib", "/usr/lib"].map(PathBuf::from))
                .collect();
        }
        let lib = self.lib_dir_name(arch);
        vec![Path::new("/").join(lib), Path::new("/usr").join(lib)]
    }

    fn lib_dir_name(&self, arch: &Arch) -> &'static str {
        let is_64 = arch.class == ElfClass::Elf64;
        match arch.machine {
            header::EM_X86_64 if !is_64 => "libx32",
            _ if is_64 => "lib64",
            _ if self.native.is_some_and(|n| n.class == ElfClass::Elf64) && self.host_path(Path::new("/usr/lib32")).is_dir() => "lib32",
            _ => "lib",
        }
    }

    /// What `$LIB` expands to: the loader's slibdir without its leading
    /// '/' ("lib/x86_64-linux-gnu" on Debian, "lib64" on Fedora x86-64).
    fn lib_dst(&self, arch: &Arch) -> String {
        let first = self.default_dirs(arch).into_iter().next().unwrap_or_default();
        first.strip_prefix("/").unwrap_or(&first).display().to_string()
    }

    /// Where `path` (inside the root) is on this machine. Symlinks inside a
    /// non-`/` root are followed within that root, so an absolute link such
    /// as `lib64/ld-linux-x86-64.so.2 -> /lib/...` does not escape to the host.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        if self.root == Path::new("/") {
            return absolute(path);
        }
        in_root(&self.root, &self.realpath(path))
    }

    /// `path` with every symlink resolved, as a path inside the root. Missing
    /// components are kept as they are.
    pub fn realpath(&self, path: &Path) -> PathBuf {
        if self.root == Path::new("/") {
            return fs::canonicalize(path).unwrap_or_else(|_| absolute(path));
        }
        realpath_in_root(&self.root, path)
    }

    /// Where ld.so would find `name` (a DT_NEEDED entry) for `requester`.
    pub fn find(&self, name: &str, requester: &Requester) -> Option<Found> {
        self.search(name, requester, &mut None)
    }

    /// Like [`find`](Self::find), also listing every candidate passed over,
    /// in order: the material for explaining a missing library.
    pub fn find_traced(&self, name: &str, requester: &Requester) -> (Option<Found>, Vec<Rejected>) {
        let mut rejected = Some(Vec::new());
        let found = self.search(name, requester, &mut rejected);
        (found, rejected.unwrap_or_default())
    }

    fn search(&self, name: &str, requester: &Requester, trace: &mut Option<Vec<Rejected>>) -> Option<Found> {
        let arch = requester.arch();
        let mut attempt = |path: PathBuf, how: How| self.try_candidate(path, how, &arch, trace);
        if name.contains('/') {
            // glibc expands DSTs here too ("$ORIGIN/../lib/libx.so").
            let path = self.expand_dst(name, &requester.origin(), &arch)?;
            return attempt(absolute(Path::new(&path)), How::Path);
        }
        // A requester with DT_RUNPATH ignores every DT_RPATH, its loaders' too.
        if requester.info.runpath.is_empty() {
            for (object, rpath, inherited) in requester.rpath_chain() {
                let origin = parent_dir(&absolute(object));
                for (entry, dir) in self.expand_path_list(rpath, &origin, &arch) {
                    let how = How::Rpath { entry, dir: dir.clone(), of: absolute(object), inherited };
                    if let Some(found) = attempt(dir.join(name), how) {
                        return Some(found);
                    }
                }
            }
        }
        for (entry, dir) in self.expand_path_list(&requester.info.runpath, &requester.origin(), &arch) {
            let how = How::Runpath { entry, dir: dir.clone(), of: absolute(requester.path) };
            if let Some(found) = attempt(dir.join(name), how) {
                return Some(found);
            }
        }
        let default_dirs = self.default_dirs(&arch);
        if let Some(entry) = self.cache.lookup(name, &arch) {
            // DF_1_NODEFLIB also rejects cache entries in the default dirs.
            let forbidden = requester.info.nodeflib && default_dirs.iter().any(|d| entry.path.starts_with(d));
            if !forbidden && let Some(found) = attempt(entry.path.clone(), How::LdCache) {
                return Some(found);
            }
        }
        if !requester.info.nodeflib {
            for dir in &default_dirs {
                if let Some(found) = attempt(dir.join(name), How::DefaultDir { dir: dir.clone() }) {
                    return Some(found);
                }
            }
        }
        for dir in self.conf_dirs.iter().filter(|d| !default_dirs.contains(d)) {
            if let Some(found) = attempt(absolute(dir).join(name), How::LdSoConf { dir: dir.clone() }) {
                return Some(found);
            }
        }
        None
    }

    /// Accepts `path` when it is an ELF file `arch` can load, else records
    /// why not.
    fn try_candidate(&self, path: PathBuf, how: How, arch: &Arch, trace: &mut Option<Vec<Rejected>>) -> Option<Found> {
        match self.check_candidate(&path, arch) {
            Ok(()) => Some(Found { path, how }),
            Err(why) => {
                if let Some(rejected) = trace {
                    rejected.push(Rejected { path, how, why });
                }
                None
            }
        }
    }

    fn check_candidate(&self, path: &Path, wanted: &Arch) -> Result<(), Rejection> {
        match elf::read_arch(&self.host_path(path)) {
            Ok(Some(found)) if wanted.can_load(&found) => Ok(()),
            Ok(Some(found)) => Err(Rejection::WrongArch { wanted: *wanted, found }),
            Ok(None) => Err(Rejection::NotElf),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Rejection::Missing),
            Err(e) => Err(Rejection::Unreadable(e.to_string())),
        }
    }

    /// The directories of an rpath/runpath list, paired with the entry as
    /// written (`fillin_rpath` in glibc): an entry whose DST has no value is
    /// dropped, trailing slashes go, an empty entry means the working
    /// directory (taken as `/`).
    fn expand_path_list(&self, entries: &[String], origin: &Path, arch: &Arch) -> Vec<(String, PathBuf)> {
        entries
            .iter()
            .filter_map(|entry| {
                let expanded = self.expand_dst(entry, origin, arch)?;
                if expanded.is_empty() && !entry.is_empty() {
                    return None;
                }
                let trimmed = expanded.trim_end_matches('/');
                let dir = if trimmed.is_empty() { "/" } else { trimmed };
                Some((entry.clone(), absolute(Path::new(dir))))
            })
            .collect()
    }

    /// Replaces `$ORIGIN`, `$LIB`, `$PLATFORM` (or `${...}`) in `input` as
    /// glibc's `_dl_dst_substitute` does. None when a known token has no
    /// value: glibc then drops the whole path.
    fn expand_dst(&self, input: &str, origin: &Path, arch: &Arch) -> Option<String> {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            match dst_token(after) {
                Some((Dst::Origin, len)) => {
                    out.push_str(origin.to_str()?);
                    rest = &after[len..];
                }
                Some((Dst::Lib, len)) => {
                    out.push_str(&self.lib_dst(arch));
                    rest = &after[len..];
                }
                Some((Dst::Platform, len)) => {
                    out.push_str(platform(arch)?);
                    rest = &after[len..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    Origin,
    Lib,
    Platform,
}

/// The token right after a '$' and its length (braces included), following
/// glibc's `is_dst`: `$ORIGIN` must not run on into an identifier
/// (`$ORIGINAL` is not a token), `${ORIGIN}` needs its closing brace.
fn dst_token(after_dollar: &str) -> Option<(Dst, usize)> {
    [("ORIGIN", Dst::Origin), ("PLATFORM", Dst::Platform), ("LIB", Dst::Lib)]
        .into_iter()
        .find_map(|(name, dst)| is_dst(after_dollar, name).map(|len| (dst, len)))
}

fn is_dst(input: &str, name: &str) -> Option<usize> {
    if let Some(braced) = input.strip_prefix('{') {
        return braced.strip_prefix(name)?.starts_with('}').then_some(name.len() + 2);
    }
    let tail = input.strip_prefix(name)?;
    let runs_on = tail.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    (!runs_on).then_some(name.len())
}

/// `$PLATFORM`: the kernel's AT_PLATFORM for `arch`. glibc on x86 may refine
/// it per CPU ("haswell", "xeon_phi"); that cannot be known for a rootfs
/// meant to run anywhere, so the plain kernel value is used. None where the
/// kernel value depends on the CPU (ARM, PowerPC, ...): the entry is dropped.
fn platform(arch: &Arch) -> Option<&'static str> {
    match arch.machine {
        header::EM_X86_64 => Some("x86_64"),
        header::EM_386 => Some("i686"),
        header::EM_AARCH64 => Some("aarch64"),
        _ => None,
    }
}

/// The Debian multiarch triplet for `arch`.
pub fn machine_triplet(arch: &Arch) -> Option<&'static str> {
    let is_64 = arch.class == ElfClass::Elf64;
    let le = arch.little_endian;
    Some(match arch.machine {
        header::EM_X86_64 if is_64 => "x86_64-linux-gnu",
        header::EM_X86_64 => "x86_64-linux-gnux32",
        header::EM_386 => "i386-linux-gnu",
        header::EM_AARCH64 if le => "aarch64-linux-gnu",
        header::EM_AARCH64 => "aarch64_be-linux-gnu",
        header::EM_ARM if ldcache::cache_flags(arch) == ldcache::FLAG_ARM_LIBHF | ldcache::FLAG_ELF_LIBC6 => "arm-linux-gnueabihf",
        header::EM_ARM => "arm-linux-gnueabi",
        header::EM_PPC64 if le => "powerpc64le-linux-gnu",
        header::EM_PPC64 => "powerpc64-linux-gnu",
        header::EM_PPC => "powerpc-linux-gnu",
        header::EM_S390 if is_64 => "s390x-linux-gnu",
        header::EM_RISCV if is_64 => "riscv64-linux-gnu",
        header::EM_LOONGARCH if is_64 => "loongarch64-linux-gnu",
        header::EM_SPARCV9 => "sparc64-linux-gnu",
        header::EM_MIPS => mips_triplet(arch),
        _ => return None,
    })
}

fn mips_triplet(arch: &Arch) -> &'static str {
    const EF_MIPS_ABI2: u32 = 0x20;
    let n32 = arch.e_flags & EF_MIPS_ABI2 != 0;
    match (arch.class == ElfClass::Elf64, n32, arch.little_endian) {
        (true, _, true) => "mips64el-linux-gnuabi64",
        (true, _, false) => "mips64-linux-gnuabi64",
        (false, true, true) => "mips64el-linux-gnuabin32",
        (false, true, false) => "mips64-linux-gnuabin32",
        (false, false, true) => "mipsel-linux-gnu",
        (false, false, false) => "mips-linux-gnu",
    }
}

/// `path` made absolute against `/` (the only working directory we can
/// assume).
fn absolute(path: &Path) -> PathBuf {
    Path::new("/").join(path)
}

/// The directory part of an absolute path ("/" for "/x").
fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"))
}

fn in_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Resolves every symlink of `path` inside `root`, component by component,
/// the way the kernel would after a chroot (`..` of a symlinked directory
/// goes to the parent of its target). Returns a path inside the root.
fn realpath_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = PathBuf::from("/");
    let mut pending: Vec<PathBuf> = components_reversed(&absolute(path));
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        if component.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let next = resolved.join(&component);
        match fs::read_link(in_root(root, &next)) {
            Ok(target) if hops < MAX_SYMLINK_HOPS => {
                hops += 1;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                pending.extend(components_reversed(&target));
            }
            _ => resolved = next,
        }
    }
    resolved
}

/// The normal and `..` components of `path`, last first (a stack).
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::elf::read_elf;
    use crate::resolve::elf::tests::{gcc, skip};
    use std::os::unix::fs::symlink;
    use std::process::Command;

    const X86_64: Arch = Arch { class: ElfClass::Elf64, little_endian: true, machine: header::EM_X86_64, e_flags: 0 };

    fn host() -> LibrarySearch {
        LibrarySearch::from_root(Path::new("/"))
    }

    /// An ELF object read from the root, owning what a `Requester` borrows.
    struct Object {
        path: PathBuf,
        info: ElfInfo,
        loader_rpaths: Vec<(PathBuf, Vec<String>)>,
    }

    impl Object {
        /// The program at `path`, by its resolved path (see `Requester::path`).
        fn executable(search: &LibrarySearch, path: &str) -> Object {
            let path = search.realpath(Path::new(path));
            let info = read_elf(&search.host_path(&path)).unwrap().unwrap();
            Object { path, info, loader_rpaths: Vec::new() }
        }

        fn requester(&self) -> Requester<'_> {
            Requester::new(&self.path, &self.info, &self.loader_rpaths)
        }

        /// The library `found` for one of this object's needs.
        fn load(&self, search: &LibrarySearch, found: &Found) -> Object {
            let info = read_elf(&search.host_path(&found.path)).unwrap().unwrap();
            let loader_rpaths = self.requester().loader_rpaths_for_dependencies();
            Object { path: found.path.clone(), info, loader_rpaths }
        }
    }

    #[test]
    fn host_ls_links_selinux_and_libc_via_cache() {
        let search = host();
        let ls = Object::executable(&search, "/bin/ls");
        assert_eq!(ls.info.interpreter.as_deref(), Some(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert_eq!(ls.requester().origin(), Path::new("/usr/bin"), "origin of the executable is resolved");
        for name in ["libselinux.so.1", "libc.so.6"] {
            let found = search.find(name, &ls.requester()).unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(found.how, How::LdCache, "{name}");
            assert_eq!(found.path, Path::new("/lib/x86_64-linux-gnu").join(name));
            assert_eq!(found.how.to_string(), "found via ld.so.cache");
        }
        // The dependency's origin is where it was found, not resolved.
        let libc = search.find("libc.so.6", &ls.requester()).unwrap();
        let libc = ls.load(&search, &libc);
        assert_eq!(libc.requester().origin(), Path::new("/lib/x86_64-linux-gnu"));
    }

    #[test]
    fn host_python_and_vim_needs_all_in_cache() {
        let search = host();
        for program in ["/usr/bin/python3.11", "/usr/bin/vim.basic"] {
            if !Path::new(program).exists() {
                skip(&format!("{program} is not installed"));
                continue;
            }
            let object = Object::executable(&search, program);
            assert!(!object.info.needed.is_empty());
            for name in &object.info.needed {
                let (found, tried) = search.find_traced(name, &object.requester());
                let found = found.unwrap_or_else(|| panic!("{program}: {name} not found: {tried:?}"));
                assert_eq!(found.how, How::LdCache, "{program}: {name}");
            }
        }
    }

    #[test]
    fn host_triplet_and_default_dirs() {
        let search = host();
        assert_eq!(search.multiarch_triplet(), Some("x86_64-linux-gnu"));
        let dirs = search.default_dirs(&X86_64);
        let expected = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"];
        assert_eq!(dirs, expected.map(PathBuf::from));
        assert_eq!(search.lib_dst(&X86_64), "lib/x86_64-linux-gnu");
        assert!(search.cache_problem().is_none());
    }

    #[test]
    fn dst_tokens() {
        let search = host();
        let origin = Path::new("/opt/app/bin");
        let x = |s: &str| search.expand_dst(s, origin, &X86_64);
        assert_eq!(x("$ORIGIN/../lib").as_deref(), Some("/opt/app/bin/../lib"));
        assert_eq!(x("${ORIGIN}/x:$ORIGIN").as_deref(), Some("/opt/app/bin/x:/opt/app/bin"));
        assert_eq!(x("$ORIGINAL/a").as_deref(), Some("$ORIGINAL/a"));
        assert_eq!(x("${ORIGIN/a").as_deref(), Some("${ORIGIN/a"));
        assert_eq!(x("/usr/$LIB/$PLATFORM").as_deref(), Some("/usr/lib/x86_64-linux-gnu/x86_64"));
        assert_eq!(x("a$").as_deref(), Some("a$"));
        let arm = Arch { class: ElfClass::Elf32, little_endian: true, machine: header::EM_ARM, e_flags: 0 };
        assert_eq!(search.expand_dst("/x/$PLATFORM", origin, &arm), None);
    }

    #[test]
    fn how_texts() {
        let how = How::Runpath { entry: "$ORIGIN/../lib".into(), dir: "/opt/x/bin/../lib".into(), of: "/opt/x/bin/y".into() };
        assert_eq!(how.to_string(), "found in RUNPATH $ORIGIN/../lib of /opt/x/bin/y (= /opt/x/bin/../lib)");
        let how = How::Rpath { entry: "/opt/lib".into(), dir: "/opt/lib".into(), of: "/usr/bin/p".into(), inherited: false };
        assert_eq!(how.to_string(), "found in RPATH /opt/lib of /usr/bin/p");
        assert_eq!(How::DefaultDir { dir: "/usr/lib".into() }.to_string(), "found in the default directory /usr/lib");
    }

    #[test]
    fn realpath_stays_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        fs::write(root.join("usr/lib/x/libz.so.1"), "").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/lib/x", root.join("usr/abs")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let real = |p: &str| realpath_in_root(root, Path::new(p));
        assert_eq!(real("/lib/x/libz.so.1"), Path::new("/usr/lib/x/libz.so.1"));
        assert_eq!(real("/usr/abs/libz.so.1"), Path::new("/usr/lib/x/libz.so.1"));
        assert_eq!(real("/usr/abs/../../.."), Path::new("/"));
        assert_eq!(real("/lib/missing/a"), Path::new("/usr/lib/missing/a"));
        let _ = real("/loop1/x"); // terminates
    }

    /// A fake root built with gcc: programs and libraries with RPATH,
    /// RUNPATH, $ORIGIN, a wrong-class library, a default directory and a
    /// cache written by the real ldconfig.
    struct FakeRoot {
        _dir: tempfile::TempDir,
        root: PathBuf,
    }

    const LIB_SOURCE: &str = "int lib_function(void) { return 0; }";
    const MAIN_SOURCE: &str = "int main(void) { return 0; }";

    impl FakeRoot {
        fn new() -> FakeRoot {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_path_buf();
            FakeRoot { _dir: dir, root }
        }

        fn host(&self, path: &str) -> PathBuf {
            in_root(&self.root, Path::new(path))
        }

        /// Builds the shared library `path` (inside the root), soname = its
        /// file name, linked against the given libraries (paths inside the root).
        fn lib(&self, path: &str, needs: &[&str], extra: &[&str]) -> bool {
            let soname = Path::new(path).file_name().unwrap().to_str().unwrap();
            // Debian's gcc links --as-needed; these libraries are needed by name only.
            let mut args = vec!["-Wl,--no-as-needed".to_owned(), "-shared".to_owned(), "-fPIC".to_owned()];
            args.push(format!("-Wl,-soname,{soname}"));
            args.extend(needs.iter().map(|n| self.host(n).display().to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            gcc(LIB_SOURCE, &self.host(path), &args)
        }

        /// Builds the program `path` linked against `needs`.
        fn program(&self, path: &str, needs: &[&str], extra: &[&str]) -> bool {
            let mut args = vec!["-Wl,--no-as-needed".to_owned()];
            args.extend(needs.iter().map(|n| self.host(n).display().to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            // Let ld find the libraries' own needs without adding paths.
            for need in needs {
                let dir = self.host(need).parent().unwrap().display().to_string();
                args.push(format!("-Wl,-rpath-link,{dir}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            gcc(MAIN_SOURCE, &self.host(path), &args)
        }

        fn search(&self) -> LibrarySearch {
            LibrarySearch::from_root(&self.root)
        }
    }

    fn rpath(list: &str) -> String {
        format!("-Wl,--disable-new-dtags,-rpath,{list}")
    }

    fn runpath(list: &str) -> String {
        format!("-Wl,--enable-new-dtags,-rpath,{list}")
    }

    #[test]
    fn rpath_with_origin_is_inherited_by_dependencies() {
        let fake = FakeRoot::new();
        let ok = fake.lib("/opt/app/lib/libb.so.1", &[], &[])
            && fake.lib("/opt/app/lib/liba.so.1", &["/opt/app/lib/libb.so.1"], &[])
            // libq has its own RUNPATH, which switches off every RPATH for it.
            && fake.lib("/opt/app/lib/libq.so.1", &["/opt/app/lib/libb.so.1"], &[&runpath("/nowhere")])
            && fake.program(
                "/opt/app/bin/prog",
                &["/opt/app/lib/liba.so.1", "/opt/app/lib/libq.so.1"],
                &[&rpath("$ORIGIN/../lib")],
            );
        if !ok {
            return;
        }
        let search = fake.search();
        let prog = Object::executable(&search, "/opt/app/bin/prog");
        assert_eq!(prog.info.needed[..2], ["liba.so.1", "libq.so.1"]);

        let liba = search.find("liba.so.1", &prog.requester()).unwrap();
        assert_eq!(liba.path, Path::new("/opt/app/bin/../lib/liba.so.1"));
        let expected_how = How::Rpath {
            entry: "$ORIGIN/../lib".into(),
            dir: "/opt/app/bin/../lib".into(),
            of: "/opt/app/bin/prog".into(),
            inherited: false,
        };
        assert_eq!(liba.how, expected_how);
        assert_eq!(liba.how.to_string(), "found in RPATH $ORIGIN/../lib of /opt/app/bin/prog (= /opt/app/bin/../lib)");

        // liba has no rpath of its own: prog's RPATH is inherited.
        let liba = prog.load(&search, &liba);
        assert_eq!(liba.requester().origin(), Path::new("/opt/app/bin/../lib"));
        assert_eq!(liba.loader_rpaths, [("/opt/app/bin/prog".into(), vec!["$ORIGIN/../lib".to_owned()])]);
        let libb = search.find("libb.so.1", &liba.requester()).unwrap();
        assert_eq!(libb.path, Path::new("/opt/app/bin/../lib/libb.so.1"));
        assert!(matches!(&libb.how, How::Rpath { inherited: true, of, .. } if of == Path::new("/opt/app/bin/prog")));
        assert!(libb.how.to_string().contains("inherited"), "{}", libb.how);

        // libq has a RUNPATH: no RPATH at all, and /nowhere has nothing.
        let libq = search.find("libq.so.1", &prog.requester()).unwrap();
        let libq = prog.load(&search, &libq);
        let (found, tried) = search.find_traced("libb.so.1", &libq.requester());
        assert_eq!(found, None);
        assert_eq!(tried[0].path, Path::new("/nowhere/libb.so.1"));
        assert!(tried.iter().all(|t| !matches!(t.how, How::Rpath { .. })), "{tried:?}");

        // Started through a symlink, the program's origin is its real directory.
        fs::create_dir_all(fake.host("/usr/local/bin")).unwrap();
        symlink("../../../opt/app/bin/prog", fake.host("/usr/local/bin/rel")).unwrap();
        symlink("/opt/app/bin/prog", fake.host("/usr/local/bin/abs")).unwrap();
        for link in ["/usr/local/bin/rel", "/usr/local/bin/abs"] {
            let via_link = Object::executable(&search, link);
            assert_eq!(via_link.requester().origin(), Path::new("/opt/app/bin"), "{link}");
            let found = search.find("liba.so.1", &via_link.requester()).unwrap();
            assert_eq!(found.path, Path::new("/opt/app/bin/../lib/liba.so.1"));
        }

        // A name with a '/' is a path, DSTs expanded.
        let by_path = search.find("$ORIGIN/../lib/libb.so.1", &prog.requester()).unwrap();
        assert_eq!((by_path.path, by_path.how), (PathBuf::from("/opt/app/bin/../lib/libb.so.1"), How::Path));
        assert!(search.find("/opt/app/lib/nothere.so", &prog.requester()).is_none());
    }

    #[test]
    fn runpath_is_not_inherited() {
        let fake = FakeRoot::new();
        let ok = fake.lib("/opt/rp/lib/libs.so.1", &[], &[])
            && fake.lib("/opt/rp/lib/libr.so.1", &["/opt/rp/lib/libs.so.1"], &[])
            && fake.program("/opt/rp/bin/prog", &["/opt/rp/lib/libr.so.1"], &[&runpath("${ORIGIN}/../lib")]);
        if !ok {
            return;
        }
        let search = fake.search();
        let prog = Object::executable(&search, "/opt/rp/bin/prog");
        assert!(prog.info.rpath.is_empty());
        let libr = search.find("libr.so.1", &prog.requester()).unwrap();
        assert_eq!(
            libr.how,
            How::Runpath { entry: "${ORIGIN}/../lib".into(), dir: "/opt/rp/bin/../lib".into(), of: "/opt/rp/bin/prog".into() }
        );
        let libr = prog.load(&search, &libr);
        assert!(libr.loader_rpaths.is_empty());
        let (found, tried) = search.find_traced("libs.so.1", &libr.requester());
        assert_eq!(found, None, "RUNPATH must not be inherited");
        assert!(tried.iter().all(|t| matches!(t.how, How::DefaultDir { .. })), "{tried:?}");
    }

    /// A 32-bit i386 shared object, from gcc -m32 when it can, else a bare
    /// ELF32 header (all the search reads of a candidate).
    fn write_32bit_library(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let built = Command::new("gcc")
            .args(["-m32", "-shared", "-nostdlib", "-fPIC", "-x", "c", "-", "-o"])
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|out| out.status.success());
        if !built {
            let mut header = vec![0u8; 52];
            header[..7].copy_from_slice(b"\x7fELF\x01\x01\x01"); // ELF32, LSB, version 1
            header[16..18].copy_from_slice(&header::ET_DYN.to_le_bytes());
            header[18..20].copy_from_slice(&header::EM_386.to_le_bytes());
            header[20..24].copy_from_slice(&1u32.to_le_bytes());
            header[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
            fs::write(path, header).unwrap();
        }
        let arch = elf::read_arch(path).unwrap().unwrap();
        assert_eq!((arch.class, arch.machine), (ElfClass::Elf32, header::EM_386));
    }

    #[test]
    fn wrong_class_and_non_elf_candidates_are_skipped() {
        let fake = FakeRoot::new();
        if !(fake.lib("/opt/mixed/lib64/libw.so.1", &[], &[])
            && fake.program(
                "/opt/mixed/bin/prog",
                &["/opt/mixed/lib64/libw.so.1"],
                &[&rpath("/opt/mixed/lib32:/opt/mixed/script:/opt/mixed/none/:/opt/mixed/lib64")],
            ))
        {
            return;
        }
        write_32bit_library(&fake.host("/opt/mixed/lib32/libw.so.1"));
        fs::create_dir_all(fake.host("/opt/mixed/script")).unwrap();
        fs::write(fake.host("/opt/mixed/script/libw.so.1"), "INPUT(libw.so.1)\n").unwrap();

        let search = fake.search();
        let prog = Object::executable(&search, "/opt/mixed/bin/prog");
        let (found, tried) = search.find_traced("libw.so.1", &prog.requester());
        assert_eq!(found.unwrap().path, Path::new("/opt/mixed/lib64/libw.so.1"));
        let whys: Vec<String> = tried.iter().map(|t| t.why.to_string()).collect();
        assert_eq!(whys, ["is 32-bit i386, but 64-bit x86-64 is needed", "is not an ELF file", "does not exist"]);
        assert_eq!(tried[2].path, Path::new("/opt/mixed/none/libw.so.1"));
    }

    #[test]
    fn cache_default_dirs_conf_and_nodeflib() {
        let fake = FakeRoot::new();
        let ok = fake.lib("/opt/cached/libcached.so.1", &[], &[])
            && fake.lib("/usr/lib/x86_64-linux-gnu/libdef.so.1", &[], &[])
            && fake.lib("/opt/late/liblate.so.1", &[], &[])
            && fake.program(
                "/usr/bin/prog",
                &["/opt/cached/libcached.so.1", "/usr/lib/x86_64-linux-gnu/libdef.so.1", "/opt/late/liblate.so.1"],
                &[],
            )
            && fake.program("/usr/bin/nodef", &["/usr/lib/x86_64-linux-gnu/libdef.so.1"], &["-Wl,-z,nodefaultlib"]);
        if !ok {
            return;
        }
        // A 32-bit library with the same soname in the cache must be ignored.
        write_32bit_library(&fake.host("/opt/cached32/libcached.so.1"));
        fs::create_dir_all(fake.host("/etc")).unwrap();
        fs::write(fake.host("/etc/ld.so.conf"), "/opt/cached32\n/opt/cached\n").unwrap();
        let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"].into_iter().find(|p| Path::new(p).exists()) else {
            skip("ldconfig not found");
            return;
        };
        let status = Command::new(ldconfig).arg("-X").arg("-r").arg(&fake.root).status().unwrap();
        assert!(status.success());
        // Added after ldconfig ran: a stale cache.
        fs::write(fake.host("/etc/ld.so.conf"), "/opt/cached32\n/opt/cached\n/opt/late\n").unwrap();
        assert!(fake.lib("/usr/lib/x86_64-linux-gnu/libdef2.so.1", &[], &[]));

        let search = fake.search();
        assert_eq!(search.multiarch_triplet(), Some("x86_64-linux-gnu"));
        let cached: Vec<_> = search.cache().entries_for("libcached.so.1").collect();
        assert_eq!(cached.len(), 2, "{cached:?}");
        let prog = Object::executable(&search, "/usr/bin/prog");
        let find = |name| search.find(name, &prog.requester()).unwrap();

        let found = find("libcached.so.1");
        assert_eq!((found.path.as_path(), &found.how), (Path::new("/opt/cached/libcached.so.1"), &How::LdCache));
        // ldconfig always adds the default directories to the cache.
        let found = find("libdef.so.1");
        assert_eq!((found.path.as_path(), &found.how), (Path::new("/usr/lib/x86_64-linux-gnu/libdef.so.1"), &How::LdCache));
        let found = find("libdef2.so.1");
        assert_eq!(found.path, Path::new("/usr/lib/x86_64-linux-gnu/libdef2.so.1"));
        assert_eq!(found.how, How::DefaultDir { dir: "/usr/lib/x86_64-linux-gnu".into() });
        let found = find("liblate.so.1");
        assert_eq!(found.how, How::LdSoConf { dir: "/opt/late".into() });
        assert!(found.how.to_string().contains("run ldconfig"));

        let nodef = Object::executable(&search, "/usr/bin/nodef");
        assert!(nodef.info.nodeflib);
        // DF_1_NODEFLIB: neither the cache entry in a default directory nor
        // the default directories themselves.
        for name in ["libdef.so.1", "libdef2.so.1"] {
            let (found, tried) = search.find_traced(name, &nodef.requester());
            assert_eq!(found, None);
            assert!(tried.iter().all(|t| matches!(t.how, How::LdSoConf { .. })), "{tried:?}");
        }
        assert_eq!(search.find("libcached.so.1", &nodef.requester()).unwrap().how, How::LdCache);
    }

    #[test]
    fn broken_cache_is_reported_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/ld.so.cache"), b"glibc-ld.so.cache1.1\xff\xff").unwrap();
        let search = LibrarySearch::from_root(dir.path());
        assert!(search.cache_problem().is_some());
        assert!(search.cache().entries().is_empty());
        let missing = LibrarySearch::from_root(&dir.path().join("nothing"));
        assert!(missing.cache_problem().is_none());
        assert_eq!(missing.multiarch_triplet(), None);
        assert_eq!(missing.default_dirs(&X86_64), ["/lib64", "/usr/lib64"].map(PathBuf::from));
    }

    #[test]
    fn static_program_needs_nothing() {
        let fake = FakeRoot::new();
        if !fake.program("/bin/static", &[], &["-static"]) {
            return;
        }
        let info = read_elf(&fake.host("/bin/static")).unwrap().unwrap();
        assert!(info.is_static());
    }
}

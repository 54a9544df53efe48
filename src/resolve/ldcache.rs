//! `/etc/ld.so.cache` and `/etc/ld.so.conf`, read the way glibc reads them.
//!
//! The cache layout follows glibc's `sysdeps/generic/dl-cache.h` and the
//! lookup follows `elf/dl-cache.c` (`_dl_load_cache_lookup`,
//! `search_cache`); the config syntax follows `elf/ldconfig.c`
//! (`parse_conf`, `parse_conf_include`, `add_dir_1`). Both take a root
//! directory so that a fake tree can stand in for the host.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use goblin::elf::header;

use super::elf::{Arch, ElfClass};

/// Cache flags (glibc `sysdeps/generic/ldconfig.h`). The low byte is the
/// library type, the high byte the ABI it requires.
pub const FLAG_TYPE_MASK: u32 = 0x00ff;
pub const FLAG_ELF: u32 = 0x0001;
pub const FLAG_ELF_LIBC5: u32 = 0x0002;
pub const FLAG_ELF_LIBC6: u32 = 0x0003;
pub const FLAG_REQUIRED_MASK: u32 = 0xff00;
pub const FLAG_SPARC_LIB64: u32 = 0x0100;
pub const FLAG_X8664_LIB64: u32 = 0x0300;
pub const FLAG_S390_LIB64: u32 = 0x0400;
pub const FLAG_POWERPC_LIB64: u32 = 0x0500;
pub const FLAG_MIPS64_LIBN32: u32 = 0x0600;
pub const FLAG_MIPS64_LIBN64: u32 = 0x0700;
pub const FLAG_X8664_LIBX32: u32 = 0x0800;
pub const FLAG_ARM_LIBHF: u32 = 0x0900;
pub const FLAG_AARCH64_LIB64: u32 = 0x0a00;
pub const FLAG_ARM_LIBSF: u32 = 0x0b00;
pub const FLAG_MIPS_LIB32_NAN2008: u32 = 0x0c00;
pub const FLAG_MIPS64_LIBN32_NAN2008: u32 = 0x0d00;
pub const FLAG_MIPS64_LIBN64_NAN2008: u32 = 0x0e00;
pub const FLAG_RISCV_FLOAT_ABI_SOFT: u32 = 0x0f00;
pub const FLAG_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x1000;
pub const FLAG_LARCH_FLOAT_ABI_SOFT: u32 = 0x1100;
pub const FLAG_LARCH_FLOAT_ABI_DOUBLE: u32 = 0x1200;

/// Old (libc5 / glibc < 2.2) format: `struct cache_file`.
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const OLD_HEADER_LEN: usize = 16; // magic[11] + pad + u32 nlibs
const OLD_ENTRY_LEN: usize = 12; // i32 flags, u32 key, u32 value

/// New format: `struct cache_file_new`, magic + version "1.1".
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER_LEN: usize = 48;
const NEW_ENTRY_LEN: usize = 24; // + u32 osversion, u64 hwcap
const NEW_NLIBS_OFFSET: usize = 20;
const NEW_FLAGS_OFFSET: usize = 28;
/// `__alignof__ (struct cache_file_new)`: where the new header starts when
/// it is embedded after an old-format table.
const NEW_ALIGN: usize = 8;

/// `cache_file_new_flags_endian_*`
const ENDIAN_UNSET: u8 = 0;
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;
const ENDIAN_MASK: u8 = 3;

/// A nested `include` deeper than this is a loop; ldconfig would recurse
/// forever, we stop.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The key: a soname such as `libc.so.6`.
    pub soname: String,
    /// The value: where ldconfig found it, as seen from the root.
    pub path: PathBuf,
    /// Type and ABI flags, e.g. `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64`.
    pub flags: u32,
    /// 0 for ordinary entries. Otherwise a glibc-hwcaps subdirectory entry
    /// (bit 62 set, low bits index the hwcaps names) or a legacy hwcap mask.
    pub hwcap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFormat {
    /// Only `ld.so-1.7.0` (libc5 / glibc < 2.2).
    Old,
    /// Only `glibc-ld.so.cache1.1` (ldconfig's default since glibc 2.32).
    New,
    /// `ld.so-1.7.0` table followed by an embedded `glibc-ld.so.cache1.1`
    /// table; glibc then reads only the new one.
    OldWithNew,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedCache(pub String);

#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid ld.so.cache: {source}")]
    Malformed { path: PathBuf, source: MalformedCache },
}

#[derive(Debug, Clone)]
pub struct LdCache {
    format: CacheFormat,
    entries: Vec<CacheEntry>,
    /// Entry indices per soname, in file order (ldconfig sorts the file and
    /// glibc's lookup depends on that order among equal names).
    by_soname: HashMap<String, Vec<usize>>,
}

impl LdCache {
    /// Reads `root/etc/ld.so.cache`.
    pub fn load(root: &Path) -> Result<LdCache, LdCacheError> {
        let path = root.join("etc/ld.so.cache");
        let bytes = fs::read(&path).map_err(|source| LdCacheError::Io { path: path.clone(), source })?;
        LdCache::parse(&bytes).map_err(|source| LdCacheError::Malformed { path, source })
    }

    /// A cache without entries: what ld.so uses when the file is missing.
    pub fn empty() -> LdCache {
        LdCache::from_entries(CacheFormat::New, Vec::new())
    }

    /// Parses any of the three layouts glibc accepts.
    pub fn parse(bytes: &[u8]) -> Result<LdCache, MalformedCache> {
        if bytes.starts_with(NEW_MAGIC) {
            let entries = parse_new_table(bytes, 0)?;
            Ok(LdCache::from_entries(CacheFormat::New, entries))
        } else if bytes.starts_with(OLD_MAGIC) {
            parse_old_layout(bytes)
        } else {
            Err(MalformedCache("unknown magic (neither ld.so-1.7.0 nor glibc-ld.so.cache1.1)".into()))
        }
    }

    fn from_entries(format: CacheFormat, entries: Vec<CacheEntry>) -> LdCache {
        let mut by_soname: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            by_soname.entry(entry.soname.clone()).or_default().push(index);
        }
        LdCache { format, entries, by_soname }
    }

    pub fn format(&self) -> CacheFormat {
        self.format
    }

    pub fn entries(&self) -> &[CacheEntry] {
        &self.entries
    }

    /// All entries for `soname`, in file order, whatever their flags.
    pub fn entries_for<'a>(&'a self, soname: &str) -> impl Iterator<Item = &'a CacheEntry> + 'a {
        let indices = self.by_soname.get(soname).map(Vec::as_slice).unwrap_or_default();
        indices.iter().map(|&i| &self.entries[i])
    }

    /// The entry ld.so running as `arch` would use for `soname`
    /// (`search_cache` in glibc's `elf/dl-cache.c`).
    ///
    /// Entries with a hwcap value are skipped: glibc-hwcaps entries (e.g.
    /// an x86-64-v3 build) are only chosen when the CPU supports them, and
    /// the rootfs must run on any CPU, so we take the baseline library that
    /// glibc falls back to. Legacy hwcap entries are ignored by glibc >= 2.37.
    pub fn lookup(&self, soname: &str, arch: &Arch) -> Option<&CacheEntry> {
        let default_id = cache_flags(arch);
        let mut best = None;
        for entry in self.entries_for(soname) {
            if !flags_accepted(arch, entry.flags) || entry.hwcap != 0 {
                continue;
            }
            // New format: the first acceptable entry wins. The old format
            // has no hwcap field and glibc keeps the last acceptable entry
            // unless one carries exactly the loader's own flags.
            if self.format != CacheFormat::Old || entry.flags == default_id {
                return Some(entry);
            }
            best = Some(entry);
        }
        best
    }
}

/// The flags ldconfig writes for a glibc library of `arch`; equivalently,
/// `_DL_CACHE_DEFAULT_ID` of an ld.so built for `arch` (the per-arch
/// `readelflib.c` and `dl-cache.h` files in glibc).
pub fn cache_flags(arch: &Arch) -> u32 {
    let is64 = arch.class == ElfClass::Elf64;
    let abi = match arch.machine {
        header::EM_X86_64 if is64 => FLAG_X8664_LIB64,
        header::EM_X86_64 => FLAG_X8664_LIBX32,
        header::EM_AARCH64 => FLAG_AARCH64_LIB64,
        header::EM_ARM => arm_float_abi(arch.e_flags),
        header::EM_PPC64 if is64 => FLAG_POWERPC_LIB64,
        header::EM_S390 if is64 => FLAG_S390_LIB64,
        header::EM_SPARCV9 | header::EM_SPARC if is64 => FLAG_SPARC_LIB64,
        header::EM_MIPS => mips_abi(is64, arch.e_flags),
        header::EM_RISCV => riscv_float_abi(arch.e_flags),
        header::EM_LOONGARCH => loongarch_float_abi(arch.e_flags),
        _ => 0,
    };
    abi | FLAG_ELF_LIBC6
}

/// `_dl_cache_check_flags` of an ld.so built for `arch`: can it use a cache
/// entry carrying `flags`? Most 64-bit loaders want their exact id; the
/// generic check (i386, 32-bit PowerPC, ...) also takes plain `FLAG_ELF`
/// libraries, and ARM float-ABI loaders also take untagged libc6 entries.
pub fn flags_accepted(arch: &Arch, flags: u32) -> bool {
    let id = cache_flags(arch);
    if id == FLAG_ELF_LIBC6 {
        flags == FLAG_ELF || flags == FLAG_ELF_LIBC6
    } else if arch.machine == header::EM_ARM {
        flags == id || flags == FLAG_ELF_LIBC6
    } else {
        flags == id
    }
}

fn arm_float_abi(e_flags: u32) -> u32 {
    const EF_ARM_EABIMASK: u32 = 0xff00_0000;
    const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
    const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
    const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
    if e_flags & EF_ARM_EABIMASK != EF_ARM_EABI_VER5 {
        0
    } else if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 {
        FLAG_ARM_LIBHF
    } else if e_flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
        FLAG_ARM_LIBSF
    } else {
        0
    }
}

fn mips_abi(is64: bool, e_flags: u32) -> u32 {
    const EF_MIPS_ABI2: u32 = 0x20;
    const EF_MIPS_NAN2008: u32 = 0x400;
    let nan2008 = e_flags & EF_MIPS_NAN2008 != 0;
    match (is64, e_flags & EF_MIPS_ABI2 != 0, nan2008) {
        (true, _, false) => FLAG_MIPS64_LIBN64,
        (true, _, true) => FLAG_MIPS64_LIBN64_NAN2008,
        (false, true, false) => FLAG_MIPS64_LIBN32,
        (false, true, true) => FLAG_MIPS64_LIBN32_NAN2008,
        (false, false, true) => FLAG_MIPS_LIB32_NAN2008,
        (false, false, false) => 0,
    }
}

fn riscv_float_abi(e_flags: u32) -> u32 {
    const EF_RISCV_FLOAT_ABI: u32 = 0x6;
    const EF_RISCV_FLOAT_ABI_SOFT: u32 = 0x0;
    const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;
    match e_flags & EF_RISCV_FLOAT_ABI {
        EF_RISCV_FLOAT_ABI_SOFT => FLAG_RISCV_FLOAT_ABI_SOFT,
        EF_RISCV_FLOAT_ABI_DOUBLE => FLAG_RISCV_FLOAT_ABI_DOUBLE,
        _ => 0,
    }
}

fn loongarch_float_abi(e_flags: u32) -> u32 {
    const EF_LARCH_ABI_MODIFIER_MASK: u32 = 0x7;
    const EF_LARCH_ABI_SOFT_FLOAT: u32 = 0x1;
    const EF_LARCH_ABI_DOUBLE_FLOAT: u32 = 0x3;
    match e_flags & EF_LARCH_ABI_MODIFIER_MASK {
        EF_LARCH_ABI_SOFT_FLOAT => FLAG_LARCH_FLOAT_ABI_SOFT,
        EF_LARCH_ABI_DOUBLE_FLOAT => FLAG_LARCH_FLOAT_ABI_DOUBLE,
        _ => 0,
    }
}

/// Bounds-checked reads of a cache image in one byte order.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn slice<const N: usize>(&self, offset: usize) -> Result<[u8; N], MalformedCache> {
        offset
            .checked_add(N)
            .and_then(|end| self.bytes.get(offset..end))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| MalformedCache(format!("truncated: {N} bytes at offset {offset} missing")))
    }

    fn u32_at(&self, offset: usize) -> Result<u32, MalformedCache> {
        let raw = self.slice::<4>(offset)?;
        Ok(if self.big_endian { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) })
    }

    fn u64_at(&self, offset: usize) -> Result<u64, MalformedCache> {
        let raw = self.slice::<8>(offset)?;
        Ok(if self.big_endian { u64::from_be_bytes(raw) } else { u64::from_le_bytes(raw) })
    }

    /// The NUL-terminated string at `base + index`; glibc bounds string
    /// indices only by the file size, so do we.
    fn str_at(&self, base: usize, index: u32) -> Result<&'a str, MalformedCache> {
        let bad = |why: &str| MalformedCache(format!("string at {base}+{index} {why}"));
        let start = base.checked_add(index as usize).filter(|&s| s < self.bytes.len());
        let tail = &self.bytes[start.ok_or_else(|| bad("is outside the file"))?..];
        let len = tail.iter().position(|&b| b == 0).ok_or_else(|| bad("is not terminated"))?;
        std::str::from_utf8(&tail[..len]).map_err(|_| bad("is not UTF-8"))
    }
}

/// Does a table of `nlibs` entries of `entry_len` bytes after a header of
/// `header_len` bytes at `base` fit in `file_len` bytes?
fn table_fits(file_len: usize, base: usize, header_len: usize, nlibs: u32, entry_len: usize) -> bool {
    (nlibs as usize)
        .checked_mul(entry_len)
        .and_then(|n| n.checked_add(header_len))
        .and_then(|n| n.checked_add(base))
        .is_some_and(|end| end <= file_len)
}

/// Old files carry no byte-order mark: take the byte order in which the
/// entry count fits the file, little-endian first.
fn guess_byte_order(bytes: &[u8], base: usize, nlibs_offset: usize, header_len: usize, entry_len: usize) -> bool {
    let fits = |big_endian| {
        Reader { bytes, big_endian }.u32_at(base + nlibs_offset).is_ok_and(|n| table_fits(bytes.len(), base, header_len, n, entry_len))
    };
    !fits(false) && fits(true)
}

/// The `glibc-ld.so.cache1.1` table whose header starts at `base`. String
/// indices are relative to that header.
fn parse_new_table(bytes: &[u8], base: usize) -> Result<Vec<CacheEntry>, MalformedCache> {
    if bytes.len() < base.saturating_add(NEW_HEADER_LEN) {
        return Err(MalformedCache("truncated new-format header".into()));
    }
    let big_endian = match bytes[base + NEW_FLAGS_OFFSET] & ENDIAN_MASK {
        ENDIAN_LITTLE => false,
        ENDIAN_BIG => true,
        ENDIAN_UNSET => guess_byte_order(bytes, base, NEW_NLIBS_OFFSET, NEW_HEADER_LEN, NEW_ENTRY_LEN),
        _ => return Err(MalformedCache("cache is flagged as invalid (endian = 1)".into())),
    };
    let reader = Reader { bytes, big_endian };
    let nlibs = reader.u32_at(base + NEW_NLIBS_OFFSET)?;
    if !table_fits(bytes.len(), base, NEW_HEADER_LEN, nlibs, NEW_ENTRY_LEN) {
        return Err(MalformedCache(format!("{nlibs} entries do not fit in the file")));
    }
    (0..nlibs as usize).map(|i| parse_new_entry(&reader, base, base + NEW_HEADER_LEN + i * NEW_ENTRY_LEN)).collect()
}

fn parse_new_entry(reader: &Reader, strings: usize, at: usize) -> Result<CacheEntry, MalformedCache> {
    let mut entry = parse_old_entry(reader, strings, at)?;
    entry.hwcap = reader.u64_at(at + 16)?;
    Ok(entry)
}

/// `struct file_entry`: flags, key, value.
fn parse_old_entry(reader: &Reader, strings: usize, at: usize) -> Result<CacheEntry, MalformedCache> {
    Ok(CacheEntry {
        flags: reader.u32_at(at)?,
        soname: reader.str_at(strings, reader.u32_at(at + 4)?)?.to_owned(),
        path: PathBuf::from(reader.str_at(strings, reader.u32_at(at + 8)?)?),
        hwcap: 0,
    })
}

/// An `ld.so-1.7.0` file: its own table, possibly followed (at the next
/// 8-byte boundary) by a complete new-format table, which then wins.
fn parse_old_layout(bytes: &[u8]) -> Result<LdCache, MalformedCache> {
    let big_endian = guess_byte_order(bytes, 0, 12, OLD_HEADER_LEN, OLD_ENTRY_LEN);
    let reader = Reader { bytes, big_endian };
    let nlibs = reader.u32_at(12)?;
    if !table_fits(bytes.len(), 0, OLD_HEADER_LEN, nlibs, OLD_ENTRY_LEN) {
        return Err(MalformedCache(format!("{nlibs} old-format entries do not fit in the file")));
    }
    let old_end = OLD_HEADER_LEN + nlibs as usize * OLD_ENTRY_LEN;
    let new_base = old_end.next_multiple_of(NEW_ALIGN);
    if bytes.get(new_base..).is_some_and(|rest| rest.starts_with(NEW_MAGIC)) {
        let entries = parse_new_table(bytes, new_base)?;
        return Ok(LdCache::from_entries(CacheFormat::OldWithNew, entries));
    }
    // Old-only: strings are indexed from the end of the entry table.
    let entries =
        (0..nlibs as usize).map(|i| parse_old_entry(&reader, old_end, OLD_HEADER_LEN + i * OLD_ENTRY_LEN)).collect::<Result<_, _>>()?;
    Ok(LdCache::from_entries(CacheFormat::Old, entries))
}

/// The directories configured in `root/etc/ld.so.conf`, following
/// `include` lines, in file order, without duplicates. A missing or
/// unreadable file contributes nothing (as for ldconfig).
pub fn ld_so_conf_dirs(root: &Path) -> Vec<PathBuf> {
    parse_ld_so_conf(root, Path::new("/etc/ld.so.conf"))
}

/// Like [`ld_so_conf_dirs`] for any config file `conf` (a path inside `root`).
pub fn parse_ld_so_conf(root: &Path, conf: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    parse_conf_file(root, conf, 0, &mut dirs);
    dirs
}

fn parse_conf_file(root: &Path, conf: &Path, depth: usize, dirs: &mut Vec<PathBuf>) {
    if depth > MAX_INCLUDE_DEPTH {
        return;
    }
    let Ok(text) = fs::read(in_root(root, conf)) else {
        return;
    };
    for line in String::from_utf8_lossy(&text).lines() {
        match parse_conf_line(line) {
            ConfLine::Blank => {}
            ConfLine::Include(patterns) => {
                for pattern in patterns {
                    for file in glob_in_root(root, &include_pattern(conf, pattern)) {
                        parse_conf_file(root, &file, depth + 1, dirs);
                    }
                }
            }
            ConfLine::Dir(dir) => {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum ConfLine<'a> {
    Blank,
    Include(Vec<&'a str>),
    Dir(PathBuf),
}

/// One ld.so.conf line. There is no quoting: `#` starts a comment anywhere.
/// `hwcap` lines are obsolete and ignored, as by ldconfig.
fn parse_conf_line(line: &str) -> ConfLine<'_> {
    let line = line.split('#').next().unwrap_or_default().trim_start();
    if line.is_empty() {
        return ConfLine::Blank;
    }
    if let Some(rest) = strip_keyword(line, "include", false) {
        return ConfLine::Include(rest.split([' ', '\t']).filter(|p| !p.is_empty()).collect());
    }
    if strip_keyword(line, "hwcap", true).is_some() {
        return ConfLine::Blank;
    }
    // add_dir_1: trailing whitespace and trailing slashes go away.
    let dir = line.trim_end().trim_end_matches('/');
    if dir.is_empty() { ConfLine::Blank } else { ConfLine::Dir(PathBuf::from(dir)) }
}

/// `keyword` followed by a blank (space or tab), as ldconfig tests it.
fn strip_keyword<'a>(line: &'a str, keyword: &str, ignore_case: bool) -> Option<&'a str> {
    let head = line.get(..keyword.len())?;
    let same = if ignore_case { head.eq_ignore_ascii_case(keyword) } else { head == keyword };
    let rest = &line[keyword.len()..];
    (same && rest.starts_with([' ', '\t'])).then(|| &rest[1..])
}

/// A relative include pattern is relative to the including file's directory.
fn include_pattern(conf: &Path, pattern: &str) -> String {
    if pattern.starts_with('/') {
        return pattern.to_owned();
    }
    let dir = conf.parent().unwrap_or(Path::new("/"));
    format!("{}/{pattern}", dir.display())
}

/// `logical` (an absolute path inside the root) as a path on this machine.
fn in_root(root: &Path, logical: &Path) -> PathBuf {
    root.join(logical.strip_prefix("/").unwrap_or(logical))
}

/// glob(3) of an absolute `pattern` inside `root`: `*`, `?` and `[...]` in
/// any component; results are existing paths, sorted, as paths inside the
/// root. As with glob(3) without GLOB_PERIOD, wildcards skip dot-files.
fn glob_in_root(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut matches = vec![PathBuf::from("/")];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        matches = matches.iter().flat_map(|base| expand_component(root, base, component)).collect();
    }
    matches.retain(|m| in_root(root, m).exists());
    matches.sort();
    matches
}

fn expand_component(root: &Path, base: &Path, component: &str) -> Vec<PathBuf> {
    if !component.contains(['*', '?', '[']) {
        return vec![base.join(component)];
    }
    let Ok(listing) = fs::read_dir(in_root(root, base)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = listing
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') || component.starts_with('.'))
        .filter(|name| wildcard_match(component.as_bytes(), name.as_bytes()))
        .collect();
    names.sort();
    names.into_iter().map(|name| base.join(name)).collect()
}

/// fnmatch(3) without flags, on bytes.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after a mismatch: the last '*' and the name position
    // it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if pattern.get(p) == Some(&b'*') {
            star = Some((p, n));
            p += 1;
            continue;
        }
        if let Some(len) = match_single(&pattern[p..], name[n]) {
            p += len;
            n += 1;
            continue;
        }
        let Some((star_p, star_n)) = star else {
            return false;
        };
        p = star_p + 1;
        n = star_n + 1;
        star = Some((star_p, star_n + 1));
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// If the first token of `pattern` (not `*`) matches `c`, its length.
fn match_single(pattern: &[u8], c: u8) -> Option<usize> {
    match *pattern.first()? {
        b'?' => Some(1),
        b'[' => match match_bracket(pattern, c) {
            Some((true, len)) => Some(len),
            Some((false, _)) => None,
            // An unterminated '[' is an ordinary character.
            None => (c == b'[').then_some(1),
        },
        b'\\' if pattern.len() > 1 => (pattern[1] == c).then_some(2),
        literal => (literal == c).then_some(1),
    }
}

/// A `[...]` expression at the start of `pattern`: whether `c` matches and
/// the expression's length; None when there is no closing ']'.
fn match_bracket(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&hi| hi != b']') {
            matched |= (lo..=pattern[i + 2]).contains(&c);
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

/// glibc's `_dl_cache_libcmp` (`elf/dl-cache.c`): names compare byte by
/// byte, except that runs of digits compare as numbers (`libfoo.so.10` after
/// `libfoo.so.9`), and a digit sorts after a non-digit.
pub fn libcmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j >= b.len() || !b[j].is_ascii_digit() {
                return Ordering::Greater;
            }
            let number = |s: &[u8], k: &mut usize| {
                let mut value: u64 = 0;
                while *k < s.len() && s[*k].is_ascii_digit() {
                    value = value.saturating_mul(10).saturating_add(u64::from(s[*k] - b'0'));
                    *k += 1;
                }
                value
            };
            let (x, y) = (number(a, &mut i), number(b, &mut j));
            if x != y {
                return x.cmp(&y);
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    if j < b.len() { Ordering::Less } else { Ordering::Equal }
}

/// A cache file in the new format (`glibc-ld.so.cache1.1`, what ldconfig
/// writes since glibc 2.32), laid out as ldconfig's `save_cache` does: the
/// header, the entries sorted the way ld.so's binary search expects
/// (descending by `libcmp`, then by flags), the string table. No extension
/// section and no hwcaps entries. The same entries always give the same bytes.
pub fn write(entries: &[CacheEntry]) -> Vec<u8> {
    let mut sorted: Vec<&CacheEntry> = entries.iter().collect();
    sorted.sort_by(|x, y| libcmp(&y.soname, &x.soname).then(y.flags.cmp(&x.flags)).then(x.path.cmp(&y.path)));
    let strings_start = NEW_HEADER_LEN + sorted.len() * NEW_ENTRY_LEN;
    let mut strings: Vec<u8> = Vec::new();
    let mut offsets = Vec::new();
    for entry in &sorted {
        let key = strings_start + strings.len();
        strings.extend_from_slice(entry.soname.as_bytes());
        strings.push(0);
        let value = strings_start + strings.len();
        strings.extend_from_slice(entry.path.as_os_str().as_encoded_bytes());
        strings.push(0);
        offsets.push((key as u32, value as u32));
    }
    let endian = if cfg!(target_endian = "little") { ENDIAN_LITTLE } else { ENDIAN_BIG };
    let mut out = Vec::with_capacity(strings_start + strings.len());
    out.extend_from_slice(NEW_MAGIC);
    out.extend_from_slice(&(sorted.len() as u32).to_ne_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
    out.extend_from_slice(&[endian, 0, 0, 0]);
    out.extend_from_slice(&[0; 16]); // extension_offset and unused[3]
    for (entry, (key, value)) in sorted.iter().zip(&offsets) {
        out.extend_from_slice(&entry.flags.to_ne_bytes());
        out.extend_from_slice(&key.to_ne_bytes());
        out.extend_from_slice(&value.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes()); // osversion
        out.extend_from_slice(&entry.hwcap.to_ne_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::elf::tests::{gcc, skip};
    use std::process::Command;

    const X86_64: Arch = Arch { class: ElfClass::Elf64, little_endian: true, machine: header::EM_X86_64, e_flags: 0 };
    const X32: Arch = Arch { class: ElfClass::Elf32, little_endian: true, machine: header::EM_X86_64, e_flags: 0 };
    const I386: Arch = Arch { class: ElfClass::Elf32, little_endian: true, machine: header::EM_386, e_flags: 0 };
    const AARCH64: Arch = Arch { class: ElfClass::Elf64, little_endian: true, machine: header::EM_AARCH64, e_flags: 0 };

    fn entry(soname: &str, path: &str, flags: u32) -> CacheEntry {
        CacheEntry { soname: soname.into(), path: path.into(), flags, hwcap: 0 }
    }

    /// Lays out a cache file the way ldconfig does (`save_cache`).
    fn build_cache(format: CacheFormat, entries: &[CacheEntry]) -> Vec<u8> {
        let n = entries.len();
        let old_len = OLD_HEADER_LEN + n * OLD_ENTRY_LEN;
        let new_base = match format {
            CacheFormat::New => 0,
            _ => old_len.next_multiple_of(NEW_ALIGN),
        };
        // String table: after the new table, or after the old one.
        let strings_start = match format {
            CacheFormat::Old => old_len,
            _ => new_base + NEW_HEADER_LEN + n * NEW_ENTRY_LEN,
        };
        let mut strings = Vec::new();
        let mut offsets = Vec::new();
        for e in entries {
            let key = strings.len();
            strings.extend_from_slice(e.soname.as_bytes());
            strings.push(0);
            let value = strings.len();
            strings.extend_from_slice(e.path.to_str().unwrap().as_bytes());
            strings.push(0);
            offsets.push((key, value));
        }
        let mut out = Vec::new();
        if format != CacheFormat::New {
            out.extend_from_slice(OLD_MAGIC);
            out.push(0);
            out.extend_from_slice(&(n as u32).to_le_bytes());
            for (e, (key, value)) in entries.iter().zip(&offsets) {
                // Old indices count from the end of the old table.
                let shift = strings_start - old_len;
                out.extend_from_slice(&e.flags.to_le_bytes());
                out.extend_from_slice(&((shift + key) as u32).to_le_bytes());
                out.extend_from_slice(&((shift + value) as u32).to_le_bytes());
            }
        }
        if format != CacheFormat::Old {
            out.resize(new_base, 0);
            out.extend_from_slice(NEW_MAGIC);
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
            out.extend_from_slice(&[ENDIAN_LITTLE, 0, 0, 0]);
            out.extend_from_slice(&[0; 16]); // extension_offset + unused[3]
            for (e, (key, value)) in entries.iter().zip(&offsets) {
                let shift = strings_start - new_base;
                out.extend_from_slice(&e.flags.to_le_bytes());
                out.extend_from_slice(&((shift + key) as u32).to_le_bytes());
                out.extend_from_slice(&((shift + value) as u32).to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&e.hwcap.to_le_bytes());
            }
        }
        assert_eq!(out.len(), strings_start);
        out.extend_from_slice(&strings);
        out
    }

    fn sample_entries() -> Vec<CacheEntry> {
        vec![
            entry("libfoo.so.1", "/libx32/libfoo.so.1", 0x803),
            entry("libfoo.so.1", "/lib64/libfoo.so.1", 0x303),
            entry("libfoo.so.1", "/lib32/libfoo.so.1", FLAG_ELF_LIBC6),
            entry("libbar.so.2", "/lib32/libbar.so.2", FLAG_ELF),
        ]
    }

    #[test]
    fn all_three_layouts_parse_alike() {
        for format in [CacheFormat::Old, CacheFormat::New, CacheFormat::OldWithNew] {
            let cache = LdCache::parse(&build_cache(format, &sample_entries())).unwrap();
            assert_eq!(cache.format(), format);
            assert_eq!(cache.entries(), sample_entries(), "{format:?}");
            let path = |name, arch| cache.lookup(name, arch).map(|e| e.path.clone());
            assert_eq!(path("libfoo.so.1", &X86_64), Some("/lib64/libfoo.so.1".into()));
            assert_eq!(path("libfoo.so.1", &X32), Some("/libx32/libfoo.so.1".into()));
            assert_eq!(path("libfoo.so.1", &I386), Some("/lib32/libfoo.so.1".into()));
            assert_eq!(path("libbar.so.2", &I386), Some("/lib32/libbar.so.2".into()));
            assert_eq!(path("libbar.so.2", &X86_64), None);
            assert_eq!(path("libfoo.so.1", &AARCH64), None);
            assert_eq!(path("libnone.so", &X86_64), None);
        }
    }

    #[test]
    fn hwcaps_entries_lose_to_the_baseline() {
        let mut tuned = entry("libz.so.1", "/lib/glibc-hwcaps/x86-64-v3/libz.so.1", 0x303);
        tuned.hwcap = 1 << 62;
        let cache = LdCache::parse(&build_cache(CacheFormat::New, &[tuned, entry("libz.so.1", "/lib/libz.so.1", 0x303)])).unwrap();
        assert_eq!(cache.entries()[0].hwcap, 1 << 62);
        assert_eq!(cache.lookup("libz.so.1", &X86_64).unwrap().path, Path::new("/lib/libz.so.1"));
    }

    #[test]
    fn big_endian_new_cache() {
        let mut bytes = build_cache(CacheFormat::New, &[entry("liba.so", "/a", 0x503)]);
        bytes[NEW_FLAGS_OFFSET] = ENDIAN_BIG;
        for at in [NEW_NLIBS_OFFSET, 24, 48, 52, 56] {
            bytes[at..at + 4].reverse();
        }
        let cache = LdCache::parse(&bytes).unwrap();
        assert_eq!(cache.entries(), [entry("liba.so", "/a", 0x503)]);
    }

    #[test]
    fn malformed_caches_are_errors_not_panics() {
        for format in [CacheFormat::Old, CacheFormat::New, CacheFormat::OldWithNew] {
            let bytes = build_cache(format, &sample_entries());
            for len in 0..bytes.len() {
                let _ = LdCache::parse(&bytes[..len]);
            }
            assert!(LdCache::parse(&bytes[..bytes.len() - 1]).is_err(), "{format:?}");
            for pos in 0..bytes.len() {
                for value in [0x00, 0x7f, 0xff] {
                    let mut broken = bytes.clone();
                    broken[pos] = value;
                    if let Ok(cache) = LdCache::parse(&broken) {
                        let _ = cache.lookup("libfoo.so.1", &X86_64);
                    }
                }
            }
        }
        assert!(LdCache::parse(b"not a cache at all").is_err());
        let mut invalid = build_cache(CacheFormat::New, &sample_entries());
        invalid[NEW_FLAGS_OFFSET] = 1;
        assert!(LdCache::parse(&invalid).is_err());
    }

    #[test]
    fn truncated_host_cache_never_panics() {
        let Ok(bytes) = fs::read("/etc/ld.so.cache") else {
            skip("no /etc/ld.so.cache on this host");
            return;
        };
        for len in (0..bytes.len()).step_by(13) {
            let _ = LdCache::parse(&bytes[..len]);
        }
    }

    #[test]
    fn host_cache_finds_libc() {
        let cache = LdCache::load(Path::new("/")).unwrap();
        assert_eq!(cache.format(), CacheFormat::New);
        assert!(cache.entries().len() > 10);
        let libc = cache.lookup("libc.so.6", &X86_64).unwrap();
        assert_eq!(libc.path, Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(libc.flags, FLAG_ELF_LIBC6 | FLAG_X8664_LIB64);
    }

    #[test]
    fn missing_cache_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(LdCache::load(dir.path()), Err(LdCacheError::Io { .. })));
    }

    /// Builds libraries of three x86 ABIs, lets the real ldconfig write a
    /// cache for a fake root, and checks our parser and flag matching.
    #[test]
    fn cache_written_by_ldconfig() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let source = "int f(void) { return 1; }";
        let abis: [(&str, &[&str]); 3] = [("l64", &[]), ("l32", &["-m32"]), ("lx32", &["-mx32"])];
        for (dir, flags) in abis {
            let out = root.join("opt").join(dir).join("libf.so.1");
            let mut args = vec!["-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libf.so.1"];
            args.extend_from_slice(flags);
            if !gcc(source, &out, &args) {
                return;
            }
        }
        write(root, "/etc/ld.so.conf", "/opt/l64\n/opt/l32\n/opt/lx32/\n");
        let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"].into_iter().find(|p| Path::new(p).exists());
        let Some(ldconfig) = ldconfig else {
            skip("ldconfig not found");
            return;
        };
        let status = Command::new(ldconfig).arg("-X").arg("-r").arg(root).status().unwrap();
        assert!(status.success());

        let cache = LdCache::load(root).unwrap();
        let mut flags: Vec<(u32, &Path)> =
            cache.entries_for("libf.so.1").map(|e| (e.flags & FLAG_REQUIRED_MASK, e.path.as_path())).collect();
        flags.sort();
        assert_eq!(
            flags,
            [
                (0, Path::new("/opt/l32/libf.so.1")),
                (FLAG_X8664_LIB64, Path::new("/opt/l64/libf.so.1")),
                (FLAG_X8664_LIBX32, Path::new("/opt/lx32/libf.so.1")),
            ]
        );
        let found = |arch| cache.lookup("libf.so.1", arch).map(|e| e.path.clone());
        assert_eq!(found(&X86_64), Some("/opt/l64/libf.so.1".into()));
        assert_eq!(found(&I386), Some("/opt/l32/libf.so.1".into()));
        assert_eq!(found(&X32), Some("/opt/lx32/libf.so.1".into()));
        assert_eq!(found(&AARCH64), None);
    }

    #[test]
    fn libcmp_compares_numbers_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Greater);
        assert_eq!(libcmp("libc.so.6", "libc.so.6"), Equal);
        assert_eq!(libcmp("libc.so", "libc.so.6"), Less);
        assert_eq!(libcmp("libz.so.1", "liba.so.1"), Greater);
        assert_eq!(libcmp("lib2.so", "libx.so"), Greater, "a digit sorts after a letter");
        assert_eq!(libcmp("libx.so", "lib2.so"), Less);
    }

    /// glibc's `search_cache` (elf/dl-cache.c): a binary search over entries
    /// sorted by descending `libcmp`, then back to the first equal key.
    fn glibc_search<'a>(cache: &'a LdCache, name: &str) -> Option<&'a CacheEntry> {
        let entries = cache.entries();
        let (mut left, mut right) = (0i64, entries.len() as i64 - 1);
        while left <= right {
            let middle = (left + right) / 2;
            match libcmp(name, &entries[middle as usize].soname) {
                std::cmp::Ordering::Equal => {
                    let mut first = middle as usize;
                    while first > 0 && entries[first - 1].soname == name {
                        first -= 1;
                    }
                    return Some(&entries[first]);
                }
                std::cmp::Ordering::Less => left = middle + 1,
                std::cmp::Ordering::Greater => right = middle - 1,
            }
        }
        None
    }

    #[test]
    fn written_cache_is_found_by_glibc_s_binary_search_and_is_deterministic() {
        let names = ["libc.so.6", "libm.so.6", "libz.so.1", "libfoo.so.9", "libfoo.so.10", "ld-linux-x86-64.so.2", "libpcre2-8.so.0"];
        let entries: Vec<CacheEntry> =
            names.iter().map(|n| entry(n, &format!("/lib/x86_64-linux-gnu/{n}"), FLAG_X8664_LIB64 | FLAG_ELF_LIBC6)).collect();
        let bytes = super::write(&entries);
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(super::write(&reversed), bytes, "the same entries give the same bytes, in any order");
        let cache = LdCache::parse(&bytes).unwrap();
        assert_eq!(cache.format(), CacheFormat::New);
        assert_eq!(cache.entries().len(), names.len());
        for name in names {
            assert_eq!(glibc_search(&cache, name).map(|e| e.soname.as_str()), Some(name));
            assert_eq!(cache.lookup(name, &X86_64).unwrap().path, Path::new(&format!("/lib/x86_64-linux-gnu/{name}")));
        }
        assert!(glibc_search(&cache, "libnone.so.1").is_none());
    }

    /// The host's ldconfig reads what we write as a cache of its own.
    #[test]
    fn written_cache_is_read_by_ldconfig() {
        let Some(ldconfig) = ["/sbin/ldconfig", "/usr/sbin/ldconfig"].into_iter().find(|p| Path::new(p).exists()) else {
            skip("ldconfig not found");
            return;
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        let entries = [entry("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", FLAG_X8664_LIB64 | FLAG_ELF_LIBC6)];
        fs::write(file.path(), super::write(&entries)).unwrap();
        let output = Command::new(ldconfig).arg("-p").arg("-C").arg(file.path()).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("1 libs found in cache"), "{text}");
        assert!(text.contains("libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"), "{text}");
    }

    #[test]
    fn cache_flags_per_arch() {
        assert_eq!(cache_flags(&X86_64), 0x0303);
        assert_eq!(cache_flags(&X32), 0x0803);
        assert_eq!(cache_flags(&I386), 0x0003);
        assert_eq!(cache_flags(&AARCH64), 0x0a03);
        let armhf = Arch { class: ElfClass::Elf32, little_endian: true, machine: header::EM_ARM, e_flags: 0x0500_0400 };
        assert_eq!(cache_flags(&armhf), 0x0903);
        assert!(flags_accepted(&armhf, 0x0003) && !flags_accepted(&armhf, 0x0b03));
        assert!(!flags_accepted(&X86_64, FLAG_ELF_LIBC6) && !flags_accepted(&X86_64, 0x0803));
    }

    fn write(root: &Path, path: &str, text: &str) {
        let full = in_root(root, Path::new(path));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }

    #[test]
    fn ld_so_conf_with_includes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "/etc/ld.so.conf",
            "# comment\ninclude conf.d/*.conf\n  /opt/a/lib/ # trailing\nhwcap 1 x\ninclude\t/etc/extra.conf /etc/missing*.conf\n/opt/a/lib\n",
        );
        write(root, "/etc/conf.d/20-b.conf", "/opt/b\ninclude ../ld.so.conf\n");
        write(root, "/etc/conf.d/10-a.conf", "/opt/first\n\n   \n");
        write(root, "/etc/conf.d/.hidden.conf", "/opt/hidden\n");
        write(root, "/etc/conf.d/notes.txt", "/opt/notes\n");
        write(root, "/etc/extra.conf", "/opt/extra\tlib\n");
        let dirs = ld_so_conf_dirs(root);
        let expected = ["/opt/first", "/opt/b", "/opt/a/lib", "/opt/extra\tlib"];
        assert_eq!(dirs, expected.map(PathBuf::from));
    }

    #[test]
    fn ld_so_conf_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ld_so_conf_dirs(dir.path()).is_empty());
    }

    #[test]
    fn host_ld_so_conf() {
        let dirs = ld_so_conf_dirs(Path::new("/"));
        assert!(dirs.contains(&PathBuf::from("/usr/lib/x86_64-linux-gnu")), "{dirs:?}");
    }

    #[test]
    fn conf_lines() {
        assert_eq!(parse_conf_line("include a b\tc"), ConfLine::Include(vec!["a", "b", "c"]));
        assert_eq!(parse_conf_line("includes/x"), ConfLine::Dir("includes/x".into()));
        assert_eq!(parse_conf_line("HWCAP 0 nosegneg"), ConfLine::Blank);
        assert_eq!(parse_conf_line("/#x"), ConfLine::Blank);
        assert_eq!(parse_conf_line("///"), ConfLine::Blank);
    }

    #[test]
    fn wildcards() {
        let m = |p: &str, n: &str| wildcard_match(p.as_bytes(), n.as_bytes());
        assert!(m("*.conf", "x86_64-linux-gnu.conf"));
        assert!(!m("*.conf", "a.conf.bak"));
        assert!(m("a*b*c", "aXXbYYc") && !m("a*b*c", "aXXbYY"));
        assert!(m("?[0-9][!a]", "x5b") && !m("?[0-9][!a]", "x5a"));
        assert!(m("[]]", "]") && m("[", "[") && m("\\*", "*") && !m("\\*", "a"));
        assert!(m("*", "") && !m("?", ""));
    }
}

//! The few ELF facts the dynamic loader acts on: interpreter, DT_NEEDED,
//! DT_RPATH/DT_RUNPATH, DT_SONAME, class, machine.
//!
//! Only the ELF header, the program headers and the dynamic segment are read,
//! exactly like ld.so does. Section headers and symbol tables are ignored on
//! purpose: stripped or oddly linked binaries often have broken ones, and the
//! loader never looks at them, so neither should we.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use goblin::container::Ctx;
use goblin::elf::Elf;
use goblin::elf::dynamic::{self, Dynamic};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};

/// `\x7fELF`, the first four bytes of every ELF file.
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// Size of an ELF64 header; an ELF32 header (52 bytes) is shorter.
const MAX_HEADER_LEN: usize = 64;

/// How many bytes of a `#!` line the kernel reads (BINPRM_BUF_SIZE, Linux >= 5.1).
const SHEBANG_BUF_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

impl ElfClass {
    pub fn bits(self) -> u8 {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 64,
        }
    }
}

/// Everything ld.so compares before it accepts a file as a library for a
/// given program (glibc's `open_verify`): class, byte order and machine.
/// `e_flags` rides along because ldconfig uses it to tag ARM hard/soft-float,
/// RISC-V and LoongArch float ABIs and MIPS NaN modes in ld.so.cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arch {
    pub class: ElfClass,
    pub little_endian: bool,
    pub machine: u16,
    pub e_flags: u32,
}

impl Arch {
    /// Would ld.so, running `self`, load a library of arch `other`?
    /// glibc rejects (and keeps searching past) a file whose class, byte
    /// order or machine differ; it does not look at `e_flags` here.
    pub fn can_load(&self, other: &Arch) -> bool {
        self.class == other.class && self.little_endian == other.little_endian && self.machine == other.machine
    }

    /// The arch this program itself was compiled for: the host's arch when
    /// the host runs natively.
    pub fn native() -> Option<Arch> {
        let (class, machine) = match std::env::consts::ARCH {
            "x86_64" if cfg!(target_pointer_width = "32") => (ElfClass::Elf32, header::EM_X86_64),
            "x86_64" => (ElfClass::Elf64, header::EM_X86_64),
            "x86" => (ElfClass::Elf32, header::EM_386),
            "aarch64" => (ElfClass::Elf64, header::EM_AARCH64),
            "arm" => (ElfClass::Elf32, header::EM_ARM),
            "powerpc64" => (ElfClass::Elf64, header::EM_PPC64),
            "powerpc" => (ElfClass::Elf32, header::EM_PPC),
            "s390x" => (ElfClass::Elf64, header::EM_S390),
            "riscv64" => (ElfClass::Elf64, header::EM_RISCV),
            "loongarch64" => (ElfClass::Elf64, header::EM_LOONGARCH),
            "sparc64" => (ElfClass::Elf64, header::EM_SPARCV9),
            "mips64" => (ElfClass::Elf64, header::EM_MIPS),
            "mips" => (ElfClass::Elf32, header::EM_MIPS),
            _ => return None,
        };
        Some(Arch { class, little_endian: cfg!(target_endian = "little"), machine, e_flags: native_e_flags() })
    }
}

/// The float-ABI bits that distinguish ld.so.cache entries on ARM and
/// RISC-V; elsewhere the cache flags do not depend on `e_flags`.
fn native_e_flags() -> u32 {
    const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
    const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
    const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
    const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;
    if cfg!(target_arch = "arm") {
        let float = if cfg!(target_abi = "eabihf") { EF_ARM_ABI_FLOAT_HARD } else { EF_ARM_ABI_FLOAT_SOFT };
        EF_ARM_EABI_VER5 | float
    } else if cfg!(target_arch = "riscv64") {
        EF_RISCV_FLOAT_ABI_DOUBLE
    } else {
        0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`. None for static
    /// binaries and for most shared libraries.
    pub interpreter: Option<PathBuf>,
    /// DT_NEEDED entries, in file order (the order ld.so loads them).
    pub needed: Vec<String>,
    /// DT_RPATH entries split on ':'. An empty element is kept: glibc
    /// reads it as the current directory.
    pub rpath: Vec<String>,
    /// DT_RUNPATH entries split on ':'. Non-empty means the object has a
    /// DT_RUNPATH, which makes ld.so ignore its DT_RPATH.
    pub runpath: Vec<String>,
    pub soname: Option<String>,
    pub class: ElfClass,
    /// `e_machine` (EM_X86_64 = 62, EM_AARCH64 = 183, EM_386 = 3, ...).
    pub machine: u16,
    pub little_endian: bool,
    pub e_flags: u32,
    /// `e_type`: ET_EXEC (2) for fixed-address executables, ET_DYN (3) for
    /// shared objects and PIE executables.
    pub e_type: u16,
    /// DF_1_NODEFLIB: ld.so must skip ld.so.cache entries in the default
    /// directories and the default directories themselves for this object.
    pub nodeflib: bool,
    /// Has a PT_DYNAMIC segment. False for classic static binaries
    /// (static-pie binaries have one, but no DT_NEEDED).
    pub has_dynamic: bool,
}

impl ElfInfo {
    pub fn arch(&self) -> Arch {
        Arch { class: self.class, little_endian: self.little_endian, machine: self.machine, e_flags: self.e_flags }
    }

    /// No interpreter and no DT_NEEDED: nothing to resolve (static or
    /// static-pie executable).
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }

    /// The rpath ld.so actually uses: DT_RPATH is ignored when DT_RUNPATH
    /// is present (glibc `get-dynamic-info.h`).
    pub fn effective_rpath(&self) -> &[String] {
        if self.runpath.is_empty() { &self.rpath } else { &[] }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is a broken ELF file: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Reads the loader-relevant facts of `path`.
///
/// Returns `Ok(None)` when the file does not start with the ELF magic (a
/// script, a text file, an empty file): only 4 bytes are read in that case,
/// so this is cheap to call on every file of a package.
pub fn read_elf(path: &Path) -> Result<Option<ElfInfo>, ElfError> {
    let io_err = |source| ElfError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 4];
    if !read_prefix(&mut file, &mut magic).map_err(io_err)? {
        return Ok(None);
    }
    if magic != ELF_MAGIC {
        return Ok(None);
    }
    let bytes = read_rest(&mut file, &magic).map_err(io_err)?;
    parse_elf(&bytes).map(Some).map_err(|reason| ElfError::Malformed { path: path.to_path_buf(), reason })
}

/// Reads only the ELF header of `path`: what the search needs to accept or
/// reject a candidate library without reading megabytes.
/// `Ok(None)`: not an ELF file, or an ELF file whose header is unusable
/// (ld.so skips those candidates too).
pub fn read_arch(path: &Path) -> io::Result<Option<Arch>> {
    let mut file = File::open(path)?;
    let mut buf = [0u8; MAX_HEADER_LEN];
    let len = read_up_to(&mut file, &mut buf)?;
    Ok(parse_arch(&buf[..len]))
}

/// The arch of an ELF image given its first bytes (at least 52 for ELF32,
/// 64 for ELF64); None when they do not form a valid header.
pub fn parse_arch(bytes: &[u8]) -> Option<Arch> {
    if bytes.len() < 4 || bytes[..4] != ELF_MAGIC {
        return None;
    }
    let header = Elf::parse_header(bytes).ok()?;
    arch_of(&header).ok()
}

/// Parses an in-memory ELF image. The error is a human-readable reason.
pub fn parse_elf(bytes: &[u8]) -> Result<ElfInfo, String> {
    let header = Elf::parse_header(bytes).map_err(|e| format!("bad ELF header: {e}"))?;
    let arch = arch_of(&header)?;
    let ctx = Ctx::new(header.container().map_err(|e| e.to_string())?, header.endianness().map_err(|e| e.to_string())?);
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)
        .map_err(|e| format!("bad program headers: {e}"))?;
    let interpreter = read_interpreter(bytes, &phdrs)?;
    let dynamic = Dynamic::parse(bytes, &phdrs, ctx).map_err(|e| format!("bad dynamic segment: {e}"))?;
    let mut info = ElfInfo {
        interpreter,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        soname: None,
        class: arch.class,
        machine: arch.machine,
        little_endian: arch.little_endian,
        e_flags: arch.e_flags,
        e_type: header.e_type,
        nodeflib: false,
        has_dynamic: dynamic.is_some(),
    };
    if let Some(dynamic) = dynamic {
        fill_dynamic(&mut info, bytes, &dynamic)?;
    }
    Ok(info)
}

fn arch_of(header: &Header) -> Result<Arch, String> {
    let class = match header.e_ident[header::EI_CLASS] {
        header::ELFCLASS32 => ElfClass::Elf32,
        header::ELFCLASS64 => ElfClass::Elf64,
        other => return Err(format!("unknown ELF class {other}")),
    };
    let little_endian = match header.e_ident[header::EI_DATA] {
        header::ELFDATA2LSB => true,
        header::ELFDATA2MSB => false,
        other => return Err(format!("unknown ELF byte order {other}")),
    };
    Ok(Arch { class, little_endian, machine: header.e_machine, e_flags: header.e_flags })
}

/// PT_INTERP holds a NUL-terminated path.
fn read_interpreter(bytes: &[u8], phdrs: &[ProgramHeader]) -> Result<Option<PathBuf>, String> {
    let Some(interp) = phdrs.iter().find(|ph| ph.p_type == program_header::PT_INTERP) else {
        return Ok(None);
    };
    let start = usize::try_from(interp.p_offset).map_err(|_| "PT_INTERP offset too large")?;
    let len = usize::try_from(interp.p_filesz).map_err(|_| "PT_INTERP size too large")?;
    let raw = start.checked_add(len).and_then(|end| bytes.get(start..end)).ok_or("PT_INTERP lies outside the file")?;
    let path = raw.split(|&b| b == 0).next().unwrap_or_default();
    if path.is_empty() {
        return Err("empty PT_INTERP".into());
    }
    Ok(Some(PathBuf::from(OsStr::from_bytes(path))))
}

/// Reads DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME and DT_FLAGS_1.
fn fill_dynamic(info: &mut ElfInfo, bytes: &[u8], dynamic: &Dynamic) -> Result<(), String> {
    // goblin already translated DT_STRTAB from an address to a file offset;
    // 0 means it could not (or there is no string table).
    let strtab = DynStrings { bytes, offset: dynamic.info.strtab, size: dynamic.info.strsz };
    info.nodeflib = dynamic.info.flags_1 & dynamic::DF_1_NODEFLIB != 0;
    for entry in &dynamic.dyns {
        match entry.d_tag {
            dynamic::DT_NEEDED => info.needed.push(strtab.get(entry.d_val, "DT_NEEDED")?),
            dynamic::DT_SONAME => info.soname = Some(strtab.get(entry.d_val, "DT_SONAME")?),
            dynamic::DT_RPATH => info.rpath.extend(split_path_list(&strtab.get(entry.d_val, "DT_RPATH")?)),
            dynamic::DT_RUNPATH => info.runpath.extend(split_path_list(&strtab.get(entry.d_val, "DT_RUNPATH")?)),
            _ => {}
        }
    }
    Ok(())
}

/// ld.so splits rpath strings on ':' and keeps empty elements.
fn split_path_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(':').map(str::to_owned)
}

/// The dynamic string table (DT_STRTAB/DT_STRSZ).
struct DynStrings<'a> {
    bytes: &'a [u8],
    offset: usize,
    size: usize,
}

impl DynStrings<'_> {
    fn get(&self, index: u64, tag: &str) -> Result<String, String> {
        if self.offset == 0 {
            return Err(format!("{tag} present but DT_STRTAB is missing or unmapped"));
        }
        let table_end = self.offset.saturating_add(self.size).min(self.bytes.len());
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| self.offset.checked_add(i))
            .filter(|&start| start < table_end)
            .ok_or_else(|| format!("{tag} string index {index} outside the string table"))?;
        let raw = &self.bytes[start..table_end];
        let end = raw.iter().position(|&b| b == 0).ok_or_else(|| format!("{tag} string at index {index} is not terminated"))?;
        String::from_utf8(raw[..end].to_vec()).map_err(|_| format!("{tag} string at index {index} is not valid UTF-8"))
    }
}

/// Fills `buf` completely; false when the file is shorter.
fn read_prefix(file: &mut File, buf: &mut [u8]) -> io::Result<bool> {
    Ok(read_up_to(file, buf)? == buf.len())
}

/// Reads until `buf` is full or end of file; returns the byte count.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The whole file, given its already-consumed first bytes, in one
/// allocation sized from the file's metadata.
fn read_rest(file: &mut File, already_read: &[u8]) -> io::Result<Vec<u8>> {
    let size_hint = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut bytes = Vec::with_capacity(size_hint.max(already_read.len()));
    bytes.extend_from_slice(already_read);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Parses a `#!` line like the kernel's binfmt_script does: the interpreter
/// runs up to the first space or tab; everything after it (trimmed) is ONE
/// optional argument, spaces included. `#!/usr/bin/env python3` gives
/// (`/usr/bin/env`, `Some("python3")`); resolving `env`'s argument through
/// PATH is the caller's decision.
///
/// Like the kernel, only ' ' and '\t' count as blanks: a CRLF script keeps
/// its '\r', and fails here exactly as it would fail to exec.
pub fn shebang(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let mut file = File::open(path).ok()?;
    let mut buf = [0u8; SHEBANG_BUF_LEN];
    let len = read_up_to(&mut file, &mut buf).ok()?;
    parse_shebang(&buf[..len])
}

/// The parsing half of [`shebang`], on the first bytes of a file.
pub fn parse_shebang(bytes: &[u8]) -> Option<(PathBuf, Option<String>)> {
    let rest = bytes.strip_prefix(b"#!")?;
    let line_end = rest.iter().position(|&b| b == b'\n' || b == 0).unwrap_or(rest.len());
    let line = trim_blanks(&rest[..line_end]);
    let interp_end = line.iter().position(|&b| is_blank(b)).unwrap_or(line.len());
    let (interpreter, arg) = line.split_at(interp_end);
    if interpreter.is_empty() {
        return None;
    }
    let interpreter = PathBuf::from(String::from_utf8(interpreter.to_vec()).ok()?);
    let arg = trim_blanks(arg);
    let arg = if arg.is_empty() { None } else { Some(String::from_utf8(arg.to_vec()).ok()?) };
    Some((interpreter, arg))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// Compiles C `source` with gcc into `out` with extra `args`.
    /// Returns false (after saying why) when gcc is unusable; under CI=true
    /// a skipped test is a failed test, so this panics instead.
    pub(crate) fn gcc(source: &str, out: &Path, args: &[&str]) -> bool {
        let dir = out.parent().expect("output has a directory");
        std::fs::create_dir_all(dir).expect("create output dir");
        let src = out.with_extension("c");
        std::fs::write(&src, source).expect("write C source");
        let result = Command::new("gcc").arg(&src).arg("-o").arg(out).args(args).output();
        match result {
            Ok(output) if output.status.success() => true,
            Ok(output) => skip(&format!("gcc {args:?} failed: {}", String::from_utf8_lossy(&output.stderr))),
            Err(e) => skip(&format!("gcc not runnable: {e}")),
        }
    }

    /// Reports a skipped test; fails it when running under CI.
    pub(crate) fn skip(why: &str) -> bool {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("test cannot run under CI=true: {why}");
        }
        eprintln!("SKIPPED: {why}");
        false
    }

    #[test]
    fn host_ls_is_dynamic_with_libc() {
        let info = read_elf(Path::new("/bin/ls")).unwrap().expect("/bin/ls is ELF");
        assert_eq!(info.interpreter.as_deref(), Some(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{:?}", info.needed);
        assert!(info.needed.iter().any(|n| n == "libselinux.so.1"), "{:?}", info.needed);
        assert_eq!(info.class, ElfClass::Elf64);
        assert_eq!(info.machine, header::EM_X86_64);
        assert!(!info.is_static());
    }

    #[test]
    fn host_libc_has_soname() {
        let info = read_elf(Path::new("/lib/x86_64-linux-gnu/libc.so.6")).unwrap().unwrap();
        assert_eq!(info.soname.as_deref(), Some("libc.so.6"));
        assert_eq!(info.e_type, header::ET_DYN);
    }

    #[test]
    fn bare_elf32_header_gives_its_arch() {
        let mut bytes = vec![0u8; 52];
        bytes[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        bytes[16..18].copy_from_slice(&header::ET_DYN.to_le_bytes());
        bytes[18..20].copy_from_slice(&header::EM_386.to_le_bytes());
        let arch = parse_arch(&bytes).unwrap();
        assert_eq!((arch.class, arch.machine, arch.little_endian), (ElfClass::Elf32, header::EM_386, true));
        assert_eq!(parse_arch(&bytes[..51]), None);
        bytes[4] = 9; // no such class
        assert_eq!(parse_arch(&bytes), None);
        assert_eq!(Arch::native().map(|a| a.machine), Some(header::EM_X86_64));
    }

    #[test]
    fn non_elf_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [("empty", &b""[..]), ("short", b"\x7fE"), ("text", b"hello world\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            assert!(read_elf(&path).unwrap().is_none(), "{name}");
            assert!(read_arch(&path).unwrap().is_none(), "{name}");
        }
    }

    #[test]
    fn missing_file_is_io_error_with_path() {
        let err = read_elf(Path::new("/nonexistent/x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }

    #[test]
    fn truncated_elf_never_panics() {
        let bytes = std::fs::read("/bin/ls").unwrap();
        let mut lengths: Vec<usize> = (0..200).collect();
        lengths.extend((200..bytes.len()).step_by(997));
        for len in lengths {
            let _ = parse_elf(&bytes[..len]);
            let _ = parse_arch(&bytes[..len]);
        }
        // Truncated just after the magic: an error that names the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken");
        std::fs::write(&path, &bytes[..40]).unwrap();
        let err = read_elf(&path).unwrap_err();
        assert!(matches!(err, ElfError::Malformed { .. }));
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn corrupted_dynamic_never_panics() {
        // Flip bytes all over the headers and the dynamic segment.
        let original = std::fs::read("/bin/ls").unwrap();
        for pos in (0..original.len().min(16384)).step_by(7) {
            let mut bytes = original.clone();
            bytes[pos] ^= 0xff;
            let _ = parse_elf(&bytes);
        }
    }

    #[test]
    fn static_pie_and_shared_objects() {
        let dir = tempfile::tempdir().unwrap();
        let main = "int main(void) { return 0; }";
        let cases: [(&str, &[&str]); 4] = [
            ("static", &["-static"]),
            ("static-pie", &["-static-pie"]),
            ("pie", &["-pie", "-fPIE"]),
            ("libso.so", &["-shared", "-fPIC", "-Wl,-soname,libso.so.7"]),
        ];
        for (name, args) in cases {
            let out = dir.path().join(name);
            if !gcc(main, &out, args) {
                continue;
            }
            let info = read_elf(&out).unwrap().unwrap();
            match name {
                "static" => {
                    assert!(info.is_static() && !info.has_dynamic && info.interpreter.is_none());
                    assert_eq!(info.e_type, header::ET_EXEC);
                }
                "static-pie" => {
                    assert!(info.is_static() && info.has_dynamic);
                    assert_eq!(info.e_type, header::ET_DYN);
                }
                "pie" => {
                    assert!(info.interpreter.is_some());
                    assert_eq!(info.e_type, header::ET_DYN);
                    assert!(info.needed.iter().any(|n| n == "libc.so.6"));
                }
                _ => assert_eq!(info.soname.as_deref(), Some("libso.so.7")),
            }
        }
    }

    #[test]
    fn rpath_and_runpath_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("prog");
        let args = ["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib:/opt/x::/y"];
        if gcc("int main(void) { return 0; }", &out, &args) {
            let info = read_elf(&out).unwrap().unwrap();
            assert_eq!(info.rpath, ["$ORIGIN/../lib", "/opt/x", "", "/y"]);
            assert!(info.runpath.is_empty());
            assert_eq!(info.effective_rpath().len(), 4);
        }
        let args = ["-Wl,--enable-new-dtags,-rpath,/a:/b"];
        if gcc("int main(void) { return 0; }", &out, &args) {
            let info = read_elf(&out).unwrap().unwrap();
            assert_eq!(info.runpath, ["/a", "/b"]);
            assert!(info.effective_rpath().is_empty());
        }
    }

    #[test]
    fn shebang_lines() {
        let p = |s: &str| parse_shebang(s.as_bytes());
        let pb = PathBuf::from;
        assert_eq!(p("#!/bin/sh\necho"), Some((pb("/bin/sh"), None)));
        assert_eq!(p("#! /usr/bin/env python3\n"), Some((pb("/usr/bin/env"), Some("python3".into()))));
        assert_eq!(p("#!/usr/bin/env -S a b  \n"), Some((pb("/usr/bin/env"), Some("-S a b".into()))));
        assert_eq!(p("#!/bin/bash\t-e"), Some((pb("/bin/bash"), Some("-e".into()))));
        assert_eq!(p("#!/bin/sh\r\n"), Some((pb("/bin/sh\r"), None)));
        assert_eq!(p("#!\n"), None);
        assert_eq!(p("#"), None);
        assert_eq!(p("echo"), None);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/usr/bin/perl -w\nprint 1;\n").unwrap();
        assert_eq!(shebang(&script), Some((pb("/usr/bin/perl"), Some("-w".into()))));
        assert_eq!(shebang(&dir.path().join("missing")), None);
    }
}

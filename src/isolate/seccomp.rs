//! The sandbox's default seccomp filter: the last thing applied before exec.
//!
//! Like Docker's default profile, it lets everything through except a short list
//! of system calls that reach past the sandbox: into the host kernel (modules,
//! kexec, eBPF, keyrings), into the host's mounts and namespaces, or into state
//! every process on the machine shares (the clock, swap, quotas). A denied call
//! fails with `EPERM`, as if the sandbox lacked the privilege; the program sees
//! an ordinary error and can report it. `DENIED` below is that list, and the
//! same data feeds `sandbox explain` (see [`describe`]).
//!
//! What is deliberately *allowed*:
//! - `ptrace`: since Linux 4.8 the kernel re-checks seccomp after a tracer changes
//!   a system call, so tracing cannot be used to slip past this filter, and the
//!   PID namespace already limits tracing to the sandbox's own processes. Students
//!   need `gdb` and `strace`. Docker allows it on the same kernels.
//! - `personality`: the dangerous personas (e.g. mapping page zero) are refused by
//!   the kernel anyway to processes without privilege; allowing all keeps
//!   `setarch` and 32-bit emulation flags working.
//! - `create_module`, `get_kernel_syms`, `query_module`: Docker lists them for
//!   old kernels; modern kernels no longer implement them (ENOSYS) and the
//!   native tables of x86_64 and aarch64 have no number for them.
//!
//! The filter is compiled for the machine the tool runs on. A system call made
//! through another ABI (32-bit `int 0x80` on x86_64, or the x32 ABI) kills the
//! process: those ABIs number system calls differently, so rules written for the
//! native numbers would not apply to them, which is the classic way around a
//! seccomp filter.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch, sock_filter,
};

/// Why applying or building the filter failed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filters are only built for x86_64, aarch64 and riscv64, not {0}")]
    UnsupportedArch(&'static str),
    #[error("could not compile the seccomp filter: {0}")]
    Compile(#[from] seccompiler::BackendError),
    #[error("the seccomp filter is empty or longer than the kernel accepts ({0} instructions)")]
    BadLength(usize),
    #[error(
        "the kernel refused the seccomp filter: it needs no_new_privs set first \
         (prctl PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN"
    )]
    NeedsNoNewPrivs,
    #[error("installing the seccomp filter failed: {0}")]
    Install(io::Error),
}

/// When a rule of [`DENIED`] applies to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum When {
    /// Every call of the system call.
    Always,
    /// Only calls whose argument number `arg` (from 0) has any of `bits` set.
    AnyBitSet { arg: u8, bits: u64 },
    /// Only calls whose argument number `arg` (from 0) equals `value`.
    ArgEquals { arg: u8, value: u64 },
}

/// One system call the default filter refuses, and why (for `sandbox explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// The system call's name, as in `man 2`.
    pub syscall: &'static str,
    /// One sentence a student reads to learn why the call fails.
    pub why: &'static str,
    /// Which calls are refused.
    pub when: When,
    /// The error the call returns instead (`EPERM`, or `ENOSYS` for `clone3`).
    pub errno: i32,
    /// Its number on this machine; taken from `libc::SYS_*`, so a name that
    /// does not exist on the architecture fails to compile instead of being
    /// silently skipped.
    number: libc::c_long,
}

impl Denied {
    /// The system call's number on this machine.
    pub fn number(&self) -> libc::c_long {
        self.number
    }
}

/// `deny!(SYS_name, "why")` builds a [`Denied`] whose name and number both come
/// from the one `libc::SYS_name` constant, so they cannot disagree.
macro_rules! deny {
    ($constant:ident, $why:literal) => {
        deny!($constant, $why, When::Always, libc::EPERM)
    };
    ($constant:ident, $why:literal, $when:expr) => {
        deny!($constant, $why, $when, libc::EPERM)
    };
    ($constant:ident, $why:literal, $when:expr, $errno:expr) => {
        Denied { syscall: without_sys_prefix(stringify!($constant)), why: $why, when: $when, errno: $errno, number: libc::$constant }
    };
}

/// `"SYS_mount"` -> `"mount"`, at compile time.
const fn without_sys_prefix(constant: &'static str) -> &'static str {
    match constant.as_bytes() {
        [b'S', b'Y', b'S', b'_', name @ ..] => match std::str::from_utf8(name) {
            Ok(name) => name,
            Err(_) => panic!("system call names are ASCII"),
        },
        _ => panic!("deny! expects a libc::SYS_* constant"),
    }
}

/// Index of the `flags` argument of clone(2). It is the first argument on
/// x86_64, aarch64 and riscv64 (s390 would put it second).
const CLONE_FLAGS_ARG: u8 = 0;

/// Every CLONE_NEW* flag clone(2) accepts. CLONE_NEWTIME (0x80) is absent on
/// purpose: clone(2) reads that byte as the exit signal, and the kernel only
/// takes CLONE_NEWTIME from unshare and clone3, both denied as a whole.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// The ioctl request that types into a terminal. (`libc::Ioctl` is `c_ulong`
/// with glibc but `c_int` with musl, hence the cast.)
#[allow(clippy::unnecessary_cast)]
const TIOCSTI_REQUEST: u64 = libc::TIOCSTI as u64;

/// The system calls the default filter refuses (Docker's default profile, for
/// a container without CAP_SYS_ADMIN, refuses the same). Kept one entry per
/// line for reading, hence no rustfmt.
#[rustfmt::skip]
pub const DENIED: &[Denied] = &[
    // The host kernel itself.
    deny!(SYS_kexec_load, "would replace the running kernel with another one"),
    deny!(SYS_kexec_file_load, "would replace the running kernel with another one"),
    deny!(SYS_init_module, "would load new code into the host's kernel"),
    deny!(SYS_finit_module, "would load new code into the host's kernel"),
    deny!(SYS_delete_module, "would unload a driver from the host's kernel"),
    deny!(SYS_bpf, "would load eBPF programs into the host's kernel, which can watch every process"),
    deny!(
        SYS_perf_event_open,
        "would let a program watch the host's kernel and other processes; a frequent road to kernel exploits"
    ),
    deny!(
        SYS_userfaultfd,
        "lets a program pause the kernel in the middle of copying memory, a favourite tool of kernel exploits"
    ),
    deny!(SYS_lookup_dcookie, "belongs to the kernel profiler and would reveal paths outside the sandbox"),
    deny!(SYS_nfsservctl, "controlled the kernel's NFS server; obsolete and never needed in a lab"),
    #[cfg(target_arch = "x86_64")]
    deny!(SYS_iopl, "would give direct access to the machine's hardware I/O ports"),
    #[cfg(target_arch = "x86_64")]
    deny!(SYS_ioperm, "would give direct access to the machine's hardware I/O ports"),
    // Keyrings are not namespaced: keys of the host or of other students would be reachable.
    deny!(SYS_keyctl, "the kernel keyring is shared with the host, so its keys would be reachable"),
    deny!(SYS_add_key, "the kernel keyring is shared with the host, so its keys would be reachable"),
    deny!(SYS_request_key, "the kernel keyring is shared with the host, so its keys would be reachable"),
    // Files outside the sandbox's root.
    deny!(
        SYS_open_by_handle_at,
        "opens files by raw inode number, around the sandbox's root: the \"shocker\" container escape"
    ),
    deny!(SYS_name_to_handle_at, "hands out the raw file handles that open_by_handle_at needs to escape"),
    // Mounts: the sandbox sets up every mount before the program starts.
    deny!(SYS_mount, "would change which files are visible; the sandbox made all mounts before your program started"),
    deny!(SYS_umount2, "would remove the sandbox's mounts and could uncover host files beneath them"),
    deny!(SYS_pivot_root, "would swap the root directory; the sandbox has already chosen yours"),
    deny!(SYS_move_mount, "is part of the new mount API, refused like mount"),
    deny!(SYS_open_tree, "is part of the new mount API, refused like mount"),
    deny!(SYS_fsopen, "is part of the new mount API, refused like mount"),
    deny!(SYS_fsconfig, "is part of the new mount API, refused like mount"),
    deny!(SYS_fsmount, "is part of the new mount API, refused like mount"),
    deny!(SYS_fspick, "is part of the new mount API, refused like mount"),
    deny!(SYS_mount_setattr, "would change the flags (such as read-only) of the sandbox's mounts"),
    // Namespaces: new ones hand out fresh privileges to attack the kernel with.
    deny!(SYS_setns, "would join another namespace, possibly the host's"),
    deny!(
        SYS_unshare,
        "would create new namespaces, whose fresh privileges expose much more of the kernel to attack"
    ),
    deny!(
        SYS_clone,
        "with a CLONE_NEW* flag would create new namespaces, refused like unshare; fork and threads still work",
        When::AnyBitSet { arg: CLONE_FLAGS_ARG, bits: CLONE_NAMESPACE_FLAGS }
    ),
    deny!(
        SYS_clone3,
        "keeps its flags in memory the filter cannot read, so it fails with ENOSYS and the C library falls back to clone, which is checked",
        When::Always,
        libc::ENOSYS
    ),
    // State shared by every process on the machine.
    deny!(SYS_reboot, "would restart or halt the machine"),
    deny!(SYS_swapon, "would change the host's swap space"),
    deny!(SYS_swapoff, "would change the host's swap space"),
    deny!(SYS_acct, "would switch process accounting on or off for the whole host"),
    deny!(SYS_settimeofday, "the clock is shared with the host; setting it would set it for everyone"),
    deny!(SYS_clock_settime, "the clock is shared with the host; setting it would set it for everyone"),
    deny!(SYS_clock_adjtime, "the clock is shared with the host; adjusting it would adjust it for everyone"),
    deny!(SYS_adjtimex, "the clock is shared with the host; adjusting it would adjust it for everyone"),
    deny!(SYS_quotactl, "would change disk quotas on the host's file systems"),
    deny!(SYS_quotactl_fd, "would change disk quotas on the host's file systems"),
    // io_uring: a second way into the kernel for every I/O call, one that this
    // filter cannot see into (the operations are in shared memory), and a
    // frequent source of kernel exploits. Docker's default profile refuses it.
    deny!(SYS_io_uring_setup, "runs I/O through shared memory the filter cannot see, and is a frequent road to kernel exploits"),
    deny!(SYS_io_uring_enter, "runs I/O through shared memory the filter cannot see, and is a frequent road to kernel exploits"),
    deny!(SYS_io_uring_register, "runs I/O through shared memory the filter cannot see, and is a frequent road to kernel exploits"),
    // AF_VSOCK talks to the hypervisor and other virtual machines, outside any
    // network namespace: as if the address family did not exist.
    deny!(
        SYS_socket,
        "with AF_VSOCK would talk to the hypervisor and other virtual machines, past the sandbox's network namespace",
        When::ArgEquals { arg: 0, value: libc::AF_VSOCK as u64 },
        libc::EAFNOSUPPORT
    ),
    // Not in Docker's list, but bubblewrap and Flatpak refuse it: without it, a
    // program sharing the caller's terminal could type commands into the
    // caller's shell after the sandbox exits.
    deny!(
        SYS_ioctl,
        "with TIOCSTI would type characters into the terminal, as if you had typed them into your shell",
        When::ArgEquals { arg: 1, value: TIOCSTI_REQUEST }
    ),
];

/// `(syscall, why)` for every refused call, in the order of [`DENIED`], for
/// `sandbox explain`.
pub fn describe() -> Vec<(&'static str, &'static str)> {
    DENIED.iter().map(|denied| (denied.syscall, denied.why)).collect()
}

/// Compiles [`DENIED`] into a BPF program for this machine's architecture.
///
/// The program is a short prologue written here (check the architecture and
/// ABI, answer the calls whose errno is not EPERM) followed by seccompiler's
/// program for the EPERM rules, whose default action is Allow.
pub fn default_filter() -> Result<BpfProgram, SeccompError> {
    let arch = native_arch()?;
    let mut program = prologue(arch);
    program.extend(eperm_program(arch)?);
    Ok(program)
}

/// The default filter for this build, compiled once and cached by the hash of
/// its rules (in the state directory's `cache/`): a start reads 8 bytes an
/// instruction instead of compiling. A missing or damaged cache is rebuilt.
pub fn program() -> Result<BpfProgram, SeccompError> {
    let file = crate::state::home().join("cache").join(format!("seccomp-{}.bpf", table_key()));
    if let Some(program) = read_cached(&file) {
        return Ok(program);
    }
    let program = default_filter()?;
    // A cache that cannot be written (a read-only state directory) costs only time.
    let _ = write_cached(&file, &program);
    Ok(program)
}

/// The hash of everything the program is built from: the table (names,
/// numbers, conditions, errnos), the architecture and this code's version.
fn table_key() -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(format!("v2 {} {} {:?}", std::env::consts::ARCH, env!("CARGO_PKG_VERSION"), DENIED).as_bytes());
    hex::encode(hash.finalize())
}

fn read_cached(file: &std::path::Path) -> Option<BpfProgram> {
    let bytes = std::fs::read(file).ok()?;
    if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > libc::BPF_MAXINSNS as usize {
        return None;
    }
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| sock_filter { code: u16::from_le_bytes([c[0], c[1]]), jt: c[2], jf: c[3], k: word(&c[4..]) })
            .collect(),
    )
}

fn write_cached(file: &std::path::Path, program: &[sock_filter]) -> io::Result<()> {
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend(insn.code.to_le_bytes());
        bytes.extend([insn.jt, insn.jf]);
        bytes.extend(insn.k.to_le_bytes());
    }
    // Written beside it and renamed: a reader never sees half a program.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Installs `program` on the calling thread; it is inherited across fork and
/// exec and can never be removed.
///
/// The kernel accepts a filter only from a process that has set no_new_privs
/// (otherwise a setuid program could be started under a filter that confuses
/// it) or that holds CAP_SYS_ADMIN; the executor sets no_new_privs just before.
/// This function does not set it itself, so that the order of those steps stays
/// visible in the executor.
///
/// Only raw system calls, no allocation: safe to call in a child after fork.
pub fn apply(program: &[sock_filter]) -> Result<(), SeccompError> {
    let len = u16::try_from(program.len())
        .ok()
        .filter(|&len| len > 0 && usize::from(len) <= libc::BPF_MAXINSNS as usize)
        .ok_or(SeccompError::BadLength(program.len()))?;
    let fprog = libc::sock_fprog {
        len,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's layout,
        // the same as libc's; the kernel only reads through this pointer.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `len` valid instructions that outlive the call;
    // the kernel copies them and keeps no reference.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog) };
    match rc {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            error if error.raw_os_error() == Some(libc::EACCES) => Err(SeccompError::NeedsNoNewPrivs),
            error => Err(SeccompError::Install(error)),
        },
    }
}

fn native_arch() -> Result<TargetArch, SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(SeccompError::UnsupportedArch(other)),
    }
}

/// The AUDIT_ARCH_* value the kernel puts in `seccomp_data.arch` for native
/// calls: the ELF machine number, marked 64-bit and little-endian.
fn audit_arch(arch: TargetArch) -> u32 {
    const BITS_64: u32 = 0x8000_0000;
    const LITTLE_ENDIAN: u32 = 0x4000_0000;
    let elf_machine = match arch {
        TargetArch::x86_64 => 62,
        TargetArch::aarch64 => 183,
        TargetArch::riscv64 => 243,
    };
    elf_machine | BITS_64 | LITTLE_ENDIAN
}

// Offsets into the kernel's `struct seccomp_data { int nr; u32 arch; ... }`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const SECCOMP_DATA_ARGS: u32 = 16;

/// Numbers at or above this are x32-ABI calls on x86_64 (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The hand-written start of the program.
///
/// seccompiler checks the architecture itself, but it knows nothing of x32,
/// whose calls carry the x86_64 arch value with their own numbers, and it gives
/// all matched rules one action, while clone3 needs ENOSYS and an AF_VSOCK
/// socket EAFNOSUPPORT. So: kill foreign architectures and x32, then answer
/// the non-EPERM rules before seccompiler's program runs.
fn prologue(arch: TargetArch) -> BpfProgram {
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let mut program = vec![load(SECCOMP_DATA_ARCH), jump_if_equal(audit_arch(arch), 1, 0), ret(kill), load(SECCOMP_DATA_NR)];
    if arch == TargetArch::x86_64 {
        program.push(jump_if_at_least(X32_SYSCALL_BIT, 0, 1));
        program.push(ret(kill));
    }
    for denied in DENIED.iter().filter(|denied| denied.errno != libc::EPERM) {
        let answer = ret(libc::SECCOMP_RET_ERRNO | (denied.errno as u32 & libc::SECCOMP_RET_DATA));
        match denied.when {
            When::Always => program.extend([jump_if_equal(denied.number as u32, 0, 1), answer]),
            // The argument's lower 32 bits (little-endian), then the number back in A.
            When::ArgEquals { arg, value } => program.extend([
                jump_if_equal(denied.number as u32, 0, 4),
                load(SECCOMP_DATA_ARGS + 8 * u32::from(arg)),
                jump_if_equal(value as u32, 0, 1),
                answer,
                load(SECCOMP_DATA_NR),
            ]),
            When::AnyBitSet { .. } => unreachable!("checked by a test: no AnyBitSet rule answers other than EPERM"),
        }
    }
    program
}

fn load(offset: u32) -> sock_filter {
    sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: offset }
}

fn jump_if_equal(value: u32, if_true: u8, if_false: u8) -> sock_filter {
    sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: if_true, jf: if_false, k: value }
}

fn jump_if_at_least(value: u32, if_true: u8, if_false: u8) -> sock_filter {
    sock_filter { code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16, jt: if_true, jf: if_false, k: value }
}

fn ret(action: u32) -> sock_filter {
    sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: action }
}

/// seccompiler's program for the EPERM rules of [`DENIED`].
fn eperm_program(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let filter = SeccompFilter::new(eperm_rules()?, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    Ok(filter.try_into()?)
}

/// The EPERM entries of [`DENIED`], grouped by system call number. An empty
/// rule list means "every call"; several rules for one call match if any does.
fn eperm_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SeccompError> {
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for denied in DENIED.iter().filter(|denied| denied.errno == libc::EPERM) {
        let entry = rules.entry(denied.number).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), conditional_rules(denied.when)?) {
            // An unconditional entry wins over any conditional one.
            (_, None) => *entry = None,
            (Some(existing), Some(more)) => existing.extend(more),
            (None, Some(_)) => {}
        }
    }
    Ok(rules.into_iter().map(|(number, rules)| (number, rules.unwrap_or_default())).collect())
}

/// The rules for a conditional entry, or None when it applies to every call.
fn conditional_rules(when: When) -> Result<Option<Vec<SeccompRule>>, SeccompError> {
    let rules = match when {
        When::Always => return Ok(None),
        // Rules are ANDs of conditions, so "any bit" is one rule per bit.
        When::AnyBitSet { arg, bits } => {
            single_bits(bits).map(|bit| argument_rule(arg, SeccompCmpOp::MaskedEq(bit), bit)).collect::<Result<Vec<_>, _>>()?
        }
        When::ArgEquals { arg, value } => vec![argument_rule(arg, SeccompCmpOp::Eq, value)?],
    };
    Ok(Some(rules))
}

fn single_bits(bits: u64) -> impl Iterator<Item = u64> {
    (0..64).map(|shift| 1u64 << shift).filter(move |bit| bits & bit != 0)
}

/// One condition on an argument. Every argument we test (clone flags, ioctl
/// requests) fits in 32 bits, and the kernel ignores the upper half of an
/// ioctl request, so only the lower 32 bits are compared.
fn argument_rule(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, SeccompError> {
    let condition = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)?;
    Ok(SeccompRule::new(vec![condition])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use std::collections::HashSet;

    #[test]
    fn the_filter_compiles_and_fits_in_the_kernel_limit() {
        let program = default_filter().expect("filter compiles");
        assert!(!program.is_empty());
        assert!(program.len() <= libc::BPF_MAXINSNS as usize, "{} instructions", program.len());
    }

    /// Existence on the native architecture is checked by the compiler (each
    /// entry takes its number from `libc::SYS_*`); this checks that the table
    /// holds each call once, under its kernel name.
    #[test]
    fn every_denied_syscall_is_a_distinct_native_syscall() {
        let mut seen = HashSet::new();
        for denied in DENIED {
            assert!(
                !denied.syscall.is_empty() && denied.syscall.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{:?} is not a system call name",
                denied.syscall
            );
            assert!(denied.number() >= 0 && denied.number() < X32_SYSCALL_BIT.into(), "{denied:?}");
            assert!(seen.insert((denied.syscall, denied.when)), "{} listed twice", denied.syscall);
            assert!(denied.why.len() > 10 && !denied.why.ends_with('.'), "{}: write a short sentence", denied.syscall);
        }
        let names: HashSet<_> = DENIED.iter().map(|denied| denied.syscall).collect();
        for expected in ["kexec_load", "open_by_handle_at", "bpf", "keyctl", "mount", "unshare", "clone", "clone3"] {
            assert!(names.contains(expected), "{expected} must be denied");
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(DENIED.iter().find(|d| d.syscall == "mount").map(Denied::number), Some(165));
    }

    /// The prologue answers unconditional rules and argument equalities only.
    #[test]
    fn other_errnos_have_only_the_conditions_the_prologue_knows() {
        for denied in DENIED.iter().filter(|denied| denied.errno != libc::EPERM) {
            assert!(!matches!(denied.when, When::AnyBitSet { .. }), "{}", denied.syscall);
        }
    }

    #[test]
    fn the_cache_gives_back_the_program_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let program = default_filter().unwrap();
        let file = dir.path().join("seccomp.bpf");
        write_cached(&file, &program).unwrap();
        assert_eq!(read_cached(&file).map(|p| p.len()), Some(program.len()));
        assert!(read_cached(&file).unwrap().iter().zip(&program).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
        // A file that is not a program is not used.
        std::fs::write(&file, b"odd").unwrap();
        assert!(read_cached(&file).is_none());
        assert_eq!(table_key().len(), 64);
    }

    #[test]
    fn describe_lists_every_entry_with_its_reason() {
        let described = describe();
        assert_eq!(described.len(), DENIED.len());
        assert!(described.contains(&("kexec_load", "would replace the running kernel with another one")));
    }

    #[test]
    fn single_bits_splits_a_mask() {
        assert_eq!(single_bits(0b1010).collect::<Vec<_>>(), vec![0b10, 0b1000]);
        assert_eq!(single_bits(CLONE_NAMESPACE_FLAGS).count(), 7);
    }

    // Exit codes of the child in `the_filter_blocks_escapes_and_allows_ordinary_calls`.
    const CHECKS: &[&str] = &[
        "all checks passed",
        "prctl(PR_SET_NO_NEW_PRIVS) failed",
        "applying the filter failed",
        "keyctl(KEYCTL_GET_KEYRING_ID) did not fail with EPERM",
        "unshare(CLONE_NEWUTS) did not fail with EPERM",
        "getpid() failed",
        "fork() without namespace flags did not work",
        "mount() did not fail with EPERM",
        "clone(CLONE_NEWUTS) did not fail with EPERM",
        "clone3() did not fail with ENOSYS",
        "ioctl(TIOCSTI) did not fail with EPERM",
        "io_uring_setup() did not fail with EPERM",
        "socket(AF_VSOCK) did not fail with EAFNOSUPPORT",
        "socket(AF_UNIX) did not work",
    ];

    /// Forks a child that runs `probe` (which must make only raw system calls)
    /// and `_exit`s with its result, never returning into the test harness.
    fn in_child(probe: fn(&BpfProgram) -> i32) -> WaitStatus {
        let program = default_filter().expect("filter compiles");
        // SAFETY: the child runs only async-signal-safe system calls on memory
        // prepared before the fork, then `_exit`s.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = probe(&program);
                // SAFETY: `_exit` ends the child without running the parent's
                // destructors or atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    /// Installs the filter in a forked child and probes it there; the child's
    /// exit code is the index of the first failed check.
    #[test]
    fn the_filter_blocks_escapes_and_allows_ordinary_calls() {
        match in_child(probe_filter_in_child) {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(_, code) => {
                panic!("{}", CHECKS.get(code as usize).copied().unwrap_or("unknown failure"))
            }
            other => panic!("the child did not exit normally: {other:?}"),
        }
    }

    /// An x32-ABI call would dodge rules written for x86_64 numbers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn an_x32_system_call_kills_the_process() {
        let status = in_child(|program| {
            // SAFETY: plain system calls; getpid through the x32 ABI has no arguments.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || apply(program).is_err() {
                    return 1;
                }
                libc::syscall(X32_SYSCALL_BIT as libc::c_long | libc::SYS_getpid);
            }
            0
        });
        assert!(matches!(status, WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSYS, _)), "{status:?}");
    }

    fn fails_with(rc: libc::c_long, errno: i32) -> bool {
        rc == -1 && io::Error::last_os_error().raw_os_error() == Some(errno)
    }

    /// Runs in the forked child: returns 0 or the index of the failed check in `CHECKS`.
    fn probe_filter_in_child(program: &BpfProgram) -> i32 {
        // SAFETY (all blocks below): plain system calls with valid arguments;
        // any memory they read is owned by this frame or by `program`.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 1;
        }
        if apply(program).is_err() {
            return 2;
        }
        let keyctl = unsafe {
            libc::syscall(libc::SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0)
        };
        if !fails_with(keyctl, libc::EPERM) {
            return 3;
        }
        if !fails_with(unsafe { libc::unshare(libc::CLONE_NEWUTS) }.into(), libc::EPERM) {
            return 4;
        }
        if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
            return 5;
        }
        if !plain_fork_works() {
            return 6;
        }
        // A target that does not exist, so that even if the filter failed, root
        // would get ENOENT and nothing would be mounted on the host.
        let target = c"/nonexistent-sandbox-seccomp-test";
        let mount = unsafe { libc::mount(c"none".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) };
        if !fails_with(mount.into(), libc::EPERM) {
            return 7;
        }
        let flags = (libc::CLONE_NEWUTS | libc::SIGCHLD) as libc::c_long;
        let clone = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if clone == 0 {
            // The filter failed and we are a new child: leave at once.
            unsafe { libc::_exit(0) }
        }
        if !fails_with(clone, libc::EPERM) {
            return 8;
        }
        if !fails_with(unsafe { libc::syscall(libc::SYS_clone3, 0, 0) }, libc::ENOSYS) {
            return 9;
        }
        let byte: libc::c_char = 0;
        // fd -1: were the filter missing, this fails with EBADF and types nothing.
        let tiocsti = unsafe { libc::ioctl(-1, libc::TIOCSTI, &byte as *const libc::c_char) };
        if !fails_with(tiocsti.into(), libc::EPERM) {
            return 10;
        }
        let mut params = [0u8; 120];
        if !fails_with(unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) }, libc::EPERM) {
            return 11;
        }
        if !fails_with(unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) }.into(), libc::EAFNOSUPPORT) {
            return 12;
        }
        let unix = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        if unix < 0 {
            return 13;
        }
        unsafe { libc::close(unix) };
        0
    }

    /// fork(2) through the C library (clone with SIGCHLD and no namespace flag).
    fn plain_fork_works() -> bool {
        // SAFETY: the grandchild only calls `_exit`.
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(7) },
            -1 => false,
            pid => {
                let mut status = 0;
                // SAFETY: waits for the grandchild forked just above.
                let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
                waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7
            }
        }
    }
}

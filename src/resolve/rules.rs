//! Runtime files: what programs load without linking it (NSS modules, terminfo,
//! a language's standard library, gcc's helpers). This is a table of data; the
//! resolver applies it. To teach the builder about a new program, add a rule.
//!
//! Paths may use `{triplet}` (the multiarch directory, e.g. x86_64-linux-gnu),
//! `{name}` (the file name of the program or library that fired the rule) and
//! `{terminfo}` (each terminfo directory); `*` and `[...]` are globs. A pattern
//! that matches nothing adds nothing: rules describe what a program may load,
//! and a host without, say, vim's runtime simply has none to copy.

/// When a rule fires.
#[derive(Clone, Copy, Debug)]
pub enum When {
    /// A program in the rootfs whose file name (after symlinks) matches this glob.
    Program(&'static str),
    /// An ELF file in the rootfs that needs a library whose soname matches this glob.
    Library(&'static str),
}

/// What a rule adds.
#[derive(Clone, Copy, Debug)]
pub enum Add {
    /// Files, links or (empty) directories matching the pattern.
    File(&'static str),
    /// Whole directory trees matching the pattern.
    Tree(&'static str),
    /// Programs: added like `binaries`, so their own libraries follow.
    Program(&'static str),
    /// The files dpkg installed for packages matching a glob (documentation,
    /// manuals and message catalogs left out); `fallback` is the tree to take
    /// on a host without dpkg.
    Package { name: &'static str, fallback: &'static str },
}

#[derive(Debug)]
pub struct Rule {
    /// Stable id, printed by `sandbox why`.
    pub id: &'static str,
    pub when: &'static [When],
    pub add: &'static [Add],
    /// One sentence a student reads in `sandbox why`.
    pub why: &'static str,
}

/// Terminal types a class meets: the console, xterm-likes, screen, tmux.
pub const COMMON_TERMINALS: &[&str] = &[
    "a/ansi",
    "d/dumb",
    "l/linux",
    "v/vt100",
    "v/vt102",
    "v/vt220",
    "x/xterm",
    "x/xterm-256color",
    "x/xterm-color",
    "s/screen",
    "s/screen-256color",
    "t/tmux",
    "t/tmux-256color",
    "r/rxvt-unicode",
    "r/rxvt-unicode-256color",
    "a/alacritty",
];

/// Where ncurses looks for terminfo entries (Debian puts the common ones in /lib).
pub const TERMINFO_DIRS: &[&str] = &["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo"];

/// Documentation and translations never needed to run a package's programs.
pub const PACKAGE_EXCLUDES: &[&str] =
    &["/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/lintian", "/usr/share/bug", "/usr/share/locale"];

pub const RULES: &[Rule] = &[
    Rule {
        id: "nss",
        when: &[When::Library("libc.so.6")],
        add: &[
            Add::File("/lib/{triplet}/libnss_files.so.2"),
            Add::File("/lib/{triplet}/libnss_dns.so.2"),
            Add::File("/etc/services"),
            Add::File("/etc/protocols"),
            Add::File("/etc/networks"),
            Add::File("/etc/host.conf"),
        ],
        why: "glibc loads NSS modules with dlopen to turn uids into names and names into addresses; \
              they are never DT_NEEDED, so ldd does not list them",
    },
    Rule {
        id: "terminfo",
        when: &[When::Library("libtinfo.so.*"), When::Library("libncurses*.so.*")],
        add: &[Add::File("{terminfo}/{term}")],
        why: "curses programs read the terminal's capabilities (colors, how to clear the screen) \
              from terminfo files at run time",
    },
    Rule {
        id: "readline",
        when: &[When::Program("bash")],
        add: &[Add::File("/etc/inputrc"), Add::File("/etc/bash.bashrc"), Add::File("/etc/profile")],
        why: "bash reads its start-up files and readline's key bindings when it starts",
    },
    Rule {
        id: "gconv",
        when: &[When::Program("iconv"), When::Program("iconv_program")],
        add: &[Add::Tree("/usr/lib/{triplet}/gconv")],
        why: "iconv converts between character sets with gconv modules that glibc loads with dlopen",
    },
    Rule {
        id: "python-stdlib",
        when: &[When::Program("python3.[0-9]*")],
        add: &[Add::Tree("/usr/lib/{name}"), Add::Tree("/etc/{name}")],
        why: "Python imports its standard library (encodings, ssl, ctypes...) from files, \
              and its C extension modules are loaded with dlopen",
    },
    Rule {
        id: "python-sysconfig",
        when: &[When::Program("python3.[0-9]*")],
        add: &[Add::File("/usr/include/{name}/pyconfig.h"), Add::File("/usr/include/{triplet}/{name}/pyconfig.h")],
        why: "sysconfig.get_config_h_filename() names pyconfig.h, and pip reads it to build extensions; \
              the build variables come from the standard library's _sysconfigdata module",
    },
    Rule {
        id: "python-venv",
        when: &[When::Program("python3.[0-9]*")],
        add: &[Add::Tree("/usr/share/python-wheels")],
        why: "`python3 -m venv` runs ensurepip, which Debian's Python feeds from the pip and setuptools \
              wheels in /usr/share/python-wheels",
    },
    Rule {
        id: "python-ldconfig",
        when: &[When::Program("python3.[0-9]*")],
        add: &[Add::Program("/sbin/ldconfig")],
        why: "ctypes.util.find_library runs `/sbin/ldconfig -p` to read the library cache",
    },
    Rule {
        id: "perl-stdlib",
        when: &[When::Program("perl"), When::Program("perl5.*")],
        add: &[
            Add::Tree("/usr/lib/{triplet}/perl-base"),
            Add::Tree("/usr/lib/{triplet}/perl/5.*"),
            Add::Tree("/usr/share/perl/5.*"),
            Add::Tree("/usr/lib/{triplet}/perl5/5.*"),
            Add::Tree("/etc/perl"),
        ],
        why: "Perl loads its core modules and their XS libraries from @INC at run time",
    },
    Rule {
        id: "vim-runtime",
        when: &[When::Program("vim*"), When::Program("vi")],
        add: &[Add::Tree("/usr/share/vim"), Add::Tree("/etc/vim")],
        why: "vim reads its runtime files (syntax highlighting, filetype plugins, defaults.vim) when it starts",
    },
    Rule {
        id: "ca-certificates",
        when: &[When::Library("libssl.so.*"), When::Library("libcrypto.so.*"), When::Library("libgnutls.so.*")],
        add: &[Add::Tree("/etc/ssl/certs"), Add::File("/etc/ssl/openssl.cnf"), Add::File("/usr/lib/ssl/*")],
        why: "TLS libraries verify servers against the CA certificates found in /etc/ssl at run time",
    },
    Rule {
        id: "gcc-toolchain",
        when: &[When::Program("*gcc-[0-9]*"), When::Program("gcc")],
        add: &[
            Add::Package { name: "gcc-[0-9]*", fallback: "/usr/lib/gcc/{triplet}" },
            Add::Package { name: "cpp-[0-9]*", fallback: "/usr/libexec/gcc/{triplet}" },
            Add::Package { name: "libgcc-[0-9]*-dev", fallback: "/usr/lib/gcc/{triplet}" },
            Add::Package { name: "libc6-dev", fallback: "/usr/include" },
            Add::Package { name: "linux-libc-dev", fallback: "/usr/include" },
            Add::Package { name: "libcrypt-dev", fallback: "/usr/include" },
            Add::Package { name: "binutils-*", fallback: "/usr/{triplet}" },
            Add::Program("/usr/bin/as"),
            Add::Program("/usr/bin/ld"),
            Add::Program("/usr/bin/ld.bfd"),
        ],
        why: "gcc runs cc1, as, collect2 and ld, and reads headers, crt*.o start files and \
              linker scripts such as libc.so; none of them is linked into gcc",
    },
    Rule {
        id: "iproute2",
        when: &[When::Program("ip")],
        add: &[Add::Tree("/etc/iproute2"), Add::Tree("/usr/share/iproute2"), Add::Tree("/usr/lib/iproute2")],
        why: "ip reads its tables of names (routing tables, protocols) from configuration files",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_patterns_valid() {
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            assert!(!rule.when.is_empty() && !rule.add.is_empty(), "{}", rule.id);
            for w in rule.when {
                let (When::Program(p) | When::Library(p)) = w;
                glob::Pattern::new(p).unwrap_or_else(|e| panic!("{}: {p}: {e}", rule.id));
            }
        }
    }
}

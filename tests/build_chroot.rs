//! The foundation's promise: a rootfs built from a profile works under a plain
//! chroot exactly as on the host, with nothing fixed by hand.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// `sandbox build --out` of tests/data/everything.toml, made once for this test binary.
fn tree() -> Option<&'static Path> {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    if !need_root("chroot into a built rootfs") {
        return None;
    }
    Some(TREE.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("everything-out");
        if out.exists() {
            fs::remove_dir_all(&out).unwrap();
        }
        ok(sandbox().arg("build").arg(profile_path("everything.toml")).arg("--out").arg(&out));
        out
    }))
}

fn chroot(user: Option<&str>, script: &str, env: &[(&str, &str)]) -> Output {
    let dir = tree().expect("root checked by caller");
    let mut cmd = Command::new("chroot");
    if let Some(spec) = user {
        cmd.arg(format!("--userspec={spec}"));
    }
    cmd.arg(dir).args(["/bin/sh", "-c", script]).env_clear();
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin").env("HOME", "/root").env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// Run a script as root inside and return its stdout, asserting success.
fn inside(script: &str, env: &[(&str, &str)]) -> String {
    let output = chroot(None, script, env);
    assert!(output.status.success(), "`{script}` failed inside ({}):\n{}{}", output.status, stdout(&output), stderr(&output));
    stdout(&output)
}

#[test]
fn names_resolve_for_ls_and_id() {
    if tree().is_none() {
        return;
    }
    assert!(inside("ls -ld /home/student", &[]).contains(" student student "));
    let as_student = chroot(Some("1000:1000"), "id; whoami", &[]);
    let text = stdout(&as_student);
    assert!(text.contains("uid=1000(student) gid=1000(student)"), "{text}{}", stderr(&as_student));
    assert!(text.contains("\nstudent"), "{text}");
    assert!(inside("getent passwd root", &[]).starts_with("root:x:0:0:"));
}

#[test]
fn ps_works_with_proc_mounted() {
    let Some(dir) = tree() else { return };
    // A private mount and pid namespace: /proc is mounted there and vanishes with it.
    let output = run(Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", dir.join("proc").display()))
        .arg("chroot")
        .arg(dir)
        .args(["ps", "aux"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.starts_with("USER") && text.contains("ps aux"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("root ")), "{text}");
}

#[test]
fn terminfo_gives_colors_and_clear() {
    if tree().is_none() {
        return;
    }
    assert_eq!(inside("tput colors", &[]).trim(), "256");
    assert!(inside("clear", &[]).contains("\x1b[H\x1b[2J"));
    assert_eq!(inside("tput colors", &[("TERM", "linux")]).trim(), "8");
}

#[test]
fn vim_loads_syntax_highlighting() {
    if tree().is_none() {
        return;
    }
    let script = "vim -N -u NONE -i NONE -es -c 'syntax on' -c 'set ft=c' \
                  -c 'if exists(\"b:current_syntax\") && b:current_syntax == \"c\" | qa! | else | cq! | endif'";
    inside(script, &[]);
    // The defaults every user gets, and the vimrc Debian ships.
    inside("test -f /usr/share/vim/vim*/defaults.vim && test -f /etc/vim/vimrc", &[]);
}

#[test]
fn korean_dates_and_messages() {
    if tree().is_none() {
        return;
    }
    let ko = [("LANG", "ko_KR.UTF-8"), ("TZ", "UTC")];
    assert_eq!(inside("date -d @0 +%A", &ko).trim(), "목요일");
    let output = chroot(None, "ls /nonexistent", &ko);
    assert!(stderr(&output).contains("그런 파일이나 디렉터리가 없습니다"), "{}", stderr(&output));
    assert_eq!(inside("date -d @0 +%A", &[("LANG", "en_US.UTF-8"), ("TZ", "UTC")]).trim(), "Thursday");
    // /etc/localtime is Asia/Seoul; named zones work too.
    assert_eq!(inside("date -d @0 +%H", &[]).trim(), "09");
    assert_eq!(inside("date -d @0 +%H", &[("TZ", "America/New_York")]).trim(), "19");
    assert!(inside("locale -a", &[]).contains("ko_KR.utf8"));
}

#[test]
fn iconv_converts_to_euc_kr() {
    if tree().is_none() {
        return;
    }
    let hex = inside("printf '한글' | iconv -f UTF-8 -t EUC-KR | od -An -tx1", &[]);
    assert_eq!(hex.split_whitespace().collect::<Vec<_>>(), ["c7", "d1", "b1", "db"]);
}

#[test]
fn python_standard_library_and_extensions() {
    if tree().is_none() {
        return;
    }
    let program = r#"
import ssl, ctypes, zoneinfo, curses, sqlite3, subprocess
import datetime; print(datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Seoul")).utcoffset())
ctypes.CDLL("libc.so.6").getpid()
print(sqlite3.connect(":memory:").execute("select 40 + 2").fetchone()[0])
print(subprocess.run(["/bin/true"]).returncode)
print(ssl.create_default_context().cert_store_stats()["x509_ca"] > 0)
curses.setupterm("xterm-256color"); print(curses.tigetnum("colors"))
"#;
    let text = inside(&format!("python3 -c '{program}'"), &[]);
    assert_eq!(text.lines().collect::<Vec<_>>(), ["9:00:00", "42", "0", "True", "256"], "{text}");
}

#[test]
fn perl_core_xs_modules() {
    if tree().is_none() {
        return;
    }
    let text = inside(
        "perl -MPOSIX -MList::Util=sum -MData::Dumper -MStorable=dclone -MFcntl -MSocket -MEncode -e 'print sum(1,2), POSIX::floor(2.5), length(Encode::encode(\"UTF-8\", \"\\x{D55C}\"))'",
        &[],
    );
    assert_eq!(text, "323");
}

#[test]
fn ping_keeps_its_capability_for_students() {
    let Some(dir) = tree() else { return };
    let caps = stdout(&run(Command::new("getcap").arg(dir.join("usr/bin/ping"))));
    let host = stdout(&run(Command::new("getcap").arg("/usr/bin/ping")));
    assert_eq!(caps.split_whitespace().nth(1), host.split_whitespace().nth(1), "capability differs: {caps} vs {host}");
    inside("ping -c1 -W2 127.0.0.1", &[]);
    let output = chroot(Some("1000:1000"), "ping -c1 -W2 127.0.0.1", &[]);
    assert!(output.status.success(), "as student: {}{}", stdout(&output), stderr(&output));
}

#[test]
fn gcc_compiles_links_libm_and_runs() {
    let Some(dir) = tree() else { return };
    let source = "#include <stdio.h>\n#include <math.h>\nint main(void){printf(\"hello %.0f\\n\", sqrt(1764.0));return 0;}\n";
    let work = dir.join("tmp/gcc-test");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("hello.c"), source).unwrap();
    let text = inside("cd /tmp/gcc-test && gcc -O1 -o hello hello.c -lm && ./hello", &[]);
    assert_eq!(text, "hello 42\n");
    fs::remove_dir_all(&work).unwrap();
}

/// Resolve `path` the way a process chrooted at `root` would (RESOLVE_IN_ROOT:
/// `..` and absolute links stay inside), and tell whether it ends at something.
fn resolves_inside(root: &Path, path: &Path) -> bool {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    let root_fd = open(root, OFlag::O_PATH | OFlag::O_DIRECTORY, nix::sys::stat::Mode::empty()).unwrap();
    let how = OpenHow::new().flags(OFlag::O_PATH).resolve(ResolveFlag::RESOLVE_IN_ROOT);
    openat2(&root_fd, path.strip_prefix("/").unwrap(), how).is_ok()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == root.join("tmp") {
            continue; // other tests work there meanwhile
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(Path::new("/").join(path.strip_prefix(root).unwrap()));
        }
    }
}

#[test]
fn every_symlink_and_every_needed_library_resolves_inside() {
    let Some(dir) = tree() else { return };
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    let dangling: Vec<_> = files
        .iter()
        .filter(|p| fs::symlink_metadata(dir.join(p.strip_prefix("/").unwrap())).unwrap().file_type().is_symlink())
        // /dev's standard links point into /proc and devpts, mounted at run time.
        .filter(|p| !p.starts_with("/dev"))
        .filter(|p| !resolves_inside(dir, p))
        .collect();
    assert!(dangling.is_empty(), "symlinks that do not resolve inside: {dangling:?}");

    let search = sandbox::resolve::search::LibrarySearch::from_root(dir);
    let mut missing = Vec::new();
    let mut elves = 0;
    for path in &files {
        let real = dir.join(path.strip_prefix("/").unwrap());
        if fs::symlink_metadata(&real).unwrap().file_type().is_symlink() {
            continue;
        }
        let Ok(Some(info)) = sandbox::resolve::elf::read_elf(&real) else { continue };
        elves += 1;
        for needed in &info.needed {
            if !sandbox_find(&search, dir, path, &info, needed) {
                missing.push(format!("{} needs {needed}", path.display()));
            }
        }
    }
    assert!(elves > 100, "only {elves} ELF files found: the walk is wrong");
    assert!(missing.is_empty(), "libraries that do not resolve inside: {missing:#?}");
}

fn sandbox_find(
    search: &sandbox::resolve::search::LibrarySearch,
    _root: &Path,
    path: &Path, // inside the rootfs: the search reads it below its root
    info: &sandbox::resolve::elf::ElfInfo,
    needed: &str,
) -> bool {
    let requester = sandbox::resolve::search::Requester { path, info, loader_rpaths: &[] };
    search.find(needed, &requester).is_some()
}

#[test]
fn host_files_are_copies_not_hard_links() {
    let Some(dir) = tree() else { return };
    let inside = fs::metadata(dir.join("usr/bin/bash")).unwrap();
    let host = fs::metadata("/usr/bin/bash").unwrap();
    assert_ne!((inside.dev(), inside.ino()), (host.dev(), host.ino()));
    assert_eq!(inside.len(), host.len());
}

//! Profile tests: broken profiles with their exact errors, the ready profiles,
//! `extends` merging, and mangled input that must not panic.

use std::path::{Path, PathBuf};

use super::*;

/// Writes `files` (relative path, text) under a new temporary directory.
fn lab(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn error_of(text: &str) -> String {
    let dir = lab(&[("lab.toml", text)]);
    match load("lab.toml", dir.path()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).expect("canonicalize")
}

const BROKEN: &[(&str, &str)] = &[
    (
        "name = \"lab\"\n[rootfs]\nbinaris = [\"bash\"]\n",
        "lab.toml:3:1: unknown key `binaris` in [rootfs]\n  fix: did you mean `binaries`?",
    ),
    ("name = \"lab\"\n[rootf]\n", "lab.toml:2:2: unknown table `[rootf]`\n  fix: did you mean `[rootfs]`?"),
    ("name = \"lab\"\n[[mount]]\n", "lab.toml:2:3: unknown table `[[mount]]`\n  fix: did you mean `[[mounts]]`?"),
    (
        "name = \"lab\"\nuser = { name = \"a\", bogus = 1 }\n",
        "lab.toml:2:22: unknown key `bogus` in [user]\n  fix: the keys allowed in [user] are `name`, `uid`, `gid`, `home`, `shell`",
    ),
    (
        "name = \"lab\"\n[limits]\npids = \"12\"\n",
        "lab.toml:3:8: `pids` must be an integer, found a string\n  fix: remove the quotes: pids = 12",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = \"bash\"\n",
        "lab.toml:3:12: `binaries` must be an array, found a string\n  fix: write a list in brackets: binaries = [\"bash\"]",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = [\"bash\", 3]\n",
        "lab.toml:3:21: each entry of `binaries` must be a string, found an integer\n  fix: put it in double quotes: \"3\"",
    ),
    (
        "name = \"lab\"\n[[rootfs.copy]]\nfrom = \"a\"\n",
        "lab.toml:2:1: missing key `to` in [[rootfs.copy]]\n  fix: add `to = \"...\"` to this table",
    ),
    ("description = \"x\"\n", "lab.toml: the profile has no `name`\n  fix: add a line like `name = \"my-lab\"` at the top of the file"),
    (
        "name = \"My Lab\"\n",
        "lab.toml:1:8: `name` must be lowercase letters, digits and `-`, starting with a letter or digit; found \"My Lab\"\n  fix: write it as `name = \"my-lab\"`",
    ),
    ("name = 'x\n", "lab.toml:1:10: invalid literal string, expected `'`\n  fix: close the string with `'` on the same line"),
    (
        "name = \"lab\"\nname = \"y\"\n",
        "lab.toml:2:1: duplicate key `name`\n  fix: a key or table may appear only once: merge the two or delete one",
    ),
    // Columns count characters, not bytes.
    (
        "description = \"한국\" x\n",
        "lab.toml:1:20: unexpected key or value, expected newline, `#`\n  fix: put each `key = value` on its own line",
    ),
    (
        "name = \"lab\"\nextends = \"pyton\"\n",
        "lab.toml:2:11: `extends` names `pyton`, which is not a ready profile\n  fix: did you mean `python`? the ready profiles are shell, python, c-dev, net; or give the path of a .toml file",
    ),
    (
        "name = \"lab\"\nextends = \"./lab.toml\"\n",
        "lab.toml:2:11: `extends` makes a cycle: lab -> lab\n  fix: remove `extends` from one of these profiles",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = [\"\"]\n",
        "lab.toml:3:13: an entry of `binaries` is empty\n  fix: remove the empty string \"\"",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = [\"ls\", \"bin/tool\"]\n",
        "lab.toml:3:19: `binaries` entry \"bin/tool\" is neither a program name nor an absolute path\n  fix: write \"tool\" to find it on PATH, or its absolute path, e.g. \"/usr/local/bin/tool\"",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = [\"gcc make\"]\n",
        "lab.toml:3:13: `binaries` entry \"gcc make\" contains a space\n  fix: write one program per string: \"gcc\", \"make\"",
    ),
    (
        "name = \"lab\"\n[rootfs]\nbinaries = [\"a\\u0000b\"]\n",
        "lab.toml:3:13: `binaries` entry \"a\\0b\" contains the control character \\u{0}\n  fix: remove it",
    ),
    (
        "name = \"lab\"\n[rootfs]\nfiles = [\"/etc/../x\"]\n",
        "lab.toml:3:10: `files` must not contain `..`, found \"/etc/../x\"\n  fix: write the path it means without `..`: \"/x\"",
    ),
    (
        "name = \"lab\"\n[[rootfs.write]]\npath = \"etc/motd\"\ncontent = \"hi\"\n",
        "lab.toml:3:8: `path` must be an absolute path inside the sandbox, found \"etc/motd\"\n  fix: start it with `/`: \"/etc/motd\"",
    ),
    (
        "name = \"lab\"\n[[mounts]]\nsource = \".\"\ntarget = \"/srv/../../etc\"\n",
        "lab.toml:4:10: `target` must not contain `..`, found \"/srv/../../etc\"\n  fix: write the path it means without `..`: \"/etc\"",
    ),
    (
        "name = \"lab\"\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"\"\nmode = \"0899\"\n",
        "lab.toml:5:8: `mode` must be an octal string like \"0644\", found \"0899\"\n  fix: write the permission bits as an octal string, e.g. mode = \"0644\" (rw-r--r--) or \"0755\" (rwxr-xr-x)",
    ),
    (
        "name = \"lab\"\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"\"\nmode = 644\n",
        "lab.toml:5:8: `mode` must be a string, found an integer\n  fix: put it in double quotes: mode = \"644\"",
    ),
    (
        "name = \"lab\"\n[user]\nname = \"Student\"\n",
        "lab.toml:3:8: \"Student\" is not a valid user name\n  fix: use lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters, e.g. \"student\"",
    ),
    (
        "name = \"lab\"\n[user]\nname = \"s\"\nuid = 70000\n",
        "lab.toml:4:7: `uid` must be between 0 and 65534, found 70000\n  fix: use a number in that range, e.g. uid = 1000 (0 is root)",
    ),
    (
        "name = \"lab\"\n[user]\nname = \"root\"\nuid = 1000\n",
        "lab.toml:4:7: the user `root` always has uid 0, not 1000\n  fix: remove `uid`, or choose another name than `root`",
    ),
    (
        "name = \"lab\"\n[run]\nmode = \"docker\"\n",
        "lab.toml:3:8: `mode` in [run] must be \"namespace\" or \"chroot\", found \"docker\"\n  fix: write mode = \"namespace\" (full isolation) or mode = \"chroot\" (the classic jail)",
    ),
    (
        "name = \"lab\"\n[run]\ncommand = []\n",
        "lab.toml:3:11: `command` is empty\n  fix: give the program and its arguments, e.g. command = [\"/bin/bash\", \"-l\"]",
    ),
    (
        "name = \"lab\"\n[run]\nhostname = \"lab-\"\n",
        "lab.toml:3:12: \"lab-\" is not a valid hostname\n  fix: use letters, digits and `-` (not at either end), at most 64 characters, e.g. hostname = \"lab\"",
    ),
    (
        "name = \"lab\"\n[limits]\nmemory = \"256X\"\n",
        "lab.toml:3:10: `memory` must be a size like \"256M\", \"1G\" or a positive number of bytes, found \"256X\"\n  fix: write e.g. memory = \"256M\" (K, M and G are powers of 1024)",
    ),
    (
        "name = \"lab\"\n[limits]\ndisk = \"lots\"\n",
        "lab.toml:3:8: `disk` must be a size like \"256M\", \"1G\" or a positive number of bytes, found \"lots\"\n  fix: write e.g. disk = \"256M\" (K, M and G are powers of 1024)",
    ),
    (
        "name = \"lab\"\n[limits]\ndisk = \"1M\"\n",
        "lab.toml:3:8: `disk` must be at least 16M (the instance's filesystem needs room of its own), found \"1M\"\n  fix: write e.g. disk = \"1G\"",
    ),
    (
        "name = \"lab\"\n[limits]\npids = 0\n",
        "lab.toml:3:8: `pids` must be at least 1, found 0\n  fix: give the most processes at once, e.g. pids = 128",
    ),
    (
        "name = \"lab\"\n[limits]\ncpu = 0\n",
        "lab.toml:3:7: `cpu` must be a number of cores above 0 and at most 1024, found 0\n  fix: write e.g. cpu = 0.5 for half a core, cpu = 2 for two",
    ),
    (
        "name = \"lab\"\n[network]\nmode = \"bridge\"\n",
        "lab.toml:3:8: `mode` in [network] must be \"none\", \"loopback\" or \"host\", found \"bridge\"\n  fix: write mode = \"loopback\" (only 127.0.0.1), \"none\" (no interface up) or \"host\" (the host's network)",
    ),
    (
        "name = \"lab\"\n[env]\n\"1A\" = \"x\"\n",
        "lab.toml:3:1: \"1A\" is not a valid environment variable name\n  fix: use letters, digits and `_`, not starting with a digit, e.g. MY_VAR",
    ),
    (
        "name = \"lab\"\n[rootfs]\nlocales = [\"C.UTF-8\", \"korean\"]\n",
        "lab.toml:3:23: \"korean\" is not a locale name\n  fix: write it as language_TERRITORY.codeset, e.g. \"ko_KR.UTF-8\", or \"C.UTF-8\"",
    ),
    (
        "name = \"lab\"\n[rootfs]\ntimezones = [\"../../etc/shadow\"]\n",
        "lab.toml:3:14: `timezones` entry \"../../etc/shadow\" is not a time zone name\n  fix: write a name from /usr/share/zoneinfo, e.g. \"Asia/Seoul\" or \"UTC\" (no leading `/`, no `..`)",
    ),
];

#[test]
fn broken_profiles_give_one_precise_error() {
    for (text, expected) in BROKEN {
        assert_eq!(&error_of(text), expected, "for the profile:\n{text}");
    }
}

#[test]
fn a_missing_file_has_no_position() {
    let dir = lab(&[]);
    let error = load("nope.toml", dir.path()).unwrap_err();
    assert_eq!((error.file(), error.line(), error.column()), ("nope.toml", None, None));
    assert_eq!(
        error.to_string(),
        "nope.toml: cannot read the profile: file not found\n  fix: check the path: it is relative to the current directory"
    );
}

#[test]
fn a_missing_source_is_reported_at_its_value() {
    let dir = lab(&[("labs/a/lab.toml", "name = \"a\"\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/home/\"\n")]);
    let error = load("labs/a/lab.toml", dir.path()).unwrap_err();
    let looked_at = canonical(&dir.path().join("labs/a")).join("files/");
    assert_eq!(
        error.to_string(),
        format!(
            "labs/a/lab.toml:3:8: `from` names `files/`, which does not exist ({})\n  fix: create it, or correct the path: it is relative to the directory of this profile file",
            looked_at.display()
        )
    );
}

#[test]
fn a_missing_parent_is_reported_at_extends() {
    let dir = lab(&[("lab.toml", "name = \"lab\"\nextends = \"base.toml\"\n")]);
    assert_eq!(
        load("./lab.toml", dir.path()).unwrap_err().to_string(),
        "./lab.toml:2:11: cannot read `base.toml`: file not found\n  fix: check the path: it is relative to the directory of this profile file; or name a ready profile (shell, python, c-dev, net)"
    );
}

#[test]
fn an_extends_cycle_names_the_chain() {
    let dir = lab(&[("a.toml", "name = \"a\"\nextends = \"b.toml\"\n"), ("b.toml", "name = \"b\"\nextends = \"./a.toml\"\n")]);
    assert_eq!(
        load("a.toml", dir.path()).unwrap_err().to_string(),
        "b.toml:2:11: `extends` makes a cycle: a -> b -> a\n  fix: remove `extends` from one of these profiles"
    );
}

#[test]
fn an_unknown_ready_profile_suggests_the_closest() {
    let error = load("pyton", Path::new("/")).unwrap_err();
    assert_eq!(error.file(), "pyton");
    assert_eq!(error.cause(), "no ready profile is named `pyton`");
    assert!(error.fix().starts_with("did you mean `python`?"), "{}", error.fix());
}

#[test]
fn every_ready_profile_loads() {
    assert_eq!(ready()[0].name, "shell", "the default comes first");
    for profile in ready() {
        let loaded = load(profile.name, Path::new("/")).unwrap_or_else(|e| panic!("{}: {e}", profile.name));
        assert_eq!(loaded.name, profile.name);
        assert_eq!(loaded.source, Source::Embedded(profile.name.to_owned()));
        assert!(profile.description().is_some_and(|d| !d.is_empty()), "{} has a description", profile.name);
        assert_eq!(loaded.description, profile.description());
        // The files in profiles/ are the embedded ones, and load as paths too.
        let by_path = load(&format!("profiles/{}.toml", profile.name), Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(by_path.is_ok(), "{:?}", by_path.err());
    }
}

#[test]
fn the_shell_profile_has_the_documented_defaults() {
    let shell = load("shell", Path::new("/")).expect("shell loads");
    assert_eq!(shell.layers, ["shell"]);
    assert_eq!((shell.user.name.as_str(), shell.user.uid, shell.user.gid), ("student", 1000, 1000));
    assert_eq!(shell.run.command, ["/bin/bash", "-l"]);
    assert_eq!((shell.run.mode, shell.run.hostname.as_str()), (Mode::Namespace, "lab"));
    assert_eq!(shell.network, NetworkMode::Loopback);
    assert_eq!(shell.limits.memory, Some(512 << 20));
    let bash = &shell.rootfs.binaries[0];
    let line = ready()[0].source.lines().position(|l| l.contains("\"bash\", \"sh\"")).expect("bash line") + 1;
    assert_eq!(bash.value, "bash");
    assert_eq!(bash.origin, Origin { file: "shell.toml".into(), line: line as u32, column: 5 }, "at the opening quote");
}

#[test]
fn defaults_without_user_run_or_network() {
    let dir = lab(&[("lab.toml", "name = \"tiny-\"\n")]);
    let tiny = load("lab.toml", dir.path()).expect("loads");
    assert_eq!(tiny.user, User::default());
    assert_eq!(tiny.run.command, ["/bin/sh"]);
    assert_eq!(tiny.run.hostname, "tiny", "a hostname may not end in `-`");
    assert_eq!(tiny.network, NetworkMode::Loopback);
    assert_eq!(tiny.source, Source::File(canonical(&dir.path().join("lab.toml"))));
}

#[test]
fn extends_merges_parent_first() {
    let dir = lab(&[
        (
            "base.toml",
            "name = \"base\"\ndescription = \"the base\"\nextends = \"shell\"\n[rootfs]\nbinaries = [\"python3\", \"bash\"]\n\
             [[rootfs.copy]]\nfrom = \"files\"\nto = \"/home/student/\"\n[env]\nA = \"1\"\nB = \"base\"\n[limits]\npids = 64\n",
        ),
        ("files/readme", "hello"),
        (
            "labs/one/lab.toml",
            "name = \"one\"\nextends = \"../../base.toml\"\n[rootfs]\nbinaries = [\"python3\", \"gcc\"]\n\
             [env]\nB = \"child\"\n[user]\nname = \"alice\"\n[limits]\nmemory = \"1g\"\n",
        ),
    ]);
    let one = load("labs/one/lab.toml", dir.path()).expect("loads");
    assert_eq!(one.layers, ["shell", "base", "one"]);
    assert_eq!((one.name.as_str(), one.description.as_deref()), ("one", Some("the base")));

    let binaries: Vec<&str> = one.rootfs.binaries.iter().map(|b| b.value.as_str()).collect();
    let count = |name| binaries.iter().filter(|&&b| b == name).count();
    assert_eq!((count("bash"), count("python3"), count("gcc")), (1, 1, 1), "{binaries:?}");
    assert_eq!(binaries[0], "bash", "parent's entries first");
    assert_eq!(binaries[binaries.len() - 2..], ["python3", "gcc"]);
    let python = one.rootfs.binaries.iter().find(|b| b.value == "python3").expect("python3");
    assert_eq!(python.origin, Origin { file: "labs/one/../../base.toml".into(), line: 5, column: 13 }, "the first one is kept");

    assert_eq!(one.rootfs.copy[0].from, canonical(dir.path()).join("files"), "relative to the file that says it");
    assert_eq!(one.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(one.env.get("B").map(String::as_str), Some("child"));
    assert!(one.env.contains_key("PS1"), "inherited from shell");
    assert_eq!((one.limits.pids, one.limits.memory), (Some(64), Some(1 << 30)));
    // Key by key: the name changes, the rest of [user] is the parent's.
    assert_eq!((one.user.name.as_str(), one.user.uid, one.user.home.as_str()), ("alice", 1000, "/home/student"));
    assert_eq!(one.run.hostname, "lab");
    assert_eq!(one.source, Source::File(canonical(&dir.path().join("labs/one/lab.toml"))));
}

#[test]
fn sizes_accept_units_and_plain_bytes() {
    for (written, bytes) in [("\"512K\"", 512 << 10), ("\"256m\"", 256 << 20), ("\"2G\"", 2 << 30), ("4096", 4096), ("\"100\"", 100)] {
        let dir = lab(&[("lab.toml", &format!("name = \"lab\"\n[limits]\ntmp = {written}\n"))]);
        assert_eq!(load("lab.toml", dir.path()).expect(written).limits.tmp, Some(bytes), "{written}");
    }
    // Kubernetes spells powers of 1024 "Gi": the same here.
    for (written, bytes) in [("\"1G\"", 1u64 << 30), ("\"1Gi\"", 1 << 30), ("\"64Mi\"", 64 << 20)] {
        let dir = lab(&[("lab.toml", &format!("name = \"lab\"\n[limits]\ndisk = {written}\nmemory = {written}\n"))]);
        let limits = load("lab.toml", dir.path()).expect(written).limits;
        assert_eq!((limits.disk, limits.memory), (Some(bytes), Some(bytes)), "{written}");
    }
    let dir = lab(&[("lab.toml", "name = \"lab\"\n[limits]\ntmp = \"1i\"\n")]);
    assert!(load("lab.toml", dir.path()).is_err(), "an `i` alone is no unit");
}

#[test]
fn the_ready_profiles_cap_an_instance_s_disk() {
    for name in ["shell", "python", "c-dev", "net"] {
        assert_eq!(load(name, Path::new("/")).unwrap().limits.disk, Some(1 << 30), "{name}");
    }
}

/// A small deterministic generator: the same inputs on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Loads `bytes` as a file and checks that any error is well formed.
fn load_never_panics(dir: &Path, bytes: &[u8]) {
    std::fs::write(dir.join("lab.toml"), bytes).expect("write");
    if let Err(error) = load("lab.toml", dir) {
        let shown = error.to_string();
        assert!(shown.starts_with("lab.toml") || shown.starts_with("shell.toml"), "{shown}");
        assert!(!error.cause().is_empty() && !error.fix().is_empty(), "{shown}");
        assert_eq!(shown.lines().count(), 2, "one cause line and one fix line: {shown}");
        let lines = bytes.split(|&b| b == b'\n').count() as u32;
        assert!(error.line().is_none_or(|l| (1..=lines).contains(&l)), "{shown}");
    }
}

#[test]
fn truncated_ready_profiles_never_panic() {
    let dir = lab(&[]);
    for profile in ready() {
        let bytes = profile.source.as_bytes();
        for end in 0..=bytes.len() {
            load_never_panics(dir.path(), &bytes[..end]);
        }
    }
}

#[test]
fn mangled_profiles_never_panic() {
    // Pieces of TOML and of the schema, separated by `|`.
    const PIECES: &str = "[|]|[[|]]|=|\"|'|\n| |.|,|{|}|#|\\|/|..|-|_|0|0o7|1e999|-1|99999999999999999999|\
        true|inf|nan|1979-05-27|é|한|\u{feff}|\0|\r\n|\"\"\"|\\n|\"a\nb\"|\"k\\nq\" = |\"/..\"|\
        [rootfs]\n|[[mounts]]\n|[[rootfs.copy]]\n|binaries = [|name = \"x\"\n|extends = |\
        name|rootfs|binaries|mounts|copy|write|mode|user|uid|limits|memory|cpu|pids|env|run|command|\
        extends|shell|x.toml|network|timezone";
    let pieces: Vec<&str> = PIECES.split('|').collect();
    let dir = lab(&[]);
    let mut random = XorShift(0x5eed_1234_abcd_9876);
    let shell = ready()[0].source.as_bytes();
    for _ in 0..3000 {
        let mut input: Vec<u8> = match random.below(3) {
            // Pieces of TOML and of the schema, glued at random.
            0 => (0..random.below(40)).flat_map(|_| pieces[random.below(pieces.len())].bytes()).collect(),
            // Raw bytes, often not UTF-8 at all.
            1 => (0..random.below(64)).map(|_| random.next() as u8).collect(),
            // The shell profile with a few bytes changed.
            _ => shell.to_vec(),
        };
        for _ in 0..random.below(4) {
            let at = random.below(input.len());
            let piece = pieces[random.below(pieces.len())].bytes();
            input.splice(at..(at + 1).min(input.len()), piece);
        }
        load_never_panics(dir.path(), &input);
    }
}

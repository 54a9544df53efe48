//! The store, the digest, the lock file, `why`, `check`, and the safety of
//! building from crafted input.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use common::*;

fn json(output: &str) -> serde_json::Value {
    serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {output}"))
}

#[test]
fn same_profile_same_digest_in_any_store_and_warm_build_reuses() {
    if !need_root("a store with host owners and capabilities") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let first = json(&ok(sandbox().current_dir(work.path()).args(["build", "shell", "--json"])));
    let again = json(&ok(sandbox().current_dir(work.path()).args(["build", "shell", "--json"])));
    assert_eq!(first["digest"], again["digest"]);
    assert_eq!(again["reused"], true);
    assert_eq!(first["name"], "shell");
    assert!(first["entries"].as_u64().unwrap() > 100 && first["bytes"].as_u64().unwrap() > 1_000_000, "{first}");
    assert!(Path::new(first["path"].as_str().unwrap()).join("usr/bin/bash").is_file());

    let fresh = tempfile::tempdir().unwrap();
    let elsewhere = json(&ok(sandbox().current_dir(work.path()).env("SANDBOX_HOME", fresh.path()).args(["build", "shell", "--json"])));
    assert_eq!(elsewhere["digest"], first["digest"], "an empty store gives the same digest");
    assert_eq!(elsewhere["reused"], false);
    assert!(!work.path().join("shell.lock").exists(), "never in the current directory, which may be anyone's");
    assert!(fresh.path().join("store/locks/shell.lock").is_file(), "a ready profile's lock is in the state directory");
}

#[test]
fn json_output_is_one_object_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let profile = work.path().join("tiny.toml");
    fs::write(&profile, "name = \"tiny\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n").unwrap();
    let out = ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--json"));
    let value = json(&out);
    for key in ["name", "digest", "path", "entries", "bytes", "seconds", "reused"] {
        assert!(value.get(key).is_some(), "missing {key}: {value}");
    }
    assert_eq!(out.lines().count(), 1);
    assert!(work.path().join("tiny.lock").is_file(), "the lock is written beside the profile file");
}

#[test]
fn locked_build_fails_with_a_readable_diff() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let profile = work.path().join("lab.toml");
    fs::write(&profile, "name = \"lab\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"one\\n\"\n")
        .unwrap();
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile));
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--locked"));
    let lock_before = fs::read_to_string(work.path().join("lab.lock")).unwrap();
    assert!(lock_before.contains("path = \"/usr/bin/true\""), "{lock_before}");
    assert!(lock_before.contains("package = \"coreutils "), "dpkg's package and version are recorded");

    fs::write(&profile, "name = \"lab\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.write]]\npath = \"/etc/motd\"\ncontent = \"two\\n\"\n")
        .unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--locked"));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("1 entries differ:") && err.contains("~ /etc/motd (content)"), "{err}");
    assert_eq!(fs::read_to_string(work.path().join("lab.lock")).unwrap(), lock_before, "--locked never rewrites the lock");
}

#[test]
fn why_prints_the_chain_of_reasons() {
    let text = ok(sandbox().args(["why", "/lib/x86_64-linux-gnu/libpcre2-8.so.0", "shell"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0  (as /lib/"), "{text}");
    assert!(lines[1].contains("DT_NEEDED of /usr/") && lines[1].contains("found via ld.so.cache"), "{text}");
    assert!(lines.last().unwrap().contains("in shell.toml:"), "{text}");

    let text = ok(sandbox().args(["why", "/etc/passwd"]));
    assert!(text.contains("skeleton"), "{text}");
    let output = run(sandbox().args(["why", "/usr/bin/gcc"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("not in the rootfs of profile `shell`"));
}

#[test]
fn why_takes_dots_and_the_root_inside_the_rootfs() {
    let text = ok(sandbox().args(["why", "/usr/bin/../bin/ls", "shell"]));
    assert!(text.starts_with("/usr/bin/ls  (as /usr/bin/../bin/ls"), "{text}");
    assert!(text.contains("binaries = [\"ls\"] in shell.toml:"), "{text}");
    let text = ok(sandbox().args(["why", "/", "shell"]));
    assert!(text.starts_with('/') && text.contains("skeleton: the root of the environment"), "{text}");
    let text = ok(sandbox().args(["why", "/../../etc/passwd", "shell"]));
    assert!(text.starts_with("/etc/passwd") && text.contains("skeleton"), "`..` stops at the rootfs's root: {text}");
    let output = run(sandbox().args(["why", "usr/bin/ls", "shell"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("not an absolute path") && stderr(&output).contains("fix:"), "{}", stderr(&output));
}

#[test]
fn check_points_at_an_unknown_binary() {
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("typo.toml");
    fs::write(&profile, "name = \"typo\"\n[rootfs]\nbinaries = [\"bash\", \"pyhton3\"]\n").unwrap();
    let output = run(sandbox().current_dir(work.path()).args(["check", "typo.toml"]));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("typo.toml:3:21: binary `pyhton3` not found on the system PATH"), "{err}");
    assert!(err.contains("fix: did you mean `python3`?"), "{err}");
    assert_eq!(err.lines().count(), 2, "one error, one fix: {err}");
}

/// Issue 12: a command the rootfs lacks (the default /bin/sh of a profile
/// without it) is refused by `check` and `build`, at the setting that gave it.
#[test]
fn check_and_build_refuse_a_command_the_rootfs_lacks() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = || {
        let mut cmd = sandbox();
        cmd.env("SANDBOX_HOME", home.path());
        cmd
    };
    let bare = write_profile(work.path(), "bare.toml", "name = \"bare\"\n[rootfs]\nbinaries = [\"true\"]\n");
    for verb in ["check", "build"] {
        let output = run(sandbox().arg(verb).arg(&bare));
        assert_eq!(output.status.code(), Some(125), "{verb}");
        let err = stderr(&output);
        assert!(err.contains("bare.toml: the default command is `/bin/sh` (the profile sets no `command`"), "{verb}: {err}");
        assert!(err.contains("which is not in the rootfs: `sandbox run` would exit 127"), "{verb}: {err}");
        assert!(err.contains("  fix: add \"sh\" to `binaries` in [rootfs]"), "{verb}: {err}");
    }
    assert!(!work.path().join("bare.lock").exists(), "nothing was built");

    let shell = "name = \"s\"\n[rootfs]\nbinaries = [\"true\"]\n[user]\nname = \"s\"\nshell = \"/bin/bash\"\n";
    let err = stderr(&run(sandbox().arg("check").arg(write_profile(work.path(), "shell.toml", shell))));
    assert!(err.contains("shell.toml:6:9: the default command is the user's shell `/bin/bash` (`shell` in [user])"), "{err}");
    let command = "name = \"c\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/opt/nope\", \"-x\"]\n";
    let err = stderr(&run(sandbox().arg("build").arg(write_profile(work.path(), "command.toml", command))));
    assert!(err.contains("command.toml:5:11: `command` in [run] runs `/opt/nope`"), "{err}");
    assert!(err.contains("fix: set `command` in [run] to a program the rootfs has"), "{err}");

    // Found the way the sandbox finds it: through the rootfs's links, a bare name on PATH.
    let fine = write_profile(work.path(), "fine.toml", "name = \"f\"\n[rootfs]\nbinaries = [\"sh\"]\n");
    ok(sandbox().arg("check").arg(&fine));
    let bare_name = write_profile(work.path(), "name.toml", "name = \"n\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"true\"]\n");
    ok(sandbox().arg("build").arg(&bare_name));
}

/// Issue 12: every sandbox mounts its own /tmp, so a program named under the
/// host's /tmp would be hidden inside (exit 127): refused at its line. A lab
/// file copied there is kept, with a note.
#[test]
fn a_binary_under_tmp_is_refused_and_a_lab_file_there_noted() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let tool = tmp.path().join("tool");
    fs::copy("/bin/true", &tool).unwrap();
    let text = format!("name = \"t\"\n[rootfs]\nbinaries = [\"sh\", \"{}\"]\n", tool.display());
    let profile = write_profile(tmp.path(), "t.toml", &text);
    let output = run(sandbox().arg("check").arg(&profile));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("t.toml:3:19: ") && err.contains("lies under /tmp, where the sandbox mounts an empty tmpfs at run time"), "{err}");
    assert!(err.contains("fix: install it outside /tmp"), "{err}");

    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    fs::create_dir(work.path().join("files")).unwrap();
    fs::write(work.path().join("files/a.txt"), "a").unwrap();
    let lab = "name = \"l\"\n[rootfs]\nbinaries = [\"sh\"]\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/tmp/lab/\"\n";
    let output = run(sandbox().arg("check").arg(write_profile(work.path(), "l.toml", lab)));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("l.toml:4:1) and the 1 entries in it: under /tmp, where the sandbox mounts an empty tmpfs"),
        "{}",
        stderr(&output)
    );
}

/// Issue 12: a shell script's own commands come in (Debian's egrep runs grep,
/// zcat runs gzip), and `why` names the script and the line; a command whose
/// name is built at run time is a note, not a guess.
#[test]
fn a_shell_script_brings_the_programs_it_runs() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tool = work.path().join("tool");
    fs::write(&tool, "#!/bin/sh\nprog=gzip\n$prog -d x\nexec head -n1 \"$@\"\n").unwrap();
    fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = format!("name = \"s\"\n[rootfs]\nbinaries = [\"sh\", \"egrep\", \"zcat\", \"{}\"]\n", tool.display());
    let profile = write_profile(work.path(), "s.toml", &text);
    let why = ok(sandbox().args(["why", "/usr/bin/grep"]).arg(&profile));
    assert!(why.contains("run by the script /usr/bin/egrep (line 3)") && why.contains("binaries = [\"egrep\"]"), "{why}");
    let why = ok(sandbox().args(["why", "/usr/bin/gzip"]).arg(&profile));
    assert!(why.contains("run by the script /usr/bin/zcat (line "), "{why}");
    let why = ok(sandbox().args(["why", "/usr/bin/head"]).arg(&profile));
    assert!(why.contains(&format!("run by the script {} (line 4)", tool.display())), "{why}");
    let output = run(sandbox().arg("check").arg(&profile));
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("tool runs commands whose names are built at run time (line 3 `$prog`)"), "{err}");
    assert!(!err.contains("egrep is a script"), "a shell script's commands are read, not left to the teacher: {err}");
}

#[test]
fn check_rejects_a_locale_the_host_lacks() {
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("l.toml");
    fs::write(&profile, "name = \"l\"\n[rootfs]\nlocales = [\"xx_XX.UTF-8\"]\n").unwrap();
    let output = run(sandbox().arg("check").arg(&profile));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("locale `xx_XX.UTF-8` is not compiled on this host"), "{}", stderr(&output));
    assert!(stderr(&output).contains("locale-gen"));
}

#[test]
fn check_accepts_every_ready_profile() {
    for name in ["shell", "python", "c-dev", "net"] {
        let text = ok(sandbox().args(["check", name]));
        assert!(text.starts_with(&format!("ok {name}")), "{text}");
    }
    let list = ok(sandbox().arg("profiles"));
    for name in ["shell", "python", "c-dev", "net"] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{list}");
    }
}

/// Crafted names and links never write outside the rootfs and never run a shell.
#[test]
fn crafted_names_and_links_stay_inside() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    let marker = work.path().join("pwned");
    let files = work.path().join("files");
    fs::create_dir_all(&files).unwrap();
    // Were a name ever given to a shell, `$(touch pwned)` would create work/pwned.
    let evil_names = ["with space", "quote'\"s", "$(touch pwned)", "new\nline", "`touch pwned`;x", "-rf"];
    for name in evil_names {
        fs::write(files.join(name), name).unwrap();
    }
    // A link that climbs out, and lab writes aimed through it and through `..`.
    symlink("../../../../../../../../..", files.join("up")).unwrap();
    let escape_target = outside.display().to_string();
    let profile = work.path().join("evil.toml");
    fs::write(
        &profile,
        format!(
            "name = \"evil\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n\
             [[rootfs.copy]]\nfrom = \"files/\"\nto = \"/home/lab/\"\n\
             [[rootfs.write]]\npath = \"/home/lab/up{escape_target}/written\"\ncontent = \"x\"\n"
        ),
    )
    .unwrap();
    let out = work.path().join("tree");
    let output = run(sandbox().current_dir(work.path()).env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--out").arg(&out));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!marker.exists(), "a file name was run by a shell");
    assert!(!outside.exists(), "a write followed a link out of the rootfs");
    // The write landed inside, where the link leads when the rootfs is the root.
    assert!(out.join(outside.strip_prefix("/").unwrap()).join("written").is_file());
    for name in evil_names {
        assert_eq!(fs::read_to_string(out.join("home/lab").join(name)).unwrap(), name);
    }
    assert_eq!(fs::read_link(out.join("home/lab/up")).unwrap(), Path::new("../../../../../../../../.."));

    let dotdot = work.path().join("dotdot.toml");
    fs::write(&dotdot, "name = \"dotdot\"\n[[rootfs.write]]\npath = \"/../../etc/x\"\ncontent = \"x\"\n").unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("check").arg(&dotdot));
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(stderr(&output).contains("dotdot.toml:3:8: `path` must not contain `..`"), "{}", stderr(&output));
}

#[test]
fn out_refuses_a_directory_that_is_not_empty() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::write(work.path().join("keep"), "mine").unwrap();
    let profile = work.path().join("t.toml");
    fs::write(&profile, "name = \"t\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n").unwrap();
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--out").arg(work.path()));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("is not empty"), "{}", stderr(&output));
    assert_eq!(fs::read_to_string(work.path().join("keep")).unwrap(), "mine");
}

fn write_profile(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// Issue 12 item 3: a symlinked source never pulls a host tree in; links that
/// stay inside the folder work; an absolute mount source stays allowed.
#[test]
fn lab_sources_are_resolved_beneath_the_profile_folder() {
    let work = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(work.path()).unwrap();
    fs::create_dir(dir.join("real")).unwrap();
    fs::write(dir.join("real/a.txt"), "a").unwrap();
    symlink("/root", dir.join("files")).unwrap();
    symlink("real", dir.join("alias")).unwrap();
    symlink("/etc", dir.join("linked")).unwrap();
    symlink("../../../../../../etc", dir.join("up")).unwrap();

    let copy = write_profile(&dir, "copy.toml", "name = \"t\"\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/home/x/\"\n");
    let output = run(sandbox().arg("check").arg(&copy));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(
        err.contains("copy.toml:3:8: `from` names `files/`, but `files` is a symbolic link to `/root`, outside the profile's folder"),
        "{err}"
    );
    assert!(err.contains("fix: copy the files into the profile's folder"), "{err}");

    let up = write_profile(&dir, "up.toml", "name = \"t\"\n[[rootfs.copy]]\nfrom = \"up/passwd\"\nto = \"/x\"\n");
    let err = stderr(&run(sandbox().arg("check").arg(&up)));
    assert!(err.contains("but `up` is a symbolic link to `../../../../../../etc`, outside"), "{err}");

    let absolute = write_profile(&dir, "abs.toml", "name = \"t\"\n[[rootfs.copy]]\nfrom = \"/etc/passwd\"\nto = \"/x\"\n");
    let err = stderr(&run(sandbox().arg("check").arg(&absolute)));
    assert!(err.contains("abs.toml:3:8: `from` must be relative to the profile file's folder"), "{err}");

    let mount = write_profile(&dir, "mount.toml", "name = \"t\"\n[[mounts]]\nsource = \"./linked\"\ntarget = \"/e\"\n");
    let err = stderr(&run(sandbox().arg("check").arg(&mount)));
    assert!(err.contains("mount.toml:3:10: `source` names `./linked`, but `linked` is a symbolic link to `/etc`"), "{err}");

    // Inside the folder, links are fine; an absolute mount source is taken as written.
    let fine = write_profile(
        &dir,
        "fine.toml",
        "name = \"t\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.copy]]\nfrom = \"alias/\"\nto = \"/home/x/\"\n[[mounts]]\nsource = \"/etc\"\ntarget = \"/e\"\n\
         [[mounts]]\nsource = \"alias\"\ntarget = \"/r\"\n",
    );
    let home = tempfile::tempdir().unwrap();
    let out = dir.join("out");
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&fine).arg("--out").arg(&out));
    assert_eq!(fs::read_to_string(out.join("home/x/a.txt")).unwrap(), "a");
    let plan = ok(sandbox().args(["explain", "--dry-run"]).arg(&fine));
    assert!(plan.contains(&format!("{}/real", dir.display())), "the plan mounts the real path: {plan}");
}

/// Issue 12 item 1: a single file goes to the path named, or into a directory
/// named with a trailing `/`; a copy error names the profile line and the fix.
#[test]
fn a_single_lab_file_copies_to_a_path_or_into_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(work.path().join("files")).unwrap();
    fs::write(work.path().join("files/hello.py"), "print('hi')\n").unwrap();
    let profile = write_profile(
        work.path(),
        "one.toml",
        "name = \"one\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.copy]]\nfrom = \"files/hello.py\"\nto = \"/home/student/hello.py\"\n\
         [[rootfs.copy]]\nfrom = \"files/hello.py\"\nto = \"/opt/lab/\"\n[[rootfs.copy]]\nfrom = \"files\"\nto = \"/srv/files\"\n",
    );
    let out = work.path().join("out");
    ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--out").arg(&out));
    for path in ["home/student/hello.py", "opt/lab/hello.py", "srv/files/hello.py"] {
        assert_eq!(fs::read_to_string(out.join(path)).unwrap(), "print('hi')\n", "{path}");
    }
    let why = ok(sandbox().args(["why", "/opt/lab/hello.py"]).arg(&profile));
    assert!(why.contains("lab file from") && why.contains("one.toml:9:1"), "{why}");

    nix::unistd::mkfifo(&work.path().join("files/pipe"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let fifo = write_profile(work.path(), "fifo.toml", "name = \"fifo\"\n[[rootfs.copy]]\nfrom = \"files/pipe\"\nto = \"/x\"\n");
    let output = run(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&fifo));
    assert_eq!(output.status.code(), Some(125));
    let err = stderr(&output);
    assert!(err.contains("fifo.toml:2:1: ") && err.contains("files/pipe: cannot be copied: is not a regular file or a directory"), "{err}");
    assert!(err.contains("  fix: "), "{err}");
}

/// Issue 12 item 2: lab files lose setuid/setgid bits and file capabilities
/// unless their entry says `keep_special_bits = true`; `why` says which.
#[test]
fn lab_files_lose_setuid_and_capabilities_unless_asked() {
    if !need_root("files owned by nobody with setuid bits and capabilities") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    fs::create_dir(&files).unwrap();
    fs::copy("/bin/true", files.join("suid")).unwrap();
    nix::unistd::chown(&files.join("suid"), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    fs::set_permissions(files.join("suid"), std::os::unix::fs::PermissionsExt::from_mode(0o6755)).unwrap();
    fs::copy("/bin/true", files.join("capped")).unwrap();
    ok(std::process::Command::new("setcap").arg("cap_net_raw+ep").arg(files.join("capped")));
    let profile = write_profile(
        work.path(),
        "suid.toml",
        "name = \"suid\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/opt/dropped/\"\n\
         [[rootfs.copy]]\nfrom = \"files/\"\nto = \"/opt/kept/\"\nkeep_special_bits = true\n",
    );
    let out = work.path().join("out");
    let built = json(&ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--json").arg("--out").arg(&out)));
    let tree = Path::new(built["path"].as_str().unwrap()).to_path_buf();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    let caps = |p: &Path| stdout(&run(std::process::Command::new("getcap").arg(p)));
    for root in [&out, &tree] {
        assert_eq!(mode(&root.join("opt/dropped/suid")), 0o755, "{}", root.display());
        assert_eq!(mode(&root.join("opt/kept/suid")) & 0o6000, 0o6000, "{}", root.display());
        assert!(!caps(&root.join("opt/dropped/capped")).contains("cap_net_raw"), "{}", root.display());
        assert!(caps(&root.join("opt/kept/capped")).contains("cap_net_raw"), "{}", root.display());
    }
    let why = ok(sandbox().env("SANDBOX_HOME", home.path()).args(["why", "/opt/dropped/suid"]).arg(&profile));
    assert!(why.contains("setuid and setgid dropped") && why.contains("keep_special_bits = true"), "{why}");
    let why = ok(sandbox().env("SANDBOX_HOME", home.path()).args(["why", "/opt/kept/capped"]).arg(&profile));
    assert!(why.contains("file capabilities kept"), "{why}");
    let bad = write_profile(
        work.path(),
        "bad.toml",
        "name = \"b\"\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/o/\"\nkeep_special_bits = \"yes\"\n",
    );
    let err = stderr(&run(sandbox().arg("check").arg(&bad)));
    assert!(err.contains("bad.toml:5:21: `keep_special_bits` must be true or false"), "{err}");
}

/// Issue 12 item 4: pseudo-filesystems are refused by their magic (never
/// read: /proc/kmsg would block); a foreign ELF is data, with a note.
#[test]
fn files_refuse_pseudo_filesystems_and_take_foreign_elf_as_data() {
    let work = tempfile::tempdir().unwrap();
    for (name, files) in [("environ", "/proc/self/environ"), ("kmsg", "/proc/kmsg"), ("sys", "/sys/kernel")] {
        let profile = write_profile(work.path(), &format!("{name}.toml"), &format!("name = \"p\"\n[rootfs]\nfiles = [\"{files}\"]\n"));
        let output = run(sandbox().arg("check").arg(&profile));
        assert_eq!(output.status.code(), Some(125), "{files}");
        let err = stderr(&output);
        let fs = if name == "sys" { "sysfs" } else { "procfs" };
        assert!(err.contains(&format!("{name}.toml:3:10: /")) && err.contains(&format!("it is on {fs}, a pseudo-filesystem")), "{err}");
    }
    // /bin/true made into an AArch64 program whose loader this host lacks.
    let mut elf = fs::read("/bin/true").unwrap();
    elf[18..20].copy_from_slice(&183u16.to_le_bytes());
    let interp = b"/lib64/ld-linux-x86-64.so.2\0";
    let at = elf.windows(interp.len()).position(|w| w == interp).expect("an x86-64 PT_INTERP");
    elf[at..at + interp.len()].copy_from_slice(b"/lib/ld-linux-aarch64.so.1\0\0");
    let data = work.path().join("share");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("firmware.elf"), &elf).unwrap();
    let profile = write_profile(
        work.path(),
        "foreign.toml",
        &format!("name = \"f\"\n[rootfs]\nbinaries = [\"true\"]\nfiles = [\"{}\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n", data.display()),
    );
    let output = run(sandbox().arg("check").arg(&profile));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("firmware.elf: ELF files for another machine than this one; copied as data"), "{}", stderr(&output));
}

/// Issue 14: `run` finds the rootfs from the store's record without resolving:
/// host files may change or go (an `apt upgrade` between classes) and students
/// still get the environment that was built; lab files and the profile's text
/// invalidate the record; `build` looks at the host again and says what changed.
#[test]
fn a_warm_run_uses_the_record_and_build_says_what_changed() {
    if !need_root("chroot runs") {
        return;
    }
    // Not under /tmp: the sandbox has a /tmp of its own.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(work.path()).unwrap();
    let host_file = dir.join("host/data.txt");
    fs::create_dir_all(host_file.parent().unwrap()).unwrap();
    fs::write(&host_file, "one\n").unwrap();
    fs::create_dir(dir.join("files")).unwrap();
    fs::write(dir.join("files/lab.txt"), "lab one\n").unwrap();
    let text = format!(
        "name = \"rec\"\n[rootfs]\nbinaries = [\"cat\"]\nfiles = [\"{}\"]\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/srv/\"\n[run]\nmode = \"chroot\"\ncommand = [\"/usr/bin/cat\", \"/dev/null\"]\n",
        host_file.display()
    );
    let profile = write_profile(&dir, "rec.toml", &text);
    let sandbox = || {
        let mut cmd = sandbox();
        cmd.env("SANDBOX_HOME", home.path());
        cmd
    };
    let cat = |path: &str| ok(sandbox().arg("run").arg(&profile).args(["--", "/usr/bin/cat", path]));
    ok(sandbox().arg("build").arg(&profile));
    assert_eq!(cat(host_file.to_str().unwrap()), "one\n");
    fs::write(&host_file, "two\n").unwrap();
    assert_eq!(cat(host_file.to_str().unwrap()), "one\n", "a changed host file does not change the environment");
    fs::remove_file(&host_file).unwrap();
    assert_eq!(cat(host_file.to_str().unwrap()), "one\n", "a run does not look at the host's files");

    let output = run(sandbox().arg("build").arg(&profile));
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains(&format!("rec.toml:4:10: {}", host_file.parent().unwrap().display()))
            || stderr(&output).contains("data.txt"),
        "{}",
        stderr(&output)
    );
    fs::write(&host_file, "three\n").unwrap();
    let built = ok(sandbox().arg("build").arg(&profile));
    assert!(built.contains("changed since the last build of this profile"), "{built}");
    assert!(built.contains(&format!("~ {} (content)", host_file.display())), "{built}");
    assert_eq!(cat(host_file.to_str().unwrap()), "three\n");

    // Lab files and the profile's text are the teacher's: a change is seen at once.
    fs::write(dir.join("files/lab.txt"), "lab two\n").unwrap();
    assert_eq!(cat("/srv/lab.txt"), "lab two\n");
    fs::write(&profile, text.replace("/srv/", "/opt/")).unwrap();
    assert_eq!(cat("/opt/lab.txt"), "lab two\n");
}

/// Issue 12 item 5: lab file names that are not UTF-8 (a CP949 zip unpacked)
/// are kept byte-exact in the store, the digest, the lock and `--out`.
#[test]
fn lab_file_names_that_are_not_utf8_are_kept_byte_exact() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    fs::create_dir(&files).unwrap();
    let name = std::ffi::OsString::from_vec(b"\xc7\xd1\xb1\xdb.txt".to_vec()); // 한글.txt in CP949
    fs::write(files.join(&name), "hangul\n").unwrap();
    fs::write(files.join("back\\slash"), "b\n").unwrap();
    let profile = write_profile(
        work.path(),
        "cp949.toml",
        "name = \"cp949\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n[[rootfs.copy]]\nfrom = \"files/\"\nto = \"/srv/\"\n",
    );
    let out = work.path().join("out");
    let first = json(&ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--json").arg("--out").arg(&out)));
    assert_eq!(fs::read_to_string(out.join("srv").join(&name)).unwrap(), "hangul\n");
    let tree = Path::new(first["path"].as_str().unwrap());
    assert_eq!(fs::read_to_string(tree.join("srv").join(&name)).unwrap(), "hangul\n");
    let listed: Vec<Vec<u8>> = fs::read_dir(tree.join("srv")).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    assert!(listed.contains(&b"\xc7\xd1\xb1\xdb.txt".to_vec()), "{listed:?}");
    let lock = fs::read_to_string(work.path().join("cp949.lock")).unwrap();
    // Bytes that are not UTF-8 are escaped as \xNN, a backslash as \\ (TOML literal strings).
    assert!(lock.contains("path = '/srv/\\xc7\u{471}\\xdb.txt'"), "{lock}");
    assert!(lock.contains("path = '/srv/back\\\\slash'"), "{lock}");
    let again = json(&ok(sandbox().env("SANDBOX_HOME", home.path()).arg("build").arg(&profile).arg("--json").arg("--locked")));
    assert_eq!((&again["digest"], &again["reused"]), (&first["digest"], &serde_json::Value::Bool(true)));
}

/// Issue 12 item 18: a write into a stored file is found by `verify` (exit 1)
/// and by `build --locked`; root-owned store files carry no write bits.
#[test]
fn verify_finds_a_corrupted_store_file() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let profile =
        write_profile(work.path(), "v.toml", "name = \"v\"\n[rootfs]\nbinaries = [\"true\"]\n[run]\ncommand = [\"/usr/bin/true\"]\n");
    let sandbox = || {
        let mut cmd = sandbox();
        cmd.env("SANDBOX_HOME", home.path());
        cmd
    };
    let built = json(&ok(sandbox().arg("build").arg(&profile).arg("--json")));
    let tree = Path::new(built["path"].as_str().unwrap()).to_path_buf();
    let text = ok(sandbox().arg("verify").arg(&profile));
    assert!(text.starts_with("ok v "), "{text}");
    let stored = tree.join("usr/bin/true");
    let meta = fs::metadata(&stored).unwrap();
    // Stored with the mode the lock names (a sandbox shows these inodes).
    assert_eq!(meta.mode() & 0o7777, 0o755);
    let mut bytes = fs::read(&stored).unwrap();
    bytes.push(0);
    // Root may write anyway: what verify is for.
    fs::set_permissions(&stored, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(&stored, &bytes).unwrap();
    fs::set_permissions(&stored, std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777)).unwrap();

    let output = run(sandbox().arg("verify").arg(&profile));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains(&format!("{}: its content changed", stored.display())), "{}", stdout(&output));
    let output = run(sandbox().arg("verify").arg("--all"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("store/blobs/") && stdout(&output).contains("its content changed"), "{}", stdout(&output));
    let output = run(sandbox().arg("build").arg(&profile).arg("--locked"));
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("is corrupted") && stderr(&output).contains("usr/bin/true: its content changed"),
        "{}",
        stderr(&output)
    );
}

//! The command-line habits of Docker and bubblewrap users, through the real
//! binary: the command after the profile, -e/-v/-w/-u/--rm, colors, JSON
//! errors, completion of the names only the tool knows, the man page.

mod common;

use std::fs;
use std::process::{Command, Stdio};

use common::*;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_failure_with_json_is_a_json_object_on_stdout() {
    for args in [
        &["check", "no-such-profile", "--json"][..],
        &["why", "/no/such/file", "--json"],
        &["export", "no-such-profile", "--oci", "/tmp/never-made", "--json"],
        &["import", "/no/such/image", "--json"],
        &["build", "--json", "--no-such-flag"],
    ] {
        let output = run(sandbox().args(args));
        assert!(!output.status.success(), "{args:?}");
        let error = json(&stdout(&output));
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{args:?}: {error}");
        assert_eq!(error["status"].as_i64(), output.status.code().map(i64::from), "{args:?}");
        assert!(stderr(&output).contains("error"), "and the person still reads it on stderr");
    }
    // And a success is the command's own object.
    let checked = json(&ok(sandbox().args(["check", "shell", "--json"])));
    assert_eq!(checked["name"], "shell");
    let why = json(&ok(sandbox().args(["why", "/bin/sh", "shell", "--json"])));
    assert_eq!(why["located"], "/usr/bin/sh");
    assert!(why["reasons"][0]["reason"].as_str().unwrap().contains("binaries"));
}

#[test]
fn colors_follow_color_no_color_and_clicolor_force() {
    let escapes = |cmd: &mut Command| run(cmd).stdout.contains(&0x1b);
    let profiles = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
        cmd.arg("profiles").env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        cmd
    };
    assert!(!escapes(&mut profiles()), "not a terminal: no colors");
    assert!(escapes(profiles().env("CLICOLOR_FORCE", "1")), "CLICOLOR_FORCE forces them");
    assert!(!escapes(profiles().env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1")), "NO_COLOR wins over CLICOLOR_FORCE");
    assert!(escapes(profiles().args(["--color", "always"]).env("NO_COLOR", "1")), "the flag wins over both");
    assert!(!escapes(profiles().args(["--color=never"]).env("CLICOLOR_FORCE", "1")));
}

/// What the shell gets when it asks the binary to complete `line` (bash's protocol).
fn complete(line: &[&str], home: &std::path::Path) -> Vec<String> {
    let output = run(Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (line.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n")
        .env("SANDBOX_HOME", home)
        .arg("--")
        .args(line));
    stdout(&output).lines().map(str::to_owned).collect()
}

#[test]
fn completion_offers_profiles_images_instances_and_labs() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(complete(&["sandbox", "run", "py"], home.path()), ["python"]);
    assert!(complete(&["sandbox", "run", "--b"], home.path()).is_empty(), "the hidden --background is gone");
    // An imported image and an instance, as the state directory knows them.
    fs::create_dir_all(home.path().join("store/images")).unwrap();
    fs::write(home.path().join("store/images/alpine-x.json"), r#"{"name":"alpine-x","digest":"d"}"#).unwrap();
    assert!(complete(&["sandbox", "start", "al"], home.path()).contains(&"alpine-x".to_string()));
    fs::create_dir_all(home.path().join("instances/alice")).unwrap();
    assert_eq!(complete(&["sandbox", "exec", "a"], home.path()), ["alice"]);
    let labs = complete(&["sandbox", "lab", "show", ""], home.path());
    assert!(labs.iter().any(|l| l.starts_with("01-")), "lab names: {labs:?}");
    let script = ok(sandbox().args(["completions", "bash"]));
    assert!(script.contains("COMPLETE=\"bash\"") || script.contains("COMPLETE=bash"), "{script}");
    assert!(script.contains("complete ") && script.contains("sandbox"), "{script}");
    let man = ok(sandbox().arg("man"));
    assert!(man.starts_with(".ie") || man.contains(".TH sandbox"), "a roff page: {}", &man[..man.len().min(200)]);
}

#[test]
fn run_takes_docker_flags_and_the_command_after_the_profile() {
    if !need_root("running sandboxes") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("f"), "from the host\n").unwrap();
    let volume = format!("{}:/mnt:ro", data.path().display());
    let script = "echo $GREETING; id -un; pwd; cat /mnt/f; touch /mnt/x 2>/dev/null && echo wrote || echo read-only";
    let output = run(sandbox()
        .args(["run", "-it", "-e", "GREETING=hi", "-w", "/tmp", "-u", "root", "-v", &volume, "shell", "bash", "-c", script])
        .stdin(Stdio::null()));
    assert_eq!(stdout(&output), "hi\nroot\n/tmp\nfrom the host\nread-only\n", "{}", stderr(&output));
    assert!(!data.path().join("x").exists());

    // The old spelling still works, and a program named where the profile goes gets a hint.
    let output = run(sandbox().args(["run", "--", "id", "-u"]).stdin(Stdio::null()));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(sandbox().args(["run", "bash", "-c", "true"]).stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("sandbox run shell bash -c true"), "{}", stderr(&output));
    let output = run(sandbox().args(["run", "-u", "mallory", "shell", "true"]).stdin(Stdio::null()));
    assert!(stderr(&output).contains("no user `mallory`"), "{}", stderr(&output));

    // --rm with a name: the instance goes when its command ends.
    let output = run(sandbox().args(["run", "--rm", "--name", "cli-rm-test", "shell", "sh", "-c", "exit 3"]).stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(3), "the command's status: {}", stderr(&output));
    assert!(!shared_home().join("instances/cli-rm-test").exists(), "removed");
}

//! Every lab: its model solution passes every check, an untouched start
//! fails, and every cheat in `labs/NN-*/cheat/` fails (writing the expected
//! answers, faking the history, copying a neighbour's files). Also: the labs
//! are the binary's own (not `./labs`), an extra lab folder others may write
//! is refused, answers that are links or FIFOs cost nothing, `reset` brings a
//! lab's files back, and a class is started and graded with --names-from.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

fn labs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("labs")
}

fn lab_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(labs_root())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("lab.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_course_lists_ten_labs_in_both_languages() {
    let ids = lab_ids();
    assert!(ids.len() >= 10, "{ids:?}");
    let en = ok(sandbox().args(["lab", "list", "--lang", "en"]));
    let ko = ok(sandbox().args(["lab", "list", "--lang", "ko"]));
    for id in &ids {
        assert!(en.contains(id.as_str()) && ko.contains(id.as_str()), "{id}");
    }
    assert!(ko.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)), "{ko}");
    assert!(ko.contains("40분") && !ko.contains(" min"), "minutes in Korean: {ko}");
    let show = ok(sandbox().args(["lab", "show", "1", "--lang", "ko"]));
    assert!(show.contains("[ ]") && show.contains("검사 항목"), "the checks are listed: {show}");
}

/// A directory a student prepared, as the current directory of root: its
/// `labs/` is not used, and `lab list` works with no source tree at hand.
#[test]
fn labs_are_the_binarys_own_not_the_current_directorys() {
    let dir = tempfile::tempdir().unwrap();
    let decoy = dir.path().join("labs/01-chroot-by-hand");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(
        decoy.join("lab.toml"),
        "title = { en = \"DECOY\", ko = \"DECOY\" }\ngoal = { en = \"g\", ko = \"g\" }\nminutes = 1\nconcepts = { en = \"c\", ko = \"c\" }\nprofile = \"shell\"\n",
    )
    .unwrap();
    let out = ok(sandbox().args(["lab", "list"]).current_dir(dir.path()).env_remove("SANDBOX_LABS"));
    assert!(!out.contains("DECOY") && out.contains("A chroot by hand"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).count(), 10, "{out}");
    // Named, but writable by others: refused, with the cause and the fix.
    std::fs::set_permissions(dir.path().join("labs"), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let refused = run(sandbox().args(["lab", "list", "--labs"]).arg(dir.path().join("labs")));
    assert!(!refused.status.success(), "{}", stdout(&refused));
    assert!(stderr(&refused).contains("others may write") && stderr(&refused).contains("fix:"), "{}", stderr(&refused));
    let refused = run(sandbox().args(["lab", "list"]).env("SANDBOX_LABS", dir.path().join("labs")));
    assert!(!refused.status.success(), "SANDBOX_LABS is checked the same way");
}

/// Removes the instances it names when dropped, a failed assertion included:
/// a running instance left behind would hold names (and cgroups) other tests need.
struct Instances(Vec<String>);

impl Drop for Instances {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = sandbox().args(["rm", name]).output();
        }
    }
}

fn check_all(lab: &str, names: &Path) -> BTreeMap<String, LabResult> {
    let output = run(sandbox().args(["lab", "check", lab, "--json", "--names-from"]).arg(names));
    lab_results(lab, &format!("{}{}", stdout(&output), stderr(&output)))
}

fn script(instance: &str, path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut child = sandbox()
        .args(["exec", instance, "--", "/bin/bash", "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    format!("{}{}", stdout(&out), stderr(&out))
}

/// What a neighbour's USB stick carries: every file of their home but their lab-info.txt.
fn copy_home(from: &str, to: &str) {
    let list = ok(sandbox().args(["exec", from, "--", "/usr/bin/find", "/home/student", "-type", "f", "!", "-name", "lab-info.txt"]));
    for file in list.lines() {
        let bytes = run(sandbox().args(["exec", from, "--", "/bin/cat", file])).stdout;
        let mut child = sandbox()
            .args(["exec", to, "--", "/bin/sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"", "copy", file])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn every_solution_passes_and_every_untouched_start_and_cheat_fails() {
    if !need_root("lab instances") {
        return;
    }
    let names_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-names");
    std::fs::create_dir_all(&names_dir).unwrap();
    for id in lab_ids() {
        let number = id.split('-').next().unwrap().to_string();
        let solver = format!("t{number}");
        let mut cheats: Vec<PathBuf> =
            std::fs::read_dir(labs_root().join(&id).join("cheat")).unwrap().flatten().map(|e| e.path()).collect();
        cheats.sort();
        assert!(cheats.iter().any(|c| c.ends_with("neighbour.sh")) && cheats.len() >= 2, "{id}: cheats {cheats:?}");
        let cheaters: Vec<String> = (0..cheats.len()).map(|i| format!("c{number}-{i}")).collect();
        let students: Vec<&String> = std::iter::once(&solver).chain(&cheaters).collect();
        let names = names_dir.join(format!("{number}.txt"));
        std::fs::write(&names, students.iter().map(|s| format!("{s}\n")).collect::<String>()).unwrap();
        let instance = |student: &str| format!("lab{number}-{student}");
        let guard = Instances(students.iter().map(|s| instance(s)).collect());
        for student in &students {
            let _ = sandbox().args(["rm", &instance(student)]).output();
        }
        ok(sandbox().args(["lab", "start", &id, "--names-from"]).arg(&names));
        for (student, result) in check_all(&id, &names) {
            assert!(!result.passed, "{id}: an untouched start passes for {student}: {}", result.line);
        }
        let said = script(&instance(&solver), &labs_root().join(&id).join("solution/solve.sh"));
        for (cheat, cheater) in cheats.iter().zip(&cheaters) {
            if cheat.ends_with("neighbour.sh") {
                copy_home(&instance(&solver), &instance(cheater));
            }
            script(&instance(cheater), cheat);
        }
        let results = check_all(&id, &names);
        let solved = &results[&solver];
        assert!(solved.passed, "{id}: the solution fails {:?}: {}\nsolve.sh said:\n{said}", solved.failed, solved.line);
        for (cheat, cheater) in cheats.iter().zip(&cheaters) {
            let cheated = &results[cheater];
            assert!(!cheated.passed, "{id}: the cheat {} passes: {}", cheat.display(), cheated.line);
            eprintln!("{id}: {} fails {:?}", cheat.file_name().unwrap().to_string_lossy(), cheated.failed);
        }
        drop(guard);
    }
}

/// Answers that are a link to /dev/zero or a FIFO: the checks read a bounded
/// amount inside the instance and end, and the check says what it saw.
#[test]
fn hostile_answers_are_read_with_a_bound() {
    if !need_root("lab instances") {
        return;
    }
    let instance = "lab03-hostile";
    let _guard = Instances(vec![instance.into()]);
    let _ = sandbox().args(["rm", instance]).output();
    ok(sandbox().args(["lab", "start", "03", "--name", "hostile"]));
    ok(sandbox().args([
        "exec",
        instance,
        "--",
        "/bin/bash",
        "-c",
        "mkdir -p ~/answers && ln -sf /dev/zero ~/answers/init-pid && ln -sf /proc/1/root/etc/shadow ~/answers/pid1-exit && mkfifo ~/answers/zombie-state 2>/dev/null || ln -sf /dev/zero ~/answers/zombie-state",
    ]));
    let output = run(sandbox().args(["lab", "check", "03", "--name", "hostile", "--json"]));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(value["passed"], false);
    let seen = |id: &str| value["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["seen"].as_str().unwrap().to_string();
    assert!(!seen("init-pid").contains('\0') && seen("init-pid").len() < 200, "{}", seen("init-pid"));
}

/// `sandbox reset` of a lab's instance: its files come back, and the
/// solution passes again from there.
#[test]
fn reset_returns_a_lab_instance_to_its_start() {
    if !need_root("lab instances") {
        return;
    }
    let instance = "lab03-resetme";
    let _guard = Instances(vec![instance.into()]);
    let _ = sandbox().args(["rm", instance]).output();
    ok(sandbox().args(["lab", "start", "03", "--name", "resetme"]));
    ok(sandbox().args(["stop", instance]));
    let said = ok(sandbox().args(["reset", instance]));
    assert!(said.contains(instance), "{said}");
    let info = ok(sandbox().args(["exec", instance, "--", "/bin/cat", "/home/student/lab-info.txt"]));
    assert!(info.contains("sleep-seconds:"), "the lab's files are back: {info}");
    script(instance, &labs_root().join("03-pid-namespace/solution/solve.sh"));
    let output = run(sandbox().args(["lab", "check", "03", "--name", "resetme", "--csv"]));
    let csv = stdout(&output);
    assert!(output.status.success(), "{csv}{}", stderr(&output));
    assert!(csv.starts_with("student,instance,passed,total,init-pid,") && csv.contains("\nresetme,lab03-resetme,"), "{csv}");
}

#[test]
fn a_names_file_is_reported_by_line_not_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let names = dir.path().join("names.txt");
    std::fs::write(&names, "alice\n# a comment\nroot:$6$secret$hash:19000\n").unwrap();
    let output = run(sandbox().args(["lab", "start", "03", "--names-from"]).arg(&names));
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("names.txt:3:") && !error.contains("secret"), "{error}");
}

//! Every lab: its model solution passes every check, and an untouched start
//! fails them (so no check is vacuous).

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

fn lab_ids() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
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
    let show = ok(sandbox().args(["lab", "show", "1", "--lang", "ko"]));
    assert!(show.contains("[ ]"), "the checks are listed: {show}");
}

fn check(lab: &str, student: &str) -> (bool, String) {
    let output = run(sandbox().args(["lab", "check", lab, "--name", student, "--json"]));
    let text = stdout(&output);
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{lab}: not JSON ({e}): {text}{}", stderr(&output)));
    (output.status.success() && value["passed"] == true, text)
}

#[test]
fn every_solution_passes_and_every_empty_attempt_fails() {
    if !need_root("lab instances") {
        return;
    }
    for id in lab_ids() {
        let number = id.split('-').next().unwrap().to_string();
        let student = format!("t{number}");
        let instance = format!("lab{number}-{student}");
        let _ = sandbox().args(["rm", &instance]).output();
        ok(sandbox().args(["lab", "start", &id, "--name", &student]));
        let (passed, text) = check(&id, &student);
        assert!(!passed, "{id}: an untouched start passes: {text}");
        let solution =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("labs").join(&id).join("solution/solve.sh")).unwrap();
        let mut child = sandbox()
            .args(["exec", &instance, "--", "/bin/bash", "-s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&solution).unwrap();
        let solved = child.wait_with_output().unwrap();
        let (passed, text) = check(&id, &student);
        assert!(passed, "{id}: the solution fails: {text}\nsolve.sh said:\n{}{}", stdout(&solved), stderr(&solved));
        ok(sandbox().args(["rm", &instance]));
    }
}

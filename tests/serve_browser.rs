//! The class in headless Chromium (Debian's chromium, driven by playwright-core
//! from tests/browser/): a student logs in with their link, types
//! `echo $((6*7))` into the web terminal and reads 42; the teacher sees that
//! student's lab progress change after the student's check.
//! Needs root, /usr/bin/chromium, node and `npm ci --prefix tests/browser`
//! (.ci/run does all three); skips with the reason otherwise, fails under CI=true.

mod serve_support;

use std::path::Path;

use serve_support::*;

fn browser_ready() -> bool {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/playwright-core");
    let missing = [
        (!Path::new("/usr/bin/chromium").exists()).then_some("/usr/bin/chromium (apt-get install chromium chromium-driver)"),
        (!need_tool_quiet("node")).then_some("node (apt-get install nodejs npm)"),
        (!modules.is_dir()).then_some("playwright-core (npm ci --prefix tests/browser)"),
    ];
    let missing: Vec<&str> = missing.into_iter().flatten().collect();
    if missing.is_empty() {
        return true;
    }
    assert!(!in_ci(), "CI=true: the browser test needs {}", missing.join(", "));
    eprintln!("skipped: the browser test needs {}", missing.join(", "));
    false
}

fn need_tool_quiet(tool: &str) -> bool {
    std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn a_student_types_in_the_browser_and_the_teacher_sees_the_progress() {
    if !need_root("serve") || !need_tool("curl") || !browser_ready() {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-web"], Some("90-serve-hello"), &[]);
    let (student, teacher) = (serve.link("srv-web"), serve.link("teacher"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/serve.mjs");
    let output = std::process::Command::new("node").arg(&script).args([&student, &teacher, "srv-web"]).output().unwrap();
    let text = stdout(&output);
    eprintln!("{text}{}", stderr(&output));
    assert!(output.status.success(), "the browser test failed:\n{text}{}", stderr(&output));
    assert!(text.contains("ok: typed echo $((6*7)) and read 42"), "{text}");
    assert!(text.contains("progress 2/2"), "{text}");
}

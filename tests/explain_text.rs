//! What `explain` prints, as a reader sees it: every line within 80 columns
//! in English and Korean (by display width), a dry run as an unprivileged
//! user shows the id map and limits a run would use, and the propagation step
//! shows what changed (shared mounts), not a count that stays the same.

mod common;

use common::*;

fn columns(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

#[test]
fn dry_run_narration_fits_80_columns_in_both_languages() {
    for lang in ["en", "ko"] {
        let text = ok(sandbox().args(["explain", "--dry-run", "--lang", lang]));
        assert!(text.lines().count() > 100, "{text}");
        for line in text.lines() {
            assert!(columns(line) <= 80, "{lang}: {} columns: {line}", columns(line));
        }
    }
}

/// A real run tells what each step changed: those values fit too.
#[test]
fn a_real_run_s_narration_fits_80_columns_in_both_languages() {
    if !need_root("a real run") {
        return;
    }
    for lang in ["en", "ko"] {
        let text = ok(sandbox().args(["explain", "--lang", lang, "--", "/bin/true"]).stdin(std::process::Stdio::null()));
        assert!(text.lines().count() > 100, "{text}");
        for line in text.lines() {
            assert!(columns(line) <= 80, "{lang}: {} columns: {line}", columns(line));
        }
    }
}

#[test]
fn a_dry_run_without_root_shows_the_map_a_run_would_use() {
    if !need_root("switching to nobody") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let output = run(std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", env!("CARGO_BIN_EXE_sandbox"), "explain", "--dry-run"])
        .env("SANDBOX_HOME", home.path().join("state"))
        .env("HOME", home.path())
        .env("NO_COLOR", "1"));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains("echo '1000 65534 1' > /proc/PID/uid_map"), "{text}");
    assert!(!text.contains("1000000000 65536'"), "{text}");
    assert!(text.contains("unshare --map-user=1000 --map-group=1000"), "{text}");
}

#[test]
fn the_propagation_step_shows_shared_mounts_before_and_after() {
    if !need_root("a real run") {
        return;
    }
    let text = ok(sandbox().args(["explain", "--json", "--", "/bin/true"]));
    let step = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == "mount-private" && v["phase"] == "step")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(step["observed"]["shared_after"], "0", "{step}");
    assert!(step["observed"]["shared_before"].as_str().is_some(), "{step}");
    assert!(step["observed"].get("mounts_before").is_none(), "{step}");
}

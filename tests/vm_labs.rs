//! The course on cgroup v2: the ten labs of `labs/` run in the test VM
//! (Debian's stock kernel under qemu, only cgroup2 mounted, no systemd;
//! tests/vm/rig.rs), each as tests/labs.rs runs it on the build machine:
//! every model solution passes, every untouched start fails, every cheat in
//! `labs/NN-*/cheat/` fails, and nothing is left behind. The VM's "host" has
//! the programs the labs' profiles name (tests/vm/course.toml), so each lab's
//! environment is built inside the VM from the guest's own files.
//! The cases are tests/vm/guest/vm/cases/courselabs.sh.

mod common;
#[path = "vm/rig.rs"]
mod rig;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::lab_results;

/// Booting takes about 15 s under TCG; the ten labs take several minutes
/// on a quiet machine and a busy one may take several times as long.
const BOOT_TIMEOUT: Duration = Duration::from_secs(2400);

fn labs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("labs")
}

/// Each lab's id and its cheats' file names, in the order the case file runs them.
fn course() -> Vec<(String, Vec<String>)> {
    let mut labs: Vec<(String, Vec<String>)> = std::fs::read_dir(labs_root())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("lab.toml").is_file())
        .map(|e| {
            let mut cheats: Vec<String> = std::fs::read_dir(e.path().join("cheat"))
                .unwrap()
                .flatten()
                .map(|c| c.file_name().to_string_lossy().into_owned())
                .filter(|c| c.ends_with(".sh"))
                .collect();
            cheats.sort();
            (e.file_name().to_string_lossy().into_owned(), cheats)
        })
        .collect();
    labs.sort();
    labs
}

#[test]
fn every_lab_on_cgroup_v2() {
    let rig = match rig::Rig::new() {
        Ok(rig) => rig,
        Err(why) => {
            assert!(!common::in_ci(), "CI=true: the course VM test must not be skipped: {why}");
            eprintln!("skipped: the cgroup v2 VM cannot boot here: {why}");
            return;
        }
    };
    let sandbox = Path::new(env!("CARGO_BIN_EXE_sandbox"));
    let initramfs = rig.initramfs_of("course.toml", sandbox, &[(&labs_root(), "/vm/course/")]).unwrap_or_else(|e| panic!("initramfs: {e}"));
    let boot = rig.boot(&initramfs, "courselabs", BOOT_TIMEOUT).unwrap_or_else(|e| panic!("boot: {e}"));
    eprintln!("the course VM ran for {:.1} s", boot.seconds);
    let mut slowest: Vec<(u64, &str)> = boot
        .notes
        .iter()
        .filter_map(|n| n.strip_prefix("TIME ")?.strip_suffix(" s")?.rsplit_once(' '))
        .filter_map(|(case, seconds)| Some((seconds.parse().ok()?, case)))
        .collect();
    slowest.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!("its slowest cases: {:?}", &slowest[..slowest.len().min(12)]);
    assert!(boot.finished(), "the VM did not finish its cases\n{}", boot.report());
    let labs = course();
    assert_eq!(labs.len(), 10, "{labs:?}");
    for (id, cheats) in &labs {
        let n = id.split('-').next().unwrap();
        let ran = |name: &str| {
            let case = boot.case(&format!("{n}-{name}"));
            assert_eq!(case.status, 0, "{id}: {n}-{name}\n{}", boot.report());
            case.output.clone()
        };
        ran("start");
        for (student, result) in lab_results(id, &boot.case(&format!("{n}-untouched")).output) {
            assert!(!result.passed, "{id}: an untouched start passes for {student} on cgroup v2: {}", result.line);
        }
        let said = boot.case(&format!("{n}-solve")).output.clone();
        for (i, _) in cheats.iter().enumerate().filter(|(_, c)| *c == "neighbour.sh") {
            ran(&format!("copy-{i}"));
        }
        let results = lab_results(id, &boot.case(&format!("{n}-checked")).output);
        let solved = &results[&format!("t{n}")];
        assert!(solved.passed, "{id}: the solution fails on cgroup v2: {:?}: {}\nsolve.sh said:\n{said}", solved.failed, solved.line);
        for (i, cheat) in cheats.iter().enumerate() {
            let cheated = &results[&format!("c{n}-{i}")];
            assert!(!cheated.passed, "{id}: the cheat {cheat} passes on cgroup v2: {}", cheated.line);
        }
        let after = ran("after");
        assert!(after.contains("children: \n") && after.contains("subtree_control: \n"), "{id}: left in ci.scope: {after}");
    }
    // Lab 08 says which cgroup version the student is on, and its evidence is v2's.
    let info = &boot.case("08-solve").output;
    assert!(info.contains("0::/"), "lab 08's solution sees a v2 cgroup namespace: {info}");
    let left = boot.case("left");
    assert!(left.status == 0 && left.output.trim().is_empty(), "sandbox cgroups left behind\n{}", boot.report());
}

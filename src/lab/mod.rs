//! Labs: exercises that run in a student's own instance and are checked
//! automatically (see `labs/README.md`).
//!
//! The course's labs are built into the binary ([`embedded`]); a folder of
//! extra labs is used only when named (`--labs DIR` or `SANDBOX_LABS`) and
//! only if its owner alone may change it ([`source::trusted_folder`]).

pub mod check;
pub mod embedded;
pub mod evidence;
pub mod format;
pub mod history;
pub mod source;
pub mod values;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use check::{CheckResult, Report, grade};
pub use format::{CheckSpec, Lab, LabError, fill};
pub use source::Origin;

/// The extra lab folder: `--labs DIR`, else `SANDBOX_LABS`, else none.
pub fn extra_folder(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| std::env::var_os("SANDBOX_LABS").filter(|d| !d.is_empty()).map(PathBuf::from))
}

/// Every lab: the built-in ones, then those of the extra folder (a lab of the
/// folder replaces the built-in lab of the same name), sorted by name.
pub fn all(extra: Option<&Path>) -> Result<Vec<Lab>, LabError> {
    let mut labs: Vec<Lab> =
        embedded::LABS.iter().map(|lab| Lab::from_origin(lab.0.to_string(), Origin::Embedded(lab))).collect::<Result<_, _>>()?;
    if let Some(dir) = extra {
        let dir = source::trusted_folder(dir).map_err(|e| LabError {
            file: e.path.clone(),
            line: 0,
            column: 0,
            cause: e.cause.clone(),
            fix: e.fix.clone(),
        })?;
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.join("lab.toml").is_file()).collect();
        dirs.sort();
        for dir in dirs {
            let lab = Lab::load(&dir)?;
            labs.retain(|l| l.id != lab.id);
            labs.push(lab);
        }
    }
    labs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(labs)
}

/// A lab by its folder name (`01-chroot-by-hand`), its number (`1`, `01`) or its slug.
pub fn find(extra: Option<&Path>, wanted: &str) -> Result<Lab, LabError> {
    let labs = all(extra)?;
    let number = wanted.parse::<u32>().ok();
    labs.into_iter()
        .find(|lab| {
            lab.id == wanted
                || lab.number().parse::<u32>().ok().is_some_and(|n| Some(n) == number)
                || lab.id.split_once('-').is_some_and(|(_, slug)| slug == wanted)
        })
        .ok_or_else(|| LabError {
            file: "labs".into(),
            line: 0,
            column: 0,
            cause: format!("no lab `{wanted}`"),
            fix: "`sandbox lab list` shows them".into(),
        })
}

/// A built-in lab's files as a folder under the state directory, for the
/// profile loader (and the lock file it writes beside the profile):
/// `<state>/labs/<id>-<digest>/`, root's alone, made once per content.
/// Solutions, cheats and instructions stay out: nothing a student needs.
pub fn extract(lab: &Lab, state: &Path) -> io::Result<PathBuf> {
    use sha2::Digest;
    let files: Vec<(String, Vec<u8>)> = lab
        .origin
        .files()?
        .into_iter()
        .filter(|(name, _)| !(name.starts_with("solution/") || name.starts_with("cheat/") || name.starts_with("README")))
        .collect();
    let mut hash = sha2::Sha256::new();
    for (name, bytes) in &files {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    let digest = hex::encode(hash.finalize());
    let root = state.join("labs");
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
    let dir = root.join(format!("{}-{}", lab.id, &digest[..12]));
    if dir.join("lab.toml").is_file() {
        return Ok(dir);
    }
    let tmp = tempfile::Builder::new().prefix(".extract-").tempdir_in(&root)?;
    for (name, bytes) in &files {
        let path = tmp.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            // The directory moved: nothing is left for the guard to remove.
            let _ = tmp.keep();
        }
        // Another `lab start` made the same copy first.
        Err(_) if dir.join("lab.toml").is_file() => {}
        Err(e) => return Err(e),
    }
    Ok(dir)
}

/// The instance a student works in for a lab: `lab01-alice`.
pub fn instance_name(lab: &Lab, student: &str) -> String {
    format!("lab{}-{student}", lab.number())
}

/// The student: `--name`, else the user who ran sudo, else the user.
pub fn student(name: Option<&str>) -> String {
    name.map(String::from)
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "student".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_course_loads_without_any_folder() {
        let labs = all(None).unwrap();
        assert_eq!(labs.len(), 10, "{:?}", labs.iter().map(|l| &l.id).collect::<Vec<_>>());
        assert!(labs.iter().all(|l| matches!(l.origin, Origin::Embedded(_))));
        assert_eq!(find(None, "3").unwrap().id, "03-pid-namespace");
        assert_eq!(find(None, "cgroups").unwrap().id, "08-cgroups");
    }

    /// `lab list/show/check --lang ko` print these: every one in Korean.
    #[test]
    fn every_lab_text_has_korean() {
        let hangul = |s: &str| s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
        for lab in all(None).unwrap() {
            let mut texts = vec![("title", &lab.spec.title), ("goal", &lab.spec.goal), ("concepts", &lab.spec.concepts)];
            for check in &lab.spec.checks {
                texts.push(("check title", &check.title));
                texts.push(("check hint", &check.hint));
            }
            for (what, text) in texts {
                assert!(hangul(&text.ko), "{} {what}: not Korean: {}", lab.id, text.ko);
                assert!(!text.en.trim().is_empty(), "{} {what}: no English", lab.id);
            }
            assert!(hangul(&lab.readme(crate::explain::Lang::Ko)), "{}: README.ko.md", lab.id);
        }
    }

    #[test]
    fn extraction_keeps_solutions_out_and_is_made_once() {
        let state = tempfile::tempdir().unwrap();
        let lab = find(None, "02").unwrap();
        let dir = extract(&lab, state.path()).unwrap();
        assert!(dir.join("profile.toml").is_file() && dir.join("teacher.toml").is_file());
        assert!(!dir.join("solution").exists() && !dir.join("README.en.md").exists());
        assert_eq!(extract(&lab, state.path()).unwrap(), dir);
        let mode = std::fs::metadata(state.path().join("labs")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(lab.profile_spec(state.path()).unwrap().ends_with("/profile.toml"));
    }
}

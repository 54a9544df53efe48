//! Labs: exercises that run in a student's own instance and are checked
//! automatically (see `labs/README.md`).

pub mod format;
pub mod values;

use std::path::{Path, PathBuf};

pub use format::{CheckSpec, Lab, LabError, fill};

/// Where the labs are: `SANDBOX_LABS`, `./labs`, or the `labs/` beside the
/// sources this binary was built from.
pub fn labs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDBOX_LABS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let here = Path::new("labs");
    if here.join("01-chroot-by-hand").is_dir() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("labs")
}

pub fn all(dir: &Path) -> Result<Vec<Lab>, LabError> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.join("lab.toml").is_file()).collect();
    dirs.sort();
    dirs.iter().map(|d| Lab::load(d)).collect()
}

/// A lab by its folder name (`01-chroot-by-hand`), its number (`1`, `01`) or its slug.
pub fn find(dir: &Path, wanted: &str) -> Result<Lab, LabError> {
    let labs = all(dir)?;
    let number = wanted.parse::<u32>().ok();
    labs.into_iter()
        .find(|lab| {
            lab.id == wanted
                || lab.number().parse::<u32>().ok().is_some_and(|n| Some(n) == number)
                || lab.id.split_once('-').is_some_and(|(_, slug)| slug == wanted)
        })
        .ok_or_else(|| LabError {
            file: dir.display().to_string(),
            line: 0,
            column: 0,
            cause: format!("no lab `{wanted}`"),
            fix: "`sandbox lab list` shows them".into(),
        })
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

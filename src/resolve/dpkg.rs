//! What dpkg knows about the host's files: which package (and version) each
//! file came from. Used for the lock file ("which package version differs") and
//! for rules that need "the files of package X" (gcc's headers and crt files).
//! On a host without dpkg every lookup is simply empty.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Loaded on first use: reading every package's file list costs more than a
/// warm build, and most builds never ask.
pub struct Dpkg {
    root: PathBuf,
    db: std::sync::OnceLock<Database>,
}

#[derive(Default)]
struct Database {
    /// Package name (without `:arch`) -> files it installed, as dpkg lists them.
    files: HashMap<String, Vec<PathBuf>>,
    /// File path -> index into `packages`.
    owner: HashMap<PathBuf, usize>,
    packages: Vec<String>,
    versions: HashMap<String, String>,
}

impl Dpkg {
    /// The database under `root/var/lib/dpkg`, read when first asked.
    pub fn load(root: &Path) -> Dpkg {
        Dpkg { root: root.to_path_buf(), db: std::sync::OnceLock::new() }
    }

    fn db(&self) -> &Database {
        self.db.get_or_init(|| Database::read(&self.root))
    }

    pub fn is_empty(&self) -> bool {
        self.db().files.is_empty()
    }

    /// "bash 5.2.15-2+b7" for a host path, trying the merged-/usr aliases dpkg
    /// may have recorded instead (/bin/bash for /usr/bin/bash and back).
    pub fn package_of(&self, path: &Path) -> Option<String> {
        let db = self.db();
        let index = aliases(path).iter().find_map(|p| db.owner.get(p))?;
        let name = &db.packages[*index];
        Some(match db.versions.get(name) {
            Some(v) => format!("{name} {v}"),
            None => name.clone(),
        })
    }

    /// Names of installed packages matching a glob (`gcc-[0-9]*`), sorted.
    pub fn packages_matching(&self, pattern: &glob::Pattern) -> Vec<&str> {
        let mut names: Vec<&str> = self.db().files.keys().map(String::as_str).filter(|n| pattern.matches(n)).collect();
        names.sort_unstable();
        names
    }

    pub fn files_of(&self, package: &str) -> &[PathBuf] {
        self.db().files.get(package).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Database {
    /// Missing or unreadable: an empty database.
    fn read(root: &Path) -> Database {
        let mut db = Database::default();
        let info = root.join("var/lib/dpkg/info");
        let Ok(dir) = fs::read_dir(&info) else { return db };
        let mut lists: Vec<PathBuf> =
            dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "list")).collect();
        lists.sort(); // deterministic owner when two packages list one path (diversions)
        for list in lists {
            let stem = list.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let package = stem.split(':').next().unwrap_or(stem).to_string();
            let Ok(text) = fs::read_to_string(&list) else { continue };
            let index = db.packages.len();
            db.packages.push(package.clone());
            let paths: Vec<PathBuf> = text.lines().filter(|l| l.starts_with('/')).map(PathBuf::from).collect();
            for p in &paths {
                db.owner.entry(p.clone()).or_insert(index);
            }
            db.files.insert(package, paths);
        }
        if let Ok(status) = fs::read_to_string(root.join("var/lib/dpkg/status")) {
            db.versions = parse_status_versions(&status);
        }
        db
    }
}

fn aliases(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    if let Ok(rest) = path.strip_prefix("/usr") {
        out.push(Path::new("/").join(rest));
    } else {
        out.push(Path::new("/usr").join(path.strip_prefix("/").unwrap_or(path)));
    }
    out
}

/// Package -> Version from dpkg's status file (stanzas separated by blank lines).
fn parse_status_versions(status: &str) -> HashMap<String, String> {
    let mut versions = HashMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")).map(str::trim));
        if let (Some(p), Some(v)) = (field("Package"), field("Version")) {
            versions.entry(p.to_string()).or_insert_with(|| v.to_string());
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_versions_are_read_per_stanza() {
        let s = "Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n\nPackage: ls\nVersion: 9\n";
        let v = parse_status_versions(s);
        assert_eq!(v["bash"], "5.2-1");
        assert_eq!(v["ls"], "9");
    }

    #[test]
    fn fake_database_maps_files_to_packages_across_usr_merge() {
        let root = tempfile::tempdir().unwrap();
        let info = root.path().join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        fs::write(info.join("bash.list"), "/.\n/bin\n/bin/bash\n").unwrap();
        fs::write(root.path().join("var/lib/dpkg/status"), "Package: bash\nVersion: 5.2\n").unwrap();
        let db = Dpkg::load(root.path());
        assert_eq!(db.package_of(Path::new("/usr/bin/bash")).as_deref(), Some("bash 5.2"));
        assert_eq!(db.package_of(Path::new("/bin/bash")).as_deref(), Some("bash 5.2"));
        assert_eq!(db.package_of(Path::new("/bin/zsh")), None);
        assert_eq!(db.packages_matching(&glob::Pattern::new("ba*").unwrap()), ["bash"]);
    }
}

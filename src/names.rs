//! Names of people and instances: the display name a teacher types or lists
//! (any script: `--name 내이름`, `Kim Minsu`), the safe id that names the
//! instance on disk and in cgroups, and lists of names read from a file.
//!
//! An id is 1 to 63 of `a-z 0-9 _ -`, starting with a letter or digit. A
//! display name that is already an id is its own id; any other maps to its
//! readable ASCII part, slugged, and 8 hex digits of its SHA-256
//! (`Kim Minsu` -> `kim-minsu-1c1f0b52`, `내이름` -> `u-5d0c9d2f`), the same on
//! every machine, so either spelling reaches the instance.

use std::path::{Path, PathBuf};

use sha2::Digest;

/// The most characters a display name may have.
pub const MAX_CHARS: usize = 64;
/// Characters a name may not hold: they make a line look like a record
/// (`/etc/passwd`'s `:`), a path, or a comment in a names file.
const RESERVED: [char; 4] = [':', '/', '\\', '#'];
/// Names files are short lists; anything bigger is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// What is wrong with a name: said without repeating the name, so a file
/// that is not a list of names (/etc/shadow) never reaches the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {MAX_CHARS} characters")]
    TooLong,
    #[error("it holds a control character")]
    Control,
    #[error("it starts or ends with a space")]
    Space,
    #[error("it holds `{0}` (names may not hold : / \\ #)")]
    Reserved(char),
}

/// Whether `id` is a safe instance id.
pub fn is_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// Whether `name` may be a display name: 1 to 64 characters of any script,
/// no control or invisible formatting character, no space at either end, none of `: / \ #`.
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_CHARS {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control() || crate::escape::is_invisible(c)) {
        return Err(NameError::Control);
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(NameError::Space);
    }
    if let Some(c) = name.chars().find(|c| RESERVED.contains(c)) {
        return Err(NameError::Reserved(c));
    }
    Ok(())
}

/// The safe id of a display name (see the module's text).
pub fn id_for(name: &str) -> Result<String, NameError> {
    check(name)?;
    if is_id(name) {
        return Ok(name.to_string());
    }
    let mut slug = String::new();
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches(|c| c == '-' || c == '_');
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    Ok(if slug.is_empty() { format!("u-{hash}") } else { format!("{slug}-{hash}") })
}

/// A name from a file, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub line: usize,
    pub name: String,
}

/// Why a names file was refused. Lines are told by number only.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}\n  fix: give a file with one name a line", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: larger than {} KiB, not a list of names\n  fix: give a file with one name a line", path.display(), MAX_FILE_BYTES / 1024)]
    TooBig { path: PathBuf },
    #[error("{}:{line}: not UTF-8 text\n  fix: save the file as UTF-8, one name a line", path.display())]
    NotText { path: PathBuf, line: usize },
    #[error("{}:{line}: not a name: {reason} (the line is not shown)\n  fix: one name a line; `#` starts a comment", path.display())]
    Bad { path: PathBuf, line: usize, reason: NameError },
    #[error("{}:{line}: the same instance as line {first}\n  fix: list each person once", path.display())]
    Twice { path: PathBuf, line: usize, first: usize },
    #[error("{}: names nobody\n  fix: write one name a line", path.display())]
    Empty { path: PathBuf },
}

/// Read a names file: one display name a line; blank lines and everything
/// after `#` are skipped; each name is checked and no two map to one id.
/// `export --k8s --students`, `start`, `lab` and `serve --names-from` share it.
pub fn read_file(path: &Path) -> Result<Vec<Listed>, FileError> {
    use std::io::Read;
    let read = |source| FileError::Read { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    // Bounded: /dev/zero or a huge log is not a list of names.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooBig { path: path.to_path_buf() });
    }
    parse(&bytes).map_err(|e| e.at(path))
}

/// What `read_file` does, on bytes (the path is added by the caller).
fn parse(bytes: &[u8]) -> Result<Vec<Listed>, Unplaced> {
    let mut names: Vec<(Listed, String)> = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let text = std::str::from_utf8(raw).map_err(|_| Unplaced::NotText(line))?;
        let name = text.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        let id = id_for(name).map_err(|reason| Unplaced::Bad(line, reason))?;
        if let Some((first, _)) = names.iter().find(|(_, other)| *other == id) {
            return Err(Unplaced::Twice(line, first.line));
        }
        names.push((Listed { line, name: name.to_string() }, id));
    }
    if names.is_empty() {
        return Err(Unplaced::Empty);
    }
    Ok(names.into_iter().map(|(listed, _)| listed).collect())
}

enum Unplaced {
    NotText(usize),
    Bad(usize, NameError),
    Twice(usize, usize),
    Empty,
}

impl Unplaced {
    fn at(self, path: &Path) -> FileError {
        let path = path.to_path_buf();
        match self {
            Unplaced::NotText(line) => FileError::NotText { path, line },
            Unplaced::Bad(line, reason) => FileError::Bad { path, line, reason },
            Unplaced::Twice(line, first) => FileError::Twice { path, line, first },
            Unplaced::Empty => FileError::Empty { path },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_deterministic_and_readable() {
        assert_eq!(id_for("alice").unwrap(), "alice");
        assert_eq!(id_for("s_01").unwrap(), "s_01");
        let korean = id_for("내이름").unwrap();
        assert!(korean.starts_with("u-") && korean.len() == 10, "{korean}");
        assert_eq!(korean, id_for("내이름").unwrap());
        let kim = id_for("Kim Minsu").unwrap();
        assert!(kim.starts_with("kim-minsu-"), "{kim}");
        assert_ne!(id_for("Alice").unwrap(), "alice");
        assert!(id_for("-x").unwrap().starts_with("x-"));
        for name in ["내이름", "Kim Minsu", "Ünal Öz", "O'Brien", "-x", &"가".repeat(64), &"Ab c".repeat(16)] {
            let id = id_for(name).unwrap();
            assert!(is_id(&id), "{name} -> {id}");
        }
    }

    #[test]
    fn bad_names_are_refused_without_repeating_them() {
        assert_eq!(check(""), Err(NameError::Empty));
        assert_eq!(check(&"x".repeat(65)), Err(NameError::TooLong));
        assert_eq!(check("a\u{1b}[2Jb"), Err(NameError::Control));
        assert_eq!(check("a\u{202e}b"), Err(NameError::Control));
        assert_eq!(check(" a"), Err(NameError::Space));
        assert_eq!(check("../x"), Err(NameError::Reserved('/')));
        assert_eq!(check("root:x:0:0"), Err(NameError::Reserved(':')));
        assert!(!NameError::Reserved(':').to_string().contains("root"));
    }

    #[test]
    fn names_files_are_read_by_line_and_never_echoed() {
        let listed = parse("alice\n\n# a comment\n내이름  # 2nd row\nbob\r\n".as_bytes()).ok().unwrap();
        let names: Vec<(usize, &str)> = listed.iter().map(|l| (l.line, l.name.as_str())).collect();
        assert_eq!(names, [(1, "alice"), (4, "내이름"), (5, "bob")]);
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &[u8]| {
            let path = dir.path().join("names");
            std::fs::write(&path, text).unwrap();
            read_file(&path).unwrap_err().to_string()
        };
        let shadow = write(b"root:$y$j9T$secrethash:19000:0:99999:7:::\n");
        assert!(shadow.contains("names:1: not a name") && !shadow.contains("secrethash") && !shadow.contains("root"), "{shadow}");
        let passwd = write(b"alice\nbob:x:1001:1001::/home/bob:/bin/bash\n");
        assert!(passwd.contains("names:2: not a name: it holds `:`") && !passwd.contains("bob"), "{passwd}");
        assert!(write(b"alice\n\xff\xfe\n").contains("names:2: not UTF-8"));
        assert!(write(b"alice\nbob\nalice\n").contains("names:3: the same instance as line 1"));
        assert!(write(b"# nobody\n\n").contains("names nobody"));
        assert!(write(&vec![b'a'; 2 << 20]).contains("larger than"));
        let missing = read_file(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(missing.contains("missing: No such file"), "{missing}");
    }
}

//! `labs/NN-slug/lab.toml`: a lab's texts, environment, per-student values,
//! files and checks. Parsed strictly: unknown keys and broken checks are
//! errors that name the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A text every student sees, in both languages.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ko: String,
}

impl Text {
    pub fn get(&self, lang: crate::explain::Lang) -> &str {
        match lang {
            crate::explain::Lang::En => &self.en,
            crate::explain::Lang::Ko => &self.ko,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum ValueSpec {
    Hex { length: usize },
    Number { min: u64, max: u64 },
    Word { length: usize },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    pub content: String,
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: String,
    pub title: Text,
    pub hint: Text,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub expect_status: Option<i32>,
    #[serde(default)]
    pub expect_output: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub expect_content: Option<String>,
    #[serde(default)]
    pub history: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub title: Text,
    pub goal: Text,
    pub minutes: u32,
    pub concepts: Text,
    pub profile: String,
    #[serde(default)]
    pub values: BTreeMap<String, ValueSpec>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

/// A lab on disk.
#[derive(Clone, Debug)]
pub struct Lab {
    /// The folder name, e.g. `01-chroot-by-hand`.
    pub id: String,
    pub dir: PathBuf,
    pub spec: LabFile,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {cause}\n  fix: {fix}")]
pub struct LabError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub cause: String,
    pub fix: String,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

impl Lab {
    pub fn load(dir: &Path) -> Result<Lab, LabError> {
        let path = dir.join("lab.toml");
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| LabError {
            file: file.clone(),
            line: 0,
            column: 0,
            cause: e.to_string(),
            fix: "every lab folder needs a lab.toml".into(),
        })?;
        let spec: LabFile = toml::from_str(&text).map_err(|e| {
            let (line, column) = e.span().map(|s| position(&text, s.start)).unwrap_or((1, 1));
            LabError {
                file: file.clone(),
                line,
                column,
                cause: e.message().trim().to_string(),
                fix: "see labs/README.md for the lab.toml format".into(),
            }
        })?;
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lab = Lab { id, dir: dir.to_path_buf(), spec };
        lab.validate(&text, &file)?;
        Ok(lab)
    }

    /// Checks must say what to look at, once; their regexes must compile;
    /// placeholders must name a value.
    fn validate(&self, text: &str, file: &str) -> Result<(), LabError> {
        let at = |needle: &str, cause: String, fix: &str| {
            let (line, column) = text.find(needle).map(|o| position(text, o)).unwrap_or((1, 1));
            LabError { file: file.to_string(), line, column, cause, fix: fix.to_string() }
        };
        for check in &self.spec.checks {
            let kinds = [check.command.is_some(), check.file.is_some(), check.history.is_some()].iter().filter(|k| **k).count();
            if kinds != 1 {
                return Err(at(
                    &format!("id = \"{}\"", check.id),
                    format!("check `{}` must have exactly one of `command`, `file`, `history`", check.id),
                    "keep one way to look",
                ));
            }
            for pattern in [&check.expect_output, &check.expect_content, &check.history].into_iter().flatten() {
                let filled = fill(pattern, &self.placeholder_values());
                if let Err(e) = regex::Regex::new(&filled) {
                    return Err(at(
                        pattern,
                        format!("check `{}`: not a regular expression: {e}", check.id),
                        "escape special characters with \\\\",
                    ));
                }
            }
        }
        for (name, spec) in &self.spec.values {
            if let ValueSpec::Number { min, max } = spec
                && min > max
            {
                return Err(at(name, format!("value `{name}`: min {min} is above max {max}"), "swap them"));
            }
        }
        Ok(())
    }

    /// Values standing in for every placeholder (for validation only).
    fn placeholder_values(&self) -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> = self.spec.values.keys().map(|k| (k.clone(), "0".into())).collect();
        values.insert("student".into(), "student".into());
        values
    }

    pub fn profile_spec(&self) -> String {
        if self.spec.profile.ends_with(".toml") || self.spec.profile.contains('/') {
            self.dir.join(&self.spec.profile).display().to_string()
        } else {
            self.spec.profile.clone()
        }
    }

    pub fn number(&self) -> &str {
        self.id.split('-').next().unwrap_or(&self.id)
    }
}

/// Replace `{name}` by its value; `{{` and `}}` are literal braces.
pub fn fill(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
            let key = &tail[1..end];
            match values.get(key) {
                Some(v) => out.push_str(v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_literal_braces() {
        let values: BTreeMap<String, String> = [("flag".to_string(), "abc".to_string())].into();
        assert_eq!(fill("flag-{flag} {{x}} {nope}", &values), "flag-abc {x} {nope}");
        assert_eq!(fill("^a{2}$", &values), "^a{2}$");
    }

    #[test]
    fn broken_labs_point_at_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join("lab.toml"), text).unwrap();
        let base = "title = { en = \"t\", ko = \"t\" }\ngoal = { en = \"g\", ko = \"g\" }\nminutes = 5\nconcepts = { en = \"c\", ko = \"c\" }\nprofile = \"shell\"\n";
        write(&format!("{base}colour = 1\n"));
        let e = Lab::load(dir.path()).unwrap_err();
        assert_eq!((e.line, e.column), (6, 1), "{e}");
        assert!(e.cause.contains("unknown field `colour`"), "{e}");
        write(&format!("{base}[[checks]]\nid = \"x\"\ntitle = {{ en = \"a\", ko = \"a\" }}\nhint = {{ en = \"h\", ko = \"h\" }}\n"));
        let e = Lab::load(dir.path()).unwrap_err();
        assert!(e.cause.contains("exactly one of"), "{e}");
        assert_eq!(e.line, 7, "{e}");
        write(&format!(
            "{base}[[checks]]\nid = \"x\"\ntitle = {{ en = \"a\", ko = \"a\" }}\nhint = {{ en = \"h\", ko = \"h\" }}\nhistory = \"([\"\n"
        ));
        let e = Lab::load(dir.path()).unwrap_err();
        assert!(e.cause.contains("not a regular expression"), "{e}");
    }
}

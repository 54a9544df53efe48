//! `labs/NN-slug/lab.toml`: a lab's texts, environment, per-student values,
//! files and checks. Parsed strictly: unknown keys and broken checks are
//! errors that name the file, line and column.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::evidence::{Counter, LayerState};
use super::source::Origin;

/// A text every student sees, in both languages.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
    Hex {
        length: usize,
    },
    Number {
        min: u64,
        max: u64,
    },
    Word {
        length: usize,
    },
    /// One of the options (e.g. signal numbers that end a process without a core dump).
    Choice {
        options: Vec<String>,
    },
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
    /// A counter of the instance's cgroup (see [`Counter`]), with `at_least`/`at_most`.
    #[serde(default)]
    pub cgroup: Option<Counter>,
    /// For `file`: the first number in the file; for `cgroup`: the counter.
    #[serde(default)]
    pub at_least: Option<f64>,
    #[serde(default)]
    pub at_most: Option<f64>,
    /// What the instance's writable layer did to `path`: added, changed or deleted.
    #[serde(default)]
    pub layer: Option<LayerState>,
    #[serde(default)]
    pub path: Option<String>,
    /// A live process of the instance whose argv (joined by spaces) matches.
    #[serde(default)]
    pub process: Option<String>,
    /// For `process`: `init` (its parent is the instance's PID 1) or a regex
    /// the parent's argv must match.
    #[serde(default)]
    pub parent: Option<String>,
    /// For `process`: the state letter ps shows (`Z` for a zombie).
    #[serde(default)]
    pub state: Option<String>,
}

impl CheckSpec {
    /// How the check looks, by the one key that says so.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        for (set, name) in [
            (self.command.is_some(), "command"),
            (self.file.is_some(), "file"),
            (self.history.is_some(), "history"),
            (self.cgroup.is_some(), "cgroup"),
            (self.layer.is_some(), "layer"),
            (self.process.is_some(), "process"),
        ] {
            if set {
                kinds.push(name);
            }
        }
        kinds
    }
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

/// A lab: built in, or from a checked folder.
#[derive(Clone, Debug)]
pub struct Lab {
    /// The folder name, e.g. `01-chroot-by-hand`.
    pub id: String,
    pub origin: Origin,
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
    /// A lab folder on disk (already checked by [`super::source::trusted_folder`]).
    pub fn load(dir: &Path) -> Result<Lab, LabError> {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Lab::from_origin(id, Origin::Folder(dir.to_path_buf()))
    }

    pub fn from_origin(id: String, origin: Origin) -> Result<Lab, LabError> {
        let file = origin.describe("lab.toml");
        let text = origin.read("lab.toml").and_then(|b| String::from_utf8(b).map_err(std::io::Error::other)).map_err(|e| LabError {
            file: file.clone(),
            line: 0,
            column: 0,
            cause: e.to_string(),
            fix: "every lab folder needs a lab.toml in UTF-8".into(),
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
        let lab = Lab { id, origin, spec };
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
            let here = format!("id = \"{}\"", check.id);
            let kinds = check.kinds();
            if kinds.len() != 1 {
                return Err(at(
                    &here,
                    format!("check `{}` must have exactly one of `command`, `file`, `history`, `cgroup`, `layer`, `process`", check.id),
                    "keep one way to look",
                ));
            }
            let kind = kinds[0];
            let misplaced = [
                ("expect_status", check.expect_status.is_some(), kind == "command"),
                ("expect_output", check.expect_output.is_some(), kind == "command"),
                ("expect_content", check.expect_content.is_some(), kind == "file"),
                ("at_least", check.at_least.is_some(), kind == "file" || kind == "cgroup"),
                ("at_most", check.at_most.is_some(), kind == "file" || kind == "cgroup"),
                ("path", check.path.is_some(), kind == "layer"),
                ("parent", check.parent.is_some(), kind == "process"),
                ("state", check.state.is_some(), kind == "process"),
            ];
            if let Some((key, _, _)) = misplaced.iter().find(|(_, set, fits)| *set && !fits) {
                return Err(at(&here, format!("check `{}`: `{key}` does not go with `{kind}`", check.id), "see labs/README.md"));
            }
            if kind == "layer" && check.path.is_none() {
                return Err(at(&here, format!("check `{}`: `layer` needs a `path`", check.id), "add path = \"/home/student/...\""));
            }
            if kind == "cgroup" && check.at_least.is_none() && check.at_most.is_none() {
                return Err(at(&here, format!("check `{}`: `cgroup` needs `at_least` or `at_most`", check.id), "add at_least = 1"));
            }
            let parent_regex = check.parent.as_ref().filter(|p| p.as_str() != "init");
            for pattern in
                [&check.expect_output, &check.expect_content, &check.history, &check.process].into_iter().flatten().chain(parent_regex)
            {
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
            if let ValueSpec::Choice { options } = spec
                && options.is_empty()
            {
                return Err(at(name, format!("value `{name}`: a choice needs options"), "list at least one"));
            }
        }
        Ok(())
    }

    /// Values standing in for every placeholder (for validation only).
    fn placeholder_values(&self) -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> = self.spec.values.keys().map(|k| (k.clone(), "0".into())).collect();
        values.insert("student".into(), "student".into());
        for fact in super::evidence::FACTS {
            values.insert(fact.to_string(), "0".into());
        }
        values
    }

    /// The profile as `start` takes it: a ready profile's name, or the path of
    /// the lab's profile file (for a built-in lab, in its copy under the state
    /// directory; see [`super::extract`]).
    pub fn profile_spec(&self, state: &Path) -> std::io::Result<String> {
        if !(self.spec.profile.ends_with(".toml") || self.spec.profile.contains('/')) {
            return Ok(self.spec.profile.clone());
        }
        let dir = match &self.origin {
            Origin::Folder(dir) => dir.clone(),
            Origin::Embedded(_) => super::extract(self, state)?,
        };
        Ok(dir.join(&self.spec.profile).display().to_string())
    }

    /// The student's instructions in a language.
    pub fn readme(&self, lang: crate::explain::Lang) -> String {
        let code = match lang {
            crate::explain::Lang::En => "en",
            crate::explain::Lang::Ko => "ko",
        };
        self.origin.read(&format!("README.{code}.md")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
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

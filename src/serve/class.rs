//! The class a serve is for: its students, their instances, the profile and
//! the lab. The helper reaches only the instances this maps students to.

use std::path::{Path, PathBuf};

use crate::instance::valid_name;
use crate::lab::Lab;

use super::protocol::{CheckInfo, LabInfo, Texts};
use super::tokens::TEACHER;

#[derive(Clone, Debug)]
pub struct Class {
    /// The profile the instances are made from (a ready name or an absolute path).
    pub profile: String,
    pub lab: Option<Lab>,
    pub students: Vec<String>,
    /// This binary: the helper runs its own `exec`, `start`, `stop`, `lab check`.
    pub exe: PathBuf,
}

impl Class {
    pub fn has(&self, student: &str) -> bool {
        self.students.iter().any(|s| s == student)
    }

    /// The student's instance: their name, or `labNN-name` for a lab.
    pub fn instance_of(&self, student: &str) -> String {
        match &self.lab {
            Some(lab) => crate::lab::instance_name(lab, student),
            None => student.to_string(),
        }
    }

    pub fn lab_info(&self) -> Option<LabInfo> {
        let lab = self.lab.as_ref()?;
        let text = |t: &crate::lab::format::Text| Texts { en: t.en.clone(), ko: t.ko.clone() };
        let readme = |lang| lab.readme(lang);
        Some(LabInfo {
            id: lab.id.clone(),
            title: text(&lab.spec.title),
            goal: text(&lab.spec.goal),
            readme: Texts { en: readme(crate::explain::Lang::En), ko: readme(crate::explain::Lang::Ko) },
            checks: lab.spec.checks.iter().map(|c| CheckInfo { id: c.id.clone(), title: text(&c.title), hint: text(&c.hint) }).collect(),
        })
    }
}

/// The students of a names file: one name a line; blank lines and `#`
/// comments are skipped. Every bad line is reported with its number, and the
/// line itself is never echoed (the file could be anything, even a secret).
pub fn read_names(path: &Path, lab: Option<&Lab>) -> Result<Vec<String>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|_| format!("{}: not UTF-8 text\n  fix: one student name a line", path.display()))?;
    let mut names: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), number + 1);
        let instance = lab.map(|l| crate::lab::instance_name(l, name)).unwrap_or_else(|| name.to_string());
        if !valid_name(name) || !valid_name(&instance) {
            errors.push(format!("{at}: not a valid student name (1 to 57 of a-z, 0-9, `_` and `-`, starting with a letter or digit)"));
        } else if name == TEACHER {
            errors.push(format!("{at}: `{TEACHER}` is the teacher's login, not a student's name"));
        } else if names.iter().any(|n| n == name) {
            errors.push(format!("{at}: `{name}` is listed twice"));
        } else {
            names.push(name.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    if names.is_empty() {
        return Err(format!("{}: no student names\n  fix: one student name a line", path.display()));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_are_read_strictly_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("names");
        std::fs::write(&file, "# class A\nalice\n\n bob \n").unwrap();
        assert_eq!(read_names(&file, None).unwrap(), ["alice", "bob"]);
        std::fs::write(&file, "alice\nroot:$6$secret:19000\nalice\nteacher\n").unwrap();
        let error = read_names(&file, None).unwrap_err();
        assert!(error.contains("names:2: not a valid"), "{error}");
        assert!(error.contains("names:3: `alice` is listed twice"), "{error}");
        assert!(error.contains("names:4: `teacher`"), "{error}");
        assert!(!error.contains("secret"), "the bad line is not echoed: {error}");
        std::fs::write(&file, "# nobody\n").unwrap();
        assert!(read_names(&file, None).unwrap_err().contains("no student names"));
    }
}

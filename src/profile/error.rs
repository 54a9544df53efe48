//! One error per bad profile, pointing at the file, line and column, with a fix.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use super::types::{Origin, Source};

/// Why a profile could not be loaded: `file:line:column: cause` and a `fix:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError {
    file: String,
    position: Option<(u32, u32)>,
    cause: String,
    fix: String,
}

impl ProfileError {
    pub(super) fn new(file: &str, position: Option<(u32, u32)>, cause: String, fix: String) -> Self {
        ProfileError { file: file.to_owned(), position, cause, fix }
    }

    pub(super) fn at(origin: &Origin, cause: String, fix: String) -> Self {
        Self::new(&origin.file, Some((origin.line, origin.column)), cause, fix)
    }

    /// The file as the user named it (`shell.toml` for a ready profile).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based; `None` when the error is about the file as a whole.
    pub fn line(&self) -> Option<u32> {
        self.position.map(|(line, _)| line)
    }

    /// 1-based, counted in characters; `None` when the line is.
    pub fn column(&self) -> Option<u32> {
        self.position.map(|(_, column)| column)
    }

    pub fn cause(&self) -> &str {
        &self.cause
    }

    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}\n  fix: {}", self.cause, self.fix)
    }
}

impl std::error::Error for ProfileError {}

/// A problem found in one value, before it is placed in a file.
pub(super) struct Problem {
    pub cause: String,
    pub fix: String,
}

impl Problem {
    pub(super) fn new(cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem { cause: cause.into(), fix: fix.into() }
    }
}

/// The text of one profile file and how to name it in messages.
pub(super) struct ProfileText {
    /// As the user knows it: `./lab.toml`, `shell.toml`.
    pub display: String,
    pub text: String,
    pub source: Source,
    /// Where relative paths in this file start; `None` for a ready profile.
    pub dir: Option<PathBuf>,
    /// Set for the profile of an imported image.
    pub image: Option<super::types::ImageBase>,
}

impl ProfileText {
    pub(super) fn origin(&self, span: &Range<usize>) -> Origin {
        let (line, column) = line_column(&self.text, span.start);
        Origin { file: self.display.clone(), line, column }
    }

    pub(super) fn error(&self, span: &Range<usize>, problem: Problem) -> ProfileError {
        ProfileError::at(&self.origin(span), problem.cause, problem.fix)
    }

    /// The source text under a span, or "" if the span does not fit the text.
    pub(super) fn snippet(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

/// 1-based line and character column of a byte offset; offsets inside a
/// character or past the end are clamped rather than trusted.
pub(super) fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    // A byte-order mark is invisible in editors, so it is not a column.
    let column = before[line_start..].chars().filter(|&c| c != '\u{feff}').count() + 1;
    (saturate(line), saturate(column))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

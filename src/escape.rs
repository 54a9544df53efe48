//! Text that comes from inside an instance (file names, process names, a
//! program's output) is the student's, and reaches the teacher's terminal.
//! A terminal obeys what it prints: `ESC ] 0 ; title BEL` retitles the window,
//! `ESC [ 2 J` clears it, others move the cursor or rewrite what was shown.
//! Everything here shows such characters instead of sending them:
//!
//! - C0 controls, DEL and C1 controls as `\xNN` (`\x1b`, `\x07`, `\x9b`),
//!   and `\t` `\n` `\r` by their usual names;
//! - invisible formatting characters (bidirectional overrides, zero-width
//!   marks, line and paragraph separators) as `\u{202e}`;
//! - bytes that are not UTF-8 as `\xNN`;
//! - in [`line`], a backslash as `\\`, so every shown name stands for exactly
//!   one name (as `ls -b` does).
//!
//! For `--json`, text stays exact: [`Data`] holds it as a JSON string when it
//! is UTF-8 and as base64 bytes when not (`{"text": …}` or `{"bytes": …}`,
//! ripgrep's convention), so no name is lost or changed.

use std::borrow::Cow;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use base64::Engine;

/// Characters that print nothing yet change how text around them shows.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// One line (a name, a field): nothing in it acts on the terminal, and
/// different names show differently.
pub fn line(bytes: &[u8]) -> Cow<'_, str> {
    escape(bytes, false)
}

/// Text of several lines (a program's output): newlines and tabs pass, the
/// rest as in [`line`] (a backslash stays one: this is read, not parsed).
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    escape(bytes, true)
}

/// [`line`] of a path, byte-exact (a path need not be UTF-8).
pub fn path(path: &Path) -> Cow<'_, str> {
    line(path.as_os_str().as_bytes())
}

fn escape(bytes: &[u8], multiline: bool) -> Cow<'_, str> {
    let passes = |c: char| match c {
        '\n' | '\t' => multiline,
        '\\' => multiline,
        c => !c.is_control() && !is_invisible(c),
    };
    if let Ok(s) = std::str::from_utf8(bytes)
        && s.chars().all(passes)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                c if passes(c) => out.push(c),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x100 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    Cow::Owned(out)
}

/// Text for `--json`, exact: a string when it is UTF-8, else its bytes in
/// base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Data {
    Text { text: String },
    Bytes { bytes: String },
}

impl Data {
    pub fn of(bytes: &[u8]) -> Data {
        match std::str::from_utf8(bytes) {
            Ok(text) => Data::Text { text: text.to_string() },
            Err(_) => Data::Bytes { bytes: base64::engine::general_purpose::STANDARD.encode(bytes) },
        }
    }

    pub fn of_path(path: &Path) -> Data {
        Data::of(path.as_os_str().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_are_shown_not_sent() {
        assert_eq!(line(b"\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(line(b"\x1b[2J"), "\\x1b[2J");
        assert_eq!(line("a\u{9b}31m".as_bytes()), "a\\x9b31m", "C1 CSI in UTF-8");
        assert_eq!(line(b"a\x7fb\rc\nd\te"), "a\\x7fb\\rc\\nd\\te");
        assert_eq!(line("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(line(b"a\\x1b"), "a\\\\x1b", "a backslash never passes for an escape");
        assert_eq!(line(b"caf\xe9 \xff"), "caf\\xe9 \\xff", "not UTF-8");
    }

    #[test]
    fn plain_text_is_borrowed_and_kept() {
        assert!(matches!(line("내이름 ok".as_bytes()), Cow::Borrowed("내이름 ok")));
        assert!(matches!(text(b"two\nlines\tand \\ one"), Cow::Borrowed(_)));
        assert_eq!(text(b"out\n\x1b[2Jmore\r\n"), "out\n\\x1b[2Jmore\\r\n");
        assert_eq!(path(Path::new("/home/student/\x1b[2J")), "/home/student/\\x1b[2J");
    }

    #[test]
    fn json_data_is_exact() {
        assert_eq!(serde_json::to_string(&Data::of(b"\x1b[2J")).unwrap(), r#"{"text":"\u001b[2J"}"#);
        assert_eq!(serde_json::to_string(&Data::of(b"caf\xe9")).unwrap(), r#"{"bytes":"Y2Fm6Q=="}"#);
    }
}

//! Shell history as commands, not lines: `mkdir -p jail && cp bash jail/`
//! holds two commands, and `cp`, `/bin/cp`, `\cp`, `command cp` and
//! `sudo cp` are the same one. A history pattern is matched against every
//! simple command of the history, in each of its spellings, so `^cp\s` finds
//! a `cp` after `&&`, `;`, `|`, inside `( )`, `$( )` or `bash -c '...'`.

/// Words that run the command after them (with their options), and the
/// shell's keywords that stand before a command.
const WRAPPERS: &[&str] = &[
    "sudo", "command", "builtin", "exec", "nohup", "env", "nice", "time", "stdbuf", "timeout", "setsid", "do", "then", "else", "elif",
    "if", "while", "until", "!", "{",
];

/// Every simple command of `text` (one or more lines of shell), each in every
/// spelling: as written, with the program's path and quoting removed, and
/// with leading assignments and wrappers (`sudo`, `time`, ...) dropped.
pub fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        collect(line, &mut out, 0);
    }
    out
}

/// Whether `pattern` matches any command of the history.
pub fn matches(pattern: &regex::Regex, history: &str) -> bool {
    commands(history).iter().any(|c| pattern.is_match(c))
}

fn collect(line: &str, out: &mut Vec<String>, depth: usize) {
    for segment in split(line) {
        let segment = segment.trim();
        if segment.is_empty() || segment.starts_with('#') {
            continue;
        }
        spellings(segment, out);
        // The script of `bash -c '...'` (or `sh -c`, `su -c`) is commands too.
        if depth < 3 {
            let words = words(segment);
            if let Some(i) = words.iter().position(|w| w.1 == "-c")
                && let Some((_, script)) = words.get(i + 1)
            {
                collect(script, out, depth + 1);
            }
        }
    }
}

/// Split at the shell's command separators outside quotes: `;`, `&`, `|`,
/// `(`, `)`, a backquote and `$(`. (Keywords and `{` before a command are
/// dropped in [`spellings`].)
fn split(line: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => {
                quote = None;
                current.push(c);
            }
            (Some('\''), _) => current.push(c),
            (_, '\\') => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (Some('"'), '"') => {
                quote = None;
                current.push(c);
            }
            (Some('"'), '`') => segments.push(std::mem::take(&mut current)),
            (Some('"'), '$') if chars.peek() == Some(&'(') => {
                chars.next();
                segments.push(std::mem::take(&mut current));
            }
            (Some('"'), _) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ';' | '&' | '|' | '(' | ')' | '`') => {
                if c == '(' && current.ends_with('$') {
                    current.pop();
                }
                segments.push(std::mem::take(&mut current));
            }
            (None, _) => current.push(c),
            (Some(_), _) => current.push(c),
        }
    }
    segments.push(current);
    segments
}

/// The words of a command with where each starts: (offset, unquoted word).
fn words(segment: &str) -> Vec<(usize, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut chars = segment.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push((s, std::mem::take(&mut word)));
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some((_, next)) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        words.push((s, word));
    }
    words
}

/// The spellings of one simple command, as written first.
fn spellings(segment: &str, out: &mut Vec<String>) {
    out.push(segment.to_string());
    let words = words(segment);
    let mut i = 0;
    // Leading assignments: `LANG=C cp ...`.
    while i < words.len() && is_assignment(&words[i].1) {
        i += 1;
    }
    while i < words.len() {
        let program = words[i].1.rsplit('/').next().unwrap_or("").to_string();
        let rest = words.get(i + 1).map(|(offset, _)| &segment[*offset..]).unwrap_or("");
        let spelled = if rest.is_empty() { program.clone() } else { format!("{program} {rest}") };
        if !out.contains(&spelled) {
            out.push(spelled);
        }
        if !WRAPPERS.contains(&program.as_str()) {
            break;
        }
        // Past the wrapper, its options and (for env) its assignments.
        i += 1;
        while i < words.len() && (words[i].1.starts_with('-') || is_assignment(&words[i].1) || words[i].1.parse::<f64>().is_ok()) {
            i += 1;
        }
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(pattern: &str, history: &str) -> bool {
        matches(&regex::Regex::new(pattern).unwrap(), history)
    }

    #[test]
    fn a_command_is_found_anywhere_in_a_line() {
        let cp = r"^cp\s.*jail";
        assert!(finds(cp, "cp /usr/bin/bash jail/bin/"));
        assert!(finds(cp, "mkdir -p ~/jail/bin && cp /usr/bin/bash ~/jail/bin/"));
        assert!(finds(cp, "true; cp a jail/"));
        assert!(finds(cp, "ls | cp a jail/ || echo no"));
        assert!(finds(cp, "(cd ~ && cp a jail/)"));
        assert!(finds(cp, "echo $(cp a jail/)"));
        assert!(finds(cp, "bash -c 'cp a jail/'"));
        assert!(finds(cp, "for f in a b; do cp $f jail/; done"));
        assert!(!finds(cp, "echo cp a jail/"));
        assert!(!finds(cp, "# cp a jail/"));
        assert!(!finds(cp, "echo 'x; cp a jail/'"));
    }

    #[test]
    fn equivalent_spellings_are_the_same_command() {
        for line in [
            "/bin/cp a jail/",
            "/usr/bin/cp a jail/",
            "\\cp a jail/",
            "'cp' a jail/",
            "command cp a jail/",
            "sudo -E cp a jail/",
            "LC_ALL=C cp a jail/",
            "env X=1 cp a jail/",
        ] {
            assert!(finds(r"^cp\s.*jail", line), "{line}");
        }
        assert!(finds(r"^time\s", "time python3 -c 'pass'"));
        assert!(finds(r"^time\s", "/usr/bin/time -p python3 x.py"));
        assert!(finds(r"^python3\b", "time python3 x.py"));
        assert!(finds(r"^kill\b", "sleep 300 & kill $!"));
        assert!(finds(r"^kill\b", "kill -s USR1 %1; wait"));
    }

    #[test]
    fn quoted_separators_stay_inside_their_command() {
        let found = commands("perl -e 'chroot(\"/tmp/x\") or print \"$!\\n\"; exit'");
        assert!(found.iter().any(|c| c.contains("chroot(\"/tmp/x\")") && c.contains("exit")), "{found:?}");
    }
}

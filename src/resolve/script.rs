//! The programs a shell script runs: the words in command position of its
//! simple commands, as a shell's parser sees them (quotes, comments, here
//! documents, `case` patterns, `for` lists, command substitutions). Pure text
//! work, never running the script. A name built at run time (`$cmd`,
//! `eval`) cannot be known: it is reported, not guessed.

/// What a script's text says it runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Callees {
    /// Literal command names with the line they are on, in order (builtins,
    /// reserved words and the script's own functions left out).
    pub commands: Vec<(String, u32)>,
    /// Commands whose name is an expansion: the word as written, and its line.
    pub unknown: Vec<(String, u32)>,
}

/// Interpreters whose scripts are read with this parser.
pub fn is_shell(interpreter: &str) -> bool {
    matches!(interpreter, "sh" | "bash" | "dash" | "ksh" | "mksh" | "posh" | "ash" | "busybox")
}

/// Builtins of POSIX sh and bash: they run inside the shell, whatever PATH holds.
const BUILTINS: &[&str] = &[
    ".",
    ":",
    "[",
    "[[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

const RESERVED: &[&str] = &["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time", "in"];

/// Words that run the word after them (and their own options) as the command.
const WRAPPERS: &[&str] = &["exec", "command", "nohup", "env", "nice", "builtin"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word {
        text: String,
        literal: bool,
        line: u32,
    },
    /// `;` `&` `|` `&&` `||` `|&` newline: a new command starts.
    Separator,
    /// `;;` `;&` `;;&`: the end of a `case` branch.
    CaseBreak,
    LParen,
    RParen,
    /// `<` `>` `>>` `<&` `>&` `<>` `>|` `<<<` `&>`: the next word is a file.
    Redirect,
}

pub fn callees(text: &str) -> Callees {
    let mut out = Callees::default();
    let mut streams = vec![(text.to_string(), 1)];
    // Command substitutions are scripts of their own, read the same way.
    while let Some((text, line)) = streams.pop() {
        let (tokens, nested) = tokenize(&text, line);
        streams.extend(nested);
        parse(&tokens, &mut out);
    }
    let functions: Vec<String> =
        out.commands.iter().filter(|(n, _)| n.ends_with("()")).map(|(n, _)| n.trim_end_matches("()").into()).collect();
    out.commands.retain(|(name, _)| !name.ends_with("()") && !functions.contains(name) && !BUILTINS.contains(&name.as_str()));
    out.commands.sort_by_key(|(_, line)| *line);
    out.unknown.sort_by_key(|(_, line)| *line);
    out
}

fn parse(tokens: &[Token], out: &mut Callees) {
    let mut command_position = true;
    let mut file_next = false;
    let mut wrapped = false;
    let mut case_depth = 0usize;
    let mut case_header = false;
    let mut case_pattern = false;
    let mut for_header = false;
    let mut function_keyword = false;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Separator | Token::CaseBreak if case_pattern => {}
            Token::Separator => {
                command_position = true;
                for_header = false;
                wrapped = false;
            }
            Token::CaseBreak => {
                case_pattern = case_depth > 0;
                command_position = true;
            }
            Token::LParen => command_position = true,
            Token::RParen => {
                // `name() { body; }`: the body comes next; after a subshell, an operator.
                command_position = case_pattern || matches!(i.checked_sub(1).and_then(|p| tokens.get(p)), Some(Token::LParen));
                case_pattern = false;
            }
            Token::Redirect => file_next = true,
            Token::Word { text, literal, line } => {
                if file_next {
                    file_next = false;
                    continue;
                }
                if case_pattern {
                    if text == "esac" && *literal {
                        case_depth = case_depth.saturating_sub(1);
                        case_pattern = false;
                        command_position = false;
                    }
                    continue;
                }
                if case_header {
                    if text == "in" {
                        case_header = false;
                        case_pattern = true;
                    }
                    continue;
                }
                if for_header || !command_position {
                    continue;
                }
                if function_keyword {
                    function_keyword = false;
                    out.commands.push((format!("{text}()"), *line));
                    continue;
                }
                if *literal {
                    match text.as_str() {
                        "case" => {
                            case_depth += 1;
                            case_header = true;
                            command_position = false;
                            continue;
                        }
                        "esac" => {
                            case_depth = case_depth.saturating_sub(1);
                            command_position = false;
                            continue;
                        }
                        "for" | "select" => {
                            for_header = true;
                            continue;
                        }
                        "function" => {
                            function_keyword = true;
                            continue;
                        }
                        word if RESERVED.contains(&word) => continue,
                        word if is_assignment(word) => continue,
                        word if wrapped && word.starts_with('-') => continue,
                        word if WRAPPERS.contains(&word) => {
                            wrapped = true;
                            continue;
                        }
                        _ => {}
                    }
                    // `name() { ...; }` defines a function.
                    let defines = matches!(tokens.get(i + 1), Some(Token::LParen)) && matches!(tokens.get(i + 2), Some(Token::RParen));
                    out.commands.push((if defines { format!("{text}()") } else { text.clone() }, *line));
                } else if is_assignment(text) {
                    continue;
                } else {
                    out.unknown.push((text.clone(), *line));
                }
                command_position = false;
                wrapped = false;
            }
        }
    }
}

/// `NAME=value` (the name a literal identifier): an assignment, not a command.
fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else { return false };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The tokens of one script text, and the command substitutions found in it
/// (each with the line it starts on).
fn tokenize(text: &str, first_line: u32) -> (Vec<Token>, Vec<(String, u32)>) {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut nested = Vec::new();
    let mut line = first_line;
    let mut i = 0;
    let mut word = String::new();
    let mut literal = true;
    let mut in_word = false;
    let mut word_line = line;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    let mut heredoc_next = None;

    macro_rules! finish {
        () => {
            if in_word {
                if let Some(strip) = heredoc_next.take() {
                    heredocs.push((word.clone(), strip));
                }
                tokens.push(Token::Word { text: std::mem::take(&mut word), literal, line: word_line });
                in_word = false;
                literal = true;
            }
        };
    }
    macro_rules! start {
        () => {
            if !in_word {
                in_word = true;
                word_line = line;
            }
        };
    }

    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                finish!();
                tokens.push(Token::Separator);
                line += 1;
                i += 1;
                // Here documents start after the line that names them.
                for (delimiter, strip) in std::mem::take(&mut heredocs) {
                    while i < chars.len() {
                        let end = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p);
                        let body: String = chars[i..end].iter().collect();
                        i = (end + 1).min(chars.len().max(end));
                        line += 1;
                        let body = if strip { body.trim_start_matches('\t') } else { body.as_str() };
                        if body == delimiter {
                            break;
                        }
                    }
                }
            }
            ' ' | '\t' => {
                finish!();
                i += 1;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                if next == Some('\n') {
                    line += 1;
                } else if let Some(n) = next {
                    start!();
                    word.push(n);
                }
                i += 2;
            }
            '\'' => {
                start!();
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                start!();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('$' | '`' | '"' | '\\' | '\n')) => {
                            if chars[i + 1] == '\n' {
                                line += 1;
                            } else {
                                word.push(chars[i + 1]);
                            }
                            i += 2;
                        }
                        '$' | '`' => {
                            literal = false;
                            let end = expansion(&chars, i, &mut line, &mut nested);
                            word.extend(&chars[i..end]);
                            i = end;
                        }
                        ch => {
                            if ch == '\n' {
                                line += 1;
                            }
                            word.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '$' | '`' => {
                start!();
                literal = false;
                // Kept as written: only a literal word is a name, this one is shown in a note.
                let end = expansion(&chars, i, &mut line, &mut nested);
                word.extend(&chars[i..end]);
                i = end;
            }
            ';' => {
                finish!();
                if next == Some(';') {
                    tokens.push(Token::CaseBreak);
                    i += if chars.get(i + 2) == Some(&'&') { 3 } else { 2 };
                } else if next == Some('&') {
                    tokens.push(Token::CaseBreak);
                    i += 2;
                } else {
                    tokens.push(Token::Separator);
                    i += 1;
                }
            }
            '&' | '|' => {
                finish!();
                if c == '&' && next == Some('>') {
                    tokens.push(Token::Redirect);
                    i += if chars.get(i + 2) == Some(&'>') { 3 } else { 2 };
                } else {
                    tokens.push(Token::Separator);
                    i += if next == Some(c) || (c == '|' && next == Some('&')) { 2 } else { 1 };
                }
            }
            '(' => {
                finish!();
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                finish!();
                tokens.push(Token::RParen);
                i += 1;
            }
            '<' | '>' => {
                // `2>file`: the digits are the descriptor, not a word.
                if in_word && literal && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                finish!();
                let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
                if rest.starts_with("<<<") {
                    i += 3;
                } else if rest.starts_with("<<-") {
                    heredoc_next = Some(true);
                    i += 3;
                } else if rest.starts_with("<<") {
                    heredoc_next = Some(false);
                    i += 2;
                } else if [">>", "<&", ">&", "<>", ">|"].iter().any(|op| rest.starts_with(op)) {
                    i += 2;
                } else {
                    i += 1;
                }
                // `>&2`, `<&-`: the descriptor is part of the operator.
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '-') && rest.ends_with('&') {
                    i += 1;
                }
                tokens.push(Token::Redirect);
            }
            _ => {
                start!();
                word.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word { text: word, literal, line: word_line });
    }
    (tokens, nested)
}

/// Skips the expansion at `chars[i]` (`$name`, `${...}`, `$((...))`, `$(...)`,
/// `` `...` ``) and returns the index after it; command substitutions are
/// kept in `nested` to be read as scripts of their own.
fn expansion(chars: &[char], mut i: usize, line: &mut u32, nested: &mut Vec<(String, u32)>) -> usize {
    let start_line = *line;
    let mut body = |from: usize, open: char, close: char, skip: usize| {
        let mut depth = 1;
        let mut j = from;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            let ch = chars[j];
            match quote {
                Some(q) if ch == q => quote = None,
                Some(_) => {}
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                None if ch == '\\' => j += 1,
                None if ch == open && open != close => depth += 1,
                None if ch == close => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                None => {}
            }
            if chars.get(j) == Some(&'\n') {
                *line += 1;
            }
            j += 1;
        }
        let text: String = chars[from..j.min(chars.len())].iter().collect();
        (text, (j + skip).min(chars.len()))
    };
    if chars[i] == '`' {
        let (text, end) = body(i + 1, '`', '`', 1);
        nested.push((text, start_line));
        return end;
    }
    i += 1;
    match chars.get(i) {
        Some('(') if chars.get(i + 1) == Some(&'(') => body(i + 2, '(', ')', 2).1,
        Some('(') => {
            let (text, end) = body(i + 1, '(', ')', 1);
            nested.push((text, start_line));
            end
        }
        Some('{') => body(i + 1, '{', '}', 1).1,
        Some(c) if c.is_ascii_alphanumeric() || *c == '_' => {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            j
        }
        Some(_) => i + 1,
        None => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        callees(text).commands.into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn egrep_and_zcat_as_debian_ships_them() {
        let egrep = "#!/bin/sh\ncmd=${0##*/}\necho \"$cmd: warning: $cmd is obsolescent; using grep -E\" >&2\nexec grep -E \"$@\"\n";
        assert_eq!(callees(egrep).commands, [("grep".to_string(), 4)]);
        let zcat = "#!/bin/sh\n# Uncompress files.\nversion=\"zcat (gzip) 1.12\nCopyright (C) 2007\"\nusage=\"Usage: $0 [OPTION]...\n\n  -f, --force\"\n\
                    case $1 in\n--help)    printf '%s\\n' \"$usage\"   || exit 1; exit;;\n--version) printf '%s\\n' \"$version\" || exit 1; exit;;\nesac\n\nexec gzip -cd \"$@\"\n";
        let found = callees(zcat);
        assert_eq!(found.commands, [("gzip".to_string(), 13)]);
        assert!(found.unknown.is_empty(), "{found:?}");
    }

    #[test]
    fn command_position_as_a_shell_parser_sees_it() {
        let text = [
            "LC_ALL=C sort -u <in >out 2>/dev/null | uniq -c && wc -l || tr a b; env -i FOO=1 date",
            "if grep -q x f; then sed s/a/b/; elif awk 1; then :; else cut -c1; fi",
            "for f in ls cat; do head \"$f\"; done",
            "while read -r line; do tail -n1; done <<-END",
            "\tnot a command",
            "\tEND",
            "x=$(basename \"$0\") y=`dirname $0`",
            "echo \"$(id -u) and `whoami`\" # not-a-command",
            "cleanup() { mktemp; }",
            "function teardown { rmdir x; }",
            "cleanup; teardown",
            "( cd /srv && tar c . ) | gzip > x.gz",
            "'quoted' arg; \"/usr/bin/xz\" -d",
        ]
        .join("\n");
        let mut found = names(&text);
        found.sort();
        let mut expected = [
            "sort",
            "uniq",
            "wc",
            "tr",
            "date",
            "grep",
            "sed",
            "awk",
            "cut",
            "head",
            "tail",
            "basename",
            "dirname",
            "id",
            "whoami",
            "mktemp",
            "rmdir",
            "tar",
            "gzip",
            "quoted",
            "/usr/bin/xz",
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn names_built_at_run_time_are_reported_with_their_line() {
        let found = callees("#!/bin/sh\nprog=gzip\n$prog -d x\n\"${TOOL:-cat}\" y\nls\n");
        assert_eq!(found.commands, [("ls".to_string(), 5)]);
        assert_eq!(found.unknown, [("$prog".to_string(), 3), ("${TOOL:-cat}".to_string(), 4)]);
    }
}

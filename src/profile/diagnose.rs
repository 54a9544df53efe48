//! Turns the toml crate's errors into one readable error at the right place.
//!
//! serde reports a message and a byte span but not which key it is about, so the
//! span is looked up in the parsed document to name the key and its table.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{Problem, ProfileError, ProfileText};

const FORMAT_HINT: &str = "see the profile format in README.md";

/// Fixes for the toml crate's syntax messages, by how the message starts.
const SYNTAX_FIXES: &[(&str, &str)] = &[
    ("unclosed array table", "close the header with `]]`, e.g. [[mounts]]"),
    ("unclosed table", "close the header with `]`, e.g. [rootfs]"),
    ("unclosed array", "close the list with `]`; entries are separated by commas"),
    ("missing comma between array elements", "separate the entries with commas: [\"a\", \"b\"]"),
    ("invalid basic string", "close the string with `\"` on the same line (use \"\"\" for several lines)"),
    ("invalid literal string", "close the string with `'` on the same line"),
    ("key with no value", "write `key = value`, all on one line"),
    ("unexpected key or value", "put each `key = value` on its own line"),
];

/// A TOML syntax error (the document could not be parsed at all).
pub(super) fn syntax_error(file: &ProfileText, error: &toml::de::Error) -> ProfileError {
    let message = one_line(error.message());
    let span = error.span().unwrap_or(0..0);
    let snippet = file.snippet(&span).trim().escape_debug().to_string();
    let known_fix = SYNTAX_FIXES.iter().find(|(start, _)| message.starts_with(start));
    let problem = if message == "duplicate key" {
        Problem::new(format!("duplicate key `{snippet}`"), "a key or table may appear only once: merge the two or delete one")
    } else if message.starts_with("string values must be quoted") {
        Problem::new(message, format!("put the text in double quotes: \"{snippet}\""))
    } else if let Some((_, fix)) = known_fix {
        Problem::new(message, *fix)
    } else {
        Problem::new(message, "correct the TOML syntax here (see https://toml.io)")
    };
    file.error(&span, problem)
}

/// A document that parsed but does not fit the profile schema.
pub(super) fn schema_error(file: &ProfileText, doc: &DeTable<'_>, error: &toml::de::Error) -> ProfileError {
    let message = one_line(error.message());
    let Some(span) = error.span() else {
        return ProfileError::new(&file.display, None, message, FORMAT_HINT.into());
    };
    let places = locate(doc, "", "", &span);
    let problem = if let Some(rest) = message.strip_prefix("unknown field ") {
        places.iter().find(|p| p.matched == Matched::Key).map(|p| unknown_key(p, rest))
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        places.first().map(|p| missing_key(p, rest))
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        wrong_type(file, &places, rest, &span)
    } else {
        None
    };
    file.error(&span, problem.unwrap_or_else(|| Problem::new(message, FORMAT_HINT)))
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Matched {
    Key,
    Value,
    Element,
}

/// A key of the document whose key, value or array element sits at the error's span.
struct Place<'a> {
    /// The table holding the key as written in a header: "" (top), "[rootfs]", "[[mounts]]".
    table: String,
    key: String,
    /// Dotted path to the key: "rootfs.copy".
    path: String,
    matched: Matched,
    value: &'a DeValue<'a>,
}

impl Place<'_> {
    fn is_table(&self) -> bool {
        match self.value {
            DeValue::Table(_) => true,
            DeValue::Array(items) => !items.is_empty() && items.iter().all(|i| matches!(i.get_ref(), DeValue::Table(_))),
            _ => false,
        }
    }

    /// How the value's own table is written in a header.
    fn own_table(&self) -> String {
        if self.matched == Matched::Element || matches!(self.value, DeValue::Array(_)) {
            format!("[[{}]]", self.path)
        } else {
            format!("[{}]", self.path)
        }
    }
}

/// Every place at `span`, outermost first. An array of tables and its first
/// element share a span, so callers choose among them by what they expect.
fn locate<'a>(table: &'a DeTable<'a>, label: &str, prefix: &str, span: &Range<usize>) -> Vec<Place<'a>> {
    let mut places = Vec::new();
    for (key, value) in table.iter() {
        // Quoted keys may hold newlines; messages stay on one line.
        let name = key.get_ref().escape_debug().to_string();
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let place = |matched, value| Place { table: label.to_owned(), key: name.clone(), path: path.clone(), matched, value };
        if key.span() == *span {
            places.push(place(Matched::Key, value.get_ref()));
        }
        if value.span() == *span {
            places.push(place(Matched::Value, value.get_ref()));
        }
        match value.get_ref() {
            DeValue::Table(inner) => places.extend(locate(inner, &format!("[{path}]"), &path, span)),
            DeValue::Array(items) => {
                for item in items.iter() {
                    if item.span() == *span {
                        places.push(place(Matched::Element, item.get_ref()));
                    }
                    if let DeValue::Table(inner) = item.get_ref() {
                        places.extend(locate(inner, &format!("[[{path}]]"), &path, span));
                    }
                }
            }
            _ => {}
        }
    }
    places
}

/// `rest` is serde's "`binaris`, expected one of `binaries`, `files`, ...".
fn unknown_key(place: &Place<'_>, rest: &str) -> Problem {
    let valid = backticked(rest).into_iter().skip(1).collect::<Vec<_>>();
    let as_table = place.is_table().then(|| place.own_table());
    // A suggestion is written the way the typo was: `[[mounts]]` for `[[mount]]`.
    let written = |key: &str| match &as_table {
        Some(header) if header.starts_with("[[") => format!("[[{}]]", dotted(&place.table, key)),
        Some(_) => format!("[{}]", dotted(&place.table, key)),
        None => key.to_owned(),
    };
    let cause = match (&as_table, place.table.as_str()) {
        (Some(header), _) => format!("unknown table `{header}`"),
        (None, "") => format!("unknown key `{}`", place.key),
        (None, table) => format!("unknown key `{}` in {table}", place.key),
    };
    let fix = match closest(&place.key, &valid) {
        Some(best) => format!("did you mean `{}`?", written(best)),
        None if valid.is_empty() => "remove it".to_owned(),
        None => {
            let list = valid.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            let scope = if place.table.is_empty() { "at the top level".to_owned() } else { format!("in {}", place.table) };
            format!("the keys allowed {scope} are {list}")
        }
    };
    Problem::new(cause, fix)
}

/// The dotted path of a sibling key, from the label of its table ("[[a.b]]" -> "a.b.key").
fn dotted(table_label: &str, key: &str) -> String {
    let table = table_label.trim_matches(|c| c == '[' || c == ']');
    if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") }
}

fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The valid key a typo most likely meant, if any is close enough.
pub(super) fn closest<'a>(typo: &str, valid: &[&'a str]) -> Option<&'a str> {
    let typo = typo.to_lowercase();
    valid
        .iter()
        .map(|&k| (k, strsim::normalized_damerau_levenshtein(&typo, k)))
        .filter(|&(_, score)| score >= 0.6)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

fn missing_key(place: &Place<'_>, rest: &str) -> Problem {
    let key = backticked(rest).first().copied().unwrap_or(rest);
    Problem::new(format!("missing key `{key}` in {}", place.own_table()), format!("add `{key} = \"...\"` to this table"))
}

/// `rest` is serde's "string \"12\", expected i64".
fn wrong_type(file: &ProfileText, places: &[Place<'_>], rest: &str, span: &Range<usize>) -> Option<Problem> {
    let (found, expected) = rest.rsplit_once(", expected ")?;
    // The array and its first element share a span: take the one of the reported kind.
    let values = || places.iter().filter(|p| p.matched != Matched::Key);
    let place = values().find(|p| Some(kind_of(p.value)) == found_kind(found)).or_else(|| values().next())?;
    if found.ends_with(" as i128") {
        return Some(Problem::new(format!("`{}` is too large a number", place.key), "write a smaller number"));
    }
    let expected = expected_kind(expected)?;
    // Described from the document: serde calls a date-time a map.
    let found = kind_of(place.value);
    let cause = match place.matched {
        Matched::Element => format!("each entry of `{}` must be {}, found {found}", place.key, expected.noun()),
        _ => format!("`{}` must be {}, found {found}", place.key, expected.noun()),
    };
    Some(Problem::new(cause, type_fix(place, expected, found, file.snippet(span).trim())))
}

/// How to rewrite the value, reusing what was written (`raw`) where that helps.
fn type_fix(place: &Place<'_>, expected: Kind, found: &str, raw: &str) -> String {
    let raw = if raw.contains('\n') || raw.chars().count() > 40 { "..." } else { raw };
    let key = &place.key;
    let element = place.matched == Matched::Element;
    let scalar = !matches!(found, "an array" | "a table");
    let unquoted = raw.trim_matches(|c| c == '"' || c == '\'');
    let assign = |value: &str| {
        if element { value.to_owned() } else { format!("{key} = {value}") }
    };
    let tables = matches!(place.path.as_str(), "rootfs.copy" | "rootfs.write" | "mounts");
    match expected {
        Kind::String if scalar => {
            format!("put it in double quotes: {}", assign(&format!("\"{raw}\"")))
        }
        Kind::String => format!("write one string in double quotes: {}", assign("\"...\"")),
        Kind::Integer if unquoted.parse::<i64>().is_ok() => {
            format!("remove the quotes: {}", assign(unquoted))
        }
        Kind::Number if unquoted.parse::<f64>().is_ok() => {
            format!("remove the quotes: {}", assign(unquoted))
        }
        Kind::Integer => "write a whole number, without quotes".to_owned(),
        Kind::Number => "write a number, without quotes, e.g. 0.5".to_owned(),
        Kind::Boolean => format!("write `{key} = true` or `{key} = false`"),
        Kind::Array if tables => format!("write each entry as a table under its own `[[{}]]` header", place.path),
        Kind::Array if scalar => {
            format!("write a list in brackets: {}", assign(&format!("[{raw}]")))
        }
        Kind::Array => format!("write a list in brackets: {key} = [\"...\"]"),
        Kind::Table if element => format!("write each entry as a table under its own `[[{}]]` header", place.path),
        Kind::Table => format!("write `[{}]` on its own line, with its keys on the lines below", place.path),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Table,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "true or false",
            Kind::Array => "an array",
            Kind::Table => "a table",
        }
    }
}

fn expected_kind(serde_expected: &str) -> Option<Kind> {
    Some(match serde_expected {
        "a string" => Kind::String,
        "i64" | "u64" | "i32" | "u32" => Kind::Integer,
        "f64" | "f32" => Kind::Number,
        "a boolean" => Kind::Boolean,
        "a sequence" => Kind::Array,
        e if e.starts_with("struct ") || e == "a map" => Kind::Table,
        _ => return None,
    })
}

/// serde's `Unexpected` as a noun phrase: "string \"12\"" -> "a string".
fn found_kind(serde_found: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str); 6] = [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a float"),
        ("boolean", "a boolean"),
        ("sequence", "an array"),
        ("map", "a table"),
    ];
    NAMES.iter().find(|(prefix, _)| serde_found.starts_with(prefix)).map(|&(_, noun)| noun)
}

fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

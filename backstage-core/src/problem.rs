//! Problems found in a manifest, with where they are.

use std::fmt::{self, Write as _};
use std::ops::Range;

use serde::Serialize;

/// One problem in a manifest: where it is (TOML path, byte span, line and column) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The TOML path of the offending value: `venues.jazz.server_names[1]`. Empty for problems
    /// of the document as a whole (syntax errors).
    pub path: String,
    /// Byte range of the offending text in the manifest.
    #[serde(skip)]
    pub span: Range<usize>,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
    /// A one-line reason, lowercase.
    pub message: String,
    /// What to do about it, when Backstage can tell.
    pub hint: Option<String>,
}

impl Problem {
    /// Builds a problem, computing line and column of `span` in `source`.
    pub fn new(
        source: &str,
        path: String,
        span: Range<usize>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        let (line, column) = line_column(source, span.start);
        Problem {
            path,
            span,
            line,
            column,
            message,
            hint,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// 1-based line and character column of a byte offset (clamped to the source).
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

/// A TOML path under construction: `venues.jazz.server_names[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TomlPath(String);

impl TomlPath {
    pub(crate) fn key(&self, key: &str) -> TomlPath {
        // The usual bare key fits at once; a quoted one may grow.
        let mut s = String::with_capacity(self.0.len() + 1 + key.len());
        s.push_str(&self.0);
        if !s.is_empty() {
            s.push('.');
        }
        push_key(&mut s, key);
        TomlPath(s)
    }

    pub(crate) fn index(&self, i: usize) -> TomlPath {
        TomlPath(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for TomlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes a key bare when TOML allows it, quoted otherwise.
fn push_key(out: &mut String, key: &str) {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        out.push_str(key);
    } else {
        out.push('"');
        for ch in key.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 6), (2, 1));
        // `=` after the two-byte `é` is the fourth character of line 2.
        assert_eq!(line_column(src, 10), (2, 4));
        assert_eq!(line_column(src, 9999), (3, 1));
        // Inside a multi-byte character: clamped back to its start.
        assert_eq!(line_column(src, 8), (2, 2));
    }

    #[test]
    fn paths_quote_when_needed() {
        let p = TomlPath::default()
            .key("acts")
            .key("club")
            .key("static")
            .key("/static/");
        assert_eq!(p.to_string(), r#"acts.club.static."/static/""#);
        assert_eq!(
            TomlPath::default()
                .key("venues")
                .key("jazz")
                .key("server_names")
                .index(1)
                .to_string(),
            "venues.jazz.server_names[1]"
        );
        assert_eq!(TomlPath::default().key("a\"b").to_string(), r#""a\"b""#);
    }
}

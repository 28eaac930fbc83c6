//! Foreign sites: the server names other nginx sites already serve (system mode).

use std::path::{Path, PathBuf};

use backstage_core::{Production, files};

use crate::error::{Error, io_err};

/// A site nginx loads that Backstage's Production does not own, and the names it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForeignSite {
    /// The file in the enabled-sites directory (as nginx includes it).
    pub file: PathBuf,
    /// Every literal name of its `server_name` directives (`_`, regexes and empty names left out).
    pub server_names: Vec<String>,
}

/// Reads every file in `enabled_dir` that is not `production`'s own and lists the server names
/// it serves. Unreadable entries (dangling links) are skipped: nginx would refuse them anyway,
/// and `nginx -t` reports that. A missing directory has no sites.
pub fn foreign_server_names(
    enabled_dir: &Path,
    production: &Production,
) -> Result<Vec<ForeignSite>, Error> {
    let entries = match std::fs::read_dir(enabled_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", enabled_dir)(e)),
    };
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !is_hidden(p))
        .collect();
    paths.sort();
    for file in paths {
        // Only regular files (through links): reading a FIFO would block.
        if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        if files::is_ours(&bytes, &production.name) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        out.push(ForeignSite {
            server_names: server_names(&text),
            file,
        });
    }
    Ok(out)
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'))
}

/// A server name of a Venue that a foreign site already serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NameClash {
    /// The Venue.
    pub venue: String,
    /// The index of the name in the Venue's `server_names`.
    pub index: usize,
    /// The name.
    pub name: String,
    /// The foreign site file serving it.
    pub file: PathBuf,
}

/// Every server name of the Production that a foreign site already serves (system mode; user
/// mode has its own nginx and no foreign sites).
pub fn foreign_clashes(production: &Production) -> Result<Vec<NameClash>, Error> {
    let Some(enabled) = &production.layout.nginx_enabled_dir else {
        return Ok(Vec::new());
    };
    let foreign = foreign_server_names(enabled.as_path(), production)?;
    let mut out = Vec::new();
    for (venue_name, venue) in &production.venues {
        for (index, name) in venue.server_names.iter().enumerate() {
            if let Some(site) = foreign
                .iter()
                .find(|site| site.server_names.iter().any(|n| serves(n, name.as_str())))
            {
                out.push(NameClash {
                    venue: venue_name.to_string(),
                    index,
                    name: name.to_string(),
                    file: site.file.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Refuses a server name a foreign site already serves. The error names the Venue and the
/// foreign file.
pub fn check_foreign(production: &Production) -> Result<(), Error> {
    match foreign_clashes(production)?.into_iter().next() {
        Some(c) => Err(Error::NameTaken {
            name: c.name,
            venue: c.venue,
            file: c.file,
        }),
        None => Ok(()),
    }
}

/// Whether a foreign `server_name` entry claims exactly `ours`: the same name, or nginx's
/// `.example.com` shorthand (both `example.com` and `*.example.com`).
fn serves(theirs: &str, ours: &str) -> bool {
    let theirs = theirs.to_ascii_lowercase();
    if theirs == ours {
        return true;
    }
    match theirs.strip_prefix('.') {
        Some(domain) => ours == domain || ours.strip_prefix("*.") == Some(domain),
        None => false,
    }
}

/// The literal names of every `server_name` directive in an nginx file. A tolerant tokenizer:
/// comments are stripped, quotes honoured, everything else ignored.
pub(crate) fn server_names(text: &str) -> Vec<String> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == Token::Word("server_name".to_owned()) {
            i += 1;
            while let Some(Token::Word(w)) = tokens.get(i) {
                let literal = !(w.is_empty() || w == "_" || w.starts_with('~') || w.contains('$'));
                if literal && !out.contains(w) {
                    out.push(w.clone());
                }
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Word(String),
    /// `;`, `{` or `}`.
    Punct(char),
}

pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let mut in_word = false;
    let flush = |word: &mut String, in_word: &mut bool, out: &mut Vec<Token>| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' if !in_word => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        q if q == c => break,
                        q => word.push(q),
                    }
                }
                flush(&mut word, &mut in_word, &mut out);
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut in_word, &mut out);
                out.push(Token::Punct(c));
            }
            c if c.is_whitespace() => flush(&mut word, &mut in_word, &mut out),
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_server_names_tolerantly() {
        let text = r#"
# server_name commented.example;
server {
    listen 80 default_server;
    server_name _;
    server_name a.example "b.example" 'c.example'
        .d.example ~^www\d+\.example$;   # trailing comment server_name x.example;
    location / { return 200 "server_name e.example;"; }
}
server{server_name f.example;}
"#;
        assert_eq!(
            server_names(text),
            [
                "a.example",
                "b.example",
                "c.example",
                ".d.example",
                "f.example"
            ]
        );
    }

    #[test]
    fn dot_names_cover_the_domain_and_its_wildcard() {
        assert!(serves("a.example", "a.example"));
        assert!(serves("A.Example", "a.example"));
        assert!(serves(".d.example", "d.example"));
        assert!(serves(".d.example", "*.d.example"));
        assert!(!serves(".d.example", "x.d.example"));
        assert!(!serves("*.d.example", "x.d.example"));
    }
}

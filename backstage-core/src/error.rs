//! The core's error type.

use std::path::PathBuf;

use crate::problem::Problem;

/// What can go wrong loading a Production.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `backstage.toml` in the start directory or any parent.
    #[error("no `backstage.toml` in `{}` or any parent directory", start.display())]
    ManifestNotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// The manifest could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not a regular file (after following symlinks): a FIFO, a device, a
    /// directory. Refused before reading, so `-f /dev/zero` or a FIFO never blocks or grows.
    #[error("`{}` is not a regular file (it is {kind}); a manifest must be a plain file", path.display())]
    NotAFile {
        /// The manifest's path.
        path: PathBuf,
        /// What it is instead: `a directory`, `a FIFO`, `a character device`, ….
        kind: &'static str,
    },
    /// The manifest is larger than [`MANIFEST_MAX_BYTES`](crate::MANIFEST_MAX_BYTES).
    #[error("`{}` is {size} bytes, over the {limit}-byte limit on manifests ({} MiB)", path.display(), limit / (1024 * 1024))]
    TooLarge {
        /// The manifest's path.
        path: PathBuf,
        /// Its size in bytes (at least `limit + 1` when it grew while being read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest is not UTF-8 text.
    #[error("`{}` is not valid UTF-8: invalid byte at offset {offset} (line {line}, column {column})", path.display())]
    NotUtf8 {
        /// The manifest's path.
        path: PathBuf,
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// 1-based line of that byte.
        line: usize,
        /// 1-based column (in characters) of that byte.
        column: usize,
    },
    /// The manifest has problems; every one is listed.
    #[error("`{}` has {} problem{}", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// An error and its causes on one line, `: `-separated, the way every Backstage front end
/// (the CLI, the Python module, a renewal job's log) shows a failure. A cause whose text the
/// line already holds is left out: many errors print their source in their own message, and
/// the line would repeat it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let next = inner.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_once_each() {
        let e = Outer(Middle(std::io::Error::other("disk on fire")));
        // `middle` already quotes the io error: it is not repeated.
        assert_eq!(error_chain(&e), "outer: middle: disk on fire");
        assert_eq!(error_chain(&std::io::Error::other("alone")), "alone");
    }
}

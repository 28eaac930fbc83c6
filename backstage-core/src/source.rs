//! The manifest's bytes before they are TOML: reading them from a file with bounds (a regular
//! file of at most [`MANIFEST_MAX_BYTES`], never blocking), their UTF-8 check with the position
//! of the first invalid byte, and where a dotted key the `toml` crate refuses as too deep is.

use std::io::Read as _;
use std::ops::Range;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use crate::error::Error;

/// The largest manifest Backstage reads, in bytes (4 MiB: a Production of thousands of Sess
/// fits many times over). A larger file is refused before it is read.
pub const MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// How many parts a dotted key may have: the `toml` crate refuses more (its recursion limit of 80
/// on the parts before the last), reporting it without a position.
pub(crate) const KEY_PARTS_MAX: usize = 80;

/// The spans of the dotted keys `toml` refuses as too deep, in file order; the deepest key when
/// none has more than [`KEY_PARTS_MAX`] parts (a future `toml` may count differently).
pub(crate) fn deep_keys(src: &str) -> Vec<Range<usize>> {
    use toml_parser::parser::{Event, EventKind, RecursionGuard};
    let tokens = toml_parser::Source::new(src).lex().into_vec();
    // (start of the key, end of its last part, parts so far), and whether a `.` came last.
    let mut keys: Vec<(usize, usize, usize)> = Vec::new();
    let mut after_dot = false;
    let mut on_event = |e: Event| match e.kind() {
        EventKind::SimpleKey => {
            let span = e.span();
            match keys.last_mut() {
                Some((_, end, parts)) if after_dot => {
                    *end = span.end();
                    *parts += 1;
                }
                _ => keys.push((span.start(), span.end(), 1)),
            }
            after_dot = false;
        }
        EventKind::KeySep => after_dot = true,
        EventKind::Whitespace => {}
        _ => after_dot = false,
    };
    // The same depth guard `toml` parses with: a 100,000-deep array costs no stack here either.
    let mut guarded = RecursionGuard::new(&mut on_event, 80);
    toml_parser::parser::parse_document(&tokens, &mut guarded, &mut ());
    let too_deep: Vec<Range<usize>> = keys
        .iter()
        .filter(|(_, _, parts)| *parts > KEY_PARTS_MAX)
        .map(|&(start, end, _)| start..end)
        .collect();
    if too_deep.is_empty() {
        keys.iter()
            .rev()
            .max_by_key(|(_, _, parts)| *parts)
            .map(|&(start, end, _)| start..end)
            .into_iter()
            .collect()
    } else {
        too_deep
    }
}

/// Reads at most [`MANIFEST_MAX_BYTES`] of the regular file at `path`.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, Error> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    // Checked before opening (opening a FIFO for reading blocks until a writer comes) and again
    // on the opened file, in case the path changed in between; O_NONBLOCK keeps that open from
    // blocking too.
    ensure_regular(path, &std::fs::metadata(path).map_err(read_err)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    ensure_regular(path, &meta)?;
    // Sized to the file (at most the limit, checked above), plus the byte that tells growth:
    // one allocation, not a doubling series.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).map_or(0, |n| n + 1));
    // One byte past the limit tells a file that grew after the size check.
    file.take(MANIFEST_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let size = bytes.len() as u64;
    if size > MANIFEST_MAX_BYTES {
        return Err(too_large(path, size));
    }
    Ok(bytes)
}

fn ensure_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    let t = meta.file_type();
    if t.is_file() {
        return if meta.len() > MANIFEST_MAX_BYTES {
            Err(too_large(path, meta.len()))
        } else {
            Ok(())
        };
    }
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    };
    Err(Error::NotAFile {
        path: path.to_owned(),
        kind,
    })
}

fn too_large(path: &Path, size: u64) -> Error {
    Error::TooLarge {
        path: path.to_owned(),
        size,
        limit: MANIFEST_MAX_BYTES,
    }
}

/// The manifest's text, or where its first invalid UTF-8 byte is.
pub(crate) fn utf8_source(path: &Path, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..offset]).unwrap_or_default();
        let (line, column) = crate::problem::line_column(valid, offset);
        Error::NotUtf8 {
            path: path.to_owned(),
            offset,
            line,
            column,
        }
    })
}

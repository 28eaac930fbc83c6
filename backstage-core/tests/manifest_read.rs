//! `Manifest::read` refuses what is not a plain file, or too large, without blocking, and says
//! where non-UTF-8 input goes wrong.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use backstage_core::{Error, MANIFEST_MAX_BYTES, Manifest};
use proptest::prelude::*;

/// `Manifest::read` in a thread: a read that blocks fails the test instead of hanging it.
fn read_promptly(path: &Path) -> Result<Manifest, Error> {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(Manifest::read(&owned));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("reading `{}` blocked", path.display()))
}

fn assert_not_a_file(result: Result<Manifest, Error>, expected_kind: &str) {
    match result {
        Err(e @ Error::NotAFile { kind, .. }) => {
            assert_eq!(kind, expected_kind);
            assert!(e.to_string().contains("is not a regular file"), "{e}");
        }
        other => panic!("expected NotAFile, got {other:?}"),
    }
}

/// A valid manifest padded with a comment to exactly `size` bytes.
fn manifest_of_size(path: &Path, size: u64) {
    let head = "[production]\nname = \"jazz\"\n#";
    let mut f = fs::File::create(path).unwrap();
    f.write_all(head.as_bytes()).unwrap();
    let pad = usize::try_from(size).unwrap() - head.len() - 1;
    f.write_all(&vec![b'x'; pad]).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    assert_eq!(fs::metadata(path).unwrap().len(), size);
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("backstage.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_not_a_file(read_promptly(&fifo), "a FIFO");
    // Through a symlink too: the link is followed, and what it leads to is refused.
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    assert_not_a_file(read_promptly(&link), "a FIFO");
}

#[test]
fn devices_and_directories_are_refused() {
    assert_not_a_file(read_promptly(Path::new("/dev/zero")), "a character device");
    assert_not_a_file(
        read_promptly(Path::new("/dev/urandom")),
        "a character device",
    );
    let dir = tempfile::tempdir().unwrap();
    assert_not_a_file(read_promptly(dir.path()), "a directory");
}

#[test]
fn a_symlink_to_a_regular_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.toml");
    fs::write(&real, "[production]\nname = \"jazz\"\n").unwrap();
    let link = dir.path().join("backstage.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let m = read_promptly(&link).unwrap();
    assert_eq!(m.source(), "[production]\nname = \"jazz\"\n");
    assert!(m.check().is_empty(), "{:?}", m.check());
}

#[test]
fn the_size_limit_is_refused_before_reading_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    manifest_of_size(&big, MANIFEST_MAX_BYTES + 1);
    let err = read_promptly(&big).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, limit, .. } if size == MANIFEST_MAX_BYTES + 1 && limit == MANIFEST_MAX_BYTES),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&MANIFEST_MAX_BYTES.to_string()),
        "{message}"
    );
    assert!(message.contains("big.toml"), "{message}");
    assert!(message.contains("4 MiB"), "{message}");

    // A sparse file of a gigabyte is refused as quickly: its size is known before a byte is read.
    let sparse = dir.path().join("sparse.toml");
    fs::File::create(&sparse).unwrap().set_len(1 << 30).unwrap();
    assert!(matches!(
        read_promptly(&sparse),
        Err(Error::TooLarge { size, .. }) if size == 1 << 30
    ));
}

#[test]
fn a_manifest_at_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("backstage.toml");
    manifest_of_size(&at, MANIFEST_MAX_BYTES);
    let m = read_promptly(&at).unwrap();
    assert_eq!(m.source().len() as u64, MANIFEST_MAX_BYTES);
    assert!(m.check().is_empty(), "{:?}", m.check());
}

#[test]
fn non_utf8_is_refused_at_its_first_invalid_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backstage.toml");
    // `é` is two bytes: the invalid 0xff is the 10th character of line 2, at byte 23.
    fs::write(&path, b"[production]\nname = \"\xc3\xa9\xffjazz\"\n").unwrap();
    let err = read_promptly(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotUtf8 {
                offset: 23,
                line: 2,
                column: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("is not valid UTF-8: invalid byte at offset 23 (line 2, column 10)"),
        "{err}"
    );
}

fn from_bytes(bytes: &[u8]) -> Result<Manifest, Error> {
    Manifest::from_bytes(
        PathBuf::from("backstage.toml"),
        PathBuf::from("/srv/jazz"),
        bytes.to_vec(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_and_name_the_first_invalid_byte(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        match from_bytes(&bytes) {
            Ok(m) => {
                prop_assert_eq!(m.source().as_bytes(), &bytes[..]);
                let _ = m.check();
            }
            Err(Error::NotUtf8 { offset, line, column, .. }) => {
                let before = std::str::from_utf8(&bytes[..offset]);
                prop_assert!(before.is_ok(), "the bytes before the offset are valid");
                // No UTF-8 character (1 to 4 bytes) starts at the offset.
                for len in 1..=4.min(bytes.len() - offset) {
                    prop_assert!(std::str::from_utf8(&bytes[offset..offset + len]).is_err());
                }
                let before = before.unwrap();
                prop_assert_eq!(line, before.matches('\n').count() + 1);
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                prop_assert_eq!(column, before[line_start..].chars().count() + 1);
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn text_with_one_bad_byte_points_at_it(
        head in "[a-z =\"\\[\\]\né]{0,60}",
        bad in prop_oneof![Just(0xffu8), Just(0xfeu8), Just(0x80u8), Just(0xc3u8)],
        tail in "[a-z =\"\n]{0,20}",
    ) {
        let mut bytes = head.clone().into_bytes();
        bytes.push(bad);
        // 0xc3 starts a two-byte character: followed by ASCII it is invalid all the same.
        bytes.extend_from_slice(b"!");
        bytes.extend_from_slice(tail.as_bytes());
        match from_bytes(&bytes) {
            Err(Error::NotUtf8 { offset, .. }) => prop_assert_eq!(offset, head.len()),
            other => prop_assert!(false, "expected NotUtf8, got {other:?}"),
        }
    }
}

//! `backstage check` as a user runs it: exit codes, human and JSON output, discovery, and the
//! guarantee that it writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

mod support;

use support::{copy_tree, workspace};

fn backstage(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run backstage")
}

/// Copies the example Production into a temp dir so tests can watch it.
fn example_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&workspace().join("examples/jazzclub"), dir.path());
    dir
}

/// Every path below `dir` with its size and mtime.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

#[test]
fn the_example_is_valid() {
    let out = backstage(
        &["check", "-f", "examples/jazzclub/backstage.toml"],
        &workspace(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "examples/jazzclub/backstage.toml: ok\n"
    );
}

#[test]
fn problems_exit_1_with_compiler_style_reports() {
    let dir = example_copy();
    let manifest = dir.path().join("backstage.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace("harakiri = 30", "harikiri = 30")
        .replace("\"www.jazz.localhost\"", "\"www..jazz.localhost\"")
        .replace("sess = [\"club-late\"]", "sess = [\"club-lat\"]");
    std::fs::write(&manifest, text).unwrap();
    let out = backstage(&["check", "-f", "backstage.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(String::from_utf8(out.stderr).unwrap());
}

#[test]
fn json_output_is_one_document() {
    let out = backstage(
        &[
            "check",
            "--json",
            "-f",
            "tests/manifests/invalid/gig-unknown-sess.toml",
        ],
        &workspace(),
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["path"], "gigs.home.sess[1]");
    assert_eq!(errors[0]["line"], 29);
    assert_eq!(errors[0]["column"], 19);
    assert_eq!(errors[0]["message"], "no Sess named `club-c`");
    assert_eq!(errors[0]["hint"], "did you mean `club-a`?");

    let ok = backstage(
        &["check", "--json", "-f", "examples/jazzclub/backstage.toml"],
        &workspace(),
    );
    assert_eq!(ok.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(doc, serde_json::json!({"ok": true, "errors": []}));
}

#[test]
fn finds_the_manifest_in_a_parent_directory() {
    let dir = example_copy();
    let out = backstage(&["check"], &dir.path().join("club/music"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nowhere = tempfile::tempdir().unwrap();
    let out = backstage(&["check"], nowhere.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no `backstage.toml` in"), "{err}");
    assert!(err.contains("hint: name one with `-f FILE`"), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["check", "--bogus"][..],
        &[][..],
        &["frobnicate"][..],
        &["check", "-f"][..],
    ] {
        let out = backstage(args, &workspace());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let help = backstage(&["--help"], &workspace());
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8(help.stdout).unwrap().contains("check"));
}

#[test]
fn check_never_writes_anything() {
    let dir = example_copy();
    let before = tree(dir.path());
    // Valid, invalid, and unreadable: none of them may create or touch a file.
    let ok = backstage(&["check"], dir.path());
    assert_eq!(ok.status.code(), Some(0));
    let manifest = dir.path().join("backstage.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("name = \"jazzclub\"", "name = \"Jazz Club\""),
    )
    .unwrap();
    let before_invalid = tree(dir.path());
    let bad = backstage(&["check", "--json"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(tree(dir.path()), before_invalid);
    std::fs::write(&manifest, text).unwrap();
    let after = tree(dir.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert!(!dir.path().join(".backstage").exists());
}

#[test]
fn unreadable_manifests_are_refused_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8: the JSON document has the line and column of the first invalid byte.
    let bad = dir.path().join("backstage.toml");
    std::fs::write(&bad, b"[production]\nname = \"ja\xffzz\"\n").unwrap();
    let out = backstage(&["check", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = &doc["errors"][0];
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(2), Some(11))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with("is not valid UTF-8: invalid byte at offset 23 (line 2, column 11)"),
        "{error}"
    );
    // A device is refused before a byte is read (it used to grow without bound).
    let out = backstage(&["check", "-f", "/dev/zero"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: `/dev/zero` is not a regular file (it is a character device); a manifest must be a plain file\n"
    );
}

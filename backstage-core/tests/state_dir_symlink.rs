//! A state dir (or a directory under it) that a symlink leads out of the manifest's directory is
//! refused by `check`, and by `journal::ensure_inside` at apply time.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use backstage_core::journal::{self, JournalError};
use backstage_core::{Manifest, Problem};

const MINIMAL: &str = "[production]\nname = \"jazz\"\n";

/// A manifest directory and a directory outside it.
fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
}

fn check(dir: &Path, text: &str) -> Vec<Problem> {
    let path = dir.join("backstage.toml");
    fs::write(&path, text).unwrap();
    Manifest::read(&path).unwrap().check()
}

fn real(p: &Path) -> String {
    fs::canonicalize(p).unwrap().display().to_string()
}

#[test]
fn a_default_state_dir_linked_outside_is_refused() {
    let (inside, outside) = dirs();
    symlink(outside.path(), inside.path().join(".backstage")).unwrap();
    let problems = check(inside.path(), MINIMAL);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(p.path, "production.state_dir");
    // No `state_dir` key: reported at the `[production]` table.
    assert_eq!((p.line, p.column), (1, 1));
    assert!(
        p.message
            .ends_with(&format!("through a symlink, to `{}`", real(outside.path()))),
        "{p:?}"
    );
    assert!(p.message.starts_with("`state_dir` `"), "{p:?}");
}

#[test]
fn an_explicit_relative_state_dir_linked_outside_is_refused_at_its_value() {
    let (inside, outside) = dirs();
    symlink(outside.path(), inside.path().join("state")).unwrap();
    let problems = check(inside.path(), &format!("{MINIMAL}state_dir = \"state\"\n"));
    assert_eq!(
        problems
            .iter()
            .map(|p| (p.path.as_str(), p.line, p.column))
            .collect::<Vec<_>>(),
        [("production.state_dir", 3, 13)]
    );
    // A dangling link is followed as written.
    fs::remove_file(inside.path().join("state")).unwrap();
    symlink(outside.path().join("not-yet"), inside.path().join("state")).unwrap();
    let problems = check(inside.path(), &format!("{MINIMAL}state_dir = \"state\"\n"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .message
            .ends_with(&format!("to `{}/not-yet`", real(outside.path()))),
        "{problems:?}"
    );
}

#[test]
fn a_directory_under_the_state_dir_linked_outside_is_refused() {
    let (inside, outside) = dirs();
    fs::create_dir(inside.path().join(".backstage")).unwrap();
    symlink(outside.path(), inside.path().join(".backstage/vassals")).unwrap();
    let problems = check(inside.path(), MINIMAL);
    assert_eq!(
        problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["production.vassal_dir"],
        "{problems:?}"
    );
    // A link further up (a parent of the state dir) is followed too.
    let (inside2, outside2) = dirs();
    symlink(outside2.path(), inside2.path().join("deploy")).unwrap();
    let problems = check(
        inside2.path(),
        &format!("{MINIMAL}state_dir = \"deploy/state\"\n"),
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "production.state_dir");
}

#[test]
fn links_that_stay_inside_and_deliberate_absolute_paths_are_fine() {
    let (inside, outside) = dirs();
    fs::create_dir(inside.path().join("real-state")).unwrap();
    symlink("real-state", inside.path().join(".backstage")).unwrap();
    assert_eq!(check(inside.path(), MINIMAL), []);
    // An absolute state dir outside is written on purpose.
    let text = format!(
        "{MINIMAL}state_dir = \"{}\"\n",
        outside.path().join("state").display()
    );
    assert_eq!(check(inside.path(), &text), []);
}

#[test]
fn apply_time_recheck_sees_a_link_made_after_check() {
    let (inside, outside) = dirs();
    let path = inside.path().join("backstage.toml");
    fs::write(&path, MINIMAL).unwrap();
    let production = Manifest::read(&path).unwrap().load().unwrap();
    journal::ensure_inside(&production.layout).unwrap();
    // Checked while the state dir did not exist; then someone links it outside.
    symlink(outside.path(), inside.path().join(".backstage")).unwrap();
    let err = journal::ensure_inside(&production.layout).unwrap_err();
    assert!(
        matches!(&err, JournalError::Escapes { key: "state_dir", leads_to, .. } if leads_to == &fs::canonicalize(outside.path()).unwrap()),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
}

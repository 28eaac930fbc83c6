//! The Stage Set for real: a fresh virtualenv, pip, collectstatic.

mod support;

use std::path::PathBuf;

use backstage_core::Manifest;
use backstage_uwsgi::Error;
use backstage_uwsgi::stage_set::{Progress, build_stage, collect_static};
use support::copy_tree;

/// One slow test on purpose: it creates a virtualenv and installs uWSGI and Django into it
/// (pip reuses its wheel cache, so uWSGI is not compiled again after `scripts/test-deps`).
#[test]
fn builds_a_stage_once_and_shows_pips_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/jazzclub/club"),
        &root.join("club"),
    );
    let manifest = root.join("backstage.toml");
    std::fs::write(
        &manifest,
        r#"
[production]
name = "set"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"
settings = "club.settings"
requirements = "club/requirements.txt"
static = { "/static/" = "club/staticfiles" }

[stages.local]
virtualenv = "venv"

[sess.club-a]
act = "club"
stage = "local"
"#,
    )
    .unwrap();
    let production = Manifest::read(&manifest).unwrap().load().unwrap();
    let stage = "local".parse().unwrap();

    let mut seen = Vec::new();
    build_stage(&production, &stage, &mut |p| seen.push(p)).unwrap();
    let club = "club".parse().unwrap();
    collect_static(
        &club,
        &production.acts[&club],
        &root.join("venv/bin/python"),
        &mut |p| seen.push(p),
    )
    .unwrap();
    assert!(root.join("venv/bin/uwsgi").exists());
    assert!(root.join("club/staticfiles/music/style.css").exists());
    let steps: Vec<&String> = seen
        .iter()
        .filter_map(|p| match p {
            Progress::Step(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(steps[0].starts_with("creating virtualenv"), "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s.contains("pip install") && s.contains("uwsgi"))
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains("collectstatic for act `club`"))
    );

    // Nothing changed: no pip this time.
    let mut again = Vec::new();
    build_stage(&production, &stage, &mut |p| again.push(p)).unwrap();
    assert!(
        !again
            .iter()
            .any(|p| matches!(p, Progress::Step(s) if s.contains("pip install"))),
        "{again:?}"
    );
    assert!(
        again
            .iter()
            .any(|p| matches!(p, Progress::Skipped(s) if s.contains("requirements unchanged")))
    );

    // A changed requirements file is installed again, and pip's own error comes through.
    std::fs::write(
        root.join("club/requirements.txt"),
        "backstage-test-no-such-package==0.0.0\n",
    )
    .unwrap();
    match build_stage(&production, &stage, &mut |_| {}) {
        Err(Error::Command { stderr_tail, .. }) => assert!(
            stderr_tail
                .iter()
                .any(|l| l.contains("backstage-test-no-such-package")),
            "{stderr_tail:#?}"
        ),
        other => panic!("expected pip to fail, got {other:?}"),
    }
}

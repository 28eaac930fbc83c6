//! The invalid-manifest corpus: each file in `tests/manifests/invalid/` holds one mistake and
//! names, in its header, the TOML path `check` must report and a part of the message (or hint).

use std::path::{Path, PathBuf};

use backstage_core::Manifest;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests")
}

/// The `# expect:` and `# message:` header lines of a corpus file.
fn expectations(text: &str) -> (String, String) {
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("corpus file lacks a `{key}` line"))
            .trim()
            .to_owned()
    };
    (header("# expect:"), header("# message:"))
}

#[test]
fn the_valid_base_is_valid() {
    let m = Manifest::read(&corpus_dir().join("valid-base.toml")).unwrap();
    assert_eq!(m.check(), vec![]);
}

#[test]
fn every_invalid_manifest_reports_its_one_mistake() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let m = Manifest::read(file).unwrap();
        let (path, message) = expectations(m.source());
        let problems = m.check();
        let ok = problems.len() == 1
            && problems[0].path == path
            && (problems[0].message.contains(&message)
                || problems[0]
                    .hint
                    .as_deref()
                    .is_some_and(|h| h.contains(&message)))
            && problems[0].line >= 1
            && problems[0].column >= 1;
        if !ok {
            failures.push(format!(
                "{}: expected one problem at `{path}` containing `{message}`, got {problems:#?}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn problems_point_at_the_offending_text() {
    let file = corpus_dir().join("invalid/venue-name-empty-label.toml");
    let m = Manifest::read(&file).unwrap();
    let p = &m.check()[0];
    assert_eq!(&m.source()[p.span.clone()], "\"www..jazz.localhost\"");
    let line = m.source().lines().nth(p.line - 1).unwrap();
    assert_eq!(line.chars().nth(p.column - 1), Some('"'));
}

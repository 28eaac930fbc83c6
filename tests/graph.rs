//! `backstage graph`: the DOT text of the example (a snapshot), its SVG drawn by the real
//! Graphviz and parsed as XML with every name in it, a 300-Sess Production, and the message
//! when Graphviz is missing.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

mod support;

use support::{ok, workspace};

fn graph(manifest: &Path, args: &[&str], path_env: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backstage"));
    cmd.arg("graph").arg("-f").arg(manifest).args(args);
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    cmd.output().expect("run backstage graph")
}

/// Every text of an SVG document.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse_with_options(
        svg,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .expect("the SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

#[test]
fn the_example_as_dot() {
    let manifest = workspace().join("examples/jazzclub/backstage.toml");
    let dot = ok(&graph(&manifest, &["--format", "dot"], None));
    insta::assert_snapshot!("jazzclub_dot", dot);
}

#[test]
fn the_example_as_svg_names_everything() {
    let manifest = workspace().join("examples/jazzclub/backstage.toml");
    let texts = svg_texts(&ok(&graph(&manifest, &[], None)));
    for name in [
        "Venue jazz",
        "Venue blues",
        "closed: 503",
        "jazz.localhost",
        "www.jazz.localhost",
        "Gig jazz-home",
        "Gig jazz-late",
        "Sess club-a",
        "Sess club-b",
        "Sess club-late",
        "Stage local",
        "Act club",
        "weight 1 (50%)",
    ] {
        assert!(texts.iter().any(|t| t == name), "no `{name}` in {texts:?}");
    }
}

#[test]
fn three_hundred_sess_draw() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "[production]\nname = \"big\"\n\n[acts.app]\nroot = \"app\"\nwsgi = \"app.wsgi:application\"\n\n[stages.local]\nvirtualenv = \"venv\"\n",
    );
    for v in 0..30 {
        let _ = write!(
            text,
            "\n[venues.v{v}]\nserver_names = [\"v{v}.example.com\"]\n\n[gigs.g{v}]\nvenue = \"v{v}\"\nsess = {{ "
        );
        let sess: Vec<String> = (0..10)
            .map(|s| format!("\"s{v}-{s}\" = {}", s + 1))
            .collect();
        text.push_str(&sess.join(", "));
        text.push_str(" }\n");
        for s in 0..10 {
            let _ = write!(
                text,
                "\n[sess.s{v}-{s}]\nact = \"app\"\nstage = \"local\"\n"
            );
        }
    }
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let manifest = dir.path().join("backstage.toml");
    std::fs::write(&manifest, text).unwrap();
    let texts = svg_texts(&ok(&graph(&manifest, &[], None)));
    let sess = texts.iter().filter(|t| t.starts_with("Sess s")).count();
    assert_eq!(sess, 300);
}

#[test]
fn without_graphviz_says_what_to_install() {
    let manifest = workspace().join("examples/jazzclub/backstage.toml");
    let empty = tempfile::tempdir().unwrap();
    let out = graph(&manifest, &[], empty.path().to_str());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apt-get install graphviz") && err.contains("--format dot"),
        "{err}"
    );
    // DOT needs no Graphviz.
    ok(&graph(
        &manifest,
        &["--format", "dot"],
        empty.path().to_str(),
    ));
}

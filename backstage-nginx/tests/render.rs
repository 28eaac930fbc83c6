//! Snapshots of every rendered output, and render-level proofs that hostile values cannot reach
//! a config.

use std::path::PathBuf;

use backstage_core::{DesiredFile, FileKind, Manifest, Production};
use backstage_nginx::{RenderOptions, WorkerUser, render_with};

fn production(src: &str) -> Production {
    Manifest::from_source(
        PathBuf::from("backstage.toml"),
        PathBuf::from("/srv/jazz"),
        src.to_owned(),
    )
    .load()
    .unwrap_or_else(|e| panic!("{e}: {e:?}"))
}

fn rendered(src: &str) -> Vec<DesiredFile> {
    let options = RenderOptions::with_worker_user(WorkerUser::new("www-data", "www-data"));
    render_with(&production(src), &options).unwrap()
}

fn jazzclub() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/jazzclub/backstage.toml"
    );
    std::fs::read_to_string(path).unwrap()
}

fn snapshot_all(name: &str, files: &[DesiredFile]) {
    for f in files {
        let header = format!(
            "kind: {}\npath: {}\norigin: {}\n---\n",
            f.kind,
            f.path.display(),
            f.origin
        );
        insta::assert_snapshot!(
            format!("{name}__{}", f.name),
            format!("{header}{}", f.content)
        );
    }
}

#[test]
fn jazzclub_user_mode() {
    let files = rendered(&jazzclub());
    let kinds: Vec<(FileKind, &str)> = files.iter().map(|f| (f.kind, f.name.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (FileKind::Site, "blues"),
            (FileKind::Site, "jazz"),
            (FileKind::NginxConf, "nginx")
        ]
    );
    snapshot_all("jazzclub", &files);
}

const SYSTEM: &str = r#"
[production]
name = "shop"
mode = "system"
nginx_dir = "/srv/etc/nginx/sites-available"
nginx_enabled_dir = "/srv/etc/nginx/sites-enabled"

[acts.store]
root = "store"
wsgi = "store.wsgi:application"
static = { "/static/" = "store/static", "/media/" = "store/media" }

[stages.prod]
virtualenv = "/srv/venv"

[sess.blue]
act = "store"
stage = "prod"
socket = "127.0.0.1:9001"
uid = "www-data"
gid = "www-data"

[sess.green]
act = "store"
stage = "prod"
socket = "[::1]:9002"
uid = "www-data"
gid = "www-data"

[venues.shop]
server_names = ["shop.example.com", "*.shop.example.com"]
listen = ["80", "[::]:80"]
tls = { cert = "/etc/ssl/shop.pem", key = "/etc/ssl/shop.key", hsts = true }

[venues.closed]
server_names = ["old.example.com"]
tls = { cert = "/etc/ssl/old.pem", key = "/etc/ssl/old.key" }

[gigs.front]
venue = "shop"
sess = { blue = 3, green = 1 }

[gigs.api]
venue = "shop"
sess = ["green"]
path = "/api/v1"
"#;

#[test]
fn system_mode_with_tls_weights_and_a_closed_venue() {
    let files = rendered(SYSTEM);
    assert!(files.iter().all(|f| f.kind == FileKind::Site));
    assert_eq!(
        files[1].path,
        PathBuf::from("/srv/etc/nginx/sites-available/backstage.shop.shop.conf")
    );
    snapshot_all("system", &files);
}

#[test]
fn only_path_mounts_means_404_at_root() {
    let src = jazzclub().replace(
        "[gigs.jazz-home]\nvenue = \"jazz\"\nsess = [\"club-a\", \"club-b\"]\n",
        "",
    );
    let files = rendered(&src);
    let jazz = files.iter().find(|f| f.name == "jazz").unwrap();
    assert!(
        jazz.content.contains("# no Gig is mounted at /"),
        "{}",
        jazz.content
    );
    assert!(!jazz.content.contains("backstage.jazzclub.jazz-home"));
}

#[test]
fn a_gig_on_a_static_prefix_is_refused_at_render() {
    let src = jazzclub().replace("path = \"/late\"", "path = \"/static\"");
    let err = render_with(&production(&src), &RenderOptions::with_worker_user(None)).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"`gigs.jazz-late` needs `location /static/` on Venue `jazz`, which `acts.club` already uses");
}

/// Hostile values never get as far as a renderer: the types refuse them, so no Production
/// holding them exists. Each line tries one injection where nginx would read it.
#[test]
fn injections_cannot_be_built() {
    let attempts = [
        (
            "server_names = [\"jazz.localhost\", \"www.jazz.localhost\"]",
            "server_names = [\"jazz.localhost; include /etc/passwd\"]",
        ),
        (
            "server_names = [\"jazz.localhost\", \"www.jazz.localhost\"]",
            "server_names = [\"jazz.localhost\\n}\"]",
        ),
        (
            "path = \"/late\"",
            "path = \"/late { return 200 x; } location /x\"",
        ),
        ("path = \"/late\"", "path = \"/$host\""),
        ("path = \"/late\"", "path = \"/late#\""),
        (
            "\"/static/\" = \"club/staticfiles\"",
            "\"/static/\" = \"club/static;files\"",
        ),
        (
            "\"/static/\" = \"club/staticfiles\"",
            "\"/static/\" = \"../../etc\"",
        ),
        (
            "\"/static/\" = \"club/staticfiles\"",
            "\"/st{atic/\" = \"club/staticfiles\"",
        ),
        (
            "listen = [\"127.0.0.1:8080\"]\n\n[venues.blues]",
            "listen = [\"127.0.0.1:8080 ssl; x\"]\n\n[venues.blues]",
        ),
        ("state_dir = \".backstage\"", "state_dir = \".backstage'x\""),
    ];
    for (from, to) in attempts {
        let src = jazzclub().replacen(from, to, 1);
        assert_ne!(src, jazzclub(), "{to} was not applied");
        let problems =
            Manifest::from_source(PathBuf::from("b.toml"), PathBuf::from("/srv/jazz"), src)
                .parse()
                .expect_err(to);
        assert!(!problems.is_empty(), "{to}");
    }
}

/// A space is legal in a path; nginx reads it quoted.
#[test]
fn paths_with_spaces_are_quoted() {
    let src = jazzclub().replace("state_dir = \".backstage\"", "state_dir = \"my state\"");
    let files = rendered(&src);
    let jazz = files.iter().find(|f| f.name == "jazz").unwrap();
    assert!(
        jazz.content.contains(
            "server \"unix:/srv/jazz/my state/run/backstage.jazzclub.club-a.sock\" weight=1;"
        ),
        "{}",
        jazz.content
    );
    let conf = files
        .iter()
        .find(|f| f.kind == FileKind::NginxConf)
        .unwrap();
    assert!(
        conf.content
            .contains("pid \"/srv/jazz/my state/run/nginx/nginx.pid\";"),
        "{}",
        conf.content
    );
}

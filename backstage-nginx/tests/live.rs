//! Requests through real nginx to real uWSGI Sess: a path mount, a static file served by
//! nginx, a closed Venue, a weighted upstream; a broken candidate leaves the live site serving;
//! a reload is confirmed by new workers.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use backstage_core::{Production, SessSocket};
use backstage_nginx::{UserNginx, reload, render, validate};
use common::{body, club_dir, get, load, nginx, place, post, start_nginx, uwsgi};

fn manifest(dir: &Path, port: u16) -> String {
    let club = club_dir();
    format!(
        r#"
[production]
name = "live"
state_dir = "{d}/s"

[acts.club]
root = "{club}"
wsgi = "club.wsgi:application"
settings = "club.settings"
static = {{ "/static/" = "{club}/music/static" }}

[stages.local]
virtualenv = "{d}/venv"

[sess.club-a]
act = "club"
stage = "local"

[sess.club-b]
act = "club"
stage = "local"

[venues.jazz]
server_names = ["jazz.localhost"]
listen = ["127.0.0.1:{port}"]
max_body_size = "4k"

[venues.blues]
server_names = ["blues.localhost"]
listen = ["127.0.0.1:{port}"]

[gigs.home]
venue = "jazz"
sess = {{ club-a = 3, club-b = 1 }}

[gigs.late]
venue = "jazz"
sess = ["club-b"]
path = "/late"
"#,
        d = dir.display(),
        club = club.display(),
    )
}

fn socket_of(production: &Production, sess: &str) -> std::path::PathBuf {
    match &production.sess[sess].socket {
        SessSocket::Unix(p) => p.as_path().to_owned(),
        SessSocket::Tcp(a) => panic!("expected a unix socket, got {a}"),
    }
}

fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json
        .find(&format!("\"{key}\": \""))
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + key.len()
        + 5;
    let end = json[start..].find('"').unwrap() + start;
    &json[start..end]
}

#[test]
fn requests_through_real_nginx_to_real_uwsgi() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let production = load(dir.path(), &manifest(dir.path(), port));
    std::fs::create_dir_all(production.layout.run_dir.as_path()).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _a = uwsgi(
        "club-a",
        &socket_of(&production, "club-a"),
        &logs.join("club-a.log"),
    );
    let _b = uwsgi(
        "club-b",
        &socket_of(&production, "club-b"),
        &logs.join("club-b.log"),
    );

    let files = render(&production).unwrap();
    validate(&production, &files, &nginx()).unwrap();
    place(&production, &files);
    let _nginx = start_nginx(&production, &logs.join("nginx.log"));

    // The root mount (the example's home page reads a database this test has none of).
    let (status, resp) = get(port, "jazz.localhost", "/whoami");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(json_field(body(&resp), "path"), "/whoami", "{resp}");

    // A path mount: Django sees the prefix as SCRIPT_NAME and the full path.
    let (status, resp) = get(port, "jazz.localhost", "/late/whoami");
    assert_eq!(status, 200, "{resp}");
    let json = body(&resp);
    assert_eq!(json_field(json, "script_name"), "/late", "{json}");
    assert_eq!(json_field(json, "path"), "/late/whoami", "{json}");
    assert_eq!(json_field(json, "sess"), "club-b", "{json}");
    let (status, resp) = get(port, "jazz.localhost", "/late?x=1");
    assert_eq!(status, 301, "{resp}");
    assert!(resp.contains("/late/?x=1\r\n"), "{resp}");

    // The Venue's body limit: nginx refuses a larger body itself; a smaller one reaches Django.
    let (status, resp) = post(port, "jazz.localhost", "/late/whoami", Some((4097, b"")));
    assert_eq!(status, 413, "{resp}");
    let (status, resp) = post(
        port,
        "jazz.localhost",
        "/late/whoami",
        Some((4096, &[b'x'; 4096])),
    );
    assert_ne!(status, 413, "{resp}");
    assert!(status < 500, "{resp}");

    // A static file served by nginx itself, with long cache headers; no escape by off-by-slash.
    let (status, resp) = get(port, "jazz.localhost", "/static/music/style.css");
    assert_eq!(status, 200, "{resp}");
    let css = std::fs::read_to_string(club_dir().join("music/static/music/style.css")).unwrap();
    assert_eq!(body(&resp), css);
    assert!(resp.contains("Content-Type: text/css"), "{resp}");
    assert!(resp.contains("Cache-Control: max-age=2592000"), "{resp}");
    let (status, _) = get(port, "jazz.localhost", "/static../club/settings.py");
    assert_ne!(status, 200);
    // Hidden files are denied, under static and through Django alike.
    let (status, _) = get(port, "jazz.localhost", "/.git/config");
    assert_eq!(status, 403);
    let (status, _) = get(port, "jazz.localhost", "/static/.env");
    assert_eq!(status, 403);

    // The closed Venue answers 503 with its small page.
    let (status, resp) = get(port, "blues.localhost", "/anything");
    assert_eq!(status, 503, "{resp}");
    assert!(resp.contains("Content-Type: text/html"), "{resp}");
    assert!(
        body(&resp).contains("blues.localhost has no show booked"),
        "{resp}"
    );

    // The weighted upstream (3:1) spreads requests over both Sess.
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..40 {
        let (status, resp) = get(port, "jazz.localhost", "/whoami");
        assert_eq!(status, 200, "{resp}");
        *seen
            .entry(json_field(body(&resp), "sess").to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen["club-a"] > seen["club-b"], "weights 3:1 gave {seen:?}");

    // A broken candidate is rejected before anything is written; the live site keeps serving.
    let live = UserNginx::of(&production);
    let before = std::fs::read_to_string(&files[1].path).unwrap();
    let mut broken = files.clone();
    broken[1].content = broken[1].content.replace("uwsgi_pass", "uwsgi_pas");
    let err = validate(&production, &broken, &nginx()).unwrap_err();
    assert!(err.to_string().contains("gigs.home"), "{err}");
    assert_eq!(std::fs::read_to_string(&files[1].path).unwrap(), before);
    assert_eq!(get(port, "jazz.localhost", "/whoami").0, 200);

    // A changed, valid configuration goes live through a reload with new workers.
    let src = manifest(dir.path(), port).replace(
        "[gigs.late]\nvenue = \"jazz\"",
        "[gigs.late]\nvenue = \"blues\"",
    );
    let changed = load(dir.path(), &src);
    let files = render(&changed).unwrap();
    validate(&changed, &files, &nginx()).unwrap();
    place(&changed, &files);
    let reloaded = reload(
        &live.pid_file,
        Some(&live.error_log),
        Duration::from_secs(20),
    )
    .unwrap();
    assert!(!reloaded.new_workers.is_empty());
    assert!(reloaded.old_exited, "{reloaded:?}");
    assert!(
        reloaded
            .new_workers
            .iter()
            .all(|p| !reloaded.old_workers.contains(p))
    );
    let (status, resp) = get(port, "blues.localhost", "/late/whoami");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(json_field(body(&resp), "script_name"), "/late");
}

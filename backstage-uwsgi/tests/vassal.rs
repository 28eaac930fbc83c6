//! Vassal rendering: snapshots, and real uWSGI reading the files back.

mod support;

use std::path::PathBuf;
use std::process::Command;

use backstage_core::{Manifest, Production};
use backstage_uwsgi::vassal::{instance, render_vassal, render_vassals};

fn production(text: &str) -> Production {
    let manifest = Manifest::from_source(
        "/srv/jazz/backstage.toml".into(),
        PathBuf::from("/srv/jazz"),
        text.to_owned(),
    );
    manifest.parse().expect("the test manifest is valid")
}

const USER: &str = r#"
[production]
name = "jazzclub"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"
settings = "club.settings"
env = { DJANGO_DEBUG = "0", SALE = "100% off", LITERAL = "$(HOME) @(/etc/shadow) $$(X)" }

[stages.local]
virtualenv = ".backstage/venv"

[sess.club-a]
act = "club"
stage = "local"
processes = 2

[sess.club-tcp]
act = "club"
stage = "local"
processes = 3
threads = 4
socket = "127.0.0.1:9001"
harakiri = 30
max_requests = 1000
buffer_size = 32768
listen = 256
extra = { "harakiri-verbose" = "true", "procname-append" = "at 100%" }
"#;

#[test]
fn user_mode_vassals() {
    let p = production(USER);
    let files = render_vassals(&p).unwrap();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert!(
            f.content
                .starts_with("# backstage: managed by Backstage for production `jazzclub`")
        );
        assert!(!f.content.contains("daemonize"));
        insta::assert_snapshot!(format!("user_{}", f.name), f.content);
    }
    let dir = tempfile::tempdir().unwrap();
    for f in &files {
        let file = dir.path().join(f.path.file_name().unwrap());
        std::fs::write(&file, &f.content).unwrap();
        assert_eq!(uwsgi_get(&support::uwsgi_bin(), &file, "master"), "true");
    }
    // club-a is on the default socket: a copy with an id (the hash of what its vassal says);
    // club-tcp's address is fixed, so it has one copy, reloaded in place.
    let a = instance(&p, &"club-a".parse().unwrap()).unwrap();
    let id = a.id.expect("an id");
    assert_eq!(
        files[0].path,
        PathBuf::from(format!(
            "/srv/jazz/.backstage/vassals/backstage.jazzclub.club-a.{id}.ini"
        ))
    );
    assert!(files[0].content.contains(&format!(
        "socket = /srv/jazz/.backstage/run/backstage.jazzclub.club-a.{id}.sock\n"
    )));
    assert_eq!(
        files[1].path,
        PathBuf::from("/srv/jazz/.backstage/vassals/backstage.jazzclub.club-tcp.ini")
    );
    // The same manifest gives the same id; a changed setting, another one.
    assert_eq!(render_vassals(&production(USER)).unwrap(), files);
    let changed = production(&USER.replacen("processes = 2", "processes = 5", 1));
    let b = instance(&changed, &"club-a".parse().unwrap()).unwrap();
    assert_ne!(b.id.as_ref(), Some(&id));
}

#[test]
fn system_mode_vassal() {
    let text = r#"
[production]
name = "jazzclub"
mode = "system"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"

[stages.local]
virtualenv = "/srv/venv"

[sess.club-a]
act = "club"
stage = "local"
uid = "www-data"
gid = "www-data"
"#;
    let p = production(text);
    let f = render_vassal(&p, &"club-a".parse().unwrap()).unwrap();
    assert!(f.content.contains("chmod-socket = 660\n"));
    let id = instance(&p, &"club-a".parse().unwrap())
        .unwrap()
        .id
        .unwrap();
    assert_eq!(
        f.path,
        PathBuf::from(format!(
            "/etc/uwsgi-emperor/vassals/backstage.jazzclub.club-a.{id}.ini"
        ))
    );
    insta::assert_snapshot!("system_club-a", f.content);
    // Real uWSGI accepts every key under `strict`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("club-a.ini");
    std::fs::write(&file, &f.content).unwrap();
    assert_eq!(uwsgi_get(&support::uwsgi_bin(), &file, "uid"), "www-data");
    assert_eq!(
        uwsgi_get(&support::uwsgi_bin(), &file, "chmod-socket"),
        "660"
    );

    // On a plugin-build Emperor, behind an nginx whose workers are www-data: the plugin comes
    // before every Python option, and the socket goes to the Sess' account and nginx's group.
    let mut p = p;
    p.uwsgi_plugins = Some(vec!["python3".parse().unwrap()]);
    p.nginx_group = Some("www-data".parse().unwrap());
    let f = render_vassal(&p, &"club-a".parse().unwrap()).unwrap();
    let need = f.content.find("need-plugin = python3\n").unwrap();
    let pythonpath = f.content.find("pythonpath = ").unwrap();
    assert!(need < pythonpath, "{}", f.content);
    assert!(f.content.contains("chown-socket = www-data:www-data\n"));
    // A different vassal is a different copy.
    assert_ne!(
        instance(&p, &"club-a".parse().unwrap())
            .unwrap()
            .id
            .unwrap(),
        id
    );
    // Debian's own uWSGI (a plugin build) accepts it under `strict`.
    let debian = std::path::Path::new("/usr/bin/uwsgi");
    if debian.exists() {
        std::fs::write(&file, &f.content).unwrap();
        assert_eq!(
            uwsgi_get(debian, &file, "chown-socket"),
            "www-data:www-data"
        );
    }
}

/// What real `uwsgi --strict --ini FILE --get KEY` reads for `key`.
fn uwsgi_get(uwsgi: &std::path::Path, file: &std::path::Path, key: &str) -> String {
    let out = Command::new(uwsgi)
        .arg("--strict")
        .arg("--ini")
        .arg(file)
        .arg("--get")
        .arg(key)
        .env("HOME", "/home/should-not-appear")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uwsgi --get {key} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn real_uwsgi_reads_back_literal_values() {
    let uwsgi = support::uwsgi_bin();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "SECRET").unwrap();
    let tricky = format!(
        "100% off $(HOME) @({}) $$(X) %d %n (fine) 50%",
        secret.display()
    );
    let text = format!(
        r#"
[production]
name = "jazzclub"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"
env = {{ SALE = "100% off" }}

[stages.local]
virtualenv = ".backstage/venv"

[sess.club-a]
act = "club"
stage = "local"
extra = {{ "procname-append" = '{tricky}', "procname-master" = "100% master" }}
"#
    );
    let p = production(&text);
    let f = render_vassal(&p, &"club-a".parse().unwrap()).unwrap();
    let file = dir.path().join("club-a.ini");
    std::fs::write(&file, &f.content).unwrap();
    assert_eq!(uwsgi_get(&uwsgi, &file, "procname-append"), tricky);
    assert_eq!(uwsgi_get(&uwsgi, &file, "procname-master"), "100% master");
    assert_eq!(uwsgi_get(&uwsgi, &file, "chdir"), "/srv/jazz/club");
    assert_eq!(uwsgi_get(&uwsgi, &file, "module"), "club.wsgi:application");
    assert_eq!(uwsgi_get(&uwsgi, &file, "processes"), "2");
    let id = instance(&p, &"club-a".parse().unwrap())
        .unwrap()
        .id
        .unwrap();
    assert_eq!(
        uwsgi_get(&uwsgi, &file, "stats"),
        format!("/srv/jazz/.backstage/run/backstage.jazzclub.club-a.{id}.stats.sock")
    );
    // `--get env` shows the first `env` line only; the running-app test checks the rest.
    assert_eq!(
        uwsgi_get(&uwsgi, &file, "env"),
        "BACKSTAGE_PRODUCTION=jazzclub"
    );
}

//! Every rendered configuration passes real `nginx -t`; rejections are mapped back to the
//! manifest entry at fault; foreign server names are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use backstage_core::FileKind;
use backstage_nginx::{Error, check_foreign, render, validate};
use common::{club_dir, load, nginx};

fn jazzclub(dir: &Path) -> String {
    let club = club_dir();
    let src = std::fs::read_to_string(club.join("../backstage.toml")).unwrap();
    src.replace("root = \"club\"", &format!("root = \"{}\"", club.display()))
        .replace("requirements = \"club/requirements.txt\"", "")
        .replace(
            "\"/static/\" = \"club/staticfiles\"",
            &format!("\"/static/\" = \"{}/music/static\"", club.display()),
        )
        .replace(
            "state_dir = \".backstage\"",
            &format!("state_dir = \"{}/state\"", dir.display()),
        )
}

/// A self-signed certificate made with the openssl CLI.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=shop.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "openssl could not make a test certificate");
    (cert.display().to_string(), key.display().to_string())
}

/// The server's own main configuration, Debian's shape (an http block including `conf.d` and
/// `sites-enabled`), with every runtime path in `dir`; and an empty `sites-enabled`.
fn server_nginx_conf(dir: &Path) -> PathBuf {
    let etc = dir.join("etc/nginx");
    std::fs::create_dir_all(etc.join("sites-enabled")).unwrap();
    std::fs::create_dir_all(etc.join("conf.d")).unwrap();
    std::fs::create_dir_all(dir.join("var")).unwrap();
    let conf = etc.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {d}/var/nginx.pid;\nerror_log {d}/var/error.log;\nevents {{}}\nhttp {{\n  client_body_temp_path {d}/var/body;\n  proxy_temp_path {d}/var/proxy;\n  fastcgi_temp_path {d}/var/fastcgi;\n  uwsgi_temp_path {d}/var/uwsgi;\n  scgi_temp_path {d}/var/scgi;\n  access_log off;\n  include {e}/conf.d/*.conf;\n  include {e}/sites-enabled/*;\n}}\n",
            d = dir.display(),
            e = etc.display()
        ),
    )
    .unwrap();
    conf
}

fn system(dir: &Path, cert: &str, key: &str) -> String {
    server_nginx_conf(dir);
    format!(
        r#"
[production]
name = "shop"
mode = "system"
state_dir = "{d}/state"
run_dir = "{d}/run"
log_dir = "{d}/log"
vassal_dir = "{d}/vassals"
nginx_dir = "{d}/etc/nginx/sites-available"
nginx_enabled_dir = "{d}/etc/nginx/sites-enabled"
nginx_conf = "{d}/etc/nginx/nginx.conf"

[acts.store]
root = "{club}"
wsgi = "club.wsgi:application"
static = {{ "/static/" = "{club}/music/static" }}

[stages.prod]
virtualenv = "{d}/venv"

[sess.blue]
act = "store"
stage = "prod"
socket = "127.0.0.1:9001"
uid = "root"
gid = "root"

[sess.green]
act = "store"
stage = "prod"
uid = "root"
gid = "root"

[venues.shop]
server_names = ["shop.test", "*.shop.test"]
listen = ["127.0.0.1:8081"]
tls = {{ cert = "{cert}", key = "{key}", listen = ["127.0.0.1:8444"], hsts = true }}

[venues.closed]
server_names = ["old.shop.test"]
listen = ["127.0.0.1:8081"]

[gigs.front]
venue = "shop"
sess = {{ blue = 3, green = 1 }}

[gigs.api]
venue = "shop"
sess = ["green"]
path = "/api/v1"
"#,
        d = dir.display(),
        club = club_dir().display(),
    )
}

#[test]
fn user_mode_renderings_pass_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let production = load(dir.path(), &jazzclub(dir.path()));
    let files = render(&production).unwrap();
    validate(&production, &files, &nginx()).unwrap();

    // The user-mode nginx.conf itself, placed for real, passes too.
    common::place(&production, &files);
    let paths = backstage_nginx::UserNginx::of(&production);
    for d in &paths.dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let out = nginx()
        .command()
        .arg("-t")
        .arg("-p")
        .arg(&paths.prefix)
        .arg("-c")
        .arg(&paths.conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn system_mode_with_tls_passes_nginx_t_beside_foreign_sites() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let production = load(dir.path(), &system(dir.path(), &cert, &key));
    let enabled = dir.path().join("etc/nginx/sites-enabled");
    std::fs::create_dir_all(&enabled).unwrap();
    // A foreign site on other names, including a snippet relative to nginx's conf dir.
    std::fs::create_dir_all(dir.path().join("etc/nginx/snippets")).unwrap();
    std::fs::write(
        dir.path().join("etc/nginx/snippets/extra.conf"),
        "add_header X-Foreign yes;\n",
    )
    .unwrap();
    std::fs::write(
        enabled.join("default"),
        format!("server {{\n listen 127.0.0.1:8081 default_server;\n server_name _ other.test;\n include {}/etc/nginx/snippets/extra.conf;\n return 404;\n}}\n", dir.path().display()),
    )
    .unwrap();
    let files = render(&production).unwrap();
    assert_eq!(files.len(), 2);
    validate(&production, &files, &nginx()).unwrap();
}

#[test]
fn a_missing_certificate_is_mapped_to_its_venue() {
    let dir = tempfile::tempdir().unwrap();
    let src = system(dir.path(), "/nonexistent/cert.pem", "/nonexistent/key.pem");
    let production = load(dir.path(), &src);
    let files = render(&production).unwrap();
    let err = validate(&production, &files, &nginx()).unwrap_err();
    let Error::Rejected {
        origin,
        file,
        line,
        message,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(origin, "venues.shop", "{err}");
    assert!(
        file.as_ref()
            .unwrap()
            .ends_with("sites-available/backstage.shop.shop.conf")
    );
    assert!(line.is_some());
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
}

#[test]
fn a_broken_line_in_a_gig_block_is_mapped_to_the_gig() {
    let dir = tempfile::tempdir().unwrap();
    let production = load(dir.path(), &jazzclub(dir.path()));
    let mut files = render(&production).unwrap();
    let jazz = files.iter_mut().find(|f| f.name == "jazz").unwrap();
    jazz.content = jazz.content.replace(
        "uwsgi_param SCRIPT_NAME /late;",
        "uwsgi_param SCRIPT_NAME /late;\n        no_such_directive on;",
    );
    let err = validate(&production, &files, &nginx()).unwrap_err();
    insta::assert_snapshot!(
        err.to_string().replace(&dir.path().display().to_string(), "TMP"),
        @"nginx rejects the configuration of `gigs.jazz-late` (`TMP/state/nginx/sites/backstage.jazzclub.jazz.conf` line 113): unknown directive \"no_such_directive\""
    );
    // Nothing live was written.
    assert!(!files.iter().any(|f| f.path.exists()));
}

#[test]
fn a_name_served_by_a_foreign_site_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let production = load(dir.path(), &system(dir.path(), &cert, &key));
    let enabled = dir.path().join("etc/nginx/sites-enabled");
    std::fs::create_dir_all(&enabled).unwrap();
    let legacy = enabled.join("legacy-shop");
    std::fs::write(&legacy, "server {\n  listen 80;\n  # server_name shop.test;\n  server_name \"www.other.test\" .shop.test;\n}\n").unwrap();
    let err = check_foreign(&production).unwrap_err();
    let Error::NameTaken { name, venue, file } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((name.as_str(), venue.as_str()), ("shop.test", "shop"));
    assert_eq!(file, &legacy);
    // validate refuses it too, before running nginx.
    let files = render(&production).unwrap();
    assert!(matches!(
        validate(&production, &files, &nginx()),
        Err(Error::NameTaken { .. })
    ));
    // Our own enabled links are not foreign.
    std::fs::remove_file(&legacy).unwrap();
    for f in files.iter().filter(|f| f.kind == FileKind::Site) {
        common::place(&production, std::slice::from_ref(f));
        let link = backstage_nginx::enabled_link(&production, &f.path).unwrap();
        assert!(backstage_nginx::enable_site(&production, &f.path, &link).unwrap());
        assert!(!backstage_nginx::enable_site(&production, &f.path, &link).unwrap());
    }
    check_foreign(&production).unwrap();
    validate(&production, &files, &nginx()).unwrap();
}

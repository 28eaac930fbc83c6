//! `backstage sess start|stop|reload NAME` against a real uWSGI Emperor.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use backstage_core::Manifest;
use backstage_uwsgi::emperor::Emperor;

fn test_venv() -> PathBuf {
    let venv = std::env::var_os("BACKSTAGE_TEST_VENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
        PathBuf::from,
    );
    assert!(
        venv.join("bin/uwsgi").exists(),
        "no uWSGI in `{}`: run `scripts/test-deps` (or set BACKSTAGE_TEST_VENV)",
        venv.display()
    );
    venv
}

fn backstage(manifest: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(args)
        .arg("-f")
        .arg(manifest)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Guard(Emperor);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.stop(Duration::from_secs(30));
    }
}

#[test]
fn sess_start_reload_stop() {
    let venv = test_venv();
    let dir = tempfile::Builder::new()
        .prefix("bs")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/hello.py"),
        "def application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n",
    )
    .unwrap();
    let manifest = dir.path().join("backstage.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[production]
name = "cli"
state_dir = "s"

[acts.hello]
root = "app"
wsgi = "hello:application"

[stages.local]
virtualenv = "{}"

[sess.hello-a]
act = "hello"
stage = "local"
processes = 1
"#,
            venv.display()
        ),
    )
    .unwrap();
    let production = Manifest::read(&manifest).unwrap().load().unwrap();
    let vassal = backstage_uwsgi::vassal::instance(&production, &"hello-a".parse().unwrap())
        .unwrap()
        .vassal;

    // An unknown name fails and names the closest Sess.
    let out = backstage(&manifest, &["sess", "start", "hello-b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did you mean `hello-a`?"),
        "{}",
        text(&out.stderr)
    );

    // Without an Emperor, start only places the vassal and says so.
    let out = backstage(&manifest, &["sess", "start", "hello-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("the Emperor is not running"));
    assert!(vassal.as_path().exists());

    let mut guard = Guard(Emperor::for_production(&production).unwrap());
    guard.0.start().unwrap();
    let out = backstage(&manifest, &["sess", "start", "hello-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("already in place"), "{stdout}");
    assert!(stdout.contains("hello-a: running, 1 worker"), "{stdout}");

    let out = backstage(&manifest, &["sess", "reload", "hello-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hello-a: running"),
        "{}",
        text(&out.stdout)
    );

    let out = backstage(&manifest, &["sess", "stop", "hello-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello-a: stopped"));
    assert!(!vassal.as_path().exists());
    let socket = production
        .layout
        .run_dir
        .as_path()
        .join("backstage.cli.hello-a.sock");
    assert!(
        fs::symlink_metadata(&socket).is_err(),
        "the socket link is left"
    );
    let left: Vec<_> = fs::read_dir(production.layout.run_dir.as_path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("backstage.cli.hello-a"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

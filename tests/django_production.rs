//! Django in production behind Backstage, against the real example, real uWSGI and real nginx:
//! secrets (an `env_file` and `backstage env`) reach the app and appear in no file Backstage
//! wrote but the 0600 store and the private envdirs, nor in any output; manifest values with
//! `%` and `$(` arrive literally; a 6 KB cookie gets a 200; a stuck request ends in nginx's 504
//! and harakiri frees the worker; uploads are served from the shared dir and survive a deploy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

mod support;

use support::{Club, ok, walk};

const STORE_SECRET: &str = "st0re-Secret-%(x)-$(HOME)-100%";
const FILE_SECRET: &str = "f1le-Secret-quoted value";

fn http(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn env_of(port: u16, name: &str) -> serde_json::Value {
    let (status, text) = http(
        port,
        &format!("GET /env?name={name} HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n"),
    );
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str::<serde_json::Value>(body).unwrap()["value"].clone()
}

/// Every file under `dir` whose bytes contain `needle` (links not followed).
fn files_with(dir: &Path, needle: &str) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .filter(|p| {
            std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// stdout and stderr of a successful run: every line a user sees.
fn both(out: &std::process::Output) -> String {
    ok(out) + &String::from_utf8_lossy(&out.stderr)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn secrets_defaults_and_media_in_the_real_example() {
    let club = Club::new();
    let (dir, port) = (club.dir.clone(), club.port);
    // An env_file outside the Act's root, and a literal manifest value full of uWSGI syntax.
    let env_file = dir.join("club.env");
    std::fs::write(&env_file, format!("JAZZ_FROM_FILE=\"{FILE_SECRET}\"\n")).unwrap();
    let text = club
        .text
        .replace(
            "keep_releases = 5",
            "keep_releases = 5\nenv_file = \"club.env\"",
        )
        .replace(
            "env = { DJANGO_DEBUG = \"0\"",
            "env = { JAZZ_LITERAL = \"%x 100% $(HOME) @(x)\", DJANGO_DEBUG = \"0\"",
        )
        .replace("harakiri = 30", "harakiri = 3");
    club.write_manifest(&text);
    ok(&club.run(&[
        "env",
        "club",
        "set",
        &format!("DJANGO_SECRET_KEY={STORE_SECRET}"),
    ]));
    let listed = ok(&club.run(&["env", "club", "list"]));
    assert!(
        listed.contains("DJANGO_SECRET_KEY  <secret>  (store)"),
        "{listed}"
    );
    assert!(
        listed.contains("JAZZ_FROM_FILE     <secret>  (env_file)"),
        "{listed}"
    );

    let mut outputs = vec![
        both(&club.run(&["plan"])),
        both(&club.run(&["plan", "--json"])),
    ];
    outputs.push(both(&club.run(&["up"])));

    // The values reach the app literally.
    assert_eq!(env_of(port, "DJANGO_SECRET_KEY"), STORE_SECRET);
    assert_eq!(env_of(port, "JAZZ_FROM_FILE"), FILE_SECRET);
    assert_eq!(env_of(port, "JAZZ_LITERAL"), "%x 100% $(HOME) @(x)");
    let media_root = env_of(port, "BACKSTAGE_MEDIA_ROOT");
    assert_eq!(
        media_root,
        dir.join(".backstage/shared/club/media")
            .display()
            .to_string()
    );

    // `backstage run` gets them too (as the release phase does: the same environment).
    let out = ok(&club.run(&[
        "run",
        "club",
        "--",
        "python",
        "-c",
        "import os, sys; sys.stdout.write(os.environ['DJANGO_SECRET_KEY'])",
    ]));
    assert_eq!(out, STORE_SECRET);

    outputs.push(both(&club.run(&["status"])));
    outputs.push(both(&club.run(&["status", "--json"])));
    outputs.push(both(&club.run(&["plan", "--json"])));
    let render = dir.join("rendered");
    outputs.push(both(&club.run(&[
        "render",
        "--out",
        render.to_str().unwrap(),
    ])));
    outputs.push(both(&club.run(&["env", "club", "list", "--json"])));
    for secret in [STORE_SECRET, FILE_SECRET] {
        for o in &outputs {
            assert!(!o.contains(secret), "a secret in an output: {o}");
        }
        let state = dir.join(".backstage");
        let mut found = files_with(&state, secret);
        found.extend(files_with(&render, secret));
        for f in &found {
            let f = Path::new(f);
            let private = f == state.join("secrets/club.env")
                || f.parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n.to_string_lossy().ends_with(".env"))
                    && f.starts_with(state.join("secrets"));
            assert!(private, "secret in `{}`", f.display());
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        assert!(!found.is_empty());
    }
    assert_eq!(mode(&dir.join(".backstage/secrets/club.env")), 0o600);
    for v in support::vassals(&dir, "club-a") {
        assert_eq!(mode(&v), 0o600, "{}", v.display());
        let text = std::fs::read_to_string(&v).unwrap();
        assert!(text.contains("envdir = "), "{text}");
    }
    assert_eq!(mode(&dir.join(".backstage/applied.json")), 0o600);

    // A 6 KB cookie (a vars block over uWSGI's old 4 KiB buffer) is answered.
    let cookie = "x".repeat(6144);
    let (status, text) = http(
        port,
        &format!("GET /whoami HTTP/1.0\r\nHost: jazz.localhost\r\nCookie: big={cookie}\r\n\r\n"),
    );
    assert_eq!(status, 200, "{}", &text[..text.len().min(300)]);

    // Uploads: served by nginx from the shared dir, hidden files denied, never run.
    let media = dir.join(".backstage/shared/club/media");
    std::fs::create_dir_all(media.join("flyers")).unwrap();
    std::fs::write(media.join("flyers/gig.html"), "<script>x</script>").unwrap();
    std::fs::write(media.join(".hidden"), "no").unwrap();
    let (status, text) = http(
        port,
        "GET /media/flyers/gig.html HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n",
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Content-Security-Policy: sandbox"), "{text}");
    assert!(text.contains("X-Content-Type-Options: nosniff"), "{text}");
    let (status, _) = http(
        port,
        "GET /media/.hidden HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n",
    );
    assert_eq!(status, 403);

    // A stuck request on a Sess with harakiri = 3: nginx answers 504 after 2 s, and uWSGI then
    // frees the worker, which serves again.
    let t0 = Instant::now();
    let (status, text) = http(
        port,
        "GET /late/stuck?s=20 HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n",
    );
    assert_eq!(status, 504, "{text}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let log = std::fs::read_to_string(dir.join(".backstage/log/backstage.jazzclub.club-late.log"))
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = http(
            port,
            "GET /late/whoami HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n",
        );
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the late Sess never answered again: {log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A new release keeps the uploads.
    std::fs::write(dir.join("club/music/__init__.py"), "# v2\n").unwrap();
    ok(&club.run(&["deploy"]));
    let (status, text) = http(
        port,
        "GET /media/flyers/gig.html HTTP/1.0\r\nHost: jazz.localhost\r\n\r\n",
    );
    assert_eq!(status, 200, "{text}");
    // A changed secret is a changed Sess: the next apply gives it to the app.
    ok(&club.run(&["env", "club", "set", "DJANGO_SECRET_KEY=rotated"]));
    ok(&club.run(&["apply"]));
    assert_eq!(env_of(port, "DJANGO_SECRET_KEY"), "rotated");
    // The envdirs of the old value are gone with its copies.
    let state = dir.join(".backstage");
    assert_eq!(files_with(&state, STORE_SECRET), Vec::<String>::new());
}

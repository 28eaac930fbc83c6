//! `backstage request` (the built binary) against a real uWSGI.
#[path = "../backstage-uwsgi/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

use support::Uwsgi;

fn backstage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backstage"))
        .arg("request")
        .args(args)
        .output()
        .unwrap()
}

fn target(t: &backstage_uwsgi::Target) -> String {
    t.to_string()
}

#[test]
fn get_prints_the_body_only() {
    let uwsgi = Uwsgi::start();
    let out = backstage(&[
        &target(&uwsgi.unix),
        "/environ?q=jazz",
        "-H",
        "X-Trace-Id: abc",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["QUERY_STRING"], "q=jazz");
    assert_eq!(env["HTTP_X_TRACE_ID"], "abc");
    assert_eq!(env["REQUEST_METHOD"], "GET");
}

#[test]
fn binary_file_body_round_trips_byte_for_byte_over_tcp() {
    let uwsgi = Uwsgi::start();
    let body: Vec<u8> = (0..200 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    let file = uwsgi.dir.path().join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let out = backstage(&[
        &target(&uwsgi.tcp),
        "/echo",
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == body, "stdout differs from the file sent");
}

#[test]
fn data_is_posted_as_a_form() {
    let uwsgi = Uwsgi::start();
    let out = backstage(&[&target(&uwsgi.unix), "/environ", "-d", "a=1&b=2"]);
    assert_eq!(out.status.code(), Some(0));
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["REQUEST_METHOD"], "POST");
    assert_eq!(env["CONTENT_LENGTH"], "7");
    assert_eq!(env["CONTENT_TYPE"], "application/x-www-form-urlencoded");
}

#[test]
fn include_shows_status_and_headers_and_a_404_is_not_a_failure() {
    let uwsgi = Uwsgi::start();
    let out = backstage(&[&target(&uwsgi.unix), "/missing", "-i"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot found: /missing"
    );
}

#[test]
fn binary_response_goes_to_stdout_unchanged() {
    let uwsgi = Uwsgi::start();
    let out = backstage(&[&target(&uwsgi.unix), "/binary", "-X", "GET"]);
    assert_eq!(out.status.code(), Some(0));
    let expected: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    assert_eq!(out.stdout, expected);
}

#[test]
fn an_unreachable_target_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("gone.sock");
    let out = backstage(&[sock.to_str().unwrap(), "/"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot connect to `{}`", sock.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["no_slash_no_port", "/"][..],
        &["/tmp/x.sock", "/", "-H", "no colon"],
        &["/tmp/x.sock", "/", "-d", "a", "--data-binary", "b"],
        &["/tmp/x.sock"],
        &["/tmp/x.sock", "/", "--timeout", "0"],
    ] {
        let out = backstage(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn a_sess_name_resolves_through_the_manifest() {
    let uwsgi = Uwsgi::start();
    let backstage_uwsgi::Target::Unix(socket) = &uwsgi.unix else {
        panic!("a unix target")
    };
    let manifest = uwsgi.dir.path().join("backstage.toml");
    std::fs::write(
        &manifest,
        format!(
            "[production]\nname = \"req\"\n\n[acts.app]\nroot = \".\"\nwsgi = \"app:application\"\n\n\
             [stages.local]\nvirtualenv = \"venv\"\n\n[sess.app-a]\nact = \"app\"\nstage = \"local\"\n\
             socket = \"unix:{}\"\n\n[venues.v]\nserver_names = [\"req.localhost\"]\n\n\
             [gigs.g]\nvenue = \"v\"\nsess = [\"app-a\"]\n",
            socket.display()
        ),
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let out = backstage(&["-f", m, "app-a", "/environ"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The Host of the Sess' Venue is sent, so Django's ALLOWED_HOSTS accept the request.
    assert_eq!(env["HTTP_HOST"], "req.localhost");

    let out = backstage(&["-f", m, "app-b", "/"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Sess `app-b` in production `req` (its Sess: app-a)"),
        "{err}"
    );
}

/// A peer written here, on a unix socket: each connection's request is read, then `reply`
/// writes what it likes.
fn malicious_peer(
    dir: &tempfile::TempDir,
    reply: fn(&mut std::os::unix::net::UnixStream),
) -> String {
    use std::io::Read;
    let path = dir.path().join("peer.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                conn.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                    .unwrap();
                let _ = conn.read(&mut buf);
                reply(&mut conn);
            });
        }
    });
    path.display().to_string()
}

/// Runs `backstage request` and returns its output and how long it took.
fn timed(args: &[&str]) -> (Output, std::time::Duration) {
    let started = std::time::Instant::now();
    let out = backstage(args);
    (out, started.elapsed())
}

/// How much past `--timeout` the command may take before it counts as a hang.
const SLACK: std::time::Duration = std::time::Duration::from_secs(5);

#[test]
fn a_head_sent_a_byte_a_second_ends_at_the_timeout() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let target = malicious_peer(&dir, |conn| {
        for &b in b"HTTP/1.1 200 OK\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if conn.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    let (out, took) = timed(&[&target, "/", "--timeout", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("within its deadline"), "{err}");
    assert!(took < std::time::Duration::from_secs(3) + SLACK, "{took:?}");
}

#[test]
fn an_endless_body_ends_at_the_timeout_with_what_came() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let target = malicious_peer(&dir, |conn| {
        if conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").is_err() {
            return;
        }
        while conn.write_all(b"la ").is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let (out, took) = timed(&[&target, "/", "--timeout", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("within its deadline"), "{err}");
    assert!(out.stdout.starts_with(b"la la "), "what came is printed");
    assert!(took < std::time::Duration::from_secs(2) + SLACK, "{took:?}");
}

#[test]
fn a_body_ends_at_its_content_length_though_the_peer_keeps_the_connection() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let target = malicious_peer(&dir, |conn| {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nswing",
        );
        std::thread::sleep(std::time::Duration::from_secs(120));
    });
    let (out, took) = timed(&[&target, "/", "--timeout", "60"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(out.stdout, b"swing");
    assert!(took < SLACK, "waited for the connection to end: {took:?}");
}

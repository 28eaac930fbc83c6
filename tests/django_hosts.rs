//! Django behind Backstage as a browser meets it on a non-default port: the Host Django sees
//! carries the port, each Sess knows its Venues' names and origins, and a CSRF-protected POST
//! from the site's own origin passes while one from another origin is refused; a Host no Venue
//! serves gets no answer; text is compressed. Real nginx, real uWSGI, the real example Django
//! project.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

mod support;

use support::{Club, backstage, ok};

/// One HTTP/1.0 exchange: (status, head, body).
fn exchange(port: u16, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn post_note(port: u16, token: &str, origin: &str) -> (u16, String) {
    let body = "text=hello";
    let request = format!(
        "POST /note HTTP/1.0\r\nHost: jazz.localhost:{port}\r\nOrigin: {origin}\r\nCookie: csrftoken={token}\r\nX-CSRFToken: {token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = exchange(port, &request);
    (status, body)
}

#[test]
fn csrf_passes_from_the_sites_own_origin_on_a_non_default_port() {
    let club = Club::new();
    let (dir, port) = (club.dir.clone(), club.port);
    ok(&backstage(&dir, &["up"]));

    // Django sees the port the browser sent.
    let (status, _, body) = exchange(
        port,
        &format!("GET /whoami HTTP/1.0\r\nHost: jazz.localhost:{port}\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    let who: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(who["host"], format!("jazz.localhost:{port}"));

    // Each Sess is told its Venues' names and the origins a browser sends.
    let vassal = support::vassals(&dir, "club-a")
        .pop()
        .expect("club-a's vassal");
    let text = std::fs::read_to_string(vassal).unwrap();
    assert!(
        text.contains("env = BACKSTAGE_ALLOWED_HOSTS=jazz.localhost,www.jazz.localhost\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "env = BACKSTAGE_CSRF_TRUSTED_ORIGINS=http://jazz.localhost:{port},http://www.jazz.localhost:{port}\n"
        )),
        "{text}"
    );

    // A form as a browser posts it: token from GET, then POST with the cookie and the Origin.
    let (status, head, body) = exchange(
        port,
        &format!("GET /note HTTP/1.0\r\nHost: jazz.localhost:{port}\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("set-cookie: csrftoken="),
        "{head}"
    );
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["csrf_token"].as_str().unwrap().to_owned();
    let (status, body) = post_note(port, &token, &format!("http://jazz.localhost:{port}"));
    assert_eq!(status, 200, "the site's own origin: {body}");
    assert!(body.contains("\"noted\": \"hello\""), "{body}");
    // CSRF still protects: another origin, or no token, is refused.
    let (status, _) = post_note(port, &token, &format!("http://evil.localhost:{port}"));
    assert_eq!(status, 403, "another origin");
    let (status, _) = post_note(port, "0", &format!("http://jazz.localhost:{port}"));
    assert_eq!(status, 403, "a wrong token");

    // A Host no Venue serves gets no answer at all (nginx's 444), not the first Venue's page.
    let (status, head, _) = exchange(port, "GET / HTTP/1.0\r\nHost: unknown.example\r\n\r\n");
    assert_eq!((status, head.as_str()), (0, ""), "an unknown Host");
    // The closed Venue still answers its own names.
    let (status, _, _) = exchange(port, "GET / HTTP/1.0\r\nHost: blues.localhost\r\n\r\n");
    assert_eq!(status, 503);

    // Text is compressed for a client that accepts it.
    let (status, head, _) = exchange(
        port,
        &format!(
            "GET / HTTP/1.1\r\nHost: jazz.localhost:{port}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    ok(&backstage(&dir, &["down"]));
}

//! Malicious and overloaded peers, written here: every exchange ends by its deadline.
//!
//! The elapsed times are checked only loosely (deadline + 5 s), as a guard against a hang,
//! not as a performance figure.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use backstage_uwsgi::{Client, Error, Request, Target, stats};

/// How much past its deadline a call may return before it counts as a hang.
const SLACK: Duration = Duration::from_secs(5);

fn socket(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// A peer that accepts every connection and hands it to `serve` on its own thread.
fn peer(path: &Path, serve: fn(std::os::unix::net::UnixStream)) {
    let listener = UnixListener::bind(path).unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            thread::spawn(move || serve(conn));
        }
    });
}

/// Reads what the client sends first (the request), so the reply is not a reset.
fn read_request(conn: &mut std::os::unix::net::UnixStream) {
    let mut buf = [0u8; 4096];
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = conn.read(&mut buf);
}

/// One byte of an endless response head every 200 ms (a header that never ends).
fn dribble_head(mut conn: std::os::unix::net::UnixStream) {
    read_request(&mut conn);
    let head = b"HTTP/1.1 200 OK\r\nX-Slow: ";
    for &b in head.iter().chain(std::iter::repeat(&b'a')) {
        if conn.write_all(&[b]).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A head, then a body that never ends (no `Content-Length`), a few bytes at a time.
fn endless_body(mut conn: std::os::unix::net::UnixStream) {
    read_request(&mut conn);
    if conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").is_err() {
        return;
    }
    while conn.write_all(b"more ").is_ok() {
        thread::sleep(Duration::from_millis(50));
    }
}

/// A whole response with its `Content-Length`, then the connection held open.
fn full_then_open(mut conn: std::os::unix::net::UnixStream) {
    read_request(&mut conn);
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello jazz!");
    thread::sleep(Duration::from_secs(120));
}

/// A stats socket that sends its document one byte every 200 ms.
fn dribble_stats(mut conn: std::os::unix::net::UnixStream) {
    for &b in b"{\"workers\":[".iter().chain(std::iter::repeat(&b' ')) {
        if conn.write_all(&[b]).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A stats socket that accepts and says nothing.
fn silent(conn: std::os::unix::net::UnixStream) {
    thread::sleep(Duration::from_secs(120));
    drop(conn);
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "dribble.sock");
    peer(&path, dribble_head);
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    // Each byte arrives well within the read timeout: only the deadline can end this.
    let err = Client::new(Target::Unix(path))
        .read_timeout(Duration::from_secs(30))
        .deadline(deadline)
        .send(Request::get("/"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(
        started.elapsed() < deadline + SLACK,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_endless_body_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "endless.sock");
    peer(&path, endless_body);
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let response = Client::new(Target::Unix(path))
        .deadline(deadline)
        .send(Request::get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let err = response.bytes().await.unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
    assert!(
        started.elapsed() < deadline + SLACK,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_ends_at_its_content_length_on_a_connection_kept_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "open.sock");
    peer(&path, full_then_open);
    let started = Instant::now();
    // Neither the read timeout nor the deadline may be what ends it.
    let response = Client::new(Target::Unix(path))
        .read_timeout(Duration::from_secs(60))
        .deadline(Duration::from_secs(60))
        .send(Request::get("/"))
        .await
        .unwrap();
    assert_eq!(response.head().content_length(), Some(11));
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..], b"hello jazz!");
    assert!(started.elapsed() < SLACK, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_stats_socket_sending_a_byte_at_a_time_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "stats.sock");
    peer(&path, dribble_stats);
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = stats::read(&Target::Unix(path.clone()), timeout)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
    assert!(
        started.elapsed() < timeout + SLACK,
        "{:?}",
        started.elapsed()
    );

    // The blocking reader (status, health checks, drains) too, from a plain thread.
    let started = Instant::now();
    let err = thread::spawn(move || stats::read_unix_blocking(&path, timeout))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err:?}");
    assert!(
        started.elapsed() < timeout + SLACK,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_stats_socket_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "silent.sock");
    peer(&path, silent);
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = stats::read_unix_blocking(&path, timeout).unwrap_err();
    assert!(
        matches!(err, Error::Deadline { .. } | Error::ReadTimeout { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < timeout + SLACK,
        "{:?}",
        started.elapsed()
    );
}

/// A listener with the smallest backlog, and connections filling it until the kernel refuses
/// more (`EAGAIN`); nothing accepts them.
async fn full_listener(path: &Path) -> (tokio::net::UnixListener, Vec<tokio::net::UnixStream>) {
    let socket = tokio::net::UnixSocket::new_stream().unwrap();
    socket.bind(path).unwrap();
    let listener = socket.listen(1).unwrap();
    let mut queued = Vec::new();
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Ok(conn) => queued.push(conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the listen queue: {e}"),
        }
        assert!(queued.len() < 64, "the listen queue never filled");
    }
    (listener, queued)
}

#[tokio::test]
async fn a_full_listen_queue_is_tried_until_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "busy.sock");
    let (_listener, _queued) = full_listener(&path).await;
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = Client::new(Target::Unix(path))
        .connect_timeout(timeout)
        .send(Request::get("/"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ListenQueueFull { .. }), "{err:?}");
    // Tried again until the timeout, not failed at the first EAGAIN.
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout / 2, "gave up at once: {elapsed:?}");
    assert!(elapsed < timeout + SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn a_listen_queue_that_drains_lets_the_request_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "drains.sock");
    let (listener, queued) = full_listener(&path).await;
    // The server catches up after half a second and answers everyone.
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tokio::time::sleep(Duration::from_millis(500)).await;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    let response = Client::new(Target::Unix(path))
        .connect_timeout(Duration::from_secs(10))
        .send(Request::get("/"))
        .await
        .unwrap();
    assert_eq!(&response.bytes().await.unwrap()[..], b"ok");
    drop(queued);
}

/// Declares 100 body bytes, sends 4 and hangs up.
fn short_body(mut conn: std::os::unix::net::UnixStream) {
    read_request(&mut conn);
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\njazz");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "short.sock");
    peer(&path, short_body);
    let response = Client::new(Target::Unix(path))
        .send(Request::get("/"))
        .await
        .unwrap();
    let err = response.bytes().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BodyTruncated {
                received: 4,
                declared: 100,
                ..
            }
        ),
        "{err:?}"
    );
    // A HEAD response has no body, whatever its Content-Length says.
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir, "head.sock");
    peer(&path, full_then_open);
    let response = Client::new(Target::Unix(path))
        .send(Request::new("HEAD", "/"))
        .await
        .unwrap();
    assert_eq!(&response.bytes().await.unwrap()[..], b"");
}

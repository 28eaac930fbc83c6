//! The client, ping, stats and control against a real uWSGI 2.0 (from `scripts/test-deps`).
mod support;

use std::time::Duration;

use backstage_uwsgi::{
    BufferSize, Client, Error, Frame, Modifier1, Modifier2, PacketCodec, Request, Target,
    control::{self, FifoCommand, Pid},
    stats,
};
use futures_util::{SinkExt, StreamExt};
use support::{Options, Uwsgi};
use tokio_util::codec::Framed;

fn environ(body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn get_with_query_and_headers_over_unix_and_tcp() {
    let uwsgi = Uwsgi::start();
    for target in [&uwsgi.unix, &uwsgi.tcp] {
        let response = Client::new(target.clone())
            .send(
                Request::get("/environ?a=1&b=x%20y")
                    .header("X-Trace-Id", "abc")
                    .header("Accept", "application/json")
                    .header("Cookie", "k=v"),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.head().header("content-type"),
            Some(&b"application/json"[..])
        );
        let env = environ(&response.bytes().await.unwrap());
        assert_eq!(env["REQUEST_METHOD"], "GET");
        assert_eq!(env["PATH_INFO"], "/environ");
        assert_eq!(env["QUERY_STRING"], "a=1&b=x%20y");
        assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
        assert_eq!(env["HTTP_X_TRACE_ID"], "abc");
        assert_eq!(env["HTTP_ACCEPT"], "application/json");
        assert_eq!(env["HTTP_COOKIE"], "k=v");
        assert!(!env.contains_key("CONTENT_LENGTH"));
    }
}

/// Bytes that are not text: every byte value, in a pattern that does not repeat quickly.
fn binary_body(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test]
async fn post_of_a_200_kb_binary_body_is_echoed_byte_for_byte() {
    let uwsgi = Uwsgi::start();
    let body = binary_body(200 * 1024);
    let client = Client::new(uwsgi.tcp.clone());
    // Once streamed, once from memory.
    for request in [
        Request::new("POST", "/echo")
            .body_stream(std::io::Cursor::new(body.clone()), body.len() as u64),
        Request::new("POST", "/echo").body(body.clone()),
    ] {
        let response = client
            .send(request.header("Content-Type", "application/octet-stream"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.head().header("x-body-length"),
            Some(body.len().to_string().as_bytes())
        );
        let echoed = response.bytes().await.unwrap();
        assert!(echoed[..] == body[..], "echoed body differs");
    }
}

#[tokio::test]
async fn a_stream_shorter_than_declared_is_an_error() {
    let uwsgi = Uwsgi::start();
    let err = Client::new(uwsgi.unix.clone())
        .send(Request::new("POST", "/echo").body_stream(std::io::Cursor::new(vec![1u8; 10]), 20))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BodyTooShort {
                expected: 20,
                actual: 10
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn binary_response_is_read_to_eof_unchanged() {
    let uwsgi = Uwsgi::start();
    let response = Client::new(uwsgi.unix.clone())
        .send(Request::get("/binary"))
        .await
        .unwrap();
    let expected: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    assert_eq!(response.bytes().await.unwrap(), expected);
}

#[tokio::test]
async fn not_found_is_a_response_not_an_error() {
    let uwsgi = Uwsgi::start();
    let response = Client::new(uwsgi.tcp.clone())
        .send(Request::get("/nope"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.head().reason, "Not Found");
    assert_eq!(response.bytes().await.unwrap(), &b"not found: /nope"[..]);
}

#[tokio::test]
async fn a_dead_socket_is_a_connect_error_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Unix(dir.path().join("gone.sock"));
    let err = Client::new(target.clone()).ping().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("cannot connect to `{target}`"));

    // A port bound but not listening: connecting is refused, and no other test can take it
    // meanwhile (a port that is merely free could be taken by a concurrent test's uWSGI).
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let tcp: Target = held.local_addr().unwrap().to_string().parse().unwrap();
    let err = Client::new(tcp).send(Request::get("/")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    drop(held);
}

#[tokio::test]
async fn a_request_over_buffer_size_gets_a_clear_error() {
    let uwsgi = Uwsgi::start();
    let big = "x".repeat(5000);
    // uWSGI (buffer-size 4096) hangs up without a reply.
    let err = Client::new(uwsgi.unix.clone())
        .send(Request::get("/environ").header("X-Big", big.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ClosedWithoutResponse { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("buffer-size"), "{err}");
    assert!(uwsgi.log_text().contains("invalid request block size"));

    // Told the server's limit, the client refuses to send it at all.
    let err = Client::new(uwsgi.unix.clone())
        .buffer_size(BufferSize::UWSGI_DEFAULT)
        .send(Request::get("/environ").header("X-Big", big))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("exceeds the `buffer_size` limit of `4096` bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_peer_is_a_read_timeout_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    // A peer that accepts and never answers.
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let _held = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(conn);
    });
    let err = Client::new(Target::Unix(path))
        .read_timeout(Duration::from_millis(200))
        .send(Request::get("/"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReadTimeout { .. }), "{err:?}");
}

#[tokio::test]
async fn ping_gets_a_pong_over_unix_and_tcp() {
    let uwsgi = Uwsgi::start();
    for target in [&uwsgi.unix, &uwsgi.tcp] {
        let pong = Client::new(target.clone()).ping().await.unwrap();
        assert_eq!(pong.warning, None);
    }
}

#[tokio::test]
async fn the_tokio_codec_frames_a_ping_and_its_pong() {
    let uwsgi = Uwsgi::start();
    let Target::Unix(path) = &uwsgi.unix else {
        unreachable!()
    };
    let stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let mut framed = Framed::new(stream, PacketCodec::new(BufferSize::UWSGI_DEFAULT));
    let ping = Frame::new(
        Modifier1::PING,
        Modifier2::DEFAULT,
        std::iter::empty::<(&[u8], &[u8])>(),
        BufferSize::MAX,
    )
    .unwrap();
    framed.send(ping).await.unwrap();
    let reply = framed.next().await.unwrap().unwrap();
    assert_eq!(reply.header().modifier1, Modifier1::PING);
    assert_eq!(reply.header().modifier2, Modifier2::PONG);
    assert!(reply.vars().is_empty());
    assert!(framed.next().await.is_none());
}

#[tokio::test]
async fn stats_over_unix_count_workers_and_requests() {
    let uwsgi = Uwsgi::start();
    let client = Client::new(uwsgi.unix.clone());
    for _ in 0..3 {
        client
            .send(Request::get("/binary"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    // Workers count a request once it is over, just after the response is sent.
    let mut stats = stats::read(&uwsgi.stats, Duration::from_secs(10))
        .await
        .unwrap();
    for _ in 0..100 {
        if stats.requests() == 3 && stats.workers.iter().all(|w| w.status.is_idle()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = stats::read(&uwsgi.stats, Duration::from_secs(10))
            .await
            .unwrap();
    }
    assert!(stats.version.starts_with("2.0."), "{}", stats.version);
    assert_eq!(stats.pid, i64::from(uwsgi.pid()));
    assert_eq!(stats.workers.len(), 2);
    assert_eq!(stats.requests(), 3);
    assert!(stats.rss_bytes() > 0, "memory-report is on");
    assert!(
        stats
            .workers
            .iter()
            .all(|w| w.pid > 0 && w.status.is_idle())
    );
    assert_eq!(stats.sockets.len(), 2);
    assert_eq!(stats.sockets[0].proto, "uwsgi");
}

#[tokio::test]
async fn stats_over_tcp_survive_unescaped_quotes_and_tabs() {
    // uWSGI writes `cwd` into the JSON unescaped; this one breaks strict JSON.
    let uwsgi = Uwsgi::start_with(&Options {
        stats_on_tcp: true,
        chdir_name: Some("we\"ird\tdir\\x"),
        processes: 1,
        ..Options::default()
    });
    let Target::Tcp { host, port } = &uwsgi.stats else {
        unreachable!()
    };
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut std::net::TcpStream::connect((host.as_str(), *port)).unwrap(),
        &mut raw,
    )
    .unwrap();
    assert!(
        serde_json::from_slice::<serde_json::Value>(&raw).is_err(),
        "this uWSGI escapes its stats strings: the test no longer covers the repair"
    );
    let stats = stats::read(&uwsgi.stats, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(stats.cwd.ends_with("/we\"ird\tdir\\x"), "{:?}", stats.cwd);
    assert_eq!(stats.workers.len(), 1);
}

#[test]
fn master_fifo_shuts_the_instance_down_and_a_dead_master_is_an_error() {
    let mut uwsgi = Uwsgi::start_with(&Options {
        processes: 1,
        ..Options::default()
    });
    control::write_fifo(&uwsgi.fifo, &[FifoCommand::GRACEFUL_SHUTDOWN]).unwrap();
    uwsgi.wait_exit();
    let err = control::write_fifo(&uwsgi.fifo, &[FifoCommand::GRACEFUL_RELOAD]).unwrap_err();
    assert!(
        matches!(err, Error::MasterNotRunning { .. } | Error::Fifo { .. }),
        "{err:?}"
    );
}

#[test]
fn sigint_to_the_master_stops_it() {
    let mut uwsgi = Uwsgi::start_with(&Options {
        processes: 1,
        ..Options::default()
    });
    control::shutdown(Pid::from_raw(uwsgi.pid())).unwrap();
    uwsgi.wait_exit();
}

#[tokio::test]
async fn a_django_app_answers_over_unix_and_tcp() {
    let uwsgi = Uwsgi::start_with(&Options {
        django: true,
        processes: 1,
        ..Options::default()
    });
    for target in [&uwsgi.unix, &uwsgi.tcp] {
        let client = Client::new(target.clone());
        // Django checks the host against ALLOWED_HOSTS: the default Host must pass.
        let response = client
            .send(Request::get("/hello/?q=jazz").header("X-Trace-Id", "t-1"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{target}");
        let json: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(json["method"], "GET");
        assert_eq!(json["path"], "/hello/");
        assert_eq!(json["q"], "jazz");
        assert_eq!(json["trace"], "t-1");

        let body = binary_body(200 * 1024);
        let response = client
            .send(Request::new("POST", "/upload/").body(body.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.bytes().await.unwrap()[..] == body[..],
            "upload echoed differently"
        );

        let response = client.send(Request::get("/nope/")).await.unwrap();
        assert_eq!(response.status(), 404);
    }
}

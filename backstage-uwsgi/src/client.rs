//! An async uwsgi client: requests with streamed bodies, raw HTTP responses, ping.
use std::{
    cell::Cell,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpStream, UnixStream},
    time::{Instant, timeout, timeout_at},
};

use crate::{
    error::{Error, InvalidResponse},
    http::{MAX_HEAD_LEN, ResponseHead},
    packet::{BufferSize, HEADER_LEN, Header, Modifier1, Modifier2, encode_packet},
    target::Target,
};

/// Talks uwsgi to one target, one connection per request.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    connect_timeout: Duration,
    read_timeout: Duration,
    deadline: Duration,
    buffer_size: BufferSize,
}

impl Client {
    /// A client for `target` with a 5 s connect timeout, a 30 s read timeout, a 60 s deadline
    /// for the whole exchange and no `buffer_size` limit beyond the protocol's.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            buffer_size: BufferSize::MAX,
        }
    }

    /// The longest a whole exchange may take, from the first connect attempt to the last byte
    /// of the response body: a peer sending one byte a second, or a body without end, is
    /// given up on then ([`Error::Deadline`]), however often it sends.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The longest a connection may take to establish (a unix socket whose listen queue is
    /// full is tried again until then).
    #[must_use]
    pub fn connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// The longest any single read or write may wait for the peer.
    #[must_use]
    pub fn read_timeout(mut self, read_timeout: Duration) -> Self {
        self.read_timeout = read_timeout;
        self
    }

    /// Refuse to send vars blocks larger than the server's `buffer-size`.
    #[must_use]
    pub fn buffer_size(mut self, buffer_size: BufferSize) -> Self {
        self.buffer_size = buffer_size;
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends `request` and reads the response head; the body is read from the [`Response`],
    /// within the same [deadline](Self::deadline). The body ends at its `Content-Length`, or at
    /// the end of the connection when the response has none.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let until = Instant::now() + self.deadline;
        let no_body = request.method.eq_ignore_ascii_case("HEAD");
        let mut response = timeout_at(until, self.exchange(request))
            .await
            .map_err(|_| self.deadline_passed())??;
        response.body.until = until;
        response.body.deadline = self.deadline;
        let status = response.head.status;
        response.body.remaining = if no_body || status / 100 == 1 || status == 204 || status == 304
        {
            Some(0)
        } else if response.head.header("transfer-encoding").is_some() {
            None
        } else {
            response.head.content_length()
        };
        response.body.trim();
        Ok(response)
    }

    async fn exchange(&self, request: Request) -> Result<Response, Error> {
        let Request {
            method,
            uri,
            headers,
            body,
            extra_vars,
        } = request;
        let vars = request_vars(&self.target, &method, &uri, &headers, &body, extra_vars);
        let mut packet = BytesMut::new();
        encode_packet(
            &mut packet,
            Modifier1::WSGI,
            Modifier2::DEFAULT,
            vars.iter().map(|(k, v)| (k, v)),
            self.buffer_size,
        )?;
        let mut conn = self.connect().await?;
        // A server that rejects the request hangs up: stop writing and see what it said.
        let sent = self.write_request(&mut conn, &packet, body).await;
        match sent {
            Ok(()) => {}
            Err(Error::Io { source, .. }) if is_hangup(&source) => {}
            Err(other) => return Err(other),
        }
        self.read_head(conn).await
    }

    /// Pings the target (modifier1 `100`) and checks the pong, within the
    /// [deadline](Self::deadline).
    pub async fn ping(&self) -> Result<Pong, Error> {
        timeout(self.deadline, self.ping_exchange())
            .await
            .map_err(|_| self.deadline_passed())?
    }

    fn deadline_passed(&self) -> Error {
        Error::Deadline {
            target: self.target.clone(),
            deadline: self.deadline,
        }
    }

    async fn ping_exchange(&self) -> Result<Pong, Error> {
        let mut conn = self.connect().await?;
        let ping = Header {
            modifier1: Modifier1::PING,
            datasize: 0,
            modifier2: Modifier2::DEFAULT,
        };
        self.io(conn.write_all(&ping.encode())).await?;
        let mut reply = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            let n = self.io(conn.read(&mut reply[got..])).await;
            match n {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Error::Io { source, .. }) if is_hangup(&source) && got == 0 => break,
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Err(self.closed());
        }
        let header = Header::decode(&reply[..got]).ok_or(Error::InvalidPacket {
            offset: got,
            reason: crate::error::InvalidPacket::TruncatedHeader,
        })?;
        if header.modifier1 != Modifier1::PING || header.modifier2 != Modifier2::PONG {
            return Err(Error::UnexpectedPong {
                target: self.target.clone(),
                header,
            });
        }
        let mut warning = vec![0u8; usize::from(header.datasize)];
        self.io(conn.read_exact(&mut warning)).await?;
        Ok(Pong {
            warning: (!warning.is_empty()).then(|| String::from_utf8_lossy(&warning).into_owned()),
        })
    }

    async fn connect(&self) -> Result<Conn, Error> {
        connect(&self.target, self.connect_timeout).await
    }

    async fn write_request(&self, conn: &mut Conn, packet: &[u8], body: Body) -> Result<(), Error> {
        match body {
            Body::Empty => self.io(conn.write_all(packet)).await,
            Body::Bytes(bytes) => {
                // One write for small requests, as most proxies do.
                if bytes.len() <= 64 * 1024 {
                    let mut all = Vec::with_capacity(packet.len() + bytes.len());
                    all.extend_from_slice(packet);
                    all.extend_from_slice(&bytes);
                    self.io(conn.write_all(&all)).await
                } else {
                    self.io(conn.write_all(packet)).await?;
                    self.io(conn.write_all(&bytes)).await
                }
            }
            Body::Stream { mut reader, length } => {
                self.io(conn.write_all(packet)).await?;
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0u64;
                while sent < length {
                    let want = usize::try_from(length - sent)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let n = reader
                        .read(&mut buf[..want])
                        .await
                        .map_err(|source| Error::BodyRead { source })?;
                    if n == 0 {
                        return Err(Error::BodyTooShort {
                            expected: length,
                            actual: sent,
                        });
                    }
                    self.io(conn.write_all(&buf[..n])).await?;
                    sent += n as u64;
                }
                Ok(())
            }
        }
    }

    async fn read_head(&self, mut conn: Conn) -> Result<Response, Error> {
        let mut buf = BytesMut::with_capacity(8 * 1024);
        loop {
            if let Some((head, used)) = ResponseHead::parse(&buf, MAX_HEAD_LEN)? {
                let _ = buf.split_to(used);
                return Ok(Response {
                    head,
                    body: ResponseBody {
                        conn,
                        pending: buf,
                        done: false,
                        target: self.target.clone(),
                        read_timeout: self.read_timeout,
                        until: Instant::now() + self.deadline,
                        deadline: self.deadline,
                        remaining: None,
                        received: 0,
                    },
                });
            }
            let n = match self.io(conn.read_buf(&mut buf)).await {
                Err(Error::Io { source, .. }) if is_hangup(&source) && buf.is_empty() => 0,
                other => other?,
            };
            if n == 0 {
                if buf.is_empty() {
                    return Err(self.closed());
                }
                return Err(Error::InvalidResponse {
                    offset: buf.len(),
                    reason: InvalidResponse::Truncated,
                });
            }
        }
    }

    fn closed(&self) -> Error {
        Error::ClosedWithoutResponse {
            target: self.target.clone(),
        }
    }

    async fn io<T>(&self, op: impl Future<Output = io::Result<T>>) -> Result<T, Error> {
        io_with_timeout(&self.target, self.read_timeout, op).await
    }
}

pub(crate) async fn io_with_timeout<T>(
    target: &Target,
    read_timeout: Duration,
    op: impl Future<Output = io::Result<T>>,
) -> Result<T, Error> {
    match timeout(read_timeout, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::Io {
            target: target.clone(),
            source,
        }),
        Err(_) => Err(Error::ReadTimeout {
            target: target.clone(),
            timeout: read_timeout,
        }),
    }
}

/// Connects to `target` within `connect_timeout`. A unix socket whose listen queue is full
/// (`EAGAIN`) is tried again until then: its server is busy, not gone.
pub(crate) async fn connect(target: &Target, connect_timeout: Duration) -> Result<Conn, Error> {
    let queue_full = Cell::new(false);
    let connecting = async {
        let mut pause = Duration::from_millis(5);
        loop {
            let attempt = match target {
                Target::Unix(path) => UnixStream::connect(path).await.map(Conn::Unix),
                Target::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
                    .await
                    .map(Conn::Tcp),
            };
            match attempt {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    queue_full.set(true);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    };
    match timeout(connect_timeout, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(Error::Connect {
            target: target.clone(),
            source,
        }),
        Err(_) if queue_full.get() => Err(Error::ListenQueueFull {
            target: target.clone(),
            timeout: connect_timeout,
        }),
        Err(_) => Err(Error::ConnectTimeout {
            target: target.clone(),
            timeout: connect_timeout,
        }),
    }
}

fn is_hangup(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// The vars nginx's `uwsgi_params` would send for this request.
fn request_vars(
    target: &Target,
    method: &str,
    uri: &str,
    headers: &[(String, Vec<u8>)],
    body: &Body,
    extra_vars: Vec<(Vec<u8>, Vec<u8>)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let host_header = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let (default_host, port) = match target {
        Target::Unix(_) => ("localhost".to_owned(), 80),
        Target::Tcp { host, port } => (host.clone(), *port),
    };
    let host = host_header.unwrap_or_else(|| default_host.clone().into_bytes());
    let server_name = host
        .rsplit_once_colon()
        .map_or(host.as_slice(), |(name, _)| name)
        .to_vec();
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"REQUEST_METHOD".to_vec(), method.as_bytes().to_vec()),
        (b"REQUEST_URI".to_vec(), uri.as_bytes().to_vec()),
        (b"PATH_INFO".to_vec(), percent_decode(path.as_bytes())),
        (b"QUERY_STRING".to_vec(), query.as_bytes().to_vec()),
        (b"SERVER_PROTOCOL".to_vec(), b"HTTP/1.1".to_vec()),
        (b"REQUEST_SCHEME".to_vec(), b"http".to_vec()),
        (b"SERVER_NAME".to_vec(), server_name),
        (b"SERVER_PORT".to_vec(), port.to_string().into_bytes()),
    ];
    let length = match body {
        Body::Empty => None,
        Body::Bytes(bytes) => Some(bytes.len() as u64),
        Body::Stream { length, .. } => Some(*length),
    };
    if let Some(length) = length {
        vars.push((b"CONTENT_LENGTH".to_vec(), length.to_string().into_bytes()));
    }
    let mut has_host = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue; // Always taken from the body.
        }
        if name.eq_ignore_ascii_case("content-type") {
            vars.push((b"CONTENT_TYPE".to_vec(), value.clone()));
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        let mut key = b"HTTP_".to_vec();
        key.extend(name.bytes().map(|b| match b {
            b'-' => b'_',
            b => b.to_ascii_uppercase(),
        }));
        // Repeated headers are joined, as CGI gateways do.
        if let Some((_, existing)) = vars.iter_mut().find(|(k, _)| *k == key) {
            existing.extend_from_slice(if key == b"HTTP_COOKIE" { b"; " } else { b", " });
            existing.extend_from_slice(value);
        } else {
            vars.push((key, value.clone()));
        }
    }
    if !has_host {
        let host = match target {
            Target::Unix(_) => default_host,
            Target::Tcp { .. } => target.to_string(),
        };
        vars.push((b"HTTP_HOST".to_vec(), host.into_bytes()));
    }
    vars.extend(extra_vars);
    vars
}

trait RsplitColon {
    fn rsplit_once_colon(&self) -> Option<(&[u8], &[u8])>;
}

impl RsplitColon for Vec<u8> {
    fn rsplit_once_colon(&self) -> Option<(&[u8], &[u8])> {
        // `[::1]:80` splits at the last colon only when it follows the bracket.
        let colon = self.iter().rposition(|&b| b == b':')?;
        let name = &self[..colon];
        if name.contains(&b':') && !name.ends_with(b"]") {
            return None;
        }
        Some((name, &self[colon + 1..]))
    }
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if input[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).expect("two hex digits fit a byte"));
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// An HTTP request to send over uwsgi.
#[derive(Debug)]
pub struct Request {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    extra_vars: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Request {
    /// A request for `uri` (a path with an optional `?query`).
    pub fn new(method: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            uri: uri.into(),
            headers: Vec::new(),
            body: Body::Empty,
            extra_vars: Vec::new(),
        }
    }

    /// A `GET` for `uri`.
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new("GET", uri)
    }

    /// Adds a header; it is sent as `HTTP_<NAME>` (`Content-Type` as `CONTENT_TYPE`).
    /// `Host` defaults to the target; `Content-Length` is always taken from the body.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a body held in memory.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Sets a body streamed from `reader`, which must yield exactly `length` bytes.
    #[must_use]
    pub fn body_stream(
        mut self,
        reader: impl AsyncRead + Send + Unpin + 'static,
        length: u64,
    ) -> Self {
        self.body = Body::Stream {
            reader: Box::new(reader),
            length,
        };
        self
    }

    /// Adds a raw var after the ones derived from the request (`SCRIPT_NAME`, `UWSGI_*`, …).
    #[must_use]
    pub fn var(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.extra_vars.push((key.into(), value.into()));
        self
    }
}

enum Body {
    Empty,
    Bytes(Bytes),
    Stream {
        reader: Box<dyn AsyncRead + Send + Unpin>,
        length: u64,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { length, .. } => write!(f, "Stream({length} bytes)"),
        }
    }
}

/// A pong: the server is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The warning message uWSGI attaches to pongs when one is set, such as a full listen queue.
    pub warning: Option<String>,
}

/// A response: its head, and its body still on the wire.
#[derive(Debug)]
pub struct Response {
    head: ResponseHead,
    body: ResponseBody,
}

impl Response {
    /// The status line and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// Splits the head from the body reader.
    pub fn into_parts(self) -> (ResponseHead, ResponseBody) {
        (self.head, self.body)
    }

    /// Reads the whole body (to EOF).
    pub async fn bytes(self) -> Result<Bytes, Error> {
        self.body.bytes().await
    }
}

/// The response body: what the server sends after the head, up to its `Content-Length` (or
/// to the end of the connection without one), within the client's deadline.
#[derive(Debug)]
pub struct ResponseBody {
    conn: Conn,
    pending: BytesMut,
    done: bool,
    target: Target,
    read_timeout: Duration,
    /// When the whole exchange must be over.
    until: Instant,
    /// The deadline it was given, for the error.
    deadline: Duration,
    /// Body bytes still to come, when the head said how many.
    remaining: Option<u64>,
    /// Body bytes handed out so far.
    received: u64,
}

impl ResponseBody {
    /// Drops what the peer sent past the declared length (a pipelined byte, junk).
    fn trim(&mut self) {
        if let Some(remaining) = self.remaining {
            let keep = usize::try_from(remaining).unwrap_or(usize::MAX);
            if self.pending.len() >= keep {
                self.pending.truncate(keep);
                self.done = true;
            }
        }
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(self.take_pending()));
        }
        if self.done {
            return Ok(None);
        }
        self.pending.reserve(64 * 1024);
        let now = Instant::now();
        let left = self.until.saturating_duration_since(now);
        let n = if left <= self.read_timeout {
            timeout_at(self.until, self.conn.read_buf(&mut self.pending))
                .await
                .map_err(|_| Error::Deadline {
                    target: self.target.clone(),
                    deadline: self.deadline,
                })?
                .map_err(|source| Error::Io {
                    target: self.target.clone(),
                    source,
                })?
        } else {
            io_with_timeout(
                &self.target,
                self.read_timeout,
                self.conn.read_buf(&mut self.pending),
            )
            .await?
        };
        if n == 0 {
            self.done = true;
            if let Some(remaining) = self.remaining.filter(|&r| r > 0) {
                return Err(Error::BodyTruncated {
                    target: self.target.clone(),
                    received: self.received,
                    declared: self.received + remaining,
                });
            }
            return Ok(None);
        }
        self.trim();
        Ok(Some(self.take_pending()))
    }

    fn take_pending(&mut self) -> Bytes {
        let chunk = self.pending.split().freeze();
        let len = chunk.len() as u64;
        self.received += len;
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(len);
            if *remaining == 0 {
                self.done = true;
            }
        }
        chunk
    }

    /// Reads the rest of the body.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let mut all = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

#[derive(Debug)]
pub(crate) enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var<'a>(vars: &'a [(Vec<u8>, Vec<u8>)], key: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn derives_cgi_vars_like_nginx() {
        let target: Target = "127.0.0.1:9001".parse().unwrap();
        let headers = vec![
            ("Content-Type".to_owned(), b"text/plain".to_vec()),
            ("Content-Length".to_owned(), b"999".to_vec()),
            ("X-Trace-Id".to_owned(), b"a".to_vec()),
            ("x-trace-id".to_owned(), b"b".to_vec()),
        ];
        let vars = request_vars(
            &target,
            "POST",
            "/a%20b/c?x=1&y=%20",
            &headers,
            &Body::Bytes(Bytes::from_static(b"hello")),
            vec![],
        );
        assert_eq!(var(&vars, "PATH_INFO"), Some("/a b/c"));
        assert_eq!(var(&vars, "QUERY_STRING"), Some("x=1&y=%20"));
        assert_eq!(var(&vars, "REQUEST_URI"), Some("/a%20b/c?x=1&y=%20"));
        assert_eq!(var(&vars, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(var(&vars, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(var(&vars, "HTTP_X_TRACE_ID"), Some("a, b"));
        assert_eq!(var(&vars, "HTTP_HOST"), Some("127.0.0.1:9001"));
        assert_eq!(var(&vars, "SERVER_NAME"), Some("127.0.0.1"));
        assert_eq!(var(&vars, "SERVER_PORT"), Some("9001"));
        assert_eq!(var(&vars, "HTTP_CONTENT_LENGTH"), None);
    }

    #[test]
    fn empty_body_sends_no_content_length_but_an_empty_one_does() {
        let target: Target = "/tmp/s.sock".parse().unwrap();
        let none = request_vars(&target, "GET", "/", &[], &Body::Empty, vec![]);
        assert_eq!(var(&none, "CONTENT_LENGTH"), None);
        assert_eq!(var(&none, "HTTP_HOST"), Some("localhost"));
        let empty = request_vars(
            &target,
            "POST",
            "/",
            &[],
            &Body::Bytes(Bytes::new()),
            vec![],
        );
        assert_eq!(var(&empty, "CONTENT_LENGTH"), Some("0"));
    }
}

//! The stats server: the JSON document a uWSGI `--stats` socket writes on connect.
//!
//! uWSGI 2.0 writes strings into it without escaping them, so a `"`, a `\` or a control byte
//! in a path breaks the JSON. [`Stats::parse`] escapes them before parsing, and reports the
//! byte offset of the first error otherwise; it never panics.
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::{
    client::{connect, io_with_timeout},
    error::Error,
    target::Target,
};

/// The largest stats document accepted, in bytes.
pub const MAX_STATS_LEN: usize = 16 * 1024 * 1024;

/// The most workers read from one stats document; the rest are skipped unparsed (no uWSGI
/// instance Backstage runs has more: `processes` is at most 512).
pub const MAX_WORKERS: usize = 4096;

/// What a uWSGI instance reports about itself.
///
/// Fields missing from the document are left at their defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Stats {
    /// The uWSGI version, such as `2.0.31`.
    pub version: String,
    /// Connections waiting in the listen queue of the first socket.
    pub listen_queue: u64,
    /// Times the listen queue overflowed.
    pub listen_queue_errors: u64,
    /// Signals waiting in the master's queue.
    pub signal_queue: u64,
    /// Requests being served right now.
    pub load: u64,
    /// The master's pid.
    pub pid: i64,
    /// The instance's uid.
    pub uid: u64,
    /// The instance's gid.
    pub gid: u64,
    /// The instance's working directory.
    pub cwd: String,
    /// The sockets the instance listens on.
    pub sockets: Vec<SocketStats>,
    /// The worker processes (at most [`MAX_WORKERS`] of them are read).
    #[serde(deserialize_with = "at_most_max_workers")]
    pub workers: Vec<WorkerStats>,
}

/// Reads the first [`MAX_WORKERS`] workers of the list and skips the rest, so a document
/// listing a million cannot make a million structs.
fn at_most_max_workers<'de, D>(deserializer: D) -> Result<Vec<WorkerStats>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Capped;
    impl<'de> serde::de::Visitor<'de> for Capped {
        type Value = Vec<WorkerStats>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of workers")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut workers = Vec::new();
            while workers.len() < MAX_WORKERS {
                match seq.next_element()? {
                    Some(worker) => workers.push(worker),
                    None => return Ok(workers),
                }
            }
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(workers)
        }
    }
    deserializer.deserialize_seq(Capped)
}

impl Stats {
    /// Parses a stats document as uWSGI 2.0 writes it: strings raw, never escaped.
    ///
    /// So a `\\` is read as itself, a control byte is kept, and a `"` ends a string only where
    /// JSON can go on after one. When that fails too, the error is strict JSON's, with its offset
    /// in `raw`.
    pub fn parse(raw: &[u8]) -> Result<Stats, Error> {
        let body = strip_http_head(raw);
        if let Ok(stats) = serde_json::from_slice::<Stats>(&repair(body)) {
            return Ok(stats);
        }
        // Report strict JSON's error: its offset is in the bytes uWSGI sent.
        serde_json::from_slice::<Stats>(body).map_err(|strict| Error::InvalidStats {
            offset: raw.len() - body.len() + byte_offset(body, strict.line(), strict.column()),
            source: strict,
        })
    }

    /// Requests served by all workers.
    pub fn requests(&self) -> u64 {
        self.workers.iter().map(|w| w.requests).sum()
    }

    /// Resident memory of all workers as uWSGI reports it, in bytes (0 unless it runs with
    /// `memory-report`, which Backstage's vassals do not: [`SessState`](crate::stage_manager::SessState) reads
    /// `/proc` instead).
    pub fn rss_bytes(&self) -> u64 {
        self.workers.iter().map(|w| w.rss).sum()
    }
}

/// A socket the instance listens on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SocketStats {
    /// The address or path.
    pub name: String,
    /// The protocol, such as `uwsgi`.
    pub proto: String,
    /// Connections waiting to be accepted.
    pub queue: u64,
    /// The listen backlog.
    pub max_queue: u64,
    /// Whether the socket is shared.
    pub shared: u64,
    /// Whether the socket can offload.
    pub can_offload: u64,
}

/// One worker process.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's number, from 1.
    pub id: u64,
    /// The worker's pid.
    pub pid: i64,
    /// Whether the worker accepts requests (1) or not (0).
    pub accepting: u64,
    /// Requests served since the worker was spawned.
    pub requests: u64,
    /// Requests served since the last stats read.
    pub delta_requests: u64,
    /// Exceptions raised by the app.
    pub exceptions: u64,
    /// Times harakiri killed the worker.
    pub harakiri_count: u64,
    /// Signals handled.
    pub signals: u64,
    /// Signals waiting.
    pub signal_queue: u64,
    /// What the worker is doing.
    pub status: WorkerStatus,
    /// Resident memory in bytes (0 unless `memory-report` is on).
    pub rss: u64,
    /// Virtual memory in bytes (0 unless `memory-report` is on).
    pub vsz: u64,
    /// Total time spent serving requests, in microseconds.
    pub running_time: u64,
    /// When the worker was last spawned, as a unix timestamp.
    pub last_spawn: u64,
    /// Times the worker was spawned.
    pub respawn_count: u64,
    /// Bytes sent.
    pub tx: u64,
    /// Average response time, in microseconds.
    pub avg_rt: u64,
    /// The apps the worker has loaded.
    pub apps: Vec<AppStats>,
}

/// A worker's status: `idle`, `busy`, `cheap`, `pause`, `sig…` (an open set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WorkerStatus(String);

impl WorkerStatus {
    /// The status as uWSGI wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Waiting for a request.
    pub fn is_idle(&self) -> bool {
        self.0 == "idle"
    }

    /// Serving a request.
    pub fn is_busy(&self) -> bool {
        self.0 == "busy"
    }

    /// Stopped by the cheaper subsystem.
    pub fn is_cheap(&self) -> bool {
        self.0 == "cheap"
    }
}

/// An app loaded in a worker.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AppStats {
    /// The app's index.
    pub id: u64,
    /// The app's modifier1.
    pub modifier1: u64,
    /// Where the app is mounted (`SCRIPT_NAME`).
    pub mountpoint: String,
    /// Seconds the app took to load.
    pub startup_time: u64,
    /// Requests served.
    pub requests: u64,
    /// Exceptions raised.
    pub exceptions: u64,
    /// The app's directory.
    pub chdir: String,
}

/// Connects to a stats socket and reads its document, all within `timeout`: a socket that
/// sends one byte a second, or never stops, is given up on then ([`Error::Deadline`]); a
/// document over [`MAX_STATS_LEN`] is refused as soon as it passes the limit.
pub async fn read(target: &Target, timeout: Duration) -> Result<Stats, Error> {
    let deadline = Error::Deadline {
        target: target.clone(),
        deadline: timeout,
    };
    let raw = tokio::time::timeout(timeout, read_raw(target, timeout))
        .await
        .map_err(|_| deadline)??;
    Stats::parse(&raw)
}

async fn read_raw(target: &Target, timeout: Duration) -> Result<Vec<u8>, Error> {
    let conn = connect(target, timeout).await?;
    let mut raw = Vec::with_capacity(16 * 1024);
    let limit = u64::try_from(MAX_STATS_LEN).unwrap_or(u64::MAX) + 1;
    let mut limited = conn.take(limit);
    loop {
        raw.reserve(16 * 1024);
        let n = io_with_timeout(target, timeout, limited.read_buf(&mut raw)).await?;
        if n == 0 {
            break;
        }
    }
    if raw.len() > MAX_STATS_LEN {
        return Err(Error::StatsTooLarge {
            limit: MAX_STATS_LEN,
        });
    }
    Ok(raw)
}

/// [`read`] for callers without a runtime (it runs one of its own for the call): connect,
/// read to end of file and parse, all within `timeout`. Must not be called from async code.
pub fn read_unix_blocking(path: &std::path::Path, timeout: Duration) -> Result<Stats, Error> {
    let target = Target::Unix(path.to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            target: target.clone(),
            source,
        })?;
    runtime.block_on(read(&target, timeout))
}

/// Skips the HTTP head `--stats-http` puts before the document.
fn strip_http_head(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"HTTP/")
        && let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
    {
        return &raw[end + 4..];
    }
    raw
}

/// Escapes what uWSGI leaves raw inside strings: control bytes, `\`, and any `"` that is not
/// followed by what may follow a JSON string (`,` `:` `}` `]` or the end).
fn repair(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut in_string = false;
    for (i, &b) in bytes.iter().enumerate() {
        if !in_string {
            in_string = b == b'"';
            out.push(b);
            continue;
        }
        match b {
            b'"' if ends_string(&bytes[i + 1..]) => {
                in_string = false;
                out.push(b);
            }
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fn ends_string(rest: &[u8]) -> bool {
    matches!(
        rest.iter().find(|b| !b.is_ascii_whitespace()),
        None | Some(b',' | b':' | b'}' | b']')
    )
}

/// Turns `serde_json`'s 1-based line and column into a byte offset in `text`.
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_worker_and_sums() {
        let stats = Stats::parse(
            br#"{"version":"2.0.31","pid":7,"listen_queue":3,"workers":[
                {"id":1,"pid":8,"requests":5,"status":"idle","rss":100,"apps":[]},
                {"id":2,"pid":9,"requests":2,"status":"busy","rss":50}]}"#,
        )
        .unwrap();
        assert_eq!(stats.pid, 7);
        assert_eq!(stats.listen_queue, 3);
        assert_eq!(stats.requests(), 7);
        assert_eq!(stats.rss_bytes(), 150);
        assert!(stats.workers[0].status.is_idle());
        assert!(stats.workers[1].status.is_busy());
    }

    #[test]
    fn reads_at_most_max_workers() {
        let mut doc = String::from("{\"workers\":[");
        for i in 0..MAX_WORKERS + 10 {
            if i > 0 {
                doc.push(',');
            }
            doc.push_str("{\"pid\":1}");
        }
        doc.push_str("],\"pid\":9}");
        let stats = Stats::parse(doc.as_bytes()).unwrap();
        assert_eq!(stats.workers.len(), MAX_WORKERS);
        assert_eq!(stats.pid, 9, "the rest of the document is still read");
    }

    #[test]
    fn repairs_unescaped_quotes_backslashes_and_control_bytes() {
        let stats = Stats::parse(b"{\"cwd\":\"/srv/a\"b\\c\td\",\"pid\":1}").unwrap();
        assert_eq!(stats.cwd, "/srv/a\"b\\c\td");
        assert_eq!(stats.pid, 1);
    }

    #[test]
    fn skips_the_stats_http_head() {
        let stats =
            Stats::parse(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"pid\":3}")
                .unwrap();
        assert_eq!(stats.pid, 3);
    }

    #[test]
    fn reports_the_offset_of_broken_json() {
        let err = Stats::parse(b"{\"pid\":1,\n \"load\": x}").unwrap_err();
        assert_eq!(err.to_string(), "invalid stats json at byte `19`");
        let err = Stats::parse(b"").unwrap_err();
        assert!(
            matches!(err, Error::InvalidStats { offset: 0, .. }),
            "{err:?}"
        );
    }
}

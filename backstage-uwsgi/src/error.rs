//! The crate's one error type.
use std::{fmt, io, path::PathBuf, time::Duration};

use backstage_core::files::FileError;

use crate::{packet::Header, target::Target};

/// Everything that can go wrong speaking uwsgi to a uWSGI server, rendering and placing
/// vassals, running the Emperor and building a Stage Set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Received bytes are not a valid uwsgi packet.
    #[error("invalid uwsgi packet at byte `{offset}`: {reason}")]
    InvalidPacket {
        /// Offset of the offending byte from the start of the packet.
        offset: usize,
        /// What is wrong there.
        reason: InvalidPacket,
    },
    /// A packet cannot be encoded: a field exceeds a limit.
    #[error("{field} of `{size}` bytes exceeds the {limit} of `{max}` bytes")]
    TooLarge {
        /// What is too large.
        field: Field,
        /// Its size in bytes.
        size: usize,
        /// The limit it exceeds.
        limit: Limit,
        /// The limit's value in bytes.
        max: usize,
    },
    /// A packet cannot be encoded: a var has an empty key, which uWSGI rejects.
    #[error("var `#{index}` has an empty key")]
    EmptyKey {
        /// Position of the var in the vars block (0-based).
        index: usize,
    },
    /// A string is not a valid target (a unix socket path or `host:port`).
    #[error("invalid target `{input}`: {reason}")]
    InvalidTarget {
        /// The string given.
        input: String,
        /// Why it is not a target.
        reason: &'static str,
    },
    /// Connecting to the target failed.
    #[error("cannot connect to `{target}`")]
    Connect {
        /// Where we tried to connect.
        target: Target,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Connecting to the target took longer than the connect timeout.
    #[error("timed out after `{timeout:?}` connecting to `{target}`")]
    ConnectTimeout {
        /// Where we tried to connect.
        target: Target,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A unix socket's listen queue stayed full until the connect timeout: its server is
    /// overloaded, or does not accept.
    #[error(
        "`{target}`'s listen queue stayed full for `{timeout:?}`: its server does not accept connections fast enough"
    )]
    ListenQueueFull {
        /// Where we tried to connect.
        target: Target,
        /// How long connecting was tried.
        timeout: Duration,
    },
    /// The whole exchange (connect, request, response) did not finish within its deadline,
    /// however often the peer sent something.
    #[error(
        "gave up on `{target}` after `{deadline:?}`: the exchange did not finish within its deadline"
    )]
    Deadline {
        /// The peer.
        target: Target,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The connection ended before the body reached its declared `Content-Length`.
    #[error(
        "`{target}` closed the connection after `{received}` of the `{declared}` body bytes its `Content-Length` declared"
    )]
    BodyTruncated {
        /// The peer.
        target: Target,
        /// Body bytes received.
        received: u64,
        /// The declared length.
        declared: u64,
    },
    /// The target sent nothing for longer than the read timeout.
    #[error("timed out after `{timeout:?}` waiting for `{target}`")]
    ReadTimeout {
        /// The silent peer.
        target: Target,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The target closed the connection before sending any response byte.
    ///
    /// uWSGI does this when a request's vars block exceeds its `buffer-size`.
    #[error(
        "`{target}` closed the connection without replying (uWSGI does this when the vars block exceeds its `buffer-size`)"
    )]
    ClosedWithoutResponse {
        /// The peer that hung up.
        target: Target,
    },
    /// Reading from or writing to the target failed.
    #[error("i/o error talking to `{target}`")]
    Io {
        /// The peer.
        target: Target,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The transport under a [`PacketCodec`](crate::PacketCodec) failed.
    #[error("i/o error on a uwsgi stream")]
    Stream(#[from] io::Error),
    /// The target's reply is not a valid HTTP response head.
    #[error("invalid http response at byte `{offset}`: {reason}")]
    InvalidResponse {
        /// Offset of the offending byte from the start of the response.
        offset: usize,
        /// What is wrong there.
        reason: InvalidResponse,
    },
    /// Reading a streamed request body failed.
    #[error("cannot read the request body")]
    BodyRead {
        /// The reader's reason.
        #[source]
        source: io::Error,
    },
    /// A streamed request body ended before its declared length.
    #[error("request body ended after `{actual}` of the `{expected}` bytes declared")]
    BodyTooShort {
        /// The declared `CONTENT_LENGTH`.
        expected: u64,
        /// The bytes actually read from the body.
        actual: u64,
    },
    /// A ping got a reply that is not a pong.
    #[error("unexpected ping reply from `{target}`: `{header:?}`")]
    UnexpectedPong {
        /// The peer pinged.
        target: Target,
        /// The header it sent back.
        header: Header,
    },
    /// The stats server's output is not JSON this crate can read, even after repair.
    #[error("invalid stats json at byte `{offset}`")]
    InvalidStats {
        /// Offset in the raw stats output where parsing failed.
        offset: usize,
        /// The JSON parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// The stats server sent more than the crate accepts.
    #[error("stats output exceeds `{limit}` bytes")]
    StatsTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The master FIFO has no reader: the uWSGI master is not running.
    #[error("master fifo `{}` has no reader: is the uWSGI master running?", path.display())]
    MasterNotRunning {
        /// The FIFO's path.
        path: PathBuf,
    },
    /// Opening or writing the master FIFO failed.
    #[error("cannot write to master fifo `{}`", path.display())]
    Fifo {
        /// The FIFO's path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Sending a signal to the uWSGI master failed.
    #[error("cannot send `{signal}` to uWSGI master pid `{pid}`")]
    Signal {
        /// The master's pid.
        pid: i32,
        /// The signal.
        signal: nix::sys::signal::Signal,
        /// The operating system's reason.
        #[source]
        source: nix::Error,
    },

    /// The named Sess is not in the Production.
    #[error("no Sess `{name}` in production `{production}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownSess {
        /// The name asked for.
        name: String,
        /// The Production.
        production: String,
        /// The closest existing Sess name, if any is close.
        suggestion: Option<String>,
    },
    /// The named Stage is not in the Production.
    #[error("no Stage `{name}` in production `{production}`")]
    UnknownStage {
        /// The name asked for.
        name: String,
        /// The Production.
        production: String,
    },
    /// A value cannot be written so that uWSGI reads it back literally.
    #[error("`{key}` of Sess `{sess}` cannot be written to a uWSGI ini file: {why}")]
    Unrepresentable {
        /// The Sess.
        sess: String,
        /// The ini key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// Placing, touching or removing a managed file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// An I/O operation on a path failed.
    #[error("failed to {action} `{}`", path.display())]
    PathIo {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started.
    #[error("failed to run `{}`", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Emperor did not start.
    #[error("the uWSGI Emperor did not start (log `{}`){}", log.display(), tail_suffix(log_tail))]
    EmperorStart {
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: Vec<String>,
    },
    /// The Emperor, or some of its vassals, did not stop before the deadline.
    #[error("the uWSGI Emperor did not stop within {seconds} s; still alive: {}", alive.join(", "))]
    EmperorStop {
        /// The deadline in seconds.
        seconds: u64,
        /// What is still running (`emperor pid 123`, `club-a pid 456`).
        alive: Vec<String>,
    },
    /// A Sess' master did not exit before the deadline.
    #[error("sess `{sess}` (master pid {pid}) did not stop within {seconds} s")]
    SessStop {
        /// The Sess.
        sess: String,
        /// Its master's pid.
        pid: i32,
        /// The deadline in seconds.
        seconds: u64,
    },
    /// System mode: Backstage does not run the Emperor.
    #[error("production `{production}` is in system mode: the system's uWSGI Emperor serves it")]
    SystemMode {
        /// The Production.
        production: String,
    },
    /// A command of the Stage Set failed.
    #[error("`{command}` failed with {status}{}", tail_suffix(stderr_tail))]
    Command {
        /// The command line, for the user.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines of its standard error.
        stderr_tail: Vec<String>,
    },
    /// An Act declares `static` but no `settings`, so `collectstatic` cannot run.
    #[error(
        "act `{act}` declares `static` but no `settings`; collectstatic needs DJANGO_SETTINGS_MODULE"
    )]
    NoSettings {
        /// The Act.
        act: String,
    },
}

/// Why bytes are not a valid uwsgi packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidPacket {
    /// The header's datasize exceeds the decoder's `buffer_size`.
    TooLarge {
        /// The datasize announced by the header.
        datasize: u16,
        /// The decoder's limit.
        buffer_size: u16,
    },
    /// The connection ended inside the 4-byte header.
    TruncatedHeader,
    /// The vars block ends inside a 2-byte size.
    TruncatedSize,
    /// A key or value's size runs past the end of the vars block.
    Overrun {
        /// The announced size.
        size: u16,
        /// The bytes left in the block.
        left: usize,
    },
    /// A key is empty.
    EmptyKey,
}

impl fmt::Display for InvalidPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge {
                datasize,
                buffer_size,
            } => write!(
                f,
                "datasize `{datasize}` exceeds the `buffer_size` limit of `{buffer_size}` bytes"
            ),
            Self::TruncatedHeader => f.write_str("connection closed inside the 4-byte header"),
            Self::TruncatedSize => f.write_str("vars block ends inside a 2-byte size"),
            Self::Overrun { size, left } => write!(
                f,
                "size `{size}` runs past the end of the vars block (`{left}` bytes left)"
            ),
            Self::EmptyKey => f.write_str("empty key"),
        }
    }
}

/// Why a reply is not a valid HTTP response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidResponse {
    /// The status line does not start with `HTTP/`.
    NotHttp,
    /// The status code is not three digits.
    BadStatus,
    /// A header line has no `:`.
    BadHeader,
    /// The head is longer than the limit without ending.
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection ended inside the head.
    Truncated,
    /// A `Content-Length` is not a decimal number, or two of them differ.
    BadContentLength,
}

impl fmt::Display for InvalidResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttp => f.write_str("status line does not start with `HTTP/`"),
            Self::BadStatus => f.write_str("status code is not three digits"),
            Self::BadHeader => f.write_str("header line has no `:`"),
            Self::TooLong { limit } => write!(f, "head exceeds `{limit}` bytes"),
            Self::Truncated => f.write_str("connection closed inside the response head"),
            Self::BadContentLength => {
                f.write_str("`Content-Length` is not one decimal number of at most 19 digits")
            }
        }
    }
}

/// A packet field that has a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A var's key.
    Key,
    /// A var's value.
    Value,
    /// The whole vars block (the header's datasize).
    VarsBlock,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "key",
            Self::Value => "value",
            Self::VarsBlock => "vars block",
        })
    }
}

/// A size limit of the uwsgi protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The protocol's own: sizes are 16-bit.
    Protocol,
    /// The configured `buffer_size` (uWSGI's `buffer-size` option).
    BufferSize,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Protocol => "uwsgi protocol limit",
            Self::BufferSize => "`buffer_size` limit",
        })
    }
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.join("\n"))
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::PathIo {
        action,
        path,
        source,
    }
}

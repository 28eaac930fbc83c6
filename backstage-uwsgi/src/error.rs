//! The crate's one error type.
use std::{fmt, io, path::PathBuf, time::Duration};

use crate::{packet::Header, target::Target};

/// Everything that can go wrong speaking uwsgi to a uWSGI server.
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
}

impl fmt::Display for InvalidResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttp => f.write_str("status line does not start with `HTTP/`"),
            Self::BadStatus => f.write_str("status code is not three digits"),
            Self::BadHeader => f.write_str("header line has no `:`"),
            Self::TooLong { limit } => write!(f, "head exceeds `{limit}` bytes"),
            Self::Truncated => f.write_str("connection closed inside the response head"),
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

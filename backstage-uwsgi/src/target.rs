//! Where a uWSGI socket is: a unix socket path or a TCP `host:port`.
use std::{fmt, path::PathBuf, str::FromStr};

use crate::error::Error;

/// A uWSGI socket address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address, `host:port` (the host may be a name, an IPv4 or a bracketed IPv6 address).
    Tcp {
        /// The host, without brackets.
        host: String,
        /// The port.
        port: u16,
    },
}

impl FromStr for Target {
    type Err = Error;

    /// A string with a `/` is a unix socket path; anything else must be `host:port`.
    fn from_str(input: &str) -> Result<Target, Error> {
        let invalid = |reason| Error::InvalidTarget {
            input: input.to_owned(),
            reason,
        };
        if input.contains('/') {
            return Ok(Target::Unix(PathBuf::from(input)));
        }
        let (host, port) = input
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected a unix socket path (with a `/`) or `host:port`"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        if host.contains(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            return Err(invalid("host contains whitespace or brackets"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("port is not a number from 1 to 65535"))?;
        Ok(Target::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl From<&backstage_core::SessSocket> for Target {
    fn from(socket: &backstage_core::SessSocket) -> Target {
        match socket {
            backstage_core::SessSocket::Unix(p) => Target::Unix(p.as_path().to_owned()),
            backstage_core::SessSocket::Tcp(a) => Target::Tcp {
                host: a.ip().to_string(),
                port: a.port(),
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "{}", path.display()),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_addresses() {
        assert_eq!(
            "/run/s.sock".parse::<Target>().unwrap(),
            Target::Unix("/run/s.sock".into())
        );
        assert_eq!(
            "./s.sock".parse::<Target>().unwrap(),
            Target::Unix("./s.sock".into())
        );
        assert_eq!(
            "127.0.0.1:9001".parse::<Target>().unwrap().to_string(),
            "127.0.0.1:9001"
        );
        assert_eq!(
            "[::1]:9001".parse::<Target>().unwrap().to_string(),
            "[::1]:9001"
        );
    }

    #[test]
    fn rejects_what_is_neither() {
        for (input, message) in [
            (
                "sock",
                "invalid target `sock`: expected a unix socket path (with a `/`) or `host:port`",
            ),
            (
                "localhost:http",
                "invalid target `localhost:http`: port is not a number from 1 to 65535",
            ),
            (":80", "invalid target `:80`: empty host"),
        ] {
            assert_eq!(input.parse::<Target>().unwrap_err().to_string(), message);
        }
    }
}

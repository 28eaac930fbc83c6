//! Validated value types.
//!
//! Every value that reaches a renderer passes through one of these newtypes. Each is built
//! only through [`FromStr`] (or `TryFrom<String>`, which serde uses), so a value that could
//! inject configuration into an nginx or uWSGI file cannot exist past the parser.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was rejected. Messages are lowercase, one line, and name the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty where something is required.
    #[error("must not be empty")]
    Empty,
    /// The value is longer than allowed.
    #[error("is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A character is not allowed here.
    #[error("{what} {} at byte {index} is not allowed{}", show_char(*ch), why_suffix(why))]
    BadChar {
        /// What kind of character (e.g. `character`, `first character`).
        what: &'static str,
        /// The character.
        ch: char,
        /// Its byte offset in the value.
        index: usize,
        /// Why it is not allowed, when that is not obvious.
        why: &'static str,
    },
    /// The value does not have the required shape.
    #[error("{0}")]
    Shape(&'static str),
    /// A number is out of its range.
    #[error("{value} is out of range; allowed: {min} to {max}")]
    OutOfRange {
        /// The value given.
        value: i64,
        /// The smallest allowed value.
        min: i64,
        /// The largest allowed value.
        max: i64,
    },
}

fn show_char(ch: char) -> String {
    match ch {
        '\n' => "`\\n`".to_owned(),
        '\r' => "`\\r`".to_owned(),
        '\t' => "`\\t`".to_owned(),
        c if c.is_control() || c.is_whitespace() => format!("`{}`", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}

fn why_suffix(why: &str) -> String {
    if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    }
}

/// Characters nginx would read as syntax (`;` ends a directive, `{}` open blocks, quotes and
/// `\` change quoting, `#` starts a comment, `$` interpolates a variable) or that end a line.
fn check_nginx_safe(value: &str) -> Result<(), ValueError> {
    for (index, ch) in value.char_indices() {
        let why = match ch {
            ';' | '{' | '}' | '"' | '\'' | '#' | '\\' | '$' => "nginx would read it as syntax",
            c if c.is_control() => "control characters could inject configuration",
            _ => continue,
        };
        return Err(ValueError::BadChar {
            what: "character",
            ch,
            index,
            why,
        });
    }
    Ok(())
}

/// A line break or NUL would start a new ini entry or truncate the value.
fn check_ini_safe(value: &str) -> Result<(), ValueError> {
    for (index, ch) in value.char_indices() {
        if matches!(ch, '\n' | '\r' | '\0') {
            return Err(ValueError::BadChar {
                what: "character",
                ch,
                index,
                why: "a line break would inject ini configuration",
            });
        }
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Eq, Ord and Hash are derived from the inner `String`, so they agree with `str`'s:
        // maps keyed by these types can be looked up with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

string_newtype!(
    /// A name in the Production: `[a-z][a-z0-9-]{0,31}`. Names the Production itself and every
    /// Act, Stage, Sess, Venue and Gig; it becomes part of generated file and upstream names.
    Slug
);

impl Slug {
    /// The longest slug, in bytes.
    pub const MAX_LEN: usize = 32;
}

impl FromStr for Slug {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut chars = s.char_indices();
        match chars.next() {
            None => return Err(ValueError::Empty),
            Some((_, c)) if c.is_ascii_lowercase() => {}
            Some((index, ch)) => {
                return Err(ValueError::BadChar {
                    what: "first character",
                    ch,
                    index,
                    why: "a name starts with a lowercase letter `a-z`",
                });
            }
        }
        for (index, ch) in chars {
            if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index,
                    why: "names use only `a-z`, `0-9` and `-`",
                });
            }
        }
        if s.len() > Self::MAX_LEN {
            return Err(ValueError::TooLong {
                len: s.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A DNS server name (RFC 1123), lowercase, optionally with one leading `*.` wildcard label.
    ServerName
);

impl ServerName {
    /// Whether this is a `*.` wildcard name.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl FromStr for ServerName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.len() > 253 {
            return Err(ValueError::TooLong {
                len: s.len(),
                max: 253,
            });
        }
        let (offset, rest) = match s.strip_prefix("*.") {
            Some(rest) => (2, rest),
            None => (0, s),
        };
        if rest.is_empty() {
            return Err(ValueError::Shape("a wildcard needs a domain after `*.`"));
        }
        let mut start = offset;
        for label in rest.split('.') {
            if label.is_empty() {
                return Err(ValueError::Shape(
                    "has an empty label (two dots, or a leading or trailing dot)",
                ));
            }
            if label.len() > 63 {
                return Err(ValueError::Shape("has a label longer than 63 bytes"));
            }
            for (i, ch) in label.char_indices() {
                let index = start + i;
                let ok = ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-';
                if !ok {
                    let why = if ch.is_ascii_uppercase() {
                        "write server names in lowercase"
                    } else if ch == '*' {
                        "only one leading `*.` wildcard label is allowed"
                    } else {
                        "DNS names use only `a-z`, `0-9`, `-` and `.`"
                    };
                    return Err(ValueError::BadChar {
                        what: "character",
                        ch,
                        index,
                        why,
                    });
                }
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(ValueError::Shape(
                    "has a label that starts or ends with `-`",
                ));
            }
            start += label.len() + 1;
        }
        Ok(Self(s.to_owned()))
    }
}

/// An address nginx listens on: `127.0.0.1:8080`, `[::1]:8080`, or a port alone (all addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenAddr {
    /// A port on every address.
    Port(u16),
    /// One address and port.
    Socket(SocketAddr),
}

impl ListenAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            ListenAddr::Port(p) => *p,
            ListenAddr::Socket(a) => a.port(),
        }
    }

    /// The same address with another port (used for the TLS listener beside a plain one).
    #[must_use]
    pub fn with_port(&self, port: u16) -> Self {
        match self {
            ListenAddr::Port(_) => ListenAddr::Port(port),
            ListenAddr::Socket(a) => ListenAddr::Socket(SocketAddr::new(a.ip(), port)),
        }
    }

    /// Whether two listen addresses would be served by the same socket in nginx (a port alone
    /// overlaps every address on that port).
    pub fn overlaps(&self, other: &ListenAddr) -> bool {
        match (self, other) {
            (ListenAddr::Socket(a), ListenAddr::Socket(b)) => a == b,
            _ => self.port() == other.port(),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Port(p) => write!(f, "{p}"),
            ListenAddr::Socket(a) => write!(f, "{a}"),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u16>() {
                Ok(0) | Err(_) => Err(ValueError::Shape("a port is a number from 1 to 65535")),
                Ok(p) => Ok(ListenAddr::Port(p)),
            };
        }
        match s.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => Err(ValueError::Shape("a port is a number from 1 to 65535")),
            Ok(a) => Ok(ListenAddr::Socket(a)),
            Err(_) => Err(ValueError::Shape(
                "expected `ADDRESS:PORT` (`127.0.0.1:8080`, `[::1]:8080`) or a port alone",
            )),
        }
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        value.parse()
    }
}

/// Where a Sess listens for the uwsgi protocol, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketSpec {
    /// A unix socket under the Production's run directory (the default).
    UnixDefault,
    /// A unix socket at this path (`unix:/path`).
    UnixPath(ConfPath),
    /// A loopback TCP address (`127.0.0.1:9001`).
    Tcp(SocketAddr),
}

impl FromStr for SocketSpec {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s == "unix" {
            return Ok(SocketSpec::UnixDefault);
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(ValueError::Shape(
                    "a unix socket path must be absolute (`unix:/run/app.sock`); or write `unix` for one under the state dir",
                ));
            }
            return Ok(SocketSpec::UnixPath(path.parse()?));
        }
        match s.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => Err(ValueError::Shape("a port is a number from 1 to 65535")),
            Ok(a) if !a.ip().is_loopback() => Err(ValueError::Shape(
                "a Sess listens on loopback only (`127.0.0.1:PORT` or `[::1]:PORT`): the uwsgi protocol lets any client set server variables",
            )),
            Ok(a) => Ok(SocketSpec::Tcp(a)),
            Err(_) => Err(ValueError::Shape(
                "expected `unix`, `unix:/absolute/path.sock` or a loopback `127.0.0.1:PORT`",
            )),
        }
    }
}

/// An absolute filesystem path that is safe to write into an nginx or uWSGI file: UTF-8, no
/// control characters, and none of the characters nginx reads as syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfPath(String);

impl ConfPath {
    /// The path.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Joins a relative, already-safe file name (used for generated names under a directory).
    #[must_use]
    pub fn join(&self, name: &Slugish) -> ConfPath {
        let mut s = self.0.clone();
        if !s.ends_with('/') {
            s.push('/');
        }
        s.push_str(name.as_str());
        ConfPath(s)
    }

    /// Resolves `value` (absolute, or relative to `base`) into a normalised absolute path.
    /// With `confine`, the result must stay inside `base`.
    pub fn resolve(base: &ConfPath, value: &str, confine: bool) -> Result<ConfPath, ValueError> {
        if value.is_empty() {
            return Err(ValueError::Empty);
        }
        check_nginx_safe(value)?;
        let joined = base.as_path().join(value);
        let normal = normalize(&joined).ok_or(ValueError::Shape(
            "climbs above the filesystem root with `..`",
        ))?;
        if confine && !normal.starts_with(base.as_path()) {
            return Err(ValueError::Shape(
                "escapes its base directory with `..` or an absolute path",
            ));
        }
        let s = normal
            .to_str()
            .ok_or(ValueError::Shape("is not valid UTF-8"))?;
        Ok(ConfPath(s.to_owned()))
    }
}

/// A file name built only from slugs, dots and fixed suffixes (`backstage.jazzclub.club-a.ini`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slugish(String);

impl Slugish {
    /// Builds a generated name from slug parts joined with `.` and a fixed suffix.
    pub fn new(parts: &[&Slug], suffix: &'static str) -> Self {
        let mut s = String::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(p.as_str());
        }
        s.push_str(suffix);
        Slugish(s)
    }

    /// [`Slugish::new`] with an instance id between the parts and the suffix.
    pub fn with_instance(parts: &[&Slug], id: Option<&InstanceId>, suffix: &'static str) -> Self {
        let mut s = Self::new(parts, "");
        if let Some(id) = id {
            s.0.push('.');
            s.0.push_str(id.as_str());
        }
        s.0.push_str(suffix);
        s
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which copy of a Sess a vassal runs: the first eight hex digits of the SHA-256 of what the
/// vassal says. A Sess whose settings change gets a new id, so its new copy can start beside the
/// running one (blue/green); an unchanged Sess keeps its id and is never touched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// How many hex digits an id has.
    pub const LEN: usize = 8;

    /// The id of a vassal whose instance-independent content is `content`.
    pub fn of_content(content: &[u8]) -> InstanceId {
        use sha2::{Digest, Sha256};
        use std::fmt::Write as _;
        let hash = Sha256::digest(content);
        let mut s = String::with_capacity(Self::LEN);
        for b in &hash[..Self::LEN / 2] {
            let _ = write!(s, "{b:02x}");
        }
        InstanceId(s)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(InstanceId(s.to_owned()))
        } else {
            Err(ValueError::Shape(
                "an instance id is eight lowercase hex digits",
            ))
        }
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lexical normalisation: removes `.` and resolves `..` without touching the filesystem.
/// `None` when `..` climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

impl FromStr for ConfPath {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if !s.starts_with('/') {
            return Err(ValueError::Shape("must be an absolute path"));
        }
        check_nginx_safe(s)?;
        let normal = normalize(Path::new(s)).ok_or(ValueError::Shape(
            "climbs above the filesystem root with `..`",
        ))?;
        Ok(ConfPath(normal.to_str().unwrap_or(s).to_owned()))
    }
}

impl TryFrom<String> for ConfPath {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        value.parse()
    }
}

impl From<ConfPath> for String {
    fn from(value: ConfPath) -> String {
        value.0
    }
}

impl fmt::Display for ConfPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_newtype!(
    /// A URL path where a Gig is mounted: `/`, or `/seg` or `/seg/seg` with no trailing slash,
    /// no `.`/`..` segments, and only characters that need no quoting in nginx.
    UrlPath
);

impl UrlPath {
    /// The root mount, `/`.
    pub fn root() -> Self {
        UrlPath("/".to_owned())
    }

    /// Whether this is the root mount.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }
}

/// Checks the characters and segments of a URL path; `trailing` says whether it must end in `/`.
fn check_url_path(s: &str, trailing: Option<bool>) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if !s.starts_with('/') {
        return Err(ValueError::Shape("a URL path starts with `/`"));
    }
    if s.len() > 1024 {
        return Err(ValueError::TooLong {
            len: s.len(),
            max: 1024,
        });
    }
    for (index, ch) in s.char_indices() {
        let ok = ch.is_ascii_alphanumeric() || "/-._~%!*+,:@=&".contains(ch);
        if !ok {
            return Err(ValueError::BadChar {
                what: "character",
                ch,
                index,
                why: "URL paths use unreserved characters; percent-encode the rest",
            });
        }
    }
    let inner = s.trim_matches('/');
    if !inner.is_empty() {
        for seg in inner.split('/') {
            if seg.is_empty() {
                return Err(ValueError::Shape("has an empty segment (`//`)"));
            }
            if seg == "." || seg == ".." {
                return Err(ValueError::Shape("has a `.` or `..` segment"));
            }
        }
    }
    match trailing {
        Some(true) if !s.ends_with('/') => Err(ValueError::Shape(
            "a static URL prefix ends with `/` (`/static/`)",
        )),
        Some(false) if s.len() > 1 && s.ends_with('/') => Err(ValueError::Shape(
            "a mount point has no trailing `/` (`/blog`, not `/blog/`)",
        )),
        _ => Ok(()),
    }
}

impl FromStr for UrlPath {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_url_path(s, Some(false))?;
        Ok(UrlPath(s.to_owned()))
    }
}

string_newtype!(
    /// A URL prefix served from a directory (`/static/`): a URL path that ends with `/`.
    UrlPrefix
);

impl FromStr for UrlPrefix {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_url_path(s, Some(true))?;
        if s == "/" {
            return Err(ValueError::Shape(
                "`/` would serve every URL from the directory; use a prefix such as `/static/`",
            ));
        }
        Ok(UrlPrefix(s.to_owned()))
    }
}

string_newtype!(
    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 bytes.
    EnvKey
);

impl FromStr for EnvKey {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.len() > 128 {
            return Err(ValueError::TooLong {
                len: s.len(),
                max: 128,
            });
        }
        for (index, ch) in s.char_indices() {
            let ok = ch == '_' || ch.is_ascii_alphabetic() || (index > 0 && ch.is_ascii_digit());
            if !ok {
                return Err(ValueError::BadChar {
                    what: if index == 0 {
                        "first character"
                    } else {
                        "character"
                    },
                    ch,
                    index,
                    why: "variable names use `A-Z`, `a-z`, `0-9` and `_`, not starting with a digit",
                });
            }
        }
        Ok(EnvKey(s.to_owned()))
    }
}

string_newtype!(
    /// A value written into a uWSGI ini file: any text without a line break or NUL. A `%` in it
    /// is written as `%%` by the renderer, never interpreted, and the renderer also defuses
    /// uWSGI's `$(ENV)` and `@(file)` expansions. Two things uWSGI offers no escape for are
    /// rejected: `%(` (uWSGI expands `%(option)` placeholders, and even evaluates arithmetic in
    /// them, after reading the file) and leading or trailing whitespace (the ini reader strips it).
    IniValue
);

impl FromStr for IniValue {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_ini_safe(s)?;
        if let Some(index) = s.find("%(") {
            return Err(ValueError::BadChar {
                what: "character",
                ch: '(',
                index: index + 1,
                why: "uWSGI expands `%(name)` placeholders in every value and has no escape for them",
            });
        }
        if let Some((index, ch)) = s
            .char_indices()
            .next()
            .filter(|(_, c)| c.is_whitespace())
            .or_else(|| {
                s.char_indices()
                    .next_back()
                    .filter(|(_, c)| c.is_whitespace())
            })
        {
            return Err(ValueError::BadChar {
                what: "character",
                ch,
                index,
                why: "uWSGI's ini reader strips leading and trailing whitespace from values",
            });
        }
        if s.len() > 4096 {
            return Err(ValueError::TooLong {
                len: s.len(),
                max: 4096,
            });
        }
        Ok(IniValue(s.to_owned()))
    }
}

string_newtype!(
    /// A uWSGI option name for `extra`: `[a-z0-9][a-z0-9-]*`.
    UwsgiOption
);

/// Options Backstage writes itself, or that a vassal must never have.
const RESERVED_UWSGI_OPTIONS: &[(&str, &str)] = &[
    (
        "daemonize",
        "a vassal must not daemonize: the Emperor would lose it",
    ),
    (
        "daemonize2",
        "a vassal must not daemonize: the Emperor would lose it",
    ),
    ("strict", "Backstage always sets `strict`"),
    ("master", "Backstage always sets `master`"),
    ("socket", "set the Sess' `socket` instead"),
    ("uwsgi-socket", "set the Sess' `socket` instead"),
    ("http-socket", "set the Sess' `socket` instead"),
    ("chdir", "set the Act's `root` instead"),
    ("module", "set the Act's `wsgi` instead"),
    ("wsgi", "set the Act's `wsgi` instead"),
    ("virtualenv", "set the Stage's `virtualenv` instead"),
    ("home", "set the Stage's `virtualenv` instead"),
    ("processes", "set the Sess' `processes` instead"),
    ("workers", "set the Sess' `processes` instead"),
    ("threads", "set the Sess' `threads` instead"),
    ("stats", "Backstage sets the stats socket"),
    ("master-fifo", "Backstage sets the master FIFO"),
    ("pidfile", "Backstage sets the pidfile"),
    ("env", "set the Act's `env` table instead"),
    ("uid", "set the Sess' `uid` instead"),
    ("gid", "set the Sess' `gid` instead"),
    ("harakiri", "set the Sess' `harakiri` instead"),
    ("max-requests", "set the Sess' `max_requests` instead"),
    ("buffer-size", "set the Sess' `buffer_size` instead"),
    ("listen", "set the Sess' `listen` instead"),
    ("vacuum", "Backstage always sets `vacuum`"),
    ("need-app", "Backstage always sets `need-app`"),
    ("logto", "Backstage sets the log file"),
    ("ini", "including other files would bypass validation"),
    ("include", "including other files would bypass validation"),
    ("inherit", "including other files would bypass validation"),
];

impl UwsgiOption {
    /// Why this option may not appear in `extra`, if it may not.
    pub fn reserved_reason(name: &str) -> Option<&'static str> {
        RESERVED_UWSGI_OPTIONS
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, why)| *why)
    }
}

impl FromStr for UwsgiOption {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        if s.len() > 64 {
            return Err(ValueError::TooLong {
                len: s.len(),
                max: 64,
            });
        }
        for (index, ch) in s.char_indices() {
            let ok = ch.is_ascii_lowercase() || ch.is_ascii_digit() || (index > 0 && ch == '-');
            if !ok {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index,
                    why: "uWSGI option names use `a-z`, `0-9` and `-`",
                });
            }
        }
        if let Some(why) = Self::reserved_reason(s) {
            return Err(ValueError::Shape(why));
        }
        Ok(UwsgiOption(s.to_owned()))
    }
}

string_newtype!(
    /// A dotted Python module path: `club.settings`.
    PyModule
);

fn check_py_dotted(s: &str) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if s.len() > 256 {
        return Err(ValueError::TooLong {
            len: s.len(),
            max: 256,
        });
    }
    let mut start = 0;
    for part in s.split('.') {
        let mut chars = part.char_indices();
        match chars.next() {
            None => {
                return Err(ValueError::Shape(
                    "has an empty part (`..`, or a leading or trailing `.`)",
                ));
            }
            Some((i, ch)) if !(ch == '_' || ch.is_ascii_alphabetic()) => {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index: start + i,
                    why: "Python names start with a letter or `_`",
                });
            }
            Some(_) => {}
        }
        for (i, ch) in chars {
            if !(ch == '_' || ch.is_ascii_alphanumeric()) {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index: start + i,
                    why: "Python names use `A-Z`, `a-z`, `0-9` and `_`",
                });
            }
        }
        start += part.len() + 1;
    }
    Ok(())
}

impl FromStr for PyModule {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_py_dotted(s)?;
        Ok(PyModule(s.to_owned()))
    }
}

/// The WSGI entry point: `module.path:callable`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WsgiTarget {
    module: PyModule,
    callable: String,
}

impl WsgiTarget {
    /// The module (`club.wsgi`).
    pub fn module(&self) -> &PyModule {
        &self.module
    }

    /// The callable (`application`).
    pub fn callable(&self) -> &str {
        &self.callable
    }
}

impl fmt::Display for WsgiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.callable)
    }
}

impl FromStr for WsgiTarget {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let Some((module, callable)) = s.split_once(':') else {
            return Err(ValueError::Shape(
                "expected `module.path:callable` (e.g. `club.wsgi:application`)",
            ));
        };
        let module = module.parse::<PyModule>()?;
        if callable.contains('.') {
            return Err(ValueError::Shape("the callable is a single Python name"));
        }
        check_py_dotted(callable).map_err(|e| match e {
            ValueError::BadChar {
                what,
                ch,
                index,
                why,
            } => ValueError::BadChar {
                what,
                ch,
                index: index + module.as_str().len() + 1,
                why,
            },
            ValueError::Empty => ValueError::Shape("the callable after `:` is missing"),
            other => other,
        })?;
        Ok(WsgiTarget {
            module,
            callable: callable.to_owned(),
        })
    }
}

string_newtype!(
    /// A Unix user or group name (or numeric id) a Sess runs as in system mode.
    Account
);

impl FromStr for Account {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_name(
            s,
            32,
            |index, ch| {
                ch.is_ascii_alphanumeric() || ch == '_' || (index > 0 && matches!(ch, '-' | '.'))
            },
            "user and group names use `a-z`, `0-9`, `_`, `-` and `.`",
        )?;
        Ok(Account(s.to_owned()))
    }
}

/// A name of at most `max` bytes, not empty, each character passing `ok(index, ch)`.
fn check_name(
    s: &str,
    max: usize,
    ok: impl Fn(usize, char) -> bool,
    why: &'static str,
) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    if s.len() > max {
        return Err(ValueError::TooLong { len: s.len(), max });
    }
    match s.char_indices().find(|(i, c)| !ok(*i, *c)) {
        Some((index, ch)) => Err(ValueError::BadChar {
            what: "character",
            ch,
            index,
            why,
        }),
        None => Ok(()),
    }
}

string_newtype!(
    /// A uWSGI plugin name (`python3`, `python311`): what `plugins = ...` loads from the
    /// Emperor's plugin directory.
    PluginName
);

impl FromStr for PluginName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        check_name(
            s,
            32,
            |_, ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_',
            "uWSGI plugin names use `a-z`, `0-9` and `_`",
        )?;
        Ok(PluginName(s.to_owned()))
    }
}

string_newtype!(
    /// A program name or path (the Stage's `python`), without shell or config metacharacters.
    Program
);

impl FromStr for Program {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        for (index, ch) in s.char_indices() {
            let ok = ch.is_ascii_alphanumeric() || "/._-+".contains(ch);
            if !ok {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index,
                    why: "a program is a name or path of `A-Z`, `a-z`, `0-9`, `/`, `.`, `_`, `-`, `+`",
                });
            }
        }
        Ok(Program(s.to_owned()))
    }
}

string_newtype!(
    /// An `http://` or `https://` URL for an API (the Producer's PowerDNS server).
    ApiUrl
);

impl FromStr for ApiUrl {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .ok_or(ValueError::Shape("expected an `http://` or `https://` URL"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(ValueError::Shape("the URL has no host"));
        }
        for (i, ch) in s.char_indices() {
            if ch.is_control() || ch.is_whitespace() || ch == '"' || ch == '\\' {
                return Err(ValueError::BadChar {
                    what: "character",
                    ch,
                    index: i,
                    why: "URLs carry no whitespace, quotes or control characters",
                });
            }
        }
        Ok(ApiUrl(s.trim_end_matches('/').to_owned()))
    }
}

/// A parsed IP address list entry for the Producer.
pub fn parse_ip(s: &str) -> Result<IpAddr, ValueError> {
    s.parse::<IpAddr>()
        .map_err(|_| ValueError::Shape("expected an IPv4 or IPv6 address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        assert!("jazzclub".parse::<Slug>().is_ok());
        assert!("club-a2".parse::<Slug>().is_ok());
        assert!("a".repeat(32).parse::<Slug>().is_ok());
        assert_eq!(
            "a".repeat(33).parse::<Slug>(),
            Err(ValueError::TooLong { len: 33, max: 32 })
        );
        assert!(matches!(
            "Club".parse::<Slug>(),
            Err(ValueError::BadChar { index: 0, .. })
        ));
        assert!(matches!(
            "9club".parse::<Slug>(),
            Err(ValueError::BadChar { index: 0, .. })
        ));
        assert!(matches!(
            "club_a".parse::<Slug>(),
            Err(ValueError::BadChar { index: 4, .. })
        ));
        assert_eq!("".parse::<Slug>(), Err(ValueError::Empty));
    }

    #[test]
    fn server_names() {
        for ok in [
            "jazz.localhost",
            "*.jazz.example.com",
            "localhost",
            "a-b.c1",
        ] {
            assert!(ok.parse::<ServerName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "*.",
            "jazz..localhost",
            ".jazz",
            "jazz.",
            "-a.com",
            "a-.com",
            "Jazz.com",
            "a.*.com",
            "**.a",
            "a b",
            "jazz.localhost;",
            "a_b.com",
        ] {
            assert!(bad.parse::<ServerName>().is_err(), "{bad}");
        }
        assert!(
            format!("{}.com", "a".repeat(64))
                .parse::<ServerName>()
                .is_err()
        );
    }

    #[test]
    fn listen_addrs() {
        assert_eq!("8080".parse::<ListenAddr>(), Ok(ListenAddr::Port(8080)));
        assert!(
            matches!("[::1]:8080".parse::<ListenAddr>(), Ok(ListenAddr::Socket(a)) if a.is_ipv6())
        );
        assert!("127.0.0.1:0".parse::<ListenAddr>().is_err());
        assert!("0".parse::<ListenAddr>().is_err());
        assert!("70000".parse::<ListenAddr>().is_err());
        assert!("localhost:80".parse::<ListenAddr>().is_err());
        let any: ListenAddr = "8080".parse().unwrap();
        let one: ListenAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(any.overlaps(&one));
        assert!(!one.overlaps(&"127.0.0.2:8080".parse().unwrap()));
    }

    #[test]
    fn socket_specs() {
        assert_eq!("unix".parse::<SocketSpec>(), Ok(SocketSpec::UnixDefault));
        assert!(matches!(
            "127.0.0.1:9001".parse::<SocketSpec>(),
            Ok(SocketSpec::Tcp(_))
        ));
        assert!(matches!(
            "[::1]:9001".parse::<SocketSpec>(),
            Ok(SocketSpec::Tcp(_))
        ));
        assert!("0.0.0.0:9001".parse::<SocketSpec>().is_err());
        assert!("unix:relative.sock".parse::<SocketSpec>().is_err());
        assert!(matches!(
            "unix:/run/a.sock".parse::<SocketSpec>(),
            Ok(SocketSpec::UnixPath(_))
        ));
        assert!("unix:/run/a;b.sock".parse::<SocketSpec>().is_err());
    }

    #[test]
    fn conf_paths() {
        let base: ConfPath = "/srv/site".parse().unwrap();
        assert_eq!(
            ConfPath::resolve(&base, "club/static", true)
                .unwrap()
                .as_str(),
            "/srv/site/club/static"
        );
        assert_eq!(
            ConfPath::resolve(&base, "./a/../b", true).unwrap().as_str(),
            "/srv/site/b"
        );
        assert!(ConfPath::resolve(&base, "../etc", true).is_err());
        assert!(ConfPath::resolve(&base, "/etc", true).is_err());
        assert_eq!(
            ConfPath::resolve(&base, "../other", false)
                .unwrap()
                .as_str(),
            "/srv/other"
        );
        assert!(ConfPath::resolve(&base, "a\nb", false).is_err());
        assert!(ConfPath::resolve(&base, "a$b", false).is_err());
        assert!(ConfPath::resolve(&base, "a{b", false).is_err());
        assert!("/../..".parse::<ConfPath>().is_err());
    }

    #[test]
    fn url_paths() {
        assert!("/".parse::<UrlPath>().is_ok());
        assert!("/blog".parse::<UrlPath>().is_ok());
        assert!("/blog/x".parse::<UrlPath>().is_ok());
        for bad in [
            "", "blog", "/blog/", "/a//b", "/a/../b", "/a b", "/a;b", "/a{", "/$x",
        ] {
            assert!(bad.parse::<UrlPath>().is_err(), "{bad}");
        }
        assert!("/static/".parse::<UrlPrefix>().is_ok());
        assert!("/static".parse::<UrlPrefix>().is_err());
        assert!("/".parse::<UrlPrefix>().is_err());
    }

    #[test]
    fn ini_values_and_env() {
        assert!("100% off".parse::<IniValue>().is_ok());
        assert!("$(HOME) @(/etc/shadow) %d".parse::<IniValue>().is_ok());
        assert!("%(asctime)s".parse::<IniValue>().is_err());
        assert!("100%%(x)".parse::<IniValue>().is_err());
        assert!(" padded".parse::<IniValue>().is_err());
        assert!("padded\t".parse::<IniValue>().is_err());
        assert!("".parse::<IniValue>().is_ok());
        assert!("a\nb".parse::<IniValue>().is_err());
        assert!("a\rb".parse::<IniValue>().is_err());
        assert!("DJANGO_DEBUG".parse::<EnvKey>().is_ok());
        assert!("1X".parse::<EnvKey>().is_err());
        assert!("A-B".parse::<EnvKey>().is_err());
    }

    #[test]
    fn uwsgi_options() {
        assert!("harakiri-verbose".parse::<UwsgiOption>().is_ok());
        assert!("daemonize".parse::<UwsgiOption>().is_err());
        assert!("Bad".parse::<UwsgiOption>().is_err());
        assert!("-x".parse::<UwsgiOption>().is_err());
    }

    #[test]
    fn wsgi_targets() {
        let t: WsgiTarget = "club.wsgi:application".parse().unwrap();
        assert_eq!(t.module().as_str(), "club.wsgi");
        assert_eq!(t.callable(), "application");
        for bad in [
            "club.wsgi",
            "club.wsgi:",
            ":app",
            "club..wsgi:app",
            "club.wsgi:a.b",
            "club-x:app",
            "c:1a",
        ] {
            assert!(bad.parse::<WsgiTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_lowercase_and_name_the_char() {
        let e = "club;x".parse::<Slug>().unwrap_err().to_string();
        assert_eq!(
            e,
            "character `;` at byte 4 is not allowed (names use only `a-z`, `0-9` and `-`)"
        );
        let e = "a\nb".parse::<IniValue>().unwrap_err().to_string();
        assert!(e.starts_with("character `\\n` at byte 1"), "{e}");
    }
}

/// The largest request body nginx accepts for a Venue (`client_max_body_size`), in nginx's
/// size syntax: a number of bytes, or of kibibytes, mebibytes or gibibytes with a `k`, `m` or
/// `g` suffix (`64m`). `0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodySize {
    number: u64,
    unit: Option<char>,
}

impl BodySize {
    /// nginx's default for a Venue that does not set it: large enough for ordinary uploads,
    /// small enough that one client cannot fill the disk with a single request.
    pub const DEFAULT: BodySize = BodySize {
        number: 64,
        unit: Some('m'),
    };

    /// The size in bytes (0: no limit).
    pub fn bytes(&self) -> u64 {
        // Cannot overflow: `from_str` checked it.
        self.number << unit_shift(self.unit)
    }
}

/// log2 of a size unit's bytes.
fn unit_shift(unit: Option<char>) -> u32 {
    match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some(_) => 30,
    }
}

impl fmt::Display for BodySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)?;
        match self.unit {
            Some(u) => write!(f, "{u}"),
            None => Ok(()),
        }
    }
}

impl FromStr for BodySize {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        const SHAPE: &str = "expected a number of bytes with an optional `k`, `m` or `g` suffix (`64m`), or `0` for no limit";
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        let (digits, unit) = match s.char_indices().last() {
            Some((i, c)) if matches!(c, 'k' | 'K' | 'm' | 'M' | 'g' | 'G') => {
                (&s[..i], Some(c.to_ascii_lowercase()))
            }
            _ => (s, None),
        };
        if let Some((index, ch)) = digits.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(ValueError::BadChar {
                what: "character",
                ch,
                index,
                why: SHAPE,
            });
        }
        if digits.is_empty() {
            return Err(ValueError::Shape(SHAPE));
        }
        let size = BodySize {
            number: digits.parse().map_err(|_| ValueError::Shape(SHAPE))?,
            unit,
        };
        // nginx keeps sizes in an off_t: a signed 64-bit count of bytes.
        if size.number > (i64::MAX as u64) >> unit_shift(unit) {
            return Err(ValueError::Shape("larger than nginx can count (8 EiB)"));
        }
        Ok(size)
    }
}

impl TryFrom<String> for BodySize {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        value.parse()
    }
}

//! Secrets: environment values that must never be written or printed outside a private file.
//!
//! They come from an Act's `env_file` (a dotenv file the operator keeps) and from Backstage's
//! own store, `<state_dir>/secrets/<act>.env` (mode 0600, written by `backstage env set`), both
//! parsed with `dotenvy`. A [`SecretValue`] prints as `<secret>` in `Debug` and `Display`, and
//! no error of this module carries a value or the text of a line: only keys and line numbers.
//!
//! A Sess reads its secrets at start from an envdir (one file per variable, read by uWSGI's
//! `envdir` option), which the Production Manager writes; the vassal names the envdir only.
//! uWSGI reads an envdir file raw (no `%`, `$(…)` or `@(…)` expansion) but strips trailing
//! whitespace and stops at a NUL, and an empty file unsets the variable: [`SecretValue`]
//! refuses what would not arrive intact, and empty values are passed in the vassal itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::values::EnvKey;

/// Largest dotenv file read (an `env_file` or the store).
pub const DOTENV_MAX_BYTES: u64 = 1024 * 1024;

/// A secret environment value. Never shown: `Debug` and `Display` print `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Checks that the value reaches the app intact through an envdir (see the module docs).
    pub fn new(value: String) -> Result<SecretValue, &'static str> {
        if value.contains('\0') {
            return Err("a NUL byte cannot be in an environment value");
        }
        if value.ends_with([' ', '\t', '\r', '\n']) {
            return Err("uWSGI strips trailing whitespace from a secret: remove it");
        }
        Ok(SecretValue(value))
    }

    /// The value itself: for the environment of a process or the private envdir, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Display for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// An Act's secrets, with an id that changes exactly when one of them does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Secrets {
    /// Key → value: the `env_file`'s, overridden by the store's.
    pub values: BTreeMap<EnvKey, SecretValue>,
    /// A salted digest of the values (see [`Secrets::with_id`]): it names the envdir, so a
    /// changed secret is a changed vassal, and reveals nothing without the salt.
    pub id: String,
}

impl Secrets {
    /// `values` with their id: the first 16 hex digits of SHA-256 over `salt` and the values.
    pub fn with_id(values: BTreeMap<EnvKey, SecretValue>, salt: &[u8]) -> Secrets {
        let mut h = Sha256::new();
        h.update(salt);
        for (k, v) in &values {
            h.update(k.as_str().as_bytes());
            h.update([0]);
            h.update(v.0.as_bytes());
            h.update([0]);
        }
        let id = h.finalize().iter().take(8).fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Secrets { values, id }
    }

    /// Whether there is nothing to pass.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Why a dotenv file (an `env_file` or the store) was refused. Never carries a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The file could not be read or written.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a regular file, or is too large.
    #[error("`{}` {why}", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A line is not dotenv syntax (its text is not repeated: it may hold a secret).
    #[error(
        "line {line}: not `KEY=VALUE` dotenv syntax (unbalanced quote, bad escape, or a space in an unquoted value)"
    )]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A key is not a valid environment variable name.
    #[error("line {line}: invalid variable name `{key}`: {why}")]
    BadKey {
        /// 1-based line number.
        line: usize,
        /// The key, shortened.
        key: String,
        /// Why.
        why: String,
    },
    /// A value cannot reach the app intact.
    #[error("line {line}: the value of `{key}` cannot be used: {why}")]
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
    },
    /// The file is not UTF-8.
    #[error("not UTF-8 text (line {line})")]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
    },
}

/// Parses dotenv text (as `dotenvy` reads it, `$NAME` expanding to earlier entries or the
/// environment), each key checked, each value a [`SecretValue`]. Later entries win.
pub fn parse_dotenv(bytes: &[u8]) -> Result<BTreeMap<EnvKey, SecretValue>, SecretsError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SecretsError::NotUtf8 {
        line: line_of_offset(bytes, e.valid_up_to()),
    })?;
    let mut out = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(dotenvy::Error::LineParse(line, _)) => {
                return Err(SecretsError::Syntax {
                    line: line_of_text(text, &line),
                });
            }
            Err(_) => return Err(SecretsError::Syntax { line: 0 }),
        };
        let line = line_of_key(text, &key);
        let env_key = key.parse::<EnvKey>().map_err(|e| SecretsError::BadKey {
            line,
            key: key.chars().take(40).collect(),
            why: e.to_string(),
        })?;
        let value = SecretValue::new(value).map_err(|why| SecretsError::BadValue {
            line,
            key: key.clone(),
            why,
        })?;
        out.insert(env_key, value);
    }
    Ok(out)
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .split(|b| *b == b'\n')
        .count()
}

/// The line holding `needle` (the part of a line dotenvy reports: the value, or the whole
/// line); 0 when it cannot be found.
fn line_of_text(text: &str, needle: &str) -> usize {
    let first = needle.trim().lines().next().unwrap_or("").trim();
    text.lines()
        .position(|l| !first.is_empty() && l.contains(first))
        .map_or(0, |i| i + 1)
}

/// The last line assigning `key` (`KEY=`, `export KEY=`, spaces allowed); 0 when not found.
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .last()
        .map_or(0, |(i, _)| i + 1)
}

/// One `KEY=VALUE` line that [`parse_dotenv`] reads back as exactly `value`: double-quoted,
/// with `\\`, `\"`, `\$` and line breaks escaped (dotenvy reads a backslash as an escape even
/// inside single quotes, so those are no simpler).
pub fn dotenv_line(key: &EnvKey, value: &SecretValue) -> String {
    let v = value.expose();
    let mut out = format!("{key}=\"");
    for c in v.chars() {
        match c {
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push_str("\"\n");
    out
}

/// Reads a dotenv file: a regular file of at most [`DOTENV_MAX_BYTES`]. Errors name the file
/// and a line, never a value.
pub fn read_dotenv(path: &Path) -> Result<BTreeMap<EnvKey, SecretValue>, SecretsError> {
    let io = |action| {
        let path = path.to_owned();
        move |source| SecretsError::Io {
            action,
            path,
            source,
        }
    };
    let meta = fs::metadata(path).map_err(io("read"))?;
    if !meta.is_file() {
        return Err(SecretsError::NotAFile {
            path: path.to_owned(),
            why: "is not a regular file",
        });
    }
    if meta.len() > DOTENV_MAX_BYTES {
        return Err(SecretsError::NotAFile {
            path: path.to_owned(),
            why: "is over the 1 MiB limit on dotenv files",
        });
    }
    let bytes = fs::read(path).map_err(io("read"))?;
    parse_dotenv(&bytes)
}

/// Backstage's own store of an Act's secrets: `<state_dir>/secrets/<act>.env`, mode 0600 in a
/// 0700 directory (0711 in system mode, where each Sess' account passes through to its envdir).
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
    path: PathBuf,
}

impl SecretStore {
    /// The store of `act` in `state_dir`.
    pub fn new(state_dir: &Path, act: &str) -> SecretStore {
        let dir = secrets_dir(state_dir);
        SecretStore {
            path: dir.join(format!("{act}.env")),
            dir,
        }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it holds; empty when it does not exist yet.
    pub fn load(&self) -> Result<BTreeMap<EnvKey, SecretValue>, SecretsError> {
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            _ => read_dotenv(&self.path).map_err(|e| match e {
                SecretsError::Io { .. } | SecretsError::NotAFile { .. } => e,
                other => SecretsError::Io {
                    action: "read the secret store",
                    path: self.path.clone(),
                    source: io::Error::other(other.to_string()),
                },
            }),
        }
    }

    /// Sets `key` (replacing its value).
    pub fn set(&self, key: EnvKey, value: SecretValue) -> Result<(), SecretsError> {
        let mut all = self.load()?;
        all.insert(key, value);
        self.save(&all)
    }

    /// Removes `key`; `false` when it was not there.
    pub fn unset(&self, key: &EnvKey) -> Result<bool, SecretsError> {
        let mut all = self.load()?;
        let had = all.remove(key).is_some();
        if had {
            self.save(&all)?;
        }
        Ok(had)
    }

    fn save(&self, all: &BTreeMap<EnvKey, SecretValue>) -> Result<(), SecretsError> {
        private_dir(&self.dir)?;
        let mut text = String::from(
            "# Backstage's secret store: `backstage env ACT set|unset|list`. Mode 0600.\n",
        );
        for (k, v) in all {
            text.push_str(&dotenv_line(k, v));
        }
        write_private(&self.path, text.as_bytes())
    }
}

/// `<state_dir>/secrets`: the stores, the salt and the Sess' envdirs.
pub fn secrets_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets")
}

/// The salt of the Production's secret ids (`<state_dir>/secrets/salt`, 32 random bytes, mode
/// 0600), made on first use.
pub fn salt(state_dir: &Path) -> Result<Vec<u8>, SecretsError> {
    let dir = secrets_dir(state_dir);
    let path = dir.join("salt");
    match fs::read(&path) {
        Ok(b) if b.len() == 32 => return Ok(b),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SecretsError::Io {
                action: "read",
                path,
                source,
            });
        }
    }
    private_dir(&dir)?;
    let mut salt = vec![0u8; 32];
    let read = fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read as _;
        f.read_exact(&mut salt)
    });
    read.map_err(|source| SecretsError::Io {
        action: "read",
        path: PathBuf::from("/dev/urandom"),
        source,
    })?;
    write_private(&path, &salt)?;
    Ok(salt)
}

/// Creates `dir` (and its parents) if missing; `dir` itself gets mode 0700 when created.
fn private_dir(dir: &Path) -> Result<(), SecretsError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|source| SecretsError::Io {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(SecretsError::Io {
            action: "create",
            path: dir.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes `content` to `path` atomically, mode 0600 from the start (never readable by others,
/// not even for an instant).
pub fn write_private(path: &Path, content: &[u8]) -> Result<(), SecretsError> {
    crate::files::place(path, content, None, Some(crate::files::Access::PRIVATE)).map_err(|e| {
        match e {
            crate::files::FileError::Io {
                action,
                path,
                source,
            } => SecretsError::Io {
                action,
                path,
                source,
            },
            other => SecretsError::Io {
                action: "write",
                path: path.to_owned(),
                source: io::Error::other(other.to_string()),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn key(s: &str) -> EnvKey {
        s.parse().unwrap()
    }

    #[test]
    fn parses_dotenv_and_hides_values_in_errors() {
        let text = b"# c\nA=1\nexport B='x y'\nC=\"q\\\"$A.\"\n";
        let m = parse_dotenv(text).unwrap();
        assert_eq!(m[&key("A")].expose(), "1");
        assert_eq!(m[&key("B")].expose(), "x y");
        assert_eq!(m[&key("C")].expose(), "q\"1.");
        assert_eq!(format!("{:?}", m[&key("A")]), "<secret>");
        let e = parse_dotenv(b"A=1\nB=\"hunter2\n").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_dotenv(b"A=1\n\nB=hunter2 x\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "line 3: not `KEY=VALUE` dotenv syntax (unbalanced quote, bad escape, or a space in an unquoted value)"
        );
        let e = parse_dotenv(b"A='hunter2 '\n").unwrap_err().to_string();
        assert!(e.contains("`A`") && !e.contains("hunter2"), "{e}");
        let e = parse_dotenv(b"A-B=hunter2\n").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_store_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path(), "club");
        assert!(store.load().unwrap().is_empty());
        let v = SecretValue::new("it's $HOME \"100%\" \\n\nend".into()).unwrap();
        store.set(key("SECRET_KEY"), v.clone()).unwrap();
        store
            .set(key("PLAIN"), SecretValue::new("x".into()).unwrap())
            .unwrap();
        let back = store.load().unwrap();
        assert_eq!(back[&key("SECRET_KEY")], v);
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(dir.path().join("secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        assert!(store.unset(&key("PLAIN")).unwrap());
        assert!(!store.unset(&key("PLAIN")).unwrap());
        assert_eq!(store.load().unwrap().len(), 1);
    }

    #[test]
    fn ids_change_with_values_and_salt() {
        let mut m = BTreeMap::new();
        m.insert(key("A"), SecretValue::new("1".into()).unwrap());
        let a = Secrets::with_id(m.clone(), b"salt");
        assert_eq!(a.id.len(), 16);
        assert_ne!(a.id, Secrets::with_id(m.clone(), b"pepper").id);
        m.insert(key("A"), SecretValue::new("2".into()).unwrap());
        assert_ne!(a.id, Secrets::with_id(m, b"salt").id);
    }

    proptest! {
        // Untrusted bytes: never a panic, and an error never repeats a value.
        #[test]
        fn any_bytes_parse_or_fail_without_the_value(
            lines in proptest::collection::vec("[A-Za-z_ ='\"\\\\$#{}\n\t-]{0,12}", 0..6),
            secret in "[a-z]{12}",
        ) {
            let text = lines.iter().fold(String::new(), |mut t, l| {
                let _ = writeln!(t, "{l}{secret}");
                t
            });
            if let Err(e) = parse_dotenv(text.as_bytes()) {
                prop_assert!(!e.to_string().contains(&secret));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_dotenv(&bytes);
        }

        // What the store writes reads back exactly.
        #[test]
        fn dotenv_lines_round_trip(value in "[^\\x00\\r]{0,40}") {
            prop_assume!(SecretValue::new(value.clone()).is_ok());
            let v = SecretValue::new(value.clone()).unwrap();
            let line = dotenv_line(&key("K"), &v);
            let back = parse_dotenv(line.as_bytes()).unwrap();
            prop_assert_eq!(back[&key("K")].expose(), value.as_str());
        }
    }
}

//! `backstage.toml`: finding it, reading it, and the validation pass that turns it into a
//! [`Production`] or reports every problem in it at once.
//!
//! The TOML is parsed by the `toml` crate into a spanned tree; this module walks that tree
//! with the schema of SPEC §1, so that an unknown key, a wrong type and an invalid value are
//! all reported together, each at its exact location, instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::error::Error;
use crate::model::{
    Acme, Act, ApiKey, DEFAULT_KEEP_RELEASES, Gig, Health, Layout, Media, Mode, Producer,
    Production, Sess, SessSocket, Stage, Tls, Tuning, UNIX_SOCKET_PATH_MAX, Venue,
};
use crate::problem::{Problem, TomlPath};
use crate::source::{KEY_PARTS_MAX, deep_keys, read_bounded, utf8_source};
use crate::suggest::suggest;
use crate::values::{
    Account, ApiUrl, BodySize, ConfPath, EnvKey, IniValue, ListenAddr, PluginName, Program,
    PyModule, ServerName, Slug, SocketSpec, UrlPath, UrlPrefix, UwsgiOption, ValueError,
    WsgiTarget, parse_ip,
};

mod across;
mod act;
mod venue;

use venue::RawVenue;

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "backstage.toml";

/// A manifest's text and where it came from. Reading it writes nothing.
#[derive(Debug, Clone)]
pub struct Manifest {
    path: PathBuf,
    base_dir: PathBuf,
    source: String,
}

impl Manifest {
    /// Reads the manifest at `path`: a regular file (a symlink to one is fine) of at most
    /// [`MANIFEST_MAX_BYTES`](crate::MANIFEST_MAX_BYTES), in UTF-8. Anything else is refused
    /// without blocking.
    pub fn read(path: &Path) -> Result<Manifest, Error> {
        let bytes = read_bounded(path)?;
        let source = utf8_source(path, bytes)?;
        let absolute = std::path::absolute(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = absolute.parent().unwrap_or(Path::new("/"));
        let base_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        Ok(Manifest {
            path: path.to_owned(),
            base_dir,
            source,
        })
    }

    /// Finds `backstage.toml` in `start` or its nearest parent, and reads it.
    pub fn discover(start: &Path) -> Result<Manifest, Error> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
        for dir in start.ancestors() {
            let candidate = dir.join(MANIFEST_NAME);
            if candidate.is_file() {
                return Manifest::read(&candidate);
            }
        }
        Err(Error::ManifestNotFound { start })
    }

    /// A manifest from bytes, as if they were read from a file at `path`: refused when they are
    /// not UTF-8, with the offset, line and column of the first invalid byte.
    pub fn from_bytes(path: PathBuf, base_dir: PathBuf, bytes: Vec<u8>) -> Result<Manifest, Error> {
        let source = utf8_source(&path, bytes)?;
        Ok(Manifest::from_source(path, base_dir, source))
    }

    /// A manifest from text, as if it were a file at `path`; relative paths in it resolve
    /// against `base_dir`.
    pub fn from_source(path: PathBuf, base_dir: PathBuf, source: String) -> Manifest {
        Manifest {
            path,
            base_dir,
            source,
        }
    }

    /// Where the manifest was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory relative paths resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The manifest's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Validates the manifest; every problem, in file order. Empty when it is valid.
    pub fn check(&self) -> Vec<Problem> {
        match self.parse() {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// Validates the manifest and builds the Production, or returns every problem found.
    pub fn parse(&self) -> Result<Production, Vec<Problem>> {
        let (doc, syntax) = DeTable::parse_recoverable(&self.source);
        let mut ck = Checker {
            src: &self.source,
            problems: Vec::new(),
        };
        if !syntax.is_empty() {
            let mut deep = Vec::new().into_iter();
            if syntax.iter().any(|e| e.span().is_none()) {
                deep = deep_keys(&self.source).into_iter();
            }
            for e in syntax {
                let message = e.message().trim().replace('\n', "; ");
                // The `toml` crate refuses a too-deep dotted key without saying where.
                let (span, hint) = match e.span() {
                    Some(span) => (span, None),
                    None => (
                        deep.next().unwrap_or(0..0),
                        Some(format!("a dotted key has at most {KEY_PARTS_MAX} parts")),
                    ),
                };
                ck.report_at(
                    &TomlPath::default(),
                    span,
                    format!("invalid TOML: {message}"),
                    hint,
                );
            }
            return Err(ck.finish());
        }
        let root_span = doc.span();
        let root = Tbl::new(TomlPath::default(), doc.get_ref(), root_span);
        let production = build(&mut ck, root, &self.base_dir);
        match production {
            Some(mut p) if ck.problems.is_empty() => {
                p.manifest_file = match self.path.file_name() {
                    Some(name) => self.base_dir.join(name),
                    None => self.path.clone(),
                };
                Ok(p)
            }
            _ => Err(ck.finish()),
        }
    }

    /// Validates and builds, as an [`Error`] on failure.
    pub fn load(&self) -> Result<Production, Error> {
        self.parse().map_err(|problems| Error::Invalid {
            path: self.path.clone(),
            problems,
        })
    }
}

impl Production {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Production, Error> {
        Manifest::read(path)?.load()
    }
}

/// Collects problems while the tree is walked.
struct Checker<'s> {
    src: &'s str,
    problems: Vec<Problem>,
}

type Val<'i> = Spanned<DeValue<'i>>;

impl Checker<'_> {
    fn report_at(
        &mut self,
        path: &TomlPath,
        span: Range<usize>,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem::new(
            self.src,
            path.to_string(),
            span,
            message,
            hint,
        ));
    }

    fn report(&mut self, path: &TomlPath, span: Range<usize>, message: impl Into<String>) {
        self.report_at(path, span, message.into(), None);
    }

    fn finish(mut self) -> Vec<Problem> {
        self.problems
            .sort_by(|a, b| (a.span.start, &a.path).cmp(&(b.span.start, &b.path)));
        self.problems.dedup();
        self.problems
    }

    fn type_error(&mut self, path: &TomlPath, v: &Val<'_>, expected: &str) {
        let found = v.get_ref().type_str();
        self.report(
            path,
            v.span(),
            format!("expected {expected}, found {found}"),
        );
    }

    fn string<'v>(&mut self, path: &TomlPath, v: &'v Val<'_>) -> Option<&'v str> {
        if let Some(s) = v.get_ref().as_str() {
            Some(s)
        } else {
            self.type_error(path, v, "a string");
            None
        }
    }

    /// A string parsed into a validated type; `what` names it in the message.
    fn parsed<T: FromStr<Err = ValueError>>(
        &mut self,
        path: &TomlPath,
        v: &Val<'_>,
        what: &str,
    ) -> Option<T> {
        let s = self.string(path, v)?;
        match s.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.report(
                    path,
                    v.span(),
                    format!("invalid {what} `{}`: {e}", shorten(s)),
                );
                None
            }
        }
    }

    fn int(&mut self, path: &TomlPath, v: &Val<'_>, min: i64, max: i64) -> Option<i64> {
        let Some(i) = v.get_ref().as_integer() else {
            self.type_error(path, v, "an integer");
            return None;
        };
        let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
        let (neg, digits) = match digits.strip_prefix('-') {
            Some(d) => (true, d.to_owned()),
            None => (false, digits.trim_start_matches('+').to_owned()),
        };
        let parsed = i64::from_str_radix(&digits, i.radix()).map(|n| if neg { -n } else { n });
        match parsed {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.report(
                    path,
                    v.span(),
                    ValueError::OutOfRange { value: n, min, max }.to_string(),
                );
                None
            }
            Err(_) => {
                self.report(
                    path,
                    v.span(),
                    format!("integer out of range; allowed: {min} to {max}"),
                );
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, path: &TomlPath, v: &'a Val<'i>) -> Option<Tbl<'a, 'i>> {
        if let Some(t) = v.get_ref().as_table() {
            Some(Tbl::new(path.clone(), t, v.span()))
        } else {
            self.type_error(path, v, "a table");
            None
        }
    }

    fn array<'a, 'i>(&mut self, path: &TomlPath, v: &'a Val<'i>) -> Option<&'a DeArray<'i>> {
        if let Some(a) = v.get_ref().as_array() {
            Some(a)
        } else {
            self.type_error(path, v, "an array");
            None
        }
    }

    /// A string or an array of strings, each parsed.
    fn one_or_many<T: FromStr<Err = ValueError>>(
        &mut self,
        path: &TomlPath,
        v: &Val<'_>,
        what: &str,
    ) -> Option<Vec<(T, Range<usize>, TomlPath)>> {
        if v.get_ref().is_str() {
            return self
                .parsed(path, v, what)
                .map(|t| vec![(t, v.span(), path.clone())]);
        }
        let arr = self.array(path, v)?;
        if arr.is_empty() {
            self.report(path, v.span(), format!("needs at least one {what}"));
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in arr.iter().enumerate() {
            let p = path.index(i);
            match self.parsed(&p, item, what) {
                Some(t) => out.push((t, item.span(), p)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn shorten(s: &str) -> String {
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() > 60 {
        let cut: String = escaped.chars().take(57).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// A table being read: remembers which keys were used so that the rest can be reported.
struct Tbl<'a, 'i> {
    path: TomlPath,
    map: &'a DeTable<'i>,
    span: Range<usize>,
    used: BTreeSet<&'a str>,
}

impl<'a, 'i> Tbl<'a, 'i> {
    fn new(path: TomlPath, map: &'a DeTable<'i>, span: Range<usize>) -> Self {
        Tbl {
            path,
            map,
            span,
            used: BTreeSet::new(),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<(&'a Val<'i>, TomlPath)> {
        let (k, v) = self.map.get_key_value(key)?;
        self.used.insert(k.get_ref().as_ref());
        Some((v, self.path.key(key)))
    }

    fn required(
        &mut self,
        ck: &mut Checker<'_>,
        key: &'static str,
    ) -> Option<(&'a Val<'i>, TomlPath)> {
        let found = self.get(key);
        if found.is_none() {
            let what = if self.path.to_string().is_empty() {
                "the manifest".to_owned()
            } else {
                format!("`{}`", self.path)
            };
            ck.report_at(
                &self.path.key(key),
                self.span.clone(),
                format!("missing required key `{key}` in {what}"),
                None,
            );
        }
        found
    }

    /// Every entry, for tables keyed by name.
    fn entries(
        &mut self,
    ) -> Vec<(
        &'a Spanned<std::borrow::Cow<'i, str>>,
        &'a Val<'i>,
        TomlPath,
    )> {
        self.map
            .iter()
            .map(|(k, v)| {
                self.used.insert(k.get_ref().as_ref());
                (k, v, self.path.key(k.get_ref()))
            })
            .collect()
    }

    /// Reports every key not read, with a suggestion among `known`.
    fn finish(self, ck: &mut Checker<'_>, known: &[&str]) {
        for (k, _) in self.map {
            let key: &str = k.get_ref();
            if self.used.contains(key) {
                continue;
            }
            let hint = suggest(key, known.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| Some(format!("known keys here: {}", known.join(", "))));
            let where_ = if self.path.to_string().is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{}`", self.path)
            };
            ck.report_at(
                &self.path.key(key),
                k.span(),
                format!("unknown key `{key}` {where_}"),
                hint,
            );
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "production",
    "acts",
    "stages",
    "sess",
    "venues",
    "gigs",
    "producer",
    "acme",
];
const PRODUCTION_KEYS: &[&str] = &[
    "name",
    "mode",
    "state_dir",
    "run_dir",
    "log_dir",
    "vassal_dir",
    "nginx_dir",
    "nginx_enabled_dir",
    "nginx_conf",
    "uwsgi_plugins",
];
const ACT_KEYS: &[&str] = &[
    "root",
    "wsgi",
    "settings",
    "requirements",
    "static",
    "env",
    "release",
    "shared",
    "keep_releases",
    "health",
    "env_file",
    "media",
    "workers",
    "cron",
];
const WORKER_KEYS: &[&str] = &["command", "processes", "stop_signal", "stop_timeout"];
const CRON_KEYS: &[&str] = &["schedule", "command"];
const HEALTH_KEYS: &[&str] = &["path", "status"];
const STAGE_KEYS: &[&str] = &["virtualenv", "python"];
const SESS_KEYS: &[&str] = &[
    "act",
    "stage",
    "processes",
    "threads",
    "socket",
    "harakiri",
    "max_requests",
    "buffer_size",
    "listen",
    "uid",
    "gid",
    "extra",
];
const GIG_KEYS: &[&str] = &["venue", "sess", "path"];
const PRODUCER_KEYS: &[&str] = &["api_url", "api_key", "api_key_env", "address", "ttl"];

/// A name defined in the manifest, with where its key is.
struct Named<T> {
    name: Slug,
    key_span: Range<usize>,
    path: TomlPath,
    item: Option<T>,
}

/// The names a section defines, for references into it. A reference to a name whose definition
/// was already reported (an invalid name, a section of the wrong type or misspelled) is not
/// reported again: one mistake, one report.
#[derive(Default)]
struct Defined {
    names: BTreeSet<Slug>,
    invalid: BTreeSet<String>,
    broken: bool,
}

impl Defined {
    /// Whether a reference to `raw` has already been answered by another problem.
    fn already_reported(&self, raw: &str) -> bool {
        self.broken || self.invalid.contains(raw)
    }
}

/// Walks a name-keyed section (`[acts.*]`, …), checking each name and building each item.
fn section<'a, 'i, T>(
    ck: &mut Checker<'_>,
    root: &mut Tbl<'a, 'i>,
    key: &'static str,
    what: &str,
    mut build_one: impl FnMut(&mut Checker<'_>, Tbl<'a, 'i>, &Slug) -> Option<T>,
) -> (Vec<Named<T>>, Defined) {
    let mut out = Vec::new();
    let mut defined = Defined {
        broken: misspelled_sections(root).contains(key),
        ..Defined::default()
    };
    let Some((v, path)) = root.get(key) else {
        return (out, defined);
    };
    let Some(mut tbl) = ck.table(&path, v) else {
        defined.broken = true;
        return (out, defined);
    };
    for (k, v, p) in tbl.entries() {
        let name = match k.get_ref().parse::<Slug>() {
            Ok(n) => n,
            Err(e) => {
                ck.report(
                    &p,
                    k.span(),
                    format!("invalid {what} name `{}`: {e}", shorten(k.get_ref())),
                );
                defined.invalid.insert(k.get_ref().to_string());
                continue;
            }
        };
        defined.names.insert(name.clone());
        let Some(t) = ck.table(&p, v) else { continue };
        let item = build_one(ck, t, &name);
        out.push(Named {
            name,
            key_span: k.span(),
            path: p,
            item,
        });
    }
    (out, defined)
}

/// Sections that are absent but look misspelled by an unknown top-level key (`[venue.jazz]`).
fn misspelled_sections(root: &Tbl<'_, '_>) -> BTreeSet<&'static str> {
    root.map
        .keys()
        .filter(|k| !TOP_KEYS.contains(&k.get_ref().as_ref()))
        .filter_map(|k| suggest(k.get_ref(), TOP_KEYS.iter().copied()))
        .filter(|s| !root.map.contains_key(*s))
        .collect()
}

/// Checks that a reference names something in `defined`; reports an unknown one with a
/// suggestion.
fn reference(
    ck: &mut Checker<'_>,
    path: &TomlPath,
    v: &Val<'_>,
    defined: &Defined,
    what: &str,
    section: &str,
) -> Option<Slug> {
    if defined.already_reported(ck.string(path, v)?) {
        return None;
    }
    let name: Slug = ck.parsed(path, v, &format!("{what} name"))?;
    if defined.names.contains(&name) {
        return Some(name);
    }
    let defined = &defined.names;
    let hint = suggest(name.as_str(), defined.iter().map(Slug::as_str))
        .map(|s| format!("did you mean `{s}`?"))
        .or_else(|| {
            if defined.is_empty() {
                Some(format!("define it in a `[{section}.{name}]` table"))
            } else {
                let list: Vec<&str> = defined.iter().take(8).map(Slug::as_str).collect();
                Some(format!("defined: {}", list.join(", ")))
            }
        });
    ck.report_at(path, v.span(), format!("no {what} named `{name}`"), hint);
    None
}

fn build(ck: &mut Checker<'_>, mut root: Tbl<'_, '_>, base_dir: &Path) -> Option<Production> {
    let base = match base_dir.to_str().map(str::parse::<ConfPath>) {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            ck.report(
                &TomlPath::default(),
                0..0,
                format!(
                    "the manifest's directory `{}` cannot be written into configuration: {e}",
                    base_dir.display()
                ),
            );
            None
        }
        None => {
            ck.report(
                &TomlPath::default(),
                0..0,
                format!(
                    "the manifest's directory `{}` is not UTF-8",
                    base_dir.display()
                ),
            );
            None
        }
    };

    let production = match root.required(ck, "production") {
        Some((v, path)) => ck
            .table(&path, v)
            .and_then(|t| production_section(ck, t, base.as_ref())),
        None => None,
    };

    let (acts, act_names) = section(ck, &mut root, "acts", "Act", |ck, t, _| {
        act::act(ck, t, base.as_ref())
    });
    let (stages, stage_names) = section(ck, &mut root, "stages", "Stage", |ck, t, _| {
        stage(ck, t, base.as_ref())
    });
    let mode = production.as_ref().map(|p| p.1);
    let (sess, sess_names) = section(ck, &mut root, "sess", "Sess", |ck, t, _| {
        sess_section(ck, t, &act_names, &stage_names, mode)
    });
    let mode = mode.unwrap_or(Mode::User);
    let (venues, venue_names) = section(ck, &mut root, "venues", "Venue", |ck, t, _| {
        venue::venue(ck, t, mode, base.as_ref())
    });
    let (gigs, _) = section(ck, &mut root, "gigs", "Gig", |ck, t, _| {
        gig(ck, t, &venue_names, &sess_names)
    });
    let producer = root.get("producer").and_then(|(v, path)| {
        let t = ck.table(&path, v)?;
        producer_section(ck, t)
    });
    let acme = match root.get("acme") {
        None => Some(None),
        Some((v, path)) => ck
            .table(&path, v)
            .and_then(|t| venue::acme_section(ck, t, base.as_ref()))
            .map(Some),
    };
    root.finish(ck, TOP_KEYS);

    let (name, mode, layout, uwsgi_plugins) = production?;
    let resolved_sess = across::resolve_sockets(ck, &name, &layout, mode, sess);
    across::cross_checks(ck, &resolved_sess, &venues, &gigs, &acts);

    let acts = collect(acts)?;
    let stages = collect(stages)?;
    let sess = collect(resolved_sess)?;
    let venues: BTreeMap<Slug, Venue> = collect(venues)?
        .into_iter()
        .map(|(k, mut v)| {
            if let Some(tls) = v.venue.tls.as_mut().filter(|t| t.acme) {
                let live = Production::acme_live_dir(&layout, &k);
                tls.cert =
                    ConfPath::resolve(&live, "fullchain.pem", true).expect("a generated name");
                tls.key = ConfPath::resolve(&live, "key.pem", true).expect("a generated name");
            }
            (k, v.venue)
        })
        .collect();
    let acme = acme?;
    let acme = match acme {
        None if venues.values().any(Venue::is_acme) => Some(Acme::default()),
        other => other,
    };
    let gigs = collect(gigs)?
        .into_iter()
        .map(|(k, g)| (k, g.gig))
        .collect();
    Some(Production {
        name,
        mode,
        layout,
        acts,
        stages,
        sess,
        venues,
        gigs,
        producer,
        acme,
        manifest_file: PathBuf::new(),
        uwsgi_plugins,
        nginx_group: None,
    })
}

fn collect<T>(items: Vec<Named<T>>) -> Option<BTreeMap<Slug, T>> {
    items.into_iter().map(|n| Some((n.name, n.item?))).collect()
}

/// Resolves a directory key of `[production]`, or its default.
fn dir_key(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    base: &ConfPath,
    key: &'static str,
    default: impl FnOnce() -> ConfPath,
) -> Option<ConfPath> {
    let Some((v, path)) = t.get(key) else {
        return Some(default());
    };
    let s = ck.string(&path, v)?;
    // A relative state dir stays inside the manifest's directory; absolute paths are deliberate.
    let confine = !s.starts_with('/');
    match ConfPath::resolve(base, s, confine) {
        Ok(p) => Some(p),
        Err(e) => {
            ck.report(
                &path,
                v.span(),
                format!("invalid directory `{}`: {e}", shorten(s)),
            );
            None
        }
    }
}

fn production_section(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    base: Option<&ConfPath>,
) -> Option<(Slug, Mode, Layout, Option<Vec<PluginName>>)> {
    let name = t
        .required(ck, "name")
        .and_then(|(v, p)| ck.parsed::<Slug>(&p, v, "Production name"));
    let mode = match t.get("mode") {
        None => Some(Mode::User),
        Some((v, p)) => match ck.string(&p, v) {
            Some("user") => Some(Mode::User),
            Some("system") => Some(Mode::System),
            Some(other) => {
                ck.report_at(
                    &p,
                    v.span(),
                    format!("invalid mode `{}`", shorten(other)),
                    Some("expected `user` or `system`".to_owned()),
                );
                None
            }
            None => None,
        },
    };
    let (Some(base), Some(mode_v)) = (base, mode) else {
        t.finish(ck, PRODUCTION_KEYS);
        return None;
    };
    let fixed = |s: String| s.parse::<ConfPath>().expect("built-in paths are valid");
    let prod_name = name
        .clone()
        .unwrap_or_else(|| "invalid".parse().expect("valid slug"));
    let state_dir = dir_key(ck, &mut t, base, "state_dir", || match mode_v {
        Mode::User => fixed(format!("{base}/.backstage")),
        Mode::System => fixed(format!("/var/lib/backstage/{prod_name}")),
    });
    let layout = state_dir.and_then(|state| {
        let run_dir = dir_key(ck, &mut t, base, "run_dir", || match mode_v {
            Mode::User => fixed(format!("{state}/run")),
            Mode::System => fixed(format!("/run/backstage/{prod_name}")),
        });
        let log_dir = dir_key(ck, &mut t, base, "log_dir", || match mode_v {
            Mode::User => fixed(format!("{state}/log")),
            Mode::System => fixed(format!("/var/log/backstage/{prod_name}")),
        });
        let vassal_dir = dir_key(ck, &mut t, base, "vassal_dir", || match mode_v {
            Mode::User => fixed(format!("{state}/vassals")),
            Mode::System => fixed("/etc/uwsgi-emperor/vassals".to_owned()),
        });
        let nginx_dir = dir_key(ck, &mut t, base, "nginx_dir", || match mode_v {
            Mode::User => fixed(format!("{state}/nginx")),
            Mode::System => fixed("/etc/nginx/sites-available".to_owned()),
        });
        let enabled = match (mode_v, t.get("nginx_enabled_dir")) {
            (Mode::User, Some((v, p))) => {
                ck.report_at(
                    &p,
                    v.span(),
                    "`nginx_enabled_dir` applies to system mode only".to_owned(),
                    Some("user mode writes a complete nginx.conf under `nginx_dir`".to_owned()),
                );
                None
            }
            (Mode::User, None) => Some(None),
            (Mode::System, Some((v, p))) => {
                let s = ck.string(&p, v)?;
                match ConfPath::resolve(base, s, !s.starts_with('/')) {
                    Ok(d) => Some(Some(d)),
                    Err(e) => {
                        ck.report(
                            &p,
                            v.span(),
                            format!("invalid directory `{}`: {e}", shorten(s)),
                        );
                        None
                    }
                }
            }
            (Mode::System, None) => Some(Some(fixed("/etc/nginx/sites-enabled".to_owned()))),
        };
        let nginx_conf = match (mode_v, t.get("nginx_conf")) {
            (_, None) => Some(None),
            (Mode::User, Some((v, p))) => {
                ck.report_at(
                    &p,
                    v.span(),
                    "`nginx_conf` applies to system mode only".to_owned(),
                    Some("user mode writes its own nginx.conf under `nginx_dir`".to_owned()),
                );
                None
            }
            (Mode::System, Some((v, p))) => {
                let s = ck.string(&p, v)?;
                match ConfPath::resolve(base, s, !s.starts_with('/')) {
                    Ok(d) => Some(Some(d)),
                    Err(e) => {
                        ck.report(&p, v.span(), format!("invalid file `{}`: {e}", shorten(s)));
                        None
                    }
                }
            }
        };
        Some(Layout {
            base_dir: base.clone(),
            state_dir: state,
            run_dir: run_dir?,
            log_dir: log_dir?,
            vassal_dir: vassal_dir?,
            nginx_dir: nginx_dir?,
            nginx_enabled_dir: enabled?,
            nginx_conf: nginx_conf?,
        })
    });
    let plugins = match t.get("uwsgi_plugins") {
        None => Some(None),
        // `[]` says the Emperor is a monolithic build that needs no plugin.
        Some((v, _)) if v.get_ref().as_array().is_some_and(|a| a.is_empty()) => {
            Some(Some(Vec::new()))
        }
        Some((v, p)) => ck
            .one_or_many::<PluginName>(&p, v, "uWSGI plugin name")
            .map(|ps| Some(ps.into_iter().map(|(n, _, _)| n).collect())),
    };
    // "May not climb out" holds for where the directories really lead, not only as written.
    for e in layout.iter().flat_map(Layout::escapes) {
        let span = t
            .map
            .get(e.key)
            .map_or_else(|| t.span.clone(), Spanned::span);
        ck.report_at(
            &t.path.key(e.key),
            span,
            format!(
                "`{}` `{}` leads out of the manifest's directory through a symlink, to `{}`",
                e.key,
                e.dir.display(),
                e.leads_to.display()
            ),
            Some(format!(
                "make it a real directory, or write the absolute path `{}` if it belongs there",
                e.leads_to.display()
            )),
        );
    }
    t.finish(ck, PRODUCTION_KEYS);
    Some((name?, mode?, layout?, plugins?))
}

fn path_in(
    ck: &mut Checker<'_>,
    path: &TomlPath,
    v: &Val<'_>,
    base: &ConfPath,
    confine: bool,
    what: &str,
) -> Option<ConfPath> {
    let s = ck.string(path, v)?;
    match ConfPath::resolve(base, s, confine) {
        Ok(p) => Some(p),
        Err(e) => {
            ck.report(
                path,
                v.span(),
                format!("invalid {what} `{}`: {e}", shorten(s)),
            );
            None
        }
    }
}

fn stage(ck: &mut Checker<'_>, mut t: Tbl<'_, '_>, base: Option<&ConfPath>) -> Option<Stage> {
    let virtualenv = match (t.required(ck, "virtualenv"), base) {
        (Some((v, p)), Some(base)) => path_in(ck, &p, v, base, false, "virtualenv directory"),
        _ => None,
    };
    let python = match t.get("python") {
        None => Some("python3".parse::<Program>().expect("valid program")),
        Some((v, p)) => ck.parsed::<Program>(&p, v, "Python program"),
    };
    t.finish(ck, STAGE_KEYS);
    Some(Stage {
        virtualenv: virtualenv?,
        python: python?,
    })
}

/// A Sess as read, before its socket path is resolved against the layout.
struct RawSess {
    sess: Sess,
    socket: SocketSpec,
    socket_span: Option<(Range<usize>, TomlPath)>,
}

fn opt_int<T: TryFrom<i64>>(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    key: &'static str,
    min: i64,
    max: i64,
) -> Option<Option<T>> {
    match t.get(key) {
        None => Some(None),
        Some((v, p)) => ck
            .int(&p, v, min, max)
            .map(|n| Some(T::try_from(n).ok().expect("range checked"))),
    }
}

fn sess_section(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    acts: &Defined,
    stages: &Defined,
    mode: Option<Mode>,
) -> Option<RawSess> {
    let act = t
        .required(ck, "act")
        .and_then(|(v, p)| reference(ck, &p, v, acts, "Act", "acts"));
    let stage = t
        .required(ck, "stage")
        .and_then(|(v, p)| reference(ck, &p, v, stages, "Stage", "stages"));
    let processes = opt_int::<u16>(ck, &mut t, "processes", 1, 512);
    let threads = opt_int::<u16>(ck, &mut t, "threads", 1, 512);
    let (socket, socket_span) = match t.get("socket") {
        None => (Some(SocketSpec::UnixDefault), None),
        Some((v, p)) => (
            ck.parsed::<SocketSpec>(&p, v, "socket"),
            Some((v.span(), p)),
        ),
    };
    let harakiri = opt_int::<u32>(ck, &mut t, "harakiri", 1, 86_400);
    let max_requests = opt_int::<u32>(ck, &mut t, "max_requests", 1, 100_000_000);
    // uWSGI's buffer-size is 16 bits on the wire; nginx's default header buffers need 4096.
    let buffer_size = opt_int::<u16>(ck, &mut t, "buffer_size", 4096, 65535);
    let listen = opt_int::<u32>(ck, &mut t, "listen", 1, 65535);
    let mut account = |t: &mut Tbl<'_, '_>, key: &'static str| -> Option<Option<Account>> {
        match (t.get(key), mode) {
            (None, _) => Some(None),
            (Some((v, p)), Some(Mode::User)) => {
                ck.report_at(
                    &p,
                    v.span(),
                    format!("`{key}` applies to system mode only"),
                    Some("in user mode a Sess runs as the user running Backstage".to_owned()),
                );
                None
            }
            (Some((v, p)), _) => ck.parsed::<Account>(&p, v, "account").map(Some),
        }
    };
    let uid = account(&mut t, "uid");
    let gid = account(&mut t, "gid");
    if mode == Some(Mode::System) && matches!(uid, Some(None)) {
        ck.report_at(&t.path.key("uid"), t.span.clone(), format!("a Sess in system mode needs `uid` (and `gid`): `{}` would run as root", t.path),
            Some("name the account it runs as, e.g. `uid = \"www-data\"`; write `uid = \"root\"` to run as root on purpose".to_owned()));
    }
    let extra = match t.get("extra") {
        None => Some(BTreeMap::new()),
        Some((v, p)) => ck.table(&p, v).and_then(|mut et| {
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (k, v, kp) in et.entries() {
                let key = match k.get_ref().parse::<UwsgiOption>() {
                    Ok(x) => Some(x),
                    Err(e) => {
                        ck.report(
                            &kp,
                            k.span(),
                            format!("invalid uWSGI option `{}`: {e}", shorten(k.get_ref())),
                        );
                        None
                    }
                };
                let value = match v.get_ref() {
                    DeValue::Integer(_) => ck
                        .int(&kp, v, i64::MIN, i64::MAX)
                        .map(|n| n.to_string().parse::<IniValue>().expect("digits")),
                    DeValue::Boolean(b) => Some(b.to_string().parse::<IniValue>().expect("bool")),
                    _ => ck.parsed::<IniValue>(&kp, v, "uWSGI option value"),
                };
                match (key, value) {
                    (Some(k), Some(v)) => {
                        out.insert(k, v);
                    }
                    _ => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    t.finish(ck, SESS_KEYS);
    Some(RawSess {
        sess: Sess {
            act: act?,
            stage: stage?,
            processes: processes?.unwrap_or(2),
            threads: threads?.unwrap_or(1),
            socket: SessSocket::Tcp(SocketAddr::from(([127, 0, 0, 1], 1))),
            tuning: Tuning {
                harakiri: harakiri?,
                max_requests: max_requests?,
                buffer_size: buffer_size?,
                listen: listen?,
                uid: uid?,
                gid: gid?,
                extra: extra?,
            },
            restarts: 0,
        },
        socket: socket?,
        socket_span,
    })
}

/// A Gig as read, with spans for the collision checks.
struct RawGig {
    gig: Gig,
    venue_span: (Range<usize>, TomlPath),
    path_span: (Range<usize>, TomlPath),
}

fn gig(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    venues: &Defined,
    sess: &Defined,
) -> Option<RawGig> {
    let venue_entry = t.required(ck, "venue");
    let venue = venue_entry
        .clone()
        .and_then(|(v, p)| reference(ck, &p, v, venues, "Venue", "venues"));
    let venue_span = venue_entry.map_or((t.span.clone(), t.path.key("venue")), |(v, p)| {
        (v.span(), p)
    });
    let booked = t.required(ck, "sess").and_then(|(v, p)| {
        let mut out: Vec<(Slug, u16)> = Vec::new();
        let mut ok = true;
        let mut push = |ck: &mut Checker<'_>,
                        name: Option<Slug>,
                        weight: Option<u16>,
                        span: Range<usize>,
                        p: &TomlPath| {
            match (name, weight) {
                (Some(n), Some(w)) => {
                    if out.iter().any(|(o, _)| *o == n) {
                        ck.report(p, span, format!("Sess `{n}` is booked twice in this Gig"));
                        ok = false;
                    } else {
                        out.push((n, w));
                    }
                }
                _ => ok = false,
            }
        };
        if v.get_ref().is_table() {
            let mut wt = ck.table(&p, v)?;
            for (k, wv, kp) in wt.entries() {
                let name = match k.get_ref().parse::<Slug>() {
                    Ok(_) if sess.already_reported(k.get_ref()) => None,
                    Ok(n) if sess.names.contains(&n) => Some(n),
                    Ok(n) => {
                        let hint = suggest(n.as_str(), sess.names.iter().map(Slug::as_str))
                            .map(|s| format!("did you mean `{s}`?"));
                        ck.report_at(&kp, k.span(), format!("no Sess named `{n}`"), hint);
                        None
                    }
                    Err(e) => {
                        ck.report(
                            &kp,
                            k.span(),
                            format!("invalid Sess name `{}`: {e}", shorten(k.get_ref())),
                        );
                        None
                    }
                };
                let weight = ck
                    .int(&kp, wv, 1, 1000)
                    .map(|w| u16::try_from(w).expect("range checked"));
                push(ck, name, weight, k.span(), &kp);
            }
            if wt.map.is_empty() {
                ck.report(&p, v.span(), "a Gig needs at least one Sess");
                return None;
            }
        } else {
            let arr = ck.array(&p, v)?;
            if arr.is_empty() {
                ck.report(&p, v.span(), "a Gig needs at least one Sess");
                return None;
            }
            for (i, item) in arr.iter().enumerate() {
                let ip = p.index(i);
                let name = reference(ck, &ip, item, sess, "Sess", "sess");
                push(ck, name, Some(1), item.span(), &ip);
            }
        }
        ok.then_some(out)
    });
    let (path, path_span) = match t.get("path") {
        None => (Some(UrlPath::root()), (t.span.clone(), t.path.key("path"))),
        Some((v, p)) => (ck.parsed::<UrlPath>(&p, v, "mount path"), (v.span(), p)),
    };
    t.finish(ck, GIG_KEYS);
    Some(RawGig {
        gig: Gig {
            venue: venue?,
            sess: booked?,
            path: path?,
        },
        venue_span,
        path_span,
    })
}

fn producer_section(ck: &mut Checker<'_>, mut t: Tbl<'_, '_>) -> Option<Producer> {
    let api_url = t
        .required(ck, "api_url")
        .and_then(|(v, p)| ck.parsed::<ApiUrl>(&p, v, "API URL"));
    let inline = t.get("api_key");
    let env = t.get("api_key_env");
    let api_key = match (inline, env) {
        (Some((v, p)), None) => ck.string(&p, v).and_then(|s| {
            if s.is_empty() || s.chars().any(char::is_control) {
                ck.report(
                    &p,
                    v.span(),
                    "invalid API key: empty, or has control characters",
                );
                None
            } else {
                Some(ApiKey::Inline(s.to_owned()))
            }
        }),
        (None, Some((v, p))) => ck
            .parsed::<EnvKey>(&p, v, "environment variable name")
            .map(ApiKey::Env),
        (Some(_), Some((v, p))) => {
            ck.report(&p, v.span(), "set `api_key_env` or `api_key`, not both");
            None
        }
        (None, None) => {
            ck.report_at(
                &t.path.key("api_key_env"),
                t.span.clone(),
                "missing `api_key_env` (or `api_key`) in `producer`".to_owned(),
                Some("name the environment variable holding the PowerDNS API key".to_owned()),
            );
            None
        }
    };
    let addresses = t.required(ck, "address").and_then(|(v, p)| {
        let list: Vec<(&Val<'_>, TomlPath)> = match v.get_ref() {
            DeValue::Array(a) => a.iter().enumerate().map(|(i, x)| (x, p.index(i))).collect(),
            _ => vec![(v, p.clone())],
        };
        if list.is_empty() {
            ck.report(&p, v.span(), "needs at least one address");
            return None;
        }
        let mut out: Vec<IpAddr> = Vec::new();
        let mut ok = true;
        for (x, xp) in list {
            match ck.string(&xp, x).map(parse_ip) {
                Some(Ok(ip)) if !out.contains(&ip) => out.push(ip),
                Some(Ok(ip)) => {
                    ck.report(&xp, x.span(), format!("address `{ip}` appears twice"));
                    ok = false;
                }
                Some(Err(e)) => {
                    ck.report(&xp, x.span(), format!("invalid address: {e}"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    });
    let ttl = match t.get("ttl") {
        None => Some(300),
        Some((v, p)) => ck
            .int(&p, v, 1, 604_800)
            .map(|n| u32::try_from(n).expect("range checked")),
    };
    t.finish(ck, PRODUCER_KEYS);
    Some(Producer {
        api_url: api_url?,
        api_key: api_key?,
        addresses: addresses?,
        ttl: ttl?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(src: &str) -> Manifest {
        Manifest::from_source(
            PathBuf::from("backstage.toml"),
            PathBuf::from("/srv/jazz"),
            src.to_owned(),
        )
    }

    const MINIMAL: &str = r#"
[production]
name = "jazzclub"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"

[stages.local]
virtualenv = ".backstage/venv"

[sess.club-a]
act = "club"
stage = "local"

[venues.jazz]
server_names = ["jazz.localhost"]

[gigs.home]
venue = "jazz"
sess = ["club-a"]
"#;

    #[test]
    fn minimal_manifest_builds_with_defaults() {
        let p = manifest(MINIMAL).parse().unwrap();
        assert_eq!(p.name.as_str(), "jazzclub");
        assert_eq!(p.mode, Mode::User);
        assert_eq!(p.layout.state_dir.as_str(), "/srv/jazz/.backstage");
        assert_eq!(p.layout.vassal_dir.as_str(), "/srv/jazz/.backstage/vassals");
        let s = &p.sess[&"club-a".parse::<Slug>().unwrap()];
        assert_eq!((s.processes, s.threads), (2, 1));
        assert_eq!(
            s.socket.to_string(),
            "unix:/srv/jazz/.backstage/run/backstage.jazzclub.club-a.sock"
        );
        let v = &p.venues[&"jazz".parse::<Slug>().unwrap()];
        assert_eq!(
            v.listen,
            vec!["127.0.0.1:8080".parse::<ListenAddr>().unwrap()]
        );
        let g = &p.gigs[&"home".parse::<Slug>().unwrap()];
        assert!(g.path.is_root());
    }

    #[test]
    fn acme_venues_get_their_pair_under_the_state_dir_and_bad_acme_input_is_named() {
        let with = |tls: &str, extra: &str| {
            let mut m = MINIMAL.replace(
                "server_names = [\"jazz.localhost\"]",
                &format!("server_names = [\"jazz.localhost\"]\ntls = {tls}"),
            );
            m.push_str(extra);
            m
        };
        let jazz: Slug = "jazz".parse().unwrap();
        let p = manifest(&with("{ acme = true }", "")).parse().unwrap();
        let tls = p.venues[&jazz].tls.as_ref().unwrap();
        assert!(tls.acme && !tls.pending);
        assert!(
            tls.cert.as_str().ends_with("/acme/jazz/live/fullchain.pem"),
            "{}",
            tls.cert
        );
        assert!(
            tls.key.as_str().ends_with("/acme/jazz/live/key.pem"),
            "{}",
            tls.key
        );
        assert!(tls.cert.as_path().starts_with(p.layout.state_dir.as_path()));
        // No `[acme]`: Let's Encrypt's production directory.
        assert_eq!(
            p.acme.as_ref().unwrap().directory.as_str(),
            crate::LETS_ENCRYPT_DIRECTORY
        );
        let p = manifest(&with(
            "{ acme = true }",
            "\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\nemail = \"ops@jazz.example\"\n",
        ))
        .parse()
        .unwrap();
        let acme = p.acme.unwrap();
        assert_eq!(acme.directory.as_str(), "https://127.0.0.1:14000/dir");
        assert_eq!(acme.email.as_deref(), Some("ops@jazz.example"));

        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "{ acme = true, cert = \"c.pem\" }",
                "",
                "venues.jazz.tls.cert",
                "`cert` and `acme = true` exclude each other",
            ),
            (
                "{ acme = \"yes\" }",
                "",
                "venues.jazz.tls.acme",
                "expected a boolean (`acme = true`), found string",
            ),
            (
                "{ acme = true }",
                "\n[acme]\ndirectory = \"http://ca.example/dir\"\n",
                "acme.directory",
                "an ACME directory is served over `https://` (RFC 8555)",
            ),
            (
                "{ acme = true }",
                "\n[acme]\nemail = \"ops at jazz\"\n",
                "acme.email",
                "invalid email address `ops at jazz`",
            ),
            (
                "{ acme = true }",
                "\n[acme]\nemial = \"ops@jazz.example\"\n",
                "acme.emial",
                "",
            ),
            (
                "{ acme = true }",
                "\n[acme]\neab = { kid = \"k\", hmac_key = \"no spaces\" }\n",
                "acme.eab.hmac_key",
                "the MAC key is base64url (`A-Z`, `a-z`, `0-9`, `-`, `_`): character 2 is not",
            ),
        ];
        for (tls, extra, path, message) in cases {
            let problems = manifest(&with(tls, extra)).check();
            assert_eq!(problems.len(), 1, "{tls} {extra}: {problems:?}");
            assert_eq!(problems[0].path.as_str(), *path, "{problems:?}");
            if !message.is_empty() {
                assert_eq!(problems[0].message, *message);
            }
        }
        // A wildcard cannot be validated over HTTP-01.
        let wild = MINIMAL.replace(
            "server_names = [\"jazz.localhost\"]",
            "server_names = [\"*.jazz.localhost\"]\ntls = { acme = true }",
        );
        let problems = manifest(&wild).check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path.as_str(), "venues.jazz.server_names[0]");
        assert!(
            problems[0].message.contains("DNS-01"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn hsts_is_off_unless_asked_and_must_be_a_boolean() {
        let tls = |extra: &str| {
            MINIMAL.replace(
                "server_names = [\"jazz.localhost\"]",
                &format!(
                    "server_names = [\"jazz.localhost\"]\ntls = {{ cert = \"c.pem\", key = \"k.pem\"{extra} }}"
                ),
            )
        };
        let jazz: Slug = "jazz".parse().unwrap();
        let p = manifest(&tls("")).parse().unwrap();
        assert!(!p.venues[&jazz].tls.as_ref().unwrap().hsts);
        let p = manifest(&tls(", hsts = true")).parse().unwrap();
        assert!(p.venues[&jazz].tls.as_ref().unwrap().hsts);
        let problems = manifest(&tls(", hsts = \"yes\"")).check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path.as_str(), "venues.jazz.tls.hsts");
        assert_eq!(
            problems[0].message,
            "expected a boolean (`hsts = true`), found string"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let src = MINIMAL
            .replace("name = \"jazzclub\"", "name = \"Jazz\"\nharikiri = 3")
            .replace("sess = [\"club-a\"]", "sess = [\"club-b\"]");
        let problems = manifest(&src).check();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "production.name",
                "production.harikiri",
                "gigs.home.sess[0]"
            ]
        );
        assert_eq!(problems[2].hint.as_deref(), Some("did you mean `club-a`?"));
        assert_eq!(problems[0].line, 3);
        assert_eq!(problems[0].column, 8);
    }

    #[test]
    fn typo_gets_a_suggestion() {
        let src = MINIMAL.replace("stage = \"local\"", "stage = \"local\"\nharikiri = 30");
        let problems = manifest(&src).check();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "sess.club-a.harikiri");
        assert_eq!(
            problems[0].hint.as_deref(),
            Some("did you mean `harakiri`?")
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let problems = manifest("[production\nname = 1").check();
        assert!(!problems.is_empty());
        assert_eq!(problems[0].line, 1);
        assert!(
            problems[0].message.starts_with("invalid TOML"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn workers_and_cron_jobs_are_read_and_checked() {
        let act = "wsgi = \"club.wsgi:application\"\n";
        let src = MINIMAL.replace(
            act,
            &format!("{act}[acts.club.workers.celery]\ncommand = \"celery -A club worker\"\nstop_signal = \"SIGINT\"\n[acts.club.cron.clear]\nschedule = \"17 3 * * *\"\ncommand = \"python manage.py clearsessions\"\n"),
        );
        let p = manifest(&src).parse().unwrap();
        let club = &p.acts[&"club".parse::<Slug>().unwrap()];
        let w = &club.workers[&"celery".parse::<Slug>().unwrap()];
        assert_eq!((w.processes, w.stop_signal.0, w.stop_timeout), (1, 2, 30));
        assert_eq!(club.cron.len(), 1);

        let bad = src.replace("17 3 * * *", "17 3 * 13 *").replace(
            "stop_signal = \"SIGINT\"",
            "stop_signal = \"SIGNOPE\"\nstop_timeot = 3",
        );
        let problems = manifest(&bad).check();
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert!(
            found.contains(&(
                "acts.club.cron.clear.schedule",
                "invalid schedule: month `13`: out of range; allowed: 1 to 12"
            )),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(p, m)| *p == "acts.club.workers.celery.stop_signal"
                    && m.starts_with("invalid stop_signal `SIGNOPE`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(p, _)| *p == "acts.club.workers.celery.stop_timeot"),
            "{found:?}"
        );

        // A worker needs a Sess of its Act (its Stage, account and secrets).
        let lonely = src.replace("act = \"club\"", "act = \"other\"").replace(
            "[stages.local]",
            "[acts.other]\nroot = \"club\"\nwsgi = \"club.wsgi:application\"\n\n[stages.local]",
        );
        let problems = manifest(&lonely).check();
        assert!(
            problems
                .iter()
                .any(|p| p.message == "Act `club` has workers or cron jobs but no Sess plays it"),
            "{problems:?}"
        );
    }
}

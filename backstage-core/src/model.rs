//! The domain: a Production and everything in it, as validated values.
//!
//! These structs are `#[non_exhaustive]`: outside this crate they can be read but not built, so
//! every `Production` a renderer sees has passed the whole validation pass of
//! [`Manifest::parse`](crate::Manifest::parse).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::values::{
    Account, ApiUrl, BodySize, ConfPath, EnvKey, IniValue, InstanceId, ListenAddr, PluginName,
    Program, PyModule, ServerName, Slug, Slugish, UrlPath, UrlPrefix, UwsgiOption, WsgiTarget,
};

/// Longest path the kernel accepts for a unix socket (`sun_path` is 108 bytes with its NUL).
pub const UNIX_SOCKET_PATH_MAX: usize = 107;

/// Whether Backstage runs its own Emperor and nginx, or drives the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Backstage starts and stops its own Emperor and nginx under the state dir.
    User,
    /// The system's uWSGI Emperor and nginx serve the Production.
    System,
}

/// Where every generated file and runtime artefact of a Production lives. All absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// The directory holding `backstage.toml`; relative manifest paths resolve against it.
    pub base_dir: ConfPath,
    /// Backstage's own state: journal, lock, and in user mode everything below.
    pub state_dir: ConfPath,
    /// Sockets, stats sockets, master FIFOs and pid files.
    pub run_dir: ConfPath,
    /// Log files of the Emperor, vassals and (user mode) nginx.
    pub log_dir: ConfPath,
    /// The Emperor's vassal directory.
    pub vassal_dir: ConfPath,
    /// Where nginx site files are written (user mode: also `nginx.conf`).
    pub nginx_dir: ConfPath,
    /// System mode: the directory of enabled-site links (`sites-enabled`).
    pub nginx_enabled_dir: Option<ConfPath>,
    /// System mode: the main configuration the system's nginx loads (`None`: nginx's own
    /// default, `/etc/nginx/nginx.conf` on Debian). `nginx -t` tests it with the candidates.
    pub nginx_conf: Option<ConfPath>,
}

/// A directory of a [`Layout`] that symlinks lead out of the manifest's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Escape {
    /// Its `[production]` key: `state_dir`, `vassal_dir`, ….
    pub key: &'static str,
    /// The directory, as the Layout has it.
    pub dir: std::path::PathBuf,
    /// Where it really leads.
    pub leads_to: std::path::PathBuf,
}

impl Layout {
    /// The directories that lie inside the manifest's directory as written but lead out of it
    /// through a symlink (`ln -s /etc .backstage`). A directory under an escaping state dir is
    /// not listed again. Reads the filesystem, writes nothing.
    pub fn escapes(&self) -> Vec<Escape> {
        let base = self.base_dir.as_path();
        let state = self.state_dir.as_path();
        let mut out = Vec::new();
        let dirs = [
            ("state_dir", &self.state_dir),
            ("run_dir", &self.run_dir),
            ("log_dir", &self.log_dir),
            ("vassal_dir", &self.vassal_dir),
            ("nginx_dir", &self.nginx_dir),
        ];
        let enabled = self
            .nginx_enabled_dir
            .iter()
            .map(|d| ("nginx_enabled_dir", d));
        for (key, dir) in dirs.into_iter().chain(enabled) {
            let dir = dir.as_path();
            if key != "state_dir"
                && dir.starts_with(state)
                && out.iter().any(|e: &Escape| e.key == "state_dir")
            {
                continue;
            }
            if let Some(leads_to) = crate::files::escapes_through_symlink(base, dir) {
                out.push(Escape {
                    key,
                    dir: dir.to_owned(),
                    leads_to,
                });
            }
        }
        out
    }
}

/// A Production: one Backstage instance and everything in it (one `backstage.toml`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Production {
    /// Its name; prefixes every generated name.
    pub name: Slug,
    /// User or system mode.
    pub mode: Mode,
    /// Where its files go.
    pub layout: Layout,
    /// Runnable Django projects.
    pub acts: BTreeMap<Slug, Act>,
    /// Environments Acts run in.
    pub stages: BTreeMap<Slug, Stage>,
    /// Acts playing on Stages: one uWSGI vassal each.
    pub sess: BTreeMap<Slug, Sess>,
    /// DNS namespaces served by nginx.
    pub venues: BTreeMap<Slug, Venue>,
    /// Acts booked at Venues: live sites.
    pub gigs: BTreeMap<Slug, Gig>,
    /// DNS management through PowerDNS, when configured.
    pub producer: Option<Producer>,
    /// The ACME CA, when a Venue has `tls = { acme = true }` (defaults when `[acme]` is absent).
    pub acme: Option<Acme>,
    /// The manifest it was read from (absolute): what the renewal job's `tls renew -f` reads.
    pub manifest_file: std::path::PathBuf,
    /// The uWSGI plugins every vassal loads first (`[production] uwsgi_plugins`); `None`:
    /// detected from the Emperor that runs the vassals (a plugin build such as Debian's
    /// `uwsgi-core` needs `python3`, a monolithic pip build none).
    pub uwsgi_plugins: Option<Vec<PluginName>>,
    /// System mode: the group of the system nginx's workers, to which every Sess socket is
    /// given (`chown-socket`, mode `660`), so nginx can connect and nobody else can. Read from
    /// the server's `nginx.conf` by the Production Manager; never in the manifest.
    pub nginx_group: Option<Account>,
}

/// An Act: a runnable Django (or any WSGI) project.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Act {
    /// The project directory (uWSGI's `chdir`).
    pub root: ConfPath,
    /// The WSGI entry point.
    pub wsgi: WsgiTarget,
    /// `DJANGO_SETTINGS_MODULE`, when set.
    pub settings: Option<PyModule>,
    /// A pip requirements file, inside `root`.
    pub requirements: Option<ConfPath>,
    /// URL prefix → directory (inside `root`) served by nginx.
    pub static_dirs: BTreeMap<UrlPrefix, ConfPath>,
    /// Environment of every Sess of this Act.
    pub env: BTreeMap<EnvKey, IniValue>,
    /// The release phase: shell commands run once per deploy in the new release, before any
    /// Sess switches to it (`python manage.py migrate --noinput`).
    pub release: Vec<String>,
    /// Paths relative to the root that outlive releases (a sqlite database, `media`): kept
    /// once and linked into every release.
    pub shared: Vec<String>,
    /// How many releases to keep (never fewer than the live one and the one before it).
    pub keep_releases: u16,
    /// What a healthy Sess of this Act answers.
    pub health: Health,
    /// A dotenv file of secrets (`env_file`): read when the Production is applied, never
    /// copied anywhere but the private envdir each Sess reads at start.
    pub env_file: Option<ConfPath>,
    /// Uploads (`media = { "/media/" = "media" }`): served by nginx from the Act's shared dir,
    /// where they outlive every release (the path is one of `shared`).
    pub media: Option<Media>,
    /// The secrets its Sess get: loaded by the Production Manager from `env_file` and the
    /// store (`backstage env`), never from the manifest.
    pub secrets: crate::secrets::Secrets,
    /// Set by the Act Manager when the Act runs from a release: the link (`current`) through
    /// which nginx reaches the live release's static files, so a switch of release changes no
    /// nginx file (and reloads no nginx). Its static dirs are re-rooted there.
    pub live_link: Option<ConfPath>,
    /// Set with `live_link`: the link (`previous`) to the release live before, whose static
    /// files nginx serves when the live release lacks them (pages rendered by the previous
    /// release keep finding their hashed assets).
    pub fallback_root: Option<ConfPath>,
    /// Its workers (`[acts.X.workers.NAME]`), each run under the Emperor in the live release.
    pub workers: BTreeMap<Slug, crate::work::Worker>,
    /// Its scheduled jobs (`[acts.X.cron.NAME]`).
    pub cron: BTreeMap<Slug, crate::work::CronJob>,
    /// Set by the Act Manager when the live release's requirements differ from what its Stage
    /// has installed: the virtualenv built for that release's requirements, which its Sess and
    /// commands import from instead of the Stage's (a deploy never pips into the environment
    /// a running copy imports from).
    pub environment: Option<ConfPath>,
}

impl Act {
    /// The virtualenv the Act's code imports from on `stage`: its release's own environment
    /// when it has one, else the Stage's.
    pub fn virtualenv<'a>(&'a self, stage: &'a Stage) -> &'a ConfPath {
        self.environment.as_ref().unwrap_or(&stage.virtualenv)
    }
}

/// An Act's uploads: the URL prefix nginx serves them at, and their directory, relative to the
/// Act's root (and a `shared` entry, so it lives in the Act's shared dir).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Media {
    /// The URL prefix (`/media/`): Django's `MEDIA_URL`.
    pub prefix: UrlPrefix,
    /// The directory relative to the Act's root (`media`).
    pub path: String,
}

/// What a healthy Sess answers (`health = { path, status }`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The path asked for.
    pub path: UrlPath,
    /// The statuses that count as healthy; empty: any status below 500 but 400 (Django's
    /// answer to a Host outside `ALLOWED_HOSTS`).
    pub status: Vec<u16>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            path: UrlPath::root(),
            status: Vec::new(),
        }
    }
}

impl Health {
    /// Whether `status` counts as healthy.
    pub fn accepts(&self, status: u16) -> bool {
        if self.status.is_empty() {
            status < 500 && status != 400
        } else {
            self.status.contains(&status)
        }
    }
}

/// Seconds before uWSGI kills a worker stuck in one request, unless the Sess sets `harakiri`.
/// nginx's `uwsgi_read_timeout` for a Gig is a second less than its Sess' harakiri (60 s here,
/// nginx's own default), so the client gets nginx's 504 first and the worker is freed after.
pub const DEFAULT_HARAKIRI: u32 = 61;

/// How many releases an Act keeps unless it says otherwise.
pub const DEFAULT_KEEP_RELEASES: u16 = 5;

/// A Stage: a virtualenv with uWSGI, on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stage {
    /// The virtualenv directory.
    pub virtualenv: ConfPath,
    /// The Python used to create the virtualenv.
    pub python: Program,
}

/// Where a Sess listens, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessSocket {
    /// A unix socket at this path.
    Unix(ConfPath),
    /// A loopback TCP address.
    Tcp(SocketAddr),
}

impl std::fmt::Display for SessSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessSocket::Unix(p) => write!(f, "unix:{p}"),
            SessSocket::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// A Sess: an Act playing on a Stage; one uWSGI vassal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sess {
    /// The Act it plays.
    pub act: Slug,
    /// The Stage it plays on.
    pub stage: Slug,
    /// uWSGI worker processes.
    pub processes: u16,
    /// Threads per worker.
    pub threads: u16,
    /// Where it listens.
    pub socket: SessSocket,
    /// uWSGI tuning.
    pub tuning: Tuning,
    /// How often `backstage sess reload` has restarted it (never in the manifest: the Act
    /// Manager keeps it in the state dir). Part of its vassal, so a restart is a new copy that
    /// must answer before it replaces the running one.
    pub restarts: u32,
}

/// Validated uWSGI tuning of a Sess.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Tuning {
    /// Seconds before a stuck request's worker is killed.
    pub harakiri: Option<u32>,
    /// Requests before a worker is recycled.
    pub max_requests: Option<u32>,
    /// uWSGI's request buffer (the largest vars block it accepts).
    pub buffer_size: Option<u16>,
    /// The socket's listen backlog.
    pub listen: Option<u32>,
    /// User to run as (system mode).
    pub uid: Option<Account>,
    /// Group to run as (system mode).
    pub gid: Option<Account>,
    /// Further uWSGI options, checked by uWSGI itself under `strict`.
    pub extra: BTreeMap<UwsgiOption, IniValue>,
}

/// TLS for a Venue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert: ConfPath,
    /// Private key (PEM).
    pub key: ConfPath,
    /// Where nginx listens for TLS (default: the Venue's addresses on 443; 8443 in user mode).
    pub listen: Vec<ListenAddr>,
    /// Whether HTTPS answers carry `Strict-Transport-Security` (default off: once a browser
    /// has seen it, the names cannot go back to plain HTTP for its max-age).
    pub hsts: bool,
    /// `acme = true`: the certificate is obtained and renewed from the `[acme]` CA;
    /// [`cert`](Tls::cert) and [`key`](Tls::key) then name the live pair under the state dir
    /// ([`Production::acme_live_dir`]).
    pub acme: bool,
    /// An ACME Venue whose certificate has not been issued yet: served over plain HTTP (with
    /// the challenge location) until it is. Set by the Production Manager from the state dir,
    /// never by the manifest.
    pub pending: bool,
}

/// `[acme]`: the ACME CA that issues the certificates of `tls = { acme = true }` Venues.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Acme {
    /// The CA's directory URL (default Let's Encrypt's production directory).
    pub directory: ApiUrl,
    /// A contact address given to the CA (expiry warnings).
    pub email: Option<String>,
    /// A PEM file of the CA certificate that signs the ACME server's own TLS certificate
    /// (private CAs, tests); default: the system's trust store.
    pub ca_file: Option<ConfPath>,
    /// External account binding, for CAs that require one.
    pub eab: Option<Eab>,
}

/// Let's Encrypt's production ACME directory: `[acme] directory`'s default.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for Acme {
    fn default() -> Self {
        Acme {
            directory: LETS_ENCRYPT_DIRECTORY.parse().expect("a valid URL"),
            email: None,
            ca_file: None,
            eab: None,
        }
    }
}

/// An ACME external account binding: the key id and the MAC key the CA issued.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Eab {
    /// The key identifier.
    pub kid: String,
    /// The MAC key, base64url as the CA gives it.
    pub hmac_key: String,
}

impl std::fmt::Debug for Eab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eab")
            .field("kid", &self.kid)
            .field("hmac_key", &"<hidden>")
            .finish()
    }
}

impl Venue {
    /// The TLS nginx serves now: `None` for a plain Venue, and for an ACME Venue whose
    /// certificate is still to be issued.
    pub fn serving_tls(&self) -> Option<&Tls> {
        self.tls.as_ref().filter(|t| !t.pending)
    }

    /// Whether its certificate comes from ACME.
    pub fn is_acme(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.acme)
    }
}

/// A Venue: a DNS namespace nginx serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Venue {
    /// The names it answers to.
    pub server_names: Vec<ServerName>,
    /// Where nginx listens for it.
    pub listen: Vec<ListenAddr>,
    /// TLS, when configured.
    pub tls: Option<Tls>,
    /// The DNS zone its names belong to (for the Producer), when set explicitly.
    pub zone: Option<ServerName>,
    /// The largest request body nginx accepts (`client_max_body_size`; default `64m`).
    pub max_body_size: BodySize,
}

/// A Gig: an Act booked at a Venue, playing one or more Sess.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gig {
    /// Where it plays.
    pub venue: Slug,
    /// The Sess behind it, with their load-balancing weights.
    pub sess: Vec<(Slug, u16)>,
    /// The mount point.
    pub path: UrlPath,
}

/// Where the Producer's API key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ApiKey {
    /// Read from this environment variable when needed.
    Env(EnvKey),
    /// Written in the manifest (discouraged).
    Inline(String),
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Env(k) => f.debug_tuple("Env").field(k).finish(),
            ApiKey::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

/// The Producer: DNS for the Venues through PowerDNS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Producer {
    /// The PowerDNS HTTP API base URL.
    pub api_url: ApiUrl,
    /// The API key's source.
    pub api_key: ApiKey,
    /// The addresses every Venue name resolves to.
    pub addresses: Vec<IpAddr>,
    /// Record TTL in seconds.
    pub ttl: u32,
}

impl Production {
    /// Where ACME state lives: `<state_dir>/acme` (the account, each Venue's certificates, the
    /// challenge files).
    pub fn acme_dir(layout: &Layout) -> ConfPath {
        ConfPath::resolve(&layout.state_dir, "acme", true).expect("a generated name")
    }

    /// The directory nginx serves `/.well-known/acme-challenge/` from, on every plain listener
    /// of an ACME Venue.
    pub fn acme_challenge_dir(&self) -> ConfPath {
        ConfPath::resolve(&Self::acme_dir(&self.layout), "challenges", true)
            .expect("a generated name")
    }

    /// An ACME Venue's certificate directory: one subdirectory per issued certificate, and
    /// `live`, a link to the one nginx serves.
    pub fn acme_venue_dir(layout: &Layout, venue: &Slug) -> ConfPath {
        ConfPath::resolve(&Self::acme_dir(layout), venue.as_str(), true).expect("a generated name")
    }

    /// The link to the certificate pair nginx serves for an ACME Venue.
    pub fn acme_live_dir(layout: &Layout, venue: &Slug) -> ConfPath {
        ConfPath::resolve(&Self::acme_venue_dir(layout, venue), "live", true)
            .expect("a generated name")
    }

    /// The file name stem every generated artefact of `name` carries: `backstage.<production>.<name>`.
    pub fn generated_name(&self, name: &Slug, suffix: &'static str) -> Slugish {
        Slugish::new(&[&Slug::backstage(), &self.name, name], suffix)
    }

    /// Whether the Sess listens on Backstage's default unix socket. Only such a Sess is
    /// replaced blue/green when it changes: its socket path is a link Backstage moves to the new
    /// copy, while an address the manifest fixes can only be reloaded in place.
    pub fn has_default_socket(&self, sess: &Slug) -> bool {
        matches!(
            self.sess.get(sess).map(|s| &s.socket),
            Some(SessSocket::Unix(p)) if *p == Self::default_socket(&self.layout, &self.name, sess)
        )
    }

    /// One copy of a Sess: `id` is `Some` for a Sess on the default socket (see
    /// [`Production::has_default_socket`]), whose copies each get their own socket, stats
    /// socket, FIFO, pid file and vassal; `None` for a Sess on an address the manifest fixes.
    /// Works for a Sess no longer in the manifest too (its socket, then, is the default one).
    pub fn instance(&self, sess: &Slug, id: Option<&InstanceId>) -> SessInstance {
        let parts: [&Slug; 3] = [&Slug::backstage(), &self.name, sess];
        let run_dir = Self::sess_run_dir(&self.layout, self.mode, sess);
        let run = |suffix| run_dir.join(&Slugish::with_instance(&parts, id, suffix));
        let socket = match (id, self.sess.get(sess)) {
            (None, Some(s)) => s.socket.clone(),
            _ => SessSocket::Unix(run(".sock")),
        };
        SessInstance {
            sess: sess.clone(),
            id: id.cloned(),
            vassal: self
                .layout
                .vassal_dir
                .join(&Slugish::with_instance(&parts, id, ".ini")),
            socket,
            stats: run(".stats.sock"),
            fifo: run(".fifo"),
            pid_file: run(".pid"),
        }
    }

    /// The copy of a Sess a vassal file belongs to, from its name
    /// (`backstage.<production>.<sess>[.<id>].ini`); `None` for any other name.
    pub fn instance_of_vassal(&self, path: &std::path::Path) -> Option<SessInstance> {
        let file = path.file_name()?.to_str()?;
        let stem = file
            .strip_prefix("backstage.")?
            .strip_prefix(self.name.as_str())?
            .strip_prefix('.')?
            .strip_suffix(".ini")?;
        let (sess, id) = match stem.split_once('.') {
            Some((sess, id)) => (sess, Some(id.parse::<InstanceId>().ok()?)),
            None => (stem, None),
        };
        let sess: Slug = sess.parse().ok()?;
        let instance = self.instance(&sess, id.as_ref());
        (instance.vassal.as_path() == path).then_some(instance)
    }

    /// The log file of a Sess, shared by its copies.
    pub fn log_file(&self, sess: &Slug) -> ConfPath {
        self.layout.log_dir.join(&self.generated_name(sess, ".log"))
    }

    /// The default unix socket of a Sess (`socket = "unix"`). For a running Sess it is a
    /// symlink to the socket of its current copy.
    pub fn default_socket(layout: &Layout, production: &Slug, sess: &Slug) -> ConfPath {
        layout.run_dir.join(&Slugish::new(
            &[&Slug::backstage(), production, sess],
            ".sock",
        ))
    }

    /// What Django must accept for a Sess, from the Venues whose Gigs book it: the host names
    /// (`ALLOWED_HOSTS` syntax: `*.example.com` becomes `.example.com`) and the origins a
    /// browser sends (`CSRF_TRUSTED_ORIGINS`: `scheme://name[:port]`, the port left out when it
    /// is the scheme's default). Sorted, without repeats; empty for a Sess no Gig books.
    pub fn hosts_of(&self, sess: &Slug) -> (Vec<String>, Vec<String>) {
        let venues = self
            .gigs
            .values()
            .filter(|g| g.sess.iter().any(|(s, _)| s == sess))
            .map(|g| &g.venue);
        self.hosts_at(venues)
    }

    /// [`Production::hosts_of`] for every booked Sess at once, in one pass over the Gigs (a
    /// scan of every Gig per Sess is quadratic in a large Production). A Sess no Gig books
    /// has no entry.
    pub fn hosts_by_sess(&self) -> BTreeMap<&Slug, (Vec<String>, Vec<String>)> {
        let mut venues_of: BTreeMap<&Slug, Vec<&Slug>> = BTreeMap::new();
        for gig in self.gigs.values() {
            for (sess, _) in &gig.sess {
                venues_of.entry(sess).or_default().push(&gig.venue);
            }
        }
        venues_of
            .into_iter()
            .map(|(sess, venues)| (sess, self.hosts_at(venues.into_iter())))
            .collect()
    }

    /// The host names and origins of `venues` (see [`Production::hosts_of`]).
    fn hosts_at<'a>(&self, venues: impl Iterator<Item = &'a Slug>) -> (Vec<String>, Vec<String>) {
        let mut hosts = std::collections::BTreeSet::new();
        let mut origins = std::collections::BTreeSet::new();
        for venue in venues.filter_map(|v| self.venues.get(v)) {
            let mut schemes: Vec<(&str, u16)> =
                venue.listen.iter().map(|l| ("http", l.port())).collect();
            if let Some(tls) = &venue.tls {
                schemes.extend(tls.listen.iter().map(|l| ("https", l.port())));
            }
            for name in &venue.server_names {
                let name = name.as_str();
                hosts.insert(match name.strip_prefix('*') {
                    Some(rest) => rest.to_owned(),
                    None => name.to_owned(),
                });
                for (scheme, port) in &schemes {
                    let default = if *scheme == "https" { 443 } else { 80 };
                    origins.insert(if *port == default {
                        format!("{scheme}://{name}")
                    } else {
                        format!("{scheme}://{name}:{port}")
                    });
                }
            }
        }
        (hosts.into_iter().collect(), origins.into_iter().collect())
    }

    /// Where an Act's `shared` entries live, once for all its releases:
    /// `<state_dir>/shared/<act>`.
    pub fn shared_dir(&self, act: &Slug) -> ConfPath {
        ConfPath::resolve(&self.layout.state_dir, &format!("shared/{act}"), true)
            .expect("a slug under the state dir is a valid path")
    }

    /// The directory of an Act's uploads (Django's `MEDIA_ROOT`), in its shared dir.
    pub fn media_dir(&self, act: &Slug) -> Option<ConfPath> {
        let media = self.acts.get(act)?.media.as_ref()?;
        ConfPath::resolve(&self.shared_dir(act), &media.path, true).ok()
    }

    /// The envdir a Sess reads its Act's secrets from at start (`envdir`), named after their
    /// id; `None` when the Act has no secret to pass (empty values go in the vassal itself).
    pub fn envdir_of(&self, sess: &Slug) -> Option<ConfPath> {
        let act = &self.acts.get(&self.sess.get(sess)?.act)?;
        if !act.secrets.values.values().any(|v| !v.expose().is_empty()) {
            return None;
        }
        let name = format!(
            "{}.{}.env",
            self.generated_name(sess, "").as_str(),
            act.secrets.id
        );
        ConfPath::resolve(&self.layout.state_dir, &format!("secrets/{name}"), true).ok()
    }

    /// Where the runtime files of a Sess' copies live (sockets, stats sockets, FIFOs, pid
    /// files). In user mode the run dir itself; in system mode a directory of the Sess' own
    /// (`<run_dir>/<sess>`), owned by the account it runs as: its master creates the stats
    /// socket and the FIFO, and removes its files on exit, after dropping root.
    pub fn sess_run_dir(layout: &Layout, mode: Mode, sess: &Slug) -> ConfPath {
        match mode {
            Mode::User => layout.run_dir.clone(),
            Mode::System => layout.run_dir.join(&Slugish::new(&[sess], "")),
        }
    }

    /// Every unix socket path a Sess uses, longest last (for the kernel's path limit).
    pub(crate) fn unix_paths_of(
        layout: &Layout,
        mode: Mode,
        production: &Slug,
        sess: &Slug,
    ) -> [ConfPath; 2] {
        let id: InstanceId = "00000000".parse().expect("a valid id");
        let parts: [&Slug; 3] = [&Slug::backstage(), production, sess];
        [
            Self::default_socket(layout, production, sess),
            Self::sess_run_dir(layout, mode, sess).join(&Slugish::with_instance(
                &parts,
                Some(&id),
                ".stats.sock",
            )),
        ]
    }
}

/// One copy of a Sess as uWSGI runs it: its vassal and the files its master creates. See
/// [`Production::instance`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessInstance {
    /// The Sess.
    pub sess: Slug,
    /// Which copy (`None`: the Sess' only one, on an address the manifest fixes).
    pub id: Option<InstanceId>,
    /// Its vassal file.
    pub vassal: ConfPath,
    /// Where this copy listens.
    pub socket: SessSocket,
    /// Its stats socket.
    pub stats: ConfPath,
    /// Its master FIFO.
    pub fifo: ConfPath,
    /// Its master's pid file.
    pub pid_file: ConfPath,
}

impl Slug {
    /// The `backstage` prefix of every generated name.
    pub(crate) fn backstage() -> Slug {
        "backstage".parse().expect("`backstage` is a valid slug")
    }
}

#[cfg(test)]
mod tests {
    use crate::Manifest;
    use crate::values::Slug;

    #[test]
    fn hosts_and_origins_come_from_the_venues_booking_a_sess() {
        let text = r#"
[production]
name = "p"
[acts.a]
root = "a"
wsgi = "a.wsgi:application"
[stages.s]
virtualenv = "v"
[sess.web]
act = "a"
stage = "s"
[sess.idle]
act = "a"
stage = "s"
[venues.shop]
server_names = ["shop.test", "*.shop.test"]
listen = ["127.0.0.1:80"]
tls = { cert = "c.pem", key = "k.pem", listen = ["127.0.0.1:8443"] }
[venues.dev]
server_names = ["dev.localhost"]
listen = ["127.0.0.1:8080"]
[gigs.front]
venue = "shop"
sess = ["web"]
[gigs.dev]
venue = "dev"
sess = ["web"]
"#;
        let p = Manifest::from_source("b.toml".into(), "/srv".into(), text.into())
            .parse()
            .unwrap();
        let (hosts, origins) = p.hosts_of(&"web".parse().unwrap());
        assert_eq!(hosts, [".shop.test", "dev.localhost", "shop.test"]);
        assert_eq!(
            origins,
            [
                "http://*.shop.test",
                "http://dev.localhost:8080",
                "http://shop.test",
                "https://*.shop.test:8443",
                "https://shop.test:8443"
            ]
        );
        assert_eq!(
            p.hosts_by_sess()[&"web".parse::<Slug>().unwrap()],
            (hosts, origins)
        );
        let (hosts, origins) = p.hosts_of(&"idle".parse().unwrap());
        assert!(hosts.is_empty() && origins.is_empty());
        assert!(
            !p.hosts_by_sess()
                .contains_key(&"idle".parse::<Slug>().unwrap())
        );
    }
}

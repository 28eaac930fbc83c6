//! Rendering: the nginx files a Production implies, from its validated types only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use backstage_core::values::{ConfPath, ServerName, Slug, Slugish};
use backstage_core::{DEFAULT_HARAKIRI, DesiredFile, FileKind, Mode, Production, Venue, files};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::Error;

static TEMPLATES: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut t = tera::Tera::default();
    t.autoescape_on(vec![]);
    t.register_filter("q", quote_filter);
    t.register_filter("quoted", quoted_filter);
    t.register_filter("re", regex_filter);
    t.add_raw_templates(vec![
        ("site.conf", include_str!("../templates/site.conf.tera")),
        ("nginx.conf", include_str!("../templates/nginx.conf.tera")),
    ])
    .expect("the built-in templates parse");
    t
});

/// Characters nginx reads as syntax or that end a token.
fn nginx_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '{' | '}' | '#' | '"' | '\'' | '\\' | '$')
}

/// One nginx argument. Validated values never hold anything nginx reads as syntax, so such a
/// value is refused rather than escaped (it can only come from a bug); a space (legal in a
/// path) is the one thing quoted.
pub(crate) fn quote(value: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    if value.is_empty() {
        return Err("an empty nginx argument".to_owned());
    }
    match value
        .chars()
        .find(|c| (nginx_special(*c) && *c != ' ') || c.is_control())
    {
        Some(c) => Err(format!(
            "refusing to write {c:?} into an nginx argument: `{}`",
            value.escape_debug()
        )),
        None if value.contains(' ') => Ok(format!("\"{value}\"").into()),
        None => Ok(value.into()),
    }
}

/// A double-quoted nginx string (the closed Venue's page): no `"`, `\`, `$` or control
/// characters inside, so nothing in it can end the string or interpolate a variable.
pub(crate) fn quoted(value: &str) -> Result<String, String> {
    match value
        .chars()
        .find(|c| matches!(c, '"' | '\\' | '$') || c.is_control())
    {
        Some(c) => Err(format!(
            "refusing to write {c:?} into an nginx string: `{}`",
            value.escape_debug()
        )),
        None => Ok(format!("\"{value}\"")),
    }
}

fn as_str(value: &tera::Value) -> tera::Result<&str> {
    value
        .as_str()
        .ok_or_else(|| tera::Error::msg(format!("expected a string, found `{value}`")))
}

fn quote_filter(
    value: &tera::Value,
    _: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let s = as_str(value)?;
    quote(s)
        .map(|s| tera::Value::String(s.into_owned()))
        .map_err(tera::Error::msg)
}

/// A regex argument (`rewrite`): `\\` and `$` belong to the regex there, but nothing may end
/// the token or open a block.
fn regex_filter(
    value: &tera::Value,
    _: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let s = as_str(value)?;
    match s.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, ';' | '{' | '}' | '#' | '"' | '\'')
    }) {
        Some(c) => Err(tera::Error::msg(format!(
            "refusing to write {c:?} into an nginx regex: `{}`",
            s.escape_debug()
        ))),
        None => Ok(tera::Value::String(s.to_owned())),
    }
}

fn quoted_filter(
    value: &tera::Value,
    _: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    quoted(as_str(value)?)
        .map(tera::Value::String)
        .map_err(tera::Error::msg)
}

/// Which account the workers of a user-mode nginx take when its master runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUser {
    user: String,
    group: String,
}

impl WorkerUser {
    /// A user and group by name; `None` if either could not be written into nginx.conf.
    pub fn new(user: &str, group: &str) -> Option<Self> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        (ok(user) && ok(group)).then(|| WorkerUser {
            user: user.to_owned(),
            group: group.to_owned(),
        })
    }

    /// The effective user and group of this process, when they have names.
    pub fn current() -> Option<Self> {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        let user = nix::unistd::User::from_uid(uid).ok()??;
        let group = nix::unistd::Group::from_gid(gid).ok()??;
        WorkerUser::new(&user.name, &group.name)
    }
}

/// Choices that are not in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// User mode: the `user` line of `nginx.conf` (workers' account when the master is root).
    pub worker_user: Option<WorkerUser>,
}

impl RenderOptions {
    /// What [`render`] uses: workers run as the user rendering the files, who also owns the
    /// sockets of the Sess it starts.
    pub fn for_current_user() -> Self {
        RenderOptions {
            worker_user: WorkerUser::current(),
        }
    }

    /// Options with the given worker account (tests and snapshots use a fixed one).
    pub fn with_worker_user(worker_user: Option<WorkerUser>) -> Self {
        RenderOptions { worker_user }
    }
}

/// Where a user-mode nginx keeps everything; what `backstage up` needs to start it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserNginx {
    /// nginx's prefix (`-p`): the nginx dir.
    pub prefix: PathBuf,
    /// The main configuration (`-c`).
    pub conf: PathBuf,
    /// The master's pid file.
    pub pid_file: PathBuf,
    /// nginx's error log.
    pub error_log: PathBuf,
    /// nginx's access log.
    pub access_log: PathBuf,
    /// Directories that must exist before nginx starts (it creates none of their parents).
    pub dirs: Vec<PathBuf>,
}

impl UserNginx {
    /// The paths of `production`'s own nginx (meaningful in user mode).
    pub fn of(production: &Production) -> Self {
        let p = Paths::of(production);
        UserNginx {
            prefix: p.nginx_dir.as_path().to_owned(),
            conf: p.conf.as_path().to_owned(),
            pid_file: p.pid.as_path().to_owned(),
            error_log: p.error_log.as_path().to_owned(),
            access_log: p.access_log.as_path().to_owned(),
            dirs: vec![
                p.nginx_dir.as_path().to_owned(),
                p.sites_dir.as_path().to_owned(),
                p.run.as_path().to_owned(),
                p.log.as_path().to_owned(),
                p.temp.as_path().to_owned(),
            ],
        }
    }
}

/// Every path the rendering needs, as nginx-safe values.
struct Paths {
    nginx_dir: ConfPath,
    sites_dir: ConfPath,
    conf: ConfPath,
    run: ConfPath,
    log: ConfPath,
    temp: ConfPath,
    pid: ConfPath,
    lock: ConfPath,
    error_log: ConfPath,
    access_log: ConfPath,
}

fn slug(s: &str) -> Slug {
    s.parse().expect("built-in names are slugs")
}

/// A sub-directory named `name` (a slug, so it can never collide with `backstage.*` files).
fn sub(dir: &ConfPath, name: &str, suffix: &'static str) -> ConfPath {
    dir.join(&Slugish::new(&[&slug(name)], suffix))
}

impl Paths {
    fn of(production: &Production) -> Self {
        let l = &production.layout;
        let nginx_dir = l.nginx_dir.clone();
        let sites_dir = match production.mode {
            Mode::User => sub(&nginx_dir, "sites", ""),
            Mode::System => nginx_dir.clone(),
        };
        let run = sub(&l.run_dir, "nginx", "");
        let log = sub(&l.log_dir, "nginx", "");
        Paths {
            conf: sub(&nginx_dir, "nginx", ".conf"),
            temp: sub(&l.state_dir, "nginx-temp", ""),
            pid: sub(&run, "nginx", ".pid"),
            lock: sub(&run, "nginx", ".lock"),
            error_log: sub(&log, "error", ".log"),
            access_log: sub(&log, "access", ".log"),
            nginx_dir,
            sites_dir,
            run,
            log,
        }
    }

    /// Where runtime files of a throwaway nginx go (validation uses a temp dir).
    fn scratch(dir: &ConfPath) -> Self {
        Paths {
            nginx_dir: dir.clone(),
            sites_dir: sub(dir, "sites", ""),
            conf: sub(dir, "nginx", ".conf"),
            run: dir.clone(),
            log: dir.clone(),
            temp: sub(dir, "temp", ""),
            pid: sub(dir, "nginx", ".pid"),
            lock: sub(dir, "nginx", ".lock"),
            error_log: sub(dir, "error", ".log"),
            access_log: sub(dir, "access", ".log"),
        }
    }
}

/// The site file of a Venue: `backstage.<production>.<venue>.conf` in the sites directory.
pub fn site_path(production: &Production, venue: &Slug) -> PathBuf {
    let dir = Paths::of(production).sites_dir;
    dir.join(&production.generated_name(venue, ".conf"))
        .as_path()
        .to_owned()
}

/// Every nginx file `production` implies: in user mode `nginx.conf` and one site per Venue
/// under the nginx dir; in system mode one site per Venue for `sites-available` (link them
/// into `sites-enabled` with [`crate::enable_site`]). Workers of a user-mode nginx started as
/// root run as the current user ([`RenderOptions::for_current_user`]).
pub fn render(production: &Production) -> Result<Vec<DesiredFile>, Error> {
    render_with(production, &RenderOptions::for_current_user())
}

/// [`render`] with explicit options.
pub fn render_with(
    production: &Production,
    options: &RenderOptions,
) -> Result<Vec<DesiredFile>, Error> {
    let paths = Paths::of(production);
    let mut out = Vec::with_capacity(production.venues.len() + 1);
    // Each Venue's Gigs, found in one pass (a scan per Venue is quadratic in large Productions).
    let mut gigs_at: BTreeMap<&Slug, Vec<(&Slug, &backstage_core::Gig)>> = BTreeMap::new();
    for (gname, gig) in &production.gigs {
        gigs_at.entry(&gig.venue).or_default().push((gname, gig));
    }
    let venues: Vec<_> = production
        .venues
        .iter()
        .map(|(name, venue)| (name, venue, gigs_at.remove(name).unwrap_or_default()))
        .collect();
    // Sites are independent of each other: rendered on every core, kept in Venue order.
    let sites: Vec<Result<DesiredFile, Error>> = venues
        .par_iter()
        .map(|(name, venue, gigs)| {
            Ok(DesiredFile {
                kind: FileKind::Site,
                name: name.to_string(),
                path: site_path(production, name),
                content: render_site(production, name, venue, gigs)?,
                origin: format!("venues.{name}"),
            })
        })
        .collect();
    for site in sites {
        out.push(site?);
    }
    if production.mode == Mode::User {
        let sites: Vec<&Path> = out.iter().map(|f| f.path.as_path()).collect();
        let content = main_conf(production, &paths, &sites, options.worker_user.as_ref())?;
        out.push(DesiredFile {
            kind: FileKind::NginxConf,
            name: "nginx".to_owned(),
            path: paths.conf.as_path().to_owned(),
            content,
            origin: "production".to_owned(),
        });
    }
    Ok(out)
}

#[derive(Serialize)]
struct MainCtx<'a> {
    marker: String,
    production: &'a str,
    prefix: &'a str,
    conf: &'a str,
    user: Option<&'a str>,
    group: Option<&'a str>,
    pid: &'a str,
    lock_file: &'a str,
    error_log: &'a str,
    access_log: &'a str,
    temp_paths: Vec<(&'static str, String)>,
    sites: Vec<&'a str>,
    /// Every plain listen address of the Venues: a default server there refuses unknown hosts.
    plain_listens: Vec<String>,
    /// Every TLS listen address: a default server there rejects the handshake of unknown names.
    tls_listens: Vec<String>,
}

/// The main `nginx.conf` over `paths`, including `sites` by name.
fn main_conf(
    production: &Production,
    paths: &Paths,
    sites: &[&Path],
    user: Option<&WorkerUser>,
) -> Result<String, Error> {
    let sites = sites
        .iter()
        .map(|p| p.to_str().expect("site paths are built from UTF-8 values"))
        .collect();
    let ctx = MainCtx {
        marker: files::marker(&production.name),
        production: production.name.as_str(),
        prefix: paths.nginx_dir.as_str(),
        conf: paths.conf.as_str(),
        user: user.map(|u| u.user.as_str()),
        group: user.map(|u| u.group.as_str()),
        pid: paths.pid.as_str(),
        lock_file: paths.lock.as_str(),
        error_log: paths.error_log.as_str(),
        access_log: paths.access_log.as_str(),
        temp_paths: [
            ("client_body_temp_path", "client-body"),
            ("proxy_temp_path", "proxy"),
            ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"),
            ("scgi_temp_path", "scgi"),
        ]
        .into_iter()
        .map(|(directive, dir)| (directive, sub(&paths.temp, dir, "").as_str().to_owned()))
        .collect(),
        sites,
        plain_listens: production
            .venues
            .values()
            .flat_map(|v| v.listen.iter().map(ToString::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        tls_listens: production
            .venues
            .values()
            .filter_map(Venue::serving_tls)
            .flat_map(|t| t.listen.iter().map(ToString::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    render_template("nginx.conf", &ctx, "nginx.conf", "production")
}

/// A throwaway `nginx.conf` in `dir` including `sites`: what `nginx -t` checks candidates with.
pub(crate) fn scratch_conf(
    production: &Production,
    dir: &ConfPath,
    sites: &[&Path],
) -> Result<(PathBuf, String), Error> {
    let paths = Paths::scratch(dir);
    let content = main_conf(production, &paths, sites, None)?;
    Ok((paths.conf.as_path().to_owned(), content))
}

fn render_template(
    name: &str,
    ctx: &impl Serialize,
    what: &'static str,
    origin: &str,
) -> Result<String, Error> {
    let err = |source| Error::Render {
        what,
        origin: origin.to_owned(),
        source,
    };
    let ctx = tera::Context::from_serialize(ctx).map_err(err)?;
    let mut s = TEMPLATES.render(name, &ctx).map_err(err)?;
    s.push('\n');
    Ok(s)
}

#[derive(Serialize)]
struct SiteCtx<'a> {
    marker: String,
    production: &'a str,
    venue: &'a str,
    server_names: Vec<&'a str>,
    upstreams: Vec<UpstreamCtx<'a>>,
    servers: Vec<ServerCtx>,
    /// An ACME Venue: the directory its plain listeners serve HTTP-01 challenges from.
    acme_challenge: Option<String>,
    tls: Option<TlsCtx<'a>>,
    redirect_port: String,
    max_body_size: String,
    closed: bool,
    closed_page: String,
    statics: Vec<StaticCtx<'a>>,
    has_root: bool,
    gigs: Vec<GigCtx<'a>>,
}

#[derive(Serialize)]
struct UpstreamCtx<'a> {
    gig: &'a str,
    name: String,
    servers: Vec<UpstreamServer>,
}

#[derive(Serialize)]
struct UpstreamServer {
    address: String,
    weight: u16,
}

#[derive(Serialize)]
struct ServerCtx {
    listen: String,
    tls: bool,
    redirect: bool,
    /// `HTTP_HOST` for Django: the name nginx matched, and the port a browser sends in its
    /// `Host` and `Origin` when it is not the scheme's default (or Django's CSRF origin check
    /// fails on `http://site:8080`).
    host: String,
}

/// `$host`, with `:port` when `port` is not the default of the scheme.
fn host_header(port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    if port == default {
        "$host".to_owned()
    } else {
        format!("$host:{port}")
    }
}

#[derive(Serialize)]
struct TlsCtx<'a> {
    cert: &'a str,
    key: &'a str,
    /// ACME: the variable naming the live pair's directory. A variable in the path makes
    /// nginx read the pair at each handshake, so a renewed certificate is served with no
    /// reload (a reload closes idle keep-alive connections under clients' feet).
    live_var: Option<String>,
    live_dir: String,
    /// `Strict-Transport-Security` on every HTTPS answer.
    hsts: bool,
}

#[derive(Serialize)]
struct StaticCtx<'a> {
    act: &'a str,
    prefix: &'a str,
    dir: String,
    /// Where the previous release's copy of the same files lives, when the Act runs from a
    /// release and an earlier one is kept: a file the live release lacks is served from there.
    fallback: Option<StaticFallback>,
    /// The Act's uploads (`media`): no caching, never sniffed or run by a browser.
    media: bool,
}

#[derive(Serialize)]
struct StaticFallback {
    /// The named location (`@backstage-static-<act>-<n>`).
    name: String,
    /// `^/static/(.*)$`, metacharacters escaped.
    regex: String,
    /// `/abs/previous/staticfiles/$1`.
    target: String,
}

#[derive(Serialize)]
struct GigCtx<'a> {
    name: &'a str,
    upstream: String,
    root: bool,
    path: &'a str,
    /// `^/blog(/.*)$`, the mount's regex metacharacters escaped.
    path_regex: String,
    location: String,
    /// The variable `map`ped from the status probe header to the Gig's name.
    probe_var: String,
    /// `uwsgi_read_timeout` in seconds: one less than the smallest harakiri of its Sess.
    read_timeout: u32,
}

/// The header `backstage status` sends with the Production's name; only the location of the
/// Gig it asks for answers it with [`PROBE_ANSWER`], so a Gig is never taken for up when
/// another server block answered.
pub const PROBE_HEADER: &str = "X-Backstage-Probe";
/// The response header naming the Gig whose location answered a probe.
pub const PROBE_ANSWER: &str = "X-Backstage-Gig";

/// The nginx variable of a Gig's probe answer: `backstage__<production>__<gig>_probe`, `-` as
/// `_` (slugs hold no `_`, so the double ones keep the names apart).
fn probe_var(production: &str, gig: &str) -> String {
    format!(
        "backstage__{}__{}_probe",
        production.replace('-', "_"),
        gig.replace('-', "_")
    )
}

/// The regex matching everything under a mount and capturing the rest: `^/blog(/.*)$`.
/// Of the characters a mount path may hold, `.`, `*` and `+` mean something in a regex.
fn mount_regex(path: &str) -> String {
    let mut out = String::from("^");
    for c in path.chars() {
        if matches!(c, '.' | '*' | '+') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("(/.*)$");
    out
}

/// The small page a closed Venue answers with (one line, no quotes: it sits in an nginx string).
fn closed_page(venue: &Venue) -> String {
    let host = venue
        .server_names
        .first()
        .map_or("This site", |n| n.as_str());
    format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>503 Closed</title>\
         <h1>Closed</h1><p>{host} has no show booked right now. Please come back later.</p></html>"
    )
}

fn render_site(
    production: &Production,
    name: &Slug,
    venue: &Venue,
    gigs: &[(&Slug, &backstage_core::Gig)],
) -> Result<String, Error> {
    let origin = format!("venues.{name}");

    let upstreams = gigs
        .iter()
        .map(|(gname, gig)| UpstreamCtx {
            gig: gname.as_str(),
            name: production.generated_name(gname, "").as_str().to_owned(),
            servers: gig
                .sess
                .iter()
                .filter_map(|(s, weight)| {
                    let sess = production.sess.get(s)?;
                    Some(UpstreamServer {
                        address: sess.socket.to_string(),
                        weight: *weight,
                    })
                })
                .collect(),
        })
        .collect();

    // Which entry claimed each location, so two claims are an error rather than an nginx -t one.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |location: String, by: String| -> Result<bool, Error> {
        match claimed.get(&location) {
            Some(other) if *other == by => Ok(false),
            Some(other) => Err(Error::LocationClash {
                venue: name.to_string(),
                location,
                origin: by,
                other: other.clone(),
            }),
            None => {
                claimed.insert(location, by);
                Ok(true)
            }
        }
    };

    let mut statics = Vec::new();
    for (_, gig) in gigs {
        for (s, _) in &gig.sess {
            let Some((act_name, act)) = production
                .sess
                .get(s)
                .and_then(|sess| production.acts.get_key_value(&sess.act))
            else {
                continue;
            };
            for (prefix, dir_of_act) in &act.static_dirs {
                if claim(prefix.to_string(), format!("acts.{act_name}"))? {
                    let dir = dir_of_act;
                    // From a release: through its Act's `current` link.
                    let mut dir = match act.live_link.as_ref().and_then(|link| {
                        Some(
                            link.as_path()
                                .join(dir.as_path().strip_prefix(act.root.as_path()).ok()?),
                        )
                    }) {
                        Some(through) => through.display().to_string(),
                        None => dir.as_str().to_owned(),
                    };
                    // A trailing slash on both sides: `/static/../x` can never leave `dir`.
                    if !dir.ends_with('/') {
                        dir.push('/');
                    }
                    let fallback = act.fallback_root.as_ref().and_then(|previous| {
                        let rel = dir_of_act.as_path().strip_prefix(act.root.as_path()).ok()?;
                        let mut regex = String::from("^");
                        for c in prefix.as_str().chars() {
                            if matches!(c, '.' | '*' | '+') {
                                regex.push('\\');
                            }
                            regex.push(c);
                        }
                        regex.push_str("(.*)$");
                        let mut target = previous.as_path().join(rel).display().to_string();
                        if !target.ends_with('/') {
                            target.push('/');
                        }
                        target.push_str("$1");
                        Some(StaticFallback {
                            name: format!("@backstage-static-{act_name}-{}", statics.len()),
                            regex,
                            target,
                        })
                    });
                    statics.push(StaticCtx {
                        act: act_name.as_str(),
                        prefix: prefix.as_str(),
                        dir,
                        fallback,
                        media: false,
                    });
                }
            }
            if let (Some(media), Some(dir)) = (&act.media, production.media_dir(act_name))
                && claim(media.prefix.to_string(), format!("acts.{act_name}"))?
            {
                statics.push(StaticCtx {
                    act: act_name.as_str(),
                    prefix: media.prefix.as_str(),
                    dir: format!("{dir}/"),
                    fallback: None,
                    media: true,
                });
            }
        }
    }

    let mut gig_ctx = Vec::new();
    for (gname, gig) in gigs {
        let root = gig.path.is_root();
        let location = if root {
            "/".to_owned()
        } else {
            format!("{}/", gig.path)
        };
        claim(location.clone(), format!("gigs.{gname}"))?;
        if !root {
            claim(format!("= {}", gig.path), format!("gigs.{gname}"))?;
        }
        gig_ctx.push(GigCtx {
            name: gname.as_str(),
            upstream: production.generated_name(gname, "").as_str().to_owned(),
            root,
            path: gig.path.as_str(),
            path_regex: mount_regex(gig.path.as_str()),
            location,
            probe_var: probe_var(production.name.as_str(), gname.as_str()),
            read_timeout: gig
                .sess
                .iter()
                .filter_map(|(s, _)| production.sess.get(s))
                .map(|s| s.tuning.harakiri.unwrap_or(DEFAULT_HARAKIRI))
                .min()
                .unwrap_or(DEFAULT_HARAKIRI)
                .saturating_sub(1)
                .max(1),
        });
    }
    let has_root = gig_ctx.iter().any(|g| g.root);

    let mut servers = Vec::new();
    let serving_tls = venue.serving_tls();
    for l in &venue.listen {
        servers.push(ServerCtx {
            listen: l.to_string(),
            tls: false,
            redirect: serving_tls.is_some(),
            host: host_header(l.port(), false),
        });
    }
    let mut redirect_port = String::new();
    if let Some(tls) = serving_tls {
        for l in &tls.listen {
            servers.push(ServerCtx {
                listen: l.to_string(),
                tls: true,
                redirect: false,
                host: host_header(l.port(), true),
            });
        }
        if let Some(first) = tls.listen.first()
            && first.port() != 443
        {
            redirect_port = format!(":{}", first.port());
        }
    }

    let ctx = SiteCtx {
        marker: files::marker(&production.name),
        production: production.name.as_str(),
        venue: name.as_str(),
        server_names: venue.server_names.iter().map(ServerName::as_str).collect(),
        upstreams,
        servers,
        acme_challenge: venue
            .is_acme()
            .then(|| format!("{}/", production.acme_challenge_dir())),
        tls: serving_tls.map(|t| TlsCtx {
            cert: t.cert.as_str(),
            key: t.key.as_str(),
            live_var: t.acme.then(|| {
                format!(
                    "backstage__{}__{}_acme",
                    production.name.as_str().replace('-', "_"),
                    name.as_str().replace('-', "_")
                )
            }),
            live_dir: Production::acme_live_dir(&production.layout, name)
                .as_str()
                .to_owned(),
            hsts: t.hsts,
        }),
        redirect_port,
        max_body_size: venue.max_body_size.to_string(),
        closed: gigs.is_empty(),
        closed_page: closed_page(venue),
        statics,
        has_root,
        gigs: gig_ctx,
    };
    render_template("site.conf", &ctx, "site", &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_refuses_syntax() {
        assert_eq!(quote("/srv/a.sock").unwrap(), "/srv/a.sock");
        assert_eq!(quote("[::1]:8080").unwrap(), "[::1]:8080");
        assert_eq!(quote("/srv/a b/").unwrap(), "\"/srv/a b/\"");
        for bad in [
            "a;b", "a\tb", "a{", "}", "#x", "\"", "'", "a\\b", "$host", "a\nb", "",
        ] {
            assert!(quote(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quoted("<p>hi</p>").unwrap(), "\"<p>hi</p>\"");
        for bad in ["a\"b", "a$b", "a\\b", "a\rb"] {
            assert!(quoted(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mount_regexes_escape_metacharacters() {
        assert_eq!(mount_regex("/late"), "^/late(/.*)$");
        assert_eq!(mount_regex("/a.b/c+d*"), "^/a\\.b/c\\+d\\*(/.*)$");
    }

    #[test]
    fn worker_users_are_plain_names() {
        assert!(WorkerUser::new("www-data", "www-data").is_some());
        assert!(WorkerUser::new("a;b", "x").is_none());
        assert!(WorkerUser::new("", "x").is_none());
    }
}

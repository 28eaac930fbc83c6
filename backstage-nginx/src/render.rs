//! Rendering: the nginx files a Production implies, from its validated types only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use backstage_core::values::{ConfPath, Slug, Slugish};
use backstage_core::{DesiredFile, FileKind, Mode, Production, Venue, files};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::Error;

static TEMPLATES: LazyLock<tera::Tera> = LazyLock::new(|| {
    let mut t = tera::Tera::default();
    t.autoescape_on(vec![]);
    t.register_filter("q", quote_filter);
    t.add_raw_templates(vec![(
        "nginx.conf",
        include_str!("../templates/nginx.conf.tera"),
    )])
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
    site_in(&Paths::of(production).sites_dir, production, venue)
}

fn site_in(sites_dir: &ConfPath, production: &Production, venue: &Slug) -> PathBuf {
    sites_dir
        .join(&production.generated_name(venue, ".conf"))
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
                path: site_in(&paths.sites_dir, production, name),
                content: crate::site::render_site(production, name, venue, gigs)?,
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
    /// One `include` line per site, each after a newline: written here rather than by a
    /// template loop, which at 2,000 sites cost more than the rest of the file.
    includes: String,
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
    const INCLUDE: &str = "\n    include ";
    let mut includes = String::with_capacity(
        sites
            .iter()
            .map(|p| INCLUDE.len() + p.as_os_str().len() + 1)
            .sum(),
    );
    for site in sites {
        let site = site
            .to_str()
            .expect("site paths are built from UTF-8 values");
        let site = quote(site).map_err(|e| Error::Render {
            what: "nginx.conf",
            origin: "production".to_owned(),
            source: tera::Error::msg(e),
        })?;
        includes.push_str(INCLUDE);
        includes.push_str(&site);
        includes.push(';');
    }
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
        includes,
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

pub(crate) fn render_template(
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

/// The header `backstage status` sends with the Production's name; only the location of the
/// Gig it asks for answers it with [`PROBE_ANSWER`], so a Gig is never taken for up when
/// another server block answered.
pub const PROBE_HEADER: &str = "X-Backstage-Probe";
/// The response header naming the Gig whose location answered a probe.
pub const PROBE_ANSWER: &str = "X-Backstage-Gig";

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
    fn worker_users_are_plain_names() {
        assert!(WorkerUser::new("www-data", "www-data").is_some());
        assert!(WorkerUser::new("a;b", "x").is_none());
        assert!(WorkerUser::new("", "x").is_none());
    }
}

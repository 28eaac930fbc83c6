//! A Venue's site file: what its Gigs, Acts and TLS settings mean for nginx ([`render_site`]
//! gathers it), written out directly ([`write_site`]). The site is the one file rendered once per
//! Venue, thousands of times in a large Production, so it is written by code rather than a
//! template engine; the text below reads in file order, block by block.
//!
//! Every value goes through [`quote`], [`quoted`] or [`regex_arg`], which refuse (rather than
//! escape) anything nginx would read as syntax: a value can never inject configuration.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use backstage_core::values::ServerName;
use backstage_core::values::Slug;
use backstage_core::{DEFAULT_HARAKIRI, Production, Venue, files};

use crate::error::Error;
use crate::render::{quote, quoted};

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

struct UpstreamCtx<'a> {
    gig: &'a str,
    name: String,
    servers: Vec<UpstreamServer>,
}

struct UpstreamServer {
    address: String,
    weight: u16,
}

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

struct StaticFallback {
    /// The named location (`@backstage-static-<act>-<n>`).
    name: String,
    /// `^/static/(.*)$`, metacharacters escaped.
    regex: String,
    /// `/abs/previous/staticfiles/$1`.
    target: String,
}

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

pub(crate) fn render_site(
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
    write_site(&ctx).map_err(|message| Error::Unwritable { origin, message })
}

/// A regex argument (`rewrite`): `\` and `$` belong to the regex there, but nothing may end
/// the token or open a block.
pub(crate) fn regex_arg(value: &str) -> Result<&str, String> {
    match value.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, ';' | '{' | '}' | '#' | '"' | '\'')
    }) {
        Some(c) => Err(format!(
            "refusing to write {c:?} into an nginx regex: `{}`",
            value.escape_debug()
        )),
        None => Ok(value),
    }
}

/// The site text being written. Every piece starts with its own newline, so a block that is
/// left out leaves no blank line behind.
struct Out {
    text: String,
    /// `Strict-Transport-Security` is repeated in each location of the server being written
    /// (nginx inherits `add_header` only into locations that set none).
    hsts: bool,
}

impl Out {
    fn put(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// One nginx argument ([`quote`]).
    fn arg(&mut self, value: &str) -> Result<&mut Self, String> {
        let q = quote(value)?;
        self.text.push_str(&q);
        Ok(self)
    }

    fn num(&mut self, n: impl std::fmt::Display) -> &mut Self {
        write!(self.text, "{n}").expect("writing into a String");
        self
    }

    /// The HSTS header inside a location, when the server sends it.
    fn location_hsts(&mut self) {
        if self.hsts {
            self.put("\n        add_header Strict-Transport-Security \"max-age=63072000\" always;");
        }
    }
}

const UPSTREAM_BALANCE: &str = "
    # the Sess with the fewest requests in flight, counted across nginx's workers: round-robin
    # would queue a request behind a busy Sess while another has an idle worker
    least_conn;";

const ACME_LIVE: &str = "

# tls = { acme = true }: the live certificate pair, read at each TLS handshake (a path with a
# variable), so `backstage tls renew` serves a new certificate with no nginx reload";

const MOZILLA_TLS: &str = "
    # Mozilla's \"intermediate\" configuration (ssl-config.mozilla.org, guidelines 5.7), without
    # the DHE suites: no ssl_dhparam is configured, so nginx would not offer them anyway
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    ssl_session_timeout 1d;
    ssl_session_cache shared:backstage_tls:10m;
    ssl_session_tickets off;";

const SERVER_HSTS: &str = "
    # hsts = true: browsers keep to HTTPS for two years (repeated in every location that sets
    # its own headers: nginx inherits add_header only into locations that set none)
    add_header Strict-Transport-Security \"max-age=63072000\" always;";

const ACME_CHALLENGE: &str = "
    # tls = { acme = true }: the CA fetches its HTTP-01 challenge here, over plain HTTP
    location ^~ /.well-known/acme-challenge/ {
        alias ";

const HIDDEN_FILES: &str = "

    # hidden files (.git, .env, .htpasswd) are never served; /.well-known/ is
    location ~ /\\.(?!well-known/) {
        deny all;
        access_log off;
        log_not_found off;
    }";

const CLOSED: &str = "

    # closed: no Gig books this Venue
    location / {
        default_type text/html;
        add_header Retry-After 300 always;";

const MEDIA_COMMENT: &str = ": uploads, from the Act's shared dir; served as files, never run:
    # a browser may not sniff a type nor run a script in an uploaded page
    location ";

const MEDIA_HEADERS: &str = "
        add_header X-Content-Type-Options nosniff always;
        add_header Content-Security-Policy \"sandbox\" always;";

const STATIC_CACHE: &str = "
        expires 30d;
        add_header Cache-Control \"public\";";

const NO_ROOT: &str = "

    # no Gig is mounted at /
    location / {
        return 404;
    }";

const UWSGI_TIMEOUT: &str = "
        # a second less than the Sess' harakiri: a stuck request gets a 504 from nginx, then
        # uWSGI frees its worker
        uwsgi_read_timeout ";

const UWSGI_PARAMS: &str = "
        uwsgi_param QUERY_STRING $query_string;
        uwsgi_param REQUEST_METHOD $request_method;
        uwsgi_param CONTENT_TYPE $content_type;
        uwsgi_param CONTENT_LENGTH $content_length;
        uwsgi_param REQUEST_URI $request_uri;
        uwsgi_param PATH_INFO $document_uri;
        uwsgi_param DOCUMENT_ROOT $document_root;
        uwsgi_param SERVER_PROTOCOL $server_protocol;
        uwsgi_param REQUEST_SCHEME $scheme;
        uwsgi_param HTTPS $https if_not_empty;
        uwsgi_param REMOTE_ADDR $remote_addr;
        uwsgi_param REMOTE_PORT $remote_port;
        uwsgi_param SERVER_PORT $server_port;
        uwsgi_param SERVER_NAME $server_name;
        # the name nginx matched (never the raw Host header: Debian's hardening), with the port
        # a browser sends when it is not the default, so Django's CSRF origin check passes
        uwsgi_param HTTP_HOST ";

const UNDER_PREFIX: &str = "
        # mounted under a prefix: Django gets it as SCRIPT_NAME and the rest as PATH_INFO
        # (nginx strips it: uWSGI 2.0's modifier1 30 does not under Python 3)
        uwsgi_param SCRIPT_NAME ";

/// The site file of one Venue, from what [`render_site`] gathered.
fn write_site(ctx: &SiteCtx<'_>) -> Result<String, String> {
    let mut o = Out {
        text: String::with_capacity(4096),
        hsts: false,
    };
    o.put(&ctx.marker)
        .put("\n# Venue `")
        .put(ctx.venue)
        .put("` of production `")
        .put(ctx.production)
        .put("`: generated by Backstage from backstage.toml; edit that instead.");
    for u in &ctx.upstreams {
        o.put("\n\n# from gigs.")
            .put(u.gig)
            .put("\nupstream ")
            .arg(&u.name)?
            .put(" {");
        if u.servers.len() > 1 {
            o.put(UPSTREAM_BALANCE)
                .put("\n    zone ")
                .arg(&u.name)?
                .put(" 64k;");
        }
        for s in &u.servers {
            o.put("\n    server ")
                .arg(&s.address)?
                .put(" weight=")
                .num(s.weight)
                .put(";");
        }
        o.put("\n}");
    }
    for g in &ctx.gigs {
        o.put("\n\n# from gigs.")
            .put(g.name)
            .put(": `backstage status` probes with `X-Backstage-Probe: ")
            .put(ctx.production)
            .put("`;\n# only this Gig's location answers with its name\nmap $http_x_backstage_probe $")
            .put(&g.probe_var)
            .put(" {\n    default \"\";\n    ")
            .arg(ctx.production)?
            .put(" ")
            .arg(g.name)?
            .put(";\n}");
    }
    if let Some(TlsCtx {
        live_var: Some(var),
        live_dir,
        ..
    }) = &ctx.tls
    {
        o.put(ACME_LIVE)
            .put("\nmap $server_port $")
            .put(var)
            .put(" {\n    default ")
            .arg(live_dir)?
            .put(";\n}");
    }
    for s in &ctx.servers {
        server(&mut o, ctx, s)?;
    }
    // A blank line at the end, as the files have always ended: an upgrade rewrites no site.
    o.put("\n\n");
    Ok(o.text)
}

/// One `server` block: a plain or TLS listener of the Venue.
fn server(o: &mut Out, ctx: &SiteCtx<'_>, s: &ServerCtx) -> Result<(), String> {
    let tls = ctx.tls.as_ref().filter(|_| s.tls);
    o.hsts = tls.is_some_and(|t| t.hsts);
    o.put("\n\n# from venues.")
        .put(ctx.venue)
        .put("\nserver {\n    listen ")
        .arg(&s.listen)?
        .put(if s.tls { " ssl http2;" } else { ";" })
        .put("\n    server_name");
    for n in &ctx.server_names {
        o.put(" ").arg(n)?;
    }
    o.put(";");
    if let Some(tls) = tls {
        match &tls.live_var {
            Some(var) => {
                o.put("\n    ssl_certificate $")
                    .put(var)
                    .put("/fullchain.pem;\n    ssl_certificate_key $")
                    .put(var)
                    .put("/key.pem;");
            }
            None => {
                o.put("\n    ssl_certificate ")
                    .arg(tls.cert)?
                    .put(";\n    ssl_certificate_key ")
                    .arg(tls.key)?
                    .put(";");
            }
        }
        o.put(MOZILLA_TLS);
        if tls.hsts {
            o.put(SERVER_HSTS);
        }
    }
    if let Some(dir) = ctx.acme_challenge.as_deref().filter(|_| !s.tls) {
        o.put(ACME_CHALLENGE)
            .arg(dir)?
            .put(";\n        default_type text/plain;\n        access_log off;\n    }");
    }
    if s.redirect {
        o.put("\n    # plain HTTP only redirects to HTTPS\n    location / {\n        return 301 https://$host")
            .put(&ctx.redirect_port)
            .put("$request_uri;\n    }\n}");
        return Ok(());
    }
    o.put("\n    client_max_body_size ")
        .put(&ctx.max_body_size)
        .put(";")
        .put(HIDDEN_FILES);
    if ctx.closed {
        o.put(CLOSED);
        o.location_hsts();
        o.put("\n        return 503 ")
            .put(&quoted(&ctx.closed_page)?)
            .put(";\n    }\n}");
        return Ok(());
    }
    for st in &ctx.statics {
        static_location(o, st)?;
    }
    if !ctx.has_root {
        o.put(NO_ROOT);
    }
    for g in &ctx.gigs {
        gig_location(o, g, &s.host)?;
    }
    o.put("\n}");
    Ok(())
}

/// An Act's static files or uploads, and the previous release's fallback for static files.
fn static_location(o: &mut Out, st: &StaticCtx<'_>) -> Result<(), String> {
    o.put("\n    # from acts.").put(st.act);
    if st.media {
        o.put(MEDIA_COMMENT)
            .arg(st.prefix)?
            .put(" {\n        alias ")
            .arg(&st.dir)?
            .put(";")
            .put(MEDIA_HEADERS);
        o.location_hsts();
        o.put("\n    }");
        return Ok(());
    }
    o.put(": static files, served by nginx\n    location ")
        .arg(st.prefix)?
        .put(" {\n        alias ")
        .arg(&st.dir)?
        .put(";")
        .put(STATIC_CACHE);
    o.location_hsts();
    o.put("\n        access_log off;");
    if let Some(f) = &st.fallback {
        o.put("\n        # a file the live release lacks: the previous release's (pages it rendered still load)\n        try_files $uri ")
            .put(&f.name)
            .put(";");
    }
    o.put("\n    }");
    if let Some(f) = &st.fallback {
        o.put("\n\n    location ")
            .put(&f.name)
            .put(" {\n        root /;\n        rewrite ")
            .put(regex_arg(&f.regex)?)
            .put(" ")
            .put(regex_arg(&f.target)?)
            .put(" break;")
            .put(STATIC_CACHE);
        o.location_hsts();
        o.put("\n        access_log off;\n    }");
    }
    Ok(())
}

/// A Gig's location: its requests passed to the Gig's upstream over the uwsgi protocol.
fn gig_location(o: &mut Out, g: &GigCtx<'_>, host: &str) -> Result<(), String> {
    o.put("\n\n    # from gigs.")
        .put(g.name)
        .put("\n    location ")
        .arg(&g.location)?
        .put(" {\n        add_header X-Backstage-Gig $")
        .put(&g.probe_var)
        .put(" always;");
    o.location_hsts();
    o.put("\n        uwsgi_pass ")
        .arg(&g.upstream)?
        .put(";")
        .put(UWSGI_TIMEOUT)
        .num(g.read_timeout)
        .put("s;")
        .put(UWSGI_PARAMS)
        .put(host)
        .put(";");
    if !g.root {
        o.put(UNDER_PREFIX)
            .arg(g.path)?
            .put(";\n        rewrite ")
            .put(regex_arg(&g.path_regex)?)
            .put(" $1 break;");
    }
    o.put("\n    }");
    if !g.root {
        o.put("\n    location = ")
            .arg(g.path)?
            .put(" {\n        return 301 ")
            .arg(&g.location)?
            .put("$is_args$args;\n    }");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Venue's context with every variation the writer has: `tls` 0 none, 1 files, 2 ACME;
    /// `statics` 0 none, 1 static, 2 static with a release fallback, 3 static and media; `gigs`
    /// 0 none, 1 at `/`, 2 at `/` and under `/blog`.
    fn ctx_of(
        tls: u8,
        hsts: bool,
        closed: bool,
        statics: u8,
        gigs: u8,
        two_servers: bool,
    ) -> SiteCtx<'static> {
        let tls_ctx = |live_var: Option<String>| TlsCtx {
            cert: "/c/cert.pem",
            key: "/c/key.pem",
            live_var,
            live_dir: "/s/acme/v/live dir".into(),
            hsts,
        };
        let acme = tls == 2;
        let tls = match tls {
            0 => None,
            1 => Some(tls_ctx(None)),
            _ => Some(tls_ctx(Some("backstage__p__v_acme".into()))),
        };
        let mut servers = vec![ServerCtx {
            listen: "127.0.0.1:8080".into(),
            tls: false,
            redirect: tls.is_some(),
            host: "$host:8080".into(),
        }];
        if tls.is_some() {
            servers.push(ServerCtx {
                listen: "[::1]:8443".into(),
                tls: true,
                redirect: false,
                host: "$host:8443".into(),
            });
        }
        let plain = |prefix, dir: &str, media| StaticCtx {
            act: "club",
            prefix,
            dir: dir.into(),
            fallback: None,
            media,
        };
        let statics = match statics {
            0 => vec![],
            1 => vec![plain("/static/", "/srv/s/", false)],
            2 => vec![StaticCtx {
                fallback: Some(StaticFallback {
                    name: "@backstage-static-club-0".into(),
                    regex: "^/static/(.*)$".into(),
                    target: "/prev/static/$1".into(),
                }),
                ..plain("/static/", "/srv/s/", false)
            }],
            _ => vec![
                plain("/static/", "/srv/s/", false),
                plain("/media/", "/srv/m dir/", true),
            ],
        };
        let gig = |name: &'static str, root: bool| GigCtx {
            name,
            upstream: format!("backstage.p.{name}"),
            root,
            path: if root { "/" } else { "/blog" },
            path_regex: "^/blog(/.*)$".into(),
            location: if root { "/" } else { "/blog/" }.into(),
            probe_var: format!("backstage__p__{name}_probe"),
            read_timeout: 29,
        };
        let gigs = match gigs {
            0 => vec![],
            1 => vec![gig("home", true)],
            _ => vec![gig("home", true), gig("blog", false)],
        };
        let server = |address: &str, weight| UpstreamServer {
            address: address.into(),
            weight,
        };
        let upstreams = gigs
            .iter()
            .map(|g| UpstreamCtx {
                gig: g.name,
                name: g.upstream.clone(),
                servers: if two_servers {
                    vec![server("unix:/r/a.sock", 1), server("127.0.0.1:9001", 3)]
                } else {
                    vec![server("unix:/r/a.sock", 1)]
                },
            })
            .collect();
        SiteCtx {
            marker: files::marker(&"p".parse().unwrap()),
            production: "p",
            venue: "v",
            server_names: vec!["a.example", "b.example"],
            upstreams,
            servers,
            acme_challenge: acme.then(|| "/s/acme/challenges/".to_owned()),
            redirect_port: if tls.is_some() { ":8443" } else { "" }.into(),
            tls,
            max_body_size: "64m".into(),
            closed,
            closed_page: "<p>closed</p>".into(),
            statics,
            has_root: gigs.iter().any(|g| g.root),
            gigs,
        }
    }

    // Every block of the writer, in three sites (the snapshots were checked byte for byte
    // against the Tera template this writer replaced, over all 288 variations of `ctx_of`).
    #[test]
    fn an_acme_venue_with_hsts_releases_media_and_a_prefixed_gig() {
        insta::assert_snapshot!(write_site(&ctx_of(2, true, false, 2, 2, true)).unwrap());
        insta::assert_snapshot!(write_site(&ctx_of(1, false, false, 3, 1, false)).unwrap());
    }

    #[test]
    fn a_closed_tls_venue_with_hsts() {
        insta::assert_snapshot!(write_site(&ctx_of(1, true, true, 0, 0, false)).unwrap());
    }

    #[test]
    fn values_nginx_would_read_as_syntax_are_refused() {
        let mut ctx = ctx_of(0, false, false, 1, 1, false);
        ctx.statics[0].dir = "/srv/s/;evil".into();
        let err = write_site(&ctx).unwrap_err();
        assert!(err.contains("refusing to write ';'"), "{err}");
        let mut ctx = ctx_of(0, false, false, 2, 2, false);
        ctx.gigs[1].path_regex = "^/x{(.*)$".into();
        let err = write_site(&ctx).unwrap_err();
        assert!(err.contains("nginx regex"), "{err}");
        let mut ctx = ctx_of(0, false, true, 0, 0, false);
        ctx.closed_page = "<p>$host</p>".into();
        let err = write_site(&ctx).unwrap_err();
        assert!(err.contains("nginx string"), "{err}");
    }

    #[test]
    fn mount_regexes_escape_metacharacters() {
        assert_eq!(mount_regex("/late"), "^/late(/.*)$");
        assert_eq!(mount_regex("/a.b/c+d*"), "^/a\\.b/c\\+d\\*(/.*)$");
    }
}

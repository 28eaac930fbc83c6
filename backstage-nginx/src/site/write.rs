//! Writing a Venue's site from what [`super::render_site`] gathered: the fixed blocks are string
//! constants in file order, and every value goes through [`quote`], [`quoted`] or
//! [`regex_arg`].

use std::fmt::Write as _;

use super::{GigCtx, ServerCtx, SiteCtx, StaticCtx, TlsCtx};
use crate::render::{quote, quoted};

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
pub(super) fn write_site(ctx: &SiteCtx<'_>) -> Result<String, String> {
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

//! A Venue's site file: what its Gigs, Acts and TLS settings mean for nginx ([`render_site`]
//! gathers it), written out directly (`write`). The site is the one file rendered once per
//! Venue, thousands of times in a large Production, so it is written by code rather than a
//! template engine; `write` reads in file order, block by block.
//!
//! Every value goes through the quoting functions of `render` and `write`, which refuse (rather
//! than escape) anything nginx would read as syntax: a value can never inject configuration.

use std::collections::BTreeMap;

use backstage_core::values::{ServerName, Slug};
use backstage_core::{DEFAULT_HARAKIRI, Production, Venue, files};

use crate::error::Error;

mod write;

use write::write_site;

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
        // Only a closed Venue shows the page.
        closed_page: if gigs.is_empty() {
            closed_page(venue)
        } else {
            String::new()
        },
        statics,
        has_root,
        gigs: gig_ctx,
    };
    write_site(&ctx).map_err(|message| Error::Unwritable { origin, message })
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

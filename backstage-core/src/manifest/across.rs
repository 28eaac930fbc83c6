//! The checks that span sections, once every entry is built: each Sess' socket resolved and
//! unique, server names served twice, Gigs on one path, Sess on a Venue's address, static
//! prefixes two Acts would both serve at one Venue.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Resolves each Sess' socket against the layout, checking the kernel's unix path limit and
/// that no two Sess share a socket.
pub(super) fn resolve_sockets(
    ck: &mut Checker<'_>,
    production: &Slug,
    layout: &Layout,
    mode: Mode,
    raw: Vec<Named<RawSess>>,
) -> Vec<Named<Sess>> {
    let mut seen: HashMap<SessSocket, Slug> = HashMap::new();
    let mut out = Vec::new();
    for n in raw {
        let Named {
            name,
            key_span,
            path,
            item,
        } = n;
        let item = item.and_then(|r| {
            let (span, spath) = r
                .socket_span
                .clone()
                .unwrap_or_else(|| (key_span.clone(), path.clone()));
            let socket = match &r.socket {
                SocketSpec::UnixDefault => SessSocket::Unix(Production::default_socket(layout, production, &name)),
                SocketSpec::UnixPath(p) => SessSocket::Unix(p.clone()),
                SocketSpec::Tcp(a) => SessSocket::Tcp(*a),
            };
            let mut ok = true;
            let mut unix_paths: Vec<ConfPath> = Production::unix_paths_of(layout, mode, production, &name).into();
            if let SessSocket::Unix(p) = &socket {
                unix_paths.push(p.clone());
            }
            for p in unix_paths {
                if p.as_str().len() > UNIX_SOCKET_PATH_MAX {
                    ck.report_at(&spath, span.clone(),
                        format!("unix socket path `{p}` is {} bytes; the kernel's limit is {UNIX_SOCKET_PATH_MAX}", p.as_str().len()),
                        Some("use a shorter `state_dir` or `run_dir` (under /run or /tmp), or a shorter Sess name".to_owned()));
                    ok = false;
                    break;
                }
            }
            if let Some(other) = seen.get(&socket) {
                ck.report(&spath, span.clone(), format!("Sess `{name}` and Sess `{other}` both listen on `{socket}`"));
                ok = false;
            } else {
                seen.insert(socket.clone(), name.clone());
            }
            let mut sess = r.sess;
            sess.socket = socket;
            ok.then_some(sess)
        });
        out.push(Named {
            name,
            key_span,
            path,
            item,
        });
    }
    out
}

/// Checks that span several sections: names served twice, Gigs on the same path, sockets on
/// a Venue's address, and static prefixes two Acts would both serve at one Venue.
pub(super) fn cross_checks(
    ck: &mut Checker<'_>,
    sess: &[Named<Sess>],
    venues: &[Named<RawVenue>],
    gigs: &[Named<RawGig>],
    acts: &[Named<Act>],
) {
    // A worker runs on its Act's Sess' Stage and account: an Act with workers needs a Sess.
    for a in acts {
        let Some(act) = &a.item else { continue };
        if (act.workers.is_empty() && act.cron.is_empty())
            || sess
                .iter()
                .any(|s| s.item.as_ref().is_some_and(|s| s.act == a.name))
        {
            continue;
        }
        ck.report_at(
            &a.path,
            a.key_span.clone(),
            format!("Act `{}` has workers or cron jobs but no Sess plays it", a.name),
            Some("a worker runs with the Stage, account and secrets of its Act's first Sess: add a `[sess.*]` with `act = \"NAME\"`".replace("NAME", a.name.as_str())),
        );
    }
    // One server name on overlapping listen addresses in two Venues.
    let mut by_name: HashMap<&ServerName, Vec<(&Slug, &RawVenue, usize)>> = HashMap::new();
    for v in venues {
        let Some(rv) = &v.item else { continue };
        for (i, n) in rv.venue.server_names.iter().enumerate() {
            by_name.entry(n).or_default().push((&v.name, rv, i));
        }
    }
    let mut clashes = Vec::new();
    for (name, holders) in &mut by_name {
        // Report at the later occurrence in the file.
        holders.sort_by_key(|(_, rv, i)| rv.names[*i].0.start);
        for (j, (vname, rv, i)) in holders.iter().enumerate() {
            let earlier = holders[..j].iter().find(|(other, orv, _)| {
                other != vname
                    && rv
                        .venue
                        .listen
                        .iter()
                        .any(|a| orv.venue.listen.iter().any(|b| a.overlaps(b)))
            });
            if let Some((other, _, _)) = earlier {
                let (span, p) = rv.names[*i].clone();
                clashes.push((p, span, format!("server name `{name}` is served by Venue `{other}` too, on the same listen address")));
            }
        }
    }
    for (p, span, m) in clashes {
        ck.report(&p, span, m);
    }

    // A Sess on a TCP address a Venue listens on (few Sess use TCP: index them first).
    let tcp_sess: Vec<(&Slug, SocketAddr)> = sess
        .iter()
        .filter_map(|s| match &s.item {
            Some(Sess {
                socket: SessSocket::Tcp(a),
                ..
            }) => Some((&s.name, *a)),
            _ => None,
        })
        .collect();
    if !tcp_sess.is_empty() {
        for v in venues {
            let Some(rv) = &v.item else { continue };
            for (i, l) in rv.venue.listen.iter().enumerate() {
                for (name, a) in &tcp_sess {
                    if ListenAddr::Socket(*a).overlaps(l) {
                        let (span, p) = rv.listens[i].clone();
                        ck.report(
                            &p,
                            span,
                            format!(
                                "Venue `{}` listens on `{l}`, where Sess `{name}` listens",
                                v.name
                            ),
                        );
                    }
                }
            }
        }
    }

    // Two Gigs on one Venue and path; static prefixes served twice at one Venue.
    let act_of: HashMap<&Slug, &Slug> = sess
        .iter()
        .filter_map(|s| Some((&s.name, &s.item.as_ref()?.act)))
        .collect();
    let acts: HashMap<&Slug, &Act> = acts
        .iter()
        .filter_map(|a| Some((&a.name, a.item.as_ref()?)))
        .collect();
    let mut mounts: HashMap<(&Slug, &UrlPath), &Slug> = HashMap::new();
    let mut statics: HashMap<(&Slug, &UrlPrefix), (&ConfPath, &Slug)> = HashMap::new();
    for g in gigs {
        let Some(rg) = &g.item else { continue };
        let gig = &rg.gig;
        if let Some(other) = mounts.get(&(&gig.venue, &gig.path)) {
            let (span, p) = rg.path_span.clone();
            ck.report(
                &p,
                span,
                format!(
                    "Gig `{}` and Gig `{other}` are both mounted at `{}` on Venue `{}`",
                    g.name, gig.path, gig.venue
                ),
            );
        } else {
            mounts.insert((&gig.venue, &gig.path), &g.name);
        }
        for (s, _) in &gig.sess {
            let Some(act) = act_of.get(s).and_then(|a| acts.get(*a)) else {
                continue;
            };
            for (prefix, dir) in &act.static_dirs {
                match statics.get(&(&gig.venue, prefix)) {
                    Some((d, _)) if *d == dir => {}
                    Some((_, other)) => {
                        let (span, p) = rg.venue_span.clone();
                        ck.report(&p, span, format!(
                            "Gig `{}` and Gig `{other}` serve different directories at `{prefix}` on Venue `{}`",
                            g.name, gig.venue));
                    }
                    None => {
                        statics.insert((&gig.venue, prefix), (dir, &g.name));
                    }
                }
            }
        }
    }
}

//! What the renderers produce: the files a Production implies.
//!
//! `backstage-uwsgi` renders vassals and `backstage-nginx` renders sites into [`DesiredFile`]s;
//! `render`, `plan` and `apply` work on the set without knowing either format.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The kind of a generated file (the `kind` of `plan --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileKind {
    /// A uWSGI vassal `.ini` for one Sess.
    Vassal,
    /// An nginx site (the `server` blocks of one Venue, or a Gig's upstream).
    Site,
    /// User mode: the complete `nginx.conf`.
    NginxConf,
    /// A static page (the closed Venue's 503 page).
    Page,
    /// A symbolic link Backstage keeps: a Sess' socket link, or (system mode) a site's link in
    /// `sites-enabled`. Never rendered; `plan` reports one that is missing or points elsewhere
    /// (after a reboot empties `/run`, say) and `apply` restores it.
    Link,
    /// A socket-less uWSGI vassal running a worker or a cron job of an Act.
    Worker,
    /// The socket-less vassal that runs `backstage tls renew` twice a day (ACME Venues).
    Renewal,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Vassal => "vassal",
            FileKind::Site => "site",
            FileKind::NginxConf => "nginx_conf",
            FileKind::Page => "page",
            FileKind::Link => "link",
            FileKind::Worker => "worker",
            FileKind::Renewal => "renewal",
        })
    }
}

/// One file a Production implies: where it goes, what it holds, and which manifest entry it
/// comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredFile {
    /// What kind of file it is.
    pub kind: FileKind,
    /// The entry's name (`club-a`, `jazz`, …).
    pub name: String,
    /// Its absolute path on the live system.
    pub path: PathBuf,
    /// Its complete content, starting with the Production's marker line.
    pub content: String,
    /// The manifest entry it comes from (`sess.club-a`, `venues.jazz`).
    pub origin: String,
}

//! nginx for Backstage: renders what a Production's Venues and Gigs mean for nginx, has nginx
//! itself check the result before anything goes live, and reloads it.
//!
//! - [`render`] turns a validated [`Production`](backstage_core::Production) into
//!   [`DesiredFile`](backstage_core::DesiredFile)s: one site per Venue (`upstream
//!   backstage.<production>.<gig>` per Gig, a `server` per listen address, the Gigs'
//!   `location`s, the Acts' static files, TLS, a 503 page when the Venue is closed), and in
//!   user mode a complete `nginx.conf` whose every runtime path lies in the state dir.
//! - [`validate`] has nginx itself test those files and maps a rejection back to the Venue or
//!   Gig at fault: in user mode against a throwaway `nginx.conf`, in system mode against the
//!   server's own configuration, the candidates shown at the live paths in a private mount
//!   namespace; [`check_foreign`] refuses server names other sites already serve.
//! - [`reload`] signals the master and confirms that new workers took over;
//!   [`SystemNginx`] reads what the server's `nginx.conf` says (worker account, pid file) and
//!   reloads it the way the server expects.
//!
//! The files are written from validated values only: each Venue's site by code (it is the file
//! rendered thousands of times in a large Production), `nginx.conf` from a Tera template. Both
//! quote every value through the same functions, which refuse (rather than escape) anything
//! nginx would read as syntax, so a value cannot inject configuration.
//!
//! ```
//! use std::path::PathBuf;
//! use backstage_core::{FileKind, Manifest};
//!
//! let text = r#"
//! [production]
//! name = "jazzclub"
//! [acts.club]
//! root = "club"
//! wsgi = "club.wsgi:application"
//! [stages.local]
//! virtualenv = "venv"
//! [sess.club-a]
//! act = "club"
//! stage = "local"
//! [venues.jazz]
//! server_names = ["jazz.localhost"]
//! [gigs.home]
//! venue = "jazz"
//! sess = ["club-a"]
//! "#;
//! let manifest = Manifest::from_source("backstage.toml".into(), PathBuf::from("/srv/jazz"), text.into());
//! let production = manifest.load().unwrap();
//! let files = backstage_nginx::render(&production).unwrap();
//! let site = files.iter().find(|f| f.kind == FileKind::Site).unwrap();
//! assert_eq!(site.path, PathBuf::from("/srv/jazz/.backstage/nginx/sites/backstage.jazzclub.jazz.conf"));
//! assert!(site.content.contains("upstream backstage.jazzclub.home {"));
//! assert!(files.iter().any(|f| f.kind == FileKind::NginxConf));
//! ```
#![deny(missing_docs)]

mod enable;
mod error;
mod foreign;
mod namespace;
mod reload;
mod render;
mod site;
mod system;
mod validate;

pub use enable::{disable_site, enable_site, enabled_link};
pub use error::Error;
pub use foreign::{ForeignSite, NameClash, check_foreign, foreign_clashes, foreign_server_names};
pub use reload::{Reloaded, children, master_pid, reload};
pub use render::{
    PROBE_ANSWER, PROBE_HEADER, RenderOptions, UserNginx, WorkerUser, render, render_with,
    site_path,
};
pub use system::{SystemNginx, systemd_runs_nginx};
pub use validate::{NGINX_ENV, NginxBinary, validate};

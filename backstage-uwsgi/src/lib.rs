//! The uwsgi wire protocol, uWSGI vassal rendering and Emperor control.
//!
//! This crate is being built; see its README for scope.
#![deny(missing_docs)]

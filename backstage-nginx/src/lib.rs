//! nginx site rendering, `nginx -t` validation and reload for Backstage.
//!
//! This crate is being built; see its README for scope.
#![deny(missing_docs)]

//! The uwsgi wire protocol, uWSGI vassal rendering and Emperor control.
//!
//! This crate is being built; see its README for scope.
#![deny(missing_docs)]

pub mod emperor;
pub mod stage_error;
pub mod stage_manager;
pub mod stage_set;
pub mod vassal;

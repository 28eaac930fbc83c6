//! Backstage's domain: the Production and everything in it.
#![deny(missing_docs)]

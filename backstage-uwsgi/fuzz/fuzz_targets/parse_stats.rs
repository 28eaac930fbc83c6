//! Stats::parse on arbitrary bytes (uWSGI's unescaped JSON and worse): never panics.
#![no_main]
use backstage_uwsgi::{Error, Stats};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Stats::parse(data) {
        Ok(_) => {}
        Err(Error::InvalidStats { offset, .. }) => assert!(offset <= data.len()),
        Err(other) => panic!("unexpected error {other:?}"),
    }
});

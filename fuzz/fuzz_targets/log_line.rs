//! Fuzz the log-line readers of `backstage logs`: any bytes, as a line, must give a time or
//! none, and a host or none, without a panic.
#![no_main]

use backstage_manager::logs::{access_host, error_host, parse_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = parse_time(&line, &jiff::tz::TimeZone::UTC);
    if let Some(host) = access_host(&line) {
        assert!(line.contains(host));
    }
    if let Some(host) = error_host(&line) {
        assert!(line.contains(host));
    }
});

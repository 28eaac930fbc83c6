//! ResponseHead::parse on arbitrary bytes: never panics, never claims more than it was given.
#![no_main]
use backstage_uwsgi::ResponseHead;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = ResponseHead::parse(data, 4096) {
        assert!(used <= data.len());
    }
});

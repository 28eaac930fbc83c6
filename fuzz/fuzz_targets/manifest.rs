//! Fuzz the manifest loader: any bytes, as UTF-8 text, must validate or be rejected without a
//! panic, and every problem must point inside the source.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let manifest = backstage_core::Manifest::from_source(
        "backstage.toml".into(),
        "/srv/fuzz".into(),
        text.to_owned(),
    );
    for p in manifest.check() {
        assert!(p.span.end <= text.len());
    }
});

//! Fuzz the manifest loader: any bytes must validate or be rejected without a panic; bytes that
//! are not UTF-8 are refused at their first invalid byte, and every problem points inside the
//! source.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match backstage_core::Manifest::from_bytes(
        "backstage.toml".into(),
        "/srv/fuzz".into(),
        data.to_vec(),
    ) {
        Ok(manifest) => {
            for p in manifest.check() {
                assert!(p.span.end <= data.len());
            }
        }
        Err(backstage_core::Error::NotUtf8 { offset, .. }) => {
            assert!(std::str::from_utf8(&data[..offset]).is_ok());
        }
        Err(e) => panic!("unexpected error {e}"),
    }
});

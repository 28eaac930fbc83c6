//! Fuzz the dotenv reader of `backstage env import` and of the secret store: any bytes give
//! the entries or an error naming a line inside the input, never a panic; and every entry read
//! is written back by `dotenv_line` as a line that reads back as exactly the same value.
#![no_main]

use backstage_core::secrets::{SecretsError, dotenv_line, parse_dotenv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|b| *b == b'\n').count();
    match parse_dotenv(data) {
        Ok(entries) => {
            let text: String = entries.iter().map(|(k, v)| dotenv_line(k, v)).collect();
            let again = parse_dotenv(text.as_bytes()).expect("written lines read back");
            assert_eq!(again.len(), entries.len());
            for (k, v) in &entries {
                assert_eq!(again[k].expose(), v.expose(), "{k}");
            }
        }
        Err(
            SecretsError::NotUtf8 { line }
            | SecretsError::Syntax { line }
            | SecretsError::BadKey { line, .. }
            | SecretsError::BadValue { line, .. },
        ) => assert!(line <= lines, "line {line} of {lines}"),
        Err(_) => {}
    }
});

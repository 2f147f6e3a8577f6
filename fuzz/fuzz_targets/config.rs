//! Arbitrary text as `centralino.toml`: checking a config must end in a config or in
//! errors that name lines and keys, never in a panic. The error is rendered too, since
//! its line and column arithmetic runs on the same text.
#![no_main]

use centralino::config::Config;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    // Secrets are not resolved: that reads `env:` and `file:` references, which is I/O on
    // the admin's machine, not parsing.
    if let Err(error) = Config::parse("fuzz/centralino.toml", text) {
        let _ = error.to_string();
        let _ = error.lines();
    }
});

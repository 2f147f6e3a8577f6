//! Arbitrary bytes as a correctly signed Account Activity delivery, through the host.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    centralino_fuzz::deliver_signed("twitter", body);
});

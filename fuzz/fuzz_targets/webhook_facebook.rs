//! Arbitrary bytes as a correctly signed Graph (Messenger, page feed) delivery, through
//! the host.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    centralino_fuzz::deliver_signed("facebook", body);
});

//! Fuzzes the AMF0 decoder (`ferrocast_proto::amf0`).
//!
//! Any input may be rejected, none may panic. Whatever decodes must re-encode to bytes
//! that decode again, completely, to a value with the same encoding. Encodings are
//! compared rather than values because a NaN number is not equal to itself.

#![no_main]

use ferrocast_proto::amf0::{decode, decode_all, encode, Amf0Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Amf0Limits::default();
    let _ = decode_all(data, &limits);

    let Ok((first, used)) = decode(data, &limits) else {
        return;
    };
    assert!(used <= data.len());

    let mut once = Vec::new();
    encode(&first, &mut once);
    let (second, used) = match decode(&once, &limits) {
        Ok(decoded) => decoded,
        Err(e) => panic!("re-decoding our own encoding failed: {e}"),
    };
    assert_eq!(used, once.len(), "re-decoding stopped short of the end");

    let mut twice = Vec::new();
    encode(&second, &mut twice);
    assert_eq!(once, twice, "encoding changed across a round trip");
});

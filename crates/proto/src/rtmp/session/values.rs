//! Small helpers both state machines use on what they receive: metadata recognised
//! in a data message, AMF0 values encoded back into a payload, ids read from AMF0
//! numbers, and peer-supplied names cut before they are quoted in an error or a
//! [`super::Tolerated`] summary.

use bytes::Bytes;

use crate::amf0::{self, Amf0Value};
use crate::rtmp::message::type_id;

pub(super) use crate::rtmp::message::short_name as short;

/// Recognises metadata in a data message: `@setDataFrame, onMetaData, value` (as
/// encoders send it) or `onMetaData, value` (as servers forward it). Returns the
/// AMF0 bytes of `onMetaData, value` and those two values. Re-encoding, rather than
/// slicing the received payload, keeps the output independent of how the peer
/// encoded the strings; metadata arrives once per publish, so the copy is cheap.
pub(super) fn metadata_from_data(mut values: Vec<Amf0Value>) -> Option<(Bytes, Vec<Amf0Value>)> {
    if values.first().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
        values.remove(0);
    }
    if values.len() < 2 || values[0].as_str() != Some("onMetaData") {
        return None;
    }
    values.truncate(2);
    Some((encode_values(&values), values))
}

pub(super) fn encode_values(values: &[Amf0Value]) -> Bytes {
    let mut out = Vec::new();
    for value in values {
        amf0::encode(value, &mut out);
    }
    Bytes::from(out)
}

pub(super) fn is_media_or_data(type_id: u8) -> bool {
    matches!(
        type_id,
        type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3
    )
}

/// A transaction or stream id from the wire, if it is a whole number that fits u32.
pub(super) fn f64_to_u32(v: f64) -> Option<u32> {
    if v.is_finite() && v >= 0.0 && v <= f64::from(u32::MAX) && v.fract() == 0.0 {
        Some(v as u32)
    } else {
        None
    }
}

//! Codec configuration parsing: what players need to know about a track
//! (codec, resolution, profile/level, sample rate, channels).

pub mod aac;
pub mod h264;
pub mod h265;

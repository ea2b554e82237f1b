//! Just enough MPEG-TS reading (ISO/IEC 13818-1) to time an HLS segment: the PTS and
//! DTS of its first video PES. PAT -> PMT -> the first video elementary stream's PID
//! -> the first PES that starts on it. Pure; a segment is a byte slice.

/// A TS packet is 188 bytes and starts with this sync byte.
const PACKET: usize = 188;
const SYNC: u8 = 0x47;

/// Video stream types in a PMT (13818-1 Table 2-34): MPEG-1/2 video, MPEG-4 part 2,
/// H.264, H.265.
const VIDEO_STREAM_TYPES: [u8; 5] = [0x01, 0x02, 0x10, 0x1b, 0x24];

/// The first video PES's timestamps, in 90 kHz ticks as written (33 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTime {
    pub pts_90k: u64,
    /// The DTS, or the PTS when the PES carries none (then they are equal).
    pub dts_90k: u64,
}

/// Finds the first video PES of `ts` and returns its timestamps.
pub fn first_video_time(ts: &[u8]) -> Result<VideoTime, String> {
    let mut pmt_pid = None;
    let mut video_pid = None;
    for (index, packet) in ts.chunks(PACKET).enumerate() {
        if packet.len() < PACKET {
            break;
        }
        if packet[0] != SYNC {
            return Err(format!(
                "packet {index} (offset {}) has no sync byte",
                index * PACKET
            ));
        }
        let pusi = packet[1] & 0x40 != 0;
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let Some(payload) = payload(packet) else {
            continue;
        };
        if !pusi {
            continue;
        }
        if pid == 0 && pmt_pid.is_none() {
            pmt_pid = pat_first_program(payload);
        } else if Some(pid) == pmt_pid && video_pid.is_none() {
            video_pid = pmt_first_video(payload);
        } else if video_pid.is_some() && Some(pid) == video_pid {
            return pes_times(payload)
                .ok_or_else(|| format!("video PES at offset {} has no PTS", index * PACKET));
        }
    }
    Err(match (pmt_pid, video_pid) {
        (None, _) => "no PAT".to_owned(),
        (Some(_), None) => "no PMT with a video stream".to_owned(),
        (Some(_), Some(pid)) => format!("no PES start on video PID 0x{pid:x}"),
    })
}

/// The payload of a packet, past the adaptation field; `None` if it has none.
fn payload(packet: &[u8]) -> Option<&[u8]> {
    let control = (packet[3] >> 4) & 0x3;
    let mut start = 4;
    if control & 0x2 != 0 {
        start += 1 + usize::from(packet[4]);
    }
    if control & 0x1 == 0 || start >= PACKET {
        return None;
    }
    Some(&packet[start..])
}

/// A PSI section behind its pointer_field, cut to section_length (CRC included).
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    let length = (usize::from(*s.get(1)? & 0x0f) << 8) | usize::from(*s.get(2)?);
    s.get(..3 + length)
}

/// The PMT PID of the PAT's first program (program_number 0 is the network PID).
fn pat_first_program(payload: &[u8]) -> Option<u16> {
    let s = section(payload)?;
    if s[0] != 0x00 {
        return None;
    }
    // Header is 8 bytes, the CRC the last 4; entries of 4 bytes between.
    s.get(8..s.len().checked_sub(4)?)?
        .chunks_exact(4)
        .find(|e| e[0] != 0 || e[1] != 0)
        .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
}

/// The PID of the PMT's first video elementary stream.
fn pmt_first_video(payload: &[u8]) -> Option<u16> {
    let s = section(payload)?;
    if s[0] != 0x02 {
        return None;
    }
    let info_len = (usize::from(*s.get(10)? & 0x0f) << 8) | usize::from(*s.get(11)?);
    let end = s.len().checked_sub(4)?;
    let mut at = 12 + info_len;
    while at + 5 <= end {
        let stream_type = s[at];
        let pid = (u16::from(s[at + 1] & 0x1f) << 8) | u16::from(s[at + 2]);
        let es_info = (usize::from(s[at + 3] & 0x0f) << 8) | usize::from(s[at + 4]);
        if VIDEO_STREAM_TYPES.contains(&stream_type) {
            return Some(pid);
        }
        at += 5 + es_info;
    }
    None
}

/// PTS and DTS from the PES header at the start of `payload`.
fn pes_times(payload: &[u8]) -> Option<VideoTime> {
    if payload.get(..3)? != [0, 0, 1] {
        return None;
    }
    let flags = *payload.get(7)? >> 6;
    let pts = timestamp(payload.get(9..14)?);
    match flags {
        0b10 => Some(VideoTime {
            pts_90k: pts,
            dts_90k: pts,
        }),
        0b11 => Some(VideoTime {
            pts_90k: pts,
            dts_90k: timestamp(payload.get(14..19)?),
        }),
        _ => None,
    }
}

/// A 33-bit PES timestamp from its 5 bytes (marker bits skipped).
fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x7) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use ferrocast_proto::flv::parse_video_tag;
    use ferrocast_proto::mpegts::{TsMuxer, TIMESTAMP_OFFSET_90K};

    /// ffmpeg/x264 + AAC, 0.2 s, the proto crate's fixture.
    const TINY_FLV: &[u8] = include_bytes!("../../proto/tests/fixtures/tiny.flv");

    /// Muxes the fixture's tags from the `skip`-th video frame on, with the FLV
    /// timestamps shifted by `shift_ms`, as the server's HLS task does (tables first).
    fn mux(skip: usize, shift_ms: u32) -> (BytesMut, u32, i32) {
        let media = crate::publish::load_flv(Bytes::from_static(TINY_FLV)).unwrap();
        let mut mux = TsMuxer::new();
        let mut out = BytesMut::new();
        for h in &media.headers {
            let _ = if h.video {
                mux.write_video(0, &h.body, &mut out)
            } else {
                mux.write_audio(0, &h.body, &mut out)
            };
        }
        out.clear();
        mux.write_tables(&mut out);
        let mut first = None;
        let mut videos = 0;
        for t in &media.tags {
            if t.video {
                videos += 1;
            }
            if videos <= skip {
                continue;
            }
            let ts = t.timestamp + shift_ms;
            if t.video {
                if first.is_none() {
                    let cts = parse_video_tag(&t.body).unwrap().composition_time;
                    first = Some((ts, cts));
                }
                mux.write_video(ts, &t.body, &mut out).unwrap();
            } else {
                mux.write_audio(ts, &t.body, &mut out).unwrap();
            }
        }
        let (ts, cts) = first.unwrap();
        (out, ts, cts)
    }

    #[test]
    fn reads_the_servers_muxer_back() {
        for (skip, shift) in [(0, 0), (1, 0), (2, 123_456), (3, 7_200_000)] {
            let (ts, first_ms, cts) = mux(skip, shift);
            let t = first_video_time(&ts).unwrap();
            let dts = u64::from(first_ms) * 90 + TIMESTAMP_OFFSET_90K;
            assert_eq!(t.dts_90k, dts, "skip {skip}");
            assert_eq!(t.pts_90k, dts + cts as u64 * 90, "skip {skip}");
        }
    }

    #[test]
    fn refuses_what_is_not_ts() {
        assert_eq!(first_video_time(&[]), Err("no PAT".to_owned()));
        assert!(first_video_time(&[0u8; 188]).is_err());
        let (ts, _, _) = mux(0, 0);
        // Without its first packets (PAT, PMT) the video PID is unknown.
        assert!(first_video_time(&ts[2 * PACKET..]).is_err());
        // Cut in the middle of a packet: the whole packets still read.
        assert!(first_video_time(&ts[..ts.len() - 100]).is_ok());
    }

    #[test]
    fn timestamp_bits() {
        // 0x1_2345_6789 with marker bits set, as 13818-1 2.4.3.7 lays them out.
        let v: u64 = 0x1_2345_6789;
        let b = [
            0x21 | ((v >> 29) & 0x0e) as u8,
            (v >> 22) as u8,
            (((v >> 14) & 0xfe) | 1) as u8,
            (v >> 7) as u8,
            (((v << 1) & 0xfe) | 1) as u8,
        ];
        assert_eq!(timestamp(&b), v);
    }
}

//! Maps publisher timestamps onto a stream's output timeline, which players see.
//!
//! Players (ffmpeg, browsers, set-top boxes) fail on timestamps that go backwards or
//! leap ahead: a publisher that restarts begins again at 0, and some encoders jump.
//! The output timeline keeps every track monotonic and continuous: after a restart
//! the new publisher's first message lands just after the last one sent, and a jump
//! (backwards by more than [`BACK_JUMP_MS`] or forwards by more than
//! [`FORWARD_JUMP_MS`]) is folded away the same way. The relation between audio and
//! video of one publisher is kept (one offset for both tracks).

/// Audio and video of one publisher may interleave a little out of order; a step
/// back beyond this is a jump, not interleaving.
pub const BACK_JUMP_MS: i64 = 1_000;
/// A gap longer than this between consecutive messages is a jump (no real stream
/// sends nothing for 10 s and then goes on).
pub const FORWARD_JUMP_MS: i64 = 10_000;
/// Gap left between the last output and the first message after a rebase.
const REBASE_GAP_MS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video = 0,
    Audio = 1,
    Data = 2,
}

#[derive(Debug, Default)]
pub struct Timeline {
    offset: i64,
    /// Last input per track since the last restart (unwrapped), for jump detection:
    /// each track is judged against itself, so a constant skew between audio and
    /// video (separate clocks in some cameras) is not a jump.
    last_in: [Option<i64>; 2],
    /// Last output per track.
    last_out: [Option<i64>; 3],
    rebase_pending: bool,
    started: bool,
    jumps: u64,
}

/// What `map` noticed, for logging once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Normal(u32),
    Jump { output: u32, from: i64, to: i64 },
}

impl Timeline {
    pub fn new() -> Self {
        Timeline::default()
    }

    /// A new publisher takes over: its first message continues the timeline.
    pub fn restart(&mut self) {
        self.rebase_pending = true;
        self.last_in = [None; 2];
    }

    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    fn max_out(&self) -> Option<i64> {
        self.last_out.iter().flatten().copied().max()
    }

    /// Offset that puts `input` just after everything sent so far.
    fn rebase_to(&mut self, input: i64) {
        let base = self.max_out().map(|m| m + REBASE_GAP_MS).unwrap_or(0);
        self.offset = base - input;
    }

    pub fn map(&mut self, track: Track, ts: u32) -> Mapped {
        let mut input = ts as i64;
        let mut jump = None;
        if track == Track::Data {
            // Metadata carries no clock of its own (encoders resend it stamped 0):
            // place it at the current point of the timeline.
            let out = self.max_out().unwrap_or(0);
            self.last_out[Track::Data as usize] = Some(out);
            return Mapped::Normal(out as u32);
        }
        let t = track as usize;
        if !self.started || (self.rebase_pending && self.last_in.iter().all(Option::is_none)) {
            if self.rebase_pending {
                self.rebase_to(input);
            }
            self.started = true;
            self.rebase_pending = false;
        } else if let Some(last) = self.last_in[t] {
            // The publisher's 32-bit clock wrapped (after ~49.7 days): keep counting.
            let last32 = last.rem_euclid(1 << 32);
            if last32 > (u32::MAX as i64) - FORWARD_JUMP_MS && input < FORWARD_JUMP_MS {
                input += last - last32 + (1 << 32);
            } else {
                input += last - last32;
            }
            if input < last - BACK_JUMP_MS || input > last + FORWARD_JUMP_MS {
                self.rebase_to(input);
                self.jumps += 1;
                jump = Some((last, input));
            }
        } else if let Some(other) = self.last_in[1 - t] {
            // First message of this track: unwrap it like the other track's clock.
            let other32 = other.rem_euclid(1 << 32);
            input += other - other32;
        }
        self.last_in[t] = Some(input);
        let mut out = (input + self.offset).max(0);
        if let Some(prev) = self.last_out[t] {
            out = out.max(prev);
        }
        self.last_out[t] = Some(out);
        let out32 = out as u32; // the RTMP/FLV timestamp field wraps at 2^32 ms
        match jump {
            Some((from, to)) => Mapped::Jump {
                output: out32,
                from,
                to,
            },
            None => Mapped::Normal(out32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(m: Mapped) -> u32 {
        match m {
            Mapped::Normal(v) | Mapped::Jump { output: v, .. } => v,
        }
    }

    #[test]
    fn passes_a_normal_stream_through() {
        let mut t = Timeline::new();
        assert_eq!(out(t.map(Track::Video, 0)), 0);
        assert_eq!(out(t.map(Track::Audio, 23)), 23);
        assert_eq!(out(t.map(Track::Video, 40)), 40);
        assert_eq!(out(t.map(Track::Audio, 20)), 23, "a track never goes back");
        assert_eq!(out(t.map(Track::Video, 80)), 80);
    }

    #[test]
    fn restart_continues_after_last_output() {
        let mut t = Timeline::new();
        for ts in (0..=5000).step_by(40) {
            t.map(Track::Video, ts);
        }
        t.restart();
        assert_eq!(out(t.map(Track::Video, 0)), 5001);
        assert_eq!(out(t.map(Track::Audio, 10)), 5011);
        assert_eq!(out(t.map(Track::Video, 40)), 5041);
    }

    #[test]
    fn jumps_are_folded_and_counted() {
        let mut t = Timeline::new();
        t.map(Track::Video, 1000);
        t.map(Track::Video, 1040);
        assert!(matches!(
            t.map(Track::Video, 0),
            Mapped::Jump { output: 1041, .. }
        ));
        assert_eq!(out(t.map(Track::Video, 40)), 1081);
        assert!(matches!(
            t.map(Track::Video, 900_000),
            Mapped::Jump { output: 1082, .. }
        ));
        assert_eq!(out(t.map(Track::Video, 900_040)), 1122);
        assert_eq!(t.jumps(), 2);
    }

    #[test]
    fn constant_skew_between_tracks_is_not_a_jump() {
        let mut t = Timeline::new();
        for i in 0..100u32 {
            let v = out(t.map(Track::Video, 10_000 + i * 40));
            let a = out(t.map(Track::Audio, 8_500 + i * 40));
            assert_eq!(v, 10_000 + i * 40);
            assert_eq!(a, 8_500 + i * 40);
        }
        assert_eq!(t.jumps(), 0);
    }

    #[test]
    fn metadata_restamped_at_zero_does_not_move_the_timeline() {
        let mut t = Timeline::new();
        t.map(Track::Video, 5000);
        assert_eq!(out(t.map(Track::Data, 0)), 5000);
        assert_eq!(out(t.map(Track::Video, 5040)), 5040);
        assert_eq!(t.jumps(), 0);
    }

    #[test]
    fn never_negative() {
        let mut t = Timeline::new();
        for ts in (0..=2000).step_by(40) {
            t.map(Track::Video, ts);
        }
        t.restart();
        t.map(Track::Video, 100_000);
        // Audio of the new publisher slightly older than its video.
        let a = out(t.map(Track::Audio, 99_990));
        assert!(a >= 1990, "{a}");
    }

    #[test]
    fn publisher_clock_wrap_is_continuous() {
        let mut t = Timeline::new();
        let near = u32::MAX - 50;
        assert_eq!(out(t.map(Track::Video, near)), near);
        let o = out(t.map(Track::Video, 30));
        assert_eq!(o, near.wrapping_add(81));
    }
}

//! [`Tolerated`]: the peer quirks a session let pass, counted per kind.
//!
//! The sessions are lenient where refusing would only cut off a working encoder or
//! server (see "What is lenient" in the [session docs](super)). Lenient must not mean
//! invisible: a peer that sends a command we do not know, media before it publishes,
//! or chunks that leave out an extended timestamp is worth one line in the driver's
//! log, so that "it works with OBS but not with X" starts from facts. This crate does
//! no logging, so each place that ignores or works around input bumps a named counter
//! here, and the driver prints the summary once, when the connection ends.
//!
//! Counting is cheap on purpose: a counter add on paths that already drop the input,
//! and one short copy of the first offending name (bounded by
//! `MAX_NAME_IN_ERROR`) per kind and connection.

use std::fmt;

/// Input a session ignored or worked around instead of failing, counted per kind,
/// with the first example of the kinds where the example says something. All zero
/// for a well-behaved peer; [`fmt::Display`] gives one summary for a log line,
/// e.g. `unknown command x3 (first: 'foo'), media outside a publish x1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tolerated {
    /// Commands the session does not handle (Flash-era extras such as `onBWDone`,
    /// `receiveAudio`, `pause`): ignored.
    pub unknown_commands: u64,
    /// Name of the first such command, cut to a bounded length.
    pub first_unknown_command: Option<String>,
    /// Audio, video or data messages before `connect` (server): dropped.
    pub media_before_connect: u64,
    /// Audio, video or data messages on a message stream that is not publishing
    /// (before publish, after unpublish, on a player's stream) (server): dropped.
    pub media_outside_publish: u64,
    /// Data messages that are neither metadata nor (client) `onStatus`, such as
    /// `onCuePoint`, or an `onStatus` data message without its info object: ignored.
    pub ignored_data: u64,
    /// Audio, video or data messages whose payload does not parse (bad AMF0): dropped.
    pub undecodable_media: u64,
    /// Messages of a type the session does not handle: shared objects (types 16 and
    /// 19), aggregate messages (22), unknown type ids. Ignored.
    pub unhandled_messages: u64,
    /// Message type id of the first such message.
    pub first_unhandled_type: Option<u8>,
    /// User control events the session has no use for in its role (a server does not
    /// expect Stream Begin from a publisher, a client does not expect Set Buffer
    /// Length; neither sent a ping that a Ping Response would answer): ignored.
    pub unexpected_user_controls: u64,
    /// Event type of the first such event.
    pub first_user_control: Option<u16>,
    /// `closeStream`, `deleteStream` or `FCUnpublish` naming a stream that does not
    /// exist or is not publishing (server): nothing to close, ignored.
    pub stray_stream_closes: u64,
    /// `_result` answering no command we are waiting for (client): ignored.
    pub unmatched_results: u64,
    /// Continuation chunks that left out the extended timestamp their message's header
    /// announced (from the chunk decoder, which reads them as payload).
    pub omitted_extended_timestamps: u64,
    /// Partial messages dropped because a new message header arrived on their chunk
    /// stream (from the chunk decoder).
    pub interrupted_messages: u64,
}

impl Tolerated {
    /// Nothing was tolerated: the peer behaved.
    pub fn is_empty(&self) -> bool {
        *self == Tolerated::default()
    }

    pub(super) fn unknown_command(&mut self, name: &str) {
        self.unknown_commands += 1;
        if self.first_unknown_command.is_none() {
            self.first_unknown_command = Some(super::values::short(name).to_string());
        }
    }

    pub(super) fn unhandled_message(&mut self, type_id: u8) {
        self.unhandled_messages += 1;
        self.first_unhandled_type.get_or_insert(type_id);
    }

    pub(super) fn unexpected_user_control(&mut self, event_type: u16) {
        self.unexpected_user_controls += 1;
        self.first_user_control.get_or_insert(event_type);
    }
}

impl fmt::Display for Tolerated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: [(u64, &str, Option<String>); 11] = [
            (
                self.unknown_commands,
                "unknown command",
                self.first_unknown_command
                    .as_ref()
                    .map(|n| format!("'{n}'")),
            ),
            (self.media_before_connect, "media before connect", None),
            (self.media_outside_publish, "media outside a publish", None),
            (self.ignored_data, "data message ignored", None),
            (self.undecodable_media, "undecodable media or data", None),
            (
                self.unhandled_messages,
                "unhandled message",
                self.first_unhandled_type.map(|t| format!("type {t}")),
            ),
            (
                self.unexpected_user_controls,
                "unexpected user control event",
                self.first_user_control.map(|e| format!("event {e}")),
            ),
            (
                self.stray_stream_closes,
                "close of a stream not in use",
                None,
            ),
            (
                self.unmatched_results,
                "_result to no pending command",
                None,
            ),
            (
                self.omitted_extended_timestamps,
                "continuation chunk without its extended timestamp",
                None,
            ),
            (
                self.interrupted_messages,
                "partial message cut off by a new header",
                None,
            ),
        ];
        let mut separator = "";
        for (count, label, first) in kinds {
            if count == 0 {
                continue;
            }
            write!(f, "{separator}{label} x{count}")?;
            if let Some(first) = first {
                write!(f, " (first: {first})")?;
            }
            separator = ", ";
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_says_nothing() {
        let t = Tolerated::default();
        assert!(t.is_empty());
        assert_eq!(t.to_string(), "");
    }

    #[test]
    fn summary_names_each_kind_once_with_its_first_example() {
        let mut t = Tolerated::default();
        t.unknown_command("foo");
        t.unknown_command("bar");
        t.unknown_command("foo");
        t.media_outside_publish += 1;
        t.unhandled_message(22);
        t.unhandled_message(19);
        t.unexpected_user_control(2);
        t.omitted_extended_timestamps = 4;
        assert!(!t.is_empty());
        assert_eq!(
            t.to_string(),
            "unknown command x3 (first: 'foo'), media outside a publish x1, \
             unhandled message x2 (first: type 22), \
             unexpected user control event x1 (first: event 2), \
             continuation chunk without its extended timestamp x4"
        );
    }

    #[test]
    fn a_long_command_name_is_cut() {
        let mut t = Tolerated::default();
        t.unknown_command(&"x".repeat(10_000));
        assert_eq!(
            t.first_unknown_command.as_deref().map(str::len),
            Some(crate::rtmp::message::MAX_NAME_IN_ERROR)
        );
    }
}

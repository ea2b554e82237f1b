//! RTMP handshake: C0/C1/C2 and S0/S1/S2, simple and digest ("complex").
//!
//! This module owns the first bytes of every RTMP connection, before any chunk is
//! exchanged: it checks the peer's version byte, produces our handshake packets and
//! hands back, as `remaining`, whatever arrived after the handshake (usually the
//! first chunk of the `connect` command, which clients often send in the same
//! write as C2). It never reads a clock, never draws randomness (the caller passes
//! an `epoch` for the time fields and a `random` seed, expanded here with
//! SplitMix64) and never panics on input. Input buffering is bounded by C0+C1
//! (1537 bytes); the server's one allocation is a 3073-byte buffer that collects
//! C0+C1 and is then overwritten in place with S0+S1+S2. C2 and S2 are checked or
//! skipped as they stream past, never buffered.
//!
//! # Run loop
//! Feed every read to `handle_input`, then drain `poll_output` and write what it
//! returns, in order. Drain `poll_output` even when `handle_input` returned
//! [`HandshakeProgress::Done`]: one read can complete the handshake *and* queue our
//! last packet (the client's C2, or the server's S0+S1+S2 when C0+C1+C2 come in
//! one read). Once `Done` has been returned, further `handle_input` calls return
//! `Done` again with the new bytes as `remaining`, unchanged, so a driver that keeps
//! feeding the handshake loses nothing. After an `Err`, every further call returns
//! the same `Err`; the connection should be closed.
//!
//! # The simple handshake (RTMP 1.0 specification, section 5.2)
//! C0/S0 is the version byte, 3. C1/S1 is 1536 bytes: a 4-byte time, 4 zero bytes
//! and 1528 random bytes. C2/S2 echoes the peer's C1/S1: its time, then the time
//! we read it (we have no clock, so our `epoch`), then its random bytes.
//!
//! # The digest handshake (Flash Player 9+ / FMS; not in the published spec)
//! Flash Player is reported to refuse H.264 from a server answering with the
//! simple handshake, so FFmpeg's client, nginx-rtmp, SRS and others speak this form.
//! C1 has a nonzero version field at bytes 4..8 and carries a 32-byte
//! HMAC-SHA256 digest inside one of two 764-byte halves of the packet's random
//! part:
//! * scheme 0, "digest first": the half at bytes 8..772; the digest sits at
//!   `12 + (sum of bytes 8..12) % 728`;
//! * scheme 1, "key first": the half at bytes 772..1536; the digest sits at
//!   `776 + (sum of bytes 772..776) % 728`.
//!
//! The digest is keyed with the first 30 bytes of the Flash Player key ("Genuine
//! Adobe Flash Player 001") and covers the 1504 packet bytes around it. The server
//! answers with an S1 built the same way (same scheme, keyed with the first 36
//! bytes of the FMS key, "Genuine Adobe Flash Media Server 001") and an S2 of 1504
//! random bytes followed by `HMAC(HMAC(full FMS key, C1 digest), those 1504 bytes)`.
//! The client's C2 mirrors that with the full Flash Player key and the S1 digest.
//! The "full" keys are the texts followed by the same 32 constant bytes
//! (`KEY_TAIL`, `F0 EE C2 4A .. 31 AE`). These keys are public protocol
//! constants: the digest proves nothing about anyone, and we treat it as framing,
//! not security. The other half of the packet carries a Diffie-Hellman public key
//! that only RTMPE (encrypted RTMP, C0 = 6, 8 or 9) uses; we fill it with random
//! bytes and do not serve RTMPE.
//!
//! A server detects the digest form by validating a digest at either scheme, and
//! falls back to the simple handshake when neither validates. FFmpeg's native
//! client (5.1) sends version 9.0.124.2 with a scheme-0 digest; as a player it
//! checks our S1 digest (when the S1 version's first byte is at least 3) and our S2
//! signature before it sends `connect`, so the digest answer has to be exact.
//! Checked end to end against FFmpeg 5.1, playing and publishing.
//!
//! # Tolerated quirks
//! * C0 other than 3: the spec (5.2.2) lets a server that does not know the
//!   client's version answer 3, so we accept 3..=31 and answer 3, except the
//!   values that mean another protocol: 6/8/9 (RTMPE, which would fail later and
//!   confusingly) and 0x16 (a TLS ClientHello: an `rtmps://` client on a plain
//!   port). 32..=255 is never RTMP: `G` of `GET ` is 0x47.
//! * C2 is not checked at all by the server: the spec gives it nothing to act on,
//!   and clients in the wild do not reliably echo S1. Likewise the client does
//!   not fail on a wrong S2 (servers differ); it records the outcome, see
//!   [`ClientHandshake::server_response_verified`].
//!
//! # Why hand-written
//! The Rust RTMP crate that does the digest handshake (`rml_rtmp`) draws its own
//! randomness, accepts only C0 = 3, returns a new `Vec` per call and keeps all
//! input in a growing buffer. We need a caller-seeded, bounded, `Bytes`-out state
//! machine with our error type and version leniency; that costs less to write than
//! to wrap.

use bytes::{Buf, Bytes, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// The only RTMP version we speak (and always answer with).
const RTMP_VERSION: u8 = 3;
/// C0 + C1, the first thing a server waits for (and S0 + S1 for a client).
const VERSION_AND_PACKET: usize = 1 + HANDSHAKE_SIZE;
/// S0 + S1 + S2: the server's whole answer, built in one buffer. It is also the
/// most the server ever allocates: C0 + C1 are collected into the same buffer and
/// overwritten in place.
const SERVER_ANSWER: usize = 1 + 2 * HANDSHAKE_SIZE;

/// Length of an HMAC-SHA256 digest.
const DIGEST_LEN: usize = 32;
/// Each scheme's half of a digest packet: (1536 - 8) / 2.
const DIGEST_HALF: usize = 764;
/// Range of the digest offset inside its half: 764 minus the 4 offset bytes minus
/// the 32 digest bytes, so the digest always fits.
const DIGEST_OFFSET_RANGE: usize = 728;
/// Bytes of a digest-form C2/S2 covered by the trailing signature.
const SIGNED_LEN: usize = HANDSHAKE_SIZE - DIGEST_LEN;

/// The 32 constant bytes that follow both key texts to form the full keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const FP_KEY_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const FMS_KEY_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";
/// Full Flash Player key (text + tail): keys the client's C2 signature.
const FP_KEY: [u8; 62] = concat_key(FP_KEY_TEXT);
/// Full FMS key (text + tail): keys the server's S2 signature.
const FMS_KEY: [u8; 68] = concat_key(FMS_KEY_TEXT);

/// Version field of our digest S1 (reads as FMS 4.5.0.1). FFmpeg checks its first
/// byte is at least 3 before validating the S1 digest.
const SERVER_VERSION: [u8; 4] = [0x04, 0x05, 0x00, 0x01];
/// Version field of our digest C1 (a Flash Player version, 128.0.7.2).
const CLIENT_VERSION: [u8; 4] = [0x80, 0x00, 0x07, 0x02];
/// The digest scheme our client uses ("key first", as Flash Player does).
const CLIENT_SCHEME: u8 = 1;

const fn concat_key<const TEXT: usize, const FULL: usize>(text: &[u8; TEXT]) -> [u8; FULL] {
    let mut key = [0u8; FULL];
    let mut i = 0;
    while i < TEXT {
        key[i] = text[i];
        i += 1;
    }
    while i < FULL {
        key[i] = KEY_TAIL[i - TEXT];
        i += 1;
    }
    key
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("unsupported RTMP version byte 0x{0:02x} (not an RTMP client?)")]
    BadVersion(u8),
    /// Not returned today: neither side fails on a wrong C2/S2 (see the module doc).
    #[error("S2 does not echo our C1 / digest mismatch")]
    BadResponse,
}

/// Which handshake the peer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    Simple,
    /// Digest found at the offset scheme 0 (digest after the time/version fields) or 1.
    Digest {
        scheme: u8,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HandshakeProgress {
    InProgress,
    /// Finished; `remaining` are bytes received after the handshake (chunk data).
    Done {
        kind: HandshakeKind,
        remaining: Bytes,
    },
}

/// Whether a server accepts this C0 (answering 3). See "Tolerated quirks".
fn is_accepted_client_version(version: u8) -> bool {
    matches!(version, 3..=31) && !matches!(version, 6 | 8 | 9 | 0x16)
}

/// SplitMix64: expands the caller's seed into the random parts of our packets.
/// The handshake needs no unpredictability (the keys are public), only bytes that
/// differ between connections, which the caller's seed provides.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in a 1536-byte packet under `scheme` (0 or 1).
fn digest_offset(packet: &[u8], scheme: u8) -> usize {
    let half = 8 + usize::from(scheme) * DIGEST_HALF;
    let sum: usize = packet[half..half + 4].iter().map(|&b| usize::from(b)).sum();
    half + 4 + sum % DIGEST_OFFSET_RANGE
}

/// The digest of a 1536-byte packet: HMAC over everything but the digest bytes.
fn packet_digest(packet: &[u8], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid digest in `packet`, trying `first` then the other scheme.
fn find_digest(packet: &[u8], key: &[u8], first: u8) -> Option<(u8, [u8; DIGEST_LEN])> {
    [first, 1 - first].into_iter().find_map(|scheme| {
        let offset = digest_offset(packet, scheme);
        let digest = packet_digest(packet, offset, key);
        (digest[..] == packet[offset..offset + DIGEST_LEN]).then_some((scheme, digest))
    })
}

/// Writes the digest of `packet` into it at the place `scheme` gives; returns it.
fn imprint_digest(packet: &mut [u8], scheme: u8, key: &[u8]) -> [u8; DIGEST_LEN] {
    let offset = digest_offset(packet, scheme);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    digest
}

/// The key that signs a digest-form C2/S2: HMAC(full key, the peer's digest).
fn response_key(full_key: &[u8], peer_digest: &[u8; DIGEST_LEN]) -> [u8; DIGEST_LEN] {
    hmac_sha256(full_key, &[peer_digest])
}

/// Fills `packet` as a digest-form C2/S2: random bytes, then their signature.
fn fill_signed_response(
    packet: &mut [u8],
    rng: &mut SplitMix64,
    full_key: &[u8],
    peer_digest: &[u8; DIGEST_LEN],
) {
    rng.fill(&mut packet[..SIGNED_LEN]);
    let key = response_key(full_key, peer_digest);
    let signature = hmac_sha256(&key, &[&packet[..SIGNED_LEN]]);
    packet[SIGNED_LEN..].copy_from_slice(&signature);
}

/// Copies as much of `data` as `buf` still needs to hold `want` bytes; returns
/// the rest of `data`.
fn fill_up_to<'a>(buf: &mut BytesMut, want: usize, data: &'a [u8]) -> &'a [u8] {
    let take = want.saturating_sub(buf.len()).min(data.len());
    buf.extend_from_slice(&data[..take]);
    &data[take..]
}

enum ServerState {
    /// Collecting C0 + C1 into `buf`.
    AwaitC0C1,
    /// S0 + S1 + S2 are queued; skipping C2 (`seen` bytes of it so far).
    AwaitC2 {
        seen: usize,
    },
    Done,
    Failed(HandshakeError),
}

/// Server side. `random` seeds the random parts of S1 (the caller supplies entropy;
/// this crate reads no clock and no RNG). `epoch` is the S1 time field.
///
/// S0 + S1 + S2 are queued as one buffer as soon as C1 is in, without waiting
/// for C2, so the client can send C2 and `connect` in its next write.
pub struct ServerHandshake {
    epoch: u32,
    rng: SplitMix64,
    /// C0 + C1 as they arrive, then S0 + S1 + S2 built in place (capacity
    /// [`SERVER_ANSWER`], allocated once).
    buf: BytesMut,
    output: Option<Bytes>,
    kind: HandshakeKind,
    state: ServerState,
}

impl ServerHandshake {
    pub fn new(epoch: u32, random: u64) -> Self {
        ServerHandshake {
            epoch,
            rng: SplitMix64(random),
            buf: BytesMut::with_capacity(SERVER_ANSWER),
            output: None,
            kind: HandshakeKind::Simple,
            state: ServerState::AwaitC0C1,
        }
    }

    /// Feeds bytes from the client, in any fragmentation. See the module doc for
    /// what happens after `Done` or an error.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        let mut data = data;
        loop {
            match &mut self.state {
                ServerState::AwaitC0C1 => {
                    if self.buf.is_empty() {
                        let Some(&version) = data.first() else {
                            return Ok(HandshakeProgress::InProgress);
                        };
                        if !is_accepted_client_version(version) {
                            let error = HandshakeError::BadVersion(version);
                            self.state = ServerState::Failed(error.clone());
                            return Err(error);
                        }
                    }
                    data = fill_up_to(&mut self.buf, VERSION_AND_PACKET, data);
                    if self.buf.len() < VERSION_AND_PACKET {
                        return Ok(HandshakeProgress::InProgress);
                    }
                    self.answer_c1();
                    self.state = ServerState::AwaitC2 { seen: 0 };
                }
                ServerState::AwaitC2 { seen } => {
                    let take = (HANDSHAKE_SIZE - *seen).min(data.len());
                    *seen += take;
                    data = &data[take..];
                    if *seen < HANDSHAKE_SIZE {
                        return Ok(HandshakeProgress::InProgress);
                    }
                    self.state = ServerState::Done;
                }
                ServerState::Done => {
                    return Ok(HandshakeProgress::Done {
                        kind: self.kind,
                        remaining: Bytes::copy_from_slice(data),
                    });
                }
                ServerState::Failed(error) => return Err(error.clone()),
            }
        }
    }

    /// Bytes to send (S0+S1+S2 once C1 is in). `None` when nothing is pending.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.output.take()
    }

    /// Builds S0 + S1 + S2 over the received C0 + C1 and queues them.
    fn answer_c1(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        let client_digest = find_digest(&buf[1..], FP_KEY_TEXT, 0);
        // Within the capacity reserved in `new`: no reallocation.
        buf.resize(SERVER_ANSWER, 0);
        buf[0] = RTMP_VERSION;
        // S2 starts as a copy of C1 (the simple echo); S1 then overwrites C1.
        buf.copy_within(1..VERSION_AND_PACKET, VERSION_AND_PACKET);
        let (s1, s2) = buf[1..].split_at_mut(HANDSHAKE_SIZE);
        s1[..4].copy_from_slice(&self.epoch.to_be_bytes());
        self.rng.fill(&mut s1[8..]);
        match client_digest {
            Some((scheme, c1_digest)) => {
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                imprint_digest(s1, scheme, FMS_KEY_TEXT);
                fill_signed_response(s2, &mut self.rng, &FMS_KEY, &c1_digest);
                self.kind = HandshakeKind::Digest { scheme };
            }
            None => {
                s1[4..8].fill(0);
                // Time2: when we read C1; having no clock, our epoch.
                s2[4..8].copy_from_slice(&self.epoch.to_be_bytes());
                self.kind = HandshakeKind::Simple;
            }
        }
        self.output = Some(buf.freeze());
    }
}

/// How the client checks S2 as it streams past (nothing of it is buffered).
enum S2Check {
    /// S2 should echo C1's random bytes (8..1536).
    Echo,
    /// S2 should end with a signature over its first 1504 bytes; `mac` runs until
    /// then, `expected` holds the result.
    Signature {
        mac: Option<Box<HmacSha256>>,
        expected: [u8; DIGEST_LEN],
    },
}

enum ClientState {
    /// Collecting S0 + S1 into `buf`.
    AwaitS0S1,
    /// C2 is queued; checking S2 (`seen` bytes of it so far) without failing.
    AwaitS2 {
        seen: usize,
        check: S2Check,
        matches: bool,
    },
    Done,
    Failed(HandshakeError),
}

/// Client side. Sends C0+C1 at once (digest form when `digest` is true, as Flash
/// Player does; some servers require it), checks S0/S1, answers C2.
pub struct ClientHandshake {
    epoch: u32,
    rng: SplitMix64,
    /// The digest scheme of our C1, `None` for a simple C1.
    scheme: Option<u8>,
    /// Our C1 (shares the C0 + C1 output buffer), for the S2 echo check.
    c1: Bytes,
    /// The digest in our C1 (zero for a simple C1).
    c1_digest: [u8; DIGEST_LEN],
    /// S0 + S1 as they arrive; S1 then becomes C2 in place.
    buf: BytesMut,
    c0c1_output: Option<Bytes>,
    c2_output: Option<Bytes>,
    kind: HandshakeKind,
    s2_verified: Option<bool>,
    state: ClientState,
}

impl ClientHandshake {
    pub fn new(epoch: u32, random: u64, digest: bool) -> Self {
        Self::with_scheme(epoch, random, digest.then_some(CLIENT_SCHEME))
    }

    /// `scheme`: `Some(0 | 1)` for a digest C1 at that scheme, `None` for simple.
    pub(crate) fn with_scheme(epoch: u32, random: u64, scheme: Option<u8>) -> Self {
        let scheme = scheme.map(|s| s.min(1));
        let mut rng = SplitMix64(random);
        let mut c0c1 = BytesMut::zeroed(VERSION_AND_PACKET);
        c0c1[0] = RTMP_VERSION;
        let c1 = &mut c0c1[1..];
        c1[..4].copy_from_slice(&epoch.to_be_bytes());
        rng.fill(&mut c1[8..]);
        let mut c1_digest = [0u8; DIGEST_LEN];
        if let Some(scheme) = scheme {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            c1_digest = imprint_digest(c1, scheme, FP_KEY_TEXT);
        }
        let c0c1 = c0c1.freeze();
        ClientHandshake {
            epoch,
            rng,
            scheme,
            c1: c0c1.slice(1..),
            c1_digest,
            buf: BytesMut::with_capacity(VERSION_AND_PACKET),
            c0c1_output: Some(c0c1),
            c2_output: None,
            kind: HandshakeKind::Simple,
            s2_verified: None,
            state: ClientState::AwaitS0S1,
        }
    }

    /// Feeds bytes from the server, in any fragmentation. A wrong S2 does not fail
    /// the handshake; see [`Self::server_response_verified`].
    pub fn handle_input(&mut self, data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        let mut data = data;
        loop {
            match &mut self.state {
                ClientState::AwaitS0S1 => {
                    if self.buf.is_empty() {
                        let Some(&version) = data.first() else {
                            return Ok(HandshakeProgress::InProgress);
                        };
                        if version != RTMP_VERSION {
                            let error = HandshakeError::BadVersion(version);
                            self.state = ClientState::Failed(error.clone());
                            return Err(error);
                        }
                    }
                    data = fill_up_to(&mut self.buf, VERSION_AND_PACKET, data);
                    if self.buf.len() < VERSION_AND_PACKET {
                        return Ok(HandshakeProgress::InProgress);
                    }
                    self.answer_s1();
                }
                ClientState::AwaitS2 {
                    seen,
                    check,
                    matches,
                } => {
                    let take = (HANDSHAKE_SIZE - *seen).min(data.len());
                    let (chunk, rest) = data.split_at(take);
                    if !check_s2_part(check, &self.c1, *seen, chunk) {
                        *matches = false;
                    }
                    *seen += take;
                    data = rest;
                    if *seen < HANDSHAKE_SIZE {
                        return Ok(HandshakeProgress::InProgress);
                    }
                    self.s2_verified = Some(*matches);
                    self.c1 = Bytes::new();
                    self.state = ClientState::Done;
                }
                ClientState::Done => {
                    return Ok(HandshakeProgress::Done {
                        kind: self.kind,
                        remaining: Bytes::copy_from_slice(data),
                    });
                }
                ClientState::Failed(error) => return Err(error.clone()),
            }
        }
    }

    /// Bytes to send: C0+C1 first (available at once), then C2 once S1 is in.
    /// `None` when nothing is pending.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.c0c1_output.take().or_else(|| self.c2_output.take())
    }

    /// Whether S2 was what we expected: the signature over our C1 digest when the
    /// server answered in digest form, else an echo of our C1's random bytes.
    /// `None` until S2 has been read. A mismatch does not fail the handshake
    /// (servers differ); a driver may log it.
    pub fn server_response_verified(&self) -> Option<bool> {
        self.s2_verified
    }

    /// Builds C2 in place over the received S0 + S1, queues it and starts the
    /// S2 check.
    fn answer_s1(&mut self) {
        let mut c2 = std::mem::take(&mut self.buf);
        c2.advance(1); // S0
        let server_digest = self
            .scheme
            .and_then(|scheme| find_digest(&c2, FMS_KEY_TEXT, scheme));
        let check = match server_digest {
            Some((scheme, s1_digest)) => {
                fill_signed_response(&mut c2, &mut self.rng, &FP_KEY, &s1_digest);
                self.kind = HandshakeKind::Digest { scheme };
                let key = response_key(&FMS_KEY, &self.c1_digest);
                S2Check::Signature {
                    mac: Some(Box::new(new_mac(&key))),
                    expected: [0; DIGEST_LEN],
                }
            }
            None => {
                // Echo S1; time2 is when we read S1: having no clock, our epoch.
                c2[4..8].copy_from_slice(&self.epoch.to_be_bytes());
                self.kind = HandshakeKind::Simple;
                S2Check::Echo
            }
        };
        self.c2_output = Some(c2.freeze());
        self.state = ClientState::AwaitS2 {
            seen: 0,
            check,
            matches: true,
        };
    }
}

/// Checks `part`, the S2 bytes at `seen..seen + part.len()`; false on a mismatch.
fn check_s2_part(check: &mut S2Check, c1: &[u8], seen: usize, part: &[u8]) -> bool {
    match check {
        S2Check::Echo => {
            // Bytes 0..8 are times, which the server may fill as it likes.
            let skip = 8usize.saturating_sub(seen).min(part.len());
            let start = seen + skip;
            c1.get(start..start + part.len() - skip) == Some(&part[skip..])
        }
        S2Check::Signature { mac, expected } => {
            let body_len = SIGNED_LEN.saturating_sub(seen).min(part.len());
            let (body, tail) = part.split_at(body_len);
            if let Some(running) = mac.as_mut() {
                running.update(body);
            }
            if seen + body_len == SIGNED_LEN {
                if let Some(done) = mac.take() {
                    *expected = done.finalize().into_bytes().into();
                }
            }
            let tail_start = (seen + body_len).saturating_sub(SIGNED_LEN);
            expected.get(tail_start..tail_start + tail.len()) == Some(tail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// C0 + C1 captured from `ffmpeg -f lavfi -i testsrc -t 1 -f flv rtmp://...`
    /// (FFmpeg 5.1.9, native RTMP client, publishing).
    const FFMPEG_C0C1: &[u8] = include_bytes!("../../tests/fixtures/ffmpeg-5.1-publish-c0c1.bin");

    const FP_KEY_30: &[u8] = FP_KEY_TEXT;
    const FMS_KEY_36: &[u8] = FMS_KEY_TEXT;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn done(kind: HandshakeKind, remaining: &[u8]) -> HandshakeProgress {
        HandshakeProgress::Done {
            kind,
            remaining: Bytes::copy_from_slice(remaining),
        }
    }

    /// A simple C0 + C1 as the spec describes it: version 3, time, zero, random.
    fn simple_c0c1(time: u32) -> Vec<u8> {
        let mut c0c1 = vec![RTMP_VERSION];
        c0c1.extend_from_slice(&time.to_be_bytes());
        c0c1.extend_from_slice(&[0; 4]);
        c0c1.extend((0..HANDSHAKE_SIZE - 8).map(|i| (i * 31 + 7) as u8));
        c0c1
    }

    fn take_all(mut poll: impl FnMut() -> Option<Bytes>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = poll() {
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Checks a digest-form C2/S2: its last 32 bytes sign the rest.
    fn signature_valid(packet: &[u8], full_key: &[u8], peer_digest: &[u8; 32]) -> bool {
        let key = response_key(full_key, peer_digest);
        hmac_sha256(&key, &[&packet[..SIGNED_LEN]])[..] == packet[SIGNED_LEN..]
    }

    /// Runs a client against a server in memory, delivering at most `step` bytes
    /// per `handle_input` call; returns the kinds each side reports.
    fn run_pair(
        client: &mut ClientHandshake,
        server: &mut ServerHandshake,
        step: usize,
    ) -> (HandshakeKind, HandshakeKind) {
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        let (mut client_kind, mut server_kind) = (None, None);
        for _ in 0..20_000 {
            to_server.extend(take_all(|| client.poll_output()));
            if !to_server.is_empty() {
                let chunk: Vec<u8> = to_server.drain(..step.min(to_server.len())).collect();
                if let HandshakeProgress::Done { kind, remaining } =
                    server.handle_input(&chunk).unwrap()
                {
                    assert!(remaining.is_empty());
                    server_kind = Some(kind);
                }
            }
            to_client.extend(take_all(|| server.poll_output()));
            if !to_client.is_empty() {
                let chunk: Vec<u8> = to_client.drain(..step.min(to_client.len())).collect();
                if let HandshakeProgress::Done { kind, remaining } =
                    client.handle_input(&chunk).unwrap()
                {
                    assert!(remaining.is_empty());
                    client_kind = Some(kind);
                }
            }
            if let (Some(c), Some(s)) = (client_kind, server_kind) {
                if to_server.is_empty() && to_client.is_empty() {
                    assert!(client.poll_output().is_none());
                    assert!(server.poll_output().is_none());
                    return (c, s);
                }
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn simple_server_round_trip_per_spec() {
        let c0c1 = simple_c0c1(0x0102_0304);
        let mut server = ServerHandshake::new(0x0A0B_0C0D, 42);
        assert_eq!(server.poll_output(), None);
        assert_eq!(
            server.handle_input(&c0c1),
            Ok(HandshakeProgress::InProgress)
        );
        let answer = server.poll_output().unwrap();
        assert_eq!(server.poll_output(), None);
        assert_eq!(answer.len(), 1 + 2 * HANDSHAKE_SIZE);
        let (s0, rest) = answer.split_at(1);
        let (s1, s2) = rest.split_at(HANDSHAKE_SIZE);
        assert_eq!(s0, [3]);
        assert_eq!(s1[..4], [0x0A, 0x0B, 0x0C, 0x0D], "S1 time is our epoch");
        assert_eq!(s1[4..8], [0; 4], "S1 zero field");
        assert_ne!(s1[8..], c0c1[9..], "S1 random is ours");
        assert_eq!(s2[..4], [1, 2, 3, 4], "S2 time echoes C1 time");
        assert_eq!(s2[4..8], [0x0A, 0x0B, 0x0C, 0x0D], "S2 time2 is our epoch");
        assert_eq!(s2[8..], c0c1[9..], "S2 echoes C1 random");
        // C2: echo of S1, as the spec asks.
        let progress = server.handle_input(s1).unwrap();
        assert_eq!(progress, done(HandshakeKind::Simple, b""));
    }

    #[test]
    fn ffmpeg_style_simple_c1_yields_simple() {
        // Time 0, zero version, random: what a non-digest client sends.
        let mut c0c1 = vec![3, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut random = vec![0; HANDSHAKE_SIZE - 8];
        SplitMix64(7).fill(&mut random);
        c0c1.extend_from_slice(&random);
        let mut server = ServerHandshake::new(1000, 1);
        assert_eq!(
            server.handle_input(&c0c1),
            Ok(HandshakeProgress::InProgress)
        );
        let answer = server.poll_output().unwrap();
        assert_eq!(answer[1 + 4..1 + 8], [0; 4], "simple S1 has a zero version");
        assert_eq!(answer[1 + HANDSHAKE_SIZE + 8..], random[..]);
        let c2 = vec![0xEE; HANDSHAKE_SIZE]; // garbage C2 is accepted
        assert_eq!(
            server.handle_input(&c2),
            Ok(done(HandshakeKind::Simple, b""))
        );
    }

    #[test]
    fn real_ffmpeg_c0c1_is_digest_scheme_0() {
        assert_eq!(FFMPEG_C0C1.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(FFMPEG_C0C1[5..9], [9, 0, 124, 2], "FFmpeg claims 9.0.124.2");
        let c1 = &FFMPEG_C0C1[1..];
        let (scheme, c1_digest) = find_digest(c1, FP_KEY_30, 1).unwrap();
        assert_eq!(scheme, 0, "FFmpeg puts its digest first");

        let mut server = ServerHandshake::new(0, 99);
        assert_eq!(
            server.handle_input(FFMPEG_C0C1),
            Ok(HandshakeProgress::InProgress)
        );
        let answer = server.poll_output().unwrap();
        let (s1, s2) = answer[1..].split_at(HANDSHAKE_SIZE);
        assert!(
            s1[4] >= 3,
            "FFmpeg only checks S1 digests from version >= 3"
        );
        assert_eq!(find_digest(s1, FMS_KEY_36, 0).map(|d| d.0), Some(0));
        assert!(signature_valid(s2, &FMS_KEY, &c1_digest));
        // FFmpeg publishing answers with S1 echoed as C2.
        assert_eq!(
            server.handle_input(s1),
            Ok(done(HandshakeKind::Digest { scheme: 0 }, b""))
        );
    }

    /// Known answers computed independently (Python hmac/hashlib), pinning all four
    /// key constants and the offset formula.
    #[test]
    fn key_constants_match_independent_computation() {
        let c1 = &FFMPEG_C0C1[1..];
        let (_, digest) = find_digest(c1, FP_KEY_30, 0).unwrap();
        assert_eq!(
            hex(&digest),
            "650bfb9b65f953d848e3456965d0d76b627a84e35e9ddabd8b43f0fadaee458c"
        );
        assert_eq!(
            hex(&response_key(&FMS_KEY, &digest)),
            "47e29796112deb386c6c4500f516dbe1f6a1fc4fed4410545e8f19e418bc043a"
        );
        assert_eq!(
            hex(&response_key(&FP_KEY, &digest)),
            "9b474531e73ca402791ea1bb6c2ee4854d533ec3f883a7b588ef9a258426d467"
        );
        let packet: Vec<u8> = (0..HANDSHAKE_SIZE).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(digest_offset(&packet, 0), 290);
        assert_eq!(digest_offset(&packet, 1), 942);
        assert_eq!(
            hex(&packet_digest(&packet, 290, FMS_KEY_36)),
            "2e691a99791972c8b772eb258df6475daab3454c59f81df497d3012cce3ec8bc"
        );
        assert_eq!(
            hex(&packet_digest(&packet, 942, FMS_KEY_36)),
            "01d1722f262d0920a2fd6c2cff614d034585bbacbc28b5c77a88ca2fc0c3b984"
        );
    }

    #[test]
    fn server_recognizes_client_digest_in_both_schemes() {
        for scheme in [0u8, 1] {
            let mut client = ClientHandshake::with_scheme(500, 3, Some(scheme));
            let c0c1 = client.poll_output().unwrap();
            assert_eq!(c0c1[5..9], CLIENT_VERSION);
            let (found, c1_digest) = find_digest(&c0c1[1..], FP_KEY_30, 1 - scheme).unwrap();
            assert_eq!(found, scheme);

            let mut server = ServerHandshake::new(600, 4);
            assert_eq!(
                server.handle_input(&c0c1),
                Ok(HandshakeProgress::InProgress)
            );
            let answer = server.poll_output().unwrap();
            let (s1, s2) = answer[1..].split_at(HANDSHAKE_SIZE);
            assert_eq!(s1[4..8], SERVER_VERSION);
            let (s1_scheme, s1_digest) = find_digest(s1, FMS_KEY_36, 1 - scheme).unwrap();
            assert_eq!(s1_scheme, scheme, "S1 answers in the client's scheme");
            assert!(signature_valid(s2, &FMS_KEY, &c1_digest));

            assert_eq!(client.server_response_verified(), None);
            assert_eq!(
                client.handle_input(&answer),
                Ok(done(HandshakeKind::Digest { scheme }, b""))
            );
            assert_eq!(client.server_response_verified(), Some(true));
            let c2 = client.poll_output().unwrap();
            assert_eq!(client.poll_output(), None);
            assert!(signature_valid(&c2, &FP_KEY, &s1_digest));

            assert_eq!(
                server.handle_input(&c2),
                Ok(done(HandshakeKind::Digest { scheme }, b""))
            );
        }
    }

    #[test]
    fn simple_client_sends_spec_c1_and_echoes_s1() {
        let mut client = ClientHandshake::new(0x1122_3344, 5, false);
        let c0c1 = client.poll_output().unwrap();
        assert_eq!(c0c1.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(c0c1[..9], [3, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0]);
        let mut server = ServerHandshake::new(9, 6);
        server.handle_input(&c0c1).unwrap();
        let answer = server.poll_output().unwrap();
        assert_eq!(
            client.handle_input(&answer),
            Ok(done(HandshakeKind::Simple, b""))
        );
        assert_eq!(client.server_response_verified(), Some(true));
        let c2 = client.poll_output().unwrap();
        let s1 = &answer[1..1 + HANDSHAKE_SIZE];
        assert_eq!(c2[..4], s1[..4], "C2 time echoes S1 time");
        assert_eq!(c2[4..8], 0x1122_3344u32.to_be_bytes(), "C2 time2");
        assert_eq!(c2[8..], s1[8..], "C2 echoes S1 random");
    }

    #[test]
    fn round_trip_in_any_fragmentation() {
        let cases = [
            (None, HandshakeKind::Simple),
            (Some(0), HandshakeKind::Digest { scheme: 0 }),
            (Some(1), HandshakeKind::Digest { scheme: 1 }),
        ];
        for step in [1, 7, 1536, 1537, 5000] {
            for (scheme, kind) in cases {
                let mut client = ClientHandshake::with_scheme(1, step as u64, scheme);
                let mut server = ServerHandshake::new(2, !(step as u64));
                assert_eq!(run_pair(&mut client, &mut server, step), (kind, kind));
                assert_eq!(client.server_response_verified(), Some(true));
            }
        }
        // The public constructor uses scheme 1.
        let mut client = ClientHandshake::new(1, 2, true);
        let mut server = ServerHandshake::new(3, 4);
        let expected = HandshakeKind::Digest { scheme: 1 };
        assert_eq!(run_pair(&mut client, &mut server, 1), (expected, expected));
    }

    #[test]
    fn server_rejects_non_rtmp_first_bytes() {
        for bad in [b'G', 0x16, 0x06, 0x08, 0x09, 0x00, 0x02, 0x20, 0xFF] {
            let mut server = ServerHandshake::new(0, 0);
            assert_eq!(
                server.handle_input(&[bad]),
                Err(HandshakeError::BadVersion(bad))
            );
            // The error sticks; nothing is ever sent.
            assert_eq!(
                server.handle_input(&[3; 100]),
                Err(HandshakeError::BadVersion(bad))
            );
            assert_eq!(server.poll_output(), None);
        }
        let mut server = ServerHandshake::new(0, 0);
        assert_eq!(
            server.handle_input(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::BadVersion(0x47))
        );
        assert_eq!(
            HandshakeError::BadVersion(0x47).to_string(),
            "unsupported RTMP version byte 0x47 (not an RTMP client?)"
        );
    }

    #[test]
    fn server_answers_3_to_reserved_versions() {
        for version in [4u8, 5, 7, 10, 31] {
            let mut c0c1 = simple_c0c1(0);
            c0c1[0] = version;
            let mut server = ServerHandshake::new(0, 0);
            assert_eq!(
                server.handle_input(&c0c1),
                Ok(HandshakeProgress::InProgress)
            );
            assert_eq!(server.poll_output().unwrap()[0], 3);
        }
    }

    #[test]
    fn client_rejects_bad_s0() {
        let mut client = ClientHandshake::new(0, 0, true);
        client.poll_output().unwrap();
        assert_eq!(
            client.handle_input(b"HTTP/1.1 400"),
            Err(HandshakeError::BadVersion(b'H'))
        );
        assert_eq!(
            client.handle_input(&[3]),
            Err(HandshakeError::BadVersion(b'H'))
        );
        assert_eq!(client.poll_output(), None);
    }

    #[test]
    fn remaining_bytes_after_c2_are_returned_exactly() {
        let tail: &[u8] = b"\x03\x00\x00\x00\x00\x00\xa1\x14\x00\x00\x00\x00\x02\x00\x07connect";
        let c0c1 = simple_c0c1(0);
        let c2 = vec![0x55; HANDSHAKE_SIZE];

        // C2 and the first chunk in one read.
        let mut server = ServerHandshake::new(0, 0);
        server.handle_input(&c0c1).unwrap();
        let mut read = c2.clone();
        read.extend_from_slice(tail);
        assert_eq!(
            server.handle_input(&read),
            Ok(done(HandshakeKind::Simple, tail))
        );
        // After Done, input passes through as `remaining`.
        assert_eq!(
            server.handle_input(b"more"),
            Ok(done(HandshakeKind::Simple, b"more"))
        );
        assert_eq!(server.poll_output().unwrap().len(), 1 + 2 * HANDSHAKE_SIZE);

        // C0 + C1 + C2 + chunk in one read: Done, and S0+S1+S2 still queued.
        let mut server = ServerHandshake::new(0, 0);
        let mut read = c0c1.clone();
        read.extend_from_slice(&c2);
        read.extend_from_slice(tail);
        assert_eq!(
            server.handle_input(&read),
            Ok(done(HandshakeKind::Simple, tail))
        );
        assert_eq!(server.poll_output().unwrap().len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(server.poll_output(), None);

        // C2 ending exactly at a read boundary: the next read is all remaining.
        let mut server = ServerHandshake::new(0, 0);
        server.handle_input(&c0c1).unwrap();
        assert_eq!(
            server.handle_input(&c2[..1000]),
            Ok(HandshakeProgress::InProgress)
        );
        assert_eq!(
            server.handle_input(&c2[1000..]),
            Ok(done(HandshakeKind::Simple, b""))
        );
        assert_eq!(
            server.handle_input(tail),
            Ok(done(HandshakeKind::Simple, tail))
        );

        // Client: S0+S1+S2 followed by the server's first chunks.
        let mut client = ClientHandshake::new(0, 0, true);
        let c0c1 = client.poll_output().unwrap();
        let mut server = ServerHandshake::new(0, 0);
        server.handle_input(&c0c1).unwrap();
        let mut read = server.poll_output().unwrap().to_vec();
        read.extend_from_slice(tail);
        assert_eq!(
            client.handle_input(&read),
            Ok(done(HandshakeKind::Digest { scheme: 1 }, tail))
        );
    }

    #[test]
    fn client_tolerates_a_wrong_s2() {
        for digest in [false, true] {
            let mut client = ClientHandshake::new(0, 11, digest);
            let c0c1 = client.poll_output().unwrap();
            let mut server = ServerHandshake::new(0, 12);
            server.handle_input(&c0c1).unwrap();
            let mut answer = server.poll_output().unwrap().to_vec();
            let last = answer.len() - 1;
            answer[last] ^= 1;
            let progress = client.handle_input(&answer).unwrap();
            assert!(matches!(progress, HandshakeProgress::Done { .. }));
            assert_eq!(client.server_response_verified(), Some(false));
            assert!(client.poll_output().is_some(), "C2 is still sent");
        }
        // A digest client talking to a simple-only server (S1 without a digest).
        let mut client = ClientHandshake::new(0, 13, true);
        let c0c1 = client.poll_output().unwrap();
        let mut answer = vec![3];
        answer.extend_from_slice(&simple_c0c1(0)[1..]);
        answer.extend_from_slice(&c0c1[1..]);
        assert_eq!(
            client.handle_input(&answer),
            Ok(done(HandshakeKind::Simple, b""))
        );
        assert_eq!(client.server_response_verified(), Some(true));
        let c2 = client.poll_output().unwrap();
        assert_eq!(c2[8..], answer[9..1 + HANDSHAKE_SIZE], "C2 echoes S1");
    }

    #[test]
    fn output_depends_only_on_inputs() {
        let answer = |seed: u64| {
            let mut server = ServerHandshake::new(5, seed);
            server.handle_input(FFMPEG_C0C1).unwrap();
            server.poll_output().unwrap()
        };
        assert_eq!(answer(1), answer(1));
        assert_ne!(answer(1), answer(2));
    }

    proptest! {
        /// However C0 + C1 + C2 + chunk data are split, the server answers the same
        /// bytes and returns exactly the data after C2.
        #[test]
        fn server_result_is_independent_of_splits(
            cuts in proptest::collection::vec(0usize..3200, 0..12),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut input = FFMPEG_C0C1.to_vec();
            input.extend_from_slice(&[0x77; HANDSHAKE_SIZE]);
            input.extend_from_slice(&tail);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.push(input.len());
            cuts.sort_unstable();

            let mut server = ServerHandshake::new(0, 8);
            let mut remaining = Vec::new();
            let mut finished = false;
            let mut start = 0;
            for cut in cuts {
                match server.handle_input(&input[start..cut]).unwrap() {
                    HandshakeProgress::InProgress => prop_assert!(!finished),
                    HandshakeProgress::Done { kind, remaining: rest } => {
                        prop_assert_eq!(kind, HandshakeKind::Digest { scheme: 0 });
                        finished = true;
                        remaining.extend_from_slice(&rest);
                    }
                }
                start = cut;
            }
            prop_assert!(finished);
            prop_assert_eq!(remaining, tail);
            let mut reference = ServerHandshake::new(0, 8);
            reference.handle_input(FFMPEG_C0C1).unwrap();
            prop_assert_eq!(server.poll_output(), reference.poll_output());
        }

        /// Arbitrary bytes in arbitrary splits never panic either side.
        #[test]
        fn arbitrary_input_never_panics(
            first in 0u8..40,
            data in proptest::collection::vec(any::<u8>(), 0..4000),
            step in 1usize..2000,
        ) {
            let mut server = ServerHandshake::new(0, 1);
            let mut client = ClientHandshake::new(0, 2, first % 2 == 0);
            for chunk in std::iter::once(&[first][..]).chain(data.chunks(step)) {
                let _ = server.handle_input(chunk);
                let _ = client.handle_input(chunk);
                while server.poll_output().is_some() {}
                while client.poll_output().is_some() {}
            }
        }
    }
}

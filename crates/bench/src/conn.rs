//! One RTMP client connection: a `TcpStream` and the sans-IO [`ClientSession`] it
//! drives. Owns the socket, the read buffer and the byte counters; what to do with
//! the session's events is the caller's business (play and publish differ).
//!
//! Run loop, as `ferrocast_proto` documents it: read, `handle_input`, let the caller
//! drain `poll_event`, then write everything `poll_output` has, in order.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrocast_proto::rtmp::session::{ClientSession, ClientTarget, SessionConfig, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Read buffer per connection. 64 KiB takes a burst (a GOP cache flush, a large
/// keyframe) in few reads, and 2000 players cost 128 MiB, which this machine has.
const READ_BUF: usize = 64 * 1024;

/// How long closing (writing closeStream / FCUnpublish) may take before the socket is
/// dropped anyway: a stuck server must not hold up the report.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection failed or ended: a short reason that is the tally key in the
/// report (few distinct values), and the detailed message for the first example.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            detail: detail.into(),
        }
    }

    /// A TCP connect error, with refused (no server listening) called out.
    pub fn connect(err: &io::Error) -> Failure {
        let reason = match err.kind() {
            io::ErrorKind::ConnectionRefused => "connect refused".to_owned(),
            io::ErrorKind::TimedOut => "connect timeout".to_owned(),
            _ => format!("connect error: {}", os_message(err)),
        };
        Failure::new(reason, err.to_string())
    }

    /// A read or write error on an established connection.
    pub fn io(err: &io::Error) -> Failure {
        Failure::new(
            format!("socket error: {}", os_message(err)),
            err.to_string(),
        )
    }

    /// An error from the session (bad bytes from the peer), by layer.
    pub fn session(err: &SessionError) -> Failure {
        let reason = match err {
            SessionError::Handshake(_) => "handshake error",
            SessionError::Chunk(_) => "chunk stream error",
            SessionError::Message(_) => "message error",
            SessionError::Protocol(_) => "protocol violation",
        };
        Failure::new(reason, err.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// The OS message of an io error without the "(os error N)" suffix, so that equal
/// errors tally under one key.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// What one read produced.
pub enum Input {
    /// Bytes were handed to the session; drain its events.
    Data,
    /// The peer closed the connection.
    Eof,
}

pub struct Conn {
    stream: TcpStream,
    pub session: ClientSession,
    buf: Box<[u8]>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Conn {
    /// TCP connect, create the session (which queues C0 + C1) and send what it has.
    /// `index` makes each connection's handshake random bytes differ.
    pub async fn open(
        addr: SocketAddr,
        target: ClientTarget,
        digest: bool,
        epoch: u32,
        index: u64,
    ) -> Result<Conn, Failure> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::connect(&e))?;
        // Small control messages (acks, commands) should not wait for Nagle; media
        // writes are large anyway.
        let _ = stream.set_nodelay(true);
        let session = ClientSession::new(
            SessionConfig::default(),
            target,
            epoch,
            random_seed(index),
            digest,
        );
        let mut conn = Conn {
            stream,
            session,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            bytes_in: 0,
            bytes_out: 0,
        };
        conn.flush().await.map_err(|e| Failure::io(&e))?;
        Ok(conn)
    }

    /// One read from the socket, fed to the session. Cancel-safe up to the read (the
    /// only await point), so it can sit in a `select!`.
    pub async fn read_input(&mut self) -> Result<Input, Failure> {
        let n = self
            .stream
            .read(&mut self.buf)
            .await
            .map_err(|e| Failure::io(&e))?;
        if n == 0 {
            return Ok(Input::Eof);
        }
        self.bytes_in += n as u64;
        self.session
            .handle_input(&self.buf[..n])
            .map_err(|e| Failure::session(&e))?;
        Ok(Input::Data)
    }

    /// Writes everything the session has queued, in order.
    pub async fn flush(&mut self) -> io::Result<()> {
        while let Some(bytes) = self.session.poll_output() {
            self.stream.write_all(&bytes).await?;
            self.bytes_out += bytes.len() as u64;
        }
        Ok(())
    }

    /// Asks the session to close its stream, writes that (bounded by
    /// [`CLOSE_TIMEOUT`]) and shuts the socket down. Errors are ignored: we are leaving.
    /// Returns the bytes written over the connection's life.
    pub async fn close(mut self) -> u64 {
        self.session.close();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let _ = tokio::time::timeout_at(deadline, async {
            self.flush().await?;
            self.stream.shutdown().await
        })
        .await;
        self.bytes_out
    }
}

/// Milliseconds since an arbitrary start, for the handshake's time field (RTMP
/// spec 5.2.3: "may be 0, or some arbitrary value").
pub fn epoch_ms(since: std::time::Instant) -> u32 {
    since.elapsed().as_millis() as u32
}

/// Handshake random bytes per connection: the wall clock mixed with the index
/// (splitmix64). Not cryptographic; RTMP's random field is not a secret.
fn random_seed(index: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

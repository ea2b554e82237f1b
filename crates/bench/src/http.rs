//! A minimal HTTP/1.1 client for the delivery benchmarks: `GET` over a plain
//! `TcpStream`, one request at a time, keep-alive, bodies framed by Content-Length,
//! chunked transfer coding or the end of the connection.
//!
//! Why not a client library: the bench measures when bytes arrive, so it must see
//! each read as it happens (an HTTP-FLV body never ends), and it only ever talks to
//! servers on loopback that it was pointed at. The framing ([`parse_head`],
//! [`ChunkedDecoder`]) is pure and unit-tested; [`HttpConn`] only moves bytes.
//! No TLS, no redirects, no proxies: a bench URL is `http://HOST[:PORT]/PATH`.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted: real heads are a few hundred bytes; this only
/// stops a broken peer from growing the buffer forever.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line (RFC 9112 7.1): hex digits plus extensions.
const MAX_CHUNK_LINE: usize = 4096;
/// Read size: a ~200 KB segment arrives in a few reads.
const READ_BUF: usize = 64 * 1024;

/// `http://HOST[:PORT]/PATH?QUERY`, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The `Host` header value (with the port when it was given).
    pub host: String,
    pub addr: SocketAddr,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses and resolves a URL; `Err` says what is wrong with it.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        use std::net::ToSocketAddrs;
        let (authority, path) = split_url(url)?;
        let (host, port) = split_authority(authority)?;
        let addr = (host.trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{host}` resolves to no address"))?;
        Ok(HttpUrl {
            host: authority.to_owned(),
            addr,
            path: path.to_owned(),
        })
    }

    /// Resolves a playlist entry (absolute path, absolute URL on the same server, or
    /// a path relative to this URL's directory) to a path on this server.
    pub fn join(&self, reference: &str) -> Result<String, String> {
        if reference.starts_with('/') {
            return Ok(reference.to_owned());
        }
        if reference.contains("://") {
            let (authority, path) = split_url(reference)?;
            if authority != self.host {
                return Err(format!("`{reference}` is on another server"));
            }
            return Ok(path.to_owned());
        }
        let dir_end = self
            .path
            .split('?')
            .next()
            .and_then(|p| p.rfind('/'))
            .unwrap_or(0);
        Ok(format!("{}/{reference}", &self.path[..dir_end]))
    }
}

/// `http://AUTHORITY/PATH` -> (authority, path); the path defaults to `/`.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok((authority, path))
}

/// `host[:port]` or `[v6][:port]` -> (host, port), port 80 when absent.
fn split_authority(authority: &str) -> Result<(&str, u16), String> {
    let bad_port = || format!("bad port in `{authority}`");
    if let Some(v6_end) = authority.find(']') {
        let host = &authority[..=v6_end];
        return match &authority[v6_end + 1..] {
            "" => Ok((host, 80)),
            p => Ok((
                host,
                p.strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad_port)?,
            )),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, port.parse().map_err(|_| bad_port())?)),
        None => Ok((authority, 80)),
    }
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// The parts of a response head the bench needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// Parses a response head from the start of `buf`: `Ok(None)` until the blank line
/// that ends it has arrived, else the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: `{status_line}`"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line `{line}`"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad Content-Length `{value}`"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    // RFC 9112 6.3: 1xx, 204 and 304 have no body; chunked wins over a length.
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::Close
    };
    Ok(Some((
        Head {
            status,
            framing,
            close,
        },
        end + 4,
    )))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Removes chunked transfer coding (RFC 9112 7.1), incrementally: feed whatever
/// arrived, get the payload bytes that are complete so far.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }
}

impl ChunkedDecoder {
    /// Consumes what it can from `input`, appends payload to `out`, and returns
    /// whether the body (last chunk and trailers) is complete. Bytes after the body
    /// stay in `input` (the next response on a kept-alive connection).
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, String> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(true),
                ChunkState::Size | ChunkState::Trailer => {
                    let Some(eol) = find(input, b"\r\n") else {
                        if input.len() > MAX_CHUNK_LINE {
                            return Err("chunk line too long".into());
                        }
                        return Ok(false);
                    };
                    let line = input.split_to(eol + 2);
                    let line = &line[..eol];
                    if self.state == ChunkState::Trailer {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                    let digits = std::str::from_utf8(digits)
                        .map_err(|_| "chunk size is not text")?
                        .trim();
                    let size = u64::from_str_radix(digits, 16)
                        .map_err(|_| format!("bad chunk size `{digits}`"))?;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let take = (input.len() as u64).min(left) as usize;
                    out.extend_from_slice(&input[..take]);
                    input.advance(take);
                    self.state = if left == take as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take as u64)
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
            }
        }
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: BytesMut,
}

/// One connection to one server, for requests one after the other. Reconnects
/// when the server closed a kept-alive connection.
pub struct HttpConn {
    url: HttpUrl,
    stream: Option<TcpStream>,
    buf: BytesMut,
}

/// A response whose body is read piece by piece ([`BodyReader::read`]).
pub struct BodyReader {
    stream: TcpStream,
    buf: BytesMut,
    framing: Framing,
    chunked: ChunkedDecoder,
    /// Body bytes still expected (Content-Length framing).
    left: u64,
    done: bool,
}

impl HttpConn {
    pub fn new(url: &HttpUrl) -> HttpConn {
        HttpConn {
            url: url.clone(),
            stream: None,
            buf: BytesMut::with_capacity(READ_BUF),
        }
    }

    async fn connect(url: &HttpUrl) -> Result<TcpStream, String> {
        let stream = TcpStream::connect(url.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", url.addr))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn request(&self, path: &str, keep_alive: bool) -> String {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferrocast-bench\r\nAccept: */*\r\nConnection: {connection}\r\n\r\n",
            self.url.host
        )
    }

    /// `GET path` and the whole body. A kept-alive connection that turns out to be
    /// closed is replaced once; any other failure is an `Err` with the reason.
    pub async fn get(&mut self, path: &str) -> Result<Response, String> {
        let reused = self.stream.is_some();
        match self.get_once(path).await {
            Err(_) if reused => {
                self.stream = None;
                self.get_once(path).await
            }
            other => other,
        }
    }

    async fn get_once(&mut self, path: &str) -> Result<Response, String> {
        if self.stream.is_none() {
            self.stream = Some(Self::connect(&self.url).await?);
            self.buf.clear();
        }
        let request = self.request(path, true);
        let result = async {
            let stream = self.stream.as_mut().expect("connected above");
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let head = read_head(stream, &mut self.buf).await?;
            let mut body = BytesMut::new();
            match head.framing {
                Framing::Length(n) => {
                    while (self.buf.len() as u64) < n {
                        read_more(stream, &mut self.buf)
                            .await?
                            .ok_or("EOF in body")?;
                    }
                    body = self.buf.split_to(n as usize);
                }
                Framing::Chunked => {
                    let mut dec = ChunkedDecoder::default();
                    while !dec.decode(&mut self.buf, &mut body)? {
                        read_more(stream, &mut self.buf)
                            .await?
                            .ok_or("EOF in chunked body")?;
                    }
                }
                Framing::Close => {
                    while read_more(stream, &mut self.buf).await?.is_some() {}
                    body = self.buf.split();
                }
            }
            Ok::<_, String>((head, body))
        }
        .await;
        match result {
            Ok((head, body)) => {
                if head.close {
                    self.stream = None;
                }
                Ok(Response {
                    status: head.status,
                    body,
                })
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// `GET path` on a new connection of its own, returning once the head arrived;
    /// the body is then read as it comes (a live stream). The request asks the
    /// server to close when the body ends.
    pub async fn open_stream(url: &HttpUrl, path: &str) -> Result<(Head, BodyReader), String> {
        let mut stream = Self::connect(url).await?;
        let request = HttpConn::new(url).request(path, false);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = BytesMut::with_capacity(READ_BUF);
        let head = read_head(&mut stream, &mut buf).await?;
        let left = match head.framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let reader = BodyReader {
            stream,
            buf,
            framing: head.framing,
            chunked: ChunkedDecoder::default(),
            left,
            done: matches!(head.framing, Framing::Length(0)),
        };
        Ok((head, reader))
    }
}

impl BodyReader {
    /// Appends the body bytes that are available (reading the socket once if none
    /// are buffered) to `out`; `Ok(false)` once the body has ended.
    pub async fn read(&mut self, out: &mut BytesMut) -> Result<bool, String> {
        loop {
            if self.done {
                return Ok(false);
            }
            let before = out.len();
            match self.framing {
                Framing::Chunked => {
                    self.done = self.chunked.decode(&mut self.buf, out)?;
                }
                Framing::Length(_) => {
                    let take = (self.buf.len() as u64).min(self.left) as usize;
                    out.extend_from_slice(&self.buf[..take]);
                    self.buf.advance(take);
                    self.left -= take as u64;
                    self.done = self.left == 0;
                }
                Framing::Close => out.extend_from_slice(&self.buf.split()),
            }
            if out.len() > before || self.done {
                return Ok(out.len() > before || !self.done);
            }
            match read_more(&mut self.stream, &mut self.buf).await? {
                Some(_) => {}
                None if self.framing == Framing::Close => self.done = true,
                None => return Err("EOF before the end of the body".into()),
            }
        }
    }
}

/// Reads until a whole head is in `buf`, removes it and returns it.
async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Head, String> {
    loop {
        if let Some((head, len)) = parse_head(buf)? {
            buf.advance(len);
            return Ok(head);
        }
        read_more(stream, buf)
            .await?
            .ok_or("connection closed before a response")?;
    }
}

/// One read into `buf`; `None` at EOF.
async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Option<usize>, String> {
    buf.reserve(READ_BUF);
    match stream.read_buf(buf).await {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            Err("connection reset by the server".into())
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/live/x/hls.m3u8?vhost=a").unwrap();
        assert_eq!(u.host, "127.0.0.1:8080");
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.path, "/live/x/hls.m3u8?vhost=a");
        assert_eq!(u.join("12.ts").unwrap(), "/live/x/12.ts");
        assert_eq!(u.join("/hls/x-3.ts").unwrap(), "/hls/x-3.ts");
        assert_eq!(u.join("http://127.0.0.1:8080/a/b.ts").unwrap(), "/a/b.ts");
        assert!(u.join("http://other:80/a.ts").is_err());
        assert_eq!(HttpUrl::parse("http://127.0.0.1").unwrap().path, "/");
        assert_eq!(
            HttpUrl::parse("http://[::1]:81/a").unwrap().addr,
            "[::1]:81".parse().unwrap()
        );
        assert!(HttpUrl::parse("rtmp://127.0.0.1/a").is_err());
        assert!(HttpUrl::parse("http://127.0.0.1:x/a").is_err());
    }

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        let (h, n) = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.close, n),
            (200, Framing::Length(5), false, 38)
        );
        let (h, _) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.close), (Framing::Chunked, true));
        let (h, _) = parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing, h.close), (404, Framing::Close, true));
        let (h, _) = parse_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_in_any_pieces() {
        let wire =
            b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        // Every split point, byte by byte, gives the same payload and leftover.
        for step in 1..wire.len() {
            let mut dec = ChunkedDecoder::default();
            let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
            let mut done = false;
            for piece in wire.chunks(step) {
                assert!(!done, "done before the end at step {step}");
                input.extend_from_slice(piece);
                done = dec.decode(&mut input, &mut out).unwrap();
                if done {
                    break;
                }
            }
            assert!(done, "step {step}");
            assert_eq!(&out[..], b"Wikipedia in \r\n\r\nchunks.");
            // The leftover is whatever of "NEXT" had arrived with the last piece.
            assert!(b"NEXT".starts_with(&input), "step {step}");
        }
    }

    #[test]
    fn chunked_errors() {
        let mut dec = ChunkedDecoder::default();
        let mut out = BytesMut::new();
        assert!(dec
            .decode(&mut BytesMut::from(&b"zz\r\n"[..]), &mut out)
            .is_err());
        let mut dec = ChunkedDecoder::default();
        assert!(dec
            .decode(&mut BytesMut::from(&b"2\r\nabXY"[..]), &mut out)
            .is_err());
        let mut dec = ChunkedDecoder::default();
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(dec
            .decode(&mut BytesMut::from(&long[..]), &mut out)
            .is_err());
    }
}

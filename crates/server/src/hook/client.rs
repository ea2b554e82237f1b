//! One hook request: a POST of a JSON body to an `http://` or `https://` URL, and its
//! answer, read up to [`MAX_ANSWER`].
//!
//! A fresh connection per request (hyper's HTTP/1.1 connection API over a tokio
//! socket, rustls for https with the built-in web roots), no pool: hooks are rare
//! next to media (a few per session), a receiver is usually on the same host or LAN,
//! and a pool would keep sockets to receivers that an operator may restart or
//! replace at any time. The caller bounds the whole exchange (connect, TLS, request,
//! answer) with one timeout.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The most of an answer that is read: ZLMediaKit answers are a few fields; a
/// receiver that sends more is broken, and must not make the server buffer it.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, Error)]
pub(crate) enum PostError {
    #[error("bad hook URL: {0}")]
    BadUrl(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("answer larger than {MAX_ANSWER} bytes or unreadable: {0}")]
    Body(String),
}

/// What a receiver answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Posts JSON bodies. Cheap to clone (the TLS configuration is shared).
#[derive(Clone)]
pub(crate) struct HttpClient {
    /// `None` only if rustls refused the default protocol versions (it does not with
    /// ring); https hooks then fail with a TLS error.
    tls: Option<TlsConnector>,
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        HttpClient {
            tls: config.ok().map(|c| TlsConnector::from(Arc::new(c))),
        }
    }

    /// POSTs `body` (JSON) to `url`. `vhost` goes in `X-VHOST` as ZLMediaKit sends it.
    pub(crate) async fn post(
        &self,
        url: &str,
        body: Bytes,
        vhost: Option<&str>,
    ) -> Result<Answer, PostError> {
        let parsed = url::Url::parse(url).map_err(|e| PostError::BadUrl(e.to_string()))?;
        let https = match parsed.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(PostError::BadUrl(format!("scheme {s:?}"))),
        };
        let host = parsed
            .host_str()
            .ok_or_else(|| PostError::BadUrl("no host".into()))?
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let connect_host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((connect_host, port))
            .await
            .map_err(PostError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let mut path = parsed.path().to_owned();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        let host_header = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::CONTENT_LENGTH, body.len())
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::CONNECTION, "close");
        if let Some(v) = vhost {
            req = req.header("X-VHOST", v);
        }
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or(""));
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
            );
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| PostError::BadUrl(e.to_string()))?;
        if https {
            let name = ServerName::try_from(connect_host.to_owned())
                .map_err(|e| PostError::BadUrl(e.to_string()))?;
            let Some(tls) = &self.tls else {
                return Err(PostError::Tls(std::io::Error::other(
                    "no TLS configuration",
                )));
            };
            let tls = tls.connect(name, tcp).await.map_err(PostError::Tls)?;
            exchange(TokioIo::new(tls), req).await
        } else {
            exchange(TokioIo::new(tcp), req).await
        }
    }
}

async fn exchange<T>(io: T, req: hyper::Request<Full<Bytes>>) -> Result<Answer, PostError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection task ends with the exchange (Connection: close) or when the
    // caller's timeout drops this future and with it the sender.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let res = sender.send_request(req).await?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| PostError::Body(e.to_string()))?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Standard base64 with padding (for a Basic credential in the hook URL).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn userinfo_is_percent_decoded() {
        assert_eq!(super::percent_decode("a%40b%3Ac"), "a@b:c");
        assert_eq!(super::percent_decode("p+q"), "p+q");
    }
}

//! The serving side of TLS: the certificate of the RTMPS and HTTPS listeners and its
//! reload on SIGHUP. (The client side, for `rtmps://` pulls and pushes, is
//! `proxy::rtmp`'s; the HTTPS listener's handshakes are `http::serve`'s.)
//!
//! Decisions:
//! * **rustls with the `ring` provider, chosen explicitly** (as `proxy::rtmp` does):
//!   no process-wide default provider to install, and no second crypto library.
//!   PEM is parsed by rustls' own `pki_types` (no `rustls-pemfile`).
//! * **Files are read by us**, so an error names the file and what was wrong with it
//!   (missing, unreadable, no certificate, no key, key not matching): a bad file at
//!   start-up stops the server with that message; at a reload it is logged and the
//!   old certificate stays.
//! * **Reload without dropping sessions**: the current configs sit behind a std
//!   `RwLock<Arc<..>>` read once per accepted connection (a pointer copy under a lock
//!   held for nanoseconds; `arc-swap` would buy nothing at accept rates). A session
//!   keeps the config it was accepted with; only new connections see a new
//!   certificate.
//! * **Two configs from one certificate**: HTTPS offers ALPN `http/1.1` only (our
//!   HTTP server speaks HTTP/1.1, and WebSocket upgrades are HTTP/1.1; a browser
//!   told nothing could pick h2). RTMPS offers no ALPN: RTMP clients send none, and a
//!   client that sends some must not be refused for it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// A certificate or key file that cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read TLS {what} file {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("TLS certificate file {}: {reason}", path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("TLS key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate {} and key {} do not make a server config: {source}", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The two server configs built from one certificate and key.
struct Configs {
    rtmps: Arc<ServerConfig>,
    https: Arc<ServerConfig>,
}

/// The listeners' certificate: the files it comes from and the configs built from
/// them, replaced whole by [`TlsCerts::reload`].
pub(crate) struct TlsCerts {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<Configs>>,
}

impl TlsCerts {
    /// Loads the PEM certificate chain and private key.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<TlsCerts>, TlsError> {
        let configs = build(cert, key)?;
        Ok(Arc::new(TlsCerts {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(configs)),
        }))
    }

    /// Reads the files again; on error the current certificate stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let configs = build(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(configs);
        Ok(())
    }

    fn configs(&self) -> Arc<Configs> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The acceptor for one new RTMPS connection (the current certificate).
    pub(crate) fn rtmps_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.configs().rtmps.clone())
    }

    /// The acceptor for one new HTTPS connection (the current certificate).
    pub(crate) fn https_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.configs().https.clone())
    }

    /// Reloads on every SIGHUP until the process ends, logging the outcome.
    pub(crate) async fn reload_on_sighup(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP: the TLS certificate will not be reloaded");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    "SIGHUP: TLS certificate reloaded; new connections use it"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "SIGHUP: TLS certificate not reloaded; the previous one stays in use"
                ),
            }
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn build(cert_path: &Path, key_path: &Path) -> Result<Configs, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: cert_path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read("certificate", cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block in it".into()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&read("key", key_path)?).map_err(|e| TlsError::Key {
            path: key_path.to_path_buf(),
            reason: match e {
                rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block in it".into(),
                e => format!("bad PEM: {e}"),
            },
        })?;
    let config = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, TlsError> {
        let mut c =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(|b| {
                    b.with_no_client_auth()
                        .with_single_cert(chain.clone(), key.clone_key())
                })
                .map_err(|source| TlsError::Config {
                    cert: cert_path.to_path_buf(),
                    key: key_path.to_path_buf(),
                    source,
                })?;
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    };
    Ok(Configs {
        rtmps: config(&[])?,
        https: config(&[b"http/1.1"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrocast-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_missing_or_bad_file_is_named_in_the_error() {
        let d = dir("bad");
        let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
        let e = TlsCerts::load(&cert, &key).err().unwrap().to_string();
        assert!(
            e.contains("certificate") && e.contains(&*cert.to_string_lossy()),
            "{e}"
        );

        std::fs::write(&cert, "not a certificate\n").unwrap();
        let e = TlsCerts::load(&cert, &key).err().unwrap().to_string();
        assert!(
            e.contains(&*cert.to_string_lossy()) && e.contains("no CERTIFICATE"),
            "{e}"
        );

        // A well-formed PEM block of the right label but not DER inside would pass
        // here and fail in rustls; the key's absence is what is checked next.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = TlsCerts::load(&cert, &key).err().unwrap().to_string();
        assert!(
            e.contains("key") && e.contains(&*key.to_string_lossy()),
            "{e}"
        );

        std::fs::write(&key, "nothing\n").unwrap();
        let e = TlsCerts::load(&cert, &key).err().unwrap().to_string();
        assert!(
            e.contains(&*key.to_string_lossy()) && e.contains("no PRIVATE KEY"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}

//! TLS with rustls: PEM files in, a certificate that can be swapped under live connections.
//!
//! The certificate lives behind an `ArcSwap` read by a `ResolvesServerCert` on each handshake,
//! so a reload changes what new handshakes get and leaves established connections alone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::HttpError;

/// Where the PEM certificate chain and private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Installs rustls' ring provider as the process default unless one is already installed.
///
/// Crates that enable both ring and aws-lc-rs make rustls refuse to pick a default and panic on
/// first use; installing one explicitly at start-up avoids that. Calling it twice is harmless.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: some provider is then in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Holds the live certificate and reloads it from disk on request (the binary calls
/// [`TlsReloader::reload`] on SIGHUP).
#[derive(Clone)]
pub struct TlsReloader {
    spec: TlsSpec,
    current: Arc<ArcSwap<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
    acceptor: TlsAcceptor,
}

/// A certificate and key read and checked by [`TlsReloader::prepare`], not yet served.
pub struct PreparedCert(Arc<CertifiedKey>);

impl fmt::Debug for PreparedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedCert")
    }
}

/// What the server needs to terminate TLS on accepted connections.
#[derive(Clone)]
pub struct TlsAcceptorHandle(pub(crate) TlsAcceptor);

impl fmt::Debug for TlsAcceptorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsAcceptorHandle")
    }
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloader")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct SwappableCert(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl TlsReloader {
    /// Loads the certificate and key and builds a server configuration offering HTTP/2 and
    /// HTTP/1.1 over ALPN.
    ///
    /// # Errors
    /// A file cannot be read, holds no usable PEM item, or the key does not match the
    /// certificate.
    pub fn new(spec: TlsSpec) -> Result<Self, HttpError> {
        install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = load(&spec, &provider)?;
        let current = Arc::new(ArcSwap::from_pointee(key));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| HttpError::Tls {
                path: spec.cert.clone(),
                reason: err.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SwappableCert(current.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            spec,
            current,
            provider,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads the files again and, when they are valid, serves the new certificate to new
    /// handshakes; connections already open keep theirs.
    ///
    /// # Errors
    /// As for [`TlsReloader::new`]; the certificate in use stays in place.
    pub fn reload(&self) -> Result<(), HttpError> {
        let prepared = self.prepare()?;
        self.install(prepared);
        Ok(())
    }

    /// Reads and checks the files again without serving them yet: the first half of
    /// [`TlsReloader::reload`], for a caller that swaps the certificate together with other parts
    /// only once every part was built.
    ///
    /// # Errors
    /// As for [`TlsReloader::new`].
    pub fn prepare(&self) -> Result<PreparedCert, HttpError> {
        load(&self.spec, &self.provider).map(|key| PreparedCert(Arc::new(key)))
    }

    /// Serves what [`TlsReloader::prepare`] read to new handshakes; it cannot fail.
    pub fn install(&self, prepared: PreparedCert) {
        self.current.store(prepared.0);
    }

    /// The acceptor to hand to [`crate::serve`]; it follows every reload.
    pub fn acceptor(&self) -> TlsAcceptorHandle {
        TlsAcceptorHandle(self.acceptor.clone())
    }
}

fn load(spec: &TlsSpec, provider: &CryptoProvider) -> Result<CertifiedKey, HttpError> {
    let cert_pem = read(&spec.cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(&spec.cert, err))?;
    if certs.is_empty() {
        return Err(tls_error(&spec.cert, "no CERTIFICATE block found"));
    }
    let key_pem = read(&spec.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| tls_error(&spec.key, err))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|err| tls_error(&spec.key, err))
}

fn read(path: &Path) -> Result<Vec<u8>, HttpError> {
    std::fs::read(path).map_err(|source| HttpError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

fn tls_error(path: &Path, reason: impl fmt::Display) -> HttpError {
    HttpError::Tls {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

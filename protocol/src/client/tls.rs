//! Which certificate authorities the client trusts for `https://` and
//! `wss://` targets. One [`Tls`] holds one rustls client configuration,
//! shared by the REST client (reqwest) and the realtime client
//! (tokio-tungstenite), so both halves of a run verify the server the same
//! way: the platform's root store (read once per process with
//! rustls-native-certs: `/etc/ssl/certs` on Linux, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`) plus, optionally, a private CA from a PEM file
//! (`--ca-cert FILE` of the suite and the load generator).
//!
//! There is no switch that turns verification off. A server whose
//! certificate chains to none of these roots is refused at connect, and the
//! error says so (see [`describe`]).
//!
//! The crypto provider is named explicitly (aws-lc-rs, the one reqwest
//! already builds with), so the process-wide default provider never has to
//! be guessed from crate features.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Why a CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or holds no PEM certificate.
    #[error("--ca-cert {path}: {why}")]
    CaFile { path: PathBuf, why: String },
    /// A certificate of the file is not one rustls accepts as a trust anchor.
    #[error("--ca-cert {path}: certificate {index} is not a usable CA certificate: {why}")]
    BadCa { path: PathBuf, index: usize, why: String },
}

/// The trust of a client: platform roots, plus a private CA when given.
/// Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    /// What the roots are, for error messages and reports.
    describe: Arc<str>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("roots", &self.describe).finish()
    }
}

/// The platform's roots, read once per process (about 150 certificates;
/// re-reading them for every client would cost milliseconds each).
fn platform_roots() -> &'static (Vec<CertificateDer<'static>>, usize) {
    static ROOTS: OnceLock<(Vec<CertificateDer<'static>>, usize)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        // A store that fails to load partly still gives what it found; a target
        // signed by a missing root is then refused with UnknownIssuer, which
        // `describe` explains.
        let errors = found.errors.len();
        (found.certs, errors)
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Tls {
    /// The platform's roots only.
    pub fn platform() -> Tls {
        static PLATFORM: OnceLock<Tls> = OnceLock::new();
        PLATFORM
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                let (certs, _) = platform_roots();
                let (added, _ignored) = roots.add_parsable_certificates(certs.iter().cloned());
                Tls::from_roots(roots, format!("the platform's {added} root certificates"))
            })
            .clone()
    }

    /// The platform's roots plus every certificate of a PEM file (a private CA).
    pub fn with_ca_file(path: &Path) -> Result<Tls, TlsError> {
        let ca_file = |why: String| TlsError::CaFile { path: path.to_path_buf(), why };
        let pem = std::fs::read(path).map_err(|e| ca_file(e.to_string()))?;
        let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ca_file(format!("not PEM: {e}")))?;
        if extra.is_empty() {
            return Err(ca_file("holds no CERTIFICATE block".into()));
        }
        let mut roots = RootCertStore::empty();
        let (certs, _) = platform_roots();
        roots.add_parsable_certificates(certs.iter().cloned());
        for (index, cert) in extra.iter().enumerate() {
            roots.add(cert.clone()).map_err(|e| TlsError::BadCa {
                path: path.to_path_buf(),
                index: index + 1,
                why: e.to_string(),
            })?;
        }
        let describe = format!("the platform's roots plus {} certificate(s) of {}", extra.len(), path.display());
        Ok(Tls::from_roots(roots, describe))
    }

    /// [`Tls::with_ca_file`] when a file is given, else [`Tls::platform`].
    pub fn from_option(ca_cert: Option<&Path>) -> Result<Tls, TlsError> {
        match ca_cert {
            Some(path) => Tls::with_ca_file(path),
            None => Ok(Tls::platform()),
        }
    }

    fn from_roots(roots: RootCertStore, describe: String) -> Tls {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the aws-lc-rs provider supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls { config: Arc::new(config), describe: describe.into() }
    }

    /// What this client trusts, in words.
    pub fn roots(&self) -> &str {
        &self.describe
    }

    /// The rustls configuration, for reqwest (which takes it by value).
    pub(crate) fn rustls_config(&self) -> rustls::ClientConfig {
        (*self.config).clone()
    }

    /// The connector for tokio-tungstenite's `*_tls_with_config` functions,
    /// for callers that need the raw handshake (e.g. the upgrade's HTTP body).
    pub fn ws_connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.config.clone())
    }
}

/// A connect error in words a vendor can act on: a certificate that chains
/// to no trusted root says to pass `--ca-cert`. reqwest and tungstenite wrap
/// the rustls error in layers that do not all expose it as a `source`, so
/// the chain is searched by type and, failing that, by rustls's wording.
pub fn describe(error: &(dyn std::error::Error + 'static), tls: &Tls) -> Option<String> {
    let refused = |why: String| {
        format!(
            "the server's TLS certificate was refused ({why}); trusted: {}. For a private CA pass --ca-cert FILE",
            tls.roots()
        )
    };
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(refused(format!("{why:?}")));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(rustls::Error::InvalidCertificate(why)) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(refused(format!("{why:?}")));
        }
        let text = e.to_string();
        if let Some(i) = text.find("invalid peer certificate") {
            return Some(refused(text[i..].to_string()));
        }
        source = e.source();
    }
    None
}

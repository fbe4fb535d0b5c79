//! Certificates and TLS configurations for interception (SPEC §4, DESIGN
//! "Secrets and TLS"): [`SandboxCa`], the sandbox's own certificate
//! authority, which signs a certificate for each host whose TLS the proxy
//! terminates, and [`UpstreamTrust`], what the proxy trusts when it speaks
//! TLS to the real server on the sandbox's behalf.
//!
//! Both sides speak HTTP/1.1 only (ALPN `http/1.1`): the proxy rewrites
//! HTTP/1.1 messages, and a client that offers h2 as well falls back to it.
//! The crypto is rustls' ring provider, named explicitly so that another
//! crate installing a process-wide default cannot change it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::policy::net::Host;

/// Why a CA, a certificate or a trust store could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not create the sandbox's certificate authority: {0}")]
    Ca(#[source] rcgen::Error),
    #[error("could not issue a certificate for {host}: {source}")]
    Leaf { host: String, source: rcgen::Error },
    #[error("could not build a TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error(
        "network.extraCaCerts holds no certificate: give one or more PEM blocks \
         (\"-----BEGIN CERTIFICATE-----\" ... \"-----END CERTIFICATE-----\")"
    )]
    NoExtraCerts,
    #[error("network.extraCaCerts is not valid PEM: {0}")]
    BadPem(String),
    #[error("network.extraCaCerts certificate #{index} cannot be used as a CA certificate: {reason}")]
    BadExtraCert { index: usize, reason: String },
    #[error(
        "no CA certificates could be loaded from the system ({detail}), so no server could be verified; \
         install the system CA bundle (e.g. the ca-certificates package), point SSL_CERT_FILE at one, \
         or give network.extraCaCerts"
    )]
    NoSystemRoots { detail: String },
}

/// How long certificates are valid before now: clocks inside and outside the
/// sandbox may disagree a little.
const BACKDATE: Duration = Duration::from_secs(3600);
const CA_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const LEAF_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// A cached leaf is replaced this long after it was issued, well before it
/// expires: a sandbox may run for longer than a leaf lives.
const LEAF_RENEWAL: Duration = Duration::from_secs(6 * 24 * 3600);
const CA_NAME: &str = "bun-sandbox sandbox CA";
/// Leaf configurations kept per CA. A sandbox reaches few hosts, but a
/// wildcard NET line allows any number of names; past this the cache starts
/// over rather than grow.
const MAX_CACHED_LEAVES: usize = 1024;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = SystemTime::now();
    params.not_before = now.checked_sub(BACKDATE).unwrap_or(now).into();
    params.not_after = now.checked_add(lifetime).unwrap_or(now).into();
}

/// The certificate authority of one sandbox. The sandbox trusts it (its
/// system bundle and the usual variables hold [`SandboxCa::cert_pem`]); the
/// proxy signs with it a certificate for each host it intercepts. The CA is
/// made fresh for each sandbox, valid for 30 days and allowed to sign only
/// end-entity certificates (path length 0); its private key exists only in
/// this process's memory, so nothing the sandbox can read lets it mint
/// certificates of its own.
pub struct SandboxCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    /// A server configuration (leaf certificate and key) per host.
    leaves: Mutex<HashMap<Host, Leaf>>,
}

struct Leaf {
    config: Arc<ServerConfig>,
    renew_after: Instant,
}

impl fmt::Debug for SandboxCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxCa").field("name", &CA_NAME).finish_non_exhaustive()
    }
}

impl SandboxCa {
    /// A new CA with a new ECDSA P-256 key.
    pub fn generate() -> Result<SandboxCa, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsError::Ca)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        validity(&mut params, CA_LIFETIME);
        let cert = params.self_signed(&key).map_err(TlsError::Ca)?;
        Ok(SandboxCa { issuer: Issuer::new(params, key), pem: cert.pem(), leaves: Mutex::new(HashMap::new()) })
    }

    /// The CA certificate in PEM, for the sandbox to trust.
    pub fn cert_pem(&self) -> String {
        self.pem.clone()
    }

    /// The TLS server configuration the proxy presents to a client that
    /// connects to `host`: a certificate for that name (or IP address) signed
    /// by this CA. Issued on first use and kept.
    pub fn server_config(&self, host: &Host) -> Result<Arc<ServerConfig>, TlsError> {
        if let Some(leaf) = self.lock_leaves().get(host)
            && leaf.renew_after > Instant::now()
        {
            return Ok(leaf.config.clone());
        }
        // Issued without the lock held (a key and a signature take a moment):
        // two first connections to a host may both issue one; the last stays.
        let config = Arc::new(self.issue(host)?);
        let leaf = Leaf { config: config.clone(), renew_after: Instant::now() + LEAF_RENEWAL };
        let mut leaves = self.lock_leaves();
        if leaves.len() >= MAX_CACHED_LEAVES {
            leaves.clear();
        }
        leaves.insert(host.clone(), leaf);
        Ok(config)
    }

    fn lock_leaves(&self) -> std::sync::MutexGuard<'_, HashMap<Host, Leaf>> {
        // The map is consistent at every point a panic could leave it.
        self.leaves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A leaf certificate for `host` with its own P-256 key, valid 7 days.
    fn issue(&self, host: &Host) -> Result<ServerConfig, TlsError> {
        let failed = |source| TlsError::Leaf { host: host.to_string(), source };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = CertificateParams::default();
        let (common_name, san) = match host {
            Host::Name(name) => (name.clone(), SanType::DnsName(name.clone().try_into().map_err(failed)?)),
            Host::Ip(ip) => (ip.to_string(), SanType::IpAddress(*ip)),
        };
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.subject_alt_names = vec![san];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_LIFETIME);
        let cert = params.signed_by(&key, &self.issuer).map_err(failed)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .map_err(TlsError::Config)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// What the proxy trusts when it connects to an upstream over TLS: the
/// system's CA certificates plus `network.extraCaCerts` (how tests and
/// private deployments vouch for their own servers).
#[derive(Debug, Clone)]
pub struct UpstreamTrust {
    config: Arc<ClientConfig>,
}

/// The system's CA certificates, read once per process (reading and parsing
/// the bundle costs milliseconds; every sandbox uses the same one).
struct SystemRoots {
    roots: RootCertStore,
    /// Why there are none, when there are none.
    problem: String,
}

fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        // Certificates rustls cannot use (odd encodings, old algorithms) are
        // skipped, as every TLS client skips them.
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        let problem = match found.errors.first() {
            Some(e) => e.to_string(),
            None if ignored > 0 => format!("none of the {ignored} certificates found could be used"),
            None => "none found".to_string(),
        };
        SystemRoots { roots, problem: if added == 0 { problem } else { String::new() } }
    })
}

impl UpstreamTrust {
    /// The system roots plus `extra_pem`, one or more PEM certificates
    /// (`network.extraCaCerts`). Fails when `extra_pem` is given but holds no
    /// usable certificate, and when there is nothing to trust at all.
    pub fn new(extra_pem: Option<&str>) -> Result<UpstreamTrust, TlsError> {
        let system = system_roots();
        let mut roots = system.roots.clone();
        match extra_pem {
            Some(pem) => add_pem(&mut roots, pem)?,
            None if roots.is_empty() => return Err(TlsError::NoSystemRoots { detail: system.problem.clone() }),
            None => {}
        }
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(TlsError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(UpstreamTrust { config: Arc::new(config) })
    }

    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// Checks `network.extraCaCerts` alone: one or more PEM certificates that
/// can be trusted, as [`UpstreamTrust::new`] requires.
pub fn check_extra_pem(pem: &str) -> Result<(), TlsError> {
    add_pem(&mut RootCertStore::empty(), pem)
}

fn add_pem(roots: &mut RootCertStore, pem: &str) -> Result<(), TlsError> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::BadPem(describe_pem_error(&e)))?;
        count += 1;
        roots.add(cert).map_err(|e| TlsError::BadExtraCert { index: count, reason: describe_cert_error(&e) })?;
    }
    if count == 0 { Err(TlsError::NoExtraCerts) } else { Ok(()) }
}

fn describe_pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(end_marker);
            format!("a \"-----BEGIN {label}-----\" block has no \"-----END {label}-----\" line")
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad section start line \"{}\"", String::from_utf8_lossy(line).chars().take(80).collect::<String>())
        }
        pem::Error::Base64Decode(e) => format!("a certificate's base64 is invalid ({e})"),
        other => other.to_string(),
    }
}

fn describe_cert_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding) => {
            "it is not a valid X.509 certificate".to_string()
        }
        rustls::Error::InvalidCertificate(e) => e.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_ca_certs_must_be_certificates() {
        let message = |pem: &str| UpstreamTrust::new(Some(pem)).unwrap_err().to_string();
        for none in ["", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"] {
            assert!(message(none).starts_with("network.extraCaCerts holds no certificate"), "{none:?}");
        }
        let truncated = message("-----BEGIN CERTIFICATE-----\nAAAA\n");
        assert_eq!(
            truncated,
            "network.extraCaCerts is not valid PEM: \
             a \"-----BEGIN CERTIFICATE-----\" block has no \"-----END CERTIFICATE-----\" line"
        );
        let bad_base64 = message("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        assert!(bad_base64.starts_with("network.extraCaCerts is not valid PEM: a certificate's base64 is invalid"));
        // Valid PEM, but the second block is not a certificate.
        let ca = SandboxCa::generate().unwrap();
        let two = format!("{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ca.cert_pem());
        assert_eq!(
            message(&two),
            "network.extraCaCerts certificate #2 cannot be used as a CA certificate: it is not a valid X.509 certificate"
        );
        assert!(UpstreamTrust::new(Some(&ca.cert_pem())).is_ok());
    }

    #[test]
    fn the_ca_certificate_is_pem_and_leaves_are_cached() {
        let ca = SandboxCa::generate().unwrap();
        let pem = ca.cert_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(CertificateDer::pem_slice_iter(pem.as_bytes()).count(), 1);
        assert!(!format!("{ca:?}").contains("key"));
        let host = Host::parse("api.example.com").unwrap();
        let first = ca.server_config(&host).unwrap();
        assert!(Arc::ptr_eq(&first, &ca.server_config(&host).unwrap()));
        assert_eq!(first.alpn_protocols, [b"http/1.1".to_vec()]);
        let other = ca.server_config(&Host::parse("127.0.0.1").unwrap()).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
    }
}

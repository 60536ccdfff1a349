//! `--web.config.file`: TLS and basic authentication, in the file format of Prometheus'
//! exporter-toolkit that upstream reads (`tls_server_config`, `http_server_config`,
//! `basic_auth_users`).
//!
//! Like upstream, the file is checked whole at start-up and a server with a bad file does
//! not start: unknown keys, a certificate without its key, a client CA without a client
//! authentication policy, a password that is not a bcrypt hash. Like upstream, changes
//! take effect without a restart ([`LiveWebConfig`]): users, certificates and keys rotate
//! in place; unlike upstream, a changed file that no longer loads is reported and the last
//! good configuration kept. Client certificates are always verified against the client CA:
//! the two policies that accept unverified certificates (`RequestClientCert`,
//! `RequireAnyClientCert`) are refused, since such a certificate proves nothing.
//!
//! The keys of exporter-toolkit 0.16 (upstream 1.11) are read: the certificate, key and
//! client CA inline (`cert`, `key`, `client_ca`; the `_file` key wins when both are given,
//! as there), `client_allowed_sans`, `rate_limit`. File names are relative to the directory
//! of the web config file, as exporter-toolkit joins them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::live_file::{LiveFile, Reloadable};
use crate::passwords::BcryptUsers;

/// The file as written; every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: TlsFile,
    #[serde(default)]
    http_server_config: HttpFile,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    rate_limit: RateLimitFile,
}

/// `rate_limit` (exporter-toolkit 0.11+): a token bucket of `burst` requests refilled one
/// per `interval`; an interval of 0 (the default) means no limit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    #[serde(default)]
    burst: u32,
    #[serde(default)]
    interval: Option<String>,
}

/// The rate limit of every request (before authentication, as upstream): a token bucket
/// that starts full, holds `burst` tokens and gains one per `interval`, as Go's
/// `rate.NewLimiter(rate.Every(interval), burst)`. A burst of 0 refuses everything, as
/// there.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(burst: u32, interval: Duration) -> Self {
        let burst = f64::from(burst);
        RateLimiter { burst, per_second: 1.0 / interval.as_secs_f64(), bucket: Mutex::new((burst, Instant::now())) }
    }

    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    /// The certificate chain inline, PEM (`cert_file` wins when both are given).
    #[serde(default)]
    cert: String,
    /// The key inline, PEM (`key_file` wins when both are given).
    #[serde(default)]
    key: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    /// The client CA inline, PEM (`client_ca_file` wins when both are given).
    #[serde(default)]
    client_ca: String,
    /// A verified client certificate must name one of these exactly among its DNS names,
    /// e-mail addresses, URIs and IP addresses.
    #[serde(default)]
    client_allowed_sans: Vec<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    curve_preferences: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted; this server speaks HTTP/1.1 (clients negotiate it through ALPN).
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The headers the file may add to every answer, with the values allowed (none listed:
/// any), as exporter-toolkit allows them.
const CONFIGURABLE_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// What the HTTP listeners serve with: TLS (when the file names a certificate), and the
/// access rules every request passes.
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    pub access: Arc<Access>,
    /// `rate_limit`; taken at start-up only, as upstream creates its limiter once.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// The files it was read from: the file itself and those it names.
    files: Vec<PathBuf>,
}

impl WebConfig {
    /// No file: plain HTTP, no authentication.
    pub fn none() -> Self {
        WebConfig { tls: None, access: Arc::new(Access::default()), rate_limit: None, files: Vec::new() }
    }

    /// Reads and checks `path` (empty: [`WebConfig::none`]). The error is the reason the
    /// server must not start.
    pub fn load(path: &str) -> Result<Self, String> {
        if path.is_empty() {
            return Ok(Self::none());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        let mut config = Self::parse_in(&text, dir).map_err(|e| format!("{path}: {e}"))?;
        config.files.insert(0, PathBuf::from(path));
        Ok(config)
    }

    /// Checks the file's text; relative paths in it are taken from the working directory.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_in(text, Path::new(""))
    }

    /// Checks the file's text; relative paths in it are taken from `dir`.
    fn parse_in(text: &str, dir: &Path) -> Result<Self, String> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| e.to_string())?
        };
        let t = &file.tls_server_config;
        let tls = tls_config(t, dir)?;
        let access = Access::new(file.basic_auth_users, &file.http_server_config.headers)?;
        let files = [&t.cert_file, &t.key_file, &t.client_ca_file]
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| dir.join(f))
            .collect::<Vec<_>>();
        let interval = match file.rate_limit.interval.as_deref() {
            Some(text) => crate::config::parse_go_duration(text).map_err(|e| format!("rate_limit: interval: {e}"))?,
            None => Duration::ZERO,
        };
        let rate_limit = (!interval.is_zero()).then(|| Arc::new(RateLimiter::new(file.rate_limit.burst, interval)));
        Ok(WebConfig { tls: tls.map(Arc::new), access: Arc::new(access), rate_limit, files })
    }
}

/// `--web.config.file` as served: read again when the file or a certificate, key or CA
/// file it names changes (see [`LiveFile`]). Upstream re-reads it for every request. TLS
/// cannot be switched on or off without a restart (the listeners are made at start-up),
/// and a reload never switches basic authentication off: a file truncated while it is
/// rewritten must not open the server for a moment.
pub type LiveWebConfig = LiveFile<WebConfig>;

impl Reloadable for WebConfig {
    const FLAG: &'static str = "--web.config.file";

    fn load(path: &str) -> Result<Self, String> {
        WebConfig::load(path)
    }

    fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn needs_restart(&self, next: &Self) -> Option<&'static str> {
        if next.tls.is_some() != self.tls.is_some() {
            Some("changed whether TLS is on; that needs a restart")
        } else if next.access.users.is_empty() && !self.access.users.is_empty() {
            Some("no longer lists basic_auth_users; switching authentication off needs a restart")
        } else {
            None
        }
    }
}

/// Where a PEM comes from: a file (relative to the web config's directory) or the text
/// inline; the file wins when both are given, as in exporter-toolkit.
enum Pem<'a> {
    File(PathBuf),
    Inline(&'a str),
}

impl<'a> Pem<'a> {
    fn of(file: &str, inline: &'a str, dir: &Path) -> Option<Pem<'a>> {
        match (file.is_empty(), inline.is_empty()) {
            (false, _) => Some(Pem::File(dir.join(file))),
            (true, false) => Some(Pem::Inline(inline)),
            (true, true) => None,
        }
    }

    /// How errors name it: the file, or the inline key.
    fn name(&self, key: &str) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => format!("inline {key}"),
        }
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs = match self {
            Pem::File(path) => CertificateDer::pem_file_iter(path).and_then(|c| c.collect::<Result<Vec<_>, _>>()),
            Pem::Inline(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect::<Result<Vec<_>, _>>(),
        };
        let certs = certs.map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no certificate".into());
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
        match self {
            Pem::File(path) => PrivateKeyDer::from_pem_file(path),
            Pem::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
        }
        .map_err(|e| e.to_string())
    }
}

fn tls_config(t: &TlsFile, dir: &Path) -> Result<Option<ServerConfig>, String> {
    let cert = Pem::of(&t.cert_file, &t.cert, dir);
    let key = Pem::of(&t.key_file, &t.key, dir);
    let client_ca = Pem::of(&t.client_ca_file, &t.client_ca, dir);
    if cert.is_none() && key.is_none() && client_ca.is_none() && t.client_auth_type.is_empty() {
        return Ok(None);
    }
    let cert = cert.ok_or("missing one of cert or cert_file")?;
    let key = key.ok_or("missing one of key or key_file")?;
    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let wanted = t.cipher_suites.iter().map(|name| tls12_suite(&provider, name)).collect::<Result<Vec<_>, _>>()?;
        // TLS 1.3 suites are not configurable (as in Go); the listed TLS 1.2 ones follow.
        provider.cipher_suites.retain(|s| s.tls13().is_some());
        provider.cipher_suites.extend(wanted);
    }
    if !t.curve_preferences.is_empty() {
        provider.kx_groups = t.curve_preferences.iter().map(|c| kx_group(c)).collect::<Result<_, _>>()?;
    }
    let provider = Arc::new(provider);
    let versions = protocol_versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match (client_verification(t, client_ca.is_some())?, client_ca) {
        (Some(required), Some(ca)) => {
            let roots = read_roots(&ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if required { verifier } else { verifier.allow_unauthenticated() };
            let verifier = verifier.build().map_err(|e| format!("{}: {e}", ca.name("client_ca")))?;
            if t.client_allowed_sans.is_empty() {
                builder.with_client_cert_verifier(verifier)
            } else {
                let allowed = t.client_allowed_sans.clone();
                builder.with_client_cert_verifier(Arc::new(AllowedSans { inner: verifier, allowed }))
            }
        }
        _ => builder.with_no_client_auth(),
    };
    let load_error = |pem: &Pem, what: &str, e: String| format!("failed to load X509KeyPair: {}: {e}", pem.name(what));
    let certs = cert.certificates().map_err(|e| load_error(&cert, "cert", e))?;
    let private_key = key.private_key().map_err(|e| load_error(&key, "key", e))?;
    let mut config =
        builder.with_single_cert(certs, private_key).map_err(|e| format!("failed to load X509KeyPair: {e}"))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(false);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// `None`: no client certificate asked for; `Some(required)`: verified against the CA.
fn client_verification(t: &TlsFile, has_ca: bool) -> Result<Option<bool>, String> {
    let policy = match t.client_auth_type.as_str() {
        "" | "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(false),
        "RequireAndVerifyClientCert" => Some(true),
        unverified @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(format!(
                "client_auth_type {unverified} accepts certificates it does not verify and is not supported; \
                 use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
            ))
        }
        other => return Err(format!("invalid ClientAuth: {other}")),
    };
    match (policy, has_ca) {
        (None, true) => Err("client CA's have been configured without a Client Auth Policy".into()),
        (Some(_), false) => Err(format!("client_auth_type {} needs client_ca_file or client_ca", t.client_auth_type)),
        _ => Ok(policy),
    }
}

/// `client_allowed_sans`: the CA's verdict first, then the leaf certificate must name one of
/// the allowed values exactly (exporter-toolkit compares Go's strings of its DNS names,
/// e-mail addresses, URIs and IP addresses, case-sensitively, no wildcards). A connection
/// without a certificate is refused: there is nothing to compare (upstream's check fails
/// such a handshake too).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let names = crate::x509_names::subject_alt_names(end_entity.as_ref());
        if names.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(format!(
                "could not find allowed SANs in client cert, found: {:?}",
                self.allowed
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn read_roots(ca: &Pem) -> Result<RootCertStore, String> {
    let name = ca.name("client_ca");
    let mut roots = RootCertStore::empty();
    for cert in ca.certificates().map_err(|_| format!("client CA {name}: no readable certificate"))? {
        roots.add(cert).map_err(|e| format!("client CA {name}: {e}"))?;
    }
    Ok(roots)
}

/// Go's version names; below TLS 1.2 nothing is offered (rustls has no TLS 1.0 or 1.1).
fn protocol_versions(min: Option<&str>, max: Option<&str>) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let rank = |name: &str| match name {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(format!("unknown TLS version: {other}")),
    };
    let min = min.map(rank).transpose()?.unwrap_or(12);
    let max = max.map(rank).transpose()?.unwrap_or(13);
    let versions: Vec<&'static SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, version)| version)
            .collect();
    if versions.is_empty() {
        return Err("no supported TLS version between min_version and max_version (TLS 1.2 and 1.3 are)".into());
    }
    Ok(versions)
}

/// A TLS 1.2 suite by Go's name (Go's ChaCha20 names may leave out `_SHA256`).
fn tls12_suite(provider: &CryptoProvider, name: &str) -> Result<rustls::SupportedCipherSuite, String> {
    provider
        .cipher_suites
        .iter()
        .find(|s| {
            let ours = format!("{:?}", s.suite());
            s.tls13().is_none() && (ours == name || ours == format!("{name}_SHA256"))
        })
        .copied()
        .ok_or_else(|| format!("cipher suite {name} is not supported"))
}

fn kx_group(name: &str) -> Result<&'static dyn rustls::crypto::SupportedKxGroup, String> {
    use rustls::crypto::ring::kx_group;
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        other => Err(format!("curve {other} is not supported")),
    }
}

/// Basic authentication and the configured answer headers: what every request passes.
#[derive(Default)]
pub struct Access {
    /// `basic_auth_users`; empty: no authentication (unless `--web.access-config.file`
    /// asks for it).
    users: Arc<BcryptUsers>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Access {
    fn new(users: BTreeMap<String, String>, headers: &BTreeMap<String, String>) -> Result<Self, String> {
        let users = BcryptUsers::new("basic_auth_users", users)?;
        let mut checked = Vec::new();
        for (name, value) in headers {
            let Some((_, allowed)) = CONFIGURABLE_HEADERS.iter().find(|(h, _)| h.eq_ignore_ascii_case(name)) else {
                return Err(format!("HTTP header {name:?} can not be configured"));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(format!("invalid value for {name}. Expected one of: {allowed:?}, but got: {value:?}"));
            }
            let name = HeaderName::try_from(name.as_str()).map_err(|e| format!("HTTP header {name:?}: {e}"))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| format!("HTTP header {name}: {e}"))?;
            checked.push((name, value));
        }
        Ok(Access { users: Arc::new(users), headers: checked })
    }

    /// `basic_auth_users`: who may do anything, as upstream has it.
    pub fn users(&self) -> &Arc<BcryptUsers> {
        &self.users
    }

    /// Adds the configured headers to an answer.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket starts full, runs dry, refills one token per interval; a burst of 0
    /// refuses everything (Go's `rate.Limiter` does the same); an interval of 0 is no limit.
    #[test]
    fn the_rate_limit_is_a_token_bucket_as_go_has_it() {
        let limiter = RateLimiter::new(2, Duration::from_millis(200));
        assert!(limiter.allow() && limiter.allow());
        assert!(!limiter.allow());
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.allow(), "refilled one token");
        assert!(!limiter.allow());
        assert!(!RateLimiter::new(0, Duration::from_secs(1)).allow());
        let parsed = WebConfig::parse("rate_limit:\n  burst: 5\n  interval: 1m\n").unwrap();
        assert!(parsed.rate_limit.is_some());
        assert!(WebConfig::parse("rate_limit:\n  burst: 5\n").unwrap().rate_limit.is_none());
        assert!(WebConfig::parse("rate_limit:\n  interval: soon\n").is_err());
    }

    #[test]
    fn an_empty_file_serves_plain_http_without_authentication() {
        let c = WebConfig::parse("").expect("valid");
        assert!(c.tls.is_none());
        assert!(c.access.users.is_empty());
        let c = WebConfig::parse("tls_server_config: {}\n").expect("valid");
        assert!(c.tls.is_none());
    }

    /// A file rewritten in place: its intermediate states are not taken at once, and an
    /// empty one (or any without users) never switches authentication off.
    #[test]
    fn a_file_rewritten_in_place_never_switches_authentication_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let users = |names: &[&str]| -> String {
            let hash = bcrypt::hash("pw", 4).unwrap();
            let lines: String = names.iter().map(|n| format!("  {n}: {hash}\n")).collect();
            format!("basic_auth_users:\n{lines}")
        };
        std::fs::write(&path, users(&["alice"])).unwrap();
        let file = path.display().to_string();
        let live = LiveWebConfig::new(&file, WebConfig::load(&file).unwrap());
        let names = |live: &LiveWebConfig| live.current().access.users.names().map(str::to_string).collect::<Vec<_>>();
        let after_a_look = |live: &LiveWebConfig| {
            std::thread::sleep(crate::live_file::RECHECK + Duration::from_millis(100));
            names(live)
        };

        // Truncated, as a rewrite in place begins: still alice, at every look.
        std::fs::write(&path, "").unwrap();
        assert_eq!(after_a_look(&live), ["alice"], "a change is not taken at the first look");
        assert_eq!(after_a_look(&live), ["alice"], "no users: authentication stays on");
        assert_eq!(after_a_look(&live), ["alice"]);

        // The new content, once it stays: taken at the second look.
        std::fs::write(&path, users(&["bob", "carol"])).unwrap();
        assert_eq!(after_a_look(&live), ["alice"]);
        assert_eq!(after_a_look(&live), ["bob", "carol"]);
    }

    #[test]
    fn what_upstream_refuses_is_refused() {
        let refused = [
            ("bogus_key: 1", "bogus_key"),
            ("basic_auth_users: {alice: notahash}", "not a bcrypt hash"),
            ("tls_server_config: {cert_file: a.crt}", "missing one of key or key_file"),
            ("tls_server_config: {key_file: a.key}", "missing one of cert or cert_file"),
            ("tls_server_config: {client_ca: x}", "missing one of cert or cert_file"),
            ("tls_server_config: {client_auth_type: RequireAndVerifyClientCert}", "missing one of cert or cert_file"),
            ("http_server_config: {headers: {X-Foo: bar}}", "can not be configured"),
            ("http_server_config: {headers: {X-Frame-Options: allow}}", "invalid value"),
        ];
        for (text, why) in refused {
            let e = WebConfig::parse(text).err().unwrap_or_else(|| panic!("{text:?} was accepted"));
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn client_authentication_policies() {
        let check = |auth: &str, ca: &str| {
            let t = TlsFile { client_auth_type: auth.into(), ..TlsFile::default() };
            client_verification(&t, !ca.is_empty())
        };
        assert_eq!(check("", ""), Ok(None));
        assert_eq!(check("NoClientCert", ""), Ok(None));
        assert_eq!(check("VerifyClientCertIfGiven", "ca"), Ok(Some(false)));
        assert_eq!(check("RequireAndVerifyClientCert", "ca"), Ok(Some(true)));
        assert!(check("", "ca").unwrap_err().contains("without a Client Auth Policy"));
        assert!(check("RequireAndVerifyClientCert", "").unwrap_err().contains("client_ca_file"));
        assert!(check("RequireAnyClientCert", "ca").unwrap_err().contains("not supported"));
        assert!(check("Bogus", "ca").unwrap_err().contains("invalid ClientAuth"));
    }

    #[test]
    fn tls_versions_follow_go_names() {
        assert_eq!(protocol_versions(None, None).map(|v| v.len()), Ok(2));
        assert_eq!(protocol_versions(Some("TLS13"), None).map(|v| v.len()), Ok(1));
        assert_eq!(protocol_versions(Some("TLS10"), Some("TLS12")).map(|v| v.len()), Ok(1));
        assert!(protocol_versions(Some("TLS99"), None).unwrap_err().contains("unknown TLS version"));
        assert!(protocol_versions(None, Some("TLS11")).is_err());
    }
}

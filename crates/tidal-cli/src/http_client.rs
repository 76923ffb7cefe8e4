//! How the CLI reaches a node's HTTP API.
//!
//! With a client certificates directory (`--client-certs DIR`, or the
//! `./tidal-data/certs` that `tidal up` makes) it speaks HTTPS, trusts only
//! the cluster's CA (`ca.crt`) and shows `client.NAME.crt` (`--client-name`,
//! `root` by default); without one, plain HTTP. `--token-file` adds the
//! admin token as a bearer token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tidal_node::tls;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Where `tidal up` keeps the CA and the operator's certificate, under its
/// default data directory.
pub const DEFAULT_CERTS: &str = "./tidal-data/certs";

/// How the CLI's requests reach a node.
#[derive(Default)]
struct Access {
    tls: Option<TlsConfig>,
    token: Option<String>,
}

static ACCESS: OnceLock<Access> = OnceLock::new();

/// Options every command takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClientOpts {
    /// Directory with the cluster CA's certificate and this client's
    /// (`client.NAME.crt`, `.key`): HTTPS with a client certificate.
    /// Default: ./tidal-data/certs when it exists, else plain HTTP.
    #[arg(long, global = true, env = "TIDAL_CLIENT_CERTS")]
    pub client_certs: Option<PathBuf>,
    /// Which client certificate of the directory to show.
    #[arg(long, global = true, env = "TIDAL_CLIENT_NAME", default_value = "root")]
    pub client_name: String,
    /// File with the admin token, sent as `Authorization: Bearer`.
    #[arg(long, global = true, env = "TIDAL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// The certificates of a PEM file's text.
fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

fn load(dir: &Path, name: &str) -> Result<TlsConfig, String> {
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()));
    let pem_err = |f: &str, e: ureq::Error| format!("{}: {e}", dir.join(f).display());
    let roots = certificates(&read(tls::CA_CERT)?);
    if roots.is_empty() {
        return Err(format!("{}: holds no certificate", dir.join(tls::CA_CERT).display()));
    }
    let (cert_file, key_file) = (tls::client_cert_file(name), tls::client_key_file(name));
    let chain = certificates(&read(&cert_file)?);
    let key = PrivateKey::from_pem(&read(&key_file)?).map_err(|e| pem_err(&key_file, e))?;
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(tls::provider())
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
        .build())
}

/// Set up how every later request goes; the first call wins.
pub fn configure(opts: &ClientOpts) -> Result<(), String> {
    let dir = opts.client_certs.clone().or_else(|| {
        let d = PathBuf::from(DEFAULT_CERTS);
        d.join(tls::CA_CERT).exists().then_some(d)
    });
    configure_dir(dir, opts)
}

/// [`configure`] with the certificates in `dir`, or plain HTTP.
pub fn configure_dir(dir: Option<PathBuf>, opts: &ClientOpts) -> Result<(), String> {
    let tls = match dir {
        Some(d) => Some(load(&d, &opts.client_name).map_err(|e| format!("--client-certs: {e}"))?),
        None => None,
    };
    let token = match &opts.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("--token-file: {}: {e}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        None => None,
    };
    let _ = ACCESS.set(Access { tls, token });
    Ok(())
}

fn access() -> &'static Access {
    ACCESS.get_or_init(Access::default)
}

/// An agent for requests that end within `timeout`; an error status is
/// an answer, not an error.
pub fn agent(timeout: Duration) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false);
    if let Some(t) = &access().tls {
        b = b.tls_config(t.clone());
    }
    b.build().into()
}

/// The URL of `path` on the node at `addr`.
pub fn url(addr: &str, path: &str) -> String {
    let scheme = if access().tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{addr}{path}")
}

/// Add the bearer token, when there is one.
pub fn authorize<B>(req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
    match &access().token {
        Some(t) => req.header("authorization", format!("Bearer {t}")),
        None => req,
    }
}

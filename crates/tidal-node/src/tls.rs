//! TLS on a node's ports, from one certificates directory.
//!
//! The directory a node is started with (`--certs-dir`) holds the cluster
//! CA's certificate (`ca.crt`) and the node's own certificate and key
//! (`node.crt`, `node.key`). A certificate names who holds it in a URI
//! subject alternative name, [`Identity`]: `tidal://CLUSTER/node/ID` for a
//! node, `tidal://CLUSTER/client/NAME` for an operator or a tool.
//!
//! - The peer port takes TLS 1.3 with a certificate from both ends, each
//!   chaining to the CA and naming a node of the same cluster; what the
//!   peer's certificate says travels with every frame it sends
//!   ([`PeerId`]), so that a frame claiming another node is refused.
//! - The HTTP port (and the Redis port with `--client-tls`) takes TLS 1.3
//!   with an optional client certificate; the HTTP layer decides what a
//!   request without one may do.
//!
//! Every new connection uses the configuration loaded last: [`Tls::reload`]
//! (on SIGHUP, or when the files change) swaps it without touching the
//! sessions already established.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tidal_raft::transport::{BoxFuture, BoxStream, Connector, Handshake, PeerId, HANDSHAKE_TIMEOUT};

/// The CA's certificate, in every certificates directory.
pub const CA_CERT: &str = "ca.crt";
/// A node's certificate and key.
pub const NODE_CERT: &str = "node.crt";
pub const NODE_KEY: &str = "node.key";

/// A client's certificate in a certificates directory.
pub fn client_cert_file(name: &str) -> String {
    format!("client.{name}.crt")
}

/// A client's key.
pub fn client_key_file(name: &str) -> String {
    format!("client.{name}.key")
}

/// Who a certificate says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Node { cluster: String, id: u64 },
    Client { cluster: String, name: String },
}

impl Identity {
    /// The URI the certificate carries as a subject alternative name.
    pub fn uri(&self) -> String {
        match self {
            Identity::Node { cluster, id } => format!("tidal://{cluster}/node/{id}"),
            Identity::Client { cluster, name } => format!("tidal://{cluster}/client/{name}"),
        }
    }

    pub fn from_uri(uri: &str) -> Option<Identity> {
        let rest = uri.strip_prefix("tidal://")?;
        let mut parts = rest.splitn(3, '/');
        let (cluster, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
        if cluster.is_empty() || name.is_empty() {
            return None;
        }
        let cluster = cluster.to_string();
        match kind {
            "node" => Some(Identity::Node { cluster, id: name.parse().ok()? }),
            "client" => Some(Identity::Client { cluster, name: name.to_string() }),
            _ => None,
        }
    }

    pub fn cluster(&self) -> &str {
        match self {
            Identity::Node { cluster, .. } | Identity::Client { cluster, .. } => cluster,
        }
    }

    /// The identity a DER certificate names: its first `tidal://` URI.
    pub fn of_cert(der: &[u8]) -> Result<Identity, String> {
        uri_names(der)?.iter().find_map(|u| Identity::from_uri(u)).ok_or_else(|| {
            "the certificate names no tidal identity (a tidal://CLUSTER/node/ID or tidal://CLUSTER/client/NAME \
             subject alternative name)"
                .into()
        })
    }
}

/// The URI subject alternative names of a DER certificate.
fn uri_names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let san = cert.subject_alternative_name().map_err(|e| format!("bad subject alternative names: {e}"))?;
    Ok(san
        .iter()
        .flat_map(|s| s.value.general_names.iter())
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect())
}

/// The cluster a CA certificate made by `tidal certs init` serves: its
/// `tidal://CLUSTER/ca` subject alternative name.
pub fn ca_cluster(der: &[u8]) -> Result<String, String> {
    uri_names(der)?
        .iter()
        .find_map(|u| u.strip_prefix("tidal://")?.strip_suffix("/ca").filter(|c| !c.is_empty() && !c.contains('/')))
        .map(str::to_string)
        .ok_or_else(|| "not a CA made by `tidal certs init` (no tidal://CLUSTER/ca name)".into())
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Node { id, .. } => write!(f, "node {id}"),
            Identity::Client { name, .. } => write!(f, "client {name}"),
        }
    }
}

/// Why a certificates directory cannot be used; said at startup.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The crypto every configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: reason.to_string() }
}

/// Every certificate in a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| file_error(path, format!("not a PEM private key: {e}")))
}

/// The CA certificates of a directory as a trust store.
pub fn roots(certs: &[CertificateDer<'static>], path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c.clone()).map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The server name to check a peer's certificate against: the host part
/// of `host:port` (an IP address or a DNS name).
pub fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: not a host name: {e}")))
}

/// The configurations built from one reading of the directory.
struct Configs {
    /// The peer port: a node's certificate required.
    peer_server: Arc<ServerConfig>,
    /// Dialing peers, with this node's certificate.
    peer_client: Arc<ClientConfig>,
    /// The HTTP and Redis ports: a client certificate optional.
    open_server: Arc<ServerConfig>,
    /// What the files held, to tell whether they changed.
    stamp: Vec<u8>,
}

/// A node's TLS material and the configurations built from it.
pub struct Tls {
    dir: PathBuf,
    identity: Identity,
    current: RwLock<Arc<Configs>>,
    /// Peers refused: a failed handshake, or a certificate that is not a
    /// node's of this cluster.
    refused_peers: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("dir", &self.dir).field("identity", &self.identity).finish()
    }
}

fn read_stamp(dir: &Path) -> Vec<u8> {
    let mut stamp = Vec::new();
    for f in [CA_CERT, NODE_CERT, NODE_KEY] {
        stamp.extend(std::fs::read(dir.join(f)).unwrap_or_default());
        stamp.push(0);
    }
    stamp
}

fn tls13<T>(
    b: rustls::ConfigBuilder<T, rustls::WantsVersions>,
) -> Result<rustls::ConfigBuilder<T, rustls::WantsVerifier>, TlsError>
where
    T: rustls::ConfigSide,
{
    b.with_protocol_versions(&[&rustls::version::TLS13]).map_err(|e| TlsError::Invalid(e.to_string()))
}

/// Read `dir` and build every configuration, checking that the node's
/// certificate names a node, chains to the CA, is valid now and matches
/// its key.
fn build(dir: &Path) -> Result<(Identity, Configs), TlsError> {
    let stamp = read_stamp(dir);
    let ca_path = dir.join(CA_CERT);
    let cert_path = dir.join(NODE_CERT);
    let ca = read_certs(&ca_path)?;
    let chain = read_certs(&cert_path)?;
    let key = read_key(&dir.join(NODE_KEY))?;
    let identity = Identity::of_cert(&chain[0]).map_err(|e| file_error(&cert_path, e))?;
    if !matches!(identity, Identity::Node { .. }) {
        return Err(file_error(&cert_path, format!("is a certificate of {identity}, not of a node")));
    }
    let roots = roots(&ca, &ca_path)?;
    let provider = provider();
    let required = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| file_error(&ca_path, e))?;
    // The node's own certificate must be one its peers accept.
    required.verify_client_cert(&chain[0], &chain[1..], UnixTime::now()).map_err(|e| {
        TlsError::Invalid(format!("{} is not valid under {}: {e}", cert_path.display(), ca_path.display()))
    })?;
    let optional = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| file_error(&ca_path, e))?;
    let mismatch = |e: rustls::Error| {
        TlsError::Invalid(format!("{} and {} do not go together: {e}", cert_path.display(), NODE_KEY))
    };
    let peer_server = tls13(ServerConfig::builder_with_provider(provider.clone()))?
        .with_client_cert_verifier(required)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(mismatch)?;
    let open_server = tls13(ServerConfig::builder_with_provider(provider.clone()))?
        .with_client_cert_verifier(optional)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(mismatch)?;
    let peer_client = tls13(ClientConfig::builder_with_provider(provider))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(mismatch)?;
    let configs = Configs {
        peer_server: Arc::new(peer_server),
        peer_client: Arc::new(peer_client),
        open_server: Arc::new(open_server),
        stamp,
    };
    Ok((identity, configs))
}

impl Tls {
    /// Load `dir`, refusing anything a node could not serve with.
    pub fn load(dir: &Path) -> Result<Arc<Tls>, TlsError> {
        let (identity, configs) = build(dir)?;
        Ok(Arc::new(Tls {
            dir: dir.to_path_buf(),
            identity,
            current: RwLock::new(Arc::new(configs)),
            refused_peers: Default::default(),
        }))
    }

    /// Peers refused so far, on the peer port or when dialing them.
    pub fn refused_peers(&self) -> u64 {
        self.refused_peers.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn refused(&self, e: io::Error) -> io::Error {
        self.refused_peers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        e
    }

    /// Who this node's certificate says it is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cluster(&self) -> &str {
        self.identity.cluster()
    }

    fn configs(&self) -> Arc<Configs> {
        self.current.read().expect("tls lock").clone()
    }

    /// Read the directory again if its files changed; new connections use
    /// what it holds from now on. Returns whether anything changed. A
    /// directory that no longer loads, or names another node, is refused
    /// and the configuration in use stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        if read_stamp(&self.dir) == self.configs().stamp {
            return Ok(false);
        }
        let (identity, configs) = build(&self.dir)?;
        if identity != self.identity {
            return Err(TlsError::Invalid(format!(
                "the new {NODE_CERT} is a certificate of {identity} ({}), this node is {} ({})",
                identity.uri(),
                self.identity,
                self.identity.uri()
            )));
        }
        *self.current.write().expect("tls lock") = Arc::new(configs);
        Ok(true)
    }

    /// Reload on SIGHUP and whenever the files change (looked at every
    /// `every`), until `stop` turns true.
    pub async fn watch(self: Arc<Self>, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            tokio::select! {
                _ = stop.changed() => return,
                _ = hangup => tracing::info!("SIGHUP: reloading certificates"),
                _ = tokio::time::sleep(every) => {}
            }
            match self.reload() {
                Ok(true) => tracing::info!(dir = %self.dir.display(), "certificates reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "certificates not reloaded; the ones loaded before stay in use"),
            }
        }
    }

    /// Check a peer's certificate after a handshake: a node of this cluster.
    fn peer_node(&self, certs: Option<&[CertificateDer<'static>]>) -> io::Result<u64> {
        let cert = certs.and_then(|c| c.first()).ok_or_else(|| denied("no certificate".into()))?;
        match Identity::of_cert(cert).map_err(denied)? {
            Identity::Node { cluster, id } if cluster == self.cluster() => Ok(id),
            Identity::Node { cluster, id } => {
                Err(denied(format!("node {id} of cluster '{cluster}', this is cluster '{}'", self.cluster())))
            }
            other => Err(denied(format!("{other} is not a node"))),
        }
    }

    /// The handshake of the peer port.
    pub fn peer_handshake(self: &Arc<Self>) -> Arc<dyn Handshake> {
        Arc::new(PeerHandshake(self.clone()))
    }

    /// Dials peers through `inner` and speaks TLS over what it opens.
    pub fn connector(self: &Arc<Self>, inner: Arc<dyn Connector>) -> Arc<dyn Connector> {
        Arc::new(TlsConnector { tls: self.clone(), inner })
    }

    /// A TLS handshake on an accepted HTTP or Redis connection: the
    /// client's identity when it showed a certificate of this cluster.
    pub async fn accept_open(&self, stream: BoxStream) -> io::Result<(BoxStream, Option<Identity>)> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.configs().open_server.clone());
        let s = acceptor.accept(stream).await?;
        let identity = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| Identity::of_cert(c).ok())
            .filter(|i| i.cluster() == self.cluster());
        Ok((Box::new(s) as BoxStream, identity))
    }
}

/// A connection that finished its handshake.
pub struct Accepted {
    pub stream: BoxStream,
    pub from: String,
    /// Who the client's certificate says it is, when it showed one.
    pub identity: Option<Identity>,
}

/// Most handshakes under way on one port: four per core. A handshake is
/// CPU work (a signature and a key exchange); with few under way at once,
/// the connections already established keep their share of the cores
/// during a storm of new ones, which wait in the kernel's backlog instead.
fn max_handshakes() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).clamp(4, 64)
}

/// TLS over another acceptor: connections are taken as they come and each
/// one's handshake runs on its own task, so a slow or silent client holds
/// up nobody else.
pub struct TlsAcceptor {
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Accepted>>,
    local: String,
}

impl TlsAcceptor {
    pub fn new(
        inner: Arc<dyn tidal_raft::transport::Acceptor>,
        tls: Arc<Tls>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> io::Result<Arc<TlsAcceptor>> {
        let local = inner.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let permits = Arc::new(tokio::sync::Semaphore::new(max_handshakes()));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (stream, from) = tokio::select! {
                    _ = stop.changed() => return,
                    r = inner.accept() => match r {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept_open(stream)).await {
                        Ok(Ok((stream, identity))) => {
                            let _ = tx.send(Accepted { stream, from, identity }).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%from, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%from, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Arc::new(TlsAcceptor { rx: tokio::sync::Mutex::new(rx), local }))
    }

    /// The next connection through its handshake.
    pub async fn next(&self) -> io::Result<Accepted> {
        self.rx.lock().await.recv().await.ok_or_else(|| io::Error::other("listener stopped"))
    }

    pub fn local_addr(&self) -> String {
        self.local.clone()
    }
}

/// A TLS acceptor as the Redis port takes it (the client's identity is not used there).
pub struct TlsStreams(pub Arc<TlsAcceptor>);

impl tidal_raft::transport::Acceptor for TlsStreams {
    fn accept(&self) -> BoxFuture<io::Result<(BoxStream, String)>> {
        let a = self.0.clone();
        Box::pin(async move {
            let c = a.next().await?;
            Ok((c.stream, c.from))
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.0.local_addr())
    }
}

fn denied(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("peer certificate refused: {reason}"))
}

struct PeerHandshake(Arc<Tls>);

impl Handshake for PeerHandshake {
    fn accept(&self, stream: BoxStream, _from: String) -> BoxFuture<io::Result<(BoxStream, PeerId)>> {
        let tls = self.0.clone();
        Box::pin(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.configs().peer_server.clone());
            let s = acceptor.accept(stream).await.map_err(|e| tls.refused(e))?;
            let id = tls.peer_node(s.get_ref().1.peer_certificates()).map_err(|e| tls.refused(e))?;
            Ok((Box::new(s) as BoxStream, PeerId::Node(id)))
        })
    }
}

struct TlsConnector {
    tls: Arc<Tls>,
    inner: Arc<dyn Connector>,
}

impl Connector for TlsConnector {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        let (tls, inner) = (self.tls.clone(), self.inner.clone());
        Box::pin(async move {
            let name = server_name(&addr)?;
            let stream = inner.connect(addr).await?;
            let connector = tokio_rustls::TlsConnector::from(tls.configs().peer_client.clone());
            let s = connector.connect(name, stream).await.map_err(|e| tls.refused(e))?;
            tls.peer_node(s.get_ref().1.peer_certificates()).map_err(|e| tls.refused(e))?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_their_uri() {
        for id in [
            Identity::Node { cluster: "tidal".into(), id: 7 },
            Identity::Client { cluster: "prod-eu".into(), name: "root".into() },
        ] {
            assert_eq!(Identity::from_uri(&id.uri()), Some(id));
        }
        for bad in ["tidal://c/node/x", "tidal:///node/1", "tidal://c/other/1", "https://c/node/1", "tidal://c/node"] {
            assert_eq!(Identity::from_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_names_come_from_the_host_of_an_address() {
        assert_eq!(server_name("127.0.0.1:7000").unwrap(), ServerName::try_from("127.0.0.1").unwrap());
        assert_eq!(server_name("[::1]:7000").unwrap(), ServerName::try_from("::1").unwrap());
        assert_eq!(server_name("db-3.example:7000").unwrap(), ServerName::try_from("db-3.example").unwrap());
        assert!(server_name("bad name:7000").is_err());
    }
}

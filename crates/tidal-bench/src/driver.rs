//! One client connection to one endpoint, in any of the three protocols.
//!
//! A connection runs a batch of requests (a pipeline of one or more) and
//! returns one outcome per request. An error that leaves the connection in
//! an unknown state (I/O, timeout, protocol) fails the whole batch; the
//! caller drops the connection and reconnects, possibly elsewhere. A server
//! error reply (`-TRYAGAIN ...`, HTTP 503, a gRPC status) fails only its own
//! request.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::spec::{Protocol, Spec};

/// How a run opens its connections: the protocol and the target's tenant,
/// TLS (`rediss://`) and the password of `AUTH`.
#[derive(Clone)]
pub struct Dial {
    pub protocol: Protocol,
    pub tenant: String,
    pub timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
    password: Option<String>,
    readonly: bool,
}

impl Dial {
    /// Reads the CA certificate a `rediss://` target needs.
    pub fn new(spec: &Spec) -> Result<Dial, String> {
        let tls = match &spec.cacert {
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("--cacert {}: {e}", path.display()))?;
                for c in certs {
                    let c = c.map_err(|e| format!("--cacert {}: {e}", path.display()))?;
                    roots.add(c).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
                }
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
            }
            None => None,
        };
        Ok(Dial {
            protocol: spec.target.protocol,
            tenant: spec.tenant.clone(),
            timeout: spec.timeout,
            tls,
            password: spec.password.clone(),
            readonly: spec.readonly,
        })
    }

    /// Connects to `endpoint` (`host:port`) within the timeout.
    pub async fn connect(&self, endpoint: &str) -> Result<Conn, OpError> {
        let connecting = async {
            match self.protocol {
                Protocol::Resp => {
                    RespConn::connect(endpoint, self.tls.as_ref(), self.password.as_deref(), self.readonly)
                        .await
                        .map(Conn::Resp)
                }
                #[cfg(feature = "etcd")]
                Protocol::Etcd => EtcdConn::connect(endpoint, self.timeout).await.map(|c| Conn::Etcd(Box::new(c))),
                #[cfg(not(feature = "etcd"))]
                Protocol::Etcd => Err(OpError::Connect(crate::spec::NO_ETCD.into())),
                Protocol::Http => {
                    HttpConn::connect(endpoint, &self.tenant, self.tls.as_ref(), self.password.as_deref())
                        .await
                        .map(Conn::Http)
                }
            }
        };
        tokio::time::timeout(self.timeout, connecting).await.map_err(|_| OpError::Connect("timed out".into()))?
    }
}

/// One request of a batch.
#[derive(Debug, Clone)]
pub enum Request {
    Get {
        key: String,
    },
    Set {
        key: String,
        value: Bytes,
    },
    /// MULTI, a SET of `value` to each key (of one slot), EXEC (RESP only).
    Tx {
        keys: Vec<String>,
        value: Bytes,
    },
}

/// A successful outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Value(Option<Bytes>),
    Stored,
}

/// Why a request failed, grouped the way reports count errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("i/o: {0}")]
    Io(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server answered with an error; the text is its first word
    /// (`TRYAGAIN`, `CLUSTERDOWN`, `503`, `Unavailable`...).
    #[error("server error: {0}")]
    Server(String),
}

impl OpError {
    /// The label reports group errors by.
    pub fn label(&self) -> String {
        match self {
            OpError::Connect(_) => "connect".into(),
            OpError::Timeout => "timeout".into(),
            OpError::Io(_) => "io".into(),
            OpError::Protocol(_) => "protocol".into(),
            OpError::Server(code) => format!("server:{code}"),
        }
    }

    fn io(e: impl std::fmt::Display) -> OpError {
        OpError::Io(e.to_string())
    }
}

/// A connection in one of the protocols.
pub enum Conn {
    Resp(RespConn),
    #[cfg(feature = "etcd")]
    Etcd(Box<EtcdConn>),
    Http(HttpConn),
}

impl Conn {
    /// Runs a batch; see the module docs for how failures are split.
    pub async fn exec(&mut self, batch: &[Request]) -> Result<Vec<Result<Response, OpError>>, OpError> {
        match self {
            Conn::Resp(c) => c.exec(batch).await,
            #[cfg(feature = "etcd")]
            Conn::Etcd(c) => c.exec(batch).await,
            Conn::Http(c) => c.exec(batch).await,
        }
    }

    /// Whether the server has closed this connection while it sat idle (a
    /// node that drains or stops closes its connections between requests).
    /// Looked at without waiting, before a batch is written: a connection
    /// found closed carried nothing, so the caller reconnects and nothing
    /// failed. Pooled Redis clients make the same check before reusing a
    /// connection.
    pub fn closed_by_server(&mut self) -> bool {
        match self {
            Conn::Resp(c) => c.closed_by_server(),
            #[cfg(feature = "etcd")]
            Conn::Etcd(_) => false,
            Conn::Http(c) => c.sender.is_closed(),
        }
    }

    /// A cheap round trip that proves the endpoint answers.
    pub async fn probe(&mut self) -> Result<(), OpError> {
        let batch = [Request::Get { key: "tidal-bench:probe".into() }];
        match self.exec(&batch).await?.pop() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// TCP to `endpoint` with Nagle off, and TLS over it when `tls` is given
/// (the server's certificate checked against the endpoint's host).
async fn open(endpoint: &str, tls: Option<&tokio_rustls::TlsConnector>) -> Result<Box<dyn Stream>, OpError> {
    let tcp = TcpStream::connect(endpoint).await.map_err(|e| OpError::Connect(e.to_string()))?;
    tcp.set_nodelay(true).map_err(OpError::io)?;
    Ok(match tls {
        Some(tls) => {
            let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| OpError::Connect(format!("{host}: {e}")))?;
            Box::new(tls.connect(name, tcp).await.map_err(|e| OpError::Connect(format!("TLS: {e}")))?)
        }
        None => Box::new(tcp),
    })
}

/// RESP2 over one TCP (or TLS) connection; a batch is written at once (pipelined).
pub struct RespConn {
    stream: Box<dyn Stream>,
    out: Vec<u8>,
    buf: BytesMut,
}

impl RespConn {
    async fn connect(
        endpoint: &str,
        tls: Option<&tokio_rustls::TlsConnector>,
        password: Option<&str>,
        readonly: bool,
    ) -> Result<RespConn, OpError> {
        let stream = open(endpoint, tls).await?;
        let mut c = RespConn { stream, out: Vec::with_capacity(4096), buf: BytesMut::with_capacity(16 * 1024) };
        if let Some(p) = password {
            c.handshake(&[b"AUTH", p.as_bytes()]).await?;
        }
        if readonly {
            c.handshake(&[b"READONLY"]).await?;
        }
        Ok(c)
    }

    /// Between batches nothing is owed to the client, so anything readable
    /// (an end of stream, an error, bytes nobody asked for) means the
    /// connection is no longer usable.
    fn closed_by_server(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut probe = [0u8; 64];
        let mut read = tokio::io::ReadBuf::new(&mut probe);
        std::pin::Pin::new(&mut self.stream).poll_read(&mut cx, &mut read).is_ready()
    }

    /// Send a command of the connection's set-up and expect a status reply.
    async fn handshake(&mut self, args: &[&[u8]]) -> Result<(), OpError> {
        let name = String::from_utf8_lossy(args[0]).into_owned();
        self.out.clear();
        Self::encode(&mut self.out, args);
        self.stream.write_all(&self.out).await.map_err(OpError::io)?;
        loop {
            match redis_protocol::resp2::decode::decode_bytes_mut(&mut self.buf) {
                Ok(Some((redis_protocol::resp2::types::BytesFrame::SimpleString(_), _, _))) => return Ok(()),
                Ok(Some((other, _, _))) => return Err(OpError::Connect(format!("{name}: {other:?}"))),
                Ok(None) => {
                    if self.stream.read_buf(&mut self.buf).await.map_err(OpError::io)? == 0 {
                        return Err(OpError::Connect(format!("{name}: connection closed")));
                    }
                }
                Err(e) => return Err(OpError::Protocol(e.to_string())),
            }
        }
    }

    fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
        let mut n = itoa::Buffer::new();
        out.push(b'*');
        out.extend_from_slice(n.format(args.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        for a in args {
            out.push(b'$');
            out.extend_from_slice(n.format(a.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn exec(&mut self, batch: &[Request]) -> Result<Vec<Result<Response, OpError>>, OpError> {
        self.out.clear();
        for r in batch {
            match r {
                Request::Get { key } => Self::encode(&mut self.out, &[b"GET", key.as_bytes()]),
                Request::Set { key, value } => Self::encode(&mut self.out, &[b"SET", key.as_bytes(), value]),
                Request::Tx { keys, value } => {
                    Self::encode(&mut self.out, &[b"MULTI"]);
                    for key in keys {
                        Self::encode(&mut self.out, &[b"SET", key.as_bytes(), value]);
                    }
                    Self::encode(&mut self.out, &[b"EXEC"]);
                }
            }
        }
        self.stream.write_all(&self.out).await.map_err(OpError::io)?;
        let mut results = Vec::with_capacity(batch.len());
        for req in batch {
            // A transaction's MULTI and queued SETs answer OK and QUEUED
            // (or an error, which EXEC repeats); EXEC's answer is its outcome.
            if let Request::Tx { keys, .. } = req {
                for _ in 0..=keys.len() {
                    self.frame().await?;
                }
            }
            let frame = self.frame().await?;
            results.push(Self::outcome(req, frame)?);
        }
        Ok(results)
    }

    async fn frame(&mut self) -> Result<redis_protocol::resp2::types::BytesFrame, OpError> {
        loop {
            match redis_protocol::resp2::decode::decode_bytes_mut(&mut self.buf) {
                Ok(Some((frame, _, _))) => return Ok(frame),
                Ok(None) => {
                    if self.stream.read_buf(&mut self.buf).await.map_err(OpError::io)? == 0 {
                        return Err(OpError::Io("connection closed by the server".into()));
                    }
                }
                Err(e) => return Err(OpError::Protocol(e.to_string())),
            }
        }
    }

    fn outcome(
        req: &Request,
        frame: redis_protocol::resp2::types::BytesFrame,
    ) -> Result<Result<Response, OpError>, OpError> {
        use redis_protocol::resp2::types::BytesFrame as F;
        Ok(match (req, frame) {
            (_, F::Error(e)) => Err(OpError::Server(e.split_whitespace().next().unwrap_or("ERR").to_string())),
            (Request::Get { .. }, F::BulkString(b)) => Ok(Response::Value(Some(b))),
            (Request::Get { .. }, F::Null) => Ok(Response::Value(None)),
            (Request::Set { .. }, F::SimpleString(s)) if s.as_ref() == b"OK" => Ok(Response::Stored),
            (Request::Tx { keys, .. }, F::Array(replies)) if replies.len() == keys.len() => {
                match replies.into_iter().find(|r| !matches!(r, F::SimpleString(s) if s.as_ref() == b"OK")) {
                    None => Ok(Response::Stored),
                    Some(F::Error(e)) => Err(OpError::Server(e.split_whitespace().next().unwrap_or("ERR").to_string())),
                    Some(other) => return Err(OpError::Protocol(format!("unexpected reply in EXEC {other:?}"))),
                }
            }
            (_, other) => return Err(OpError::Protocol(format!("unexpected reply {other:?}"))),
        })
    }
}

/// etcd v3 over gRPC (one HTTP/2 channel); a batch runs concurrently on it.
#[cfg(feature = "etcd")]
pub struct EtcdConn {
    kv: etcd_client::KvClient,
}

#[cfg(feature = "etcd")]
impl EtcdConn {
    async fn connect(endpoint: &str, timeout: Duration) -> Result<EtcdConn, OpError> {
        let options = etcd_client::ConnectOptions::new().with_connect_timeout(timeout).with_timeout(timeout);
        let client = etcd_client::Client::connect([format!("http://{endpoint}")], Some(options))
            .await
            .map_err(|e| OpError::Connect(e.to_string()))?;
        Ok(EtcdConn { kv: client.kv_client() })
    }

    async fn exec(&mut self, batch: &[Request]) -> Result<Vec<Result<Response, OpError>>, OpError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, r) in batch.iter().enumerate() {
            let mut kv = self.kv.clone();
            let r = r.clone();
            tasks.spawn(async move {
                let out = match r {
                    Request::Get { key } => kv
                        .get(key, None)
                        .await
                        .map(|resp| Response::Value(resp.kvs().first().map(|kv| Bytes::copy_from_slice(kv.value())))),
                    Request::Set { key, value } => kv.put(key, value.to_vec(), None).await.map(|_| Response::Stored),
                    Request::Tx { .. } => return (i, Err(OpError::Protocol("transactions are RESP only".into()))),
                };
                (i, out.map_err(Self::error))
            });
        }
        let mut results: Vec<Option<Result<Response, OpError>>> = vec![None; batch.len()];
        while let Some(done) = tasks.join_next().await {
            let (i, out) = done.map_err(|e| OpError::Protocol(e.to_string()))?;
            if matches!(out, Err(OpError::Io(_))) {
                return Err(out.unwrap_err());
            }
            results[i] = Some(out);
        }
        Ok(results.into_iter().map(|r| r.expect("every request reports once")).collect())
    }

    fn error(e: etcd_client::Error) -> OpError {
        match e {
            etcd_client::Error::GRpcStatus(s) => match format!("{:?}", s.code()).as_str() {
                // The channel lost its connection, or the deadline passed.
                "Unavailable" => OpError::Io(s.message().to_string()),
                "DeadlineExceeded" => OpError::Timeout,
                code => OpError::Server(code.to_string()),
            },
            etcd_client::Error::TransportError(e) => OpError::Io(e.to_string()),
            etcd_client::Error::IoError(e) => OpError::Io(e.to_string()),
            other => OpError::Protocol(other.to_string()),
        }
    }
}

/// tidal's HTTP data API over one HTTP/1.1 keep-alive connection; a batch
/// runs one request after another (HTTP/1.1 has no usable pipelining).
pub struct HttpConn {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
    tenant: String,
    /// `Authorization: Bearer PASSWORD`, when there is a password.
    bearer: Option<String>,
}

impl HttpConn {
    async fn connect(
        endpoint: &str,
        tenant: &str,
        tls: Option<&tokio_rustls::TlsConnector>,
        password: Option<&str>,
    ) -> Result<HttpConn, OpError> {
        let stream = open(endpoint, tls).await?;
        let (sender, conn) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| OpError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bearer = password.map(|p| format!("Bearer {p}"));
        Ok(HttpConn { sender, authority: endpoint.to_string(), tenant: tenant.to_string(), bearer })
    }

    async fn exec(&mut self, batch: &[Request]) -> Result<Vec<Result<Response, OpError>>, OpError> {
        let mut results = Vec::with_capacity(batch.len());
        for r in batch {
            results.push(self.one(r).await?);
        }
        Ok(results)
    }

    async fn one(&mut self, r: &Request) -> Result<Result<Response, OpError>, OpError> {
        let (method, key, body) = match r {
            Request::Get { key } => (hyper::Method::GET, key, Bytes::new()),
            Request::Set { key, value } => (hyper::Method::PUT, key, value.clone()),
            Request::Tx { .. } => return Ok(Err(OpError::Protocol("transactions are RESP only".into()))),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("/v1/kv/{}/{}", self.tenant, key))
            .header(hyper::header::HOST, &self.authority);
        if let Some(b) = &self.bearer {
            req = req.header(hyper::header::AUTHORIZATION, b);
        }
        let req = req.body(Full::new(body)).map_err(|e| OpError::Protocol(e.to_string()))?;
        self.sender.ready().await.map_err(OpError::io)?;
        let resp = self.sender.send_request(req).await.map_err(OpError::io)?;
        let status = resp.status();
        let mut body = resp.into_body().collect().await.map_err(OpError::io)?.aggregate();
        let body = body.copy_to_bytes(body.remaining());
        Ok(match (r, status.as_u16()) {
            (Request::Get { .. }, 200) => Ok(Response::Value(Some(body))),
            // tidal answers 404 both for a missing key and an unknown tenant.
            (Request::Get { .. }, 404) if !body.starts_with(b"{\"error\":\"unknown tenant") => {
                Ok(Response::Value(None))
            }
            (Request::Set { .. }, 200 | 204) => Ok(Response::Stored),
            (_, code) => Err(OpError::Server(code.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Polls until `conn` looks closed, for at most two seconds.
    async fn seen_closed(conn: &mut RespConn) -> bool {
        for _ in 0..200 {
            if conn.closed_by_server() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closed_is_seen_closed_before_use() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut conn = RespConn::connect(&addr, None, None, false).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert!(!conn.closed_by_server(), "an open, quiet connection is usable");
        drop(server);
        assert!(seen_closed(&mut conn).await, "the server's close went unnoticed");
    }

    #[tokio::test]
    async fn bytes_nobody_asked_for_make_a_connection_unusable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut conn = RespConn::connect(&addr, None, None, false).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        server.write_all(b"-ERR max number of clients reached\r\n").await.unwrap();
        assert!(seen_closed(&mut conn).await, "an unasked-for reply left the connection in use");
        drop(server);
    }
}

//! The HTTP server: the data API (`/v1/kv/{tenant}/{key}`) and the admin
//! API (`/livez`, `/readyz`, `/why`, `/health`, `/metrics`, `/api/v1/*`).
//! Replies map to HTTP statuses in one place, [`status_of`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;
use tidal_core::kv::{ReadOp, Reply, WriteOp};
use tidal_raft::transport::{Acceptor, BoxStream};

use crate::config::Security;
use crate::node::Shared;
use crate::tls::{Identity, TlsAcceptor};
use crate::{admin, autoscale_api, drain_api, moves_api, operations_api, scale_api, shrink_api};

type S = State<Arc<Shared>>;

/// Largest body of an admin request by default (`--max-api-body-kb`).
/// They are small JSON documents (the longest, a move of every one of
/// 16384 slots listed one by one, is under 100 KiB); this bound keeps a
/// body, and what parsing it allocates, far below a value's limit.
pub const MAX_API_BODY: usize = 1 << 20;

pub async fn serve(shared: Arc<Shared>, listener: Arc<dyn Acceptor>) {
    let app = router(shared.clone());
    let listener = match shared.config.security.tls.clone() {
        Some(tls) => match TlsAcceptor::new(listener, tls, shared.shutdown.clone()) {
            Ok(a) => HttpListener::Tls(a),
            Err(e) => {
                tracing::error!(error = %e, "http server failed");
                return;
            }
        },
        None => HttpListener::Plain(listener),
    };
    let mut stop = shared.shutdown.clone();
    let server =
        axum::serve(listener, app.into_make_service_with_connect_info::<Remote>()).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
    if let Err(e) = server.await {
        tracing::error!(error = %e, "http server failed");
    }
}

/// Where an HTTP connection comes from, and who its client certificate
/// says it is.
#[derive(Clone, Debug)]
pub struct Remote {
    pub addr: String,
    pub identity: Option<Identity>,
}

/// The node's HTTP acceptor as axum takes it, plain or through TLS: errors
/// are logged and accepting goes on.
enum HttpListener {
    Plain(Arc<dyn Acceptor>),
    Tls(Arc<TlsAcceptor>),
}

impl axum::serve::Listener for HttpListener {
    type Io = BoxStream;
    type Addr = Remote;

    async fn accept(&mut self) -> (BoxStream, Remote) {
        loop {
            let accepted = match self {
                HttpListener::Plain(a) => a.accept().await.map(|(s, addr)| (s, Remote { addr, identity: None })),
                HttpListener::Tls(a) => {
                    a.next().await.map(|c| (c.stream, Remote { addr: c.from, identity: c.identity }))
                }
            };
            match accepted {
                Ok(accepted) => return accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Remote> {
        let addr = match self {
            HttpListener::Plain(a) => a.local_addr()?,
            HttpListener::Tls(a) => a.local_addr(),
        };
        Ok(Remote { addr, identity: None })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpListener>> for Remote {
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpListener>) -> Remote {
        stream.remote_addr().clone()
    }
}

/// What a request must show to be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: probes and metrics, unless `--auth-probes`.
    Nothing,
    /// The data API: the client password, when there is one.
    Password,
    /// Everything else: a client certificate or the admin token, when the
    /// node has either.
    Admin,
}

/// What a request to `path` must show.
pub fn need(path: &str, auth_probes: bool) -> Need {
    match path {
        "/livez" | "/readyz" | "/metrics" if !auth_probes => Need::Nothing,
        "/livez" | "/readyz" | "/metrics" => Need::Admin,
        p if p.starts_with("/v1/kv/") => Need::Password,
        _ => Need::Admin,
    }
}

/// Compare secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request that needs `need` and shows `identity` (a client
/// certificate of this cluster) and `bearer` (an `Authorization: Bearer`
/// token) is served; the refusal says what was missing.
pub fn admit(sec: &Security, need: Need, identity: Option<&Identity>, bearer: Option<&str>) -> Result<(), String> {
    let token_is = |secret: &Option<String>| matches!((secret, bearer), (Some(s), Some(b)) if same_secret(s, b));
    match need {
        Need::Nothing => Ok(()),
        Need::Password => {
            if sec.password.is_none() || identity.is_some() || token_is(&sec.password) || token_is(&sec.admin_token) {
                Ok(())
            } else if bearer.is_some() {
                Err("WRONGPASS invalid username-password pair or user is disabled.".into())
            } else {
                Err("NOAUTH Authentication required: send the password as 'Authorization: Bearer PASSWORD'".into())
            }
        }
        Need::Admin => {
            // An insecure node without a token has nothing to check.
            let guarded = sec.tls.is_some() || sec.admin_token.is_some();
            if !guarded || identity.is_some() || token_is(&sec.admin_token) {
                Ok(())
            } else if bearer.is_some() {
                Err("the bearer token is not this node's admin token".into())
            } else {
                Err("the admin API needs a client certificate (tidal certs client) or the admin token as \
                     'Authorization: Bearer TOKEN'"
                    .into())
            }
        }
    }
}

/// Refuse, with 401, a request that does not show what its path needs.
async fn authenticate(
    State(s): S,
    axum::extract::ConnectInfo(remote): axum::extract::ConnectInfo<Remote>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let need = need(req.uri().path(), s.config.security.auth_probes);
    match admit(&s.config.security, need, remote.identity.as_ref(), bearer) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            let mut r = json_error(StatusCode::UNAUTHORIZED, why);
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// Every route, each with its body limit: a value's for the data API,
/// [`MAX_API_BODY`] for the admin API.
fn router(shared: Arc<Shared>) -> Router {
    let data = Router::new()
        .route("/v1/kv/{tenant}/{*key}", get(kv_get).put(kv_put).delete(kv_delete))
        .layer(DefaultBodyLimit::max(shared.config.max_value_bytes as usize + 1));
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/why", get(why))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/prgs", get(prgs))
        .route("/api/v1/routing", get(routing))
        .route("/api/v1/moves", get(moves_api::list_moves).post(moves_api::start_move))
        .route("/api/v1/moves/{id}", get(moves_api::get_move))
        .route("/api/v1/moves/{id}/cancel", post(moves_api::cancel_move))
        .route("/api/v1/tenants/{tenant}/prgs", post(moves_api::add_prgs))
        .route("/api/v1/prgs/{prg}/leader", post(moves_api::transfer_leader))
        .route("/api/v1/clusters/{cluster}/scale", post(scale_api::scale_cluster))
        .route("/api/v1/clusters/{cluster}/status", get(scale_api::cluster_status))
        .route("/api/v1/tenants/{tenant}/scale", post(scale_api::scale_tenant))
        .route("/api/v1/operations", get(operations_api::list_operations))
        .route("/api/v1/operations/{id}", get(operations_api::get_operation))
        .route("/api/v1/operations/{id}/cancel", post(operations_api::cancel_operation))
        .route("/api/v1/autoscale", get(autoscale_api::show))
        .route("/api/v1/autoscale/policy", put(autoscale_api::put_policy).delete(autoscale_api::delete_policy))
        .route("/api/v1/autoscale/decisions", get(autoscale_api::decisions))
        .route("/api/v1/autoscale/signals", get(autoscale_api::live_signals))
        .route("/api/v1/autoscale/resources", get(autoscale_api::resources))
        .route("/api/v1/indicators", get(autoscale_api::indicators))
        .route("/api/v1/autoscale/forecast", get(autoscale_api::forecast_view))
        .route("/admin/drain", get(drain_api::list).post(drain_api::drain))
        .route("/admin/drain/cancel", post(drain_api::cancel))
        .route("/admin/remove-node", post(drain_api::remove_node))
        .route("/admin/shrink-plan", get(shrink_api::list).post(shrink_api::create))
        .route("/admin/shrink-plan/arm", post(shrink_api::arm))
        .route("/admin/shrink-plan/cancel", post(shrink_api::cancel))
        .route("/admin/shrink-plan/{id}", get(shrink_api::get_plan))
        .route("/api/v1/debug/failpoints", get(moves_api::list_failpoints))
        .route("/api/v1/debug/failpoints/{*name}", put(moves_api::set_failpoint))
        .layer(DefaultBodyLimit::max(shared.config.max_api_body))
        .merge(data)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

fn json_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// The HTTP status for an error reply from the router.
fn status_of(reply: &Reply) -> StatusCode {
    let Reply::Error(e) = reply else { return StatusCode::OK };
    if e.starts_with("ERR unknown tenant") {
        StatusCode::NOT_FOUND
    } else if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") {
        StatusCode::SERVICE_UNAVAILABLE
    } else if e.starts_with("UNCERTAIN") {
        // The write was sent and no answer came back in time.
        StatusCode::GATEWAY_TIMEOUT
    } else if e.starts_with("ERR") || e.starts_with("WRONGTYPE") || e.starts_with("CROSSSLOT") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

fn error_response(s: &Shared, reply: Reply) -> Response {
    if reply.is_server_error() {
        s.server_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let status = status_of(&reply);
    let msg = match reply {
        Reply::Error(e) => e,
        other => format!("unexpected reply {other:?}"),
    };
    json_error(status, msg)
}

/// The 404 for a tenant this node's routing table does not know.
fn unknown_tenant(shared: &Shared, tenant: &str) -> Option<Response> {
    (!shared.cache.get().tenants.contains_key(tenant))
        .then(|| json_error(StatusCode::NOT_FOUND, format!("unknown tenant '{tenant}'")))
}

async fn kv_get(State(s): S, Path((tenant, key)): Path<(String, String)>) -> Response {
    if let Some(r) = unknown_tenant(&s, &tenant) {
        return r;
    }
    s.commands.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match s.read(&tenant, ReadOp::Get { key: key.into_bytes() }).await {
        Reply::Bulk(v) => ([(header::CONTENT_TYPE, "application/octet-stream")], v).into_response(),
        Reply::Nil => json_error(StatusCode::NOT_FOUND, "key not found"),
        other => error_response(&s, other),
    }
}

async fn kv_put(State(s): S, Path((tenant, key)): Path<(String, String)>, body: Bytes) -> Response {
    if let Some(r) = unknown_tenant(&s, &tenant) {
        return r;
    }
    if body.len() as u64 > s.config.max_value_bytes {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("value of {} bytes exceeds max-value-bytes ({})", body.len(), s.config.max_value_bytes),
        );
    }
    s.commands.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match s.write(&tenant, WriteOp::set(key, body.to_vec())).await {
        Reply::Ok => StatusCode::NO_CONTENT.into_response(),
        other => error_response(&s, other),
    }
}

async fn kv_delete(State(s): S, Path((tenant, key)): Path<(String, String)>) -> Response {
    if let Some(r) = unknown_tenant(&s, &tenant) {
        return r;
    }
    s.commands.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match s.write(&tenant, WriteOp::Del { keys: vec![key.into_bytes()] }).await {
        Reply::Int(0) => json_error(StatusCode::NOT_FOUND, "key not found"),
        Reply::Int(_) => StatusCode::NO_CONTENT.into_response(),
        other => error_response(&s, other),
    }
}

async fn readyz(State(s): S) -> Response {
    let r = admin::readiness(&s);
    if r.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", r.reasons.join("; "))).into_response()
    }
}

async fn why(State(s): S) -> String {
    let r = admin::readiness(&s);
    let mut out = String::new();
    if s.config.security.tls.is_none() {
        out.push_str("insecure: started with --insecure, peers are not authenticated and traffic is not encrypted\n");
    }
    out += &if r.ready {
        "ready: control-plane cache fresh, every hosted group has a leader, lag under threshold\n".to_string()
    } else {
        let mut out = String::from("not ready because:\n");
        for reason in r.reasons {
            out.push_str("  - ");
            out.push_str(&reason);
            out.push('\n');
        }
        out
    };
    // The cluster's latest scaling operation, when it is running or did
    // not succeed: what it waits on, or why it stopped.
    let state = s.cache.get();
    if let Some(op) = state.operations.values().next_back() {
        let latest = op.events.last().map_or("", |e| e.text.as_str());
        if !op.phase.is_finished() {
            out.push_str(&format!("operation {} is in {}: {latest}\n", op.id, op.phase.name()));
        } else if let Some(e) = &op.error {
            out.push_str(&format!("operation {} ended {}: {e}\n", op.id, op.phase.name()));
        }
    }
    out
}

async fn health(State(s): S) -> Response {
    Json(admin::health(&s)).into_response()
}

async fn metrics(State(s): S) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], crate::metrics::render(&s))
        .into_response()
}

async fn cluster(State(s): S) -> Response {
    Json(admin::cluster_view(&s)).into_response()
}

async fn nodes(State(s): S) -> Response {
    let reports = s.cp_reports.lock().expect("reports lock").clone();
    Json(admin::node_views(&s.cache.get(), &reports)).into_response()
}

async fn prgs(State(s): S) -> Response {
    Json(admin::group_reports(&s)).into_response()
}

async fn routing(State(s): S) -> Response {
    Json(admin::routing_view(&s)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Identity {
        Identity::Client { cluster: "tidal".into(), name: "root".into() }
    }

    #[test]
    fn paths_need_what_their_kind_needs() {
        assert_eq!(need("/readyz", false), Need::Nothing);
        assert_eq!(need("/metrics", false), Need::Nothing);
        assert_eq!(need("/metrics", true), Need::Admin);
        assert_eq!(need("/v1/kv/default/k", false), Need::Password);
        for p in ["/api/v1/nodes", "/admin/drain", "/why", "/health", "/"] {
            assert_eq!(need(p, false), Need::Admin, "{p}");
        }
    }

    #[test]
    fn an_insecure_node_without_secrets_admits_all_and_one_with_them_does_not() {
        let open = Security::default();
        for n in [Need::Nothing, Need::Password, Need::Admin] {
            assert!(admit(&open, n, None, None).is_ok());
        }
        let guarded = Security { admin_token: Some("tok".into()), password: Some("pw".into()), ..Security::default() };
        assert!(admit(&guarded, Need::Admin, None, None).unwrap_err().contains("client certificate"));
        assert!(admit(&guarded, Need::Admin, None, Some("pw")).is_err(), "the password is not the admin token");
        assert!(admit(&guarded, Need::Admin, None, Some("tok")).is_ok());
        assert!(admit(&guarded, Need::Admin, Some(&operator()), None).is_ok());
        assert!(admit(&guarded, Need::Password, None, None).unwrap_err().starts_with("NOAUTH"));
        assert!(admit(&guarded, Need::Password, None, Some("nope")).unwrap_err().starts_with("WRONGPASS"));
        for (id, bearer) in [(None, Some("pw")), (None, Some("tok")), (Some(operator()), None)] {
            assert!(admit(&guarded, Need::Password, id.as_ref(), bearer).is_ok());
        }
        assert!(admit(&guarded, Need::Nothing, None, None).is_ok());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        for other in ["abd", "ab", "abcd", ""] {
            assert!(!same_secret("abc", other), "{other}");
        }
    }
}

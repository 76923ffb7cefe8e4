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

use crate::node::Shared;
use crate::{admin, autoscale_api, drain_api, moves_api, operations_api, scale_api, shrink_api};

type S = State<Arc<Shared>>;

/// Largest body of an admin request. They are small JSON documents (the
/// longest, a move of every one of 16384 slots listed one by one, is under
/// 100 KiB); this bound keeps a body, and what parsing it allocates, far
/// below a value's limit.
pub const MAX_API_BODY: usize = 1 << 20;

pub async fn serve(shared: Arc<Shared>, listener: Arc<dyn Acceptor>) {
    let app = router(shared.clone());
    let mut stop = shared.shutdown.clone();
    let server = axum::serve(HttpListener(listener), app).with_graceful_shutdown(async move {
        let _ = stop.changed().await;
    });
    if let Err(e) = server.await {
        tracing::error!(error = %e, "http server failed");
    }
}

/// The node's HTTP acceptor as axum takes it: errors are logged and
/// accepting goes on.
struct HttpListener(Arc<dyn Acceptor>);

impl axum::serve::Listener for HttpListener {
    type Io = BoxStream;
    type Addr = String;

    async fn accept(&mut self) -> (BoxStream, String) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<String> {
        self.0.local_addr()
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
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .merge(data)
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
    let mut out = if r.ready {
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

//! `/metrics`: this node's Prometheus exposition, built fresh on each scrape
//! from Raft metrics and the CP cache (nothing is counted on the data path).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tidal_core::autoscale::indicators::Level;
use tidal_core::shrink::PlanState;
use tidal_core::CacheState;
use tidal_raft::storage::WriterStats;
use tokio::time::Instant;

use crate::admin::{group_reports, readiness};
use crate::node::Shared;

type Labels = Vec<(String, String)>;

/// Buckets of the fence-window histogram, in seconds.
const FENCE_BUCKETS_S: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0];

fn family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn gauge(registry: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    registry.register(name, help, g);
}

type Pick = fn(&WriterStats) -> &AtomicU64;

fn pick_commits(s: &WriterStats) -> &AtomicU64 {
    &s.commits
}

fn pick_durable(s: &WriterStats) -> &AtomicU64 {
    &s.durable_commits
}

fn pick_jobs(s: &WriterStats) -> &AtomicU64 {
    &s.jobs
}

fn prg(id: &str) -> Labels {
    vec![("prg".to_string(), id.to_string())]
}

pub fn render(shared: &Shared) -> String {
    let mut r = Registry::default();
    let commit = family(&mut r, "tidal_prg_commit_index", "Quorum-replicated log index (reported by the leader)");
    let applied = family(&mut r, "tidal_prg_applied_index", "Last applied log index on this replica");
    let last_log = family(&mut r, "tidal_prg_last_log_index", "Last log index on this replica");
    let apply_lag = family(&mut r, "tidal_prg_apply_lag", "Entries logged but not applied on this replica");
    let repl_lag = family(&mut r, "tidal_prg_replication_lag", "Entries a follower is behind the leader's log");
    let leader = family(&mut r, "tidal_prg_leader", "Node id of the group's leader (0 = none known)");
    let is_leader = family(&mut r, "tidal_prg_is_leader", "1 if this node leads the group");
    let term = family(&mut r, "tidal_prg_term", "Current Raft term");
    let pps = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    r.register("tidal_prg_proposals_per_second", "Entries applied per second since the previous scrape", pps.clone());

    let me = shared.config.node_id;
    let now = Instant::now();
    let mut rates = shared.rates.lock().expect("rates lock");
    for g in group_reports(shared) {
        let l = prg(&g.id);
        if let Some(c) = g.commit_index {
            commit.get_or_create(&l).set(c as i64);
        }
        applied.get_or_create(&l).set(g.applied_index as i64);
        last_log.get_or_create(&l).set(g.last_log_index as i64);
        apply_lag.get_or_create(&l).set(g.apply_lag as i64);
        leader.get_or_create(&l).set(g.leader.unwrap_or(0) as i64);
        is_leader.get_or_create(&l).set(i64::from(g.leader == Some(me)));
        term.get_or_create(&l).set(g.term as i64);
        for (f, lag) in &g.replication_lag {
            let mut fl = l.clone();
            fl.push(("follower".to_string(), f.to_string()));
            repl_lag.get_or_create(&fl).set(*lag as i64);
        }
        let rate = match rates.insert(g.id.clone(), (now, g.applied_index)) {
            Some((t, a)) if now > t => (g.applied_index.saturating_sub(a)) as f64 / (now - t).as_secs_f64(),
            _ => 0.0,
        };
        pps.get_or_create(&l).set(rate);
    }
    drop(rates);

    let ready = readiness(shared);
    let cache = Family::<Labels, Gauge>::default();
    r.register("tidal_cp_cache_state", "1 for the CP cache's current state", cache.clone());
    for s in [CacheState::Fresh, CacheState::Cached, CacheState::Stale, CacheState::Expired] {
        cache.get_or_create(&vec![("state".to_string(), s.to_string())]).set(i64::from(s == ready.cache));
    }
    gauge(
        &mut r,
        "tidal_cp_cache_age_ms",
        "Milliseconds since the CP cache was last confirmed (-1 = never)",
        ready.cache_age_ms.map(|a| a as i64).unwrap_or(-1),
    );
    gauge(&mut r, "tidal_strict_fallback", "1 while the node is in strict fallback", i64::from(ready.strict_fallback));
    gauge(&mut r, "tidal_node_ready", "1 when /readyz answers 200", i64::from(ready.ready));
    let state = shared.cache.get();
    gauge(&mut r, "tidal_routing_epoch", "Routing epoch of this node's CP cache", state.routing_epoch as i64);
    let applied_epoch = Family::<Labels, Gauge>::default();
    r.register("tidal_node_applied_epoch", "Routing epoch each node has applied", applied_epoch.clone());
    applied_epoch.get_or_create(&vec![("node".to_string(), me.to_string())]).set(state.routing_epoch as i64);
    gauge(&mut r, "tidal_placement_count", "PRG placements in the routing table", state.placements.len() as i64);
    gauge(&mut r, "tidal_node_count", "Nodes registered in the control plane", state.nodes.len() as i64);
    let plans =
        |st: Option<PlanState>| state.shrink_plans.values().filter(|p| st.is_none_or(|st| p.state == st)).count();
    gauge(
        &mut r,
        "tidal_cp_shrink_plans_total",
        "Shrink plans the control plane holds, in any state",
        plans(None) as i64,
    );
    gauge(
        &mut r,
        "tidal_cp_shrink_plans_armed",
        "Shrink plans armed (at most one)",
        plans(Some(PlanState::Armed)) as i64,
    );
    let cancelled = plans(Some(PlanState::Cancelled)) as i64;
    gauge(&mut r, "tidal_cp_shrink_plans_cancelled", "Shrink plans cancelled before they were armed", cancelled);
    let moving = state.moves.values().filter(|m| !m.phase.is_finished()).count();
    gauge(&mut r, "tidal_moves_in_flight", "Slot moves not yet done or rolled back", moving as i64);
    let moved = Counter::<u64, AtomicU64>::default();
    moved.inc_by(state.moves.values().map(|m| m.progress.bytes).sum());
    r.register("tidal_move_bytes", "Bytes of rows copied by slot moves", moved);
    let fences = Histogram::new(FENCE_BUCKETS_S.iter().copied());
    for w in state.moves.values().filter_map(|m| m.fence_window_ms()) {
        fences.observe(w as f64 / 1000.0);
    }
    r.register("tidal_move_fence_seconds", "How long slot moves kept their slots fenced", fences);
    let commands = Counter::<u64, AtomicU64>::default();
    commands.inc_by(shared.commands.load(Ordering::Relaxed));
    r.register("tidal_client_commands", "Client commands served by this node", commands);
    let errors = Counter::<u64, AtomicU64>::default();
    errors.inc_by(shared.server_errors.load(Ordering::Relaxed));
    r.register(
        "tidal_client_server_errors",
        "Client requests answered with an error of the cluster's making (TRYAGAIN, UNCERTAIN, CLUSTERDOWN)",
        errors,
    );
    let reads = Family::<Labels, Counter<u64, AtomicU64>>::default();
    let st = &shared.read_stats;
    for (how, n) in [("lease", &st.lease), ("round", &st.round), ("clock_jump", &st.clock_jump)] {
        reads.get_or_create(&vec![("how".to_string(), how.to_string())]).inc_by(n.load(Ordering::Relaxed));
    }
    r.register(
        "tidal_read_batches",
        "Batches of linearizable reads on the PRGs this node leads, by how leadership was confirmed: lease \
         (against the leader's lease), round (a quorum heartbeat round: --read-policy read-index), clock_jump \
         (a round because the wall clock jumped ahead of the monotonic one, as after the machine slept)",
        reads,
    );
    let follower = Counter::<u64, AtomicU64>::default();
    follower.inc_by(shared.follower_reads.load(Ordering::Relaxed));
    r.register("tidal_follower_reads", "Reads of READONLY connections served by this node's replicas", follower);
    let reaped = Counter::<u64>::default();
    reaped.inc_by(shared.reaped.load(Ordering::Relaxed));
    r.register("tidal_expired_keys_reaped", "Expired keys deleted by the PRGs this node led (active expiry)", reaped);
    let (noted, over) = shared.noted_deadlines();
    gauge(
        &mut r,
        "tidal_expiry_noted_keys",
        "Keys with a TTL whose deadlines this node's PRG replicas hold for active expiry",
        noted as i64,
    );
    gauge(
        &mut r,
        "tidal_expiry_notes_over_cap",
        "PRG replicas here holding more keys with a TTL than they note: their leaders walk every key to expire them",
        over as i64,
    );
    let refused = Counter::<u64, AtomicU64>::default();
    refused.inc_by(shared.refused_clients.load(Ordering::Relaxed));
    r.register("tidal_client_refused", "Client connections refused at maxclients", refused);
    if let Some(tls) = &shared.config.security.tls {
        let peers = Counter::<u64, AtomicU64>::default();
        peers.inc_by(tls.refused_peers());
        r.register(
            "tidal_peer_refused",
            "Peer connections refused for their certificate (or for failing the TLS handshake)",
            peers,
        );
    }
    let forbidden = Counter::<u64, AtomicU64>::default();
    forbidden.inc_by(shared.host.forbidden_frames());
    r.register(
        "tidal_peer_forbidden_frames",
        "Peer frames refused for claiming another node than the peer's certificate",
        forbidden,
    );
    gauge(
        &mut r,
        "tidal_client_connections",
        "Client connections open",
        shared.connections.load(Ordering::Relaxed) as i64,
    );
    r.register_collector(Box::new(crate::load::LatencyCollector(shared.latencies.snapshot())));
    let usage = shared.usage.sample();
    if let Some(ns) = usage.cpu_ns {
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by(ns as f64 / 1e9);
        r.register("tidal_process_cpu_seconds", "CPU time the node's process has used", cpu);
    }
    if let Some(rss) = usage.rss_bytes {
        gauge(&mut r, "tidal_process_resident_memory_bytes", "Resident memory of the node's process", rss as i64);
    }
    if let Some(m) = usage.memory_bytes {
        gauge(&mut r, "tidal_machine_memory_bytes", "Memory of the node's machine", m as i64);
    }
    gauge(&mut r, "tidal_process_cores", "Cores the node's process may use", i64::from(usage.cores));
    let levels = Family::<Labels, Gauge>::default();
    r.register(
        "tidal_indicator_level",
        "Each load indicator's level: 0 ok, 1 warning, 2 critical, -1 unknown (see /api/v1/indicators)",
        levels.clone(),
    );
    for i in shared.indicators.lock().expect("indicators lock").1.iter() {
        let v = match i.level {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => -1,
        };
        levels.get_or_create(&vec![("indicator".to_string(), i.name.clone())]).set(v);
    }

    let storage = shared.host.storage();
    for (name, help, pick) in [
        ("tidal_storage_commits", "Write transactions committed by a storage writer", pick_commits as Pick),
        ("tidal_storage_durable_commits", "Of those, durable (fsync) commits", pick_durable),
        ("tidal_storage_jobs", "Log appends, applies and metadata writes carried by those commits", pick_jobs),
    ] {
        let f = Family::<Labels, Counter<u64, AtomicU64>>::default();
        for (db, stats) in [("log", storage.log().stats()), ("state", storage.state().stats())] {
            f.get_or_create(&vec![("db".to_string(), db.to_string())]).inc_by(pick(stats).load(Ordering::Relaxed));
        }
        r.register(name, help, f);
    }

    let mut out = String::new();
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

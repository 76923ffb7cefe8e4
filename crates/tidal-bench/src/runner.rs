//! Runs a spec: probes the target, spawns the clients, drives the phases,
//! prints a line a second, and reads everything back when verifying.
//!
//! ```text
//!   runner ──(active, mode, stop)──► client 0..N ──► Conn ──► endpoint
//!     ▲                                  │
//!     └──── drains Samples each second ──┘      Verifier (shared oracle)
//! ```
//!
//! Clients live for the whole run; a phase only changes how many of them
//! are active. Each client sends a batch, waits for it (bounded by
//! `--timeout`), records the outcome and goes on. A failed request is
//! counted and not retried; after a connection-level failure, or a batch
//! whose every request failed, the client reconnects to the next endpoint,
//! so load continues on the nodes that are still up and no client ever
//! waits longer than its timeout. A connection that its node closed
//! between requests (a node that drains or stops does) is found closed
//! before the next batch is written, and that batch goes to the next
//! endpoint that takes a connection: nothing was sent, so nothing failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::driver::{Conn, Dial, OpError, Request, Response};
use crate::recorder::{Recorder, Samples};
use crate::report::{live_line, Machine, PhaseReport, StormReport, Summary, TargetInfo, WorkloadInfo};
use crate::scenario::{self, BreakingPoint, Phase};
use crate::spec::Spec;
use crate::verify::{Observed, Verifier};
use crate::workload::{key_name, OpKind, Workload};

/// Errors that stop a run before any load starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("target unreachable: {endpoint}: {error}")]
    Unreachable { endpoint: String, error: OpError },
    #[error("{0}")]
    Setup(String),
}

/// Where progress lines go (stderr for the CLI).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// How many times a busy key is redrawn before a write becomes a read.
const BUSY_REDRAWS: usize = 16;
/// Keys per pipelined batch when reading everything back.
const READBACK_BATCH: usize = 64;
/// Parallel connections for the final read-back.
const READBACK_WORKERS: usize = 8;
/// How long the final read-back keeps retrying keys it cannot read.
const READBACK_BUDGET: Duration = Duration::from_secs(60);

/// State every client shares with the runner.
struct Shared {
    dial: Dial,
    spec: Spec,
    workload: Workload,
    verifier: Option<Arc<Verifier>>,
    value: Bytes,
    /// Clients with an id below this run; the rest idle.
    active: AtomicUsize,
    /// True while preloading: clients write keys in order from `cursor`.
    loading: AtomicBool,
    cursor: AtomicU64,
    stop: AtomicBool,
    /// Batches sent and not yet recorded.
    inflight: AtomicUsize,
    samples: Vec<Mutex<Samples>>,
}

/// Runs `spec` to the end and returns its summary.
pub async fn run(spec: Spec, progress: Progress) -> Result<Summary, RunError> {
    let dial = Dial::new(&spec).map_err(RunError::Setup)?;
    probe(&spec, &dial).await?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let phases = scenario::phases(&spec);
    let peak = scenario::peak_clients(&phases).max(spec.clients);
    let verifier =
        spec.verify.then(|| Arc::new(Verifier::new(crate::spec::fresh_seed() as u32, &spec.key_prefix, spec.keys)));
    let shared = Arc::new(Shared {
        dial: dial.clone(),
        workload: Workload::new(spec.mix, spec.distribution, spec.keys),
        value: filler(spec.value_size, spec.seed),
        verifier: verifier.clone(),
        active: AtomicUsize::new(0),
        loading: AtomicBool::new(false),
        cursor: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
        samples: (0..peak).map(|_| Mutex::default()).collect(),
        spec: spec.clone(),
    });
    let clients: Vec<_> = (0..peak).map(|id| tokio::spawn(client(shared.clone(), id))).collect();
    let checker = match (&verifier, spec.verify_every) {
        (Some(v), Some(every)) => {
            Some(tokio::spawn(periodic_check(shared.clone(), v.clone(), every, progress.clone())))
        }
        _ => None,
    };

    let mut reports = Vec::new();
    let mut breaking_point = None;
    if spec.load {
        shared.loading.store(true, Ordering::Release);
        let load = Phase { name: "load".into(), clients: spec.clients, duration: Duration::MAX };
        reports.push(run_phase(&shared, &load, &progress).await);
        shared.loading.store(false, Ordering::Release);
    }
    let stressing = spec.scenario == crate::spec::ScenarioKind::Stress;
    let mut storm = None;
    for phase in &phases {
        // A storm: the connections open at once as the phase begins, and
        // stay open until it ends.
        // They run on a runtime and a thread of their own, as clients of
        // other machines would: their handshakes do not queue up in front
        // of the measured clients' tasks here.
        let storming = (phase.name == scenario::STORM_PHASE).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (dial, spec, halt) = (dial.clone(), spec.clone(), stop.clone());
            let task = tokio::task::spawn_blocking(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("storm runtime");
                rt.block_on(open_storm(dial, spec, halt))
            });
            (stop, task)
        });
        let report = run_phase(&shared, phase, &progress).await;
        if let Some((stop, task)) = storming {
            stop.store(true, Ordering::Release);
            storm = task.await.ok();
            if let Some(s) = &storm {
                progress(&format!(
                    "storm: {} of {} connections opened, the last after {} ms",
                    s.established, s.connections, s.all_within_ms
                ));
            }
        }
        let broke = stressing
            .then(|| {
                scenario::judge_step(&spec, report.ops, report.errors, Duration::from_micros(report.latency.p99_us))
            })
            .flatten();
        let held = (report.clients, report.ops_per_sec);
        reports.push(report);
        if let Some(reason) = broke {
            let last_good = reports.iter().rev().skip(1).find(|r| r.name.starts_with("stress-"));
            breaking_point = Some(BreakingPoint {
                clients: held.0,
                reason,
                last_good_clients: last_good.map(|r| r.clients),
                last_good_ops_per_sec: last_good.map(|r| r.ops_per_sec),
            });
            break;
        }
    }

    // Stop the clients; each finishes its batch within its timeout.
    shared.active.store(0, Ordering::Release);
    shared.stop.store(true, Ordering::Release);
    let grace = spec.timeout * 2 + Duration::from_secs(1);
    for c in clients {
        let abort = c.abort_handle();
        if tokio::time::timeout(grace, c).await.is_err() {
            abort.abort();
        }
    }
    if let Some(c) = checker {
        c.abort();
    }
    if let Some(last) = reports.last_mut() {
        let mut tail = Recorder::default();
        collect(&shared, &mut tail);
        merge_tail(last, &tail);
    }
    let verify = match &verifier {
        Some(v) => {
            v.settle_unfinished();
            progress(&format!("verify: reading back {} written keys", v.written_keys().count()));
            read_back(&spec, &dial, v).await;
            let recorded = v.history().len();
            progress(&format!("verify: checking the linearizability of {recorded} recorded operations"));
            let checker = v.clone();
            // Pure CPU work: keep it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || checker.check_history()).await;
            Some(v.report())
        }
        None => None,
    };
    Ok(Summary {
        tool: format!("tidal bench {}", env!("CARGO_PKG_VERSION")),
        started_at,
        machine: Machine::detect(),
        target: TargetInfo { protocol: spec.target.protocol, endpoints: spec.target.endpoints.clone() },
        workload: WorkloadInfo::of(&spec),
        phases: reports,
        breaking_point,
        storm,
        verify,
    })
}

/// Adds the errors of requests that finished just after the final phase
/// ended (a stalled request times out after the clock stopped, and must
/// still be reported). Their successes are left out, so that throughput
/// stays operations within the phase's time.
fn merge_tail(last: &mut PhaseReport, tail: &Recorder) {
    last.errors += tail.error_count();
    for (k, n) in tail.errors() {
        *last.errors_by_kind.entry(k.clone()).or_default() += n;
    }
}

/// How long a storm's connection may take to open.
const STORM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Open a storm's connections all at once (spread over the endpoints),
/// each with one request, and hold them until `stop`.
async fn open_storm(mut dial: Dial, spec: Spec, stop: Arc<AtomicBool>) -> StormReport {
    // New clients wait for their handshake longer than a request waits:
    // how long the storm takes is the figure, not which ones gave up.
    dial.timeout = dial.timeout.max(STORM_CONNECT_TIMEOUT);
    let began = Instant::now();
    let n = spec.storm_connections;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (dial, endpoint, stop) =
            (dial.clone(), spec.target.endpoints[i % spec.target.endpoints.len()].clone(), stop.clone());
        tasks.spawn(async move {
            let opened = async {
                let mut c = dial.connect(&endpoint).await?;
                tokio::time::timeout(dial.timeout, c.probe()).await.map_err(|_| OpError::Timeout)??;
                Ok::<_, OpError>(c)
            };
            let r = opened.await;
            let took = began.elapsed();
            if let Ok(conn) = r {
                while !stop.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                drop(conn);
                Ok(took)
            } else {
                Err(r.err().map(|e| e.to_string()).unwrap_or_default())
            }
        });
    }
    let mut report = StormReport { connections: n, ..StormReport::default() };
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(took)) => {
                report.established += 1;
                report.all_within_ms = report.all_within_ms.max(took.as_millis() as u64);
            }
            Ok(Err(kind)) => *report.failed.entry(kind).or_default() += 1,
            Err(_) => *report.failed.entry("panic".into()).or_default() += 1,
        }
    }
    report
}

/// Connects to every endpoint once and runs one request on it.
async fn probe(spec: &Spec, dial: &Dial) -> Result<(), RunError> {
    for endpoint in &spec.target.endpoints {
        let fail = |error| RunError::Unreachable { endpoint: endpoint.clone(), error };
        let mut conn = dial.connect(endpoint).await.map_err(fail)?;
        match tokio::time::timeout(spec.timeout, conn.probe()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e)),
            Err(_) => return Err(fail(OpError::Timeout)),
        }
    }
    Ok(())
}

/// Runs one phase and returns its report. The load phase ends when every
/// key is written; the others when their time is up.
async fn run_phase(shared: &Arc<Shared>, phase: &Phase, progress: &Progress) -> PhaseReport {
    shared.active.store(phase.clients, Ordering::Release);
    let start = Instant::now();
    let mut total = Recorder::default();
    let mut last = start;
    loop {
        let end = start.checked_add(phase.duration);
        let next = last + Duration::from_secs(1);
        let wake = end.map_or(next, |e| e.min(next));
        let loading = shared.loading.load(Ordering::Acquire);
        if loading {
            // Wake early when the last key is written.
            let deadline = tokio::time::Instant::from_std(wake);
            while tokio::time::Instant::now() < deadline && !load_done(shared) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        }
        let now = Instant::now();
        let mut interval = Recorder::default();
        collect(shared, &mut interval);
        if now.duration_since(last) >= Duration::from_millis(500) || interval.ops() > 0 {
            progress(&live_line(
                &phase.name,
                now.duration_since(start),
                phase.clients,
                &interval,
                now.duration_since(last).as_secs_f64(),
            ));
        }
        interval.drain_into(&mut total);
        last = now;
        let finished = if loading { load_done(shared) } else { end.is_some_and(|e| now >= e) };
        if finished {
            break;
        }
    }
    if shared.loading.load(Ordering::Acquire) {
        // Idle the clients, then count the load's last writes.
        shared.active.store(0, Ordering::Release);
        wait_idle(shared).await;
        collect(shared, &mut total);
    }
    PhaseReport::new(&phase.name, phase.clients, start.elapsed(), &total)
}

/// True once the load cursor passed the last key and no writes remain.
fn load_done(shared: &Shared) -> bool {
    shared.cursor.load(Ordering::Acquire) >= shared.spec.keys && shared.inflight.load(Ordering::Acquire) == 0
}

/// Waits until no batch is in flight (bounded by twice the timeout).
async fn wait_idle(shared: &Shared) {
    let deadline = Instant::now() + shared.spec.timeout * 2;
    while Instant::now() < deadline && shared.inflight.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn collect(shared: &Shared, into: &mut Recorder) {
    for s in &shared.samples {
        s.lock().unwrap().drain_into(into);
    }
}

/// A value of `size` bytes of printable filler, the same for every write.
fn filler(size: usize, seed: u64) -> Bytes {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..size).map(|_| rng.random_range(b'a'..=b'z')).collect::<Vec<u8>>().into()
}

/// What a client planned for one request of its batch.
enum Planned {
    Read { key: u64, floor: u64 },
    Write { key: u64, version: u64 },
}

async fn client(shared: Arc<Shared>, id: usize) {
    let spec = &shared.spec;
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let endpoints = &spec.target.endpoints;
    let mut endpoint = id % endpoints.len();
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(50);
    let mut next_send = Instant::now();
    // Open-loop clients start spread over one gap, not all at once.
    let mut staggered = false;
    let mut plans = Vec::with_capacity(spec.pipeline);
    let mut batch = Vec::with_capacity(spec.pipeline);
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let active = shared.active.load(Ordering::Acquire);
        if id >= active {
            next_send = Instant::now();
            staggered = false;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let Some(c) = conn.as_mut() else {
            match shared.dial.connect(&endpoints[endpoint]).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    shared.samples[id].lock().unwrap().error(e.label());
                    endpoint = (endpoint + 1) % endpoints.len();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
            continue;
        };
        plans.clear();
        batch.clear();
        plan_batch(&shared, &mut rng, &mut plans, &mut batch);
        if batch.is_empty() {
            // The load is complete; wait for the runner to move on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        // Open loop: each request has an intended send time; latency is
        // measured from it, so a stall is charged to every request it delayed.
        let first_intended = match spec.rate {
            Some(rate) if !shared.loading.load(Ordering::Acquire) => {
                let gap = Duration::from_secs_f64(active as f64 / rate as f64);
                if !staggered {
                    next_send += gap.mul_f64(id as f64 / active as f64);
                    staggered = true;
                }
                let first = next_send;
                next_send += gap * batch.len() as u32;
                let last = first + gap * (batch.len() as u32 - 1);
                tokio::time::sleep_until(tokio::time::Instant::from_std(last)).await;
                Some((first, gap))
            }
            _ => None,
        };
        // Looked at just before sending: a connection its node closed
        // between requests (it drains or stops) carried nothing, so the
        // batch goes to the next endpoint that answers, and nothing failed.
        let reopened =
            if c.closed_by_server() { Some(reopen(&shared.dial, endpoints, &mut endpoint).await) } else { None };
        shared.inflight.fetch_add(1, Ordering::AcqRel);
        let sent = Instant::now();
        let outcome = match reopened {
            Some(Err(e)) => Err(e),
            reopened => {
                if let Some(Ok(fresh)) = reopened {
                    *c = fresh;
                }
                match tokio::time::timeout(spec.timeout, c.exec(&batch)).await {
                    Ok(r) => r,
                    Err(_) => Err(OpError::Timeout),
                }
            }
        };
        let done = Instant::now();
        let broken = outcome.is_err();
        let all_failed = record(&shared, id, &plans, outcome, (sent, done), |i| match first_intended {
            Some((first, gap)) => done.duration_since(first + gap * i as u32),
            None => done.duration_since(sent),
        });
        shared.inflight.fetch_sub(1, Ordering::AcqRel);
        if broken || all_failed {
            // Move on: this node is down, or up but not serving (a node
            // that is restarting answers errors until it has caught up).
            conn = None;
            endpoint = (endpoint + 1) % endpoints.len();
        }
        if all_failed {
            // Do not spin when every node refuses at once.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A connection to the first endpoint after `endpoint` that takes one,
/// trying each once; `endpoint` is left at the one tried last.
async fn reopen(dial: &Dial, endpoints: &[String], endpoint: &mut usize) -> Result<Conn, OpError> {
    let mut last = OpError::Connect("no endpoint".into());
    for _ in 0..endpoints.len() {
        *endpoint = (*endpoint + 1) % endpoints.len();
        match dial.connect(&endpoints[*endpoint]).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Fills one batch: in the load phase the next keys in order, otherwise
/// the workload's mix. When verifying, a write claims its key first.
fn plan_batch(shared: &Shared, rng: &mut SmallRng, plans: &mut Vec<Planned>, batch: &mut Vec<Request>) {
    let spec = &shared.spec;
    let verifier = shared.verifier.as_deref();
    let loading = shared.loading.load(Ordering::Acquire);
    for _ in 0..spec.pipeline {
        let (kind, key) = if loading {
            let key = shared.cursor.fetch_add(1, Ordering::AcqRel);
            if key >= spec.keys {
                break;
            }
            (OpKind::Update, key)
        } else {
            (shared.workload.next_kind(rng), shared.workload.next_key(rng))
        };
        // A write's key, version and value; a verified write claims a free
        // key first and becomes a read when none is free.
        let write = match (kind, verifier) {
            (OpKind::Read, _) => None,
            (OpKind::Update, None) => Some((key, 0, shared.value.clone())),
            (OpKind::Update, Some(v)) => std::iter::once(key)
                .chain((0..BUSY_REDRAWS).map(|_| shared.workload.next_key(rng)))
                .find_map(|k| v.begin_write(k).map(|version| (k, version)))
                .map(|(k, version)| (k, version, v.stamp(k, version, spec.value_size).into())),
        };
        match write {
            Some((key, version, value)) if spec.tx > 0 => {
                // Keys sharing the drawn key's name as their hash tag: one slot.
                let tag = key_name(&spec.key_prefix, key);
                let keys = (0..spec.tx).map(|i| format!("{{{tag}}}:{i}")).collect();
                plans.push(Planned::Write { key, version });
                batch.push(Request::Tx { keys, value });
            }
            Some((key, version, value)) => {
                plans.push(Planned::Write { key, version });
                batch.push(Request::Set { key: key_name(&spec.key_prefix, key), value });
            }
            None => {
                plans.push(Planned::Read { key, floor: verifier.map_or(0, |v| v.begin_read(key)) });
                batch.push(Request::Get { key: key_name(&spec.key_prefix, key) });
            }
        }
    }
}

/// Records a batch's outcomes; returns true when every request failed.
fn record(
    shared: &Shared,
    id: usize,
    plans: &[Planned],
    outcome: Result<Vec<Result<Response, OpError>>, OpError>,
    (sent, done): (Instant, Instant),
    latency: impl Fn(usize) -> Duration,
) -> bool {
    let verifier = shared.verifier.as_deref();
    let results: Vec<Result<Response, OpError>> = match outcome {
        Ok(r) => r,
        Err(e) => plans.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut rec = shared.samples[id].lock().unwrap();
    let mut failed = 0;
    for (i, (plan, result)) in plans.iter().zip(results).enumerate() {
        // A read answered like a write is a protocol fault.
        let result = match (plan, result) {
            (Planned::Read { .. }, Ok(other @ Response::Stored)) => {
                Err(OpError::Protocol(format!("unexpected {other:?}")))
            }
            (_, result) => result,
        };
        match (plan, result) {
            (Planned::Read { key, floor }, Ok(value)) => {
                rec.ok(OpKind::Read, latency(i));
                if let (Some(v), Response::Value(value)) = (verifier, value) {
                    let observed = v.observe(*key, value.as_deref());
                    v.history().read(*key, observed, sent, done);
                    v.end_read(*key, *floor, observed);
                }
            }
            (Planned::Write { key, version }, Ok(_)) => {
                rec.ok(OpKind::Update, latency(i));
                if let Some(v) = verifier {
                    v.history().write(*key, *version, sent, Some(done));
                    v.end_write(*key, *version, true);
                }
            }
            (plan, Err(e)) => {
                rec.error(e.label());
                failed += 1;
                if let (Planned::Write { key, version }, Some(v)) = (plan, verifier) {
                    v.history().write(*key, *version, sent, None);
                    v.end_write(*key, *version, false);
                }
            }
        }
    }
    failed == plans.len()
}

/// Every `every`, reads back every written key while the load runs and
/// judges each against what was acknowledged before the read began.
async fn periodic_check(shared: Arc<Shared>, verifier: Arc<Verifier>, every: Duration, progress: Progress) {
    loop {
        tokio::time::sleep(every).await;
        let keys: Vec<u64> = verifier.written_keys().collect();
        let before = verifier.report();
        let (unread, _) = read_keys(&shared.spec, &shared.dial, &verifier, &keys, Instant::now() + every, false).await;
        let after = verifier.report();
        progress(&format!(
            "verify: read back {} keys during the run ({unread} unreadable): {} stale, {} phantom",
            keys.len() - unread,
            after.stale - before.stale,
            after.phantom - before.phantom
        ));
    }
}

/// The final read-back: every written key, retried until the budget ends.
async fn read_back(spec: &Spec, dial: &Dial, verifier: &Arc<Verifier>) {
    let keys: Vec<u64> = verifier.written_keys().collect();
    let deadline = Instant::now() + READBACK_BUDGET;
    let (unread, errors) = read_keys(spec, dial, verifier, &keys, deadline, true).await;
    verifier.unverified(unread as u64, errors);
}

/// Reads `keys` with a few parallel pipelined connections and judges each
/// read (final or in-run). A failed read moves the worker to the next
/// endpoint; in the final read-back the key is retried there. Returns how
/// many keys could not be read, and the errors seen.
async fn read_keys(
    spec: &Spec,
    dial: &Dial,
    verifier: &Arc<Verifier>,
    keys: &[u64],
    deadline: Instant,
    last: bool,
) -> (usize, BTreeMap<String, u64>) {
    let chunks: Vec<Vec<u64>> = keys.chunks(READBACK_BATCH).map(<[u64]>::to_vec).collect();
    let queue = Arc::new(Mutex::new(chunks));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..READBACK_WORKERS {
        let (queue, verifier, spec, dial) = (queue.clone(), verifier.clone(), spec.clone(), dial.clone());
        workers.spawn(async move {
            let mut unread = 0;
            let mut errors = BTreeMap::<String, u64>::new();
            let endpoints = &spec.target.endpoints;
            let mut endpoint = w % endpoints.len();
            let mut conn: Option<Conn> = None;
            loop {
                let Some(mut chunk) = queue.lock().unwrap().pop() else { return (unread, errors) };
                while !chunk.is_empty() {
                    if Instant::now() >= deadline {
                        unread += chunk.len();
                        break;
                    }
                    if conn.as_mut().is_some_and(Conn::closed_by_server) {
                        conn = None;
                        endpoint = (endpoint + 1) % endpoints.len();
                    }
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match dial.connect(&endpoints[endpoint]).await {
                            Ok(c) => conn.insert(c),
                            Err(e) => {
                                *errors.entry(e.label()).or_default() += 1;
                                endpoint = (endpoint + 1) % endpoints.len();
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        },
                    };
                    let floors: Vec<u64> = chunk.iter().map(|&k| verifier.begin_read(k)).collect();
                    let batch: Vec<Request> =
                        chunk.iter().map(|&k| Request::Get { key: key_name(&spec.key_prefix, k) }).collect();
                    let sent = Instant::now();
                    let results = match tokio::time::timeout(spec.timeout, c.exec(&batch)).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => batch.iter().map(|_| Err(e.clone())).collect(),
                        Err(_) => batch.iter().map(|_| Err(OpError::Timeout)).collect(),
                    };
                    let done = Instant::now();
                    let mut retry = Vec::new();
                    for ((&key, floor), result) in chunk.iter().zip(floors).zip(results) {
                        match result {
                            Ok(Response::Value(value)) => {
                                let observed: Observed = verifier.observe(key, value.as_deref());
                                verifier.history().read(key, observed, sent, done);
                                if last {
                                    verifier.final_check(key, observed);
                                } else {
                                    verifier.end_read(key, floor, observed);
                                }
                            }
                            Ok(other) => {
                                *errors.entry(OpError::Protocol(format!("{other:?}")).label()).or_default() += 1;
                                retry.push(key);
                            }
                            Err(e) => {
                                *errors.entry(e.label()).or_default() += 1;
                                retry.push(key);
                            }
                        }
                    }
                    if !retry.is_empty() {
                        // Try the next endpoint: this one may be down or not serving yet.
                        conn = None;
                        endpoint = (endpoint + 1) % endpoints.len();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    chunk = if last { retry } else { Vec::new() };
                }
            }
        });
    }
    let mut unread = 0;
    let mut errors = BTreeMap::new();
    while let Some(r) = workers.join_next().await {
        let (n, e) = r.unwrap_or_default();
        unread += n;
        for (label, count) in e {
            *errors.entry(label).or_default() += count;
        }
    }
    (unread, errors)
}

//! One simulated run per seed: three nodes, clients writing and reading a
//! few hot keys concurrently (several writers per key), an operator
//! scaling the cluster up, and faults drawn from the seed: partitions
//! (symmetric, one-way, isolating one node, at times the control plane's
//! leader), crashes that lose unsynced writes followed by restarts,
//! latency spikes, a slow disk and wall-clock jumps. Every operation is
//! recorded at simulated instants; after the faults heal, every key is
//! read through every node, the whole history goes through the
//! linearizability checker, and the cluster must settle.
//!
//! ```text
//!   seed ──► Dice ──► fault schedule (driver, between sim steps)
//!        └─► turmoil rng (latencies, host order)
//!   clients ──► (key, call, ret, SET v | GET v) ──► History ──► checker
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use tidal_core::dice::Dice;
use tidal_core::ids::CP_GROUP;
use tidal_core::linearizability::{check_history, Op, DEFAULT_STEP_BUDGET};
use tidal_node::load::NoUsage;
use tidal_node::{Network, Node, RawConfig};

use crate::invariants::Invariants;
use crate::{http, resp, SimAcceptor, SimClock, SimConnector, SimDisk};

/// Voters every PRG has once the cluster has settled.
pub const REPLICAS: usize = 3;

/// How long after every key has read back (and the operator has stopped)
/// the cluster must settle: every node running with a fresh cache at one
/// routing epoch, no move in flight, every PRG with [`REPLICAS`] voters and
/// one leader.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// How long a node goes unheard before the cluster re-creates its replicas
/// elsewhere (`--self-heal-delay-ms`).
pub const SELF_HEAL_DELAY: Duration = Duration::from_secs(8);

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: u64,
    pub clients: usize,
    pub keys: usize,
    /// Whether clients share keys (several writers per key) or each
    /// writes keys of its own (one writer per key).
    pub shared_keys: bool,
    /// Simulated time with faults.
    pub chaos: Duration,
    /// How long after the faults heal every key must read back.
    pub converge: Duration,
    /// Whether an operator scales the cluster up by one node (a standby
    /// that joined) and from 2 PRGs to 4 while the faults go on.
    pub scale: bool,
    /// When the standby starts; `None`: drawn from the seed.
    pub standby_at: Option<Duration>,
    /// Whether, once the scale-up has succeeded, the operator drafts and
    /// arms a shrink plan back to 2 PRGs (and, in a third of the seeds,
    /// cancels it after a moment drawn from the seed).
    pub shrink: bool,
    /// Whether the operator then drains node 3, a control-plane voter, in
    /// half the seeds (its replicas and its vote move to other nodes, and
    /// the operator removes it), and in the other half, once the faults
    /// are over, stops a node holding replicas for good until the cluster
    /// has healed around it, then starts it again (it must find its
    /// replicas gone and delete them).
    pub drain: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            nodes: 3,
            clients: 4,
            keys: 4,
            shared_keys: true,
            chaos: Duration::from_secs(20),
            converge: Duration::from_secs(60),
            scale: true,
            standby_at: None,
            shrink: true,
            drain: true,
        }
    }
}

impl Scenario {
    /// The command that runs `seed` of this scenario again, printing the
    /// history of every key that fails.
    pub fn replay(&self, seed: u64) -> String {
        let mut cmd = format!(
            "cargo run -p tidal-sim --release -- --from {seed} --seeds 1 --chaos-secs {}",
            self.chaos.as_secs()
        );
        if !self.shared_keys {
            cmd.push_str(" --own-keys");
        }
        if !self.scale {
            cmd.push_str(" --no-scale");
        }
        if !self.shrink {
            cmd.push_str(" --no-shrink");
        }
        if !self.drain {
            cmd.push_str(" --no-drain");
        }
        cmd + " --history"
    }
}

/// What one seed did and found.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub sim_time: Duration,
    pub faults: Vec<String>,
    pub ops: u64,
    pub acked_writes: u64,
    pub pending_writes: u64,
    /// Keys whose history is not linearizable, with why.
    pub violations: Vec<String>,
    /// How the scale-up ended, when the scenario runs one.
    pub scale: Option<String>,
    /// How the shrink plan ended, when the scenario runs one: `Completed`,
    /// `RolledBack`, with ` (cancelled)` when the operator cancelled it.
    pub shrink: Option<String>,
    /// How the drain of a control-plane voter ended, when the seed runs
    /// one: `drained, removed`, `drained, not removed: …`, `stopped` (its
    /// operation failed: replicas left), `never started`, or `still
    /// draining`.
    pub drain: Option<String>,
    /// How the self-healing around a stopped node went, when the seed runs
    /// it: `healed` (every PRG back to 3 voters elsewhere and its vote
    /// moved, before the node came back), or why not.
    pub heal: Option<String>,
    /// Whether the scenario ran a scale-up.
    pub scaled: bool,
    /// When the standby node started (simulated time).
    pub standby_after: Duration,
    /// Samples of the invariants (`invariants.rs`) taken on the nodes.
    pub invariant_checks: u64,
    /// Samples of fenced slots, checked unchanged while fenced.
    pub fenced_samples: u64,
    /// Slots whose move ended on some replica (committed or rolled back),
    /// checked to have taken effect once.
    pub slot_moves_ended: u64,
    /// Invariants that did not hold, with when and where.
    pub invariant_violations: Vec<String>,
    /// A hash of the run's faults and history (see `trace_hash`).
    pub trace: u64,
    /// The whole history of each key that is not linearizable, one
    /// operation per line in the order they were called.
    pub failing_histories: Vec<String>,
    /// Keys the checker could not decide.
    pub undecided: u64,
    /// Set when the cluster did not serve every key within the bound.
    pub stuck: Option<String>,
    /// How long the cluster took to settle after the final reads
    /// ([`Invariants::converged`]).
    pub settled_after: Option<Duration>,
    /// Set when it did not settle within [`SETTLE_WITHIN`].
    pub unsettled: Option<String>,
}

impl SeedReport {
    /// Whether the run met every check.
    pub fn passed(&self) -> bool {
        let scale_ended =
            !self.scaled || self.scale.as_deref().is_some_and(|s| s == "succeeded" || s.starts_with("rolled_back"));
        // A shrink runs after a scale-up that succeeded, and must end.
        let shrink_ended = self.scale.as_deref() != Some("succeeded")
            || self.shrink.as_deref().is_none_or(|s| s.starts_with("Completed") || s.starts_with("RolledBack"));
        // A drain that started must end, and a drained node be removed; a
        // lost node must be healed around.
        let drain_ended =
            self.drain.as_deref().is_none_or(|d| d != "still draining" && !d.starts_with("drained, not removed"));
        let healed = self.heal.as_deref().is_none_or(|h| h.starts_with("healed"));
        self.violations.is_empty()
            && self.invariant_violations.is_empty()
            && scale_ended
            && shrink_ended
            && drain_ended
            && healed
            && self.undecided == 0
            && self.stuck.is_none()
            && self.unsettled.is_none()
    }
}

type History = Arc<Mutex<BTreeMap<usize, Vec<Op<u64>>>>>;

/// Simulated nanoseconds since the run began.
fn now() -> u64 {
    turmoil::sim_elapsed().unwrap_or_default().as_nanos() as u64
}

/// Runs `scenario` under `seed` to the end.
pub fn run_seed(seed: u64, scenario: &Scenario) -> SeedReport {
    // openraft's draws (election timeouts) follow the seed too, and
    // blocking work runs in place: every host runs on this thread.
    tidal_raft::runtime::simulate(seed);
    let report = run(seed, scenario);
    tidal_raft::runtime::stop_simulating();
    report
}

/// Runs `seeds` seeds from `first` on `jobs` threads (each seed on one
/// thread, alone: a run is the same whichever thread takes it), calling
/// `each` with every report as it ends; returns the reports in seed order.
pub fn run_seeds(
    first: u64,
    seeds: u64,
    jobs: usize,
    scenario: &Scenario,
    each: impl Fn(&SeedReport) + Sync,
) -> Vec<SeedReport> {
    let next = AtomicU64::new(first);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, seeds.max(1) as usize) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + seeds {
                    return;
                }
                let r = run_seed(seed, scenario);
                let mut reports = reports.lock().unwrap();
                each(&r);
                reports.push(r);
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|r| r.seed);
    reports
}

/// The machine's cores, for [`run_seeds`].
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn run(seed: u64, scenario: &Scenario) -> SeedReport {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(scenario.chaos + scenario.converge + Duration::from_secs(120))
        .tick_duration(Duration::from_millis(1))
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .rng_seed(seed)
        .build();
    // The first nodes, and a standby for the scale-up to grow onto.
    let total = scenario.nodes + u64::from(scenario.scale);
    let names: Vec<String> = (1..=total).map(|i| format!("node{i}")).collect();
    let ips: Vec<IpAddr> = names.iter().map(|n| sim.lookup(n.as_str())).collect();
    let disks: Vec<SimDisk> = names.iter().map(|_| SimDisk::default()).collect();
    let clocks: Vec<Arc<SimClock>> = names.iter().map(|_| Arc::default()).collect();
    let invariants: Arc<Mutex<Invariants>> = Arc::default();
    let first = ips[..scenario.nodes as usize].to_vec();
    let mut dice = Dice::new(seed);
    // The standby comes with the first nodes (and may join before they
    // have formed the cluster), or later.
    let drawn = Duration::from_millis(if dice.below(4) == 0 { 0 } else { dice.below(3000) });
    let standby_after = scenario.standby_at.unwrap_or(drawn);
    for (i, disk) in disks.iter().enumerate() {
        let boot = if (i as u64) < scenario.nodes {
            Boot::Peers(first.clone())
        } else {
            Boot::Join { through: ips[0], after: standby_after }
        };
        let machine = Machine { disk: disk.clone(), clock: clocks[i].clone(), invariants: invariants.clone() };
        host(&mut sim, i as u64 + 1, ips[i], boot, machine);
    }

    let history: History = Arc::default();
    let chaos_over = Arc::new(AtomicBool::new(false));
    let stuck: Arc<Mutex<Option<String>>> = Arc::default();
    let addrs: Vec<String> = first.iter().map(|ip| format!("{ip}:6379")).collect();
    let scale: Arc<Mutex<Option<String>>> = Arc::default();
    let shrink: Arc<Mutex<Option<String>>> = Arc::default();
    let cancel_after = (dice.below(3) == 0).then(|| Duration::from_millis(dice.below(3000)));
    let drains = scenario.drain && dice.below(2) == 0;
    let heals = scenario.drain && !drains;
    let drain: Arc<Mutex<Option<String>>> = Arc::default();
    let heal: Arc<Mutex<Option<String>>> = Arc::default();
    let hands: Arc<Mutex<Hands>> = Arc::default();
    // Set once the faults are over and the last one has healed.
    let calm = Arc::new(AtomicBool::new(false));
    // Set when the operator has stopped, and when every key has read back.
    let operated = Arc::new(AtomicBool::new(!scenario.scale));
    let read_back = Arc::new(AtomicBool::new(false));
    // Set by the driver once the cluster has settled (or failed to): the
    // reader waits for it, so the run lasts until then.
    let settled = Arc::new(AtomicBool::new(false));
    let mut tasks: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    if scenario.scale {
        let https: Vec<String> = first.iter().map(|ip| format!("{ip}:8080")).collect();
        let until = scenario.chaos + scenario.converge;
        let (scale, shrink, operated, shrinks) = (scale.clone(), shrink.clone(), operated.clone(), scenario.shrink);
        let (drain, heal, hands, calm) = (drain.clone(), heal.clone(), hands.clone(), calm.clone());
        tasks.push(Box::pin(async move {
            operate(&https, total, until, scale.clone()).await;
            if shrinks && scale.lock().unwrap().as_deref() == Some("succeeded") {
                shrink_back(&https, until, cancel_after, shrink.clone()).await;
                let ended = shrink.lock().unwrap().as_deref().is_some_and(|s| !s.starts_with("still"));
                if drains && ended {
                    drain_and_remove(&https, 3, until, &hands, drain).await;
                } else if heals && ended && !past(until) {
                    lose_and_heal(&https, seed, &calm, &hands, heal).await;
                }
            }
            operated.store(true, Ordering::SeqCst);
        }));
    }
    for c in 0..scenario.clients {
        let (history, chaos_over, addrs) = (history.clone(), chaos_over.clone(), addrs.clone());
        let mut dice = Dice::new(dice.roll());
        let keys = scenario.keys;
        // Keys of this client's own when keys are not shared.
        let base = if scenario.shared_keys { 0 } else { c * keys };
        tasks.push(Box::pin(async move {
            let mut n = 0u64;
            while !chaos_over.load(Ordering::SeqCst) {
                let key = base + dice.below(keys as u64) as usize;
                let addr = &addrs[dice.below(addrs.len() as u64) as usize];
                let name = format!("key{key}");
                let call = now();
                if dice.below(2) == 0 {
                    n += 1;
                    let value = (c as u64 + 1) << 32 | n;
                    let out = resp::call(addr, &["SET", &name, &value.to_string()], Duration::from_secs(3)).await;
                    // A write refused before it was sent anywhere is left out;
                    // any other failure may have taken effect: pending.
                    if !resp::refused(&out) {
                        let ret = matches!(out, Ok(ref r) if r == "+OK").then(now);
                        history.lock().unwrap().entry(key).or_default().push(Op::write(call, ret, Some(value)));
                    }
                } else if let Ok(r) = resp::call(addr, &["GET", &name], Duration::from_secs(3)).await {
                    if let Some(seen) = resp::value(&r) {
                        let ret = now();
                        history.lock().unwrap().entry(key).or_default().push(Op::read(call, Some(ret), seen));
                    }
                }
                tokio::time::sleep(Duration::from_millis(dice.below(50))).await;
            }
        }));
    }
    {
        // After the faults: every key, through every node, within the bound
        // (from the end of the faults, or from when the operator last
        // started a node again). Not through a node the operator removed;
        // through one it has stopped for now, once it runs again.
        let (history, chaos_over, addrs, stuck) = (history.clone(), chaos_over.clone(), addrs.clone(), stuck.clone());
        let (read_back, settled, hands) = (read_back.clone(), settled.clone(), hands.clone());
        let (keys, bound) =
            (if scenario.shared_keys { scenario.keys } else { scenario.keys * scenario.clients }, scenario.converge);
        tasks.push(Box::pin(async move {
            while !chaos_over.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let faults_over = tokio::time::Instant::now();
            let mut queue: VecDeque<(u64, &String)> = (1..).zip(&addrs).collect();
            'nodes: while let Some((node, addr)) = queue.pop_front() {
                for key in 0..keys {
                    loop {
                        let (gone, down, deadline) = {
                            let h = hands.lock().unwrap();
                            let from = h.started_again.map_or(faults_over, |at| at.max(faults_over));
                            (h.gone.contains(&node), h.down.contains(&node), from + bound)
                        };
                        if gone {
                            continue 'nodes;
                        }
                        if tokio::time::Instant::now() > deadline {
                            *stuck.lock().unwrap() =
                                Some(format!("key{key} unreadable through {addr} {bound:?} after the faults healed"));
                            return;
                        }
                        if down {
                            queue.push_back((node, addr));
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue 'nodes;
                        }
                        let call = now();
                        let out = resp::call(addr, &["GET", &format!("key{key}")], Duration::from_secs(3)).await;
                        if let Some(seen) = out.ok().as_deref().and_then(resp::value) {
                            history.lock().unwrap().entry(key).or_default().push(Op::read(call, Some(now()), seen));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            read_back.store(true, Ordering::SeqCst);
            while !settled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // The clients, the reader and the operator share one host: each host
    // costs every step of the simulation, whatever it does.
    sim.client("clients", async move {
        let running: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
        for task in running {
            task.await?;
        }
        Ok(())
    });

    let mut report = SeedReport { seed, scaled: scenario.scale, ..SeedReport::default() };
    let mut next_fault = Duration::from_secs(3);
    let mut heal_at: Option<(Duration, Heal)> = None;
    let (mut settle_from, mut next_settle_check) = (None, Duration::ZERO);
    loop {
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                report.stuck = Some(format!("simulation failed: {e}"));
                break;
            }
        }
        let t = sim.elapsed();
        invariants.lock().unwrap().sample_due(t);
        {
            // What the operator asked of the machines.
            let mut h = hands.lock().unwrap();
            if let Some(i) = h.stop.take() {
                disks[i].crash();
                sim.crash(names[i].as_str());
                report.faults.push(format!("{:>6.2}s operator: {} lost for good", t.as_secs_f64(), names[i]));
            }
            if let Some(i) = h.start.take() {
                sim.bounce(names[i].as_str());
                report.faults.push(format!("{:>6.2}s operator: {} back", t.as_secs_f64(), names[i]));
            }
        }
        if read_back.load(Ordering::SeqCst) && operated.load(Ordering::SeqCst) && !settled.load(Ordering::SeqCst) {
            // Every fault has healed and every key read back: the cluster
            // must settle within the bound, without the nodes the operator
            // took out of it.
            let since = *settle_from.get_or_insert(t);
            if t >= next_settle_check {
                next_settle_check = t + Duration::from_millis(100);
                let gone = hands.lock().unwrap().gone.clone();
                let running: BTreeSet<u64> = (1..=total).filter(|n| !gone.contains(n)).collect();
                match invariants.lock().unwrap().converged(&running, REPLICAS) {
                    Ok(()) => {
                        report.settled_after = Some(t - since);
                        settled.store(true, Ordering::SeqCst);
                    }
                    Err(why) if t - since > SETTLE_WITHIN => {
                        report.unsettled = Some(format!("not settled {SETTLE_WITHIN:?} after the reads: {why}"));
                        settled.store(true, Ordering::SeqCst);
                    }
                    Err(_) => {}
                }
            }
        }
        if let Some((at, heal)) = &heal_at {
            if t >= *at {
                heal.apply(&mut sim, &names);
                heal_at = None;
                next_fault = t + Duration::from_millis(500 + dice.below(2000));
            }
        } else if t < scenario.chaos && t >= next_fault {
            let cp_leader = invariants.lock().unwrap().leader_of(CP_GROUP).map(|node| node as usize - 1);
            let (what, heal) = inject(&mut sim, &names, &disks, &clocks, cp_leader, &mut dice);
            report.faults.push(format!("{:>6.2}s {what}", t.as_secs_f64()));
            heal_at = Some((t + Duration::from_millis(1000 + dice.below(3000)), heal));
        } else if t >= scenario.chaos && !chaos_over.load(Ordering::SeqCst) {
            chaos_over.store(true, Ordering::SeqCst);
        }
        if t >= scenario.chaos && heal_at.is_none() {
            calm.store(true, Ordering::SeqCst);
        }
    }
    report.sim_time = sim.elapsed();
    report.stuck = report.stuck.or_else(|| stuck.lock().unwrap().clone());
    let history = std::mem::take(&mut *history.lock().unwrap());
    report.scale = scale.lock().unwrap().clone();
    report.shrink = shrink.lock().unwrap().clone();
    report.drain = drain.lock().unwrap().clone();
    report.heal = heal.lock().unwrap().clone();
    report.standby_after = standby_after;
    report.trace = trace_hash(&report, &history);
    {
        let inv = invariants.lock().unwrap();
        report.invariant_checks = inv.checks;
        report.fenced_samples = inv.fenced_samples;
        report.slot_moves_ended = inv.moves_seen() as u64;
        report.invariant_violations = inv.violations.clone();
    }
    for ops in history.values() {
        report.ops += ops.len() as u64;
        for op in ops {
            if matches!(op.action, tidal_core::linearizability::Action::Write(_)) {
                if op.ret.is_some() {
                    report.acked_writes += 1;
                } else {
                    report.pending_writes += 1;
                }
            }
        }
    }
    let kept = history.clone();
    let checked = check_history(history, DEFAULT_STEP_BUDGET);
    for (key, _) in &checked.violations {
        let mut ops = kept[key].clone();
        ops.sort_by_key(|o| o.call);
        report.failing_histories.extend(ops.iter().map(|o| describe(*key, o)));
    }
    report.undecided = checked.unknown.len() as u64;
    report.violations = checked
        .violations
        .iter()
        .map(|(key, v)| {
            format!(
                "key{key}: {} of {} linearize; nothing explains {:?} (overlapping {:?})",
                v.linearized, v.ops, v.stuck, v.context
            )
        })
        .collect();
    report
}

/// A hash of what the run did: the faults and when, every operation's
/// call and return instants and value, and how long it ran. Two runs of
/// one seed give the same hash when the simulation is deterministic.
fn trace_hash(report: &SeedReport, history: &BTreeMap<usize, Vec<Op<u64>>>) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same input hashes alike in every process.
    let mut h = std::hash::DefaultHasher::new();
    report.faults.hash(&mut h);
    report.sim_time.hash(&mut h);
    report.shrink.hash(&mut h);
    report.drain.hash(&mut h);
    report.heal.hash(&mut h);
    for (key, ops) in history {
        key.hash(&mut h);
        for op in ops {
            op.call.hash(&mut h);
            op.ret.hash(&mut h);
            match &op.action {
                tidal_core::linearizability::Action::Write(v) => (0u8, v).hash(&mut h),
                tidal_core::linearizability::Action::Read(v) => (1u8, v).hash(&mut h),
            }
        }
    }
    h.finish()
}

/// One operation of a key's history, as a line: when it was called and
/// returned (simulated seconds), and the value written or read as
/// `client:sequence` (clients count from 1).
fn describe(key: usize, op: &Op<u64>) -> String {
    let value = |v: &Option<u64>| v.map_or("nil".to_string(), |v| format!("{}:{}", v >> 32, v & 0xffff_ffff));
    let (kind, v) = match &op.action {
        tidal_core::linearizability::Action::Write(v) => ("write", value(v)),
        tidal_core::linearizability::Action::Read(v) => ("read ", value(v)),
    };
    let ret = op.ret.map_or("pending".to_string(), |r| format!("{:.3}", r as f64 / 1e9));
    format!("key{key} {:>8.3} {ret:>8} {kind} {v}", op.call as f64 / 1e9)
}

/// The operator: a few seconds in, asks any of `https` to scale the
/// cluster to `nodes` nodes and 4 PRGs (retrying until a node accepts),
/// then follows the operation until it ends; by `until` (simulated time)
/// it gives up. Leaves how it ended in `outcome`.
async fn operate(https: &[String], nodes: u64, until: Duration, outcome: Arc<Mutex<Option<String>>>) {
    let body =
        format!(r#"{{"operation":"scale_out","target_count":{nodes},"prgs":{{"default":4}},"gate_timeout_ms":20000}}"#);
    let timeout = Duration::from_secs(3);
    let past = || turmoil::sim_elapsed().unwrap_or_default() >= until;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut id = None;
    'ask: while !past() {
        for addr in https {
            if let Ok((202, reply)) =
                http::request(addr, "POST", "/api/v1/clusters/tidal/scale", Some(&body), timeout).await
            {
                id = serde_json::from_str::<serde_json::Value>(&reply).ok().and_then(|v| v["id"].as_u64());
                break 'ask;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let Some(id) = id else {
        *outcome.lock().unwrap() = Some("never accepted".into());
        return;
    };
    *outcome.lock().unwrap() = Some("running".into());
    let path = format!("/api/v1/operations/{id}");
    while !past() {
        for addr in https {
            if let Ok((200, reply)) = http::request(addr, "GET", &path, None, timeout).await {
                let op: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
                if let Some(status) = op["status"].as_str() {
                    if status != "running" && status != "rolling_back" {
                        let end = if status == "succeeded" {
                            status.to_string()
                        } else {
                            format!("{status} at phase {}: {}", op["phase"], op["error"])
                        };
                        *outcome.lock().unwrap() = Some(end);
                        return;
                    }
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The operator, after a scale-up: drafts a shrink plan back to 2 PRGs,
/// arms it, cancels it after `cancel_after` if the seed says so, and
/// follows it until it is Completed or RolledBack (by `until`). Each
/// request is retried on any node until one answers it; a retry that
/// finds its earlier attempt took effect (a duplicate id, a plan already
/// armed) goes on. Leaves how it ended in `outcome`.
async fn shrink_back(
    https: &[String],
    until: Duration,
    cancel_after: Option<Duration>,
    outcome: Arc<Mutex<Option<String>>>,
) {
    const ID: &str = "sim-shrink";
    let past = || past(until);
    let set = |s: String| *outcome.lock().unwrap() = Some(s);
    let ask = |method: &'static str, path: String, body: Option<String>, ok: &'static [u16]| async move {
        ask(https, until, method, &path, body.as_deref(), ok).await
    };
    let plan = |reply: &str| serde_json::from_str::<serde_json::Value>(reply).unwrap_or_default();
    let body = format!(r#"{{"plan_id":"{ID}","prgs":{{"default":2}}}}"#);
    if ask("POST", "/admin/shrink-plan".into(), Some(body), &[201, 409]).await.is_none() {
        return set("never drafted".into());
    }
    let arm = format!(r#"{{"plan_id":"{ID}"}}"#);
    // 409 after an attempt that took effect: the plan is armed already.
    match ask("POST", "/admin/shrink-plan/arm".into(), Some(arm.clone()), &[202, 409]).await {
        None => return set("never armed".into()),
        Some((409, _)) => {
            let Some((_, reply)) = ask("GET", format!("/admin/shrink-plan/{ID}"), None, &[200]).await else {
                return set("never armed".into());
            };
            if plan(&reply)["state"] == "Draft" {
                return set(format!("not armed: {reply}"));
            }
        }
        Some(_) => {}
    }
    let mut cancelled = false;
    if let Some(after) = cancel_after {
        tokio::time::sleep(after).await;
        // 409: it ended first (Completed), or an earlier attempt took effect.
        cancelled = ask("POST", "/admin/shrink-plan/cancel".into(), Some(arm), &[200, 409])
            .await
            .is_some_and(|(code, _)| code == 200);
    }
    let mark = if cancelled { " (cancelled)" } else { "" };
    while !past() {
        if let Some((_, reply)) = ask("GET", format!("/admin/shrink-plan/{ID}"), None, &[200]).await {
            let p = plan(&reply);
            if let Some(state @ ("Completed" | "RolledBack")) = p["state"].as_str() {
                return set(format!("{state}{mark}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    set(format!("still armed{mark}"));
}

/// What the operator asks of the machines (the driver, which owns the
/// simulation, carries it out between steps), and the nodes it took out.
#[derive(Default)]
struct Hands {
    /// Stop this host (an index into the hosts) as a machine that died.
    stop: Option<usize>,
    /// Start this host again.
    start: Option<usize>,
    /// When it last asked for a node to start again.
    started_again: Option<tokio::time::Instant>,
    /// Nodes stopped for now: reads through them wait until they are back.
    down: BTreeSet<u64>,
    /// Nodes out of the cluster for good: no read goes through them, and
    /// the cluster settles without them.
    gone: BTreeSet<u64>,
}

/// The operator, last: drains node `node`, a control-plane voter, through
/// any of `https`, and follows the drain until the node holds no replica
/// and no vote (`drained`: it stops by itself, as the binary does) or its
/// operation ended with replicas left (`stopped`), by `until`; then
/// removes a drained node. Leaves how it ended in `outcome`.
async fn drain_and_remove(
    https: &[String],
    node: u64,
    until: Duration,
    hands: &Mutex<Hands>,
    outcome: Arc<Mutex<Option<String>>>,
) {
    let set = |s: &str| *outcome.lock().unwrap() = Some(s.to_string());
    let body = format!(r#"{{"node":{node},"gate_timeout_ms":20000}}"#);
    if ask(https, until, "POST", "/admin/drain", Some(&body), &[202]).await.is_none() {
        return set("never started");
    }
    set("still draining");
    loop {
        let Some((_, reply)) = ask(https, until, "GET", "/admin/drain", None, &[200]).await else { return };
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
        let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
        let phase = nodes.iter().find(|n| n["node"] == node).and_then(|n| n["state"].as_str().map(str::to_string));
        match phase.as_deref() {
            Some("stopped") => return set("stopped"),
            Some("drained") => break,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    hands.lock().unwrap().gone.insert(node);
    // 404 for a retry whose earlier attempt took effect.
    let body = format!(r#"{{"node":{node}}}"#);
    let others: Vec<String> = (1..).zip(https).filter(|(n, _)| *n != node).map(|(_, a)| a.clone()).collect();
    let until = until + Duration::from_secs(30);
    let refused = match ask(&others, until, "POST", "/admin/remove-node", Some(&body), &[200, 404, 409]).await {
        Some((409, why)) => why,
        Some(_) => return set("drained, removed"),
        None => return set("drained, not removed: no node answered"),
    };
    // Refused, or a retry refused because its earlier attempt took effect.
    let listed = |reply: &str| {
        let v: serde_json::Value = serde_json::from_str(reply).unwrap_or_default();
        v["nodes"].as_array().is_none_or(|nodes| nodes.iter().any(|n| n["id"] == node))
    };
    match ask(&others, until, "GET", "/api/v1/cluster", None, &[200]).await {
        Some((_, reply)) if !listed(&reply) => set("drained, removed"),
        _ => set(&format!("drained, not removed: {refused}")),
    }
}

/// Longest the operator waits for the cluster to heal around a lost node.
const HEAL_WITHIN: Duration = Duration::from_secs(60);

/// The operator, once the faults are over: loses a node holding replicas
/// (a control-plane voter when one does) for good, waits until the
/// cluster has re-created its replicas on the other nodes and moved its
/// vote (`--self-heal-delay-ms` plus the copies), then starts it again: it
/// must find its replicas gone and delete them (the driver's settle check
/// sees to that). Leaves how it went in `outcome`.
async fn lose_and_heal(
    https: &[String],
    seed: u64,
    calm: &AtomicBool,
    hands: &Mutex<Hands>,
    outcome: Arc<Mutex<Option<String>>>,
) {
    let set = |s: String| *outcome.lock().unwrap() = Some(s);
    while !calm.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let until = turmoil::sim_elapsed().unwrap_or_default() + HEAL_WITHIN;
    let Some(view) = layout(https, until).await else { return set("not healed: no node answered".into()) };
    let voting: Vec<u64> = view.hosting.iter().copied().filter(|n| view.voters.contains(n)).collect();
    let pick = if voting.is_empty() { view.hosting.iter().copied().collect() } else { voting };
    let Some(&victim) = pick.get((seed % pick.len().max(1) as u64) as usize) else {
        return set("not healed: no node holds a replica".into());
    };
    {
        let mut h = hands.lock().unwrap();
        h.stop = Some(victim as usize - 1);
        h.down.insert(victim);
    }
    let lost = turmoil::sim_elapsed().unwrap_or_default();
    let mut last = String::new();
    while !past(until) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(view) = layout(https, until).await else { break };
        if view.settled_without(victim) {
            let after = turmoil::sim_elapsed().unwrap_or_default() - lost;
            last = format!("healed {:.1} s after node {victim} was lost", after.as_secs_f64());
            break;
        }
        last = format!("not healed {HEAL_WITHIN:?} after node {victim} was lost: {}", view.summary);
    }
    set(last);
    let mut h = hands.lock().unwrap();
    h.start = Some(victim as usize - 1);
    h.started_again = Some(tokio::time::Instant::now());
    h.down.remove(&victim);
}

/// Where the replicas and the control plane's votes are, as a node saw.
struct Layout {
    /// Nodes that are members or learners of some PRG.
    hosting: BTreeSet<u64>,
    voters: Vec<u64>,
    /// Every PRG with 3 members and no learner.
    whole: bool,
    summary: String,
}

impl Layout {
    /// Whether every PRG has its 3 voters and no learner, none of them on
    /// `node`, and `node` no longer votes in the control plane.
    fn settled_without(&self, node: u64) -> bool {
        self.whole && !self.hosting.contains(&node) && !self.voters.contains(&node) && self.voters.len() >= 3
    }
}

/// The layout as the first of `https` to answer sees it.
async fn layout(https: &[String], until: Duration) -> Option<Layout> {
    let json = |reply: String| serde_json::from_str::<serde_json::Value>(&reply).unwrap_or_default();
    let routing = json(ask(https, until, "GET", "/api/v1/routing", None, &[200]).await?.1);
    let cluster = json(ask(https, until, "GET", "/api/v1/cluster", None, &[200]).await?.1);
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array().map(|a| a.iter().filter_map(|n| n.as_u64()).collect()).unwrap_or_default()
    };
    let placements = routing["placements"].as_array().cloned().unwrap_or_default();
    let mut hosting = BTreeSet::new();
    let mut whole = true;
    let mut summary = Vec::new();
    for p in &placements {
        let (members, learners) = (ids(&p["members"]), ids(&p["learners"]));
        whole &= members.len() == REPLICAS && learners.is_empty();
        summary.push(format!("{} on {members:?}+{learners:?}", p["prg"]));
        hosting.extend(members.into_iter().chain(learners));
    }
    let voters = ids(&cluster["cpMembers"]);
    summary.push(format!("control-plane voters {voters:?}"));
    Some(Layout { hosting, voters, whole, summary: summary.join(", ") })
}

/// Whether simulated time has reached `until`.
fn past(until: Duration) -> bool {
    turmoil::sim_elapsed().unwrap_or_default() >= until
}

/// Ask any of `https` until one answers with a status of `ok` (every
/// 500 ms, each request within 3 s), but not past `until`: that answer.
async fn ask(
    https: &[String],
    until: Duration,
    method: &str,
    path: &str,
    body: Option<&str>,
    ok: &[u16],
) -> Option<(u16, String)> {
    while !past(until) {
        for addr in https {
            if let Ok((code, reply)) = http::request(addr, method, path, body, Duration::from_secs(3)).await {
                if ok.contains(&code) {
                    return Some((code, reply));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// How a fault is undone.
enum Heal {
    Repair(Vec<(usize, usize)>),
    Restart(usize),
    Latency,
    Clock(Arc<SimClock>),
    Disk(SimDisk),
}

impl Heal {
    fn apply(&self, sim: &mut turmoil::Sim<'_>, names: &[String]) {
        match self {
            Heal::Repair(links) => {
                for &(a, b) in links {
                    sim.repair(names[a].as_str(), names[b].as_str());
                }
            }
            Heal::Restart(i) => sim.bounce(names[*i].as_str()),
            Heal::Latency => sim.set_max_message_latency(Duration::from_millis(5)),
            Heal::Clock(clock) => clock.skew_ms.store(0, Ordering::SeqCst),
            Heal::Disk(disk) => disk.slow_down(Duration::ZERO),
        }
    }
}

/// Injects one fault drawn from `dice`; says what it was and how to heal it.
fn inject(
    sim: &mut turmoil::Sim<'_>,
    names: &[String],
    disks: &[SimDisk],
    clocks: &[Arc<SimClock>],
    cp_leader: Option<usize>,
    dice: &mut Dice,
) -> (String, Heal) {
    let n = names.len();
    let victim = dice.below(n as u64) as usize;
    let other = (victim + 1 + dice.below(n as u64 - 1) as usize) % n;
    match dice.below(6) {
        0 => {
            // Half the time, the node that leads the control plane.
            let (victim, whom) = match cp_leader.filter(|_| dice.below(2) == 0) {
                Some(leader) => (leader, " (the control-plane leader)"),
                None => (victim, ""),
            };
            let links: Vec<(usize, usize)> = (0..n).filter(|&o| o != victim).map(|o| (victim, o)).collect();
            for &(a, b) in &links {
                sim.partition(names[a].as_str(), names[b].as_str());
            }
            (format!("isolate {}{whom}", names[victim]), Heal::Repair(links))
        }
        1 => {
            sim.partition_oneway(names[victim].as_str(), names[other].as_str());
            (format!("drop {}→{}", names[victim], names[other]), Heal::Repair(vec![(victim, other)]))
        }
        2 => {
            // Fence the disk first: the dying node must not sync on its way out.
            disks[victim].crash();
            sim.crash(names[victim].as_str());
            (format!("crash {}", names[victim]), Heal::Restart(victim))
        }
        3 => {
            let ms = 20 + dice.below(200);
            sim.set_max_message_latency(Duration::from_millis(ms));
            (format!("latency up to {ms} ms"), Heal::Latency)
        }
        4 => {
            // Every commit of the node's storage (log appends, votes, state
            // flushes) takes this long: a disk that has gone slow.
            let ms = 20 + dice.below(480);
            disks[victim].slow_down(Duration::from_millis(ms));
            (format!("disk of {} takes {ms} ms per commit", names[victim]), Heal::Disk(disks[victim].clone()))
        }
        _ => {
            // The node's wall clock jumps, forward or back, by up to 30 s
            // (its timers, on the runtime's monotonic clock, do not).
            let ms = 1000 + dice.below(29_000) as i64;
            let ms = if dice.below(2) == 0 { ms } else { -ms };
            clocks[victim].skew_ms.store(ms, Ordering::SeqCst);
            (format!("clock of {} jumps {ms:+} ms", names[victim]), Heal::Clock(clocks[victim].clone()))
        }
    }
}

/// How a node finds its cluster.
#[derive(Clone)]
pub enum Boot {
    /// One of the first nodes: every one of them named as a peer.
    Peers(Vec<IpAddr>),
    /// A standby that starts `after` the run began (simulated time) and
    /// joins through the node at `through`.
    Join { through: IpAddr, after: Duration },
}

/// What a simulated node runs on, and what watches it: these outlive the
/// node's crashes and restarts.
#[derive(Clone, Default)]
pub struct Machine {
    pub disk: SimDisk,
    pub clock: Arc<SimClock>,
    pub invariants: Arc<Mutex<Invariants>>,
}

/// Adds node `id` as a restartable host of `sim` at `ip`: it finds its
/// cluster by `boot`, runs on `machine`'s disk and clock, and `machine`'s
/// invariants sample it while it runs.
pub fn host(sim: &mut turmoil::Sim<'_>, id: u64, ip: IpAddr, boot: Boot, machine: Machine) {
    let (peers, join, after) = match boot {
        Boot::Peers(ips) => {
            let peers: Vec<String> = ips.iter().enumerate().map(|(i, ip)| format!("{}={ip}:7000", i + 1)).collect();
            (Some(peers.join(",")), None, Duration::ZERO)
        }
        Boot::Join { through, after } => (None, Some(format!("{through}:7000")), after),
    };
    sim.host(format!("node{id}"), move || {
        let (machine, peers, join) = (machine.clone(), peers.clone(), join.clone());
        async move {
            let since = turmoil::sim_elapsed().unwrap_or_default();
            if since < after {
                tokio::time::sleep(after - since).await;
            }
            let raw = RawConfig {
                node_id: Some(id),
                listen: Some("0.0.0.0:7000".into()),
                advertise: Some(format!("{ip}:7000")),
                client_addr: Some(format!("{ip}:6379")),
                http_addr: Some(format!("{ip}:8080")),
                data_dir: Some(format!("/sim/node{id}").into()),
                insecure: Some(true),
                peers,
                join,
                slots: Some(64),
                prgs: Some(2),
                // Longer than any fault lasts: only a node the operator
                // loses for good is healed around.
                self_heal_delay_ms: Some(SELF_HEAL_DELAY.as_millis() as u64),
                ..Default::default()
            };
            let config = raw.resolve()?;
            let net = Network {
                peer: Arc::new(SimAcceptor::bind(7000, format!("{ip}:7000")).await?),
                client: Arc::new(SimAcceptor::bind(6379, format!("{ip}:6379")).await?),
                http: Arc::new(SimAcceptor::bind(8080, format!("{ip}:8080")).await?),
                connector: Arc::new(SimConnector),
            };
            let node = Node::start(config, net, Arc::new(machine.disk), machine.clock, Arc::new(NoUsage)).await?;
            let watching = tokio::spawn(crate::invariants::watch(machine.invariants, id, node.shared.clone()));
            tokio::select! {
                // Drained or removed: it stops, as the binary does.
                () = node.drained() => {
                    watching.abort();
                    node.stop().await;
                    Ok(())
                }
                why = node.failed() => Err(why.into()),
            }
        }
    });
}

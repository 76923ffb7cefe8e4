//! Scripts (EVAL and kin): this node's cache of them, the ones running
//! here, and a script's run at the leader of its PRG.
//!
//! ```text
//!  EVAL ─► node: cache, flags, slot ─► leader of the slot's PRG:
//!            one script of a slot at a time; read index confirmed;
//!            Lua runs each command against the applied state under the
//!            script's own writes (tidal_raft::kv_machine::ScriptRun) ─►
//!            what it wrote is proposed as one write, WriteOp::Script ─►
//!            applied on every replica, or nothing when a key it touched
//!            changed meanwhile (then it runs again)
//! ```
//!
//! A script that names no keys runs at a PRG this node leads; its first
//! key decides its slot, and when another PRG serves that slot the script
//! starts over there (nothing it did is seen until it ends). SCRIPT KILL
//! stops a script running on this node, and nothing it wrote applies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use serde::{Deserialize, Serialize};
use tidal_core::ids::DEFAULT_TENANT;
use tidal_core::kv::{
    command_spec, lookup, parse, Command, ConnCmd, ReadOp, Reply, ScriptBody, ScriptCmd, TxOp, Watch,
};
use tidal_core::ownership::Refusal;
use tidal_raft::kv_machine::{KvMachine, ScriptRun};
use tidal_raft::storage::Storage;

use crate::forward::{KvRequest, KvResponse};
use crate::node::{KvGroup, Shared};
use crate::script_lua::{self, Calls, Run};

/// What a command gets while a script has run longer than the limit.
pub const BUSY: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Runs of one script, at most, when keys it touched keep changing
/// under it (each a write already on its way when the run began).
const RUNS: usize = 8;

/// The default of `lua-time-limit` (`busy-reply-threshold`), in ms.
pub const DEFAULT_LIMIT_MS: u64 = 5000;

/// One script to run: its body and what it is called with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Eval {
    pub sha: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    pub keys: Vec<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
    /// EVAL_RO and EVALSHA_RO, or the `no-writes` flag.
    pub read_only: bool,
}

/// A command of a transaction that holds a script.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Step {
    Op(TxOp),
    Eval(Eval),
}

impl Step {
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Step::Op(op) => op.keys(),
            Step::Eval(e) => e.keys.iter().map(Vec::as_slice).collect(),
        }
    }

    fn read_only(&self) -> bool {
        match self {
            Step::Op(op) => matches!(op, TxOp::Read(_)),
            Step::Eval(e) => e.read_only,
        }
    }
}

/// A script sent to its PRG's leader: EVAL's one, or the commands of a
/// transaction (EXEC) that holds scripts, run as one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScriptCall {
    pub steps: Vec<Step>,
    /// A transaction's: its reply is the array of the steps' replies, and
    /// the versions WATCH read must still hold, or nothing runs (nil).
    pub transaction: Option<Option<Watch>>,
    /// For scripts that name no keys: the first key one touched, whose
    /// PRG they run at.
    pub route: Option<Vec<u8>>,
}

impl ScriptCall {
    /// The keys that route it.
    pub fn keys(&self) -> Vec<&[u8]> {
        let named = self.steps.iter().map(Step::keys).find(|k| !k.is_empty());
        let watched = || {
            let w = self.transaction.as_ref()?.as_ref()?;
            Some(w.keys.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>()).filter(|k| !k.is_empty())
        };
        named.or_else(watched).unwrap_or_else(|| self.route.iter().map(Vec::as_slice).collect())
    }

    /// Whether nothing in it may write (then it may be sent again).
    pub fn read_only(&self) -> bool {
        self.steps.iter().all(Step::read_only)
    }
}

/// The node's scripts: those cached, and those running here.
pub struct Scripts {
    cache: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    running: Mutex<HashMap<u64, Running>>,
    /// How many are running (read without the lock on every command).
    count: AtomicUsize,
    next: AtomicU64,
    /// `lua-time-limit`: past it, other commands are answered BUSY.
    pub limit_ms: AtomicU64,
}

struct Running {
    started: Instant,
    kill: Arc<AtomicBool>,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            cache: Mutex::default(),
            running: Mutex::default(),
            count: AtomicUsize::new(0),
            next: AtomicU64::new(0),
            limit_ms: AtomicU64::new(DEFAULT_LIMIT_MS),
        }
    }
}

/// A script's place among the running ones, left when dropped.
struct Started {
    shared: Arc<Shared>,
    id: u64,
    kill: Arc<AtomicBool>,
}

impl Drop for Started {
    fn drop(&mut self) {
        let scripts = &self.shared.scripts;
        scripts.running.lock().expect("scripts lock").remove(&self.id);
        scripts.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Scripts {
    /// Whether a script here has run longer than `lua-time-limit` (0: never).
    pub fn busy(&self) -> bool {
        if self.count.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let limit = self.limit_ms.load(Ordering::Relaxed);
        limit > 0
            && self
                .running
                .lock()
                .expect("scripts lock")
                .values()
                .any(|r| r.started.elapsed() >= Duration::from_millis(limit))
    }

    fn start(shared: &Arc<Shared>) -> Started {
        let this = &shared.scripts;
        let id = this.next.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(AtomicBool::new(false));
        this.running.lock().expect("scripts lock").insert(id, Running { started: Instant::now(), kill: kill.clone() });
        this.count.fetch_add(1, Ordering::Relaxed);
        Started { shared: shared.clone(), id, kill }
    }

    /// SCRIPT KILL: stop the scripts running here past the busy limit
    /// (every one running when there is no limit). A script of another
    /// slot that has not run that long goes on: in Redis no command could
    /// reach it before then.
    pub fn kill(&self) -> Reply {
        let limit = Duration::from_millis(self.limit_ms.load(Ordering::Relaxed));
        let running = self.running.lock().expect("scripts lock");
        let mut busy = running.values().filter(|r| r.started.elapsed() >= limit).peekable();
        if busy.peek().is_none() {
            return Reply::Error("NOTBUSY No scripts in execution right now.".into());
        }
        for r in busy {
            r.kill.store(true, Ordering::Relaxed);
        }
        Reply::Ok
    }

    /// Cache `body` under its digest `sha`.
    fn cache(&self, sha: &str, body: Vec<u8>) {
        self.cache.lock().expect("scripts lock").insert(sha.to_string(), Arc::new(body));
    }

    fn cached(&self, sha: &[u8]) -> Option<Arc<Vec<u8>>> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.cache.lock().expect("scripts lock").get(&sha).cloned()
    }
}

/// Whether a command runs while a script is busy (Redis's `allow_busy`).
pub fn allowed_while_busy(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Script(ScriptCmd::Kill)
            | Command::Conn(
                ConnCmd::Auth { .. }
                    | ConnCmd::Hello { .. }
                    | ConnCmd::Multi
                    | ConnCmd::Discard
                    | ConnCmd::Quit
                    | ConnCmd::Reset
                    | ConnCmd::Watch(_)
                    | ConnCmd::Unwatch
            )
    )
}

/// Answer EVAL and its kin, and SCRIPT.
pub async fn command(shared: &Arc<Shared>, cmd: ScriptCmd) -> Reply {
    match cmd {
        ScriptCmd::Load(body) => match script_lua::shebang(&body).and_then(|(_, code)| script_lua::compile_check(code))
        {
            Ok(()) => {
                let sha = script_lua::sha1_hex(&body);
                shared.scripts.cache(&sha, body);
                Reply::Bulk(sha.into_bytes())
            }
            Err(e) => e,
        },
        ScriptCmd::Exists(shas) => {
            Reply::Array(shas.iter().map(|s| Reply::Int(i64::from(shared.scripts.cached(s).is_some()))).collect())
        }
        ScriptCmd::Flush => {
            shared.scripts.cache.lock().expect("scripts lock").clear();
            Reply::Ok
        }
        ScriptCmd::Kill => shared.scripts.kill(),
        ScriptCmd::Eval { body, keys, args, read_only } => eval(shared, body, keys, args, read_only).await,
    }
}

/// The script EVAL (or EVALSHA) names, checked as Redis checks it before
/// it runs, and cached.
pub fn resolve(
    shared: &Shared,
    body: ScriptBody,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
    read_only: bool,
) -> Result<Eval, Reply> {
    let noscript = || Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into());
    // Its digest and body, and whether it is cached (then it compiled
    // when it was cached).
    let (sha, body, known) = match body {
        ScriptBody::Sha(sha) if sha.len() != 40 => return Err(noscript()),
        ScriptBody::Sha(sha) => {
            let body = shared.scripts.cached(&sha).ok_or_else(noscript)?.to_vec();
            (String::from_utf8_lossy(&sha).to_ascii_lowercase(), body, true)
        }
        ScriptBody::Source(body) => {
            let sha = script_lua::sha1_hex(&body);
            let known = shared.scripts.cached(sha.as_bytes()).is_some();
            (sha, body, known)
        }
    };
    let (flags, code) = script_lua::shebang(&body)?;
    if !known {
        script_lua::compile_check(code)?;
    }
    if flags.no_cluster {
        return Err(Reply::err("Can not run script on cluster, 'no-cluster' flag is set."));
    }
    if read_only && flags.shebang && !flags.no_writes {
        return Err(Reply::err("Can not execute a script with write flag using *_ro command."));
    }
    let state = shared.cache.get();
    let slots: Vec<Option<u32>> = keys.iter().map(|k| state.slot_of(DEFAULT_TENANT, k)).collect();
    if !flags.allow_cross_slot_keys && slots.windows(2).any(|w| w[0] != w[1]) {
        return Err(Reply::Error(crate::resp_server::CROSSSLOT.into()));
    }
    if !known {
        shared.scripts.cache(&sha, body.clone());
    }
    Ok(Eval { sha, body, keys, args, read_only: read_only || flags.no_writes })
}

async fn eval(
    shared: &Arc<Shared>,
    body: ScriptBody,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
    read_only: bool,
) -> Reply {
    match resolve(shared, body, keys, args, read_only) {
        Ok(e) => send(shared, ScriptCall { steps: vec![Step::Eval(e)], transaction: None, route: None }).await,
        Err(e) => e,
    }
}

/// Send `call` to the leader of its keys' PRG; scripts that name no keys
/// go to a PRG led here, as Redis runs one on the node it was sent to.
pub async fn send(shared: &Arc<Shared>, call: ScriptCall) -> Reply {
    let state = shared.cache.get();
    let prg = match call.keys().first() {
        Some(k) => state.route(DEFAULT_TENANT, k).ok().map(|r| r.placement.prg.clone()),
        None => {
            let led_here = state.prgs_of(DEFAULT_TENANT).into_iter().find(|p| {
                shared.kv_group(&p.prg.to_string()).is_some_and(|kv| {
                    kv.group.raft.metrics().borrow_watched().current_leader == Some(shared.config.node_id)
                })
            });
            led_here.or_else(|| state.prgs_of(DEFAULT_TENANT).into_iter().next()).map(|p| p.prg.clone())
        }
    };
    let Some(prg) = prg else {
        return Reply::Error("CLUSTERDOWN the cluster is still starting: no tenants yet".into());
    };
    shared.send(&prg, KvRequest::Script(call)).await
}

/// One lock per slot, held by the script running in it from its first
/// key to its write's apply: scripts of one slot run one at a time, as
/// Redis runs them, and each sees what the one before wrote.
#[derive(Default)]
pub struct SlotLocks {
    slots: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<()>>>>,
}

type SlotGuard = tokio::sync::OwnedMutexGuard<()>;

impl SlotLocks {
    fn of(&self, slot: u32) -> Arc<tokio::sync::Mutex<()>> {
        self.slots.lock().expect("slot locks").entry(slot).or_default().clone()
    }
}

/// Why a run stopped short of the script's answer.
pub enum Stop {
    /// The script's first key is in a slot another PRG serves: run it
    /// there.
    Elsewhere(Vec<u8>),
    Refused(Refusal),
    Failed(String),
    /// What it wrote would not fit one write.
    TooLarge(u64),
    /// The slot of a script that named no keys, found at its first key,
    /// is another script's for now: run it again once that one is done
    /// (nothing it did was seen).
    SlotBusy(u32),
}

/// Runs a script's commands at the leader.
struct LeaderCalls {
    shared: Arc<Shared>,
    machine: Arc<KvMachine>,
    storage: Arc<Storage>,
    run: ScriptRun,
    /// The slot of the script's keys: its declared ones', or the first it
    /// touched.
    slot: Option<u32>,
    declared: bool,
    read_only: bool,
    cross_slot: bool,
    locks: Arc<SlotLocks>,
    /// The lock of the script's slot, once it is known, and that slot.
    held: Option<(u32, SlotGuard)>,
    /// What its writes take, and the most they may (one write's).
    bytes: usize,
    max_bytes: u64,
}

impl Calls for LeaderCalls {
    type Stop = Stop;

    fn call(&mut self, args: Vec<Vec<u8>>, _resp3: bool) -> Result<Reply, Stop> {
        let spec = match command_spec(&args) {
            Ok(s) => s,
            Err(_) if lookup(&args[0]).is_some() => {
                return Ok(Reply::err("Wrong number of args calling Redis command from script"))
            }
            Err(_) => return Ok(Reply::err("Unknown Redis command called from script")),
        };
        if spec.flags.contains(&"noscript") {
            return Ok(Reply::err("This Redis command is not allowed from script"));
        }
        if self.read_only && (spec.flags.contains(&"write") || spec.flags.contains(&"may_replicate")) {
            return Ok(Reply::err("Write commands are not allowed from read-only scripts."));
        }
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let cmd = match parse(args) {
            Ok(c) => crate::resp_server::seeded(&self.shared, c),
            Err(r) => return Ok(r),
        };
        let op = match cmd {
            Command::Write(w) => TxOp::Write(w),
            Command::Read(r) => TxOp::Read(r),
            // Streams are not read by waiting from a script, as in Redis.
            Command::Block(_) if name == "xread" || name == "xreadgroup" => {
                return Ok(Reply::err(format!("{name} command is not allowed with BLOCK option from scripts")))
            }
            // A script does not wait: it pops what is there.
            Command::Block(b) => b.op.into_tx(),
            Command::Conn(ConnCmd::Time) => {
                let ms = self.run.at_ms();
                let (s, us) = ((ms / 1000).to_string(), ((ms % 1000) * 1000).to_string());
                return Ok(Reply::Array(vec![Reply::bulk(s), Reply::bulk(us)]));
            }
            Command::Conn(ConnCmd::Ping(None)) => return Ok(Reply::simple("PONG")),
            Command::Conn(ConnCmd::Ping(Some(m)) | ConnCmd::Echo(m)) => return Ok(Reply::Bulk(m)),
            _ => return Ok(Reply::err("This Redis command is not allowed from script on a cluster")),
        };
        // What SORT reads through BY and GET patterns is not known before
        // it runs, so a script could not be checked against its changes.
        let patterns = match &op {
            TxOp::Write(tidal_core::kv::WriteOp::Sort { spec, .. }) => !spec.pattern_keys().is_empty(),
            TxOp::Read(ReadOp::Sort { spec, .. }) => !spec.pattern_keys().is_empty(),
            _ => false,
        };
        if patterns {
            return Ok(Reply::err("SORT with BY or GET patterns is not allowed from scripts here"));
        }
        self.op(op)
    }
}

impl LeaderCalls {
    /// Run one command (of a script, or of the transaction around it).
    fn op(&mut self, op: TxOp) -> Result<Reply, Stop> {
        if !op.transactional() {
            return Ok(Reply::err("This command spans every slot and is not allowed from script on a cluster"));
        }
        let state = self.shared.cache.get();
        for k in op.keys() {
            let s = state.slot_of(DEFAULT_TENANT, k);
            match self.slot {
                None => {
                    self.slot = s;
                    // The first key of a script that named none: its slot
                    // is its own unless another script runs there, and
                    // then it runs again once that one is done (its thread
                    // does not wait: under simulation the other script
                    // could not run meanwhile).
                    if let Some(slot) = s.filter(|s| self.held.as_ref().is_none_or(|(h, _)| h != s)) {
                        match self.locks.of(slot).try_lock_owned() {
                            Ok(g) => self.held = Some((slot, g)),
                            Err(_) => return Err(Stop::SlotBusy(slot)),
                        }
                    }
                }
                Some(mine) if s != Some(mine) && !self.cross_slot => {
                    return Ok(Reply::err("Script attempted to access keys that do not hash to the same slot"));
                }
                Some(_) => {}
            }
        }
        if let TxOp::Write(w) = &op {
            self.bytes += tidal_raft::kv_proposer::op_size(w);
            if self.bytes as u64 > self.max_bytes {
                return Err(Stop::TooLarge(self.max_bytes));
            }
        }
        let first_touch = !self.declared && !self.run.touched();
        match self.machine.script_call(&self.storage, &mut self.run, &op) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(Refusal::Moved { .. })) if first_touch => {
                Err(Stop::Elsewhere(op.keys().first().map(|k| k.to_vec()).unwrap_or_default()))
            }
            Ok(Err(Refusal::Moved { .. })) if self.cross_slot => {
                Ok(Reply::err("Script attempted to access a non local key in a cluster node"))
            }
            Ok(Err(r)) => Err(Stop::Refused(r)),
            Err(e) => Err(Stop::Failed(e.to_string())),
        }
    }
}

/// Run `call` at this node, the leader of `kv`'s PRG: see the module's
/// notes. Scripts of one slot run one at a time ([`SlotLocks`]).
pub async fn at_leader(shared: &Arc<Shared>, kv: &KvGroup, call: ScriptCall, timeout: Duration) -> KvResponse {
    let call = Arc::new(call);
    let slot = call.keys().first().and_then(|k| shared.cache.get().slot_of(DEFAULT_TENANT, k));
    let declared = call.steps.iter().any(|s| !s.keys().is_empty());
    // The slot a keyless script found another script in, waited for.
    let mut busy = None;
    for _ in 0..RUNS {
        // The slot a run found busy comes first: a keyless script sent on
        // with its first key may find another slot busy on a later run.
        let held = match busy.or(slot) {
            Some(s) => Some((s, kv.scripts.of(s).lock_owned().await)),
            None => None,
        };
        if let Err(answer) = crate::router::confirmed(timeout, kv.reads.confirm()).await {
            return answer;
        }
        let mut run = ScriptRun::new(shared.clock.now_ms());
        // A transaction's WATCH: the versions it read still hold, or it
        // fails; they go with its write, which applies only if they hold
        // then too.
        if let Some(Some(w)) = &call.transaction {
            match watch_holds(shared, kv, w, run.at_ms()) {
                Ok(true) => run.expect(w.keys.clone()),
                Ok(false) => return KvResponse::Reply(Reply::NilArray),
                Err(answer) => return answer,
            }
        }
        let started = Scripts::start(shared);
        let mut calls = LeaderCalls {
            shared: shared.clone(),
            machine: kv.machine.clone(),
            storage: shared.host.storage().clone(),
            run,
            slot: if declared { slot } else { None },
            declared,
            read_only: false,
            cross_slot: false,
            locks: kv.scripts.clone(),
            held,
            bytes: 0,
            max_bytes: shared.config.max_request_bytes(),
        };
        let c = call.clone();
        // The run stays registered (for BUSY and SCRIPT KILL) as long as
        // it runs, even if its caller is gone.
        let ran = tidal_raft::runtime::blocking(move || {
            let answers = run_steps(&c.steps, &mut calls, &started.kill);
            drop(started);
            (answers, calls.run, calls.held)
        })
        .await;
        let (answers, run, _held) = match ran {
            Ok(r) => r,
            Err(e) => return KvResponse::Unavailable(format!("the script's run failed: {e}")),
        };
        let (mut replies, killed) = match answers {
            Ok(r) => r,
            Err(Stop::Elsewhere(key)) => return KvResponse::ScriptElsewhere { key },
            Err(Stop::SlotBusy(s)) => {
                busy = Some(s);
                continue;
            }
            Err(Stop::Refused(r)) => return crate::router::refused(r),
            Err(Stop::Failed(e)) => return KvResponse::Unavailable(e),
            Err(Stop::TooLarge(max)) => {
                return KvResponse::Reply(Reply::err(format!(
                    "the script's writes take more than one write takes here ({max} bytes); nothing it wrote applied"
                )))
            }
        };
        // A killed script changes nothing (nor does the transaction around
        // it); one that failed keeps what it wrote before, as in Redis.
        if killed {
            return KvResponse::Reply(replies.pop().unwrap_or_else(|| Reply::err("killed")));
        }
        let reply = match call.transaction {
            Some(_) => Reply::Array(replies),
            None => replies.pop().unwrap_or(Reply::Nil),
        };
        // What it read without writing must be what the keys still hold
        // (each command read the state as it then was).
        if !run.wrote() {
            match kv.machine.script_unchanged(shared.host.storage(), &run) {
                Ok(true) => return KvResponse::Reply(reply),
                Ok(false) => continue,
                Err(e) => return KvResponse::Unavailable(e.to_string()),
            }
        }
        let Some(write) = run.into_write(&kv.group.name) else { return KvResponse::Reply(reply) };
        match crate::router::propose(kv, write, timeout).await {
            KvResponse::Reply(Reply::NilArray) => continue,
            KvResponse::Reply(Reply::Error(e)) => return KvResponse::Reply(Reply::Error(e)),
            KvResponse::Reply(_) => return KvResponse::Reply(reply),
            other => return other,
        }
    }
    KvResponse::Reply(Reply::Error(format!(
        "TRYAGAIN the script's keys changed under it {RUNS} times in a row; nothing it wrote applied"
    )))
}

/// Run a call's steps in order on the script's own thread: their replies,
/// up to a killed script's (the last then, and `true`), or why they
/// stopped.
fn run_steps(steps: &[Step], calls: &mut LeaderCalls, kill: &Arc<AtomicBool>) -> Result<(Vec<Reply>, bool), Stop> {
    let mut replies = Vec::with_capacity(steps.len());
    for step in steps {
        let reply = match step {
            Step::Op(op) => {
                calls.read_only = false;
                calls.cross_slot = false;
                calls.op(op.clone())?
            }
            Step::Eval(e) => {
                let (flags, code) = match script_lua::shebang(&e.body) {
                    Ok(f) => f,
                    Err(r) => {
                        replies.push(r);
                        continue;
                    }
                };
                calls.read_only = e.read_only;
                calls.cross_slot = flags.allow_cross_slot_keys;
                let script = Run { sha: &e.sha, code, keys: &e.keys, args: &e.args, kill: kill.clone() };
                script_lua::run(script, calls)?
            }
        };
        let killed = matches!(&reply, Reply::Error(e) if e.starts_with(script_lua::KILLED));
        replies.push(reply);
        if killed && kill.load(Ordering::Relaxed) {
            return Ok((replies, true));
        }
    }
    Ok((replies, false))
}

/// Whether the versions WATCH read in `kv`'s PRG are still its keys'.
fn watch_holds(shared: &Shared, kv: &KvGroup, w: &Watch, now_ms: u64) -> Result<bool, KvResponse> {
    if w.prg.as_str() != &*kv.group.name {
        return Ok(false);
    }
    let keys: Vec<Vec<u8>> = w.keys.iter().map(|(k, _)| k.clone()).collect();
    let read = kv.machine.read(shared.host.storage(), &ReadOp::Versions { keys }, now_ms);
    let versions = match read {
        Ok(Ok(Reply::Array(mut parts))) if parts.len() == 2 => parts.pop(),
        Ok(Ok(_)) => None,
        Ok(Err(r)) => return Err(crate::router::refused(r)),
        Err(e) => return Err(KvResponse::Unavailable(e.to_string())),
    };
    let Some(Reply::Array(versions)) = versions else {
        return Err(KvResponse::Unavailable("WATCH's versions could not be read".into()));
    };
    Ok(w.keys.iter().zip(&versions).all(|((_, want), have)| matches!(have, Reply::Int(v) if *v as u64 == *want)))
}

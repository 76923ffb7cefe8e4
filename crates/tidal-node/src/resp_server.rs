//! The Redis-protocol server. Each connection decodes every complete
//! request in its buffer (pipelining), answers them in order, and writes the
//! replies back in one write. Data commands go through the router; the rest
//! are answered from connection state. Consecutive pipelined writes (or
//! reads) run together ([`Run`]) without changing what the client can
//! observe: replies stay in order and each command sees the effects of the
//! ones before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::command_stats::Call;
use crate::script::{ScriptCall, Step};
use bytes::BytesMut;
use tidal_core::dice::Dice;
use tidal_core::ids::DEFAULT_TENANT;
use tidal_core::kv::{
    command_reply, command_spec, config_get, config_set, found_nothing, hello_reply, info_reply, lookup, node_limits,
    parse, Blocking, ClientSetInfoAttr, Command, ConfigView, ConnCmd, HelloView, InfoView, KeyspaceCmd, Kind, Merge,
    PubSubCmd, ReadOp, Reply, ReplyMode, ScanPage, ScriptCmd, TxOp, Watch as Watched, WriteOp, BUSY_REPLY_THRESHOLD,
};
use tidal_core::resp::{encode, encode_push, Proto, RequestDecoder};
use tidal_raft::transport::{Acceptor, BoxStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::forward::KvRequest;
use crate::node::Shared;
use crate::pubsub::{self, Subscriptions};
use crate::scan::ScanPos;

/// The Redis version whose replies tidal follows.
pub const REDIS_VERSION: &str = "7.2.0";

pub async fn serve(shared: Arc<Shared>, listener: Arc<dyn Acceptor>) {
    let listener: Arc<dyn Acceptor> = match shared.config.security.tls.clone() {
        Some(tls) if shared.config.security.client_tls => {
            match crate::tls::TlsAcceptor::new(listener, tls, shared.shutdown.clone()) {
                Ok(a) => Arc::new(crate::tls::TlsStreams(a)),
                Err(e) => {
                    tracing::error!(error = %e, "redis server failed");
                    return;
                }
            }
        }
        _ => listener,
    };
    let mut stop = shared.shutdown.clone();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok((s, from)) if shared.connections.load(Ordering::Relaxed) >= shared.config.clients.max => {
                    shared.refused_clients.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(refuse(s, shared.config.clients.write));
                    tracing::debug!(client = %from, "refused: maxclients reached");
                }
                Ok((s, from)) => {
                    tokio::spawn(connection(shared.clone(), s, from));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "client accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Tell a client over `maxclients` so, as Redis does, and close.
async fn refuse(mut stream: BoxStream, within: Duration) {
    let _ = tokio::time::timeout(within, stream.write_all(b"-ERR max number of clients reached\r\n")).await;
}

/// Write `bytes`, unless the client leaves them untaken for `within`:
/// `false` when the connection should close.
async fn put(stream: &mut BoxStream, bytes: &[u8], within: Duration) -> bool {
    matches!(tokio::time::timeout(within, stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Per-connection state that commands like HELLO and CLIENT change.
struct Conn {
    id: u64,
    proto: Proto,
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_ver: Option<Vec<u8>>,
    addr: String,
    /// Whether the client may run commands: it gave the password, or the
    /// node asks for none.
    authed: bool,
    /// Between MULTI and EXEC (or DISCARD): the commands queued.
    multi: Option<Multi>,
    /// The keys WATCH read, with their versions, until EXEC, DISCARD,
    /// UNWATCH or RESET.
    watch: Option<Watch>,
    /// READONLY: reads of one PRG are served by this node's replica of it
    /// (see [`crate::follower_reads`]), until READWRITE or RESET.
    readonly: bool,
    /// Its pub/sub subscriptions, from the first SUBSCRIBE (or kin) on.
    subs: Option<Subscriptions>,
    /// CLIENT REPLY OFF: no replies until ON.
    replies_off: bool,
    /// CLIENT REPLY SKIP: no reply to the next command.
    skip_next: bool,
}

impl Conn {
    /// Whether it holds any subscription.
    fn subscribed(&self) -> bool {
        self.subs.as_ref().is_some_and(Subscriptions::any)
    }

    /// RESP2's subscribed mode: only the pub/sub commands, PING, QUIT and
    /// RESET may be sent (RESP3 interleaves messages with any reply).
    fn subscribed_resp2(&self) -> bool {
        self.proto == Proto::Resp2 && self.subscribed()
    }

    /// The messages waiting for it, appended to `out` until it holds
    /// `limit` bytes.
    fn take_messages(&mut self, out: &mut BytesMut, limit: usize) {
        while out.len() < limit {
            match self.subs.as_mut().and_then(Subscriptions::ready) {
                Some(d) => d.encode(self.proto, out),
                None => break,
            }
        }
    }
}

/// The mode `args` ask for when they are a CLIENT REPLY.
fn client_reply(args: &[Vec<u8>]) -> Option<ReplyMode> {
    let word = |i: usize, w: &str| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()));
    if args.len() != 3 || !word(0, "client") || !word(1, "reply") {
        return None;
    }
    [("on", ReplyMode::On), ("off", ReplyMode::Off), ("skip", ReplyMode::Skip)]
        .into_iter()
        .find_map(|(w, mode)| word(2, w).then_some(mode))
}

/// The commands a RESP2 connection in subscribed mode may send.
const SUBSCRIBED_MODE: &[&str] =
    &["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "ping", "quit", "reset"];

/// A transaction being queued.
#[derive(Default)]
struct Multi {
    /// The data commands and scripts, which EXEC sends to their PRG.
    ops: Vec<Step>,
    /// Every command queued, in order, for EXEC's replies.
    queued: Vec<Queued>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    failed: bool,
    /// What the data commands take, as their arguments' bytes: EXEC is
    /// one write, so together they must fit one.
    bytes: u64,
}

enum Queued {
    /// The next of `Multi::ops`.
    Data,
    /// Answered by the node at EXEC, in its place among the replies.
    Conn(ConnCmd),
    /// A command whose arguments are wrong: its error is its reply.
    Error(Reply),
    /// PUBLISH, SPUBLISH or PUBSUB, answered at EXEC in its place.
    PubSub(PubSubCmd),
}

/// What WATCH read: the slot of its keys and their versions.
struct Watch {
    slot: u32,
    read: Watched,
}

/// Redis Cluster's refusal of keys that span slots where one slot is needed.
pub(crate) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// Redis's refusal of a command before AUTH.
const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's refusal of a wrong password (or of a user other than `default`).
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether `user` and `pass` log in: only the `default` user exists, and
/// its password is the node's.
fn password_ok(shared: &Shared, user: Option<&[u8]>, pass: &[u8]) -> bool {
    let user_ok = user.is_none_or(|u| u == b"default");
    match &shared.config.security.password {
        Some(p) => user_ok && crate::http::same_secret(p, &String::from_utf8_lossy(pass)),
        None => user_ok,
    }
}

/// One task reads a round of requests, then writes its replies: the stream
/// is never read and written at once, so it needs no split.
async fn connection(shared: Arc<Shared>, mut stream: BoxStream, addr: String) {
    shared.connections.fetch_add(1, Ordering::Relaxed);
    // Room for one value at the limit plus its command and key; a whole
    // request within what one write may carry.
    let mut decoder = RequestDecoder::new(shared.config.max_value_bytes as usize + 64 * 1024)
        .max_request(shared.config.max_request_bytes() as usize)
        .max_args(shared.config.clients.max_args as i64)
        .max_inline(shared.config.clients.max_inline as usize);
    let mut conn = Conn {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        proto: Proto::Resp2,
        name: None,
        lib_name: None,
        lib_ver: None,
        addr,
        authed: shared.config.security.password.is_none(),
        multi: None,
        watch: None,
        readonly: false,
        subs: None,
        replies_off: false,
        skip_next: false,
    };
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut stop = shared.shutdown.clone();
    let mut stopping = false;
    let limits = shared.config.clients;
    'conn: loop {
        // Everything complete in the buffer, in order; a decode error ends
        // the connection after the requests before it are answered.
        let mut requests = Vec::new();
        let mut broken = None;
        while requests.len() < MAX_RUN {
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        let more_buffered = requests.len() == MAX_RUN;
        let mut run = Run::None;
        // Where the replies of a command CLIENT REPLY silences begin: they
        // are cut once it is answered (at the next command, or below).
        let mut silenced: Option<usize> = None;
        for args in requests {
            if let Some(mark) = silenced.take() {
                run.flush(&shared, conn.proto, &mut out).await;
                out.truncate(mark);
            }
            // CLIENT REPLY ON always answers; OFF and SKIP never do.
            let asked = client_reply(&args);
            let skipped = std::mem::take(&mut conn.skip_next);
            if asked != Some(ReplyMode::On) && (conn.replies_off || skipped || asked.is_some()) {
                run.flush(&shared, conn.proto, &mut out).await;
                silenced = Some(out.len());
            }
            shared.commands.fetch_add(1, Ordering::Relaxed);
            // Inside MULTI, as in Redis, an unknown command or a wrong
            // argument count is refused as it is queued (and aborts the
            // transaction); other bad arguments are answered at EXEC.
            let arg_bytes: usize = args.iter().map(Vec::len).sum();
            let spec = command_spec(&args);
            let stats = &shared.command_stats;
            // Counted once answered (a queued command counts with EXEC's).
            let mut call = match &spec {
                Ok(s) if conn.multi.is_none() => stats.start(s),
                Ok(_) => None,
                Err(_) => {
                    // A known command with the wrong argument count.
                    if let Some(s) = args.first().and_then(|n| lookup(n)) {
                        stats.rejected(s);
                    }
                    None
                }
            };
            if conn.subscribed_resp2() {
                if let Some(s) = spec.as_ref().ok().filter(|s| !SUBSCRIBED_MODE.contains(&s.name)) {
                    run.flush(&shared, conn.proto, &mut out).await;
                    stats.rejected(s);
                    send(&shared, &pubsub::not_in_subscribed_mode(s.name), conn.proto, &mut out);
                    continue;
                }
            }
            let parsed = match too_large(&shared, &args) {
                Some(reply) => Err((reply, true)),
                None => match (conn.multi.is_some(), spec.clone()) {
                    (true, Err(reply)) => Err((reply, true)),
                    (true, Ok(spec)) if spec.refused_in_multi() => {
                        Err((Reply::err("Command not allowed inside a transaction"), true))
                    }
                    (in_multi, _) => parse(args)
                        .and_then(|c| restore_too_large(&shared, &c).map_or(Ok(c), Err))
                        .map_err(|reply| (reply, !in_multi)),
                },
            };
            let cmd = match parsed {
                Ok(c) => seeded(&shared, c),
                Err((reply, refused)) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    match conn.multi.as_mut() {
                        Some(m) if refused => m.failed = true,
                        Some(m) if conn.authed => {
                            m.queued.push(Queued::Error(reply));
                            send(&shared, &Reply::simple("QUEUED"), conn.proto, &mut out);
                            continue;
                        }
                        _ => {}
                    }
                    stats.done(call, &reply);
                    send(&shared, &reply, conn.proto, &mut out);
                    continue;
                }
            };
            let before_auth = matches!(
                cmd,
                Command::Conn(ConnCmd::Auth { .. } | ConnCmd::Hello { .. } | ConnCmd::Quit | ConnCmd::Reset)
            );
            if !conn.authed && !before_auth {
                run.flush(&shared, conn.proto, &mut out).await;
                if let Ok(s) = spec {
                    stats.rejected(s);
                }
                send(&shared, &Reply::Error(NOAUTH.into()), conn.proto, &mut out);
                continue;
            }
            // A script past its time limit: only a few commands run, as in
            // Redis; a queued command spoils its transaction, an EXEC
            // discards it.
            if shared.scripts.busy() && !crate::script::allowed_while_busy(&cmd) {
                run.flush(&shared, conn.proto, &mut out).await;
                let reply = match (&cmd, conn.multi.as_mut()) {
                    (Command::Conn(ConnCmd::Exec), Some(_)) => {
                        conn.multi = None;
                        conn.watch = None;
                        Reply::Error(format!("EXECABORT Transaction discarded because of: {}", crate::script::BUSY))
                    }
                    (_, Some(m)) => {
                        m.failed = true;
                        Reply::Error(crate::script::BUSY.into())
                    }
                    _ => Reply::Error(crate::script::BUSY.into()),
                };
                stats.done(call.take(), &reply);
                send(&shared, &reply, conn.proto, &mut out);
                continue;
            }
            if conn.multi.is_some() && queued_in_multi(&cmd) {
                let reply = queue(&shared, &mut conn, cmd, arg_bytes);
                send(&shared, &reply, conn.proto, &mut out);
                continue;
            }
            match cmd {
                Command::Write(op) => run.push_write(&shared, conn.proto, &mut out, op, call.take()).await,
                Command::Read(op) => run.push_read(&shared, conn.proto, &mut out, op, conn.readonly, call.take()).await,
                Command::Keyspace(k) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    let reply = keyspace(&shared, k).await;
                    stats.done(call.take(), &reply);
                    send(&shared, &reply, conn.proto, &mut out);
                }
                Command::Block(b) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    // The replies before it go out while the client waits.
                    if !out.is_empty() && !put(&mut stream, &out.split(), limits.write).await {
                        break 'conn;
                    }
                    silenced = silenced.map(|_| 0);
                    let Some(reply) = blocked(&shared, conn.id, &mut stream, &mut buf, &mut stop, b).await else {
                        break 'conn;
                    };
                    stats.done(call.take(), &reply);
                    send(&shared, &reply, conn.proto, &mut out);
                }
                Command::Script(c) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    let reply = crate::script::command(&shared, c).await;
                    stats.done(call.take(), &reply);
                    send(&shared, &reply, conn.proto, &mut out);
                }
                Command::PubSub(p) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    let (id, proto) = (conn.id, conn.proto);
                    if p.changes_subscriptions() {
                        // Confirmations go out whatever CLIENT REPLY said.
                        silenced = None;
                        pubsub::change(&shared, &mut conn.subs, id, p, proto, &mut out);
                        stats.done(call.take(), &Reply::Ok);
                    } else {
                        let reply = pubsub::query(&shared, p).await;
                        stats.done(call.take(), &reply);
                        send(&shared, &reply, proto, &mut out);
                    }
                }
                // In subscribed mode a RESP2 PING answers in the shape of
                // a message.
                Command::Conn(ConnCmd::Ping(m)) if conn.subscribed_resp2() => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    let pong = [Reply::bulk("pong"), Reply::Bulk(m.unwrap_or_default())];
                    encode_push(&pong, conn.proto, &mut out);
                    stats.done(call.take(), &Reply::Ok);
                }
                Command::Conn(c) => {
                    run.flush(&shared, conn.proto, &mut out).await;
                    let (reply, close) = conn_cmd(&shared, &mut conn, c).await;
                    stats.done(call.take(), &reply);
                    send(&shared, &reply, conn.proto, &mut out);
                    if close {
                        if let Some(mark) = silenced {
                            out.truncate(mark);
                        }
                        put(&mut stream, &out, limits.write).await;
                        break 'conn;
                    }
                }
            }
            // Past the reply buffer the replies go out now, but never a
            // silenced one: only what comes before its mark.
            if out.len() > limits.reply_buffer {
                let ready = match silenced.as_mut() {
                    Some(mark) => std::mem::replace(mark, 0),
                    None => out.len(),
                };
                if !put(&mut stream, &out.split_to(ready), limits.write).await {
                    break 'conn;
                }
            }
        }
        run.flush(&shared, conn.proto, &mut out).await;
        if let Some(mark) = silenced {
            out.truncate(mark);
        }
        // Messages that came meanwhile go out with the replies, so a
        // client that never pauses still gets them.
        conn.take_messages(&mut out, limits.reply_buffer);
        if let Some(e) = broken {
            encode(&e.to_reply(), conn.proto, &mut out);
            put(&mut stream, &out, limits.write).await;
            break;
        }
        if !out.is_empty() && !put(&mut stream, &out.split(), limits.write).await {
            break;
        }
        if more_buffered {
            continue;
        }
        // Idle past the limit (when there is one): closed, as Redis's
        // `timeout` closes it; not while subscribed, as in Redis.
        let idle_limit = limits.idle.filter(|_| !conn.subscribed());
        let idle = async {
            match idle_limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        // A stopping node closes the connection here, between requests:
        // every request read has been answered, and one the client sent
        // only in part is read to its end first (the node's stop bounds
        // how long that may take).
        if stopping && buf.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            // Err: the node is gone without a word.
            r = stop.changed(), if !stopping => match r {
                Ok(()) => stopping = true,
                Err(_) => break,
            },
            // None: the hub cut this subscriber off (too far behind).
            d = Subscriptions::next(&mut conn.subs) => match d {
                Some(d) => {
                    d.encode(conn.proto, &mut out);
                    conn.take_messages(&mut out, limits.reply_buffer);
                }
                None => break,
            },
            _ = idle => break,
        }
    }
    shared.connections.fetch_sub(1, Ordering::Relaxed);
}

/// The count of this process's blocking commands, for their tokens.
static NEXT_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Most bytes a blocked client may send ahead, buffered for after its
/// command; past this the node stops reading until the command ends.
const BLOCKED_READ_AHEAD: usize = 1 << 20;

/// A blocking command, waited for while the client stays: `None` when it
/// closed the connection or the node is stopping. Commands it pipelines
/// meanwhile wait in `buf` for their turn.
///
/// A client that leaves is noticed at once here, and the leader holding
/// its round is told to end it without popping; only a pop already
/// proposed when that word arrives is lost with the connection, as in
/// Redis when a connection drops just after its reply was written.
///
/// CLIENT UNBLOCK from another connection ends the command the same way,
/// but the client is still here, so the round in progress is waited for:
/// an element it popped is this client's answer, never dropped.
async fn blocked(
    shared: &Arc<Shared>,
    id: u64,
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    b: Blocking,
) -> Option<Reply> {
    // Unique in the cluster: this node's id, then a count of its blocking
    // commands.
    let token = (shared.config.node_id << 40) | (NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) & ((1 << 40) - 1));
    let (unblock_tx, mut unblock_rx) = tokio::sync::oneshot::channel();
    shared.unblockers.lock().expect("unblockers lock").insert(id, unblock_tx);
    let ended = AtomicBool::new(false);
    let mut with_error = None;
    let answer = {
        let work = shared.block(DEFAULT_TENANT, &b, token, &ended);
        tokio::pin!(work);
        loop {
            tokio::select! {
                r = &mut work => break Some(r),
                how = &mut unblock_rx, if with_error.is_none() => {
                    with_error = Some(how.unwrap_or(false));
                    ended.store(true, Ordering::SeqCst);
                    let (shared, b) = (shared.clone(), b.clone());
                    tokio::spawn(async move { shared.unblock(DEFAULT_TENANT, &b, token).await });
                }
                r = stream.read_buf(buf), if buf.len() < BLOCKED_READ_AHEAD => match r {
                    Ok(0) | Err(_) => break None,
                    Ok(_) => {}
                },
                _ = stop.changed() => break None,
            }
        }
    };
    shared.unblockers.lock().expect("unblockers lock").remove(&id);
    match answer {
        // The client left: its round at the leader must not pop for it.
        None if with_error.is_none() => {
            let shared = shared.clone();
            tokio::spawn(async move { shared.unblock(DEFAULT_TENANT, &b, token).await });
            None
        }
        Some(r) if with_error == Some(true) && found_nothing(&r) => {
            Some(Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()))
        }
        answer => answer,
    }
}

fn too_large(shared: &Shared, args: &[Vec<u8>]) -> Option<Reply> {
    let max = shared.config.max_value_bytes;
    let big = args.iter().skip(1).map(Vec::len).max().unwrap_or(0) as u64;
    (big > max).then(|| {
        Reply::err(format!(
            "value of {big} bytes exceeds the limit of {max} bytes (--max-value-bytes); nothing was written"
        ))
    })
}

/// What a RESTORE's value takes once decoded (an LZF-compressed payload
/// can decode to many times its size); 0 for any other write.
fn restored_size(op: &WriteOp) -> usize {
    match op {
        WriteOp::RestorePayload { load: Ok(r), .. } => r.value.size(),
        _ => 0,
    }
}

/// A RESTORE whose value, decoded, is larger than this node takes in one
/// write.
fn restore_too_large(shared: &Shared, cmd: &Command) -> Option<Reply> {
    let Command::Write(op) = cmd else { return None };
    let (size, max) = (restored_size(op) as u64, shared.config.max_request_bytes());
    (size > max).then(|| {
        Reply::err(format!(
            "DUMP payload's value takes {size} bytes once decoded, more than one write takes here ({max} bytes); nothing was written"
        ))
    })
}

/// Most pipelined requests taken from the buffer in one round.
const MAX_RUN: usize = 512;

/// Consecutive data commands of one connection, held back so they can run
/// together. Writes run as [`Shared::write_many`] (in order per PRG, PRGs
/// at once); reads have no effects, so a run of them runs concurrently. A
/// write after reads (or a read after writes), and every other command,
/// first waits for the run before it: each command observes the effects of
/// the ones the client sent earlier, and replies go out in order.
enum Run {
    None,
    /// Writes, and each one's call (for INFO commandstats).
    Writes(Vec<WriteOp>, Vec<Option<Call>>),
    /// Reads, whether the connection is READONLY, and each one's call.
    Reads(Vec<ReadOp>, bool, Vec<Option<Call>>),
}

impl Run {
    async fn push_write(
        &mut self,
        shared: &Arc<Shared>,
        proto: Proto,
        out: &mut BytesMut,
        op: WriteOp,
        call: Option<Call>,
    ) {
        if !matches!(self, Run::Writes(..)) {
            self.flush(shared, proto, out).await;
            *self = Run::Writes(Vec::new(), Vec::new());
        }
        if let Run::Writes(ops, calls) = self {
            ops.push(op);
            calls.push(call);
        }
    }

    async fn push_read(
        &mut self,
        shared: &Arc<Shared>,
        proto: Proto,
        out: &mut BytesMut,
        op: ReadOp,
        ro: bool,
        call: Option<Call>,
    ) {
        if !matches!(self, Run::Reads(_, r, _) if *r == ro) {
            self.flush(shared, proto, out).await;
            *self = Run::Reads(Vec::new(), ro, Vec::new());
        }
        if let Run::Reads(ops, _, calls) = self {
            ops.push(op);
            calls.push(call);
        }
    }

    /// Execute the run and encode its replies, in order.
    async fn flush(&mut self, shared: &Arc<Shared>, proto: Proto, out: &mut BytesMut) {
        let (replies, calls) = match std::mem::replace(self, Run::None) {
            Run::None => return,
            Run::Writes(ops, calls) => (shared.write_many(DEFAULT_TENANT, ops).await, calls),
            Run::Reads(ops, ro, calls) => (read_many(shared, ops, ro).await, calls),
        };
        for (r, call) in replies.iter().zip(calls) {
            shared.command_stats.done(call, r);
            send(shared, r, proto, out);
        }
    }
}

/// Encode `reply`, counting it if it is an error of the cluster's making.
fn send(shared: &Shared, reply: &tidal_core::kv::Reply, proto: Proto, out: &mut BytesMut) {
    if reply.is_server_error() {
        shared.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    shared.command_stats.reply(reply);
    encode(reply, proto, out);
}

/// Run reads concurrently; replies in the order of `ops`.
async fn read_many(shared: &Arc<Shared>, ops: Vec<ReadOp>, readonly: bool) -> Vec<Reply> {
    if ops.len() == 1 {
        let op = ops.into_iter().next().expect("one op");
        return vec![shared.read_from(DEFAULT_TENANT, op, readonly).await];
    }
    let mut set = tokio::task::JoinSet::new();
    let n = ops.len();
    for (i, op) in ops.into_iter().enumerate() {
        let s = shared.clone();
        set.spawn(async move { (i, s.read_from(DEFAULT_TENANT, op, readonly).await) });
    }
    let mut out: Vec<Option<Reply>> = vec![None; n];
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, reply)) => out[i] = Some(reply),
            Err(e) => tracing::error!(error = %e, "pipelined read task failed"),
        }
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Reply::err("internal: a pipelined read got no reply"))).collect()
}

async fn broadcast_merge(shared: &Arc<Shared>, req: KvRequest, how: Merge) -> Reply {
    match shared.broadcast(DEFAULT_TENANT, req).await {
        Ok(replies) => tidal_core::kv::merge(&how, replies),
        Err(e) => e,
    }
}

/// The changes every PRG's leader has applied since its replica started
/// (Redis's `dirty` count, summed over the keyspace), or `None` when a PRG
/// did not answer.
async fn applied_changes(shared: &Arc<Shared>) -> Option<u64> {
    match broadcast_merge(shared, KvRequest::Read(ReadOp::Changes), Merge::SumInts).await {
        Reply::Int(n) => Some(n.max(0) as u64),
        _ => None,
    }
}

/// A keyless read (DBSIZE, KEYS) that sees every slot once. Between a
/// move's commit and its target's adoption the moved slots are served by
/// neither PRG, so the read waits while this node sees a move in that step
/// (within the retry budget), and is taken again if the routing changed
/// while it ran.
async fn settled_merge(shared: &Arc<Shared>, req: KvRequest, how: Merge) -> Reply {
    let handing_off = |s: &tidal_core::ClusterState| {
        s.moves.values().any(|m| m.tenant == DEFAULT_TENANT && m.phase == tidal_core::slot_move::MovePhase::Committed)
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(shared.config.retry_budget_ms);
    let mut changed = shared.cache.subscribe();
    loop {
        let before = shared.cache.get();
        let late = tokio::time::Instant::now() >= deadline;
        if !handing_off(&before) || late {
            let reply = broadcast_merge(shared, req.clone(), how.clone()).await;
            let after = shared.cache.get();
            if late || (after.routing_epoch == before.routing_epoch && !handing_off(&after)) {
                return reply;
            }
        }
        // The node's watch of the control plane brings the next change as
        // soon as it is made.
        let _ = tokio::time::timeout_at(deadline, changed.changed()).await;
    }
}

async fn keyspace(shared: &Arc<Shared>, k: KeyspaceCmd) -> Reply {
    match k {
        KeyspaceCmd::DbSize => settled_merge(shared, KvRequest::Read(ReadOp::DbSize), Merge::SumInts).await,
        KeyspaceCmd::FlushDb { .. } | KeyspaceCmd::FlushAll { .. } => {
            broadcast_merge(shared, KvRequest::Write(WriteOp::Flush), Merge::Ok).await
        }
        KeyspaceCmd::Keys(pattern) => {
            settled_merge(shared, KvRequest::Read(ReadOp::Keys { pattern }), Merge::Concat).await
        }
        KeyspaceCmd::RandomKey => random_key(shared).await,
        KeyspaceCmd::Scan { cursor, pattern, count, type_filter } => {
            scan(shared, cursor, pattern, count.unwrap_or(10), type_filter).await
        }
    }
}

/// A command that picks at random (SPOP, SRANDMEMBER, HRANDFIELD) gets
/// its seed here, from the node's clock and command count: a write's
/// replicas all pick what its seed says, and a run under simulation repeats.
pub(crate) fn seeded(shared: &Shared, mut cmd: Command) -> Command {
    let seed = match &mut cmd {
        Command::Write(op) => op.seed_mut(),
        Command::Read(op) => op.seed_mut(),
        _ => None,
    };
    if let Some(seed) = seed {
        *seed = node_dice(shared).roll();
    }
    // OBJECT ENCODING judges by this node's CONFIG SET thresholds, and a
    // stream's nodes grow as they say.
    if let Command::Read(op) = &mut cmd {
        if let Some(limits) = op.limits_mut() {
            *limits = shared.encodings.lock().expect("encodings lock").clone();
        }
    }
    if let Command::Write(op) = &mut cmd {
        if let Some(node) = op.node_limits_mut() {
            *node = node_limits(&shared.encodings.lock().expect("encodings lock"));
        }
    }
    cmd
}

/// The node's random choices: from its clock and command count, so a run
/// under simulation repeats.
fn node_dice(shared: &Shared) -> Dice {
    Dice::new(shared.clock.now_ms() ^ shared.commands.load(Ordering::Relaxed).rotate_left(32))
}

/// RANDOMKEY: every PRG offers a live key found from a made-up position,
/// and one of the offers is the answer (nil when no PRG has a key). The
/// positions come from the node's clock and command count, so a run under
/// simulation repeats.
async fn random_key(shared: &Arc<Shared>) -> Reply {
    let mut dice = node_dice(shared);
    let seed = dice.roll();
    let replies = match shared.broadcast(DEFAULT_TENANT, KvRequest::Read(ReadOp::RandomKey { seed })).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    let offers: Vec<Reply> = replies.into_iter().filter(|r| matches!(r, Reply::Bulk(_))).collect();
    match offers.len() {
        0 => Reply::Nil,
        n => offers[dice.below(n as u64) as usize].clone(),
    }
}

/// One SCAN step: walk the slots in order from the cursor's position, each
/// page from the PRG that owns the slot now, until `count` keys were
/// examined or the keyspace ends.
async fn scan(
    shared: &Arc<Shared>,
    cursor: u64,
    pattern: Option<Vec<u8>>,
    count: usize,
    type_filter: Option<Vec<u8>>,
) -> Reply {
    let Some(mut pos) = shared.scans.lock().expect("scan lock").resume(DEFAULT_TENANT, cursor) else {
        // Unknown cursors end the scan, as Redis does for garbage cursors.
        return Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    };
    let kind = match type_filter {
        None => None,
        Some(name) => match Kind::from_name(&name) {
            Some(k) => Some(k),
            // No key holds a type that does not exist.
            None => return Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]),
        },
    };
    let mut keys: Vec<Reply> = Vec::new();
    let budget = count.max(1);
    let Some(slots) = shared.cache.get().tenants.get(DEFAULT_TENANT).map(|t| t.slots) else {
        return Reply::err(format!("tenant {DEFAULT_TENANT} does not exist"));
    };
    while pos.slot < slots && keys.len() < budget {
        // The run of slots from the cursor's that one PRG owns.
        let Some((prg, end)) = slot_run(&shared.cache.get(), DEFAULT_TENANT, pos.slot) else {
            return Reply::err(format!("slot {} of tenant {DEFAULT_TENANT} has no owner", pos.slot));
        };
        let count = budget - keys.len();
        let req =
            ReadOp::Scan { slots: pos.slot..end, after: pos.after.clone(), count, pattern: pattern.clone(), kind };
        let reply = shared.send(&prg, KvRequest::Read(req)).await;
        let Some(page) = ScanPage::from_reply(&reply) else {
            return reply;
        };
        keys.extend(page.keys.into_iter().map(Reply::Bulk));
        match page.next_after {
            Some(k) => {
                pos.slot = tidal_core::slot::slot_of(&k, slots);
                pos.after = Some(k);
            }
            None => {
                pos.slot = page.next_slot.max(pos.slot + 1);
                pos.after = None;
            }
        }
    }
    let next = if pos.slot >= slots {
        0
    } else {
        shared.scans.lock().expect("scan lock").remember(ScanPos { tenant: DEFAULT_TENANT.to_string(), ..pos })
    };
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}

/// The PRG that owns `slot` of `tenant`, and the end of the run of slots
/// after it that the same PRG owns.
fn slot_run(state: &tidal_core::ClusterState, tenant: &str, slot: u32) -> Option<(tidal_core::PrgId, u32)> {
    let t = state.tenants.get(tenant)?;
    let owner = *t.owner.get(slot as usize)?;
    let end = (slot..t.slots).find(|s| t.owner[*s as usize] != owner).unwrap_or(t.slots);
    Some((t.prg_of_slot(slot), end))
}

fn config_view(shared: &Shared) -> ConfigView {
    let port = shared.info.client_addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let bind = shared.info.client_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default();
    ConfigView {
        port,
        bind,
        max_value_bytes: shared.config.max_value_bytes,
        maxclients: shared.config.clients.max,
        timeout_secs: shared.config.clients.idle.map_or(0, |d| d.as_secs()),
        encodings: shared.encodings.lock().expect("encodings lock").clone(),
        notify_keyspace_events: shared.notify_flags.load(Ordering::Relaxed),
    }
}

fn client_line(conn: &Conn) -> String {
    let s = |v: &Option<Vec<u8>>| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    format!(
        "id={} addr={} name={} db=0 resp={} lib-name={} lib-ver={}\n",
        conn.id,
        conn.addr,
        s(&conn.name),
        if conn.proto == Proto::Resp3 { 3 } else { 2 },
        s(&conn.lib_name),
        s(&conn.lib_ver)
    )
}

/// Whether a command sent between MULTI and EXEC is queued (Redis runs
/// EXEC, DISCARD, MULTI, WATCH, QUIT and RESET at once).
fn queued_in_multi(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Conn(
            ConnCmd::Exec | ConnCmd::Discard | ConnCmd::Multi | ConnCmd::Watch(_) | ConnCmd::Quit | ConnCmd::Reset
        )
    )
}

/// The one slot of a transaction: its watched keys' and queued commands'.
fn tx_slot(conn: &Conn, state: &tidal_core::ClusterState) -> Option<u32> {
    let queued = conn
        .multi
        .iter()
        .flat_map(|m| &m.ops)
        .find_map(|step| step.keys().first().and_then(|k| state.slot_of(DEFAULT_TENANT, k)));
    conn.watch.as_ref().map(|w| w.slot).or(queued)
}

/// Queue a command of a transaction, or refuse it (which aborts the
/// transaction): a command that spans the keyspace, or keys of another
/// slot than the transaction's, cannot run atomically on one PRG.
fn queue(shared: &Shared, conn: &mut Conn, cmd: Command, arg_bytes: usize) -> Reply {
    let state = shared.cache.get();
    let slot = tx_slot(conn, &state);
    let Some(multi) = conn.multi.as_mut() else { return Reply::err("internal: no transaction") };
    let op = match cmd {
        Command::Conn(c) => {
            multi.queued.push(Queued::Conn(c));
            return Reply::simple("QUEUED");
        }
        Command::PubSub(p) if p.changes_subscriptions() => {
            multi.failed = true;
            return Reply::err("a subscription cannot change inside a transaction here");
        }
        Command::PubSub(p) => {
            multi.queued.push(Queued::PubSub(p));
            return Reply::simple("QUEUED");
        }
        Command::Write(op) => TxOp::Write(op),
        // Inside a transaction it does not wait: it pops what is there.
        Command::Block(b) => b.op.into_tx(),
        Command::Read(op) => TxOp::Read(op),
        Command::Keyspace(_) => {
            multi.failed = true;
            return Reply::err("this command spans every slot and cannot run inside a transaction on a cluster");
        }
        // A script runs at EXEC with the other commands, in its place.
        Command::Script(ScriptCmd::Eval { body, keys, args, read_only }) => {
            match crate::script::resolve(shared, body, keys, args, read_only) {
                Ok(eval) => {
                    let keys: Vec<&[u8]> = eval.keys.iter().map(Vec::as_slice).collect();
                    let want = slot.or_else(|| keys.first().and_then(|k| state.slot_of(DEFAULT_TENANT, k)));
                    if keys.iter().any(|k| state.slot_of(DEFAULT_TENANT, k) != want) {
                        multi.failed = true;
                        return Reply::Error(CROSSSLOT.into());
                    }
                    multi.bytes += arg_bytes as u64;
                    multi.ops.push(Step::Eval(eval));
                    multi.queued.push(Queued::Data);
                }
                // As Redis: queued, and its error is its reply at EXEC.
                Err(e) => multi.queued.push(Queued::Error(e)),
            }
            return Reply::simple("QUEUED");
        }
        Command::Script(_) => {
            multi.failed = true;
            return Reply::err("SCRIPT cannot run inside a transaction here");
        }
    };
    if !op.transactional() {
        multi.failed = true;
        return Reply::err("this command cannot run inside a transaction on a cluster");
    }
    // The transaction's slot, or this command's first key's when it is
    // the first to name one: every key must be in it.
    let keys = op.keys();
    let want = slot.or_else(|| keys.first().and_then(|k| state.slot_of(DEFAULT_TENANT, k)));
    if keys.iter().any(|k| want.is_none() || state.slot_of(DEFAULT_TENANT, k) != want) {
        multi.failed = true;
        return Reply::Error(CROSSSLOT.into());
    }
    let bytes = match &op {
        TxOp::Write(w) => arg_bytes.max(restored_size(w)),
        TxOp::Read(_) => arg_bytes,
    };
    multi.bytes += bytes as u64;
    let max = shared.config.max_request_bytes();
    if multi.bytes > max {
        multi.failed = true;
        return Reply::err(format!(
            "the transaction's commands take more than one write takes here ({max} bytes); it is aborted"
        ));
    }
    multi.ops.push(Step::Op(op));
    multi.queued.push(Queued::Data);
    Reply::simple("QUEUED")
}

/// WATCH `keys`: read their versions from the PRG that owns their slot.
async fn watch(shared: &Arc<Shared>, conn: &mut Conn, keys: Vec<Vec<u8>>) -> Reply {
    let state = shared.cache.get();
    let slots: Vec<Option<u32>> = keys.iter().map(|k| state.slot_of(DEFAULT_TENANT, k)).collect();
    let slot = match slots.first().copied().flatten() {
        Some(s) => s,
        None => return Reply::Error("CLUSTERDOWN the cluster is still starting: no tenants yet".into()),
    };
    if slots.iter().any(|s| *s != Some(slot)) || conn.watch.as_ref().is_some_and(|w| w.slot != slot) {
        return Reply::Error(CROSSSLOT.into());
    }
    let (prg, versions) = match shared.versions(DEFAULT_TENANT, keys.clone()).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let w = conn.watch.get_or_insert_with(|| Watch { slot, read: Watched { prg: prg.clone(), keys: Vec::new() } });
    if w.read.prg != prg {
        // The slot moved between two WATCHes: the first versions say
        // nothing about the PRG that serves the slot now, so EXEC fails,
        // as it would after a change to a watched key.
        w.read.prg.clear();
    }
    w.read.keys.extend(keys.into_iter().zip(versions));
    Reply::Ok
}

/// EXEC: run the queued commands as one transaction on the PRG of their
/// slot, then answer the queued connection commands in their places.
async fn exec(shared: &Arc<Shared>, conn: &mut Conn) -> Reply {
    let Some(multi) = conn.multi.take() else { return Reply::err("EXEC without MULTI") };
    let watch = conn.watch.take();
    if multi.failed {
        return Reply::Error(EXECABORT.into());
    }
    let Multi { ops, queued, .. } = multi;
    let mut data = if ops.iter().any(|s| matches!(s, Step::Eval(_))) {
        // Scripts run at the leader, with the other commands around them.
        let call = ScriptCall { steps: ops, transaction: Some(watch.map(|w| w.read)), route: None };
        match crate::script::send(shared, call).await {
            Reply::Array(replies) => replies.into_iter(),
            other => return other,
        }
    } else {
        let ops: Vec<TxOp> = ops
            .into_iter()
            .filter_map(|s| match s {
                Step::Op(op) => Some(op),
                Step::Eval(_) => None,
            })
            .collect();
        let key = ops
            .iter()
            .find_map(|op| op.keys().first().map(|k| k.to_vec()))
            .or_else(|| watch.as_ref().and_then(|w| w.read.keys.first().map(|(k, _)| k.clone())));
        match key {
            Some(key) => match shared.exec(DEFAULT_TENANT, &key, watch.map(|w| w.read), ops).await {
                Reply::Array(replies) => replies.into_iter(),
                other => return other,
            },
            None => Vec::new().into_iter(),
        }
    };
    let mut replies = Vec::with_capacity(queued.len());
    for q in queued {
        replies.push(match q {
            Queued::Data => data.next().unwrap_or_else(|| Reply::err("internal: a transaction's reply is missing")),
            Queued::Conn(c) => Box::pin(conn_cmd(shared, conn, c)).await.0,
            Queued::PubSub(p) => pubsub::query(shared, p).await,
            Queued::Error(e) => e,
        });
    }
    Reply::Array(replies)
}

async fn conn_cmd(shared: &Arc<Shared>, conn: &mut Conn, c: ConnCmd) -> (Reply, bool) {
    let reply = match c {
        ConnCmd::Multi if conn.multi.is_some() => Reply::err("MULTI calls can not be nested"),
        ConnCmd::Multi => {
            conn.multi = Some(Multi::default());
            Reply::Ok
        }
        ConnCmd::Exec => exec(shared, conn).await,
        ConnCmd::Discard if conn.multi.is_none() => Reply::err("DISCARD without MULTI"),
        ConnCmd::Discard => {
            conn.multi = None;
            conn.watch = None;
            Reply::Ok
        }
        ConnCmd::Watch(_) if conn.multi.is_some() => Reply::err("WATCH inside MULTI is not allowed"),
        ConnCmd::Watch(keys) => watch(shared, conn, keys).await,
        ConnCmd::Unwatch => {
            conn.watch = None;
            Reply::Ok
        }
        ConnCmd::Time => {
            // The node's clock (the one writes are stamped with), to the
            // millisecond.
            let ms = shared.clock.now_ms();
            Reply::Array(vec![Reply::bulk((ms / 1000).to_string()), Reply::bulk(((ms % 1000) * 1000).to_string())])
        }
        ConnCmd::Ping(None) => Reply::simple("PONG"),
        ConnCmd::Ping(Some(m)) | ConnCmd::Echo(m) => Reply::Bulk(m),
        ConnCmd::Hello { protover, auth, setname } => {
            match &auth {
                Some((user, pass)) if !password_ok(shared, Some(user), pass) => {
                    return (Reply::Error(WRONGPASS.into()), false);
                }
                Some(_) => conn.authed = true,
                None if !conn.authed => {
                    return (
                        Reply::Error(
                            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                             select the RESP protocol version at the same time"
                                .into(),
                        ),
                        false,
                    );
                }
                None => {}
            }
            match protover {
                None => {}
                Some(2) => conn.proto = Proto::Resp2,
                Some(3) => conn.proto = Proto::Resp3,
                Some(_) => return (Reply::Error("NOPROTO unsupported protocol version".into()), false),
            }
            if let Some(n) = setname {
                conn.name = Some(n);
            }
            hello_reply(&HelloView {
                server: "redis".into(),
                version: REDIS_VERSION.into(),
                proto: if conn.proto == Proto::Resp3 { 3 } else { 2 },
                client_id: conn.id as i64,
            })
        }
        ConnCmd::Auth { user: None, .. } if shared.config.security.password.is_none() => Reply::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        ConnCmd::Auth { user, pass } => {
            if password_ok(shared, user.as_deref(), &pass) {
                conn.authed = true;
                Reply::Ok
            } else {
                Reply::Error(WRONGPASS.into())
            }
        }
        ConnCmd::Select(0) => Reply::Ok,
        ConnCmd::Select(_) => Reply::err("DB index is out of range"),
        ConnCmd::Quit => return (Reply::Ok, true),
        ConnCmd::Reset => {
            conn.multi = None;
            conn.watch = None;
            conn.proto = Proto::Resp2;
            conn.name = None;
            conn.authed = shared.config.security.password.is_none();
            conn.readonly = false;
            if let Some(s) = conn.subs.as_mut() {
                s.clear();
            }
            conn.replies_off = false;
            conn.skip_next = false;
            Reply::simple("RESET")
        }
        ConnCmd::ClientSetName(n) => {
            conn.name = if n.is_empty() { None } else { Some(n) };
            Reply::Ok
        }
        ConnCmd::ClientGetName => Reply::bulk_or_nil(conn.name.clone()),
        ConnCmd::ClientSetInfo { attr, value } => {
            match attr {
                ClientSetInfoAttr::LibName => conn.lib_name = Some(value),
                ClientSetInfoAttr::LibVer => conn.lib_ver = Some(value),
            }
            Reply::Ok
        }
        ConnCmd::ClientId => Reply::Int(conn.id as i64),
        ConnCmd::ClientUnblock { id, error } => {
            let waiting = shared.unblockers.lock().expect("unblockers lock").remove(&id);
            Reply::Int(waiting.is_some_and(|tx| tx.send(error).is_ok()) as i64)
        }
        ConnCmd::ClientInfo => Reply::Verbatim(client_line(conn)),
        ConnCmd::ClientList => Reply::Verbatim(client_line(conn)),
        ConnCmd::ClientNoEvict(_) | ConnCmd::ClientNoTouch(_) => Reply::Ok,
        ConnCmd::ClientReply(mode) => {
            conn.replies_off = mode == ReplyMode::Off;
            conn.skip_next = mode == ReplyMode::Skip;
            Reply::Ok
        }
        ConnCmd::ConfigGet(p) => config_get(&p, &config_view(shared)),
        ConnCmd::ConfigSet(pairs) => match config_set(&pairs, &config_view(shared)) {
            Ok(update) => {
                {
                    let mut values = shared.encodings.lock().expect("encodings lock");
                    for (i, v) in update.encodings {
                        values[i] = v;
                        if i == BUSY_REPLY_THRESHOLD {
                            shared.scripts.limit_ms.store(v.max(0) as u64, Ordering::Relaxed);
                        }
                    }
                }
                // Every node's PRG leaders publish events: the flags go to all.
                if let Some(flags) = update.notify_keyspace_events {
                    pubsub::set_notify(shared, flags).await;
                }
                Reply::Ok
            }
            Err(reply) => reply,
        },
        ConnCmd::ConfigResetStat => {
            shared.command_stats.reset();
            Reply::Ok
        }
        ConnCmd::Command(sub) => command_reply(&sub),
        ConnCmd::Info(sections) => {
            let (keys, changes) = tokio::join!(
                broadcast_merge(shared, KvRequest::Read(ReadOp::DbSize), Merge::SumInts),
                applied_changes(shared)
            );
            let keys = match keys {
                Reply::Int(n) => n.max(0) as u64,
                _ => 0,
            };
            let (saved, saved_ms) = *shared.saved.lock().expect("saved lock");
            let view = InfoView {
                redis_version: REDIS_VERSION.into(),
                tidal_version: env!("CARGO_PKG_VERSION").into(),
                node_id: shared.config.node_id.to_string(),
                tcp_port: config_view(shared).port,
                uptime_ms: shared.started.elapsed().as_millis() as u64,
                connected_clients: shared.connections.load(Ordering::Relaxed),
                blocked_clients: shared.unblockers.lock().expect("unblockers lock").len() as u64,
                used_memory: 0,
                total_commands_processed: shared.commands.load(Ordering::Relaxed),
                pubsub: shared.pubsub.counts(),
                keys,
                changes_since_save: changes.unwrap_or(saved).saturating_sub(saved),
                last_save_secs: saved_ms / 1000,
                total_error_replies: shared.command_stats.total_errors(),
                commandstats: shared.command_stats.command_lines(),
                errorstats: shared.command_stats.error_lines(),
            };
            info_reply(&sections, &view)
        }
        ConnCmd::ReadOnly | ConnCmd::ReadWrite => {
            conn.readonly = matches!(c, ConnCmd::ReadOnly);
            Reply::Ok
        }
        // Every acknowledged write is already on a quorum: the leader and at
        // least one follower.
        ConnCmd::Wait { numreplicas, .. } => Reply::Int(numreplicas.clamp(0, 1)),
        ConnCmd::Help(lines) => Reply::Array(lines.into_iter().map(Reply::simple).collect()),
        ConnCmd::FunctionFlush => Reply::Ok,
        // Every acknowledged write is already durable: SAVE only marks
        // the changes INFO counts from (when every PRG answered; the mark
        // stays where it was otherwise).
        ConnCmd::Save => {
            if let Some(n) = applied_changes(shared).await {
                *shared.saved.lock().expect("saved lock") = (n, shared.clock.now_ms());
            }
            Reply::Ok
        }
        ConnCmd::Shutdown => {
            Reply::err("SHUTDOWN is not supported: stop a node with `tidal drain NODE` or SIGTERM, which move its work first")
        }
    };
    (reply, false)
}

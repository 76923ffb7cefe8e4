//! Pub/sub: the node's hub of subscriptions, the messages it hands its
//! subscribers, and the share of PUBLISH and PUBSUB its peers answer.
//!
//! A client subscribes at the node it is connected to; that node's hub
//! holds the subscription. PUBLISH delivers to the node's own subscribers
//! and asks every other node of the cluster to deliver to theirs, then
//! answers how many received the message in all. A message is delivered
//! at most once, as in Redis: a node that cannot be reached, or that
//! leaves, misses it, and a subscriber that falls more than
//! [`OUTPUT_LIMIT`] bytes behind is disconnected (Redis's
//! `client-output-buffer-limit pubsub` hard limit).
//!
//! Messages from one connection's successive PUBLISHes reach a subscriber
//! in the order they were published: each waits for every node's answer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use openraft::async_runtime::WatchReceiver;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use tidal_core::kv::notify::{self, Event};
use tidal_core::kv::{glob_match, PubSubCmd, Reply, SubKind};
use tidal_core::resp::{encode_push, Proto};
use tidal_raft::notices::Noted;
use tidal_raft::transport::{Request, Response};

use crate::node::Shared;

/// The peer frames' group name: a node's hub, not a Raft group.
pub const PUBSUB_GROUP: &str = "_pubsub";

/// Most bytes of messages a subscriber may have waiting; past this it is
/// disconnected.
pub const OUTPUT_LIMIT: usize = 32 << 20;

/// How long PUBLISH waits for a peer's answer; a peer that does not answer
/// in time counts no receivers.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

/// Refusal of a RESP2 command on a connection with subscriptions.
pub fn not_in_subscribed_mode(name: &str) -> Reply {
    Reply::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this \
         context"
    ))
}

/// One message on its way to a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Message { channel: Bytes, payload: Bytes },
    PMessage { pattern: Bytes, channel: Bytes, payload: Bytes },
    SMessage { channel: Bytes, payload: Bytes },
}

impl Delivery {
    /// What it takes of its subscriber's output budget.
    fn size(&self) -> usize {
        match self {
            Delivery::Message { channel, payload } | Delivery::SMessage { channel, payload } => {
                channel.len() + payload.len() + 32
            }
            Delivery::PMessage { pattern, channel, payload } => pattern.len() + channel.len() + payload.len() + 48,
        }
    }

    pub fn encode(&self, proto: Proto, out: &mut BytesMut) {
        let b = |x: &Bytes| Reply::Bulk(x.to_vec());
        let items = match self {
            Delivery::Message { channel, payload } => vec![Reply::bulk("message"), b(channel), b(payload)],
            Delivery::SMessage { channel, payload } => vec![Reply::bulk("smessage"), b(channel), b(payload)],
            Delivery::PMessage { pattern, channel, payload } => {
                vec![Reply::bulk("pmessage"), b(pattern), b(channel), b(payload)]
            }
        };
        encode_push(&items, proto, out);
    }
}

fn index(kind: SubKind) -> usize {
    match kind {
        SubKind::Channel => 0,
        SubKind::Pattern => 1,
        SubKind::Shard => 2,
    }
}

struct Client {
    tx: mpsc::UnboundedSender<Delivery>,
    /// Bytes sent to it and not yet taken by its connection.
    queued: Arc<AtomicUsize>,
}

/// The subscriptions of this node's clients.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    /// Channel, pattern or shard channel → the clients subscribed.
    subs: [HashMap<Vec<u8>, HashSet<u64>>; 3],
}

impl Inner {
    /// Client `id`'s subscriptions `mine` end.
    fn forget(&mut self, id: u64, mine: &[BTreeSet<Vec<u8>>; 3]) {
        for (map, names) in self.subs.iter_mut().zip(mine) {
            for name in names {
                drop_one(map, name, id);
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("pubsub hub lock")
    }

    /// A connection's first subscription: where its messages will come.
    pub fn join(self: &Arc<Self>, id: u64) -> Subscriptions {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        self.lock().clients.insert(id, Client { tx, queued: queued.clone() });
        Subscriptions { id, hub: self.clone(), rx, queued, mine: Default::default() }
    }

    fn leave(&self, id: u64, mine: &[BTreeSet<Vec<u8>>; 3]) {
        let mut inner = self.lock();
        inner.clients.remove(&id);
        inner.forget(id, mine);
    }

    /// Hand `payload` to this node's subscribers of `channel` (its shard
    /// subscribers when `shard`): how many received it. A subscriber over
    /// its output budget is cut off instead.
    pub fn deliver(&self, shard: bool, channel: &[u8], payload: &[u8]) -> u64 {
        let mut inner = self.lock();
        let channel_b = Bytes::copy_from_slice(channel);
        let payload_b = Bytes::copy_from_slice(payload);
        let mut out: Vec<(u64, Delivery)> = Vec::new();
        if shard {
            for id in inner.subs[2].get(channel).into_iter().flatten() {
                out.push((*id, Delivery::SMessage { channel: channel_b.clone(), payload: payload_b.clone() }));
            }
        } else {
            for id in inner.subs[0].get(channel).into_iter().flatten() {
                out.push((*id, Delivery::Message { channel: channel_b.clone(), payload: payload_b.clone() }));
            }
            for (pattern, ids) in &inner.subs[1] {
                if glob_match(pattern, channel) {
                    let pattern = Bytes::copy_from_slice(pattern);
                    for id in ids {
                        out.push((
                            *id,
                            Delivery::PMessage {
                                pattern: pattern.clone(),
                                channel: channel_b.clone(),
                                payload: payload_b.clone(),
                            },
                        ));
                    }
                }
            }
        }
        let mut received = 0;
        let mut cut = Vec::new();
        for (id, d) in out {
            let Some(client) = inner.clients.get(&id) else { continue };
            let size = d.size();
            let over = client.queued.fetch_add(size, Ordering::Relaxed) + size > OUTPUT_LIMIT;
            if over || client.tx.send(d).is_err() {
                if over {
                    tracing::warn!(
                        client = id,
                        limit = OUTPUT_LIMIT,
                        "a subscriber fell too far behind; disconnecting it"
                    );
                }
                // Its connection sees the channel closed and ends.
                inner.clients.remove(&id);
                cut.push(id);
                continue;
            }
            received += 1;
        }
        // Nor is it counted a subscriber meanwhile.
        if !cut.is_empty() {
            for map in inner.subs.iter_mut() {
                map.retain(|_, ids| {
                    ids.retain(|id| !cut.contains(id));
                    !ids.is_empty()
                });
            }
        }
        received
    }

    /// The channels (of `kind`) with a subscriber here, those `pattern`
    /// matches when given.
    pub fn channels(&self, kind: SubKind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let inner = self.lock();
        inner.subs[index(kind)].keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c))).cloned().collect()
    }

    /// How many channels, patterns and shard channels have a subscriber
    /// here (INFO).
    pub fn counts(&self) -> [u64; 3] {
        let inner = self.lock();
        [0, 1, 2].map(|i| inner.subs[i].len() as u64)
    }

    /// The subscribers here of each of `channels`.
    pub fn numsub(&self, kind: SubKind, channels: &[Vec<u8>]) -> Vec<u64> {
        let inner = self.lock();
        channels.iter().map(|c| inner.subs[index(kind)].get(c).map_or(0, |s| s.len() as u64)).collect()
    }
}

fn drop_one(map: &mut HashMap<Vec<u8>, HashSet<u64>>, name: &[u8], id: u64) {
    if let Some(ids) = map.get_mut(name) {
        ids.remove(&id);
        if ids.is_empty() {
            map.remove(name);
        }
    }
}

/// One connection's subscriptions, and its end of the hub's deliveries.
/// Dropped with the connection, it leaves the hub.
pub struct Subscriptions {
    id: u64,
    hub: Arc<Hub>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    queued: Arc<AtomicUsize>,
    mine: [BTreeSet<Vec<u8>>; 3],
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.hub.leave(self.id, &self.mine);
    }
}

impl Subscriptions {
    /// Channels and patterns: the count SUBSCRIBE and its kin confirm
    /// with (SSUBSCRIBE's counts shard channels alone, as Redis's does).
    fn count(&self, kind: SubKind) -> i64 {
        match kind {
            SubKind::Shard => self.mine[2].len() as i64,
            _ => (self.mine[0].len() + self.mine[1].len()) as i64,
        }
    }

    /// Whether any subscription is held (RESP2's subscribed mode).
    pub fn any(&self) -> bool {
        self.mine.iter().any(|m| !m.is_empty())
    }

    /// The next message; `None` when the hub cut this subscriber off.
    pub async fn next(subs: &mut Option<Subscriptions>) -> Option<Delivery> {
        match subs {
            Some(s) => {
                let d = s.rx.recv().await?;
                s.queued.fetch_sub(d.size(), Ordering::Relaxed);
                Some(d)
            }
            None => std::future::pending().await,
        }
    }

    /// Messages already waiting, without waiting for more.
    pub fn ready(&mut self) -> Option<Delivery> {
        let d = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(d.size(), Ordering::Relaxed);
        Some(d)
    }

    fn add(&mut self, kind: SubKind, name: Vec<u8>) {
        if self.mine[index(kind)].insert(name.clone()) {
            let mut inner = self.hub.lock();
            inner.subs[index(kind)].entry(name).or_default().insert(self.id);
        }
    }

    fn remove(&mut self, kind: SubKind, name: &[u8]) {
        if self.mine[index(kind)].remove(name) {
            drop_one(&mut self.hub.lock().subs[index(kind)], name, self.id);
        }
    }

    /// RESET: every subscription ends, without confirmations.
    pub fn clear(&mut self) {
        let mine = std::mem::take(&mut self.mine);
        self.hub.lock().forget(self.id, &mine);
    }
}

/// SUBSCRIBE and its kin on connection `id`: a confirmation per channel,
/// pushed to `out`. Shard channels must share a slot.
pub fn change(
    shared: &Shared,
    subs: &mut Option<Subscriptions>,
    id: u64,
    cmd: PubSubCmd,
    proto: Proto,
    out: &mut BytesMut,
) {
    let (subscribe, kind, channels) = match cmd {
        PubSubCmd::Subscribe { kind, channels } => (true, kind, channels),
        PubSubCmd::Unsubscribe { kind, channels } => (false, kind, channels),
        other => {
            let e = Reply::err(format!("internal: {other:?} is not a subscription"));
            return tidal_core::resp::encode(&e, proto, out);
        }
    };
    if kind == SubKind::Shard && channels.len() > 1 {
        let state = shared.cache.get();
        let slot = |c: &[u8]| state.slot_of(tidal_core::ids::DEFAULT_TENANT, c);
        if channels.iter().any(|c| slot(c) != slot(&channels[0])) {
            let e = Reply::Error(crate::resp_server::CROSSSLOT.into());
            tidal_core::resp::encode(&e, proto, out);
            return;
        }
    }
    let word = kind.confirm_word(subscribe);
    let confirm = |name: Reply, count: i64, out: &mut BytesMut| {
        encode_push(&[Reply::bulk(word), name, Reply::Int(count)], proto, out)
    };
    if subscribe {
        let s = subs.get_or_insert_with(|| shared.pubsub.join(id));
        for c in channels {
            s.add(kind, c.clone());
            confirm(Reply::Bulk(c), s.count(kind), out);
        }
        return;
    }
    // Without names: every subscription of the kind, or a nil when none.
    let names: Vec<Vec<u8>> = match (channels.is_empty(), subs.as_ref()) {
        (true, Some(s)) => s.mine[index(kind)].iter().cloned().collect(),
        (true, None) => Vec::new(),
        (false, _) => channels,
    };
    if names.is_empty() {
        confirm(Reply::Nil, subs.as_ref().map_or(0, |s| s.count(kind)), out);
        return;
    }
    for c in names {
        let count = match subs.as_mut() {
            Some(s) => {
                s.remove(kind, &c);
                s.count(kind)
            }
            None => 0,
        };
        confirm(Reply::Bulk(c), count, out);
    }
}

/// What one node asks another of its hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum PeerAsk {
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Channels {
        kind: SubKind,
        pattern: Option<Vec<u8>>,
    },
    NumSub {
        kind: SubKind,
        channels: Vec<Vec<u8>>,
    },
    /// Keyspace events: `(channel, message)` pairs, in order.
    PublishMany {
        messages: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// CONFIG SET notify-keyspace-events, made on another node.
    SetNotify {
        flags: u32,
    },
    /// The peer's `notify-keyspace-events` (a node that starts takes it).
    Notify,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum PeerAnswer {
    Count(u64),
    Names(Vec<Vec<u8>>),
    Counts(Vec<u64>),
    Flags(u32),
}

fn answer_locally(shared: &Shared, ask: &PeerAsk) -> PeerAnswer {
    let hub = &shared.pubsub;
    match ask {
        PeerAsk::Publish { shard, channel, message } => PeerAnswer::Count(hub.deliver(*shard, channel, message)),
        PeerAsk::Channels { kind, pattern } => PeerAnswer::Names(hub.channels(*kind, pattern.as_deref())),
        PeerAsk::NumSub { kind, channels } => PeerAnswer::Counts(hub.numsub(*kind, channels)),
        PeerAsk::PublishMany { messages } => {
            PeerAnswer::Count(messages.iter().map(|(c, m)| hub.deliver(false, c, m)).sum())
        }
        PeerAsk::SetNotify { flags } => {
            shared.notify_flags.store(*flags, Ordering::Relaxed);
            PeerAnswer::Flags(*flags)
        }
        PeerAsk::Notify => PeerAnswer::Flags(shared.notify_flags.load(Ordering::Relaxed)),
    }
}

/// A peer's frame for this node's hub: its answer, encoded.
pub fn serve_frame(shared: &Shared, body: &[u8]) -> Result<Vec<u8>, tidal_raft::transport::WireError> {
    let ask: PeerAsk = postcard::from_bytes(body)
        .map_err(|e| tidal_raft::transport::WireError::Malformed(format!("bad pub/sub frame: {e}")))?;
    Ok(tidal_raft::types::encode(&answer_locally(shared, &ask)))
}

/// Entries' worth of keyspace events a node holds for publishing; past
/// this its replicas drop events (and say so in the log).
pub const NOTICES_QUEUE: usize = 4096;

/// Most keyspace messages sent to the peers in one frame.
const NOTICES_PER_FRAME: usize = 4096;

/// CONFIG SET notify-keyspace-events: this node's flags, then every other
/// node's (those that answer; one that starts later asks a peer).
pub async fn set_notify(shared: &Arc<Shared>, flags: u32) {
    shared.notify_flags.store(flags, Ordering::Relaxed);
    everywhere(shared, PeerAsk::SetNotify { flags }).await;
}

/// The channels and messages of `events` under `flags`: the keyspace
/// channel names the key, the keyevent channel the event.
fn messages_of(flags: u32, events: &[Event], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for e in events {
        if flags & notify::KEYSPACE != 0 {
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(&e.key);
            out.push((channel, e.name.as_bytes().to_vec()));
        }
        if flags & notify::KEYEVENT != 0 {
            out.push((format!("__keyevent@0__:{}", e.name).into_bytes(), e.key.clone()));
        }
    }
}

/// The node's publisher of keyspace events: those of the PRGs it leads,
/// in the order they applied, to its own subscribers and then its peers'.
/// It first takes a peer's `notify-keyspace-events`, if it has none.
pub async fn publish_events(shared: std::sync::Weak<Shared>, mut rx: mpsc::Receiver<Noted>) {
    if let Some(s) = shared.upgrade() {
        tokio::spawn(adopt_notify(Arc::downgrade(&s)));
    }
    // The peers get theirs from a task of their own, so that a peer slow
    // to answer never holds up this node's subscribers.
    let (to_peers, peer_rx) = mpsc::channel(PEER_BATCHES);
    tokio::spawn(send_to_peers(shared.clone(), peer_rx));
    while let Some(first) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        let me = Some(shared.config.node_id);
        let flags = shared.notify_flags.load(Ordering::Relaxed);
        let mut messages = Vec::new();
        let mut next = Some(first);
        while let Some(noted) = next.take() {
            let leads = shared
                .kv_group(&noted.group)
                .is_some_and(|kv| kv.group.raft.metrics().borrow_watched().current_leader == me);
            if leads {
                messages_of(flags, &noted.events, &mut messages);
            }
            if messages.len() < NOTICES_PER_FRAME {
                next = rx.try_recv().ok();
            }
        }
        if messages.is_empty() {
            continue;
        }
        for (channel, message) in &messages {
            shared.pubsub.deliver(false, channel, message);
        }
        if to_peers.try_send(messages).is_err() {
            tracing::warn!("keyspace events dropped for the other nodes: they do not take them as fast as they come");
        }
    }
}

/// Frames of keyspace events waiting for the peers; past this, newer ones
/// are dropped.
const PEER_BATCHES: usize = 64;

async fn send_to_peers(shared: std::sync::Weak<Shared>, mut rx: mpsc::Receiver<Vec<(Vec<u8>, Vec<u8>)>>) {
    while let Some(messages) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        peers_only(&shared, PeerAsk::PublishMany { messages }).await;
    }
}

/// A node that starts takes its peers' `notify-keyspace-events` (a CONFIG
/// SET made while it was away), unless one was set here meanwhile: the
/// flags a peer has set, when one has any.
async fn adopt_notify(shared: std::sync::Weak<Shared>) {
    for wait in [1, 2, 4, 8, 16] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let Some(shared) = shared.upgrade() else { return };
        if shared.notify_flags.load(Ordering::Relaxed) != 0 {
            return;
        }
        let answers = peers_only(&shared, PeerAsk::Notify).await;
        let set = answers.iter().find_map(|a| match a {
            PeerAnswer::Flags(f) if *f != 0 => Some(*f),
            _ => None,
        });
        if let Some(f) = set {
            let _ = shared.notify_flags.compare_exchange(0, f, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        // Every peer answered and none has flags: there are none to take.
        if !answers.is_empty() && answers.len() + 1 == shared.cache.get().nodes.len() {
            return;
        }
    }
}

/// `ask` answered by this node and every other node of the cluster that
/// answers within [`PEER_TIMEOUT`], this node's answer first.
async fn everywhere(shared: &Arc<Shared>, ask: PeerAsk) -> Vec<PeerAnswer> {
    let mut answers = vec![answer_locally(shared, &ask)];
    answers.extend(peers_only(shared, ask).await);
    answers
}

/// `ask` answered by every other node that answers in time.
async fn peers_only(shared: &Arc<Shared>, ask: PeerAsk) -> Vec<PeerAnswer> {
    let mut answers = Vec::new();
    let state = shared.cache.get();
    let me = shared.config.node_id;
    let body = tidal_raft::types::encode(&ask);
    let mut calls = tokio::task::JoinSet::new();
    for (id, node) in state.nodes.iter().filter(|(id, _)| **id != me) {
        let (shared, addr, body, id) = (shared.clone(), node.peer_addr.clone(), body.clone(), *id);
        calls.spawn(async move {
            let peers = shared.host.peers();
            match peers.call(&addr, PUBSUB_GROUP, 0, Request::App(body), PEER_TIMEOUT).await {
                Ok(Response::App(bytes)) => postcard::from_bytes::<PeerAnswer>(&bytes).ok(),
                Ok(other) => {
                    tracing::debug!(node = id, answer = ?other, "unexpected answer to a pub/sub frame");
                    None
                }
                Err(e) => {
                    tracing::debug!(node = id, error = %e, "a peer missed a pub/sub frame");
                    None
                }
            }
        });
    }
    while let Some(r) = calls.join_next().await {
        answers.extend(r.ok().flatten());
    }
    answers
}

/// PUBLISH, SPUBLISH and PUBSUB's questions, answered for the cluster.
pub async fn query(shared: &Arc<Shared>, cmd: PubSubCmd) -> Reply {
    let kind = |shard: bool| if shard { SubKind::Shard } else { SubKind::Channel };
    match cmd {
        PubSubCmd::Publish { shard, channel, message } => {
            let answers = everywhere(shared, PeerAsk::Publish { shard, channel, message }).await;
            Reply::Int(answers.iter().map(|a| if let PeerAnswer::Count(n) = a { *n as i64 } else { 0 }).sum())
        }
        PubSubCmd::Channels { shard, pattern } => {
            let answers = everywhere(shared, PeerAsk::Channels { kind: kind(shard), pattern }).await;
            Reply::Array(names(answers).into_iter().map(Reply::Bulk).collect())
        }
        PubSubCmd::NumPat => {
            let answers = everywhere(shared, PeerAsk::Channels { kind: SubKind::Pattern, pattern: None }).await;
            Reply::Int(names(answers).len() as i64)
        }
        PubSubCmd::NumSub { shard, channels } => {
            let n = channels.len();
            let answers = everywhere(shared, PeerAsk::NumSub { kind: kind(shard), channels: channels.clone() }).await;
            let mut sums = vec![0u64; n];
            for a in answers {
                if let PeerAnswer::Counts(c) = a {
                    sums.iter_mut().zip(c).for_each(|(s, c)| *s += c);
                }
            }
            Reply::Array(
                channels.into_iter().zip(sums).flat_map(|(c, s)| [Reply::Bulk(c), Reply::Int(s as i64)]).collect(),
            )
        }
        PubSubCmd::Subscribe { .. } | PubSubCmd::Unsubscribe { .. } => {
            Reply::err("internal: a subscription is the connection's")
        }
    }
}

/// The distinct names of the nodes' answers.
fn names(answers: Vec<PeerAnswer>) -> BTreeSet<Vec<u8>> {
    answers.into_iter().flat_map(|a| if let PeerAnswer::Names(n) = a { n } else { Vec::new() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn the_hub_delivers_to_channels_patterns_and_shards_and_forgets_who_leaves() {
        let hub = Arc::new(Hub::default());
        let mut one = hub.join(1);
        let mut two = hub.join(2);
        one.add(SubKind::Channel, b("news"));
        one.add(SubKind::Channel, b("news"));
        two.add(SubKind::Pattern, b("n*"));
        two.add(SubKind::Shard, b("news"));
        assert_eq!(hub.deliver(false, b"news", b"hi"), 2);
        assert_eq!(one.ready(), Some(Delivery::Message { channel: Bytes::from("news"), payload: Bytes::from("hi") }));
        assert_eq!(one.ready(), None, "subscribing twice delivers once");
        assert!(matches!(two.ready(), Some(Delivery::PMessage { pattern, .. }) if pattern == "n*"));
        assert_eq!(hub.deliver(true, b"news", b"s"), 1);
        assert!(matches!(two.ready(), Some(Delivery::SMessage { .. })));
        assert_eq!(hub.numsub(SubKind::Channel, &[b("news"), b("x")]), vec![1, 0]);
        assert_eq!(hub.counts(), [1, 1, 1]);
        assert_eq!(hub.channels(SubKind::Pattern, None), vec![b("n*")]);
        assert_eq!(hub.channels(SubKind::Channel, Some(b"x*")), Vec::<Vec<u8>>::new());
        drop(one);
        assert_eq!(hub.numsub(SubKind::Channel, &[b("news")]), vec![0]);
        assert_eq!(hub.channels(SubKind::Channel, None), Vec::<Vec<u8>>::new());
        two.clear();
        assert!(!two.any());
        assert_eq!(hub.deliver(false, b"news", b"hi"), 0);
    }

    #[test]
    fn a_subscriber_past_its_output_limit_is_cut_off() {
        let hub = Arc::new(Hub::default());
        let mut slow = hub.join(7);
        slow.add(SubKind::Channel, b("c"));
        let big = vec![0u8; 1 << 20];
        let mut delivered = 0;
        while hub.deliver(false, b"c", &big) == 1 {
            delivered += 1;
            assert!(delivered < 64, "never cut off");
        }
        assert_eq!(delivered, OUTPUT_LIMIT / (big.len() + 33));
        let mut taken = 0;
        while slow.ready().is_some() {
            taken += 1;
        }
        assert_eq!(taken, delivered, "what was delivered can still be read");
        assert_eq!(hub.numsub(SubKind::Channel, &[b("c")]), vec![0], "a subscriber cut off is not counted");
        assert!(slow.rx.is_closed() || slow.rx.try_recv().is_err());
    }
}

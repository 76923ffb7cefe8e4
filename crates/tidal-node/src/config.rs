//! One validated node configuration from flags, `TIDAL_*` environment
//! variables and an optional TOML file (flags and environment win over the
//! file). Every bad setting is reported at once, naming its key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use tidal_core::{CacheThresholds, NodeId};
use tidal_raft::{RaftTuning, StorageOptions};

/// Settings as given; every field optional so sources can be layered.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    /// This node's id (unique, > 0).
    #[arg(long, env = "TIDAL_NODE_ID")]
    pub node_id: Option<u64>,
    /// Peer transport address (Raft and internal forwarding).
    #[arg(long, env = "TIDAL_LISTEN")]
    pub listen: Option<String>,
    /// Peer address other nodes dial, when it is not `--listen` (behind
    /// NAT, a load balancer or a proxy).
    #[arg(long, env = "TIDAL_ADVERTISE")]
    pub advertise: Option<String>,
    /// Local address this node's peer connections come from, on a host
    /// with several (the one peers and their firewalls see).
    #[arg(long, env = "TIDAL_PEER_SOURCE_IP")]
    pub peer_source_ip: Option<String>,
    /// Redis protocol address.
    #[arg(long, env = "TIDAL_CLIENT_ADDR")]
    pub client_addr: Option<String>,
    /// HTTP data and admin address.
    #[arg(long, env = "TIDAL_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Directory for this node's database.
    #[arg(long, env = "TIDAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Initial cluster: `id=peer-addr,...`, including this node. The first
    /// three ids (in order) host the control plane.
    #[arg(long, env = "TIDAL_PEERS")]
    pub peers: Option<String>,
    /// Peer address of any running node, to join an existing cluster.
    #[arg(long, env = "TIDAL_JOIN")]
    pub join: Option<String>,
    /// Failure-domain label; replicas of a PRG spread across zones.
    #[arg(long, env = "TIDAL_ZONE")]
    pub zone: Option<String>,
    /// Slots of the `default` tenant, when this node creates it.
    #[arg(long, env = "TIDAL_SLOTS")]
    pub slots: Option<u32>,
    /// PRGs of the `default` tenant, when this node creates it.
    #[arg(long, env = "TIDAL_PRGS")]
    pub prgs: Option<u32>,
    /// Largest value a client may write.
    #[arg(long, env = "TIDAL_MAX_VALUE_BYTES")]
    pub max_value_bytes: Option<u64>,
    /// CP cache age below which it is Fresh.
    #[arg(long, env = "TIDAL_CACHE_FRESH_MS")]
    pub cache_fresh_ms: Option<u64>,
    /// CP cache age below which it is Cached.
    #[arg(long, env = "TIDAL_CACHE_CACHED_MS")]
    pub cache_cached_ms: Option<u64>,
    /// CP cache age below which it is Stale; older is Expired.
    #[arg(long, env = "TIDAL_CACHE_STALE_MS")]
    pub cache_stale_ms: Option<u64>,
    /// How often the CP cache syncs.
    #[arg(long, env = "TIDAL_CACHE_SYNC_MS")]
    pub cache_sync_ms: Option<u64>,
    #[arg(long, env = "TIDAL_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    #[arg(long, env = "TIDAL_ELECTION_MIN_MS")]
    pub election_min_ms: Option<u64>,
    #[arg(long, env = "TIDAL_ELECTION_MAX_MS")]
    pub election_max_ms: Option<u64>,
    /// How a leader confirms it leads before a read: `lease` (default;
    /// served locally while a quorum acknowledged the leader within the
    /// election timeout less `lease-margin-ms`) or `read-index` (a quorum
    /// heartbeat round for every batch of reads).
    #[arg(long, env = "TIDAL_READ_POLICY")]
    pub read_policy: Option<String>,
    /// How much shorter than `election-max-ms` the read lease is, for
    /// clocks that run at different rates (default 200).
    #[arg(long, env = "TIDAL_LEASE_MARGIN_MS")]
    pub lease_margin_ms: Option<u64>,
    /// Snapshot a group after this many applied entries.
    #[arg(long, env = "TIDAL_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Snapshot a group after its log has taken this many MiB, and keep at
    /// most this many MiB of log behind a snapshot (default 64; 0: only
    /// entry counts apply).
    #[arg(long, env = "TIDAL_SNAPSHOT_EVERY_MB")]
    pub snapshot_every_mb: Option<u64>,
    /// Log entries kept behind a snapshot (at most `snapshot-every-mb` of
    /// them).
    #[arg(long, env = "TIDAL_KEEP_AFTER_SNAPSHOT")]
    pub keep_after_snapshot: Option<u64>,
    /// How long a peer that is catching up, or down, keeps a leader from
    /// dropping the log entries it still needs once it stops making progress.
    #[arg(long, env = "TIDAL_LOG_HOLD_MS")]
    pub log_hold_ms: Option<u64>,
    /// Replication or apply lag (entries) above which a node is not ready.
    #[arg(long, env = "TIDAL_READY_LAG")]
    pub ready_lag: Option<u64>,
    /// How long the router retries NotLeader/Moved/unreachable before
    /// giving the client an error.
    #[arg(long, env = "TIDAL_RETRY_BUDGET_MS")]
    pub retry_budget_ms: Option<u64>,
    /// Memory (MiB) for the storage page caches of both files; the rest of
    /// the data is read through the operating system's page cache.
    #[arg(long, env = "TIDAL_STORAGE_CACHE_MB")]
    pub storage_cache_mb: Option<u64>,
    /// Longest time (ms) between durable checkpoints of the state file; a
    /// crash redoes at most this much applying from the durable log.
    #[arg(long, env = "TIDAL_STATE_CHECKPOINT_MS")]
    pub state_checkpoint_ms: Option<u64>,
    /// Threads running the node's network and Raft work (default: one per
    /// core). Nodes sharing a machine should split its cores between them.
    #[arg(long, env = "TIDAL_WORKER_THREADS")]
    pub worker_threads: Option<u64>,
    /// Most MiB per second slot moves copy to or from any one node, and
    /// most this node sends of replica copies (the snapshots of replica
    /// moves and self-healing) to all its peers together (0: no limit), so
    /// that moves leave room for client traffic.
    #[arg(long, env = "TIDAL_MOVE_RATE_MB")]
    pub move_rate_mb: Option<u64>,
    /// Longest time (ms) a slot move may keep its slots fenced before it
    /// rolls back instead of committing.
    #[arg(long, env = "TIDAL_FENCE_BUDGET_MS")]
    pub fence_budget_ms: Option<u64>,
    /// Most moves a scaling operation keeps in flight that touch any one
    /// node (the disruption budget; default 2).
    #[arg(long, env = "TIDAL_MAX_MOVES_PER_NODE")]
    pub max_moves_per_node: Option<u32>,
    /// Most moves a scaling operation keeps in flight in the whole cluster
    /// (default 4).
    #[arg(long, env = "TIDAL_MAX_MOVES")]
    pub max_moves: Option<u32>,
    /// Fewest replicas of a PRG that must be serving, not counting the
    /// one a move takes away, for a move to start on it (the disruption
    /// budget's floor: 2, the default, is a majority; 1 lets moves go on
    /// with one). Every operation holds to it, self-healing too.
    #[arg(long, env = "TIDAL_MIN_AVAILABLE_REPLICAS")]
    pub min_available_replicas: Option<usize>,
    /// Take over this node id although another data directory registered
    /// it: only for a node whose data is gone for good.
    #[arg(long, env = "TIDAL_REPLACE_NODE", num_args = 0..=1, default_missing_value = "true")]
    pub replace_node: Option<bool>,
    /// How long (ms) SIGTERM waits for this node's replicas to move to
    /// other nodes before it stops anyway (default 600000); 0 moves none
    /// (a restart that keeps the node's data: leaderships and client
    /// connections are still handed off).
    #[arg(long, env = "TIDAL_DRAIN_TIMEOUT_MS")]
    pub drain_timeout_ms: Option<u64>,
    /// How long (ms) a node may stay unreachable before, when this node
    /// leads the control plane, its replicas are re-created on other nodes
    /// (default 300000; 0: never).
    #[arg(long, env = "TIDAL_SELF_HEAL_DELAY_MS")]
    pub self_heal_delay_ms: Option<u64>,
    /// Let a `scale_in` request that asks for it (`auto_arm`) arm the
    /// shrink plan it drafts at once (default off: every shrink plan waits
    /// for an operator to arm it).
    #[arg(long, env = "TIDAL_SHRINK_AUTO_ARM", num_args = 0..=1, default_missing_value = "true")]
    pub shrink_auto_arm: Option<bool>,
    /// Most client connections open at once on the Redis port (Redis's
    /// `maxclients`, default 10000); one more is told so and closed.
    #[arg(long, env = "TIDAL_MAXCLIENTS")]
    pub maxclients: Option<u64>,
    /// Close a client connection idle for this many seconds (Redis's
    /// `timeout`; default 0: never).
    #[arg(long, env = "TIDAL_CLIENT_TIMEOUT")]
    pub client_timeout: Option<u64>,
    /// Close a client connection that has not taken its replies within
    /// this many ms (default 30000): a client that never reads holds at
    /// most one round of replies, and not for long.
    #[arg(long, env = "TIDAL_CLIENT_WRITE_TIMEOUT_MS")]
    pub client_write_timeout_ms: Option<u64>,
    /// Most arguments of one Redis request (default 1048576, as Redis).
    #[arg(long, env = "TIDAL_MAX_MULTIBULK_LEN")]
    pub max_multibulk_len: Option<u64>,
    /// Longest inline (telnet-style) Redis request, bytes (default 65536,
    /// as Redis).
    #[arg(long, env = "TIDAL_MAX_INLINE_LEN")]
    pub max_inline_len: Option<u64>,
    /// Directory with the cluster CA's certificate (`ca.crt`) and this
    /// node's (`node.crt`, `node.key`), as `tidal certs` makes them: TLS
    /// 1.3 with certificates on both ends between nodes, TLS on the HTTP
    /// port. Reloaded on SIGHUP and when the files change.
    #[arg(long, env = "TIDAL_CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Run without TLS or certificates: any peer is taken at its word and
    /// the admin API is open to whoever reaches it. Only for a trusted
    /// network.
    #[arg(long, env = "TIDAL_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// TLS on the Redis port too, with the node's certificate (clients
    /// need the CA's certificate: `redis-cli --tls --cacert ca.crt`).
    #[arg(long, env = "TIDAL_CLIENT_TLS", num_args = 0..=1, default_missing_value = "true")]
    pub client_tls: Option<bool>,
    /// File holding a bearer token that admits admin requests
    /// (`Authorization: Bearer TOKEN`), besides client certificates.
    #[arg(long, env = "TIDAL_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Password clients must give (Redis's `AUTH` and `HELLO ... AUTH`,
    /// the data API's bearer token). Prefer `--requirepass-file`: a flag
    /// shows in the process list.
    #[arg(long, env = "TIDAL_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// File holding the password of `--requirepass`.
    #[arg(long, env = "TIDAL_REQUIREPASS_FILE")]
    pub requirepass_file: Option<PathBuf>,
    /// Ask for authentication on `/livez`, `/readyz` and `/metrics` too
    /// (open by default, for probes and Prometheus).
    #[arg(long, env = "TIDAL_AUTH_PROBES", num_args = 0..=1, default_missing_value = "true")]
    pub auth_probes: Option<bool>,
    /// Longest peer frame, MiB, this node sends or takes (2-64, default
    /// 64; the same on every node). A write travels in one frame, so
    /// `max-value-bytes` must leave 1 MiB of it free.
    #[arg(long, env = "TIDAL_MAX_FRAME_MB")]
    pub max_frame_mb: Option<u64>,
    /// Largest admin API request body, KiB (default 1024); the data API
    /// takes bodies up to `max-value-bytes`.
    #[arg(long, env = "TIDAL_MAX_API_BODY_KB")]
    pub max_api_body_kb: Option<u64>,
    /// Replies, KiB, a Redis connection holds before it waits for the
    /// client to take them (default 1024; one reply may go past it): with
    /// --client-write-timeout-ms, what a client that never reads can cost.
    #[arg(long, env = "TIDAL_CLIENT_REPLY_BUFFER_KB")]
    pub client_reply_buffer_kb: Option<u64>,
}

impl RawConfig {
    /// Fill every unset field of `self` from `lower`.
    pub fn or(self, lower: RawConfig) -> RawConfig {
        macro_rules! pick {
            ($($f:ident),*) => { RawConfig { $($f: self.$f.or(lower.$f)),* } };
        }
        pick!(
            node_id,
            listen,
            advertise,
            peer_source_ip,
            client_addr,
            http_addr,
            data_dir,
            peers,
            join,
            zone,
            slots,
            prgs,
            max_value_bytes,
            cache_fresh_ms,
            cache_cached_ms,
            cache_stale_ms,
            cache_sync_ms,
            heartbeat_ms,
            election_min_ms,
            election_max_ms,
            read_policy,
            lease_margin_ms,
            snapshot_every,
            snapshot_every_mb,
            keep_after_snapshot,
            log_hold_ms,
            ready_lag,
            retry_budget_ms,
            storage_cache_mb,
            state_checkpoint_ms,
            worker_threads,
            move_rate_mb,
            fence_budget_ms,
            max_moves_per_node,
            max_moves,
            min_available_replicas,
            replace_node,
            drain_timeout_ms,
            self_heal_delay_ms,
            shrink_auto_arm,
            maxclients,
            client_timeout,
            client_write_timeout_ms,
            max_multibulk_len,
            max_inline_len,
            certs_dir,
            insecure,
            client_tls,
            admin_token_file,
            requirepass,
            requirepass_file,
            auth_probes,
            max_frame_mb,
            max_api_body_kb,
            client_reply_buffer_kb
        )
    }

    /// Read a TOML config file. Every key with a bad value, and every
    /// unknown key, is reported at once, by name; text that is not TOML
    /// is reported with the line where reading stopped.
    pub fn from_toml(text: &str) -> Result<RawConfig, ConfigErrors> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(String::new(), |s| format!("line {}: ", line_of(text, s.start)));
            ConfigErrors(vec![format!("config file: {at}{}", e.message().replace('\n', ", "))])
        })?;
        // Each key on its own: serde stops at the first bad field and does
        // not say which it was.
        let errs: Vec<String> = table
            .iter()
            .filter_map(|(key, value)| {
                let one: toml::Table = [(key.clone(), value.clone())].into_iter().collect();
                one.try_into::<RawConfig>().err().map(|e| format!("{key}: {}", e.message()))
            })
            .collect();
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        table.try_into().map_err(|e: toml::de::Error| ConfigErrors(vec![format!("config file: {}", e.message())]))
    }
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// How a node finds its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// A fixed initial membership, this node included.
    Peers(BTreeMap<NodeId, String>),
    /// Any running node's peer address.
    Join(String),
}

/// The validated configuration of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_id: NodeId,
    pub listen: String,
    /// The peer address registered for this node; `listen` when `None`.
    pub advertise: Option<String>,
    pub peer_source_ip: Option<std::net::IpAddr>,
    pub client_addr: String,
    pub http_addr: String,
    pub data_dir: PathBuf,
    pub bootstrap: Bootstrap,
    pub zone: String,
    pub slots: u32,
    pub prgs: u32,
    pub max_value_bytes: u64,
    pub cache: CacheThresholds,
    pub cache_sync_ms: u64,
    pub raft: RaftTuning,
    pub ready_lag: u64,
    pub retry_budget_ms: u64,
    pub storage: StorageOptions,
    /// Threads of the node's async runtime.
    pub worker_threads: usize,
    /// Pace of slot moves run by this node when it leads the control plane.
    pub moves: tidal_control::ExecutorConfig,
    /// The disruption budget of scaling operations started through this node.
    pub budget: tidal_core::operation::Budget,
    /// The budget's floor of serving replicas per PRG, held to by every
    /// operation this node runs as control-plane leader.
    pub min_available_replicas: usize,
    /// Register although another data directory holds this node id.
    pub replace_node: bool,
    /// How long SIGTERM waits for the node's replicas to move away; 0:
    /// they stay.
    pub drain_timeout_ms: u64,
    /// How long a node may go unheard before its replicas are re-created
    /// elsewhere; 0: never.
    pub self_heal_delay_ms: u64,
    /// Whether `scale_in` may arm the plan it drafts (`auto_arm`).
    pub shrink_auto_arm: bool,
    /// Limits on client connections (see [`ClientLimits`]).
    pub clients: ClientLimits,
    /// Who may use the node's ports (see [`Security`]).
    pub security: Security,
    /// Largest admin API request body.
    pub max_api_body: usize,
}

/// Who may use a node's ports. The default is `--insecure`'s: no TLS, no
/// passwords.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// TLS on the peer and HTTP ports; `None`: `--insecure`.
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
    /// TLS on the Redis port too.
    pub client_tls: bool,
    /// A bearer token that admits admin requests.
    pub admin_token: Option<String>,
    /// The password of `AUTH` and of the data API.
    pub password: Option<String>,
    /// `/livez`, `/readyz` and `/metrics` ask for authentication too.
    pub auth_probes: bool,
}

/// The secret a file holds: its text without the line end, never empty.
fn read_secret(key: &str, path: &std::path::Path, errs: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim_end_matches(['\n', '\r']).to_string();
            if secret.is_empty() {
                errs.push(format!("{key}: {} is empty", path.display()));
                return None;
            }
            Some(secret)
        }
        Err(e) => {
            errs.push(format!("{key}: cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Limits on the Redis port's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Most connections open at once.
    pub max: u64,
    /// Close a connection idle this long; `None`: never.
    pub idle: Option<std::time::Duration>,
    /// Close a connection whose replies are not taken within this long.
    pub write: std::time::Duration,
    /// Most arguments of one request.
    pub max_args: u64,
    /// Longest inline request.
    pub max_inline: u64,
    /// Replies a connection holds before it waits for the client to take
    /// them (one reply may go past it).
    pub reply_buffer: usize,
}

/// Redis's default `maxclients`.
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;
/// How long a client may leave its replies untaken by default.
pub const DEFAULT_CLIENT_WRITE_TIMEOUT_MS: u64 = 30_000;

impl NodeConfig {
    /// Most bytes one client request may take: a peer frame, less room
    /// for the frame and the log entry around it.
    pub fn max_request_bytes(&self) -> u64 {
        max_request_bytes(self.raft.max_frame_bytes as u64)
    }

    /// Most bytes of writes batched into one log entry (a larger single
    /// write goes alone): the batcher's bound, and never more than one
    /// request, so that every entry fits a peer frame.
    pub fn max_batch_bytes(&self) -> usize {
        tidal_raft::kv_proposer::MAX_BATCH_BYTES.min(self.max_request_bytes() as usize)
    }

    /// The nodes named in `--peers` (none when joining).
    pub fn initial_nodes(&self) -> Vec<NodeId> {
        match &self.bootstrap {
            Bootstrap::Peers(p) => p.keys().copied().collect(),
            Bootstrap::Join(_) => Vec::new(),
        }
    }

    /// Control-plane members when bootstrapping from `--peers`: the first
    /// three ids in ascending order.
    pub fn cp_members(&self) -> Option<BTreeMap<NodeId, String>> {
        match &self.bootstrap {
            Bootstrap::Peers(p) => Some(p.iter().take(3).map(|(k, v)| (*k, v.clone())).collect()),
            Bootstrap::Join(_) => None,
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub const DEFAULT_MAX_VALUE_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes one client request may take. A write travels whole, in one
/// peer frame, to its PRG's leader and from there to every follower; 1 MiB
/// of the frame is left for the frame and the log entry around it.
pub const MAX_REQUEST_BYTES: u64 = max_request_bytes(tidal_raft::transport::MAX_FRAME as u64);

/// Most bytes one client request may take under a frame limit of `frame`.
pub const fn max_request_bytes(frame: u64) -> u64 {
    frame.saturating_sub(1 << 20)
}

/// Largest `max-value-bytes` under a frame limit of `frame`.
pub const fn max_value_bytes_within(frame: u64) -> u64 {
    max_request_bytes(frame).saturating_sub(64 << 10)
}
/// Largest `max-value-bytes`: a value and its command and key (64 KiB)
/// within one request. A larger value could never be replicated.
pub const MAX_MAX_VALUE_BYTES: u64 = MAX_REQUEST_BYTES - (64 << 10);
/// Storage page cache when unset (see [`tidal_raft::DEFAULT_STORAGE_CACHE_BYTES`]).
pub const DEFAULT_STORAGE_CACHE_MB: u64 = (tidal_raft::DEFAULT_STORAGE_CACHE_BYTES >> 20) as u64;

fn parse_peers(s: &str, errs: &mut Vec<String>) -> BTreeMap<NodeId, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, addr)) = part.split_once('=') else {
            errs.push(format!("peers: '{part}' is not id=host:port"));
            continue;
        };
        match id.trim().parse::<NodeId>() {
            Ok(0) | Err(_) => errs.push(format!("peers: '{id}' is not a node id (a positive integer)")),
            Ok(id) => {
                if addr.parse::<SocketAddr>().is_err() {
                    errs.push(format!("peers: '{addr}' (node {id}) is not host:port"));
                }
                if out.insert(id, addr.to_string()).is_some() {
                    errs.push(format!("peers: node {id} is listed twice"));
                }
            }
        }
    }
    if out.is_empty() {
        errs.push("peers: no peers given".to_string());
    }
    out
}

impl RawConfig {
    /// Validate and fill defaults, reporting every problem at once.
    pub fn resolve(self) -> Result<NodeConfig, ConfigErrors> {
        let mut errs = Vec::new();
        let node_id = match self.node_id {
            Some(0) => {
                errs.push("node-id: must be greater than 0".to_string());
                0
            }
            Some(id) => id,
            None => {
                errs.push("node-id: required".to_string());
                0
            }
        };
        let mut addr = |key: &str, v: Option<String>| -> String {
            match v {
                Some(a) if a.parse::<SocketAddr>().is_ok() => a,
                Some(a) => {
                    errs.push(format!("{key}: '{a}' is not host:port (e.g. 127.0.0.1:7001)"));
                    a
                }
                None => {
                    errs.push(format!("{key}: required"));
                    String::new()
                }
            }
        };
        let listen = addr("listen", self.listen);
        let advertise = self.advertise.map(|a| addr("advertise", Some(a)));
        let client_addr = addr("client-addr", self.client_addr);
        let http_addr = addr("http-addr", self.http_addr);
        let peer_source_ip = self.peer_source_ip.and_then(|ip| match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errs.push(format!("peer-source-ip: '{ip}' is not an IP address"));
                None
            }
        });
        let data_dir = self.data_dir.unwrap_or_else(|| {
            errs.push("data-dir: required".to_string());
            PathBuf::new()
        });
        let bootstrap = match (self.peers, self.join) {
            (Some(_), Some(_)) => {
                errs.push("peers/join: give one of --peers or --join, not both".to_string());
                Bootstrap::Join(String::new())
            }
            (None, None) => {
                errs.push("peers/join: one of --peers or --join is required".to_string());
                Bootstrap::Join(String::new())
            }
            (Some(p), None) => {
                let peers = parse_peers(&p, &mut errs);
                if node_id != 0 && !peers.is_empty() && !peers.contains_key(&node_id) {
                    errs.push(format!("peers: must include this node (id {node_id})"));
                }
                Bootstrap::Peers(peers)
            }
            (None, Some(j)) => {
                if j.parse::<SocketAddr>().is_err() {
                    errs.push(format!("join: '{j}' is not host:port"));
                }
                Bootstrap::Join(j)
            }
        };
        let zone = self.zone.unwrap_or_else(|| "local".to_string());
        if zone.is_empty() || zone.len() > 64 {
            errs.push("zone: must be 1-64 characters".to_string());
        }
        let slots = self.slots.unwrap_or(1024);
        let prgs = self.prgs.unwrap_or(4);
        if slots == 0 || slots > tidal_control::command::MAX_SLOTS {
            errs.push(format!("slots: must be in 1..={}, got {slots}", tidal_control::command::MAX_SLOTS));
        }
        if prgs == 0 || prgs > slots {
            errs.push(format!("prgs: must be in 1..=slots ({slots}), got {prgs}"));
        }
        let max_frame_mb = self.max_frame_mb.unwrap_or((tidal_raft::transport::MAX_FRAME >> 20) as u64);
        let top_mb = (tidal_raft::transport::MAX_FRAME >> 20) as u64;
        if !(2..=top_mb).contains(&max_frame_mb) {
            errs.push(format!("max-frame-mb: must be in 2..={top_mb}, got {max_frame_mb}"));
        }
        let max_frame = max_frame_mb.clamp(2, top_mb) << 20;
        let most_value = max_value_bytes_within(max_frame);
        let max_value_bytes = self.max_value_bytes.unwrap_or(DEFAULT_MAX_VALUE_BYTES.min(most_value));
        if max_value_bytes == 0 || max_value_bytes > most_value {
            errs.push(format!(
                "max-value-bytes: must be in 1..={most_value} (a write must fit one peer frame of max-frame-mb \
                 {max_frame_mb}), got {max_value_bytes}"
            ));
        }
        let max_api_body_kb = self.max_api_body_kb.unwrap_or(1024);
        if !(16..=64 << 10).contains(&max_api_body_kb) {
            errs.push(format!("max-api-body-kb: must be in 16..=65536, got {max_api_body_kb}"));
        }
        let maxclients = self.maxclients.unwrap_or(DEFAULT_MAXCLIENTS);
        if !(1..=1_000_000).contains(&maxclients) {
            errs.push(format!("maxclients: must be in 1..=1000000, got {maxclients}"));
        }
        let idle_secs = self.client_timeout.unwrap_or(0);
        if idle_secs > 86_400 * 365 {
            errs.push(format!("client-timeout: must be at most a year in seconds, got {idle_secs}"));
        }
        let write_ms = self.client_write_timeout_ms.unwrap_or(DEFAULT_CLIENT_WRITE_TIMEOUT_MS);
        if !(100..=3_600_000).contains(&write_ms) {
            errs.push(format!("client-write-timeout-ms: must be in 100..=3600000, got {write_ms}"));
        }
        let max_args = self.max_multibulk_len.unwrap_or(tidal_core::resp::MAX_MULTIBULK_LEN as u64);
        if !(1..=tidal_core::resp::MAX_MULTIBULK_LEN as u64).contains(&max_args) {
            errs.push(format!(
                "max-multibulk-len: must be in 1..={}, got {max_args}",
                tidal_core::resp::MAX_MULTIBULK_LEN
            ));
        }
        let max_inline = self.max_inline_len.unwrap_or(tidal_core::resp::MAX_INLINE_LEN as u64);
        if !(16..=1 << 20).contains(&max_inline) {
            errs.push(format!("max-inline-len: must be in 16..=1048576, got {max_inline}"));
        }
        let reply_buffer_kb = self.client_reply_buffer_kb.unwrap_or(1024);
        if !(16..=64 << 10).contains(&reply_buffer_kb) {
            errs.push(format!("client-reply-buffer-kb: must be in 16..=65536, got {reply_buffer_kb}"));
        }
        let clients = ClientLimits {
            max: maxclients,
            idle: (idle_secs > 0).then(|| std::time::Duration::from_secs(idle_secs)),
            write: std::time::Duration::from_millis(write_ms),
            max_args,
            max_inline,
            reply_buffer: (reply_buffer_kb << 10) as usize,
        };
        let insecure = self.insecure.unwrap_or(false);
        let tls = match (&self.certs_dir, insecure) {
            (Some(_), true) => {
                errs.push("certs-dir/insecure: give one of --certs-dir or --insecure, not both".to_string());
                None
            }
            (None, false) => {
                errs.push(
                    "certs-dir/insecure: give --certs-dir DIR (certificates from `tidal certs`), or --insecure to \
                     run without TLS"
                        .to_string(),
                );
                None
            }
            (None, true) => None,
            (Some(dir), false) => match crate::tls::Tls::load(dir) {
                Ok(tls) => match tls.identity() {
                    crate::tls::Identity::Node { id, .. } if *id != node_id && node_id != 0 => {
                        errs.push(format!(
                            "certs-dir: {} is the certificate of node {id}, this is node {node_id}",
                            dir.join(crate::tls::NODE_CERT).display()
                        ));
                        None
                    }
                    _ => Some(tls),
                },
                Err(e) => {
                    errs.push(format!("certs-dir: {e}"));
                    None
                }
            },
        };
        let client_tls = self.client_tls.unwrap_or(false);
        if client_tls && self.certs_dir.is_none() {
            errs.push("client-tls: needs --certs-dir (the Redis port serves the node's certificate)".to_string());
        }
        let admin_token = self.admin_token_file.as_deref().and_then(|p| read_secret("admin-token-file", p, &mut errs));
        let password = match (self.requirepass, &self.requirepass_file) {
            (Some(_), Some(_)) => {
                errs.push("requirepass/requirepass-file: give one, not both".to_string());
                None
            }
            (Some(p), None) if p.is_empty() => {
                errs.push("requirepass: must not be empty".to_string());
                None
            }
            (Some(p), None) => Some(p),
            (None, Some(f)) => read_secret("requirepass-file", f, &mut errs),
            (None, None) => None,
        };
        let security =
            Security { tls, client_tls, admin_token, password, auth_probes: self.auth_probes.unwrap_or(false) };
        let d = CacheThresholds::default();
        let cache = CacheThresholds {
            fresh_ms: self.cache_fresh_ms.unwrap_or(d.fresh_ms),
            cached_ms: self.cache_cached_ms.unwrap_or(d.cached_ms),
            stale_ms: self.cache_stale_ms.unwrap_or(d.stale_ms),
        };
        if let Err(e) = cache.validate() {
            errs.push(format!("cache-fresh-ms/cache-cached-ms/cache-stale-ms: {e}"));
        }
        let cache_sync_ms = self.cache_sync_ms.unwrap_or(500);
        if cache_sync_ms == 0 || cache_sync_ms >= cache.fresh_ms {
            errs.push(format!(
                "cache-sync-ms: must be > 0 and below cache-fresh-ms ({}), got {cache_sync_ms}",
                cache.fresh_ms
            ));
        }
        let dr = RaftTuning::default();
        let mut raft = RaftTuning {
            heartbeat_ms: self.heartbeat_ms.unwrap_or(dr.heartbeat_ms),
            election_min_ms: self.election_min_ms.unwrap_or(dr.election_min_ms),
            election_max_ms: self.election_max_ms.unwrap_or(dr.election_max_ms),
            snapshot_every: self.snapshot_every.unwrap_or(dr.snapshot_every),
            snapshot_bytes: self.snapshot_every_mb.map_or(dr.snapshot_bytes, |mb| mb.saturating_mul(1 << 20)),
            keep_after_snapshot: self.keep_after_snapshot.unwrap_or(dr.keep_after_snapshot),
            log_hold_ms: self.log_hold_ms.unwrap_or(dr.log_hold_ms),
            // A snapshot piece goes in one frame.
            snapshot_chunk_bytes: dr.snapshot_chunk_bytes.min(max_request_bytes(max_frame)),
            snapshot_rate_bytes: 0,
            max_frame_bytes: max_frame as usize,
            read_policy: dr.read_policy,
            lease_margin_ms: self.lease_margin_ms.unwrap_or(dr.lease_margin_ms),
        };
        match self.read_policy.as_deref().map(str::parse) {
            None => {}
            Some(Ok(p)) => raft.read_policy = p,
            Some(Err(e)) => errs.push(format!("read-policy: {e}")),
        }
        if let Err(e) = raft.check_lease() {
            errs.push(format!("heartbeat-ms/election-max-ms/lease-margin-ms: {e}"));
        }
        if raft.log_hold_ms > 86_400_000 {
            errs.push(format!("log-hold-ms: must be at most 86400000 (a day), got {}", raft.log_hold_ms));
        }
        if let Err(e) = raft.to_config("check") {
            errs.push(format!("heartbeat-ms/election-min-ms/election-max-ms/snapshot-every: {e}"));
        }
        if raft.snapshot_every == 0 {
            errs.push("snapshot-every: must be greater than 0".to_string());
        }
        if let Some(mb) = self.snapshot_every_mb.filter(|&mb| mb > 1 << 20) {
            errs.push(format!("snapshot-every-mb: must be at most 1048576 (1 TiB), got {mb}"));
        }
        let ready_lag = self.ready_lag.unwrap_or(1000);
        let retry_budget_ms = self.retry_budget_ms.unwrap_or(10_000);
        if retry_budget_ms == 0 {
            errs.push("retry-budget-ms: must be greater than 0".to_string());
        }
        let storage_cache_mb = self.storage_cache_mb.unwrap_or(DEFAULT_STORAGE_CACHE_MB);
        if !(4..=1 << 20).contains(&storage_cache_mb) {
            errs.push(format!("storage-cache-mb: must be between 4 and 1048576, got {storage_cache_mb}"));
        }
        let default_checkpoint = StorageOptions::default().state_checkpoint.as_millis() as u64;
        let state_checkpoint_ms = self.state_checkpoint_ms.unwrap_or(default_checkpoint);
        if !(10..=600_000).contains(&state_checkpoint_ms) {
            errs.push(format!("state-checkpoint-ms: must be between 10 and 600000, got {state_checkpoint_ms}"));
        }
        let mut moves = tidal_control::ExecutorConfig::default();
        let move_rate_mb = self.move_rate_mb.unwrap_or(0);
        if move_rate_mb > 1 << 20 {
            errs.push(format!("move-rate-mb: must be at most 1048576 (0: no limit), got {move_rate_mb}"));
        }
        moves.rate_bytes = move_rate_mb << 20;
        // Replica copies (snapshots) keep to the same rate as slot copies.
        raft.snapshot_rate_bytes = moves.rate_bytes;
        let fence_budget_ms = self.fence_budget_ms.unwrap_or(moves.limits.fence_budget_ms);
        if !(10..=600_000).contains(&fence_budget_ms) {
            errs.push(format!("fence-budget-ms: must be between 10 and 600000, got {fence_budget_ms}"));
        }
        moves.limits.fence_budget_ms = fence_budget_ms;
        let default_budget = tidal_core::operation::Budget::default();
        let budget = tidal_core::operation::Budget {
            per_node: self.max_moves_per_node.unwrap_or(default_budget.per_node),
            cluster: self.max_moves.unwrap_or(default_budget.cluster),
        };
        if !(1..=64).contains(&budget.per_node) {
            errs.push(format!("max-moves-per-node: must be between 1 and 64, got {}", budget.per_node));
        }
        if !(1..=1024).contains(&budget.cluster) {
            errs.push(format!("max-moves: must be between 1 and 1024, got {}", budget.cluster));
        }
        let min_available_replicas = self.min_available_replicas.unwrap_or(tidal_core::health::MIN_AVAILABLE);
        if !(1..=tidal_core::placement::REPLICAS - 1).contains(&min_available_replicas) {
            errs.push(format!(
                "min-available-replicas: must be between 1 and {} (a replica move takes one of {} away), got \
                 {min_available_replicas}",
                tidal_core::placement::REPLICAS - 1,
                tidal_core::placement::REPLICAS
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let worker_threads = self.worker_threads.unwrap_or(cores);
        if !(1..=1024).contains(&worker_threads) {
            errs.push(format!("worker-threads: must be between 1 and 1024, got {worker_threads}"));
        }
        let drain_timeout_ms = self.drain_timeout_ms.unwrap_or(600_000);
        if drain_timeout_ms > 86_400_000 {
            errs.push(format!("drain-timeout-ms: must be at most 86400000 (a day), got {drain_timeout_ms}"));
        }
        let self_heal_delay_ms = self.self_heal_delay_ms.unwrap_or(300_000);
        if self_heal_delay_ms != 0 && !(1_000..=86_400_000).contains(&self_heal_delay_ms) {
            errs.push(format!(
                "self-heal-delay-ms: must be 0 (never) or between 1000 and 86400000, got {self_heal_delay_ms}"
            ));
        }
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        Ok(NodeConfig {
            node_id,
            listen,
            advertise,
            peer_source_ip,
            client_addr,
            http_addr,
            data_dir,
            bootstrap,
            zone,
            slots,
            prgs,
            max_value_bytes,
            cache,
            cache_sync_ms,
            raft,
            ready_lag,
            retry_budget_ms,
            storage: StorageOptions {
                cache_bytes: (storage_cache_mb << 20) as usize,
                state_checkpoint: std::time::Duration::from_millis(state_checkpoint_ms),
                ..StorageOptions::default()
            },
            worker_threads: worker_threads as usize,
            moves,
            budget,
            min_available_replicas,
            security,
            max_api_body: (max_api_body_kb << 10) as usize,
            replace_node: self.replace_node.unwrap_or(false),
            drain_timeout_ms,
            self_heal_delay_ms,
            shrink_auto_arm: self.shrink_auto_arm.unwrap_or(false),
            clients,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

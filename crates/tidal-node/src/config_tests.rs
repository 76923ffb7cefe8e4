use super::*;

fn good() -> RawConfig {
    RawConfig {
        node_id: Some(1),
        listen: Some("127.0.0.1:7001".into()),
        client_addr: Some("127.0.0.1:6380".into()),
        http_addr: Some("127.0.0.1:8001".into()),
        data_dir: Some("/tmp/x".into()),
        peers: Some("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003".into()),
        insecure: Some(true),
        ..Default::default()
    }
}

#[test]
fn a_complete_config_resolves_with_defaults() {
    let c = good().resolve().unwrap();
    assert_eq!(c.slots, 1024);
    assert_eq!(c.prgs, 4);
    assert_eq!(c.max_value_bytes, DEFAULT_MAX_VALUE_BYTES);
    assert_eq!(c.storage.cache_bytes, 16 << 20);
    assert_eq!(c.storage.state_checkpoint, std::time::Duration::from_secs(5));
    assert_eq!(c.cp_members().unwrap().len(), 3);
    assert_eq!(c.zone, "local");
}

#[test]
fn every_error_is_reported_at_once() {
    let raw = RawConfig {
        node_id: Some(0),
        listen: Some("nope".into()),
        peers: Some("x=1".into()),
        prgs: Some(0),
        cache_fresh_ms: Some(100),
        cache_cached_ms: Some(50),
        ..Default::default()
    };
    let errs = raw.resolve().unwrap_err().0;
    for key in ["node-id", "listen", "client-addr", "http-addr", "data-dir", "peers", "prgs", "cache-fresh-ms"] {
        assert!(errs.iter().any(|e| e.starts_with(key)), "missing {key} in {errs:?}");
    }
}

#[test]
fn peers_and_join_are_exclusive_and_peers_must_include_self() {
    let mut raw = good();
    raw.join = Some("127.0.0.1:7002".into());
    assert!(raw.resolve().unwrap_err().0.iter().any(|e| e.contains("not both")));
    let mut raw = good();
    raw.node_id = Some(9);
    assert!(raw.resolve().unwrap_err().0.iter().any(|e| e.contains("must include this node")));
}

#[test]
fn flags_override_the_file_and_unknown_keys_are_errors() {
    let file = RawConfig::from_toml("node-id = 5\nzone = \"a\"\nprgs = 8\n").unwrap();
    let merged = good().or(file);
    assert_eq!(merged.node_id, Some(1));
    assert_eq!(merged.zone.as_deref(), Some("a"));
    assert_eq!(merged.prgs, Some(8));
    let err = RawConfig::from_toml("nod-id = 5\n").unwrap_err();
    assert!(err.0[0].contains("nod-id"), "{err}");
}

#[test]
fn every_bad_key_in_a_file_is_named() {
    let err =
        RawConfig::from_toml("node-id = \"x\"\nzone = 5\nslots = 99999999999\nprgs = 4\nnod-id = 1\n").unwrap_err();
    let mut keys: Vec<&str> = err.0.iter().map(|e| e.split(':').next().unwrap()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["nod-id", "node-id", "slots", "zone"], "{err}");
    assert!(err.0.iter().any(|e| e.starts_with("node-id: invalid type: string \"x\"")), "{err}");
    let err = RawConfig::from_toml("node-id = 1\n\nzone = = 3\nprgs = 4\n").unwrap_err();
    assert!(err.0[0].starts_with("config file: line 3: "), "{err}");
    assert!(!err.0[0].contains('\n'), "{err}");
}

#[test]
fn values_that_cannot_replicate_are_refused() {
    let mut raw = good();
    raw.max_value_bytes = Some(MAX_MAX_VALUE_BYTES);
    assert!(raw.clone().resolve().is_ok());
    raw.max_value_bytes = Some(MAX_MAX_VALUE_BYTES + 1);
    let errs = raw.resolve().unwrap_err().0;
    assert!(errs[0].starts_with("max-value-bytes: must be in 1..="), "{errs:?}");
    // A request at the limit, in one entry, fits one peer frame.
    const { assert!(MAX_REQUEST_BYTES + (1 << 20) <= tidal_raft::transport::MAX_FRAME as u64) };
}

#[test]
fn a_smaller_frame_limit_bounds_values_and_snapshot_pieces() {
    let mut raw = good();
    raw.max_frame_mb = Some(8);
    let c = raw.clone().resolve().unwrap();
    assert_eq!(c.raft.max_frame_bytes, 8 << 20);
    // The default value limit shrinks to fit the frame; so do snapshot pieces.
    assert_eq!(c.max_value_bytes, (7 << 20) - (64 << 10));
    assert!(c.raft.snapshot_chunk_bytes <= c.max_request_bytes());
    // A value limit that a frame could not carry is refused, naming both.
    raw.max_value_bytes = Some(16 << 20);
    let errs = raw.clone().resolve().unwrap_err().0;
    assert!(errs[0].contains("max-value-bytes") && errs[0].contains("max-frame-mb 8"), "{errs:?}");
    for bad in [0, 1, 65, 1 << 40] {
        raw.max_frame_mb = Some(bad);
        raw.max_value_bytes = Some(1024);
        let errs = raw.clone().resolve().unwrap_err().0;
        assert!(errs[0].starts_with("max-frame-mb: must be in 2..=64"), "{bad}: {errs:?}");
    }
}

#[test]
fn groups_snapshot_by_bytes_unless_told_not_to() {
    let mut raw = good();
    assert_eq!(raw.clone().resolve().unwrap().raft.snapshot_bytes, 64 << 20);
    raw.snapshot_every_mb = Some(0);
    assert_eq!(raw.clone().resolve().unwrap().raft.snapshot_bytes, 0);
    raw.snapshot_every_mb = Some(256);
    assert_eq!(raw.clone().resolve().unwrap().raft.snapshot_bytes, 256 << 20);
    raw.snapshot_every_mb = Some((1 << 20) + 1);
    let errs = raw.resolve().unwrap_err().0;
    assert!(errs[0].starts_with("snapshot-every-mb: must be at most 1048576"), "{errs:?}");
}

#[test]
fn the_admin_body_limit_is_bounded() {
    let mut raw = good();
    assert_eq!(raw.clone().resolve().unwrap().max_api_body, 1 << 20);
    raw.max_api_body_kb = Some(64);
    assert_eq!(raw.clone().resolve().unwrap().max_api_body, 64 << 10);
    raw.max_api_body_kb = Some(1);
    assert!(raw.resolve().unwrap_err().0[0].starts_with("max-api-body-kb: must be in 16..="));
}

#[test]
fn security_settings_are_one_or_the_other_and_secrets_come_from_files() {
    let mut raw = good();
    raw.insecure = None;
    let errs = raw.clone().resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("certs-dir/insecure: give --certs-dir DIR")), "{errs:?}");
    raw.insecure = Some(true);
    raw.certs_dir = Some("/nonexistent".into());
    let errs = raw.clone().resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.contains("not both")), "{errs:?}");
    raw.certs_dir = None;
    raw.requirepass = Some("a".into());
    raw.requirepass_file = Some("/nonexistent".into());
    let errs = raw.clone().resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("requirepass/requirepass-file: give one")), "{errs:?}");
    raw.requirepass = None;
    let errs = raw.clone().resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("requirepass-file: cannot read /nonexistent")), "{errs:?}");
    let dir = std::env::temp_dir().join(format!("tidal-secret-{}", std::process::id()));
    std::fs::write(&dir, "pw\n").unwrap();
    raw.requirepass_file = Some(dir.clone());
    raw.admin_token_file = Some(dir.clone());
    let c = raw.clone().resolve().unwrap();
    assert_eq!((c.security.password.as_deref(), c.security.admin_token.as_deref()), (Some("pw"), Some("pw")));
    std::fs::write(&dir, "\n").unwrap();
    let errs = raw.resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.ends_with("is empty")), "{errs:?}");
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn the_floor_of_serving_replicas_leaves_a_replica_to_move() {
    let mut raw = good();
    assert_eq!(raw.clone().resolve().unwrap().min_available_replicas, 2);
    raw.min_available_replicas = Some(1);
    assert_eq!(raw.clone().resolve().unwrap().min_available_replicas, 1);
    for bad in [0, 3] {
        raw.min_available_replicas = Some(bad);
        let errs = raw.clone().resolve().unwrap_err().0;
        assert!(errs[0].starts_with("min-available-replicas: must be between 1 and 2"), "{errs:?}");
    }
}

/// The keys a config file may hold, and the names errors give settings
/// checked together.
const KEYS: &[&str] = &[
    "node-id",
    "listen",
    "client-addr",
    "http-addr",
    "data-dir",
    "peers",
    "join",
    "zone",
    "slots",
    "prgs",
    "max-value-bytes",
    "cache-fresh-ms",
    "cache-cached-ms",
    "cache-stale-ms",
    "cache-sync-ms",
    "heartbeat-ms",
    "election-min-ms",
    "election-max-ms",
    "read-policy",
    "lease-margin-ms",
    "snapshot-every",
    "snapshot-every-mb",
    "keep-after-snapshot",
    "log-hold-ms",
    "ready-lag",
    "retry-budget-ms",
    "storage-cache-mb",
    "state-checkpoint-ms",
    "worker-threads",
    "move-rate-mb",
    "fence-budget-ms",
    "max-moves-per-node",
    "max-moves",
    "min-available-replicas",
    "replace-node",
    "peers/join",
    "cache-fresh-ms/cache-cached-ms/cache-stale-ms",
    "heartbeat-ms/election-min-ms/election-max-ms/snapshot-every",
    "heartbeat-ms/election-max-ms/lease-margin-ms",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..2_000_000).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9.:=,]{0,20}".prop_map(|s| format!("{s:?}")),
        Just("\"127.0.0.1:7001\"".to_string()),
        Just("\"1=127.0.0.1:7001\"".to_string()),
        Just("[1, 2]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("1.5".to_string()),
    ]
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text: a config or errors, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = RawConfig::from_toml(&text);
    }

    /// Files of known and unknown keys with values of every type: each
    /// error names the key it is about, from the file and from validation.
    #[test]
    fn every_error_names_its_key(
        lines in proptest::collection::vec(
            (prop_oneof![proptest::sample::select(&KEYS[..34]).prop_map(str::to_string), "[a-z]{1,8}"], toml_value()),
            0..8,
        ),
    ) {
        let mut seen = std::collections::BTreeSet::new();
        let text: String = lines
            .iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        match RawConfig::from_toml(&text) {
            Err(errs) => {
                for e in &errs.0 {
                    let key = e.split(':').next().unwrap();
                    prop_assert!(seen.contains(key), "{:?} does not name a key of {:?}", e, text);
                }
            }
            Ok(file) => {
                if let Err(errs) = file.or(good()).resolve() {
                    for e in &errs.0 {
                        let key = e.split(':').next().unwrap();
                        prop_assert!(KEYS.contains(&key), "{:?} does not name a key", e);
                    }
                }
            }
        }
    }
}

#[test]
fn advertise_and_peer_source_ip_are_checked() {
    let mut raw = good();
    raw.advertise = Some("127.0.0.1:9001".into());
    raw.peer_source_ip = Some("127.0.1.1".into());
    let c = raw.resolve().unwrap();
    assert_eq!(c.advertise.as_deref(), Some("127.0.0.1:9001"));
    assert_eq!(c.peer_source_ip, Some("127.0.1.1".parse().unwrap()));
    let mut raw = good();
    raw.advertise = Some("nowhere".into());
    raw.peer_source_ip = Some("127.0.1".into());
    let errs = raw.resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("advertise: 'nowhere'")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("peer-source-ip: '127.0.1'")), "{errs:?}");
}

#[test]
fn client_limits_default_as_redis_and_refuse_nonsense() {
    let c = good().resolve().unwrap();
    let defaults = ClientLimits {
        max: 10_000,
        idle: None,
        write: std::time::Duration::from_secs(30),
        max_args: 1 << 20,
        max_inline: 64 << 10,
        reply_buffer: 1 << 20,
    };
    assert_eq!(c.clients, defaults);
    let mut raw = good();
    raw.maxclients = Some(0);
    raw.client_write_timeout_ms = Some(5);
    raw.max_multibulk_len = Some(0);
    raw.max_inline_len = Some(1 << 30);
    raw.client_reply_buffer_kb = Some(1);
    let errs = raw.resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("client-reply-buffer-kb: must be in 16..=")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("maxclients: must be in 1..=")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("client-write-timeout-ms: must be in 100..=")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("max-multibulk-len: must be in 1..=")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("max-inline-len: must be in 16..=")), "{errs:?}");
    let from_file = RawConfig::from_toml("maxclients = 50\nclient-timeout = 300\n").unwrap();
    let c = from_file.or(good()).resolve().unwrap();
    assert_eq!((c.clients.max, c.clients.idle), (50, Some(std::time::Duration::from_secs(300))));
}

#[test]
fn reads_take_a_lease_shorter_than_the_election_timeout_unless_told_otherwise() {
    use std::time::Duration;
    use tidal_raft::read_gate::ReadPolicy;
    let c = good().resolve().unwrap();
    assert_eq!(c.raft.read_policy, ReadPolicy::Lease);
    assert_eq!(c.raft.read_lease(), Duration::from_millis(c.raft.election_max_ms - 200));
    let c =
        RawConfig { read_policy: Some("read-index".into()), lease_margin_ms: Some(300), ..good() }.resolve().unwrap();
    assert_eq!(c.raft.read_policy, ReadPolicy::ReadIndex);
    assert_eq!(c.raft.read_lease(), Duration::from_millis(c.raft.election_max_ms - 300));
    // A policy that does not exist, and a lease that would not outlast two
    // heartbeats (1000 - 850 < 2 × 100), are refused by name.
    let errs = RawConfig { read_policy: Some("stale".into()), ..good() }.resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e == "read-policy: expected lease or read-index, got 'stale'"), "{errs:?}");
    let errs = RawConfig { lease_margin_ms: Some(850), ..good() }.resolve().unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("heartbeat-ms/election-max-ms/lease-margin-ms: ")), "{errs:?}");
    // Under read-index no lease is taken, so any margin will do.
    let raw = RawConfig { read_policy: Some("read-index".into()), lease_margin_ms: Some(5000), ..good() };
    assert!(raw.resolve().is_ok());
}

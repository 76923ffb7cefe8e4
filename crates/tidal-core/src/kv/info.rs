//! The INFO reply.
//!
//! Client libraries read INFO on connect (ioredis waits for `loading:0`)
//! and tools read `redis_version`, `role` and the keyspace line, so tidal
//! renders Redis' section layout from numbers the node supplies.

use super::reply::Reply;

/// Node facts INFO reports; filled in by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoView {
    /// The Redis version whose behaviour tidal follows.
    pub redis_version: String,
    /// tidal's own version.
    pub tidal_version: String,
    pub node_id: String,
    pub tcp_port: u16,
    pub uptime_ms: u64,
    pub connected_clients: u64,
    /// Clients waiting in a blocking command (BLPOP and kin).
    pub blocked_clients: u64,
    pub used_memory: u64,
    pub total_commands_processed: u64,
    /// This node's channels, patterns and shard channels with a subscriber.
    pub pubsub: [u64; 3],
    /// Changes applied to the keyspace since the last SAVE on this node
    /// (or its start), and that instant in Unix seconds.
    pub changes_since_save: u64,
    pub last_save_secs: u64,
    /// Live keys in the tenant keyspace, if known; omitted from `# Keyspace`
    /// when zero, like Redis.
    pub keys: u64,
    /// Error replies sent since start (or CONFIG RESETSTAT).
    pub total_error_replies: u64,
    /// `# Commandstats` lines: one per command called.
    pub commandstats: Vec<String>,
    /// `# Errorstats` lines: one per error code answered.
    pub errorstats: Vec<String>,
}

const DEFAULT_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "errorstats", "cluster", "keyspace"];

/// What `all` and `everything` add to the default sections, as in Redis.
const MORE_SECTIONS: &[&str] = &["commandstats"];

fn section(name: &str, view: &InfoView) -> Vec<String> {
    let kv = |k: &str, v: String| format!("{k}:{v}");
    match name {
        "server" => vec![
            kv("redis_version", view.redis_version.clone()),
            kv("redis_mode", "standalone".into()),
            kv("tidal_version", view.tidal_version.clone()),
            kv("run_id", view.node_id.clone()),
            kv("tcp_port", view.tcp_port.to_string()),
            kv("uptime_in_seconds", (view.uptime_ms / 1000).to_string()),
            kv("uptime_in_days", (view.uptime_ms / 86_400_000).to_string()),
        ],
        "clients" => vec![
            kv("connected_clients", view.connected_clients.to_string()),
            kv("blocked_clients", view.blocked_clients.to_string()),
        ],
        "memory" => vec![
            kv("used_memory", view.used_memory.to_string()),
            kv("mem_allocator", "libc".into()),
            kv("maxmemory", "0".into()),
            kv("maxmemory_policy", "noeviction".into()),
        ],
        "persistence" => vec![
            kv("loading", "0".into()),
            kv("rdb_changes_since_last_save", view.changes_since_save.to_string()),
            kv("rdb_bgsave_in_progress", "0".into()),
            kv("rdb_last_save_time", view.last_save_secs.to_string()),
            kv("aof_enabled", "1".into()),
        ],
        "stats" => vec![
            kv("total_commands_processed", view.total_commands_processed.to_string()),
            kv("total_error_replies", view.total_error_replies.to_string()),
            kv("pubsub_channels", view.pubsub[0].to_string()),
            kv("pubsub_patterns", view.pubsub[1].to_string()),
            kv("pubsubshard_channels", view.pubsub[2].to_string()),
        ],
        "replication" => vec![kv("role", "master".into()), kv("connected_slaves", "0".into())],
        "cluster" => vec![kv("cluster_enabled", "0".into())],
        "commandstats" => view.commandstats.clone(),
        "errorstats" => view.errorstats.clone(),
        "keyspace" if view.keys > 0 => vec![format!("db0:keys={},expires=0,avg_ttl=0", view.keys)],
        "keyspace" => Vec::new(),
        _ => Vec::new(),
    }
}

/// INFO [section ...]: no section or `default` give the default
/// sections, `all` or `everything` those and `commandstats`; unknown names
/// give nothing, as in Redis.
pub fn info_reply(sections: &[Vec<u8>], view: &InfoView) -> Reply {
    let wanted: Vec<String> = sections.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let every = wanted.iter().any(|s| matches!(s.as_str(), "all" | "everything"));
    let default = every || wanted.is_empty() || wanted.iter().any(|s| s == "default");
    let mut out = String::new();
    for name in DEFAULT_SECTIONS.iter().chain(MORE_SECTIONS) {
        let chosen = wanted.iter().any(|w| w == name)
            || (default && DEFAULT_SECTIONS.contains(name))
            || (every && MORE_SECTIONS.contains(name));
        if !chosen {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        out.push_str(&format!("# {title}\r\n"));
        for line in section(name, view) {
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    Reply::Verbatim(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> InfoView {
        InfoView {
            redis_version: "7.0.0".into(),
            tidal_version: "0.1.0".into(),
            node_id: "n1".into(),
            tcp_port: 6379,
            uptime_ms: 90_000,
            connected_clients: 2,
            blocked_clients: 0,
            used_memory: 1024,
            total_commands_processed: 5,
            pubsub: [1, 0, 0],
            keys: 3,
            changes_since_save: 7,
            last_save_secs: 1_700_000_000,
            total_error_replies: 4,
            commandstats: vec!["cmdstat_get:calls=2,usec=9,usec_per_call=4.50,rejected_calls=0,failed_calls=0".into()],
            errorstats: vec!["errorstat_ERR:count=4".into()],
        }
    }

    fn text(r: Reply) -> String {
        let Reply::Verbatim(t) = r else { panic!() };
        t
    }

    #[test]
    fn default_has_every_section_and_loading_zero() {
        let t = text(info_reply(&[], &view()));
        assert!(t.starts_with("# Server\r\nredis_version:7.0.0\r\n"));
        assert!(t.contains("\r\nloading:0\r\n"));
        assert!(t.contains("# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"));
        assert!(t.contains("uptime_in_seconds:90\r\n"));
        assert!(t.contains("\r\nrdb_changes_since_last_save:7\r\n"));
        assert!(t.contains("\r\nrdb_last_save_time:1700000000\r\n"));
        assert!(t.contains("\r\npubsub_channels:1\r\npubsub_patterns:0\r\n"));
    }

    #[test]
    fn command_stats_come_with_all_and_error_stats_by_default() {
        let t = text(info_reply(&[], &view()));
        assert!(t.contains("\r\ntotal_error_replies:4\r\n") && t.contains("# Errorstats\r\nerrorstat_ERR:count=4\r\n"));
        assert!(!t.contains("cmdstat_"));
        let t = text(info_reply(&[b"all".to_vec()], &view()));
        assert!(t.contains("# Commandstats\r\ncmdstat_get:calls=2,"));
        let t = text(info_reply(&[b"commandstats".to_vec()], &view()));
        assert!(t.starts_with("# Commandstats\r\n") && !t.contains("# Server"));
    }

    #[test]
    fn sections_filter_case_insensitively() {
        let t = text(info_reply(&[b"REPLICATION".to_vec()], &view()));
        assert_eq!(t, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        assert_eq!(text(info_reply(&[b"nope".to_vec()], &view())), "");
    }
}

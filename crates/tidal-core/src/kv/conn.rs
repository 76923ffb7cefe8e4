//! Commands that are not data operations on one group: the ones a node
//! answers from connection state ([`ConnCmd`]) and the ones that span the
//! whole keyspace ([`KeyspaceCmd`]), plus reply builders for them.

use super::reply::Reply;

/// Answered by the connection or node itself, without touching data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnCmd {
    /// PING [message]: `PONG`, or the message as a bulk string.
    Ping(Option<Vec<u8>>),
    Echo(Vec<u8>),
    /// HELLO; `protover` is already checked to be 2 or 3.
    Hello {
        protover: Option<i64>,
        auth: Option<(Vec<u8>, Vec<u8>)>,
        setname: Option<Vec<u8>>,
    },
    /// AUTH [username] password.
    Auth {
        user: Option<Vec<u8>>,
        pass: Vec<u8>,
    },
    /// SELECT index: tidal has only database 0.
    Select(i64),
    Quit,
    Reset,
    /// CLIENT SETNAME; already validated, empty clears the name.
    ClientSetName(Vec<u8>),
    ClientGetName,
    ClientSetInfo {
        attr: ClientSetInfoAttr,
        value: Vec<u8>,
    },
    ClientId,
    ClientInfo,
    ClientList,
    /// CLIENT NO-EVICT / NO-TOUCH ON|OFF: accepted, nothing to change.
    ClientNoEvict(bool),
    ClientNoTouch(bool),
    /// CLIENT REPLY ON|OFF|SKIP.
    ClientReply(ReplyMode),
    /// CONFIG GET patterns; answer with [`super::config_get`].
    ConfigGet(Vec<Vec<u8>>),
    /// CONFIG SET pairs; answer with [`super::config_set`].
    ConfigSet(Vec<(Vec<u8>, Vec<u8>)>),
    ConfigResetStat,
    /// COMMAND and its subcommands; answer with [`super::command_reply`].
    Command(CommandSub),
    /// INFO [section ...]; answer with [`super::info_reply`].
    Info(Vec<Vec<u8>>),
    /// Cluster-client handshakes: accepted, reply OK.
    ReadOnly,
    ReadWrite,
    /// WAIT numreplicas timeout. Acknowledged writes are already committed
    /// to a Raft majority, so the node can answer at once.
    Wait {
        numreplicas: i64,
        timeout_ms: i64,
    },
    /// A HELP subcommand; reply with these lines as status strings.
    Help(Vec<String>),
    /// Transactions: MULTI, EXEC, DISCARD, WATCH key..., UNWATCH.
    Multi,
    Exec,
    Discard,
    Watch(Vec<Vec<u8>>),
    Unwatch,
    /// TIME: the node's clock.
    Time,
    /// FUNCTION FLUSH: tidal holds no functions, so there is nothing to
    /// remove.
    FunctionFlush,
    /// CLIENT UNBLOCK id [TIMEOUT|ERROR]: end the blocking command of
    /// this node's client `id`, with its timeout's reply or (`error`) the
    /// UNBLOCKED error.
    ClientUnblock {
        id: u64,
        error: bool,
    },
    /// SAVE: every acknowledged write is already durable on a majority of
    /// its PRG, so there is nothing left to save.
    Save,
    /// SHUTDOWN: refused; a node stops through `tidal drain` or SIGTERM.
    Shutdown,
}

/// CLIENT SETINFO's attribute.
/// Whether a connection's commands are answered (CLIENT REPLY). Pub/sub
/// confirmations and messages go out whatever it says, as in Redis 7.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    /// No reply to any command, this one included, until ON.
    Off,
    /// No reply to this command and the next.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSetInfoAttr {
    LibName,
    LibVer,
}

/// COMMAND's forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSub {
    /// COMMAND with no subcommand: every entry.
    All,
    Count,
    List,
    /// COMMAND INFO [name ...]; no names means all.
    Info(Vec<Vec<u8>>),
    Docs(Vec<Vec<u8>>),
    /// COMMAND GETKEYS (`flags: false`) or GETKEYSANDFLAGS: the keys of
    /// a command line.
    GetKeys {
        args: Vec<Vec<u8>>,
        flags: bool,
    },
}

/// Commands over the whole tenant keyspace, fanned out to every group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceCmd {
    DbSize,
    /// FLUSHDB [ASYNC|SYNC]; `lazy` is ASYNC (same effect in tidal).
    FlushDb {
        lazy: bool,
    },
    FlushAll {
        lazy: bool,
    },
    Keys(Vec<u8>),
    RandomKey,
    /// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]. `MATCH *` is
    /// normalized to `None`.
    Scan {
        cursor: u64,
        pattern: Option<Vec<u8>>,
        count: Option<usize>,
        type_filter: Option<Vec<u8>>,
    },
}

/// What HELLO reports about the server; filled in by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloView {
    /// Reported as `server`; clients generally expect `redis`.
    pub server: String,
    /// The Redis version whose behaviour tidal follows, e.g. `7.0.0`.
    pub version: String,
    /// The protocol now in effect for the connection (2 or 3).
    pub proto: i64,
    /// The connection's CLIENT ID.
    pub client_id: i64,
}

/// The HELLO reply: a map in RESP3, a flat array in RESP2.
pub fn hello_reply(view: &HelloView) -> Reply {
    let field = |k: &str, v: Reply| (Reply::bulk(k), v);
    Reply::Map(vec![
        field("server", Reply::bulk(view.server.as_str())),
        field("version", Reply::bulk(view.version.as_str())),
        field("proto", Reply::Int(view.proto)),
        field("id", Reply::Int(view.client_id)),
        field("mode", Reply::bulk("standalone")),
        field("role", Reply::bulk("master")),
        field("modules", Reply::Array(Vec::new())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_has_redis_fields_in_order() {
        let view = HelloView { server: "redis".into(), version: "7.0.0".into(), proto: 3, client_id: 9 };
        let Reply::Map(fields) = hello_reply(&view) else { panic!() };
        let keys: Vec<_> = fields.iter().map(|(k, _)| k.clone()).collect();
        let want: Vec<_> =
            ["server", "version", "proto", "id", "mode", "role", "modules"].iter().map(|k| Reply::bulk(*k)).collect();
        assert_eq!(keys, want);
        assert_eq!(fields[2].1, Reply::Int(3));
        assert_eq!(fields[3].1, Reply::Int(9));
    }
}

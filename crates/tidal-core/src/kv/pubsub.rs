//! Pub/sub commands: what a client asks of the node's hub of
//! subscriptions (the node delivers; nothing here touches data).
//!
//! A channel is not a key: SUBSCRIBE and PUBLISH reach every node of the
//! cluster. A shard channel (SSUBSCRIBE, SPUBLISH) hashes to a slot as a
//! key does, so the node refuses the channels of one SSUBSCRIBE that do
//! not share a slot, as Redis Cluster does.

use super::command::Command;
use super::reply::Reply;

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

/// Which of a client's three kinds of subscription a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SubKind {
    /// SUBSCRIBE: one channel by name.
    Channel,
    /// PSUBSCRIBE: every channel a glob pattern matches.
    Pattern,
    /// SSUBSCRIBE: one shard channel by name.
    Shard,
}

impl SubKind {
    /// The word a (un)subscription's confirmation starts with.
    pub fn confirm_word(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (SubKind::Channel, true) => "subscribe",
            (SubKind::Channel, false) => "unsubscribe",
            (SubKind::Pattern, true) => "psubscribe",
            (SubKind::Pattern, false) => "punsubscribe",
            (SubKind::Shard, true) => "ssubscribe",
            (SubKind::Shard, false) => "sunsubscribe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubCmd {
    Subscribe {
        kind: SubKind,
        channels: Vec<Vec<u8>>,
    },
    /// With no channels: every subscription of the kind.
    Unsubscribe {
        kind: SubKind,
        channels: Vec<Vec<u8>>,
    },
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// PUBSUB CHANNELS / SHARDCHANNELS: the channels with a subscriber,
    /// those `pattern` matches when it is given.
    Channels {
        shard: bool,
        pattern: Option<Vec<u8>>,
    },
    /// PUBSUB NUMSUB / SHARDNUMSUB: each channel's subscribers.
    NumSub {
        shard: bool,
        channels: Vec<Vec<u8>>,
    },
    /// PUBSUB NUMPAT: the patterns subscribed to, each counted once.
    NumPat,
}

impl PubSubCmd {
    /// SUBSCRIBE and its kin: the connection's own state, not a question
    /// for the cluster.
    pub fn changes_subscriptions(&self) -> bool {
        matches!(self, PubSubCmd::Subscribe { .. } | PubSubCmd::Unsubscribe { .. })
    }
}

fn pubsub(cmd: PubSubCmd) -> Parsed {
    Ok(Command::PubSub(cmd))
}

fn rest(mut a: Args) -> Args {
    a.remove(0);
    a
}

pub(super) fn subscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Subscribe { kind: SubKind::Channel, channels: rest(a) })
}

pub(super) fn psubscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Subscribe { kind: SubKind::Pattern, channels: rest(a) })
}

pub(super) fn ssubscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Subscribe { kind: SubKind::Shard, channels: rest(a) })
}

pub(super) fn unsubscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Unsubscribe { kind: SubKind::Channel, channels: rest(a) })
}

pub(super) fn punsubscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Unsubscribe { kind: SubKind::Pattern, channels: rest(a) })
}

pub(super) fn sunsubscribe(a: Args) -> Parsed {
    pubsub(PubSubCmd::Unsubscribe { kind: SubKind::Shard, channels: rest(a) })
}

fn publish_of(mut a: Args, shard: bool) -> Parsed {
    let message = a.pop().unwrap_or_default();
    let channel = a.pop().unwrap_or_default();
    pubsub(PubSubCmd::Publish { shard, channel, message })
}

pub(super) fn publish(a: Args) -> Parsed {
    publish_of(a, false)
}

pub(super) fn spublish(a: Args) -> Parsed {
    publish_of(a, true)
}

fn channels_of(a: Args, shard: bool) -> Parsed {
    match a.len() {
        2 => pubsub(PubSubCmd::Channels { shard, pattern: None }),
        3 => pubsub(PubSubCmd::Channels { shard, pattern: a.into_iter().nth(2) }),
        _ => Err(Reply::syntax()),
    }
}

pub(super) fn channels(a: Args) -> Parsed {
    channels_of(a, false)
}

pub(super) fn shard_channels(a: Args) -> Parsed {
    channels_of(a, true)
}

pub(super) fn numsub(a: Args) -> Parsed {
    pubsub(PubSubCmd::NumSub { shard: false, channels: a.into_iter().skip(2).collect() })
}

pub(super) fn shard_numsub(a: Args) -> Parsed {
    pubsub(PubSubCmd::NumSub { shard: true, channels: a.into_iter().skip(2).collect() })
}

pub(super) fn numpat(_: Args) -> Parsed {
    pubsub(PubSubCmd::NumPat)
}

pub(super) fn help(_: Args) -> Parsed {
    super::parse_conn::help(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help.",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::parse;

    fn args(s: &[&str]) -> Args {
        s.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn cmd(s: &[&str]) -> Result<PubSubCmd, Reply> {
        match parse(args(s))? {
            Command::PubSub(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_parse_with_redis_arities_and_errors() {
        let b = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            cmd(&["SUBSCRIBE", "a", "b"]),
            Ok(PubSubCmd::Subscribe { kind: SubKind::Channel, channels: vec![b("a"), b("b")] })
        );
        assert_eq!(cmd(&["punsubscribe"]), Ok(PubSubCmd::Unsubscribe { kind: SubKind::Pattern, channels: vec![] }));
        assert_eq!(
            cmd(&["SPUBLISH", "{t}c", "hi"]),
            Ok(PubSubCmd::Publish { shard: true, channel: b("{t}c"), message: b("hi") })
        );
        assert_eq!(
            cmd(&["PUBSUB", "CHANNELS", "c*"]),
            Ok(PubSubCmd::Channels { shard: false, pattern: Some(b("c*")) })
        );
        assert_eq!(cmd(&["PUBSUB", "SHARDNUMSUB"]), Ok(PubSubCmd::NumSub { shard: true, channels: vec![] }));
        assert_eq!(cmd(&["PUBSUB", "NUMPAT"]), Ok(PubSubCmd::NumPat));
        assert_eq!(cmd(&["PUBSUB", "CHANNELS", "a", "b"]), Err(Reply::syntax()));
        let arity = |name: &str| Reply::err(format!("wrong number of arguments for '{name}' command"));
        assert_eq!(cmd(&["SUBSCRIBE"]), Err(arity("subscribe")));
        assert_eq!(cmd(&["PUBLISH", "c"]), Err(arity("publish")));
        assert_eq!(cmd(&["PUBSUB", "NUMPAT", "x"]), Err(arity("pubsub|numpat")));
    }
}

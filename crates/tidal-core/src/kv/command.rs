//! From a request's argument list to a typed [`Command`].
//!
//! Lookup, arity and subcommand errors are decided here from the single
//! table in [`super::command_table`] (the same table COMMAND reports), so
//! what tidal accepts and what it advertises cannot drift apart. Each
//! command's own argument rules live in `parse_string` (data commands) and
//! `parse_conn` (connection and server commands).

use super::blocking::Blocking;
use super::command_table::{find, lookup, CommandSpec};
use super::conn::{ConnCmd, KeyspaceCmd};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::pubsub::PubSubCmd;
use super::reply::Reply;

/// A parsed request, sorted by who answers it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Goes through the owning group's Raft log.
    Write(WriteOp),
    /// Served from a consistent view of the owning group(s).
    Read(ReadOp),
    /// Answered by the connection/node itself, without touching data.
    Conn(ConnCmd),
    /// Covers the whole tenant keyspace, so it fans out to every group.
    Keyspace(KeyspaceCmd),
    /// A write that waits until there is something to pop (BLPOP and kin).
    Block(Blocking),
    /// Answered by the node's hub of subscriptions and its peers'.
    PubSub(PubSubCmd),
    /// A script and its cache (EVAL, SCRIPT): run by the node.
    Script(super::script::ScriptCmd),
}

/// Parses one request. `Err` is the exact error reply Redis 7 would send.
/// Value size limits are the caller's job.
pub fn parse(args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let spec = command_spec(&args)?;
    (spec.parse)(args)
}

/// The command `args` names, once its name and argument count are known
/// to be right; the rest of its arguments are not looked at. Redis checks
/// this much of a command sent inside MULTI as it queues it, and the rest
/// when EXEC runs it.
pub fn command_spec(args: &[Vec<u8>]) -> Result<&'static CommandSpec, Reply> {
    let Some(name) = args.first() else {
        return Err(Reply::err("empty command"));
    };
    let Some(spec) = lookup(name) else {
        return Err(unknown_command(args));
    };
    if !arity_ok(spec.arity, args.len()) {
        return Err(Reply::wrong_arity(spec.name));
    }
    if spec.subcommands.is_empty() || args.len() < 2 {
        return Ok(spec);
    }
    let Some(sub) = find(spec.subcommands, &args[1]) else {
        return Err(Reply::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            clip(&args[1], 128),
            spec.name.to_ascii_uppercase()
        )));
    };
    if !arity_ok(sub.arity, args.len()) {
        return Err(Reply::wrong_arity(sub.name));
    }
    Ok(sub)
}

/// Redis arity: positive means exactly, negative means at least `-arity`,
/// both counting the command name (and subcommand name).
fn arity_ok(arity: i32, argc: usize) -> bool {
    let need = arity.unsigned_abs() as usize;
    if arity >= 0 {
        argc == need
    } else {
        argc >= need
    }
}

/// Redis 7's text, byte limits included: the name cut at 128 bytes and
/// quoted arguments until the list passes 128 bytes.
fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut listed = String::new();
    for arg in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push_str(&format!("'{}' ", clip(arg, room)));
    }
    Reply::err(format!("unknown command '{}', with args beginning with: {}", clip(&args[0], 128), listed))
}

/// At most `max` bytes of `bytes`, as text (like C's `%.*s`).
pub(super) fn clip(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// Argument `i`, taken out of the list (each is read once).
pub(super) fn take(args: &mut [Vec<u8>], i: usize) -> Vec<u8> {
    std::mem::take(&mut args[i])
}

/// Whether an argument is the option `word`, in any case.
pub(super) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer argument, or Redis's error for one that is not.
pub(super) fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

/// A count that must not be negative (LPOP, SPOP, ZPOPMIN), with Redis's
/// text otherwise.
pub(super) fn positive(arg: &[u8]) -> Result<u64, Reply> {
    parse_i64(arg)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Reply::err("value is out of range, must be positive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn err(s: &[&str]) -> String {
        match parse(args(s)) {
            Err(Reply::Error(e)) => e,
            other => panic!("expected an error for {s:?}, got {other:?}"),
        }
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        assert_eq!(err(&["foo", "a", "b"]), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        assert_eq!(err(&["foo"]), "ERR unknown command 'foo', with args beginning with: ");
        let long = "x".repeat(200);
        let e = err(&["Foo", &long, "next"]);
        assert_eq!(e, format!("ERR unknown command 'Foo', with args beginning with: '{}' ", "x".repeat(128)));
    }

    #[test]
    fn names_are_case_insensitive_and_arity_is_checked() {
        assert!(matches!(parse(args(&["gEt", "k"])), Ok(Command::Read(ReadOp::Get { .. }))));
        assert_eq!(err(&["GET"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["get", "a", "b"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["SET", "k"]), "ERR wrong number of arguments for 'set' command");
        assert_eq!(err(&[]), "ERR empty command");
    }

    #[test]
    fn subcommand_errors() {
        assert_eq!(err(&["client", "foo"]), "ERR unknown subcommand 'foo'. Try CLIENT HELP.");
        assert_eq!(err(&["CLIENT", "SETNAME"]), "ERR wrong number of arguments for 'client|setname' command");
        assert_eq!(err(&["client"]), "ERR wrong number of arguments for 'client' command");
        assert_eq!(err(&["config", "get"]), "ERR wrong number of arguments for 'config|get' command");
    }

    #[test]
    fn every_table_entry_is_reachable() {
        for spec in super::super::command_table::COMMANDS {
            assert_eq!(
                super::super::lookup(spec.name.to_ascii_uppercase().as_bytes()).map(|s| s.name),
                Some(spec.name)
            );
            assert!(spec.name.chars().all(|c| !c.is_ascii_uppercase()), "{}", spec.name);
        }
    }
}

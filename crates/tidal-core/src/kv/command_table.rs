//! The one table of commands tidal supports.
//!
//! [`super::parse`] dispatches through it (name, arity, subcommands) and
//! COMMAND / COMMAND INFO / COMMAND COUNT / COMMAND LIST render it, so the
//! two can never disagree. Metadata (arity, flags, key positions, ACL
//! categories) uses Redis 7's values, which cluster-aware clients read to
//! find key positions.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::blocking as b;
use super::command::{is, Command};
use super::command_docs;
use super::conn::CommandSub;
use super::hash as h;
use super::integer::parse_i64;
use super::list as l;
use super::parse_conn as c;
use super::parse_string as s;
use super::pubsub as ps;
use super::reply::Reply;
use super::script as sc;
use super::set as st;
use super::sort as so;
use super::stream_cmd as x;
use super::zset as z;

type ParseFn = fn(Vec<Vec<u8>>) -> Result<Command, Reply>;

/// One supported command (or subcommand, named `container|sub`).
pub struct CommandSpec {
    /// Lowercase name as Redis reports it.
    pub name: &'static str,
    /// Exact argument count if positive, minimum if negative (name included).
    pub arity: i32,
    pub flags: &'static [&'static str],
    /// Position of the first key argument (0 = no keys).
    pub first_key: i32,
    /// Position of the last key; -1 = the last argument.
    pub last_key: i32,
    /// Distance between keys (2 for MSET's key value pairs).
    pub step: i32,
    pub acl_categories: &'static [&'static str],
    pub subcommands: &'static [CommandSpec],
    /// Where a count of keys stands that the keys follow (LMPOP's
    /// numkeys); 0 when there is none. Such a command has "movablekeys".
    pub numkeys: i32,
    /// A key may also follow the word STORE (SORT's destination), found
    /// by reading the options. Such a command has "movablekeys".
    pub store_key: bool,
    /// The keys are the first half of what follows the word STREAMS
    /// (XREAD). Such a command has "movablekeys".
    pub streams_keys: bool,
    pub(crate) parse: ParseFn,
}

impl CommandSpec {
    /// This command's keys also follow a count at argument `at`.
    const fn numkeys(mut self, at: i32) -> Self {
        self.numkeys = at;
        self
    }

    /// This command may also name a key after the word STORE.
    const fn store_key(mut self) -> Self {
        self.store_key = true;
        self
    }

    /// This command's keys are the first half of what follows STREAMS.
    const fn streams_keys(mut self) -> Self {
        self.streams_keys = true;
        self
    }

    /// Whether the command's keys depend on its other arguments.
    fn movable_keys(&self) -> bool {
        self.numkeys > 0 || self.store_key || self.streams_keys
    }

    fn writes(&self) -> bool {
        self.flags.contains(&"write")
    }

    /// Whether the command is refused between MULTI and EXEC.
    pub fn refused_in_multi(&self) -> bool {
        self.flags.contains(&"no_multi")
    }

    /// The positions of the keys in `args` (the command's name first), by
    /// the first/last/step range and the key count; `None` when the
    /// arguments do not hold them.
    fn key_positions(&self, args: &[Vec<u8>]) -> Option<Vec<usize>> {
        let argc = args.len() as i64;
        let mut out = Vec::new();
        if self.first_key > 0 {
            let last = if self.last_key < 0 { argc + i64::from(self.last_key) } else { i64::from(self.last_key) };
            let mut i = i64::from(self.first_key);
            while i <= last && i < argc {
                out.push(i as usize);
                i += i64::from(self.step.max(1));
            }
        }
        if self.numkeys > 0 {
            let at = self.numkeys as usize;
            let n = parse_i64(args.get(at)?)?;
            if n < 0 || n as usize > args.len() - at - 1 {
                return None;
            }
            out.extend(at + 1..=at + n as usize);
        }
        if self.store_key {
            // Skip the options' arguments, which may spell STORE too; the
            // last STORE names the key.
            let mut store = None;
            let mut i = 2;
            while i < args.len() {
                let skip = [("LIMIT", 2), ("GET", 1), ("BY", 1)].into_iter().find(|(w, _)| is(&args[i], w));
                match skip {
                    Some((_, n)) => i += n,
                    None if is(&args[i], "STORE") && i + 1 < args.len() => store = Some(i + 1),
                    None => {}
                }
                i += 1;
            }
            out.extend(store);
        }
        if self.streams_keys {
            let at = args.iter().skip(1).position(|a| is(a, "STREAMS"))? + 2;
            let n = (args.len() - at) / 2;
            out.extend(at..at + n);
        }
        Some(out)
    }
}

const R: &[&str] = &["readonly", "fast"];
const RS: &[&str] = &["readonly"];
const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WX: &[&str] = &["write", "fast"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

const STR_R: &[&str] = &["@read", "@string", "@fast"];
const STR_RS: &[&str] = &["@read", "@string", "@slow"];
const STR_W: &[&str] = &["@write", "@string", "@slow"];
const STR_WF: &[&str] = &["@write", "@string", "@fast"];
const KS_R: &[&str] = &["@keyspace", "@read", "@fast"];
const KS_RS: &[&str] = &["@keyspace", "@read", "@slow"];
const KS_W: &[&str] = &["@keyspace", "@write", "@slow"];
const KS_WF: &[&str] = &["@keyspace", "@write", "@fast"];
const KS_DANGER: &[&str] = &["@keyspace", "@write", "@slow", "@dangerous"];
const ACL_CONN: &[&str] = &["@fast", "@connection"];
const ACL_SLOW_CONN: &[&str] = &["@slow", "@connection"];
const ACL_ADMIN: &[&str] = &["@admin", "@slow", "@dangerous"];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const BIT_R: &[&str] = &["@read", "@bitmap", "@slow"];
const BIT_W: &[&str] = &["@write", "@bitmap", "@slow"];
const ACL_TX: &[&str] = &["@fast", "@transaction"];
const H_R: &[&str] = &["@read", "@hash", "@fast"];
const H_RS: &[&str] = &["@read", "@hash", "@slow"];
const H_WF: &[&str] = &["@write", "@hash", "@fast"];
const S_R: &[&str] = &["@read", "@set", "@fast"];
const S_RS: &[&str] = &["@read", "@set", "@slow"];
const S_WF: &[&str] = &["@write", "@set", "@fast"];
const S_WS: &[&str] = &["@write", "@set", "@slow"];
const L_R: &[&str] = &["@read", "@list", "@fast"];
const L_RS: &[&str] = &["@read", "@list", "@slow"];
const L_WF: &[&str] = &["@write", "@list", "@fast"];
const L_WS: &[&str] = &["@write", "@list", "@slow"];
const Z_R: &[&str] = &["@read", "@sortedset", "@fast"];
const Z_RS: &[&str] = &["@read", "@sortedset", "@slow"];
const Z_WF: &[&str] = &["@write", "@sortedset", "@fast"];
const Z_WS: &[&str] = &["@write", "@sortedset", "@slow"];
const BLOCK: &[&str] = &["write", "noscript", "blocking"];
const BLOCK_W: &[&str] = &["write", "denyoom", "noscript", "blocking"];
const BLOCK_F: &[&str] = &["write", "noscript", "blocking", "fast"];
const L_BLOCK: &[&str] = &["@write", "@list", "@slow", "@blocking"];
const Z_BLOCK: &[&str] = &["@write", "@sortedset", "@fast", "@blocking"];
const Z_BLOCK_S: &[&str] = &["@write", "@sortedset", "@slow", "@blocking"];

const X_R: &[&str] = &["@read", "@stream", "@fast"];
const X_RS: &[&str] = &["@read", "@stream", "@slow"];
const X_WF: &[&str] = &["@write", "@stream", "@fast"];
const X_WS: &[&str] = &["@write", "@stream", "@slow"];
const X_BLOCK: &[&str] = &["@read", "@stream", "@slow", "@blocking"];
const X_BLOCK_W: &[&str] = &["@write", "@stream", "@slow", "@blocking"];

const SUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUB: &[&str] = &["pubsub", "loading", "stale", "fast", "may_replicate"];
const PS_Q: &[&str] = &["pubsub", "loading", "stale"];
const PS_S: &[&str] = &["@pubsub", "@slow"];

const SORT_W: &[&str] = &["@write", "@set", "@sortedset", "@list", "@slow", "@dangerous"];
const SORT_R: &[&str] = &["@read", "@set", "@sortedset", "@list", "@slow", "@dangerous"];

const fn cmd(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    acl_categories: &'static [&'static str],
    parse: ParseFn,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        acl_categories,
        subcommands: &[],
        numkeys: 0,
        store_key: false,
        streams_keys: false,
        parse,
    }
}

const fn container(name: &'static str, arity: i32, subcommands: &'static [CommandSpec], parse: ParseFn) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow"],
        subcommands,
        numkeys: 0,
        store_key: false,
        streams_keys: false,
        parse,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);
const PAIRS: (i32, i32, i32) = (1, -1, 2);
const TWO: (i32, i32, i32) = (1, 2, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);
/// Every argument but the last (a timeout).
const BKEYS: (i32, i32, i32) = (1, -2, 1);

/// Every command tidal accepts (found by name through [`BY_NAME`]).
pub static COMMANDS: &[CommandSpec] = &[
    cmd("get", 2, R, ONE, STR_R, s::get),
    cmd("set", -3, W, ONE, STR_W, s::set),
    cmd("ping", -1, &["fast"], NONE, ACL_CONN, c::ping),
    cmd("mget", -2, R, ALL, STR_R, s::mget),
    cmd("mset", -3, W, PAIRS, STR_W, s::mset),
    cmd("del", -2, &["write"], ALL, KS_W, s::del),
    cmd("incr", 2, WF, ONE, STR_WF, s::incr),
    cmd("decr", 2, WF, ONE, STR_WF, s::decr),
    cmd("incrby", 3, WF, ONE, STR_WF, s::incrby),
    cmd("decrby", 3, WF, ONE, STR_WF, s::decrby),
    cmd("incrbyfloat", 3, WF, ONE, STR_WF, s::incrbyfloat),
    cmd("exists", -2, R, ALL, KS_R, s::exists),
    cmd("expire", -3, WX, ONE, KS_WF, s::expire),
    cmd("pexpire", -3, WX, ONE, KS_WF, s::pexpire),
    cmd("expireat", -3, WX, ONE, KS_WF, s::expireat),
    cmd("pexpireat", -3, WX, ONE, KS_WF, s::pexpireat),
    cmd("ttl", 2, R, ONE, KS_R, s::ttl),
    cmd("pttl", 2, R, ONE, KS_R, s::pttl),
    cmd("expiretime", 2, R, ONE, KS_R, s::expiretime),
    cmd("pexpiretime", 2, R, ONE, KS_R, s::pexpiretime),
    cmd("persist", 2, WX, ONE, KS_WF, s::persist),
    cmd("setnx", 3, WF, ONE, STR_WF, s::setnx),
    cmd("setex", 4, W, ONE, STR_W, s::setex),
    cmd("psetex", 4, W, ONE, STR_W, s::psetex),
    cmd("getset", 3, WF, ONE, STR_WF, s::getset),
    cmd("getdel", 2, WX, ONE, STR_WF, s::getdel),
    cmd("getex", -2, WX, ONE, STR_WF, s::getex),
    cmd("msetnx", -3, W, PAIRS, STR_W, s::msetnx),
    cmd("unlink", -2, WX, ALL, KS_WF, s::unlink),
    cmd("touch", -2, R, ALL, KS_R, s::touch),
    cmd("append", 3, W, ONE, STR_WF, s::append),
    cmd("setrange", 4, W, ONE, STR_W, s::setrange),
    cmd("getrange", 4, RS, ONE, STR_RS, s::getrange),
    cmd("substr", 4, RS, ONE, STR_RS, s::getrange),
    cmd("strlen", 2, R, ONE, STR_R, s::strlen),
    cmd("type", 2, R, ONE, KS_R, s::type_),
    cmd("rename", 3, &["write"], TWO, KS_W, s::rename),
    cmd("renamenx", 3, WX, TWO, KS_WF, s::renamenx),
    cmd("dbsize", 1, R, NONE, KS_R, s::dbsize),
    cmd("keys", 2, RS, NONE, KS_DANGER, s::keys),
    cmd("scan", -2, RS, NONE, KS_RS, s::scan),
    cmd("flushdb", -1, &["write"], NONE, KS_DANGER, s::flushdb),
    cmd("flushall", -1, &["write"], NONE, KS_DANGER, s::flushall),
    cmd("echo", 2, &["fast"], NONE, ACL_CONN, c::echo),
    cmd("hello", -1, CONN, NONE, ACL_CONN, c::hello),
    cmd("auth", -2, CONN, NONE, ACL_CONN, c::auth),
    cmd("select", 2, &["loading", "stale", "fast"], NONE, ACL_CONN, c::select),
    cmd("quit", -1, CONN, NONE, ACL_CONN, c::quit),
    cmd("reset", 1, CONN, NONE, ACL_CONN, c::reset),
    cmd("setbit", 4, W, ONE, BIT_W, s::setbit),
    cmd("getbit", 3, R, ONE, &["@read", "@bitmap", "@fast"], s::getbit),
    cmd("bitcount", -2, RS, ONE, BIT_R, s::bitcount),
    cmd("bitpos", -3, RS, ONE, BIT_R, s::bitpos),
    cmd("bitop", -4, W, (2, -1, 1), BIT_W, s::bitop),
    cmd("bitfield", -2, W, ONE, BIT_W, s::bitfield),
    cmd("bitfield_ro", -2, R, ONE, &["@read", "@bitmap", "@fast"], s::bitfield_ro),
    cmd("lcs", -3, RS, TWO, STR_RS, s::lcs),
    cmd("copy", -3, W, TWO, KS_W, s::copy),
    cmd("dump", 2, RS, ONE, KS_RS, s::dump),
    cmd("restore", -4, W, ONE, KS_DANGER, s::restore),
    cmd("sort", -2, W, ONE, SORT_W, so::sort).store_key(),
    cmd("sort_ro", -2, RS, ONE, SORT_R, so::sort_ro),
    cmd("randomkey", 1, RS, NONE, KS_RS, s::randomkey),
    cmd("time", 1, &["loading", "stale", "fast"], NONE, &["@fast"], c::time),
    cmd("multi", 1, TX, NONE, ACL_TX, c::multi),
    cmd("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], NONE, &["@slow", "@transaction"], c::exec),
    cmd("discard", 1, TX, NONE, ACL_TX, c::discard),
    cmd("watch", -2, TX, ALL, ACL_TX, c::watch),
    cmd("unwatch", 1, TX, NONE, ACL_TX, c::unwatch),
    cmd("readonly", 1, &["loading", "stale", "fast"], NONE, ACL_CONN, c::readonly),
    cmd("readwrite", 1, &["loading", "stale", "fast"], NONE, ACL_CONN, c::readwrite),
    cmd("wait", 3, &["noscript"], NONE, &["@slow", "@connection"], c::wait),
    cmd("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], NONE, ACL_ADMIN, c::save),
    cmd(
        "shutdown",
        -1,
        &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
        NONE,
        ACL_ADMIN,
        c::shutdown,
    ),
    cmd("info", -1, &["loading", "stale"], NONE, &["@slow", "@dangerous"], c::info),
    cmd("hset", -4, WF, ONE, H_WF, h::hset),
    cmd("hget", 3, R, ONE, H_R, h::hget),
    cmd("hmset", -4, WF, ONE, H_WF, h::hmset),
    cmd("hmget", -3, R, ONE, H_R, h::hmget),
    cmd("hdel", -3, WX, ONE, H_WF, h::hdel),
    cmd("hlen", 2, R, ONE, H_R, h::hlen),
    cmd("hexists", 3, R, ONE, H_R, h::hexists),
    cmd("hgetall", 2, RS, ONE, H_RS, h::hgetall),
    cmd("hkeys", 2, RS, ONE, H_RS, h::hkeys),
    cmd("hvals", 2, RS, ONE, H_RS, h::hvals),
    cmd("hincrby", 4, WF, ONE, H_WF, h::hincrby),
    cmd("hincrbyfloat", 4, WF, ONE, H_WF, h::hincrbyfloat),
    cmd("hsetnx", 4, WF, ONE, H_WF, h::hsetnx),
    cmd("hstrlen", 3, R, ONE, H_R, h::hstrlen),
    cmd("hrandfield", -2, RS, ONE, H_RS, h::hrandfield),
    cmd("hscan", -3, RS, ONE, H_RS, h::hscan),
    cmd("sadd", -3, WF, ONE, S_WF, st::sadd),
    cmd("srem", -3, WX, ONE, S_WF, st::srem),
    cmd("smembers", 2, RS, ONE, S_RS, st::smembers),
    cmd("sismember", 3, R, ONE, S_R, st::sismember),
    cmd("smismember", -3, R, ONE, S_R, st::smismember),
    cmd("scard", 2, R, ONE, S_R, st::scard),
    cmd("spop", -2, WX, ONE, S_WF, st::spop),
    cmd("srandmember", -2, RS, ONE, S_RS, st::srandmember),
    cmd("smove", 4, WX, TWO, S_WF, st::smove),
    cmd("sinter", -2, RS, ALL, S_RS, st::sinter),
    cmd("sunion", -2, RS, ALL, S_RS, st::sunion),
    cmd("sdiff", -2, RS, ALL, S_RS, st::sdiff),
    cmd("sinterstore", -3, W, ALL, S_WS, st::sinterstore),
    cmd("sunionstore", -3, W, ALL, S_WS, st::sunionstore),
    cmd("sdiffstore", -3, W, ALL, S_WS, st::sdiffstore),
    cmd("sintercard", -3, RS, NONE, S_RS, st::sintercard).numkeys(1),
    cmd("sscan", -3, RS, ONE, S_RS, st::sscan),
    cmd("lpush", -3, WF, ONE, L_WF, l::lpush),
    cmd("rpush", -3, WF, ONE, L_WF, l::rpush),
    cmd("lpushx", -3, WF, ONE, L_WF, l::lpushx),
    cmd("rpushx", -3, WF, ONE, L_WF, l::rpushx),
    cmd("lpop", -2, WX, ONE, L_WF, l::lpop),
    cmd("rpop", -2, WX, ONE, L_WF, l::rpop),
    cmd("llen", 2, R, ONE, L_R, l::llen),
    cmd("lindex", 3, RS, ONE, L_RS, l::lindex),
    cmd("lrange", 4, RS, ONE, L_RS, l::lrange),
    cmd("lset", 4, W, ONE, L_WS, l::lset),
    cmd("ltrim", 4, &["write"], ONE, L_WS, l::ltrim),
    cmd("lrem", 4, &["write"], ONE, L_WS, l::lrem),
    cmd("linsert", 5, W, ONE, L_WS, l::linsert),
    cmd("lpos", -3, RS, ONE, L_RS, l::lpos),
    cmd("lmove", 5, W, TWO, L_WS, l::lmove),
    cmd("rpoplpush", 3, W, TWO, L_WS, l::rpoplpush),
    cmd("lmpop", -4, &["write"], NONE, L_WS, l::lmpop).numkeys(1),
    cmd("blpop", -3, BLOCK, BKEYS, L_BLOCK, b::blpop),
    cmd("brpop", -3, BLOCK, BKEYS, L_BLOCK, b::brpop),
    cmd("blmove", 6, BLOCK_W, TWO, L_BLOCK, b::blmove),
    cmd("brpoplpush", 4, BLOCK_W, TWO, L_BLOCK, b::brpoplpush),
    cmd("blmpop", -5, &["write", "blocking"], NONE, L_BLOCK, b::blmpop).numkeys(2),
    cmd("zadd", -4, WF, ONE, Z_WF, z::zadd),
    cmd("zincrby", 4, WF, ONE, Z_WF, z::zincrby),
    cmd("zrem", -3, WX, ONE, Z_WF, z::zrem),
    cmd("zscore", 3, R, ONE, Z_R, z::zscore),
    cmd("zmscore", -3, R, ONE, Z_R, z::zmscore),
    cmd("zcard", 2, R, ONE, Z_R, z::zcard),
    cmd("zcount", 4, R, ONE, Z_R, z::zcount),
    cmd("zlexcount", 4, R, ONE, Z_R, z::zlexcount),
    cmd("zrange", -4, RS, ONE, Z_RS, z::zrange),
    cmd("zrevrange", -4, RS, ONE, Z_RS, z::zrevrange),
    cmd("zrangebyscore", -4, RS, ONE, Z_RS, z::zrangebyscore),
    cmd("zrevrangebyscore", -4, RS, ONE, Z_RS, z::zrevrangebyscore),
    cmd("zrangebylex", -4, RS, ONE, Z_RS, z::zrangebylex),
    cmd("zrevrangebylex", -4, RS, ONE, Z_RS, z::zrevrangebylex),
    cmd("zrank", 3, R, ONE, Z_R, z::zrank),
    cmd("zrevrank", 3, R, ONE, Z_R, z::zrevrank),
    cmd("zremrangebyrank", 4, &["write"], ONE, Z_WS, z::zremrangebyrank),
    cmd("zremrangebyscore", 4, &["write"], ONE, Z_WS, z::zremrangebyscore),
    cmd("zremrangebylex", 4, &["write"], ONE, Z_WS, z::zremrangebylex),
    cmd("zpopmin", -2, WX, ONE, Z_WF, z::zpopmin),
    cmd("zpopmax", -2, WX, ONE, Z_WF, z::zpopmax),
    cmd("zmpop", -4, &["write"], NONE, Z_WS, z::zmpop).numkeys(1),
    cmd("bzpopmin", -3, BLOCK_F, BKEYS, Z_BLOCK, b::bzpopmin),
    cmd("bzpopmax", -3, BLOCK_F, BKEYS, Z_BLOCK, b::bzpopmax),
    cmd("bzmpop", -5, &["write", "blocking"], NONE, Z_BLOCK_S, b::bzmpop).numkeys(2),
    cmd("zrandmember", -2, RS, ONE, Z_RS, z::zrandmember),
    cmd("zscan", -3, RS, ONE, Z_RS, z::zscan),
    cmd("zunionstore", -4, W, ONE, Z_WS, z::zunionstore).numkeys(2),
    cmd("zinterstore", -4, W, ONE, Z_WS, z::zinterstore).numkeys(2),
    cmd("zdiffstore", -4, W, ONE, Z_WS, z::zdiffstore).numkeys(2),
    cmd("zunion", -3, RS, NONE, Z_RS, z::zunion).numkeys(1),
    cmd("zinter", -3, RS, NONE, Z_RS, z::zinter).numkeys(1),
    cmd("zdiff", -3, RS, NONE, Z_RS, z::zdiff).numkeys(1),
    cmd("zintercard", -3, RS, NONE, Z_RS, z::zintercard).numkeys(1),
    cmd("zrangestore", -5, W, TWO, Z_WS, z::zrangestore),
    cmd("xadd", -5, WF, ONE, X_WF, x::xadd),
    cmd("xtrim", -4, &["write"], ONE, X_WS, x::xtrim),
    cmd("xdel", -3, WX, ONE, X_WF, x::xdel),
    cmd("xlen", 2, R, ONE, X_R, x::xlen),
    cmd("xrange", -4, RS, ONE, X_RS, x::xrange),
    cmd("xrevrange", -4, RS, ONE, X_RS, x::xrevrange),
    cmd("xread", -4, &["readonly", "blocking"], NONE, X_BLOCK, x::xread).streams_keys(),
    cmd("xsetid", -3, WF, ONE, X_WF, x::xsetid),
    cmd("xreadgroup", -7, &["write", "blocking"], NONE, X_BLOCK_W, x::xreadgroup).streams_keys(),
    cmd("xack", -4, WX, ONE, X_WF, x::xack),
    cmd("xpending", -3, RS, ONE, X_RS, x::xpending),
    cmd("xclaim", -6, WX, ONE, X_WF, x::xclaim),
    cmd("xautoclaim", -6, WX, ONE, X_WF, x::xautoclaim),
    container("xgroup", -2, XGROUP, c::container_help),
    container("xinfo", -2, XINFO, c::container_help),
    container("client", -2, CLIENT, c::container_help),
    container("config", -2, CONFIG, c::container_help),
    container("object", -2, OBJECT, c::container_help),
    container("command", -1, COMMAND, c::command_all),
    container("function", -2, FUNCTION, c::container_help),
    cmd("eval", -3, EVAL, NONE, EVAL_ACL, sc::eval).numkeys(2),
    cmd("evalsha", -3, EVAL, NONE, EVAL_ACL, sc::evalsha).numkeys(2),
    cmd("eval_ro", -3, EVAL_RO, NONE, EVAL_ACL, sc::eval_ro).numkeys(2),
    cmd("evalsha_ro", -3, EVAL_RO, NONE, EVAL_ACL, sc::evalsha_ro).numkeys(2),
    container("script", -2, SCRIPT, c::container_help),
    container("memory", -2, MEMORY, c::container_help),
    cmd("subscribe", -2, SUB, NONE, PS_S, ps::subscribe),
    cmd("psubscribe", -2, SUB, NONE, PS_S, ps::psubscribe),
    cmd("ssubscribe", -2, SUB, ALL, PS_S, ps::ssubscribe),
    cmd("unsubscribe", -1, SUB, NONE, PS_S, ps::unsubscribe),
    cmd("punsubscribe", -1, SUB, NONE, PS_S, ps::punsubscribe),
    cmd("sunsubscribe", -1, SUB, ALL, PS_S, ps::sunsubscribe),
    cmd("publish", 3, PUB, NONE, &["@pubsub", "@fast"], ps::publish),
    cmd("spublish", 3, PUB, ONE, &["@pubsub", "@fast"], ps::spublish),
    container("pubsub", -2, PUBSUB, c::container_help),
];

static PUBSUB: &[CommandSpec] = &[
    cmd("pubsub|channels", -2, PS_Q, NONE, PS_S, ps::channels),
    cmd("pubsub|numpat", 2, PS_Q, NONE, PS_S, ps::numpat),
    cmd("pubsub|numsub", -2, PS_Q, NONE, PS_S, ps::numsub),
    cmd("pubsub|shardchannels", -2, PS_Q, NONE, PS_S, ps::shard_channels),
    cmd("pubsub|shardnumsub", -2, PS_Q, NONE, PS_S, ps::shard_numsub),
    cmd("pubsub|help", 2, &["loading", "stale"], NONE, &["@slow"], ps::help),
];

static XGROUP: &[CommandSpec] = &[
    cmd("xgroup|create", -5, W, (2, 2, 1), X_WS, x::xgroup_create),
    cmd("xgroup|setid", -5, &["write"], (2, 2, 1), X_WS, x::xgroup_setid),
    cmd("xgroup|destroy", 4, &["write"], (2, 2, 1), X_WS, x::xgroup_destroy),
    cmd("xgroup|createconsumer", 5, W, (2, 2, 1), X_WS, x::xgroup_createconsumer),
    cmd("xgroup|delconsumer", 5, &["write"], (2, 2, 1), X_WS, x::xgroup_delconsumer),
    cmd("xgroup|help", 2, &["loading", "stale"], NONE, &["@stream", "@slow"], x::xgroup_help),
];

static XINFO: &[CommandSpec] = &[
    cmd("xinfo|stream", -3, RS, (2, 2, 1), X_RS, x::xinfo_stream),
    cmd("xinfo|groups", 3, RS, (2, 2, 1), X_RS, x::xinfo_groups),
    cmd("xinfo|consumers", 4, RS, (2, 2, 1), X_RS, x::xinfo_consumers),
    cmd("xinfo|help", 2, &["loading", "stale"], NONE, &["@stream", "@slow"], x::xinfo_help),
];

static CLIENT: &[CommandSpec] = &[
    cmd("client|setname", 3, CONN, NONE, ACL_SLOW_CONN, c::client_setname),
    cmd("client|getname", 2, CONN, NONE, ACL_SLOW_CONN, c::client_getname),
    cmd("client|setinfo", 4, CONN, NONE, ACL_SLOW_CONN, c::client_setinfo),
    cmd("client|id", 2, CONN, NONE, ACL_SLOW_CONN, c::client_id),
    cmd("client|info", 2, CONN, NONE, ACL_SLOW_CONN, c::client_info),
    cmd("client|list", -2, ADMIN, NONE, ACL_ADMIN, c::client_list),
    cmd("client|unblock", -3, ADMIN, NONE, ACL_ADMIN, c::client_unblock),
    cmd("client|no-evict", 3, CONN, NONE, ACL_SLOW_CONN, c::client_no_evict),
    cmd("client|no-touch", 3, CONN, NONE, ACL_SLOW_CONN, c::client_no_touch),
    cmd("client|reply", 3, CONN, NONE, ACL_SLOW_CONN, c::client_reply),
    cmd("client|help", 2, CONN, NONE, ACL_SLOW_CONN, c::client_help),
];

static CONFIG: &[CommandSpec] = &[
    cmd("config|get", -3, ADMIN, NONE, ACL_ADMIN, c::config_get),
    cmd("config|set", -4, ADMIN, NONE, ACL_ADMIN, c::config_set),
    cmd("config|resetstat", 2, ADMIN, NONE, ACL_ADMIN, c::config_resetstat),
    cmd("config|help", 2, CONN, NONE, &["@slow"], c::config_help),
];

static OBJECT: &[CommandSpec] = &[
    cmd("object|encoding", 3, RS, (2, 2, 1), KS_RS, s::object_encoding),
    cmd("object|freq", 3, RS, (2, 2, 1), KS_RS, s::object_freq),
    cmd("object|idletime", 3, RS, (2, 2, 1), KS_RS, s::object_idletime),
    cmd("object|refcount", 3, RS, (2, 2, 1), KS_RS, s::object_refcount),
    cmd("object|help", 2, &["loading", "stale"], NONE, &["@keyspace", "@slow"], c::object_help),
];

static MEMORY: &[CommandSpec] = &[
    cmd("memory|usage", -3, &["readonly"], (2, 2, 1), &["@read", "@slow"], s::memory_usage),
    cmd("memory|help", 2, &["loading", "stale"], NONE, &["@slow"], c::memory_help),
];

const EVAL: &[&str] = &["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale"];
const EVAL_RO: &[&str] = &["noscript", "skip_monitor", "no_mandatory_keys", "stale", "readonly"];
const EVAL_ACL: &[&str] = &["@slow", "@scripting"];

static SCRIPT: &[CommandSpec] = &[
    cmd("script|load", 3, &["noscript", "stale"], NONE, EVAL_ACL, sc::script_load),
    cmd("script|exists", -3, &["noscript"], NONE, EVAL_ACL, sc::script_exists),
    cmd("script|flush", -2, &["noscript"], NONE, EVAL_ACL, sc::script_flush),
    cmd("script|kill", 2, &["noscript", "allow_busy"], NONE, EVAL_ACL, sc::script_kill),
    cmd("script|help", 2, &["loading", "stale"], NONE, EVAL_ACL, sc::script_help),
];

static FUNCTION: &[CommandSpec] = &[
    cmd("function|flush", -2, &["write", "noscript"], NONE, &["@write", "@slow", "@scripting"], c::function_flush),
    cmd("function|help", 2, &["loading", "stale"], NONE, &["@slow", "@scripting"], c::function_help),
];

static COMMAND: &[CommandSpec] = &[
    cmd("command|count", 2, CONN, NONE, ACL_SLOW_CONN, c::command_count),
    cmd("command|docs", -2, CONN, NONE, ACL_SLOW_CONN, c::command_docs),
    cmd("command|getkeys", -4, CONN, NONE, ACL_SLOW_CONN, c::command_getkeys),
    cmd("command|getkeysandflags", -4, CONN, NONE, ACL_SLOW_CONN, c::command_getkeysandflags),
    cmd("command|info", -2, CONN, NONE, ACL_SLOW_CONN, c::command_info),
    cmd("command|list", -2, CONN, NONE, ACL_SLOW_CONN, c::command_list),
    cmd("command|help", 2, CONN, NONE, ACL_SLOW_CONN, c::command_help),
];

/// The longest command or subcommand name (a longer one is unknown).
const LONGEST_NAME: usize = 24;

/// The top-level table by name, built once: a command is found with one
/// hash lookup wherever it stands in [`COMMANDS`].
static BY_NAME: LazyLock<HashMap<&'static [u8], &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|spec| (spec.name.as_bytes(), spec)).collect());

/// Finds subcommand `name` (any case) in a container's `table`, by the
/// part of each name after `|` (a handful of entries: a scan).
pub(super) fn find(table: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    table.iter().find(|spec| {
        let short = spec.name.rsplit('|').next().unwrap_or(spec.name);
        short.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// The spec of a top-level command (any case): one hash lookup of its
/// lowercase name.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > LONGEST_NAME {
        return None;
    }
    let mut lower = [0u8; LONGEST_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(&*lower).copied()
}

fn names(list: &[&str]) -> Reply {
    Reply::Set(list.iter().map(|f| Reply::simple(*f)).collect())
}

/// A RESP3 map of `pairs` (flattened for RESP2 clients).
pub(super) fn map(pairs: Vec<(&str, Reply)>) -> Reply {
    Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect())
}

/// The flags every key of a command has in its key specs: read-only
/// commands access their keys, the others may change them.
fn key_flags(spec: &CommandSpec) -> &'static [&'static str] {
    if spec.writes() {
        &["RW", "update"]
    } else {
        &["RO", "access"]
    }
}

/// Redis 7's key specs of a command: a range from `first_key`, and the
/// keys after a count for commands with one.
fn key_specs(spec: &CommandSpec) -> Reply {
    let mut specs = Vec::new();
    let flags = || Reply::Set(key_flags(spec).iter().map(|f| Reply::simple(*f)).collect());
    let index =
        |i: i32| map(vec![("type", Reply::bulk("index")), ("spec", map(vec![("index", Reply::Int(i.into()))]))]);
    if spec.first_key > 0 {
        let last = if spec.last_key < 0 { spec.last_key } else { spec.last_key - spec.first_key };
        let range = map(vec![
            ("lastkey", Reply::Int(last.into())),
            ("keystep", Reply::Int(spec.step.into())),
            ("limit", Reply::Int(0)),
        ]);
        specs.push(map(vec![
            ("flags", flags()),
            ("begin_search", index(spec.first_key)),
            ("find_keys", map(vec![("type", Reply::bulk("range")), ("spec", range)])),
        ]));
    }
    if spec.numkeys > 0 {
        let keynum = map(vec![("keynumidx", Reply::Int(0)), ("firstkey", Reply::Int(1)), ("keystep", Reply::Int(1))]);
        specs.push(map(vec![
            ("flags", flags()),
            ("begin_search", index(spec.numkeys)),
            ("find_keys", map(vec![("type", Reply::bulk("keynum")), ("spec", keynum)])),
        ]));
    }
    if spec.store_key {
        // Where STORE stands depends on the other options: Redis's
        // "unknown" search, for clients to ask COMMAND GETKEYS.
        let unknown = || map(vec![("type", Reply::bulk("unknown")), ("spec", map(Vec::new()))]);
        specs.push(map(vec![
            ("flags", Reply::Set(vec![Reply::simple("OW"), Reply::simple("update")])),
            ("begin_search", unknown()),
            ("find_keys", unknown()),
        ]));
    }
    if spec.streams_keys {
        let keyword = map(vec![("keyword", Reply::bulk("STREAMS")), ("startfrom", Reply::Int(1))]);
        let range = map(vec![("lastkey", Reply::Int(-1)), ("keystep", Reply::Int(1)), ("limit", Reply::Int(2))]);
        specs.push(map(vec![
            ("flags", flags()),
            ("begin_search", map(vec![("type", Reply::bulk("keyword")), ("spec", keyword)])),
            ("find_keys", map(vec![("type", Reply::bulk("range")), ("spec", range)])),
        ]));
    }
    Reply::Array(specs)
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS: the keys of a command line, found
/// as the table says, with Redis's errors.
fn get_keys(args: &[Vec<u8>], with_flags: bool) -> Reply {
    let Some(mut spec) = args.first().and_then(|name| lookup(name)) else {
        return Reply::err("Invalid command specified");
    };
    if !spec.subcommands.is_empty() {
        match args.get(1).and_then(|sub| find(spec.subcommands, sub)) {
            Some(sub) => spec = sub,
            None => return Reply::err("Invalid command specified"),
        }
    }
    if spec.first_key == 0 && spec.numkeys == 0 && !spec.streams_keys {
        return Reply::err("The command has no key arguments");
    }
    let argc = args.len() as i32;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return Reply::err("Invalid number of arguments specified for command");
    }
    match spec.key_positions(args) {
        Some(at) if !at.is_empty() => Reply::Array(
            at.into_iter()
                .map(|i| {
                    let key = Reply::Bulk(args[i].clone());
                    if with_flags {
                        let flags = Reply::Set(key_flags(spec).iter().map(|f| Reply::simple(*f)).collect());
                        Reply::Array(vec![key, flags])
                    } else {
                        key
                    }
                })
                .collect(),
        ),
        _ => Reply::err("Invalid arguments specified for command"),
    }
}

/// A command's entry in Redis 7's COMMAND format: name, arity, flags, first
/// key, last key, step, ACL categories, tips, key specs, subcommands.
fn describe(spec: &CommandSpec) -> Reply {
    let flags = if spec.movable_keys() { names(&[spec.flags, &["movablekeys"]].concat()) } else { names(spec.flags) };
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(spec.arity as i64),
        flags,
        Reply::Int(spec.first_key as i64),
        Reply::Int(spec.last_key as i64),
        Reply::Int(spec.step as i64),
        names(spec.acl_categories),
        Reply::Array(Vec::new()),
        key_specs(spec),
        Reply::Array(spec.subcommands.iter().map(describe).collect()),
    ])
}

/// How many key specs [`describe`] gives a command.
pub(super) fn key_spec_count(spec: &CommandSpec) -> usize {
    usize::from(spec.first_key > 0)
        + usize::from(spec.numkeys > 0)
        + usize::from(spec.store_key)
        + usize::from(spec.streams_keys)
}

/// COMMAND DOCS: every command, or those named (`container|sub` names a
/// subcommand); unknown names are left out, as Redis does.
fn docs(names: &[Vec<u8>]) -> Reply {
    let entry = |spec: &'static CommandSpec| (Reply::bulk(spec.name), command_docs::describe(spec));
    if names.is_empty() {
        return Reply::Map(COMMANDS.iter().map(entry).collect());
    }
    let named = |name: &Vec<u8>| match name.iter().position(|&b| b == b'|') {
        Some(bar) => lookup(&name[..bar]).and_then(|c| find(c.subcommands, &name[bar + 1..])),
        None => lookup(name),
    };
    Reply::Map(names.iter().filter_map(named).map(entry).collect())
}

/// The reply to COMMAND and its subcommands, from the same table parsing uses.
pub fn command_reply(sub: &CommandSub) -> Reply {
    match sub {
        CommandSub::All => Reply::Array(COMMANDS.iter().map(describe).collect()),
        CommandSub::Count => Reply::Int(COMMANDS.len() as i64),
        CommandSub::List => Reply::Array(COMMANDS.iter().map(|s| Reply::bulk(s.name)).collect()),
        CommandSub::Info(names) if names.is_empty() => command_reply(&CommandSub::All),
        CommandSub::Info(names) => Reply::Array(names.iter().map(|n| lookup(n).map_or(Reply::Nil, describe)).collect()),
        CommandSub::Docs(names) => docs(names),
        CommandSub::GetKeys { args, flags } => get_keys(args, *flags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_redis_shape() {
        let Reply::Array(entry) = command_reply(&CommandSub::Info(vec![b"MSET".to_vec()])) else {
            panic!("not an array");
        };
        let Reply::Array(fields) = &entry[0] else { panic!("not an entry") };
        assert_eq!(fields.len(), 10);
        assert_eq!(fields[0], Reply::bulk("mset"));
        assert_eq!(fields[1], Reply::Int(-3));
        assert_eq!(&fields[3..6], &[Reply::Int(1), Reply::Int(-1), Reply::Int(2)]);
        assert_eq!(command_reply(&CommandSub::Info(vec![b"nope".to_vec()])), Reply::Array(vec![Reply::Nil]));
    }

    #[test]
    fn count_and_list_agree_with_the_table() {
        let Reply::Array(list) = command_reply(&CommandSub::List) else { panic!() };
        assert_eq!(command_reply(&CommandSub::Count), Reply::Int(list.len() as i64));
        assert!(list.contains(&Reply::bulk("incrbyfloat")));
        let Reply::Array(all) = command_reply(&CommandSub::All) else { panic!() };
        assert_eq!(all.len(), list.len());
    }

    fn keys_of(line: &str) -> Reply {
        let args: Vec<Vec<u8>> = line.split(' ').map(|a| a.as_bytes().to_vec()).collect();
        command_reply(&CommandSub::GetKeys { args, flags: false })
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| Reply::bulk(*s)).collect())
    }

    #[test]
    fn getkeys_finds_keys_by_range_and_by_count() {
        assert_eq!(keys_of("MSET a 1 b 2"), bulks(&["a", "b"]));
        assert_eq!(keys_of("BLPOP a b 0"), bulks(&["a", "b"]));
        assert_eq!(keys_of("LMPOP 2 a b LEFT"), bulks(&["a", "b"]));
        assert_eq!(keys_of("BZMPOP 0 1 z MIN"), bulks(&["z"]));
        assert_eq!(keys_of("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), bulks(&["d", "a", "b"]));
        assert_eq!(keys_of("OBJECT ENCODING k"), bulks(&["k"]));
        assert_eq!(keys_of("SORT l BY w_* STORE x LIMIT 0 1 STORE d"), bulks(&["l", "d"]));
        assert_eq!(keys_of("SORT l GET store"), bulks(&["l"]));
        assert_eq!(keys_of("XREAD COUNT 2 STREAMS a b 0 $"), bulks(&["a", "b"]));
        assert_eq!(keys_of("XREAD BLOCK 0 streams s >"), bulks(&["s"]));
        assert_eq!(keys_of("NOPE a"), Reply::err("Invalid command specified"));
        assert_eq!(keys_of("PING x"), Reply::err("The command has no key arguments"));
        assert_eq!(keys_of("GET"), Reply::err("Invalid number of arguments specified for command"));
        assert_eq!(keys_of("LMPOP 5 a b LEFT"), Reply::err("Invalid arguments specified for command"));
    }

    #[test]
    fn movable_key_commands_say_so_and_every_key_command_has_key_specs() {
        for spec in COMMANDS {
            let Reply::Array(fields) = describe(spec) else { panic!() };
            let Reply::Set(flags) = &fields[2] else { panic!() };
            assert_eq!(flags.contains(&Reply::simple("movablekeys")), spec.movable_keys(), "{}", spec.name);
            let Reply::Array(specs) = &fields[8] else { panic!() };
            let want = usize::from(spec.first_key > 0)
                + usize::from(spec.numkeys > 0)
                + usize::from(spec.store_key)
                + usize::from(spec.streams_keys);
            assert_eq!(specs.len(), want, "{}", spec.name);
            assert_eq!(specs.len(), key_spec_count(spec), "{}", spec.name);
        }
    }

    fn every_spec() -> impl Iterator<Item = (&'static CommandSpec, bool)> {
        COMMANDS
            .iter()
            .flat_map(|spec| std::iter::once((spec, false)).chain(spec.subcommands.iter().map(|s| (s, true))))
    }

    /// Every command has documentation whose syntax parses and agrees with
    /// its arity: a fixed arity takes exactly that many words, a minimum
    /// at least that many.
    #[test]
    fn every_command_is_documented_and_its_syntax_fits_its_arity() {
        for (spec, sub) in every_spec() {
            let doc = command_docs::doc_of(spec.name).unwrap_or_else(|| panic!("{} has no docs", spec.name));
            let (min, varies) = command_docs::word_counts(doc.syntax).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            if !spec.subcommands.is_empty() {
                continue;
            }
            let words = min + 1 + usize::from(sub);
            if spec.arity > 0 {
                assert!(
                    !varies && words == spec.arity as usize,
                    "{}: arity {} but syntax takes {words} (varies: {varies})",
                    spec.name,
                    spec.arity
                );
            } else {
                assert_eq!(
                    words,
                    (-spec.arity) as usize,
                    "{}: arity {} but syntax takes at least {words}",
                    spec.name,
                    spec.arity
                );
            }
        }
        for doc in command_docs::DOCS {
            assert!(every_spec().any(|(spec, _)| spec.name == doc.name), "docs for unknown {}", doc.name);
        }
    }

    fn field<'a>(entry: &'a Reply, name: &str) -> &'a Reply {
        let Reply::Map(pairs) = entry else { panic!("not a map: {entry:?}") };
        &pairs.iter().find(|(k, _)| *k == Reply::bulk(name)).unwrap_or_else(|| panic!("no {name}")).1
    }

    #[test]
    fn docs_describe_arguments_in_redis_shape() {
        let reply = command_reply(&CommandSub::Docs(vec![b"SET".to_vec(), b"nope".to_vec(), b"zunionstore".to_vec()]));
        let Reply::Map(entries) = &reply else { panic!() };
        assert_eq!(entries.len(), 2, "unknown names are left out");
        let set = field(&reply, "set");
        assert_eq!(field(set, "group"), &Reply::bulk("string"));
        let Reply::Array(args) = field(set, "arguments") else { panic!() };
        assert_eq!(field(&args[0], "type"), &Reply::bulk("key"));
        assert_eq!(field(&args[0], "key_spec_index"), &Reply::Int(0));
        assert_eq!(field(&args[2], "name"), &Reply::bulk("condition"));
        assert_eq!(field(&args[2], "type"), &Reply::bulk("oneof"));
        assert_eq!(field(&args[2], "flags"), &Reply::Set(vec![Reply::simple("optional")]));
        let Reply::Array(expiry) = field(&args[4], "arguments") else { panic!() };
        assert_eq!(field(&expiry[0], "token"), &Reply::bulk("EX"));
        assert_eq!(field(&expiry[0], "type"), &Reply::bulk("integer"));
        assert_eq!(field(&expiry[4], "type"), &Reply::bulk("pure-token"));
        // The keys after numkeys point at the second key spec.
        let Reply::Array(args) = field(field(&reply, "zunionstore"), "arguments") else { panic!() };
        assert_eq!(field(&args[2], "key_spec_index"), &Reply::Int(1));
        assert_eq!(field(&args[2], "flags"), &Reply::Set(vec![Reply::simple("multiple")]));
        assert_eq!(field(&args[3], "token"), &Reply::bulk("WEIGHTS"));
        // Subcommands nest, and can be asked for by their full name.
        let client = command_reply(&CommandSub::Docs(vec![b"client".to_vec()]));
        let Reply::Map(subs) = field(field(&client, "client"), "subcommands") else { panic!() };
        assert_eq!(subs.len(), CLIENT.len());
        let one = command_reply(&CommandSub::Docs(vec![b"config|set".to_vec()]));
        assert!(matches!(field(field(&one, "config|set"), "arguments"), Reply::Array(a) if a.len() == 1));
        let Reply::Map(all) = command_reply(&CommandSub::Docs(Vec::new())) else { panic!() };
        assert_eq!(all.len(), COMMANDS.len());
    }

    #[test]
    fn syntax_lines_that_do_not_parse_are_refused() {
        for bad in ["[key", "key:frob", "a | ...", "(NX|XX", "key ]"] {
            assert!(command_docs::arguments(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_found_in_any_case_and_nothing_else_is() {
        for (spec, sub) in every_spec() {
            assert!(spec.name.len() <= LONGEST_NAME, "{}", spec.name);
            let short = spec.name.rsplit('|').next().unwrap();
            for name in [short.to_string(), short.to_ascii_uppercase()] {
                let found = if sub {
                    let container = COMMANDS.iter().find(|c| c.subcommands.iter().any(|s| s.name == spec.name));
                    find(container.unwrap().subcommands, name.as_bytes())
                } else {
                    lookup(name.as_bytes())
                };
                assert!(std::ptr::eq(found.unwrap(), spec), "{name}");
            }
        }
        for name in ["", "gett", "client|list", "x".repeat(LONGEST_NAME + 1).as_str(), "ge\u{0}"] {
            assert!(lookup(name.as_bytes()).is_none(), "{name:?}");
        }
        assert!(find(CLIENT, b"LIST").is_some() && find(CLIENT, b"nope").is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in COMMANDS.iter().chain(CLIENT).chain(CONFIG).chain(COMMAND) {
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
        }
    }

    #[test]
    fn subcommand_entries_nest() {
        let Reply::Array(entry) = command_reply(&CommandSub::Info(vec![b"client".to_vec()])) else { panic!() };
        let Reply::Array(fields) = &entry[0] else { panic!() };
        let Reply::Array(subs) = &fields[9] else { panic!() };
        assert_eq!(subs.len(), CLIENT.len());
    }
}

//! COMMAND DOCS: what each command in [`super::command_table`] does, in
//! Redis 7's reply shape (summary, since, group, complexity, arguments),
//! which redis-cli turns into its command-line hints.
//!
//! Each command's arguments are written as one line of syntax, parsed when
//! asked for:
//! - `name` is a string argument, `name:type` one of another type (`key`,
//!   `integer`, `double`, `pattern`, `unix-time`);
//! - an uppercase word is a token (`NX`); a token followed by one argument
//!   names that argument (`EX seconds:integer`), followed by several it
//!   names a block of them (`LIMIT offset:integer count:integer`);
//! - `[...]` is optional, `(...)` a group, `a|b` a choice, `...` after an
//!   argument lets it repeat, and `label:` before a group names it.

use super::command_table::{key_spec_count, map, CommandSpec};
use super::reply::Reply;

/// One command's documentation.
pub(super) struct Doc {
    pub name: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub summary: &'static str,
    pub syntax: &'static str,
}

const fn d(
    name: &'static str,
    since: &'static str,
    group: &'static str,
    complexity: &'static str,
    summary: &'static str,
    syntax: &'static str,
) -> Doc {
    Doc { name, since, group, complexity, summary, syntax }
}

const O1: &str = "O(1)";
const ON: &str = "O(N)";
const KEYS_N: &str = "O(N) where N is the number of keys";

/// Every command and subcommand of the table, by name.
pub(super) static DOCS: &[Doc] = &[
    d("get", "1.0.0", "string", O1, "Returns the string value of a key.", "key:key"),
    d(
        "set",
        "1.0.0",
        "string",
        O1,
        "Sets the string value of a key, optionally only if it exists or not, with an expiry, returning the old value.",
        "key:key value condition:[NX|XX] [GET] expiration:[EX seconds:integer|PX milliseconds:integer|EXAT unix-time-seconds:unix-time|PXAT unix-time-milliseconds:unix-time|KEEPTTL]",
    ),
    d("ping", "1.0.0", "connection", O1, "Returns PONG, or the given message.", "[message]"),
    d("mget", "1.0.0", "string", KEYS_N, "Returns the string values of several keys.", "key:key ..."),
    d("mset", "1.0.1", "string", KEYS_N, "Sets the string values of several keys of one slot at once.", "data:(key:key value)..."),
    d("del", "1.0.0", "generic", KEYS_N, "Deletes keys.", "key:key ..."),
    d("incr", "1.0.0", "string", O1, "Increments the integer value of a key by one.", "key:key"),
    d("decr", "1.0.0", "string", O1, "Decrements the integer value of a key by one.", "key:key"),
    d("incrby", "1.0.0", "string", O1, "Increments the integer value of a key by a number.", "key:key increment:integer"),
    d("decrby", "1.0.0", "string", O1, "Decrements the integer value of a key by a number.", "key:key decrement:integer"),
    d(
        "incrbyfloat",
        "2.6.0",
        "string",
        O1,
        "Increments the floating point value of a key by a number.",
        "key:key increment:double",
    ),
    d("exists", "1.0.0", "generic", KEYS_N, "Counts how many of the given keys exist.", "key:key ..."),
    d("expire", "1.0.0", "generic", O1, "Sets a key's time to live in seconds.", "key:key seconds:integer condition:[NX|XX|GT|LT]"),
    d(
        "pexpire",
        "2.6.0",
        "generic",
        O1,
        "Sets a key's time to live in milliseconds.",
        "key:key milliseconds:integer condition:[NX|XX|GT|LT]",
    ),
    d(
        "expireat",
        "1.2.0",
        "generic",
        O1,
        "Sets a key's expiry to a Unix time in seconds.",
        "key:key unix-time-seconds:unix-time condition:[NX|XX|GT|LT]",
    ),
    d(
        "pexpireat",
        "2.6.0",
        "generic",
        O1,
        "Sets a key's expiry to a Unix time in milliseconds.",
        "key:key unix-time-milliseconds:unix-time condition:[NX|XX|GT|LT]",
    ),
    d("ttl", "1.0.0", "generic", O1, "Returns a key's time to live in seconds.", "key:key"),
    d("pttl", "2.6.0", "generic", O1, "Returns a key's time to live in milliseconds.", "key:key"),
    d("expiretime", "7.0.0", "generic", O1, "Returns a key's expiry as a Unix time in seconds.", "key:key"),
    d("pexpiretime", "7.0.0", "generic", O1, "Returns a key's expiry as a Unix time in milliseconds.", "key:key"),
    d("persist", "2.2.0", "generic", O1, "Removes a key's expiry.", "key:key"),
    d("setnx", "1.0.0", "string", O1, "Sets the string value of a key only when the key does not exist.", "key:key value"),
    d(
        "setex",
        "2.0.0",
        "string",
        O1,
        "Sets the string value and the time to live in seconds of a key.",
        "key:key seconds:integer value",
    ),
    d(
        "psetex",
        "2.6.0",
        "string",
        O1,
        "Sets the string value and the time to live in milliseconds of a key.",
        "key:key milliseconds:integer value",
    ),
    d("getset", "1.0.0", "string", O1, "Sets the string value of a key and returns the previous one.", "key:key value"),
    d("getdel", "6.2.0", "string", O1, "Returns the string value of a key and deletes the key.", "key:key"),
    d(
        "getex",
        "6.2.0",
        "string",
        O1,
        "Returns the string value of a key and changes its expiry.",
        "key:key expiration:[EX seconds:integer|PX milliseconds:integer|EXAT unix-time-seconds:unix-time|PXAT unix-time-milliseconds:unix-time|PERSIST]",
    ),
    d(
        "msetnx",
        "1.0.1",
        "string",
        KEYS_N,
        "Sets the string values of several keys of one slot only when none of them exists.",
        "data:(key:key value)...",
    ),
    d("unlink", "4.0.0", "generic", KEYS_N, "Deletes keys.", "key:key ..."),
    d("touch", "3.2.1", "generic", KEYS_N, "Counts how many of the given keys exist.", "key:key ..."),
    d("append", "2.0.0", "string", O1, "Appends a string to the value of a key, creating the key if needed.", "key:key value"),
    d(
        "setrange",
        "2.2.0",
        "string",
        O1,
        "Overwrites part of the string value of a key from an offset, creating the key if needed.",
        "key:key offset:integer value",
    ),
    d(
        "getrange",
        "2.4.0",
        "string",
        "O(N) where N is the length of the returned string",
        "Returns a substring of the string value of a key.",
        "key:key start:integer end:integer",
    ),
    d(
        "substr",
        "1.0.0",
        "string",
        "O(N) where N is the length of the returned string",
        "Returns a substring of the string value of a key (the older name of GETRANGE).",
        "key:key start:integer end:integer",
    ),
    d("strlen", "2.2.0", "string", O1, "Returns the length of the string value of a key.", "key:key"),
    d("type", "1.0.0", "generic", O1, "Returns the type of the value of a key.", "key:key"),
    d("rename", "1.0.0", "generic", O1, "Renames a key, replacing any key of the new name.", "key:key newkey:key"),
    d("renamenx", "1.0.0", "generic", O1, "Renames a key only when the new name does not exist.", "key:key newkey:key"),
    d("dbsize", "1.0.0", "server", O1, "Returns the number of keys.", ""),
    d("keys", "1.0.0", "generic", KEYS_N, "Returns the names of the keys that match a pattern.", "pattern:pattern"),
    d(
        "scan",
        "2.8.0",
        "generic",
        "O(1) for every call, O(N) for a complete iteration",
        "Iterates over the names of the keys; a cursor stays valid through slot moves.",
        "cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type]",
    ),
    d("flushdb", "1.0.0", "server", KEYS_N, "Deletes every key.", "flush-type:[ASYNC|SYNC]"),
    d("flushall", "1.0.0", "server", KEYS_N, "Deletes every key.", "flush-type:[ASYNC|SYNC]"),
    d("echo", "1.0.0", "connection", O1, "Returns the given string.", "message"),
    d(
        "hello",
        "6.0.0",
        "connection",
        O1,
        "Handshakes with the server: chooses the protocol version, optionally authenticates and names the connection.",
        "[arguments:(protover:integer [AUTH username password] [SETNAME clientname])]",
    ),
    d("auth", "1.0.0", "connection", ON, "Authenticates the connection.", "[username] password"),
    d("select", "1.0.0", "connection", O1, "Selects a database; tidal has only database 0.", "index:integer"),
    d("quit", "1.0.0", "connection", O1, "Closes the connection.", ""),
    d("reset", "6.2.0", "connection", O1, "Resets the connection's state.", ""),
    d(
        "setbit",
        "2.2.0",
        "bitmap",
        O1,
        "Sets or clears the bit at an offset of a string value, creating the key if needed.",
        "key:key offset:integer value:integer",
    ),
    d("getbit", "2.2.0", "bitmap", O1, "Returns the bit at an offset of a string value.", "key:key offset:integer"),
    d(
        "bitcount",
        "2.6.0",
        "bitmap",
        ON,
        "Counts the set bits of a string value, or of a range of it.",
        "key:key [range:(start:integer end:integer [unit:[BYTE|BIT]])]",
    ),
    d(
        "bitpos",
        "2.8.7",
        "bitmap",
        ON,
        "Finds the first set or clear bit of a string value, or of a range of it.",
        "key:key bit:integer [range:(start:integer [end-unit-block:(end:integer [unit:[BYTE|BIT]])])]",
    ),
    d(
        "bitop",
        "2.6.0",
        "bitmap",
        ON,
        "Stores the bitwise AND, OR, XOR or NOT of string values in a key.",
        "operation:(AND|OR|XOR|NOT) destkey:key key:key ...",
    ),
    d(
        "bitfield",
        "3.2.0",
        "bitmap",
        "O(1) for each operation",
        "Reads, sets and increments integers of any width at any bit offset of a string value.",
        "key:key [operation:(GET encoding offset:integer|SET encoding offset:integer value:integer|INCRBY encoding offset:integer increment:integer|OVERFLOW (WRAP|SAT|FAIL))...]",
    ),
    d(
        "bitfield_ro",
        "6.0.0",
        "bitmap",
        "O(1) for each operation",
        "Reads integers of any width at any bit offset of a string value.",
        "key:key [GET encoding offset:integer]...",
    ),
    d(
        "lcs",
        "7.0.0",
        "string",
        "O(N*M) where N and M are the lengths of the two strings",
        "Finds the longest common subsequence of two string values.",
        "key1:key key2:key [LEN] [IDX] [MINMATCHLEN min-match-len:integer] [WITHMATCHLEN]",
    ),
    d(
        "copy",
        "6.2.0",
        "generic",
        ON,
        "Copies the value of a key to another key of the same slot.",
        "source:key destination:key [DB destination-db:integer] [REPLACE]",
    ),
    d(
        "dump",
        "2.6.0",
        "generic",
        ON,
        "Returns a serialized representation of the value stored at a key, in Redis's DUMP format.",
        "key:key",
    ),
    d(
        "restore",
        "2.6.0",
        "generic",
        ON,
        "Creates a key from a DUMP payload (tidal's or Redis's). IDLETIME and FREQ are accepted and ignored.",
        "key:key ttl:integer serialized-value:string [REPLACE] [ABSTTL] [IDLETIME seconds:integer] [FREQ frequency:integer]",
    ),
    d("randomkey", "1.0.0", "generic", O1, "Returns the name of a random key.", ""),
    d("time", "2.6.0", "server", O1, "Returns the server's time.", ""),
    d("multi", "1.2.0", "transactions", O1, "Starts a transaction.", ""),
    d(
        "exec",
        "1.2.0",
        "transactions",
        "Depends on the queued commands",
        "Applies the queued commands as one entry of their slot's log.",
        "",
    ),
    d("discard", "2.0.0", "transactions", ON, "Drops the queued commands of a transaction.", ""),
    d(
        "watch",
        "2.2.0",
        "transactions",
        "O(1) for every key",
        "Makes the next EXEC fail if any of these keys changes before it.",
        "key:key ...",
    ),
    d("unwatch", "2.2.0", "transactions", O1, "Forgets every watched key.", ""),
    d("readonly", "3.0.0", "cluster", O1, "Serves this connection's reads from the node's replicas, still linearizable.", ""),
    d("readwrite", "3.0.0", "cluster", O1, "Sends this connection's reads to the PRGs' leaders again.", ""),
    d(
        "wait",
        "3.0.0",
        "generic",
        O1,
        "Returns how many replicas hold the connection's writes; tidal acknowledges only replicated writes.",
        "numreplicas:integer timeout:integer",
    ),
    d("info", "1.0.0", "server", O1, "Returns information and statistics about the node.", "[section ...]"),
    d("hset", "2.0.0", "hash", "O(1) for each field", "Sets fields of a hash, creating it if needed.", "key:key data:(field value)..."),
    d("hget", "2.0.0", "hash", O1, "Returns the value of a field of a hash.", "key:key field"),
    d("hmset", "2.0.0", "hash", "O(1) for each field", "Sets fields of a hash, creating it if needed.", "key:key data:(field value)..."),
    d("hmget", "2.0.0", "hash", "O(N) where N is the number of fields", "Returns the values of fields of a hash.", "key:key field ..."),
    d("hdel", "2.0.0", "hash", "O(N) where N is the number of fields", "Deletes fields of a hash.", "key:key field ..."),
    d("hlen", "2.0.0", "hash", O1, "Returns the number of fields of a hash.", "key:key"),
    d("hexists", "2.0.0", "hash", O1, "Tells whether a field of a hash exists.", "key:key field"),
    d("hgetall", "2.0.0", "hash", ON, "Returns every field and value of a hash.", "key:key"),
    d("hkeys", "2.0.0", "hash", ON, "Returns every field of a hash.", "key:key"),
    d("hvals", "2.0.0", "hash", ON, "Returns every value of a hash.", "key:key"),
    d(
        "hincrby",
        "2.0.0",
        "hash",
        O1,
        "Increments the integer value of a field of a hash by a number.",
        "key:key field increment:integer",
    ),
    d(
        "hincrbyfloat",
        "2.6.0",
        "hash",
        O1,
        "Increments the floating point value of a field of a hash by a number.",
        "key:key field increment:double",
    ),
    d("hsetnx", "2.0.0", "hash", O1, "Sets a field of a hash only when the field does not exist.", "key:key field value"),
    d("hstrlen", "3.2.0", "hash", O1, "Returns the length of the value of a field of a hash.", "key:key field"),
    d(
        "hrandfield",
        "6.2.0",
        "hash",
        "O(N) where N is the number of fields returned",
        "Returns random fields of a hash.",
        "key:key [options:(count:integer [WITHVALUES])]",
    ),
    d("hscan", "2.8.0", "hash", ON, "Iterates over the fields and values of a hash.", "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]"),
    d("sadd", "1.0.0", "set", "O(1) for each member", "Adds members to a set, creating it if needed.", "key:key member ..."),
    d("srem", "1.0.0", "set", "O(1) for each member", "Removes members from a set.", "key:key member ..."),
    d("smembers", "1.0.0", "set", ON, "Returns every member of a set.", "key:key"),
    d("sismember", "1.0.0", "set", O1, "Tells whether a value is a member of a set.", "key:key member"),
    d(
        "smismember",
        "6.2.0",
        "set",
        "O(N) where N is the number of members asked about",
        "Tells for each value whether it is a member of a set.",
        "key:key member ...",
    ),
    d("scard", "1.0.0", "set", O1, "Returns the number of members of a set.", "key:key"),
    d("spop", "1.0.0", "set", "O(N) where N is the count", "Removes and returns random members of a set.", "key:key [count:integer]"),
    d("srandmember", "1.0.0", "set", "O(N) where N is the count", "Returns random members of a set.", "key:key [count:integer]"),
    d("smove", "1.0.0", "set", O1, "Moves a member from one set to another of the same slot.", "source:key destination:key member"),
    d("sinter", "1.0.0", "set", "O(N*M) worst case", "Returns the intersection of sets.", "key:key ..."),
    d("sunion", "1.0.0", "set", "O(N) where N is the number of members", "Returns the union of sets.", "key:key ..."),
    d("sdiff", "1.0.0", "set", "O(N) where N is the number of members", "Returns the difference of sets.", "key:key ..."),
    d("sinterstore", "1.0.0", "set", "O(N*M) worst case", "Stores the intersection of sets in a key.", "destination:key key:key ..."),
    d("sunionstore", "1.0.0", "set", "O(N) where N is the number of members", "Stores the union of sets in a key.", "destination:key key:key ..."),
    d("sdiffstore", "1.0.0", "set", "O(N) where N is the number of members", "Stores the difference of sets in a key.", "destination:key key:key ..."),
    d(
        "sintercard",
        "7.0.0",
        "set",
        "O(N*M) worst case",
        "Counts the members of the intersection of sets, up to a limit.",
        "numkeys:integer key:key ... [LIMIT limit:integer]",
    ),
    d("sscan", "2.8.0", "set", ON, "Iterates over the members of a set.", "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]"),
    d("lpush", "1.0.0", "list", "O(1) for each element", "Prepends elements to a list, creating it if needed.", "key:key element ..."),
    d("rpush", "1.0.0", "list", "O(1) for each element", "Appends elements to a list, creating it if needed.", "key:key element ..."),
    d("lpushx", "2.2.0", "list", "O(1) for each element", "Prepends elements to a list only when it exists.", "key:key element ..."),
    d("rpushx", "2.2.0", "list", "O(1) for each element", "Appends elements to a list only when it exists.", "key:key element ..."),
    d("lpop", "1.0.0", "list", "O(N) where N is the count", "Removes and returns the first elements of a list.", "key:key [count:integer]"),
    d("rpop", "1.0.0", "list", "O(N) where N is the count", "Removes and returns the last elements of a list.", "key:key [count:integer]"),
    d("llen", "1.0.0", "list", O1, "Returns the length of a list.", "key:key"),
    d("lindex", "1.0.0", "list", O1, "Returns the element at an index of a list.", "key:key index:integer"),
    d(
        "lrange",
        "1.0.0",
        "list",
        "O(N) where N is the number of elements returned",
        "Returns a range of the elements of a list.",
        "key:key start:integer stop:integer",
    ),
    d("lset", "1.0.0", "list", O1, "Sets the element at an index of a list.", "key:key index:integer element"),
    d("ltrim", "1.0.0", "list", ON, "Keeps only a range of the elements of a list.", "key:key start:integer stop:integer"),
    d("lrem", "1.0.0", "list", ON, "Removes elements equal to a value from a list.", "key:key count:integer element"),
    d(
        "linsert",
        "2.2.0",
        "list",
        ON,
        "Inserts an element before or after another element of a list.",
        "key:key where:(BEFORE|AFTER) pivot element",
    ),
    d(
        "lpos",
        "6.0.6",
        "list",
        ON,
        "Returns the positions of the elements of a list equal to a value.",
        "key:key element [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]",
    ),
    d(
        "lmove",
        "6.2.0",
        "list",
        O1,
        "Pops an element from one end of a list and pushes it to an end of another list of the same slot.",
        "source:key destination:key wherefrom:(LEFT|RIGHT) whereto:(LEFT|RIGHT)",
    ),
    d(
        "rpoplpush",
        "1.2.0",
        "list",
        O1,
        "Pops the last element of a list and prepends it to another list of the same slot.",
        "source:key destination:key",
    ),
    d(
        "lmpop",
        "7.0.0",
        "list",
        "O(N+M) where N is the number of keys and M the count",
        "Pops elements from the first non-empty list of several.",
        "numkeys:integer key:key ... where:(LEFT|RIGHT) [COUNT count:integer]",
    ),
    d(
        "blpop",
        "2.0.0",
        "list",
        KEYS_N,
        "Pops the first element of the first non-empty list of several, waiting for one up to a timeout.",
        "key:key ... timeout:double",
    ),
    d(
        "brpop",
        "2.0.0",
        "list",
        KEYS_N,
        "Pops the last element of the first non-empty list of several, waiting for one up to a timeout.",
        "key:key ... timeout:double",
    ),
    d(
        "blmove",
        "6.2.0",
        "list",
        O1,
        "LMOVE, waiting for an element up to a timeout.",
        "source:key destination:key wherefrom:(LEFT|RIGHT) whereto:(LEFT|RIGHT) timeout:double",
    ),
    d("brpoplpush", "2.2.0", "list", O1, "RPOPLPUSH, waiting for an element up to a timeout.", "source:key destination:key timeout:double"),
    d(
        "blmpop",
        "7.0.0",
        "list",
        "O(N+M) where N is the number of keys and M the count",
        "LMPOP, waiting for an element up to a timeout.",
        "timeout:double numkeys:integer key:key ... where:(LEFT|RIGHT) [COUNT count:integer]",
    ),
    d(
        "zadd",
        "1.2.0",
        "sorted-set",
        "O(log(N)) for each member",
        "Adds members to a sorted set or updates their scores, creating it if needed.",
        "key:key condition:[NX|XX] comparison:[GT|LT] [CH] [INCR] data:(score:double member)...",
    ),
    d("zincrby", "1.2.0", "sorted-set", "O(log(N))", "Increments the score of a member of a sorted set.", "key:key increment:double member"),
    d("zrem", "1.2.0", "sorted-set", "O(log(N)) for each member", "Removes members from a sorted set.", "key:key member ..."),
    d("zscore", "1.2.0", "sorted-set", O1, "Returns the score of a member of a sorted set.", "key:key member"),
    d("zmscore", "6.2.0", "sorted-set", "O(N) where N is the number of members", "Returns the scores of members of a sorted set.", "key:key member ..."),
    d("zcard", "1.2.0", "sorted-set", O1, "Returns the number of members of a sorted set.", "key:key"),
    d("zcount", "2.0.0", "sorted-set", ON, "Counts the members of a sorted set within a range of scores.", "key:key min:double max:double"),
    d("zlexcount", "2.8.9", "sorted-set", ON, "Counts the members of a sorted set within a lexicographical range.", "key:key min max"),
    d(
        "zrange",
        "1.2.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a range of ranks, scores or names.",
        "key:key start stop sortby:[BYSCORE|BYLEX] [REV] [LIMIT offset:integer count:integer] [WITHSCORES]",
    ),
    d(
        "zrevrange",
        "1.2.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a range of ranks, highest score first.",
        "key:key start:integer stop:integer [WITHSCORES]",
    ),
    d(
        "zrangebyscore",
        "1.0.5",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a range of scores.",
        "key:key min:double max:double [WITHSCORES] [LIMIT offset:integer count:integer]",
    ),
    d(
        "zrevrangebyscore",
        "2.2.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a range of scores, highest first.",
        "key:key max:double min:double [WITHSCORES] [LIMIT offset:integer count:integer]",
    ),
    d(
        "zrangebylex",
        "2.8.9",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a lexicographical range.",
        "key:key min max [LIMIT offset:integer count:integer]",
    ),
    d(
        "zrevrangebylex",
        "2.8.9",
        "sorted-set",
        "O(log(N)+M) where M is the number of members returned",
        "Returns the members of a sorted set within a lexicographical range, in reverse order.",
        "key:key max min [LIMIT offset:integer count:integer]",
    ),
    d("zrank", "2.0.0", "sorted-set", "O(log(N))", "Returns the rank of a member of a sorted set, lowest score first.", "key:key member"),
    d("zrevrank", "2.0.0", "sorted-set", "O(log(N))", "Returns the rank of a member of a sorted set, highest score first.", "key:key member"),
    d(
        "zremrangebyrank",
        "2.0.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members removed",
        "Removes the members of a sorted set within a range of ranks.",
        "key:key start:integer stop:integer",
    ),
    d(
        "zremrangebyscore",
        "1.2.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members removed",
        "Removes the members of a sorted set within a range of scores.",
        "key:key min:double max:double",
    ),
    d(
        "zremrangebylex",
        "2.8.9",
        "sorted-set",
        "O(log(N)+M) where M is the number of members removed",
        "Removes the members of a sorted set within a lexicographical range.",
        "key:key min max",
    ),
    d("zpopmin", "5.0.0", "sorted-set", "O(log(N)*M) where M is the count", "Removes and returns the lowest-scored members of a sorted set.", "key:key [count:integer]"),
    d("zpopmax", "5.0.0", "sorted-set", "O(log(N)*M) where M is the count", "Removes and returns the highest-scored members of a sorted set.", "key:key [count:integer]"),
    d(
        "zmpop",
        "7.0.0",
        "sorted-set",
        "O(K)+O(M*log(N)) where K is the number of keys and M the count",
        "Pops the lowest- or highest-scored members of the first non-empty sorted set of several.",
        "numkeys:integer key:key ... where:(MIN|MAX) [COUNT count:integer]",
    ),
    d(
        "bzpopmin",
        "5.0.0",
        "sorted-set",
        "O(log(N))",
        "ZPOPMIN of the first non-empty sorted set of several, waiting for a member up to a timeout.",
        "key:key ... timeout:double",
    ),
    d(
        "bzpopmax",
        "5.0.0",
        "sorted-set",
        "O(log(N))",
        "ZPOPMAX of the first non-empty sorted set of several, waiting for a member up to a timeout.",
        "key:key ... timeout:double",
    ),
    d(
        "bzmpop",
        "7.0.0",
        "sorted-set",
        "O(K)+O(M*log(N)) where K is the number of keys and M the count",
        "ZMPOP, waiting for a member up to a timeout.",
        "timeout:double numkeys:integer key:key ... where:(MIN|MAX) [COUNT count:integer]",
    ),
    d(
        "zrandmember",
        "6.2.0",
        "sorted-set",
        "O(N) where N is the count",
        "Returns random members of a sorted set.",
        "key:key [options:(count:integer [WITHSCORES])]",
    ),
    d("zscan", "2.8.0", "sorted-set", ON, "Iterates over the members and scores of a sorted set.", "key:key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]"),
    d(
        "zunionstore",
        "2.0.0",
        "sorted-set",
        "O(N)+O(M log(M)) where N is the total size of the inputs and M the size of the result",
        "Stores the union of sorted sets in a key.",
        "destination:key numkeys:integer key:key ... [WEIGHTS weight:integer ...] [AGGREGATE (SUM|MIN|MAX)]",
    ),
    d(
        "zinterstore",
        "2.0.0",
        "sorted-set",
        "O(N*K)+O(M*log(M)) worst case",
        "Stores the intersection of sorted sets in a key.",
        "destination:key numkeys:integer key:key ... [WEIGHTS weight:integer ...] [AGGREGATE (SUM|MIN|MAX)]",
    ),
    d(
        "zdiffstore",
        "6.2.0",
        "sorted-set",
        "O(L + (N-K)log(N)) worst case",
        "Stores the difference of sorted sets in a key.",
        "destination:key numkeys:integer key:key ...",
    ),
    d(
        "zunion",
        "6.2.0",
        "sorted-set",
        "O(N)+O(M*log(M)) where N is the total size of the inputs and M the size of the result",
        "Returns the union of sorted sets.",
        "numkeys:integer key:key ... [WEIGHTS weight:integer ...] [AGGREGATE (SUM|MIN|MAX)] [WITHSCORES]",
    ),
    d(
        "zinter",
        "6.2.0",
        "sorted-set",
        "O(N*K)+O(M*log(M)) worst case",
        "Returns the intersection of sorted sets.",
        "numkeys:integer key:key ... [WEIGHTS weight:integer ...] [AGGREGATE (SUM|MIN|MAX)] [WITHSCORES]",
    ),
    d(
        "zdiff",
        "6.2.0",
        "sorted-set",
        "O(L + (N-K)log(N)) worst case",
        "Returns the difference of sorted sets.",
        "numkeys:integer key:key ... [WITHSCORES]",
    ),
    d(
        "zintercard",
        "7.0.0",
        "sorted-set",
        "O(N*K) worst case",
        "Counts the members of the intersection of sorted sets, up to a limit.",
        "numkeys:integer key:key ... [LIMIT limit:integer]",
    ),
    d(
        "sort",
        "1.0.0",
        "generic",
        "O(N+M*log(M)) where N is the number of elements to sort and M the number returned",
        "Sorts the elements of a list, set or sorted set, optionally storing the result as a list.",
        "key:key [BY by-pattern:pattern] [LIMIT offset:integer count:integer] [GET get-pattern:pattern ...] order:[ASC|DESC] sorting:[ALPHA] [STORE destination:key]",
    ),
    d(
        "sort_ro",
        "7.0.0",
        "generic",
        "O(N+M*log(M)) where N is the number of elements to sort and M the number returned",
        "Sorts the elements of a list, set or sorted set.",
        "key:key [BY by-pattern:pattern] [LIMIT offset:integer count:integer] [GET get-pattern:pattern ...] order:[ASC|DESC] sorting:[ALPHA]",
    ),
    d(
        "zrangestore",
        "6.2.0",
        "sorted-set",
        "O(log(N)+M) where M is the number of members stored",
        "Stores a range of the members of a sorted set in a key.",
        "dst:key src:key min max sortby:[BYSCORE|BYLEX] [REV] [LIMIT offset:integer count:integer]",
    ),
    d("save", "1.0.0", "server", O1, "Answers OK: every acknowledged write is already durable on a majority of its PRG's replicas.", ""),
    d(
        "shutdown",
        "1.0.0",
        "server",
        O1,
        "Refused: a tidal node stops with `tidal drain` or SIGTERM, which hand its work to the other nodes first.",
        "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
    ),
    d("client", "2.4.0", "connection", "Depends on the subcommand", "A container for commands about client connections.", ""),
    d("config", "2.0.0", "server", "Depends on the subcommand", "A container for commands about the node's configuration.", ""),
    d(
        "xadd",
        "5.0.0",
        "stream",
        "O(1) when adding an entry, O(N) for the N entries a trimming removes",
        "Appends an entry to a stream, creating the stream unless NOMKSTREAM, and optionally trims it.",
        "key:key [NOMKSTREAM] [trim:(strategy:(MAXLEN|MINID) operator:[=|~] threshold [LIMIT count:integer])] id-selector:(*|id) data:(field value)...",
    ),
    d(
        "xtrim",
        "6.2.0",
        "stream",
        "O(N) where N is the number of entries removed",
        "Removes a stream's oldest entries, down to a length or up to an ID.",
        "key:key trim:(strategy:(MAXLEN|MINID) operator:[=|~] threshold [LIMIT count:integer])",
    ),
    d("xdel", "5.0.0", "stream", "O(1) for each entry removed", "Removes entries from a stream by ID; the stream stays, even empty.", "key:key id ..."),
    d("xlen", "5.0.0", "stream", O1, "Returns the number of entries in a stream.", "key:key"),
    d(
        "xrange",
        "5.0.0",
        "stream",
        "O(log(N)+M) where M is the number of entries returned",
        "Returns a stream's entries within a range of IDs.",
        "key:key start end [COUNT count:integer]",
    ),
    d(
        "xrevrange",
        "5.0.0",
        "stream",
        "O(log(N)+M) where M is the number of entries returned",
        "Returns a stream's entries within a range of IDs, newest first.",
        "key:key end start [COUNT count:integer]",
    ),
    d(
        "xread",
        "5.0.0",
        "stream",
        "O(M) for the M entries returned",
        "Returns entries after the given IDs from streams of one slot, waiting for some with BLOCK.",
        "[COUNT count:integer] [BLOCK milliseconds:integer] streams:(STREAMS key:key ... id ...)",
    ),
    d(
        "xsetid",
        "5.0.0",
        "stream",
        O1,
        "Sets a stream's last ID, and optionally its entries-added count and largest deleted ID.",
        "key:key last-id [ENTRIESADDED entries-added:integer] [MAXDELETEDID max-deleted-id]",
    ),
    d(
        "xreadgroup",
        "5.0.0",
        "stream",
        "O(M) for the M entries returned",
        "Returns entries new to a consumer group, or a consumer's pending ones, from streams of one slot, waiting for some with BLOCK.",
        "GROUP group consumer [COUNT count:integer] [BLOCK milliseconds:integer] [NOACK] streams:(STREAMS key:key ... id ...)",
    ),
    d("xack", "5.0.0", "stream", "O(1) for each ID", "Acknowledges entries of a consumer group's pending list.", "key:key group id ..."),
    d(
        "xpending",
        "5.0.0",
        "stream",
        "O(N) where N is the number of entries returned",
        "Returns a consumer group's pending entries, or a summary of them.",
        "key:key group [filters:([IDLE min-idle-time:integer] start end count:integer [consumer])]",
    ),
    d(
        "xclaim",
        "5.0.0",
        "stream",
        "O(log N) for each ID",
        "Gives pending entries of a consumer group to another consumer.",
        "key:key group consumer min-idle-time id ... [IDLE ms:integer] [TIME unix-time-milliseconds:unix-time] [RETRYCOUNT count:integer] [FORCE] [JUSTID] [LASTID lastid]",
    ),
    d(
        "xautoclaim",
        "6.2.0",
        "stream",
        "O(1) for each entry claimed",
        "Gives a consumer the pending entries idle longer than a time, from a cursor on.",
        "key:key group consumer min-idle-time start [COUNT count:integer] [JUSTID]",
    ),
    d("xgroup", "5.0.0", "stream", "Depends on the subcommand", "A container for commands about consumer groups.", ""),
    d("xinfo", "5.0.0", "stream", "Depends on the subcommand", "A container for commands about streams.", ""),
    d("object", "2.2.3", "generic", "Depends on the subcommand", "A container for commands about how a key is stored.", ""),
    d("command", "2.8.13", "server", ON, "Returns what the node knows of every command.", ""),
    d("eval", "2.6.0", "scripting", "Depends on the script that is executed.", "Runs a Lua script at the leader of its keys' slot.", "script numkeys:integer [key:key ...] [arg ...]"),
    d("evalsha", "2.6.0", "scripting", "Depends on the script that is executed.", "Runs a cached Lua script by its SHA1 digest.", "sha1 numkeys:integer [key:key ...] [arg ...]"),
    d("eval_ro", "7.0.0", "scripting", "Depends on the script that is executed.", "Runs a read-only Lua script.", "script numkeys:integer [key:key ...] [arg ...]"),
    d("evalsha_ro", "7.0.0", "scripting", "Depends on the script that is executed.", "Runs a cached read-only Lua script by its SHA1 digest.", "sha1 numkeys:integer [key:key ...] [arg ...]"),
    d("script", "2.6.0", "scripting", "Depends on the subcommand", "A container for commands about this node's cache of scripts.", ""),
    d("script|load", "2.6.0", "scripting", ON, "Caches a script on this node, answering its SHA1 digest.", "script"),
    d("script|exists", "2.6.0", "scripting", ON, "Whether each script is in this node's cache.", "sha1 ..."),
    d("script|flush", "2.6.0", "scripting", ON, "Empties this node's cache of scripts.", "flush-type:[ASYNC|SYNC]"),
    d("script|kill", "2.6.0", "scripting", O1, "Stops the script running on this node; nothing it wrote applies.", ""),
    d("script|help", "5.0.0", "scripting", O1, "Returns helpful text about the different subcommands.", ""),
    d("function", "7.0.0", "scripting", "Depends on the subcommand", "A container for commands about functions; tidal holds none.", ""),
    d("memory", "4.0.0", "server", "Depends on the subcommand", "A container for commands about memory.", ""),
    d("client|setname", "2.6.9", "connection", O1, "Names the connection.", "connection-name"),
    d("client|getname", "2.6.9", "connection", O1, "Returns the connection's name.", ""),
    d("client|setinfo", "7.2.0", "connection", O1, "Records the client library's name or version.", "attr:(LIB-NAME libname|LIB-VER libver)"),
    d("client|id", "5.0.0", "connection", O1, "Returns the connection's id.", ""),
    d("client|info", "6.2.0", "connection", O1, "Returns information about the connection.", ""),
    d("client|list", "2.4.0", "connection", "O(N) where N is the number of connections", "Lists the node's client connections.", ""),
    d("client|unblock", "5.0.0", "connection", "O(log N) where N is the number of client connections", "Ends the blocking command of one of the node's clients.", "client-id:integer [unblock-type:(TIMEOUT|ERROR)]"),
    d("client|no-evict", "7.0.0", "connection", O1, "Accepted; tidal evicts no keys.", "enabled:(ON|OFF)"),
    d("client|no-touch", "7.2.0", "connection", O1, "Accepted; tidal keeps no access times.", "enabled:(ON|OFF)"),
    d("client|reply", "3.2.0", "connection", O1, "Turns the connection's replies off, on, or off for the next command; pub/sub messages still come.", "action:(ON|OFF|SKIP)"),
    d("client|help", "5.0.0", "connection", O1, "Lists the CLIENT subcommands.", ""),
    d("config|get", "2.0.0", "server", "O(N) where N is the number of parameters", "Returns configuration parameters.", "parameter ..."),
    d("config|set", "2.0.0", "server", "O(N) where N is the number of parameters", "Sets configuration parameters (the encoding thresholds).", "data:(parameter value)..."),
    d("config|resetstat", "2.0.0", "server", O1, "Resets the node's statistics.", ""),
    d("config|help", "5.0.0", "server", O1, "Lists the CONFIG subcommands.", ""),
    d("object|encoding", "2.2.3", "generic", O1, "Returns the encoding Redis would use for a key's value.", "key:key"),
    d("object|freq", "4.0.0", "generic", O1, "Returns a key's access frequency.", "key:key"),
    d("object|idletime", "2.2.3", "generic", O1, "Returns the seconds since a key was last accessed.", "key:key"),
    d("object|refcount", "2.2.3", "generic", O1, "Returns a key's reference count.", "key:key"),
    d("object|help", "6.2.0", "generic", O1, "Lists the OBJECT subcommands.", ""),
    d("memory|usage", "4.0.0", "server", ON, "Estimates the bytes a key and its value take.", "key:key [SAMPLES count:integer]"),
    d("memory|help", "4.0.0", "server", O1, "Lists the MEMORY subcommands.", ""),
    d(
        "xinfo|stream",
        "5.0.0",
        "stream",
        ON,
        "Returns a stream's length, IDs and nodes; with FULL, its entries too.",
        "key:key [full-block:(FULL [COUNT count:integer])]",
    ),
    d("xinfo|groups", "5.0.0", "stream", O1, "Returns a stream's consumer groups.", "key:key"),
    d("xinfo|consumers", "5.0.0", "stream", O1, "Returns a consumer group's consumers.", "key:key group"),
    d("xinfo|help", "5.0.0", "stream", O1, "Lists the XINFO subcommands.", ""),
    d(
        "xgroup|create",
        "5.0.0",
        "stream",
        O1,
        "Creates a consumer group.",
        "key:key group id-selector:(id|$) [MKSTREAM] [ENTRIESREAD entries-read:integer]",
    ),
    d(
        "xgroup|setid",
        "5.0.0",
        "stream",
        O1,
        "Sets a consumer group's last delivered ID.",
        "key:key group id-selector:(id|$) [ENTRIESREAD entries-read:integer]",
    ),
    d("xgroup|destroy", "5.0.0", "stream", "O(N) where N is the number of pending entries", "Deletes a consumer group.", "key:key group"),
    d("xgroup|createconsumer", "6.2.0", "stream", O1, "Creates a consumer in a consumer group.", "key:key group consumer"),
    d(
        "xgroup|delconsumer",
        "5.0.0",
        "stream",
        "O(N) where N is the number of its pending entries",
        "Deletes a consumer from a consumer group, with its pending entries.",
        "key:key group consumer",
    ),
    d("xgroup|help", "5.0.0", "stream", O1, "Lists the XGROUP subcommands.", ""),
    d("function|flush", "7.0.0", "scripting", ON, "Deletes every function; tidal holds none.", "flush-type:[ASYNC|SYNC]"),
    d("function|help", "7.0.0", "scripting", O1, "Lists the FUNCTION subcommands.", ""),
    d("subscribe", "2.0.0", "pubsub", "O(N) where N is the number of channels", "Listens for messages published to channels, on any node.", "channel ..."),
    d("psubscribe", "2.0.0", "pubsub", "O(N) where N is the number of patterns", "Listens for messages published to channels that match patterns.", "pattern:pattern ..."),
    d("ssubscribe", "7.0.0", "pubsub", "O(N) where N is the number of shard channels", "Listens for messages published to shard channels of one slot.", "shardchannel ..."),
    d("unsubscribe", "2.0.0", "pubsub", "O(N) where N is the number of channels", "Stops listening to channels (all of them when none is named).", "[channel ...]"),
    d("punsubscribe", "2.0.0", "pubsub", "O(N) where N is the number of patterns", "Stops listening to patterns (all of them when none is named).", "[pattern:pattern ...]"),
    d("sunsubscribe", "7.0.0", "pubsub", "O(N) where N is the number of shard channels", "Stops listening to shard channels (all of them when none is named).", "[shardchannel ...]"),
    d("publish", "2.0.0", "pubsub", "O(N+M) where N is the number of subscribers and M the number of patterns", "Posts a message to a channel; answers how many subscribers in the cluster received it.", "channel message"),
    d("spublish", "7.0.0", "pubsub", "O(N) where N is the number of subscribers", "Posts a message to a shard channel.", "shardchannel message"),
    d("pubsub", "2.8.0", "pubsub", "Depends on the subcommand", "A container for commands about pub/sub.", ""),
    d("pubsub|channels", "2.8.0", "pubsub", "O(N) where N is the number of active channels", "Returns the channels with subscribers anywhere in the cluster.", "[pattern:pattern]"),
    d("pubsub|numpat", "2.8.0", "pubsub", O1, "Returns the number of distinct patterns subscribed to in the cluster.", ""),
    d("pubsub|numsub", "2.8.0", "pubsub", "O(N) for the number of requested channels", "Returns the number of subscribers of channels in the cluster.", "[channel ...]"),
    d("pubsub|shardchannels", "7.0.0", "pubsub", "O(N) where N is the number of active shard channels", "Returns the shard channels with subscribers.", "[pattern:pattern]"),
    d("pubsub|shardnumsub", "7.0.0", "pubsub", "O(N) for the number of requested shard channels", "Returns the number of subscribers of shard channels.", "[shardchannel ...]"),
    d("pubsub|help", "6.2.0", "pubsub", O1, "Lists the PUBSUB subcommands.", ""),
    d("command|count", "2.8.13", "server", O1, "Returns the number of commands.", ""),
    d("command|docs", "7.0.0", "server", ON, "Describes commands: what they do and their arguments.", "[command-name ...]"),
    d("command|getkeys", "2.8.13", "server", ON, "Finds the keys of a command line.", "command arg ..."),
    d("command|getkeysandflags", "7.0.0", "server", ON, "Finds the keys of a command line, with their flags.", "command arg ..."),
    d("command|info", "2.8.13", "server", ON, "Returns what the node knows of the given commands.", "[command-name ...]"),
    d("command|list", "7.0.0", "server", ON, "Returns the names of the commands.", "[FILTERBY filterby:(MODULE module-name|ACLCAT category|PATTERN pattern:pattern)]"),
    d("command|help", "5.0.0", "server", O1, "Lists the COMMAND subcommands.", ""),
];

/// One argument of a command, as COMMAND DOCS describes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Arg {
    pub name: String,
    /// `key`, `string`, `integer`, `double`, `pattern`, `unix-time`,
    /// `pure-token`, `oneof` or `block`.
    pub kind: String,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub children: Vec<Arg>,
}

const TYPES: &[&str] = &["key", "string", "integer", "double", "pattern", "unix-time"];

/// Splits a syntax line into words and the marks `[ ] ( ) | ...`.
fn lex(syntax: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = syntax;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[1..];
        } else if let Some(tail) = rest.strip_prefix("...") {
            out.push("...");
            rest = tail;
        } else if "[]()|".contains(c) {
            out.push(&rest[..1]);
            rest = &rest[1..];
        } else {
            let end = rest
                .char_indices()
                .find(|&(i, c)| c.is_whitespace() || "[]()|".contains(c) || rest[i..].starts_with("..."))
                .map_or(rest.len(), |(i, _)| i);
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

struct Parser<'a> {
    words: Vec<&'a str>,
    at: usize,
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.at).copied()
    }

    fn next(&mut self) -> Result<&'a str, String> {
        let word = self.peek().ok_or("unexpected end")?;
        self.at += 1;
        Ok(word)
    }

    /// Alternatives separated by `|`, up to a closing mark or the end.
    fn alternatives(&mut self) -> Result<Vec<Vec<Arg>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some("|") {
            self.at += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    /// Items up to `|`, a closing mark or the end, with tokens folded into
    /// what follows them.
    fn sequence(&mut self) -> Result<Vec<Arg>, String> {
        let mut items = Vec::new();
        while let Some(word) = self.peek() {
            if matches!(word, "|" | "]" | ")") {
                break;
            }
            items.push(self.item()?);
        }
        Ok(items)
    }

    fn item(&mut self) -> Result<Arg, String> {
        let word = self.next()?;
        let mut arg = match word {
            "[" | "(" => self.group(word, None)?,
            "..." | "|" | "]" | ")" => return Err(format!("unexpected '{word}'")),
            label if label.ends_with(':') && matches!(self.peek(), Some("[" | "(")) => {
                let open = self.next()?;
                self.group(open, Some(label.trim_end_matches(':')))?
            }
            token if is_token(token) => Arg::new(&token.to_ascii_lowercase(), "pure-token", Some(token)),
            name => {
                let (name, kind) = name.split_once(':').unwrap_or((name, "string"));
                if !TYPES.contains(&kind) || name.is_empty() {
                    return Err(format!("bad argument '{word}'"));
                }
                Arg::new(name, kind, None)
            }
        };
        if self.peek() == Some("...") {
            self.at += 1;
            arg.multiple = true;
        }
        Ok(arg)
    }

    /// The group opened by `open`: optional for `[`, a choice when it has
    /// alternatives, one argument when it holds one, else a block.
    fn group(&mut self, open: &str, label: Option<&str>) -> Result<Arg, String> {
        let alts = self.alternatives()?;
        let close = if open == "[" { "]" } else { ")" };
        if self.next()? != close {
            return Err(format!("'{open}' is not closed by '{close}'"));
        }
        let mut arg = if alts.len() > 1 {
            let children = alts.into_iter().map(fold).collect::<Result<Vec<_>, _>>()?;
            Arg { children, ..Arg::new(label.unwrap_or("choice"), "oneof", None) }
        } else {
            let mut arg = fold(alts.into_iter().next().unwrap_or_default())?;
            if let Some(label) = label {
                arg.name = label.into();
            }
            arg
        };
        arg.optional |= open == "[";
        Ok(arg)
    }
}

/// One argument from a sequence: a token and one argument become that
/// argument with the token; a token and several, a block named by the
/// token; several, a block named by the first.
fn fold(mut items: Vec<Arg>) -> Result<Arg, String> {
    let leading_token = items.len() > 1 && items[0].kind == "pure-token" && !items[0].multiple;
    match items.len() {
        0 => Err("empty group".into()),
        1 => Ok(items.remove(0)),
        2 if leading_token && items[1].token.is_none() => {
            let token = items.remove(0).token;
            Ok(Arg { token, ..items.remove(0) })
        }
        _ if leading_token => {
            let first = items.remove(0);
            Ok(Arg { children: items, ..Arg::new(&first.name, "block", first.token.as_deref()) })
        }
        _ => {
            let name = items[0].name.clone();
            Ok(Arg { children: items, ..Arg::new(&name, "block", None) })
        }
    }
}

impl Arg {
    fn new(name: &str, kind: &str, token: Option<&str>) -> Arg {
        Arg {
            name: name.into(),
            kind: kind.into(),
            token: token.map(Into::into),
            optional: false,
            multiple: false,
            children: Vec::new(),
        }
    }

    /// The fewest words a command line spends on this argument.
    #[cfg(test)]
    fn min_words(&self) -> usize {
        if self.optional {
            return 0;
        }
        let own = usize::from(self.token.is_some() && self.kind != "pure-token");
        own + match self.kind.as_str() {
            "oneof" => self.children.iter().map(Arg::min_words).min().unwrap_or(0),
            "block" => self.children.iter().map(Arg::min_words).sum(),
            _ => 1,
        }
    }

    /// Whether a command line can spend a varying number of words on it.
    #[cfg(test)]
    fn varies(&self) -> bool {
        self.optional
            || self.multiple
            || self.children.iter().any(Arg::varies)
            || (self.kind == "oneof"
                && self.children.iter().map(Arg::min_words).collect::<std::collections::BTreeSet<_>>().len() > 1)
    }
}

/// A command's arguments, parsed from its syntax line.
pub(super) fn arguments(syntax: &str) -> Result<Vec<Arg>, String> {
    let mut parser = Parser { words: lex(syntax), at: 0 };
    let args = parser.sequence()?;
    match parser.peek() {
        None => Ok(args),
        Some(word) => Err(format!("unexpected '{word}'")),
    }
}

/// Redis's shape of one argument; `keys` numbers the key arguments in order,
/// each pointing at its key spec (the last spec takes any beyond).
fn render(arg: &Arg, keys: &mut usize, key_specs: usize) -> Reply {
    let mut fields = vec![("name", Reply::bulk(arg.name.as_str())), ("type", Reply::bulk(arg.kind.as_str()))];
    if arg.kind == "key" {
        let index = (*keys).min(key_specs.saturating_sub(1));
        *keys += 1;
        fields.push(("key_spec_index", Reply::Int(index as i64)));
    }
    if let Some(token) = &arg.token {
        fields.push(("token", Reply::bulk(token.as_str())));
    }
    let flags: Vec<Reply> = [(arg.optional, "optional"), (arg.multiple, "multiple")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, flag)| Reply::simple(flag))
        .collect();
    if !flags.is_empty() {
        fields.push(("flags", Reply::Set(flags)));
    }
    if !arg.children.is_empty() {
        let children = arg.children.iter().map(|c| render(c, keys, key_specs)).collect();
        fields.push(("arguments", Reply::Array(children)));
    }
    map(fields)
}

pub(super) fn doc_of(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|doc| doc.name == name)
}

/// COMMAND DOCS' entry for one command (its subcommands nested).
pub(super) fn describe(spec: &CommandSpec) -> Reply {
    let Some(doc) = doc_of(spec.name) else { return map(Vec::new()) };
    let mut fields = vec![
        ("summary", Reply::bulk(doc.summary)),
        ("since", Reply::bulk(doc.since)),
        ("group", Reply::bulk(doc.group)),
        ("complexity", Reply::bulk(doc.complexity)),
    ];
    // Every syntax line is parsed by command_table's tests; one that does
    // not parse describes no arguments rather than failing the reply.
    let args = arguments(doc.syntax).unwrap_or_default();
    if !args.is_empty() {
        let (mut keys, specs) = (0, key_spec_count(spec));
        fields.push(("arguments", Reply::Array(args.iter().map(|a| render(a, &mut keys, specs)).collect())));
    }
    if !spec.subcommands.is_empty() {
        let subs = spec.subcommands.iter().map(|sub| (Reply::bulk(sub.name), describe(sub))).collect();
        fields.push(("subcommands", Reply::Map(subs)));
    }
    map(fields)
}

/// The fewest words a syntax line takes, and whether it can take more.
#[cfg(test)]
pub(super) fn word_counts(syntax: &str) -> Result<(usize, bool), String> {
    let args = arguments(syntax)?;
    Ok((args.iter().map(Arg::min_words).sum(), args.iter().any(Arg::varies)))
}

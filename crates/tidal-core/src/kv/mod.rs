//! Redis string-keyspace semantics, pure.
//!
//! ```text
//!  args ──► command::parse ──► Command ─┬─ Write(WriteOp) ─► Raft log ─► engine::apply ─┐
//!                                       ├─ Read(ReadOp)  ───────────────► engine::read ─┼─► Reply
//!                                       ├─ Conn(ConnCmd)      answered by the node      │
//!                                       └─ Keyspace(..)       fanned out by the router ─┘
//!  multi-key ops ──► split::plan_write / plan_read ──► per-group ops ──► split::merge
//! ```
//!
//! Nothing here does I/O or reads a clock: the store is a trait
//! ([`KvStore`]) and time is a `now_ms` argument, so every replica computes
//! the same result from the same log entry.

mod big_uint;
mod bitfield;
mod bits;
mod blocking;
mod changes;
#[macro_use]
mod collection;
mod command;
mod command_docs;
mod command_table;
mod config;
mod conn;
mod engine;
mod glob;
mod hash;
mod info;
mod integer;
mod list;
mod long_double;
mod mem_store;
pub mod notify;
mod op;
mod packed;
mod parse_conn;
mod parse_string;
mod pubsub;
mod rdb;
mod record;
mod reply;
mod scan_page;
mod script;
mod set;
mod sort;
mod split;
mod store;
mod stream;
mod stream_cmd;
mod stream_group;
#[cfg(test)]
mod stream_group_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod test_db;
mod zset;

pub use bitfield::{FieldOp, FieldType, Overflow};
pub use bits::{BitOpKind, BitRange, LcsMode};
pub use blocking::{found_nothing, BlockOp, Blocking};
pub use collection::wrong_type;
pub use command::{command_spec, parse, Command};
pub use command_table::{command_reply, lookup, CommandSpec, COMMANDS};
pub use config::{config_get, config_set, encoding_defaults, node_limits, ConfigView, BUSY_REPLY_THRESHOLD};
pub use conn::{hello_reply, ClientSetInfoAttr, CommandSub, ConnCmd, HelloView, KeyspaceCmd, ReplyMode};
pub use engine::{apply, exec, get_range, read, MAX_STRING_LEN};
pub use glob::{glob_match, glob_match_nocase};
pub use hash::{HashRead, HashWrite};
pub use info::{info_reply, InfoView};
pub use integer::{parse_cursor, parse_i64};
pub use list::{End, ListRead, ListWrite};
pub use mem_store::MemStore;
pub use op::{ExpireAt, ExpireCond, Expiry, GetExExpiry, ObjectInfo, ReadOp, SetCond, TxOp, Watch, WriteOp};
pub use pubsub::{PubSubCmd, SubKind};
pub use record::{Kind, Record, RecordError};
pub use reply::Reply;
pub use scan_page::ScanPage;
pub use script::{ScriptBody, ScriptCmd};
pub use set::{SetAlgebra, SetRead, SetWrite};
pub use sort::SortSpec;
pub use split::{merge, plan_read, plan_write, Merge, Plan};
pub use store::{bound_slice, element_key, prefixed_bounds, ElementRows, KvStore, StoreError};
pub use stream::{AddId, NodeLimits, ReadFrom, StreamId, StreamRead, StreamWrite, Trim, TrimBy};
pub use stream_group::{Claim, Delivery, GroupFrom, GroupRead, GroupWrite, PendingRange};
pub use zset::{format_score, parse_score, ZSetRead, ZSetWrite};

//! The answer to a command, independent of the wire protocol.
//!
//! The engine and the command parser produce a [`Reply`]; the connection
//! layer turns it into RESP2 or RESP3 bytes with [`crate::resp::encode`],
//! which is where the two protocols' differences (null forms, doubles, maps)
//! are decided.

/// One reply value. Variants mirror RESP3 types; RESP2 renders the richer
/// ones with the nearest RESP2 shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status line such as `PONG` or `string` (no CR/LF inside).
    Simple(String),
    /// A full error line including its code, e.g. `ERR syntax error`,
    /// `WRONGTYPE ...`, `NOPROTO ...`, `CROSSSLOT ...`.
    Error(String),
    Int(i64),
    Bulk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// An unordered collection: `~` in RESP3, a plain array in RESP2.
    Set(Vec<Reply>),
    /// `,` in RESP3; a bulk string in RESP2.
    Double(f64),
    /// `%` in RESP3; a flat key, value, key, value array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Human-readable text (INFO): `=` with a `txt:` prefix in RESP3, a bulk
    /// string in RESP2.
    Verbatim(String),
    /// A sorted-set score, written as Redis 7.0 writes one (`%.17g`): a
    /// double in RESP3, a bulk string in RESP2.
    Score(f64),
    /// Member and score (or field and value) pairs: an array of
    /// two-element arrays in RESP3, one flat array in RESP2.
    Pairs(Vec<(Reply, Reply)>),
    /// A map in RESP3; in RESP2 an array of `[key, value]` arrays (XREAD's
    /// streams, each with its entries).
    Keyed(Vec<(Reply, Reply)>),
    /// `#t` or `#f` in RESP3, `:1` or `:0` in RESP2 (a script's boolean
    /// after `redis.setresp(3)`).
    Bool(bool),
}

impl Reply {
    /// Whether this is an error of the cluster's making (a PRG
    /// unavailable, a write whose outcome is unknown, the cluster not
    /// serving), not of the request's: what an error rate counts.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Reply::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("UNCERTAIN") || e.starts_with("CLUSTERDOWN"))
    }

    /// A generic error: prefixes `ERR ` to `msg`.
    pub fn err(msg: impl AsRef<str>) -> Reply {
        Reply::Error(format!("ERR {}", msg.as_ref()))
    }

    /// `ERR syntax error`, Redis' answer to misplaced or unknown options.
    pub fn syntax() -> Reply {
        Reply::err("syntax error")
    }

    /// The error for an argument or stored value that is not an `i64`.
    pub fn not_integer() -> Reply {
        Reply::err("value is not an integer or out of range")
    }

    /// The error for a stored value or argument that is not a float.
    pub fn not_float() -> Reply {
        Reply::err("value is not a valid float")
    }

    /// Arity error; `name` is the lowercase command name, or
    /// `container|sub` for subcommands (`client|setname`).
    pub fn wrong_arity(name: &str) -> Reply {
        Reply::err(format!("wrong number of arguments for '{name}' command"))
    }

    /// `ERR invalid expire time in '<cmd>' command`.
    pub fn invalid_expire(cmd: &str) -> Reply {
        Reply::err(format!("invalid expire time in '{cmd}' command"))
    }

    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// A bulk string holding `s`, or [`Reply::Nil`] when absent.
    pub fn bulk_or_nil(bytes: Option<Vec<u8>>) -> Reply {
        bytes.map_or(Reply::Nil, Reply::Bulk)
    }

    pub fn simple(s: impl Into<String>) -> Reply {
        Reply::Simple(s.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error code (first word) of an error reply, e.g. `ERR`.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => e.split(' ').next(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_build_redis_texts() {
        assert_eq!(Reply::syntax(), Reply::Error("ERR syntax error".into()));
        assert_eq!(
            Reply::wrong_arity("client|setname"),
            Reply::Error("ERR wrong number of arguments for 'client|setname' command".into())
        );
        assert_eq!(Reply::invalid_expire("setex"), Reply::Error("ERR invalid expire time in 'setex' command".into()));
        assert_eq!(Reply::Error("NOPROTO x".into()).error_code(), Some("NOPROTO"));
        assert_eq!(Reply::Ok.error_code(), None);
        assert!(Reply::not_integer().is_error());
        assert_eq!(Reply::bulk_or_nil(None), Reply::Nil);
        assert_eq!(Reply::bulk_or_nil(Some(b"a".to_vec())), Reply::Bulk(b"a".to_vec()));
    }
}

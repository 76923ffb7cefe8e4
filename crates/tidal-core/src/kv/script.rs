//! Argument rules of EVAL, EVALSHA, their read-only forms and SCRIPT.
//! Scripts themselves run on the node (Lua is not pure); this is what
//! they are asked with.

use super::command::{is, Command};
use super::integer::parse_i64;
use super::parse_conn::help;
use super::reply::Reply;

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

/// What a script is named by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptBody {
    /// EVAL's source.
    Source(Vec<u8>),
    /// EVALSHA's SHA1 digest, as sent (any case).
    Sha(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCmd {
    /// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
    Eval {
        body: ScriptBody,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        /// The `_RO` forms: the script may not write.
        read_only: bool,
    },
    /// SCRIPT LOAD: cache the source, answer its digest.
    Load(Vec<u8>),
    /// SCRIPT EXISTS: whether each digest is cached.
    Exists(Vec<Vec<u8>>),
    /// SCRIPT FLUSH [ASYNC|SYNC].
    Flush,
    /// SCRIPT KILL: stop the script running on this node.
    Kill,
}

fn eval_with(mut a: Args, sha: bool, read_only: bool) -> Parsed {
    let n = match parse_i64(&a[2]) {
        Some(n) if n < 0 => return Err(Reply::err("Number of keys can't be negative")),
        Some(n) if n as u64 > (a.len() - 3) as u64 => {
            return Err(Reply::err("Number of keys can't be greater than number of args"))
        }
        Some(n) => n as usize,
        None => return Err(Reply::err("value is not an integer or out of range")),
    };
    let args = a.split_off(3 + n);
    let keys = a.split_off(3);
    let text = a.swap_remove(1);
    let body = if sha { ScriptBody::Sha(text) } else { ScriptBody::Source(text) };
    Ok(Command::Script(ScriptCmd::Eval { body, keys, args, read_only }))
}

pub(super) fn eval(a: Args) -> Parsed {
    eval_with(a, false, false)
}

pub(super) fn evalsha(a: Args) -> Parsed {
    eval_with(a, true, false)
}

pub(super) fn eval_ro(a: Args) -> Parsed {
    eval_with(a, false, true)
}

pub(super) fn evalsha_ro(a: Args) -> Parsed {
    eval_with(a, true, true)
}

pub(super) fn script_load(mut a: Args) -> Parsed {
    Ok(Command::Script(ScriptCmd::Load(a.swap_remove(2))))
}

pub(super) fn script_exists(a: Args) -> Parsed {
    Ok(Command::Script(ScriptCmd::Exists(a.into_iter().skip(2).collect())))
}

pub(super) fn script_flush(a: Args) -> Parsed {
    match a.get(2) {
        None => {}
        Some(mode) if a.len() == 3 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
        Some(_) => return Err(Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option")),
    }
    Ok(Command::Script(ScriptCmd::Flush))
}

pub(super) fn script_kill(_: Args) -> Parsed {
    Ok(Command::Script(ScriptCmd::Kill))
}

pub(super) fn script_help(_: Args) -> Parsed {
    help(&[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Print this help.",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::parse;

    fn p(args: &[&str]) -> Parsed {
        parse(args.iter().map(|a| a.as_bytes().to_vec()).collect())
    }

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn eval_splits_keys_from_arguments_by_its_count() {
        assert_eq!(
            p(&["EVAL", "return 1", "2", "a", "b", "c"]),
            Ok(Command::Script(ScriptCmd::Eval {
                body: ScriptBody::Source(b"return 1".to_vec()),
                keys: v(&["a", "b"]),
                args: v(&["c"]),
                read_only: false,
            }))
        );
        assert_eq!(
            p(&["evalsha_ro", "ABC", "0", "x"]),
            Ok(Command::Script(ScriptCmd::Eval {
                body: ScriptBody::Sha(b"ABC".to_vec()),
                keys: vec![],
                args: v(&["x"]),
                read_only: true,
            }))
        );
    }

    #[test]
    fn a_bad_key_count_is_refused_with_redis_words() {
        assert_eq!(p(&["EVAL", "s", "-1"]), Err(Reply::err("Number of keys can't be negative")));
        assert_eq!(p(&["EVAL", "s", "2", "a"]), Err(Reply::err("Number of keys can't be greater than number of args")));
        assert_eq!(p(&["EVAL", "s", "x"]), Err(Reply::err("value is not an integer or out of range")));
        assert_eq!(p(&["EVAL", "s"]), Err(Reply::wrong_arity("eval")));
    }

    #[test]
    fn script_subcommands_parse() {
        assert_eq!(p(&["SCRIPT", "LOAD", "return 1"]), Ok(Command::Script(ScriptCmd::Load(b"return 1".to_vec()))));
        assert_eq!(p(&["SCRIPT", "EXISTS", "a", "b"]), Ok(Command::Script(ScriptCmd::Exists(v(&["a", "b"])))));
        assert_eq!(p(&["SCRIPT", "FLUSH", "async"]), Ok(Command::Script(ScriptCmd::Flush)));
        assert_eq!(p(&["SCRIPT", "FLUSH", "now"]), Err(Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option")));
        assert_eq!(p(&["SCRIPT", "KILL"]), Ok(Command::Script(ScriptCmd::Kill)));
    }
}

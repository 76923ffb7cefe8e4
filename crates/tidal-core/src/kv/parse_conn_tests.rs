//! Parsing of connection, server and keyspace commands, through `parse`.

use crate::kv::{parse, ClientSetInfoAttr, Command, CommandSub, ConnCmd, KeyspaceCmd, Reply};

fn p(args: &[&str]) -> Result<Command, Reply> {
    parse(args.iter().map(|a| a.as_bytes().to_vec()).collect())
}

fn conn(args: &[&str]) -> ConnCmd {
    match p(args) {
        Ok(Command::Conn(c)) => c,
        other => panic!("{args:?} gave {other:?}"),
    }
}

fn keyspace(args: &[&str]) -> KeyspaceCmd {
    match p(args) {
        Ok(Command::Keyspace(k)) => k,
        other => panic!("{args:?} gave {other:?}"),
    }
}

fn err(args: &[&str]) -> String {
    match p(args) {
        Err(Reply::Error(e)) => e,
        other => panic!("{args:?} gave {other:?}"),
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn ping_echo_quit() {
    assert_eq!(conn(&["PING"]), ConnCmd::Ping(None));
    assert_eq!(conn(&["ping", "hi"]), ConnCmd::Ping(Some(b("hi"))));
    assert_eq!(err(&["PING", "a", "b"]), "ERR wrong number of arguments for 'ping' command");
    assert_eq!(conn(&["ECHO", "x"]), ConnCmd::Echo(b("x")));
    assert_eq!(err(&["ECHO"]), "ERR wrong number of arguments for 'echo' command");
    assert_eq!(conn(&["QUIT"]), ConnCmd::Quit);
    assert_eq!(conn(&["RESET"]), ConnCmd::Reset);
    assert_eq!(conn(&["READONLY"]), ConnCmd::ReadOnly);
    assert_eq!(conn(&["readwrite"]), ConnCmd::ReadWrite);
}

#[test]
fn hello_forms_and_errors() {
    assert_eq!(conn(&["HELLO"]), ConnCmd::Hello { protover: None, auth: None, setname: None });
    assert_eq!(
        conn(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "app"]),
        ConnCmd::Hello { protover: Some(3), auth: Some((b("u"), b("p"))), setname: Some(b("app")) }
    );
    assert_eq!(err(&["HELLO", "4"]), "NOPROTO unsupported protocol version");
    assert_eq!(err(&["HELLO", "1"]), "NOPROTO unsupported protocol version");
    assert_eq!(err(&["HELLO", "abc"]), "ERR Protocol version is not an integer or out of range");
    assert_eq!(err(&["HELLO", "3", "foo"]), "ERR Syntax error in HELLO option 'foo'");
    assert_eq!(err(&["HELLO", "3", "AUTH", "u"]), "ERR Syntax error in HELLO option 'AUTH'");
    assert_eq!(
        err(&["HELLO", "3", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
}

#[test]
fn auth_select_wait() {
    assert_eq!(conn(&["AUTH", "pw"]), ConnCmd::Auth { user: None, pass: b("pw") });
    assert_eq!(conn(&["AUTH", "u", "pw"]), ConnCmd::Auth { user: Some(b("u")), pass: b("pw") });
    assert_eq!(err(&["AUTH", "a", "b", "c"]), "ERR syntax error");
    assert_eq!(conn(&["SELECT", "0"]), ConnCmd::Select(0));
    assert_eq!(conn(&["SELECT", "5"]), ConnCmd::Select(5));
    assert_eq!(err(&["SELECT", "abc"]), "ERR value is not an integer or out of range");
    assert_eq!(
        err(&["SELECT", "4294967296"]),
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    );
    assert_eq!(conn(&["WAIT", "1", "100"]), ConnCmd::Wait { numreplicas: 1, timeout_ms: 100 });
    assert_eq!(err(&["WAIT", "1", "-1"]), "ERR timeout is negative");
    assert_eq!(err(&["WAIT", "x", "1"]), "ERR value is not an integer or out of range");
}

#[test]
fn client_subcommands() {
    assert_eq!(conn(&["CLIENT", "SETNAME", "app-1"]), ConnCmd::ClientSetName(b("app-1")));
    assert_eq!(conn(&["client", "setname", ""]), ConnCmd::ClientSetName(Vec::new()));
    assert_eq!(
        err(&["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(conn(&["CLIENT", "GETNAME"]), ConnCmd::ClientGetName);
    assert_eq!(conn(&["CLIENT", "ID"]), ConnCmd::ClientId);
    assert_eq!(conn(&["CLIENT", "INFO"]), ConnCmd::ClientInfo);
    assert_eq!(conn(&["CLIENT", "LIST", "TYPE", "normal"]), ConnCmd::ClientList);
    assert_eq!(conn(&["SAVE"]), ConnCmd::Save);
    assert_eq!(conn(&["shutdown", "nosave", "now"]), ConnCmd::Shutdown);
    assert_eq!(err(&["SAVE", "x"]), "ERR wrong number of arguments for 'save' command");
    assert_eq!(conn(&["CLIENT", "UNBLOCK", "7"]), ConnCmd::ClientUnblock { id: 7, error: false });
    assert_eq!(conn(&["client", "unblock", "7", "timeout"]), ConnCmd::ClientUnblock { id: 7, error: false });
    assert_eq!(conn(&["CLIENT", "UNBLOCK", "7", "ERROR"]), ConnCmd::ClientUnblock { id: 7, error: true });
    assert_eq!(conn(&["CLIENT", "UNBLOCK", "-3"]), ConnCmd::ClientUnblock { id: 0, error: false });
    assert_eq!(err(&["CLIENT", "UNBLOCK", "asd"]), "ERR value is not an integer or out of range");
    assert_eq!(err(&["CLIENT", "UNBLOCK", "7", "NOW"]), "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    assert_eq!(err(&["CLIENT", "UNBLOCK", "7", "ERROR", "x"]), "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    assert_eq!(err(&["CLIENT", "UNBLOCK"]), "ERR wrong number of arguments for 'client|unblock' command");
    assert_eq!(
        conn(&["CLIENT", "SETINFO", "lib-name", "redis-py"]),
        ConnCmd::ClientSetInfo { attr: ClientSetInfoAttr::LibName, value: b("redis-py") }
    );
    assert_eq!(
        conn(&["CLIENT", "SETINFO", "LIB-VER", "5.0.1"]),
        ConnCmd::ClientSetInfo { attr: ClientSetInfoAttr::LibVer, value: b("5.0.1") }
    );
    assert_eq!(err(&["CLIENT", "SETINFO", "foo", "x"]), "ERR Unrecognized option 'foo'");
    assert_eq!(
        err(&["CLIENT", "SETINFO", "lib-name", "a b"]),
        "ERR lib-name cannot contain spaces, newlines or special characters."
    );
    assert_eq!(conn(&["CLIENT", "NO-EVICT", "on"]), ConnCmd::ClientNoEvict(true));
    assert_eq!(conn(&["CLIENT", "NO-TOUCH", "OFF"]), ConnCmd::ClientNoTouch(false));
    assert_eq!(conn(&["CLIENT", "REPLY", "skip"]), ConnCmd::ClientReply(crate::kv::ReplyMode::Skip));
    assert_eq!(err(&["CLIENT", "REPLY", "maybe"]), "ERR syntax error");
    assert_eq!(err(&["CLIENT", "NO-EVICT", "maybe"]), "ERR syntax error");
    assert!(matches!(conn(&["CLIENT", "HELP"]), ConnCmd::Help(lines) if lines.len() > 2));
}

#[test]
fn every_container_lists_its_subcommands_on_help() {
    for name in ["CLIENT", "CONFIG", "OBJECT", "COMMAND", "FUNCTION", "MEMORY", "PUBSUB"] {
        match conn(&[name, "HELP"]) {
            ConnCmd::Help(lines) => {
                assert!(lines[0].starts_with(&format!("{name} <subcommand>")), "{name}: {}", lines[0]);
                assert!(lines.iter().any(|l| l == "HELP"), "{name} HELP names HELP");
            }
            other => panic!("{name} HELP: {other:?}"),
        }
    }
}

#[test]
fn config_and_command() {
    assert_eq!(conn(&["CONFIG", "GET", "save", "appendonly"]), ConnCmd::ConfigGet(vec![b("save"), b("appendonly")]));
    assert_eq!(
        conn(&["CONFIG", "SET", "a", "1", "b", "2"]),
        ConnCmd::ConfigSet(vec![(b("a"), b("1")), (b("b"), b("2"))])
    );
    assert_eq!(err(&["CONFIG", "SET", "a", "1", "b"]), "ERR syntax error");
    assert_eq!(err(&["CONFIG", "SET", "a"]), "ERR wrong number of arguments for 'config|set' command");
    assert_eq!(conn(&["CONFIG", "RESETSTAT"]), ConnCmd::ConfigResetStat);
    assert_eq!(err(&["CONFIG", "REWRITE"]), "ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.");
    assert_eq!(conn(&["COMMAND"]), ConnCmd::Command(CommandSub::All));
    assert_eq!(conn(&["COMMAND", "COUNT"]), ConnCmd::Command(CommandSub::Count));
    assert_eq!(conn(&["command", "docs"]), ConnCmd::Command(CommandSub::Docs(vec![])));
    assert_eq!(conn(&["COMMAND", "INFO", "get", "set"]), ConnCmd::Command(CommandSub::Info(vec![b("get"), b("set")])));
    assert_eq!(conn(&["COMMAND", "LIST"]), ConnCmd::Command(CommandSub::List));
    assert_eq!(err(&["COMMAND", "COUNT", "x"]), "ERR wrong number of arguments for 'command|count' command");
    assert_eq!(conn(&["INFO"]), ConnCmd::Info(vec![]));
    assert_eq!(conn(&["INFO", "server", "keyspace"]), ConnCmd::Info(vec![b("server"), b("keyspace")]));
}

#[test]
fn keyspace_commands() {
    assert_eq!(keyspace(&["DBSIZE"]), KeyspaceCmd::DbSize);
    assert_eq!(err(&["DBSIZE", "x"]), "ERR wrong number of arguments for 'dbsize' command");
    assert_eq!(keyspace(&["FLUSHDB"]), KeyspaceCmd::FlushDb { lazy: false });
    assert_eq!(keyspace(&["FLUSHALL", "async"]), KeyspaceCmd::FlushAll { lazy: true });
    assert_eq!(keyspace(&["FLUSHALL", "SYNC"]), KeyspaceCmd::FlushAll { lazy: false });
    assert_eq!(err(&["FLUSHDB", "foo"]), "ERR syntax error");
    assert_eq!(err(&["FLUSHDB", "ASYNC", "SYNC"]), "ERR syntax error");
    assert_eq!(keyspace(&["KEYS", "user:*"]), KeyspaceCmd::Keys(b("user:*")));
    assert_eq!(
        keyspace(&["SCAN", "0"]),
        KeyspaceCmd::Scan { cursor: 0, pattern: None, count: None, type_filter: None }
    );
    assert_eq!(
        keyspace(&["SCAN", "17", "match", "u:*", "COUNT", "100", "TYPE", "string"]),
        KeyspaceCmd::Scan { cursor: 17, pattern: Some(b("u:*")), count: Some(100), type_filter: Some(b("string")) }
    );
    assert_eq!(
        keyspace(&["SCAN", "0", "MATCH", "*"]),
        KeyspaceCmd::Scan { cursor: 0, pattern: None, count: None, type_filter: None }
    );
    assert_eq!(err(&["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(err(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
    assert_eq!(err(&["SCAN", "0", "COUNT", "x"]), "ERR value is not an integer or out of range");
    assert_eq!(err(&["SCAN", "0", "COUNT"]), "ERR syntax error");
    assert_eq!(err(&["SCAN", "0", "FOO", "1"]), "ERR syntax error");
}

#[test]
fn transaction_commands_parse_with_redis_arity() {
    assert_eq!(p(&["multi"]), Ok(Command::Conn(ConnCmd::Multi)));
    assert_eq!(p(&["EXEC"]), Ok(Command::Conn(ConnCmd::Exec)));
    assert_eq!(p(&["discard"]), Ok(Command::Conn(ConnCmd::Discard)));
    assert_eq!(p(&["unwatch"]), Ok(Command::Conn(ConnCmd::Unwatch)));
    assert_eq!(p(&["watch", "a", "b"]), Ok(Command::Conn(ConnCmd::Watch(vec![b"a".to_vec(), b"b".to_vec()]))));
    assert_eq!(p(&["watch"]), Err(Reply::wrong_arity("watch")));
    assert_eq!(p(&["multi", "x"]), Err(Reply::wrong_arity("multi")));
    assert_eq!(p(&["exec", "x"]), Err(Reply::wrong_arity("exec")));
}

//! The Lua side of a script: the sandbox Redis 7.0 gives scripts, the
//! `redis` library, and the conversions between Lua values and replies.
//!
//! Every run gets a fresh Lua 5.1 state, so nothing a script leaves in its
//! globals reaches the next one. The script's chunk runs in an environment
//! that refuses new globals and reading undefined ones, as Redis's does.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState};
use sha1::{Digest, Sha1};
use tidal_core::kv::Reply;
use tidal_core::resp::format_double;

/// How often (in Lua instructions) a running script looks whether it was
/// killed, as Redis's hook does.
const HOOK_EVERY: u32 = 100_000;

/// What SCRIPT KILL makes the killed script's caller read.
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// The lowercase hex SHA1 of `bytes`: a script's name in the cache.
pub fn sha1_hex(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A script's shebang flags (`#!lua flags=...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The script had a shebang line (its flags replace EVAL's).
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_cross_slot_keys: bool,
    pub no_cluster: bool,
}

/// A script's flags and the code Lua compiles: the body without its
/// shebang line, whose newline stays so that line numbers match.
pub fn shebang(body: &[u8]) -> Result<(Flags, &[u8]), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((Flags::default(), body));
    }
    let Some(nl) = body.iter().position(|&b| b == b'\n') else {
        return Err(Reply::err("Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..nl]);
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.first() {
        None => return Err(Reply::err("Invalid engine in script shebang")),
        Some(&"#!lua") => {}
        Some(other) => return Err(Reply::err(format!("Unexpected engine in script shebang: {other}"))),
    }
    let mut flags = Flags { shebang: true, ..Flags::default() };
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(Reply::err(format!("Unknown lua shebang option: {part}")));
        };
        if list.is_empty() {
            continue;
        }
        for flag in list.split(',') {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
                "no-cluster" => flags.no_cluster = true,
                "allow-oom" | "allow-stale" => {}
                other => return Err(Reply::err(format!("Unexpected flag in script shebang: {other}"))),
            }
        }
    }
    Ok((flags, &body[nl..]))
}

/// What a script's commands are run by (the node, against its PRG).
pub trait Calls {
    /// Why a run stopped without the script's answer: the node decides
    /// what to do (run it elsewhere, say where the slot went).
    type Stop;
    /// Run one command of the script; `Err` stops the script at once.
    fn call(&mut self, args: Vec<Vec<u8>>, resp3: bool) -> Result<Reply, Self::Stop>;
}

/// One script to run.
pub struct Run<'a> {
    pub sha: &'a str,
    /// The body without its shebang (see [`shebang`]).
    pub code: &'a [u8],
    pub keys: &'a [Vec<u8>],
    pub args: &'a [Vec<u8>],
    /// Set by SCRIPT KILL.
    pub kill: Arc<AtomicBool>,
}

/// Compile `code` as Redis does, to check it before it is cached.
pub fn compile_check(code: &[u8]) -> Result<(), Reply> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| Reply::err(e.to_string()))?;
    lua.load(code)
        .set_name("@user_script")
        .set_mode(ChunkMode::Text)
        .into_function()
        .map(|_| ())
        .map_err(|e| compile_error(&e))
}

fn compile_error(e: &mlua::Error) -> Reply {
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Reply::err(format!("Error compiling script (new function): {msg}"))
}

/// Run a script to its answer, or to the stop a command asked for.
pub fn run<C: Calls>(script: Run<'_>, calls: &mut C) -> Result<Reply, C::Stop> {
    match run_lua(&script, calls) {
        Ok(Ended::Reply(r)) => Ok(r),
        Ok(Ended::Stop(s)) => Err(s),
        Err(e) => Ok(Reply::err(format!("Error running script {}, {}", script.sha, clip(&e.to_string())))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

enum Ended<S> {
    Reply(Reply),
    Stop(S),
}

/// A command's error that `redis.call` raised.
#[derive(Debug)]
struct CommandError(String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

/// A command's error as a script sees it: its code first, ERR when it
/// has none.
fn error_text(e: &str) -> String {
    if e.contains(' ') {
        e.to_string()
    } else {
        format!("ERR {e}")
    }
}

/// The text of an error a command raised, or of a table's `err`, as
/// Lua's `pcall` gives it.
fn command_error(e: &Value) -> Option<String> {
    match e {
        Value::Error(e) => raised(e),
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => Some(s.to_string_lossy()),
            _ => None,
        },
        _ => None,
    }
}

/// An error raised outside Lua as Lua's own errors read: its text.
fn error_message(e: &Value) -> String {
    fn text(e: &mlua::Error) -> String {
        match e {
            mlua::Error::RuntimeError(m) => m.clone(),
            mlua::Error::CallbackError { cause, .. } => text(cause),
            other => other.to_string(),
        }
    }
    match e {
        Value::Error(e) => text(e),
        other => show(other),
    }
}

/// The command error inside an error mlua wrapped.
fn raised(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<CommandError>().map(|c| c.0.clone()),
        mlua::Error::CallbackError { cause, .. } => raised(cause),
        _ => None,
    }
}

/// Most memory one script thread's Lua state may hold.
const MEMORY_LIMIT: usize = 512 << 20;

/// Scripts whose compiled functions a state keeps, at most.
const COMPILED: usize = 1024;

/// Runs a state serves before a fresh one replaces it.
const RUNS_PER_STATE: u64 = 100_000;

/// The flag the current run's hook reads.
struct KillFlag(Arc<AtomicBool>);

/// A Lua state kept by one script thread between runs: creating one (and
/// its libraries) costs more than most scripts. Nothing a run does stays
/// in it: the script's globals are a table of the run's own, the shared
/// globals are frozen and reached through it, and each library through a
/// read-only table made for the run.
struct Vm {
    lua: Lua,
    /// Every global, frozen: what the run's environment reads.
    lib: Table,
    redis: Table,
    /// Each run's read-only view of a library, and the library (weak
    /// keys): `pairs`, `ipairs` and `next` see through a view.
    views: Table,
    /// What `getmetatable` gives for the globals, an environment or a
    /// view: a read-only table (see the prelude's `setmetatable`).
    sealed: Table,
    handler: Function,
    xpcall: Function,
    compiled: HashMap<String, Function>,
    runs: u64,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Set up once per state: Lua's `pcall` gives a command error's text; the
/// loaders refuse precompiled chunks (their bytes are not checked and can
/// break out of the sandbox).
const PRELUDE: &str = r#"
local errtext, killed, getfenv, setfenv, views, sealed, errmsg = ...
local type, select, unpack, tostring, error = type, select, unpack, tostring, error
local pcall0, xpcall0, loadstring0, concat, byte = pcall, xpcall, loadstring, table.concat, string.byte
local function pack(...) return {n = select('#', ...), ...} end
pcall = function(f, ...)
  local r = pack(pcall0(f, ...))
  if not r[1] then
    if killed() then error(r[2], 0) end
    local t = errtext(r[2])
    if t then return false, t end
    -- An error raised outside Lua (an undefined global read) as the
    -- text Lua's own errors are.
    if type(r[2]) == 'userdata' then return false, errmsg(r[2]) end
  end
  return unpack(r, 1, r.n)
end
-- The globals, a run's environment and the libraries' views are sealed:
-- their metatable reads as a read-only table, and setting another is
-- modifying a read-only table, as in Redis.
local setmetatable0, getmetatable0 = setmetatable, getmetatable
setmetatable = function(t, m)
  if type(t) == 'table' and getmetatable0(t) == sealed then
    error('Attempt to modify a readonly table', 2)
  end
  return setmetatable0(t, m)
end
xpcall = function(f, h)
  local r = pack(xpcall0(f, h))
  if not r[1] and killed() then error(r[2], 0) end
  return unpack(r, 1, r.n)
end
local function text(s, name, env)
  if type(s) == 'string' and byte(s, 1) == 27 then
    return nil, 'precompiled chunks are not allowed'
  end
  local f, e = loadstring0(s, name)
  if f then setfenv(f, env) end
  return f, e
end
-- A library's read-only view is an empty table reading through to it:
-- iterating one iterates the library, its values as they read through the
-- view, and the library itself never reaches the script (no library holds
-- a table: `tests::libraries_hold_no_tables`). A bad argument is reported where the script
-- passed it, worded as the builtins word it.
local function table_arg(name, n, t)
  if type(t) ~= 'table' then
    local got = n == 0 and 'no value' or type(t)
    error("bad argument #1 to '" .. name .. "' (table expected, got " .. got .. ")", 3)
  end
  return views[t]
end
local next0, ipairs0 = next, ipairs
next = function(...)
  local t, k = ...
  local real = table_arg('next', select('#', ...), t)
  if not real then return next0(t, k) end
  local key = next0(real, k)
  if key == nil then return nil end
  return key, t[key]
end
pairs = function(...)
  local t = ...
  table_arg('pairs', select('#', ...), t)
  return next, t, nil
end
ipairs = function(...)
  local t = ...
  if not table_arg('ipairs', select('#', ...), t) then return ipairs0(t) end
  return function(view, i)
    i = i + 1
    local v = view[i]
    if v ~= nil then return i, v end
  end, t, 0
end
loadstring = function(s, name)
  return text(s, name, getfenv(2))
end
load = function(f, name)
  if type(f) ~= 'function' then return text(f, name, getfenv(2)) end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = tostring(piece)
  end
  return text(concat(parts), name, getfenv(2))
end
"#;

impl Vm {
    fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), |lua, _| {
            if lua.app_data_ref::<KillFlag>().is_some_and(|k| k.0.load(Ordering::Relaxed)) {
                return Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."));
            }
            Ok(VmState::Continue)
        })?;
        let g = lua.globals();
        crate::script_libs::install(&lua, &g)?;
        let redis = redis_table(&lua)?;
        g.raw_set("redis", redis.clone())?;
        // Lua's own xpcall runs each script (the prelude wraps the one
        // scripts see).
        let xpcall: Function = g.raw_get("xpcall")?;
        let prelude: Function = lua.load(PRELUDE).set_name("=prelude").into_function()?;
        let killed = lua.create_function(|lua, ()| {
            Ok(lua.app_data_ref::<KillFlag>().is_some_and(|k| k.0.load(Ordering::Relaxed)))
        })?;
        let (getfenv, setfenv): (Value, Value) = (g.raw_get("getfenv")?, g.raw_get("setfenv")?);
        let views = lua.create_table()?;
        let weak = lua.create_table()?;
        weak.raw_set("__mode", "k")?;
        views.set_metatable(Some(weak))?;
        let errtext = lua.create_function(|_, e: Value| Ok(command_error(&e)))?;
        let sealed = lua.create_table()?;
        let seal = lua.create_table()?;
        seal.raw_set("__newindex", readonly(&lua)?)?;
        seal.raw_set("__metatable", false)?;
        sealed.set_metatable(Some(seal))?;
        let errmsg = lua.create_function(|_, e: Value| Ok(error_message(&e)))?;
        prelude.call::<()>((errtext, killed, getfenv, setfenv, views.clone(), sealed.clone(), errmsg))?;
        for gone in [
            "dofile",
            "loadfile",
            "print",
            "module",
            "require",
            "getfenv",
            "setfenv",
            "newproxy",
            "gcinfo",
            "coroutine",
        ] {
            g.raw_set(gone, Value::Nil)?;
        }
        // A string's methods come from the string library, through the
        // strings' metatable: hidden, so that no script can reach it.
        if let Value::Table(meta) = lua.load("return getmetatable('')").eval::<Value>()? {
            meta.raw_set("__metatable", false)?;
        }
        let handler = lua.create_function(error_handler)?;
        // Freeze the globals: they move to `lib`, and the globals table
        // stays empty, read through to `lib` and refusing every write
        // (chunks that loadstring makes run in it).
        let lib = lua.create_table()?;
        for pair in g.pairs::<Value, Value>() {
            let (k, v) = pair?;
            lib.raw_set(k, v)?;
        }
        let keys: Vec<Value> = lib.pairs::<Value, Value>().map(|p| p.map(|(k, _)| k)).collect::<mlua::Result<_>>()?;
        for k in keys {
            g.raw_set(k, Value::Nil)?;
        }
        lib.raw_set("_G", Value::Nil)?;
        let frozen = lua.create_table()?;
        frozen.raw_set("__index", lib.clone())?;
        frozen.raw_set("__newindex", readonly(&lua)?)?;
        frozen.raw_set("__metatable", sealed.clone())?;
        g.set_metatable(Some(frozen))?;
        Ok(Vm { lua, lib, redis, views, sealed, handler, xpcall, compiled: HashMap::new(), runs: 0 })
    }

    /// The script's function, compiled once per state.
    fn function(&mut self, sha: &str, code: &[u8]) -> Result<Function, Reply> {
        if let Some(f) = self.compiled.get(sha) {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| compile_error(&e))?;
        if self.compiled.len() >= COMPILED {
            self.compiled.clear();
        }
        self.compiled.insert(sha.to_string(), f.clone());
        Ok(f)
    }
}

fn readonly(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|_, _: Variadic<Value>| -> mlua::Result<()> {
        Err(mlua::Error::runtime("Attempt to modify a readonly table"))
    })
}

fn run_lua<C: Calls>(script: &Run<'_>, calls: &mut C) -> mlua::Result<Ended<C::Stop>> {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|vm| vm.runs >= RUNS_PER_STATE) {
            *slot = Some(Vm::new()?);
        }
        let vm = slot.as_mut().expect("a state");
        vm.runs += 1;
        let ended = run_in(vm, script, calls);
        // A state that failed is not trusted again, nor one a script left
        // holding much (after a full collection).
        let heavy = || {
            vm.lua.used_memory() > MEMORY_LIMIT / 4 && {
                let _ = vm.lua.gc_collect();
                vm.lua.used_memory() > MEMORY_LIMIT / 4
            }
        };
        if ended.is_err() || heavy() {
            *slot = None;
        }
        ended
    })
}

fn run_in<C: Calls>(vm: &mut Vm, script: &Run<'_>, calls: &mut C) -> mlua::Result<Ended<C::Stop>> {
    let user = match vm.function(script.sha, script.code) {
        Ok(f) => f,
        Err(e) => return Ok(Ended::Reply(e)),
    };
    let lua = &vm.lua;
    lua.set_app_data(KillFlag(script.kill.clone()));
    let env = environment(lua, (&vm.lib, &vm.views, &vm.sealed), script)?;
    user.set_environment(env)?;
    let stop: RefCell<Option<C::Stop>> = RefCell::new(None);
    let calls = RefCell::new(calls);
    let resp3 = Cell::new(false);
    let sha = script.sha;
    let redis = &vm.redis;
    let ended = lua.scope(|scope| {
        // One command of the script; `raise`: a failed one raises its
        // error (redis.call), else it is returned (redis.pcall).
        let command = |lua: &Lua, args: Variadic<Value>, raise: bool| -> mlua::Result<Value> {
            if stop.borrow().is_some() {
                return Err(mlua::Error::runtime("the script is stopping"));
            }
            let reply = match command_args(args) {
                Err(e) => e,
                Ok(args) => match calls.borrow_mut().call(args, resp3.get()) {
                    Ok(r) => r,
                    Err(s) => {
                        *stop.borrow_mut() = Some(s);
                        return Err(mlua::Error::runtime("the script is stopping"));
                    }
                },
            };
            match reply {
                Reply::Error(e) if raise => Err(mlua::Error::external(CommandError(error_text(&e)))),
                r => to_lua(lua, &r, resp3.get()),
            }
        };
        redis.raw_set("call", scope.create_function(move |lua, args| command(lua, args, true))?)?;
        redis.raw_set("pcall", scope.create_function(move |lua, args| command(lua, args, false))?)?;
        let setresp = scope.create_function(|_, n: Variadic<Value>| {
            let [v] = n.as_slice() else { return Err(mlua::Error::runtime("redis.setresp() requires one argument.")) };
            match v.as_integer().or_else(|| v.as_number().map(|n| n as i64)) {
                Some(2) => resp3.set(false),
                Some(3) => resp3.set(true),
                _ => return Err(mlua::Error::runtime("RESP version must be 2 or 3.")),
            }
            Ok(())
        })?;
        redis.raw_set("setresp", setresp)?;
        let (ok, value): (bool, Value) = vm.xpcall.call((user, vm.handler.clone()))?;
        if let Some(s) = stop.borrow_mut().take() {
            return Ok(Ended::Stop(s));
        }
        if script.kill.load(Ordering::Relaxed) {
            let line = match &value {
                Value::Table(t) => t.raw_get::<Option<i64>>("line")?.unwrap_or(0),
                _ => 0,
            };
            return Ok(Ended::Reply(Reply::Error(format!("{KILLED} script: {sha}, on @user_script:{line}."))));
        }
        if ok {
            return Ok(Ended::Reply(to_reply(&value, resp3.get(), 0)));
        }
        // The handler made every error a table with its text and line.
        let Value::Table(t) = value else {
            return Ok(Ended::Reply(Reply::err(format!("Error running script {sha}, {}", clip(&show(&value))))));
        };
        let err: String = t.raw_get::<Option<String>>("err")?.unwrap_or_else(|| "ERR unknown error".into());
        let line: i64 = t.raw_get::<Option<i64>>("line")?.unwrap_or(0);
        Ok(Ended::Reply(Reply::Error(format!("{} script: {sha}, on @user_script:{line}.", one_line(&err)))))
    });
    for f in ["call", "pcall", "setresp"] {
        redis.raw_set(f, Value::Nil)?;
    }
    lua.remove_app_data::<KillFlag>();
    // A script may have stopped the collector (collectgarbage "stop").
    lua.gc_restart();
    ended
}

/// A run's globals: its KEYS and ARGV, `_G` itself; the frozen globals
/// read through it, each library as a read-only table made for the run;
/// no new global, and no undefined one read.
fn environment(lua: &Lua, (lib, views, sealed): (&Table, &Table, &Table), script: &Run<'_>) -> mlua::Result<Table> {
    let env = lua.create_table()?;
    let strings = |items: &[Vec<u8>]| -> mlua::Result<Table> {
        lua.create_sequence_from(items.iter().map(|k| lua.create_string(k)).collect::<mlua::Result<Vec<_>>>()?)
    };
    // KEYS, ARGV and _G are read through the environment's metatable,
    // like every global, so assigning any of them is refused too.
    let own = lua.create_table()?;
    own.raw_set("KEYS", strings(script.keys)?)?;
    own.raw_set("ARGV", strings(script.args)?)?;
    let meta = lua.create_table()?;
    let lib = lib.clone();
    let views = views.clone();
    let sealed_views = sealed.clone();
    meta.raw_set(
        "__index",
        lua.create_function(move |lua, (env, k): (Table, Value)| {
            if let Value::String(name) = &k {
                if name.as_bytes().as_ref() == b"_G" {
                    return Ok(Value::Table(env));
                }
            }
            if let v @ Value::Table(_) = own.raw_get::<Value>(k.clone())? {
                return Ok(v);
            }
            let v: Value = lib.raw_get(k.clone())?;
            match v {
                Value::Nil => {
                    let name = match &k {
                        Value::String(s) => s.to_string_lossy(),
                        other => format!("{other:?}"),
                    };
                    Err(mlua::Error::runtime(format!(
                        "Script attempted to access nonexistent global variable '{name}'"
                    )))
                }
                Value::Table(t) => {
                    let view = lua.create_table()?;
                    let m = lua.create_table()?;
                    m.raw_set("__index", t.clone())?;
                    m.raw_set("__newindex", readonly(lua)?)?;
                    m.raw_set("__metatable", sealed_views.clone())?;
                    view.set_metatable(Some(m))?;
                    views.raw_set(view.clone(), t)?;
                    env.raw_set(k, view.clone())?;
                    Ok(Value::Table(view))
                }
                v => Ok(v),
            }
        })?,
    )?;
    meta.raw_set("__newindex", readonly(lua)?)?;
    meta.raw_set("__metatable", sealed.clone())?;
    env.set_metatable(Some(meta))?;
    Ok(env)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        other => format!("{other:?}"),
    }
}

/// An error's text as a reply line: CR and LF become spaces.
fn one_line(s: &str) -> String {
    s.trim_end_matches(['\r', '\n']).replace(['\r', '\n'], " ")
}

/// The script's error as Redis's handler makes it: a table with `err`
/// (its code first; "ERR " before a bare text) and the script's line.
fn error_handler(lua: &Lua, e: Value) -> mlua::Result<Table> {
    let err = match &e {
        Value::Table(t) => match t.raw_get::<Value>("err")? {
            Value::String(s) => s.to_string_lossy(),
            _ => "ERR the script raised a table without an err field".to_string(),
        },
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        Value::Nil => "ERR nil".to_string(),
        Value::Error(e) => match raised(e) {
            Some(text) => text,
            None => format!("ERR user_script:{}: {}", user_line(lua), innermost(e)),
        },
        other => format!("ERR {}", lua.coerce_string(other.clone())?.map_or("error".into(), |s| s.to_string_lossy())),
    };
    let t = lua.create_table()?;
    t.raw_set("err", err)?;
    t.raw_set("line", user_line(lua))?;
    Ok(t)
}

/// The line of the script's innermost frame running, past the C
/// functions (error, redis.call) and the prelude.
fn user_line(lua: &Lua) -> usize {
    for level in 1..64 {
        let Some(found) = lua.inspect_stack(level, |d| {
            (d.source().source.as_deref() == Some("@user_script")).then(|| d.current_line()).flatten()
        }) else {
            break;
        };
        if let Some(l) = found {
            return l;
        }
    }
    0
}

/// The message of an error raised in Rust, without mlua's wrapping.
fn innermost(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        other => other.to_string(),
    }
}

/// The `redis` library, but for the functions that need the run (added
/// by [`run_lua`] and the prelude).
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    let reply_table = |field: &'static str| {
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = lua.create_table()?;
            match args.as_slice() {
                [Value::String(s)] if field == "err" => {
                    let s = s.to_string_lossy();
                    let s = s.strip_prefix('-').unwrap_or(&s).to_string();
                    let s = if s.contains(' ') { s } else { format!("ERR {s}") };
                    t.raw_set("err", s)?;
                }
                [Value::String(s)] => t.raw_set("ok", s.clone())?,
                _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
            }
            Ok(t)
        })
    };
    redis.raw_set("error_reply", reply_table("err")?)?;
    redis.raw_set("status_reply", reply_table("ok")?)?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let [v] = args.as_slice() else { return Err(mlua::Error::runtime("wrong number of arguments")) };
            let bytes = match v {
                Value::Nil => Vec::new(),
                v => lua.coerce_string(v.clone())?.map_or_else(Vec::new, |s| s.as_bytes().to_vec()),
            };
            Ok(sha1_hex(&bytes))
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|_, args: Variadic<Value>| {
            let args = args.as_slice();
            if args.len() < 2 {
                return Err(mlua::Error::runtime("redis.log() requires two arguments or more."));
            }
            let Some(level) = args[0].as_number().or_else(|| args[0].as_integer().map(|i| i as f64)) else {
                return Err(mlua::Error::runtime("First argument must be a number (log level)."));
            };
            if !(0.0..=3.0).contains(&level) {
                return Err(mlua::Error::runtime("Invalid debug level."));
            }
            let text: Vec<String> = args[1..]
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.to_string_lossy()),
                    Value::Integer(i) => Some(i.to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            tracing::info!(target: "tidal::script", "{}", text.join(" "));
            Ok(())
        })?,
    )?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        redis.raw_set(name, v)?;
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, args: Variadic<Value>| {
            let [v] = args.as_slice() else {
                return Err(mlua::Error::runtime("redis.set_repl() requires two arguments."));
            };
            match v.as_integer().or_else(|| v.as_number().map(|n| n as i64)) {
                Some(0..=3) => Ok(()),
                _ => Err(mlua::Error::runtime(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                )),
            }
        })?,
    )?;
    redis.raw_set("replicate_commands", lua.create_function(|_, _: Variadic<Value>| Ok(true))?)?;
    redis.raw_set("breakpoint", lua.create_function(|_, _: Variadic<Value>| Ok(Value::Nil))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: Variadic<Value>| Ok(()))?)?;
    redis.raw_set("REDIS_VERSION", "7.0.15")?;
    redis.raw_set("REDIS_VERSION_NUM", 0x07000f)?;
    Ok(redis)
}

/// A command's arguments from `redis.call`: strings, or numbers written
/// as `%.17g` writes them.
fn command_args(args: Variadic<Value>) -> Result<Vec<Vec<u8>>, Reply> {
    if args.is_empty() {
        return Err(Reply::err("Please specify at least one argument for this redis lib call"));
    }
    args.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            Value::Integer(i) => Ok(i.to_string().into_bytes()),
            Value::Number(n) => Ok(crate::script_libs::format_g(*n, 17).into_bytes()),
            _ => Err(Reply::err("Lua redis lib command arguments must be strings or integers")),
        })
        .collect()
}

/// A command's reply as a script sees it (in RESP2's shapes, or RESP3's
/// after `redis.setresp(3)`).
fn to_lua(lua: &Lua, r: &Reply, resp3: bool) -> mlua::Result<Value> {
    let field = |name: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(name, v)?;
        Ok(Value::Table(t))
    };
    let string = |b: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    let seq = |items: &mut dyn Iterator<Item = mlua::Result<Value>>| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for (i, v) in items.enumerate() {
            t.raw_set(i + 1, v?)?;
        }
        Ok(Value::Table(t))
    };
    Ok(match r {
        Reply::Ok => field("ok", string(b"OK")?)?,
        Reply::Simple(s) => field("ok", string(s.as_bytes())?)?,
        Reply::Error(e) => field("err", string(error_text(e).as_bytes())?)?,
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(f64::from(u8::from(*b))),
        Reply::Bulk(b) => string(b)?,
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) => seq(&mut items.iter().map(|i| to_lua(lua, i, resp3)))?,
        Reply::Set(items) if resp3 => {
            let t = lua.create_table()?;
            for i in items {
                t.raw_set(to_lua(lua, i, resp3)?, true)?;
            }
            field("set", Value::Table(t))?
        }
        Reply::Set(items) => seq(&mut items.iter().map(|i| to_lua(lua, i, resp3)))?,
        Reply::Double(d) | Reply::Score(d) if resp3 => field("double", Value::Number(*d))?,
        Reply::Double(d) => string(format_double(*d).as_bytes())?,
        Reply::Score(s) => string(tidal_core::kv::format_score(*s).as_bytes())?,
        Reply::Map(pairs) | Reply::Keyed(pairs) if resp3 => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            field("map", Value::Table(t))?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            seq(&mut pairs.iter().flat_map(|(k, v)| [k, v]).map(|i| to_lua(lua, i, resp3)))?
        }
        Reply::Keyed(pairs) => seq(&mut pairs.iter().map(|(k, v)| {
            let t = lua.create_table()?;
            t.raw_set(1, to_lua(lua, k, resp3)?)?;
            t.raw_set(2, to_lua(lua, v, resp3)?)?;
            Ok(Value::Table(t))
        }))?,
        Reply::Verbatim(s) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("format", "txt")?;
            t.raw_set("string", s.as_str())?;
            field("verbatim_string", Value::Table(t))?
        }
        Reply::Verbatim(s) => string(s.as_bytes())?,
    })
}

/// How deep a script's answer may nest.
const MAX_DEPTH: usize = 64;

/// A Lua number as Redis makes it an integer reply: C's conversion on
/// x86-64, which gives `i64::MIN` for NaN and for anything out of range
/// (so `redis.call('incr', k)` at 2^63 - 1, a double of 2^63 in Lua 5.1,
/// answers -2^63 from a script, as in Redis).
fn as_long_long(n: f64) -> i64 {
    // 2^63, exactly a double: the first value past i64's range.
    const TWO_63: f64 = 9_223_372_036_854_775_808u64 as f64;
    if n.is_nan() || !(-TWO_63..TWO_63).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A script's answer as a reply. A boolean is Redis's: under
/// `redis.setresp(3)` a RESP3 boolean, else true is 1 and false nil.
fn to_reply(v: &Value, resp3: bool, depth: usize) -> Reply {
    if depth > MAX_DEPTH {
        return Reply::err("reached lua stack limit");
    }
    match v {
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(as_long_long(*n)),
        Value::String(s) => Reply::Bulk(s.as_bytes().to_vec()),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Table(t) => table_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    let get = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = get("err") {
        return Reply::Error(one_line(&e.to_string_lossy()));
    }
    if let Value::String(s) = get("ok") {
        return Reply::Simple(s.to_string_lossy().replace(['\r', '\n'], " "));
    }
    if let Some(d) = get("double").as_number().or_else(|| get("double").as_integer().map(|i| i as f64)) {
        return Reply::Double(d);
    }
    if let Value::String(s) = get("big_number") {
        return Reply::Bulk(s.as_bytes().to_vec());
    }
    if let Value::Table(v) = get("verbatim_string") {
        if let Ok(Value::String(s)) = v.raw_get::<Value>("string") {
            return Reply::Verbatim(s.to_string_lossy());
        }
    }
    if let Value::Table(m) = get("map") {
        let pairs = m.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Map(
            pairs.map(|(k, v)| (to_reply(&k, resp3, depth + 1), to_reply(&v, resp3, depth + 1))).collect(),
        );
    }
    if let Value::Table(s) = get("set") {
        return Reply::Set(
            s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| to_reply(&k, resp3, depth + 1)).collect(),
        );
    }
    let mut out = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => out.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands answer 1; enough to see what a script does in Lua.
    struct Ones;

    impl Calls for Ones {
        type Stop = ();
        fn call(&mut self, _: Vec<Vec<u8>>, _: bool) -> Result<Reply, ()> {
            Ok(Reply::Int(1))
        }
    }

    fn eval(code: &str) -> Reply {
        let kill = Arc::new(AtomicBool::new(false));
        let sha = sha1_hex(code.as_bytes());
        let keys = [b"k".to_vec()];
        run(Run { sha: &sha, code: code.as_bytes(), keys: &keys, args: &[], kill }, &mut Ones).expect("no stop")
    }

    fn fails_with(r: &Reply, text: &str) -> bool {
        matches!(r, Reply::Error(e) if e.contains(text))
    }

    #[test]
    fn replies_convert_as_redis_converts_them() {
        assert_eq!(eval("return 100.5"), Reply::Int(100));
        assert_eq!(
            eval("return {1, 'a', true, false, 3}"),
            Reply::Array(vec![Reply::Int(1), Reply::bulk("a"), Reply::Int(1), Reply::Nil, Reply::Int(3)])
        );
        assert_eq!(eval("return {ok = 'fine'}"), Reply::Simple("fine".into()));
        assert_eq!(eval("return {err = 'My Error'}"), Reply::Error("My Error".into()));
        assert_eq!(eval("return redis.call('incr', KEYS[1]) + 1"), Reply::Int(2));
        assert_eq!(eval("return redis.sha1hex('')"), Reply::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
        assert_eq!(eval("return redis.error_reply('MYERR')"), Reply::Error("ERR MYERR".into()));
        // Under RESP3 a boolean stays one, nested too (a RESP2 client
        // reads it as 1 or 0).
        assert_eq!(eval("redis.setresp(3) return true"), Reply::Bool(true));
        assert_eq!(eval("redis.setresp(3) return {false, 1}"), Reply::Array(vec![Reply::Bool(false), Reply::Int(1)]));
        assert_eq!(eval("redis.setresp(3) redis.setresp(2) return false"), Reply::Nil);
        // Numbers are doubles: past 2^63 - 1, and NaN, C's conversion.
        assert_eq!(eval("return 9223372036854775807"), Reply::Int(i64::MIN));
        assert_eq!(eval("return -9223372036854775808"), Reply::Int(i64::MIN));
        assert_eq!(eval("return 1e300"), Reply::Int(i64::MIN));
        assert_eq!(eval("return 0/0"), Reply::Int(i64::MIN));
        assert_eq!(eval("return -1e18"), Reply::Int(-1_000_000_000_000_000_000));
    }

    #[test]
    fn nothing_a_run_does_reaches_the_next() {
        // Globals: none new, none undefined read; _G is the run's own.
        assert!(fails_with(&eval("x = 1"), "Attempt to modify a readonly table"));
        assert_eq!(eval("rawset(_G, 'leak', 1) return leak"), Reply::Int(1));
        assert!(fails_with(&eval("return leak"), "nonexistent global variable 'leak'"));
        // Libraries are read-only; a raw write stays in the run's view.
        assert!(fails_with(&eval("string.upper = nil"), "Attempt to modify a readonly table"));
        assert!(fails_with(&eval("redis.call = nil"), "Attempt to modify a readonly table"));
        eval("rawset(string, 'upper', function() return 'pwned' end)");
        assert_eq!(eval("return string.upper('a')"), Reply::bulk("A"));
        assert_eq!(eval("return ('a'):upper()"), Reply::bulk("A"));
        // Chunks a script loads cannot write globals either.
        assert!(fails_with(&eval("loadstring('y = 1')()"), "Attempt to modify a readonly table"));
        assert!(fails_with(&eval("return y"), "nonexistent global variable 'y'"));
        // The strings' metatable and the loaders of the state are out of reach.
        assert!(fails_with(&eval("return getmetatable('').__index"), "attempt to index"));
        assert!(fails_with(&eval("return getfenv"), "nonexistent global variable 'getfenv'"));
        // Redis's "Try trick global protection" tests, and KEYS and ARGV.
        for trick in [
            "setmetatable(_G, {})",
            "local g = getmetatable(_G) g.__index = {}",
            "_G = {}",
            "KEYS = {}",
            "redis = function() return 1 end",
            "setmetatable(string, {})",
            "getmetatable(cjson).__index = {}",
        ] {
            assert!(fails_with(&eval(trick), "Attempt to modify a readonly table"), "{trick}: {:?}", eval(trick));
        }
        assert_eq!(eval("return KEYS[1]"), Reply::bulk("k"));
        assert_eq!(eval("return #_G.KEYS + #ARGV"), Reply::Int(1));
        // An error raised outside Lua reaches pcall as text.
        let caught = eval("local ok, res = pcall(function() return foo end) return tostring(ok) .. ' ' .. res");
        assert!(
            matches!(&caught, Reply::Bulk(b) if b.starts_with(b"false ") && b.ends_with(b"nonexistent global variable 'foo'")),
            "{caught:?}"
        );
        assert_eq!(
            eval("return {cjson.encode_keep_buffer(false), cjson.encode_keep_buffer()}"),
            Reply::Array(vec![Reply::Nil, Reply::Int(1)])
        );
        // A library's view iterates as the library does.
        assert_eq!(eval("local n = 0 for k in pairs(string) do n = n + 1 end return n > 10"), Reply::Int(1));
        assert_eq!(eval("return next(redis) ~= nil"), Reply::Int(1));
        assert_eq!(eval("local n = 0 for k, v in pairs({5, 6}) do n = n + v end return n"), Reply::Int(11));
        assert_eq!(eval("local n = 0 for i, v in ipairs({5, 6}) do n = n + i end return n"), Reply::Int(3));
        let none = eval("local f = ipairs()");
        assert!(
            fails_with(&none, "user_script:1: bad argument #1 to 'ipairs' (table expected, got no value)"),
            "{none:?}"
        );
        // What iterating a view gives cannot change the library.
        let escape = "local _, real = pairs(string) if real ~= string then real.upper = nil end \
                      local f, s = ipairs(string) if s ~= string then s.upper = nil end";
        eval(escape);
        assert_eq!(eval("return string.upper('a')"), Reply::bulk("A"));
        let bad = eval("local f = pairs(nil)");
        assert!(
            fails_with(&bad, "user_script:1: bad argument #1 to 'pairs' (table expected, got nil) script: "),
            "{bad:?}"
        );
    }

    /// What keeps a library's values out of a script's reach through
    /// `pairs`: none is a table (a table would be the library's own).
    #[test]
    fn libraries_hold_no_tables() {
        let vm = Vm::new().unwrap();
        let mut libraries = 0;
        for global in vm.lib.pairs::<Value, Value>() {
            let (name, value) = global.unwrap();
            let Value::Table(library) = value else { continue };
            libraries += 1;
            for entry in library.pairs::<Value, Value>() {
                let (k, v) = entry.unwrap();
                assert!(!matches!(v, Value::Table(_)), "{}.{} is a table", show(&name), show(&k));
            }
        }
        assert!(libraries >= 6, "{libraries}");
    }

    #[test]
    fn chunks_a_script_loads_run_in_its_environment() {
        assert!(fails_with(&eval("loadstring('string.upper = nil')()"), "Attempt to modify a readonly table"));
        assert_eq!(eval("return loadstring('return KEYS[1]')()"), Reply::bulk("k"));
        assert_eq!(eval("return string.upper('a')"), Reply::bulk("A"));
        // A script's own body is text, never bytecode.
        let kill = Arc::new(AtomicBool::new(false));
        let bytecode = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00";
        let r = run(Run { sha: "b", code: bytecode, keys: &[], args: &[], kill }, &mut Ones).unwrap();
        assert!(fails_with(&r, "Error compiling script"), "{r:?}");
    }

    #[test]
    fn a_killed_script_stops_though_it_catches_errors() {
        let kill = Arc::new(AtomicBool::new(false));
        let k = kill.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            k.store(true, Ordering::Relaxed);
        });
        let code = b"while true do pcall(function() while true do end end) xpcall(function() while true do end end, function() end) end";
        let r = run(Run { sha: "k", code, keys: &[], args: &[], kill }, &mut Ones).unwrap();
        killer.join().unwrap();
        assert!(fails_with(&r, KILLED), "{r:?}");
        // The state serves the next script.
        assert_eq!(eval("return 7"), Reply::Int(7));
    }

    #[test]
    fn precompiled_chunks_are_refused() {
        let r = eval("local f, e = loadstring(string.dump(function() return 1 end)) return {tostring(f), e}");
        assert_eq!(r, Reply::Array(vec![Reply::bulk("nil"), Reply::bulk("precompiled chunks are not allowed")]));
        let r = eval("local s = string.dump(function() return 1 end) local f = load(function() local p = s s = nil return p end) return tostring(f)");
        assert_eq!(r, Reply::bulk("nil"));
    }

    #[test]
    fn errors_carry_the_script_and_its_line() {
        let sha = sha1_hex(b"return a");
        assert_eq!(
            eval("return a"),
            Reply::Error(format!(
                "ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: {sha}, on @user_script:1."
            ))
        );
        let code = "local x = 1\nerror('boom')";
        let sha = sha1_hex(code.as_bytes());
        assert_eq!(eval(code), Reply::Error(format!("ERR user_script:2: boom script: {sha}, on @user_script:2.")));
        assert!(fails_with(&eval("retur 1"), "Error compiling script (new function): user_script:1:"));
    }
}

//! What INFO's `commandstats` and `errorstats` sections report for this
//! node: for each command and subcommand the node took, its calls, the
//! microseconds from taking it to answering it, and how many were refused
//! before they ran (a wrong argument count, no AUTH) or answered an error;
//! for each error code, how many replies carried it.
//!
//! The counters are atomics indexed by the command table's order, so a
//! command costs one hash lookup of its name and a few relaxed adds.
//! CONFIG RESETSTAT zeroes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tidal_core::kv::{CommandSpec, Reply, COMMANDS};

/// Redis's bound on the distinct error codes it tracks; past it, the
/// others are counted in `total_error_replies` only.
const MAX_ERROR_CODES: usize = 128;

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// A command being answered: which, and since when.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    id: usize,
    started: Instant,
}

pub struct CommandStats {
    index: HashMap<&'static str, usize>,
    names: Vec<&'static str>,
    counters: Vec<Counters>,
    errors: Mutex<BTreeMap<String, u64>>,
    total_errors: AtomicU64,
}

impl Default for CommandStats {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandStats {
    pub fn new() -> CommandStats {
        let names: Vec<&'static str> = COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
            .map(|c: &CommandSpec| c.name)
            .collect();
        CommandStats {
            index: names.iter().enumerate().map(|(i, n)| (*n, i)).collect(),
            counters: names.iter().map(|_| Counters::default()).collect(),
            names,
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
        }
    }

    /// The command `spec` starts being answered now.
    pub fn start(&self, spec: &CommandSpec) -> Option<Call> {
        self.index.get(spec.name).map(|&id| Call { id, started: Instant::now() })
    }

    /// The command of `call` answered `reply`.
    pub fn done(&self, call: Option<Call>, reply: &Reply) {
        let Some(call) = call else { return };
        let c = &self.counters[call.id];
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.usec.fetch_add(call.started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if reply.is_error() {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The command `spec` was refused before it ran.
    pub fn rejected(&self, spec: &CommandSpec) {
        if let Some(&id) = self.index.get(spec.name) {
            self.counters[id].rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A reply went out: an error one is counted by its code.
    pub fn reply(&self, reply: &Reply) {
        let Some(code) = reply.error_code() else { return };
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().expect("error stats lock");
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_CODES {
            errors.insert(code.to_string(), 1);
        }
    }

    pub fn total_errors(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in &self.counters {
            for n in [&c.calls, &c.usec, &c.rejected, &c.failed] {
                n.store(0, Ordering::Relaxed);
            }
        }
        self.errors.lock().expect("error stats lock").clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// INFO commandstats: a line for each command called or refused.
    pub fn command_lines(&self) -> Vec<String> {
        let mut lines: Vec<(&str, String)> = Vec::new();
        for (name, c) in self.names.iter().zip(&self.counters) {
            let (calls, usec) = (c.calls.load(Ordering::Relaxed), c.usec.load(Ordering::Relaxed));
            let (rejected, failed) = (c.rejected.load(Ordering::Relaxed), c.failed.load(Ordering::Relaxed));
            if calls + rejected == 0 {
                continue;
            }
            let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
            lines.push((
                name,
                format!(
                    "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
                ),
            ));
        }
        lines.sort_by(|a, b| a.0.cmp(b.0));
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// INFO errorstats: a line for each error code answered.
    pub fn error_lines(&self) -> Vec<String> {
        let errors = self.errors.lock().expect("error stats lock");
        errors.iter().map(|(code, n)| format!("errorstat_{code}:count={n}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::kv::lookup;

    #[test]
    fn calls_failures_refusals_and_error_codes_are_counted_until_reset() {
        let stats = CommandStats::new();
        let get = lookup(b"get").unwrap();
        let xreadgroup = lookup(b"XREADGROUP").unwrap();
        stats.done(stats.start(get), &Reply::Nil);
        stats.done(stats.start(get), &Reply::bulk("v"));
        let nogroup = Reply::Error("NOGROUP no such group".into());
        stats.done(stats.start(xreadgroup), &nogroup);
        stats.reply(&nogroup);
        stats.rejected(get);
        stats.reply(&Reply::err("wrong number of arguments for 'get' command"));
        let lines = stats.command_lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("cmdstat_get:calls=2,usec="), "{lines:?}");
        assert!(lines[0].ends_with(",rejected_calls=1,failed_calls=0"), "{lines:?}");
        assert!(lines[1].starts_with("cmdstat_xreadgroup:calls=1,") && lines[1].ends_with("failed_calls=1"));
        assert_eq!(stats.error_lines(), ["errorstat_ERR:count=1", "errorstat_NOGROUP:count=1"]);
        assert_eq!(stats.total_errors(), 2);
        stats.reset();
        assert!(stats.command_lines().is_empty() && stats.error_lines().is_empty());
        assert_eq!(stats.total_errors(), 0);
    }

    #[test]
    fn subcommands_have_lines_of_their_own() {
        let stats = CommandStats::new();
        let config = lookup(b"config").unwrap();
        let get = config.subcommands.iter().find(|s| s.name == "config|get").unwrap();
        stats.done(stats.start(get), &Reply::Array(vec![]));
        assert!(stats.command_lines()[0].starts_with("cmdstat_config|get:calls=1,"));
    }
}

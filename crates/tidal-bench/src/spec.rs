//! What a benchmark run is asked to do, validated before any load starts.
//!
//! The command line hands over strings; [`Spec::parse`] turns them into typed
//! values or a [`SpecError`] that names the offending flag. Nothing here does
//! I/O: reachability of the target is checked later, by the runner's probe.

use std::time::Duration;

use thiserror::Error;

/// A bad flag value. Each variant's text is one line naming the flag.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    #[error("--target '{0}': unknown scheme (use resp://, rediss://, etcd://, http:// or https://)")]
    UnknownScheme(String),
    #[error("--target '{0}': expected host:port after the scheme")]
    BadEndpoint(String),
    #[error("--target '{0}': {NO_ETCD}")]
    NoEtcd(String),
    #[error("--{flag} '{value}': {reason}")]
    BadValue { flag: &'static str, value: String, reason: String },
}

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> SpecError {
    SpecError::BadValue { flag, value: value.to_string(), reason: reason.into() }
}

/// Why a build cannot reach etcd.
pub const NO_ETCD: &str =
    "this tidal was built without etcd support; rebuild with `cargo build --release -p tidal --features etcd` \
     (needs protoc: apt install protobuf-compiler)";

/// The protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RESP: tidal, or any Redis.
    Resp,
    /// etcd v3 over gRPC.
    Etcd,
    /// tidal's HTTP data API, `/v1/kv/{tenant}/{key}`.
    Http,
}

/// Where the load goes: one protocol, one or more `host:port` endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub protocol: Protocol,
    pub endpoints: Vec<String>,
    /// TLS on the connections (`rediss://`, `https://`).
    pub tls: bool,
}

impl Target {
    /// Parses `scheme://host:port[,host:port...]`. Every endpoint may also
    /// repeat the scheme (`resp://a:1,resp://b:2`).
    pub fn parse(s: &str) -> Result<Target, SpecError> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| SpecError::UnknownScheme(s.to_string()))?;
        let protocol = scheme_of(scheme).ok_or_else(|| SpecError::UnknownScheme(s.to_string()))?;
        let tls = matches!(scheme, "rediss" | "https");
        if protocol == Protocol::Etcd && !cfg!(feature = "etcd") {
            return Err(SpecError::NoEtcd(s.to_string()));
        }
        let mut endpoints = Vec::new();
        for part in rest.split(',') {
            let hostport = match part.split_once("://") {
                Some((sch, hp)) if scheme_of(sch) == Some(protocol) && matches!(sch, "rediss" | "https") == tls => hp,
                Some(_) => return Err(SpecError::UnknownScheme(s.to_string())),
                None => part,
            };
            let hostport = hostport.trim_end_matches('/');
            let valid = hostport
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(SpecError::BadEndpoint(s.to_string()));
            }
            endpoints.push(hostport.to_string());
        }
        Ok(Target { protocol, endpoints, tls })
    }
}

fn scheme_of(s: &str) -> Option<Protocol> {
    match s {
        "resp" | "redis" | "rediss" => Some(Protocol::Resp),
        "etcd" => Some(Protocol::Etcd),
        "http" | "https" => Some(Protocol::Http),
        _ => None,
    }
}

/// The read share of a workload, in percent; the rest are updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Mix {
    pub name: &'static str,
    pub read_pct: u8,
}

impl Mix {
    /// `a` (50/50), `b` (95/5), `c` (reads only), `write` (updates only) or
    /// `mixed:R/W` with R + W = 100.
    pub fn parse(s: &str) -> Result<Mix, SpecError> {
        let named = |name, read_pct| Ok(Mix { name, read_pct });
        match s.to_ascii_lowercase().as_str() {
            "a" => named("a", 50),
            "b" => named("b", 95),
            "c" => named("c", 100),
            "write" => named("write", 0),
            other => {
                let ratio = other
                    .strip_prefix("mixed:")
                    .ok_or_else(|| bad("workload", s, "expected a, b, c, write or mixed:R/W"))?;
                let (r, w) = ratio.split_once('/').ok_or_else(|| bad("workload", s, "expected mixed:R/W"))?;
                let (r, w) = match (r.parse::<u8>(), w.parse::<u8>()) {
                    (Ok(r), Ok(w)) => (r, w),
                    _ => return Err(bad("workload", s, "R and W must be whole percentages")),
                };
                if u16::from(r) + u16::from(w) != 100 {
                    return Err(bad("workload", s, "R + W must be 100"));
                }
                named("mixed", r)
            }
        }
    }
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    /// Zipfian with exponent θ, scrambled so hot keys spread over the keyspace.
    Zipfian {
        theta: f64,
    },
}

impl Distribution {
    pub fn parse(s: &str) -> Result<Distribution, SpecError> {
        match s {
            "uniform" => Ok(Distribution::Uniform),
            "zipfian" => Ok(Distribution::Zipfian { theta: 0.99 }),
            _ => match s.strip_prefix("zipfian:").map(str::parse::<f64>) {
                Some(Ok(theta)) if theta > 0.0 && theta.is_finite() => Ok(Distribution::Zipfian { theta }),
                _ => Err(bad("distribution", s, "expected uniform, zipfian or zipfian:THETA (THETA > 0)")),
            },
        }
    }
}

/// The shape of a run, from load-testing runbooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// Steady load for the whole duration.
    Normal,
    /// Base clients, a sudden jump to the peak, then back to the base.
    Spike,
    /// Clients ramp step by step until errors or p99 exceed a limit.
    Stress,
    /// Steady load for a long time, reported in windows to show drift.
    Soak,
    /// Steady load, then (halfway) many new connections opened at once
    /// beside it: what a storm of connections (and their TLS handshakes)
    /// does to the clients already connected.
    Storm,
}

impl ScenarioKind {
    pub fn parse(s: &str) -> Result<ScenarioKind, SpecError> {
        match s {
            "normal" => Ok(ScenarioKind::Normal),
            "spike" => Ok(ScenarioKind::Spike),
            "stress" => Ok(ScenarioKind::Stress),
            "soak" => Ok(ScenarioKind::Soak),
            "storm" => Ok(ScenarioKind::Storm),
            _ => Err(bad("scenario", s, "expected normal, spike, stress, soak or storm")),
        }
    }
}

/// A seed from the operating system, for runs that do not fix one.
pub fn fresh_seed() -> u64 {
    use rand::{Rng, SeedableRng};
    rand::rngs::SmallRng::from_os_rng().random()
}

/// Parses a duration such as `30s`, `500ms` or `2m`.
pub fn parse_duration(flag: &'static str, s: &str) -> Result<Duration, SpecError> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(bad(flag, s, "must be greater than zero")),
        Err(e) => Err(bad(flag, s, e.to_string())),
    }
}

/// The flags of `tidal bench` as the command line gives them.
#[derive(Debug, Clone, clap::Args)]
pub struct RawSpec {
    /// Where to send load: resp:// (rediss:// with TLS), etcd:// or http://
    /// (https://) and one or more host:port, comma-separated. Clients spread over the endpoints and move
    /// to the next one when theirs fails.
    #[arg(long, default_value = "resp://127.0.0.1:6380")]
    pub target: String,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Length of the run (for stress: of each step), e.g. 30s, 2m.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// a (50% reads), b (95%), c (100%), write (0%), or mixed:R/W.
    #[arg(long, default_value = "a")]
    pub workload: String,
    /// uniform, zipfian (θ 0.99) or zipfian:THETA.
    #[arg(long, default_value = "uniform")]
    pub distribution: String,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Size of the keyspace.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Requests each client sends before waiting for replies.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Each update is a MULTI/EXEC transaction of this many SETs to keys of
    /// one slot (resp:// targets; not with --verify). 0: plain SETs.
    #[arg(long, default_value_t = 0)]
    pub tx: usize,
    /// Open loop: total requests per second, with latency measured from each
    /// request's intended send time. Without it, clients go as fast as they can.
    #[arg(long)]
    pub rate: Option<u64>,
    /// normal, spike, stress, soak or storm.
    #[arg(long, default_value = "normal")]
    pub scenario: String,
    /// Connections a storm opens at once, halfway through the run.
    #[arg(long, default_value_t = 1000)]
    pub storm_connections: usize,
    /// The CA certificate a rediss:// or https:// target's certificate must chain to.
    #[arg(long)]
    pub cacert: Option<std::path::PathBuf>,
    /// Password sent with AUTH on every new connection (resp:// targets),
    /// or as a bearer token with every request (http:// targets).
    #[arg(long, env = "TIDAL_BENCH_PASSWORD")]
    pub password: Option<String>,
    /// Send READONLY on every new connection (resp:// targets): tidal then
    /// serves each read from the connected node's replica of the key's
    /// PRG, still linearizable.
    #[arg(long)]
    pub readonly: bool,
    /// Clients during a spike's peak (default: 10 × --clients).
    #[arg(long)]
    pub spike_clients: Option<usize>,
    /// Clients added per stress step (default: --clients).
    #[arg(long)]
    pub stress_step: Option<usize>,
    /// Most clients a stress run ramps to.
    #[arg(long, default_value_t = 1024)]
    pub stress_max_clients: usize,
    /// A stress step breaks when its p99 exceeds this.
    #[arg(long, default_value = "100ms")]
    pub stress_p99: String,
    /// A stress step breaks when more than this percentage of requests fail.
    #[arg(long, default_value_t = 1.0)]
    pub stress_error_pct: f64,
    /// Stamp every write, check reads, and read every written key back at the
    /// end; any lost or stale write exits with status 1.
    #[arg(long)]
    pub verify: bool,
    /// With --verify, also read every written key back this often during the run.
    #[arg(long)]
    pub verify_every: Option<String>,
    /// Limit for one request (or pipelined batch), connecting included.
    #[arg(long, default_value = "2s")]
    pub timeout: String,
    /// Write every key once before the measured phases.
    #[arg(long)]
    pub load: bool,
    /// Prefix of every key the run touches.
    #[arg(long, default_value = "bench:")]
    pub key_prefix: String,
    /// Tenant for http:// targets.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// RNG seed, for a repeatable key sequence.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub target: Target,
    pub clients: usize,
    pub duration: Duration,
    pub mix: Mix,
    pub distribution: Distribution,
    pub value_size: usize,
    pub keys: u64,
    pub pipeline: usize,
    /// SETs per transaction; 0: updates are plain SETs.
    pub tx: usize,
    /// Total intended operations per second (open loop); `None` is closed loop.
    pub rate: Option<u64>,
    pub scenario: ScenarioKind,
    pub storm_connections: usize,
    pub cacert: Option<std::path::PathBuf>,
    pub password: Option<String>,
    pub readonly: bool,
    pub spike_clients: usize,
    pub stress_step: usize,
    pub stress_max_clients: usize,
    pub stress_p99: Duration,
    pub stress_error_pct: f64,
    pub verify: bool,
    pub verify_every: Option<Duration>,
    /// Limit for one request (or one pipelined batch) including connecting.
    pub timeout: Duration,
    /// Write every key once before the measured phases.
    pub load: bool,
    pub key_prefix: String,
    pub tenant: String,
    pub seed: u64,
}

/// Upper bound on concurrent clients, so a typo cannot open a million sockets.
pub const MAX_CLIENTS: usize = 10_000;
/// Upper bound on a value, matching tidal's default `max-value-bytes`.
pub const MAX_VALUE_SIZE: usize = 16 << 20;
/// Smallest value that can carry a verifier stamp.
pub const MIN_VERIFY_VALUE_SIZE: usize = 40;

impl Spec {
    pub fn parse(raw: &RawSpec) -> Result<Spec, SpecError> {
        let target = Target::parse(&raw.target)?;
        let clients_ok = |flag, n: usize| match n {
            1..=MAX_CLIENTS => Ok(n),
            _ => Err(bad(flag, &n.to_string(), format!("must be between 1 and {MAX_CLIENTS}"))),
        };
        let clients = clients_ok("clients", raw.clients)?;
        if raw.value_size == 0 || raw.value_size > MAX_VALUE_SIZE {
            return Err(bad("value-size", &raw.value_size.to_string(), format!("must be 1..={MAX_VALUE_SIZE}")));
        }
        if raw.verify && raw.value_size < MIN_VERIFY_VALUE_SIZE {
            return Err(bad(
                "value-size",
                &raw.value_size.to_string(),
                format!("--verify needs at least {MIN_VERIFY_VALUE_SIZE} bytes to stamp each value"),
            ));
        }
        if raw.tx > 64 {
            return Err(bad("tx", &raw.tx.to_string(), "must be between 0 and 64"));
        }
        if raw.tx > 0 && (raw.verify || target.protocol != Protocol::Resp) {
            return Err(bad("tx", &raw.tx.to_string(), "needs a resp:// or rediss:// target and no --verify"));
        }
        if raw.keys == 0 || raw.keys > 1 << 40 {
            return Err(bad("keys", &raw.keys.to_string(), "must be between 1 and 2^40"));
        }
        if raw.verify && raw.keys > crate::verify::MAX_VERIFY_KEYS {
            let most = crate::verify::MAX_VERIFY_KEYS;
            return Err(bad("keys", &raw.keys.to_string(), format!("--verify tracks at most {most} keys")));
        }
        if raw.pipeline == 0 || raw.pipeline > 4096 {
            return Err(bad("pipeline", &raw.pipeline.to_string(), "must be between 1 and 4096"));
        }
        if raw.rate == Some(0) {
            return Err(bad("rate", "0", "must be at least 1 operation per second"));
        }
        if !(0.0..=100.0).contains(&raw.stress_error_pct) {
            return Err(bad("stress-error-pct", &raw.stress_error_pct.to_string(), "must be 0..=100"));
        }
        if let (Some(every), false) = (&raw.verify_every, raw.verify) {
            return Err(bad("verify-every", every, "needs --verify"));
        }
        if raw.key_prefix.is_empty() {
            return Err(bad("key-prefix", "", "must not be empty"));
        }
        let scenario = ScenarioKind::parse(&raw.scenario)?;
        match (&raw.cacert, target.tls) {
            (None, true) => return Err(bad("cacert", "", "a rediss:// or https:// target needs the CA's certificate")),
            (Some(c), false) => {
                return Err(bad("cacert", &c.display().to_string(), "only for rediss:// and https:// targets"))
            }
            _ => {}
        }
        if raw.password.is_some() && target.protocol == Protocol::Etcd {
            return Err(bad("password", "...", "not for etcd:// targets"));
        }
        if raw.readonly && target.protocol != Protocol::Resp {
            return Err(bad("readonly", "true", "only for resp:// and rediss:// targets"));
        }
        let spike_clients = clients_ok("spike-clients", raw.spike_clients.unwrap_or(clients.saturating_mul(10)))?;
        Ok(Spec {
            target,
            clients,
            duration: parse_duration("duration", &raw.duration)?,
            mix: Mix::parse(&raw.workload)?,
            distribution: Distribution::parse(&raw.distribution)?,
            value_size: raw.value_size,
            keys: raw.keys,
            pipeline: raw.pipeline,
            tx: raw.tx,
            rate: raw.rate,
            scenario,
            storm_connections: clients_ok("storm-connections", raw.storm_connections)?,
            cacert: raw.cacert.clone(),
            password: raw.password.clone(),
            readonly: raw.readonly,
            spike_clients,
            stress_step: clients_ok("stress-step", raw.stress_step.unwrap_or(clients))?,
            stress_max_clients: clients_ok("stress-max-clients", raw.stress_max_clients)?,
            stress_p99: parse_duration("stress-p99", &raw.stress_p99)?,
            stress_error_pct: raw.stress_error_pct,
            verify: raw.verify,
            verify_every: raw.verify_every.as_deref().map(|s| parse_duration("verify-every", s)).transpose()?,
            timeout: parse_duration("timeout", &raw.timeout)?,
            load: raw.load,
            key_prefix: raw.key_prefix.clone(),
            tenant: raw.tenant.clone(),
            seed: raw.seed.unwrap_or_else(fresh_seed),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid spec's flags, for tests to vary.
    pub(crate) fn raw() -> RawSpec {
        RawSpec {
            target: "resp://127.0.0.1:6380".into(),
            clients: 8,
            duration: "2s".into(),
            workload: "a".into(),
            distribution: "uniform".into(),
            value_size: 100,
            keys: 1000,
            pipeline: 1,
            tx: 0,
            rate: None,
            scenario: "normal".into(),
            storm_connections: 1000,
            cacert: None,
            password: None,
            readonly: false,
            spike_clients: None,
            stress_step: Some(8),
            stress_max_clients: 512,
            stress_p99: "100ms".into(),
            stress_error_pct: 1.0,
            verify: false,
            verify_every: None,
            timeout: "2s".into(),
            load: false,
            key_prefix: "bench:".into(),
            tenant: "default".into(),
            seed: Some(1),
        }
    }

    #[test]
    fn targets() {
        let t = Target::parse("resp://127.0.0.1:6380,127.0.0.1:6381").unwrap();
        assert_eq!(t.protocol, Protocol::Resp);
        assert_eq!(t.endpoints, vec!["127.0.0.1:6380", "127.0.0.1:6381"]);
        match Target::parse("etcd://a:2379,etcd://b:2379") {
            Ok(t) => assert_eq!((t.protocol, t.endpoints.len()), (Protocol::Etcd, 2)),
            Err(e) => assert!(!cfg!(feature = "etcd") && e == SpecError::NoEtcd("etcd://a:2379,etcd://b:2379".into())),
        }
        assert_eq!(Target::parse("http://localhost:6480/").unwrap().endpoints, vec!["localhost:6480"]);
        assert!(matches!(Target::parse("mongo://x:1"), Err(SpecError::UnknownScheme(_))));
        assert!(matches!(Target::parse("127.0.0.1:6380"), Err(SpecError::UnknownScheme(_))));
        assert!(matches!(Target::parse("resp://a:1,etcd://b:2"), Err(SpecError::UnknownScheme(_))));
        for bad in ["resp://", "resp://host", "resp://:1", "resp://h:0", "resp://h:99999", "resp://a:1,"] {
            assert!(matches!(Target::parse(bad), Err(SpecError::BadEndpoint(_))), "{bad}");
        }
        let t = Target::parse("rediss://a:1,rediss://b:2").unwrap();
        assert_eq!((t.protocol, t.tls, t.endpoints.len()), (Protocol::Resp, true, 2));
        assert!(!Target::parse("resp://a:1").unwrap().tls);
        assert!(matches!(Target::parse("rediss://a:1,resp://b:2"), Err(SpecError::UnknownScheme(_))));
    }

    #[test]
    fn tls_needs_its_ca_and_a_password_a_resp_target() {
        let mut r = raw();
        r.target = "rediss://127.0.0.1:6380".into();
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "cacert", .. })));
        r.cacert = Some("ca.crt".into());
        assert!(Spec::parse(&r).is_ok());
        r.target = "resp://127.0.0.1:6380".into();
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "cacert", .. })));
        r.cacert = None;
        r.password = Some("pw".into());
        assert!(Spec::parse(&r).is_ok());
        r.target = "http://127.0.0.1:6480".into();
        assert!(Spec::parse(&r).is_ok(), "a bearer password");
        let t = Target::parse("https://a:1").unwrap();
        assert_eq!((t.protocol, t.tls), (Protocol::Http, true));
        let mut r = raw();
        r.scenario = "storm".into();
        r.storm_connections = 0;
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "storm-connections", .. })));
    }

    #[test]
    fn transactions_need_a_resp_target_and_no_verify() {
        let mut r = raw();
        r.tx = 10;
        assert_eq!(Spec::parse(&r).unwrap().tx, 10);
        r.tx = 65;
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "tx", .. })));
        r.tx = 10;
        r.verify = true;
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "tx", .. })));
        r.verify = false;
        r.target = "http://127.0.0.1:6480".into();
        assert!(matches!(Spec::parse(&r), Err(SpecError::BadValue { flag: "tx", .. })));
    }

    #[test]
    fn mixes() {
        assert_eq!(Mix::parse("a").unwrap().read_pct, 50);
        assert_eq!(Mix::parse("B").unwrap().read_pct, 95);
        assert_eq!(Mix::parse("c").unwrap().read_pct, 100);
        assert_eq!(Mix::parse("write").unwrap().read_pct, 0);
        assert_eq!(Mix::parse("mixed:70/30").unwrap(), Mix { name: "mixed", read_pct: 70 });
        for bad in ["d", "mixed:70/20", "mixed:70", "mixed:x/y", "mixed:200/-100", ""] {
            assert!(Mix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_distributions() {
        assert_eq!(parse_duration("duration", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("duration", "250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("duration", "0s").is_err());
        assert!(parse_duration("duration", "soon").is_err());
        assert_eq!(Distribution::parse("zipfian").unwrap(), Distribution::Zipfian { theta: 0.99 });
        assert!(Distribution::parse("zipfian:-1").is_err());
        assert!(Distribution::parse("normal").is_err());
    }

    #[test]
    fn whole_spec() {
        let spec = Spec::parse(&raw()).unwrap();
        assert_eq!(spec.spike_clients, 80);
        let mut r = raw();
        r.duration = "x".into();
        let err = Spec::parse(&r).unwrap_err().to_string();
        assert!(err.starts_with("--duration 'x'"), "{err}");
        let mut r = raw();
        r.verify = true;
        r.value_size = 8;
        assert!(Spec::parse(&r).unwrap_err().to_string().contains("--value-size"));
        let mut r = raw();
        r.clients = 0;
        assert!(Spec::parse(&r).is_err());
        let mut r = raw();
        r.rate = Some(0);
        assert!(Spec::parse(&r).is_err());
    }
}

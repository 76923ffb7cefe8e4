//! `tidal node`: run one node until a signal. SIGINT stops it (handing
//! off its leaderships and closing client connections between requests);
//! SIGTERM drains it first, moving its replicas to other nodes (see
//! `Node::drain_and_stop`). A node also stops once a drain it saw begin
//! through the admin API is over, or once it is removed from the cluster.

use std::path::PathBuf;
use std::sync::Arc;

use tidal_node::load::ProcUsage;
use tidal_node::{DataDir, Network, Node, RawConfig, SystemClock};

#[derive(clap::Args)]
pub struct NodeArgs {
    /// Optional TOML file with the same settings (kebab-case keys); flags and
    /// TIDAL_* variables override it.
    #[arg(long, env = "TIDAL_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    raw: RawConfig,
}

pub fn run(args: NodeArgs) -> i32 {
    let file = match &args.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match RawConfig::from_toml(&text) {
                Ok(r) => r,
                Err(e) => {
                    eprint!("{e}");
                    return crate::EXIT_USAGE;
                }
            },
            Err(e) => {
                eprintln!("error: cannot read config file {}: {e}", path.display());
                return crate::EXIT_USAGE;
            }
        },
        None => RawConfig::default(),
    };
    let config = match args.raw.or(file).resolve() {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return crate::EXIT_USAGE;
        }
    };
    // No LIFO slot: a task woken is run after those woken before it, so
    // commands that arrive on two connections in one poll of the sockets
    // are taken in the order they arrived (with the slot, the later one
    // ran first).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .disable_lifo_slot()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let net = match Network::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot bind the node's addresses: {e}");
                return 1;
            }
        };
        let node =
            match Node::start(config, net, Arc::new(DataDir(data_dir)), Arc::new(SystemClock), Arc::new(ProcUsage))
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            };
        let (code, drain) = tokio::select! {
            sig = wait_for_signal() => (0, sig == Signal::Term),
            _ = node.drained() => {
                tracing::info!("drained or removed: every replica is on another node; stopping");
                (0, false)
            }
            why = node.failed() => {
                eprintln!("error: {why}");
                (1, false)
            }
        };
        if drain {
            node.drain_and_stop().await;
        } else {
            node.stop().await;
        }
        code
    })
}

#[derive(PartialEq, Eq)]
enum Signal {
    Int,
    Term,
}

async fn wait_for_signal() -> Signal {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot install SIGTERM handler");
    let sig = tokio::select! {
        _ = tokio::signal::ctrl_c() => Signal::Int,
        _ = term.recv() => Signal::Term,
    };
    match sig {
        Signal::Int => tracing::info!("SIGINT: shutting down"),
        Signal::Term => tracing::info!("SIGTERM: draining, then shutting down"),
    }
    sig
}

//! `tidal node`: run one node until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
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
        let node = match Node::start(config, net, Arc::new(DataDir(data_dir)), Arc::new(SystemClock)).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let code = tokio::select! {
            _ = wait_for_signal() => 0,
            why = node.failed() => {
                eprintln!("error: {why}");
                1
            }
        };
        node.stop().await;
        code
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

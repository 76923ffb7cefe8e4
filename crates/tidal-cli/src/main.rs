//! `tidal`: one binary for running and operating a tidal cluster. This file
//! only parses the command line and hands off to one module per command.
#![forbid(unsafe_code)]

mod autoscale;
mod bench;
mod capacity;
mod certs;
mod drain;
mod http_client;
mod import;
mod moves;
mod node_cmd;
mod operations;
mod scale;
mod shrink_plan;
mod simulate;
mod status;
mod trace;
mod up;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a node allocates and frees a
/// buffer per page written, per frame and per entry, from several threads,
/// where glibc's malloc spent a quarter of the log writer's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad usage or configuration (BSD `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

#[derive(Parser)]
#[command(name = "tidal", version, about = "An elastic, Raft-replicated key-value service that speaks Redis")]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, global = true, env = "TIDAL_LOG", default_value = "info,openraft=warn")]
    log: String,
    #[command(flatten)]
    client: http_client::ClientOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local cluster of `tidal node` processes and wait for Ctrl-C.
    Up(up::UpArgs),
    /// Run one node.
    Node(Box<node_cmd::NodeArgs>),
    /// Show nodes, PRGs, routing epoch and cache states.
    Status(status::StatusArgs),
    /// Put a YCSB-style load on tidal, Redis or etcd, and optionally verify it.
    Bench(Box<bench::BenchArgs>),
    /// Move data online: `tidal move slots --slots 0-63 --to default:2`,
    /// `tidal move replica --prg default:1 --from 3 --to 4`.
    Move(moves::MoveArgs),
    /// List moves, show one (`tidal moves ID`), or cancel one (`tidal moves cancel ID`).
    Moves(moves::MovesArgs),
    /// Add PRGs to a tenant: `tidal prgs add --tenant default --count 4`.
    Prgs(moves::PrgsArgs),
    /// Hand a PRG's leadership to another member: `tidal leader transfer --prg default:1 --to 2`.
    Leader(moves::LeaderArgs),
    /// Scale up: `tidal scale --nodes 5 --prgs default=8 [--dry-run | --wait]`.
    Scale(scale::ScaleArgs),
    /// List scaling operations, show one (`tidal operations ID`), or cancel
    /// one (`tidal operations cancel ID`).
    Operations(operations::OperationsArgs),
    /// Shrink only on purpose: `tidal shrink-plan create --nodes 3 --prgs
    /// default=4` drafts a plan with its exact moves; `show`, `list`,
    /// `arm` and `cancel` follow.
    ShrinkPlan(shrink_plan::ShrinkPlanArgs),
    /// Drain a node before it stops: `tidal drain 4 [--wait]` moves its
    /// leaderships and replicas elsewhere, then it exits; `--cancel` undoes.
    Drain(drain::DrainArgs),
    /// Take a drained node out of the cluster for good: `tidal remove-node 4`.
    RemoveNode(drain::RemoveNodeArgs),
    /// Scale from load: `tidal autoscale apply -f policy.yaml` puts an
    /// HPA-style policy in force; `show`, `history` and `off` follow.
    Autoscale(autoscale::AutoscaleArgs),
    /// Certificates: `tidal certs init --dir DIR` makes a cluster CA;
    /// `node --id N` and `client --name NAME` issue from it.
    Certs(certs::CertsArgs),
    /// Copy a Redis server's keys into tidal, values and TTLs:
    /// `tidal import --from redis://HOST:PORT [--to HOST:PORT]`.
    Import(import::ImportArgs),
    /// Plan capacity: `tidal capacity --growth 15%/mo --months 12` prints
    /// load, nodes, PRGs and memory per node month by month.
    Capacity(capacity::CapacityArgs),
}

/// `tidal status | head` closes the pipe before everything is printed, and
/// printing then panics. Exit as a command stopped by SIGPIPE does
/// (128 + 13), quietly, instead of reporting a panic.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        report(info)
    }));
}

fn main() {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|e| {
        eprintln!("error: --log '{}': {e}", cli.log);
        std::process::exit(EXIT_USAGE);
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // `tidal up` reaches its nodes with the certificates it makes itself.
    if !matches!(cli.cmd, Cmd::Up(_) | Cmd::Node(_) | Cmd::Certs(_) | Cmd::Import(_)) {
        if let Err(e) = http_client::configure(&cli.client) {
            eprintln!("error: {e}");
            std::process::exit(EXIT_USAGE);
        }
    }
    let code = match cli.cmd {
        Cmd::Up(a) => up::run(a),
        Cmd::Autoscale(a) => autoscale::run(a),
        Cmd::Capacity(a) => capacity::run(a),
        Cmd::Import(a) => import::run(a),
        Cmd::Certs(a) => certs::run(a),
        Cmd::Node(a) => node_cmd::run(*a),
        Cmd::Status(a) => status::run(a),
        Cmd::Bench(a) => bench::run(*a),
        Cmd::Move(a) => moves::run_move(a),
        Cmd::Moves(a) => moves::run_moves(a),
        Cmd::Prgs(a) => moves::run_prgs(a),
        Cmd::Leader(a) => moves::run_leader(a),
        Cmd::Scale(a) => scale::run(a),
        Cmd::Operations(a) => operations::run(a),
        Cmd::ShrinkPlan(a) => shrink_plan::run(a),
        Cmd::Drain(a) => drain::run(a),
        Cmd::RemoveNode(a) => drain::run_remove(a),
    };
    std::process::exit(code);
}

/// A multi-threaded runtime for the commands that need one.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("cannot start the tokio runtime")
}

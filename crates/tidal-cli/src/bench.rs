//! `tidal bench`: flags in, [`tidal_bench`] runs, summary out.

use std::io::Write;

use clap::Args;
use tidal_bench::{RawSpec, Spec};

use crate::EXIT_USAGE;

/// Exit code when verification found lost, stale or unreadable writes.
const EXIT_VERIFY_FAILED: i32 = 1;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    spec: RawSpec,
    /// Write the summary as JSON to this file ("-" for stdout; the human
    /// summary then goes to stderr).
    #[arg(long)]
    json: Option<String>,
}

pub fn run(a: BenchArgs) -> i32 {
    let spec = match Spec::parse(&a.spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let progress: tidal_bench::Progress = std::sync::Arc::new(|line: &str| eprintln!("{line}"));
    let summary = match crate::runtime().block_on(tidal_bench::run(spec, progress)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let human = tidal_bench::render(&summary);
    match a.json.as_deref() {
        Some("-") => {
            eprint!("{human}");
            println!("{}", serde_json::to_string_pretty(&summary).expect("summary serializes"));
        }
        Some(path) => {
            print!("{human}");
            let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
            if let Err(e) = std::fs::write(path, json + "\n") {
                eprintln!("error: --json {path}: {e}");
                return EXIT_USAGE;
            }
        }
        None => print!("{human}"),
    }
    let _ = std::io::stdout().flush();
    match &summary.verify {
        Some(v) if !v.passed() => EXIT_VERIFY_FAILED,
        _ => 0,
    }
}

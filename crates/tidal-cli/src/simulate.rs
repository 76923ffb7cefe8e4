//! `tidal autoscale simulate`: replay a load trace against a policy on the
//! recommender the control plane runs (`tidal_core::autoscale::simulate`),
//! without a cluster. It prints the decisions, the nodes and PRGs over
//! time, the minutes spent past the warning and critical levels, and the
//! node-hours; `--plot` draws load, capacity and nodes as an SVG.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use plotters::prelude::*;
use serde_json::json;
use tidal_core::autoscale::simulate::{simulate, Model, SimReport, Step};

use crate::autoscale::read_policy;
use crate::trace::read_trace;
use crate::EXIT_USAGE;

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The policy (YAML or JSON).
    #[arg(long)]
    policy: PathBuf,
    /// The load trace (CSV: `time` and figure columns).
    #[arg(long)]
    trace: PathBuf,
    /// Nodes at the start (default: the policy's minimum).
    #[arg(long)]
    nodes: Option<u32>,
    /// PRGs of the tenant at the start.
    #[arg(long, default_value_t = 4)]
    prgs: u32,
    /// Cores of each node (what `cpu` is a utilization of).
    #[arg(long, default_value_t = 2)]
    cores: u32,
    /// Memory of each node, GiB.
    #[arg(long, default_value_t = 8)]
    memory_gib: u64,
    /// How long a scale-up takes before its nodes serve.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    scale_up_time: Duration,
    /// How long an armed shrink takes.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    scale_down_time: Duration,
    /// How long a drafted shrink plan waits for an operator to arm it
    /// (a policy with autoArm arms it at once).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    arm_after: Duration,
    /// Draw load, capacity and node count over time into this SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn stamp(at_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(at_ms)).to_string()
}

pub fn run(a: SimulateArgs, json_out: bool) -> i32 {
    let policy = match read_policy(&a.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let trace = match read_trace(&a.trace) {
        Ok(t) => t,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return EXIT_USAGE;
        }
    };
    let model = Model {
        nodes: a.nodes.unwrap_or(policy.min_nodes),
        prgs: a.prgs.max(1),
        cores: a.cores.max(1),
        memory: a.memory_gib.max(1) << 30,
        scale_up_ms: ms(a.scale_up_time),
        scale_down_ms: ms(a.scale_down_time),
        arm_after_ms: ms(a.arm_after),
    };
    let started = Instant::now();
    let report = simulate(&policy, &trace, &model);
    let took = started.elapsed();
    if let Some(path) = &a.plot {
        if let Err(e) = plot(path, &report) {
            eprintln!("error: cannot draw {}: {e}", path.display());
            return 1;
        }
    }
    if json_out {
        let v = json!({
            "model": model,
            "rows": trace.len(),
            "replayMs": took.as_secs_f64() * 1000.0,
            "report": report,
        });
        println!("{v}");
        return 0;
    }
    print_report(&report, trace.len(), took);
    if let Some(p) = &a.plot {
        println!("plot: {}", p.display());
    }
    0
}

fn print_report(r: &SimReport, rows: usize, took: Duration) {
    let (first, last) = (r.steps.first().map_or(0, |s| s.at_ms), r.steps.last().map_or(0, |s| s.at_ms));
    println!("replayed {rows} rows ({} – {}) in {:.1} ms", stamp(first), stamp(last), took.as_secs_f64() * 1000.0);
    println!("\ndecisions:");
    if r.decisions.is_empty() {
        println!("  none: the policy keeps the starting count throughout");
    }
    for d in &r.decisions {
        println!("  {}  {:<16} {} → {} nodes, {} PRGs", stamp(d.at_ms), d.action, d.current, d.nodes, d.prgs);
        if d.action != "done" {
            println!("      {}", d.why);
        }
    }
    println!("\nnodes and PRGs over time:");
    for (from, to, s) in spans(&r.steps) {
        println!(
            "  {} – {}  {:>3} nodes serving ({} paid for), {} PRGs",
            stamp(from),
            stamp(to),
            s.nodes,
            s.billed,
            s.prgs
        );
    }
    let metric = r.shown_metric.as_deref().unwrap_or("-");
    println!("\nminutes past the target (warning): {:.0}", r.warning_minutes);
    println!("minutes 50 % past it (critical):    {:.0}", r.critical_minutes);
    for (name, (warning, critical)) in &r.indicator_minutes {
        println!("indicator {name}: {warning:.0} minutes at warning or worse, {critical:.0} at critical");
    }
    println!("node-hours: {:.1} (peak {} nodes); load and capacity shown for {metric}", r.node_hours, r.peak_nodes);
}

/// Runs of steps with the same nodes, paid nodes and PRGs.
fn spans(steps: &[Step]) -> Vec<(u64, u64, &Step)> {
    let mut out: Vec<(u64, u64, &Step)> = Vec::new();
    for s in steps {
        match out.last_mut() {
            Some((_, to, last)) if (last.nodes, last.billed, last.prgs) == (s.nodes, s.billed, s.prgs) => *to = s.at_ms,
            _ => out.push((s.at_ms, s.at_ms, s)),
        }
    }
    out
}

/// Points drawn per series at most: longer traces keep each bucket's peak.
const MAX_POINTS: usize = 2000;

fn series(steps: &[Step], t0: u64, pick: impl Fn(&Step) -> Option<f64>) -> Vec<(f64, f64)> {
    let per = steps.len().div_ceil(MAX_POINTS).max(1);
    steps
        .chunks(per)
        .filter_map(|c| {
            let peak = c.iter().filter_map(&pick).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))?;
            Some(((c[0].at_ms - t0) as f64 / 3_600_000.0, peak))
        })
        .collect()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A line of a chart: its points, colour, width and label.
type Line<'a> = (Vec<(f64, f64)>, RGBColor, u32, &'a str);

/// One chart of `area`: hours across, `lines` up to `top`, with a legend.
fn panel(
    area: &Area<'_>,
    caption: &str,
    hours: f64,
    top: f64,
    lines: [Line<'_>; 2],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..hours, 0f64..top)?;
    chart.configure_mesh().x_desc("hours").draw()?;
    for (points, colour, width, label) in lines {
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(width)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    Ok(())
}

fn plot(path: &Path, r: &SimReport) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = r.steps.first().map_or(0, |s| s.at_ms);
    let hours = r.steps.last().map_or(1.0, |s| ((s.at_ms - t0) as f64 / 3_600_000.0).max(1.0 / 60.0));
    let load = series(&r.steps, t0, |s| s.load);
    let capacity = series(&r.steps, t0, |s| s.capacity);
    let serving = series(&r.steps, t0, |s| Some(f64::from(s.nodes)));
    let billed = series(&r.steps, t0, |s| Some(f64::from(s.billed)));
    let top = load.iter().chain(&capacity).map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
    let metric = r.shown_metric.clone().unwrap_or_else(|| "load".into());

    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(400);
    let caption = format!("{metric}: load and capacity at the target");
    let load_lines = [(load, BLUE, 1, "load"), (capacity, RED, 2, "capacity (serving nodes × target)")];
    panel(&upper, &caption, hours, top, load_lines)?;
    let most = f64::from(r.peak_nodes.max(1)) + 1.0;
    panel(&lower, "nodes", hours, most, [(billed, BLACK, 1, "paid for"), (serving, GREEN, 2, "serving")])?;
    root.present()?;
    Ok(())
}

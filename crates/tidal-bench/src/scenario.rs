//! Scenarios as lists of phases, each with its own client count and length.
//!
//! Pure: the runner asks for the phase plan up front, and for stress runs
//! asks [`judge_step`] after each step whether the system broke.

use std::time::Duration;

use crate::spec::{ScenarioKind, Spec};

/// One phase of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub clients: usize,
    pub duration: Duration,
}

/// The phase of a storm run whose start opens the storm's connections.
pub const STORM_PHASE: &str = "storm";

/// Windows a soak run is reported in.
const SOAK_WINDOWS: u32 = 5;

/// The phases of a scenario. A stress plan lists every step up to the
/// client limit; the runner stops at the first one that breaks.
pub fn phases(spec: &Spec) -> Vec<Phase> {
    let phase = |name: &str, clients, duration| Phase { name: name.to_string(), clients, duration };
    match spec.scenario {
        ScenarioKind::Normal => vec![phase("steady", spec.clients, spec.duration)],
        ScenarioKind::Spike => {
            let third = spec.duration / 3;
            vec![
                phase("base", spec.clients, third),
                phase("spike", spec.spike_clients, third),
                phase("recover", spec.clients, third),
            ]
        }
        ScenarioKind::Stress => {
            let mut out = Vec::new();
            let mut clients = spec.clients;
            loop {
                out.push(phase(&format!("stress-{clients}"), clients, spec.duration));
                if clients >= spec.stress_max_clients {
                    break out;
                }
                clients = (clients + spec.stress_step).min(spec.stress_max_clients);
            }
        }
        ScenarioKind::Storm => {
            let half = spec.duration / 2;
            vec![phase("steady", spec.clients, half), phase(STORM_PHASE, spec.clients, half)]
        }
        ScenarioKind::Soak => (1..=SOAK_WINDOWS)
            .map(|i| phase(&format!("soak-{i}"), spec.clients, spec.duration / SOAK_WINDOWS))
            .collect(),
    }
}

/// The most clients a plan ever runs at once.
pub fn peak_clients(phases: &[Phase]) -> usize {
    phases.iter().map(|p| p.clients).max().unwrap_or(0)
}

/// Why a stress step counts as broken.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BreakingPoint {
    pub clients: usize,
    pub reason: String,
    /// The last step that held, if any.
    pub last_good_clients: Option<usize>,
    pub last_good_ops_per_sec: Option<f64>,
}

/// Judges a stress step from its error share and p99.
pub fn judge_step(spec: &Spec, ops: u64, errors: u64, p99: Duration) -> Option<String> {
    let total = ops + errors;
    if total == 0 {
        return Some("no operation completed".into());
    }
    let error_pct = errors as f64 * 100.0 / total as f64;
    if error_pct > spec.stress_error_pct {
        return Some(format!("errors {error_pct:.2}% > {}%", spec.stress_error_pct));
    }
    if p99 > spec.stress_p99 {
        return Some(format!("p99 {p99:?} > {:?}", spec.stress_p99));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{RawSpec, Spec};

    fn spec(scenario: &str) -> Spec {
        let raw = RawSpec {
            clients: 50,
            duration: "30s".into(),
            scenario: scenario.into(),
            spike_clients: Some(500),
            stress_step: Some(100),
            stress_max_clients: 260,
            stress_p99: "50ms".into(),
            ..crate::spec::tests::raw()
        };
        Spec::parse(&raw).unwrap()
    }

    #[test]
    fn plans() {
        assert_eq!(
            phases(&spec("normal")),
            vec![Phase { name: "steady".into(), clients: 50, duration: Duration::from_secs(30) }]
        );
        let spike = phases(&spec("spike"));
        assert_eq!(spike.iter().map(|p| p.clients).collect::<Vec<_>>(), vec![50, 500, 50]);
        assert_eq!(peak_clients(&spike), 500);
        let stress = phases(&spec("stress"));
        assert_eq!(stress.iter().map(|p| p.clients).collect::<Vec<_>>(), vec![50, 150, 250, 260]);
        let storm = phases(&spec("storm"));
        assert_eq!(
            storm.iter().map(|p| (p.name.as_str(), p.clients)).collect::<Vec<_>>(),
            [("steady", 50), ("storm", 50)]
        );
        let soak = phases(&spec("soak"));
        assert_eq!(soak.len(), 5);
        assert_eq!(soak.iter().map(|p| p.duration).sum::<Duration>(), Duration::from_secs(30));
    }

    #[test]
    fn stress_limits() {
        let s = spec("stress");
        assert_eq!(judge_step(&s, 1000, 5, Duration::from_millis(10)), None);
        assert!(judge_step(&s, 1000, 50, Duration::from_millis(10)).unwrap().starts_with("errors"));
        assert!(judge_step(&s, 1000, 0, Duration::from_millis(80)).unwrap().starts_with("p99"));
        assert!(judge_step(&s, 0, 0, Duration::ZERO).is_some());
    }
}

//! Minimums in time: events (a launch, a sale) that raise the minimum
//! ahead of their start and may freeze scale-down while they last, and
//! cron schedules that raise it for a while at each firing, as KEDA's
//! cron scaler does (`0 8 * * 1-5`: weekdays from 08:00 UTC).
//!
//! ```yaml
//! events:
//!   - { name: launch, start: "2027-01-10T09:00:00Z", end: "2027-01-10T18:00:00Z",
//!       minNodes: 5, prescaleSeconds: 86400, freezeScaleDown: true }
//! schedules:
//!   - { name: office-hours, cron: "0 8 * * 1-5", durationSeconds: 36000, minNodes: 5 }
//! ```

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use serde::{Deserialize, Serialize};

use super::policy::PolicyError;

/// The longest an event may announce itself ahead (a week).
pub const MAX_PRESCALE_SECONDS: u64 = 7 * 86_400;
/// The longest a schedule's window may last (a week).
pub const MAX_DURATION_SECONDS: u64 = 7 * 86_400;

/// A window with its own minimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    pub name: String,
    /// RFC 3339.
    pub start: String,
    pub end: String,
    pub min_nodes: u32,
    /// Raise the minimum this long before the start.
    #[serde(default)]
    pub prescale_seconds: u64,
    /// No scale-down from the start to the end.
    #[serde(default)]
    pub freeze_scale_down: bool,
}

/// A minimum that holds for `duration_seconds` from each firing of `cron`
/// (UTC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    #[serde(default = "one_hour")]
    pub duration_seconds: u64,
    pub min_nodes: u32,
}

fn one_hour() -> u64 {
    3600
}

/// Unix ms of an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| format!("'{s}' is not an RFC 3339 time: {e}"))?;
    u64::try_from(t.timestamp_millis()).map_err(|_| format!("'{s}' is before 1970"))
}

fn utc(ms: u64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX)).single().unwrap_or_default()
}

impl Event {
    /// `(start − prescale, start, end)` in ms, when the times parse.
    fn times(&self) -> Option<(u64, u64, u64)> {
        let (start, end) = (parse_time(&self.start).ok()?, parse_time(&self.end).ok()?);
        Some((start.saturating_sub(self.prescale_seconds.saturating_mul(1000)), start, end))
    }
}

impl Schedule {
    /// When the window holding `now_ms` began, if one does.
    fn window_start(&self, now_ms: u64) -> Option<u64> {
        let cron = Cron::from_str(&self.cron).ok()?;
        let fired = cron.find_previous_occurrence(&utc(now_ms), true).ok()?;
        let fired = u64::try_from(fired.timestamp_millis()).ok()?;
        (now_ms < fired.saturating_add(self.duration_seconds.saturating_mul(1000))).then_some(fired)
    }
}

/// What the calendar says at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// The highest minimum in force, with the event or schedule that sets it.
    pub min: Option<(u32, String)>,
    /// An event freezing scale-down, and its end (ms).
    pub freeze: Option<(String, u64)>,
}

/// The minimums and freezes in force at `now_ms`.
pub fn calendar(events: &[Event], schedules: &[Schedule], now_ms: u64) -> Calendar {
    let mut out = Calendar::default();
    let mut raise = |n: u32, why: String| {
        if out.min.as_ref().is_none_or(|(m, _)| n > *m) {
            out.min = Some((n, why));
        }
    };
    for e in events {
        let Some((from, start, end)) = e.times() else { continue };
        if (from..end).contains(&now_ms) {
            let ahead = if now_ms < start { " (prescaled ahead of its start)" } else { "" };
            raise(e.min_nodes, format!("event {} until {}{ahead}", e.name, e.end));
        }
        if e.freeze_scale_down && (start..end).contains(&now_ms) {
            out.freeze = Some((e.name.clone(), end));
        }
    }
    for s in schedules {
        if let Some(fired) = s.window_start(now_ms) {
            let since = utc(fired).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            raise(s.min_nodes, format!("schedule {} ({}) since {since}", s.name, s.cron));
        }
    }
    out
}

/// Every fault of the events and schedules, against the policy's maximum.
pub fn validate(events: &[Event], schedules: &[Schedule], max_nodes: u32, out: &mut Vec<PolicyError>) {
    let mut wrong = |field: String, why: String| out.push(PolicyError { field, why });
    let mut windows: Vec<(u64, u64, &str)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let f = format!("events[{i}]");
        if e.name.trim().is_empty() {
            wrong(format!("{f}.name"), "must not be empty".into());
        }
        if events[..i].iter().any(|o| o.name == e.name) {
            wrong(format!("{f}.name"), format!("another event is named '{}'", e.name));
        }
        let (start, end) = (parse_time(&e.start), parse_time(&e.end));
        if let Err(why) = &start {
            wrong(format!("{f}.start"), why.clone());
        }
        if let Err(why) = &end {
            wrong(format!("{f}.end"), why.clone());
        }
        if let (Ok(s), Ok(t)) = (start, end) {
            if t <= s {
                wrong(format!("{f}.end"), format!("must be after the start ({})", e.start));
            } else if let Some((_, _, other)) = windows.iter().find(|(os, ot, _)| s < *ot && *os < t) {
                wrong(f.clone(), format!("overlaps event '{other}'"));
            } else {
                windows.push((s, t, &e.name));
            }
        }
        if e.min_nodes > max_nodes {
            wrong(format!("{f}.minNodes"), format!("must be at most maxNodes ({max_nodes}), got {}", e.min_nodes));
        }
        if e.prescale_seconds > MAX_PRESCALE_SECONDS {
            wrong(format!("{f}.prescaleSeconds"), format!("must be at most {MAX_PRESCALE_SECONDS} (a week)"));
        }
    }
    for (i, s) in schedules.iter().enumerate() {
        let f = format!("schedules[{i}]");
        if s.name.trim().is_empty() {
            wrong(format!("{f}.name"), "must not be empty".into());
        }
        if let Err(e) = Cron::from_str(&s.cron) {
            wrong(format!("{f}.cron"), format!("'{}' is not a cron string: {e}", s.cron));
        }
        if !(60..=MAX_DURATION_SECONDS).contains(&s.duration_seconds) {
            wrong(
                format!("{f}.durationSeconds"),
                format!("must be between 60 and {MAX_DURATION_SECONDS}, got {}", s.duration_seconds),
            );
        }
        if s.min_nodes > max_nodes {
            wrong(format!("{f}.minNodes"), format!("must be at most maxNodes ({max_nodes}), got {}", s.min_nodes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    fn launch(prescale_h: u64, freeze: bool) -> Event {
        Event {
            name: "launch".into(),
            start: "2027-01-10T09:00:00Z".into(),
            end: "2027-01-10T18:00:00Z".into(),
            min_nodes: 6,
            prescale_seconds: prescale_h * 3600,
            freeze_scale_down: freeze,
        }
    }

    #[test]
    fn an_event_raises_the_minimum_ahead_and_freezes_while_it_lasts() {
        let start = parse_time("2027-01-10T09:00:00Z").unwrap();
        let e = [launch(24, true)];
        assert_eq!(calendar(&e, &[], start - 25 * H), Calendar::default());
        let ahead = calendar(&e, &[], start - 23 * H);
        assert_eq!(ahead.min.as_ref().map(|m| m.0), Some(6));
        assert!(ahead.min.unwrap().1.contains("prescaled"));
        assert_eq!(ahead.freeze, None, "no freeze before the start");
        let during = calendar(&e, &[], start + H);
        assert_eq!(during.freeze, Some(("launch".to_string(), start + 9 * H)));
        assert_eq!(calendar(&e, &[], start + 9 * H), Calendar::default(), "over at its end");
    }

    #[test]
    fn a_schedule_holds_from_each_firing_for_its_duration() {
        let s =
            [Schedule { name: "office".into(), cron: "0 8 * * 1-5".into(), duration_seconds: 10 * 3600, min_nodes: 5 }];
        // 2027-01-11 is a Monday.
        let monday_8 = parse_time("2027-01-11T08:00:00Z").unwrap();
        assert_eq!(calendar(&[], &s, monday_8 - 1).min, None);
        assert_eq!(calendar(&[], &s, monday_8).min.map(|m| m.0), Some(5));
        assert_eq!(calendar(&[], &s, monday_8 + 9 * H).min.map(|m| m.0), Some(5));
        assert_eq!(calendar(&[], &s, monday_8 + 10 * H).min, None);
        // Saturday: no firing.
        assert_eq!(calendar(&[], &s, monday_8 + 5 * 24 * H + H).min, None);
    }

    #[test]
    fn bad_events_and_schedules_name_their_fields() {
        let mut late = launch(0, false);
        late.name = "later".into();
        late.start = "2027-01-10T17:00:00Z".into();
        late.end = "2027-01-10T20:00:00Z".into();
        let mut backwards = launch(0, false);
        backwards.name = "backwards".into();
        backwards.end = "2027-01-09T00:00:00Z".into();
        let mut bad = launch(24 * 8, false);
        bad.name = "bad".into();
        bad.start = "tomorrow".into();
        bad.min_nodes = 50;
        let schedules = [Schedule { name: "x".into(), cron: "61 * * * *".into(), duration_seconds: 10, min_nodes: 4 }];
        let mut out = Vec::new();
        validate(&[launch(0, false), late, backwards, bad], &schedules, 10, &mut out);
        let fields: Vec<&str> = out.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1]",
                "events[2].end",
                "events[3].start",
                "events[3].minNodes",
                "events[3].prescaleSeconds",
                "schedules[0].cron",
                "schedules[0].durationSeconds"
            ],
            "{out:?}"
        );
        assert!(out[0].why.contains("overlaps event 'launch'"), "{out:?}");
    }
}

//! Load traces for `tidal autoscale simulate`: CSV with a `time` column
//! (RFC 3339) and one column per figure (`ops`, `cpu`, `memory`, `bytes`,
//! `p99_ms`, `replication_lag`; see `tidal_core::autoscale::simulate`).
//! An empty cell means no figure at that row. Every bad row is reported
//! with its line number, and nothing is replayed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use tidal_core::autoscale::simulate::TraceRow;

/// The figure columns a trace may have.
pub const COLUMNS: [&str; 6] = ["ops", "cpu", "memory", "bytes", "p99_ms", "replication_lag"];

/// Bad rows reported before the rest are only counted.
const MAX_REPORTED: usize = 20;

pub fn read_trace(path: &Path) -> Result<Vec<TraceRow>, Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    parse(file).map_err(|errs| errs.into_iter().map(|e| format!("{}:{e}", path.display())).collect())
}

/// The rows of a trace, or each problem as `LINE: what`.
pub fn parse(input: impl std::io::Read) -> Result<Vec<TraceRow>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(input);
    let headers = reader.headers().map_err(|e| vec![format!("1: {e}")])?.clone();
    let mut errors = Vec::new();
    let time_col = headers.iter().position(|h| h == "time");
    if time_col.is_none() {
        errors.push("1: no `time` column".to_string());
    }
    for h in headers.iter().filter(|h| *h != "time" && !COLUMNS.contains(h)) {
        errors.push(format!("1: unknown column `{h}` (known: time, {})", COLUMNS.join(", ")));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let time_col = time_col.expect("checked");
    let mut rows: Vec<TraceRow> = Vec::new();
    let mut bad = 0usize;
    for record in reader.records() {
        let mut fail = |line: u64, why: String| {
            bad += 1;
            if bad <= MAX_REPORTED {
                errors.push(format!("{line}: {why}"));
            }
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                fail(line, e.to_string());
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let at_ms = match humantime::parse_rfc3339_weak(&record[time_col]) {
            Ok(t) => t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            Err(e) => {
                fail(line, format!("time `{}`: {e}", &record[time_col]));
                continue;
            }
        };
        if let Some(prev) = rows.last().filter(|p| p.at_ms >= at_ms) {
            fail(
                line,
                format!("time goes back or repeats ({} ms after the row before)", at_ms as i64 - prev.at_ms as i64),
            );
            continue;
        }
        let mut figures = BTreeMap::new();
        let mut ok = true;
        for (h, cell) in headers.iter().zip(record.iter()).filter(|(h, _)| *h != "time") {
            if cell.is_empty() {
                continue;
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => {
                    figures.insert(h.to_string(), v);
                }
                _ => {
                    fail(line, format!("{h} `{cell}` is not a number of at least 0"));
                    ok = false;
                }
            }
        }
        if ok {
            rows.push(TraceRow { at_ms, figures });
        }
    }
    if bad > MAX_REPORTED {
        errors.push(format!("… and {} more bad rows", bad - MAX_REPORTED));
    }
    if errors.is_empty() && rows.is_empty() {
        errors.push("2: the trace has no rows".to_string());
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_reads_with_empty_cells_as_no_figure() {
        let rows =
            parse("time,ops,cpu\n2026-11-01T00:00:00Z,1000,0.5\n2026-11-01T00:01:00Z, 2000 ,\n".as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].at_ms - rows[0].at_ms, 60_000);
        assert_eq!(rows[1].figures.get("ops"), Some(&2000.0));
        assert_eq!(rows[1].figures.get("cpu"), None);
    }

    #[test]
    fn bad_rows_are_reported_with_their_lines() {
        let text = "time,ops\n\
                    2026-11-01T00:00:00Z,1000\n\
                    yesterday,5\n\
                    2026-11-01T00:02:00Z,-3\n\
                    2026-11-01T00:03:00Z,lots\n\
                    2026-10-31T23:59:00Z,7\n\
                    2026-11-01T00:04:00Z,1,2\n";
        let errs = parse(text.as_bytes()).unwrap_err();
        let lines: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(lines, ["3", "4", "5", "6", "7"], "{errs:?}");
        assert!(errs[0].contains("yesterday"), "{errs:?}");
        assert!(errs[3].contains("goes back"), "{errs:?}");
        let errs = parse("time,ops,load\n".as_bytes()).unwrap_err();
        assert!(errs[0].starts_with("1: unknown column `load`"), "{errs:?}");
        assert!(parse("ops\n1\n".as_bytes()).unwrap_err()[0].contains("no `time`"));
        assert!(parse("time,ops\n".as_bytes()).unwrap_err()[0].contains("no rows"));
    }
}

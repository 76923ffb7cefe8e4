//! `tidal status`: one view of the cluster, merged from every node's admin
//! API. The node named by `--http` supplies the node list; each node then
//! reports its own readiness, cache state and the groups it hosts, and each
//! PRG is shown as its leader reports it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct StatusArgs {
    /// HTTP address of any node.
    #[arg(long, env = "TIDAL_HTTP", default_value = "127.0.0.1:6480")]
    http: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn fetch(addr: &str, path: &str) -> Result<Value, String> {
    let agent = crate::http_client::agent(Duration::from_secs(3));
    let url = crate::http_client::url(addr, path);
    let mut resp = crate::http_client::authorize(agent.get(&url)).call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(|e| format!("{url}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{url}: invalid JSON: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status} {}", v["error"].as_str().unwrap_or("")));
    }
    Ok(v)
}

/// Everything `status` shows, as JSON.
fn gather(http: &str) -> Result<Value, String> {
    let cluster = fetch(http, "/api/v1/cluster")?;
    let nodes = cluster["nodes"].as_array().cloned().unwrap_or_default();
    // What each node hosts, by the control plane's placements.
    let hosts: BTreeMap<u64, Value> = fetch(http, "/api/v1/nodes")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| Some((n["id"].as_u64()?, n)))
        .collect();
    let mut node_views = Vec::new();
    let mut prgs: BTreeMap<String, Value> = BTreeMap::new();
    for n in &nodes {
        let addr = n["httpAddr"].as_str().unwrap_or_default();
        let id = n["id"].as_u64().unwrap_or(0);
        let view = fetch(addr, "/api/v1/cluster");
        let groups = fetch(addr, "/api/v1/prgs");
        let mut v = n.clone();
        if let Some(h) = hosts.get(&id) {
            for k in
                ["replicas", "learners", "leaders", "slots", "slotsLed", "appliedEpoch", "storedBytes", "dataBytes"]
            {
                v[k] = h[k].clone();
            }
        }
        match &view {
            Ok(c) => {
                v["ready"] = c["ready"].clone();
                v["cacheState"] = c["cacheState"].clone();
                v["cacheAgeMs"] = c["cacheAgeMs"].clone();
                v["strictFallback"] = c["strictFallback"].clone();
                v["routingEpoch"] = c["routingEpoch"].clone();
                v["notReadyReasons"] = c["notReadyReasons"].clone();
            }
            Err(e) => {
                v["ready"] = json!(false);
                v["unreachable"] = json!(e);
            }
        }
        node_views.push(v);
        if let Ok(Value::Array(gs)) = groups {
            for g in gs {
                let gid = g["id"].as_str().unwrap_or_default().to_string();
                let leads = g["leader"].as_u64() == Some(id);
                if leads || !prgs.contains_key(&gid) {
                    prgs.insert(gid, g);
                }
            }
        }
    }
    Ok(json!({
        "routingEpoch": cluster["routingEpoch"],
        "cpVersion": cluster["cpVersion"],
        "cpMembers": cluster["cpMembers"],
        "cpLearners": cluster["cpLearners"],
        "cpLeader": cluster["cpLeader"],
        "tenants": cluster["tenants"],
        "nodes": node_views,
        "prgs": prgs.into_values().collect::<Vec<_>>(),
    }))
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r.get(c).map_or(0, String::len)).max().unwrap_or(0)).collect();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("  {}", line.join("  ").trim_end());
    }
}

fn render(v: &Value) {
    let learners =
        v["cpLearners"].as_array().filter(|l| !l.is_empty()).map(|_| format!(" (joining: {})", s(&v["cpLearners"])));
    println!(
        "routing epoch {}   control plane: voters {}{} leader {} (version {})",
        s(&v["routingEpoch"]),
        s(&v["cpMembers"]),
        learners.unwrap_or_default(),
        s(&v["cpLeader"]),
        s(&v["cpVersion"])
    );
    for t in v["tenants"].as_array().into_iter().flatten() {
        println!("tenant {}: {} slots, {} PRGs", s(&t["name"]), s(&t["slots"]), s(&t["prgs"]));
    }
    println!("\nNODES");
    let mut rows = vec![[
        "ID", "ZONE", "STATE", "READY", "CACHE", "EPOCH", "REPLICAS", "LEADS", "SLOTS", "DATA", "ON DISK", "REDIS",
        "HTTP", "PEER",
    ]
    .map(String::from)
    .to_vec()];
    for n in v["nodes"].as_array().into_iter().flatten() {
        let cache = match (&n["cacheState"], &n["cacheAgeMs"]) {
            (Value::String(c), Value::Number(a)) => format!("{c} ({a} ms)"),
            (Value::String(c), _) => c.clone(),
            _ => "unreachable".to_string(),
        };
        let ready = match n["ready"].as_bool() {
            Some(true) => "yes".to_string(),
            _ => "no".to_string(),
        };
        rows.push(vec![
            s(&n["id"]),
            s(&n["zone"]),
            s(&n["state"]),
            ready,
            cache,
            s(&n["routingEpoch"]),
            match n["learners"].as_u64() {
                Some(l) if l > 0 => format!("{} (+{l} learning)", s(&n["replicas"])),
                _ => s(&n["replicas"]),
            },
            s(&n["leaders"]),
            format!("{} ({} led)", s(&n["slots"]), s(&n["slotsLed"])),
            n["dataBytes"].as_u64().map_or_else(|| "-".to_string(), mib),
            n["storedBytes"].as_u64().map_or_else(|| "-".to_string(), mib),
            s(&n["clientAddr"]),
            s(&n["httpAddr"]),
            s(&n["peerAddr"]),
        ]);
    }
    print_table(&rows);
    for n in v["nodes"].as_array().into_iter().flatten() {
        for r in n["notReadyReasons"].as_array().into_iter().flatten() {
            println!("  node {} not ready: {}", s(&n["id"]), s(r));
        }
    }
    println!("\nGROUPS");
    let mut rows =
        vec![["ID", "MEMBERS", "LEADER", "TERM", "COMMIT", "APPLIED", "REPL LAG", "EPOCH"].map(String::from).to_vec()];
    for g in v["prgs"].as_array().into_iter().flatten() {
        let lag = match g["replicationLag"].as_object() {
            Some(m) if !m.is_empty() => m.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" "),
            _ => "-".to_string(),
        };
        rows.push(vec![
            s(&g["id"]),
            s(&g["members"]),
            s(&g["leader"]),
            s(&g["term"]),
            s(&g["commitIndex"]),
            s(&g["appliedIndex"]),
            lag,
            s(&g["epoch"]),
        ]);
    }
    print_table(&rows);
}

pub fn run(args: StatusArgs) -> i32 {
    match gather(&args.http) {
        Ok(v) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON serializes"));
            } else {
                render(&v);
            }
            0
        }
        Err(e) => {
            eprintln!("error: cannot reach the cluster: {e}");
            1
        }
    }
}

//! A stand-in Kubernetes API server for benchmarks (`bench/qps`'s churn round).
//!
//! Serves the objects of a JSON `List` (the cluster `bench/qps` generates) on a
//! loopback port, writes a kubeconfig for it, and updates EndpointSlices at the
//! rate it is told on standard input: a line `rate N` sets N updates a second
//! (0 stops them). Each update moves the first endpoint of one slice to a fresh
//! address, as a rolling restart would. It prints `kubeconfig PATH` once serving,
//! and `updates N` (the total so far) after every `rate` line.
//!
//! Other commands, one a line (`bench/chaos` drives them):
//! - `apply JSON` creates or replaces an object; `delete KIND NAMESPACE NAME` deletes one;
//! - `chaos KEY=VALUE...` sets random faults (keys: `error`, `cut`, `duplicate`,
//!   `reorder`, `stale-bookmark`, `slow` as probabilities, `max-delay-ms`), `chaos off`
//!   clears them and the faults `fail` queued;
//! - `close` ends every watch, `cut` cuts every watch mid-line (at its next event or
//!   bookmark), `disconnect` drops every connection, `gone` sends
//!   `410 Gone` on every watch and forgets history (a forced full re-list),
//!   `fail KIND STATUS COUNT` fails the next COUNT requests for KIND;
//! - `dump PATH` writes every object as a JSON array to PATH, then prints
//!   `dumped N RV` (object count, resourceVersion): the model at that instant.
//!
//! Usage: fake_apiserver --objects cluster.json --dir DIR [--minor N]

#[path = "../tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_apiserver::{Chaos, FakeApiServer};
use serde_json::{Value, json};

const KINDS: [&str; 4] = ["Namespace", "Service", "EndpointSlice", "Pod"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(objects), Some(dir)) = (flag("--objects"), flag("--dir")) else {
        eprintln!("usage: fake_apiserver --objects cluster.json --dir DIR");
        std::process::exit(2);
    };
    let list: Value = match std::fs::read(&objects)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(list) => list,
        Err(error) => {
            eprintln!("{objects}: {error}");
            std::process::exit(1);
        }
    };
    let items: Vec<Value> = match list.get("items").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter(|item| {
                item.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| KINDS.contains(&kind))
            })
            .cloned()
            .collect(),
        None => {
            eprintln!("{objects}: not a List with items");
            std::process::exit(1);
        }
    };

    let api = Arc::new(FakeApiServer::start());
    if let Some(minor) = flag("--minor") {
        match minor.parse() {
            Ok(minor) => api.set_minor_version(minor),
            Err(_) => {
                eprintln!("--minor: not a number: {minor}");
                std::process::exit(2);
            }
        }
    }
    let mut slices = Vec::new();
    for item in items {
        if item["kind"] == "EndpointSlice" && item["endpoints"][0]["addresses"][0].is_string() {
            slices.push(item.clone());
        }
        api.apply(item);
    }
    let kubeconfig = api.write_kubeconfig(std::path::Path::new(&dir));
    println!("kubeconfig {}", kubeconfig.display());
    let _ = std::io::stdout().flush();

    let rate = Arc::new(AtomicUsize::new(0));
    let updates = Arc::new(AtomicU64::new(0));
    {
        let (api, rate, updates) = (api.clone(), rate.clone(), updates.clone());
        std::thread::spawn(move || churn(&api, slices, &rate, &updates));
    }
    // Commands until standard input closes; then the server goes with the process.
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if let Some(Ok(n)) = line
            .strip_prefix("rate ")
            .map(|n| n.trim().parse::<usize>())
        {
            rate.store(n, Ordering::Relaxed);
            println!("updates {}", updates.load(Ordering::Relaxed));
            let _ = std::io::stdout().flush();
        } else if let Err(error) = command(&api, &line) {
            eprintln!("fake_apiserver: {error}: {line}");
        }
    }
}

/// One of the chaos soak's commands (see the module docs).
fn command(api: &FakeApiServer, line: &str) -> Result<(), String> {
    let (verb, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    let words: Vec<&str> = rest.split_whitespace().collect();
    match (verb, words.as_slice()) {
        ("apply", _) => {
            let object: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
            let known = object["kind"]
                .as_str()
                .is_some_and(|kind| KINDS.contains(&kind));
            if !known || !object["metadata"]["name"].is_string() {
                return Err("not an object of a served kind with a name".into());
            }
            api.apply(object);
        }
        ("delete", [kind, namespace, name]) if KINDS.contains(kind) => {
            api.delete(kind, namespace, name);
        }
        ("chaos", ["off"]) => {
            api.set_chaos(Chaos::default());
            api.clear_faults();
        }
        ("chaos", settings) => api.set_chaos(parse_chaos(settings)?),
        ("close", []) => api.close_watches(),
        ("cut", []) => api.cut_watches(),
        ("disconnect", []) => api.drop_connections(),
        ("gone", []) => api.expire_watches(),
        ("fail", [kind, status, count]) if KINDS.contains(kind) => {
            let status = status.parse().map_err(|_| "bad status")?;
            let count = count.parse().map_err(|_| "bad count")?;
            api.fail_next(kind, status, count);
        }
        ("dump", [path]) => {
            // The version first: the objects are at least as new as it.
            let rv = api.resource_version();
            let objects = api.objects();
            let json = serde_json::to_vec(&objects).map_err(|e| e.to_string())?;
            std::fs::write(path, json).map_err(|e| format!("{path}: {e}"))?;
            println!("dumped {} {rv}", objects.len());
            let _ = std::io::stdout().flush();
        }
        _ => return Err("unknown command".into()),
    }
    Ok(())
}

fn parse_chaos(settings: &[&str]) -> Result<Chaos, String> {
    let mut chaos = Chaos::default();
    for setting in settings {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("{setting}: not KEY=VALUE"))?;
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{setting}: not a number"))?;
        match key {
            "error" => chaos.error_rate = value,
            "cut" => chaos.cut_rate = value,
            "duplicate" => chaos.duplicate_rate = value,
            "reorder" => chaos.reorder_rate = value,
            "stale-bookmark" => chaos.stale_bookmark_rate = value,
            "slow" => chaos.slow_rate = value,
            "max-delay-ms" => chaos.max_delay = Duration::from_secs_f64(value / 1000.0),
            _ => return Err(format!("{key}: unknown chaos key")),
        }
    }
    Ok(chaos)
}

/// Applies `rate` slice updates a second, evenly spaced, re-reading the rate as it goes.
fn churn(api: &FakeApiServer, mut slices: Vec<Value>, rate: &AtomicUsize, updates: &AtomicU64) {
    if slices.is_empty() {
        return;
    }
    // A prime stride that does not divide the count visits every slice before
    // repeating one, in an order that hops across namespaces.
    let stride = [7919, 7907, 7901]
        .into_iter()
        .find(|p| !slices.len().is_multiple_of(*p))
        .unwrap_or(1);
    let mut next = Instant::now();
    let mut sequence: usize = 0;
    loop {
        let per_second = rate.load(Ordering::Relaxed);
        if per_second == 0 {
            std::thread::sleep(Duration::from_millis(10));
            next = Instant::now();
            continue;
        }
        next += Duration::from_secs_f64(1.0 / per_second as f64);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let index = sequence.wrapping_mul(stride) % slices.len();
        let fresh = format!(
            "10.{}.{}.{}",
            200 + (sequence / 65536) % 50,
            (sequence / 256) % 256,
            sequence % 256
        );
        sequence += 1;
        let slice = &mut slices[index];
        slice["endpoints"][0]["addresses"] = json!([fresh]);
        api.apply(slice.clone());
        updates.fetch_add(1, Ordering::Relaxed);
    }
}

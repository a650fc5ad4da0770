//! A stand-in Kubernetes API server for benchmarks (`bench/qps`'s churn round).
//!
//! Serves the objects of a JSON `List` (the cluster `bench/qps` generates) on a
//! loopback port, writes a kubeconfig for it, and updates EndpointSlices at the
//! rate it is told on standard input: a line `rate N` sets N updates a second
//! (0 stops them). Each update moves the first endpoint of one slice to a fresh
//! address, as a rolling restart would. It prints `kubeconfig PATH` once serving,
//! and `updates N` (the total so far) after every `rate` line.
//!
//! Usage: fake_apiserver --objects cluster.json --dir DIR

#[path = "../tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
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
        }
    }
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

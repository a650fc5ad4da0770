//! A fake Kubernetes API server on 127.0.0.1 for tests and benchmarks.
//!
//! It speaks the part of the API that `kube`'s watcher uses: `/version`; list with
//! `resourceVersion`, `limit` and `continue`; watch as a chunked stream of JSON
//! events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) resumable from a
//! resourceVersion, with `410 Gone` once history is compacted; streaming lists
//! (`sendInitialEvents`) unless turned off; label selectors. Tests change objects
//! while it runs, inject 500/403 answers, close or expire watches, drop every
//! connection, and stop and restart it on the same port. With [`Chaos`] set it also
//! misbehaves at random (`bench/chaos`): 500s, watch streams cut mid-line, slow and
//! split chunks, duplicated and reordered events, stale bookmarks.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Services,
    EndpointSlices,
    Namespaces,
    Pods,
}

impl Resource {
    fn from_path(path: &str) -> Option<Self> {
        match path {
            "/api/v1/services" => Some(Resource::Services),
            "/apis/discovery.k8s.io/v1/endpointslices" => Some(Resource::EndpointSlices),
            "/api/v1/namespaces" => Some(Resource::Namespaces),
            "/api/v1/pods" => Some(Resource::Pods),
            _ => None,
        }
    }

    fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Service" => Some(Resource::Services),
            "EndpointSlice" => Some(Resource::EndpointSlices),
            "Namespace" => Some(Resource::Namespaces),
            "Pod" => Some(Resource::Pods),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Resource::Services => "Service",
            Resource::EndpointSlices => "EndpointSlice",
            Resource::Namespaces => "Namespace",
            Resource::Pods => "Pod",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Resource::EndpointSlices => "discovery.k8s.io/v1",
            _ => "v1",
        }
    }
}

/// One watch event as kept in history and sent to watchers.
#[derive(Debug)]
struct Recorded {
    rv: u64,
    resource: Resource,
    kind: &'static str,
    object: Value,
    /// The object before a MODIFIED event: a watch with a label selector sees
    /// an object leave (DELETED) or enter (ADDED) its selection, as the API
    /// server's watch cache reports it.
    previous: Option<Value>,
}

impl Recorded {
    /// The event type a watch with this selector sees, if any.
    fn seen_as(&self, selector: Option<&String>) -> Option<&'static str> {
        let now = matches_selector(selector, &self.object);
        let before = self
            .previous
            .as_ref()
            .map(|p| matches_selector(selector, p));
        match (before, now) {
            (Some(false), true) => Some("ADDED"),
            (Some(true), false) => Some("DELETED"),
            (_, true) => Some(self.kind),
            _ => None,
        }
    }
}

/// Control messages broadcast beside events.
#[derive(Debug, Clone)]
enum Broadcast {
    Event(Arc<Recorded>),
    /// End every watch stream (clients resume from their resourceVersion).
    Close,
    /// Send ERROR 410 on every watch stream, then end it.
    Gone,
    /// Cut every watch stream in the middle of its next line.
    Cut,
}

/// Faults injected at random while set; each rate is a probability per occasion
/// (0 = never). All zero by default, so tests see a well-behaved server.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Chaos {
    /// List and watch requests answered `500 Internal Server Error`.
    pub error_rate: f64,
    /// Watch events whose line is cut in half, ending the stream there.
    pub cut_rate: f64,
    /// Watch events and bookmarks sent twice.
    pub duplicate_rate: f64,
    /// Live events swapped with the next queued one (when it is another object's).
    pub reorder_rate: f64,
    /// Bookmarks that carry an older resourceVersion than already sent.
    pub stale_bookmark_rate: f64,
    /// Chunks delayed by up to `max_delay` and sent in two pieces with a pause between.
    pub slow_rate: f64,
    pub max_delay: Duration,
}

/// A small PRNG for chaos decisions (SplitMix64); quality is not a concern here.
struct Dice(u64);

impl Dice {
    fn new() -> Self {
        static SEED: AtomicU64 = AtomicU64::new(0x5eed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Dice(nanos ^ SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn roll(&mut self, p: f64) -> bool {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        p > 0.0 && unit < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

struct Inner {
    rv: u64,
    chaos: Chaos,
    objects: BTreeMap<(Resource, String, String), Value>,
    history: VecDeque<Arc<Recorded>>,
    /// Watches from a resourceVersion below this get 410 Gone.
    oldest_rv: u64,
    history_limit: usize,
    /// Status codes the next requests for a resource get, in order.
    faults: HashMap<Resource, VecDeque<u16>>,
    forbidden: HashSet<Resource>,
    streaming_lists: bool,
    minor_version: u32,
    requests: Vec<String>,
    bookmark_interval: Duration,
}

struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Broadcast>,
    connections: Mutex<Vec<AbortHandle>>,
}

pub struct FakeApiServer {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<AbortHandle>>,
}

impl FakeApiServer {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake API server runtime");
        let (events, _) = broadcast::channel(1 << 16);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1000,
                chaos: Chaos::default(),
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest_rv: 0,
                history_limit: 1 << 20,
                faults: HashMap::new(),
                forbidden: HashSet::new(),
                streaming_lists: true,
                minor_version: 34,
                requests: Vec::new(),
                bookmark_interval: Duration::from_secs(1),
            }),
            events,
            connections: Mutex::new(Vec::new()),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind fake API server");
        let addr = listener.local_addr().expect("local addr");
        let server = FakeApiServer {
            runtime,
            addr,
            shared,
            acceptor: Mutex::new(None),
        };
        server.serve(listener);
        server
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let shared = self.shared.clone();
        let task = self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared2 = shared.clone();
                let conn = tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared2.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut connections = shared.connections.lock().unwrap();
                // Forget finished connections, so a long soak does not pile them up.
                connections.retain(|c| !c.is_finished());
                connections.push(conn.abort_handle());
            }
        });
        *self.acceptor.lock().unwrap() = Some(task.abort_handle());
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this server, written into `dir`.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
                 users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: fake\n",
                self.url()
            ),
        )
        .expect("write kubeconfig");
        path
    }

    /// Kills the listener and every open connection, like a crashed API server.
    pub fn stop(&self) {
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Drops every open connection (lists and watches cut mid-stream); keeps listening.
    pub fn drop_connections(&self) {
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Sets the random faults (`Chaos::default()` turns them off).
    pub fn set_chaos(&self, chaos: Chaos) {
        self.shared.inner.lock().unwrap().chaos = chaos;
    }

    /// Every object as it is now (the model the served zone must match).
    pub fn objects(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.inner.lock().unwrap().rv
    }

    /// Listens again on the same port, keeping the objects.
    pub fn restart(&self) {
        self.stop();
        let addr = self.addr;
        let listener = self.runtime.block_on(async move {
            for _ in 0..100 {
                if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
                    return listener;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("cannot bind {addr} again");
        });
        self.serve(listener);
    }

    /// Creates or replaces an object (given with apiVersion, kind and metadata).
    /// Returns its new resourceVersion.
    pub fn apply(&self, mut object: Value) -> u64 {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let resource = Resource::from_kind(&kind).expect("a known kind");
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string();
        let namespace = match resource {
            Resource::Namespaces => String::new(),
            _ => {
                let ns = object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string();
                object["metadata"]["namespace"] = json!(ns);
                ns
            }
        };
        let mut inner = self.shared.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = (resource, namespace, name);
        let kind = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let previous = inner.objects.insert(key, object.clone());
        self.record(&mut inner, resource, kind, object, previous);
        rv
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let resource = Resource::from_kind(kind).expect("a known kind");
        let namespace = if resource == Resource::Namespaces {
            ""
        } else {
            namespace
        };
        let mut inner = self.shared.inner.lock().unwrap();
        let Some(mut object) =
            inner
                .objects
                .remove(&(resource, namespace.to_string(), name.to_string()))
        else {
            return false;
        };
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.record(&mut inner, resource, "DELETED", object, None);
        true
    }

    fn record(
        &self,
        inner: &mut Inner,
        resource: Resource,
        kind: &'static str,
        object: Value,
        previous: Option<Value>,
    ) {
        let recorded = Arc::new(Recorded {
            rv: inner.rv,
            resource,
            kind,
            object,
            previous,
        });
        inner.history.push_back(recorded.clone());
        while inner.history.len() > inner.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.oldest_rv = old.rv + 1;
            }
        }
        // Sent under the lock so watchers see events in resourceVersion order.
        let _ = self.shared.events.send(Broadcast::Event(recorded));
    }

    /// Forgets all history: watches resuming from an older resourceVersion get 410.
    pub fn compact(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.history.clear();
        inner.oldest_rv = inner.rv + 1;
    }

    /// Ends every open watch stream (clients resume from their resourceVersion).
    pub fn close_watches(&self) {
        let _ = self.shared.events.send(Broadcast::Close);
    }

    /// Sends `410 Gone` on every open watch and compacts history, forcing a re-list.
    pub fn expire_watches(&self) {
        self.compact();
        let _ = self.shared.events.send(Broadcast::Gone);
    }

    /// Cuts every open watch stream in the middle of its next line (event or bookmark).
    pub fn cut_watches(&self) {
        let _ = self.shared.events.send(Broadcast::Cut);
    }

    /// The next `count` requests for `resource` get `status` (e.g. 500).
    pub fn fail_next(&self, kind: &str, status: u16, count: usize) {
        let resource = Resource::from_kind(kind).expect("a known kind");
        let mut inner = self.shared.inner.lock().unwrap();
        inner
            .faults
            .entry(resource)
            .or_default()
            .extend(std::iter::repeat_n(status, count));
    }

    /// Forgets the faults `fail_next` queued and not yet served.
    pub fn clear_faults(&self) {
        self.shared.inner.lock().unwrap().faults.clear();
    }

    /// Every request for `kind` gets 403 Forbidden while set.
    pub fn forbid(&self, kind: &str, forbidden: bool) {
        let resource = Resource::from_kind(kind).expect("a known kind");
        let mut inner = self.shared.inner.lock().unwrap();
        if forbidden {
            inner.forbidden.insert(resource);
        } else {
            inner.forbidden.remove(&resource);
        }
    }

    /// Whether `sendInitialEvents` is accepted (else 422, like a server without WatchList).
    pub fn set_streaming_lists(&self, supported: bool) {
        self.shared.inner.lock().unwrap().streaming_lists = supported;
    }

    pub fn set_minor_version(&self, minor: u32) {
        self.shared.inner.lock().unwrap().minor_version = minor;
    }

    pub fn set_history_limit(&self, events: usize) {
        self.shared.inner.lock().unwrap().history_limit = events;
    }

    /// Request lines seen so far (`GET /path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    pub fn object_count(&self) -> usize {
        self.shared.inner.lock().unwrap().objects.len()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn error(code: u16, reason: &str, message: &str) -> Response<Body> {
    full(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        status_body(code, reason, message),
    )
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=b,c!=d,e,!f` against an object's labels.
fn matches_selector(selector: Option<&String>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| {
        let term = term.trim();
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[k.trim()].as_str() == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            labels[k.trim()].is_null()
        } else {
            !labels[term].is_null()
        }
    })
}

async fn handle(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = query_map(request.uri().query());
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.requests.push(format!(
            "GET {}?{}",
            path,
            request.uri().query().unwrap_or_default()
        ));
    }
    if path == "/version" {
        let minor = shared.inner.lock().unwrap().minor_version;
        return full(
            StatusCode::OK,
            json!({"major": "1", "minor": minor.to_string(), "gitVersion": format!("v1.{minor}.0-fake")}),
        );
    }
    let Some(resource) = Resource::from_path(&path) else {
        return error(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    {
        let mut inner = shared.inner.lock().unwrap();
        if inner.forbidden.contains(&resource) {
            let verb = if query.contains_key("watch") {
                "watch"
            } else {
                "list"
            };
            return error(
                403,
                "Forbidden",
                &format!(
                    "{} is forbidden: User \"system:serviceaccount:kube-system:coredns\" cannot {verb} resource",
                    path
                ),
            );
        }
        if let Some(code) = inner
            .faults
            .get_mut(&resource)
            .and_then(VecDeque::pop_front)
        {
            return error(code, "InternalError", "injected fault");
        }
        let error_rate = inner.chaos.error_rate;
        if Dice::new().roll(error_rate) {
            return error(500, "InternalError", "injected random fault");
        }
    }
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if is_watch {
        watch(shared, resource, &query)
    } else {
        list(shared, resource, &query)
    }
}

fn list(
    shared: &Arc<Shared>,
    resource: Resource,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let inner = shared.inner.lock().unwrap();
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    // continue token: "<list rv>:<offset>"
    let (list_rv, offset) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((rv, offset)) = token.split_once(':') else {
                return error(400, "BadRequest", "invalid continue token");
            };
            let rv: u64 = rv.parse().unwrap_or(0);
            if rv < inner.oldest_rv {
                return error(410, "Expired", "the provided continue parameter is too old");
            }
            (rv, offset.parse().unwrap_or(0))
        }
        None => (inner.rv, 0),
    };
    let selector = query.get("labelSelector");
    let items: Vec<&Value> = inner
        .objects
        .range((resource, String::new(), String::new())..)
        .take_while(|((r, _, _), _)| *r == resource)
        .map(|(_, v)| v)
        .filter(|v| matches_selector(selector, v))
        .collect();
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if offset + page.len() < items.len() {
        metadata["continue"] = json!(format!("{list_rv}:{}", offset + page.len()));
    }
    full(
        StatusCode::OK,
        json!({"apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind()),
               "metadata": metadata, "items": page}),
    )
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(resource: Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"apiVersion": resource.api_version(), "kind": resource.kind(), "metadata": metadata}),
    )
}

/// The key of an object within its resource (namespace, name).
fn object_key(object: &Value) -> (&str, &str) {
    (
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// The sending end of one watch stream, misbehaving as `Chaos` says.
struct Out {
    tx: mpsc::Sender<Bytes>,
    chaos: Chaos,
    dice: Dice,
    /// Cut the next line (`FakeApiServer::cut_watches`).
    cut_next: bool,
}

/// The stream is over (the client went, or chaos cut it).
struct Ended;

impl Out {
    async fn raw(&mut self, chunk: Bytes) -> Result<(), Ended> {
        self.tx.send(chunk).await.map_err(|_| Ended)
    }

    /// Sends one event line, possibly slowly, in pieces, twice, or cut in half (then ends).
    async fn line(&mut self, line: Bytes) -> Result<(), Ended> {
        let max_delay = self.chaos.max_delay.as_micros() as u64;
        if self.cut_next || self.dice.roll(self.chaos.cut_rate) {
            let half = line.len() / 2;
            let _ = self.raw(line.slice(..half)).await;
            return Err(Ended);
        }
        if self.dice.roll(self.chaos.slow_rate) {
            let split = 1 + self.dice.below(line.len().saturating_sub(1) as u64) as usize;
            tokio::time::sleep(Duration::from_micros(self.dice.below(max_delay))).await;
            self.raw(line.slice(..split)).await?;
            tokio::time::sleep(Duration::from_micros(self.dice.below(max_delay))).await;
            self.raw(line.slice(split..)).await?;
        } else {
            self.raw(line.clone()).await?;
        }
        if self.dice.roll(self.chaos.duplicate_rate) {
            self.raw(line).await?;
        }
        Ok(())
    }
}

fn watch(
    shared: &Arc<Shared>,
    resource: Resource,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let selector = query.get("labelSelector").cloned();
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let initial_events = query.get("sendInitialEvents").map(String::as_str) == Some("true");
    let (first, mut live, start_rv, interval, chaos) = {
        let inner = shared.inner.lock().unwrap();
        let mut first: Vec<Bytes> = Vec::new();
        let live = shared.events.subscribe();
        if initial_events {
            if !inner.streaming_lists {
                return error(
                    422,
                    "Invalid",
                    "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: \
                     sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                );
            }
            for ((r, _, _), object) in inner
                .objects
                .range((resource, String::new(), String::new())..)
            {
                if *r != resource {
                    break;
                }
                if matches_selector(selector.as_ref(), object) {
                    first.push(event_line("ADDED", object));
                }
            }
            first.push(bookmark(resource, inner.rv, true));
        } else {
            let from: u64 = query
                .get("resourceVersion")
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(inner.rv);
            if from + 1 < inner.oldest_rv {
                first.push(event_line(
                    "ERROR",
                    &status_body(410, "Expired", &format!("too old resource version: {from}")),
                ));
                let body = futures::stream::iter(
                    first
                        .into_iter()
                        .map(|b| Ok::<_, Infallible>(Frame::data(b))),
                );
                return Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
            }
            for event in inner
                .history
                .iter()
                .filter(|e| e.rv > from && e.resource == resource)
            {
                if let Some(kind) = event.seen_as(selector.as_ref()) {
                    first.push(event_line(kind, &event.object));
                }
            }
        }
        (first, live, inner.rv, inner.bookmark_interval, inner.chaos)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let task = tokio::spawn(async move {
        let mut out = Out {
            tx,
            chaos,
            dice: Dice::new(),
            cut_next: false,
        };
        for chunk in first {
            if out.line(chunk).await.is_err() {
                return;
            }
        }
        // Every event up to `seen_rv` (of any resource) has been taken from the
        // broadcast, which is in resourceVersion order: so a bookmark at `seen_rv`
        // never claims an event this stream has not sent yet.
        let mut seen_rv = start_rv;
        let mut pending: VecDeque<Broadcast> = VecDeque::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let message = match pending.pop_front() {
                Some(message) => Ok(message),
                None => tokio::select! {
                    message = live.recv() => message,
                    _ = ticker.tick(), if bookmarks => {
                        let mut rv = seen_rv;
                        if out.dice.roll(out.chaos.stale_bookmark_rate) {
                            rv = rv.saturating_sub(1 + out.dice.below(100)).max(1);
                        }
                        if out.line(bookmark(resource, rv, false)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                },
            };
            match message {
                Ok(Broadcast::Event(event)) => {
                    if event.rv <= seen_rv {
                        continue;
                    }
                    seen_rv = event.rv;
                    let seen = event.seen_as(selector.as_ref());
                    let Some(kind) = seen.filter(|_| event.resource == resource) else {
                        continue;
                    };
                    // Swap with the next event when it is for another object of
                    // this stream: each object's own events stay in order.
                    if out.dice.roll(out.chaos.reorder_rate)
                        && let Ok(next) = live.try_recv()
                    {
                        match next {
                            Broadcast::Event(ref other)
                                if other.rv > seen_rv
                                    && other.resource == resource
                                    && other.seen_as(selector.as_ref()).is_some()
                                    && object_key(&other.object) != object_key(&event.object) =>
                            {
                                seen_rv = other.rv;
                                let other_kind = other.seen_as(selector.as_ref()).unwrap_or("");
                                if out
                                    .line(event_line(other_kind, &other.object))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            next => pending.push_back(next),
                        }
                    }
                    if out.line(event_line(kind, &event.object)).await.is_err() {
                        return;
                    }
                }
                Ok(Broadcast::Close) => return,
                Ok(Broadcast::Cut) => out.cut_next = true,
                Ok(Broadcast::Gone) => {
                    let _ = out
                        .raw(event_line(
                            "ERROR",
                            &status_body(410, "Expired", "watch expired"),
                        ))
                        .await;
                    return;
                }
                // Too slow to keep up: end the stream, the client resumes.
                Err(_) => return,
            }
        }
    });
    // The task ends when the connection goes: its channel closes.
    drop(task);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(body.boxed())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}

//! The record index: cluster objects in, an immutable [`Snapshot`] out.
//!
//! The [`IndexWriter`] owns the compact cluster state. Every change recomputes
//! only the records of the one service it touches and patches a persistent
//! (structurally shared) snapshot, so publishing costs O(1) and an update costs
//! time proportional to that service, never to the cluster. Readers load the
//! published `Arc<Snapshot>` through [`arc_swap`] and never wait for a writer.

pub mod feed;
pub mod names;

use crate::cluster::EndpointOptions;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::cluster::{
    ClusterObject, EndpointSliceInfo, Kind, ObjectRef, PodInfo, PortInfo, ServiceInfo, ServiceKind,
};

/// Hands memory freed after a large load (a full list, a manifests directory)
/// back to the operating system, so the resident size reflects what is kept.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes no
    // pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Where queries find the current snapshot.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A ready endpoint address of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint's `hostname` (lower case), when it has one.
    pub hostname: Option<Box<str>>,
    pub ip: IpAddr,
    /// Ports of the EndpointSlice the address came from.
    pub ports: Arc<[PortInfo]>,
}

impl Endpoint {
    /// The label it answers under: `hostname`, else the dashed address.
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        match &self.hostname {
            Some(hostname) => std::borrow::Cow::Borrowed(hostname),
            None => std::borrow::Cow::Owned(names::dashed_ip(self.ip)),
        }
    }
}

/// Everything DNS serves for one service, derived from the Service and all its slices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecords {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub kind: ServiceKind,
    pub ports: Vec<PortInfo>,
    /// Where it is reached from outside the cluster (`k8s_external`).
    pub external: Box<[crate::cluster::ExternalAddress]>,
    /// Ready endpoints of all slices, in slice-name order, without duplicates.
    pub endpoints: Box<[Endpoint]>,
    /// What `<svc>.<ns>.svc` answers: the cluster IPs, or (headless) every distinct
    /// endpoint address, in order.
    pub addresses: Box<[IpAddr]>,
    /// Positions in `endpoints` of those with a hostname, sorted by hostname.
    by_hostname: Box<[u32]>,
    /// Positions in `endpoints` of those without one, sorted by address.
    by_address: Box<[u32]>,
}

impl ServiceRecords {
    /// `pod_names`: an endpoint without a hostname takes its Pod's name
    /// (CoreDNS `endpoint_pod_names`).
    pub fn build<'a>(
        service: &ServiceInfo,
        slices: impl IntoIterator<Item = &'a EndpointSliceInfo>,
        pod_names: bool,
    ) -> Self {
        let mut endpoints: Vec<Endpoint> = Vec::new();
        let mut seen: HashSet<(IpAddr, Option<&str>)> = HashSet::new();
        for slice in slices {
            for endpoint in &slice.endpoints {
                // The same address may sit in two slices while the controller moves it.
                // A hostname that spells the address names it as no hostname would.
                let named = match (&endpoint.hostname, &endpoint.pod) {
                    (None, Some(pod)) if pod_names => Some(pod),
                    (hostname, _) => hostname.as_ref(),
                };
                let hostname = named
                    .map(|h| &**h)
                    .filter(|h| !names::dashed_ip_is(endpoint.ip, h));
                if !seen.insert((endpoint.ip, hostname)) {
                    continue;
                }
                endpoints.push(Endpoint {
                    hostname: named.cloned(),
                    ip: endpoint.ip,
                    ports: slice.ports.clone(),
                });
            }
        }
        // Positions fit in u32: a service's endpoints come from its slices, each
        // holding at most 1,000 (the API server's limit), never 4 billion.
        let positions = |hostnamed: bool| -> Vec<u32> {
            (0..endpoints.len())
                .filter(|&i| endpoints[i].hostname.is_some() == hostnamed)
                .filter_map(|i| u32::try_from(i).ok())
                .collect()
        };
        let mut by_hostname = positions(true);
        by_hostname.sort_by(|&a, &b| {
            endpoints[a as usize]
                .hostname
                .cmp(&endpoints[b as usize].hostname)
        });
        let mut by_address = positions(false);
        by_address.sort_by_key(|&i| endpoints[i as usize].ip);
        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut distinct: HashSet<IpAddr> = HashSet::new();
        let candidates: Box<dyn Iterator<Item = IpAddr>> = match &service.kind {
            ServiceKind::ClusterIp(ips) => Box::new(ips.iter().copied()),
            ServiceKind::Headless => Box::new(endpoints.iter().map(|e| e.ip)),
            ServiceKind::ExternalName(_) => Box::new(std::iter::empty()),
        };
        for ip in candidates {
            if distinct.insert(ip) {
                addresses.push(ip);
            }
        }
        ServiceRecords {
            namespace: service.namespace.clone(),
            name: service.name.clone(),
            kind: service.kind.clone(),
            ports: service.ports.clone(),
            external: service.external.clone().into_boxed_slice(),
            endpoints: endpoints.into_boxed_slice(),
            addresses: addresses.into_boxed_slice(),
            by_hostname: by_hostname.into_boxed_slice(),
            by_address: by_address.into_boxed_slice(),
        }
    }

    /// The endpoints named `label` (any case): those with that hostname, then
    /// those without a hostname whose dashed address it spells.
    pub fn endpoints_named<'s>(&'s self, label: &[u8]) -> impl Iterator<Item = &'s Endpoint> {
        let mut lower = [0u8; 63];
        let label = match lower.get_mut(..label.len()) {
            Some(buffer) => {
                buffer.copy_from_slice(label);
                buffer.make_ascii_lowercase();
                std::str::from_utf8(buffer).ok()
            }
            None => None,
        };
        let endpoint = |i: &u32| &self.endpoints[*i as usize];
        // The run of `positions` (sorted by `key`) whose key is `want`.
        fn equal_run<K: Ord>(positions: &[u32], key: impl Fn(&u32) -> K, want: K) -> &[u32] {
            let start = positions.partition_point(|i| key(i) < want);
            let len = positions[start..]
                .iter()
                .take_while(|i| key(i) == want)
                .count();
            &positions[start..start + len]
        }
        let named: &[u32] = label
            .map(|label| {
                equal_run(
                    &self.by_hostname,
                    |i| endpoint(i).hostname.as_deref(),
                    Some(label),
                )
            })
            .unwrap_or(&[]);
        // Only the canonical spelling names an address: `10-0-0-1`, not `010-0-0-1`.
        // At most two addresses share a label (see `endpoint_label_ips`).
        let mut unnamed: [&[u32]; 2] = [&[], &[]];
        if let Some(label) = label {
            for (slot, ip) in unnamed.iter_mut().zip(names::endpoint_label_ips(label)) {
                *slot = equal_run(&self.by_address, |i| endpoint(i).ip, ip);
            }
        }
        named
            .iter()
            .chain(unnamed.into_iter().flatten())
            .map(endpoint)
    }

    pub fn is_headless(&self) -> bool {
        self.kind == ServiceKind::Headless
    }

    /// Addresses whose reverse names point at this service, with the endpoint's
    /// hostname (`None` for a ClusterIP), and whether the owner is an endpoint.
    fn ptr_owners(&self) -> impl Iterator<Item = (IpAddr, bool, Option<&Box<str>>)> {
        let cluster_ips: &[IpAddr] = match &self.kind {
            ServiceKind::ClusterIp(ips) => ips,
            _ => &[],
        };
        let endpoints = match self.kind {
            ServiceKind::ExternalName(_) => &[][..],
            _ => &self.endpoints[..],
        };
        cluster_ips
            .iter()
            .map(|ip| (*ip, false, None))
            .chain(endpoints.iter().map(|e| (e.ip, true, e.hostname.as_ref())))
    }
}

/// One owner of a reverse name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PtrTarget {
    /// ClusterIP owners sort (and answer) before endpoint owners.
    pub is_endpoint: bool,
    /// The endpoint's hostname; an endpoint without one is named by the address.
    /// (Field order is sort order: by label, then by service, as the names sort.)
    hostname: Option<Box<str>>,
    /// The owning service's key, `svc.ns`.
    service: Arc<str>,
}

impl PtrTarget {
    /// The name in front of `.svc.<zone>` for the address `ip`: `svc.ns` or `label.svc.ns`.
    pub fn relative(&self, ip: IpAddr) -> String {
        match (&self.hostname, self.is_endpoint) {
            (Some(hostname), _) => format!("{hostname}.{}", self.service),
            (None, true) => format!("{}.{}", names::dashed_ip(ip), self.service),
            (None, false) => self.service.to_string(),
        }
    }
}

/// An immutable view of every record, cheap to clone and to publish.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Keyed by `"<svc>.<ns>"`, lower case: the name as it appears in the question.
    services: imbl::HashMap<Arc<str>, Arc<ServiceRecords>>,
    namespaces: imbl::HashSet<Arc<str>>,
    // B-trees: three times denser than the hash tries for 100k addresses.
    reverse: imbl::OrdMap<IpAddr, Arc<[PtrTarget]>>,
    /// Pod addresses and the namespaces that have a pod with that address.
    pod_ips: imbl::OrdMap<IpAddr, Arc<[Arc<str>]>>,
    /// Unix time of the last change, for the SOA serial.
    pub serial: u32,
    /// Every source has delivered its first complete list. Until then an answer
    /// that would be NXDOMAIN may only be missing data, so it becomes SERVFAIL.
    pub synced: bool,
}

impl Snapshot {
    /// Looks a service up by its key `"<svc>.<ns>"` (lower case).
    pub fn service(&self, key: &str) -> Option<&Arc<ServiceRecords>> {
        self.services.get(key)
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    pub fn ptr_targets(&self, ip: &IpAddr) -> &[PtrTarget] {
        self.reverse.get(ip).map(|t| &t[..]).unwrap_or(&[])
    }

    pub fn pod_exists(&self, namespace: &str, ip: &IpAddr) -> bool {
        self.pod_ips
            .get(ip)
            .is_some_and(|namespaces| namespaces.iter().any(|ns| &**ns == namespace))
    }

    pub fn services(&self) -> impl Iterator<Item = &Arc<ServiceRecords>> {
        self.services.values()
    }

    pub fn reverse_entries(&self) -> impl Iterator<Item = (&IpAddr, &Arc<[PtrTarget]>)> {
        self.reverse.iter()
    }

    pub fn pod_entries(&self) -> impl Iterator<Item = (&IpAddr, &Arc<[Arc<str>]>)> {
        self.pod_ips.iter()
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}

fn key(name: &str, namespace: &str) -> Arc<str> {
    Arc::from(format!("{name}.{namespace}"))
}

/// Owns the cluster state and keeps a snapshot in step with it.
#[derive(Default)]
pub struct IndexWriter {
    endpoints: EndpointOptions,
    services: HashMap<Arc<str>, ServiceInfo>,
    slices: HashMap<Arc<str>, EndpointSliceInfo>,
    slices_by_service: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    pods: HashMap<Arc<str>, PodInfo>,
    explicit_namespaces: HashSet<Arc<str>>,
    namespace_refs: HashMap<Arc<str>, usize>,
    /// CoreDNS `namespace_labels`: only the namespaces listed as objects (the
    /// ones the selector picks) are served; what lives elsewhere is kept, hidden.
    namespace_gate: bool,
    snapshot: Snapshot,
    dirty: bool,
    /// Kinds being listed again, with the objects seen so far (mark and sweep).
    relists: HashMap<Kind, HashSet<Arc<str>>>,
    /// Kinds whose first list has not completed yet.
    awaiting_sync: BTreeSet<Kind>,
}

impl IndexWriter {
    /// A writer whose data is complete from the start (manifests).
    pub fn new() -> Self {
        let mut writer = Self::default();
        writer.snapshot.synced = true;
        writer
    }

    /// A writer that is not synced until each of these kinds finished a first list.
    pub fn awaiting(kinds: impl IntoIterator<Item = Kind>) -> Self {
        let mut writer = Self::new();
        writer.awaiting_sync = kinds.into_iter().collect();
        writer.snapshot.synced = writer.awaiting_sync.is_empty();
        writer
    }

    pub fn is_synced(&self) -> bool {
        self.snapshot.synced
    }

    /// Kinds whose first list is still missing.
    pub fn unsynced_kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.awaiting_sync.iter().copied()
    }

    /// A list of `kind` starts again (after a reconnect or 410 Gone). Objects keep
    /// being served; those the list does not bring back go at [`Self::finish_relist`].
    pub fn begin_relist(&mut self, kind: Kind) {
        self.relists.insert(kind, HashSet::new());
    }

    /// The list of `kind` is complete: drop what it did not contain.
    pub fn finish_relist(&mut self, kind: Kind) {
        if let Some(seen) = self.relists.remove(&kind) {
            let stale: Vec<ObjectRef> = self
                .keys_of(kind)
                .filter(|(key, _)| !seen.contains(key))
                .map(|(_, r)| r)
                .collect();
            for object in stale {
                self.delete(&object);
            }
        }
        if self.awaiting_sync.remove(&kind) && self.awaiting_sync.is_empty() {
            self.snapshot.synced = true;
            self.dirty = true;
        }
    }

    fn keys_of(&self, kind: Kind) -> Box<dyn Iterator<Item = (Arc<str>, ObjectRef)> + '_> {
        let make = move |key: &Arc<str>, namespace: &Arc<str>, name: &Arc<str>| {
            (
                key.clone(),
                ObjectRef {
                    kind,
                    namespace: namespace.clone(),
                    name: name.clone(),
                },
            )
        };
        match kind {
            Kind::Service => Box::new(
                self.services
                    .iter()
                    .map(move |(k, s)| make(k, &s.namespace, &s.name)),
            ),
            Kind::EndpointSlice => Box::new(
                self.slices
                    .iter()
                    .map(move |(k, s)| make(k, &s.namespace, &s.name)),
            ),
            Kind::Pod => Box::new(
                self.pods
                    .iter()
                    .map(move |(k, p)| make(k, &p.namespace, &p.name)),
            ),
            Kind::Namespace => {
                Box::new(self.explicit_namespaces.iter().map(move |n| make(n, n, n)))
            }
        }
    }

    pub fn delete(&mut self, object: &ObjectRef) {
        match object.kind {
            Kind::Service => self.remove_service(&object.namespace, &object.name),
            Kind::EndpointSlice => self.remove_slice(&object.namespace, &object.name),
            Kind::Pod => self.remove_pod(&object.namespace, &object.name),
            Kind::Namespace => self.remove_namespace(&object.name),
        }
    }

    /// The kind of a known service.
    pub fn service_kind(&self, namespace: &str, name: &str) -> Option<ServiceKind> {
        self.services
            .get(&key(name, namespace))
            .map(|s| s.kind.clone())
    }

    pub fn object_count(&self) -> usize {
        self.services.len() + self.slices.len() + self.pods.len() + self.explicit_namespaces.len()
    }

    /// Builds a writer holding all these objects.
    pub fn from_objects(objects: impl IntoIterator<Item = ClusterObject>) -> Self {
        Self::from_objects_with(objects, EndpointOptions::default())
    }

    /// [`Self::from_objects`] with the EndpointSlice options.
    pub fn from_objects_with(
        objects: impl IntoIterator<Item = ClusterObject>,
        endpoints: EndpointOptions,
    ) -> Self {
        let mut writer = Self::new().with_endpoints(endpoints);
        for object in objects {
            writer.apply(object);
        }
        writer
    }

    /// How EndpointSlices are served; set before any object is applied.
    pub fn with_endpoints(mut self, endpoints: EndpointOptions) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Serves only namespaces applied as objects (`namespace_labels`); set
    /// before any object is applied.
    pub fn with_namespace_gate(mut self) -> Self {
        self.namespace_gate = true;
        self
    }

    /// Whether what lives in `namespace` is served.
    fn exposed(&self, namespace: &str) -> bool {
        !self.namespace_gate || self.explicit_namespaces.contains(namespace)
    }

    pub fn apply(&mut self, object: ClusterObject) {
        if !self.relists.is_empty() {
            let object_ref = object.object_ref();
            if let Some(seen) = self.relists.get_mut(&object_ref.kind) {
                let key = match object_ref.kind {
                    Kind::Namespace => object_ref.name,
                    _ => key(&object_ref.name, &object_ref.namespace),
                };
                seen.insert(key);
            }
        }
        match object {
            ClusterObject::Service(service) => self.upsert_service(service),
            ClusterObject::EndpointSlice(slice) => self.upsert_slice(slice),
            ClusterObject::Pod(pod) => self.upsert_pod(pod),
            ClusterObject::Namespace(namespace) => self.upsert_namespace(namespace),
        }
    }

    pub fn upsert_service(&mut self, service: ServiceInfo) {
        let key = key(&service.name, &service.namespace);
        let namespace = service.namespace.clone();
        if self.services.insert(key.clone(), service).is_none() {
            self.add_namespace_ref(&namespace);
        }
        self.refresh_service(&key);
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        let key = key(name, namespace);
        if let Some(service) = self.services.remove(&key) {
            self.drop_namespace_ref(&service.namespace);
            self.refresh_service(&key);
        }
    }

    pub fn upsert_slice(&mut self, slice: EndpointSliceInfo) {
        if self.endpoints.disabled {
            return;
        }
        let slice_key = key(&slice.name, &slice.namespace);
        let new_owner = slice.service.as_ref().map(|s| key(s, &slice.namespace));
        let namespace = slice.namespace.clone();
        let old = self.slices.insert(slice_key.clone(), slice);
        let old_owner = match &old {
            Some(old) => old.service.as_ref().map(|s| key(s, &old.namespace)),
            None => {
                self.add_namespace_ref(&namespace);
                None
            }
        };
        if old_owner != new_owner
            && let Some(owner) = &old_owner
        {
            self.unlink_slice(owner, &slice_key);
            self.refresh_service(owner);
        }
        if let Some(owner) = &new_owner {
            self.slices_by_service
                .entry(owner.clone())
                .or_default()
                .insert(slice_key);
            self.refresh_service(owner);
        }
    }

    pub fn remove_slice(&mut self, namespace: &str, name: &str) {
        let slice_key = key(name, namespace);
        let Some(old) = self.slices.remove(&slice_key) else {
            return;
        };
        self.drop_namespace_ref(&old.namespace);
        if let Some(service) = &old.service {
            let owner = key(service, &old.namespace);
            self.unlink_slice(&owner, &slice_key);
            self.refresh_service(&owner);
        }
    }

    pub fn upsert_pod(&mut self, pod: PodInfo) {
        let pod_key = key(&pod.name, &pod.namespace);
        let namespace = pod.namespace.clone();
        let exposed = self.exposed(&namespace);
        match self.pods.insert(pod_key, pod.clone()) {
            Some(old) if exposed => self.unindex_pod(&old),
            Some(_) => {}
            None => self.add_namespace_ref(&namespace),
        }
        if exposed {
            self.index_pod(&pod);
        }
    }

    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        if let Some(old) = self.pods.remove(&key(name, namespace)) {
            if self.exposed(namespace) {
                self.unindex_pod(&old);
            }
            self.drop_namespace_ref(&old.namespace);
        }
    }

    pub fn upsert_namespace(&mut self, namespace: Arc<str>) {
        if self.explicit_namespaces.insert(namespace.clone()) {
            self.sync_namespace(&namespace);
            if self.namespace_gate {
                self.namespace_exposure_changed(&namespace, true);
            }
        }
    }

    pub fn remove_namespace(&mut self, namespace: &str) {
        if let Some(namespace) = self.explicit_namespaces.take(namespace) {
            self.sync_namespace(&namespace);
            if self.namespace_gate {
                self.namespace_exposure_changed(&namespace, false);
            }
        }
    }

    /// A namespace came into or left the selection (`namespace_labels`): its
    /// services and pods are served or hidden. Called once the selection
    /// (`explicit_namespaces`) says so.
    fn namespace_exposure_changed(&mut self, namespace: &str, exposed: bool) {
        let services: Vec<Arc<str>> = self
            .services
            .iter()
            .filter(|(_, s)| &*s.namespace == namespace)
            .map(|(k, _)| k.clone())
            .collect();
        let pods: Vec<PodInfo> = self
            .pods
            .values()
            .filter(|p| &*p.namespace == namespace)
            .cloned()
            .collect();
        for pod in &pods {
            if exposed {
                self.index_pod(pod);
            } else {
                self.unindex_pod(pod);
            }
        }
        for key in &services {
            self.refresh_service(key);
        }
    }

    /// The current snapshot, stamped with a new serial if anything changed.
    pub fn snapshot(&mut self) -> Snapshot {
        if self.dirty {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            // Serials only move forward, even within one second or if the clock steps back.
            let now = u32::try_from(now).unwrap_or(u32::MAX);
            self.snapshot.serial = now.max(self.snapshot.serial.wrapping_add(1));
            self.dirty = false;
        }
        self.snapshot.clone()
    }

    /// Publishes the current snapshot for readers.
    pub fn publish(&mut self, shared: &ArcSwap<Snapshot>) {
        shared.store(Arc::new(self.snapshot()));
    }

    fn unlink_slice(&mut self, owner: &Arc<str>, slice_key: &Arc<str>) {
        if let Some(set) = self.slices_by_service.get_mut(owner) {
            set.remove(slice_key);
            if set.is_empty() {
                self.slices_by_service.remove(owner);
            }
        }
    }

    /// Recomputes one service's records and patches the snapshot.
    fn refresh_service(&mut self, key: &Arc<str>) {
        let new = self
            .services
            .get(key)
            .filter(|s| self.exposed(&s.namespace))
            .map(|service| {
                let slice_keys = self.slices_by_service.get(key);
                // Slice-name order keeps answers stable across rebuilds.
                let slices: BTreeMap<&str, &EndpointSliceInfo> = slice_keys
                    .into_iter()
                    .flatten()
                    .filter_map(|k| self.slices.get(k).map(|s| (&*s.name, s)))
                    .collect();
                Arc::new(ServiceRecords::build(
                    service,
                    slices.into_values(),
                    self.endpoints.pod_names,
                ))
            });
        let old = match &new {
            Some(records) => self.snapshot.services.insert(key.clone(), records.clone()),
            None => self.snapshot.services.remove(key),
        };
        if old == new {
            return;
        }
        self.dirty = true;
        if let Some(old) = &old {
            for (ip, _, _) in old.ptr_owners() {
                self.remove_ptr(ip, key);
            }
        }
        if let Some(new) = &new {
            for (ip, is_endpoint, hostname) in new.ptr_owners() {
                self.add_ptr(
                    ip,
                    PtrTarget {
                        is_endpoint,
                        service: key.clone(),
                        hostname: hostname.cloned(),
                    },
                );
            }
        }
    }

    fn remove_ptr(&mut self, ip: IpAddr, service: &Arc<str>) {
        if let Some(targets) = self.snapshot.reverse.get(&ip) {
            let kept: Vec<PtrTarget> = targets
                .iter()
                .filter(|t| &t.service != service)
                .cloned()
                .collect();
            if kept.is_empty() {
                self.snapshot.reverse.remove(&ip);
            } else if kept.len() != targets.len() {
                self.snapshot.reverse.insert(ip, kept.into());
            }
        }
    }

    fn add_ptr(&mut self, ip: IpAddr, target: PtrTarget) {
        let mut targets: Vec<PtrTarget> = self
            .snapshot
            .reverse
            .get(&ip)
            .map(|t| t.to_vec())
            .unwrap_or_default();
        if let Err(position) = targets.binary_search(&target) {
            targets.insert(position, target);
        }
        self.snapshot.reverse.insert(ip, targets.into());
    }

    fn index_pod(&mut self, pod: &PodInfo) {
        for ip in &pod.ips {
            let mut namespaces: Vec<Arc<str>> = self
                .snapshot
                .pod_ips
                .get(ip)
                .map(|n| n.to_vec())
                .unwrap_or_default();
            namespaces.push(pod.namespace.clone());
            self.snapshot.pod_ips.insert(*ip, namespaces.into());
        }
        self.dirty |= !pod.ips.is_empty();
    }

    fn unindex_pod(&mut self, pod: &PodInfo) {
        for ip in &pod.ips {
            if let Some(namespaces) = self.snapshot.pod_ips.get(ip) {
                let mut namespaces = namespaces.to_vec();
                // Remove one occurrence: host-network pods share an address.
                if let Some(position) = namespaces.iter().position(|n| *n == pod.namespace) {
                    namespaces.remove(position);
                }
                if namespaces.is_empty() {
                    self.snapshot.pod_ips.remove(ip);
                } else {
                    self.snapshot.pod_ips.insert(*ip, namespaces.into());
                }
            }
        }
        self.dirty |= !pod.ips.is_empty();
    }

    fn add_namespace_ref(&mut self, namespace: &Arc<str>) {
        *self.namespace_refs.entry(namespace.clone()).or_default() += 1;
        self.sync_namespace(namespace);
    }

    fn drop_namespace_ref(&mut self, namespace: &Arc<str>) {
        if let Some(count) = self.namespace_refs.get_mut(namespace) {
            *count -= 1;
            if *count == 0 {
                self.namespace_refs.remove(namespace);
            }
        }
        self.sync_namespace(namespace);
    }

    /// A namespace exists while it is declared or anything lives in it.
    fn sync_namespace(&mut self, namespace: &Arc<str>) {
        // Behind the gate only a selected namespace exists (CoreDNS: not exposed).
        let exists = self.explicit_namespaces.contains(namespace)
            || (!self.namespace_gate && self.namespace_refs.contains_key(namespace));
        let listed = self.snapshot.namespaces.contains(namespace);
        if exists && !listed {
            self.snapshot.namespaces.insert(namespace.clone());
            self.dirty = true;
        } else if !exists && listed {
            self.snapshot.namespaces.remove(namespace);
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests;

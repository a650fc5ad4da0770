//! Kubernetes objects reduced to what DNS needs.
//!
//! Every source (manifest files today, the API server later) converts the
//! k8s-openapi objects it receives into these compact values before anything
//! is kept, so the index never holds managed fields, annotations or pod specs.

mod convert;

pub use convert::{
    ConvertError, dns_label_problem, endpoint_slice_info, endpoint_slice_info_noting,
    namespace_name, pod_info, pod_info_noting, service_info, service_info_noting,
};

use std::net::IpAddr;
use std::sync::Arc;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port as DNS sees it: `_name._protocol` plus the number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// Lower-cased port name; `None` for unnamed ports (they get no `_name._proto` SRV).
    pub name: Option<Box<str>>,
    /// Lower-cased protocol (`tcp`, `udp`, `sctp`).
    pub protocol: Box<str>,
    pub port: u16,
}

/// What a Service publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// ClusterIP, NodePort and LoadBalancer services: their cluster IPs (both families when dual-stack).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: the ready endpoints are the answer.
    Headless,
    /// `type: ExternalName`: a CNAME to this lower-cased name, or `None` when the
    /// external name is an IP address or not a valid domain name (nothing is served then).
    ExternalName(Option<Box<str>>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub kind: ServiceKind,
    pub ports: Vec<PortInfo>,
    /// Where it is reached from outside the cluster (`k8s_external`).
    pub external: Vec<ExternalAddress>,
}

/// An address a Service is reached at from outside the cluster:
/// `spec.externalIPs`, then `status.loadBalancer.ingress` (its `ip`, else its
/// `hostname`), as CoreDNS reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalAddress {
    Ip(IpAddr),
    /// A load balancer known by name (lower case): a CNAME.
    Hostname(Box<str>),
}

/// One ready address of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint's `hostname`, lower-cased, when it has one.
    pub hostname: Option<Box<str>>,
    pub ip: IpAddr,
    /// The name of the Pod it points at (`targetRef`), lower-cased, when that
    /// is one DNS label (CoreDNS `endpoint_pod_names`).
    pub pod: Option<Box<str>>,
}

/// What is served from EndpointSlices (CoreDNS `kubernetes` options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// An endpoint without a hostname is named after its Pod, not its address
    /// (`endpoint_pod_names`).
    pub pod_names: bool,
    /// EndpointSlices are not read at all (`noendpoints`): headless Services
    /// and endpoint names do not resolve.
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// From the `kubernetes.io/service-name` label; a slice without it serves nothing.
    pub service: Option<Arc<str>>,
    /// Ready endpoints only (`conditions.ready` true or absent).
    pub endpoints: Vec<EndpointInfo>,
    /// The slice's ports (target ports), shared by all its endpoints.
    pub ports: Arc<[PortInfo]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
}

/// Any object a source hands to the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterObject {
    Service(ServiceInfo),
    EndpointSlice(EndpointSliceInfo),
    Pod(PodInfo),
    Namespace(Arc<str>),
}

/// The kinds of object the index is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Service,
    EndpointSlice,
    Pod,
    Namespace,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Pod,
        Kind::Namespace,
    ];

    /// The API resource, as RBAC names it.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices.discovery.k8s.io",
            Kind::Pod => "pods",
            Kind::Namespace => "namespaces",
        }
    }
}

impl Kind {
    /// The object kind as manifests spell it (`kind: Service`).
    pub fn object_kind(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Pod => "Pod",
            Kind::Namespace => "Namespace",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.resource())
    }
}

/// Names one object; a Namespace's `namespace` is its own name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// `Service default/web`, `Namespace team`: how log lines name an object.
impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Namespace => write!(f, "Namespace {}", self.name),
            kind => write!(f, "{} {}/{}", kind.object_kind(), self.namespace, self.name),
        }
    }
}

impl ClusterObject {
    pub fn object_ref(&self) -> ObjectRef {
        let (kind, namespace, name) = match self {
            ClusterObject::Service(s) => (Kind::Service, &s.namespace, &s.name),
            ClusterObject::EndpointSlice(s) => (Kind::EndpointSlice, &s.namespace, &s.name),
            ClusterObject::Pod(p) => (Kind::Pod, &p.namespace, &p.name),
            ClusterObject::Namespace(n) => (Kind::Namespace, n, n),
        };
        ObjectRef {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
        }
    }
}

//! Pure conversions from k8s-openapi objects to the compact cluster values.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    EndpointInfo, EndpointSliceInfo, PodInfo, PortInfo, SERVICE_NAME_LABEL, ServiceInfo,
    ServiceKind,
};

/// Why an object could not be turned into records.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("{kind} has no metadata.name")]
    MissingName { kind: &'static str },
}

fn name_and_namespace(
    meta: &ObjectMeta,
    kind: &'static str,
) -> Result<(Arc<str>, Arc<str>), ConvertError> {
    let name = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(ConvertError::MissingName { kind })?;
    // Like kubectl, an object without a namespace lives in `default`.
    let namespace = meta
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    Ok((lower(name), lower(namespace)))
}

fn lower(s: &str) -> Arc<str> {
    Arc::from(s.to_ascii_lowercase())
}

/// Why a name cannot be served as one DNS label (a Service or a namespace name),
/// or `None` when it can. Checked on the lower-cased name, as it is served.
pub fn dns_label_problem(name: &str) -> Option<String> {
    if name.len() > 63 {
        return Some(format!(
            "name is {} characters long, above the 63 of a DNS label",
            name.len()
        ));
    }
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!valid).then(|| {
        format!(
            "name {name:?} is not a DNS label (letters, digits and '-', \
             starting and ending with a letter or digit)"
        )
    })
}

/// The addresses among `values`; each value that is not one adds a note naming `field`.
fn parse_ips<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a String>,
    notes: &mut Vec<String>,
) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for value in values {
        let trimmed = value.trim();
        match trimmed.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            // Unset, as in a manifest written before the address was allocated.
            Err(_) if trimmed.is_empty() => {}
            Err(_) => notes.push(format!("{field} {value:?} is not an IP address; ignored")),
        }
    }
    ips
}

/// Runs a noting conversion for a source that has no one to tell (the API
/// server validates what it stores): its notes go to the debug log.
fn quietly<T, O>(object: &T, convert: fn(&T, &mut Vec<String>) -> O) -> O {
    let mut notes = Vec::new();
    let result = convert(object, &mut notes);
    for note in notes {
        tracing::debug!("{note}");
    }
    result
}

fn port_info(name: Option<&str>, protocol: Option<&str>, port: i32) -> Option<PortInfo> {
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    Some(PortInfo {
        name: name
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase().into_boxed_str()),
        protocol: protocol
            .filter(|p| !p.is_empty())
            .unwrap_or("TCP")
            .to_ascii_lowercase()
            .into_boxed_str(),
        port,
    })
}

/// A valid external name as a lower-cased domain without the trailing dot.
fn external_target(value: &str) -> Option<Box<str>> {
    let value = value.trim().trim_end_matches('.');
    if value.is_empty() || value.parse::<IpAddr>().is_ok() {
        return None;
    }
    let valid = value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| value.to_ascii_lowercase().into_boxed_str())
}

pub fn service_info(service: &Service) -> Result<ServiceInfo, ConvertError> {
    quietly(service, service_info_noting)
}

/// [`service_info`], adding a note for each value it ignores.
pub fn service_info_noting(
    service: &Service,
    notes: &mut Vec<String>,
) -> Result<ServiceInfo, ConvertError> {
    let (name, namespace) = name_and_namespace(&service.metadata, "Service")?;
    let spec = service.spec.clone().unwrap_or_default();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let value = spec.external_name.as_deref().unwrap_or_default();
        let target = external_target(value);
        if target.is_none() {
            notes.push(format!(
                "spec.externalName {value:?} is not a domain name; no CNAME is served"
            ));
        }
        ServiceKind::ExternalName(target)
    } else if spec.cluster_ip.as_deref() == Some("None")
        || spec
            .cluster_ips
            .as_ref()
            .is_some_and(|ips| ips.first().map(String::as_str) == Some("None"))
    {
        ServiceKind::Headless
    } else {
        let mut values: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
        if let Some(ip) = &spec.cluster_ip
            && !values.contains(ip)
        {
            values.insert(0, ip.clone());
        }
        ServiceKind::ClusterIp(parse_ips("spec.clusterIP(s)", &values, notes))
    };
    let mut ports = Vec::new();
    for (index, p) in spec.ports.iter().flatten().enumerate() {
        match port_info(p.name.as_deref(), p.protocol.as_deref(), p.port) {
            Some(port) => ports.push(port),
            None => notes.push(format!(
                "spec.ports[{index}].port {} is not a port number; ignored",
                p.port
            )),
        }
    }
    let external = external_addresses(service, &spec, notes);
    Ok(ServiceInfo {
        namespace,
        name,
        kind,
        ports,
        external,
    })
}

/// `spec.externalIPs`, then each `status.loadBalancer.ingress` (its IP, else
/// its hostname), without repeats.
fn external_addresses(
    service: &Service,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    notes: &mut Vec<String>,
) -> Vec<super::ExternalAddress> {
    use super::ExternalAddress;
    let mut out: Vec<ExternalAddress> = parse_ips(
        "spec.externalIPs",
        spec.external_ips.iter().flatten(),
        notes,
    )
    .into_iter()
    .map(ExternalAddress::Ip)
    .collect();
    let ingress = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (index, entry) in ingress.into_iter().flatten().enumerate() {
        let address = if let Some(ip) = entry.ip.as_deref().filter(|ip| !ip.is_empty()) {
            match ip.trim().parse::<IpAddr>() {
                Ok(ip) => ExternalAddress::Ip(ip),
                Err(_) => {
                    notes.push(format!(
                        "status.loadBalancer.ingress[{index}].ip {ip:?} is not an IP address; ignored"
                    ));
                    continue;
                }
            }
        } else if let Some(hostname) = entry.hostname.as_deref().filter(|h| !h.is_empty()) {
            match external_target(hostname) {
                Some(name) => ExternalAddress::Hostname(name),
                None => {
                    notes.push(format!(
                        "status.loadBalancer.ingress[{index}].hostname {hostname:?} is not a domain name; ignored"
                    ));
                    continue;
                }
            }
        } else {
            continue;
        };
        if !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

pub fn endpoint_slice_info(slice: &EndpointSlice) -> Result<EndpointSliceInfo, ConvertError> {
    quietly(slice, endpoint_slice_info_noting)
}

/// [`endpoint_slice_info`], adding a note for each value it ignores.
pub fn endpoint_slice_info_noting(
    slice: &EndpointSlice,
    notes: &mut Vec<String>,
) -> Result<EndpointSliceInfo, ConvertError> {
    let (name, namespace) = name_and_namespace(&slice.metadata, "EndpointSlice")?;
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        .filter(|s| !s.is_empty())
        .map(|s| lower(s));
    // FQDN slices are deprecated and carry no addresses DNS could serve.
    let serves_ips = matches!(slice.address_type.as_str(), "IPv4" | "IPv6");
    let mut endpoints = Vec::new();
    if serves_ips {
        for (index, endpoint) in slice.endpoints.iter().flatten().enumerate() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            let hostname = endpoint
                .hostname
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(|h| h.to_ascii_lowercase().into_boxed_str());
            // CoreDNS `endpoint_pod_names` uses a Pod's name only as one label.
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|target| target.kind.as_deref() == Some("Pod"))
                .and_then(|target| target.name.as_deref())
                .map(str::to_ascii_lowercase)
                .filter(|name| dns_label_problem(name).is_none())
                .map(String::into_boxed_str);
            let field = format!("endpoints[{index}].addresses");
            for ip in parse_ips(&field, &endpoint.addresses, notes) {
                endpoints.push(EndpointInfo {
                    hostname: hostname.clone(),
                    ip,
                    pod: pod.clone(),
                });
            }
        }
    }
    let ports: Vec<PortInfo> = slice
        .ports
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, p)| {
            let port = port_info(
                p.name.as_deref(),
                p.protocol.as_deref(),
                p.port.unwrap_or(0),
            );
            // An unset port is allowed (it means "all ports"); a wrong one is not.
            if port.is_none()
                && let Some(number) = p.port
            {
                notes.push(format!(
                    "ports[{index}].port {number} is not a port number; ignored"
                ));
            }
            port
        })
        .collect();
    Ok(EndpointSliceInfo {
        namespace,
        name,
        service,
        endpoints,
        ports: ports.into(),
    })
}

pub fn pod_info(pod: &Pod) -> Result<PodInfo, ConvertError> {
    quietly(pod, pod_info_noting)
}

/// [`pod_info`], adding a note for each value it ignores.
pub fn pod_info_noting(pod: &Pod, notes: &mut Vec<String>) -> Result<PodInfo, ConvertError> {
    let (name, namespace) = name_and_namespace(&pod.metadata, "Pod")?;
    let status = pod.status.as_ref();
    let mut values: Vec<String> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|ip| ip.ip.clone()).collect())
        .unwrap_or_default();
    if let Some(ip) = status.and_then(|s| s.pod_ip.as_ref())
        && !values.contains(ip)
    {
        values.insert(0, ip.clone());
    }
    Ok(PodInfo {
        namespace,
        name,
        ips: parse_ips("status.podIP(s)", &values, notes),
    })
}

pub fn namespace_name(namespace: &Namespace) -> Result<Arc<str>, ConvertError> {
    namespace
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(lower)
        .ok_or(ConvertError::MissingName { kind: "Namespace" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> ServiceInfo {
        service_info(&serde_json::from_value(value).expect("valid Service")).expect("converts")
    }

    fn slice(value: serde_json::Value) -> EndpointSliceInfo {
        endpoint_slice_info(&serde_json::from_value(value).expect("valid EndpointSlice"))
            .expect("converts")
    }

    #[test]
    fn cluster_ip_service_keeps_both_families_and_named_ports() {
        let s = service(json!({
            "metadata": {"name": "Web", "namespace": "prod"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1",
                     "clusterIPs": ["10.0.0.1", "fd00::1"],
                     "ports": [{"name": "HTTP", "port": 80}, {"port": 53, "protocol": "UDP"}]}
        }));
        assert_eq!(&*s.name, "web");
        assert_eq!(&*s.namespace, "prod");
        assert_eq!(
            s.kind,
            ServiceKind::ClusterIp(vec![
                "10.0.0.1".parse().unwrap(),
                "fd00::1".parse().unwrap()
            ])
        );
        assert_eq!(s.ports[0].name.as_deref(), Some("http"));
        assert_eq!(&*s.ports[0].protocol, "tcp");
        assert_eq!(s.ports[1].name, None);
        assert_eq!(&*s.ports[1].protocol, "udp");
    }

    #[test]
    fn service_without_namespace_is_in_default() {
        let s = service(json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "None"}}));
        assert_eq!(&*s.namespace, "default");
        assert_eq!(s.kind, ServiceKind::Headless);
    }

    #[test]
    fn service_without_name_is_an_error() {
        let svc: Service = serde_json::from_value(json!({"metadata": {}})).unwrap();
        assert_eq!(
            service_info(&svc),
            Err(ConvertError::MissingName { kind: "Service" })
        );
    }

    #[test]
    fn external_name_is_validated() {
        let s = service(json!({"metadata": {"name": "db"},
            "spec": {"type": "ExternalName", "externalName": "DB.Example.com."}}));
        assert_eq!(
            s.kind,
            ServiceKind::ExternalName(Some("db.example.com".into()))
        );
        let s = service(json!({"metadata": {"name": "db"},
            "spec": {"type": "ExternalName", "externalName": "10.1.2.3"}}));
        assert_eq!(s.kind, ServiceKind::ExternalName(None));
        let s = service(json!({"metadata": {"name": "db"},
            "spec": {"type": "ExternalName", "externalName": "bad name"}}));
        assert_eq!(s.kind, ServiceKind::ExternalName(None));
    }

    #[test]
    fn slice_keeps_ready_endpoints_only() {
        let s = slice(json!({
            "metadata": {"name": "web-abc", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "nginx"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.1.0.1"], "hostname": "Web-0", "conditions": {"ready": true}},
                {"addresses": ["10.1.0.2"], "conditions": {},
                 "targetRef": {"kind": "Pod", "name": "Web-7c9f", "namespace": "default"}},
                {"addresses": ["10.1.0.3"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["not-an-ip"]}
            ],
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}, {"port": 0}]
        }));
        assert_eq!(s.service.as_deref(), Some("nginx"));
        assert_eq!(
            s.endpoints,
            vec![
                EndpointInfo {
                    hostname: Some("web-0".into()),
                    ip: "10.1.0.1".parse().unwrap(),
                    pod: None,
                },
                EndpointInfo {
                    hostname: None,
                    ip: "10.1.0.2".parse().unwrap(),
                    pod: Some("web-7c9f".into()),
                },
            ]
        );
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.ports[0].port, 8080);
    }

    #[test]
    fn fqdn_slices_and_unlabelled_slices_serve_nothing() {
        let s = slice(json!({
            "metadata": {"name": "x"}, "addressType": "FQDN",
            "endpoints": [{"addresses": ["example.com"]}]
        }));
        assert!(s.endpoints.is_empty());
        assert_eq!(s.service, None);
    }

    #[test]
    fn pod_ips_come_from_status() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"podIP": "10.2.0.5", "podIPs": [{"ip": "10.2.0.5"}, {"ip": "fd00::5"}]}
        }))
        .unwrap();
        let p = pod_info(&pod).unwrap();
        assert_eq!(
            p.ips,
            vec![
                "10.2.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
    }

    #[test]
    fn ignored_values_are_noted() {
        let mut notes = Vec::new();
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "a"},
            "spec": {"clusterIP": "300.1.1.1", "clusterIPs": ["300.1.1.1", "fd00::1", ""]}}))
        .unwrap();
        let s = service_info_noting(&svc, &mut notes).expect("converts");
        assert_eq!(
            s.kind,
            ServiceKind::ClusterIp(vec!["fd00::1".parse().unwrap()])
        );
        assert_eq!(
            notes,
            ["spec.clusterIP(s) \"300.1.1.1\" is not an IP address; ignored"]
        );
        let mut notes = Vec::new();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "status": {"podIP": "10.2.0.5", "podIPs": [{"ip": "10.2.0.5"}, {"ip": "nope"}]}}))
        .unwrap();
        assert_eq!(pod_info_noting(&pod, &mut notes).unwrap().ips.len(), 1);
        assert_eq!(
            notes,
            ["status.podIP(s) \"nope\" is not an IP address; ignored"]
        );
    }

    #[test]
    fn dns_labels_are_checked() {
        assert_eq!(dns_label_problem("web-0"), None);
        assert_eq!(dns_label_problem(&"a".repeat(63)), None);
        assert_eq!(
            dns_label_problem(&"a".repeat(64)).as_deref(),
            Some("name is 64 characters long, above the 63 of a DNS label")
        );
        for bad in ["-a", "a-", "a_b", "a.b", ""] {
            assert!(dns_label_problem(bad).is_some(), "{bad:?}");
        }
    }
}

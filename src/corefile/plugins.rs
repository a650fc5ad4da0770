//! What a Corefile's plugins mean for cluster-dns: each supported plugin and
//! option becomes configuration keys ([`Options`]), with CoreDNS's defaults for
//! what the Corefile leaves out; anything else is refused with its file and line.

use std::path::Path;
use std::time::Duration;

use super::CorefileError;
use super::lexer::Token;
use super::parse::{Directive, ServerBlock};
use crate::answer::PodsMode;
use crate::answer::template::TemplateSpec;
use crate::config::Options;

/// Plugins this version serves, in CoreDNS's plugin order.
pub const SUPPORTED: &[&str] = &[
    "timeouts",
    "bind",
    "debug",
    "reload",
    "errors",
    "log",
    "health",
    "bufsize",
    "any",
    "minimal",
    "whoami",
    "ready",
    "prometheus",
    "loadbalance",
    "cache",
    "rewrite",
    "template",
    "hosts",
    "k8s_external",
    "kubernetes",
    "loop",
    "forward",
];

/// CoreDNS's `cache` TTL cap when none is given (`plugin/cache`: `maxTTL`).
const CACHE_DEFAULT_TTL: u32 = 3600;
/// CoreDNS's cap on denials when `cache` has no TTL (`maxNTTL`).
const CACHE_DEFAULT_DENIAL_TTL: u32 = 1800;
/// CoreDNS's capacity of each kind (`defaultCap`).
const CACHE_DEFAULT_CAPACITY: usize = 9984;
/// CoreDNS's `kubernetes` TTL range (`plugin/kubernetes/setup.go`).
const MAX_KUBERNETES_TTL: u32 = 3600;
/// CoreDNS's default ports of the HTTP plugins.
const HEALTH_DEFAULT: &str = ":8080";
const READY_DEFAULT: &str = ":8181";
const PROMETHEUS_DEFAULT: &str = "localhost:9153";

fn error(token: &Token, message: String) -> CorefileError {
    CorefileError {
        file: token.file.to_path_buf(),
        line: token.line,
        message,
    }
}

/// The keys a Corefile's server blocks set: the root block `.:PORT` serves the
/// cluster and forwards the rest; a block for another zone on the same port
/// with only `forward . ADDR...` (and `errors`, `cache`, `loop`, `reload`) is a
/// stub domain.
pub fn options(file: &Path, blocks: &[ServerBlock]) -> Result<Options, CorefileError> {
    // Blocks from the parser always have an address; others are refused here.
    if let Some(block) = blocks.iter().find(|b| b.keys.is_empty()) {
        let (file, line) = block
            .directives
            .first()
            .map_or((file.to_path_buf(), 0), |d| {
                (d.name.file.to_path_buf(), d.name.line)
            });
        return Err(CorefileError {
            file,
            line,
            message: "a server block needs an address (e.g. `.:53`)".into(),
        });
    }
    let mut root = None;
    let mut stubs = Vec::new();
    for block in blocks {
        let addresses = addresses(block)?;
        if addresses.iter().any(|(zone, _, _)| zone.is_empty()) {
            if addresses.len() > 1 {
                return Err(error(
                    &block.keys[1],
                    "the root zone `.` shares its server block with another zone".into(),
                ));
            }
            if root.is_some() {
                return Err(error(
                    &block.keys[0],
                    "a second server block for the root zone `.`".into(),
                ));
            }
            root = Some((block, addresses[0].1));
        } else {
            stubs.push((block, addresses));
        }
    }
    let Some((block, port)) = root else {
        let (file, line) = blocks.first().map_or((file.to_path_buf(), 0), |b| {
            (b.keys[0].file.to_path_buf(), b.keys[0].line)
        });
        return Err(CorefileError {
            file,
            line,
            message: "no server block for the root zone `.` (e.g. `.:53 { kubernetes cluster.local; forward . /etc/resolv.conf }`)".into(),
        });
    };
    let mut options = root_block(block, port)?;
    let mut stub_domains = Vec::new();
    let mut stub_logs = Vec::new();
    let mut own_blocks = Vec::new();
    for (block, addresses) in stubs {
        if is_plain_stub(block) {
            let zones = block_zones(&addresses, port, &options)?;
            stub_domains.extend(stub_block(block, (&zones, port), &mut stub_logs)?);
        } else {
            own_blocks.push(own_block(block, &addresses, port, &options)?);
        }
    }
    if !stub_domains.is_empty() {
        options.stub_domains = Some(stub_domains);
    }
    if !own_blocks.is_empty() {
        options.blocks = Some(own_blocks);
    }
    if !stub_logs.is_empty() {
        // A stub domain's names are its block's: its rules come first.
        stub_logs.extend(options.query_logs.take().unwrap_or_default());
        options.query_logs = Some(stub_logs);
    }
    Ok(options)
}

/// The root block's keys.
fn root_block(block: &ServerBlock, port: u16) -> Result<Options, CorefileError> {
    let mut options = Options {
        // What CoreDNS does without the plugins that would say otherwise.
        cache_ttl: Some(0),
        loadbalance: Some(false),
        lameduck: Some(0),
        listen: Some(vec![format!(":{port}")]),
        ..Options::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    // CoreDNS orders plugins itself; `cache` reads the zones `kubernetes` sets.
    let mut directives: Vec<&Directive> = block.directives.iter().collect();
    directives.sort_by_key(|d| d.name.text != "kubernetes");
    for directive in directives {
        supported(directive, SUPPORTED, &mut seen)?;
        apply(directive, port, &mut options)?;
    }
    if !seen.contains(&"kubernetes") {
        return Err(error(
            &block.keys[0],
            "this server block has no `kubernetes`: cluster-dns serves a cluster zone (the root block needs the kubernetes plugin)".into(),
        ));
    }
    if !seen.contains(&"forward") {
        // Nothing is forwarded: other names get SERVFAIL, or `whoami`'s
        // answer, as with no plugin after `kubernetes` in CoreDNS.
        options.forward_except = Some(vec![".".into()]);
    }
    Ok(options)
}

/// Plugins a stub domain's block may hold.
const STUB_PLUGINS: &[&str] = &["errors", "log", "cache", "loop", "reload", "forward"];

/// Plugins a block of its own (`blocks`) may hold.
const BLOCK_PLUGINS: &[&str] = &[
    "errors", "log", "cache", "loop", "reload", "any", "minimal", "whoami", "rewrite", "template",
    "hosts", "forward",
];

/// A block that is only a stub domain: `forward . ADDR...` with no options,
/// and nothing else that answers (`stub_domains`).
fn is_plain_stub(block: &ServerBlock) -> bool {
    let forwards = block.directives.iter().any(|d| d.name.text == "forward");
    forwards
        && block.directives.iter().all(|d| match d.name.text.as_str() {
            "forward" => {
                d.block.is_empty()
                    && d.args.first().is_some_and(|from| from.text == ".")
                    && d.args[1..].iter().all(|to| {
                        crate::config::parse_upstream(to.text.trim_start_matches("dns://")).is_ok()
                    })
            }
            name => STUB_PLUGINS.contains(&name),
        })
}

/// A block's zones, each on the root block's port and clear of the cluster zones.
fn block_zones(
    addresses: &[(String, u16, &Token)],
    port: u16,
    root: &Options,
) -> Result<Vec<String>, CorefileError> {
    let cluster = root.zones.clone().unwrap_or_default();
    addresses
        .iter()
        .map(|(zone, zone_port, key)| {
            if *zone_port != port {
                return Err(error(
                    key,
                    format!("port {zone_port}: every server block must use the root block's port {port}"),
                ));
            }
            let inside = |outer: &str, inner: &str| {
                inner == outer || inner.ends_with(&format!(".{outer}"))
            };
            if cluster.iter().any(|c| inside(c, zone) || inside(zone, c)) {
                return Err(error(
                    key,
                    format!("zone {zone}: a server block of its own for a cluster zone is not supported yet"),
                ));
            }
            Ok(zone.clone())
        })
        .collect()
}

/// A block of its own: its plugins' keys, for its zones (`blocks`).
fn own_block(
    block: &ServerBlock,
    addresses: &[(String, u16, &Token)],
    port: u16,
    root: &Options,
) -> Result<Options, CorefileError> {
    let mut options = Options {
        zones: Some(block_zones(addresses, port, root)?),
        ..Options::default()
    };
    let mut seen = Vec::new();
    for directive in &block.directives {
        supported(directive, BLOCK_PLUGINS, &mut seen)?;
        match directive.name.text.as_str() {
            // One cache holds every forwarded name (checked, shared).
            "cache" => cache(directive, &mut Options::default())?,
            _ => apply(directive, port, &mut options)?,
        }
    }
    if !seen.contains(&"forward") {
        // Nothing after its plugins: SERVFAIL, or `whoami`'s answer.
        options.forward_except = Some(vec![".".into()]);
    }
    Ok(options)
}

/// A plain stub domain's `ZONE=ADDR,...` for each of the block's zones.
fn stub_block(
    block: &ServerBlock,
    (zones, port): (&[String], u16),
    logs: &mut Vec<crate::querylog::QueryLogSpec>,
) -> Result<Vec<String>, CorefileError> {
    let mut seen = Vec::new();
    let mut upstreams = None;
    for directive in &block.directives {
        supported(directive, STUB_PLUGINS, &mut seen)?;
        match directive.name.text.as_str() {
            "forward" => upstreams = Some(stub_upstreams(directive)?),
            "log" => logs.extend(log(directive, zones)?),
            // One cache holds every forwarded name.
            "cache" => cache(directive, &mut Options::default())?,
            _ => apply(directive, port, &mut Options::default())?,
        }
    }
    // A plain stub always has its `forward` (see `is_plain_stub`).
    let upstreams = upstreams.unwrap_or_default();
    Ok(zones
        .iter()
        .map(|zone| format!("{zone}={upstreams}"))
        .collect())
}

/// A plain stub domain's `forward . ADDR...` (addresses only), as `ADDR,ADDR`.
fn stub_upstreams(directive: &Directive) -> Result<String, CorefileError> {
    let mut stub = Options::default();
    forward(directive, &mut stub)?;
    Ok(stub.upstream.unwrap_or_default().join(","))
}

/// Checks that `directive` is one of `allowed` and not given twice.
fn supported<'a>(
    directive: &'a Directive,
    allowed: &[&str],
    seen: &mut Vec<&'a str>,
) -> Result<(), CorefileError> {
    let name = directive.name.text.as_str();
    if !allowed.contains(&name) {
        let message = if SUPPORTED.contains(&name) {
            format!(
                "plugin {name} is not supported in a server block other than the root's (supported there: {})",
                allowed.join(", ")
            )
        } else {
            format!(
                "plugin {name} is not supported (supported: {})",
                allowed.join(", ")
            )
        };
        return Err(error(&directive.name, message));
    }
    // Templates, rewrites, logs and binds add up; every other plugin is once per block.
    if seen.contains(&name) && !matches!(name, "template" | "rewrite" | "log" | "bind") {
        return Err(error(
            &directive.name,
            format!("plugin {name} is given twice in this server block"),
        ));
    }
    seen.push(name);
    Ok(())
}

/// Each address of a block: zone (lower case, no trailing dot; empty for the
/// root), port (53 when not given), and its token.
fn addresses(block: &ServerBlock) -> Result<Vec<(String, u16, &Token)>, CorefileError> {
    let mut out = Vec::new();
    for key in &block.keys {
        if key.text.contains("://") && !key.text.starts_with("dns://") {
            return Err(error(
                key,
                format!("{}: only plain DNS (dns://) is served", key.text),
            ));
        }
        let text = key.text.strip_prefix("dns://").unwrap_or(&key.text);
        let (zone, port) = match text.rsplit_once(':') {
            Some((zone, p)) => {
                let p = p
                    .parse::<u16>()
                    .map_err(|_| error(key, format!("{p:?} is not a valid port")))?;
                (zone, p)
            }
            None => (text, 53),
        };
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        out.push((zone, port, key));
    }
    Ok(out)
}

fn apply(d: &Directive, port: u16, o: &mut Options) -> Result<(), CorefileError> {
    match d.name.text.as_str() {
        "errors" | "loop" => no_block(d).and_then(|()| at_most_args(d, 0)),
        "reload" => {
            // Intervals are accepted; cluster-dns checks the file every 2 s.
            at_most_args(d, 2)?;
            for arg in &d.args {
                duration(arg)?;
            }
            no_block(d)
        }
        "loadbalance" => {
            at_most_args(d, 1)?;
            if let Some(policy) = d.args.first()
                && policy.text != "round_robin"
            {
                return Err(error(
                    policy,
                    format!(
                        "loadbalance policy {:?} is not supported (supported: round_robin)",
                        policy.text
                    ),
                ));
            }
            no_block(d)?;
            o.loadbalance = Some(true);
            Ok(())
        }
        // Panics are always recovered (and counted); with `debug` CoreDNS would crash.
        "debug" => no_block(d).and_then(|()| at_most_args(d, 0)),
        "timeouts" => timeouts(d, o),
        "bind" => {
            if d.args.is_empty() {
                return Err(error(&d.name, "bind: expected at least one address".into()));
            }
            no_block(d)?;
            let mut listen = Vec::new();
            for arg in &d.args {
                let ip: std::net::IpAddr = arg.text.parse().map_err(|_| {
                    error(
                        arg,
                        format!(
                            "bind: {:?} is not an IP address (interface names are not supported)",
                            arg.text
                        ),
                    )
                })?;
                listen.push(std::net::SocketAddr::new(ip, port).to_string());
            }
            // Several `bind` lines add up (CoreDNS merges them); the first
            // replaces the block's wildcard.
            let wildcard = format!(":{port}");
            match &mut o.listen {
                Some(bound) if !bound.contains(&wildcard) => bound.extend(listen),
                other => *other = Some(listen),
            }
            Ok(())
        }
        "health" => {
            at_most_args(d, 1)?;
            o.health_listen = Some(http_address(d.args.first(), HEALTH_DEFAULT));
            for line in &d.block {
                match line.name.text.as_str() {
                    "lameduck" => {
                        exactly_args(line, 1)?;
                        let lameduck = duration(&line.args[0])?;
                        if lameduck.subsec_nanos() != 0 {
                            return Err(error(
                                &line.args[0],
                                "lameduck: whole seconds only".into(),
                            ));
                        }
                        o.lameduck = Some(lameduck.as_secs());
                    }
                    _ => return Err(unknown_option(d, line)),
                }
            }
            Ok(())
        }
        "ready" => {
            at_most_args(d, 1)?;
            no_block(d)?;
            o.ready_listen = Some(http_address(d.args.first(), READY_DEFAULT));
            Ok(())
        }
        "prometheus" => {
            at_most_args(d, 1)?;
            no_block(d)?;
            o.metrics_listen = Some(http_address(d.args.first(), PROMETHEUS_DEFAULT));
            Ok(())
        }
        "kubernetes" => kubernetes(d, o),
        "k8s_external" => k8s_external(d, o),
        "hosts" => hosts(d, o),
        "template" => template(d, o),
        "rewrite" => rewrite(d, o),
        "any" | "minimal" | "whoami" => {
            exactly_args(d, 0)?;
            no_block(d)?;
            let key = match d.name.text.as_str() {
                "any" => &mut o.any,
                "minimal" => &mut o.minimal,
                _ => &mut o.whoami,
            };
            *key = Some(true);
            Ok(())
        }
        "bufsize" => {
            at_most_args(d, 1)?;
            no_block(d)?;
            // CoreDNS plugin/bufsize/setup.go: 512 to 4096, 1232 when not given.
            let size = match d.args.first() {
                None => crate::answer::DEFAULT_BUFSIZE,
                Some(token) => token
                    .text
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (512..=4096).contains(n))
                    .ok_or_else(|| {
                        error(token, "bufsize: expected a size from 512 to 4096".into())
                    })?,
            };
            o.bufsize = Some(size);
            Ok(())
        }
        "log" => {
            let specs = log(d, &[])?;
            o.query_logs.get_or_insert_with(Vec::new).extend(specs);
            Ok(())
        }
        "forward" => forward(d, o),
        "cache" => cache(d, o),
        _ => Err(error(
            &d.name,
            format!("plugin {} is not supported", d.name.text),
        )),
    }
}

/// `k8s_external ZONES... { apex APEX; ttl TTL; headless }`, as CoreDNS's
/// plugin/k8s_external/setup.go reads it. Without zones it would take the
/// block's (the root: every name), which is refused.
fn k8s_external(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    if d.args.is_empty() {
        return Err(error(
            &d.name,
            "k8s_external: name its zones (in the root block it would take every name)".into(),
        ));
    }
    let mut zones = Vec::new();
    for zone in &d.args {
        if zone.text.contains('/') {
            return Err(error(
                zone,
                "k8s_external: reverse zones (CIDRs) are not supported".into(),
            ));
        }
        crate::config::parse_zone(&zone.text)
            .map_err(|m| error(zone, format!("k8s_external: {m}")))?;
        zones.push(zone.text.clone());
    }
    o.external_zones = Some(zones);
    for line in &d.block {
        match line.name.text.as_str() {
            "apex" => {
                exactly_args(line, 1)?;
                o.external_apex = Some(line.args[0].text.clone());
            }
            "ttl" => {
                exactly_args(line, 1)?;
                let ttl = line.args[0]
                    .text
                    .parse::<u32>()
                    .ok()
                    .filter(|t| *t <= MAX_KUBERNETES_TTL)
                    .ok_or_else(|| error(&line.args[0], "ttl: expected 0 to 3600".into()))?;
                o.external_ttl = Some(ttl);
            }
            "headless" => {
                exactly_args(line, 0)?;
                o.external_headless = Some(true);
            }
            _ => return Err(unknown_option(d, line)),
        }
    }
    Ok(())
}

/// `kubernetes [ZONES...] { ... }`
fn kubernetes(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let mut zones = Vec::new();
    for zone in &d.args {
        let text = zone.text.trim_end_matches('.').to_ascii_lowercase();
        if is_reverse(&text) {
            // Reverse zones are always served (PTR for every cluster address).
            continue;
        }
        if text.is_empty() {
            return Err(error(
                zone,
                "kubernetes: the root zone cannot be served".into(),
            ));
        }
        // RKE2's Corefile names cluster.local twice.
        if !zones.contains(&text) {
            zones.push(text);
        }
    }
    if zones.is_empty() {
        return Err(error(
            &d.name,
            "kubernetes: expected a cluster zone (e.g. cluster.local)".into(),
        ));
    }
    o.zones = Some(zones);
    for line in &d.block {
        kubernetes_option(d, line, o)?;
    }
    if o.namespaces.is_some() && o.namespace_labels.is_some() {
        return Err(error(
            &d.name,
            "kubernetes: namespaces and namespace_labels cannot both be set".into(),
        ));
    }
    Ok(())
}

/// A `labels`/`namespace_labels` line's selector: its words, as CoreDNS joins them.
fn label_selector(line: &Directive) -> Result<String, CorefileError> {
    if line.args.is_empty() {
        let message = format!("{}: expected a label selector", line.name.text);
        return Err(error(&line.name, message));
    }
    let words: Vec<&str> = line.args.iter().map(|a| a.text.as_str()).collect();
    Ok(words.join(" "))
}

/// One line of a `kubernetes` block.
fn kubernetes_option(
    d: &Directive,
    line: &Directive,
    o: &mut Options,
) -> Result<(), CorefileError> {
    let args = &line.args;
    match line.name.text.as_str() {
        "pods" => {
            exactly_args(line, 1)?;
            o.pods = Some(match args[0].text.as_str() {
                "disabled" => PodsMode::Disabled,
                "insecure" => PodsMode::Insecure,
                "verified" => PodsMode::Verified,
                other => {
                    return Err(error(
                        &args[0],
                        format!("pods: {other:?} is not one of disabled, insecure, verified"),
                    ));
                }
            });
        }
        "ttl" => {
            exactly_args(line, 1)?;
            let ttl = args[0]
                .text
                .parse::<u32>()
                .ok()
                .filter(|t| *t <= MAX_KUBERNETES_TTL)
                .ok_or_else(|| {
                    error(
                        &args[0],
                        format!(
                            "ttl: {:?} is not a number of seconds from 0 to {MAX_KUBERNETES_TTL}",
                            args[0].text
                        ),
                    )
                })?;
            o.ttl = Some(ttl);
        }
        "namespaces" => {
            if args.is_empty() {
                return Err(error(
                    &line.name,
                    "namespaces: expected at least one namespace".into(),
                ));
            }
            o.namespaces = Some(args.iter().map(|a| a.text.clone()).collect());
        }
        "namespace_labels" => o.namespace_labels = Some(label_selector(line)?),
        "labels" => o.labels = Some(label_selector(line)?),
        "kubeconfig" => {
            if args.is_empty() || args.len() > 2 {
                return Err(error(
                    &line.name,
                    "kubeconfig: expected KUBECONFIG [CONTEXT]".into(),
                ));
            }
            o.kubeconfig = Some(args[0].text.clone().into());
            o.context = args.get(1).map(|a| a.text.clone());
        }
        "endpoint" => {
            // CoreDNS takes several (deprecated) and uses the first.
            let Some(url) = args.first() else {
                return Err(error(&line.name, "endpoint: expected a URL".into()));
            };
            if args.len() > 1 {
                tracing::warn!(
                    "{}:{}: several endpoints are deprecated; only {} is used",
                    line.name.file.display(),
                    line.name.line,
                    url.text
                );
            }
            crate::config::parse_api_server(&url.text)
                .map_err(|message| error(url, format!("endpoint: {message}")))?;
            o.api_server = Some(url.text.clone());
        }
        "fallthrough" => {
            // Reverse names no cluster object owns always fall through.
            let mut zones = Vec::new();
            for zone in args {
                crate::config::parse_domain(&zone.text)
                    .map_err(|message| error(zone, format!("fallthrough: {message}")))?;
                if !is_reverse(&zone.text.trim_end_matches('.').to_ascii_lowercase()) {
                    zones.push(zone.text.clone());
                }
            }
            if args.is_empty() {
                zones.push(".".into());
            }
            if !zones.is_empty() {
                o.fallthrough = Some(zones);
            }
        }
        "ignore" => {
            exactly_args(line, 1)?;
            if args[0].text != "empty_service" {
                return Err(error(
                    &args[0],
                    format!(
                        "ignore: {:?} is not supported (supported: empty_service)",
                        args[0].text
                    ),
                ));
            }
            o.ignore_empty_service = Some(true);
        }
        "endpoint_pod_names" => {
            exactly_args(line, 0)?;
            o.endpoint_pod_names = Some(true);
        }
        "noendpoints" => {
            exactly_args(line, 0)?;
            o.endpoints = Some(false);
        }
        _ => return Err(unknown_option(d, line)),
    }
    Ok(())
}

/// `hosts [FILE [ZONES...]] { ENTRIES...; ttl; reload; no_reverse; fallthrough }`
fn hosts(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let file = d.args.first().map_or("/etc/hosts", |a| a.text.as_str());
    let mut zones = Vec::new();
    for zone in d.args.iter().skip(1) {
        crate::config::parse_domain(&zone.text)
            .map_err(|message| error(zone, format!("hosts: {message}")))?;
        zones.push(zone.text.clone());
    }
    // The root zone (or none named): every name.
    if !zones.is_empty() && !zones.iter().any(|z| z == ".") {
        o.hosts_zones = Some(zones);
    }
    o.hosts_file = Some(file.into());
    o.hosts_fallthrough = Some(false);
    let mut entries = Vec::new();
    for line in &d.block {
        let args = &line.args;
        match line.name.text.as_str() {
            "ttl" => {
                exactly_args(line, 1)?;
                let ttl = args[0]
                    .text
                    .parse::<u32>()
                    .ok()
                    .filter(|t| (1..=86_400).contains(t))
                    .ok_or_else(|| {
                        error(
                            &args[0],
                            format!(
                                "ttl: {:?} is not a number of seconds from 1 to 86400",
                                args[0].text
                            ),
                        )
                    })?;
                o.hosts_ttl = Some(ttl);
            }
            "reload" => {
                // Accepted; cluster-dns checks the file every 2 s.
                exactly_args(line, 1)?;
                duration(&args[0])?;
            }
            "no_reverse" => {
                exactly_args(line, 0)?;
                o.hosts_reverse = Some(false);
            }
            "fallthrough" => {
                let mut zones = Vec::new();
                for zone in args {
                    crate::config::parse_domain(&zone.text)
                        .map_err(|message| error(zone, format!("fallthrough: {message}")))?;
                    zones.push(zone.text.clone());
                }
                if !zones.is_empty() && !zones.iter().any(|z| z == ".") {
                    o.hosts_fallthrough_zones = Some(zones);
                }
                o.hosts_fallthrough = Some(true);
            }
            address if address.parse::<std::net::IpAddr>().is_ok() => {
                if args.is_empty() {
                    return Err(error(
                        &line.name,
                        format!("hosts entry {address}: expected a name after the address"),
                    ));
                }
                let names: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
                entries.push(format!("{address} {}", names.join(" ")));
            }
            _ => return Err(unknown_option(d, line)),
        }
    }
    if !entries.is_empty() {
        o.hosts = Some(entries);
    }
    Ok(())
}

/// `template CLASS TYPE [ZONES...] { match, answer, additional, authority,
/// rcode, fallthrough }`. The rcode-only form for the root zone (CoreDNS's
/// AAAA blocker) becomes `type_rcodes`, which the fast path checks for free,
/// unless a full template came first (Corefile order decides then).
fn template(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let spec = template_spec(d)?;
    crate::answer::template::Templates::compile(std::slice::from_ref(&spec))
        .map_err(|message| error(&d.name, format!("plugin/template: {message}")))?;
    let listed = |o: &Options| {
        o.type_rcodes
            .iter()
            .flatten()
            .any(|rule| rule.split('=').next() == Some(spec.qtype.as_str()))
    };
    // What `type_rcodes` can say: class IN, the four common rcodes, a type once.
    let rcode_only = spec.zones.iter().all(|z| z == ".")
        && spec.class == "IN"
        && matches!(
            spec.rcode.as_deref(),
            Some("NOERROR" | "NXDOMAIN" | "SERVFAIL" | "REFUSED")
        )
        && !listed(o)
        && spec.qtype != "ANY"
        && spec.matches.is_empty()
        && spec.answer.is_empty()
        && spec.additional.is_empty()
        && spec.authority.is_empty();
    match (&spec.rcode, &mut o.templates) {
        (Some(rcode), None) if rcode_only => {
            let rule = format!("{}={rcode}", spec.qtype);
            o.type_rcodes.get_or_insert_with(Vec::new).push(rule);
        }
        _ => o.templates.get_or_insert_with(Vec::new).push(spec),
    }
    Ok(())
}

/// The `template` directive as written.
fn template_spec(d: &Directive) -> Result<TemplateSpec, CorefileError> {
    let [class, qtype, zones @ ..] = &d.args[..] else {
        return Err(error(
            &d.name,
            "template: expected CLASS TYPE [ZONES...]".into(),
        ));
    };
    let mut spec = TemplateSpec {
        class: class.text.clone(),
        qtype: qtype.text.clone(),
        zones: zones.iter().map(|z| z.text.clone()).collect(),
        ..TemplateSpec::default()
    };
    for line in &d.block {
        let args = || line.args.iter().map(|a| a.text.clone());
        let at_least_one = || {
            if line.args.is_empty() {
                Err(error(
                    &line.name,
                    format!("template: {} needs an argument", line.name.text),
                ))
            } else {
                Ok(())
            }
        };
        match line.name.text.as_str() {
            "match" => {
                at_least_one()?;
                spec.matches.extend(args());
            }
            "answer" => {
                at_least_one()?;
                spec.answer.extend(args());
            }
            "additional" => {
                at_least_one()?;
                spec.additional.extend(args());
            }
            "authority" => {
                at_least_one()?;
                spec.authority.extend(args());
            }
            "rcode" => {
                exactly_args(line, 1)?;
                spec.rcode = Some(line.args[0].text.clone());
            }
            "fallthrough" => spec.fallthrough = Some(args().collect()),
            // Accepted and ignored by CoreDNS too ("remove soon").
            "upstream" => {}
            _ => {
                return Err(error(
                    &line.name,
                    format!(
                        "template option {} is not supported (supported: match, answer, additional, authority, rcode, fallthrough)",
                        line.name.text
                    ),
                ));
            }
        }
    }
    Ok(spec)
}

/// `--template TEXT`: the directive's text after `template`, read as a Corefile
/// reads it, with `;` outside quotes as a line break (one flag, one line).
pub fn template_flag(text: &str) -> Result<TemplateSpec, String> {
    let lines = semicolons_to_lines(text);
    let corefile = format!(". {{\ntemplate {lines}\n}}\n");
    let blocks = super::parse::parse(Path::new("--template"), &corefile, &|_| None)
        .map_err(|e| e.message)?;
    let directive = only_directive(&blocks).ok_or("expected one template (options go in `{ }`)")?;
    let spec = template_spec(directive).map_err(|e| e.message)?;
    crate::answer::template::Templates::compile(std::slice::from_ref(&spec))?;
    Ok(spec)
}

/// `timeouts { maxtcpqueries N }` (CoreDNS 1.13's cap on queries per TCP
/// connection; -1: none). Its read, write and idle timeouts are refused: the
/// TCP timeout is fixed at 10 s.
fn timeouts(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    at_most_args(d, 0)?;
    if d.block.is_empty() {
        return Err(error(
            &d.name,
            "timeouts: at least one timeout must be given".into(),
        ));
    }
    for line in &d.block {
        match line.name.text.as_str() {
            "maxtcpqueries" => {
                exactly_args(line, 1)?;
                let text = &line.args[0].text;
                let cap = match text.parse::<i64>() {
                    Ok(-1) => 0,
                    Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => {
                        return Err(error(
                            &line.args[0],
                            format!(
                                "timeouts: maxtcpqueries {text:?} is not a positive number or -1"
                            ),
                        ));
                    }
                };
                o.tcp_max_queries = Some(cap);
            }
            _ => {
                return Err(error(
                    &line.name,
                    format!(
                        "timeouts option {} is not supported (supported: maxtcpqueries)",
                        line.name.text
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `rewrite [continue|stop] name [MATCH] FROM TO [answer ...]`, or its block
/// form (`rewrite stop { name ...; answer ... }`, read only when the line has
/// fewer than two words, its words joined into one rule as CoreDNS does). The
/// rule is checked here, so an error names its line.
fn rewrite(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let mut words: Vec<&Token> = d.args.iter().collect();
    if words.len() < 2 {
        for line in &d.block {
            words.push(&line.name);
            words.extend(&line.args);
        }
    } else if let Some(line) = d.block.first() {
        return Err(error(
            &line.name,
            "rewrite: a block follows a rule of its own".into(),
        ));
    }
    if let Some(word) = words
        .iter()
        .find(|w| w.text.is_empty() || w.text.contains(char::is_whitespace))
    {
        return Err(error(
            word,
            format!("rewrite: the word {:?} holds a space", word.text),
        ));
    }
    let rule: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    crate::answer::rewrite::Rewrites::parse(std::slice::from_ref(&rule))
        .map_err(|message| error(&d.name, format!("plugin/rewrite: {message}")))?;
    o.rewrites.get_or_insert_with(Vec::new).push(rule.join(" "));
    Ok(())
}

/// `log [NAMES...] [FORMAT] { class CLASSES...; minDuration [DURATION] }`, as
/// CoreDNS's plugin/log/setup.go reads it: one rule per name (`block_zones`,
/// else the root, when none is given), the last argument the format if it
/// holds a `{`.
fn log(
    d: &Directive,
    block_zones: &[String],
) -> Result<Vec<crate::querylog::QueryLogSpec>, CorefileError> {
    let mut args: Vec<&Token> = d.args.iter().collect();
    let mut format = None;
    if args.len() > 1 && args.last().is_some_and(|last| last.text.contains('{')) {
        format = args.pop().map(|last| last.text.clone());
    }
    let mut names: Vec<String> = args.iter().map(|name| name.text.clone()).collect();
    for (name, token) in names.iter().zip(&args) {
        crate::config::parse_domain(name).map_err(|m| error(token, format!("log: {m}")))?;
    }
    if names.is_empty() {
        names = if block_zones.is_empty() {
            vec![".".to_string()]
        } else {
            block_zones.to_vec()
        };
    }
    let mut classes = Vec::new();
    let mut min_duration_ms = None;
    for line in &d.block {
        match line.name.text.as_str() {
            "class" => {
                if line.args.is_empty() {
                    return Err(error(
                        &line.name,
                        "log: class needs at least one class".into(),
                    ));
                }
                for class in &line.args {
                    if !matches!(class.text.as_str(), "all" | "success" | "denial" | "error") {
                        return Err(error(
                            class,
                            format!(
                                "log: invalid class {:?} (all, success, denial, error)",
                                class.text
                            ),
                        ));
                    }
                    classes.push(class.text.clone());
                }
            }
            "minDuration" => {
                at_most_args(line, 1)?;
                let ms = match line.args.first() {
                    Some(token) => u64::try_from(duration(token)?.as_millis()).unwrap_or(u64::MAX),
                    None => crate::querylog::DEFAULT_MIN_DURATION_MS,
                };
                min_duration_ms = Some(ms);
            }
            _ => return Err(unknown_option(d, line)),
        }
    }
    Ok(names
        .into_iter()
        .map(|name| crate::querylog::QueryLogSpec {
            names: vec![name],
            format: format.clone(),
            classes: classes.clone(),
            min_duration_ms,
        })
        .collect())
}

/// `--log TEXT`: the directive's text after `log`, read as a Corefile reads it,
/// with `;` outside quotes as a line break.
pub fn log_flag(text: &str) -> Result<crate::querylog::QueryLogSpec, String> {
    let directive_text = semicolons_to_lines(text);
    let corefile = format!(". {{\nlog {directive_text}\n}}\n");
    let blocks =
        super::parse::parse(Path::new("--log"), &corefile, &|_| None).map_err(|e| e.message)?;
    let directive = only_directive(&blocks).ok_or("expected one log rule (options go in `{ }`)")?;
    let mut specs = log(directive, &[]).map_err(|e| e.message)?;
    if specs.len() > 1 {
        // One flag, one rule: several names share it.
        let names = specs.iter().flat_map(|s| s.names.clone()).collect();
        specs.truncate(1);
        specs[0].names = names;
    }
    let spec = specs.pop().ok_or("an empty log rule")?;
    crate::querylog::QueryLog::compile(std::slice::from_ref(&spec))?;
    Ok(spec)
}

/// The one directive a flag's text made, if it made exactly one.
fn only_directive(blocks: &[ServerBlock]) -> Option<&Directive> {
    match blocks {
        [block] if block.directives.len() == 1 => block.directives.first(),
        _ => None,
    }
}

/// `;` outside quotes as a line break: one flag holds a whole directive.
fn semicolons_to_lines(text: &str) -> String {
    let mut quoted = false;
    text.chars()
        .map(|c| {
            quoted ^= c == '"';
            if c == ';' && !quoted { '\n' } else { c }
        })
        .collect()
}

/// `forward FROM TO... { ... }`
fn forward(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let Some(from) = d.args.first() else {
        return Err(error(&d.name, "forward: expected FROM TO...".into()));
    };
    crate::config::parse_domain(&from.text)
        .map_err(|message| error(from, format!("forward: {message}")))?;
    if from.text != "." {
        o.forward_from = Some(from.text.clone());
    }
    let to = &d.args[1..];
    if to.is_empty() {
        return Err(error(
            &d.name,
            "forward: expected at least one upstream".into(),
        ));
    }
    let mut upstreams = Vec::new();
    let tls = to.iter().filter(|t| t.text.starts_with("tls://")).count();
    if tls > 0 && tls < to.len() {
        return Err(error(
            &d.name,
            "forward: every upstream is tls:// or none is (one transport per forward)".into(),
        ));
    }
    for target in to {
        let text = target.text.as_str();
        if let Some(address) = text.strip_prefix("tls://") {
            crate::forward::tls::parse_tls_upstream(address)
                .map_err(|m| error(target, format!("forward: {m}")))?;
            upstreams.push(text.to_string());
            continue;
        }
        if let Some((scheme, _)) = text.split_once("://")
            && scheme != "dns"
        {
            return Err(error(
                target,
                format!(
                    "forward: {scheme}:// upstreams are not supported (IP[:PORT], dns://, tls:// or a resolv.conf path)"
                ),
            ));
        }
        let text = text.strip_prefix("dns://").unwrap_or(text);
        if text.contains('/') {
            if to.len() > 1 {
                return Err(error(
                    target,
                    "forward: a resolv.conf path must be the only upstream".into(),
                ));
            }
            o.resolv_conf = Some(text.into());
            continue;
        }
        crate::config::parse_upstream(text).map_err(|m| error(target, format!("forward: {m}")))?;
        upstreams.push(text.to_string());
    }
    if !upstreams.is_empty() {
        o.upstream = Some(upstreams);
    }
    for line in &d.block {
        match line.name.text.as_str() {
            "max_concurrent" => {
                exactly_args(line, 1)?;
                let n = line.args[0]
                    .text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        error(
                            &line.args[0],
                            "max_concurrent: expected a positive number".into(),
                        )
                    })?;
                o.max_concurrent = Some(n);
            }
            _ => forward_option(d, line, o)?,
        }
    }
    Ok(())
}

/// One of `forward`'s options other than `max_concurrent`, as CoreDNS's
/// plugin/forward/setup.go reads it.
fn forward_option(d: &Directive, line: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    match line.name.text.as_str() {
        "except" => {
            if line.args.is_empty() {
                return Err(error(
                    &line.name,
                    "except: expected at least one zone".into(),
                ));
            }
            for zone in &line.args {
                crate::config::parse_domain(&zone.text)
                    .map_err(|m| error(zone, format!("except: {m}")))?;
            }
            let zones = o.forward_except.get_or_insert_with(Vec::new);
            zones.extend(line.args.iter().map(|zone| zone.text.clone()));
        }
        "max_fails" => {
            exactly_args(line, 1)?;
            let n = line.args[0].text.parse::<u32>().map_err(|_| {
                error(
                    &line.args[0],
                    "max_fails: expected a number (0: never down)".into(),
                )
            })?;
            o.forward_max_fails = Some(n);
        }
        "health_check" => {
            let Some(interval) = line.args.first() else {
                return Err(error(
                    &line.name,
                    "health_check: expected a duration".into(),
                ));
            };
            let interval = duration(interval)?;
            let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
            if !crate::config::HEALTH_CHECK_MS_RANGE.contains(&ms) {
                return Err(error(
                    &line.args[0],
                    "health_check: expected between 10ms and 1h".into(),
                ));
            }
            o.forward_health_check_ms = Some(ms);
            let mut rest = line.args[1..].iter();
            while let Some(arg) = rest.next() {
                match arg.text.as_str() {
                    "no_rec" => o.forward_health_check_recursion = Some(false),
                    "domain" => {
                        let Some(name) = rest.next() else {
                            return Err(error(arg, "health_check: domain needs a name".into()));
                        };
                        crate::config::parse_domain(&name.text)
                            .map_err(|m| error(name, format!("health_check: domain: {m}")))?;
                        o.forward_health_check_domain = Some(name.text.clone());
                    }
                    other => {
                        return Err(error(
                            arg,
                            format!(
                                "health_check: unknown argument {other:?} (no_rec, domain NAME)"
                            ),
                        ));
                    }
                }
            }
        }
        "force_tcp" => {
            exactly_args(line, 0)?;
            o.forward_force_tcp = Some(true);
        }
        // What cluster-dns does anyway: UDP first, whatever the client used
        // (with `force_tcp` too, TCP wins, as in CoreDNS).
        "prefer_udp" => exactly_args(line, 0)?,
        // Connections to upstreams are not kept, so none outlives the duration.
        "expire" => {
            exactly_args(line, 1)?;
            duration(&line.args[0])?;
        }
        "tls_servername" => {
            exactly_args(line, 1)?;
            o.forward_tls_servername = Some(line.args[0].text.clone());
        }
        // `tls [CERT KEY CA]`: none, the CA, the client's pair, or all three.
        "tls" => {
            let path = |i: usize| std::path::PathBuf::from(&line.args[i].text);
            match line.args.len() {
                0 => {}
                1 => o.forward_tls_ca = Some(path(0)),
                2 | 3 => {
                    o.forward_tls_cert = Some(path(0));
                    o.forward_tls_key = Some(path(1));
                    if line.args.len() == 3 {
                        o.forward_tls_ca = Some(path(2));
                    }
                }
                _ => {
                    return Err(error(&line.args[3], "tls: expected [CERT KEY] [CA]".into()));
                }
            }
        }
        "policy" => {
            exactly_args(line, 1)?;
            let policy = match line.args[0].text.as_str() {
                "random" => crate::forward::Policy::Random,
                "round_robin" => crate::forward::Policy::RoundRobin,
                "sequential" => crate::forward::Policy::Sequential,
                other => {
                    return Err(error(
                        &line.args[0],
                        format!(
                            "policy: unknown policy {other:?} (random, round_robin, sequential)"
                        ),
                    ));
                }
            };
            o.forward_policy = Some(policy);
        }
        _ => return Err(unknown_option(d, line)),
    }
    Ok(())
}

/// `cache [TTL] [ZONES...] { ... }`
fn cache(d: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let mut ttl = CACHE_DEFAULT_TTL;
    let mut args = d.args.iter();
    if let Some(first) = d.args.first()
        && let Ok(n) = first.text.parse::<u32>()
    {
        ttl = n;
        args.next();
    }
    let mut zones = Vec::new();
    for zone in args {
        crate::config::parse_domain(&zone.text)
            .map_err(|message| error(zone, format!("cache: {message}")))?;
        zones.push(zone.text.clone());
    }
    // The root zone (or none named): every name.
    if !zones.is_empty() && !zones.iter().any(|z| z == ".") {
        o.cache_zones = Some(zones);
    }
    // `cache TTL` caps both kinds; without it CoreDNS caps denials at 30 minutes.
    let max_denial = if d
        .args
        .first()
        .is_some_and(|a| a.text.parse::<u32>().is_ok())
    {
        ttl
    } else {
        CACHE_DEFAULT_DENIAL_TTL
    };
    let (mut success_ttl, mut denial_ttl) = (None, None);
    let mut capacities = Vec::new();
    for line in &d.block {
        match line.name.text.as_str() {
            "disable" => {
                let kind = line.args.first().map(|a| a.text.as_str());
                if !matches!(kind, Some("success" | "denial")) {
                    return Err(error(
                        &line.name,
                        "disable: expected success|denial [ZONES...]".into(),
                    ));
                }
                // Without zones, the block's: every name in the root block.
                let mut zones = vec![".".to_string()];
                if line.args.len() > 1 {
                    zones.clear();
                    for zone in &line.args[1..] {
                        crate::config::parse_domain(&zone.text)
                            .map_err(|message| error(zone, format!("disable: {message}")))?;
                        zones.push(zone.text.clone());
                    }
                }
                let key = if kind == Some("success") {
                    &mut o.cache_disable_success
                } else {
                    &mut o.cache_disable_denial
                };
                key.get_or_insert_with(Vec::new).extend(zones);
            }
            "success" | "denial" => {
                let (capacity, kind_ttl) = cache_kind(line)?;
                capacities.push(capacity);
                if line.name.text == "success" {
                    success_ttl = kind_ttl.or(success_ttl);
                } else {
                    denial_ttl = kind_ttl.or(denial_ttl);
                }
            }
            "prefetch" => cache_prefetch(line, o)?,
            "serve_stale" => {
                at_most_args(line, 2)?;
                let stale = match line.args.first() {
                    Some(token) => duration(token)?,
                    None => crate::forward::cache::DEFAULT_SERVE_STALE,
                };
                o.cache_serve_stale = Some(stale.as_secs());
                match line.args.get(1).map(|t| t.text.as_str()) {
                    None | Some("immediate") => {}
                    Some("verify") => o.cache_serve_stale_verify = Some(true),
                    Some(other) => {
                        return Err(error(
                            &line.args[1],
                            format!(
                                "serve_stale: invalid refresh mode {other:?} (immediate, verify)"
                            ),
                        ));
                    }
                }
            }
            _ => return Err(unknown_option(d, line)),
        }
    }
    if !capacities.is_empty() {
        // One cache holds both kinds: room for what each was given.
        let other = if capacities.len() == 1 {
            CACHE_DEFAULT_CAPACITY
        } else {
            0
        };
        o.cache_size = Some(capacities.iter().sum::<usize>() + other);
    }
    o.cache_ttl = Some(success_ttl.unwrap_or(ttl));
    o.cache_denial_ttl = Some(denial_ttl.unwrap_or(ttl.min(max_denial)));
    Ok(())
}

/// `success|denial CAPACITY [TTL [MINTTL]]`: the capacity, and the TTL cap if given.
fn cache_kind(line: &Directive) -> Result<(usize, Option<u32>), CorefileError> {
    let name = &line.name.text;
    if line.args.is_empty() || line.args.len() > 3 {
        return Err(error(
            &line.name,
            format!("{name}: expected CAPACITY [TTL [MINTTL]]"),
        ));
    }
    if let Some(min) = line.args.get(2) {
        return Err(error(
            min,
            format!(
                "{name}: a minimum TTL is not supported (answers are cached for their own TTL, up to the cap)"
            ),
        ));
    }
    let capacity = line.args[0]
        .text
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            error(
                &line.args[0],
                format!("{name}: expected a positive capacity"),
            )
        })?;
    let ttl = match line.args.get(1) {
        Some(token) => Some(
            token
                .text
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| error(token, format!("{name}: expected a positive TTL")))?,
        ),
        None => None,
    };
    Ok((capacity, ttl))
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`, as plugin/cache/setup.go reads it.
fn cache_prefetch(line: &Directive, o: &mut Options) -> Result<(), CorefileError> {
    let Some(amount) = line.args.first() else {
        return Err(error(
            &line.name,
            "prefetch: expected AMOUNT [DURATION] [PERCENTAGE%]".into(),
        ));
    };
    let amount = amount
        .text
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| error(amount, "prefetch: AMOUNT must be a positive number".into()))?;
    o.cache_prefetch = Some(amount);
    for arg in &line.args[1..] {
        if let Some(percent) = arg.text.strip_suffix('%') {
            let percent = percent
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| error(arg, "prefetch: PERCENTAGE must be 1% to 100%".into()))?;
            o.cache_prefetch_percent = Some(percent);
        } else {
            let window = duration(arg)?;
            if window.as_secs() == 0 {
                return Err(error(arg, "prefetch: DURATION must be at least 1s".into()));
            }
            o.cache_prefetch_window = Some(window.as_secs());
        }
    }
    if line.args.len() > 3 {
        return Err(error(
            &line.args[3],
            "prefetch: expected AMOUNT [DURATION] [PERCENTAGE%]".into(),
        ));
    }
    Ok(())
}

fn is_reverse(zone: &str) -> bool {
    zone == "in-addr.arpa"
        || zone == "ip6.arpa"
        || zone.ends_with(".in-addr.arpa")
        || zone.ends_with(".ip6.arpa")
}

/// An HTTP plugin's address: CoreDNS's `:PORT` and `HOST:PORT` forms.
fn http_address(arg: Option<&Token>, default: &str) -> String {
    let text = arg.map_or(default, |a| a.text.as_str());
    match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    }
}

fn unknown_option(plugin: &Directive, line: &Directive) -> CorefileError {
    error(
        &line.name,
        format!(
            "{} option {} is not supported",
            plugin.name.text, line.name.text
        ),
    )
}

fn no_block(d: &Directive) -> Result<(), CorefileError> {
    match d.block.first() {
        Some(line) => Err(unknown_option(d, line)),
        None => Ok(()),
    }
}

fn at_most_args(d: &Directive, n: usize) -> Result<(), CorefileError> {
    match d.args.get(n) {
        Some(extra) => Err(error(
            extra,
            format!("{}: unexpected argument {:?}", d.name.text, extra.text),
        )),
        None => Ok(()),
    }
}

fn exactly_args(d: &Directive, n: usize) -> Result<(), CorefileError> {
    if d.args.len() != n {
        return Err(error(
            &d.name,
            format!(
                "{}: expected {n} argument(s), got {}",
                d.name.text,
                d.args.len()
            ),
        ));
    }
    Ok(())
}

/// A Go duration as CoreDNS reads them (`5s`, `1m30s`, `500ms`).
pub fn duration(token: &Token) -> Result<Duration, CorefileError> {
    parse_go_duration(&token.text).ok_or_else(|| {
        error(
            token,
            format!("{:?} is not a duration (e.g. 5s, 1m)", token.text),
        )
    })
}

fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(value * seconds).ok()?;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::parse::parse;

    fn options_of(text: &str) -> Result<Options, CorefileError> {
        options(
            Path::new("Corefile"),
            &parse(Path::new("Corefile"), text, &|_| None)?,
        )
    }

    fn with(block: &str) -> String {
        format!(".:53 {{\n  kubernetes cluster.local\n  forward . 10.0.0.1\n{block}\n}}\n")
    }

    const KUBEADM: &str = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n";

    #[test]
    fn kubeadms_corefile_means_cluster_dns_defaults() {
        let o = options_of(KUBEADM).unwrap();
        assert_eq!(o.zones, Some(vec!["cluster.local".to_string()]));
        assert_eq!(o.listen, Some(vec![":53".to_string()]));
        assert_eq!(o.pods, Some(PodsMode::Insecure));
        assert_eq!(o.ttl, Some(30));
        assert_eq!(o.health_listen.as_deref(), Some(":8080"));
        assert_eq!(o.ready_listen.as_deref(), Some(":8181"));
        assert_eq!(o.metrics_listen.as_deref(), Some(":9153"));
        assert_eq!(o.resolv_conf, Some("/etc/resolv.conf".into()));
        assert_eq!(o.upstream, None);
        assert_eq!(o.max_concurrent, Some(1000));
        assert_eq!(o.cache_ttl, Some(30));
        assert_eq!(o.lameduck, Some(5));
        assert_eq!(o.loadbalance, Some(true));
    }

    #[test]
    fn what_is_left_out_keeps_coredns_defaults() {
        let o = options_of(&with("")).unwrap();
        assert_eq!(o.cache_ttl, Some(0), "no cache plugin: nothing cached");
        assert_eq!(o.loadbalance, Some(false), "no loadbalance: order kept");
        assert_eq!(o.lameduck, Some(0), "no lameduck");
        assert_eq!(o.upstream, Some(vec!["10.0.0.1".to_string()]));
        // plugin/cache/setup_test.go: `cache` alone caps at 3600 s.
        assert_eq!(options_of(&with("cache")).unwrap().cache_ttl, Some(3600));
        // plugin/health/setup_test.go: `health` alone on :8080.
        assert_eq!(
            options_of(&with("health"))
                .unwrap()
                .health_listen
                .as_deref(),
            Some(":8080")
        );
        // plugin/metrics/setup_test.go: `prometheus` alone on localhost:9153.
        assert_eq!(
            options_of(&with("prometheus"))
                .unwrap()
                .metrics_listen
                .as_deref(),
            Some("127.0.0.1:9153")
        );
        assert_eq!(
            options_of(&with("bind 10.0.0.53 ::1")).unwrap().listen,
            Some(vec!["10.0.0.53:53".to_string(), "[::1]:53".to_string()])
        );
    }

    /// Option cases from CoreDNS's setup tests (plugin/kubernetes/setup_test.go,
    /// plugin/forward/setup_test.go, plugin/cache/setup_test.go,
    /// plugin/health/setup_test.go): accepted forms give the keys, the rest fail.
    #[test]
    fn plugin_options() {
        let k = |body: &str| {
            options_of(&format!(
                ".:53 {{\n kubernetes cluster.local {{\n{body}\n }}\n forward . 10.0.0.1\n}}"
            ))
        };
        assert_eq!(k("pods verified").unwrap().pods, Some(PodsMode::Verified));
        let rke2 = options_of(
            ".:53 {\n kubernetes   cluster.local  cluster.local in-addr.arpa ip6.arpa\n forward . 10.0.0.1\n}",
        );
        assert_eq!(
            rke2.unwrap().zones,
            Some(vec!["cluster.local".to_string()]),
            "RKE2's zone named twice is one zone"
        );
        assert_eq!(k("pods disabled").unwrap().pods, Some(PodsMode::Disabled));
        assert!(k("pods invalid").is_err());
        assert_eq!(k("ttl 0").unwrap().ttl, Some(0));
        assert_eq!(k("ttl 3600").unwrap().ttl, Some(3600));
        assert!(k("ttl 3601").is_err());
        assert!(k("ttl -1").is_err());
        assert!(k("ttl").is_err());
        assert_eq!(
            k("namespaces demo prod").unwrap().namespaces,
            Some(vec!["demo".to_string(), "prod".into()])
        );
        assert_eq!(
            k("labels environment in (production, qa),application=nginx")
                .unwrap()
                .labels
                .as_deref(),
            Some("environment in (production, qa),application=nginx")
        );
        assert_eq!(
            k("namespace_labels istio-injection=enabled")
                .unwrap()
                .namespace_labels
                .as_deref(),
            Some("istio-injection=enabled")
        );
        assert!(k("namespace_labels").is_err());
        assert!(
            k("namespaces demo\nnamespace_labels team=a").is_err(),
            "CoreDNS: namespaces and namespace_labels cannot both be set"
        );
        assert!(k("ignore empty_service").unwrap().ignore_empty_service == Some(true));
        assert!(k("ignore nothing").is_err());
        let kc = k("kubeconfig /etc/kube/config dev").unwrap();
        assert_eq!(kc.kubeconfig, Some("/etc/kube/config".into()));
        assert_eq!(kc.context.as_deref(), Some("dev"));
        assert_eq!(
            k("fallthrough in-addr.arpa ip6.arpa").unwrap().fallthrough,
            None
        );
        assert_eq!(
            k("fallthrough").unwrap().fallthrough,
            Some(vec![".".to_string()]),
            "every name"
        );
        assert_eq!(
            k("fallthrough example.org in-addr.arpa")
                .unwrap()
                .fallthrough,
            Some(vec!["example.org".to_string()])
        );
        assert!(k("fallthrough bad..name").is_err());
        assert_eq!(
            k("endpoint http://localhost:8080")
                .unwrap()
                .api_server
                .as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(
            k("endpoint http://a:8080 http://b:8080")
                .unwrap()
                .api_server
                .as_deref(),
            Some("http://a:8080"),
            "the first of several"
        );
        assert!(k("endpoint").is_err());
        assert!(k("endpoint localhost:8080").is_err(), "a URL");
        assert_eq!(
            k("endpoint_pod_names").unwrap().endpoint_pod_names,
            Some(true)
        );
        assert_eq!(k("noendpoints").unwrap().endpoints, Some(false));
        assert!(k("noendpoints please").is_err());

        let f =
            |line: &str| options_of(&format!(".:53 {{\n kubernetes cluster.local\n {line}\n}}"));
        assert_eq!(
            f("forward . 127.0.0.1:53 [::1]:5300").unwrap().upstream,
            Some(vec!["127.0.0.1:53".to_string(), "[::1]:5300".into()])
        );
        assert_eq!(
            f("forward . dns://127.0.0.1").unwrap().upstream,
            Some(vec!["127.0.0.1".to_string()])
        );
        assert!(
            f("forward . 127.0.0.1 { max_concurrent 100 }")
                .unwrap()
                .max_concurrent
                == Some(100)
        );
        assert!(f("forward . 127.0.0.1 { max_concurrent -3 }").is_err());
        assert!(f("forward .").is_err());
        let dot =
            f("forward . tls://9.9.9.9 tls://[2620:fe::fe]:8853 { tls_servername dns.quad9.net }")
                .unwrap();
        assert_eq!(
            dot.upstream,
            Some(vec![
                "tls://9.9.9.9".to_string(),
                "tls://[2620:fe::fe]:8853".into()
            ])
        );
        assert_eq!(dot.forward_tls_servername.as_deref(), Some("dns.quad9.net"));
        assert!(
            f("forward . tls://9.9.9.9 8.8.8.8").is_err(),
            "one transport"
        );
        assert!(f("forward . /etc/resolv.conf 127.0.0.1").is_err());
        assert_eq!(
            f("forward example.org 127.0.0.1")
                .unwrap()
                .forward_from
                .as_deref(),
            Some("example.org")
        );
        assert!(f("forward bad..zone 127.0.0.1").is_err());
        assert!(f("forward . not-an-ip").is_err());
        assert!(f("forward . 127.0.0.1 { next NXDOMAIN }").is_err());

        let c = |line: &str| options_of(&with(line));
        assert_eq!(c("cache 10").unwrap().cache_ttl, Some(10));
        assert_eq!(c("cache 10 .").unwrap().cache_ttl, Some(10));
        assert_eq!(
            c("cache 10 example.org").unwrap().cache_zones,
            Some(vec!["example.org".to_string()])
        );
        assert_eq!(c("cache 10 . example.org").unwrap().cache_zones, None);
        assert!(c("cache 10 bad..zone").is_err());
        // One cache for both kinds: the success capacity plus CoreDNS's default
        // denial capacity (9984).
        assert_eq!(c("cache { success 2000 }").unwrap().cache_size, Some(11984));
        assert_eq!(
            c("cache { success 2000\n denial 500 }").unwrap().cache_size,
            Some(2500)
        );
        assert!(c("cache { success 0 }").is_err());
        // setup_test.go's `disable` cases: a kind, then zones (the block's without).
        let d = c("cache 30 {\n disable success cluster.local\n disable denial example.org lan\n}")
            .unwrap();
        assert_eq!(
            d.cache_disable_success,
            Some(vec!["cluster.local".to_string()])
        );
        assert_eq!(
            d.cache_disable_denial,
            Some(vec!["example.org".to_string(), "lan".into()])
        );
        assert_eq!(
            c("cache 30 { disable denial }")
                .unwrap()
                .cache_disable_denial,
            Some(vec![".".to_string()])
        );
        assert!(c("cache 30 { disable }").is_err());
        assert!(c("cache 30 { disable failure example.org }").is_err());

        let h = |line: &str| options_of(&with(line));
        assert_eq!(
            h("health localhost:8091").unwrap().health_listen.as_deref(),
            Some("127.0.0.1:8091")
        );
        assert_eq!(h("health { lameduck 10s }").unwrap().lameduck, Some(10));
        assert!(h("health { lameduck 1500ms }").is_err());
        assert!(h("health { lameduck x }").is_err());
        assert!(h("health { foo }").is_err());
        assert!(h("health a b").is_err());
    }

    #[test]
    fn refusals_name_the_line_and_the_plugin() {
        let error = options_of(&with("  dnstap")).unwrap_err();
        assert_eq!(error.line, 4);
        assert!(
            error.message.starts_with(
                "plugin dnstap is not supported (supported: timeouts, bind, debug, reload,"
            ),
            "{error}"
        );
        // Without `forward` nothing is forwarded (CoreDNS: no next plugin).
        let alone = options_of(".:53 {\n kubernetes cluster.local\n}").unwrap();
        assert_eq!(alone.forward_except, Some(vec![".".to_string()]));
        let error = options_of(".:53 {\n whoami\n}").unwrap_err();
        assert!(error.message.contains("no `kubernetes`"), "{error}");
        assert!(
            options_of(".:53 {\n kubernetes cluster.local\n forward . https://9.9.9.9\n}")
                .unwrap_err()
                .message
                .contains("https:// upstreams are not supported")
        );
        let two = options_of(
            ".:53 {\n kubernetes cluster.local\n forward . 10.0.0.1\n bind 127.0.0.1\n bind ::1\n}",
        )
        .unwrap();
        assert_eq!(
            two.listen,
            Some(vec!["127.0.0.1:53".to_string(), "[::1]:53".into()]),
            "bind lines add up"
        );
        let error =
            options_of("example.org:53 {\n kubernetes cluster.local\n forward . 1.1.1.1\n}")
                .unwrap_err();
        assert!(
            error.message.contains("no server block for the root zone"),
            "{error}"
        );
        let error = options_of(&format!(
            "{}consul:53 {{\n kubernetes consul\n forward . 10.150.0.1\n}}\n",
            with("")
        ))
        .unwrap_err();
        assert_eq!(error.line, 7, "the plugin's line");
        assert!(
            error
                .message
                .contains("not supported in a server block other than the root's"),
            "{error}"
        );
        let error = options_of(&with("  cache\n  cache")).unwrap_err();
        assert!(error.message.contains("twice"), "{error}");
        assert_eq!(
            options_of(&with("")).unwrap().listen,
            Some(vec![":53".to_string()])
        );
        assert_eq!(
            options_of(".:1053 {\n kubernetes cluster.local\n forward . 10.0.0.1\n}")
                .unwrap()
                .listen,
            Some(vec![":1053".to_string()])
        );
    }

    /// Stub domains: kube-dns's `stubDomains` as CoreDNS writes them, a server
    /// block per zone (plugin/forward/README.md, "Forward to a stub domain").
    #[test]
    fn server_blocks_for_other_zones_are_stub_domains() {
        let text = format!(
            "{}consul.local:53 {{\n    errors\n    cache 30\n    forward . 10.150.0.1 10.150.0.2:5353\n}}\n\
             corp.example acme.example {{\n    forward . 10.0.0.53\n}}\n",
            with("")
        );
        let o = options_of(&text).unwrap();
        assert_eq!(
            o.stub_domains,
            Some(vec![
                "consul.local=10.150.0.1,10.150.0.2:5353".to_string(),
                "corp.example=10.0.0.53".into(),
                "acme.example=10.0.0.53".into(),
            ])
        );
        let refused = |block: &str| {
            options_of(&format!("{}{block}", with("")))
                .expect_err(block)
                .message
        };
        assert!(
            refused("consul:1053 {\n forward . 10.0.0.1\n}\n").contains("root block's port 53")
        );
        assert!(refused("cluster.local {\n forward . 10.0.0.1\n}\n").contains("cluster zone"));
        assert!(refused("svc.cluster.local {\n forward . 10.0.0.1\n}\n").contains("cluster zone"));
        assert!(
            refused("consul {\n forward . 10.0.0.1\n health\n}\n")
                .contains("not supported in a server block other than the root's")
        );
        // Anything more than a plain stub domain is a block of its own.
        let own = |block: &str| {
            let o = options_of(&format!("{}{block}", with(""))).expect(block);
            assert_eq!(o.stub_domains, None, "{block}");
            let mut blocks = o.blocks.expect(block);
            assert_eq!(blocks.len(), 1, "{block}");
            blocks.remove(0)
        };
        let b = own("consul {\n forward . /etc/resolv.conf\n}\n");
        assert_eq!(b.zones, Some(vec!["consul".to_string()]));
        assert_eq!(b.resolv_conf, Some("/etc/resolv.conf".into()));
        let b = own("consul {\n forward . 10.0.0.1 {\n  force_tcp\n  policy sequential\n }\n}\n");
        assert_eq!(b.forward_force_tcp, Some(true));
        assert_eq!(b.upstream, Some(vec!["10.0.0.1".to_string()]));
        let b = own("consul {\n forward . tls://10.0.0.1 {\n  tls_servername dns.consul\n }\n}\n");
        assert_eq!(b.forward_tls_servername.as_deref(), Some("dns.consul"));
        let b = own("consul {\n forward sub.consul 10.0.0.1\n}\n");
        assert_eq!(b.forward_from.as_deref(), Some("sub.consul"));
        // AKS's documented rewrite block (a `.server` file).
        let b = own(
            "example.com:53 {\n log\n errors\n rewrite stop {\n  name regex (.*)\\.example\\.com {1}.default.svc.cluster.local\n  \
             answer name (.*)\\.default\\.svc\\.cluster\\.local {1}.example.com\n }\n forward . /etc/resolv.conf\n}\n",
        );
        assert_eq!(b.rewrites.map(|r| r.len()), Some(1));
        assert_eq!(b.query_logs.map(|l| l.len()), Some(1));
        // No `forward`: nothing leaves the block.
        let b = own("consul:53 {\n errors\n whoami\n}\n");
        assert_eq!(b.forward_except, Some(vec![".".to_string()]));
        assert_eq!(b.whoami, Some(true));
        assert!(
            refused(".:53 {\n forward . 10.0.0.1\n}\n")
                .contains("second server block for the root")
        );
    }

    /// Cases of plugin/hosts/setup_test.go: the file, inline entries, `ttl`,
    /// `no_reverse`, `fallthrough`; without `fallthrough`, names not listed are
    /// not passed on.
    #[test]
    fn hosts_options() {
        let h = |line: &str| options_of(&with(line));
        let o = h("hosts").unwrap();
        assert_eq!(o.hosts_file, Some("/etc/hosts".into()));
        assert_eq!(o.hosts_fallthrough, Some(false));
        let o = h("hosts /etc/coredns/NodeHosts {\n ttl 60\n reload 15s\n fallthrough\n}").unwrap();
        assert_eq!(o.hosts_file, Some("/etc/coredns/NodeHosts".into()));
        assert_eq!(o.hosts_ttl, Some(60));
        assert_eq!(o.hosts_fallthrough, Some(true));
        let o = h("hosts /etc/hosts {\n 10.0.0.1 example.org www.example.org\n ::1 local6\n no_reverse\n}").unwrap();
        assert_eq!(
            o.hosts,
            Some(vec![
                "10.0.0.1 example.org www.example.org".to_string(),
                "::1 local6".into()
            ])
        );
        assert_eq!(o.hosts_reverse, Some(false));
        // setup_test.go's origins: the zones after the file.
        assert_eq!(
            h("hosts /etc/hosts miek.nl.").unwrap().hosts_zones,
            Some(vec!["miek.nl.".to_string()])
        );
        assert_eq!(
            h("hosts /etc/hosts miek.nl. pun.gent.")
                .unwrap()
                .hosts_zones,
            Some(vec!["miek.nl.".to_string(), "pun.gent.".into()])
        );
        assert_eq!(h("hosts /etc/hosts .").unwrap().hosts_zones, None);
        assert!(h("hosts /etc/hosts bad..zone").is_err());
        assert!(h("hosts { ttl 0 }").is_err());
        assert!(h("hosts { ttl x }").is_err());
        assert!(h("hosts { reload }").is_err());
        assert!(
            h("hosts { 10.0.0.1 }").is_err(),
            "an address without a name"
        );
        let f = h("hosts {\n fallthrough example.org\n}").unwrap();
        assert_eq!(f.hosts_fallthrough, Some(true));
        assert_eq!(
            f.hosts_fallthrough_zones,
            Some(vec!["example.org".to_string()])
        );
        assert_eq!(
            h("hosts {\n fallthrough .\n}")
                .unwrap()
                .hosts_fallthrough_zones,
            None
        );
        assert!(h("hosts { bogus }").is_err());
    }

    /// The rcode-only form of plugin/template (its README's "Block AAAA" kind).
    #[test]
    fn template_rcode_only() {
        let t = |line: &str| options_of(&with(line));
        assert_eq!(
            t("template IN AAAA {\n rcode NOERROR\n}")
                .unwrap()
                .type_rcodes,
            Some(vec!["AAAA=NOERROR".to_string()])
        );
        let both =
            t("template IN AAAA . {\n rcode NXDOMAIN\n}\n template IN MX {\n rcode NOERROR\n}")
                .unwrap();
        assert_eq!(
            both.type_rcodes,
            Some(vec!["AAAA=NXDOMAIN".to_string(), "MX=NOERROR".into()])
        );
        assert_eq!(both.templates, None);
        // What `type_rcodes` cannot say stays a template: class ANY, another
        // rcode, a type given twice (all valid in CoreDNS).
        let rest = t("template IN MX {\n rcode NOERROR\n}\n template IN MX {\n rcode NXDOMAIN\n}\n template ANY AAAA {\n rcode NXDOMAIN\n}\n template IN A {\n rcode NOTIMP\n}").unwrap();
        assert_eq!(rest.type_rcodes, Some(vec!["MX=NOERROR".to_string()]));
        assert_eq!(rest.templates.map(|t| t.len()), Some(3));
        // CoreDNS's rcode names are upper case (`dns.StringToRcode`).
        assert!(t("template IN AAAA {\n rcode nxdomain\n}").is_err());
    }

    /// The full `template`: `plugin/template/setup_test.go` and the README's
    /// Corefiles; an rcode-only template after a full one stays a template
    /// (Corefile order decides).
    #[test]
    fn template_setup() {
        let t = |line: &str| options_of(&with(line));
        let specs = |line: &str| t(line).unwrap().templates.unwrap();
        let readme = "template IN A example {\n  match (^|[.])ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\n  answer \"{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}\"\n  fallthrough\n}\ntemplate IN PTR in-addr.arpa {\n  match ^(?P<d>[0-9]*)[.](?P<c>[0-9]*)[.](?P<b>[0-9]*)[.](?P<a>[0-9]*)[.]in-addr[.]arpa[.]$\n  answer \"{{ .Name }} 60 IN PTR ip-{{ .Group.a }}-{{ .Group.b }}-{{ .Group.c }}-{{ .Group.d }}.example.\"\n}";
        let got = specs(readme);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].zones, vec!["example"]);
        assert_eq!(got[0].fallthrough, Some(vec![]));
        assert_eq!(
            got[1].answer[0],
            "{{ .Name }} 60 IN PTR ip-{{ .Group.a }}-{{ .Group.b }}-{{ .Group.c }}-{{ .Group.d }}.example."
        );
        let ordered = t("template IN A example {\n answer \"a.example. 60 IN A 10.0.0.1\"\n}\ntemplate IN AAAA {\n rcode NOERROR\n}").unwrap();
        assert_eq!(ordered.type_rcodes, None);
        assert_eq!(ordered.templates.unwrap().len(), 2);
        for (line, expected) in [
            ("template", "expected CLASS TYPE"),
            ("template X", "expected CLASS TYPE"),
            ("template ANY X", "invalid RR class X"),
            ("template X ANY", "invalid query class X"),
            (
                "template ANY ANY {\n notavailable\n}",
                "template option notavailable is not supported",
            ),
            ("template ANY ANY {\n answer\n}", "answer needs an argument"),
            ("template ANY ANY {\n rcode\n}", "rcode"),
            (
                "template ANY ANY {\n rcode UNDEFINED\n}",
                "unknown rcode UNDEFINED",
            ),
            (
                "template ANY ANY {\n answer \"{{\"\n}",
                "could not compile template",
            ),
            (
                "template ANY ANY {\n answer \"{{ notAFunction }}\"\n}",
                "not defined",
            ),
            (
                "template ANY ANY {\n ederror 21 \"Blocked\"\n}",
                "template option ederror is not supported",
            ),
        ] {
            refused_at_its_line(line, expected);
        }
    }

    /// `line` (in the test block, at line 4) is refused with `expected`, naming
    /// the directive's line or the block's line that is wrong.
    fn refused_at_its_line(line: &str, expected: &str) {
        let message = options_of(&with(line)).expect_err(line).to_string();
        assert!(message.contains(expected), "{line}: {message}");
        assert!(
            message.contains(":4:") || message.contains(":5:"),
            "{message}"
        );
    }

    /// `debug` is accepted; `timeouts { maxtcpqueries N }` sets the TCP cap.
    #[test]
    fn debug_and_timeouts() {
        let t = |line: &str| options_of(&with(line));
        assert!(t("debug").is_ok());
        assert!(t("debug on").is_err());
        assert_eq!(
            t("timeouts {\n maxtcpqueries 128\n}")
                .unwrap()
                .tcp_max_queries,
            Some(128)
        );
        assert_eq!(
            t("timeouts {\n maxtcpqueries -1\n}")
                .unwrap()
                .tcp_max_queries,
            Some(0)
        );
        for (line, expected) in [
            ("timeouts", "at least one timeout"),
            (
                "timeouts {\n maxtcpqueries 0\n}",
                "not a positive number or -1",
            ),
            (
                "timeouts {\n read 10s\n}",
                "timeouts option read is not supported",
            ),
        ] {
            refused_at_its_line(line, expected);
        }
    }

    /// `plugin/rewrite/setup_test.go`: the line and block forms, and the
    /// refusals (with the directive's line).
    #[test]
    fn rewrite_setup() {
        let t = |line: &str| options_of(&with(line));
        let rules = |line: &str| t(line).unwrap().rewrites.unwrap();
        assert_eq!(rules("rewrite name a.com b.com"), vec!["name a.com b.com"]);
        assert_eq!(
            rules("rewrite stop name regex foo bar answer name bar foo"),
            vec!["stop name regex foo bar answer name bar foo"]
        );
        assert_eq!(
            rules("rewrite stop {\n name regex foo bar\n answer name bar foo\n}"),
            vec!["stop name regex foo bar answer name bar foo"]
        );
        assert_eq!(
            rules("rewrite name a.com b.com\n rewrite continue name suffix .x. .y."),
            vec!["name a.com b.com", "continue name suffix .x. .y."]
        );
        for (line, expected) in [
            ("rewrite", "no rule type specified"),
            ("rewrite name", "too few arguments"),
            ("rewrite stop", "stop rule must begin with a rule type"),
            (
                "rewrite continue",
                "continue rule must begin with a rule type",
            ),
            (
                "rewrite stop {\n name regex foo bar\n answer name bar foo\n name baz\n}",
                "2 arguments required",
            ),
            (
                "rewrite stop {\n answer name bar foo\n name regex foo bar\n}",
                "must begin with a name rule",
            ),
            (
                "rewrite stop name regex [bad[ bar answer name bar foo",
                "invalid regex",
            ),
            (
                "rewrite name a.com b.com {\n answer auto\n}",
                "a block follows a rule",
            ),
        ] {
            refused_at_its_line(line, expected);
        }
    }

    /// CoreDNS plugin/forward/setup_test.go: TestSetup, TestSetupHealthCheck and
    /// TestSetupMaxConcurrent (the cases of options cluster-dns takes; `tls`,
    /// `FROM` other than `.` and several `forward`s are refused, below).
    #[test]
    fn forward_setup() {
        use crate::forward::Policy;
        let f = |block: &str| {
            options_of(&format!(
                ".:53 {{\n kubernetes cluster.local\n forward . 127.0.0.1 {{\n{block}\n }}\n}}"
            ))
        };
        let plain = f("").unwrap();
        assert_eq!(plain.forward_max_fails, None, "default 2, CoreDNS's");
        assert_eq!(plain.forward_health_check_recursion, None, "default true");
        let o = f("health_check 0.5s domain example.org").unwrap();
        assert_eq!(o.forward_health_check_ms, Some(500));
        assert_eq!(
            o.forward_health_check_domain.as_deref(),
            Some("example.org")
        );
        assert_eq!(o.forward_health_check_recursion, None);
        let o = f("except miek.nl").unwrap();
        assert_eq!(o.forward_except, Some(vec!["miek.nl".to_string()]));
        assert_eq!(f("max_fails 3").unwrap().forward_max_fails, Some(3));
        assert_eq!(f("force_tcp").unwrap().forward_force_tcp, Some(true));
        assert_eq!(f("prefer_udp").unwrap().forward_force_tcp, None);
        assert_eq!(
            f("force_tcp\nprefer_udp").unwrap().forward_force_tcp,
            Some(true),
            "both: TCP wins"
        );
        assert_eq!(f("max_concurrent 1000").unwrap().max_concurrent, Some(1000));
        for (line, policy) in [
            ("policy random", Policy::Random),
            ("policy round_robin", Policy::RoundRobin),
            ("policy sequential", Policy::Sequential),
        ] {
            assert_eq!(f(line).unwrap().forward_policy, Some(policy), "{line}");
        }
        assert!(f("expire 10s").is_ok());
        // TestSetupHealthCheck
        for (line, recursion, domain) in [
            ("health_check 0.5s", None, None),
            ("health_check 0.5s no_rec", Some(false), None),
            (
                "health_check 0.5s no_rec domain example.org",
                Some(false),
                Some("example.org"),
            ),
            ("health_check 0.5s domain .", None, Some(".")),
            (
                "health_check 0.5s domain example.org.",
                None,
                Some("example.org."),
            ),
        ] {
            let o = f(line).unwrap();
            assert_eq!(o.forward_health_check_recursion, recursion, "{line}");
            assert_eq!(o.forward_health_check_domain.as_deref(), domain, "{line}");
        }
        for (line, expected) in [
            ("blaatl", "option blaatl is not supported"),
            ("health_check 0.5s domain", "domain needs a name"),
            ("health_check no_rec", "is not a duration"),
            ("health_check domain example.org", "is not a duration"),
            ("health_check 0.5s rec", "unknown argument \"rec\""),
            (
                "health_check 0.5s domain example..org",
                "health_check: domain",
            ),
            ("max_concurrent many", "positive number"),
            ("max_concurrent -4", "positive number"),
            ("max_fails -1", "max_fails: expected a number"),
            ("policy fastest", "unknown policy"),
            ("except", "expected at least one zone"),
            ("except a..b", "except: \"a..b\" is not a domain name"),
            ("expire soon", "is not a duration"),
            ("force_tcp yes", "expected 0 argument"),
        ] {
            let error = f(line).expect_err(line);
            assert!(error.message.contains(expected), "{line}: {error}");
            assert_eq!(error.line, 4, "{line}: {error}");
        }
    }

    /// CoreDNS plugin/log/setup_test.go, TestLogParse: each case's rules (name
    /// scope, format, classes, minDuration).
    #[test]
    fn log_setup() {
        use crate::querylog::QueryLogSpec;
        let parse = |text: &str| {
            options_of(&format!(
                ".:53 {{\n kubernetes cluster.local\n forward . 10.0.0.1\n{text}\n}}"
            ))
            .map(|o| o.query_logs.unwrap_or_default())
        };
        let rule =
            |name: &str, format: Option<&str>, classes: &[&str], min: Option<u64>| QueryLogSpec {
                names: vec![name.to_string()],
                format: format.map(str::to_string),
                classes: classes.iter().map(|c| c.to_string()).collect(),
                min_duration_ms: min,
            };
        let cases: Vec<(&str, Vec<QueryLogSpec>)> = vec![
            ("log", vec![rule(".", None, &[], None)]),
            (
                "log example.org",
                vec![rule("example.org", None, &[], None)],
            ),
            (
                "log example.org. {common}",
                vec![rule("example.org.", Some("{common}"), &[], None)],
            ),
            (
                "log example.org {combined}",
                vec![rule("example.org", Some("{combined}"), &[], None)],
            ),
            (
                "log example.org.\nlog example.net {combined}",
                vec![
                    rule("example.org.", None, &[], None),
                    rule("example.net", Some("{combined}"), &[], None),
                ],
            ),
            (
                "log example.org {host}\nlog example.org {when}",
                vec![
                    rule("example.org", Some("{host}"), &[], None),
                    rule("example.org", Some("{when}"), &[], None),
                ],
            ),
            (
                "log example.org example.net",
                vec![
                    rule("example.org", None, &[], None),
                    rule("example.net", None, &[], None),
                ],
            ),
            (
                "log example.org example.net {host}",
                vec![
                    rule("example.org", Some("{host}"), &[], None),
                    rule("example.net", Some("{host}"), &[], None),
                ],
            ),
            (
                "log example.org example.net {when} {\nclass denial\n}",
                vec![
                    rule("example.org", Some("{when}"), &["denial"], None),
                    rule("example.net", Some("{when}"), &["denial"], None),
                ],
            ),
            (
                "log example.org {\nclass all\n}",
                vec![rule("example.org", None, &["all"], None)],
            ),
            (
                "log example.org {\nclass denial\n}",
                vec![rule("example.org", None, &["denial"], None)],
            ),
            (
                "log {\nclass denial\n}",
                vec![rule(".", None, &["denial"], None)],
            ),
            (
                "log {\nclass denial error\n}",
                vec![rule(".", None, &["denial", "error"], None)],
            ),
            (
                "log {\nclass denial\nclass error\n}",
                vec![rule(".", None, &["denial", "error"], None)],
            ),
            (
                "log {\nminDuration\n}",
                vec![rule(".", None, &[], Some(100))],
            ),
            (
                "log {\nclass error\nminDuration 1s\n}",
                vec![rule(".", None, &["error"], Some(1000))],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), expected, "{text}");
            // And each compiles.
            crate::querylog::QueryLog::compile(&expected).unwrap();
        }
        for text in [
            "log {\nclass abracadabra\n}",
            "log {\nclass\n}",
            "log {\nminDuration 123abc\n}",
            "log {\nunknown\n}",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        // The README's examples.
        for text in [
            "log . \"{proto} Request: {name} {type} {>id}\"",
            "log . {combined} {\nclass denial error\n}",
            "log . {\nclass denial success\n}",
            "log . {\nclass error\nminDuration 1s\n}",
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
        // A stub domain's `log` covers its own zones, ahead of the root's rules.
        let stub = options_of(&format!(
            "{}consul:53 {{\n log\n forward . 10.150.0.1\n}}\n",
            with("  log . {\n class error\n }")
        ))
        .unwrap();
        let logs = stub.query_logs.unwrap();
        assert_eq!(logs[0].names, ["consul"]);
        assert_eq!(logs[1].names, ["."]);
        assert_eq!(logs[1].classes, ["error"]);
        // The flag form.
        let flag = super::log_flag(". {combined} { class denial; class error }").unwrap();
        assert_eq!(
            flag,
            rule(".", Some("{combined}"), &["denial", "error"], None)
        );
        assert!(super::log_flag("{ class nope }").is_err());
        let error = super::log_flag(". {combined}; class denial").unwrap_err();
        assert!(error.contains("expected one log rule"), "{error}");
        let error = super::template_flag("IN A; answer \"x\"").unwrap_err();
        assert!(error.contains("expected one template"), "{error}");
    }

    /// CoreDNS plugin/bufsize/setup_test.go, and `any`, `minimal` and `whoami`
    /// (plugin/whoami/setup_test.go: no arguments).
    #[test]
    fn bufsize_any_minimal_whoami_setup() {
        let o = |line: &str| options_of(&with(line));
        for (line, size) in [
            ("bufsize", 1232),
            ("bufsize \"1220\"", 1220),
            ("bufsize 4096", 4096),
        ] {
            assert_eq!(o(line).unwrap().bufsize, Some(size), "{line}");
        }
        for line in [
            "bufsize \"5000\"",
            "bufsize \"512 512\"",
            "bufsize \"511\"",
            "bufsize \"abc123\"",
            "bufsize 512 1024",
        ] {
            let error = o(line).expect_err(line);
            assert_eq!(error.line, 4, "{line}: {error}");
        }
        let set = o("any\nminimal\nwhoami").unwrap();
        assert_eq!(
            (set.any, set.minimal, set.whoami),
            (Some(true), Some(true), Some(true))
        );
        let unset = o("").unwrap();
        assert_eq!(
            (unset.any, unset.minimal, unset.whoami, unset.bufsize),
            (None, None, None, None)
        );
        for line in ["whoami example.org", "any x", "minimal {\n foo\n }"] {
            assert!(o(line).is_err(), "{line}");
        }
    }

    /// CoreDNS plugin/cache/setup_test.go, TestSetup (the cases of the options
    /// cluster-dns takes: TTLs, capacities, prefetch, serve_stale).
    #[test]
    fn cache_setup() {
        let c = |block: &str| options_of(&with(block));
        let o = c("cache").unwrap();
        assert_eq!((o.cache_ttl, o.cache_denial_ttl), (Some(3600), Some(1800)));
        let o = c("cache 80").unwrap();
        assert_eq!((o.cache_ttl, o.cache_denial_ttl), (Some(80), Some(80)));
        let o = c("cache {\nsuccess 10\n}").unwrap();
        assert_eq!(o.cache_ttl, Some(3600));
        let o = c("cache {\nsuccess 10 1800\ndenial 10 16\n}").unwrap();
        assert_eq!((o.cache_ttl, o.cache_denial_ttl), (Some(1800), Some(16)));
        assert_eq!(o.cache_size, Some(20));
        let o = c("cache {\nprefetch 10\n}").unwrap();
        assert_eq!(
            (
                o.cache_prefetch,
                o.cache_prefetch_window,
                o.cache_prefetch_percent
            ),
            (Some(10), None, None)
        );
        let o = c("cache {\nprefetch 2 10m 10%\n}").unwrap();
        assert_eq!(
            (
                o.cache_prefetch,
                o.cache_prefetch_window,
                o.cache_prefetch_percent
            ),
            (Some(2), Some(600), Some(10))
        );
        let o = c("cache {\nprefetch 2 10%\n}").unwrap();
        assert_eq!(
            (o.cache_prefetch_window, o.cache_prefetch_percent),
            (None, Some(10))
        );
        let o = c("cache {\nserve_stale\n}").unwrap();
        assert_eq!(
            (o.cache_serve_stale, o.cache_serve_stale_verify),
            (Some(3600), None)
        );
        let o = c("cache {\nserve_stale 20m\n}").unwrap();
        assert_eq!(o.cache_serve_stale, Some(1200));
        let o = c("cache {\nserve_stale 1h immediate\n}").unwrap();
        assert_eq!(
            (o.cache_serve_stale, o.cache_serve_stale_verify),
            (Some(3600), None)
        );
        let o = c("cache {\nserve_stale 1h verify\n}").unwrap();
        assert_eq!(o.cache_serve_stale_verify, Some(true));
        for block in [
            "cache {\nsuccess\n}",
            "cache {\nsuccess 15 1800 5 extra\n}",
            "cache {\nprefetch\n}",
            "cache {\nprefetch 0\n}",
            "cache {\nprefetch 2 10\n}",
            "cache {\nprefetch 2 10m 150%\n}",
            "cache {\nprefetch 2 10m 10% extra\n}",
            "cache {\nserve_stale 20\n}",
            "cache {\nserve_stale 1h foo\n}",
            "cache {\nserve_stale 1h immediate extra\n}",
        ] {
            assert!(c(block).is_err(), "{block}");
        }
    }

    /// CoreDNS plugin/k8s_external/setup_test.go (the zone-less form and CIDRs
    /// are refused here), and its README's `ttl` and `headless`.
    #[test]
    fn k8s_external_setup() {
        let k = |line: &str| options_of(&with(line));
        let o = k("k8s_external example.org").unwrap();
        assert_eq!(o.external_zones, Some(vec!["example.org".to_string()]));
        assert_eq!(o.external_apex, None, "dns");
        let o = k("k8s_external example.org {\napex testdns\n}").unwrap();
        assert_eq!(o.external_apex.as_deref(), Some("testdns"));
        let o = k("k8s_external example.org example.net {\nttl 30\nheadless\n}").unwrap();
        assert_eq!(o.external_zones.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            (o.external_ttl, o.external_headless),
            (Some(30), Some(true))
        );
        for line in [
            "k8s_external",
            "k8s_external 10.0.0.0/31",
            "k8s_external example.org {\nttl 4000\n}",
            "k8s_external example.org {\nfoo\n}",
            "k8s_external example.org {\napex\n}",
        ] {
            let error = k(line).expect_err(line);
            assert!(matches!(error.line, 4 | 5), "{line}: {error}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}

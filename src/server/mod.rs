//! The DNS front end, in the order a query meets it: sockets and their life
//! ([`lifecycle`], [`batch`] for UDP's system calls, [`handover`] for restarts),
//! the two transports ([`udp`] with its [`fast`] path, [`tcp`]), the one
//! decision ([`handler`]) and the encoders ([`wire`], [`reply`]); [`precheck`]
//! sorts out malformed packets, [`stats`] counts, [`http`] serves the probes.

mod batch;
pub mod fast;
pub mod handler;
pub mod handover;
pub mod http;
pub mod lifecycle;
pub mod precheck;
mod reply;
mod stats;
pub mod tcp;
pub mod udp;
mod wire;

use std::time::Duration;

pub use handler::{DnsHandler, HandlerParts};
pub use lifecycle::{Listener, Running, TcpSettings, bind, bind_or_inherit, start, udp_workers};
pub use reply::Transport;

/// A TCP connection that sends nothing for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// UDP queries on their way through the async handler (forwarding) at once;
/// beyond, datagrams are dropped and clients retry.
const SLOW_PATH_LIMIT: usize = 4096;

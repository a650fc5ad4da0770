//! The UDP front end: one blocking receive/answer/send loop per `SO_REUSEPORT`
//! socket, on its own thread. What the fast path answers is answered on that
//! thread, with no task spawn and no channel; the rest goes to the async
//! handler on the tokio runtime, bounded.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Transport;
use super::batch::Batch;
use super::fast::Fast;
use super::handler::DnsHandler;

/// How long a receive waits before looking at the stop flag.
pub const RECEIVE_TICK: Duration = Duration::from_millis(200);

/// Runs a UDP worker until `stop`; a panic (a bug) is logged and the loop starts
/// again, so the clients `SO_REUSEPORT` hashes to this socket keep getting answers.
pub fn serve_socket_forever(
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    permits: Arc<tokio::sync::Semaphore>,
) {
    let metrics = handler.metrics().clone();
    while !stop.load(Ordering::Relaxed) {
        let (socket, handler, runtime, stop, permits) = (
            socket.clone(),
            handler.clone(),
            runtime.clone(),
            stop.clone(),
            permits.clone(),
        );
        let served =
            metrics.catch_panic(move || serve_socket(socket, handler, runtime, stop, permits));
        if served.is_err() {
            tracing::error!("a UDP worker panicked (a bug; please report it); restarting it");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Serves one socket until `stop` is set: a batch in, each datagram answered
/// (or passed on), the replies out as a batch.
fn serve_socket(
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    slow_permits: Arc<tokio::sync::Semaphore>,
) {
    let mut batch = Batch::new();
    while !stop.load(Ordering::Relaxed) {
        batch.exchange(&socket, |packet, src, received, out| {
            let in_flight = handler.in_flight_guard();
            match handler.answer_fast_over(Transport::Udp, packet, src, out, received) {
                Fast::Reply => true,
                Fast::Drop => false,
                Fast::Slow => {
                    // Bounded: a flood of forwarded names cannot queue up without limit.
                    let Ok(permit) = slow_permits.clone().try_acquire_owned() else {
                        tracing::debug!(%src, "too many queries on the slow path; dropping one");
                        return false;
                    };
                    let (raw, handler, socket) = (packet.to_vec(), handler.clone(), socket.clone());
                    runtime.spawn(async move {
                        let _in_flight = in_flight;
                        let _permit = permit;
                        let metrics = handler.metrics().clone();
                        // A panic (a bug) loses this one query; it is counted.
                        let _ = metrics
                            .catch_panic_async(slow(raw, src, socket, handler))
                            .await;
                    });
                    false
                }
            }
        });
    }
}

/// The async handler's answer for a datagram the fast path passed on.
async fn slow(raw: Vec<u8>, src: SocketAddr, socket: Arc<UdpSocket>, handler: Arc<DnsHandler>) {
    if let Some(reply) = handler.answer_slow(raw, src).await {
        let _ = socket.send_to(&reply, src);
    }
}

//! The index writer task: applies changes from a source in batches and publishes
//! one snapshot per batch, so readers see each change within one batch's time.

use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::cluster::{ClusterObject, Kind, ObjectRef, ServiceKind};
use crate::index::{IndexWriter, SharedSnapshot};
use crate::metrics::{Metrics, ServiceKindLabel};

/// One change from a source.
#[derive(Debug)]
pub enum Change {
    Apply {
        object: ClusterObject,
        /// A live event (not part of a list), so its delay is worth timing.
        live: bool,
        /// When the source received it.
        received: Instant,
        /// `endpoints.kubernetes.io/last-change-trigger-time`, when present.
        trigger: Option<SystemTime>,
    },
    Delete {
        object: ObjectRef,
        received: Instant,
        trigger: Option<SystemTime>,
    },
    /// A (re-)list of this kind starts.
    RelistStart(Kind),
    /// The list is complete: objects it did not bring are gone.
    RelistDone(Kind),
}

/// Most changes applied before a snapshot is published.
const MAX_BATCH: usize = 4096;

/// Applies changes until every sender is gone.
pub async fn run(
    mut changes: mpsc::Receiver<Change>,
    mut writer: IndexWriter,
    shared: SharedSnapshot,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // (received, trigger, kind label) of the changes in the batch that touch records
    let mut timings: Vec<(Instant, Option<SystemTime>, ServiceKindLabel)> = Vec::new();
    let mut was_synced = writer.is_synced();
    while changes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for change in batch.drain(..) {
            match change {
                Change::Apply {
                    object,
                    live,
                    received,
                    trigger,
                } => {
                    let label = service_kind(&writer, &object).filter(|_| live);
                    writer.apply(object);
                    if let Some(label) = label {
                        timings.push((received, trigger, label));
                    }
                }
                Change::Delete {
                    object,
                    received,
                    trigger,
                } => {
                    writer.delete(&object);
                    if matches!(object.kind, Kind::Service | Kind::EndpointSlice) {
                        timings.push((received, trigger, ServiceKindLabel::cluster_ip()));
                    }
                }
                Change::RelistStart(kind) => writer.begin_relist(kind),
                Change::RelistDone(kind) => writer.finish_relist(kind),
            }
        }
        writer.publish(&shared);
        let published = Instant::now();
        let wall = SystemTime::now();
        for (received, trigger, label) in timings.drain(..) {
            metrics
                .event_to_swap
                .observe(published.duration_since(received).as_secs_f64());
            if let Some(duration) = trigger.and_then(|t| wall.duration_since(t).ok()) {
                metrics
                    .programming_duration
                    .get_or_create(&label)
                    .observe(duration.as_secs_f64());
            }
        }
        if writer.is_synced() && !was_synced {
            tracing::info!(
                objects = writer.object_count(),
                "synced with the API server: answering from complete data"
            );
            metrics.synced.set(1);
            super::release_freed_memory();
        }
        was_synced = writer.is_synced();
    }
}

/// The service kind an applied object feeds, for the programming-duration metric.
fn service_kind(writer: &IndexWriter, object: &ClusterObject) -> Option<ServiceKindLabel> {
    let service = match object {
        ClusterObject::Service(s) => Some(s.kind.clone()),
        ClusterObject::EndpointSlice(slice) => {
            let name = slice.service.as_ref()?;
            writer.service_kind(&slice.namespace, name)
        }
        _ => return None,
    };
    Some(match service {
        Some(ServiceKind::Headless) => ServiceKindLabel::headless(),
        _ => ServiceKindLabel::cluster_ip(),
    })
}

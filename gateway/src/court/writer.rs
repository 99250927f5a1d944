//! Group commit for court orders. Requests hand their validated orders to one
//! writer task; it takes whatever has queued up (up to [`MAX_GROUP`]) and
//! applies it with `court_orders::apply`: the group's rows in multi-row
//! statements (one savepoint per order only if that fails), one commit for
//! the group. Under load, the orders that arrive while a commit
//! is on disk share the next one; alone, an order is committed at once. Each
//! request still gets its receipt only after its order's commit.

use axum::body::Bytes;
use court_orders::{Apply, ApplyOutcome, OrderJob, Payload};
use domain::court_order::CourtOrder;
use domain::seizure::SeizureRules;
use domain::time::local_date;
use std::sync::Arc;
use store::{Store, StoreError};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::Clock;

/// Most orders committed together.
pub const MAX_GROUP: usize = 128;
/// Writer tasks on PostgreSQL.
pub const POSTGRES_WRITERS: usize = 4;
/// Orders waiting for the writer before senders wait.
const QUEUE: usize = 4096;

/// Where an order's raw payload is.
#[derive(Debug, Clone)]
pub enum OwnedPayload {
    /// Already recorded (a batch).
    InInbox(i64),
    /// To record with the order.
    New { content_type: String, bytes: Bytes },
}

/// Why an order got no outcome from the writer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer tasks have ended (the server is stopping).
    #[error("the order writer has stopped")]
    Stopped,
    /// The writer ended before answering.
    #[error("the order writer stopped before answering")]
    NoAnswer,
    /// The store failed: the whole group, when its commit failed, or this order.
    #[error("{0}")]
    Store(Arc<StoreError>),
}

/// One request's orders (one, or a batch's in document order) and where to answer.
struct Job {
    partner_id: String,
    orders: Vec<(CourtOrder, String)>,
    payload: OwnedPayload,
    reply: oneshot::Sender<Vec<Result<ApplyOutcome, WriteError>>>,
}

/// The handle requests use; cheap to clone.
#[derive(Debug, Clone)]
pub struct CourtWriter {
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("partner_id", &self.partner_id).field("orders", &self.orders.len()).finish()
    }
}

impl CourtWriter {
    /// Starts the writer tasks on the current Tokio runtime: one on SQLite
    /// (it has one writer anyway), [`POSTGRES_WRITERS`] on PostgreSQL, which
    /// overlap their network round trips. They end when every handle is dropped.
    pub fn spawn(store: Store, rules: SeizureRules, clock: Clock) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let writers = match store.kind() {
            store::BackendKind::Sqlite => 1,
            store::BackendKind::Postgres => POSTGRES_WRITERS,
        };
        for _ in 0..writers {
            tokio::spawn(run(store.clone(), rules, clock.clone(), receiver.clone()));
        }
        Self { sender }
    }

    /// Applies one order; returns once its group has committed (or failed).
    pub async fn apply(
        &self,
        partner_id: &str,
        order: CourtOrder,
        content_sha256: String,
        payload: OwnedPayload,
    ) -> Result<ApplyOutcome, WriteError> {
        let mut results = self.apply_all(partner_id, vec![(order, content_sha256)], payload).await;
        results.pop().unwrap_or(Err(WriteError::NoAnswer))
    }

    /// Applies a batch's orders (with their content hashes) in document order,
    /// all in the same commit; one result per order, in order.
    pub async fn apply_all(
        &self,
        partner_id: &str,
        orders: Vec<(CourtOrder, String)>,
        payload: OwnedPayload,
    ) -> Vec<Result<ApplyOutcome, WriteError>> {
        let count = orders.len();
        let failed = |error: WriteError| (0..count).map(|_| Err(error.clone())).collect();
        let (reply, answer) = oneshot::channel();
        let job = Job { partner_id: partner_id.to_owned(), orders, payload, reply };
        if self.sender.send(job).await.is_err() {
            return failed(WriteError::Stopped);
        }
        answer.await.unwrap_or_else(|_| failed(WriteError::NoAnswer))
    }
}

async fn run(store: Store, rules: SeizureRules, clock: Clock, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let render = super::xml::receipt_element;
    loop {
        let group = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut size = first.orders.len();
            let mut group = vec![first];
            while size < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(job) => {
                        size += job.orders.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        let now = clock();
        let today = local_date(now);
        let jobs: Vec<OrderJob<'_>> = group
            .iter()
            .flat_map(|j| {
                let payload = match &j.payload {
                    OwnedPayload::InInbox(id) => Payload::InInbox(*id),
                    OwnedPayload::New { content_type, bytes } => {
                        Payload::New { channel: super::CHANNEL, content_type, bytes }
                    }
                };
                j.orders.iter().map(move |(order, hash)| OrderJob {
                    partner_id: &j.partner_id,
                    order,
                    content_sha256: hash,
                    payload,
                })
            })
            .collect();
        let results = court_orders::apply(&store, &jobs, Apply { rules, now, today, render: &render }).await;
        drop(jobs);
        match results {
            Ok(results) => {
                let mut results = results.into_iter();
                for job in group {
                    let answers = results
                        .by_ref()
                        .take(job.orders.len())
                        .map(|r| r.map_err(|e| WriteError::Store(Arc::new(e))))
                        .collect();
                    let _ = job.reply.send(answers);
                }
            }
            Err(error) => {
                tracing::error!(message = "group commit failed; no order of the group was applied", size = group.len(), %error);
                let error = WriteError::Store(Arc::new(error));
                for job in group {
                    let _ = job.reply.send(job.orders.iter().map(|_| Err(error.clone())).collect());
                }
            }
        }
    }
}

//! Group commit for court orders. Requests hand their validated orders to one
//! writer task; it takes whatever has queued up (up to [`MAX_GROUP`]) and
//! applies it with `store::Store::apply_court_orders`: one savepoint per order,
//! one commit for the group. Under load, the orders that arrive while a commit
//! is on disk share the next one; alone, an order is committed at once. Each
//! request still gets its receipt only after its order's commit.

use axum::body::Bytes;
use domain::court_order::{CourtOrder, local_date};
use domain::seizure::SeizureRules;
use store::Store;
use store::court::{ApplyOutcome, OrderJob, Payload};
use tokio::sync::{mpsc, oneshot};

use crate::Clock;

/// Most orders committed together.
pub const MAX_GROUP: usize = 128;
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

struct Job {
    partner_id: String,
    order: CourtOrder,
    content_sha256: String,
    payload: OwnedPayload,
    reply: oneshot::Sender<Result<ApplyOutcome, String>>,
}

/// The handle requests use; cheap to clone.
#[derive(Debug, Clone)]
pub struct CourtWriter {
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("partner_id", &self.partner_id).field("order_no", &self.order.order_no).finish()
    }
}

impl CourtWriter {
    /// Starts the writer task on the current Tokio runtime. It ends when every handle is dropped.
    pub fn spawn(store: Store, rules: SeizureRules, clock: Clock) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rules, clock, receiver));
        Self { sender }
    }

    /// Applies one order; returns once its group has committed (or failed).
    pub async fn apply(
        &self,
        partner_id: &str,
        order: CourtOrder,
        content_sha256: String,
        payload: OwnedPayload,
    ) -> Result<ApplyOutcome, String> {
        let (reply, answer) = oneshot::channel();
        let job = Job { partner_id: partner_id.to_owned(), order, content_sha256, payload, reply };
        self.sender.send(job).await.map_err(|_| "the order writer has stopped".to_owned())?;
        answer.await.map_err(|_| "the order writer stopped before answering".to_owned())?
    }
}

async fn run(store: Store, rules: SeizureRules, clock: Clock, mut receiver: mpsc::Receiver<Job>) {
    let render = super::xml::receipt_element;
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let now = clock();
        let today = local_date(now);
        let jobs: Vec<OrderJob<'_>> = group
            .iter()
            .map(|j| OrderJob {
                partner_id: &j.partner_id,
                order: &j.order,
                content_sha256: &j.content_sha256,
                payload: match &j.payload {
                    OwnedPayload::InInbox(id) => Payload::InInbox(*id),
                    OwnedPayload::New { content_type, bytes } => {
                        Payload::New { channel: super::CHANNEL, content_type, bytes }
                    }
                },
            })
            .collect();
        let results = store.apply_court_orders(&jobs, rules, now, today, &render).await;
        drop(jobs);
        match results {
            Ok(results) => {
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result.map_err(|e| e.to_string()));
                }
            }
            Err(error) => {
                tracing::error!(message = "group commit failed; no order of the group was applied", size = group.len(), %error);
                for job in group {
                    let _ = job.reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

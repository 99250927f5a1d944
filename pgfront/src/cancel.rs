//! Cancel requests of one backend.

use tokio::sync::Notify;

/// A backend's cancel requests: a count that a statement compares with the
/// count when it began, so that a cancel that arrives while rows are being
/// sent or the audit is written is not lost, and one that arrives between
/// statements cancels nothing.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    requested: std::sync::atomic::AtomicU64,
    notify: Notify,
}

impl Cancel {
    /// A cancel request arrived.
    pub(crate) fn request(&self) {
        self.requested.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// The count now, for a statement that begins.
    pub(crate) fn mark(&self) -> u64 {
        self.requested.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a cancel arrived since `mark`.
    pub(crate) fn since(&self, mark: u64) -> bool {
        self.mark() != mark
    }

    /// Completes when a cancel arrives after `mark` (at once if one has).
    pub(crate) async fn after(&self, mark: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.since(mark) {
                return;
            }
            notified.await;
        }
    }
}

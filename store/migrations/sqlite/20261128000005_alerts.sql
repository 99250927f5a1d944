-- Alerts: the state of each alert (one row per kind and subject) as the last
-- evaluation after a warehouse refresh left it, and what the webhook was last told.

CREATE TABLE alerts (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    snapshot_id TEXT,
    since TEXT NOT NULL,
    evaluated_at TEXT NOT NULL,
    notified_state TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error TEXT,
    PRIMARY KEY (kind, subject)
);

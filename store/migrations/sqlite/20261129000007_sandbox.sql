-- Sandbox partners: a court partner flagged `sandbox` pushes orders that get
-- every check and a real receipt but are applied to a separate sandbox
-- register (its own database), never to this one. `sandbox_requests` is used
-- in that sandbox database: each request of a sandbox partner with what was
-- wrong with it (problems: a JSON array), for the partner's report.
ALTER TABLE partners ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sandbox_requests (
    id INTEGER PRIMARY KEY,
    partner_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    orders INTEGER NOT NULL,
    problems TEXT NOT NULL
);
CREATE INDEX sandbox_requests_partner ON sandbox_requests (partner_id, id);

-- Connectors: run statistics for health, the court platform's feedback
-- outbox, reconciliation results and the anomalies they find.

ALTER TABLE connector_state ADD COLUMN last_run_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connector_state ADD COLUMN last_run_millis INTEGER NOT NULL DEFAULT 0;

CREATE TABLE court_feedback_outbox (
    partner_id TEXT NOT NULL REFERENCES partners (id),
    request_no TEXT NOT NULL,
    result INTEGER NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error TEXT,
    acked_at TEXT,
    PRIMARY KEY (partner_id, request_no)
);
CREATE INDEX court_feedback_pending ON court_feedback_outbox (acked_at);

CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    partner TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    UNIQUE (kind, subject)
);

CREATE TABLE reconciliation (
    day TEXT NOT NULL,
    partner TEXT NOT NULL,
    submitted INTEGER NOT NULL,
    registered INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    missing INTEGER NOT NULL,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (day, partner)
);

CREATE INDEX cases_loan_ref ON cases (loan_ref);
CREATE INDEX cases_filing_no ON cases (filing_no);
-- Linking looks partner records up by their own numbers, whatever the source.
CREATE INDEX loan_applications_external_id ON loan_applications (external_id);
CREATE INDEX contract_filings_filing_no ON contract_filings (filing_no);

-- Connectors: run statistics for health, the court platform's feedback
-- outbox, reconciliation results and the anomalies they find.

ALTER TABLE connector_state ADD COLUMN last_run_rows BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connector_state ADD COLUMN last_run_millis BIGINT NOT NULL DEFAULT 0;

CREATE TABLE court_feedback_outbox (
    partner_id TEXT NOT NULL REFERENCES partners (id),
    request_no TEXT NOT NULL,
    result BIGINT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_attempt_at TIMESTAMPTZ,
    last_error TEXT,
    acked_at TIMESTAMPTZ,
    PRIMARY KEY (partner_id, request_no)
);
CREATE INDEX court_feedback_pending ON court_feedback_outbox (acked_at);

CREATE TABLE anomalies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    partner TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, subject)
);

CREATE TABLE reconciliation (
    day DATE NOT NULL,
    partner TEXT NOT NULL,
    submitted BIGINT NOT NULL,
    registered BIGINT NOT NULL,
    refused BIGINT NOT NULL,
    missing BIGINT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, partner)
);

CREATE INDEX cases_loan_ref ON cases (loan_ref);
CREATE INDEX cases_filing_no ON cases (filing_no);
-- Linking looks partner records up by their own numbers, whatever the source.
CREATE INDEX loan_applications_external_id ON loan_applications (external_id);
CREATE INDEX contract_filings_filing_no ON contract_filings (filing_no);

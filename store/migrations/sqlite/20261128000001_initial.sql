-- wangban normalized store, SQLite dialect.
-- One logical schema with migrations/postgres: keep the two in step (a test compares their tables and columns).
-- Conventions: integers are INTEGER, instants TEXT in RFC 3339 UTC, dates TEXT yyyy-mm-dd, payloads BLOB.
-- SQLite compares those texts in time order, which the upserts rely on.

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    rate_limit_per_minute INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE partner_credentials (
    id INTEGER PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    valid_until TEXT
);
CREATE INDEX partner_credentials_partner ON partner_credentials (partner_id);

CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_no TEXT NOT NULL,
    business_type TEXT NOT NULL,
    vendor_code INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    delivery INTEGER,
    applicant_kind TEXT NOT NULL,
    agent_kind TEXT,
    agent_id TEXT,
    applicant_name TEXT NOT NULL,
    applicant_id_no TEXT NOT NULL,
    district TEXT NOT NULL,
    unit_no TEXT,
    status TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    accepted_at TEXT,
    verified_at TEXT,
    recorded_at TEXT,
    cert_prepared_at TEXT,
    issued_at TEXT,
    archived_at TEXT,
    closed_at TEXT,
    correction_count INTEGER NOT NULL DEFAULT 0,
    filing_no TEXT,
    loan_ref TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX cases_submitted ON cases (submitted_at);
CREATE INDEX cases_unit ON cases (unit_no);
CREATE INDEX cases_ingested ON cases (ingested_at);

CREATE TABLE qc_findings (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_source TEXT NOT NULL,
    case_external_id TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    section TEXT NOT NULL,
    description TEXT NOT NULL,
    found_at TEXT NOT NULL,
    corrected_at TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_source TEXT NOT NULL,
    case_external_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    channel TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    evaluated_at TEXT NOT NULL,
    rectified_at TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE contract_filings (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    filing_no TEXT NOT NULL,
    developer_name TEXT NOT NULL,
    developer_credit_code TEXT NOT NULL,
    buyer_name TEXT NOT NULL,
    buyer_id_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    filed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    source_file TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (source, filing_no)
);

CREATE TABLE source_files (
    source TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    loaded_at TEXT NOT NULL,
    PRIMARY KEY (source, file_name)
);

CREATE TABLE loan_applications (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    lender_kind TEXT NOT NULL,
    borrower_name TEXT NOT NULL,
    borrower_id_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    status TEXT NOT NULL,
    registry_case_no TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX inbox_received ON inbox (received_at);

CREATE TABLE court_orders (
    id INTEGER PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    order_no TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    inbox_id INTEGER REFERENCES inbox (id),
    action TEXT NOT NULL,
    court_code TEXT NOT NULL,
    court_name TEXT NOT NULL,
    case_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    cert_no TEXT,
    respondent_name TEXT NOT NULL,
    respondent_id_no TEXT NOT NULL,
    start_date TEXT,
    end_date TEXT,
    original_order_no TEXT,
    ruling_no TEXT NOT NULL,
    judge TEXT NOT NULL,
    served_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    receipt_status TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT,
    queue_position INTEGER,
    receipt_xml TEXT NOT NULL,
    UNIQUE (partner_id, order_no)
);

CREATE TABLE seizures (
    id INTEGER PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    order_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    case_no TEXT NOT NULL,
    served_at TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    state TEXT NOT NULL,
    ended_on TEXT,
    renewals INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (partner_id, order_no)
);
CREATE INDEX seizures_unit_state ON seizures (unit_no, state);

CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    position TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    replayed_at TEXT,
    replay_outcome TEXT
);
CREATE INDEX quarantine_source ON quarantine (source, created_at);

CREATE TABLE connector_state (
    connector TEXT PRIMARY KEY,
    cursor TEXT,
    status TEXT NOT NULL DEFAULT 'never_run',
    last_run_at TEXT,
    last_success_at TEXT,
    last_error TEXT,
    source_watermark TEXT,
    records_total INTEGER NOT NULL DEFAULT 0,
    errors_total INTEGER NOT NULL DEFAULT 0,
    quarantined_total INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The audit log is append-only: refuse updates and deletes at the database.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

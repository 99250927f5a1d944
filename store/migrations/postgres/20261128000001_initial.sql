-- wangban normalized store, PostgreSQL dialect.
-- One logical schema with migrations/sqlite: keep the two in step (a test compares their tables and columns).
-- Conventions: integers are BIGINT, instants TIMESTAMPTZ (UTC), calendar dates DATE, payloads BYTEA.

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    rate_limit_per_minute BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE partner_credentials (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ
);
CREATE INDEX partner_credentials_partner ON partner_credentials (partner_id);

CREATE TABLE cases (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_no TEXT NOT NULL,
    business_type TEXT NOT NULL,
    vendor_code BIGINT NOT NULL,
    channel BIGINT NOT NULL,
    delivery BIGINT,
    applicant_kind TEXT NOT NULL,
    agent_kind TEXT,
    agent_id TEXT,
    applicant_name TEXT NOT NULL,
    applicant_id_no TEXT NOT NULL,
    district TEXT NOT NULL,
    unit_no TEXT,
    status TEXT NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    verified_at TIMESTAMPTZ,
    recorded_at TIMESTAMPTZ,
    cert_prepared_at TIMESTAMPTZ,
    issued_at TIMESTAMPTZ,
    archived_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    correction_count BIGINT NOT NULL DEFAULT 0,
    filing_no TEXT,
    loan_ref TEXT,
    source_updated_at TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX cases_submitted ON cases (submitted_at);
CREATE INDEX cases_unit ON cases (unit_no);
CREATE INDEX cases_ingested ON cases (ingested_at);

CREATE TABLE qc_findings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_source TEXT NOT NULL,
    case_external_id TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    section TEXT NOT NULL,
    description TEXT NOT NULL,
    found_at TIMESTAMPTZ NOT NULL,
    corrected_at TIMESTAMPTZ,
    source_updated_at TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE evaluations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    case_source TEXT NOT NULL,
    case_external_id TEXT NOT NULL,
    level BIGINT NOT NULL,
    channel TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    evaluated_at TIMESTAMPTZ NOT NULL,
    rectified_at TIMESTAMPTZ,
    source_updated_at TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE contract_filings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    filing_no TEXT NOT NULL,
    developer_name TEXT NOT NULL,
    developer_credit_code TEXT NOT NULL,
    buyer_name TEXT NOT NULL,
    buyer_id_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    filed_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    source_file TEXT,
    source_updated_at TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, filing_no)
);

CREATE TABLE source_files (
    source TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, file_name)
);

CREATE TABLE loan_applications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    lender_kind TEXT NOT NULL,
    borrower_name TEXT NOT NULL,
    borrower_id_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    registry_case_no TEXT,
    source_updated_at TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, external_id)
);

CREATE TABLE inbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    partner_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX inbox_received ON inbox (received_at);

CREATE TABLE court_orders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    order_no TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    inbox_id BIGINT REFERENCES inbox (id),
    action TEXT NOT NULL,
    court_code TEXT NOT NULL,
    court_name TEXT NOT NULL,
    case_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    cert_no TEXT,
    respondent_name TEXT NOT NULL,
    respondent_id_no TEXT NOT NULL,
    start_date DATE,
    end_date DATE,
    original_order_no TEXT,
    ruling_no TEXT NOT NULL,
    judge TEXT NOT NULL,
    served_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    receipt_status TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT,
    queue_position BIGINT,
    receipt_xml TEXT NOT NULL,
    UNIQUE (partner_id, order_no)
);

CREATE TABLE seizures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    order_no TEXT NOT NULL,
    unit_no TEXT NOT NULL,
    case_no TEXT NOT NULL,
    served_at TIMESTAMPTZ NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    state TEXT NOT NULL,
    ended_on DATE,
    renewals BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (partner_id, order_no)
);
CREATE INDEX seizures_unit_state ON seizures (unit_no, state);

CREATE TABLE quarantine (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL,
    position TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BYTEA NOT NULL,
    replayed_at TIMESTAMPTZ,
    replay_outcome TEXT
);
CREATE INDEX quarantine_source ON quarantine (source, created_at);

CREATE TABLE connector_state (
    connector TEXT PRIMARY KEY,
    cursor TEXT,
    status TEXT NOT NULL DEFAULT 'never_run',
    last_run_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_error TEXT,
    source_watermark TIMESTAMPTZ,
    records_total BIGINT NOT NULL DEFAULT 0,
    errors_total BIGINT NOT NULL DEFAULT 0,
    quarantined_total BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The audit log is append-only: refuse updates and deletes at the database.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

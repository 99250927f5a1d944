-- A case's correction count (bzcs) may be undetermined: the registry sent
-- something that is not a whole number. The case is kept and counted; its
-- first-time-right is left undetermined (NULL), never read as 0. SQLite
-- cannot drop a NOT NULL constraint: the table is rebuilt with the same
-- columns, rows, ids and indexes (no other table refers to it).
CREATE TABLE cases_rebuilt (
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
    correction_count INTEGER DEFAULT 0,
    filing_no TEXT,
    loan_ref TEXT,
    source_updated_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    handler TEXT,
    UNIQUE (source, external_id)
);
INSERT INTO cases_rebuilt (id, source, external_id, case_no, business_type, vendor_code, channel, delivery,
    applicant_kind, agent_kind, agent_id, applicant_name, applicant_id_no, district, unit_no, status,
    submitted_at, accepted_at, verified_at, recorded_at, cert_prepared_at, issued_at, archived_at, closed_at,
    correction_count, filing_no, loan_ref, source_updated_at, ingested_at, handler)
SELECT id, source, external_id, case_no, business_type, vendor_code, channel, delivery,
    applicant_kind, agent_kind, agent_id, applicant_name, applicant_id_no, district, unit_no, status,
    submitted_at, accepted_at, verified_at, recorded_at, cert_prepared_at, issued_at, archived_at, closed_at,
    correction_count, filing_no, loan_ref, source_updated_at, ingested_at, handler
FROM cases;
DROP TABLE cases;
ALTER TABLE cases_rebuilt RENAME TO cases;
CREATE INDEX cases_submitted ON cases (submitted_at);
CREATE INDEX cases_unit ON cases (unit_no);
CREATE INDEX cases_ingested ON cases (ingested_at);
CREATE INDEX cases_loan_ref ON cases (loan_ref);
CREATE INDEX cases_filing_no ON cases (filing_no);
CREATE INDEX cases_handler ON cases (handler, submitted_at);

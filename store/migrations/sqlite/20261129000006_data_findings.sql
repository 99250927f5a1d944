-- Data-quality findings: a field of a stored record that broke its rule (an
-- identifier failing its check, an unknown code, a malformed value). The record
-- itself is kept and counted; the flawed value is kept here masked, one row per
-- (source, record, field), replaced whenever a newer version of the record is
-- written (a corrected record clears its findings).
CREATE TABLE data_findings (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    field TEXT NOT NULL,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    value_masked TEXT NOT NULL,
    found_at TEXT NOT NULL,
    UNIQUE (source, record_key, field)
);
CREATE INDEX data_findings_found ON data_findings (source, found_at);

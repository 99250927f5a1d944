-- The day reconciliation of configured partners: the partner's count of keys
-- per day (by their latest version) against ours, and what a targeted re-read
-- of a differing day found.
CREATE TABLE partner_day_checks (
    connector TEXT NOT NULL,
    day TEXT NOT NULL,
    partner_rows BIGINT NOT NULL,
    our_rows_before BIGINT NOT NULL,
    our_rows_after BIGINT NOT NULL,
    reread_rows BIGINT NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connector, day)
);

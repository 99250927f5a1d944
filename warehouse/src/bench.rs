//! The raw queries the warehouse benchmark runs side by side with DuckDB
//! (`bench/warehouse.sh`, `wangban warehouse bench`): plain SQL both engines
//! accept unchanged over the `cases` table (hive-partitioned by `month`).

/// (name, SQL).
pub const QUERIES: &[(&str, &str)] = &[
    (
        "online rate by type x month",
        "SELECT business_type, month, SUM(CASE WHEN online THEN 1 ELSE 0 END) AS online, COUNT(*) AS cases \
         FROM cases WHERE in_scope GROUP BY business_type, month ORDER BY business_type, month",
    ),
    (
        "on-time by district",
        "SELECT district, SUM(CASE WHEN on_time THEN 1 ELSE 0 END) AS on_time, COUNT(*) AS due \
         FROM cases WHERE in_scope AND on_time IS NOT NULL GROUP BY district ORDER BY district",
    ),
    (
        "end-to-end by channel x applicant kind",
        "SELECT channel, applicant_kind, SUM(CASE WHEN end_to_end THEN 1 ELSE 0 END) AS e2e, COUNT(*) AS cases \
         FROM cases WHERE in_scope GROUP BY channel, applicant_kind ORDER BY channel, applicant_kind",
    ),
    (
        "one month, one district, counter cases",
        "SELECT business_type, COUNT(*) AS cases FROM cases \
         WHERE month = '2025-06' AND district = '430405' AND channel = 4 GROUP BY business_type ORDER BY business_type",
    ),
    (
        "corrections per type",
        "SELECT business_type, AVG(correction_count) AS corrections, MAX(correction_count) AS most \
         FROM cases GROUP BY business_type ORDER BY business_type",
    ),
    // The same aggregation keyed on an integer column (one business type has
    // several vendor codes): what the previous query would cost if the
    // warehouse coded its dimensions as integers.
    (
        "corrections per vendor code (integer key)",
        "SELECT vendor_code, AVG(correction_count) AS corrections, MAX(correction_count) AS most \
         FROM cases GROUP BY vendor_code ORDER BY vendor_code",
    ),
];

/// The question BI tools send most, which the rollup rewrite answers from
/// `case_counts` (`warehouse::rollup`): timed on `cases` and rewritten.
pub const ROLLUP_QUESTION: (&str, &str) = (
    "count by type x month",
    "SELECT business_type, month, COUNT(*) AS cases FROM cases GROUP BY business_type, month ORDER BY business_type, month",
);

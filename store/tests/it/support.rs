//! Shared test values. (`store::both_backends!` runs a test on both backends.)

use chrono::{DateTime, TimeZone, Utc};

/// A fixed instant: tests never read the clock.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("valid test time")
}

//! The domain of online real-estate registration: identifiers, the business-type
//! catalogue, channels and the online rules, the case life cycle, the
//! working-day calendar and the court seizure rules.
//!
//! Pure by design: no IO, no async, no serde. Files are read by callers and
//! handed in as text; time is always passed in, never read.
//!
//! # Layout
//!
//! - [`ident`]: identifier newtypes (resident ID, credit code, unit number,
//!   certificate number, court case number) and Hunan's divisions (GB/T 2260).
//! - [`business`]: business types, vendor codes, phases, limits, the catalogue.
//! - [`channel`]: application channels, delivery, applicant and agent kinds, the online rules.
//! - [`partner`]: the kinds of partner system.
//! - [`court_order`]: a validated court order (seize, renew, release).
//! - [`time`]: China Standard Time (local dates, day ends, parsing) and the [`time::Clock`].
//! - [`status`]: the case life cycle.
//! - [`calendar`]: working days, office hours, the counting rule.
//! - [`seizure`]: the seizure state machine.

pub mod business;
pub mod calendar;
pub mod channel;
pub mod court_order;
pub mod ident;
pub mod partner;
pub mod seizure;
pub mod status;
pub mod time;

pub use business::{BusinessType, Catalogue, Limit, LimitUnit, OnlineScope, Phase, VendorCode};
pub use calendar::Calendar;
pub use channel::{AgentKind, ApplicantKind, Channel, Delivery, is_end_to_end_online};
pub use partner::PartnerKind;
pub use status::CaseStatus;
pub use time::Clock;

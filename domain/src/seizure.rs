//! Court seizure rules (查封、轮候查封、续封、解封) as a pure state machine over
//! the seizures of one real-estate unit.
//!
//! - A seizure lasts at most [`SeizureRules::max_years`] (3; older records 2).
//! - A seizure on a unit that already has an active one is queued (轮候查封),
//!   ordered by the time the court's notice was served; ties by order number.
//! - Renewal (续封) applies to the active seizure before it expires; the new
//!   period may again last up to the limit, from its own start.
//! - Release (解封) of the active seizure promotes the earliest queued one
//!   (轮候转查封), whose period then starts on the promotion day and keeps its
//!   requested length (capped at the limit); release of a queued seizure
//!   takes it out of the queue.
//! - An active seizure past its end date lapses (失效) on the day after its
//!   end, promoting the next one from that day.
//! - Released and lapsed seizures never change again.
//!
//! Every refusal is a typed [`SeizureError`]; every change is reported as a
//! [`Transition`] so the store can persist exactly what happened.

use chrono::{Days, Months, NaiveDate, NaiveDateTime};

/// Limits that differ between current and older records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeizureRules {
    /// Longest seizure period in years (3 under current rules).
    pub max_years: u32,
}

impl Default for SeizureRules {
    fn default() -> Self {
        Self { max_years: 3 }
    }
}

impl SeizureRules {
    /// The latest end date allowed for a period starting on `start`.
    pub fn latest_end(&self, start: NaiveDate) -> NaiveDate {
        start.checked_add_months(Months::new(12 * self.max_years)).unwrap_or(NaiveDate::MAX)
    }
}

/// Where a seizure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeizureState {
    /// 查封: in force.
    Active,
    /// 轮候查封: waiting behind the active seizure.
    Queued,
    /// 解封: released by the court.
    Released,
    /// 失效: expired without renewal.
    Lapsed,
}

impl SeizureState {
    /// Stable code used in storage.
    pub fn code(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Queued => "queued",
            Self::Released => "released",
            Self::Lapsed => "lapsed",
        }
    }

    /// The state for a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Active, Self::Queued, Self::Released, Self::Lapsed].into_iter().find(|s| s.code() == code)
    }

    /// Released or lapsed: nothing may change it any more.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Released | Self::Lapsed)
    }
}

/// One seizure order on a unit and its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seizure {
    /// The court's order number; renewals and releases refer to it.
    pub order_no: String,
    /// The court case number.
    pub case_no: String,
    /// When the court's notice was served (送达时间): orders the queue.
    pub served_at: NaiveDateTime,
    /// First day of the current period (for a queued seizure: as requested).
    pub start: NaiveDate,
    /// Last day of the current period, inclusive.
    pub end: NaiveDate,
    /// Current state.
    pub state: SeizureState,
    /// The day it was released or lapsed.
    pub ended_on: Option<NaiveDate>,
    /// How many times it was renewed.
    pub renewals: u32,
}

/// A court's request to seize a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeizeRequest {
    /// The court's order number, unique per unit.
    pub order_no: String,
    /// The court case number.
    pub case_no: String,
    /// When the notice was served.
    pub served_at: NaiveDateTime,
    /// Requested first day.
    pub start: NaiveDate,
    /// Requested last day, inclusive.
    pub end: NaiveDate,
}

/// A change the machine made, for the store to persist and the audit log to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A new seizure is in force.
    Seized { order_no: String },
    /// A new seizure joined the queue at `position` (1 = next).
    Queued { order_no: String, position: usize },
    /// The active seizure's end moved to `new_end`.
    Renewed { order_no: String, new_end: NaiveDate },
    /// A seizure was released.
    Released { order_no: String },
    /// The active seizure expired.
    Lapsed { order_no: String, on: NaiveDate },
    /// A queued seizure became active (轮候转查封) with a new period.
    Promoted { order_no: String, start: NaiveDate, end: NaiveDate },
}

/// Why the machine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeizureError {
    /// End before start.
    #[error("end date {end} is before start date {start}")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
    /// The period is longer than the rules allow.
    #[error("period {start} to {end} is longer than {max_years} years (latest end {latest_end})")]
    PeriodTooLong { start: NaiveDate, end: NaiveDate, max_years: u32, latest_end: NaiveDate },
    /// The requested period is already over.
    #[error("period ended on {end}, before today {today}")]
    AlreadyOver { end: NaiveDate, today: NaiveDate },
    /// The order number is already used on this unit.
    #[error("order {order_no} is already registered on this unit")]
    DuplicateOrder { order_no: String },
    /// No seizure with that order number on this unit.
    #[error("no seizure with order number {order_no} on this unit")]
    UnknownOrder { order_no: String },
    /// The seizure was released or lapsed.
    #[error("seizure {order_no} is already {state:?}")]
    AlreadyEnded { order_no: String, state: SeizureState },
    /// Only the active seizure can be renewed.
    #[error("seizure {order_no} is queued, not active; only an active seizure can be renewed")]
    NotActive { order_no: String },
    /// Renewal came after the seizure expired.
    #[error("renewal of {order_no} on {today} is after its expiry on {end}")]
    RenewalAfterExpiry { order_no: String, end: NaiveDate, today: NaiveDate },
    /// The renewal does not extend the seizure, or leaves a gap.
    #[error("renewal period {start} to {end} must start by {latest_start} and end after {current_end}")]
    RenewalNotContinuous { start: NaiveDate, end: NaiveDate, latest_start: NaiveDate, current_end: NaiveDate },
}

/// The seizures of one unit, past and present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitSeizures {
    seizures: Vec<Seizure>,
    rules: SeizureRules,
}

impl UnitSeizures {
    /// An empty record under the given rules.
    pub fn new(rules: SeizureRules) -> Self {
        Self { seizures: Vec::new(), rules }
    }

    /// Rebuilds the record from stored seizures.
    pub fn from_seizures(rules: SeizureRules, seizures: Vec<Seizure>) -> Self {
        Self { seizures, rules }
    }

    /// All seizures, in the order they were registered.
    pub fn seizures(&self) -> &[Seizure] {
        &self.seizures
    }

    /// The seizure in force, if any.
    pub fn active(&self) -> Option<&Seizure> {
        self.seizures.iter().find(|s| s.state == SeizureState::Active)
    }

    /// The queue, next first.
    pub fn queue(&self) -> Vec<&Seizure> {
        let mut queued: Vec<&Seizure> = self.seizures.iter().filter(|s| s.state == SeizureState::Queued).collect();
        queued.sort_by(|a, b| (a.served_at, &a.order_no).cmp(&(b.served_at, &b.order_no)));
        queued
    }

    /// One seizure by order number.
    pub fn get(&self, order_no: &str) -> Option<&Seizure> {
        self.seizures.iter().find(|s| s.order_no == order_no)
    }

    /// 1-based queue position of a queued seizure.
    pub fn queue_position(&self, order_no: &str) -> Option<usize> {
        self.queue().iter().position(|s| s.order_no == order_no).map(|i| i + 1)
    }

    /// Registers a seizure: active if the unit is free, otherwise queued.
    pub fn seize(&mut self, request: SeizeRequest, today: NaiveDate) -> Result<Vec<Transition>, SeizureError> {
        self.check_period(request.start, request.end)?;
        if request.end < today {
            return Err(SeizureError::AlreadyOver { end: request.end, today });
        }
        if self.get(&request.order_no).is_some() {
            return Err(SeizureError::DuplicateOrder { order_no: request.order_no });
        }
        let mut transitions = self.lapse_expired(today);
        let state = if self.active().is_some() { SeizureState::Queued } else { SeizureState::Active };
        let order_no = request.order_no.clone();
        self.seizures.push(Seizure {
            order_no: request.order_no,
            case_no: request.case_no,
            served_at: request.served_at,
            start: request.start,
            end: request.end,
            state,
            ended_on: None,
            renewals: 0,
        });
        transitions.push(match state {
            SeizureState::Active => Transition::Seized { order_no: order_no.clone() },
            _ => {
                let position = self.queue_position(&order_no).unwrap_or(0);
                Transition::Queued { order_no, position }
            }
        });
        Ok(transitions)
    }

    /// Renews the active seizure `order_no` with a period `start..=end`, which
    /// must begin no later than the day after the current end and end later than it.
    pub fn renew(
        &mut self,
        order_no: &str,
        start: NaiveDate,
        end: NaiveDate,
        today: NaiveDate,
    ) -> Result<Vec<Transition>, SeizureError> {
        self.check_period(start, end)?;
        let rules = self.rules;
        let seizure = self.find_open(order_no)?;
        if seizure.state != SeizureState::Active {
            return Err(SeizureError::NotActive { order_no: order_no.to_owned() });
        }
        if today > seizure.end {
            return Err(SeizureError::RenewalAfterExpiry { order_no: order_no.to_owned(), end: seizure.end, today });
        }
        let latest_start = seizure.end + Days::new(1);
        if start > latest_start || end <= seizure.end {
            return Err(SeizureError::RenewalNotContinuous { start, end, latest_start, current_end: seizure.end });
        }
        debug_assert!(end <= rules.latest_end(start));
        seizure.start = start.max(seizure.start);
        seizure.end = end;
        seizure.renewals += 1;
        Ok(vec![Transition::Renewed { order_no: order_no.to_owned(), new_end: end }])
    }

    /// Releases `order_no` on `today`; releasing the active seizure promotes the next in the queue.
    pub fn release(&mut self, order_no: &str, today: NaiveDate) -> Result<Vec<Transition>, SeizureError> {
        let seizure = self.find_open(order_no)?;
        let was_active = seizure.state == SeizureState::Active;
        seizure.state = SeizureState::Released;
        seizure.ended_on = Some(today);
        let mut transitions = vec![Transition::Released { order_no: order_no.to_owned() }];
        if was_active {
            transitions.extend(self.promote_next(today));
            transitions.extend(self.lapse_expired(today));
        }
        Ok(transitions)
    }

    /// The daily job: lapses every active seizure whose end is before `today`
    /// and promotes the queue, repeatedly, as of the day after each end.
    pub fn lapse_expired(&mut self, today: NaiveDate) -> Vec<Transition> {
        let mut transitions = Vec::new();
        while let Some(index) = self.seizures.iter().position(|s| s.state == SeizureState::Active && s.end < today) {
            let seizure = &mut self.seizures[index];
            let on = seizure.end + Days::new(1);
            seizure.state = SeizureState::Lapsed;
            seizure.ended_on = Some(on);
            transitions.push(Transition::Lapsed { order_no: seizure.order_no.clone(), on });
            transitions.extend(self.promote_next(on));
        }
        transitions
    }

    fn promote_next(&mut self, on: NaiveDate) -> Option<Transition> {
        let next = self.queue().first().map(|s| s.order_no.clone())?;
        let rules = self.rules;
        let seizure = self.seizures.iter_mut().find(|s| s.order_no == next)?;
        let length = Days::new(u64::try_from((seizure.end - seizure.start).num_days()).unwrap_or(0));
        let end = (on + length).min(rules.latest_end(on));
        seizure.state = SeizureState::Active;
        seizure.start = on;
        seizure.end = end;
        Some(Transition::Promoted { order_no: next, start: on, end })
    }

    fn find_open(&mut self, order_no: &str) -> Result<&mut Seizure, SeizureError> {
        let seizure = self
            .seizures
            .iter_mut()
            .find(|s| s.order_no == order_no)
            .ok_or_else(|| SeizureError::UnknownOrder { order_no: order_no.to_owned() })?;
        if seizure.state.is_ended() {
            return Err(SeizureError::AlreadyEnded { order_no: order_no.to_owned(), state: seizure.state });
        }
        Ok(seizure)
    }

    fn check_period(&self, start: NaiveDate, end: NaiveDate) -> Result<(), SeizureError> {
        if end < start {
            return Err(SeizureError::EndBeforeStart { start, end });
        }
        let latest_end = self.rules.latest_end(start);
        if end > latest_end {
            return Err(SeizureError::PeriodTooLong { start, end, max_years: self.rules.max_years, latest_end });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    fn request(order_no: &str, served: &str, start: &str, end: &str) -> SeizeRequest {
        SeizeRequest {
            order_no: order_no.into(),
            case_no: "(2024)湘0405执1号".into(),
            served_at: d(served).and_hms_opt(10, 0, 0).expect("time"),
            start: d(start),
            end: d(end),
        }
    }

    #[test]
    fn second_seizure_queues_and_is_promoted_on_release() {
        let mut unit = UnitSeizures::default();
        let today = d("2024-10-10");
        assert_eq!(
            unit.seize(request("A", "2024-10-10", "2024-10-10", "2027-10-09"), today),
            Ok(vec![Transition::Seized { order_no: "A".into() }])
        );
        assert_eq!(
            unit.seize(request("C", "2024-10-12", "2024-10-12", "2025-10-11"), today),
            Ok(vec![Transition::Queued { order_no: "C".into(), position: 1 }])
        );
        // B was served earlier than C, so it goes ahead of C.
        assert_eq!(
            unit.seize(request("B", "2024-10-11", "2024-10-11", "2025-10-10"), today),
            Ok(vec![Transition::Queued { order_no: "B".into(), position: 1 }])
        );
        assert_eq!(unit.queue_position("C"), Some(2));
        let transitions = unit.release("A", d("2024-12-02")).expect("release");
        assert_eq!(
            transitions,
            vec![
                Transition::Released { order_no: "A".into() },
                Transition::Promoted { order_no: "B".into(), start: d("2024-12-02"), end: d("2025-12-01") },
            ]
        );
        assert_eq!(unit.active().map(|s| s.order_no.as_str()), Some("B"));
        assert_eq!(unit.queue_position("C"), Some(1));
    }

    #[test]
    fn seizure_longer_than_three_years_is_refused() {
        let mut unit = UnitSeizures::default();
        let err =
            unit.seize(request("A", "2024-10-10", "2024-10-10", "2027-10-11"), d("2024-10-10")).expect_err("too long");
        assert!(matches!(err, SeizureError::PeriodTooLong { max_years: 3, .. }));
        let mut old = UnitSeizures::new(SeizureRules { max_years: 2 });
        assert!(old.seize(request("A", "2024-10-10", "2024-10-10", "2027-10-09"), d("2024-10-10")).is_err());
    }

    #[test]
    fn renewal_before_expiry_extends_and_after_expiry_is_refused() {
        let mut unit = UnitSeizures::default();
        unit.seize(request("A", "2024-01-02", "2024-01-02", "2025-01-01"), d("2024-01-02")).expect("seize");
        assert_eq!(
            unit.renew("A", d("2025-01-02"), d("2028-01-01"), d("2024-12-20")),
            Ok(vec![Transition::Renewed { order_no: "A".into(), new_end: d("2028-01-01") }])
        );
        assert!(matches!(
            unit.renew("A", d("2028-01-02"), d("2029-01-01"), d("2028-01-02")),
            Err(SeizureError::RenewalAfterExpiry { .. })
        ));
        assert!(matches!(
            unit.renew("A", d("2028-01-02"), d("2031-06-01"), d("2027-12-01")),
            Err(SeizureError::PeriodTooLong { .. })
        ));
        assert!(matches!(
            unit.renew("A", d("2028-03-01"), d("2029-01-01"), d("2027-12-01")),
            Err(SeizureError::RenewalNotContinuous { .. })
        ));
    }

    #[test]
    fn lapse_promotes_from_the_day_after_the_end() {
        let mut unit = UnitSeizures::default();
        unit.seize(request("A", "2024-01-02", "2024-01-02", "2024-06-30"), d("2024-01-02")).expect("seize");
        unit.seize(request("B", "2024-02-01", "2024-02-01", "2024-03-01"), d("2024-02-01")).expect("queue");
        assert_eq!(unit.lapse_expired(d("2024-06-30")), vec![]);
        assert_eq!(
            unit.lapse_expired(d("2024-07-05")),
            vec![
                Transition::Lapsed { order_no: "A".into(), on: d("2024-07-01") },
                Transition::Promoted { order_no: "B".into(), start: d("2024-07-01"), end: d("2024-07-30") },
            ]
        );
        // Nothing changes an ended seizure.
        assert!(matches!(unit.release("A", d("2024-07-05")), Err(SeizureError::AlreadyEnded { .. })));
        assert!(matches!(
            unit.renew("A", d("2024-07-01"), d("2025-01-01"), d("2024-07-05")),
            Err(SeizureError::AlreadyEnded { .. })
        ));
    }

    #[test]
    fn releasing_a_queued_seizure_takes_it_out_of_the_queue() {
        let mut unit = UnitSeizures::default();
        unit.seize(request("A", "2024-01-02", "2024-01-02", "2025-01-01"), d("2024-01-02")).expect("seize");
        unit.seize(request("B", "2024-01-03", "2024-01-03", "2025-01-01"), d("2024-01-03")).expect("queue");
        assert_eq!(unit.release("B", d("2024-02-01")), Ok(vec![Transition::Released { order_no: "B".into() }]));
        assert_eq!(unit.active().map(|s| s.order_no.as_str()), Some("A"));
        assert!(unit.queue().is_empty());
        assert!(matches!(
            unit.renew("B", d("2024-02-01"), d("2025-01-01"), d("2024-02-01")),
            Err(SeizureError::AlreadyEnded { .. })
        ));
    }

    #[test]
    fn unknown_and_duplicate_orders_are_refused() {
        let mut unit = UnitSeizures::default();
        assert!(matches!(unit.release("X", d("2024-01-01")), Err(SeizureError::UnknownOrder { .. })));
        unit.seize(request("A", "2024-01-02", "2024-01-02", "2025-01-01"), d("2024-01-02")).expect("seize");
        assert!(matches!(
            unit.seize(request("A", "2024-01-02", "2024-01-02", "2025-01-01"), d("2024-01-02")),
            Err(SeizureError::DuplicateOrder { .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Seize { served_offset: u32, length: u32 },
        Renew { pick: usize, extra: u32 },
        Release { pick: usize },
        Advance { days: u32 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..400, 1u32..1200).prop_map(|(served_offset, length)| Op::Seize { served_offset, length }),
            (0usize..20, 1u32..900).prop_map(|(pick, extra)| Op::Renew { pick, extra }),
            (0usize..20).prop_map(|pick| Op::Release { pick }),
            (0u32..500).prop_map(|days| Op::Advance { days }),
        ]
    }

    proptest! {
        #[test]
        fn invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
            let mut unit = UnitSeizures::default();
            let mut today = d("2024-01-01");
            let mut next_id = 0;
            for op in ops {
                let ended_before: Vec<Seizure> = unit.seizures().iter().filter(|s| s.state.is_ended()).cloned().collect();
                match op {
                    Op::Seize { served_offset, length } => {
                        next_id += 1;
                        let served = today - Days::new(u64::from(served_offset));
                        let _ = unit.seize(SeizeRequest {
                            order_no: format!("O{next_id:03}"),
                            case_no: "(2024)湘0405执1号".into(),
                            served_at: served.and_hms_opt(9, 0, 0).expect("time"),
                            start: today,
                            end: today + Days::new(u64::from(length)),
                        }, today);
                    }
                    Op::Renew { pick, extra } => {
                        if let Some(s) = unit.seizures().get(pick).cloned() {
                            let _ = unit.renew(&s.order_no, s.end + Days::new(1), s.end + Days::new(u64::from(extra)), today);
                        }
                    }
                    Op::Release { pick } => {
                        if let Some(s) = unit.seizures().get(pick).cloned() {
                            let _ = unit.release(&s.order_no, today);
                        }
                    }
                    Op::Advance { days } => {
                        today = today + Days::new(u64::from(days));
                        unit.lapse_expired(today);
                    }
                }
                let active = unit.seizures().iter().filter(|s| s.state == SeizureState::Active).count();
                prop_assert!(active <= 1, "more than one active seizure");
                let queue = unit.queue();
                prop_assert!(queue.is_empty() || active == 1, "a queue without an active seizure");
                prop_assert!(queue.windows(2).all(|w| w[0].served_at <= w[1].served_at), "queue out of served-at order");
                for s in unit.seizures() {
                    prop_assert!(s.end <= SeizureRules::default().latest_end(s.start), "period too long: {s:?}");
                }
                for before in ended_before {
                    prop_assert_eq!(unit.get(&before.order_no), Some(&before), "an ended seizure changed");
                }
            }
        }
    }
}

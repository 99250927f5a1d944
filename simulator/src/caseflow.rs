//! The city's case flow, generated: cases of every business type with their
//! life-cycle times, and the records around them (contract filings before
//! pre-sale notices, loan applications before mortgages, QC findings,
//! satisfaction evaluations). Seeded and deterministic: the same
//! [`FlowParams`] always give the same [`Flow`].
//!
//! The shape follows the plan: the online share of each type steps up at its
//! phase's go-live date (first-hand business to near-total online after
//! 2024-04-26; second-hand transfer from 2024-06-01, ramping; mortgage
//! expanded from 2024-08-01; seizure and release from 2024-10-01), so the
//! whole approaches 90% without reaching it trivially. Staff steps happen only
//! on working days in office hours; step durations are skewed, most fast with
//! a tail past the committed limit. Deliberate anomalies come at known rates
//! ([`AnomalyRates`]) and are listed in [`Flow::anomalies`] so tests and
//! quality metrics know what is true.
//! Court requests come in sequence too: seizures, queued seizures, renewals
//! before expiry, releases, and seizures left to lapse.

use crate::world::Case;
use crate::world::{ContractFiling, Evaluation, LoanApplication, QcFinding};
use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use domain::ident::{CreditCode, HENGYANG_DIVISIONS, ResidentId, UnitNo};
use domain::{AgentKind, ApplicantKind, BusinessType, Calendar, CaseStatus, Channel, Delivery, Phase, VendorCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowParams {
    /// First submission day.
    pub from: NaiveDate,
    /// Last submission day; also "now": nothing happens after its end.
    pub to: NaiveDate,
    /// Cases per year.
    pub yearly_volume: u32,
    /// Seed.
    pub seed: u64,
    /// Anomaly rates.
    pub anomalies: AnomalyRates,
}

impl FlowParams {
    /// Defaults from 2024-01-01 to `to`: 150,000 cases a year.
    pub fn new(to: NaiveDate, seed: u64) -> Self {
        Self {
            from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN),
            to,
            yearly_volume: 150_000,
            seed,
            anomalies: AnomalyRates::default(),
        }
    }
}

/// How often each deliberate anomaly happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyRates {
    /// Applicant ID numbers with a wrong check digit (share of cases).
    pub bad_check_digit: f64,
    /// Bank or provident-fund applications that never reach the registry (share of loans).
    pub orphan_loan: f64,
    /// Records the feeds deliver twice (share of cases).
    pub duplicate_delivery: f64,
    /// Records corrected after delivery with a newer version (share of cases).
    pub late_correction: f64,
    /// Transfers and mortgages recorded on a unit under active seizure (share of those cases).
    pub recorded_on_seized_unit: f64,
}

impl Default for AnomalyRates {
    fn default() -> Self {
        Self {
            bad_check_digit: 0.003,
            orphan_loan: 0.02,
            duplicate_delivery: 0.01,
            late_correction: 0.005,
            recorded_on_seized_unit: 0.002,
        }
    }
}

/// One deliberate anomaly, for tests and quality metrics to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// The case's applicant ID number has a wrong check digit.
    BadCheckDigit { case: String },
    /// A loan application with no registry case.
    OrphanLoan { loan: String },
    /// The feed delivers this case twice.
    DuplicateDelivery { case: String },
    /// The feed delivers this case, then a corrected newer version.
    LateCorrection { case: String },
    /// A transfer or mortgage recorded on a unit under an active seizure (a serious error).
    RecordedOnSeizedUnit { case: String, request_no: String },
}

/// Everything generated.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// Cases, by submission time.
    pub cases: Vec<Case>,
    /// Housing contract filings.
    pub filings: Vec<ContractFiling>,
    /// Loan applications from banks and the provident fund.
    pub loans: Vec<LoanApplication>,
    /// QC findings.
    pub qc_findings: Vec<QcFinding>,
    /// Satisfaction evaluations.
    pub evaluations: Vec<Evaluation>,
    /// The deliberate anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Requests of the courts' control platform, in sequence order.
    pub court_requests: Vec<CourtRequest>,
}

/// What a court asks of the registry through the control platform (KZLX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourtRequestKind {
    /// 1 查封
    Seize,
    /// 2 续封
    Renew,
    /// 3 解封
    Release,
}

/// One request on the courts' control platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtRequest {
    /// Platform sequence number, from 1.
    pub seq: u64,
    /// Request number (CXQQDH).
    pub request_no: String,
    /// Court code, e.g. `湘0405`.
    pub court_code: String,
    /// Court name.
    pub court_name: String,
    /// Case number.
    pub case_no: String,
    /// What is asked.
    pub kind: CourtRequestKind,
    /// The unit.
    pub unit_no: String,
    /// Respondent's name and ID number.
    pub respondent: (String, String),
    /// Period, for seizures and renewals.
    pub period: Option<(NaiveDate, NaiveDate)>,
    /// The seizure a renewal or release refers to.
    pub original_request_no: Option<String>,
    /// Ruling number.
    pub ruling_no: String,
    /// Judge.
    pub judge: String,
    /// Served at.
    pub served_at: DateTime<Utc>,
}

/// Source names the generated records carry.
pub const REGISTRY_SOURCE: &str = "registry";

/// The business-type mix: relative weights (mortgages and transfers dominate).
pub const MIX: [(BusinessType, u32); 10] = [
    (BusinessType::Mortgage, 30),
    (BusinessType::SecondHandTransfer, 16),
    (BusinessType::FirstHandTransfer, 12),
    (BusinessType::PresaleNotice, 12),
    (BusinessType::PreNoticeMortgage, 10),
    (BusinessType::NoticeToActual, 8),
    (BusinessType::Cancellation, 5),
    (BusinessType::Change, 3),
    (BusinessType::InformationQuery, 3),
    (BusinessType::SeizureRelease, 1),
];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Probability that a case of `t` submitted on `day` is applied online.
pub fn online_probability(t: BusinessType, day: NaiveDate) -> f64 {
    // Months since a go-live date, for ramps.
    let months_since = |go_live: NaiveDate| -> f64 { ((day - go_live).num_days() as f64 / 30.4).max(0.0) };
    let ramp = |start: f64, end: f64, months: f64, over: f64| start + (end - start) * (months / over).min(1.0);
    match t {
        BusinessType::PresaleNotice
        | BusinessType::PreNoticeMortgage
        | BusinessType::NoticeToActual
        | BusinessType::FirstHandTransfer => {
            if day < Phase::One.go_live() {
                0.35
            } else {
                ramp(0.93, 0.985, months_since(Phase::One.go_live()), 6.0)
            }
        }
        BusinessType::SecondHandTransfer => {
            if day < Phase::Two.go_live() {
                0.03
            } else {
                ramp(0.30, 0.75, months_since(Phase::Two.go_live()), 18.0)
            }
        }
        BusinessType::Mortgage => {
            if day < Phase::Three.go_live() {
                0.45
            } else {
                ramp(0.85, 0.92, months_since(Phase::Three.go_live()), 12.0)
            }
        }
        BusinessType::SeizureRelease => {
            if day < Phase::Four.go_live() {
                0.0
            } else {
                ramp(0.40, 0.80, months_since(Phase::Four.go_live()), 12.0)
            }
        }
        BusinessType::Change | BusinessType::Cancellation | BusinessType::InformationQuery => {
            if day < Phase::One.go_live() { 0.25 } else { ramp(0.40, 0.60, months_since(Phase::One.go_live()), 18.0) }
        }
    }
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马",
    "罗",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
    "慧", "建国", "志强", "海燕", "桂兰",
];
const DEVELOPERS: [&str; 6] = [
    "衡阳华信置业有限公司",
    "衡阳湘江房地产开发有限公司",
    "衡阳雁城置业有限公司",
    "衡阳南岳地产有限公司",
    "衡阳蒸湘房地产开发有限公司",
    "衡阳石鼓置业有限公司",
];
const BANKS: [&str; 5] = ["bank:icbc", "bank:ccb", "bank:abc", "bank:boc", "bank:hrcb"];
const QC_CATEGORIES: [&str; 7] = ["SQCL", "QLR", "FW", "DBNR", "ZS", "LC", "QT"];
const SECTIONS: [&str; 4] = ["online_approval", "registration_5", "archives", "online_approval"];

struct Generator {
    rng: StdRng,
    calendar: Calendar,
    tz: FixedOffset,
    params: FlowParams,
    flow: Flow,
    serial: u64,
}

impl Generator {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn name(&mut self) -> String {
        format!("{}{}", self.pick(&SURNAMES), self.pick(&GIVEN))
    }

    fn division(&mut self) -> &'static str {
        // Urban districts carry most of the business.
        let weights = [0u32, 20, 18, 18, 20, 2, 5, 5, 3, 3, 2, 2, 2];
        let total: u32 = weights.iter().sum();
        let mut roll = self.rng.random_range(0..total);
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return HENGYANG_DIVISIONS[i].code;
            }
            roll -= w;
        }
        HENGYANG_DIVISIONS[1].code
    }

    fn resident_id(&mut self) -> String {
        let division = self.division();
        let birth = date(1950, 1, 1) + Days::new(self.rng.random_range(0..18_250));
        let first17 = format!("{division}{}{:03}", birth.format("%Y%m%d"), self.rng.random_range(1..999));
        let check = ResidentId::check_char_for(&first17).unwrap_or('0');
        format!("{first17}{check}")
    }

    fn credit_code(&mut self, division: &str) -> String {
        let first17 = format!("91{division}MA4L{:05}", self.rng.random_range(0..100_000));
        let check = CreditCode::check_char_for(&first17).unwrap_or('0');
        format!("{first17}{check}")
    }

    fn unit_no(&mut self, division: &str) -> UnitNo {
        let text = format!(
            "{division}{:03}{:03}GB{:05}F{:04}{:04}",
            self.rng.random_range(1..20),
            self.rng.random_range(1..30),
            self.rng.random_range(1..3000),
            self.rng.random_range(1..40),
            self.rng.random_range(101..3300)
        );
        UnitNo::parse(&text)
            .unwrap_or_else(|_| UnitNo::parse("430405001002GB00001F00010001").expect("example unit number"))
    }

    fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        self.tz.from_local_datetime(&local).single().map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
    }

    /// A skewed number of working hours: mostly short, with a long tail.
    fn skewed_hours(&mut self, median: f64) -> u32 {
        let u: f64 = self.rng.random_range(0.0001..1.0);
        // Exponential-ish with an occasional very long tail (5%).
        let base = -u.ln() * median / std::f64::consts::LN_2;
        let hours = if self.rng.random_bool(0.05) { base * 6.0 } else { base };
        hours.round().clamp(0.0, 400.0) as u32
    }

    /// A moment `hours` office hours (plus a few minutes, when they fit in the
    /// same office period) after `from`: always inside office hours on a working day.
    fn after_working_hours(&mut self, from: NaiveDateTime, hours: u32) -> NaiveDateTime {
        let minutes = TimeDelta::minutes(self.rng.random_range(5..55));
        let base = self.calendar.add_working_hours(from, hours);
        let later = base + minutes;
        if self.calendar.working_time_between(base, later) == minutes { later } else { base }
    }

    fn submission_time(&mut self, day: NaiveDate, online: bool) -> NaiveDateTime {
        if online {
            let minute = self.rng.random_range(7 * 60..23 * 60);
            day.and_time(
                NaiveTime::from_hms_opt(minute / 60, minute % 60, self.rng.random_range(0..60))
                    .unwrap_or(NaiveTime::MIN),
            )
        } else {
            // The counter works only in office hours on working days.
            let day = if self.calendar.is_working_day(day) { day } else { self.calendar.add_working_days(day, 1) };
            let periods = self.calendar.office_hours().periods().to_vec();
            let (start, end) = periods[self.rng.random_range(0..periods.len())];
            let span = (end - start).num_minutes().max(1);
            day.and_time(start) + TimeDelta::minutes(self.rng.random_range(0..span))
        }
    }

    fn business_type(&mut self) -> BusinessType {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for (t, w) in MIX {
            if roll < w {
                return t;
            }
            roll -= w;
        }
        BusinessType::Mortgage
    }

    fn one_case(&mut self, day: NaiveDate) {
        let t = self.business_type();
        let online = self.rng.random_bool(online_probability(t, day));
        self.serial += 1;
        let external_id = format!("YW{}{:07}", day.year(), self.serial);
        let division = self.division();
        let vendor_code = match t {
            BusinessType::Mortgage if self.rng.random_bool(0.35) => VendorCode::MortgageOffPlan,
            BusinessType::Mortgage => VendorCode::MortgageExisting,
            BusinessType::SeizureRelease => {
                if self.rng.random_bool(0.6) {
                    VendorCode::Seizure
                } else if self.rng.random_bool(0.7) {
                    VendorCode::Release
                } else {
                    VendorCode::Renewal
                }
            }
            other => other.vendor_codes().first().copied().unwrap_or(VendorCode::Change),
        };
        let agent_kind = match t {
            BusinessType::PresaleNotice | BusinessType::FirstHandTransfer | BusinessType::NoticeToActual => {
                Some(AgentKind::Developer)
            }
            BusinessType::PreNoticeMortgage | BusinessType::Mortgage => {
                Some(if self.rng.random_bool(0.25) { AgentKind::ProvidentFund } else { AgentKind::Bank })
            }
            BusinessType::SecondHandTransfer if self.rng.random_bool(0.5) => Some(AgentKind::Agency),
            _ => None,
        };
        let applicant_kind = match t {
            BusinessType::SeizureRelease => ApplicantKind::Judicial,
            _ if self.rng.random_bool(0.06) => ApplicantKind::Enterprise,
            _ => ApplicantKind::Individual,
        };
        let channel = if !online {
            Channel::Counter
        } else if agent_kind.is_some() || applicant_kind == ApplicantKind::Judicial {
            let roll: f64 = self.rng.random();
            if roll < 0.80 {
                Channel::PartnerPlatform
            } else if roll < 0.95 {
                Channel::WebApp
            } else {
                Channel::SelfService
            }
        } else if self.rng.random_bool(0.85) {
            Channel::WebApp
        } else {
            Channel::SelfService
        };
        let agent_id = match agent_kind {
            Some(AgentKind::Bank) => Some(self.pick(&BANKS).to_string()),
            Some(AgentKind::ProvidentFund) => Some("provident_fund".to_owned()),
            Some(AgentKind::Developer) => Some(self.credit_code(division)),
            Some(AgentKind::Agency) => Some(format!("agency-{:03}", self.rng.random_range(1..60))),
            None => None,
        };
        let (applicant_name, mut applicant_id_no) = match applicant_kind {
            ApplicantKind::Enterprise => (self.pick(&DEVELOPERS).to_string(), self.credit_code(division)),
            ApplicantKind::Judicial => (
                format!(
                    "{}人民法院",
                    HENGYANG_DIVISIONS.iter().find(|d| d.code == division).map_or("衡阳市", |d| d.name)
                ),
                self.credit_code(division),
            ),
            ApplicantKind::Individual => (self.name(), self.resident_id()),
        };
        if applicant_kind == ApplicantKind::Individual && self.rng.random_bool(self.params.anomalies.bad_check_digit) {
            let last = applicant_id_no.pop().unwrap_or('0');
            applicant_id_no.push(if last == '1' { '2' } else { '1' });
            self.flow.anomalies.push(Anomaly::BadCheckDigit { case: external_id.clone() });
        }
        let unit_no = (t != BusinessType::InformationQuery).then(|| self.unit_no(division));

        let submitted_local = self.submission_time(day, online);
        let end_of_world = self.params.to.and_hms_opt(23, 59, 59).unwrap_or(NaiveDateTime::MAX);
        let info = domain::Catalogue::builtin();
        let committed = info.get(t).committed_limit;
        let median_hours = match committed.unit {
            domain::LimitUnit::WorkingDays => (f64::from(committed.amount.max(1)) * 7.0 * 0.35).max(1.0),
            domain::LimitUnit::WorkingHours => f64::from(committed.amount.max(1)) * 0.4,
        };

        let mut status = CaseStatus::Submitted;
        let mut times: [Option<NaiveDateTime>; 6] = [None; 6];
        let mut closed_at = None;
        let mut correction_count = 0;
        let refused = self.rng.random_bool(0.015);
        let withdrawn = !refused && self.rng.random_bool(0.01);
        let accept_hours = self.skewed_hours(1.5);
        let accepted = self.after_working_hours(submitted_local, accept_hours);
        if refused || withdrawn {
            if accepted <= end_of_world {
                status = if refused { CaseStatus::Refused } else { CaseStatus::Withdrawn };
                closed_at = Some(accepted);
            }
        } else {
            let mut cursor = accepted;
            let steps = if t.issues_certificate() { 6 } else { 3 };
            let needs_correction = self.rng.random_bool(0.04);
            for step in 0..steps {
                if cursor > end_of_world {
                    break;
                }
                times[step] = Some(cursor);
                status = [
                    CaseStatus::Accepted,
                    CaseStatus::Verified,
                    CaseStatus::Recorded,
                    CaseStatus::CertificatePrepared,
                    CaseStatus::Issued,
                    CaseStatus::Archived,
                ][step];
                let mut hours = match step {
                    0 | 1 => self.skewed_hours(median_hours / 2.0),
                    2 | 3 => self.skewed_hours(2.0),
                    _ => self.skewed_hours(30.0),
                };
                if step == 0 && needs_correction {
                    correction_count = 1;
                    hours += 7 * self.rng.random_range(2..8);
                }
                cursor = self.after_working_hours(cursor, hours);
            }
            if correction_count > 0 && status == CaseStatus::Accepted {
                status = CaseStatus::Correction;
            }
        }
        // Steps without a certificate: the register entry is the last.
        if !t.issues_certificate() && status == CaseStatus::Recorded {
            status = CaseStatus::Archived;
        }
        let delivery = if !t.issues_certificate() {
            None
        } else if online {
            let roll: f64 = self.rng.random();
            Some(if roll < 0.72 {
                Delivery::Electronic
            } else if roll < 0.87 {
                Delivery::Post
            } else {
                Delivery::Counter
            })
        } else {
            Some(if self.rng.random_bool(0.8) { Delivery::Counter } else { Delivery::Electronic })
        };

        let submitted_at = self.utc(submitted_local);
        let to_utc = |g: &Self, t: Option<NaiveDateTime>| t.map(|t| g.utc(t));
        let last_change =
            [Some(submitted_local), times[0], times[1], times[2], times[3], times[4], times[5], closed_at]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(submitted_local);

        // Records that precede the case.
        let mut filing_no = None;
        let mut loan_ref = None;
        if let Some(unit) = &unit_no {
            if matches!(t, BusinessType::PresaleNotice) {
                let filed = submitted_at - TimeDelta::days(self.rng.random_range(1..10));
                let no = format!("BA{}{:07}", filed.year(), self.serial);
                let developer_division = unit.division_code().to_owned();
                let record = ContractFiling {
                    source: "housing".into(),
                    filing_no: no.clone(),
                    developer_name: self.pick(&DEVELOPERS).to_string(),
                    developer_credit_code: self.credit_code(&developer_division),
                    buyer_name: applicant_name.clone(),
                    buyer_id_no: applicant_id_no.clone(),
                    unit_no: unit.as_str().to_owned(),
                    price_cents: i64::from(self.rng.random_range(300_000u32..2_000_000)) * 100,
                    filed_at: filed,
                    status: "filed".into(),
                    source_file: Some(format!("filings-{}.csv", domain::time::china_time(filed).format("%Y%m%d"))),
                    source_updated_at: filed,
                };
                self.flow.filings.push(record);
                filing_no = Some(no);
            }
            if matches!(t, BusinessType::Mortgage | BusinessType::PreNoticeMortgage)
                && let Some(lender) = &agent_id
            {
                let applied = submitted_at - TimeDelta::days(self.rng.random_range(1..15));
                let id = format!("LN{}{:07}", applied.year(), self.serial);
                let record = LoanApplication {
                    source: lender.clone(),
                    external_id: id.clone(),
                    lender_kind: if lender == "provident_fund" { "provident_fund".into() } else { "bank".into() },
                    borrower_name: applicant_name.clone(),
                    borrower_id_no: applicant_id_no.clone(),
                    unit_no: unit.as_str().to_owned(),
                    amount_cents: i64::from(self.rng.random_range(100_000u32..1_500_000)) * 100,
                    applied_at: applied,
                    status: match status {
                        CaseStatus::Refused => "rejected",
                        CaseStatus::Withdrawn => "withdrawn",
                        s if s.is_recorded() => "registered",
                        CaseStatus::Submitted => "submitted_to_registry",
                        _ => "accepted",
                    }
                    .into(),
                    registry_case_no: Some(external_id.clone()),
                    source_updated_at: self.utc(last_change),
                };
                self.flow.loans.push(record);
                loan_ref = Some(id);
                if self.rng.random_bool(self.params.anomalies.orphan_loan) {
                    self.serial += 1;
                    let orphan = format!("LN{}{:07}", applied.year(), self.serial);
                    let unit = self.unit_no(division);
                    let record = LoanApplication {
                        source: lender.clone(),
                        external_id: orphan.clone(),
                        lender_kind: if lender == "provident_fund" { "provident_fund".into() } else { "bank".into() },
                        borrower_name: self.name(),
                        borrower_id_no: self.resident_id(),
                        unit_no: unit.as_str().to_owned(),
                        amount_cents: i64::from(self.rng.random_range(100_000u32..1_500_000)) * 100,
                        applied_at: applied,
                        status: "submitted_to_registry".into(),
                        registry_case_no: None,
                        source_updated_at: applied,
                    };
                    self.flow.loans.push(record);
                    self.flow.anomalies.push(Anomaly::OrphanLoan { loan: orphan });
                }
            }
        }

        // Records that follow it.
        if let Some(recorded) = times[2]
            && self.rng.random_bool(0.02)
        {
            let hours = self.rng.random_range(7..140);
            let found = self.after_working_hours(recorded, hours);
            if found <= end_of_world {
                let corrected_hours = self.rng.random_range(7..70);
                let corrected = self.after_working_hours(found, corrected_hours);
                let corrected = (self.rng.random_bool(0.85) && corrected <= end_of_world).then_some(corrected);
                let severity = {
                    let r: f64 = self.rng.random();
                    if r < 0.7 {
                        "1"
                    } else if r < 0.95 {
                        "2"
                    } else {
                        "3"
                    }
                };
                let record = QcFinding {
                    source: "qc".into(),
                    external_id: format!("ZJ{:08}", self.flow.qc_findings.len() + 1),
                    case_source: REGISTRY_SOURCE.into(),
                    case_external_id: external_id.clone(),
                    category: self.pick(&QC_CATEGORIES).to_string(),
                    severity: severity.into(),
                    section: self.pick(&SECTIONS).to_string(),
                    description: "质检发现差错".into(),
                    found_at: self.utc(found),
                    corrected_at: corrected.map(|c| self.utc(c)),
                    source_updated_at: self.utc(corrected.unwrap_or(found)),
                };
                self.flow.qc_findings.push(record);
            }
        }
        let finished = times[5].or(times[2]).filter(|_| status.is_recorded());
        if let Some(finished) = finished
            && self.rng.random_bool(0.3)
        {
            let evaluated = finished + TimeDelta::hours(self.rng.random_range(1..72));
            if evaluated <= end_of_world {
                let roll: f64 = self.rng.random();
                let level = if roll < 0.70 {
                    1
                } else if roll < 0.90 {
                    2
                } else if roll < 0.97 {
                    3
                } else if roll < 0.99 {
                    4
                } else {
                    5
                };
                let rectified = if level >= 4 && self.rng.random_bool(0.9) {
                    let d = self.rng.random_range(1..20);
                    let at =
                        self.calendar.add_working_days(evaluated.date(), d).and_hms_opt(16, 0, 0).unwrap_or(evaluated);
                    (at <= end_of_world).then_some(at)
                } else {
                    None
                };
                let record = Evaluation {
                    source: "evaluations".into(),
                    external_id: format!("PJ{:08}", self.flow.evaluations.len() + 1),
                    case_source: REGISTRY_SOURCE.into(),
                    case_external_id: external_id.clone(),
                    level,
                    channel: if online { "online".into() } else { "onsite".into() },
                    comment: String::new(),
                    evaluated_at: self.utc(evaluated),
                    rectified_at: rectified.map(|r| self.utc(r)),
                    source_updated_at: self.utc(rectified.unwrap_or(evaluated)),
                };
                self.flow.evaluations.push(record);
            }
        }
        if self.rng.random_bool(self.params.anomalies.duplicate_delivery) {
            self.flow.anomalies.push(Anomaly::DuplicateDelivery { case: external_id.clone() });
        }
        if self.rng.random_bool(self.params.anomalies.late_correction) {
            self.flow.anomalies.push(Anomaly::LateCorrection { case: external_id.clone() });
        }
        let handler = handler_of(&external_id, channel);
        let case = Case {
            source: REGISTRY_SOURCE.into(),
            case_no: external_id.clone(),
            external_id,
            vendor_code,
            channel,
            delivery,
            applicant_kind,
            agent_kind,
            agent_id,
            applicant_name,
            applicant_id_no,
            district: division.to_owned(),
            unit_no,
            status,
            submitted_at,
            accepted_at: to_utc(self, times[0]),
            verified_at: to_utc(self, times[1]),
            recorded_at: to_utc(self, times[2]),
            cert_prepared_at: to_utc(self, times[3]),
            issued_at: to_utc(self, times[4]),
            archived_at: to_utc(self, times[5]),
            closed_at: to_utc(self, closed_at),
            correction_count,
            filing_no,
            loan_ref,
            handler,
            source_updated_at: self.utc(last_change),
        };
        self.flow.cases.push(case);
    }
}

/// Self-service terminals on the third floor of the canteen building.
pub const TERMINALS: u32 = 18;
/// Counter windows.
pub const WINDOWS: u32 = 12;

/// Who handled a case: an operator at one of the 18 self-service terminals
/// (`ZZ01`..`ZZ18`) or staff at a counter window (`CK01`..`CK12`); nobody for
/// web and partner-platform cases. Derived from the case number rather than
/// drawn from the generator, so adding it left every other value of a seed as
/// it was.
fn handler_of(external_id: &str, channel: Channel) -> Option<String> {
    let spread = external_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    match channel {
        Channel::SelfService => Some(format!("ZZ{:02}", spread % TERMINALS + 1)),
        Channel::Counter => Some(format!("CK{:02}", spread % WINDOWS + 1)),
        _ => None,
    }
}

impl Generator {
    /// Court requests: seizures on units of recorded cases (some on units
    /// already seized, so they queue), later releases and renewals of some,
    /// the rest left to run (and lapse). About one request per 300 cases.
    fn court_requests(&mut self) {
        let units: Vec<(String, String, DateTime<Utc>)> = self
            .flow
            .cases
            .iter()
            .filter_map(|c| Some((c.unit_no.as_ref()?.as_str().to_owned(), c.district.clone(), c.recorded_at?)))
            .collect();
        if units.is_empty() {
            return;
        }
        let count = (self.flow.cases.len() / 300).max(1);
        let end_of_world = self.utc(self.params.to.and_hms_opt(23, 59, 59).unwrap_or(NaiveDateTime::MAX));
        let mut requests: Vec<CourtRequest> = Vec::new();
        for i in 0..count {
            // One seizure in five lands on a unit seized before: a queued seizure.
            let (unit_no, division, recorded) = if !requests.is_empty() && self.rng.random_bool(0.2) {
                let earlier = &requests[self.rng.random_range(0..requests.len())];
                (earlier.unit_no.clone(), earlier.court_code.replace('湘', "43"), earlier.served_at)
            } else {
                units[self.rng.random_range(0..units.len())].clone()
            };
            let served = recorded + TimeDelta::days(self.rng.random_range(10..400));
            if served > end_of_world {
                continue;
            }
            let court_code =
                domain::ident::Division::by_code(&division).map_or_else(|| "湘0405".to_owned(), |d| d.court_code());
            let court_name =
                HENGYANG_DIVISIONS.iter().find(|d| d.court_code() == court_code).map_or("衡阳市", |d| d.name);
            let start = domain::time::local_date(served);
            let end = start + Days::new(self.rng.random_range(180..1095));
            let case_no = format!("({}){court_code}执{}号", start.year(), self.rng.random_range(1..3000));
            let request_no = format!("KZ{}{:06}", start.year(), i + 1);
            let respondent = (self.name(), self.resident_id());
            let base = CourtRequest {
                seq: 0,
                request_no: request_no.clone(),
                court_code: court_code.clone(),
                court_name: format!("{court_name}人民法院"),
                case_no: case_no.clone(),
                kind: CourtRequestKind::Seize,
                unit_no: unit_no.clone(),
                respondent,
                period: Some((start, end)),
                original_request_no: None,
                ruling_no: format!("{case_no}之一"),
                judge: format!("{}法官", self.pick(&SURNAMES)),
                served_at: served,
            };
            requests.push(base.clone());
            let roll: f64 = self.rng.random();
            let follow_up = if roll < 0.35 {
                let at = served + TimeDelta::days(self.rng.random_range(20..300));
                Some((CourtRequestKind::Release, at, None))
            } else if roll < 0.45 {
                let at = self.utc(end.and_hms_opt(10, 0, 0).unwrap_or(NaiveDateTime::MIN))
                    - TimeDelta::days(self.rng.random_range(5..60));
                let renewal_end = end + Days::new(self.rng.random_range(180..1000));
                Some((CourtRequestKind::Renew, at, Some((end + Days::new(1), renewal_end))))
            } else {
                None
            };
            if let Some((kind, at, period)) = follow_up
                && at <= end_of_world
                && at > served
            {
                requests.push(CourtRequest {
                    request_no: format!("{request_no}-{}", if kind == CourtRequestKind::Release { "JF" } else { "XF" }),
                    kind,
                    period,
                    original_request_no: Some(request_no),
                    served_at: at,
                    ..base
                });
            }
        }
        requests.sort_by(|a, b| a.served_at.cmp(&b.served_at).then(a.request_no.cmp(&b.request_no)));
        for (i, r) in requests.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        self.flow.court_requests = requests;
        self.recorded_on_seized_units();
    }

    /// Moves a few recorded transfers and mortgages onto units under an active
    /// seizure (one never released or renewed), recorded inside its period.
    fn recorded_on_seized_units(&mut self) {
        let followed: std::collections::HashSet<&str> =
            self.flow.court_requests.iter().filter_map(|r| r.original_request_no.as_deref()).collect();
        let seizures: Vec<(String, String, DateTime<Utc>, NaiveDate)> = self
            .flow
            .court_requests
            .iter()
            .filter(|r| r.kind == CourtRequestKind::Seize && !followed.contains(r.request_no.as_str()))
            .filter_map(|r| Some((r.request_no.clone(), r.unit_no.clone(), r.served_at, r.period?.1)))
            .collect();
        // A seizure may be queued behind another on the same unit; either way the unit is seized.
        if seizures.is_empty() {
            return;
        }
        let rate = self.params.anomalies.recorded_on_seized_unit;
        let candidates: Vec<usize> = self
            .flow
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.recorded_at.is_some()
                    && matches!(
                        c.business_type(),
                        BusinessType::SecondHandTransfer | BusinessType::FirstHandTransfer | BusinessType::Mortgage
                    )
            })
            .map(|(i, _)| i)
            .collect();
        for index in candidates {
            if !self.rng.random_bool(rate) {
                continue;
            }
            let recorded = self.flow.cases[index].recorded_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
            let Some((request_no, unit_no, _, _)) = seizures
                .iter()
                .find(|(_, _, served, end)| *served < recorded && domain::time::local_date(recorded) <= *end)
                .cloned()
            else {
                continue;
            };
            let case = &mut self.flow.cases[index];
            case.unit_no = UnitNo::parse(&unit_no).ok();
            case.district = unit_no[..6].to_owned();
            self.flow.anomalies.push(Anomaly::RecordedOnSeizedUnit { case: case.external_id.clone(), request_no });
        }
    }
}

/// Generates the flow for `params`.
pub fn generate(params: &FlowParams) -> Flow {
    let tz = domain::time::china();
    let mut g = Generator {
        rng: StdRng::seed_from_u64(params.seed),
        calendar: Calendar::builtin(),
        tz,
        params: params.clone(),
        flow: Flow::default(),
        serial: 0,
    };
    // Rest days see a quarter of a working day's applications (online only);
    // the weights are normalised so the total matches the yearly volume.
    const REST_DAY_WEIGHT: f64 = 0.25;
    let days: Vec<NaiveDate> = params.from.iter_days().take_while(|d| *d <= params.to).collect();
    let weights: Vec<f64> =
        days.iter().map(|d| if g.calendar.is_working_day(*d) { 1.0 } else { REST_DAY_WEIGHT }).collect();
    let total_weight: f64 = weights.iter().sum();
    let total_cases = f64::from(params.yearly_volume) * days.len() as f64 / 365.0;
    let per_weight = total_cases / total_weight.max(1.0);
    for (day, weight) in days.into_iter().zip(weights) {
        let expected = per_weight * weight;
        let count = expected.floor() as u32 + u32::from(g.rng.random_bool(expected.fract()));
        for _ in 0..count {
            g.one_case(day);
        }
    }
    g.flow.cases.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then(a.external_id.cmp(&b.external_id)));
    g.court_requests();
    g.flow
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn flow() -> &'static Flow {
        static FLOW: std::sync::OnceLock<Flow> = std::sync::OnceLock::new();
        FLOW.get_or_init(|| {
            let mut params = FlowParams::new(date(2025, 12, 31), 42);
            params.yearly_volume = 20_000;
            generate(&params)
        })
    }

    fn local(t: DateTime<Utc>) -> NaiveDateTime {
        domain::time::china_time(t).naive_local()
    }

    fn online_share(cases: &[&Case]) -> f64 {
        cases.iter().filter(|c| c.channel.is_online()).count() as f64 / cases.len().max(1) as f64
    }

    #[test]
    fn the_same_seed_gives_the_same_flow() {
        let mut params = FlowParams::new(date(2024, 3, 31), 7);
        params.yearly_volume = 5_000;
        let (a, b) = (generate(&params), generate(&params));
        assert_eq!(a.cases, b.cases);
        assert_eq!(a.qc_findings, b.qc_findings);
        assert_eq!(a.anomalies, b.anomalies);
        params.seed = 8;
        assert_ne!(generate(&params).cases, a.cases);
    }

    #[test]
    fn volume_and_mix_follow_the_parameters() {
        let cases = &flow().cases;
        let expected = 20_000.0 * 2.0;
        assert!((cases.len() as f64 - expected).abs() / expected < 0.02, "{} cases", cases.len());
        let mut by_type: HashMap<BusinessType, usize> = HashMap::new();
        for c in cases {
            *by_type.entry(c.business_type()).or_default() += 1;
        }
        let total_weight: u32 = MIX.iter().map(|(_, w)| w).sum();
        for (t, w) in MIX {
            let share = by_type.get(&t).copied().unwrap_or(0) as f64 / cases.len() as f64;
            let want = f64::from(w) / f64::from(total_weight);
            assert!((share - want).abs() < 0.015, "{t:?}: {share:.3} vs {want:.3}");
        }
    }

    #[test]
    fn online_shares_step_up_at_each_phase_and_approach_90_percent() {
        let cases = &flow().cases;
        let of = |types: &[BusinessType], from: NaiveDate, to: NaiveDate| -> Vec<&Case> {
            cases
                .iter()
                .filter(|c| types.contains(&c.business_type()))
                .filter(|c| (from..=to).contains(&local(c.submitted_at).date()))
                .collect()
        };
        let first_hand = [
            BusinessType::PresaleNotice,
            BusinessType::FirstHandTransfer,
            BusinessType::NoticeToActual,
            BusinessType::PreNoticeMortgage,
        ];
        assert!(online_share(&of(&first_hand, date(2024, 1, 1), date(2024, 4, 25))) < 0.45);
        assert!(online_share(&of(&first_hand, date(2024, 5, 1), date(2024, 12, 31))) > 0.9);
        let second = [BusinessType::SecondHandTransfer];
        assert!(online_share(&of(&second, date(2024, 1, 1), date(2024, 5, 31))) < 0.08);
        let early = online_share(&of(&second, date(2024, 6, 1), date(2024, 9, 30)));
        let late = online_share(&of(&second, date(2025, 7, 1), date(2025, 12, 31)));
        assert!(early > 0.2 && late > early + 0.3, "second-hand ramps: {early:.2} then {late:.2}");
        assert!(online_share(&of(&[BusinessType::Mortgage], date(2024, 1, 1), date(2024, 7, 31))) < 0.55);
        assert!(online_share(&of(&[BusinessType::Mortgage], date(2024, 9, 1), date(2025, 12, 31))) > 0.85);
        assert_eq!(online_share(&of(&[BusinessType::SeizureRelease], date(2024, 1, 1), date(2024, 9, 30))), 0.0);
        let all = BusinessType::ALL;
        let h1_2024 = online_share(&of(&all, date(2024, 1, 1), date(2024, 3, 31)));
        let h2_2025 = online_share(&of(&all, date(2025, 7, 1), date(2025, 12, 31)));
        assert!(h1_2024 < 0.45, "before the plan: {h1_2024:.3}");
        assert!((0.82..0.90).contains(&h2_2025), "approaching but below 90%: {h2_2025:.3}");
    }

    #[test]
    fn staff_steps_happen_on_working_days_in_office_hours() {
        let calendar = Calendar::builtin();
        let in_office = |t: DateTime<Utc>| {
            let l = local(t);
            calendar.is_working_day(l.date())
                && calendar.office_hours().periods().iter().any(|(s, e)| l.time() >= *s && l.time() <= *e)
        };
        for c in &flow().cases {
            for t in [c.accepted_at, c.verified_at, c.recorded_at, c.cert_prepared_at, c.issued_at, c.archived_at]
                .into_iter()
                .flatten()
            {
                assert!(in_office(t), "{} step at {}", c.external_id, local(t));
            }
            if c.channel == Channel::Counter {
                assert!(
                    in_office(c.submitted_at),
                    "counter application outside office hours: {}",
                    local(c.submitted_at)
                );
            }
            let steps: Vec<_> = [Some(c.submitted_at), c.accepted_at, c.verified_at, c.recorded_at, c.issued_at]
                .into_iter()
                .flatten()
                .collect();
            assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{} steps out of order", c.external_id);
        }
    }

    #[test]
    fn durations_are_skewed_with_a_tail_past_the_committed_limit() {
        let calendar = Calendar::builtin();
        let catalogue = domain::Catalogue::builtin();
        let timed: Vec<bool> = flow()
            .cases
            .iter()
            .filter_map(|c| Some((c, c.accepted_at?, c.recorded_at?)))
            .map(|(c, a, r)| {
                calendar.is_within_limit(local(a), local(r), catalogue.get(c.business_type()).committed_limit)
            })
            .collect();
        let on_time = timed.iter().filter(|x| **x).count() as f64 / timed.len() as f64;
        assert!((0.80..0.98).contains(&on_time), "on-time share {on_time:.3}");
    }

    #[test]
    fn identifiers_are_valid_except_the_planted_anomalies() {
        let flow = flow();
        let bad: std::collections::HashSet<&str> = flow
            .anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::BadCheckDigit { case } => Some(case.as_str()),
                _ => None,
            })
            .collect();
        let individuals = flow.cases.iter().filter(|c| c.applicant_kind == ApplicantKind::Individual).count();
        let rate = bad.len() as f64 / individuals as f64;
        assert!((0.0015..0.0045).contains(&rate), "bad check digits at {rate:.4}");
        for c in &flow.cases {
            match c.applicant_kind {
                ApplicantKind::Individual => {
                    assert_eq!(
                        ResidentId::parse(&c.applicant_id_no).is_ok(),
                        !bad.contains(c.external_id.as_str()),
                        "{}",
                        c.external_id
                    )
                }
                _ => assert!(CreditCode::parse(&c.applicant_id_no).is_ok_and(|code| code.checksum_ok())),
            }
            assert!(domain::ident::Division::by_code(&c.district).is_some());
        }
    }

    #[test]
    fn related_records_precede_or_follow_their_cases_at_realistic_rates() {
        let flow = flow();
        let cases: HashMap<&str, &Case> = flow.cases.iter().map(|c| (c.external_id.as_str(), c)).collect();
        let filings: HashMap<&str, &ContractFiling> = flow.filings.iter().map(|f| (f.filing_no.as_str(), f)).collect();
        for c in flow.cases.iter().filter(|c| c.business_type() == BusinessType::PresaleNotice) {
            let filing = filings[c.filing_no.as_deref().expect("pre-sale notices cite a filing")];
            assert!(filing.filed_at < c.submitted_at);
        }
        let orphans = flow.anomalies.iter().filter(|a| matches!(a, Anomaly::OrphanLoan { .. })).count();
        let linked = flow.loans.iter().filter(|l| l.registry_case_no.is_some()).count();
        assert!(linked > 0 && (orphans as f64 / linked as f64) < 0.04);
        for l in flow.loans.iter().filter(|l| l.registry_case_no.is_some()) {
            assert!(l.applied_at < cases[l.registry_case_no.as_deref().expect("linked")].submitted_at);
        }
        let recorded = flow.cases.iter().filter(|c| c.recorded_at.is_some()).count() as f64;
        let qc_rate = flow.qc_findings.len() as f64 / recorded;
        assert!((0.01..0.03).contains(&qc_rate), "QC findings at {qc_rate:.4}");
        assert!(flow.qc_findings.iter().filter(|q| q.corrected_at.is_some()).count() * 10 > flow.qc_findings.len() * 7);
        let bad_reviews = flow.evaluations.iter().filter(|e| e.level >= 4).count();
        assert!(bad_reviews > 0 && bad_reviews * 20 < flow.evaluations.len());
        let refused =
            flow.cases.iter().filter(|c| c.status.is_excluded_from_scope()).count() as f64 / flow.cases.len() as f64;
        assert!((0.01..0.04).contains(&refused), "refused or withdrawn at {refused:.4}");
    }

    #[test]
    fn court_requests_are_valid_and_refer_to_earlier_seizures() {
        let requests = &flow().court_requests;
        assert!(requests.len() > 100, "{}", requests.len());
        let mut seized: HashMap<&str, &CourtRequest> = HashMap::new();
        let mut queued = 0;
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            assert!(domain::ident::CaseNo::parse(&r.case_no).is_ok(), "{}", r.case_no);
            assert!(UnitNo::parse(&r.unit_no).is_ok());
            match r.kind {
                CourtRequestKind::Seize => {
                    let (start, end) = r.period.expect("period");
                    assert!(end <= domain::seizure::SeizureRules::default().latest_end(start));
                    if seized.values().any(|s| s.unit_no == r.unit_no) {
                        queued += 1;
                    }
                    seized.insert(&r.request_no, r);
                }
                CourtRequestKind::Renew | CourtRequestKind::Release => {
                    let original = seized[r.original_request_no.as_deref().expect("original")];
                    assert_eq!(original.unit_no, r.unit_no);
                    assert!(original.served_at < r.served_at);
                }
            }
        }
        assert!(queued > 0, "some seizures queue behind others");
    }

    #[test]
    fn some_transfers_and_mortgages_are_recorded_on_seized_units() {
        let flow = flow();
        let requests: HashMap<&str, &CourtRequest> =
            flow.court_requests.iter().map(|r| (r.request_no.as_str(), r)).collect();
        let cases: HashMap<&str, &Case> = flow.cases.iter().map(|c| (c.external_id.as_str(), c)).collect();
        let planted: Vec<(&str, &str)> = flow
            .anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::RecordedOnSeizedUnit { case, request_no } => Some((case.as_str(), request_no.as_str())),
                _ => None,
            })
            .collect();
        assert!(!planted.is_empty());
        for (case, request_no) in planted {
            let (case, seizure) = (cases[case], requests[request_no]);
            assert_eq!(case.unit_no.as_ref().map(UnitNo::as_str), Some(seizure.unit_no.as_str()));
            assert!(case.recorded_at.expect("recorded") > seizure.served_at);
        }
    }
}

//! Round trips and versioned upserts of cases and the other partner records.

use chrono::TimeDelta;
use domain::ident::UnitNo;
use domain::{AgentKind, ApplicantKind, CaseStatus, Channel, Delivery, VendorCode};
use store::cases::CaseRecord;
use store::records::{ContractFiling, Evaluation, LoanApplication, QcFinding};
use store::{Store, UpsertOutcome};

use store::both_backends;

use crate::support::at;

fn sample_case() -> CaseRecord {
    CaseRecord {
        source: "registry".into(),
        external_id: "YW2024000001".into(),
        case_no: "202410080001".into(),
        vendor_code: VendorCode::MortgageExisting,
        channel: Channel::PartnerPlatform,
        delivery: Some(Delivery::Electronic),
        applicant_kind: ApplicantKind::Individual,
        agent_kind: Some(AgentKind::Bank),
        agent_id: Some("bank-icbc".into()),
        applicant_name: "张三".into(),
        applicant_id_no: "11010519491231002X".into(),
        district: "430405".into(),
        unit_no: Some(UnitNo::parse("430405001002GB00001F00010001").expect("unit")),
        status: CaseStatus::Recorded,
        submitted_at: at(2024, 10, 8, 9, 0),
        accepted_at: Some(at(2024, 10, 8, 9, 30)),
        verified_at: Some(at(2024, 10, 8, 14, 45)),
        recorded_at: Some(at(2024, 10, 9, 10, 0)),
        cert_prepared_at: None,
        issued_at: None,
        archived_at: None,
        closed_at: None,
        correction_count: Some(1),
        filing_no: None,
        loan_ref: Some("LN-1".into()),
        handler: Some("ZZ03".into()),
        source_updated_at: at(2024, 10, 9, 10, 0),
    }
}

both_backends!(
    case_round_trips_every_field,
    case_upsert_is_idempotent_and_never_goes_back,
    partner_records_upsert_by_their_keys,
    counts_follow_the_writes,
    a_page_upserts_like_its_rows_one_by_one,
);

async fn case_round_trips_every_field(store: Store) {
    let case = sample_case();
    let now = at(2024, 10, 9, 11, 0);
    assert_eq!(store.upsert_case(&case, now).await.expect("insert"), UpsertOutcome::Inserted);
    let stored = store.get_case("registry", "YW2024000001").await.expect("read").expect("present");
    assert_eq!(stored.record, case);
    assert_eq!(stored.ingested_at, now);
    assert_eq!(stored.record.applicant_id_masked(), "110105********002X");
    let on_unit = store.cases_on_unit(case.unit_no.as_ref().expect("unit")).await.expect("by unit");
    assert_eq!(on_unit.len(), 1);
    assert!(store.get_case("registry", "nope").await.expect("read").is_none());
}

async fn case_upsert_is_idempotent_and_never_goes_back(store: Store) {
    let v1 = sample_case();
    let now = at(2024, 10, 9, 11, 0);
    assert_eq!(store.upsert_case(&v1, now).await.expect("v1"), UpsertOutcome::Inserted);
    // The same version again: a duplicated delivery.
    assert_eq!(store.upsert_case(&v1, now).await.expect("v1 again"), UpsertOutcome::Unchanged);

    let mut v2 = v1.clone();
    v2.status = CaseStatus::Issued;
    v2.issued_at = Some(at(2024, 10, 10, 9, 0));
    v2.source_updated_at = v1.source_updated_at + TimeDelta::days(1);
    assert_eq!(store.upsert_case(&v2, now).await.expect("v2"), UpsertOutcome::Updated);

    // An older snapshot arriving late must not overwrite the newer one.
    assert_eq!(store.upsert_case(&v1, now).await.expect("late v1"), UpsertOutcome::Stale);
    let stored = store.get_case("registry", "YW2024000001").await.expect("read").expect("present");
    assert_eq!(stored.record, v2);

    // Same external id from another source is another case.
    let mut other = v1.clone();
    other.source = "registry-branch".into();
    assert_eq!(store.upsert_case(&other, now).await.expect("other source"), UpsertOutcome::Inserted);
}

async fn partner_records_upsert_by_their_keys(store: Store) {
    let now = at(2024, 11, 1, 8, 0);
    let finding = QcFinding {
        source: "qc".into(),
        external_id: "QC-1".into(),
        case_source: "registry".into(),
        case_external_id: "YW2024000001".into(),
        category: "register_entry".into(),
        severity: "major".into(),
        section: "online_approval".into(),
        description: "登簿信息与申请材料不一致".into(),
        found_at: at(2024, 10, 20, 10, 0),
        corrected_at: None,
        source_updated_at: at(2024, 10, 20, 10, 0),
    };
    let evaluation = Evaluation {
        source: "evaluations".into(),
        external_id: "PJ-1".into(),
        case_source: "registry".into(),
        case_external_id: "YW2024000001".into(),
        level: 4,
        channel: "app".into(),
        comment: "等待时间长".into(),
        evaluated_at: at(2024, 10, 21, 10, 0),
        rectified_at: None,
        source_updated_at: at(2024, 10, 21, 10, 0),
    };
    let filing = ContractFiling {
        source: "housing".into(),
        filing_no: "BA2024-0001".into(),
        developer_name: "衡阳某某置业有限公司".into(),
        developer_credit_code: "91430405MA4L000017".into(),
        buyer_name: "李四".into(),
        buyer_id_no: "11010519491231002X".into(),
        unit_no: "430405001002GB00001F00010002".into(),
        price_cents: 68_000_000,
        filed_at: at(2024, 5, 2, 9, 0),
        status: "filed".into(),
        source_file: Some("filings-20240502.csv".into()),
        source_updated_at: at(2024, 5, 2, 9, 0),
    };
    let loan = LoanApplication {
        source: "bank:icbc".into(),
        external_id: "LN-1".into(),
        lender_kind: "bank".into(),
        borrower_name: "张三".into(),
        borrower_id_no: "11010519491231002X".into(),
        unit_no: "430405001002GB00001F00010001".into(),
        amount_cents: 50_000_000,
        applied_at: at(2024, 10, 1, 9, 0),
        status: "approved".into(),
        registry_case_no: None,
        source_updated_at: at(2024, 10, 1, 9, 0),
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.upsert_qc_finding(&finding, now).await.expect("qc"), UpsertOutcome::Inserted);
    assert_eq!(tx.upsert_evaluation(&evaluation, now).await.expect("eval"), UpsertOutcome::Inserted);
    assert_eq!(tx.upsert_contract_filing(&filing, now).await.expect("filing"), UpsertOutcome::Inserted);
    assert_eq!(tx.upsert_loan_application(&loan, now).await.expect("loan"), UpsertOutcome::Inserted);
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.upsert_qc_finding(&finding, now).await.expect("qc"), UpsertOutcome::Unchanged);
    let corrected = QcFinding {
        corrected_at: Some(at(2024, 10, 25, 10, 0)),
        source_updated_at: at(2024, 10, 25, 10, 0),
        ..finding.clone()
    };
    assert_eq!(tx.upsert_qc_finding(&corrected, now).await.expect("qc corrected"), UpsertOutcome::Updated);
    assert_eq!(tx.upsert_qc_finding(&finding, now).await.expect("qc stale"), UpsertOutcome::Stale);
    let registered = LoanApplication {
        status: "registered".into(),
        registry_case_no: Some("202410080001".into()),
        source_updated_at: at(2024, 10, 9, 9, 0),
        ..loan.clone()
    };
    assert_eq!(tx.upsert_loan_application(&registered, now).await.expect("loan update"), UpsertOutcome::Updated);
    tx.commit().await.expect("commit");
}

async fn counts_follow_the_writes(store: Store) {
    let before = store.table_counts().await.expect("counts");
    assert_eq!(before.cases, 0);
    let now = at(2024, 10, 9, 11, 0);
    let mut tx = store.begin().await.expect("begin");
    for i in 0..25 {
        let mut case = sample_case();
        case.external_id = format!("YW{i:05}");
        tx.upsert_case(&case, now).await.expect("upsert");
    }
    // Rolled back: nothing of it may remain.
    tx.rollback().await.expect("rollback");
    assert_eq!(store.table_counts().await.expect("counts").cases, 0);
    let mut tx = store.begin().await.expect("begin");
    for i in 0..25 {
        let mut case = sample_case();
        case.external_id = format!("YW{i:05}");
        tx.upsert_case(&case, now).await.expect("upsert");
    }
    tx.commit().await.expect("commit");
    assert_eq!(store.table_counts().await.expect("counts").cases, 25);
}

/// A page with re-deliveries, an update and a late older snapshot, larger
/// than one statement's chunk: outcomes and the stored rows are what writing
/// the rows one by one would give.
async fn a_page_upserts_like_its_rows_one_by_one(store: Store) {
    let now = at(2024, 10, 9, 11, 0);
    let base = sample_case();
    let version = |i: usize, days: i64| {
        let mut case = base.clone();
        case.external_id = format!("YW{i:05}");
        case.source_updated_at = base.source_updated_at + TimeDelta::days(days);
        case.correction_count = Some(days);
        case
    };
    // Already stored: key 0 at version 1.
    store.upsert_case(&version(0, 1), now).await.expect("seed");
    let mut page: Vec<CaseRecord> = (1..2_500).map(|i| version(i, 0)).collect();
    page.push(version(0, 1)); // re-delivery of what is stored
    page.push(version(0, 0)); // older than what is stored
    page.push(version(7, 2)); // a newer version of a row earlier in the page
    page.push(version(7, 1)); // then an older one again
    page.push(version(8, 0)); // a duplicate within the page
    let mut tx = store.begin().await.expect("begin");
    let outcomes = tx.upsert_cases(&page, now).await.expect("page");
    tx.commit().await.expect("commit");
    assert_eq!(outcomes.len(), page.len());
    assert!(outcomes[..2_499].iter().all(|o| *o == UpsertOutcome::Inserted));
    assert_eq!(
        outcomes[2_499..],
        [
            UpsertOutcome::Unchanged,
            UpsertOutcome::Stale,
            UpsertOutcome::Updated,
            UpsertOutcome::Stale,
            UpsertOutcome::Unchanged
        ]
    );
    assert_eq!(store.table_counts().await.expect("counts").cases, 2_500);
    let seven = store.get_case("registry", "YW00007").await.expect("read").expect("present");
    assert_eq!(seven.record, version(7, 2));
    let zero = store.get_case("registry", "YW00000").await.expect("read").expect("present");
    assert_eq!(zero.record, version(0, 1));
}

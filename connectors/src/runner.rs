//! The configured connectors, by name, run once (`wangban sync`) or each on
//! its cron schedule (`wangban serve`). One configured registry gives three
//! connectors (its case, QC and evaluation feeds), each with its own cursor.

use store::Store;

use crate::court_platform::CourtPlatform;
use crate::housing::Housing;
use crate::lenders::{Bank, ProvidentFund};
use crate::poll::{Outcome, RunOptions, poll_once};
use crate::registry::{Registry, RegistryFeed};
use crate::schedule::{Schedule, ScheduleError};

/// What a configured connector is, as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `[connectors.registry]`
    Registry,
    /// `[connectors.housing]`
    Housing,
    /// `[connectors.provident_fund]`
    ProvidentFund,
    /// `[connectors.court_platform]`
    CourtPlatform,
    /// `[[connectors.banks]]` with its id and token.
    Bank { id: String, token: String },
}

/// One configured feed.
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    /// What it is.
    pub kind: Kind,
    /// Base URL.
    pub base_url: String,
    /// Cron schedule.
    pub schedule: String,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Bank { id, .. } => format!("Bank {{ id: {id:?}, token: *** }}"),
            other => format!("{other:?}"),
        };
        f.debug_struct("Spec").field("kind", &kind).field("base_url", &self.base_url).finish()
    }
}

/// A runnable connector.
#[derive(Debug, Clone)]
pub enum Connector {
    /// One of the registry's feeds.
    Registry(Registry),
    /// The housing authority's exports.
    Housing(Housing),
    /// A bank.
    Bank(Bank),
    /// The provident fund.
    ProvidentFund(ProvidentFund),
    /// The courts' control platform.
    CourtPlatform(CourtPlatform),
}

impl Connector {
    /// Its name (state, quarantine and health carry it).
    pub fn name(&self) -> &str {
        use crate::poll::Source as _;
        match self {
            Self::Registry(s) => s.name(),
            Self::Housing(s) => s.name(),
            Self::Bank(s) => s.name(),
            Self::ProvidentFund(s) => s.name(),
            Self::CourtPlatform(s) => s.name(),
        }
    }

    /// Runs it once (see [`poll_once`]).
    pub async fn run(&self, store: &Store, options: RunOptions<'_>) -> Result<Outcome, store::StoreError> {
        match self {
            Self::Registry(s) => poll_once(s, store, options).await,
            Self::Housing(s) => poll_once(s, store, options).await,
            Self::Bank(s) => poll_once(s, store, options).await,
            Self::ProvidentFund(s) => poll_once(s, store, options).await,
            Self::CourtPlatform(s) => poll_once(s, store, options).await,
        }
    }
}

/// A connector with its schedule.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The connector.
    pub connector: Connector,
    /// When it runs.
    pub schedule: Schedule,
}

/// The connectors of a set of feeds, in a fixed order: the registry's feeds
/// first (so cases are in before the records that cite them), the court
/// platform last.
pub fn build(specs: &[Spec]) -> Result<Vec<Scheduled>, ScheduleError> {
    let mut out = Vec::new();
    let mut ordered: Vec<&Spec> = specs.iter().collect();
    ordered.sort_by_key(|s| match s.kind {
        Kind::Registry => 0,
        Kind::Housing => 1,
        Kind::Bank { .. } => 2,
        Kind::ProvidentFund => 3,
        Kind::CourtPlatform => 4,
    });
    for spec in ordered {
        let schedule = Schedule::parse(&spec.schedule)?;
        let url = spec.base_url.as_str();
        let connectors = match &spec.kind {
            Kind::Registry => vec![
                Connector::Registry(Registry::new("registry", url, RegistryFeed::Cases)),
                Connector::Registry(Registry::new("registry-qc", url, RegistryFeed::QcFindings)),
                Connector::Registry(Registry::new("registry-evaluations", url, RegistryFeed::Evaluations)),
            ],
            Kind::Housing => vec![Connector::Housing(Housing::new("housing", url))],
            Kind::ProvidentFund => vec![Connector::ProvidentFund(ProvidentFund::new("provident_fund", url))],
            Kind::CourtPlatform => vec![Connector::CourtPlatform(CourtPlatform::new("court_platform", url))],
            Kind::Bank { id, token } => vec![Connector::Bank(Bank::new(id, url, token))],
        };
        out.extend(connectors.into_iter().map(|connector| Scheduled { connector, schedule: schedule.clone() }));
    }
    Ok(out)
}

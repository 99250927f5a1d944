//! The configured connectors, by name, run once (`wangban sync`) or each on
//! its cron schedule (`wangban serve`). One configured registry gives three
//! connectors (its case, QC and evaluation feeds), each with its own cursor.
//!
//! The registry's feeds and the banks run as configured partners
//! ([`crate::partner`]) from the adapter files shipped in
//! `connectors/adapters/`; `[partners.NAME]` sections add any other. The
//! housing authority's file drops, the provident fund's XML feed and the
//! courts' control platform keep hand-written connectors (ARCHITECTURE.md
//! says why).

use store::Store;

use crate::court_platform::CourtPlatform;
use crate::housing::Housing;
use crate::lenders::{Bank, ProvidentFund};
use crate::partner::config::{AuthConfig, PartnerConfig, SecretRef};
use crate::partner::mapping::RecordKind;
use crate::partner::{self, ConfigError, Partner};
use crate::poll::{Outcome, RunOptions, poll_once};
use crate::registry::Registry;
use crate::schedule::{Schedule, ScheduleError};

/// What a configured connector is, as the configuration names it.
#[derive(Debug, Clone, PartialEq)]
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
    /// `[partners.NAME]`: a partner by configuration.
    Configured { name: String, config: Box<PartnerConfig> },
}

/// One configured feed.
#[derive(Clone, PartialEq)]
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
            Kind::Configured { name, config } => format!("Configured {{ name: {name:?}, kind: {:?} }}", config.kind),
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
    /// A partner by configuration (the registry's feeds and the banks among them).
    Partner(Partner),
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
            Self::Partner(s) => s.name(),
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
            Self::Partner(s) => poll_once(s, store, options).await,
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

/// Why the connectors cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A schedule does not parse.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A partner's configuration (or a shipped adapter) is wrong.
    #[error(transparent)]
    Partner(#[from] ConfigError),
}

fn shipped(name: &str, adapter: &str, base_url: &str, schedule: &str) -> Result<Partner, ConfigError> {
    let config = partner::shipped::config(adapter, base_url, schedule)
        .map_err(|e| ConfigError { name: name.to_owned(), problems: vec![format!("shipped adapter: {e}")] })?;
    Partner::new(name, config)
}

/// The connectors of a set of feeds, in a fixed order: the registry's feeds
/// first (so cases are in before the records that cite them), configured
/// partners by their kind, the court platform last.
pub fn build(specs: &[Spec]) -> Result<Vec<Scheduled>, BuildError> {
    let mut out = Vec::new();
    let mut ordered: Vec<&Spec> = specs.iter().collect();
    ordered.sort_by_key(|s| match s.kind {
        Kind::Registry => 0,
        Kind::Housing => 1,
        Kind::Bank { .. } => 2,
        Kind::ProvidentFund => 3,
        Kind::Configured { ref config, .. } => match config.kind {
            RecordKind::Case => 0,
            RecordKind::QcFinding | RecordKind::Evaluation => 1,
            RecordKind::BankLoan | RecordKind::ProvidentFundLoan => 3,
        },
        Kind::CourtPlatform => 4,
    });
    for spec in ordered {
        let schedule = Schedule::parse(&spec.schedule)?;
        let url = spec.base_url.as_str();
        let connectors = match &spec.kind {
            Kind::Registry => vec![
                Connector::Partner(shipped("registry", partner::shipped::REGISTRY_CASES, url, &spec.schedule)?),
                Connector::Partner(shipped("registry-qc", partner::shipped::REGISTRY_QC, url, &spec.schedule)?),
                Connector::Partner(shipped(
                    "registry-evaluations",
                    partner::shipped::REGISTRY_EVALUATIONS,
                    url,
                    &spec.schedule,
                )?),
            ],
            Kind::Housing => vec![Connector::Housing(Housing::new("housing", url))],
            Kind::ProvidentFund => vec![Connector::ProvidentFund(ProvidentFund::new("provident_fund", url))],
            Kind::CourtPlatform => vec![Connector::CourtPlatform(CourtPlatform::new("court_platform", url))],
            Kind::Bank { id, token } => {
                let name = format!("bank:{id}");
                let mut config = partner::shipped::config(partner::shipped::BANK, url, &spec.schedule)
                    .map_err(|e| ConfigError { name: name.clone(), problems: vec![format!("shipped adapter: {e}")] })?;
                config.source = Some(name.clone());
                if let Some(http) = config.http.as_mut() {
                    let token = SecretRef { inline: Some(token.clone()), ..SecretRef::default() };
                    http.auth = AuthConfig::Bearer { token };
                }
                vec![Connector::Partner(Partner::new(&name, config)?)]
            }
            Kind::Configured { name, config } => vec![Connector::Partner(Partner::new(name, config.as_ref().clone())?)],
        };
        out.extend(connectors.into_iter().map(|connector| Scheduled { connector, schedule: schedule.clone() }));
    }
    Ok(out)
}

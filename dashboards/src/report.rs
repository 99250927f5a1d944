//! 月报: the monthly leadership report as one Excel workbook, made from one
//! warehouse snapshot through [`KpiService`] (the figures are the pages' and
//! the API's for the same snapshot and month).
//!
//! Sheets (names and titles in Chinese): 总览 (the headline KPIs with the
//! previous month, the same month a year earlier and the 90% target), 趋势
//! (the online rate by month since 2024-01 with the target line and the four
//! phase go-lives, a native line chart), 分布 (by business type, district and
//! channel, with bar charts), 差距分析 ([`warehouse::kpi::gap`]), 质检, 查解封
//! and 数据接入 (connector health as the snapshot recorded it, and the
//! month's reconciliation anomalies).
//!
//! Every sheet states the snapshot, the KPI definitions with their versions,
//! and when the report was made; prints on A4 landscape, one page wide, with
//! its table header repeated. Numbers are stored as numbers; codes, months and
//! names as text, so no leading zero or digit is lost. Made again from the
//! same snapshot with the same `made_at`, the workbook is byte for byte the
//! same.

use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, Utc};
use rust_xlsxwriter::{
    Chart, ChartType, DocProperties, ExcelDateTime, Format, FormatAlign, Workbook, Worksheet, XlsxError,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use warehouse::WarehouseError;
use warehouse::cache::OpenSnapshot;
use warehouse::kpi::gap::{self, GapAnalysis, Projection};
use warehouse::kpi::{Dim, Kpi, KpiRequest, KpiResult, KpiService, RateRow, Rows};
use warehouse::snapshot::ConnectorHealth;

use crate::i18n::{Lang, dim_title, dim_value};

/// The KPIs of the 总览 sheet, in order: the seven rates that lead
/// [`Kpi::ALL`] (网办率 to 好评率).
pub const HEADLINE_KPIS: &[Kpi] = Kpi::ALL.split_at(7).0;

/// The sheets, in order.
pub const SHEETS: [&str; 7] = ["总览", "趋势", "分布", "差距分析", "质检", "查解封", "数据接入"];

/// Where each sheet's first table begins (its header row, 0-based): above it
/// the title and the snapshot and definition lines.
pub const TABLE_ROW: u32 = 4;

/// One headline KPI: the month, the month before and the same month a year earlier.
#[derive(Debug, Clone)]
pub struct Headline {
    /// The KPI.
    pub kpi: Kpi,
    /// The month's figures.
    pub current: Option<RateRow>,
    /// The previous month's.
    pub previous: Option<RateRow>,
    /// The same month a year earlier.
    pub year_ago: Option<RateRow>,
}

/// Everything the monthly report shows, from one snapshot.
#[derive(Debug, Clone)]
pub struct MonthlyReport {
    /// The month (its first day).
    pub month: NaiveDate,
    /// The snapshot's id.
    pub snapshot_id: String,
    /// The snapshot's time: every figure is as of it.
    pub as_of: DateTime<Utc>,
    /// When the report was made.
    pub made_at: DateTime<Utc>,
    /// The 总览 figures, in [`HEADLINE_KPIS`] order.
    pub headlines: Vec<Headline>,
    /// The online rate by month, 2024-01 to the month.
    pub monthly: Arc<KpiResult>,
    /// The month's online rate by business type, district and channel.
    pub distribution: Vec<(Dim, Arc<KpiResult>)>,
    /// The gap analysis.
    pub gap: GapAnalysis,
    /// The month's QC errors by category, section and business type.
    pub qc: Vec<(Dim, Arc<KpiResult>)>,
    /// The month's seizure figures.
    pub seizures: Arc<KpiResult>,
    /// The month's reconciliation anomalies.
    pub anomalies: Arc<KpiResult>,
    /// Connector health as the snapshot recorded it.
    pub connectors: Vec<ConnectorHealth>,
}

/// Why a report could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The figures could not be computed (a bad month is a `BadRequest`).
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The workbook could not be written.
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    /// The reports directory could not be read or written.
    #[error("the reports directory: {0}")]
    Io(#[from] std::io::Error),
    /// A kept report's record is unreadable.
    #[error("a kept report's record {0}")]
    Record(String),
}

/// What is kept of a report beside its workbook (`wangban-月报-YYYY-MM.json`):
/// the snapshot it was made from (pinned in the warehouse while this names
/// it), when, and its headline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// `YYYY-MM`.
    pub month: String,
    /// The workbook's file name in the reports directory.
    pub file: String,
    /// The snapshot it was made from.
    pub snapshot_id: String,
    /// When it was made (RFC 3339).
    pub made_at: String,
    /// SHA-256 of the workbook, hex.
    pub sha256: String,
    /// The workbook's size.
    pub bytes: usize,
    /// The month's online rate.
    pub online_rate: Option<f64>,
    /// Its numerator.
    pub numerator: Option<i64>,
    /// Its denominator.
    pub denominator: Option<i64>,
    /// More online cases the month needed to reach 90%.
    pub needed_for_target: i64,
}

/// The kept reports: `DATA_DIR/reports/`, each workbook with its [`Kept`]
/// record; the warehouse keeps each one's snapshot (a pin named
/// `report-YYYY-MM`) so it can be made again from the same data.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: std::path::PathBuf,
}

impl Archive {
    /// The reports under `dir`.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Archive {
        Archive { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Makes `month`'s report from the current snapshot, writes it and its
    /// record (each by rename), and pins its snapshot.
    pub async fn make(&self, kpis: &KpiService, month: NaiveDate, made_at: DateTime<Utc>) -> Result<Kept, ReportError> {
        let snapshot = kpis.snapshot().await?;
        let report = MonthlyReport::gather(&snapshot, month, made_at).await?;
        let bytes = report.xlsx()?;
        let kept = report.record(&bytes);
        warehouse::snapshot::Warehouse::open(kpis.root())?.pin(&pin_name(&kept.month), &kept.snapshot_id)?;
        warehouse::snapshot::write_atomically(&self.dir.join(&kept.file), &bytes)?;
        let record = serde_json::to_vec_pretty(&kept).map_err(|e| ReportError::Record(e.to_string()))?;
        warehouse::snapshot::write_atomically(&self.dir.join(record_name(&kept.month)), &record)?;
        Ok(kept)
    }

    /// Every kept report, newest month first.
    pub fn list(&self) -> Result<Vec<Kept>, ReportError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut kept = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read(&path)?;
                kept.push(
                    serde_json::from_slice::<Kept>(&text)
                        .map_err(|e| ReportError::Record(format!("{}: {e}", path.display())))?,
                );
            }
        }
        kept.sort_by(|a, b| b.month.cmp(&a.month));
        Ok(kept)
    }

    /// The kept report of `month` (`YYYY-MM`).
    pub fn get(&self, month: &str) -> Result<Option<Kept>, ReportError> {
        Ok(self.list()?.into_iter().find(|k| k.month == month))
    }

    /// The workbook of `kept`.
    pub fn read(&self, kept: &Kept) -> Result<Vec<u8>, ReportError> {
        Ok(std::fs::read(self.dir.join(&kept.file))?)
    }

    /// The report of `kept` made again from the snapshot it names, with its
    /// time of making: the same bytes while that snapshot is kept.
    pub async fn remake(&self, kpis: &KpiService, kept: &Kept) -> Result<MonthlyReport, ReportError> {
        let snapshot = kpis.at(&kept.snapshot_id).await?;
        let month = warehouse::export::first_day_of_month(&kept.month)
            .ok_or_else(|| ReportError::Record(format!("month {:?} is not YYYY-MM", kept.month)))?;
        let made_at = DateTime::parse_from_rfc3339(&kept.made_at)
            .map_err(|e| ReportError::Record(format!("made_at {:?}: {e}", kept.made_at)))?
            .with_timezone(&Utc);
        Ok(MonthlyReport::gather(&snapshot, month, made_at).await?)
    }
}

fn pin_name(month: &str) -> String {
    format!("report-{month}")
}

fn record_name(month: &str) -> String {
    format!("wangban-月报-{month}.json")
}

impl MonthlyReport {
    /// The report of `month` from `snapshot`. A month after the snapshot's,
    /// or without cases in scope, is a bad request naming why.
    pub async fn gather(
        snapshot: &OpenSnapshot,
        month: NaiveDate,
        made_at: DateTime<Utc>,
    ) -> Result<MonthlyReport, WarehouseError> {
        let as_of = snapshot.as_of();
        let (first, last) = gap::month_days(month);
        if first > domain::time::local_date(as_of) {
            return Err(WarehouseError::BadRequest(format!(
                "{} is after the snapshot's time {}: refresh the warehouse first",
                gap::month_key(first),
                domain::time::china_rfc3339(as_of)
            )));
        }
        let gap = gap::online_rate_gap(snapshot, first).await?;
        let in_month = |by: &[Dim]| KpiRequest::new(first, last, by);
        let mut headlines = Vec::with_capacity(HEADLINE_KPIS.len());
        for &kpi in HEADLINE_KPIS {
            let mut figures = [None, None, None];
            for (slot, back) in figures.iter_mut().zip([0, 1, 12]) {
                let Some(start) = first.checked_sub_months(Months::new(back)) else { continue };
                let (from, to) = gap::month_days(start);
                let result = snapshot.kpi(kpi, &KpiRequest::new(from, to, &[])).await?;
                *slot = result.total().cloned();
            }
            let [current, previous, year_ago] = figures;
            headlines.push(Headline { kpi, current, previous, year_ago });
        }
        let monthly =
            snapshot.kpi(Kpi::OnlineRate, &KpiRequest::new(gap::history_start(), last, &[Dim::Month])).await?;
        let mut distribution = Vec::new();
        for dim in [Dim::BusinessType, Dim::District, Dim::Channel] {
            distribution.push((dim, snapshot.kpi(Kpi::OnlineRate, &in_month(&[dim])).await?));
        }
        let mut qc = Vec::new();
        for dim in [Dim::Category, Dim::Section, Dim::BusinessType] {
            qc.push((dim, snapshot.kpi(Kpi::QcErrors, &in_month(&[dim])).await?));
        }
        Ok(MonthlyReport {
            month: first,
            snapshot_id: snapshot.manifest.snapshot_id.clone(),
            as_of,
            made_at,
            headlines,
            monthly,
            distribution,
            gap,
            qc,
            seizures: snapshot.kpi(Kpi::Seizures, &in_month(&[])).await?,
            anomalies: snapshot.kpi(Kpi::Anomalies, &in_month(&[])).await?,
            connectors: snapshot.manifest.connectors.clone(),
        })
    }

    /// What is kept of this report as the workbook `bytes`: its headline,
    /// snapshot, time of making and checksum.
    pub fn record(&self, bytes: &[u8]) -> Kept {
        let online = self.headlines.first().and_then(|h| h.current.as_ref());
        Kept {
            month: gap::month_key(self.month),
            file: self.file_name(),
            snapshot_id: self.snapshot_id.clone(),
            made_at: self.made_at.to_rfc3339(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            bytes: bytes.len(),
            online_rate: online.and_then(|r| r.rate),
            numerator: online.map(|r| r.numerator),
            denominator: online.map(|r| r.denominator),
            needed_for_target: self.gap.needed,
        }
    }

    /// The workbook's file name: `wangban-月报-YYYY-MM.xlsx`.
    pub fn file_name(&self) -> String {
        format!("wangban-月报-{}.xlsx", gap::month_key(self.month))
    }

    /// The workbook.
    pub fn xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        let made = domain::time::china_time(self.made_at).format("%Y-%m-%dT%H:%M:%S").to_string();
        workbook.set_properties(
            &DocProperties::new()
                .set_title(format!("不动产登记网办月报 {}", gap::month_key(self.month)))
                .set_author("wangban")
                .set_creation_datetime(&ExcelDateTime::parse_from_str(&made)?),
        );
        let f = Formats::new();
        self.overview_sheet(workbook.add_worksheet(), &f)?;
        self.trend_sheet(workbook.add_worksheet(), &f)?;
        self.distribution_sheet(workbook.add_worksheet(), &f)?;
        self.gap_sheet(workbook.add_worksheet(), &f)?;
        self.qc_sheet(workbook.add_worksheet(), &f)?;
        self.seizure_sheet(workbook.add_worksheet(), &f)?;
        self.connector_sheet(workbook.add_worksheet(), &f)?;
        workbook.save_to_buffer()
    }

    /// Title, snapshot and definition lines, page setup; the table header at [`TABLE_ROW`].
    fn heading(
        &self,
        sheet: &mut Worksheet,
        f: &Formats,
        name: &str,
        title: &str,
        kpis: &[Kpi],
    ) -> Result<(), XlsxError> {
        sheet.set_name(name)?;
        sheet.write_string_with_format(0, 0, format!("{title}（{}）", gap::month_key(self.month)), &f.title)?;
        sheet.write_string(
            1,
            0,
            format!("数据快照 {}，数据截至 {}；生成于 {}", self.snapshot_id, minute(self.as_of), minute(self.made_at)),
        )?;
        let definitions: Vec<String> = kpis
            .iter()
            .map(|k| format!("{} {} v{}", k.definition().title_zh, k.definition().id, k.definition().version))
            .collect();
        sheet.write_string(2, 0, format!("指标口径：{}（见 docs/kpi.md）", definitions.join("；")))?;
        sheet.set_landscape().set_paper_size(9).set_print_fit_to_pages(1, 0);
        sheet.set_repeat_rows(TABLE_ROW, TABLE_ROW)?;
        sheet.set_column_width(0, 22)?;
        Ok(())
    }

    fn overview_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[0], "网办月报 总览", HEADLINE_KPIS)?;
        let header = ["指标", "分子", "分母", "本月", "上月", "环比变化", "去年同月", "同比变化", "目标", "距目标"];
        write_header(sheet, f, TABLE_ROW, &header)?;
        for (i, h) in self.headlines.iter().enumerate() {
            let r = TABLE_ROW + 1 + row(i);
            let per_mille = h.kpi == Kpi::QcErrors;
            let value = if per_mille { &f.per_mille } else { &f.percent };
            let change = if per_mille { &f.per_mille_change } else { &f.change };
            let rate = |row: &Option<RateRow>| row.as_ref().and_then(|r| r.rate);
            sheet.write_string(r, 0, h.kpi.definition().title_zh)?;
            number(sheet, r, 1, h.current.as_ref().map(|c| c.numerator as f64), &f.count)?;
            number(sheet, r, 2, h.current.as_ref().map(|c| c.denominator as f64), &f.count)?;
            number(sheet, r, 3, rate(&h.current), value)?;
            number(sheet, r, 4, rate(&h.previous), value)?;
            number(sheet, r, 5, difference(rate(&h.current), rate(&h.previous)), change)?;
            number(sheet, r, 6, rate(&h.year_ago), value)?;
            number(sheet, r, 7, difference(rate(&h.current), rate(&h.year_ago)), change)?;
            number(sheet, r, 8, h.kpi.target(), value)?;
            number(sheet, r, 9, h.kpi.target().and_then(|t| difference(rate(&h.current), Some(t))), change)?;
        }
        sheet.set_column_width(0, 24)?;
        sheet.set_column_range_width(1, 9, 12)?;
        Ok(())
    }

    fn trend_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[1], "网办率月度趋势", &[Kpi::OnlineRate])?;
        write_header(sheet, f, TABLE_ROW, &["月份", "网办件数", "总件数", "网办率", "目标", "阶段上线"])?;
        let go_lives: Vec<(String, u8)> =
            domain::business::Phase::ALL.iter().map(|p| (gap::month_key(p.go_live()), p.number())).collect();
        let rows = self.monthly.rates();
        for (i, m) in rows.iter().enumerate() {
            let r = TABLE_ROW + 1 + row(i);
            let key = m.dim(Dim::Month).unwrap_or_default();
            sheet.write_string(r, 0, key)?;
            sheet.write_number_with_format(r, 1, m.numerator as f64, &f.count)?;
            sheet.write_number_with_format(r, 2, m.denominator as f64, &f.count)?;
            number(sheet, r, 3, m.rate, &f.percent)?;
            sheet.write_number_with_format(r, 4, warehouse::kpi::TARGET_ONLINE_RATE, &f.percent)?;
            if let Some((_, phase)) = go_lives.iter().find(|(month, _)| month == key) {
                // A full-height column marks the go-live month; its label names the phase.
                sheet.write_number_with_format(r, 5, 1.0, &f.percent)?;
                sheet.write_string(r, 6, format!("第{phase}期上线"))?;
            }
        }
        if !rows.is_empty() {
            let (first, last) = (TABLE_ROW + 1, TABLE_ROW + row(rows.len()));
            let name = SHEETS[1];
            let mut line = Chart::new(ChartType::Line);
            line.title().set_name("网办率月度趋势（目标 90%，柱为各期上线月份）");
            line.add_series()
                .set_name("网办率")
                .set_categories((name, first, 0, last, 0))
                .set_values((name, first, 3, last, 3));
            line.add_series()
                .set_name("目标 90%")
                .set_categories((name, first, 0, last, 0))
                .set_values((name, first, 4, last, 4));
            line.y_axis().set_num_format("0%").set_min(0).set_max(1);
            let mut marks = Chart::new(ChartType::Column);
            marks
                .add_series()
                .set_name("阶段上线")
                .set_categories((name, first, 0, last, 0))
                .set_values((name, first, 5, last, 5));
            line.combine(&marks);
            line.set_width(760).set_height(360);
            sheet.insert_chart(TABLE_ROW, 8, &line)?;
        }
        sheet.set_column_range_width(0, 6, 12)?;
        Ok(())
    }

    fn distribution_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[2], "网办率分布（本月）", &[Kpi::OnlineRate])?;
        let mut r = TABLE_ROW;
        for (dim, result) in &self.distribution {
            let title = dim_title(*dim, Lang::Zh);
            write_header(sheet, f, r, &[title, "名称", "网办件数", "总件数", "网办率"])?;
            let rows = result.rates();
            for (i, x) in rows.iter().enumerate() {
                let rr = r + 1 + row(i);
                sheet.write_string(rr, 0, x.dim(*dim).unwrap_or_default())?;
                sheet.write_string(rr, 1, dim_value(*dim, x.dim(*dim), Lang::Zh))?;
                sheet.write_number_with_format(rr, 2, x.numerator as f64, &f.count)?;
                sheet.write_number_with_format(rr, 3, x.denominator as f64, &f.count)?;
                number(sheet, rr, 4, x.rate, &f.percent)?;
            }
            if !rows.is_empty() {
                let (first, last) = (r + 1, r + row(rows.len()));
                let mut chart = Chart::new(ChartType::Bar);
                chart.title().set_name(&format!("按{title}的网办率"));
                chart
                    .add_series()
                    .set_name("网办率")
                    .set_categories((SHEETS[2], first, 1, last, 1))
                    .set_values((SHEETS[2], first, 4, last, 4));
                chart.x_axis().set_num_format("0%").set_min(0).set_max(1);
                chart.legend().set_hidden();
                let height = 120 + 22 * u32::try_from(rows.len()).unwrap_or(40).min(40);
                chart.set_width(520).set_height(height);
                sheet.insert_chart(r, 6, &chart)?;
            }
            // Leave room for the chart below a short table.
            r += 2 + row(rows.len()).max(16);
        }
        sheet.set_column_range_width(1, 4, 14)?;
        Ok(())
    }

    fn gap_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[3], "网办率差距分析", &[Kpi::OnlineRate])?;
        let g = &self.gap;
        write_header(sheet, f, TABLE_ROW, &["项目", "数值"])?;
        let mut r = TABLE_ROW + 1;
        sheet.write_string(r, 0, "本月网办率")?;
        number(sheet, r, 1, g.total.rate(), &f.percent)?;
        r += 1;
        sheet.write_string(r, 0, "达到 90% 还需网办件数")?;
        sheet.write_number_with_format(r, 1, g.needed as f64, &f.count)?;
        r += 1;
        sheet.write_string(r, 0, "按近 12 个月趋势达到 90%")?;
        sheet.write_string(r, 1, projection_text(Some(&g.projection), Lang::Zh))?;
        r += 2;
        let columns = [
            "维度",
            "代码",
            "名称",
            "网办件数",
            "总件数",
            "网办率",
            "距 90% 缺件",
            "单独可补足",
            "最佳月份",
            "最佳月份网办率",
            "按最佳可增",
            "补足缺口所需",
            "效率效应（百分点）",
            "结构效应（百分点）",
        ];
        for d in &g.by {
            let title = dim_title(d.dim, Lang::Zh);
            let s = d.shift_share;
            sheet.write_string_with_format(
                r,
                0,
                format!(
                    "按{title}：环比 {:+.4} 个百分点 = 效率效应 {:+.4} + 结构效应 {:+.4}",
                    gap::micro_to_pp(s.change),
                    gap::micro_to_pp(s.rate_effect),
                    gap::micro_to_pp(s.mix_effect)
                ),
                &f.bold,
            )?;
            r += 1;
            write_header(sheet, f, r, &columns)?;
            for seg in &d.segments {
                r += 1;
                let closes = d.closers.as_ref().is_some_and(|c| c.contains(&seg.value));
                sheet.write_string(r, 0, title)?;
                sheet.write_string(r, 1, seg.value.as_deref().unwrap_or_default())?;
                sheet.write_string(r, 2, dim_value(d.dim, seg.value.as_deref(), Lang::Zh))?;
                sheet.write_number_with_format(r, 3, seg.counts.online as f64, &f.count)?;
                sheet.write_number_with_format(r, 4, seg.counts.cases as f64, &f.count)?;
                number(sheet, r, 5, seg.counts.rate(), &f.percent)?;
                sheet.write_number_with_format(r, 6, seg.shortfall as f64, &f.count)?;
                sheet.write_string(r, 7, if seg.alone_closes_gap { "是" } else { "否" })?;
                sheet.write_string(r, 8, seg.best.as_ref().map_or("", |b| b.0.as_str()))?;
                number(sheet, r, 9, seg.best.as_ref().map(|b| b.1), &f.percent)?;
                sheet.write_number_with_format(r, 10, seg.gain_at_best as f64, &f.count)?;
                sheet.write_string(r, 11, if closes { "是" } else { "" })?;
                sheet.write_number_with_format(r, 12, gap::micro_to_pp(seg.rate_effect), &f.pp)?;
                sheet.write_number_with_format(r, 13, gap::micro_to_pp(seg.mix_effect), &f.pp)?;
            }
            r += 2;
        }
        sheet.set_column_range_width(1, 13, 12)?;
        Ok(())
    }

    fn qc_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[4], "质检差错（本月）", &[Kpi::QcErrors])?;
        let mut r = TABLE_ROW;
        for (dim, result) in &self.qc {
            write_header(sheet, f, r, &[dim_title(*dim, Lang::Zh), "名称", "差错数", "件数", "每千件差错", "未整改"])?;
            for x in result.rates() {
                r += 1;
                sheet.write_string(r, 0, x.dim(*dim).unwrap_or_default())?;
                sheet.write_string(r, 1, dim_value(*dim, x.dim(*dim), Lang::Zh))?;
                sheet.write_number_with_format(r, 2, x.numerator as f64, &f.count)?;
                sheet.write_number_with_format(r, 3, x.denominator as f64, &f.count)?;
                number(sheet, r, 4, x.rate, &f.per_mille)?;
                let open = match x.extra {
                    warehouse::kpi::Extra::Qc { open } => open,
                    _ => None,
                };
                number(sheet, r, 5, open.map(|o| o as f64), &f.count)?;
            }
            r += 2;
        }
        sheet.set_column_range_width(1, 5, 14)?;
        Ok(())
    }

    fn seizure_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[5], "查解封（本月）", &[Kpi::Seizures])?;
        write_header(sheet, f, TABLE_ROW, &["项目", "数值"])?;
        let summary = match &self.seizures.rows {
            Rows::Seizures(rows) => rows.first().copied(),
            _ => None,
        };
        let count = |v: Option<i64>| v.map(|v| v as f64);
        let lines: [(&str, Option<f64>, &Format); 7] = match summary {
            Some(s) => [
                ("本月收到查封文书", Some(s.received as f64), &f.count),
                ("在册查封", count(s.active), &f.count),
                ("轮候查封", count(s.queued), &f.count),
                ("已解封", count(s.released), &f.count),
                ("到期失效", count(s.lapsed), &f.count),
                ("30 日内到期", count(s.expiring_within_30_days), &f.count),
                ("送达至登簿中位用时（小时）", s.median_hours_to_record, &f.hours),
            ],
            None => [("本月收到查封文书", None, &f.count); 7],
        };
        for (i, (label, value, format)) in lines.iter().enumerate() {
            let r = TABLE_ROW + 1 + row(i);
            sheet.write_string(r, 0, *label)?;
            number(sheet, r, 1, *value, format)?;
        }
        // Conflicts: what reconciliation found against the register (transfers
        // and mortgages filed on seized units among them), as on the seizures page.
        let mut r = TABLE_ROW + 2 + row(lines.len());
        sheet.write_string_with_format(r, 0, "冲突与对账异常（含查封期间办理转移、抵押）", &f.bold)?;
        r += 1;
        self.anomaly_rows(sheet, f, r)?;
        sheet.set_column_width(0, 30)?;
        sheet.set_column_width(1, 14)?;
        Ok(())
    }

    fn connector_sheet(&self, sheet: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
        self.heading(sheet, f, SHEETS[6], "数据接入", &[Kpi::Anomalies])?;
        let time = |t: &Option<String>| t.as_deref().map(minute_of).unwrap_or_default();
        write_header(
            sheet,
            f,
            TABLE_ROW,
            &["连接器", "状态", "最近运行", "最近成功", "累计记录", "失败次数", "隔离记录", "最近错误"],
        )?;
        let mut r = TABLE_ROW;
        for c in &self.connectors {
            r += 1;
            sheet.write_string(r, 0, &c.connector)?;
            sheet.write_string(r, 1, status_zh(&c.status))?;
            sheet.write_string(r, 2, time(&c.last_run_at))?;
            sheet.write_string(r, 3, time(&c.last_success_at))?;
            sheet.write_number_with_format(r, 4, c.records_total as f64, &f.count)?;
            sheet.write_number_with_format(r, 5, c.errors_total as f64, &f.count)?;
            sheet.write_number_with_format(r, 6, c.quarantined_total as f64, &f.count)?;
            sheet.write_string(r, 7, c.last_error.as_deref().unwrap_or_default())?;
        }
        r += 2;
        sheet.write_string_with_format(r, 0, "本月对账异常", &f.bold)?;
        self.anomaly_rows(sheet, f, r + 1)?;
        sheet.set_column_range_width(1, 6, 16)?;
        sheet.set_column_width(7, 40)?;
        Ok(())
    }
}

impl MonthlyReport {
    /// The month's reconciliation anomalies as a table with its header at row `r`.
    fn anomaly_rows(&self, sheet: &mut Worksheet, f: &Formats, mut r: u32) -> Result<(), XlsxError> {
        write_header(sheet, f, r, &["类型", "合作方", "件数"])?;
        if let Rows::Anomalies(rows) = &self.anomalies.rows {
            for a in rows {
                r += 1;
                sheet.write_string(r, 0, &a.kind)?;
                sheet.write_string(r, 1, a.partner.as_deref().unwrap_or_default())?;
                sheet.write_number_with_format(r, 2, a.count as f64, &f.count)?;
            }
        }
        Ok(())
    }
}

/// The number formats of the workbook.
struct Formats {
    title: Format,
    bold: Format,
    header: Format,
    count: Format,
    percent: Format,
    change: Format,
    per_mille: Format,
    per_mille_change: Format,
    pp: Format,
    hours: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            title: Format::new().set_bold().set_font_size(14),
            bold: Format::new().set_bold(),
            header: Format::new().set_bold().set_align(FormatAlign::Center).set_background_color("#DDEBF7"),
            count: Format::new().set_num_format("#,##0"),
            percent: Format::new().set_num_format("0.00%"),
            change: Format::new().set_num_format("+0.00%;-0.00%;0.00%"),
            per_mille: Format::new().set_num_format("0.00"),
            per_mille_change: Format::new().set_num_format("+0.00;-0.00;0.00"),
            pp: Format::new().set_num_format("+0.0000;-0.0000;0.0000"),
            hours: Format::new().set_num_format("0.0"),
        }
    }
}

fn write_header(sheet: &mut Worksheet, f: &Formats, r: u32, titles: &[&str]) -> Result<(), XlsxError> {
    for (c, title) in titles.iter().enumerate() {
        sheet.write_string_with_format(r, u16::try_from(c).unwrap_or(u16::MAX), *title, &f.header)?;
    }
    Ok(())
}

/// A number with its format, or an empty cell.
fn number(sheet: &mut Worksheet, r: u32, c: u16, value: Option<f64>, format: &Format) -> Result<(), XlsxError> {
    match value.filter(|v| v.is_finite()) {
        Some(v) => sheet.write_number_with_format(r, c, v, format).map(|_| ()),
        None => sheet.write_blank(r, c, format).map(|_| ()),
    }
}

fn difference(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

fn row(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// China time to the minute, as the report and its pages show times.
pub(crate) fn minute(t: DateTime<Utc>) -> String {
    domain::time::china_time(t).format("%Y-%m-%d %H:%M").to_string()
}

/// [`minute`] of an RFC 3339 time (a kept record's); empty when it is not one.
pub(crate) fn minute_of(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map(|t| minute(t.with_timezone(&Utc))).unwrap_or_default()
}

fn status_zh(status: &str) -> &str {
    match status {
        "ok" => "正常",
        "degraded" => "异常",
        "never_run" => "未运行",
        other => other,
    }
}

/// A projection in words: the month expected and its 80% interval.
pub fn projection_text(projection: Option<&Projection>, lang: Lang) -> String {
    let month = |m: &Option<NaiveDate>| {
        m.map_or_else(|| lang.pick("十年内不会", "not within ten years").to_owned(), gap::month_key)
    };
    match projection {
        None => "—".to_owned(),
        Some(Projection::Reached) => lang.pick("已达到", "reached").to_owned(),
        Some(Projection::TooFewMonths { .. }) => {
            lang.pick("月份不足 3 个，无法推算", "fewer than 3 months: no trend").to_owned()
        }
        Some(Projection::Trend { expected: None, .. }) => {
            lang.pick("按当前趋势不会达到", "not at the current trend").to_owned()
        }
        Some(Projection::Trend { expected, earliest, latest, .. }) => format!(
            "{} ({} {} – {})",
            month(expected),
            lang.pick("80% 区间", "80% interval"),
            month(earliest),
            month(latest)
        ),
    }
}

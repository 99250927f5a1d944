//! Tables of a page: rendered as HTML, downloaded as CSV (with a UTF-8 BOM
//! for Excel) or xlsx; KPI results and query answers as tables.

use crate::i18n::{Lang, dim_title, dim_value};
use crate::pages::Filters;
use maud::{Markup, html};
use warehouse::kpi::{self, Dim, KpiResult};

/// A data table shown under a chart and downloadable as CSV.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Its id in `?download=`.
    pub id: &'static str,
    /// Caption.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Cells as text.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
        };
        let mut out = String::from("\u{feff}");
        let line = |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
        out.push_str(&line(&self.columns));
        out.push_str("\r\n");
        for row in &self.rows {
            out.push_str(&line(row));
            out.push_str("\r\n");
        }
        out
    }

    /// The table as an Excel workbook: numbers as numbers, the rest as text.
    pub(crate) fn xlsx(&self) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for (c, title) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, u16::try_from(c).unwrap_or(u16::MAX), title, &bold)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell.parse::<f64>() {
                    Ok(n) if n.is_finite() => sheet.write_number(r, c, n)?,
                    _ => sheet.write_string(r, c, cell)?,
                };
            }
        }
        workbook.save_to_buffer()
    }

    pub(crate) fn render(&self, filters: &Filters, path: &str, lang: Lang) -> Markup {
        html! {
            section.table {
                h3 {
                    (self.title) " "
                    a.download href=(filters.link(path, &[("download", Some(self.id))])) { (lang.pick("下载 CSV", "Download CSV")) }
                    " "
                    a.download href=(filters.link(path, &[("download", Some(self.id)), ("format", Some("xlsx"))])) { (lang.pick("下载 Excel", "Download Excel")) }
                }
                table {
                    thead { tr { @for c in &self.columns { th { (c) } } } }
                    tbody {
                        @for row in &self.rows { tr { @for cell in row { td { (cell) } } } }
                        @if self.rows.is_empty() { tr { td colspan=(self.columns.len()) { (lang.pick("无数据", "No data")) } } }
                    }
                }
            }
        }
    }
}

pub(crate) fn rate_text(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A KPI result as a table: dimensions (named), numerator, denominator, rate.
pub(crate) fn kpi_table(id: &'static str, title: String, result: &KpiResult, dims: &[Dim], lang: Lang) -> Table {
    let mut columns: Vec<String> = dims.iter().map(|d| dim_title(*d, lang).to_owned()).collect();
    columns.extend(
        [lang.pick("分子", "Numerator"), lang.pick("分母", "Denominator"), lang.pick("比率", "Rate")].map(String::from),
    );
    let rows = result
        .rates()
        .iter()
        .map(|row| {
            let mut cells: Vec<String> = dims.iter().map(|d| dim_value(*d, row.dim(*d), lang)).collect();
            cells.push(row.numerator.to_string());
            cells.push(row.denominator.to_string());
            cells.push(rate_text(row.rate));
            cells
        })
        .collect();
    Table { id, title, columns, rows }
}

pub(crate) fn batches_table(batches: &[warehouse::datafusion::arrow::record_batch::RecordBatch]) -> Table {
    let columns: Vec<String> =
        batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let rows = kpi::batches_to_rows(batches)
        .iter()
        .map(|r| columns.iter().map(|c| kpi::cell_text(r.get(c))).collect())
        .collect();
    Table { id: "result", title: String::new(), columns, rows }
}

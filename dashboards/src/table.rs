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
    /// The columns whose cells are numbers in the xlsx download (a trailing
    /// `%` is a percentage); every other cell is written as text, so case
    /// numbers, codes with leading zeros and long identity numbers keep every
    /// character.
    pub numbers: Vec<usize>,
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

    /// The table as an Excel workbook: the cells of [`Table::numbers`]'
    /// columns that read as numbers as numbers, everything else as text.
    pub(crate) fn xlsx(&self) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let percent = rust_xlsxwriter::Format::new().set_num_format("0.0%");
        for (c, title) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, u16::try_from(c).unwrap_or(u16::MAX), title, &bold)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (i, cell) in row.iter().enumerate() {
                let c = u16::try_from(i).unwrap_or(u16::MAX);
                match self.numbers.contains(&i).then(|| number(cell)).flatten() {
                    Some((n, false)) => sheet.write_number(r, c, n)?,
                    Some((n, true)) => sheet.write_number_with_format(r, c, n, &percent)?,
                    None => sheet.write_string(r, c, cell)?,
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

/// A cell of a number column as a number: `12.5%` as (0.125, percent).
fn number(cell: &str) -> Option<(f64, bool)> {
    let (digits, percent) = match cell.strip_suffix('%') {
        Some(d) => (d, true),
        None => (cell, false),
    };
    let n = digits.trim().parse::<f64>().ok().filter(|n| n.is_finite())?;
    Some(if percent { (n / 100.0, true) } else { (n, false) })
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
    let numbers = (dims.len()..dims.len() + 3).collect();
    Table { id, title, columns, rows, numbers }
}

pub(crate) fn batches_table(batches: &[warehouse::datafusion::arrow::record_batch::RecordBatch]) -> Table {
    let columns: Vec<String> =
        batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let rows = kpi::batches_to_rows(batches)
        .iter()
        .map(|r| columns.iter().map(|c| kpi::cell_text(r.get(c))).collect())
        .collect();
    let numbers = batches
        .first()
        .map(|b| {
            let schema = b.schema();
            (0..schema.fields().len()).filter(|&i| schema.field(i).data_type().is_numeric()).collect()
        })
        .unwrap_or_default();
    Table { id: "result", title: String::new(), columns, rows, numbers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

    /// Read back with calamine: case numbers, codes with leading zeros and
    /// 18-digit identity numbers stay text; the number columns are numbers.
    #[test]
    fn the_xlsx_download_keeps_text_as_text() {
        let table = Table {
            id: "t",
            title: String::new(),
            columns: vec!["案件号".into(), "单元号".into(), "证件号".into(), "件数".into(), "比率".into()],
            rows: vec![
                vec!["2024000123".into(), "0102".into(), "430104199001011234".into(), "12".into(), "87.5%".into()],
                vec!["1E5".into(), "007".into(), "11010519491231002X".into(), "3".into(), "—".into()],
            ],
            numbers: vec![3, 4],
        };
        let bytes = table.xlsx().expect("xlsx");
        let mut book: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("open");
        let name = book.sheet_names()[0].clone();
        let range = book.worksheet_range(&name).expect("sheet");
        let cell = |r: u32, c: u32| range.get_value((r, c)).cloned().unwrap_or(Data::Empty);
        for (r, c, text) in [
            (1, 0, "2024000123"),
            (1, 1, "0102"),
            (1, 2, "430104199001011234"),
            (2, 0, "1E5"),
            (2, 1, "007"),
            (2, 4, "—"),
        ] {
            assert_eq!(cell(r, c), Data::String(text.into()), "row {r} column {c}");
        }
        assert_eq!(cell(1, 3), Data::Float(12.0));
        assert_eq!(cell(1, 4), Data::Float(0.875));
    }
}

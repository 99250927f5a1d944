//! Charts drawn on the server as SVG: no script, no web fonts, no inline
//! `style` (the Content-Security-Policy forbids it), colours from classes in
//! `app.css`. Each chart is deterministic for its input, so golden files pin it.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped};

/// Chart width and height in SVG units (the page scales it).
const W: f64 = 720.0;
const H: f64 = 260.0;
/// Margins: left (axis labels), right, top, bottom (x labels).
const ML: f64 = 48.0;
const MR: f64 = 32.0;
const MT: f64 = 16.0;
const MB: f64 = 40.0;

/// Escapes text for SVG content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A point of a series: its label on the x axis, its value (a share, 0 to 1,
/// or `None` for no data) and where it drills down to.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// X-axis label.
    pub label: String,
    /// Value; shares are 0 to 1.
    pub value: Option<f64>,
    /// Link to the rows behind the point, if any.
    pub href: Option<String>,
    /// Text shown for the value instead of a percentage (figures that are not shares).
    pub shown: Option<String>,
}

/// A vertical marker on a line chart (a phase go-live).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// The x label it stands at.
    pub at: String,
    /// Its caption.
    pub caption: String,
}

/// The y range of shares: from a rounded-down minimum to 100%.
fn share_range(values: impl Iterator<Item = f64>, target: Option<f64>) -> (f64, f64) {
    let min = values.chain(target).fold(1.0_f64, f64::min);
    let low = ((min - 0.05).max(0.0) * 10.0).floor() / 10.0;
    (low, 1.0)
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A line chart of shares by period, with an optional target line and markers.
pub fn line_chart(title: &str, points: &[Point], target: Option<f64>, markers: &[Marker]) -> Markup {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    let (low, high) = share_range(points.iter().filter_map(|p| p.value), target);
    let plot_w = W - ML - MR;
    let plot_h = H - MT - MB;
    let x =
        |i: usize| ML + if points.len() <= 1 { plot_w / 2.0 } else { plot_w * i as f64 / (points.len() - 1) as f64 };
    let y = |v: f64| MT + plot_h * (1.0 - (v - low) / (high - low));
    grid(&mut s, low, high, y);
    for m in markers {
        if let Some(i) = points.iter().position(|p| p.label == m.at) {
            let _ = write!(
                s,
                r#"<line class="marker" x1="{x:.1}" y1="{MT}" x2="{x:.1}" y2="{b:.1}"/><text class="marker-label" x="{tx:.1}" y="{ty:.1}">{c}</text>"#,
                x = x(i),
                b = H - MB,
                tx = x(i) + 3.0,
                ty = MT + 10.0,
                c = esc(&m.caption)
            );
        }
    }
    if let Some(t) = target {
        target_line(&mut s, y(t), t);
    }
    let path: Vec<String> =
        points.iter().enumerate().filter_map(|(i, p)| p.value.map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
    if path.len() > 1 {
        let _ = write!(s, r#"<polyline class="series" points="{}"/>"#, path.join(" "));
    }
    let every = points.len().div_ceil(12).max(1);
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.value {
            let dot = format!(
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3.5"><title>{} {}</title></circle>"#,
                x(i),
                y(v),
                esc(&p.label),
                percent(v)
            );
            link(&mut s, p.href.as_deref(), &dot);
        }
        if i % every == 0 {
            let _ =
                write!(s, r#"<text class="x-label" x="{:.1}" y="{:.1}">{}</text>"#, x(i), H - MB + 16.0, esc(&p.label));
        }
    }
    s.push_str("</svg>");
    PreEscaped(s)
}

/// A horizontal bar chart of shares, one bar per row, with an optional target line.
pub fn bar_chart(title: &str, points: &[Point], target: Option<f64>) -> Markup {
    let row_h = 22.0;
    let label_w = 180.0;
    let height = MT + row_h * points.len().max(1) as f64 + 24.0;
    let plot_w = W - label_w - MR - 56.0;
    let x = |v: f64| label_w + plot_w * v.clamp(0.0, 1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {height:.0}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, p) in points.iter().enumerate() {
        let top = MT + row_h * i as f64;
        let _ = write!(
            s,
            r#"<text class="y-label" x="{:.1}" y="{:.1}">{}</text>"#,
            label_w - 6.0,
            top + row_h * 0.65,
            esc(&p.label)
        );
        if let Some(v) = p.value {
            let bar = format!(
                r#"<rect class="bar" x="{label_w:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} {}</title></rect>"#,
                top + 3.0,
                x(v) - label_w,
                row_h - 6.0,
                esc(&p.label),
                p.shown.as_deref().map_or_else(|| percent(v), esc)
            );
            link(&mut s, p.href.as_deref(), &bar);
            let _ = write!(
                s,
                r#"<text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
                x(v) + 4.0,
                top + row_h * 0.65,
                p.shown.as_deref().map_or_else(|| percent(v), esc)
            );
        }
    }
    if let Some(t) = target {
        let bottom = MT + row_h * points.len().max(1) as f64;
        let _ = write!(
            s,
            r#"<line class="target" x1="{x:.1}" y1="{MT}" x2="{x:.1}" y2="{bottom:.1}"/><text class="target-label" x="{x:.1}" y="{ly:.1}">{p}</text>"#,
            x = x(t),
            ly = bottom + 14.0,
            p = percent(t)
        );
    }
    s.push_str("</svg>");
    PreEscaped(s)
}

fn grid(s: &mut String, low: f64, high: f64, y: impl Fn(f64) -> f64) {
    let steps = ((high - low) / 0.1).round() as i64;
    let step = if steps > 5 { 0.2 } else { 0.1 };
    let mut v = low;
    while v <= high + 1e-9 {
        let _ = write!(
            s,
            r#"<line class="grid" x1="{ML}" y1="{y:.1}" x2="{x2}" y2="{y:.1}"/><text class="y-axis" x="{lx}" y="{ty:.1}">{p}</text>"#,
            y = y(v),
            x2 = W - MR,
            lx = ML - 6.0,
            ty = y(v) + 4.0,
            p = format_args!("{:.0}%", v * 100.0)
        );
        v += step;
    }
}

fn target_line(s: &mut String, y: f64, t: f64) {
    let _ = write!(
        s,
        r#"<line class="target" x1="{ML}" y1="{y:.1}" x2="{x2}" y2="{y:.1}"/><text class="target-label" x="{lx}" y="{ly:.1}">{p}</text>"#,
        x2 = W - MR,
        lx = W - MR - 4.0,
        ly = y - 4.0,
        p = percent(t)
    );
}

fn link(s: &mut String, href: Option<&str>, inner: &str) {
    match href {
        Some(h) => {
            let _ = write!(s, r#"<a href="{}">{inner}</a>"#, esc(h));
        }
        None => s.push_str(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_points_without_data_are_left_out() {
        let points = vec![
            Point { label: "<a>".into(), value: Some(0.5), href: Some("/x?a=1&b=2".into()), shown: None },
            Point { label: "b".into(), value: None, href: None, shown: None },
        ];
        let svg = line_chart("t&t", &points, Some(0.9), &[]).into_string();
        assert!(svg.contains("&lt;a&gt;"));
        assert!(svg.contains("t&amp;t"));
        assert!(svg.contains(r#"href="/x?a=1&amp;b=2""#));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
    }
}

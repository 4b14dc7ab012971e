//! Server-rendered SVG charts for the console's dashboard: no script, no chart CDN, the
//! same CSP as every page. Each chart is an `<svg role="img">` with a `<title>` and a
//! `<desc>` that say in words what it shows, followed by the numbers as a table for
//! screen readers and for anyone who wants the exact figures.

use std::fmt::Write as _;

use tessera_idp::mail::escape;

/// One series of counts over equal intervals, drawn as a line.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Shown in the legend and the table header (text).
    pub label: &'a str,
    /// The CSS class of its line and swatch (`series-a`, `series-b`).
    pub class: &'a str,
    pub counts: &'a [u64],
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub struct Bar<'a> {
    /// Text.
    pub label: &'a str,
    pub value: u64,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 200;
const LEFT: u32 = 44;
const RIGHT: u32 = 8;
const TOP: u32 = 10;
const BOTTOM: u32 = 24;

/// The smallest "nice" maximum (1, 2 or 5 × 10ⁿ) at least `max`, and at least 1.
fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1u64, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= max {
                return candidate.max(1);
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// Lines of `series` (all the same length) over intervals labelled by `ticks` (text; one
/// per interval, shown every few), titled `title` (text), described by `description`
/// (text). The table's first column is headed `interval` (text).
pub fn line_chart(
    id: &str,
    title: &str,
    description: &str,
    interval: &str,
    ticks: &[String],
    series: &[Series<'_>],
) -> String {
    let points = series.iter().map(|s| s.counts.len()).max().unwrap_or(0);
    let max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.counts.iter().copied())
            .max()
            .unwrap_or(0),
    );
    let plot_w = f64::from(WIDTH - LEFT - RIGHT);
    let plot_h = f64::from(HEIGHT - TOP - BOTTOM);
    let x = |i: usize| -> f64 {
        let span = points.saturating_sub(1).max(1) as f64;
        f64::from(LEFT) + plot_w * (i as f64) / span
    };
    let y = |v: u64| -> f64 { f64::from(TOP) + plot_h * (1.0 - (v as f64) / (max as f64)) };

    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "<figure class=\"chart\">\n\
         <svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         preserveAspectRatio=\"none\">\n\
         <title id=\"{id}-title\">{title}</title>\n<desc id=\"{id}-desc\">{desc}</desc>",
        id = escape(id),
        title = escape(title),
        desc = escape(description),
    );
    // Grid lines at 0, ½ and the maximum, with their values.
    for value in [0, max / 2, max] {
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{value}</text>",
            x2 = WIDTH - RIGHT,
            y = y(value),
            tx = LEFT - 6,
            ty = y(value) + 4.0,
        );
    }
    // At most six tick labels along the bottom.
    let every = points.div_ceil(6).max(1);
    for (i, tick) in ticks.iter().enumerate().take(points) {
        if i % every == 0 {
            let _ = writeln!(
                out,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(i),
                HEIGHT - 6,
                escape(tick)
            );
        }
    }
    for s in series {
        let path: Vec<String> = s
            .counts
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"line {}\" fill=\"none\" points=\"{}\"/>",
            escape(s.class),
            path.join(" ")
        );
    }
    out.push_str("</svg>\n<figcaption>");
    for s in series {
        let _ = write!(
            out,
            "<span class=\"swatch {}\" aria-hidden=\"true\"></span>{} ",
            escape(s.class),
            escape(s.label)
        );
    }
    out.push_str("</figcaption>\n</figure>\n");

    // The figures, as a table.
    let _ = write!(
        out,
        "<details class=\"figures\"><summary id=\"{id}-figures\">{}</summary>\n\
         <div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"{id}-figures\"><table>\n\
         <thead><tr><th scope=\"col\">{}</th>",
        escape(title),
        escape(interval),
        id = escape(id),
    );
    for s in series {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(s.label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for i in 0..points {
        let tick = ticks.get(i).map_or("", String::as_str);
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", escape(tick));
        for s in series {
            let _ = write!(out, "<td>{}</td>", s.counts.get(i).copied().unwrap_or(0));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div></details>\n");
    out
}

/// Horizontal bars, one per entry, titled `title` (text) and described by `description`
/// (text); the value is printed beside each bar, so the chart needs no table.
pub fn bar_chart(id: &str, title: &str, description: &str, bars: &[Bar<'_>]) -> String {
    const ROW: u32 = 28;
    const LABEL: u32 = 120;
    let height = (ROW * u32::try_from(bars.len()).unwrap_or(0)).max(ROW);
    let max = nice_ceiling(bars.iter().map(|b| b.value).max().unwrap_or(0));
    let span = f64::from(WIDTH - LABEL - 60);
    let mut out = String::with_capacity(1024);
    let _ = writeln!(
        out,
        "<figure class=\"chart\">\n\
         <svg viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\n\
         <title id=\"{id}-title\">{title}</title>\n<desc id=\"{id}-desc\">{desc}</desc>",
        id = escape(id),
        title = escape(title),
        desc = escape(description),
    );
    for (row, bar) in (0u32..).zip(bars) {
        let top = row * ROW;
        let width = span * (bar.value as f64) / (max as f64);
        let _ = writeln!(
            out,
            "<text class=\"axis\" x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{LABEL}\" y=\"{ry}\" width=\"{width:.1}\" height=\"{bh}\"/>\
             <text class=\"value\" x=\"{vx:.1}\" y=\"{ty}\">{value}</text>",
            lx = LABEL - 8,
            ty = top + 19,
            label = escape(bar.label),
            ry = top + 5,
            bh = ROW - 10,
            vx = f64::from(LABEL) + width + 6.0,
            value = bar.value,
        );
    }
    out.push_str("</svg>\n</figure>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxima_round_up_to_one_two_or_five() {
        let rounded: Vec<u64> = [0, 1, 2, 3, 6, 10, 11, 40, 51, 999, 1001]
            .into_iter()
            .map(nice_ceiling)
            .collect();
        assert_eq!(rounded, [1, 1, 2, 5, 10, 10, 20, 50, 100, 1000, 2000]);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_line_chart_escapes_its_texts_and_tabulates_every_count() {
        let ticks: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
        let ok: Vec<u64> = (0..24).collect();
        let failed = vec![1u64; 24];
        let svg = line_chart(
            "sign-ins",
            "Sign-ins <24h>",
            "per hour & failures",
            "Hour",
            &ticks,
            &[
                Series {
                    label: "succeeded",
                    class: "series-a",
                    counts: &ok,
                },
                Series {
                    label: "<failed>",
                    class: "series-b",
                    counts: &failed,
                },
            ],
        );
        assert!(
            svg.contains("<title id=\"sign-ins-title\">Sign-ins &lt;24h&gt;</title>"),
            "{svg}"
        );
        assert!(svg.contains("per hour &amp; failures"));
        assert!(svg.contains("&lt;failed&gt;") && !svg.contains("<failed>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // One row per hour, each with both counts.
        assert_eq!(svg.matches("<tr><th scope=\"row\">").count(), 24);
        assert!(svg.contains("<tr><th scope=\"row\">23:00</th><td>23</td><td>1</td></tr>"));
        // The highest count sets the scale's top: 23 → 50.
        assert!(svg.contains(">50</text>"));
    }

    #[test]
    fn an_empty_chart_still_renders_a_scale() {
        let svg = line_chart("x", "t", "d", "i", &[], &[]);
        assert!(svg.contains(">1</text>") && svg.contains("</svg>"));
        let bars = bar_chart("y", "t", "d", &[]);
        assert!(bars.contains("</svg>"));
    }

    #[test]
    fn bars_are_proportional_and_labelled() {
        let svg = bar_chart(
            "channels",
            "Active sessions",
            "by channel",
            &[
                Bar {
                    label: "web",
                    value: 10,
                },
                Bar {
                    label: "mobile<",
                    value: 5,
                },
            ],
        );
        assert!(svg.contains("mobile&lt;"));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        // 10 is the full span (460), 5 half of it.
        assert!(
            svg.contains("width=\"460.0\"") && svg.contains("width=\"230.0\""),
            "{svg}"
        );
    }
}

//! The demo's live full-screen view: answers per provider as moving charts, the primary's
//! breaker as a coloured timeline, failovers and app-visible errors. Pure drawing over a
//! [`View`] the demo fills in each tick, so a test renders it to ratatui's `TestBackend`.

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use ratatui::Frame;

/// Ticks of history kept: wider than any terminal the charts are drawn in.
const HISTORY: usize = 400;

/// What the view shows, updated once per tick.
#[derive(Debug, Default)]
pub struct View {
    /// The phase now, e.g. `primary returns 503s`.
    pub phase: String,
    /// Seconds since traffic started.
    pub elapsed: f64,
    /// Answers from the primary in each tick, oldest first.
    pub primary: Vec<u64>,
    /// Answers from the backup in each tick.
    pub backup: Vec<u64>,
    /// The primary's breaker state in each tick (`closed`, `open`, `half-open`).
    pub breaker: Vec<&'static str>,
    /// Calls answered after a failover so far.
    pub failovers: u64,
    /// Calls a hedge answered so far (a slow primary got company).
    pub hedges: u64,
    /// Calls the app saw fail so far.
    pub app_errors: u64,
    /// Calls sent so far.
    pub sent: u64,
    /// Breaker transitions so far, e.g. `12.3s  closed -> open`.
    pub transitions: Vec<String>,
}

impl View {
    /// Adds one tick: answers per provider in it and the breaker state at its end.
    pub fn tick(&mut self, primary: u64, backup: u64, breaker: &'static str) {
        for (series, value) in [(&mut self.primary, primary), (&mut self.backup, backup)] {
            series.push(value);
            if series.len() > HISTORY {
                series.remove(0);
            }
        }
        self.breaker.push(breaker);
        if self.breaker.len() > HISTORY {
            self.breaker.remove(0);
        }
    }
}

/// The colour of a breaker state on the timeline.
fn colour(state: &str) -> Color {
    match state {
        "open" => Color::Red,
        "half-open" => Color::Yellow,
        _ => Color::Green,
    }
}

/// Draws the whole view into `frame`.
pub fn draw(frame: &mut Frame<'_>, view: &View) {
    let [title, primary, backup, breaker, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Min(4),
        Constraint::Length(3),
        Constraint::Length(6),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(format!(
            "switchyard demo  {:>5.1}s  phase: {}",
            view.elapsed, view.phase
        )),
        title,
    );
    for (area, name, series, colour) in [
        (primary, "primary (OpenAI API)", &view.primary, Color::Cyan),
        (
            backup,
            "backup (Anthropic API)",
            &view.backup,
            Color::Magenta,
        ),
    ] {
        let width = usize::from(area.width.saturating_sub(2));
        let shown = &series[series.len().saturating_sub(width)..];
        frame.render_widget(
            Sparkline::default()
                .block(Block::default().borders(Borders::ALL).title(format!(
                    "{name}: answers per tick, now {}",
                    series.last().copied().unwrap_or(0)
                )))
                .data(shown)
                .style(Style::default().fg(colour)),
            area,
        );
    }
    let width = usize::from(breaker.width.saturating_sub(2));
    let states = &view.breaker[view.breaker.len().saturating_sub(width)..];
    let timeline: Vec<Span<'_>> = states
        .iter()
        .map(|s| Span::styled("█", Style::default().fg(colour(s))))
        .collect();
    let now = view.breaker.last().copied().unwrap_or("closed");
    frame.render_widget(
        Paragraph::new(Line::from(timeline)).block(Block::default().borders(Borders::ALL).title(
            format!("primary breaker: {now}  (green closed, red open, yellow half-open)"),
        )),
        breaker,
    );
    let mut lines = vec![Line::from(format!(
        "sent {}   failovers {}   hedges won {}   app errors {}",
        view.sent, view.failovers, view.hedges, view.app_errors
    ))];
    let recent = view.transitions.len().saturating_sub(3);
    lines.extend(
        view.transitions[recent..]
            .iter()
            .map(|t| Line::from(t.as_str())),
    );
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title("what the app saw"),
        ),
        bottom,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    fn rendered(view: &View) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
        terminal.draw(|f| draw(f, view)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn each_phase_shows_its_name_traffic_breaker_and_errors() {
        // (phase, primary answers, backup answers, breaker state) per tick, as the demo goes.
        let phases = [
            ("healthy", 8, 0, "closed"),
            ("primary is 30x slower", 1, 6, "open"),
            ("primary returns 503s", 0, 8, "open"),
            ("primary is a black hole", 0, 8, "half-open"),
            ("primary recovered", 8, 0, "closed"),
        ];
        let mut view = View::default();
        for (i, (phase, primary, backup, state)) in phases.into_iter().enumerate() {
            view.phase = phase.to_owned();
            view.elapsed = i as f64 * 7.0;
            for _ in 0..10 {
                view.tick(primary, backup, state);
            }
            view.sent += 80;
            view.failovers += backup;
            if i == 1 {
                view.transitions.push("6.0s  closed -> open".to_owned());
            }
            let text = rendered(&view);
            assert!(text.contains(&format!("phase: {phase}")), "{text}");
            assert!(
                text.contains(&format!("primary breaker: {state}")),
                "{text}"
            );
            assert!(
                text.contains(&format!(
                    "backup (Anthropic API): answers per tick, now {backup}"
                )),
                "{text}"
            );
            assert!(text.contains("app errors 0"), "{text}");
            if i >= 1 {
                assert!(text.contains("closed -> open"), "{text}");
            }
            let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
            terminal.draw(|f| draw(f, &view)).unwrap();
            let buffer = terminal.backend().buffer();
            // The timeline's newest cell has the state's colour.
            let row = (0..24).find(|&y| {
                (0..100)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
                    .contains("primary breaker")
            });
            let y = row.unwrap() + 1;
            let last = (0..100)
                .rev()
                .find(|&x| buffer[(x, y)].symbol() == "█")
                .unwrap();
            assert_eq!(buffer[(last, y)].fg, colour(state));
        }
    }
}

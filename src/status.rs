//! `switchyard status`: a table of a running sidecar's routes and targets (breaker state,
//! rates, baseline, cooldowns, in-flight) read from its admin port's `GET /breakers`, once
//! or, with `--watch`, refreshed in place. Reads only; the sidecar is never changed.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::exit::Unavailable;

/// Flags of `switchyard status`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// The sidecar's admin address (loopback by default; use `kubectl port-forward` for a pod).
    #[arg(long, default_value = "127.0.0.1:4001")]
    pub admin: SocketAddr,
    /// Refresh the table until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Time between refreshes with `--watch`.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, requires = "watch")]
    pub interval: Duration,
    /// With `--watch`, stop after this many tables (for scripts and tests).
    #[arg(long, requires = "watch")]
    pub count: Option<u64>,
}

/// One target as `GET /breakers` reports it (the fields the table shows).
#[derive(Debug, Deserialize)]
pub struct TargetRow {
    /// Routes that list the target.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Provider name.
    pub provider: String,
    /// Model sent to it.
    pub model: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// Calls in the breaker's window.
    pub calls: u64,
    /// Share of failed calls in the window.
    pub failure_rate: f64,
    /// Share of slow calls in the window.
    pub slow_rate: f64,
    /// Time left open.
    pub open_for_ms: Option<u64>,
    /// Time left in a 429 cooldown.
    pub cooldown_ms: Option<u64>,
    /// Calls in flight now.
    pub in_flight: u32,
    /// The target's normal timing.
    pub baseline: BaselineRow,
}

/// A target's normal timing, `None` until enough samples.
#[derive(Debug, Deserialize)]
pub struct BaselineRow {
    /// Mean time to first token of streams.
    pub ttft_seconds: Option<f64>,
    /// About its 95th percentile.
    pub ttft_p95_seconds: Option<f64>,
}

/// Prints the table once, or every `interval` with `--watch`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        let rows = fetch(args.admin).await?;
        let mut frame = String::new();
        if args.watch && terminal {
            // Home and clear: the table is redrawn in place rather than scrolled.
            frame.push_str("\x1b[H\x1b[2J");
        } else if shown > 0 {
            frame.push('\n');
        }
        frame.push_str(&render(args.admin, SystemTime::now(), &rows));
        let mut out = std::io::stdout().lock();
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        drop(out);
        shown += 1;
        if !args.watch || args.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        tokio::time::sleep(args.interval).await;
    }
}

/// Reads `GET /breakers`; a sidecar that does not answer is [`Unavailable`].
async fn fetch(admin: SocketAddr) -> anyhow::Result<Vec<TargetRow>> {
    let uri = format!("http://{admin}/breakers");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = http::Request::get(&uri)
        .body(Empty::new())
        .context("building the status request")?;
    // A port-forward that accepts but never answers must not hang the command.
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| Unavailable::new(format!("no sidecar answered on {admin} within 5s")))?
        .map_err(|e| {
            Unavailable::new(format!(
                "no sidecar answers on {admin} ({e}); is it running, and is --admin its admin port?"
            ))
        })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading /breakers")?
        .to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("{uri} did not answer a switchyard breaker list"))
}

/// The table: a header line, then one row per route and target, routes in policy order.
pub fn render(admin: SocketAddr, now: SystemTime, rows: &[TargetRow]) -> String {
    let mut routes: Vec<&str> = Vec::new();
    for route in rows.iter().flat_map(|r| &r.routes) {
        if !routes.contains(&route.as_str()) {
            routes.push(route);
        }
    }
    let mut table = vec![[
        "ROUTE",
        "TARGET",
        "STATE",
        "CALLS",
        "FAIL",
        "SLOW",
        "TTFT",
        "TTFT-P95",
        "OPEN",
        "COOLDOWN",
        "IN-FLIGHT",
    ]
    .map(String::from)];
    let grouped = routes.iter().flat_map(|route| {
        rows.iter()
            .filter(move |r| r.routes.iter().any(|x| x == route))
            .map(move |r| (*route, r))
    });
    // A target no route lists (kept only by a reload in progress) still shows.
    let unrouted = rows
        .iter()
        .filter(|r| r.routes.is_empty())
        .map(|r| ("-", r));
    for (route, row) in grouped.chain(unrouted) {
        table.push([
            route.to_owned(),
            format!("{}/{}", row.provider, row.model),
            row.state.clone(),
            row.calls.to_string(),
            percent(row.failure_rate),
            percent(row.slow_rate),
            seconds(row.baseline.ttft_seconds),
            seconds(row.baseline.ttft_p95_seconds),
            millis(row.open_for_ms),
            millis(row.cooldown_ms),
            row.in_flight.to_string(),
        ]);
    }
    let mut out = format!(
        "switchyard status  admin {admin}  {}  {} targets\n",
        httpdate::fmt_http_date(now),
        rows.len()
    );
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}s"))
}

fn millis(value: Option<u64>) -> String {
    match value {
        Some(ms) if ms > 0 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(routes: &[&str], provider: &str, state: &str, open: Option<u64>) -> TargetRow {
        TargetRow {
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            provider: provider.to_owned(),
            model: "m".to_owned(),
            state: state.to_owned(),
            calls: 12,
            failure_rate: 0.25,
            slow_rate: 0.0,
            open_for_ms: open,
            cooldown_ms: None,
            in_flight: 2,
            baseline: BaselineRow {
                ttft_seconds: Some(0.4),
                ttft_p95_seconds: None,
            },
        }
    }

    #[test]
    fn rows_are_grouped_by_route_and_aligned() {
        let rows = [
            row(&["a", "b"], "shared", "closed", None),
            row(&["a"], "down", "open", Some(12_340)),
            row(&[], "orphan", "closed", None),
        ];
        let text = render(
            "127.0.0.1:4001".parse().unwrap(),
            SystemTime::UNIX_EPOCH,
            &rows,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("admin 127.0.0.1:4001") && lines[0].contains("3 targets"));
        assert!(lines[1].starts_with("ROUTE"));
        let cells: Vec<Vec<&str>> = lines[2..]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            cells[0][..6],
            ["a", "shared/m", "closed", "12", "25%", "0%"]
        );
        assert_eq!(cells[0][6..], ["0.40s", "-", "-", "-", "2"]);
        assert_eq!(cells[1][..3], ["a", "down/m", "open"]);
        assert_eq!(cells[1][8], "12.3s");
        assert_eq!(cells[2][..2], ["b", "shared/m"]);
        assert_eq!(cells[3][..2], ["-", "orphan/m"]);
        // Aligned: every column starts at the same offset on every line.
        let at = lines[1].find("STATE").unwrap();
        assert!(lines[2..].iter().all(|l| l[at..].starts_with(['c', 'o'])));
    }
}

//! `switchyard status` against a running sidecar: the table, `--watch` refreshing it, and
//! a clear error (exit 69) when nothing answers on the admin address.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The cells of the table row for `route` and `target`, split on whitespace.
fn row<'a>(table: &'a str, route: &str, target: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() > 2 && cells[0] == route && cells[1] == target)
        .unwrap_or_else(|| panic!("no row {route} {target} in:\n{table}"))
}

#[tokio::test]
async fn status_prints_routes_targets_and_breakers() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(
        serde_json::json!({"errorRate": 1.0, "errorStatus": 503}),
    ));
    sidecar.chat("gpt-4o").await;
    let opened = post(
        &sidecar.admin("/breakers/claude/claude-sonnet-4-5/open?for=30s"),
        "",
        &[],
    )
    .await;
    assert_eq!(opened.status, 200);

    let out = Command::new(BIN)
        .args(["status", "--admin", &sidecar.running.admin_addr.to_string()])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{table}");
    let header = table.lines().nth(1).unwrap();
    for column in [
        "ROUTE",
        "TARGET",
        "STATE",
        "CALLS",
        "FAIL",
        "SLOW",
        "TTFT",
        "OPEN",
        "COOLDOWN",
        "IN-FLIGHT",
    ] {
        assert!(header.contains(column), "{column} missing in {header}");
    }
    let failed = row(&table, "gpt-4o", "primary/gpt-4o");
    assert_eq!(failed[2..6], ["closed", "1", "100%", "0%"]);
    assert_eq!(
        row(&table, "gpt-4o", "secondary/gpt-4o-mini")[2..5],
        ["closed", "1", "0%"]
    );
    let drilled = row(&table, "claude-sonnet", "claude/claude-sonnet-4-5");
    assert_eq!(drilled[2], "open");
    assert!(
        drilled[8].ends_with('s') && drilled[8] != "-",
        "{drilled:?}"
    );
    // Routes in policy order.
    let first_claude = table.find("claude-sonnet ").unwrap();
    assert!(table.find("gpt-4o ").unwrap() < first_claude);
}

/// Reads frames until the next `primary/gpt-4o` row and returns its call count.
async fn primary_calls(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> u64 {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a refresh within 10s")
            .unwrap()
            .expect("status still running");
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.get(1) == Some(&"primary/gpt-4o") {
            return cells[3].parse().unwrap();
        }
    }
}

#[tokio::test]
async fn status_watch_refreshes_the_table() {
    let (_primary, _secondary, sidecar) = pair("").await;
    let mut child = Command::new(BIN)
        .args(["status", "--watch", "--interval", "100ms", "--count", "100"])
        .args(["--admin", &sidecar.running.admin_addr.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(primary_calls(&mut lines).await, 0);
    sidecar.chat("gpt-4o").await;
    // Frames taken before the call may still be in the pipe; a later one shows it.
    let mut calls = 0;
    for _ in 0..50 {
        calls = primary_calls(&mut lines).await;
        if calls == 1 {
            break;
        }
    }
    assert_eq!(calls, 1, "the watched table never showed the new call");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn status_without_a_sidecar_says_so_and_exits_69() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args(["status", "--admin", &format!("127.0.0.1:{port}")])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no sidecar answers on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

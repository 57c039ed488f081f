//! `switchyard demo` keeps its screen for the story: the sidecar's log lines go to a file
//! named at the end, and none reaches stdout (or stderr). Runs the whole demo (~35 s).

use std::process::Command;

/// Whether `line` looks like a tracing line in either format.
fn is_log_line(line: &str) -> bool {
    let timestamped = line.len() > 20
        && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && line.as_bytes()[10] == b'T';
    let levelled = [" INFO ", " WARN ", " ERROR ", " DEBUG "]
        .iter()
        .any(|l| line.contains(l));
    timestamped || levelled || line.starts_with("{\"timestamp\"")
}

#[test]
fn demo_logs_go_to_a_file_not_the_screen() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("demo")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let logs: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| is_log_line(l))
        .collect();
    assert!(logs.is_empty(), "log lines on the screen: {logs:#?}");
    assert!(stdout.contains("failures the app saw"), "{stdout}");
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The sidecar's logs of this run: "))
        .unwrap_or_else(|| panic!("the log file is not named:\n{stdout}"));
    let file = std::fs::read_to_string(path).unwrap();
    assert!(file.contains("policy loaded"), "{file}");
    assert!(file.contains("circuit breaker transition"), "{file}");
    assert!(file.lines().all(is_log_line), "{file}");
    std::fs::remove_file(path).unwrap();
}

/// The two figures (each alone, sharing) of a row of the fleet demo's summary.
fn figures(stdout: &str, row: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(row))
        .unwrap_or_else(|| panic!("no {row:?} row:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .rev()
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    (numbers[1], numbers[0])
}

#[test]
fn the_fleet_demo_shows_what_sharing_spares_the_provider() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--pods", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        figures(&stdout, "failures the apps saw"),
        (0, 0),
        "{stdout}"
    );
    let (alone, shared) = figures(&stdout, "429s the primary answered");
    assert!(shared < alone, "{stdout}");
    let (alone, shared) = figures(&stdout, "calls the primary got, healthy");
    // Alone each pod spends its own 60 a minute; together they stay near one 60 (a sync
    // of slack per pod).
    assert!(alone > 100 && shared <= 66, "{stdout}");
}

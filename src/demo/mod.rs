//! `switchyard demo`: two mock providers and a sidecar on free loopback ports, steady
//! traffic from a few app workers, and trouble at the primary part-way (a 30x brown-out,
//! errors, a black hole, then recovery), shown live and summed up at the end.
//! The backup speaks Anthropic's API, so the failover also crosses vendors. The primary
//! has no fixed timeouts: the black hole and the brown-out are found from its own
//! baseline. Runs in ~35 s. On a terminal it shows a full-screen live view (`view.rs`);
//! otherwise, plain lines once a second.

pub mod fleet;
pub mod view;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::app::{self, RunArgs};
use crate::mock::{Faults, MockServer};

const WORKERS: usize = 4;
const PHASES: [(&str, u64); 6] = [
    ("healthy", 5),
    ("primary throttled (429)", 5),
    ("primary is 30x slower", 9),
    ("primary returns 503s", 6),
    ("primary is a black hole", 8),
    ("primary recovered", 6),
];

/// The primary's normal time to answer; the brown-out multiplies it by 30.
const PRIMARY_NORMAL: &str = r#"{"latency": "80ms"}"#;
const PRIMARY_BROWN_OUT: &str = r#"{"latency": "2400ms"}"#;

fn policy(primary: &str, backup: &str, key_file: &std::path::Path) -> String {
    format!(
        r#"
providers:
  - name: primary
    api: openai
    baseUrl: {primary}/v1
    auth: {{apiKey: {{fromFile: {key}}}}}
    timeouts: {{connect: 500ms}}
  - name: backup
    api: anthropic
    baseUrl: {backup}
    auth: {{apiKey: {{fromFile: {key}}}}}
routes:
  - model: gpt-4o
    strategy: failover
    targets:
      - {{provider: primary, model: gpt-4o, price: {{inputPerMTok: 2.5, outputPerMTok: 10}}}}
      - {{provider: backup, model: claude-haiku-4-5, price: {{inputPerMTok: 1, outputPerMTok: 5}}}}
    hedge: {{after: auto, maxRatio: 0.1}}
circuitBreaker:
  window: 5s
  minimumCalls: 4
  consecutiveFailures: 3
  openFor: 2s
  maxOpenFor: 4s
  halfOpenCalls: 2
"#,
        // A JSON string is a YAML string, whatever the temporary directory's name holds.
        key = serde_json::Value::from(key_file.display().to_string()),
    )
}

/// Flags of `switchyard demo`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DemoArgs {
    /// The fleet demo: this many sidecars sharing one provider key, run each alone and
    /// then sharing state through Redis.
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..=16))]
    pub pods: Option<u16>,
    /// The Redis the fleet demo shares through (by default a `redis-server` from PATH,
    /// started on a free loopback port).
    #[arg(long, value_name = "URL", requires = "pods")]
    pub shared_state: Option<String>,
}

/// What the app workers saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    by_primary: AtomicU64,
    by_backup: AtomicU64,
    failed_over: AtomicU64,
    app_errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

/// Where the demo's sidecar logs go: a file in the temporary directory, one per run.
pub fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("switchyard-demo-{}.log", std::process::id()))
}

/// Runs the demo and prints its summary; `log` names the file the sidecar logs to.
pub async fn run(args: DemoArgs, log: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(pods) = args.pods {
        fleet::run(usize::from(pods), args.shared_state).await?;
        log_note(log);
        return Ok(());
    }
    let primary = MockServer::start("primary").await?;
    primary.set_faults(faults(PRIMARY_NORMAL));
    let backup = MockServer::start("backup").await?;
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let policy_path = dir.join("policy.yaml");
    // The mocks take any key; a file (as a mounted Secret would be) keeps the demo from
    // writing the process environment.
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, "sk-demo-not-a-real-key")?;
    std::fs::write(
        &policy_path,
        policy(&primary.url(), &backup.url(), &key_file),
    )?;
    let sidecar = app::start(&RunArgs::loopback(Some(policy_path))).await?;
    let base = format!("http://{}/v1/chat/completions", sidecar.proxy_addr);

    println!("switchyard demo");
    println!(
        "  mock provider 'primary' on {}  (route gpt-4o, first choice)",
        primary.addr()
    );
    println!(
        "  mock provider 'backup'  on {}  (fallback: Anthropic API, claude-haiku-4-5)",
        backup.addr()
    );
    println!(
        "  sidecar proxy on {}, admin on {}",
        sidecar.proxy_addr, sidecar.admin_addr
    );
    println!(
        "  {WORKERS} app workers send OpenAI chat completions (half streamed) the whole time;"
    );
    println!("  when the primary fails, the call is translated to Anthropic's API and back\n");

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(tokio::sync::Notify::new());
    let deadline = Instant::now() + Duration::from_secs(PHASES.iter().map(|p| p.1).sum());
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        workers.push(tokio::spawn(drive(
            base.clone(),
            worker % 2 == 0,
            Arc::clone(&tally),
            deadline,
            Duration::from_millis(20),
        )));
    }

    let live = std::io::stdout().is_terminal();
    let mut screen = if live { Some(Screen::enter()?) } else { None };
    let mut view = view::View::default();
    let mut counted = (0, 0);
    let mut transitions: Vec<String> = Vec::new();
    let mut last_state = String::from("closed");
    let started = Instant::now();
    for (index, (phase, seconds)) in PHASES.iter().enumerate() {
        match index {
            1 => primary.set_faults(faults(
                r#"{"latency": "80ms", "errorRate": 1.0, "errorStatus": 429, "retryAfter": 2}"#,
            )),
            2 => primary.set_faults(faults(PRIMARY_BROWN_OUT)),
            3 => primary.set_faults(faults(r#"{"errorRate": 1.0, "errorStatus": 503}"#)),
            4 => primary.set_faults(faults(r#"{"blackhole": true}"#)),
            5 => primary.set_faults(faults(PRIMARY_NORMAL)),
            _ => {}
        }
        if !live {
            println!("[{:>5.1}s] phase: {phase}", started.elapsed().as_secs_f64());
        }
        let phase_end = Instant::now() + Duration::from_secs(*seconds);
        let tick = if live {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        while Instant::now() < phase_end {
            tokio::time::sleep(tick).await;
            let state = breaker_state(&sidecar.shared);
            if state != last_state {
                transitions.push(format!(
                    "{:>5.1}s  {last_state} -> {state}",
                    started.elapsed().as_secs_f64()
                ));
                last_state = state.clone();
            }
            match &mut screen {
                Some(screen) => {
                    let answered = (
                        tally.by_primary.load(Ordering::Relaxed),
                        tally.by_backup.load(Ordering::Relaxed),
                    );
                    view.tick(
                        answered.0 - counted.0,
                        answered.1 - counted.1,
                        static_state(&state),
                    );
                    counted = answered;
                    view.phase = (*phase).to_owned();
                    view.elapsed = started.elapsed().as_secs_f64();
                    view.sent = tally.sent.load(Ordering::Relaxed);
                    view.failovers = tally.failed_over.load(Ordering::Relaxed);
                    view.hedges = hedges(&sidecar.shared.metrics.encode());
                    view.app_errors = tally.app_errors.load(Ordering::Relaxed);
                    view.transitions.clone_from(&transitions);
                    screen.terminal.draw(|f| view::draw(f, &view))?;
                }
                None => println!(
                    "  {}  hedges {}",
                    status_line(&tally, &state, started.elapsed(), phase),
                    hedges(&sidecar.shared.metrics.encode()),
                ),
            }
        }
    }
    // Back to the normal screen for the summary.
    drop(screen);
    stop.notify_waiters();
    for worker in workers {
        worker.await?;
    }
    summary(&tally, &transitions, &sidecar.shared.metrics.encode());
    log_note(log);
    sidecar.shutdown();
    sidecar.wait().await;
    primary.shutdown().await;
    backup.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The alternate screen the live view draws on, left (and the cursor shown) when dropped,
/// on an error too.
struct Screen {
    terminal: ratatui::Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        ratatui::crossterm::execute!(
            std::io::stdout(),
            ratatui::crossterm::terminal::EnterAlternateScreen,
            ratatui::crossterm::cursor::Hide
        )?;
        let terminal =
            ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = ratatui::crossterm::execute!(
            std::io::stdout(),
            ratatui::crossterm::terminal::LeaveAlternateScreen,
            ratatui::crossterm::cursor::Show
        );
        let _ = std::io::stdout().flush();
    }
}

/// A breaker state name as the view's timeline keeps it.
fn static_state(state: &str) -> &'static str {
    match state {
        "open" => "open",
        "half-open" => "half-open",
        _ => "closed",
    }
}

fn faults(json: &str) -> Faults {
    serde_json::from_str(json).expect("the demo's fault sets are valid")
}

fn breaker_state(shared: &crate::shared::Shared) -> String {
    shared
        .policy()
        .and_then(|p| {
            p.target_states()
                .into_iter()
                .find(|s| s.key.provider == "primary")
        })
        .map_or_else(|| "unknown".to_owned(), |s| s.state().as_str().to_owned())
}

/// Hedges that answered so far, from the sidecar's own metrics.
fn hedges(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_hedges_total{") && l.contains(r#"outcome="won""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn status_line(tally: &Tally, state: &str, elapsed: Duration, phase: &str) -> String {
    format!(
        "{:>5.1}s  {phase:<24} served {:>5}  primary {:>5}  backup {:>5}  failovers {:>4}  app errors {}  primary breaker: {state}",
        elapsed.as_secs_f64(),
        tally.sent.load(Ordering::Relaxed),
        tally.by_primary.load(Ordering::Relaxed),
        tally.by_backup.load(Ordering::Relaxed),
        tally.failed_over.load(Ordering::Relaxed),
        tally.app_errors.load(Ordering::Relaxed),
    )
}

/// One app worker: sends requests until the deadline, `pause` apart.
async fn drive(url: String, stream: bool, tally: Arc<Tally>, deadline: Instant, pause: Duration) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from(format!(
        r#"{{"model":"gpt-4o","stream":{stream},"messages":[{{"role":"user","content":"How are you?"}}]}}"#
    ));
    while Instant::now() < deadline {
        let request = http::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("static request parts are valid");
        let started = Instant::now();
        let ok = match client.request(request).await {
            Ok(response) => {
                let status = response.status();
                let provider = response.headers().get("x-switchyard-provider").cloned();
                let attempts = response.headers().get("x-switchyard-attempts").cloned();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let complete = !stream || body.ends_with(b"data: [DONE]\n\n");
                if status.is_success() && complete {
                    match provider.as_ref().and_then(|p| p.to_str().ok()) {
                        Some("primary") => tally.by_primary.fetch_add(1, Ordering::Relaxed),
                        _ => tally.by_backup.fetch_add(1, Ordering::Relaxed),
                    };
                    if attempts.is_some_and(|a| a != "1") {
                        tally.failed_over.fetch_add(1, Ordering::Relaxed);
                    }
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        };
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if !ok {
            tally.app_errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = started.elapsed().as_micros() as u64;
        tally
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(micros);
        tokio::time::sleep(pause).await;
    }
}

fn summary(tally: &Tally, transitions: &[String], metrics: &str) {
    let mut latencies = tally
        .latencies_us
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let errors = tally.app_errors.load(Ordering::Relaxed);
    println!("\nsummary");
    println!(
        "  requests the app sent      {}",
        tally.sent.load(Ordering::Relaxed)
    );
    println!(
        "  answered by primary        {}",
        tally.by_primary.load(Ordering::Relaxed)
    );
    println!(
        "  answered by backup         {}",
        tally.by_backup.load(Ordering::Relaxed)
    );
    println!(
        "  answered after a failover  {}",
        tally.failed_over.load(Ordering::Relaxed)
    );
    println!("  answered by a hedge        {}", hedges(metrics));
    println!("  failures the app saw       {errors}");
    println!(
        "  latency p50 / p99          {:.1} ms / {:.1} ms",
        pct(0.5),
        pct(0.99)
    );
    println!("  primary breaker transitions:");
    for t in transitions {
        println!("    {t}");
    }
    let cost: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_cost_usd_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!("  cost of the answers         ${cost:.6} (from usage and target prices)");
    let troubled: u64 = PHASES[1..PHASES.len() - 1].iter().map(|p| p.1).sum();
    if errors == 0 {
        println!(
            "\nThe primary throttled, crawled, failed and went silent for {troubled} s; the app never saw a failure."
        );
    } else {
        println!("\n{errors} request(s) failed as the app saw them.");
    }
    println!("Try it against your own app: cargo run --release -- run --policy-file <policy.yaml>");
}

fn log_note(log: Option<&std::path::Path>) {
    if let Some(path) = log.filter(|p| p.exists()) {
        println!("The sidecar's logs of this run: {}", path.display());
    }
}

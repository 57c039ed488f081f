//! The hedging race (DESIGN §4): a first attempt runs alone until the hedge delay; then a
//! second may join, and the first of the two to win ends the race. The loser is dropped
//! on the spot, which closes its upstream connection so the provider stops generating.
//!
//! Generic over what an attempt is, so the failover loop keeps its bookkeeping and this
//! file keeps only the timing.

use std::future::Future;

use tokio::time::{sleep_until, Instant};

/// Which attempt of a race an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The attempt that started the race.
    First,
    /// The hedge.
    Hedge,
}

/// Outcomes in the order they finished; the last one won if it satisfies `wins`.
pub struct Raced<T> {
    /// Finished attempts, in order.
    pub finished: Vec<(Leg, T)>,
    /// Whether a hedge was started.
    pub hedged: bool,
}

/// Runs `first`; if it is still running at `hedge_at`, `start_hedge` may start a second
/// attempt. Ends at the first outcome for which `wins` holds, or when both are done.
pub async fn race<T, F>(
    first: F,
    hedge_at: Option<Instant>,
    start_hedge: impl FnOnce() -> Option<F>,
    wins: impl Fn(&T) -> bool,
) -> Raced<T>
where
    F: Future<Output = T>,
{
    tokio::pin!(first);
    let alone = |out| Raced {
        finished: vec![(Leg::First, out)],
        hedged: false,
    };
    let Some(at) = hedge_at else {
        return alone(first.await);
    };
    tokio::select! {
        biased;
        out = &mut first => return alone(out),
        () = sleep_until(at) => {}
    }
    let Some(second) = start_hedge() else {
        return alone(first.await);
    };
    tokio::pin!(second);
    let mut finished = Vec::with_capacity(2);
    let (mut first_done, mut second_done) = (false, false);
    while !(first_done && second_done) {
        let (leg, out) = tokio::select! {
            out = &mut first, if !first_done => {
                first_done = true;
                (Leg::First, out)
            }
            out = &mut second, if !second_done => {
                second_done = true;
                (Leg::Hedge, out)
            }
        };
        let won = wins(&out);
        finished.push((leg, out));
        if won {
            break;
        }
    }
    Raced {
        finished,
        hedged: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn after(ms: u64, ok: bool) -> (u64, bool) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        (ms, ok)
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_attempt_runs_alone() {
        let at = Instant::now() + Duration::from_millis(100);
        let raced = race(after(50, true), Some(at), || Some(after(1, true)), |o| o.1).await;
        assert!(!raced.hedged);
        assert_eq!(raced.finished.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_to_win_ends_the_race() {
        let start = Instant::now();
        let at = start + Duration::from_millis(100);
        let raced = race(
            after(1_000, true),
            Some(at),
            || Some(after(50, true)),
            |o| o.1,
        )
        .await;
        assert!(raced.hedged);
        assert_eq!(raced.finished.len(), 1);
        assert_eq!(raced.finished[0].0, Leg::Hedge);
        assert_eq!(start.elapsed(), Duration::from_millis(150));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_leg_leaves_the_other_running() {
        let at = Instant::now() + Duration::from_millis(100);
        let raced = race(
            after(200, false),
            Some(at),
            || Some(after(500, true)),
            |o| o.1,
        )
        .await;
        let legs: Vec<Leg> = raced.finished.iter().map(|(l, _)| *l).collect();
        assert_eq!(legs, [Leg::First, Leg::Hedge]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_hedge_when_none_may_start() {
        let at = Instant::now() + Duration::from_millis(100);
        let raced = race(after(300, true), Some(at), || None, |o| o.1).await;
        assert!(!raced.hedged);
        assert_eq!(raced.finished[0].1, (300, true));
    }
}

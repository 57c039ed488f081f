//! Orders a route's targets for one request by its strategy. Exclusion (open breakers,
//! cooldowns, shedding) happens later, at admission, so that the order here is also the
//! order of the last-chance attempt's candidates.

use tokio::time::Instant;

use crate::policy::spec::Strategy;
use crate::routing::{Route, Target};

/// Indices into `route.targets` in the order to try them.
pub fn order(route: &Route, strategy: Strategy, now: Instant) -> Vec<usize> {
    let targets = &route.targets;
    let mut order: Vec<usize> = (0..targets.len()).collect();
    match strategy {
        Strategy::Failover => {}
        Strategy::Weighted => {
            // Efraimidis–Spirakis: a weighted random permutation in one sort.
            let mut keyed: Vec<(f64, usize)> = order
                .iter()
                .map(|&i| {
                    (
                        fastrand::f64().powf(1.0 / f64::from(targets[i].weight.max(1))),
                        i,
                    )
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            order = keyed.into_iter().map(|(_, i)| i).collect();
        }
        Strategy::Latency => order.sort_by_key(|&i| latency_us(&targets[i])),
        Strategy::Cost => order.sort_by(|&a, &b| price(&targets[a]).total_cmp(&price(&targets[b]))),
        Strategy::Balanced => {
            let max_latency = targets.iter().map(latency_us).max().unwrap_or(0).max(1) as f64;
            let max_price = targets
                .iter()
                .map(price)
                .filter(|p| p.is_finite())
                .fold(0.0, f64::max);
            let score = |t: &Target| {
                let cost = match price(t) {
                    p if p.is_finite() && max_price > 0.0 => p / max_price,
                    p if p.is_finite() => 0.0,
                    _ => 1.0,
                };
                latency_us(t) as f64 / max_latency + cost
            };
            order.sort_by(|&a, &b| score(&targets[a]).total_cmp(&score(&targets[b])));
        }
        Strategy::Availability => order.sort_by(|&a, &b| {
            targets[a]
                .state
                .failure_rate(now)
                .total_cmp(&targets[b].state.failure_rate(now))
        }),
    }
    order
}

/// Unmeasured targets sort first so they get measured.
fn latency_us(target: &Target) -> u64 {
    target
        .state
        .ttfb_estimate()
        .map_or(0, |d| d.as_micros() as u64)
}

/// Blended USD per million tokens; unpriced targets sort last.
fn price(target: &Target) -> f64 {
    target.price.as_ref().map_or(f64::INFINITY, |p| {
        (p.input_per_mtok + p.output_per_mtok) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::policy::decode_and_validate;
    use crate::routing::{CompileContext, Policy};
    use crate::target::Registry;
    use crate::upstream::Upstreams;

    fn policy(targets: &str) -> Policy {
        let text = format!(
            "providers:\n  - {{name: a, api: openai, baseUrl: 'http://127.0.0.1:1/v1', auth: {{passthrough: true}}}}\n\
             routes:\n  - model: m\n    targets:\n{targets}"
        );
        let spec = decode_and_validate(&text).expect("valid test policy");
        let (registry, upstreams, metrics) =
            (Registry::default(), Upstreams::default(), Metrics::new());
        Policy::compile(
            spec,
            1,
            &CompileContext {
                registry: &registry,
                upstreams: &upstreams,
                metrics: &metrics,
                google: &crate::provider::google::GoogleCredentials::new(Default::default()),
                aws: &crate::aws::Chain::default(),
            },
        )
    }

    #[tokio::test]
    async fn cost_puts_the_cheapest_first_and_unpriced_last() {
        let p = policy(
            "      - {provider: a, model: x}\n      - {provider: a, model: y, price: {inputPerMTok: 5, outputPerMTok: 15}}\n      - {provider: a, model: z, price: {inputPerMTok: 0.1, outputPerMTok: 0.4}}\n",
        );
        assert_eq!(
            order(&p.routes[0], Strategy::Cost, Instant::now()),
            [2, 1, 0]
        );
        assert_eq!(
            order(&p.routes[0], Strategy::Failover, Instant::now()),
            [0, 1, 2]
        );
    }

    #[tokio::test]
    async fn weighted_follows_the_weights() {
        let p = policy("      - {provider: a, model: x, weight: 9}\n      - {provider: a, model: y, weight: 1}\n");
        let firsts = (0..2000)
            .filter(|_| order(&p.routes[0], Strategy::Weighted, Instant::now())[0] == 0)
            .count();
        assert!(
            (1650..1950).contains(&firsts),
            "{firsts} of 2000 should be about 1800"
        );
    }
}

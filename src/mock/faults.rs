//! The fault set: what the mock does wrong, set from flags, `POST /_mock/faults` or the
//! Rust handle.
//!
//! Invariant: one `Faults` value is the whole fault set (a new one replaces the old one,
//! fields left out take their defaults), and the same camelCase names work in JSON and,
//! in kebab-case, as flags.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default status of an injected error: what providers answer when overloaded.
const DEFAULT_ERROR_STATUS: u16 = 503;
/// Default number of content deltas in a stream.
const DEFAULT_CHUNKS: u32 = 4;

/// The faults to inject into provider calls (the `/_mock/*` control API is never affected).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Share of calls answered with an error, 0..=1, spread deterministically: well-formed call
    /// `n` (counted from 0 at the last fault change) fails when floor((n+1)*rate) > floor(n*rate),
    /// so 1.0 fails every call and 0.5 every second one.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status of an injected error.
    #[arg(long, default_value_t = DEFAULT_ERROR_STATUS)]
    pub error_status: u16,
    /// `retry-after` seconds sent with an injected error (meant for 429).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Raw body of an injected error instead of the provider-shaped default, e.g. an
    /// OpenAI `insufficient_quota` error.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_body: Option<String>,
    /// Extra headers of an injected error (flag: `--error-header NAME=VALUE`, repeatable;
    /// JSON: an object), e.g. `retry-after-ms` or `anthropic-ratelimit-requests-reset`.
    #[arg(long = "error-header", value_name = "NAME=VALUE", value_parser = parse_header_pair)]
    #[serde(with = "header_pairs", skip_serializing_if = "Vec::is_empty")]
    pub error_headers: Vec<(String, String)>,
    /// Delay before the response headers.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub latency: Option<Duration>,
    /// Delay after the headers before the first body byte.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<Duration>,
    /// Delay between the content deltas of a stream.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub chunk_interval: Option<Duration>,
    /// Number of content deltas in a stream (at least 1).
    #[arg(long, default_value_t = DEFAULT_CHUNKS, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunks: u32,
    /// Cut the connection after this many content deltas, without ending the stream
    /// (a non-streaming body is cut halfway).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_after_chunks: Option<u32>,
    /// Send an in-band error event after this many content deltas, then end the stream.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_event_after_chunks: Option<u32>,
    /// Read each request and never answer it.
    #[arg(long)]
    pub blackhole: bool,
    /// Seconds of reasoning before the first text (a reasoning model): a stream sends
    /// them as `thinkAs` says; a non-streamed answer is that much later.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub think: Option<Duration>,
    /// How a stream shows its thinking.
    #[arg(long, value_enum, default_value_t = ThinkAs::Reasoning)]
    pub think_as: ThinkAs,
    /// Output tokens of an answer (one content delta each); overrides `chunks`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u32>,
    /// Generation speed: a stream's deltas come this fast, and a non-streamed answer
    /// waits for all its tokens.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    /// Share of calls, 0..=1, that take `slowTailLatency` longer before their headers,
    /// spread like `errorRate` (a slow tail: most calls fast, a few much slower).
    #[arg(long, default_value_t = 0.0)]
    pub slow_tail_rate: f64,
    /// The extra delay of a slow-tail call.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub slow_tail_latency: Option<Duration>,
    /// Refuse connections for this long (the listener closes, open connections are cut,
    /// then the same port is bound again). A one-shot action, not kept in the fault set:
    /// while down the control API is unreachable too.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub down_for: Option<Duration>,
    /// `ACCESS_KEY_ID:SECRET`: Bedrock calls must be SigV4-signed with this key (any
    /// region, service `bedrock`) or are refused 403 as AWS refuses them; a Bedrock API
    /// key (`Authorization: Bearer`) is accepted as it is. Unchecked when unset.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigv4_key: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_status: DEFAULT_ERROR_STATUS,
            retry_after: None,
            error_body: None,
            error_headers: Vec::new(),
            latency: None,
            first_byte: None,
            chunk_interval: None,
            chunks: DEFAULT_CHUNKS,
            drop_after_chunks: None,
            error_event_after_chunks: None,
            blackhole: false,
            think: None,
            think_as: ThinkAs::Reasoning,
            tokens: None,
            tokens_per_second: None,
            slow_tail_rate: 0.0,
            slow_tail_latency: None,
            down_for: None,
            sigv4_key: None,
        }
    }
}

/// How a stream shows a reasoning model's thinking (the `think` fault).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "camelCase")]
pub enum ThinkAs {
    /// Reasoning deltas, one a second: OpenAI-compatible `reasoning_content`, Anthropic
    /// `thinking_delta`s in a thinking block.
    #[default]
    Reasoning,
    /// Keep-alives only, one a second: Anthropic `ping` events, SSE comments for OpenAI.
    Pings,
    /// Nothing at all until the text (OpenAI reasoning models over Chat Completions).
    Silence,
}

/// Why a fault set was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultsError {
    /// `errorRate` outside 0..=1.
    #[error("errorRate must be within 0..=1, got {0}")]
    ErrorRate(f64),
    /// `errorStatus` not an HTTP error status.
    #[error("errorStatus must be within 400..=599, got {0}")]
    ErrorStatus(u16),
    /// `slowTailRate` outside 0..=1.
    #[error("slowTailRate must be within 0..=1, got {0}")]
    SlowTailRate(f64),
    /// `tokensPerSecond` not a positive number.
    #[error("tokensPerSecond must be a positive number")]
    TokensPerSecond,
    /// `chunks` of zero: a reply needs at least one delta.
    #[error("chunks must be at least 1")]
    Chunks,
    /// An `errorHeaders` entry that is not a valid header.
    #[error("errorHeaders: invalid header {0:?}")]
    Header(String),
    /// `sigv4Key` without its `:` (the secret is never echoed).
    #[error("sigv4Key must be ACCESS_KEY_ID:SECRET")]
    Sigv4Key,
}

impl Faults {
    /// Checks the ranges serde and clap cannot express, so a bad fault set is refused
    /// up front instead of misbehaving per call.
    pub fn validate(&self) -> Result<(), FaultsError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(FaultsError::ErrorRate(self.error_rate));
        }
        if !(0.0..=1.0).contains(&self.slow_tail_rate) {
            return Err(FaultsError::SlowTailRate(self.slow_tail_rate));
        }
        if self
            .tokens_per_second
            .is_some_and(|t| !(t > 0.0 && t.is_finite()))
        {
            return Err(FaultsError::TokensPerSecond);
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(FaultsError::ErrorStatus(self.error_status));
        }
        if self.chunks == 0 {
            return Err(FaultsError::Chunks);
        }
        if self.sigv4_key.as_ref().is_some_and(|k| {
            !k.split_once(':')
                .is_some_and(|(id, s)| !id.is_empty() && !s.is_empty())
        }) {
            return Err(FaultsError::Sigv4Key);
        }
        for (name, value) in &self.error_headers {
            let valid = http::HeaderName::try_from(name.as_str()).is_ok()
                && http::HeaderValue::try_from(value.as_str()).is_ok();
            if !valid {
                return Err(FaultsError::Header(name.clone()));
            }
        }
        Ok(())
    }

    /// Whether call number `n` (0-based, since the fault set was installed) gets an
    /// injected error: a counter-based pattern, so tests see the same calls fail every run.
    pub fn fails_call(&self, n: u64) -> bool {
        spread(self.error_rate, n)
    }

    /// The extra delay before call `n`'s headers when it falls in the slow tail.
    pub fn slow_tail(&self, n: u64) -> Option<Duration> {
        self.slow_tail_latency
            .filter(|_| spread(self.slow_tail_rate, n))
    }

    /// Content deltas (output tokens) of an answer.
    pub fn deltas(&self) -> usize {
        self.tokens.unwrap_or(self.chunks).max(1) as usize
    }

    /// The pause between content deltas: `chunkInterval`, or the generation speed.
    pub fn delta_interval(&self) -> Option<Duration> {
        self.chunk_interval.or_else(|| {
            self.tokens_per_second
                .map(|tps| Duration::from_secs_f64(1.0 / tps))
        })
    }

    /// How long a non-streamed answer takes to generate: its thinking and its tokens.
    pub fn generation_time(&self) -> Option<Duration> {
        let tokens = self
            .tokens_per_second
            .map(|tps| Duration::from_secs_f64(self.deltas() as f64 / tps));
        match (self.think, tokens) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or_default() + b.unwrap_or_default()),
        }
    }

    /// Thinking events of a stream: one a second of `think` (at least one), none when
    /// the model thinks in silence.
    pub fn think_events(&self) -> usize {
        match (self.think, self.think_as) {
            (None, _) | (Some(_), ThinkAs::Silence) => 0,
            (Some(think), _) => (think.as_secs_f64().ceil() as usize).max(1),
        }
    }
}

/// Whether call `n` is among a `rate` share of calls spread evenly: a counter-based
/// pattern, so tests see the same calls picked every run.
fn spread(rate: f64, n: u64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    // Precision: u64 → f64 is exact up to 2^53 calls, far beyond any test or bench.
    ((n + 1) as f64 * rate).floor() > (n as f64 * rate).floor()
}

fn parse_header_pair(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

/// `Option<Duration>` as a humantime string ("250ms", "2s").
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Header pairs as a JSON object, keeping the flag form a plain repeatable list.
mod header_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_pattern_is_counter_based() {
        let half = Faults {
            error_rate: 0.5,
            ..Faults::default()
        };
        let pattern: Vec<bool> = (0..6).map(|n| half.fails_call(n)).collect();
        assert_eq!(pattern, [false, true, false, true, false, true]);
        let all = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..10).all(|n| all.fails_call(n)));
        assert!((0..10).all(|n| !Faults::default().fails_call(n)));
        let tenth = Faults {
            error_rate: 0.1,
            ..Faults::default()
        };
        assert_eq!((0..100).filter(|&n| tenth.fails_call(n)).count(), 10);
    }

    #[test]
    fn json_uses_camel_case_durations_and_defaults() {
        let f: Faults = serde_json::from_str(
            r#"{"errorRate":0.5,"latency":"250ms","errorHeaders":{"retry-after-ms":"1500"},"dropAfterChunks":2}"#,
        )
        .expect("valid faults");
        assert_eq!(f.latency, Some(Duration::from_millis(250)));
        assert_eq!(f.error_status, 503);
        assert_eq!(f.chunks, 4);
        assert_eq!(f.drop_after_chunks, Some(2));
        assert_eq!(f.error_headers, [("retry-after-ms".into(), "1500".into())]);
        let back: Faults =
            serde_json::from_str(&serde_json::to_string(&f).expect("serialises")).expect("parses");
        assert_eq!(back, f);
    }

    #[test]
    fn unknown_fields_and_bad_ranges_are_refused() {
        assert!(serde_json::from_str::<Faults>(r#"{"errorRat":1}"#).is_err());
        assert!(serde_json::from_str::<Faults>(r#"{"latency":"soon"}"#).is_err());
        let bad = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert_eq!(bad.validate(), Err(FaultsError::ErrorRate(1.5)));
        let bad = Faults {
            error_status: 200,
            ..Faults::default()
        };
        assert_eq!(bad.validate(), Err(FaultsError::ErrorStatus(200)));
        let bad = Faults {
            error_headers: vec![("bad header".into(), "x".into())],
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn flags_parse_in_kebab_case() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            faults: Faults,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "mock",
            "--error-rate",
            "0.5",
            "--error-status",
            "429",
            "--retry-after",
            "3",
            "--error-header",
            "retry-after-ms=3000",
            "--first-byte",
            "1s",
            "--chunks",
            "8",
        ])
        .expect("flags parse");
        assert_eq!(cli.faults.error_status, 429);
        assert_eq!(cli.faults.retry_after, Some(3));
        assert_eq!(cli.faults.first_byte, Some(Duration::from_secs(1)));
        assert_eq!(cli.faults.chunks, 8);
        assert_eq!(
            cli.faults.error_headers,
            [("retry-after-ms".into(), "3000".into())]
        );
    }
}

//! Redis key names of the fleet-shared state. A provider key is named by the policy's
//! provider identity: its name, and a hash of its base URL and API key (never the key).

use ring::digest::{digest, SHA256};

use crate::routing::{Auth, Target};

/// Prefix of every key and channel, versioned so a changed layout never misreads an old one.
const PREFIX: &str = "switchyard:v1";

/// The channel pods publish changes on.
pub fn channel() -> String {
    format!("{PREFIX}:events")
}

/// The sorted set of pods seen (member: pod id, score: last seen, unix ms).
pub fn pods() -> String {
    format!("{PREFIX}:pods")
}

/// The identity of a target's provider key and model: `name:hash:model`.
pub fn target(target: &Target) -> String {
    let provider = &target.provider;
    let mut material = provider.base_url.as_bytes().to_vec();
    material.push(b'\n');
    if let Auth::Key(key) = &provider.auth {
        material.extend_from_slice(key.as_bytes());
    }
    let hash = digest(&SHA256, &material);
    let short: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}:{short}:{}", provider.name, target.state.key.model)
}

/// "Blocked until" (unix ms) of a target's provider key and model after a 429.
pub fn cooldown(target: &str) -> String {
    format!("{PREFIX}:cooldown:{target}")
}

/// The pods that report a target's breaker open (field: pod id, value: unix ms).
pub fn open(target: &str) -> String {
    format!("{PREFIX}:open:{target}")
}

/// The pods' usage of a target's budget in one unix minute (fields `{pod}:requests` and
/// `{pod}:tokens`, each pod's own absolute count, so a repeated write is harmless).
pub fn usage(target: &str, minute: u64) -> String {
    format!("{PREFIX}:usage:{target}:{minute}")
}

//! Gemini's thought signatures across the hub. Gemini puts an opaque `thoughtSignature`
//! on the function calls of a thinking model and (Gemini 3 on) refuses a conversation
//! whose earlier calls come back without it. Chat and Anthropic tool calls have no place
//! for it, and their ids are length-limited (OpenAI: 40 characters), so the id cannot carry
//! it: the sidecar issues a short id per call and remembers the signature under it, with
//! the target that issued it.
//!
//! Invariants: a signature only ever goes back to the target (provider and model) that
//! issued it; a call that reaches another Gemini 3 model (after a failover, or from
//! another vendor) carries Google's documented `skip_thought_signature_validator` instead;
//! memory is bounded (the oldest signatures go first). The memory is per process, which is
//! per pod: the app and its sidecar share it.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Signatures remembered at most.
const CAPACITY: usize = 8192;

/// What Google documents for a call whose signature is not this model's to check.
pub const SKIP_VALIDATOR: &str = "skip_thought_signature_validator";

#[derive(Default)]
struct Signatures {
    by_id: HashMap<String, (u64, String)>,
    order: VecDeque<String>,
}

static SIGNATURES: LazyLock<Mutex<Signatures>> = LazyLock::new(Mutex::default);

/// A stable number for a target (provider name and model): signatures are keyed by it.
pub fn target_key(provider: &str, model: &str) -> u64 {
    let mut hash = Fnv::default();
    hash.write(provider.as_bytes());
    hash.write(&[0]);
    hash.write(model.as_bytes());
    hash.0
}

/// The id the sidecar gives the `index`th call of a response: the same for the same
/// response (stream or not), short enough for every vendor's id limits.
pub(super) fn call_id(response_id: &str, index: usize, name: &str) -> String {
    let mut hash = Fnv::default();
    hash.write(response_id.as_bytes());
    hash.write(&index.to_le_bytes());
    hash.write(name.as_bytes());
    format!("call_{:016x}", hash.0)
}

/// Remembers the signature `target` put on call `id`.
pub(super) fn remember(id: &str, target: u64, signature: &str) {
    let mut signatures = SIGNATURES.lock().unwrap_or_else(PoisonError::into_inner);
    if signatures
        .by_id
        .insert(id.to_owned(), (target, signature.to_owned()))
        .is_none()
    {
        signatures.order.push_back(id.to_owned());
    }
    while signatures.order.len() > CAPACITY {
        if let Some(oldest) = signatures.order.pop_front() {
            signatures.by_id.remove(&oldest);
        }
    }
}

/// The signature to send with call `id` to `target` (running `model`): its own, else
/// the validator skip for models that insist on one, else none.
pub(super) fn signature_for(id: &str, target: u64, model: &str) -> Option<String> {
    let signatures = SIGNATURES.lock().unwrap_or_else(PoisonError::into_inner);
    match signatures.by_id.get(id) {
        Some((issuer, signature)) if *issuer == target => Some(signature.clone()),
        _ if requires_signatures(model) => Some(SKIP_VALIDATOR.to_owned()),
        _ => None,
    }
}

/// Gemini 3 and later refuse function calls without a signature; earlier models do not.
fn requires_signatures(model: &str) -> bool {
    let Some(at) = model.find("gemini-") else {
        return false;
    };
    let major: String = model[at + "gemini-".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    major.parse::<u32>().is_ok_and(|m| m >= 3)
}

/// FNV-1a, 64 bits: stable across processes and releases, unlike `DefaultHasher`.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_goes_back_only_to_its_target() {
        let ours = target_key("gemini", "gemini-3-pro");
        let other = target_key("vertex", "gemini-3-pro");
        let id = call_id("resp-sig-test", 0, "f");
        assert!(id.len() <= 40 && id.starts_with("call_"), "{id}");
        assert_eq!(id, call_id("resp-sig-test", 0, "f"));
        remember(&id, ours, "sig-A");
        assert_eq!(
            signature_for(&id, ours, "gemini-3-pro").as_deref(),
            Some("sig-A")
        );
        assert_eq!(
            signature_for(&id, other, "gemini-3-pro").as_deref(),
            Some(SKIP_VALIDATOR)
        );
        assert_eq!(signature_for(&id, other, "gemini-2.5-flash"), None);
        assert_eq!(signature_for("call_unknown", ours, "claude-x"), None);
    }

    #[test]
    fn gemini_three_and_later_insist() {
        assert!(requires_signatures("gemini-3-pro-preview"));
        assert!(requires_signatures(
            "publishers/google/models/gemini-3.1-flash"
        ));
        assert!(!requires_signatures("gemini-2.5-pro"));
        assert!(!requires_signatures("my-model"));
    }
}

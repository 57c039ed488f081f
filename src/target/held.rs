//! The stored Responses a target created (`resp_…` ids), so a call that continues one
//! (`previous_response_id`) goes to the target that holds its context rather than to
//! another native target, which would only answer "not found". Per target, so the
//! lookup takes no lock shared across targets; bounded, the oldest ids forgotten first
//! (a conversation continues within minutes, and the provider answers for what is gone).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// How many ids a target remembers.
pub const CAPACITY: usize = 4096;

/// The ids of responses one target created, newest last.
#[derive(Debug, Default)]
pub struct HeldResponses {
    inner: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    order: VecDeque<Box<str>>,
    ids: HashSet<Box<str>>,
}

impl HeldResponses {
    fn lock(&self) -> MutexGuard<'_, Held> {
        // Plain data: a panic while holding the lock cannot leave it inconsistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that this target created response `id`.
    pub fn remember(&self, id: &str) {
        let mut held = self.lock();
        if held.ids.contains(id) {
            return;
        }
        if held.order.len() >= CAPACITY {
            if let Some(oldest) = held.order.pop_front() {
                held.ids.remove(&oldest);
            }
        }
        held.order.push_back(id.into());
        held.ids.insert(id.into());
    }

    /// Whether this target created response `id` (and it is still remembered).
    pub fn holds(&self, id: &str) -> bool {
        self.lock().ids.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn remembers_and_forgets_the_oldest() {
        let held = HeldResponses::default();
        for i in 0..=CAPACITY {
            held.remember(&format!("resp_{i}"));
        }
        assert!(!held.holds("resp_0"), "the oldest id is forgotten first");
        assert!(held.holds("resp_1"));
        assert!(held.holds(&format!("resp_{CAPACITY}")));
        assert!(!held.holds("resp_unknown"));
    }

    proptest! {
        #[test]
        fn never_holds_more_than_capacity_and_always_the_newest(
            ids in proptest::collection::vec(0u16..6000, 1..6000)
        ) {
            let held = HeldResponses::default();
            for id in &ids {
                held.remember(&id.to_string());
            }
            let inner = held.lock();
            prop_assert!(inner.order.len() <= CAPACITY);
            prop_assert_eq!(inner.order.len(), inner.ids.len());
            drop(inner);
            prop_assert!(held.holds(&ids.last().unwrap().to_string()));
        }
    }
}

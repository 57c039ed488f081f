//! Provider keys and TLS files kept in files (mounted Secrets) follow rotation: every
//! interval the running policy's key and `tls` files are read again, and when one changed the policy is
//! recompiled from its own spec. Invariant: a refresh never replaces a policy the source
//! installed meanwhile, and breakers, cooldowns and pools carry over as on any reload.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::SourceTask;
use crate::shared::Shared;

/// Re-reads the key files every `every` until the returned task is dropped.
pub fn spawn(shared: Arc<Shared>, every: Duration) -> SourceTask {
    SourceTask::new(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(policy) = shared.policy() else {
                continue;
            };
            let checked = Arc::clone(&policy);
            let Ok(stale) = tokio::task::spawn_blocking(move || checked.stale_key_files()).await
            else {
                continue;
            };
            if stale.is_empty() {
                continue;
            }
            if let Some(generation) = shared.recompile(&policy) {
                tracing::info!(providers = ?stale, generation, "provider key or TLS files changed; policy recompiled with the new contents");
            }
        }
    }))
}

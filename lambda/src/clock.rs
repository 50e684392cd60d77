//! The `Clock` port on a normal OS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct SystemClock;

#[async_trait::async_trait]
impl tollgate_core::ports::Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

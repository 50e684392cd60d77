//! The `Clock` port on Workers: `Date.now()` (frozen during CPU work, by design of the
//! platform) and `setTimeout`-backed delays.

use std::time::Duration;

pub struct WorkerClock;

#[async_trait::async_trait(?Send)]
impl tollgate_core::ports::Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    async fn sleep(&self, ms: u64) {
        worker::Delay::from(Duration::from_millis(ms)).await;
    }
}

//! When the local server stops, and how long it may take: the stop signal (SIGTERM or
//! Ctrl-C) and the two bounds of a graceful shutdown.
//!
//! Orchestrators give a process a fixed time between SIGTERM and SIGKILL (Kubernetes 30 s,
//! ECS 30 s, systemd 90 s, Docker 10 s): the default grace plus the settle bound stays under
//! the common 30 s, and `TOLLGATE_SHUTDOWN_GRACE_SECS` fits it to the rest.

use std::time::Duration;

/// Open requests (streams included) may run this long after the signal by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(20);
/// After the connections are gone, after-response work (settlements) gets this long.
/// Settling is a handful of Store writes; this bound only matters when the Store hangs.
pub const SETTLE_BOUND: Duration = Duration::from_secs(5);

/// The bounds of one graceful shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// How long open requests may keep going; what is still open then is dropped.
    pub grace: Duration,
    /// How long deferred after-response work may take once every connection is gone.
    pub settle: Duration,
}

impl Bounds {
    /// `TOLLGATE_SHUTDOWN_GRACE_SECS` (whole seconds, 0 allowed) through `lookup`, else
    /// [`DEFAULT_GRACE`]. An unreadable value is an error, so a typo does not silently give
    /// a deploy 20 s it did not plan for.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Bounds, String> {
        let grace = match lookup("TOLLGATE_SHUTDOWN_GRACE_SECS") {
            None => DEFAULT_GRACE,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    format!("TOLLGATE_SHUTDOWN_GRACE_SECS must be whole seconds, not {v:?}")
                })?,
        };
        Ok(Bounds {
            grace,
            settle: SETTLE_BOUND,
        })
    }
}

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_comes_from_the_environment() {
        let none = Bounds::from_env(|_| None).unwrap();
        assert_eq!(none.grace, DEFAULT_GRACE);
        assert_eq!(none.settle, SETTLE_BOUND);
        let set = Bounds::from_env(|k| (k == "TOLLGATE_SHUTDOWN_GRACE_SECS").then(|| " 3".into()));
        assert_eq!(set.unwrap().grace, Duration::from_secs(3));
        let zero = Bounds::from_env(|_| Some("0".into())).unwrap();
        assert_eq!(zero.grace, Duration::ZERO);
        let bad = Bounds::from_env(|_| Some("2s".into())).unwrap_err();
        assert!(bad.contains("TOLLGATE_SHUTDOWN_GRACE_SECS"), "{bad}");
    }
}

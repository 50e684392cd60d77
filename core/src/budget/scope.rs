//! What spends: each request's cost is added to the counter of every scope it belongs to, for
//! the scope's current budget period.
//!
//! Counter keys: `spend:{scope}:{period start ms}` for a scope with a `budget_duration`, and
//! `spend:{scope}:all` for one without. The counter holds nano-dollars (`crate::cost`): the
//! spend of finished requests plus the reservations of requests in flight, so a budget check
//! and a reservation are one atomic capped add.

use super::window::{Calendar, Duration};

/// Something with a spend counter (and perhaps a budget).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A virtual key, by token.
    Key(String),
    User(String),
    Team(String),
    /// A user's spend inside a team (`max_budget_in_team`).
    Member {
        team: String,
        user: String,
    },
    /// An end user (`user` / `x-litellm-end-user-id`).
    EndUser(String),
    /// The whole proxy (`max_budget` in `general_settings` / `litellm_settings`).
    Proxy,
    /// One model on one key (`model_max_budget`).
    KeyModel {
        token: String,
        model: String,
    },
}

impl Scope {
    /// The scope's part of its counter key.
    pub fn id(&self) -> String {
        match self {
            Scope::Key(t) => format!("key:{}", escape(t)),
            Scope::User(u) => format!("user:{}", escape(u)),
            Scope::Team(t) => format!("team:{}", escape(t)),
            Scope::Member { team, user } => format!("member:{}:{}", escape(team), escape(user)),
            Scope::EndUser(u) => format!("enduser:{}", escape(u)),
            Scope::Proxy => "proxy".to_string(),
            Scope::KeyModel { token, model } => {
                format!("keymodel:{}:{}", escape(token), escape(model))
            }
        }
    }

    /// What a budget error names in `param`.
    pub fn param(&self) -> &'static str {
        match self {
            Scope::Key(_) => "key",
            Scope::User(_) => "user",
            Scope::Team(_) => "team",
            Scope::Member { .. } => "team_member",
            Scope::EndUser(_) => "end_user",
            Scope::Proxy => "proxy",
            Scope::KeyModel { .. } => "model",
        }
    }
}

/// An id as one part of a Store key: `:` (the parts' separator) and `%` percent-encoded, so
/// team `a:b` with user `c` and team `a` with user `b:c` never share a counter. Ids without
/// either character (nearly all) are unchanged.
pub fn escape(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains([':', '%']) {
        return std::borrow::Cow::Borrowed(id);
    }
    std::borrow::Cow::Owned(id.replace('%', "%25").replace(':', "%3A"))
}

/// The id [`escape`] encoded.
pub fn unescape(part: &str) -> String {
    part.replace("%3A", ":").replace("%25", "%")
}

/// The spend counter of `scope` for the period `now_ms` falls in (all time when `duration`
/// is `None` or unreadable), and when that counter may expire (ms from now; `None`: never).
pub fn counter(
    scope: &Scope,
    duration: Option<Duration>,
    now_ms: u64,
    cal: Calendar,
) -> (String, Option<u64>) {
    match duration {
        None => (format!("spend:{}:all", scope.id()), None),
        Some(d) => {
            let p = d.period(now_ms, cal);
            // Kept a day past its period so a late settlement still lands on it.
            let ttl = p.end_ms.saturating_sub(now_ms) + 86_400_000;
            (format!("spend:{}:{}", scope.id(), p.start_ms), Some(ttl))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_change_with_the_period_only() {
        let cal = Calendar::default();
        let d = Duration::parse("1h");
        let s = Scope::Key("t".into());
        let (a, ttl) = counter(&s, d, 3_600_000 + 10, cal);
        let (b, _) = counter(&s, d, 7_199_999, cal);
        let (c, _) = counter(&s, d, 7_200_000, cal);
        assert_eq!(a, "spend:key:t:3600000");
        assert_eq!(a, b);
        assert_ne!(b, c, "a new period starts at 0");
        assert_eq!(ttl, Some(3_600_000 - 10 + 86_400_000));
        assert_eq!(counter(&s, None, 5, cal), ("spend:key:t:all".into(), None));
        let a = Scope::Member {
            team: "a:b".into(),
            user: "c".into(),
        };
        let b = Scope::Member {
            team: "a".into(),
            user: "b:c".into(),
        };
        assert_ne!(a.id(), b.id());
        assert_eq!(unescape(&escape("50%:off")), "50%:off");
    }
}

//! Budget periods: `budget_duration` text (`30s`, `30m`, `1h`, `1d`, `7d`, `1w`, `30d`, `1mo`,
//! `daily`...) and the period a moment falls in.
//!
//! Periods are a pure function of the time, aligned as LiteLLM aligns its resets (seconds,
//! minutes and hours on boundaries counted from local midnight, `1d` at midnight, `7d`/`1w`
//! on Monday, `30d`/`1mo` on the 1st of the month). So a reset needs no job: the spend counter
//! of a period is keyed by the period's start, and the first request of a new period simply
//! finds a new counter at 0 ("applied lazily at read time"). LiteLLM instead stores a
//! `budget_reset_at` per row and resets rows from a cron, which a serverless host lacks.

use crate::calendar::{Date, Offset};

/// A parsed `budget_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    Seconds(u64),
    Minutes(u64),
    Hours(u64),
    Days(u64),
    Weeks(u64),
    Months(u64),
}

/// One budget period: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Where periods are cut: the timezone (`litellm_settings.timezone`) and the time of day resets
/// land on for day-and-longer periods (`general_settings.budget_reset_at`, `"00:00"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calendar {
    pub offset: Offset,
    /// Minutes after local midnight.
    pub reset_minute: u32,
}

impl Calendar {
    /// `HH:MM` for `budget_reset_at`.
    pub fn parse_reset_at(text: &str) -> Option<u32> {
        let (h, m) = text.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.get(..2)?.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    }

    /// The offset whose midnight is the reset time.
    fn day_offset(self) -> Offset {
        Offset(self.offset.0 - self.reset_minute as i32)
    }
}

impl Duration {
    /// LiteLLM's forms: `<n>s|m|h|d|w|mo`, and `hourly`, `daily`, `weekly`, `monthly`.
    pub fn parse(text: &str) -> Option<Duration> {
        let t = text.trim().to_ascii_lowercase();
        let t = match t.as_str() {
            "hourly" => "1h",
            "daily" => "1d",
            "weekly" => "7d",
            "monthly" => "1mo",
            other => other,
        };
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n: u64 = t[..digits].parse().ok().filter(|n| *n > 0)?;
        Some(match &t[digits..] {
            "s" | "" => Duration::Seconds(n),
            "m" => Duration::Minutes(n),
            "h" => Duration::Hours(n),
            "d" if n == 7 => Duration::Weeks(1),
            "d" if n == 30 => Duration::Months(1),
            "d" => Duration::Days(n),
            "w" => Duration::Weeks(n),
            "mo" => Duration::Months(n),
            _ => return None,
        })
    }

    /// The length in ms for fixed-length durations (an approximate 30 days for months), as
    /// used for key expiry (`duration`).
    pub fn approx_ms(self) -> u64 {
        match self {
            Duration::Seconds(n) => n * 1000,
            Duration::Minutes(n) => n * 60_000,
            Duration::Hours(n) => n * 3_600_000,
            Duration::Days(n) => n * 86_400_000,
            Duration::Weeks(n) => n * 7 * 86_400_000,
            Duration::Months(n) => n * 30 * 86_400_000,
        }
    }

    /// The period `now_ms` falls in.
    pub fn period(self, now_ms: u64, cal: Calendar) -> Period {
        match self {
            Duration::Seconds(_) | Duration::Minutes(_) | Duration::Hours(_) => {
                // Counted from local midnight, so `30m` resets at :00 and :30; a length that
                // does not divide the day ends its last period at midnight.
                let midnight = Date::at(now_ms, cal.offset).start_ms(cal.offset);
                let len = self.approx_ms();
                let k = (now_ms - midnight) / len;
                let start = midnight + k * len;
                let next_midnight = Date::at(now_ms, cal.offset).next().start_ms(cal.offset);
                Period {
                    start_ms: start,
                    end_ms: (start + len).min(next_midnight),
                }
            }
            Duration::Days(n) => {
                let off = cal.day_offset();
                let today = Date::at(now_ms, off);
                // Every n days counted from the epoch's first day, so every instance agrees.
                let since_epoch = days_since_epoch(today);
                let first = today.add_days(-(since_epoch.rem_euclid(n as i64)));
                Period {
                    start_ms: first.start_ms(off),
                    end_ms: first.add_days(n as i64).start_ms(off),
                }
            }
            Duration::Weeks(n) => {
                let off = cal.day_offset();
                let today = Date::at(now_ms, off);
                let monday = today.add_days(-i64::from(today.weekday()));
                // Weeks counted from the Monday before the epoch (1969-12-29).
                let weeks = (days_since_epoch(monday) + 3) / 7;
                let first = monday.add_days(-7 * weeks.rem_euclid(n as i64));
                Period {
                    start_ms: first.start_ms(off),
                    end_ms: first.add_days(7 * n as i64).start_ms(off),
                }
            }
            Duration::Months(n) => {
                let off = cal.day_offset();
                let today = Date::at(now_ms, off);
                let index = i64::from(today.year) * 12 + i64::from(today.month) - 1;
                let first_index = index - index.rem_euclid(n as i64);
                let first = month_start(first_index);
                Period {
                    start_ms: first.start_ms(off),
                    end_ms: month_start(first_index + n as i64).start_ms(off),
                }
            }
        }
    }
}

fn days_since_epoch(d: Date) -> i64 {
    (d.start_ms(Offset::UTC) / 86_400_000) as i64
}

fn month_start(index: i64) -> Date {
    Date {
        year: index.div_euclid(12) as i32,
        month: index.rem_euclid(12) as u32 + 1,
        day: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_iso8601;

    fn at(text: &str) -> u64 {
        parse_iso8601(text).unwrap()
    }

    fn period(d: &str, now: &str, cal: Calendar) -> (String, String) {
        let p = Duration::parse(d).unwrap().period(at(now), cal);
        (
            crate::calendar::iso8601(p.start_ms)[..19].to_string(),
            crate::calendar::iso8601(p.end_ms)[..19].to_string(),
        )
    }

    #[test]
    fn durations_parse_as_litellm_spells_them() {
        assert_eq!(Duration::parse("30s"), Some(Duration::Seconds(30)));
        assert_eq!(Duration::parse("30m"), Some(Duration::Minutes(30)));
        assert_eq!(Duration::parse("1h"), Some(Duration::Hours(1)));
        assert_eq!(Duration::parse("30d"), Some(Duration::Months(1)));
        assert_eq!(Duration::parse("7d"), Some(Duration::Weeks(1)));
        assert_eq!(Duration::parse("1w"), Some(Duration::Weeks(1)));
        assert_eq!(Duration::parse("1mo"), Some(Duration::Months(1)));
        assert_eq!(Duration::parse("daily"), Some(Duration::Days(1)));
        assert_eq!(Duration::parse("0d"), None);
        assert_eq!(Duration::parse("soon"), None);
        assert_eq!(Duration::parse("5y"), None);
    }

    #[test]
    fn periods_align_on_the_calendar() {
        let utc = Calendar::default();
        let now = "2026-12-04T17:37:13Z"; // a Friday
        assert_eq!(
            period("30m", now, utc),
            ("2026-12-04T17:30:00".into(), "2026-12-04T18:00:00".into())
        );
        assert_eq!(
            period("30s", now, utc),
            ("2026-12-04T17:37:00".into(), "2026-12-04T17:37:30".into())
        );
        assert_eq!(
            period("1d", now, utc),
            ("2026-12-04T00:00:00".into(), "2026-12-05T00:00:00".into())
        );
        assert_eq!(
            period("7d", now, utc),
            ("2026-11-30T00:00:00".into(), "2026-12-07T00:00:00".into()),
            "Monday to Monday"
        );
        assert_eq!(
            period("30d", now, utc),
            ("2026-12-01T00:00:00".into(), "2027-01-01T00:00:00".into())
        );
        assert_eq!(
            period("7h", "2026-12-04T23:00:00Z", utc),
            ("2026-12-04T21:00:00".into(), "2026-12-05T00:00:00".into()),
            "the last period of the day ends at midnight"
        );
    }

    #[test]
    fn timezone_and_reset_time_move_the_boundaries() {
        let tokyo = Calendar {
            offset: Offset(9 * 60),
            reset_minute: 0,
        };
        // 17:37 UTC is 02:37 the next day in Tokyo.
        assert_eq!(
            period("1d", "2026-12-04T17:37:13Z", tokyo),
            ("2026-12-04T15:00:00".into(), "2026-12-05T15:00:00".into())
        );
        let six_am = Calendar {
            offset: Offset::UTC,
            reset_minute: Calendar::parse_reset_at("06:00").unwrap(),
        };
        assert_eq!(
            period("1d", "2026-12-04T05:00:00Z", six_am),
            ("2026-12-03T06:00:00".into(), "2026-12-04T06:00:00".into())
        );
    }

    #[test]
    fn every_moment_is_inside_its_period_and_periods_tile() {
        let cal = Calendar {
            offset: Offset(-300),
            reset_minute: 0,
        };
        for d in ["45s", "7m", "5h", "3d", "2w", "1mo", "3mo"] {
            let dur = Duration::parse(d).unwrap();
            let mut t = at("2026-01-30T10:00:00Z");
            for _ in 0..50 {
                let p = dur.period(t, cal);
                assert!(p.start_ms <= t && t < p.end_ms, "{d} at {t}");
                assert_eq!(dur.period(p.end_ms, cal).start_ms, p.end_ms, "{d} tiles");
                t = p.end_ms + 1;
            }
        }
    }
}

//! Civil dates from epoch milliseconds, without a date library: ISO 8601 text for the admin
//! API, day keys for rollups, and the calendar-aligned boundaries budgets reset on.
//!
//! Times are UTC shifted by a fixed offset (`litellm_settings.timezone`: `UTC`, `+05:30`,
//! `-0800`, ...). Named zones with daylight saving would need the tz database in every Worker
//! bundle; a fixed offset is exact for budgets, which only need "the next midnight".

const MS_PER_DAY: i64 = 86_400_000;

/// A fixed offset from UTC, in minutes east.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offset(pub i32);

impl Offset {
    pub const UTC: Offset = Offset(0);

    /// `UTC`, `Z`, `GMT`, `+05:30`, `-0800`, `+2`, `UTC+01:00`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Offset> {
        let t = text.trim();
        let t = ["UTC", "GMT", "Etc/UTC"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        if t.is_empty() || t == "Z" {
            return Some(Offset::UTC);
        }
        let (sign, rest) = match t.as_bytes()[0] {
            b'+' => (1, &t[1..]),
            b'-' => (-1, &t[1..]),
            _ => return None,
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 14 && (0..60).contains(&m)).then_some(Offset(sign * (h * 60 + m)))
    }

    fn ms(self) -> i64 {
        i64::from(self.0) * 60_000
    }
}

/// A day in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Date { year, month, day }
}

impl Date {
    /// The local date at `ms`.
    pub fn at(ms: u64, offset: Offset) -> Date {
        civil_from_days((ms as i64 + offset.ms()).div_euclid(MS_PER_DAY))
    }

    /// `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let t = text.trim();
        let (y, rest) = t.split_once('-')?;
        let (m, d) = rest.split_once('-')?;
        let d = d
            .get(..2)
            .filter(|_| d.len() == 2 || !d.as_bytes()[2].is_ascii_digit())?;
        let date = Date {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        (date.month >= 1 && date.month <= 12 && date.day >= 1 && date.day <= date.days_in_month())
            .then_some(date)
    }

    fn days_in_month(self) -> u32 {
        match self.month {
            2 if self.year % 4 == 0 && (self.year % 100 != 0 || self.year % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Local midnight starting this day, in epoch ms.
    pub fn start_ms(self, offset: Offset) -> u64 {
        (days_from_civil(self.year, self.month, self.day) * MS_PER_DAY - offset.ms()).max(0) as u64
    }

    /// The day after.
    pub fn next(self) -> Date {
        civil_from_days(days_from_civil(self.year, self.month, self.day) + 1)
    }

    /// 0 = Monday ... 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as u32
    }

    /// The first day of the next month.
    pub fn next_month_start(self) -> Date {
        if self.month == 12 {
            Date {
                year: self.year + 1,
                month: 1,
                day: 1,
            }
        } else {
            Date {
                year: self.year,
                month: self.month + 1,
                day: 1,
            }
        }
    }

    /// The first day of this month.
    pub fn month_start(self) -> Date {
        Date { day: 1, ..self }
    }

    pub fn add_days(self, n: i64) -> Date {
        civil_from_days(days_from_civil(self.year, self.month, self.day) + n)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `2026-12-04T17:37:13.123000+00:00`-style UTC text (LiteLLM's timestamps are ISO 8601).
pub fn iso8601(ms: u64) -> String {
    let date = Date::at(ms, Offset::UTC);
    let in_day = ms % MS_PER_DAY as u64;
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{date}T{h:02}:{m:02}:{s:02}.{milli:03}000+00:00")
}

/// An ISO 8601 date or date-time (`2026-12-04`, `2026-12-04T17:37:13Z`, with an offset or
/// fractional seconds) as epoch ms; a bare date is its UTC midnight.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let t = text.trim();
    let (date_part, time_part) = match t.find(['T', ' ']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let date = Date::parse(date_part)?;
    let mut ms = date.start_ms(Offset::UTC);
    let Some(time) = time_part else {
        return Some(ms);
    };
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let mut fields = clock.split(':');
    let h: u64 = fields.next()?.parse().ok()?;
    let m: u64 = fields.next().unwrap_or("0").parse().ok()?;
    let (s, frac) = match fields.next() {
        Some(sec) => match sec.split_once('.') {
            Some((s, f)) => (s.parse::<u64>().ok()?, f),
            None => (sec.parse::<u64>().ok()?, ""),
        },
        None => (0, ""),
    };
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let milli: u64 = format!("{frac:0<3}")[..3].parse().ok()?;
    ms += h * 3_600_000 + m * 60_000 + s * 1000 + milli;
    let offset = if zone.is_empty() {
        Offset::UTC
    } else {
        Offset::parse(zone)?
    };
    Some((ms as i64 - offset.ms()).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-1000i64, 0, 59, 60, 365, 10_957, 20_000, 20_791] {
            let d = civil_from_days(days);
            assert_eq!(days_from_civil(d.year, d.month, d.day), days);
        }
        assert_eq!(Date::at(0, Offset::UTC).to_string(), "1970-01-01");
        // 2026-12-04T17:37:13Z
        let now = 1_796_405_833_000;
        assert_eq!(Date::at(now, Offset::UTC).to_string(), "2026-12-04");
        assert_eq!(Date::at(now, Offset(7 * 60)).to_string(), "2026-12-05");
    }

    #[test]
    fn weekdays_and_month_edges() {
        assert_eq!(Date::parse("2026-12-07").unwrap().weekday(), 0, "a Monday");
        assert_eq!(Date::parse("2026-12-06").unwrap().weekday(), 6, "a Sunday");
        let feb = Date::parse("2028-02-28").unwrap();
        assert_eq!(feb.next().to_string(), "2028-02-29");
        assert_eq!(
            Date::parse("2026-12-31")
                .unwrap()
                .next_month_start()
                .to_string(),
            "2027-01-01"
        );
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("nonsense").is_none());
    }

    #[test]
    fn iso_text_both_ways() {
        let ms = 1_796_405_833_123;
        assert_eq!(iso8601(ms), "2026-12-04T17:37:13.123000+00:00");
        assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        assert_eq!(
            parse_iso8601("2026-12-04T17:37:13Z"),
            Some(1_796_405_833_000)
        );
        assert_eq!(
            parse_iso8601("2026-12-04T18:37:13+01:00"),
            Some(1_796_405_833_000)
        );
        assert_eq!(parse_iso8601("2026-12-04"), Some(1_796_342_400_000));
        assert_eq!(parse_iso8601("2026-12-04 17:37"), Some(1_796_405_820_000));
        assert!(parse_iso8601("2026-12-04T25:00").is_none());
    }

    #[test]
    fn offsets() {
        assert_eq!(Offset::parse("UTC"), Some(Offset::UTC));
        assert_eq!(Offset::parse("+05:30"), Some(Offset(330)));
        assert_eq!(Offset::parse("-0800"), Some(Offset(-480)));
        assert_eq!(Offset::parse("UTC+2"), Some(Offset(120)));
        assert_eq!(Offset::parse("Europe/Paris"), None);
    }
}

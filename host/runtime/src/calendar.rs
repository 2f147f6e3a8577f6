//! Just enough calendar arithmetic for working hours and event files, on the proleptic
//! Gregorian calendar in UTC plus a fixed offset.
//!
//! The host has no date-time dependency; these few functions (after Howard Hinnant's
//! `days_from_civil`) cover weekday-and-minute checks and RFC 3339 timestamps such as
//! `2026-03-02T09:15:00Z` or `2026-03-02T10:15:00+01:00`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on the system clock; 0 if it is before 1970. The host
/// reads its injected clock instead; this is for readings that must be real time (the
/// plugin's `clock` import, rate-limit resets that the platform states in its own time).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Days from 1970-01-01 to the given civil date (negative before 1970).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count from 1970-01-01 (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Day of the week of a day count from 1970-01-01 (a Thursday): 0 = Monday … 6 = Sunday.
pub fn weekday(days: i64) -> usize {
    // rem_euclid(7) is in 0..7, so the cast cannot truncate.
    (days + 3).rem_euclid(7) as usize
}

fn number(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} `{text}` is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{what} `{text}` is out of range"))
}

/// Parses `HH:MM` into minutes after midnight; `24:00` is allowed as an end of day.
pub fn parse_clock_time(text: &str) -> Result<u32, String> {
    let (hours, minutes) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a time of day (HH:MM)"))?;
    let hours = number(hours, "hour")?;
    let minutes = number(minutes, "minute")?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(format!("`{text}` is not a time of day (00:00 to 24:00)"));
    }
    Ok(hours * 60 + minutes)
}

/// Parses an RFC 3339 timestamp (`2026-03-02T09:15:00Z`, fractions of a second and
/// `±HH:MM` offsets allowed) into milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not an RFC 3339 timestamp such as 2026-03-02T09:15:00Z");
    let (date, rest) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut date_parts = date.splitn(3, '-');
    let (Some(year), Some(month), Some(day)) =
        (date_parts.next(), date_parts.next(), date_parts.next())
    else {
        return Err(bad());
    };
    let (year, month, day) = (
        number(year, "year")?,
        number(month, "month")?,
        number(day, "day")?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    // Split the time of day from the offset: `Z`, or the last `+`/`-`.
    let (time, offset_minutes) = if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        (time, 0i64)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (time, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let minutes = parse_clock_time(offset.get(1..).unwrap_or_default()).map_err(|_| bad())?;
        (time, sign * i64::from(minutes))
    } else {
        return Err(bad());
    };
    let (time, millis) = match time.split_once('.') {
        Some((time, fraction)) => {
            let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
            (time, number(&digits, "fraction of a second")?)
        }
        None => (time, 0),
    };
    let mut clock = time.splitn(3, ':');
    let (Some(hours), Some(minutes), Some(seconds)) = (clock.next(), clock.next(), clock.next())
    else {
        return Err(bad());
    };
    let (hours, minutes, seconds) = (
        number(hours, "hour")?,
        number(minutes, "minute")?,
        number(seconds, "second")?,
    );
    if hours > 23 || minutes > 59 || seconds > 60 {
        return Err(bad());
    }
    let days = days_from_civil(i64::from(year), month, day);
    // Checked: a year far in the future must be an error, not an overflow.
    let ms = days
        .checked_mul(DAY_MS)
        .and_then(|ms| {
            ms.checked_add(i64::from(
                hours * 3_600_000 + minutes * 60_000 + seconds * 1000 + millis,
            ))
        })
        .and_then(|ms| ms.checked_sub(offset_minutes.checked_mul(60_000)?))
        .ok_or_else(|| format!("`{text}` is too far from 1970 to be a time"))?;
    u64::try_from(ms).map_err(|_| format!("`{text}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_have_the_right_day_count_and_weekday() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        // 2026-03-02 is a Monday; 2024-02-29 exists.
        let monday = days_from_civil(2026, 3, 2);
        assert_eq!(weekday(monday), 0);
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(weekday(days_from_civil(2026, 3, 8)), 6);
    }

    #[test]
    fn timestamps_parse_with_offsets_and_fractions() {
        let utc = parse_timestamp("2026-03-02T09:15:00Z").unwrap();
        assert_eq!(utc, 1_772_442_900_000);
        assert_eq!(parse_timestamp("2026-03-02T10:15:00+01:00").unwrap(), utc);
        assert_eq!(parse_timestamp("2026-03-02T08:15:00-01:00").unwrap(), utc);
        assert_eq!(
            parse_timestamp("2026-03-02T09:15:00.25Z").unwrap(),
            utc + 250
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap(), 0);
    }

    #[test]
    fn malformed_timestamps_say_what_is_expected() {
        for bad in [
            "yesterday",
            "2026-03-02",
            "2026-13-02T09:15:00Z",
            "2026-03-02T25:00:00Z",
        ] {
            let err = parse_timestamp(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn clock_times_allow_end_of_day_but_not_beyond() {
        assert_eq!(parse_clock_time("09:30").unwrap(), 570);
        assert_eq!(parse_clock_time("24:00").unwrap(), 1440);
        assert!(parse_clock_time("24:01").is_err());
        assert!(parse_clock_time("9").is_err());
        assert!(parse_clock_time("09:60").is_err());
    }
}

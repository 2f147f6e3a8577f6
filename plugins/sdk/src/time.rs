//! Time: the host's clock, and the timestamp formats platforms write.
//!
//! Everything in the contract is milliseconds since the Unix epoch (UTC). The guest has no
//! clock of its own worth trusting; [`now_ms`] asks the host.

use crate::bindings::channel::centralino::plugin::clock;

/// Milliseconds since the epoch, as the host sees it.
pub fn now_ms() -> u64 {
    clock::now_ms()
}

/// Seconds since the epoch (Telegram, Graph feed times) in milliseconds.
pub fn seconds_to_ms(seconds: u64) -> u64 {
    seconds.saturating_mul(1000)
}

/// An RFC 3339 timestamp (`2019-06-04T23:12:08.000Z`, `2025-05-19T16:01:46+02:00`) in
/// milliseconds; `None` when it is not one.
pub fn rfc3339_ms(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.split('-');
    let (year, month, day) = (date.next()?, date.next()?, date.next()?);
    let clock = time.get(..8)?;
    let mut rest = time.get(8..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let first3 = format!("{:0<3}", fraction.get(..digits.min(3))?);
        millis = first3.parse().ok()?;
        rest = fraction.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => utc_offset(rest)?,
    };
    civil_to_ms(
        year.parse().ok()?,
        month.parse().ok()?,
        day.parse().ok()?,
        clock,
        offset,
        millis,
    )
}

/// `+0000`, `+00:00` or `-0530` as seconds east of UTC.
pub fn utc_offset(text: &str) -> Option<i64> {
    let sign = match text.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let digits: String = text.get(1..)?.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 {
        return None;
    }
    let hours: i64 = digits.get(..2)?.parse().ok()?;
    let minutes: i64 = digits.get(2..)?.parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Epoch milliseconds of a civil date and an `HH:MM:SS` clock at `offset` seconds east.
pub fn civil_to_ms(
    year: i64,
    month: i64,
    day: i64,
    clock: &str,
    offset: i64,
    millis: i64,
) -> Option<u64> {
    let mut clock = clock.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second);
    if !valid {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

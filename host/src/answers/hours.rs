//! When a brand is at work: a time zone, weekly hours and holidays, and the two questions
//! the host asks of them: *is it open now*, and *when does service resume*.
//!
//! The host has no time-zone database. A [`TimeZone`] is either a fixed offset
//! (`UTC+01:00`) or one of the European zones that change to summer time on the EU's rule
//! (the last Sunday of March to the last Sunday of October, at 01:00 UTC): that covers
//! the scenario's Italian brands without a dependency; other zones are written as a fixed
//! offset.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::calendar::{DAY_MS, civil_from_days, days_from_civil, weekday};
use crate::routing::TimeSpan;

/// Zones on Central European Time (UTC+1, summer UTC+2).
const CET_ZONES: &[&str] = &[
    "Europe/Rome",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Stockholm",
    "Europe/Oslo",
    "Europe/Copenhagen",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Luxembourg",
    "Europe/Malta",
    "Europe/San_Marino",
    "Europe/Vatican",
];
/// Zones on Western European Time (UTC+0, summer UTC+1).
const WET_ZONES: &[&str] = &["Europe/London", "Europe/Dublin", "Europe/Lisbon"];
/// Zones on Eastern European Time (UTC+2, summer UTC+3).
const EET_ZONES: &[&str] = &[
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Bucharest",
    "Europe/Sofia",
];

/// A brand's time zone: `Europe/Rome` (European summer time applied) or a fixed offset
/// `UTC`, `UTC+01:00`, `UTC-05:00`. Default: `UTC`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone {
    name: String,
    /// Standard offset from UTC, in minutes.
    standard_minutes: i32,
    /// Whether the EU's summer time (one hour more) applies.
    eu_summer_time: bool,
}

impl TimeZone {
    /// UTC.
    pub fn utc() -> Self {
        TimeZone {
            name: "UTC".to_string(),
            standard_minutes: 0,
            eu_summer_time: false,
        }
    }

    /// Local time minus UTC at `utc_ms`, in milliseconds.
    pub(crate) fn offset_ms(&self, utc_ms: i64) -> i64 {
        let mut minutes = i64::from(self.standard_minutes);
        if self.eu_summer_time && in_eu_summer_time(utc_ms) {
            minutes += 60;
        }
        minutes * 60_000
    }

    /// Local wall-clock milliseconds (as if local time were UTC) of an instant.
    pub(crate) fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms + self.offset_ms(utc_ms)
    }

    /// The instant of a local wall-clock time. A time skipped by the spring change is
    /// taken an hour later; one repeated in autumn, the first time.
    pub(crate) fn to_utc(&self, local_ms: i64) -> i64 {
        let guess = local_ms - self.offset_ms(local_ms - i64::from(self.standard_minutes) * 60_000);
        let offset = self.offset_ms(guess);
        local_ms - offset
    }
}

/// Whether the EU's summer time is in force at `utc_ms`: from 01:00 UTC on the last Sunday
/// of March to 01:00 UTC on the last Sunday of October.
fn in_eu_summer_time(utc_ms: i64) -> bool {
    let days = utc_ms.div_euclid(DAY_MS);
    let (year, _, _) = civil_from_days(days);
    let last_sunday = |month: u32, last_day: u32| {
        let end = days_from_civil(year, month, last_day);
        // weekday: 0 = Monday … 6 = Sunday.
        end - i64::try_from((weekday(end) + 1) % 7).unwrap_or(0)
    };
    let starts = last_sunday(3, 31) * DAY_MS + 3_600_000;
    let ends = last_sunday(10, 31) * DAY_MS + 3_600_000;
    (starts..ends).contains(&utc_ms)
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> String {
        zone.name
    }
}

impl std::str::FromStr for TimeZone {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let zone = |standard_hours: i32| TimeZone {
            name: text.to_string(),
            standard_minutes: standard_hours * 60,
            eu_summer_time: true,
        };
        if CET_ZONES.contains(&text) {
            return Ok(zone(1));
        }
        if WET_ZONES.contains(&text) {
            return Ok(zone(0));
        }
        if EET_ZONES.contains(&text) {
            return Ok(zone(2));
        }
        if text == "UTC" {
            return Ok(TimeZone::utc());
        }
        let bad = || {
            format!(
                "`{text}` is not a time zone this host knows: write a European zone such as \
                 `Europe/Rome` (summer time applied), or a fixed offset such as `UTC+01:00`"
            )
        };
        let rest = text.strip_prefix("UTC").ok_or_else(bad)?;
        let (sign, clock) = match rest.split_at_checked(1) {
            Some(("+", clock)) => (1, clock),
            Some(("-", clock)) => (-1, clock),
            _ => return Err(bad()),
        };
        let minutes = crate::calendar::parse_clock_time(clock).map_err(|_| bad())?;
        if minutes > 14 * 60 {
            return Err(bad());
        }
        Ok(TimeZone {
            name: text.to_string(),
            standard_minutes: sign * i32::try_from(minutes).unwrap_or(0),
            eu_summer_time: false,
        })
    }
}

/// Days a brand is closed all day: `italy` (Italy's national public holidays, Easter
/// Monday computed for each year) or a date, `2026-12-24`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum Holiday {
    /// Italy's national public holidays.
    Italy,
    /// One date (year, month, day).
    Date(i64, u32, u32),
}

impl TryFrom<String> for Holiday {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text == "italy" {
            return Ok(Holiday::Italy);
        }
        let bad = || {
            format!(
                "`{text}` is not a holiday: write `italy` (Italy's public holidays) or a date \
                 such as `2026-12-24`"
            )
        };
        let mut parts = text.splitn(3, '-');
        let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (Ok(year), Ok(month), Ok(day)) = (
            year.parse::<i64>(),
            month.parse::<u32>(),
            day.parse::<u32>(),
        ) else {
            return Err(bad());
        };
        let days = days_from_civil(year, month, day);
        if !(1..=12).contains(&month) || civil_from_days(days) != (year, month, day) {
            return Err(bad());
        }
        Ok(Holiday::Date(year, month, day))
    }
}

impl From<Holiday> for String {
    fn from(holiday: Holiday) -> String {
        match holiday {
            Holiday::Italy => "italy".to_string(),
            Holiday::Date(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
        }
    }
}

/// Easter Sunday of `year` (Gregorian; the anonymous algorithm of 1876), as (month, day).
pub(crate) fn easter(year: i64) -> (u32, u32) {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    (
        u32::try_from(month).unwrap_or(4),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Whether the civil day `days` (from 1970-01-01) is one of Italy's national public
/// holidays: New Year, Epiphany, Easter Sunday and Monday, Liberation Day (25 April),
/// Labour Day, Republic Day (2 June), Ferragosto, All Saints, Saint Francis (4 October,
/// from 2026), the Immaculate Conception, Christmas and Saint Stephen.
fn italian_holiday(days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let (easter_month, easter_day) = easter(year);
    let easter_days = days_from_civil(year, easter_month, easter_day);
    if days == easter_days || days == easter_days + 1 {
        return true;
    }
    matches!(
        (month, day),
        (1, 1)
            | (1, 6)
            | (4, 25)
            | (5, 1)
            | (6, 2)
            | (8, 15)
            | (11, 1)
            | (12, 8)
            | (12, 25)
            | (12, 26)
    ) || (year >= 2026 && (month, day) == (10, 4))
}

/// Weekly hours in the brand's local time (`mon` … `sun`, spans such as `"08:00-22:00"`);
/// a weekday with no spans is closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WeeklyHours {
    /// Monday's spans.
    #[serde(default)]
    pub mon: Vec<TimeSpan>,
    /// Tuesday's spans.
    #[serde(default)]
    pub tue: Vec<TimeSpan>,
    /// Wednesday's spans.
    #[serde(default)]
    pub wed: Vec<TimeSpan>,
    /// Thursday's spans.
    #[serde(default)]
    pub thu: Vec<TimeSpan>,
    /// Friday's spans.
    #[serde(default)]
    pub fri: Vec<TimeSpan>,
    /// Saturday's spans.
    #[serde(default)]
    pub sat: Vec<TimeSpan>,
    /// Sunday's spans.
    #[serde(default)]
    pub sun: Vec<TimeSpan>,
}

impl WeeklyHours {
    fn day(&self, weekday: usize) -> &[TimeSpan] {
        match weekday {
            0 => &self.mon,
            1 => &self.tue,
            2 => &self.wed,
            3 => &self.thu,
            4 => &self.fri,
            5 => &self.sat,
            _ => &self.sun,
        }
    }
}

/// How far ahead [`BusinessHours::resumes_at`] looks for an opening.
const LOOK_AHEAD_DAYS: i64 = 370;

/// A brand's business hours: weekly spans in its time zone, less its holidays. Without
/// weekly hours a brand is always open (holidays still close it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BusinessHours {
    pub(crate) zone: TimeZone,
    pub(crate) weekly: Option<WeeklyHours>,
    pub(crate) holidays: Vec<Holiday>,
}

impl BusinessHours {
    fn closed_on(&self, local_days: i64, extra: &BTreeSet<i64>) -> bool {
        extra.contains(&local_days)
            || (self.holidays.contains(&Holiday::Italy) && italian_holiday(local_days))
    }

    fn dates(&self) -> BTreeSet<i64> {
        self.holidays
            .iter()
            .filter_map(|h| match h {
                Holiday::Date(y, m, d) => Some(days_from_civil(*y, *m, *d)),
                Holiday::Italy => None,
            })
            .collect()
    }

    /// The open spans of local day `local_days`, in local minutes.
    fn spans(&self, local_days: i64, dates: &BTreeSet<i64>) -> Vec<(u32, u32)> {
        if self.closed_on(local_days, dates) {
            return Vec::new();
        }
        match &self.weekly {
            Some(weekly) => weekly
                .day(weekday(local_days))
                .iter()
                .map(|s| (s.from, s.to))
                .collect(),
            None => vec![(0, 24 * 60)],
        }
    }

    /// When service resumes after `now_ms`: `None` while open, otherwise the start of the
    /// next open span (`Some(u64::MAX)` if none within a year: a brand with no hours).
    pub(crate) fn resumes_at(&self, now_ms: u64) -> Option<u64> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX / 2);
        let local = self.zone.to_local(now);
        let today = local.div_euclid(DAY_MS);
        let minute = u32::try_from(local.rem_euclid(DAY_MS) / 60_000).unwrap_or(0);
        let dates = self.dates();
        for day in today..today + LOOK_AHEAD_DAYS {
            for (from, to) in self.spans(day, &dates) {
                if day == today && minute >= to {
                    continue;
                }
                if day == today && minute >= from {
                    return None;
                }
                let start = self.zone.to_utc(day * DAY_MS + i64::from(from) * 60_000);
                return Some(u64::try_from(start).unwrap_or(0));
            }
        }
        Some(u64::MAX)
    }

    /// Milliseconds of business hours between `from_ms` and `to_ms`: the time a service
    /// level counts.
    pub(crate) fn open_ms_between(&self, from_ms: u64, to_ms: u64) -> u64 {
        if to_ms <= from_ms {
            return 0;
        }
        let from = i64::try_from(from_ms).unwrap_or(0);
        let to = i64::try_from(to_ms).unwrap_or(i64::MAX / 2);
        let first = self.zone.to_local(from).div_euclid(DAY_MS);
        let last = self.zone.to_local(to).div_euclid(DAY_MS);
        let dates = self.dates();
        let mut open = 0i64;
        for day in first..=last.min(first + LOOK_AHEAD_DAYS) {
            for (start, end) in self.spans(day, &dates) {
                let start = self.zone.to_utc(day * DAY_MS + i64::from(start) * 60_000);
                let end = self.zone.to_utc(day * DAY_MS + i64::from(end) * 60_000);
                open += (end.min(to) - start.max(from)).max(0);
            }
        }
        u64::try_from(open).unwrap_or(0)
    }

    /// The local civil date and time of an instant: (year, month, day, weekday, minute).
    pub(crate) fn local_time(&self, utc_ms: u64) -> (i64, u32, u32, usize, u32) {
        let local = self.zone.to_local(i64::try_from(utc_ms).unwrap_or(0));
        let days = local.div_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        let minute = u32::try_from(local.rem_euclid(DAY_MS) / 60_000).unwrap_or(0);
        (year, month, day, weekday(days), minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_timestamp;

    fn at(text: &str) -> u64 {
        parse_timestamp(text).unwrap()
    }

    fn rome_office() -> BusinessHours {
        let span = |t: &str| TimeSpan::try_from(t.to_string()).unwrap();
        BusinessHours {
            zone: "Europe/Rome".parse().unwrap(),
            weekly: Some(WeeklyHours {
                mon: vec![span("08:00-22:00")],
                tue: vec![span("08:00-22:00")],
                wed: vec![span("08:00-22:00")],
                thu: vec![span("08:00-22:00")],
                fri: vec![span("08:00-22:00")],
                sat: vec![span("09:00-13:00")],
                sun: vec![],
            }),
            holidays: vec![
                Holiday::Italy,
                Holiday::try_from("2026-12-24".to_string()).unwrap(),
            ],
        }
    }

    #[test]
    fn easter_is_computed_for_any_year() {
        assert_eq!(easter(2024), (3, 31));
        assert_eq!(easter(2025), (4, 20));
        assert_eq!(easter(2026), (4, 5));
        assert_eq!(easter(2027), (3, 28));
        assert_eq!(easter(2038), (4, 25));
        assert_eq!(easter(2285), (3, 22));
    }

    #[test]
    fn rome_changes_to_summer_time_on_the_eu_rule() {
        let rome: TimeZone = "Europe/Rome".parse().unwrap();
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(rome.offset_ms(at("2026-03-29T00:59:00Z") as i64), 3_600_000);
        assert_eq!(rome.offset_ms(at("2026-03-29T01:00:00Z") as i64), 7_200_000);
        assert_eq!(rome.offset_ms(at("2026-10-25T00:59:00Z") as i64), 7_200_000);
        assert_eq!(rome.offset_ms(at("2026-10-25T01:00:00Z") as i64), 3_600_000);
        let fixed: TimeZone = "UTC-05:30".parse().unwrap();
        assert_eq!(fixed.offset_ms(0), -330 * 60_000);
        let err = "Mars/Olympus".parse::<TimeZone>().unwrap_err();
        assert!(
            err.contains("Mars/Olympus") && err.contains("Europe/Rome"),
            "{err}"
        );
    }

    #[test]
    fn after_hours_service_resumes_the_next_working_morning() {
        let hours = rome_office();
        // Thursday 3 December 2026, 23:00 in Rome (22:00 UTC): Friday 08:00 (07:00 UTC).
        assert_eq!(
            hours.resumes_at(at("2026-12-03T22:00:00Z")),
            Some(at("2026-12-04T07:00:00Z"))
        );
        // Open at 10:00.
        assert_eq!(hours.resumes_at(at("2026-12-03T09:00:00Z")), None);
        // Monday 7 December 23:00: Tuesday 8 December is a holiday (Immaculate
        // Conception), so Wednesday.
        assert_eq!(
            hours.resumes_at(at("2026-12-07T22:00:00Z")),
            Some(at("2026-12-09T07:00:00Z"))
        );
        // Easter Monday 2027 (29 March) at 10:00 Rome, summer time: Tuesday 08:00 (06:00 UTC).
        assert_eq!(
            hours.resumes_at(at("2027-03-29T08:00:00Z")),
            Some(at("2027-03-30T06:00:00Z"))
        );
        // Christmas Eve is closed by date, Christmas and St Stephen by the calendar; the
        // 27th is a Sunday, so Monday 28th.
        assert_eq!(
            hours.resumes_at(at("2026-12-23T22:00:00Z")),
            Some(at("2026-12-28T07:00:00Z"))
        );
    }

    #[test]
    fn service_levels_count_only_open_time() {
        let hours = rome_office();
        // Written Thursday 21:30 Rome; by Friday 08:30, 30 + 30 minutes were open.
        let open = hours.open_ms_between(at("2026-12-03T20:30:00Z"), at("2026-12-04T07:30:00Z"));
        assert_eq!(open, 60 * 60_000);
        let always = BusinessHours::default();
        assert_eq!(always.open_ms_between(0, 5_000), 5_000);
    }

    #[test]
    fn bad_holidays_say_what_is_expected() {
        for bad in ["2026-02-30", "christmas", "2026-13-01"] {
            let err = Holiday::try_from(bad.to_string()).unwrap_err();
            assert!(err.contains(bad) && err.contains("italy"), "{err}");
        }
    }
}

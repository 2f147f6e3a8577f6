//! Pieces shared by the webhook and the polling paths, so that a post or a DM becomes the
//! same message whichever way it arrived: thread keys, attachments, text and timestamps.

use crate::centralino::plugin::types::Attachment;

/// Thread key of a post: `tweet:<root>`, where the root is the thread's first post.
///
/// `conversation_id` is that root when X sends it (API v2 always does). Without it, a post
/// answering nothing is its own root, and a reply falls back to the post it answers (see the
/// crate documentation for why the webhook path does not look the root up).
pub fn post_thread_key(
    conversation_id: Option<&str>,
    replied_to: Option<&str>,
    id: &str,
) -> String {
    let root = conversation_id.or(replied_to).unwrap_or(id);
    format!("tweet:{root}")
}

/// The root post id of a `tweet:<root>` thread key.
pub fn post_thread_root(key: &str) -> Option<&str> {
    key.strip_prefix("tweet:").filter(|root| is_id(root))
}

/// Thread key of a DM conversation between a company account and a customer.
pub fn dm_thread_key(account: &str, customer: &str) -> String {
    format!("dm:{account}:{customer}")
}

/// The customer of a `dm:<account>:<customer>` thread key, if it belongs to `account`.
pub fn dm_thread_customer<'k>(key: &'k str, account: &str) -> Option<&'k str> {
    key.strip_prefix("dm:")?
        .strip_prefix(account)?
        .strip_prefix(':')
        .filter(|customer| is_id(customer))
}

/// Whether `value` looks like an X id (decimal digits), safe to put in a URL path.
pub fn is_id(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// Whether id `a` is newer than id `b`. X ids are snowflakes: later ids are larger numbers,
/// and comparing the decimal strings by length, then by digits, compares the numbers
/// without parsing them.
pub fn is_newer_id(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// An attachment from X's media type word (`photo`, `video`, `animated_gif`).
pub fn media_attachment(
    media_type: Option<&str>,
    url: Option<String>,
    mime_type: Option<String>,
    alt_text: Option<String>,
) -> Attachment {
    let kind = match media_type {
        Some("photo") => "image",
        Some("video" | "animated_gif") => "video",
        // A DM media object often carries no type; say what X said, not a guess.
        _ => "media",
    };
    Attachment {
        kind: kind.to_string(),
        url,
        mime_type,
        description: alt_text.filter(|text| !text.is_empty()),
    }
}

/// Undoes the HTML escaping X applies to post and DM text (`&amp;`, `&lt;`, `&gt;`,
/// `&quot;`, `&#39;` and other numeric references), in one left-to-right pass so that an
/// escaped entity (`&amp;lt;`) becomes literal text (`&lt;`) and not `<`.
pub fn unescape_html(text: &str) -> String {
    const NAMED: [(&str, char); 5] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        let decoded = NAMED
            .iter()
            .find(|(name, _)| tail.starts_with(name))
            .map(|(name, ch)| (*ch, name.len()))
            .or_else(|| numeric_reference(tail));
        match decoded {
            Some((ch, len)) => {
                out.push(ch);
                rest = tail.get(len..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// `&#39;` or `&#x27;` at the start of `text`: the character and the reference's length.
fn numeric_reference(text: &str) -> Option<(char, usize)> {
    let body = text.strip_prefix("&#")?;
    let end = body.find(';')?;
    let digits = body.get(..end)?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some((char::from_u32(code)?, end + 3))
}

/// Milliseconds since the epoch of an X timestamp: RFC 3339 as API v2 writes it
/// (`2019-06-04T23:12:08.000Z`) or the v1.1 form of webhooks (`Mon May 19 14:01:46 +0000
/// 2025`). `None` when it is neither.
pub fn parse_time(text: &str) -> Option<u64> {
    parse_rfc3339(text).or_else(|| parse_v1_time(text))
}

fn parse_rfc3339(text: &str) -> Option<u64> {
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
        _ => parse_offset(rest)?,
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

fn parse_v1_time(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)?;
    let day = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    let offset = parse_offset(parts.next()?)?;
    let year = parts.next()?.parse().ok()?;
    let month = i64::try_from(month).ok()? + 1;
    civil_to_ms(year, month, day, clock, offset, 0)
}

/// `+0000`, `+00:00` or `-0530` as seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
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
fn civil_to_ms(
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

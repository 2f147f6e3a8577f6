use super::*;

/// 2026-12-03T16:00:00Z, the "now" of every test here.
const NOW_MS: u64 = 1_796_313_600_000;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn wait(status: u16, pairs: &[(&str, &str)]) -> Option<Duration> {
    wait_from_headers(status, &headers(pairs), None, NOW_MS)
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

#[test]
fn the_test_clock_is_the_date_it_claims() {
    assert_eq!(
        crate::calendar::parse_timestamp("2026-12-03T16:00:00Z"),
        Ok(NOW_MS)
    );
}

#[test]
fn x_rate_limit_headers_block_until_the_reset_in_epoch_seconds() {
    let reset = (NOW_MS / 1000 + 90).to_string();
    assert_eq!(
        wait(
            200,
            &[
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", &reset)
            ]
        ),
        secs(90)
    );
    let left = [
        ("x-rate-limit-remaining", "3"),
        ("x-rate-limit-reset", reset.as_str()),
    ];
    assert_eq!(wait(200, &left), None, "calls are left in the window");
    assert_eq!(
        wait(429, &left),
        secs(90),
        "a 429 is obeyed whatever it counts"
    );
}

#[test]
fn retry_after_in_seconds_or_as_an_http_date() {
    assert_eq!(wait(429, &[("Retry-After", "120")]), secs(120));
    assert_eq!(wait(503, &[("retry-after", " 30 ")]), secs(30));
    // RFC 9110's IMF-fixdate, 5 minutes after NOW_MS.
    assert_eq!(
        wait(429, &[("Retry-After", "Thu, 03 Dec 2026 16:05:00 GMT")]),
        secs(300)
    );
    // A 200 that carries Retry-After is not a refusal.
    assert_eq!(wait(200, &[("Retry-After", "120")]), None);
    // A date already past: come back in a second, not never and not at once.
    assert_eq!(
        wait(429, &[("Retry-After", "Thu, 03 Dec 2026 15:00:00 GMT")]),
        secs(1)
    );
}

#[test]
fn ietf_ratelimit_fields_of_the_current_draft() {
    // draft-ietf-httpapi-ratelimit-headers -08 and later: structured fields.
    assert_eq!(
        wait(200, &[("RateLimit", "\"default\";r=0;t=30")]),
        secs(30)
    );
    assert_eq!(wait(200, &[("RateLimit", "\"default\";r=12;t=30")]), None);
    // Two policies, one spent: its reset is obeyed.
    assert_eq!(
        wait(
            200,
            &[("RateLimit", "\"burst\";r=5;t=1, \"daily\";r=0;t=7200")]
        ),
        secs(7200)
    );
    // No `t`: the policy's window is the longest the wait can be.
    assert_eq!(
        wait(
            200,
            &[
                ("RateLimit", "\"hourly\";r=0"),
                ("RateLimit-Policy", "\"hourly\";q=1000;w=3600"),
            ]
        ),
        secs(3600)
    );
}

#[test]
fn ietf_ratelimit_fields_of_the_older_drafts() {
    // Draft -07: one dictionary.
    assert_eq!(
        wait(200, &[("RateLimit", "limit=100, remaining=0, reset=45")]),
        secs(45)
    );
    assert_eq!(
        wait(200, &[("RateLimit", "limit=100, remaining=9, reset=45")]),
        None
    );
    // Drafts up to -06: separate fields.
    assert_eq!(
        wait(
            200,
            &[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "12")]
        ),
        secs(12)
    );
    assert_eq!(wait(429, &[("RateLimit-Reset", "12")]), secs(12));
}

#[test]
fn the_common_x_ratelimit_family_in_each_shape_of_reset() {
    let spent = |reset: &str| {
        wait(
            200,
            &[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", reset)],
        )
    };
    // Seconds from now.
    assert_eq!(spent("60"), secs(60));
    // Epoch seconds (GitHub), fractions allowed (Discord).
    assert_eq!(spent(&(NOW_MS / 1000 + 600).to_string()), secs(600));
    assert_eq!(
        spent(&format!("{}.5", NOW_MS / 1000 + 10)),
        Some(Duration::from_millis(10_500))
    );
    // RFC 3339 (Mastodon), with fractions and an offset.
    assert_eq!(spent("2026-12-03T16:30:00.000Z"), secs(1800));
    assert_eq!(spent("2026-12-03T17:15:00+01:00"), secs(900));
    // Calls left: no wait.
    assert_eq!(
        wait(
            200,
            &[
                ("X-RateLimit-Remaining", "299"),
                ("X-RateLimit-Reset", "2026-12-03T16:30:00.000Z"),
            ]
        ),
        None
    );
    // Not a time at all: a 200 is let through, a 429 pauses briefly.
    assert_eq!(spent("soon"), None);
    assert_eq!(
        wait(429, &[("X-RateLimit-Reset", "soon")]),
        Some(BARE_429_WAIT)
    );
}

#[test]
fn graph_usage_headers_block_when_a_share_reaches_100() {
    let buc = [(
        "x-business-use-case-usage",
        r#"{"1234":[{"type":"messenger","call_count":100,"total_cputime":12,"total_time":40,"estimated_time_to_regain_access":7}]}"#,
    )];
    assert_eq!(wait(200, &buc), secs(7 * 60));
    let app = [(
        "x-app-usage",
        r#"{"call_count":12,"total_cputime":100,"total_time":30}"#,
    )];
    assert_eq!(wait(200, &app), secs(60));
    let fine = [(
        "x-app-usage",
        r#"{"call_count":12,"total_cputime":20,"total_time":30}"#,
    )];
    assert_eq!(wait(200, &fine), None);
}

#[test]
fn the_strictest_family_wins_when_several_speak() {
    assert_eq!(
        wait(
            429,
            &[("Retry-After", "20"), ("RateLimit", "\"default\";r=0;t=90"),]
        ),
        secs(90)
    );
}

#[test]
fn a_declaration_teaches_the_host_a_platforms_own_headers() {
    let declaration = RateLimitDeclaration::parse(
        br#"{"remaining": "x-quota-left", "reset": "x-quota-reset", "reset_format": "delta-seconds"}"#,
    )
    .unwrap();
    let spent = headers(&[("X-Quota-Left", "0"), ("X-Quota-Reset", "40")]);
    assert_eq!(
        wait_from_headers(200, &spent, None, NOW_MS),
        None,
        "unknown names"
    );
    assert_eq!(
        wait_from_headers(200, &spent, Some(&declaration), NOW_MS),
        secs(40)
    );
    // The declared format is taken at its word: a large number is still seconds from now
    // (bounded), not a time since 1970 as `auto` would read it.
    let large = headers(&[("x-quota-left", "0"), ("x-quota-reset", "1800000000")]);
    assert_eq!(
        wait_from_headers(200, &large, Some(&declaration), NOW_MS),
        Some(MAX_RATE_LIMIT_WAIT)
    );
    // The families the host knows still apply beside the declaration.
    let retry = headers(&[("Retry-After", "5")]);
    assert_eq!(
        wait_from_headers(429, &retry, Some(&declaration), NOW_MS),
        secs(5)
    );
}

#[test]
fn declared_rfc3339_and_epoch_millis_resets() {
    let rfc =
        RateLimitDeclaration::parse(br#"{"reset": "x-window-ends", "reset_format": "rfc3339"}"#)
            .unwrap();
    let refused = headers(&[("x-window-ends", "2026-12-03T16:02:00Z")]);
    assert_eq!(
        wait_from_headers(429, &refused, Some(&rfc), NOW_MS),
        secs(120)
    );
    // No `remaining` declared: only a refusal says the window is spent.
    assert_eq!(wait_from_headers(200, &refused, Some(&rfc), NOW_MS), None);
    let millis =
        RateLimitDeclaration::parse(br#"{"reset": "x-reset-ms", "reset_format": "epoch-millis"}"#)
            .unwrap();
    let refused = headers(&[("x-reset-ms", &(NOW_MS + 2_500).to_string())]);
    assert_eq!(
        wait_from_headers(429, &refused, Some(&millis), NOW_MS),
        Some(Duration::from_millis(2_500))
    );
}

#[test]
fn a_malformed_declaration_is_refused_with_its_reason() {
    let unknown = RateLimitDeclaration::parse(br#"{"reset": "x-r", "resets": "x"}"#).unwrap_err();
    assert!(
        unknown.contains("centralino-rate-limits") && unknown.contains("resets"),
        "{unknown}"
    );
    let format = RateLimitDeclaration::parse(br#"{"reset": "x-r", "reset_format": "fortnights"}"#)
        .unwrap_err();
    assert!(format.contains("fortnights"), "{format}");
    let name = RateLimitDeclaration::parse(br#"{"reset": "x reset"}"#).unwrap_err();
    assert!(
        name.contains("`x reset`") && name.contains("not an HTTP header name"),
        "{name}"
    );
    let no_reset = RateLimitDeclaration::parse(br#"{"remaining": "x-left"}"#).unwrap_err();
    assert!(no_reset.contains("no `reset` header"), "{no_reset}");
}

/// A small deterministic generator, so a failure names the seed that found it.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn number(&mut self) -> String {
        let now = NOW_MS / 1000;
        match self.next() % 16 {
            0 => u64::MAX.to_string(),
            1 => "0".to_string(),
            2 => (now + self.next() % 100_000).to_string(),
            3 => now.saturating_sub(self.next() % 100_000).to_string(),
            4 => i64::MAX.to_string(),
            5 => format!("-{}", self.next() % 1000),
            6 => format!("{}.{}", self.next() % 1000, self.next() % 1000),
            7 => "1e300".to_string(),
            8 => "99999999999999999999999999999999".to_string(),
            9 => format!(" {} ", self.next()),
            10 => String::new(),
            11 => "NaN".to_string(),
            12 => "inf".to_string(),
            13 => format!("9999-12-31T23:59:{:02}Z", self.next() % 61),
            14 => "Fri, 31 Dec 9999 23:59:59 GMT".to_string(),
            _ => self.next().to_string(),
        }
    }
}

#[test]
fn no_rate_limit_header_value_panics_or_holds_a_connector_past_a_day() {
    let declaration =
        RateLimitDeclaration::parse(br#"{"remaining": "x-left", "reset": "x-reset"}"#).unwrap();
    for seed in 1..=20_000u64 {
        let mut g = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let status = [200, 429, 503][(g.next() % 3) as usize];
        let usage = format!(
            r#"{{"{}":[{{"type":"messenger","call_count":{},"total_cputime":{},"total_time":{},"estimated_time_to_regain_access":{}}}]}}"#,
            g.next() % 10_000,
            g.number(),
            g.number(),
            g.number(),
            g.number()
        );
        let all = [
            ("x-rate-limit-remaining", g.number()),
            ("x-rate-limit-reset", g.number()),
            ("x-ratelimit-remaining", g.number()),
            ("x-ratelimit-reset", g.number()),
            ("retry-after", g.number()),
            (
                "ratelimit",
                format!("\"p\";r={};t={}", g.number(), g.number()),
            ),
            (
                "ratelimit-policy",
                format!("\"p\";q={};w={}", g.number(), g.number()),
            ),
            ("ratelimit-remaining", g.number()),
            ("ratelimit-reset", g.number()),
            ("x-left", g.number()),
            ("x-reset", g.number()),
            ("x-business-use-case-usage", usage),
        ];
        let picked: Vec<(&str, &str)> = all
            .iter()
            .filter(|_| !g.next().is_multiple_of(3))
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        let declared = g.next().is_multiple_of(2).then_some(&declaration);
        if let Some(wait) = wait_from_headers(status, &headers(&picked), declared, NOW_MS) {
            assert!(wait <= MAX_RATE_LIMIT_WAIT, "seed {seed}: {wait:?}");
            assert!(wait >= Duration::from_secs(1), "seed {seed}: {wait:?}");
        }
    }
}

#[test]
fn the_attack_values_give_a_bounded_wait() {
    assert_eq!(
        wait(
            200,
            &[
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", "18446744073709551615"),
            ]
        ),
        Some(MAX_RATE_LIMIT_WAIT)
    );
    assert_eq!(
        wait(
            200,
            &[(
                "x-business-use-case-usage",
                r#"{"1":[{"call_count":100,"estimated_time_to_regain_access":18446744073709551615}]}"#,
            )]
        ),
        Some(MAX_RATE_LIMIT_WAIT)
    );
    assert_eq!(
        wait(429, &[("Retry-After", "1e300")]),
        Some(MAX_RATE_LIMIT_WAIT)
    );
    assert_eq!(
        wait(429, &[("RateLimit", "\"p\";r=0;t=99999999999999999999")]),
        Some(MAX_RATE_LIMIT_WAIT)
    );
}

//! `centralino route replay` on the real binary.

use std::fmt::Write as _;
use std::process::Command;

use crate::routing::plugin_dir;

fn replay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["route", "replay", "--plugins"])
        .arg(plugin_dir())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Nine operators over three brands, and 90 TIM conversations a minute apart, each
/// answered after 30 s and resolved after 2 minutes: nobody ever waits.
fn ninety_tim_tweets() -> String {
    let mut events = String::new();
    for (brand, names) in [
        ("tim", ["marco", "giulia", "luca"]),
        ("telecom-italia", ["sara", "paolo", "chiara"]),
        ("impresa-semplice", ["andrea", "francesca", "roberto"]),
    ] {
        for name in names {
            writeln!(
                events,
                r#"{{"type":"operator","at":"2026-03-02T08:00:00Z","id":"{name}","skills":["{brand}"],"languages":["it"],"accounts":["twitter:TIM_{name}"],"capacity":3}}"#
            )
            .unwrap();
        }
    }
    for i in 0..90 {
        writeln!(
            events,
            r#"{{"type":"message","at":"2026-03-02T{:02}:{:02}:00Z","channel":"twitter","account":"TIM_Official","conversation":"tw-{i}","customer":"c{i}","brand":"tim","language":"it","text":"@TIM_Official il modem non va"}}"#,
            9 + i / 60,
            i % 60
        )
        .unwrap();
        writeln!(
            events,
            r#"{{"type":"reply","conversation":"tw-{i}","after_s":30}}"#
        )
        .unwrap();
        writeln!(
            events,
            r#"{{"type":"resolve","conversation":"tw-{i}","after_s":120}}"#
        )
        .unwrap();
    }
    events
}

/// The operator table of each chain block: chain → [(operator, assigned)].
fn distributions(stdout: &str) -> Vec<(String, Vec<(String, u64)>)> {
    let mut blocks: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(chain) = line.strip_prefix("chain: ") {
            blocks.push((chain.to_string(), Vec::new()));
            continue;
        }
        let mut words = line.split_whitespace();
        if let (Some(block), Some(name), Some(count), None) =
            (blocks.last_mut(), words.next(), words.next(), words.next())
            && let Ok(count) = count.parse()
        {
            block.1.push((name.to_string(), count));
        }
    }
    blocks
}

#[test]
fn replay_of_the_same_events_through_two_chains_prints_different_correct_distributions() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("tim.jsonl");
    std::fs::write(&events, ninety_tim_tweets()).unwrap();
    let (code, stdout, stderr) = replay(&[
        "--events",
        events.to_str().unwrap(),
        "--policy",
        "round-robin",
        "--policy",
        "skills > round-robin",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let blocks = distributions(&stdout);
    assert_eq!(blocks.len(), 2, "{stdout}");
    let operators = [
        "marco",
        "giulia",
        "luca",
        "sara",
        "paolo",
        "chiara",
        "andrea",
        "francesca",
        "roberto",
    ];
    // Round-robin ignores the brand: ten each.
    assert_eq!(blocks[0].0, "round-robin");
    let expected: Vec<(String, u64)> = operators.iter().map(|o| (o.to_string(), 10)).collect();
    assert_eq!(blocks[0].1, expected, "{stdout}");
    // With skills first, only the TIM team works: thirty each.
    assert_eq!(blocks[1].0, "skills > round-robin");
    let expected: Vec<(String, u64)> = operators
        .iter()
        .enumerate()
        .map(|(i, o)| (o.to_string(), if i < 3 { 30 } else { 0 }))
        .collect();
    assert_eq!(blocks[1].1, expected, "{stdout}");
    // Nobody waited and every first response came within 30 s.
    for block in stdout.split("chain: ").skip(1) {
        assert!(
            block.contains("conversations          90 (90 assigned, 0 never)"),
            "{block}"
        );
        assert!(
            block.contains("wait p50 / p95 / max   0 s / 0 s / 0 s"),
            "{block}"
        );
        assert!(
            block.contains("first-response SLA     0 missed of 90 (15 min)"),
            "{block}"
        );
    }
}

#[test]
fn replay_counts_waits_and_sla_misses_when_seats_run_out() {
    // One operator with one seat, three customers at 09:00; each conversation takes
    // 20 minutes, answered after 1 minute. The second waits 20 min, the third 40 min.
    let mut events = String::from(
        r#"{"type":"operator","at":"2026-03-02T08:00:00Z","id":"solo","capacity":1}
"#,
    );
    for i in 0..3 {
        writeln!(
            events,
            r#"{{"type":"message","at":"2026-03-02T09:00:00Z","channel":"twitter","account":"TIM_Official","conversation":"t{i}","customer":"c{i}","text":"ciao"}}
{{"type":"reply","conversation":"t{i}","after_s":60}}
{{"type":"resolve","conversation":"t{i}","after_s":1200}}"#
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solo.jsonl");
    std::fs::write(&path, events).unwrap();
    let (code, stdout, stderr) = replay(&[
        "--events",
        path.to_str().unwrap(),
        "--policy",
        "least-loaded",
        "--sla-minutes",
        "15",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let reports: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let report = &reports[0];
    assert_eq!(report["assignments"][0]["assigned"], 3);
    assert_eq!(report["wait_p50_ms"], 20 * 60_000);
    assert_eq!(report["wait_max_ms"], 40 * 60_000);
    // First responses at 1, 21 and 41 minutes: two misses of a 15-minute SLA.
    assert_eq!(report["sla_missed"], 2);
    assert_eq!(report["queue_peak"], 2);
}

#[test]
fn replay_of_the_example_telecom_day_compares_two_chains() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/replay/telecom-day.jsonl");
    let (code, stdout, stderr) = replay(&[
        "--events",
        events.to_str().unwrap(),
        "--policy",
        "round-robin",
        "--policy",
        "priority > sticky > skills > least-loaded",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let reports: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    let counts = |report: &serde_json::Value| -> Vec<u64> {
        report["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["assigned"].as_u64().unwrap())
            .collect()
    };
    for report in reports {
        assert_eq!(counts(report).len(), 9);
        assert_eq!(report["never_assigned"], 0, "{report}");
        assert_eq!(report["stage_failures"], 0);
        // Every conversation was assigned at least once.
        let total: u64 = counts(report).iter().sum();
        assert!(total >= report["conversations"].as_u64().unwrap());
    }
    // The outage burst is TIM's: the brand-aware chain piles it on the TIM team, the
    // rotation spreads it over everyone.
    let rotation = counts(&reports[0]);
    let aware = counts(&reports[1]);
    assert!(
        rotation.iter().max().unwrap() - rotation.iter().min().unwrap() <= 2,
        "{rotation:?}"
    );
    let tim: u64 = aware[..3].iter().sum();
    assert!(tim > aware[3..].iter().sum::<u64>(), "{aware:?}");
}

#[test]
fn replay_reports_a_bad_events_line_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"type\":\"operator\",\"at\":1,\"id\":\"a\",\"capacity\":1}\n{\"type\":\"mesage\",\"at\":2}\n",
    )
    .unwrap();
    let (code, _, stderr) = replay(&[
        "--events",
        path.to_str().unwrap(),
        "--policy",
        "round-robin",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("bad.jsonl:2: unknown type `mesage`"),
        "{stderr}"
    );
    std::fs::write(
        &path,
        "{\"type\":\"operator\",\"at\":1,\"id\":\"a\",\"capacity\":1}\n",
    )
    .unwrap();
    let (code, _, stderr) = replay(&[
        "--events",
        path.to_str().unwrap(),
        "--policy",
        "round-robin > (",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "routing chain `round-robin > (`: stage `(` opens `(` but does not end with `)`"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = replay(&[
        "--events",
        path.to_str().unwrap(),
        "--policy",
        "skills > no-such-policy",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no-such-policy.wasm"), "{stderr}");
}

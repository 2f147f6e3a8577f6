//! The README's demo command runs the telecom scenario end to end and ends by itself.

use std::process::Command;

use crate::component;

#[test]
fn the_telecom_demo_answers_every_customer_and_ends_by_itself() {
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args([
            "demo",
            "--customers",
            "30",
            "--max-seconds",
            "60",
            "--plugins",
        ])
        .arg(&plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every customer got a conversation, and every conversation was answered and closed.
    assert!(
        stdout.contains("conversations              30 (30 resolved)"),
        "{stdout}"
    );
    for channel in [
        "twitter mention",
        "twitter private message",
        "facebook private message",
        "facebook comment",
    ] {
        assert!(
            stdout.contains(channel),
            "{channel} missing from:\n{stdout}"
        );
    }
    // Every public mention was answered in public, from the operator's own account.
    let count = |prefix: &str, field: usize| -> u32 {
        let line = stdout.lines().find(|l| l.trim_start().starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"));
        line.split_whitespace().nth(field).unwrap().parse().unwrap()
    };
    let mentions = count("twitter mention", 2);
    let tweets = count("replies sent", 2);
    assert!(mentions > 0, "{stdout}");
    assert_eq!(tweets, mentions, "{stdout}");
    // And no reply was refused on the way (X refuses the same text twice from one account).
    assert!(!stderr.contains("reply not sent"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

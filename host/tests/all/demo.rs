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
    // Public answers went out from the operators' own accounts.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("replies sent"))
        .unwrap();
    let tweets: u32 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(tweets > 0, "{line}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

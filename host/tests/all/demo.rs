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

#[test]
fn the_demo_with_its_console_keeps_the_host_running_for_a_browser_until_ctrl_c() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let port = crate::support::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args([
            "demo",
            "--customers",
            "30",
            "--max-seconds",
            "60",
            "--console",
        ])
        .args([
            "--console-listen",
            &format!("127.0.0.1:{port}"),
            "--plugins",
        ])
        .arg(&plugins)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // The report comes, then the host stays up with the console's URL and token.
    let started = Instant::now();
    let mut printed = Vec::new();
    let token = loop {
        let line = seen
            .recv_timeout(Duration::from_secs(120).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("the demo never said it keeps running:\n{printed:?}"));
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("and log in with the admin token ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let printed = printed.join("\n");
    assert!(
        printed.contains(&format!("console on http://127.0.0.1:{port}/console")),
        "{printed}"
    );
    assert!(
        printed.contains("conversations              30 (30 resolved)"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "the host keeps running with the demo's data: open http://127.0.0.1:{port}/console"
        )),
        "{printed}"
    );

    // The console answers, with the demo's data, to that token.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let console = format!("http://127.0.0.1:{port}/console");
        let login = http.get(format!("{console}/login")).send().await.unwrap();
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                let v = v.to_str().ok()?;
                v.starts_with("centralino_login=")
                    .then(|| v.split(';').next().unwrap().to_string())
            })
            .unwrap();
        let html = login.text().await.unwrap();
        let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        let csrf = html[at..].split('"').next().unwrap().to_string();
        let answer = http
            .post(format!("{console}/login"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303);
        let session = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                let v = v.to_str().ok()?;
                v.starts_with("centralino_console=")
                    .then(|| v.split(';').next().unwrap().to_string())
            })
            .unwrap();
        let overview = http
            .get(format!("{console}/overview"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The demo's conversations were answered: the chart has points, messages went
        // both ways on both channels.
        assert!(
            overview.contains("id=\"first-response-chart\""),
            "{overview}"
        );
        assert!(
            overview.contains("id=\"messages-default-twitter\""),
            "{overview}"
        );
        assert!(
            overview.contains("id=\"messages-default-facebook\""),
            "{overview}"
        );
        let operators = http
            .get(format!("{console}/operators"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            operators.contains("id=\"operator-default-marco\""),
            "{operators}"
        );
    });

    // Ctrl-C stops it.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the demo did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

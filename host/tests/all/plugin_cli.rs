//! `centralino plugin webhook` and `plugin poll`: replay a captured delivery, or poll once,
//! through a plugin with an admin's config, from the command line.

use std::path::Path;
use std::process::Command;

use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_signature};
use centralino_emulators::x::NewTweet;

use crate::component;

const SECRET: &str = "cli-consumer-secret";

fn write_config(dir: &Path) -> std::path::PathBuf {
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let config = dir.join("centralino.toml");
    std::fs::write(
        &config,
        format!(
            r#"[host]
plugin_dir = "{}"

[[connectors]]
name = "twitter"
plugin = "twitter"
allowed_hosts = ["api.x.com"]
secrets = {{ consumer_secret = "env:CLI_X_SECRET" }}

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
brand = "tim"
credential = "env:CLI_X_TOKEN"
"#,
            plugins.display()
        ),
    )
    .unwrap();
    config
}

fn centralino(args: &[&str]) -> (i32, String, String) {
    crate::support::centralino_with_env(
        args,
        &[("CLI_X_SECRET", SECRET), ("CLI_X_TOKEN", "token-tim")],
    )
}

#[test]
fn plugin_webhook_replays_a_signed_delivery_and_prints_the_messages() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        "1860000000000000042",
        ("42", "mario", "Mario"),
        "@TIM_Official il modem &amp; la fibra",
        None,
    ))
    .unwrap();
    let body_file = dir.path().join("delivery.json");
    std::fs::write(&body_file, &body).unwrap();
    let plugin = component("twitter");
    let signature = format!(
        "x-twitter-webhooks-signature: {}",
        twitter_signature(SECRET, &body)
    );
    let args = [
        "plugin",
        "webhook",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--header",
        &signature,
        "--body",
        body_file.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = centralino(&args);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["plugin"], "twitter@0.1.0");
    assert_eq!(json["response"]["status"], 200);
    assert_eq!(json["messages"][0]["external_id"], "1860000000000000042");
    assert_eq!(
        json["messages"][0]["text"],
        "@TIM_Official il modem & la fibra"
    );
    assert_eq!(json["messages"][0]["kind"], "public-post");

    // One tampered byte: refused, nothing normalised.
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    std::fs::write(&body_file, &tampered).unwrap();
    let (code, stdout, stderr) = centralino(&args);
    assert_eq!(code, 3, "a refused delivery exits 3: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 403);
    assert_eq!(json["messages"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn plugin_poll_fetches_from_a_base_url_and_prints_the_cursor() {
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("42", "mario", "Mario Rossi", "token-mario");
    let tweet = x.post_tweet(NewTweet::new("42", "@TIM_Official la linea non va"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let plugin = component("twitter");
    let base = format!("api_base={}", x.base_url());
    let args = vec![
        "plugin".to_string(),
        "poll".to_string(),
        plugin.display().to_string(),
        "--config".to_string(),
        config.display().to_string(),
        "--account".to_string(),
        "1001".to_string(),
        "--setting".to_string(),
        base,
        "--allow-host".to_string(),
        x.authority(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        centralino(&args)
    })
    .await
    .unwrap();
    let (code, stdout, stderr) = out;
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["messages"][0]["external_id"], tweet.id.as_str());
    assert_eq!(json["messages"][0]["author"]["handle"], "mario");
    assert!(
        json["cursor"].as_str().unwrap().contains(&tweet.id),
        "{stdout}"
    );
    // The host attached the account's token; the plugin only named it.
    assert!(
        x.requests()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer token-tim"))
    );
}

#[test]
fn plugin_webhook_names_the_connectors_when_it_cannot_pick_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let plugin = component("twitter");
    let (code, _stdout, stderr) = centralino(&[
        "plugin",
        "webhook",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--connector",
        "facebook",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("tenant `default` has no connector `facebook` (it has: twitter)"),
        "{stderr}"
    );
}

/// A config with an X and a Facebook connector, each with its secrets in the environment.
fn write_two_connectors(dir: &Path) -> std::path::PathBuf {
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let config = dir.join("centralino.toml");
    std::fs::write(
        &config,
        format!(
            r#"[host]
plugin_dir = "{}"

[[connectors]]
name = "twitter"
plugin = "twitter"
allowed_hosts = ["api.x.com"]
secrets = {{ consumer_secret = "env:CLI_X_SECRET" }}

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
credential = "env:CLI_X_TOKEN"

[[connectors]]
name = "facebook"
plugin = "facebook"
allowed_hosts = ["graph.facebook.com"]
secrets = {{ app_secret = "env:CLI_FB_SECRET", verify_token = "env:CLI_FB_VERIFY" }}

[[connectors.accounts]]
id = "5001"
handle = "TIM"
credential = "env:CLI_FB_TOKEN"
"#,
            plugins.display()
        ),
    )
    .unwrap();
    config
}

/// Runs the CLI with exactly `env` (besides PATH-like basics), stderr not a terminal.
fn centralino_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_centralino"));
    command.args(args);
    for name in [
        "CLI_X_SECRET",
        "CLI_X_TOKEN",
        "CLI_FB_SECRET",
        "CLI_FB_VERIFY",
        "CLI_FB_TOKEN",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_webhook_signs_a_capture_with_the_connectors_secret_and_needs_only_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_two_connectors(dir.path());
    let body_file = dir.path().join("delivery.json");
    let x_only = [("CLI_X_SECRET", SECRET), ("CLI_X_TOKEN", "token-tim")];

    // X: an unsigned capture, signed by the host with the consumer secret (base64). Only
    // the X connector's secrets are set: Facebook's are not needed to debug X.
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        "1860000000000000042",
        ("42", "mario", "Mario"),
        "@TIM_Official la fibra",
        None,
    ))
    .unwrap();
    std::fs::write(&body_file, &body).unwrap();
    let twitter = component("twitter");
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "plugin",
            "webhook",
            twitter.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--body",
            body_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        centralino_with(&args, env)
    };
    let (code, stdout, stderr) = run(&["--sign"], &x_only);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 200);
    assert_eq!(json["messages"][0]["external_id"], "1860000000000000042");
    // Unsigned: the plugin refuses, the command exits 3.
    let (code, stdout, _) = run(&[], &x_only);
    assert_eq!(code, 3);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 401);
    // A stale signature header from the capture: refused (403, exit 3) as it is, replaced
    // by the right one with --sign.
    let stale = "x-twitter-webhooks-signature: sha256=c3RhbGU=";
    let (code, stdout, _) = run(&["--header", stale], &x_only);
    assert_eq!(code, 3);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 403);
    let (code, stdout, stderr) = run(&["--header", stale, "--sign"], &x_only);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 200);
    // The connector's own secret missing is still an error naming it (exit 1).
    let (code, _, stderr) = run(&["--sign"], &[("CLI_X_TOKEN", "token-tim")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("CLI_X_SECRET"), "{stderr}");

    // Meta: signed with the app secret (hex); X's secrets are not needed.
    let delivery = centralino_emulators::webhooks::messenger_text(
        "5001",
        "7001",
        "m_abc",
        "buongiorno",
        1_795_856_400_000,
    );
    std::fs::write(&body_file, serde_json::to_vec(&delivery).unwrap()).unwrap();
    let facebook = component("facebook");
    let (code, stdout, stderr) = centralino_with(
        &[
            "plugin",
            "webhook",
            facebook.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--body",
            body_file.to_str().unwrap(),
            "--sign",
        ],
        &[
            ("CLI_FB_SECRET", "fb-app-secret"),
            ("CLI_FB_VERIFY", "verify-me"),
            ("CLI_FB_TOKEN", "page-token"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["response"]["status"], 200);
    assert_eq!(json["messages"][0]["text"], "buongiorno");
}

#[test]
fn plugin_webhook_sums_up_what_the_plugin_ignored_and_writes_no_colour_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let body_file = dir.path().join("delivery.json");
    // X's documented typing indicator, for the account served.
    let mut typing: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../tests/fixtures/twitter/account_activity/xdocs_direct_message_indicate_typing_events.json",
        ))
        .unwrap(),
    )
    .unwrap();
    typing["for_user_id"] = serde_json::json!("1001");
    std::fs::write(&body_file, serde_json::to_vec(&typing).unwrap()).unwrap();
    let twitter = component("twitter");
    let args = [
        "plugin",
        "webhook",
        twitter.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--body",
        body_file.to_str().unwrap(),
        "--sign",
    ];
    let env = [("CLI_X_SECRET", SECRET), ("CLI_X_TOKEN", "token-tim")];
    let (code, stdout, stderr) = centralino_with(&args, &env);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["messages"].as_array().unwrap().len(), 0);
    assert_eq!(
        json["ignored"],
        serde_json::json!({ "direct_message_indicate_typing_events": 1 })
    );
    assert!(
        stderr.contains("ignored on purpose: 1 direct_message_indicate_typing_events"),
        "{stderr}"
    );

    // A signed body that is not JSON: the plugin warns (a log line on stderr) and refuses.
    std::fs::write(&body_file, b"{not json").unwrap();
    for env in [
        env.to_vec(),
        [env.as_slice(), &[("NO_COLOR", "1")]].concat(),
    ] {
        let (code, _, stderr) = centralino_with(&args, &env);
        assert_eq!(code, 3, "{stderr}");
        assert!(stderr.contains("WARN"), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "colour codes off a terminal: {stderr:?}"
        );
    }
}

#[test]
fn plugin_poll_exits_4_when_the_platform_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let twitter = component("twitter");
    // Nothing listens on port 9 of loopback (discard is not served).
    let (code, stdout, stderr) = centralino_with(
        &[
            "plugin",
            "poll",
            twitter.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--account",
            "1001",
            "--setting",
            "api_base=http://127.0.0.1:9",
            "--allow-host",
            "127.0.0.1:9",
        ],
        &[("CLI_X_SECRET", SECRET), ("CLI_X_TOKEN", "token-tim")],
    );
    assert_eq!(code, 4, "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("twitter@0.1.0"),
        "{stdout}"
    );
}

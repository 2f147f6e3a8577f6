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
    let out = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(args)
        .env("CLI_X_SECRET", SECRET)
        .env("CLI_X_TOKEN", "token-tim")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
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
    assert_eq!(code, 0, "{stderr}");
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

//! The admin API and the admin CLI: calls without or with a wrong token are refused, the
//! probes answer without one, an admin API without a token never listens beyond
//! loopback; `centralino run` serves the REST API and the admin API from a
//! centralino.toml, and `centralino status|connectors|agents` talk to it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use centralino::api::{AdminApi, check_exposure};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::api::{ACME, ADMIN, Answer, Sidecar};
use crate::support::{eventually, eventually_within, free_port, free_ports};

impl Sidecar {
    async fn admin_call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        self.raw(self.admin, method, path, &headers, body).await
    }
}

#[tokio::test]
async fn admin_calls_without_or_with_a_wrong_token_are_refused() {
    let sidecar = Sidecar::start().await;
    let presence = r#"{"presence": "online"}"#;
    let calls = [
        ("GET", "/status", None),
        ("GET", "/connectors", None),
        ("POST", "/connectors/acme/echo/reset", None),
        ("POST", "/connectors/acme/echo/reload", None),
        ("POST", "/connectors/reload", None),
        ("POST", "/connectors/acme/echo/disable", None),
        ("POST", "/connectors/acme/echo/enable", None),
        ("POST", "/operators/acme/marco/presence", Some(presence)),
        ("GET", "/metrics", None),
    ];
    for (method, path, body) in calls {
        for (token, why) in [
            (None, "no token"),
            (Some("token-admi"), "a wrong token"),
            (Some(ACME), "a tenant's API token"),
        ] {
            let answer = sidecar.admin_call(token, method, path, body).await;
            assert_eq!(
                (answer.status, answer.code()),
                (401, "unauthorized"),
                "{method} {path} with {why}: {}",
                answer.text
            );
        }
        let answer = sidecar.admin_call(Some(ADMIN), method, path, body).await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text);
    }
    // Probes need no token.
    let health = sidecar.admin_call(None, "GET", "/healthz", None).await;
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
    let ready = sidecar.admin_call(None, "GET", "/readyz", None).await;
    assert_eq!(
        (ready.status, &ready.body),
        (200, &json!({ "status": "ready" }))
    );
    let public_ready = sidecar
        .raw(sidecar.public, "GET", "/readyz", &[], None)
        .await;
    assert_eq!(public_ready.status, 200);
    let public_health = sidecar
        .raw(sidecar.public, "GET", "/healthz", &[], None)
        .await;
    assert_eq!(public_health.status, 200);
    // The admin routes are not on the public listener.
    let status = sidecar
        .raw(
            sidecar.public,
            "GET",
            "/status",
            &[("authorization", &format!("Bearer {ADMIN}"))],
            None,
        )
        .await;
    assert_eq!(status.status, 404);
}

#[tokio::test]
async fn status_connectors_reset_and_presence_through_the_admin_api() {
    let sidecar = Sidecar::start().await;
    assert_eq!(sidecar.deliver("globex", "mario: ciao").await, 200);
    let status = sidecar
        .admin_call(Some(ADMIN), "GET", "/status", None)
        .await;
    assert_eq!(status.body["ready"], true, "{}", status.text);
    assert_eq!(status.body["queue_depth"], 0);
    let tenants: Vec<&str> = status.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme", "globex"]);
    let globex = &status.body["tenants"][1]["routing"];
    assert_eq!(globex["operators"]["online"], 2);
    assert_eq!(globex["stats"]["assignments"], 1);
    assert_eq!(
        status.body["tenants"][0]["routing"]["stats"]["assignments"],
        0
    );
    let connectors = sidecar
        .admin_call(Some(ADMIN), "GET", "/connectors", None)
        .await;
    let names: Vec<(String, String, String)> = connectors.body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["tenant"].as_str().unwrap().to_string(),
                c["connector"].as_str().unwrap().to_string(),
                c["circuit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let closed = |tenant: &str| (tenant.to_string(), "echo".to_string(), "closed".to_string());
    assert_eq!(names, [closed("acme"), closed("globex")]);

    let reset = sidecar
        .admin_call(Some(ADMIN), "POST", "/connectors/acme/echo/reset", None)
        .await;
    assert_eq!(
        (reset.status, &reset.body["circuit"]),
        (200, &json!("closed"))
    );
    let missing = sidecar
        .admin_call(Some(ADMIN), "POST", "/connectors/acme/twitter/reset", None)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "connector_not_found")
    );

    let away = r#"{"presence": "away"}"#;
    let set = sidecar
        .admin_call(
            Some(ADMIN),
            "POST",
            "/operators/acme/giulia/presence",
            Some(away),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body["presence"], "away");
    let operators = sidecar
        .get(ACME, "/api/v1/operators", "/api/v1/operators")
        .await;
    let giulia = operators.body["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "giulia")
        .unwrap()
        .clone();
    assert_eq!(giulia["presence"], "away");
    let status = sidecar
        .admin_call(Some(ADMIN), "GET", "/status", None)
        .await;
    assert_eq!(status.body["tenants"][0]["routing"]["operators"]["away"], 1);
    assert_eq!(status.body["tenants"][1]["routing"]["operators"]["away"], 0);

    for (path, body, code) in [
        (
            "/operators/initech/marco/presence",
            away,
            "tenant_not_found",
        ),
        (
            "/operators/acme/mallory/presence",
            away,
            "operator_not_found",
        ),
        (
            "/operators/acme/marco/presence",
            r#"{"presence": "busy"}"#,
            "invalid_request",
        ),
        ("/operators/acme/marco/presence", "{", "malformed_json"),
    ] {
        let answer = sidecar
            .admin_call(Some(ADMIN), "POST", path, Some(body))
            .await;
        assert_eq!(answer.code(), code, "{path} {body}: {}", answer.text);
    }
}

#[tokio::test]
async fn an_admin_api_without_a_token_listens_on_loopback_only() {
    let public: SocketAddr = "0.0.0.0:8081".parse().unwrap();
    let loopback: SocketAddr = "127.0.0.1:8081".parse().unwrap();
    let refusal = check_exposure(public, false).unwrap_err().to_string();
    assert!(refusal.contains("0.0.0.0:8081"), "{refusal}");
    assert!(refusal.contains("admin_token"), "{refusal}");
    assert!(check_exposure(public, true).is_ok());
    assert!(check_exposure(loopback, false).is_ok());

    // Bound anyway: serving refuses before answering anything.
    let sidecar = Sidecar::start().await;
    let open = AdminApi::new(sidecar.host.clone(), None);
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), open.serve(listener))
        .await
        .expect("refused at once");
    assert_eq!(
        served.unwrap_err().kind(),
        std::io::ErrorKind::PermissionDenied
    );

    // On loopback, no token is needed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { open.serve(listener).await });
    let answer = sidecar.raw(address, "GET", "/status", &[], None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    server.abort();
}

/// A `centralino run` child process, killed when dropped.
struct Running {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The loopback address with `port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

const RUN_ADMIN_TOKEN: &str = "run-admin-token";
const RUN_API_TOKEN: &str = "run-api-token";

async fn run_host(dir: &Path) -> Running {
    let [public, admin] = free_ports().map(loopback);
    let plugins = crate::component("echo-channel")
        .parent()
        .unwrap()
        .to_path_buf();
    let config = format!(
        r#"[host]
store = "sqlite::memory:"
listen = "{public}"
admin_listen = "{admin}"
admin_token = "env:TEST_ADMIN_TOKEN"
plugin_dir = {plugins}

[[tenants]]
id = "acme"
api_token = "env:TEST_ACME_API_TOKEN"

[[tenants.connectors]]
name = "echo"
plugin = "echo-channel"

[[tenants.connectors.accounts]]
id = "support"

[[tenants.operators]]
id = "marco"
capacity = 2
"#,
        plugins = toml_string(&plugins.display().to_string()),
    );
    let path = dir.join("centralino.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env("TEST_ADMIN_TOKEN", RUN_ADMIN_TOKEN)
        .env("TEST_ACME_API_TOKEN", RUN_API_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running {
        child,
        public,
        admin,
    };
    let client = reqwest::Client::new();
    eventually_within(
        Duration::from_secs(180),
        "centralino run to become ready",
        async || {
            if let Some(status) = running.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = running.child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
                }
                panic!("centralino run exited ({status}):\n{stderr}");
            }
            client
                .get(format!("http://{admin}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    running
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs the `centralino` binary off the async threads, with or without the admin token.
async fn cli(args: &[&str], token: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_centralino"));
        command
            .args(&args)
            .env_remove("CENTRALINO_ADMIN_TOKEN")
            .env_remove("CENTRALINO_ADMIN_URL");
        if let Some(token) = token {
            command.env("CENTRALINO_ADMIN_TOKEN", token);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn get(address: SocketAddr, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centralino_run_serves_both_apis_and_the_cli_talks_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = run_host(dir.path()).await;
    let admin_url = format!("http://{}", host.admin);

    // The REST API, with the tenant's token from the config.
    let conversations = "/api/v1/conversations";
    assert_eq!(get(host.public, conversations, None).await.0, 401);
    let (status, list) = get(host.public, conversations, Some(RUN_API_TOKEN)).await;
    assert_eq!((status, &list["conversations"]), (200, &json!([])));
    let delivered = reqwest::Client::new()
        .post(format!("http://{}/tenants/acme/webhooks/echo", host.public))
        .body("mario: il modem non va")
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    let (_, list) = get(host.public, conversations, Some(RUN_API_TOKEN)).await;
    assert_eq!(
        list["conversations"][0]["status"], "waiting",
        "operators start offline"
    );

    // The admin API, with the admin token.
    assert_eq!(get(host.admin, "/status", None).await.0, 401);
    assert_eq!(get(host.admin, "/status", Some(RUN_API_TOKEN)).await.0, 401);
    let (status, body) = get(host.admin, "/status", Some(RUN_ADMIN_TOKEN)).await;
    assert_eq!((status, &body["queue_depth"]), (200, &json!(1)));
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", host.admin))
        .bearer_auth(RUN_ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(
        "centralino_messages_received_total{tenant=\"acme\",connector=\"echo\",account=\"support\"} 1\n"
    ));

    // The CLI: readable by default, JSON for scripts.
    let token = Some(RUN_ADMIN_TOKEN);
    let out = cli(&["status", "--admin", &admin_url], token).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": ready"), "{text}");
    assert!(text.contains("acme"), "{text}");
    assert!(text.contains("echo-channel@0.1.0"), "{text}");
    let out = cli(
        &["connectors", "list", "--admin", &admin_url, "--json"],
        token,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["connectors"][0]["tenant"], "acme");
    assert_eq!(json["connectors"][0]["circuit"], "closed");
    let out = cli(
        &[
            "connectors",
            "reset",
            "echo",
            "--tenant",
            "acme",
            "--admin",
            &admin_url,
        ],
        token,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("circuit closed"), "{}", stdout(&out));
    // Reload, disable and enable a connector; reload the config (the file is unchanged).
    let out = cli(
        &[
            "connectors",
            "reload",
            "echo",
            "--tenant",
            "acme",
            "--admin",
            &admin_url,
        ],
        token,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acme/echo: swapped echo-channel@0.1.0 → echo-channel@0.1.0"),
        "{}",
        stdout(&out)
    );
    for (action, said) in [
        ("disable", "disabled: webhooks get 503"),
        ("enable", "enabled:"),
    ] {
        let out = cli(
            &[
                "connectors",
                action,
                "echo",
                "--tenant",
                "acme",
                "--admin",
                &admin_url,
            ],
            token,
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(said), "{}", stdout(&out));
    }
    let out = cli(&["reload", "--admin", &admin_url, "--json"], token).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["connectors"], serde_json::json!([]), "{json}");
    let out = cli(
        &[
            "agents", "presence", "marco", "online", "--tenant", "acme", "--admin", &admin_url,
        ],
        token,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("is now online"), "{}", stdout(&out));
    // Marco coming online drains the queue.
    eventually("the waiting conversation to be assigned", async || {
        let (_, list) = get(host.public, conversations, Some(RUN_API_TOKEN)).await;
        list["conversations"][0]["assignee"] == "marco"
    })
    .await;

    // Refusals say what to do.
    let out = cli(&["status", "--admin", &admin_url], None).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("set CENTRALINO_ADMIN_TOKEN"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["status", "--admin", &admin_url], Some("wrong")).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    let out = cli(
        &[
            "agents", "presence", "mallory", "away", "--tenant", "acme", "--admin", &admin_url,
        ],
        token,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no operator `mallory`"),
        "{}",
        stderr(&out)
    );
    let nowhere = format!("http://{}", loopback(free_port()));
    let out = cli(&["status", "--admin", &nowhere], token).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the admin API"),
        "{}",
        stderr(&out)
    );
}

//! `cargo xtask schemathesis`: the REST API tested as an outside client meets it.
//!
//! Installs a pinned schemathesis from PyPI into `target/schemathesis-venv` (reused when
//! that version is already there), starts the real `centralino run` on loopback with
//! `tests/schemathesis/centralino.toml.tmpl` (one tenant with a token, three operators, a
//! Telegram bot), feeds the bot's webhook with customers' messages and has the operators
//! answer what routing gave them, so there are conversations to read, answer, transfer
//! and resolve, and runs `schemathesis run` with every check and the coverage, fuzzing
//! and stateful phases against the checked-in `docs/openapi.json`. Any failure fails the
//! task. The host's log goes to
//! `target/schemathesis/centralino.log`, schemathesis's JUnit report and event log beside
//! it.
//!
//! Replies the fuzzer queues go out through the outbox to a Bot API stand-in served here
//! (it answers every `sendMessage` with a new message id), so replies reach `sent` as
//! they would in production.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{output, root, run, step};

/// The schemathesis release the task installs and runs. The CLI changed between 3.x and
/// 4.x (phases, `--checks all`): bump it on purpose, reading its changelog.
const VERSION: &str = "4.32.5";

/// Test cases generated per API operation by the fuzzing phase, and the stateful phase's
/// budget of scenarios (the coverage phase derives its cases from the schema and does not
/// use it). With the operations of the document: about 5,700 requests in all with the
/// fixed seed (2026-12-05: coverage 725, fuzzing 2,577, stateful 2,385), two minutes on two
/// cores.
const MAX_EXAMPLES: u32 = 150;
/// Steps of one stateful scenario (sequences of calls joined by the document's links).
const MAX_STEPS: u32 = 20;
/// Longest the run may take before the task stops it and fails: a hang, not a budget.
/// (schemathesis's own `--max-time` is a budget that fuzzing and stateful testing repeat
/// to fill, so it would make every run last that long.)
const WATCHDOG: Duration = Duration::from_secs(600);
/// A fixed seed, so a failure seen once is seen again (`CENTRALINO_SCHEMATHESIS_SEED`
/// overrides it, to explore further).
const SEED: u64 = 20_261_203;

/// The tenant's REST API token, the bot's token and its webhook secret: test values,
/// given to the host through its environment as a deployment would.
const API_TOKEN: &str = "schemathesis-acme-token";
const BOT_TOKEN: &str = "7001:schemathesis-bot-token";
const WEBHOOK_SECRET: &str = "schemathesis-webhook-secret";

/// schemathesis's configuration, beside the command line. Every check runs (`--checks
/// all`); what is tuned here, and why:
///
/// - `positive_data_acceptance` wants schema-valid requests answered 2xx; it also takes
///   `401`, `404` and `409` by default (a drawn id rarely exists; a conversation may be
///   resolved or held by someone else). Added: `422`, which the API answers
///   (`unknown_operator`) when a reply's `operator` or a transfer's `to` names no
///   operator of the tenant: an operator id is data in the tenant's config, which no
///   schema can list. Left out of its defaults: `3xx`, `403`, `429` and `5xx`, which
///   this API never gives (a 5xx also fails `not_a_server_error`).
/// - Half the time a reply's `operator` and a transfer's `to` are drawn from the
///   fixture's operators (a dictionary), the other half generated: without it nearly
///   every reply and transfer would stop at `422`, and the paths past it (queued,
///   `not_assignee`, `operator_at_capacity`, then `GET /api/v1/replies/{id}`) would go
///   untested.
/// - The examples database and the crash cache are off, so every run starts from the
///   seed alone, what one run found does not silently steer the next, and nothing is
///   written outside `target/` (a failure's `curl` line reproduces it).
const CONFIG: &str = r#"# Written by `cargo xtask schemathesis` (xtask/src/schemathesis.rs says why).
[generation]
database = "none"

[cache]
enabled = false

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "404", "409", "422"]

[dictionaries.operators]
values = @OPERATORS@

[parameters]
"body.operator" = { dictionary = "operators", probability = 0.5 }
"body.to" = { dictionary = "operators", probability = 0.5 }
"#;

/// Runs schemathesis against a real host (the plugins and `target/debug/centralino` are
/// built already: by the caller, who knows which build shares the most with its others).
pub(crate) fn run_against_host() -> anyhow::Result<()> {
    let root = root();
    let started = Instant::now();
    let venv = ensure_installed(&root)?;
    let dir = root.join("target").join("schemathesis");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let bot_api = BotApi::start()?;
    let (listen, admin) = free_ports()?;
    let template_path = root.join("tests/schemathesis/centralino.toml.tmpl");
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let config = template
        .replace("@LISTEN@", &listen.to_string())
        .replace("@ADMIN_LISTEN@", &admin.to_string())
        .replace("@BOT_API_AUTHORITY@", &bot_api.address.to_string())
        .replace("@BOT_API@", &format!("http://{}", bot_api.address));
    let config_path = dir.join("centralino.toml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;

    let log_path = dir.join("centralino.log");
    step(&format!(
        "starting `centralino run` on http://{listen} (log: {})",
        log_path.display()
    ));
    let mut host = Host::start(&root, &config_path, &log_path)?;
    host.wait_ready(admin, &log_path)?;
    let conversations = seed(listen)?;
    let answered = answer_assigned(listen)?;
    step(&format!(
        "{conversations} customers wrote to the tenant's Telegram bot through its webhook; \
         the operators answered the {answered} conversations routing gave them"
    ));

    let seed = std::env::var("CENTRALINO_SCHEMATHESIS_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(SEED);
    let config_file = dir.join("schemathesis.toml");
    let operators: Vec<String> = OPERATORS.iter().map(|o| format!("\"{o}\"")).collect();
    let config_text = format!(
        "{}\n[phases.stateful]\nmax-steps = {MAX_STEPS}\n",
        CONFIG.replace("@OPERATORS@", &format!("[{}]", operators.join(", ")))
    );
    std::fs::write(&config_file, config_text)
        .with_context(|| format!("writing {}", config_file.display()))?;
    step(&format!(
        "running schemathesis {VERSION} against docs/openapi.json: every check; coverage, \
         fuzzing ({MAX_EXAMPLES} cases per operation) and stateful ({MAX_STEPS} steps per \
         scenario) phases; seed {seed}"
    ));
    let tested = Instant::now();
    let events = dir.join("events.ndjson");
    let mut schemathesis = Command::new(venv.join("bin").join("schemathesis"))
        .arg("--config-file")
        .arg(&config_file)
        .args(["run", "docs/openapi.json"])
        .args(["--url", &format!("http://{listen}")])
        .args(["--header", &format!("Authorization: Bearer {API_TOKEN}")])
        .args(["--checks", "all"])
        .args(["--phases", "coverage,fuzzing,stateful"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &seed.to_string()])
        // One worker: with two, hypothesis's `ast.parse` of its own filters in concurrent
        // threads trips CPython 3.11's "AST constructor recursion depth mismatch"
        // (python/cpython#106905) and the run reports errors that are not the API's.
        .args(["--workers", "1"])
        .args(["--report", "junit,ndjson"])
        .arg("--report-junit-path")
        .arg(dir.join("junit.xml"))
        .arg("--report-ndjson-path")
        .arg(&events)
        .arg("--no-color")
        // Show requests whole (the token is a test value): a failure's `curl` line then
        // reproduces it, `Idempotency-Key` included.
        .args(["--output-sanitize", "false"])
        .current_dir(&root)
        .spawn()
        .context("could not start schemathesis")?;
    let status = loop {
        if let Some(status) = schemathesis.try_wait()? {
            break status;
        }
        if tested.elapsed() > WATCHDOG {
            let _ = schemathesis.kill();
            let _ = schemathesis.wait();
            bail!(
                "schemathesis was still running after {} s: stopped (a hang in the host? \
                 its log is {})",
                WATCHDOG.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let sent = bot_api.sent.load(Ordering::Relaxed);
    let left = conversations_by_status(listen);
    drop(host);
    step(&format!(
        "requests per phase: {}",
        requests_per_phase(&events)
    ));
    step(&format!(
        "schemathesis ran {:.0} s ({:.0} s with the builds); afterwards the conversations \
         were {left}, and the host had sent {sent} replies to the Bot API stand-in",
        tested.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    if !status.success() {
        bail!(
            "schemathesis found problems in the REST API or its OpenAPI document ({status}); \
             the host's log is {}",
            log_path.display()
        );
    }
    Ok(())
}

/// The virtualenv with schemathesis `VERSION`: reused when it has that version, made
/// (or updated) with pip otherwise.
fn ensure_installed(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target").join("schemathesis-venv");
    let installed = || {
        output(Command::new(venv.join("bin").join("schemathesis")).arg("--version"))
            .is_some_and(|v| v.trim().ends_with(&format!("version {VERSION}")))
    };
    if installed() {
        step(&format!(
            "schemathesis {VERSION} is installed in {}",
            venv.display()
        ));
        return Ok(venv);
    }
    if !venv.join("bin").join("python").exists() {
        step(&format!(
            "creating a Python virtualenv in {}",
            venv.display()
        ));
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("python3 -m venv failed (python3 3.9 or later with venv is needed)")?;
    }
    step(&format!(
        "installing schemathesis {VERSION} from PyPI into {} (pip shows its progress)",
        venv.display()
    ));
    run(Command::new(venv.join("bin").join("python"))
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={VERSION}")))
    .context("could not install schemathesis with pip")?;
    if !installed() {
        bail!(
            "pip installed schemathesis, but {} does not say version {VERSION}",
            venv.join("bin/schemathesis").display()
        );
    }
    Ok(venv)
}

/// Two free loopback ports, bound at the same time (so the kernel cannot hand out one
/// port twice, as two binds released in turn may), then released for the host to take.
fn free_ports() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let first = TcpListener::bind("127.0.0.1:0")?;
    let second = TcpListener::bind("127.0.0.1:0")?;
    Ok((first.local_addr()?, second.local_addr()?))
}

/// The `centralino run` process, stopped when dropped.
struct Host {
    child: Child,
}

impl Host {
    fn start(root: &Path, config: &Path, log: &Path) -> anyhow::Result<Host> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let binary = root.join("target").join("debug").join("centralino");
        let child = Command::new(&binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .env("SCHEMATHESIS_API_TOKEN", API_TOKEN)
            .env("SCHEMATHESIS_BOT_TOKEN", BOT_TOKEN)
            .env("SCHEMATHESIS_TELEGRAM_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        Ok(Host { child })
    }

    /// Waits until the admin API says ready (compiling the plugins takes a few seconds);
    /// fails at once, with the end of its log, if the host exits instead.
    fn wait_ready(&mut self, admin: SocketAddr, log: &Path) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http(admin, "GET", "/readyz", &[], "") {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join("\n");
                bail!(
                    "`centralino run` exited ({status}) before it was ready; the end of its log \
                     ({}):\n{tail}",
                    log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "`centralino run` was not ready after 120 s; its log is {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operators of `tests/schemathesis/centralino.toml.tmpl`.
const OPERATORS: [&str; 3] = ["marco", "giulia", "luca"];

/// Customers who write to the bot, each in their own private chat.
const CUSTOMERS: u32 = 40;
const NAMES: [&str; 8] = [
    "Mario", "Lucia", "Paolo", "Anna", "Sara", "Luigi", "Chiara", "Marta",
];
const TEXTS: [&str; 5] = [
    "il mio modem non va",
    "la fibra è lenta da stamattina",
    "mi avete addebitato due volte la fattura",
    "come attivo l'offerta?",
    "il router lampeggia rosso",
];

/// Delivers one Telegram update per customer to the tenant's webhook, with the secret
/// token, as Telegram would: forty conversations, four of them assigned (the operators'
/// capacities add up to four) and the rest waiting, so resolving one assigns the next
/// and the fuzzer does not run out of open conversations.
fn seed(listen: SocketAddr) -> anyhow::Result<u32> {
    // Operators start offline; the CRM says who is at work, as it would at the start of
    // a shift.
    let bearer = format!("Bearer {API_TOKEN}");
    for operator in OPERATORS {
        let (status, body) = http(
            listen,
            "PUT",
            &format!("/api/v1/operators/{operator}/presence"),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            r#"{"presence": "online"}"#,
        )?;
        if status != 200 {
            bail!("setting {operator} online was refused: {status} {body}");
        }
    }
    for index in 0..CUSTOMERS {
        let i = index as usize;
        let (id, name, text) = (4200 + index, NAMES[i % NAMES.len()], TEXTS[i % TEXTS.len()]);
        let update = serde_json::json!({
            "update_id": 800_000_000 + index,
            "message": {
                "message_id": 10 + index,
                "from": { "id": id, "is_bot": false, "first_name": name },
                "chat": { "id": id, "type": "private", "first_name": name },
                "date": 1_796_000_000 + index,
                "text": text,
            }
        });
        let (status, body) = http(
            listen,
            "POST",
            "/tenants/acme/webhooks/telegram",
            &[
                ("content-type", "application/json"),
                ("x-telegram-bot-api-secret-token", WEBHOOK_SECRET),
            ],
            &update.to_string(),
        )?;
        if !(200..300).contains(&status) {
            bail!("the webhook refused customer {name}'s update: {status} {body}");
        }
    }
    Ok(CUSTOMERS)
}

/// Each operator answers the conversations routing gave them, through the REST API as
/// the CRM would: the replies go out through the outbox to the Bot API stand-in, so the
/// listed messages include outbound ones, and an answered conversation stays with its
/// operator when the fuzzer sets them away. Returns how many replies were queued.
fn answer_assigned(listen: SocketAddr) -> anyhow::Result<usize> {
    let bearer = format!("Bearer {API_TOKEN}");
    let (status, body) = http(
        listen,
        "GET",
        "/api/v1/conversations?status=assigned",
        &[("authorization", &bearer)],
        "",
    )?;
    if status != 200 {
        bail!("listing the assigned conversations was refused: {status} {body}");
    }
    let list: serde_json::Value =
        serde_json::from_str(&body).context("the conversation list is not JSON")?;
    let mut answered = 0;
    for conversation in list["conversations"].as_array().into_iter().flatten() {
        let (Some(id), Some(operator)) = (
            conversation["id"].as_str(),
            conversation["assignee"].as_str(),
        ) else {
            continue;
        };
        let reply = serde_json::json!({
            "operator": operator,
            "text": format!("Buongiorno, sono {operator}: verifico subito."),
        });
        let (status, body) = http(
            listen,
            "POST",
            &format!("/api/v1/conversations/{id}/replies"),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
                ("idempotency-key", &format!("seed-{id}")),
            ],
            &reply.to_string(),
        )?;
        if status != 202 {
            bail!("{operator}'s reply to {id} was refused: {status} {body}");
        }
        answered += 1;
    }
    Ok(answered)
}

/// How many requests each phase sent, from schemathesis's event log (one JSON object a
/// line; each finished scenario records its requests).
fn requests_per_phase(events: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(events) else {
        return format!("unknown ({} unreadable)", events.display());
    };
    let mut counts = Vec::<(String, usize)>::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(r#"{"ScenarioFinished""#))
    {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let scenario = &event["ScenarioFinished"];
        let phase = scenario["phase"].as_str().unwrap_or("?").to_string();
        let requests = scenario["recorder"]["interactions"]
            .as_object()
            .map_or(0, serde_json::Map::len);
        match counts.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, n)) => *n += requests,
            None => counts.push((phase, requests)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(p, n)| format!("{p} {n}")).collect();
    counts.join(", ")
}

/// How many of the tenant's conversations have each status, as the REST API lists them.
fn conversations_by_status(listen: SocketAddr) -> String {
    let bearer = format!("Bearer {API_TOKEN}");
    let listed = http(
        listen,
        "GET",
        "/api/v1/conversations",
        &[("authorization", &bearer)],
        "",
    );
    let Ok((200, body)) = listed else {
        return "not listed".to_string();
    };
    let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for conversation in list["conversations"].as_array().into_iter().flatten() {
        let status = conversation["status"].as_str().unwrap_or("?").to_string();
        *counts.entry(status).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    counts.join(", ")
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body as text.
fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("{method} {path}: not an HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A Telegram Bot API stand-in on loopback: answers every request (`sendMessage`) with
/// `{"ok": true, "result": {"message_id": …}}`, counting them.
struct BotApi {
    address: SocketAddr,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl BotApi {
    fn start() -> anyhow::Result<BotApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let counter = counter.clone();
                std::thread::spawn(move || answer_bot_api(stream, &counter));
            }
        });
        Ok(BotApi {
            address,
            sent,
            stop,
        })
    }
}

impl Drop for BotApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

/// Reads one request (headers, then `content-length` bytes) and answers it.
fn answer_bot_api(mut stream: TcpStream, sent: &AtomicU64) {
    static START: OnceLock<Instant> = OnceLock::new();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let id = sent.fetch_add(1, Ordering::Relaxed) + 1;
    let started = START.get_or_init(Instant::now);
    let body = serde_json::json!({
        "ok": true,
        "result": {
            "message_id": 1_000 + id,
            "date": 1_796_000_000 + started.elapsed().as_secs(),
            "chat": { "id": 0, "type": "private" },
        }
    })
    .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

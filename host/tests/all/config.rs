//! `centralino.toml`: every bad config is refused with a message naming the file, the line,
//! the key and what was expected; the example config becomes a host and a routing engine
//! that run the real plugins; `init` then `check` passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use centralino::capabilities::{Credential, Secret};
use centralino::config::{Config, EXAMPLE, starter};
use centralino::routing::{CustomerMessage, ManualClock, Notice};
use centralino::types::{MessageKind, Presence, WebhookRequest};

use crate::component;
use crate::support::centralino_with_env;

/// A folder with a config file and a plugin folder of empty stand-ins: loading checks
/// that plugin files exist, not what is in them.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for name in ["twitter", "facebook", "skills", "least-loaded", "sticky"] {
            std::fs::write(dir.path().join(format!("plugins/{name}.wasm")), b"").unwrap();
        }
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` as `centralino.toml` and loads it.
    fn load(&self, text: &str) -> Result<Config, String> {
        let file = self.path().join("centralino.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(&file).map_err(|e| self.relative(&e.to_string()))
    }

    /// `message` with the config file named as `centralino.toml` (messages name it as it
    /// was given, here an absolute path into a temporary folder).
    fn relative(&self, message: &str) -> String {
        let file = self.path().join("centralino.toml");
        message.replace(&file.display().to_string(), "centralino.toml")
    }
}

/// A valid config; the bad ones below change one thing each.
const GOOD: &str = r#"[host]
plugin_dir = "plugins"

[[connectors]]
name = "twitter"
plugin = "twitter"
allowed_hosts = ["api.x.com"]
secrets = { consumer_secret = "env:X_CONSUMER_SECRET" }

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
brand = "tim"
credential = "env:X_TOKEN_TIM"

[[connectors.accounts]]
id = "2001"
handle = "TIM_Marco"
brand = "tim"
credential = "env:X_TOKEN_MARCO"

[routing]
chain = "skills > least-loaded"

[[operators]]
id = "marco"
skills = ["tim"]
capacity = 3
accounts = ["twitter:TIM_Marco"]
"#;

/// `GOOD` with `from` replaced by `to` (which must occur exactly once).
fn good_with(from: &str, to: &str) -> String {
    assert_eq!(GOOD.matches(from).count(), 1, "{from}");
    GOOD.replace(from, to)
}

#[test]
fn the_good_config_loads_with_its_defaults() {
    let fixture = Fixture::new();
    let config = fixture.load(GOOD).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.max_webhook_body, 1 << 20);
    assert_eq!(config.plugin_dir, fixture.path().join("plugins"));
    let tenant = &config.tenants[0];
    assert_eq!(tenant.id, "default");
    let twitter = &tenant.connectors[0];
    assert!(twitter.enabled);
    assert_eq!(twitter.poll_interval, None);
    assert_eq!(twitter.limits.call_deadline, Duration::from_secs(5));
    // The operator's account is resolved from its handle to the account id.
    assert_eq!(tenant.operators[0].accounts[0].to_string(), "twitter:2001");
    assert_eq!(tenant.operators[0].name, "marco");
    let routing = tenant.routing.as_ref().unwrap();
    assert_eq!(routing.chain.to_string(), "skills > least-loaded");
    assert_eq!(routing.limits.call_deadline, Duration::from_secs(1));
    assert!(
        tenant.brands.is_empty(),
        "no brand, so no automatic answers"
    );
    assert_eq!(tenant.brand_of("twitter", "1001"), Some("tim"));
}

#[test]
fn bad_configs_are_refused_with_file_line_key_and_expectation() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nstor = \"x.db\"\n",
            ),
            "centralino.toml:3: host.stor: unknown key `stor`, expected one of `store`, \
             `listen`, `admin_listen`, `api_listen`, `admin_token`, `plugin_dir`, \
             `cache_dir`, `max_webhook_body_bytes`, `host_id`, `crm_webhook`, \
             `crm_webhook_secret`, `watch_plugins`, `watch_interval_ms`, `log_format`, \
             `header_read_timeout_ms`, `body_read_timeout_ms`, `max_connections`, \
             `max_connections_per_peer`, `pooling_instances`, `poll_lease_ttl_secs`, \
             `token_key`, `retention_days`, `trusted_keys`, `require_signed`, \
             `media_max_file_kib`, `media_max_tenant_mib`",
        ),
        (
            "unknown key in an account",
            good_with(
                "credential = \"env:X_TOKEN_MARCO\"",
                "token = \"env:X_TOKEN_MARCO\"",
            ),
            "centralino.toml:20: connectors[0].accounts[1].token: unknown key `token`, \
             expected one of `id`, `handle`, `brand`, `credential`, `settings`",
        ),
        (
            "wrong type",
            good_with("capacity = 3", "capacity = \"3\""),
            "centralino.toml:28: operators[0].capacity: invalid type: string \"3\", expected \
             a whole number",
        ),
        (
            "wrong type for a section",
            good_with(
                "allowed_hosts = [\"api.x.com\"]",
                "allowed_hosts = \"api.x.com\"",
            ),
            "centralino.toml:7: connectors[0].allowed_hosts: invalid type: string \
             \"api.x.com\", expected an array",
        ),
        (
            "missing key",
            good_with("plugin = \"twitter\"\n", ""),
            "centralino.toml:4: connectors[0]: missing key `plugin`",
        ),
        (
            "invalid TOML",
            good_with("handle = \"TIM_Official\"", "handle = Official"),
            "centralino.toml:12: invalid TOML: string values must be quoted, expected literal \
             string",
        ),
        (
            "unquoted word that looks like a boolean",
            good_with(
                "brand = \"tim\"\ncredential = \"env:X_TOKEN_TIM\"",
                "brand = tim\ncredential = \"env:X_TOKEN_TIM\"",
            ),
            "centralino.toml:13: invalid TOML: expected `true` or `false`, or a string in quotes",
        ),
        (
            "inline secret",
            good_with(
                "\"env:X_TOKEN_TIM\"",
                "\"AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid\"",
            ),
            "centralino.toml:14: connectors[0].accounts[0].credential: expected a secret \
             reference, `env:NAME` or `file:PATH` (secrets are never written in the config: \
             put the value in an environment variable or a file and name it here)",
        ),
        (
            "inline signing secret",
            good_with(
                "\"env:X_CONSUMER_SECRET\"",
                "\"kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw\"",
            ),
            "centralino.toml:8: connectors[0].secrets.consumer_secret: expected a secret \
             reference, `env:NAME` or `file:PATH` (secrets are never written in the config: \
             put the value in an environment variable or a file and name it here)",
        ),
        (
            "credential reference without a name",
            good_with("\"env:X_TOKEN_TIM\"", "\"env:\""),
            "centralino.toml:14: connectors[0].accounts[0].credential: `env:` names no \
             variable: write `env:NAME`",
        ),
        (
            "query credential without its token",
            good_with("\"env:X_TOKEN_TIM\"", "{ query = \"access_token\" }"),
            "centralino.toml:14: connectors[0].accounts[0].credential: missing key `token`",
        ),
        (
            "credential of the wrong kind",
            good_with("\"env:X_TOKEN_TIM\"", "12345"),
            "centralino.toml:14: connectors[0].accounts[0].credential: expected a bearer \
             token reference (`env:NAME` or `file:PATH`), a query-parameter credential \
             `{ query = \"access_token\", token = \"env:NAME\" }`, a path credential \
             `{ path = \"env:NAME\" }`, or `\"connected\"` for a token the host obtains \
             with `centralino accounts connect`, found a number",
        ),
        (
            "a connected account without an OAuth app or a token key",
            good_with(
                "credential = \"env:X_TOKEN_MARCO\"",
                "credential = \"connected\"",
            ),
            "centralino.toml: 2 problems\n  \
             centralino.toml:1: host.token_key: `connected` accounts keep their tokens sealed \
             in the store: set `token_key = \"env:CENTRALINO_TOKEN_KEY\"` (32 random bytes \
             or more, e.g. `openssl rand -hex 32`)\n  \
             centralino.toml:20: connectors[0].accounts[1].credential: a `connected` account \
             needs connector `twitter`'s OAuth app: add `[connectors.oauth]` with `client_id` \
             (and `client_secret`) as secret references",
        ),
        (
            "unknown plugin file",
            good_with("plugin = \"twitter\"", "plugin = \"twiter\""),
            "centralino.toml:6: connectors[0].plugin: unknown plugin `twiter`: no file \
             `{dir}/plugins/twiter.wasm` (found: facebook, least-loaded, skills, sticky, \
             twitter)",
        ),
        (
            "plugin path that does not exist",
            good_with("plugin = \"twitter\"", "plugin = \"build/twitter.wasm\""),
            "centralino.toml:6: connectors[0].plugin: unknown plugin `build/twitter.wasm`: \
             no file `{dir}/build/twitter.wasm`",
        ),
        (
            "duplicate account",
            good_with("id = \"2001\"", "id = \"1001\""),
            "centralino.toml:17: connectors[0].accounts[1].id: duplicate account `1001` in \
             connector `twitter` (first defined at line 11)",
        ),
        (
            "duplicate handle",
            good_with("handle = \"TIM_Official\"", "handle = \"@tim_marco\""),
            "centralino.toml:18: connectors[0].accounts[1].handle: handle `TIM_Marco` is \
             already account `1001`'s at line 12",
        ),
        (
            "duplicate connector",
            good_with(
                "[routing]",
                "[[connectors]]\nname = \"twitter\"\nplugin = \"facebook\"\n\n[routing]",
            ),
            "centralino.toml:23: connectors[1].name: duplicate connector `twitter` (first \
             defined at line 5)",
        ),
        (
            "connector name unfit for a URL",
            good_with("name = \"twitter\"", "name = \"twitter x\""),
            "centralino.toml: 2 problems\n  \
             centralino.toml:5: connectors[0].name: `twitter x` is not a connector name: use \
             letters, digits, `-` and `_`\n  \
             centralino.toml:29: operators[0].accounts[0]: no connector `twitter` in this \
             tenant (connectors: twitter x)",
        ),
        (
            "allowed host written as a URL",
            good_with("[\"api.x.com\"]", "[\"https://api.x.com\"]"),
            "centralino.toml:7: connectors[0].allowed_hosts[0]: `https://api.x.com` is not a \
             host: write the host, with a port if needed, such as `api.x.com` or \
             `127.0.0.1:9000` (or `http://host:port` for a local emulator that may receive \
             credentials over plain HTTP)",
        ),
        (
            "poll interval of zero",
            good_with("allowed_hosts", "poll_interval_secs = 0\nallowed_hosts"),
            "centralino.toml:7: connectors[0].poll_interval_secs: must be at least 1",
        ),
        (
            "unknown routing stage",
            good_with("\"skills > least-loaded\"", "\"skils > least-loaded\""),
            "centralino.toml:23: routing.chain: unknown stage `skils`: no file \
             `{dir}/plugins/skils.wasm` (found: facebook, least-loaded, skills, sticky, \
             twitter)",
        ),
        (
            "unknown routing stage beside settings of a known one",
            good_with(
                "chain = \"skills > least-loaded\"\n",
                "chain = \"skils > sticky\"\n\n[routing.settings.sticky]\nwindow_minutes = 60\n",
            ),
            "centralino.toml:23: routing.chain: unknown stage `skils`: no file \
             `{dir}/plugins/skils.wasm` (found: facebook, least-loaded, skills, sticky, \
             twitter)",
        ),
        (
            "chain that does not parse",
            good_with("\"skills > least-loaded\"", "\"skills >\""),
            "centralino.toml:23: routing.chain: `skills >` does not parse: a stage has no \
             plugin name",
        ),
        (
            "settings for a stage not in the chain",
            good_with(
                "chain = \"skills > least-loaded\"\n",
                "chain = \"skills > least-loaded\"\n\n\
                 [routing.settings.stiky]\nwindow_minutes = 60\n",
            ),
            "centralino.toml:25: routing.settings.stiky: no stage `stiky` in `chain` or \
             `shadow` (stages: least-loaded, skills)",
        ),
        (
            "a stage setting given twice",
            good_with(
                "chain = \"skills > least-loaded\"\n",
                "chain = \"skills(require_language=false) > least-loaded\"\n\n\
                 [routing.settings.skills]\nrequire_language = true\n",
            ),
            "centralino.toml:26: routing.settings.skills.require_language: also given in \
             parentheses in `skills(…)`; keep one of the two",
        ),
        (
            "offer timeout of zero",
            good_with("[routing]\n", "[routing]\noffer_timeout_minutes = 0\n"),
            "centralino.toml:23: routing.offer_timeout_minutes: must be at least 1 (leave it \
             out to never take a conversation back)",
        ),
        (
            "duplicate operator",
            format!("{GOOD}\n[[operators]]\nid = \"marco\"\ncapacity = 2\n"),
            "centralino.toml:32: operators[1].id: duplicate operator `marco` (first defined \
             at line 26)",
        ),
        (
            "capacity of zero",
            good_with("capacity = 3", "capacity = 0"),
            "centralino.toml:28: operators[0].capacity: must be at least 1: an operator with \
             no capacity never gets a conversation",
        ),
        (
            "operator account on a channel with no connector",
            good_with("\"twitter:TIM_Marco\"", "\"telegram:TIM_Marco\""),
            "centralino.toml:29: operators[0].accounts[0]: no connector `telegram` in this \
             tenant (connectors: twitter)",
        ),
        (
            "operator account the connector does not have",
            good_with("\"twitter:TIM_Marco\"", "\"twitter:TIM_Luca\""),
            "centralino.toml:29: operators[0].accounts[0]: connector `twitter` has no account \
             `TIM_Luca` (by id or handle)",
        ),
        (
            "operator account that is not `connector:account`",
            good_with("\"twitter:TIM_Marco\"", "\"TIM_Marco\""),
            "centralino.toml:29: operators[0].accounts[0]: `TIM_Marco` is not an account: \
             expected an account `\"connector:account\"` (e.g. `\"twitter:TIM_Marco\"`) or a \
             table `{ channel = \"twitter\", id = \"TIM_Marco\" }`",
        ),
        (
            "working hours across midnight",
            good_with(
                "capacity = 3\n",
                "capacity = 3\nhours = { mon = [\"22:00-06:00\"] }\n",
            ),
            "centralino.toml:29: operators[0].hours.mon: `22:00-06:00` ends before it \
             starts; split a night shift over two days",
        ),
        (
            "admin API on the network without a token",
            good_with("[host]\n", "[host]\nadmin_listen = \"0.0.0.0:8081\"\n"),
            "centralino.toml:2: host.admin_listen: `0.0.0.0:8081` is not a loopback address, \
             so the admin API needs `admin_token` (e.g. `admin_token = \
             \"env:CENTRALINO_ADMIN_TOKEN\"`)",
        ),
        (
            "address that does not parse",
            good_with("[host]\n", "[host]\nlisten = \"localhost\"\n"),
            "centralino.toml:2: host.listen: expected an address such as `127.0.0.1:8080`",
        ),
        (
            "store URL with a password",
            good_with(
                "[host]\n",
                "[host]\nstore = \"postgres://care:hunter2@db/centralino\"\n",
            ),
            "centralino.toml:2: host.store: the URL holds a password (`user:password@`), \
             and secrets are never written in the config: put the URL in a variable and \
             write `store = \"env:DATABASE_URL\"`",
        ),
        (
            "store URL with a password in its query string",
            good_with(
                "[host]\n",
                "[host]\nstore = \"postgres://care@db/centralino?sslmode=require&password=hunter2\"\n",
            ),
            "centralino.toml:2: host.store: the URL holds a password (`password=` in its \
             query string), and secrets are never written in the config: put the URL in a \
             variable and write `store = \"env:DATABASE_URL\"`",
        ),
        (
            "store URL with a percent-encoded password parameter",
            good_with(
                "[host]\n",
                "[host]\nstore = \"postgres://db/centralino?pass%77ord=hunter2\"\n",
            ),
            "centralino.toml:2: host.store: the URL holds a password (`password=` in its \
             query string), and secrets are never written in the config: put the URL in a \
             variable and write `store = \"env:DATABASE_URL\"`",
        ),
        (
            "plugin folder that does not exist",
            good_with("plugin_dir = \"plugins\"", "plugin_dir = \"plugns\""),
            "centralino.toml:2: host.plugin_dir: no folder `{dir}/plugns`",
        ),
        (
            "memory limit of zero",
            format!("{GOOD}\n[limits]\nmemory_mib = 0\n"),
            "centralino.toml:32: limits.memory_mib: must be at least 1",
        ),
        (
            "unknown log format",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nlog_format = \"xml\"\n",
            ),
            "centralino.toml:3: host.log_format: unknown variant `xml`, expected `pretty` or \
             `json`",
        ),
        (
            "watch_plugins not a boolean",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nwatch_plugins = \"yes\"\n",
            ),
            "centralino.toml:3: host.watch_plugins: invalid type: string \"yes\", expected a \
             boolean",
        ),
        (
            "no connections",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nmax_connections = 0\n",
            ),
            "centralino.toml:3: host.max_connections: must be at least 1",
        ),
        (
            "no room for a file",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nmedia_max_file_kib = 0\n",
            ),
            "centralino.toml:3: host.media_max_file_kib: must be at least 1",
        ),
        (
            "a file larger than the tenant's quota",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nmedia_max_file_kib = 4096\nmedia_max_tenant_mib = 2\n",
            ),
            "centralino.toml:3: host.media_max_file_kib: 4096 KiB per file is more than the \
             tenant's quota (`media_max_tenant_mib` = 2): no such file could ever be kept",
        ),
        (
            "header timeout of zero",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\nheader_read_timeout_ms = 0\n",
            ),
            "centralino.toml:3: host.header_read_timeout_ms: must be at least 1",
        ),
        (
            "empty instance pool",
            good_with(
                "plugin_dir = \"plugins\"\n",
                "plugin_dir = \"plugins\"\npooling_instances = 0\n",
            ),
            "centralino.toml:3: host.pooling_instances: must be at least 1 (leave it out to \
             allocate instances on demand)",
        ),
        (
            "no messages per call",
            format!("{GOOD}\n[limits]\nmax_messages_per_call = 0\n"),
            "centralino.toml:32: limits.max_messages_per_call: must be at least 1",
        ),
        (
            "text cap not a number",
            format!("{GOOD}\n[limits]\nmax_text_chars = \"many\"\n"),
            "centralino.toml:32: limits.max_text_chars: invalid type: string \"many\", expected \
             a whole number",
        ),
        (
            "negative circuit threshold",
            format!("{GOOD}\n[limits]\ncircuit_open_after = -1\n"),
            "centralino.toml:32: limits.circuit_open_after: invalid value: integer `-1`, \
             expected a whole number",
        ),
        (
            "backoff cap below the first pause",
            format!("{GOOD}\n[limits]\nfault_backoff_ms = 5000\nfault_backoff_max_ms = 1000\n"),
            "centralino.toml:33: limits.fault_backoff_max_ms: the longest pause (1000 ms, \
             `fault_backoff_max_ms`) is shorter than the first (5000 ms, `fault_backoff_ms`)",
        ),
        (
            "output cap of zero on a connector",
            good_with(
                "allowed_hosts = [\"api.x.com\"]\n",
                "allowed_hosts = [\"api.x.com\"]\nlimits = { max_output_bytes = 0 }\n",
            ),
            "centralino.toml:8: connectors[0].limits.max_output_bytes: must be at least 1",
        ),
        (
            "tenants beside top-level connectors",
            format!("{GOOD}\n[[tenants]]\nid = \"acme\"\n"),
            "centralino.toml: 3 problems\n  \
             centralino.toml:4: connectors: with `[[tenants]]`, each tenant has its own: \
             write `[[tenants.connectors]]`\n  \
             centralino.toml:22: routing: with `[[tenants]]`, each tenant has its own: write \
             `[tenants.routing]`\n  \
             centralino.toml:25: operators: with `[[tenants]]`, each tenant has its own: \
             write `[[tenants.operators]]`",
        ),
        (
            "duplicate tenant",
            "[host]\nplugin_dir = \"plugins\"\n\n[[tenants]]\nid = \"acme\"\n\n[[tenants]]\n\
             id = \"acme\"\n"
                .to_string(),
            "centralino.toml:8: tenants[1].id: duplicate tenant `acme` (first defined at line \
             5)",
        ),
    ];
    let fixture = Fixture::new();
    let dir = fixture.path().display().to_string();
    let mut failures = Vec::new();
    for (name, text, expected) in &cases {
        let expected = expected.replace("{dir}", &dir);
        match fixture.load(text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(message) if message != expected => {
                failures.push(format!(
                    "{name}:\n  got      {message}\n  expected {expected}"
                ));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn an_inline_secret_is_never_repeated_in_the_error() {
    let fixture = Fixture::new();
    let token = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0supersecret";
    let err = fixture
        .load(&good_with("\"env:X_TOKEN_TIM\"", &format!("\"{token}\"")))
        .unwrap_err();
    assert!(!err.contains("supersecret"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let fixture = Fixture::new();
    let text = good_with("capacity = 3", "capacity = 0")
        .replace("\"skills > least-loaded\"", "\"skils > least-loaded\"")
        .replace("id = \"2001\"", "id = \"1001\"");
    let err = fixture.load(&text).unwrap_err();
    let dir = fixture.path().display();
    assert_eq!(
        err,
        format!(
            "centralino.toml: 3 problems\n  \
             centralino.toml:17: connectors[0].accounts[1].id: duplicate account `1001` in \
             connector `twitter` (first defined at line 11)\n  \
             centralino.toml:23: routing.chain: unknown stage `skils`: no file \
             `{dir}/plugins/skils.wasm` (found: facebook, least-loaded, skills, sticky, \
             twitter)\n  \
             centralino.toml:28: operators[0].capacity: must be at least 1: an operator with \
             no capacity never gets a conversation"
        )
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load("/nonexistent/centralino.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/centralino.toml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn tenants_have_their_own_connectors_operators_and_routing() {
    let fixture = Fixture::new();
    let text = r#"[host]
plugin_dir = "plugins"

[[tenants]]
id = "acme"

[[tenants.connectors]]
name = "twitter"
plugin = "twitter"

[[tenants.connectors.accounts]]
id = 1001
handle = "acme"

[[tenants.operators]]
id = "ada"
capacity = 2
accounts = [{ channel = "twitter", id = "@acme" }]

[[tenants]]
id = "globex"

[[tenants.connectors]]
name = "twitter"
plugin = "twitter"

[[tenants.connectors.accounts]]
id = 1001
handle = "acme"

[[tenants.operators]]
id = "ada"
capacity = 1
accounts = ["twitter:nobody"]
"#;
    // The same connector name, account and operator id in two tenants are no conflict; a
    // problem in the second tenant names it.
    assert_eq!(
        fixture.load(text).unwrap_err(),
        "centralino.toml:34: tenants[1].operators[0].accounts[0]: connector `twitter` has no \
         account `nobody` (by id or handle)"
    );
    let config = fixture
        .load(&text.replace("twitter:nobody", "twitter:acme"))
        .unwrap();
    let ids: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["acme", "globex"]);
    // Numbers are fine as ids; operators get the default chain.
    let acme = config.tenant("acme").unwrap();
    assert_eq!(acme.connectors[0].accounts[0].id, "1001");
    assert_eq!(acme.operators[0].accounts[0].to_string(), "twitter:1001");
    assert_eq!(
        acme.routing.as_ref().unwrap().chain.to_string(),
        "skills > least-loaded"
    );
}

#[test]
fn unresolved_references_are_all_listed_with_their_keys() {
    let fixture = Fixture::new();
    let text = good_with(
        "secrets = { consumer_secret = \"env:X_CONSUMER_SECRET\" }",
        "secrets = { consumer_secret = \"file:secrets/consumer\" }",
    );
    let config = fixture.load(&text).unwrap();
    let env = |name: &str| (name == "X_TOKEN_TIM").then(String::new);
    let err = config.resolve_secrets_with(env).unwrap_err().to_string();
    let dir = fixture.path().display();
    assert_eq!(
        fixture.relative(&err),
        format!(
            "centralino.toml: 3 problems\n  \
             centralino.toml:8: connectors[0].secrets.consumer_secret: cannot read secret \
             file `{dir}/secrets/consumer`: No such file or directory (os error 2)\n  \
             centralino.toml:14: connectors[0].accounts[0].credential: environment variable \
             `X_TOKEN_TIM` is empty\n  \
             centralino.toml:20: connectors[0].accounts[1].credential: environment variable \
             `X_TOKEN_MARCO` is not set"
        )
    );
}

#[test]
fn a_disabled_connector_waits_for_its_secrets_and_is_built_disabled() {
    let fixture = Fixture::new();
    let text = good_with(
        "plugin = \"twitter\"",
        "plugin = \"twitter\"\nenabled = false",
    );
    let config = fixture.load(&text).unwrap();
    let secrets = config.resolve_secrets_with(|_| None).unwrap();
    assert!(secrets.is_empty());
    let specs = config.connector_specs(&secrets);
    assert_eq!(specs.len(), 1);
    assert!(!specs[0].enabled);
    assert!(specs[0].grants.secrets.is_empty());
    let waiting = secrets.waiting();
    assert_eq!(waiting.len(), 1);
    let (tenant, connector, references) = &waiting[0];
    assert_eq!(
        (tenant.as_str(), connector.as_str()),
        ("default", "twitter")
    );
    assert_eq!(
        references,
        &[
            "connectors[0].secrets.consumer_secret: environment variable `X_CONSUMER_SECRET` is not set",
            "connectors[0].accounts[0].credential: environment variable `X_TOKEN_TIM` is not set",
            "connectors[0].accounts[1].credential: environment variable `X_TOKEN_MARCO` is not set",
        ]
    );
}

#[test]
fn limits_and_host_settings_come_from_the_file() {
    let fixture = Fixture::new();
    let text = good_with(
        "plugin_dir = \"plugins\"\n",
        "plugin_dir = \"plugins\"\nwatch_plugins = true\nwatch_interval_ms = 250\n\
         log_format = \"json\"\nheader_read_timeout_ms = 2000\nbody_read_timeout_ms = 3000\n\
         max_connections = 64\npooling_instances = 16\n",
    ) + "\n[limits]\nlog_bytes = 4096\nmax_messages_per_call = 50\nmax_text_chars = 500\n\
         max_output_bytes = 100000\ncircuit_open_after = 3\nfault_backoff_ms = 200\n\
         fault_backoff_max_ms = 800\n";
    let config = fixture.load(&text).unwrap();
    assert_eq!(config.watch_plugins, Some(Duration::from_millis(250)));
    assert_eq!(config.log_format, centralino::config::LogFormat::Json);
    assert_eq!(config.ingress.header_read_timeout, Duration::from_secs(2));
    assert_eq!(config.ingress.body_read_timeout, Duration::from_secs(3));
    assert_eq!(config.ingress.max_connections, 64);
    assert_eq!(config.pooling_instances, Some(16));
    let limits = &config.tenants[0].connectors[0].limits;
    assert_eq!(limits.log_bytes, 4096);
    assert_eq!(limits.max_messages_per_call, 50);
    assert_eq!(limits.max_text_chars, 500);
    assert_eq!(limits.max_output_bytes, 100_000);
    assert_eq!(limits.circuit_open_after, 3);
    assert_eq!(limits.fault_backoff, Duration::from_millis(200));
    assert_eq!(limits.fault_backoff_max, Duration::from_millis(800));
    // Routing stages get the same limits from [limits].
    let routing = config.tenants[0].routing.as_ref().unwrap();
    assert_eq!(routing.limits.max_messages_per_call, 50);
}

#[test]
fn resolved_secrets_become_the_connectors_grants() {
    let fixture = Fixture::new();
    std::fs::create_dir(fixture.path().join("secrets")).unwrap();
    std::fs::write(fixture.path().join("secrets/consumer"), "s3cret\n").unwrap();
    let text = good_with("\"env:X_CONSUMER_SECRET\"", "\"file:secrets/consumer\"").replace(
        "credential = \"env:X_TOKEN_MARCO\"",
        "credential = { query = \"access_token\", token = \"env:X_TOKEN_MARCO\" }",
    );
    let config = fixture.load(&text).unwrap();
    let env = |name: &str| Some(format!("value-of-{name}"));
    let secrets = config.resolve_secrets_with(env).unwrap();
    assert_eq!(secrets.len(), 3);
    let specs = config.connector_specs(&secrets);
    assert_eq!(specs.len(), 1);
    let spec = &specs[0];
    assert_eq!(
        (spec.tenant.as_str(), spec.name.as_str()),
        ("default", "twitter")
    );
    assert_eq!(spec.plugin, fixture.path().join("plugins/twitter.wasm"));
    assert_eq!(spec.grants.allowed_hosts, ["api.x.com"]);
    // The trailing newline of the file is not part of the secret.
    assert_eq!(
        spec.grants.secrets.get("consumer_secret"),
        Some(&Secret::new("s3cret"))
    );
    // Credentials are granted under the account id, which is what the plugin names.
    let mut expected = BTreeMap::new();
    expected.insert(
        "1001".to_string(),
        Credential::Bearer(Secret::new("value-of-X_TOKEN_TIM")),
    );
    expected.insert(
        "2001".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("value-of-X_TOKEN_MARCO"),
        },
    );
    assert_eq!(spec.grants.credentials, expected);
    let accounts: Vec<(&str, Option<&str>)> = spec
        .config
        .accounts
        .iter()
        .map(|a| (a.id.as_str(), a.credential.as_deref()))
        .collect();
    assert_eq!(accounts, [("1001", Some("1001")), ("2001", Some("2001"))]);
    assert_eq!(spec.brands.get("2001").map(String::as_str), Some("tim"));
}

#[test]
fn a_store_url_with_a_password_is_kept_as_a_reference() {
    let fixture = Fixture::new();
    let text = good_with("[host]\n", "[host]\nstore = \"env:DATABASE_URL\"\n");
    let config = fixture.load(&text).unwrap();
    let url = "postgres://care:hunter2@db/centralino";
    let env = |name: &str| {
        Some(if name == "DATABASE_URL" {
            url.to_string()
        } else {
            "x".into()
        })
    };
    let secrets = config.resolve_secrets_with(env).unwrap();
    assert_eq!(config.store_url(&secrets), url);
    // A relative SQLite file is next to the config file.
    let config = fixture
        .load(&good_with(
            "[host]\n",
            "[host]\nstore = \"sqlite://care.db\"\n",
        ))
        .unwrap();
    assert_eq!(
        config.store_url(&secrets),
        format!("sqlite://{}/care.db", fixture.path().display())
    );
}

/// The folder of the built plugins.
fn plugin_dir() -> PathBuf {
    component("twitter").parent().unwrap().to_path_buf()
}

/// Every variable the example refers to, each set to `value-of-<NAME>`.
fn example_env(name: &str) -> Option<String> {
    Some(format!("value-of-{name}"))
}

/// The example config written to a fresh folder, with the built plugins and its secret
/// file.
fn example() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("centralino.toml");
    std::fs::write(&file, starter(&plugin_dir())).unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/facebook_app_secret"),
        "app-secret\n",
    )
    .unwrap();
    (dir, file)
}

#[test]
fn the_example_is_the_telecom_scenario() {
    assert!(EXAMPLE.contains("plugin_dir = \"../target/plugins\""));
    let (_dir, file) = example();
    let config = Config::load(&file).unwrap();
    let tenant = &config.tenants[0];
    let twitter = tenant.connector("twitter").unwrap();
    assert_eq!(twitter.accounts.len(), 12);
    let brands: std::collections::BTreeSet<&str> = twitter
        .accounts
        .iter()
        .filter_map(|a| a.brand.as_deref())
        .collect();
    assert_eq!(
        brands.into_iter().collect::<Vec<_>>(),
        ["impresa-semplice", "telecom-italia", "tim"]
    );
    assert_eq!(tenant.connector("facebook").unwrap().accounts.len(), 1);
    assert_eq!(tenant.operators.len(), 9);
    assert!(
        tenant
            .operators
            .iter()
            .all(|o| o.accounts.len() == 1 && o.accounts[0].channel == "twitter")
    );
    // Every plugin it names is of the right world and contract.
    let plugins = config.inspect_plugins().unwrap();
    let names: Vec<String> = plugins.iter().map(|p| p.plugin.name.clone()).collect();
    assert_eq!(
        names,
        [
            "twitter",
            "facebook",
            "priority",
            "sticky",
            "skills",
            "least-loaded"
        ]
    );
}

#[tokio::test]
async fn the_example_builds_a_host_whose_connectors_hold_the_secrets() {
    let (_dir, file) = example();
    let config = Config::load(&file).unwrap();
    let secrets = config.resolve_secrets_with(example_env).unwrap();
    assert_eq!(secrets.len(), 17);
    assert_eq!(
        secrets.admin_token(),
        Some(&Secret::new("value-of-CENTRALINO_ADMIN_TOKEN"))
    );
    let runtime = config.runtime().unwrap();
    let host = config
        .host_builder(runtime, &secrets)
        .store("sqlite::memory:")
        .build()
        .await
        .unwrap();

    // Facebook's subscription handshake checks the verify token from the environment.
    let handshake = |token: &str| WebhookRequest {
        method: "GET".to_string(),
        path: String::new(),
        query: format!("hub.mode=subscribe&hub.verify_token={token}&hub.challenge=4711"),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let answer = host
        .deliver_webhook(
            "default",
            "facebook",
            handshake("value-of-FACEBOOK_VERIFY_TOKEN"),
        )
        .await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"4711"[..]));
    let refused = host
        .deliver_webhook("default", "facebook", handshake("guess"))
        .await;
    assert_eq!(refused.status, 403);

    // X's CRC challenge is answered with the consumer secret from the environment.
    let crc = host
        .deliver_webhook(
            "default",
            "twitter",
            WebhookRequest {
                method: "GET".to_string(),
                path: String::new(),
                query: "crc_token=challenge".to_string(),
                headers: Vec::new(),
                body: Vec::new(),
            },
        )
        .await;
    assert_eq!(crc.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&crc.body).unwrap();
    let expected = {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"value-of-X_CONSUMER_SECRET").unwrap();
        mac.update(b"challenge");
        format!(
            "sha256={}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    };
    assert_eq!(body["response_token"], expected.as_str());
}

#[tokio::test]
async fn the_example_routes_a_tim_tweet_to_a_tim_operator_who_answers_as_themselves() {
    let (_dir, file) = example();
    let config = Config::load(&file).unwrap();
    let tenant = &config.tenants[0];
    let runtime = config.runtime().unwrap();
    // Monday 2026-03-02, 10:00 in Italy (UTC+1): Marco is on shift, Luca is not.
    let clock = ManualClock::new(1_772_442_000_000);
    let builder = tenant.engine_builder(&runtime).await.unwrap().unwrap();
    let mut engine = builder.clock(clock).build();
    tenant.add_operators(&mut engine).await;
    assert_eq!(engine.roster().len(), 9);
    for operator in &tenant.operators {
        engine
            .set_presence(&operator.id, Presence::Online)
            .await
            .unwrap();
    }
    let arrival = engine
        .receive(CustomerMessage {
            channel: "twitter".to_string(),
            account: "1443000001".to_string(),
            conversation_key: "1890000000000000001".to_string(),
            customer: "42".to_string(),
            brand: tenant.brand_of("twitter", "1443000001").map(str::to_string),
            language: Some("it".to_string()),
            kind: MessageKind::PublicPost,
            text: "@TIM_Official il mio modem non va".to_string(),
        })
        .await;
    let Some(Notice::Assigned { operator, .. }) = arrival.notices.first() else {
        panic!("not assigned: {:?}", arrival.notices);
    };
    assert!(
        ["marco", "giulia"].contains(&operator.as_str()),
        "a TIM operator at work, got {operator}"
    );
    // The reply goes out from the operator's own X account, by its id.
    let route = engine.record_reply(arrival.conversation, operator).unwrap();
    let own = tenant
        .operators
        .iter()
        .find(|o| &o.id == operator)
        .unwrap()
        .accounts[0]
        .id
        .clone();
    assert_eq!((route.account, route.personal), (own, true));
}

#[tokio::test]
async fn stage_settings_apply_in_the_chain_and_in_the_shadow_chain() {
    let fixture = Fixture::new();
    let text = good_with(
        "plugin_dir = \"plugins\"",
        &format!("plugin_dir = {:?}", plugin_dir()),
    )
    .replace(
        "chain = \"skills > least-loaded\"\n",
        "chain = \"sticky(window_minutes=30) > skills > least-loaded\"\n\
             shadow = \"skills > round-robin\"\n\
             offer_timeout_minutes = 5\n\n\
             [routing.settings.skills]\n\
             require_language = false\n",
    );
    let config = fixture.load(&text).unwrap();
    let tenant = &config.tenants[0];
    let plan = tenant.routing.as_ref().unwrap();
    assert_eq!(
        plan.chain.to_string(),
        "sticky(window_minutes=30) > skills(require_language=false) > least-loaded"
    );
    assert_eq!(
        plan.shadow.as_ref().unwrap().to_string(),
        "skills(require_language=false) > round-robin"
    );
    assert_eq!(plan.offer_timeout, Some(Duration::from_secs(300)));
    // Both chains load and configure with the real plugins.
    let runtime = config.runtime().unwrap();
    let engine = tenant.engine(&runtime).await.unwrap().unwrap();
    assert_eq!(
        engine.shadow().unwrap().spec(),
        "skills(require_language=false) > round-robin"
    );
    assert_eq!(engine.roster().len(), 1);
    assert_eq!(
        engine.roster().state("marco").unwrap().presence,
        Presence::Offline
    );
}

#[tokio::test]
async fn a_connector_plugin_of_the_wrong_world_is_refused_by_inspection() {
    let fixture = Fixture::new();
    let text = good_with(
        "plugin_dir = \"plugins\"",
        &format!("plugin_dir = {:?}", plugin_dir()),
    )
    .replace("plugin = \"twitter\"", "plugin = \"round-robin\"")
    .replace("\"skills > least-loaded\"", "\"skills > twitter\"");
    let config = fixture.load(&text).unwrap();
    let err = config.inspect_plugins().unwrap_err().to_string();
    assert_eq!(
        fixture.relative(&err),
        "centralino.toml: 2 problems\n  \
         centralino.toml:6: connectors[0].plugin: plugin round-robin@0.1.0 is a \
         `routing-policy` component, but a `channel` was needed\n  \
         centralino.toml:23: routing.chain: stage `twitter`: plugin twitter@0.1.0 is a \
         `channel` component, but a `routing-policy` was needed"
    );
}

#[tokio::test]
async fn configuring_the_plugins_reports_what_each_plugin_refuses_by_key() {
    let fixture = Fixture::new();
    let text = good_with(
        "plugin_dir = \"plugins\"",
        &format!("plugin_dir = {:?}", plugin_dir()),
    )
    .replace("id = \"1001\"", "id = \"TIM\"")
    .replace(
        "\"skills > least-loaded\"",
        "\"skills(strict=yes) > least-loaded\"",
    )
    .replace(
        "[routing]",
        "[[connectors]]\nname = \"facebook\"\nplugin = \"facebook\"\npoll_interval_secs = 60\n\n\
         [[connectors.accounts]]\nid = \"100000000000001\"\n\n[routing]",
    );
    let config = fixture.load(&text).unwrap();
    let runtime = config.runtime().unwrap();
    let err = config
        .configure_plugins(&runtime, &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        fixture.relative(&err),
        "centralino.toml: 3 problems\n  \
         centralino.toml:4: connectors[0]: plugin twitter@0.1.0 failed in `configure`: \
         invalid input: account `TIM`: the id must be the numeric X user id\n  \
         centralino.toml:25: connectors[1].poll_interval_secs: plugin facebook@0.1.0 does not \
         poll (it only receives webhooks): leave `poll_interval_secs` out\n  \
         centralino.toml:31: routing.chain: stage `skills`: plugin skills@0.1.0 failed in \
         `configure`: invalid input: skills: unknown setting `strict` (known: \
         `require_language`)"
    );
    // The example passes.
    let (_dir, file) = example();
    let config = Config::load(&file).unwrap();
    config
        .configure_plugins(&runtime, &Default::default())
        .await
        .unwrap();
}

#[test]
fn init_then_check_passes_once_the_secrets_are_provided() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centralino.toml");
    let path_arg = path.to_str().unwrap();
    let plugins = plugin_dir();
    let plugins_arg = plugins.to_str().unwrap();
    let (code, stdout, stderr) = centralino_with_env(
        &["init", "--path", path_arg, "--plugin-dir", plugins_arg],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("env:X_TOKEN_TIM_MARCO"), "{stdout}");
    assert!(
        stdout.contains("file:secrets/facebook_app_secret"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), starter(&plugins));

    // Not twice without --force.
    let (code, _, stderr) = centralino_with_env(
        &["init", "--path", path_arg, "--plugin-dir", plugins_arg],
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim_end(),
        format!("error: {path_arg} already exists; use --force to overwrite it")
    );
    let (code, _, stderr) = centralino_with_env(
        &[
            "init",
            "--path",
            path_arg,
            "--plugin-dir",
            plugins_arg,
            "--force",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");

    // Without the secrets, check lists each missing one and fails.
    let (code, _, stderr) = centralino_with_env(&["check", "--config", path_arg], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "{path_arg}:114: connectors[0].accounts[3].credential: environment variable \
             `X_TOKEN_TIM_MARCO` is not set"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("secrets/facebook_app_secret"), "{stderr}");
    // … unless told to leave them.
    let (code, stdout, stderr) =
        centralino_with_env(&["check", "--config", path_arg, "--skip-secrets"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("not resolved (--skip-secrets)"), "{stdout}");

    // With them, it passes and summarises.
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/facebook_app_secret"), "app-secret").unwrap();
    let config = centralino::config::Config::load(&path).unwrap();
    let env: Vec<(String, String)> = config
        .secret_references()
        .iter()
        .filter_map(|r| match r {
            centralino::config::SecretRef::Env(name) => {
                Some((name.clone(), format!("value-of-{name}")))
            }
            centralino::config::SecretRef::File(_) => None,
        })
        .collect();
    assert_eq!(env.len(), 16);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, stdout, stderr) =
        centralino_with_env(&["check", "--config", path_arg, "--load"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("{path_arg}: ok\n")), "{stdout}");
    assert!(
        stdout.contains("  configured     every plugin accepted its settings and accounts"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  secrets        17 references resolved"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  connector twitter: twitter@0.1.0, polls every 60 s, hosts api.x.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  stages         priority@0.1.0 > sticky@0.1.0 > skills@0.1.0 > least-loaded@0.1.0"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("  operators      9 (27 seats)"), "{stdout}");

    // --json is for scripts.
    let (code, stdout, stderr) =
        centralino_with_env(&["check", "--config", path_arg, "--json"], &env);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["tenants"][0]["id"], "default");
    assert_eq!(
        json["tenants"][0]["connectors"][1]["plugin"],
        "facebook@0.1.0"
    );
    assert_eq!(
        json["tenants"][0]["operators"][0]["accounts"][0],
        "twitter:TIM_Marco"
    );
}

#[test]
fn check_of_a_bad_config_prints_one_clear_error_and_exits_1() {
    let fixture = Fixture::new();
    let path = fixture.path().join("centralino.toml");
    std::fs::write(&path, good_with("capacity = 3", "capacity = 0")).unwrap();
    let path_arg = path.to_str().unwrap();
    let (code, stdout, stderr) = centralino_with_env(&["check", "--config", path_arg], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "error: {path_arg}:28: operators[0].capacity: must be at least 1: an operator \
             with no capacity never gets a conversation\n"
        )
    );
    let (code, stdout, _) = centralino_with_env(&["check", "--config", path_arg, "--json"], &[]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"][0]["line"], 28);
    assert_eq!(json["problems"][0]["key"], "operators[0].capacity");

    let (code, _, stderr) = centralino_with_env(&["check", "--config", "/nonexistent/c.toml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "error: /nonexistent/c.toml: cannot read: No such file or directory (os error 2) \
         (write a starter with `centralino init`)\n"
    );
}

#[test]
fn a_crm_webhook_needs_an_http_url_and_a_signing_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let path = dir.path().join("centralino.toml");
    std::fs::write(
        &path,
        "[host]\nplugin_dir = \"plugins\"\ncrm_webhook = \"crm.example/hooks\"\n",
    )
    .unwrap();
    let err = centralino::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("host.crm_webhook: `crm.example/hooks` is not an http(s) URL"),
        "{err}"
    );
    assert!(
        err.contains(
            "host.crm_webhook: the CRM webhooks are signed: add `crm_webhook_secret = \"env:NAME\"`"
        ),
        "{err}"
    );
}

// ---- secrets and tokens never shown, tokens that work (issue 13, items 5 and 8) ----

#[test]
fn check_never_prints_a_store_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centralino.toml");
    let path_arg = path.to_str().unwrap();
    let plugins = plugin_dir().display().to_string();
    let with_store = |store: &str| {
        GOOD.replace(
            "[host]\nplugin_dir = \"plugins\"\n",
            &format!("[host]\nplugin_dir = \"{plugins}\"\nstore = \"{store}\"\n"),
        )
    };
    // A password in the query string is refused like one in the user information, and
    // neither is repeated, in text or in JSON.
    for store in [
        "postgres://care@db.example/centralino?sslmode=require&password=hunter2",
        "postgres://care:hunter2@db.example/centralino",
    ] {
        std::fs::write(&path, with_store(store)).unwrap();
        for json in [false, true] {
            let mut args = vec!["check", "--config", path_arg, "--skip-secrets"];
            if json {
                args.push("--json");
            }
            let (code, stdout, stderr) = centralino_with_env(&args, &[]);
            assert_eq!(code, 1, "{stdout}{stderr}");
            assert!(
                !stdout.contains("hunter2") && !stderr.contains("hunter2"),
                "{stdout}{stderr}"
            );
            assert!(
                (stdout.clone() + &stderr).contains("the URL holds a password"),
                "{stdout}{stderr}"
            );
        }
    }
    // A URL without a password is shown with its query string masked all the same.
    std::fs::write(
        &path,
        with_store("postgres://care@db.example:5433/centralino?sslmode=require"),
    )
    .unwrap();
    let (code, stdout, stderr) = centralino_with_env(
        &["check", "--config", path_arg, "--skip-secrets", "--json"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["store"],
        "postgres://***@db.example:5433/centralino?***"
    );
}

/// A two-tenant config whose tokens come from `ADMIN_TOKEN`, `ACME_TOKEN`, `GLOBEX_TOKEN`.
fn tokens_config() -> Config {
    let plugins = plugin_dir().display().to_string();
    let text = format!(
        r#"[host]
plugin_dir = "{plugins}"
admin_token = "env:ADMIN_TOKEN"

[[tenants]]
id = "acme"
api_token = "env:ACME_TOKEN"

[[tenants]]
id = "globex"
api_token = "env:GLOBEX_TOKEN"
"#
    );
    Config::parse("centralino.toml", text).unwrap()
}

#[test]
fn the_admin_token_may_not_be_a_tenants_api_token() {
    let config = tokens_config();
    let env = |name: &str| {
        Some(match name {
            "ADMIN_TOKEN" | "GLOBEX_TOKEN" => "shared-t0ken-value".to_string(),
            _ => "acme-token".to_string(),
        })
    };
    let err = config.resolve_secrets_with(env).unwrap_err().to_string();
    assert!(
        err.contains(
            "tenants[1].api_token: `env:GLOBEX_TOKEN` holds the same token as \
             `host.admin_token`"
        ),
        "{err}"
    );
    assert!(!err.contains("shared-t0ken-value"), "{err}");
}

#[test]
fn a_blank_or_spaced_token_is_refused_and_surrounding_whitespace_is_trimmed() {
    let config = tokens_config();
    for (admin, why) in [
        ("   ", "is empty or only whitespace"),
        ("\t\n", "is empty or only whitespace"),
        ("two words", "holds whitespace or control characters"),
    ] {
        let env = |name: &str| {
            Some(match name {
                "ADMIN_TOKEN" => admin.to_string(),
                other => other.to_lowercase(),
            })
        };
        let err = config.resolve_secrets_with(env).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "host.admin_token: the token in `env:ADMIN_TOKEN` {why}"
            )),
            "{admin:?}: {err}"
        );
        assert!(!err.contains("two words"), "{err}");
    }
    // A tenant's token is held to the same rule.
    let env = |name: &str| {
        Some(match name {
            "ACME_TOKEN" => " ".to_string(),
            other => other.to_lowercase(),
        })
    };
    let err = config.resolve_secrets_with(env).unwrap_err().to_string();
    assert!(
        err.contains("tenants[0].api_token: the token in `env:ACME_TOKEN` is empty"),
        "{err}"
    );
    // Surrounding whitespace (a pasted newline) is not part of the token.
    let env = |name: &str| {
        Some(match name {
            "ADMIN_TOKEN" => "  admin-token\n".to_string(),
            other => other.to_lowercase(),
        })
    };
    let secrets = config.resolve_secrets_with(env).unwrap();
    assert_eq!(secrets.admin_token(), Some(&Secret::new("admin-token")));
}

#[test]
fn a_secret_pasted_after_env_is_never_repeated() {
    let fixture = Fixture::new();
    let err = fixture
        .load(&good_with(
            "\"env:X_TOKEN_TIM\"",
            "\"env:AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0supersecret%2Bx\"",
        ))
        .unwrap_err();
    assert!(!err.contains("supersecret"), "{err}");
    assert!(
        err.contains(
            "connectors[0].accounts[0].credential: `env:` must be followed by an \
             environment variable NAME matching `[A-Za-z_][A-Za-z0-9_]*`"
        ),
        "{err}"
    );
}

#[test]
fn init_into_a_missing_folder_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/site/centralino.toml");
    let path_arg = path.to_str().unwrap();
    let plugins = plugin_dir();
    let (code, stdout, stderr) = centralino_with_env(
        &[
            "init",
            "--path",
            path_arg,
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "created folder {}",
            dir.path().join("new/site").display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), starter(&plugins));
    // Where the folder cannot be made, the error says which and what to do.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let inside = blocked.join("centralino.toml");
    let (code, _, stderr) = centralino_with_env(
        &[
            "init",
            "--path",
            inside.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "cannot write {}: check that its folder is writable, or choose another --path",
            inside.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_piped_into_a_reader_that_stops_early_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centralino.toml");
    let plugins = plugin_dir();
    let (code, _, stderr) = centralino_with_env(
        &[
            "init",
            "--path",
            path.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    // `centralino check | head -0`: the reader is gone before the first line is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args([
            "check",
            "--skip-secrets",
            "--config",
            path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn retention_of_conversations_and_messages_is_checked_per_tenant_by_key_and_file() {
    let fixture = Fixture::new();
    let good = format!("{GOOD}\n[retention]\nconversations_days = 365\nmessages_days = 90\n");
    let config = fixture.load(&good).unwrap();
    let retention = config.tenants[0].retention;
    assert_eq!(
        retention.conversations,
        Some(Duration::from_secs(365 * 24 * 3600))
    );
    assert_eq!(
        retention.messages,
        Some(Duration::from_secs(90 * 24 * 3600))
    );
    // Left out: kept forever.
    let retention = fixture.load(GOOD).unwrap().tenants[0].retention;
    assert_eq!((retention.conversations, retention.messages), (None, None));

    let zero = format!("{GOOD}\n[retention]\nconversations_days = 0\n");
    let error = fixture.load(&zero).unwrap_err();
    assert!(
        error.contains("centralino.toml:") && error.contains("retention.conversations_days: must be between 1 and 36500 days, not 0: leave it out to keep conversations forever"),
        "{error}"
    );
    let typo = format!("{GOOD}\n[retention]\nmessage_days = 30\n");
    let error = fixture.load(&typo).unwrap_err();
    assert!(
        error.contains("retention.message_days: unknown key `message_days`, expected `conversations_days` or `messages_days`"),
        "{error}"
    );
    // With [[tenants]], each tenant has its own.
    let tenants = "[host]\nplugin_dir = \"plugins\"\n\n[retention]\nmessages_days = 30\n\n[[tenants]]\nid = \"tim\"\n\n[tenants.retention]\nmessages_days = 0\n";
    let error = fixture.load(tenants).unwrap_err();
    assert!(
        error.contains(
            "retention: with `[[tenants]]`, each tenant has its own: write `[tenants.retention]`"
        ),
        "{error}"
    );
    assert!(
        error.contains(
            "tenants[0].retention.messages_days: must be between 1 and 36500 days, not 0"
        ),
        "{error}"
    );

    // `centralino check` says the same, naming the file.
    let file = fixture.path().join("centralino.toml");
    std::fs::write(&file, &zero).unwrap();
    let (code, _, stderr) =
        crate::support::centralino(&["check", "--config", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&format!("{}:", file.display())), "{stderr}");
    assert!(stderr.contains("retention.conversations_days"), "{stderr}");
}

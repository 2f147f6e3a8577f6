//! Signed plugins: who built a component, and whether it changed since. A component signed
//! with `centralino plugin sign` loads where its key is trusted; a tampered one, an
//! unsigned one where signatures are required, and one signed by a key nobody trusts are
//! each refused, saying why.

use std::path::{Path, PathBuf};

use centralino::runtime::Error;
use centralino::runtime::{PluginTrust, Runtime, SigningKey, generate_key, inspect_file, sign};

use crate::component;
use crate::support::centralino;

fn new_key(dir: &Path, name: &str) -> SigningKey {
    let path = dir.join(name);
    std::fs::write(&path, generate_key().unwrap()).unwrap();
    SigningKey::from_file(&path).unwrap()
}

/// The echo-channel component signed by `key`, written into `dir`.
fn signed_echo(dir: &Path, key: &SigningKey, name: &str) -> PathBuf {
    let bytes = std::fs::read(component("echo-channel")).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, sign(&bytes, key, "ACME Plugins").unwrap()).unwrap();
    path
}

fn runtime(trust: PluginTrust) -> Runtime {
    Runtime::builder().trust(trust).build().unwrap()
}

fn refusal(result: Result<centralino::runtime::ChannelPlugin, Error>) -> String {
    match result {
        Ok(plugin) => panic!("{} loaded", plugin.id()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_component_signed_by_a_trusted_key_loads_and_shows_its_signer() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "acme.key");
    let path = signed_echo(dir.path(), &key, "echo.wasm");
    let trust = PluginTrust::trusting([key.public_key()])
        .unwrap()
        .require_signed(true);
    let plugin = runtime(trust).load_channel(&path).unwrap();
    let signature = plugin.info().signature.clone().unwrap();
    assert_eq!(signature.signer, "ACME Plugins");
    assert_eq!(signature.key, key.public_key());
    assert!(signature.valid);
    // Signing again replaces the signature rather than stacking a second one.
    let twice = sign(&std::fs::read(&path).unwrap(), &key, "ACME Plugins").unwrap();
    assert_eq!(twice, std::fs::read(&path).unwrap());
    // Unsigned components are unaffected where signatures are not required.
    let info = inspect_file(&component("echo-channel")).unwrap();
    assert_eq!(info.signature, None);
    runtime(PluginTrust::default())
        .load_channel(component("echo-channel"))
        .unwrap();
}

#[test]
fn a_tampered_component_is_refused_even_where_signatures_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "acme.key");
    let path = signed_echo(dir.path(), &key, "echo.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    // One byte of the plugin's metadata JSON: still a valid component, no longer the
    // one that was signed.
    let at = bytes
        .windows(b"echo-channel".len())
        .position(|w| w == b"echo-channel")
        .unwrap();
    bytes[at] = b'E';
    std::fs::write(&path, &bytes).unwrap();
    let info = inspect_file(&path).unwrap();
    assert!(!info.signature.unwrap().valid);
    let error = refusal(runtime(PluginTrust::default()).load_channel(&path));
    assert!(
        error.contains("does not match the file: the component was changed after it was signed"),
        "{error}"
    );
    // Bytes added after the signature are refused too.
    let path = signed_echo(dir.path(), &key, "appended.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0, 4, 3, b'x', b'y', b'z']);
    std::fs::write(&path, &bytes).unwrap();
    let error = refusal(runtime(PluginTrust::default()).load_channel(&path));
    assert!(error.contains("is not the last in the file"), "{error}");
}

#[test]
fn where_signatures_are_required_unsigned_and_untrusted_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = new_key(dir.path(), "acme.key");
    let stranger = new_key(dir.path(), "stranger.key");
    let trust = PluginTrust::trusting([trusted.public_key()])
        .unwrap()
        .require_signed(true);
    let runtime = runtime(trust);

    let error = refusal(runtime.load_channel(component("echo-channel")));
    assert!(
        error.contains("it is not signed, and this host requires signed plugins"),
        "{error}"
    );
    let path = signed_echo(dir.path(), &stranger, "stranger.wasm");
    let error = refusal(runtime.load_channel(&path));
    assert!(
        error.contains(&format!(
            "signed by \"ACME Plugins\" with key {}, which is not among the trusted keys",
            stranger.public_key()
        )),
        "{error}"
    );
    let path = signed_echo(dir.path(), &trusted, "trusted.wasm");
    runtime.load_channel(&path).unwrap();
}

#[test]
fn keygen_sign_inspect_and_check_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("acme.key");
    let (code, stdout, stderr) = centralino(&["plugin", "keygen", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key    "))
        .unwrap()
        .to_string();
    assert!(public.starts_with("ed25519:"), "{stdout}");
    // An existing key is never overwritten.
    let (code, _, stderr) = centralino(&["plugin", "keygen", key.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("never overwritten"), "{stderr}");

    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let wasm = plugins.join("echo-channel.wasm");
    std::fs::copy(component("echo-channel"), &wasm).unwrap();
    let (code, stdout, stderr) = centralino(&[
        "plugin",
        "sign",
        wasm.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--signer",
        "ACME Plugins",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("by \"ACME Plugins\""), "{stdout}");
    let (code, stdout, stderr) = centralino(&["plugin", "inspect", wasm.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "signed by     \"ACME Plugins\" ({public}), signature valid"
        )),
        "{stdout}"
    );

    let config = dir.path().join("centralino.toml");
    let write_config = |keys: &str| {
        std::fs::write(
            &config,
            format!(
                "[host]\nplugin_dir = \"plugins\"\nstore = \"sqlite://{}\"\n\
                 trusted_keys = [{keys}]\nrequire_signed = true\n\n\
                 [[connectors]]\nname = \"echo\"\nplugin = \"echo-channel\"\n\n\
                 [[connectors.accounts]]\nid = \"1\"\nhandle = \"shop\"\n",
                dir.path().join("c.db").display()
            ),
        )
        .unwrap();
    };
    write_config(&format!("\"{public}\""));
    let (code, stdout, stderr) =
        centralino(&["check", "--config", config.to_str().unwrap(), "--load"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // The same file changed by one byte: refused at load, and `inspect` says so.
    let mut bytes = std::fs::read(&wasm).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&wasm, &bytes).unwrap();
    let (code, _, stderr) = centralino(&["plugin", "inspect", wasm.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("does not match the file"), "{stderr}");

    // A config that requires signatures but trusts nobody names the key to fix.
    write_config("");
    let (code, _, stderr) = centralino(&["check", "--config", config.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("host.require_signed") && stderr.contains("`trusted_keys` is empty"),
        "{stderr}"
    );
    write_config("\"ed25519:short\"");
    let (code, _, stderr) = centralino(&["check", "--config", config.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("host.trusted_keys[0]") && stderr.contains("`ed25519:short`"),
        "{stderr}"
    );
}

fn echo_spec(tenant: &str, plugin: &Path) -> centralino::connectors::ConnectorSpec {
    use centralino::types::{AccountConfig, ConnectorConfig};
    centralino::connectors::ConnectorSpec::new(
        "echo",
        plugin,
        ConnectorConfig {
            settings: Vec::new(),
            accounts: vec![AccountConfig {
                id: "shop".to_string(),
                ..AccountConfig::default()
            }],
        },
    )
    .tenant(tenant)
}

#[tokio::test]
async fn a_tenant_can_require_signed_plugins_where_the_host_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "acme.key");
    let signed = signed_echo(dir.path(), &key, "echo-signed.wasm");
    let unsigned = component("echo-channel");
    let trust = || {
        PluginTrust::trusting([key.public_key()])
            .unwrap()
            .require_signed_for("acme")
    };
    // acme's unsigned connector stops the host, naming the tenant's rule …
    let error = centralino::Host::builder()
        .runtime(runtime(trust()))
        .connector(echo_spec("acme", &unsigned))
        .connector(echo_spec("beta", &unsigned))
        .build()
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("it is not signed")
            && error.contains("tenant `acme` requires signed plugins"),
        "{error}"
    );
    // … while beta, which requires nothing, runs the same file, and acme runs a signed one.
    centralino::Host::builder()
        .runtime(runtime(trust()))
        .connector(echo_spec("acme", &signed))
        .connector(echo_spec("beta", &unsigned))
        .build()
        .await
        .unwrap();
}

#[test]
fn a_tenants_require_signed_applies_to_check_load() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("acme.key");
    std::fs::write(&key_path, generate_key().unwrap()).unwrap();
    let key = SigningKey::from_file(&key_path).unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(component("echo-channel"), plugins.join("echo-channel.wasm")).unwrap();
    signed_echo(&plugins, &key, "echo-signed.wasm");
    let config = dir.path().join("centralino.toml");
    let write = |acme_plugin: &str| {
        std::fs::write(
            &config,
            format!(
                "[host]\nplugin_dir = \"plugins\"\nstore = \"sqlite://{db}\"\n\
                 trusted_keys = [\"{key}\"]\n\n\
                 [[tenants]]\nid = \"acme\"\nrequire_signed = true\n\
                 [[tenants.connectors]]\nname = \"echo\"\nplugin = \"{acme_plugin}\"\n\
                 [[tenants.connectors.accounts]]\nid = \"1\"\n\n\
                 [[tenants]]\nid = \"beta\"\n\
                 [[tenants.connectors]]\nname = \"echo\"\nplugin = \"echo-channel\"\n\
                 [[tenants.connectors.accounts]]\nid = \"1\"\n",
                db = dir.path().join("c.db").display(),
                key = key.public_key()
            ),
        )
        .unwrap();
    };
    write("echo-channel");
    let (code, stdout, stderr) =
        centralino(&["check", "--config", config.to_str().unwrap(), "--load"]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("tenant `acme` requires signed plugins") && !stderr.contains("`beta`"),
        "{stderr}"
    );
    write("echo-signed");
    let (code, stdout, stderr) =
        centralino(&["check", "--config", config.to_str().unwrap(), "--load"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

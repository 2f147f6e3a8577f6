//! `centralino plugin new`: a new plugin crate that builds into a component and passes its
//! own tests out of the box.
//!
//! ```text
//! centralino plugin new --kind channel acme              # plugins/acme, added to the workspace
//! centralino plugin new --kind channel acme --poll       # a connector that polls instead
//! centralino plugin new --kind router fair --dir /tmp/x  # a standalone crate anywhere
//! ```
//!
//! Inside the centralino plugins workspace (a `Cargo.toml` with `[workspace]` that names
//! `centralino-plugin-sdk` among its dependencies) the crate takes its dependencies from the
//! workspace and is added to its `members`, so `cargo xtask plugins` builds it. Anywhere
//! else it is a workspace of its own that depends on the SDK by version
//! ([`SDK_REQUIREMENT`]), or by path when `--sdk PATH` asks for it.
//!
//! The templates live in `templates/` beside this file: a connector that takes signed
//! webhooks and sends through the host's `http` import, one that polls instead (cursor,
//! first-poll semantics, the platform's pause as `next-poll-after-ms`), and a routing
//! policy; all with unit tests of their own logic that pass `cargo clippy --all-targets`
//! with default lints plus the manifest's `unwrap_used`/`expect_used`, inside the
//! repository or out of it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The kind of plugin to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A channel connector (world `channel`).
    Channel,
    /// A routing policy (world `routing-policy`).
    Router,
}

/// `centralino plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// What to create.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Crate name: lower-case letters, digits and `-`. It is also the channel name (for a
    /// connector) and the component's file name.
    name: String,
    /// Folder to create the crate in.
    #[arg(long, default_value = "plugins")]
    dir: PathBuf,
    /// The guest SDK by path, for a crate outside the plugins workspace (a local or
    /// unpublished SDK). Without it the crate depends on the SDK by version
    /// (`centralino-plugin-sdk = "0.3"`, the line that targets contract 0.3).
    #[arg(long)]
    sdk: Option<PathBuf>,
    /// A connector that polls the platform (cursor, first poll, pauses) instead of taking
    /// webhooks; only with `--kind channel`.
    #[arg(long)]
    poll: bool,
}

const WORKSPACE_MANIFEST: &str = include_str!("templates/Cargo.workspace.toml.tmpl");
const STANDALONE_MANIFEST: &str = include_str!("templates/Cargo.standalone.toml.tmpl");
const CHANNEL: &str = include_str!("templates/channel.rs.tmpl");
const CHANNEL_POLL: &str = include_str!("templates/channel_poll.rs.tmpl");
const ROUTER: &str = include_str!("templates/router.rs.tmpl");

/// The SDK line a new crate depends on by version: SDK 0.3.x targets contract 0.3, which
/// every host that loads 0.3 plugins accepts (docs/contract-versioning.md).
pub(crate) const SDK_REQUIREMENT: &str = "0.3";

/// Runs `centralino plugin new` and prints what was created and what to run next.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    if args.poll && args.kind != Kind::Channel {
        bail!("--poll makes a polling connector: use it with --kind channel");
    }
    let crate_dir = args.dir.join(&args.name);
    if crate_dir.exists() {
        bail!(
            "{} already exists: pick another name or remove it",
            crate_dir.display()
        );
    }
    let workspace_manifest = args.dir.join("Cargo.toml");
    let in_workspace = std::fs::read_to_string(&workspace_manifest)
        .map(|text| text.contains("[workspace]") && text.contains("centralino-plugin-sdk"))
        .unwrap_or(false);
    let description = match args.kind {
        Kind::Channel => format!("Channel connector {}.", args.name),
        Kind::Router => format!("Routing policy {}.", args.name),
    };
    let manifest = if in_workspace {
        fill(WORKSPACE_MANIFEST, &args.name, &description, "")
    } else {
        let dependency = match &args.sdk {
            None => format!("{SDK_REQUIREMENT:?}"),
            Some(sdk) => {
                let sdk = std::fs::canonicalize(sdk).with_context(|| {
                    format!(
                        "the guest SDK is not at {} (--sdk): give the folder of \
                         centralino-plugin-sdk, or leave --sdk out to depend on it by version",
                        sdk.display()
                    )
                })?;
                format!("{{ path = {:?} }}", sdk.to_string_lossy())
            }
        };
        fill(STANDALONE_MANIFEST, &args.name, &description, &dependency)
    };
    let source = match (args.kind, args.poll) {
        (Kind::Channel, false) => CHANNEL,
        (Kind::Channel, true) => CHANNEL_POLL,
        (Kind::Router, _) => ROUTER,
    };
    let source = fill(source, &args.name, &description, "");

    let src = crate_dir.join("src");
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    write(&crate_dir.join("Cargo.toml"), &manifest)?;
    write(&src.join("lib.rs"), &source)?;
    let what = match (args.kind, args.poll) {
        (Kind::Channel, false) => "channel connector",
        (Kind::Channel, true) => "polling channel connector",
        (Kind::Router, _) => "routing policy",
    };
    println!("created {what} `{}` in {}", args.name, crate_dir.display());
    if args.poll {
        println!(
            "the host polls it every `poll_interval_secs` of its [[connectors]] entry; \
             its first poll starts from now (setting `backfill = \"true\"` keeps the latest page)"
        );
    }

    if in_workspace {
        match add_member(&workspace_manifest, &args.name)? {
            true => println!(
                "added \"{}\" to the members of {}",
                args.name,
                workspace_manifest.display()
            ),
            false => println!(
                "add \"{}\" to the `members` list of {} so `cargo xtask plugins` builds it",
                args.name,
                workspace_manifest.display()
            ),
        }
        println!("next:");
        println!(
            "  cargo xtask plugins                         # builds target/plugins/{}.wasm",
            args.name
        );
        println!(
            "  (cd {} && cargo test -p {})   # its own tests, on this machine",
            args.dir.display(),
            args.name
        );
        println!(
            "  centralino plugin inspect target/plugins/{}.wasm",
            args.name
        );
    } else {
        println!("next:");
        println!(
            "  (cd {} && cargo build --release --target wasm32-wasip2)",
            crate_dir.display()
        );
        println!(
            "  (cd {} && cargo test)   # its own tests, on this machine",
            crate_dir.display()
        );
        println!(
            "  centralino plugin inspect {}/target/wasm32-wasip2/release/{}.wasm",
            crate_dir.display(),
            args.name.replace('-', "_")
        );
    }
    Ok(())
}

/// A crate name that is also a fine channel name and file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "`{name}` is not a plugin name: use lower-case letters, digits and single `-`, \
             starting with a letter (like `acme-chat`)"
        );
    }
    if ["sdk", "test", "core", "std"].contains(&name) {
        bail!("`{name}` is reserved: pick another name");
    }
    Ok(())
}

/// `acme-chat` → `AcmeChat`: the plugin's type name.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn fill(template: &str, name: &str, description: &str, sdk: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{Type}}", &type_name(name))
        .replace("{{description}}", description)
        .replace("{{sdk}}", sdk)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Adds `name` to `members = [ … ]` of a workspace manifest, keeping its layout. Returns
/// false when the list is not where this simple edit can find it.
fn add_member(manifest: &Path, name: &str) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let Some(start) = text.find("members = [") else {
        return Ok(false);
    };
    let Some(close) = text[start..].find(']').map(|at| start + at) else {
        return Ok(false);
    };
    let list = &text[start..close];
    if list.contains(&format!("\"{name}\"")) {
        return Ok(true);
    }
    let entry = if list.contains('\n') {
        format!("    \"{name}\",\n")
    } else if list.trim_end().ends_with('[') {
        format!("\"{name}\"")
    } else {
        format!(", \"{name}\"")
    };
    // A multi-line list ends with `\n]`: insert before the closing line.
    let at = if list.contains('\n') {
        text[..close].rfind('\n').map_or(close, |nl| nl + 1)
    } else {
        close
    };
    let mut edited = String::with_capacity(text.len() + entry.len());
    edited.push_str(&text[..at]);
    edited.push_str(&entry);
    edited.push_str(&text[at..]);
    write(manifest, &edited)?;
    Ok(true)
}

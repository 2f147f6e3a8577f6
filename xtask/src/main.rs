//! Build tasks for centralino. Run with `cargo xtask <task>`:
//!
//! - `plugins`: builds every crate under `plugins/` into a WebAssembly component in
//!   `target/plugins/<name>.wasm`, installing the wasm toolchain first if needed; every
//!   TypeScript plugin (`plugins/<name>/package.json`) with componentize-js from the npm
//!   registry (see `js.rs`; needs Node.js and npm); and every Python plugin (a folder with
//!   `app.py`, see `python.rs`) with componentize-py from PyPI.
//! - `test`: builds the plugins, then runs the whole test suite (the README's test command),
//!   schemathesis against the REST API included.
//! - `demo`: builds the plugins and the host, then runs `centralino demo` with the
//!   arguments given (`cargo xtask demo --console` keeps the host and its console up).
//! - `public-api`: lists the public API of the library and of the runtime crate it
//!   re-exports from (rustdoc JSON, no default features, written against the dependencies
//!   the test build compiled: see `rustdoc.rs`) into `host/public-api.txt`;
//!   `public-api --check` fails when the list and the code differ, so nothing becomes
//!   public by accident (`test` runs the check).
//! - `schemathesis`: builds the plugins and the host, installs a pinned schemathesis into
//!   `target/schemathesis-venv`, and runs it with every check against the REST API of a
//!   real `centralino run` (see `schemathesis.rs`); `test` runs it too.
//! - `bench`: builds the plugins, then runs the benchmark report (`centralino-bench`, a
//!   release build) and writes it to `target/bench-report.md`; arguments go to the report
//!   (`cargo xtask bench -- --help`). See `BENCHMARKS.md`.
//!
//! Toolchain routes, tried in order (see `TOOLCHAIN.md` of the design notes):
//! 1. rustup's `wasm32-wasip2` target, installed with a time limit when missing;
//! 2. Debian's `rustc-web` with the standard library built from source for
//!    `wasm32-unknown-unknown`, wrapped into components by `wasm-tools`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

mod js;
mod python;
mod rustdoc;
mod schemathesis;

const RUSTUP_TARGET_TIMEOUT: Duration = Duration::from_secs(120);
const WASM_TOOLS_VERSION: &str = "1.263.0";

fn main() -> ExitCode {
    started();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "plugins" => build_plugins().map(|_| ()),
        "test" => test(),
        "demo" => demo(&args[1..]),
        "bench" => bench(&args[1..]),
        "schemathesis" => build_plugins().and_then(|_| {
            step("building the host (`centralino` binary)");
            run(cargo_compiling(&["build"])
                .args(["--package", "centralino", "--bin", "centralino"])
                .current_dir(root()))?;
            schemathesis::run_against_host()
        }),
        "public-api" => rustdoc::Build::read(&root()).and_then(|built| {
            public_api(args.get(1).map(String::as_str) == Some("--check"), &built)
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <plugins|test|demo [demo args]|bench [bench args]|public-api [--check]|schemathesis>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// When this task started: every step line says how long the task has been running, so a
/// slow step shows in the log of a run that is over.
fn started() -> Instant {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

fn step(message: &str) {
    let elapsed = started().elapsed().as_secs();
    eprintln!("==> [{:>2}:{:02}] {message}", elapsed / 60, elapsed % 60);
}

/// Cargo, without what `cargo run` told this program about itself (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR` and the like). Build scripts that watch those variables (ring's
/// does) would otherwise run again, and their crates compile again, each time a build
/// from here and one from a plain shell take turns on the same target folder.
fn cargo() -> Command {
    let mut cargo = Command::new("cargo");
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_run) {
            cargo.env_remove(key);
        }
    }
    cargo
}

/// `cargo SUBCOMMAND …` for a subcommand that compiles the workspace (which compiles
/// wasmtime). The workspace declares the Rust its dependencies declare (1.96, wasmtime
/// 49's); on an older toolchain that still builds them (1.95 does: wasmtime 49 uses
/// nothing 1.96 added), cargo is told to `--ignore-rust-version`, which it otherwise
/// refuses before compiling anything.
fn cargo_compiling(subcommand: &[&str]) -> Command {
    let mut cargo = cargo();
    cargo.args(subcommand);
    if older_than_the_workspace_declares() {
        cargo.arg("--ignore-rust-version");
    }
    cargo
}

/// Whether this machine's `rustc` is older than the workspace's `rust-version` (said once,
/// when first asked). A version it cannot read counts as new enough: cargo then says what
/// is wrong.
fn older_than_the_workspace_declares() -> bool {
    static OLDER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OLDER.get_or_init(|| {
        let declared = std::fs::read_to_string(root().join("Cargo.toml"))
            .ok()
            .and_then(|manifest| {
                manifest.lines().find_map(|line| {
                    let value = line.strip_prefix("rust-version = ")?;
                    major_minor(value.trim_matches('"'))
                })
            });
        let out = Command::new("rustc").arg("--version").output().ok();
        let found = out.and_then(|out| {
            let text = String::from_utf8(out.stdout).ok()?;
            major_minor(text.split_whitespace().nth(1)?)
        });
        let (Some(declared), Some(found)) = (declared, found) else {
            return false;
        };
        let older = found < declared;
        if older {
            step(&format!(
                "rustc {}.{} is older than the {}.{} the workspace declares (wasmtime's); it \
                 builds all the same, so cargo is passed --ignore-rust-version",
                found.0, found.1, declared.0, declared.1
            ));
        }
        older
    })
}

/// `1.95.0` or `1.96` as (1, 95) or (1, 96).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether `cargo run` (or a test run) sets `name` for the program it starts.
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_MANIFEST_LINKS",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ]
        .contains(&name)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn succeeds(command: &mut Command) -> bool {
    command
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How guests get compiled on this machine.
enum Route {
    /// `cargo build --target wasm32-wasip2` emits components directly.
    Wasip2,
    /// Debian rustc + `-Zbuild-std` for `wasm32-unknown-unknown`, then `wasm-tools component new`.
    DebianBuildStd,
}

fn choose_route() -> anyhow::Result<Route> {
    if let Some(installed) = output(Command::new("rustup").args(["target", "list", "--installed"]))
    {
        if installed.lines().any(|l| l.trim() == "wasm32-wasip2") {
            step("wasm toolchain: rustup target wasm32-wasip2 is installed");
            return Ok(Route::Wasip2);
        }
        step("wasm toolchain: installing rustup target wasm32-wasip2 (time limit 120 s)");
        if rustup_target_add()? {
            return Ok(Route::Wasip2);
        }
        step(
            "wasm toolchain: rustup could not install wasm32-wasip2; falling back to Debian's rustc-web",
        );
    } else {
        step("wasm toolchain: rustup not found; using Debian's rustc-web");
    }
    ensure_debian_toolchain()?;
    Ok(Route::DebianBuildStd)
}

/// `rustup target add wasm32-wasip2`, killed if it outlives the time limit.
fn rustup_target_add() -> anyhow::Result<bool> {
    let mut child = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .spawn()
        .context("starting rustup")?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if started.elapsed() > RUSTUP_TARGET_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "    rustup did not finish within {} s",
                RUSTUP_TARGET_TIMEOUT.as_secs()
            );
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ensure_debian_toolchain() -> anyhow::Result<()> {
    let have = Path::new("/usr/bin/rustc").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library").exists()
        && Path::new("/usr/bin/wasm-ld-22").exists();
    if !have {
        step("installing rustc-web, cargo-web, rust-web-src and lld-22 with apt-get");
        run(Command::new("apt-get").arg("update").arg("-q")).context(
            "apt-get update failed: Debian's package archive is needed for the fallback route",
        )?;
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "rustc-web",
                "cargo-web",
                "rust-web-src",
                "lld-22",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .context("could not install the Debian wasm toolchain (rustc-web, rust-web-src, lld-22)")?;
    }
    if !succeeds(Command::new("wasm-tools").arg("--version")) {
        step(&format!(
            "installing wasm-tools {WASM_TOOLS_VERSION} with cargo (takes a few minutes)"
        ));
        run(cargo().args([
            "install",
            &format!("wasm-tools@{WASM_TOOLS_VERSION}"),
            "--locked",
            "--no-default-features",
            "--features",
            "component,validate,print,metadata",
        ]))
        .context("could not install wasm-tools, needed to turn core modules into components")?;
    }
    Ok(())
}

/// Names of the `cdylib` crates of the plugins workspace: every one becomes a component.
fn guest_crates(plugins: &Path) -> anyhow::Result<Vec<String>> {
    let out = cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(plugins)
        .output()
        .context("running cargo metadata in plugins/")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed in plugins/: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let mut guests = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let is_component = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|target| {
                target["crate_types"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t == "cdylib")
            });
        if is_component && let Some(name) = package["name"].as_str() {
            guests.push(name.to_string());
        }
    }
    guests.sort();
    Ok(guests)
}

/// Builds every guest and returns the component paths.
fn build_plugins() -> anyhow::Result<Vec<PathBuf>> {
    let root = root();
    let target_dir = root.join("target");
    let out_dir = target_dir.join("plugins");
    let route = choose_route()?;
    let started = Instant::now();
    let (triple, mut cargo) = match route {
        Route::Wasip2 => {
            let mut cargo = cargo();
            cargo.args(["build", "--release", "--target", "wasm32-wasip2"]);
            ("wasm32-wasip2", cargo)
        }
        Route::DebianBuildStd => {
            let mut cargo = cargo();
            cargo
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-unknown-unknown",
                    "-Zbuild-std=std,panic_abort",
                ])
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld-22");
            ("wasm32-unknown-unknown", cargo)
        }
    };
    let guests = guest_crates(&root.join("plugins"))?;
    step(&format!(
        "building {} plugin crates for {triple}: {}",
        guests.len(),
        guests.join(", ")
    ));
    run(cargo
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", &target_dir))
    .context("building the plugin crates failed")?;

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut built = Vec::new();
    for guest in &guests {
        let artifact = target_dir
            .join(triple)
            .join("release")
            .join(format!("{}.wasm", guest.replace('-', "_")));
        let component = out_dir.join(format!("{guest}.wasm"));
        match route {
            Route::Wasip2 => {
                std::fs::copy(&artifact, &component).with_context(|| {
                    format!("copying {} to {}", artifact.display(), component.display())
                })?;
            }
            Route::DebianBuildStd => run(Command::new("wasm-tools")
                .args(["component", "new"])
                .arg(&artifact)
                .arg("-o")
                .arg(&component))
            .with_context(|| format!("wrapping {} into a component", artifact.display()))?,
        }
        built.push(component);
    }
    built.extend(js::build(&root, &out_dir)?);
    built.extend(python::build_all(&root, &out_dir)?);
    step(&format!(
        "{} components in {} ({:.1} s)",
        built.len(),
        out_dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(built)
}

/// Where the store tests find PostgreSQL (a role and database this task creates).
const POSTGRES_URL: &str = "postgres://centralino:centralino@127.0.0.1:5432/centralino";

/// Makes sure a PostgreSQL server accepts connections on 127.0.0.1:5432 with the test
/// role and database: starts Debian's cluster, installing the package if needed.
fn ensure_postgres() -> anyhow::Result<String> {
    let ready =
        || succeeds(Command::new("pg_isready").args(["-q", "-h", "127.0.0.1", "-p", "5432"]));
    if !ready() {
        if output(Command::new("pg_lsclusters").arg("-h"))
            .is_none_or(|clusters| clusters.trim().is_empty())
        {
            step("installing PostgreSQL with apt-get (store tests run on SQLite and PostgreSQL)");
            run(Command::new("apt-get").arg("update").arg("-q"))
                .context("apt-get update failed")?;
            run(Command::new("apt-get")
                .args(["install", "-y", "-q", "postgresql"])
                .env("DEBIAN_FRONTEND", "noninteractive"))
            .context("could not install PostgreSQL from Debian's packages")?;
        }
        let clusters = output(Command::new("pg_lsclusters").arg("-h")).unwrap_or_default();
        let Some((version, name)) = clusters.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        }) else {
            bail!("PostgreSQL is installed but has no cluster (pg_lsclusters lists none)");
        };
        step(&format!("starting PostgreSQL cluster {version}/{name}"));
        // A cluster that is already up (busy, or still starting) makes `start` fail with
        // "already running": what counts is whether it then accepts connections.
        let started =
            run(Command::new("pg_ctlcluster").args([version.as_str(), name.as_str(), "start"]));
        for _ in 0..100 {
            if ready() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !ready() {
            match started {
                Err(e) => bail!("could not start PostgreSQL: {e:#}"),
                Ok(()) => bail!("PostgreSQL did not accept connections on 127.0.0.1:5432"),
            }
        }
    }
    let psql = |sql: &str| {
        output(Command::new("runuser").args(["-u", "postgres", "--", "psql", "-tAc", sql]))
    };
    if psql("SELECT 1 FROM pg_roles WHERE rolname = 'centralino'")
        .unwrap_or_default()
        .trim()
        != "1"
    {
        step("creating the PostgreSQL role `centralino`");
        psql("CREATE ROLE centralino LOGIN SUPERUSER PASSWORD 'centralino'")
            .context("could not create the PostgreSQL role `centralino`")?;
    }
    if psql("SELECT 1 FROM pg_database WHERE datname = 'centralino'")
        .unwrap_or_default()
        .trim()
        != "1"
    {
        psql("CREATE DATABASE centralino OWNER centralino")
            .context("could not create the PostgreSQL database `centralino`")?;
    }
    // Databases left by earlier test runs (each store test makes a fresh one).
    let stale = psql("SELECT datname FROM pg_database WHERE datname LIKE 'centralino_test_%'")
        .unwrap_or_default();
    for name in stale.lines().map(str::trim).filter(|n| !n.is_empty()) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {name}"));
    }
    step(&format!(
        "PostgreSQL ready for the store tests at {}",
        POSTGRES_URL.replace(":centralino@", ":***@")
    ));
    Ok(POSTGRES_URL.to_string())
}

/// Makes sure Debian's Chromium and ChromeDriver are installed, for the console's browser
/// tests (host/tests/all/console.rs): they skip without them, so CI must have them.
fn ensure_chromium() -> anyhow::Result<()> {
    let installed = || {
        ["/usr/bin/chromium", "/usr/bin/chromedriver"]
            .iter()
            .all(|path| Path::new(path).exists())
    };
    if !installed() {
        step("installing Chromium and ChromeDriver with apt-get (the console's browser tests)");
        run(Command::new("apt-get").arg("update").arg("-q")).context("apt-get update failed")?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .context("could not install Chromium and ChromeDriver from Debian's packages")?;
    }
    if !installed() {
        bail!(
            "chromium-driver is installed but /usr/bin/chromium or /usr/bin/chromedriver is missing"
        );
    }
    let version =
        output(Command::new("/usr/bin/chromedriver").arg("--version")).unwrap_or_default();
    step(&format!(
        "Chromium ready for the console's browser tests ({})",
        version.trim()
    ));
    Ok(())
}

/// Makes sure `openssl` is installed: the plugin guide signs a test delivery with it, and
/// `host/tests/all/outside.rs` runs the guide's commands as written.
fn ensure_openssl() -> anyhow::Result<()> {
    if output(Command::new("openssl").arg("version")).is_some() {
        return Ok(());
    }
    step("installing openssl with apt-get (the plugin guide's commands use it)");
    run(Command::new("apt-get").arg("update").arg("-q")).context("apt-get update failed")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "openssl"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("could not install openssl from Debian's packages")
}

fn test() -> anyhow::Result<()> {
    build_plugins()?;
    let postgres = ensure_postgres()?;
    ensure_chromium()?;
    ensure_openssl()?;
    let root = root();
    step("checking formatting (cargo fmt --check)");
    run(cargo().args(["fmt", "--all", "--check"]).current_dir(&root))
        .context("code is not formatted: run `cargo fmt --all`")?;
    run(cargo()
        .args(["fmt", "--all", "--check"])
        .current_dir(root.join("plugins")))
    .context("plugin code is not formatted: run `cargo fmt --all` in plugins/")?;
    // One build for every step below: the suite's test binaries and, with them, the
    // `centralino` binary schemathesis runs (built on its own, `cargo build -p centralino`,
    // it gets the host's features alone, not those the tests' dev dependencies add to
    // shared crates such as regex-automata and zerocopy, and those and the crates built
    // on them would compile a second time); the public-API listing reads its artifacts.
    step(
        "building the host and the test suite (the first build takes many minutes; cargo shows its progress)",
    );
    let built = rustdoc::Build::read(&root)?;
    public_api(true, &built)?;
    // The REST API as an outside client meets it (a real host, the checked-in OpenAPI
    // document), before the suites, so the run closes on the main suite's summary.
    schemathesis::run_against_host()?;
    // Doc tests first, so the run closes on the main suite's summary.
    step("running documentation tests");
    run(cargo_compiling(&["test"])
        .args(["--workspace", "--doc"])
        .current_dir(&root))?;
    step("running the plugin SDK's own tests (natively: its allocator, its helpers)");
    run(cargo()
        .args(["test", "-p", "centralino-plugin-sdk"])
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", root.join("target")))?;
    let mut suite = if succeeds(cargo().args(["nextest", "--version"])) {
        step("running the test suite with cargo nextest (SQLite and PostgreSQL)");
        let mut suite = cargo_compiling(&["nextest", "run"]);
        suite.args(["--workspace", "--no-fail-fast"]);
        suite
    } else {
        step("running the test suite with cargo test (cargo-nextest is not installed)");
        let mut suite = cargo_compiling(&["test"]);
        suite.args(["--workspace", "--no-fail-fast", "--tests"]);
        suite
    };
    // One compile cache for the whole suite (read by the test builds only: see
    // `test_cache_dir` in the runtime), emptied first so it never grows across runs.
    let cache = cargo_target_dir(&root).join("test-cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache)
            .with_context(|| format!("emptying the tests' compile cache {}", cache.display()))?;
    }
    run(suite
        .env("CENTRALINO_TEST_POSTGRES", &postgres)
        .env("CENTRALINO_TEST_CACHE_DIR", &cache)
        .env("CENTRALINO_TEST_BROWSER", "required")
        .current_dir(&root))?;
    Ok(())
}

fn demo(args: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    let root = root();
    // The first build compiles wasmtime (minutes on two cores): cargo's own progress
    // shows, so nobody stares at a silent terminal.
    step("building the host (the first build takes several minutes; cargo shows its progress)");
    run(cargo_compiling(&["build"])
        .args(["--package", "centralino", "--bin", "centralino"])
        .current_dir(&root))?;
    step("running `centralino demo`");
    run(cargo_compiling(&["run"])
        .args([
            "--quiet",
            "--package",
            "centralino",
            "--bin",
            "centralino",
            "--",
            "demo",
        ])
        .args(args)
        .current_dir(&root))
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    let root = root();
    let args: Vec<&String> = args.iter().filter(|a| *a != "--").collect();
    let shown: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let mut command = cargo_compiling(&["run"]);
    let label = format!("cargo xtask bench {}", shown.join(" "));
    command.env("CENTRALINO_BENCH_COMMAND", label.trim_end());
    command
        .args(["--release", "--package", "centralino-bench", "--"])
        .args(&args)
        .current_dir(&root);
    if !args.iter().any(|a| a.as_str() == "--report") {
        let report = root.join("target").join("bench-report.md");
        command.arg("--report").arg(report);
    }
    step("building (release) and running the benchmarks; the report follows");
    run(&mut command)
}

/// Where the public API list is kept.
const PUBLIC_API: &str = "host/public-api.txt";

/// The library and the runtime crate it re-exports from, listed with no features on: a
/// re-exported item shows as a `use` line in the library's list, and its fields, variants
/// and methods in the runtime's, so a change to either is caught.
const DOCUMENTED: [&str; 2] = ["centralino", "centralino-runtime"];

/// Where cargo builds the workspace: `CARGO_TARGET_DIR`, else `target/` at the root.
fn cargo_target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Writes (or, with `check`, compares) the list of the library's public items, from
/// rustdoc's JSON written against what the test build `built`.
fn public_api(check: bool, built: &rustdoc::Build) -> anyhow::Result<()> {
    let root = root();
    step("listing the library's public API (rustdoc JSON, on the test build's artifacts)");
    let target = cargo_target_dir(&root);
    let documents = match from_test_build(built, &target) {
        Ok(documents) => documents,
        Err(e) => {
            step(&format!(
                "rustdoc on the test build's artifacts failed ({e:#}); \
                 asking cargo rustdoc instead (it checks every dependency again: minutes)"
            ));
            by_cargo_rustdoc(&root, &target)?
        }
    };
    let mut lines = Vec::new();
    for (package, json_path) in DOCUMENTED.iter().zip(&documents) {
        let text = std::fs::read_to_string(json_path)
            .with_context(|| format!("reading {}", json_path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", json_path.display()))?;
        lines.extend(api::list(&doc, &package.replace('-', "_"))?);
    }
    let listed = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let file = root.join(PUBLIC_API);
    if !check {
        std::fs::write(&file, &listed).with_context(|| format!("writing {}", file.display()))?;
        step(&format!(
            "{} public items written to {PUBLIC_API}",
            lines.len()
        ));
        return Ok(());
    }
    let kept = std::fs::read_to_string(&file).unwrap_or_default();
    let kept: std::collections::BTreeSet<&str> = kept.lines().collect();
    let now: std::collections::BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    let added: Vec<&&str> = now.difference(&kept).collect();
    let removed: Vec<&&str> = kept.difference(&now).collect();
    if added.is_empty() && removed.is_empty() {
        step(&format!(
            "public API unchanged: {} items, as {PUBLIC_API} lists",
            lines.len()
        ));
        return Ok(());
    }
    for line in &added {
        eprintln!("    + {line}");
    }
    for line in &removed {
        eprintln!("    - {line}");
    }
    bail!(
        "the library's public API differs from {PUBLIC_API} ({} added, {} removed): make new \
         items pub(crate) unless CRMs are meant to use them, then run `cargo xtask public-api` \
         to record the change",
        added.len(),
        removed.len()
    )
}

/// Rustdoc's JSON of [`DOCUMENTED`], written against the dependencies the test build
/// compiled (see `rustdoc.rs`).
fn from_test_build(build: &rustdoc::Build, target: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = target.join("public-api-json");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    DOCUMENTED
        .iter()
        .map(|package| build.json(package, &out))
        .collect()
}

/// Rustdoc's JSON of [`DOCUMENTED`] by `cargo rustdoc`, in a folder of its own: its
/// RUSTC_BOOTSTRAP (which lets the stable toolchain write rustdoc's unstable JSON)
/// changes the fingerprints of build scripts and proc macros, so sharing the main folder
/// would rebuild the whole tree each time the tests and this listing take turns.
fn by_cargo_rustdoc(root: &Path, target: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let target = target.join("public-api");
    let mut documents = Vec::new();
    for package in DOCUMENTED {
        let mut command = cargo_compiling(&["rustdoc"]);
        command.args(["--package", package, "--lib", "--no-default-features"]);
        run(command
            .args([
                "--",
                "-Z",
                "unstable-options",
                "--output-format",
                "json",
                // A broken or private link in the public docs fails here, not in a reader's
                // browser.
                "-D",
                "warnings",
            ])
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(root))
        .with_context(|| {
            format!("documenting {package} as JSON (rustdoc warnings fail this step)")
        })?;
        documents.push(
            target
                .join("doc")
                .join(format!("{}.json", package.replace('-', "_"))),
        );
    }
    Ok(documents)
}

/// Reading rustdoc's JSON into one line per public item: `kind path`.
mod api {
    use std::collections::{BTreeSet, HashSet};

    use anyhow::Context as _;
    use serde_json::{Map, Value};

    pub(crate) fn list(doc: &Value, crate_name: &str) -> anyhow::Result<Vec<String>> {
        let index = doc["index"]
            .as_object()
            .context("rustdoc JSON without an index")?;
        let root = lookup(index, &doc["root"]).context("rustdoc JSON without its root")?;
        let mut walker = Walker {
            index,
            out: BTreeSet::new(),
            modules: HashSet::new(),
        };
        walker.module(crate_name, root);
        Ok(walker.out.into_iter().collect())
    }

    fn lookup<'a>(index: &'a Map<String, Value>, id: &Value) -> Option<&'a Value> {
        let key = match id {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return None,
        };
        index.get(&key)
    }

    fn public(item: &Value) -> bool {
        item["visibility"] == "public"
    }

    fn kind(item: &Value) -> &str {
        item["inner"]
            .as_object()
            .and_then(|inner| inner.keys().next())
            .map_or("item", String::as_str)
    }

    struct Walker<'a> {
        index: &'a Map<String, Value>,
        out: BTreeSet<String>,
        modules: HashSet<String>,
    }

    impl<'a> Walker<'a> {
        fn get(&self, id: &Value) -> Option<&'a Value> {
            lookup(self.index, id)
        }

        fn module(&mut self, path: &str, module: &'a Value) {
            if !self.modules.insert(path.to_string()) {
                return;
            }
            let items = module["inner"]["module"]["items"].as_array();
            for id in items.into_iter().flatten() {
                let Some(item) = self.get(id) else { continue };
                if !public(item) {
                    continue;
                }
                if let Some(import) = item["inner"].get("use") {
                    let name = import["name"].as_str().unwrap_or("?");
                    match import.get("id").and_then(|id| self.get(id)) {
                        Some(target) if import["is_glob"] == true => {
                            if kind(target) == "module" {
                                self.glob(path, target);
                            }
                        }
                        Some(target) => self.item(&format!("{path}::{name}"), target),
                        None => {
                            let source = import["source"].as_str().unwrap_or("?");
                            self.out.insert(format!("use {path}::{name} = {source}"));
                        }
                    }
                    continue;
                }
                let name = item["name"].as_str().unwrap_or("?");
                self.item(&format!("{path}::{name}"), item);
            }
        }

        /// `pub use module::*`: the module's public items, as if declared here.
        fn glob(&mut self, path: &str, module: &'a Value) {
            let items = module["inner"]["module"]["items"].as_array();
            for id in items.into_iter().flatten() {
                let Some(item) = self.get(id) else { continue };
                if public(item) && item["inner"].get("use").is_none() {
                    let name = item["name"].as_str().unwrap_or("?");
                    self.item(&format!("{path}::{name}"), item);
                }
            }
        }

        fn item(&mut self, path: &str, item: &'a Value) {
            let kind = kind(item);
            self.out.insert(format!("{kind} {path}"));
            let inner = &item["inner"][kind];
            match kind {
                "module" => self.module(path, item),
                "struct" => {
                    let fields = inner["kind"]["plain"]["fields"].as_array();
                    for id in fields.into_iter().flatten() {
                        if let Some(field) = self.get(id).filter(|f| public(f)) {
                            let name = field["name"].as_str().unwrap_or("?");
                            self.out.insert(format!("field {path}::{name}"));
                        }
                    }
                    self.inherent(path, inner["impls"].as_array());
                }
                "enum" => {
                    for id in inner["variants"].as_array().into_iter().flatten() {
                        if let Some(variant) = self.get(id) {
                            let name = variant["name"].as_str().unwrap_or("?");
                            self.out.insert(format!("variant {path}::{name}"));
                        }
                    }
                    self.inherent(path, inner["impls"].as_array());
                }
                "trait" => {
                    for id in inner["items"].as_array().into_iter().flatten() {
                        if let Some(member) = self.get(id) {
                            let name = member["name"].as_str().unwrap_or("?");
                            self.out.insert(format!("trait_item {path}::{name}"));
                        }
                    }
                }
                _ => {}
            }
        }

        /// The public methods and constants of a type's own impl blocks (trait impls are
        /// left out: derives and conversions would drown the list).
        fn inherent(&mut self, path: &str, impls: Option<&'a Vec<Value>>) {
            for id in impls.into_iter().flatten() {
                let Some(block) = self.get(id) else { continue };
                let block = &block["inner"]["impl"];
                if !block["trait"].is_null() {
                    continue;
                }
                for id in block["items"].as_array().into_iter().flatten() {
                    if let Some(member) = self.get(id).filter(|m| public(m)) {
                        let name = member["name"].as_str().unwrap_or("?");
                        self.out.insert(format!("{} {path}::{name}", kind(member)));
                    }
                }
            }
        }
    }
}

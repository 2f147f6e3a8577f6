//! The bench binary runs end to end with tiny sizes (`--quick`) in a few seconds. Not a
//! benchmark: the figures of a debug build mean nothing; this guards that the benches
//! keep building and running as the host changes.

use std::process::Command;

#[test]
fn the_bench_binary_runs_every_section_with_tiny_sizes() {
    let plugins = centralino_bench::default_plugin_dir();
    if !plugins.join("facebook.wasm").exists() {
        panic!(
            "{} has no plugins: run `cargo xtask plugins` first",
            plugins.display()
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_centralino-bench"))
        .arg("--quick")
        .arg("--plugins")
        .arg(&plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for heading in [
        "## 1. Decision cost",
        "## 2. Ingest throughput",
        "## 3. Tenant density",
        "## 4. Hot swap",
        "## 5. Cold start",
        "## 6. The console's live overview and the webhook path",
    ] {
        assert!(
            stdout.contains(heading),
            "missing `{heading}` in:\n{stdout}"
        );
    }
    assert!(stdout.contains("machine: "), "{stdout}");
    assert!(stdout.contains("lost 0"), "{stdout}");
}

//! What the figures were measured on: cores, CPU model, memory, load, toolchain, commit.

use std::process::Command;

/// The machine and the moment of a measurement.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical cores the process may use.
    pub cores: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `MemTotal` from `/proc/meminfo`.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `git rev-parse --short HEAD`, with `+dirty` when the tree has changes.
    pub commit: String,
    /// Whether this binary was built with optimisations.
    pub release: bool,
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| first_line(&String::from_utf8_lossy(&out.stdout)))
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let commit = match run("git", &["rev-parse", "--short", "HEAD"]) {
            Some(rev) => {
                let dirty = Command::new("git")
                    .args(["status", "--porcelain", "--untracked-files=no"])
                    .output()
                    .map(|o| !o.stdout.is_empty())
                    .unwrap_or(false);
                if dirty { format!("{rev}+dirty") } else { rev }
            }
            None => "unknown".to_string(),
        };
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu,
            memory,
            kernel,
            rustc: run("rustc", &["-V"]).unwrap_or_else(|| "unknown rustc".to_string()),
            commit,
            release: !cfg!(debug_assertions),
        }
    }

    /// One line for a report header.
    pub fn summary(&self) -> String {
        format!(
            "{} cores, {}, {} RAM, Linux {}, {}, commit {}, {} build",
            self.cores,
            self.cpu,
            self.memory,
            self.kernel,
            self.rustc,
            self.commit,
            if self.release {
                "release"
            } else {
                "DEBUG (figures meaningless)"
            }
        )
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` writes them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The command line that produced this run, as a shell would read it back
/// (`cargo xtask bench` sets `CENTRALINO_BENCH_COMMAND` to its own command line).
pub fn command_line() -> String {
    if let Ok(command) = std::env::var("CENTRALINO_BENCH_COMMAND") {
        return command;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line = "cargo run --release -p centralino-bench --".to_string();
    for arg in args {
        line.push(' ');
        if arg.contains([' ', '\'', '"', '>', '<', '|', '&', ';']) {
            line.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

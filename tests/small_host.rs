//! A small host, simulated: the release binary inside a cgroup limited to one
//! CPU and 64 MiB of memory, 10,000 idle WebSocket clients (outside the
//! cgroup, as remote browsers would be), and a broadcast to all of them every
//! second for 30 s over UDP. Nothing may be killed (no OOM kill, the memory
//! limit never hit, the server still running and exiting 0 on SIGTERM) and
//! nothing lost (every client gets every message, no connection closed).
//!
//! Needs root and a writable cgroup hierarchy: v1 (`/sys/fs/cgroup/memory`
//! and `/sys/fs/cgroup/cpu`) or v2 (`/sys/fs/cgroup/cgroup.controllers`).
//! Where there is none, or on a debug build, it says SKIPPED loudly and
//! passes. Run it (and see the figures docs/deployment.md quotes) with
//! `cargo test --release --test small_host -- --nocapture`.

mod common;
mod measure;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::unique_sock_path;
use measure::{BenchRun, Serve, ensure_open_files, thousands};

const CLIENTS: u64 = 10_000;
const MEMORY_LIMIT: u64 = 64 << 20;
const SECONDS: u64 = 30;

/// A cgroup with one CPU and 64 MiB, removed on drop.
enum Cgroup {
    V1 { memory: PathBuf, cpu: PathBuf },
    V2 { dir: PathBuf },
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value:?} to {}: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `key value` lines (memory.oom_control, memory.events, cpu.stat).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Cgroup {
    fn create(name: &str) -> Result<Cgroup, String> {
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            let dir = root.join(name);
            let controllers = read(&root.join("cgroup.controllers"));
            if !(controllers.contains("memory") && controllers.contains("cpu")) {
                return Err(format!(
                    "cgroup v2 without the memory and cpu controllers ({})",
                    controllers.trim()
                ));
            }
            let _ = write(&root.join("cgroup.subtree_control"), "+memory +cpu");
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            let cg = Cgroup::V2 { dir: dir.clone() };
            write(&dir.join("memory.max"), &MEMORY_LIMIT.to_string())?;
            if dir.join("memory.swap.max").exists() {
                write(&dir.join("memory.swap.max"), "0")?;
            }
            write(&dir.join("cpu.max"), "100000 100000")?;
            return Ok(cg);
        }
        let (mroot, croot) = (root.join("memory"), root.join("cpu"));
        if !(mroot.join("memory.limit_in_bytes").exists()
            && croot.join("cpu.cfs_quota_us").exists())
        {
            return Err(
                "no cgroup v2 and no v1 memory and cpu controllers under /sys/fs/cgroup".into(),
            );
        }
        let (memory, cpu) = (mroot.join(name), croot.join(name));
        std::fs::create_dir(&memory).map_err(|e| format!("mkdir {}: {e}", memory.display()))?;
        if let Err(e) = std::fs::create_dir(&cpu) {
            let _ = std::fs::remove_dir(&memory);
            return Err(format!("mkdir {}: {e}", cpu.display()));
        }
        let cg = Cgroup::V1 {
            memory: memory.clone(),
            cpu: cpu.clone(),
        };
        write(
            &memory.join("memory.limit_in_bytes"),
            &MEMORY_LIMIT.to_string(),
        )?;
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            // Memory plus swap: no escape into swap either.
            write(
                &memory.join("memory.memsw.limit_in_bytes"),
                &MEMORY_LIMIT.to_string(),
            )?;
        }
        write(&cpu.join("cpu.cfs_period_us"), "100000")?;
        write(&cpu.join("cpu.cfs_quota_us"), "100000")?;
        Ok(cg)
    }

    fn kind(&self) -> &'static str {
        match self {
            Cgroup::V1 { .. } => "cgroup v1",
            Cgroup::V2 { .. } => "cgroup v2",
        }
    }

    /// Shell code that moves the shell (then the exec'd server) into it.
    fn join_script(&self) -> String {
        match self {
            Cgroup::V1 { memory, cpu } => format!(
                "echo $$ > '{}/cgroup.procs' && echo $$ > '{}/cgroup.procs' &&",
                memory.display(),
                cpu.display()
            ),
            Cgroup::V2 { dir } => format!("echo $$ > '{}/cgroup.procs' &&", dir.display()),
        }
    }

    /// The memory limit as the kernel reads it back.
    fn memory_limit(&self) -> u64 {
        let t = match self {
            Cgroup::V1 { memory, .. } => read(&memory.join("memory.limit_in_bytes")),
            Cgroup::V2 { dir } => read(&dir.join("memory.max")),
        };
        t.trim().parse().unwrap_or(0)
    }

    /// The CPU quota per period, as the kernel reads it back.
    fn cpu_limit(&self) -> String {
        match self {
            Cgroup::V1 { cpu, .. } => format!(
                "{} {}",
                read(&cpu.join("cpu.cfs_quota_us")).trim(),
                read(&cpu.join("cpu.cfs_period_us")).trim()
            ),
            Cgroup::V2 { dir } => read(&dir.join("cpu.max")).trim().to_owned(),
        }
    }

    fn procs(&self) -> String {
        match self {
            Cgroup::V1 { memory, .. } => read(&memory.join("cgroup.procs")),
            Cgroup::V2 { dir } => read(&dir.join("cgroup.procs")),
        }
    }

    /// (peak memory bytes, times the limit was hit, OOM kills, CPU-throttled periods)
    fn figures(&self) -> (u64, u64, u64, u64) {
        match self {
            Cgroup::V1 { memory, cpu } => {
                let num = |f: &str| read(&memory.join(f)).trim().parse().unwrap_or(0);
                let oom = read(&memory.join("memory.oom_control"));
                let cpu_stat = read(&cpu.join("cpu.stat"));
                (
                    num("memory.max_usage_in_bytes"),
                    num("memory.failcnt"),
                    field(&oom, "oom_kill").unwrap_or(0),
                    field(&cpu_stat, "nr_throttled").unwrap_or(0),
                )
            }
            Cgroup::V2 { dir } => {
                let events = read(&dir.join("memory.events"));
                let cpu_stat = read(&dir.join("cpu.stat"));
                (
                    read(&dir.join("memory.peak")).trim().parse().unwrap_or(0),
                    field(&events, "max").unwrap_or(0),
                    field(&events, "oom_kill").unwrap_or(0),
                    field(&cpu_stat, "nr_throttled").unwrap_or(0),
                )
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let dirs: Vec<&PathBuf> = match self {
            Cgroup::V1 { memory, cpu } => vec![memory, cpu],
            Cgroup::V2 { dir } => vec![dir],
        };
        for d in dirs {
            // Empty once the server has exited; the kernel may take a moment.
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn skip(why: &str) {
    eprintln!(
        "\n=== small-host simulation SKIPPED: {why}. Nothing was measured; docs/deployment.md \
         says how to run it (as root, on a release build, with cgroups). ===\n"
    );
}

#[test]
fn ten_thousand_clients_in_one_cpu_and_64_mib() {
    if cfg!(debug_assertions) {
        return skip("debug build (run `cargo test --release --test small_host -- --nocapture`)");
    }
    let name = format!("wsbroadcaster-small-host-{}", std::process::id());
    let cg = match Cgroup::create(&name) {
        Ok(cg) => cg,
        Err(e) => return skip(&format!("cannot make a cgroup here ({e})")),
    };
    assert_eq!(
        cg.memory_limit(),
        MEMORY_LIMIT,
        "the memory limit is in force"
    );
    assert!(
        matches!(cg.cpu_limit().as_str(), "100000 100000"),
        "one CPU: {}",
        cg.cpu_limit()
    );
    ensure_open_files(CLIENTS + 200);

    let unix = unique_sock_path("small-host");
    let mut server = Serve::start(&unix, &cg.join_script(), &[]);
    assert!(
        cg.procs()
            .lines()
            .any(|p| p.trim() == server.pid().to_string()),
        "the server runs inside the cgroup"
    );
    let n = CLIENTS.to_string();
    let pid = server.pid().to_string();
    let url = format!("ws://{}/", server.ws);
    let publish = format!("udp:{}", server.udp);
    let duration = format!("{SECONDS}s");
    let run = BenchRun::run(
        &[
            "--url",
            &url,
            "-n",
            &n,
            "--mode",
            "fanout",
            "--publish",
            &publish,
            "--rate",
            "1",
            "--duration",
            &duration,
            "--drain",
            "5s",
            "--server-pid",
            &pid,
        ],
        Duration::from_secs(SECONDS + 120),
    );
    let (peak, limit_hits, oom_kills, throttled) = cg.figures();
    let alive = server.alive();
    let exit = server.stop();

    let expected = run.num("expected") as u64;
    println!(
        "\nsmall host ({}: 1 CPU, 64 MiB), {CLIENTS} idle clients, 1 broadcast/s for {SECONDS} s:",
        cg.kind()
    );
    println!(
        "  connected:            {} in {:.2} s",
        run.num("connections"),
        run.num("connect_secs")
    );
    println!(
        "  delivered:            {} of {} (lost {}, closed {}, out of order {})",
        thousands(run.num("delivered") as u64),
        thousands(expected),
        run.num("lost"),
        run.num("closed"),
        run.num("out_of_order")
    );
    println!(
        "  latency:              p50 {} ms, p99 {} ms, max {} ms",
        run.num("latency_p50_ms"),
        run.num("latency_p99_ms"),
        run.num("latency_max_ms")
    );
    println!(
        "  server RSS:           {} KiB before, {} KiB connected, {} KiB at the end",
        thousands(run.num("server_rss_before_kib") as u64),
        thousands(run.num("server_rss_connected_kib") as u64),
        thousands(run.num("server_rss_after_kib") as u64)
    );
    println!(
        "  cgroup memory peak:   {} KiB of {} KiB; limit hit {limit_hits} times; OOM kills {oom_kills}",
        thousands(peak / 1024),
        thousands(MEMORY_LIMIT / 1024)
    );
    println!(
        "  server CPU:           {} s during the run; throttled periods {throttled}",
        run.num("server_cpu_run_secs")
    );

    assert!(
        alive,
        "the server was killed during the run:\n{}",
        run.output
    );
    assert_eq!(exit, Some(0), "the server exits 0 on SIGTERM");
    assert_eq!(oom_kills, 0, "OOM kills in the cgroup");
    assert_eq!(
        limit_hits, 0,
        "the 64 MiB limit was reached (peak {peak} bytes)"
    );
    assert_eq!(run.num("connections") as u64, CLIENTS, "{}", run.output);
    assert_eq!(
        run.num("closed"),
        0.0,
        "connections closed:\n{}",
        run.output
    );
    let published = run.num("published") as u64;
    assert_eq!(
        published as f64,
        run.num("planned"),
        "every broadcast sent: {}",
        run.output
    );
    assert!(
        published >= SECONDS,
        "one broadcast a second: {}",
        run.output
    );
    assert_eq!(expected, CLIENTS * published, "{}", run.output);
    assert_eq!(run.num("lost"), 0.0, "messages lost:\n{}", run.output);
    assert_eq!(run.num("delivered") as u64, expected, "{}", run.output);
    drop(server);
    drop(cg);
}

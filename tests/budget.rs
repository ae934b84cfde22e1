//! The deployment budget (budget.toml, docs/deployment.md): the stripped
//! release binary's size, `serve`'s RSS at start with its default
//! listeners, and its RSS holding 10,000 idle WebSocket connections. Fails
//! when a figure exceeds its budget by more than the file's tolerance.
//!
//! Meaningful only for the release binary: `cargo test --release --test
//! budget -- --nocapture` (scripts/test.sh runs `cargo test --release`). A
//! debug build skips it, saying so.

mod common;
mod measure;

use std::time::Duration;

use common::{BIN, root, unique_sock_path};
use measure::{BenchRun, Serve, ensure_open_files, status_kib, thousands};

const IDLE_CONNECTIONS: u64 = 10_000;

/// budget.toml: tolerance and one limit per figure.
struct Budget {
    tolerance: f64,
    limits: Vec<(String, u64)>,
}

impl Budget {
    fn load() -> Budget {
        let path = root().join("budget.toml");
        let text = std::fs::read_to_string(&path).expect("read budget.toml");
        let table = toml::de::DeTable::parse(&text)
            .unwrap_or_else(|e| panic!("budget.toml: {}", e.message()));
        let mut tolerance = None;
        let mut limits = Vec::new();
        for (k, v) in table.get_ref() {
            let key = k.get_ref().to_string();
            match v.get_ref() {
                toml::de::DeValue::Float(f) if key == "tolerance" => {
                    tolerance = Some(f.as_str().parse::<f64>().expect("a float"));
                }
                toml::de::DeValue::Integer(i) => {
                    let n = i.as_str().replace('_', "");
                    limits.push((key, n.parse().expect("a whole number")));
                }
                other => panic!("budget.toml: {key}: unexpected {}", other.type_str()),
            }
        }
        Budget {
            tolerance: tolerance.expect("budget.toml sets tolerance"),
            limits,
        }
    }

    fn limit(&self, key: &str) -> u64 {
        self.limits
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("budget.toml has no {key}"))
            .1
    }
}

/// The release binary after `strip`, in bytes.
fn stripped_size() -> u64 {
    let out = std::env::temp_dir().join(format!("wsb-budget-{}.stripped", std::process::id()));
    let st = std::process::Command::new("strip")
        .arg("-o")
        .arg(&out)
        .arg(BIN)
        .status()
        .expect("run strip (binutils)");
    assert!(st.success(), "strip failed");
    let n = std::fs::metadata(&out).expect("stripped binary").len();
    let _ = std::fs::remove_file(&out);
    n
}

#[test]
fn release_binary_and_memory_stay_within_the_budget() {
    if cfg!(debug_assertions) {
        eprintln!(
            "\n=== budget: SKIPPED: this is a debug build; the budget is about the release \
             binary: run `cargo test --release --test budget -- --nocapture` ===\n"
        );
        return;
    }
    let budget = Budget::load();
    let mut figures: Vec<(&str, u64, &str)> = Vec::new();

    figures.push(("binary-stripped-bytes", stripped_size(), "bytes"));

    // RSS at start: the default listeners, nothing connected.
    let unix = unique_sock_path("budget-start");
    let mut s = Serve::start(&unix, "", &[]);
    std::thread::sleep(Duration::from_millis(300));
    figures.push(("rss-start-kib", status_kib(s.pid(), "VmRSS"), "KiB"));
    assert_eq!(s.stop(), Some(0));
    drop(s);

    // RSS with 10,000 idle connections, measured by the bench tool.
    ensure_open_files(IDLE_CONNECTIONS + 200);
    let unix = unique_sock_path("budget-idle");
    let mut s = Serve::start(&unix, "", &[]);
    let n = IDLE_CONNECTIONS.to_string();
    let pid = s.pid().to_string();
    let url = format!("ws://{}/", s.ws);
    let run = BenchRun::run(
        &[
            "--url",
            &url,
            "--mode",
            "idle",
            "-n",
            &n,
            "--hold",
            "2s",
            "--server-pid",
            &pid,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(
        run.num("connections") as u64,
        IDLE_CONNECTIONS,
        "{}",
        run.output
    );
    assert_eq!(
        run.num("closed"),
        0.0,
        "no connection closed: {}",
        run.output
    );
    figures.push((
        "rss-10k-idle-kib",
        run.num("server_rss_connected_kib") as u64,
        "KiB",
    ));
    assert!(s.alive());
    assert_eq!(s.stop(), Some(0));

    println!(
        "\nbudget (budget.toml, tolerance {:.0} %):",
        budget.tolerance * 100.0
    );
    println!(
        "  {:<24} {:>12} {:>12} {:>12}  unit",
        "figure", "measured", "budget", "fails above"
    );
    let mut over = Vec::new();
    for (key, value, unit) in &figures {
        let limit = budget.limit(key);
        let ceiling = (limit as f64 * (1.0 + budget.tolerance)).floor() as u64;
        let verdict = if *value > ceiling {
            over.push(format!(
                "{key}: {} {unit} is more than {} {unit} (budget {} + {:.0} %)",
                thousands(*value),
                thousands(ceiling),
                thousands(limit),
                budget.tolerance * 100.0
            ));
            "OVER"
        } else {
            "ok"
        };
        println!(
            "  {key:<24} {:>12} {:>12} {:>12}  {unit} {verdict}",
            thousands(*value),
            thousands(limit),
            thousands(ceiling)
        );
    }
    assert!(
        over.is_empty(),
        "over budget (see docs/deployment.md before raising budget.toml):\n{}",
        over.join("\n")
    );
}

//! The bench's report: a human-readable summary on stdout and, with
//! `--json`, one JSON object on the last line (flat, numbers and strings
//! only, so a script can pick a field with a text search).

use std::fmt::Write as _;

use super::clients::{LATE, Results, ServerFigures};
use super::{BenchArgs, Mode};

/// Nanoseconds as milliseconds with about three significant digits.
pub(crate) fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v < 1.0 {
        format!("{v:.3}")
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Server RSS growth per connection in bytes.
fn rss_per_conn(s: &ServerFigures, n: usize) -> i64 {
    (s.rss_after as i64 - s.rss_before as i64) * 1024 / n.max(1) as i64
}

fn per_sec(count: f64, secs: f64) -> f64 {
    if secs > 0.0 { count / secs } else { 0.0 }
}

/// The deliveries every subscriber should have got.
fn expected(r: &Results) -> u64 {
    r.published * r.connections as u64
}

/// Prints the summary (and the JSON line).
pub(crate) fn print(args: &BenchArgs, r: &Results) {
    print!("{}", summary(args, r));
    if args.json {
        println!("{}", json(args, r));
    }
}

fn summary(args: &BenchArgs, r: &Results) -> String {
    let mut s = String::new();
    let n = r.connections;
    match args.mode {
        Mode::Fanout => {
            let _ = writeln!(
                s,
                "fanout: {n} subscribers on {}, publishing over {}: {}-byte messages at {}/s for {:?}",
                args.url, args.publish, args.size, args.rate, args.duration
            );
        }
        Mode::Idle => {
            let _ = writeln!(
                s,
                "idle: {n} connections to {}, held for {:?}",
                args.url, args.hold
            );
        }
    }
    let c = &r.connect_times;
    let _ = writeln!(
        s,
        "connect:     {n} connections in {:.2} s ({:.0}/s); each (TCP + handshake) p50 {} ms, p99 {} ms, max {} ms",
        r.connect_secs,
        per_sec(n as f64, r.connect_secs),
        ms(c.quantile(0.50)),
        ms(c.quantile(0.99)),
        ms(c.max())
    );
    if c.max() >= 900_000_000 {
        let _ = writeln!(
            s,
            "hint:        some connects took about a second or more: SYN retransmits, usually \
             the server's listen backlog overflowing (check `nstat | grep ListenOverflows`); \
             a lower --connect-concurrency avoids it"
        );
    }
    if args.mode == Mode::Fanout {
        let sched = if r.late == 0 {
            format!("on schedule (max lateness {} ms)", ms(r.lateness.max()))
        } else {
            // A few late sends are scheduling hiccups; many mean this
            // process could not keep up and the rate was not what was asked.
            let behind = if r.late * 100 > r.published {
                "FELL BEHIND SCHEDULE: "
            } else {
                ""
            };
            format!(
                "{behind}{} sent more than {} ms late (p99 lateness {} ms, max {} ms)",
                r.late,
                LATE.as_millis(),
                ms(r.lateness.quantile(0.99)),
                ms(r.lateness.max())
            )
        };
        let _ = writeln!(
            s,
            "published:   {} of {} in {:.2} s; {sched}",
            r.published, r.planned, r.publish_secs
        );
        if let Some(e) = &r.publisher_error {
            let _ = writeln!(s, "STOPPED:     publishing stopped early: {e}");
        }
        let exp = expected(r);
        let lost = exp.saturating_sub(r.delivered);
        let _ = writeln!(
            s,
            "deliveries:  expected {exp}, delivered {}, lost {lost} ({:.3}%), out of order {}",
            r.delivered,
            if exp > 0 {
                lost as f64 * 100.0 / exp as f64
            } else {
                0.0
            },
            r.out_of_order
        );
        let _ = writeln!(
            s,
            "throughput:  {:.0} delivered/s (first publish to last delivery; drain {:.2} s)",
            r.delivered_per_sec, r.drain_secs
        );
        let l = &r.latency;
        let _ = writeln!(
            s,
            "latency:     p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} samples)",
            ms(l.quantile(0.50)),
            ms(l.quantile(0.90)),
            ms(l.quantile(0.99)),
            ms(l.max()),
            l.count()
        );
        if r.foreign > 0 {
            let _ = writeln!(
                s,
                "other:       {} message(s) not from this run ignored",
                r.foreign
            );
        }
        if r.delivered == 0 {
            let hint = match args.publish {
                super::PublishTarget::Udp(_) => {
                    "is the server's UDP ingress at that address, and does --udp-allow admit this host?"
                }
                super::PublishTarget::Unix(_) => "is that the server's --unix socket?",
                super::PublishTarget::Ws => {
                    "does the server broadcast client messages (--client-messages broadcast)?"
                }
            };
            let _ = writeln!(s, "hint:        nothing was delivered: {hint}");
        }
    }
    if r.closed.is_empty() {
        let _ = writeln!(s, "closed:      no connection closed during the run");
    } else {
        let _ = writeln!(
            s,
            "closed:      {} connection(s) closed during the run:",
            r.closed_total()
        );
        for (cause, count) in &r.closed {
            let _ = writeln!(s, "             {count} × {cause}");
        }
    }
    if let Some((user, sys)) = r.cpu {
        let run = r.cpu_run.map_or(String::new(), |c| {
            format!(
                "; {c:.2} s during the {} ({:.0}% of one core)",
                if args.mode == Mode::Idle {
                    "hold"
                } else {
                    "publish and drain"
                },
                per_sec(c * 100.0, r.run_secs)
            )
        });
        let _ = writeln!(
            s,
            "bench CPU:   {:.2} s (user {user:.2} s, system {sys:.2} s){run}",
            user + sys
        );
    }
    if let Some(sv) = &r.server {
        let cpu = sv.cpu_run.map_or(String::new(), |c| {
            format!(
                "; CPU {c:.2} s during the run ({:.0}% of one core)",
                per_sec(c * 100.0, r.run_secs)
            )
        });
        let _ = writeln!(
            s,
            "server:      pid {}, RSS {} before, {} with all connected, {} at the end{cpu}",
            sv.pid,
            mib(sv.rss_before),
            mib(sv.rss_connected),
            mib(sv.rss_after)
        );
        let _ = writeln!(
            s,
            "             RSS per connection: {} bytes ((end - before) / {n})",
            rss_per_conn(sv, n)
        );
    }
    s
}

fn json_str(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    crate::json::push_string(&mut out, v);
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".to_owned()
    }
}

fn ms_num(ns: u64) -> String {
    json_num(ns as f64 / 1e6)
}

fn json(args: &BenchArgs, r: &Results) -> String {
    let mut f: Vec<(&str, String)> = vec![
        (
            "mode",
            json_str(match args.mode {
                Mode::Fanout => "fanout",
                Mode::Idle => "idle",
            }),
        ),
        ("url", json_str(&args.url)),
        ("connections", r.connections.to_string()),
        ("connect_secs", json_num(r.connect_secs)),
        ("connect_p50_ms", ms_num(r.connect_times.quantile(0.50))),
        ("connect_p99_ms", ms_num(r.connect_times.quantile(0.99))),
        ("connect_max_ms", ms_num(r.connect_times.max())),
        ("run_secs", json_num(r.run_secs)),
    ];
    if args.mode == Mode::Fanout {
        let exp = expected(r);
        f.extend([
            ("publish", json_str(&args.publish.to_string())),
            ("rate", json_num(args.rate)),
            ("size", args.size.to_string()),
            ("duration_secs", json_num(args.duration.as_secs_f64())),
            ("planned", r.planned.to_string()),
            ("published", r.published.to_string()),
            ("publish_secs", json_num(r.publish_secs)),
            ("publish_late", r.late.to_string()),
            (
                "publish_error",
                r.publisher_error
                    .as_deref()
                    .map_or("null".to_owned(), json_str),
            ),
            ("publish_max_lateness_ms", ms_num(r.lateness.max())),
            ("expected", exp.to_string()),
            ("delivered", r.delivered.to_string()),
            ("lost", exp.saturating_sub(r.delivered).to_string()),
            ("out_of_order", r.out_of_order.to_string()),
            ("foreign", r.foreign.to_string()),
            ("delivered_per_sec", json_num(r.delivered_per_sec)),
            ("drain_secs", json_num(r.drain_secs)),
            ("latency_p50_ms", ms_num(r.latency.quantile(0.50))),
            ("latency_p90_ms", ms_num(r.latency.quantile(0.90))),
            ("latency_p99_ms", ms_num(r.latency.quantile(0.99))),
            ("latency_max_ms", ms_num(r.latency.max())),
        ]);
        if args.publish == super::PublishTarget::Ws {
            f.push(("publisher_echoes", r.publisher_echoes.to_string()));
        }
    } else {
        f.push(("hold_secs", json_num(args.hold.as_secs_f64())));
    }
    f.push(("closed", r.closed_total().to_string()));
    if let Some((user, sys)) = r.cpu {
        f.push(("cpu_user_secs", json_num(user)));
        f.push(("cpu_sys_secs", json_num(sys)));
    }
    if let Some(c) = r.cpu_run {
        f.push(("cpu_run_secs", json_num(c)));
    }
    if let Some(sv) = &r.server {
        f.extend([
            ("server_pid", sv.pid.to_string()),
            ("server_rss_before_kib", sv.rss_before.to_string()),
            ("server_rss_connected_kib", sv.rss_connected.to_string()),
            ("server_rss_after_kib", sv.rss_after.to_string()),
            (
                "server_rss_per_conn_bytes",
                rss_per_conn(sv, r.connections).to_string(),
            ),
        ]);
        if let Some(c) = sv.cpu_run {
            f.push(("server_cpu_run_secs", json_num(c)));
        }
    }
    let body: Vec<String> = f
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(ms(1_234_567), "1.23");
        assert_eq!(ms(123_456), "0.123");
        assert_eq!(ms(45_600_000), "45.6");
        assert_eq!(ms(1_500_000_000), "1500");
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(json_num(f64::NAN), "null");
        assert_eq!(json_num(2.0), "2.000");
    }
}

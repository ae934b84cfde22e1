//! What the bench asks of the operating system: the open-file limit, the
//! ephemeral port range, and process memory and CPU time from /proc.

use rlimit::Resource;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 on every
/// architecture the crate targets (it is a fixed ABI value, not CONFIG_HZ).
const USER_HZ: f64 = 100.0;

/// Makes room for `need` open files: raises the soft RLIMIT_NOFILE to the
/// hard limit when the soft one is too low. Returns the soft limit in force.
pub(crate) fn ensure_open_files(need: u64) -> Result<u64, String> {
    let (soft, hard) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    if soft >= need {
        return Ok(soft);
    }
    if hard < need {
        return Err(format!(
            "this run needs about {need} open files but the hard limit is {hard} \
             (soft {soft}); raise it, e.g. `ulimit -Hn {need}` as root or \
             LimitNOFILE= in a systemd unit, or use fewer --connections"
        ));
    }
    Resource::NOFILE
        .set(hard, hard)
        .map_err(|e| format!("cannot raise the open-file limit from {soft} to {hard}: {e}"))?;
    Ok(hard)
}

/// How many local ports one destination can use
/// (/proc/sys/net/ipv4/ip_local_port_range), if readable.
pub(crate) fn ephemeral_ports() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some(hi.saturating_sub(lo) + 1)
}

/// Resident set size of a process in KiB (`VmRSS` in /proc/PID/status).
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| {
        format!("--server-pid {pid}: cannot read {path}: {e} (the server must run on this machine)")
    })?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS line"))
}

/// User and system CPU time of a process in seconds (/proc/PID/stat
/// fields 14 and 15). `None` for `self` means this process.
pub(crate) fn cpu_secs(pid: Option<u32>) -> Option<(f64, f64)> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime / USER_HZ, stime / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_secs(None).is_some());
        assert!(cpu_secs(Some(me)).is_some());
        assert!(rss_kib(u32::MAX).is_err());
        assert!(ensure_open_files(16).unwrap() >= 16);
    }
}

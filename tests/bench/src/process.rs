//! What a process has used, read from `/proc`, and sums over a Prometheus
//! text page: the figures every benchmark reports next to its own.

/// CPU time (user + system, all threads) the process has used, in seconds.
/// USER_HZ, the unit of `/proc/<pid>/stat`, is 100 on every Linux ABI.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A field of `/proc/<pid>/status` given in kB, in MB.
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The most resident memory the process has had (`VmHWM`), in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// The process's resident memory now (`VmRSS`), in MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

/// The sum of a Prometheus text page's samples whose line starts with
/// `prefix` (a metric name, optionally with the start of its labels).
pub fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum::<f64>()
        // An empty sum is -0.0; figures print as 0.
        + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_the_samples_of_one_metric_only() {
        let page = "# HELP x\nreqs{verb=\"create\"} 3\nreqs{verb=\"delete\"} 2.5\nreqs_total 9\n";
        assert_eq!(metric_sum(page, "reqs{"), 5.5);
        assert_eq!(metric_sum(page, "reqs{verb=\"create\""), 3.0);
        assert_eq!(metric_sum(page, "absent"), 0.0);
    }

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some_and(|s| s >= 0.0));
        assert!(peak_rss_mb(pid).is_some_and(|mb| mb > 0.0));
        assert!(rss_mb(pid).is_some_and(|mb| mb > 0.0));
        assert!(cpu_seconds(u32::MAX).is_none());
    }
}

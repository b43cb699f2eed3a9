//! What the benchmark programs share: latency histograms and the results
//! file.

pub mod baseline;
pub mod process;

use hdrhistogram::Histogram;
use serde_json::json;
use sparkvc_cluster_tests::LocalEnv;
use sparkvc_e2e::{Server, is_terminal};
use sparkvc_proto::v1 as pb;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Latencies in microseconds, from 1 µs to 10 minutes at 3 significant
/// digits.
pub struct Latencies(pub Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let _ = self.0.record(d.as_micros().max(1) as u64);
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn summary(&self) -> serde_json::Value {
        json!({"p50_ms": self.ms(0.5), "p99_ms": self.ms(0.99), "max_ms": self.0.max() as f64 / 1000.0, "count": self.0.len()})
    }
}

/// Writes a benchmark's figures as pretty JSON to `path` (its directory
/// made if missing) and says where.
pub fn write_results(path: &Path, results: &serde_json::Map<String, serde_json::Value>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("results directory");
    }
    std::fs::write(path, serde_json::to_string_pretty(results).expect("json"))
        .expect("write results");
    println!("results written to {}", path.display());
}

/// Bytes of the files under `path` (0 where it cannot be read).
pub fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The flags that serve the local cluster as `local`, with metrics on a
/// free loopback port.
pub fn cluster_server_args(env: &LocalEnv) -> Vec<String> {
    let mut args = env.server_args();
    args.extend(["--metrics-listen".into(), "127.0.0.1:0".into()]);
    args
}

/// Starts `sparkvc-server` on `dir` with `args`, logging errors only, so
/// that a benchmark's output stays its own.
pub fn start_server(dir: &Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with_env(dir, &args, &[("SPARKVC_LOG", "error")])
}

/// StartJobRun that must succeed; returns the new run's ID.
pub async fn start_run(mut client: sparkvc_e2e::Client, req: pb::StartJobRunRequest) -> String {
    client
        .start_job_run(req)
        .await
        .expect("StartJobRun")
        .into_inner()
        .id
}

/// When a run's terminal state was stored, from its `stateHistory`; None
/// while it is not terminal.
pub fn terminal_stored_at(run: &pb::JobRun) -> Option<SystemTime> {
    let last = run.state_history.last().filter(|t| is_terminal(&t.state))?;
    let at = last.at.as_ref()?;
    let since_epoch = Duration::new(
        u64::try_from(at.seconds).ok()?,
        u32::try_from(at.nanos).ok()?,
    );
    Some(SystemTime::UNIX_EPOCH + since_epoch)
}

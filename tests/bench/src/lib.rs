//! What the benchmark programs share: latency histograms and the results
//! file.

pub mod baseline;
pub mod process;

use hdrhistogram::Histogram;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

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

//! Times as the API shows them (protobuf timestamps) and as the store keeps
//! them (microseconds since the Unix epoch), and the one conversion between.

use prost_types::Timestamp;

pub fn timestamp_from_micros(micros: u64) -> Timestamp {
    Timestamp {
        seconds: (micros / 1_000_000) as i64,
        nanos: ((micros % 1_000_000) * 1000) as i32,
    }
}

/// Clamped to what a `u64` of microseconds holds: times before the epoch
/// are 0.
pub fn micros_from_timestamp(ts: &Timestamp) -> u64 {
    let micros = i128::from(ts.seconds) * 1_000_000 + i128::from(ts.nanos) / 1000;
    micros.clamp(0, i128::from(u64::MAX)) as u64
}

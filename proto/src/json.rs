//! JSON helpers for the generated messages.

/// `google.protobuf.Timestamp` as the aws CLI shows it: an ISO 8601 string.
/// Input also accepts a number of seconds since the epoch, as the aws CLI does.
pub mod timestamp {
    use prost_types::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::{OffsetDateTime, format_description::well_known::Rfc3339};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            None => s.serialize_none(),
            Some(ts) if WIRE.get() => s.serialize_str(&to_wire(ts)),
            Some(ts) => s.serialize_str(&to_rfc3339(ts)),
        }
    }

    std::thread_local! {
        /// Set while a REST response is serialised (serialisation is
        /// synchronous, so the flag cannot leak to another task).
        static WIRE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Runs `f` with timestamps written as AWS's REST services write them
    /// (`2026-01-02T03:04:05.123Z`), which every SDK's parser reads.
    pub fn in_wire_format<R>(f: impl FnOnce() -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                WIRE.set(false);
            }
        }
        WIRE.set(true);
        let _reset = Reset;
        f()
    }

    /// `2026-01-02T03:04:05.123Z`: UTC, milliseconds.
    pub fn to_wire(ts: &Timestamp) -> String {
        let dt =
            OffsetDateTime::from_unix_timestamp(ts.seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            ts.nanos.clamp(0, 999_999_999) / 1_000_000
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        let Some(raw) = Option::<Raw>::deserialize(d)? else {
            return Ok(None);
        };
        match raw {
            Raw::Seconds(secs) => Ok(Some(Timestamp {
                seconds: secs.trunc() as i64,
                nanos: (secs.fract() * 1e9) as i32,
            })),
            Raw::Text(text) => parse(&text).map(Some).map_err(D::Error::custom),
        }
    }

    /// Parses an ISO 8601 / RFC 3339 timestamp (`2026-01-02T03:04:05Z`), a
    /// plain date (`2026-01-02`, midnight UTC), a date and time with no
    /// offset (UTC, as botocore reads it; the aws CLI's skeletons hold
    /// `1970-01-01T00:00:00`) or seconds since the epoch.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        if let Ok(secs) = text.parse::<f64>() {
            return Ok(Timestamp {
                seconds: secs.trunc() as i64,
                nanos: (secs.fract() * 1e9) as i32,
            });
        }
        let parsed = OffsetDateTime::parse(text, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
            .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
            .map_err(|_| {
                format!("invalid timestamp {text:?}: expected ISO 8601, e.g. 2026-01-02T03:04:05Z")
            })?;
        Ok(Timestamp {
            seconds: parsed.unix_timestamp(),
            nanos: parsed.nanosecond() as i32,
        })
    }

    /// Formats like the aws CLI (`cli_timestamp_format = iso8601`):
    /// `2026-01-02T03:04:05.123000+00:00`. The precision is the wire's,
    /// milliseconds, so that a time reads the same over gRPC and REST.
    pub fn to_rfc3339(ts: &Timestamp) -> String {
        let millis = i128::from(ts.nanos.clamp(0, 999_999_999) / 1_000_000);
        let dt = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(ts.seconds) * 1_000_000_000 + millis * 1_000_000,
        )
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
        );
        dt.format(&format).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::{JobRun, MonitoringConfiguration, StartJobRunRequest};

    #[test]
    fn json_uses_aws_member_names_and_skips_absent_members() {
        let run = JobRun {
            id: "abc".into(),
            created_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "abc", "createdAt": "1970-01-01T00:00:00.000000+00:00"})
        );
        let monitoring: MonitoringConfiguration =
            serde_json::from_str(r#"{"persistentAppUI": "ENABLED"}"#).unwrap();
        assert_eq!(monitoring.persistent_app_ui, "ENABLED");
    }

    #[test]
    fn timestamps_read_in_the_forms_the_aws_cli_accepts() {
        use super::timestamp::parse;
        let midnight = parse("2026-01-02T00:00:00Z").unwrap();
        assert_eq!(parse("2026-01-02").unwrap(), midnight);
        // No offset: UTC, as botocore reads it (the aws CLI's skeletons).
        assert_eq!(parse("2026-01-02T00:00:00").unwrap(), midnight);
        assert_eq!(parse("2026-01-02T01:00:00+01:00").unwrap(), midnight);
        assert_eq!(parse(&midnight.seconds.to_string()).unwrap(), midnight);
        assert!(parse("2026-01-02 00:00").is_err());
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn unknown_members_are_rejected_with_their_name() {
        let err =
            serde_json::from_str::<StartJobRunRequest>(r#"{"virtualClusterID": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("virtualClusterID"), "{err}");
    }
}

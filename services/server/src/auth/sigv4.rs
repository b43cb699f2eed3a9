//! AWS Signature Version 4 verification, byte for byte as the AWS SDKs sign
//! requests to a non-S3 service (`emr-containers`):
//!
//! - the server hashes the body itself (the SDKs send no
//!   `x-amz-content-sha256` for this service; one that is sent must match);
//! - the canonical URI is the path as it arrived, dot segments removed
//!   (repeated slashes kept, as botocore signs), then URI-encoded **again**
//!   (`%3A` becomes `%253A`);
//! - query parameters are decoded, re-encoded strictly and sorted by name,
//!   then value;
//! - only the headers the client lists in `SignedHeaders` are canonical,
//!   values trimmed and inner runs of spaces collapsed, repeated headers
//!   joined with `,`;
//! - the credential scope must be `<X-Amz-Date's day>/<our region>/
//!   emr-containers/aws4_request`, and `X-Amz-Date` within 15 minutes of
//!   the server's clock.
//!
//! The signing key and the HMAC come from AWS's own `aws-sigv4` crate, the
//! comparison from `subtle` (constant time). Everything here is pure: the
//! caller hands in the request's parts and a way to find a key's secret.
//! Presigned (query-string) requests are not accepted: no SDK sends them to
//! this service.

use super::AuthError;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name of the service.
pub const SERVICE: &str = "emr-containers";
/// How far `X-Amz-Date` may be from the server's clock either way.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of a request that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as it arrived (still percent-encoded).
    pub path: &'a str,
    /// The query string as it arrived, without `?`; empty if none.
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The host the request was sent to; used when there is no `Host`
    /// header (HTTP/2 carries it as `:authority`).
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

/// The `Authorization` header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// What the verifier needs to know about an access key.
#[derive(Debug, Clone, Copy)]
pub struct KeySecret<'a> {
    pub secret_access_key: &'a str,
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// `X-Amz-Security-Token`, if the request carried one (the caller
    /// checks it against the key's session).
    pub session_token: Option<String>,
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let incomplete = |why: &str| AuthError::IncompleteSignature(why.to_string());
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| {
            incomplete("Authorization header must start with AWS4-HMAC-SHA256 and a space")
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| incomplete("Authorization header parts must be name=value"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(incomplete("Authorization header has an unknown part")),
        };
        if slot.replace(value).is_some() {
            return Err(incomplete("Authorization header repeats a part"));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(incomplete(
            "Credential must be <access key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if access_key_id.is_empty() {
        return Err(incomplete("Credential names no access key"));
    }
    let signed_headers: Vec<&str> = signed_headers.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(incomplete(
            "SignedHeaders must be lowercase names separated by ;",
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be 64 hexadecimal digits"));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Where a signature must be scoped: the server's region and the service's
/// signing name ([`SERVICE`]).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Checks `request`'s signature for `scope`; `secret_of` looks up an access
/// key (None: unknown key). On success, says which key signed and with
/// which session token.
pub fn verify<'k>(
    request: &SignedRequest<'_>,
    scope: Scope<'_>,
    now: SystemTime,
    secret_of: impl FnOnce(&str) -> Option<KeySecret<'k>>,
) -> Result<Signed, AuthError> {
    let header = |name: &str| -> Result<Option<&str>, AuthError> {
        match request.headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| {
                AuthError::IncompleteSignature(format!("{name} header is not visible ASCII"))
            }),
        }
    };
    let Some(authorization) = header("authorization")? else {
        return Err(AuthError::MissingAuthenticationToken);
    };
    let auth = parse_authorization(authorization.trim())?;
    let amz_date = header("x-amz-date")?.ok_or_else(|| {
        AuthError::IncompleteSignature(
            "Authorization header requires existence of an 'X-Amz-Date' header".into(),
        )
    })?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "X-Amz-Date {amz_date:?} is not of the form yyyyMMddTHHmmssZ"
        ))
    })?;
    check_skew(amz_date, signed_at, now)?;
    if auth.date != &amz_date[..8] {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..8]
        )));
    }
    if auth.service != scope.service {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{}'.",
            scope.service
        )));
    }
    if auth.region != scope.region {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region: '{}'.",
            scope.region
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(AuthError::InvalidSignature(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    // The SDKs sign the session token; SigV4 also allows adding it after
    // signing. Either way the caller checks it against the key's session.
    let session_token = header("x-amz-security-token")?;
    let Some(key) = secret_of(auth.access_key_id) else {
        return Err(AuthError::UnrecognizedClient);
    };
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(
        key.secret_access_key,
        signed_at,
        scope.region,
        scope.service,
    );
    let given = auth.signature.to_ascii_lowercase();
    // Repeated slashes are kept, as botocore signs them: a signature must
    // bind the exact path, or `/a//b` would verify for a request signed
    // as `/a/b` and could route elsewhere.
    let creq = canonical_request(request, &auth.signed_headers, Slashes::Keep)?;
    let to_sign = string_to_sign(amz_date, &credential_scope, &creq);
    let expected = aws_sigv4::sign::v4::calculate_signature(&signing_key, to_sign.as_bytes());
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(Signed {
        access_key_id: auth.access_key_id.to_string(),
        session_token: session_token.map(str::to_string),
    })
}

fn check_skew(amz_date: &str, signed_at: SystemTime, now: SystemTime) -> Result<(), AuthError> {
    let (too_old, distance) = match now.duration_since(signed_at) {
        Ok(behind) => (true, behind),
        Err(ahead) => (false, ahead.duration()),
    };
    if distance <= MAX_SKEW {
        return Ok(());
    }
    let now_text = format_amz_date(now);
    let bound = if too_old {
        format_amz_date(now - MAX_SKEW)
    } else {
        format_amz_date(now + MAX_SKEW)
    };
    Err(AuthError::InvalidSignature(if too_old {
        format!("Signature expired: {amz_date} is now earlier than {bound} ({now_text} - 15 min.)")
    } else {
        format!(
            "Signature not yet current: {amz_date} is still later than {bound} ({now_text} + 15 min.)"
        )
    }))
}

/// `yyyyMMddTHHmmssZ`.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(text, &format).ok()?;
    Some(at.assume_utc().into())
}

pub fn format_amz_date(at: SystemTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(at)
        .format(&format)
        .expect("a SystemTime formats")
}

/// `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

/// The canonical request of `request` over `signed_headers` (in the order
/// given, which is the client's).
pub fn canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &[&str],
    slashes: Slashes,
) -> Result<String, AuthError> {
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path, slashes));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut values = request.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            match (*name, request.authority) {
                ("host", Some(authority)) => out.push_str(authority.trim()),
                _ => {
                    return Err(AuthError::InvalidSignature(format!(
                        "The signed header '{name}' is not in the request."
                    )));
                }
            }
        }
        let mut first = true;
        for value in values {
            if !first {
                out.push(',');
            }
            first = false;
            push_header_value(&mut out, value.as_bytes());
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    let payload = hex_sha256(request.body);
    if let Some(sent) = request.headers.get("x-amz-content-sha256")
        && sent.as_bytes() != payload.as_bytes()
    {
        return Err(AuthError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        ));
    }
    out.push_str(&payload);
    Ok(out)
}

/// Trimmed, with every run of spaces inside made one space. Bytes outside
/// ASCII are kept as they are (as Latin-1, which is how HTTP carries them).
fn push_header_value(out: &mut String, value: &[u8]) {
    let text: String = value.iter().map(|&b| b as char).collect();
    let mut last_space = false;
    for c in text.trim_matches([' ', '\t']).chars() {
        let space = c == ' ' || c == '\t';
        if space && last_space {
            continue;
        }
        out.push(if space { ' ' } else { c });
        last_space = space;
    }
}

/// How repeated slashes in a path are canonicalized. The SDKs disagree:
/// botocore (and AWS's original test suite) keep them, the AWS SDK for Rust
/// (and the CRT's suite) merge them. The verifier keeps them (see
/// `verify`); a path with `//` is never a valid emr-containers route, so
/// only requests that would fail anyway are refused earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slashes {
    Keep,
    Merge,
}

/// The path with `.` and `..` segments removed (and repeated slashes
/// merged, if asked), every byte but unreserved ones and `/` then
/// percent-encoded — so what was already encoded is encoded twice.
pub fn canonical_uri(path: &str, slashes: Slashes) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut segments: Vec<&str> = Vec::new();
    let inner = path.strip_prefix('/').unwrap_or(path);
    for segment in inner.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            "" if slashes == Slashes::Merge => {}
            other => segments.push(other),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    let ends_in_directory = path.ends_with("/.") || path.ends_with("/..");
    if normalized.is_empty()
        || (ends_in_directory && !normalized.ends_with('/'))
        || (slashes == Slashes::Merge && path.ends_with('/') && !normalized.ends_with('/'))
    {
        normalized.push('/');
    }
    encode(&normalized, true)
}

/// Parameters decoded, strictly re-encoded, sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                encode(&percent_decode(name), false),
                encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// RFC 3986 encoding as SigV4 defines it: `A-Za-z0-9-._~` stay, so does
/// `/` when `keep_slash`, every other byte becomes `%XX` (upper case).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_then_encoded_again() {
        let keep = |p| canonical_uri(p, Slashes::Keep);
        assert_eq!(keep(""), "/");
        assert_eq!(keep("/"), "/");
        assert_eq!(keep("//example//"), "//example//");
        assert_eq!(canonical_uri("//example//", Slashes::Merge), "/example/");
        assert_eq!(keep("/example1/example2/../.."), "/");
        assert_eq!(keep("/a/./b/.."), "/a/");
        assert_eq!(keep("/a/b/."), "/a/b/");
        assert_eq!(
            keep("/virtualclusters/x/jobruns"),
            "/virtualclusters/x/jobruns"
        );
        assert_eq!(
            keep("/tags/arn%3Aaws%3Aemr-containers%3Aus-east-1%3A1%3A%2Fvirtualclusters%2Fx"),
            "/tags/arn%253Aaws%253Aemr-containers%253Aus-east-1%253A1%253A%252Fvirtualclusters%252Fx"
        );
        assert_eq!(keep("/example space/"), "/example%20space/");
    }

    #[test]
    fn queries_are_sorted_and_strictly_encoded() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(
            canonical_query("states=RUNNING&maxResults=5&states=PENDING"),
            "maxResults=5&states=PENDING&states=RUNNING"
        );
        assert_eq!(canonical_query("a=%7e+b&c"), "a=~%2Bb&c=");
        assert_eq!(
            canonical_query("createdAfter=2024-01-02T03%3A04%3A05Z"),
            "createdAfter=2024-01-02T03%3A04%3A05Z"
        );
    }

    #[test]
    fn authorization_headers_are_parsed_strictly() {
        let good = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/emr-containers/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = parse_authorization(good).unwrap();
        assert_eq!(auth.access_key_id, "AKID");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        for bad in [
            "",
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/emr-containers, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/emr-containers/aws4_request, SignedHeaders=Host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/emr-containers/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/emr-containers/aws4_request, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ] {
            assert!(
                matches!(
                    parse_authorization(bad),
                    Err(AuthError::IncompleteSignature(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = String::new();
        push_header_value(&mut out, b"  \"a   b \t c\"  ");
        assert_eq!(out, "\"a b c\"");
    }

    #[test]
    fn amz_dates_round_trip() {
        let at = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(at), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
    }
}

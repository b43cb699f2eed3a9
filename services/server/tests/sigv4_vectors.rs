//! AWS's published SigV4 vectors (see `sigv4-vectors/README.md`) against
//! sparkvc's verifier: each signed request verifies with the vector's
//! credentials at the vector's time, and sparkvc's canonical request is the
//! vector's, byte for byte.

use sparkvc_server::auth::AuthError;
use sparkvc_server::auth::sigv4::{self, KeySecret, Scope, Signed, SignedRequest, Slashes};
use std::path::Path;

const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Vector {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
    canonical: String,
    context: Option<serde_json::Value>,
}

/// `METHOD PATH[?QUERY] HTTP/1.1`, `Name:value` lines, a blank line, the
/// body. None for a request the `http` crate cannot carry (a header value
/// folded over lines), which no HTTP/1.1 or HTTP/2 server delivers either.
fn parse(dir: &Path) -> Option<Vector> {
    let text = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return None;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            // As an HTTP parser does: no white space around a value.
            http::HeaderValue::from_str(value.trim_matches([' ', '\t'])).unwrap(),
        );
    }
    let context = std::fs::read_to_string(dir.join("context.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    Some(Vector {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers,
        body: body.as_bytes().to_vec(),
        canonical: std::fs::read_to_string(dir.join("header-canonical-request.txt")).unwrap(),
        context,
    })
}

fn vectors() -> (Vec<Vector>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4-vectors");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let (mut parsed, mut unparsable) = (Vec::new(), Vec::new());
    for dir in dirs {
        match parse(&dir) {
            Some(v) => parsed.push(v),
            None => unparsable.push(dir.file_name().unwrap().to_string_lossy().into_owned()),
        }
    }
    (parsed, unparsable)
}

impl Vector {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            authority: None,
            body: &self.body,
        }
    }

    fn authorization(&self) -> sigv4::Authorization<'_> {
        sigv4::parse_authorization(self.headers["authorization"].to_str().unwrap()).unwrap()
    }
}

#[test]
fn every_vector_verifies_and_has_the_vectors_canonical_request() {
    let (vectors, unparsable) = vectors();
    // The one vector whose header value is folded over lines.
    assert_eq!(unparsable, ["get-header-value-multiline"]);
    assert_eq!(vectors.len(), 32, "vectors found");
    let mut verified = 0;
    let mut merged_paths = 0;
    for v in &vectors {
        let auth = v.authorization();
        let slashes = if v.path.contains("//") {
            Slashes::Merge
        } else {
            Slashes::Keep
        };
        let canonical = sigv4::canonical_request(&v.request(), &auth.signed_headers, slashes)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let Some(context) = &v.context else {
            // double-encode-path's files disagree on the date; its path is
            // what it is there for.
            let line = |t: &str| t.lines().nth(1).unwrap().to_string();
            assert_eq!(line(&canonical), line(&v.canonical), "{}", v.name);
            continue;
        };
        assert_eq!(canonical, v.canonical, "{}", v.name);
        if v.path.contains("//") {
            // The CRT suite merges repeated slashes; sparkvc verifies them
            // kept (as botocore signs) so that a signature binds the exact
            // path: the canonical form above matches, the signature is
            // refused.
            assert!(
                ["get-slash-normalized", "get-slashes-normalized"].contains(&v.name.as_str()),
                "{}",
                v.name
            );
            merged_paths += 1;
            continue;
        }
        let secret = context["credentials"]["secret_access_key"]
            .as_str()
            .unwrap();
        let token = context["credentials"]["token"].as_str();
        let now = sigv4::parse_amz_date(v.headers["x-amz-date"].to_str().unwrap()).unwrap();
        let scope = Scope {
            region: context["region"].as_str().unwrap(),
            service: context["service"].as_str().unwrap(),
        };
        let signed = sigv4::verify(&v.request(), scope, now, |id| {
            assert_eq!(id, "AKIDEXAMPLE");
            Some(KeySecret {
                secret_access_key: secret,
            })
        })
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(signed.session_token.as_deref(), token, "{}", v.name);
        verified += 1;
    }
    assert_eq!((verified, merged_paths), (28, 2));
}

#[test]
fn a_lambda_arn_in_the_path_is_encoded_twice_and_verifies() {
    let (vectors, _) = vectors();
    let v = vectors
        .iter()
        .find(|v| v.name == "double-url-encode")
        .unwrap();
    let now = sigv4::parse_amz_date("20210511T154045Z").unwrap();
    let scope = Scope {
        region: "us-east-2",
        service: "lambda",
    };
    let secret = |_: &str| {
        Some(KeySecret {
            secret_access_key: EXAMPLE_SECRET,
        })
    };
    let signed: Signed = sigv4::verify(&v.request(), scope, now, secret).unwrap();
    assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
    // Encoded once, it would not verify.
    let once = v.path.replace("%3A", ":");
    let mut tampered = v.request();
    tampered.path = &once;
    assert_eq!(
        sigv4::verify(&tampered, scope, now, secret).unwrap_err(),
        AuthError::SignatureMismatch
    );
}

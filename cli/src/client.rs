//! Connecting to the sparkvc server, and signing every call with AWS
//! Signature Version 4 as the aws CLI does.
//!
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`, …), then
//! the shared files (`~/.aws/credentials`, `~/.aws/config`, `--profile` or
//! `AWS_PROFILE`), then a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! as on a pod with IRSA). The instance and container metadata endpoints are
//! not asked: a laptop would wait on them for every command. With no
//! credentials at all the call goes unsigned, which a development server
//! accepts and any other refuses with MissingAuthenticationTokenException.
//! The signature covers the whole gRPC body, which this layer reads before
//! sending (every sparkvc call is unary).

use crate::args::Cli;
use crate::error::CliError;
use crate::tls::{ClientIdentity, TlsConnector, TlsOptions};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use http_body_util::BodyExt;
use sparkvc_proto::EmrContainersClient;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};

/// The region signatures are scoped to when nothing else names one (the
/// server's default).
pub const DEFAULT_REGION: &str = "us-east-1";
/// The service name signatures are scoped to.
pub const SIGNING_NAME: &str = "emr-containers";

/// The client every command uses.
pub type Client = EmrContainersClient<SignedChannel>;

/// Where to connect and how to sign, from the global flags.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub no_sign_request: bool,
    pub tls: TlsOptions,
    /// A file holding a Kubernetes bearer token to send instead of signing.
    pub bearer_token_file: Option<std::path::PathBuf>,
}

impl Target {
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            url: cli.endpoint_url.clone(),
            profile: cli.profile.clone(),
            region: cli.region.clone(),
            no_sign_request: cli.no_sign_request,
            tls: TlsOptions {
                ca_bundle: cli.ca_bundle.clone(),
                no_verify: cli.no_verify_ssl,
                client_identity: cli
                    .client_cert
                    .clone()
                    .zip(cli.client_key.clone())
                    .map(|(cert, key)| ClientIdentity { cert, key }),
            },
            bearer_token_file: cli.bearer_token_file.clone(),
        }
    }

    pub fn unsigned(url: &str) -> Self {
        Self {
            url: url.to_string(),
            profile: None,
            region: None,
            no_sign_request: true,
            tls: TlsOptions::default(),
            bearer_token_file: None,
        }
    }
}

/// Checks `--endpoint-url` (`http://` or `https://`).
pub fn endpoint(url: &str) -> Result<Endpoint, CliError> {
    let bad = |why: &str| {
        CliError::Usage(format!(
            "Bad value for --endpoint-url \"{url}\": {why}. Must be of the form http[s]://<hostname>:<port>/"
        ))
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(bad("scheme is missing"));
    }
    Endpoint::from_shared(url.to_string())
        .map(|endpoint| endpoint.connect_timeout(Duration::from_secs(10)))
        .map_err(|e| bad(&e.to_string()))
}

/// A bearer token is a password that works from anywhere until it expires:
/// it may cross the network only inside TLS. Plain `http://` is allowed to
/// a loopback address only (a development server on this machine).
fn refuse_plaintext_token(uri: &http::Uri) -> Result<(), CliError> {
    if uri.scheme_str() == Some("https") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "Refusing to send the token of --bearer-token-file in plaintext to \"{host}\": \
         use an https:// --endpoint-url (plain http:// is allowed only to a loopback address)"
    )))
}

/// Opens a connection; failure to reach the server is a [`CliError::Connect`].
pub async fn connect(target: &Target) -> Result<Client, CliError> {
    let checked = endpoint(&target.url)?;
    if let Some(path) = &target.bearer_token_file {
        refuse_plaintext_token(checked.uri())?;
        // Read on every command: projected ServiceAccount tokens rotate.
        let token = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "Bad value for --bearer-token-file \"{}\": {e}",
                path.display()
            ))
        })?;
        let token = token.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(CliError::Usage(format!(
                "Bad value for --bearer-token-file \"{}\": it must hold one token",
                path.display()
            )));
        }
        let channel = SignedChannel::connect_with_tls(&target.url, None, &target.tls).await?;
        return Ok(EmrContainersClient::new(channel.with_bearer_token(token)?));
    }
    let signer = if target.no_sign_request {
        None
    } else {
        Signer::from_chain(target).await?
    };
    Ok(EmrContainersClient::new(
        SignedChannel::connect_with_tls(&target.url, signer, &target.tls).await?,
    ))
}

/// Credentials and the region to sign with.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    region: String,
}

impl Signer {
    pub fn new(credentials: Credentials, region: impl Into<String>) -> Self {
        Self {
            credentials,
            region: region.into(),
        }
    }

    /// From the credential chain described in the module documentation;
    /// None when it has no credentials and no profile was asked for.
    async fn from_chain(target: &Target) -> Result<Option<Self>, CliError> {
        use aws_config::environment::{
            EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
        };
        use aws_config::meta::credentials::CredentialsProviderChain;
        use aws_config::meta::region::RegionProviderChain;
        use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
        use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;

        use aws_config::provider_config::ProviderConfig;
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

        // Profiles may assume roles and web identities call STS: the
        // providers need an HTTP client (the same rustls stack as the rest).
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let base = ProviderConfig::default().with_http_client(http);
        let mut profile_region = ProfileFileRegionProvider::builder().configure(&base);
        if let Some(name) = &target.profile {
            profile_region = profile_region.profile_name(name);
        }
        let region = match &target.region {
            Some(region) => region.clone(),
            None => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(profile_region.build())
                .region()
                .await
                .map(|r| r.to_string())
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
        };
        let provider_config = base.with_region(Some(aws_config::Region::new(region.clone())));
        let mut profile_credentials =
            ProfileFileCredentialsProvider::builder().configure(&provider_config);
        if let Some(name) = &target.profile {
            profile_credentials = profile_credentials.profile_name(name);
        }
        let chain = CredentialsProviderChain::first_try(
            "Environment",
            EnvironmentVariableCredentialsProvider::new(),
        )
        .or_else("Profile", profile_credentials.build())
        .or_else(
            "WebIdentityToken",
            WebIdentityTokenCredentialsProvider::builder()
                .configure(&provider_config)
                .build(),
        );
        let credentials = match chain.provide_credentials().await {
            Ok(credentials) => credentials,
            Err(err) if target.profile.is_some() => {
                return Err(CliError::Usage(format!(
                    "Unable to locate credentials for profile {:?}: {}",
                    target.profile.as_deref().unwrap_or_default(),
                    crate::error::innermost(&err)
                )));
            }
            Err(err) => {
                tracing::debug!(reason = %crate::error::innermost(&err), "no credentials: calls go unsigned");
                return Ok(None);
            }
        };
        tracing::debug!(
            access_key_id = credentials.access_key_id(),
            temporary = credentials.session_token().is_some(),
            %region,
            "found credentials"
        );
        Ok(Some(Self::new(credentials, region)))
    }

    /// Signs `request` (whose URI is a path only; the authority is the
    /// endpoint's, which the channel adds) over `body`.
    fn sign(
        &self,
        request: &mut http::Request<Body>,
        authority: &str,
        body: &[u8],
    ) -> Result<(), aws_sigv4::http_request::SigningError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("every signing parameter is set")
            .into();
        let uri = format!("http://{authority}{}", request.uri().path());
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers,
            SignableBody::Bytes(body),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// A channel that signs every request it sends (when it has a signer).
#[derive(Debug, Clone)]
pub struct SignedChannel {
    inner: Channel,
    signer: Option<Arc<Signer>>,
    /// `authorization: Bearer …`, sent instead of a signature.
    bearer: Option<http::HeaderValue>,
    authority: Arc<str>,
}

impl SignedChannel {
    /// A channel to `url` that signs with `signer`; for tests and tools
    /// that bring their own credentials.
    pub async fn connect(url: &str, signer: Option<Signer>) -> Result<Self, CliError> {
        Self::connect_with_tls(url, signer, &TlsOptions::default()).await
    }

    /// The same, checking an `https://` server's certificate as `tls` says.
    pub async fn connect_with_tls(
        url: &str,
        signer: Option<Signer>,
        tls: &TlsOptions,
    ) -> Result<Self, CliError> {
        let endpoint = endpoint(url)?;
        let authority = endpoint
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let connected = if url.starts_with("https://") {
            let connector = TlsConnector::new(crate::tls::client_config(tls)?);
            endpoint.connect_with_connector(connector).await
        } else {
            endpoint.connect().await
        };
        let inner = connected.map_err(|e| CliError::Connect {
            url: url.to_string(),
            cause: crate::error::innermost(&e),
        })?;
        Ok(Self {
            inner,
            signer: signer.map(Arc::new),
            bearer: None,
            authority: Arc::from(authority),
        })
    }

    /// Sends `token` as a Kubernetes bearer token on every call, and no
    /// signature.
    pub fn with_bearer_token(mut self, token: &str) -> Result<Self, CliError> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CliError::Usage("the bearer token holds characters a header cannot carry".into())
        })?;
        value.set_sensitive(true);
        self.bearer = Some(value);
        self.signer = None;
        Ok(self)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Request<Body>> for SignedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let signer = self.signer.clone();
        let authority = self.authority.clone();
        let bearer = self.bearer.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let started = std::time::Instant::now();
            let request = if let Some(bearer) = bearer {
                tracing::debug!(%path, "sending with a Kubernetes bearer token");
                let mut request = request;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, bearer);
                request
            } else if let Some(signer) = signer {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await?.to_bytes();
                let mut request = http::Request::from_parts(parts, Body::empty());
                signer.sign(&mut request, &authority, &bytes)?;
                tracing::debug!(
                    %path,
                    body_bytes = bytes.len(),
                    access_key_id = signer.credentials.access_key_id(),
                    region = %signer.region,
                    "sending, signed with SigV4"
                );
                let (parts, _) = request.into_parts();
                http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes)))
            } else {
                tracing::debug!(%path, "sending unsigned");
                request
            };
            let result = inner.call(request).await;
            match &result {
                Ok(response) => tracing::debug!(
                    %path,
                    status = response.status().as_u16(),
                    headers = %crate::debug::response_headers(response.headers()),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "response"
                ),
                Err(err) => tracing::debug!(
                    %path,
                    error = %err,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "no response"
                ),
            }
            result.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_need_an_http_scheme() {
        assert!(endpoint("http://127.0.0.1:50051").is_ok());
        let err = endpoint("127.0.0.1:50051").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("scheme is missing"), "{err}");
        assert!(endpoint("https://sparkvc.example.com").is_ok());
        assert!(endpoint("ftp://x").is_err());
    }

    #[test]
    fn a_bearer_token_goes_in_plaintext_only_to_loopback() {
        let check = |url: &str| refuse_plaintext_token(endpoint(url).unwrap().uri());
        for allowed in [
            "https://sparkvc.example.com",
            "https://10.0.0.1:50051",
            "http://127.0.0.1:50051",
            "http://127.8.0.2:50051",
            "http://localhost:50051",
            "http://[::1]:50051",
        ] {
            assert!(check(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://10.0.0.1:50051",
            "http://sparkvc.example.com",
            "http://[fe80::1]:50051",
        ] {
            let err = check(refused).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{refused}");
            assert!(err.to_string().contains("https://"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_plaintext_token_is_refused_before_the_file_is_read_or_sent() {
        let target = Target {
            bearer_token_file: Some("/nonexistent/token".into()),
            ..Target::unsigned("http://192.0.2.1:50051")
        };
        let err = connect(&target).await.unwrap_err();
        assert!(err.to_string().contains("in plaintext"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_a_connection_error() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = connect(&Target::unsigned(&url)).await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_OTHER);
        assert!(
            err.to_string().starts_with(&format!(
                "Could not connect to the endpoint URL: {url}: is the sparkvc server running?"
            )),
            "{err}"
        );
    }
}

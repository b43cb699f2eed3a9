//! Connecting to the sparkvc server.

use crate::error::CliError;
use sparkvc_proto::EmrContainersClient;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Checks `--endpoint-url` (only plain `http://` is supported).
pub fn endpoint(url: &str) -> Result<Endpoint, CliError> {
    let bad = |why: &str| {
        CliError::Usage(format!(
            "Bad value for --endpoint-url \"{url}\": {why}. Must be of the form http://<hostname>:<port>/"
        ))
    };
    if url.starts_with("https://") {
        return Err(bad("https is not supported"));
    }
    if !url.starts_with("http://") {
        return Err(bad("scheme is missing"));
    }
    Endpoint::from_shared(url.to_string())
        .map(|endpoint| endpoint.connect_timeout(Duration::from_secs(10)))
        .map_err(|e| bad(&e.to_string()))
}

/// Opens a connection; failure to reach the server is a [`CliError::Connect`].
pub async fn connect(url: &str) -> Result<EmrContainersClient<Channel>, CliError> {
    let channel = endpoint(url)?
        .connect()
        .await
        .map_err(|e| CliError::Connect {
            url: url.to_string(),
            cause: root_cause(&e),
        })?;
    Ok(EmrContainersClient::new(channel))
}

/// The innermost error message: "Connection refused (os error 111)" rather
/// than "transport error".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
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
        assert!(endpoint("https://x").is_err());
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
        let err = connect(&url).await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_OTHER);
        assert!(
            err.to_string().starts_with(&format!(
                "Could not connect to the endpoint URL: {url}: is the sparkvc server running?"
            )),
            "{err}"
        );
    }
}

//! `deploy/sparkvc-server.example.toml`, which `sparkvc-server --help`
//! points to, is a configuration this server takes: every key in it is
//! known (the config refuses unknown keys) and every value has its type.

use sparkvc_server::config::Config;

#[test]
fn the_example_config_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/sparkvc-server.example.toml"
    );
    let text = std::fs::read_to_string(path).expect("the example config");
    let config: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(config.clusters.len(), 1);
    assert_eq!(config.tenancy.allow_ingress_from_namespaces, ["monitoring"]);
    assert!(config.metrics_listen.is_some());
    // Uncommenting every commented-out setting must still parse.
    let all: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") || rest.starts_with('[') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let full: Config = toml::from_str(&all).unwrap_or_else(|e| panic!("{path} uncommented: {e}"));
    assert_eq!(full.pod_template_dirs.len(), 1);
    assert!(full.tenancy.container_limits.is_some());
    assert!(full.app_ui.history_server_url.is_some());
    assert!(full.tls.is_some_and(|t| t.client_ca_file.is_some()));
}

#[test]
fn the_example_identity_store_loads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/identities.example.toml"
    );
    let ids = sparkvc_server::auth::identities::Identities::load(std::path::Path::new(path))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids.principal_count(), 3);
}

//! sparkvc's control plane: the emr-containers API over gRPC, backed by an
//! embedded sled store.
//!
//! Data flows one way: request → `validate` → `control` (decides, writes the
//! `store` durably) → response. Kubernetes execution reads the store's open
//! runs and writes state transitions back through the same store.

pub mod api;
pub mod app;
pub mod app_ui;
pub mod auth;
pub mod aws;
pub mod aws_error;
pub mod cluster;
pub mod config;
pub mod control;
pub mod error;
pub mod http_endpoint;
pub mod ids;
pub mod log_access;
pub mod log_reader;
pub mod metrics;
pub mod reload;
pub mod rest;
pub mod state;
pub mod store;
pub mod template;
pub mod time;
pub mod tls;
pub mod validate;

// Rendering and the release catalogue are pure and live in their own crate,
// so that their golden tests and the cluster tests build without the server.
pub use sparkvc_render::{self as render, release};

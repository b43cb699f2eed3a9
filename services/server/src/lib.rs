//! sparkvc's control plane: the emr-containers API over gRPC, backed by an
//! embedded sled store.
//!
//! Data flows one way: request → `validate` → `control` (decides, writes the
//! `store` durably) → response. Kubernetes execution reads the store's open
//! runs and writes state transitions back through the same store.

pub mod api;
pub mod app;
pub mod app_ui;
pub mod aws;
pub mod config;
pub mod control;
pub mod error;
pub mod ids;
pub mod kube;
pub mod log_access;
pub mod log_reader;
pub mod metrics;
pub mod release;
pub mod render;
pub mod state;
pub mod store;
pub mod template;
pub mod time;
pub mod validate;

//! Tessera: a self-hosted identity service that speaks the CosyncJWT protocol and signs RS256 JWTs.

/// Admin commands (`tessera app ...`), calling the domain directly on the configured database.
pub mod cli;
/// Typed settings: defaults, then a TOML file, then `TESSERA_*` environment variables.
pub mod config;
/// Master key, AEAD, blind indexes, password hashing, token signing, random codes.
pub mod crypto;
/// Use cases and validated newtypes; knows nothing about HTTP or SQL.
pub mod domain;
/// The only module that imports axum: routes, extractors, wire errors.
pub mod http;
/// Prometheus metrics of the service.
pub mod metrics;
/// Import from CosyncJWT and Tessera archives, export, legacy server keys, master key rotation.
pub mod migrate;
/// Outgoing mail (SMTP or outbox directory) and message templates.
pub mod notify;
/// Builds the state and router, binds, and shuts down gracefully.
pub mod server;
/// Storage traits and their SQL implementation (SQLite and PostgreSQL).
pub mod store;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod secrets_in_debug;

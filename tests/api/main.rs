//! The one integration test binary: every test talks to a real `tessera serve` process.

// Test code: a panic is how a test fails, in helpers and in backend-generic test bodies alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;
mod sms_sink;
mod smtp;

mod admin;
mod at_rest;
mod bad_input;
mod flow;
mod jwt;
mod migration;
mod migration_bad_input;
mod multi_node;
mod operations;
mod protocol;
mod rotation;
mod two_factor;

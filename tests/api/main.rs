//! The one integration test binary: every test talks to a real `tessera serve` process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod smtp;

mod at_rest;
mod bad_input;
mod flow;
mod jwt;
mod protocol;

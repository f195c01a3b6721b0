//! The attack suite (DESIGN.md §3): one test per public attack class, each against the real
//! server process. `docs/security.md` maps every invariant to the test that proves it.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, unused_macros)]

#[macro_use]
#[path = "../api/helpers.rs"]
mod helpers;

mod abuse;
mod input;
mod secrets;
mod tokens;

//! The one integration test binary: every test talks to a real `tessera serve` process.

#[macro_use]
mod helpers;

mod at_rest;
mod bad_input;
mod flow;
mod jwt;
mod multi_node;

//! Integration tests of the gateway: real servers on 127.0.0.1 only — an upstream echo
//! server, identity-provider nodes with real tokens, and the gateway itself on port 0.

// Test helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod common;
mod dpop;
mod proxy;

//! Integration tests of tessera-verify against real Tessera nodes (tessera-testkit): one
//! test binary, modules by area.

// Test helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apikeys;
mod common;
mod dpop;
mod introspect;
mod keys;
mod layer;
mod revocation;
mod verify;

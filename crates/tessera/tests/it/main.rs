//! Integration tests of the `tessera` binary and its HTTP surface: one test binary (link
//! time is the cost of each extra one), modules by area, independent of order.

// Test helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod account_browser;
mod account_forms;
mod accounts;
mod accounts_abuse;
mod admin_api;
mod alerts;
mod apikeys;
mod apikeys_gateway;
mod architecture;
mod authz;
mod authz_terms;
mod claims;
mod cli;
mod client_auth;
mod clients;
mod cluster;
mod console;
mod deploy;
mod device;
mod dpop;
mod engine;
mod federation;
mod foundation;
mod gateway_outage;
mod interop;
mod mail;
mod mfa;
mod mfa_policy;
mod oidc;
mod oidc_abuse;
mod operability;
mod pages;
mod par;
mod passkeys;
mod properties;
mod request_objects;
mod resilience;
mod tls;
mod tokens;
mod user_cli;

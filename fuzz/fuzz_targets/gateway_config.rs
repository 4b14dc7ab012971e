//! Configuration loading of `tessera gateway` (TOML, then `TESSERA_GATEWAY_*` overrides):
//! any text as the file, and the first line as one override. No input may panic; a
//! configuration that loads has only routes the gateway can serve.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_gateway::GatewayConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, _) = text.split_once('\n').unwrap_or((text, ""));
    let env = first
        .split_once('=')
        .filter(|(name, _)| name.starts_with("TESSERA_GATEWAY_"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
    if let Ok(config) = GatewayConfig::parse(text, Some("gateway.toml"), env) {
        for route in &config.routes {
            assert!(route.path_prefix.starts_with('/'), "{:?}", route.path_prefix);
            assert!(!route.upstreams.is_empty());
        }
    }
});

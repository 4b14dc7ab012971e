// private_key_jwt (RFC 7523 §2.2) as `openid-client` (a library Tessera does not use) does
// it against a running node: discovery → PrivateKeyJwt with the client's P-256 key (the
// library signs ES256 assertions with aud = the issuer, a fresh jti and exp 60 s away) →
// clientCredentialsGrant → tokenIntrospection and tokenRevocation, each authenticated with
// a new assertion. Then a key the client never registered: the node must answer
// invalid_client.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_KEY (base64 PKCS#8 DER of the P-256 private key),
// CLIENT_KID, OTHER_KEY (base64 PKCS#8 DER of a key not registered).
//
// Prints one JSON line per step ({"step", "ok", ...}) and exits 0, or prints the failing
// step with the library's error ({"step", "ok": false, "error", "oauth_error"}) and exits 1.
import * as client from "openid-client";

function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const ISSUER = env("ISSUER");
const CLIENT_ID = env("CLIENT_ID");
const CLIENT_KID = env("CLIENT_KID");

let currentStep = "start";
function report(step, facts = {}) {
  console.log(JSON.stringify({ step, ok: true, ...facts }));
}
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function privateKey(name) {
  const der = Buffer.from(env(name), "base64");
  return crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
}

async function configure(key) {
  return client.discovery(
    new URL(ISSUER),
    CLIENT_ID,
    undefined,
    client.PrivateKeyJwt({ key, kid: CLIENT_KID }),
    { execute: [client.allowInsecureRequests] },
  );
}

async function main() {
  currentStep = "discovery";
  const config = await configure(await privateKey("CLIENT_KEY"));
  const metadata = config.serverMetadata();
  check(metadata.token_endpoint_auth_methods_supported.includes("private_key_jwt"), "private_key_jwt advertised");
  check(metadata.token_endpoint_auth_signing_alg_values_supported.includes("ES256"), "ES256 advertised");
  report("discovery", { methods: metadata.token_endpoint_auth_methods_supported });

  currentStep = "client_credentials_grant";
  const token = await client.clientCredentialsGrant(config, { scope: "openid" });
  check(typeof token.access_token === "string", "an access token");
  report("client_credentials_grant", { token_type: token.token_type });

  currentStep = "introspection";
  const active = await client.tokenIntrospection(config, token.access_token);
  check(active.active === true && active.client_id === CLIENT_ID, "the token is active and the client's");
  await client.tokenRevocation(config, token.access_token, { token_type_hint: "access_token" });
  const revoked = await client.tokenIntrospection(config, token.access_token);
  check(revoked.active === false, "the revoked token is inactive");
  report("introspection", { active_before: active.active, active_after: revoked.active });

  currentStep = "unregistered_key";
  const impostor = await configure(await privateKey("OTHER_KEY"));
  let refused = null;
  try {
    await client.clientCredentialsGrant(impostor, { scope: "openid" });
  } catch (err) {
    // A 401 with a WWW-Authenticate challenge surfaces as the challenge; the body has the code.
    refused = err.error;
    if (refused === undefined && err.response) {
      try {
        refused = (await err.response.json()).error;
      } catch {
        refused = `status ${err.status}`;
      }
    }
    refused ??= err.code ?? String(err);
  }
  check(refused === "invalid_client", `a key the client never registered is refused (got ${refused})`);
  report("unregistered_key", { error: refused });
}

main().catch((err) => {
  console.log(
    JSON.stringify({ step: currentStep, ok: false, error: String(err?.message ?? err), oauth_error: err?.error ?? null }),
  );
  process.exit(1);
});
